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
//! `UDP_BENCH_PROFILE=N` runs N batches of the simulated exchange only and
//! prints the runtime's loop iterations per datagram (for `perf record` or
//! `valgrind --tool=callgrind`).

use std::net::SocketAddrV4;
use std::sync::Arc;

use netcore::Duration;
use netstack::{Host, Network, NicConfig, UdpSocket};
use nic_hw::LinkConfig;

const BATCH: usize = 32;

fn network() -> Network {
    let mut net = Network::new(1);
    net.set_event_budget(u64::MAX);
    let (a, b) = net
        .wire(
            "w0",
            LinkConfig::default()
                .rate_bps(10_000_000_000)
                .delay(Duration::from_micros(1)),
        )
        .unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .nic(NicConfig::new().phy(a))
            .addr("198.18.0.1/24"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .nic(NicConfig::new().phy(b))
            .addr("198.18.0.2/24"),
    )
    .unwrap();
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

fn main() {
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
}
