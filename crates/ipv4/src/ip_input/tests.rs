use netcore::{Clock, IpSummed, PktType, VirtualClock};
use proptest::prelude::*;

use super::*;
use crate::testutil::{TestIpHost, TestNetwork};

/// A host at 198.18.0.1/24 on eth0 (ifindex 2).
fn host() -> TestIpHost {
    let mut h = TestIpHost::new(&VirtualClock::new(), 1);
    h.add_device(1, 1500, Ipv4Addr::new(198, 18, 0, 1), 24);
    h
}

/// A datagram of `payload` bytes from 198.18.0.2 to 198.18.0.1 with a
/// correct checksum, protocol 253.
fn datagram(payload: usize) -> Vec<u8> {
    let mut d = vec![0u8; 20 + payload];
    d[0] = 0x45;
    d[2..4].copy_from_slice(&((20 + payload) as u16).to_be_bytes());
    d[8] = 64;
    d[9] = 253;
    d[12..16].copy_from_slice(&[198, 18, 0, 2]);
    d[16..20].copy_from_slice(&[198, 18, 0, 1]);
    refill(&mut d);
    d
}

fn refill(d: &mut [u8]) {
    d[10..12].fill(0);
    let ihl = (usize::from(d[0] & 0x0f) * 4).min(d.len());
    let c = ip_fast_csum(&d[..ihl]);
    d[10..12].copy_from_slice(&c.to_be_bytes());
}

fn core(h: &TestIpHost, bytes: &[u8], pkt_type: PktType, summed: IpSummed) -> Option<SkBuff> {
    let mut skb = SkBuff::from_slice(&h.pool, 64, bytes).unwrap();
    skb.ifindex = 2;
    skb.pkt_type = pkt_type;
    skb.ip_summed = summed;
    ip_rcv_core(&h.ipv4, 0, &mut skb).ok().map(|()| skb)
}

#[test]
fn otherhost_is_dropped_before_counting() {
    let h = host();
    assert!(core(&h, &datagram(8), PktType::OtherHost, IpSummed::None).is_none());
    assert_eq!(h.mib(IpMib::InReceives), 0);
}

#[test]
fn header_errors_are_counted_as_linux_does() {
    let h = host();
    let mut v6 = datagram(8);
    v6[0] = 0x65;
    refill(&mut v6);
    let mut ihl4 = datagram(8);
    ihl4[0] = 0x44;
    refill(&mut ihl4);
    let mut short_tot = datagram(8);
    short_tot[2..4].copy_from_slice(&19u16.to_be_bytes());
    refill(&mut short_tot);
    let mut long_ihl = datagram(8);
    long_ihl[0] = 0x4f; // 60 bytes of header in a 28-byte datagram
    for bad in [&v6[..], &ihl4, &short_tot, &long_ihl, &datagram(8)[..19]] {
        assert!(core(&h, bad, PktType::Host, IpSummed::None).is_none());
    }
    assert_eq!(h.mib(IpMib::InReceives), 5);
    assert_eq!(h.mib(IpMib::InHdrErrors), 5);
    assert_eq!(h.mib(IpExtMib::InCsumErrors), 0);
    assert_eq!(h.mib(IpExtMib::InTruncatedPkts), 0);
}

#[test]
fn bad_checksum_counts_both_csum_and_header_errors_unless_offloaded() {
    let h = host();
    let mut d = datagram(8);
    d[10] ^= 0xff;
    assert!(core(&h, &d, PktType::Host, IpSummed::None).is_none());
    assert_eq!(h.mib(IpExtMib::InCsumErrors), 1);
    assert_eq!(h.mib(IpMib::InHdrErrors), 1);
    assert!(core(&h, &d, PktType::Host, IpSummed::Unnecessary).is_some());
    assert_eq!(h.mib(IpExtMib::InCsumErrors), 1);
}

#[test]
fn truncated_datagram_is_in_truncated_pkts_and_padding_is_trimmed() {
    let h = host();
    let d = datagram(40);
    assert!(core(&h, &d[..50], PktType::Host, IpSummed::None).is_none());
    assert_eq!(h.mib(IpExtMib::InTruncatedPkts), 1);
    assert_eq!(h.mib(IpMib::InHdrErrors), 0);
    let mut padded = datagram(8);
    padded.resize(46, 0xee);
    let skb = core(&h, &padded, PktType::Host, IpSummed::None).unwrap();
    assert_eq!(skb.len(), 28);
    assert_eq!(skb.transport_offset(), Some(20));
    assert_eq!(h.mib(IpExtMib::InOctets), 50 + 46);
}

#[test]
fn ecn_codepoints_are_counted() {
    let h = host();
    for ecn in [0u8, 1, 2, 3, 3] {
        let mut d = datagram(8);
        d[1] = ecn;
        refill(&mut d);
        assert!(core(&h, &d, PktType::Host, IpSummed::None).is_some());
    }
    let got = [
        IpExtMib::InNoECTPkts,
        IpExtMib::InECT1Pkts,
        IpExtMib::InECT0Pkts,
        IpExtMib::InCEPkts,
    ]
    .map(|m| h.mib(m));
    assert_eq!(got, [1, 1, 1, 2]);
}

/// A subscriber that enables every span and event and counts the
/// `ip_rcv` spans, to run the receive path as it runs with tracing on.
#[derive(Default)]
struct CountSpans(std::sync::atomic::AtomicU64);

impl tracing::Subscriber for CountSpans {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if span.metadata().name() == "ip_rcv" {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn fast_path_counts_and_delivers_as_the_stage_by_stage_path() {
    use crate::testutil::RecordingProtocol;
    let mut with_opts = vec![0u8; 32];
    with_opts[0] = 0x46;
    with_opts[2..4].copy_from_slice(&32u16.to_be_bytes());
    with_opts[8] = 64;
    with_opts[9] = 253;
    with_opts[12..16].copy_from_slice(&[198, 18, 0, 2]);
    with_opts[16..20].copy_from_slice(&[198, 18, 0, 1]);
    with_opts[20..24].copy_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
    with_opts[24..].copy_from_slice(b"options!");
    refill(&mut with_opts);
    let proto = |p: u8, dst: u8| {
        let mut d = datagram(16);
        d[9] = p;
        d[19] = dst;
        refill(&mut d);
        d
    };
    let mut bad_csum = datagram(8);
    bad_csum[10] ^= 1;
    let frags = fragments(&[0xab; 40], &[16], 7);
    let mut inputs = vec![
        datagram(16),    // the fast path
        with_opts,       // options: the whole way
        proto(200, 1),   // no handler: protocol unreachable
        proto(254, 1),   // handed back: port unreachable
        proto(253, 9),   // not ours, forwarding off: InAddrErrors
        proto(253, 255), // subnet broadcast: InBcastPkts
        bad_csum,
    ];
    inputs.extend(frags);
    let run = |tracing_on: bool, hooked: bool| {
        let mut h = host();
        // Hooks that accept everything: the datagrams leave the common
        // path at each hook point and come back through the okfn.
        let _hooks = hooked.then(|| {
            [NfInetHooks::PreRouting, NfInetHooks::LocalIn].map(|hook| {
                h.hooks
                    .nf_register_net_hook(netfilter::NfHookReg::from_fn(
                        hook,
                        netfilter::NF_IP_PRI_FILTER,
                        |_, _, _| netfilter::NfVerdict::Accept,
                    ))
                    .unwrap()
            })
        });
        let keep = Arc::new(RecordingProtocol::default());
        let refuse = Arc::new(RecordingProtocol {
            refuse: true,
            ..RecordingProtocol::default()
        });
        h.ipv4.inet_add_protocol(keep.clone(), 253).unwrap();
        h.ipv4.inet_add_protocol(refuse.clone(), 254).unwrap();
        let counter = Arc::new(CountSpans::default());
        let feed = |h: &mut TestIpHost| {
            for bytes in &inputs {
                let mut skb = SkBuff::from_slice(&h.pool, 64, bytes).unwrap();
                skb.ifindex = 2;
                let _ = ip_rcv(&mut h.cpu, skb);
            }
        };
        if tracing_on {
            let dispatch = tracing::Dispatch::from(Arc::clone(&counter));
            tracing::dispatcher::with_default(&dispatch, || feed(&mut h));
        } else {
            feed(&mut h);
        }
        let snap = h.mibs.snapshot();
        let delivered = keep.delivered.lock().clone();
        let spans = counter.0.load(std::sync::atomic::Ordering::Relaxed);
        let hooked_packets =
            [NfInetHooks::PreRouting, NfInetHooks::LocalIn].map(|hook| h.hooks.stats(hook).packets);
        (
            snap.proc_net_snmp(),
            snap.proc_net_netstat(),
            delivered,
            spans,
            hooked_packets,
        )
    };
    let fast = run(false, false);
    let traced = run(true, false);
    assert_eq!(fast.4, [0, 0]);
    for (tracing_on, hooked) in [(false, true), (true, true)] {
        let with_hooks = run(tracing_on, hooked);
        // Every datagram with a valid header met PRE_ROUTING (all but the
        // bad checksum); every one for this host met LOCAL_IN once
        // (the fragments as one reassembled datagram).
        assert_eq!(with_hooks.4, [inputs.len() as u64 - 1, 6]);
        assert_eq!(fast.0, with_hooks.0, "/proc/net/snmp with hooks");
        assert_eq!(fast.1, with_hooks.1, "/proc/net/netstat with hooks");
        assert_eq!(fast.2, with_hooks.2, "delivered payloads with hooks");
    }
    assert_eq!(fast.3, 0);
    assert_eq!(
        traced.3,
        inputs.len() as u64,
        "every datagram in an ip_rcv span"
    );
    assert_eq!(fast.0, traced.0, "/proc/net/snmp");
    assert_eq!(fast.1, traced.1, "/proc/net/netstat");
    assert_eq!(fast.2, traced.2, "delivered payloads");
    // What both saw: the plain datagram, the optioned one, the broadcast
    // and the reassembled one reached protocol 253.
    assert_eq!(fast.2.len(), 4);
    assert!(fast.0.contains("Ip: 2 64 9 1 1 0 1 0 5 "), "{}", fast.0);
}

#[test]
fn bad_options_are_header_errors_after_routing() {
    let mut h = host();
    let mut d = vec![0u8; 28];
    d[0] = 0x46;
    d[2..4].copy_from_slice(&28u16.to_be_bytes());
    d[8] = 64;
    d[9] = 253;
    d[12..16].copy_from_slice(&[198, 18, 0, 2]);
    d[16..20].copy_from_slice(&[198, 18, 0, 1]);
    d[20..24].copy_from_slice(&[7, 9, 4, 0]); // record route, length past the header
    refill(&mut d);
    let mut skb = SkBuff::from_slice(&h.pool, 64, &d).unwrap();
    skb.ifindex = 2;
    assert_eq!(ip_rcv(&mut h.cpu, skb), NetRx::Drop);
    assert_eq!(h.mib(IpMib::InHdrErrors), 1);
}

fn frame_to(dst: [u8; 6], ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&[0x02, 0, 0, 0, 2, 2]);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// A header with a valid checksum and arbitrary (lying) fields.
fn lying_header() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..16,
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..120),
        any::<bool>(),
    )
        .prop_map(|(ihl, tot, frag, ttl, proto, rest, to_us)| {
            let mut d = vec![0u8; 20];
            d[0] = 0x40 | ihl;
            d[2..4].copy_from_slice(&tot.to_be_bytes());
            d[6..8].copy_from_slice(&frag.to_be_bytes());
            d[8] = ttl;
            d[9] = proto;
            d[12..16].copy_from_slice(&[198, 18, 0, 2]);
            let dst = if to_us {
                [198, 18, 0, 1]
            } else {
                [198, 18, 7, 7]
            };
            d[16..20].copy_from_slice(&dst);
            d.extend_from_slice(&rest);
            refill(&mut d);
            d
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn random_and_lying_datagrams_are_counted_and_dropped_never_a_panic(
        random in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..8),
        lying in prop::collection::vec(lying_header(), 0..8),
        arp in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..4),
    ) {
        let mut n = TestNetwork::new();
        let a = n.add_host(netcore::Sysctl::new());
        let b = n.add_host(netcore::Sysctl::new());
        let ia = n.hosts[a].add_device(1, 1500, Ipv4Addr::new(198, 18, 0, 1), 24);
        let ib = n.hosts[b].add_device(2, 1500, Ipv4Addr::new(198, 18, 0, 2), 24);
        n.connect(&[(a, ia), (b, ib)]);
        let me = n.hosts[a].port(ia).addr.0;
        let mut sent = 0u64;
        for body in random.iter().chain(lying.iter()) {
            let _ = n.hosts[a].receive(ia, &frame_to(me, 0x0800, body));
            sent += 1;
        }
        for body in &arp {
            let _ = n.hosts[a].receive(ia, &frame_to([0xff; 6], 0x0806, body));
        }
        n.run_until_idle();
        let h = &n.hosts[a];
        prop_assert_eq!(h.mib(IpMib::InReceives), sent);
        let accounted = h.mib(IpMib::InHdrErrors)
            + h.mib(IpExtMib::InTruncatedPkts)
            + h.mib(IpMib::InAddrErrors)
            + h.mib(IpMib::InDelivers)
            + h.mib(IpMib::InUnknownProtos)
            + h.mib(IpMib::ReasmReqds)
            + h.mib(IpMib::InDiscards);
        prop_assert!(accounted <= sent + h.mib(IpMib::ReasmOKs));
        // Every queued fragment expires and every buffer comes back.
        n.advance(netcore::Duration::from_secs(60));
        prop_assert_eq!(n.hosts[a].pool.stats().inflight(), 0);
        prop_assert!(n.clock.now() >= netcore::Instant::from_secs(60));
    }
}

/// Cuts a protocol-253 datagram carrying `payload` into fragments at the
/// given 8-byte-aligned cut points.
fn fragments(payload: &[u8], cuts: &[usize], id: u16) -> Vec<Vec<u8>> {
    let mut bounds: Vec<usize> = cuts
        .iter()
        .map(|c| (c % payload.len().max(1)) & !7)
        .filter(|&c| c > 0)
        .collect();
    bounds.push(0);
    bounds.push((payload.len() / 2) & !7); // at least two fragments
    bounds.push(payload.len());
    bounds.sort_unstable();
    bounds.dedup();
    bounds
        .windows(2)
        .map(|w| {
            let (off, end) = (w[0], w[1]);
            let mut d = vec![0u8; 20];
            d[0] = 0x45;
            d[2..4].copy_from_slice(&((20 + end - off) as u16).to_be_bytes());
            d[4..6].copy_from_slice(&id.to_be_bytes());
            let mut fo = (off / 8) as u16;
            if end < payload.len() {
                fo |= wire::IP_MF;
            }
            d[6..8].copy_from_slice(&fo.to_be_bytes());
            d[8] = 64;
            d[9] = 253;
            d[12..16].copy_from_slice(&[198, 18, 0, 2]);
            d[16..20].copy_from_slice(&[198, 18, 0, 1]);
            d.extend_from_slice(&payload[off..end]);
            refill(&mut d);
            d
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_order_with_duplicates_reassembles_the_payload_only_when_complete(
        payload in prop::collection::vec(any::<u8>(), 16..3000),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        order in prop::collection::vec(any::<prop::sample::Index>(), 1..24),
    ) {
        let mut h = host();
        let rec = std::sync::Arc::new(crate::testutil::RecordingProtocol::default());
        let p: std::sync::Arc<dyn crate::NetProtocol<crate::testutil::Ipv4TestCtx>> = rec.clone();
        h.ipv4.inet_add_protocol(p, 253).unwrap();
        let frags = fragments(&payload, &cuts, 77);
        let me = h.port(2).addr.0;
        // Every fragment once, in a shuffled order, plus duplicates.
        let mut seq: Vec<usize> = order.iter().map(|i| i.index(frags.len())).collect();
        seq.extend(0..frags.len());
        let mut seen = vec![false; frags.len()];
        let mut delivered_at = None;
        for (n, i) in seq.iter().enumerate() {
            let _ = h.receive(2, &frame_to(me, 0x0800, &frags[*i]));
            seen[*i] = true;
            if delivered_at.is_none() && !rec.delivered.lock().is_empty() {
                delivered_at = Some(n);
                prop_assert!(seen.iter().all(|&s| s), "delivered before every fragment came");
            }
        }
        let got = rec.delivered.lock();
        prop_assert!(!got.is_empty());
        prop_assert_eq!(&got[0], &payload);
        prop_assert_eq!(h.mib(IpMib::ReasmOKs) as usize, got.len());
        drop(got);
        // Leftover queues (duplicates after completion) expire; nothing leaks.
        let clock = h.clock.clone();
        let _ = clock.set(clock.now() + netcore::Duration::from_secs(31));
        h.run_until_idle();
        prop_assert_eq!(h.ipv4.with_frags(crate::Ipv4Frags::nr_queues), 0);
    }
}

#[test]
fn every_rcv_stage_survives_the_trip_through_its_number() {
    let all = [
        RcvStage::RcvCore,
        RcvStage::PreRouting,
        RcvStage::RcvFinish,
        RcvStage::LocalDeliver,
        RcvStage::Defrag,
        RcvStage::LocalIn,
        RcvStage::LocalDeliverFinish,
    ];
    for (i, stage) in all.into_iter().enumerate() {
        assert_eq!(usize::from(stage as u8), i, "in path order");
        assert_eq!(RcvStage::from_u8(stage as u8), stage);
    }
}

/// A protocol that reads fragments: records whether each datagram came
/// nonlinear and its bytes (from the transport header), read across the
/// pieces.
#[derive(Debug, Default)]
struct FragReader {
    seen: parking_lot::Mutex<Vec<(bool, Vec<u8>)>>,
}

impl<C: Ipv4Context> crate::NetProtocol<C> for FragReader {
    fn handler(&self, skb: SkBuff, _ctx: &mut C) -> Result<(), (SkBuff, IcmpError)> {
        let mut all = vec![0u8; skb.len()];
        skb.copy_bits(0, &mut all).unwrap();
        self.seen.lock().push((skb.is_nonlinear(), all));
        Ok(())
    }

    fn accepts_nonlinear(&self) -> bool {
        true
    }
}

/// `datagram(8 + 2 * 100)` with protocol `proto` as GRO leaves a merged
/// packet: the first `head` bytes in the linear part, the rest in two
/// fragments of their own buffers.
fn nonlinear(h: &TestIpHost, proto: u8, head: usize) -> (SkBuff, Vec<u8>) {
    let mut d = datagram(8 + 200);
    d[9] = proto;
    for (i, b) in d[20..].iter_mut().enumerate() {
        *b = (i * 13 + 1) as u8;
    }
    refill(&mut d);
    let mut skb = SkBuff::from_slice(&h.pool, 64, &d[..head]).unwrap();
    for part in d[head..].chunks(d[head..].len().div_ceil(2)) {
        let mut f = SkBuff::from_slice(&h.pool, 0, b"hdr").unwrap();
        f.put_data(part).unwrap();
        skb.append_frags(f, 3).unwrap();
    }
    skb.ifindex = 2;
    (skb, d[20..].to_vec())
}

/// A GRO packet reaches a protocol that reads fragments as it is (no
/// copy), and one that does not linear; a netfilter hook, or a linear
/// part shorter than the headers, makes it linear first. The counters
/// are those of the same datagram arriving linear.
#[test]
fn nonlinear_datagrams_stay_nonlinear_only_for_a_protocol_that_reads_fragments() {
    use crate::testutil::RecordingProtocol;
    for hooked in [false, true] {
        let mut h = host();
        let _hooks = hooked.then(|| {
            h.hooks
                .nf_register_net_hook(netfilter::NfHookReg::from_fn(
                    NfInetHooks::LocalIn,
                    netfilter::NF_IP_PRI_FILTER,
                    |_, _, _| netfilter::NfVerdict::Accept,
                ))
                .unwrap()
        });
        let frag_reader = Arc::new(FragReader::default());
        let linear_only = Arc::new(RecordingProtocol::default());
        h.ipv4.inet_add_protocol(frag_reader.clone(), 252).unwrap();
        h.ipv4.inet_add_protocol(linear_only.clone(), 253).unwrap();
        let (skb, p252) = nonlinear(&h, 252, 140);
        assert!(skb.is_nonlinear());
        assert_eq!(ip_rcv(&mut h.cpu, skb), NetRx::Success);
        let (skb, p253) = nonlinear(&h, 253, 140);
        assert_eq!(ip_rcv(&mut h.cpu, skb), NetRx::Success);
        // Only the IP header in the linear part: pulled in first.
        let (skb, short) = nonlinear(&h, 252, 20);
        assert_eq!(ip_rcv(&mut h.cpu, skb), NetRx::Success);
        let seen = frag_reader.seen.lock().clone();
        assert_eq!(
            seen,
            vec![(!hooked, p252), (false, short)],
            "hooked: {hooked}"
        );
        assert_eq!(linear_only.delivered.lock().clone(), vec![p253]);
        let snmp = h.mibs.snapshot().proc_net_snmp();
        // InReceives 3, InDelivers 3, no header error, no discard.
        assert!(snmp.contains("Ip: 2 64 3 0 0 0 0 0 3 "), "{snmp}");
    }
}
