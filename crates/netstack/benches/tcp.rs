//! TCP between two simulated hosts through every layer (sockets, TCP,
//! IPv4, neighbours, qdisc, the igb model, NAPI/GRO, softnet, a 10 Gbit/s
//! 1500-MTU VirtualWire), each figure beside the Linux kernel's TCP over
//! loopback (`std::net`) measured in the same run.
//!
//! Figures (`<workload>/netstack` beside `<workload>/linux`):
//! - `tcp_bulk` (Gbit/s of application data per second of wall time) and
//!   `tcp_bulk_cpu` (CPU ms per MiB moved, both ends);
//! - `tcp_crr` (connect + accept + close cycles per second);
//! - `tcp_rr_1B` (1-byte request/response round trips per second);
//! - `tcp_idle_conn_bytes` (bytes per idle established socket: our
//!   structures; for Linux the growth of the kernel's slab per socket);
//! - `tcp_rr_1B_10k_idle` (round trips per second with 10,000 idle
//!   connections open on the same hosts);
//! - `tcp_loss1_goodput` (Mbit/s of a bulk transfer over a 1 Gbit/s,
//!   1500-MTU path with 1 % random loss each way and a 10 ms RTT: netstack
//!   over a VirtualWire in virtual time, the median of five seeds; the
//!   kernel between two network namespaces whose TAP devices a relay
//!   thread joins with the same delay and loss, in wall time; root only,
//!   skipped with the reason otherwise).
//!
//! - `tcp_bulk_tso_on` / `tcp_bulk_tso_off` (Gbit/s of application data
//!   per second of wall time): the `tcp_bulk` transfer with the NICs'
//!   TSO and GRO on (igb's default) and off (`ethtool -K eth0 tso off gro
//!   off` on both hosts); the kernel's figure is a bulk transfer over a
//!   veth pair of MTU 1500 between two network namespaces the bench
//!   creates, with `tso`/`gso`/`gro` on or off on both ends (root only;
//!   otherwise over loopback, and the figure says so on stderr); 16 MiB
//!   each (`NETSTACK_TCP_TSO_MIB`).
//!
//! - `tcp_bulk_2cpu`: the bulk transfer with TSO/GRO on and each host's
//!   one CPU on its own thread of the thread runtime in `idle=poll` mode
//!   (`CpuIdle::Poll`: each thread spins and runs its own host's NIC
//!   model), interrupt moderation off, a 100 Gbit/s wire; Gbit/s received
//!   over one second of wall time. The kernel's figure is the veth
//!   transfer with TSO/GRO on, measured again.
//!
//! For a profiler run (`valgrind --tool=callgrind`), the environment picks
//! the workloads and shrinks them: `NETSTACK_TCP_BENCH=bulk,tso,bulk2cpu,crr,rr`,
//! `NETSTACK_TCP_BULK_MIB` (64), `NETSTACK_TCP_CRR_N` (2000),
//! `NETSTACK_TCP_RR_N` (20,000), `NETSTACK_TCP_IDLE_N` (10,000),
//! `NETSTACK_TCP_BENCH=loss1` with `NETSTACK_TCP_LOSS1_MIB` (8).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant as WallInstant;

use benchkit::report;
use netcore::Duration;
use netstack::{
    CpuIdle, Host, HostShared, HostSockets, Network, NicConfig, ThreadRuntime, tcp_bulk,
};
use nic_hw::LinkConfig;
use socket::{TcpListener, TcpStream};

type Stream = TcpStream<HostSockets>;
const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn network() -> Network {
    network_with(
        1,
        LinkConfig::default()
            .rate_bps(10_000_000_000)
            .delay(Duration::from_micros(1)),
    )
}

/// Two hosts, h1 and h2, on one wire with `link`, seeded with `seed`.
fn network_with(seed: u64, link: LinkConfig) -> Network {
    let mut net = Network::new(seed);
    net.set_event_budget(u64::MAX);
    hosts_on(net, link)
}

/// h1 and h2 added to `net` on one wire with `link`.
fn hosts_on(mut net: Network, link: LinkConfig) -> Network {
    let (a, b) = net.wire("w0", link).unwrap();
    for (name, addr, phy) in [("h1", "198.18.0.1/24", a), ("h2", "198.18.0.2/24", b)] {
        net.add_host(
            Host::builder()
                .name(name)
                .nic(NicConfig::new().phy(phy))
                .addr(addr),
        )
        .unwrap();
    }
    net
}

/// CPU time of the whole process (user + system), from `/proc/self/stat`.
fn cpu_time() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the ')'.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    std::time::Duration::from_millis(ticks * 10)
}

fn slab_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn bulk() {
    // `NETSTACK_TCP_BULK_MIB` shrinks the transfer for a profiler run.
    let mib: u64 = std::env::var("NETSTACK_TCP_BULK_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let bytes = mib * 1024 * 1024;
    let mut net = network();
    let c0 = cpu_time();
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5001),
        bytes,
        Duration::from_micros(20),
        Duration::from_secs(600),
    )
    .unwrap();
    let cpu = cpu_time().saturating_sub(c0);
    assert!(r.intact && r.closed, "{r:?}");
    eprintln!(
        "tcp_bulk/netstack: {} retransmissions, {:.2} Gbit/s of virtual time",
        r.retrans,
        r.gbps_virtual()
    );
    report("tcp_bulk/netstack", r.gbps_real(), "Gbit/s");
    report(
        "tcp_bulk_cpu/netstack",
        cpu.as_secs_f64() * 1e3 / (bytes as f64 / 1048576.0),
        "ms/MiB",
    );
    // The kernel: a writer thread and a reader over 127.0.0.1.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let c0 = cpu_time();
    let t0 = WallInstant::now();
    let w = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let buf = vec![0x5au8; 256 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.write_all(&buf[..n]).unwrap();
            left -= n as u64;
        }
    });
    let (mut s, _) = l.accept().unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while got < bytes {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    w.join().unwrap();
    let wall = t0.elapsed();
    let cpu = cpu_time().saturating_sub(c0);
    report(
        "tcp_bulk/linux",
        got as f64 * 8.0 / wall.as_nanos() as f64,
        "Gbit/s",
    );
    report(
        "tcp_bulk_cpu/linux",
        cpu.as_secs_f64() * 1e3 / (bytes as f64 / 1048576.0),
        "ms/MiB",
    );
}

/// The bulk transfer of `bulk()` with the NICs' TSO and GRO `on` or off;
/// returns Gbit/s of wall time.
fn bulk_offload_netstack(bytes: u64, on: bool) -> f64 {
    let mut net = network();
    if !on {
        for h in ["h1", "h2"] {
            net.host(h)
                .unwrap()
                .with_ethtool("eth0", |ops| {
                    let (f, _) = ops.get_features().expect("igb reports its features");
                    ops.set_features(
                        f - netcore::NetdevFeatures::TSO - netcore::NetdevFeatures::GRO,
                    )
                    .expect("igb turns TSO and GRO off");
                })
                .unwrap();
        }
    }
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5003),
        bytes,
        Duration::from_micros(20),
        Duration::from_secs(600),
    )
    .unwrap();
    assert!(r.intact && r.closed, "{r:?}");
    r.gbps_real()
}

/// h1's sending step of the two-CPU bulk transfer: writes until the send
/// buffer is full, then waits for `EPOLLOUT`, until `stop`.
fn bulk_send_step(h1: &Arc<HostShared>, mut c: Stream, buf: Arc<[u8]>, stop: Arc<AtomicBool>) {
    let host = Arc::clone(h1);
    let fd = c.as_raw_fd();
    h1.app_on_ready(0, fd, socket::EpollEvents::EPOLLOUT.bits(), move || {
        while c.write(&buf).is_ok_and(|n| n > 0) {}
        if !stop.load(Ordering::Relaxed) {
            bulk_send_step(&host, c, buf, stop);
        }
    })
    .expect("the sender's fd is open");
}

/// h2's receiving step: reads until the queue is empty, counting bytes,
/// then waits for `EPOLLIN`, until `stop`.
fn bulk_recv_step(h2: &Arc<HostShared>, mut s: Stream, got: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let host = Arc::clone(h2);
    let fd = s.as_raw_fd();
    h2.app_on_ready(0, fd, socket::EpollEvents::EPOLLIN.bits(), move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            assert!(
                buf[..n].iter().all(|&b| b == 0x5a),
                "bytes changed on the way"
            );
            got.fetch_add(n as u64, Ordering::Relaxed);
        }
        if !stop.load(Ordering::Relaxed) {
            bulk_recv_step(&host, s, got, stop);
        }
    })
    .expect("the receiver's fd is open");
}

/// Bulk TCP with each host's one CPU on its own thread (`idle=poll`),
/// TSO and GRO on, over a 100 Gbit/s wire (a 10 Gbit/s one would cap the
/// figure in real time; veth has no rate): Gbit/s received over one
/// second of wall time after a warm-up.
fn bulk_2cpu_netstack() -> f64 {
    let link = LinkConfig::default()
        .rate_bps(100_000_000_000)
        .delay(Duration::from_micros(1));
    let net = hosts_on(Network::realtime(1), link);
    // Interrupt moderation off (`ethtool -C eth0 rx-usecs 0 tx-usecs 0`):
    // in real time igb's dynamic moderation settles a bulk receiver at
    // 4,000 interrupts a second, 245 µs between looks at the ring, and
    // the transfer waits on it (8.7 Gbit/s here, both CPUs idle half the
    // time). The kernel's veth, beside it, has no interrupts at all.
    for h in ["h1", "h2"] {
        net.host(h)
            .unwrap()
            .with_ethtool("eth0", |ops| {
                ops.set_coalesce(&netcore::EthtoolCoalesce {
                    rx_coalesce_usecs: 0,
                    tx_coalesce_usecs: 0,
                    ..Default::default()
                })
            })
            .unwrap()
            .expect("igb takes rx-usecs 0");
    }
    let rt = ThreadRuntime::start_with(net, CpuIdle::Poll).unwrap();
    let (h1, h2) = (rt.host("h1").unwrap(), rt.host("h2").unwrap());
    let l = TcpListener::bind(
        h2.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5004),
    )
    .unwrap();
    let c = TcpStream::connect(h1.socket_layer(), SocketAddrV4::new(H2, 5004)).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nonblocking(true).unwrap();
    s.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    bulk_recv_step(&h2, s, Arc::clone(&got), Arc::clone(&stop));
    bulk_send_step(&h1, c, Arc::from(vec![0x5au8; 1 << 16]), Arc::clone(&stop));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (b0, t0) = (got.load(Ordering::Relaxed), WallInstant::now());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (b1, t1) = (got.load(Ordering::Relaxed), WallInstant::now());
    stop.store(true, Ordering::Relaxed);
    drop(l);
    rt.stop().unwrap();
    (b1 - b0) as f64 * 8.0 / (t1 - t0).as_nanos() as f64
}

/// Runs `args` with `ip` (or `ethtool` when `cmd` says so) in the calling
/// thread's network namespace.
fn run_cmd(cmd: &str, args: &[&str]) -> Result<(), String> {
    let ok = std::process::Command::new(cmd)
        .args(args)
        .status()
        .map_err(|e| format!("{cmd}: {e}"))?
        .success();
    if ok {
        Ok(())
    } else {
        Err(format!("`{cmd} {}` failed", args.join(" ")))
    }
}

/// The calling thread's id (`gettid()`), from `/proc/thread-self`.
fn gettid() -> Result<String, String> {
    let link = std::fs::read_link("/proc/thread-self").map_err(|e| e.to_string())?;
    link.file_name()
        .map(|t| t.to_string_lossy().into_owned())
        .ok_or_else(|| "no thread id".to_owned())
}

/// Brings `dev` up with `addr`, MTU 1500, and TSO/GSO/GRO `on` or off.
fn veth_end(dev: &str, addr: &str, on: bool) -> Result<(), String> {
    let o = if on { "on" } else { "off" };
    run_cmd("ip", &["link", "set", "lo", "up"])?;
    run_cmd("ip", &["addr", "add", addr, "dev", dev])?;
    run_cmd("ip", &["link", "set", dev, "mtu", "1500", "up"])?;
    run_cmd("ethtool", &["-K", dev, "tso", o, "gso", o, "gro", o])
}

/// Gbit/s (wall time) of the kernel's TCP moving `bytes` between two
/// network namespaces joined by a veth pair of MTU 1500, offloads `on` or
/// off. Needs root.
fn veth_linux(bytes: u64, on: bool) -> Result<f64, String> {
    use std::sync::mpsc;
    const SERVER: &str = "198.18.2.2:5301";
    let (tid_tx, tid_rx) = mpsc::channel::<Result<String, String>>();
    let (cfg_tx, cfg_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (res_tx, res_rx) = mpsc::channel::<Result<f64, String>>();
    let server = std::thread::spawn(move || {
        let setup = nic_hw::unshare_net_namespace()
            .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))
            .and_then(|()| gettid());
        let ok = setup.is_ok();
        let _ = tid_tx.send(setup);
        if !ok || cfg_rx.recv().is_err() {
            return;
        }
        let l = veth_end("vb", "198.18.2.2/24", on)
            .and_then(|()| std::net::TcpListener::bind(SERVER).map_err(|e| format!("bind: {e}")));
        let l = match l {
            Ok(l) => {
                let _ = ready_tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        // Accept with a deadline: a client that failed never connects.
        let _ = l.set_nonblocking(true);
        let t_accept = WallInstant::now();
        let mut s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(_) if t_accept.elapsed() < std::time::Duration::from_secs(30) => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => {
                    let _ = res_tx.send(Err(format!("accept: {e}")));
                    return;
                }
            }
        };
        let _ = s.set_nonblocking(false);
        let t0 = WallInstant::now();
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        let secs = t0.elapsed().as_secs_f64();
        let _ = res_tx.send(if got == bytes {
            Ok(got as f64 * 8.0 / secs / 1e9)
        } else {
            Err(format!("received {got} of {bytes} bytes"))
        });
    });
    let client = std::thread::spawn(move || -> Result<(), String> {
        let tid = tid_rx.recv().map_err(|e| e.to_string())??;
        nic_hw::unshare_net_namespace().map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
        run_cmd(
            "ip",
            &[
                "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", &tid,
            ],
        )?;
        veth_end("va", "198.18.2.1/24", on)?;
        cfg_tx.send(()).map_err(|e| e.to_string())?;
        ready_rx.recv().map_err(|e| e.to_string())??;
        let addr = SERVER.parse().expect("a socket address");
        let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(10))
            .map_err(|e| format!("connect: {e}"))?;
        let buf = vec![0x5au8; 256 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.write_all(&buf[..n]).map_err(|e| format!("write: {e}"))?;
            left -= n as u64;
        }
        Ok(())
    });
    let c = client.join().map_err(|_| "client panicked".to_owned())?;
    let r = match c {
        Ok(()) => res_rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|e| Err(format!("no result: {e}"))),
        Err(e) => Err(e),
    };
    let _ = server.join();
    r
}

/// Gbit/s of the kernel's TCP over loopback (the fallback without root).
fn loopback_linux(bytes: u64) -> f64 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let w = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let buf = vec![0x5au8; 256 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            s.write_all(&buf[..n]).unwrap();
            left -= n as u64;
        }
    });
    let (mut s, _) = l.accept().unwrap();
    let t0 = WallInstant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    w.join().unwrap();
    got as f64 * 8.0 / t0.elapsed().as_secs_f64() / 1e9
}

/// `tcp_bulk_tso_on` and `tcp_bulk_tso_off`, netstack beside the kernel's
/// veth pair (or loopback).
fn bulk_offloads() {
    // 16 MiB by default (`NETSTACK_TCP_TSO_MIB`), to keep the bench
    // short; 64 MiB gives the same rates.
    let mib: u64 = std::env::var("NETSTACK_TCP_TSO_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let bytes = mib << 20;
    for (on, name) in [(true, "tcp_bulk_tso_on"), (false, "tcp_bulk_tso_off")] {
        report(
            &format!("{name}/netstack"),
            bulk_offload_netstack(bytes, on),
            "Gbit/s",
        );
        let linux = veth_linux(bytes, on).unwrap_or_else(|e| {
            eprintln!("{name}/linux: veth between namespaces unavailable ({e}): loopback instead");
            loopback_linux(bytes)
        });
        report(&format!("{name}/linux"), linux, "Gbit/s");
    }
}

/// Connects h1 to h2's listener, returning both ends.
fn connect(net: &mut Network, l: &TcpListener<HostSockets>, port: u16) -> (Stream, Stream) {
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let c = net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, port))
        })
        .unwrap()
        .unwrap();
    net.run_until_idle().unwrap();
    let (s, _) = net.app("h2", || l.accept()).unwrap().unwrap();
    (c, s)
}

fn listener(net: &Network, port: u16) -> TcpListener<HostSockets> {
    let h2 = Arc::clone(net.host("h2").unwrap().shared());
    let l = TcpListener::bind(
        h2.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
    )
    .unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

/// `var` from the environment, else `default` (smaller runs for a
/// profiler).
fn env_or(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn crr() {
    let n = env_or("NETSTACK_TCP_CRR_N", 2000);
    let mut net = network();
    let l = listener(&net, 6000);
    // Resolve ARP first.
    let (c, s) = connect(&mut net, &l, 6000);
    net.app("h1", || drop(c)).unwrap();
    net.app("h2", || drop(s)).unwrap();
    net.run_until_idle().unwrap();
    let t0 = WallInstant::now();
    for _ in 0..n {
        let (c, s) = connect(&mut net, &l, 6000);
        net.app("h1", || drop(c)).unwrap();
        net.app("h2", || drop(s)).unwrap();
        net.run_until_idle().unwrap();
    }
    report(
        "tcp_crr/netstack",
        f64::from(n) / t0.elapsed().as_secs_f64(),
        "conn/s",
    );
    let kl = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = kl.local_addr().unwrap();
    let t0 = WallInstant::now();
    for _ in 0..n {
        let c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = kl.accept().unwrap();
        drop(c);
        drop(s);
    }
    report(
        "tcp_crr/linux",
        f64::from(n) / t0.elapsed().as_secs_f64(),
        "conn/s",
    );
}

/// Runs `n` 1-byte round trips on an established pair; returns trips/s.
fn rr_netstack(net: &mut Network, c: &mut Stream, s: &mut Stream, n: u32) -> f64 {
    let mut b = [0u8; 1];
    let t0 = WallInstant::now();
    for _ in 0..n {
        net.app("h1", || c.write(&[1])).unwrap().unwrap();
        net.run_until_idle().unwrap();
        net.app("h2", || s.read(&mut b)).unwrap().unwrap();
        net.app("h2", || s.write(&b)).unwrap().unwrap();
        net.run_until_idle().unwrap();
        net.app("h1", || c.read(&mut b)).unwrap().unwrap();
    }
    f64::from(n) / t0.elapsed().as_secs_f64()
}

fn rr_linux(n: u32) -> f64 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let srv = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        while s.read(&mut b).unwrap_or(0) == 1 {
            s.write_all(&b).unwrap();
        }
    });
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let mut b = [0u8; 1];
    let t0 = WallInstant::now();
    for _ in 0..n {
        c.write_all(&[1]).unwrap();
        c.read_exact(&mut b).unwrap();
    }
    let rate = f64::from(n) / t0.elapsed().as_secs_f64();
    drop(c);
    srv.join().unwrap();
    rate
}

fn rr() {
    let n = env_or("NETSTACK_TCP_RR_N", 20_000);
    let idle_n = env_or("NETSTACK_TCP_IDLE_N", 10_000) as usize;
    let mut net = network();
    for h in ["h1", "h2"] {
        // Room for 10,000 connections' descriptors (`ulimit -n 65536`).
        let host = net.host(h).unwrap().shared();
        host.socket_layer().set_rlimit_nofile(65_536).unwrap();
    }
    let l = listener(&net, 6001);
    let (mut c, mut s) = connect(&mut net, &l, 6001);
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    let rate = rr_netstack(&mut net, &mut c, &mut s, n);
    report("tcp_rr_1B/netstack", rate, "trips/s");
    report("tcp_rr_1B/linux", rr_linux(n), "trips/s");

    // Open 10,000 more connections, leave them idle, measure again.
    let mut idle = Vec::with_capacity(idle_n);
    for _ in 0..idle_n {
        idle.push(connect(&mut net, &l, 6001));
    }
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let h2 = Arc::clone(net.host("h2").unwrap().shared());
    let socks = h1.transports.tcp.stack.socket_count() + h2.transports.tcp.stack.socket_count();
    let bytes =
        h1.transports.tcp.stack.sockets_footprint() + h2.transports.tcp.stack.sockets_footprint();
    report(
        "tcp_idle_conn_bytes/netstack",
        bytes as f64 / socks as f64,
        "bytes",
    );
    let rate = rr_netstack(&mut net, &mut c, &mut s, n);
    report("tcp_rr_1B_10k_idle/netstack", rate, "trips/s");
    drop(idle);

    // The kernel: the slab growth per socket over 2,000 loopback pairs, and
    // the round trips with 10,000 idle pairs open (20,000 descriptors).
    let kl = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = kl.local_addr().unwrap();
    let slab0 = slab_bytes();
    let mut kidle = Vec::with_capacity(idle_n);
    for _ in 0..2000 {
        let c = std::net::TcpStream::connect(addr).unwrap();
        let (s, _) = kl.accept().unwrap();
        kidle.push((c, s));
    }
    let grown = slab_bytes().saturating_sub(slab0);
    report("tcp_idle_conn_bytes/linux", grown as f64 / 4000.0, "bytes");
    let mut opened = kidle.len();
    while opened < idle_n {
        match std::net::TcpStream::connect(addr).and_then(|c| kl.accept().map(|(s, _)| (c, s))) {
            Ok(p) => kidle.push(p),
            Err(_) => break,
        }
        opened += 1;
    }
    // Leave descriptors for the measuring pair (the process's `ulimit -n`
    // may stop the kernel short of 10,000 pairs; it is printed).
    kidle.truncate(kidle.len().saturating_sub(16));
    eprintln!("tcp_rr_1B_10k_idle/linux: {} idle pairs open", kidle.len());
    report("tcp_rr_1B_10k_idle/linux", rr_linux(n), "trips/s");
    drop(kidle);
}

/// One-way delay of the lossy path (a 10 ms RTT).
const LOSS1_DELAY_MS: u64 = 5;
/// Probability that a frame is lost, in each direction.
const LOSS1_P: f64 = 0.01;

/// The lossy path: 1 Gbit/s, 5 ms each way, 1 % random loss each way.
fn loss1_link() -> LinkConfig {
    LinkConfig::default()
        .rate_bps(1_000_000_000)
        .delay(Duration::from_millis(LOSS1_DELAY_MS))
        .loss(LOSS1_P)
}

/// Goodput (Mbit/s of application data over virtual time) of one bulk
/// transfer of `bytes` over the lossy path, seeded with `seed`.
fn loss1_netstack(seed: u64, bytes: u64) -> f64 {
    let mut net = network_with(seed, loss1_link());
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5002),
        bytes,
        Duration::from_micros(100),
        Duration::from_secs(3600),
    )
    .unwrap();
    assert!(r.intact && r.closed, "{r:?}");
    let mibs = &net.host("h1").unwrap().shared().mibs;
    let mbps = r.gbps_virtual() * 1e3;
    eprintln!(
        "tcp_loss1_goodput/netstack: seed {seed}: {mbps:.2} Mbit/s in {:?}, {} retransmitted, {} RTOs, {} fast retransmits",
        r.virtual_time,
        r.retrans,
        mibs.get(netcore::LinuxMib::TcpTimeouts),
        mibs.get(netcore::LinuxMib::TcpFastRetrans),
    );
    mbps
}

/// Moves the calling thread into a new network namespace with a TAP
/// device `tap` holding `addr` (1500 MTU, up) and CUBIC as its congestion
/// control. Needs root.
fn loss1_ns(tap: &str, addr: &str) -> Result<nic_hw::TapDevice, String> {
    nic_hw::unshare_net_namespace().map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
    let dev = nic_hw::TapDevice::open(tap).map_err(|e| format!("TAP {tap}: {e}"))?;
    for args in [
        vec!["link", "set", "lo", "up"],
        vec!["link", "set", tap, "mtu", "1500", "up"],
        vec!["addr", "add", addr, "dev", tap],
        // A new namespace has the host's default congestion control (BBR
        // on some machines, and not writable there); the route's
        // `congctl` makes it CUBIC against CUBIC.
        vec![
            "route",
            "replace",
            "198.18.1.0/24",
            "dev",
            tap,
            "congctl",
            "cubic",
        ],
    ] {
        let ok = std::process::Command::new("ip")
            .args(&args)
            .status()
            .map_err(|e| format!("ip: {e}"))?
            .success();
        if !ok {
            return Err(format!("`ip {}` failed", args.join(" ")));
        }
    }
    Ok(dev)
}

/// The kernel's wire between the two namespaces: every frame one TAP
/// sends is written to the other after `LOSS1_DELAY_MS`, unless it is
/// lost (`LOSS1_P`), until `stop`. A delay line in wall time: frames
/// leave in order, polled every 20 µs at most.
fn loss1_relay(
    mut taps: [nic_hw::TapDevice; 2],
    stop: &std::sync::atomic::AtomicBool,
) -> std::io::Result<()> {
    use std::collections::VecDeque;
    use std::sync::atomic::Ordering;
    let delay = std::time::Duration::from_millis(LOSS1_DELAY_MS);
    let mut rng = nic_hw::Rng::new(0x1055);
    for t in &taps {
        t.set_nonblocking(true)?;
    }
    let mut line: VecDeque<(WallInstant, usize, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; 65536];
    let (mut passed, mut lost, mut largest) = (0u64, 0u64, 0usize);
    while !stop.load(Ordering::Relaxed) {
        let now = WallInstant::now();
        for (from, tap) in taps.iter_mut().enumerate() {
            loop {
                match tap.read_raw(&mut buf) {
                    Ok(n) => {
                        largest = largest.max(n);
                        if rng.gen_bool(LOSS1_P) {
                            lost += 1;
                        } else {
                            passed += 1;
                            line.push_back((now + delay, 1 - from, buf[..n].to_vec()));
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
        while line.front().is_some_and(|f| f.0 <= now) {
            let (_, to, frame) = line.pop_front().expect("checked front");
            // A full TAP queue drops the frame, as a full link would.
            let _ = taps[to].write_raw(&frame);
        }
        std::thread::sleep(std::time::Duration::from_micros(20));
    }
    eprintln!(
        "tcp_loss1_goodput/linux: relay passed {passed} frames, lost {lost}, largest {largest} bytes"
    );
    Ok(())
}

/// Goodput (Mbit/s, wall time) of the kernel's TCP sending `bytes` over
/// the lossy path: a server thread in one namespace, a client thread in
/// another, a relay thread between their TAP devices.
fn loss1_linux(bytes: u64) -> Result<f64, String> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    const SERVER: &str = "198.18.1.1:5201";
    let deadline = std::time::Duration::from_secs(300);
    let (tap_tx, tap_rx) = mpsc::channel::<Result<nic_hw::TapDevice, String>>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (res_tx, res_rx) = mpsc::channel::<Result<f64, String>>();
    let server_tap = tap_tx.clone();
    let server = std::thread::spawn(move || {
        let setup = loss1_ns("l1a", "198.18.1.1/24").and_then(|tap| {
            let l = std::net::TcpListener::bind(SERVER).map_err(|e| format!("bind: {e}"))?;
            l.set_nonblocking(true).map_err(|e| e.to_string())?;
            Ok((tap, l))
        });
        let l = match setup {
            Ok((tap, l)) => {
                let _ = server_tap.send(Ok(tap));
                l
            }
            Err(e) => {
                let _ = server_tap.send(Err(e));
                return;
            }
        };
        let t0 = WallInstant::now();
        let mut s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(_) if t0.elapsed() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => {
                    let _ = res_tx.send(Err(format!("accept: {e}")));
                    return;
                }
            }
        };
        let start = WallInstant::now();
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(deadline));
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n as u64,
                Err(e) => {
                    let _ = res_tx.send(Err(format!("read: {e}")));
                    return;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let _ = res_tx.send(if got == bytes {
            Ok(got as f64 * 8.0 / secs / 1e6)
        } else {
            Err(format!("received {got} of {bytes} bytes"))
        });
    });
    let client = std::thread::spawn(move || {
        match loss1_ns("l1b", "198.18.1.2/24") {
            Ok(tap) => {
                let _ = tap_tx.send(Ok(tap));
            }
            Err(e) => {
                let _ = tap_tx.send(Err(e));
                return;
            }
        }
        if go_rx.recv().is_err() {
            return;
        }
        let addr = SERVER.parse().expect("a socket address");
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, deadline) else {
            return;
        };
        let buf = vec![0x5au8; 256 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            if s.write_all(&buf[..n]).is_err() {
                return;
            }
            left -= n as u64;
        }
    });
    let taps = (tap_rx.recv(), tap_rx.recv());
    let result = match taps {
        (Ok(Ok(a)), Ok(Ok(b))) => {
            let stop = Arc::new(AtomicBool::new(false));
            let relay_stop = Arc::clone(&stop);
            let relay = std::thread::spawn(move || loss1_relay([a, b], &relay_stop));
            let _ = go_tx.send(());
            let r = res_rx
                .recv_timeout(deadline)
                .unwrap_or_else(|e| Err(format!("no result: {e}")));
            stop.store(true, Ordering::Relaxed);
            match relay.join() {
                Ok(Ok(())) => r,
                Ok(Err(e)) => Err(format!("relay: {e}")),
                Err(_) => Err("relay panicked".to_owned()),
            }
        }
        (Ok(Err(e)), _) | (_, Ok(Err(e))) => Err(e),
        _ => Err("a namespace thread ended early".to_owned()),
    };
    drop(go_tx);
    let _ = client.join();
    let _ = server.join();
    result
}

/// `tcp_loss1_goodput`: netstack's median over five seeds, then the
/// kernel's over the relay (or the reason it was skipped).
fn loss1() {
    let bytes = u64::from(env_or("NETSTACK_TCP_LOSS1_MIB", 8)) << 20;
    let mut runs: Vec<f64> = (1..=5).map(|seed| loss1_netstack(seed, bytes)).collect();
    runs.sort_by(f64::total_cmp);
    report("tcp_loss1_goodput/netstack", runs[2], "Mbit/s");
    match loss1_linux(bytes) {
        Ok(mbps) => report("tcp_loss1_goodput/linux", mbps, "Mbit/s"),
        Err(e) => eprintln!("tcp_loss1_goodput/linux: skipped: {e}"),
    }
}

/// Runs every figure, or only those named in `NETSTACK_TCP_BENCH`
/// (comma-separated: `bulk`, `tso`, `crr`, `rr`, `loss1`), e.g. to profile one
/// workload.
fn main() {
    let only = std::env::var("NETSTACK_TCP_BENCH").unwrap_or_default();
    let want = |w: &str| only.is_empty() || only.split(',').any(|x| x == w);
    if want("bulk") {
        bulk();
    }
    if want("tso") {
        bulk_offloads();
    }
    if want("bulk2cpu") {
        report("tcp_bulk_2cpu/netstack", bulk_2cpu_netstack(), "Gbit/s");
        let linux = veth_linux(16 << 20, true).unwrap_or_else(|e| {
            eprintln!(
                "tcp_bulk_2cpu/linux: veth between namespaces unavailable ({e}): loopback instead"
            );
            loopback_linux(16 << 20)
        });
        report("tcp_bulk_2cpu/linux", linux, "Gbit/s");
    }
    if want("crr") {
        crr();
    }
    if want("rr") {
        rr();
    }
    if want("loss1") {
        loss1();
    }
}
