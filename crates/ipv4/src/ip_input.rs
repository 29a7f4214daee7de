//! IPv4 receive path: validation, PRE_ROUTING, the input route, local
//! delivery (reassembly, LOCAL_IN, the protocol table).
//!
//! Mirrors `net/ipv4/ip_input.c` (`ip_rcv()`, `ip_rcv_core()`,
//! `ip_rcv_finish()`, `ip_rcv_finish_core()`, `ip_local_deliver()`,
//! `ip_local_deliver_finish()`, `ip_protocol_deliver_rcu()`) and
//! `ip_error()` of `net/ipv4/route.c`.
//!
//! ```text
//!  netif_receive_skb ─▶ ip_rcv ─▶ ip_rcv_core ── InReceives, InOctets, ECN counts
//!     │   OTHERHOST │ version/IHL (InHdrErrors) │ csum (InCsumErrors) │ tot_len (InTruncatedPkts)
//!     └─▶ NF_HOOK(PRE_ROUTING) ─▶ ip_rcv_finish ─▶ ip_route_input
//!           ├─ local/broadcast ─▶ ip_local_deliver ─▶ ip_defrag ─▶ NF_HOOK(LOCAL_IN)
//!           │      └─▶ ip_local_deliver_finish ─▶ inet_protos[proto].handler ── InDelivers
//!           │              (none: ICMP protocol unreachable, InUnknownProtos)
//!           ├─ unicast, forwarding on ─▶ ip_forward
//!           └─ error ─▶ ip_error (InAddrErrors / InNoRoutes, ICMP unreachable when forwarding)
//!
//! ```
//!
//! The stages after `ip_rcv_core` form one chain (`ip_rcv_chain`), entered
//! at `ip_rcv()`, at `ip_rcv_finish()` after a PRE_ROUTING hook, at
//! `ip_local_deliver()` and at `ip_local_deliver_finish()` after a
//! LOCAL_IN hook. Each stage decides once; whatever the common case (no
//! hook, IHL 5, not a fragment, daddr one of ours) does not need is a call
//! out of line. Tracing is an observer of the same chain: with it on, the
//! chain runs inside `ip_rcv` and `ip_local_deliver` spans and emits the
//! stage events.

use core::marker::PhantomData;
use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{
    DropReason, Errno, IpExtMib, IpMib, IpSummed, NetMibsCpu, PktType, SkBuff, Sysctl,
    kfree_skb_reason,
};
use netfilter::{NfConsumed, NfHookState, NfInetHooks};
use softnet::{NetRx, PacketType, PtypeMatch};
use wire::{IcmpDestUnreach, Ipv4Packet, ip_fast_csum};

use crate::context::{Ipv4Context, Ipv4Net, LOOPBACK_IFINDEX, LOOPBACK_MTU, nf_hook_ipv4};
use crate::icmp_rcv::icmp_send_net;
use crate::ip_forward::ip_forward;
use crate::ip_fragment::FragAction;
use crate::ip_output::ip_is_fragment;
use crate::protocol::IcmpError;
use crate::route::{Flowi4, RouteInputError, RpFilter, Rtable, RtnType};

/// The IPv4 packet handler registered with `dev_add_pack` by
/// [`inet_init`](crate::inet_init).
///
/// Mirrors `ip_packet_type` (`.type = ETH_P_IP, .func = ip_rcv`) in
/// `net/ipv4/af_inet.c`. Holds the host's [`Ipv4Net`] so the packet path
/// needs no reference count.
pub struct IpRcv<C: ?Sized> {
    net: Arc<Ipv4Net<C>>,
    _ctx: PhantomData<fn(&mut C)>,
}

impl<C: ?Sized> IpRcv<C> {
    /// The handler for `net`.
    pub fn new(net: Arc<Ipv4Net<C>>) -> IpRcv<C> {
        IpRcv {
            net,
            _ctx: PhantomData,
        }
    }
}

impl<C: ?Sized> core::fmt::Debug for IpRcv<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IpRcv")
    }
}

impl<C: Ipv4Context> PacketType<C> for IpRcv<C> {
    fn ptype(&self) -> PtypeMatch {
        PtypeMatch::Type(netcore::ETH_P_IP)
    }

    fn func(&self, skb: SkBuff, ctx: &mut C) -> NetRx {
        ip_rcv_net(&self.net, ctx, skb)
    }

    /// IPv4 takes a GRO packet as it is: the fast path to a protocol that
    /// reads fragments (TCP) copies nothing; every other stage makes the
    /// packet linear first ([`ip_rcv_linearize`]).
    fn accepts_nonlinear(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "ip_rcv"
    }
}

/// The bytes the linear part of a nonlinear datagram must hold for the
/// fast path: the longest IPv4 header and the longest TCP header, as
/// `pskb_may_pull()` makes sure of in `ip_rcv_core()` and `tcp_v4_rcv()`.
const IP_RCV_HEAD_MIN: usize = 60 + 60;

/// Makes a nonlinear datagram linear for a stage that reads it whole (a
/// netfilter hook, reassembly, the input route's slow path, a protocol
/// that does not read fragments), as `skb_linearize()` /
/// `pskb_may_pull()` would; `None` (counted `InDiscards`, freed with
/// `NOMEM`) when no buffer can hold it.
#[cold]
#[inline(never)]
fn ip_rcv_linearize(mib: NetMibsCpu<'_>, mut skb: SkBuff) -> Option<SkBuff> {
    if skb.linearize().is_err() {
        mib.inc(IpMib::InDiscards);
        kfree_skb_reason(skb, DropReason::Nomem);
        return None;
    }
    Some(skb)
}

/// Receives one IPv4 datagram from the device layer.
///
/// Mirrors `ip_rcv()`: [`ip_rcv_core`]'s checks, then
/// `NF_HOOK(PRE_ROUTING)` → `ip_rcv_finish()` (input route, options,
/// `InMcastPkts`/`InBcastPkts`, then local delivery, forwarding or
/// `ip_error()`). `skb.data()` starts at the IP header (after
/// `eth_type_trans()`), `skb.ifindex` is the receiving device. Consumes
/// `skb`; called on the receiving CPU in softirq context.
///
/// Counters: `InReceives`, `InOctets`, `InNoECTPkts`…`InCEPkts`,
/// `InHdrErrors`, `InCsumErrors`, `InTruncatedPkts`, `InDiscards`,
/// `InAddrErrors`, `InNoRoutes`, `InDelivers`, `InUnknownProtos`, and the
/// reassembly and forwarding counters. Drops: `OTHERHOST`, `IP_INHDR`,
/// `IP_CSUM`, `PKT_TOO_SMALL`, `NETFILTER_DROP`, `IP_INADDRERRORS`,
/// `IP_INNOROUTES`, `IP_NOPROTO`, …
///
/// # Deviations from Linux
///
/// The header checksum is not recomputed when the device set
/// `CHECKSUM_UNNECESSARY` (Linux always runs `ip_fast_csum()`; our NIC
/// model validates the IPv4 header when it says so). A plain unicast
/// datagram for one of our addresses goes to local delivery without a FIB
/// lookup (the local /32 would win it), with the same checks and counters;
/// `docs/ipv4.md` §7 lists what that skips and why it may. The netfilter
/// "no hook" events are emitted only with `netstack::ipv4` tracing on.
pub fn ip_rcv<C: Ipv4Context>(ctx: &mut C, skb: SkBuff) -> NetRx {
    let net = Arc::clone(ctx.ipv4());
    ip_rcv_net(&net, ctx, skb)
}

const ECN_MIBS: [IpExtMib; 4] = [
    IpExtMib::InNoECTPkts,
    IpExtMib::InECT1Pkts,
    IpExtMib::InECT0Pkts,
    IpExtMib::InCEPkts,
];

/// The fields of the IP header the receive path reads, taken once by
/// [`ip_rcv_core`] and carried down the fast path (Linux reads them through
/// `ip_hdr(skb)` at each step; here that would mean slicing the skb
/// again). Re-read after a netfilter hook ran, since a hook may rewrite the
/// header.
#[derive(Clone, Copy, Debug)]
struct RcvHdr {
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    /// Header length in bytes (`ihl * 4`).
    ihl: usize,
    protocol: u8,
    /// MF set or a non-zero offset (`ip_is_fragment()`).
    frag: bool,
}

impl RcvHdr {
    /// Reads the fields from a header `ip_rcv_core` has validated (or, on
    /// a slow path, from one that may have been rewritten): `None` when
    /// `d` is too short for the header it announces.
    #[inline]
    fn parse(d: &[u8]) -> Option<RcvHdr> {
        let h: &[u8; 20] = d.first_chunk()?;
        let ihl = usize::from(h[0] & 0x0f) * 4;
        if ihl < 20 || d.len() < ihl {
            return None;
        }
        Some(RcvHdr {
            saddr: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            daddr: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            ihl,
            protocol: h[9],
            frag: ip_is_fragment(h),
        })
    }
}

/// Whether a 20-byte IP header (no options) sums to a correct checksum.
///
/// The common case of `ip_fast_csum()` (`arch/x86/include/asm/checksum_64.h`),
/// which Linux also unrolls for `ihl == 5`: five 32-bit words added into a
/// 64-bit accumulator, folded to 16 bits; a header whose checksum field is
/// right sums to all ones. Words are read little-endian: the ones'
/// complement sum is byte-order independent up to a byte swap, and all ones
/// is the same either way.
#[inline(always)]
fn ip_fast_csum20_ok(h: &[u8; 20]) -> bool {
    let w = |i: usize| u64::from(u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]));
    // Below 5 * 2^32: no overflow. Fold 64 → 32 → 16 bits, each time
    // adding the carry back in (end-around carry), which cannot carry
    // again.
    let s = w(0) + w(4) + w(8) + w(12) + w(16);
    #[allow(clippy::cast_possible_truncation)] // the halves, on purpose
    let (lo, hi) = (s as u32, (s >> 32) as u32);
    let (s, c) = lo.overflowing_add(hi);
    let s = s + u32::from(c);
    #[allow(clippy::cast_possible_truncation)] // the halves, on purpose
    let (lo, hi) = (s as u16, (s >> 16) as u16);
    let (s, c) = lo.overflowing_add(hi);
    s + u16::from(c) == 0xffff
}

/// Validates the IP header and trims link-layer padding; on `Err` the
/// caller frees the skb with the reason (`kfree_skb_reason`).
///
/// Mirrors `ip_rcv_core()`, check for check and counter for counter:
/// `OTHERHOST` frames are dropped before anything is counted; then
/// `InReceives`/`InOctets`; fewer than 20 bytes, IHL < 5 or version ≠ 4
/// are `InHdrErrors`; the ECN codepoint is counted; a header longer than
/// the data is `InHdrErrors`; a bad checksum is `InCsumErrors` and
/// `InHdrErrors`; a total length beyond the data is `InTruncatedPkts`
/// (`PKT_TOO_SMALL`), one shorter than the header `InHdrErrors`. Sets the
/// network and transport headers.
pub fn ip_rcv_core<C: ?Sized>(
    net: &Ipv4Net<C>,
    cpu: usize,
    skb: &mut SkBuff,
) -> Result<(), DropReason> {
    let mib = net.mibs().this_cpu(cpu);
    let (hdr, tot) = ip_rcv_core_check(mib, skb)?;
    if skb.len() > tot && skb.trim(tot).is_err() {
        mib.inc(IpMib::InDiscards);
        return Err(DropReason::NotSpecified);
    }
    ip_rcv_core_headers(mib, skb, hdr.ihl)
}

/// The checks and counters of [`ip_rcv_core`] on this CPU's counters,
/// reading the skb only: the header fields the rest of the path reads and
/// the datagram's total length (the caller trims to it).
///
/// The writes come after, from the caller: the trim ([`ip_rcv_trim`] on
/// the chain) and the header offsets ([`ip_rcv_core_headers`]).
#[inline(always)]
fn ip_rcv_core_check(mib: NetMibsCpu<'_>, skb: &SkBuff) -> Result<(RcvHdr, usize), DropReason> {
    if skb.pkt_type == PktType::OtherHost {
        return Err(DropReason::OtherHost);
    }
    let len = skb.len();
    mib.inc(IpMib::InReceives);
    mib.add(IpExtMib::InOctets, len as u64);
    let ip_summed = skb.ip_summed;
    let gso_segs = skb.gso_segs;
    let d = skb.data();
    let Some(h) = d.first_chunk::<20>() else {
        return Err(ip_rcv_hdr_error(mib, DropReason::IpInhdr));
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < 20 || h[0] >> 4 != 4 {
        return Err(ip_rcv_hdr_error(mib, DropReason::IpInhdr));
    }
    mib.add(ECN_MIBS[usize::from(h[1] & 3)], u64::from(gso_segs.max(1)));
    if d.len() < ihl {
        return Err(ip_rcv_hdr_error(mib, DropReason::IpInhdr));
    }
    if ip_summed != IpSummed::Unnecessary
        && !(if ihl == 20 {
            ip_fast_csum20_ok(h)
        } else {
            ip_fast_csum(&d[..ihl]) == 0
        })
    {
        mib.inc(IpExtMib::InCsumErrors);
        return Err(ip_rcv_hdr_error(mib, DropReason::IpCsum));
    }
    let tot = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if len < tot {
        mib.inc(IpExtMib::InTruncatedPkts);
        return Err(DropReason::PktTooSmall);
    }
    if tot < ihl {
        return Err(ip_rcv_hdr_error(mib, DropReason::IpInhdr));
    }
    let hdr = RcvHdr {
        saddr: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
        daddr: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
        ihl,
        protocol: h[9],
        frag: ip_is_fragment(h),
    };
    Ok((hdr, tot))
}

/// A header [`ip_rcv_core_check`] refuses: `InHdrErrors`, and the reason
/// handed back.
#[inline(always)]
fn ip_rcv_hdr_error(mib: NetMibsCpu<'_>, reason: DropReason) -> DropReason {
    mib.inc(IpMib::InHdrErrors);
    reason
}

/// The writes of [`ip_rcv_core`] after its checks and the trim: the
/// network header at the data, the transport header `ihl` bytes on.
#[inline(always)]
fn ip_rcv_core_headers(
    mib: NetMibsCpu<'_>,
    skb: &mut SkBuff,
    ihl: usize,
) -> Result<(), DropReason> {
    skb.reset_network_header();
    if skb.set_transport_header(ihl).is_err() {
        mib.inc(IpMib::InHdrErrors);
        return Err(DropReason::IpInhdr);
    }
    Ok(())
}

/// `pskb_trim_rcsum()` in [`ip_rcv_core`]: cuts link-layer padding off a
/// datagram shorter than its frame; `None` (counted `InDiscards`, the skb
/// freed) when that fails. Takes and gives back the skb by value, so the
/// chain lends its skb to no out-of-line call on the way to the handler
/// (the skb is still copied into the handler: `docs/ipv4.md` §7 says why).
#[inline(never)]
fn ip_rcv_trim(mib: NetMibsCpu<'_>, mut skb: SkBuff, tot: usize) -> Option<SkBuff> {
    if skb.trim(tot).is_err() {
        mib.inc(IpMib::InDiscards);
        kfree_skb_reason(skb, DropReason::NotSpecified);
        return None;
    }
    Some(skb)
}

fn nf_netrx(r: Result<NetRx, NfConsumed>) -> NetRx {
    match r {
        Ok(r) => r,
        Err(NfConsumed::Dropped(_) | NfConsumed::QueueFailed(_)) => NetRx::Drop,
        Err(NfConsumed::Stolen | NfConsumed::Queued) => NetRx::Success,
    }
}

/// Whether the receive path runs with its spans and events: the `TRACE`
/// level of `netstack::ipv4` is enabled.
#[inline(always)]
fn trace_on() -> bool {
    tracing::enabled!(target: "netstack::ipv4", tracing::Level::TRACE)
}

/// `ip_rcv` for the host `net`.
///
/// The receive path is one chain of stages ([`ip_rcv_chain`]), each
/// mirroring its Linux twin and each making its checks once. The chain is
/// generic over `TRACE`, its observer: with tracing off it compiles into
/// this function's body with no span and no event; with tracing on
/// ([`ip_rcv_traced`]) the same stages run inside an `ip_rcv` span and
/// emit their events. What a datagram needs beyond the common case — a
/// hook, a FIB lookup, options, reassembly, an ICMP error — is a call out
/// of line, so the common case moves the skb once, into the protocol's
/// handler.
///
/// The common case is a whole datagram without options, for one of our
/// unicast addresses, from a sane source, with no hook at PRE_ROUTING or
/// LOCAL_IN. Every stage it passes without work would have done nothing
/// to it: the hooks are empty (`nf_hooks_needed`), the FIB would answer
/// with the local table's /32 (which wins every lookup), there are no
/// options to compile and nothing to reassemble.
#[inline]
pub(crate) fn ip_rcv_net<C: Ipv4Context>(net: &Ipv4Net<C>, ctx: &mut C, skb: SkBuff) -> NetRx {
    // The chain itself turns to ip_rcv_traced() when tracing is on: a
    // by-value skb passed on unchanged costs nothing, but one passed on
    // after a test is copied.
    ip_rcv_chain::<false, { RcvStage::RcvCore as u8 }, C>(net, ctx, skb)
}

/// [`ip_rcv_net`] with tracing on: the same stages inside an `ip_rcv`
/// span, with their events.
#[cold]
#[inline(never)]
fn ip_rcv_traced<C: Ipv4Context>(net: &Ipv4Net<C>, ctx: &mut C, skb: SkBuff) -> NetRx {
    let _span = tracing::trace_span!(target: "netstack::ipv4", "ip_rcv", ifindex = skb.ifindex, len = skb.len()).entered();
    ip_rcv_chain::<true, { RcvStage::RcvCore as u8 }, C>(net, ctx, skb)
}

/// The stages of the receive path, in the order a datagram passes them.
/// Each entry point of the path starts [`ip_rcv_chain`] at its own stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
enum RcvStage {
    /// [`ip_rcv_core`]'s checks and counters, from `ip_rcv()`.
    RcvCore,
    /// `NF_HOOK(PRE_ROUTING, …, ip_rcv_finish)`, from `ip_rcv()`.
    PreRouting,
    /// `ip_rcv_finish()`: the input route and options (after a
    /// PRE_ROUTING hook accepted the datagram).
    RcvFinish,
    /// `ip_local_deliver()`: its span when tracing, then reassembly.
    LocalDeliver,
    /// `ip_defrag()` inside `ip_local_deliver()`.
    Defrag,
    /// `NF_HOOK(LOCAL_IN, …, ip_local_deliver_finish)` (a reassembled
    /// datagram continues here).
    LocalIn,
    /// `ip_local_deliver_finish()`: the protocol's handler (after a
    /// LOCAL_IN hook accepted the datagram).
    LocalDeliverFinish,
}

impl RcvStage {
    /// The stage whose `as u8` is `n` (a const generic argument cannot be
    /// an enum on stable Rust); past the last, the last.
    const fn from_u8(n: u8) -> RcvStage {
        match n {
            0 => RcvStage::RcvCore,
            1 => RcvStage::PreRouting,
            2 => RcvStage::RcvFinish,
            3 => RcvStage::LocalDeliver,
            4 => RcvStage::Defrag,
            5 => RcvStage::LocalIn,
            _ => RcvStage::LocalDeliverFinish,
        }
    }
}

/// The receive path from stage `from` on: `ip_rcv_core()` →
/// `NF_HOOK(PRE_ROUTING)` → `ip_rcv_finish()` → `ip_local_deliver()`
/// (`ip_defrag()`, `NF_HOOK(LOCAL_IN)`) → `ip_local_deliver_finish()`.
/// `skb.data()` starts at the IP header; a stage after
/// [`RcvStage::RcvCore`] reads the header again (a hook may have
/// rewritten it) and counts one too short for itself as `InHdrErrors`.
///
/// One function body per entry point (`FROM`, a [`RcvStage`] as `u8`,
/// and `TRACE` are constants), so the skb stays where the caller put it
/// from the first stage to the handler: a by-value skb handed to a stage
/// function the compiler inlines is still copied, 112 bytes each time.
/// Each stage's decision is its own function ([`ip_rcv_core`],
/// [`no_hooks`], [`ip_rcv_finish_core`]); what the common case does not
/// need leaves the chain through an out-of-line call.
#[inline(never)]
fn ip_rcv_chain<const TRACE: bool, const FROM: u8, C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    mut skb: SkBuff,
) -> NetRx {
    let from = RcvStage::from_u8(FROM);
    if !TRACE && from == RcvStage::RcvCore && trace_on() {
        return ip_rcv_traced(net, ctx, skb);
    }
    let mib = net.mibs().this_cpu(ctx.smp_processor_id());
    if from == RcvStage::RcvCore
        && skb.is_nonlinear()
        && skb.headlen() < IP_RCV_HEAD_MIN.min(skb.len())
    {
        // pskb_may_pull(): the headers into the linear part.
        match ip_rcv_linearize(mib, skb) {
            Some(s) => skb = s,
            None => return NetRx::Drop,
        }
    }
    let hdr = if from == RcvStage::RcvCore {
        match ip_rcv_core_check(mib, &skb) {
            Ok((hdr, tot)) => {
                if skb.len() > tot {
                    match ip_rcv_trim(mib, skb, tot) {
                        Some(s) => skb = s,
                        None => return NetRx::Drop,
                    }
                }
                ip_rcv_core_headers(mib, &mut skb, hdr.ihl).map(|()| hdr)
            }
            Err(reason) => Err(reason),
        }
    } else {
        RcvHdr::parse(skb.data()).ok_or(DropReason::IpInhdr)
    };
    let hdr = match hdr {
        Ok(hdr) => hdr,
        Err(reason) => {
            if from != RcvStage::RcvCore {
                mib.inc(IpMib::InHdrErrors);
            }
            kfree_skb_reason(skb, reason);
            return NetRx::Drop;
        }
    };
    if from <= RcvStage::PreRouting
        && !no_hooks::<TRACE, C>(ctx, NfInetHooks::PreRouting, skb.ifindex)
    {
        return ip_rcv_nf_hook(net, ctx, skb, NfInetHooks::PreRouting);
    }
    if from <= RcvStage::RcvFinish {
        match ip_rcv_finish_core::<TRACE, C>(net, mib, &skb, &hdr) {
            RcvRoute::Local => {}
            RcvRoute::Lookup => return ip_rcv_finish_slow::<TRACE, C>(net, ctx, mib, skb, &hdr),
            RcvRoute::Drop(reason) => {
                kfree_skb_reason(skb, reason);
                return NetRx::Drop;
            }
        }
    }
    if TRACE && from <= RcvStage::LocalDeliver {
        return ip_local_deliver_traced(net, ctx, skb);
    }
    if from <= RcvStage::Defrag && hdr.frag {
        return ip_local_deliver_defrag::<TRACE, C>(net, ctx, skb);
    }
    if from <= RcvStage::LocalIn && !no_hooks::<TRACE, C>(ctx, NfInetHooks::LocalIn, skb.ifindex) {
        return ip_rcv_nf_hook(net, ctx, skb, NfInetHooks::LocalIn);
    }
    // ip_local_deliver_finish() → ip_protocol_deliver_rcu(): pull the IP
    // header, call the protocol's handler (InDelivers, also when it hands
    // the datagram back for an ICMP error), or answer protocol unreachable
    // (InUnknownProtos, IP_NOPROTO).
    if skb.advance(hdr.ihl).is_err() {
        mib.inc(IpMib::InHdrErrors);
        kfree_skb_reason(skb, DropReason::IpInhdr);
        return NetRx::Drop;
    }
    if let Some(prot) = net.inet_protocol_first(hdr.protocol) {
        if skb.is_nonlinear() && !prot.accepts_nonlinear() {
            match ip_rcv_linearize(mib, skb) {
                Some(s) => skb = s,
                None => return NetRx::Drop,
            }
        }
        let r = prot.handler(skb, ctx);
        mib.inc(IpMib::InDelivers);
        if let Err((skb, error)) = r {
            ip_protocol_error(net, ctx, skb, error);
        }
        return NetRx::Success;
    }
    ip_protocol_deliver_slow(net, ctx, mib, skb, hdr.ihl, hdr.protocol)
}

/// The rest of `ip_protocol_deliver_rcu()`: a handler registered after a
/// removal (from the locked overflow table), or none (protocol
/// unreachable). Off the delivery path of a slot's first registration.
#[cold]
#[inline(never)]
fn ip_protocol_deliver_slow<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    mib: NetMibsCpu<'_>,
    skb: SkBuff,
    ihl: usize,
    protocol: u8,
) -> NetRx {
    if let Some(prot) = net.inet_protocol_ref(protocol) {
        let skb = if skb.is_nonlinear() && !prot.get().accepts_nonlinear() {
            match ip_rcv_linearize(mib, skb) {
                Some(s) => s,
                None => return NetRx::Drop,
            }
        } else {
            skb
        };
        let r = prot.get().handler(skb, ctx);
        drop(prot);
        mib.inc(IpMib::InDelivers);
        if let Err((skb, error)) = r {
            ip_protocol_error(net, ctx, skb, error);
        }
        return NetRx::Success;
    }
    ip_unknown_protocol(net, ctx, mib, skb, ihl)
}

/// [`ip_rcv_chain`] from `FROM`, with the observer chosen at run time:
/// for the entry points off the common path (after a hook).
fn ip_rcv_chain_from<const FROM: u8, C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    skb: SkBuff,
) -> NetRx {
    if trace_on() {
        ip_rcv_chain::<true, FROM, C>(net, ctx, skb)
    } else {
        ip_rcv_chain::<false, FROM, C>(net, ctx, skb)
    }
}

/// `NF_HOOK(hook, …, okfn)` on the receive path when a hook is registered
/// at PRE_ROUTING (okfn `ip_rcv_finish()`) or LOCAL_IN (okfn
/// `ip_local_deliver_finish()`).
#[cold]
#[inline(never)]
fn ip_rcv_nf_hook<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    skb: SkBuff,
    hook: NfInetHooks,
) -> NetRx {
    // Hooks read and rewrite the datagram as one buffer.
    let skb = if skb.is_nonlinear() {
        let mib = net.mibs().this_cpu(ctx.smp_processor_id());
        match ip_rcv_linearize(mib, skb) {
            Some(s) => s,
            None => return NetRx::Drop,
        }
    } else {
        skb
    };
    let in_ifindex = skb.ifindex;
    nf_netrx(nf_hook_ipv4(ctx, hook, in_ifindex, 0, skb, |ctx, skb| {
        if hook == NfInetHooks::LocalIn {
            ip_local_deliver_finish(net, ctx, skb)
        } else {
            ip_rcv_finish(net, ctx, skb)
        }
    }))
}

/// Whether no hook is registered at `hook` (the `nf_hooks_needed` static
/// key, one atomic load): the stage then skips `NF_HOOK()` and keeps the
/// header fields it parsed. With `TRACE`, says so in a netfilter event.
#[inline(always)]
fn no_hooks<const TRACE: bool, C: Ipv4Context>(
    ctx: &C,
    hook: NfInetHooks,
    in_ifindex: u32,
) -> bool {
    if ctx.nf_hooks().nf_hook_entries_head(hook).is_some() {
        return false;
    }
    if TRACE {
        tracing::trace!(target: "netstack::netfilter", in_ifindex, out_ifindex = 0, verdict = "NF_ACCEPT", hooks = 0, "{}", hook.c_name());
    }
    true
}

/// The source checks `ip_route_input_slow()` makes before the FIB
/// (multicast, limited broadcast, `0.0.0.0/8`, loopback).
/// Written on the address as one `u32`: multicast (224.0.0.0/4), the
/// limited broadcast, `0.0.0.0/8` and `127.0.0.0/8`.
#[inline(always)]
fn martian_source(saddr: Ipv4Addr) -> bool {
    let a = saddr.to_bits();
    let first = a >> 24;
    first & 0xf0 == 0xe0 || a == u32::MAX || first == 0 || first == 127
}

/// Mirrors `ip_rcv_finish()` for a datagram whose header a PRE_ROUTING
/// hook may have rewritten: reads it again, then runs the chain from
/// `ip_rcv_finish()`.
fn ip_rcv_finish<C: Ipv4Context>(net: &Ipv4Net<C>, ctx: &mut C, skb: SkBuff) -> NetRx {
    ip_rcv_chain_from::<{ RcvStage::RcvFinish as u8 }, C>(net, ctx, skb)
}

/// What [`ip_rcv_finish_core`] decided.
#[derive(Clone, Copy, Debug)]
enum RcvRoute {
    /// For one of our unicast addresses: local delivery.
    Local,
    /// Anything else: the FIB decides ([`ip_rcv_finish_slow`]).
    Lookup,
    /// Bad options.
    Drop(DropReason),
}

/// Mirrors `ip_rcv_finish_core()`: where the datagram goes.
///
/// A unicast datagram to one of our addresses from a sane source (not
/// martian, not one of our own addresses: see `own_source` in route.rs)
/// is delivered locally without a FIB lookup: the FIB would answer with
/// the local table's /32, which wins every lookup, so the lookup (and the
/// routing lock) is skipped. Its options, if any, are checked
/// (`ip_rcv_options()`). Everything else, looped-back datagrams included,
/// takes the lookup.
#[inline(always)]
fn ip_rcv_finish_core<const TRACE: bool, C: Ipv4Context>(
    net: &Ipv4Net<C>,
    mib: NetMibsCpu<'_>,
    skb: &SkBuff,
    hdr: &RcvHdr,
) -> RcvRoute {
    if skb.ifindex == LOOPBACK_IFINDEX
        || !net.inet_lookup_ifaddr(hdr.daddr)
        || martian_source(hdr.saddr)
        || net.inet_lookup_ifaddr(hdr.saddr)
        || rp_filter_mode(net) != 0
    {
        return RcvRoute::Lookup;
    }
    if hdr.ihl > 20 && !ip_rcv_options(mib, skb.data()) {
        return RcvRoute::Drop(DropReason::IpInhdr);
    }
    if TRACE {
        tracing::trace!(target: "netstack::ipv4", saddr = %hdr.saddr, daddr = %hdr.daddr, rt_type = ?RtnType::Local, decision = "local", "ip_route_input");
    }
    RcvRoute::Local
}

/// The reverse-path filter's mode: `rp_filter` of `conf/all` or of the
/// device (here `conf/default`'s), the larger (`IN_DEV_MAXCONF()`): 0 off,
/// 1 strict, 2 loose.
#[inline]
fn rp_filter_mode<C: ?Sized>(net: &Ipv4Net<C>) -> i64 {
    let s = net.sysctl();
    s.get_int(Sysctl::CONF_ALL_RP_FILTER)
        .max(s.get_int(Sysctl::CONF_DEFAULT_RP_FILTER))
}

/// Mirrors `ip_rcv_options()` → `ip_options_compile()`: whether the
/// options of a header longer than 20 bytes parse; counts `InHdrErrors`
/// when they do not. Takes the datagram's bytes, not the skb.
#[cold]
#[inline(never)]
fn ip_rcv_options(mib: NetMibsCpu<'_>, header: &[u8]) -> bool {
    if Ipv4Packet::new_checked(header).is_err() {
        mib.inc(IpMib::InHdrErrors);
        return false;
    }
    true
}

/// The rest of `ip_rcv_finish()`: looped-back datagrams, and the input
/// route from the FIB (`ip_route_input_noref()`) for everything that is
/// not plainly one of our unicast addresses.
#[inline(never)]
fn ip_rcv_finish_slow<const TRACE: bool, C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    mib: NetMibsCpu<'_>,
    skb: SkBuff,
    hdr: &RcvHdr,
) -> NetRx {
    // Forwarding, broadcast and the rest of the slow path see one buffer.
    let skb = if skb.is_nonlinear() {
        match ip_rcv_linearize(mib, skb) {
            Some(s) => s,
            None => return NetRx::Drop,
        }
    } else {
        skb
    };
    let RcvHdr { saddr, daddr, .. } = *hdr;
    let mut forwarding = false;
    let route = if skb.ifindex == LOOPBACK_IFINDEX {
        // A datagram looped back by loopback_xmit keeps its output route
        // (Linux keeps skb_dst): it is for this host.
        Ok(Rtable {
            mtu: LOOPBACK_MTU,
            neigh: None,
            rt_type: if daddr.is_broadcast() {
                RtnType::Broadcast
            } else {
                RtnType::Local
            },
            oif: LOOPBACK_IFINDEX,
            gateway: None,
            prefsrc: daddr,
        })
    } else {
        forwarding = net.sysctl().get_int(Sysctl::IP_FORWARD) != 0;
        net.netns()
            .read()
            .ip_route_input(daddr, saddr, skb.ifindex, forwarding)
    };
    let rt = match route {
        Ok(rt) => rt,
        Err(RouteInputError::Unreachable(e)) => return ip_error(net, ctx, skb, e, forwarding),
        Err(_) => {
            kfree_skb_reason(skb, DropReason::NotSpecified);
            return NetRx::Drop;
        }
    };
    // fib_validate_source() with rp_filter: the route back to the source.
    let rpf = rp_filter_mode(net);
    if rpf != 0 && skb.ifindex != LOOPBACK_IFINDEX && !saddr.is_unspecified() {
        let verdict = net
            .netns()
            .read()
            .fib_validate_source(saddr, skb.ifindex, rpf == 1);
        match verdict {
            RpFilter::Accept => {}
            RpFilter::Reject => {
                let cpu = ctx.smp_processor_id();
                net.mibs().inc(cpu, netcore::LinuxMib::IpRpFilter);
                kfree_skb_reason(skb, DropReason::IpRpfilter);
                return NetRx::Drop;
            }
            RpFilter::Martian => {
                kfree_skb_reason(skb, DropReason::NotSpecified);
                return NetRx::Drop;
            }
        }
    }
    if hdr.ihl > 20 && !ip_rcv_options(mib, skb.data()) {
        kfree_skb_reason(skb, DropReason::IpInhdr);
        return NetRx::Drop;
    }
    if TRACE {
        tracing::trace!(target: "netstack::ipv4", saddr = %saddr, daddr = %daddr, rt_type = ?rt.rt_type, decision = if rt.rt_type == RtnType::Unicast { "forward" } else { "local" }, "ip_route_input");
    }
    match rt.rt_type {
        RtnType::Unicast => return ip_forward(net, ctx, skb, &rt),
        RtnType::Multicast => {
            mib.inc(IpExtMib::InMcastPkts);
            mib.add(IpExtMib::InMcastOctets, skb.len() as u64);
        }
        RtnType::Broadcast => {
            mib.inc(IpExtMib::InBcastPkts);
            mib.add(IpExtMib::InBcastOctets, skb.len() as u64);
        }
        // Local (and anything else ip_route_input hands back for us).
        _ => {}
    }
    ip_rcv_chain::<TRACE, { RcvStage::LocalDeliver as u8 }, C>(net, ctx, skb)
}

/// The step after hook point `state.hook` for a datagram a queue handler
/// reinjected (see [`ip_nf_reinject`](crate::ip_nf_reinject)).
pub(crate) fn ip_nf_continue<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    skb: SkBuff,
    state: &NfHookState,
) -> NetRx {
    let d = skb.data();
    if d.len() < 20 {
        kfree_skb_reason(skb, DropReason::IpInhdr);
        return NetRx::Drop;
    }
    let saddr = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
    let daddr = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    let output_route = |oif: u32| {
        let mut fl4 = Flowi4::new(daddr, d[9]);
        fl4.oif = oif;
        net.netns().read().ip_route_output_key(&mut fl4)
    };
    match state.hook {
        NfInetHooks::PreRouting => ip_rcv_finish(net, ctx, skb),
        NfInetHooks::LocalIn => ip_local_deliver_finish(net, ctx, skb),
        NfInetHooks::Forward => {
            let rt = net
                .netns()
                .read()
                .ip_route_input(daddr, saddr, state.in_ifindex, true);
            match rt {
                Ok(rt) if rt.rt_type == RtnType::Unicast => {
                    crate::ip_forward::ip_forward_finish(net, ctx, skb, &rt, state.in_ifindex)
                }
                _ => {
                    kfree_skb_reason(skb, DropReason::IpInnoroutes);
                    NetRx::Drop
                }
            }
        }
        NfInetHooks::LocalOut | NfInetHooks::PostRouting => {
            let oif = if state.hook == NfInetHooks::PostRouting {
                state.out_ifindex
            } else {
                0
            };
            let Ok(rt) = output_route(oif) else {
                kfree_skb_reason(skb, DropReason::IpOutnoroutes);
                return NetRx::Drop;
            };
            let r = if state.hook == NfInetHooks::LocalOut {
                crate::ip_output::ip_output_net(net, ctx, skb, &rt, 0)
            } else {
                crate::ip_output::ip_finish_output(net, ctx, skb, &rt)
            };
            if r.is_ok() {
                NetRx::Success
            } else {
                NetRx::Drop
            }
        }
    }
}

/// Mirrors `ip_error()`: with forwarding off, `EHOSTUNREACH` counts
/// `InAddrErrors` and `ENETUNREACH` `InNoRoutes`, silently; with it on,
/// the sender gets host, network (`InNoRoutes`) or administratively
/// prohibited unreachable, and `EINVAL` (blackhole) nothing.
fn ip_error<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    skb: SkBuff,
    err: Errno,
    forwarding: bool,
) -> NetRx {
    let cpu = ctx.smp_processor_id();
    let mibs = net.mibs();
    let mut reason = DropReason::NotSpecified;
    let code = match (forwarding, err) {
        (false, Errno::HostUnreach) => {
            mibs.inc(cpu, IpMib::InAddrErrors);
            reason = DropReason::IpInaddrerrors;
            None
        }
        (_, Errno::NetUnreach) => {
            mibs.inc(cpu, IpExtMib::InNoRoutes);
            reason = DropReason::IpInnoroutes;
            forwarding.then_some(IcmpDestUnreach::NetUnreach)
        }
        (true, Errno::HostUnreach) => Some(IcmpDestUnreach::HostUnreach),
        (true, Errno::Acces) => Some(IcmpDestUnreach::PktFiltered),
        _ => None,
    };
    if let Some(code) = code {
        let _ = icmp_send_net(net, ctx, &skb, IcmpError::DestUnreach(code));
    }
    kfree_skb_reason(skb, reason);
    NetRx::Drop
}

/// Delivers a datagram for this host: reassembles fragments, runs
/// LOCAL_IN, hands the payload to its protocol.
///
/// Mirrors `ip_local_deliver()`. `skb.data()` starts at the IP header.
/// Consumes `skb`; a datagram too short for the header it announces is
/// `InHdrErrors`.
pub fn ip_local_deliver<C: Ipv4Context>(net: &Ipv4Net<C>, ctx: &mut C, skb: SkBuff) -> NetRx {
    ip_rcv_chain_from::<{ RcvStage::LocalDeliver as u8 }, C>(net, ctx, skb)
}

/// `ip_local_deliver()` with tracing on: the rest of the chain inside an
/// `ip_local_deliver` span.
#[cold]
#[inline(never)]
fn ip_local_deliver_traced<C: Ipv4Context>(net: &Ipv4Net<C>, ctx: &mut C, skb: SkBuff) -> NetRx {
    let _span = tracing::trace_span!(target: "netstack::ipv4", "ip_local_deliver", len = skb.len())
        .entered();
    ip_rcv_chain::<true, { RcvStage::Defrag as u8 }, C>(net, ctx, skb)
}

/// `ip_defrag()` for a fragment, then the chain from LOCAL_IN for the
/// datagram it completes.
#[cold]
#[inline(never)]
fn ip_local_deliver_defrag<const TRACE: bool, C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    skb: SkBuff,
) -> NetRx {
    let cpu = ctx.smp_processor_id();
    let skb = if skb.is_nonlinear() {
        match ip_rcv_linearize(net.mibs().this_cpu(cpu), skb) {
            Some(s) => s,
            None => return NetRx::Drop,
        }
    } else {
        skb
    };
    let now = ctx.now();
    let action = net
        .frags()
        .lock()
        .ip_defrag(ctx, now, net.mibs(), cpu, net.pool(), skb);
    let mut skb = match action {
        FragAction::Reassembled(s) => s,
        FragAction::Queued => return NetRx::Success,
        FragAction::Dropped(_) => return NetRx::Drop,
        FragAction::TimeExceeded { head } => {
            kfree_skb_reason(head, DropReason::FragReasmTimeout);
            return NetRx::Drop;
        }
    };
    // The whole datagram's header (the chain reads it again, and counts
    // one too short for itself).
    if let Some(hdr) = RcvHdr::parse(skb.data()) {
        let _ = skb.set_transport_header(hdr.ihl);
    }
    ip_rcv_chain::<TRACE, { RcvStage::LocalIn as u8 }, C>(net, ctx, skb)
}

/// Mirrors `ip_local_deliver_finish()` for a datagram a LOCAL_IN hook may
/// have rewritten: reads the header again, then runs the last stage of the
/// chain.
fn ip_local_deliver_finish<C: Ipv4Context>(net: &Ipv4Net<C>, ctx: &mut C, skb: SkBuff) -> NetRx {
    ip_rcv_chain_from::<{ RcvStage::LocalDeliverFinish as u8 }, C>(net, ctx, skb)
}

/// No handler for the protocol: `InUnknownProtos`, ICMP protocol
/// unreachable about the datagram (its IP header pushed back), drop with
/// `IP_NOPROTO`.
#[cold]
#[inline(never)]
fn ip_unknown_protocol<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    mib: NetMibsCpu<'_>,
    mut skb: SkBuff,
    ihl: usize,
) -> NetRx {
    mib.inc(IpMib::InUnknownProtos);
    if skb.push(ihl).is_ok() {
        let _ = icmp_send_net(net, ctx, &skb, IcmpError::PROT_UNREACH);
    }
    kfree_skb_reason(skb, DropReason::IpNoproto);
    NetRx::Drop
}

/// A protocol handed the datagram back for an ICMP error (port
/// unreachable from UDP, …): send it about the original header, then free
/// the datagram. Kept out of line, off the delivery path.
#[cold]
#[inline(never)]
fn ip_protocol_error<C: Ipv4Context>(
    net: &Ipv4Net<C>,
    ctx: &mut C,
    mut skb: SkBuff,
    error: IcmpError,
) {
    let reason = if error == IcmpError::PORT_UNREACH {
        DropReason::NoSocket
    } else {
        DropReason::NotSpecified
    };
    if let Some(off) = skb.network_offset()
        && off <= 0
        && skb.push(off.unsigned_abs()).is_ok()
    {
        let _ = icmp_send_net(net, ctx, &skb, error);
    }
    kfree_skb_reason(skb, reason);
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod csum20_tests {
    use proptest::prelude::*;

    use super::ip_fast_csum20_ok;

    proptest! {
        /// The unrolled sum agrees with the general `ip_fast_csum()` on any
        /// 20 bytes.
        #[test]
        fn agrees_with_ip_fast_csum(h in any::<[u8; 20]>()) {
            prop_assert_eq!(ip_fast_csum20_ok(&h), wire::ip_fast_csum(&h) == 0);
        }

        /// A header with its checksum filled in passes; flipping any one
        /// bit makes it fail.
        #[test]
        fn correct_passes_one_bit_flip_fails(mut h in any::<[u8; 20]>(), bit in 0usize..160) {
            h[0] = 0x45;
            h[10..12].fill(0);
            let c = wire::ip_fast_csum(&h);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            prop_assert!(ip_fast_csum20_ok(&h));
            h[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(!ip_fast_csum20_ok(&h));
        }
    }
}
