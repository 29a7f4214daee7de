//! The IPv4 and TCP steps of GRO.
//!
//! Mirrors `inet_gro_receive()` / `inet_gro_complete()` in
//! `net/ipv4/af_inet.c`, `inet_gro_flush()` in `include/net/gro.h`, and
//! `tcp4_gro_receive()`, `tcp_gro_receive()`, `tcp4_gro_complete()`,
//! `tcp_gro_complete()` in `net/ipv4/tcp_offload.c` (with the TCP half of
//! `skb_gro_receive()` from `net/core/gro.c`).
//!
//! The merge rules, as Linux's: a segment joins the held packet of its flow
//! (same device, VLAN, MAC header, addresses and ports) only if
//!
//! - IPv4: header of exactly 20 bytes (`*(u8 *)iph == 0x45`), not a
//!   fragment, a valid header checksum, `tot_len` equal to the packet's
//!   length (no padding), and the same TTL, TOS and DF as the held one; the
//!   IP ID advances by one per merged segment, or stays fixed for the whole
//!   flow when DF is set and the second segment repeated it;
//! - TCP: no CWR on the new segment; the same data offset and flags except
//!   CWR, FIN and PSH; the same ACK number; byte-identical options
//!   (timestamps included: Linux compares every option word); the sequence
//!   number right after the held data; a payload of 1 to `mss` bytes
//!   (the held flow's first segment length); and a valid checksum;
//! - the merged packet stays below 64 KiB.
//!
//! A segment with URG, PSH, RST, SYN or FIN, or shorter than `mss`, closes
//! the packet: it is merged if it may be, and the packet is sent up at once.

use std::net::Ipv4Addr;

use netcore::{GSO_MAX_SIZE, IpSummed, SkBuff, SkbGsoType};
use wire::{
    IP_DF, IPV4_MIN_HLEN, IpProtocol, Ipv4Packet, TcpFlags, TcpPacket, csum_partial, csum_sub,
    csum_tcpudp_magic, ip_fast_csum,
};

use crate::gro::GroSkb;

/// The IP protocol number of TCP (`IPPROTO_TCP`).
pub(crate) const IPPROTO_TCP: u8 = 6;
const TCP_FLAGS_OFF: usize = 13;
const TCP_CHECK_OFF: usize = 16;

/// What GRO needs of an IPv4/TCP segment, read once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InetTcpSeg {
    pub(crate) saddr: [u8; 4],
    pub(crate) daddr: [u8; 4],
    /// Source and destination port, as on the wire.
    pub(crate) ports: [u8; 4],
    pub(crate) seq: u32,
    pub(crate) payload_len: usize,
    /// TCP header length.
    thlen: usize,
    /// `NAPI_GRO_CB(skb)->flush` from `inet_gro_receive()`: padding after
    /// `tot_len`, or frag bits other than DF.
    ip_flush: bool,
}

/// The addresses of an skb that starts with an IPv4 header, if it does.
pub(crate) fn ipv4_addrs(skb: &SkBuff) -> Option<([u8; 4], [u8; 4])> {
    let d = skb.data();
    if d.len() < IPV4_MIN_HLEN || d[0] >> 4 != 4 {
        return None;
    }
    Some((d[12..16].try_into().ok()?, d[16..20].try_into().ok()?))
}

/// The checks of `inet_gro_receive()` and `tcp4_gro_receive()` that decide
/// whether GRO handles the packet at all; `None` passes it up unchanged.
pub(crate) fn parse_inet_tcp(skb: &SkBuff) -> Option<InetTcpSeg> {
    let data = skb.data();
    // No IP options: `*(u8 *)iph != 0x45` goes out.
    if data.first() != Some(&0x45) {
        return None;
    }
    let ip = Ipv4Packet::new_checked(data).ok()?;
    if ip.is_fragment() || ip.protocol() != IpProtocol::Tcp {
        return None;
    }
    if ip_fast_csum(&data[..IPV4_MIN_HLEN]) != 0 {
        return None;
    }
    let frag_off = ip.header().frag_off.get();
    let ip_flush = usize::from(ip.total_len()) != data.len() || frag_off & !IP_DF != 0;
    let (saddr, daddr) = (ip.src_addr(), ip.dst_addr());
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let tcp_len = ip.payload().len();
    let csum_ok = match skb.ip_summed {
        IpSummed::Unnecessary => true,
        IpSummed::Complete { csum } if !ip_flush => {
            // The device summed from the IP header: take the header out.
            let tcp_sum = csum_sub(csum, csum_partial(&data[..IPV4_MIN_HLEN], 0));
            csum_tcpudp_magic(saddr, daddr, tcp_len as u16, IPPROTO_TCP, tcp_sum) == 0
        }
        _ => tcp.verify_checksum(saddr, daddr),
    };
    if !csum_ok {
        return None;
    }
    let th = ip.payload();
    Some(InetTcpSeg {
        saddr: saddr.octets(),
        daddr: daddr.octets(),
        ports: th[0..4].try_into().ok()?,
        seq: tcp.seq_number(),
        payload_len: tcp.payload().len(),
        thlen: tcp.header_len(),
        ip_flush,
    })
}

/// What `tcp_gro_receive()` decided.
#[derive(Debug)]
pub(crate) enum TcpGroVerdict {
    /// Merged into the held packet; `flush`: send that packet up now.
    Merged {
        /// The merged segment closes the packet (PSH, FIN, short, ...).
        flush: bool,
    },
    /// Not merged: the held packet of the flow (if any) goes up first;
    /// then the segment goes up (`flush_skb`) or is held.
    NotMerged {
        /// Send the segment up instead of holding it.
        flush_skb: bool,
        /// The segment, handed back.
        skb: SkBuff,
    },
}

/// `inet_gro_flush()`: the IPv4 fields that must match the held packet's,
/// and the IP ID rule. `true` means do not merge.
fn inet_gro_flush(iph: &[u8], iph2: &[u8], p: &mut GroSkb) -> bool {
    let id = u16::from_be_bytes([iph[4], iph[5]]);
    let id2 = u16::from_be_bytes([iph2[4], iph2[5]]);
    let df = iph[6] & 0x40 != 0;
    let df2 = iph2[6] & 0x40 != 0;
    // TTL, TOS and DF must match.
    if iph[8] != iph2[8] || iph[1] != iph2[1] || df != df2 {
        return true;
    }
    let ipid_offset = id.wrapping_sub(id2);
    if p.count == 1 && df && ipid_offset == 0 {
        p.ip_fixedid = true;
    }
    let expect = if p.ip_fixedid { 0 } else { p.count };
    ipid_offset != expect
}

/// `tcp_gro_receive()` against the held packet `p` of the segment's flow.
///
/// Takes the segment; hands it back unless it was merged.
pub(crate) fn tcp_gro_receive(
    p: Option<&mut GroSkb>,
    skb: SkBuff,
    seg: &InetTcpSeg,
) -> TcpGroVerdict {
    let th = &skb.data()[IPV4_MIN_HLEN..IPV4_MIN_HLEN + seg.thlen];
    let flags = TcpFlags::from_bits_retain(u16::from(th[TCP_FLAGS_OFF]));
    let len = seg.payload_len;
    let mut mss = 1usize;
    let mut skb = Some(skb);
    if let Some(p) = p
        && let Some(s) = skb.take()
    {
        let flush = tcp_gro_flush(p, &s, seg, flags);
        let back = if flush {
            Some(s)
        } else {
            skb_gro_receive(p, s, seg)
        };
        match back {
            None => {
                mss = usize::from(p.mss);
                let keep = (flags & (TcpFlags::FIN | TcpFlags::PSH)).bits() as u8;
                if keep != 0
                    && let Ok(d) = p.skb.data_mut()
                {
                    d[IPV4_MIN_HLEN + TCP_FLAGS_OFF] |= keep;
                }
            }
            Some(s) => skb = Some(s),
        }
    }
    let closing = TcpFlags::URG | TcpFlags::PSH | TcpFlags::RST | TcpFlags::SYN | TcpFlags::FIN;
    let flush = len < mss || flags.intersects(closing);
    match skb {
        Some(skb) => TcpGroVerdict::NotMerged {
            flush_skb: flush || seg.ip_flush,
            skb,
        },
        None => TcpGroVerdict::Merged { flush },
    }
}

/// The checks of `tcp_gro_receive()` against the held packet `p`: `true`
/// means the segment must not be merged.
fn tcp_gro_flush(p: &mut GroSkb, skb: &SkBuff, seg: &InetTcpSeg, flags: TcpFlags) -> bool {
    let data = skb.data();
    let th = &data[IPV4_MIN_HLEN..IPV4_MIN_HLEN + seg.thlen];
    let pd = p.skb.data();
    let mut iph2 = [0u8; IPV4_MIN_HLEN];
    iph2.copy_from_slice(&pd[..IPV4_MIN_HLEN]);
    let th2 = &pd[IPV4_MIN_HLEN..];
    let flags2 = TcpFlags::from_bits_retain(u16::from(th2[TCP_FLAGS_OFF]));
    let ignore = TcpFlags::CWR | TcpFlags::FIN | TcpFlags::PSH;
    let mut flush = flags.contains(TcpFlags::CWR);
    // The data offset byte (with the reserved bits and AE) and the flags.
    flush |= th[12] != th2[12];
    flush |= !((flags ^ flags2) - ignore).is_empty();
    // The ACK number and every option byte.
    flush |= th[8..12] != th2[8..12];
    flush |= th.get(20..) != th2.get(20..seg.thlen);
    flush |= inet_gro_flush(&data[..IPV4_MIN_HLEN], &iph2, p);
    let mss = usize::from(p.mss);
    flush |= seg.payload_len.wrapping_sub(1) >= mss;
    flush |= p.next_seq != seg.seq;
    flush | seg.ip_flush
}

/// Chains the segment's payload to the held packet as a fragment (its own
/// buffer, shared: no copy). Hands the segment back, unmerged, when the
/// packet would reach [`GSO_MAX_SIZE`] (`-E2BIG`).
fn skb_gro_receive(p: &mut GroSkb, skb: SkBuff, seg: &InetTcpSeg) -> Option<SkBuff> {
    let len = seg.payload_len;
    if p.skb.len() + len >= GSO_MAX_SIZE {
        return Some(skb);
    }
    let csum_unnecessary = skb.ip_summed == IpSummed::Unnecessary;
    // The segment's payload starts after its IP and TCP headers; a frame
    // padded past `tot_len` is never merged (`ip_flush`), so the rest of
    // the skb is exactly the payload.
    if let Err((skb, _)) = p.skb.append_frags(skb, IPV4_MIN_HLEN + seg.thlen) {
        return Some(*skb);
    }
    p.count += 1;
    p.next_seq = p.next_seq.wrapping_add(len as u32);
    p.all_csum_unnecessary &= csum_unnecessary;
    None
}

/// Fixes the headers of a merged packet: IPv4 total length and checksum,
/// the TCP checksum, and the GSO fields.
///
/// Mirrors `inet_gro_complete()` + `tcp4_gro_complete()` +
/// `tcp_gro_complete()`; see the module's deviations for the checksum.
pub(crate) fn tcp4_gro_complete(skb: &mut SkBuff, count: u16, mss: u16, all_unnecessary: bool) {
    let tot_len = skb.len() as u16;
    let check_at = IPV4_MIN_HLEN + TCP_CHECK_OFF;
    let Ok(d) = skb.data_mut() else { return };
    d[check_at..check_at + 2].fill(0);
    // The TCP header and payload, fragments included (`skb_checksum()`).
    let tcp_len = tot_len - IPV4_MIN_HLEN as u16;
    let tcp_sum = if all_unnecessary {
        0
    } else {
        skb.checksum(IPV4_MIN_HLEN, usize::from(tcp_len), 0)
            .unwrap_or(0)
    };
    let Ok(d) = skb.data_mut() else { return };
    d[2..4].copy_from_slice(&tot_len.to_be_bytes());
    d[10..12].fill(0);
    let check = ip_fast_csum(&d[..IPV4_MIN_HLEN]);
    d[10..12].copy_from_slice(&check.to_be_bytes());
    let saddr = Ipv4Addr::new(d[12], d[13], d[14], d[15]);
    let daddr = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
    let cwr = d[IPV4_MIN_HLEN + TCP_FLAGS_OFF] & (TcpFlags::CWR.bits() as u8) != 0;
    let check = if all_unnecessary {
        !csum_tcpudp_magic(saddr, daddr, tcp_len, IPPROTO_TCP, 0)
    } else {
        csum_tcpudp_magic(saddr, daddr, tcp_len, IPPROTO_TCP, tcp_sum)
    };
    d[check_at..check_at + 2].copy_from_slice(&check.to_be_bytes());
    skb.ip_summed = if all_unnecessary {
        IpSummed::Unnecessary
    } else {
        IpSummed::None
    };
    skb.gso_size = mss;
    skb.gso_segs = count;
    if cwr {
        skb.gso_type |= SkbGsoType::TCP_ECN;
    }
}
