//! UDP 64-byte datagrams between two simulated hosts through every layer
//! (socket layer, UDP, IPv4, neighbours, qdisc, the igb model's rings and
//! MSI-X, NAPI, softnet, a 10 Gbit/s VirtualWire), beside the Linux
//! kernel's UDP over loopback measured in the same run.
//!
//! One iteration sends a batch of datagrams from h1 (one application step,
//! as `sendmmsg()` would), runs the network until it is idle, and receives
//! the batch on h2 (checking every length); the figure is datagrams
//! received per second of wall time. The kernel's figure is two
//! `std::net::UdpSocket`s on 127.0.0.1 doing the same batches.
//!
//! Figures: `udp_64B/netstack` and `udp_64B/linux` (datagrams/s).
//!
//! The same exchange with **one CPU each**, as the goal states
//! it: the two hosts on the thread runtime in `idle=poll` mode
//! ([`CpuIdle::Poll`]: each host's one CPU is a thread that spins and
//! runs its own NIC model, two threads in all), the sender an application
//! step on h1's CPU that sends up to 32 batches of 32 while its send
//! buffer admits them and then waits for `EPOLLOUT`, the receiver a step on h2's CPU woken by the
//! socket's `sk_data_ready()` that drains the queue. The figure is
//! datagrams received per second of wall time over a one-second window
//! after a warm-up (what the sender sends beyond that is dropped and
//! counted where Linux drops it: the receiver's ring or socket queue).
//! The kernel's figure is the same on two threads: a sender thread and a
//! receiver thread on connected `std::net::UdpSocket`s over loopback.
//! Figures: `udp_64B_2cpu/netstack` and `udp_64B_2cpu/linux`.
//!
//! `UDP_BENCH_PROFILE=N` runs N batches of the simulated exchange only and
//! prints the runtime's loop iterations per datagram (for `perf record` or
//! `valgrind --tool=callgrind`); `UDP_BENCH_2CPU=1` runs only the two-CPU
//! figure, and `UDP_BENCH_2CPU_MS=N` shortens its warm-up and window to N
//! ms each (for `perf record`).

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use netcore::Duration;
use netstack::{CpuIdle, Host, HostShared, Network, NicConfig, ThreadRuntime, UdpSocket};
use nic_hw::LinkConfig;
use socket::EpollEvents;

/// The socket buffers of the two-CPU figure: 512 KiB each way, as a host
/// tuned for a UDP benchmark sets them (`sysctl net.core.rmem_default`,
/// or `iperf3 -u -w`). With the defaults (208 KiB) the sender waits for
/// its send buffer: a datagram stays charged to it until the igb model's
/// moderated transmit-completion interrupt frees it, and a 64-byte
/// datagram is charged about 2.2 KiB (its 2 KiB buffer), so some 95 fit.
/// The kernel's loopback figure needs no such setting: `loopback_xmit()`
/// uncharges a datagram from its sender as it passes (`skb_orphan()`).
/// Larger buffers hold more datagrams in flight than the caches do, and
/// the figure falls (4 MiB: about half).
const TWO_CPU_SYSCTLS: &[(&str, &str)] = &[
    ("net.core.rmem_default", "524288"),
    ("net.core.wmem_default", "524288"),
];

/// How long the two-CPU figures run before their window, and the window.
const WARMUP: std::time::Duration = std::time::Duration::from_millis(300);
const WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

const BATCH: usize = 32;

fn network() -> Network {
    let mut net = Network::new(1);
    net.set_event_budget(u64::MAX);
    pair(net, &[])
}

/// h1 and h2 on a 10 Gbit/s wire, each host with `sysctls` set.
fn pair(mut net: Network, sysctls: &[(&str, &str)]) -> Network {
    let (a, b) = net
        .wire(
            "w0",
            LinkConfig::default()
                .rate_bps(10_000_000_000)
                .delay(Duration::from_micros(1)),
        )
        .unwrap();
    for (name, phy, addr) in [("h1", a, "198.18.0.1/24"), ("h2", b, "198.18.0.2/24")] {
        let mut host = Host::builder()
            .name(name)
            .nic(NicConfig::new().phy(phy))
            .addr(addr);
        for (key, value) in sysctls {
            host = host.sysctl(key, value);
        }
        net.add_host(host).unwrap();
    }
    net
}

struct Exchange {
    net: Network,
    tx: UdpSocket,
    rx: UdpSocket,
    payload: [u8; 64],
    buf: [u8; 2048],
}

impl Exchange {
    fn new() -> Exchange {
        let mut net = network();
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        let h2 = Arc::clone(net.host("h2").unwrap().shared());
        let rx = UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
        tx.connect("198.18.0.2:5000").unwrap();
        let to: SocketAddrV4 = "198.18.0.2:5000".parse().unwrap();
        let payload = [0x5au8; 64];
        let mut buf = [0u8; 2048];
        // Resolve ARP before timing.
        net.app("h1", || tx.send_to(&payload, to)).unwrap().unwrap();
        net.run_until_idle().unwrap();
        net.app("h2", || rx.recv(&mut buf)).unwrap().unwrap();
        Exchange {
            net,
            tx,
            rx,
            payload,
            buf,
        }
    }

    /// One batch: send, run until idle, receive; returns datagrams received.
    fn batch(&mut self) -> usize {
        let Exchange {
            net,
            tx,
            rx,
            payload,
            buf,
        } = self;
        net.app("h1", || {
            for _ in 0..BATCH {
                tx.send(payload).unwrap();
            }
        })
        .unwrap();
        net.run_until_idle().unwrap();
        net.app("h2", || {
            let mut n = 0;
            while let Ok(len) = rx.recv(buf) {
                assert_eq!(len, 64);
                n += 1;
            }
            n
        })
        .unwrap()
    }
}

/// h1's sending step: up to 32 batches of 32 until the send buffer is full, then
/// waits for the socket's write-space wake-up (`EPOLLOUT`), until `stop`.
fn send_step(h1: &Arc<HostShared>, tx: Arc<UdpSocket>, stop: Arc<AtomicBool>) {
    let host = Arc::clone(h1);
    let fd = tx.as_raw_fd();
    h1.app_on_ready(0, fd, EpollEvents::EPOLLOUT.bits(), move || {
        let payload = [0x5au8; 64];
        'full: for _ in 0..BATCH {
            for _ in 0..BATCH {
                if tx.send(&payload).is_err() {
                    break 'full;
                }
            }
        }
        if !stop.load(Ordering::Relaxed) {
            send_step(&host, tx, stop);
        }
    })
    .expect("the sender's fd is open");
}

/// h2's receiving step: woken by the socket's data-ready wake-up, drains
/// the queue (checking each length), then waits again, until `stop`.
fn recv_step(h2: &Arc<HostShared>, rx: Arc<UdpSocket>, got: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let host = Arc::clone(h2);
    let fd = rx.as_raw_fd();
    h2.app_on_ready(0, fd, EpollEvents::EPOLLIN.bits(), move || {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while let Ok(len) = rx.recv(&mut buf) {
            assert_eq!(len, 64);
            n += 1;
        }
        got.fetch_add(n, Ordering::Relaxed);
        if !stop.load(Ordering::Relaxed) {
            recv_step(&host, rx, got, stop);
        }
    })
    .expect("the receiver's fd is open");
}

/// Datagrams counted by `got` per second over [`WINDOW`], after
/// [`WARMUP`].
fn rate_over_window(got: &AtomicU64) -> f64 {
    // UDP_BENCH_2CPU_MS shortens both, for a profiler.
    let (warmup, window) = match std::env::var("UDP_BENCH_2CPU_MS").map(|v| v.parse::<u64>()) {
        Ok(Ok(ms)) => (
            std::time::Duration::from_millis(ms),
            std::time::Duration::from_millis(ms),
        ),
        _ => (WARMUP, WINDOW),
    };
    std::thread::sleep(warmup);
    let (c0, t0) = (got.load(Ordering::Relaxed), std::time::Instant::now());
    std::thread::sleep(window);
    let (c1, t1) = (got.load(Ordering::Relaxed), std::time::Instant::now());
    (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
}

/// The two-CPU figure: each host's CPU on its own spinning thread.
fn two_cpus_netstack() -> f64 {
    let net = pair(Network::realtime(1), TWO_CPU_SYSCTLS);
    let rt = ThreadRuntime::start_with(net, CpuIdle::Poll).unwrap();
    let (h1, h2) = (rt.host("h1").unwrap(), rt.host("h2").unwrap());
    let rx = Arc::new(UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap());
    let tx = Arc::new(UdpSocket::bind(&h1, "0.0.0.0:0").unwrap());
    tx.connect("198.18.0.2:5000").unwrap();
    // Resolve ARP first (blocking calls from this thread).
    rx.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    tx.send(&[0u8; 64]).unwrap();
    let mut buf = [0u8; 2048];
    assert_eq!(rx.recv(&mut buf).unwrap(), 64);
    rx.set_nonblocking(true).unwrap();
    tx.set_nonblocking(true).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    recv_step(&h2, rx, Arc::clone(&got), Arc::clone(&stop));
    send_step(&h1, tx, Arc::clone(&stop));
    let rate = rate_over_window(&got);
    stop.store(true, Ordering::Relaxed);
    let net = rt.stop().unwrap();
    // What was sent and not received was dropped where Linux drops it,
    // and counted: nothing vanishes.
    let m = |h: &str, f| net.host(h).unwrap().shared().mibs.get(f);
    let sent = m("h1", netcore::UdpMib::OutDatagrams);
    let delivered = m("h2", netcore::UdpMib::InDatagrams);
    assert!(delivered <= sent && sent > 0, "{delivered} of {sent}");
    rate
}

/// The kernel's two-CPU figure: a sender thread and a receiver thread.
fn two_cpus_linux() -> f64 {
    let krx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ktx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ktx.connect(krx.local_addr().unwrap()).unwrap();
    krx.set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let sender = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let payload = [0x5au8; 64];
            while !stop.load(Ordering::Relaxed) {
                // A full socket buffer or qdisc is the receiver's business.
                let _ = ktx.send(&payload);
            }
        })
    };
    let receiver = {
        let (stop, got) = (Arc::clone(&stop), Arc::clone(&got));
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(len) = krx.recv(&mut buf) {
                    assert_eq!(len, 64);
                    got.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let rate = rate_over_window(&got);
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    receiver.join().unwrap();
    rate
}

fn main() {
    if std::env::var_os("UDP_BENCH_2CPU").is_some() {
        eprintln!("{:.0} datagrams/s", two_cpus_netstack());
        return;
    }
    let mut ex = Exchange::new();
    if let Some(n) = std::env::var("UDP_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let before = ex.net.events_run();
        for _ in 0..n {
            assert_eq!(ex.batch(), BATCH, "datagrams lost");
        }
        eprintln!(
            "{} datagrams, {:.2} runtime loop iterations per datagram",
            n * BATCH,
            (ex.net.events_run() - before) as f64 / (n * BATCH) as f64
        );
        return;
    }
    let per_batch = benchkit::measure(|| {
        assert_eq!(ex.batch(), BATCH, "datagrams lost");
    });
    benchkit::report(
        "udp_64B/netstack",
        per_batch.per_second() * BATCH as f64,
        "datagrams/s",
    );

    let payload = [0x5au8; 64];
    let mut buf = [0u8; 2048];
    let krx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ktx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ktx.connect(krx.local_addr().unwrap()).unwrap();
    let per_batch = benchkit::measure(|| {
        for _ in 0..BATCH {
            ktx.send(&payload).unwrap();
        }
        for _ in 0..BATCH {
            assert_eq!(krx.recv(&mut buf).unwrap(), 64);
        }
    });
    benchkit::report(
        "udp_64B/linux",
        per_batch.per_second() * BATCH as f64,
        "datagrams/s",
    );

    benchkit::report("udp_64B_2cpu/netstack", two_cpus_netstack(), "datagrams/s");
    benchkit::report("udp_64B_2cpu/linux", two_cpus_linux(), "datagrams/s");
}
