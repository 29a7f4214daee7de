//! Listening sockets: request sockets (the SYN queue), the accept queue,
//! SYN-ACK retransmission, SYN cookies, and the birth of the child socket.
//!
//! Mirrors `net/ipv4/inet_connection_sock.c` (`inet_csk_reqsk_queue_add()`,
//! `inet_csk_listen_stop()`, `reqsk_timer_handler()`,
//! `inet_rtx_syn_ack()`), with the listener halves of `tcp_input.c`
//! (`tcp_conn_request()`, `tcp_syn_flood_action()`,
//! `tcp_openreq_init_rwin()`), `tcp_minisocks.c` (`tcp_check_req()`,
//! `tcp_create_openreq_child()`), `tcp_ipv4.c` (`tcp_v4_syn_recv_sock()`,
//! `tcp_v4_send_synack()`), `tcp_output.c` (`tcp_make_synack()`) and
//! `syncookies.c` (`cookie_v4_check()`).
//!
//! ```text
//!  SYN --> tcp_conn_request --> request sock in syn_queue --> SYN-ACK (1 s, 2 s, ... x tcp_synack_retries)
//!            | queue full: SYN cookie, nothing stored
//!  ACK --> tcp_check_req / cookie_v4_check --> child (SYN-RECV -> ESTABLISHED) --> accept_queue --> accept()
//!            | accept queue full: ACK dropped, ListenOverflows + ListenDrops
//! ```
//!
//! # Deviations from Linux
//!
//! - Request sockets live in their listener's table, not in the
//!   established hash (Linux 4.4+ hashes them as `TCP_NEW_SYN_RECV`); the
//!   lookup order and the outcomes are the same.
//! - The SYN queue is full when it holds more than the listen backlog, as
//!   in Linux (`inet_csk_reqsk_queue_is_full()`); `tcp_max_syn_backlog`
//!   only applies, as in Linux, when `tcp_syncookies` is 0.
//! - No young/old pruning of the SYN queue in `reqsk_timer_handler()`.
//! - `sk_txrehash` is not kept per socket (no `SO_TXREHASH`): a new flow
//!   hash on retransmission follows `net.core.txrehash` directly, which is
//!   what Linux does for a socket that never set the option.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use netcore::{Duration, Instant, LinuxMib, SkBuff, Sysctl, TcpMib};
use wire::{TcpFlags, TcpOptions, TcpRepr};

use crate::context::{SkEvent, TcpContext};
use crate::inet_hashtables::{BindOwner, EhashEntry, FourTuple, InetEhashfn, PortHash};
use crate::secure_seq::{secure_tcp_seq, secure_tcp_ts_off};
use crate::syncookies::{
    cookie_init_timestamp, cookie_timestamp_decode, cookie_v4_check_mss, cookie_v4_init_sequence,
};
use crate::tcp::{TcpSocket, TcpStack, four_tuple};
use crate::tcp_input::{TcpSeg, tcp_rcv_state_process};
use crate::tcp_output::{
    build_segment, tcp_advertise_mss, tcp_select_initial_window, tcp_sync_mss,
};
use crate::tcp_sock::{
    TCP_MSS_DEFAULT, TCP_RTO_MAX, TCP_TIMEOUT_INIT, TcpSock, TcpState, after, before,
};
use crate::tcp_timer::TcpTimer;

/// A connection request waiting for the final ACK.
///
/// Mirrors `struct request_sock` / `inet_request_sock` / `tcp_request_sock`.
#[derive(Clone, Debug)]
pub(crate) struct RequestSock {
    pub id: u32,
    pub t: FourTuple,
    pub rcv_isn: u32,
    pub snt_isn: u32,
    /// The peer's MSS (`req->mss`).
    pub mss: u16,
    pub advmss: u16,
    pub pmtu: u32,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub wscale_ok: bool,
    pub sack_ok: bool,
    pub tstamp_ok: bool,
    /// The SYN asked for ECN and it was accepted (`inet_rsk(req)->ecn_ok`).
    pub ecn_ok: bool,
    pub ts_recent: u32,
    pub ts_off: u32,
    /// The flow hash of the SYN-ACKs, inherited by the child
    /// (`tcp_rsk(req)->txhash`).
    pub txhash: u32,
    pub rcv_wnd: u32,
    pub window_clamp: u32,
    pub num_retrans: u8,
    pub num_timeout: u8,
    /// The final ACK came but the accept queue was full (`acked`).
    pub acked: bool,
    pub synack_sent: Instant,
}

/// What a listening socket keeps. Mirrors `struct request_sock_queue`
/// (`icsk_accept_queue`) with `sk_max_ack_backlog` and the last SYN-queue
/// overflow (`tp->rx_opt.ts_recent_stamp` reused by Linux for cookies).
#[derive(Debug, Default)]
pub(crate) struct ListenState {
    pub max_ack_backlog: u32,
    /// The requests by 4-tuple, hashed as the established table is
    /// (`inet_ehashfn()` under `inet_ehash_secret`): Linux keeps request
    /// socks in the established hash itself (`inet_ehash_insert()`).
    pub syn_queue: HashMap<FourTuple, RequestSock, InetEhashfn>,
    /// Request number → its 4-tuple, for the SYN-ACK timers.
    pub req_index: HashMap<u32, FourTuple, PortHash>,
    pub next_req: u32,
    pub accept_queue: VecDeque<Arc<TcpSocket>>,
    pub last_synq_overflow: Option<Instant>,
    /// The listener's congestion control as resolved in the registry, by
    /// name, for its children (see [`ListenState::child_ca_ops`]).
    pub child_ca: ChildCa,
}

/// The registered algorithm a listener's children are made with: the
/// listener's `icsk_ca_ops` pointer that `inet_csk_clone_lock()` copies
/// into each child. Kept by name so a later `setsockopt(TCP_CONGESTION)`
/// on the listener is followed.
#[derive(Default)]
pub(crate) struct ChildCa(Option<(&'static str, crate::tcp_cong::CongestionFactory)>);

impl std::fmt::Debug for ChildCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ChildCa")
            .field(&self.0.as_ref().map(|(name, _)| *name))
            .finish()
    }
}

impl ListenState {
    /// An empty listener of `backlog` whose SYN queue hashes with
    /// `ehashfn`, the host's established-table hash.
    pub fn new(backlog: u32, ehashfn: InetEhashfn) -> ListenState {
        ListenState {
            max_ack_backlog: backlog,
            syn_queue: HashMap::with_hasher(ehashfn),
            ..ListenState::default()
        }
    }

    /// A new instance of the listener's algorithm `name` for a child, as
    /// `inet_csk_clone_lock()` copies `icsk_ca_ops` and
    /// `tcp_init_congestion_control()` runs `.init`. The registry is
    /// searched once per name and its factory kept (the registry only
    /// grows, so the kept factory is what a new search would give); an
    /// unknown name gives Reno.
    fn child_ca_ops(
        &mut self,
        registry: &crate::tcp_cong::CongestionRegistry,
        name: &'static str,
    ) -> Box<dyn crate::tcp_cong::CongestionOps> {
        if let Some((kept, factory)) = &self.child_ca.0
            && *kept == name
        {
            return factory();
        }
        match registry.factory(name) {
            Some(factory) => {
                let ca = factory();
                self.child_ca = ChildCa(Some((name, factory)));
                ca
            }
            None => Box::new(crate::tcp_cong::Reno),
        }
    }

    /// `sk_acceptq_is_full()`: more than the backlog queued.
    fn acceptq_is_full(&self) -> bool {
        self.accept_queue.len() as u32 > self.max_ack_backlog
    }

    /// `inet_csk_reqsk_queue_is_full()`.
    fn reqsk_queue_is_full(&self) -> bool {
        self.syn_queue.len() as u32 > self.max_ack_backlog
    }
}

fn listendrop<C: TcpContext>(ctx: &C) {
    ctx.mibs().this_cpu(ctx.cpu()).inc(LinuxMib::ListenDrops);
}

/// A random flow hash for a socket's or request's segments, never 0 (0
/// means "none"). Mirrors `net_tx_rndhash()` in `include/net/sock.h`.
pub(crate) fn net_tx_rndhash<C: TcpContext>(ctx: &mut C) -> u32 {
    ctx.prandom_u32().max(1)
}

/// Picks a new flow hash after a timeout, so the path's ECMP/queue choice
/// may change, when the socket has one and `net.core.txrehash` allows it.
/// Returns whether it changed. Mirrors `sk_rethink_txhash()` in
/// `include/net/sock.h`; the caller counts `TCPTimeoutRehash`.
pub(crate) fn sk_rethink_txhash<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) -> bool {
    if tp.txhash == 0 || ctx.sysctl().get_int(Sysctl::TXREHASH) == 0 {
        return false;
    }
    tp.txhash = net_tx_rndhash(ctx);
    true
}

/// Retransmits a request's SYN-ACK with a new flow hash (when
/// `net.core.txrehash` allows). Mirrors `tcp_rtx_synack()`.
fn tcp_rtx_synack<C: TcpContext>(ctx: &mut C, req: &mut RequestSock) {
    if ctx.sysctl().get_int(Sysctl::TXREHASH) != 0 {
        req.txhash = net_tx_rndhash(ctx);
    }
    send_synack(ctx, req, None, true);
}

/// Builds and sends a SYN-ACK for `req`. Mirrors `tcp_make_synack()` +
/// `tcp_v4_send_synack()`: window `min(rcv_wnd, 65535)` unscaled, options
/// MSS, SACK_PERM, TS, WS in Linux's order.
fn send_synack<C: TcpContext>(ctx: &mut C, req: &RequestSock, tsval: Option<u32>, retrans: bool) {
    let now = ctx.now();
    let opts = TcpOptions {
        mss: Some(req.advmss),
        wscale: req.wscale_ok.then_some(req.rcv_wscale),
        sack_ok: req.sack_ok,
        timestamp: req.tstamp_ok.then(|| {
            let v = tsval.unwrap_or((now.as_millis() as u32).wrapping_add(req.ts_off));
            (v, req.ts_recent)
        }),
        sack_blocks: wire::SackBlocks::new(),
    };
    let repr = TcpRepr {
        src_port: req.t.lport,
        dst_port: req.t.rport,
        seq: req.snt_isn,
        ack: req.rcv_isn.wrapping_add(1),
        flags: TcpFlags::SYN | TcpFlags::ACK | crate::tcp_ecn::tcp_ecn_make_synack(req.ecn_ok),
        window: req.rcv_wnd.min(65535) as u16,
        urgent: 0,
        options: opts,
        payload_len: 0,
    };
    let Ok(mut skb) = build_segment(ctx, &repr, None, req.t.laddr, req.t.raddr) else {
        return;
    };
    // tcp_make_synack(): skb_set_hash() with the request's hash.
    skb.set_hash(req.txhash, true);
    let cpu = ctx.cpu();
    if retrans {
        ctx.mibs().this_cpu(cpu).inc(TcpMib::RetransSegs);
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpSynRetrans);
    } else {
        ctx.mibs().this_cpu(cpu).inc(TcpMib::OutSegs);
    }
    let _ = ctx.ip_queue_xmit(skb, req.t.laddr, req.t.raddr, 0);
}

/// Sizes a request's receive window. Mirrors `tcp_openreq_init_rwin()`.
fn openreq_init_rwin<C: TcpContext>(ctx: &C, listener: &TcpSock, req: &mut RequestSock) {
    let mss = u32::from(req.advmss) - if req.tstamp_ok { 12 } else { 0 };
    let full_space = listener.tcp_full_space();
    let mut clamp = listener.opts_ext.window_clamp;
    // A locked SO_RCVBUF bounds the window and hence the scale.
    if listener.opts.rcvbuf_locked && (clamp == 0 || clamp > full_space) {
        clamp = full_space;
    }
    let (wnd, clamp, wscale) =
        tcp_select_initial_window(ctx.sysctl(), full_space, mss, clamp, req.wscale_ok);
    req.rcv_wnd = wnd;
    req.window_clamp = clamp;
    req.rcv_wscale = wscale;
}

/// A SYN reached a listener. Mirrors `tcp_conn_request()`: with the SYN
/// queue full, a SYN cookie is sent (`TCPReqQFullDoCookies`,
/// `SyncookiesSent`) or the SYN dropped (`TCPReqQFullDrop`); with the
/// accept queue full the SYN is dropped (`ListenOverflows`, `ListenDrops`);
/// otherwise a request socket is queued and a SYN-ACK sent with its timer.
pub(crate) fn tcp_conn_request<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    lp: &mut TcpSock,
    seg: &TcpSeg,
    isn: Option<u32>,
) {
    let now = ctx.now();
    let cpu = ctx.cpu();
    let sysctl = ctx.sysctl().clone();
    let syncookies = sysctl.get_int(Sysctl::TCP_SYNCOOKIES);
    let Some(l) = lp.listen.as_mut() else { return };
    let mut want_cookie = false;
    if (syncookies == 2 || l.reqsk_queue_is_full()) && isn.is_none() {
        if syncookies != 0 {
            want_cookie = true;
            ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpReqQFullDoCookies);
        } else {
            ctx.mibs().this_cpu(cpu).inc(LinuxMib::TcpReqQFullDrop);
            listendrop(ctx);
            return;
        }
    }
    if l.acceptq_is_full() {
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::ListenOverflows);
        listendrop(ctx);
        return;
    }
    if !want_cookie && isn.is_none() && syncookies == 0 {
        let max = sysctl.get_int(Sysctl::TCP_MAX_SYN_BACKLOG).max(0) as u32;
        if max.saturating_sub(l.syn_queue.len() as u32) < (max >> 2) {
            listendrop(ctx);
            return;
        }
    }
    let t = FourTuple {
        laddr: seg.daddr,
        lport: seg.dport,
        raddr: seg.saddr,
        rport: seg.sport,
    };
    let Ok(route) = ctx.ip_route_output(seg.saddr, Some(seg.daddr)) else {
        listendrop(ctx);
        return;
    };
    let o = &seg.opts;
    let mut mss = o.mss.unwrap_or(TCP_MSS_DEFAULT);
    if lp.rx_opt.user_mss != 0 && lp.rx_opt.user_mss < mss {
        mss = lp.rx_opt.user_mss;
    }
    let tstamp_ok = sysctl.get_int(Sysctl::TCP_TIMESTAMPS) != 0 && o.timestamp.is_some();
    let mut req = RequestSock {
        id: 0,
        t,
        rcv_isn: seg.seq,
        snt_isn: 0,
        mss,
        advmss: tcp_advertise_mss(route.mtu, lp.rx_opt.user_mss),
        pmtu: route.mtu,
        snd_wscale: o.wscale.unwrap_or(0).min(crate::tcp_sock::TCP_MAX_WSCALE),
        rcv_wscale: 0,
        wscale_ok: sysctl.get_int(Sysctl::TCP_WINDOW_SCALING) != 0 && o.wscale.is_some(),
        sack_ok: sysctl.get_int(Sysctl::TCP_SACK) != 0 && o.sack_ok,
        tstamp_ok,
        ecn_ok: crate::tcp_ecn::tcp_ecn_create_request(&sysctl, seg),
        ts_recent: o.timestamp.map_or(0, |t| t.0),
        ts_off: if tstamp_ok {
            secure_tcp_ts_off(&stack.secrets, t.laddr, t.raddr)
        } else {
            0
        },
        txhash: net_tx_rndhash(ctx),
        rcv_wnd: 0,
        window_clamp: 0,
        num_retrans: 0,
        num_timeout: 0,
        acked: false,
        synack_sent: now,
    };
    if want_cookie && !req.tstamp_ok {
        // `tcp_clear_options()`: without timestamps a cookie has nowhere
        // to keep SACK and window scaling, so neither is offered.
        req.sack_ok = false;
        req.wscale_ok = false;
        req.snd_wscale = 0;
        // ... nor ECN.
        req.ecn_ok = false;
    }
    openreq_init_rwin(ctx, lp, &mut req);
    if want_cookie {
        let (cookie, qmss) = cookie_v4_init_sequence(
            &stack.secrets,
            t.raddr,
            t.laddr,
            t.rport,
            t.lport,
            seg.seq,
            mss,
            now,
        );
        req.snt_isn = cookie;
        req.mss = qmss;
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::SyncookiesSent);
        let Some(l) = lp.listen.as_mut() else { return };
        l.last_synq_overflow = Some(now);
        let tsval = req.tstamp_ok.then(|| {
            cookie_init_timestamp(
                now.as_millis() as u32,
                req.wscale_ok.then_some(req.snd_wscale),
                req.sack_ok,
                req.ecn_ok,
            )
            .wrapping_add(req.ts_off)
        });
        send_synack(ctx, &req, tsval, false);
        return;
    }
    req.snt_isn = isn
        .unwrap_or_else(|| secure_tcp_seq(&stack.secrets, t.laddr, t.raddr, t.lport, t.rport, now));
    let Some(l) = lp.listen.as_mut() else { return };
    l.next_req = l.next_req.wrapping_add(1);
    req.id = l.next_req;
    let id = req.id;
    send_synack(ctx, &req, None, false);
    if let Some(old) = l.syn_queue.insert(t, req) {
        l.req_index.remove(&old.id);
        ctx.cancel_timer(TcpTimer::SynAck {
            listener: lp.id,
            req: old.id,
        });
    }
    l.req_index.insert(id, t);
    ctx.arm_timer(
        TcpTimer::SynAck {
            listener: lp.id,
            req: id,
        },
        now + TCP_TIMEOUT_INIT,
    );
}

/// The SYN-ACK timer of a request fired. Mirrors `reqsk_timer_handler()`:
/// resend (`inet_rtx_syn_ack()`) with the interval doubling from 1 s up to
/// `TCP_RTO_MAX`, and drop the request after `tcp_synack_retries`.
pub(crate) fn reqsk_timer_handler<C: TcpContext>(
    _stack: &TcpStack,
    ctx: &mut C,
    lp: &mut TcpSock,
    req_id: u32,
) {
    let now = ctx.now();
    let max_retries = ctx.sysctl().get_int(Sysctl::TCP_SYNACK_RETRIES).max(0) as u8;
    let lid = lp.id;
    let Some(l) = lp.listen.as_mut() else { return };
    let Some(&t) = l.req_index.get(&req_id) else {
        return;
    };
    let Some(req) = l.syn_queue.get_mut(&t) else {
        return;
    };
    if req.num_timeout >= max_retries {
        l.syn_queue.remove(&t);
        l.req_index.remove(&req_id);
        return;
    }
    req.num_retrans = req.num_retrans.saturating_add(1);
    req.num_timeout = req.num_timeout.saturating_add(1);
    tcp_rtx_synack(ctx, req);
    let num_timeout = req.num_timeout;
    let timeout = (TCP_TIMEOUT_INIT * (1u32 << num_timeout.min(16))).min(TCP_RTO_MAX);
    ctx.arm_timer(
        TcpTimer::SynAck {
            listener: lid,
            req: req_id,
        },
        now + timeout,
    );
}

/// A segment for a listener: a request's final ACK, a cookie ACK, a SYN,
/// or something to reset. Mirrors the `TCP_LISTEN` half of
/// `tcp_v4_do_rcv()`/`tcp_rcv_state_process()` with `tcp_check_req()` and
/// `cookie_v4_check()`. Returns whether a RST should answer.
pub(crate) fn tcp_listen_rcv<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    lp: &mut TcpSock,
    seg: &TcpSeg,
    skb: SkBuff,
    isn: Option<u32>,
) -> bool {
    let t = FourTuple {
        laddr: seg.daddr,
        lport: seg.dport,
        raddr: seg.saddr,
        rport: seg.sport,
    };
    let has_req = lp
        .listen
        .as_ref()
        .is_some_and(|l| l.syn_queue.contains_key(&t));
    if has_req {
        return tcp_check_req(stack, ctx, lp, seg, skb, t);
    }
    if !seg.has(TcpFlags::SYN) && seg.has(TcpFlags::ACK) && !seg.has(TcpFlags::RST) {
        if let Some(r) = cookie_v4_check(stack, ctx, lp, seg, skb) {
            return r;
        }
        return true;
    }
    if seg.has(TcpFlags::ACK) {
        return true;
    }
    if seg.has(TcpFlags::RST) {
        return false;
    }
    if seg.has(TcpFlags::SYN) && !seg.has(TcpFlags::FIN) {
        tcp_conn_request(stack, ctx, lp, seg, isn);
    }
    false
}

/// Processes a segment for a pending request. Mirrors `tcp_check_req()`.
fn tcp_check_req<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    lp: &mut TcpSock,
    seg: &TcpSeg,
    skb: SkBuff,
    t: FourTuple,
) -> bool {
    let cpu = ctx.cpu();
    let Some(req) = lp
        .listen
        .as_ref()
        .and_then(|l| l.syn_queue.get(&t))
        .cloned()
    else {
        return false;
    };
    let flg = seg.flags & (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::RST | TcpFlags::FIN);
    // A retransmitted SYN: send the SYN-ACK again.
    if seg.seq == req.rcv_isn && flg == TcpFlags::SYN {
        if let Some(r) = lp.listen.as_mut().and_then(|l| l.syn_queue.get_mut(&t)) {
            tcp_rtx_synack(ctx, r);
        }
        return false;
    }
    if seg.has(TcpFlags::ACK) && seg.ack_seq != req.snt_isn.wrapping_add(1) {
        return true;
    }
    let rcv_nxt = req.rcv_isn.wrapping_add(1);
    let in_window =
        !before(seg.end_seq, rcv_nxt) && !after(seg.seq, rcv_nxt.wrapping_add(req.rcv_wnd));
    if !in_window {
        if !seg.has(TcpFlags::RST) {
            send_req_ack(ctx, &req);
        }
        return false;
    }
    if seg.flags.intersects(TcpFlags::RST | TcpFlags::SYN) {
        ctx.mibs().this_cpu(cpu).inc(TcpMib::AttemptFails);
        if let Some(l) = lp.listen.as_mut() {
            l.syn_queue.remove(&t);
            l.req_index.remove(&req.id);
        }
        ctx.cancel_timer(TcpTimer::SynAck {
            listener: lp.id,
            req: req.id,
        });
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::EmbryonicRsts);
        return !seg.has(TcpFlags::RST);
    }
    if !seg.has(TcpFlags::ACK) {
        return false;
    }
    let created = tcp_v4_syn_recv_sock(stack, ctx, lp, seg, &req, skb).is_some();
    let abort = !created && ctx.sysctl().get_int(Sysctl::TCP_ABORT_ON_OVERFLOW) != 0;
    if created || abort {
        // The request is done: a child took its place, or (listen_overflow
        // with tcp_abort_on_overflow) it is reset.
        if let Some(l) = lp.listen.as_mut() {
            l.syn_queue.remove(&t);
            l.req_index.remove(&req.id);
        }
        ctx.cancel_timer(TcpTimer::SynAck {
            listener: lp.id,
            req: req.id,
        });
        if abort {
            ctx.mibs().this_cpu(cpu).inc(LinuxMib::EmbryonicRsts);
            return true;
        }
    } else if let Some(r) = lp.listen.as_mut().and_then(|l| l.syn_queue.get_mut(&t)) {
        r.acked = true;
    }
    false
}

/// ACKs a segment for a request (out of window). Mirrors
/// `tcp_v4_reqsk_send_ack()`.
fn send_req_ack<C: TcpContext>(ctx: &mut C, req: &RequestSock) {
    let now = ctx.now();
    let opts = TcpOptions {
        timestamp: req.tstamp_ok.then(|| {
            (
                (now.as_millis() as u32).wrapping_add(req.ts_off),
                req.ts_recent,
            )
        }),
        ..TcpOptions::default()
    };
    let repr = TcpRepr {
        src_port: req.t.lport,
        dst_port: req.t.rport,
        seq: req.snt_isn.wrapping_add(1),
        ack: req.rcv_isn.wrapping_add(1),
        flags: TcpFlags::ACK,
        window: (req.rcv_wnd >> req.rcv_wscale).min(65535) as u16,
        urgent: 0,
        options: opts,
        payload_len: 0,
    };
    if let Ok(mut skb) = build_segment(ctx, &repr, None, req.t.laddr, req.t.raddr) {
        // tcp_v4_reqsk_send_ack() replies with the request's hash.
        skb.set_hash(req.txhash, true);
        ctx.mibs().this_cpu(ctx.cpu()).inc(TcpMib::OutSegs);
        let _ = ctx.ip_queue_xmit(skb, req.t.laddr, req.t.raddr, 0);
    }
}

/// Checks a cookie ACK and, if it verifies, creates the connection.
/// Mirrors `cookie_v4_check()` / `cookie_tcp_check()`: cookies are only
/// looked at within two minutes of a SYN-queue overflow
/// (`tcp_synq_no_recent_overflow()`); `SyncookiesRecv`, `SyncookiesFailed`.
/// Returns `None` when no cookie matched (the caller resets).
fn cookie_v4_check<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    lp: &mut TcpSock,
    seg: &TcpSeg,
    skb: SkBuff,
) -> Option<bool> {
    let now = ctx.now();
    let cpu = ctx.cpu();
    if ctx.sysctl().get_int(Sysctl::TCP_SYNCOOKIES) == 0 {
        return None;
    }
    let last = lp.listen.as_ref()?.last_synq_overflow?;
    if now.saturating_duration_since(last) > Duration::from_secs(120) {
        return None;
    }
    let Some(mss) = cookie_v4_check_mss(
        &stack.secrets,
        seg.saddr,
        seg.daddr,
        seg.sport,
        seg.dport,
        seg.seq,
        seg.ack_seq,
        now,
    ) else {
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::SyncookiesFailed);
        return None;
    };
    ctx.mibs().this_cpu(cpu).inc(LinuxMib::SyncookiesRecv);
    let sysctl = ctx.sysctl().clone();
    let t = FourTuple {
        laddr: seg.daddr,
        lport: seg.dport,
        raddr: seg.saddr,
        rport: seg.sport,
    };
    let route = ctx.ip_route_output(seg.saddr, Some(seg.daddr)).ok()?;
    let ts_off = secure_tcp_ts_off(&stack.secrets, t.laddr, t.raddr);
    let (wscale, sack, ecn, tstamp_ok) = match seg.opts.timestamp {
        Some((_, ecr)) if sysctl.get_int(Sysctl::TCP_TIMESTAMPS) != 0 => {
            let (w, s, e) = cookie_timestamp_decode(ecr.wrapping_sub(ts_off));
            if w.is_some() && sysctl.get_int(Sysctl::TCP_WINDOW_SCALING) == 0 {
                return Some(false);
            }
            (w, s, e, true)
        }
        Some(_) => return Some(false),
        None => (None, false, false, false),
    };
    let mut req = RequestSock {
        id: 0,
        t,
        rcv_isn: seg.seq.wrapping_sub(1),
        snt_isn: seg.ack_seq.wrapping_sub(1),
        mss,
        advmss: tcp_advertise_mss(route.mtu, lp.rx_opt.user_mss),
        pmtu: route.mtu,
        snd_wscale: wscale.unwrap_or(0),
        rcv_wscale: 0,
        wscale_ok: wscale.is_some(),
        sack_ok: sack,
        tstamp_ok,
        // cookie_ecn_ok(): the cookie says the SYN asked, and tcp_ecn
        // still accepts.
        ecn_ok: ecn && sysctl.get_int(Sysctl::TCP_ECN) != 0,
        ts_recent: seg.opts.timestamp.map_or(0, |t| t.0),
        ts_off,
        // cookie_tcp_reqsk_init(): a fresh hash for the child.
        txhash: net_tx_rndhash(ctx),
        rcv_wnd: 0,
        window_clamp: 0,
        num_retrans: 0,
        num_timeout: 0,
        acked: false,
        synack_sent: now,
    };
    openreq_init_rwin(ctx, lp, &mut req);
    tcp_v4_syn_recv_sock(stack, ctx, lp, seg, &req, skb);
    Some(false)
}

/// Creates the child socket of a completed handshake, runs the final ACK
/// through it and queues it for `accept()`. Mirrors
/// `tcp_v4_syn_recv_sock()` + `tcp_create_openreq_child()` +
/// `inet_csk_complete_hashdance()` + `tcp_child_process()`; `PassiveOpens`.
/// With the accept queue full returns `None` (`ListenOverflows`,
/// `ListenDrops`).
fn tcp_v4_syn_recv_sock<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    lp: &mut TcpSock,
    seg: &TcpSeg,
    req: &RequestSock,
    skb: SkBuff,
) -> Option<()> {
    let cpu = ctx.cpu();
    let now = ctx.now();
    if lp.listen.as_ref()?.acceptq_is_full() {
        ctx.mibs().this_cpu(cpu).inc(LinuxMib::ListenOverflows);
        listendrop(ctx);
        return None;
    }
    let ca_name = lp.ca_ops.name();
    let ca = lp.listen.as_mut()?.child_ca_ops(&stack.congestion, ca_name);
    let mut tp = TcpSock::new(stack.alloc_id(), lp.sndbuf, lp.rcvbuf, ca);
    tp.opts = lp.opts;
    tp.opts_ext = lp.opts_ext.clone();
    // inet_csk_clone_lock() copies sk_userlocks: the child keeps the
    // listener's port until it is freed.
    tp.bind_port_locked = true;
    tp.saddr = req.t.laddr;
    tp.sport = req.t.lport;
    tp.daddr = req.t.raddr;
    tp.dport = req.t.rport;
    tp.state = TcpState::SynRecv;
    tp.rcv_nxt = req.rcv_isn.wrapping_add(1);
    tp.rcv_wup = tp.rcv_nxt;
    tp.copied_seq = tp.rcv_nxt;
    tp.snd_una = req.snt_isn.wrapping_add(1);
    tp.snd_nxt = tp.snd_una;
    tp.write_seq = tp.snd_una;
    tp.pushed_seq = tp.snd_una;
    tp.snd_sml = tp.snd_una;
    tp.snd_wl1 = req.rcv_isn;
    tp.rcv_wnd = req.rcv_wnd;
    tp.window_clamp = req.window_clamp;
    tp.rcv_ssthresh = req.rcv_wnd;
    tp.rx_opt.tstamp_ok = req.tstamp_ok;
    // tcp_ecn_openreq_child()
    tp.ecn_flags = if req.ecn_ok {
        crate::tcp_ecn::TCP_ECN_OK
    } else {
        0
    };
    tp.rx_opt.sack_ok = req.sack_ok;
    tp.rx_opt.wscale_ok = req.wscale_ok;
    tp.rx_opt.snd_wscale = if req.wscale_ok { req.snd_wscale } else { 0 };
    tp.rx_opt.rcv_wscale = if req.wscale_ok { req.rcv_wscale } else { 0 };
    tp.rx_opt.ts_recent = req.ts_recent;
    tp.rx_opt.ts_recent_stamp = crate::tcp_input::secs(now);
    tp.rx_opt.mss_clamp = req.mss;
    tp.rx_opt.user_mss = lp.rx_opt.user_mss;
    tp.tsoffset = req.ts_off;
    // tcp_v4_syn_recv_sock(): the child keeps the request's flow hash.
    tp.txhash = req.txhash;
    tp.advmss = req.advmss;
    tp.snd_wnd = u32::from(seg.window) << tp.rx_opt.snd_wscale;
    tp.max_window = tp.snd_wnd;
    tcp_sync_mss(&mut tp, req.pmtu, ctx.sysctl());
    crate::tcp_input::tcp_initialize_rcv_mss(&mut tp);
    tp.set_rto(TCP_TIMEOUT_INIT);
    if req.num_retrans == 0 {
        // tcp_synack_rtt_meas(): the handshake gives the first RTT sample.
        let rtt = now.saturating_duration_since(req.synack_sent).as_micros() as i64;
        let mut rs = crate::tcp_rate::RateSample::default();
        crate::tcp_input::tcp_ack_update_rtt(ctx, &mut tp, 0, Some(rtt), Some(rtt), &mut rs);
    }
    tp.rcv_tstamp = now;
    ctx.mibs().this_cpu(cpu).inc(TcpMib::PassiveOpens);
    {
        let mut h = stack.hashinfo.lock();
        let t = four_tuple(&tp);
        if h.ehash_insert(t, EhashEntry::Sock(tp.id)).is_err() {
            listendrop(ctx);
            return None;
        }
        // __inet_inherit_port(): the child shares the listener's port.
        h.bhash.entry(tp.sport).or_default().push(BindOwner {
            id: tp.id,
            addr: tp.saddr,
            reuse: lp.opts.reuseaddr,
            listening: false,
            by_connect: false,
            time_wait: false,
        });
        tp.bound = true;
    }
    // tcp_child_process(): the ACK moves the child to ESTABLISHED.
    let rst = tcp_rcv_state_process(stack, ctx, &mut tp, seg, skb);
    if rst || tp.state == TcpState::Close {
        // The ACK did not complete the handshake: the child goes away.
        crate::tcp_mem::sock_orphan(&stack.mem, &mut tp);
        if tp.state == TcpState::Close {
            crate::tcp::inet_csk_destroy_sock(stack, ctx, &mut tp);
        } else {
            crate::tcp::tcp_done(stack, ctx, &mut tp);
        }
        return Some(());
    }
    let child = TcpSocket::new(tp);
    stack.insert(child.clone());
    let l = lp.listen.as_mut()?;
    l.accept_queue.push_back(child);
    ctx.sk_wake(lp.id, SkEvent::DataReady);
    Some(())
}

/// Closes a listener's queues: pending requests are dropped and queued
/// children reset and freed. Mirrors `inet_csk_listen_stop()` with
/// `inet_child_forget()`.
pub(crate) fn inet_csk_listen_stop<C: TcpContext>(stack: &TcpStack, ctx: &mut C, lp: &mut TcpSock) {
    let Some(mut l) = lp.listen.take() else {
        return;
    };
    for (_, req) in l.syn_queue.drain() {
        ctx.cancel_timer(TcpTimer::SynAck {
            listener: lp.id,
            req: req.id,
        });
    }
    l.req_index.clear();
    while let Some(child) = l.accept_queue.pop_front() {
        let mut c = child.lock();
        stack.disconnect(ctx, &mut c);
        crate::tcp_mem::sock_orphan(&stack.mem, &mut c);
        crate::tcp::inet_csk_destroy_sock(stack, ctx, &mut c);
    }
}

/// The listening address of a listener, for `ss`.
pub(crate) fn listen_queue_lens(tp: &TcpSock) -> (u32, u32) {
    tp.listen
        .as_ref()
        .map_or((0, 0), |l| (l.accept_queue.len() as u32, l.max_ack_backlog))
}
