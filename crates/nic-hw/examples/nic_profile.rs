//! A fixed-count run of the `nic` bench's rx and tx loops, for instruction
//! profiles (`valgrind --tool=callgrind`, `perf record`), where the bench's
//! time-calibrated loops would run a count that depends on the tool's
//! slowdown.
//!
//! `cargo build --release -p nic-hw --example nic_profile`, then run it
//! under the profiler with `reap`, `rx`, `tx`, `tx1`, `idle` or `csum72` and a batch count
//! (64 frames per batch): `nic_profile reap 10000`. `reap` is the `nic` bench's
//! issue figure (wire → device → ring → driver reap + refill, no skb),
//! `rx` the NAPI poll with skbs, `tx` xmit (one xmit_more run per batch)
//! → send → clean, `tx1` the same with one `start_xmit` per skb, `idle` 64
//! device polls and `handle_pending` calls with nothing to do, `csumN` 64
//! `wire::csum_partial()` calls on N bytes (at most 2048; `csum72` is a
//! small UDP datagram).

use core::net::Ipv4Addr;
use std::hint::black_box;

use napi::{napi_poll, napi_schedule_on};
use netcore::{Instant, NetDevice, NetdevFeatures, PagePool, PagePoolParams, SkBuff};
use nic_hw::testutil::{MAC_A, MAC_B, TestHost, udp_frame};
use nic_hw::{RxOutcome, append_fcs};

const BATCH: usize = 64;

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

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "rx".into());
    let batches: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
    let mut frame = udp_frame(
        MAC_A,
        MAC_B,
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 0, 2),
        (1000, 2000),
        18,
    );
    append_fcs(&mut frame);
    let mut sink = Vec::with_capacity(BATCH);
    let mut host = TestHost::new(
        if what.starts_with("tx") { MAC_A } else { MAC_B },
        None,
        1,
        pool.clone(),
    );
    host.open();
    {
        let mut nd = host.nd();
        let ops = nd.ethtool_ops().expect("igb has ethtool ops");
        let (f, _) = ops.get_features().expect("features");
        ops.set_features(f - NetdevFeatures::GRO).expect("GRO off");
    }
    let data: Vec<u8> = (0..2048u32).map(|i| (i as u8).wrapping_mul(37)).collect();
    let mut total = 0usize;
    for _ in 0..batches {
        if let Some(n) = what
            .strip_prefix("csum")
            .and_then(|n| n.parse::<usize>().ok())
        {
            // The shared `csum_partial()` on an `n`-byte buffer (`csum72`: a
            // 72-byte datagram, what a UDP receive sums), 64 times per batch.
            let data = &data[..n.min(data.len())];
            for _ in 0..BATCH {
                total += black_box(wire::csum_partial(black_box(data), 0)) as usize & 1;
            }
        } else if what == "idle" {
            // What a CPU's runner does on every turn with nothing to do:
            // poll the device, handle pending hard IRQs.
            for _ in 0..BATCH {
                total += host.dev.poll(Instant::ZERO);
                total += host.irqs.handle_pending(0, &host.softirqs).expect("cpu 0");
            }
        } else if what == "reap" {
            {
                let mut hw = host.dev.lock();
                for _ in 0..BATCH {
                    let o = hw.receive_frame(Instant::ZERO, black_box(&frame));
                    debug_assert!(matches!(o, RxOutcome::Received { .. }));
                }
            }
            total += host.nd().igb_clean_rx_irq_xdp_drop(0, BATCH);
        } else if what == "rx" {
            {
                let mut hw = host.dev.lock();
                for _ in 0..BATCH {
                    let o = hw.receive_frame(Instant::ZERO, black_box(&frame));
                    debug_assert!(matches!(o, RxOutcome::Received { .. }));
                }
            }
            total += poll_once(&host, &mut sink);
        } else if what == "tx1" {
            {
                let mut nd = host.nd();
                for _ in 0..BATCH {
                    let skb = SkBuff::from_slice(&pool, 64, black_box(&frame[..60])).expect("pool");
                    black_box(nd.start_xmit(skb, 0));
                }
            }
            host.dev.poll(Instant::ZERO);
            total += poll_once(&host, &mut sink);
        } else {
            let mut skbs = (0..BATCH)
                .map(|_| SkBuff::from_slice(&pool, 64, black_box(&frame[..60])).expect("pool"));
            black_box(host.nd().igb_xmit_frames(&mut skbs, 0));
            host.dev.poll(Instant::ZERO);
            total += poll_once(&host, &mut sink);
        }
    }
    println!("{what}: {total} frames polled in {batches} batches of {BATCH}");
}
