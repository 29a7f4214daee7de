//! The atomics facade: std's atomics, `UnsafeCell` and `Arc` normally, loom's
//! under `cfg(loom)`.
//!
//! Every shared-memory primitive of the crate is imported from here and from
//! nowhere else, so `RUSTFLAGS="--cfg loom"` swaps the whole ring onto loom's
//! model checker at once (the shape of tokio's `src/loom` and thingbuf's
//! `src/loom.rs`). std's `UnsafeCell` is wrapped to offer loom's closure API
//! (`with`/`with_mut`), so the ring code reads the same under both.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// std's `UnsafeCell` behind loom's closure API.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a shared raw pointer to the value.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with an exclusive raw pointer to the value.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
