//! UDP headers.
//!
//! Mirrors `include/uapi/linux/udp.h` (`struct udphdr`) and the length and
//! checksum rules of `__udp4_lib_rcv()` in `net/ipv4/udp.c`.
//!
//! ```text
//! +---------------+---------------+---------------+---------------+---------
//! | source 2      | dest 2        | len 2         | check 2       | payload
//! +---------------+---------------+---------------+---------------+---------
//! ```

use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::WireError;
use crate::checksum::{csum_partial, csum_tcpudp_magic};
use crate::error::{check_room, split_at, split_header};
use crate::ipv4::IpProtocol;

/// Length of the UDP header.
pub const UDP_HLEN: usize = 8;

/// The UDP header as it lies on the wire.
///
/// Mirrors `struct udphdr` in `include/uapi/linux/udp.h`.
#[doc(alias = "udphdr")]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct UdpHdr {
    /// Source port.
    pub source: U16,
    /// Destination port.
    pub dest: U16,
    /// Length of header and payload.
    pub len: U16,
    /// Checksum over the pseudo-header, header and payload; 0 means none.
    pub check: U16,
}

/// A checked view of a UDP datagram.
///
/// [`UdpPacket::new_checked`] validates the length field against the buffer
/// as `__udp4_lib_rcv()` does; the payload is cut at `len`.
pub struct UdpPacket<B> {
    hdr: Ref<B, UdpHdr>,
    payload: B,
}

impl<B: SplitByteSlice> UdpPacket<B> {
    /// Checks the lengths of a datagram and returns a view of it. The checksum
    /// is not verified here (see [`UdpPacket::verify_checksum`]).
    ///
    /// Errors: [`WireError::Truncated`] when the buffer is shorter than the
    /// header or than `len`, [`WireError::BadUdpLen`] when `len` < 8 (Linux
    /// counts both as `InErrors` after a `short_packet`).
    pub fn new_checked(buf: B) -> Result<Self, WireError> {
        let got = buf.len();
        let (hdr, rest) = split_header::<B, UdpHdr>(buf)?;
        let len = usize::from(hdr.len.get());
        if len < UDP_HLEN {
            return Err(WireError::BadUdpLen(hdr.len.get()));
        }
        if len > got {
            return Err(WireError::Truncated { needed: len, got });
        }
        let (payload, _padding) = split_at(rest, len - UDP_HLEN, len)?;
        Ok(Self { hdr, payload })
    }

    /// The header, for reading its fields directly.
    pub fn header(&self) -> &UdpHdr {
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

    /// The length field (header plus payload).
    pub fn len(&self) -> u16 {
        self.hdr.len.get()
    }

    /// Whether the datagram carries no payload.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        self.hdr.check.get()
    }

    /// The payload: `len - 8` bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Consumes the view and returns the payload buffer.
    pub fn into_payload(self) -> B {
        self.payload
    }

    /// Whether the checksum verifies against the pseudo-header of `saddr` and
    /// `daddr`. A zero checksum field means "not computed" and verifies.
    ///
    /// Mirrors `udp4_csum_init()` and `__skb_checksum_complete()`.
    pub fn verify_checksum(&self, saddr: Ipv4Addr, daddr: Ipv4Addr) -> bool {
        if self.hdr.check.get() == 0 {
            return true;
        }
        let sum = csum_partial(&self.payload, csum_partial(self.hdr.as_bytes(), 0));
        csum_tcpudp_magic(saddr, daddr, self.len(), IpProtocol::Udp.into(), sum) == 0
    }
}

impl<B: SplitByteSliceMut> UdpPacket<B> {
    /// Sets the source port (the checksum is not updated).
    pub fn set_src_port(&mut self, port: u16) {
        self.hdr.source = U16::new(port);
    }

    /// Sets the destination port (the checksum is not updated).
    pub fn set_dst_port(&mut self, port: u16) {
        self.hdr.dest = U16::new(port);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, check: u16) {
        self.hdr.check = U16::new(check);
    }

    /// Computes and writes the checksum; a computed 0 is sent as 0xffff.
    ///
    /// Mirrors `udp4_hwcsum()`'s software fallback and the `CSUM_MANGLED_0`
    /// rule of `udp_send_skb()` in `net/ipv4/udp.c`.
    pub fn fill_checksum(&mut self, saddr: Ipv4Addr, daddr: Ipv4Addr) {
        self.hdr.check = U16::ZERO;
        let sum = csum_partial(&self.payload, csum_partial(self.hdr.as_bytes(), 0));
        let check = csum_tcpudp_magic(saddr, daddr, self.len(), IpProtocol::Udp.into(), sum);
        self.hdr.check = U16::new(if check == 0 { 0xffff } else { check });
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// The fields of a UDP header, for building datagrams and in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of the payload that follows the header.
    pub payload_len: usize,
}

impl UdpRepr {
    /// Reads the header of a checked datagram and verifies its checksum.
    ///
    /// Errors: [`WireError::BadChecksum`].
    pub fn parse<B: SplitByteSlice>(
        packet: &UdpPacket<B>,
        saddr: Ipv4Addr,
        daddr: Ipv4Addr,
    ) -> Result<Self, WireError> {
        if !packet.verify_checksum(saddr, daddr) {
            return Err(WireError::BadChecksum);
        }
        Ok(Self {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: packet.payload().len(),
        })
    }

    /// Length of the header: 8.
    pub const fn header_len(&self) -> usize {
        UDP_HLEN
    }

    /// Length of the datagram: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        UDP_HLEN + self.payload_len
    }

    /// Writes the header into `buf[..8]` and the checksum over the payload
    /// already in `buf[8..buffer_len()]`.
    ///
    /// Mirrors `udp_send_skb()` in `net/ipv4/udp.c`. Errors:
    /// [`WireError::TooLong`] past 65535 bytes, [`WireError::BufferTooSmall`]
    /// when `buf` is shorter than [`UdpRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8], saddr: Ipv4Addr, daddr: Ipv4Addr) -> Result<(), WireError> {
        let len = u16::try_from(self.buffer_len()).map_err(|_| WireError::TooLong {
            len: self.buffer_len(),
            max: usize::from(u16::MAX),
        })?;
        check_room(buf, self.buffer_len())?;
        let hdr = UdpHdr {
            source: U16::new(self.src_port),
            dest: U16::new(self.dst_port),
            len: U16::new(len),
            check: U16::ZERO,
        };
        buf[..UDP_HLEN].copy_from_slice(hdr.as_bytes());
        let sum = csum_partial(&buf[..self.buffer_len()], 0);
        let check = csum_tcpudp_magic(saddr, daddr, len, IpProtocol::Udp.into(), sum);
        let check = if check == 0 { 0xffff } else { check };
        buf[6..8].copy_from_slice(&check.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    // 40000 -> 53, len 12, payload "ping".
    static PACKET: [u8; 12] = [
        0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0xf8, 0x67, b'p', b'i', b'n', b'g',
    ];

    #[test]
    fn test_deconstruct() {
        let p = UdpPacket::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.src_port(), 40000);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.checksum(), 0xf867);
        assert_eq!(p.payload(), b"ping");
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(198, 18, 0, 3)));
        assert_eq!(
            UdpRepr::parse(&p, SRC, DST).unwrap(),
            UdpRepr {
                src_port: 40000,
                dst_port: 53,
                payload_len: 4
            }
        );
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 12];
        buf[8..].copy_from_slice(b"ping");
        UdpRepr {
            src_port: 40000,
            dst_port: 53,
            payload_len: 4,
        }
        .emit(&mut buf, SRC, DST)
        .unwrap();
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn zero_checksum_means_none() {
        let mut b = PACKET;
        b[6] = 0;
        b[7] = 0;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(SRC, DST));
    }

    #[test]
    fn mutable_view() {
        let mut b = PACKET;
        let mut p = UdpPacket::new_checked(&mut b[..]).unwrap();
        p.set_dst_port(5353);
        p.payload_mut()[0] = b'P';
        assert!(!p.verify_checksum(SRC, DST));
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        p.set_checksum(0x1234);
        assert_eq!(b[6..8], [0x12, 0x34]);
    }

    #[test]
    fn lying_lengths() {
        assert_eq!(
            UdpPacket::new_checked(&PACKET[..7]).err(),
            Some(WireError::Truncated { needed: 8, got: 7 })
        );
        let mut b = PACKET;
        b[5] = 7;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).err(),
            Some(WireError::BadUdpLen(7))
        );
        b[5] = 13;
        assert_eq!(
            UdpPacket::new_checked(&b[..]).err(),
            Some(WireError::Truncated {
                needed: 13,
                got: 12
            })
        );
        b[5] = 9;
        assert_eq!(UdpPacket::new_checked(&b[..]).unwrap().payload(), b"p");
        let mut b = PACKET;
        b[9] ^= 0xff;
        let p = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, SRC, DST), Err(WireError::BadChecksum));
    }
}
