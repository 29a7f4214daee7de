//! The flow hash of an skb and the helpers every hash user shares.
//!
//! Mirrors `skb_get_hash()`/`__skb_get_hash()` of
//! `net/core/flow_dissector.c` (the keys come from
//! [`wire::skb_flow_dissect_flow_keys`]), `reciprocal_scale()` of
//! `include/linux/math.h` and `jhash_3words()` of `include/linux/jhash.h`.
//! RPS and XPS (softnet), `fq_codel`'s flow classifier (qdisc) and
//! `SO_REUSEPORT` selection (udp) use these one definitions.
//!
//! # Deviations from Linux
//!
//! - The software flow hash is the Toeplitz hash of the flow keys under
//!   [`wire::RSS_DEFAULT_KEY`], not `siphash` under a random boot-time key:
//!   the simulation must be reproducible, and a software hash then equals
//!   the RSS hash a NIC with the default key gives the same packet. As in
//!   Linux a zero result becomes 1, so "no hash" stays distinguishable, and
//!   a packet the dissector cannot read still gets a (constant) hash.

use wire::{RSS_DEFAULT_KEY, skb_flow_dissect_flow_keys};

use crate::skbuff::SkBuff;

/// Maps `val` uniformly onto `0..ep_ro` with a multiply and a shift
/// instead of a division.
///
/// Mirrors `reciprocal_scale()` in `include/linux/math.h`.
///
/// ```
/// assert_eq!(netcore::reciprocal_scale(u32::MAX, 1024), 1023);
/// assert_eq!(netcore::reciprocal_scale(0x8000_0000, 4), 2);
/// ```
#[inline]
pub fn reciprocal_scale(val: u32, ep_ro: u32) -> u32 {
    ((u64::from(val) * u64::from(ep_ro)) >> 32) as u32
}

/// `JHASH_INITVAL`: the arbitrary starting value of Bob Jenkins' hash.
const JHASH_INITVAL: u32 = 0xdead_beef;

/// Hashes three 32-bit words with a seed.
///
/// Mirrors `jhash_3words()` in `include/linux/jhash.h` (`__jhash_nwords()`
/// followed by the `__jhash_final()` mix), bit for bit.
pub fn jhash_3words(a: u32, b: u32, c: u32, initval: u32) -> u32 {
    let start = initval.wrapping_add(JHASH_INITVAL).wrapping_add(3 << 2);
    let (a, b, c) = (
        a.wrapping_add(start),
        b.wrapping_add(start),
        c.wrapping_add(start),
    );
    // __jhash_final(a, b, c): (into, from, rotation) for each step.
    let mut v = [a, b, c];
    for (x, y, r) in [
        (2, 1, 14),
        (0, 2, 11),
        (1, 0, 25),
        (2, 1, 16),
        (0, 2, 4),
        (1, 0, 14),
        (2, 1, 24),
    ] {
        v[x] ^= v[y];
        v[x] = v[x].wrapping_sub(v[y].rotate_left(r));
    }
    v[2]
}

/// The Ethernet frame of an skb wherever its data starts: from the MAC
/// header when one is set at or before `data` (received, after
/// `eth_type_trans()`), else from `data` (a frame being transmitted).
fn skb_frame(skb: &SkBuff) -> &[u8] {
    match skb.mac_offset() {
        Some(off) if off <= 0 => skb.mac_header().unwrap_or_else(|| skb.data()),
        _ => skb.data(),
    }
}

/// The flow hash of an skb; computes and stores a software hash when the
/// device gave none, or only an L3 one.
///
/// Mirrors `skb_get_hash()` → `__skb_get_hash()`: dissects the flow keys
/// (addresses, protocol, ports), hashes them (see the module's
/// deviations), and marks the hash `sw_hash`, and `l4_hash` when the ports
/// were covered. A hash already set with `l4_hash` or `sw_hash` is kept.
///
/// ```
/// use netcore::{PagePool, PagePoolParams, SkBuff, skb_get_hash};
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let mut skb = SkBuff::from_slice(&pool, 0, &[0u8; 60]).unwrap();
/// skb.set_hash(0x1234, true); // the NIC's RSS hash covered the ports
/// assert_eq!(skb_get_hash(&mut skb), 0x1234);
/// ```
#[doc(alias = "__skb_get_hash")]
pub fn skb_get_hash(skb: &mut SkBuff) -> u32 {
    if !skb.l4_hash && !skb.sw_hash {
        let (hash, l4) = match skb_flow_dissect_flow_keys(skb_frame(skb), 0) {
            Some(keys) => (
                keys.toeplitz_hash(&RSS_DEFAULT_KEY),
                keys.sport != 0 || keys.dport != 0,
            ),
            None => (0, false),
        };
        skb.hash = if hash == 0 { 1 } else { hash };
        skb.l4_hash = l4;
        skb.sw_hash = true;
    }
    skb.hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_pool::{PagePool, PagePoolParams};

    /// An Ethernet + IPv4 + UDP frame from port `sport` to 53.
    fn udp_frame(sport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&28u16.to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[198, 18, 0, 1]);
        f[30..34].copy_from_slice(&[198, 18, 0, 2]);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&53u16.to_be_bytes());
        f[38..40].copy_from_slice(&8u16.to_be_bytes());
        f
    }

    #[test]
    fn reciprocal_scale_covers_the_range_evenly() {
        assert_eq!(reciprocal_scale(0, 4), 0);
        assert_eq!(reciprocal_scale(u32::MAX, 4), 3);
        let mut hits = [0u32; 8];
        for i in 0..8u32 {
            hits[reciprocal_scale(i << 29, 8) as usize] += 1;
        }
        assert_eq!(hits, [1; 8]);
    }

    #[test]
    fn jhash_depends_on_every_word_and_the_seed() {
        let h = jhash_3words(1, 2, 3, 0);
        assert_ne!(h, jhash_3words(1, 2, 4, 0));
        assert_ne!(h, jhash_3words(0, 2, 3, 0));
        assert_ne!(h, jhash_3words(1, 2, 3, 1));
    }

    #[test]
    fn software_hash_is_per_flow_and_marks_the_skb() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut a = SkBuff::from_slice(&pool, 0, &udp_frame(1000)).unwrap();
        let mut a2 = SkBuff::from_slice(&pool, 0, &udp_frame(1000)).unwrap();
        let mut b = SkBuff::from_slice(&pool, 0, &udp_frame(1001)).unwrap();
        let ha = skb_get_hash(&mut a);
        assert!(a.sw_hash && a.l4_hash);
        assert_eq!(skb_get_hash(&mut a2), ha, "same flow, same hash");
        assert_ne!(skb_get_hash(&mut b), ha, "other port, other hash");

        // Received: data at the network header, MAC header behind it.
        let mut rx = SkBuff::from_slice(&pool, 0, &udp_frame(1000)).unwrap();
        rx.reset_mac_header();
        rx.pull(14).unwrap();
        assert_eq!(skb_get_hash(&mut rx), ha, "rx and tx views hash alike");

        // An L3-only device hash is replaced; junk still gets a hash.
        let mut l3 = SkBuff::from_slice(&pool, 0, &udp_frame(1000)).unwrap();
        l3.set_hash(7, false);
        assert_eq!(skb_get_hash(&mut l3), ha);
        let mut junk = SkBuff::from_slice(&pool, 0, b"junk").unwrap();
        assert_eq!(skb_get_hash(&mut junk), 1);
        assert!(junk.sw_hash && !junk.l4_hash);
    }
}
