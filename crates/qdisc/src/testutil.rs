//! Packet fixtures for tests of qdiscs and of the layers that drive them.
//!
//! Compiled for this crate's tests and, with the `testutils` feature, for
//! other crates' tests.

use netcore::{PagePool, PagePoolParams, SkBuff};

/// An unbounded pool with the default buffer classes.
pub fn pool() -> PagePool {
    PagePool::new(PagePoolParams::default()).expect("default pool parameters are valid")
}

/// An skb of `len` zero bytes, priority 0, no hash.
pub fn skb_len(pool: &PagePool, len: usize) -> SkBuff {
    let mut skb = SkBuff::alloc(pool, len).expect("pool buffer for a test skb");
    skb.put_zero(len).expect("room for the test payload");
    skb
}

/// An skb of `len` bytes with `skb.priority = priority`.
pub fn skb_prio(pool: &PagePool, len: usize, priority: u32) -> SkBuff {
    let mut skb = skb_len(pool, len);
    skb.priority = priority;
    skb
}

/// An skb of `len` bytes with the flow hash `hash` (as if computed by the
/// NIC or the stack, `l4_hash` set).
pub fn skb_hash(pool: &PagePool, len: usize, hash: u32) -> SkBuff {
    let mut skb = skb_len(pool, len);
    skb.set_hash(hash, true);
    skb
}
