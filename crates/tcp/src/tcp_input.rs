//! Receiving: the state machine of a full socket, ACK processing, SACK,
//! loss recovery, RTT, the receive and out-of-order queues, and when to ACK.
//!
//! Mirrors `net/ipv4/tcp_input.c`: the header-prediction fast path of
//! `tcp_rcv_established()` (`pred_flags`, `tcp_fast_path_check()`),
//! `tcp_rcv_state_process()`,
//! `tcp_rcv_synsent_state_process()`, `tcp_validate_incoming()` (PAWS,
//! `tcp_sequence()`, RFC 5961 RST/SYN checks, `tcp_send_challenge_ack()`),
//! `tcp_ack()` with `tcp_ack_update_window()`, `tcp_sacktag_write_queue()`,
//! `tcp_clean_rtx_queue()`, `tcp_ack_update_rtt()`/`tcp_rtt_estimator()`,
//! `tcp_fastretrans_alert()` (NewReno/SACK recovery with PRR's
//! `tcp_cwnd_reduction()`), `tcp_enter_loss()`, `tcp_data_queue()`,
//! `tcp_data_queue_ofo()`, `tcp_ofo_queue()`, `tcp_fin()`,
//! `tcp_event_data_recv()`, `__tcp_ack_snd_check()`; receive memory:
//! `tcp_measure_rcv_mss()`, `tcp_grow_window()`, `tcp_try_coalesce()`,
//! `tcp_try_rmem_schedule()` with `tcp_prune_queue()`, `tcp_collapse()`
//! and `tcp_prune_ofo_queue()`, `tcp_init_buffer_space()` and DRS
//! (`tcp_rcv_space_adjust()`).
//!
//! # Deviations from Linux
//!
//! - A GRO packet reaches TCP as it left GRO, its payload in fragments,
//!   and is queued that way, in order or out of order (no copy until
//!   `recvmsg()`); what is already held is cut off its front where it
//!   lies (`pskb_pull()`), where Linux keeps the overlap and an offset.
//!   `tcp_try_coalesce()` only copies a linear skb into the tail skb's
//!   spare room (no fragment stealing) and `tcp_collapse()` copies into
//!   small pool buffers (2 KiB, not a page).
//! - Receive memory is charged to `tcp_mem` (`tcp_mem.rs`) by the queue
//!   functions here, but freed memory returns to it when `tcp_v4_rcv()`,
//!   `recvmsg()` or close reclaim it, not at each free (see `tcp_mem.rs`).
//!
//! ```text
//!  segment -> tcp_validate_incoming -> tcp_ack -> tcp_data_queue -> rcv queue
//!                 | PAWS, seq, RST, SYN    | clean rtx queue   | ofo queue
//!                 v challenge ACK          v recovery / cwnd   v ACK now / delayed
//! ```

use core::net::Ipv4Addr;
use core::num::NonZeroU32;

use netcore::{DropReason, Duration, Instant, LinuxMib, SkBuff, Sysctl, TcpMib, kfree_skb_reason};
use wire::{TcpFlags, TcpOptions, TcpSackBlock};

use crate::context::{SkEvent, TcpContext};
use crate::tcp::{TcpStack, tcp_done, tcp_set_state};
use crate::tcp_cong::{CaEvent, TcpCaState};
use crate::tcp_mem::{
    sk_forced_mem_schedule, sk_rmem_schedule, tcp_adjust_rcv_ssthresh, tcp_under_memory_pressure,
};
use crate::tcp_output::{
    MAX_QUICKACKS, tcp_dsack_set, tcp_enter_quickack_mode, tcp_in_quickack_mode, tcp_incr_quickack,
    tcp_push_pending_frames, tcp_receive_window, tcp_select_window_raw, tcp_send_ack,
    tcp_send_delayed_ack, tcp_sync_mss, tcp_xmit_retransmit_queue, tp_nonagle,
};
use crate::tcp_rate::{RateSample, tcp_rate_gen, tcp_rate_skb_delivered, tcp_update_rtt_min};
use crate::tcp_sock::{
    ICSK_ACK_NOW, ICSK_ACK_PUSHED, ICSK_ACK_SCHED, RCV_SHUTDOWN, RxSkb, SEND_SHUTDOWN, TCP_ATO_MIN,
    TCP_TIMEWAIT_LEN, TCP_URG_NOTYET, TCP_URG_VALID, TCPCB_EVER_RETRANS, TCPCB_LOST,
    TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS, TcpSock, TcpState, after, before, between,
};
use crate::tcp_timer::{TcpTimer, inet_csk_reset_keepalive_timer};

/// A received segment's header fields, read once in `tcp_v4_rcv()`.
///
/// Mirrors `struct tcp_skb_cb` (`seq`, `end_seq`, `ack_seq`, `tcp_flags`)
/// plus the parsed options (`tcp_parse_options()`) and the addresses of the
/// IP header.
#[derive(Clone, Debug)]
pub struct TcpSeg {
    /// Source address (the peer).
    pub saddr: Ipv4Addr,
    /// Destination address (us).
    pub daddr: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// `seq` + payload length + SYN + FIN.
    pub end_seq: u32,
    /// Acknowledgment number.
    pub ack_seq: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field, unscaled.
    pub window: u16,
    /// Options.
    pub opts: TcpOptions,
    /// Payload length.
    pub len: u32,
    /// The header's length in bytes (`th->doff * 4`) when its options are
    /// none or exactly the aligned timestamp, the layouts header
    /// prediction matches (`tcp_parse_aligned_timestamp()`); 0 for any
    /// other layout, which always takes the slow path.
    pub pred_hlen: u8,
    /// The IP header's TOS byte, whose low two bits are the ECN field
    /// (`TCP_SKB_CB(skb)->ip_dsfield`).
    pub ip_dsfield: u8,
    /// The urgent pointer field (`th->urg_ptr`), meaningful with URG.
    pub urg_ptr: u16,
}

impl TcpSeg {
    /// Whether `f` is set.
    pub fn has(&self, f: TcpFlags) -> bool {
        self.flags.contains(f)
    }
}

// Flags of tcp_ack(), as in tcp_input.c.
const FLAG_DATA: u32 = 0x01;
const FLAG_WIN_UPDATE: u32 = 0x02;
const FLAG_DATA_ACKED: u32 = 0x04;
const FLAG_RETRANS_DATA_ACKED: u32 = 0x08;
const FLAG_SYN_ACKED: u32 = 0x10;
const FLAG_DATA_SACKED: u32 = 0x20;
const FLAG_ECE: u32 = 0x40;
const FLAG_LOST_RETRANS: u32 = 0x80;
const FLAG_SLOWPATH: u32 = 0x100;
const FLAG_ORIG_SACK_ACKED: u32 = 0x200;
const FLAG_SND_UNA_ADVANCED: u32 = 0x400;
const FLAG_DSACKING_ACK: u32 = 0x800;
const FLAG_SET_XMIT_TIMER: u32 = 0x1000;
const FLAG_SACK_RENEGING: u32 = 0x2000;
const FLAG_UPDATE_TS_RECENT: u32 = 0x4000;
const FLAG_NO_CHALLENGE_ACK: u32 = 0x8000;
const FLAG_DSACK_TLP: u32 = 0x20000;
const FLAG_ACK_MAYBE_DELAYED: u32 = 0x10000;
const FLAG_ACKED: u32 = FLAG_DATA_ACKED | FLAG_SYN_ACKED;
const FLAG_NOT_DUP: u32 = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED;
const FLAG_CA_ALERT: u32 = FLAG_DATA_SACKED | FLAG_ECE | FLAG_DSACKING_ACK;
const FLAG_FORWARD_PROGRESS: u32 = FLAG_ACKED | FLAG_DATA_SACKED;

/// The outcome of `tcp_ack()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AckResult {
    /// The ACK was acceptable and processed.
    Ok,
    /// An old duplicate ACK: nothing to clean, the segment's data still counts.
    Old,
    /// Unacceptable: drop the segment for this reason.
    Drop(DropReason),
}

/// The clock of `tcp_store_ts_recent()`'s stamp (`ts_recent_stamp`), in
/// seconds as `ktime_get_seconds()`.
///
/// # Deviations from Linux
/// The simulation's clock starts at 0 where Linux's starts at boot, long
/// before any connection: the seconds are counted from 1, so that a stamp
/// of 0 keeps meaning "no timestamp seen" (`tcp_twsk_unique()` and the
/// TIME-WAIT PAWS check test it) in the first second too.
pub(crate) fn secs(now: Instant) -> u64 {
    now.as_nanos() / 1_000_000_000 + 1
}

/// Records the peer's timestamp as the one to echo. Mirrors
/// `tcp_store_ts_recent()`.
pub(crate) fn tcp_store_ts_recent(tp: &mut TcpSock, now: Instant) {
    tp.rx_opt.ts_recent = tp.rx_opt.rcv_tsval;
    tp.rx_opt.ts_recent_stamp = secs(now);
}

/// The PAWS test: the segment's timestamp is not older than `ts_recent`
/// by more than `paws_win`, or `ts_recent` is stale (24 days). Mirrors
/// `tcp_paws_check()`.
fn tcp_paws_check(tp: &TcpSock, paws_win: i32, now: Instant) -> bool {
    let ro = &tp.rx_opt;
    (ro.ts_recent.wrapping_sub(ro.rcv_tsval) as i32) <= paws_win
        || secs(now) >= ro.ts_recent_stamp + 24 * 24 * 3600
        || ro.ts_recent == 0
}

/// A pure duplicate ACK reordered behind newer ones is not a PAWS victim.
/// Mirrors `tcp_disordered_ack()`.
fn tcp_disordered_ack(tp: &TcpSock, seg: &TcpSeg) -> bool {
    seg.has(TcpFlags::ACK)
        && seg.seq == seg.end_seq
        && seg.seq == tp.rcv_nxt
        && seg.ack_seq == tp.snd_una
        && !tcp_may_update_window(
            tp,
            seg.ack_seq,
            seg.seq,
            u32::from(seg.window) << tp.rx_opt.snd_wscale,
        )
        && (tp.rx_opt.ts_recent.wrapping_sub(tp.rx_opt.rcv_tsval) as i32)
            <= (tp.rto().as_millis() as i32 * 1024 / 1000)
}

/// Reads the timestamp option into `rx_opt`; `rcv_tsecr` is turned back
/// into our clock (minus `tsoffset`). Part of `tcp_fast_parse_options()`.
pub(crate) fn tcp_parse_ts(tp: &mut TcpSock, seg: &TcpSeg) {
    match seg.opts.timestamp {
        Some((val, ecr)) if tp.rx_opt.tstamp_ok => {
            tp.rx_opt.saw_tstamp = true;
            tp.rx_opt.rcv_tsval = val;
            tp.rx_opt.rcv_tsecr = ecr;
        }
        _ => tp.rx_opt.saw_tstamp = false,
    }
}

/// Whether the ACK may move the send window. Mirrors
/// `tcp_may_update_window()`.
fn tcp_may_update_window(tp: &TcpSock, ack: u32, ack_seq: u32, nwin: u32) -> bool {
    after(ack, tp.snd_una)
        || after(ack_seq, tp.snd_wl1)
        || (ack_seq == tp.snd_wl1 && (nwin > tp.snd_wnd || nwin == 0))
}

/// Rate-limits ACKs sent for out-of-window segments to one per
/// `tcp_invalid_ratelimit`. Mirrors `__tcp_oow_rate_limited()`; true when
/// this one must be skipped (counting `mib`).
fn tcp_oow_rate_limited<C: TcpContext>(ctx: &C, tp: &mut TcpSock, mib: LinuxMib) -> bool {
    let now = ctx.now();
    let limit =
        Duration::from_millis(ctx.sysctl().get_int(Sysctl::TCP_INVALID_RATELIMIT).max(0) as u64);
    if let Some(last) = tp.last_oow_ack_time.get()
        && now.saturating_duration_since(last) < limit
    {
        ctx.mibs().this_cpu(ctx.cpu()).inc(mib);
        return true;
    }
    tp.last_oow_ack_time.set(Some(now));
    false
}

/// Sends an RFC 5961 challenge ACK, limited per socket (500 ms) and per
/// host (`tcp_challenge_ack_limit` per second). Mirrors
/// `tcp_send_challenge_ack()`. Counters: `TCPChallengeACK`,
/// `TCPACKSkippedChallenge`.
pub(crate) fn tcp_send_challenge_ack<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
) {
    if tcp_oow_rate_limited(ctx, tp, LinuxMib::TcpAckSkippedChallenge) {
        return;
    }
    let limit = ctx.sysctl().get_int(Sysctl::TCP_CHALLENGE_ACK_LIMIT);
    if limit < i64::from(i32::MAX) {
        let now_s = secs(ctx.now());
        let limit = limit as u32;
        let rand = ctx.prandom_u32();
        let mut ch = stack.challenge.lock();
        if ch.0 != now_s {
            let half = (limit + 1) >> 1;
            ch.0 = now_s;
            ch.1 = half + rand % limit.max(1);
        }
        if ch.1 == 0 {
            return;
        }
        ch.1 -= 1;
    }
    ctx.mibs()
        .this_cpu(ctx.cpu())
        .inc(LinuxMib::TcpChallengeAck);
    tcp_send_ack(ctx, tp);
}

/// Acknowledges an unacceptable segment, with a D-SACK for a duplicate.
/// Mirrors `tcp_send_dupack()`.
fn tcp_send_dupack<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, seg: &TcpSeg) {
    if seg.end_seq != seg.seq && before(seg.seq, tp.rcv_nxt) {
        ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::DelayedAckLost);
        tcp_enter_quickack_mode(tp, MAX_QUICKACKS);
        let end = if after(seg.end_seq, tp.rcv_nxt) {
            tp.rcv_nxt
        } else {
            seg.end_seq
        };
        tcp_dsack_set(ctx, tp, seg.seq, end);
    }
    tcp_send_ack(ctx, tp);
}

/// Adds `seq..end_seq` to the pending D-SACK block if it touches it, or
/// starts one. Mirrors `tcp_dsack_extend()` with `tcp_sack_extend()`: a
/// range that neither overlaps nor abuts the block is not reported.
fn tcp_dsack_extend<C: TcpContext>(ctx: &C, tp: &mut TcpSock, seq: u32, end_seq: u32) {
    match tp.duplicate_sack.as_mut() {
        Some(sp) if tp.dsack_pending => {
            if !after(seq, sp.end_seq) && !after(sp.start_seq, end_seq) {
                if before(seq, sp.start_seq) {
                    sp.start_seq = seq;
                }
                if after(end_seq, sp.end_seq) {
                    sp.end_seq = end_seq;
                }
            }
        }
        _ => tcp_dsack_set(ctx, tp, seq, end_seq),
    }
}

/// A RST was accepted: report the error and close. Mirrors `tcp_reset()`:
/// `ECONNREFUSED` in SYN-SENT, `EPIPE` in CLOSE-WAIT, else `ECONNRESET`.
pub(crate) fn tcp_reset<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    let err = match tp.state {
        TcpState::SynSent => netcore::Errno::ConnRefused,
        TcpState::CloseWait => netcore::Errno::Pipe,
        TcpState::Close => return,
        _ => netcore::Errno::ConnReset,
    };
    crate::tcp::tcp_write_queue_purge(tp);
    tp.sk_err = Some(err);
    ctx.sk_wake(tp.id, SkEvent::ErrorReport);
    tcp_done(stack, ctx, tp);
}

/// The sequence test: the segment overlaps the window. Mirrors
/// `tcp_sequence()`.
fn tcp_sequence(tp: &TcpSock, seq: u32, end_seq: u32) -> bool {
    !before(end_seq, tp.rcv_wup) && !after(seq, tp.rcv_nxt.wrapping_add(tcp_receive_window(tp)))
}

/// The checks every segment of a synchronized connection passes before it
/// is processed: PAWS, the sequence window, RST (RFC 5961 §3), SYN
/// (RFC 5961 §4). Returns whether to go on. Mirrors
/// `tcp_validate_incoming()`.
///
/// Counters: `PAWSEstab`, `BeyondWindow`, `TCPACKSkippedPAWS`,
/// `TCPACKSkippedSeq`, `TCPSYNChallenge`, `InErrs` (for a SYN).
fn tcp_validate_incoming<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
) -> Result<(), DropReason> {
    let now = ctx.now();
    let cpu = ctx.cpu();
    let rst = seg.has(TcpFlags::RST);
    let syn = seg.has(TcpFlags::SYN);
    if tp.rx_opt.saw_tstamp && !tcp_paws_check(tp, 1, now) && !tcp_disordered_ack(tp, seg) && !rst {
        if syn {
            return Err(syn_challenge(stack, ctx, tp));
        }
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::PawsEstabRejected);
        if !(seg.seq == seg.end_seq || syn)
            || !tcp_oow_rate_limited(ctx, tp, LinuxMib::TcpAckSkippedPaws)
        {
            tcp_send_dupack(ctx, tp, seg);
        }
        // SKB_DROP_REASON_TCP_RFC7323_PAWS: an old segment by its timestamp.
        return Err(DropReason::TcpOldSequence);
    }
    if !tcp_sequence(tp, seg.seq, seg.end_seq) {
        if !rst {
            if syn {
                return Err(syn_challenge(stack, ctx, tp));
            }
            if after(seg.seq, tp.rcv_nxt) {
                ctx.mibs().this_cpu(cpu).inc(LinuxMib::BeyondWindow);
            }
            if seg.seq != seg.end_seq || !tcp_oow_rate_limited(ctx, tp, LinuxMib::TcpAckSkippedSeq)
            {
                tcp_send_dupack(ctx, tp, seg);
            }
        } else if tcp_reset_check(tp, seg) {
            tcp_reset(stack, ctx, tp);
        }
        return Err(if before(seg.end_seq, tp.rcv_wup) {
            DropReason::TcpOldSequence
        } else {
            DropReason::TcpInvalidSequence
        });
    }
    if rst {
        let max_sack = tp.selective_acks.iter().map(|b| b.end_seq).max();
        if seg.seq == tp.rcv_nxt
            || tcp_reset_check(tp, seg)
            || (tp.rx_opt.sack_ok && max_sack == Some(seg.seq))
        {
            tcp_reset(stack, ctx, tp);
        } else {
            tcp_send_challenge_ack(stack, ctx, tp);
        }
        return Err(DropReason::TcpReset);
    }
    if syn {
        if tp.state == TcpState::SynRecv
            && seg.has(TcpFlags::ACK)
            && seg.seq.wrapping_add(1) == seg.end_seq
            && seg.seq.wrapping_add(1) == tp.rcv_nxt
            && seg.ack_seq == tp.snd_nxt
        {
            return Ok(());
        }
        return Err(syn_challenge(stack, ctx, tp));
    }
    Ok(())
}

fn syn_challenge<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) -> DropReason {
    let cpu = ctx.cpu();
    ctx.mibs().this_cpu(cpu).inc(TcpMib::InErrs);
    ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpSynChallenge);
    tcp_send_challenge_ack(stack, ctx, tp);
    DropReason::TcpInvalidSyn
}

/// A RST at `rcv_nxt - 1` after our FIN was acked by a FIN. Mirrors
/// `tcp_reset_check()`.
fn tcp_reset_check(tp: &TcpSock, seg: &TcpSeg) -> bool {
    seg.seq == tp.rcv_nxt.wrapping_sub(1)
        && matches!(
            tp.state,
            TcpState::CloseWait | TcpState::LastAck | TcpState::Closing
        )
}

/// Feeds one RTT sample into SRTT/RTTVAR and recomputes the RTO.
/// Mirrors `tcp_rtt_estimator()` + `tcp_set_rto()` (RFC 6298 with Linux's
/// `mdev_max` smoothing and `tcp_rto_min_us`).
pub(crate) fn tcp_rtt_estimator<C: TcpContext>(ctx: &C, tp: &mut TcpSock, mrtt_us: i64) {
    let rto_max_us = u64::try_from(tp.rto_max().as_micros()).unwrap_or(u64::MAX);
    let rto_min_us = ctx.sysctl().get_int(Sysctl::TCP_RTO_MIN_US).max(1) as u32;
    let mut m = mrtt_us.max(1);
    let mut srtt = i64::from(tp.srtt_us);
    if srtt != 0 {
        m -= srtt >> 3;
        srtt += m;
        let mut mdev = i64::from(tp.mdev_us);
        if m < 0 {
            m = -m;
            m -= mdev >> 2;
            if m > 0 {
                m >>= 3;
            }
        } else {
            m -= mdev >> 2;
        }
        mdev += m;
        tp.mdev_us = mdev.max(0) as u32;
        if tp.mdev_us > tp.mdev_max_us {
            tp.mdev_max_us = tp.mdev_us;
            if tp.mdev_max_us > tp.rttvar_us {
                tp.rttvar_us = tp.mdev_max_us;
            }
        }
        if after(tp.snd_una, tp.rtt_seq) {
            if tp.mdev_max_us < tp.rttvar_us {
                tp.rttvar_us -= (tp.rttvar_us - tp.mdev_max_us) >> 2;
            }
            tp.rtt_seq = tp.snd_nxt;
            tp.mdev_max_us = rto_min_us;
        }
    } else {
        srtt = m << 3;
        tp.mdev_us = (m << 1) as u32;
        tp.rttvar_us = tp.mdev_us.max(rto_min_us);
        tp.mdev_max_us = tp.rttvar_us;
        tp.rtt_seq = tp.snd_nxt;
    }
    tp.srtt_us = srtt.max(1) as u32;
    tp.cwnd.srtt_us = tp.srtt_us;
    // __tcp_set_rto() bounded by tcp_rto_max() (tcp_bound_rto()), in
    // whole µs.
    let rto_us = (u64::from(tp.srtt_us >> 3) + u64::from(tp.rttvar_us)).min(rto_max_us);
    tp.set_rto_us(rto_us as u32);
}

/// Moves the CA state, telling the congestion controller. Mirrors
/// `tcp_set_ca_state()`.
pub(crate) fn tcp_set_ca_state(tp: &mut TcpSock, st: TcpCaState) {
    tp.ca_ops.set_state(&mut tp.cwnd, st);
    tp.ca_state = st;
}

/// The peer sends SACK options. Mirrors `tcp_is_sack()`.
pub(crate) fn tcp_is_sack(tp: &TcpSock) -> bool {
    tp.rx_opt.sack_ok
}

/// Segments known to have left the network: SACKed or lost. Mirrors
/// `tcp_left_out()`.
fn tcp_left_out(tp: &TcpSock) -> u32 {
    tp.sacked_out + tp.lost_out
}

/// The end of the highest SACKed segment, `snd_una` when none is SACKed.
/// Mirrors `tcp_highest_sack_seq()`.
pub(crate) fn tcp_highest_sack_seq(tp: &TcpSock) -> u32 {
    if tp.sacked_out == 0 {
        return tp.snd_una;
    }
    let n = (tp.packets_out as usize).min(tp.write_queue.len());
    tp.write_queue
        .iter()
        .take(n)
        .rev()
        .find(|s| s.sacked & TCPCB_SACKED_ACKED != 0)
        .map_or(tp.snd_una, |s| s.end_seq)
}

/// Something of the current flight was retransmitted. Mirrors
/// `tcp_any_retrans_done()`.
fn tcp_any_retrans_done(tp: &TcpSock) -> bool {
    tp.retrans_out > 0
        || (tp.packets_out > 0
            && tp
                .write_queue
                .front()
                .is_some_and(|s| s.sacked & TCPCB_EVER_RETRANS != 0))
}

/// The peer's echoed timestamp is older than `when` (our time stamp
/// clock). Mirrors `tcp_tsopt_ecr_before()`.
fn tcp_tsopt_ecr_before(tp: &TcpSock, when: u32) -> bool {
    tp.rx_opt.saw_tstamp && tp.rx_opt.rcv_tsecr != 0 && before(tp.rx_opt.rcv_tsecr, when)
}

/// The ACK echoes a timestamp from before our first retransmission, so it
/// answers the original (Eifel, RFC 3522); when the episode sent no
/// retransmission at all (`undo_retrans` still -1), any ACK does. Mirrors
/// `tcp_packet_delayed()`.
fn tcp_packet_delayed(tp: &TcpSock) -> bool {
    if tp.recovery.first_retrans_at != 0 {
        tcp_tsopt_ecr_before(tp, tp.recovery.first_retrans_at)
    } else {
        tp.recovery.undo_retrans < 0
    }
}

/// The cwnd reduction may be undone: every retransmission of the episode
/// was D-SACKed, or the ACK answers an original. Mirrors `tcp_may_undo()`.
fn tcp_may_undo(tp: &TcpSock) -> bool {
    tp.recovery.undo_marker.is_some() && (tp.recovery.undo_retrans == 0 || tcp_packet_delayed(tp))
}

/// Starts an undo episode: retransmissions in flight may still be
/// D-SACKed. Mirrors `tcp_init_undo()`.
fn tcp_init_undo(tp: &mut TcpSock) {
    tp.recovery.undo_marker = NonZeroU32::new(tp.snd_una);
    tp.recovery.undo_retrans = tp.retrans_out as i32;
    if tp.recovery.tlp_high_seq.is_some() && tp.recovery.tlp_retrans {
        tp.recovery.undo_retrans += 1;
    }
    if tp.recovery.undo_retrans == 0 {
        // 0 means "may undo now".
        tp.recovery.undo_retrans = -1;
    }
}

/// Reverts a cwnd reduction proven spurious: cwnd from the controller's
/// `undo_cwnd`, ssthresh back to `prior_ssthresh`; with `unmark_loss`
/// the lost marks go too. Mirrors `tcp_undo_cwnd_reduction()`.
fn tcp_undo_cwnd_reduction(tp: &mut TcpSock, unmark_loss: bool) {
    if unmark_loss {
        let n = tp.packets_out as usize;
        for s in tp.write_queue.iter_mut().take(n) {
            s.sacked &= !TCPCB_LOST;
        }
        tp.lost_out = 0;
    }
    if tp.recovery.prior_ssthresh != 0 {
        let prior_cwnd = tp.recovery.prior_cwnd;
        tp.cwnd.snd_cwnd = tp.ca_ops.undo_cwnd(&tp.cwnd, prior_cwnd);
        if tp.recovery.prior_ssthresh > tp.cwnd.snd_ssthresh {
            tp.cwnd.snd_ssthresh = tp.recovery.prior_ssthresh;
        }
        crate::tcp_ecn::tcp_ecn_withdraw_cwr(tp);
    }
    tp.recovery.undo_marker = None;
    // Make RACK look at the queue again.
    tp.rack.advanced = true;
}

/// Records reordering seen from SACKs: a hole at `low_seq` filled below
/// the highest SACK raises `reordering` to that distance in segments (at
/// most `tcp_max_reordering`). Mirrors `tcp_check_sack_reordering()`.
/// Counters: `TCPSACKReorder`, `TCPTSReorder` (`ts`).
fn tcp_check_sack_reordering<C: TcpContext>(ctx: &C, tp: &mut TcpSock, low_seq: u32, ts: bool) {
    let mss = u32::from(tp.mss_cache);
    let fack = tcp_highest_sack_seq(tp);
    if !before(low_seq, fack) {
        return;
    }
    let metric = fack.wrapping_sub(low_seq);
    if mss > 0 && metric > tp.reordering.saturating_mul(mss) {
        let max = ctx.sysctl().get_int(Sysctl::TCP_MAX_REORDERING).max(1) as u32;
        tp.reordering = metric.div_ceil(mss).min(max);
    }
    tp.recovery.reord_seen = tp.recovery.reord_seen.saturating_add(1);
    let mib = if ts {
        LinuxMib::TcpTsReorder
    } else {
        LinuxMib::TcpSackReorder
    };
    ctx.mibs().this_cpu(ctx.cpu()).inc(mib);
}

/// Without SACK, duplicate ACKs beyond the flight mean reordering: the
/// SACK estimate is capped and `reordering` raised. Mirrors
/// `tcp_check_reno_reordering()` with `tcp_limit_reno_sacked()`.
/// Counter: `TCPRenoReorder`.
fn tcp_check_reno_reordering<C: TcpContext>(ctx: &C, tp: &mut TcpSock, addend: u32) {
    let holes = tp.lost_out.max(1).min(tp.packets_out);
    if tp.sacked_out + holes <= tp.packets_out {
        return;
    }
    tp.sacked_out = tp.packets_out - holes;
    let max = ctx.sysctl().get_int(Sysctl::TCP_MAX_REORDERING).max(1) as u32;
    tp.reordering = (tp.packets_out + addend).min(max);
    tp.recovery.reord_seen = tp.recovery.reord_seen.saturating_add(1);
    ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpRenoReorder);
}

/// Without SACK, a duplicate ACK stands for one segment delivered.
/// Mirrors `tcp_add_reno_sack()`.
fn tcp_add_reno_sack<C: TcpContext>(ctx: &C, tp: &mut TcpSock, num_dupack: u32) {
    if num_dupack == 0 {
        return;
    }
    let prior_sacked = tp.sacked_out;
    tp.sacked_out += num_dupack;
    tcp_check_reno_reordering(ctx, tp, 0);
    tp.delivered = tp
        .delivered
        .wrapping_add(tp.sacked_out.saturating_sub(prior_sacked));
}

/// Without SACK, an ACK of `acked` segments filled one hole; the rest
/// consumed duplicate ACKs. Mirrors `tcp_remove_reno_sacks()`.
fn tcp_remove_reno_sacks<C: TcpContext>(ctx: &C, tp: &mut TcpSock, acked: u32) {
    if acked > 0 {
        tp.delivered = tp
            .delivered
            .wrapping_add(acked.saturating_sub(tp.sacked_out).max(1));
        if acked > tp.sacked_out {
            tp.sacked_out = 0;
        } else {
            tp.sacked_out -= acked - 1;
        }
    }
    tcp_check_reno_reordering(ctx, tp, acked);
}

/// The retransmission timer expired: segments not SACKed and not sent
/// within the last RACK RTT are lost (all of them, SACKed ones too, when
/// the receiver reneged), ssthresh is cut once per window, cwnd drops to
/// one segment above the flight, and F-RTO (RFC 5682) starts when no
/// recovery was under way. Mirrors `tcp_enter_loss()` with
/// `tcp_timeout_mark_lost()`. Counter: `TCPSACKReneging`.
pub(crate) fn tcp_enter_loss<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let new_recovery = (tp.ca_state as u8) < (TcpCaState::Recovery as u8);
    // tcp_timeout_mark_lost()
    let now = ctx.now();
    let n = (tp.packets_out as usize).min(tp.write_queue.len());
    let is_reneg = n > 0 && tp.write_queue[0].sacked & TCPCB_SACKED_ACKED != 0;
    if is_reneg {
        ctx.mibs()
            .this_cpu(ctx.cpu())
            .inc(LinuxMib::TcpSackReneging);
        tp.sacked_out = 0;
        tp.recovery.is_sack_reneg = true;
    } else if !tcp_is_sack(tp) {
        tp.sacked_out = 0;
    }
    for i in 0..n {
        if is_reneg {
            tp.write_queue[i].sacked &= !TCPCB_SACKED_ACKED;
        } else if i > 0 {
            let sent = tp.write_queue[i].sent_at.map_or(0, Instant::as_micros);
            if crate::tcp_rack::tcp_rack_skb_timeout(tp, now, sent, 0) > 0 {
                // Sent too recently to call lost yet.
                continue;
            }
        }
        crate::tcp_rack::tcp_mark_skb_lost(ctx, tp, i);
    }
    // Reduce ssthresh if it has not yet been made inside this window.
    if matches!(tp.ca_state, TcpCaState::Open | TcpCaState::Disorder)
        || !after(tp.recovery.high_seq, tp.snd_una)
        || (tp.ca_state == TcpCaState::Loss && tp.retransmits == 0)
    {
        tp.recovery.prior_ssthresh = crate::tcp_cong::tcp_current_ssthresh(&tp.cwnd, tp.ca_state);
        tp.recovery.prior_cwnd = tp.cwnd.snd_cwnd;
        let ss = tp.ca_ops.ssthresh(&tp.cwnd);
        tp.cwnd.snd_ssthresh = ss;
        tp.ca_ops.cwnd_event(&mut tp.cwnd, CaEvent::Loss);
        tcp_init_undo(tp);
    }
    tp.cwnd.snd_cwnd = tp.packets_in_flight() + 1;
    tp.cwnd.snd_cwnd_cnt = 0;
    // A timeout after many duplicate ACKs: reordering was overestimated.
    let reordering = ctx.sysctl().get_int(Sysctl::TCP_REORDERING).max(1) as u32;
    if matches!(tp.ca_state, TcpCaState::Open | TcpCaState::Disorder) && tp.sacked_out >= reordering
    {
        tp.reordering = tp.reordering.min(reordering);
    }
    tcp_set_ca_state(tp, TcpCaState::Loss);
    tp.recovery.high_seq = tp.snd_nxt;
    tp.recovery.tlp_high_seq = None;
    crate::tcp_ecn::tcp_ecn_queue_cwr(tp);
    // F-RTO step 1: only when no recovery was under way, or on repeated
    // timeouts of the same snd_una.
    tp.recovery.frto =
        ctx.sysctl().get_int(Sysctl::TCP_FRTO) != 0 && (new_recovery || tp.retransmits > 0);
}

/// The path MTU fell: every sent segment longer than the new MSS was
/// dropped on the way, so it is marked lost and sent again at once, cut
/// to the new MSS, without touching cwnd (the data in flight did not
/// grow; its units shrank). The state becomes Loss with `high_seq` at
/// `snd_nxt` and no undo. Mirrors `tcp_simple_retransmit()`.
pub(crate) fn tcp_simple_retransmit<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let mss = u32::from(crate::tcp_output::tcp_current_mss(tp));
    let n = (tp.packets_out as usize).min(tp.write_queue.len());
    for i in 0..n {
        if tp.write_queue[i].len() > mss {
            crate::tcp_rack::tcp_mark_skb_lost(ctx, tp, i);
        }
    }
    if tp.lost_out == 0 {
        return;
    }
    if !tcp_is_sack(tp) {
        // tcp_limit_reno_sacked()
        let holes = tp.lost_out.max(1).min(tp.packets_out);
        if tp.sacked_out + holes > tp.packets_out {
            tp.sacked_out = tp.packets_out - holes;
        }
    }
    if tp.ca_state != TcpCaState::Loss {
        tp.recovery.high_seq = tp.snd_nxt;
        tp.cwnd.snd_ssthresh = crate::tcp_cong::tcp_current_ssthresh(&tp.cwnd, tp.ca_state);
        tp.recovery.prior_ssthresh = 0;
        tp.recovery.undo_marker = None;
        tcp_set_ca_state(tp, TcpCaState::Loss);
    }
    crate::tcp_output::tcp_xmit_retransmit_queue(ctx, tp);
}

/// A segment with URG set: where the urgent byte is. Mirrors
/// `tcp_check_urg()`: the pointer names the byte after the urgent one
/// unless `tcp_stdurg` (RFC 1122's reading) is set; a pointer to data
/// already read, already received, or not beyond the urgent byte known is
/// ignored; an urgent byte still unread (and not inline) when a new one
/// comes is dropped from the stream. The new byte is awaited
/// (`TCP_URG_NOTYET`) and header prediction is off. No `SIGURG` (no
/// process to signal).
fn tcp_check_urg<C: TcpContext>(ctx: &C, tp: &mut TcpSock, seg: &TcpSeg) {
    let mut ptr = u32::from(seg.urg_ptr);
    if ptr != 0 && ctx.sysctl().get_int(Sysctl::TCP_STDURG) == 0 {
        ptr -= 1;
    }
    let ptr = ptr.wrapping_add(seg.seq);
    if after(tp.copied_seq, ptr) || before(ptr, tp.rcv_nxt) {
        return;
    }
    if tp.urg_data != 0 && !after(ptr, tp.urg_seq) {
        return;
    }
    if tp.urg_seq == tp.copied_seq
        && tp.urg_data != 0
        && !tp.opts.oobinline
        && tp.copied_seq != tp.rcv_nxt
    {
        // The old urgent byte was never read: skip it in the stream.
        tp.copied_seq = tp.copied_seq.wrapping_add(1);
        if let Some(front) = tp.receive_queue.front()
            && !before(tp.copied_seq, front.end_seq())
            && let Some(s) = tp.receive_queue.pop_front()
        {
            tp.rmem_alloc = tp.rmem_alloc.saturating_sub(s.skb.truesize() as u32);
        }
    }
    tp.urg_data = TCP_URG_NOTYET;
    tp.urg_seq = ptr;
    tp.pred_flags = 0;
}

/// Step 6 of segment processing: a new urgent pointer, and the urgent
/// byte once the segment that carries it is here (`TCP_URG_VALID` with
/// the byte; readers woken). Mirrors `tcp_urg()`.
fn tcp_urg<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, seg: &TcpSeg, skb: &SkBuff) {
    if seg.has(TcpFlags::URG) {
        tcp_check_urg(ctx, tp, seg);
    }
    if tp.urg_data != TCP_URG_NOTYET {
        return;
    }
    let ptr = tp
        .urg_seq
        .wrapping_sub(seg.seq)
        .wrapping_sub(u32::from(seg.has(TcpFlags::SYN))) as usize;
    let mut byte = [0u8];
    if ptr < skb.len() && skb.copy_bits(ptr, &mut byte).is_ok() {
        tp.urg_data = TCP_URG_VALID | u16::from(byte[0]);
        if !tp.dead {
            ctx.sk_wake(tp.id, SkEvent::DataReady);
        }
    }
}

/// What `tcp_sacktag_write_queue()` and `tcp_clean_rtx_queue()` learn
/// from one ACK. Mirrors `struct tcp_sacktag_state`.
#[derive(Clone, Copy, Debug, Default)]
struct TcpSacktagState {
    /// Lowest sequence delivered out of order (`reord`).
    reord: u32,
    /// Send times (µs) of the first and last never-retransmitted segments
    /// newly SACKed (`first_sackt`, `last_sackt`).
    first_sackt: Option<u64>,
    last_sackt: Option<u64>,
    /// `FLAG_*` bits found.
    flag: u32,
    /// Segments newly SACKed, D-SACKed duplicates included (`sack_delivered`).
    sack_delivered: u32,
    /// The end of the highest SACKed segment as the walk goes
    /// (`tcp_highest_sack_seq()`, `snd_una` when none).
    highest: u32,
    /// The ACK's delivery-rate sample (`rate`).
    rate: RateSample,
}

/// Tags one segment covered by a SACK block (`dup_sack` for the D-SACK
/// block). Mirrors `tcp_sacktag_one()`.
fn tcp_sacktag_one(
    tp: &mut TcpSock,
    state: &mut TcpSacktagState,
    idx: usize,
    dup_sack: bool,
    now: Instant,
) {
    let (start_seq, end_seq, mut sacked, sent) = {
        let s = &tp.write_queue[idx];
        (
            s.seq,
            s.end_seq,
            s.sacked,
            s.sent_at.map_or(0, Instant::as_micros),
        )
    };
    let ever_retrans = sacked & (TCPCB_EVER_RETRANS | TCPCB_SACKED_RETRANS) != 0;
    // Account a D-SACK for a retransmitted segment.
    if dup_sack && ever_retrans {
        if let Some(marker) = tp.recovery.undo_marker.map(NonZeroU32::get)
            && tp.recovery.undo_retrans > 0
            && after(end_seq, marker)
        {
            tp.recovery.undo_retrans = (tp.recovery.undo_retrans - 1).max(0);
        }
        if sacked & TCPCB_SACKED_ACKED != 0 && before(start_seq, state.reord) {
            state.reord = start_seq;
        }
    }
    // Already cumulatively acked: nothing to do.
    if !after(end_seq, tp.snd_una) {
        return;
    }
    if sacked & TCPCB_SACKED_ACKED == 0 {
        crate::tcp_rack::tcp_rack_advance(
            tp,
            now,
            sacked & (TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS) != 0,
            end_seq,
            sent,
        );
        if sacked & TCPCB_SACKED_RETRANS != 0 {
            // A retransmission not marked lost is believed still in
            // flight: its mark stays.
            if sacked & TCPCB_LOST != 0 {
                sacked &= !(TCPCB_LOST | TCPCB_SACKED_RETRANS);
                tp.lost_out = tp.lost_out.saturating_sub(1);
                tp.retrans_out = tp.retrans_out.saturating_sub(1);
            }
        } else {
            if !ever_retrans {
                // A never-retransmitted segment in a hole: reordering.
                if before(start_seq, state.highest) && before(start_seq, state.reord) {
                    state.reord = start_seq;
                }
                if !after(end_seq, tp.recovery.high_seq) {
                    state.flag |= FLAG_ORIG_SACK_ACKED;
                }
                if state.first_sackt.is_none() {
                    state.first_sackt = Some(sent);
                }
                state.last_sackt = Some(sent);
            }
            if sacked & TCPCB_LOST != 0 {
                sacked &= !TCPCB_LOST;
                tp.lost_out = tp.lost_out.saturating_sub(1);
            }
        }
        sacked |= TCPCB_SACKED_ACKED;
        state.flag |= FLAG_DATA_SACKED;
        tp.sacked_out += 1;
        state.sack_delivered = state.sack_delivered.saturating_add(1);
        if tp.sacked_out == 1 || !before(start_seq, state.highest) {
            state.highest = end_seq;
        }
    }
    // A D-SACK of a retransmission still marked in flight: it arrived.
    if dup_sack && sacked & TCPCB_SACKED_RETRANS != 0 {
        sacked &= !TCPCB_SACKED_RETRANS;
        tp.retrans_out = tp.retrans_out.saturating_sub(1);
    }
    tp.write_queue[idx].sacked = sacked;
}

/// Checks a D-SACK block: counts the duplicate segments, ignores dubious
/// ones (longer than any window, or more than was retransmitted), notes
/// it for RACK and for undo. Returns the number of duplicate segments, 0
/// for a dubious one. Mirrors `tcp_dsack_seen()`.
fn tcp_dsack_seen(tp: &mut TcpSock, start: u32, end: u32, state: &mut TcpSacktagState) -> u32 {
    if !before(start, end) {
        return 0;
    }
    let seq_len = end.wrapping_sub(start);
    if seq_len > tp.max_window {
        return 0;
    }
    let mss = u32::from(tp.mss_cache).max(1);
    let mut dup_segs = 1;
    if seq_len > mss {
        dup_segs = seq_len.div_ceil(mss);
    } else if tp.recovery.tlp_high_seq.map(NonZeroU32::get) == Some(end) {
        state.flag |= FLAG_DSACK_TLP;
    }
    tp.recovery.dsack_dups = tp.recovery.dsack_dups.saturating_add(dup_segs);
    if tp.recovery.dsack_dups > tp.total_retrans {
        // The duplicates were never retransmitted by us.
        return 0;
    }
    if tp.recovery.reord_seen > 0 && state.flag & FLAG_DSACK_TLP == 0 {
        tp.rack.dsack_seen = true;
    }
    state.flag |= FLAG_DSACKING_ACK;
    // A spurious retransmission was delivered.
    state.sack_delivered = state.sack_delivered.saturating_add(dup_segs);
    dup_segs
}

/// Whether the first SACK block is a D-SACK (RFC 2883): below the ACK,
/// or inside the second block. Mirrors `tcp_check_dsack()`. Counters:
/// `TCPDSACKRecv`, `TCPDSACKOfoRecv`, `TCPDSACKIgnoredDubious`,
/// `TCPDSACKRecvSegs`.
fn tcp_check_dsack<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
    prior_snd_una: u32,
    state: &mut TcpSacktagState,
) -> bool {
    let blocks = &seg.opts.sack_blocks;
    let cpu = ctx.cpu();
    let Some(first) = blocks.first().copied() else {
        return false;
    };
    if before(first.start_seq, seg.ack_seq) {
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpDsackRecv);
    } else if let Some(second) = blocks.get(1) {
        if after(first.end_seq, second.end_seq) || before(first.start_seq, second.start_seq) {
            return false;
        }
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpDsackOfoRecv);
    } else {
        return false;
    }
    let dup_segs = tcp_dsack_seen(tp, first.start_seq, first.end_seq, state);
    if dup_segs == 0 {
        ctx.mibs()
            .this_cpu(cpu)
            .inc(LinuxMib::TcpDsackIgnoredDubious);
        return false;
    }
    ctx.mibs()
        .add(cpu, LinuxMib::TcpDsackRecvSegs, u64::from(dup_segs));
    // A D-SACK for data already acked: count it against undo_retrans.
    if let Some(marker) = tp.recovery.undo_marker.map(NonZeroU32::get)
        && tp.recovery.undo_retrans > 0
        && !after(first.end_seq, prior_snd_una)
        && after(first.end_seq, marker)
    {
        tp.recovery.undo_retrans = (tp.recovery.undo_retrans - dup_segs as i32).max(0);
    }
    true
}

/// Marks SACK blocks on the retransmission queue (the scoreboard):
/// `TCPCB_SACKED_ACKED` per covered segment with `sacked_out`, lost and
/// retransmitted marks cleared, D-SACKs checked, RACK advanced, and
/// reordering detected. Returns the `FLAG_*` bits. Mirrors
/// `tcp_sacktag_write_queue()`. Counter: `TCPSACKDiscard`.
///
/// # Deviations from Linux
///
/// Segments are never split or merged to match a block (no
/// `tcp_shift_skb_data()`/`tcp_match_skb_to_sack()`): each write-queue
/// entry is one segment, and only entries a block covers entirely are
/// tagged, as Linux does for single-segment skbs.
fn tcp_sacktag_write_queue<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
    prior_snd_una: u32,
    state: &mut TcpSacktagState,
) -> u32 {
    let now = ctx.now();
    state.flag = 0;
    state.reord = tp.snd_nxt;
    if seg.opts.sack_blocks.is_empty() || !tcp_is_sack(tp) {
        return 0;
    }
    state.highest = tcp_highest_sack_seq(tp);
    let found_dup_sack = tcp_check_dsack(ctx, tp, seg, prior_snd_una, state);
    let lower = prior_snd_una.wrapping_sub(tp.max_window);
    // In order of sequence, the D-SACK block first, so the walk sees the
    // highest SACK grow as Linux's sorted walk does.
    let mut blocks: heapless::Vec<(bool, TcpSackBlock), 4> = heapless::Vec::new();
    for (i, b) in seg.opts.sack_blocks.iter().enumerate() {
        let _ = blocks.push((found_dup_sack && i == 0, *b));
    }
    blocks.sort_unstable_by_key(|(dup, b)| (!*dup, b.start_seq.wrapping_sub(prior_snd_una)));
    for &(dup_sack, b) in &blocks {
        if !after(b.end_seq, b.start_seq)
            || after(b.end_seq, tp.snd_nxt)
            || (!dup_sack && before(b.start_seq, lower))
            || (dup_sack && before(b.start_seq, lower.wrapping_sub(tp.max_window)))
        {
            if !dup_sack || after(b.end_seq, tp.snd_nxt) {
                ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpSackDiscard);
            } else {
                ctx.mibs()
                    .this_cpu(ctx.cpu())
                    .inc(LinuxMib::TcpDsackIgnoredOld);
            }
            continue;
        }
        if !dup_sack && !after(b.end_seq, prior_snd_una) {
            // Only old, already acked data: nothing to tag.
            continue;
        }
        let n = (tp.packets_out as usize).min(tp.write_queue.len());
        // The queue is in sequence order: skip to the first segment that
        // ends past the block's start (tcp_sacktag_skip()).
        let first = tp
            .write_queue
            .partition_point(|s| !after(s.end_seq, b.start_seq))
            .min(n);
        for idx in first..n {
            let (s_seq, s_end) = (tp.write_queue[idx].seq, tp.write_queue[idx].end_seq);
            if !after(s_end, b.start_seq) {
                continue;
            }
            if !before(s_seq, b.end_seq) {
                break;
            }
            if !before(s_seq, b.start_seq) && !after(s_end, b.end_seq) {
                tcp_sacktag_one(tp, state, idx, dup_sack, now);
                tcp_rate_skb_delivered(&mut tp.rate, &mut tp.write_queue[idx], &mut state.rate);
            }
        }
    }
    let flag = state.flag;
    if tp.ca_state != TcpCaState::Loss || tp.recovery.undo_marker.is_some() {
        let reord = state.reord;
        tcp_check_sack_reordering(ctx, tp, reord, false);
    }
    flag
}

/// Marks lost, from the head, the segments with more than `packets`
/// SACKed segments below them; with `mark_head` only the head. Mirrors
/// `tcp_mark_head_lost()`.
fn tcp_mark_head_lost<C: TcpContext>(ctx: &C, tp: &mut TcpSock, packets: u32, mark_head: bool) {
    let n = (tp.packets_out as usize).min(tp.write_queue.len());
    let mut cnt = 0;
    for i in 0..n {
        if after(tp.write_queue[i].end_seq, tp.snd_nxt) {
            break;
        }
        let sacked = tp.write_queue[i].sacked;
        if sacked & TCPCB_SACKED_ACKED != 0 {
            cnt += 1;
        }
        if cnt > packets {
            break;
        }
        if sacked & TCPCB_LOST == 0 {
            crate::tcp_rack::tcp_mark_skb_lost(ctx, tp, i);
        }
        if mark_head {
            break;
        }
    }
}

/// The SACK scoreboard without RACK (`tcp_recovery=0`): segments with at
/// least `reordering` SACKed segments above them are lost (RFC 6675
/// `IsLost()`), or the head on a fast retransmit. Mirrors
/// `tcp_update_scoreboard()`.
fn tcp_update_scoreboard<C: TcpContext>(ctx: &C, tp: &mut TcpSock, fast_rexmit: bool) {
    if tcp_is_sack(tp) {
        let sacked_upto = i64::from(tp.sacked_out) - i64::from(tp.reordering);
        if sacked_upto >= 0 {
            tcp_mark_head_lost(ctx, tp, sacked_upto as u32, false);
        } else if fast_rexmit {
            tcp_mark_head_lost(ctx, tp, 1, true);
        }
    }
}

/// Removes fully acknowledged segments from the queue, takes an RTT
/// sample (Karn: from never-retransmitted segments, else from SACKs or
/// the echoed timestamp), notes reordering when a never-retransmitted
/// hole is filled, and advances RACK. Returns the flags and the number of
/// segments acked. Mirrors `tcp_clean_rtx_queue()` with
/// `tcp_ack_update_rtt()`.
fn tcp_clean_rtx_queue<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    now: Instant,
    prior_fack: u32,
    prior_snd_una: u32,
    sack: &mut TcpSacktagState,
) -> (u32, u32) {
    let prior_sacked = tp.sacked_out;
    let mut flag = sack.flag & FLAG_CA_ALERT;
    let mut acked = 0;
    let mut first_ackt: Option<u64> = None;
    let mut last_ackt: Option<u64> = None;
    let mut reord = tp.snd_nxt;
    while tp.packets_out > 0 {
        let Some(s) = tp.write_queue.front_mut() else {
            break;
        };
        if after(s.end_seq, tp.snd_una) {
            break;
        }
        tcp_rate_skb_delivered(&mut tp.rate, s, &mut sack.rate);
        // What the rest of the loop reads of the skb, taken before it is
        // freed in place (no move of the whole TxSkb out of the queue).
        let (seq, end_seq, sacked, sent_at, syn, truesize) = (
            s.seq,
            s.end_seq,
            s.sacked,
            s.sent_at,
            s.flags.contains(TcpFlags::SYN),
            s.truesize(),
        );
        drop(tp.write_queue.pop_front());
        tp.packets_out -= 1;
        acked += 1;
        let sent = sent_at.map_or(0, Instant::as_micros);
        if sacked & (TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS) != 0 {
            if sacked & TCPCB_SACKED_RETRANS != 0 {
                tp.retrans_out = tp.retrans_out.saturating_sub(1);
            }
            flag |= FLAG_RETRANS_DATA_ACKED;
        } else if sacked & TCPCB_SACKED_ACKED == 0 {
            last_ackt = Some(sent);
            if first_ackt.is_none() {
                first_ackt = last_ackt;
            }
            if before(seq, reord) {
                reord = seq;
            }
            if !after(end_seq, tp.recovery.high_seq) {
                flag |= FLAG_ORIG_SACK_ACKED;
            }
        }
        if sacked & TCPCB_SACKED_ACKED != 0 {
            tp.sacked_out = tp.sacked_out.saturating_sub(1);
        } else if tcp_is_sack(tp) {
            tp.delivered = tp.delivered.wrapping_add(1);
            let spurious = sacked & TCPCB_EVER_RETRANS != 0
                && tp.rx_opt.saw_tstamp
                && tp.rx_opt.rcv_tsecr != 0
                && sent_at.is_some_and(|t| before(tp.rx_opt.rcv_tsecr, tp.tcp_time_stamp(t)));
            if !spurious {
                crate::tcp_rack::tcp_rack_advance(
                    tp,
                    now,
                    sacked & (TCPCB_SACKED_RETRANS | TCPCB_EVER_RETRANS) != 0,
                    end_seq,
                    sent,
                );
            }
        }
        if sacked & TCPCB_LOST != 0 {
            tp.lost_out = tp.lost_out.saturating_sub(1);
        }
        if syn {
            flag |= FLAG_SYN_ACKED;
        } else {
            flag |= FLAG_DATA_ACKED;
        }
        tp.wmem_queued = tp.wmem_queued.saturating_sub(truesize);
    }
    if tp.write_queue.is_empty() && tp.write_queue.capacity() > 0 {
        tp.write_queue.free();
    }
    if tp.packets_out > 0
        && tp
            .write_queue
            .front()
            .is_some_and(|s| s.sacked & TCPCB_SACKED_ACKED != 0)
    {
        flag |= FLAG_SACK_RENEGING;
    }
    // tcp_ack_update_rtt(): the cumulative ACK, else the SACKs, else the
    // echoed timestamp.
    let now_us = now.as_micros();
    let mut seq_rtt_us: Option<i64> = None;
    let mut ca_rtt_us: Option<i64> = None;
    if let (Some(first), Some(last)) = (first_ackt, last_ackt)
        && flag & FLAG_RETRANS_DATA_ACKED == 0
    {
        seq_rtt_us = Some(now_us.saturating_sub(first) as i64);
        ca_rtt_us = Some(now_us.saturating_sub(last) as i64);
    }
    let mut sack_rtt_us = None;
    if let (Some(first), Some(last)) = (sack.first_sackt, sack.last_sackt) {
        sack_rtt_us = Some(now_us.saturating_sub(first) as i64);
        ca_rtt_us = Some(now_us.saturating_sub(last) as i64);
    }
    if seq_rtt_us.is_none() {
        seq_rtt_us = sack_rtt_us;
    }
    if seq_rtt_us.is_none()
        && tp.rx_opt.saw_tstamp
        && tp.rx_opt.rcv_tsecr != 0
        && flag & FLAG_ACKED != 0
    {
        let delta = tp.tcp_time_stamp(now).wrapping_sub(tp.rx_opt.rcv_tsecr) as i32;
        if delta >= 0 {
            seq_rtt_us = Some(i64::from(delta) * 1000);
            ca_rtt_us = seq_rtt_us;
        }
    }
    // A lone runt ACKed alone with nothing SACKed is likely a delayed
    // ACK: its RTT must not lower the min-RTT filter's future.
    if acked == 1
        && prior_sacked == 0
        && tp.snd_una.wrapping_sub(prior_snd_una)
            < u32::from(tp.mss_cache.min(tp.ack.rcv_mss.max(1)))
        && sack.rate.prior_delivered.wrapping_add(1) == tp.delivered
        && flag & (FLAG_CA_ALERT | FLAG_SYN_ACKED) == 0
    {
        flag |= FLAG_ACK_MAYBE_DELAYED;
    }
    let rtt_update = tcp_ack_update_rtt(ctx, tp, flag, seq_rtt_us, ca_rtt_us, &mut sack.rate);
    if flag & FLAG_ACKED != 0 {
        flag |= FLAG_SET_XMIT_TIMER;
        if !tcp_is_sack(tp) {
            tcp_remove_reno_sacks(ctx, tp, acked);
            // Without SACK bits, progress may be due to a retransmission.
            if flag & FLAG_RETRANS_DATA_ACKED != 0 {
                flag &= !FLAG_ORIG_SACK_ACKED;
            }
        } else if before(reord, prior_fack) {
            // A never-retransmitted hole got filled: reordering.
            tcp_check_sack_reordering(ctx, tp, reord, false);
        }
    } else if rtt_update
        && let Some(sack_rtt) = sack_rtt_us
        && let Some(head_sent) = tp.write_queue.front().and_then(|s| s.sent_at)
        && tp.packets_out > 0
        && sack_rtt > now_us.saturating_sub(head_sent.as_micros()) as i64
    {
        // The SACK RTT comes from data sent before the head was last
        // (re)sent: re-arm, else the timer could be pushed out forever.
        flag |= FLAG_SET_XMIT_TIMER;
    }
    if flag & FLAG_ACKED != 0 {
        tp.ca_ops
            .pkts_acked(&mut tp.cwnd, acked, ca_rtt_us.unwrap_or(-1));
    }
    (flag, acked)
}

/// Takes one RTT sample into the windowed minimum (from the newest
/// segment delivered, `ca_rtt_us`) and the SRTT/RTO estimator (from the
/// oldest, `seq_rtt_us`), and records it in the rate sample. Returns
/// whether there was a sample. Mirrors `tcp_ack_update_rtt()` with
/// `tcp_update_rtt_min()`.
pub(crate) fn tcp_ack_update_rtt<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    flag: u32,
    seq_rtt_us: Option<i64>,
    ca_rtt_us: Option<i64>,
    rs: &mut RateSample,
) -> bool {
    rs.rtt_us = ca_rtt_us.unwrap_or(-1);
    let Some(seq_rtt) = seq_rtt_us else {
        return false;
    };
    let ca_rtt = ca_rtt_us.unwrap_or(seq_rtt).max(0);
    let wlen = ctx.sysctl().get_int(Sysctl::TCP_MIN_RTT_WLEN).max(0) as u32;
    let now_ms = ctx.now().as_millis() as u32;
    tcp_update_rtt_min(
        tp,
        wlen,
        now_ms,
        u32::try_from(ca_rtt).unwrap_or(u32::MAX),
        flag & FLAG_ACK_MAYBE_DELAYED != 0,
    );
    tcp_rtt_estimator(ctx, tp, seq_rtt);
    tp.backoff = 0;
    true
}

/// Arms the loss probe, else the RTO. Mirrors `tcp_set_xmit_timer()`.
fn tcp_set_xmit_timer<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if !crate::tcp_recovery::tcp_schedule_loss_probe(ctx, tp, true) {
        crate::tcp_recovery::tcp_rearm_rto(ctx, tp);
    }
}

/// Whether the ACK needs the slow path of loss recovery: a duplicate,
/// SACK or D-SACK information, or a state other than Open. Mirrors
/// `tcp_ack_is_dubious()`.
fn tcp_ack_is_dubious(tp: &TcpSock, flag: u32) -> bool {
    flag & FLAG_NOT_DUP == 0 || flag & FLAG_CA_ALERT != 0 || tp.ca_state != TcpCaState::Open
}

/// Processes an incoming ACK. Mirrors `tcp_ack()`: RFC 5961 §5.2 (an ACK
/// beyond `snd_nxt`, or older than `snd_una - max_window`, gets a challenge
/// ACK and is dropped), the window update, SACK tagging, cleaning the
/// queue, RACK's reordering window, the loss probe's end, loss recovery
/// (`tcp_fastretrans_alert()`), the timers, cwnd (`tcp_cong_control()`)
/// and the retransmissions recovery asks for (`tcp_xmit_recovery()`).
fn tcp_ack<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
    mut flag: u32,
) -> AckResult {
    let now = ctx.now();
    let prior_snd_una = tp.snd_una;
    let ack = seg.ack_seq;
    let prior_packets = tp.packets_out;
    let prior_delivered = tp.delivered;
    let prior_lost = tp.recovery.lost;
    let is_sack_reneg = tp.recovery.is_sack_reneg;
    let mut sack_state = TcpSacktagState::default();
    let mut rexmit = Rexmit::None;
    tp.cwnd.tcp_mstamp = now.as_micros();
    if before(ack, prior_snd_una) {
        // RFC 5961 §5.2 with the window bounded by what was ever acked.
        let max_window = u64::from(tp.max_window).min(tp.bytes_acked) as u32;
        if before(ack, prior_snd_una.wrapping_sub(max_window)) {
            if flag & FLAG_NO_CHALLENGE_ACK == 0 {
                tcp_send_challenge_ack(stack, ctx, tp);
            }
            return AckResult::Drop(DropReason::TcpTooOldAck);
        }
        // old_ack: SACK information still counts.
        if !seg.opts.sack_blocks.is_empty() {
            flag |= tcp_sacktag_write_queue(ctx, tp, seg, prior_snd_una, &mut sack_state);
            tp.delivered = tp.delivered.wrapping_add(sack_state.sack_delivered);
            tcp_fastretrans_alert(ctx, tp, prior_snd_una, 0, &mut flag, &mut rexmit);
            tcp_xmit_recovery(ctx, tp, rexmit);
        }
        return AckResult::Old;
    }
    if after(ack, tp.snd_nxt) {
        if flag & FLAG_NO_CHALLENGE_ACK == 0 {
            tcp_send_challenge_ack(stack, ctx, tp);
        }
        return AckResult::Drop(DropReason::TcpAckUnsentData);
    }
    if after(ack, prior_snd_una) {
        flag |= FLAG_SND_UNA_ADVANCED;
        tp.retransmits = 0;
    }
    let prior_fack = if tcp_is_sack(tp) {
        tcp_highest_sack_seq(tp)
    } else {
        tp.snd_una
    };
    if flag & FLAG_UPDATE_TS_RECENT != 0
        && tp.rx_opt.saw_tstamp
        && !after(seg.seq, tp.rcv_wup)
        && tcp_paws_check(tp, 0, now)
    {
        tcp_store_ts_recent(tp, now);
    }
    if flag & FLAG_SLOWPATH == 0 && after(ack, prior_snd_una) {
        // Header prediction matched: the window is the one we hold, a pure
        // forward advance (tcp_update_wl()).
        tp.snd_wl1 = seg.seq;
        flag |= FLAG_WIN_UPDATE;
        ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpHpAcks);
    } else {
        if seg.seq == seg.end_seq {
            ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpPureAcks);
        } else {
            flag |= FLAG_DATA;
        }
        // tcp_ack_update_window()
        let mut nwin = u32::from(seg.window);
        if !seg.has(TcpFlags::SYN) {
            nwin <<= tp.rx_opt.snd_wscale;
        }
        if crate::tcp_ecn::tcp_ecn_rcv_ecn_echo(tp, seg.flags) {
            flag |= FLAG_ECE;
        }
        if tcp_may_update_window(tp, ack, seg.seq, nwin) {
            flag |= FLAG_WIN_UPDATE;
            tp.snd_wl1 = seg.seq;
            if tp.snd_wnd != nwin {
                tp.snd_wnd = nwin;
                // The only place the fast path comes back for a sender.
                tp.pred_flags = 0;
                tcp_fast_path_check(tp);
                if nwin > tp.max_window {
                    tp.max_window = nwin;
                    let pmtu = tp.pmtu;
                    tcp_sync_mss(tp, pmtu, ctx.sysctl());
                }
            }
        }
    }
    if after(ack, tp.snd_una) {
        tp.bytes_acked += u64::from(ack.wrapping_sub(tp.snd_una));
    }
    tp.snd_una = ack;
    // The urgent point acknowledged: urgent mode ends (tcp_clean_rtx_queue()
    // moving snd_up along with snd_una).
    if tp.snd_up.is_some_and(|up| !after(up, ack)) {
        tp.snd_up = None;
    }
    // What the congestion controller reads of the socket (tcp_mstamp,
    // snd_una, snd_nxt) is current for this ACK.
    tp.cwnd.snd_una = tp.snd_una;
    tp.cwnd.snd_nxt = tp.snd_nxt;
    if !seg.opts.sack_blocks.is_empty() {
        flag |= tcp_sacktag_write_queue(ctx, tp, seg, prior_snd_una, &mut sack_state);
    }
    tp.delivered = tp.delivered.wrapping_add(sack_state.sack_delivered);
    // Linux takes CWR from any segment, pure ACKs included.
    if tp.ecn_flags != 0 {
        crate::tcp_ecn::tcp_ecn_accept_cwr(tp, seg);
    }
    tp.rcv_tstamp = now;
    tp.last_ack_recv = now;
    tp.probes_out = 0;
    if prior_packets == 0 {
        // no_queue: a D-SACK may still undo; an ACK that opens the
        // window ends the probing.
        if flag & FLAG_DSACKING_ACK != 0 {
            tcp_fastretrans_alert(ctx, tp, prior_snd_una, 0, &mut flag, &mut rexmit);
        }
        tcp_ack_probe(ctx, tp);
        if tp.recovery.tlp_high_seq.is_some() {
            tcp_process_tlp_ack(ctx, tp, ack, flag);
        }
        return AckResult::Ok;
    }
    sack_state.rate.prior_in_flight = tp.packets_in_flight();
    sack_state.flag = flag & FLAG_CA_ALERT;
    let (cflag, _acked) =
        tcp_clean_rtx_queue(ctx, tp, now, prior_fack, prior_snd_una, &mut sack_state);
    flag |= cflag;
    crate::tcp_rack::tcp_rack_update_reo_wnd(ctx, tp, &sack_state.rate);
    if tp.recovery.tlp_high_seq.is_some() {
        tcp_process_tlp_ack(ctx, tp, ack, flag);
    }
    if tp.retrans_out == 0 && flag & FLAG_SND_UNA_ADVANCED != 0 {
        tp.retrans_stamp.set(None);
    }
    if tcp_ack_is_dubious(tp, flag) {
        let num_dupack =
            u32::from(flag & (FLAG_SND_UNA_ADVANCED | FLAG_NOT_DUP | FLAG_DSACKING_ACK) == 0);
        tcp_fastretrans_alert(ctx, tp, prior_snd_una, num_dupack, &mut flag, &mut rexmit);
    }
    // Re-arm the loss probe or the RTO unless RACK armed its timer.
    if flag & FLAG_SET_XMIT_TIMER != 0 {
        tcp_set_xmit_timer(ctx, tp);
    }
    let delivered = tcp_newly_delivered(ctx, tp, prior_delivered, flag);
    let losses = tp.recovery.lost.wrapping_sub(prior_lost);
    let mut rs = sack_state.rate;
    rs.is_ack_delayed = flag & FLAG_ACK_MAYBE_DELAYED != 0;
    tcp_rate_gen(
        tp,
        delivered,
        losses,
        is_sack_reneg,
        now.as_micros(),
        &mut rs,
    );
    tcp_cong_control(ctx, tp, ack, delivered, flag, &rs);
    // trace_tcp_probe(): built only when someone records it.
    if ctx.trace_tcp_probe_enabled() {
        let sample = crate::tcp_probe::tcp_probe_sample(tp, now, &rs);
        ctx.tcp_probe(&sample);
    }
    tcp_xmit_recovery(ctx, tp, rexmit);
    AckResult::Ok
}

/// Segments this ACK delivered (cumulatively or by SACK), counted in
/// `TCPDelivered`, and in `TCPDeliveredCE` and `delivered_ce` when the
/// ACK echoed congestion. Mirrors `tcp_newly_delivered()` with the
/// `ece_ack` part of `tcp_count_delivered()`.
#[inline]
fn tcp_newly_delivered<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    prior_delivered: u32,
    flag: u32,
) -> u32 {
    let delivered = tp.delivered.wrapping_sub(prior_delivered);
    if delivered > 0 {
        let mibs = ctx.mibs().this_cpu(ctx.cpu());
        mibs.add(LinuxMib::TcpDelivered, u64::from(delivered));
        if flag & FLAG_ECE != 0 {
            mibs.add(LinuxMib::TcpDeliveredCe, u64::from(delivered));
            tp.recovery.delivered_ce = tp.recovery.delivered_ce.wrapping_add(delivered);
        }
    }
    delivered
}

/// Hands `tcp_process_tlp_ack()` the ACK's flags.
fn tcp_process_tlp_ack<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, ack: u32, flag: u32) {
    let tlp_flags = crate::tcp_recovery::TlpAckFlags {
        snd_una_advanced: flag & FLAG_SND_UNA_ADVANCED != 0,
        not_dup: flag & FLAG_NOT_DUP != 0,
        data_sacked: flag & FLAG_DATA_SACKED != 0,
        dsack_tlp: flag & FLAG_DSACK_TLP != 0,
    };
    crate::tcp_recovery::tcp_process_tlp_ack(ctx, tp, ack, &tlp_flags);
}

/// Grows cwnd, or shrinks it by PRR while in CWR or Recovery. Mirrors
/// `tcp_cong_control()` with `tcp_may_raise_cwnd()`: a controller with
/// its own `cong_control` gets the ACK and its rate sample and decides
/// alone; otherwise, with reordering above the sysctl any forward
/// progress grows cwnd, else only a cumulative ACK of new data (RFC
/// 5681).
fn tcp_cong_control<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    ack: u32,
    acked_sacked: u32,
    flag: u32,
    rs: &RateSample,
) {
    if tp.ca_ops.cong_control(&mut tp.cwnd, ack, rs) {
        return;
    }
    if matches!(tp.ca_state, TcpCaState::Cwr | TcpCaState::Recovery) {
        tcp_cwnd_reduction(tp, acked_sacked, rs.losses, flag);
        return;
    }
    let sysctl_reordering = ctx.sysctl().get_int(Sysctl::TCP_REORDERING).max(1) as u32;
    let may_raise = if tp.reordering > sysctl_reordering {
        flag & FLAG_FORWARD_PROGRESS != 0
    } else {
        flag & FLAG_DATA_ACKED != 0
    };
    if may_raise {
        tp.ca_ops.cong_avoid(&mut tp.cwnd, ack, acked_sacked);
    }
}

/// What recovery asks `tcp_ack()` to send. Mirrors `REXMIT_NONE`,
/// `REXMIT_LOST`, `REXMIT_NEW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rexmit {
    /// Nothing.
    None,
    /// Retransmit the segments marked lost.
    Lost,
    /// F-RTO: send new data.
    New,
}

/// Sends what recovery asked for: new data for F-RTO (which ends F-RTO
/// if none could go), then the lost segments. Mirrors
/// `tcp_xmit_recovery()`.
fn tcp_xmit_recovery<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, rexmit: Rexmit) {
    if rexmit == Rexmit::None || tp.state == TcpState::SynSent {
        return;
    }
    if rexmit == Rexmit::New {
        tcp_push_pending_frames(ctx, tp, crate::tcp_output::TCP_NAGLE_OFF);
        if after(tp.snd_nxt, tp.recovery.high_seq) {
            return;
        }
        tp.recovery.frto = false;
    }
    tcp_xmit_retransmit_queue(ctx, tp);
}

/// An ACK with nothing in flight: if the window now takes the head, stop
/// probing; else re-arm the probe timer. Mirrors `tcp_ack_probe()`.
fn tcp_ack_probe<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let idx = tp.packets_out as usize;
    let Some(head) = tp.write_queue.get(idx) else {
        return;
    };
    if !crate::tcp_timer::icsk_pending_is(tp, TcpTimer::Probe0(tp.id)) {
        return;
    }
    let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
    if after(head.end_seq, wnd_end) {
        let when = (crate::tcp_output::tcp_probe0_base(tp) * (1u32 << tp.backoff.min(20)))
            .min(tp.rto_max());
        let id = tp.id;
        crate::tcp_timer::tcp_reset_xmit_timer(ctx, tp, TcpTimer::Probe0(id), when);
    } else {
        tp.backoff = 0;
        tp.probes_out = 0;
        let id = tp.id;
        crate::tcp_timer::inet_csk_clear_xmit_timer(ctx, tp, TcpTimer::Probe0(id));
    }
}

/// Starts a cwnd reduction episode: `high_seq`, `prior_cwnd`, PRR's
/// counters, ssthresh from the controller. Mirrors
/// `tcp_init_cwnd_reduction()`.
pub(crate) fn tcp_init_cwnd_reduction(tp: &mut TcpSock) {
    tp.recovery.high_seq = tp.snd_nxt;
    tp.recovery.tlp_high_seq = None;
    tp.cwnd.snd_cwnd_cnt = 0;
    tp.recovery.prior_cwnd = tp.cwnd.snd_cwnd;
    tp.recovery.prr_delivered = 0;
    tp.recovery.prr_out = 0;
    let ss = tp.ca_ops.ssthresh(&tp.cwnd);
    tp.cwnd.snd_ssthresh = ss;
    crate::tcp_ecn::tcp_ecn_queue_cwr(tp);
}

/// The peer echoed a CE mark: reduce cwnd once, through CWR (PRR down to
/// the controller's ssthresh), unless a reduction is already under way;
/// no undo for it. Mirrors `tcp_enter_cwr()`.
pub(crate) fn tcp_enter_cwr(tp: &mut TcpSock) {
    tp.recovery.prior_ssthresh = 0;
    if (tp.ca_state as u8) < (TcpCaState::Cwr as u8) {
        tp.recovery.undo_marker = None;
        tcp_init_cwnd_reduction(tp);
        tcp_set_ca_state(tp, TcpCaState::Cwr);
    }
}

/// Ends a reduction: cwnd set to ssthresh in CWR or Recovery (unless it
/// was undone). Mirrors `tcp_end_cwnd_reduction()`.
pub(crate) fn tcp_end_cwnd_reduction(tp: &mut TcpSock) {
    if tp.cwnd.snd_ssthresh < crate::tcp_cong::TCP_INFINITE_SSTHRESH
        && (tp.ca_state == TcpCaState::Cwr || tp.recovery.undo_marker.is_some())
    {
        tp.cwnd.snd_cwnd = tp.cwnd.snd_ssthresh;
    }
    tp.ca_ops.cwnd_event(&mut tp.cwnd, CaEvent::CompleteCwr);
}

/// Enters fast recovery. Mirrors `tcp_enter_recovery()`. Counters:
/// `TCPSackRecovery` / `TCPRenoRecovery`.
pub(crate) fn tcp_enter_recovery<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, ece_ack: bool) {
    // The clock for undo and ETIMEDOUT starts with the fast retransmit.
    tp.retrans_stamp.set(None);
    tp.recovery.first_retrans_at = 0;
    let mib = if tcp_is_sack(tp) {
        LinuxMib::TcpSackRecovery
    } else {
        LinuxMib::TcpRenoRecovery
    };
    ctx.mibs().this_cpu(ctx.cpu()).inc(mib);
    tp.recovery.prior_ssthresh = 0;
    tcp_init_undo(tp);
    if !matches!(tp.ca_state, TcpCaState::Cwr | TcpCaState::Recovery) {
        if !ece_ack {
            tp.recovery.prior_ssthresh =
                crate::tcp_cong::tcp_current_ssthresh(&tp.cwnd, tp.ca_state);
        }
        tcp_init_cwnd_reduction(tp);
    }
    tcp_set_ca_state(tp, TcpCaState::Recovery);
}

/// Stays Open, or Disorder while SACKed, lost or retransmitted segments
/// remain. Mirrors `tcp_try_keep_open()`.
pub(crate) fn tcp_try_keep_open(tp: &mut TcpSock) {
    let state = if tcp_left_out(tp) > 0 || tcp_any_retrans_done(tp) {
        TcpCaState::Disorder
    } else {
        TcpCaState::Open
    };
    if tp.ca_state != state {
        tcp_set_ca_state(tp, state);
        tp.recovery.high_seq = tp.snd_nxt;
    }
}

/// No recovery needed yet; an ECN echo (`FLAG_ECE` in `flag`) reduces
/// cwnd through CWR. Mirrors `tcp_try_to_open()`.
fn tcp_try_to_open(tp: &mut TcpSock, flag: u32) {
    if !tcp_any_retrans_done(tp) {
        tp.retrans_stamp.set(None);
        tp.recovery.first_retrans_at = 0;
    }
    if flag & FLAG_ECE != 0 {
        tcp_enter_cwr(tp);
    }
    if tp.ca_state != TcpCaState::Cwr {
        tcp_try_keep_open(tp);
    }
}

/// Recovery ended at `high_seq`: undo if it was spurious (`TCPFullUndo`,
/// `TCPLossUndo`), and go Open. Returns true when a NewReno connection
/// must hold the state until something above `high_seq` is acked.
/// Mirrors `tcp_try_undo_recovery()`.
fn tcp_try_undo_recovery<C: TcpContext>(ctx: &C, tp: &mut TcpSock) -> bool {
    if tcp_may_undo(tp) {
        let mib = if tp.ca_state == TcpCaState::Loss {
            LinuxMib::TcpLossUndo
        } else {
            LinuxMib::TcpFullUndo
        };
        tcp_undo_cwnd_reduction(tp, false);
        ctx.mibs().this_cpu(ctx.cpu()).inc(mib);
    } else if tp.rack.reo_wnd_persist > 0 {
        tp.rack.reo_wnd_persist -= 1;
    }
    if tcp_is_non_sack_preventing_reopen(tp) {
        return true;
    }
    tcp_set_ca_state(tp, TcpCaState::Open);
    tp.recovery.is_sack_reneg = false;
    false
}

/// Without SACK, an ACK exactly at `high_seq` keeps the state until
/// something above it is acked (RFC 6582: no false fast retransmit from
/// the duplicate ACKs still to come). Mirrors
/// `tcp_is_non_sack_preventing_reopen()`.
fn tcp_is_non_sack_preventing_reopen(tp: &mut TcpSock) -> bool {
    if tp.snd_una == tp.recovery.high_seq && !tcp_is_sack(tp) {
        if !tcp_any_retrans_done(tp) {
            tp.retrans_stamp.set(None);
            tp.recovery.first_retrans_at = 0;
        }
        return true;
    }
    false
}

/// Every retransmission of the episode was D-SACKed: undo
/// (`TCPDSACKUndo`). Mirrors `tcp_try_undo_dsack()`.
fn tcp_try_undo_dsack<C: TcpContext>(ctx: &C, tp: &mut TcpSock) -> bool {
    if tp.recovery.undo_marker.is_some() && tp.recovery.undo_retrans == 0 {
        tp.rack.reo_wnd_persist =
            (tp.rack.reo_wnd_persist + 1).min(crate::tcp_rack::TCP_RACK_RECOVERY_THRESH);
        tcp_undo_cwnd_reduction(tp, false);
        ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpDsackUndo);
        return true;
    }
    false
}

/// A partial ACK in Recovery: if it answers an original (timestamps), the
/// hole was reordering — undo when nothing retransmitted is in flight
/// (`TCPPartialUndo`); otherwise the next hole may need a fast
/// retransmit. Returns true to stop further processing. Mirrors
/// `tcp_try_undo_partial()`.
fn tcp_try_undo_partial<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    prior_snd_una: u32,
    do_lost: &mut bool,
) -> bool {
    if tp.recovery.undo_marker.is_some() && tcp_packet_delayed(tp) {
        tcp_check_sack_reordering(ctx, tp, prior_snd_una, true);
        if tp.retrans_out > 0 {
            return true;
        }
        if !tcp_any_retrans_done(tp) {
            tp.retrans_stamp.set(None);
            tp.recovery.first_retrans_at = 0;
        }
        tcp_undo_cwnd_reduction(tp, true);
        ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpPartialUndo);
        tcp_try_keep_open(tp);
    } else {
        *do_lost = tcp_force_fast_retransmit(tp);
    }
    false
}

/// In Loss: undo on an ACK of an original (`frto_undo` when F-RTO proved
/// the timeout spurious). Counters: `TCPLossUndo`, `TCPSpuriousRTOs`.
/// Mirrors `tcp_try_undo_loss()`.
fn tcp_try_undo_loss<C: TcpContext>(ctx: &C, tp: &mut TcpSock, frto_undo: bool) -> bool {
    if frto_undo || tcp_may_undo(tp) {
        tcp_undo_cwnd_reduction(tp, true);
        let cpu = ctx.cpu();
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpLossUndo);
        if frto_undo {
            ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpSpuriousRtos);
        }
        tp.retransmits = 0;
        if tcp_is_non_sack_preventing_reopen(tp) {
            return true;
        }
        if frto_undo || tcp_is_sack(tp) {
            tcp_set_ca_state(tp, TcpCaState::Open);
            tp.recovery.is_sack_reneg = false;
        }
        return true;
    }
    false
}

/// An ACK in the Loss state, with F-RTO (RFC 5682 §3.1, the SACK
/// version): an ACK of never-retransmitted data proves the timeout
/// spurious; a first new ACK lets new data go out (step 2.b) before
/// deciding. Mirrors `tcp_process_loss()`.
fn tcp_process_loss<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    flag: u32,
    num_dupack: u32,
    rexmit: &mut Rexmit,
) {
    let recovered = !before(tp.snd_una, tp.recovery.high_seq);
    if flag & FLAG_SND_UNA_ADVANCED != 0 && tcp_try_undo_loss(ctx, tp, false) {
        return;
    }
    if tp.recovery.frto {
        // Step 3.b: never-retransmitted data (s)acked: spurious timeout.
        if flag & FLAG_ORIG_SACK_ACKED != 0 && tcp_try_undo_loss(ctx, tp, true) {
            return;
        }
        if after(tp.snd_nxt, tp.recovery.high_seq) {
            if flag & FLAG_DATA_SACKED != 0 || num_dupack > 0 {
                // Step 3.a: the loss was real.
                tp.recovery.frto = false;
            }
        } else if flag & FLAG_SND_UNA_ADVANCED != 0 && !recovered {
            tp.recovery.high_seq = tp.snd_nxt;
            // Step 2.b: send new data if any may go, else fall back.
            let unsent = tp.write_queue.len() > tp.packets_out as usize;
            let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
            if unsent && after(wnd_end, tp.snd_nxt) {
                *rexmit = Rexmit::New;
                return;
            }
            tp.recovery.frto = false;
        }
    }
    if recovered {
        // Step 2.a and the first part of 3.a.
        tcp_try_undo_recovery(ctx, tp);
        return;
    }
    if !tcp_is_sack(tp) {
        if after(tp.snd_nxt, tp.recovery.high_seq) && num_dupack > 0 {
            tcp_add_reno_sack(ctx, tp, num_dupack);
        } else if flag & FLAG_SND_UNA_ADVANCED != 0 {
            tp.sacked_out = 0;
        }
    }
    *rexmit = Rexmit::Lost;
}

/// The highest SACK is more than `reordering` segments above `snd_una`.
/// Mirrors `tcp_force_fast_retransmit()`.
fn tcp_force_fast_retransmit(tp: &TcpSock) -> bool {
    after(
        tcp_highest_sack_seq(tp),
        tp.snd_una
            .wrapping_add(tp.reordering.saturating_mul(u32::from(tp.mss_cache))),
    )
}

/// Marks losses: NewReno's head rule without SACK, RACK with it. Mirrors
/// `tcp_identify_packet_loss()`.
fn tcp_identify_packet_loss<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, ack_flag: &mut u32) {
    if tp.packets_out == 0 || tp.write_queue.is_empty() {
        return;
    }
    if !tcp_is_sack(tp) {
        crate::tcp_rack::tcp_newreno_mark_lost(ctx, tp, *ack_flag & FLAG_SND_UNA_ADVANCED != 0);
    } else if crate::tcp_rack::tcp_is_rack(ctx) {
        let prior_retrans = tp.retrans_out;
        if crate::tcp_rack::tcp_rack_mark_lost(ctx, tp) {
            *ack_flag &= !FLAG_SET_XMIT_TIMER;
        }
        if prior_retrans > tp.retrans_out {
            *ack_flag |= FLAG_LOST_RETRANS;
        }
    }
}

/// Whether to start fast recovery: a loss is proven, or (without RACK)
/// more than `reordering` segments were SACKed. Mirrors
/// `tcp_time_to_recover()`.
fn tcp_time_to_recover<C: TcpContext>(ctx: &C, tp: &TcpSock) -> bool {
    if tp.lost_out > 0 {
        return true;
    }
    !crate::tcp_rack::tcp_is_rack(ctx) && tp.sacked_out + 1 > tp.reordering
}

/// The receiver dropped data it had SACKed: wait a little for it to
/// recover before the RTO logic takes over. Mirrors
/// `tcp_check_sack_reneging()`.
fn tcp_check_sack_reneging<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    ack_flag: &mut u32,
) -> bool {
    if *ack_flag & FLAG_SACK_RENEGING != 0 && *ack_flag & FLAG_SND_UNA_ADVANCED != 0 {
        let delay =
            Duration::from_micros(u64::from(tp.srtt_us >> 4)).max(Duration::from_millis(10));
        let id = tp.id;
        crate::tcp_timer::tcp_reset_xmit_timer(ctx, tp, TcpTimer::Retransmit(id), delay);
        *ack_flag &= !FLAG_SET_XMIT_TIMER;
        return true;
    }
    false
}

/// Loss recovery on dubious ACKs: the state machine of Open, Disorder,
/// CWR, Recovery and Loss. Mirrors `tcp_fastretrans_alert()`: exits at
/// `high_seq` (with undo), partial ACKs and D-SACK undo in Recovery,
/// F-RTO in Loss, and losses found by RACK (or NewReno's duplicate ACKs,
/// or the SACK scoreboard with `tcp_recovery=0`) starting Recovery; the
/// retransmissions themselves follow in `tcp_xmit_recovery()`.
fn tcp_fastretrans_alert<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    prior_snd_una: u32,
    num_dupack: u32,
    ack_flag: &mut u32,
    rexmit: &mut Rexmit,
) {
    let flag = *ack_flag;
    let mut do_lost =
        num_dupack > 0 || (flag & FLAG_DATA_SACKED != 0 && tcp_force_fast_retransmit(tp));
    let mut fast_rexmit = false;
    if tp.packets_out == 0 && tp.sacked_out > 0 {
        tp.sacked_out = 0;
    }
    // B. Reneging SACKs.
    if tcp_check_sack_reneging(ctx, tp, ack_flag) {
        return;
    }
    // D. State exits when high_seq is acked.
    if tp.ca_state == TcpCaState::Open {
        tp.retrans_stamp.set(None);
        tp.recovery.first_retrans_at = 0;
    } else if !before(tp.snd_una, tp.recovery.high_seq) {
        match tp.ca_state {
            // CWR is held until something above high_seq is acked.
            TcpCaState::Cwr if tp.snd_una != tp.recovery.high_seq => {
                tcp_end_cwnd_reduction(tp);
                tcp_set_ca_state(tp, TcpCaState::Open);
            }
            TcpCaState::Recovery => {
                if !tcp_is_sack(tp) {
                    tp.sacked_out = 0;
                }
                if tcp_try_undo_recovery(ctx, tp) {
                    return;
                }
                tcp_end_cwnd_reduction(tp);
            }
            _ => {}
        }
    }
    // E. Process the state.
    let mut enter_recovery = false;
    match tp.ca_state {
        TcpCaState::Recovery => {
            if flag & FLAG_SND_UNA_ADVANCED == 0 {
                if !tcp_is_sack(tp) {
                    tcp_add_reno_sack(ctx, tp, num_dupack);
                }
            } else if tcp_try_undo_partial(ctx, tp, prior_snd_una, &mut do_lost) {
                return;
            }
            if tcp_try_undo_dsack(ctx, tp) {
                tcp_try_to_open(tp, flag);
            }
            tcp_identify_packet_loss(ctx, tp, ack_flag);
            if tp.ca_state != TcpCaState::Recovery {
                if !tcp_time_to_recover(ctx, tp) {
                    return;
                }
                // Undone, but a loss is evident: a new recovery.
                tcp_enter_recovery(ctx, tp, flag & FLAG_ECE != 0);
            }
        }
        TcpCaState::Loss => {
            tcp_process_loss(ctx, tp, flag, num_dupack, rexmit);
            tcp_identify_packet_loss(ctx, tp, ack_flag);
            if tp.ca_state == TcpCaState::Open || *ack_flag & FLAG_LOST_RETRANS != 0 {
                // Undone, or retransmissions were lost: decide afresh.
                enter_recovery = tcp_open_state(ctx, tp, flag, num_dupack, ack_flag);
                if !enter_recovery {
                    return;
                }
                fast_rexmit = true;
            } else {
                return;
            }
        }
        _ => {
            enter_recovery = tcp_open_state(ctx, tp, flag, num_dupack, ack_flag);
            if !enter_recovery {
                return;
            }
            fast_rexmit = true;
        }
    }
    let _ = enter_recovery;
    if !crate::tcp_rack::tcp_is_rack(ctx) && do_lost {
        tcp_update_scoreboard(ctx, tp, fast_rexmit);
    }
    *rexmit = Rexmit::Lost;
}

/// The `default:` arm of `tcp_fastretrans_alert()` (Open, Disorder, CWR):
/// NewReno's duplicate-ACK count, D-SACK undo, loss detection, and
/// Recovery when it is time (returns true, having entered it).
fn tcp_open_state<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    flag: u32,
    num_dupack: u32,
    ack_flag: &mut u32,
) -> bool {
    if !tcp_is_sack(tp) {
        if flag & FLAG_SND_UNA_ADVANCED != 0 {
            tp.sacked_out = 0;
        }
        tcp_add_reno_sack(ctx, tp, num_dupack);
    }
    if matches!(tp.ca_state, TcpCaState::Open | TcpCaState::Disorder) {
        tcp_try_undo_dsack(ctx, tp);
    }
    tcp_identify_packet_loss(ctx, tp, ack_flag);
    if !tcp_time_to_recover(ctx, tp) {
        tcp_try_to_open(tp, flag);
        return false;
    }
    tcp_enter_recovery(ctx, tp, flag & FLAG_ECE != 0);
    true
}

/// Proportional Rate Reduction (RFC 6937): in CWR or Recovery, cwnd
/// follows what was delivered, sending `ssthresh/prior_cwnd` of it while
/// the flight is above ssthresh, and growing back to ssthresh at most one
/// segment beyond what was delivered below it (the slow-start reduction
/// bound, without the extra segment when this ACK marked new losses).
/// Mirrors `tcp_cwnd_reduction()`.
pub(crate) fn tcp_cwnd_reduction(
    tp: &mut TcpSock,
    newly_acked_sacked: u32,
    newly_lost: u32,
    flag: u32,
) {
    if newly_acked_sacked == 0 || tp.recovery.prior_cwnd == 0 {
        return;
    }
    let in_flight = tp.packets_in_flight();
    let ssthresh = tp.cwnd.snd_ssthresh;
    let delta = i64::from(ssthresh) - i64::from(in_flight);
    tp.recovery.prr_delivered = tp.recovery.prr_delivered.saturating_add(newly_acked_sacked);
    let sndcnt: i64 = if delta < 0 {
        let dividend = u64::from(ssthresh) * u64::from(tp.recovery.prr_delivered)
            + u64::from(tp.recovery.prior_cwnd)
            - 1;
        (dividend / u64::from(tp.recovery.prior_cwnd)) as i64 - i64::from(tp.recovery.prr_out)
    } else {
        let mut s = (i64::from(tp.recovery.prr_delivered) - i64::from(tp.recovery.prr_out))
            .max(i64::from(newly_acked_sacked));
        if flag & FLAG_SND_UNA_ADVANCED != 0 && newly_lost == 0 {
            s += 1;
        }
        s.min(delta)
    };
    // Force a fast retransmit on entering recovery.
    let sndcnt = sndcnt.max(i64::from(tp.recovery.prr_out == 0));
    tp.cwnd.snd_cwnd = (i64::from(in_flight) + sndcnt).max(1) as u32;
}

/// Updates the delayed-ACK engine when data arrives: the first data
/// grants quick ACKs, the ATO follows the inter-arrival time. Mirrors
/// `tcp_event_data_recv()` with `tcp_measure_rcv_mss()` and
/// `tcp_grow_window()`.
///
/// `gso_size` is the segment size of a GRO packet (0 for one segment);
/// `len` and `truesize` are the packet's payload and memory charge.
fn tcp_event_data_recv<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    gso_size: u32,
    len: u32,
    truesize: u32,
    ip_dsfield: u8,
) {
    let now = ctx.now();
    tp.ack.pending |= ICSK_ACK_SCHED;
    tcp_measure_rcv_mss(tp, gso_size, len, truesize);
    if tp.ack.ato().is_zero() {
        tcp_incr_quickack(tp, MAX_QUICKACKS);
        tp.ack.set_ato(TCP_ATO_MIN);
    } else {
        let m = now.saturating_duration_since(tp.ack.lrcvtime);
        if m <= TCP_ATO_MIN / 2 {
            tp.ack.set_ato(tp.ack.ato() / 2 + TCP_ATO_MIN / 2);
        } else if m < tp.ack.ato() {
            tp.ack.set_ato((tp.ack.ato() / 2 + m).min(tp.rto()));
        } else if m > tp.rto() {
            tcp_incr_quickack(tp, MAX_QUICKACKS);
        }
    }
    tp.ack.lrcvtime = now;
    tcp_rcv_rtt_measure(tp, now, len);
    crate::tcp_ecn::tcp_ecn_check_ce(tp, ip_dsfield);
    if len >= 128 {
        tcp_grow_window(ctx.sysctl(), tp, len, truesize);
    }
}

/// Learns the peer's segment size and the payload-to-memory ratio of
/// what the NIC delivers. Mirrors `tcp_measure_rcv_mss()`: the size is
/// the GRO segment size when there is one; `scaling_ratio` (len/truesize
/// in 1/256) is measured only when that size changes, and a new ratio
/// resets the window clamp to what the buffer can hold
/// (`tcp_set_window_clamp(tcp_win_from_space(sk_rcvbuf))`).
fn tcp_measure_rcv_mss(tp: &mut TcpSock, gso_size: u32, len: u32, truesize: u32) {
    let lss = u32::from(tp.ack.last_seg_size);
    tp.ack.last_seg_size = 0;
    let seg = if gso_size != 0 { gso_size } else { len };
    if seg >= u32::from(tp.ack.rcv_mss) {
        if seg != u32::from(tp.ack.rcv_mss) {
            let val = (u64::from(len) << crate::tcp_sock::TCP_RMEM_TO_WIN_SCALE)
                / u64::from(truesize.max(1));
            let old = tp.scaling_ratio;
            tp.scaling_ratio = val.clamp(1, 255) as u8;
            if old != tp.scaling_ratio {
                let clamp = crate::tcp_sock::tcp_win_from_space(tp.scaling_ratio, tp.rcvbuf);
                tcp_set_window_clamp(tp, clamp);
            }
        }
        tp.ack.rcv_mss = seg.min(u32::from(tp.advmss)) as u16;
    } else {
        if len + 40 >= lss && len >= 536 {
            tp.ack.rcv_mss = len as u16;
        }
        if tp.ack.pending & ICSK_ACK_PUSHED != 0 {
            tp.ack.pending |= crate::tcp_sock::ICSK_ACK_PUSHED2;
        }
        tp.ack.pending |= ICSK_ACK_PUSHED;
    }
    tp.ack.last_seg_size = seg.min(u32::from(u16::MAX)) as u16;
}

/// Sets the largest window to offer; shrinking it lowers `rcv_ssthresh`,
/// growing it lets `rcv_ssthresh` follow the window offered. Mirrors
/// `tcp_set_window_clamp()` for a non-zero value.
pub(crate) fn tcp_set_window_clamp(tp: &mut TcpSock, val: u32) {
    let old = tp.window_clamp;
    let new = val.max(crate::tcp_sock::SOCK_MIN_RCVBUF / 2);
    if new == old {
        return;
    }
    tp.window_clamp = new;
    if new < old {
        tp.rcv_ssthresh = tp.rcv_ssthresh.min(new);
    } else {
        tp.rcv_ssthresh = tp.rcv_ssthresh.max(tp.rcv_wnd.min(new));
    }
}

/// Raises `rcv_ssthresh` (the window offered in slow start) while
/// packets of this payload-to-memory ratio would still fit the buffer.
/// Mirrors `tcp_grow_window()` with `__tcp_grow_window()`.
fn tcp_grow_window(sysctl: &Sysctl, tp: &mut TcpSock, len: u32, truesize: u32) {
    let room = i64::from(tp.window_clamp.min(tp.tcp_space())) - i64::from(tp.rcv_ssthresh);
    if room <= 0 {
        return;
    }
    if tcp_under_memory_pressure(tp) {
        // Under tcp_mem pressure the window stops growing.
        tcp_adjust_rcv_ssthresh(tp);
        return;
    }
    let ratio = tp.scaling_ratio;
    let win = |space: u32| crate::tcp_sock::tcp_win_from_space(ratio, space);
    let incr = if win(truesize) <= len {
        2 * u32::from(tp.advmss)
    } else {
        // Check #2: an skb this wasteful fits the largest buffer.
        let mut t = win(truesize) >> 1;
        let mut window = win(sysctl.tcp_rmem()[2].clamp(0, i64::from(u32::MAX)) as u32) >> 1;
        let mut incr = 0;
        while tp.rcv_ssthresh <= window {
            if t <= len {
                incr = 2 * u32::from(tp.ack.rcv_mss);
                break;
            }
            t >>= 1;
            window >>= 1;
        }
        incr
    };
    if incr > 0 {
        let incr = incr.max(2 * len);
        tp.rcv_ssthresh += (room as u32).min(incr);
        tp.ack.quick |= 1;
    }
}

/// A FIN arrived in sequence. Mirrors `tcp_fin()`.
fn tcp_fin<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    tp.ack.pending |= ICSK_ACK_SCHED;
    tp.shutdown |= RCV_SHUTDOWN;
    tp.rcv_fin = true;
    match tp.state {
        TcpState::SynRecv | TcpState::Established => {
            tcp_set_state(stack, ctx, tp, TcpState::CloseWait);
            tp.ack.enter_pingpong_mode(ctx.sysctl());
        }
        TcpState::FinWait1 => {
            tcp_send_ack(ctx, tp);
            tcp_set_state(stack, ctx, tp, TcpState::Closing);
        }
        TcpState::FinWait2 => {
            tcp_send_ack(ctx, tp);
            crate::tcp_minisocks::tcp_time_wait(stack, ctx, tp, TcpState::TimeWait, Duration::ZERO);
        }
        _ => {}
    }
    // An empty queue is often not allocated: leave it so (a write would
    // allocate it only to free it).
    if let Some(ofo) = tp.ofo_queue.allocated_mut() {
        for s in ofo.drain(..) {
            tp.rmem_alloc = tp.rmem_alloc.saturating_sub(s.skb.truesize() as u32);
        }
    }
    tp.ofo_queue.free();
    // tcp_sack_reset(): no SACK blocks and no pending D-SACK, so the ACK
    // of a FIN that repeats old data carries no D-SACK of it.
    tp.selective_acks.clear();
    tp.dsack_pending = false;
    if !tp.dead {
        ctx.sk_wake(tp.id, SkEvent::StateChange);
    }
}

/// Whether a packet of `len` payload bytes fits the receive buffer.
/// Mirrors `tcp_can_ingest()` (Linux 6.18: `sk_rmem_alloc + skb->len <=
/// sk_rcvbuf`; the charge is the truesize, the test the length, so a
/// window computed with `scaling_ratio` is honoured).
fn tcp_can_ingest(tp: &TcpSock, len: u32) -> bool {
    u64::from(tp.rmem_alloc) + u64::from(len) <= u64::from(tp.rcvbuf)
}

/// Makes room for a packet of `len` bytes costing `truesize`: the socket's
/// buffer must take it and the host's `tcp_mem` must grant the memory
/// (`sk_rmem_schedule()`); otherwise the queues are pruned, then
/// out-of-order data dropped until the memory is granted. Mirrors
/// `tcp_try_rmem_schedule()`; false means drop.
fn tcp_try_rmem_schedule<C: TcpContext>(
    stack: &TcpStack,
    ctx: &C,
    tp: &mut TcpSock,
    seq: u32,
    len: u32,
    truesize: u32,
) -> bool {
    if !tcp_can_ingest(tp, len) || !sk_rmem_schedule(&stack.mem, ctx, tp, truesize) {
        if !tcp_prune_queue(ctx, tp, seq, len) {
            return false;
        }
        while !sk_rmem_schedule(&stack.mem, ctx, tp, truesize) {
            if !tcp_prune_ofo_queue(ctx, tp, seq, len) {
                return false;
            }
        }
    }
    true
}

/// The buffer is full: grow it to what is allocated if the sysctl allows
/// (the peer was offered a window this memory backs), and offer no more
/// than two segments beyond it. Mirrors `tcp_clamp_window()`.
fn tcp_clamp_window(sysctl: &Sysctl, tp: &mut TcpSock) {
    tp.ack.quick = 0;
    let rmem2 = sysctl.tcp_rmem()[2].clamp(0, i64::from(u32::MAX)) as u32;
    if tp.rcvbuf < rmem2 && !tp.opts.rcvbuf_locked {
        tp.rcvbuf = tp.rmem_alloc.min(rmem2).max(tp.rcvbuf);
    }
    if tp.rmem_alloc > tp.rcvbuf {
        tp.rcv_ssthresh = tp.window_clamp.min(2 * u32::from(tp.advmss));
    }
}

/// Frees memory for an arriving packet of `len` bytes at `seq`: clamp the
/// window, collapse the queues into compact buffers, then as a last
/// resort drop out-of-order data above `seq`. Mirrors
/// `tcp_prune_queue()`; false when nothing helped (the caller drops, the
/// peer retransmits). Counters: `PruneCalled`, `RcvPruned`.
fn tcp_prune_queue<C: TcpContext>(ctx: &C, tp: &mut TcpSock, seq: u32, len: u32) -> bool {
    let cpu = ctx.cpu();
    ctx.mibs().this_cpu(cpu).inc(LinuxMib::PruneCalled);
    if !tcp_can_ingest(tp, len) {
        tcp_clamp_window(ctx.sysctl(), tp);
    } else if tcp_under_memory_pressure(tp) {
        tcp_adjust_rcv_ssthresh(tp);
    }
    if tcp_can_ingest(tp, len) {
        return true;
    }
    tcp_collapse_ofo_queue(ctx, tp);
    if !tp.receive_queue.is_empty() {
        let n = tp.receive_queue.len();
        let start = tp.copied_seq;
        tcp_collapse(ctx, tp, Queue::Receive, 0, n, start);
    }
    if tcp_can_ingest(tp, len) {
        return true;
    }
    tcp_prune_ofo_queue(ctx, tp, seq, len);
    if tcp_can_ingest(tp, len) {
        return true;
    }
    ctx.mibs().this_cpu(cpu).inc(LinuxMib::RcvPruned);
    // Being abused: no fast path until the queues drain.
    tp.pred_flags = 0;
    false
}

/// Which queue [`tcp_collapse`] works on.
#[derive(Clone, Copy)]
enum Queue {
    Receive,
    OutOfOrder,
}

/// The payload a compact buffer holds: one small pool buffer. Stands for
/// `SKB_MAX_ORDER(0, 0)` (one page less its shared info).
const TCP_COLLAPSE_CHUNK: usize = netcore::PAGE_POOL_DEFAULT_BUF_SIZE;

/// Copies the contiguous skbs `from..to` of a queue, from the first one
/// that wastes memory (its `truesize` as a window exceeds its length),
/// into compact buffers, dropping bytes before `start`. Mirrors
/// `tcp_collapse()`. Leaves the queue as it was when buffers run out.
/// Counter: `TCPRcvCollapsed` (one per skb replaced).
fn tcp_collapse<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    which: Queue,
    from: usize,
    to: usize,
    start: u32,
) {
    let ratio = tp.scaling_ratio;
    let q = match which {
        Queue::Receive => &mut tp.receive_queue,
        Queue::OutOfOrder => &mut tp.ofo_queue,
    };
    let wasteful = |s: &RxSkb| {
        crate::tcp_sock::tcp_win_from_space(ratio, s.skb.truesize() as u32) > s.skb.len() as u32
    };
    let Some(first) = (from..to).find(|&i| wasteful(&q[i])) else {
        return;
    };
    let mut seq = if after(start, q[first].seq) {
        start
    } else {
        q[first].seq
    };
    let mut out: Vec<RxSkb> = Vec::new();
    let mut cur: Option<SkBuff> = None;
    for s in q.range(first..to) {
        let mut off = seq.wrapping_sub(s.seq) as usize;
        let len = s.skb.len();
        while off < len {
            if cur.as_ref().is_none_or(|c| c.tailroom() == 0) {
                if let Some(c) = cur.take() {
                    let n = c.len() as u32;
                    out.push(RxSkb {
                        seq: seq.wrapping_sub(n),
                        skb: c,
                        fin: false,
                    });
                }
                let Ok(c) = SkBuff::alloc(ctx.page_pool(), TCP_COLLAPSE_CHUNK) else {
                    return;
                };
                cur = Some(c);
            }
            let Some(c) = cur.as_mut() else { return };
            let n = c.tailroom().min(len - off);
            // From the linear part and the fragments alike.
            let Ok(dst) = c.put(n) else { return };
            if s.skb.copy_bits(off, dst).is_err() {
                return;
            }
            off += n;
            seq = seq.wrapping_add(n as u32);
        }
    }
    if let Some(c) = cur.take() {
        let n = c.len() as u32;
        out.push(RxSkb {
            seq: seq.wrapping_sub(n),
            skb: c,
            fin: false,
        });
    }
    let old: Vec<RxSkb> = q.drain(first..to).collect();
    let freed: u32 = old.iter().map(|s| s.skb.truesize() as u32).sum();
    let added: u32 = out.iter().map(|s| s.skb.truesize() as u32).sum();
    ctx.mibs()
        .add(ctx.cpu(), LinuxMib::TcpRcvCollapsed, old.len() as u64);
    for (k, s) in out.into_iter().enumerate() {
        q.insert(first + k, s);
    }
    tp.rmem_alloc = tp.rmem_alloc.saturating_sub(freed) + added;
}

/// Collapses each run of contiguous out-of-order skbs (a run ends at a
/// gap or a FIN). Mirrors `tcp_collapse_ofo_queue()`.
fn tcp_collapse_ofo_queue<C: TcpContext>(ctx: &C, tp: &mut TcpSock) {
    let mut i = 0;
    while i < tp.ofo_queue.len() {
        let mut j = i + 1;
        while j < tp.ofo_queue.len()
            && !tp.ofo_queue[j - 1].fin
            && tp.ofo_queue[j].seq == tp.ofo_queue[j - 1].end_seq()
        {
            j += 1;
        }
        // A FIN stays in its own skb.
        let end = if tp.ofo_queue[j - 1].fin { j - 1 } else { j };
        let before_len = tp.ofo_queue.len();
        if end > i {
            let start = tp.ofo_queue[i].seq;
            tcp_collapse(ctx, tp, Queue::OutOfOrder, i, end, start);
        }
        // Skip past the run, whose skb count may have changed.
        let after_len = tp.ofo_queue.len();
        i = (j + after_len).saturating_sub(before_len).max(i + 1);
    }
}

/// Drops out-of-order data from the highest sequence down, never what
/// lies below the arriving packet's `seq`, until it fits. Mirrors
/// `tcp_prune_ofo_queue()`; SACK blocks are reset as Linux does
/// (`tcp_sack_reset()`). Counter: `OfoPruned`.
fn tcp_prune_ofo_queue<C: TcpContext>(ctx: &C, tp: &mut TcpSock, seq: u32, len: u32) -> bool {
    if tp.ofo_queue.is_empty() {
        return false;
    }
    ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::OfoPruned);
    let mut pruned = false;
    while let Some(last) = tp.ofo_queue.back() {
        if after(seq, last.seq) {
            break;
        }
        let s = tp.ofo_queue.pop_back().expect("checked back");
        tp.rmem_alloc = tp.rmem_alloc.saturating_sub(s.skb.truesize() as u32);
        kfree_skb_reason(s.skb, DropReason::TcpOfoQueuePrune);
        pruned = true;
        if tcp_can_ingest(tp, len) && !tcp_under_memory_pressure(tp) {
            break;
        }
    }
    if pruned {
        tp.selective_acks.clear();
        tp.dsack_pending = false;
    }
    pruned
}

/// [`tcp_sack_new_ofo_skb`], which may have to forget the oldest block for
/// the new one: then ACKs held back by SACK compression (more than three)
/// go out first, carrying the block about to be forgotten. Mirrors the
/// `tcp_sack_compress_send_ack()` call of `tcp_sack_new_ofo_skb()`.
fn tcp_sack_new_ofo<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, seq: u32, end_seq: u32) {
    let touches = |b: &TcpSackBlock| !after(seq, b.end_seq) && !after(b.start_seq, end_seq);
    if tp.selective_acks.is_full()
        && !tp.selective_acks.iter().any(touches)
        && u32::from(tp.rcv_rtt_est.compressed_ack) > crate::tcp_sock::TCP_REORDERING_DEFAULT
    {
        tcp_sack_compress_send_ack(ctx, tp);
    }
    tcp_sack_new_ofo_skb(tp, seq, end_seq);
}

/// Sends the ACK SACK compression was holding back now (counting all but
/// it as saved). Mirrors `tcp_sack_compress_send_ack()`.
fn tcp_sack_compress_send_ack<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let held = tp.rcv_rtt_est.compressed_ack;
    if held == 0 {
        return;
    }
    ctx.cancel_timer(TcpTimer::CompressedAck(tp.id));
    ctx.mibs()
        .this_cpu(ctx.cpu())
        .add(LinuxMib::TcpAckCompressed, u64::from(held - 1));
    tp.rcv_rtt_est.compressed_ack = 0;
    tcp_send_ack(ctx, tp);
}

/// Updates the SACK blocks to report for a new out-of-order segment:
/// extend and move to the front the block it touches, merging neighbours,
/// or add a new first block. Mirrors `tcp_sack_new_ofo_skb()`,
/// `tcp_sack_extend()` and `tcp_sack_maybe_coalesce()`.
fn tcp_sack_new_ofo_skb(tp: &mut TcpSock, seq: u32, end_seq: u32) {
    let blocks = &mut tp.selective_acks;
    let mut found = None;
    for (i, b) in blocks.iter_mut().enumerate() {
        if !after(seq, b.end_seq) && !after(b.start_seq, end_seq) {
            if before(seq, b.start_seq) {
                b.start_seq = seq;
            }
            if after(end_seq, b.end_seq) {
                b.end_seq = end_seq;
            }
            found = Some(i);
            break;
        }
    }
    let Some(i) = found else {
        if blocks.is_full() {
            blocks.pop();
        }
        let _ = blocks.insert(
            0,
            TcpSackBlock {
                start_seq: seq,
                end_seq,
            },
        );
        return;
    };
    let b = blocks.remove(i);
    let _ = blocks.insert(0, b);
    // Coalesce the grown first block with others.
    let mut j = 1;
    while j < blocks.len() {
        let (f, o) = (blocks[0], blocks[j]);
        if !after(o.start_seq, f.end_seq) && !after(f.start_seq, o.end_seq) {
            blocks[0] = TcpSackBlock {
                start_seq: if before(o.start_seq, f.start_seq) {
                    o.start_seq
                } else {
                    f.start_seq
                },
                end_seq: if after(o.end_seq, f.end_seq) {
                    o.end_seq
                } else {
                    f.end_seq
                },
            };
            blocks.remove(j);
        } else {
            j += 1;
        }
    }
}

/// Drops SACK blocks the cumulative ACK has passed. Mirrors
/// `tcp_sack_remove()`.
fn tcp_sack_remove(tp: &mut TcpSock) {
    let rcv_nxt = tp.rcv_nxt;
    tp.selective_acks.retain(|b| after(b.start_seq, rcv_nxt));
}

/// Queues an out-of-order segment, trimming what is already held and
/// noting duplicates for D-SACK. Mirrors `tcp_data_queue_ofo()`.
/// Counters: `TCPOFOQueue`, `TCPOFOMerge`, `TCPOFODrop`.
fn tcp_data_queue_ofo<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    mut seq: u32,
    mut skb: SkBuff,
    fin: bool,
) {
    let cpu = ctx.cpu();
    let (len, truesize) = (skb.len() as u32, skb.truesize() as u32);
    if !tcp_try_rmem_schedule(stack, ctx, tp, seq, len, truesize) {
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpOfoDrop);
        kfree_skb_reason(skb, DropReason::TcpOfoDrop);
        return;
    }
    // Header prediction is off while data waits out of order.
    tp.pred_flags = 0;
    ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpOfoQueue);
    tp.ack.pending |= ICSK_ACK_SCHED;
    let mut end = seq
        .wrapping_add(skb.len() as u32)
        .wrapping_add(u32::from(fin));
    let orig = (seq, end);
    // Find the insertion point and trim against the previous segment.
    let mut pos = tp.ofo_queue.len();
    for (i, o) in tp.ofo_queue.iter().enumerate() {
        if before(seq, o.seq) {
            pos = i;
            break;
        }
    }
    if pos > 0 {
        let prev = &tp.ofo_queue[pos - 1];
        let pend = prev.end_seq();
        if !before(pend, end) {
            // Fully covered: a duplicate.
            ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpOfoMerge);
            tcp_dsack_set(ctx, tp, seq, end);
            tcp_sack_new_ofo(ctx, tp, orig.0, orig.1);
            kfree_skb_reason(skb, DropReason::TcpOfomerge);
            return;
        }
        if after(pend, seq) {
            let cut = pend.wrapping_sub(seq);
            tcp_dsack_set(ctx, tp, seq, pend);
            let _ = skb.pskb_pull(cut as usize);
            seq = pend;
        }
    }
    // Remove the segments this one covers; trim against the next one.
    while pos < tp.ofo_queue.len() {
        let next = &tp.ofo_queue[pos];
        if !after(end, next.seq) {
            break;
        }
        if !before(end, next.end_seq()) {
            let n = tp.ofo_queue.remove(pos).expect("in range");
            ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpOfoMerge);
            tcp_dsack_set(ctx, tp, n.seq, n.end_seq());
            tp.rmem_alloc = tp.rmem_alloc.saturating_sub(n.skb.truesize() as u32);
            continue;
        }
        let next_seq = next.seq;
        let keep = next_seq.wrapping_sub(seq);
        tcp_dsack_set(ctx, tp, next_seq, end);
        let _ = skb.trim(keep as usize);
        end = next_seq;
        break;
    }
    let fin = fin && end == orig.1;
    if skb.is_empty() && !fin {
        return;
    }
    // Appending to the last out-of-order skb: into its spare room.
    let skb = if pos == tp.ofo_queue.len() && pos > 0 && !fin {
        match tcp_try_coalesce(ctx, &mut tp.ofo_queue[pos - 1], seq, skb) {
            Ok(()) => {
                tcp_sack_new_ofo(ctx, tp, orig.0, orig.1);
                return;
            }
            Err(skb) => skb,
        }
    } else {
        skb
    };
    tp.rmem_alloc += skb.truesize() as u32;
    tp.ofo_queue.insert(pos, RxSkb { seq, skb, fin });
    tcp_sack_new_ofo(ctx, tp, orig.0, orig.1);
}

/// Appends in-order data to the receive queue, into the tail skb's spare
/// room when it fits. Mirrors `tcp_queue_rcv()`.
fn tcp_queue_rcv<C: TcpContext>(ctx: &C, tp: &mut TcpSock, seq: u32, skb: SkBuff, fin: bool) {
    let len = skb.len() as u32;
    tp.rcv_nxt = seq.wrapping_add(len);
    tp.bytes_received += u64::from(len);
    if len > 0 {
        // Each arm queues the skb itself: no Option<SkBuff> in between
        // (a move of the skb each way).
        match tp.receive_queue.back_mut() {
            Some(tail) => {
                if let Err(skb) = tcp_try_coalesce(ctx, tail, seq, skb) {
                    tcp_queue_rcv_tail(tp, seq, skb);
                }
            }
            None => tcp_queue_rcv_tail(tp, seq, skb),
        }
    }
    if fin {
        tp.rcv_nxt = tp.rcv_nxt.wrapping_add(1);
    }
}

/// Queues `skb` as a new tail entry of the receive queue, charged to
/// `rmem_alloc`.
#[inline(always)]
fn tcp_queue_rcv_tail(tp: &mut TcpSock, seq: u32, skb: SkBuff) {
    tp.rmem_alloc += skb.truesize() as u32;
    tp.receive_queue.push_back(RxSkb {
        seq,
        skb,
        fin: false,
    });
}

/// Moves segments that now continue `rcv_nxt` from the out-of-order queue.
/// Mirrors `tcp_ofo_queue()`. Returns whether a FIN was reached.
fn tcp_ofo_queue<C: TcpContext>(ctx: &C, tp: &mut TcpSock) -> bool {
    let mut fin_seen = false;
    // What the in-order segment just covered: held data below it was
    // received twice and is reported as one D-SACK block, extended over
    // the ranges it touches (`dsack_high`).
    let dsack_high = tp.rcv_nxt;
    while let Some(front) = tp.ofo_queue.front() {
        if after(front.seq, tp.rcv_nxt) {
            break;
        }
        let mut s = tp.ofo_queue.pop_front().expect("checked front");
        tp.rmem_alloc = tp.rmem_alloc.saturating_sub(s.skb.truesize() as u32);
        let end = s.end_seq();
        if before(s.seq, dsack_high) {
            let dsack = if before(end, dsack_high) {
                end
            } else {
                dsack_high
            };
            tcp_dsack_extend(ctx, tp, s.seq, dsack);
        }
        if !after(end, tp.rcv_nxt) {
            continue;
        }
        let cut = tp.rcv_nxt.wrapping_sub(s.seq);
        if cut > 0 {
            let _ = s.skb.pskb_pull(cut as usize);
        }
        let seq = tp.rcv_nxt;
        tcp_queue_rcv(ctx, tp, seq, s.skb, s.fin);
        if s.fin {
            fin_seen = true;
            break;
        }
    }
    fin_seen
}

/// Queues a segment's data (and FIN): in order to the receive queue, out
/// of order to the ofo queue, duplicates answered at once with a D-SACK.
/// Mirrors `tcp_data_queue()`. Counters: `TCPZeroWindowDrop`,
/// `TCPRcvQDrop`, `DelayedACKLost`.
fn tcp_data_queue<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
    mut skb: SkBuff,
) {
    let cpu = ctx.cpu();
    let fin = seg.has(TcpFlags::FIN);
    let seq = seg.seq;
    let data_end = seq.wrapping_add(seg.len);
    // `seq == end_seq`: nothing in sequence space. A SYN counts, so the
    // peer's SYN-ACK in a simultaneous open goes on and is ACKed as old.
    if seq == seg.end_seq {
        return;
    }
    tp.data_segs_in += u32::from(seg.len > 0);
    tp.last_data_recv = ctx.now();
    tracing::trace!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, seq, len = seg.len, rcv_nxt = tp.rcv_nxt, "tcp_data_queue");
    if seq == tp.rcv_nxt || (before(seq, tp.rcv_nxt) && after(seg.end_seq, tp.rcv_nxt)) {
        if before(seq, tp.rcv_nxt) {
            tcp_dsack_set(ctx, tp, seq, tp.rcv_nxt);
        }
        if tcp_receive_window(tp) == 0 && !(seg.len == 0 && fin) && !before(seq, tp.rcv_nxt) {
            ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpZeroWindowDrop);
            tcp_enter_quickack_mode(tp, MAX_QUICKACKS);
            tp.ack.pending |= ICSK_ACK_SCHED;
            kfree_skb_reason(skb, DropReason::TcpZerowindow);
            return;
        }
        let cut = tp.rcv_nxt.wrapping_sub(seq);
        if cut > 0 {
            let cut = cut.min(skb.len() as u32);
            // A partial overlap: what is already held is cut off the
            // front, in the linear part or the fragments.
            let _ = skb.pskb_pull(cut as usize);
        }
        let truesize = skb.truesize() as u32;
        let gso_size = u32::from(skb.gso_size);
        // No room: ACK at once, and drop data unless the receive queue is
        // empty; a bare FIN is taken anyway (`sk_forced_mem_schedule()`).
        // Data into an empty queue skips the check: our truesize runs
        // larger than Linux's, and pruning the out-of-order queue for it
        // would lose what Linux keeps. It only asks tcp_mem, and takes the
        // memory anyway when refused (`sk_forced_mem_schedule()`).
        if skb.is_empty() || !tp.receive_queue.is_empty() {
            if !tcp_try_rmem_schedule(stack, ctx, tp, tp.rcv_nxt, skb.len() as u32, truesize) {
                tp.ack.pending |= ICSK_ACK_NOW | ICSK_ACK_SCHED;
                if !tp.dead {
                    ctx.sk_wake(tp.id, SkEvent::DataReady);
                }
                if !skb.is_empty() {
                    ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpRcvQDrop);
                    kfree_skb_reason(skb, DropReason::ProtoMem);
                    return;
                }
            }
        } else if !sk_rmem_schedule(&stack.mem, ctx, tp, truesize) {
            sk_forced_mem_schedule(&stack.mem, ctx, tp, truesize);
        }
        let len = skb.len() as u32;
        let seq_now = tp.rcv_nxt;
        tcp_queue_rcv(ctx, tp, seq_now, skb, fin);
        if len > 0 {
            tcp_event_data_recv(ctx, tp, gso_size, len, truesize, seg.ip_dsfield);
        }
        let mut fin_now = fin;
        if !tp.ofo_queue.is_empty() {
            fin_now |= tcp_ofo_queue(ctx, tp);
            if tp.ofo_queue.is_empty() {
                tp.ack.pending |= ICSK_ACK_NOW;
                tp.ofo_queue.free();
            }
        }
        if !tp.selective_acks.is_empty() {
            tcp_sack_remove(tp);
        }
        tcp_fast_path_check(tp);
        if fin_now {
            tcp_fin(stack, ctx, tp);
        }
        if !tp.dead && (len > 0 || fin_now) {
            ctx.sk_wake(tp.id, SkEvent::DataReady);
        }
        return;
    }
    if !after(data_end.wrapping_add(u32::from(fin)), tp.rcv_nxt) {
        // A retransmission of data we hold: ACK at once with a D-SACK.
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::DelayedAckLost);
        tcp_dsack_set(ctx, tp, seq, seg.end_seq);
        tcp_enter_quickack_mode(tp, MAX_QUICKACKS);
        tp.ack.pending |= ICSK_ACK_SCHED;
        kfree_skb_reason(skb, DropReason::TcpOldData);
        return;
    }
    if !before(seq, tp.rcv_nxt.wrapping_add(tcp_receive_window(tp))) {
        tcp_enter_quickack_mode(tp, MAX_QUICKACKS);
        tp.ack.pending |= ICSK_ACK_SCHED;
        kfree_skb_reason(skb, DropReason::TcpOverwindow);
        return;
    }
    // tcp_data_queue_ofo() begins with tcp_ecn_check_ce().
    crate::tcp_ecn::tcp_ecn_check_ce(tp, seg.ip_dsfield);
    tcp_data_queue_ofo(stack, ctx, tp, seq, skb, fin);
}

/// Sends an ACK now or schedules a delayed one. Mirrors
/// `__tcp_ack_snd_check()`: now when more than one full segment is
/// unacknowledged and the window moves, in quick-ACK mode, or when
/// `ICSK_ACK_NOW` is set; while out-of-order data is held, the first
/// three duplicate ACKs for a `rcv_nxt` go at once (enough for the
/// sender's fast retransmit) and, with SACK, later ones are compressed:
/// at most `tcp_comp_sack_nr` (44) are held back, for 5 % of the RTT but
/// at most `tcp_comp_sack_delay_ns` (1 ms), then one ACK carries the
/// SACK blocks of them all (`TCPAckCompressed` counts the ones saved).
pub(crate) fn tcp_ack_snd_check<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if tp.ack.pending & ICSK_ACK_SCHED == 0 {
        return;
    }
    let rcv_mss = u32::from(tp.ack.rcv_mss);
    let unacked = tp.rcv_nxt.wrapping_sub(tp.rcv_wup);
    let full = unacked > rcv_mss && {
        let w = tcp_select_window_raw(tp);
        w >= tp.rcv_wnd
    };
    if full || tcp_in_quickack_mode(tp, ctx.sysctl()) || tp.ack.pending & ICSK_ACK_NOW != 0 {
        tcp_send_ack(ctx, tp);
        return;
    }
    if tp.ofo_queue.is_empty() {
        tcp_send_delayed_ack(ctx, tp);
        return;
    }
    let sysctl = ctx.sysctl();
    let comp_nr = sysctl.get_int(Sysctl::TCP_COMP_SACK_NR);
    if !tp.rx_opt.sack_ok || i64::from(tp.rcv_rtt_est.compressed_ack) >= comp_nr {
        tcp_send_ack(ctx, tp);
        return;
    }
    let rcv_nxt = tp.rcv_nxt;
    let est = &mut *tp.rcv_rtt_est;
    if est.compressed_ack_rcv_nxt != rcv_nxt {
        est.compressed_ack_rcv_nxt = rcv_nxt;
        est.dup_ack_counter = 0;
    }
    if u32::from(est.dup_ack_counter) < crate::tcp_sock::TCP_REORDERING_DEFAULT {
        est.dup_ack_counter += 1;
        tcp_send_ack(ctx, tp);
        return;
    }
    est.compressed_ack = est.compressed_ack.saturating_add(1);
    let id = TcpTimer::CompressedAck(tp.id);
    if ctx.timer_pending(id).is_some() {
        return;
    }
    // 5 % of the RTT (the receiver's estimate, or the smoothed RTT when
    // smaller; both in µs << 3), at most tcp_comp_sack_delay_ns.
    let mut rtt = u64::from(tp.rcv_rtt_est.rtt_us);
    if tp.srtt_us != 0 && u64::from(tp.srtt_us) < rtt {
        rtt = u64::from(tp.srtt_us);
    }
    let max_ns = sysctl.get_int(Sysctl::TCP_COMP_SACK_DELAY_NS).max(0) as u64;
    let delay = Duration::from_nanos((rtt * 125 / 20).min(max_ns));
    let at = ctx.now() + delay;
    ctx.arm_timer(id, at);
}

/// The SACK-compression timer fired: the ACK held back goes out (it is
/// one of the compressed ones, so it is not counted as saved). Mirrors
/// `tcp_compressed_ack_kick()`.
pub(crate) fn tcp_compressed_ack_kick<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if tp.rcv_rtt_est.compressed_ack > 0 && tp.state != TcpState::Close {
        tp.rcv_rtt_est.compressed_ack -= 1;
        tcp_send_ack(ctx, tp);
    }
}

/// Sends what the window now allows and wakes a writer waiting for room.
/// Mirrors `tcp_data_snd_check()` + `tcp_check_space()`.
pub(crate) fn tcp_data_snd_check<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let nonagle = tp_nonagle(tp);
    tcp_push_pending_frames(ctx, tp, nonagle);
    let now = ctx.now();
    // tcp_check_space() -> tcp_new_space(): a writer is waiting; grow
    // the buffer first if the window may use more.
    if tp.nospace && tcp_should_expand_sndbuf(tp) {
        tcp_sndbuf_expand(ctx.sysctl(), tp);
    }
    if tp.nospace && tp.sk_stream_is_writeable(Some(ctx.sysctl())) {
        tp.nospace = false;
        if !tp.dead {
            ctx.sk_wake(tp.id, SkEvent::WriteSpace);
        }
        crate::tcp_output::tcp_chrono_stop(tp, crate::tcp_sock::TcpChrono::SndbufLimited, now);
    }
    if tp.write_queue.is_empty() {
        // Everything sent was acknowledged: the busy period ends.
        crate::tcp_output::tcp_chrono_stop(tp, crate::tcp_sock::TcpChrono::Busy, now);
    }
}

/// Runs a segment through a SYN-SENT socket. Mirrors
/// `tcp_rcv_synsent_state_process()`. Returns true when a RST should be
/// sent in reply (an unacceptable ACK).
fn tcp_rcv_synsent_state_process<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
) -> bool {
    let now = ctx.now();
    let cpu = ctx.cpu();
    if seg.has(TcpFlags::ACK) {
        if !after(seg.ack_seq, tp.snd_una) || after(seg.ack_seq, tp.snd_nxt) {
            return !seg.has(TcpFlags::RST);
        }
        if let Some((_, ecr)) = seg.opts.timestamp.filter(|_| tp.rx_opt.tstamp_ok)
            && ecr != 0
        {
            let start = tp.retrans_stamp.get().map_or(0, |t| tp.tcp_time_stamp(t));
            if !between(ecr, start, tp.tcp_time_stamp(now)) {
                ctx.mibs().this_cpu(cpu).inc(LinuxMib::PawsActiveRejected);
                return true;
            }
        }
        if seg.has(TcpFlags::RST) {
            tcp_reset(stack, ctx, tp);
            return false;
        }
        if !seg.has(TcpFlags::SYN) {
            return false;
        }
        // The SYN-ACK: settle the options and ECN.
        tcp_syn_options_received(ctx, tp, seg);
        crate::tcp_ecn::tcp_ecn_rcv_synack(tp, seg.flags);
        tp.snd_wl1 = seg.seq;
        tcp_parse_ts(tp, seg);
        let _ = tcp_ack(stack, ctx, tp, seg, FLAG_SLOWPATH);
        tp.rcv_nxt = seg.seq.wrapping_add(1);
        tp.rcv_wup = tp.rcv_nxt;
        tp.snd_wnd = u32::from(seg.window);
        // The SYN-ACK's window is not scaled: with scaling the fast path
        // waits for the first window update.
        if tp.rx_opt.snd_wscale == 0 {
            tcp_fast_path_on_wnd(tp, tp.snd_wnd);
        } else {
            tp.pred_flags = 0;
        }
        tp.max_window = tp.snd_wnd;
        if tp.rx_opt.saw_tstamp {
            tcp_store_ts_recent(tp, now);
        }
        let pmtu = tp.pmtu;
        tcp_sync_mss(tp, pmtu, ctx.sysctl());
        tcp_initialize_rcv_mss(tp);
        tp.copied_seq = tp.rcv_nxt;
        tcp_finish_connect(stack, ctx, tp);
        if !tp.dead {
            ctx.sk_wake(tp.id, SkEvent::StateChange);
            ctx.sk_wake(tp.id, SkEvent::WriteSpace);
        }
        tcp_send_ack(ctx, tp);
        return false;
    }
    if seg.has(TcpFlags::RST) {
        return false;
    }
    if seg.has(TcpFlags::SYN) {
        // Simultaneous open: crossed SYNs.
        tcp_syn_options_received(ctx, tp, seg);
        crate::tcp_ecn::tcp_ecn_rcv_syn(tp, seg.flags);
        tcp_set_state(stack, ctx, tp, TcpState::SynRecv);
        tcp_parse_ts(tp, seg);
        if tp.rx_opt.saw_tstamp {
            tcp_store_ts_recent(tp, now);
        }
        tp.rcv_nxt = seg.seq.wrapping_add(1);
        tp.copied_seq = tp.rcv_nxt;
        tp.rcv_wup = tp.rcv_nxt;
        tp.snd_wnd = u32::from(seg.window);
        tp.snd_wl1 = seg.seq;
        tp.max_window = tp.snd_wnd;
        let pmtu = tp.pmtu;
        tcp_sync_mss(tp, pmtu, ctx.sysctl());
        tcp_initialize_rcv_mss(tp);
        // tcp_send_synack(): the SYN again, now with ACK (and ECE if ECN
        // is still on, tcp_ecn_send_synack()).
        let synack = TcpFlags::SYN | TcpFlags::ACK | crate::tcp_ecn::tcp_ecn_send_synack(tp);
        if let Some(s) = tp.write_queue.front_mut() {
            s.flags = synack;
        }
        let iss = tp.snd_una;
        let _ = crate::tcp_output::tcp_transmit(ctx, tp, iss, synack, None, false);
        return false;
    }
    false
}

/// Takes the options of a SYN or SYN-ACK into `rx_opt`: what both sides
/// support stays on. Mirrors the SYN part of `tcp_parse_options()` and
/// the checks after it in `tcp_rcv_synsent_state_process()`.
pub(crate) fn tcp_syn_options_received<C: TcpContext>(_ctx: &C, tp: &mut TcpSock, seg: &TcpSeg) {
    let o = &seg.opts;
    tp.rx_opt.tstamp_ok &= o.timestamp.is_some();
    tp.rx_opt.sack_ok &= o.sack_ok;
    tp.rx_opt.wscale_ok &= o.wscale.is_some();
    if tp.rx_opt.wscale_ok {
        tp.rx_opt.snd_wscale = o.wscale.unwrap_or(0).min(crate::tcp_sock::TCP_MAX_WSCALE);
    } else {
        tp.rx_opt.snd_wscale = 0;
        tp.rx_opt.rcv_wscale = 0;
        tp.window_clamp = tp.window_clamp.min(65535);
    }
    let mut clamp = o.mss.unwrap_or(crate::tcp_sock::TCP_MSS_DEFAULT);
    if tp.rx_opt.user_mss != 0 && tp.rx_opt.user_mss < clamp {
        clamp = tp.rx_opt.user_mss;
    }
    tp.rx_opt.mss_clamp = clamp.max(crate::tcp_sock::TCP_MIN_MSS.min(clamp).max(48));
    if !tp.rx_opt.tstamp_ok && tp.advmss > 0 {
        // tcp_header_len shrinks: nothing to do, mss is derived on demand.
    }
}

/// Estimates the peer's MSS for delayed-ACK decisions. Mirrors
/// `tcp_initialize_rcv_mss()`.
pub(crate) fn tcp_initialize_rcv_mss(tp: &mut TcpSock) {
    let hint = u32::from(tp.advmss)
        .min(u32::from(tp.mss_cache))
        .min(tp.rcv_wnd / 2)
        .min(536);
    tp.ack.rcv_mss = hint.max(u32::from(crate::tcp_sock::TCP_MIN_MSS)) as u16;
}

/// The handshake completed on an active open. Mirrors
/// `tcp_finish_connect()` + `tcp_init_transfer()`: ESTABLISHED, the initial
/// cwnd (one segment if the SYN was retransmitted), keepalive armed.
pub(crate) fn tcp_finish_connect<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    let now = ctx.now();
    tcp_set_state(stack, ctx, tp, TcpState::Established);
    tp.ack.lrcvtime = now;
    tcp_init_transfer(stack, ctx, tp);
}

/// Sets up cwnd and buffers for data transfer. Mirrors `tcp_init_transfer()`
/// with `tcp_init_metrics()` (the destination's cached metrics and the
/// first RTO).
pub(crate) fn tcp_init_transfer<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    let now = ctx.now();
    tp.cwnd.tcp_mstamp = now.as_micros();
    tp.cwnd.snd_una = tp.snd_una;
    tp.cwnd.snd_nxt = tp.snd_nxt;
    tp.ca_ops.init(&mut tp.cwnd);
    tp.cwnd.snd_cwnd = if tp.total_retrans > 1 {
        1
    } else {
        crate::tcp_sock::TCP_INIT_CWND
    };
    tp.lsndtime = now;
    tp.rcv_tstamp = now;
    // tcp_init_sock(): the reordering degree starts at the sysctl.
    tp.reordering = ctx.sysctl().get_int(Sysctl::TCP_REORDERING).max(1) as u32;
    crate::tcp_metrics::tcp_init_metrics(&stack.metrics, ctx, tp);
    // The send half of tcp_init_buffer_space().
    if !tp.opts.sndbuf_locked {
        tcp_sndbuf_expand(ctx.sysctl(), tp);
    }
    tcp_init_buffer_space(ctx.sysctl(), tp, now);
    if tp.opts.keepalive {
        let when = crate::tcp_timer::keepalive_time_when(ctx, tp);
        inet_csk_reset_keepalive_timer(ctx, tp, when);
    }
}

/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64, the tail
/// Linux reserves in every skb head.
const SKB_SHINFO_SIZE: u32 = 320;

/// Grows `SO_SNDBUF` to hold twice the congestion window (at least the
/// initial window, and the reordering degree plus one) of worst-case
/// segments, up to `tcp_wmem[2]`, so the window is never held back by
/// the buffer while recovery needs a second window's worth. Mirrors
/// `tcp_sndbuf_expand()`; the controller's `.sndbuf_expand` is always 2
/// (Reno and CUBIC have none).
///
/// # Deviations from Linux
///
/// The per-segment cost is Linux's worst case (`MAX_TCP_HEADER` here is
/// ours, the shared-info tail and the skb head are Linux's sizes):
/// netstack charges less per segment, so the buffer holds a little more
/// than two windows.
pub(crate) fn tcp_sndbuf_expand(sysctl: &Sysctl, tp: &mut TcpSock) {
    let mss = u32::from(tp.rx_opt.mss_clamp).max(u32::from(tp.mss_cache));
    let per_mss = (mss + crate::tcp_sock::MAX_TCP_HEADER as u32 + SKB_SHINFO_SIZE)
        .next_power_of_two()
        + (core::mem::size_of::<SkBuff>() as u32).next_multiple_of(64);
    let nr_segs = crate::tcp_sock::TCP_INIT_CWND
        .max(tp.cwnd.snd_cwnd)
        .max(tp.reordering + 1);
    let sndmem = 2u64 * u64::from(nr_segs) * u64::from(per_mss);
    let wmem_max = sysctl.tcp_wmem()[2].max(0) as u64;
    if u64::from(tp.sndbuf) < sndmem {
        tp.sndbuf = sndmem.min(wmem_max).min(u64::from(u32::MAX)) as u32;
    }
}

/// Whether the send buffer may grow: not set by the user, no TCP memory
/// pressure, and the flight below cwnd (a full window means the buffer
/// is not what limits). Mirrors `tcp_should_expand_sndbuf()`.
///
/// # Deviations from Linux
///
/// Under pressure Linux also shrinks `sk_sndbuf` to the socket's unused
/// reserved memory (`SO_RESERVE_MEM`), which netstack does not have; and
/// the soft limit (`sk_memory_allocated() >= tcp_mem[0]`) is not tested
/// here, only the pressure state `tcp_mem[1]` starts.
fn tcp_should_expand_sndbuf(tp: &TcpSock) -> bool {
    if tp.opts.sndbuf_locked || crate::tcp_mem::tcp_under_memory_pressure(tp) {
        return false;
    }
    tp.packets_in_flight() < tp.cwnd.snd_cwnd
}

/// Sizes the window clamp to the buffer and starts receive autotuning.
/// Mirrors the receive half of `tcp_init_buffer_space()`: `rcvq_space`
/// starts at `min(rcv_ssthresh, rcv_wnd, TCP_INIT_CWND * advmss)`, the
/// clamp is the full space less `1/2^tcp_app_win` and one segment.
fn tcp_init_buffer_space(sysctl: &Sysctl, tp: &mut TcpSock, now: Instant) {
    let advmss = u32::from(tp.advmss);
    tp.rcvq_space = tp
        .rcv_ssthresh
        .min(tp.rcv_wnd)
        .min(crate::tcp_sock::TCP_INIT_CWND * advmss);
    tp.rcvq_time = now;
    tp.rcvq_seq = tp.copied_seq;
    let app_win = sysctl.get_int(Sysctl::TCP_APP_WIN).clamp(0, 31) as u32;
    let maxwin = tp.tcp_full_space();
    if tp.window_clamp >= maxwin {
        tp.window_clamp = maxwin;
        if app_win != 0 && maxwin > 4 * advmss {
            tp.window_clamp = (maxwin - (maxwin >> app_win)).max(4 * advmss);
        }
    }
    if app_win != 0 && tp.window_clamp > 2 * advmss && tp.window_clamp + advmss > maxwin {
        tp.window_clamp = (2 * advmss).max(maxwin.saturating_sub(advmss));
    }
    tp.rcv_ssthresh = tp.rcv_ssthresh.min(tp.window_clamp);
}

/// Takes a receiver-side RTT sample of `sample_us`. Mirrors
/// `tcp_rcv_rtt_update()`: the minimum when the sample is bounded by the
/// window (`win_dep`), a 1/8 moving average otherwise.
fn tcp_rcv_rtt_update(tp: &mut TcpSock, sample_us: u32, win_dep: bool) {
    let old = tp.rcv_rtt_est.rtt_us;
    let m = sample_us.saturating_mul(8);
    tp.rcv_rtt_est.rtt_us = if old == 0 || m < old {
        m
    } else if win_dep {
        return;
    } else {
        old - (old >> 3) + sample_us
    };
}

/// Measures the receiver's RTT as the time to receive one window of data,
/// and from time stamps when they give a non-zero delay. Mirrors
/// `tcp_rcv_rtt_measure()` and `tcp_rcv_rtt_measure_ts()`.
fn tcp_rcv_rtt_measure(tp: &mut TcpSock, now: Instant, seg_len: u32) {
    if tp.rx_opt.tstamp_ok && tp.rx_opt.rcv_tsecr != tp.rcv_rtt_est.last_tsecr {
        tp.rcv_rtt_est.last_tsecr = tp.rx_opt.rcv_tsecr;
        if seg_len >= u32::from(tp.ack.rcv_mss) {
            let delta_ms = tp.tcp_time_stamp(now).wrapping_sub(tp.rx_opt.rcv_tsecr);
            if delta_ms > 0 && delta_ms < i32::MAX as u32 / 1000 {
                tcp_rcv_rtt_update(tp, delta_ms * 1000, false);
            }
        }
    }
    if let Some(t0) = tp.rcv_rtt_est.time {
        if before(tp.rcv_nxt, tp.rcv_rtt_est.seq) {
            return;
        }
        let us = now
            .saturating_duration_since(t0)
            .as_micros()
            .clamp(1, u128::from(u32::MAX / 8)) as u32;
        tcp_rcv_rtt_update(tp, us, true);
    }
    tp.rcv_rtt_est.seq = tp.rcv_nxt.wrapping_add(tp.rcv_wnd);
    tp.rcv_rtt_est.time = Some(now);
}

/// After the user read data: once per receiver RTT, if more was read than
/// last time, grow the receive buffer so the sender may double its rate.
/// Mirrors `tcp_rcv_space_adjust()` with `tcp_rcvbuf_grow()` (DRS).
pub(crate) fn tcp_rcv_space_adjust(sysctl: &Sysctl, tp: &mut TcpSock, now: Instant) {
    let time_us = now.saturating_duration_since(tp.rcvq_time).as_micros();
    if tp.rcv_rtt_est.rtt_us == 0 || time_us < u128::from(tp.rcv_rtt_est.rtt_us >> 3) {
        return;
    }
    let copied = i64::from(tp.copied_seq.wrapping_sub(tp.rcvq_seq))
        - i64::from(tp.rcv_nxt.wrapping_sub(tp.copied_seq));
    if copied > i64::from(tp.rcvq_space) {
        tcp_rcvbuf_grow(sysctl, tp, copied as u32);
    }
    tp.rcvq_seq = tp.copied_seq;
    tp.rcvq_time = now;
}

/// Mirrors `tcp_rcvbuf_grow()`: the window for two RTTs of what was read,
/// plus the growth seen (slow start) and the out-of-order span, as buffer
/// space through `scaling_ratio`, at most `tcp_rmem[2]`.
fn tcp_rcvbuf_grow(sysctl: &Sysctl, tp: &mut TcpSock, newval: u32) {
    let oldval = tp.rcvq_space.max(1);
    tp.rcvq_space = newval;
    if sysctl.get_int(Sysctl::TCP_MODERATE_RCVBUF) == 0 || tp.opts.rcvbuf_locked {
        return;
    }
    let mut rcvwin = u64::from(newval) << 1;
    let grow = rcvwin * u64::from(newval.saturating_sub(oldval)) / u64::from(oldval);
    rcvwin += grow << 1;
    if let Some(last) = tp.ofo_queue.back() {
        rcvwin += u64::from(last.end_seq().wrapping_sub(tp.rcv_nxt));
    }
    let cap = sysctl.tcp_rmem()[2].clamp(0, i64::from(u32::MAX)) as u32;
    let rcvwin = rcvwin.min(u64::from(u32::MAX)) as u32;
    let rcvbuf = crate::tcp_sock::tcp_space_from_win(tp.scaling_ratio, rcvwin).min(cap);
    if rcvbuf > tp.rcvbuf {
        tp.rcvbuf = rcvbuf;
        tp.window_clamp = crate::tcp_sock::tcp_win_from_space(tp.scaling_ratio, rcvbuf);
    }
}

/// Appends `skb` to the tail skb `to` when it continues it and fits its
/// spare room, so no second buffer is held. Mirrors `tcp_try_coalesce()`
/// with the tailroom copy of `skb_try_coalesce()` (the charge does not
/// change). Counter: `TCPRcvCoalesce`. Hands `skb` back when it cannot.
#[allow(clippy::result_large_err)] // the skb goes back by value when it cannot be merged
fn tcp_try_coalesce<C: TcpContext>(
    ctx: &C,
    to: &mut RxSkb,
    seq: u32,
    skb: SkBuff,
) -> Result<(), SkBuff> {
    if to.fin
        || seq != to.end_seq()
        || skb.is_empty()
        || skb.is_nonlinear()
        || skb.len() > to.skb.tailroom()
        || to.skb.is_cloned()
    {
        return Err(skb);
    }
    if to.skb.put_data(skb.data()).is_err() {
        return Err(skb);
    }
    ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpRcvCoalesce);
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// Tests: send every segment down the slow path, to compare.
    pub(crate) static HP_OFF: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// The header word header prediction compares: the data offset, the
/// flags but PSH and the reserved bits, and the window field. Mirrors
/// `tcp_flag_word(th) & TCP_HP_BITS`; a header layout the fast path
/// does not read has data offset 0 here and matches nothing.
fn tcp_hp_word(seg: &TcpSeg) -> u32 {
    let flags = seg.flags.difference(TcpFlags::PSH).bits();
    (u32::from(seg.pred_hlen) << 26) | (u32::from(flags) << 16) | u32::from(seg.window)
}

/// Turns header prediction on for a send window of `snd_wnd` (as the
/// window field carries it). Mirrors `__tcp_fast_path_on()`.
pub(crate) fn tcp_fast_path_on_wnd(tp: &mut TcpSock, snd_wnd: u32) {
    let hlen = u32::from(crate::tcp_output::tcp_header_len(tp));
    tp.pred_flags = (hlen << 26) | (u32::from(TcpFlags::ACK.bits()) << 16) | snd_wnd;
}

/// Turns header prediction on for the current send window. Mirrors
/// `tcp_fast_path_on()`.
pub(crate) fn tcp_fast_path_on(tp: &mut TcpSock) {
    tcp_fast_path_on_wnd(tp, tp.snd_wnd >> tp.rx_opt.snd_wscale);
}

/// Turns header prediction on unless data waits out of order, the
/// receive window is closed or the receive buffer is full. Mirrors
/// `tcp_fast_path_check()` (no urgent data here).
pub(crate) fn tcp_fast_path_check(tp: &mut TcpSock) {
    if tp.ofo_queue.is_empty() && tp.rcv_wnd != 0 && tp.rmem_alloc < tp.rcvbuf && tp.urg_data == 0 {
        tcp_fast_path_on(tp);
    }
}

/// The header-prediction fast path of an ESTABLISHED socket: a segment
/// whose header word matches `pred_flags` (only ACK, maybe PSH; the
/// expected options; the send window unchanged), that starts at
/// `rcv_nxt`, acknowledges nothing unsent and whose timestamp is not
/// older than `ts_recent` skips the checks of the slow path: a pure ACK
/// goes to `tcp_ack()` without the window update (`TCPHPAcks`), in-order
/// data that fits the window and the memory already reserved is queued
/// at once (`TCPHPHits`), then acknowledged. Returns the skb when the
/// segment must take the slow path. Mirrors the fast path of
/// `tcp_rcv_established()`.
///
/// # Deviations from Linux
///
/// - Data also needs the receive buffer to take it when the receive
///   queue holds data (the slow path's `tcp_try_rmem_schedule()` test),
///   so both paths drop and accept the same segments.
/// - The receiver's RTT sample from the echoed timestamp is taken in
///   `tcp_event_data_recv()` on both paths (`tcp_rcv_rtt_measure()`), so
///   a pure ACK does not record its echo (`rcv_rtt_last_tsecr`).
fn tcp_rcv_established_fast<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
    skb: SkBuff,
) -> Option<SkBuff> {
    #[cfg(test)]
    if HP_OFF.get() {
        return Some(skb);
    }
    if tcp_hp_word(seg) != tp.pred_flags || seg.seq != tp.rcv_nxt || after(seg.ack_seq, tp.snd_nxt)
    {
        return Some(skb);
    }
    let now = ctx.now();
    // tcp_header_len is the timestamp's: the segment carries it aligned
    // (pred_hlen matched); PAWS in doubt goes the slow way.
    let ts_hdr = tp.rx_opt.tstamp_ok;
    if ts_hdr
        && (!tp.rx_opt.saw_tstamp
            || (tp.rx_opt.rcv_tsval.wrapping_sub(tp.rx_opt.ts_recent) as i32) < 0)
    {
        return Some(skb);
    }
    if seg.len == 0 {
        // A pure ACK: the sender's side of a bulk transfer. In window by
        // definition (seq == rcv_nxt); seq <= rcv_wup reduces to equality.
        if ts_hdr && tp.rcv_nxt == tp.rcv_wup {
            tcp_store_ts_recent(tp, now);
        }
        let _ = tcp_ack(stack, ctx, tp, seg, 0);
        drop(skb);
        tcp_data_snd_check(ctx, tp);
        return None;
    }
    if after(seg.end_seq, tp.rcv_nxt.wrapping_add(tcp_receive_window(tp))) {
        return Some(skb);
    }
    let truesize = skb.truesize() as u32;
    if i64::from(truesize) > crate::tcp_mem::sk_forward_alloc(tp)
        || (!tp.receive_queue.is_empty() && !tcp_can_ingest(tp, seg.len))
    {
        return Some(skb);
    }
    if ts_hdr && tp.rcv_nxt == tp.rcv_wup {
        tcp_store_ts_recent(tp, now);
    }
    ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpHpHits);
    // The receiver's side of a bulk transfer.
    tp.data_segs_in += 1;
    tp.last_data_recv = now;
    let gso_size = u32::from(skb.gso_size);
    let seq = tp.rcv_nxt;
    tcp_queue_rcv(ctx, tp, seq, skb, false);
    tcp_event_data_recv(ctx, tp, gso_size, seg.len, truesize, seg.ip_dsfield);
    if seg.ack_seq == tp.snd_una {
        tp.snd_wl1 = seg.seq;
    } else {
        let _ = tcp_ack(stack, ctx, tp, seg, FLAG_DATA);
        tcp_data_snd_check(ctx, tp);
    }
    tcp_ack_snd_check(ctx, tp);
    if !tp.dead {
        ctx.sk_wake(tp.id, SkEvent::DataReady);
    }
    None
}

/// Runs a segment through a synchronized socket (every state but LISTEN,
/// which `tcp_v4_rcv()` handles, and CLOSE). Mirrors
/// `tcp_rcv_state_process()` (which in Linux also covers ESTABLISHED's slow
/// path, `tcp_rcv_established()`). Consumes `skb`, whose data is the
/// payload. Returns true when a RST should answer the segment.
pub(crate) fn tcp_rcv_state_process<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
    skb: SkBuff,
) -> bool {
    let now = ctx.now();
    tp.segs_in += 1;
    match tp.state {
        TcpState::Close | TcpState::Listen | TcpState::TimeWait => return false,
        TcpState::SynSent => {
            tcp_parse_ts(tp, seg);
            let rst = tcp_rcv_synsent_state_process(stack, ctx, tp, seg);
            if !rst && tp.state == TcpState::Established {
                tcp_data_snd_check(ctx, tp);
            }
            return rst;
        }
        _ => {}
    }
    tcp_parse_ts(tp, seg);
    let skb = if tp.state == TcpState::Established {
        match tcp_rcv_established_fast(stack, ctx, tp, seg, skb) {
            Some(skb) => skb,
            None => return false,
        }
    } else {
        skb
    };
    if let Err(reason) = tcp_validate_incoming(stack, ctx, tp, seg) {
        kfree_skb_reason(skb, reason);
        return false;
    }
    if !seg.has(TcpFlags::ACK) {
        kfree_skb_reason(skb, DropReason::TcpFlags);
        return false;
    }
    let flag = FLAG_SLOWPATH
        | FLAG_UPDATE_TS_RECENT
        | if tp.state == TcpState::SynRecv {
            FLAG_NO_CHALLENGE_ACK
        } else {
            0
        };
    let res = tcp_ack(stack, ctx, tp, seg, flag);
    if let AckResult::Drop(reason) = res {
        kfree_skb_reason(skb, reason);
        return tp.state == TcpState::SynRecv;
    }
    match tp.state {
        TcpState::SynRecv => {
            // Simultaneous open completes.
            tcp_set_state(stack, ctx, tp, TcpState::Established);
            tp.snd_una = seg.ack_seq;
            tp.snd_wnd = u32::from(seg.window) << tp.rx_opt.snd_wscale;
            tp.snd_wl1 = seg.seq;
            if tp.rx_opt.tstamp_ok {
                // tcp_header_len includes TS: handled by tcp_mtu_to_mss.
            }
            tcp_fast_path_on(tp);
            tcp_init_transfer(stack, ctx, tp);
            tp.ack.lrcvtime = now;
            if !tp.dead {
                ctx.sk_wake(tp.id, SkEvent::StateChange);
                ctx.sk_wake(tp.id, SkEvent::WriteSpace);
            }
        }
        TcpState::FinWait1 if tp.snd_una == tp.write_seq => {
            tcp_set_state(stack, ctx, tp, TcpState::FinWait2);
            tp.shutdown |= SEND_SHUTDOWN;
            if tp.dead {
                if tp.opts_ext.linger2 < 0 {
                    // TCP_LINGER2 < 0: no orphaned FIN-WAIT-2 at all.
                    tcp_done(stack, ctx, tp);
                    ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpAbortOnData);
                    return true;
                }
                if seg.end_seq != seg.seq
                    && after(
                        seg.end_seq.wrapping_sub(u32::from(seg.has(TcpFlags::FIN))),
                        tp.rcv_nxt,
                    )
                {
                    ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpAbortOnData);
                    tcp_done(stack, ctx, tp);
                    return true;
                }
                let tmo = crate::tcp::tcp_fin_time(ctx, tp);
                if tmo > TCP_TIMEWAIT_LEN {
                    inet_csk_reset_keepalive_timer(ctx, tp, tmo.saturating_sub(TCP_TIMEWAIT_LEN));
                } else if seg.has(TcpFlags::FIN) {
                    inet_csk_reset_keepalive_timer(ctx, tp, tmo);
                } else {
                    crate::tcp_minisocks::tcp_time_wait(stack, ctx, tp, TcpState::FinWait2, tmo);
                    return false;
                }
            } else {
                ctx.sk_wake(tp.id, SkEvent::StateChange);
            }
        }
        TcpState::Closing if tp.snd_una == tp.write_seq => {
            crate::tcp_minisocks::tcp_time_wait(stack, ctx, tp, TcpState::TimeWait, Duration::ZERO);
            return false;
        }
        TcpState::LastAck if tp.snd_una == tp.write_seq => {
            crate::tcp_metrics::tcp_update_metrics(&stack.metrics, ctx, tp);
            tcp_done(stack, ctx, tp);
            return false;
        }
        _ => {}
    }
    // Step 6: the URG bit.
    if seg.has(TcpFlags::URG) || tp.urg_data == TCP_URG_NOTYET {
        tcp_urg(ctx, tp, seg, &skb);
    }
    // Step 7: the segment text.
    match tp.state {
        TcpState::CloseWait | TcpState::Closing | TcpState::LastAck
            if !before(seg.seq, tp.rcv_nxt) => {}
        TcpState::CloseWait
        | TcpState::Closing
        | TcpState::LastAck
        | TcpState::FinWait1
        | TcpState::FinWait2
        | TcpState::Established => {
            if tp.shutdown & RCV_SHUTDOWN != 0
                && tp.state != TcpState::Established
                && seg.end_seq != seg.seq
                && after(
                    seg.end_seq.wrapping_sub(u32::from(seg.has(TcpFlags::FIN))),
                    tp.rcv_nxt,
                )
                && tp.dead
            {
                ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TcpAbortOnData);
                tcp_reset(stack, ctx, tp);
                return true;
            }
            tcp_data_queue(stack, ctx, tp, seg, skb);
        }
        _ => {}
    }
    if !matches!(tp.state, TcpState::Close | TcpState::TimeWait) {
        tcp_data_snd_check(ctx, tp);
        tcp_ack_snd_check(ctx, tp);
    }
    false
}
