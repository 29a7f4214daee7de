//! Time as the stack sees it: an [`Instant`] it is given, never one it reads.
//!
//! Mirrors the role of `jiffies`/`ktime_t` in `kernel/time`. Protocol code is
//! sans-IO: it receives `now` from its caller or from a [`Clock`](crate::Clock)
//! reached through its context, so the same code runs in virtual time (the
//! simulation) and in real time (the thread runtime).

use core::fmt;
use core::ops::{Add, AddAssign, Sub};

pub use core::time::Duration;

/// A point in time: nanoseconds since an arbitrary epoch (the start of the
/// simulation, or the moment a real clock was created).
///
/// Mirrors `ktime_t`. It is `Copy`, totally ordered, and saturating where
/// the kernel would wrap; the virtual and the real clock differ only in who
/// advances them.
#[doc(alias = "ktime_t")]
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    nanos: u64,
}

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant { nanos: 0 };
    /// The latest representable instant (about 584 years after the epoch).
    pub const MAX: Instant = Instant { nanos: u64::MAX };

    /// The instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Instant {
        Instant { nanos }
    }

    /// The instant `micros` microseconds after the epoch.
    pub const fn from_micros(micros: u64) -> Instant {
        Instant {
            nanos: micros.saturating_mul(1_000),
        }
    }

    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// The instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Instant {
        Instant {
            nanos: secs.saturating_mul(1_000_000_000),
        }
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.nanos
    }

    /// Microseconds since the epoch, rounded down.
    pub const fn as_micros(self) -> u64 {
        self.nanos / 1_000
    }

    /// Milliseconds since the epoch, rounded down (jiffies with HZ=1000).
    pub const fn as_millis(self) -> u64 {
        self.nanos / 1_000_000
    }

    /// `self + d`, or `None` past [`Instant::MAX`].
    #[inline]
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        let d = u64::try_from(d.as_nanos()).ok()?;
        self.nanos.checked_add(d).map(Instant::from_nanos)
    }

    /// `self + d`, clamped at [`Instant::MAX`].
    ///
    /// Inlined (the stack adds to instants on every segment: timers,
    /// timestamps); a `d` past `u64` nanoseconds clamps as an overflowing
    /// sum does.
    #[inline]
    pub fn saturating_add(self, d: Duration) -> Instant {
        let d = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant::from_nanos(self.nanos.saturating_add(d))
    }

    /// `self - d`, or `None` before the epoch.
    #[inline]
    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        let d = u64::try_from(d.as_nanos()).ok()?;
        self.nanos.checked_sub(d).map(Instant::from_nanos)
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    #[inline]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.nanos.saturating_sub(earlier.nanos))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturates at [`Instant::MAX`] rather than panicking.
    #[inline]
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl AddAssign<Duration> for Instant {
    #[inline]
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturates at zero rather than panicking.
    #[inline]
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Instant {
    /// Seconds with nanosecond precision, as `tcpdump -tt` prints time.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:09}",
            self.nanos / 1_000_000_000,
            self.nanos % 1_000_000_000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(1), Instant::from_micros(6_000));
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::ZERO, Duration::from_millis(5));
        assert_eq!(Instant::ZERO.checked_sub(Duration::from_nanos(1)), None);
        assert_eq!(
            format!("{}", Instant::from_nanos(1_500_000_001)),
            "1.500000001"
        );
    }
}
