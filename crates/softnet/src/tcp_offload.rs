//! Software segmentation of a TCP/IPv4 GSO skb into MSS-sized frames.
//!
//! Mirrors `inet_gso_segment()` (`net/ipv4/af_inet.c`) and
//! `tcp4_gso_segment()`/`tcp_gso_segment()` (`net/ipv4/tcp_offload.c`),
//! which `skb_gso_segment()` ([`crate::gso`]) reaches through the offload
//! tables. Each segment gets a copy of the Ethernet, IPv4 and TCP headers
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
//!   they live in softnet because `ipv4` sits above it in the layer table
//!   and `validate_xmit_skb()` needs them.
//! - Segments are linear skbs with copied bytes, where Linux makes each
//!   segment's payload a set of frags that share the GSO skb's pages.
//! - The GSO skb's owner ([`netcore::SkbDestructor`]) is released when it
//!   is segmented, as if `skb_orphan()`ed, rather than handed on to the
//!   segments with its truesize split among them.

use core::fmt;
use std::net::Ipv4Addr;

use netcore::{IpSummed, NetdevFeatures, SkBuff, SkbError, SkbGsoType};
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
/// `HW_CSUM` the TCP checksums are left to it. The skb is not changed.
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
    let headroom = skb.headroom();
    let fin_psh = (TcpFlags::FIN | TcpFlags::PSH).bits() as u8;
    let cwr = TcpFlags::CWR.bits() as u8;

    let mut segs = Vec::with_capacity(nsegs);
    for i in 0..nsegs {
        let off = i * mss;
        let len = mss.min(payload - off);
        let mut seg = SkBuff::alloc(skb.pool(), headroom + hdr_len + len)?;
        seg.reserve(headroom)?;
        let d = seg.put(hdr_len + len)?;
        d[..hdr_len].copy_from_slice(&hdr);
        skb.copy_bits(hdr_len + off, &mut d[hdr_len..])?;
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
            !csum_tcpudp_magic(saddr, daddr, tcp_len, IPPROTO_TCP, 0)
        } else {
            csum_tcpudp_magic(
                saddr,
                daddr,
                tcp_len,
                IPPROTO_TCP,
                csum_partial(&d[th..], 0),
            )
        };
        d[check_at..check_at + 2].copy_from_slice(&check.to_be_bytes());
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
