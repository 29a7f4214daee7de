//! Hosts joined by a fake wire at the device level, in virtual time:
//! ARP, ping, forwarding, fragmentation, reassembly timeouts, netfilter.

use std::net::Ipv4Addr;

use ipv4::testutil::TestNetwork;
use netcore::{IcmpMib, IcmpMsgDir, IpExtMib, IpMib, Sysctl};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Two hosts on one segment: 198.18.0.1 (host 0) and 198.18.0.2 (host 1).
fn pair() -> TestNetwork {
    let mut n = TestNetwork::new();
    let a = n.add_host(Sysctl::new());
    let b = n.add_host(Sysctl::new());
    let ia = n.hosts[a].add_device(1, 1500, ip("198.18.0.1"), 24);
    let ib = n.hosts[b].add_device(2, 1500, ip("198.18.0.2"), 24);
    n.connect(&[(a, ia), (b, ib)]);
    n
}

#[test]
fn ping_resolves_arp_then_echo_request_and_reply_with_exact_counters() {
    let mut n = pair();
    n.hosts[0].ping(ip("198.18.0.2"), 7, 1, 56).unwrap();
    // The request waits in the neighbour queue; an ARP request is out.
    assert_eq!(n.hosts[0].mib(IpMib::OutRequests), 1);
    n.run_until_idle();
    // ARP request, ARP reply, echo request, echo reply.
    let types: Vec<u16> = n
        .log
        .iter()
        .map(|(_, _, _, f)| u16::from_be_bytes([f[12], f[13]]))
        .collect();
    assert_eq!(types, [0x0806, 0x0806, 0x0800, 0x0800]);
    let (a, b) = (&n.hosts[0], &n.hosts[1]);
    assert_eq!(b.mib(IpMib::InReceives), 1);
    assert_eq!(b.mib(IpMib::InDelivers), 1);
    assert_eq!(b.mib(IcmpMib::InMsgs), 1);
    assert_eq!(b.icmpmsg(IcmpMsgDir::In, 8), 1);
    assert_eq!(b.icmpmsg(IcmpMsgDir::Out, 0), 1);
    assert_eq!(b.mib(IcmpMib::OutMsgs), 1);
    assert_eq!(b.mib(IpMib::OutRequests), 1);
    assert_eq!(b.mib(IpMib::OutTransmits), 1);
    assert_eq!(a.mib(IpMib::InReceives), 1);
    assert_eq!(a.mib(IpMib::InDelivers), 1);
    assert_eq!(a.icmpmsg(IcmpMsgDir::In, 0), 1);
    assert_eq!(a.mib(IpMib::OutTransmits), 1);
    assert_eq!(a.mib(IpExtMib::OutOctets), 20 + 8 + 56);
    assert_eq!(b.mib(IpExtMib::InOctets), 20 + 8 + 56);
    // The reply carries the request's identifier, sequence and data.
    let reply = &n.log[3].3;
    assert_eq!(&reply[14 + 12..14 + 20], &[198, 18, 0, 2, 198, 18, 0, 1]);
    assert_eq!(reply[34], 0);
    assert_eq!(&reply[38..42], &[0, 7, 0, 1]);
}
