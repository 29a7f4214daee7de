//! `spinlock_t`: the lock of short critical sections on the packet path
//! that Linux guards with a spinlock and no sleeping.
//!
//! ```text
//!   lock:   lock cmpxchg (Acquire)        the same as parking_lot's
//!   unlock: mov 0 (Release)               parking_lot: lock cmpxchg
//!   contended: spin, yielding the CPU     parking_lot: spin, then park
//! ```
//!
//! Linux's `spin_unlock()` is a plain store on x86, because a spinlock
//! never has sleepers to wake. A `parking_lot` mutex may have them, so its
//! unlock is a locked compare-and-swap: some 20 cycles on this class of
//! machine, paid once more per lock on every packet. [`SpinLock`] has
//! Linux's shape: a waiter never sleeps, so the unlock needs to tell
//! nobody and is a plain store.
//!
//! # Deviations from Linux
//!
//! A kernel spinlock holder cannot be preempted (`spin_lock()` disables
//! preemption); a thread holding a [`SpinLock`] can be. A waiter therefore
//! yields its CPU between looks (`sched_yield()`) instead of spinning
//! tight, so a preempted holder gets to run. Use it where the packet path
//! takes a lock for a few hundred instructions (a device's register
//! file, a descriptor ring, the xmit lock, a wire). Two of them are also
//! held for longer by rare control operations, as Linux's xmit lock is
//! by `netif_tx_lock()` callers: the device lock around every `ndo_*`
//! call (`open` builds rings) and the igb adapter's lock (ethtool
//! reconfigures under it); a waiter then yields until they finish. The
//! sleeping locks of the design (the TCP socket lock, the qdisc root
//! lock, the FIB and neighbour tables) stay `parking_lot` mutexes.

/// A spinlock. Mirrors `spinlock_t` (`spin_lock()`/`spin_unlock()`).
///
/// ```
/// use netcore::SpinLock;
///
/// let ring = SpinLock::new(Vec::new());
/// ring.lock().push(1u32);
/// assert_eq!(*ring.lock(), vec![1]);
/// ```
#[doc(alias = "spinlock_t")]
pub type SpinLock<T> = spin::mutex::SpinMutex<T, spin::relax::Yield>;

/// The guard of a held [`SpinLock`]; dropping it unlocks (`spin_unlock()`).
pub type SpinLockGuard<'a, T> = spin::mutex::SpinMutexGuard<'a, T, spin::relax::Yield>;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Two threads adding under the lock lose no update, and a waiter
    /// gets the lock once the holder drops its guard.
    #[test]
    fn a_spinlock_excludes_and_hands_over() {
        let n = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let n = Arc::clone(&n);
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        *n.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*n.lock(), 200_000);
        let g = n.lock();
        assert!(n.try_lock().is_none());
        drop(g);
        assert!(n.try_lock().is_some());
    }
}
