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
    IP_DF, IP_MF, IP_OFFSET, IPV4_MIN_HLEN, TCP_MIN_HLEN, TcpFlags, csum_partial, csum_sub,
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
///
/// Reads the headers in place, as the kernel does through `skb_gro_header()`:
/// a 20-byte IPv4 header (`*(u8 *)iph != 0x45` goes out), protocol TCP, not
/// a fragment, a valid header checksum, a total length the skb holds; a TCP
/// data offset of at least 20 bytes within it; and a valid TCP checksum
/// (unless the device verified it). TCP options are not parsed: like
/// `tcp_gro_receive()`, GRO only compares their bytes with the held
/// packet's.
#[inline]
pub(crate) fn parse_inet_tcp(skb: &SkBuff) -> Option<InetTcpSeg> {
    let data = skb.data();
    let iph: &[u8; IPV4_MIN_HLEN] = data.first_chunk()?;
    if iph[0] != 0x45 || iph[9] != IPPROTO_TCP {
        return None;
    }
    let frag_off = u16::from_be_bytes([iph[6], iph[7]]);
    if frag_off & (IP_MF | IP_OFFSET) != 0 || ip_fast_csum(iph) != 0 {
        return None;
    }
    let tot_len = usize::from(u16::from_be_bytes([iph[2], iph[3]]));
    // The TCP segment, bounded by the IP total length.
    let th = data.get(IPV4_MIN_HLEN..tot_len)?;
    let doff = th.get(12)?;
    let thlen = usize::from(doff >> 4) * 4;
    if thlen < TCP_MIN_HLEN || thlen > th.len() {
        return None;
    }
    // Padding after `tot_len`, or frag bits other than DF.
    let ip_flush = tot_len != data.len() || frag_off & !IP_DF != 0;
    let saddr: [u8; 4] = [iph[12], iph[13], iph[14], iph[15]];
    let daddr: [u8; 4] = [iph[16], iph[17], iph[18], iph[19]];
    let csum_ok = match skb.ip_summed {
        IpSummed::Unnecessary => true,
        IpSummed::Complete { csum } if !ip_flush => {
            // The device summed from the IP header: take the header out.
            let tcp_sum = csum_sub(csum, csum_partial(iph, 0));
            csum_tcpudp_magic(
                Ipv4Addr::from(saddr),
                Ipv4Addr::from(daddr),
                th.len() as u16,
                IPPROTO_TCP,
                tcp_sum,
            ) == 0
        }
        _ => tcp_checksum_ok(saddr, daddr, th),
    };
    if !csum_ok {
        return None;
    }
    Some(InetTcpSeg {
        saddr,
        daddr,
        ports: [th[0], th[1], th[2], th[3]],
        seq: u32::from_be_bytes([th[4], th[5], th[6], th[7]]),
        payload_len: th.len() - thlen,
        thlen,
        ip_flush,
    })
}

/// Verifies the checksum of the TCP segment `th` in software
/// (`skb_gro_checksum_validate()` → `__skb_gro_checksum_complete()`).
#[cold]
fn tcp_checksum_ok(saddr: [u8; 4], daddr: [u8; 4], th: &[u8]) -> bool {
    csum_tcpudp_magic(
        Ipv4Addr::from(saddr),
        Ipv4Addr::from(daddr),
        th.len() as u16,
        IPPROTO_TCP,
        csum_partial(th, 0),
    ) == 0
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
/// and the IP ID rule, against a held packet of `count` segments whose ID
/// was found fixed (`fixedid`). Returns whether not to merge, and whether
/// the flow's ID is now known to be fixed.
#[inline]
fn inet_gro_flush(iph: &[u8], iph2: &[u8], count: u16, fixedid: bool) -> (bool, bool) {
    let id = u16::from_be_bytes([iph[4], iph[5]]);
    let id2 = u16::from_be_bytes([iph2[4], iph2[5]]);
    let df = iph[6] & 0x40 != 0;
    let df2 = iph2[6] & 0x40 != 0;
    // TTL, TOS and DF must match.
    if iph[8] != iph2[8] || iph[1] != iph2[1] || df != df2 {
        return (true, fixedid);
    }
    let ipid_offset = id.wrapping_sub(id2);
    let fixedid = fixedid || (count == 1 && df && ipid_offset == 0);
    let expect = if fixedid { 0 } else { count };
    (ipid_offset != expect, fixedid)
}

/// The TCP flags that make `tcp_gro_receive()` send a segment up instead
/// of holding it (`flush = ... | (flags & (URG|PSH|RST|SYN|FIN))`).
const CLOSING: TcpFlags = TcpFlags::URG
    .union(TcpFlags::PSH)
    .union(TcpFlags::RST)
    .union(TcpFlags::SYN)
    .union(TcpFlags::FIN);

/// Whether the flags byte where [`tcp_gro_receive`] reads it (after a
/// 20-byte IPv4 header) has a closing flag: such a segment is never held,
/// whether or not [`parse_inet_tcp`] accepts it.
#[inline]
pub(crate) fn tcp_segment_closes(skb: &SkBuff) -> bool {
    skb.data()
        .get(IPV4_MIN_HLEN + TCP_FLAGS_OFF)
        .is_some_and(|&f| TcpFlags::from_bits_retain(u16::from(f)).intersects(CLOSING))
}

/// `tcp_gro_receive()` against the held packet `p` of the segment's flow.
///
/// Takes the segment; hands it back unless it was merged.
#[inline]
pub(crate) fn tcp_gro_receive(
    p: Option<&mut GroSkb>,
    skb: SkBuff,
    seg: &InetTcpSeg,
) -> TcpGroVerdict {
    // parse_inet_tcp() checked that the TCP header lies in the data.
    let flags = skb
        .data()
        .get(IPV4_MIN_HLEN + TCP_FLAGS_OFF)
        .map_or(TcpFlags::empty(), |&f| {
            TcpFlags::from_bits_retain(u16::from(f))
        });
    let closing = CLOSING;
    let len = seg.payload_len;
    // Not merged: the segment goes up at once if it closes (an empty one
    // counts as shorter than `mss` = 1), else it is held.
    let not_merged = |skb: SkBuff| TcpGroVerdict::NotMerged {
        flush_skb: len < 1 || flags.intersects(closing) || seg.ip_flush,
        skb,
    };
    let Some(p) = p else {
        return not_merged(skb);
    };
    if tcp_gro_flush(p, &skb, seg, flags) {
        return not_merged(skb);
    }
    if let Some(skb) = skb_gro_receive(p, skb, seg) {
        return not_merged(skb);
    }
    let keep = (flags & (TcpFlags::FIN | TcpFlags::PSH)).bits() as u8;
    if keep != 0
        && let Ok(d) = p.skb.data_mut()
    {
        d[IPV4_MIN_HLEN + TCP_FLAGS_OFF] |= keep;
    }
    TcpGroVerdict::Merged {
        flush: len < usize::from(p.mss) || flags.intersects(closing),
    }
}

/// The checks of `tcp_gro_receive()` against the held packet `p`: `true`
/// means the segment must not be merged.
#[inline]
fn tcp_gro_flush(p: &mut GroSkb, skb: &SkBuff, seg: &InetTcpSeg, flags: TcpFlags) -> bool {
    let data = skb.data();
    let th = &data[IPV4_MIN_HLEN..IPV4_MIN_HLEN + seg.thlen];
    let pd = p.skb.data();
    // The held packet passed parse_inet_tcp() too: its headers are there.
    let Some((iph2, th2)) = pd.split_at_checked(IPV4_MIN_HLEN) else {
        return true;
    };
    let flags2 = TcpFlags::from_bits_retain(u16::from(th2[TCP_FLAGS_OFF]));
    let ignore = TcpFlags::CWR | TcpFlags::FIN | TcpFlags::PSH;
    let mut flush = flags.contains(TcpFlags::CWR);
    // The data offset byte (with the reserved bits and AE) and the flags.
    flush |= th[12] != th2[12];
    flush |= !((flags ^ flags2) - ignore).is_empty();
    // The ACK number and every option byte.
    flush |= th[8..12] != th2[8..12];
    flush |= th.get(20..) != th2.get(20..seg.thlen);
    let (ip_flush, fixedid) = inet_gro_flush(&data[..IPV4_MIN_HLEN], iph2, p.count, p.ip_fixedid);
    p.ip_fixedid = fixedid;
    flush |= ip_flush;
    let mss = usize::from(p.mss);
    flush |= seg.payload_len.wrapping_sub(1) >= mss;
    flush |= p.next_seq != seg.seq;
    flush | seg.ip_flush
}

/// Chains the segment's payload to the held packet as a fragment (its own
/// buffer, shared: no copy). Hands the segment back, unmerged, when the
/// packet would reach [`GSO_MAX_SIZE`] (`-E2BIG`).
#[inline]
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

#[cfg(all(test, not(loom)))]
mod tests {
    use netcore::{PagePool, PagePoolParams};
    use proptest::prelude::*;
    use wire::{IpProtocol, Ipv4Packet};

    use super::*;

    /// What GRO must accept, written with the checked `wire` views:
    /// `inet_gro_receive()`'s IPv4 checks, a TCP data offset of 20 bytes
    /// or more within the segment, and the TCP checksum unless the device
    /// verified it. TCP options are not validated (Linux's GRO does not).
    fn reference(data: &[u8], summed: IpSummed) -> Option<(usize, usize, bool, u32, [u8; 4])> {
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
        let th = ip.payload();
        let thlen = usize::from(*th.get(12)? >> 4) * 4;
        if thlen < TCP_MIN_HLEN || thlen > th.len() {
            return None;
        }
        let ok = summed == IpSummed::Unnecessary
            || csum_tcpudp_magic(
                ip.src_addr(),
                ip.dst_addr(),
                th.len() as u16,
                IPPROTO_TCP,
                csum_partial(th, 0),
            ) == 0;
        ok.then(|| {
            let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
            (
                thlen,
                th.len() - thlen,
                ip_flush,
                seq,
                [th[0], th[1], th[2], th[3]],
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]
        /// On bytes shaped like an IPv4/TCP frame with any field gone
        /// wrong (version and IHL, total length, fragment bits, protocol,
        /// header checksum, data offset, length, TCP checksum), the
        /// in-place parse agrees with the checked views and never panics.
        /// The weights make about one case in ten a frame GRO accepts.
        #[test]
        fn parse_inet_tcp_agrees_with_the_wire_views(
            mut bytes in proptest::collection::vec(any::<u8>(), 0..120),
            vihl in prop_oneof![6 => Just(0x45u8), 1 => Just(0x46), 1 => Just(0x55), 1 => any::<u8>()],
            tot in prop_oneof![6 => Just(None), 1 => any::<u16>().prop_map(Some)],
            frag in prop_oneof![
                4 => Just(0x4000u16), 4 => Just(0), 1 => Just(0x2000), 1 => Just(0x8000), 1 => any::<u16>()
            ],
            proto in prop_oneof![6 => Just(6u8), 1 => Just(17), 1 => any::<u8>()],
            fix_csum in prop::bool::weighted(0.85),
            doff in prop_oneof![4 => Just(5u8), 2 => Just(8), 1 => 0u8..16],
            unnecessary in any::<bool>(),
            fix_tcp_csum in prop::bool::weighted(0.8),
        ) {
            let pool = PagePool::new(PagePoolParams::default()).unwrap();
            if bytes.len() >= IPV4_MIN_HLEN {
                bytes[0] = vihl;
                let len = bytes.len() as u16;
                bytes[2..4].copy_from_slice(&tot.unwrap_or(len).to_be_bytes());
                bytes[6..8].copy_from_slice(&frag.to_be_bytes());
                bytes[9] = proto;
                if let Some(d) = bytes.get_mut(IPV4_MIN_HLEN + 12) {
                    *d = doff << 4;
                }
                // The TCP checksum over the segment as the IP header bounds it.
                let end = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
                if fix_tcp_csum && end >= IPV4_MIN_HLEN + 18 && end <= bytes.len() {
                    bytes[IPV4_MIN_HLEN + 16..IPV4_MIN_HLEN + 18].fill(0);
                    let th = &bytes[IPV4_MIN_HLEN..end];
                    let c = csum_tcpudp_magic(
                        Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]),
                        Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]),
                        th.len() as u16,
                        IPPROTO_TCP,
                        csum_partial(th, 0),
                    );
                    bytes[IPV4_MIN_HLEN + 16..IPV4_MIN_HLEN + 18].copy_from_slice(&c.to_be_bytes());
                }
                if fix_csum {
                    bytes[10..12].fill(0);
                    let c = ip_fast_csum(&bytes[..IPV4_MIN_HLEN]);
                    bytes[10..12].copy_from_slice(&c.to_be_bytes());
                }
            }
            let mut skb = SkBuff::from_slice(&pool, 64, &bytes).unwrap();
            skb.ip_summed = if unnecessary { IpSummed::Unnecessary } else { IpSummed::None };
            let got = parse_inet_tcp(&skb).map(|s| {
                prop_assert_eq!(s.saddr, [bytes[12], bytes[13], bytes[14], bytes[15]]);
                prop_assert_eq!(s.daddr, [bytes[16], bytes[17], bytes[18], bytes[19]]);
                Ok((s.thlen, s.payload_len, s.ip_flush, s.seq, s.ports))
            }).transpose()?;
            if got.is_some() {
                ACCEPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            prop_assert_eq!(got, reference(&bytes, skb.ip_summed));
        }
    }

    /// Frames the property test saw accepted (it must see some).
    static ACCEPTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn the_parse_property_sees_accepted_frames() {
        parse_inet_tcp_agrees_with_the_wire_views();
        let n = ACCEPTED.load(std::sync::atomic::Ordering::Relaxed);
        assert!(n >= 20, "only {n} of 1024 cases were frames GRO accepts");
    }
}
