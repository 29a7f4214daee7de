//! Topologies more than one test file of this crate builds.

use netcore::Duration;
use netstack::{Host, Network, NicConfig};
use nic_hw::LinkConfig;

/// h1 (198.18.0.1) and h2 (198.18.0.2), one CPU each, added to `net`
/// (in virtual or real time) on a 10 Gbit/s wire with 1 µs of delay.
#[allow(dead_code)] // not every test file of the crate uses every topology
pub fn two_hosts(mut net: Network) -> Network {
    let (a, b) = net
        .wire(
            "w0",
            LinkConfig::default()
                .rate_bps(10_000_000_000)
                .delay(Duration::from_micros(1)),
        )
        .unwrap();
    for (name, phy, addr) in [("h1", a, "198.18.0.1/24"), ("h2", b, "198.18.0.2/24")] {
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

/// The frames of a pcap file (libpcap format, as `Host::capture` writes
/// it), each as captured.
#[allow(dead_code)] // not every test file of the crate reads captures
pub fn pcap_frames(pcap: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let caplen =
            u32::from_le_bytes([pcap[off + 8], pcap[off + 9], pcap[off + 10], pcap[off + 11]])
                as usize;
        out.push(&pcap[off + 16..(off + 16 + caplen).min(pcap.len())]);
        off += 16 + caplen;
    }
    out
}

/// h1 (198.18.0.1) — r — h2 (198.18.1.2), each link a wire, r forwarding,
/// with the IPv4 MTU of r's link to h2 (`eth1`) set to `mtu`: what r
/// cannot forward with DF it answers with "fragmentation needed".
pub fn routed_with_narrow_link(seed: u64, mtu: u32) -> Network {
    let mut net = Network::new(seed);
    let (a, ra) = net.wire("w0", LinkConfig::default()).unwrap();
    let (rb, b) = net.wire("w1", LinkConfig::default()).unwrap();
    let hosts = [
        (
            "h1",
            vec![(a, "198.18.0.1/24")],
            Some("default via 198.18.0.254"),
        ),
        (
            "r",
            vec![(ra, "198.18.0.254/24"), (rb, "198.18.1.254/24")],
            None,
        ),
        (
            "h2",
            vec![(b, "198.18.1.2/24")],
            Some("default via 198.18.1.254"),
        ),
    ];
    for (name, nics, route) in hosts {
        let mut hb = Host::builder().name(name).cpus(1);
        for (phy, addr) in nics {
            hb = hb.nic(NicConfig::new().phy(phy)).addr(addr);
        }
        hb = match route {
            Some(r) => hb.route(r),
            None => hb.sysctl("net.ipv4.ip_forward", "1"),
        };
        net.add_host(hb).unwrap();
    }
    let r = net.host("r").unwrap().shared();
    let eth1 = r.dev("eth1").unwrap().ifindex();
    r.ipv4.netdev_change_mtu(eth1, mtu).unwrap();
    net
}
