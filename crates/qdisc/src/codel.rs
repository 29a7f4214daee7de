//! The CoDel AQM: state, parameters and the dequeue-time control law.
//!
//! Mirrors `include/net/codel.h` (`codel_time_t`, `struct codel_params`,
//! `struct codel_vars`, `struct codel_stats`, `struct codel_skb_cb`) and
//! `include/net/codel_impl.h` (`codel_Newton_step()`,
//! `codel_control_law()`, `codel_should_drop()`, `codel_dequeue()`).
//!
//! Time is kept as Linux keeps it: a `u32` of nanoseconds shifted right by
//! [`CODEL_SHIFT`] (units of 1.024 µs, wrapping every ~73 minutes) and
//! compared with wrapping arithmetic. `1/sqrt(count)` is kept as a Q0.16
//! fixed-point number refined by one Newton step per change of `count`.
//!
//! With `ecn` on, a packet CoDel picks that is ECN-capable (ECT(0),
//! ECT(1), or already CE) is marked CE and sent on instead of dropped
//! (`INET_ECN_set_ce()`, counted in `ecn_mark`); the control law moves on
//! as after a drop. Other packets are dropped.
//!
//! # Deviations from Linux
//!
//! - No `ce_threshold` marking (marking every ECT packet whose sojourn
//!   exceeds a threshold, for DCTCP-style senders); the parameter is not
//!   offered.

use netcore::{Instant, SkBuff};

/// The right shift from nanoseconds to `codel_time_t` units. Mirrors
/// `CODEL_SHIFT`.
pub const CODEL_SHIFT: u32 = 10;

/// CoDel's clock: nanoseconds `>> CODEL_SHIFT`, wrapping. Mirrors
/// `codel_time_t`.
#[doc(alias = "codel_time_t")]
pub type CodelTime = u32;

/// The bits of the fixed-point `rec_inv_sqrt`. Mirrors
/// `REC_INV_SQRT_BITS`.
const REC_INV_SQRT_BITS: u32 = 16;
/// Mirrors `REC_INV_SQRT_SHIFT`.
const REC_INV_SQRT_SHIFT: u32 = 32 - REC_INV_SQRT_BITS;

/// `now` in CoDel units. Mirrors `codel_get_time()`.
pub fn codel_get_time(now: Instant) -> CodelTime {
    (now.as_nanos() >> CODEL_SHIFT) as u32
}

/// Microseconds to CoDel units. Mirrors `(us * NSEC_PER_USEC) >> CODEL_SHIFT`.
pub fn us_to_codel_time(us: u32) -> CodelTime {
    ((u64::from(us) * 1_000) >> CODEL_SHIFT) as u32
}

/// CoDel units to microseconds. Mirrors `codel_time_to_us()`.
pub fn codel_time_to_us(t: CodelTime) -> u32 {
    ((u64::from(t) << CODEL_SHIFT) / 1_000) as u32
}

/// `a` is after `b`, on the wrapping clock. Mirrors `codel_time_after()`.
fn time_after(a: CodelTime, b: CodelTime) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Mirrors `codel_time_after_eq()`.
fn time_after_eq(a: CodelTime, b: CodelTime) -> bool {
    (a.wrapping_sub(b) as i32) >= 0
}

/// Mirrors `codel_time_before()`.
fn time_before(a: CodelTime, b: CodelTime) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// CoDel's parameters.
///
/// Mirrors `struct codel_params`; [`CodelParams::default`] is
/// `codel_params_init()`: target 5 ms, interval 100 ms, ECN off.
#[doc(alias = "codel_params")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodelParams {
    /// The acceptable standing queue delay.
    pub target: CodelTime,
    /// The sliding window over which the minimum delay is watched; also
    /// the base of the drop spacing.
    pub interval: CodelTime,
    /// Below this many bytes of backlog CoDel never drops (one MTU-sized
    /// packet's worth, `psched_mtu()`).
    pub mtu: u32,
    /// Mark ECN-capable packets CE instead of dropping them.
    pub ecn: bool,
}

impl Default for CodelParams {
    fn default() -> CodelParams {
        CodelParams {
            target: us_to_codel_time(5_000),
            interval: us_to_codel_time(100_000),
            mtu: 1514,
            ecn: false,
        }
    }
}

/// CoDel's per-queue state.
///
/// Mirrors `struct codel_vars`; [`Default`] is `codel_vars_init()`.
#[doc(alias = "codel_vars")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodelVars {
    /// Packets dropped since entering the dropping state.
    pub count: u32,
    /// `count` when the last dropping state was left.
    pub lastcount: u32,
    /// In the dropping state.
    pub dropping: bool,
    /// `1/sqrt(count)` in Q0.16.
    pub rec_inv_sqrt: u16,
    /// When the delay will have been above target for a whole interval (0
    /// while below target).
    pub first_above_time: CodelTime,
    /// When the next drop is due while dropping.
    pub drop_next: CodelTime,
    /// The sojourn time of the last dequeued packet.
    pub ldelay: CodelTime,
}

/// CoDel's counters for one qdisc.
///
/// Mirrors `struct codel_stats`.
#[doc(alias = "codel_stats")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodelStats {
    /// The largest packet seen at dequeue.
    pub maxpacket: u32,
    /// Packets dropped by the control law.
    pub drop_count: u32,
    /// Bytes dropped by the control law.
    pub drop_len: u32,
    /// Packets CE-marked instead of dropped.
    pub ecn_mark: u32,
}

/// One queued packet with what `codel_skb_cb` keeps in `skb->cb`: its
/// enqueue time and the memory it is charged for.
#[doc(alias = "codel_skb_cb")]
#[derive(Debug)]
pub struct CodelSkb {
    /// The packet.
    pub skb: SkBuff,
    /// When it was enqueued (`codel_set_enqueue_time()`).
    pub enqueue_time: CodelTime,
    /// The memory charged for it (`skb->truesize`).
    pub mem_usage: u32,
}

/// One Newton iteration of `rec_inv_sqrt ← rec_inv_sqrt·(3 − count·rec_inv_sqrt²)/2`.
///
/// Mirrors `codel_Newton_step()`.
#[doc(alias = "codel_Newton_step")]
pub fn codel_newton_step(vars: &mut CodelVars) {
    let invsqrt = u32::from(vars.rec_inv_sqrt) << REC_INV_SQRT_SHIFT;
    let invsqrt2 = ((u64::from(invsqrt) * u64::from(invsqrt)) >> 32) as u32;
    let mut val = (3u64 << 32).wrapping_sub(u64::from(vars.count) * u64::from(invsqrt2));
    val >>= 2; // avoid overflow in the following multiply
    val = val.wrapping_mul(u64::from(invsqrt)) >> (32 - 2 + 1);
    vars.rec_inv_sqrt = (val >> REC_INV_SQRT_SHIFT) as u16;
}

/// The next drop time: `t + interval / sqrt(count)`.
///
/// Mirrors `codel_control_law()` (the division is `reciprocal_scale()` by
/// the kept reciprocal square root).
pub fn codel_control_law(t: CodelTime, interval: CodelTime, rec_inv_sqrt: u16) -> CodelTime {
    let scale = u32::from(rec_inv_sqrt) << REC_INV_SQRT_SHIFT;
    t.wrapping_add(((u64::from(interval) * u64::from(scale)) >> 32) as u32)
}

/// Whether the head packet's sojourn time has been above target for at
/// least an interval. Updates `ldelay`, `first_above_time` and
/// `maxpacket`. `item` is `None` when the queue ran empty.
///
/// Mirrors `codel_should_drop()`.
pub fn codel_should_drop(
    item: Option<&CodelSkb>,
    vars: &mut CodelVars,
    params: &CodelParams,
    stats: &mut CodelStats,
    backlog: u32,
    now: CodelTime,
) -> bool {
    let Some(item) = item else {
        vars.first_above_time = 0;
        return false;
    };
    let len = item.skb.len() as u32;
    vars.ldelay = now.wrapping_sub(item.enqueue_time);
    if len > stats.maxpacket {
        stats.maxpacket = len;
    }
    if time_before(vars.ldelay, params.target) || backlog <= params.mtu {
        // went below: stay below for at least an interval
        vars.first_above_time = 0;
        return false;
    }
    if vars.first_above_time == 0 {
        // just went above: if it stays above for an interval, drop
        vars.first_above_time = now.wrapping_add(params.interval);
        false
    } else {
        time_after(now, vars.first_above_time)
    }
}

/// What CoDel needs from the queue it manages.
///
/// Mirrors the `dequeue_func`/`drop_func` callbacks (and the `backlog`
/// pointer) that `codel_dequeue()` takes.
pub trait CodelQueue {
    /// Removes the head packet, updating the queue's counters (qlen,
    /// backlog). Mirrors `dequeue_func`.
    fn dequeue_head(&mut self) -> Option<CodelSkb>;
    /// Frees a packet the control law dropped and counts the drop.
    /// Mirrors `drop_func`.
    fn drop_skb(&mut self, item: CodelSkb);
    /// The qdisc's backlog in bytes now (`sch->qstats.backlog`).
    fn backlog(&self) -> u32;
}

/// Dequeues the next packet CoDel lets through, dropping head packets
/// while the control law says so.
///
/// Mirrors `codel_dequeue()` in `include/net/codel_impl.h`: leaving the
/// dropping state when the delay goes below target; while dropping,
/// dropping at `drop_next` and spacing the next drop by
/// `interval/sqrt(count)`; entering the dropping state after an interval
/// above target, restarting from the previous cycle's drop rate if that
/// ended recently (within 16 intervals).
pub fn codel_dequeue(
    queue: &mut dyn CodelQueue,
    params: &CodelParams,
    vars: &mut CodelVars,
    stats: &mut CodelStats,
    now: CodelTime,
) -> Option<CodelSkb> {
    let Some(mut item) = queue.dequeue_head() else {
        vars.dropping = false;
        return None;
    };
    let drop = codel_should_drop(Some(&item), vars, params, stats, queue.backlog(), now);
    if vars.dropping {
        if !drop {
            // sojourn time below target: leave the dropping state
            vars.dropping = false;
        } else if time_after_eq(now, vars.drop_next) {
            // Time for the next drop(s): a large backlog may make several
            // due at once.
            while vars.dropping && time_after_eq(now, vars.drop_next) {
                vars.count = vars.count.wrapping_add(1);
                codel_newton_step(vars);
                if params.ecn && netcore::inet_ecn_set_ce(&mut item.skb) {
                    // Marked, not dropped: it goes out, the next mark
                    // is due as the next drop would have been.
                    stats.ecn_mark += 1;
                    vars.drop_next =
                        codel_control_law(vars.drop_next, params.interval, vars.rec_inv_sqrt);
                    return Some(item);
                }
                stats.drop_len = stats.drop_len.wrapping_add(item.skb.len() as u32);
                queue.drop_skb(item);
                stats.drop_count += 1;
                let next = queue.dequeue_head();
                if codel_should_drop(next.as_ref(), vars, params, stats, queue.backlog(), now) {
                    vars.drop_next =
                        codel_control_law(vars.drop_next, params.interval, vars.rec_inv_sqrt);
                } else {
                    vars.dropping = false;
                }
                match next {
                    Some(n) => item = n,
                    None => return None,
                }
            }
        }
    } else if drop {
        let next = if params.ecn && netcore::inet_ecn_set_ce(&mut item.skb) {
            stats.ecn_mark += 1;
            Some(item)
        } else {
            stats.drop_len = stats.drop_len.wrapping_add(item.skb.len() as u32);
            queue.drop_skb(item);
            stats.drop_count += 1;
            let next = queue.dequeue_head();
            // Linux re-evaluates here for its side effects on the state
            // (ldelay, first_above_time); the verdict is not used.
            let _ = codel_should_drop(next.as_ref(), vars, params, stats, queue.backlog(), now);
            next
        };
        vars.dropping = true;
        // If the delay went above target soon after the last dropping
        // state ended, start from that state's drop rate.
        let delta = vars.count.wrapping_sub(vars.lastcount);
        if delta > 1
            && time_before(
                now.wrapping_sub(vars.drop_next),
                params.interval.wrapping_mul(16),
            )
        {
            vars.count = delta;
            codel_newton_step(vars);
        } else {
            vars.count = 1;
            vars.rec_inv_sqrt = (!0u32 >> REC_INV_SQRT_SHIFT) as u16;
        }
        vars.lastcount = vars.count;
        vars.drop_next = codel_control_law(now, params.interval, vars.rec_inv_sqrt);
        return next;
    }
    Some(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_conversions_match_the_kernels_shift() {
        // MS2TIME(5) = 5_000_000 >> 10 = 4882
        assert_eq!(us_to_codel_time(5_000), 4882);
        assert_eq!(us_to_codel_time(100_000), 97656);
        assert_eq!(codel_time_to_us(4882), 4999);
        assert_eq!(codel_get_time(Instant::from_millis(5)), 4882);
        assert!(time_after(1, u32::MAX), "comparison wraps");
        assert!(time_before(u32::MAX, 1));
    }

    #[test]
    fn newton_steps_converge_to_the_inverse_square_root() {
        let mut v = CodelVars {
            count: 1,
            rec_inv_sqrt: u16::MAX,
            ..CodelVars::default()
        };
        for count in 2..=100u32 {
            v.count = count;
            codel_newton_step(&mut v);
        }
        // after many single steps the estimate tracks 1/sqrt(count)
        let est = f64::from(v.rec_inv_sqrt) / 65536.0;
        let exact = 1.0 / 100f64.sqrt();
        assert!((est - exact).abs() < 0.005, "{est} vs {exact}");
    }

    #[test]
    fn control_law_spaces_drops_by_interval_over_sqrt_count() {
        let interval = us_to_codel_time(100_000);
        // count 1: rec_inv_sqrt ~1.0, next drop one interval later
        let next = codel_control_law(1000, interval, u16::MAX);
        assert!((next - 1000).abs_diff(interval) <= 2, "{next}");
        // count 4: rec_inv_sqrt 0.5, half an interval
        let next = codel_control_law(1000, interval, 0x8000);
        assert_eq!(next - 1000, interval / 2);
    }
}
