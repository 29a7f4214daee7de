//! TCP's timers: retransmission, zero-window probe, delayed ACK,
//! keepalive (and orphaned FIN-WAIT-2), TIME-WAIT and SYN-ACK.
//!
//! Mirrors `net/ipv4/tcp_timer.c` (`tcp_retransmit_timer()`,
//! `tcp_write_timeout()`, `retransmits_timed_out()`, `tcp_probe_timer()`,
//! `tcp_delack_timer_handler()`, `tcp_keepalive_timer()`), the
//! `inet_csk_reset_xmit_timer()` family of `include/net/inet_connection_sock.h`,
//! `tw_timer_handler()` (`inet_timewait_sock.c`) and `reqsk_timer_handler()`
//! (`inet_connection_sock.c`).
//!
//! Timers are typed ids ([`TcpTimer`]) armed through the context; the host
//! fires them back through [`tcp_handle_timer`](crate::tcp_handle_timer).
//! As with `icsk_pending`, the retransmission and probe timers exclude each
//! other: arming one clears the other. Clearing is Linux's lazy one
//! ([`TcpContext::disarm_timer`](crate::TcpContext::disarm_timer)): the
//! host may leave the entry queued, and a handler that finds its
//! `icsk_pending` or `icsk_ack.pending` bit clear does nothing.

use netcore::{Duration, Errno, LinuxMib, Sysctl};

use crate::context::TcpContext;
use crate::tcp::{TcpStack, tcp_done, tcp_write_err};
use crate::tcp_cong::TcpCaState;
use crate::tcp_input::tcp_enter_loss;
use crate::tcp_output::{
    tcp_probe0_base, tcp_retransmit_skb, tcp_send_ack, tcp_send_active_reset, tcp_write_wakeup,
};
use crate::tcp_sock::{
    ICSK_ACK_SCHED, ICSK_ACK_TIMER, SockId, TCP_ATO_MIN, TCP_RTO_MIN, TCP_TIMEOUT_INIT,
    TCP_TIMEWAIT_LEN, TcpSock, TcpState,
};

/// A TCP timer of one socket.
///
/// Mirrors the timers of `struct inet_connection_sock` and friends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpTimer {
    /// Retransmission timeout. Mirrors `icsk_retransmit_timer` with
    /// `ICSK_TIME_RETRANS` (`tcp_retransmit_timer()`).
    Retransmit(SockId),
    /// Zero-window probe. Mirrors `icsk_retransmit_timer` with
    /// `ICSK_TIME_PROBE0` (`tcp_probe_timer()`).
    Probe0(SockId),
    /// Tail loss probe (RFC 8985 §7). Mirrors `icsk_retransmit_timer` with
    /// `ICSK_TIME_LOSS_PROBE` (`tcp_send_loss_probe()`).
    LossProbe(SockId),
    /// RACK's reordering timer (RFC 8985 §6.2). Mirrors
    /// `icsk_retransmit_timer` with `ICSK_TIME_REO_TIMEOUT`
    /// (`tcp_rack_reo_timeout()`).
    ReoTimeout(SockId),
    /// Delayed ACK. Mirrors `icsk_delack_timer` (`tcp_delack_timer()`).
    DelAck(SockId),
    /// Keepalive, and the orphaned FIN-WAIT-2 timeout. Mirrors `sk_timer`
    /// (`tcp_keepalive_timer()`).
    Keepalive(SockId),
    /// End of TIME-WAIT (or of a FIN-WAIT-2 mini socket). Mirrors
    /// `tw_timer` (`tw_timer_handler()`).
    TimeWait(SockId),
    /// The next departure time of an internally paced socket. Mirrors
    /// `tp->pacing_timer` (an hrtimer, `tcp_pace_kick()`).
    Pacing(SockId),
    /// The end of a SACK-compression delay. Mirrors
    /// `tp->compressed_ack_timer` (an hrtimer, `tcp_compressed_ack_kick()`;
    /// its 100 µs slack is not modelled).
    CompressedAck(SockId),
    /// SYN-ACK retransmission of one request socket of a listener.
    /// Mirrors `rsk_timer` (`reqsk_timer_handler()`).
    SynAck {
        /// The listener.
        listener: SockId,
        /// The request socket's number within the listener.
        req: u32,
    },
}

/// `icsk_pending`: the retransmission timer is armed (`ICSK_TIME_RETRANS`).
const ICSK_TIME_RETRANS: u8 = 1;
/// `icsk_pending`: the zero-window probe timer (`ICSK_TIME_PROBE0`).
const ICSK_TIME_PROBE0: u8 = 3;
/// `icsk_pending`: the tail loss probe timer (`ICSK_TIME_LOSS_PROBE`).
const ICSK_TIME_LOSS_PROBE: u8 = 5;
/// `icsk_pending`: RACK's reordering timer (`ICSK_TIME_REO_TIMEOUT`).
const ICSK_TIME_REO_TIMEOUT: u8 = 6;
/// `ICSK_TIME_DACK`: the delayed-ACK timer, as a bit of `icsk_lazy`.
const ICSK_TIME_DACK: u8 = 2;

/// `icsk_lazy` bit (one the `ICSK_TIME_*` bits leave free): the
/// delayed-ACK timer was armed at some time.
///
/// The three `TIMER_USED_*` bits tell [`inet_csk_clear_xmit_timers`] which
/// of the delayed-ACK, keepalive and pacing timers may be on the host's
/// wheel: a timer never armed is not, and cancelling it would be a lookup
/// for nothing. (Linux's `sk_stop_timer()` of an idle `timer_list` is a
/// flag test; this keeps the teardown as cheap.)
const TIMER_USED_DELACK: u8 = 1 << 0;
/// `icsk_lazy` bit: the keepalive timer was armed at some time.
const TIMER_USED_KEEPALIVE: u8 = 1 << 4;
/// `icsk_lazy` bit: the pacing timer was armed at some time.
pub(crate) const TIMER_USED_PACING: u8 = 1 << 7;

impl TcpTimer {
    /// The bit of `TcpSock::icsk_lazy` for this timer (0 for the timers
    /// never cleared lazily).
    fn lazy_bit(self) -> u8 {
        match self {
            TcpTimer::DelAck(_) => 1 << ICSK_TIME_DACK,
            _ => match self.icsk_time() {
                0 => 0,
                t => 1 << t,
            },
        }
    }

    /// The `ICSK_TIME_*` value of a timer of `icsk_retransmit_timer`, 0 for
    /// the others.
    fn icsk_time(self) -> u8 {
        match self {
            TcpTimer::Retransmit(_) => ICSK_TIME_RETRANS,
            TcpTimer::Probe0(_) => ICSK_TIME_PROBE0,
            TcpTimer::LossProbe(_) => ICSK_TIME_LOSS_PROBE,
            TcpTimer::ReoTimeout(_) => ICSK_TIME_REO_TIMEOUT,
            _ => 0,
        }
    }
}

/// The timer `tp.icsk_pending` names, if any.
pub(crate) fn icsk_pending_timer(tp: &TcpSock) -> Option<TcpTimer> {
    let id = tp.id;
    match tp.icsk_pending {
        ICSK_TIME_RETRANS => Some(TcpTimer::Retransmit(id)),
        ICSK_TIME_PROBE0 => Some(TcpTimer::Probe0(id)),
        ICSK_TIME_LOSS_PROBE => Some(TcpTimer::LossProbe(id)),
        ICSK_TIME_REO_TIMEOUT => Some(TcpTimer::ReoTimeout(id)),
        _ => None,
    }
}

/// Arms the retransmit or probe timer `what` for `when` (capped at
/// `max_when`), cancelling the other one. Mirrors
/// `inet_csk_reset_xmit_timer()`.
///
/// The four timers of `icsk_retransmit_timer` are four ids on the host's
/// wheel; `tp.icsk_pending` names the one armed, so only that one is
/// cleared (lazily, [`inet_csk_disarm_timer`]), and re-arming the one
/// armed is a single `mod_timer()`.
pub(crate) fn inet_csk_reset_xmit_timer<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    what: TcpTimer,
    when: Duration,
    max_when: Duration,
) {
    let at = ctx.now() + when.min(max_when);
    let kind = what.icsk_time();
    if tp.icsk_pending != kind
        && let Some(other) = icsk_pending_timer(tp)
    {
        // The four share icsk_retransmit_timer: arming one replaces the others.
        inet_csk_disarm_timer(ctx, tp, other);
    }
    tp.icsk_pending = kind;
    sk_reset_timer(ctx, tp, what, at);
}

/// Arms `what` for `at` (moving it if the host still holds it). Mirrors
/// `sk_reset_timer()` (`mod_timer()`).
pub(crate) fn sk_reset_timer<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    what: TcpTimer,
    at: netcore::Instant,
) {
    tp.icsk_lazy &= !what.lazy_bit();
    if let TcpTimer::DelAck(_) = what {
        tp.icsk_lazy |= TIMER_USED_DELACK;
    }
    ctx.arm_timer(what, at);
}

/// Clears `what` without stopping it: the host may keep the entry, which
/// does nothing if it fires (its `icsk_pending`/`icsk_ack.pending` bit is
/// clear). Mirrors the `#ifdef INET_CSK_CLEAR_TIMERS` that
/// `inet_csk_clear_xmit_timer()` leaves out of Linux's build
/// ([`TcpContext::disarm_timer`]); `icsk_lazy` remembers it for
/// [`inet_csk_clear_xmit_timers`].
pub(crate) fn inet_csk_disarm_timer<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, what: TcpTimer) {
    tp.icsk_lazy |= what.lazy_bit();
    ctx.disarm_timer(what);
}

/// Clears the retransmit/probe timer if `what` is the one armed. Mirrors
/// `inet_csk_clear_xmit_timer()` for `ICSK_TIME_RETRANS`,
/// `ICSK_TIME_PROBE0`, `ICSK_TIME_LOSS_PROBE` and `ICSK_TIME_REO_TIMEOUT`:
/// `icsk_pending` is cleared and the timer is left to the host
/// ([`inet_csk_disarm_timer`]), as Linux leaves the `timer_list` queued
/// (`INET_CSK_CLEAR_TIMERS` is not defined) for its handler to find
/// `icsk_pending` clear.
pub(crate) fn inet_csk_clear_xmit_timer<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    what: TcpTimer,
) {
    if tp.icsk_pending == what.icsk_time() {
        tp.icsk_pending = 0;
        inet_csk_disarm_timer(ctx, tp, what);
    }
}

/// Stops whichever retransmit/probe timer is armed, except the
/// zero-window probe. The `packets_out == 0` case of `tcp_rearm_rto()`.
pub(crate) fn inet_csk_clear_rto_timers<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if let Some(armed) = icsk_pending_timer(tp)
        && tp.icsk_pending != ICSK_TIME_PROBE0
    {
        inet_csk_clear_xmit_timer(ctx, tp, armed);
    }
}

/// Whether `what` is the retransmit/probe timer armed
/// (`icsk->icsk_pending == what`).
pub(crate) fn icsk_pending_is(tp: &TcpSock, what: TcpTimer) -> bool {
    tp.icsk_pending != 0 && tp.icsk_pending == what.icsk_time()
}

/// The retransmit/probe timer `timer` fired: whether it is the one armed
/// (`icsk_pending`), which is then no longer armed. Called by the timer
/// dispatch before the handler runs; a timer that is not the armed one
/// is ignored, as `tcp_write_timer_handler()` dispatches on
/// `icsk_pending` and returns when it is clear.
///
/// # Deviations from Linux
///
/// Linux has one `icsk_retransmit_timer` per socket; here each of the four
/// is an id on the wheel of the CPU that armed it, so a host with several
/// CPUs can be left with a stale id on another CPU's wheel after a
/// re-arm or cancel elsewhere: it is ignored when it fires.
pub(crate) fn icsk_timer_fired(tp: &mut TcpSock, timer: TcpTimer) -> bool {
    if icsk_pending_is(tp, timer) {
        tp.icsk_pending = 0;
        true
    } else {
        false
    }
}

/// Arms the retransmit/probe timer with the socket's `tcp_rto_max()` as
/// the cap. Mirrors `tcp_reset_xmit_timer()`.
pub(crate) fn tcp_reset_xmit_timer<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    what: TcpTimer,
    when: Duration,
) {
    let max = tp.rto_max();
    inet_csk_reset_xmit_timer(ctx, tp, what, when, max);
}

/// Stops every timer of a socket. Mirrors `inet_csk_clear_xmit_timers()` +
/// `sk_stop_timer(sk, &sk->sk_timer)`. The timers cleared lazily ([`inet_csk_disarm_timer`]) are stopped too.
pub(crate) fn inet_csk_clear_xmit_timers<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let id = tp.id;
    if let Some(armed) = icsk_pending_timer(tp) {
        tp.icsk_pending = 0;
        ctx.cancel_timer(armed);
    }
    let lazy = core::mem::take(&mut tp.icsk_lazy);
    for t in [
        TcpTimer::Retransmit(id),
        TcpTimer::Probe0(id),
        TcpTimer::LossProbe(id),
        TcpTimer::ReoTimeout(id),
    ] {
        if lazy & t.lazy_bit() != 0 {
            ctx.cancel_timer(t);
        }
    }
    // Only the timers ever armed can be on the wheel (`TIMER_USED_*`).
    let used = lazy;
    if used & TIMER_USED_DELACK != 0 {
        ctx.cancel_timer(TcpTimer::DelAck(id));
    }
    if used & TIMER_USED_KEEPALIVE != 0 {
        ctx.cancel_timer(TcpTimer::Keepalive(id));
    }
    if used & TIMER_USED_PACING != 0 {
        ctx.cancel_timer(TcpTimer::Pacing(id));
    }
    // tcp_clear_xmit_timers(): the SACK-compression timer is armed only
    // while ACKs are held back.
    if tp.rcv_rtt_est.compressed_ack > 0 {
        ctx.cancel_timer(TcpTimer::CompressedAck(id));
    }
}

/// Whether retransmissions started at `retrans_stamp` have gone on for
/// as long as `boundary` exponential backoffs from `rto_base` would take.
/// Mirrors `retransmits_timed_out()` with `tcp_model_timeout()`.
pub(crate) fn retransmits_timed_out(
    tp: &TcpSock,
    now: netcore::Instant,
    boundary: u32,
    user_timeout_ms: u32,
) -> bool {
    if tp.retransmits == 0 {
        return false;
    }
    let Some(start) = tp.retrans_stamp.get() else {
        return false;
    };
    let timeout_ms = if user_timeout_ms != 0 {
        u64::from(user_timeout_ms)
    } else {
        let rto_base = if matches!(tp.state, TcpState::SynSent | TcpState::SynRecv) {
            TCP_TIMEOUT_INIT
        } else {
            TCP_RTO_MIN
        }
        .as_millis() as u64;
        let rto_max = tp.rto_max().as_millis() as u64;
        let thresh = (rto_max / rto_base).ilog2();
        let boundary = u64::from(boundary);
        let thresh = u64::from(thresh);
        if boundary <= thresh {
            ((2u64 << boundary) - 1) * rto_base
        } else {
            ((2u64 << thresh) - 1) * rto_base + (boundary - thresh) * rto_max
        }
    };
    now.saturating_duration_since(start).as_millis() as u64 >= timeout_ms
}

/// Decides whether the connection has retransmitted for too long.
/// Mirrors `tcp_write_timeout()`: SYN-SENT gives up after `tcp_syn_retries`
/// plus `tcp_syn_linear_timeouts` retransmissions, SYN-RECV after
/// `tcp_syn_retries`, others after the time `tcp_retries2` backoffs take.
/// A connection that goes on gets a new flow hash (`sk_rethink_txhash()`,
/// `TCPTimeoutRehash`).
fn tcp_write_timeout<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) -> bool {
    let sysctl = ctx.sysctl();
    let now = ctx.now();
    let expired = if matches!(tp.state, TcpState::SynSent | TcpState::SynRecv) {
        let retry_until = u32::from(
            tp.opts_ext
                .syn_retries
                .unwrap_or(sysctl.get_int(Sysctl::TCP_SYN_RETRIES) as u8),
        );
        let mut max = retry_until;
        if tp.state == TcpState::SynSent {
            max += sysctl.get_int(Sysctl::TCP_SYN_LINEAR_TIMEOUTS) as u32;
        }
        u32::from(tp.retransmits) >= max
            || (tp.opts_ext.user_timeout != 0
                && retransmits_timed_out(tp, now, retry_until, tp.opts_ext.user_timeout))
    } else {
        let mut retry_until = sysctl.get_int(Sysctl::TCP_RETRIES2) as u32;
        if tp.dead {
            let alive = tp.rto() < tp.rto_max();
            let mut r = sysctl.get_int(Sysctl::TCP_ORPHAN_RETRIES) as u32;
            if r == 0 && alive {
                r = 8;
            }
            retry_until = r;
            let do_reset = alive || !retransmits_timed_out(tp, now, retry_until, 0);
            if crate::tcp_mem::tcp_out_of_resources(stack, ctx, tp, do_reset) {
                return true;
            }
        }
        retransmits_timed_out(tp, now, retry_until, tp.opts_ext.user_timeout)
    };
    if expired {
        tcp_write_err(stack, ctx, tp);
    } else if crate::inet_connection_sock::sk_rethink_txhash(ctx, tp) {
        // The path may be what failed: try another hash (ECMP, queue).
        ctx.mibs()
            .this_cpu(ctx.cpu())
            .inc(LinuxMib::TcpTimeoutRehash);
    }
    expired
}

/// The retransmission timer fired. Mirrors `tcp_retransmit_timer()`:
/// `TCPTimeouts`, the give-up check, `tcp_enter_loss()`, the head
/// retransmitted, then the RTO doubled (kept at its initial value for the
/// first `tcp_syn_linear_timeouts` SYN timeouts) and re-armed.
pub(crate) fn tcp_retransmit_timer<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    if tp.packets_out == 0 || matches!(tp.state, TcpState::Close | TcpState::Listen) {
        return;
    }
    let now = ctx.now();
    let cpu = ctx.cpu();
    tp.recovery.tlp_high_seq = None;
    if tp.snd_wnd == 0 && !tp.dead && !matches!(tp.state, TcpState::SynSent | TcpState::SynRecv) {
        // The receiver shrank its window: retransmissions act as probes
        // and never time the connection out while it answers.
        if now.saturating_duration_since(tp.rcv_tstamp) > tp.rto_max() {
            tcp_write_err(stack, ctx, tp);
            return;
        }
        tcp_enter_loss(ctx, tp);
        let _ = tcp_retransmit_skb(ctx, tp, 0);
    } else {
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpTimeouts);
        if tcp_write_timeout(stack, ctx, tp) {
            return;
        }
        if tp.retransmits == 0 {
            // The first timeout of an episode: which recovery failed.
            let sack = tp.rx_opt.sack_ok;
            let mib = match tp.ca_state {
                TcpCaState::Recovery if sack => Some(LinuxMib::TcpSackRecoveryFail),
                TcpCaState::Recovery => Some(LinuxMib::TcpRenoRecoveryFail),
                TcpCaState::Loss => Some(LinuxMib::TcpLossFailures),
                TcpCaState::Disorder if sack => Some(LinuxMib::TcpSackFailures),
                TcpCaState::Disorder => Some(LinuxMib::TcpRenoFailures),
                _ if tp.sacked_out > 0 && sack => Some(LinuxMib::TcpSackFailures),
                _ if tp.sacked_out > 0 => Some(LinuxMib::TcpRenoFailures),
                _ => None,
            };
            if let Some(mib) = mib {
                ctx.mibs().this_cpu(cpu).inc(mib);
            }
        }
        tcp_enter_loss(ctx, tp);
        tp.retransmits = tp.retransmits.saturating_add(1);
        tp.syn_retries_done = tp.syn_retries_done.saturating_add(1);
        if tcp_retransmit_skb(ctx, tp, 0).is_err() {
            let id = tp.id;
            tcp_reset_xmit_timer(
                ctx,
                tp,
                TcpTimer::Retransmit(id),
                Duration::from_millis(500),
            );
            return;
        }
    }
    let sysctl = ctx.sysctl();
    let linear = sysctl.get_int(Sysctl::TCP_SYN_LINEAR_TIMEOUTS) as u32;
    let thin_lto = tp.opts_ext.thin_lto || sysctl.get_int(Sysctl::TCP_THIN_LINEAR_TIMEOUTS) != 0;
    if tp.state == TcpState::Established
        && thin_lto
        && tcp_stream_is_thin(tp)
        && tp.retransmits <= TCP_THIN_LINEAR_RETRIES
    {
        // A thin stream (few packets in flight, so too few dup ACKs for a
        // fast retransmit) keeps retrying at the un-backed-off RTO.
        tp.backoff = 0;
        let rto_min = Duration::from_micros(sysctl.get_int(Sysctl::TCP_RTO_MIN_US).max(1) as u64);
        let rto = Duration::from_micros(u64::from((tp.srtt_us >> 3) + tp.rttvar_us));
        tp.set_rto(rto.clamp(rto_min, tp.rto_max().max(rto_min)));
    } else if tp.state != TcpState::SynSent || u32::from(tp.syn_retries_done) > linear {
        tp.backoff = tp.backoff.saturating_add(1);
        tp.set_rto((tp.rto() * 2).min(tp.rto_max()));
    }
    let mut when = tp.rto();
    if tp.opts_ext.user_timeout != 0
        && let Some(start) = tp.retrans_stamp.get()
    {
        let elapsed = now.saturating_duration_since(start);
        let remaining =
            Duration::from_millis(u64::from(tp.opts_ext.user_timeout)).saturating_sub(elapsed);
        when = when.min(remaining.max(Duration::from_millis(1)));
    }
    let id = tp.id;
    tcp_reset_xmit_timer(ctx, tp, TcpTimer::Retransmit(id), when);
}

/// Retransmissions of a thin stream that keep the RTO linear
/// (`TCP_THIN_LINEAR_RETRIES`).
const TCP_THIN_LINEAR_RETRIES: u8 = 6;

/// Whether the stream is thin: fewer than four packets in flight, out of
/// the initial slow start. Mirrors `tcp_stream_is_thin()`.
fn tcp_stream_is_thin(tp: &TcpSock) -> bool {
    tp.packets_out < 4 && tp.cwnd.snd_ssthresh < crate::TCP_INFINITE_SSTHRESH
}

/// The zero-window probe timer fired. Mirrors `tcp_probe_timer()` and
/// `tcp_send_probe0()`: a probe (`TCPWinProbe`), `probes_out` counted, the
/// interval doubled from the RTO up to 120 s; the connection dies after
/// `tcp_retries2` unanswered probes.
pub(crate) fn tcp_probe_timer<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    let unsent = tp.write_queue.len() > tp.packets_out as usize;
    if tp.packets_out > 0 || !unsent {
        tp.probes_out = 0;
        return;
    }
    let sysctl = ctx.sysctl();
    let mut max_probes = sysctl.get_int(Sysctl::TCP_RETRIES2) as u32;
    if tp.dead {
        let alive = tcp_probe0_base(tp) * (1u32 << tp.backoff.min(16)) < tp.rto_max();
        let mut r = sysctl.get_int(Sysctl::TCP_ORPHAN_RETRIES) as u32;
        if r == 0 && alive {
            r = 8;
        }
        max_probes = r;
        if !alive && u32::from(tp.backoff) >= max_probes {
            tcp_write_err(stack, ctx, tp);
            return;
        }
        if crate::tcp_mem::tcp_out_of_resources(stack, ctx, tp, true) {
            return;
        }
    }
    if u32::from(tp.probes_out) >= max_probes {
        tcp_write_err(stack, ctx, tp);
        return;
    }
    tcp_send_probe0(ctx, tp);
}

/// Sends one zero-window probe and re-arms the probe timer. Mirrors
/// `tcp_send_probe0()`.
pub(crate) fn tcp_send_probe0<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let sent_data = tcp_write_wakeup(ctx, tp);
    if !sent_data {
        ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpWinProbe);
    }
    let unsent = tp.write_queue.len() > tp.packets_out as usize;
    if tp.packets_out > 0 || !unsent {
        tp.probes_out = 0;
        tp.backoff = 0;
        return;
    }
    tp.probes_out = tp.probes_out.saturating_add(1);
    let retries2 = ctx.sysctl().get_int(Sysctl::TCP_RETRIES2) as u8;
    if tp.backoff < retries2 {
        tp.backoff += 1;
    }
    let when = (tcp_probe0_base(tp) * (1u32 << tp.backoff.min(20))).min(tp.rto_max());
    let id = tp.id;
    tcp_reset_xmit_timer(ctx, tp, TcpTimer::Probe0(id), when);
}

/// The delayed-ACK timer fired. Mirrors `tcp_delack_timer_handler()`: the
/// ACK goes out; outside ping-pong mode the ATO doubles (up to the RTO), in
/// ping-pong mode it leaves ping-pong and resets the ATO. `DelayedACKs`.
pub(crate) fn tcp_delack_timer<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if matches!(tp.state, TcpState::Close | TcpState::Listen)
        || tp.ack.pending & ICSK_ACK_TIMER == 0
    {
        return;
    }
    tp.ack.pending &= !ICSK_ACK_TIMER;
    if tp.ack.pending & ICSK_ACK_SCHED != 0 {
        if tp.ack.in_pingpong_mode(ctx.sysctl()) {
            tp.ack.pingpong = 0;
            tp.ack.set_ato(TCP_ATO_MIN);
        } else {
            tp.ack.set_ato((tp.ack.ato() * 2).min(tp.rto()));
        }
        tcp_send_ack(ctx, tp);
        ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::DelayedAcks);
    }
}

/// `keepalive_time_when()`: `TCP_KEEPIDLE` or `tcp_keepalive_time`.
pub(crate) fn keepalive_time_when<C: TcpContext>(ctx: &C, tp: &TcpSock) -> Duration {
    Duration::from_secs(u64::from(
        tp.opts_ext
            .keepidle
            .unwrap_or(ctx.sysctl().get_int(Sysctl::TCP_KEEPALIVE_TIME) as u32),
    ))
}

fn keepalive_intvl_when<C: TcpContext>(ctx: &C, tp: &TcpSock) -> Duration {
    Duration::from_secs(u64::from(
        tp.opts_ext
            .keepintvl
            .unwrap_or(ctx.sysctl().get_int(Sysctl::TCP_KEEPALIVE_INTVL) as u32),
    ))
}

fn keepalive_probes<C: TcpContext>(ctx: &C, tp: &TcpSock) -> u8 {
    tp.opts_ext
        .keepcnt
        .unwrap_or(ctx.sysctl().get_int(Sysctl::TCP_KEEPALIVE_PROBES) as u8)
}

/// Arms the keepalive timer `after` from now. Mirrors
/// `inet_csk_reset_keepalive_timer()`.
pub(crate) fn inet_csk_reset_keepalive_timer<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    after: Duration,
) {
    let at = ctx.now() + after;
    tp.icsk_lazy |= TIMER_USED_KEEPALIVE;
    ctx.arm_timer(TcpTimer::Keepalive(tp.id), at);
}

/// The keepalive timer fired. Mirrors `tcp_keepalive_timer()`: an orphaned
/// FIN-WAIT-2 socket is reset and closed; otherwise, once the connection has
/// been idle for `TCP_KEEPIDLE`, a probe (`snd_una - 1`, `TCPKeepAlive`) goes
/// out every `TCP_KEEPINTVL` and after `TCP_KEEPCNT` unanswered probes the
/// connection is reset with `ETIMEDOUT`.
pub(crate) fn tcp_keepalive_timer<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    let now = ctx.now();
    if tp.state == TcpState::Listen {
        return;
    }
    if tp.state == TcpState::FinWait2 && tp.dead {
        let fin = crate::tcp::tcp_fin_time(ctx, tp);
        if fin > TCP_TIMEWAIT_LEN {
            crate::tcp_minisocks::tcp_time_wait(
                stack,
                ctx,
                tp,
                TcpState::FinWait2,
                fin.saturating_sub(TCP_TIMEWAIT_LEN),
            );
            return;
        }
        tcp_send_active_reset(ctx, tp);
        tcp_done(stack, ctx, tp);
        return;
    }
    if !tp.opts.keepalive || matches!(tp.state, TcpState::Close | TcpState::SynSent) {
        return;
    }
    let when = keepalive_time_when(ctx, tp);
    let unsent = tp.write_queue.len() > tp.packets_out as usize;
    let next = if tp.packets_out > 0 || unsent {
        when
    } else {
        let last = tp.rcv_tstamp.max(tp.ack.lrcvtime);
        let elapsed = now.saturating_duration_since(last);
        if elapsed >= when {
            let user_timeout = tp.opts_ext.user_timeout;
            if (user_timeout != 0
                && elapsed >= Duration::from_millis(u64::from(user_timeout))
                && tp.probes_out > 0)
                || (user_timeout == 0 && tp.probes_out >= keepalive_probes(ctx, tp))
            {
                tcp_send_active_reset(ctx, tp);
                tcp_write_err(stack, ctx, tp);
                return;
            }
            tcp_write_wakeup(ctx, tp);
            ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpKeepAlive);
            tp.probes_out = tp.probes_out.saturating_add(1);
            keepalive_intvl_when(ctx, tp)
        } else {
            when.saturating_sub(elapsed)
        }
    };
    inet_csk_reset_keepalive_timer(ctx, tp, next);
}

/// Forgets the RTT-based state after the write error path. (Helper for
/// `tcp_write_err()` callers that need an errno.)
pub(crate) fn timeout_errno(tp: &TcpSock) -> Errno {
    tp.sk_err_soft.unwrap_or(Errno::TimedOut)
}
