//! The ECN field of the IP header (RFC 3168): its codepoints and marking
//! a packet "congestion experienced".
//!
//! Mirrors `include/net/inet_ecn.h` (`INET_ECN_*`, `INET_ECN_set_ce()`,
//! `IP_ECN_set_ce()`), for IPv4.

use crate::{ETH_P_IP, SkBuff};

/// Not ECN-capable transport. Mirrors `INET_ECN_NOT_ECT`.
pub const INET_ECN_NOT_ECT: u8 = 0;
/// ECN-capable transport, codepoint 1. Mirrors `INET_ECN_ECT_1`.
pub const INET_ECN_ECT_1: u8 = 1;
/// ECN-capable transport, codepoint 0. Mirrors `INET_ECN_ECT_0`.
pub const INET_ECN_ECT_0: u8 = 2;
/// Congestion experienced. Mirrors `INET_ECN_CE`.
pub const INET_ECN_CE: u8 = 3;
/// The ECN bits of the TOS byte. Mirrors `INET_ECN_MASK`.
pub const INET_ECN_MASK: u8 = 3;

/// Marks an IPv4 packet CE, as an AQM does instead of dropping it: an
/// ECT(0) or ECT(1) packet becomes CE (its header checksum updated in
/// place, RFC 1624); one already CE stays so. Returns whether the packet
/// now says CE: `false` for a packet that is not ECN-capable (the caller
/// drops it instead), not IPv4, or whose IPv4 header is not in the linear
/// part or cannot be written.
///
/// Mirrors `INET_ECN_set_ce()` with `IP_ECN_set_ce()`.
pub fn inet_ecn_set_ce(skb: &mut SkBuff) -> bool {
    if skb.protocol != ETH_P_IP {
        return false;
    }
    let Some(h) = skb.network_header() else {
        return false;
    };
    if h.len() < 20 {
        return false;
    }
    match h[1] & INET_ECN_MASK {
        INET_ECN_NOT_ECT => return false,
        INET_ECN_CE => return true,
        _ => {}
    }
    let Ok(h) = skb.network_header_mut() else {
        return false;
    };
    let old = u16::from_be_bytes([h[0], h[1]]);
    h[1] |= INET_ECN_CE;
    let new = u16::from_be_bytes([h[0], h[1]]);
    let check = u16::from_be_bytes([h[10], h[11]]);
    let check = wire::csum_replace2(check, old, new);
    h[10..12].copy_from_slice(&check.to_be_bytes());
    true
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{PagePool, PagePoolParams};

    fn ipv4(tos: u8) -> SkBuff {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut skb = SkBuff::alloc(&pool, 64).unwrap();
        let d = skb.put(20).unwrap();
        d[0] = 0x45;
        d[1] = tos;
        d[2..4].copy_from_slice(&20u16.to_be_bytes());
        d[8] = 64;
        d[9] = 6;
        d[12..16].copy_from_slice(&[198, 18, 0, 1]);
        d[16..20].copy_from_slice(&[198, 18, 0, 2]);
        let check = wire::ip_fast_csum(d);
        d[10..12].copy_from_slice(&check.to_be_bytes());
        skb.reset_network_header();
        skb.protocol = ETH_P_IP;
        skb
    }

    #[test]
    fn ect_becomes_ce_with_a_valid_checksum() {
        for tos in [0xb8 | INET_ECN_ECT_0, INET_ECN_ECT_1, INET_ECN_CE] {
            let mut skb = ipv4(tos);
            assert!(inet_ecn_set_ce(&mut skb), "tos {tos:#x}");
            let h = skb.network_header().unwrap();
            assert_eq!(h[1], tos | INET_ECN_CE);
            // A header with a correct checksum sums to 0.
            assert_eq!(wire::ip_fast_csum(&h[..20]), 0, "tos {tos:#x}");
        }
    }

    #[test]
    fn not_ect_and_not_ipv4_are_left_alone() {
        let mut skb = ipv4(0xb8);
        assert!(!inet_ecn_set_ce(&mut skb));
        assert_eq!(skb.network_header().unwrap()[1], 0xb8);
        let mut skb = ipv4(INET_ECN_ECT_0);
        skb.protocol = 0x86dd;
        assert!(!inet_ecn_set_ce(&mut skb));
        assert_eq!(skb.network_header().unwrap()[1], INET_ECN_ECT_0);
    }
}
