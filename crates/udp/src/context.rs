//! What UDP needs from the host: the socket table, counters, knobs, buffers,
//! randomness, route lookup and IP output.
//!
//! No kernel twin: in Linux these are globals (`init_net`, `udp_table`,
//! `sysctl_*`) and direct calls into `net/ipv4/route.c` and
//! `net/ipv4/ip_output.c`. Here they are one narrow context trait, so UDP
//! can be tested against a fake IP layer (see `testutil`) and the host
//! implements it by forwarding to `ipv4`.

use std::net::Ipv4Addr;

use netcore::{Errno, Instant, NetMibs, PagePool, SkBuff, Sysctl};

use crate::udp::UdpTable;

/// The flow of one datagram, as the route lookup and IP output see it.
///
/// Mirrors `struct flowi4` in `include/net/flow.h` (the fields UDP fills in
/// `udp_sendmsg()` with `flowi4_init_output()`).
#[doc(alias = "flowi4")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flowi4 {
    /// Output interface, 0 for any (`flowi4_oif`, from `SO_BINDTODEVICE`).
    pub oif: u32,
    /// Firewall mark (`flowi4_mark`).
    pub mark: u32,
    /// Type of service (`flowi4_tos`).
    pub tos: u8,
    /// IP protocol, 17 for UDP (`flowi4_proto`).
    pub proto: u8,
    /// Destination address (`daddr`).
    pub daddr: Ipv4Addr,
    /// Source address, `0.0.0.0` to let routing choose (`saddr`).
    pub saddr: Ipv4Addr,
    /// Destination port (`fl4_dport`).
    pub dport: u16,
    /// Source port (`fl4_sport`).
    pub sport: u16,
}

/// What a route lookup tells UDP.
///
/// Mirrors the parts of `struct rtable` UDP reads after
/// `ip_route_output_flow()`: the chosen source address (`fl4->saddr`), the
/// path MTU (`dst_mtu()`) and `rt_flags & RTCF_BROADCAST`.
#[doc(alias = "rtable")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// The source address routing chose (or the one the flow asked for).
    pub saddr: Ipv4Addr,
    /// The MTU of the path (`dst_mtu()`), including the IP header.
    pub mtu: u32,
    /// Whether the destination is a broadcast address (`RTCF_BROADCAST`).
    pub broadcast: bool,
    /// Whether the output device sums UDP itself (`NETIF_F_HW_CSUM` or
    /// `NETIF_F_IP_CSUM`): UDP then leaves `CHECKSUM_PARTIAL` for it.
    pub csum_offload: bool,
    /// The route itself (`skb_dst()`), handed back to
    /// [`UdpContext::ip_send_skb`] so IP output does not route the datagram
    /// a second time; `None` from an IP layer without route objects (the
    /// fake of `testutil`), which then routes in `ip_send_skb`.
    pub dst: Option<ipv4::Rtable>,
}

/// The host services UDP calls.
///
/// One value per CPU (the host's per-CPU context), reached as `&mut`. All
/// host-wide state behind it (the [`UdpTable`], [`NetMibs`], [`Sysctl`]) is
/// shared and locked inside, so the receive softirq of one CPU and a
/// process sending from another can both hold a context at once.
pub trait UdpContext {
    /// The host's UDP socket table (`net->ipv4.udp_table`).
    fn udp_table(&self) -> &UdpTable;

    /// The host's MIB counters.
    fn mibs(&self) -> &NetMibs;

    /// The CPU this context belongs to (the shard for counters).
    fn cpu(&self) -> usize;

    /// The host's sysctls.
    fn sysctl(&self) -> &Sysctl;

    /// The buffer pool datagrams are built in.
    fn page_pool(&self) -> &PagePool;

    /// The current time (for `skb->tstamp`).
    fn now(&self) -> Instant;

    /// A random 32-bit number (`get_random_u32()`), for ephemeral ports.
    fn prandom_u32(&mut self) -> u32;

    /// This CPU's cache of its last receive lookup, if the context keeps
    /// one (the default keeps none: every datagram looks its socket up).
    fn udp_rcv_cache(&mut self) -> Option<&mut crate::UdpRcvCache> {
        None
    }

    /// Whether `addr` may be bound: one of this host's addresses, or
    /// broadcast/multicast, as `inet_addr_valid_or_nonlocal()` decides
    /// (`ip_nonlocal_bind` included). `0.0.0.0` is handled by the caller.
    fn inet_addr_valid_or_nonlocal(&self, addr: Ipv4Addr) -> bool;

    /// Looks up the route of `fl`.
    ///
    /// Mirrors `ip_route_output_flow()`. Errors are the errno the socket
    /// call returns (`ENETUNREACH`, `EHOSTUNREACH`, `EINVAL`).
    fn ip_route_output(&mut self, fl: &Flowi4) -> Result<RouteInfo, Errno>;

    /// "Fragmentation needed" said the path toward `daddr` carries at most
    /// `mtu` bytes: the IP layer keeps it as a path MTU exception for the
    /// routes toward `daddr`. The default (the fake of `testutil`, with no
    /// route cache) forgets it.
    ///
    /// Mirrors `ipv4_sk_update_pmtu()`.
    fn ip_rt_update_pmtu(&mut self, daddr: Ipv4Addr, mtu: u32) {
        let _ = (daddr, mtu);
    }

    /// An ICMP redirect from `old_gw` (code `code`) named `new_gw` the
    /// better first hop toward `daddr`: the IP layer checks it and keeps
    /// it for the routes toward `daddr`. The default forgets it.
    ///
    /// Mirrors `ipv4_sk_redirect()`.
    fn ip_rt_redirect(&mut self, daddr: Ipv4Addr, old_gw: Ipv4Addr, new_gw: Ipv4Addr, code: u8) {
        let _ = (daddr, old_gw, new_gw, code);
    }

    /// The routing generation: a route a connected socket cached
    /// (`sk_dst_cache`) under another generation is stale and looked up
    /// again.
    ///
    /// Mirrors `rt_genid_ipv4()` as `__sk_dst_check()` compares it (a
    /// route's `rt_genid` against the namespace's).
    fn rt_genid(&self) -> u64;

    /// Gives the route a connected socket cached the next hop's neighbour
    /// entry (`dst->neighbour`) when it has none or a stale one; returns
    /// whether `rt` changed (the caller then caches it again). IP output
    /// checks the entry on every use; with it, a send skips the neighbour
    /// table lookup. The default (an IP layer without neighbour entries,
    /// the fake of `testutil`) leaves `rt` as it is.
    ///
    /// Mirrors the neighbour a Linux `rtable` keeps for its life
    /// (`ipv4::rt_neigh_refresh`).
    fn dst_neigh_refresh(&mut self, rt: &mut RouteInfo, daddr: Ipv4Addr) -> bool {
        let _ = (rt, daddr);
        false
    }

    /// Sends one UDP datagram along `rt`: `skb.data()` starts at the UDP
    /// header and the skb has at least [`crate::UDP_MAX_HEADER`] bytes of
    /// headroom. IP pushes its header, fragments when the datagram does not
    /// fit the MTU (`df` says whether DF may be set) and passes it down.
    /// `id` is the IP id a connected socket's counter chose (`inet_id`);
    /// `None` lets IP choose (0 with DF, else the per-destination
    /// generator), as `ip_select_ident_segs()` does.
    ///
    /// Mirrors `ip_send_skb()` / `ip_local_out()` as `udp_send_skb()` calls
    /// them, with the IP header `__ip_make_skb()` fills. Takes ownership of
    /// `skb`. The error is what `sendmsg` returns (`ENOBUFS` on a qdisc
    /// drop, `EHOSTUNREACH` after a failed ARP, ...).
    fn ip_send_skb(
        &mut self,
        skb: SkBuff,
        fl: &Flowi4,
        rt: &RouteInfo,
        df: bool,
        id: Option<u16>,
    ) -> Result<(), Errno>;
}
