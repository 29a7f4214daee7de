//! ICMP on the wire: receiving messages (echo, errors for the transports)
//! and sending the ones [`icmp.rs`](crate::icmp_build_error) builds.
//!
//! Mirrors `icmp_rcv()`, `icmp_echo()`, `icmp_unreach()`,
//! `icmp_socket_deliver()`, `icmp_discard()`, `icmp_reply()`'s routing and
//! `__icmp_send()`'s routing and transmit in `net/ipv4/icmp.c`.
//!
//! ```text
//!  ip_local_deliver_finish ─▶ icmp_rcv ─ InMsgs, checksum (InCsumErrors), InType<N>
//!        ├─ echo request ─▶ icmp_echo ─▶ icmp_build_reply ─▶ route back ─▶ ip_local_out
//!        ├─ dest unreach / time exceeded / param problem ─▶ icmp_unreach
//!        │        └─▶ icmp_socket_deliver ─▶ inet_protos[inner proto].err_handler
//!        └─ others (echo reply, timestamp, …) ─▶ consumed
//!  icmp_send(skb_in, error) ─▶ source choice, route back ─▶ icmp_build_error ─▶ ip_local_out
//! ```

use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{
    DropReason, IcmpMib, IcmpMsgDir, IpSummed, SkBuff, Sysctl, consume_skb, kfree_skb_reason,
};
use wire::{IpProtocol, Ipv4Packet, ip_compute_csum};

use crate::context::{Ipv4Context, Ipv4Net, LOOPBACK_IFINDEX};
use crate::icmp::{IcmpSendCtx, IcmpSendError, icmp_build_error, icmp_build_reply};
use crate::ip_output::ip_local_out_net;
use crate::protocol::{IcmpErrInfo, IcmpError, NetProtocol};
use crate::route::{Flowi4, RtScope, RtnType};

/// `NR_ICMP_TYPES`: the highest known ICMP type.
const NR_ICMP_TYPES: u8 = 18;
/// `NR_ICMP_UNREACH`: the highest destination-unreachable code.
const NR_ICMP_UNREACH: u8 = 15;

/// Sends an ICMP error about `skb_in` (which starts at its IP header).
///
/// Mirrors `icmp_send()` → `__icmp_send()`: the source is the offending
/// datagram's destination when that is local, else chosen by the route
/// back (with `icmp_errors_use_inbound_ifaddr`, for a datagram that
/// came in from outside: the receiving device's address); the message is built by
/// [`icmp_build_error`] (which applies the suppression rules and rate
/// limits and counts `OutMsgs` and `OutType<N>`) and sent with
/// [`ip_local_out`](crate::ip_local_out). `skb_in` is only read.
///
/// # Errors
///
/// Why nothing was sent ([`IcmpSendError`]).
pub fn icmp_send<C: Ipv4Context>(
    ctx: &mut C,
    skb_in: &SkBuff,
    error: IcmpError,
) -> Result<(), IcmpSendError> {
    let net = Arc::clone(ctx.ipv4());
    icmp_send_net(&net, ctx, skb_in, error)
}

pub(crate) fn icmp_send_net<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    skb_in: &SkBuff,
    error: IcmpError,
) -> Result<(), IcmpSendError> {
    let d = skb_in.data();
    if d.len() < 20 {
        return Err(IcmpSendError::Truncated);
    }
    let iph_saddr = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
    let iph_daddr = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    let (rt, saddr, dst_broadcast) = {
        let netns = net.netns().read();
        let daddr_type = netns.inet_addr_type(iph_daddr);
        let saddr = if daddr_type == RtnType::Local {
            iph_daddr
        } else if net.sysctl().get_int(Sysctl::ICMP_ERRORS_USE_INBOUND_IFADDR) != 0
            && skb_in.ifindex != LOOPBACK_IFINDEX
            && netns.inet_addr_type(iph_saddr) != RtnType::Local
        {
            // A datagram that came in from outside: the error leaves from
            // the address of the device it came in on.
            netns
                .devices
                .inet_select_addr(skb_in.ifindex, iph_saddr, RtScope::Link)
                .unwrap_or(Ipv4Addr::UNSPECIFIED)
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        let mut fl4 = Flowi4::new(iph_saddr, IpProtocol::Icmp.into());
        fl4.saddr = saddr;
        let rt = netns
            .ip_route_output_key(&mut fl4)
            .map_err(|_| IcmpSendError::NoRoute)?;
        (
            rt,
            fl4.saddr,
            matches!(daddr_type, RtnType::Broadcast | RtnType::Multicast),
        )
    };
    let now = ctx.now();
    let cpu = ctx.smp_processor_id();
    let sctx = IcmpSendCtx {
        saddr,
        dst_broadcast,
        mtu: rt.mtu as usize,
        ident: net.ip_select_ident(iph_saddr, saddr, IpProtocol::Icmp.into(), 1, now),
        loopback: rt.oif == LOOPBACK_IFINDEX,
    };
    let skb = {
        let mut limit = net.icmp_limit().lock();
        icmp_build_error(
            skb_in,
            error.message(),
            &sctx,
            &mut limit,
            net.sysctl(),
            net.mibs(),
            cpu,
            now,
            net.pool(),
        )?
    };
    tracing::trace!(target: "netstack::ipv4", ?error, saddr = %saddr, daddr = %iph_saddr, "icmp_send");
    let _ = ip_local_out_net(net, ctx, skb, &rt);
    Ok(())
}

/// The ICMP protocol handler registered for protocol 1 by
/// [`inet_init`](crate::inet_init).
///
/// Mirrors `icmp_protocol` (`.handler = icmp_rcv`) in `net/ipv4/af_inet.c`.
#[derive(Debug)]
pub struct IcmpProtocol;

impl<C: Ipv4Context> NetProtocol<C> for IcmpProtocol {
    fn handler(&self, skb: SkBuff, ctx: &mut C) -> Result<(), (SkBuff, IcmpError)> {
        let _ = icmp_rcv(ctx, skb);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "icmp_rcv"
    }
}

/// Receives one ICMP message (`skb.data()` at the ICMP header, network
/// header set).
///
/// Mirrors `icmp_rcv()`: counts `InMsgs`; verifies the checksum unless the
/// device did (`CHECKSUM_UNNECESSARY`) — a bad one counts `InCsumErrors`
/// and `InErrors`; counts `InType<N>`; drops unknown types (`InErrors`) and
/// messages to a broadcast or multicast address other than echo,
/// timestamp and address mask (echo to broadcast only when
/// `icmp_echo_ignore_broadcasts` is 0); then hands echo requests to
/// `icmp_echo()` and errors to `icmp_unreach()`. Consumes `skb`. Returns
/// whether it was consumed (`true`) or dropped.
///
/// # Deviations from Linux
///
/// No ping or raw sockets: echo replies (`ping_rcv()`), timestamps and
/// address-mask messages are counted and consumed; redirects and source
/// quench are consumed without effect; no extended echo (PROBE).
#[tracing::instrument(level = "trace", name = "icmp_rcv", target = "netstack::ipv4", skip_all, fields(len = skb.len()))]
pub fn icmp_rcv<C: Ipv4Context>(ctx: &mut C, skb: SkBuff) -> bool {
    let net = Arc::clone(ctx.ipv4());
    let cpu = ctx.smp_processor_id();
    let mibs = net.mibs();
    mibs.inc(cpu, IcmpMib::InMsgs);
    let drop_err = |skb: SkBuff, reason: DropReason| {
        mibs.inc(cpu, IcmpMib::InErrors);
        kfree_skb_reason(skb, reason);
        false
    };
    if skb.ip_summed != IpSummed::Unnecessary && ip_compute_csum(skb.data()) != 0 {
        mibs.inc(cpu, IcmpMib::InCsumErrors);
        return drop_err(skb, DropReason::IcmpCsum);
    }
    if skb.len() < 8 {
        return drop_err(skb, DropReason::PktTooSmall);
    }
    let icmp_type = skb.data()[0];
    mibs.icmpmsg_inc(IcmpMsgDir::In, icmp_type);
    if icmp_type > NR_ICMP_TYPES {
        return drop_err(skb, DropReason::UnhandledProto);
    }
    let Some(iph) = skb.network_header() else {
        return drop_err(skb, DropReason::IpInhdr);
    };
    if iph.len() < 20 {
        return drop_err(skb, DropReason::IpInhdr);
    }
    let daddr = Ipv4Addr::new(iph[16], iph[17], iph[18], iph[19]);
    let to_broadcast = skb.ifindex != LOOPBACK_IFINDEX
        && (daddr.is_broadcast()
            || daddr.is_multicast()
            || net.netns().read().inet_addr_type(daddr) == RtnType::Broadcast);
    if to_broadcast {
        // ICMP_ECHO 8, ICMP_TIMESTAMP 13, ICMP_ADDRESS 17, ICMP_ADDRESSREPLY 18.
        if matches!(icmp_type, 8 | 13)
            && net.sysctl().get_int(Sysctl::ICMP_ECHO_IGNORE_BROADCASTS) != 0
        {
            return drop_err(skb, DropReason::InvalidProto);
        }
        if !matches!(icmp_type, 8 | 13 | 17 | 18) {
            return drop_err(skb, DropReason::InvalidProto);
        }
    }
    match icmp_type {
        8 => icmp_echo(&net, ctx, skb, to_broadcast),
        // icmp_unreach(), and icmp_redirect() for 5: the same checks of
        // the quoted header, then the protocol's err_handler.
        3 | 4 | 5 | 11 | 12 => icmp_unreach(&net, ctx, skb),
        _ => {
            // icmp_discard(), ping_rcv() without a ping socket, timestamps.
            consume_skb(skb);
            true
        }
    }
}

/// Mirrors `icmp_echo()`: unless `icmp_echo_ignore_all`, answers with an
/// echo reply (`icmp_reply()`: routed back to the sender, from the
/// address the request went to — for a broadcast request, the receiving
/// device's address).
fn icmp_echo<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    mut skb: SkBuff,
    to_broadcast: bool,
) -> bool {
    if net.sysctl().get_int(Sysctl::ICMP_ECHO_IGNORE_ALL) != 0 {
        consume_skb(skb);
        return true;
    }
    let Some(off) = skb.network_offset().filter(|&o| o <= 0) else {
        kfree_skb_reason(skb, DropReason::IpInhdr);
        return false;
    };
    if skb.push(off.unsigned_abs()).is_err() || skb.len() < 20 {
        kfree_skb_reason(skb, DropReason::IpInhdr);
        return false;
    }
    let d = skb.data();
    let (req_saddr, req_daddr) = (
        Ipv4Addr::new(d[12], d[13], d[14], d[15]),
        Ipv4Addr::new(d[16], d[17], d[18], d[19]),
    );
    let now = ctx.now();
    let cpu = ctx.smp_processor_id();
    let routed = {
        let netns = net.netns().read();
        let mut fl4 = Flowi4::new(req_saddr, IpProtocol::Icmp.into());
        if !to_broadcast {
            fl4.saddr = req_daddr;
        }
        netns
            .ip_route_output_key(&mut fl4)
            .map(|rt| (rt, fl4.saddr))
    };
    let Ok((rt, saddr)) = routed else {
        consume_skb(skb);
        return true;
    };
    let ident = net.ip_select_ident(req_saddr, saddr, IpProtocol::Icmp.into(), 1, now);
    let Ok(mut reply) = icmp_build_reply(&skb, ident, net.sysctl(), net.mibs(), cpu, net.pool())
    else {
        consume_skb(skb);
        return true;
    };
    if saddr != req_daddr
        && let Ok(b) = reply.data_mut()
        && let Ok(mut p) = Ipv4Packet::new_checked(&mut b[..])
    {
        p.set_src_addr(saddr);
    }
    consume_skb(skb);
    let _ = ip_local_out_net(net, ctx, reply, &rt);
    true
}

/// Mirrors `icmp_unreach()` → `icmp_socket_deliver()`: checks the quoted
/// header (IHL ≥ 5, the header and 8 bytes present, else `InErrors`),
/// works out `info` (the MTU of a fragmentation-needed message as
/// `ip_no_pmtu_disc` allows, the pointer of a parameter problem), ignores
/// unknown unreachable codes, and calls the quoted protocol's
/// `err_handler`.
fn icmp_unreach<C: Ipv4Context>(net: &Ipv4Net<C>, ctx: &mut C, skb: SkBuff) -> bool {
    let cpu = ctx.smp_processor_id();
    let d = skb.data();
    let (icmp_type, code) = (d[0], d[1]);
    let quoted = &d[8..];
    if quoted.len() < 20 {
        net.mibs().inc(cpu, IcmpMib::InErrors);
        kfree_skb_reason(skb, DropReason::PktTooSmall);
        return false;
    }
    let ihl = usize::from(quoted[0] & 0x0f) * 4;
    if ihl < 20 {
        net.mibs().inc(cpu, IcmpMib::InErrors);
        kfree_skb_reason(skb, DropReason::IpInhdr);
        return false;
    }
    let mut info = 0u32;
    if icmp_type == 3 {
        if code == 4 {
            match net.sysctl().get_int(Sysctl::IP_NO_PMTU_DISC) {
                2 => {
                    consume_skb(skb);
                    return true;
                }
                // 1: ignore the MTU; 3: only protocols that validate
                // the tag (none here).
                1 | 3 => {}
                _ => info = u32::from(u16::from_be_bytes([d[6], d[7]])),
            }
        }
        if code > NR_ICMP_UNREACH {
            consume_skb(skb);
            return true;
        }
    } else if icmp_type == 12 {
        info = u32::from(d[4]);
    } else if icmp_type == 5 {
        // icmp_redirect(): the new gateway (icmp_hdr(skb)->un.gateway).
        info = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    }
    if quoted.len() < ihl + 8 {
        net.mibs().inc(cpu, IcmpMib::InErrors);
        consume_skb(skb);
        return true;
    }
    let protocol = quoted[9];
    let from = skb
        .network_header()
        .filter(|h| h.len() >= 20)
        .map_or(Ipv4Addr::UNSPECIFIED, |h| {
            Ipv4Addr::new(h[12], h[13], h[14], h[15])
        });
    if let Some(prot) = net.inet_protocol(protocol) {
        let info = IcmpErrInfo {
            icmp_type,
            code,
            info,
            from,
            ifindex: skb.ifindex,
            quoted,
        };
        prot.err_handler(&info, ctx);
    }
    consume_skb(skb);
    true
}
