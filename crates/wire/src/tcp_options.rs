//! TCP options: a reader and a writer.
//!
//! Mirrors the option kinds of `include/net/tcp.h` (`TCPOPT_*`, `TCPOLEN_*`),
//! the reader `tcp_parse_options()` in `net/ipv4/tcp_input.c` and the writer
//! `tcp_options_write()` in `net/ipv4/tcp_output.c`.
//!
//! # Deviations from Linux
//!
//! `tcp_parse_options()` silently ignores a malformed option and stops; this
//! reader is a format checker, so a length below 2, a length running past the
//! options area, or a known kind with the wrong length is a
//! [`WireError::BadOption`]. It also records MSS, window scale and
//! SACK-permitted whatever the segment's flags (Linux reads them only on a
//! SYN) and keeps a window scale above 14 as sent (Linux clamps it to 14 when
//! it uses it): deciding what to honour is the TCP layer's job.

use crate::WireError;

/// End of option list. Mirrors `TCPOPT_EOL`.
pub const TCPOPT_EOL: u8 = 0;
/// Padding. Mirrors `TCPOPT_NOP`.
pub const TCPOPT_NOP: u8 = 1;
/// Maximum segment size. Mirrors `TCPOPT_MSS`.
pub const TCPOPT_MSS: u8 = 2;
/// Window scale. Mirrors `TCPOPT_WINDOW`.
pub const TCPOPT_WINDOW: u8 = 3;
/// SACK permitted. Mirrors `TCPOPT_SACK_PERM`.
pub const TCPOPT_SACK_PERM: u8 = 4;
/// SACK blocks. Mirrors `TCPOPT_SACK`.
pub const TCPOPT_SACK: u8 = 5;
/// Timestamps. Mirrors `TCPOPT_TIMESTAMP`.
pub const TCPOPT_TIMESTAMP: u8 = 8;

/// Length of the MSS option. Mirrors `TCPOLEN_MSS`.
pub const TCPOLEN_MSS: u8 = 4;
/// Length of the window-scale option. Mirrors `TCPOLEN_WINDOW`.
pub const TCPOLEN_WINDOW: u8 = 3;
/// Length of the SACK-permitted option. Mirrors `TCPOLEN_SACK_PERM`.
pub const TCPOLEN_SACK_PERM: u8 = 2;
/// Length of the timestamp option. Mirrors `TCPOLEN_TIMESTAMP`.
pub const TCPOLEN_TIMESTAMP: u8 = 10;
/// Length of the SACK option's kind and length bytes. Mirrors `TCPOLEN_SACK_BASE`.
pub const TCPOLEN_SACK_BASE: u8 = 2;
/// Length of one SACK block. Mirrors `TCPOLEN_SACK_PERBLOCK`.
pub const TCPOLEN_SACK_PERBLOCK: u8 = 8;
/// Most SACK blocks one option can carry in 40 bytes. Mirrors
/// `TCP_NUM_SACKS`.
pub const TCP_NUM_SACKS: usize = 4;
/// Most option bytes a TCP header can hold (data offset 15).
pub const MAX_TCP_OPTION_SPACE: usize = 40;

/// One SACK block: the sequence numbers of its first byte and of the byte
/// after its last.
///
/// Mirrors `struct tcp_sack_block` in `include/linux/tcp.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpSackBlock {
    /// First sequence number of the block.
    pub start_seq: u32,
    /// Sequence number after the block's last byte.
    pub end_seq: u32,
}

/// The SACK blocks of one option: at most [`TCP_NUM_SACKS`].
pub type SackBlocks = heapless::Vec<TcpSackBlock, TCP_NUM_SACKS>;

/// One TCP option as it appears on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// `TCPOPT_EOL`: nothing after it is read.
    EndOfList,
    /// `TCPOPT_NOP`.
    NoOperation,
    /// `TCPOPT_MSS`.
    MaxSegmentSize(u16),
    /// `TCPOPT_WINDOW`: the shift count.
    WindowScale(u8),
    /// `TCPOPT_SACK_PERM`.
    SackPermitted,
    /// `TCPOPT_SACK`: one to four blocks.
    SackRange(SackBlocks),
    /// `TCPOPT_TIMESTAMP`.
    Timestamp {
        /// The sender's timestamp value.
        tsval: u32,
        /// The echoed timestamp.
        tsecr: u32,
    },
    /// A kind this reader does not interpret, skipped by its length.
    Unknown {
        /// The option kind.
        kind: u8,
        /// The bytes after the kind and length.
        data: &'a [u8],
    },
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Splits the option of `kind` at the start of `buf` (neither EOL nor
/// NOP) into its length, its data after kind and length, and the rest of
/// the options; a missing or impossible length is a `BadOption`.
fn split_option(kind: u8, buf: &[u8]) -> Result<(u8, &[u8], &[u8]), WireError> {
    let Some(&len) = buf.get(1) else {
        return Err(WireError::BadOption { kind, len: 0 });
    };
    if len < 2 || usize::from(len) > buf.len() {
        return Err(WireError::BadOption { kind, len });
    }
    let (opt, rest) = buf.split_at(usize::from(len));
    Ok((len, &opt[2..], rest))
}

/// The blocks of a SACK option's `data` (its length already checked to be
/// a whole number of blocks); more blocks than fit is `bad`.
fn sack_blocks(data: &[u8], bad: WireError) -> Result<SackBlocks, WireError> {
    let mut blocks = SackBlocks::new();
    for b in data.chunks_exact(usize::from(TCPOLEN_SACK_PERBLOCK)) {
        blocks
            .push(TcpSackBlock {
                start_seq: be32(b),
                end_seq: be32(&b[4..]),
            })
            .map_err(|_| bad)?;
    }
    Ok(blocks)
}

impl<'a> TcpOption<'a> {
    /// Reads one option from the front of `buf` and returns it with the rest.
    fn parse(buf: &'a [u8]) -> Result<(Self, &'a [u8]), WireError> {
        let Some((&kind, after)) = buf.split_first() else {
            return Ok((TcpOption::EndOfList, buf));
        };
        match kind {
            TCPOPT_EOL => return Ok((TcpOption::EndOfList, &[])),
            TCPOPT_NOP => return Ok((TcpOption::NoOperation, after)),
            _ => {}
        }
        let (len, data, rest) = split_option(kind, buf)?;
        let bad = WireError::BadOption { kind, len };
        let option = match kind {
            TCPOPT_MSS if len == TCPOLEN_MSS => TcpOption::MaxSegmentSize(be16(data)),
            TCPOPT_WINDOW if len == TCPOLEN_WINDOW => TcpOption::WindowScale(data[0]),
            TCPOPT_SACK_PERM if len == TCPOLEN_SACK_PERM => TcpOption::SackPermitted,
            TCPOPT_TIMESTAMP if len == TCPOLEN_TIMESTAMP => TcpOption::Timestamp {
                tsval: be32(data),
                tsecr: be32(&data[4..]),
            },
            TCPOPT_SACK
                if len >= TCPOLEN_SACK_BASE + TCPOLEN_SACK_PERBLOCK
                    && (len - TCPOLEN_SACK_BASE).is_multiple_of(TCPOLEN_SACK_PERBLOCK) =>
            {
                TcpOption::SackRange(sack_blocks(data, bad)?)
            }
            TCPOPT_MSS | TCPOPT_WINDOW | TCPOPT_SACK_PERM | TCPOPT_TIMESTAMP | TCPOPT_SACK => {
                return Err(bad);
            }
            _ => TcpOption::Unknown { kind, data },
        };
        Ok((option, rest))
    }

    /// The number of bytes this option takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => usize::from(TCPOLEN_MSS),
            TcpOption::WindowScale(_) => usize::from(TCPOLEN_WINDOW),
            TcpOption::SackPermitted => usize::from(TCPOLEN_SACK_PERM),
            TcpOption::SackRange(blocks) => 2 + 8 * blocks.len(),
            TcpOption::Timestamp { .. } => usize::from(TCPOLEN_TIMESTAMP),
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes this option at the start of `buf` and returns the bytes written.
    ///
    /// Errors: [`WireError::BufferTooSmall`]; [`WireError::BadOption`] for an
    /// unknown option whose data is longer than 253 bytes.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        crate::error::check_room(buf, len)?;
        match self {
            TcpOption::EndOfList => buf[0] = TCPOPT_EOL,
            TcpOption::NoOperation => buf[0] = TCPOPT_NOP,
            TcpOption::MaxSegmentSize(mss) => {
                buf[..2].copy_from_slice(&[TCPOPT_MSS, TCPOLEN_MSS]);
                buf[2..4].copy_from_slice(&mss.to_be_bytes());
            }
            TcpOption::WindowScale(shift) => {
                buf[..3].copy_from_slice(&[TCPOPT_WINDOW, TCPOLEN_WINDOW, *shift]);
            }
            TcpOption::SackPermitted => {
                buf[..2].copy_from_slice(&[TCPOPT_SACK_PERM, TCPOLEN_SACK_PERM]);
            }
            TcpOption::SackRange(blocks) => {
                buf[..2].copy_from_slice(&[TCPOPT_SACK, len as u8]);
                for (i, b) in blocks.iter().enumerate() {
                    let at = 2 + 8 * i;
                    buf[at..at + 4].copy_from_slice(&b.start_seq.to_be_bytes());
                    buf[at + 4..at + 8].copy_from_slice(&b.end_seq.to_be_bytes());
                }
            }
            TcpOption::Timestamp { tsval, tsecr } => {
                buf[..2].copy_from_slice(&[TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP]);
                buf[2..6].copy_from_slice(&tsval.to_be_bytes());
                buf[6..10].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Unknown { kind, data } => {
                let l = u8::try_from(len).map_err(|_| WireError::BadOption {
                    kind: *kind,
                    len: 0,
                })?;
                buf[..2].copy_from_slice(&[*kind, l]);
                buf[2..len].copy_from_slice(data);
            }
        }
        Ok(len)
    }
}

/// Walks a TCP options area, yielding each option or the first error.
///
/// Stops after `TCPOPT_EOL`, at the end of the area, or after an error.
#[derive(Clone, Debug)]
pub struct TcpOptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptionsIter<'a> {
    /// Starts reading the options area `opts`.
    pub fn new(opts: &'a [u8]) -> Self {
        Self { rest: opts }
    }
}

impl<'a> Iterator for TcpOptionsIter<'a> {
    type Item = Result<TcpOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match TcpOption::parse(self.rest) {
            Ok((opt, rest)) => {
                self.rest = rest;
                Some(Ok(opt))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// The options of one segment that the stack understands.
///
/// Mirrors `struct tcp_options_received` in `include/linux/tcp.h` (what
/// `tcp_parse_options()` fills) and `struct tcp_out_options` in
/// `net/ipv4/tcp_output.c` (what `tcp_options_write()` reads).
#[doc(alias = "tcp_options_received")]
#[doc(alias = "tcp_out_options")]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TcpOptions {
    /// Maximum segment size (`mss_clamp` on receive).
    pub mss: Option<u16>,
    /// Window scale shift (`snd_wscale` when `wscale_ok`).
    pub wscale: Option<u8>,
    /// SACK permitted (`sack_ok`).
    pub sack_ok: bool,
    /// Timestamp value and echo reply (`rcv_tsval`, `rcv_tsecr` when
    /// `saw_tstamp`).
    pub timestamp: Option<(u32, u32)>,
    /// SACK blocks of the last SACK option seen (`num_sacks`).
    pub sack_blocks: SackBlocks,
}

impl TcpOptions {
    /// Reads an options area into the fields the stack uses; unknown kinds
    /// are skipped.
    ///
    /// Mirrors `tcp_parse_options()`. Errors: [`WireError::BadOption`] (see the
    /// module's deviations).
    ///
    /// The same walk and the same errors as folding [`TcpOptionsIter`], but
    /// each field is written where it is read: no [`TcpOption`] (whose SACK
    /// variant carries four blocks) is built and moved per option, which
    /// made this half the cost of a SYN's option handling.
    #[doc(alias = "tcp_parse_options")]
    pub fn parse(opts: &[u8]) -> Result<Self, WireError> {
        let mut out = Self::default();
        let mut buf = opts;
        while let Some((&kind, after)) = buf.split_first() {
            match kind {
                TCPOPT_EOL => break,
                TCPOPT_NOP => {
                    buf = after;
                    continue;
                }
                _ => {}
            }
            let (len, data, rest) = split_option(kind, buf)?;
            let bad = WireError::BadOption { kind, len };
            match kind {
                TCPOPT_MSS if len == TCPOLEN_MSS => out.mss = Some(be16(data)),
                TCPOPT_WINDOW if len == TCPOLEN_WINDOW => out.wscale = Some(data[0]),
                TCPOPT_SACK_PERM if len == TCPOLEN_SACK_PERM => out.sack_ok = true,
                TCPOPT_TIMESTAMP if len == TCPOLEN_TIMESTAMP => {
                    out.timestamp = Some((be32(data), be32(&data[4..])));
                }
                TCPOPT_SACK
                    if len >= TCPOLEN_SACK_BASE + TCPOLEN_SACK_PERBLOCK
                        && (len - TCPOLEN_SACK_BASE).is_multiple_of(TCPOLEN_SACK_PERBLOCK) =>
                {
                    // The last SACK option wins, as a whole.
                    out.sack_blocks = sack_blocks(data, bad)?;
                }
                TCPOPT_MSS | TCPOPT_WINDOW | TCPOPT_SACK_PERM | TCPOPT_TIMESTAMP | TCPOPT_SACK => {
                    return Err(bad);
                }
                _ => {}
            }
            buf = rest;
        }
        Ok(out)
    }

    /// Bytes [`TcpOptions::emit`] writes: always a multiple of 4.
    ///
    /// Mirrors the sizing of `tcp_syn_options()`/`tcp_established_options()`.
    pub fn buffer_len(&self) -> usize {
        let mut len = 0;
        if self.mss.is_some() {
            len += 4;
        }
        if self.timestamp.is_some() || self.sack_ok {
            // TS takes 12 with its two leading bytes (NOP NOP, or SACK_PERM);
            // a lone SACK_PERM takes 4.
            len += if self.timestamp.is_some() { 12 } else { 4 };
        }
        if self.wscale.is_some() {
            len += 4;
        }
        if !self.sack_blocks.is_empty() {
            len += 4 + 8 * self.sack_blocks.len();
        }
        len
    }

    /// Writes the options at the start of `buf` in Linux's order and 4-byte
    /// alignment and returns the bytes written.
    ///
    /// Mirrors `tcp_options_write()`: MSS; SACK_PERM folded into the two
    /// bytes before the timestamp (or NOP NOP SACK_PERM); NOP WSCALE;
    /// NOP NOP SACK blocks. Errors: [`WireError::OptionsTooLong`] past 40
    /// bytes, [`WireError::BufferTooSmall`].
    #[doc(alias = "tcp_options_write")]
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, WireError> {
        let len = self.buffer_len();
        if len > MAX_TCP_OPTION_SPACE {
            return Err(WireError::OptionsTooLong(len));
        }
        crate::error::check_room(buf, len)?;
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if let Some(mss) = self.mss {
            let [hi, lo] = mss.to_be_bytes();
            put(&[TCPOPT_MSS, TCPOLEN_MSS, hi, lo]);
        }
        if let Some((tsval, tsecr)) = self.timestamp {
            if self.sack_ok {
                put(&[TCPOPT_SACK_PERM, TCPOLEN_SACK_PERM]);
            } else {
                put(&[TCPOPT_NOP, TCPOPT_NOP]);
            }
            put(&[TCPOPT_TIMESTAMP, TCPOLEN_TIMESTAMP]);
            put(&tsval.to_be_bytes());
            put(&tsecr.to_be_bytes());
        } else if self.sack_ok {
            put(&[TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK_PERM, TCPOLEN_SACK_PERM]);
        }
        if let Some(shift) = self.wscale {
            put(&[TCPOPT_NOP, TCPOPT_WINDOW, TCPOLEN_WINDOW, shift]);
        }
        if !self.sack_blocks.is_empty() {
            let n = self.sack_blocks.len() as u8;
            put(&[
                TCPOPT_NOP,
                TCPOPT_NOP,
                TCPOPT_SACK,
                TCPOLEN_SACK_BASE + TCPOLEN_SACK_PERBLOCK * n,
            ]);
            for b in &self.sack_blocks {
                put(&b.start_seq.to_be_bytes());
                put(&b.end_seq.to_be_bytes());
            }
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A Linux SYN's options: MSS 1460, SACK_PERM, TS 1/0, NOP, WS 7.
    static SYN_OPTS: [u8; 20] = [
        0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x03, 0x03, 0x07,
    ];

    fn syn() -> TcpOptions {
        TcpOptions {
            mss: Some(1460),
            wscale: Some(7),
            sack_ok: true,
            timestamp: Some((1, 0)),
            sack_blocks: SackBlocks::new(),
        }
    }

    #[test]
    fn test_deconstruct() {
        assert_eq!(TcpOptions::parse(&SYN_OPTS).unwrap(), syn());
        let opts: Result<Vec<_>, _> = TcpOptionsIter::new(&SYN_OPTS).collect();
        assert_eq!(
            opts.unwrap(),
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamp { tsval: 1, tsecr: 0 },
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
            ]
        );
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xffu8; 40];
        assert_eq!(syn().emit(&mut buf), Ok(20));
        assert_eq!(buf[..20], SYN_OPTS);
    }

    #[test]
    fn sack_blocks_and_layout() {
        let mut o = TcpOptions {
            timestamp: Some((5, 6)),
            ..TcpOptions::default()
        };
        for i in 0..3 {
            o.sack_blocks
                .push(TcpSackBlock {
                    start_seq: i * 100,
                    end_seq: i * 100 + 50,
                })
                .unwrap();
        }
        let mut buf = [0u8; 40];
        let n = o.emit(&mut buf).unwrap();
        assert_eq!(n, 40);
        assert_eq!(buf[..2], [TCPOPT_NOP, TCPOPT_NOP]);
        assert_eq!(buf[12..16], [TCPOPT_NOP, TCPOPT_NOP, TCPOPT_SACK, 26]);
        assert_eq!(TcpOptions::parse(&buf).unwrap(), o);
        // A fourth block does not fit with timestamps.
        o.sack_blocks.push(TcpSackBlock::default()).unwrap();
        assert_eq!(o.emit(&mut [0u8; 60]), Err(WireError::OptionsTooLong(48)));
    }

    #[test]
    fn unknown_kinds_are_skipped_eol_stops() {
        let opts = [30, 4, 0xaa, 0xbb, 2, 4, 0x05, 0xb4, 0, 99, 99, 99];
        let o = TcpOptions::parse(&opts).unwrap();
        assert_eq!(o.mss, Some(1460));
        let mut it = TcpOptionsIter::new(&opts);
        assert_eq!(
            it.next(),
            Some(Ok(TcpOption::Unknown {
                kind: 30,
                data: &[0xaa, 0xbb]
            }))
        );
        assert_eq!(it.next(), Some(Ok(TcpOption::MaxSegmentSize(1460))));
        assert_eq!(it.next(), Some(Ok(TcpOption::EndOfList)));
        assert_eq!(it.next(), None);
        let mut buf = [0u8; 4];
        assert_eq!(
            TcpOption::Unknown {
                kind: 30,
                data: &[0xaa, 0xbb]
            }
            .emit(&mut buf),
            Ok(4)
        );
        assert_eq!(buf, opts[..4]);
    }

    /// `parse` as the fold over the iterator it replaced.
    fn parse_by_iter(opts: &[u8]) -> Result<TcpOptions, WireError> {
        let mut out = TcpOptions::default();
        for opt in TcpOptionsIter::new(opts) {
            match opt? {
                TcpOption::EndOfList => break,
                TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
                TcpOption::MaxSegmentSize(mss) => out.mss = Some(mss),
                TcpOption::WindowScale(s) => out.wscale = Some(s),
                TcpOption::SackPermitted => out.sack_ok = true,
                TcpOption::Timestamp { tsval, tsecr } => out.timestamp = Some((tsval, tsecr)),
                TcpOption::SackRange(blocks) => out.sack_blocks = blocks,
            }
        }
        Ok(out)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        /// Arbitrary bytes, and option areas built from valid and
        /// malformed options: the same result as the iterator's fold.
        #[test]
        fn parse_matches_the_iterator_fold(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
            parts in proptest::collection::vec((0u8..10, 0u8..12, proptest::prelude::any::<u32>()), 0..8),
        ) {
            proptest::prop_assert_eq!(TcpOptions::parse(&raw), parse_by_iter(&raw));
            let mut area = Vec::new();
            for (kind, len, v) in parts {
                area.push(kind);
                if kind > TCPOPT_NOP {
                    let len = if kind == TCPOPT_SACK { 2 + 8 * (len % 6) } else { len };
                    area.push(len);
                    area.extend((0..usize::from(len).saturating_sub(2)).map(|i| (v >> (i % 4 * 8)) as u8));
                }
            }
            proptest::prop_assert_eq!(TcpOptions::parse(&area), parse_by_iter(&area));
        }
    }

    #[test]
    fn malformed_options() {
        let cases: [(&[u8], u8, u8); 8] = [
            (&[2, 4, 5], 2, 4),                   // runs past the area
            (&[30, 0, 0, 0], 30, 0),              // zero length
            (&[30, 1, 0, 0], 30, 1),              // length one
            (&[30], 30, 0),                       // no length byte
            (&[2, 3, 5, 0], 2, 3),                // MSS with the wrong length
            (&[3, 4, 7, 0], 3, 4),                // window scale with the wrong length
            (&[8, 8, 0, 0, 0, 0, 0, 0], 8, 8),    // timestamp with the wrong length
            (&[5, 9, 0, 0, 0, 0, 0, 0, 0], 5, 9), // SACK not 2 + 8n
        ];
        for (opts, kind, len) in cases {
            assert_eq!(
                TcpOptions::parse(opts),
                Err(WireError::BadOption { kind, len }),
                "{opts:?}"
            );
        }
        assert_eq!(
            TcpOptions::parse(&[4, 3, 0]),
            Err(WireError::BadOption { kind: 4, len: 3 })
        );
    }
}
