//! IPv4 headers with options.
//!
//! Mirrors `include/uapi/linux/ip.h` (`struct iphdr`, `IPOPT_*`), the
//! `IPPROTO_*` numbers of `include/uapi/linux/in.h`, and the header checks of
//! `ip_rcv_core()` in `net/ipv4/ip_input.c`.
//!
//! ```text
//!  0               1               2               3
//! +-------+-------+---------------+-------------------------------+
//! |version|  ihl  |      tos      |            tot_len            |
//! +-------+-------+---------------+-----+-------------------------+
//! |              id               |flags|        frag_off         |
//! +---------------+---------------+-----+-------------------------+
//! |      ttl      |   protocol    |             check             |
//! +---------------+---------------+-------------------------------+
//! |                             saddr                             |
//! |                             daddr                             |
//! |                 options (ihl*4 - 20 bytes)                    |
//! +---------------------------------------------------------------+
//! ```

use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::WireError;
use crate::checksum::{csum_fold, csum_partial, csum_replace2, csum_replace4};
use crate::error::{check_room, split_at, split_header};
use crate::macros::enum_with_unknown;

/// Length of an IPv4 header without options.
pub const IPV4_MIN_HLEN: usize = 20;
/// Most option bytes an IPv4 header can hold (IHL 15).
pub const IPV4_MAX_OPTLEN: usize = 40;
/// "Don't fragment" bit of `frag_off`. Mirrors `IP_DF`.
pub const IP_DF: u16 = 0x4000;
/// "More fragments" bit of `frag_off`. Mirrors `IP_MF`.
pub const IP_MF: u16 = 0x2000;
/// Fragment offset mask of `frag_off`, in 8-byte units. Mirrors `IP_OFFSET`.
pub const IP_OFFSET: u16 = 0x1fff;

enum_with_unknown! {
    /// The protocol carried by an IPv4 datagram.
    ///
    /// Mirrors the `IPPROTO_*` values in `include/uapi/linux/in.h`.
    pub enum IpProtocol(u8) {
        /// `IPPROTO_ICMP`.
        #[doc(alias = "IPPROTO_ICMP")]
        Icmp = 1,
        /// `IPPROTO_IGMP`.
        #[doc(alias = "IPPROTO_IGMP")]
        Igmp = 2,
        /// IPv4-in-IPv4. `IPPROTO_IPIP`.
        #[doc(alias = "IPPROTO_IPIP")]
        IpIp = 4,
        /// `IPPROTO_TCP`.
        #[doc(alias = "IPPROTO_TCP")]
        Tcp = 6,
        /// `IPPROTO_UDP`.
        #[doc(alias = "IPPROTO_UDP")]
        Udp = 17,
        /// `IPPROTO_DCCP`.
        #[doc(alias = "IPPROTO_DCCP")]
        Dccp = 33,
        /// IPv6-in-IPv4. `IPPROTO_IPV6`.
        #[doc(alias = "IPPROTO_IPV6")]
        Ipv6 = 41,
        /// `IPPROTO_GRE`.
        #[doc(alias = "IPPROTO_GRE")]
        Gre = 47,
        /// `IPPROTO_ESP`.
        #[doc(alias = "IPPROTO_ESP")]
        Esp = 50,
        /// `IPPROTO_AH`.
        #[doc(alias = "IPPROTO_AH")]
        Ah = 51,
        /// `IPPROTO_SCTP`.
        #[doc(alias = "IPPROTO_SCTP")]
        Sctp = 132,
        /// `IPPROTO_UDPLITE`.
        #[doc(alias = "IPPROTO_UDPLITE")]
        UdpLite = 136,
    }
}

/// End of the option list. Mirrors `IPOPT_END`.
pub const IPOPT_END: u8 = 0;
/// No operation (padding between options). Mirrors `IPOPT_NOOP`.
pub const IPOPT_NOOP: u8 = 1;
/// Record route. Mirrors `IPOPT_RR`.
pub const IPOPT_RR: u8 = 7;
/// Timestamp. Mirrors `IPOPT_TS`.
pub const IPOPT_TS: u8 = 68;
/// Loose source and record route. Mirrors `IPOPT_LSRR`.
pub const IPOPT_LSRR: u8 = 131;
/// Strict source and record route. Mirrors `IPOPT_SSRR`.
pub const IPOPT_SSRR: u8 = 137;
/// Router alert. Mirrors `IPOPT_RA`.
pub const IPOPT_RA: u8 = 148;

/// The fixed 20-byte IPv4 header as it lies on the wire.
///
/// Mirrors `struct iphdr` in `include/uapi/linux/ip.h`. The version and IHL
/// nibbles share `version_ihl`, and the flags share `frag_off`; the accessor
/// methods split them.
#[doc(alias = "iphdr")]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Ipv4Hdr {
    /// Version (high nibble) and header length in 32-bit words (low nibble).
    pub version_ihl: u8,
    /// Type of service: DSCP (high six bits) and ECN (low two bits).
    pub tos: u8,
    /// Length of the datagram, header included.
    pub tot_len: U16,
    /// Identification, for reassembly.
    pub id: U16,
    /// Flags (`IP_DF`, `IP_MF`) and fragment offset in 8-byte units.
    pub frag_off: U16,
    /// Time to live.
    pub ttl: u8,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Header checksum.
    pub check: U16,
    /// Source address.
    pub saddr: [u8; 4],
    /// Destination address.
    pub daddr: [u8; 4],
}

impl Ipv4Hdr {
    /// The version nibble.
    pub const fn version(&self) -> u8 {
        self.version_ihl >> 4
    }

    /// The header length in 32-bit words.
    pub const fn ihl(&self) -> u8 {
        self.version_ihl & 0x0f
    }

    /// Whether `IP_DF` is set.
    pub fn df(&self) -> bool {
        self.frag_off.get() & IP_DF != 0
    }

    /// Whether `IP_MF` is set.
    pub fn mf(&self) -> bool {
        self.frag_off.get() & IP_MF != 0
    }

    /// The fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.frag_off.get() & IP_OFFSET) << 3
    }

    /// Whether this datagram is a fragment (MF set or a non-zero offset).
    ///
    /// Mirrors `ip_is_fragment()` in `include/net/ip.h`.
    #[doc(alias = "ip_is_fragment")]
    pub fn is_fragment(&self) -> bool {
        self.frag_off.get() & (IP_MF | IP_OFFSET) != 0
    }

    /// Source address.
    pub const fn src_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.saddr[0], self.saddr[1], self.saddr[2], self.saddr[3])
    }

    /// Destination address.
    pub const fn dst_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.daddr[0], self.daddr[1], self.daddr[2], self.daddr[3])
    }
}

/// One IPv4 option, as [`Ipv4OptionsIter`] yields it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Option<'a> {
    /// The option type (`IPOPT_*`), copy flag and class included.
    pub kind: u8,
    /// The option's data after the type and length bytes (empty for
    /// `IPOPT_END` and `IPOPT_NOOP`).
    pub data: &'a [u8],
}

/// Walks the options area of a checked IPv4 header.
///
/// Stops at `IPOPT_END` or at the end of the area. Created by
/// [`Ipv4Packet::options_iter`]; the layout was validated when the view was
/// made, so iteration cannot fail.
#[derive(Clone, Debug)]
pub struct Ipv4OptionsIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Ipv4OptionsIter<'a> {
    type Item = Ipv4Option<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after) = self.rest.split_first()?;
        match kind {
            IPOPT_END => {
                self.rest = &[];
                Some(Ipv4Option { kind, data: &[] })
            }
            IPOPT_NOOP => {
                self.rest = after;
                Some(Ipv4Option { kind, data: &[] })
            }
            _ => {
                let len = usize::from(*after.first()?);
                let data = self.rest.get(2..len)?;
                self.rest = self.rest.get(len..).unwrap_or(&[]);
                Some(Ipv4Option { kind, data })
            }
        }
    }
}

/// Checks the type-length layout of an options area: every option other than
/// `IPOPT_END`/`IPOPT_NOOP` has a length of at least 2 that stays inside.
///
/// Mirrors the length checks of `__ip_options_compile()` in
/// `net/ipv4/ip_options.c`; the semantics of each option are the IP layer's.
fn check_ipv4_options(opts: &[u8]) -> Result<(), WireError> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            IPOPT_END => return Ok(()),
            IPOPT_NOOP => i += 1,
            kind => {
                let Some(&len) = opts.get(i + 1) else {
                    return Err(WireError::BadOption { kind, len: 0 });
                };
                if len < 2 || i + usize::from(len) > opts.len() {
                    return Err(WireError::BadOption { kind, len });
                }
                i += usize::from(len);
            }
        }
    }
    Ok(())
}

/// A checked view of an IPv4 datagram: the fixed header, its options and the
/// payload.
///
/// [`Ipv4Packet::new_checked`] validates the lengths as `ip_rcv_core()` does;
/// afterwards every accessor is infallible. The payload is cut at `tot_len`, so
/// Ethernet padding after the datagram is not part of it (`pskb_trim_rcsum()`).
pub struct Ipv4Packet<B> {
    hdr: Ref<B, Ipv4Hdr>,
    options: B,
    payload: B,
}

impl<B: SplitByteSlice> Ipv4Packet<B> {
    /// Checks every length of a datagram and returns a view of it. The header
    /// checksum is not verified here (see [`Ipv4Packet::new_verified`]).
    ///
    /// Mirrors the checks of `ip_rcv_core()` in `net/ipv4/ip_input.c`, in its
    /// order. Errors: [`WireError::Truncated`] (Linux: `InTruncatedPkts` when the
    /// buffer is shorter than `tot_len`, `InHdrErrors` otherwise),
    /// [`WireError::BadVersion`], [`WireError::BadHeaderLen`] (IHL < 5),
    /// [`WireError::BadTotalLen`] (`tot_len` < IHL·4), [`WireError::BadOption`].
    pub fn new_checked(buf: B) -> Result<Self, WireError> {
        let got = buf.len();
        let (hdr, rest) = split_header::<B, Ipv4Hdr>(buf)?;
        if hdr.version() != 4 {
            return Err(WireError::BadVersion(hdr.version()));
        }
        if hdr.ihl() < 5 {
            return Err(WireError::BadHeaderLen(hdr.ihl()));
        }
        let hlen = usize::from(hdr.ihl()) * 4;
        let tot_len = usize::from(hdr.tot_len.get());
        if got < hlen {
            return Err(WireError::Truncated { needed: hlen, got });
        }
        if got < tot_len {
            return Err(WireError::Truncated {
                needed: tot_len,
                got,
            });
        }
        if tot_len < hlen {
            return Err(WireError::BadTotalLen(hdr.tot_len.get()));
        }
        let (options, rest) = split_at(rest, hlen - IPV4_MIN_HLEN, hlen)?;
        let (payload, _padding) = split_at(rest, tot_len - hlen, tot_len)?;
        check_ipv4_options(&options)?;
        Ok(Self {
            hdr,
            options,
            payload,
        })
    }

    /// Like [`Ipv4Packet::new_checked`], and also verifies the header checksum.
    ///
    /// Errors: those of `new_checked`, and [`WireError::BadChecksum`] (Linux:
    /// `InCsumErrors`).
    pub fn new_verified(buf: B) -> Result<Self, WireError> {
        let p = Self::new_checked(buf)?;
        if p.verify_checksum() {
            Ok(p)
        } else {
            Err(WireError::BadChecksum)
        }
    }

    /// The fixed header, for reading its fields directly.
    pub fn header(&self) -> &Ipv4Hdr {
        &self.hdr
    }

    /// The version nibble (always 4 in a checked view).
    pub fn version(&self) -> u8 {
        self.hdr.version()
    }

    /// Header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.hdr.ihl()) * 4
    }

    /// The type-of-service byte.
    pub fn tos(&self) -> u8 {
        self.hdr.tos
    }

    /// Differentiated services code point (the high six bits of `tos`).
    pub fn dscp(&self) -> u8 {
        self.hdr.tos >> 2
    }

    /// Explicit congestion notification (the low two bits of `tos`).
    pub fn ecn(&self) -> u8 {
        self.hdr.tos & 0x3
    }

    /// `tot_len`: the datagram length, header included.
    pub fn total_len(&self) -> u16 {
        self.hdr.tot_len.get()
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        self.hdr.id.get()
    }

    /// Whether "don't fragment" is set.
    pub fn dont_frag(&self) -> bool {
        self.hdr.df()
    }

    /// Whether "more fragments" is set.
    pub fn more_frags(&self) -> bool {
        self.hdr.mf()
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        self.hdr.frag_offset()
    }

    /// Whether the datagram is a fragment. Mirrors `ip_is_fragment()`.
    pub fn is_fragment(&self) -> bool {
        self.hdr.is_fragment()
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.hdr.ttl
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        self.hdr.protocol.into()
    }

    /// The header checksum field.
    pub fn checksum(&self) -> u16 {
        self.hdr.check.get()
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        self.hdr.src_addr()
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.hdr.dst_addr()
    }

    /// The raw options area (`ihl * 4 - 20` bytes).
    pub fn options(&self) -> &[u8] {
        &self.options
    }

    /// The options, one by one.
    pub fn options_iter(&self) -> Ipv4OptionsIter<'_> {
        Ipv4OptionsIter {
            rest: &self.options,
        }
    }

    /// The payload: `tot_len - ihl * 4` bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Consumes the view and returns the payload buffer.
    pub fn into_payload(self) -> B {
        self.payload
    }

    /// Whether the header checksum verifies.
    ///
    /// Mirrors the `ip_fast_csum(iph, iph->ihl)` test in `ip_rcv_core()`.
    pub fn verify_checksum(&self) -> bool {
        let sum = csum_partial(&self.options, csum_partial(self.hdr.as_bytes(), 0));
        csum_fold(sum) == 0
    }
}

impl<B: SplitByteSliceMut> Ipv4Packet<B> {
    /// The fixed header, writable. Remember to fix the checksum afterwards.
    pub fn header_mut(&mut self) -> &mut Ipv4Hdr {
        &mut self.hdr
    }

    /// Decrements the TTL and updates the checksum incrementally; returns the
    /// new TTL.
    ///
    /// Mirrors `ip_decrease_ttl()` in `include/net/ip.h`. The caller checks for a
    /// TTL of 1 or less before forwarding, as `ip_forward()` does; a TTL of 0
    /// stays 0.
    #[doc(alias = "ip_decrease_ttl")]
    pub fn decrease_ttl(&mut self) -> u8 {
        let old = u16::from_be_bytes([self.hdr.ttl, self.hdr.protocol]);
        self.hdr.ttl = self.hdr.ttl.saturating_sub(1);
        let new = u16::from_be_bytes([self.hdr.ttl, self.hdr.protocol]);
        self.hdr.check = U16::new(csum_replace2(self.hdr.check.get(), old, new));
        self.hdr.ttl
    }

    /// Rewrites the source address and updates the header checksum
    /// incrementally (the transport checksum is the caller's).
    ///
    /// Mirrors the `csum_replace4(&iph->check, …)` step of
    /// `nf_nat_ipv4_manip_pkt()` in `net/netfilter/nf_nat_proto.c`.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        let old = u32::from_be_bytes(self.hdr.saddr);
        self.hdr.saddr = addr.octets();
        self.hdr.check = U16::new(csum_replace4(self.hdr.check.get(), old, addr.to_bits()));
    }

    /// Rewrites the destination address and updates the header checksum
    /// incrementally.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        let old = u32::from_be_bytes(self.hdr.daddr);
        self.hdr.daddr = addr.octets();
        self.hdr.check = U16::new(csum_replace4(self.hdr.check.get(), old, addr.to_bits()));
    }

    /// Recomputes the header checksum from scratch.
    ///
    /// Mirrors `ip_send_check()` in `net/ipv4/ip_output.c`.
    #[doc(alias = "ip_send_check")]
    pub fn fill_checksum(&mut self) {
        self.hdr.check = U16::ZERO;
        let sum = csum_partial(&self.options, csum_partial(self.hdr.as_bytes(), 0));
        self.hdr.check = U16::new(csum_fold(sum));
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// The fields of an IPv4 header, for building datagrams and in tests.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Time to live.
    pub ttl: u8,
    /// Type of service (DSCP and ECN).
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// "Don't fragment".
    pub dont_frag: bool,
    /// "More fragments".
    pub more_frags: bool,
    /// Fragment offset in bytes; [`Ipv4Repr::emit`] writes it in 8-byte units,
    /// so it should be a multiple of 8.
    pub frag_offset: u16,
    /// Raw option bytes; `emit` pads them with `IPOPT_END` to a multiple of 4.
    pub options: heapless::Vec<u8, IPV4_MAX_OPTLEN>,
    /// Length of the payload that follows the header.
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Reads the header of a checked datagram and verifies its checksum.
    ///
    /// Errors: [`WireError::BadChecksum`].
    pub fn parse<B: SplitByteSlice>(packet: &Ipv4Packet<B>) -> Result<Self, WireError> {
        if !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        let mut options = heapless::Vec::new();
        // A checked view has at most 40 option bytes, so this cannot fail.
        options
            .extend_from_slice(packet.options())
            .map_err(|_| WireError::OptionsTooLong(packet.options().len()))?;
        Ok(Self {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options,
            payload_len: packet.payload().len(),
        })
    }

    /// Header length: 20 plus the options rounded up to a multiple of 4.
    pub fn header_len(&self) -> usize {
        IPV4_MIN_HLEN + self.options.len().next_multiple_of(4)
    }

    /// Length of the whole datagram: header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Writes the header (options and checksum included) at the start of
    /// `buf`; the payload after it is left untouched.
    ///
    /// Mirrors the header fill of `__ip_queue_xmit()` and `ip_send_check()` in
    /// `net/ipv4/ip_output.c`. Errors: [`WireError::TooLong`] when the datagram
    /// would exceed 65535 bytes, [`WireError::BufferTooSmall`] when `buf` is
    /// shorter than the header.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let hlen = self.header_len();
        let tot_len = u16::try_from(self.buffer_len()).map_err(|_| WireError::TooLong {
            len: self.buffer_len(),
            max: usize::from(u16::MAX),
        })?;
        check_room(buf, hlen)?;
        let mut frag_off = (self.frag_offset >> 3) & IP_OFFSET;
        if self.dont_frag {
            frag_off |= IP_DF;
        }
        if self.more_frags {
            frag_off |= IP_MF;
        }
        let hdr = Ipv4Hdr {
            version_ihl: 0x40 | (hlen / 4) as u8,
            tos: self.tos,
            tot_len: U16::new(tot_len),
            id: U16::new(self.ident),
            frag_off: U16::new(frag_off),
            ttl: self.ttl,
            protocol: self.protocol.into(),
            check: U16::ZERO,
            saddr: self.src_addr.octets(),
            daddr: self.dst_addr.octets(),
        };
        buf[..IPV4_MIN_HLEN].copy_from_slice(hdr.as_bytes());
        let opts = &mut buf[IPV4_MIN_HLEN..hlen];
        opts[..self.options.len()].copy_from_slice(&self.options);
        opts[self.options.len()..].fill(IPOPT_END);
        let check = csum_fold(csum_partial(&buf[..hlen], 0));
        buf[10..12].copy_from_slice(&check.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 198.18.0.1 -> 198.18.0.2, TCP, DF, TTL 64, id 0x1234, 4 payload bytes.
    static PACKET: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x9c, 0x84, 0xc6, 0x12, 0x00,
        0x01, 0xc6, 0x12, 0x00, 0x02, 0xde, 0xad, 0xbe, 0xef,
    ];

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 1),
            dst_addr: Ipv4Addr::new(198, 18, 0, 2),
            protocol: IpProtocol::Tcp,
            ttl: 64,
            tos: 0,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: heapless::Vec::new(),
            payload_len: 4,
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = Ipv4Packet::new_verified(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.ident(), 0x1234);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::Tcp);
        assert_eq!(p.checksum(), 0x9c84);
        assert_eq!(p.src_addr(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr());
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 24];
        buf[20..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        repr().emit(&mut buf).unwrap();
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn padding_after_tot_len_is_not_payload() {
        let mut framed = PACKET.to_vec();
        framed.extend_from_slice(&[0; 10]);
        let p = Ipv4Packet::new_checked(&framed[..]).unwrap();
        assert_eq!(p.payload().len(), 4);
    }

    #[test]
    fn options_are_read_and_validated() {
        let mut r = repr();
        r.options
            .extend_from_slice(&[IPOPT_NOOP, IPOPT_RA, 4, 0, 0])
            .unwrap();
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf).unwrap();
        assert_eq!(buf[0], 0x47);
        let p = Ipv4Packet::new_verified(&buf[..]).unwrap();
        assert_eq!(p.options(), &[IPOPT_NOOP, IPOPT_RA, 4, 0, 0, 0, 0, 0]);
        let opts: Vec<_> = p.options_iter().collect();
        assert_eq!(
            opts,
            [
                Ipv4Option {
                    kind: IPOPT_NOOP,
                    data: &[]
                },
                Ipv4Option {
                    kind: IPOPT_RA,
                    data: &[0, 0]
                },
                Ipv4Option {
                    kind: IPOPT_END,
                    data: &[]
                },
            ]
        );
        // A length that runs past the options area.
        buf[22] = 9;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(WireError::BadOption {
                kind: IPOPT_RA,
                len: 9
            })
        );
        buf[22] = 1;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(WireError::BadOption {
                kind: IPOPT_RA,
                len: 1
            })
        );
    }

    #[test]
    fn lying_lengths() {
        let mut b = PACKET;
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(WireError::BadVersion(6))
        );
        let mut b = PACKET;
        b[0] = 0x44;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(WireError::BadHeaderLen(4))
        );
        let mut b = PACKET;
        b[0] = 0x46;
        b[3] = 22;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(WireError::BadTotalLen(22))
        );
        let mut b = PACKET;
        b[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(WireError::Truncated {
                needed: 60,
                got: 24
            })
        );
        let mut b = PACKET;
        b[3] = 25;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(WireError::Truncated {
                needed: 25,
                got: 24
            })
        );
        let mut b = PACKET;
        b[3] = 19;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).err(),
            Some(WireError::BadTotalLen(19))
        );
        assert_eq!(
            Ipv4Packet::new_checked(&PACKET[..19]).err(),
            Some(WireError::Truncated {
                needed: 20,
                got: 19
            })
        );
        let mut b = PACKET;
        b[11] ^= 1;
        assert_eq!(
            Ipv4Packet::new_verified(&b[..]).err(),
            Some(WireError::BadChecksum)
        );
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&b[..]).unwrap()),
            Err(WireError::BadChecksum)
        );
    }

    #[test]
    fn decrease_ttl_keeps_checksum_valid() {
        let mut b = PACKET;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        for expected in (0..64).rev() {
            assert_eq!(p.decrease_ttl(), expected);
            assert!(p.verify_checksum(), "ttl {expected}");
        }
        assert_eq!(p.decrease_ttl(), 0);
        assert!(p.verify_checksum());
    }

    #[test]
    fn nat_rewrite_keeps_checksum_valid() {
        let mut b = PACKET;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_src_addr(Ipv4Addr::new(198, 19, 255, 254));
        p.set_dst_addr(Ipv4Addr::new(198, 18, 7, 9));
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), Ipv4Addr::new(198, 19, 255, 254));
        p.header_mut().tos = 0xb8;
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.dscp(), 46);
        p.payload_mut()[0] = 0;
        assert_eq!(b[20], 0);
    }

    #[test]
    fn emit_limits() {
        let mut r = repr();
        r.payload_len = 65516;
        assert_eq!(
            r.emit(&mut [0u8; 20]),
            Err(WireError::TooLong {
                len: 65536,
                max: 65535
            })
        );
        assert_eq!(
            repr().emit(&mut [0u8; 19]),
            Err(WireError::BufferTooSmall {
                needed: 20,
                got: 19
            })
        );
    }

    #[test]
    fn protocol_numbers_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(IpProtocol::from(200), IpProtocol::Unknown(200));
    }
}
