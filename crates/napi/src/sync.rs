//! The concurrency facade: std atomics, `Arc` and a spinlock
//! (`netcore::SpinLock`) normally, loom's under `cfg(loom)`.
//!
//! Every shared-memory primitive of the crate is imported from here and from
//! nowhere else, so `RUSTFLAGS="--cfg loom"` moves the NAPI state word, the
//! poll lists and the poll-routine lock onto loom's model checker at once
//! (the shape of tokio's `src/loom` and thingbuf's `src/loom.rs`).
//! The spinlock is invisible to loom, so the lock is wrapped and mapped to
//! `loom::sync::Mutex` there.

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// A lock with an infallible `lock()`: a [`netcore::SpinLock`] (the poll
/// list and the poll-routine lock are spinlocks in Linux, taken for a few
/// instructions; the unlock is a plain store), loom's mutex under
/// `cfg(loom)`.
#[derive(Debug)]
pub(crate) struct Mutex<T>(
    #[cfg(not(loom))] netcore::SpinLock<T>,
    #[cfg(loom)] loom::sync::Mutex<T>,
);

/// The guard [`Mutex::lock`] returns.
#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = netcore::SpinLockGuard<'a, T>;
/// The guard [`Mutex::lock`] returns.
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// Wraps `value`.
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        return Self(netcore::SpinLock::new(value));
        #[cfg(loom)]
        return Self(loom::sync::Mutex::new(value));
    }

    /// Locks; never fails (a poisoned loom mutex means a model thread
    /// panicked, and the model fails anyway).
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
