//! The concurrency facade of the RPS hand-over: std atomics, `Arc` and a
//! `parking_lot` mutex normally, loom's under `cfg(loom)`.
//!
//! The backlog queue that other CPUs feed (`input_pkt_queue`) and its
//! counters import their primitives from here only, so that
//! `RUSTFLAGS="--cfg loom"` puts the whole hand-over under loom's model
//! checker. `parking_lot` is invisible to loom, hence the wrapper that maps
//! the lock to `loom::sync::Mutex` there. Registries that are not part of
//! the model (ptype lists, devices) use `parking_lot` directly.

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// A mutex with `parking_lot`'s infallible `lock()`, loom's under
/// `cfg(loom)`.
#[derive(Debug)]
pub(crate) struct Mutex<T>(
    #[cfg(not(loom))] parking_lot::Mutex<T>,
    #[cfg(loom)] loom::sync::Mutex<T>,
);

/// The guard of [`Mutex::lock`].
#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
/// The guard of [`Mutex::lock`].
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        return Self(parking_lot::Mutex::new(value));
        #[cfg(loom)]
        return Self(loom::sync::Mutex::new(value));
    }

    /// Locks; never fails (a poisoned loom lock means a model thread
    /// panicked, which fails the model anyway).
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        return self.0.lock();
        #[cfg(loom)]
        return self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}

/// A counter written by one CPU and read by anyone (`/proc/net/softnet_stat`).
///
/// Mirrors a `__this_cpu_inc()` on a `softnet_data` field: the owner does
/// a plain load and store (no locked instruction), readers see a recent
/// value. Wraps at 32 bits like the kernel's `unsigned int`.
#[derive(Debug)]
pub(crate) struct LocalCounter(AtomicU32);

impl LocalCounter {
    pub(crate) fn new() -> LocalCounter {
        LocalCounter(AtomicU32::new(0))
    }

    /// Adds one; only the owning CPU calls this.
    #[inline]
    pub(crate) fn inc_local(&self) {
        // Relaxed: a statistic; single writer, so load+store loses nothing.
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(1), Ordering::Relaxed);
    }

    /// Adds one from any CPU (`atomic_inc()`).
    pub(crate) fn inc_shared(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}
