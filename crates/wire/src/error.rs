//! Errors found while parsing or emitting a packet format.
//!
//! Linux reports these as drop reasons and MIB counters (`InHdrErrors`,
//! `InTruncatedPkts`, `InCsumErrors`); the caller maps each [`WireError`] to the
//! counter it bumps.

use core::fmt;

/// What is wrong with a packet or with a buffer handed to `emit`.
///
/// Every variant carries the numbers that made the input wrong, so a trace or a
/// counter dump says more than "malformed". The type is `Copy` and allocation
/// free so that it can travel on the packet path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer ends before a header or a length field says it should.
    ///
    /// Linux counts this as `InTruncatedPkts` (IPv4) or drops with
    /// `SKB_DROP_REASON_PKT_TOO_SMALL`.
    Truncated {
        /// Bytes the format needs.
        needed: usize,
        /// Bytes the buffer holds.
        got: usize,
    },
    /// A header-length field (IPv4 IHL, TCP data offset) is below the minimum
    /// header; the value is the raw field, in 32-bit words.
    BadHeaderLen(u8),
    /// The IPv4 version nibble is not 4; the value is that nibble.
    BadVersion(u8),
    /// The IPv4 total length is smaller than the header it must contain; the
    /// value is the total-length field.
    BadTotalLen(u16),
    /// The UDP length field is below 8 or past the end of the datagram; the
    /// value is the length field.
    BadUdpLen(u16),
    /// A checksum does not verify.
    BadChecksum,
    /// An IPv4 or TCP option is malformed: its length is 0 or 1, runs past the
    /// options area, or does not match the length a known kind requires.
    BadOption {
        /// The option kind.
        kind: u8,
        /// The length byte (0 when the length byte itself is missing).
        len: u8,
    },
    /// The buffer handed to `emit` is too small for what must be written.
    BufferTooSmall {
        /// Bytes the emitter needs.
        needed: usize,
        /// Bytes the buffer holds.
        got: usize,
    },
    /// Options given to `emit` do not fit the header (IPv4 and TCP allow at most
    /// 40 bytes); the value is the length they would take.
    OptionsTooLong(usize),
    /// What `emit` was asked to build is longer than its length field can say
    /// (an IPv4 datagram over 65535 bytes, for example).
    TooLong {
        /// The length that was asked for.
        len: usize,
        /// The largest length the format allows.
        max: usize,
    },
    /// A field holds a value this crate does not handle (an ARP hardware type
    /// other than Ethernet, for example).
    Unsupported {
        /// The field, by its Linux name (`ar_hrd`, `ar_pro`, …).
        field: &'static str,
        /// The value found.
        value: u32,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated { needed, got } => {
                write!(f, "truncated packet: needed {needed} bytes, got {got}")
            }
            Self::BadHeaderLen(words) => {
                write!(
                    f,
                    "bad header length: {words} words ({} bytes)",
                    u32::from(words) * 4
                )
            }
            Self::BadVersion(v) => write!(f, "bad IP version {v}, expected 4"),
            Self::BadTotalLen(len) => write!(f, "bad IPv4 total length {len}"),
            Self::BadUdpLen(len) => write!(f, "bad UDP length {len}"),
            Self::BadChecksum => f.write_str("bad checksum"),
            Self::BadOption { kind, len } => write!(f, "bad option kind {kind} with length {len}"),
            Self::BufferTooSmall { needed, got } => {
                write!(f, "buffer too small: needed {needed} bytes, got {got}")
            }
            Self::OptionsTooLong(len) => {
                write!(f, "options take {len} bytes, at most 40 fit in the header")
            }
            Self::TooLong { len, max } => {
                write!(f, "length {len} exceeds the format's maximum of {max}")
            }
            Self::Unsupported { field, value } => {
                write!(f, "unsupported value {value:#x} in field {field}")
            }
        }
    }
}

impl core::error::Error for WireError {}

/// Splits a header of type `T` off the front of `buf`, or reports how short it
/// is.
pub(crate) fn split_header<B, T>(buf: B) -> Result<(zerocopy::Ref<B, T>, B), WireError>
where
    B: zerocopy::SplitByteSlice,
    T: zerocopy::KnownLayout + zerocopy::Immutable + zerocopy::Unaligned,
{
    let got = buf.len();
    zerocopy::Ref::from_prefix(buf).map_err(|_| WireError::Truncated {
        needed: core::mem::size_of::<T>(),
        got,
    })
}

/// Splits `buf` at `mid`, or reports that it holds fewer than `mid` bytes.
pub(crate) fn split_at<B: zerocopy::SplitByteSlice>(
    buf: B,
    mid: usize,
    needed: usize,
) -> Result<(B, B), WireError> {
    buf.split_at(mid).map_err(|b| WireError::Truncated {
        needed,
        got: b.len(),
    })
}

/// Checks that an emit buffer holds at least `needed` bytes.
pub(crate) fn check_room(buf: &[u8], needed: usize) -> Result<(), WireError> {
    if buf.len() < needed {
        Err(WireError::BufferTooSmall {
            needed,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}
