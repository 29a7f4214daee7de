//! Data integrity of TCP through every layer under wire impairments: 20
//! seeds each of 1 %, 5 % and 10 % random loss, bursty (Gilbert–Elliott)
//! loss, reordering and duplication. Every transfer completes, the bytes
//! read equal the bytes written, both ends close in order, and the wire
//! and the counters show the impairment was there and was repaired
//! (losses cost retransmissions, duplicates come back as D-SACKs).
//!
//! Transfers are 64 KiB (h1 to h2) so that the 120 runs stay
//! within seconds in a debug build.

use std::net::{Ipv4Addr, SocketAddrV4};

use netcore::{Duration, LinuxMib, TcpMib};
use netstack::{Host, Network, NicConfig, tcp_bulk};
use nic_hw::LinkConfig;

const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SEEDS: u64 = 20;
const BYTES: u64 = 64 * 1024;

fn pair(seed: u64, cfg: LinkConfig) -> Network {
    let mut net = Network::new(seed);
    let (a, b) = net.wire("w0", cfg).unwrap();
    for (name, addr, phy, s) in [
        ("h1", "198.18.0.1/24", a, seed),
        ("h2", "198.18.0.2/24", b, seed + 1),
    ] {
        net.add_host(
            Host::builder()
                .name(name)
                .cpus(1)
                .seed(s)
                .nic(NicConfig::new().queues(1).phy(phy))
                .addr(addr),
        )
        .unwrap();
    }
    net
}

/// What the 20 runs of one impairment added up to.
#[derive(Debug, Default)]
struct Totals {
    lost: u64,
    duplicated: u64,
    reordered: u64,
    retrans: u64,
    dsack_sent: u64,
}

fn matrix(what: &str, cfg: impl Fn() -> LinkConfig) -> Totals {
    let mut t = Totals::default();
    for seed in 1..=SEEDS {
        let mut net = pair(seed * 7919, cfg());
        let r = tcp_bulk(
            &mut net,
            "h1",
            "h2",
            SocketAddrV4::new(H2, 5001),
            BYTES,
            Duration::from_micros(50),
            Duration::from_secs(600),
        )
        .unwrap_or_else(|e| panic!("{what} seed {seed}: {e}"));
        assert_eq!(r.bytes, BYTES, "{what} seed {seed}: {r:?}");
        assert!(r.intact, "{what} seed {seed}: bytes differ: {r:?}");
        assert!(r.closed, "{what} seed {seed}: not closed: {r:?}");
        let (ab, ba) = net.wire_stats("w0").unwrap();
        t.lost += ab.dropped_loss + ba.dropped_loss;
        t.duplicated += ab.duplicated + ba.duplicated;
        t.reordered += ab.reordered + ba.reordered;
        t.retrans += r.retrans;
        let m = &net.host("h2").unwrap().shared().mibs;
        t.dsack_sent += m.get(LinuxMib::TcpDsackOldSent) + m.get(LinuxMib::TcpDsackOfoSent);
        // h1 put at least every data segment on the wire once.
        let out = net.host("h1").unwrap().shared().mibs.get(TcpMib::OutSegs);
        assert!(out >= BYTES / 1448, "{what} seed {seed}: {out} segments");
    }
    t
}

fn lossy(p: f64) {
    let t = matrix(&format!("loss {p}"), || {
        LinkConfig::default()
            .delay(Duration::from_micros(20))
            .loss(p)
    });
    assert!(t.lost > 0, "{t:?}");
    assert!(t.retrans > 0, "losses must cost retransmissions: {t:?}");
}

#[test]
fn random_loss_1_percent_20_seeds() {
    lossy(0.01);
}

#[test]
fn random_loss_5_percent_20_seeds() {
    lossy(0.05);
}

#[test]
fn random_loss_10_percent_20_seeds() {
    lossy(0.10);
}

#[test]
fn bursty_gilbert_elliott_loss_20_seeds() {
    // Bad state entered with p = 2 %, left with r = 25 % (bursts of 4
    // frames on average), 60 % loss inside: about 4.4 % overall.
    let t = matrix("gilbert-elliott", || {
        LinkConfig::default()
            .delay(Duration::from_micros(20))
            .gilbert_elliott(0.02, 0.25, 0.6, 0.0)
    });
    assert!(t.lost > 0, "{t:?}");
    assert!(t.retrans > 0, "{t:?}");
}

#[test]
fn reordering_20_seeds() {
    let t = matrix("reorder", || {
        LinkConfig::default()
            .delay(Duration::from_micros(20))
            .reorder(0.05, Duration::from_micros(100))
    });
    assert!(t.reordered > 0, "{t:?}");
    assert_eq!(t.lost, 0, "{t:?}");
}

#[test]
fn duplication_20_seeds() {
    let t = matrix("duplicate", || {
        LinkConfig::default()
            .delay(Duration::from_micros(20))
            .duplicate(0.05)
    });
    assert!(t.duplicated > 0, "{t:?}");
    // A duplicate of data already received is answered with a D-SACK.
    assert!(t.dsack_sent > 0, "{t:?}");
}
