//! UDP 64-byte datagrams between two simulated hosts through every layer
//! (socket layer, UDP, IPv4, neighbours, qdisc, the igb model's rings and
//! MSI-X, NAPI, softnet, a 10 Gbit/s VirtualWire), beside the Linux
//! kernel's UDP over loopback measured in the same run.
//!
//! One iteration sends a batch of datagrams from h1, runs the network
//! until it is idle, and receives the batch on h2 (checking every byte
//! count); the figure is datagrams received per second of wall time.

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

fn main() {
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

    let per_batch = benchkit::measure(|| {
        net.app("h1", || {
            for _ in 0..BATCH {
                tx.send(&payload).unwrap();
            }
        })
        .unwrap();
        net.run_until_idle().unwrap();
        let got = net
            .app("h2", || {
                let mut n = 0;
                while let Ok(len) = rx.recv(&mut buf) {
                    assert_eq!(len, 64);
                    n += 1;
                }
                n
            })
            .unwrap();
        assert_eq!(got, BATCH, "datagrams lost");
    });
    let ours = per_batch.per_second() * BATCH as f64;
    benchkit::report("udp 64B netstack (full stack)", ours, "datagrams/s");

    // The kernel: two std::net::UdpSockets on 127.0.0.1, the same batches.
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
    let kernel = per_batch.per_second() * BATCH as f64;
    benchkit::report("udp 64B kernel loopback", kernel, "datagrams/s");
    benchkit::report("udp ratio netstack/kernel", ours / kernel, "x");
}
