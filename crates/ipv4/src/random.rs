//! A seeded pseudo-random source for the few random choices of the IPv4
//! layer (`neigh_rand_reach_time`, `icmp_global_consume`).
//!
//! Linux draws from `get_random_u32_below()` (`drivers/char/random.c`);
//! the simulation needs the same seed to give the same packets, so the
//! source is an explicit value the caller seeds.

/// A small seeded generator (SplitMix64).
///
/// Mirrors the role of `get_random_u32_below()` in `drivers/char/random.c`.
///
/// # Deviations from Linux
///
/// Not cryptographic: the simulation wants reproducible runs, and nothing
/// here guards a secret.
#[derive(Clone, Debug)]
pub struct Prandom {
    state: u64,
}

impl Prandom {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Prandom {
        Prandom { state: seed }
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
    ///
    /// Mirrors `get_random_u32_below()`.
    #[doc(alias = "get_random_u32_below")]
    pub fn below(&mut self, ceil: u32) -> u32 {
        if ceil == 0 {
            return 0;
        }
        (((self.next_u64() >> 32) * u64::from(ceil)) >> 32) as u32
    }
}

/// A seeded, fast hasher for the layer's small hash tables (neighbours by
/// (device, address), devices by index).
///
/// Mirrors the role of the per-table random `hash_rnd` Linux mixes into
/// `arp_hashfn()` (`jhash`): keys an attacker chooses (IP addresses in ARP
/// packets) still land in unpredictable buckets, without the cost of the
/// standard library's SipHash on every packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HashRnd(pub(crate) u64);

impl core::hash::BuildHasher for HashRnd {
    type Hasher = RndHasher;
    fn build_hasher(&self) -> RndHasher {
        RndHasher(self.0)
    }
}

/// The hasher of [`HashRnd`]: a multiply-rotate fold, finished with a
/// SplitMix64 mix.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RndHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl core::hash::Hasher for RndHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(v)).wrapping_mul(K);
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(v)).wrapping_mul(K);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use core::hash::BuildHasher;

    use super::*;

    #[test]
    fn hashes_depend_on_the_seed_and_the_key() {
        let a = HashRnd(1);
        let b = HashRnd(2);
        let k = (2u32, std::net::Ipv4Addr::new(198, 18, 0, 1));
        let k2 = (2u32, std::net::Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(a.hash_one(k), a.hash_one(k));
        assert_ne!(a.hash_one(k), b.hash_one(k));
        assert_ne!(a.hash_one(k), a.hash_one(k2));
        assert_eq!(Prandom::new(3).below(0), 0);
    }
}
