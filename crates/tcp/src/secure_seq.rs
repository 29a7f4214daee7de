//! Keyed hashes for initial sequence numbers, timestamp offsets, ephemeral
//! port offsets and SYN cookies.
//!
//! Mirrors `net/core/secure_seq.c` (`secure_tcp_seq()`,
//! `secure_tcp_ts_off()`, `secure_ipv4_port_ephemeral()`) and the SipHash of
//! `lib/siphash.c` they use (RFC 6528's keyed function `F`).

use core::net::Ipv4Addr;

use netcore::Instant;

/// A 128-bit SipHash key. Mirrors `siphash_key_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiphashKey(pub [u64; 2]);

#[inline]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 of the 64-bit words `words` (byte length `8 * len`).
///
/// Mirrors `siphash()` for inputs that are whole words, as
/// `siphash_2u32()`/`siphash_3u32()`/`siphash_4u32()` pack them.
pub fn siphash(words: &[u64], key: &SiphashKey) -> u64 {
    let mut v = [
        0x736f_6d65_7073_6575 ^ key.0[0],
        0x646f_7261_6e64_6f6d ^ key.0[1],
        0x6c79_6765_6e65_7261 ^ key.0[0],
        0x7465_6462_7974_6573 ^ key.0[1],
    ];
    for &m in words {
        v[3] ^= m;
        sipround(&mut v);
        sipround(&mut v);
        v[0] ^= m;
    }
    let b = ((words.len() as u64 * 8) & 0xff) << 56;
    v[3] ^= b;
    sipround(&mut v);
    sipround(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for _ in 0..4 {
        sipround(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn pack(a: u32, b: u32) -> u64 {
    u64::from(a) | (u64::from(b) << 32)
}

/// The secrets of one host (`net_secret`, `ts_secret`, `syncookie_secret`),
/// drawn once from its seeded random source.
#[derive(Clone, Copy, Debug)]
pub struct TcpSecrets {
    /// Key of ISNs and port offsets (`net_secret`).
    pub net_secret: SiphashKey,
    /// Key of timestamp offsets (`ts_secret`).
    pub ts_secret: SiphashKey,
    /// Keys of SYN cookies (`syncookie_secret[2]`).
    pub syncookie_secret: [SiphashKey; 2],
    /// Key of the established table's hash (`inet_ehash_secret`).
    pub ehash_secret: u32,
}

impl TcpSecrets {
    /// Secrets expanded from `seed`.
    pub fn from_seed(seed: u64) -> TcpSecrets {
        let mut r = SplitMix64::new(seed ^ 0x7463_705f_7365_6372);
        let mut key = || SiphashKey([r.next_u64(), r.next_u64()]);
        TcpSecrets {
            net_secret: key(),
            ts_secret: key(),
            syncookie_secret: [key(), key()],
            ehash_secret: (r.next_u64() >> 32) as u32,
        }
    }
}

fn addr(a: Ipv4Addr) -> u32 {
    u32::from(a)
}

/// The initial sequence number of a connection (RFC 6528).
///
/// Mirrors `secure_tcp_seq()`: a keyed hash of the 4-tuple plus the clock
/// in 64 ns ticks (`seq_scale()`, `ktime_get_real_ns() >> 6`).
pub fn secure_tcp_seq(
    s: &TcpSecrets,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    sport: u16,
    dport: u16,
    now: Instant,
) -> u32 {
    let h = siphash(
        &[
            pack(addr(saddr), addr(daddr)),
            u64::from((u32::from(sport) << 16) | u32::from(dport)),
        ],
        &s.net_secret,
    );
    (h as u32).wrapping_add((now.as_nanos() >> 6) as u32)
}

/// The per-connection timestamp offset. Mirrors `secure_tcp_ts_off()`.
pub fn secure_tcp_ts_off(s: &TcpSecrets, saddr: Ipv4Addr, daddr: Ipv4Addr) -> u32 {
    siphash(&[pack(addr(saddr), addr(daddr))], &s.ts_secret) as u32
}

/// The keyed offset where the ephemeral port search starts for a
/// destination. Mirrors `secure_ipv4_port_ephemeral()`.
pub fn secure_ipv4_port_ephemeral(
    s: &TcpSecrets,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    dport: u16,
) -> u64 {
    siphash(
        &[pack(addr(saddr), addr(daddr)), u64::from(dport)],
        &s.net_secret,
    )
}

/// A small seeded generator (SplitMix64) for expanding a seed into keys
/// and for the test fixtures.
///
/// Plays the role of `get_random_bytes()` at boot (`net_secret_init()`);
/// the simulation wants the same seed to give the same keys.
///
/// # Deviations from Linux
///
/// Not cryptographic: the host's seed is the secret.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..ceil` (0 when `ceil` is 0).
    pub fn below(&mut self, ceil: u32) -> u32 {
        if ceil == 0 {
            return 0;
        }
        (((self.next_u64() >> 32) * u64::from(ceil)) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siphash_reference_vector() {
        // SipHash-2-4 reference: key 00..0f, message 00..07 (one word).
        let key = SiphashKey([0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908]);
        assert_eq!(
            siphash(&[0x0706_0504_0302_0100], &key),
            0x93f5_f579_9a93_2462
        );
        assert_eq!(siphash(&[], &key), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn isn_moves_with_clock_and_tuple() {
        let s = TcpSecrets::from_seed(1);
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let b = Ipv4Addr::new(198, 18, 0, 2);
        let i0 = secure_tcp_seq(&s, a, b, 1000, 80, Instant::ZERO);
        let i1 = secure_tcp_seq(&s, a, b, 1000, 80, Instant::from_micros(4));
        assert_eq!(i1.wrapping_sub(i0), 62); // 4000 ns / 64
        assert_ne!(i0, secure_tcp_seq(&s, a, b, 1001, 80, Instant::ZERO));
        assert_ne!(
            secure_tcp_seq(&TcpSecrets::from_seed(2), a, b, 1000, 80, Instant::ZERO),
            i0
        );
        assert_ne!(secure_tcp_ts_off(&s, a, b), secure_tcp_ts_off(&s, b, a));
    }
}
