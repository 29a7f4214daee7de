//! Tail loss probes (RFC 8985 §7).
//!
//! Mirrors the TLP part of `net/ipv4/tcp_output.c` and `tcp_input.c`:
//! `tcp_schedule_loss_probe()` arms a probe two smoothed RTTs after the
//! last transmission while the connection is in Open or CWR with SACK;
//! when it fires, `tcp_send_loss_probe()` sends one new segment if the
//! window allows, else retransmits the last one, so a loss at the tail of
//! a flight is detected by ACKs rather than by the RTO;
//! `tcp_process_tlp_ack()` ends the episode and reduces cwnd (CWR) when
//! the probe repaired a real loss (`TCPLossProbes`,
//! `TCPLossProbeRecovery`).
//!
//! # Deviations from Linux
//!
//! - When cwnd allows no new segment, Linux's `tcp_write_xmit(push_one =
//!   2)` forces one out anyway; here cwnd is raised by one for that call.
//! - The loss probe, the reordering timer and the RTO are separate
//!   [`TcpTimer`] ids that exclude each other, instead of one timer with
//!   `icsk_pending` saying which it is.

use core::num::NonZeroU32;

use netcore::{Duration, LinuxMib, Sysctl};

use crate::context::TcpContext;
use crate::tcp_cong::TcpCaState;
use crate::tcp_output::{TCP_NAGLE_OFF, tcp_retransmit_skb_core, tcp_write_xmit};
use crate::tcp_sock::{TCP_RTO_MIN, TCP_TIMEOUT_INIT, TcpSock, after, before};
use crate::tcp_timer::{
    TcpTimer, icsk_pending_is, inet_csk_clear_rto_timers, inet_csk_clear_xmit_timer,
};

/// `TCP_TIMEOUT_MIN`: 2 jiffies, the slack added to the probe timeout
/// when more than one segment is in flight.
const TCP_TIMEOUT_MIN: Duration = Duration::from_millis(2);

/// `FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DATA_SACKED` of
/// `tcp_input.c`, as the caller passes them.
pub(crate) struct TlpAckFlags {
    /// The ACK moved `snd_una` (`FLAG_SND_UNA_ADVANCED`).
    pub snd_una_advanced: bool,
    /// The ACK carried data, a window update or acked something
    /// (`FLAG_NOT_DUP`).
    pub not_dup: bool,
    /// The ACK SACKed new data (`FLAG_DATA_SACKED`).
    pub data_sacked: bool,
    /// The ACK's D-SACK covers the probe (`FLAG_DSACK_TLP`).
    pub dsack_tlp: bool,
}

/// Restarts the RTO: a full RTO from now, or, while the loss probe or the
/// reordering timer holds the slot, from the head's send time. Mirrors
/// `tcp_rearm_rto()`.
pub(crate) fn tcp_rearm_rto<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let offset = icsk_pending_is(tp, TcpTimer::LossProbe(tp.id))
        || icsk_pending_is(tp, TcpTimer::ReoTimeout(tp.id));
    tcp_rearm_rto_from(ctx, tp, offset);
}

/// [`tcp_rearm_rto`] with the choice made by the caller: `from_head` when
/// the timer that fired was the loss probe or the reordering timer
/// (`icsk_pending` still names it in Linux).
pub(crate) fn tcp_rearm_rto_from<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, from_head: bool) {
    if tp.packets_out == 0 {
        inet_csk_clear_rto_timers(ctx, tp);
        return;
    }
    let mut rto = tp.rto();
    if from_head && let Some(delta) = tcp_rto_delta(ctx, tp) {
        // The head was sent a while ago: the RTO is due from then.
        rto = delta.max(Duration::from_micros(1));
    }
    let id = tp.id;
    crate::tcp_timer::tcp_reset_xmit_timer(ctx, tp, TcpTimer::Retransmit(id), rto);
}

/// How far in the future the RTO of the head is. Mirrors
/// `tcp_rto_delta_us()`.
fn tcp_rto_delta<C: TcpContext>(ctx: &C, tp: &TcpSock) -> Option<Duration> {
    let sent = tp.write_queue.front()?.sent_at?;
    let due = sent + tp.rto();
    Some(due.saturating_duration_since(ctx.now()))
}

/// Arms the tail loss probe instead of the RTO when allowed. Mirrors
/// `tcp_schedule_loss_probe()`: `tcp_early_retrans` 3 or 4, SACK, data in
/// flight, CA state Open or CWR; the probe timeout is 2·SRTT plus
/// `TCP_RTO_MIN` for a single segment in flight (the peer may delay its
/// ACK) or `TCP_TIMEOUT_MIN` otherwise, `TCP_TIMEOUT_INIT` without an RTT
/// sample, and never later than the RTO.
pub(crate) fn tcp_schedule_loss_probe<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    advancing_rto: bool,
) -> bool {
    let early_retrans = ctx.sysctl().get_int(Sysctl::TCP_EARLY_RETRANS);
    if !(early_retrans == 3 || early_retrans == 4)
        || tp.packets_out == 0
        || !tp.rx_opt.sack_ok
        || !matches!(tp.ca_state, TcpCaState::Open | TcpCaState::Cwr)
    {
        return false;
    }
    let mut timeout = if tp.srtt_us != 0 {
        // srtt_us is scaled by 8: >> 2 is two RTTs.
        let two_srtt = Duration::from_micros(u64::from(tp.srtt_us >> 2));
        if tp.packets_out == 1 {
            two_srtt + TCP_RTO_MIN
        } else {
            two_srtt + TCP_TIMEOUT_MIN
        }
    } else {
        TCP_TIMEOUT_INIT
    };
    let rto_delta = if advancing_rto {
        Some(tp.rto())
    } else {
        tcp_rto_delta(ctx, tp)
    };
    if let Some(d) = rto_delta
        && !d.is_zero()
    {
        timeout = timeout.min(d);
    }
    let id = tp.id;
    crate::tcp_timer::tcp_reset_xmit_timer(ctx, tp, TcpTimer::LossProbe(id), timeout);
    true
}

/// The loss probe timer fired. Mirrors `tcp_send_loss_probe()`: one probe
/// per episode (`tlp_high_seq`); a new segment if one may go, else the
/// last segment again (not counted in `retrans_out`); `TCPLossProbes`;
/// then a full RTO from now after a probe, or the RTO of the head when
/// none could go.
pub(crate) fn tcp_send_loss_probe<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if tp.packets_out == 0 {
        return;
    }
    let mut sent = false;
    if tp.recovery.tlp_high_seq.is_none() {
        tp.recovery.tlp_retrans = false;
        let pcount = tp.packets_out;
        // tcp_snd_wnd_test() on the first unsent segment.
        let mss = u32::from(crate::tcp_output::tcp_current_mss(tp));
        let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
        let unsent = tp
            .write_queue
            .get(tp.packets_out as usize)
            .is_some_and(|s| !after(s.seq.wrapping_add(s.len().min(mss)), wnd_end));
        if unsent {
            // push_one = 2: one segment even when cwnd is used up.
            tp.cwnd.snd_cwnd += 1;
            tcp_write_xmit(ctx, tp, TCP_NAGLE_OFF, true);
            tp.cwnd.snd_cwnd -= 1;
            sent = tp.packets_out > pcount;
        }
        if !sent && !unsent {
            let last = tp.packets_out as usize - 1;
            if tcp_retransmit_skb_core(ctx, tp, last).is_ok() {
                tp.recovery.tlp_retrans = true;
                sent = true;
            }
        }
        if sent {
            // Record snd_nxt for loss detection.
            tp.recovery.tlp_high_seq = NonZeroU32::new(tp.snd_nxt);
            ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpLossProbes);
        }
    }
    let id = tp.id;
    inet_csk_clear_xmit_timer(ctx, tp, TcpTimer::LossProbe(id));
    tcp_rearm_rto_from(ctx, tp, !sent);
}

/// An ACK arrived during a probe episode. Mirrors `tcp_process_tlp_ack()`:
/// a probe of new data, a D-SACK of the probe, or a pure duplicate ACK
/// means nothing was lost; an ACK beyond `tlp_high_seq` after a
/// retransmitted probe means the probe repaired a loss, so cwnd is reduced
/// once (CWR entered and left at once, `TCPLossProbeRecovery`).
pub(crate) fn tcp_process_tlp_ack<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    ack: u32,
    flags: &TlpAckFlags,
) {
    let Some(high) = tp.recovery.tlp_high_seq.map(NonZeroU32::get) else {
        return;
    };
    if before(ack, high) {
        return;
    }
    if !tp.recovery.tlp_retrans || flags.dsack_tlp {
        tp.recovery.tlp_high_seq = None;
    } else if after(ack, high) {
        // The probe repaired a loss: reduce cwnd once through CWR.
        crate::tcp_input::tcp_init_cwnd_reduction(tp);
        crate::tcp_input::tcp_set_ca_state(tp, TcpCaState::Cwr);
        crate::tcp_input::tcp_end_cwnd_reduction(tp);
        crate::tcp_input::tcp_try_keep_open(tp);
        ctx.mibs()
            .this_cpu(ctx.cpu())
            .inc(LinuxMib::TcpLossProbeRecovery);
    } else if !(flags.snd_una_advanced || flags.not_dup || flags.data_sacked) {
        // A pure duplicate: the original and the probe both arrived.
        tp.recovery.tlp_high_seq = None;
    }
}
