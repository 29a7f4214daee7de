//! Ping between simulated hosts, directly and through a router, with the
//! counters of every layer.

use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{Duration, IcmpMib, IpMib};
use netstack::{Host, Network, NicConfig, PingSocket, Report};
use nic_hw::LinkConfig;

fn pair(seed: u64, cfg: LinkConfig) -> Network {
    let mut net = Network::new(seed);
    let (a, b) = net.wire("w0", cfg).unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(a))
            .addr("198.18.0.1/24"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(b))
            .addr("198.18.0.2/24"),
    )
    .unwrap();
    net
}

fn ping(net: &mut Network, from: &str, to: Ipv4Addr, count: u16) -> Arc<PingSocket> {
    let h = net.host(from).unwrap().shared().clone();
    let sock = h.ping_socket(to, 56);
    for seq in 1..=count {
        let (s, h) = (Arc::clone(&sock), Arc::clone(&h));
        net.after(
            Duration::from_millis(u64::from(seq - 1) * 1000),
            move |_| {
                h.clone().run_on(0, move |ctx| {
                    let _ = s.send(ctx, seq);
                });
            },
        );
    }
    sock
}

#[test]
fn ping_between_two_hosts_with_exact_counters() {
    let mut net = pair(1, LinkConfig::default());
    let sock = ping(&mut net, "h1", Ipv4Addr::new(198, 18, 0, 2), 3);
    net.run_for(Duration::from_secs(3)).unwrap();
    let rep = sock.report();
    assert_eq!((rep.transmitted, rep.received()), (3, 3), "{rep}");
    assert!(sock.send_errors().is_empty());
    for r in &rep.replies {
        assert_eq!(
            (r.ttl, r.bytes, r.from),
            (64, 64, Ipv4Addr::new(198, 18, 0, 2))
        );
    }

    for (name, arp_rx) in [("h1", 1), ("h2", 1)] {
        let h = net.host(name).unwrap();
        let m = h.shared().mibs.snapshot();
        // 3 ICMP datagrams plus nothing else at the IP layer.
        assert_eq!(m.get(IpMib::InReceives), 3, "{name}");
        assert_eq!(m.get(IpMib::InDelivers), 3, "{name}");
        assert_eq!(m.get(IpMib::OutRequests), 3, "{name}");
        assert_eq!(m.get(IcmpMib::InMsgs), 3, "{name}");
        assert_eq!(m.get(IcmpMib::OutMsgs), 3, "{name}");
        // Every frame a host received: 3 ICMP + the ARP request or reply.
        let st = h.shared().dev("eth0").unwrap().dev_get_stats();
        assert_eq!(st.rx_packets, 3 + arp_rx, "{name}");
        assert_eq!(st.tx_packets, 3 + 1, "{name}");
        let ss: u32 = (0..2)
            .map(|c| h.shared().softnet.softnet_stat_cpu(c).unwrap().processed)
            .sum();
        assert_eq!(u64::from(ss), 3 + arp_rx, "{name}");
    }
    let h1 = net.host("h1").unwrap().shared().mibs.snapshot();
    assert_eq!(h1.icmpmsg(netcore::IcmpMsgDir::Out, 8), 3);
    assert_eq!(h1.icmpmsg(netcore::IcmpMsgDir::In, 0), 3);
    let neigh = net.host("h1").unwrap().report(&Report::IpNeigh).unwrap();
    assert!(
        neigh.starts_with("198.18.0.2 dev eth0 lladdr 02:"),
        "{neigh}"
    );
}

fn routed(seed: u64) -> Network {
    let mut net = Network::new(seed);
    let (a, ra) = net.wire("w0", LinkConfig::default()).unwrap();
    let (rb, b) = net.wire("w1", LinkConfig::default()).unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(1)
            .nic(NicConfig::new().phy(a))
            .addr("198.18.0.1/24")
            .route("default via 198.18.0.254"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("r")
            .cpus(2)
            .nic(NicConfig::new().phy(ra))
            .addr("198.18.0.254/24")
            .nic(NicConfig::new().phy(rb))
            .addr("198.18.1.254/24")
            .sysctl("net.ipv4.ip_forward", "1"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(1)
            .nic(NicConfig::new().phy(b))
            .addr("198.18.1.2/24")
            .route("default via 198.18.1.254"),
    )
    .unwrap();
    net
}

#[test]
fn ping_through_a_router_with_exact_counters() {
    let mut net = routed(5);
    let sock = ping(&mut net, "h1", Ipv4Addr::new(198, 18, 1, 2), 2);
    net.run_for(Duration::from_secs(2)).unwrap();
    let rep = sock.report();
    assert_eq!((rep.transmitted, rep.received()), (2, 2), "{rep}");
    assert!(rep.replies.iter().all(|r| r.ttl == 63), "{rep}");

    let r = net.host("r").unwrap().shared().mibs.snapshot();
    assert_eq!(r.get(IpMib::InReceives), 4);
    assert_eq!(r.get(IpMib::ForwDatagrams), 4);
    assert_eq!(r.get(IpMib::InDelivers), 0);
    assert_eq!(r.get(IcmpMib::InMsgs), 0);
    let rh = net.host("r").unwrap();
    for dev in ["eth0", "eth1"] {
        let st = rh.shared().dev(dev).unwrap().dev_get_stats();
        // Two datagrams each way, plus one ARP exchange per side.
        assert_eq!((st.rx_packets, st.tx_packets), (3, 3), "{dev}");
    }
    let h2 = net.host("h2").unwrap().shared().mibs.snapshot();
    assert_eq!(h2.get(IcmpMib::InMsgs), 2);
    assert_eq!(h2.get(IcmpMib::OutMsgs), 2);
    let route = net.host("h1").unwrap().report(&Report::IpRoute).unwrap();
    assert!(
        route.starts_with("default via 198.18.0.254 dev eth0"),
        "{route}"
    );
}

#[test]
fn a_ping_to_an_unroutable_address_fails_with_the_errno() {
    let mut net = pair(1, LinkConfig::default());
    let sock = ping(&mut net, "h1", Ipv4Addr::new(198, 19, 9, 9), 1);
    net.run_for(Duration::from_millis(10)).unwrap();
    assert_eq!(sock.send_errors(), vec![(1, netcore::Errno::HostUnreach)]);
    let m = net.host("h1").unwrap().shared().mibs.snapshot();
    assert_eq!(m.get(IpMib::OutNoRoutes), 1);
}

/// Reverse-path filtering on the router (`rp_filter`, RFC 3704): h1 sends
/// to h2 from two extra addresses, 198.18.1.77 (in the subnet of the
/// router's *other* link) and 198.19.200.5 (no route back at all). With
/// the filter off both are forwarded; strict (1) drops both, the first
/// because the route back leaves through another device; loose (2)
/// forwards the first (some route back exists) and drops the second.
/// Drops count `IPReversePathFilter`.
#[test]
fn the_router_s_reverse_path_filter_drops_sources_it_would_not_route_back() {
    use netcore::LinuxMib;
    use netstack::UdpSocket;
    for (mode, forwarded, filtered) in [("0", 2, 0), ("1", 0, 2), ("2", 1, 1)] {
        let mut net = Network::new(8);
        let (a, ra) = net.wire("w0", LinkConfig::default()).unwrap();
        let (rb, b) = net.wire("w1", LinkConfig::default()).unwrap();
        net.add_host(
            Host::builder()
                .name("h1")
                .nic(NicConfig::new().phy(a))
                .addr("198.18.0.1/24")
                .addr("198.18.1.77/32")
                .addr("198.19.200.5/32")
                .route("default via 198.18.0.254"),
        )
        .unwrap();
        net.add_host(
            Host::builder()
                .name("r")
                .nic(NicConfig::new().phy(ra))
                .addr("198.18.0.254/24")
                .nic(NicConfig::new().phy(rb))
                .addr("198.18.1.254/24")
                .sysctl("net.ipv4.ip_forward", "1")
                .sysctl("net.ipv4.conf.all.rp_filter", mode),
        )
        .unwrap();
        net.add_host(
            Host::builder()
                .name("h2")
                .nic(NicConfig::new().phy(b))
                .addr("198.18.1.2/24")
                .route("default via 198.18.1.254"),
        )
        .unwrap();
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        for src in ["198.18.1.77:4000", "198.19.200.5:4000"] {
            let s = UdpSocket::bind(&h1, src).unwrap();
            net.app("h1", || s.send_to(b"x", "198.18.1.2:9"))
                .unwrap()
                .unwrap();
            net.run_for(Duration::from_millis(20)).unwrap();
        }
        let r = net.host("r").unwrap().shared().mibs.snapshot();
        assert_eq!(r.get(IpMib::ForwDatagrams), forwarded, "rp_filter={mode}");
        let rpf = net
            .host("r")
            .unwrap()
            .shared()
            .mibs
            .get(LinuxMib::IpRpFilter);
        assert_eq!(rpf, filtered, "rp_filter={mode}");
    }
}
