//! Cost per packet of one enqueue plus one dequeue.
//!
//! The skbs are allocated once from a page pool and cycled: each
//! iteration enqueues the packet dequeued by the previous one, so the
//! figures are the qdisc's own work, not allocation.

use benchkit::{black_box, measure, report};
use netcore::{Instant, PagePool, PagePoolParams, SkBuff};
use qdisc::Qdisc;

/// Packets kept in flight in the qdisc while measuring.
const INFLIGHT: usize = 256;

fn skbs(pool: &PagePool, n: usize, len: usize) -> Vec<SkBuff> {
    (0..n)
        .map(|i| {
            let mut skb = SkBuff::alloc(pool, len).expect("pool buffer");
            skb.put_zero(len).expect("tailroom");
            skb.priority = (i % 16) as u32;
            skb.set_hash((i as u32).wrapping_mul(0x9e37_79b9), true);
            skb
        })
        .collect()
}

/// Fills `q` with `INFLIGHT` packets, then measures dequeue + enqueue of
/// the dequeued packet (virtual time advancing 1 µs per packet).
fn bench_cycle(name: &str, q: &mut dyn Qdisc, pool: &PagePool) {
    let mut now = Instant::ZERO;
    for skb in skbs(pool, INFLIGHT, 1500) {
        let _ = q.enqueue(skb, now);
    }
    let per = measure(|| {
        now += core::time::Duration::from_micros(1);
        let skb = q.dequeue(now).expect("the qdisc holds packets");
        black_box(q.enqueue(skb, now))
    });
    report(name, per.as_nanos_f64(), "ns/pkt");
}

fn main() {
    let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
    bench_cycle(
        "pfifo_fast enqueue+dequeue",
        &mut qdisc::PfifoFast::new(1000),
        &pool,
    );
    bench_cycle(
        "fq_codel enqueue+dequeue",
        &mut qdisc::FqCodel::default(),
        &pool,
    );
}
