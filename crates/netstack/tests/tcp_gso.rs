//! TCP hands IP one GSO skb per run of segments: with the NIC's TSO on,
//! igb's TSO engine cuts it, with TSO off softnet's `skb_gso_segment()`
//! does; either way the wire carries MSS-sized, valid frames and the
//! transfer is byte-exact.

use std::net::{Ipv4Addr, SocketAddrV4};

use netcore::{Duration, NetdevFeatures, TcpMib};
use netstack::{Host, Network, NicConfig, tcp_bulk};
use nic_hw::LinkConfig;

const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn pair(tso: bool) -> Network {
    let mut net = Network::new(5);
    let (a, b) = net
        .wire(
            "w0",
            LinkConfig::default()
                .rate_bps(10_000_000_000)
                .delay(Duration::from_micros(5)),
        )
        .unwrap();
    for (name, addr, phy) in [("h1", "198.18.0.1/24", a), ("h2", "198.18.0.2/24", b)] {
        net.add_host(
            Host::builder()
                .name(name)
                .cpus(1)
                .seed(5)
                .nic(NicConfig::new().phy(phy))
                .addr(addr),
        )
        .unwrap();
    }
    if !tso {
        net.host("h1")
            .unwrap()
            .with_ethtool("eth0", |ops| {
                let (f, _) = ops.get_features().expect("igb reports its features");
                ops.set_features(f - NetdevFeatures::TSO)
                    .expect("igb turns TSO off");
            })
            .unwrap();
    }
    net
}

/// `ethtool -S eth0` of `host`: the value of `name`.
fn ethtool_stat(net: &Network, host: &str, name: &str) -> u64 {
    net.host(host)
        .unwrap()
        .with_ethtool("eth0", |ops| {
            ops.get_ethtool_stats()
                .into_iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |(_, v)| v)
        })
        .unwrap()
}

fn transfer(tso: bool) {
    let mut net = pair(tso);
    let bytes = 4 * 1024 * 1024;
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5001),
        bytes,
        Duration::from_micros(20),
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(r.bytes, bytes);
    assert!(r.intact && r.closed, "byte-exact transfer: {r:?}");
    let (ab, _) = net.wire_stats("w0").unwrap();
    // MSS-sized frames: at least one per 1448 bytes of payload, none
    // larger than a 1500-byte MTU frame on average (a larger frame would
    // also be dropped by h2's receiver as oversized).
    assert!(ab.tx_frames >= bytes / 1448, "{ab:?}");
    assert!(ab.tx_bytes / ab.tx_frames <= 1518, "{ab:?}");
    // Valid: h2 found no checksum error and h1 retransmitted nothing.
    let mibs = &net.host("h2").unwrap().shared().mibs;
    assert_eq!(mibs.get(TcpMib::InCsumErrors), 0);
    assert_eq!(mibs.get(TcpMib::InErrs), 0);
    assert_eq!(r.retrans, 0, "{r:?}");
    // Who cut the GSO skbs: igb's TSO engine only when TSO is on.
    let tso_frames = ethtool_stat(&net, "h1", "tx_tcp_seg_good");
    if tso {
        assert!(tso_frames > 0, "igb's TSO engine cut no GSO skb");
    } else {
        assert_eq!(tso_frames, 0);
    }
}

#[test]
fn tso_on_the_nic_cuts_gso_skbs_into_mss_frames() {
    transfer(true);
}

#[test]
fn tso_off_softnet_segments_gso_skbs_into_mss_frames() {
    transfer(false);
}
