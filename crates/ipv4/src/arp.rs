//! The ARP protocol: building requests and replies, the `arp_process`
//! decision on a received packet, solicitation for the neighbour cache, and
//! gratuitous ARP.
//!
//! Mirrors `net/ipv4/arp.c`: `arp_ignore`, `arp_filter` ([`ArpConf`])
//! and `arp_announce` ([`arp_solicit`]) are honoured, by default 0 as in
//! Linux; `arp_accept` is always 0 and there is no proxy ARP.
//!
//! ```text
//!  frame ─▶ arp_parse ─▶ arp_process ─┬─▶ Reply(ArpFrame)          request for a local address
//!                                     ├─▶ Filtered                 refused by arp_filter
//!                                     ├─▶ NeighTable::neigh_update  reply / request from a known peer
//!                                     └─▶ Ignored                   everything else
//!  NeighAction::Solicit ─▶ arp_solicit ─▶ ArpFrame (who-has)
//! ```

use std::net::Ipv4Addr;

use core::marker::PhantomData;
use std::sync::Arc;

use netcore::{
    DropReason, ETH_P_ARP, Instant, NET_SKB_PAD, PagePool, PktType, SkBuff, SkbError, TimerContext,
    consume_skb, kfree_skb_reason,
};
use softnet::{NetRx, PacketType, PtypeMatch, dev_queue_xmit};
use wire::{
    ARP_ETH_IPV4_LEN, ArpOp, ArpPacket, ArpRepr, ETH_HLEN, EtherType, EthernetAddress,
    EthernetRepr, WireError,
};

use crate::context::{Ipv4Context, Ipv4Net};
use crate::ip_output::neigh_run_actions;
use crate::neighbour::{NeighAction, NeighParms, NeighTable, NeighUpdateFlags, NudState};
use crate::route::{NetnsIpv4, RtScope, RtnType};
use crate::timers::Ipv4Timer;

/// An ARP packet to transmit, with its Ethernet addressing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpFrame {
    /// The device to send it on.
    pub ifindex: u32,
    /// Ethernet destination (broadcast unless a unicast probe or reply).
    pub eth_dst: EthernetAddress,
    /// Ethernet source (the device address).
    pub eth_src: EthernetAddress,
    /// The ARP fields.
    pub arp: ArpRepr,
}

impl ArpFrame {
    /// The frame as bytes: Ethernet header and the 28-byte ARP packet (the
    /// driver pads to the 60-byte minimum, as in Linux).
    pub fn to_bytes(&self) -> [u8; ETH_HLEN + ARP_ETH_IPV4_LEN] {
        let mut b = [0u8; ETH_HLEN + ARP_ETH_IPV4_LEN];
        let eth = EthernetRepr {
            src_addr: self.eth_src,
            dst_addr: self.eth_dst,
            ethertype: EtherType::Arp,
            vlan: None,
        };
        // Both writes fit the array by construction.
        let _ = eth.emit(&mut b);
        let _ = self.arp.emit(&mut b[ETH_HLEN..]);
        b
    }

    /// The frame in an skb from `pool`, ready for `dev_queue_xmit`
    /// (`protocol` ARP, `ifindex` set, MAC header marked).
    pub fn to_skb(&self, pool: &PagePool) -> Result<SkBuff, SkbError> {
        let mut skb = SkBuff::from_slice(pool, NET_SKB_PAD, &self.to_bytes())?;
        skb.reset_mac_header();
        skb.set_network_header(ETH_HLEN)?;
        skb.protocol = ETH_P_ARP;
        skb.ifindex = self.ifindex;
        Ok(skb)
    }
}

/// Builds an ARP packet.
///
/// Mirrors `arp_create()`: the Ethernet destination is `dest_hw` or
/// broadcast, the target hardware address `target_hw` or zero.
#[allow(clippy::too_many_arguments)]
pub fn arp_create(
    op: ArpOp,
    ifindex: u32,
    dest_ip: Ipv4Addr,
    src_ip: Ipv4Addr,
    dest_hw: Option<EthernetAddress>,
    src_hw: EthernetAddress,
    target_hw: Option<EthernetAddress>,
) -> ArpFrame {
    ArpFrame {
        ifindex,
        eth_dst: dest_hw.unwrap_or(EthernetAddress::BROADCAST),
        eth_src: src_hw,
        arp: ArpRepr {
            operation: op,
            sha: src_hw,
            sip: src_ip,
            tha: target_hw.unwrap_or(EthernetAddress::ZERO),
            tip: dest_ip,
        },
    }
}

/// Checks a received ARP packet (the bytes after the Ethernet header).
///
/// Mirrors the header checks of `arp_rcv()` and the first checks of
/// `arp_process()`: Ethernet/IPv4 only, 28 bytes at least, operation
/// request or reply, target neither multicast nor loopback.
///
/// Errors: [`WireError::Truncated`] and [`WireError::Unsupported`] (the
/// packet is dropped; Linux counts it in no MIB, only as a drop reason).
pub fn arp_parse(data: &[u8]) -> Result<ArpRepr, WireError> {
    let pkt = ArpPacket::new_checked(data)?;
    let repr = ArpRepr::parse(&pkt);
    if !matches!(repr.operation, ArpOp::Request | ArpOp::Reply) {
        return Err(WireError::Unsupported {
            field: "ar_op",
            value: u16::from(repr.operation).into(),
        });
    }
    if repr.tip.is_multicast() || repr.tip.is_loopback() {
        return Err(WireError::Unsupported {
            field: "ar_tip",
            value: repr.tip.to_bits(),
        });
    }
    Ok(repr)
}

/// What [`arp_process`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpDecision {
    /// Send this reply (a request for one of our addresses).
    Reply(ArpFrame),
    /// The neighbour cache took the sender's address.
    Updated,
    /// Nothing to do (not for us, unsolicited, or refused).
    Ignored,
    /// A request `arp_filter` refused (counted `ArpFilter`).
    Filtered,
}

/// The per-device ARP reply policy (`IN_DEV_ARP_IGNORE()`,
/// `IN_DEV_ARPFILTER()`): each the larger of `conf/all` and the device's
/// (here `conf/default`'s).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpConf {
    /// `arp_ignore`: 0 answer for any local address; 1 only for an
    /// address of the receiving device; 2 also only when the asker is in
    /// that address's subnet; 3 not for host-scope addresses; 8 never.
    pub ignore: i64,
    /// `arp_filter`: answer only when the route back to the asker leaves
    /// through the receiving device.
    pub filter: bool,
}

impl ArpConf {
    /// The policy the sysctls set.
    pub fn from_sysctl(s: &netcore::Sysctl) -> ArpConf {
        use netcore::Sysctl;
        ArpConf {
            ignore: s
                .get_int(Sysctl::CONF_ALL_ARP_IGNORE)
                .max(s.get_int(Sysctl::CONF_DEFAULT_ARP_IGNORE)),
            filter: s.get_int(Sysctl::CONF_ALL_ARP_FILTER) != 0
                || s.get_int(Sysctl::CONF_DEFAULT_ARP_FILTER) != 0,
        }
    }
}

/// Whether a request from `sip` for our `tip`, received on `ifindex`,
/// goes unanswered under `arp_ignore` mode `mode`. Mirrors
/// `arp_ignore()` with `inet_confirm_addr()`: modes 1 and 2 need `tip`
/// on the receiving device (2: with `sip` in its subnet), mode 3 any
/// address of scope link or wider, mode 8 ignores every request.
fn arp_ignore(net: &NetnsIpv4, mode: i64, ifindex: u32, sip: Ipv4Addr, tip: Ipv4Addr) -> bool {
    let confirmed = |dev: Option<u32>, peer: Option<Ipv4Addr>, scope: RtScope| {
        net.devices
            .iter()
            .filter(|d| dev.is_none_or(|i| d.ifindex == i))
            .any(|d| {
                d.ifa_list().iter().any(|ifa| {
                    ifa.ifa_local == tip
                        && ifa.ifa_scope <= scope
                        && peer.is_none_or(|p| {
                            (u32::from(p) ^ u32::from(ifa.ifa_local)) & ifa.mask() == 0
                        })
                })
            })
    };
    match mode {
        1 => !confirmed(Some(ifindex), None, RtScope::Host),
        2 => !confirmed(Some(ifindex), Some(sip), RtScope::Host),
        3 => !confirmed(None, None, RtScope::Link),
        8 => true,
        _ => false,
    }
}

/// Whether `arp_filter` drops a request from `sip` for `tip` received on
/// `ifindex`: the route from `tip` back to `sip` leaves through another
/// device (or there is none). Mirrors `arp_filter()`; the caller counts
/// `ArpFilter`.
fn arp_filter(net: &NetnsIpv4, sip: Ipv4Addr, tip: Ipv4Addr, ifindex: u32) -> bool {
    let mut fl4 = crate::route::Flowi4::new(sip, 0);
    fl4.saddr = tip;
    net.ip_route_output_key(&mut fl4)
        .map_or(true, |rt| rt.oif != ifindex)
}

/// Processes a received ARP packet.
///
/// Mirrors `arp_process()` with Linux's defaults:
/// - a DAD probe (sender 0.0.0.0) asking for a local address gets a reply;
/// - a request whose target is a local address of this host (on any
///   device with `arp_ignore=0`; see [`ArpConf`] for the other modes and
///   `arp_filter`) creates or refreshes the sender's entry as STALE
///   (`neigh_event_ns()`) and is answered;
/// - otherwise an existing entry for the sender is updated — REACHABLE for
///   a unicast reply, STALE for requests and broadcast replies — and a
///   different address replaces the cached one only after `locktime` or for
///   a gratuitous ARP; unknown senders create nothing (`arp_accept=0`).
///
/// Released packets land in `out` as [`NeighAction::Output`].
#[allow(clippy::too_many_arguments)]
pub fn arp_process<T: TimerContext<Ipv4Timer>>(
    tbl: &mut NeighTable,
    timers: &mut T,
    now: Instant,
    net: &NetnsIpv4,
    ifindex: u32,
    dev_addr: EthernetAddress,
    pkt_type: PktType,
    arp: &ArpRepr,
    conf: ArpConf,
    out: &mut Vec<NeighAction>,
) -> ArpDecision {
    let (sip, tip, sha) = (arp.sip, arp.tip, arp.sha);
    let request = arp.operation == ArpOp::Request;
    if sip.is_unspecified() {
        if request && net.inet_addr_type(tip) == RtnType::Local {
            return ArpDecision::Reply(arp_create(
                ArpOp::Reply,
                ifindex,
                sip,
                tip,
                Some(sha),
                dev_addr,
                Some(sha),
            ));
        }
        return ArpDecision::Ignored;
    }
    // ip_route_input_noref(tip, sip): a martian source gets no answer.
    let martian = sip.is_multicast() || sip.is_broadcast() || sip.is_loopback();
    if request && !martian && net.inet_addr_type(tip) == RtnType::Local {
        // arp_ignore() and arp_filter(): some local targets get no answer
        // on this device, and the asker is not learned either.
        if arp_ignore(net, conf.ignore, ifindex, sip, tip) {
            return ArpDecision::Ignored;
        }
        if conf.filter && arp_filter(net, sip, tip, ifindex) {
            return ArpDecision::Filtered;
        }
        if tbl
            .neigh_event_ns(timers, now, ifindex, sip, sha, out)
            .is_some()
        {
            return ArpDecision::Reply(arp_create(
                ArpOp::Reply,
                ifindex,
                sip,
                tip,
                Some(sha),
                dev_addr,
                Some(sha),
            ));
        }
        return ArpDecision::Ignored;
    }
    let Some(n) = tbl.peek(ifindex, sip) else {
        return ArpDecision::Ignored;
    };
    let id = n.id;
    // arp_is_garp()
    let is_garp =
        net.inet_addr_type(sip) == RtnType::Unicast && tip == sip && (request || arp.tha == sha);
    let override_ = now > n.updated + tbl.parms().locktime || is_garp;
    let state = if arp.operation != ArpOp::Reply || pkt_type != PktType::Host {
        NudState::STALE
    } else {
        NudState::REACHABLE
    };
    let flags = if override_ {
        NeighUpdateFlags::OVERRIDE
    } else {
        NeighUpdateFlags::empty()
    };
    match tbl.neigh_update(timers, now, id, Some(sha), state, flags, out) {
        Ok(()) => ArpDecision::Updated,
        Err(_) => ArpDecision::Ignored,
    }
}

/// Turns a [`NeighAction::Solicit`] into the ARP request to send; `None`
/// for other actions or when the probe is left to user space
/// (`app_solicit`).
///
/// Mirrors `arp_solicit()`: with `arp_announce` 0 (the default) the
/// source address is that of the packet waiting for resolution if it is
/// local (1: and on a subnet of the device with the target; 2: never), else
/// `inet_select_addr(dev, target, RT_SCOPE_LINK)`; the first
/// `ucast_solicit` probes of a round (PROBE state) go unicast to the cached
/// address, the following ones broadcast.
pub fn arp_solicit(
    action: &NeighAction,
    parms: &NeighParms,
    net: &NetnsIpv4,
    dev_addr: EthernetAddress,
    announce: i64,
) -> Option<ArpFrame> {
    let NeighAction::Solicit {
        ifindex,
        target,
        probes,
        ha,
        saddr_hint,
    } = *action
    else {
        return None;
    };
    // arp_announce: 0 the waiting packet's source if it is ours; 1 only
    // if the target is on a subnet of this device that holds it too; 2
    // never (the device's best address for the target).
    let onlink = |a: Ipv4Addr, b: Ipv4Addr| {
        net.devices.dev(ifindex).is_some_and(|d| {
            d.ifa_list().iter().any(|ifa| {
                let m = ifa.mask();
                let local = u32::from(ifa.ifa_local);
                (u32::from(a) ^ local) & m == 0 && (u32::from(b) ^ local) & m == 0
            })
        })
    };
    let saddr = saddr_hint
        .filter(|&s| net.inet_addr_type(s) == RtnType::Local)
        .filter(|&s| match announce {
            0 => true,
            1 => onlink(target, s),
            _ => false,
        })
        .or_else(|| net.devices.inet_select_addr(ifindex, target, RtScope::Link))
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let dst_hw = if probes < parms.ucast_probes {
        Some(ha)
    } else if probes - parms.ucast_probes < parms.app_probes {
        return None;
    } else {
        None
    };
    Some(arp_create(
        ArpOp::Request,
        ifindex,
        target,
        saddr,
        dst_hw,
        dev_addr,
        None,
    ))
}

/// Gratuitous ARP requests announcing every address of a device
/// (sender and target IP both the address, broadcast).
///
/// Mirrors `inetdev_send_gratuitous_arp()`. Linux sends them when a device
/// comes up or changes its hardware address with `arp_notify=1`, and on
/// `NETDEV_NOTIFY_PEERS`; `ip addr add` alone sends none (so
/// [`NetnsIpv4::inet_rtm_newaddr`] does not call this), tools such as
/// `arping -U` do it from user space.
pub fn inetdev_send_gratuitous_arp(
    net: &NetnsIpv4,
    ifindex: u32,
    dev_addr: EthernetAddress,
) -> Vec<ArpFrame> {
    net.devices.dev(ifindex).map_or_else(Vec::new, |dev| {
        dev.ifa_list()
            .iter()
            .map(|ifa| {
                arp_create(
                    ArpOp::Request,
                    ifindex,
                    ifa.ifa_local,
                    ifa.ifa_local,
                    None,
                    dev_addr,
                    None,
                )
            })
            .collect()
    })
}

/// The ARP packet handler registered with `dev_add_pack` by
/// [`inet_init`](crate::inet_init).
///
/// Mirrors `arp_packet_type` (`.type = ETH_P_ARP, .func = arp_rcv`).
pub struct ArpRcv<C: ?Sized> {
    net: Arc<Ipv4Net<C>>,
    _ctx: PhantomData<fn(&mut C)>,
}

impl<C: ?Sized> ArpRcv<C> {
    /// The handler for `net`.
    pub fn new(net: Arc<Ipv4Net<C>>) -> ArpRcv<C> {
        ArpRcv {
            net,
            _ctx: PhantomData,
        }
    }
}

impl<C: ?Sized> core::fmt::Debug for ArpRcv<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ArpRcv")
    }
}

impl<C: Ipv4Context> PacketType<C> for ArpRcv<C> {
    fn ptype(&self) -> PtypeMatch {
        PtypeMatch::Type(ETH_P_ARP)
    }

    fn func(&self, skb: SkBuff, ctx: &mut C) -> NetRx {
        arp_rcv_net(&self.net, ctx, skb)
    }

    fn name(&self) -> &'static str {
        "arp_rcv"
    }
}

/// Receives one ARP packet from the device layer.
///
/// Mirrors `arp_rcv()` → `arp_process()`: frames for another host or
/// looped back are consumed unread; a device without IPv4 state, a packet
/// shorter than the Ethernet/IPv4 ARP layout or of another hardware or
/// protocol type is dropped; otherwise [`arp_process`] decides, a reply goes
/// out with `dev_queue_xmit`, and packets released by a resolved neighbour
/// are transmitted. `skb.data()` starts at the ARP header. Consumes `skb`.
pub fn arp_rcv<C: Ipv4Context>(ctx: &mut C, skb: SkBuff) -> NetRx {
    let net = Arc::clone(ctx.ipv4());
    arp_rcv_net(&net, ctx, skb)
}

#[tracing::instrument(level = "trace", name = "arp_rcv", target = "netstack::ipv4", skip_all, fields(ifindex = skb.ifindex))]
fn arp_rcv_net<C: Ipv4Context>(net: &Ipv4Net<C>, ctx: &mut C, skb: SkBuff) -> NetRx {
    if matches!(skb.pkt_type, PktType::OtherHost | PktType::Loopback) {
        consume_skb(skb);
        return NetRx::Success;
    }
    let Some(dev) = net.dev(skb.ifindex) else {
        kfree_skb_reason(skb, DropReason::NotSpecified);
        return NetRx::Drop;
    };
    let arp = match arp_parse(skb.data()) {
        Ok(a) => a,
        Err(WireError::Truncated { .. }) => {
            kfree_skb_reason(skb, DropReason::PktTooSmall);
            return NetRx::Drop;
        }
        Err(_) => {
            kfree_skb_reason(skb, DropReason::NotSpecified);
            return NetRx::Drop;
        }
    };
    let now = ctx.now();
    let mut out = Vec::new();
    let conf = ArpConf::from_sysctl(net.sysctl());
    let decision = {
        let netns = net.netns().read();
        let mut tbl = net.arp_tbl().lock();
        arp_process(
            &mut tbl,
            ctx,
            now,
            &netns,
            skb.ifindex,
            dev.dev_addr,
            skb.pkt_type,
            &arp,
            conf,
            &mut out,
        )
    };
    consume_skb(skb);
    if decision == ArpDecision::Filtered {
        net.mibs()
            .inc(ctx.smp_processor_id(), netcore::LinuxMib::ArpFilter);
    }
    if let ArpDecision::Reply(frame) = decision
        && let Some(nd) = dev.dev.as_ref()
        && let Ok(reply) = frame.to_skb(net.pool())
    {
        let _ = dev_queue_xmit(ctx, nd, reply);
    }
    neigh_run_actions(net, ctx, out);
    NetRx::Success
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devinet::InIfaddr;
    use netcore::testutil::FakeTimers;
    use netcore::{Duration, PagePoolParams};

    const ETH0: u32 = 2;
    const MY_HA: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const PEER_HA: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn net() -> NetnsIpv4 {
        let mut net = NetnsIpv4::new();
        net.devices.inetdev_init(1, "lo", true).unwrap();
        net.devices.inetdev_init(ETH0, "eth0", false).unwrap();
        net.devices.inetdev_init(3, "eth1", false).unwrap();
        net.inet_rtm_newaddr(InIfaddr::new(ETH0, ip("198.18.0.1"), 24, "eth0").with_brd_plus())
            .unwrap();
        net.inet_rtm_newaddr(InIfaddr::new(3, ip("198.19.0.1"), 24, "eth1").with_brd_plus())
            .unwrap();
        net
    }

    /// A host built by [`net`] whose eth0 receives the packets, with
    /// its ARP table, timers and the actions `arp_process()` queues.
    struct Host {
        net: NetnsIpv4,
        tbl: NeighTable,
        timers: FakeTimers<Ipv4Timer>,
        out: Vec<NeighAction>,
    }

    impl Host {
        fn new(now: Instant) -> Host {
            let mut timers = FakeTimers::new();
            timers.advance_to(now);
            Host {
                net: net(),
                tbl: NeighTable::new(NeighParms::default(), 1, now),
                timers,
                out: Vec::new(),
            }
        }

        /// `arp` arrives on eth0 at `now`.
        fn rx(&mut self, now: Instant, pkt: PktType, arp: &ArpRepr, conf: ArpConf) -> ArpDecision {
            arp_process(
                &mut self.tbl,
                &mut self.timers,
                now,
                &self.net,
                ETH0,
                MY_HA,
                pkt,
                arp,
                conf,
                &mut self.out,
            )
        }
    }

    fn request(sip: &str, tip: &str) -> ArpRepr {
        ArpRepr {
            operation: ArpOp::Request,
            sha: PEER_HA,
            sip: ip(sip),
            tha: EthernetAddress::ZERO,
            tip: ip(tip),
        }
    }

    #[test]
    fn request_for_a_local_address_is_answered_and_learns_the_sender() {
        let now = Instant::from_secs(1);
        let mut h = Host::new(now);
        let d = h.rx(
            now,
            PktType::Broadcast,
            &request("198.18.0.2", "198.18.0.1"),
            ArpConf::default(),
        );
        let ArpDecision::Reply(reply) = d else {
            panic!("{d:?}")
        };
        // 198.18.0.1 is-at 02:00:00:00:00:01, unicast to the asker.
        assert_eq!(
            reply.to_bytes(),
            [
                2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x06, // Ethernet
                0, 1, 0x08, 0, 6, 4, 0, 2, // hrd, pro, hln, pln, op=reply
                2, 0, 0, 0, 0, 1, 198, 18, 0, 1, // sha, sip
                2, 0, 0, 0, 0, 2, 198, 18, 0, 2, // tha, tip
            ]
        );
        let n = h.tbl.peek(ETH0, ip("198.18.0.2")).unwrap();
        assert_eq!((n.nud_state, n.ha), (NudState::STALE, PEER_HA));
        // arp_ignore=0: an address of another device is answered too.
        let d = h.rx(
            now,
            PktType::Broadcast,
            &request("198.18.0.3", "198.19.0.1"),
            ArpConf::default(),
        );
        assert!(matches!(d, ArpDecision::Reply(r) if r.arp.sip == ip("198.19.0.1")));
        // Not ours: ignored, nothing learnt (arp_accept=0).
        let d = h.rx(
            now,
            PktType::Broadcast,
            &request("198.18.0.4", "198.18.0.9"),
            ArpConf::default(),
        );
        assert_eq!(d, ArpDecision::Ignored);
        assert!(h.tbl.peek(ETH0, ip("198.18.0.4")).is_none());
        // DAD probe: answered to the asker, target IP 0.
        let d = h.rx(
            now,
            PktType::Broadcast,
            &request("0.0.0.0", "198.18.0.1"),
            ArpConf::default(),
        );
        assert!(
            matches!(d, ArpDecision::Reply(r) if r.arp.tip.is_unspecified() && r.eth_dst == PEER_HA)
        );
    }

    #[test]
    fn reply_resolves_a_pending_entry_and_locktime_protects_it() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let now = Instant::from_secs(10);
        let mut h = Host::new(now);
        let skb = SkBuff::from_slice(&pool, 64, &[0u8; 20]).unwrap();
        h.tbl
            .neigh_resolve_output(&mut h.timers, now, ETH0, ip("198.18.0.2"), skb, &mut h.out)
            .unwrap();
        // The who-has: broadcast, source chosen on the subnet (the queued
        // bytes are not a valid datagram, so no hint).
        let who_has = arp_solicit(&h.out[0], h.tbl.parms(), &h.net, MY_HA, 0).unwrap();
        assert_eq!(who_has.eth_dst, EthernetAddress::BROADCAST);
        assert_eq!(
            (who_has.arp.sip, who_has.arp.tip, who_has.arp.tha),
            (ip("198.18.0.1"), ip("198.18.0.2"), EthernetAddress::ZERO)
        );
        h.out.clear();
        let reply = ArpRepr {
            operation: ArpOp::Reply,
            sha: PEER_HA,
            sip: ip("198.18.0.2"),
            tha: MY_HA,
            tip: ip("198.18.0.1"),
        };
        let d = h.rx(now, PktType::Host, &reply, ArpConf::default());
        assert_eq!(d, ArpDecision::Updated);
        assert!(matches!(&h.out[..], [NeighAction::Output { ha, .. }] if *ha == PEER_HA));
        assert_eq!(
            h.tbl.peek(ETH0, ip("198.18.0.2")).unwrap().nud_state,
            NudState::REACHABLE
        );
        // A second reply with another address within locktime: the first wins.
        let other = ArpRepr {
            sha: EthernetAddress([2, 0, 0, 0, 0, 9]),
            ..reply
        };
        h.rx(now, PktType::Host, &other, ArpConf::default());
        assert_eq!(h.tbl.peek(ETH0, ip("198.18.0.2")).unwrap().ha, PEER_HA);
        // After locktime it replaces it.
        let later = now + Duration::from_secs(2);
        h.rx(later, PktType::Host, &other, ArpConf::default());
        assert_eq!(h.tbl.peek(ETH0, ip("198.18.0.2")).unwrap().ha, other.sha);
    }

    #[test]
    fn solicit_source_and_unicast_probes() {
        let net = net();
        let parms = NeighParms::default();
        let solicit = |probes, hint: Option<&str>| NeighAction::Solicit {
            ifindex: ETH0,
            target: ip("198.18.0.2"),
            probes,
            ha: PEER_HA,
            saddr_hint: hint.map(ip),
        };
        // A local source of the queued packet is used, even of another device.
        let f = arp_solicit(&solicit(3, Some("198.19.0.1")), &parms, &net, MY_HA, 0).unwrap();
        assert_eq!(f.arp.sip, ip("198.19.0.1"));
        // A forwarded packet's foreign source is not.
        let f = arp_solicit(&solicit(3, Some("198.19.200.7")), &parms, &net, MY_HA, 0).unwrap();
        assert_eq!(f.arp.sip, ip("198.18.0.1"));
        // Probes 0..3 (PROBE state) are unicast to the cached address.
        let f = arp_solicit(&solicit(0, None), &parms, &net, MY_HA, 0).unwrap();
        assert_eq!((f.eth_dst, f.arp.tha), (PEER_HA, EthernetAddress::ZERO));
        // arp_announce 1: eth1's address is not on the target's subnet of
        // eth0, so eth0's own address asks; 2: the hint is never used.
        let f = arp_solicit(&solicit(3, Some("198.19.0.1")), &parms, &net, MY_HA, 1).unwrap();
        assert_eq!(f.arp.sip, ip("198.18.0.1"));
        let f = arp_solicit(&solicit(3, Some("198.18.0.1")), &parms, &net, MY_HA, 1).unwrap();
        assert_eq!(f.arp.sip, ip("198.18.0.1"));
        let f = arp_solicit(&solicit(3, Some("198.19.0.1")), &parms, &net, MY_HA, 2).unwrap();
        assert_eq!(f.arp.sip, ip("198.18.0.1"));
    }

    #[test]
    fn malformed_packets_are_refused() {
        let good = arp_create(
            ArpOp::Request,
            ETH0,
            ip("198.18.0.1"),
            ip("198.18.0.2"),
            None,
            PEER_HA,
            None,
        )
        .to_bytes();
        assert_eq!(arp_parse(&good[ETH_HLEN..]).unwrap().tip, ip("198.18.0.1"));
        assert!(matches!(
            arp_parse(&good[ETH_HLEN..ETH_HLEN + 20]),
            Err(WireError::Truncated { .. })
        ));
        let mut bad = good;
        bad[ETH_HLEN + 7] = 3; // RARP request
        assert!(matches!(
            arp_parse(&bad[ETH_HLEN..]),
            Err(WireError::Unsupported { field: "ar_op", .. })
        ));
        let mut bad = good;
        bad[ETH_HLEN + 1] = 6; // hardware type 6
        assert!(matches!(
            arp_parse(&bad[ETH_HLEN..]),
            Err(WireError::Unsupported {
                field: "ar_hrd",
                ..
            })
        ));
        let mcast = arp_create(
            ArpOp::Request,
            ETH0,
            ip("224.0.0.1"),
            ip("198.18.0.2"),
            None,
            PEER_HA,
            None,
        )
        .to_bytes();
        assert!(matches!(
            arp_parse(&mcast[ETH_HLEN..]),
            Err(WireError::Unsupported {
                field: "ar_tip",
                ..
            })
        ));
    }

    #[test]
    fn gratuitous_arp_announces_each_address() {
        let net = net();
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let g = inetdev_send_gratuitous_arp(&net, ETH0, MY_HA);
        assert_eq!(g.len(), 1);
        let f = g[0];
        assert_eq!(
            (f.eth_dst, f.arp.operation, f.arp.sip, f.arp.tip),
            (
                EthernetAddress::BROADCAST,
                ArpOp::Request,
                ip("198.18.0.1"),
                ip("198.18.0.1")
            )
        );
        let skb = f.to_skb(&pool).unwrap();
        assert_eq!(
            (skb.len(), skb.protocol, skb.ifindex),
            (42, ETH_P_ARP, ETH0)
        );
    }

    /// `arp_ignore` and `arp_filter` on a host with eth0 (198.18.0.1/24)
    /// and eth1 (198.19.0.1/24, and 198.19.5.1 of host scope): requests arriving on eth0 for each
    /// address, from askers in and out of eth0's subnet.
    #[test]
    fn arp_ignore_and_arp_filter_choose_which_requests_get_answers() {
        let now = Instant::from_secs(1);
        let ask = |conf: ArpConf, sip: &str, tip: &str| {
            let mut h = Host::new(now);
            // A host-scope address on eth1 (`ip addr add ... scope host`).
            h.net
                .inet_rtm_newaddr(
                    InIfaddr::new(3, ip("198.19.5.1"), 32, "eth1").with_scope(RtScope::Host),
                )
                .unwrap();
            match h.rx(now, PktType::Broadcast, &request(sip, tip), conf) {
                ArpDecision::Reply(_) => "reply",
                ArpDecision::Filtered => "filtered",
                _ => "ignored",
            }
        };
        let ignore = |mode| ArpConf {
            ignore: mode,
            filter: false,
        };
        // 0 (Linux's default): any local address, on any device (ARP flux).
        assert_eq!(ask(ignore(0), "198.18.0.9", "198.19.0.1"), "reply");
        // 1: only eth0's own address.
        assert_eq!(ask(ignore(1), "198.18.0.9", "198.19.0.1"), "ignored");
        assert_eq!(ask(ignore(1), "198.18.7.9", "198.18.0.1"), "reply");
        // 2: and only for askers in its subnet.
        assert_eq!(ask(ignore(2), "198.18.0.9", "198.18.0.1"), "reply");
        assert_eq!(ask(ignore(2), "198.18.7.9", "198.18.0.1"), "ignored");
        // 3: any address but those of host scope.
        assert_eq!(ask(ignore(0), "198.18.0.9", "198.19.5.1"), "reply");
        assert_eq!(ask(ignore(3), "198.18.0.9", "198.19.5.1"), "ignored");
        assert_eq!(ask(ignore(3), "198.18.0.9", "198.19.0.1"), "reply");
        // 8: never.
        assert_eq!(ask(ignore(8), "198.18.0.9", "198.18.0.1"), "ignored");
        // arp_filter: the route back to an asker in eth1's subnet leaves
        // through eth1, not eth0.
        let filter = ArpConf {
            ignore: 0,
            filter: true,
        };
        assert_eq!(ask(filter, "198.18.0.9", "198.18.0.1"), "reply");
        assert_eq!(ask(filter, "198.19.0.9", "198.18.0.1"), "filtered");
    }
}
