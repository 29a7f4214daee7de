//! What TCP needs from its surroundings: the [`TcpContext`] trait.
//!
//! No kernel twin: in Linux TCP reaches these through globals and
//! `struct net` (`sock_net(sk)->mib`, `->ipv4.sysctl_*`, `jiffies`,
//! `ip_queue_xmit()`, `sk->sk_data_ready()`); netstack passes them as one
//! per-CPU context, as every layer does (design phase 3, "the host context
//! type `C`"). The host implements it (or a blanket impl over
//! `ipv4::Ipv4Context` does once that trait lands); the tests implement it
//! with a fake that carries segments between two stacks in virtual time.

use core::net::Ipv4Addr;

use netcore::{Errno, Instant, NetMibs, PagePool, SkBuff, Sysctl, TimerContext};

use crate::tcp_sock::SockId;
use crate::tcp_timer::TcpTimer;

/// A wake-up the socket layer consumes (its wait queues and epoll).
///
/// Mirrors the socket callbacks `sk->sk_data_ready()`,
/// `sk->sk_write_space()`, `sk->sk_state_change()` and
/// `sk->sk_error_report()` of `include/net/sock.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkEvent {
    /// Data (or a FIN, or a connection on a listener) is ready to read.
    /// Mirrors `sk_data_ready()` (`sock_def_readable()`).
    DataReady,
    /// Send-buffer space was freed. Mirrors `sk_write_space()`
    /// (`sk_stream_write_space()`).
    WriteSpace,
    /// The TCP state changed (connected, closed). Mirrors
    /// `sk_state_change()` (`sock_def_wakeup()`).
    StateChange,
    /// `sk_err` was set. Mirrors `sk_error_report()`.
    ErrorReport,
}

/// The result of a route lookup for a connection.
///
/// Mirrors what TCP takes from `struct rtable` after `ip_route_connect()`:
/// the source address the route picks (`fl4->saddr`) and the path MTU
/// (`dst_mtu()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRoute {
    /// The source address for the destination.
    pub saddr: Ipv4Addr,
    /// The path MTU towards the destination.
    pub mtu: u32,
}

/// What TCP needs from the host, on the CPU that runs it.
///
/// The IP layer's part is behind [`TcpContext::ip_queue_xmit`] and
/// [`TcpContext::ip_route_output`]; timers go through
/// [`TimerContext<TcpTimer>`]. Called with the socket lock held: an
/// implementation must not call back into TCP synchronously for the same
/// socket (queue a looped-back segment instead, as `netif_rx()` does).
pub trait TcpContext: TimerContext<TcpTimer> {
    /// The current time (`tcp_clock_ns()`/`jiffies`).
    fn now(&self) -> Instant;

    /// The CPU this context runs on, for the per-CPU MIB shards.
    fn cpu(&self) -> usize {
        0
    }

    /// The host's MIB counters (`net->mib`).
    fn mibs(&self) -> &NetMibs;

    /// The host's sysctls (`net->ipv4.sysctl_tcp_*`, `net->core`).
    fn sysctl(&self) -> &Sysctl;

    /// The host's buffer pool, for the skbs TCP builds.
    fn page_pool(&self) -> &PagePool;

    /// 32 random bits from the host's seeded source
    /// (`get_random_u32()`); deterministic in simulation.
    fn prandom_u32(&mut self) -> u32;

    /// Finds the route for a connection to `daddr` (from `saddr` if it is
    /// set). Mirrors `ip_route_connect()`/`inet_csk_route_req()`.
    ///
    /// Errors: `ENETUNREACH`, `EHOSTUNREACH`.
    fn ip_route_output(
        &mut self,
        daddr: Ipv4Addr,
        saddr: Option<Ipv4Addr>,
    ) -> Result<TcpRoute, Errno>;

    /// Sends a fully built TCP segment from `saddr` to `daddr`: the skb's
    /// data starts at the TCP header (checksum filled) and it has headroom
    /// for the IP and link headers. Mirrors `ip_queue_xmit()` (and
    /// `ip_build_and_send_pkt()`, `ip_send_unicast_reply()` for segments of
    /// no full socket). Takes ownership of `skb`.
    ///
    /// `tos` is the IP header's TOS byte; TCP sets only its ECN field
    /// (ECT(0) on new data of an ECN connection, `tcp_ecn_send()`), the
    /// rest of it is 0 (no `IP_TOS` on TCP sockets).
    ///
    /// Errors: the IP layer's, e.g. `ENOBUFS` when a queue dropped it;
    /// TCP treats them as a loss (`tcp_transmit_skb()` does the same).
    fn ip_queue_xmit(
        &mut self,
        skb: SkBuff,
        saddr: Ipv4Addr,
        daddr: Ipv4Addr,
        tos: u8,
    ) -> Result<(), Errno>;

    /// "Fragmentation needed" said the path toward `daddr` carries at most
    /// `mtu` bytes: the IP layer keeps it for the routes toward `daddr`
    /// (a path MTU exception); returns the MTU of the route toward `daddr`
    /// after it (`dst_mtu()`, which `net.ipv4.route.min_pmtu` may keep
    /// above `mtu`). The default, for an IP layer with no route cache,
    /// returns `mtu`.
    ///
    /// Mirrors `inet_csk_update_pmtu()`.
    fn ip_rt_update_pmtu(&mut self, daddr: Ipv4Addr, mtu: u32) -> u32 {
        let _ = daddr;
        mtu
    }

    /// Whether a socket may bind to `addr` (not `0.0.0.0`): one of the
    /// host's addresses, broadcast, multicast, or anything with
    /// `net.ipv4.ip_nonlocal_bind`. Mirrors `inet_addr_valid_or_nonlocal()`.
    /// The default (a host without an address table) allows any.
    fn inet_addr_valid_or_nonlocal(&self, addr: Ipv4Addr) -> bool {
        let _ = addr;
        true
    }

    /// An ICMP redirect from `old_gw` (code `code`) named `new_gw` the
    /// better first hop toward `daddr`: the IP layer checks it and keeps
    /// it for the routes toward `daddr`. The default forgets it.
    ///
    /// Mirrors `do_redirect()` → `ip_do_redirect()`.
    fn ip_rt_redirect(&mut self, daddr: Ipv4Addr, old_gw: Ipv4Addr, new_gw: Ipv4Addr, code: u8) {
        let _ = (daddr, old_gw, new_gw, code);
    }

    /// Tells the socket layer that `sk` has `event`. Mirrors the
    /// `sk_data_ready`/`sk_write_space`/`sk_state_change`/`sk_error_report`
    /// callbacks.
    fn sk_wake(&mut self, sk: SockId, event: SkEvent);

    /// One sample of the per-ACK trace (the `tcp:tcp_probe` tracepoint).
    /// Does nothing unless the host records it.
    fn tcp_probe(&mut self, _sample: &crate::TcpProbe) {}

    /// Whether [`TcpContext::tcp_probe`] records anything: when `false`,
    /// `tcp_ack()` does not build the sample. Mirrors the
    /// `trace_tcp_probe_enabled()` static-key test of a tracepoint. The
    /// default (`true`) always builds it; a host that records the trace
    /// only on request returns whether it does.
    fn trace_tcp_probe_enabled(&self) -> bool {
        true
    }

    /// Leaves `id` armed or not, at the host's choice: TCP no longer needs
    /// it, and ignores it if it fires. Mirrors the clear of
    /// `inet_csk_clear_xmit_timer()` in Linux, which (without
    /// `INET_CSK_CLEAR_TIMERS`) only clears `icsk_pending` or
    /// `icsk_ack.pending` and leaves the `timer_list` queued, so that the
    /// next `sk_reset_timer()` is a cheap `mod_timer()`.
    ///
    /// A host that keeps the entry must not let it move an idle
    /// simulation's virtual time or run a handler with an effect, and a
    /// later [`TimerContext::arm_timer`] of the same id must move it. The
    /// default cancels it ([`TimerContext::cancel_timer`]).
    ///
    /// [`TimerContext::arm_timer`]: netcore::TimerContext::arm_timer
    /// [`TimerContext::cancel_timer`]: netcore::TimerContext::cancel_timer
    fn disarm_timer(&mut self, id: TcpTimer) {
        self.cancel_timer(id);
    }

    /// The host's TSQ list ([`crate::TcpStack::tsq_list`]): sockets whose
    /// skbs were freed below TCP while TCP Small Queues held them back.
    /// `None` (the default) turns TSQ off: TCP's skbs then have no owner.
    fn tcp_tsq(&self) -> Option<&std::sync::Arc<crate::TsqList>> {
        None
    }
}
