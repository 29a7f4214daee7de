//! Sending: segment building, the write queue, windows, ACKs, FIN, RST,
//! SYN, retransmission and probes.
//!
//! Mirrors `net/ipv4/tcp_output.c`: `__tcp_transmit_skb()`,
//! `tcp_options_write()` (through [`wire::TcpOptions::emit`]),
//! `tcp_select_window()`, `tcp_select_initial_window()`, `tcp_sync_mss()`,
//! `tcp_current_mss()`, `tcp_write_xmit()` with the Nagle, cwnd and window
//! tests, `tcp_send_ack()`, `tcp_send_delayed_ack()`, `tcp_send_fin()`,
//! `tcp_send_active_reset()`, `tcp_connect()`, `tcp_retransmit_skb()`,
//! `tcp_xmit_retransmit_queue()`, `tcp_send_probe0()`, `tcp_write_wakeup()`.
//!
//! ```text
//!  tcp_sendmsg -> write queue -> tcp_push -> tcp_write_xmit
//!       (cwnd test, rwnd test, Nagle) -> tcp_transmit_skb -> ip_queue_xmit
//! ```

use netcore::{Duration, Errno, Instant, LinuxMib, SkBuff, Sysctl, TcpMib};
use wire::{TcpFlags, TcpOptions, TcpRepr, TcpSackBlock};

use crate::context::TcpContext;
use crate::tcp_sock::{
    ICSK_ACK_PUSHED, ICSK_ACK_SCHED, ICSK_ACK_TIMER, MAX_TCP_HEADER, TCP_ATO_MIN, TCP_DELACK_MAX,
    TCP_DELACK_MIN, TCP_MAX_QUICKACKS, TCP_MAX_WSCALE, TCP_SKB_OVERHEAD, TCPCB_EVER_RETRANS,
    TCPCB_LOST, TCPCB_SACKED_ACKED, TCPCB_SACKED_RETRANS, TcpChrono, TcpSock, TcpState, TxSkb,
    after, before,
};
use crate::tcp_timer::{TcpTimer, icsk_pending_is, tcp_reset_xmit_timer};

/// `TCP_NAGLE_OFF`: `TCP_NODELAY` is set.
pub const TCP_NAGLE_OFF: u8 = 1;
/// `TCP_NAGLE_CORK`: hold partial segments.
pub const TCP_NAGLE_CORK: u8 = 2;
/// `TCP_NAGLE_PUSH`: send partial segments now.
pub const TCP_NAGLE_PUSH: u8 = 4;

/// The Nagle mode from the socket options (`tp->nonagle`).
pub(crate) fn tp_nonagle(tp: &TcpSock) -> u8 {
    if tp.opts.cork {
        TCP_NAGLE_CORK
    } else if tp.opts.nodelay {
        TCP_NAGLE_OFF
    } else {
        0
    }
}

/// Bytes of TCP header without options plus the aligned timestamp option
/// when negotiated (`tp->tcp_header_len`).
pub(crate) fn tcp_header_len(tp: &TcpSock) -> u16 {
    if tp.rx_opt.tstamp_ok { 32 } else { 20 }
}

/// Converts a path MTU to an MSS: `__tcp_mtu_to_mss()` minus the
/// timestamp option (`tcp_mtu_to_mss()`). The peer's MSS clamps it, and
/// `tcp_min_snd_mss` (48) bounds it from below, so that a tiny MSS option
/// cannot make the stack cut data into thousands of segments.
pub(crate) fn tcp_mtu_to_mss(tp: &TcpSock, pmtu: u32, sysctl: &netcore::Sysctl) -> u16 {
    let mut mss = pmtu.saturating_sub(40).min(u32::from(u16::MAX)) as u16;
    mss = mss.min(tp.rx_opt.mss_clamp);
    let min_snd_mss = sysctl.get_int(netcore::Sysctl::TCP_MIN_SND_MSS);
    mss = mss.max(u16::try_from(min_snd_mss).unwrap_or(48));
    mss - (tcp_header_len(tp) - 20)
}

/// Clamps a segment size to half the largest window the peer offered.
/// Mirrors `tcp_bound_to_half_wnd()`.
fn tcp_bound_to_half_wnd(tp: &TcpSock, pktsize: u32) -> u32 {
    let cutoff = if tp.max_window > u32::from(crate::tcp_sock::TCP_MSS_DEFAULT) {
        tp.max_window >> 1
    } else {
        tp.max_window
    };
    if cutoff > 0 && pktsize > cutoff {
        cutoff.max(68 - u32::from(tcp_header_len(tp)))
    } else {
        pktsize
    }
}

/// Recomputes `mss_cache` for a path MTU. Mirrors `tcp_sync_mss()`.
pub(crate) fn tcp_sync_mss(tp: &mut TcpSock, pmtu: u32, sysctl: &netcore::Sysctl) -> u16 {
    let mss = tcp_mtu_to_mss(tp, pmtu, sysctl);
    let mss = tcp_bound_to_half_wnd(tp, u32::from(mss)) as u16;
    tp.pmtu = pmtu;
    tp.mss_cache = mss;
    mss
}

/// The payload size of the next segment: `mss_cache` less the option bytes
/// beyond `tcp_header_len` (SACK blocks). Mirrors `tcp_current_mss()`.
pub(crate) fn tcp_current_mss(tp: &TcpSock) -> u16 {
    let opts_len = established_options_len(tp);
    debug_assert_eq!(
        opts_len,
        established_options(tp, Instant::ZERO).buffer_len(),
        "established_options_len() disagrees with established_options()"
    );
    let hlen = 20 + opts_len as u16;
    let base = tcp_header_len(tp);
    tp.mss_cache
        .saturating_sub(hlen.saturating_sub(base))
        .max(1)
}

/// The largest GSO packet TCP builds: `GSO_LEGACY_MAX_SIZE` (64 KiB) less
/// `MAX_TCP_HEADER + 1`, as `sk_setup_caps()` sets `sk_gso_max_size`
/// (Linux's x86-64 `MAX_TCP_HEADER` of 320 bytes).
pub(crate) const SK_GSO_MAX_SIZE: u32 = 65536 - (320 + 1);
/// The most segments in one GSO packet (`GSO_MAX_SEGS`).
pub(crate) const GSO_MAX_SEGS: u32 = 65535;

/// How many bytes `tcp_sendmsg_locked()` puts in one skb: a whole number
/// of MSS up to the GSO size, at most half the peer's largest window.
/// Mirrors `tcp_xmit_size_goal()` (with `tcp_bound_to_half_wnd()`).
pub(crate) fn tcp_xmit_size_goal(tp: &TcpSock, mss_now: u32) -> u32 {
    let mss_now = mss_now.max(1);
    let new_size_goal = tcp_bound_to_half_wnd(tp, SK_GSO_MAX_SIZE);
    let gso_segs = (new_size_goal / mss_now).min(GSO_MAX_SEGS);
    (gso_segs * mss_now).max(mss_now)
}

/// The most segments one GSO packet should carry: about 1 ms worth of
/// the pacing rate, more when the minimum RTT is small, at least
/// `tcp_min_tso_segs`. Mirrors `tcp_tso_segs()` + `tcp_tso_autosize()`.
pub(crate) fn tcp_tso_segs(sysctl: &Sysctl, tp: &TcpSock, mss_now: u32) -> u32 {
    let min_tso = sysctl.get_int(Sysctl::TCP_MIN_TSO_SEGS).max(1) as u32;
    let mut bytes =
        crate::tcp_pacing::sk_pacing_rate(sysctl, tp) >> crate::tcp_pacing::SK_PACING_SHIFT;
    let rtt_log = sysctl.get_int(Sysctl::TCP_TSO_RTT_LOG).clamp(0, 63) as u32;
    let r = u64::from(tp.min_rtt_us) >> rtt_log;
    if r < 32 {
        bytes += u64::from(SK_GSO_MAX_SIZE >> r);
    }
    let bytes = bytes.min(u64::from(SK_GSO_MAX_SIZE)) as u32;
    (bytes / mss_now.max(1)).max(min_tso).min(GSO_MAX_SEGS)
}

/// How many more segments cwnd lets out now: none once the flight fills
/// cwnd, else the room left but at most half of cwnd, so that at least two
/// GSO packets are in flight. Mirrors `tcp_cwnd_test()`.
pub(crate) fn tcp_cwnd_test(tp: &TcpSock) -> u32 {
    let in_flight = tp.packets_in_flight();
    let cwnd = tp.cwnd.snd_cwnd;
    if in_flight >= cwnd {
        return 0;
    }
    let halfcwnd = (cwnd >> 1).max(1);
    halfcwnd.min(cwnd - in_flight)
}

/// The MSS to announce: the route's MTU minus 40, or `TCP_MAXSEG`.
/// Mirrors `tcp_advertise_mss()` / `dst_metric_advmss()`.
pub(crate) fn tcp_advertise_mss(mtu: u32, user_mss: u16) -> u16 {
    let mss = mtu.saturating_sub(40).clamp(88, 65535) as u16;
    if user_mss != 0 {
        mss.min(user_mss)
    } else {
        mss
    }
}

/// The largest window offered to a peer that may read the field as signed
/// (`MAX_TCP_WINDOW`).
const MAX_TCP_WINDOW: u32 = 32767;

/// Picks the initial receive window, its clamp and the window scale.
///
/// Mirrors `tcp_select_initial_window()`: the window is the space rounded
/// down to a multiple of the MSS and at most 65535 (a SYN's window is never
/// scaled), or 32767 under `tcp_workaround_signed_windows` (for peers that
/// read the field as signed); the scale is chosen so that the largest buffer
/// (`max(tcp_rmem[2], rmem_max)`) fits: `ilog2(space) - 15`, at most 14.
pub fn tcp_select_initial_window(
    sysctl: &Sysctl,
    space: u32,
    mss: u32,
    window_clamp: u32,
    wscale_ok: bool,
) -> (u32, u32, u8) {
    let mut clamp = if window_clamp == 0 {
        65535u32 << TCP_MAX_WSCALE
    } else {
        window_clamp
    };
    let mut space = space.min(clamp);
    if space > mss {
        space = space / mss * mss;
    }
    let rcv_wnd = if sysctl.get_int(Sysctl::TCP_WORKAROUND_SIGNED_WINDOWS) != 0 {
        space.min(MAX_TCP_WINDOW)
    } else {
        space.min(65535)
    };
    let mut wscale = 0u8;
    if wscale_ok {
        let rmem_max = sysctl.tcp_rmem()[2].max(0) as u32;
        let s = space
            .max(rmem_max)
            .max(crate::tcp_sock::SYSCTL_MEM_MAX)
            .min(clamp);
        let ilog = 31 - s.max(1).leading_zeros() as i32;
        wscale = (ilog - 15).clamp(0, i32::from(TCP_MAX_WSCALE)) as u8;
    }
    clamp = clamp.min(65535u32 << wscale);
    (rcv_wnd, clamp, wscale)
}

/// The window to offer now, before scaling. Mirrors `__tcp_select_window()`.
pub(crate) fn tcp_select_window_raw(tp: &mut TcpSock) -> u32 {
    let mut mss = u32::from(tp.ack.rcv_mss.max(1));
    let mut free_space = tp.tcp_space();
    let allowed_space = tp.tcp_full_space();
    let full_space = tp.window_clamp.min(allowed_space);
    if mss > full_space {
        mss = full_space;
        if mss == 0 {
            return 0;
        }
    }
    let wscale = u32::from(tp.rx_opt.rcv_wscale);
    if free_space < (full_space >> 1) {
        tp.ack.quick = 0;
        free_space = free_space >> wscale << wscale;
        if free_space < (allowed_space >> 4) || free_space < mss {
            return 0;
        }
    }
    if free_space > tp.rcv_ssthresh {
        free_space = tp.rcv_ssthresh;
    }
    if wscale != 0 {
        (free_space + (1 << wscale) - 1) >> wscale << wscale
    } else {
        let mut window = tp.rcv_wnd;
        if window <= free_space.saturating_sub(mss) || window > free_space {
            window = free_space / mss * mss;
        } else if mss == full_space && free_space > window + (full_space >> 1) {
            window = free_space;
        }
        window
    }
}

/// The receive window still open to the peer: `tcp_receive_window()`.
pub(crate) fn tcp_receive_window(tp: &TcpSock) -> u32 {
    let win = tp.rcv_wup.wrapping_add(tp.rcv_wnd).wrapping_sub(tp.rcv_nxt) as i32;
    win.max(0) as u32
}

/// Chooses the window field of an outgoing segment and records it as
/// offered (`rcv_wnd`, `rcv_wup`); never shrinks the window already offered.
///
/// Mirrors `tcp_select_window()`. Counters: `TCPWantZeroWindowAdv`,
/// `TCPToZeroWindowAdv`, `TCPFromZeroWindowAdv`.
pub(crate) fn tcp_select_window<C: TcpContext>(ctx: &C, tp: &mut TcpSock) -> u16 {
    let old_win = tp.rcv_wnd;
    let cur_win = tcp_receive_window(tp);
    let mut new_win = tcp_select_window_raw(tp);
    let wscale = u32::from(tp.rx_opt.rcv_wscale);
    if new_win < cur_win {
        if new_win == 0 {
            ctx.mibs()
                .this_cpu(ctx.cpu())
                .inc(LinuxMib::TcpWantZeroWindowAdv);
        }
        new_win = (cur_win + (1 << wscale) - 1) >> wscale << wscale;
    }
    tp.rcv_wnd = new_win;
    tp.rcv_wup = tp.rcv_nxt;
    // The largest window the field can carry: 32767 to a peer without
    // window scaling under tcp_workaround_signed_windows.
    let max = if wscale == 0 && ctx.sysctl().get_int(Sysctl::TCP_WORKAROUND_SIGNED_WINDOWS) != 0 {
        MAX_TCP_WINDOW
    } else {
        65535u32 << wscale
    };
    let new_win = new_win.min(max) >> wscale;
    if new_win == 0 {
        // A zero window turns header prediction off.
        tp.pred_flags = 0;
        if old_win != 0 {
            ctx.mibs()
                .this_cpu(ctx.cpu())
                .inc(LinuxMib::TcpToZeroWindowAdv);
        }
    } else if old_win == 0 {
        ctx.mibs()
            .this_cpu(ctx.cpu())
            .inc(LinuxMib::TcpFromZeroWindowAdv);
    }
    new_win as u16
}

/// The options of a segment of an established connection: timestamps and
/// SACK blocks (a D-SACK first). Mirrors `tcp_established_options()`.
pub(crate) fn established_options(tp: &TcpSock, now: Instant) -> TcpOptions {
    let mut o = TcpOptions::default();
    if tp.rx_opt.tstamp_ok {
        o.timestamp = Some((tp.tcp_time_stamp(now), tp.rx_opt.ts_recent));
    }
    if tp.rx_opt.sack_ok {
        let room = if tp.rx_opt.tstamp_ok { 3 } else { 4 };
        if let Some(d) = tp.duplicate_sack.filter(|_| tp.dsack_pending) {
            let _ = o.sack_blocks.push(d);
        }
        for b in &tp.selective_acks {
            if o.sack_blocks.len() >= room {
                break;
            }
            let _ = o.sack_blocks.push(*b);
        }
    }
    o
}

/// The bytes [`established_options`] takes, without building them: the
/// `size` that `tcp_established_options()` returns (12 for the aligned
/// timestamp, 4 + 8 per SACK block, a D-SACK first, as many blocks as
/// fit).
fn established_options_len(tp: &TcpSock) -> usize {
    let mut len = if tp.rx_opt.tstamp_ok { 12 } else { 0 };
    if tp.rx_opt.sack_ok {
        let room = if tp.rx_opt.tstamp_ok { 3 } else { 4 };
        let dsack = usize::from(tp.dsack_pending && tp.duplicate_sack.is_some());
        let blocks = (dsack + tp.selective_acks.len()).min(room);
        if blocks > 0 {
            len += 4 + 8 * blocks;
        }
    }
    len
}

/// Writes the header of a segment of a synchronized connection into
/// `head` (exactly `20 + established_options_len(tp)` bytes): the fixed
/// part with a zero checksum, then the options [`established_options`]
/// lists, laid out as `tcp_options_write()` lays them out (NOP NOP TS;
/// NOP NOP SACK and the blocks, a D-SACK first).
///
/// Mirrors the header fill of `__tcp_transmit_skb()` with
/// `tcp_options_write()`, written in place from the socket, without the
/// [`TcpRepr`]/[`TcpOptions`] a SYN goes through.
fn tcp_established_header_write(
    head: &mut [u8],
    tp: &TcpSock,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    now: Instant,
) {
    let hlen = head.len();
    let bits = flags.bits();
    head[0..2].copy_from_slice(&tp.sport.to_be_bytes());
    head[2..4].copy_from_slice(&tp.dport.to_be_bytes());
    head[4..8].copy_from_slice(&seq.to_be_bytes());
    head[8..12].copy_from_slice(&ack.to_be_bytes());
    head[12] = ((hlen / 4) as u8) << 4 | (bits >> 8) as u8;
    head[13] = bits as u8;
    head[14..16].copy_from_slice(&window.to_be_bytes());
    head[16..18].fill(0);
    let urg_ptr = match tp.snd_up {
        Some(up) if flags.contains(TcpFlags::URG) && before(up, seq.wrapping_add(0x10000)) => {
            up.wrapping_sub(seq) as u16
        }
        Some(_) if flags.contains(TcpFlags::URG) => 0xFFFF,
        _ => 0,
    };
    head[18..20].copy_from_slice(&urg_ptr.to_be_bytes());
    let mut at = 20;
    if tp.rx_opt.tstamp_ok {
        head[20..24].copy_from_slice(&[
            wire::TCPOPT_NOP,
            wire::TCPOPT_NOP,
            wire::TCPOPT_TIMESTAMP,
            wire::TCPOLEN_TIMESTAMP,
        ]);
        head[24..28].copy_from_slice(&tp.tcp_time_stamp(now).to_be_bytes());
        head[28..32].copy_from_slice(&tp.rx_opt.ts_recent.to_be_bytes());
        at = 32;
    }
    if at < hlen {
        // SACK blocks: as many as the length computed for them.
        let n = (hlen - at - 4) / 8;
        head[at..at + 4].copy_from_slice(&[
            wire::TCPOPT_NOP,
            wire::TCPOPT_NOP,
            wire::TCPOPT_SACK,
            wire::TCPOLEN_SACK_BASE + wire::TCPOLEN_SACK_PERBLOCK * n as u8,
        ]);
        at += 4;
        let dsack = tp.duplicate_sack.filter(|_| tp.dsack_pending);
        for b in dsack.iter().chain(tp.selective_acks.iter()).take(n) {
            head[at..at + 4].copy_from_slice(&b.start_seq.to_be_bytes());
            head[at + 4..at + 8].copy_from_slice(&b.end_seq.to_be_bytes());
            at += 8;
        }
    }
    debug_assert_eq!(at, hlen, "options disagree with established_options_len()");
}

/// The options of a SYN from a full socket. Mirrors `tcp_syn_options()`.
pub(crate) fn syn_options(tp: &TcpSock, now: Instant) -> TcpOptions {
    TcpOptions {
        mss: Some(tp.advmss),
        wscale: tp.rx_opt.wscale_ok.then_some(tp.rx_opt.rcv_wscale),
        sack_ok: tp.rx_opt.sack_ok,
        timestamp: tp
            .rx_opt
            .tstamp_ok
            .then(|| (tp.tcp_time_stamp(now), tp.rx_opt.ts_recent)),
        sack_blocks: wire::SackBlocks::new(),
    }
}

/// Builds a segment in a fresh skb (copying `payload` if any) with
/// [`MAX_TCP_HEADER`] of headroom, checksum filled.
///
/// Mirrors the header fill of `__tcp_transmit_skb()` /
/// `tcp_v4_send_check()`.
pub(crate) fn build_segment<C: TcpContext>(
    ctx: &C,
    repr: &TcpRepr,
    payload: Option<&SkBuff>,
    saddr: core::net::Ipv4Addr,
    daddr: core::net::Ipv4Addr,
) -> Result<SkBuff, Errno> {
    let hlen = repr.header_len();
    let mut skb = match payload {
        Some(p) if !p.is_empty() => p.copy().map_err(|_| Errno::NoBufs)?,
        _ => {
            let mut s =
                SkBuff::alloc(ctx.page_pool(), MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
            s.reserve(MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
            s
        }
    };
    skb.push(hlen).map_err(|_| Errno::NoBufs)?;
    skb.reset_transport_header();
    let buf = skb.data_mut().map_err(|_| Errno::NoBufs)?;
    repr.emit(buf, saddr, daddr).map_err(|_| Errno::Inval)?;
    Ok(skb)
}

/// The write-queue entries one transmission carries: `segs` consecutive
/// entries from `idx`, each at most `mss` bytes. More than one entry makes
/// a GSO packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxRun {
    /// The first entry.
    pub(crate) idx: usize,
    /// How many entries.
    pub(crate) segs: usize,
    /// The segment size of a GSO packet (`gso_size`).
    pub(crate) mss: u32,
}

/// Builds the skb of a run of write-queue entries: the TCP header in a
/// fresh linear head, the entries' payload as fragments that share their
/// buffers (no byte is copied).
///
/// Mirrors the skb that `__tcp_transmit_skb()` hands to IP: one skb for
/// the whole run. A run of more than one entry is a GSO packet
/// (`gso_size` = the MSS, `gso_segs`, `SKB_GSO_TCPV4`) with
/// `CHECKSUM_PARTIAL` and the pseudo-header sum in the checksum field, as
/// `tcp_v4_send_check()` leaves it for the device or `skb_gso_segment()`;
/// a single segment has its checksum computed here, over the fragments.
fn build_run_segment<C: TcpContext>(
    ctx: &C,
    tp: &TcpSock,
    repr: &TcpRepr,
    run: TxRun,
) -> Result<SkBuff, Errno> {
    let hlen = repr.header_len();
    let mut skb = SkBuff::alloc(ctx.page_pool(), MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
    skb.reserve(MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
    // The header, emitted as if without payload; its checksum is redone
    // below over the whole segment.
    let head_repr = TcpRepr {
        payload_len: 0,
        ..repr.clone()
    };
    let head = skb.push(hlen).map_err(|_| Errno::NoBufs)?;
    head_repr
        .emit(head, tp.saddr, tp.daddr)
        .map_err(|_| Errno::Inval)?;
    skb.reset_transport_header();
    for seg in run_entries(&tp.write_queue, run.idx, run.segs) {
        if !seg.skb.is_empty() {
            skb.append_frags_shared(&seg.skb, 0)
                .map_err(|_| Errno::NoBufs)?;
        }
    }
    let len = u16::try_from(skb.len()).map_err(|_| Errno::MsgSize)?;
    let check = if run.segs > 1 {
        tcp_gso_partial(&mut skb, tp, run, len)?
    } else {
        // One segment: the header was emitted with its checksum over the
        // header alone; the payload's length (in the pseudo-header) and
        // sum are added to it (RFC 1624), so the header is summed once.
        let d = skb.data();
        let head_check = u16::from_be_bytes([d[TCP_CHECK_OFF], d[TCP_CHECK_OFF + 1]]);
        let mut sum = wire::csum_add(u32::from(!head_check), u32::from(len) - hlen as u32);
        let mut off = hlen;
        for seg in run_entries(&tp.write_queue, run.idx, run.segs) {
            let part = skb_payload_csum(&seg.skb)?;
            sum = wire::csum_block_add(sum, part, off);
            off += seg.skb.len();
        }
        wire::csum_fold(sum)
    };
    let data = skb.data_mut().map_err(|_| Errno::NoBufs)?;
    data[TCP_CHECK_OFF..TCP_CHECK_OFF + 2].copy_from_slice(&check.to_be_bytes());
    Ok(skb)
}

/// The header fields of a segment that come from the caller rather than
/// from the socket.
#[derive(Clone, Copy, Debug)]
struct TcpHdrFields {
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
}

/// Builds the skb of a segment of a synchronized connection: the header
/// ([`tcp_established_header_write`]) in a fresh linear head, the payload
/// of `run` (if any) as fragments that share the write queue's buffers.
///
/// Mirrors the skb that `__tcp_transmit_skb()` hands to IP, with the
/// checksum of `tcp_v4_send_check()`: a run of more than one entry is a
/// GSO packet (`gso_size` = the MSS, `gso_segs`, `SKB_GSO_TCPV4`,
/// `CHECKSUM_PARTIAL` with the pseudo-header sum in the checksum field);
/// a single segment has its checksum computed here, over the header and
/// then each fragment once.
fn build_established_segment<C: TcpContext>(
    ctx: &C,
    tp: &TcpSock,
    hdr: TcpHdrFields,
    now: Instant,
    run: Option<TxRun>,
    payload_len: usize,
) -> Result<SkBuff, Errno> {
    let hlen = 20 + established_options_len(tp);
    let len = u16::try_from(hlen + payload_len).map_err(|_| Errno::MsgSize)?;
    let mut skb = SkBuff::alloc(ctx.page_pool(), MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
    skb.reserve(MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
    let head = skb.push(hlen).map_err(|_| Errno::NoBufs)?;
    tcp_established_header_write(head, tp, hdr.seq, hdr.ack, hdr.flags, hdr.window, now);
    let mut sum = wire::csum_partial(head, 0);
    skb.reset_transport_header();
    let check = match run {
        Some(run) if run.segs > 1 => {
            for seg in run_entries(&tp.write_queue, run.idx, run.segs) {
                if !seg.skb.is_empty() {
                    skb.append_frags_shared(&seg.skb, 0)
                        .map_err(|_| Errno::NoBufs)?;
                }
            }
            tcp_gso_partial(&mut skb, tp, run, len)?
        }
        Some(run) => {
            let mut off = hlen;
            for seg in run_entries(&tp.write_queue, run.idx, run.segs) {
                if seg.skb.is_empty() {
                    continue;
                }
                let part = skb_payload_csum(&seg.skb)?;
                sum = wire::csum_block_add(sum, part, off);
                off += seg.skb.len();
                skb.append_frags_shared(&seg.skb, 0)
                    .map_err(|_| Errno::NoBufs)?;
            }
            wire::csum_tcpudp_magic(tp.saddr, tp.daddr, len, IPPROTO_TCP, sum)
        }
        None => wire::csum_tcpudp_magic(tp.saddr, tp.daddr, len, IPPROTO_TCP, sum),
    };
    let data = skb.data_mut().map_err(|_| Errno::NoBufs)?;
    data[TCP_CHECK_OFF..TCP_CHECK_OFF + 2].copy_from_slice(&check.to_be_bytes());
    Ok(skb)
}

/// Makes `skb`, the header plus `run`'s payload (`len` bytes in all), a
/// GSO packet: `gso_size` = the MSS, `gso_segs`, `SKB_GSO_TCPV4`, and
/// `CHECKSUM_PARTIAL` from the TCP header on; returns the pseudo-header
/// sum that goes into the checksum field for the device or
/// `skb_gso_segment()` to finish.
///
/// Mirrors `tcp_set_skb_tso_segs()` and the `CHECKSUM_PARTIAL` branch of
/// `__tcp_v4_send_check()`.
fn tcp_gso_partial(skb: &mut SkBuff, tp: &TcpSock, run: TxRun, len: u16) -> Result<u16, Errno> {
    skb.gso_size = u16::try_from(run.mss).map_err(|_| Errno::Inval)?;
    skb.gso_segs = u16::try_from(run.segs).map_err(|_| Errno::Inval)?;
    skb.gso_type = netcore::SkbGsoType::TCPV4;
    skb.ip_summed = netcore::IpSummed::Partial {
        csum_start: u16::try_from(skb.headroom()).map_err(|_| Errno::Inval)?,
        csum_offset: TCP_CHECK_OFF as u16,
    };
    Ok(!wire::csum_tcpudp_magic(
        tp.saddr,
        tp.daddr,
        len,
        IPPROTO_TCP,
        0,
    ))
}

/// The write-queue entries of a run: `segs` of them from `idx`. An index
/// walk: a run is one entry or a few, for which `VecDeque::range()`
/// (splitting the ring into two slices first) costs more.
fn run_entries(
    q: &std::collections::VecDeque<TxSkb>,
    idx: usize,
    segs: usize,
) -> impl Iterator<Item = &TxSkb> + '_ {
    (idx..idx + segs).map(move |j| &q[j])
}

/// Where the checksum sits in the TCP header (`offsetof(struct tcphdr, check)`).
const TCP_CHECK_OFF: usize = 16;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;

/// Sends one segment of `tp`: builds the header from the socket's state
/// (window, options, ACK) and hands it to IP.
///
/// Mirrors `__tcp_transmit_skb()`. A segment carrying ACK clears the
/// delayed-ACK state (`tcp_event_ack_sent()`); the skb carries the
/// socket's flow hash (`skb_set_hash_from_sk()`). Counters: `OutSegs` (not
/// for retransmissions), `OutRsts`.
pub(crate) fn tcp_transmit<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    seq: u32,
    flags: TcpFlags,
    run: Option<TxRun>,
    retrans: bool,
) -> Result<(), Errno> {
    let now = ctx.now();
    let ack = if flags.contains(TcpFlags::ACK) {
        tp.rcv_nxt
    } else {
        0
    };
    let payload_len: usize = run.map_or(0, |r| {
        run_entries(&tp.write_queue, r.idx, r.segs)
            .map(|s| s.skb.len())
            .sum()
    });
    let pcount = run.map_or(1, |r| r.segs.max(1));
    // tcp_ecn_send(): on an ECN connection, new data is ECT(0) and may owe
    // CWR; every segment but a SYN echoes ECE while a CE mark is unanswered.
    let mut flags = flags;
    // tcp_urg_mode(): a segment before the urgent point says where it
    // is (a pointer 16 bits wide: beyond it, 0xFFFF while that stays
    // short of snd_nxt).
    if let Some(up) = tp.snd_up
        && before(seq, up)
        && !flags.contains(TcpFlags::SYN)
        && (before(up, seq.wrapping_add(0x10000)) || after(seq.wrapping_add(0xFFFF), tp.snd_nxt))
    {
        flags.insert(TcpFlags::URG);
    }
    let (mut tos, mut ecn_cwr) = (0, false);
    if crate::tcp_ecn::tcp_ecn_ok(tp) && !flags.contains(TcpFlags::SYN) {
        (tos, ecn_cwr) = crate::tcp_ecn::tcp_ecn_send(tp, !retrans && payload_len > 0, &mut flags);
    }
    let mut skb = if flags.contains(TcpFlags::SYN) {
        let repr = TcpRepr {
            src_port: tp.sport,
            dst_port: tp.dport,
            seq,
            ack,
            flags,
            window: tp.rcv_wnd.min(65535) as u16,
            urgent: 0,
            options: syn_options(tp, now),
            payload_len,
        };
        match run {
            Some(r) if payload_len > 0 => build_run_segment(ctx, tp, &repr, r)?,
            _ => build_segment(ctx, &repr, None, tp.saddr, tp.daddr)?,
        }
    } else {
        let window = tcp_select_window(ctx, tp);
        let hdr = TcpHdrFields {
            seq,
            ack,
            flags,
            window,
        };
        let run = run.filter(|_| payload_len > 0);
        build_established_segment(ctx, tp, hdr, now, run, payload_len)?
    };
    if ecn_cwr && skb.is_gso() {
        // Segmentation must keep CWR on the first segment only.
        skb.gso_type |= netcore::SkbGsoType::TCP_ECN;
    }
    // skb_set_hash_from_sk(): the socket's flow hash rides with the skb,
    // so the qdisc and queue selection need not dissect it.
    if tp.txhash != 0 {
        skb.set_hash(tp.txhash, true);
    }
    // The departure time (EDT, `skb_set_delivery_time()`), and for a
    // segment with data the socket as its owner (`tcp_wfree`, TSQ).
    let (tstamp, _) = crate::tcp_pacing::tcp_wstamp_for_xmit(ctx, tp);
    skb.tstamp = tstamp;
    if payload_len > 0 {
        crate::tcp_pacing::tcp_skb_set_owner_w(ctx, tp, &mut skb);
    }
    let cpu = ctx.cpu();
    if !retrans {
        ctx.mibs().this_cpu(cpu).add(TcpMib::OutSegs, pcount as u64);
    }
    if flags.contains(TcpFlags::RST) {
        ctx.mibs().this_cpu(cpu).inc(TcpMib::OutRsts);
    }
    tp.segs_out += pcount as u32;
    if payload_len > 0 {
        tp.data_segs_out += pcount as u32;
        tp.bytes_sent += payload_len as u64;
    }
    if flags.contains(TcpFlags::ACK) {
        tcp_event_ack_sent(ctx, tp);
    }
    tp.dsack_pending = false;
    tracing::trace!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, seq, ack, ?flags, len = payload_len, "tcp_transmit_skb");
    let (saddr, daddr) = (tp.saddr, tp.daddr);
    ctx.ip_queue_xmit(skb, saddr, daddr, tos)
}

/// An ACK went out: leave quick-ACK mode by the segments it covered and
/// stop the delayed-ACK timer. Mirrors `tcp_event_ack_sent()` with
/// `tcp_dec_quickack_mode()` and `inet_csk_clear_xmit_timer(ICSK_TIME_DACK)`.
fn tcp_event_ack_sent<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    // The ACKs SACK compression held back are covered by this one.
    if tp.rcv_rtt_est.compressed_ack > 0 {
        let saved = tp.rcv_rtt_est.compressed_ack;
        ctx.mibs()
            .this_cpu(ctx.cpu())
            .add(LinuxMib::TcpAckCompressed, u64::from(saved));
        tp.rcv_rtt_est.compressed_ack = 0;
        ctx.cancel_timer(TcpTimer::CompressedAck(tp.id));
    }
    if tp.ack.quick > 0 {
        tp.ack.quick -= 1;
        if tp.ack.quick == 0 {
            tp.ack.set_ato(TCP_ATO_MIN);
        }
    }
    // The delayed-ACK timer is armed only while ICSK_ACK_TIMER is set
    // (tcp_send_delayed_ack() sets both, the handler clears the bit). It is
    // left to the host as Linux leaves it queued: one that fires finds the
    // bit clear and does nothing.
    if tp.ack.pending & ICSK_ACK_TIMER != 0 {
        let id = tp.id;
        crate::tcp_timer::inet_csk_disarm_timer(ctx, tp, TcpTimer::DelAck(id));
    }
    tp.ack.pending = 0;
}

/// Sends a pure ACK now. Mirrors `tcp_send_ack()` / `__tcp_send_ack()`.
pub(crate) fn tcp_send_ack<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if tp.state == TcpState::Close {
        return;
    }
    let seq = tcp_acceptable_seq(tp);
    let _ = tcp_transmit(ctx, tp, seq, TcpFlags::ACK, None, false);
}

/// The sequence number for a segment without data: `snd_nxt` if it is in
/// the peer's window, else its right edge. Mirrors `tcp_acceptable_seq()`.
pub(crate) fn tcp_acceptable_seq(tp: &TcpSock) -> u32 {
    let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
    if !before(wnd_end, tp.snd_nxt)
        || (tp.rx_opt.wscale_ok && (tp.snd_nxt.wrapping_sub(wnd_end) >> tp.rx_opt.snd_wscale) == 0)
    {
        tp.snd_nxt
    } else {
        wnd_end
    }
}

/// Schedules a delayed ACK. Mirrors `tcp_send_delayed_ack()`: the timeout
/// is the ATO, bounded by 200 ms in ping-pong mode or after PSH, by 500 ms
/// otherwise and by the smoothed RTT (at least `TCP_DELACK_MIN`); an ACK
/// already due within a quarter of the ATO goes out now.
pub(crate) fn tcp_send_delayed_ack<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let now = ctx.now();
    let mut ato = tp.ack.ato();
    if ato > TCP_DELACK_MIN {
        let mut max_ato =
            if tp.ack.in_pingpong_mode(ctx.sysctl()) || tp.ack.pending & ICSK_ACK_PUSHED != 0 {
                TCP_DELACK_MAX
            } else {
                Duration::from_millis(500)
            };
        if tp.srtt_us != 0 {
            let rtt = Duration::from_micros(u64::from(tp.srtt_us >> 3)).max(TCP_DELACK_MIN);
            max_ato = max_ato.min(rtt);
        }
        ato = ato.min(max_ato);
    }
    ato = ato.min(TCP_DELACK_MAX);
    let mut timeout = now + ato;
    if tp.ack.pending & ICSK_ACK_TIMER != 0 {
        if tp.ack.timeout <= now + ato / 4 {
            tcp_send_ack(ctx, tp);
            return;
        }
        if timeout >= tp.ack.timeout {
            timeout = tp.ack.timeout;
        }
    }
    tp.ack.pending |= ICSK_ACK_SCHED | ICSK_ACK_TIMER;
    tp.ack.timeout = timeout;
    let id = tp.id;
    crate::tcp_timer::sk_reset_timer(ctx, tp, TcpTimer::DelAck(id), timeout);
}

/// Copies the front of `data` into the write queue: into the unsent tail
/// entry while it is below `size_goal`, else into a new entry. `new_skb`
/// says the entry starts a new skb of `tcp_sendmsg_locked()`: only then
/// is the send buffer checked and the idle restart done. Returns the
/// bytes copied and whether that entry is now full, or `None` when a new
/// skb is needed but the send buffer is full (`wait_for_space`).
///
/// One step of the copy loop of `tcp_sendmsg_locked()`
/// (`tcp_write_queue_tail()` with room, else `tcp_stream_alloc_skb()` +
/// `tcp_skb_entail()`). On the first copy of a write into an existing tail
/// skb its PSH is cleared, as Linux does, to be set again when the write
/// ends.
pub(crate) fn tcp_queue_chunk<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    data: &[u8],
    size_goal: usize,
    first_copy: bool,
    new_skb: bool,
) -> Result<Option<(usize, bool)>, Errno> {
    let unsent_tail = tp.write_queue.len() > tp.packets_out as usize;
    let can_append = unsent_tail
        && tp.write_queue.back().is_some_and(|t| {
            (t.len() as usize) < size_goal && !t.flags.intersects(TcpFlags::FIN | TcpFlags::SYN)
        });
    if !can_append && new_skb {
        // new_segment: the send buffer is checked once per skb
        // (sk_stream_memory_free()), so an skb being filled may take the
        // queue past sk_sndbuf as in Linux.
        let lowat = tp.tcp_notsent_lowat(Some(ctx.sysctl()));
        if !tp.sk_stream_memory_free(lowat, 0) {
            return Ok(None);
        }
        // tcp_skb_entail() → tcp_slow_start_after_idle_check()
        let idle = ctx.now().saturating_duration_since(tp.lsndtime);
        let ssai = ctx
            .sysctl()
            .get_int(netcore::Sysctl::TCP_SLOW_START_AFTER_IDLE)
            != 0;
        let rto_us = tp.rto().as_micros() as u64;
        crate::tcp_cong::tcp_slow_start_after_idle_check(
            tp.ca_ops.as_mut(),
            &mut tp.cwnd,
            tp.ca_state,
            ssai,
            tp.packets_out,
            idle.as_micros() as u64,
            rto_us,
        );
    }
    if !can_append {
        let mut skb = SkBuff::alloc(ctx.page_pool(), MAX_TCP_HEADER + size_goal)
            .map_err(|_| Errno::NoBufs)?;
        skb.reserve(MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
        let seq = tp.write_seq;
        tp.wmem_queued += TCP_SKB_OVERHEAD;
        if tp.write_queue.is_empty() {
            // tcp_add_write_queue_tail(): the queue starts being busy.
            tcp_chrono_start(tp, TcpChrono::Busy, ctx.now());
        }
        tp.write_queue.push_back(TxSkb {
            skb,
            seq,
            end_seq: seq,
            flags: TcpFlags::ACK,
            sacked: 0,
            sent_at: None,
            tx: crate::tcp_rate::TcpSkbTx::default(),
        });
    }
    let Some(tail) = tp.write_queue.back_mut() else {
        return Ok(None);
    };
    if first_copy {
        tail.flags.remove(TcpFlags::PSH);
    }
    let room = size_goal.saturating_sub(tail.len() as usize);
    let n = room.min(data.len());
    tail.skb.put_data(&data[..n]).map_err(|_| Errno::NoBufs)?;
    tail.end_seq = tail.end_seq.wrapping_add(n as u32);
    let full = tail.len() as usize >= size_goal;
    tp.write_seq = tp.write_seq.wrapping_add(n as u32);
    tp.wmem_queued += n as u32;
    Ok(Some((n, full)))
}

/// The Nagle test for the send head. Mirrors `tcp_nagle_test()` with
/// `tcp_nagle_check()` and `tcp_minshall_check()`.
fn tcp_nagle_test(tp: &TcpSock, skb: &TxSkb, cur_mss: u32, nonagle: u8) -> bool {
    if nonagle & TCP_NAGLE_PUSH != 0 {
        return true;
    }
    // Neither urgent data nor the final FIN waits for Nagle.
    if tp.snd_up.is_some() || skb.flags.contains(TcpFlags::FIN) {
        return true;
    }
    let partial = skb.len() < cur_mss;
    let minshall = after(tp.snd_sml, tp.snd_una) && !after(tp.snd_sml, tp.snd_nxt);
    !(partial
        && (nonagle & TCP_NAGLE_CORK != 0 || (nonagle == 0 && tp.packets_out > 0 && minshall)))
}

/// Splits write-queue entry `idx` so that it carries at most `len` bytes.
/// Mirrors `tcp_fragment()`.
fn tcp_fragment<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    idx: usize,
    len: u32,
) -> Result<(), Errno> {
    let seg = &mut tp.write_queue[idx];
    if seg.len() <= len {
        return Ok(());
    }
    let tail_bytes = seg.skb.data()[len as usize..].to_vec();
    let mut skb = SkBuff::alloc(ctx.page_pool(), MAX_TCP_HEADER + tail_bytes.len())
        .map_err(|_| Errno::NoBufs)?;
    skb.reserve(MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
    skb.put_data(&tail_bytes).map_err(|_| Errno::NoBufs)?;
    seg.skb.trim(len as usize).map_err(|_| Errno::NoBufs)?;
    let new_seq = seg.seq.wrapping_add(len);
    let new = TxSkb {
        skb,
        seq: new_seq,
        end_seq: seg.end_seq,
        flags: seg.flags,
        sacked: seg.sacked & !TCPCB_SACKED_ACKED,
        sent_at: seg.sent_at,
        tx: seg.tx,
    };
    seg.end_seq = new_seq;
    seg.flags.remove(TcpFlags::FIN | TcpFlags::PSH);
    tp.wmem_queued += TCP_SKB_OVERHEAD;
    tp.write_queue.insert(idx + 1, new);
    Ok(())
}

/// Sends what the windows and Nagle allow from the write queue.
///
/// Mirrors `tcp_write_xmit()`. Each round builds one GSO packet from the
/// first unsent segment on: `tcp_cwnd_test()` (room in cwnd, at most half
/// of it) bounded by `tcp_tso_segs()`, then `tcp_snd_wnd_test()` (the
/// first MSS ends inside `snd_una + snd_wnd`), `tcp_mss_split_point()`
/// (whole segments inside the window; a trailing partial segment only if
/// Nagle allows) and `tcp_nagle_test()` when it is a single segment. The
/// packet goes to IP as one skb through `tcp_transmit_skb()` (a GSO skb
/// whose payload fragments share the entries' buffers), then each entry
/// is accounted by `tcp_event_new_data_sent()` (arming the RTO when the
/// first segment leaves). A packet of more than one segment carries PSH,
/// as `__tcp_transmit_skb()` forces it on every GSO packet (so its last
/// segment has it after segmentation); a single segment keeps the flags
/// `tcp_sendmsg_locked()` gave it. `push_one` sends one packet
/// (`tcp_push_one()`). At the end `tcp_cwnd_validate()` records whether
/// cwnd was used. Returns true when nothing could be sent although data is
/// waiting (the caller arms the probe timer).
///
/// # Deviations from Linux
///
/// The write queue holds one entry per MSS, so a GSO packet is a run of
/// consecutive entries gathered into one skb at transmit time; `tcp_grow_skb()` (moving bytes
/// from the next skb into a short head skb) is implicit, as a run may span
/// the skbs `tcp_sendmsg_locked()` would have built. `tcp_tso_should_defer()`
/// is not modelled: a packet goes as soon as cwnd and the window allow.
/// Data that leaves an empty pipe after an idle RTO first restarts cwnd
/// (`tcp_slow_start_after_idle_check()`), also when a zero window, not the
/// application, kept the pipe empty. While urgent data is unacknowledged
/// each packet is one segment with its own urgent pointer (Linux's GSO
/// copies the one pointer to every segment).
pub(crate) fn tcp_write_xmit<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    nonagle: u8,
    push_one: bool,
) -> bool {
    let now = ctx.now();
    let mut sent_pkts = 0;
    let mss_now = u32::from(tcp_current_mss(tp));
    if tp.packets_out == 0 && tp.write_queue.front().is_some_and(|s| s.len() > 0) {
        // Data is about to leave an empty pipe after idle (a zero window
        // held it back, or the application): cwnd restarts as RFC 2861
        // asks, before the flight is sized, as tcp_skb_entail() does for
        // a write.
        let idle = now.saturating_duration_since(tp.lsndtime);
        let ssai = ctx.sysctl().get_int(Sysctl::TCP_SLOW_START_AFTER_IDLE) != 0;
        let rto_us = tp.rto().as_micros() as u64;
        crate::tcp_cong::tcp_slow_start_after_idle_check(
            tp.ca_ops.as_mut(),
            &mut tp.cwnd,
            tp.ca_state,
            ssai,
            tp.packets_out,
            idle.as_micros() as u64,
            rto_us,
        );
    }
    if tp.write_queue.len() > tp.packets_out as usize {
        crate::tcp_pacing::tcp_update_pacing_rate(ctx, tp);
    }
    // In urgent mode each segment goes alone, so each carries its own
    // urgent pointer (see the deviation above).
    let max_segs = if tp.snd_up.is_some() {
        1
    } else {
        tcp_tso_segs(ctx.sysctl(), tp, mss_now)
    };
    let mut cwnd_limited = false;
    let mut rwnd_limited = false;
    let mut rto_due = false;
    loop {
        let idx = tp.packets_out as usize;
        if idx >= tp.write_queue.len() {
            break;
        }
        if crate::tcp_pacing::tcp_pacing_check(ctx, tp) {
            break;
        }
        if tp.write_queue[idx].seq == tp.write_queue[idx].end_seq
            && !tp.write_queue[idx]
                .flags
                .intersects(TcpFlags::FIN | TcpFlags::SYN)
        {
            // An empty entry (nothing written yet): not sendable.
            break;
        }
        // tcp_cwnd_test(): cwnd bounds the flight, except for a final FIN
        // that fits one segment.
        let fin_only = tp.write_queue[idx].flags.contains(TcpFlags::FIN)
            && tp.write_queue[idx].len() <= mss_now;
        let mut cwnd_quota = tcp_cwnd_test(tp);
        if cwnd_quota == 0 {
            if !fin_only {
                cwnd_limited = true;
                break;
            }
            cwnd_quota = 1;
        }
        // A GSO packet's payload stays within sk_gso_max_size.
        let cwnd_quota = cwnd_quota
            .min(max_segs)
            .min((SK_GSO_MAX_SIZE / mss_now.max(1)).max(1));
        // Entries are at most one MSS (the MSS may have shrunk since they
        // were queued).
        if tp.write_queue[idx].len() > mss_now && tcp_fragment(ctx, tp, idx, mss_now).is_err() {
            break;
        }
        let seg = &tp.write_queue[idx];
        let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
        if after(seg.end_seq, wnd_end) && seg.len() > 0 {
            // tcp_snd_wnd_test() fails; a split to the window edge is only
            // done for a segment that is at least a full MSS of window.
            let room = wnd_end.wrapping_sub(seg.seq) as i32;
            if room >= mss_now as i32 && (room as u32) < seg.len() {
                let _ = tcp_fragment(ctx, tp, idx, room as u32);
                continue;
            }
            rwnd_limited = true;
            break;
        }
        let segs = tcp_gso_run(ctx, tp, idx, cwnd_quota, mss_now, nonagle);
        if segs == 1 {
            let is_last = idx + 1 == tp.write_queue.len();
            let seg = &tp.write_queue[idx];
            let nl = if is_last { nonagle } else { TCP_NAGLE_PUSH };
            if seg.len() < mss_now && !tcp_nagle_test(tp, seg, mss_now, nl) {
                break;
            }
        }
        // TCP Small Queues: at most ~1 ms (or two packets) below TCP.
        let truesize: u32 = (idx..idx + segs)
            .map(|j| tp.write_queue[j].truesize())
            .sum();
        let one_in_flight = tp.packets_out <= max_segs;
        if crate::tcp_pacing::tcp_small_queue_check(ctx.sysctl(), tp, truesize, 0, one_in_flight) {
            break;
        }
        let prior_wstamp = tp
            .pacing
            .as_ref()
            .map_or(now.as_nanos(), |p| p.tcp_wstamp_ns);
        // One skb for the whole run (a GSO packet when segs > 1).
        // Nothing that tcp_current_mss() reads has changed before the first
        // transmission of this call; a later one recomputes it (the first
        // may have sent the pending D-SACK).
        let mss = (sent_pkts == 0).then_some(mss_now);
        let result = tcp_transmit_head(ctx, tp, idx, segs, now, mss);
        let failed = result.is_err();
        rto_due |= result.unwrap_or(false);
        if !failed {
            sent_pkts += segs;
            let run_len = run_entries(&tp.write_queue, idx, segs)
                .map(TxSkb::len)
                .sum();
            // The next departure time moves by the GSO packet's length.
            crate::tcp_pacing::tcp_update_skb_after_send(tp, run_len, prior_wstamp);
        }
        if failed || push_one {
            break;
        }
    }
    if rwnd_limited {
        tcp_chrono_start(tp, TcpChrono::RwndLimited, now);
    } else {
        tcp_chrono_stop(tp, TcpChrono::RwndLimited, now);
    }
    let cwnd_limited = cwnd_limited || tp.packets_in_flight() >= tp.cwnd.snd_cwnd;
    if sent_pkts > 0 || cwnd_limited {
        tcp_cwnd_validate(tp, cwnd_limited, now);
    }
    if sent_pkts > 0 {
        // Send one loss probe per tail loss episode. The probe timer takes
        // the slot of the RTO the first segment made due, which is only
        // armed when no probe is scheduled: Linux arms both on the one
        // timer, the second replacing the first.
        if !crate::tcp_recovery::tcp_schedule_loss_probe(ctx, tp, false) && rto_due {
            tcp_reset_xmit_timer(ctx, tp, TcpTimer::Retransmit(tp.id), tp.rto());
        }
        return false;
    }
    tp.packets_out == 0 && (tp.write_queue.len() > tp.packets_out as usize)
}

/// How many unsent entries from `idx` on form one GSO packet: up to
/// `quota` segments, every one but the last a full MSS without FIN, all
/// inside the peer's window, and a trailing partial segment only when
/// Nagle would send it. Mirrors `tcp_mss_split_point()` (with
/// `tcp_nagle_check()`); entries longer than an MSS are split first.
fn tcp_gso_run<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    idx: usize,
    quota: u32,
    mss_now: u32,
    nonagle: u8,
) -> usize {
    let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
    let mut n = 1usize;
    while (n as u32) < quota {
        let j = idx + n;
        if j >= tp.write_queue.len() {
            break;
        }
        let prev = &tp.write_queue[j - 1];
        if prev.len() != mss_now || prev.flags.intersects(TcpFlags::FIN | TcpFlags::SYN) {
            break;
        }
        if tp.write_queue[j].len() > mss_now && tcp_fragment(ctx, tp, j, mss_now).is_err() {
            break;
        }
        let s = &tp.write_queue[j];
        if s.seq == s.end_seq && !s.flags.contains(TcpFlags::FIN) {
            break;
        }
        if after(s.end_seq, wnd_end) && s.len() > 0 {
            break;
        }
        if s.len() < mss_now
            && j + 1 == tp.write_queue.len()
            && !tcp_nagle_test(tp, s, mss_now, nonagle)
        {
            break;
        }
        n += 1;
    }
    n
}

/// Records how much of cwnd the flight used. Mirrors the first half of
/// `tcp_cwnd_validate()`: a new window (once `snd_una` reaches
/// `cwnd_usage_seq`), a cwnd-limited send, or a larger flight while not
/// cwnd-limited resets `is_cwnd_limited` and `max_packets_out`, which
/// [`crate::TcpCwnd::tcp_is_cwnd_limited`] reads when an ACK may grow cwnd.
///
/// # Deviations from Linux
///
/// The second half, `snd_cwnd_used`/`snd_cwnd_stamp` and
/// `tcp_cwnd_application_limited()` (with `tcp_slow_start_after_idle`, an
/// RTO in which an application-limited sender did not use cwnd halves the
/// unused part), is not built: the socket stays within its 1000-byte
/// budget, and the restart after idle (`tcp_cwnd_restart()`) is.
pub(crate) fn tcp_cwnd_validate(tp: &mut TcpSock, is_cwnd_limited: bool, now: Instant) {
    let packets_out = tp.packets_out;
    let c = &mut tp.cwnd;
    if !before(tp.snd_una, c.cwnd_usage_seq)
        || is_cwnd_limited
        || (!c.is_cwnd_limited && packets_out > c.max_packets_out)
    {
        c.is_cwnd_limited = is_cwnd_limited;
        c.max_packets_out = packets_out;
        c.cwnd_usage_seq = tp.snd_nxt;
    }
    // Network starves with nothing left to send while the writer waits
    // for send buffer: the send buffer is what limits.
    if !c.tcp_is_cwnd_limited()
        && tp.write_queue.len() <= tp.packets_out as usize
        && tp.nospace
        && matches!(tp.state, TcpState::Established | TcpState::CloseWait)
    {
        tcp_chrono_start(tp, TcpChrono::SndbufLimited, now);
    }
}

/// Switches the chronograph to `new`, adding the time since it last
/// switched to what was being timed. Mirrors `tcp_chrono_set()`.
fn tcp_chrono_set(tp: &mut TcpSock, new: TcpChrono, now: Instant) {
    let old = tp.chrono.kind;
    if old == TcpChrono::Unspec && new == TcpChrono::Unspec {
        // Nothing is timed before or after: leave the (possibly
        // unallocated) chronograph alone.
        return;
    }
    if old != TcpChrono::Unspec {
        let spent = now.saturating_duration_since(tp.chrono.start).as_micros() as u64;
        tp.chrono.stat[old as usize - 1] += spent;
    }
    tp.chrono.start = now;
    tp.chrono.kind = new;
}

/// Starts timing `kind` unless something of higher priority is timed.
/// Mirrors `tcp_chrono_start()`.
pub(crate) fn tcp_chrono_start(tp: &mut TcpSock, kind: TcpChrono, now: Instant) {
    if kind > tp.chrono.kind {
        tcp_chrono_set(tp, kind, now);
    }
}

/// `kind` ended: with both queues empty nothing is timed any more, else
/// if `kind` was being timed the socket is back to busy. Mirrors
/// `tcp_chrono_stop()`.
pub(crate) fn tcp_chrono_stop(tp: &mut TcpSock, kind: TcpChrono, now: Instant) {
    if tp.write_queue.is_empty() {
        tcp_chrono_set(tp, TcpChrono::Unspec, now);
    } else if kind == tp.chrono.kind {
        tcp_chrono_set(tp, TcpChrono::Busy, now);
    }
}

/// The chronograph's totals in µs, the running period included: busy
/// (all three kinds), rwnd-limited, sndbuf-limited. Mirrors
/// `tcp_get_info_chrono_stats()`.
pub(crate) fn tcp_get_info_chrono_stats(tp: &TcpSock, now: Instant) -> (u64, u64, u64) {
    let mut stats = tp.chrono.stat;
    if tp.chrono.kind != TcpChrono::Unspec {
        stats[tp.chrono.kind as usize - 1] +=
            now.saturating_duration_since(tp.chrono.start).as_micros() as u64;
    }
    (stats.iter().sum(), stats[1], stats[2])
}

/// Transmits the first unsent entries (from index `idx == packets_out`,
/// `segs` of them) as one skb and accounts each as new data sent.
///
/// Mirrors the tail of `tcp_write_xmit()`: `tcp_transmit_skb()` once for
/// the (GSO) packet, then `tcp_event_new_data_sent()` and
/// `tcp_minshall_update()`, here per entry since each entry keeps its
/// own send time, rate sample and loss marks. A packet of more than one
/// segment carries PSH, as `__tcp_transmit_skb()` forces it on every GSO
/// packet (so its last segment has it after segmentation); its header
/// carries the FIN of its last entry, which segmentation also leaves on
/// the last segment only. `mss_now` is `tcp_current_mss()` when the
/// caller has it current, else it is computed here.
///
/// Returns whether the pipe was empty, so that the retransmission timer
/// is due (`tcp_event_new_data_sent()` → `tcp_rearm_rto()`); the caller
/// arms it.
fn tcp_transmit_head<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    idx: usize,
    segs: usize,
    now: Instant,
    mss_now: Option<u32>,
) -> Result<bool, Errno> {
    let segs = segs.max(1);
    let seq = tp.write_queue[idx].seq;
    let mut flags =
        run_entries(&tp.write_queue, idx, segs).fold(TcpFlags::empty(), |f, s| f | s.flags);
    if segs > 1 {
        flags |= TcpFlags::PSH;
    }
    let mss_now = mss_now.unwrap_or_else(|| u32::from(tcp_current_mss(tp)));
    let was_idle = tp.packets_out == 0;
    if was_idle {
        tp.cwnd.tcp_mstamp = now.as_micros();
        tp.cwnd.lsndtime = tp.lsndtime.as_micros();
        let ca = &mut tp.ca_ops;
        ca.cwnd_event(&mut tp.cwnd, crate::tcp_cong::CaEvent::TxStart);
    }
    let run = TxRun {
        idx,
        segs,
        mss: mss_now,
    };
    tcp_transmit(ctx, tp, seq, flags, Some(run), false)?;
    let mut sent_data = false;
    for i in idx..idx + segs {
        let (end_seq, len) = {
            let s = &mut tp.write_queue[i];
            s.sent_at = Some(now);
            (s.end_seq, s.len())
        };
        crate::tcp_rate::tcp_rate_skb_sent(tp, i, now.as_micros());
        tp.snd_nxt = end_seq;
        tp.packets_out += 1;
        if len > 0 {
            ctx.mibs()
                .this_cpu(ctx.cpu())
                .inc(LinuxMib::TcpOrigDataSent);
            sent_data = true;
        }
        if len < mss_now {
            tp.snd_sml = end_seq;
        }
        if matches!(
            tp.ca_state,
            crate::tcp_cong::TcpCaState::Recovery | crate::tcp_cong::TcpCaState::Cwr
        ) {
            tp.recovery.prr_out += 1;
        }
    }
    tp.lsndtime = now;
    // tcp_event_data_sent(): a reply within the ATO means ping-pong.
    if sent_data && now.saturating_duration_since(tp.ack.lrcvtime) < tp.ack.ato() {
        tp.ack.pingpong = tp.ack.pingpong.saturating_add(1);
    }
    // First segment in flight: the caller arms the retransmission timer.
    Ok(was_idle)
}

/// Pushes pending frames with the socket's Nagle mode and arms the probe
/// timer if the peer's window holds them back. Mirrors
/// `tcp_push_pending_frames()` → `__tcp_push_pending_frames()` +
/// `tcp_check_probe_timer()`: nothing at all when no entry is unsent
/// (`tcp_send_head()` is `NULL`), as for every segment a receiver that
/// has nothing to send gets.
pub(crate) fn tcp_push_pending_frames<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, nonagle: u8) {
    if tp.write_queue.len() <= tp.packets_out as usize {
        return;
    }
    if tp.state == TcpState::Close || tp.state == TcpState::SynSent {
        return;
    }
    if tcp_write_xmit(ctx, tp, nonagle, false) {
        tcp_check_probe_timer(ctx, tp);
    }
}

/// Arms the zero-window probe timer when nothing is in flight and no timer
/// is pending. Mirrors `tcp_check_probe_timer()`.
pub(crate) fn tcp_check_probe_timer<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if tp.packets_out == 0
        && !icsk_pending_is(tp, TcpTimer::Probe0(tp.id))
        && !icsk_pending_is(tp, TcpTimer::Retransmit(tp.id))
    {
        let when = tcp_probe0_base(tp);
        crate::tcp_timer::tcp_reset_xmit_timer(ctx, tp, TcpTimer::Probe0(tp.id), when);
    }
}

/// The base interval of the zero-window probe: the RTO, at least 200 ms.
/// Mirrors `tcp_probe0_base()`.
pub(crate) fn tcp_probe0_base(tp: &TcpSock) -> Duration {
    tp.rto().max(crate::tcp_sock::TCP_RTO_MIN)
}

/// Queues a FIN (on the unsent tail if there is one) and pushes.
/// Mirrors `tcp_send_fin()`.
pub(crate) fn tcp_send_fin<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let unsent_tail = tp.write_queue.len() > tp.packets_out as usize;
    if unsent_tail && let Some(tail) = tp.write_queue.back_mut() {
        tail.flags |= TcpFlags::FIN;
        tail.end_seq = tail.end_seq.wrapping_add(1);
        tp.write_seq = tp.write_seq.wrapping_add(1);
    } else {
        let Ok(mut skb) = SkBuff::alloc(ctx.page_pool(), MAX_TCP_HEADER) else {
            return;
        };
        if skb.reserve(MAX_TCP_HEADER).is_err() {
            return;
        }
        let seq = tp.write_seq;
        tp.wmem_queued += TCP_SKB_OVERHEAD;
        if tp.write_queue.is_empty() {
            tcp_chrono_start(tp, TcpChrono::Busy, ctx.now());
        }
        tp.write_queue.push_back(TxSkb {
            skb,
            seq,
            end_seq: seq.wrapping_add(1),
            flags: TcpFlags::ACK | TcpFlags::FIN,
            sacked: 0,
            sent_at: None,
            tx: crate::tcp_rate::TcpSkbTx::default(),
        });
        tp.write_seq = tp.write_seq.wrapping_add(1);
    }
    tcp_push_pending_frames(ctx, tp, TCP_NAGLE_OFF);
}

/// Sends a RST for an abort (close with unread data, `SO_LINGER` 0,
/// `tcp_abort`). Mirrors `tcp_send_active_reset()`.
pub(crate) fn tcp_send_active_reset<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    let seq = tcp_acceptable_seq(tp);
    let _ = tcp_transmit(ctx, tp, seq, TcpFlags::ACK | TcpFlags::RST, None, false);
}

/// Sends write-queue entry `idx` again. Mirrors `__tcp_retransmit_skb()`:
/// trims what was already acked, refragments to the current MSS, sends
/// it, counts `RetransSegs` (`TCPSynRetrans` for a SYN), `total_retrans`
/// and `bytes_retrans`, and marks it `TCPCB_EVER_RETRANS`. The loss
/// probe uses this directly: its copy is not counted in `retrans_out`.
///
/// # Deviations from Linux
///
/// The write queue holds one entry per MSS, so when the MSS falls (a
/// smaller path MTU) each entry sent at the old MSS goes again as one
/// segment of the new MSS and its rest; Linux, whose skb holds a run of
/// segments, cuts the whole run at the new MSS (fewer, fuller segments).
#[doc(alias = "__tcp_retransmit_skb")]
pub(crate) fn tcp_retransmit_skb_core<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    idx: usize,
) -> Result<(), Errno> {
    let now = ctx.now();
    let mss_now = u32::from(tcp_current_mss(tp));
    // tcp_trim_head(): drop what a partial ACK already covered.
    let snd_una = tp.snd_una;
    let seg = &mut tp.write_queue[idx];
    if before(seg.seq, snd_una) && after(seg.end_seq, snd_una) && seg.len() > 0 {
        let cut = snd_una.wrapping_sub(seg.seq).min(seg.len());
        let _ = seg.skb.pull(cut as usize);
        seg.seq = seg.seq.wrapping_add(cut);
        tp.wmem_queued = tp.wmem_queued.saturating_sub(cut);
    }
    if tp.write_queue[idx].len() > mss_now {
        tcp_fragment(ctx, tp, idx, mss_now)?;
        if idx < tp.packets_out as usize {
            // The new piece was already sent: it stays part of the flight.
            tp.packets_out += 1;
            if tp.write_queue[idx + 1].sacked & TCPCB_LOST != 0 {
                tp.lost_out += 1;
            }
        }
    } else {
        // A short segment may take the sent ones after it along, up to
        // one MSS inside the window.
        let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
        let avail = wnd_end.wrapping_sub(tp.write_queue[idx].seq) as i32;
        let avail = if avail <= 0 {
            mss_now as i32
        } else {
            avail.min(mss_now as i32)
        };
        if (tp.write_queue[idx].len() as i32) < avail {
            tcp_retrans_try_collapse(ctx, tp, idx, avail, mss_now);
        }
    }
    let (seq, flags, len) = {
        let s = &tp.write_queue[idx];
        (s.seq, s.flags, s.len())
    };
    // The entry's payload rides as a fragment of its buffer: no copy.
    let run = TxRun {
        idx,
        segs: 1,
        mss: mss_now,
    };
    let mut f = flags;
    if f.contains(TcpFlags::SYN) && tp.state == TcpState::SynSent {
        f.remove(TcpFlags::ACK);
    }
    if f.contains(TcpFlags::SYN) {
        // The SYN goes again without ECE|CWR under tcp_ecn_fallback, for
        // good (the queued segment loses them).
        crate::tcp_ecn::tcp_ecn_clear_syn(ctx.sysctl(), &mut f);
        tp.write_queue[idx].flags = f | (flags & TcpFlags::ACK);
    }
    let prior_wstamp = tp
        .pacing
        .as_ref()
        .map_or(now.as_nanos(), |p| p.tcp_wstamp_ns);
    tcp_transmit(ctx, tp, seq, f, Some(run), true)?;
    crate::tcp_pacing::tcp_update_skb_after_send(tp, len, prior_wstamp);
    let cpu = ctx.cpu();
    ctx.mibs().this_cpu(cpu).inc(TcpMib::RetransSegs);
    if f.contains(TcpFlags::SYN) {
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpSynRetrans);
    }
    tp.total_retrans += 1;
    tp.bytes_retrans += u64::from(len);
    let seg = &mut tp.write_queue[idx];
    seg.sacked |= TCPCB_EVER_RETRANS;
    seg.sent_at = Some(now);
    crate::tcp_rate::tcp_rate_skb_sent(tp, idx, now.as_micros());
    Ok(())
}

/// Whether a sent segment may be merged on retransmission: one segment
/// at the current MSS, not SACKed, and its buffer not still shared with
/// a copy in the host's queues or the device (`skb_cloned()`: bytes are
/// copied into it). Mirrors `tcp_can_collapse()`.
fn tcp_can_collapse(s: &TxSkb, mss_now: u32) -> bool {
    s.len() <= mss_now && !s.skb.is_cloned() && s.sacked & TCPCB_SACKED_ACKED == 0
}

/// Merges into write-queue entry `to`, about to be retransmitted, the
/// sent segments after it while their bytes fit in `space` (at most one
/// MSS, inside the peer's window) and in `to`'s buffer, so a run of small
/// lost segments goes again as one (`net.ipv4.tcp_retrans_collapse`, on
/// by default). Each merged segment leaves the flight
/// (`tcp_adjust_pcount()`: `packets_out`, and `lost_out` or
/// `retrans_out` when it was so marked); its flags (PSH, FIN) and its
/// ever-retransmitted mark move to `to`. Mirrors
/// `tcp_retrans_try_collapse()` with `tcp_collapse_retrans()`.
fn tcp_retrans_try_collapse<C: TcpContext>(
    ctx: &C,
    tp: &mut TcpSock,
    to: usize,
    mut space: i32,
    mss_now: u32,
) {
    if ctx.sysctl().get_int(Sysctl::TCP_RETRANS_COLLAPSE) == 0 {
        return;
    }
    let head = &tp.write_queue[to];
    if head.flags.contains(TcpFlags::SYN) || !tcp_can_collapse(head, mss_now) {
        return;
    }
    space -= head.len() as i32;
    let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
    // Only sent segments (Linux walks the retransmission queue).
    while to + 1 < (tp.packets_out as usize).min(tp.write_queue.len()) {
        let next = &tp.write_queue[to + 1];
        if !tcp_can_collapse(next, mss_now) {
            break;
        }
        space -= next.len() as i32;
        if space < 0
            || next.len() as usize > tp.write_queue[to].skb.tailroom()
            || after(next.end_seq, wnd_end)
        {
            break;
        }
        // tcp_collapse_retrans()
        let Some(next) = tp.write_queue.remove(to + 1) else {
            break;
        };
        let head = &mut tp.write_queue[to];
        if head.skb.put_data(next.skb.data()).is_err() {
            // Cannot happen (room was checked); keep the segment.
            tp.write_queue.insert(to + 1, next);
            break;
        }
        head.end_seq = next.end_seq;
        head.flags |= next.flags;
        head.sacked |= next.sacked & TCPCB_EVER_RETRANS;
        // tcp_adjust_pcount(next, 1)
        tp.packets_out -= 1;
        if next.sacked & TCPCB_SACKED_RETRANS != 0 {
            tp.retrans_out = tp.retrans_out.saturating_sub(1);
        }
        if next.sacked & TCPCB_LOST != 0 {
            tp.lost_out = tp.lost_out.saturating_sub(1);
        }
        if !crate::tcp_input::tcp_is_sack(tp) {
            tp.sacked_out = tp.sacked_out.saturating_sub(1);
        }
        // Its bytes now live in `to`: only its overhead is freed.
        tp.wmem_queued = tp.wmem_queued.saturating_sub(TCP_SKB_OVERHEAD);
    }
}

/// Retransmits write-queue entry `idx` as part of recovery. Mirrors
/// `tcp_retransmit_skb()`: [`tcp_retransmit_skb_core`], then the segment
/// is `TCPCB_SACKED_RETRANS` (counted in `retrans_out`), the episode's
/// first retransmission is stamped (`retrans_stamp`) and `undo_retrans`
/// counts one more retransmission a D-SACK may prove spurious.
///
/// # Deviations from Linux
///
/// `retrans_stamp` holds the original send time of the first segment
/// retransmitted (the give-up timers count from it); the time of the
/// first retransmission itself, which Eifel undo compares the echoed
/// timestamp with, is kept apart in `first_retrans_at`.
pub(crate) fn tcp_retransmit_skb<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    idx: usize,
) -> Result<(), Errno> {
    let first_sent = tp.write_queue[idx].sent_at;
    tcp_retransmit_skb_core(ctx, tp, idx)?;
    let now = ctx.now();
    let seg = &mut tp.write_queue[idx];
    if seg.sacked & TCPCB_SACKED_RETRANS == 0 {
        tp.retrans_out += 1;
    }
    seg.sacked |= TCPCB_SACKED_RETRANS;
    if tp.retrans_stamp.is_none() {
        tp.retrans_stamp.set(Some(first_sent.unwrap_or(now)));
    }
    if tp.recovery.first_retrans_at == 0 {
        tp.recovery.first_retrans_at = tp.tcp_time_stamp(now).max(1);
    }
    if tp.recovery.undo_retrans < 0 {
        tp.recovery.undo_retrans = 0;
    }
    tp.recovery.undo_retrans += 1;
    Ok(())
}

/// Retransmits the segments marked lost and not yet retransmitted, in
/// order, while cwnd allows and fewer retransmissions than losses are in
/// flight; PRR's `prr_out` counts them in CWR and Recovery, and the RTO
/// restarts when the head goes again (unless RACK's timer is pending).
/// Mirrors `tcp_xmit_retransmit_queue()`. Counters: `TCPFastRetrans`
/// (outside Loss), `TCPSlowStartRetrans` (in Loss).
pub(crate) fn tcp_xmit_retransmit_queue<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if tp.packets_out == 0 {
        return;
    }
    let mut rearm_timer = false;
    let mut idx = 0;
    while idx < (tp.packets_out as usize).min(tp.write_queue.len()) {
        if tp.packets_in_flight() >= tp.cwnd.snd_cwnd {
            break;
        }
        // Pacing and TSQ (doubled for retransmissions) hold these too.
        if crate::tcp_pacing::tcp_pacing_check(ctx, tp) {
            break;
        }
        let truesize = tp.write_queue[idx].truesize();
        if crate::tcp_pacing::tcp_small_queue_check(ctx.sysctl(), tp, truesize, 1, false) {
            break;
        }
        let s = tp.write_queue[idx].sacked;
        if tp.retrans_out >= tp.lost_out {
            break;
        }
        if s & TCPCB_LOST == 0 || s & (TCPCB_SACKED_ACKED | TCPCB_SACKED_RETRANS) != 0 {
            idx += 1;
            continue;
        }
        let mib = if tp.ca_state == crate::tcp_cong::TcpCaState::Loss {
            LinuxMib::TcpSlowStartRetrans
        } else {
            LinuxMib::TcpFastRetrans
        };
        if tcp_retransmit_skb(ctx, tp, idx).is_err() {
            break;
        }
        ctx.mibs().this_cpu(ctx.cpu()).inc(mib);
        if matches!(
            tp.ca_state,
            crate::tcp_cong::TcpCaState::Recovery | crate::tcp_cong::TcpCaState::Cwr
        ) {
            tp.recovery.prr_out += 1;
        }
        if idx == 0 && !icsk_pending_is(tp, TcpTimer::ReoTimeout(tp.id)) {
            rearm_timer = true;
        }
        idx += 1;
    }
    if rearm_timer {
        tcp_reset_xmit_timer(ctx, tp, TcpTimer::Retransmit(tp.id), tp.rto());
    }
}

/// Sends a zero-window probe or a window-edge segment. Mirrors
/// `tcp_write_wakeup()`: if data fits in the window it is sent (split to the
/// window, marked PSH, `pushed_seq` moved past it), else a segment with
/// `snd_una - 1` (`tcp_xmit_probe_skb()`).
/// Returns whether new data went out.
pub(crate) fn tcp_write_wakeup<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) -> bool {
    let idx = tp.packets_out as usize;
    let wnd_end = tp.snd_una.wrapping_add(tp.snd_wnd);
    if idx < tp.write_queue.len() && before(tp.write_queue[idx].seq, wnd_end) {
        let room = wnd_end.wrapping_sub(tp.write_queue[idx].seq);
        let mss = u32::from(tcp_current_mss(tp));
        let limit = room.min(mss);
        if tp.write_queue[idx].len() > limit && tcp_fragment(ctx, tp, idx, limit).is_err() {
            return false;
        }
        // The probe is pushed: PSH, and pushed_seq moves past it.
        let end_seq = tp.write_queue[idx].end_seq;
        if before(tp.pushed_seq, end_seq) {
            tp.pushed_seq = end_seq;
        }
        tp.write_queue[idx].flags |= TcpFlags::PSH;
        let now = ctx.now();
        return match tcp_transmit_head(ctx, tp, idx, 1, now, None) {
            Ok(rto_due) => {
                if rto_due {
                    tcp_reset_xmit_timer(ctx, tp, TcpTimer::Retransmit(tp.id), tp.rto());
                }
                true
            }
            Err(_) => false,
        };
    }
    // tcp_xmit_probe_skb(): an old sequence number forces an ACK.
    let seq = tp.snd_una.wrapping_sub(1);
    let _ = tcp_transmit(ctx, tp, seq, TcpFlags::ACK, None, false);
    false
}

/// Starts an active open: sets up the window and sends the SYN.
/// Mirrors `tcp_connect_init()` + `tcp_connect()`: `ActiveOpens`, the SYN
/// on the write queue, the RTO armed at the initial 1 s.
pub(crate) fn tcp_connect<C: TcpContext>(
    ctx: &mut C,
    tp: &mut TcpSock,
    iss: u32,
) -> Result<(), Errno> {
    let sysctl = ctx.sysctl().clone();
    tp.rx_opt.tstamp_ok = sysctl.get_int(Sysctl::TCP_TIMESTAMPS) != 0;
    tp.rx_opt.sack_ok = sysctl.get_int(Sysctl::TCP_SACK) != 0;
    tp.rx_opt.wscale_ok = sysctl.get_int(Sysctl::TCP_WINDOW_SCALING) != 0;
    let mss = tcp_advertise_mss(tp.pmtu, tp.rx_opt.user_mss);
    tp.advmss = mss;
    if tp.rx_opt.user_mss != 0 {
        tp.rx_opt.mss_clamp = tp.rx_opt.user_mss;
    } else {
        tp.rx_opt.mss_clamp = mss;
    }
    tp.max_window = 0;
    let pmtu = tp.pmtu;
    tcp_sync_mss(tp, pmtu, &sysctl);
    tp.ack.rcv_mss = tp.advmss.clamp(
        crate::tcp_sock::TCP_MIN_MSS,
        crate::tcp_sock::TCP_MSS_DEFAULT,
    );
    let full_space = tp.tcp_full_space();
    let mut clamp = tp.opts_ext.window_clamp;
    // tcp_connect_init(): a locked SO_RCVBUF bounds the window clamp.
    if tp.opts.rcvbuf_locked && (clamp == 0 || clamp > full_space) {
        clamp = full_space;
    }
    let (rcv_wnd, clamp, wscale) = tcp_select_initial_window(
        &sysctl,
        full_space,
        u32::from(tp.advmss),
        clamp,
        tp.rx_opt.wscale_ok,
    );
    tp.rcv_wnd = rcv_wnd;
    tp.window_clamp = clamp;
    tp.rx_opt.rcv_wscale = wscale;
    tp.rcv_ssthresh = rcv_wnd;
    tp.rcv_nxt = 0;
    tp.rcv_wup = 0;
    tp.copied_seq = 0;
    tp.snd_una = iss;
    tp.snd_nxt = iss;
    tp.write_seq = iss;
    tp.pushed_seq = iss;
    tp.snd_sml = iss;
    tp.snd_wnd = 0;
    tp.snd_wl1 = 0;
    tp.set_rto(crate::tcp_sock::TCP_TIMEOUT_INIT);
    tp.retransmits = 0;
    let Ok(mut skb) = SkBuff::alloc(ctx.page_pool(), MAX_TCP_HEADER) else {
        return Err(Errno::NoBufs);
    };
    skb.reserve(MAX_TCP_HEADER).map_err(|_| Errno::NoBufs)?;
    tp.wmem_queued += TCP_SKB_OVERHEAD;
    let syn = TcpFlags::SYN | crate::tcp_ecn::tcp_ecn_send_syn(&sysctl, tp);
    tp.write_queue.push_back(TxSkb {
        skb,
        seq: iss,
        end_seq: iss.wrapping_add(1),
        flags: syn,
        sacked: 0,
        sent_at: None,
        tx: crate::tcp_rate::TcpSkbTx::default(),
    });
    tp.write_seq = iss.wrapping_add(1);
    tp.snd_nxt = tp.write_seq;
    tp.pushed_seq = tp.write_seq;
    tp.packets_out = 1;
    let now = ctx.now();
    tp.write_queue[0].sent_at = Some(now);
    tp.retrans_stamp.set(Some(now));
    ctx.mibs().this_cpu(ctx.cpu()).inc(TcpMib::ActiveOpens);
    let _ = tcp_transmit(ctx, tp, iss, syn, None, false);
    tp.lsndtime = now;
    tcp_reset_xmit_timer(ctx, tp, TcpTimer::Retransmit(tp.id), tp.rto());
    Ok(())
}

/// Grants quick ACKs: about one per two full segments of the window, at
/// least two, at most `max`. Mirrors `tcp_incr_quickack()`.
pub(crate) fn tcp_incr_quickack(tp: &mut TcpSock, max: u8) {
    let rcv_mss = u32::from(tp.ack.rcv_mss.max(1));
    let mut quickacks = tp.rcv_wnd / (2 * rcv_mss);
    if quickacks == 0 {
        quickacks = 2;
    }
    let quickacks = quickacks.min(u32::from(max)) as u8;
    if quickacks > tp.ack.quick {
        tp.ack.quick = quickacks;
    }
}

/// Enters quick-ACK mode. Mirrors `tcp_enter_quickack_mode()`.
pub(crate) fn tcp_enter_quickack_mode(tp: &mut TcpSock, max: u8) {
    tcp_incr_quickack(tp, max);
    tp.ack.pingpong = 0;
    tp.ack.set_ato(TCP_ATO_MIN);
}

/// Whether an ACK should go out at once. Mirrors `tcp_in_quickack_mode()`.
pub(crate) fn tcp_in_quickack_mode(tp: &TcpSock, sysctl: &netcore::Sysctl) -> bool {
    tp.ack.quick > 0 && !tp.ack.in_pingpong_mode(sysctl)
}

/// The bound on quick ACKs (`TCP_MAX_QUICKACKS`), re-exported for input.
pub(crate) const MAX_QUICKACKS: u8 = TCP_MAX_QUICKACKS;

/// Marks a SACK block covered by D-SACK. Mirrors `tcp_dsack_set()`.
pub(crate) fn tcp_dsack_set<C: TcpContext>(ctx: &C, tp: &mut TcpSock, seq: u32, end_seq: u32) {
    if tp.rx_opt.sack_ok && ctx.sysctl().get_int(Sysctl::TCP_DSACK) != 0 {
        let mib = if before(seq, tp.rcv_nxt) {
            LinuxMib::TcpDsackOldSent
        } else {
            LinuxMib::TcpDsackOfoSent
        };
        ctx.mibs().this_cpu(ctx.cpu()).inc(mib);
        tp.duplicate_sack = Some(TcpSackBlock {
            start_seq: seq,
            end_seq,
        });
        tp.dsack_pending = true;
    }
}

/// The unfolded one's-complement sum of all of `skb`'s bytes, linear or
/// paged (`skb_checksum()`, or `csum_partial()` over the linear data).
fn skb_payload_csum(skb: &SkBuff) -> Result<u32, Errno> {
    if skb.is_nonlinear() {
        skb.checksum(0, skb.len(), 0).map_err(|_| Errno::Inval)
    } else {
        Ok(wire::csum_partial(skb.data(), 0))
    }
}
#[cfg(test)]
mod tests {
    use netcore::IpSummed;
    use wire::TcpFlags;

    use crate::testutil::Net;

    /// Sends `n` MSS of patterned data from host 0 with `cwnd` and returns
    /// the net, the client and server sockets, the data and the MSS.
    fn send_segments(
        n: usize,
        cwnd: u32,
    ) -> (
        Net,
        std::sync::Arc<crate::TcpSocket>,
        std::sync::Arc<crate::TcpSocket>,
        Vec<u8>,
        usize,
    ) {
        let mut net = Net::new(2);
        let (c, s) = net.connect_pair(80);
        net.log.clear();
        let mss = usize::from(c.lock().mss_cache);
        c.lock().cwnd.snd_cwnd = cwnd;
        let data: Vec<u8> = (0..n * mss).map(|i| (i * 7 % 251) as u8).collect();
        net.hosts[0].ctx.ip_queue_xmit_calls = 0;
        assert_eq!(net.send(0, &c, &data), Ok(n * mss));
        (net, c, s, data, mss)
    }

    /// The header written in place from the socket is, byte for byte and
    /// checksum included, the one [`super::established_options`] and
    /// `TcpRepr::emit` give, with and without timestamps, for 0 to 4 SACK
    /// blocks with and without a D-SACK block first.
    #[test]
    fn established_header_matches_the_repr_emit() {
        use wire::{TcpRepr, TcpSackBlock};
        let mut net = Net::new(2);
        let (c, _s) = net.connect_pair(80);
        let now = net.now() + netcore::Duration::from_millis(1234);
        let ctx = &net.hosts[0].ctx;
        let mut tp = c.lock();
        let mut checked = 0;
        for tstamp in [true, false] {
            for dsack in [false, true] {
                for blocks in 0..=4u32 {
                    tp.rx_opt.tstamp_ok = tstamp;
                    tp.rx_opt.sack_ok = true;
                    tp.rx_opt.ts_recent = 0x0102_0304;
                    tp.dsack_pending = dsack;
                    tp.duplicate_sack = Some(TcpSackBlock {
                        start_seq: 7,
                        end_seq: 9,
                    });
                    tp.selective_acks.clear();
                    for b in 0..blocks {
                        let _ = tp.selective_acks.push(TcpSackBlock {
                            start_seq: 1000 * b + 1,
                            end_seq: 1000 * b + 500,
                        });
                    }
                    let hdr = super::TcpHdrFields {
                        seq: 0xdead_beef,
                        ack: 0x0bad_f00d,
                        flags: TcpFlags::ACK | TcpFlags::PSH,
                        window: 501,
                    };
                    let skb =
                        super::build_established_segment(ctx, &tp, hdr, now, None, 0).unwrap();
                    let repr = TcpRepr {
                        src_port: tp.sport,
                        dst_port: tp.dport,
                        seq: hdr.seq,
                        ack: hdr.ack,
                        flags: hdr.flags,
                        window: hdr.window,
                        urgent: 0,
                        options: super::established_options(&tp, now),
                        payload_len: 0,
                    };
                    let mut want = vec![0u8; repr.header_len()];
                    repr.emit(&mut want, tp.saddr, tp.daddr).unwrap();
                    assert_eq!(
                        skb.data(),
                        &want[..],
                        "tstamp {tstamp} dsack {dsack} blocks {blocks}"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 20);
    }

    #[test]
    fn a_run_of_segments_is_one_gso_skb_sharing_the_write_queue_buffers() {
        let (mut net, c, s, data, mss) = send_segments(10, 20);
        // One skb for the ten segments: one call into IP.
        assert_eq!(net.hosts[0].ctx.ip_queue_xmit_calls, 1);
        let gso = net.hosts[0].ctx.last_gso.take().expect("a GSO skb");
        assert_eq!(usize::from(gso.gso_size), mss);
        assert_eq!(gso.gso_segs, 10);
        assert_eq!(gso.gso_type, netcore::SkbGsoType::TCPV4);
        assert!(matches!(
            gso.ip_summed,
            IpSummed::Partial {
                csum_offset: 16,
                ..
            }
        ));
        assert_eq!(gso.len() - gso.headlen(), 10 * mss, "ten segments' bytes");
        // No byte was copied: each fragment is the window of a write-queue
        // entry's own buffer.
        {
            let tp = c.lock();
            let frags: Vec<&[u8]> = gso.frags().collect();
            assert_eq!(frags.len(), 10);
            for (f, e) in frags.iter().zip(tp.write_queue.iter()) {
                assert_eq!(f.as_ptr(), e.skb.data().as_ptr());
                assert_eq!(f.len(), e.skb.len());
            }
        }
        drop(gso);
        // Cut for the wire (no TSO here), the segments are MSS-sized, valid,
        // PSH only on the last, and the peer reads the bytes in order.
        net.run_for_ms(50);
        let sent: Vec<_> = net
            .from(0)
            .into_iter()
            .filter(|g| g.tcp.payload_len > 0)
            .collect();
        assert_eq!(sent.len(), 10);
        for (k, g) in sent.iter().enumerate() {
            assert_eq!(g.tcp.payload_len, mss);
            assert_eq!(g.tcp.flags.contains(TcpFlags::PSH), k == 9, "segment {k}");
        }
        let mut got = vec![0u8; data.len()];
        let mut at = 0;
        while at < got.len() {
            let n = net.recv(1, &s, &mut got[at..]).expect("data is readable");
            assert!(n > 0);
            at += n;
        }
        assert_eq!(got, data);
        assert!(net.mib(0, netcore::TcpMib::OutSegs) >= 10);
    }

    #[test]
    fn half_the_cwnd_per_gso_packet_as_linux_tcp_cwnd_test() {
        // cwnd 10: tcp_cwnd_test() allows half of it per packet, so two GSO
        // skbs of five segments each.
        let (net, c, _s, _data, mss) = send_segments(10, 10);
        assert_eq!(net.hosts[0].ctx.ip_queue_xmit_calls, 2);
        let gso = net.hosts[0].ctx.last_gso.as_ref().expect("a GSO skb");
        assert_eq!(gso.gso_segs, 5);
        assert_eq!(gso.len() - gso.headlen(), 5 * mss);
        let tp = c.lock();
        assert_eq!(tp.packets_out, 10);
        assert!(tp.write_queue.iter().all(|e| e.sent_at.is_some()));
    }

    #[test]
    fn a_single_segment_references_the_entry_and_is_checksummed() {
        let (mut net, c, s, data, _mss) = send_segments(1, 10);
        assert_eq!(net.hosts[0].ctx.ip_queue_xmit_calls, 1);
        assert!(net.hosts[0].ctx.last_gso.is_none());
        assert_eq!(c.lock().packets_out, 1);
        net.run_for_ms(50);
        let mut got = vec![0u8; data.len()];
        assert_eq!(net.recv(1, &s, &mut got), Ok(data.len()));
        assert_eq!(got, data);
    }
}
