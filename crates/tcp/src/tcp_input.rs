//! Receiving: the state machine of a full socket, ACK processing, SACK,
//! loss recovery, RTT, the receive and out-of-order queues, and when to ACK.
//!
//! Mirrors `net/ipv4/tcp_input.c`: `tcp_rcv_state_process()`,
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
//! - Segments reach TCP linear (softnet linearizes GRO packets for IPv4),
//!   so `tcp_try_coalesce()` only copies into the tail skb's spare room
//!   (no fragment stealing) and `tcp_collapse()` copies into small pool
//!   buffers (2 KiB, not a page).
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
use crate::tcp_sock::{
    ICSK_ACK_NOW, ICSK_ACK_PUSHED, ICSK_ACK_SCHED, RCV_SHUTDOWN, RxSkb, SEND_SHUTDOWN, TCP_ATO_MIN,
    TCP_RTO_MAX, TCP_TIMEWAIT_LEN, TCPCB_EVER_RETRANS, TCPCB_LOST, TCPCB_SACKED_ACKED,
    TCPCB_SACKED_RETRANS, TcpSock, TcpState, after, before, between,
};
use crate::tcp_timer::{TcpTimer, inet_csk_reset_keepalive_timer, inet_csk_reset_xmit_timer};

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
const FLAG_SND_UNA_ADVANCED: u32 = 0x400;
const FLAG_DSACKING_ACK: u32 = 0x800;
const FLAG_UPDATE_TS_RECENT: u32 = 0x4000;
const FLAG_NO_CHALLENGE_ACK: u32 = 0x8000;
const FLAG_ACKED: u32 = FLAG_DATA_ACKED | FLAG_SYN_ACKED;
const FLAG_NOT_DUP: u32 = FLAG_DATA | FLAG_WIN_UPDATE | FLAG_ACKED;

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

/// The stamp of `tcp_store_ts_recent()` is in seconds.
fn secs(now: Instant) -> u64 {
    now.as_nanos() / 1_000_000_000
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
            <= (tp.rto.as_millis() as i32 * 1024 / 1000)
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
    if let Some(last) = tp.last_oow_ack_time
        && now.saturating_duration_since(last) < limit
    {
        ctx.mibs().inc(ctx.cpu(), mib);
        return true;
    }
    tp.last_oow_ack_time = Some(now);
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
    ctx.mibs().inc(ctx.cpu(), LinuxMib::TcpChallengeAck);
    tcp_send_ack(ctx, tp);
}

/// Acknowledges an unacceptable segment, with a D-SACK for a duplicate.
/// Mirrors `tcp_send_dupack()`.
fn tcp_send_dupack<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, seg: &TcpSeg) {
    if seg.end_seq != seg.seq && before(seg.seq, tp.rcv_nxt) {
        ctx.mibs().inc(ctx.cpu(), LinuxMib::DelayedAckLost);
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
        ctx.mibs().inc(cpu, LinuxMib::PawsEstabRejected);
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
                ctx.mibs().inc(cpu, LinuxMib::BeyondWindow);
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
    ctx.mibs().inc(cpu, TcpMib::InErrs);
    ctx.mibs().inc(cpu, LinuxMib::TcpSynChallenge);
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
    let rto_min_us = ctx.sysctl().get_int(Sysctl::TCP_RTO_MIN_US).max(1) as u32;
    let mut m = mrtt_us.max(1);
    tp.min_rtt_us = tp.min_rtt_us.min(m as u32);
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
    let rto_us = u64::from(tp.srtt_us >> 3) + u64::from(tp.rttvar_us);
    tp.rto = Duration::from_micros(rto_us).min(TCP_RTO_MAX);
}

/// Moves the CA state, telling the congestion controller. Mirrors
/// `tcp_set_ca_state()`.
fn tcp_set_ca_state(tp: &mut TcpSock, st: TcpCaState) {
    tp.ca_ops.set_state(&mut tp.cwnd, st);
    tp.ca_state = st;
}

/// The retransmission timer expired: everything not SACKed is lost, cwnd
/// drops to one segment above the flight, ssthresh is cut once per window.
/// Mirrors `tcp_enter_loss()` with `tcp_timeout_mark_lost()`.
pub(crate) fn tcp_enter_loss<C: TcpContext>(_ctx: &mut C, tp: &mut TcpSock) {
    tp.retrans_out = 0;
    tp.lost_out = 0;
    let n = tp.packets_out as usize;
    for seg in tp.write_queue.iter_mut().take(n) {
        seg.sacked &= !TCPCB_SACKED_RETRANS;
        if seg.sacked & TCPCB_SACKED_ACKED == 0 {
            seg.sacked |= TCPCB_LOST;
            tp.lost_out += 1;
        }
    }
    if matches!(tp.ca_state, TcpCaState::Open | TcpCaState::Disorder)
        || !after(tp.high_seq, tp.snd_una)
        || (tp.ca_state == TcpCaState::Loss && tp.retransmits == 0)
    {
        tp.prior_cwnd = tp.cwnd.snd_cwnd;
        let ss = tp.ca_ops.ssthresh(&tp.cwnd);
        tp.cwnd.snd_ssthresh = ss;
        tp.ca_ops.cwnd_event(&mut tp.cwnd, CaEvent::Loss);
    }
    tp.cwnd.snd_cwnd = tp.packets_in_flight() + 1;
    tp.cwnd.snd_cwnd_cnt = 0;
    tcp_set_ca_state(tp, TcpCaState::Loss);
    tp.high_seq = tp.snd_nxt;
}

/// Marks SACK blocks on the retransmission queue. Mirrors
/// `tcp_sacktag_write_queue()` with `tcp_check_dsack()`: a first block
/// below `snd_una` (or inside the second) is a D-SACK (`TCPDSACKRecv`).
/// Returns the flags and the number of segments newly SACKed.
fn tcp_sacktag_write_queue<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    seg: &TcpSeg,
    prior_snd_una: u32,
) -> (u32, u32) {
    let blocks = &seg.opts.sack_blocks;
    if blocks.is_empty() || !tp.rx_opt.sack_ok {
        return (0, 0);
    }
    let mut flag = 0;
    let mut newly = 0;
    let first = blocks[0];
    let dsack = before(first.start_seq, seg.ack_seq)
        || blocks.get(1).is_some_and(|b| {
            !after(first.end_seq, b.end_seq) && !before(first.start_seq, b.start_seq)
        });
    if dsack {
        ctx.mibs().inc(ctx.cpu(), LinuxMib::TcpDsackRecv);
        flag |= FLAG_DSACKING_ACK;
    }
    let lower = prior_snd_una.wrapping_sub(tp.max_window);
    for (i, b) in blocks.iter().enumerate() {
        if i == 0 && dsack {
            continue;
        }
        if !after(b.end_seq, b.start_seq)
            || after(b.end_seq, tp.snd_nxt)
            || before(b.start_seq, lower)
        {
            ctx.mibs().inc(ctx.cpu(), LinuxMib::TcpSackDiscard);
            continue;
        }
        let n = tp.packets_out as usize;
        for s in tp.write_queue.iter_mut().take(n) {
            if !before(s.seq, b.start_seq)
                && !after(s.end_seq, b.end_seq)
                && s.sacked & TCPCB_SACKED_ACKED == 0
            {
                if s.sacked & TCPCB_SACKED_RETRANS != 0 {
                    tp.retrans_out = tp.retrans_out.saturating_sub(1);
                }
                if s.sacked & TCPCB_LOST != 0 {
                    tp.lost_out = tp.lost_out.saturating_sub(1);
                }
                s.sacked = (s.sacked & !(TCPCB_SACKED_RETRANS | TCPCB_LOST)) | TCPCB_SACKED_ACKED;
                tp.sacked_out += 1;
                newly += 1;
                flag |= FLAG_DATA_SACKED;
            }
        }
    }
    (flag, newly)
}

/// Marks lost the segments with at least `tcp_reordering` SACKed segments
/// above them (the RFC 6675 `IsLost()` rule); without SACK, the head.
/// Mirrors `tcp_mark_head_lost()` / `tcp_update_scoreboard()`.
fn tcp_update_scoreboard(tp: &mut TcpSock, reordering: u32, mark_head: bool) {
    let n = tp.packets_out as usize;
    if !tp.rx_opt.sack_ok || tp.sacked_out == 0 {
        if mark_head
            && let Some(s) = tp.write_queue.front_mut()
            && n > 0
            && s.sacked & (TCPCB_LOST | TCPCB_SACKED_ACKED) == 0
        {
            s.sacked |= TCPCB_LOST;
            tp.lost_out += 1;
        }
        return;
    }
    let mut sacked_above = 0;
    for i in (0..n).rev() {
        let s = &mut tp.write_queue[i];
        if s.sacked & TCPCB_SACKED_ACKED != 0 {
            sacked_above += 1;
        } else if sacked_above >= reordering && s.sacked & (TCPCB_LOST | TCPCB_SACKED_RETRANS) == 0
        {
            s.sacked |= TCPCB_LOST;
            tp.lost_out += 1;
        }
    }
    if mark_head
        && let Some(s) = tp.write_queue.front_mut()
        && s.sacked & (TCPCB_LOST | TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS) == 0
    {
        s.sacked |= TCPCB_LOST;
        tp.lost_out += 1;
    }
}

/// Removes fully acknowledged segments from the queue, takes an RTT sample
/// (Karn: only from never-retransmitted segments, else from the echoed
/// timestamp) and re-arms or stops the RTO. Mirrors
/// `tcp_clean_rtx_queue()` + `tcp_ack_update_rtt()` + `tcp_rearm_rto()`.
fn tcp_clean_rtx_queue<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, now: Instant) -> (u32, u32) {
    let mut flag = 0;
    let mut acked = 0;
    let mut seq_rtt: Option<Duration> = None;
    while tp.packets_out > 0 {
        let Some(s) = tp.write_queue.front() else {
            break;
        };
        if after(s.end_seq, tp.snd_una) {
            break;
        }
        let s = tp.write_queue.pop_front().expect("checked front");
        tp.packets_out -= 1;
        acked += 1;
        if s.sacked & TCPCB_SACKED_RETRANS != 0 {
            tp.retrans_out = tp.retrans_out.saturating_sub(1);
        }
        if s.sacked & TCPCB_SACKED_ACKED != 0 {
            tp.sacked_out = tp.sacked_out.saturating_sub(1);
        }
        if s.sacked & TCPCB_LOST != 0 {
            tp.lost_out = tp.lost_out.saturating_sub(1);
        }
        if s.sacked & TCPCB_EVER_RETRANS != 0 {
            flag |= FLAG_RETRANS_DATA_ACKED;
        } else if let Some(sent) = s.sent_at {
            seq_rtt = Some(now.saturating_duration_since(sent));
        }
        if s.flags.contains(TcpFlags::SYN) {
            flag |= FLAG_SYN_ACKED;
        } else {
            flag |= FLAG_DATA_ACKED;
        }
        tp.wmem_queued = tp.wmem_queued.saturating_sub(s.truesize());
        tp.delivered += 1;
    }
    if tp.write_queue.is_empty() && tp.write_queue.capacity() > 0 {
        tp.write_queue = std::collections::VecDeque::new();
    }
    if flag & FLAG_ACKED != 0 {
        let mut rtt_us = seq_rtt.map(|d| d.as_micros() as i64);
        if rtt_us.is_none() && tp.rx_opt.saw_tstamp && tp.rx_opt.rcv_tsecr != 0 {
            let delta = tp.tcp_time_stamp(now).wrapping_sub(tp.rx_opt.rcv_tsecr) as i32;
            if delta >= 0 {
                rtt_us = Some(i64::from(delta) * 1000);
            }
        }
        if let Some(r) = rtt_us {
            tcp_rtt_estimator(ctx, tp, r);
            tp.backoff = 0;
        }
        tp.ca_ops
            .pkts_acked(&mut tp.cwnd, acked, rtt_us.unwrap_or(-1));
        // tcp_rearm_rto()
        if tp.packets_out == 0 {
            ctx.cancel_timer(TcpTimer::Retransmit(tp.id));
        } else {
            let id = tp.id;
            inet_csk_reset_xmit_timer(ctx, tp, TcpTimer::Retransmit(id), tp.rto, TCP_RTO_MAX);
        }
    }
    (flag, acked)
}

/// Processes an incoming ACK. Mirrors `tcp_ack()`: RFC 5961 §5.2 (an ACK
/// beyond `snd_nxt`, or older than `snd_una - max_window`, gets a challenge
/// ACK and is dropped), the window update, SACK tagging, cleaning the
/// queue, loss recovery and cwnd growth.
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
    let prior_in_flight = tp.packets_in_flight();
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
            let (f, newly) = tcp_sacktag_write_queue(ctx, tp, seg, prior_snd_una);
            flag |= f;
            tcp_fastretrans_alert(ctx, tp, prior_snd_una, flag, newly, prior_in_flight);
            tcp_xmit_retransmit_queue(ctx, tp);
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
    if flag & FLAG_UPDATE_TS_RECENT != 0
        && tp.rx_opt.saw_tstamp
        && !after(seg.seq, tp.rcv_wup)
        && tcp_paws_check(tp, 0, now)
    {
        tcp_store_ts_recent(tp, now);
    }
    // tcp_ack_update_window()
    let mut nwin = u32::from(seg.window);
    if !seg.has(TcpFlags::SYN) {
        nwin <<= tp.rx_opt.snd_wscale;
    }
    if tcp_may_update_window(tp, ack, seg.seq, nwin) {
        flag |= FLAG_WIN_UPDATE;
        tp.snd_wl1 = seg.seq;
        if tp.snd_wnd != nwin {
            tp.snd_wnd = nwin;
            if nwin > tp.max_window {
                tp.max_window = nwin;
                let pmtu = tp.pmtu;
                tcp_sync_mss(tp, pmtu);
            }
        }
    }
    if after(ack, tp.snd_una) {
        tp.bytes_acked += u64::from(ack.wrapping_sub(tp.snd_una));
    }
    tp.snd_una = ack;
    // What the congestion controller reads of the socket (tcp_mstamp,
    // snd_una, snd_nxt) is current for this ACK.
    tp.cwnd.tcp_mstamp = now.as_micros();
    tp.cwnd.snd_una = tp.snd_una;
    tp.cwnd.snd_nxt = tp.snd_nxt;
    let (sflag, newly_sacked) = tcp_sacktag_write_queue(ctx, tp, seg, prior_snd_una);
    flag |= sflag;
    tp.rcv_tstamp = now;
    tp.last_ack_recv = now;
    tp.probes_out = 0;
    if prior_packets == 0 {
        // no_queue: an ACK that opens the window ends the probing.
        tcp_ack_probe(ctx, tp);
        return AckResult::Ok;
    }
    let (cflag, acked) = tcp_clean_rtx_queue(ctx, tp, now);
    flag |= cflag;
    if tp.tlp_high_seq.is_some() {
        let tlp_flags = crate::tcp_recovery::TlpAckFlags {
            snd_una_advanced: flag & FLAG_SND_UNA_ADVANCED != 0,
            not_dup: flag & FLAG_NOT_DUP != 0,
            data_sacked: flag & FLAG_DATA_SACKED != 0,
            dsack_tlp: false,
        };
        crate::tcp_recovery::tcp_process_tlp_ack(ctx, tp, ack, &tlp_flags);
    }
    if tp.retrans_out == 0 && flag & FLAG_SND_UNA_ADVANCED != 0 {
        tp.retrans_stamp = None;
    }
    let dubious =
        flag & FLAG_NOT_DUP == 0 || tp.ca_state != TcpCaState::Open || flag & FLAG_DATA_SACKED != 0;
    if dubious {
        tcp_fastretrans_alert(
            ctx,
            tp,
            prior_snd_una,
            flag,
            acked + newly_sacked,
            prior_in_flight,
        );
    }
    // tcp_cong_control(): cwnd grows on forward progress (tcp_may_raise_cwnd())
    // unless a reduction is under way.
    if flag & FLAG_DATA_ACKED != 0 && !matches!(tp.ca_state, TcpCaState::Recovery | TcpCaState::Cwr)
    {
        tp.ca_ops
            .cong_avoid(&mut tp.cwnd, ack, acked + newly_sacked);
    }
    // tcp_set_xmit_timer(): the loss probe replaces the RTO re-armed by
    // tcp_clean_rtx_queue() when it may.
    if flag & FLAG_ACKED != 0 {
        crate::tcp_recovery::tcp_schedule_loss_probe(ctx, tp, true);
    }
    // trace_tcp_probe()
    let acked_bytes = u64::from(ack.wrapping_sub(prior_snd_una));
    let sample = crate::tcp_probe::tcp_probe_sample(tp, now, acked_bytes, tp.probe_prev);
    tp.probe_prev = Some((now, sample.delivery_rate));
    ctx.tcp_probe(&sample);
    tcp_xmit_retransmit_queue(ctx, tp);
    AckResult::Ok
}

/// An ACK with nothing in flight: if the window now takes the head, stop
/// probing; else re-arm the probe timer. Mirrors `tcp_ack_probe()`.
fn tcp_ack_probe<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let idx = tp.packets_out as usize;
    let Some(head) = tp.write_queue.get(idx) else {
        return;
    };
    if ctx.timer_pending(TcpTimer::Probe0(tp.id)).is_none() {
        return;
    }
    let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
    if after(head.end_seq, wnd_end) {
        let when = (crate::tcp_output::tcp_probe0_base(tp) * (1u32 << tp.backoff.min(20)))
            .min(TCP_RTO_MAX);
        let id = tp.id;
        inet_csk_reset_xmit_timer(ctx, tp, TcpTimer::Probe0(id), when, TCP_RTO_MAX);
    } else {
        tp.backoff = 0;
        tp.probes_out = 0;
        ctx.cancel_timer(TcpTimer::Probe0(tp.id));
    }
}

/// Loss recovery on dubious ACKs. Mirrors `tcp_fastretrans_alert()` in its
/// NewReno (RFC 6582) and SACK forms: duplicate ACKs (or SACKed segments)
/// beyond `tcp_reordering` start fast recovery (`TCPRenoRecovery` /
/// `TCPSackRecovery`, `TCPFastRetrans`), with ssthresh from the congestion
/// controller and cwnd reduced by PRR (`tcp_cwnd_reduction()`); a partial
/// ACK retransmits the next hole; an ACK at or beyond `high_seq` ends the
/// recovery (`tcp_end_cwnd_reduction()`) or the loss state.
fn tcp_fastretrans_alert<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    prior_snd_una: u32,
    flag: u32,
    newly_acked_sacked: u32,
    _prior_in_flight: u32,
) {
    let cpu = ctx.cpu();
    let reordering = ctx.sysctl().get_int(Sysctl::TCP_REORDERING).max(1) as u32;
    let is_dupack = tp.snd_una == prior_snd_una && flag & FLAG_NOT_DUP == 0;
    let sack = tp.rx_opt.sack_ok;
    if !sack && is_dupack && tp.packets_out > 0 {
        // tcp_add_reno_sack(): a dupack stands for one segment delivered.
        tp.sacked_out = (tp.sacked_out + 1).min(tp.packets_out.saturating_sub(1));
    }
    if !sack && flag & FLAG_SND_UNA_ADVANCED != 0 {
        // tcp_remove_reno_sacks()
        tp.sacked_out = tp
            .sacked_out
            .saturating_sub(newly_acked_sacked)
            .min(tp.packets_out.saturating_sub(1));
        if tp.ca_state != TcpCaState::Recovery {
            tp.sacked_out = 0;
        }
    }
    match tp.ca_state {
        TcpCaState::Recovery | TcpCaState::Cwr if !before(tp.snd_una, tp.high_seq) => {
            // tcp_end_cwnd_reduction()
            tp.cwnd.snd_cwnd = tp.cwnd.snd_ssthresh.max(1);
            tp.cwnd.snd_cwnd_cnt = 0;
            tp.ca_ops.cwnd_event(&mut tp.cwnd, CaEvent::CompleteCwr);
            if !sack {
                tp.sacked_out = 0;
            }
            tcp_set_ca_state(tp, TcpCaState::Open);
            tp.undo_marker = None;
            return;
        }
        TcpCaState::Loss if !before(tp.snd_una, tp.high_seq) => {
            tcp_set_ca_state(tp, TcpCaState::Open);
            if !sack {
                tp.sacked_out = 0;
            }
            return;
        }
        TcpCaState::Loss => {
            let mark_head = !sack && flag & FLAG_SND_UNA_ADVANCED != 0;
            tcp_update_scoreboard(tp, reordering, mark_head);
            return;
        }
        TcpCaState::Recovery => {
            if flag & FLAG_SND_UNA_ADVANCED != 0 && !sack {
                // NewReno partial ACK: the next segment is lost too.
                tcp_update_scoreboard(tp, reordering, true);
            } else {
                tcp_update_scoreboard(tp, reordering, false);
            }
            tcp_cwnd_reduction(tp, newly_acked_sacked, flag);
            return;
        }
        _ => {}
    }
    // Open, Disorder: time to recover?
    let dupthresh_hit = tp.sacked_out + 1 > reordering || tp.lost_out > 0;
    if dupthresh_hit && tp.packets_out > 0 {
        let mib = if sack {
            LinuxMib::TcpSackRecovery
        } else {
            LinuxMib::TcpRenoRecovery
        };
        ctx.mibs().inc(cpu, mib);
        // tcp_enter_recovery() + tcp_init_cwnd_reduction()
        tp.undo_marker = Some(tp.snd_una);
        tp.undo_retrans = 0;
        tp.high_seq = tp.snd_nxt;
        tp.prior_cwnd = tp.cwnd.snd_cwnd;
        tp.prr_delivered = 0;
        tp.prr_out = 0;
        let ss = tp.ca_ops.ssthresh(&tp.cwnd);
        tp.cwnd.snd_ssthresh = ss;
        tcp_set_ca_state(tp, TcpCaState::Recovery);
        tcp_update_scoreboard(tp, reordering, true);
        ctx.mibs().inc(cpu, LinuxMib::TcpFastRetrans);
        tcp_cwnd_reduction(tp, newly_acked_sacked, flag);
    } else if tp.sacked_out > 0 || is_dupack {
        if tp.ca_state == TcpCaState::Open {
            tcp_set_ca_state(tp, TcpCaState::Disorder);
        }
    } else if tp.ca_state == TcpCaState::Disorder {
        tcp_set_ca_state(tp, TcpCaState::Open);
    }
}

/// Proportional Rate Reduction (RFC 6937). Mirrors `tcp_cwnd_reduction()`.
fn tcp_cwnd_reduction(tp: &mut TcpSock, newly_acked_sacked: u32, flag: u32) {
    if newly_acked_sacked == 0 && flag & FLAG_SND_UNA_ADVANCED == 0 && tp.prr_out > 0 {
        return;
    }
    let in_flight = tp.packets_in_flight();
    let ssthresh = tp.cwnd.snd_ssthresh;
    let delta = i64::from(ssthresh) - i64::from(in_flight);
    tp.prr_delivered += newly_acked_sacked;
    let sndcnt: i64 = if delta < 0 {
        let dividend =
            u64::from(ssthresh) * u64::from(tp.prr_delivered) + u64::from(tp.prior_cwnd) - 1;
        (dividend / u64::from(tp.prior_cwnd.max(1))) as i64 - i64::from(tp.prr_out)
    } else {
        let mut s = (i64::from(tp.prr_delivered) - i64::from(tp.prr_out))
            .max(i64::from(newly_acked_sacked));
        if flag & FLAG_SND_UNA_ADVANCED != 0 {
            s += 1;
        }
        s.min(delta)
    };
    let sndcnt = sndcnt.max(i64::from(tp.prr_out == 0));
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
) {
    let now = ctx.now();
    tp.ack.pending |= ICSK_ACK_SCHED;
    tcp_measure_rcv_mss(tp, gso_size, len, truesize);
    if tp.ack.ato.is_zero() {
        tcp_incr_quickack(tp, MAX_QUICKACKS);
        tp.ack.ato = TCP_ATO_MIN;
    } else {
        let m = now.saturating_duration_since(tp.ack.lrcvtime);
        if m <= TCP_ATO_MIN / 2 {
            tp.ack.ato = tp.ack.ato / 2 + TCP_ATO_MIN / 2;
        } else if m < tp.ack.ato {
            tp.ack.ato = (tp.ack.ato / 2 + m).min(tp.rto);
        } else if m > tp.rto {
            tcp_incr_quickack(tp, MAX_QUICKACKS);
        }
    }
    tp.ack.lrcvtime = now;
    tcp_rcv_rtt_measure(tp, now, len);
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
            tp.ack.pingpong = 1;
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
    for s in tp.ofo_queue.drain(..) {
        tp.rmem_alloc = tp.rmem_alloc.saturating_sub(s.skb.truesize() as u32);
    }
    tp.ofo_queue = std::collections::VecDeque::new();
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
    ctx.mibs().inc(cpu, LinuxMib::PruneCalled);
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
    ctx.mibs().inc(cpu, LinuxMib::RcvPruned);
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
        let off = seq.wrapping_sub(s.seq) as usize;
        let data = s.skb.data();
        let mut rest = data.get(off..).unwrap_or(&[]);
        while !rest.is_empty() {
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
            let n = c.tailroom().min(rest.len());
            if c.put_data(&rest[..n]).is_err() {
                return;
            }
            rest = &rest[n..];
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
    ctx.mibs().inc(ctx.cpu(), LinuxMib::OfoPruned);
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
    ctx: &C,
    tp: &mut TcpSock,
    mut seq: u32,
    mut skb: SkBuff,
    fin: bool,
) {
    let cpu = ctx.cpu();
    let (len, truesize) = (skb.len() as u32, skb.truesize() as u32);
    if !tcp_try_rmem_schedule(stack, ctx, tp, seq, len, truesize) {
        ctx.mibs().inc(cpu, LinuxMib::TcpOfoDrop);
        kfree_skb_reason(skb, DropReason::TcpOfoDrop);
        return;
    }
    ctx.mibs().inc(cpu, LinuxMib::TcpOfoQueue);
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
            ctx.mibs().inc(cpu, LinuxMib::TcpOfoMerge);
            tcp_dsack_set(ctx, tp, seq, end);
            tcp_sack_new_ofo_skb(tp, orig.0, orig.1);
            kfree_skb_reason(skb, DropReason::TcpOfomerge);
            return;
        }
        if after(pend, seq) {
            let cut = pend.wrapping_sub(seq);
            tcp_dsack_set(ctx, tp, seq, pend);
            let _ = skb.pull(cut as usize);
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
            ctx.mibs().inc(cpu, LinuxMib::TcpOfoMerge);
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
                tcp_sack_new_ofo_skb(tp, orig.0, orig.1);
                return;
            }
            Err(skb) => skb,
        }
    } else {
        skb
    };
    tp.rmem_alloc += skb.truesize() as u32;
    tp.ofo_queue.insert(pos, RxSkb { seq, skb, fin });
    tcp_sack_new_ofo_skb(tp, orig.0, orig.1);
}

/// Appends in-order data to the receive queue, into the tail skb's spare
/// room when it fits. Mirrors `tcp_queue_rcv()`.
fn tcp_queue_rcv<C: TcpContext>(ctx: &C, tp: &mut TcpSock, seq: u32, skb: SkBuff, fin: bool) {
    let len = skb.len() as u32;
    tp.rcv_nxt = seq.wrapping_add(len);
    tp.bytes_received += u64::from(len);
    if len > 0 {
        let skb = match tp.receive_queue.back_mut() {
            Some(tail) => tcp_try_coalesce(ctx, tail, seq, skb).err(),
            None => Some(skb),
        };
        if let Some(skb) = skb {
            tp.rmem_alloc += skb.truesize() as u32;
            tp.receive_queue.push_back(RxSkb {
                seq,
                skb,
                fin: false,
            });
        }
    }
    if fin {
        tp.rcv_nxt = tp.rcv_nxt.wrapping_add(1);
    }
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
            let _ = s.skb.pull(cut as usize);
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
            ctx.mibs().inc(cpu, LinuxMib::TcpZeroWindowDrop);
            tcp_enter_quickack_mode(tp, MAX_QUICKACKS);
            tp.ack.pending |= ICSK_ACK_SCHED;
            kfree_skb_reason(skb, DropReason::TcpZerowindow);
            return;
        }
        let cut = tp.rcv_nxt.wrapping_sub(seq);
        if cut > 0 {
            let cut = cut.min(skb.len() as u32);
            let _ = skb.pull(cut as usize);
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
                    ctx.mibs().inc(cpu, LinuxMib::TcpRcvQDrop);
                    kfree_skb_reason(skb, DropReason::ProtoMem);
                    return;
                }
            }
        } else if !sk_rmem_schedule(&stack.mem, ctx, tp, truesize) {
            sk_forced_mem_schedule(&stack.mem, tp, truesize);
        }
        let len = skb.len() as u32;
        let seq_now = tp.rcv_nxt;
        tcp_queue_rcv(ctx, tp, seq_now, skb, fin);
        if len > 0 {
            tcp_event_data_recv(ctx, tp, gso_size, len, truesize);
        }
        let mut fin_now = fin;
        if !tp.ofo_queue.is_empty() {
            fin_now |= tcp_ofo_queue(ctx, tp);
            if tp.ofo_queue.is_empty() {
                tp.ack.pending |= ICSK_ACK_NOW;
                tp.ofo_queue = std::collections::VecDeque::new();
            }
        }
        if !tp.selective_acks.is_empty() {
            tcp_sack_remove(tp);
        }
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
        ctx.mibs().inc(cpu, LinuxMib::DelayedAckLost);
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
    tcp_data_queue_ofo(stack, ctx, tp, seq, skb, fin);
}

/// Sends an ACK now or schedules a delayed one. Mirrors
/// `__tcp_ack_snd_check()`: now when more than one full segment is
/// unacknowledged and the window moves, in quick-ACK mode, when
/// `ICSK_ACK_NOW` is set, or while out-of-order data is held.
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
    if full
        || tcp_in_quickack_mode(tp)
        || tp.ack.pending & ICSK_ACK_NOW != 0
        || !tp.ofo_queue.is_empty()
    {
        tcp_send_ack(ctx, tp);
        return;
    }
    tcp_send_delayed_ack(ctx, tp);
}

/// Sends what the window now allows and wakes a writer waiting for room.
/// Mirrors `tcp_data_snd_check()` + `tcp_check_space()`.
pub(crate) fn tcp_data_snd_check<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let nonagle = tp_nonagle(tp);
    tcp_push_pending_frames(ctx, tp, nonagle);
    if tp.nospace && tp.sk_stream_wspace() >= tp.wmem_queued / 2 {
        tp.nospace = false;
        if !tp.dead {
            ctx.sk_wake(tp.id, SkEvent::WriteSpace);
        }
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
            let start = tp.retrans_stamp.map_or(0, |t| tp.tcp_time_stamp(t));
            if !between(ecr, start, tp.tcp_time_stamp(now)) {
                ctx.mibs().inc(cpu, LinuxMib::PawsActiveRejected);
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
        // The SYN-ACK: settle the options.
        tcp_syn_options_received(ctx, tp, seg);
        tp.snd_wl1 = seg.seq;
        tcp_parse_ts(tp, seg);
        let _ = tcp_ack(stack, ctx, tp, seg, 0);
        tp.rcv_nxt = seg.seq.wrapping_add(1);
        tp.rcv_wup = tp.rcv_nxt;
        tp.snd_wnd = u32::from(seg.window);
        tp.max_window = tp.snd_wnd;
        if tp.rx_opt.saw_tstamp {
            tcp_store_ts_recent(tp, now);
        }
        let pmtu = tp.pmtu;
        tcp_sync_mss(tp, pmtu);
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
        tcp_sync_mss(tp, pmtu);
        tcp_initialize_rcv_mss(tp);
        // tcp_send_synack(): the SYN again, now with ACK.
        if let Some(s) = tp.write_queue.front_mut() {
            s.flags = TcpFlags::SYN | TcpFlags::ACK;
        }
        let iss = tp.snd_una;
        let _ = crate::tcp_output::tcp_transmit(
            ctx,
            tp,
            iss,
            TcpFlags::SYN | TcpFlags::ACK,
            None,
            false,
        );
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
    tcp_init_transfer(ctx, tp);
}

/// Sets up cwnd and buffers for data transfer. Mirrors `tcp_init_transfer()`.
pub(crate) fn tcp_init_transfer<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
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
    tcp_init_buffer_space(ctx.sysctl(), tp, now);
    if tp.opts.keepalive {
        let when = crate::tcp_timer::keepalive_time_when(ctx, tp);
        inet_csk_reset_keepalive_timer(ctx, tp.id, when);
    }
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
    let old = tp.rcv_rtt_us;
    let m = sample_us.saturating_mul(8);
    tp.rcv_rtt_us = if old == 0 || m < old {
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
    if tp.rx_opt.tstamp_ok && tp.rx_opt.rcv_tsecr != tp.rcv_rtt_last_tsecr {
        tp.rcv_rtt_last_tsecr = tp.rx_opt.rcv_tsecr;
        if seg_len >= u32::from(tp.ack.rcv_mss) {
            let delta_ms = tp.tcp_time_stamp(now).wrapping_sub(tp.rx_opt.rcv_tsecr);
            if delta_ms > 0 && delta_ms < i32::MAX as u32 / 1000 {
                tcp_rcv_rtt_update(tp, delta_ms * 1000, false);
            }
        }
    }
    if let Some(t0) = tp.rcv_rtt_time {
        if before(tp.rcv_nxt, tp.rcv_rtt_seq) {
            return;
        }
        let us = now
            .saturating_duration_since(t0)
            .as_micros()
            .clamp(1, u128::from(u32::MAX / 8)) as u32;
        tcp_rcv_rtt_update(tp, us, true);
    }
    tp.rcv_rtt_seq = tp.rcv_nxt.wrapping_add(tp.rcv_wnd);
    tp.rcv_rtt_time = Some(now);
}

/// After the user read data: once per receiver RTT, if more was read than
/// last time, grow the receive buffer so the sender may double its rate.
/// Mirrors `tcp_rcv_space_adjust()` with `tcp_rcvbuf_grow()` (DRS).
pub(crate) fn tcp_rcv_space_adjust(sysctl: &Sysctl, tp: &mut TcpSock, now: Instant) {
    let time_us = now.saturating_duration_since(tp.rcvq_time).as_micros();
    if tp.rcv_rtt_us == 0 || time_us < u128::from(tp.rcv_rtt_us >> 3) {
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
        || skb.len() > to.skb.tailroom()
        || to.skb.is_cloned()
    {
        return Err(skb);
    }
    if to.skb.put_data(skb.data()).is_err() {
        return Err(skb);
    }
    ctx.mibs().inc(ctx.cpu(), LinuxMib::TcpRcvCoalesce);
    Ok(())
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
    if let Err(reason) = tcp_validate_incoming(stack, ctx, tp, seg) {
        kfree_skb_reason(skb, reason);
        return false;
    }
    if !seg.has(TcpFlags::ACK) {
        kfree_skb_reason(skb, DropReason::TcpFlags);
        return false;
    }
    let flag = FLAG_UPDATE_TS_RECENT
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
            tcp_init_transfer(ctx, tp);
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
                if tp.opts.linger2 < 0 {
                    // TCP_LINGER2 < 0: no orphaned FIN-WAIT-2 at all.
                    tcp_done(stack, ctx, tp);
                    ctx.mibs().inc(ctx.cpu(), LinuxMib::TcpAbortOnData);
                    return true;
                }
                if seg.end_seq != seg.seq
                    && after(
                        seg.end_seq.wrapping_sub(u32::from(seg.has(TcpFlags::FIN))),
                        tp.rcv_nxt,
                    )
                {
                    ctx.mibs().inc(ctx.cpu(), LinuxMib::TcpAbortOnData);
                    tcp_done(stack, ctx, tp);
                    return true;
                }
                let tmo = crate::tcp::tcp_fin_time(ctx, tp);
                if tmo > TCP_TIMEWAIT_LEN {
                    inet_csk_reset_keepalive_timer(
                        ctx,
                        tp.id,
                        tmo.saturating_sub(TCP_TIMEWAIT_LEN),
                    );
                } else if seg.has(TcpFlags::FIN) {
                    inet_csk_reset_keepalive_timer(ctx, tp.id, tmo);
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
            tcp_done(stack, ctx, tp);
            return false;
        }
        _ => {}
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
                ctx.mibs().inc(ctx.cpu(), LinuxMib::TcpAbortOnData);
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
