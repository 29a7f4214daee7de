//! The Toeplitz hash that NICs use for receive-side scaling.
//!
//! Mirrors the hash a NIC computes for RSS (the kernel's software twin is in
//! `tools/testing/selftests/net/toeplitz.c`) and `netdev_rss_key` in
//! `net/core/dev.c`. For every set bit of the input, taken most significant
//! bit first, the 32-bit window of the key that starts at that bit position is
//! XORed into the result.
//!
//! # Deviations from Linux
//!
//! Linux fills `netdev_rss_key` with random bytes at boot. A deterministic
//! simulation needs a fixed key, so [`RSS_DEFAULT_KEY`] is the well-known key
//! from Microsoft's RSS specification, which many drivers also use as their
//! default and which has published test vectors.

use core::net::Ipv4Addr;

/// Length of an RSS key in bytes. Mirrors `NETDEV_RSS_KEY_LEN` (52 in Linux;
/// 40 bytes are what Toeplitz over an IPv4 or IPv6 4-tuple needs).
pub const RSS_KEY_LEN: usize = 40;

/// Microsoft's default 40-byte RSS key ("Verifying the RSS Hash Calculation").
pub const RSS_DEFAULT_KEY: [u8; RSS_KEY_LEN] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// Computes the Toeplitz hash of `input` under `key`.
///
/// Key bits past the end of `key` count as zero, so any input length is
/// accepted; with a 40-byte key the hash is exact for inputs up to 36 bytes
/// (an IPv6 4-tuple).
pub fn toeplitz_hash(key: &[u8], input: &[u8]) -> u32 {
    let key_byte = |i: usize| u64::from(key.get(i).copied().unwrap_or(0));
    // A 64-bit window whose top 32 bits are the key bits at the current position.
    let mut window: u64 = (key_byte(0) << 56)
        | (key_byte(1) << 48)
        | (key_byte(2) << 40)
        | (key_byte(3) << 32)
        | (key_byte(4) << 24);
    let mut hash = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= (window >> 32) as u32;
            }
            window <<= 1;
        }
        window |= key_byte(i + 5) << 24;
    }
    hash
}

/// The Toeplitz hash of an IPv4 2-tuple: source then destination address, as
/// a NIC hashes a non-TCP/UDP (or fragmented) IPv4 packet.
pub fn toeplitz_ipv4(key: &[u8], saddr: Ipv4Addr, daddr: Ipv4Addr) -> u32 {
    let mut input = [0u8; 8];
    input[..4].copy_from_slice(&saddr.octets());
    input[4..].copy_from_slice(&daddr.octets());
    toeplitz_hash(key, &input)
}

/// The Toeplitz hash of an IPv4 4-tuple: source address, destination address,
/// source port, destination port, as a NIC hashes TCP (and, when enabled, UDP).
pub fn toeplitz_ipv4_ports(
    key: &[u8],
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    sport: u16,
    dport: u16,
) -> u32 {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&saddr.octets());
    input[4..8].copy_from_slice(&daddr.octets());
    input[8..10].copy_from_slice(&sport.to_be_bytes());
    input[10..].copy_from_slice(&dport.to_be_bytes());
    toeplitz_hash(key, &input)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's "Verifying the RSS Hash Calculation", IPv4 table:
    /// (destination, destination port, source, source port, IPv4 only, IPv4 with TCP).
    type Vector = ([u8; 4], u16, [u8; 4], u16, u32, u32);
    const VECTORS: [Vector; 5] = [
        (
            [161, 142, 100, 80],
            1766,
            [66, 9, 149, 187],
            2794,
            0x323e8fc2,
            0x51ccc178,
        ),
        (
            [65, 69, 140, 83],
            4739,
            [199, 92, 111, 2],
            14230,
            0xd718262a,
            0xc626b0ea,
        ),
        (
            [12, 22, 207, 184],
            38024,
            [24, 19, 198, 95],
            12898,
            0xd2d0a5de,
            0x5c2b394a,
        ),
        (
            [209, 142, 163, 6],
            2217,
            [38, 27, 205, 30],
            48228,
            0x82989176,
            0xafc7327f,
        ),
        (
            [202, 188, 127, 2],
            1303,
            [153, 39, 163, 191],
            44251,
            0x5d1809c5,
            0x10e828a2,
        ),
    ];

    #[test]
    fn microsoft_verification_table() {
        for (dst, dport, src, sport, ipv4, ipv4_tcp) in VECTORS {
            let (s, d) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
            assert_eq!(toeplitz_ipv4(&RSS_DEFAULT_KEY, s, d), ipv4, "{s} -> {d}");
            assert_eq!(
                toeplitz_ipv4_ports(&RSS_DEFAULT_KEY, s, d, sport, dport),
                ipv4_tcp,
                "{s}:{sport} -> {d}:{dport}"
            );
        }
    }

    #[test]
    fn empty_input_and_short_key() {
        assert_eq!(toeplitz_hash(&RSS_DEFAULT_KEY, &[]), 0);
        // The first input bit XORs in the first 32 key bits.
        assert_eq!(toeplitz_hash(&RSS_DEFAULT_KEY, &[0x80]), 0x6d5a56da);
        // The last bit of a one-byte input uses key bits 7..39.
        assert_eq!(
            toeplitz_hash(&RSS_DEFAULT_KEY, &[0x01]),
            (0x6d5a56da25u64 >> 1) as u32
        );
        // Past the key, bits count as zero: no panic.
        assert_eq!(toeplitz_hash(&[], &[0xff; 64]), 0);
    }
}
