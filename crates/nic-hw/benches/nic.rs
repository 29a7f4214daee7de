//! Packet rate of the simulated NIC and the igb driver, single core,
//! 64-byte frames, in million frames per second — the two figures issue 3
//! asks for, and two that put them in context.
//!
//! - **rx (the figure)**: `igb rx 64 B: wire → device → ring →
//!   driver reap + refill`. The timed region is, per frame,
//!   [`IgbHw::receive_frame`](nic_hw::IgbHw::receive_frame) — the MAC's
//!   length checks, the FCS check, the MAC filter, RSS, the receive
//!   checksum offload, the DMA copy into the posted buffer, the write-back
//!   with `DD`, and the rx moderation step — and, per batch of 64,
//!   [`IgbAdapter::igb_clean_rx_irq_xdp_drop`](nic_hw::IgbAdapter::igb_clean_rx_irq_xdp_drop):
//!   test `DD`, read the write-back, take the buffer, post it again, bump
//!   `RDT`, count. That is "wire → device → rx ring → driver reap" and
//!   nothing above it: no skb is built, nothing goes to GRO or softnet,
//!   as in Linux's drop benchmarks (an XDP program returning `XDP_DROP`
//!   on igb, `igb_run_xdp()` + `igb_reuse_rx_page()`).
//! - **rx with skbs**: the same frames reaped by the queue's NAPI poll
//!   (`igb_poll` → `igb_clean_rx_irq()`), which builds an skb per frame,
//!   fills its fields and hands it to `napi_gro_receive()` (GRO off) —
//!   the NAPI issue's figure, kept here to show the cost of the skb.
//! - **MAC receive alone**: `receive_frame` only, ns per frame.
//! - **tx (the figure)**: `igb tx 64 B: driver fill → device send →
//!   clean` — the driver takes the batch of 64 skbs as one xmit_more run
//!   ([`IgbAdapter::igb_xmit_frames`](nic_hw::IgbAdapter::igb_xmit_frames):
//!   descriptors filled under one hold of the ring, `TDT` written once),
//!   the device sends
//!   (FCS appended, to no PHY) and writes back `DD`, NAPI cleans and frees
//!   the skbs; the skbs themselves are built outside the timed region.
//!   `igb tx 64 B + skb alloc` times their construction too, and `one
//!   start_xmit per skb` the same frames without xmit_more (a lock and a
//!   doorbell each).
//!
//! Every figure is checked after it is taken: the rx figures count only if
//! every frame went into the ring (none missed for want of a descriptor)
//! and was reaped, the tx figure only if every frame was sent and cleaned.

use core::net::Ipv4Addr;

use benchkit::{black_box, measure, report};
use napi::{napi_poll, napi_schedule_on};
use netcore::{Instant, NetDevice, PagePool, PagePoolParams, SkBuff};
use nic_hw::testutil::{MAC_A, MAC_B, TestHost, udp_frame};
use nic_hw::{RxOutcome, append_fcs, e1000_regs as r};

const BATCH: usize = 64;
/// Batches of prebuilt skbs per sample of the tx figure.
const TX_SETS: usize = 16;

/// Schedules queue 0's NAPI on CPU 0 (as its interrupt would) and polls it
/// until it completes, as `net_rx_action` does (a poll that used its
/// whole weight is polled again); drops what it delivers.
fn poll_once(h: &TestHost, sink: &mut Vec<SkBuff>) -> usize {
    let napi = h.nd().napi(0).cloned().expect("device is up");
    let _ = napi_schedule_on(&napi, 0, &h.softirqs);
    let list = h.lists.cpu(0).expect("cpu 0");
    let mut work = 0;
    while let Some(n) = list.pop_front() {
        if let Ok(r) = napi_poll(&n, 0, &h.softirqs, sink, Instant::ZERO) {
            work += r.work;
            if r.repoll {
                list.list_add_tail(n);
            }
        }
        sink.clear();
    }
    work
}

/// The device's missed-frame counter (`MPC`, clear on read).
fn missed(h: &TestHost) -> u32 {
    h.dev.rd32(r::MPC)
}

fn main() {
    let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
    // Receiver: no PHY; frames are handed to the MAC directly.
    let mut rx = TestHost::new(MAC_B, None, 1, pool.clone());
    rx.open();
    {
        let mut nd = rx.nd();
        let ops = nd.ethtool_ops().expect("igb has ethtool ops");
        let (f, _) = ops.get_features().expect("features");
        ops.set_features(f - netcore::NetdevFeatures::GRO)
            .expect("GRO off");
    }
    let mut frame = udp_frame(
        MAC_A,
        MAC_B,
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 0, 2),
        (1000, 2000),
        18,
    );
    append_fcs(&mut frame);
    assert_eq!(frame.len(), 64);
    let mut sink = Vec::with_capacity(BATCH);
    let _ = missed(&rx);

    // The figure: wire → device → ring → driver reap + refill.
    let packets_before = rx.nd().stats64().rx_packets;
    let mut reaped = 0u64;
    let mut sent = 0u64;
    let per = measure(|| {
        {
            let mut hw = rx.dev.lock();
            for _ in 0..BATCH {
                let o = hw.receive_frame(Instant::ZERO, black_box(&frame));
                debug_assert!(matches!(o, RxOutcome::Received { .. }));
            }
        }
        sent += BATCH as u64;
        let n = rx.nd().igb_clean_rx_irq_xdp_drop(0, BATCH);
        reaped += n as u64;
        black_box(n)
    });
    assert_eq!(missed(&rx), 0, "every frame found a posted descriptor");
    assert_eq!(reaped, sent, "every frame was reaped");
    assert_eq!(
        rx.nd().stats64().rx_packets - packets_before,
        sent,
        "rx_packets counts every reaped frame"
    );
    report(
        "igb rx 64 B: wire → device → ring → driver reap + refill",
        per.millions_per_second() * BATCH as f64,
        "Mpps",
    );

    // The same frames reaped by NAPI, with an skb built for each.
    let per = measure(|| {
        {
            let mut hw = rx.dev.lock();
            for _ in 0..BATCH {
                let o = hw.receive_frame(Instant::ZERO, black_box(&frame));
                debug_assert!(matches!(o, RxOutcome::Received { .. }));
            }
        }
        black_box(poll_once(&rx, &mut sink))
    });
    assert_eq!(missed(&rx), 0, "every frame found a posted descriptor");
    report(
        "igb rx 64 B + skb: wire → ring → NAPI poll, skb, GRO off",
        per.millions_per_second() * BATCH as f64,
        "Mpps",
    );

    // The MAC's receive path alone (FCS, filter, RSS, DMA, write-back),
    // with the reap outside the timed loop: three batches fill the ring
    // (256 descriptors), then it is reaped before the next sample.
    let mut setups = 0usize;
    let per = benchkit::measure_with_setup(
        || {
            if setups.is_multiple_of(3) {
                poll_once(&rx, &mut sink);
            }
            setups += 1;
        },
        |()| {
            let mut hw = rx.dev.lock();
            for _ in 0..BATCH {
                black_box(hw.receive_frame(Instant::ZERO, black_box(&frame)));
            }
        },
        3,
    );
    poll_once(&rx, &mut sink);
    assert_eq!(missed(&rx), 0, "every frame found a posted descriptor");
    report(
        "igb rx 64 B, MAC receive alone",
        per.as_nanos_f64() / BATCH as f64,
        "ns/frame",
    );

    // Transmit: driver fill → device send (to no PHY) → clean.
    let mut tx = TestHost::new(MAC_A, None, 1, pool.clone());
    tx.open();
    let payload = &frame[..60];
    let per = measure(|| {
        {
            let mut nd = tx.nd();
            for _ in 0..BATCH {
                let skb = SkBuff::from_slice(&pool, 64, black_box(payload)).expect("pool");
                black_box(nd.start_xmit(skb, 0));
            }
        }
        tx.dev.poll(Instant::ZERO);
        black_box(poll_once(&tx, &mut sink))
    });
    let stats = tx.nd().stats64();
    assert_eq!(stats.tx_dropped, 0, "no frame dropped");
    assert!(stats.tx_packets >= BATCH as u64, "frames sent and cleaned");
    report(
        "igb tx 64 B + skb alloc: xmit → device send → clean",
        per.millions_per_second() * BATCH as f64,
        "Mpps",
    );

    // The tx figure: the skbs come from the stack, so they are
    // built outside the timed region; the timed region is the driver's
    // xmit of the run (descriptors filled under one hold of the ring, `TDT`
    // written once: `netdev_xmit_more()`), the device's transmit engine
    // (FCS appended, sent to no PHY, `DD` written back) and the NAPI clean
    // that frees the skbs.
    let tx_figure = |name: &str, more: bool, sink: &mut Vec<SkBuff>| {
        let before = tx.nd().stats64().tx_packets;
        let mut timed = 0u64;
        let per = benchkit::measure_with_setup(
            || {
                (0..BATCH)
                    .map(|_| SkBuff::from_slice(&pool, 64, payload).expect("pool"))
                    .collect::<Vec<_>>()
            },
            |skbs| {
                {
                    let mut nd = tx.nd();
                    if more {
                        black_box(nd.igb_xmit_frames(&mut skbs.into_iter(), 0));
                    } else {
                        for skb in skbs {
                            black_box(nd.start_xmit(skb, 0));
                        }
                    }
                }
                tx.dev.poll(Instant::ZERO);
                timed += BATCH as u64;
                black_box(poll_once(&tx, sink))
            },
            TX_SETS,
        );
        let stats = tx.nd().stats64();
        assert_eq!(stats.tx_dropped, 0, "no frame dropped");
        assert_eq!(
            stats.tx_packets - before,
            timed,
            "every frame sent and cleaned"
        );
        report(name, per.millions_per_second() * BATCH as f64, "Mpps");
    };
    tx_figure(
        "igb tx 64 B: driver fill → device send → clean",
        true,
        &mut sink,
    );
    // The same with one start_xmit (lock, fill, TDT) per skb.
    tx_figure(
        "igb tx 64 B, one start_xmit per skb (no xmit_more)",
        false,
        &mut sink,
    );
}
