//! IPv4 transmit path: header building, LOCAL_OUT, POST_ROUTING,
//! fragmentation, the neighbour and the Ethernet header, then the device.
//!
//! Mirrors `net/ipv4/ip_output.c` (`ip_queue_xmit()`,
//! `ip_build_and_send_pkt()`, `__ip_local_out()`, `ip_output()`,
//! `ip_finish_output()`, `ip_fragment()`, `ip_finish_output2()`),
//! `ip_select_ident_segs()` and `ip_dont_fragment()` of `include/net/ip.h`,
//! `neigh_output()`/`neigh_resolve_output()` of `net/core/neighbour.c` and
//! `loopback_xmit()` of `drivers/net/loopback.c`.
//!
//! ```text
//!  ip_queue_xmit / ip_build_and_send_pkt      (transport segment + InetSock)
//!    └─ route, IP header, ip_select_ident ─▶ ip_local_out ─ OutRequests, tot_len, csum
//!         └─ NF_HOOK(LOCAL_OUT) ─▶ ip_output ─ NF_HOOK(POST_ROUTING) ─▶ ip_finish_output
//!              └─ len > mtu ? ip_fragment (DF: FragFails, ICMP frag needed) : ─┐
//!                 ip_finish_output2 ◀─────────────────────────────────────────┘
//!                   ├─ OutTransmits/OutOctets (per fragment)
//!                   ├─ local route: loopback_xmit ─▶ netif_rx (back into ip_rcv on lo)
//!                   └─ neighbour (CONNECTED: its lladdr; else ARP, packet queued)
//!                        └─ eth_header ─▶ dev_queue_xmit
//! ```

use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{
    DropReason, ETH_P_IP, Errno, IpExtMib, IpMib, IpSummed, NET_SKB_PAD, PktType, SkBuff, Sysctl,
    kfree_skb_reason,
};
use netfilter::{NfConsumed, NfInetHooks};
use softnet::{NetDev, NetXmit};
use softnet::{dev_queue_xmit, netif_rx};
use wire::{ETH_HLEN, EthernetAddress, IP_DF, IP_OFFSET};

use crate::arp::arp_solicit;
use crate::context::{
    Ipv4Context, Ipv4Net, LOOPBACK_IFINDEX, XmitDev, nf_hook_ipv4_none, nf_hook_slow_ipv4,
};
use crate::eth::{eth_header, ip_eth_mc_map};
use crate::icmp_rcv::icmp_send_net;
use crate::ip_output_frag::ip_do_fragment;
use crate::neighbour::NeighAction;
use crate::protocol::IcmpError;
use crate::route::{Flowi4, Rtable, RtnType};

/// Headroom a transport reserves in front of its header so that IP and
/// Ethernet can push theirs without copying: 60 bytes of IP header (with
/// options) and `LL_RESERVED_SPACE` of Ethernet (14 rounded to 16).
///
/// Mirrors the role of `MAX_HEADER` in `include/linux/netdevice.h`.
pub const MAX_IP_HEADROOM: usize = 60 + 16;

/// The socket's path-MTU discovery mode.
///
/// Mirrors `IP_PMTUDISC_*` of `include/uapi/linux/in.h` (`IP_MTU_DISCOVER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpPmtudisc {
    /// Never set DF (`IP_PMTUDISC_DONT`).
    #[doc(alias = "IP_PMTUDISC_DONT")]
    Dont,
    /// Set DF on datagrams that fit the route MTU, fragment larger ones
    /// (`IP_PMTUDISC_WANT`, Linux's default when `ip_no_pmtu_disc` is 0).
    #[doc(alias = "IP_PMTUDISC_WANT")]
    #[default]
    Want,
    /// Always set DF (`IP_PMTUDISC_DO`).
    #[doc(alias = "IP_PMTUDISC_DO")]
    Do,
    /// Set DF, ignore the path MTU (`IP_PMTUDISC_PROBE`).
    #[doc(alias = "IP_PMTUDISC_PROBE")]
    Probe,
}

/// What IPv4 output reads from a socket.
///
/// Mirrors the output fields of `struct inet_sock`: `inet_saddr`,
/// `inet_daddr`, `tos`, `uc_ttl`, `mc_ttl`, `pmtudisc`, `inet_id`, plus
/// `sk_bound_dev_if`, `sk_mark` and `sk_priority` of `struct sock`.
#[doc(alias = "inet_sock")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InetSock {
    /// Local address (`inet_saddr`); unspecified until bound or connected.
    pub saddr: Ipv4Addr,
    /// Peer address (`inet_daddr`); unspecified when not connected.
    pub daddr: Ipv4Addr,
    /// IP protocol of the socket (`sk_protocol`).
    pub protocol: u8,
    /// TOS byte (`inet->tos`).
    pub tos: u8,
    /// Unicast TTL (`uc_ttl`); `None` (Linux's -1) uses `ip_default_ttl`.
    pub uc_ttl: Option<u8>,
    /// Multicast TTL (`mc_ttl`, 1).
    pub mc_ttl: u8,
    /// Path-MTU discovery mode (`pmtudisc`).
    pub pmtudisc: IpPmtudisc,
    /// The next IP id for this connected socket (`inet_id`).
    pub inet_id: u16,
    /// Bound device (`sk_bound_dev_if`), 0 for none.
    pub bound_dev_if: u32,
    /// Firewall mark (`sk_mark`).
    pub mark: u32,
    /// Queueing priority (`sk_priority`).
    pub priority: u32,
    /// The route [`ip_queue_xmit`] last used, with the route generation it
    /// was computed in (`sk_dst_cache`); stale once
    /// [`Ipv4Net::rt_genid`] moves on.
    pub dst_cache: Option<(Rtable, u64)>,
    /// Whether `saddr` is the source the route lookup of `dst_cache` chose
    /// (the socket had none, as `ip_route_connect()` fills `inet_saddr`):
    /// then `dst_cache` also answers a lookup toward `daddr` without a
    /// source in the same generation.
    pub saddr_from_route: bool,
}

impl InetSock {
    /// A fresh socket of `protocol`: unbound, unconnected, TOS 0, default
    /// TTLs, `pmtudisc` DONT when `ip_no_pmtu_disc` is set else WANT, as
    /// `inet_create()` sets them.
    pub fn new(protocol: u8, sysctl: &Sysctl) -> InetSock {
        InetSock {
            saddr: Ipv4Addr::UNSPECIFIED,
            daddr: Ipv4Addr::UNSPECIFIED,
            protocol,
            tos: 0,
            uc_ttl: None,
            mc_ttl: 1,
            pmtudisc: if sysctl.get_int(Sysctl::IP_NO_PMTU_DISC) != 0 {
                IpPmtudisc::Dont
            } else {
                IpPmtudisc::Want
            },
            inet_id: 0,
            bound_dev_if: 0,
            mark: 0,
            priority: 0,
            dst_cache: None,
            saddr_from_route: false,
        }
    }

    /// The cached route if it is still valid. Mirrors `__sk_dst_check()`:
    /// a route computed before the last [`Ipv4Net::rt_cache_flush`] is
    /// dropped.
    pub fn sk_dst_check(&mut self, rt_genid: u64) -> Option<Rtable> {
        match self.dst_cache {
            Some((rt, genid)) if genid == rt_genid => Some(rt),
            Some(_) => {
                self.dst_cache = None;
                None
            }
            None => None,
        }
    }
}

/// Whether `ip_queue_xmit()` sets DF. Mirrors `ip_dont_fragment()` (no
/// route locks the MTU here).
fn ip_dont_fragment(sk: &InetSock) -> bool {
    matches!(sk.pmtudisc, IpPmtudisc::Do | IpPmtudisc::Want)
}

/// Makes sure `skb` has `needed` bytes of writable headroom, replacing it
/// with a copy in a fresh buffer if not. Mirrors `skb_cow_head()`; the
/// common case (room enough, not shared) is a test and no move of the skb.
#[inline]
pub(crate) fn skb_cow_head<C: ?Sized>(
    net: &Ipv4Net<C>,
    skb: &mut SkBuff,
    needed: usize,
) -> Result<(), Errno> {
    if skb.headroom() >= needed && !skb.is_cloned() {
        return Ok(());
    }
    skb_realloc_headroom(net, skb, needed)
}

/// The copy [`skb_cow_head`] falls back to. Mirrors
/// `skb_realloc_headroom()`. Errors: [`Errno::NoBufs`] when the pool is
/// empty (`skb` is then left as it was).
#[cold]
#[inline(never)]
fn skb_realloc_headroom<C: ?Sized>(
    net: &Ipv4Net<C>,
    skb: &mut SkBuff,
    needed: usize,
) -> Result<(), Errno> {
    let mut copy = SkBuff::from_slice(net.pool(), needed.max(NET_SKB_PAD), skb.data())
        .map_err(|_| Errno::NoBufs)?;
    copy.protocol = skb.protocol;
    copy.ifindex = skb.ifindex;
    copy.mark = skb.mark;
    copy.priority = skb.priority;
    copy.pkt_type = skb.pkt_type;
    copy.ip_summed = skb.ip_summed;
    copy.gso_size = skb.gso_size;
    copy.gso_segs = skb.gso_segs;
    copy.gso_type = skb.gso_type;
    copy.tstamp = skb.tstamp;
    if let Some(off) = skb.network_offset()
        && let Ok(off) = usize::try_from(off)
    {
        let _ = copy.set_network_header(off);
    }
    if let Some(off) = skb.transport_offset()
        && let Ok(off) = usize::try_from(off)
    {
        let _ = copy.set_transport_header(off);
    }
    *skb = copy;
    Ok(())
}

/// Routes a datagram this host sends: [`NetnsIpv4::ip_route_output_key`](crate::NetnsIpv4::ip_route_output_key)
/// under the routing lock. Fills in `fl4.saddr`.
///
/// Mirrors `ip_route_output_key()`.
///
/// # Errors
///
/// Those of the lookup ([`Errno::NetUnreach`], [`Errno::HostUnreach`],
/// [`Errno::Inval`] for a non-local source, [`Errno::NoDev`]).
pub fn ip_route_output_key<C: Ipv4Context>(ctx: &C, fl4: &mut Flowi4) -> Result<Rtable, Errno> {
    let mut rt = ctx.ipv4().netns().read().ip_route_output_key(fl4)?;
    rt_apply_pmtu(ctx, &mut rt, fl4.daddr);
    Ok(rt)
}

/// Binds to a fresh route what an exception keeps toward `daddr`: the
/// path MTU ([`Ipv4Net::ip_rt_update_pmtu`](crate::Ipv4Net::ip_rt_update_pmtu))
/// lowers its MTU, and a redirect's first hop
/// ([`Ipv4Net::ip_rt_do_redirect`](crate::Ipv4Net::ip_rt_do_redirect))
/// replaces its gateway when the route leaves through the same device.
/// Mirrors `rt_bind_exception()` and the exception part of `ipv4_mtu()`.
#[inline]
fn rt_apply_pmtu<C: Ipv4Context>(ctx: &C, rt: &mut Rtable, daddr: Ipv4Addr) {
    let net = ctx.ipv4();
    if net.has_pmtu_exceptions()
        && rt.rt_type == RtnType::Unicast
        && let Some(e) = net.rt_exception_at(daddr, ctx.now())
    {
        if e.pmtu != 0 {
            rt.mtu = rt.mtu.min(e.pmtu);
        }
        if let Some(gw) = e.gw.filter(|_| e.oif == rt.oif) {
            rt.gateway = Some(gw);
        }
    }
}

/// Sends a transport segment of a connected socket.
///
/// Mirrors `ip_queue_xmit()` → `__ip_queue_xmit()`: uses the socket's
/// cached route while it is valid (`__sk_dst_check()`), else routes toward
/// `sk.daddr` (from `sk.saddr`, filled in when unset, and
/// `sk.bound_dev_if`) and caches the result, pushes a 20-byte IP header (TOS `sk.tos`, TTL
/// `uc_ttl` or `ip_default_ttl` — `mc_ttl` toward a multicast group —,
/// DF per `ip_dont_fragment()`, id from `ip_select_ident_segs()`), then
/// [`ip_local_out`]. `skb.data()` starts at the transport header; reserve
/// [`MAX_IP_HEADROOM`] to avoid a copy. Consumes `skb`.
///
/// # Errors
///
/// [`Errno::HostUnreach`] when there is no route (counted `OutNoRoutes`,
/// dropped `IP_OUTNOROUTES`); otherwise those of [`ip_local_out`].
#[tracing::instrument(level = "trace", name = "ip_queue_xmit", target = "netstack::ipv4", skip_all, fields(daddr = %sk.daddr, len = skb.len()))]
#[inline(always)]
pub fn ip_queue_xmit<C: Ipv4Context>(
    ctx: &mut C,
    sk: &mut InetSock,
    skb: SkBuff,
) -> Result<(), Errno> {
    let net = ctx.ipv4();
    let mut fl4 = Flowi4 {
        daddr: sk.daddr,
        saddr: sk.saddr,
        oif: sk.bound_dev_if,
        proto: sk.protocol,
        tos: sk.tos,
        mark: sk.mark,
    };
    let genid = net.rt_genid_at(|| ctx.now());
    let mut rt = if let Some(rt) = sk.sk_dst_check(genid) {
        fl4.saddr = rt.prefsrc;
        rt
    } else {
        let route = net.netns().read().ip_route_output_key(&mut fl4);
        let Ok(mut rt) = route else {
            let cpu = ctx.smp_processor_id();
            ctx.ipv4().mibs().inc(cpu, IpMib::OutNoRoutes);
            kfree_skb_reason(skb, DropReason::IpOutnoroutes);
            return Err(Errno::HostUnreach);
        };
        rt_apply_pmtu(ctx, &mut rt, fl4.daddr);
        sk.saddr_from_route = sk.saddr.is_unspecified();
        if sk.saddr.is_unspecified() {
            sk.saddr = fl4.saddr;
        }
        sk.dst_cache = Some((rt, genid));
        rt
    };
    if rt_neigh_refresh(net, &mut rt, fl4.daddr)
        && let Some((cached, _)) = sk.dst_cache.as_mut()
    {
        cached.neigh = rt.neigh;
    }
    let df = ip_dont_fragment(sk);
    ip_build_xmit(CtxNet, ctx, skb, sk, &fl4, &rt, df)
}

/// Gives a socket's cached unicast route the next hop's neighbour entry
/// (`dst->neighbour`, which `ip_finish_output2()` checks again) when it has
/// none or one from an older neighbour table generation. Returns whether
/// `rt.neigh` was looked up again (the caller then stores it in its cache).
///
/// Mirrors the `dst->neighbour` a Linux `rtable` keeps through its
/// `rt_gw4`/`dst_neigh_lookup()` for the life of the route; the hint here
/// is validated by [`NeighTable::neigh_hint_output`](crate::NeighTable::neigh_hint_output)
/// on every use instead of being reference counted.
#[inline]
pub fn rt_neigh_refresh<C: ?Sized>(net: &Ipv4Net<C>, rt: &mut Rtable, daddr: Ipv4Addr) -> bool {
    if rt.rt_type != RtnType::Unicast
        || rt.oif == LOOPBACK_IFINDEX
        || rt.neigh.is_some_and(|h| h.genid == net.neigh_genid())
    {
        return false;
    }
    let nexthop = rt.rt_nexthop(daddr);
    rt.neigh = net.arp_tbl().lock().neigh_hint(rt.oif, nexthop);
    true
}

/// Sends a transport segment with explicit addresses (a reply, a SYN-ACK,
/// an unconnected datagram).
///
/// Mirrors `ip_build_and_send_pkt()` and, for the DF choice, the
/// `__ip_make_skb()` rule UDP uses: DF with `IP_PMTUDISC_DO`/`PROBE`, and
/// with `WANT` only when the datagram fits the route MTU (a larger one is
/// fragmented). `saddr` may be unspecified (the route chooses).
/// `sk` gives TOS, TTL, mark and PMTU mode; its id counter is used when it
/// is connected. Returns the source address used.
///
/// # Errors
///
/// As [`ip_queue_xmit`].
pub fn ip_build_and_send_pkt<C: Ipv4Context>(
    ctx: &mut C,
    skb: SkBuff,
    sk: &mut InetSock,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
) -> Result<Ipv4Addr, Errno> {
    let net = ctx.ipv4();
    let mut fl4 = Flowi4 {
        daddr,
        saddr,
        oif: sk.bound_dev_if,
        proto: sk.protocol,
        tos: sk.tos,
        mark: sk.mark,
    };
    let route = net.netns().read().ip_route_output_key(&mut fl4);
    let Ok(mut rt) = route else {
        let cpu = ctx.smp_processor_id();
        ctx.ipv4().mibs().inc(cpu, IpMib::OutNoRoutes);
        kfree_skb_reason(skb, DropReason::IpOutnoroutes);
        return Err(Errno::HostUnreach);
    };
    rt_apply_pmtu(ctx, &mut rt, fl4.daddr);
    let mtu = rt.mtu as usize;
    let df = match sk.pmtudisc {
        IpPmtudisc::Do | IpPmtudisc::Probe => true,
        IpPmtudisc::Want => skb.len() + 20 <= mtu,
        IpPmtudisc::Dont => false,
    };
    ip_build_xmit(CtxNet, ctx, skb, sk, &fl4, &rt, df)?;
    Ok(fl4.saddr)
}

/// Pushes the IP header and hands the datagram to [`ip_local_out`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn ip_build_xmit<C: Ipv4Context, N: NetOf<C>>(
    net: N,
    ctx: &mut C,
    mut skb: SkBuff,
    sk: &mut InetSock,
    fl4: &Flowi4,
    rt: &Rtable,
    df: bool,
) -> Result<(), Errno> {
    skb_cow_head(net.of(ctx), &mut skb, 20)?;
    skb.reset_transport_header();
    let ttl = if rt.rt_type == RtnType::Multicast {
        sk.mc_ttl
    } else {
        sk.uc_ttl
            .unwrap_or_else(|| net.of(ctx).sysctl().get_int(Sysctl::IP_DEFAULT_TTL) as u8)
    };
    let segs = skb.gso_segs.max(1);
    // ip_select_ident_segs(): a connected socket's own counter; else 0
    // for DF datagrams; else the per-destination generator.
    let id = if !sk.daddr.is_unspecified() {
        let id = sk.inet_id;
        sk.inet_id = sk.inet_id.wrapping_add(segs);
        id
    } else if df {
        0
    } else {
        net.of(ctx)
            .ip_select_ident(fl4.daddr, fl4.saddr, sk.protocol, segs, ctx.now())
    };
    let len = skb.len() + 20;
    let Ok(h) = skb.push(20) else {
        kfree_skb_reason(skb, DropReason::Nomem);
        return Err(Errno::NoBufs);
    };
    h[0] = 0x45;
    h[1] = sk.tos;
    h[2..4].copy_from_slice(&(u16::try_from(len).unwrap_or(u16::MAX)).to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&(if df { IP_DF } else { 0 }).to_be_bytes());
    h[8] = ttl;
    h[9] = sk.protocol;
    h[10..12].fill(0);
    h[12..16].copy_from_slice(&fl4.saddr.octets());
    h[16..20].copy_from_slice(&fl4.daddr.octets());
    skb.reset_network_header();
    skb.mark = sk.mark;
    skb.priority = sk.priority;
    ip_local_out_net(net, ctx, skb, rt)
}

/// Sends a complete IPv4 datagram (header included) along `rt`.
///
/// Mirrors `ip_local_out()` → `__ip_local_out()`: counts `OutRequests`,
/// fixes `tot_len` and the header checksum (`ip_send_check()`), then the
/// LOCAL_OUT hook and [`ip_output`]. `skb.data()` starts at the IP header.
/// Consumes `skb`.
///
/// # Errors
///
/// [`Errno::Perm`] (or the hook's errno) when a LOCAL_OUT or POST_ROUTING
/// hook dropped it; [`Errno::MsgSize`] for a DF datagram larger than the
/// route MTU; [`Errno::NetDown`] when the device is down; [`Errno::NoBufs`]
/// when no buffer was available or the qdisc dropped it.
pub fn ip_local_out<C: Ipv4Context>(ctx: &mut C, skb: SkBuff, rt: &Rtable) -> Result<(), Errno> {
    ip_local_out_net(CtxNet, ctx, skb, rt)
}

/// Where the output path reads the IPv4 state from: a reference its
/// caller holds, or the context ([`CtxNet`]), read again at each use.
/// Linux passes `net` along as a plain pointer; here the context is
/// borrowed mutably on the way down, and reading the state through it
/// spares the `Arc` clone and drop (two locked instructions) per packet
/// that holding it alongside would cost.
pub(crate) trait NetOf<C: Ipv4Context>: Copy {
    /// The IPv4 state, borrowed for as long as `ctx` is.
    fn of<'a>(self, ctx: &'a C) -> &'a Ipv4Net<C>
    where
        Self: 'a;
}

impl<C: Ipv4Context> NetOf<C> for &Ipv4Net<C> {
    #[inline(always)]
    fn of<'a>(self, _ctx: &'a C) -> &'a Ipv4Net<C>
    where
        Self: 'a,
    {
        self
    }
}

/// The IPv4 state of the context itself ([`Ipv4Context::ipv4`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CtxNet;

impl<C: Ipv4Context> NetOf<C> for CtxNet {
    #[inline(always)]
    fn of<'a>(self, ctx: &'a C) -> &'a Ipv4Net<C>
    where
        Self: 'a,
    {
        ctx.ipv4()
    }
}

fn nf_result(r: Result<Result<(), Errno>, NfConsumed>) -> Result<(), Errno> {
    match r {
        Ok(r) => r,
        Err(NfConsumed::Dropped(e) | NfConsumed::QueueFailed(e)) => Err(e),
        Err(NfConsumed::Stolen | NfConsumed::Queued) => Ok(()),
    }
}

#[inline(always)]
pub(crate) fn ip_local_out_net<C: Ipv4Context, N: NetOf<C>>(
    net: N,
    ctx: &mut C,
    mut skb: SkBuff,
    rt: &Rtable,
) -> Result<(), Errno> {
    let cpu = ctx.smp_processor_id();
    // this_cpu: a plain load + store on the CPU's own thread (Linux's
    // __IP_INC_STATS), a locked add anywhere else.
    net.of(ctx).mibs().this_cpu(cpu).inc(IpMib::OutRequests);
    let len = skb.len();
    let Ok(h) = skb.data_mut() else {
        kfree_skb_reason(skb, DropReason::Nomem);
        return Err(Errno::NoBufs);
    };
    if h.len() < 20 {
        kfree_skb_reason(skb, DropReason::PktTooSmall);
        return Err(Errno::Inval);
    }
    let ihl = (usize::from(h[0] & 0x0f) * 4).clamp(20, h.len());
    h[2..4].copy_from_slice(&(u16::try_from(len).unwrap_or(u16::MAX)).to_be_bytes());
    h[10..12].fill(0);
    let c = wire::ip_fast_csum(&h[..ihl]);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    skb.protocol = ETH_P_IP;
    skb.reset_network_header();
    if nf_hook_ipv4_none(ctx, NfInetHooks::LocalOut, 0, rt.oif) {
        return ip_output_net(net, ctx, skb, rt, 0);
    }
    nf_result(nf_hook_slow_ipv4(
        ctx,
        NfInetHooks::LocalOut,
        0,
        rt.oif,
        skb,
        |ctx, skb| ip_output_net(net, ctx, skb, rt, 0),
    ))
}

/// Runs POST_ROUTING and the output of a datagram, local or forwarded.
///
/// Mirrors `ip_output()`: sets the output device, then
/// `NF_HOOK(POST_ROUTING, in_ifindex, rt.oif)` → `ip_finish_output()`.
/// `in_ifindex` is the device a forwarded datagram came in by (0 for
/// local ones).
///
/// # Errors
///
/// As [`ip_local_out`].
pub fn ip_output<C: Ipv4Context>(
    ctx: &mut C,
    skb: SkBuff,
    rt: &Rtable,
    in_ifindex: u32,
) -> Result<(), Errno> {
    ip_output_net(CtxNet, ctx, skb, rt, in_ifindex)
}

#[inline(always)]
#[tracing::instrument(level = "trace", name = "ip_output", target = "netstack::ipv4", skip_all, fields(oif = rt.oif, len = skb.len()))]
pub(crate) fn ip_output_net<C: Ipv4Context, N: NetOf<C>>(
    net: N,
    ctx: &mut C,
    mut skb: SkBuff,
    rt: &Rtable,
    in_ifindex: u32,
) -> Result<(), Errno> {
    skb.ifindex = rt.oif;
    skb.protocol = ETH_P_IP;
    if nf_hook_ipv4_none(ctx, NfInetHooks::PostRouting, in_ifindex, rt.oif) {
        return ip_finish_output(net, ctx, skb, rt);
    }
    nf_result(nf_hook_slow_ipv4(
        ctx,
        NfInetHooks::PostRouting,
        in_ifindex,
        rt.oif,
        skb,
        |ctx, skb| ip_finish_output(net, ctx, skb, rt),
    ))
}

/// Mirrors `ip_finish_output()` → `__ip_finish_output()`: fragments what
/// exceeds the route MTU, then `ip_finish_output2()`.
#[inline(always)]
pub(crate) fn ip_finish_output<C: Ipv4Context, N: NetOf<C>>(
    net: N,
    ctx: &mut C,
    skb: SkBuff,
    rt: &Rtable,
) -> Result<(), Errno> {
    let mtu = rt.mtu as usize;
    if skb.is_gso() || skb.len() <= mtu {
        return ip_finish_output2(net, ctx, skb, rt);
    }
    // Rare path: the state held alongside the context (the same one:
    // every `net` here is the context's).
    let net = Arc::clone(ctx.ipv4());
    ip_fragment(&net, ctx, skb, rt, mtu)
}

/// Mirrors `ip_fragment()`: a DF datagram is refused (`FragFails`, ICMP
/// fragmentation needed with the MTU to its source, `EMSGSIZE`); others go
/// through `ip_do_fragment()` and each fragment to `ip_finish_output2()`.
fn ip_fragment<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    skb: SkBuff,
    rt: &Rtable,
    mtu: usize,
) -> Result<(), Errno> {
    let cpu = ctx.smp_processor_id();
    let d = skb.data();
    let frag_off = if d.len() >= 8 {
        u16::from_be_bytes([d[6], d[7]])
    } else {
        0
    };
    if frag_off & IP_DF != 0 {
        net.mibs().inc(cpu, IpMib::FragFails);
        let _ = icmp_send_net(
            net,
            ctx,
            &skb,
            IcmpError::FragNeeded {
                mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            },
        );
        kfree_skb_reason(skb, DropReason::PktTooBig);
        return Err(Errno::MsgSize);
    }
    let frags = ip_do_fragment(skb, mtu, net.pool(), net.mibs(), cpu).map_err(|_| Errno::NoBufs)?;
    let mut res = Ok(());
    for f in frags {
        if let Err(e) = ip_finish_output2(net, ctx, f, rt) {
            res = Err(e);
        }
    }
    res
}

/// Mirrors `ip_finish_output2()`: counts the datagram (`OutTransmits`,
/// `OutOctets`, and `OutBcastPkts`/`OutMcastPkts`), then hands it to the
/// loopback for a local route, or to the next hop's neighbour.
#[inline(always)]
fn ip_finish_output2<C: Ipv4Context, N: NetOf<C>>(
    net: N,
    ctx: &mut C,
    skb: SkBuff,
    rt: &Rtable,
) -> Result<(), Errno> {
    // this_cpu: plain load + store on the CPU's own thread (Linux's
    // IP_UPD_PO_STATS is a this_cpu op), a locked add anywhere else.
    let cpu = ctx.smp_processor_id();
    let mibs = net.of(ctx).mibs().this_cpu(cpu);
    let len = skb.len() as u64;
    match rt.rt_type {
        RtnType::Multicast => {
            mibs.inc(IpExtMib::OutMcastPkts);
            mibs.add(IpExtMib::OutMcastOctets, len);
        }
        RtnType::Broadcast => {
            mibs.inc(IpExtMib::OutBcastPkts);
            mibs.add(IpExtMib::OutBcastOctets, len);
        }
        _ => {}
    }
    mibs.inc(IpMib::OutTransmits);
    mibs.add(IpExtMib::OutOctets, len);
    if rt.oif == LOOPBACK_IFINDEX || rt.rt_type == RtnType::Local {
        loopback_xmit(ctx, skb);
        return Ok(());
    }
    let d = skb.data();
    let daddr = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    let dst = match rt.rt_type {
        RtnType::Broadcast => Some(EthernetAddress::BROADCAST),
        RtnType::Multicast => Some(ip_eth_mc_map(daddr)),
        _ => None,
    };
    let nexthop = rt.rt_nexthop(daddr);
    let now = ctx.now();
    // One call of the (inline) neigh_hh_output() for all three cases.
    let ha = if dst.is_some() {
        dst
    } else {
        // neigh_output()'s fast path: a CONNECTED entry's address is used
        // as is; neigh_resolve_output() of a DELAY or PROBE entry sends at
        // once too (neigh_event_send() only stamps `used`), with no action
        // list. A socket's cached route brings the entry along (no lookup).
        //
        // A CONNECTED hint of the table's current generation is used
        // without the table lock, as neigh_output() reads nud_state and
        // the hh cache locklessly: its output changes nothing in the
        // table, and a change concurrent with this read is ordered after
        // it (as a Linux writer racing the lockless reader would be).
        let ha = match rt.neigh {
            Some(h)
                if h.connected
                    && h.ifindex == rt.oif
                    && h.nexthop == nexthop
                    && h.genid == net.of(ctx).neigh_genid() =>
            {
                Some(h.ha)
            }
            hint => {
                let mut tbl = net.of(ctx).arp_tbl().lock();
                match hint {
                    Some(h) => match tbl.neigh_hint_output(&h, rt.oif, nexthop, now) {
                        Some(ha) => Some(ha),
                        None => tbl.neigh_output_ha(rt.oif, nexthop, now),
                    },
                    None => tbl.neigh_output_ha(rt.oif, nexthop, now),
                }
            }
        };
        tracing::trace!(target: "netstack::ipv4", nexthop = %nexthop, "{}", if ha.is_some() { "neigh_hh_output" } else { "neigh_resolve_output" });
        ha
    };
    if let Some(ha) = ha {
        return neigh_hh_output(net, ctx, skb, rt.oif, ha);
    }
    let mut actions = Vec::new();
    // Rare path: the state held alongside the context (the same one:
    // every `net` here is the context's).
    let net = Arc::clone(ctx.ipv4());
    let r = net
        .arp_tbl()
        .lock()
        .neigh_resolve_output(ctx, now, rt.oif, nexthop, skb, &mut actions);
    neigh_run_actions(&net, ctx, actions);
    r
}

/// Mirrors `loopback_xmit()`: the datagram comes back in through
/// `netif_rx()` as received on `lo` (to this host, checksum verified), so
/// `ip_rcv` delivers it.
fn loopback_xmit<C: Ipv4Context>(ctx: &mut C, mut skb: SkBuff) {
    skb.protocol = ETH_P_IP;
    skb.ifindex = LOOPBACK_IFINDEX;
    skb.pkt_type = PktType::Host;
    skb.ip_summed = IpSummed::Unnecessary;
    skb.queue_mapping = 0;
    skb.clear_hash();
    skb.reset_network_header();
    // netif_rx() counts and frees what the backlog refuses.
    let _ = netif_rx(ctx, skb);
}

/// Pushes the Ethernet header toward `ha` and transmits. Mirrors
/// `neigh_hh_output()` / `neigh_connected_output()` → `dev_queue_xmit()`.
/// Inline: on the transmit path of every packet, where a call would move
/// the skb once more.
#[inline(always)]
pub(crate) fn neigh_hh_output<C: Ipv4Context, N: NetOf<C>>(
    net: N,
    ctx: &mut C,
    skb: SkBuff,
    ifindex: u32,
    ha: EthernetAddress,
) -> Result<(), Errno> {
    // The CPU's last output device (`dst->dev`), taken out for this
    // transmit and put back after: no table lock, no reference count.
    let genid = net.of(ctx).devs_genid();
    let cached = ctx.xmit_dev_cache().and_then(|c| c.take(ifindex, genid));
    let entry = if let Some(e) = cached {
        e
    } else {
        let Some((dev, dev_addr)) = net.of(ctx).dev_xmit(ifindex) else {
            kfree_skb_reason(skb, DropReason::DevReady);
            return Err(Errno::NoDev);
        };
        XmitDev {
            ifindex,
            genid,
            dev,
            dev_addr,
        }
    };
    let r = match entry.dev.as_ref() {
        None => {
            loopback_xmit(ctx, skb);
            Ok(())
        }
        Some(nd) => dev_hh_xmit(net, ctx, skb, nd, ha, entry.dev_addr),
    };
    if let Some(c) = ctx.xmit_dev_cache() {
        c.put(entry);
    }
    r
}

/// The Ethernet header and `dev_queue_xmit()` of [`neigh_hh_output`].
#[inline(always)]
fn dev_hh_xmit<C: Ipv4Context, N: NetOf<C>>(
    net: N,
    ctx: &mut C,
    mut skb: SkBuff,
    nd: &Arc<NetDev>,
    ha: EthernetAddress,
    dev_addr: EthernetAddress,
) -> Result<(), Errno> {
    skb_cow_head(net.of(ctx), &mut skb, ETH_HLEN)?;
    if eth_header(&mut skb, ETH_P_IP, ha, dev_addr).is_err() {
        kfree_skb_reason(skb, DropReason::Nomem);
        return Err(Errno::NoBufs);
    }
    // net_xmit_eval(): a congestion notice is success, a drop ENOBUFS.
    match dev_queue_xmit(ctx, nd, skb)? {
        NetXmit::Drop => Err(Errno::NoBufs),
        NetXmit::Success | NetXmit::Cn => Ok(()),
    }
}

/// Carries out what the neighbour table asked for: ARP requests go out,
/// released packets are transmitted, packets whose resolution failed get
/// an ICMP host unreachable to their source.
///
/// Mirrors the `neigh->ops->solicit` (`arp_solicit()`), `neigh->output`
/// and `neigh->ops->error_report` (`arp_error_report()`) calls the kernel
/// makes from inside the neighbour code; here the table returns them so no
/// lock is held while they run.
pub(crate) fn neigh_run_actions<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    actions: Vec<NeighAction>,
) {
    for action in actions {
        match action {
            NeighAction::Solicit { ifindex, .. } => {
                let Some(dev) = net.dev(ifindex) else {
                    continue;
                };
                let Some(nd) = dev.dev.as_ref() else {
                    continue;
                };
                let parms = *net.arp_tbl().lock().parms();
                let s = net.sysctl();
                let announce = s
                    .get_int(Sysctl::CONF_ALL_ARP_ANNOUNCE)
                    .max(s.get_int(Sysctl::CONF_DEFAULT_ARP_ANNOUNCE));
                let frame = {
                    let netns = net.netns().read();
                    arp_solicit(&action, &parms, &netns, dev.dev_addr, announce)
                };
                if let Some(frame) = frame
                    && let Ok(skb) = frame.to_skb(net.pool())
                {
                    let _ = dev_queue_xmit(ctx, nd, skb);
                }
            }
            NeighAction::Output { ifindex, ha, skb } => {
                let _ = neigh_hh_output(net, ctx, skb, ifindex, ha);
            }
            NeighAction::HostUnreachable { skb } => {
                let _ = icmp_send_net(net, ctx, &skb, IcmpError::HOST_UNREACH);
                kfree_skb_reason(skb, DropReason::NeighFailed);
            }
        }
    }
}

/// Whether the datagram at the start of `d` is a fragment (MF set or a
/// non-zero offset). Mirrors `ip_is_fragment()`.
pub(crate) fn ip_is_fragment(d: &[u8]) -> bool {
    d.len() >= 8 && u16::from_be_bytes([d[6], d[7]]) & (wire::IP_MF | IP_OFFSET) != 0
}
