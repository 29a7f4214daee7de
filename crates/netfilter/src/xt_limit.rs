//! The `limit` match: a token bucket.
//!
//! Mirrors `net/netfilter/xt_limit.c` (`limit_mt()`, `struct
//! xt_rateinfo`): credit accumulates with time up to a cap of `burst`
//! packets, each matching packet spends one packet's worth.

use netcore::Instant;
use parking_lot::Mutex;

/// The scale of `avg`: `avg` is the interval between packets in units of
/// 1/10000 s (`XT_LIMIT_SCALE`).
pub const XT_LIMIT_SCALE: u32 = 10000;
/// The default burst (`XT_LIMIT_BURST_DEFAULT`... iptables' default 5).
pub const XT_LIMIT_BURST_DEFAULT: u32 = 5;
/// The default rate, 3/hour, in `avg` units.
pub const XT_LIMIT_AVG_DEFAULT: u32 = XT_LIMIT_SCALE * 3600 / 3;

/// The `limit` match with its bucket.
///
/// Mirrors `struct xt_rateinfo` (`avg`, `burst`) and its private state
/// (`struct xt_limit_priv`: `credit`, `prev`).
///
/// # Deviations from Linux
/// Credit is counted in nanoseconds of elapsed time instead of
/// `CREDITS_PER_JIFFY` units, so rates finer than a jiffy are exact.
#[derive(Debug)]
pub struct XtRateinfo {
    /// Interval between packets, in 1/10000 s.
    pub avg: u32,
    /// Packets allowed back to back.
    pub burst: u32,
    state: Mutex<LimitPriv>,
}

#[derive(Debug, Clone, Copy)]
struct LimitPriv {
    /// Credit in nanoseconds; `None` until the first packet (full bucket).
    credit: Option<u128>,
    prev: Instant,
}

impl XtRateinfo {
    /// A bucket for one packet per `avg`/10000 s with `burst`.
    pub fn new(avg: u32, burst: u32) -> XtRateinfo {
        XtRateinfo {
            avg,
            burst,
            state: Mutex::new(LimitPriv {
                credit: None,
                prev: Instant::ZERO,
            }),
        }
    }

    fn cost_ns(&self) -> u128 {
        u128::from(self.avg) * 1_000_000_000 / u128::from(XT_LIMIT_SCALE)
    }

    /// Whether a packet at `now` is within the rate (`limit_mt()`).
    pub fn mt(&self, now: Instant) -> bool {
        let cost = self.cost_ns();
        let cap = cost * u128::from(self.burst.max(1));
        let mut s = self.state.lock();
        let credit = match s.credit {
            None => cap,
            Some(c) => {
                let elapsed = u128::from(now.saturating_duration_since(s.prev).as_nanos() as u64);
                (c + elapsed).min(cap)
            }
        };
        s.prev = now;
        if credit >= cost {
            s.credit = Some(credit - cost);
            true
        } else {
            s.credit = Some(credit);
            false
        }
    }
}

impl Clone for XtRateinfo {
    /// A copy with a full bucket (a reloaded rule starts afresh, as in Linux).
    fn clone(&self) -> Self {
        XtRateinfo::new(self.avg, self.burst)
    }
}

impl PartialEq for XtRateinfo {
    fn eq(&self, o: &Self) -> bool {
        self.avg == o.avg && self.burst == o.burst
    }
}

impl Eq for XtRateinfo {}

#[cfg(test)]
mod tests {
    use super::*;
    use netcore::Duration;

    #[test]
    fn burst_then_rate() {
        // --limit 5/sec --limit-burst 10
        let l = XtRateinfo::new(XT_LIMIT_SCALE / 5, 10);
        let t0 = Instant::from_secs(100);
        let passed = (0..20).filter(|_| l.mt(t0)).count();
        assert_eq!(passed, 10);
        // 1 s later: 5 more tokens.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..20).filter(|_| l.mt(t1)).count(), 5);
        // 200 ms: exactly one.
        let t2 = t1 + Duration::from_millis(200);
        assert!(l.mt(t2));
        assert!(!l.mt(t2));
    }
}
