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
