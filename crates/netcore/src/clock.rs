//! Clocks: where an [`Instant`] comes from.
//!
//! Mirrors the role of `jiffies` and `ktime_get()` in `kernel/time`. The
//! kernel reads a hardware clock; netstack's protocol code never does. It is
//! handed `now`, or reads it through a [`Clock`] reached from its context.
//! Two clocks exist:
//!
//! - [`VirtualClock`]: advanced by whoever drives it (the simulation runtime,
//!   a test). It never goes backwards and can be shared between threads.
//! - [`MonotonicClock`]: real time since its creation, read from
//!   `std::time::Instant`. Only the thread runtime owns one; protocol crates
//!   never construct it.

use core::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::time::{Duration, Instant};

/// A source of the current time.
///
/// Mirrors `ktime_get()` (and `jiffies` at HZ=1000) in `kernel/time`. The
/// trait is object safe, so a host can hold a `Arc<dyn Clock>` and hand it to
/// every layer; implementations must be monotonic (`now()` never decreases).
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;

    /// This clock as a [`VirtualClock`], when it is one (`None` by
    /// default): a reader that takes the time on every packet keeps the
    /// virtual clock and reads it with one load instead of a call through
    /// `dyn Clock`.
    fn as_virtual(&self) -> Option<&VirtualClock> {
        None
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn as_virtual(&self) -> Option<&VirtualClock> {
        (**self).as_virtual()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn as_virtual(&self) -> Option<&VirtualClock> {
        (**self).as_virtual()
    }
}

/// A clock that moves only when told to: the simulation's virtual time.
///
/// Cloning shares the underlying time (an `Arc<AtomicU64>` of nanoseconds),
/// so the simulation driver and every host read the same instant. Reads are
/// one relaxed atomic load; the driver is the only writer in practice, but
/// concurrent writers are safe and the clock still never goes backwards.
///
/// # Deviations from Linux
/// The kernel has no virtual clock; this one exists so that the same code
/// runs deterministically in simulation.
#[derive(Clone, Default)]
pub struct VirtualClock {
    nanos: Arc<AtomicU64>,
}

/// The error of [`VirtualClock::set`] when asked to move time backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockWentBackwards {
    /// The clock's time when the request was made.
    pub now: Instant,
    /// The earlier instant that was requested.
    pub requested: Instant,
}

impl fmt::Display for ClockWentBackwards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "virtual clock cannot go backwards: now is {}, requested {}",
            self.now, self.requested
        )
    }
}

impl core::error::Error for ClockWentBackwards {}

impl VirtualClock {
    /// A clock at the epoch ([`Instant::ZERO`]).
    pub fn new() -> VirtualClock {
        VirtualClock::default()
    }

    /// A clock starting at `t`.
    pub fn starting_at(t: Instant) -> VirtualClock {
        VirtualClock {
            nanos: Arc::new(AtomicU64::new(t.as_nanos())),
        }
    }

    /// Moves the clock forward by `d` (saturating at [`Instant::MAX`]) and
    /// returns the new time.
    pub fn advance(&self, d: Duration) -> Instant {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        // Relaxed: the value itself is the only data published; callers that
        // need ordering with other memory synchronise through their own means.
        let prev = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_add(d))
            })
            .unwrap_or_else(|n| n);
        Instant::from_nanos(prev.saturating_add(d))
    }

    /// Sets the clock to `t`, which must not be earlier than now.
    ///
    /// Setting the current time again is allowed (a no-op).
    pub fn set(&self, t: Instant) -> Result<(), ClockWentBackwards> {
        let requested = t.as_nanos();
        // fetch_max keeps the clock monotonic even with racing setters.
        let prev = self.nanos.fetch_max(requested, Ordering::Relaxed);
        if prev > requested {
            Err(ClockWentBackwards {
                now: Instant::from_nanos(prev),
                requested: t,
            })
        } else {
            Ok(())
        }
    }

    /// [`VirtualClock::set`] for the clock's only writer: a load and a
    /// store instead of `set`'s locked `fetch_max` (one per simulation
    /// step).
    ///
    /// Contract: while this runs, no other thread moves the clock (with
    /// `set`, `advance` or this). The simulation loop of a virtual-time
    /// network is the one writer of its clock (`Network::advance_to`,
    /// under `&mut Network`; the thread runtime runs on a real clock), so
    /// the load proves what `fetch_max` would find. Readers on other
    /// threads see the old or the new time, as with `set`. Broken, the
    /// contract loses a racing writer's move (the clock could step back
    /// to `t`); it never breaks memory safety.
    pub fn set_single_writer(&self, t: Instant) -> Result<(), ClockWentBackwards> {
        let requested = t.as_nanos();
        let now = self.nanos.load(Ordering::Relaxed);
        if now > requested {
            return Err(ClockWentBackwards {
                now: Instant::from_nanos(now),
                requested: t,
            });
        }
        self.nanos.store(requested, Ordering::Relaxed);
        Ok(())
    }
}

impl Clock for VirtualClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    fn as_virtual(&self) -> Option<&VirtualClock> {
        Some(self)
    }
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VirtualClock").field(&self.now()).finish()
    }
}

/// Real monotonic time, as nanoseconds since the clock was created.
///
/// Mirrors `ktime_get()` (`CLOCK_MONOTONIC`) in `kernel/time/timekeeping.c`.
/// Read from `std::time::Instant`; only the thread runtime should own one.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: std::time::Instant,
}

impl MonotonicClock {
    /// A clock whose epoch is the moment of this call.
    pub fn new() -> MonotonicClock {
        MonotonicClock {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> MonotonicClock {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        let elapsed = self.origin.elapsed().as_nanos();
        Instant::from_nanos(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_clock_advances_and_refuses_to_go_back() {
        let c = VirtualClock::new();
        assert_eq!(c.now(), Instant::ZERO);
        assert_eq!(c.advance(Duration::from_millis(3)), Instant::from_millis(3));
        let shared = c.clone();
        shared.set(Instant::from_millis(10)).unwrap();
        assert_eq!(c.now(), Instant::from_millis(10));
        let err = c.set(Instant::from_millis(4)).unwrap_err();
        assert_eq!(err.now, Instant::from_millis(10));
        assert_eq!(c.now(), Instant::from_millis(10));
        assert_eq!(
            err.to_string(),
            "virtual clock cannot go backwards: now is 0.010000000, requested 0.004000000"
        );
        c.set(Instant::from_millis(10)).unwrap();
        assert_eq!(c.advance(Duration::MAX), Instant::MAX);
    }

    #[test]
    fn single_writer_set_moves_forward_and_refuses_to_go_back() {
        let c = VirtualClock::starting_at(Instant::from_millis(5));
        c.set_single_writer(Instant::from_millis(5)).unwrap();
        c.set_single_writer(Instant::from_millis(9)).unwrap();
        assert_eq!(c.now(), Instant::from_millis(9));
        let err = c.set_single_writer(Instant::from_millis(7)).unwrap_err();
        assert_eq!(err.now, Instant::from_millis(9));
        assert_eq!(err.requested, Instant::from_millis(7));
        assert_eq!(c.now(), Instant::from_millis(9));
    }

    #[test]
    fn virtual_clock_is_shared_between_threads() {
        let c = VirtualClock::starting_at(Instant::from_secs(1));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.advance(Duration::from_nanos(1));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(c.now(), Instant::from_nanos(1_000_004_000));
    }

    #[test]
    fn monotonic_clock_never_decreases_and_is_object_safe() {
        let c: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
    }
}
