//! The one buffer pool of the stack: fixed-size buffers recycled without
//! allocation.
//!
//! Mirrors `net/core/page_pool.c` and `include/net/page_pool/types.h`. A
//! driver allocates empty buffers ([`PageBuf`]) from a [`PagePool`], posts
//! them to its rx ring, the device writes a frame into one, and the driver
//! turns it into an [`SkBuff`](crate::SkBuff) without copying
//! ([`SkBuff::from_page`](crate::SkBuff::from_page)). When the last handle
//! to a buffer is dropped — on whatever thread — the buffer goes back to
//! the pool's recycle ring, so a stack in steady state allocates nothing.
//!
//! ```text
//!   PagePool ── alloc() ──▶ PageBuf ──▶ rx ring ──▶ SkBuff::from_page ──▶ ... ──▶ drop
//!      ▲                                                                         │
//!      └──────────────────────── recycle ring (pool_size) ◀──────────────────────┘
//! ```
//!
//! # Deviations from Linux
//!
//! - Linux keeps a lockless per-NAPI `alloc` cache in front of a `ptr_ring`
//!   that other CPUs recycle into. Here each size class has one
//!   `parking_lot` mutex around a preallocated free list: the fast path is
//!   one uncontended lock, a `Vec::pop` and a reference-count increment.
//!   The free-list lock is a leaf lock (see [`lock_order`](crate::lock_order)).
//! - Linux pools hand out pages of one order; here a pool has one or two
//!   size classes (the second for GSO/GRO skbs up to 64 KiB plus headroom).
//! - A pool may be *bounded* ([`SizeClass::limit`]): it then creates at most
//!   that many buffers and [`PagePool::alloc`] returns `None` when all are in
//!   use (counted in [`PagePoolStats::alloc_fail`]), like a NIC whose buffer
//!   memory is fixed. Linux's pool falls back to the page allocator instead.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use parking_lot::Mutex;

/// The default buffer size: room for a 1500-byte frame plus headroom.
pub const PAGE_POOL_DEFAULT_BUF_SIZE: usize = 2048;

/// The default capacity of a size class's recycle ring.
pub const PAGE_POOL_DEFAULT_POOL_SIZE: usize = 1024;

/// The largest GSO/GRO packet, in bytes.
///
/// Mirrors `GSO_LEGACY_MAX_SIZE` in `include/linux/netdevice.h`.
#[doc(alias = "GSO_LEGACY_MAX_SIZE")]
pub const GSO_MAX_SIZE: usize = 65536;

/// One size class of a [`PagePool`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeClass {
    /// The size of every buffer of the class, in bytes.
    pub buf_size: usize,
    /// How many free buffers the recycle ring keeps; a buffer returned to a
    /// full ring is released to the allocator. Mirrors
    /// `page_pool_params.pool_size`.
    pub pool_size: usize,
    /// At most this many buffers exist at once (free or in use); `None`
    /// for no bound.
    pub limit: Option<usize>,
}

impl SizeClass {
    /// The default class: [`PAGE_POOL_DEFAULT_BUF_SIZE`]-byte buffers, a ring
    /// of [`PAGE_POOL_DEFAULT_POOL_SIZE`], unbounded.
    pub const DEFAULT: SizeClass = SizeClass {
        buf_size: PAGE_POOL_DEFAULT_BUF_SIZE,
        pool_size: PAGE_POOL_DEFAULT_POOL_SIZE,
        limit: None,
    };

    /// The large class for GSO/GRO skbs: [`GSO_MAX_SIZE`] plus
    /// [`NET_SKB_PAD`](crate::NET_SKB_PAD) of headroom and room for a
    /// link-layer header, a ring of 64, unbounded.
    pub const GSO: SizeClass = SizeClass {
        buf_size: GSO_MAX_SIZE + crate::skbuff::NET_SKB_PAD + 64,
        pool_size: 64,
        limit: None,
    };
}

/// How a [`PagePool`] is built.
///
/// Mirrors `struct page_pool_params`.
#[doc(alias = "page_pool_params")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagePoolParams {
    /// The class [`PagePool::alloc`] serves.
    pub small: SizeClass,
    /// An optional larger class, used by [`PagePool::alloc_size`] for
    /// requests that do not fit `small`.
    pub large: Option<SizeClass>,
}

impl Default for PagePoolParams {
    /// [`SizeClass::DEFAULT`] and [`SizeClass::GSO`].
    fn default() -> Self {
        PagePoolParams {
            small: SizeClass::DEFAULT,
            large: Some(SizeClass::GSO),
        }
    }
}

/// A rejected [`PagePoolParams`] field, with what it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagePoolParamError {
    /// The field, e.g. `"small.buf_size"`.
    pub param: &'static str,
    /// The value given.
    pub value: usize,
    /// What the field accepts.
    pub accepts: &'static str,
}

impl fmt::Display for PagePoolParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid page pool parameter {} = {}: accepts {}",
            self.param, self.value, self.accepts
        )
    }
}

impl core::error::Error for PagePoolParamError {}

/// Counters of one size class (or their sum over classes).
///
/// Mirrors `struct page_pool_stats` (`alloc_stats` and `recycle_stats`)
/// and the `pages_state_hold_cnt`/`pages_state_release_cnt` pair of
/// `struct page_pool`; `ethtool -S` prints them with an `rx_pp_` prefix.
#[doc(alias = "page_pool_stats")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagePoolStats {
    /// Allocations served from the recycle ring.
    pub alloc_fast: u64,
    /// Allocations that had to create a new buffer.
    pub alloc_slow: u64,
    /// Allocations refused because a bounded class was exhausted.
    ///
    /// # Deviations from Linux
    /// Linux's pool is never bounded and has no such counter.
    pub alloc_fail: u64,
    /// Buffers returned to the recycle ring.
    pub recycle_ring: u64,
    /// Buffers returned while the ring was full, hence released.
    pub recycle_ring_full: u64,
    /// Buffers ever created (`pages_state_hold_cnt`).
    pub hold_cnt: u64,
    /// Buffers ever released to the allocator (`pages_state_release_cnt`).
    pub release_cnt: u64,
    /// Free buffers sitting in the recycle ring now.
    pub cached: u64,
}

impl PagePoolStats {
    /// Buffers currently held outside the pool (by rings, skbs, ...).
    ///
    /// Mirrors `page_pool_inflight()`.
    #[doc(alias = "page_pool_inflight")]
    pub fn inflight(&self) -> u64 {
        self.hold_cnt - self.release_cnt - self.cached
    }

    /// `(name, value)` pairs as `ethtool -S` prints them for a driver that
    /// exports page-pool statistics (`page_pool_ethtool_stats_get()`).
    pub fn ethtool_stats(&self) -> [(&'static str, u64); 6] {
        [
            ("rx_pp_alloc_fast", self.alloc_fast),
            ("rx_pp_alloc_slow", self.alloc_slow),
            ("rx_pp_alloc_fail", self.alloc_fail),
            ("rx_pp_recycle_ring", self.recycle_ring),
            ("rx_pp_recycle_ring_full", self.recycle_ring_full),
            ("rx_pp_inflight", self.inflight()),
        ]
    }

    fn add(&mut self, o: &PagePoolStats) {
        self.alloc_fast += o.alloc_fast;
        self.alloc_slow += o.alloc_slow;
        self.alloc_fail += o.alloc_fail;
        self.recycle_ring += o.recycle_ring;
        self.recycle_ring_full += o.recycle_ring_full;
        self.hold_cnt += o.hold_cnt;
        self.release_cnt += o.release_cnt;
        self.cached += o.cached;
    }
}

/// The bytes of one buffer and the class it belongs to.
#[derive(Debug)]
struct PageData {
    bytes: Box<[u8]>,
    class: u8,
}

#[derive(Debug)]
struct ClassState {
    /// Free buffers; its capacity is `pool_size`, reserved up front so that
    /// recycling never grows it.
    free: Vec<Arc<PageData>>,
    stats: PagePoolStats,
}

#[derive(Debug)]
struct ClassPool {
    params: SizeClass,
    state: Mutex<ClassState>,
}

#[derive(Debug)]
struct PoolInner {
    classes: Vec<ClassPool>,
}

/// A pool of fixed-size packet buffers; cloning the handle is cheap and
/// every clone names the same pool.
///
/// Mirrors `struct page_pool` and `page_pool_create()` in
/// `net/core/page_pool.c`.
///
/// Thread-safe: buffers may be allocated on one thread and dropped on
/// another, as the thread runtime does when a tx completion runs on a CPU
/// other than the sender's.
///
/// ```
/// use netcore::{PagePool, PagePoolParams};
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let buf = pool.alloc().unwrap();
/// assert_eq!(buf.len(), 2048);
/// assert_eq!(pool.stats().inflight(), 1);
/// drop(buf);
/// assert_eq!(pool.stats().inflight(), 0);
/// assert_eq!(pool.stats().recycle_ring, 1);
/// ```
#[doc(alias = "page_pool")]
#[derive(Clone, Debug)]
pub struct PagePool {
    inner: Arc<PoolInner>,
}

impl PagePool {
    /// Creates a pool.
    ///
    /// Mirrors `page_pool_create()`. Fails, naming the field, when a buffer
    /// or ring size is zero, a limit is zero, or the large class is not
    /// larger than the small one.
    #[doc(alias = "page_pool_create")]
    pub fn new(params: PagePoolParams) -> Result<PagePool, PagePoolParamError> {
        let check = |c: &SizeClass, size: &'static str, ring: &'static str, limit: &'static str| {
            if c.buf_size == 0 {
                return Err(PagePoolParamError {
                    param: size,
                    value: 0,
                    accepts: "1 or more bytes",
                });
            }
            if c.pool_size == 0 {
                return Err(PagePoolParamError {
                    param: ring,
                    value: 0,
                    accepts: "1 or more buffers",
                });
            }
            if c.limit == Some(0) {
                return Err(PagePoolParamError {
                    param: limit,
                    value: 0,
                    accepts: "None or 1 or more buffers",
                });
            }
            Ok(())
        };
        check(
            &params.small,
            "small.buf_size",
            "small.pool_size",
            "small.limit",
        )?;
        let mut classes = vec![ClassPool::new(params.small)];
        if let Some(large) = params.large {
            check(&large, "large.buf_size", "large.pool_size", "large.limit")?;
            if large.buf_size <= params.small.buf_size {
                return Err(PagePoolParamError {
                    param: "large.buf_size",
                    value: large.buf_size,
                    accepts: "a size larger than small.buf_size",
                });
            }
            classes.push(ClassPool::new(large));
        }
        Ok(PagePool {
            inner: Arc::new(PoolInner { classes }),
        })
    }

    /// The size of the buffers [`PagePool::alloc`] returns.
    pub fn buf_size(&self) -> usize {
        self.inner.classes[0].params.buf_size
    }

    /// The largest buffer [`PagePool::alloc_size`] can return.
    pub fn max_buf_size(&self) -> usize {
        self.inner.classes.last().map_or(0, |c| c.params.buf_size)
    }

    /// Takes a buffer of the small class, or `None` when the class is
    /// bounded and exhausted (counted in `alloc_fail`).
    ///
    /// Mirrors `page_pool_dev_alloc_pages()`. The buffer's bytes are
    /// whatever its previous user left (the kernel does not clear recycled
    /// pages either).
    #[doc(alias = "page_pool_alloc_pages")]
    #[doc(alias = "page_pool_dev_alloc_pages")]
    pub fn alloc(&self) -> Option<PageBuf> {
        self.alloc_class(0)
    }

    /// Takes a buffer of at least `size` bytes from the smallest class that
    /// fits, or `None` when no class is that large or the fitting class is
    /// exhausted.
    pub fn alloc_size(&self, size: usize) -> Option<PageBuf> {
        let class = self
            .inner
            .classes
            .iter()
            .position(|c| c.params.buf_size >= size)?;
        self.alloc_class(class)
    }

    fn alloc_class(&self, class: usize) -> Option<PageBuf> {
        let cp = &self.inner.classes[class];
        let mut st = cp.state.lock();
        if let Some(data) = st.free.pop() {
            st.stats.alloc_fast += 1;
            st.stats.cached -= 1;
            drop(st);
            return Some(PageBuf {
                page: Page {
                    data: Some(data),
                    pool: self.clone(),
                },
            });
        }
        if let Some(limit) = cp.params.limit
            && st.stats.hold_cnt - st.stats.release_cnt >= limit as u64
        {
            st.stats.alloc_fail += 1;
            return None;
        }
        st.stats.alloc_slow += 1;
        st.stats.hold_cnt += 1;
        drop(st);
        let data = Arc::new(PageData {
            bytes: vec![0; cp.params.buf_size].into_boxed_slice(),
            class: class as u8,
        });
        Some(PageBuf {
            page: Page {
                data: Some(data),
                pool: self.clone(),
            },
        })
    }

    /// Fills the small class's recycle ring with up to `n` new buffers
    /// (bounded by `pool_size` and `limit`), so later allocations take the
    /// fast path. Returns how many were added.
    pub fn prefill(&self, n: usize) -> usize {
        let bufs: Vec<PageBuf> = (0..n).map_while(|_| self.alloc()).collect();
        let added = bufs.len();
        drop(bufs);
        added
    }

    /// The counters summed over all size classes.
    pub fn stats(&self) -> PagePoolStats {
        let mut sum = PagePoolStats::default();
        for c in &self.inner.classes {
            sum.add(&c.state.lock().stats);
        }
        sum
    }

    /// The counters of one size class (0 = small, 1 = large), or `None`
    /// if the pool has no such class.
    pub fn class_stats(&self, class: usize) -> Option<PagePoolStats> {
        self.inner.classes.get(class).map(|c| c.state.lock().stats)
    }

    /// Whether `self` and `other` are handles to the same pool.
    pub fn same_pool(&self, other: &PagePool) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Puts a buffer whose last handle is gone back on its class's ring.
    ///
    /// Mirrors `page_pool_put_page()` / `page_pool_recycle_in_ring()`.
    fn recycle(&self, data: Arc<PageData>) {
        let Some(cp) = self.inner.classes.get(usize::from(data.class)) else {
            return;
        };
        let mut st = cp.state.lock();
        if st.free.len() < cp.params.pool_size {
            st.free.push(data);
            st.stats.recycle_ring += 1;
            st.stats.cached += 1;
        } else {
            st.stats.recycle_ring_full += 1;
            st.stats.release_cnt += 1;
            drop(st);
            drop(data);
        }
    }
}

impl ClassPool {
    fn new(params: SizeClass) -> ClassPool {
        ClassPool {
            params,
            state: Mutex::new(ClassState {
                free: Vec::with_capacity(params.pool_size),
                stats: PagePoolStats::default(),
            }),
        }
    }
}

/// A reference to a pool buffer that may be shared (by cloned skbs); the
/// buffer returns to its pool when the last reference drops.
#[derive(Debug)]
pub(crate) struct Page {
    /// `Some` until `drop` takes it.
    data: Option<Arc<PageData>>,
    pool: PagePool,
}

impl Page {
    fn data(&self) -> &Arc<PageData> {
        self.data.as_ref().expect("page data is present until drop")
    }

    /// The whole buffer.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data().bytes
    }

    /// The whole buffer for writing, or `None` when another skb shares it.
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        let data = self.data.as_mut()?;
        Arc::get_mut(data).map(|d| &mut *d.bytes)
    }

    /// Whether another reference to this buffer exists.
    pub(crate) fn is_shared(&self) -> bool {
        Arc::strong_count(self.data()) > 1
    }

    /// The pool the buffer belongs to.
    pub(crate) fn pool(&self) -> &PagePool {
        &self.pool
    }

    /// A second reference to the same buffer (no copy).
    pub(crate) fn share(&self) -> Page {
        Page {
            data: self.data.clone(),
            pool: self.pool.clone(),
        }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        let Some(mut data) = self.data.take() else {
            return;
        };
        if Arc::get_mut(&mut data).is_some() {
            // The only reference: nobody can clone it any more, recycle it.
            self.pool.recycle(data);
        } else if let Some(inner) = Arc::into_inner(data) {
            // Another reference was dropped concurrently and we turned out
            // to be the last one. Rare; re-wrapping costs one allocation.
            self.pool.recycle(Arc::new(inner));
        }
        // Otherwise a clone still holds the buffer and will recycle it.
    }
}

/// An exclusively owned pool buffer: what a driver posts to its rx ring and
/// what the device writes a frame into.
///
/// Mirrors a `struct page` taken from a page pool (`page_pool_alloc_pages()`),
/// together with the DMA mapping the kernel keeps in it. Dropping it returns
/// the buffer to its pool (`page_pool_put_full_page()`). It is `Send` and
/// `Sync`; it is not `Clone` — sharing happens only through cloned
/// [`SkBuff`](crate::SkBuff)s.
#[derive(Debug)]
pub struct PageBuf {
    page: Page,
}

impl PageBuf {
    /// The buffer's size in bytes.
    pub fn len(&self) -> usize {
        self.page.bytes().len()
    }

    /// Whether the buffer has no bytes (never true for a pool buffer).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pool this buffer returns to.
    pub fn pool(&self) -> &PagePool {
        self.page.pool()
    }

    pub(crate) fn into_page(self) -> Page {
        self.page
    }
}

impl Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.page.bytes()
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // A PageBuf is never shared: it is created unique and not Clone.
        self.page
            .bytes_mut()
            .expect("a PageBuf owns its buffer exclusively")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounded(limit: usize) -> PagePool {
        PagePool::new(PagePoolParams {
            small: SizeClass {
                buf_size: 256,
                pool_size: 8,
                limit: Some(limit),
            },
            large: None,
        })
        .unwrap()
    }

    #[test]
    fn recycles_and_counts() {
        let pool = bounded(4);
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        let s = pool.stats();
        assert_eq!((s.alloc_slow, s.alloc_fast, s.inflight()), (2, 0, 2));
        drop(a);
        drop(b);
        let s = pool.stats();
        assert_eq!((s.recycle_ring, s.cached, s.inflight()), (2, 2, 0));
        let _c = pool.alloc().unwrap();
        let s = pool.stats();
        assert_eq!((s.alloc_slow, s.alloc_fast, s.inflight()), (2, 1, 1));
    }

    #[test]
    fn bounded_pool_refuses_when_exhausted_and_recovers() {
        let pool = bounded(2);
        let a = pool.alloc().unwrap();
        let _b = pool.alloc().unwrap();
        assert!(pool.alloc().is_none());
        assert!(pool.alloc().is_none());
        assert_eq!(pool.stats().alloc_fail, 2);
        drop(a);
        assert!(pool.alloc().is_some());
        assert_eq!(pool.stats().alloc_slow, 2, "no third buffer was created");
    }

    #[test]
    fn full_ring_releases() {
        let pool = PagePool::new(PagePoolParams {
            small: SizeClass {
                buf_size: 64,
                pool_size: 1,
                limit: None,
            },
            large: None,
        })
        .unwrap();
        let a = pool.alloc().unwrap();
        let b = pool.alloc().unwrap();
        drop(a);
        drop(b);
        let s = pool.stats();
        assert_eq!(
            (s.recycle_ring, s.recycle_ring_full, s.release_cnt, s.cached),
            (1, 1, 1, 1)
        );
        assert_eq!(s.inflight(), 0);
    }

    #[test]
    fn size_classes() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        assert_eq!(pool.alloc_size(100).unwrap().len(), 2048);
        let big = pool.alloc_size(9000).unwrap();
        assert_eq!(big.len(), SizeClass::GSO.buf_size);
        assert_eq!(pool.class_stats(1).unwrap().inflight(), 1);
        assert!(pool.alloc_size(SizeClass::GSO.buf_size + 1).is_none());
        assert_eq!(pool.max_buf_size(), SizeClass::GSO.buf_size);
    }

    #[test]
    fn bad_params_name_the_field() {
        let e = PagePool::new(PagePoolParams {
            small: SizeClass {
                buf_size: 0,
                ..SizeClass::DEFAULT
            },
            large: None,
        })
        .unwrap_err();
        assert_eq!(e.param, "small.buf_size");
        let e = PagePool::new(PagePoolParams {
            small: SizeClass::DEFAULT,
            large: Some(SizeClass {
                buf_size: 1024,
                ..SizeClass::GSO
            }),
        })
        .unwrap_err();
        assert_eq!(e.param, "large.buf_size");
        assert!(e.to_string().contains("larger than small.buf_size"), "{e}");
    }

    #[test]
    fn write_and_read_buffer() {
        let pool = bounded(1);
        let mut b = pool.alloc().unwrap();
        b[..3].copy_from_slice(b"abc");
        assert_eq!(&b[..3], b"abc");
        assert!(b.pool().same_pool(&pool));
    }

    #[test]
    fn freed_on_another_thread_returns_to_pool() {
        let pool = bounded(64);
        let bufs: Vec<PageBuf> = (0..64).map(|_| pool.alloc().unwrap()).collect();
        std::thread::spawn(move || drop(bufs)).join().unwrap();
        let s = pool.stats();
        assert_eq!((s.inflight(), s.cached), (0, 8));
        assert_eq!(s.release_cnt, 56, "the ring keeps pool_size = 8");
    }

    #[test]
    fn prefill_warms_fast_path() {
        let pool = bounded(4);
        assert_eq!(pool.prefill(3), 3);
        let _a = pool.alloc().unwrap();
        assert_eq!(pool.stats().alloc_fast, 1);
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<PagePool>();
        check::<PageBuf>();
    }
}
