//! ICMP messages this host sends: errors about received packets and echo
//! replies, with Linux's suppression rules and rate limits.
//!
//! Mirrors `net/ipv4/icmp.c` (`__icmp_send()`, `icmp_build_reply()`,
//! `icmp_global_allow()`, `icmpv4_xrlim_allow()`) and
//! `inet_peer_xrlim_allow()` in `net/ipv4/inetpeer.c`. The receive side
//! (`icmp_rcv()`) and the sending glue (`icmp_send()` routing and
//! transmitting what is built here) are in `icmp_rcv.rs`.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use netcore::{
    Duration, IcmpMib, IcmpMsgDir, Instant, NET_SKB_PAD, NetMibs, PagePool, PktType, SkBuff, Sysctl,
};
use wire::{IP_OFFSET, IcmpMessage, IcmpRepr, IcmpType, IpProtocol, Ipv4Packet, Ipv4Repr};

use crate::random::Prandom;

/// The most an ICMP error datagram may carry: 576 bytes, IP header
/// included ([RFC 1812 §4.3.2.3](https://www.rfc-editor.org/rfc/rfc1812#section-4.3.2.3)).
pub const ICMP_ERROR_MAX_LEN: usize = 576;
/// The precedence ICMP errors are sent with. Mirrors `IPTOS_PREC_INTERNETCONTROL`.
pub const IPTOS_PREC_INTERNETCONTROL: u8 = 0xc0;
const IPTOS_TOS_MASK: u8 = 0x1e;
const NR_ICMP_TYPES: u8 = 18;
const XRLIM_BURST_FACTOR: u64 = 6;

/// Why no ICMP message was built (the reasons `__icmp_send()` returns
/// early).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpSendError {
    /// The offending packet has no complete IP header.
    Truncated,
    /// It was not addressed to this host at the link layer.
    NotHost,
    /// It was sent to a broadcast or multicast address.
    Broadcast,
    /// It is a fragment other than the first.
    NotFirstFragment,
    /// It is itself an ICMP error (or an unknown ICMP type).
    AboutIcmpError,
    /// The global limit (`icmp_msgs_per_sec`) refused it.
    RateLimitGlobal,
    /// The per-destination limit (`icmp_ratelimit`) refused it.
    RateLimitHost,
    /// The MTU leaves no room to quote an IP header.
    TinyMtu,
    /// No buffer.
    NoMem,
    /// No route back to the offending datagram's source
    /// (`icmp_route_lookup()` failed).
    NoRoute,
}

/// What the caller knows about the route of the reply and the offending
/// packet's arrival.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpSendCtx {
    /// Source address for the message (the offending packet's destination
    /// when it was local, else an address of the incoming device chosen by
    /// `inet_select_addr()`).
    pub saddr: Ipv4Addr,
    /// Whether the offending packet's route was broadcast or multicast
    /// (`RTCF_BROADCAST | RTCF_MULTICAST`).
    pub dst_broadcast: bool,
    /// The MTU of the route back.
    pub mtu: usize,
    /// The IP identification to use.
    pub ident: u16,
    /// Whether the route back is through the loopback device (not limited).
    pub loopback: bool,
}

fn is_error_type(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

/// The ICMP rate limiters of a namespace: a global token bucket and one
/// per destination.
///
/// Mirrors `net->ipv4.icmp_global_{credit,stamp}` and the `rate_tokens` /
/// `rate_last` of each `struct inet_peer`.
#[derive(Debug)]
pub struct IcmpRateLimit {
    credit: i64,
    stamp: Option<Instant>,
    peers: HashMap<Ipv4Addr, (u64, Instant)>,
    rng: Prandom,
}

impl IcmpRateLimit {
    /// Fresh limiters; `seed` drives `icmp_global_consume()`'s random cost.
    pub fn new(seed: u64) -> IcmpRateLimit {
        IcmpRateLimit {
            credit: 0,
            stamp: None,
            peers: HashMap::new(),
            rng: Prandom::new(seed),
        }
    }

    /// Mirrors `icmp_global_allow()`: refill `icmp_msgs_per_sec` credits per
    /// second (at most `icmp_msgs_burst`, not more often than every 20 ms).
    fn icmp_global_allow(&mut self, sysctl: &Sysctl, now: Instant) -> bool {
        if self.credit > 0 {
            return true;
        }
        let delta = self.stamp.map_or(1000, |s| {
            now.saturating_duration_since(s).as_millis().min(1000) as i64
        });
        if delta < 20 {
            return false;
        }
        let incr = sysctl.get_int(Sysctl::ICMP_MSGS_PER_SEC) * delta / 1000;
        if incr == 0 {
            return false;
        }
        self.stamp = Some(now);
        self.credit = (self.credit + incr).min(sysctl.get_int(Sysctl::ICMP_MSGS_BURST));
        true
    }

    /// Mirrors `inet_peer_xrlim_allow()`: tokens in milliseconds, one
    /// message costs `icmp_ratelimit`, at most six in a burst; a new peer
    /// starts as if last seen 60 s ago.
    fn inet_peer_xrlim_allow(&mut self, daddr: Ipv4Addr, timeout_ms: u64, now: Instant) -> bool {
        // A new peer was "last seen" 60 s ago (`rate_last = jiffies - 60*HZ`,
        // which wraps in the kernel; here it must not saturate at time 0).
        let mut fresh = false;
        let (tokens, last) = self.peers.entry(daddr).or_insert_with(|| {
            fresh = true;
            (0, now)
        });
        let delta = if fresh {
            Duration::from_secs(60).as_millis() as u64
        } else {
            now.saturating_duration_since(*last).as_millis() as u64
        };
        if delta > 0 {
            *last = now;
            *tokens = (*tokens + delta).min(XRLIM_BURST_FACTOR * timeout_ms);
        }
        if *tokens >= timeout_ms {
            *tokens -= timeout_ms;
            true
        } else {
            false
        }
    }

    /// Whether a message of `icmp_type`/`code` to `daddr` may go now.
    ///
    /// Mirrors `icmpv4_global_allow()` + `icmpv4_xrlim_allow()`: only types
    /// in `icmp_ratemask` are limited (fragmentation needed never is);
    /// counts `OutRateLimitGlobal` / `OutRateLimitHost`.
    #[allow(clippy::too_many_arguments)]
    pub fn allow(
        &mut self,
        sysctl: &Sysctl,
        mibs: &NetMibs,
        cpu: usize,
        now: Instant,
        icmp_type: u8,
        code: u8,
        daddr: Ipv4Addr,
        loopback: bool,
    ) -> Result<(), IcmpSendError> {
        let mask = sysctl.get_int(Sysctl::ICMP_RATEMASK);
        let unlimited = icmp_type > NR_ICMP_TYPES
            || (icmp_type == 3 && code == 4)
            || (1i64 << icmp_type) & mask == 0;
        if unlimited {
            return Ok(());
        }
        if !self.icmp_global_allow(sysctl, now) {
            mibs.inc(cpu, IcmpMib::OutRateLimitGlobal);
            return Err(IcmpSendError::RateLimitGlobal);
        }
        let timeout = u64::try_from(sysctl.get_int(Sysctl::ICMP_RATELIMIT)).unwrap_or(0);
        if !loopback && !self.inet_peer_xrlim_allow(daddr, timeout, now) {
            mibs.inc(cpu, IcmpMib::OutRateLimitHost);
            return Err(IcmpSendError::RateLimitHost);
        }
        // icmp_global_consume(): 0, 1 or 2 credits.
        self.credit -= i64::from(self.rng.below(3));
        Ok(())
    }
}

fn build(
    pool: &PagePool,
    ip: &Ipv4Repr,
    msg: IcmpMessage,
    quote: &[u8],
) -> Result<SkBuff, IcmpSendError> {
    let icmp = IcmpRepr {
        message: msg,
        payload_len: quote.len(),
    };
    let mut b = vec![0u8; ip.buffer_len()];
    let h = ip.header_len();
    b[h + 8..].copy_from_slice(quote);
    icmp.emit(&mut b[h..]).map_err(|_| IcmpSendError::NoMem)?;
    ip.emit(&mut b).map_err(|_| IcmpSendError::NoMem)?;
    let mut skb = SkBuff::from_slice(pool, NET_SKB_PAD, &b).map_err(|_| IcmpSendError::NoMem)?;
    skb.reset_network_header();
    skb.protocol = netcore::ETH_P_IP;
    Ok(skb)
}

fn count_out(mibs: &NetMibs, cpu: usize, t: u8) {
    mibs.icmpmsg_inc(IcmpMsgDir::Out, t);
    mibs.inc(cpu, IcmpMib::OutMsgs);
}

/// Builds an ICMP error about `skb_in` (which starts at its IP header).
///
/// Mirrors `__icmp_send()`. Refuses ([`IcmpSendError`]) when the packet was not
/// for this host at the link layer, went to a broadcast or multicast
/// address, is a non-first fragment, is itself an ICMP error, or is rate
/// limited. The message quotes as much of the offending datagram as fits
/// in 576 bytes (and the route MTU); errors are sent with precedence
/// "internetwork control", TTL `ip_default_ttl`, DF clear. Counters:
/// `OutMsgs`, `OutType<N>` (`OutDestUnreachs`, `OutTimeExcds`, …), and the
/// rate-limit counters.
#[doc(alias = "__icmp_send")]
#[allow(clippy::too_many_arguments)]
pub fn icmp_build_error(
    skb_in: &SkBuff,
    msg: IcmpMessage,
    ctx: &IcmpSendCtx,
    limit: &mut IcmpRateLimit,
    sysctl: &Sysctl,
    mibs: &NetMibs,
    cpu: usize,
    now: Instant,
    pool: &PagePool,
) -> Result<SkBuff, IcmpSendError> {
    let data = skb_in.data();
    if data.len() < 20 {
        return Err(IcmpSendError::Truncated);
    }
    if skb_in.pkt_type != PktType::Host {
        return Err(IcmpSendError::NotHost);
    }
    let daddr = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
    if ctx.dst_broadcast || daddr.is_multicast() || daddr.is_broadcast() {
        return Err(IcmpSendError::Broadcast);
    }
    let frag_off = u16::from_be_bytes([data[6], data[7]]);
    if frag_off & IP_OFFSET != 0 {
        return Err(IcmpSendError::NotFirstFragment);
    }
    let mut probe = [0u8; 8];
    IcmpRepr {
        message: msg,
        payload_len: 0,
    }
    .emit(&mut probe)
    .map_err(|_| IcmpSendError::NoMem)?;
    let (icmp_type, code) = (probe[0], probe[1]);
    let ihl = usize::from(data[0] & 0x0f) * 4;
    if is_error_type(icmp_type) && data[9] == u8::from(IpProtocol::Icmp) {
        let inner = *data.get(ihl).ok_or(IcmpSendError::Truncated)?;
        if inner > NR_ICMP_TYPES || is_error_type(inner) {
            return Err(IcmpSendError::AboutIcmpError);
        }
    }
    let saddr_in = Ipv4Addr::new(data[12], data[13], data[14], data[15]);
    limit.allow(
        sysctl,
        mibs,
        cpu,
        now,
        icmp_type,
        code,
        saddr_in,
        ctx.loopback,
    )?;
    let room = ctx.mtu.min(ICMP_ERROR_MAX_LEN) as isize - 20 - 8;
    if room <= 20 {
        return Err(IcmpSendError::TinyMtu);
    }
    let quote = &data[..data.len().min(room as usize)];
    let tos = if is_error_type(icmp_type) {
        (data[1] & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL
    } else {
        data[1]
    };
    let ip = Ipv4Repr {
        src_addr: ctx.saddr,
        dst_addr: saddr_in,
        protocol: IpProtocol::Icmp,
        ttl: sysctl.get_int(Sysctl::IP_DEFAULT_TTL) as u8,
        tos,
        ident: ctx.ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: heapless::Vec::new(),
        payload_len: 8 + quote.len(),
    };
    let skb = build(pool, &ip, msg, quote)?;
    count_out(mibs, cpu, icmp_type);
    Ok(skb)
}

/// Builds the echo reply to an echo request `skb_in` (starting at its IP
/// header, checksums already verified).
///
/// Mirrors `icmp_echo()` → `icmp_reply()`: same identifier, sequence and
/// data, source the request's destination, TOS kept, TTL
/// `ip_default_ttl`. Echo replies are outside `icmp_ratemask`, so only
/// counted (`OutMsgs`, `OutEchoReps`). Errors: [`IcmpSendError::Truncated`]
/// for anything but an echo request.
#[doc(alias = "icmp_reply")]
pub fn icmp_build_reply(
    skb_in: &SkBuff,
    ident: u16,
    sysctl: &Sysctl,
    mibs: &NetMibs,
    cpu: usize,
    pool: &PagePool,
) -> Result<SkBuff, IcmpSendError> {
    let p = Ipv4Packet::new_checked(skb_in.data()).map_err(|_| IcmpSendError::Truncated)?;
    let icmp = p.payload();
    if icmp.len() < 8 || icmp[0] != u8::from(IcmpType::Echo) {
        return Err(IcmpSendError::Truncated);
    }
    let msg = IcmpMessage::EchoReply {
        ident: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq_no: u16::from_be_bytes([icmp[6], icmp[7]]),
    };
    let ip = Ipv4Repr {
        src_addr: p.dst_addr(),
        dst_addr: p.src_addr(),
        protocol: IpProtocol::Icmp,
        ttl: sysctl.get_int(Sysctl::IP_DEFAULT_TTL) as u8,
        tos: p.tos(),
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: heapless::Vec::new(),
        payload_len: icmp.len(),
    };
    let skb = build(pool, &ip, msg, &icmp[8..])?;
    count_out(mibs, cpu, IcmpType::EchoReply.into());
    Ok(skb)
}

#[cfg(test)]
mod tests;
