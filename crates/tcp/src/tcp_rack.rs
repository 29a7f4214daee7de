//! RACK: time-based loss detection (RFC 8985), and NewReno's loss marking
//! for connections without SACK.
//!
//! Mirrors `net/ipv4/tcp_recovery.c`: `tcp_rack_advance()` remembers the
//! most recently sent segment that was (S)ACKed, `tcp_rack_detect_loss()`
//! marks lost every segment sent before it that is still unacknowledged
//! one RTT plus a reordering window after it was sent, the reordering
//! timer (`tcp_rack_reo_timeout()`) fires for the ones not yet due, and
//! `tcp_rack_update_reo_wnd()` widens the window on D-SACKs.
//!
//! ```text
//!  sent:   1   2   3   4   5        (time ->)
//!  acked:              4            rack.mstamp = sent(4), rack.rtt = now - sent(4)
//!  lost if now - sent(k) > rack.rtt + reo_wnd, for k sent before 4 and not acked
//! ```
//!
//! The reordering window (`tcp_rack_reo_wnd()`) is 0 before any
//! reordering was seen once in Recovery or once `reordering` segments are
//! SACKed (the duplicate-ACK threshold still applies, unless
//! `tcp_recovery` has `TCP_RACK_NO_DUPTHRESH`), else `min_rtt/4` times the
//! D-SACK steps, at most SRTT.
//!
//! `min_rtt` is the windowed minimum of `tcp_update_rtt_min()` (over
//! `tcp_min_rtt_wlen`, 300 s), and whether an RTT has passed since the
//! window was last widened comes from the ACK's delivery-rate sample
//! (`rs->prior_delivered`), as in Linux.

use netcore::{Duration, Instant, LinuxMib, Sysctl};

use crate::context::TcpContext;
use crate::tcp_cong::TcpCaState;
use crate::tcp_sock::{
    TCPCB_LOST, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS, TcpSock, after, before,
};
use crate::tcp_timer::{TcpTimer, inet_csk_reset_xmit_timer};

/// `TCP_RACK_LOSS_DETECTION`: bit 0 of `net.ipv4.tcp_recovery`, RACK on.
pub(crate) const TCP_RACK_LOSS_DETECTION: i64 = 0x1;
/// `TCP_RACK_STATIC_REO_WND`: bit 1, the window never widens on D-SACK.
pub(crate) const TCP_RACK_STATIC_REO_WND: i64 = 0x2;
/// `TCP_RACK_NO_DUPTHRESH`: bit 2, no zero window at `reordering` SACKs.
pub(crate) const TCP_RACK_NO_DUPTHRESH: i64 = 0x4;
/// `TCP_RACK_RECOVERY_THRESH`: recoveries a widened window persists for.
pub(crate) const TCP_RACK_RECOVERY_THRESH: u8 = 16;
/// `TCP_TIMEOUT_MIN`: 2 jiffies, added to the reordering timer.
const TCP_TIMEOUT_MIN: Duration = Duration::from_millis(2);

/// The RACK state of a connection.
///
/// Mirrors the `rack` member of `struct tcp_sock` (`include/linux/tcp.h`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpRack {
    /// Send time (µs) of the most recently sent segment that was
    /// (S)ACKed; 0 before the first (`rack.mstamp`).
    pub mstamp: u64,
    /// RTT of that segment (`rack.rtt_us`).
    pub rtt_us: u32,
    /// Its end sequence, the tie-break for equal send times (`end_seq`).
    pub end_seq: u32,
    /// `tp->delivered` when the window was last widened
    /// (`last_delivered`).
    pub last_delivered: u32,
    /// The window in units of `min_rtt/4` (`reo_wnd_steps`).
    pub reo_wnd_steps: u8,
    /// Recoveries left before the window returns to one step
    /// (`reo_wnd_persist`).
    pub reo_wnd_persist: u8,
    /// A D-SACK arrived since the last window update (`dsack_seen`).
    pub dsack_seen: bool,
    /// `mstamp` moved since the last loss scan (`advanced`).
    pub advanced: bool,
}

impl TcpRack {
    /// The state of a new socket (`tcp_init_sock()`: one step).
    pub const fn new() -> TcpRack {
        TcpRack {
            mstamp: 0,
            rtt_us: 0,
            end_seq: 0,
            last_delivered: 0,
            reo_wnd_steps: 1,
            reo_wnd_persist: 0,
            dsack_seen: false,
            advanced: false,
        }
    }
}

/// `t1` (with `seq1`) was sent after `t2` (with `seq2`). Mirrors
/// `tcp_skb_sent_after()`.
fn tcp_skb_sent_after(t1: u64, t2: u64, seq1: u32, seq2: u32) -> bool {
    t1 > t2 || (t1 == t2 && after(seq1, seq2))
}

/// Whether RACK loss detection is on (`tcp_recovery & 1`). Mirrors
/// `tcp_is_rack()`.
pub(crate) fn tcp_is_rack<C: TcpContext>(ctx: &C) -> bool {
    ctx.sysctl().get_int(Sysctl::TCP_RECOVERY) & TCP_RACK_LOSS_DETECTION != 0
}

/// The smallest RTT seen, µs (`tcp_min_rtt()`).
fn tcp_min_rtt(tp: &TcpSock) -> u32 {
    tp.min_rtt_us
}

/// The reordering window in µs. Mirrors `tcp_rack_reo_wnd()`.
fn tcp_rack_reo_wnd<C: TcpContext>(ctx: &C, tp: &TcpSock) -> u32 {
    if tp.recovery.reord_seen == 0 {
        // No reordering seen: be aggressive in recovery or once the
        // duplicate-ACK threshold is met.
        if tp.ca_state as u8 >= TcpCaState::Recovery as u8 {
            return 0;
        }
        let recovery = ctx.sysctl().get_int(Sysctl::TCP_RECOVERY);
        if tp.sacked_out >= tp.reordering && recovery & TCP_RACK_NO_DUPTHRESH == 0 {
            return 0;
        }
    }
    if tcp_min_rtt(tp) == u32::MAX {
        return 0;
    }
    (tcp_min_rtt(tp) >> 2)
        .saturating_mul(u32::from(tp.rack.reo_wnd_steps))
        .min(tp.srtt_us >> 3)
}

/// How long until the segment sent at `sent_us` is overdue (µs, may be
/// negative). Mirrors `tcp_rack_skb_timeout()`.
pub(crate) fn tcp_rack_skb_timeout(tp: &TcpSock, now: Instant, sent_us: u64, reo_wnd: u32) -> i64 {
    let elapsed = now.as_micros().saturating_sub(sent_us);
    i64::from(tp.rack.rtt_us) + i64::from(reo_wnd) - elapsed as i64
}

/// Marks one segment lost: `TCPCB_LOST` and `lost_out`, or, for a lost
/// retransmission, the retransmission forgotten (`TCPLostRetransmit`).
/// Mirrors `tcp_mark_skb_lost()` (`tcp_input.c`).
pub(crate) fn tcp_mark_skb_lost<C: TcpContext>(ctx: &C, tp: &mut TcpSock, idx: usize) {
    let sacked = tp.write_queue[idx].sacked;
    if sacked & TCPCB_SACKED_ACKED != 0 {
        return;
    }
    if sacked & TCPCB_LOST != 0 {
        if sacked & TCPCB_SACKED_RETRANS != 0 {
            tp.write_queue[idx].sacked &= !TCPCB_SACKED_RETRANS;
            tp.retrans_out = tp.retrans_out.saturating_sub(1);
            ctx.mibs()
                .this_cpu(ctx.cpu())
                .inc(LinuxMib::TcpLostRetransmit);
            tp.recovery.lost = tp.recovery.lost.wrapping_add(1);
        }
    } else {
        tp.write_queue[idx].sacked |= TCPCB_LOST;
        tp.lost_out += 1;
        tp.recovery.lost = tp.recovery.lost.wrapping_add(1);
    }
}

/// Marks lost the segments sent before the RACK segment that are overdue;
/// returns the longest wait (µs) among those not yet due, 0 for none.
/// Mirrors `tcp_rack_detect_loss()`.
///
/// Linux walks `tsorted_sent_queue` in send order and stops at the first
/// segment sent after the RACK one; the write queue here is in sequence
/// order, so every segment in flight is tested: the same segments are
/// marked, since "sent before the RACK segment" holds for a prefix of the
/// send order.
fn tcp_rack_detect_loss<C: TcpContext>(ctx: &C, tp: &mut TcpSock) -> u32 {
    let now = ctx.now();
    let reo_wnd = tcp_rack_reo_wnd(ctx, tp);
    let n = (tp.packets_out as usize).min(tp.write_queue.len());
    let mut reo_timeout = 0u32;
    for idx in 0..n {
        let (sacked, sent, end_seq) = {
            let s = &tp.write_queue[idx];
            (s.sacked, s.sent_at.map_or(0, Instant::as_micros), s.end_seq)
        };
        if sacked & TCPCB_SACKED_ACKED != 0 {
            continue;
        }
        // Skip ones marked lost but not yet retransmitted.
        if sacked & TCPCB_LOST != 0 && sacked & TCPCB_SACKED_RETRANS == 0 {
            continue;
        }
        if !tcp_skb_sent_after(tp.rack.mstamp, sent, tp.rack.end_seq, end_seq) {
            continue;
        }
        let remaining = tcp_rack_skb_timeout(tp, now, sent, reo_wnd);
        if remaining <= 0 {
            tcp_mark_skb_lost(ctx, tp, idx);
        } else {
            reo_timeout = reo_timeout.max(remaining.min(i64::from(u32::MAX)) as u32);
        }
    }
    reo_timeout
}

/// Runs RACK loss detection when its segment advanced and arms the
/// reordering timer for the segments not yet overdue. Returns whether the
/// timer was armed. Mirrors `tcp_rack_mark_lost()`.
pub(crate) fn tcp_rack_mark_lost<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) -> bool {
    if !tp.rack.advanced {
        return false;
    }
    tp.rack.advanced = false;
    let timeout = tcp_rack_detect_loss(ctx, tp);
    if timeout > 0 {
        let when = Duration::from_micros(u64::from(timeout)) + TCP_TIMEOUT_MIN;
        let id = tp.id;
        let rto = tp.rto();
        inet_csk_reset_xmit_timer(ctx, tp, TcpTimer::ReoTimeout(id), when, rto);
    }
    timeout > 0
}

/// Records a (S)ACKed segment sent at `xmit_us`: the newest such segment
/// and its RTT drive loss detection. A retransmitted segment acked within
/// `min_rtt` of its retransmission is ambiguous and ignored. Mirrors
/// `tcp_rack_advance()`.
pub(crate) fn tcp_rack_advance(
    tp: &mut TcpSock,
    now: Instant,
    sacked_retrans: bool,
    end_seq: u32,
    xmit_us: u64,
) {
    let rtt_us = now
        .as_micros()
        .saturating_sub(xmit_us)
        .min(u64::from(u32::MAX)) as u32;
    if rtt_us < tcp_min_rtt(tp) && sacked_retrans {
        return;
    }
    tp.rack.advanced = true;
    tp.rack.rtt_us = rtt_us;
    if tcp_skb_sent_after(xmit_us, tp.rack.mstamp, end_seq, tp.rack.end_seq) {
        tp.rack.mstamp = xmit_us;
        tp.rack.end_seq = end_seq;
    }
}

/// The reordering timer fired: mark what is overdue, start recovery if
/// that found a loss, retransmit, and re-arm the RTO. Mirrors
/// `tcp_rack_reo_timeout()`.
pub(crate) fn tcp_rack_reo_timeout<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if tp.packets_out == 0 {
        return;
    }
    tp.cwnd.tcp_mstamp = ctx.now().as_micros();
    let lost = tp.recovery.lost;
    let prior_inflight = tp.packets_in_flight();
    let _ = tcp_rack_detect_loss(ctx, tp);
    if prior_inflight != tp.packets_in_flight() {
        if tp.ca_state != TcpCaState::Recovery {
            crate::tcp_input::tcp_enter_recovery(ctx, tp, false);
            let newly_lost = tp.recovery.lost.wrapping_sub(lost);
            crate::tcp_input::tcp_cwnd_reduction(tp, 1, newly_lost, 0);
        }
        crate::tcp_output::tcp_xmit_retransmit_queue(ctx, tp);
    }
    if !crate::tcp_timer::icsk_pending_is(tp, TcpTimer::Retransmit(tp.id)) {
        crate::tcp_recovery::tcp_rearm_rto(ctx, tp);
    }
}

/// Widens the reordering window by one step on a D-SACK that came at
/// least an RTT after the last widening; after `TCP_RACK_RECOVERY_THRESH`
/// recoveries without one, returns it to one step. Mirrors
/// `tcp_rack_update_reo_wnd()`: an RTT has passed when the newest
/// segment this ACK delivered was sent after the widening, i.e. its rate
/// sample's `prior_delivered` is not below `rack.last_delivered`.
pub(crate) fn tcp_rack_update_reo_wnd<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    rs: &crate::tcp_rate::RateSample,
) {
    if ctx.sysctl().get_int(Sysctl::TCP_RECOVERY) & TCP_RACK_STATIC_REO_WND != 0
        || rs.prior_delivered == 0
    {
        return;
    }
    // Disregard a D-SACK if an RTT has not passed since the last change.
    if before(rs.prior_delivered, tp.rack.last_delivered) {
        tp.rack.dsack_seen = false;
    }
    if tp.rack.dsack_seen {
        tp.rack.reo_wnd_steps = tp.rack.reo_wnd_steps.saturating_add(1);
        tp.rack.dsack_seen = false;
        tp.rack.last_delivered = tp.delivered;
        tp.rack.reo_wnd_persist = TCP_RACK_RECOVERY_THRESH;
    } else if tp.rack.reo_wnd_persist == 0 {
        tp.rack.reo_wnd_steps = 1;
    }
}

/// NewReno (RFC 6582) without SACK: the head is lost once `reordering`
/// duplicate ACKs came, and again on each partial ACK in Recovery.
/// Mirrors `tcp_newreno_mark_lost()`.
pub(crate) fn tcp_newreno_mark_lost<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    snd_una_advanced: bool,
) {
    let state = tp.ca_state;
    let recovery = state == TcpCaState::Recovery;
    if (!recovery && (state as u8) < (TcpCaState::Recovery as u8) && tp.sacked_out >= tp.reordering)
        || (recovery && snd_una_advanced)
    {
        let Some(head) = tp.write_queue.front() else {
            return;
        };
        if tp.packets_out == 0 || head.sacked & TCPCB_LOST != 0 {
            return;
        }
        tcp_mark_skb_lost(ctx, tp, 0);
    }
}

#[cfg(test)]
mod tests {
    use core::net::Ipv4Addr;

    use netcore::{Instant, PagePool, PagePoolParams};

    use super::*;
    use crate::tcp_cong::Reno;
    use crate::tcp_sock::SockId;
    use crate::testutil::FakeTcpCtx;

    fn ctx() -> FakeTcpCtx {
        let pool = PagePool::new(PagePoolParams::default()).expect("pool");
        let mut ctx = FakeTcpCtx::new(Ipv4Addr::new(198, 18, 0, 1), 1, pool);
        ctx.set_now(Instant::from_secs(10));
        ctx
    }

    /// A socket with a 20 ms minimum and smoothed RTT.
    fn sock() -> TcpSock {
        let mut tp = TcpSock::new(SockId(1), 65536, 65536, Box::new(Reno));
        tp.min_rtt_us = 20_000;
        tp.srtt_us = 20_000 << 3;
        tp
    }

    #[test]
    fn reo_wnd_is_zero_until_reordering_is_seen_then_a_quarter_min_rtt() {
        let ctx = ctx();
        let mut tp = sock();
        // Open, nothing SACKed: min_rtt/4.
        assert_eq!(tcp_rack_reo_wnd(&ctx, &tp), 5_000);
        // The duplicate-ACK threshold reached: no settling time.
        tp.sacked_out = 3;
        assert_eq!(tcp_rack_reo_wnd(&ctx, &tp), 0);
        // Unless tcp_recovery has TCP_RACK_NO_DUPTHRESH.
        ctx.sysctl().set("net.ipv4.tcp_recovery", "5").unwrap();
        assert_eq!(tcp_rack_reo_wnd(&ctx, &tp), 5_000);
        ctx.sysctl().set("net.ipv4.tcp_recovery", "1").unwrap();
        // In Recovery without reordering seen: none either.
        tp.sacked_out = 0;
        tp.ca_state = TcpCaState::Recovery;
        assert_eq!(tcp_rack_reo_wnd(&ctx, &tp), 0);
        // Once reordering was seen: steps of min_rtt/4, at most SRTT.
        tp.recovery.reord_seen = 1;
        assert_eq!(tcp_rack_reo_wnd(&ctx, &tp), 5_000);
        tp.rack.reo_wnd_steps = 3;
        assert_eq!(tcp_rack_reo_wnd(&ctx, &tp), 15_000);
        tp.rack.reo_wnd_steps = 10;
        assert_eq!(tcp_rack_reo_wnd(&ctx, &tp), 20_000);
    }

    #[test]
    fn dsack_widens_the_window_once_per_round_trip_and_it_decays() {
        let ctx = ctx();
        let mut tp = sock();
        // The ACK's rate sample: the newest segment it delivered was sent
        // when `delivered` was `prior`.
        let rs = |prior: u32| crate::tcp_rate::RateSample {
            prior_delivered: prior,
            ..crate::tcp_rate::RateSample::default()
        };
        tp.delivered = 100;
        // A D-SACK: one more step, kept for 16 recoveries.
        tp.rack.dsack_seen = true;
        tcp_rack_update_reo_wnd(&ctx, &mut tp, &rs(90));
        assert_eq!(tp.rack.reo_wnd_steps, 2);
        assert_eq!(tp.rack.reo_wnd_persist, TCP_RACK_RECOVERY_THRESH);
        assert_eq!(tp.rack.last_delivered, 100);
        assert!(!tp.rack.dsack_seen);
        // Another D-SACK for data sent before that change: ignored.
        tp.delivered = 110;
        tp.rack.dsack_seen = true;
        tcp_rack_update_reo_wnd(&ctx, &mut tp, &rs(99));
        assert_eq!(tp.rack.reo_wnd_steps, 2);
        assert!(!tp.rack.dsack_seen);
        // One for data sent after it: a third step.
        tp.delivered = 140;
        tp.rack.dsack_seen = true;
        tcp_rack_update_reo_wnd(&ctx, &mut tp, &rs(120));
        assert_eq!(tp.rack.reo_wnd_steps, 3);
        // No sample (nothing delivered): nothing changes.
        tp.rack.reo_wnd_persist = 0;
        tcp_rack_update_reo_wnd(&ctx, &mut tp, &rs(0));
        assert_eq!(tp.rack.reo_wnd_steps, 3);
        // Without D-SACKs the steps stay while persist lasts, then reset.
        tp.rack.reo_wnd_persist = 1;
        tcp_rack_update_reo_wnd(&ctx, &mut tp, &rs(130));
        assert_eq!(tp.rack.reo_wnd_steps, 3);
        tp.rack.reo_wnd_persist = 0;
        tcp_rack_update_reo_wnd(&ctx, &mut tp, &rs(130));
        assert_eq!(tp.rack.reo_wnd_steps, 1);
        // TCP_RACK_STATIC_REO_WND: never widened.
        ctx.sysctl().set("net.ipv4.tcp_recovery", "3").unwrap();
        tp.rack.dsack_seen = true;
        tcp_rack_update_reo_wnd(&ctx, &mut tp, &rs(135));
        assert_eq!(tp.rack.reo_wnd_steps, 1);
    }

    #[test]
    fn rack_advance_keeps_the_latest_sent_and_skips_ambiguous_retransmissions() {
        let ctx = ctx();
        let mut tp = sock();
        let now = ctx.now();
        let us = now.as_micros();
        tcp_rack_advance(&mut tp, now, false, 3000, us - 30_000);
        assert_eq!(
            (tp.rack.mstamp, tp.rack.rtt_us, tp.rack.end_seq),
            (us - 30_000, 30_000, 3000)
        );
        assert!(tp.rack.advanced);
        // An older segment: its RTT is taken, the newest send time stays.
        tcp_rack_advance(&mut tp, now, false, 1000, us - 40_000);
        assert_eq!(
            (tp.rack.mstamp, tp.rack.rtt_us, tp.rack.end_seq),
            (us - 30_000, 40_000, 3000)
        );
        // Same send time, higher sequence: it is the later one.
        tcp_rack_advance(&mut tp, now, false, 4000, us - 30_000);
        assert_eq!(tp.rack.end_seq, 4000);
        // A retransmission acked within min_rtt may be the original's ACK.
        tcp_rack_advance(&mut tp, now, true, 2000, us - 5_000);
        assert_eq!((tp.rack.mstamp, tp.rack.rtt_us), (us - 30_000, 30_000));
        // Acked after min_rtt: it counts.
        tcp_rack_advance(&mut tp, now, true, 2000, us - 25_000);
        assert_eq!(
            (tp.rack.mstamp, tp.rack.rtt_us, tp.rack.end_seq),
            (us - 25_000, 25_000, 2000)
        );
    }
}
