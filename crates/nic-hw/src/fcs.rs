//! The Ethernet frame check sequence: CRC-32 as an IEEE 802.3 MAC computes it.
//!
//! Mirrors `crc32_le()` in `lib/crc32.c` and `ether_crc_le()` in
//! `include/linux/crc32.h`, the CRC that NICs such as igb append on transmit
//! and check on receive (`E1000_RXD_ERR_CE`, counted as `rx_crc_errors`).
//!
//! The CRC is the reflected form of polynomial 0x04C11DB7 (0xEDB88320),
//! register preset to all ones, result complemented. The four FCS bytes
//! follow the frame least significant byte first, so the MAC sends the CRC's
//! bit 0 first, as IEEE 802.3 clause 3.2.9 requires.
//!
//! ```text
//! | dst 6 | src 6 | type 2 | payload 46..1500 | FCS 4 (CRC-32, little endian) |
//! |<--------------- covered by the CRC ------------>|
//! ```
//!
//! The arithmetic is the `crc32fast` crate's: it folds 16 bytes per step
//! with carry-less multiplication (`PCLMULQDQ`, chosen at run time when the
//! CPU has it) and falls back to a slice-by-16 table loop elsewhere. Both
//! give the IEEE CRC-32 that 802.3 specifies; the tests below check them
//! against a bit-at-a-time reference written from the definition.
//!
//! Minimum-size frames (49..=64 bytes: 60 on transmit, 64 with the FCS on
//! receive) take a shorter road on a CPU with `PCLMULQDQ`: their four
//! 16-byte blocks are folded to the end of the frame in parallel, each by
//! its own constant, instead of one after another (see `clmul`). A MAC
//! checks the FCS of every frame, so this chain of dependent multiplies
//! sets the latency of the receive path at 20 Mpps.
//!
//! # Deviations from Linux
//!
//! `lib/crc32.c` picks its own accelerated path per architecture
//! (`crc32_le_arch()`); here `crc32fast` makes that choice. The results are
//! the same bits. The minimum-frame fold is this crate's own, and the one
//! `unsafe` block of the MAC model: calling a `#[target_feature]` function
//! after detecting the feature at run time (the MAC's silicon, done with the
//! host CPU's carry-less multiplier).

use std::sync::LazyLock;

/// Length of the frame check sequence in bytes.
///
/// Mirrors `ETH_FCS_LEN` in `include/uapi/linux/if_ether.h`.
pub const ETH_FCS_LEN: usize = 4;

/// The reflected CRC-32 polynomial of IEEE 802.3.
///
/// Mirrors `CRC32_POLY_LE` in `include/linux/crc32poly.h`.
pub const CRC32_POLY_LE: u32 = 0xEDB8_8320;

/// Runs the reflected CRC register over `data`, with no preset and no final
/// complement.
///
/// Mirrors `crc32_le(crc, p, len)` in `lib/crc32.c`: pass `!0` to start a
/// fresh CRC, and feed the result back in to continue over more data.
pub fn crc32_le(crc: u32, data: &[u8]) -> u32 {
    // crc32fast keeps its state complemented (preset and final inversion
    // folded in), so the raw register is the complement of that state.
    let mut h = crc32fast::Hasher::new_with_initial(!crc);
    h.update(data);
    !h.finalize()
}

/// The FCS of `frame` (destination MAC through the end of the payload).
///
/// Mirrors `~crc32_le(~0, frame, len)`, the value igb's MAC appends.
/// Equal to the common "CRC-32" (zlib, PNG): `fcs(b"123456789") == 0xCBF43926`.
///
/// ```
/// assert_eq!(nic_hw::fcs(b"123456789"), 0xCBF4_3926);
/// ```
#[inline]
pub fn fcs(frame: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(reg) = clmul::crc_register_short(frame) {
        return !reg;
    }
    let mut h = crc_engine();
    h.update(frame);
    h.finalize()
}

/// A fresh CRC state on the fastest implementation the CPU has.
///
/// `crc32fast::hash` probes the CPU's features on every call; a frame-rate
/// MAC model cannot afford that (it costs as much as the CRC of a small
/// frame), so the probe runs once and each frame clones its result.
#[inline]
fn crc_engine() -> crc32fast::Hasher {
    static ENGINE: LazyLock<crc32fast::Hasher> = LazyLock::new(crc32fast::Hasher::new);
    ENGINE.clone()
}

/// What [`fcs`] gives over any frame followed by its own FCS: the IEEE
/// 802.3 CRC residue (the register holds 0xC704DD7B, complemented here).
const FCS_RESIDUE: u32 = 0x2144_DF1C;

/// Appends the four FCS bytes (least significant first) to `frame`.
///
/// Mirrors what a MAC does at the end of transmission when the driver sets
/// `E1000_TXD_CMD_IFCS` ("insert FCS").
///
/// ```
/// let mut f = vec![0u8; 60];
/// nic_hw::append_fcs(&mut f);
/// assert_eq!(f.len(), 64);
/// assert!(nic_hw::check_fcs(&f));
/// ```
pub fn append_fcs(frame: &mut Vec<u8>) {
    let crc = fcs(frame);
    frame.extend_from_slice(&crc.to_le_bytes());
}

/// Whether the last four bytes of `frame_with_fcs` are the FCS of the bytes
/// before them. Frames shorter than [`ETH_FCS_LEN`] fail.
///
/// Mirrors the receive MAC's CRC check that sets `E1000_RXD_ERR_CE`.
///
/// Like a MAC, it runs the CRC once over the whole frame, FCS included, and
/// compares the result with the 802.3 residue: the CRC register is a
/// bijection of its last 32 input bits, so the residue comes out exactly
/// when the last four bytes are the FCS of the rest. (A 64-byte frame is
/// then four whole 16-byte blocks for the folding code, with no tail.)
pub fn check_fcs(frame_with_fcs: &[u8]) -> bool {
    frame_with_fcs.len() >= ETH_FCS_LEN && fcs(frame_with_fcs) == FCS_RESIDUE
}

/// Carry-less multiplication constant for the reflected CRC: bit-reflected
/// `x^n mod P`, shifted left by one (33 bits), as the folding code of Intel's
/// "Fast CRC Computation Using PCLMULQDQ" paper (and `crc32fast`) uses them.
/// Folding a 128-bit lane forward by `d` bits multiplies its low half by
/// `k(d + 32)` and its high half by `k(d - 32)`.
const fn clmul_constant(n: u32) -> u64 {
    // x^n mod P in normal bit order, one shift at a time.
    let mut r: u32 = 1;
    let mut i = 0;
    while i < n {
        let top = r & 0x8000_0000;
        r <<= 1;
        if top != 0 {
            r ^= CRC32_POLY_LE.reverse_bits();
        }
        i += 1;
    }
    (r.reverse_bits() as u64) << 1
}

/// The CRC of a minimum-size frame as one parallel fold.
///
/// `crc32fast` folds a 16..127 byte input one 16-byte block after another,
/// each fold waiting for the one before, then four more dependent
/// multiplies reduce 128 bits to 32. A minimum-size frame (60 bytes on
/// transmit, 64 with its FCS on receive) is four blocks, so here each block
/// is multiplied forward by its own distance to the end (`x^(8 * distance)
/// mod P`, a constant per distance) at the same time and the products are
/// added: one multiply deep instead of three. The frame is aligned to its
/// end: the first, partial block is shifted into the high bytes of its lane,
/// and the all-ones preset is added to the first four bytes (a register
/// starting at zero ignores leading zero bytes, and starting at all ones is
/// the same as complementing the first 32 bits of the data).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod clmul {
    use core::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_clmulepi64_si128, _mm_extract_epi32, _mm_set_epi32,
        _mm_set_epi64x, _mm_srli_si128, _mm_xor_si128,
    };

    use super::clmul_constant;

    /// Lengths taken here: four blocks of 16 bytes, the first partial.
    const LENGTHS: core::ops::RangeInclusive<usize> = 49..=64;

    /// `(k(128 d + 32), k(128 d - 32))` for a fold forward by `d` blocks.
    const FOLD_1: (u64, u64) = (clmul_constant(160), clmul_constant(96));
    const FOLD_2: (u64, u64) = (clmul_constant(288), clmul_constant(224));
    const FOLD_3: (u64, u64) = (clmul_constant(416), clmul_constant(352));
    /// 128 → 64 bits: the low half times `x^96`, then the low 32 bits times `x^64`.
    const K_96: u64 = clmul_constant(96);
    const K_64: u64 = clmul_constant(64);
    /// Barrett reduction: `P` (33 bits, reflected, shifted) and `floor(x^64 / P)`.
    const P_X: u64 = 0x1_DB71_0641;
    const MU: u64 = 0x1_F701_1641;

    /// The raw CRC register (preset all ones, not complemented) after
    /// `data`, or `None` when `data` is not 49..=64 bytes long or the CPU
    /// lacks `PCLMULQDQ`/SSE4.1 (the caller then uses `crc32fast`).
    #[inline]
    pub(super) fn crc_register_short(data: &[u8]) -> Option<u32> {
        if !LENGTHS.contains(&data.len())
            || !std::arch::is_x86_feature_detected!("pclmulqdq")
            || !std::arch::is_x86_feature_detected!("sse4.1")
        {
            return None;
        }
        // Bytes in the first block: 1..=16; the other three are whole.
        let head = data.len() - 48;
        let (Some(first), Some(rest)) =
            (data.first_chunk::<16>(), data[head..].first_chunk::<48>())
        else {
            return None;
        };
        // SAFETY: `fold_4` only requires the CPU features in its
        // `#[target_feature]` list, detected just above; its arguments are
        // plain arrays and a length, read with safe indexing.
        Some(unsafe { fold_4(first, rest, head) })
    }

    /// 16 bytes (little endian) as a lane.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn lane(x: u128) -> __m128i {
        _mm_set_epi64x((x >> 64) as i64, x as i64)
    }

    /// The register after a 49..=64 byte frame given as its first 16 bytes
    /// (`first`, of which the frame's first `head` bytes form the first block)
    /// and its last 48 (`rest`, three whole blocks): the four blocks folded
    /// to the end at once, then reduced.
    #[target_feature(enable = "pclmulqdq", enable = "sse2", enable = "sse4.1")]
    fn fold_4(first: &[u8; 16], rest: &[u8; 48], head: usize) -> u32 {
        let word = |i: usize| {
            let mut w = [0u8; 16];
            w.copy_from_slice(&rest[16 * i..16 * i + 16]);
            u128::from_le_bytes(w)
        };
        // The preset complements the frame's first four bytes; then the
        // `head` bytes move to the top of their lane (the bytes after them,
        // which belong to the next block, shift out). With a head under four
        // bytes the rest of the preset falls in the second block.
        let preset = u128::from(u32::MAX);
        let b0 = (u128::from_le_bytes(*first) ^ preset) << (8 * (16 - head));
        let spill = if head < 4 { preset >> (8 * head) } else { 0 };
        let b1 = word(0) ^ spill;
        let acc = _mm_xor_si128(
            _mm_xor_si128(fold(lane(b0), FOLD_3), fold(lane(b1), FOLD_2)),
            _mm_xor_si128(fold(lane(word(1)), FOLD_1), lane(word(2))),
        );
        reduce(acc)
    }

    /// `x` moved forward by the distance whose constants are `(lo, hi)`.
    #[inline]
    #[target_feature(enable = "pclmulqdq", enable = "sse2")]
    fn fold(x: __m128i, (lo, hi): (u64, u64)) -> __m128i {
        let k = _mm_set_epi64x(hi as i64, lo as i64);
        _mm_xor_si128(
            _mm_clmulepi64_si128(x, k, 0x00),
            _mm_clmulepi64_si128(x, k, 0x11),
        )
    }

    /// The 128-bit remainder candidate down to the 32-bit register
    /// (the paper's final fold and Barrett reduction, bit-reflected).
    #[inline]
    #[target_feature(enable = "pclmulqdq", enable = "sse2", enable = "sse4.1")]
    fn reduce(x: __m128i) -> u32 {
        let low32 = _mm_set_epi32(0, 0, 0, -1);
        let k = _mm_set_epi64x(K_64 as i64, K_96 as i64);
        // 128 → 96 bits: low half × x^96 plus the high half.
        let x = _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_srli_si128(x, 8));
        // 96 → 64 bits: low 32 bits × x^64 plus the rest.
        let x = _mm_xor_si128(
            _mm_clmulepi64_si128(_mm_and_si128(x, low32), k, 0x10),
            _mm_srli_si128(x, 4),
        );
        // Barrett: t1 = (x mod x^32) · μ, t2 = (t1 mod x^32) · P.
        let pu = _mm_set_epi64x(MU as i64, P_X as i64);
        let t1 = _mm_clmulepi64_si128(_mm_and_si128(x, low32), pu, 0x10);
        let t2 = _mm_clmulepi64_si128(_mm_and_si128(t1, low32), pu, 0x00);
        _mm_extract_epi32(_mm_xor_si128(x, t2), 1) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time reference, straight from the definition.
    fn crc_bitwise(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ CRC32_POLY_LE
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    /// A captured UDP/IPv4 frame (from a public question on checking FCS
    /// values); its FCS was cross-checked with zlib's independent CRC-32.
    const UDP_FRAME: &str = "000ae6f005a3001234567890080045000030b3fe0000801172ba0a0000030a00000204000400001c894d000102030405060708090a0b0c0d0e0f10111213";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn check_value_of_crc32() {
        assert_eq!(fcs(b"123456789"), 0xCBF4_3926);
        assert_eq!(fcs(b""), 0);
        assert_eq!(fcs(&[0]), 0xD202_EF8D);
        assert_eq!(
            fcs(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn real_frame_fcs_bytes() {
        let mut f = hex(UDP_FRAME);
        assert_eq!(f.len(), 62);
        append_fcs(&mut f);
        assert_eq!(&f[62..], &[0x7a, 0xd5, 0x6b, 0xb3]);
        assert!(check_fcs(&f));
    }

    #[test]
    fn arp_request_padded_to_minimum() {
        // ARP who-has 198.18.0.2 tell 198.18.0.1 from 02:00:00:00:00:01,
        // padded to 60 bytes: zlib gives FCS 0xC9AD1551.
        let mut f = hex(
            "ffffffffffff02000000000108060001080006040001020000000001c6120001000000000000c6120002",
        );
        f.resize(60, 0);
        append_fcs(&mut f);
        assert_eq!(&f[60..], &[0x51, 0x15, 0xad, 0xc9]);
    }

    #[test]
    fn residue_over_frame_and_fcs_is_constant() {
        // Running the CRC over a frame followed by its FCS always leaves the
        // 802.3 residue 0xC704DD7B in the register (0x2144DF1C complemented).
        for len in [0usize, 1, 7, 8, 9, 60, 1514] {
            let mut f: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            append_fcs(&mut f);
            assert_eq!(fcs(&f), 0x2144_DF1C, "len {len}");
        }
    }

    #[test]
    fn matches_bitwise_for_all_alignments_and_tails() {
        // Lengths cross every strategy change of the accelerated code (16,
        // 128, 256 and 2048 bytes), at every alignment of an 8-byte word.
        let data: Vec<u8> = (0..9_100u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for start in 0..9 {
            for len in (0..300).chain([511, 512, 513, 2047, 2048, 2049, 4100]) {
                let s = &data[start..start + len];
                assert_eq!(fcs(s), crc_bitwise(s), "start {start} len {len}");
            }
        }
        assert_eq!(fcs(&data), crc_bitwise(&data));
    }

    #[test]
    fn incremental_crc_equals_one_shot() {
        let data = hex(UDP_FRAME);
        let (a, b) = data.split_at(23);
        assert_eq!(!crc32_le(crc32_le(!0, a), b), fcs(&data));
        // Split points on both sides of the accelerated code's thresholds.
        let long: Vec<u8> = (0..3_000u32).map(|i| (i * 13 + 5) as u8).collect();
        for split in [0, 1, 15, 16, 127, 128, 129, 1_000, 2_999, 3_000] {
            let (a, b) = long.split_at(split);
            assert_eq!(!crc32_le(crc32_le(!0, a), b), crc_bitwise(&long), "{split}");
        }
        // Without the preset the register starts at zero, and a single set
        // bit reaching bit 0 on the eighth shift leaves exactly the polynomial.
        assert_eq!(crc32_le(0, &[0x80]), CRC32_POLY_LE);
    }

    #[test]
    fn every_single_bit_flip_fails_the_check() {
        let mut f = hex(UDP_FRAME);
        append_fcs(&mut f);
        for bit in 0..f.len() * 8 {
            let mut g = f.clone();
            g[bit / 8] ^= 1 << (bit % 8);
            assert!(!check_fcs(&g), "bit {bit}");
        }
    }

    #[test]
    fn residue_check_agrees_with_comparing_the_fcs_bytes() {
        // check_fcs() runs one CRC over frame and FCS; it must accept
        // exactly the frames whose last four bytes equal fcs() of the rest.
        let mut x = 0x9E37_79B9u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for len in [4usize, 5, 16, 20, 63, 64, 65, 127, 128, 1518] {
            for _ in 0..50 {
                let mut f: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                let split = len - ETH_FCS_LEN;
                let good = fcs(&f[..split]).to_le_bytes();
                let exact = next() % 2 == 0;
                if exact {
                    f[split..].copy_from_slice(&good);
                }
                assert_eq!(check_fcs(&f), f[split..] == good, "len {len}");
                assert_eq!(check_fcs(&f), exact || f[split..] == good);
            }
        }
    }

    #[test]
    fn clmul_constants_match_the_published_ones() {
        // Intel's paper / crc32fast: fold by 4 blocks (k1, k2), by one
        // block (k3, k4) and the 64-bit step (k5).
        assert_eq!(clmul_constant(544), 0x1_5444_2BD4);
        assert_eq!(clmul_constant(480), 0x1_C6E4_1596);
        assert_eq!(clmul_constant(160), 0x1_7519_97D0);
        assert_eq!(clmul_constant(96), 0x0_CCAA_009E);
        assert_eq!(clmul_constant(64), 0x1_63CD_6124);
    }

    #[test]
    fn every_frame_length_matches_crc32fast_and_the_definition() {
        // Every length an 802.3 frame (with FCS) can have, and the short
        // ones below it, over pseudo-random bytes at two alignments.
        let mut x = 0x2545_F491u32;
        let data: Vec<u8> = (0..1_600)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for start in [0usize, 3] {
            for len in 0..=1518 {
                let s = &data[start..start + len];
                assert_eq!(fcs(s), crc32fast::hash(s), "start {start} len {len}");
                if len < 200 {
                    assert_eq!(fcs(s), crc_bitwise(s), "start {start} len {len}");
                }
            }
        }
    }

    #[test]
    fn all_ones_and_zeros_short_frames() {
        // The preset's spill into the second block (a head of 1..3 bytes)
        // and lanes full of ones exercise every carry of the folds.
        for len in 16..128 {
            for byte in [0x00u8, 0xFF, 0x80, 0x01] {
                let s = vec![byte; len];
                assert_eq!(fcs(&s), crc_bitwise(&s), "len {len} byte {byte:#x}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn minimum_frames_take_the_parallel_fold() {
        // The lengths of a minimum frame (60, 64 with FCS) go through the
        // four-block fold on a CPU with PCLMULQDQ, and agree with crc32fast.
        let has = std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("sse4.1");
        for len in 0..200usize {
            let f: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let reg = clmul::crc_register_short(&f);
            assert_eq!(reg.is_some(), has && (49..=64).contains(&len), "len {len}");
            if let Some(r) = reg {
                assert_eq!(!r, crc32fast::hash(&f), "len {len}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn short_frames_match_crc32fast(data in proptest::collection::vec(proptest::num::u8::ANY, 0..160)) {
            proptest::prop_assert_eq!(fcs(&data), crc32fast::hash(&data));
        }

        #[test]
        fn corrupted_short_frames_fail(
            data in proptest::collection::vec(proptest::num::u8::ANY, 60..124),
            at in proptest::num::usize::ANY,
            flip in 1u8..=255,
        ) {
            let mut f = data;
            append_fcs(&mut f);
            proptest::prop_assert!(check_fcs(&f));
            let i = at % f.len();
            f[i] ^= flip;
            // An error burst of at most 8 bits is always detected.
            proptest::prop_assert!(!check_fcs(&f));
        }
    }

    #[test]
    fn short_input_fails_the_check() {
        assert!(!check_fcs(&[]));
        assert!(!check_fcs(&[1, 2, 3]));
        // Four bytes: the FCS of nothing is 0, so 00 00 00 00 is valid.
        assert!(check_fcs(&[0, 0, 0, 0]));
    }
}
