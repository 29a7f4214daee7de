//! The seam through which protocol code arms and cancels its timers.
//!
//! Mirrors the role of `mod_timer()`/`timer_delete()` on the calling CPU's
//! timer base in `kernel/time/timer.c`, in the typed form netstack uses:
//! each crate has an enum of its timers (`TcpTimer::Retransmit`, ...), arms
//! them through its context, and gets expired ids back through its own
//! `handle_timer(id, now)`. The host's runtime converts each crate's id into
//! its host-wide timer id and keeps one [`TimerWheel`](crate::TimerWheel)
//! per CPU, run by the `TIMER` softirq.

use crate::Instant;

/// Arms and cancels timers of id type `T` on the current CPU's timer wheel.
///
/// Mirrors `mod_timer()` (re-arming a pending timer moves it) and
/// `timer_delete()`. Object-safe: a layer can take
/// `&mut dyn TimerContext<MyTimer>`.
///
/// ```
/// use netcore::{Instant, TimerContext, TimerWheel};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
/// enum MyTimer { Retransmit }
///
/// let mut wheel = TimerWheel::new(Instant::ZERO);
/// let ctx: &mut dyn TimerContext<MyTimer> = &mut wheel;
/// assert_eq!(ctx.arm_timer(MyTimer::Retransmit, Instant::from_millis(200)), None);
/// assert_eq!(ctx.timer_pending(MyTimer::Retransmit), Some(Instant::from_millis(200)));
/// assert_eq!(ctx.cancel_timer(MyTimer::Retransmit), Some(Instant::from_millis(200)));
/// ```
pub trait TimerContext<T> {
    /// Arms `id` to expire at `at`, moving it if it was pending; returns the
    /// previous expiry. Mirrors `mod_timer()`.
    #[doc(alias = "mod_timer")]
    fn arm_timer(&mut self, id: T, at: Instant) -> Option<Instant>;

    /// Cancels `id`; returns the expiry it had if it was pending. Mirrors
    /// `timer_delete()` (`del_timer()`).
    #[doc(alias = "del_timer")]
    #[doc(alias = "timer_delete")]
    fn cancel_timer(&mut self, id: T) -> Option<Instant>;

    /// When `id` will expire, if it is pending. Mirrors `timer_pending()`
    /// together with `timer->expires`.
    fn timer_pending(&self, id: T) -> Option<Instant>;

    /// Whether [`timer_pending`](Self::timer_pending) sees every timer of
    /// this CPU. `false` on a context that stands in for a CPU for one call
    /// (netstack's call made outside any CPU between simulation steps): its
    /// arms and cancels reach the CPU's wheel after the call, and timers
    /// armed before it are not visible to it, so a check that a timer is
    /// pending must be skipped there. Linux has no such context.
    fn timers_complete(&self) -> bool {
        true
    }
}

impl<T: Copy + Eq + core::hash::Hash> TimerContext<T> for crate::TimerWheel<T> {
    fn arm_timer(&mut self, id: T, at: Instant) -> Option<Instant> {
        self.arm(id, at)
    }

    fn cancel_timer(&mut self, id: T) -> Option<Instant> {
        self.cancel(id)
    }

    fn timer_pending(&self, id: T) -> Option<Instant> {
        self.pending(id)
    }
}

#[cfg(any(test, feature = "testutils"))]
impl<T: Copy + Eq + core::hash::Hash + core::fmt::Debug> TimerContext<T>
    for crate::testutil::FakeTimers<T>
{
    fn arm_timer(&mut self, id: T, at: Instant) -> Option<Instant> {
        self.arm(id, at)
    }

    fn cancel_timer(&mut self, id: T) -> Option<Instant> {
        self.cancel(id)
    }

    fn timer_pending(&self, id: T) -> Option<Instant> {
        self.scheduled(id)
    }
}
