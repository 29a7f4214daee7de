//! 1 GiB each way between netstack and the Linux kernel through a TAP with
//! the virtio-net offloads, beside 1 GiB between two kernel sockets over a
//! veth pair with the same MTU (1500), measured in the same run.
//!
//! - `tap_download/netstack`: a kernel socket sends `GET /bytes/1073741824`
//!   to our HTTP responder ([`netstack::Inetd`]) and reads the body.
//! - `tap_upload/netstack`: our [`netstack::http_get`] reads 1 GiB from a
//!   kernel socket serving one HTTP response.
//! - `tap_download/linux`, `tap_upload/linux`: the same byte counts between
//!   two kernel sockets in two network namespaces joined by a veth pair.
//!
//! Figures in Gbit/s of body bytes over the wall time of one transfer (a
//! 1 GiB transfer is its own sample; `benchkit::measure`'s repetition would
//! multiply minutes). Needs root (TAP, namespaces, veth) and `nsenter`;
//! prints `SKIP` and no figures otherwise. Everything happens in
//! namespaces private to the bench's threads, removed when they end.
//!
//! For profiling, `NETSTACK_TAP_BENCH=download` (or `upload`) runs only
//! that transfer through the TAP, with no kernel-to-kernel figure, and
//! `NETSTACK_TAP_BENCH_MIB=N` moves N MiB instead of 1 GiB.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netstack::{HttpUrl, Inetd, TapHost, TapHostConfig, http_get, write_pattern};
use nic_hw::unshare_net_namespace;

/// The bytes of each transfer: 1 GiB, or `NETSTACK_TAP_BENCH_MIB` MiB.
fn bytes() -> u64 {
    std::env::var("NETSTACK_TAP_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(1 << 30, |m| m << 20)
}

/// Which transfers run: both (`None`), or the one named by
/// `NETSTACK_TAP_BENCH`.
fn only() -> Option<String> {
    std::env::var("NETSTACK_TAP_BENCH").ok()
}

fn ok(args: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn gbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_nanos() as f64
}

/// Reads until end of stream or `limit` bytes; returns the count.
fn drain(r: &mut impl Read, limit: u64) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    while n < limit {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read after {n} bytes: {e}"),
        }
    }
    n
}

/// Reads a response head from a kernel socket; returns the body bytes that
/// came with it.
fn skip_head(s: &mut TcpStream) -> u64 {
    let mut buf = vec![0u8; 65_536];
    let mut have = 0;
    loop {
        let n = s.read(&mut buf[have..]).expect("reading the head");
        assert!(n > 0, "closed before the head ended");
        have += n;
        if let Some(e) = netstack::head_end(&buf[..have]) {
            return (have - e) as u64;
        }
    }
}

/// Netstack through the TAP: (download, upload) in Gbit/s, each `None`
/// when [`only`] left it out.
fn netstack_figures(bytes: u64, down: bool, up: bool) -> (Option<f64>, Option<f64>) {
    let t = std::thread::spawn(move || {
        unshare_net_namespace().expect("unshare(CLONE_NEWNET)");
        let th = TapHost::attach(&TapHostConfig::new("nsbench0", "198.18.0.2/24"))
            .expect("attach to nsbench0");
        ok(&["ip", "link", "set", "lo", "up"]);
        ok(&["ip", "addr", "add", "198.18.0.1/24", "dev", "nsbench0"]);
        let inetd = Inetd::start(th.host()).unwrap();
        // Download: a kernel socket fetches from our responder.
        let down = down.then(|| {
            let start = Instant::now();
            let mut s = TcpStream::connect("198.18.0.2:80").expect("connect to our responder");
            write!(
                s,
                "GET /bytes/{bytes} HTTP/1.1\r\nHost: 198.18.0.2\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let first = skip_head(&mut s);
            let n = first + drain(&mut s, bytes - first);
            let d = start.elapsed();
            assert_eq!(n, bytes);
            gbps(bytes, d)
        });
        // Upload: our client fetches from a kernel socket.
        let up = up.then(|| {
            let l = TcpListener::bind("198.18.0.1:8080").unwrap();
            let server = std::thread::spawn(move || {
                let (mut c, _) = l.accept().unwrap();
                let mut req = [0u8; 4096];
                let _ = c.read(&mut req).unwrap();
                write!(
                    c,
                    "HTTP/1.1 200 OK\r\nContent-Length: {bytes}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                write_pattern(&mut c, bytes).unwrap();
            });
            let url: HttpUrl = "http://198.18.0.1:8080/".parse().unwrap();
            let r = http_get(
                th.host(),
                &url,
                &mut std::io::sink(),
                Duration::from_secs(30),
            )
            .unwrap();
            assert_eq!(r.bytes, bytes);
            server.join().unwrap();
            gbps(bytes, r.elapsed)
        });
        inetd.stop().unwrap();
        if only().is_some() {
            // Profiling runs: what crossed the TAP and what TCP counted.
            eprintln!("{:?}", th.offload_stats());
            eprintln!("{}", th.host().mibs.snapshot().netstat_s());
            for nic in th.host().nics().iter() {
                let a = nic.adapter.lock();
                for (k, v) in netcore::EthtoolOps::get_ethtool_stats(&*a) {
                    if v != 0 {
                        eprintln!("{}: {k}: {v}", nic.netdev.name());
                    }
                }
            }
        }
        th.stop().unwrap();
        (down, up)
    });
    t.join().unwrap()
}

/// A process that keeps a thread's namespace reachable by pid.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kernel to kernel over veth: (download, upload) in Gbit/s.
fn linux_figures(bytes: u64) -> (f64, f64) {
    // Namespace B: a thread that unshares and keeps a `sleep` in it.
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let b = std::thread::spawn(move || {
        unshare_net_namespace().expect("unshare(CLONE_NEWNET)");
        let holder = Holder(
            Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        tx.send(holder.0.id()).unwrap();
        go_rx.recv().unwrap();
        // Serve both directions: first send bytes, then receive bytes.
        let l = TcpListener::bind("198.19.0.2:5001").unwrap();
        go_rx.recv().unwrap();
        let (mut c, _) = l.accept().unwrap();
        write_pattern(&mut c, bytes).unwrap();
        drop(c);
        let (mut c, _) = l.accept().unwrap();
        let n = drain(&mut c, bytes);
        assert_eq!(n, bytes);
        drop(holder);
    });
    let pid = rx.recv().unwrap().to_string();
    let a = std::thread::spawn(move || {
        unshare_net_namespace().expect("unshare(CLONE_NEWNET)");
        ok(&["ip", "link", "set", "lo", "up"]);
        ok(&[
            "ip", "link", "add", "vbench0", "mtu", "1500", "type", "veth", "peer", "name",
            "vbench1", "mtu", "1500", "netns", &pid,
        ]);
        ok(&["ip", "addr", "add", "198.19.0.1/24", "dev", "vbench0"]);
        ok(&["ip", "link", "set", "vbench0", "up"]);
        let nse = |args: &[&str]| {
            let mut v = vec!["nsenter", "-t", &pid, "-n"];
            v.extend_from_slice(args);
            ok(&v);
        };
        nse(&["ip", "link", "set", "lo", "up"]);
        nse(&["ip", "addr", "add", "198.19.0.2/24", "dev", "vbench1"]);
        nse(&["ip", "link", "set", "vbench1", "up"]);
        go_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        go_tx.send(()).unwrap();
        let addr = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 5001);
        let connect = || {
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                match TcpStream::connect(addr) {
                    Ok(s) => return s,
                    Err(e) => {
                        assert!(Instant::now() < until, "connect over veth: {e}");
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
        };
        let start = Instant::now();
        let mut s = connect();
        let n = drain(&mut s, bytes);
        let down = start.elapsed();
        assert_eq!(n, bytes);
        let start = Instant::now();
        let mut s = connect();
        write_pattern(&mut s, bytes).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = drain(&mut s, 1);
        let up = start.elapsed();
        (gbps(bytes, down), gbps(bytes, up))
    });
    let r = a.join().unwrap();
    b.join().unwrap();
    r
}

fn main() {
    if !netstack_bench_can_run() {
        return;
    }
    let bytes = bytes();
    match only().as_deref() {
        Some(w @ ("download" | "upload")) => {
            let (d, u) = netstack_figures(bytes, w == "download", w == "upload");
            if let Some(d) = d {
                benchkit::report("tap_download/netstack", d, "Gbit/s");
            }
            if let Some(u) = u {
                benchkit::report("tap_upload/netstack", u, "Gbit/s");
            }
        }
        Some(w) => panic!("NETSTACK_TAP_BENCH={w}: expected download or upload"),
        None => {
            let (nd, nu) = netstack_figures(bytes, true, true);
            let (ld, lu) = linux_figures(bytes);
            if let (Some(nd), Some(nu)) = (nd, nu) {
                benchkit::report_vs_linux("tap_download", nd, ld, "Gbit/s");
                benchkit::report_vs_linux("tap_upload", nu, lu, "Gbit/s");
            }
        }
    }
}

fn netstack_bench_can_run() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let nsenter = Command::new("nsenter")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !root || !nsenter {
        println!("SKIP tap bench: needs root and nsenter (TAP, namespaces, veth)");
        return false;
    }
    true
}
