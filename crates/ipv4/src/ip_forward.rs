//! IPv4 forwarding: datagrams routed through this host.
//!
//! Mirrors `ip_forward()`, `ip_forward_finish()` and `ip_exceeds_mtu()` in
//! `net/ipv4/ip_forward.c` with `ip_decrease_ttl()` of `include/net/ip.h`.
//!
//! ```text
//!  ip_rcv_finish (unicast route, ip_forward=1) ─▶ ip_forward
//!     ├─ not PACKET_HOST ─▶ drop
//!     ├─ TTL ≤ 1 ─▶ ICMP time exceeded, InHdrErrors
//!     ├─ DF and longer than the output MTU ─▶ ICMP frag needed (MTU), FragFails
//!     └─ TTL − 1 (incremental checksum) ─▶ NF_HOOK(FORWARD) ─▶ ip_forward_finish
//!            └─ ForwDatagrams ─▶ ip_output (POST_ROUTING, fragmentation, neighbour)
//! ```

use std::net::Ipv4Addr;

use netcore::{DropReason, IpMib, PktType, SkBuff, kfree_skb_reason};
use netfilter::{NfConsumed, NfInetHooks};
use softnet::NetRx;
use wire::{IP_DF, IcmpTimeExceeded, csum_replace2};

use crate::context::{Ipv4Context, Ipv4Net, nf_hook_ipv4};
use crate::icmp_rcv::icmp_send_net;
use crate::ip_output::ip_output_net;
use crate::protocol::IcmpError;
use crate::route::Rtable;

/// Whether a packet to forward is too big for the next hop's `mtu` and
/// may not be fragmented: longer than it, DF set, and (for a GRO packet)
/// with segments that would not fit either, whose network length is the
/// IP and transport headers plus `gso_size`. Mirrors `ip_exceeds_mtu()`
/// with `skb_gso_validate_network_len()`.
fn ip_exceeds_mtu(skb: &SkBuff, mtu: usize) -> bool {
    let d = skb.data();
    if skb.len() <= mtu || d.len() < 20 || u16::from_be_bytes([d[6], d[7]]) & IP_DF == 0 {
        return false;
    }
    if skb.is_gso() {
        let ihl = usize::from(d[0] & 0x0f) * 4;
        let thl = match d[9] {
            6 => d.get(ihl + 12).map_or(20, |b| usize::from(b >> 4) * 4),
            _ => 8,
        };
        return ihl + thl + usize::from(skb.gso_size) > mtu;
    }
    true
}

/// Forwards a datagram along `rt` (a unicast input route).
///
/// Mirrors `ip_forward()`: only link-layer unicasts to this host are
/// forwarded; a TTL of 1 or less gets ICMP time exceeded in transit
/// (`InHdrErrors`, `IP_INHDR`); a DF datagram longer than the output
/// device's MTU gets ICMP fragmentation needed with that MTU (`FragFails`,
/// `PKT_TOO_BIG`); otherwise the TTL is decremented with an incremental
/// checksum update and the datagram goes through the FORWARD hook to
/// `ip_forward_finish()` (`ForwDatagrams`) and `ip_output()`. `skb.data()`
/// starts at the IP header. Consumes `skb`.
///
/// # Deviations from Linux
///
/// No ICMP redirects (`ip_rt_send_redirect()`), no router-alert chain, no
/// source-route options.
#[tracing::instrument(level = "trace", name = "ip_forward", target = "netstack::ipv4", skip_all, fields(oif = rt.oif, len = skb.len()))]
pub fn ip_forward<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    mut skb: SkBuff,
    rt: &Rtable,
) -> NetRx {
    let cpu = ctx.smp_processor_id();
    if skb.pkt_type != PktType::Host {
        kfree_skb_reason(skb, DropReason::NotSpecified);
        return NetRx::Drop;
    }
    let d = skb.data();
    if d[8] <= 1 {
        net.mibs().inc(cpu, IpMib::InHdrErrors);
        let _ = icmp_send_net(
            net,
            ctx,
            &skb,
            IcmpError::TimeExceeded(IcmpTimeExceeded::Ttl),
        );
        kfree_skb_reason(skb, DropReason::IpInhdr);
        return NetRx::Drop;
    }
    let mtu = rt.mtu as usize;
    if ip_exceeds_mtu(&skb, mtu) {
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
        return NetRx::Drop;
    }
    // skb_cow() then ip_decrease_ttl().
    let Ok(h) = skb.data_mut() else {
        kfree_skb_reason(skb, DropReason::Nomem);
        return NetRx::Drop;
    };
    let old = u16::from_be_bytes([h[8], h[9]]);
    h[8] -= 1;
    let new = u16::from_be_bytes([h[8], h[9]]);
    let check = csum_replace2(u16::from_be_bytes([h[10], h[11]]), old, new);
    h[10..12].copy_from_slice(&check.to_be_bytes());
    let (saddr, daddr) = (
        Ipv4Addr::new(h[12], h[13], h[14], h[15]),
        Ipv4Addr::new(h[16], h[17], h[18], h[19]),
    );
    let in_ifindex = skb.ifindex;
    // Back out of the device it came in on: the sender could have used
    // the next hop itself (IPSKB_DOREDIRECT, ip_rt_send_redirect()). The
    // datagram is forwarded all the same.
    if rt.oif == in_ifindex && net.ip_rt_send_redirect_allowed(saddr, ctx.now()) {
        let gateway = rt.rt_nexthop(daddr);
        let _ = icmp_send_net(net, ctx, &skb, IcmpError::Redirect { gateway });
    }
    let rt = *rt;
    match nf_hook_ipv4(
        ctx,
        NfInetHooks::Forward,
        in_ifindex,
        rt.oif,
        skb,
        |ctx, skb| ip_forward_finish(net, ctx, skb, &rt, in_ifindex),
    ) {
        Ok(r) => r,
        Err(NfConsumed::Dropped(_) | NfConsumed::QueueFailed(_)) => NetRx::Drop,
        Err(NfConsumed::Stolen | NfConsumed::Queued) => NetRx::Success,
    }
}

/// Mirrors `ip_forward_finish()`: counts `ForwDatagrams` and sends the
/// datagram with `dst_output()` → `ip_output()`.
pub(crate) fn ip_forward_finish<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    skb: SkBuff,
    rt: &Rtable,
    in_ifindex: u32,
) -> NetRx {
    let cpu = ctx.smp_processor_id();
    net.mibs().inc(cpu, IpMib::ForwDatagrams);
    match ip_output_net(net, ctx, skb, rt, in_ifindex) {
        Ok(()) => NetRx::Success,
        Err(_) => NetRx::Drop,
    }
}
