//! TCP over IPv4: the receive entry point, socket lookup, resets and ICMP
//! errors.
//!
//! Mirrors `net/ipv4/tcp_ipv4.c`: `tcp_v4_rcv()` (header and checksum
//! checks, `InSegs`, `InErrs`, `InCsumErrors`, lookup in the established
//! then listening tables, TIME-WAIT handling), `tcp_v4_do_rcv()`,
//! `tcp_v4_send_reset()`, `tcp_v4_send_ack()` (for TIME-WAIT) and
//! `tcp_v4_err()`.
//!
//! ```text
//!  ip_local_deliver -> tcp_v4_rcv -> ehash: full socket -> tcp_rcv_state_process
//!                                  |        TIME-WAIT   -> tcp_timewait_state_process
//!                                  -> lhash: listener  -> tcp_check_req / cookie / tcp_conn_request
//!                                  -> none             -> tcp_v4_send_reset
//! ```

use core::net::Ipv4Addr;

use netcore::{DropReason, Errno, IpSummed, LinuxMib, SkBuff, TcpMib, kfree_skb_reason};
use wire::{TcpFlags, TcpOptions, TcpRepr};

use crate::context::{SkEvent, TcpContext};
use crate::inet_connection_sock::tcp_listen_rcv;
use crate::inet_hashtables::{EhashEntry, FourTuple};
use crate::tcp::TcpStack;
use crate::tcp_input::{TcpSeg, tcp_rcv_state_process};
use crate::tcp_minisocks::{TwVerdict, inet_twsk_kill, tcp_timewait_state_process};
use crate::tcp_output::build_segment;
use crate::tcp_sock::{TcpState, before};

/// Receives one TCP segment from IP.
///
/// Mirrors `tcp_v4_rcv()`. The skb's data starts at the TCP header and its
/// network header is set (the IPv4 header gives the addresses). A GRO
/// packet may carry its payload in fragments past the header (its linear
/// part holds at least the header): the payload is checksummed and queued
/// where it lies. Consumes the skb: it is queued, processed or dropped.
/// Counters: `InSegs`, `InErrs` (bad header), `InCsumErrors` (bad
/// checksum), `OutRsts` (no socket).
#[tracing::instrument(level = "trace", skip_all, fields(len = skb.len()))]
pub fn tcp_v4_rcv<C: TcpContext>(stack: &TcpStack, ctx: &mut C, mut skb: SkBuff) {
    let cpu = ctx.cpu();
    // The addresses, from the IP header IP has checked (its total length
    // may count fragments past the linear part, so it is not re-checked
    // against the linear bytes here).
    let Some((saddr, daddr, ip_dsfield)) = skb.network_header().and_then(|nh| {
        let h: &[u8; 20] = nh.first_chunk()?;
        (h[0] >> 4 == 4).then_some(())?;
        Some((
            Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            h[1],
        ))
    }) else {
        ctx.mibs().this_cpu(cpu).inc(TcpMib::InErrs);
        kfree_skb_reason(skb, DropReason::PktTooSmall);
        return;
    };
    // The header: read straight from the bytes when its options are none
    // or the aligned timestamp (nearly every established segment), else
    // checked and parsed in full.
    // Header prediction takes only the layouts the fast parse reads.
    let (h, pred_hlen) = if let Some(h) = tcp_fast_parse(skb.data()) {
        let hlen = h.hlen as u8;
        (h, hlen)
    } else {
        let Some(h) = tcp_slow_parse(skb.data()) else {
            ctx.mibs().this_cpu(cpu).inc(TcpMib::InErrs);
            kfree_skb_reason(skb, DropReason::PktTooSmall);
            return;
        };
        (h, 0)
    };
    if !matches!(skb.ip_summed, IpSummed::Unnecessary) && !tcp_checksum_ok(&skb, saddr, daddr) {
        ctx.mibs().this_cpu(cpu).inc(TcpMib::InCsumErrors);
        ctx.mibs().this_cpu(cpu).inc(TcpMib::InErrs);
        kfree_skb_reason(skb, DropReason::TcpCsum);
        return;
    }
    ctx.mibs().this_cpu(cpu).inc(TcpMib::InSegs);
    let hlen = h.hlen;
    // The payload: the rest of the linear part and any fragments.
    let len = (skb.len() - hlen) as u32;
    let flags = h.flags;
    let seg = TcpSeg {
        saddr,
        daddr,
        sport: h.sport,
        dport: h.dport,
        seq: h.seq,
        end_seq: h
            .seq
            .wrapping_add(len)
            .wrapping_add(u32::from(flags.contains(TcpFlags::SYN)))
            .wrapping_add(u32::from(flags.contains(TcpFlags::FIN))),
        ack_seq: h.ack_seq,
        flags,
        window: h.window,
        opts: h.opts,
        len,
        pred_hlen,
        ip_dsfield,
        urg_ptr: skb
            .data()
            .get(18..20)
            .map_or(0, |u| u16::from_be_bytes([u[0], u[1]])),
    };
    if skb.pull(hlen).is_err() {
        ctx.mibs().this_cpu(cpu).inc(TcpMib::InErrs);
        return;
    }
    tracing::trace!(target: "netstack::tcp", sport = seg.sport, dport = seg.dport, seq = seg.seq, ack = seg.ack_seq, flags = ?seg.flags, "tcp_v4_rcv");
    tcp_v4_rcv_seg(stack, ctx, &seg, skb, None);
}

/// The header fields `tcp_v4_rcv()` reads, with the header length.
struct TcpHdrFields {
    sport: u16,
    dport: u16,
    seq: u32,
    ack_seq: u32,
    flags: TcpFlags,
    window: u16,
    hlen: usize,
    opts: TcpOptions,
}

impl TcpHdrFields {
    /// The fixed header's fields from its 20 bytes.
    fn new(h: &[u8; 20], hlen: usize, opts: TcpOptions) -> TcpHdrFields {
        TcpHdrFields {
            sport: u16::from_be_bytes([h[0], h[1]]),
            dport: u16::from_be_bytes([h[2], h[3]]),
            seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
            ack_seq: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
            // AE is the low bit of the data-offset byte.
            flags: TcpFlags::from_bits_truncate((u16::from(h[12] & 1) << 8) | u16::from(h[13])),
            window: u16::from_be_bytes([h[14], h[15]]),
            hlen,
            opts,
        }
    }
}

/// The header of a segment whose options are none or exactly the aligned
/// timestamp (`NOP, NOP, TS`, 12 bytes), read without walking options;
/// `None` for any other layout, which [`tcp_slow_parse`] takes.
///
/// Mirrors `tcp_fast_parse_options()` with `tcp_parse_aligned_timestamp()`.
#[inline]
fn tcp_fast_parse(th: &[u8]) -> Option<TcpHdrFields> {
    /// NOP, NOP, TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP.
    const TS_ALIGNED: [u8; 4] = [1, 1, 8, 10];
    let h: &[u8; 20] = th.first_chunk()?;
    let hlen = usize::from(h[12] >> 4) * 4;
    let opts = match hlen {
        20 => TcpOptions::default(),
        32 => {
            let o: &[u8; 12] = th.get(20..32)?.try_into().ok()?;
            if o[..4] != TS_ALIGNED {
                return None;
            }
            let tsval = u32::from_be_bytes([o[4], o[5], o[6], o[7]]);
            let tsecr = u32::from_be_bytes([o[8], o[9], o[10], o[11]]);
            TcpOptions {
                timestamp: Some((tsval, tsecr)),
                ..TcpOptions::default()
            }
        }
        _ => return None,
    };
    Some(TcpHdrFields::new(h, hlen, opts))
}

/// The header of any other segment: the data offset checked (at least 5
/// words, within the segment), the options parsed in full
/// (`tcp_parse_options()`) in one walk that also checks their layout.
/// `None` for a malformed header or option area — the same segments
/// [`wire::TcpPacket::new_checked`] refuses, whose option check is the walk
/// [`TcpOptions::parse`] makes (both stop at `TCPOPT_EOL`).
#[cold]
#[inline(never)]
fn tcp_slow_parse(th: &[u8]) -> Option<TcpHdrFields> {
    let h: &[u8; 20] = th.first_chunk()?;
    let hlen = usize::from(h[12] >> 4) * 4;
    if hlen < 20 {
        return None;
    }
    let opts = TcpOptions::parse(th.get(20..hlen)?).ok()?;
    Some(TcpHdrFields::new(h, hlen, opts))
}

/// Whether the TCP checksum of a segment (header in the linear part, the
/// payload there and in any fragments) is right, summed across the pieces
/// (`tcp_checksum_complete()`: `skb_checksum()` and the pseudo-header).
fn tcp_checksum_ok(skb: &SkBuff, saddr: Ipv4Addr, daddr: Ipv4Addr) -> bool {
    let len = skb.len();
    let Ok(tcp_len) = u16::try_from(len) else {
        return false;
    };
    skb.checksum(0, len, 0)
        .is_ok_and(|sum| wire::csum_tcpudp_magic(saddr, daddr, tcp_len, 6, sum) == 0)
}

fn tcp_v4_rcv_seg<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    seg: &TcpSeg,
    skb: SkBuff,
    isn: Option<u32>,
) {
    let t = FourTuple {
        laddr: seg.daddr,
        lport: seg.dport,
        raddr: seg.saddr,
        rport: seg.sport,
    };
    // The socket comes out of the tables under the lookup's lock, the
    // listener too when no connection matches (`__inet_lookup()`: the
    // established hash, then the listening one).
    let (found, sk) = {
        let h = stack.hashinfo.lock();
        let found = h.lookup_established(&t);
        let sk = match found {
            Some(EhashEntry::Sock(id)) => h.socks.get(&id).cloned(),
            Some(EhashEntry::TimeWait(_)) => None,
            None => h
                .lookup_listener(seg.daddr, seg.dport)
                .and_then(|id| h.socks.get(&id).cloned()),
        };
        (found, sk)
    };
    match found {
        Some(EhashEntry::Sock(_)) => {
            let Some(sk) = sk else {
                tcp_v4_send_reset(ctx, seg);
                kfree_skb_reason(skb, DropReason::NoSocket);
                return;
            };
            let mut tp = sk.lock();
            if tp.state == TcpState::Close {
                drop(tp);
                tcp_v4_send_reset(ctx, seg);
                kfree_skb_reason(skb, DropReason::TcpClose);
                return;
            }
            let rst = tcp_rcv_state_process(stack, ctx, &mut tp, seg, skb);
            // What the segment freed (ACKed data, pruned queues) goes back
            // to the host's tcp_mem at once, as sk_mem_uncharge() does.
            crate::tcp_mem::sk_mem_reclaim(ctx, &mut tp);
            if rst {
                drop(tp);
                tcp_v4_send_reset(ctx, seg);
            }
        }
        Some(EhashEntry::TimeWait(id)) => {
            let (verdict, tw) = tcp_timewait_state_process(stack, ctx, id, seg);
            match verdict {
                TwVerdict::Success => {}
                TwVerdict::Ack => {
                    if let Some(tw) = tw {
                        tcp_v4_timewait_ack(ctx, &tw);
                    }
                }
                TwVerdict::Rst => tcp_v4_send_reset(ctx, seg),
                TwVerdict::Syn(isn) => {
                    inet_twsk_kill(stack, ctx, id);
                    tcp_v4_rcv_seg(stack, ctx, seg, skb, Some(isn));
                }
            }
        }
        None => {
            let Some(sk) = sk else {
                tcp_v4_send_reset(ctx, seg);
                kfree_skb_reason(skb, DropReason::NoSocket);
                return;
            };
            let mut lp = sk.lock();
            if lp.state != TcpState::Listen {
                drop(lp);
                tcp_v4_send_reset(ctx, seg);
                kfree_skb_reason(skb, DropReason::NoSocket);
                return;
            }
            if tcp_listen_rcv(stack, ctx, &mut lp, seg, skb, isn) {
                drop(lp);
                tcp_v4_send_reset(ctx, seg);
            }
        }
    }
}

/// Answers a segment with a RST: `seq = ack_seq` if it had ACK, else
/// `ack = seq + len (+SYN +FIN)`; never for a RST. Mirrors
/// `tcp_v4_send_reset()`. Counters: `OutSegs`, `OutRsts`.
pub fn tcp_v4_send_reset<C: TcpContext>(ctx: &mut C, seg: &TcpSeg) {
    if seg.has(TcpFlags::RST) {
        return;
    }
    let (seq, ack, flags) = if seg.has(TcpFlags::ACK) {
        (seg.ack_seq, 0, TcpFlags::RST)
    } else {
        (0, seg.end_seq, TcpFlags::RST | TcpFlags::ACK)
    };
    let repr = TcpRepr {
        src_port: seg.dport,
        dst_port: seg.sport,
        seq,
        ack,
        flags,
        window: 0,
        urgent: 0,
        options: TcpOptions::default(),
        payload_len: 0,
    };
    send_reply(ctx, &repr, seg.daddr, seg.saddr);
    ctx.mibs().this_cpu(ctx.cpu()).inc(TcpMib::OutRsts);
}

fn send_reply<C: TcpContext>(ctx: &mut C, repr: &TcpRepr, saddr: Ipv4Addr, daddr: Ipv4Addr) {
    if let Ok(skb) = build_segment(ctx, repr, None, saddr, daddr) {
        ctx.mibs().this_cpu(ctx.cpu()).inc(TcpMib::OutSegs);
        let _ = ctx.ip_queue_xmit(skb, saddr, daddr, 0);
    }
}

/// ACKs a segment on behalf of a TIME-WAIT socket. Mirrors
/// `tcp_v4_timewait_ack()` / `tcp_v4_send_ack()`.
fn tcp_v4_timewait_ack<C: TcpContext>(ctx: &mut C, tw: &crate::tcp_minisocks::InetTimewaitSock) {
    let now = ctx.now();
    let opts = TcpOptions {
        timestamp: tw.tstamp_ok.then(|| {
            (
                (now.as_millis() as u32).wrapping_add(tw.tsoffset),
                tw.ts_recent,
            )
        }),
        ..TcpOptions::default()
    };
    let repr = TcpRepr {
        src_port: tw.t.lport,
        dst_port: tw.t.rport,
        seq: tw.snd_nxt,
        ack: tw.rcv_nxt,
        flags: TcpFlags::ACK,
        window: (tw.rcv_wnd >> tw.rcv_wscale).min(65535) as u16,
        urgent: 0,
        options: opts,
        payload_len: 0,
    };
    send_reply(ctx, &repr, tw.t.laddr, tw.t.raddr);
}

/// What an ICMP error says to TCP.
///
/// Mirrors the `(type, code)` cases `tcp_v4_err()` distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpIcmpError {
    /// Destination unreachable (net/host/port/protocol): a soft error,
    /// hard in SYN-SENT. Carries the errno `icmp_err_convert[]` gives.
    Unreachable(Errno),
    /// Fragmentation needed with the next-hop MTU (`ICMP_FRAG_NEEDED`).
    FragNeeded(u16),
    /// A redirect (`ICMP_REDIRECT`, code 0–3) from the router `from`:
    /// `gateway` is the better first hop toward the peer.
    Redirect {
        /// The new first hop.
        gateway: Ipv4Addr,
        /// The router that sent the redirect.
        from: Ipv4Addr,
        /// The ICMP code.
        code: u8,
    },
    /// Source quench and others: ignored.
    Other,
}

/// Handles an ICMP error about a segment we sent: `saddr:sport` is ours,
/// `seq` the sequence number of the quoted header. Mirrors `tcp_v4_err()`:
/// ignored unless `seq` is in `[snd_una, snd_nxt)` (`OutOfWindowIcmps`); in
/// SYN-SENT/SYN-RECV an unreachable aborts the connect with the error; an
/// established connection records it as a soft error; a smaller MTU lowers
/// the MSS (`tcp_v4_mtu_reduced()`).
#[allow(clippy::too_many_arguments)] // the kernel function's inputs, one by one
pub fn tcp_v4_err<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    saddr: Ipv4Addr,
    sport: u16,
    daddr: Ipv4Addr,
    dport: u16,
    seq: u32,
    err: TcpIcmpError,
) {
    let t = FourTuple {
        laddr: saddr,
        lport: sport,
        raddr: daddr,
        rport: dport,
    };
    let Some(EhashEntry::Sock(id)) = stack.hashinfo.lock().lookup_established(&t) else {
        return;
    };
    let Some(sk) = stack.get(id) else { return };
    let mut tp = sk.lock();
    if tp.state != TcpState::SynSent && (before(seq, tp.snd_una) || !before(seq, tp.snd_nxt)) {
        ctx.mibs()
            .this_cpu(ctx.cpu())
            .inc(LinuxMib::OutOfWindowIcmps);
        return;
    }
    match err {
        TcpIcmpError::FragNeeded(mtu) => {
            // tcp_v4_mtu_reduced(): a smaller path MTU lowers the MSS and
            // what was sent too large goes again at once (the router
            // dropped it); EMSGSIZE is kept as the soft error in case the
            // connection does not recover.
            if matches!(tp.state, TcpState::Listen | TcpState::Close) {
                return;
            }
            let icmp_mtu = u32::from(mtu);
            let daddr = tp.daddr;
            let mtu = ctx.ip_rt_update_pmtu(daddr, icmp_mtu).max(68);
            if icmp_mtu < mtu {
                // The route keeps a larger MTU (min_pmtu) than the path's.
                tp.sk_err_soft = Some(Errno::MsgSize);
            }
            if mtu < tp.pmtu {
                crate::tcp_output::tcp_sync_mss(&mut tp, mtu, ctx.sysctl());
                crate::tcp_input::tcp_simple_retransmit(ctx, &mut tp);
            }
        }
        TcpIcmpError::Redirect {
            gateway,
            from,
            code,
        } => {
            // do_redirect() → ip_do_redirect()
            let daddr = tp.daddr;
            ctx.ip_rt_redirect(daddr, from, gateway, code);
        }
        TcpIcmpError::Unreachable(e) => match tp.state {
            TcpState::SynSent | TcpState::SynRecv => {
                tp.sk_err = Some(e);
                ctx.sk_wake(tp.id, SkEvent::ErrorReport);
                crate::tcp::tcp_done(stack, ctx, &mut tp);
            }
            _ => tp.sk_err_soft = Some(e),
        },
        TcpIcmpError::Other => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment's header and `payload`, with `options`, emitted by wire.
    fn segment(options: TcpOptions, payload: &[u8]) -> Vec<u8> {
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: 0xdead_beef,
            ack: 77,
            flags: TcpFlags::ACK | TcpFlags::PSH | TcpFlags::AE,
            window: 513,
            urgent: 0,
            options,
            payload_len: payload.len(),
        };
        let mut b = vec![0u8; repr.header_len() + payload.len()];
        b[repr.header_len()..].copy_from_slice(payload);
        let a = Ipv4Addr::new(198, 18, 0, 1);
        repr.emit(&mut b, a, a).unwrap();
        b
    }

    fn fields(h: &TcpHdrFields) -> (u16, u16, u32, u32, TcpFlags, u16, usize, TcpOptions) {
        (
            h.sport,
            h.dport,
            h.seq,
            h.ack_seq,
            h.flags,
            h.window,
            h.hlen,
            h.opts.clone(),
        )
    }

    /// The fast parse reads what the full one does for no options and for
    /// the aligned timestamp, and leaves every other layout (SACK blocks,
    /// MSS, a truncated header) to it.
    #[test]
    fn fast_parse_agrees_with_the_full_parse_or_declines() {
        let ts = TcpOptions {
            timestamp: Some((0x0102_0304, 0xa0b0_c0d0)),
            ..TcpOptions::default()
        };
        for (opts, payload) in [(TcpOptions::default(), &b"data"[..]), (ts.clone(), b"")] {
            let b = segment(opts, payload);
            let fast = tcp_fast_parse(&b).expect("the fast layout");
            let slow = tcp_slow_parse(&b).expect("a valid header");
            assert_eq!(fields(&fast), fields(&slow));
            assert!(fast.flags.contains(TcpFlags::AE | TcpFlags::PSH));
        }
        let mut sack = ts.clone();
        sack.sack_blocks
            .push(wire::TcpSackBlock {
                start_seq: 1,
                end_seq: 2,
            })
            .unwrap();
        let mss = TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        };
        for opts in [sack, mss] {
            let b = segment(opts.clone(), b"x");
            assert!(tcp_fast_parse(&b).is_none());
            assert_eq!(tcp_slow_parse(&b).unwrap().opts, opts);
        }
        let b = segment(ts, b"");
        assert!(tcp_fast_parse(&b[..28]).is_none(), "options cut short");
        assert!(tcp_slow_parse(&b[..28]).is_none());
    }

    /// The full parse accepts exactly the headers `TcpPacket::new_checked`
    /// accepts (data offset, length, option layout) and reads the same
    /// options, over SYN-like option areas with one byte changed at a
    /// time, every data offset and cut-short buffers.
    #[test]
    fn slow_parse_accepts_what_new_checked_accepts() {
        let syn = TcpOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_ok: true,
            timestamp: Some((5, 0)),
            ..TcpOptions::default()
        };
        let base = segment(syn, b"xy");
        let reference = |th: &[u8]| {
            let p = wire::TcpPacket::new_checked(th).ok()?;
            Some((p.header_len(), TcpOptions::parse(p.options()).ok()?))
        };
        let mut checked = 0;
        let mut accepted = 0;
        for at in 12..base.len() {
            for v in [0u8, 1, 2, 3, 4, 5, 8, 10, 0x50, 0x80, 0xf0, 0xff] {
                let mut b = base.clone();
                b[at] = v;
                for cut in [b.len(), 40, 33, 21, 19] {
                    let th = &b[..cut.min(b.len())];
                    let got = tcp_slow_parse(th).map(|h| (h.hlen, h.opts));
                    assert_eq!(got, reference(th), "byte {at} = {v:#x}, {cut} bytes");
                    checked += 1;
                    accepted += usize::from(got.is_some());
                }
            }
        }
        assert!(
            accepted > 0 && accepted < checked,
            "{accepted} of {checked}"
        );
    }
}
