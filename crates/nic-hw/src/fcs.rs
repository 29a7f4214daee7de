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
//! # The FCS unit
//!
//! A MAC checks the FCS of every received frame and computes it for every
//! sent one, in hardware, at line rate. The model's FCS unit computes the
//! same bits with `crc32fast` (its fastest path for the CPU, probed once):
//! on x86_64 a carry-less-multiply fold for long frames and a slice-by-16
//! table loop for short ones. The tests check it against a bit-at-a-time
//! reference written from the definition.
//!
//! # Deviations from Linux
//!
//! `lib/crc32.c` picks its accelerated path per architecture
//! (`crc32_le_arch()`); here `crc32fast` does. A frame-specialised
//! `PCLMULQDQ` kernel saved about six of the ≈ 110 instructions of a
//! 64-byte frame's check but needs `unsafe` (a `#[target_feature]` call),
//! which this project keeps to `dma-ring` and the TAP backend; it was not
//! kept. The results are the same bits.

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
    let mut h = crc_engine(!crc);
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
    !crc32_le(!0, frame)
}

/// A CRC state holding `state` (crc32fast's complemented register) on the
/// fastest implementation crc32fast has for this CPU.
///
/// `crc32fast::hash` probes the CPU's features on every call, which costs
/// as much as the CRC of a small frame, so the probe runs once and each
/// use clones its result.
#[inline]
fn crc_engine(state: u32) -> crc32fast::Hasher {
    if state == 0 {
        ENGINE.clone()
    } else {
        crc32fast::Hasher::new_with_initial(state)
    }
}

/// The fastest CRC engine crc32fast has for this CPU, probed once.
static ENGINE: LazyLock<crc32fast::Hasher> = LazyLock::new(crc32fast::Hasher::new);

/// A MAC's FCS unit: checks received frames on the fastest CRC engine
/// crc32fast has for this CPU, probed once when the unit is made (as a
/// NIC's CRC logic is fixed in silicon), so a check is the CRC itself and
/// a compare, without the probe's lazy-initialisation test or a call
/// through [`crc32_le`].
#[derive(Clone)]
pub struct FcsUnit {
    engine: crc32fast::Hasher,
}

impl FcsUnit {
    /// A unit on this CPU's fastest engine.
    pub fn new() -> FcsUnit {
        FcsUnit {
            engine: ENGINE.clone(),
        }
    }

    /// [`check_fcs`] on this unit: whether the last four bytes of
    /// `frame_with_fcs` are the FCS of the bytes before them.
    #[inline]
    pub fn check(&self, frame_with_fcs: &[u8]) -> bool {
        let mut h = self.engine.clone();
        h.update(frame_with_fcs);
        frame_with_fcs.len() >= ETH_FCS_LEN && h.finalize() == FCS_RESIDUE
    }
}

impl Default for FcsUnit {
    fn default() -> Self {
        FcsUnit::new()
    }
}

impl core::fmt::Debug for FcsUnit {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FcsUnit")
    }
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

/// Writes the FCS of `frame`'s bytes before its last four into those four
/// (the room a lazy transmit MAC leaves, see
/// [`PhyPort::transmit_swap_fcs_good`](crate::PhyPort::transmit_swap_fcs_good)).
/// A frame shorter than [`ETH_FCS_LEN`] is left alone.
pub(crate) fn write_fcs(frame: &mut [u8]) {
    let Some(body) = frame.len().checked_sub(ETH_FCS_LEN) else {
        return;
    };
    let (data, room) = frame.split_at_mut(body);
    room.copy_from_slice(&fcs(data).to_le_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-at-a-time register update, straight from the definition.
    fn raw_bitwise(mut c: u32, data: &[u8]) -> u32 {
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
        c
    }

    /// Bit-at-a-time reference FCS: preset, register, complement.
    fn crc_bitwise(data: &[u8]) -> u32 {
        !raw_bitwise(!0, data)
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
    fn crc32_le_matches_bitwise_from_any_register() {
        // Every length 0..=300 at every start alignment, from a preset, a
        // zero and an arbitrary register (continuing a CRC).
        let data: Vec<u8> = (0..400u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for reg in [!0u32, 0, 0x1234_5678, 0x8000_0001] {
            for start in 0..4 {
                for len in 0..=300 {
                    let s = &data[start..start + len];
                    let want = raw_bitwise(reg, s);
                    assert_eq!(crc32_le(reg, s), want, "crc32_le len {len}");
                }
            }
        }
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
    fn fcs_unit_checks_as_check_fcs_does() {
        let unit = FcsUnit::new();
        for len in (0..200).chain([1514, 1518]) {
            let mut f: Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
            assert_eq!(unit.check(&f), check_fcs(&f), "no FCS, len {len}");
            append_fcs(&mut f);
            assert!(unit.check(&f), "len {len}");
            for bit in [0, 7, f.len() * 4, f.len() * 8 - 1] {
                let mut g = f.clone();
                g[bit / 8] ^= 1 << (bit % 8);
                assert!(!unit.check(&g), "len {len} bit {bit}");
            }
        }
        // Shorter than an FCS: fails, as check_fcs does.
        for n in 0..4 {
            assert!(!unit.check(&[0u8; 4][..n]));
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
    fn short_input_fails_the_check() {
        assert!(!check_fcs(&[]));
        assert!(!check_fcs(&[1, 2, 3]));
        // Four bytes: the FCS of nothing is 0, so 00 00 00 00 is valid.
        assert!(check_fcs(&[0, 0, 0, 0]));
    }
}
