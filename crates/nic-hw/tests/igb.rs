//! The igb driver and the simulated NIC end to end: two NICs on a
//! `VirtualWire`, driven by the test event loop in virtual time.

use core::net::Ipv4Addr;

use netcore::{
    Duration, ETH_P_IP, EthtoolChannels, EthtoolCoalesce, EthtoolError, EthtoolRingparam, Instant,
    IpSummed, NetDevice, NetdevFeatures, NetdevTx, PagePool, PagePoolParams, RxMode, SkBuff,
    SkbGsoType,
};
use nic_hw::testutil::{MAC_A, MAC_B, Sim, tcp_frame, udp_frame};
use nic_hw::{IGB_SKB_PAD, LinkConfig, RxOutcome, append_fcs};
use wire::{Ipv4Packet, TcpFlags, TcpPacket};

const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn stat(h: &nic_hw::testutil::TestHost, name: &str) -> u64 {
    let mut nd = h.nd();
    let ops = nd.ethtool_ops().unwrap();
    ops.get_ethtool_stats()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no stat {name}"))
        .1
}

fn xmit(sim: &mut Sim, from: usize, frame: &[u8]) -> NetdevTx {
    let pool = sim.hosts[from].pool.clone();
    let skb = SkBuff::from_slice(&pool, 64, frame).unwrap();
    sim.hosts[from].nd().start_xmit(skb, 0)
}

fn step(sim: &mut Sim, d: Duration) {
    let t = sim.now + d;
    sim.run_until(t);
}

#[test]
fn frames_cross_the_wire_with_exact_counters() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 1);
    let n = 100u64;
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1000, 2000), 100);
    let len = frame.len() as u64; // 142
    for _ in 0..n {
        assert!(matches!(xmit(&mut sim, 0, &frame), NetdevTx::Ok));
        step(&mut sim, Duration::from_micros(2));
    }
    step(&mut sim, Duration::from_millis(1));
    let b = &sim.hosts[1];
    assert_eq!(b.delivered.len() as u64, n);
    for skb in &b.delivered {
        assert_eq!(skb.protocol, ETH_P_IP);
        assert_eq!(skb.data(), &frame[14..], "data starts at the IP header");
        assert_eq!(skb.mac_header().unwrap()[..6], MAC_B);
        assert_eq!(skb.ip_summed, IpSummed::Unnecessary);
        assert_eq!(skb.queue_mapping, 0);
    }
    let a = &sim.hosts[0];
    assert_eq!(stat(a, "tx_packets"), n);
    assert_eq!(stat(a, "tx_bytes"), n * (len + 4), "GOTC counts the FCS");
    assert_eq!(stat(a, "tx_queue_0_packets"), n);
    assert_eq!(stat(a, "tx_queue_0_bytes"), n * len);
    assert_eq!(stat(b, "rx_packets"), n);
    assert_eq!(stat(b, "rx_bytes"), n * (len + 4));
    assert_eq!(stat(b, "rx_queue_0_packets"), n);
    assert_eq!(stat(b, "rx_queue_0_bytes"), n * len);
    assert_eq!(stat(b, "rx_crc_errors"), 0);
    let s = b.nd().stats64();
    assert_eq!((s.rx_packets, s.rx_bytes), (n, n * len));
    let s = a.nd().stats64();
    assert_eq!((s.tx_packets, s.tx_bytes), (n, n * len));
}

#[test]
fn corrupted_frames_are_dropped_by_the_fcs_check() {
    let mut sim = Sim::two_nics(LinkConfig::new().corrupt(1.0), 7);
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    for _ in 0..20 {
        xmit(&mut sim, 0, &frame);
        step(&mut sim, Duration::from_micros(5));
    }
    step(&mut sim, Duration::from_millis(1));
    let b = &sim.hosts[1];
    assert!(b.delivered.is_empty());
    assert_eq!(stat(b, "rx_crc_errors"), 20);
    assert_eq!(b.nd().stats64().rx_crc_errors, 20);
    assert_eq!(stat(b, "rx_packets"), 0);
}

/// The MAC skips recomputing the CRC only of frames the wire vouches for
/// (sent by a MAC, unaltered); anything else is checked, so a raw frame
/// with a wrong FCS still counts in `rx_crc_errors`.
#[test]
fn frames_the_wire_cannot_vouch_for_are_fcs_checked() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 2);
    let mut good = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    append_fcs(&mut good);
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x80; // the FCS itself is wrong, the data intact
    let now = sim.now;
    {
        let mut w = sim.wire.lock().unwrap();
        w.transmit(now, nic_hw::Side::A, bad.clone());
        w.transmit_slice(now, nic_hw::Side::A, &bad);
        w.transmit_swap(now, nic_hw::Side::A, &mut bad);
        w.transmit(now, nic_hw::Side::A, good);
    }
    // And one frame from host A's MAC, which the wire vouches for.
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    xmit(&mut sim, 0, &frame);
    step(&mut sim, Duration::from_millis(1));
    let b = &sim.hosts[1];
    assert_eq!(stat(b, "rx_crc_errors"), 3);
    assert_eq!(stat(b, "rx_packets"), 2);
    assert_eq!(b.delivered.len(), 2);
}

/// A TCP/UDP checksum the sending MAC's offload wrote is not summed again
/// by the receiving MAC when the wire vouches for the frame; one that does
/// not verify (a wrong pseudo-header seed from the stack) is still caught
/// and counted, and the bytes delivered are those a software checksum
/// gives.
#[test]
fn offloaded_checksums_are_vouched_for_only_when_they_verify() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 5);
    let good = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (7, 9), 200);
    let l4_len = (good.len() - 34) as u16;
    let seed = !wire::csum_tcpudp_magic(IP_A, IP_B, l4_len, 17, 0);
    for seed in [seed, seed.wrapping_add(1), seed] {
        let mut f = good.clone();
        f[40..42].copy_from_slice(&seed.to_be_bytes());
        let pool = sim.hosts[0].pool.clone();
        let mut skb = SkBuff::from_slice(&pool, 64, &f).unwrap();
        skb.ip_summed = IpSummed::Partial {
            csum_start: 34,
            csum_offset: 6,
        };
        assert!(matches!(sim.hosts[0].nd().start_xmit(skb, 0), NetdevTx::Ok));
        step(&mut sim, Duration::from_micros(20));
    }
    step(&mut sim, Duration::from_millis(1));
    let b = &sim.hosts[1];
    assert_eq!(b.delivered.len(), 3);
    for i in [0, 2] {
        assert_eq!(b.delivered[i].ip_summed, IpSummed::Unnecessary);
        assert_eq!(
            b.delivered[i].data(),
            &good[14..],
            "the software checksum's bytes"
        );
    }
    assert_eq!(b.delivered[1].ip_summed, IpSummed::None);
    assert_ne!(b.delivered[1].data(), &good[14..]);
    assert_eq!(stat(b, "rx_queue_0_csum_err"), 1);
    assert_eq!(stat(b, "rx_crc_errors"), 0);
}

#[test]
fn full_rx_ring_drops_and_counts_missed() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 1);
    {
        let mut nd = sim.hosts[1].nd();
        let ops = nd.ethtool_ops().unwrap();
        let mut r = ops.get_ringparam().unwrap();
        r.rx_pending = 64;
        ops.set_ringparam(&r).unwrap();
    }
    let mut frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    append_fcs(&mut frame);
    // The CPU does not run: the device fills every posted buffer, then misses.
    let now = sim.now;
    let outcomes: Vec<RxOutcome> = (0..100)
        .map(|_| sim.hosts[1].dev.lock().receive_frame(now, &frame))
        .collect();
    let received = outcomes
        .iter()
        .filter(|o| matches!(o, RxOutcome::Received { queue: 0 }))
        .count();
    assert_eq!(received, 64, "{:?}", &outcomes[..2]);
    assert!(
        outcomes[64..]
            .iter()
            .all(|o| *o == RxOutcome::Missed { queue: 0 })
    );
    step(&mut sim, Duration::from_millis(1));
    let b = &sim.hosts[1];
    assert_eq!(b.delivered.len(), 64);
    assert_eq!(stat(b, "rx_missed_errors"), 36);
    assert_eq!(stat(b, "rx_no_buffer_count"), 36);
    assert_eq!(stat(b, "rx_queue_0_drops"), 36);
    assert_eq!(b.nd().stats64().rx_missed_errors, 36);
    // The ring was refilled: the next frame is received.
    let now = sim.now;
    assert_eq!(
        sim.hosts[1].dev.lock().receive_frame(now, &frame),
        RxOutcome::Received { queue: 0 }
    );
}

#[test]
fn xdp_drop_reap_counts_frames_and_reposts_every_buffer() {
    let sim = Sim::two_nics(LinkConfig::new(), 1);
    {
        let mut nd = sim.hosts[1].nd();
        let ops = nd.ethtool_ops().unwrap();
        let mut r = ops.get_ringparam().unwrap();
        r.rx_pending = 64;
        ops.set_ringparam(&r).unwrap();
    }
    let mut frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 18);
    append_fcs(&mut frame);
    let b = &sim.hosts[1];
    let inflight = b.pool.stats().inflight();
    let now = sim.now;
    let rx = |n: usize| {
        (0..n)
            .filter(|_| {
                b.dev.lock().receive_frame(now, &frame) == (RxOutcome::Received { queue: 0 })
            })
            .count()
    };
    assert_eq!(rx(10), 10);
    // Within the budget, in order; then the rest; then nothing.
    assert_eq!(b.nd().igb_clean_rx_irq_xdp_drop(0, 4), 4);
    assert_eq!(b.nd().igb_clean_rx_irq_xdp_drop(0, 64), 6);
    assert_eq!(b.nd().igb_clean_rx_irq_xdp_drop(0, 64), 0);
    assert_eq!(stat(b, "rx_queue_0_packets"), 10);
    assert_eq!(stat(b, "rx_queue_0_bytes"), 10 * 60, "FCS stripped");
    // Every buffer went straight back into the ring: three laps of the
    // 64-entry ring find a descriptor for every frame, and no buffer was
    // allocated or freed.
    for _ in 0..3 {
        assert_eq!(rx(64), 64);
        assert_eq!(rx(1), 0, "the ring is full until reaped");
        assert_eq!(b.nd().igb_clean_rx_irq_xdp_drop(0, 64), 64);
    }
    assert_eq!(b.pool.stats().inflight(), inflight);
    assert_eq!(stat(b, "rx_queue_0_packets"), 10 + 3 * 64);
    assert_eq!(stat(b, "rx_missed_errors"), 3);
    assert!(b.delivered.is_empty(), "no skb was built");
    // No such queue; a device that is down.
    assert_eq!(b.nd().igb_clean_rx_irq_xdp_drop(1, 64), 0);
    sim.hosts[1].nd().stop().unwrap();
    assert_eq!(sim.hosts[1].nd().igb_clean_rx_irq_xdp_drop(0, 64), 0);
}

fn irqs_for(rx_frames: u32) -> u64 {
    let mut sim = Sim::two_nics(LinkConfig::new(), 3);
    {
        let mut nd = sim.hosts[1].nd();
        let ops = nd.ethtool_ops().unwrap();
        ops.set_coalesce(&EthtoolCoalesce {
            rx_coalesce_usecs: 1000,
            rx_max_coalesced_frames: rx_frames,
            tx_coalesce_usecs: 3,
            ..EthtoolCoalesce::default()
        })
        .unwrap();
    }
    let irq = sim.hosts[1].nd().queue_irq(0).unwrap();
    let before = sim.hosts[1].irqs.kstat_irqs_cpu(irq, 0).unwrap();
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    for _ in 0..320 {
        xmit(&mut sim, 0, &frame);
        step(&mut sim, Duration::from_micros(1));
    }
    step(&mut sim, Duration::from_millis(5));
    assert_eq!(sim.hosts[1].delivered.len(), 320);
    sim.hosts[1].irqs.kstat_irqs_cpu(irq, 0).unwrap() - before
}

#[test]
fn rx_frames_moderation_divides_interrupts() {
    let one = irqs_for(1);
    let sixteen = irqs_for(16);
    assert_eq!(one, 320, "one interrupt per frame");
    assert_eq!(sixteen, 20, "one interrupt per 16 frames");
}

#[test]
fn rx_usecs_timer_fires_for_a_lone_frame() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 3);
    {
        let mut nd = sim.hosts[1].nd();
        nd.ethtool_ops()
            .unwrap()
            .set_coalesce(&EthtoolCoalesce {
                rx_coalesce_usecs: 100,
                rx_max_coalesced_frames: 16,
                ..EthtoolCoalesce::default()
            })
            .unwrap();
    }
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    let t0 = sim.now;
    xmit(&mut sim, 0, &frame);
    step(&mut sim, Duration::from_micros(50));
    assert!(sim.hosts[1].delivered.is_empty(), "held by rx-usecs");
    step(&mut sim, Duration::from_micros(100));
    assert_eq!(sim.hosts[1].delivered.len(), 1);
    assert!(sim.now >= t0 + Duration::from_micros(100));
}

#[test]
fn rss_spreads_flows_evenly_and_keeps_each_on_one_queue() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 5);
    {
        let mut nd = sim.hosts[1].nd();
        let ops = nd.ethtool_ops().unwrap();
        let mut ch = ops.get_channels().unwrap();
        ch.combined_count = 4;
        ops.set_channels(&ch).unwrap();
        let (f, _) = ops.get_features().unwrap();
        ops.set_features(f - NetdevFeatures::GRO).unwrap();
    }
    let flows = 1000u16;
    for round in 0..2 {
        for i in 0..flows {
            let f = tcp_frame(MAC_A, MAC_B, IP_A, IP_B, (10000 + i, 80), round, 0x10, b"x");
            xmit(&mut sim, 0, &f);
            if i % 64 == 63 {
                step(&mut sim, Duration::from_micros(50));
            }
        }
        step(&mut sim, Duration::from_millis(1));
    }
    let b = &sim.hosts[1];
    assert_eq!(b.delivered.len(), 2 * usize::from(flows));
    let mut queue_of = vec![None; usize::from(flows)];
    let mut per_queue = [0u32; 4];
    for skb in &b.delivered {
        let tcp = &skb.data()[20..];
        let sport = u16::from_be_bytes([tcp[0], tcp[1]]);
        let q = skb.queue_mapping;
        let idx = usize::from(sport - 10000);
        match queue_of[idx] {
            None => {
                queue_of[idx] = Some(q);
                per_queue[usize::from(q)] += 1;
            }
            Some(prev) => assert_eq!(prev, q, "flow {sport} changed queue"),
        }
        let h = wire::toeplitz_ipv4_ports(&wire::RSS_DEFAULT_KEY, IP_A, IP_B, sport, 80);
        assert_eq!(skb.hash, h);
        assert_eq!(usize::from(q), ((h & 0x7f) as usize * 4) / 128);
    }
    for (q, n) in per_queue.iter().enumerate() {
        assert!((200..=300).contains(n), "queue {q} got {n} of 1000 flows");
        assert_eq!(stat(b, &format!("rx_queue_{q}_packets")), u64::from(*n) * 2);
    }
}

#[test]
fn tso_cuts_a_64k_skb_into_valid_segments() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 9);
    {
        let mut nd = sim.hosts[1].nd();
        let ops = nd.ethtool_ops().unwrap();
        let (f, _) = ops.get_features().unwrap();
        ops.set_features(f - NetdevFeatures::GRO).unwrap();
    }
    let payload: Vec<u8> = (0..65536 - 54).map(|i| (i * 7) as u8).collect();
    let seq0 = 0xfffff000u32; // wraps during the burst
    let frame = tcp_frame(
        MAC_A,
        MAC_B,
        IP_A,
        IP_B,
        (4000, 5000),
        seq0,
        0x80 | 0x08 | 0x01 | 0x10,
        &payload,
    );
    assert_eq!(frame.len(), 65536);
    let pool = sim.hosts[0].pool.clone();
    let mut skb = SkBuff::from_slice(&pool, 0, &frame).unwrap();
    skb.gso_size = 1448;
    skb.gso_segs = 46;
    skb.gso_type = SkbGsoType::TCPV4;
    skb.ip_summed = IpSummed::Partial {
        csum_start: 34,
        csum_offset: 16,
    };
    assert!(matches!(sim.hosts[0].nd().start_xmit(skb, 0), NetdevTx::Ok));
    step(&mut sim, Duration::from_millis(2));
    let b = &sim.hosts[1];
    let segs = &b.delivered;
    assert_eq!(segs.len(), payload.len().div_ceil(1448));
    let mut got = Vec::new();
    for (i, skb) in segs.iter().enumerate() {
        let ip = Ipv4Packet::new_checked(skb.data()).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.ident(), 0x1234u16.wrapping_add(i as u16));
        assert_eq!(usize::from(ip.total_len()), skb.len());
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(IP_A, IP_B));
        assert_eq!(tcp.seq_number(), seq0.wrapping_add((i * 1448) as u32));
        let last = i + 1 == segs.len();
        assert_eq!(tcp.flags().contains(TcpFlags::FIN), last);
        assert_eq!(tcp.flags().contains(TcpFlags::PSH), last);
        assert_eq!(tcp.flags().contains(TcpFlags::CWR), i == 0);
        assert!(tcp.flags().contains(TcpFlags::ACK));
        assert!(tcp.payload().len() <= 1448);
        got.extend_from_slice(tcp.payload());
    }
    assert_eq!(got, payload);
    let a = &sim.hosts[0];
    assert_eq!(stat(a, "tx_tcp_seg_good"), 1);
    assert_eq!(stat(a, "tx_packets"), segs.len() as u64);
    assert_eq!(stat(a, "tx_queue_0_packets"), segs.len() as u64);
    assert_eq!(
        stat(a, "tx_queue_0_bytes"),
        payload.len() as u64 + 54 * segs.len() as u64
    );
}

#[test]
fn full_tx_ring_returns_busy_and_cleaning_restarts_the_queue() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 2);
    {
        let mut nd = sim.hosts[0].nd();
        let ops = nd.ethtool_ops().unwrap();
        let mut r = ops.get_ringparam().unwrap();
        r.tx_pending = 64;
        ops.set_ringparam(&r).unwrap();
    }
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    let mut sent = 0;
    let busy = loop {
        match xmit(&mut sim, 0, &frame) {
            NetdevTx::Ok => sent += 1,
            NetdevTx::Busy(skb) => break skb,
        }
        assert!(sent <= 64);
    };
    assert_eq!(busy.data(), &frame[..], "the skb comes back unchanged");
    assert!(sim.hosts[0].nd().tx_queues().get(0).unwrap().is_stopped());
    step(&mut sim, Duration::from_millis(1));
    assert!(!sim.hosts[0].nd().tx_queues().get(0).unwrap().is_stopped());
    assert_eq!(stat(&sim.hosts[0], "tx_queue_0_restart"), 1);
    assert_eq!(sim.hosts[1].delivered.len(), sent);
}

#[test]
fn xmit_more_batch_fills_until_the_queue_stops_and_keeps_the_rest() {
    // A run of 100 skbs into a 64-descriptor ring with `igb_xmit_frames`
    // (xmit_more: one tail write per run): it takes exactly as many as
    // one-at-a-time start_xmit does before the queue stops, leaves the
    // rest in the iterator, and every frame taken arrives, in order.
    let mut sim = Sim::two_nics(LinkConfig::new(), 2);
    let mut one_by_one = Sim::two_nics(LinkConfig::new(), 2);
    for s in [&mut sim, &mut one_by_one] {
        let mut nd = s.hosts[0].nd();
        let ops = nd.ethtool_ops().unwrap();
        let mut r = ops.get_ringparam().unwrap();
        r.tx_pending = 64;
        ops.set_ringparam(&r).unwrap();
    }
    let frames: Vec<Vec<u8>> = (0..100u16)
        .map(|i| udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 1000 + i), 64))
        .collect();
    let mut accepted = 0;
    while let NetdevTx::Ok = xmit(&mut one_by_one, 0, &frames[accepted]) {
        accepted += 1;
        if one_by_one.hosts[0]
            .nd()
            .tx_queues()
            .get(0)
            .unwrap()
            .is_stopped()
        {
            break;
        }
    }
    assert!(accepted > 32 && accepted < 64, "{accepted}");

    let pool = sim.hosts[0].pool.clone();
    let mut skbs = frames
        .iter()
        .map(|f| SkBuff::from_slice(&pool, 64, f).unwrap());
    let r = sim.hosts[0].nd().igb_xmit_frames(&mut skbs, 0);
    assert!(matches!(r, NetdevTx::Ok));
    assert!(sim.hosts[0].nd().tx_queues().get(0).unwrap().is_stopped());
    let rest: Vec<SkBuff> = skbs.collect();
    assert_eq!(rest.len(), 100 - accepted, "the rest stay with the caller");
    assert_eq!(rest[0].data(), &frames[accepted][..]);
    step(&mut sim, Duration::from_millis(1));
    assert!(!sim.hosts[0].nd().tx_queues().get(0).unwrap().is_stopped());
    assert_eq!(sim.hosts[1].delivered.len(), accepted);
    // The second run goes through whole.
    let r = sim.hosts[0].nd().igb_xmit_frames(&mut rest.into_iter(), 0);
    assert!(matches!(r, NetdevTx::Ok));
    step(&mut sim, Duration::from_millis(1));
    let got: Vec<&[u8]> = sim.hosts[1].delivered.iter().map(SkBuff::data).collect();
    assert_eq!(got.len(), 100);
    for (skb_data, frame) in got.iter().zip(&frames) {
        // Delivered skbs start at the IP header (the MAC header pulled).
        assert!(frame.ends_with(skb_data), "frames arrive in order");
    }
    assert_eq!(stat(&sim.hosts[0], "tx_packets"), 100);
    assert_eq!(stat(&sim.hosts[0], "tx_dropped"), 0);
}

#[test]
fn xmit_more_batch_on_a_full_ring_returns_busy_with_the_skb() {
    let sim = Sim::two_nics(LinkConfig::new(), 2);
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    let pool = sim.hosts[0].pool.clone();
    // Fill the ring one run at a time without letting the device send,
    // ignoring the stopped queue (as a misbehaving caller would).
    let mut busy = None;
    for _ in 0..300 {
        let skb = SkBuff::from_slice(&pool, 64, &frame).unwrap();
        if let NetdevTx::Busy(skb) = sim.hosts[0]
            .nd()
            .igb_xmit_frames(&mut core::iter::once(skb), 0)
        {
            busy = Some(skb);
            break;
        }
    }
    let skb = busy.expect("a full ring answers busy");
    assert_eq!(skb.data(), &frame[..], "the skb comes back unchanged");
    assert!(sim.hosts[0].nd().tx_queues().get(0).unwrap().is_stopped());
    assert_eq!(stat(&sim.hosts[0], "tx_dropped"), 0);
}

#[test]
fn mac_filter_unicast_multicast_promisc() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 4);
    let other = [0x02, 0, 0, 0, 0, 0x99];
    let mcast = [0x01, 0, 0x5e, 0, 0, 0x42];
    for dst in [other, mcast, [0xff; 6]] {
        xmit(&mut sim, 0, &udp_frame(MAC_A, dst, IP_A, IP_B, (1, 2), 32));
    }
    step(&mut sim, Duration::from_millis(1));
    assert_eq!(sim.hosts[1].delivered.len(), 1, "only broadcast passes");
    sim.hosts[1].nd().set_rx_mode(&RxMode {
        promisc: false,
        allmulti: false,
        mc_list: vec![mcast],
    });
    xmit(
        &mut sim,
        0,
        &udp_frame(MAC_A, mcast, IP_A, IP_B, (1, 2), 32),
    );
    xmit(
        &mut sim,
        0,
        &udp_frame(MAC_A, other, IP_A, IP_B, (1, 2), 32),
    );
    step(&mut sim, Duration::from_millis(1));
    assert_eq!(sim.hosts[1].delivered.len(), 2, "the joined group passes");
    sim.hosts[1].nd().set_rx_mode(&RxMode {
        promisc: true,
        ..RxMode::default()
    });
    xmit(
        &mut sim,
        0,
        &udp_frame(MAC_A, other, IP_A, IP_B, (1, 2), 32),
    );
    step(&mut sim, Duration::from_millis(1));
    assert_eq!(sim.hosts[1].delivered.len(), 3, "promiscuous takes all");
    assert_eq!(
        sim.hosts[1].delivered[2].pkt_type,
        netcore::PktType::OtherHost
    );
    assert_eq!(stat(&sim.hosts[1], "rx_multicast"), 1);
    assert_eq!(stat(&sim.hosts[1], "rx_broadcast"), 1);
}

#[test]
fn rx_checksum_offload_follows_the_feature_and_flags_bad_sums() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 4);
    let mut bad = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 32);
    bad[14 + 20 + 6] ^= 0x55; // UDP checksum wrong
    xmit(&mut sim, 0, &bad);
    step(&mut sim, Duration::from_millis(1));
    assert_eq!(sim.hosts[1].delivered[0].ip_summed, IpSummed::None);
    assert_eq!(stat(&sim.hosts[1], "rx_queue_0_csum_err"), 1);
    {
        let mut nd = sim.hosts[1].nd();
        let ops = nd.ethtool_ops().unwrap();
        let (f, _) = ops.get_features().unwrap();
        ops.set_features(f - NetdevFeatures::RXCSUM).unwrap();
    }
    xmit(
        &mut sim,
        0,
        &udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 32),
    );
    step(&mut sim, Duration::from_millis(1));
    assert_eq!(sim.hosts[1].delivered[1].ip_summed, IpSummed::None);
}

#[test]
fn ethtool_settings_valid_and_invalid() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 4);
    let mut nd = sim.hosts[1].nd();
    let ops = nd.ethtool_ops().unwrap();
    assert_eq!(ops.get_drvinfo().driver, "igb");
    assert_eq!(ops.get_drvinfo().bus_info, "0000:00:00.0");
    // Rings.
    let r0 = ops.get_ringparam().unwrap();
    assert_eq!(
        (r0.rx_pending, r0.tx_pending, r0.rx_max_pending),
        (256, 256, 4096)
    );
    for (rx, tx, param) in [
        (3, 256, "rx"),
        (8192, 256, "rx"),
        (256, 100, "tx"),
        (32, 256, "rx"),
    ] {
        let e = ops
            .set_ringparam(&EthtoolRingparam {
                rx_pending: rx,
                tx_pending: tx,
                ..r0
            })
            .unwrap_err();
        assert!(
            matches!(e, EthtoolError::InvalidParam { param: p, .. } if p == param),
            "{e}"
        );
        assert_eq!(ops.get_ringparam().unwrap(), r0);
    }
    let e = ops
        .set_ringparam(&EthtoolRingparam {
            rx_mini_pending: 1,
            ..r0
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid rx-mini value 1: accepts 0");
    ops.set_ringparam(&EthtoolRingparam {
        rx_pending: 4096,
        tx_pending: 64,
        ..r0
    })
    .unwrap();
    let r = ops.get_ringparam().unwrap();
    assert_eq!((r.rx_pending, r.tx_pending), (4096, 64));
    // Channels.
    let c0 = ops.get_channels().unwrap();
    assert_eq!(
        (c0.combined_count, c0.max_combined, c0.other_count),
        (1, 16, 1)
    );
    for (bad, param) in [
        (
            EthtoolChannels {
                combined_count: 99,
                ..c0
            },
            "combined",
        ),
        (
            EthtoolChannels {
                combined_count: 0,
                ..c0
            },
            "combined",
        ),
        (EthtoolChannels { rx_count: 2, ..c0 }, "rx"),
        (
            EthtoolChannels {
                other_count: 0,
                ..c0
            },
            "other",
        ),
    ] {
        let e = ops.set_channels(&bad).unwrap_err();
        assert!(
            matches!(e, EthtoolError::InvalidParam { param: p, .. } if p == param),
            "{e}"
        );
        assert_eq!(ops.get_channels().unwrap(), c0);
    }
    let e = ops
        .set_channels(&EthtoolChannels {
            combined_count: 99,
            ..c0
        })
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid combined value 99: accepts 1..=16");
    ops.set_channels(&EthtoolChannels {
        combined_count: 16,
        ..c0
    })
    .unwrap();
    assert_eq!(ops.get_channels().unwrap().combined_count, 16);
    // Coalescing.
    let k0 = ops.get_coalesce().unwrap();
    assert_eq!((k0.rx_coalesce_usecs, k0.tx_coalesce_usecs), (3, 3));
    for (bad, param) in [
        (
            EthtoolCoalesce {
                rx_coalesce_usecs: 2,
                ..k0
            },
            "rx-usecs",
        ),
        (
            EthtoolCoalesce {
                rx_coalesce_usecs: 5,
                ..k0
            },
            "rx-usecs",
        ),
        (
            EthtoolCoalesce {
                tx_coalesce_usecs: 10001,
                ..k0
            },
            "tx-usecs",
        ),
        (
            EthtoolCoalesce {
                rx_max_coalesced_frames: 5000,
                ..k0
            },
            "rx-frames",
        ),
        (
            EthtoolCoalesce {
                tx_max_coalesced_frames: 4097,
                ..k0
            },
            "tx-frames",
        ),
    ] {
        let e = ops.set_coalesce(&bad).unwrap_err();
        assert!(
            matches!(e, EthtoolError::InvalidParam { param: p, .. } if p == param),
            "{e}"
        );
        assert_eq!(ops.get_coalesce().unwrap(), k0);
    }
    let e = ops
        .set_coalesce(&EthtoolCoalesce {
            use_adaptive_rx_coalesce: true,
            ..k0
        })
        .unwrap_err();
    assert!(matches!(e, EthtoolError::NotSupported { .. }));
    let k = EthtoolCoalesce {
        rx_coalesce_usecs: 50,
        rx_max_coalesced_frames: 8,
        tx_coalesce_usecs: 0,
        tx_max_coalesced_frames: 0,
        ..k0
    };
    ops.set_coalesce(&k).unwrap();
    assert_eq!(ops.get_coalesce().unwrap(), k);
    // Features.
    let (f0, hw) = ops.get_features().unwrap();
    assert!(f0.contains(NetdevFeatures::TSO | NetdevFeatures::RXCSUM));
    let e = ops.set_features(f0 | NetdevFeatures::LRO).unwrap_err();
    assert!(matches!(
        e,
        EthtoolError::InvalidParam {
            param: "features",
            ..
        }
    ));
    assert_eq!(ops.get_features().unwrap(), (f0, hw));
    ops.set_features(f0 - NetdevFeatures::SG).unwrap();
    let (f, _) = ops.get_features().unwrap();
    assert!(!f.contains(NetdevFeatures::TSO), "TSO needs scatter-gather");
    // Statistics: igb's names and order.
    let names: Vec<String> = ops
        .get_ethtool_stats()
        .into_iter()
        .map(|(n, _)| n.into_owned())
        .collect();
    assert_eq!(
        &names[..4],
        ["rx_packets", "tx_packets", "rx_bytes", "tx_bytes"]
    );
    assert_eq!(names[10], "rx_crc_errors");
    assert_eq!(names[12], "rx_missed_errors");
    assert_eq!(names[42], "rx_errors");
    assert_eq!(names[51], "tx_queue_0_packets");
    assert_eq!(names[53], "tx_queue_0_restart");
    assert_eq!(names.len(), 51 + 16 * 3 + 16 * 5);
    assert_eq!(names[51 + 48], "rx_queue_0_packets");
    drop(nd);
    // The device still passes traffic after all that (16 queues, 4096 rx).
    xmit(
        &mut sim,
        0,
        &udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 32),
    );
    step(&mut sim, Duration::from_millis(1));
    assert_eq!(sim.hosts[1].delivered.len(), 1);
}

#[test]
fn removing_devices_during_traffic_leaks_nothing() {
    let pool = PagePool::new(PagePoolParams::default()).unwrap();
    let start = pool.stats().inflight();
    let mut sim = Sim::two_nics_with_pool(LinkConfig::new(), 11, pool.clone(), 1);
    assert!(pool.stats().inflight() > start, "rings hold posted buffers");
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 200);
    for i in 0..400 {
        xmit(&mut sim, 0, &frame);
        if i % 3 == 0 {
            step(&mut sim, Duration::from_micros(1));
        }
        if i == 200 {
            let bdf = sim.hosts[1].bdf;
            sim.hosts[1].bus.remove_device(bdf).unwrap();
            assert!(sim.hosts[1].driver.netdev(bdf).is_none());
            let nd = sim.hosts[1].netdev.take().unwrap();
            assert!(!nd.lock().is_up());
            assert!(nd.lock().open().is_err(), "a removed device cannot open");
        }
    }
    // Host A's device goes away with frames still in its tx ring.
    let bdf = sim.hosts[0].bdf;
    sim.hosts[0].bus.remove_device(bdf).unwrap();
    let nd = sim.hosts[0].netdev.take().unwrap();
    assert!(matches!(
        nd.lock()
            .start_xmit(SkBuff::from_slice(&pool, 0, &frame).unwrap(), 0),
        NetdevTx::Ok
    ));
    drop(nd);
    step(&mut sim, Duration::from_millis(1));
    assert!(!sim.hosts[1].delivered.is_empty());
    for h in &mut sim.hosts {
        h.delivered.clear();
    }
    assert_eq!(pool.stats().inflight(), start);
    let _ = Instant::ZERO;
    let _ = IGB_SKB_PAD;
}

/// What a host's teardown must give back: every pool buffer, and the last
/// reference to its IRQ table and its device model.
struct Refs {
    irqs: std::sync::Weak<irq::IrqTable>,
    dev: std::sync::Weak<nic_hw::IgbDevice>,
}

fn refs(sim: &Sim) -> [Refs; 2] {
    [0, 1].map(|i| Refs {
        irqs: std::sync::Arc::downgrade(&sim.hosts[i].irqs),
        dev: std::sync::Arc::downgrade(&sim.hosts[i].dev),
    })
}

fn traffic(sim: &mut Sim) {
    let frame = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 200);
    for _ in 0..300 {
        xmit(sim, 0, &frame);
        step(sim, Duration::from_micros(2));
    }
    step(sim, Duration::from_millis(1));
    assert_eq!(sim.hosts[1].delivered.len(), 300);
}

#[test]
fn open_traffic_close_drop_returns_every_buffer_and_reference() {
    let pool = PagePool::new(PagePoolParams::default()).unwrap();
    let start = pool.stats().inflight();
    let mut sim = Sim::two_nics_with_pool(LinkConfig::new(), 5, pool.clone(), 1);
    let refs = refs(&sim);
    traffic(&mut sim);
    for h in &mut sim.hosts {
        h.nd().stop().unwrap();
        h.delivered.clear();
    }
    assert_eq!(
        pool.stats().inflight(),
        start,
        "close gave every buffer back"
    );
    // igb_close() freed the IRQs: only the host itself holds its table.
    for (h, r) in sim.hosts.iter().zip(&refs) {
        assert_eq!(std::sync::Arc::strong_count(&h.irqs), r.irqs.strong_count());
    }
    drop(sim);
    for r in &refs {
        assert_eq!(r.irqs.strong_count(), 0, "IRQ table freed");
        assert_eq!(r.dev.strong_count(), 0, "device model freed");
    }
    assert_eq!(pool.stats().inflight(), start);
}

#[test]
fn dropping_hosts_that_are_up_frees_their_rings() {
    // No close: the hosts go away with their devices up, NAPIs and IRQs
    // registered and buffers posted (what dropping a whole network does).
    let pool = PagePool::new(PagePoolParams::default()).unwrap();
    let start = pool.stats().inflight();
    let mut sim = Sim::two_nics_with_pool(LinkConfig::new(), 6, pool.clone(), 1);
    let refs = refs(&sim);
    traffic(&mut sim);
    // One more frame reaches host B's ring and its IRQ schedules the NAPI,
    // which is still listed (not polled) when the hosts go away.
    xmit(
        &mut sim,
        0,
        &udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 200),
    );
    let now = sim.now;
    sim.hosts[0].run(now);
    let t = now + Duration::from_millis(1);
    let b = &sim.hosts[1];
    assert_eq!(b.dev.poll(t), 1, "the frame arrived");
    b.dev.on_timer(t + Duration::from_millis(1)); // rx-usecs expires
    b.irqs.handle_pending(0, &b.softirqs).unwrap();
    assert_eq!(
        b.lists.cpu(0).unwrap().len(),
        1,
        "NAPI scheduled, not polled"
    );
    assert!(pool.stats().inflight() > start, "rings hold posted buffers");
    drop(sim);
    for r in &refs {
        assert_eq!(r.irqs.strong_count(), 0, "IRQ table freed");
        assert_eq!(r.dev.strong_count(), 0, "device model freed");
    }
    assert_eq!(pool.stats().inflight(), start, "every rx buffer came back");
}

/// igb's dynamic conservative moderation (`rx-usecs` 3): the first
/// interrupt comes at once and writes `IGB_START_ITR`; lone small frames
/// settle at `IGB_20K_ITR` (49 µs between interrupts), bursts of full
/// frames at `IGB_4K_ITR` (245 µs), each written at the next interrupt.
#[test]
fn dynamic_itr_follows_the_traffic() {
    let mut sim = Sim::two_nics(LinkConfig::new(), 3);
    let eitr = |sim: &Sim| sim.hosts[1].dev.rd32(nic_hw::e1000_regs::eitr(1));
    let small = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 64);
    let full = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 1472);
    xmit(&mut sim, 0, &small);
    step(&mut sim, Duration::from_micros(20));
    assert_eq!(
        sim.hosts[1].delivered.len(),
        1,
        "the first interrupt is at once"
    );
    assert_eq!(eitr(&sim), nic_hw::IGB_START_ITR);
    step(&mut sim, Duration::from_micros(500));
    xmit(&mut sim, 0, &small);
    step(&mut sim, Duration::from_micros(20));
    assert_eq!(sim.hosts[1].delivered.len(), 2);
    assert_eq!(
        eitr(&sim),
        nic_hw::IGB_20K_ITR,
        "conservative: low, not lowest"
    );
    // 49 µs between interrupts: a frame 10 µs after one waits.
    let t0 = sim.now;
    xmit(&mut sim, 0, &small);
    step(&mut sim, Duration::from_micros(5));
    assert_eq!(sim.hosts[1].delivered.len(), 2, "held by EITR");
    step(&mut sim, Duration::from_micros(60));
    assert_eq!(sim.hosts[1].delivered.len(), 3);
    assert!(sim.now >= t0 + Duration::from_micros(49));
    // A burst of full frames moves the vector to bulk.
    step(&mut sim, Duration::from_micros(500));
    for _ in 0..64 {
        xmit(&mut sim, 0, &full);
    }
    step(&mut sim, Duration::from_micros(500));
    xmit(&mut sim, 0, &small);
    step(&mut sim, Duration::from_micros(500));
    assert_eq!(sim.hosts[1].delivered.len(), 3 + 64 + 1);
    assert_eq!(eitr(&sim), nic_hw::IGB_4K_ITR);
}

/// Virtual time of one request/response exchange of small frames between
/// the two NICs with `rx-usecs` `usecs` on both, the reply sent as soon as
/// the request is delivered.
fn ping_pong_micros(usecs: u32) -> u64 {
    let mut sim = Sim::two_nics(LinkConfig::new(), 4);
    for h in &sim.hosts {
        h.nd()
            .ethtool_ops()
            .unwrap()
            .set_coalesce(&EthtoolCoalesce {
                rx_coalesce_usecs: usecs,
                tx_coalesce_usecs: usecs,
                ..EthtoolCoalesce::default()
            })
            .unwrap();
    }
    let req = udp_frame(MAC_A, MAC_B, IP_A, IP_B, (1, 2), 1);
    let resp = udp_frame(MAC_B, MAC_A, IP_B, IP_A, (2, 1), 1);
    let exchange = |sim: &mut Sim, from: usize, frame: &[u8]| {
        let to = 1 - from;
        let want = sim.hosts[to].delivered.len() + 1;
        xmit(sim, from, frame);
        while sim.hosts[to].delivered.len() < want {
            step(sim, Duration::from_micros(1));
        }
    };
    // Let the dynamic modes settle, then time 100 exchanges.
    for _ in 0..20 {
        exchange(&mut sim, 0, &req);
        exchange(&mut sim, 1, &resp);
    }
    let t0 = sim.now;
    for _ in 0..100 {
        exchange(&mut sim, 0, &req);
        exchange(&mut sim, 1, &resp);
    }
    (sim.now - t0).as_micros() as u64 / 100
}

/// Request/response traffic: conservative dynamic moderation (the
/// default) holds each vector to `IGB_20K_ITR`, so an exchange (each side
/// interrupts for its send's completion, then for the other side's
/// frame) takes about 49 µs; dynamic mode 1 reaches `IGB_70K_ITR`
/// (14 µs); `rx-usecs` 0 leaves igb's smallest interval (1 µs).
#[test]
fn request_response_latency_follows_the_itr_mode() {
    let conservative = ping_pong_micros(3);
    let dynamic = ping_pong_micros(1);
    let none = ping_pong_micros(0);
    assert!((49..=51).contains(&conservative), "{conservative} µs");
    assert!((14..=16).contains(&dynamic), "{dynamic} µs");
    assert!(none <= 5, "{none} µs");
}
