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
//!      └──────────── thread's alloc cache / shared recycle ring ◀────────────────┘
//! ```
//!
//! # Fast path and shared ring
//!
//! Like Linux's lockless per-NAPI `alloc` cache in front of the `ptr_ring`,
//! every thread keeps, per pool and size class, a small stack of free
//! buffers (up to `PP_ALLOC_CACHE_SIZE` = 128, at most half the ring). An
//! allocation and a free on the same thread touch only that stack: no lock,
//! no atomic read-modify-write, no shared cache line. The shared ring (one
//! `parking_lot` mutex per class, a leaf lock, see
//! [`lock_order`](crate::lock_order)) is touched once per batch of
//! `PP_ALLOC_CACHE_REFILL` = 64 (at most a quarter of the ring): a thread whose
//! cache is empty refills it from the ring, a thread whose cache is full
//! spills its oldest buffers into the ring. A buffer freed on another thread
//! lands in *that* thread's cache and reaches the ring when it spills, so
//! cross-thread frees are batched too.
//!
//! ```text
//!  thread A (e.g. NAPI rx)                          thread B (e.g. socket reader)
//!  ┌────────────────────────┐                       ┌────────────────────────┐
//!  │ alloc: pop ◀─┐         │                       │      ┌─▶ push :free    │
//!  │ free:  push ─┴▶ cache  │  fast path: no lock   │  cache ◀┘              │
//!  │       (≤ cache_cap)    │                       │       (≤ cache_cap)    │
//!  └──────────┬─────────────┘                       └─────────────┬──────────┘
//!      refill │ batch (empty)                        spill batch  │ (full)
//!             ▼                                                   ▼
//!        ┌───────────────────── shared recycle ring ──────────────────────┐
//!        │ Mutex<Vec>, ≤ pool_size free buffers; full ⇒ release (ring_full)│
//!        └─────────────────────────────────────────────────────────────────┘
//!             │ ring empty ⇒ create a buffer (alloc_slow) or, when a bounded
//!             ▼ class is at its limit, fail (alloc_fail)
//! ```
//!
//! A buffer is one reference-counted allocation (a `triomphe` `Arc`, which
//! has no weak references) holding its bytes, its class and an internal
//! handle to its pool, set when the buffer is created. Free buffers and
//! [`PageBuf`]s hold it as a `UniqueArc`, unique by type: allocating,
//! writing into and freeing a buffer touch no reference count, and
//! [`SkBuff::from_page`](crate::SkBuff::from_page) makes it shareable
//! without an allocation. An skb's reference checks uniqueness with one
//! load of the count (a write, a free) where `std::sync::Arc` would need a
//! locked compare-exchange to rule out weak references. Each thread cache
//! publishes its counters (single-writer atomics) to its class, so
//! [`PagePool::stats`] sums the ring's counters and every cache's: they are
//! exact whenever the threads using the pool are quiescent, and
//! `inflight()` returns to its start once every buffer is freed.
//!
//! Dropping the last [`PagePool`] handle destroys the pool
//! (`page_pool_destroy()`): the ring and the calling thread's caches are
//! released at once; another thread's cache for the pool is released when
//! that thread next refills, spills or creates a cache, or exits. Buffers
//! still in use keep the pool's memory alive and are released when dropped.
//!
//! # Deviations from Linux
//!
//! - The alloc cache is per thread rather than per NAPI instance (safe Rust
//!   has no "this CPU's softirq" context), and any thread may free into its
//!   own cache, not only the pool's NAPI: cross-CPU frees are batched
//!   instead of taking the `ptr_ring` producer lock per page.
//! - A class whose ring holds fewer than 2 buffers has no thread caches:
//!   every allocation and free takes the ring's lock.
//! - `alloc_fast` counts allocations from a cache or the ring and
//!   `recycle_ring` counts frees into a cache or the ring; Linux splits them
//!   into `fast`/`refill` and `cached`/`ring`.
//! - Linux pools hand out pages of one order; here a pool has one or two
//!   size classes (the second for GSO/GRO skbs up to 64 KiB plus headroom).
//! - A pool may be *bounded* ([`SizeClass::limit`]): it then creates at most
//!   that many buffers and [`PagePool::alloc`] returns `None` when all are in
//!   use (counted in [`PagePoolStats::alloc_fail`]), like a NIC whose buffer
//!   memory is fixed. Linux's pool falls back to the page allocator instead.
//!   Buffers parked in a thread's cache count as in use; to bound what idle
//!   threads can hold, a bounded class's thread caches hold at most an
//!   eighth of the limit.

use std::cell::RefCell;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Relaxed};
use std::sync::atomic::{AtomicU64, AtomicUsize};

use parking_lot::Mutex;
use triomphe::UniqueArc;

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

/// The most free buffers one thread keeps for one size class of one pool.
///
/// Mirrors `PP_ALLOC_CACHE_SIZE` in `include/net/page_pool/types.h`; a
/// class with a small ring keeps fewer (see [`ClassPool::new`]).
const PP_ALLOC_CACHE_SIZE: usize = 128;

/// How many buffers move between a thread's cache and the shared ring at
/// once. Mirrors `PP_ALLOC_CACHE_REFILL`.
const PP_ALLOC_CACHE_REFILL: usize = 64;

/// Source of [`PoolInner::id`]: every pool gets a distinct one, so a thread
/// cache keyed by it can never mistake a new pool for a dropped one.
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// The bytes of one buffer, the class it belongs to and a handle to its
/// pool, set once when the buffer is created.
struct PageData {
    bytes: Box<[u8]>,
    class: u8,
    /// Whether the class has thread caches (`cache_cap > 0`).
    cacheable: bool,
    /// `pool.inner.key(class)`, copied here so that a free finds its thread
    /// cache without reading the pool.
    key: u64,
    /// An internal handle (`user == false`): it keeps the pool's memory
    /// alive while the buffer exists but does not keep the pool in use.
    pool: PagePool,
}

/// The counters a thread's cache updates without a lock. Only the owning
/// thread writes them (with plain load + store, no read-modify-write);
/// [`PagePool::stats`] reads them through the class's registry.
#[derive(Default)]
struct CacheCounters {
    /// Buffers taken from the cache.
    alloc_fast: AtomicU64,
    /// Buffers freed into the cache.
    recycle_ring: AtomicU64,
    /// Buffers moved into the cache from the shared ring (refills).
    refilled: AtomicU64,
    /// Buffers moved out of the cache to the shared ring (spills).
    spilled: AtomicU64,
}

impl CacheCounters {
    #[inline]
    fn bump(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    #[inline]
    fn add(counter: &AtomicU64, n: u64) {
        // Single writer: a plain add, which a concurrent reader sees whole.
        counter.store(counter.load(Relaxed) + n, Relaxed);
    }

    /// Free buffers in the thread's cache now: what came in less what went
    /// out, so the fast paths bump one counter and store nothing else.
    /// Exact when the owning thread is quiescent; a reader racing with it
    /// may be off by the operation in progress (never below zero).
    fn cached(&self) -> u64 {
        let came = self.refilled.load(Relaxed) + self.recycle_ring.load(Relaxed);
        let went = self.alloc_fast.load(Relaxed) + self.spilled.load(Relaxed);
        came.saturating_sub(went)
    }
}

struct ClassState {
    /// The shared recycle ring (Linux's `ptr_ring`); its capacity is
    /// `pool_size`, reserved up front so that recycling never grows it.
    free: Vec<UniqueArc<PageData>>,
    stats: PagePoolStats,
    /// The counters of every thread cache of this class, summed by
    /// [`PagePool::stats`].
    caches: Vec<Arc<CacheCounters>>,
}

struct ClassPool {
    params: SizeClass,
    /// The capacity of a thread's cache for this class; 0 when the class
    /// is too small to cache per thread (every operation takes the lock).
    cache_cap: usize,
    /// How many buffers a refill or spill moves at once.
    batch: usize,
    state: Mutex<ClassState>,
}

struct PoolInner {
    id: u64,
    /// How many user handles ([`PagePool`]s with `user == true`) exist.
    /// When it drops to 0 the pool is destroyed: its free buffers are
    /// released, and buffers returned later are released too.
    users: AtomicUsize,
    classes: Vec<ClassPool>,
}

impl PoolInner {
    #[inline]
    fn key(&self, class: usize) -> u64 {
        (self.id << 1) | class as u64
    }

    #[inline]
    fn is_live(&self) -> bool {
        self.users.load(Relaxed) > 0
    }

    /// Creates a buffer whose creation `reserve_new` has counted.
    fn new_page(self: &Arc<PoolInner>, class: usize) -> UniqueArc<PageData> {
        UniqueArc::new(PageData {
            bytes: vec![0; self.classes[class].params.buf_size].into_boxed_slice(),
            class: class as u8,
            cacheable: self.classes[class].cache_cap > 0,
            key: self.key(class),
            pool: PagePool {
                inner: Arc::clone(self),
                user: false,
            },
        })
    }

    /// Takes a buffer from the shared ring, or counts the creation of a new
    /// one (`Some(None)`), or counts a failure (`None`).
    ///
    /// Mirrors `page_pool_alloc_pages()` without the alloc cache.
    fn alloc_in_ring(self: &Arc<PoolInner>, class: usize) -> Option<UniqueArc<PageData>> {
        let cp = &self.classes[class];
        let mut st = cp.state.lock();
        if let Some(data) = st.free.pop() {
            st.stats.alloc_fast += 1;
            st.stats.cached -= 1;
            return Some(data);
        }
        let created = st.reserve_new(&cp.params);
        drop(st);
        created.then(|| self.new_page(class))
    }

    /// Puts a buffer whose last handle is gone on its class's ring, or
    /// releases it when the ring is full or the pool destroyed.
    ///
    /// Mirrors `page_pool_recycle_in_ring()`.
    fn recycle_in_ring(&self, data: UniqueArc<PageData>) {
        let cp = &self.classes[usize::from(data.class)];
        let mut st = cp.state.lock();
        if !self.is_live() {
            st.stats.release_cnt += 1;
        } else if st.free.len() < cp.params.pool_size {
            st.free.push(data);
            st.stats.recycle_ring += 1;
            st.stats.cached += 1;
            return;
        } else {
            st.stats.recycle_ring_full += 1;
            st.stats.release_cnt += 1;
        }
        drop(st);
        drop(data);
    }

    /// Releases every free buffer of the shared rings and of this thread's
    /// caches; other threads release theirs lazily (see the module doc).
    ///
    /// Mirrors `page_pool_destroy()`.
    fn destroy(&self) {
        let _ = ALLOC_CACHES.try_with(|t| {
            if let Ok(mut t) = t.try_borrow_mut() {
                t.purge_dead();
            }
        });
        for cp in &self.classes {
            let mut st = cp.state.lock();
            let freed = std::mem::take(&mut st.free);
            st.stats.cached -= freed.len() as u64;
            st.stats.release_cnt += freed.len() as u64;
            drop(st);
            drop(freed);
        }
    }
}

impl ClassState {
    /// Counts a new buffer if a bounded class has room for it, or a failure.
    fn reserve_new(&mut self, params: &SizeClass) -> bool {
        if let Some(limit) = params.limit
            && self.stats.hold_cnt - self.stats.release_cnt >= limit as u64
        {
            self.stats.alloc_fail += 1;
            return false;
        }
        self.stats.alloc_slow += 1;
        self.stats.hold_cnt += 1;
        true
    }
}

/// One thread's cache of free buffers for one class of one pool: the
/// counterpart of Linux's per-NAPI `pool->alloc` array.
struct AllocCache {
    key: u64,
    class: usize,
    cap: usize,
    batch: usize,
    pool: Arc<PoolInner>,
    /// Free buffers, the most recently freed (cache-hot) last.
    free: Vec<UniqueArc<PageData>>,
    counters: Arc<CacheCounters>,
}

impl AllocCache {
    /// Hands the cache's buffers back to its pool (or releases them if the
    /// pool is destroyed or its ring is full) and folds its counters into
    /// the class's.
    ///
    /// Mirrors `page_pool_empty_alloc_cache_once()`.
    fn retire(mut self) {
        let cp = &self.pool.classes[self.class];
        let mut st = cp.state.lock();
        st.caches.retain(|c| !Arc::ptr_eq(c, &self.counters));
        st.stats.alloc_fast += self.counters.alloc_fast.load(Relaxed);
        st.stats.recycle_ring += self.counters.recycle_ring.load(Relaxed);
        let room = if self.pool.is_live() {
            cp.params.pool_size.saturating_sub(st.free.len())
        } else {
            0
        };
        let n = room.min(self.free.len());
        let at = self.free.len() - n;
        st.free.extend(self.free.drain(at..));
        st.stats.cached += n as u64;
        st.stats.release_cnt += self.free.len() as u64;
        drop(st);
        // Releases the rest, then maybe the pool itself.
        drop(self);
    }
}

/// The caches of one thread, one per (pool, class) it has used.
struct ThreadCaches {
    caches: Vec<AllocCache>,
    /// The cache used last: a thread usually works one pool and class at a
    /// time, so `find` looks here first.
    last: usize,
}

impl Drop for ThreadCaches {
    /// A thread exiting hands its cached buffers back to their pools.
    fn drop(&mut self) {
        for c in self.caches.drain(..) {
            c.retire();
        }
    }
}

thread_local! {
    static ALLOC_CACHES: RefCell<ThreadCaches> =
        const { RefCell::new(ThreadCaches { caches: Vec::new(), last: 0 }) };
}

impl ThreadCaches {
    #[inline]
    fn find(&mut self, key: u64) -> Option<usize> {
        if self.caches.get(self.last).is_some_and(|c| c.key == key) {
            return Some(self.last);
        }
        let i = self.caches.iter().position(|c| c.key == key)?;
        self.last = i;
        Some(i)
    }

    /// The fast path of [`alloc`](Self::alloc): a buffer from this thread's
    /// cache for `key`, or `None` when there is no such cache or it is
    /// empty. No lock, no atomic read-modify-write.
    ///
    /// Mirrors `__page_pool_get_cached()` when `pool->alloc.count` is not 0.
    #[inline]
    fn alloc_cached(&mut self, key: u64) -> Option<UniqueArc<PageData>> {
        let i = self.find(key)?;
        let c = &mut self.caches[i];
        let data = c.free.pop()?;
        CacheCounters::bump(&c.counters.alloc_fast);
        Some(data)
    }

    /// The fast path of [`free`](Self::free): keeps `data` in this thread's
    /// cache if it has one for the buffer with room; gives it back
    /// otherwise.
    ///
    /// Mirrors `page_pool_recycle_in_cache()`.
    #[inline]
    fn free_cached(&mut self, data: UniqueArc<PageData>) -> Result<(), UniqueArc<PageData>> {
        let Some(i) = self.find(data.key) else {
            return Err(data);
        };
        let c = &mut self.caches[i];
        if c.free.len() >= c.cap {
            return Err(data);
        }
        c.free.push(data);
        CacheCounters::bump(&c.counters.recycle_ring);
        Ok(())
    }

    /// Retires the caches of destroyed pools.
    fn purge_dead(&mut self) {
        if self.caches.iter().all(|c| c.pool.is_live()) {
            return;
        }
        let (live, dead): (Vec<_>, Vec<_>) = self.caches.drain(..).partition(|c| c.pool.is_live());
        self.caches = live;
        self.last = 0;
        for c in dead {
            c.retire();
        }
    }

    /// Creates this thread's cache for `class` of `pool`, registering its
    /// counters with the class; returns its index.
    fn create(&mut self, pool: &Arc<PoolInner>, class: usize) -> usize {
        self.purge_dead();
        let cp = &pool.classes[class];
        let counters = Arc::new(CacheCounters::default());
        cp.state.lock().caches.push(Arc::clone(&counters));
        self.caches.push(AllocCache {
            key: pool.key(class),
            class,
            cap: cp.cache_cap,
            batch: cp.batch,
            pool: Arc::clone(pool),
            free: Vec::with_capacity(cp.cache_cap),
            counters,
        });
        self.last = self.caches.len() - 1;
        self.last
    }

    /// Takes a buffer from this thread's cache, refilling it from the ring
    /// in a batch when empty, creating a buffer when both are empty, or
    /// `None` when a bounded class is exhausted.
    ///
    /// Mirrors `page_pool_alloc_pages()` → `__page_pool_get_cached()` →
    /// `page_pool_refill_alloc_cache()`.
    #[cold]
    #[inline(never)]
    fn alloc(&mut self, pool: &Arc<PoolInner>, class: usize) -> Option<UniqueArc<PageData>> {
        let i = match self.find(pool.key(class)) {
            Some(i) => i,
            None => self.create(pool, class),
        };
        let c = &mut self.caches[i];
        if let Some(data) = c.free.pop() {
            CacheCounters::bump(&c.counters.alloc_fast);
            return Some(data);
        }
        let cp = &pool.classes[class];
        let mut st = cp.state.lock();
        let n = c.batch.min(st.free.len());
        let data = if n > 0 {
            let at = st.free.len() - n;
            c.free.extend(st.free.drain(at..));
            CacheCounters::add(&c.counters.refilled, n as u64);
            st.stats.cached -= n as u64;
            let data = c.free.pop();
            CacheCounters::bump(&c.counters.alloc_fast);
            drop(st);
            data
        } else {
            let created = st.reserve_new(&cp.params);
            drop(st);
            created.then(|| pool.new_page(class))
        };
        self.purge_dead();
        data
    }

    /// Keeps a freed buffer in this thread's cache; when the cache is full,
    /// first spills a batch of its oldest buffers to the ring, and releases
    /// the buffer if the ring is full too.
    ///
    /// Mirrors `page_pool_recycle_in_cache()`, falling back to
    /// `page_pool_recycle_in_ring()`.
    #[cold]
    #[inline(never)]
    fn free(&mut self, data: UniqueArc<PageData>) {
        let i = if let Some(i) = self.find(data.key) {
            i
        } else {
            let pool = Arc::clone(&data.pool.inner);
            self.create(&pool, usize::from(data.class))
        };
        let c = &mut self.caches[i];
        if c.free.len() < c.cap {
            c.free.push(data);
            CacheCounters::bump(&c.counters.recycle_ring);
            return;
        }
        let cp = &c.pool.classes[c.class];
        let mut st = cp.state.lock();
        let room = if c.pool.is_live() {
            cp.params.pool_size.saturating_sub(st.free.len())
        } else {
            0
        };
        let n = c.batch.min(room);
        st.free.extend(c.free.drain(..n));
        CacheCounters::add(&c.counters.spilled, n as u64);
        st.stats.cached += n as u64;
        let released = if n > 0 {
            c.free.push(data);
            CacheCounters::bump(&c.counters.recycle_ring);
            None
        } else {
            st.stats.recycle_ring_full += 1;
            st.stats.release_cnt += 1;
            Some(data)
        };
        drop(st);
        drop(released);
        self.purge_dead();
    }
}

/// A pool of fixed-size packet buffers; cloning the handle is cheap and
/// every clone names the same pool.
///
/// Mirrors `struct page_pool` and `page_pool_create()` in
/// `net/core/page_pool.c`; dropping the last handle mirrors
/// `page_pool_destroy()`: the free buffers are released at once, buffers
/// still in use are released when they are dropped.
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
pub struct PagePool {
    inner: Arc<PoolInner>,
    /// Whether this is a user's handle (counted in `users`) rather than the
    /// internal one inside a buffer.
    user: bool,
}

impl Clone for PagePool {
    /// Another handle to the same pool.
    fn clone(&self) -> PagePool {
        self.inner.users.fetch_add(1, Relaxed);
        PagePool {
            inner: Arc::clone(&self.inner),
            user: true,
        }
    }
}

impl Drop for PagePool {
    fn drop(&mut self) {
        // AcqRel: the destroying thread sees every earlier use of the pool.
        if self.user && self.inner.users.fetch_sub(1, AcqRel) == 1 {
            self.inner.destroy();
        }
    }
}

impl fmt::Debug for PagePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagePool")
            .field("id", &self.inner.id)
            .field(
                "classes",
                &self
                    .inner
                    .classes
                    .iter()
                    .map(|c| c.params)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PagePool {
    /// Creates a pool.
    ///
    /// Mirrors `page_pool_create()`. Fails, naming the field, when a buffer
    /// or ring size is zero, a buffer size is [`u32::MAX`] or more (an skb
    /// keeps 32-bit offsets into its buffer), a limit is zero, or the large
    /// class is not larger than the small one.
    #[doc(alias = "page_pool_create")]
    pub fn new(params: PagePoolParams) -> Result<PagePool, PagePoolParamError> {
        let check = |c: &SizeClass, size: &'static str, ring: &'static str, limit: &'static str| {
            // An skb keeps its offsets into the buffer as u32, with
            // u32::MAX meaning "header not set" (Linux: `sk_buff_data_t`).
            if c.buf_size == 0 || c.buf_size >= u32::MAX as usize {
                return Err(PagePoolParamError {
                    param: size,
                    value: c.buf_size,
                    accepts: "1 to 4294967294 bytes",
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
            inner: Arc::new(PoolInner {
                id: NEXT_POOL_ID.fetch_add(1, Relaxed),
                users: AtomicUsize::new(1),
                classes,
            }),
            user: true,
        })
    }

    /// The size of the buffers [`PagePool::alloc`] returns.
    pub fn buf_size(&self) -> usize {
        self.inner.classes[0].params.buf_size
    }

    /// The largest buffer [`PagePool::alloc_size`] can return.
    #[inline]
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

    /// Appends up to `n` buffers of the small class to `out`, taking them
    /// from this thread's cache in one step (one cache lookup for the
    /// batch), then one by one as [`alloc`](Self::alloc) does; stops early
    /// when a bounded class is exhausted. Returns how many it appended.
    ///
    /// Mirrors a driver's bulk refill from the pool's alloc cache
    /// (`page_pool_alloc_pages()` serving a whole refill from
    /// `pool->alloc.cache`, refilled in bulk by
    /// `page_pool_refill_alloc_cache()`).
    pub fn alloc_bulk(&self, n: usize, out: &mut Vec<PageBuf>) -> usize {
        let key = self.inner.key(0);
        let cached = ALLOC_CACHES
            .try_with(|t| {
                let Ok(mut t) = t.try_borrow_mut() else {
                    return 0;
                };
                let Some(i) = t.find(key) else { return 0 };
                let c = &mut t.caches[i];
                let take = n.min(c.free.len());
                let at = c.free.len() - take;
                // Oldest first: `out.pop()` then hands out the most
                // recently freed (cache-hot) buffer first, as `alloc` does.
                out.extend(c.free.drain(at..).map(|data| PageBuf {
                    data: ManuallyDrop::new(Some(data)),
                }));
                let fast = &c.counters.alloc_fast;
                fast.store(fast.load(Relaxed) + take as u64, Relaxed);
                take
            })
            .unwrap_or(0);
        let mut got = cached;
        while got < n {
            let Some(buf) = self.alloc() else { break };
            out.push(buf);
            got += 1;
        }
        got
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

    #[inline]
    fn alloc_class(&self, class: usize) -> Option<PageBuf> {
        // The fast path: this thread's cache has a buffer (a class without
        // thread caches never has a cache entry, so it always misses).
        let key = self.inner.key(class);
        let data = match ALLOC_CACHES.try_with(|t| t.try_borrow_mut().ok()?.alloc_cached(key)) {
            Ok(Some(data)) => data,
            _ => self.alloc_class_slow(class)?,
        };
        Some(PageBuf {
            data: ManuallyDrop::new(Some(data)),
        })
    }

    /// Refills this thread's cache from the shared ring, creates the cache
    /// or a buffer, or falls back to the ring when the class has no thread
    /// caches or the thread's caches are unavailable.
    #[cold]
    #[inline(never)]
    fn alloc_class_slow(&self, class: usize) -> Option<UniqueArc<PageData>> {
        if self.inner.classes[class].cache_cap > 0 {
            ALLOC_CACHES
                .try_with(|t| {
                    let mut t = t.try_borrow_mut().ok()?;
                    Some(t.alloc(&self.inner, class))
                })
                .ok()
                .flatten()
                .unwrap_or_else(|| self.inner.alloc_in_ring(class))
        } else {
            self.inner.alloc_in_ring(class)
        }
    }

    /// Fills the small class's recycle ring with up to `n` new buffers
    /// (bounded by `pool_size` and `limit`), so later allocations take the
    /// fast path. Returns how many were added.
    ///
    /// They are counted as allocated (`alloc_slow`) and recycled
    /// (`recycle_ring`), as if taken and dropped at once.
    pub fn prefill(&self, n: usize) -> usize {
        let cp = &self.inner.classes[0];
        let mut st = cp.state.lock();
        let mut added = 0;
        while added < n && st.free.len() < cp.params.pool_size && st.reserve_new(&cp.params) {
            st.free.push(self.inner.new_page(0));
            st.stats.recycle_ring += 1;
            st.stats.cached += 1;
            added += 1;
        }
        added
    }

    /// The counters summed over all size classes.
    ///
    /// They include what every thread's cache has done so far; they are
    /// exact once the threads using the pool are quiescent (a thread's
    /// in-progress allocation may be seen half counted).
    pub fn stats(&self) -> PagePoolStats {
        let mut sum = PagePoolStats::default();
        for c in &self.inner.classes {
            sum.add(&c.stats());
        }
        sum
    }

    /// The counters of one size class (0 = small, 1 = large), or `None`
    /// if the pool has no such class.
    pub fn class_stats(&self, class: usize) -> Option<PagePoolStats> {
        self.inner.classes.get(class).map(ClassPool::stats)
    }

    /// Whether `self` and `other` are handles to the same pool.
    pub fn same_pool(&self, other: &PagePool) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl ClassPool {
    fn new(params: SizeClass) -> ClassPool {
        // A thread caches at most half the ring (so a small ring stays the
        // bound on free buffers a single thread sees) and, in a bounded
        // class, an eighth of the limit (so idle threads cannot hoard it).
        let cache_cap = PP_ALLOC_CACHE_SIZE
            .min(params.pool_size / 2)
            .min(params.limit.map_or(usize::MAX, |l| l / 8));
        ClassPool {
            params,
            cache_cap,
            batch: PP_ALLOC_CACHE_REFILL.min(cache_cap / 2).max(1),
            state: Mutex::new(ClassState {
                free: Vec::with_capacity(params.pool_size),
                stats: PagePoolStats::default(),
                caches: Vec::new(),
            }),
        }
    }

    fn stats(&self) -> PagePoolStats {
        let st = self.state.lock();
        let mut s = st.stats;
        for c in &st.caches {
            s.alloc_fast += c.alloc_fast.load(Relaxed);
            s.recycle_ring += c.recycle_ring.load(Relaxed);
            s.cached += c.cached();
        }
        s
    }
}

/// Returns a buffer whose last handle is gone to its pool: this thread's
/// cache when the class has one, the shared ring otherwise.
///
/// Mirrors `page_pool_put_page()`.
#[inline]
fn page_pool_put_page(data: UniqueArc<PageData>) {
    if !data.cacheable || !data.pool.inner.is_live() {
        page_pool_put_page_slow(data);
        return;
    }
    // The fast path: room in this thread's cache for the buffer's class.
    let mut slot = Some(data);
    let _ = ALLOC_CACHES.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut()
            && let Some(data) = slot.take()
            && let Err(data) = t.free_cached(data)
        {
            slot = Some(data);
        }
    });
    if let Some(data) = slot {
        page_pool_put_page_slow(data);
    }
}

/// [`page_pool_put_page`] when the thread's cache is missing, full or
/// busy, the class has no caches or the pool is destroyed.
#[cold]
#[inline(never)]
fn page_pool_put_page_slow(data: UniqueArc<PageData>) {
    if !data.cacheable || !data.pool.inner.is_live() {
        let inner = Arc::clone(&data.pool.inner);
        inner.recycle_in_ring(data);
        return;
    }
    let mut slot = Some(data);
    let _ = ALLOC_CACHES.try_with(|t| {
        if let Ok(mut t) = t.try_borrow_mut()
            && let Some(data) = slot.take()
        {
            t.free(data);
        }
    });
    // The thread is exiting (its caches are gone) or the cache is busy.
    if let Some(data) = slot {
        let inner = Arc::clone(&data.pool.inner);
        inner.recycle_in_ring(data);
    }
}

/// A reference to a pool buffer that may be shared (by cloned skbs); the
/// buffer returns to its pool when the last reference drops.
pub(crate) struct Page {
    /// `Some` until `drop` takes it.
    ///
    /// `ManuallyDrop`: [`Page`]'s `Drop` always takes it, so the drop glue
    /// need not test it again.
    data: ManuallyDrop<Option<triomphe::Arc<PageData>>>,
}

impl Page {
    #[inline]
    fn data(&self) -> &triomphe::Arc<PageData> {
        self.data.as_ref().expect("page data is present until drop")
    }

    /// The whole buffer.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data().bytes
    }

    /// The whole buffer for writing, or `None` when another skb shares it.
    #[inline]
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        let data = self.data.as_mut()?;
        // `triomphe::Arc` has no weak references, so uniqueness is one
        // load of the count, not a locked compare-exchange as in
        // `std::sync::Arc::get_mut`.
        triomphe::Arc::get_mut(data).map(|d| &mut *d.bytes)
    }

    /// Whether another reference to this buffer exists.
    #[inline]
    pub(crate) fn is_shared(&self) -> bool {
        !self.data().is_unique()
    }

    /// The pool the buffer belongs to.
    #[inline]
    pub(crate) fn pool(&self) -> &PagePool {
        &self.data().pool
    }

    /// Moves the reference out, leaving an empty page that must not be
    /// read again (its drop does nothing). No reference count is touched.
    #[inline]
    pub(crate) fn take(&mut self) -> Page {
        Page {
            data: ManuallyDrop::new(self.data.take()),
        }
    }

    /// A second reference to the same buffer (no copy).
    #[inline]
    pub(crate) fn share(&self) -> Page {
        Page {
            data: ManuallyDrop::new(Option::clone(&self.data)),
        }
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.data {
            Some(d) => f
                .debug_struct("Page")
                .field("pool", &d.pool.inner.id)
                .field("class", &d.class)
                .field("len", &d.bytes.len())
                .field("refs", &triomphe::Arc::count(d))
                .finish(),
            None => f.write_str("Page(dropped)"),
        }
    }
}

impl Drop for Page {
    #[inline]
    fn drop(&mut self) {
        let Some(data) = self.data.take() else {
            return;
        };
        // A count of 1 means this is the only reference and nobody can
        // clone it any more (there are no weak references): one load.
        match triomphe::Arc::try_unique(data) {
            Ok(unique) => page_pool_put_page(unique),
            Err(shared) => page_put_shared(shared),
        }
    }
}

/// Drops a reference to a buffer that was shared when looked at; the last
/// of concurrent droppers gets it back as unique and recycles it.
#[cold]
#[inline(never)]
fn page_put_shared(shared: triomphe::Arc<PageData>) {
    if let Some(unique) = triomphe::Arc::into_unique(shared) {
        page_pool_put_page(unique);
    }
    // Otherwise a clone still holds the buffer and will recycle it.
}

/// An exclusively owned pool buffer: what a driver posts to its rx ring and
/// what the device writes a frame into.
///
/// Mirrors a `struct page` taken from a page pool (`page_pool_alloc_pages()`),
/// together with the DMA mapping the kernel keeps in it. Dropping it returns
/// the buffer to its pool (`page_pool_put_full_page()`). It is `Send` and
/// `Sync`; it is not `Clone` — sharing happens only through cloned
/// [`SkBuff`](crate::SkBuff)s.
///
/// The buffer is unique by type (a `triomphe::UniqueArc`): writing into it
/// checks no reference count and takes no atomic operation, and turning it
/// into an skb ([`SkBuff::from_page`](crate::SkBuff::from_page)) makes it
/// shareable without an allocation.
pub struct PageBuf {
    /// `Some` until `drop` or [`PageBuf::into_page`] takes it.
    /// `ManuallyDrop` for the same reason as [`Page`]'s.
    data: ManuallyDrop<Option<UniqueArc<PageData>>>,
}

impl fmt::Debug for PageBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.data {
            Some(d) => f
                .debug_struct("PageBuf")
                .field("pool", &d.pool.inner.id)
                .field("class", &d.class)
                .field("len", &d.bytes.len())
                .finish(),
            None => f.write_str("PageBuf(dropped)"),
        }
    }
}

impl PageBuf {
    #[inline(always)]
    fn data(&self) -> &PageData {
        self.data
            .as_ref()
            .expect("a PageBuf holds its buffer until drop")
    }

    /// The buffer's size in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.data().bytes.len()
    }

    /// Whether the buffer has no bytes (never true for a pool buffer).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pool this buffer returns to.
    pub fn pool(&self) -> &PagePool {
        &self.data().pool
    }

    /// Freezes the buffer into a shareable page (no allocation, no atomic
    /// read-modify-write).
    #[inline]
    pub(crate) fn into_page(mut self) -> Page {
        Page {
            data: ManuallyDrop::new(self.data.take().map(UniqueArc::shareable)),
        }
    }
}

impl Drop for PageBuf {
    #[inline]
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            page_pool_put_page(data);
        }
    }
}

impl Deref for PageBuf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        &self.data().bytes
    }
}

impl DerefMut for PageBuf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        // Unique by type: no reference count to check.
        &mut self
            .data
            .as_mut()
            .expect("a PageBuf holds its buffer until drop")
            .bytes
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
            small: SizeClass {
                buf_size: u32::MAX as usize,
                ..SizeClass::DEFAULT
            },
            large: None,
        })
        .unwrap_err();
        assert_eq!((e.param, e.value), ("small.buf_size", u32::MAX as usize));
        assert!(e.to_string().contains("1 to 4294967294 bytes"), "{e}");
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
    fn alloc_bulk_takes_from_the_cache_then_allocates() {
        let pool = unbounded(1024);
        let first: Vec<PageBuf> = (0..10).map(|_| pool.alloc().unwrap()).collect();
        drop(first); // ten buffers in this thread's cache
        let mut out = Vec::new();
        assert_eq!(pool.alloc_bulk(16, &mut out), 16);
        assert_eq!(out.len(), 16);
        let s = pool.stats();
        assert_eq!((s.alloc_fast, s.alloc_slow), (10, 16), "{s:?}");
        assert_eq!((s.cached, s.inflight()), (0, 16));
        drop(out);
        assert_eq!(pool.stats().inflight(), 0);
        // A bounded class stops at its limit.
        let small = bounded(3);
        let mut out = Vec::new();
        assert_eq!(small.alloc_bulk(5, &mut out), 3);
        assert_eq!(small.stats().alloc_fail, 1);
    }

    #[test]
    fn prefill_warms_fast_path() {
        let pool = bounded(4);
        assert_eq!(pool.prefill(3), 3);
        let _a = pool.alloc().unwrap();
        assert_eq!(pool.stats().alloc_fast, 1);
    }

    fn unbounded(pool_size: usize) -> PagePool {
        PagePool::new(PagePoolParams {
            small: SizeClass {
                buf_size: 64,
                pool_size,
                limit: None,
            },
            large: None,
        })
        .unwrap()
    }

    /// Every allocation is returned exactly once, and the counters agree.
    fn assert_conserved(s: &PagePoolStats) {
        assert_eq!(s.inflight(), 0, "{s:?}");
        assert_eq!(
            s.alloc_fast + s.alloc_slow,
            s.recycle_ring + s.recycle_ring_full,
            "{s:?}"
        );
    }

    #[test]
    fn cross_thread_alloc_free_storm_conserves_buffers() {
        use std::sync::mpsc;
        let pool = unbounded(64);
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..4).map(|_| mpsc::channel::<PageBuf>()).unzip();
        let threads: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                let pool = pool.clone();
                let next = txs[(i + 1) % 4].clone();
                std::thread::spawn(move || {
                    for n in 0..5_000u32 {
                        let mut b = pool.alloc().unwrap();
                        b[0] = n as u8;
                        if n % 2 == 0 {
                            next.send(b).unwrap(); // freed by the next thread
                        }
                        while let Ok(b) = rx.try_recv() {
                            drop(b);
                        }
                    }
                    drop(next);
                    rx // drained below, once every sender is gone
                })
            })
            .collect();
        drop(txs);
        let rxs: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for rx in rxs {
            rx.iter().for_each(drop);
        }
        let s = pool.stats();
        assert_conserved(&s);
        assert_eq!(s.alloc_fast + s.alloc_slow, 20_000);
        let cap = pool.inner.classes[0].cache_cap as u64;
        assert!(
            s.cached <= 64 + cap,
            "the ring plus this thread's cache at most: {s:?}"
        );
    }

    #[test]
    fn bounded_pool_storm_never_exceeds_limit() {
        let pool = PagePool::new(PagePoolParams {
            small: SizeClass {
                buf_size: 64,
                pool_size: 64,
                limit: Some(64),
            },
            large: None,
        })
        .unwrap();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let pool = pool.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for n in 0..3_000 {
                        if let Some(b) = pool.alloc() {
                            held.push(b);
                        }
                        if n % 3 == 0 || held.len() > 8 {
                            held.clear();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = pool.stats();
        assert_conserved(&s);
        assert!(s.hold_cnt - s.release_cnt <= 64, "{s:?}");
        assert_eq!(s.cached, s.hold_cnt - s.release_cnt);
    }

    #[test]
    fn thread_cache_is_capped() {
        let pool = unbounded(1024);
        let cap = pool.inner.classes[0].cache_cap;
        assert_eq!(cap, PP_ALLOC_CACHE_SIZE);
        let bufs: Vec<PageBuf> = (0..1000).map(|_| pool.alloc().unwrap()).collect();
        drop(bufs);
        let st = pool.inner.classes[0].state.lock();
        let mine: u64 = st.caches.iter().map(|c| c.cached()).sum();
        assert!(mine as usize <= cap, "{mine} cached by this thread");
        assert_eq!(
            st.free.len() + mine as usize,
            1000,
            "the rest went to the ring"
        );
        drop(st);
        let s = pool.stats();
        assert_eq!((s.cached, s.inflight(), s.release_cnt), (1000, 0, 0));
        // Allocating them all again creates nothing new.
        let bufs: Vec<PageBuf> = (0..1000).map(|_| pool.alloc().unwrap()).collect();
        assert_eq!(pool.stats().alloc_slow, 1000);
        drop(bufs);
    }

    #[test]
    fn small_ring_has_no_thread_cache() {
        let pool = unbounded(1);
        assert_eq!(pool.inner.classes[0].cache_cap, 0);
        drop(pool.alloc().unwrap());
        assert!(pool.inner.classes[0].state.lock().caches.is_empty());
        assert_eq!(pool.stats().cached, 1);
    }

    #[test]
    fn pool_drop_releases_buffers_cached_by_other_threads() {
        use std::sync::mpsc;
        let pool = unbounded(1024);
        let weak = Arc::downgrade(&pool.inner);
        // A buffer kept in use: it keeps the pool's memory (and counters)
        // alive after the last handle is gone.
        let probe = pool.alloc().unwrap();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let worker = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let bufs: Vec<PageBuf> = (0..10).map(|_| pool.alloc().unwrap()).collect();
                drop(bufs); // into this thread's cache
                drop(pool);
                done_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                // Using any other pool retires the dead pool's cache.
                let other = unbounded(64);
                drop(other.alloc());
                done_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            })
        };
        done_rx.recv().unwrap();
        let s = probe.pool().stats();
        assert_eq!((s.cached, s.inflight()), (10, 1), "{s:?}");
        drop(pool); // destroys the pool: the ring is emptied at once
        assert_eq!(probe.pool().stats().cached, 10, "the worker still holds 10");
        go_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        let s = probe.pool().stats();
        assert_eq!((s.cached, s.release_cnt, s.inflight()), (0, 10, 1), "{s:?}");
        // The last buffer in use is released when dropped, then the pool.
        drop(probe);
        assert!(weak.upgrade().is_none(), "the pool is freed");
        go_tx.send(()).unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn thread_exit_releases_cache_of_dropped_pool() {
        let pool = unbounded(1024);
        let weak = Arc::downgrade(&pool.inner);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let worker = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                drop((0..5).map(|_| pool.alloc().unwrap()).collect::<Vec<_>>());
                drop(pool);
                rx.recv().unwrap();
            })
        };
        while pool.stats().cached < 5 {
            std::thread::yield_now();
        }
        drop(pool);
        assert!(weak.upgrade().is_some(), "the worker's cache holds buffers");
        tx.send(()).unwrap();
        worker.join().unwrap();
        assert!(weak.upgrade().is_none(), "thread exit released them");
    }

    #[test]
    fn buffer_dropped_after_pool_is_released() {
        let pool = unbounded(64);
        let buf = pool.alloc().unwrap();
        let handle = buf.pool().clone();
        drop(pool);
        assert!(handle.alloc().is_some(), "a handle from a buffer is a user");
        drop(handle);
        let weak = Arc::downgrade(&buf.pool().inner);
        drop(buf);
        assert!(weak.upgrade().is_none());
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<PagePool>();
        check::<PageBuf>();
    }
}
