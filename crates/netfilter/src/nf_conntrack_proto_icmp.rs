//! ICMP connection tracking: echo request/reply pairs, and errors related
//! to the connection they quote.
//!
//! Mirrors `net/netfilter/nf_conntrack_proto_icmp.c`: `icmp_pkt_to_tuple()`
//! (id, type, code), `icmp_new()` (only queries start a connection),
//! `nf_conntrack_icmpv4_error()` / `icmp_error_message()` (the quoted
//! header's tuple, to find the connection an error is RELATED to).

use std::net::Ipv4Addr;

use crate::nf_conntrack_core::{CtPacket, NfConntrackTuple, nf_ct_get_tuple};

/// Whether an ICMP type is an error that quotes a datagram: destination
/// unreachable, source quench, redirect, time exceeded, parameter problem.
pub fn is_icmp_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// `(id, type << 8 | code)` of an ICMP header (`icmp_pkt_to_tuple()`).
pub(crate) fn icmp_pkt_to_tuple(l4: &[u8]) -> Option<(u16, u16)> {
    let h = l4.get(..8)?;
    Some((
        u16::from_be_bytes([h[4], h[5]]),
        u16::from(h[0]) << 8 | u16::from(h[1]),
    ))
}

/// Whether the message may start a connection: echo, timestamp, info and
/// address-mask requests (`icmp_new()`, `valid_new[]`).
pub(crate) fn icmp_new(t: &NfConntrackTuple) -> bool {
    matches!(t.dst_u >> 8, 8 | 13 | 15 | 17)
}

/// The tuple of the datagram an ICMP error quotes, as the quoted packet
/// travelled; `None` when the quote is too short or itself an error.
pub(crate) fn icmp_error_tuple(l4: &[u8]) -> Option<NfConntrackTuple> {
    let inner = l4.get(8..)?;
    if inner.len() < 20 || inner[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(inner[0] & 0xf) * 4;
    if ihl < 20 || inner.len() < ihl + 8 {
        return None;
    }
    let protocol = inner[9];
    if protocol == 1 && is_icmp_error(inner[ihl]) {
        return None;
    }
    let p = CtPacket {
        saddr: Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]),
        daddr: Ipv4Addr::new(inner[16], inner[17], inner[18], inner[19]),
        protocol,
        l4: &inner[ihl..],
    };
    nf_ct_get_tuple(&p)
}
