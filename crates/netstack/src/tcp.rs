//! TCP on a host: registered at boot, its context on each CPU, its timers,
//! and the demo's bulk transfer.
//!
//! Mirrors three pieces of Linux: `inet_init()` registering TCP
//! (`inet_add_protocol(&tcp_protocol, IPPROTO_TCP)` after UDP,
//! `tcp_init()`'s tables, `inet_register_protosw()` for `SOCK_STREAM`);
//! the `struct net` fields TCP reads (`net->ipv4.tcp_death_row`, the
//! hash tables, the MIBs and sysctls); and the TCP timers on each CPU's
//! timer wheel (`tcp_write_timer()`, `tcp_delack_timer()`,
//! `tcp_keepalive_timer()`, `tw_timer_handler()`,
//! `reqsk_timer_handler()`), here one [`HostTimer::Tcp`] each.
//!
//! ```text
//!  ip_local_deliver ─► TcpV4Protocol (tcp_v4_rcv) ─► tcp::TcpStack ─► sk_wake ─► TcpWakeups (queued)
//!  TIMER softirq ─► HostTimer::Tcp ─► handle_timer ─┘                          └► flush: socket wait queues, epoll
//!  tcp_transmit_skb ─► CpuCtx::ip_queue_xmit ─► ipv4::ip_build_and_send_pkt (DF) ─► LOCAL_OUT ─► … ─► NIC
//! ```
//!
//! # Deviations from Linux
//!
//! - TCP hands the host only a segment's two addresses, not its socket,
//!   so the route cache (`sk_dst_cache`, used by `ip_queue_xmit()`) is
//!   kept per CPU for the last connection it transmitted for: a CPU that
//!   alternates between peers looks the route up each time. Segments
//!   carry IP id 0 (with DF), where Linux counts `inet_id` per
//!   connection.
//! - Wake-ups are queued while TCP holds the socket lock and delivered
//!   right after the call returns (see `socket::TcpWakeups`).

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use ipv4::{IcmpErrInfo, IcmpError, Ipv4Context, NetProtocol};
use netcore::{Errno, Instant, LinuxMib, NetMibs, PagePool, SkBuff, Sysctl, TcpMib, TimerContext};
use socket::{EPOLL_CTL_ADD, EpollEvent, EpollEvents, TcpProtosw, TcpWakeups};
use tcp::{SkEvent, SockId, TcpContext, TcpProtocol, TcpRoute, TcpStack, TcpTimer};

use crate::cpu::{CpuCtx, HostTimer};
use crate::error::NetstackError;
use crate::host::HostShared;
use crate::network::Network;
use crate::sockets::{AsHost, HostSockets, v4};

/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;

/// A host's TCP: the stack (sockets, hash tables, secrets) and the
/// queue of its sockets' wake-ups.
///
/// Mirrors the TCP part of `struct net` plus `tcp_hashinfo`, set up by
/// `tcp_init()`.
#[derive(Debug)]
pub struct HostTcp {
    /// The host's TCP.
    pub stack: Arc<TcpStack>,
    /// The wake-ups TCP raised, delivered to each socket's own hook
    /// (`sk->sk_wq`) once TCP returns.
    pub wakeups: Arc<TcpWakeups>,
}

impl HostTcp {
    /// A host's TCP seeded with `seed` (ISNs, ephemeral ports).
    pub(crate) fn new(seed: u64, sysctl: &netcore::Sysctl) -> HostTcp {
        let stack = Arc::new(TcpStack::new(seed ^ 0x7463_7073_7461_636b));
        stack.set_sysctl(sysctl.clone());
        HostTcp {
            wakeups: Arc::new(TcpWakeups::new(Arc::clone(&stack))),
            stack,
        }
    }

    /// The `SOCK_STREAM` entry of the protocol switch for this TCP.
    pub(crate) fn protosw(&self) -> TcpProtosw {
        TcpProtosw::new(Arc::clone(&self.stack), Arc::clone(&self.wakeups))
    }
}

/// TCP's entry in the host's IPv4 protocol table: `tcp_v4_rcv` and
/// `tcp_v4_err`, then the wake-ups they raised.
///
/// Mirrors `tcp_protocol` in `net/ipv4/af_inet.c`.
#[derive(Debug)]
struct TcpV4Protocol {
    inner: TcpProtocol,
    wakeups: Arc<TcpWakeups>,
}

impl NetProtocol<CpuCtx> for TcpV4Protocol {
    fn handler(&self, skb: SkBuff, ctx: &mut CpuCtx) -> Result<(), (SkBuff, IcmpError)> {
        // The error (which carries the skb) is held across the flush only
        // when there is one: the common Ok is not a move of the skb.
        if let Err(e) = self.inner.handler(skb, ctx) {
            self.wakeups.flush();
            return Err(e);
        }
        self.wakeups.flush();
        Ok(())
    }

    fn err_handler(&self, info: &IcmpErrInfo<'_>, ctx: &mut CpuCtx) {
        self.inner.err_handler(info, ctx);
        self.wakeups.flush();
    }

    fn accepts_nonlinear(&self) -> bool {
        NetProtocol::<CpuCtx>::accepts_nonlinear(&self.inner)
    }

    #[allow(clippy::unnecessary_literal_bound)] // the trait's signature
    fn name(&self) -> &str {
        "tcp"
    }
}

/// Registers TCP with the host's IPv4 layer (protocol 6). Mirrors
/// `inet_add_protocol(&tcp_protocol, IPPROTO_TCP)` in `inet_init()`.
pub(crate) fn tcp_add_protocol(ctx: &mut CpuCtx) -> Result<(), NetstackError> {
    let tcp = &ctx.host.transports.tcp;
    // tcp_wfree() → tasklet_schedule(): the CPU that sent runs the TSQ
    // work from its TASKLET softirq.
    let host = Arc::downgrade(&ctx.host);
    tcp.stack.tsq_set_kick(Box::new(move |cpu| {
        if let Some(h) = host.upgrade() {
            let _ = h.softirqs.raise_softirq(cpu, irq::SoftirqNr::Tasklet);
        }
    }));
    let prot: Arc<dyn NetProtocol<CpuCtx>> = Arc::new(TcpV4Protocol {
        inner: TcpProtocol::new(Arc::clone(&tcp.stack)),
        wakeups: Arc::clone(&tcp.wakeups),
    });
    ctx.host
        .ipv4
        .inet_add_protocol(prot, IPPROTO_TCP)
        .map_err(|e| NetstackError::Config(format!("inet_add_protocol(tcp): {e}")))
}

/// Fires an expired TCP timer on this CPU, then delivers the wake-ups it
/// raised. Mirrors the TCP `timer_list` callbacks.
pub fn tcp_handle_timer(ctx: &mut CpuCtx, timer: TcpTimer) {
    let host = Arc::clone(&ctx.host);
    host.transports.tcp.stack.handle_timer(ctx, timer);
    host.transports.tcp.wakeups.flush();
}

impl TimerContext<TcpTimer> for CpuCtx {
    fn arm_timer(&mut self, id: TcpTimer, at: Instant) -> Option<Instant> {
        self.timers.arm(HostTimer::Tcp(id), at)
    }
    fn cancel_timer(&mut self, id: TcpTimer) -> Option<Instant> {
        self.timers.cancel(HostTimer::Tcp(id))
    }
    fn timer_pending(&self, id: TcpTimer) -> Option<Instant> {
        self.timers.pending(HostTimer::Tcp(id))
    }
    fn timers_complete(&self) -> bool {
        CpuCtx::timers_complete(self)
    }
}

impl TcpContext for CpuCtx {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn cpu(&self) -> usize {
        self.cpu
    }

    fn mibs(&self) -> &NetMibs {
        &self.host.mibs
    }

    fn sysctl(&self) -> &Sysctl {
        &self.host.sysctl
    }

    fn page_pool(&self) -> &PagePool {
        &self.host.pool
    }

    fn prandom_u32(&mut self) -> u32 {
        udp::UdpNetContext::prandom_u32(self)
    }

    /// `ip_route_connect()`: the FIB's output route, its source address
    /// and MTU.
    ///
    /// The route the CPU keeps for the last connection (`sk_dst_cache`,
    /// see `ip_queue_xmit` below) answers when it is toward `daddr`, from
    /// `saddr` or, without one, from the source that route's own lookup
    /// chose, and still of the current routing generation: it came from
    /// the same lookup key (no device, TOS or mark; the FIB result does
    /// not depend on the source), so the result is the same. A lookup
    /// without a source leaves its route there for the connection's
    /// first segment.
    fn ip_route_output(
        &mut self,
        daddr: Ipv4Addr,
        saddr: Option<Ipv4Addr>,
    ) -> Result<TcpRoute, Errno> {
        let genid = self.host.ipv4.rt_genid_at(|| self.clock.now());
        if let Some(sk) = self.tcp_dst.as_deref()
            && sk.daddr == daddr
            && saddr.map_or(sk.saddr_from_route, |s| s == sk.saddr)
            && let Some((rt, cached)) = sk.dst_cache
            && rt.prefsrc == sk.saddr
            && cached == genid
        {
            return Ok(TcpRoute {
                saddr: sk.saddr,
                mtu: rt.mtu,
            });
        }
        let mut fl4 = ipv4::Flowi4 {
            daddr,
            saddr: saddr.unwrap_or(Ipv4Addr::UNSPECIFIED),
            oif: 0,
            proto: IPPROTO_TCP,
            tos: 0,
            mark: 0,
        };
        let rt = ipv4::ip_route_output_key(self, &mut fl4)?;
        if saddr.is_none() {
            let mut sk = Box::new(tcp_inet_sock(&self.host.sysctl, fl4.saddr, daddr));
            sk.dst_cache = Some((rt, genid));
            sk.saddr_from_route = true;
            self.tcp_dst = Some(sk);
        }
        Ok(TcpRoute {
            saddr: fl4.saddr,
            mtu: rt.mtu,
        })
    }

    /// `ip_queue_xmit()` with DF set (`IP_PMTUDISC_WANT` on a segment that
    /// fits, as `ip_dont_fragment()` decides for TCP).
    fn ip_queue_xmit(
        &mut self,
        skb: SkBuff,
        saddr: Ipv4Addr,
        daddr: Ipv4Addr,
        tos: u8,
    ) -> Result<(), Errno> {
        if let Some(log) = &self.tcp_trace {
            crate::plot::trace_xmit(log, self.clock.now(), &skb, saddr, daddr);
        }
        if saddr.is_unspecified() {
            let mut sk = tcp_inet_sock(&self.host.sysctl, saddr, Ipv4Addr::UNSPECIFIED);
            sk.tos = tos;
            return ipv4::ip_build_and_send_pkt(self, skb, &mut sk, saddr, daddr).map(|_| ());
        }
        // The CPU keeps the last connection's route (`sk_dst_cache`),
        // checked against the routing generation by ip_queue_xmit().
        let mut sk = match self.tcp_dst.take() {
            Some(sk) if (sk.saddr, sk.daddr) == (saddr, daddr) => sk,
            _ => Box::new(tcp_inet_sock(&self.host.sysctl, saddr, daddr)),
        };
        if sk.dst_cache.is_some_and(|(rt, _)| rt.prefsrc != saddr) {
            // A route whose preferred source is not the connection's:
            // looked up again from the connection's own address.
            sk.dst_cache = None;
        }
        // DF segments carry IP id 0 (see the deviations above).
        sk.inet_id = 0;
        // The connection's ECN field (`inet->tos` as tcp_ecn_send() left it).
        sk.tos = tos;
        let r = ipv4::ip_queue_xmit(self, &mut sk, skb);
        self.tcp_dst = Some(sk);
        r
    }

    /// `inet_csk_update_pmtu()`: the exception goes to the host's IPv4
    /// state; the MTU is the route's after it.
    fn ip_rt_update_pmtu(&mut self, daddr: Ipv4Addr, mtu: u32) -> u32 {
        let now = self.clock.now();
        self.host.ipv4.ip_rt_update_pmtu(daddr, mtu, now);
        let mut fl4 = ipv4::Flowi4::new(daddr, 6);
        ipv4::ip_route_output_key(self, &mut fl4).map_or(mtu, |rt| rt.mtu)
    }

    /// `inet_addr_valid_or_nonlocal()` on the host's addresses.
    fn inet_addr_valid_or_nonlocal(&self, addr: Ipv4Addr) -> bool {
        self.host.ipv4.inet_addr_valid_or_nonlocal(addr)
    }

    /// `ip_do_redirect()` on the host's IPv4 state.
    fn ip_rt_redirect(&mut self, daddr: Ipv4Addr, old_gw: Ipv4Addr, new_gw: Ipv4Addr, code: u8) {
        let now = self.clock.now();
        self.host
            .ipv4
            .ip_rt_do_redirect(daddr, old_gw, new_gw, code, now);
    }

    /// `inet_csk_clear_xmit_timer()` leaves the timer queued: the CPU's
    /// wheel keeps the entry, not pending and skipped by the next-expiry
    /// search, so the next `sk_reset_timer()` is `mod_timer()` on it
    /// (`CpuTimers::disarm`).
    fn disarm_timer(&mut self, id: TcpTimer) {
        self.timers.disarm(HostTimer::Tcp(id));
    }

    fn sk_wake(&mut self, sk: SockId, event: SkEvent) {
        self.host.transports.tcp.wakeups.sk_wake(sk, event);
    }

    fn tcp_probe(&mut self, sample: &tcp::TcpProbe) {
        if let Some(log) = &self.tcp_trace {
            log.lock().probes.push(*sample);
        }
    }

    /// Only a host that records the trace (`netstack plot`, a scenario's
    /// `tcp_probe` report) has the sample built.
    fn trace_tcp_probe_enabled(&self) -> bool {
        self.tcp_trace.is_some()
    }

    /// TCP Small Queues on: the host's list, run from the `TASKLET`
    /// softirq ([`tcp_tsq_workfn`]).
    fn tcp_tsq(&self) -> Option<&Arc<tcp::TsqList>> {
        Some(self.host.transports.tcp.stack.tsq_list())
    }
}

/// The `inet_sock` fields IP reads for a TCP segment from `saddr` to
/// `daddr`: DF always (`IP_PMTUDISC_DO` on a segment that fits, as
/// `ip_dont_fragment()` decides for TCP), TTL and TOS by default.
fn tcp_inet_sock(sysctl: &Sysctl, saddr: Ipv4Addr, daddr: Ipv4Addr) -> ipv4::InetSock {
    let mut sk = ipv4::InetSock::new(IPPROTO_TCP, sysctl);
    sk.saddr = saddr;
    sk.daddr = daddr;
    sk.pmtudisc = ipv4::IpPmtudisc::Do;
    sk
}

/// Runs TCP's TSQ work on this CPU (sockets whose skbs the device freed
/// while TCP Small Queues held them back), then delivers the wake-ups.
/// Mirrors the `TASKLET_SOFTIRQ` (6.18: `system_bh_wq`) run of
/// `tcp_tsq_workfn()`.
pub fn tcp_tsq_workfn(ctx: &mut CpuCtx) {
    let host = Arc::clone(&ctx.host);
    if host.transports.tcp.stack.tsq_pending() {
        host.transports.tcp.stack.tcp_tsq_workfn(ctx);
        host.transports.tcp.wakeups.flush();
    }
}

/// The Ipv4Context bound is what `ip_route_output_key` needs; this keeps
/// the requirement visible where TCP's output uses it.
const _: fn() = || {
    fn needs<C: Ipv4Context + TcpContext>() {}
    needs::<CpuCtx>();
};

/// What a bulk transfer did.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpBulkReport {
    /// Bytes the receiver read (and checked).
    pub bytes: u64,
    /// Whether every byte arrived in order and intact.
    pub intact: bool,
    /// Whether both sides saw the orderly close (read returned 0).
    pub closed: bool,
    /// Virtual time from `connect` to the last byte read.
    pub virtual_time: netcore::Duration,
    /// Real time the transfer took to simulate.
    pub real_time: std::time::Duration,
    /// Segments the sender retransmitted (`Tcp RetransSegs`).
    pub retrans: u64,
}

impl TcpBulkReport {
    /// Application throughput in Gbit/s over virtual time.
    pub fn gbps_virtual(&self) -> f64 {
        gbps(self.bytes, self.virtual_time.as_nanos() as f64)
    }

    /// Application throughput in Gbit/s over real time (simulation speed).
    pub fn gbps_real(&self) -> f64 {
        gbps(self.bytes, self.real_time.as_nanos() as f64)
    }
}

fn gbps(bytes: u64, ns: f64) -> f64 {
    if ns <= 0.0 {
        0.0
    } else {
        bytes as f64 * 8.0 / ns
    }
}

/// The period of the bulk stream's pattern: a prime, so that no shift by
/// a whole number of segments maps the pattern onto itself.
const PATTERN_PERIOD: usize = 65_521;

/// Two periods of the pattern, so that any run of up to one period starts
/// at a contiguous slice.
fn pattern_table() -> &'static [u8] {
    static TABLE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        (0..2 * PATTERN_PERIOD as u64)
            .map(|i| {
                // Both halves equal: the byte depends on i mod the period.
                let j = i % PATTERN_PERIOD as u64;
                let x = j.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                (x >> 56) as u8 ^ (j as u8)
            })
            .collect()
    })
}

/// The byte at offset `i` of a bulk transfer's stream (a pattern the
/// receiver checks without keeping a copy).
pub fn bulk_pattern(i: u64) -> u8 {
    pattern_table()[(i % PATTERN_PERIOD as u64) as usize]
}

/// Whether `buf` holds the stream's bytes from offset `at`.
fn bulk_check(at: u64, buf: &[u8]) -> bool {
    let t = pattern_table();
    let mut off = (at % PATTERN_PERIOD as u64) as usize;
    let mut ok = true;
    for chunk in buf.chunks(PATTERN_PERIOD) {
        ok &= chunk == &t[off..off + chunk.len()];
        off = (off + chunk.len()) % PATTERN_PERIOD;
    }
    ok
}

fn rt_err(what: &str, e: &impl std::fmt::Display) -> NetstackError {
    NetstackError::Runtime(format!("tcp bulk: {what}: {e}"))
}

/// Sends `bytes` from `client` to a listener on `server` at
/// `server_addr`, reading and checking every byte on the server, then
/// closes both ends in order (the client's FIN after its last byte, the
/// server's after it read end of stream).
///
/// Both applications are event-driven on epoll (the simulation cannot
/// block): each time they may progress, the sender writes until
/// `EAGAIN` and the receiver reads until `EAGAIN`; between, the network
/// runs in steps of `step` of virtual time. Gives up after `limit` of
/// virtual time.
///
/// Errors name the host or the socket call that failed.
pub fn tcp_bulk(
    net: &mut Network,
    client: &str,
    server: &str,
    server_addr: SocketAddrV4,
    bytes: u64,
    step: netcore::Duration,
    limit: netcore::Duration,
) -> Result<TcpBulkReport, NetstackError> {
    type Stream = socket::TcpStream<HostSockets>;
    let sh = Arc::clone(net.host(server)?.shared());
    let ch = Arc::clone(net.host(client)?.shared());
    let retrans0 = ch.mibs.get(TcpMib::RetransSegs);
    let listener = socket::TcpListener::bind(
        sh.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, server_addr.port()),
    )
    .map_err(|e| rt_err("listen", &e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| rt_err("listen", &e))?;
    let real0 = std::time::Instant::now();
    let t0 = net.now();
    let mut tx: Stream = net
        .app(client, || {
            socket::TcpStream::connect_nonblocking(ch.socket_layer(), server_addr)
        })?
        .map_err(|e| rt_err("connect", &e))?;
    let sep = sh
        .socket_layer()
        .epoll_create1(0)
        .map_err(|e| rt_err("epoll", &e))?;
    let cep = ch
        .socket_layer()
        .epoll_create1(0)
        .map_err(|e| rt_err("epoll", &e))?;
    let watch = |layer: &Arc<crate::HostSocketLayer>, ep, fd, ev| {
        layer.epoll_ctl(
            ep,
            EPOLL_CTL_ADD,
            fd,
            Some(EpollEvent {
                events: ev,
                data: 0,
            }),
        )
    };
    watch(
        sh.socket_layer(),
        sep,
        listener.as_raw_fd(),
        EpollEvents::EPOLLIN,
    )
    .map_err(|e| rt_err("epoll_ctl", &e))?;
    watch(
        ch.socket_layer(),
        cep,
        tx.as_raw_fd(),
        EpollEvents::EPOLLOUT | EpollEvents::EPOLLIN,
    )
    .map_err(|e| rt_err("epoll_ctl", &e))?;
    let mut rx: Option<Stream> = None;
    let mut chunk = vec![0u8; 256 * 1024];
    let mut sent = 0u64;
    let mut got = 0u64;
    let mut intact = true;
    let mut tx_closed = false;
    let mut rx_eof = false;
    let mut tx_eof = false;
    let mut t_last = t0;
    let deadline = t0.saturating_add(limit);
    while net.now() < deadline && !(rx_eof && tx_eof) {
        let before = (got, sent, rx.is_some(), tx_closed, rx_eof, tx_eof);
        let s_ready = !sh
            .socket_layer()
            .epoll_wait(sep, 4, 0)
            .map_err(|e| rt_err("epoll_wait", &e))?
            .is_empty();
        let c_ready = !ch
            .socket_layer()
            .epoll_wait(cep, 4, 0)
            .map_err(|e| rt_err("epoll_wait", &e))?
            .is_empty();
        if rx.is_none()
            && s_ready
            && let Ok((s, _)) = net.app(server, || listener.accept())?
        {
            s.set_nonblocking(true).map_err(|e| rt_err("accept", &e))?;
            watch(sh.socket_layer(), sep, s.as_raw_fd(), EpollEvents::EPOLLIN)
                .map_err(|e| rt_err("epoll_ctl", &e))?;
            rx = Some(s);
        }
        if let Some(s) = rx.as_mut()
            && s_ready
        {
            let r: Result<(), NetstackError> = net.app(server, || {
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) => {
                            if !rx_eof {
                                rx_eof = true;
                                let _ = s.shutdown(std::net::Shutdown::Write);
                            }
                            return Ok(());
                        }
                        Ok(n) => {
                            intact &= bulk_check(got, &chunk[..n]);
                            got += n as u64;
                        }
                        Err(e) if e.raw_os_error() == Some(Errno::Again.as_i32()) => return Ok(()),
                        Err(e) => return Err(rt_err("read", &e)),
                    }
                }
            })?;
            r?;
            if got > 0 {
                t_last = net.now();
            }
        }
        if c_ready {
            let r: Result<(), NetstackError> = net.app(client, || {
                if let Some(e) = tx.take_error().map_err(|e| rt_err("connect", &e))? {
                    return Err(rt_err("connect", &e));
                }
                while sent < bytes {
                    // Straight from the pattern table (two periods): no
                    // refill of a buffer per attempt, as a writer that
                    // keeps its data in place.
                    let n = usize::try_from((bytes - sent).min(PATTERN_PERIOD as u64)).unwrap_or(0);
                    let off = (sent % PATTERN_PERIOD as u64) as usize;
                    match tx.write(&pattern_table()[off..off + n]) {
                        Ok(w) => sent += w as u64,
                        Err(e) if e.raw_os_error() == Some(Errno::Again.as_i32()) => break,
                        Err(e) => return Err(rt_err("write", &e)),
                    }
                }
                if sent == bytes && !tx_closed {
                    tx.shutdown(std::net::Shutdown::Write)
                        .map_err(|e| rt_err("shutdown", &e))?;
                    tx_closed = true;
                }
                if tx_closed && !tx_eof {
                    let mut b = [0u8; 64];
                    match tx.read(&mut b) {
                        Ok(0) => tx_eof = true,
                        Ok(_) => return Err(rt_err("read", &"data from the receiver")),
                        Err(e) if e.raw_os_error() == Some(Errno::Again.as_i32()) => {}
                        Err(e) => return Err(rt_err("read", &e)),
                    }
                }
                Ok(())
            })?;
            r?;
        }
        let mut idle = before == (got, sent, rx.is_some(), tx_closed, rx_eof, tx_eof);
        if idle {
            // Nothing moved: finish the work due now, and if neither
            // application can act, nothing changes before the network's
            // next event (a frame, a timer): go straight there.
            net.settle()?;
            idle = sh
                .socket_layer()
                .epoll_wait(sep, 4, 0)
                .map_err(|e| rt_err("epoll_wait", &e))?
                .is_empty()
                && ch
                    .socket_layer()
                    .epoll_wait(cep, 4, 0)
                    .map_err(|e| rt_err("epoll_wait", &e))?
                    .is_empty();
        }
        if idle {
            let now = net.now();
            let until = net
                .next_event()
                .unwrap_or(deadline)
                .max(now.saturating_add(step))
                .min(deadline);
            net.run_until(until)?;
        } else {
            net.run_for(step)?;
        }
    }
    let real_time = real0.elapsed();
    let virtual_time = t_last.saturating_duration_since(t0);
    // The last close: both sockets go (h1 into TIME-WAIT).
    net.app(client, || drop(tx))?;
    net.app(server, || {
        drop(rx);
        drop(listener);
    })?;
    Ok(TcpBulkReport {
        bytes: got,
        intact: intact && got == bytes,
        closed: rx_eof && tx_eof,
        virtual_time,
        real_time,
        retrans: ch.mibs.get(TcpMib::RetransSegs) - retrans0,
    })
}

/// The demo's TCP part: a bulk transfer from h1 to h2, with throughput
/// in virtual and real time, retransmissions and the key Tcp counters.
pub(crate) fn demo_tcp_bulk(net: &mut Network) -> String {
    const BYTES: u64 = 1024 * 1024;
    let mut text = format!(
        "\nh1$ tcp bulk 198.18.0.2:5001 ({} MB from h1 to h2, checked on arrival)\n",
        BYTES >> 20
    );
    match tcp_bulk(
        net,
        "h1",
        "h2",
        SocketAddrV4::new(crate::demo::DEMO_H2, 5001),
        BYTES,
        netcore::Duration::from_micros(20),
        netcore::Duration::from_secs(10),
    ) {
        Ok(r) => {
            let _ = writeln!(
                text,
                "{} bytes {}, {}; {:.3} ms of virtual time: {:.2} Gbit/s virtual, \
                 {:.2} Gbit/s real ({:.2} s); {} segments retransmitted",
                r.bytes,
                if r.intact { "intact" } else { "CORRUPTED" },
                if r.closed {
                    "closed in order"
                } else {
                    "NOT closed"
                },
                r.virtual_time.as_nanos() as f64 / 1e6,
                r.gbps_virtual(),
                r.gbps_real(),
                r.real_time.as_secs_f64(),
                r.retrans
            );
        }
        Err(e) => {
            let _ = writeln!(text, "tcp bulk failed: {e}");
        }
    }
    for h in net.hosts() {
        let m = &h.shared().mibs;
        let _ = writeln!(
            text,
            "  {}: Tcp ActiveOpens {} PassiveOpens {} InSegs {} OutSegs {} RetransSegs {} \
             OutRsts {}; TcpExt DelayedACKs {} TCPHPHits {}",
            h.name(),
            m.get(TcpMib::ActiveOpens),
            m.get(TcpMib::PassiveOpens),
            m.get(TcpMib::InSegs),
            m.get(TcpMib::OutSegs),
            m.get(TcpMib::RetransSegs),
            m.get(TcpMib::OutRsts),
            m.get(LinuxMib::DelayedAcks),
            m.get(LinuxMib::TcpHpHits),
        );
    }
    text
}

/// A TCP listener on a host, shaped like `std::net::TcpListener`.
///
/// Mirrors `socket(AF_INET, SOCK_STREAM, 0)` + `bind()` + `listen()`
/// through the host's socket layer. The methods of
/// [`socket::TcpListener`] (`accept`, `local_addr`, `set_nonblocking`,
/// ...) are reached through `Deref`; `accept` here wraps the stream.
/// Errors are `std::io::Error`s with Linux's errno (`raw_os_error()`).
pub struct TcpListener {
    inner: socket::TcpListener<HostSockets>,
    host: Arc<HostShared>,
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("host", &self.host.name)
            .field("inner", &self.inner)
            .finish()
    }
}

impl TcpListener {
    /// Listens on `host` at `addr` (`"0.0.0.0:80"`).
    pub fn bind(
        host: &impl AsHost,
        addr: impl std::net::ToSocketAddrs,
    ) -> std::io::Result<TcpListener> {
        let host = Arc::clone(host.as_host());
        let inner = socket::TcpListener::bind(host.socket_layer(), v4(addr)?)?;
        Ok(TcpListener { inner, host })
    }

    /// Takes one connection: the stream and the peer's address
    /// (`EAGAIN`/`WouldBlock` when none is queued and the listener is
    /// non-blocking or the host cannot sleep).
    pub fn accept(&self) -> std::io::Result<(TcpStream, SocketAddrV4)> {
        let (inner, peer) = self.inner.accept()?;
        Ok((
            TcpStream {
                inner,
                host: Arc::clone(&self.host),
            },
            peer,
        ))
    }

    /// The host the listener lives on.
    pub fn host(&self) -> &Arc<HostShared> {
        &self.host
    }
}

impl std::ops::Deref for TcpListener {
    type Target = socket::TcpListener<HostSockets>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

/// A TCP connection on a host, shaped like `std::net::TcpStream`
/// (`Read + Write`).
///
/// Mirrors `socket(AF_INET, SOCK_STREAM, 0)` + `connect()` and the calls on
/// it. The methods of [`socket::TcpStream`] (`shutdown`, `set_nodelay`,
/// `take_error`, timeouts, ...) are reached through `Deref`.
pub struct TcpStream {
    inner: socket::TcpStream<HostSockets>,
    host: Arc<HostShared>,
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("host", &self.host.name)
            .field("inner", &self.inner)
            .finish()
    }
}

impl TcpStream {
    /// Connects from `host` to `addr`, waiting for the handshake. On a
    /// simulated host, which cannot sleep, use
    /// [`TcpStream::connect_nonblocking`] and run the network.
    pub fn connect(
        host: &impl AsHost,
        addr: impl std::net::ToSocketAddrs,
    ) -> std::io::Result<TcpStream> {
        let host = Arc::clone(host.as_host());
        let inner = socket::TcpStream::connect(host.socket_layer(), v4(addr)?)?;
        Ok(TcpStream { inner, host })
    }

    /// Sends the SYN and returns at once (`O_NONBLOCK` + `connect()` giving
    /// `EINPROGRESS`): the stream is writable when the handshake is done,
    /// and [`socket::TcpStream::take_error`] reports a refusal.
    pub fn connect_nonblocking(
        host: &impl AsHost,
        addr: impl std::net::ToSocketAddrs,
    ) -> std::io::Result<TcpStream> {
        let host = Arc::clone(host.as_host());
        let inner = socket::TcpStream::connect_nonblocking(host.socket_layer(), v4(addr)?)?;
        Ok(TcpStream { inner, host })
    }

    /// The host the stream lives on.
    pub fn host(&self) -> &Arc<HostShared> {
        &self.host
    }
}

impl std::ops::Deref for TcpStream {
    type Target = socket::TcpStream<HostSockets>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl std::io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::io::Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
