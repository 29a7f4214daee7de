//! TCP bulk transfers between two simulated hosts on a lossless wire:
//! every in-window segment is kept (no receive-memory drops), so nothing
//! is retransmitted, and the counters on both ends and the wire agree.

use std::net::{Ipv4Addr, SocketAddrV4};

use netcore::{Duration, LinuxMib, TcpMib};
use netstack::{Host, Network, NicConfig, tcp_bulk};
use nic_hw::LinkConfig;

const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn pair(seed: u64) -> Network {
    let mut net = Network::new(seed);
    let (a, b) = net
        .wire(
            "w0",
            LinkConfig::default()
                .rate_bps(10_000_000_000)
                .delay(Duration::from_micros(1)),
        )
        .unwrap();
    for (name, addr, phy, s) in [
        ("h1", "198.18.0.1/24", a, seed),
        ("h2", "198.18.0.2/24", b, seed + 1),
    ] {
        net.add_host(
            Host::builder()
                .name(name)
                .cpus(2)
                .seed(s)
                .nic(NicConfig::new().queues(2).phy(phy))
                .addr(addr),
        )
        .unwrap();
    }
    net
}

fn mib(net: &Network, host: &str, f: impl netcore::MibField) -> u64 {
    net.host(host).unwrap().shared().mibs.get(f)
}

/// Transfers `bytes` h1 -> h2 and checks that the wire lost nothing, the
/// receiver dropped nothing and the sender retransmitted nothing.
fn lossless(seed: u64, bytes: u64) {
    let mut net = pair(seed);
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5001),
        bytes,
        Duration::from_micros(20),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(r.bytes, bytes);
    assert!(r.intact && r.closed, "{r:?}");
    for h in ["h1", "h2"] {
        assert_eq!(mib(&net, h, LinuxMib::TcpRcvQDrop), 0, "{h} TCPRcvQDrop");
        assert_eq!(mib(&net, h, LinuxMib::TcpOfoDrop), 0, "{h} TCPOFODrop");
        assert_eq!(mib(&net, h, LinuxMib::TcpOfoQueue), 0, "{h} TCPOFOQueue");
        assert_eq!(
            mib(&net, h, LinuxMib::TcpZeroWindowDrop),
            0,
            "{h} TCPZeroWindowDrop"
        );
        assert_eq!(mib(&net, h, LinuxMib::RcvPruned), 0, "{h} RcvPruned");
        assert_eq!(mib(&net, h, TcpMib::RetransSegs), 0, "{h} RetransSegs");
    }
    assert_eq!(r.retrans, 0);
    // The wire carried every segment once: h1 sent at least one frame per
    // MSS of data and the wire delivered all it was given.
    let (ab, ba) = net.wire_stats("w0").unwrap();
    assert_eq!(ab.delivered, ab.tx_frames);
    assert_eq!(ba.delivered, ba.tx_frames);
    assert!(ab.tx_frames >= bytes / 1448, "{ab:?}");
    // Every frame but ARP is a TCP segment of h1.
    assert!(
        ab.tx_frames - mib(&net, "h1", TcpMib::OutSegs) <= 2,
        "{ab:?}"
    );
    // No stall: at 10 Gbit/s a lossless transfer takes milliseconds of
    // virtual time, never an RTO (200 ms).
    assert!(r.virtual_time < Duration::from_millis(200), "{r:?}");
}

#[test]
fn lossless_4mb_transfer_drops_and_retransmits_nothing() {
    lossless(7, 4 * 1024 * 1024);
}

/// The 100 MB transfer, checked byte for byte against the
/// sender's stream (about 20 s in a debug build on this machine).
#[test]
fn lossless_100mb_transfer_is_byte_exact() {
    lossless(21, 100 * 1024 * 1024);
}
