//! The Internet checksum: full, with the IPv4 pseudo-header, and incremental.
//!
//! Mirrors `lib/checksum.c`, `include/net/checksum.h` and
//! `arch/x86/include/asm/checksum_64.h`: [`csum_partial`] sums a buffer into a
//! 32-bit partial sum (`__wsum`), [`csum_fold`] folds and complements it into the
//! 16-bit field value (`__sum16`), [`csum_tcpudp_magic`] adds the pseudo-header,
//! and [`csum_replace2`]/[`csum_replace4`] update a checksum in place when one
//! field changes ([RFC 1624](https://www.rfc-editor.org/rfc/rfc1624#section-3),
//! equation 3).
//!
//! Every 16-bit value here is the field as read big-endian from the wire
//! (`U16::get()`), and every partial sum folds to the big-endian ones'-complement
//! sum, so results can be written with `U16::new` or `to_be_bytes`.
//!
//! # Deviations from Linux
//!
//! Linux keeps `__wsum` in host byte order and has assembly per architecture.
//! Here the partial sum is defined in network order on every target, and the
//! fast path is safe Rust that the compiler vectorises with baseline SSE2: the
//! buffer is read as little-endian 32-bit words, summed by ordinary wrapping
//! addition into eight 32-bit lanes, while the words' high 16-bit halves are
//! summed into eight more lanes; from the two the exact lane totals are
//! recovered every 2^16 blocks (see [`sum_le`]), then folded and byte-swapped
//! once at the end. That is exact because the ones'-complement sum is a sum
//! modulo 2^16 − 1, in which 2^16 ≡ 1 and a byte swap is a multiplication by
//! 2^8. Buffers shorter than 256 bytes (headers, small datagrams) skip
//! the lanes: their 64-bit words are added with the carries counted apart
//! ([`sum_le_short`]), as x86-64's `do_csum()` adds with `adc`.

use core::net::Ipv4Addr;

/// Folds a 64-bit sum of little-endian words to 16 bits, modulo 2^16 − 1,
/// with end-around carries (a nonzero sum never folds to 0).
///
/// 64 → 32 bits is one add and its carry; 32 → 16 is `csum_fold()`'s
/// trick: the high half of `a + ror32(a, 16)` is the sum of `a`'s halves
/// with the carry out of the low halves added back.
#[inline(always)]
fn fold64(s: u64) -> u16 {
    let (lo, carry) = (s as u32).overflowing_add((s >> 32) as u32);
    // With a carry, `lo` is at most 2^32 − 2: adding it back cannot wrap.
    let a = lo + u32::from(carry);
    (a.wrapping_add(a.rotate_right(16)) >> 16) as u16
}

/// Folds a 32-bit partial sum to 16 bits with end-around carry.
#[inline(always)]
fn fold32(s: u32) -> u16 {
    fold64(u64::from(s))
}

/// Lanes of the fast path: eight 32-bit words, two SSE2 vectors.
const LANES: usize = 8;

/// Blocks summed before the lanes are flushed. Each lane then holds fewer
/// than 2^16 words, so the sums of their low and of their high halves are
/// each below 2^16 · (2^16 − 1) < 2^32.
const BLOCKS_PER_FLUSH: usize = 1 << 16;

/// Sums `buf` as little-endian 32-bit words (a short tail is zero-padded).
///
/// The result is congruent, modulo 2^16 − 1, to the little-endian 16-bit
/// ones'-complement sum of `buf`.
///
/// Each lane keeps two sums of its words `w`: `full`, the sum of `w` modulo
/// 2^32, and `high`, the exact sum of `w >> 16`. The exact sum of the low
/// halves is then `full − (high << 16)` modulo 2^32, because it is below
/// 2^32; and `low + high` is congruent to the lane's words modulo 2^16 − 1.
/// That costs three vector operations per 16 bytes (add, shift, add), which
/// is fewer than widening each word to 64 bits.
#[inline]
fn sum_le(buf: &[u8]) -> u64 {
    let (blocks, rest) = buf.as_chunks::<{ 4 * LANES }>();
    let mut total: u64 = 0;
    for run in blocks.chunks(BLOCKS_PER_FLUSH) {
        let mut full = [0u32; LANES];
        let mut high = [0u32; LANES];
        for block in run {
            let (words, _) = block.as_chunks::<4>();
            for ((f, h), w) in full.iter_mut().zip(&mut high).zip(words) {
                let w = u32::from_le_bytes(*w);
                *f = f.wrapping_add(w);
                *h += w >> 16;
            }
        }
        let lanes: u64 = full
            .iter()
            .zip(&high)
            .map(|(&f, &h)| u64::from(f.wrapping_sub(h << 16)) + u64::from(h))
            .sum();
        total = fold_to_u32(total + lanes);
    }
    let (words, tail) = rest.as_chunks::<4>();
    for w in words {
        total += u64::from(u32::from_le_bytes(*w));
    }
    // The last one to three bytes as a zero-padded little-endian word (built
    // by hand: a `copy_from_slice` here becomes a call to `memcpy`).
    let last = tail
        .iter()
        .rev()
        .fold(0u32, |w, &b| (w << 8) | u32::from(b));
    total + u64::from(last)
}

/// Below this many bytes [`csum_partial`] takes the scalar path
/// ([`sum_le_short`]): the vector lanes' setup and final reduction cost
/// more than they save on a header or a small datagram.
const SHORT: usize = 256;

/// [`sum_le`] for short buffers: [`csum_short_wide`] folded, its high
/// half counting the carries out of the low 64 bits (2^64 is 1 modulo
/// 2^16 − 1, so a carry counts 1).
#[inline]
fn sum_le_short(buf: &[u8]) -> u64 {
    let wide = csum_short_wide(buf);
    fold_to_u32(wide as u64) + (wide >> 64) as u64
}

/// The ones'-complement sum of a short buffer (below 256 bytes), not
/// folded: its 64-bit little-endian words added into a 128-bit
/// accumulator (an add and an add-with-carry per 8 bytes, as `do_csum()`
/// does on x86-64), so the result is below 2^72 and a caller may add a
/// few such sums before one reduction. The 16-bit words are in
/// little-endian order (bytes swapped in each word), as [`csum_partial`]'s
/// are. A tail of 1 to 7 bytes is zero-padded, as the checksum's
/// definition pads an odd byte: from a buffer of 8 bytes or more it is one
/// load of the last eight bytes, shifted down (the tail starts a multiple
/// of 8 bytes in, so its first byte stays a low byte).
///
/// There is no loop: the words (at most 31) go in blocks of 16, 8, 4, 2
/// and 1 as the bits of their count say, each block straight-line code
/// behind one test (a loop's trip count, unrolling and remainder cost
/// more than the additions for a header or a small datagram: callgrind,
/// `csum_partial()` on 20, 72 and 200 bytes, 4, 17 and 38 instructions a
/// call fewer). It is the short path of [`csum_partial`], public for a
/// receive path that checks several pieces at once (the igb model's rx
/// checksum offload).
///
/// The buffer must be shorter than 256 bytes: debug builds assert it;
/// release builds leave words out of a longer one (pass those to
/// [`csum_partial`]).
#[inline(always)]
pub fn csum_short_wide(buf: &[u8]) -> u128 {
    debug_assert!(buf.len() < SHORT);
    let (mut words, tail) = buf.as_chunks::<8>();
    let mut wide = 0u128;
    add_words::<16>(&mut wide, &mut words);
    add_words::<8>(&mut wide, &mut words);
    add_words::<4>(&mut wide, &mut words);
    add_words::<2>(&mut wide, &mut words);
    add_words::<1>(&mut wide, &mut words);
    debug_assert!(words.is_empty());
    let last = match (tail.len(), buf.last_chunk::<8>()) {
        (0, _) => 0,
        (t, Some(l)) => u64::from_le_bytes(*l) >> ((8 - t) * 8),
        (_, None) => tail
            .iter()
            .rev()
            .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
    };
    wide + u128::from(last)
}

/// Adds the first `N` words of `words` to the 128-bit `acc` (an add and an
/// add-with-carry each) and steps past them, if bit `N` of their count is set (`N`
/// a power of two; [`csum_short_wide`] calls it with 16, 8, 4, 2, 1 on at
/// most 31 words, which takes every word).
#[inline(always)]
fn add_words<const N: usize>(acc: &mut u128, words: &mut &[[u8; 8]]) {
    if words.len() & N != 0
        && let Some((block, rest)) = words.split_first_chunk::<N>()
    {
        for w in block {
            *acc += u128::from(u64::from_le_bytes(*w));
        }
        *words = rest;
    }
}

/// Reduces a 64-bit sum modulo 2^32 − 1 into a value below 2^33 so that
/// adding a few of them can never overflow.
#[inline(always)]
fn fold_to_u32(s: u64) -> u64 {
    (s & 0xffff_ffff) + (s >> 32)
}

/// Adds two partial sums with end-around carry.
///
/// Mirrors `csum_add()` in `include/net/checksum.h`.
#[inline]
pub fn csum_add(csum: u32, addend: u32) -> u32 {
    let (s, carry) = csum.overflowing_add(addend);
    s + u32::from(carry)
}

/// Subtracts `addend` from a partial sum (adds its ones' complement).
///
/// Mirrors `csum_sub()` in `include/net/checksum.h`.
#[inline]
pub fn csum_sub(csum: u32, addend: u32) -> u32 {
    csum_add(csum, !addend)
}

/// Adds the partial sum `csum2` of a block that starts `offset` bytes into the
/// data summed by `csum`.
///
/// A block at an odd offset has its bytes in swapped halves of each 16-bit
/// word, so its sum is rotated by 8 bits first. Mirrors `csum_block_add()` in
/// `include/net/checksum.h`.
#[inline]
pub fn csum_block_add(csum: u32, csum2: u32, offset: usize) -> u32 {
    let csum2 = if offset % 2 == 1 {
        csum2.rotate_right(8)
    } else {
        csum2
    };
    csum_add(csum, csum2)
}

/// Sums `buf` into the 32-bit partial sum `sum` and returns the new partial
/// sum.
///
/// Mirrors `csum_partial()` in `lib/checksum.c`. An odd-length buffer is summed
/// as if padded with one zero byte, as RFC 1071 specifies. To sum data in
/// pieces, pass each piece's result on as `sum`; every piece but the last must
/// have an even length (or use [`csum_block_add`]).
#[inline]
pub fn csum_partial(buf: &[u8], sum: u32) -> u32 {
    let le = if buf.len() < SHORT {
        sum_le_short(buf)
    } else {
        sum_le(buf)
    };
    let be = fold64(le).swap_bytes();
    csum_add(sum, u32::from(be))
}

/// Folds a 32-bit partial sum into the 16-bit checksum field value (the ones'
/// complement of the folded sum).
///
/// Mirrors `csum_fold()` in `include/asm-generic/checksum.h`.
#[inline]
pub fn csum_fold(sum: u32) -> u16 {
    !fold32(sum)
}

/// Computes the checksum field value over `buf`: `csum_fold(csum_partial(buf, 0))`.
///
/// Mirrors `ip_compute_csum()` in `lib/checksum.c`. Summing data that already
/// holds a correct checksum field gives 0.
#[inline]
pub fn ip_compute_csum(buf: &[u8]) -> u16 {
    csum_fold(csum_partial(buf, 0))
}

/// Computes the checksum of an IPv4 header (`ihl * 4` bytes, checksum field
/// included). A header whose checksum is correct gives 0.
///
/// Mirrors `ip_fast_csum()` in `arch/x86/include/asm/checksum_64.h`.
#[inline]
pub fn ip_fast_csum(iph: &[u8]) -> u16 {
    ip_compute_csum(iph)
}

/// Adds the IPv4 pseudo-header (addresses, protocol and transport length) to
/// the partial sum `sum`, without folding.
///
/// Mirrors `csum_tcpudp_nofold()` in `include/asm-generic/checksum.h`.
#[inline]
pub fn csum_tcpudp_nofold(saddr: Ipv4Addr, daddr: Ipv4Addr, len: u16, proto: u8, sum: u32) -> u32 {
    let s = u64::from(sum)
        + u64::from(saddr.to_bits())
        + u64::from(daddr.to_bits())
        + u64::from(proto)
        + u64::from(len);
    // Fold modulo 2^32 - 1 into a value that fits in 32 bits.
    let s = (s & 0xffff_ffff) + (s >> 32);
    let s = (s & 0xffff_ffff) + (s >> 32);
    s as u32
}

/// Computes the TCP or UDP checksum field value from the pseudo-header and the
/// partial sum of the segment.
///
/// Mirrors `csum_tcpudp_magic()` in `include/asm-generic/checksum.h`. With
/// `sum = csum_partial(segment, 0)` of a segment that holds a correct checksum,
/// the result is 0.
#[inline]
pub fn csum_tcpudp_magic(saddr: Ipv4Addr, daddr: Ipv4Addr, len: u16, proto: u8, sum: u32) -> u16 {
    csum_fold(csum_tcpudp_nofold(saddr, daddr, len, proto, sum))
}

/// Updates the checksum field `check` after a 16-bit field changed from `old`
/// to `new`, without summing the data again.
///
/// Mirrors `csum_replace2()` in `include/net/checksum.h`; computes
/// HC' = ~(~HC + ~m + m') ([RFC 1624 §3, eqn. 3](https://www.rfc-editor.org/rfc/rfc1624#section-3)).
#[inline]
pub fn csum_replace2(check: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold32(s)
}

/// Updates the checksum field `check` after a 32-bit field (an address)
/// changed from `old` to `new`.
///
/// Mirrors `csum_replace4()` in `include/net/checksum.h`, RFC 1624 eqn. 3 over
/// both halves.
#[inline]
pub fn csum_replace4(check: u16, old: u32, new: u32) -> u16 {
    let s = u64::from(!check)
        + u64::from(!(old >> 16) & 0xffff)
        + u64::from(!old & 0xffff)
        + u64::from(new >> 16)
        + u64::from(new & 0xffff);
    !fold64(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The unfolded short sum folds to RFC 1071's sum at every length
    /// below 256 and every alignment, the bytes swapped in each word.
    #[test]
    fn csum_short_wide_folds_to_the_reference_sum() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 89 + i / 3) as u8 ^ 0xA5).collect();
        for start in 0..8 {
            for len in 0..SHORT - 8 {
                let buf = &data[start..start + len];
                let mut w = csum_short_wide(buf);
                while w >> 16 != 0 {
                    w = (w & 0xffff) + (w >> 16);
                }
                assert_eq!(
                    (w as u16).swap_bytes(),
                    reference_sum(buf),
                    "start {start} len {len}"
                );
            }
        }
    }

    /// RFC 1071 as written: big-endian 16-bit words, a last odd byte padded.
    fn reference_sum(buf: &[u8]) -> u16 {
        let mut s: u64 = 0;
        for pair in buf.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u64::from(b));
            s += hi | lo;
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold32(csum_partial(&data, 0)), 0xddf2);
        assert_eq!(ip_compute_csum(&data), !0xddf2);
    }

    #[test]
    fn ipv4_header_checksum_known_value() {
        // A captured header whose checksum field is 0xb861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ip_fast_csum(&hdr), 0);
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(ip_fast_csum(&hdr), 0xb861);
    }

    #[test]
    fn empty_and_odd() {
        assert_eq!(csum_partial(&[], 0), 0);
        assert_eq!(fold32(csum_partial(&[0xab], 0)), 0xab00);
        assert_eq!(
            fold32(csum_partial(&[0x12, 0x34, 0x56], 0)),
            0x1234 + 0x5600
        );
    }

    #[test]
    fn replace2_matches_recompute_for_ttl_decrement() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0, 0, 198, 18, 0, 1, 198,
            18, 0, 2,
        ];
        let c = ip_fast_csum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] -= 1;
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let updated = csum_replace2(c, old, new);
        hdr[10..12].fill(0);
        assert_eq!(updated, ip_fast_csum(&hdr));
    }

    #[test]
    fn long_buffers_match_reference() {
        // Longer than one flush of the lanes (2^16 blocks of 32 bytes = 2 MiB),
        // so a lane that overflowed between flushes would show. All-ones bytes
        // are the worst case for every accumulator; the xorshift bytes are not
        // periodic in the block size.
        let len = (5 << 20) + 13;
        let ones = vec![0xffu8; len];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        for data in [&ones, &noise] {
            for offset in [0, 1, 3, 4] {
                for end in [len, (1 << 20) + offset, (2 << 20) + offset + 1] {
                    let slice = &data[offset..end];
                    assert_eq!(
                        fold32(csum_partial(slice, 0)),
                        reference_sum(slice),
                        "len {} offset {offset}",
                        slice.len()
                    );
                }
            }
        }
    }

    #[test]
    fn short_path_matches_reference_at_every_length_and_alignment() {
        // Every length across the short path and into the vector one, at
        // every start modulo 8, over all-ones (the most carries) and noise.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let noise: Vec<u8> = (0..SHORT + 80)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        let ones = vec![0xffu8; SHORT + 80];
        for data in [&ones, &noise] {
            for offset in 0..8 {
                for len in 0..SHORT + 64 {
                    let slice = &data[offset..offset + len];
                    assert_eq!(
                        fold32(csum_partial(slice, 0)),
                        reference_sum(slice),
                        "len {len} offset {offset}"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn fast_path_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..3000), offset in 0usize..8) {
            let offset = offset.min(data.len());
            let slice = &data[offset..];
            prop_assert_eq!(fold32(csum_partial(slice, 0)), reference_sum(slice));
        }

        #[test]
        fn pieces_combine(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
            let cut = cut.min(data.len());
            let whole = fold32(csum_partial(&data, 0));
            let a = csum_partial(&data[..cut], 0);
            let b = csum_partial(&data[cut..], 0);
            prop_assert_eq!(fold32(csum_block_add(a, b, cut)), whole);
        }

        #[test]
        fn replace2_is_incremental(data in proptest::collection::vec(any::<u16>(), 2..64), idx in 0usize..64, new in any::<u16>()) {
            let idx = idx % data.len();
            let bytes: Vec<u8> = data.iter().flat_map(|w| w.to_be_bytes()).collect();
            let check = ip_compute_csum(&bytes);
            let mut changed = data.clone();
            changed[idx] = new;
            let bytes2: Vec<u8> = changed.iter().flat_map(|w| w.to_be_bytes()).collect();
            let updated = csum_replace2(check, data[idx], new);
            // The updated checksum must verify over the new data.
            let mut with = bytes2.clone();
            with.extend_from_slice(&updated.to_be_bytes());
            prop_assert_eq!(ip_compute_csum(&with), 0);
        }

        #[test]
        fn replace4_is_incremental(a in any::<u32>(), b in any::<u32>(), rest in any::<[u8; 6]>()) {
            let mut bytes = a.to_be_bytes().to_vec();
            bytes.extend_from_slice(&rest);
            let check = ip_compute_csum(&bytes);
            bytes[..4].copy_from_slice(&b.to_be_bytes());
            let updated = csum_replace4(check, a, b);
            let mut with = bytes.clone();
            with.extend_from_slice(&updated.to_be_bytes());
            prop_assert_eq!(ip_compute_csum(&with), 0);
        }
    }
}
