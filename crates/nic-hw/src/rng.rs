//! A small, stable, seedable pseudo-random generator for impairments.
//!
//! Mirrors the role of `struct rnd_state` and `prandom_u32_state()` in
//! `lib/random32.c`, which netem (`net/sched/sch_netem.c`) uses so that a
//! seeded qdisc repeats its losses. The algorithm here is xoshiro256**
//! (Blackman and Vigna), seeded through SplitMix64; both are written out in
//! this file, so the sequence for a seed never changes with the platform, the
//! Rust version or a dependency's version.
//!
//! **Not for cryptography**: the state can be recovered from a few outputs.
//!
//! # Deviations from Linux
//!
//! `prandom_u32_state()` is a Tausworthe generator (LFSR113) producing 32
//! bits; xoshiro256** produces 64 bits per step with better statistical
//! quality and the same speed. Nothing depends on the exact Linux sequence.

use core::ops::Range;

/// A seedable xoshiro256** generator: same seed, same sequence, everywhere.
///
/// Mirrors `struct rnd_state` (`include/linux/prandom.h`). Not suitable for
/// cryptography.
///
/// ```
/// use nic_hw::Rng;
/// let mut a = Rng::new(42);
/// let mut b = Rng::new(42);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.gen_range(10..20) >= 10);
/// ```
#[doc(alias = "rnd_state")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

/// One SplitMix64 step: advances `state` and returns the mixed output.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E3779B97F4A7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator whose state is four SplitMix64 outputs of `seed`.
    ///
    /// Mirrors `prandom_seed_state()`. Every seed, including zero, gives a
    /// valid (non-zero) state.
    #[doc(alias = "prandom_seed_state")]
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { s }
    }

    /// The next 64 random bits.
    ///
    /// Mirrors `prandom_u32_state()`, 64 bits wide.
    #[doc(alias = "prandom_u32_state")]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform float in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `true` with probability `p`; `p <= 0` (or NaN) is never, `p >= 1` always.
    ///
    /// Draws one value from the generator whatever `p` is, so the sequence
    /// of later draws does not depend on `p`.
    pub fn gen_bool(&mut self, p: f64) -> bool {
        let x = self.next_f64();
        x < p
    }

    /// A uniform integer in `range`, without modulo bias (Lemire's method).
    ///
    /// An empty range returns `range.start`.
    pub fn gen_range(&mut self, range: Range<u64>) -> u64 {
        let Some(span) = range.end.checked_sub(range.start).filter(|&s| s > 0) else {
            return range.start;
        };
        let threshold = span.wrapping_neg() % span;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(span);
            if (m as u64) >= threshold {
                return range.start + (m >> 64) as u64;
            }
        }
    }

    /// A new generator whose stream is independent of this one's, derived
    /// from this generator's state and `stream`.
    pub fn fork(&self, stream: u64) -> Rng {
        let mut sm =
            self.s[0] ^ self.s[2].rotate_left(17) ^ stream.wrapping_mul(0xD1B54A32D192ED03);
        Rng::new(splitmix64(&mut sm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_reference_outputs() {
        // The well-known first outputs of SplitMix64 seeded with 1234567.
        let mut s = 1234567u64;
        assert_eq!(splitmix64(&mut s), 6457827717110365317);
        assert_eq!(splitmix64(&mut s), 3203168211198807973);
        assert_eq!(splitmix64(&mut s), 9817491932198370423);
    }

    #[test]
    fn xoshiro_matches_reference_outputs() {
        // xoshiro256** with state {1, 2, 3, 4}, computed independently with a
        // big-integer transcription of the reference C code.
        let mut r = Rng { s: [1, 2, 3, 4] };
        assert_eq!(r.next_u64(), 11520);
        assert_eq!(r.next_u64(), 0);
        assert_eq!(r.next_u64(), 1509978240);
        assert_eq!(r.next_u64(), 1215971899390074240);
    }

    #[test]
    fn same_seed_same_sequence_other_seed_other_sequence() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..8).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::new(8);
            (0..8).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn gen_range_stays_in_range_and_covers_it() {
        let mut r = Rng::new(1);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = r.gen_range(3..10);
            assert!((3..10).contains(&v));
            seen[(v - 3) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(r.gen_range(5..5), 5);
    }

    #[test]
    fn gen_bool_extremes_and_mean() {
        let mut r = Rng::new(2);
        assert!((0..100).all(|_| !r.gen_bool(0.0)));
        assert!((0..100).all(|_| r.gen_bool(1.0)));
        assert!((0..100).all(|_| !r.gen_bool(f64::NAN)));
        let hits = (0..100_000).filter(|_| r.gen_bool(0.25)).count();
        // Mean 25000, standard deviation about 137: six sigma is 822.
        assert!((24_178..=25_822).contains(&hits), "{hits}");
    }

    #[test]
    fn next_f64_is_in_unit_interval() {
        let mut r = Rng::new(3);
        for _ in 0..10_000 {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
