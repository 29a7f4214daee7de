//! Software segmentation of a TCP/IPv4 GSO skb into MSS-sized frames.
//!
//! Mirrors `inet_gso_segment()` (`net/ipv4/af_inet.c`) and
//! `tcp4_gso_segment()`/`tcp_gso_segment()` (`net/ipv4/tcp_offload.c`),
//! which `skb_gso_segment()` ([`crate::skb_gso_segment`]) reaches through
//! the offload tables. Each segment gets a copy of the Ethernet, IPv4 and TCP headers
//! and its share of the payload, then:
//!
//! - IPv4: `tot_len` of the segment, the ID incremented per segment
//!   (fixed when the skb is `SKB_GSO_TCP_FIXEDID`), a fresh header
//!   checksum;
//! - TCP: the sequence number advanced by `gso_size` per segment; FIN and
//!   PSH only on the last segment, CWR only on the first; the checksum left
//!   to the device (`CHECKSUM_PARTIAL` with the pseudo-header sum) when it
//!   offloads checksums, else computed in full.
//!
//! # Deviations from Linux
//!
//! - These are IPv4 and TCP functions that Linux keeps under `net/ipv4`;
//!   they live in netcore, under `skb_gso_segment()`, because every layer
//!   that segments sits below `ipv4` in the layer table: softnet's
//!   `validate_xmit_skb()` and the qdiscs (`tbf_segment()`) both call them.
//! - As in Linux's `skb_segment()`: for a device with scatter-gather
//!   (`NETIF_F_SG`) the payload a segment takes from the GSO skb's
//!   fragments stays there (the segment's fragments share those buffers;
//!   TCP's GSO skbs carry all their payload so, and none of it is
//!   copied), and only what lies in the GSO skb's linear part is copied
//!   into the segment's; for a device without, the segment is linear with
//!   the whole payload copied in.
//! - The GSO skb's owner ([`crate::SkbDestructor`]) is released when it
//!   is segmented, as if `skb_orphan()`ed, rather than handed on to the
//!   segments with its truesize split among them.

use core::fmt;
use std::net::Ipv4Addr;

use crate::{IpSummed, NetdevFeatures, SkBuff, SkbError, SkbGsoType};
use wire::{TcpFlags, csum_partial, csum_tcpudp_magic, ip_fast_csum};

/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// Offset of the TCP flags byte (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR).
const TCP_FLAGS_OFF: usize = 13;
/// Offset of the TCP checksum.
const TCP_CHECK_OFF: usize = 16;

/// Why a GSO skb could not be segmented; the caller drops it and counts
/// `tx_dropped`, as `validate_xmit_skb()` does when `skb_gso_segment()`
/// fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoError {
    /// The GSO type names no segmentation done here (only `TCPV4`, with
    /// `TCP_ECN`, `TCP_FIXEDID` and `DODGY`, is).
    Unsupported {
        /// The skb's `gso_type`.
        gso_type: SkbGsoType,
    },
    /// The headers are not those the GSO type promises.
    Malformed {
        /// What was wrong.
        what: &'static str,
    },
    /// A segment could not be built (the pool is exhausted, say).
    Skb(SkbError),
}

impl fmt::Display for GsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GsoError::Unsupported { gso_type } => {
                write!(
                    f,
                    "no software segmentation for gso_type {gso_type:?}: accepts TCPV4"
                )
            }
            GsoError::Malformed { what } => write!(f, "malformed GSO skb: {what}"),
            GsoError::Skb(e) => write!(f, "cannot build a segment: {e}"),
        }
    }
}

impl core::error::Error for GsoError {}

impl From<SkbError> for GsoError {
    fn from(e: SkbError) -> GsoError {
        GsoError::Skb(e)
    }
}

/// The header layout of a TCP/IPv4 frame: network and transport offsets
/// from `data`, and the length of all headers.
#[derive(Clone, Copy, Debug)]
struct Layout {
    nh: usize,
    th: usize,
    hdr_len: usize,
}

/// Reads the header layout, as `inet_gso_segment()` and
/// `tcp4_gso_segment()` check it.
fn layout(skb: &SkBuff) -> Result<Layout, GsoError> {
    let bad = |what| GsoError::Malformed { what };
    let nh = match skb.network_offset() {
        Some(off) if off >= 0 => off.unsigned_abs(),
        _ => wire::ETH_HLEN,
    };
    let mut iph = [0u8; 20];
    skb.copy_bits(nh, &mut iph)
        .map_err(|_| bad("shorter than an IPv4 header"))?;
    if iph[0] >> 4 != 4 {
        return Err(bad("not IPv4"));
    }
    let ihl = usize::from(iph[0] & 0x0f) * 4;
    if ihl < 20 {
        return Err(bad("IPv4 header length below 20"));
    }
    if iph[9] != IPPROTO_TCP {
        return Err(bad("not TCP"));
    }
    if u16::from_be_bytes([iph[6], iph[7]]) & 0x3fff != 0 {
        return Err(bad("an IPv4 fragment"));
    }
    let th = nh + ihl;
    let mut doff = [0u8; 1];
    skb.copy_bits(th + 12, &mut doff)
        .map_err(|_| bad("shorter than a TCP header"))?;
    let thlen = usize::from(doff[0] >> 4) * 4;
    if thlen < 20 {
        return Err(bad("TCP data offset below 5"));
    }
    let hdr_len = th + thlen;
    if hdr_len > skb.len() {
        return Err(bad("shorter than its TCP header"));
    }
    Ok(Layout { nh, th, hdr_len })
}

/// Splits a TCP/IPv4 GSO skb into frames of at most `gso_size` payload
/// bytes, each a complete frame the device can send as is.
///
/// Mirrors `inet_gso_segment()` → `tcp4_gso_segment()` →
/// `tcp_gso_segment()`. `features` are the device's: with `IP_CSUM` or
/// `HW_CSUM` the TCP checksums are left to it; with `SG` a segment's
/// payload is fragments sharing the skb's buffers, else a copy. The skb is
/// not changed.
pub fn tcp4_gso_segment(skb: &SkBuff, features: NetdevFeatures) -> Result<Vec<SkBuff>, GsoError> {
    let allowed =
        SkbGsoType::TCPV4 | SkbGsoType::TCP_ECN | SkbGsoType::TCP_FIXEDID | SkbGsoType::DODGY;
    if !skb.gso_type.contains(SkbGsoType::TCPV4) || !(skb.gso_type - allowed).is_empty() {
        return Err(GsoError::Unsupported {
            gso_type: skb.gso_type,
        });
    }
    let mss = usize::from(skb.gso_size);
    if mss == 0 {
        return Err(GsoError::Malformed {
            what: "gso_size is 0",
        });
    }
    let Layout { nh, th, hdr_len } = layout(skb)?;
    let mut hdr = vec![0u8; hdr_len];
    skb.copy_bits(0, &mut hdr)?;
    let payload = skb.len() - hdr_len;
    let nsegs = payload.div_ceil(mss).max(1);
    let saddr = Ipv4Addr::new(hdr[nh + 12], hdr[nh + 13], hdr[nh + 14], hdr[nh + 15]);
    let daddr = Ipv4Addr::new(hdr[nh + 16], hdr[nh + 17], hdr[nh + 18], hdr[nh + 19]);
    let id0 = u16::from_be_bytes([hdr[nh + 4], hdr[nh + 5]]);
    let seq0 = u32::from_be_bytes([hdr[th + 4], hdr[th + 5], hdr[th + 6], hdr[th + 7]]);
    let flags0 = hdr[th + TCP_FLAGS_OFF];
    let fixedid = skb.gso_type.contains(SkbGsoType::TCP_FIXEDID);
    let hw_csum = features.intersects(NetdevFeatures::IP_CSUM | NetdevFeatures::HW_CSUM);
    let sg = features.contains(NetdevFeatures::SG);
    let headroom = skb.headroom();
    let fin_psh = (TcpFlags::FIN | TcpFlags::PSH).bits() as u8;
    let cwr = TcpFlags::CWR.bits() as u8;

    let mut segs = Vec::with_capacity(nsegs);
    for i in 0..nsegs {
        let off = i * mss;
        let len = mss.min(payload - off);
        // With scatter-gather, payload in the skb's fragments stays where
        // it is (shared, added below) and only what lies in its linear
        // part is copied; without, all of it is copied in.
        let start = hdr_len + off;
        let linear = if sg {
            skb.headlen().saturating_sub(start).min(len)
        } else {
            len
        };
        let mut seg = SkBuff::alloc(skb.pool(), headroom + hdr_len + linear)?;
        seg.reserve(headroom)?;
        let d = seg.put(hdr_len + linear)?;
        d[..hdr_len].copy_from_slice(&hdr);
        skb.copy_bits(start, &mut d[hdr_len..])?;
        // IPv4: length, ID, checksum.
        let tot_len = (hdr_len - nh + len) as u16;
        d[nh + 2..nh + 4].copy_from_slice(&tot_len.to_be_bytes());
        let id = if fixedid {
            id0
        } else {
            id0.wrapping_add(i as u16)
        };
        d[nh + 4..nh + 6].copy_from_slice(&id.to_be_bytes());
        d[nh + 10..nh + 12].fill(0);
        let ip_check = ip_fast_csum(&d[nh..th]);
        d[nh + 10..nh + 12].copy_from_slice(&ip_check.to_be_bytes());
        // TCP: sequence number, flags, checksum.
        let seq = seq0.wrapping_add(off as u32);
        d[th + 4..th + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = flags0;
        if i + 1 < nsegs {
            flags &= !fin_psh;
        }
        if i > 0 {
            flags &= !cwr;
        }
        d[th + TCP_FLAGS_OFF] = flags;
        let tcp_len = (hdr_len - th + len) as u16;
        let check_at = th + TCP_CHECK_OFF;
        d[check_at..check_at + 2].fill(0);
        let check = if hw_csum {
            // The pseudo-header sum; the device adds the rest.
            Some(!csum_tcpudp_magic(saddr, daddr, tcp_len, IPPROTO_TCP, 0))
        } else if linear < len {
            None
        } else {
            let sum = csum_partial(&d[th..], 0);
            Some(csum_tcpudp_magic(saddr, daddr, tcp_len, IPPROTO_TCP, sum))
        };
        if linear < len {
            seg.add_shared_frags(skb, start + linear, len - linear)?;
        }
        let check = if let Some(c) = check {
            c
        } else {
            // Over the header and the shared payload.
            let sum = seg.checksum(th, hdr_len - th + len, 0)?;
            csum_tcpudp_magic(saddr, daddr, tcp_len, IPPROTO_TCP, sum)
        };
        seg.data_mut()?[check_at..check_at + 2].copy_from_slice(&check.to_be_bytes());
        seg.reset_mac_header();
        seg.set_network_header(nh)?;
        seg.set_transport_header(th)?;
        seg.ip_summed = if hw_csum {
            IpSummed::Partial {
                csum_start: (headroom + th) as u16,
                csum_offset: TCP_CHECK_OFF as u16,
            }
        } else {
            IpSummed::None
        };
        seg.protocol = skb.protocol;
        seg.ifindex = skb.ifindex;
        seg.mark = skb.mark;
        seg.priority = skb.priority;
        seg.queue_mapping = skb.queue_mapping;
        seg.hash = skb.hash;
        seg.l4_hash = skb.l4_hash;
        seg.sw_hash = skb.sw_hash;
        seg.pkt_type = skb.pkt_type;
        seg.tstamp = skb.tstamp;
        seg.vlan_tci = skb.vlan_tci;
        seg.nfct = skb.nfct;
        segs.push(seg);
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use crate::{ETH_P_IP, PagePool, PagePoolParams, SkbGsoType};
    use wire::{Ipv4Packet, TcpPacket};

    use super::*;

    /// A GSO skb as TCP hands it down: Ethernet, IPv4 and TCP headers in
    /// the linear part, the payload in fragments of `frag` bytes, each in
    /// a buffer of its own (the write queue's).
    fn tcp_gso_skb(pool: &PagePool, payload: &[u8], frag: usize, mss: u16) -> SkBuff {
        let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
        let tot = (20 + 20 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&tot.to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
        f.extend_from_slice(&40000u16.to_be_bytes());
        f.extend_from_slice(&80u16.to_be_bytes());
        f.extend_from_slice(&1000u32.to_be_bytes());
        f.extend_from_slice(&77u32.to_be_bytes());
        f.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]); // ACK|PSH
        let mut skb = SkBuff::from_slice(pool, 64, &f).unwrap();
        for part in payload.chunks(frag) {
            let mut e = SkBuff::from_slice(pool, 0, &[0u8; 8]).unwrap();
            e.put_data(part).unwrap();
            skb.append_frags(e, 8).unwrap();
        }
        skb.protocol = ETH_P_IP;
        skb.set_network_header(14).unwrap();
        skb.set_transport_header(34).unwrap();
        skb.gso_size = mss;
        skb.gso_type = SkbGsoType::TCPV4;
        skb
    }

    /// The frame's bytes, across the linear part and fragments.
    fn bytes(skb: &SkBuff) -> Vec<u8> {
        let mut b = vec![0u8; skb.len()];
        skb.copy_bits(0, &mut b).unwrap();
        b
    }

    /// With scatter-gather, segments of a GSO skb whose payload is in
    /// fragments share those buffers (only a header buffer per segment is
    /// new) and are byte for byte the frames of the copying path, valid
    /// checksums included; a GSO packet cut off-MSS from its fragments
    /// still reads back in order.
    #[test]
    fn sg_segments_share_the_payload_and_match_the_copied_frames() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let payload: Vec<u8> = (0..4000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        for (frag, mss) in [(1000, 1000), (1000, 1448)] {
            let skb = tcp_gso_skb(&pool, &payload, frag, mss);
            let before = pool.stats().inflight();
            let shared = tcp4_gso_segment(&skb, NetdevFeatures::SG).unwrap();
            let n = payload.len().div_ceil(usize::from(mss));
            assert_eq!(shared.len(), n);
            assert_eq!(
                pool.stats().inflight(),
                before + n as u64,
                "one header buffer per segment, no payload copied"
            );
            let copied = tcp4_gso_segment(&skb, NetdevFeatures::empty()).unwrap();
            let mut got = Vec::new();
            for (i, (s, c)) in shared.iter().zip(&copied).enumerate() {
                assert!(s.is_nonlinear() && s.headlen() == 54, "segment {i}");
                assert!(!c.is_nonlinear());
                let b = bytes(s);
                assert_eq!(b, bytes(c), "segment {i} as the copying path cuts it");
                let ip = Ipv4Packet::new_verified(&b[14..]).unwrap();
                let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
                assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
                assert_eq!(tcp.seq_number(), 1000 + (i * usize::from(mss)) as u32);
                got.extend_from_slice(tcp.payload());
            }
            assert_eq!(got, payload);
            // The pseudo-header sum only, for a device that finishes it.
            let hw = tcp4_gso_segment(&skb, NetdevFeatures::SG | NetdevFeatures::IP_CSUM).unwrap();
            assert!(matches!(hw[0].ip_summed, IpSummed::Partial { .. }));
        }
    }
}
