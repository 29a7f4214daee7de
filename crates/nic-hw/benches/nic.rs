//! Packet rate of the simulated NIC and the igb driver, single core:
//! rx (frame from the wire → MAC checks → DMA into the rx ring → NAPI poll
//! builds skbs and refills) and tx (xmit fills the ring → device sends →
//! NAPI cleans), 64-byte frames.

use core::net::Ipv4Addr;

use benchkit::{black_box, measure, report};
use napi::{napi_poll, napi_schedule_on};
use netcore::{Instant, NetDevice, PagePool, PagePoolParams, SkBuff};
use nic_hw::testutil::{MAC_A, MAC_B, TestHost, udp_frame};
use nic_hw::{RxOutcome, append_fcs};

const BATCH: usize = 64;

/// Polls queue 0's NAPI once on CPU 0, dropping what it delivers.
fn poll_once(h: &TestHost, sink: &mut Vec<SkBuff>) -> usize {
    let napi = h.nd().napi(0).cloned().expect("device is up");
    let _ = napi_schedule_on(&napi, 0, &h.softirqs);
    let mut work = 0;
    while let Some(n) = h.lists.cpu(0).expect("cpu 0").pop_front() {
        if let Ok(r) = napi_poll(&n, 0, &h.softirqs, sink, Instant::ZERO) {
            work += r.work;
        }
    }
    sink.clear();
    work
}

fn main() {
    let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
    // Receiver: no PHY; frames are handed to the MAC directly.
    let mut rx = TestHost::new(MAC_B, None, 1, pool.clone());
    rx.open();
    {
        // Frame-only moderation off the timer path: every frame raises the
        // cause, as rx-usecs 0 does; the bench polls NAPI itself.
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
    report(
        "igb rx 64 B: wire → ring → NAPI reap + refill",
        per.millions_per_second() * BATCH as f64,
        "Mpps",
    );

    // The MAC's receive path alone (FCS, filter, RSS, DMA, write-back).
    let per = measure(|| {
        let mut hw = rx.dev.lock();
        for _ in 0..BATCH {
            black_box(hw.receive_frame(Instant::ZERO, black_box(&frame)));
        }
        drop(hw);
        poll_once(&rx, &mut sink);
    });
    report(
        "igb rx 64 B, batch of 64 incl. reap",
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
    report(
        "igb tx 64 B: xmit → device send → clean",
        per.millions_per_second() * BATCH as f64,
        "Mpps",
    );
}
