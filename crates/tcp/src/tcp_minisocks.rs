//! TIME-WAIT mini sockets and the birth of a child socket.
//!
//! Mirrors `net/ipv4/tcp_minisocks.c` (`tcp_time_wait()`,
//! `tcp_timewait_state_process()`, `tcp_create_openreq_child()`) and
//! `net/ipv4/inet_timewait_sock.c` (`inet_twsk_hashdance()`,
//! `tw_timer_handler()`, `inet_twsk_kill()`).
//!
//! A connection that reaches TIME-WAIT (or an orphan in FIN-WAIT-2) gives
//! up its full socket for an [`InetTimewaitSock`] of a few dozen bytes that
//! keeps the 4-tuple and the port for `TCP_TIMEWAIT_LEN` (60 s) and answers
//! stray segments.

use core::net::Ipv4Addr;

use netcore::{Duration, Instant, LinuxMib};
use wire::TcpFlags;

use crate::context::TcpContext;
use crate::inet_hashtables::{EhashEntry, FourTuple};
use crate::tcp::{TcpStack, four_tuple, tcp_done_hashed};
use crate::tcp_input::TcpSeg;
use crate::tcp_sock::TcpSock;
use crate::tcp_sock::{SockId, TCP_TIMEWAIT_LEN, TcpState, after, before};
use crate::tcp_timer::TcpTimer;

/// A connection in TIME-WAIT (or an orphaned FIN-WAIT-2).
///
/// Mirrors `struct inet_timewait_sock` with `struct tcp_timewait_sock`.
#[derive(Clone, Debug)]
pub(crate) struct InetTimewaitSock {
    pub id: SockId,
    pub t: FourTuple,
    /// `tw_substate`: `TimeWait` or `FinWait2`.
    pub substate: TcpState,
    pub rcv_nxt: u32,
    pub snd_nxt: u32,
    pub rcv_wnd: u32,
    pub rcv_wscale: u8,
    pub tstamp_ok: bool,
    pub ts_recent: u32,
    pub ts_recent_stamp: u64,
    pub tsoffset: u32,
    pub expires: Instant,
    pub last_oow_ack_time: crate::tcp_sock::OptInstant,
    /// When the connection entered this state (`tw_entry_stamp`), from
    /// which `tcp_tw_reuse_delay` counts.
    pub entry_stamp: Instant,
}

/// What `tcp_timewait_state_process()` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TwVerdict {
    /// Nothing to send (`TCP_TW_SUCCESS`).
    Success,
    /// Send an ACK (`TCP_TW_ACK`).
    Ack,
    /// Send a RST (`TCP_TW_RST`).
    Rst,
    /// A new SYN may reopen the connection with this ISN (`TCP_TW_SYN`).
    Syn(u32),
}

/// Moves a full socket to TIME-WAIT (or FIN-WAIT-2) as a mini socket that
/// takes over its hash entry and port for `timeo` (`TCP_TIMEWAIT_LEN` for
/// TIME-WAIT), then finishes the full socket. With `tcp_max_tw_buckets`
/// mini sockets already alive the connection closes without one
/// (`TCPTimeWaitOverflow`). The connection's metrics are saved for its
/// peer (`tcp_update_metrics()`). Mirrors `tcp_time_wait()` +
/// `inet_twsk_hashdance()`.
pub(crate) fn tcp_time_wait<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    state: TcpState,
    timeo: Duration,
) {
    let now = ctx.now();
    // What the connection measured stays for the next one to the peer.
    crate::tcp_metrics::tcp_update_metrics(&stack.metrics, ctx, tp);
    let timeo = if state == TcpState::TimeWait {
        TCP_TIMEWAIT_LEN
    } else {
        timeo
    };
    // inet_twsk_alloc(): no mini socket past tcp_max_tw_buckets (counting
    // the FIN-WAIT-2 ones); the connection is simply closed.
    let max_tw = ctx
        .sysctl()
        .get_int(netcore::Sysctl::TCP_MAX_TW_BUCKETS)
        .max(0) as usize;
    if stack.tw.lock().len() >= max_tw {
        ctx.mibs()
            .this_cpu(ctx.cpu())
            .inc(LinuxMib::TcpTimeWaitOverflow);
        tracing::debug!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, "TCP: time wait bucket table overflow");
        tcp_done_hashed(stack, ctx, tp, true);
        return;
    }
    let id = stack.alloc_id();
    let t = four_tuple(tp);
    let tw = InetTimewaitSock {
        id,
        t,
        substate: state,
        rcv_nxt: tp.rcv_nxt,
        snd_nxt: tp.snd_nxt,
        rcv_wnd: crate::tcp_output::tcp_receive_window(tp),
        rcv_wscale: tp.rx_opt.rcv_wscale,
        tstamp_ok: tp.rx_opt.tstamp_ok,
        ts_recent: tp.rx_opt.ts_recent,
        ts_recent_stamp: tp.rx_opt.ts_recent_stamp,
        tsoffset: tp.tsoffset,
        expires: now + timeo,
        last_oow_ack_time: crate::tcp_sock::OptInstant::NONE,
        entry_stamp: now,
    };
    {
        let mut h = stack.hashinfo.lock();
        h.ehash_replace(t, EhashEntry::Sock(tp.id), EhashEntry::TimeWait(id));
        if tp.bound {
            h.rebind_time_wait(tp.id, id, tp.sport);
            tp.bound = false;
        }
    }
    stack.tw.lock().insert(id, tw);
    ctx.arm_timer(TcpTimer::TimeWait(id), now + timeo);
    tracing::debug!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, state = ?state, "tcp_time_wait");
    // The hash dance above took the socket out of the tables (its entry
    // is the TIME-WAIT sock's now, or was never its own): tcp_done()'s
    // inet_unhash() finds it sk_unhashed().
    tcp_done_hashed(stack, ctx, tp, false);
}

/// Removes a mini socket from the tables. Mirrors `inet_twsk_kill()`.
pub(crate) fn inet_twsk_kill<C: TcpContext>(stack: &TcpStack, ctx: &mut C, id: SockId) {
    let Some(tw) = stack.tw.lock().remove(&id) else {
        return;
    };
    ctx.cancel_timer(TcpTimer::TimeWait(id));
    let mut h = stack.hashinfo.lock();
    h.ehash_remove(&tw.t, EhashEntry::TimeWait(id));
    h.unbind(id, tw.t.lport);
}

/// What a connection takes over from the TIME-WAIT socket it replaces:
/// its first sequence number and the peer's last timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TwReuse {
    /// `write_seq`: the old connection's `snd_nxt` + 65,537 (never 0), so
    /// that the new sequence space starts past anything still in flight.
    pub write_seq: u32,
    pub ts_recent: u32,
    pub ts_recent_stamp: u64,
}

/// Whether a connect may take over the 4-tuple of `tw`, and what it takes.
/// `bound`: the connecting socket's port was chosen by `bind()` (Linux
/// calls with `twp == NULL`), which may take over any TIME-WAIT socket that
/// saw timestamps; an ephemeral port search takes over one only as
/// `net.ipv4.tcp_tw_reuse` allows (1: always; 2, the default: when either
/// address is a loopback one; never a FIN-WAIT-2 one) and only once
/// `tcp_tw_reuse_delay` ms have passed since it entered TIME-WAIT.
///
/// Mirrors `tcp_twsk_unique()` in `net/ipv4/tcp_ipv4.c` (Linux 6.13+,
/// with `tw_entry_stamp`). Not modelled: the `tw_bound_dev_if ==
/// LOOPBACK_IFINDEX` case of `tcp_tw_reuse=2` (the sockets here are not
/// bound to devices) and TCP repair.
pub(crate) fn tcp_twsk_unique(
    tw: &InetTimewaitSock,
    bound: bool,
    sysctl: &netcore::Sysctl,
    now: Instant,
) -> Option<TwReuse> {
    let mut reuse = sysctl.get_int(netcore::Sysctl::TCP_TW_REUSE);
    if tw.substate == TcpState::FinWait2 {
        reuse = 0;
    }
    if reuse == 2 && !(tw.t.raddr.is_loopback() || tw.t.laddr.is_loopback()) {
        reuse = 0;
    }
    let delay = sysctl.get_int(netcore::Sysctl::TCP_TW_REUSE_DELAY).max(0) as u64;
    let ripe = now > tw.entry_stamp + Duration::from_millis(delay);
    if tw.ts_recent_stamp == 0 || !(bound || (reuse != 0 && ripe)) {
        return None;
    }
    let mut write_seq = tw.snd_nxt.wrapping_add(65535 + 2);
    if write_seq == 0 {
        write_seq = 1;
    }
    Some(TwReuse {
        write_seq,
        ts_recent: tw.ts_recent,
        ts_recent_stamp: tw.ts_recent_stamp,
    })
}

/// Takes TIME-WAIT socket `id`, whose 4-tuple a new connection now holds,
/// off its timer and out of the TIME-WAIT table (`TWRecycled` counted).
/// Mirrors the `inet_twsk_deschedule_put()` of `__inet_hash_connect()` /
/// `__inet_check_established()`, which took its hash entry and port.
pub(crate) fn inet_twsk_recycle<C: TcpContext>(stack: &TcpStack, ctx: &mut C, id: SockId) {
    if stack.tw.lock().remove(&id).is_some() {
        ctx.cancel_timer(TcpTimer::TimeWait(id));
    }
    ctx.mibs()
        .this_cpu(ctx.cpu())
        .inc(LinuxMib::TimeWaitRecycled);
}

/// TIME-WAIT is over. Mirrors `tw_timer_handler()` (`TW` counted).
pub(crate) fn tw_timer_handler<C: TcpContext>(stack: &TcpStack, ctx: &mut C, id: SockId) {
    if stack.tw.lock().contains_key(&id) {
        ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::TimeWaited);
        inet_twsk_kill(stack, ctx, id);
    }
}

fn reschedule<C: TcpContext>(ctx: &mut C, tw: &mut InetTimewaitSock, timeo: Duration) {
    tw.expires = ctx.now() + timeo;
    ctx.arm_timer(TcpTimer::TimeWait(tw.id), tw.expires);
}

/// Handles a segment for a mini socket. Mirrors
/// `tcp_timewait_state_process()`: in FIN-WAIT-2 a FIN moves it to
/// TIME-WAIT (ACKed); in TIME-WAIT an in-window RST kills it (unless
/// `tcp_rfc1337`, which ignores it),
/// a bare ACK restarts the 60 s, an out-of-window segment is ACKed (rate
/// limited, `TCPACKSkippedTimeWait`), and a newer SYN may reopen.
pub(crate) fn tcp_timewait_state_process<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    id: SockId,
    seg: &TcpSeg,
) -> (TwVerdict, Option<InetTimewaitSock>) {
    let now = ctx.now();
    let secs = crate::tcp_input::secs(now);
    let mut tws = stack.tw.lock();
    let Some(tw) = tws.get_mut(&id) else {
        return (TwVerdict::Success, None);
    };
    let rst = seg.has(TcpFlags::RST);
    let syn = seg.has(TcpFlags::SYN);
    let ack = seg.has(TcpFlags::ACK);
    let saw_ts = tw.tstamp_ok && seg.opts.timestamp.is_some();
    let tsval = seg.opts.timestamp.map_or(0, |t| t.0);
    let paws_reject =
        saw_ts && tw.ts_recent_stamp != 0 && (tw.ts_recent.wrapping_sub(tsval) as i32) > 1 && !rst;
    let verdict = if tw.substate == TcpState::FinWait2 {
        let in_window = !before(seg.end_seq, tw.rcv_nxt)
            && !after(seg.seq, tw.rcv_nxt.wrapping_add(tw.rcv_wnd));
        if paws_reject || !in_window {
            oow_ack(ctx, tw, LinuxMib::TcpAckSkippedFinWait2)
        } else if rst {
            drop(tws);
            inet_twsk_kill(stack, ctx, id);
            return (TwVerdict::Success, None);
        } else if syn && !before(seg.seq, tw.rcv_nxt) {
            TwVerdict::Rst
        } else if !ack || !after(seg.end_seq, tw.rcv_nxt) || seg.end_seq == seg.seq {
            TwVerdict::Success
        } else if !seg.has(TcpFlags::FIN) || seg.end_seq != tw.rcv_nxt.wrapping_add(1) {
            TwVerdict::Rst
        } else {
            tw.substate = TcpState::TimeWait;
            tw.rcv_nxt = seg.end_seq;
            if saw_ts {
                tw.ts_recent = tsval;
                tw.ts_recent_stamp = secs;
            }
            reschedule(ctx, tw, TCP_TIMEWAIT_LEN);
            TwVerdict::Ack
        }
    } else if !paws_reject && seg.seq == tw.rcv_nxt && (seg.seq == seg.end_seq || rst) {
        if !rst {
            reschedule(ctx, tw, TCP_TIMEWAIT_LEN);
        } else if ctx.sysctl().get_int(netcore::Sysctl::TCP_RFC1337) == 0 {
            // TIME-WAIT assassination (RFC 1337's hazard H2), allowed
            // unless tcp_rfc1337: then the RST is ignored.
            drop(tws);
            inet_twsk_kill(stack, ctx, id);
            return (TwVerdict::Success, None);
        }
        if saw_ts {
            tw.ts_recent = tsval;
            tw.ts_recent_stamp = secs;
        }
        TwVerdict::Success
    } else if syn
        && !rst
        && !ack
        && !paws_reject
        && (after(seg.seq, tw.rcv_nxt) || (saw_ts && (tw.ts_recent.wrapping_sub(tsval) as i32) < 0))
    {
        let mut isn = tw.snd_nxt.wrapping_add(65535 + 2);
        if isn == 0 {
            isn = 1;
        }
        TwVerdict::Syn(isn)
    } else {
        if paws_reject {
            ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::PawsTimewait);
        }
        if rst {
            TwVerdict::Success
        } else {
            if paws_reject || ack {
                reschedule(ctx, tw, TCP_TIMEWAIT_LEN);
            }
            oow_ack(ctx, tw, LinuxMib::TcpAckSkippedTimeWait)
        }
    };
    let tw = tw.clone();
    drop(tws);
    if matches!(verdict, TwVerdict::Syn(_)) && !tw_syn_has_listener(stack, &tw) {
        // `tcp_v4_rcv()`: TCP_TW_SYN with no listener falls through to
        // TCP_TW_ACK, `tcp_v4_timewait_ack()`, without rate limit.
        return (TwVerdict::Ack, Some(tw));
    }
    (verdict, Some(tw))
}

/// Whether a listener would take a SYN that reopens `tw`'s port: the
/// `inet_lookup_listener()` that `tcp_v4_rcv()` runs for `TCP_TW_SYN`.
///
/// # Deviations from Linux
/// Linux looks the listener up in `tcp_v4_rcv()`; here it is done at the
/// end of [`tcp_timewait_state_process`], whose `TCP_TW_SYN` verdict then
/// already means "a listener takes it" and `TCP_TW_ACK` covers the rest.
fn tw_syn_has_listener(stack: &TcpStack, tw: &InetTimewaitSock) -> bool {
    let id = stack
        .hashinfo
        .lock()
        .lookup_listener(tw.t.laddr, tw.t.lport);
    id.and_then(|id| stack.get(id))
        .is_some_and(|sk| sk.lock().state == TcpState::Listen)
}

fn oow_ack<C: TcpContext>(ctx: &C, tw: &mut InetTimewaitSock, mib: LinuxMib) -> TwVerdict {
    let now = ctx.now();
    let limit = Duration::from_millis(
        ctx.sysctl()
            .get_int(netcore::Sysctl::TCP_INVALID_RATELIMIT)
            .max(0) as u64,
    );
    if let Some(last) = tw.last_oow_ack_time.get()
        && now.saturating_duration_since(last) < limit
    {
        ctx.mibs().this_cpu(ctx.cpu()).inc(mib);
        return TwVerdict::Success;
    }
    tw.last_oow_ack_time.set(Some(now));
    TwVerdict::Ack
}

/// The addresses of a mini socket, for `ss`.
pub(crate) fn tw_addrs(tw: &InetTimewaitSock) -> (Ipv4Addr, u16, Ipv4Addr, u16) {
    (tw.t.laddr, tw.t.lport, tw.t.raddr, tw.t.rport)
}
