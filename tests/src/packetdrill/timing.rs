//! The timing model: when an event is due and whether it happened on time.
//!
//! Mirrors the time handling of packetdrill's `run.c` (`verify_time()`,
//! `get_tolerance_usecs()`) as GRAMMAR.md §3 states it, as pure functions
//! over microseconds. In virtual time the base of a relative time is the
//! virtual clock when the interpreter reaches the line.

use std::fmt;

use super::ast::{EventTime, TimeBase, TimePoint, Usecs, format_secs};
use super::config::Config;

/// How long packetdrill waits past an outbound packet's expected time before
/// "Timed out waiting for packet".
pub const OUTBOUND_TIMEOUT_USECS: Usecs = 2_000_000;

/// The tolerance settings (`--tolerance_usecs`, `--tolerance_percent`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// The fixed part, in microseconds.
    pub usecs: Usecs,
    /// The part proportional to the expected delay, in percent.
    pub percent: f64,
}

impl Tolerance {
    /// The tolerance a configuration asks for.
    pub fn from_config(c: &Config) -> Self {
        Tolerance {
            usecs: c.tolerance_usecs,
            percent: c.tolerance_percent,
        }
    }

    /// The allowed error for an event expected at `expected`, when the
    /// previous event's script time was `prev_script_time`:
    /// `max(usecs, percent% × (expected − prev_script_time))`.
    pub fn allowed(&self, expected: Usecs, prev_script_time: Usecs) -> Usecs {
        let delay = (expected - prev_script_time).max(0) as f64;
        let scaled = (delay * self.percent / 100.0).round() as Usecs;
        self.usecs.max(scaled)
    }
}

/// An event's time resolved against a base: what the interpreter schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Due at one instant.
    At(Usecs),
    /// Any time (`*`).
    Any,
    /// Anywhere in `[start, end]`.
    Window {
        /// Earliest.
        start: Usecs,
        /// Latest.
        end: Usecs,
    },
    /// A blocking call starting at `start` that must return at `end`.
    Blocking {
        /// Start of the call.
        start: Usecs,
        /// Expected return.
        end: Usecs,
    },
}

fn resolve(t: TimePoint, base: Usecs) -> Usecs {
    match t.base {
        TimeBase::Absolute => t.usecs,
        TimeBase::Relative => base + t.usecs,
    }
}

/// Resolves `time` against `base`, the virtual clock when the line is reached.
/// For `+T...E` both ends count from `base` (GRAMMAR.md §3).
pub fn schedule(time: EventTime, base: Usecs) -> Schedule {
    match time {
        EventTime::At(t) => Schedule::At(resolve(t, base)),
        EventTime::Any => Schedule::Any,
        EventTime::Window { start, end } => Schedule::Window {
            start: resolve(start, base),
            end: resolve(end, base),
        },
        EventTime::Blocking { start, end_usecs } => Schedule::Blocking {
            start: resolve(start, base),
            end: match start.base {
                TimeBase::Absolute => end_usecs,
                TimeBase::Relative => base + end_usecs,
            },
        },
    }
}

impl Schedule {
    /// The instant the interpreter advances to before starting the event
    /// (the start of a window, nothing for `*`).
    pub fn start(&self) -> Option<Usecs> {
        match *self {
            Schedule::At(t)
            | Schedule::Window { start: t, .. }
            | Schedule::Blocking { start: t, .. } => Some(t),
            Schedule::Any => None,
        }
    }

    /// The script time of this event, for the next event's tolerance: the
    /// start (the return time for a blocking call is checked separately).
    pub fn script_time(&self) -> Option<Usecs> {
        self.start()
    }

    /// Latest virtual time to wait for an outbound packet before giving up:
    /// the expected time (end of a window) plus [`OUTBOUND_TIMEOUT_USECS`];
    /// `None` for `*`, which waits for ever.
    pub fn outbound_deadline(&self) -> Option<Usecs> {
        match *self {
            Schedule::At(t)
            | Schedule::Window { end: t, .. }
            | Schedule::Blocking { end: t, .. } => Some(t + OUTBOUND_TIMEOUT_USECS),
            Schedule::Any => None,
        }
    }

    /// Formats the expectation: `0.200±0.004`, `0.200~0.300±0.004` or `*`.
    pub fn describe(&self, tolerance: Usecs) -> String {
        let tol = format_secs(tolerance);
        match *self {
            Schedule::At(t) => format!("{}±{tol}", format_secs(t)),
            Schedule::Any => "*".to_string(),
            Schedule::Window { start, end } => {
                format!("{}~{}±{tol}", format_secs(start), format_secs(end))
            }
            Schedule::Blocking { start, end } => {
                format!("{}...{}±{tol}", format_secs(start), format_secs(end))
            }
        }
    }
}

/// An event happened outside its allowed time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimingError {
    /// Earliest allowed time without tolerance.
    pub expected_start: Usecs,
    /// Latest allowed time without tolerance.
    pub expected_end: Usecs,
    /// When it happened.
    pub actual: Usecs,
    /// The tolerance that applied.
    pub tolerance: Usecs,
}

impl fmt::Display for TimingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = if self.expected_start == self.expected_end {
            format_secs(self.expected_start)
        } else {
            format!(
                "{}~{}",
                format_secs(self.expected_start),
                format_secs(self.expected_end)
            )
        };
        let early = self.actual < self.expected_start;
        write!(
            f,
            "timing error: expected at {expected}±{} but happened at {} ({} by {})",
            format_secs(self.tolerance),
            format_secs(self.actual),
            if early { "early" } else { "late" },
            format_secs(if early {
                self.expected_start - self.tolerance - self.actual
            } else {
                self.actual - self.expected_end - self.tolerance
            }),
        )
    }
}

impl std::error::Error for TimingError {}

/// Checks `actual` against `[start − tol, end + tol]`, mirroring
/// `verify_time()`. `*` always passes; for a blocking call this checks the
/// start (use [`check_return_time`] for the return).
pub fn check_time(expected: Schedule, actual: Usecs, tolerance: Usecs) -> Result<(), TimingError> {
    let (start, end) = match expected {
        Schedule::Any => return Ok(()),
        Schedule::At(t) | Schedule::Blocking { start: t, .. } => (t, t),
        Schedule::Window { start, end } => (start, end),
    };
    within(start, end, actual, tolerance)
}

/// Checks when a blocking call returned against its `...E` time.
pub fn check_return_time(
    expected: Schedule,
    returned: Usecs,
    tolerance: Usecs,
) -> Result<(), TimingError> {
    match expected {
        Schedule::Blocking { end, .. } => within(end, end, returned, tolerance),
        other => check_time(other, returned, tolerance),
    }
}

fn within(start: Usecs, end: Usecs, actual: Usecs, tolerance: Usecs) -> Result<(), TimingError> {
    if actual >= start - tolerance && actual <= end + tolerance {
        Ok(())
    } else {
        Err(TimingError {
            expected_start: start,
            expected_end: end,
            actual,
            tolerance,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(usecs: Usecs) -> TimePoint {
        TimePoint {
            base: TimeBase::Relative,
            usecs,
        }
    }

    fn abs(usecs: Usecs) -> TimePoint {
        TimePoint {
            base: TimeBase::Absolute,
            usecs,
        }
    }

    #[test]
    fn tolerance_is_max_of_fixed_and_percent() {
        let t = Tolerance {
            usecs: 4000,
            percent: 12.5,
        };
        // 12.5 % of 10 ms is 1.25 ms < 4 ms.
        assert_eq!(t.allowed(1_010_000, 1_000_000), 4000);
        // 12.5 % of 200 ms is 25 ms.
        assert_eq!(t.allowed(1_200_000, 1_000_000), 25_000);
        // An expected time before the previous event gives the fixed part.
        assert_eq!(t.allowed(0, 1_000_000), 4000);
    }

    #[test]
    fn relative_and_absolute_resolution() {
        assert_eq!(
            schedule(EventTime::At(rel(100_000)), 500_000),
            Schedule::At(600_000)
        );
        assert_eq!(
            schedule(EventTime::At(abs(100_000)), 500_000),
            Schedule::At(100_000)
        );
        assert_eq!(
            schedule(
                EventTime::Window {
                    start: rel(210_000),
                    end: rel(215_000)
                },
                1_000_000
            ),
            Schedule::Window {
                start: 1_210_000,
                end: 1_215_000
            }
        );
        // `+.1...0.200`: starts at base+0.1 and returns at base+0.2.
        assert_eq!(
            schedule(
                EventTime::Blocking {
                    start: rel(100_000),
                    end_usecs: 200_000
                },
                1_000_000
            ),
            Schedule::Blocking {
                start: 1_100_000,
                end: 1_200_000
            }
        );
        assert_eq!(
            schedule(
                EventTime::Blocking {
                    start: abs(100_000),
                    end_usecs: 200_000
                },
                1_000_000
            ),
            Schedule::Blocking {
                start: 100_000,
                end: 200_000
            }
        );
    }

    #[test]
    fn time_checks_both_directions_and_windows() {
        assert!(check_time(Schedule::At(200_000), 204_000, 4000).is_ok());
        assert!(check_time(Schedule::At(200_000), 196_000, 4000).is_ok());
        let late = check_time(Schedule::At(200_000), 204_001, 4000).unwrap_err();
        assert_eq!(
            late.to_string(),
            "timing error: expected at 0.200±0.004 but happened at 0.204001 (late by 0.000001)"
        );
        let early = check_time(Schedule::At(200_000), 100_000, 4000).unwrap_err();
        assert!(early.to_string().contains("early by 0.096"), "{early}");
        let w = Schedule::Window {
            start: 210_000,
            end: 215_000,
        };
        assert!(check_time(w, 206_000, 4000).is_ok());
        assert!(check_time(w, 219_000, 4000).is_ok());
        assert!(check_time(w, 219_001, 4000).is_err());
        assert!(check_time(Schedule::Any, 99_000_000, 0).is_ok());
        let b = Schedule::Blocking {
            start: 100_000,
            end: 200_000,
        };
        assert!(check_return_time(b, 201_000, 4000).is_ok());
        assert!(check_return_time(b, 100_000, 4000).is_err());
    }

    #[test]
    fn deadlines_and_descriptions() {
        assert_eq!(Schedule::At(1_000_000).outbound_deadline(), Some(3_000_000));
        assert_eq!(Schedule::Any.outbound_deadline(), None);
        assert_eq!(Schedule::At(200_000).describe(25_000), "0.200±0.025");
        assert_eq!(
            Schedule::Window {
                start: 1_210_000,
                end: 1_215_000
            }
            .describe(4000),
            "1.210~1.215±0.004"
        );
    }
}
