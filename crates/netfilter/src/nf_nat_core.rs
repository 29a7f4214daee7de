//! Network address translation on top of conntrack.
//!
//! Mirrors `net/netfilter/nf_nat_core.c` (`nf_nat_setup_info()`,
//! `get_unique_tuple()`, `nf_nat_used_tuple()`, `find_best_ips_proto()`,
//! `nf_nat_l4proto_unique_tuple()`, `nf_nat_packet()`, `nf_nat_inet_fn()`)
//! and `net/netfilter/nf_nat_proto.c` (`nf_nat_ipv4_manip_pkt()` with the
//! TCP/UDP/ICMP manips and incremental checksums,
//! `nf_nat_icmp_reply_translation()`).
//!
//! ```text
//!  first packet (ct NEW):  nat table chain ─► SNAT/DNAT target
//!        └► nf_nat_setup_info: pick a unique tuple, rewrite ct's REPLY tuple
//!  every packet:           nf_nat_packet: if this hook's manip applies in
//!        this direction, rewrite addresses/ports to invert(other tuple)
//!  ICMP error (RELATED):   rewrite the quoted header back, then the outer
//! ```

use std::net::Ipv4Addr;

use netcore::{Instant, IpSummed, SkBuff};
use wire::{csum_fold, csum_partial, csum_replace2, csum_replace4};

use crate::netfilter::{NfInetHooks, NfVerdict};
use crate::nf_conntrack_core::{
    CtInner, IpConntrackDir, IpConntrackInfo, NfConntrack, NfConntrackTuple, ips,
};

/// `--to-source`/`--to-destination` gave addresses (`NF_NAT_RANGE_MAP_IPS`).
pub const NF_NAT_RANGE_MAP_IPS: u32 = 1 << 0;
/// Ports were given (`NF_NAT_RANGE_PROTO_SPECIFIED`).
pub const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 1 << 1;
/// `--random` (`NF_NAT_RANGE_PROTO_RANDOM`).
pub const NF_NAT_RANGE_PROTO_RANDOM: u32 = 1 << 2;
/// `--persistent` (`NF_NAT_RANGE_PERSISTENT`).
pub const NF_NAT_RANGE_PERSISTENT: u32 = 1 << 3;
/// `--random-fully` (`NF_NAT_RANGE_PROTO_RANDOM_FULLY`).
pub const NF_NAT_RANGE_PROTO_RANDOM_FULLY: u32 = 1 << 4;
const NF_NAT_RANGE_PROTO_RANDOM_ALL: u32 =
    NF_NAT_RANGE_PROTO_RANDOM | NF_NAT_RANGE_PROTO_RANDOM_FULLY;

/// Where a NAT target may map to.
///
/// Mirrors `struct nf_nat_range2` in
/// `include/uapi/linux/netfilter/nf_nat.h` (IPv4 addresses, ports or ICMP
/// ids as `min_proto..=max_proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NfNatRange2 {
    /// `NF_NAT_RANGE_*` bits.
    pub flags: u32,
    /// Lowest address.
    pub min_addr: Ipv4Addr,
    /// Highest address.
    pub max_addr: Ipv4Addr,
    /// Lowest port.
    pub min_proto: u16,
    /// Highest port.
    pub max_proto: u16,
}

impl Default for NfNatRange2 {
    fn default() -> Self {
        NfNatRange2 {
            flags: 0,
            min_addr: Ipv4Addr::UNSPECIFIED,
            max_addr: Ipv4Addr::UNSPECIFIED,
            min_proto: 0,
            max_proto: 0,
        }
    }
}

/// Which end NAT rewrites (`enum nf_nat_manip_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfNatManipType {
    /// The source (`NF_NAT_MANIP_SRC`): SNAT, MASQUERADE.
    Src,
    /// The destination (`NF_NAT_MANIP_DST`): DNAT, REDIRECT.
    Dst,
}

impl NfNatManipType {
    /// The manip a hook does (`HOOK2MANIP()`): source at POST_ROUTING and
    /// LOCAL_IN, destination at PRE_ROUTING and LOCAL_OUT.
    pub fn of_hook(hook: NfInetHooks) -> NfNatManipType {
        match hook {
            NfInetHooks::PostRouting | NfInetHooks::LocalIn => NfNatManipType::Src,
            _ => NfNatManipType::Dst,
        }
    }

    fn other(self) -> NfNatManipType {
        match self {
            NfNatManipType::Src => NfNatManipType::Dst,
            NfNatManipType::Dst => NfNatManipType::Src,
        }
    }

    fn status_bit(self) -> u32 {
        match self {
            NfNatManipType::Src => ips::SRC_NAT,
            NfNatManipType::Dst => ips::DST_NAT,
        }
    }

    fn done_bit(self) -> u32 {
        match self {
            NfNatManipType::Src => ips::SRC_NAT_DONE,
            NfNatManipType::Dst => ips::DST_NAT_DONE,
        }
    }
}

fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 136 | 132 | 33)
}

/// Whether the tuple's mapped end is within the range (`nf_nat_in_range()`
/// with `l4proto_in_range()`).
fn nf_nat_in_range(t: &NfConntrackTuple, range: &NfNatRange2, manip: NfNatManipType) -> bool {
    let addr = match manip {
        NfNatManipType::Src => t.src,
        NfNatManipType::Dst => t.dst,
    };
    if range.flags & NF_NAT_RANGE_MAP_IPS != 0 && (addr < range.min_addr || addr > range.max_addr) {
        return false;
    }
    if range.flags & NF_NAT_RANGE_PROTO_SPECIFIED == 0 {
        return true;
    }
    l4proto_in_range(t, manip, range.min_proto, range.max_proto)
}

fn l4proto_in_range(t: &NfConntrackTuple, manip: NfNatManipType, min: u16, max: u16) -> bool {
    let key = if t.protonum == 1 {
        t.src_u
    } else if !has_ports(t.protonum) {
        return true;
    } else {
        match manip {
            NfNatManipType::Src => t.src_u,
            NfNatManipType::Dst => t.dst_u,
        }
    };
    key >= min && key <= max
}

/// Whether another connection already answers to this tuple's reply
/// (`nf_nat_used_tuple()`).
fn nf_nat_used_tuple(inner: &CtInner, t: &NfConntrackTuple, ignored: u32, now: Instant) -> bool {
    inner.tuple_taken(&t.invert(), ignored, now)
}

/// Picks the address within the range (`find_best_ips_proto()`): by a hash
/// of the addresses, so one client keeps one address (`--persistent` hashes
/// the source only).
fn find_best_ips_proto(t: &mut NfConntrackTuple, range: &NfNatRange2, manip: NfNatManipType) {
    if range.flags & NF_NAT_RANGE_MAP_IPS == 0 {
        return;
    }
    let (min, max) = (range.min_addr.to_bits(), range.max_addr.to_bits());
    let pick = if min >= max {
        min
    } else {
        let other = if range.flags & NF_NAT_RANGE_PERSISTENT != 0 {
            0
        } else {
            match manip {
                NfNatManipType::Src => t.dst.to_bits(),
                NfNatManipType::Dst => t.src.to_bits(),
            }
        };
        let base = match manip {
            NfNatManipType::Src => t.src.to_bits(),
            NfNatManipType::Dst => t.dst.to_bits(),
        };
        let j =
            (u64::from(base) << 32 | u64::from(other)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        let dist = u64::from(max - min) + 1;
        min + ((j * dist) >> 32) as u32
    };
    match manip {
        NfNatManipType::Src => t.src = Ipv4Addr::from_bits(pick),
        NfNatManipType::Dst => t.dst = Ipv4Addr::from_bits(pick),
    }
}

/// Finds a free port (or ICMP id) for the tuple (`nf_nat_l4proto_unique_tuple()`).
///
/// Without `--to-ports` a source port keeps its class (1..511, 600..1023,
/// 1024..65535) and a destination port is left alone; tries up to 128
/// values from a random offset, then halves the tries and starts again.
fn nf_nat_l4proto_unique_tuple(
    inner: &mut CtInner,
    t: &mut NfConntrackTuple,
    range: &NfNatRange2,
    manip: NfNatManipType,
    ignored: u32,
    now: Instant,
) {
    let icmp = t.protonum == 1;
    if !icmp && !has_ports(t.protonum) {
        return;
    }
    let cur = if icmp {
        t.src_u
    } else {
        match manip {
            NfNatManipType::Src => t.src_u,
            NfNatManipType::Dst => t.dst_u,
        }
    };
    let (min, size): (u32, u32) = if range.flags & NF_NAT_RANGE_PROTO_SPECIFIED != 0 {
        let (lo, hi) = (
            range.min_proto.min(range.max_proto),
            range.min_proto.max(range.max_proto),
        );
        (u32::from(lo), u32::from(hi) - u32::from(lo) + 1)
    } else if icmp {
        (0, 65536)
    } else if manip == NfNatManipType::Dst {
        return;
    } else if cur < 512 {
        (1, 511)
    } else if cur < 1024 {
        (600, 1023 - 600 + 1)
    } else {
        (1024, 65535 - 1024 + 1)
    };
    let set = |t: &mut NfConntrackTuple, v: u16| {
        if icmp || manip == NfNatManipType::Src {
            t.src_u = v;
        } else {
            t.dst_u = v;
        }
    };
    let mut off = inner.random();
    let mut attempts = size.min(128);
    loop {
        for _ in 0..attempts {
            set(t, (min + off % size) as u16);
            off = off.wrapping_add(1);
            if !nf_nat_used_tuple(inner, t, ignored, now) {
                return;
            }
        }
        if attempts >= size || attempts < 16 {
            return;
        }
        attempts /= 2;
        off = inner.random();
    }
}

/// Chooses the translated tuple (`get_unique_tuple()`).
fn get_unique_tuple(
    inner: &mut CtInner,
    orig: &NfConntrackTuple,
    range: &NfNatRange2,
    slot: u32,
    manip: NfNatManipType,
    now: Instant,
) -> NfConntrackTuple {
    // Source NAT keeps the original tuple when it already fits and is free.
    if manip == NfNatManipType::Src
        && range.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL == 0
        && nf_nat_in_range(orig, range, manip)
        && !nf_nat_used_tuple(inner, orig, slot, now)
    {
        return *orig;
    }
    let mut t = *orig;
    find_best_ips_proto(&mut t, range, manip);
    if range.flags & NF_NAT_RANGE_PROTO_RANDOM_ALL == 0 {
        if range.flags & NF_NAT_RANGE_PROTO_SPECIFIED != 0 {
            if l4proto_in_range(&t, manip, range.min_proto, range.max_proto)
                && (range.min_proto == range.max_proto || !nf_nat_used_tuple(inner, &t, slot, now))
            {
                return t;
            }
        } else if !nf_nat_used_tuple(inner, &t, slot, now) {
            return t;
        }
    }
    nf_nat_l4proto_unique_tuple(inner, &mut t, range, manip, slot, now);
    t
}

impl NfConntrack {
    /// Binds the packet's new connection to a translation.
    ///
    /// Mirrors `nf_nat_setup_info()`: picks a unique tuple within `range`
    /// and rewrites the connection's reply tuple so that answers find it;
    /// marks the manip done. Returns DROP when the packet has no
    /// connection, ACCEPT otherwise.
    pub fn nf_nat_setup_info(
        &self,
        nfct: u32,
        range: &NfNatRange2,
        manip: NfNatManipType,
        now: Instant,
    ) -> NfVerdict {
        let mut inner = self.inner.lock();
        let Some((slot, _)) = resolve_nat(&inner, nfct) else {
            return NfVerdict::DROP;
        };
        let Some(conn) = inner.conn(slot) else {
            return NfVerdict::DROP;
        };
        if conn.test(ips::CONFIRMED) || conn.status & manip.done_bit() != 0 {
            return NfVerdict::Accept;
        }
        let curr = conn.reply().invert();
        let new = get_unique_tuple(&mut inner, &curr, range, slot, manip, now);
        if let Some(conn) = inner.conn_mut(slot) {
            if new != curr {
                conn.tuplehash[1] = new.invert();
                conn.status |= manip.status_bit();
            }
            conn.status |= manip.done_bit();
        }
        NfVerdict::Accept
    }

    /// Whether the manip of `manip` is decided for the packet's connection
    /// (`nf_nat_initialized()`).
    pub fn nf_nat_initialized(&self, nfct: u32, manip: NfNatManipType) -> bool {
        self.with_ct(nfct, |c| c.status & manip.done_bit() != 0)
            .unwrap_or(false)
    }

    /// Binds the connection to itself for this hook's manip when no rule
    /// did (`nf_nat_alloc_null_binding()`): the address stays, but a port
    /// is still changed if another connection already uses the reply.
    pub fn nf_nat_alloc_null_binding(
        &self,
        nfct: u32,
        hook: NfInetHooks,
        now: Instant,
    ) -> NfVerdict {
        let manip = NfNatManipType::of_hook(hook);
        let Some(ip) = self.with_ct(nfct, |c| match manip {
            NfNatManipType::Src => c.reply().dst,
            NfNatManipType::Dst => c.reply().src,
        }) else {
            return NfVerdict::Accept;
        };
        let range = NfNatRange2 {
            flags: NF_NAT_RANGE_MAP_IPS,
            min_addr: ip,
            max_addr: ip,
            ..NfNatRange2::default()
        };
        self.nf_nat_setup_info(nfct, &range, manip, now)
    }

    /// Rewrites one packet as its connection's NAT binding says.
    ///
    /// Mirrors `nf_nat_packet()`: at a source-manip hook the source of an
    /// original-direction packet (or the destination of a reply) becomes
    /// what the other direction's tuple expects. Returns false when the
    /// packet could not be rewritten (then it is dropped).
    pub fn nf_nat_packet(&self, skb: &mut SkBuff, hook: NfInetHooks) -> bool {
        let manip = NfNatManipType::of_hook(hook);
        let Some((target, apply)) = ({
            let inner = self.inner.lock();
            resolve_nat(&inner, skb.nfct).and_then(|(slot, info)| {
                let c = inner.conn(slot)?;
                let dir = info.dir();
                let mut bit = manip.status_bit();
                if dir == IpConntrackDir::Reply {
                    bit ^= ips::NAT_MASK;
                }
                Some((
                    c.tuplehash[dir.other() as usize].invert(),
                    c.status & bit != 0,
                ))
            })
        }) else {
            return true;
        };
        if !apply {
            return true;
        }
        nf_nat_ipv4_manip_pkt(skb, 0, &target, manip)
    }

    /// Translates an ICMP error about a NATed connection: the quoted
    /// header back to what its sender sent, then the outer header.
    ///
    /// Mirrors `nf_nat_icmp_reply_translation()`.
    pub fn nf_nat_icmp_reply_translation(&self, skb: &mut SkBuff, hook: NfInetHooks) -> bool {
        let manip = NfNatManipType::of_hook(hook);
        let Some((tuples, status, info)) = ({
            let inner = self.inner.lock();
            resolve_nat(&inner, skb.nfct)
                .and_then(|(slot, info)| inner.conn(slot).map(|c| (c.tuplehash, c.status, info)))
        }) else {
            return true;
        };
        let dir = info.dir();
        let mut bit = manip.status_bit();
        if dir == IpConntrackDir::Reply {
            bit ^= ips::NAT_MASK;
        }
        if status & bit == 0 {
            return true;
        }
        let data = skb.data();
        if data.len() < 20 {
            return false;
        }
        let hdrlen = usize::from(data[0] & 0xf) * 4;
        if data.len() < hdrlen + 8 + 20 {
            return false;
        }
        let other = tuples[dir.other() as usize];
        if !nf_nat_ipv4_manip_pkt(skb, hdrlen + 8, &other, manip.other()) {
            return false;
        }
        if !matches!(skb.ip_summed, IpSummed::Partial { .. }) {
            let Ok(d) = skb.data_mut() else { return false };
            let tot = usize::from(u16::from_be_bytes([d[2], d[3]])).min(d.len());
            if tot < hdrlen + 8 {
                return false;
            }
            let icmp = &mut d[hdrlen..tot];
            icmp[2] = 0;
            icmp[3] = 0;
            let c = csum_fold(csum_partial(icmp, 0));
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let mut target = other.invert();
        target.protonum = 1;
        nf_nat_ipv4_manip_pkt(skb, 0, &target, manip)
    }
}

fn resolve_nat(inner: &CtInner, nfct: u32) -> Option<(u32, IpConntrackInfo)> {
    let info = crate::nf_conntrack_core::nf_ct_get_info(nfct)?;
    if info == IpConntrackInfo::Untracked {
        return None;
    }
    let slot = ((nfct >> 3) & ((1 << 21) - 1)).checked_sub(1)?;
    let generation = (nfct >> 24) as u8;
    (inner.slots.get(slot as usize)?.generation == generation).then_some((slot, info))
}

/// Replaces a 32-bit value covered by a checksum field, either a full
/// checksum or (with `CHECKSUM_PARTIAL`) a pseudo-header seed
/// (`inet_proto_csum_replace4()`).
fn proto_csum_replace4(field: &mut [u8], partial: bool, pseudohdr: bool, old: u32, new: u32) {
    let check = u16::from_be_bytes([field[0], field[1]]);
    let newc = if partial {
        if !pseudohdr {
            return;
        }
        !csum_replace4(!check, old, new)
    } else {
        csum_replace4(check, old, new)
    };
    field.copy_from_slice(&newc.to_be_bytes());
}

fn proto_csum_replace2(field: &mut [u8], partial: bool, old: u16, new: u16) {
    if partial {
        return;
    }
    let check = u16::from_be_bytes([field[0], field[1]]);
    field.copy_from_slice(&csum_replace2(check, old, new).to_be_bytes());
}

/// Rewrites the address and port of one end of the IPv4 packet at
/// `iphdroff` (0 for the packet, past the ICMP header for a quoted one) to
/// the tuple's, fixing the IP, TCP, UDP or ICMP checksum incrementally.
///
/// Mirrors `nf_nat_ipv4_manip_pkt()` with `tcp_manip_pkt()`,
/// `udp_manip_pkt()` and `icmp_manip_pkt()`. A transport header that is cut
/// short (a quoted packet carries 8 bytes) gets its port rewritten without
/// a checksum update, as in Linux.
pub fn nf_nat_ipv4_manip_pkt(
    skb: &mut SkBuff,
    iphdroff: usize,
    target: &NfConntrackTuple,
    manip: NfNatManipType,
) -> bool {
    let partial = matches!(skb.ip_summed, IpSummed::Partial { .. }) && iphdroff == 0;
    let Ok(data) = skb.data_mut() else {
        return false;
    };
    let Some(ip) = data.get_mut(iphdroff..) else {
        return false;
    };
    if ip.len() < 20 {
        return false;
    }
    let ihl = usize::from(ip[0] & 0xf) * 4;
    if ihl < 20 || ip.len() < ihl {
        return false;
    }
    let proto = ip[9];
    let frag = u16::from_be_bytes([ip[6], ip[7]]) & wire::IP_OFFSET;
    let addr_off = match manip {
        NfNatManipType::Src => 12,
        NfNatManipType::Dst => 16,
    };
    let old_addr = u32::from_be_bytes([
        ip[addr_off],
        ip[addr_off + 1],
        ip[addr_off + 2],
        ip[addr_off + 3],
    ]);
    let new_addr = match manip {
        NfNatManipType::Src => target.src,
        NfNatManipType::Dst => target.dst,
    }
    .to_bits();
    // For a packet, the transport header ends at tot_len; a quoted one ends
    // where the buffer does.
    let end = if iphdroff == 0 {
        usize::from(u16::from_be_bytes([ip[2], ip[3]])).clamp(ihl, ip.len())
    } else {
        ip.len()
    };
    if frag == 0 {
        let (hdr, rest) = ip.split_at_mut(ihl);
        let _ = hdr;
        let l4 = &mut rest[..end - ihl];
        match proto {
            6 | 17 | 136 | 132 | 33 if l4.len() >= 8 => {
                let (port_off, new_port) = match manip {
                    NfNatManipType::Src => (0, target.src_u),
                    NfNatManipType::Dst => (2, target.dst_u),
                };
                let old_port = u16::from_be_bytes([l4[port_off], l4[port_off + 1]]);
                let check_off = match proto {
                    6 if l4.len() >= 20 => Some(16),
                    17 | 136 => Some(6),
                    _ => None,
                };
                if let Some(co) = check_off {
                    let udp_nocsum = proto == 17 && l4[6] == 0 && l4[7] == 0 && !partial;
                    if !udp_nocsum {
                        let field = &mut l4[co..co + 2];
                        proto_csum_replace4(field, partial, true, old_addr, new_addr);
                        proto_csum_replace2(field, partial, old_port, new_port);
                        if proto == 17 && field == [0, 0] {
                            field.copy_from_slice(&[0xff, 0xff]);
                        }
                    }
                }
                l4[port_off..port_off + 2].copy_from_slice(&new_port.to_be_bytes());
            }
            1 if l4.len() >= 8 && matches!(l4[0], 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) => {
                let old_id = u16::from_be_bytes([l4[4], l4[5]]);
                let field = &mut l4[2..4];
                let c = u16::from_be_bytes([field[0], field[1]]);
                field.copy_from_slice(&csum_replace2(c, old_id, target.src_u).to_be_bytes());
                l4[4..6].copy_from_slice(&target.src_u.to_be_bytes());
            }
            _ => {}
        }
    }
    let check = u16::from_be_bytes([ip[10], ip[11]]);
    ip[10..12].copy_from_slice(&csum_replace4(check, old_addr, new_addr).to_be_bytes());
    ip[addr_off..addr_off + 4].copy_from_slice(&new_addr.to_be_bytes());
    true
}
