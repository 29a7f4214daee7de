//! SkBuff and page-pool costs: the per-packet allocation the whole stack
//! pays, against a plain `Vec` allocation as a baseline.

use benchkit::{black_box, measure, report};
use netcore::{PagePool, PagePoolParams, SkBuff};

fn main() {
    let pool = PagePool::new(PagePoolParams::default()).expect("default params are valid");
    pool.prefill(64);
    let warm = pool.stats();

    let t = measure(|| {
        let mut skb = SkBuff::netdev_alloc(&pool, 1514).expect("pool is unbounded");
        skb.put(60).expect("tailroom").fill(0xab);
        black_box(skb.len())
    });
    report("skb alloc+free (pool)", t.as_nanos_f64(), "ns");

    let t = measure(|| black_box(pool.alloc().expect("pool is unbounded")).len());
    report("page pool alloc+free", t.as_nanos_f64(), "ns");

    // The rx buffer's life: the device writes a frame into a PageBuf (unique
    // by type, no reference count touched), the driver builds an skb on it
    // (`napi_build_skb()`), the stack frees it back to the thread's cache.
    let t = measure(|| {
        let mut buf = pool.alloc().expect("pool is unbounded");
        buf[64..128].fill(0xab);
        let skb = SkBuff::from_page(buf, 64, 64).expect("fits");
        black_box(skb.len())
    });
    report(
        "rx buffer alloc+write 64 B+build_skb+free",
        t.as_nanos_f64(),
        "ns",
    );

    let t = measure(|| {
        let mut v = black_box(Vec::<u8>::with_capacity(2048));
        v.resize(60, 0xab);
        black_box(&v);
        v.len()
    });
    report("skb alloc+free (Vec baseline)", t.as_nanos_f64(), "ns");

    let skb = SkBuff::from_slice(&pool, 64, &[0xab; 1500]).expect("fits");
    let t = measure(|| black_box(skb.clone()).len());
    report("skb clone", t.as_nanos_f64(), "ns");

    let t = measure(|| {
        let mut c = skb.clone();
        c.data_mut().expect("pool is unbounded")[0] = 1;
        black_box(c.len())
    });
    report(
        "skb clone+write (copy on write, 1500 B)",
        t.as_nanos_f64(),
        "ns",
    );

    let stats = pool.stats();
    report(
        "page pool buffers created after warm-up",
        (stats.alloc_slow - warm.alloc_slow) as f64,
        "buffers",
    );
}
