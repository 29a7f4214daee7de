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

use std::sync::Arc;

use ipv4::testutil::{RecordingProtocol, TestIpHost};
use ipv4::{InetSock, IpPmtudisc, MAX_IP_HEADROOM, NetProtocol, ip_build_and_send_pkt};
use netcore::{Clock, Duration, Errno, SkBuff};
use netfilter::{NF_IP_PRI_FILTER, NfHookReg, NfInetHooks, NfVerdict};

/// Registers a recording transport on protocol 253 of `host`.
fn recorder(host: &TestIpHost, refuse: bool) -> Arc<RecordingProtocol> {
    let p = Arc::new(RecordingProtocol {
        refuse,
        ..RecordingProtocol::default()
    });
    let dynp: Arc<dyn NetProtocol<_>> = p.clone();
    host.ipv4.inet_add_protocol(dynp, 253).unwrap();
    p
}

/// Sends `len` bytes of protocol 253 from `host` to `daddr`, the socket
/// adjusted by `f`; runs the host.
fn send(
    host: &mut TestIpHost,
    daddr: Ipv4Addr,
    len: usize,
    f: impl FnOnce(&mut InetSock),
) -> Result<Ipv4Addr, Errno> {
    let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
    let skb = SkBuff::from_slice(&host.pool, MAX_IP_HEADROOM, &payload).unwrap();
    let mut sk = InetSock::new(253, &host.sysctl);
    f(&mut sk);
    let r = ip_build_and_send_pkt(&mut host.cpu, skb, &mut sk, Ipv4Addr::UNSPECIFIED, daddr);
    host.run_until_idle();
    r
}

fn forwarding() -> Sysctl {
    let s = Sysctl::new();
    s.set_int(Sysctl::IP_FORWARD, 1).unwrap();
    s
}

/// A (198.18.1.2) — R (198.18.1.1 | 198.18.2.1, forwarding) — B (198.18.2.2);
/// R's second link has MTU `mtu2`. Host indices 0 (A), 1 (R), 2 (B).
fn routed(mtu2: u32) -> TestNetwork {
    let mut n = TestNetwork::new();
    let a = n.add_host(Sysctl::new());
    let r = n.add_host(forwarding());
    let b = n.add_host(Sysctl::new());
    let ia = n.hosts[a].add_device(1, 1500, ip("198.18.1.2"), 24);
    let r0 = n.hosts[r].add_device(3, 1500, ip("198.18.1.1"), 24);
    let r1 = n.hosts[r].add_device(3, mtu2, ip("198.18.2.1"), 24);
    let ib = n.hosts[b].add_device(2, 1500, ip("198.18.2.2"), 24);
    n.hosts[a].route_add(ip("0.0.0.0"), 0, ip("198.18.1.1"));
    n.hosts[b].route_add(ip("0.0.0.0"), 0, ip("198.18.2.1"));
    n.connect(&[(a, ia), (r, r0)]);
    n.connect(&[(r, r1), (b, ib)]);
    n
}

fn ipv4_frames(n: &TestNetwork, from_host: usize) -> Vec<Vec<u8>> {
    n.log
        .iter()
        .filter(|(_, h, _, f)| *h == from_host && f[12..14] == [8, 0])
        .map(|(_, _, _, f)| f[14..].to_vec())
        .collect()
}

#[test]
fn ping_both_ways_second_needs_no_arp() {
    let mut n = pair();
    n.hosts[0].ping(ip("198.18.0.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    assert_eq!(n.log.len(), 4);
    // B learned A from A's request (STALE): its own ping goes straight out.
    n.hosts[1].ping(ip("198.18.0.1"), 2, 1, 8).unwrap();
    n.run_until_idle();
    assert_eq!(n.log.len(), 6, "echo request and reply only");
    for h in &n.hosts {
        assert_eq!(h.icmpmsg(IcmpMsgDir::In, 8), 1);
        assert_eq!(h.icmpmsg(IcmpMsgDir::In, 0), 1);
        assert_eq!(
            h.icmpmsg(IcmpMsgDir::Out, 8),
            0,
            "pings are built outside ICMP"
        );
        assert_eq!(h.icmpmsg(IcmpMsgDir::Out, 0), 1);
        assert_eq!(h.mib(IpMib::InReceives), 2);
        assert_eq!(h.mib(IpMib::InDelivers), 2);
        assert_eq!(h.mib(IpMib::OutRequests), 2);
        assert_eq!(h.mib(IpMib::OutTransmits), 2);
        assert_eq!(h.mib(IcmpMib::InMsgs), 2);
        assert_eq!(h.mib(IcmpMib::InErrors), 0);
    }
}

#[test]
fn router_forwards_between_subnets_decrementing_ttl() {
    let mut n = routed(1500);
    n.hosts[0].ping(ip("198.18.2.2"), 9, 1, 32).unwrap();
    n.run_until_idle();
    let at_b = ipv4_frames(&n, 1);
    // R forwarded the request (to B) and the reply (to A).
    assert_eq!(at_b.len(), 2);
    let req = at_b.iter().find(|f| f[16..20] == [198, 18, 2, 2]).unwrap();
    let sent = ipv4_frames(&n, 0);
    assert_eq!(sent[0][8], 64);
    assert_eq!(req[8], 63, "TTL decremented");
    assert_eq!(wire::ip_fast_csum(&req[..20]), 0, "checksum updated");
    let r = &n.hosts[1];
    assert_eq!(r.mib(IpMib::ForwDatagrams), 2);
    assert_eq!(r.mib(IpMib::InReceives), 2);
    assert_eq!(r.mib(IpMib::InDelivers), 0);
    assert_eq!(r.mib(IpMib::OutRequests), 0);
    assert_eq!(r.mib(IpMib::OutTransmits), 2);
    assert_eq!(n.hosts[0].icmpmsg(IcmpMsgDir::In, 0), 1);
    assert_eq!(n.hosts[2].icmpmsg(IcmpMsgDir::In, 8), 1);
}

#[test]
fn ttl_one_gets_time_exceeded_back_to_the_senders_transport() {
    let mut n = routed(1500);
    let rec = recorder(&n.hosts[0], false);
    n.hosts[0].ping(ip("198.18.2.2"), 1, 1, 8).unwrap(); // resolve ARP everywhere
    n.run_until_idle();
    send(&mut n.hosts[0], ip("198.18.2.2"), 40, |sk| {
        sk.uc_ttl = Some(1);
    })
    .unwrap();
    n.run_until_idle();
    let r = &n.hosts[1];
    assert_eq!(r.mib(IpMib::InHdrErrors), 1);
    assert_eq!(r.icmpmsg(IcmpMsgDir::Out, 11), 1);
    assert_eq!(r.mib(IpMib::ForwDatagrams), 2, "only the ping went through");
    let errs = rec.errors.lock();
    assert_eq!(errs.len(), 1);
    let (t, code, _, quoted) = &errs[0];
    assert_eq!((*t, *code), (11, 0));
    assert_eq!(&quoted[16..20], &[198, 18, 2, 2]);
    assert_eq!(quoted[9], 253);
    assert_eq!(n.hosts[0].icmpmsg(IcmpMsgDir::In, 11), 1);
}

#[test]
fn df_datagram_larger_than_the_next_link_gets_frag_needed_with_its_mtu() {
    let mut n = routed(1000);
    let rec = recorder(&n.hosts[0], false);
    n.hosts[0].ping(ip("198.18.2.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    send(&mut n.hosts[0], ip("198.18.2.2"), 1200, |sk| {
        sk.pmtudisc = IpPmtudisc::Do;
    })
    .unwrap();
    n.run_until_idle();
    assert_eq!(n.hosts[1].mib(IpMib::FragFails), 1);
    assert_eq!(n.hosts[1].icmpmsg(IcmpMsgDir::Out, 3), 1);
    let errs = rec.errors.lock();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].0, errs[0].1, errs[0].2), (3, 4, 1000));
    assert_eq!(
        n.hosts[2].mib(IpMib::InReceives),
        1,
        "only the ping arrived"
    );
    // Without DF the router fragments instead.
    drop(errs);
    send(&mut n.hosts[0], ip("198.18.2.2"), 1200, |sk| {
        sk.pmtudisc = IpPmtudisc::Dont;
    })
    .unwrap();
    n.run_until_idle();
    assert_eq!(n.hosts[1].mib(IpMib::FragOKs), 1);
    assert_eq!(n.hosts[1].mib(IpMib::FragCreates), 2);
    assert_eq!(n.hosts[2].mib(IpMib::ReasmOKs), 1);
}

#[test]
fn big_echo_is_fragmented_at_1500_and_reassembled_both_ways() {
    let mut n = pair();
    n.hosts[0].ping(ip("198.18.0.2"), 3, 1, 4000).unwrap();
    n.run_until_idle();
    let (a, b) = (&n.hosts[0], &n.hosts[1]);
    // 4008 bytes of ICMP: 1480 + 1480 + 1048.
    assert_eq!(a.mib(IpMib::FragOKs), 1);
    assert_eq!(a.mib(IpMib::FragCreates), 3);
    assert_eq!(a.mib(IpMib::OutRequests), 1);
    assert_eq!(a.mib(IpMib::OutTransmits), 3);
    assert_eq!(b.mib(IpMib::ReasmReqds), 3);
    assert_eq!(b.mib(IpMib::ReasmOKs), 1);
    assert_eq!(b.mib(IpMib::InDelivers), 1);
    assert_eq!(b.mib(IpMib::FragCreates), 3, "the reply is fragmented too");
    assert_eq!(a.mib(IpMib::ReasmOKs), 1);
    assert_eq!(a.icmpmsg(IcmpMsgDir::In, 0), 1);
    let sizes: Vec<usize> = ipv4_frames(&n, 0).iter().map(Vec::len).collect();
    assert_eq!(sizes, [1500, 1500, 1068]);
}

/// Resolves ARP between the pair, then has A send a 3000-byte datagram of
/// protocol 253 to B and returns its fragments without delivering them.
fn fragments_of_a_send(n: &mut TestNetwork) -> Vec<Vec<u8>> {
    n.hosts[0].ping(ip("198.18.0.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    send(&mut n.hosts[0], ip("198.18.0.2"), 3000, |sk| {
        sk.pmtudisc = IpPmtudisc::Dont;
    })
    .unwrap();
    let frames = n.hosts[0].take_frames(2);
    assert_eq!(frames.len(), 3);
    frames
}

#[test]
fn fragments_out_of_order_and_duplicated_reassemble_once() {
    let mut n = pair();
    let rec = recorder(&n.hosts[1], false);
    let f = fragments_of_a_send(&mut n);
    let b = &mut n.hosts[1];
    for i in [2, 0, 2, 1, 0] {
        let _ = b.receive(2, &f[i]);
    }
    assert_eq!(b.mib(IpMib::ReasmReqds), 5);
    assert_eq!(b.mib(IpMib::ReasmOKs), 1);
    // The last copy of fragment 0 started a new queue, which waits.
    assert_eq!(b.ipv4.with_frags(ipv4::Ipv4Frags::nr_queues), 1);
    let got = rec.delivered.lock();
    assert_eq!(got.len(), 1);
    let want: Vec<u8> = (0..3000).map(|i| (i * 7) as u8).collect();
    assert_eq!(got[0], want);
}

#[test]
fn overlapping_fragment_discards_the_queue() {
    let mut n = pair();
    let rec = recorder(&n.hosts[1], false);
    let f = fragments_of_a_send(&mut n);
    // A copy of fragment 1 moved 8 bytes back overlaps fragment 0.
    let mut bad = f[1].clone();
    let ip = &mut bad[14..34];
    let off = u16::from_be_bytes([ip[6], ip[7]]);
    ip[6..8].copy_from_slice(&(off - 1).to_be_bytes());
    ip[10..12].fill(0);
    let c = wire::ip_fast_csum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let b = &mut n.hosts[1];
    let _ = b.receive(2, &f[0]);
    let _ = b.receive(2, &bad);
    assert_eq!(b.mib(IpExtMib::ReasmOverlaps), 1);
    assert_eq!(b.mib(IpMib::ReasmFails), 1);
    assert!(rec.delivered.lock().is_empty());
}

#[test]
fn lost_fragment_times_out_after_ipfrag_time_with_time_exceeded() {
    let mut n = pair();
    let f = fragments_of_a_send(&mut n);
    let t0 = n.clock.now();
    let _ = n.hosts[1].receive(2, &f[0]);
    let _ = n.hosts[1].receive(2, &f[2]);
    n.advance(Duration::from_secs(29));
    assert_eq!(n.hosts[1].mib(IpMib::ReasmTimeout), 0);
    n.advance(Duration::from_secs(1));
    let b = &n.hosts[1];
    assert_eq!(b.mib(IpMib::ReasmTimeout), 1);
    assert_eq!(b.mib(IpMib::ReasmFails), 1);
    assert_eq!(b.icmpmsg(IcmpMsgDir::Out, 11), 1);
    assert_eq!(n.clock.now(), t0 + Duration::from_secs(30));
    // A hears of it: time exceeded, fragment reassembly.
    assert_eq!(n.hosts[0].icmpmsg(IcmpMsgDir::In, 11), 1);
    let te = ipv4_frames(&n, 1).into_iter().last().unwrap();
    assert_eq!((te[20], te[21]), (11, 1));
}

#[test]
fn netfilter_drop_at_local_in_stops_delivery() {
    let mut n = pair();
    let _handle = n.hosts[1]
        .hooks
        .nf_register_net_hook(NfHookReg::from_fn(
            NfInetHooks::LocalIn,
            NF_IP_PRI_FILTER,
            |skb, _, _| {
                if skb.data().get(9) == Some(&1) {
                    NfVerdict::DROP
                } else {
                    NfVerdict::Accept
                }
            },
        ))
        .unwrap();
    n.hosts[0].ping(ip("198.18.0.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    let b = &n.hosts[1];
    assert_eq!(b.mib(IpMib::InReceives), 1);
    assert_eq!(b.mib(IpMib::InDelivers), 0);
    assert_eq!(b.mib(IcmpMib::InMsgs), 0);
    let st = b.hooks.stats(NfInetHooks::LocalIn);
    assert_eq!((st.packets, st.dropped), (1, 1));
    assert_eq!(n.hosts[0].icmpmsg(IcmpMsgDir::In, 0), 0, "no reply");
}

#[test]
fn not_for_us_without_forwarding_counts_in_addr_errors() {
    let mut n = pair();
    n.hosts[0].route_add(ip("198.18.5.0"), 24, ip("198.18.0.2"));
    n.hosts[0].ping(ip("198.18.5.5"), 1, 1, 8).unwrap();
    n.run_until_idle();
    let b = &n.hosts[1];
    assert_eq!(b.mib(IpMib::InReceives), 1);
    assert_eq!(b.mib(IpMib::InAddrErrors), 1);
    assert_eq!(b.mib(IcmpMib::OutMsgs), 0, "silent with forwarding off");
}

#[test]
fn unknown_protocol_gets_protocol_unreachable() {
    let mut n = pair();
    let rec = recorder(&n.hosts[0], false);
    send(&mut n.hosts[0], ip("198.18.0.2"), 16, |_| {}).unwrap();
    n.run_until_idle();
    assert_eq!(n.hosts[1].mib(IpMib::InUnknownProtos), 1);
    assert_eq!(n.hosts[1].mib(IpMib::InDelivers), 0);
    let errs = rec.errors.lock();
    assert_eq!((errs[0].0, errs[0].1), (3, 2));
}

#[test]
fn refused_datagram_gets_port_unreachable_and_counts_in_delivers() {
    let mut n = pair();
    let rec = recorder(&n.hosts[0], false);
    let _b = recorder(&n.hosts[1], true);
    send(&mut n.hosts[0], ip("198.18.0.2"), 16, |_| {}).unwrap();
    n.run_until_idle();
    assert_eq!(n.hosts[1].mib(IpMib::InDelivers), 1);
    assert_eq!(n.hosts[1].icmpmsg(IcmpMsgDir::Out, 3), 1);
    let errs = rec.errors.lock();
    assert_eq!((errs[0].0, errs[0].1), (3, 3));
    assert_eq!(errs[0].3.len(), 20 + 16, "the whole datagram is quoted");
}

#[test]
fn unresolved_neighbour_fails_after_three_probes_with_host_unreachable() {
    let mut n = pair();
    let rec = recorder(&n.hosts[0], false);
    send(&mut n.hosts[0], ip("198.18.0.9"), 16, |_| {}).unwrap();
    n.advance(Duration::from_secs(10));
    let arp: Vec<_> = n
        .log
        .iter()
        .filter(|(_, h, _, f)| *h == 0 && f[12..14] == [8, 6])
        .map(|(t, _, _, _)| t.as_millis())
        .collect();
    assert_eq!(arp, [0, 1000, 2000], "mcast_solicit probes a second apart");
    let errs = rec.errors.lock();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].0, errs[0].1), (3, 1));
    assert_eq!(n.hosts[0].icmpmsg(IcmpMsgDir::Out, 3), 1);
}

#[test]
fn loopback_delivers_to_own_addresses() {
    let mut n = pair();
    n.hosts[0].ping(ip("127.0.0.1"), 1, 1, 8).unwrap();
    n.hosts[0].ping(ip("198.18.0.1"), 1, 2, 8).unwrap();
    n.run_until_idle();
    let a = &n.hosts[0];
    assert_eq!(a.icmpmsg(IcmpMsgDir::In, 8), 2);
    assert_eq!(a.icmpmsg(IcmpMsgDir::In, 0), 2);
    assert_eq!(a.mib(IpMib::InReceives), 4);
    assert_eq!(a.mib(IpMib::OutTransmits), 4);
    assert!(n.log.is_empty(), "nothing on the wire");
}

#[test]
fn echo_ignore_all_and_broadcast_echo_are_honoured() {
    let mut n = pair();
    n.hosts[1]
        .sysctl
        .set_int(Sysctl::ICMP_ECHO_IGNORE_ALL, 1)
        .unwrap();
    n.hosts[0].ping(ip("198.18.0.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    assert_eq!(n.hosts[1].icmpmsg(IcmpMsgDir::In, 8), 1);
    assert_eq!(n.hosts[1].icmpmsg(IcmpMsgDir::Out, 0), 0);
    // A directed-broadcast echo is dropped as an ICMP error by default.
    n.hosts[0].ping(ip("198.18.0.255"), 1, 2, 8).unwrap();
    n.run_until_idle();
    let b = &n.hosts[1];
    assert_eq!(b.icmpmsg(IcmpMsgDir::In, 8), 2);
    assert_eq!(b.mib(IcmpMib::InErrors), 1);
    assert_eq!(b.mib(IpExtMib::InBcastPkts), 1);
    assert_eq!(n.hosts[0].mib(IpExtMib::OutBcastPkts), 1);
}

/// A queue handler that keeps what it is given.
#[derive(Default)]
struct Keep(parking_lot::Mutex<Vec<netfilter::NfQueueEntry<ipv4::testutil::Ipv4TestCtx>>>);

impl netfilter::NfQueueHandler<ipv4::testutil::Ipv4TestCtx> for Keep {
    fn outfn(
        &self,
        entry: netfilter::NfQueueEntry<ipv4::testutil::Ipv4TestCtx>,
        _queuenum: u16,
        _ctx: &mut ipv4::testutil::Ipv4TestCtx,
    ) -> Result<(), (netfilter::NfQueueEntry<ipv4::testutil::Ipv4TestCtx>, Errno)> {
        self.0.lock().push(entry);
        Ok(())
    }
}

#[test]
fn queued_datagram_continues_where_it_stopped_when_reinjected() {
    let mut n = pair();
    let keep = Arc::new(Keep::default());
    n.hosts[1].hooks.nf_register_queue_handler(keep.clone());
    let _h = n.hosts[1]
        .hooks
        .nf_register_net_hook(NfHookReg::from_fn(
            NfInetHooks::LocalIn,
            NF_IP_PRI_FILTER,
            |_, _, _| NfVerdict::Queue {
                num: 0,
                bypass: false,
            },
        ))
        .unwrap();
    n.hosts[0].ping(ip("198.18.0.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    assert_eq!(n.hosts[1].mib(IcmpMib::InMsgs), 0, "held in the queue");
    let entry = keep.0.lock().pop().unwrap();
    assert_eq!(entry.state.hook, NfInetHooks::LocalIn);
    let b = &mut n.hosts[1];
    let r = ipv4::ip_nf_reinject(&mut b.cpu, entry, NfVerdict::Accept);
    assert_eq!(r, softnet::NetRx::Success);
    n.run_until_idle();
    assert_eq!(n.hosts[1].mib(IpMib::InDelivers), 1);
    assert_eq!(n.hosts[0].icmpmsg(IcmpMsgDir::In, 0), 1, "the reply came");
}

#[test]
fn local_df_datagram_over_the_mtu_fails_with_emsgsize_and_an_icmp_to_itself() {
    let mut n = pair();
    let rec = recorder(&n.hosts[0], false);
    n.hosts[0].ping(ip("198.18.0.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    let r = send(&mut n.hosts[0], ip("198.18.0.2"), 2000, |sk| {
        sk.pmtudisc = IpPmtudisc::Do;
    });
    assert_eq!(r, Err(Errno::MsgSize));
    n.run_until_idle();
    let a = &n.hosts[0];
    assert_eq!(a.mib(IpMib::FragFails), 1);
    assert_eq!(a.mib(IpMib::FragOKs), 0);
    let errs = rec.errors.lock();
    assert_eq!(errs.len(), 1);
    assert_eq!((errs[0].0, errs[0].1, errs[0].2), (3, 4, 1500));
    assert_eq!(n.hosts[1].mib(IpMib::InReceives), 1, "only the ping left");
}

#[test]
fn no_route_counts_out_no_routes_and_returns_ehostunreach() {
    let mut n = pair();
    let r = send(&mut n.hosts[0], ip("203.0.113.9"), 10, |_| {});
    assert_eq!(r, Err(Errno::HostUnreach));
    assert_eq!(n.hosts[0].mib(IpMib::OutNoRoutes), 1);
    assert_eq!(n.hosts[0].mib(IpMib::OutRequests), 0);
    assert_eq!(n.hosts[0].pool.stats().inflight(), 0);
}

#[test]
fn icmp_with_a_bad_checksum_is_counted_and_dropped() {
    let mut n = pair();
    n.hosts[0].ping(ip("198.18.0.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    let mut frame = n
        .log
        .iter()
        .find(|(_, h, _, f)| *h == 0 && f[12..14] == [8, 0])
        .unwrap()
        .3
        .clone();
    frame[14 + 20 + 2] ^= 0x55; // ICMP checksum
    let b = &mut n.hosts[1];
    let _ = b.receive(2, &frame);
    assert_eq!(b.mib(IcmpMib::InMsgs), 2);
    assert_eq!(b.mib(IcmpMib::InCsumErrors), 1);
    assert_eq!(b.mib(IcmpMib::InErrors), 1);
    assert_eq!(
        b.icmpmsg(IcmpMsgDir::Out, 0),
        1,
        "only the first was answered"
    );
}

#[test]
fn arp_for_another_host_is_not_answered_and_creates_nothing() {
    let mut n = pair();
    let frame = softnet::testutil::arp_request_frame([198, 18, 0, 7], [198, 18, 0, 8]);
    let b = &mut n.hosts[1];
    let _ = b.receive(2, &frame);
    assert!(b.take_frames(2).is_empty());
    assert_eq!(b.ipv4.with_arp_tbl(|t| t.len()), 0);
    // A request for B's address is answered to the asker's address.
    let frame = softnet::testutil::arp_request_frame([198, 18, 0, 7], [198, 18, 0, 2]);
    let _ = b.receive(2, &frame);
    let out = b.take_frames(2);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..6], &[0x02, 0, 0, 0, 0, 0x01]);
    assert_eq!(u16::from_be_bytes([out[0][20], out[0][21]]), 2, "ARP reply");
    assert_eq!(&out[0][28..32], &[198, 18, 0, 2]);
    assert_eq!(
        b.ipv4.with_arp_tbl(|t| t.len()),
        1,
        "the asker is now STALE"
    );
}

#[test]
fn destroying_a_device_removes_its_addresses_routes_and_neighbours() {
    let mut n = routed(1500);
    n.hosts[1].ping(ip("198.18.2.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    let r = &mut n.hosts[1];
    r.route_add(ip("198.18.8.0"), 24, ip("198.18.2.2"));
    assert_eq!(r.ipv4.with_arp_tbl(|t| t.len()), 1);
    let r = &mut n.hosts[1];
    let ipv4 = std::sync::Arc::clone(&r.ipv4);
    ipv4.inetdev_destroy(&mut r.cpu, 3).unwrap();
    assert_eq!(ipv4.with_arp_tbl(|t| t.len()), 0);
    assert!(ipv4.dev(3).is_none());
    let routes = ipv4.with_netns(|n| n.ip_route_show(ipv4::RouteTable::All));
    assert!(!routes.contains("198.18.2."), "{routes}");
    assert!(!routes.contains("198.18.8."), "{routes}");
    assert!(routes.contains("198.18.1.0/24 dev eth0"), "{routes}");
    assert_eq!(ipv4.inetdev_destroy(&mut r.cpu, 3), Err(Errno::NoDev));
    assert_eq!(ipv4.inetdev_destroy(&mut r.cpu, 1), Err(Errno::Inval));
    // Sending there now has no route.
    assert_eq!(
        send(r, ip("198.18.2.2"), 8, |_| {}),
        Err(Errno::HostUnreach)
    );
}

#[test]
fn connected_socket_caches_its_route_until_the_tables_change() {
    let mut n = pair();
    let rec = recorder(&n.hosts[1], false);
    let a = &mut n.hosts[0];
    let mut sk = InetSock::new(253, &a.sysctl);
    sk.daddr = ip("198.18.0.2");
    let xmit = |a: &mut TestIpHost, sk: &mut InetSock| {
        let skb = SkBuff::from_slice(&a.pool, MAX_IP_HEADROOM, b"segment").unwrap();
        ipv4::ip_queue_xmit(&mut a.cpu, sk, skb).unwrap();
        a.run_until_idle();
    };
    xmit(a, &mut sk);
    let (rt, genid) = sk.dst_cache.unwrap();
    assert_eq!((rt.oif, rt.mtu, sk.saddr), (2, 1500, ip("198.18.0.1")));
    xmit(a, &mut sk);
    assert_eq!(sk.dst_cache.unwrap().1, genid, "still valid");
    a.route_add(ip("198.18.9.0"), 24, ip("198.18.0.2"));
    assert!(sk.sk_dst_check(a.ipv4.rt_genid()).is_none(), "flushed");
    xmit(a, &mut sk);
    assert!(sk.dst_cache.unwrap().1 > genid);
    n.run_until_idle();
    // The connected socket's own id counter numbers its DF datagrams.
    let ids: Vec<u16> = ipv4_frames(&n, 0)
        .iter()
        .map(|f| u16::from_be_bytes([f[4], f[5]]))
        .collect();
    assert_eq!(ids, [0, 1, 2]);
    assert_eq!(rec.delivered.lock().len(), 3);
}

#[test]
fn broadcast_ping_on_a_shared_segment_is_answered_by_every_willing_host() {
    let mut n = TestNetwork::new();
    let willing = || {
        let s = Sysctl::new();
        s.set_int(Sysctl::ICMP_ECHO_IGNORE_BROADCASTS, 0).unwrap();
        s
    };
    let a = n.add_host(Sysctl::new());
    let b = n.add_host(willing());
    let c = n.add_host(willing());
    let ia = n.hosts[a].add_device(1, 1500, ip("198.18.0.1"), 24);
    let ib = n.hosts[b].add_device(2, 1500, ip("198.18.0.2"), 24);
    let ic = n.hosts[c].add_device(3, 1500, ip("198.18.0.3"), 24);
    n.connect(&[(a, ia), (b, ib), (c, ic)]);
    n.hosts[a].ping(ip("198.18.0.255"), 5, 1, 8).unwrap();
    n.run_until_idle();
    assert_eq!(n.hosts[a].mib(IpExtMib::OutBcastPkts), 1);
    for h in [b, c] {
        assert_eq!(n.hosts[h].mib(IpExtMib::InBcastPkts), 1);
        assert_eq!(n.hosts[h].icmpmsg(IcmpMsgDir::Out, 0), 1);
    }
    assert_eq!(n.hosts[a].icmpmsg(IcmpMsgDir::In, 0), 2);
    // Each reply comes from the replier's own address, not the broadcast.
    let sources: Vec<[u8; 4]> = [b, c]
        .iter()
        .map(|&h| {
            let f = ipv4_frames(&n, h).pop().unwrap();
            [f[12], f[13], f[14], f[15]]
        })
        .collect();
    assert_eq!(sources, [[198, 18, 0, 2], [198, 18, 0, 3]]);
}

#[test]
fn local_out_and_forward_hooks_drop_with_their_errno_and_counters() {
    let mut n = routed(1500);
    n.hosts[0].ping(ip("198.18.2.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    let _out = n.hosts[0]
        .hooks
        .nf_register_net_hook(NfHookReg::from_fn(
            NfInetHooks::LocalOut,
            NF_IP_PRI_FILTER,
            |skb, _, _| {
                if skb.data().get(9) == Some(&253) {
                    NfVerdict::Drop(Some(Errno::Acces))
                } else {
                    NfVerdict::Accept
                }
            },
        ))
        .unwrap();
    assert_eq!(
        send(&mut n.hosts[0], ip("198.18.2.2"), 8, |_| {}),
        Err(Errno::Acces)
    );
    assert_eq!(
        n.hosts[0].mib(IpMib::OutRequests),
        2,
        "counted before the hook"
    );
    assert_eq!(n.hosts[0].mib(IpMib::OutTransmits), 1);
    let _fwd = n.hosts[1]
        .hooks
        .nf_register_net_hook(NfHookReg::from_fn(
            NfInetHooks::Forward,
            NF_IP_PRI_FILTER,
            |_, _, _| NfVerdict::DROP,
        ))
        .unwrap();
    n.hosts[0].ping(ip("198.18.2.2"), 1, 2, 8).unwrap();
    n.run_until_idle();
    let r = &n.hosts[1];
    assert_eq!(r.hooks.stats(NfInetHooks::Forward).dropped, 1);
    assert_eq!(r.mib(IpMib::ForwDatagrams), 2, "only the first exchange");
    assert_eq!(n.hosts[2].mib(IpMib::InReceives), 1);
}

/// An Ethernet frame from B to A carrying an ICMP message of `icmp_type`,
/// `code` and 4-byte `rest` that quotes a protocol-253 datagram A sent.
fn icmp_to_a(n: &TestNetwork, icmp_type: u8, code: u8, rest: [u8; 4]) -> Vec<u8> {
    let mut quoted = vec![0x45, 0, 0, 36, 0, 1, 0x40, 0, 64, 253, 0, 0];
    quoted.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
    let c = wire::ip_fast_csum(&quoted);
    quoted[10..12].copy_from_slice(&c.to_be_bytes());
    quoted.extend_from_slice(&[0xaa; 16]);
    let mut icmp = vec![icmp_type, code, 0, 0];
    icmp.extend_from_slice(&rest);
    icmp.extend_from_slice(&quoted);
    let c = wire::ip_compute_csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0xc0, 0, 0, 0, 9, 0, 0, 64, 1, 0, 0];
    ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[198, 18, 0, 2, 198, 18, 0, 1]);
    let c = wire::ip_fast_csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = n.hosts[0].port(2).addr.0.to_vec();
    f.extend_from_slice(&n.hosts[1].port(2).addr.0);
    f.extend_from_slice(&[8, 0]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&icmp);
    f
}

#[test]
fn icmp_errors_reach_the_quoted_protocols_err_handler_with_their_info() {
    let mut n = pair();
    let rec = recorder(&n.hosts[0], false);
    let pp = icmp_to_a(&n, 12, 0, [20, 0, 0, 0]);
    let fneed = icmp_to_a(&n, 3, 4, [0, 0, 0x05, 0x78]);
    let bad_code = icmp_to_a(&n, 3, 16, [0; 4]);
    let a = &mut n.hosts[0];
    for f in [&pp, &fneed, &bad_code] {
        let _ = a.receive(2, f);
    }
    let errs = rec.errors.lock();
    let got: Vec<(u8, u8, u32)> = errs.iter().map(|e| (e.0, e.1, e.2)).collect();
    assert_eq!(
        got,
        [(12, 0, 20), (3, 4, 1400)],
        "unknown codes are ignored"
    );
    assert_eq!(&errs[0].3[..2], &[0x45, 0]);
    assert_eq!(errs[0].3.len(), 36);
    assert_eq!(a.icmpmsg(IcmpMsgDir::In, 12), 1);
    assert_eq!(a.icmpmsg(IcmpMsgDir::In, 3), 2);
    assert_eq!(a.mib(IcmpMib::InErrors), 0);
    // With ip_no_pmtu_disc=1 the MTU is not passed on.
    a.sysctl.set_int(Sysctl::IP_NO_PMTU_DISC, 1).unwrap();
    drop(errs);
    let _ = a.receive(2, &fneed);
    assert_eq!(rec.errors.lock()[2].2, 0);
}

#[test]
fn ip_ids_follow_ip_select_ident_segs() {
    let mut n = pair();
    n.hosts[0].ping(ip("198.18.0.2"), 1, 1, 8).unwrap();
    n.run_until_idle();
    let a = &mut n.hosts[0];
    // Unconnected with DF (IP_PMTUDISC_WANT and it fits): id 0.
    send(a, ip("198.18.0.2"), 10, |_| {}).unwrap();
    // Without DF: the per-destination counter, consecutive within a jiffy.
    send(a, ip("198.18.0.2"), 10, |sk| sk.pmtudisc = IpPmtudisc::Dont).unwrap();
    send(a, ip("198.18.0.2"), 10, |sk| sk.pmtudisc = IpPmtudisc::Dont).unwrap();
    n.run_until_idle();
    let frames = ipv4_frames(&n, 0);
    let last3: Vec<(u16, bool)> = frames[frames.len() - 3..]
        .iter()
        .map(|f| (u16::from_be_bytes([f[4], f[5]]), f[6] & 0x40 != 0))
        .collect();
    assert_eq!(last3[0], (0, true));
    assert!(!last3[1].1 && !last3[2].1);
    assert_eq!(last3[2].0, last3[1].0.wrapping_add(1));
}

/// A host with `eth0` = 198.18.0.1/24 and 198.18.0.9/24 (secondary), an
/// ARP pcap tap on every device and `conf.eth0.arp_notify` = `arp_notify`;
/// the device event `event` is delivered. Returns the ARP frames the tap
/// saw and the count `inetdev_event` returned.
fn garp_capture(arp_notify: i32, event: ipv4::NetdevEvent) -> (Vec<Vec<u8>>, usize) {
    use ipv4::{DevconfKnob, DevconfTarget};
    use softnet::{PacketType, PcapFilter, PcapTap};
    let clock = netcore::VirtualClock::new();
    let mut h = TestIpHost::new(&clock, 7);
    let eth0 = h.add_device(1, 1500, ip("198.18.0.1"), 24);
    let tap =
        Arc::new(PcapTap::new(Vec::new(), PcapFilter::parse_expr("arp").unwrap(), None).unwrap());
    let dyn_tap: Arc<dyn PacketType<_>> = tap.clone();
    h.softnet.dev_add_pack(dyn_tap);
    h.ipv4
        .with_netns_mut(|n| {
            n.devices
                .devinet_conf_set(DevconfTarget::Dev(eth0), DevconfKnob::ArpNotify, arp_notify)
        })
        .unwrap();
    // Adding an address to a device that is up announces nothing, even
    // with arp_notify on (Linux's inet_insert_ifa() never calls ARP).
    h.ipv4
        .with_netns_mut(|n| {
            n.inet_rtm_newaddr(ipv4::InIfaddr::new(eth0, ip("198.18.0.9"), 24, "eth0"))
        })
        .unwrap();
    h.run_until_idle();
    assert_eq!(tap.captured(), 0);
    let sent = ipv4::inetdev_event(&mut h.cpu, eth0, event).unwrap();
    h.run_until_idle();
    let pcap = tap.with_writer(|w| w.clone());
    let (_, records) = softnet::testutil::read_pcap(&pcap).unwrap();
    let frames: Vec<Vec<u8>> = records.into_iter().map(|r| r.data).collect();
    // What the tap saw is what the device put on the wire.
    assert_eq!(h.take_frames(eth0), frames);
    (frames, sent)
}

/// The gratuitous ARP request announcing `addr` from `02:00:00:00:01:02`.
fn garp_bytes(addr: [u8; 4]) -> Vec<u8> {
    let mac = [2, 0, 0, 0, 1, 2];
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&addr);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&addr);
    f
}

#[test]
fn arp_notify_on_announces_every_address_when_the_device_comes_up() {
    let (frames, sent) = garp_capture(1, ipv4::NetdevEvent::Up);
    assert_eq!(sent, 2);
    assert_eq!(
        frames,
        [garp_bytes([198, 18, 0, 1]), garp_bytes([198, 18, 0, 9])]
    );
    let (frames, sent) = garp_capture(1, ipv4::NetdevEvent::ChangeAddr);
    assert_eq!((frames.len(), sent), (2, 2));
}

#[test]
fn arp_notify_off_by_default_sends_nothing_on_up_but_notify_peers_always_does() {
    // Linux's default: off in conf/all and conf/default.
    let d = ipv4::InetDevices::new();
    for t in [ipv4::DevconfTarget::All, ipv4::DevconfTarget::Default] {
        assert_eq!(d.devconf(t).unwrap().arp_notify, 0);
    }
    let (frames, sent) = garp_capture(0, ipv4::NetdevEvent::Up);
    assert!(frames.is_empty());
    assert_eq!(sent, 0);
    let (frames, _) = garp_capture(0, ipv4::NetdevEvent::ChangeAddr);
    assert!(frames.is_empty());
    let (frames, sent) = garp_capture(0, ipv4::NetdevEvent::NotifyPeers);
    assert_eq!(sent, 2);
    assert_eq!(frames[0], garp_bytes([198, 18, 0, 1]));
}

#[test]
fn segment_without_headroom_or_shared_with_a_clone_is_copied_not_corrupted() {
    let mut n = pair();
    let rec = recorder(&n.hosts[1], false);
    let payload: Vec<u8> = (0..64u8).collect();
    // No headroom at all: skb_cow_head() copies for the IP and Ethernet
    // headers.
    let skb = SkBuff::from_slice(&n.hosts[0].pool, 0, &payload).unwrap();
    let mut sk = InetSock::new(253, &n.hosts[0].sysctl);
    ip_build_and_send_pkt(
        &mut n.hosts[0].cpu,
        skb,
        &mut sk,
        Ipv4Addr::UNSPECIFIED,
        ip("198.18.0.2"),
    )
    .unwrap();
    // Room enough, but the buffer is shared with a clone the caller keeps:
    // the clone must still read the bare payload afterwards.
    let skb = SkBuff::from_slice(&n.hosts[0].pool, MAX_IP_HEADROOM, &payload).unwrap();
    let kept = skb.clone();
    ip_build_and_send_pkt(
        &mut n.hosts[0].cpu,
        skb,
        &mut sk,
        Ipv4Addr::UNSPECIFIED,
        ip("198.18.0.2"),
    )
    .unwrap();
    n.run_until_idle();
    assert_eq!(kept.data(), &payload[..]);
    assert_eq!(*rec.delivered.lock(), [payload.clone(), payload]);
    assert_eq!(n.hosts[0].mib(IpMib::OutRequests), 2);
    assert_eq!(n.hosts[0].mib(IpMib::OutTransmits), 2);
}

/// `icmp_errors_use_inbound_ifaddr`: R routes back to A through B (a /32
/// route), so the time-exceeded for A's TTL-1 datagram leaves through
/// R's second device. Its source is that device's address by default
/// (the route's choice), and with the sysctl the address of the device
/// the datagram came in on.
#[test]
fn icmp_errors_use_inbound_ifaddr_picks_the_receiving_device_s_address() {
    for (inbound, src) in [(0, [198, 18, 2, 1]), (1, [198, 18, 1, 1])] {
        let mut n = routed(1500);
        n.hosts[1]
            .sysctl
            .set_int(Sysctl::ICMP_ERRORS_USE_INBOUND_IFADDR, inbound)
            .unwrap();
        n.hosts[1].route_add(ip("198.18.1.2"), 32, ip("198.18.2.2"));
        send(&mut n.hosts[0], ip("198.18.2.2"), 40, |sk| {
            sk.uc_ttl = Some(1);
        })
        .unwrap();
        n.run_until_idle();
        assert_eq!(n.hosts[1].icmpmsg(IcmpMsgDir::Out, 11), 1);
        let icmp: Vec<Vec<u8>> = ipv4_frames(&n, 1)
            .into_iter()
            .filter(|f| f[9] == 1 && f[20] == 11)
            .collect();
        assert_eq!(icmp.len(), 1, "inbound={inbound}");
        assert_eq!(icmp[0][12..16], src, "inbound={inbound}");
    }
}
