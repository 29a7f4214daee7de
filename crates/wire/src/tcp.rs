//! TCP headers.
//!
//! Mirrors `include/uapi/linux/tcp.h` (`struct tcphdr`, `TCP_FLAG_*`) and the
//! header checks of `tcp_v4_rcv()` in `net/ipv4/tcp_ipv4.c`. Options are read
//! and written by [`crate::TcpOptions`] (`tcp_options.rs`).
//!
//! ```text
//! +-------------------------------+-------------------------------+
//! |            source             |             dest              |
//! +-------------------------------+-------------------------------+
//! |                              seq                              |
//! |                            ack_seq                            |
//! +-------+-----+-+-+-+-+-+-+-+-+-+-------------------------------+
//! | doff  | res |A|C|E|U|A|P|R|S|F|            window             |
//! |       |     |E|W|C|R|C|S|S|Y|I|                               |
//! +-------+-----+-+-+-+-+-+-+-+-+-+-------------------------------+
//! |             check             |            urg_ptr            |
//! +-------------------------------+-------------------------------+
//! |                 options (doff*4 - 20 bytes)                   |
//! +---------------------------------------------------------------+
//! ```

use core::net::Ipv4Addr;

use zerocopy::network_endian::{U16, U32};
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::WireError;
use crate::checksum::{csum_partial, csum_tcpudp_magic};
use crate::error::{check_room, split_at, split_header};
use crate::ipv4::IpProtocol;
use crate::tcp_options::{TcpOptions, TcpOptionsIter};

/// Length of a TCP header without options.
pub const TCP_MIN_HLEN: usize = 20;

bitflags::bitflags! {
    /// The TCP flags: the low 9 bits of the 16-bit word after `ack_seq`.
    ///
    /// Mirrors the `TCP_FLAG_*` bits of `tcp_flag_word()` in
    /// `include/uapi/linux/tcp.h` (shifted down by 16) and `TCPHDR_*` in
    /// `include/net/tcp.h`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct TcpFlags: u16 {
        /// No more data from sender. `TCPHDR_FIN`.
        const FIN = 0x001;
        /// Synchronise sequence numbers. `TCPHDR_SYN`.
        const SYN = 0x002;
        /// Reset the connection. `TCPHDR_RST`.
        const RST = 0x004;
        /// Push. `TCPHDR_PSH`.
        const PSH = 0x008;
        /// Acknowledgment field is significant. `TCPHDR_ACK`.
        const ACK = 0x010;
        /// Urgent pointer is significant. `TCPHDR_URG`.
        const URG = 0x020;
        /// ECN echo. `TCPHDR_ECE`.
        const ECE = 0x040;
        /// Congestion window reduced. `TCPHDR_CWR`.
        const CWR = 0x080;
        /// Accurate ECN (formerly NS). `TCPHDR_AE`.
        const AE = 0x100;
    }
}

/// The fixed 20-byte TCP header as it lies on the wire.
///
/// Mirrors `struct tcphdr` in `include/uapi/linux/tcp.h`; the data offset,
/// reserved bits and flags are kept as the two raw bytes `doff_res` and
/// `flags` and split by accessors.
#[doc(alias = "tcphdr")]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct TcpHdr {
    /// Source port.
    pub source: U16,
    /// Destination port.
    pub dest: U16,
    /// Sequence number.
    pub seq: U32,
    /// Acknowledgment number.
    pub ack_seq: U32,
    /// Data offset in 32-bit words (high nibble), reserved bits and AE (low bit).
    pub doff_res: u8,
    /// CWR ECE URG ACK PSH RST SYN FIN, high bit first.
    pub flags: u8,
    /// Receive window (unscaled).
    pub window: U16,
    /// Checksum over the pseudo-header and the segment.
    pub check: U16,
    /// Urgent pointer.
    pub urg_ptr: U16,
}

impl TcpHdr {
    /// The data offset in 32-bit words.
    pub const fn doff(&self) -> u8 {
        self.doff_res >> 4
    }

    /// The flags, AE included.
    pub const fn flags(&self) -> TcpFlags {
        TcpFlags::from_bits_truncate(((self.doff_res as u16 & 1) << 8) | self.flags as u16)
    }
}

/// A checked view of a TCP segment: the fixed header, its options and the
/// payload.
///
/// [`TcpPacket::new_checked`] validates the data offset and the option layout;
/// afterwards every accessor is infallible. The payload is everything after
/// the header: the IP layer has already cut the buffer to the datagram.
pub struct TcpPacket<B> {
    hdr: Ref<B, TcpHdr>,
    options: B,
    payload: B,
}

impl<B: SplitByteSlice> TcpPacket<B> {
    /// Checks the lengths and options of a segment and returns a view of it.
    /// The checksum is not verified here (see [`TcpPacket::verify_checksum`]).
    ///
    /// Mirrors the checks of `tcp_v4_rcv()` (`th->doff < sizeof(struct tcphdr) / 4`,
    /// `pskb_may_pull(skb, th->doff * 4)`). Errors: [`WireError::Truncated`],
    /// [`WireError::BadHeaderLen`] (data offset < 5; Linux: `InErrs`),
    /// [`WireError::BadOption`].
    pub fn new_checked(buf: B) -> Result<Self, WireError> {
        let got = buf.len();
        let (hdr, rest) = split_header::<B, TcpHdr>(buf)?;
        if hdr.doff() < 5 {
            return Err(WireError::BadHeaderLen(hdr.doff()));
        }
        let hlen = usize::from(hdr.doff()) * 4;
        let (options, payload) = split_at(rest, hlen - TCP_MIN_HLEN, hlen)
            .map_err(|_| WireError::Truncated { needed: hlen, got })?;
        for opt in TcpOptionsIter::new(&options) {
            opt?;
        }
        Ok(Self {
            hdr,
            options,
            payload,
        })
    }

    /// The fixed header, for reading its fields directly.
    pub fn header(&self) -> &TcpHdr {
        &self.hdr
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.hdr.source.get()
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.hdr.dest.get()
    }

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        self.hdr.seq.get()
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        self.hdr.ack_seq.get()
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.hdr.doff()) * 4
    }

    /// The flags.
    pub fn flags(&self) -> TcpFlags {
        self.hdr.flags()
    }

    /// Receive window, unscaled.
    pub fn window(&self) -> u16 {
        self.hdr.window.get()
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.hdr.check.get()
    }

    /// Urgent pointer.
    pub fn urgent(&self) -> u16 {
        self.hdr.urg_ptr.get()
    }

    /// The raw options area.
    pub fn options(&self) -> &[u8] {
        &self.options
    }

    /// The options, one by one (each already validated: none is an error).
    pub fn options_iter(&self) -> TcpOptionsIter<'_> {
        TcpOptionsIter::new(&self.options)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Consumes the view and returns the payload buffer.
    pub fn into_payload(self) -> B {
        self.payload
    }

    /// The ones'-complement sum of the whole segment, before the
    /// pseudo-header.
    fn segment_sum(&self) -> u32 {
        csum_partial(
            &self.payload,
            csum_partial(&self.options, csum_partial(self.hdr.as_bytes(), 0)),
        )
    }

    fn segment_len(&self) -> u16 {
        // At most 65535 - 20 since the IP layer bounds the datagram; saturate
        // rather than wrap if a caller hands in a larger buffer.
        u16::try_from(self.header_len() + self.payload.len()).unwrap_or(u16::MAX)
    }

    /// Whether the checksum verifies against the pseudo-header.
    ///
    /// Mirrors `tcp_v4_checksum_init()` followed by `tcp_checksum_complete()`.
    pub fn verify_checksum(&self, saddr: Ipv4Addr, daddr: Ipv4Addr) -> bool {
        csum_tcpudp_magic(
            saddr,
            daddr,
            self.segment_len(),
            IpProtocol::Tcp.into(),
            self.segment_sum(),
        ) == 0
    }
}

impl<B: SplitByteSliceMut> TcpPacket<B> {
    /// The fixed header, writable. Fix the checksum afterwards.
    pub fn header_mut(&mut self) -> &mut TcpHdr {
        &mut self.hdr
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        self.hdr.source = U16::new(port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        self.hdr.dest = U16::new(port);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, check: u16) {
        self.hdr.check = U16::new(check);
    }

    /// Computes and writes the checksum.
    ///
    /// Mirrors `__tcp_v4_send_check()` with the checksum computed in software.
    pub fn fill_checksum(&mut self, saddr: Ipv4Addr, daddr: Ipv4Addr) {
        self.hdr.check = U16::ZERO;
        let check = csum_tcpudp_magic(
            saddr,
            daddr,
            self.segment_len(),
            IpProtocol::Tcp.into(),
            self.segment_sum(),
        );
        self.hdr.check = U16::new(check);
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// The fields of a TCP header, for building segments and in tests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window, unscaled.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions,
    /// Length of the payload that follows the header.
    pub payload_len: usize,
}

impl TcpRepr {
    /// Reads a checked segment (options included) and verifies its checksum.
    ///
    /// Errors: [`WireError::BadChecksum`] (Linux: `InCsumErrors`).
    pub fn parse<B: SplitByteSlice>(
        packet: &TcpPacket<B>,
        saddr: Ipv4Addr,
        daddr: Ipv4Addr,
    ) -> Result<Self, WireError> {
        if !packet.verify_checksum(saddr, daddr) {
            return Err(WireError::BadChecksum);
        }
        Ok(Self {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window(),
            urgent: packet.urgent(),
            options: TcpOptions::parse(packet.options())?,
            payload_len: packet.payload().len(),
        })
    }

    /// Header length: 20 plus the options.
    pub fn header_len(&self) -> usize {
        TCP_MIN_HLEN + self.options.buffer_len()
    }

    /// Length of the segment: header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header and options into `buf[..header_len()]` and the
    /// checksum over the payload already in `buf[header_len()..buffer_len()]`.
    ///
    /// Mirrors the header fill of `__tcp_transmit_skb()` in
    /// `net/ipv4/tcp_output.c`. Errors: [`WireError::OptionsTooLong`],
    /// [`WireError::TooLong`] past 65535 bytes, [`WireError::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8], saddr: Ipv4Addr, daddr: Ipv4Addr) -> Result<(), WireError> {
        let hlen = self.header_len();
        if hlen > TCP_MIN_HLEN + crate::tcp_options::MAX_TCP_OPTION_SPACE {
            return Err(WireError::OptionsTooLong(hlen - TCP_MIN_HLEN));
        }
        let len = u16::try_from(self.buffer_len()).map_err(|_| WireError::TooLong {
            len: self.buffer_len(),
            max: usize::from(u16::MAX),
        })?;
        check_room(buf, self.buffer_len())?;
        let bits = self.flags.bits();
        let hdr = TcpHdr {
            source: U16::new(self.src_port),
            dest: U16::new(self.dst_port),
            seq: U32::new(self.seq),
            ack_seq: U32::new(self.ack),
            doff_res: ((hlen / 4) as u8) << 4 | (bits >> 8) as u8,
            flags: bits as u8,
            window: U16::new(self.window),
            check: U16::ZERO,
            urg_ptr: U16::new(self.urgent),
        };
        buf[..TCP_MIN_HLEN].copy_from_slice(hdr.as_bytes());
        self.options.emit(&mut buf[TCP_MIN_HLEN..hlen])?;
        let sum = csum_partial(&buf[..self.buffer_len()], 0);
        let check = csum_tcpudp_magic(saddr, daddr, len, IpProtocol::Tcp.into(), sum);
        buf[16..18].copy_from_slice(&check.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp_options::{SackBlocks, TcpOption};

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    // SYN 40000 -> 80, seq 0x01020304, window 64240, MSS 1460 + NOP NOP SACK_PERM.
    static SYN: [u8; 28] = [
        0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
    ];

    fn syn_repr() -> TcpRepr {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: 0x0102_0304,
            ack: 0,
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                sack_ok: true,
                ..TcpOptions::default()
            },
            payload_len: 0,
        }
    }

    fn with_checksum(mut seg: [u8; 28]) -> [u8; 28] {
        let mut p = TcpPacket::new_checked(&mut seg[..]).unwrap();
        p.fill_checksum(SRC, DST);
        seg
    }

    #[test]
    fn test_deconstruct() {
        let seg = with_checksum(SYN);
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.seq_number(), 0x0102_0304);
        assert_eq!(p.ack_number(), 0);
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert_eq!(p.window(), 64240);
        assert_eq!(p.urgent(), 0);
        assert_eq!(p.payload(), &[] as &[u8]);
        assert!(p.verify_checksum(SRC, DST));
        let opts: Vec<_> = p.options_iter().map(Result::unwrap).collect();
        assert_eq!(
            opts,
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::NoOperation,
                TcpOption::NoOperation,
                TcpOption::SackPermitted
            ]
        );
        assert_eq!(TcpRepr::parse(&p, SRC, DST).unwrap(), syn_repr());
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 28];
        syn_repr().emit(&mut buf, SRC, DST).unwrap();
        assert_eq!(buf, with_checksum(SYN));
        // The checksum differs from the header-only sum: it covers the pseudo-header.
        assert_ne!(buf[16..18], [0, 0]);
    }

    #[test]
    fn all_flags_and_payload() {
        let mut r = syn_repr();
        r.flags = TcpFlags::all();
        r.options = TcpOptions {
            timestamp: Some((7, 9)),
            sack_blocks: SackBlocks::from_slice(&[crate::TcpSackBlock {
                start_seq: 1,
                end_seq: 2,
            }])
            .unwrap(),
            ..TcpOptions::default()
        };
        r.payload_len = 5;
        let mut buf = vec![0u8; r.buffer_len()];
        let hlen = r.header_len();
        buf[hlen..].copy_from_slice(b"hello");
        r.emit(&mut buf, SRC, DST).unwrap();
        assert_eq!(buf[12] & 0x0f, 1, "AE lives in the low bit of byte 12");
        assert_eq!(buf[13], 0xff);
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.payload(), b"hello");
        assert_eq!(TcpRepr::parse(&p, SRC, DST).unwrap(), r);
    }

    #[test]
    fn mutable_view() {
        let mut seg = with_checksum(SYN);
        let mut p = TcpPacket::new_checked(&mut seg[..]).unwrap();
        p.set_dst_port(8080);
        assert!(!p.verify_checksum(SRC, DST));
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        p.set_src_port(1);
        p.set_checksum(0xabcd);
        p.header_mut().window = U16::new(1);
        assert_eq!(seg[..2], [0, 1]);
        assert_eq!(seg[16..18], [0xab, 0xcd]);
    }

    #[test]
    fn lying_lengths() {
        assert_eq!(
            TcpPacket::new_checked(&SYN[..19]).err(),
            Some(WireError::Truncated {
                needed: 20,
                got: 19
            })
        );
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).err(),
            Some(WireError::BadHeaderLen(4))
        );
        b[12] = 0x80;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).err(),
            Some(WireError::Truncated {
                needed: 32,
                got: 28
            })
        );
        let mut b = SYN;
        b[21] = 9;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).err(),
            Some(WireError::BadOption { kind: 2, len: 9 })
        );
        let seg = with_checksum(SYN);
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, SRC, Ipv4Addr::new(198, 18, 0, 3)),
            Err(WireError::BadChecksum)
        );
    }

    /// Found by the wire_parsers fuzz target: 40 bytes of options on the
    /// wire (a four-block SACK, MSS and SACK-permitted, packed without
    /// NOPs) parse, but laid out as Linux writes them (NOP-aligned) they
    /// need 44 bytes, so emit refuses them with the length instead of
    /// writing a header whose data offset cannot say it.
    #[test]
    fn parsed_options_needing_more_room_than_40_bytes_are_refused_by_emit() {
        let mut seg = [0u8; 60];
        seg[..20].copy_from_slice(&SYN[..20]);
        seg[12] = 0xf0; // data offset 15: 40 bytes of options
        seg[13] = 0x10; // ACK
        seg[20..22].copy_from_slice(&[5, 34]); // SACK, four blocks
        for (i, b) in seg[22..54].iter_mut().enumerate() {
            *b = i as u8;
        }
        seg[54..60].copy_from_slice(&[2, 4, 0x05, 0xb4, 4, 2]); // MSS, SACK_PERM
        TcpPacket::new_checked(&mut seg[..])
            .unwrap()
            .fill_checksum(SRC, DST);
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        let r = TcpRepr::parse(&p, SRC, DST).unwrap();
        assert_eq!(r.options.sack_blocks.len(), 4);
        assert_eq!(r.options.mss, Some(1460));
        let mut buf = vec![0u8; 80];
        assert_eq!(
            r.emit(&mut buf, SRC, DST),
            Err(WireError::OptionsTooLong(44))
        );
    }
}
