//! ICMPv4 messages.
//!
//! Mirrors `include/uapi/linux/icmp.h` (`struct icmphdr`, `ICMP_*` types and
//! codes) and the message layouts `net/ipv4/icmp.c` builds and reads.
//!
//! ```text
//! +--------+--------+-----------------+-----------------------------------+
//! | type 1 | code 1 | checksum 2      | un: echo id/seq, gateway, frag    |
//! |        |        |                 | mtu, or param-problem pointer (4) |
//! +--------+--------+-----------------+-----------------------------------+
//! | payload: echo data, or the offending IP header + 8 bytes (errors)     |
//! +-----------------------------------------------------------------------+
//! ```

use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::WireError;
use crate::checksum::{csum_fold, csum_partial};
use crate::error::{check_room, split_header};
use crate::macros::enum_with_unknown;

/// Length of the ICMP header.
pub const ICMP_HLEN: usize = 8;

enum_with_unknown! {
    /// The ICMP message type.
    ///
    /// Mirrors the `ICMP_*` type values in `include/uapi/linux/icmp.h`.
    pub enum IcmpType(u8) {
        /// Echo reply. `ICMP_ECHOREPLY`.
        #[doc(alias = "ICMP_ECHOREPLY")]
        EchoReply = 0,
        /// Destination unreachable. `ICMP_DEST_UNREACH`.
        #[doc(alias = "ICMP_DEST_UNREACH")]
        DestUnreach = 3,
        /// Source quench. `ICMP_SOURCE_QUENCH`.
        #[doc(alias = "ICMP_SOURCE_QUENCH")]
        SourceQuench = 4,
        /// Redirect. `ICMP_REDIRECT`.
        #[doc(alias = "ICMP_REDIRECT")]
        Redirect = 5,
        /// Echo request. `ICMP_ECHO`.
        #[doc(alias = "ICMP_ECHO")]
        Echo = 8,
        /// Time exceeded. `ICMP_TIME_EXCEEDED`.
        #[doc(alias = "ICMP_TIME_EXCEEDED")]
        TimeExceeded = 11,
        /// Parameter problem. `ICMP_PARAMETERPROB`.
        #[doc(alias = "ICMP_PARAMETERPROB")]
        ParameterProb = 12,
        /// Timestamp request. `ICMP_TIMESTAMP`.
        #[doc(alias = "ICMP_TIMESTAMP")]
        Timestamp = 13,
        /// Timestamp reply. `ICMP_TIMESTAMPREPLY`.
        #[doc(alias = "ICMP_TIMESTAMPREPLY")]
        TimestampReply = 14,
        /// Information request. `ICMP_INFO_REQUEST`.
        #[doc(alias = "ICMP_INFO_REQUEST")]
        InfoRequest = 15,
        /// Information reply. `ICMP_INFO_REPLY`.
        #[doc(alias = "ICMP_INFO_REPLY")]
        InfoReply = 16,
        /// Address mask request. `ICMP_ADDRESS`.
        #[doc(alias = "ICMP_ADDRESS")]
        AddressRequest = 17,
        /// Address mask reply. `ICMP_ADDRESSREPLY`.
        #[doc(alias = "ICMP_ADDRESSREPLY")]
        AddressReply = 18,
    }
}

enum_with_unknown! {
    /// The code of a destination-unreachable message.
    ///
    /// Mirrors the `ICMP_*_UNREACH` codes in `include/uapi/linux/icmp.h`.
    pub enum IcmpDestUnreach(u8) {
        /// Network unreachable. `ICMP_NET_UNREACH`.
        #[doc(alias = "ICMP_NET_UNREACH")]
        NetUnreach = 0,
        /// Host unreachable. `ICMP_HOST_UNREACH`.
        #[doc(alias = "ICMP_HOST_UNREACH")]
        HostUnreach = 1,
        /// Protocol unreachable. `ICMP_PROT_UNREACH`.
        #[doc(alias = "ICMP_PROT_UNREACH")]
        ProtUnreach = 2,
        /// Port unreachable. `ICMP_PORT_UNREACH`.
        #[doc(alias = "ICMP_PORT_UNREACH")]
        PortUnreach = 3,
        /// Fragmentation needed and DF set; carries the next-hop MTU.
        /// `ICMP_FRAG_NEEDED`.
        #[doc(alias = "ICMP_FRAG_NEEDED")]
        FragNeeded = 4,
        /// Source route failed. `ICMP_SR_FAILED`.
        #[doc(alias = "ICMP_SR_FAILED")]
        SrFailed = 5,
        /// Destination network unknown. `ICMP_NET_UNKNOWN`.
        #[doc(alias = "ICMP_NET_UNKNOWN")]
        NetUnknown = 6,
        /// Destination host unknown. `ICMP_HOST_UNKNOWN`.
        #[doc(alias = "ICMP_HOST_UNKNOWN")]
        HostUnknown = 7,
        /// Source host isolated. `ICMP_HOST_ISOLATED`.
        #[doc(alias = "ICMP_HOST_ISOLATED")]
        HostIsolated = 8,
        /// Network administratively prohibited. `ICMP_NET_ANO`.
        #[doc(alias = "ICMP_NET_ANO")]
        NetAno = 9,
        /// Host administratively prohibited. `ICMP_HOST_ANO`.
        #[doc(alias = "ICMP_HOST_ANO")]
        HostAno = 10,
        /// Network unreachable for TOS. `ICMP_NET_UNR_TOS`.
        #[doc(alias = "ICMP_NET_UNR_TOS")]
        NetUnrTos = 11,
        /// Host unreachable for TOS. `ICMP_HOST_UNR_TOS`.
        #[doc(alias = "ICMP_HOST_UNR_TOS")]
        HostUnrTos = 12,
        /// Communication administratively prohibited by filtering.
        /// `ICMP_PKT_FILTERED`.
        #[doc(alias = "ICMP_PKT_FILTERED")]
        PktFiltered = 13,
        /// Host precedence violation. `ICMP_PREC_VIOLATION`.
        #[doc(alias = "ICMP_PREC_VIOLATION")]
        PrecViolation = 14,
        /// Precedence cut-off in effect. `ICMP_PREC_CUTOFF`.
        #[doc(alias = "ICMP_PREC_CUTOFF")]
        PrecCutoff = 15,
    }
}

enum_with_unknown! {
    /// The code of a time-exceeded message.
    ///
    /// Mirrors `ICMP_EXC_TTL` and `ICMP_EXC_FRAGTIME`.
    pub enum IcmpTimeExceeded(u8) {
        /// TTL reached zero in transit. `ICMP_EXC_TTL`.
        #[doc(alias = "ICMP_EXC_TTL")]
        Ttl = 0,
        /// Fragment reassembly timed out. `ICMP_EXC_FRAGTIME`.
        #[doc(alias = "ICMP_EXC_FRAGTIME")]
        FragTime = 1,
    }
}

enum_with_unknown! {
    /// The code of a redirect message.
    ///
    /// Mirrors the `ICMP_REDIR_*` codes.
    pub enum IcmpRedirect(u8) {
        /// Redirect for the network. `ICMP_REDIR_NET`.
        #[doc(alias = "ICMP_REDIR_NET")]
        Net = 0,
        /// Redirect for the host. `ICMP_REDIR_HOST`.
        #[doc(alias = "ICMP_REDIR_HOST")]
        Host = 1,
        /// Redirect for the network and TOS. `ICMP_REDIR_NETTOS`.
        #[doc(alias = "ICMP_REDIR_NETTOS")]
        NetTos = 2,
        /// Redirect for the host and TOS. `ICMP_REDIR_HOSTTOS`.
        #[doc(alias = "ICMP_REDIR_HOSTTOS")]
        HostTos = 3,
    }
}

/// The ICMP header as it lies on the wire.
///
/// Mirrors `struct icmphdr` in `include/uapi/linux/icmp.h`; the union `un` is
/// kept as four raw bytes and read through [`IcmpPacket`]'s accessors.
#[doc(alias = "icmphdr")]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct IcmpHdr {
    /// Message type (`type` in C).
    pub icmp_type: u8,
    /// Message code.
    pub code: u8,
    /// Checksum over the whole message.
    pub checksum: U16,
    /// The type-dependent word (`un`).
    pub un: [u8; 4],
}

/// A checked view of an ICMP message: the header and everything after it.
pub struct IcmpPacket<B> {
    hdr: Ref<B, IcmpHdr>,
    payload: B,
}

impl<B: SplitByteSlice> IcmpPacket<B> {
    /// Checks that the buffer holds the 8-byte header and returns a view. The
    /// checksum is not verified here (see [`IcmpPacket::verify_checksum`]).
    ///
    /// Mirrors the `pskb_pull(skb, sizeof(*icmph))` check of `icmp_rcv()`.
    /// Errors: [`WireError::Truncated`].
    pub fn new_checked(buf: B) -> Result<Self, WireError> {
        let (hdr, payload) = split_header::<B, IcmpHdr>(buf)?;
        Ok(Self { hdr, payload })
    }

    /// The header, for reading its fields directly.
    pub fn header(&self) -> &IcmpHdr {
        &self.hdr
    }

    /// Message type.
    pub fn icmp_type(&self) -> IcmpType {
        self.hdr.icmp_type.into()
    }

    /// Message code (its meaning depends on the type).
    pub fn code(&self) -> u8 {
        self.hdr.code
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.hdr.checksum.get()
    }

    /// Echo identifier (`un.echo.id`).
    pub fn echo_ident(&self) -> u16 {
        u16::from_be_bytes([self.hdr.un[0], self.hdr.un[1]])
    }

    /// Echo sequence number (`un.echo.sequence`).
    pub fn echo_seq(&self) -> u16 {
        u16::from_be_bytes([self.hdr.un[2], self.hdr.un[3]])
    }

    /// Redirect gateway (`un.gateway`).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.hdr.un)
    }

    /// Next-hop MTU of a fragmentation-needed message (`un.frag.mtu`).
    pub fn next_hop_mtu(&self) -> u16 {
        u16::from_be_bytes([self.hdr.un[2], self.hdr.un[3]])
    }

    /// Parameter-problem pointer: the offset of the bad octet (first byte of
    /// `un`).
    pub fn pointer(&self) -> u8 {
        self.hdr.un[0]
    }

    /// Everything after the header: echo data, or the offending datagram's
    /// header and first 8 bytes for error messages.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Consumes the view and returns the payload buffer.
    pub fn into_payload(self) -> B {
        self.payload
    }

    /// Whether the checksum over the whole message verifies.
    ///
    /// Mirrors the `skb_checksum_simple_validate()` step of `icmp_rcv()`.
    pub fn verify_checksum(&self) -> bool {
        csum_fold(csum_partial(
            &self.payload,
            csum_partial(self.hdr.as_bytes(), 0),
        )) == 0
    }
}

impl<B: SplitByteSliceMut> IcmpPacket<B> {
    /// The header, writable.
    pub fn header_mut(&mut self) -> &mut IcmpHdr {
        &mut self.hdr
    }

    /// Recomputes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.hdr.checksum = U16::ZERO;
        let sum = csum_partial(&self.payload, csum_partial(self.hdr.as_bytes(), 0));
        self.hdr.checksum = U16::new(csum_fold(sum));
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// The meaning of an ICMP header, for building messages and in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpMessage {
    /// Echo reply (`ICMP_ECHOREPLY`).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
    },
    /// Echo request (`ICMP_ECHO`).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
    },
    /// Destination unreachable (`ICMP_DEST_UNREACH`). `next_hop_mtu` is the
    /// `un.frag.mtu` field: meaningful with [`IcmpDestUnreach::FragNeeded`]
    /// and 0 otherwise.
    DstUnreachable {
        /// Why the destination is unreachable.
        code: IcmpDestUnreach,
        /// Next-hop MTU ([RFC 1191 §4](https://www.rfc-editor.org/rfc/rfc1191#section-4)).
        next_hop_mtu: u16,
    },
    /// Time exceeded (`ICMP_TIME_EXCEEDED`).
    TimeExceeded {
        /// TTL or reassembly.
        code: IcmpTimeExceeded,
    },
    /// Redirect (`ICMP_REDIRECT`).
    Redirect {
        /// What the redirect is for.
        code: IcmpRedirect,
        /// The better first hop.
        gateway: Ipv4Addr,
    },
    /// Parameter problem (`ICMP_PARAMETERPROB`).
    ParamProblem {
        /// Offset of the offending octet in the original header.
        pointer: u8,
    },
    /// Any other type, kept raw.
    Other {
        /// Message type.
        icmp_type: u8,
        /// Message code.
        code: u8,
        /// The type-dependent word.
        un: [u8; 4],
    },
}

/// An ICMP message's header meaning plus the length of its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpRepr {
    /// What the header says.
    pub message: IcmpMessage,
    /// Length of the payload that follows the header.
    pub payload_len: usize,
}

impl IcmpRepr {
    /// Reads a checked message and verifies its checksum.
    ///
    /// Errors: [`WireError::BadChecksum`] (Linux: `InCsumErrors`).
    pub fn parse<B: SplitByteSlice>(packet: &IcmpPacket<B>) -> Result<Self, WireError> {
        if !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        let message = match (packet.icmp_type(), packet.code()) {
            (IcmpType::EchoReply, 0) => IcmpMessage::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq(),
            },
            (IcmpType::Echo, 0) => IcmpMessage::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq(),
            },
            (IcmpType::DestUnreach, code) => IcmpMessage::DstUnreachable {
                code: code.into(),
                next_hop_mtu: packet.next_hop_mtu(),
            },
            (IcmpType::TimeExceeded, code) => IcmpMessage::TimeExceeded { code: code.into() },
            (IcmpType::Redirect, code) => IcmpMessage::Redirect {
                code: code.into(),
                gateway: packet.gateway(),
            },
            (IcmpType::ParameterProb, 0) => IcmpMessage::ParamProblem {
                pointer: packet.pointer(),
            },
            (t, code) => IcmpMessage::Other {
                icmp_type: t.into(),
                code,
                un: packet.header().un,
            },
        };
        Ok(Self {
            message,
            payload_len: packet.payload().len(),
        })
    }

    /// Length of the header: 8.
    pub const fn header_len(&self) -> usize {
        ICMP_HLEN
    }

    /// Length of the message: header plus payload.
    pub const fn buffer_len(&self) -> usize {
        ICMP_HLEN + self.payload_len
    }

    /// Writes the header into `buf[..8]` and the checksum over the payload
    /// already in `buf[8..buffer_len()]`.
    ///
    /// Mirrors `icmp_push_reply()` in `net/ipv4/icmp.c`. Errors:
    /// [`WireError::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        check_room(buf, self.buffer_len())?;
        let echo = |ident: u16, seq: u16| {
            let [a, b] = ident.to_be_bytes();
            let [c, d] = seq.to_be_bytes();
            [a, b, c, d]
        };
        let (icmp_type, code, un) = match self.message {
            IcmpMessage::EchoReply { ident, seq_no } => {
                (IcmpType::EchoReply.into(), 0, echo(ident, seq_no))
            }
            IcmpMessage::EchoRequest { ident, seq_no } => {
                (IcmpType::Echo.into(), 0, echo(ident, seq_no))
            }
            IcmpMessage::DstUnreachable { code, next_hop_mtu } => (
                IcmpType::DestUnreach.into(),
                code.into(),
                echo(0, next_hop_mtu),
            ),
            IcmpMessage::TimeExceeded { code } => {
                (IcmpType::TimeExceeded.into(), code.into(), [0; 4])
            }
            IcmpMessage::Redirect { code, gateway } => {
                (IcmpType::Redirect.into(), code.into(), gateway.octets())
            }
            IcmpMessage::ParamProblem { pointer } => {
                (IcmpType::ParameterProb.into(), 0, [pointer, 0, 0, 0])
            }
            IcmpMessage::Other {
                icmp_type,
                code,
                un,
            } => (icmp_type, code, un),
        };
        let hdr = IcmpHdr {
            icmp_type,
            code,
            checksum: U16::ZERO,
            un,
        };
        buf[..ICMP_HLEN].copy_from_slice(hdr.as_bytes());
        let check = csum_fold(csum_partial(&buf[..self.buffer_len()], 0));
        buf[2..4].copy_from_slice(&check.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request id 0x1234 seq 1 with "abcd".
    static ECHO: [u8; 12] = [
        0x08, 0x00, 0x21, 0x04, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn test_deconstruct() {
        let p = IcmpPacket::new_checked(&ECHO[..]).unwrap();
        assert_eq!(p.icmp_type(), IcmpType::Echo);
        assert_eq!(p.code(), 0);
        assert_eq!(p.checksum(), 0x2104);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq(), 1);
        assert_eq!(p.payload(), b"abcd");
        assert!(p.verify_checksum());
        assert_eq!(
            IcmpRepr::parse(&p).unwrap(),
            IcmpRepr {
                message: IcmpMessage::EchoRequest {
                    ident: 0x1234,
                    seq_no: 1
                },
                payload_len: 4
            }
        );
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 12];
        buf[8..].copy_from_slice(b"abcd");
        let r = IcmpRepr {
            message: IcmpMessage::EchoRequest {
                ident: 0x1234,
                seq_no: 1,
            },
            payload_len: 4,
        };
        r.emit(&mut buf).unwrap();
        assert_eq!(buf, ECHO);
    }

    #[test]
    fn frag_needed_carries_mtu() {
        let mut buf = [0u8; 8 + 28];
        let r = IcmpRepr {
            message: IcmpMessage::DstUnreachable {
                code: IcmpDestUnreach::FragNeeded,
                next_hop_mtu: 1400,
            },
            payload_len: 28,
        };
        r.emit(&mut buf).unwrap();
        assert_eq!(buf[..8], [3, 4, buf[2], buf[3], 0, 0, 0x05, 0x78]);
        let p = IcmpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(IcmpRepr::parse(&p).unwrap(), r);
    }

    #[test]
    fn error_messages_round_trip() {
        let messages = [
            IcmpMessage::DstUnreachable {
                code: IcmpDestUnreach::PortUnreach,
                next_hop_mtu: 0,
            },
            IcmpMessage::TimeExceeded {
                code: IcmpTimeExceeded::Ttl,
            },
            IcmpMessage::TimeExceeded {
                code: IcmpTimeExceeded::FragTime,
            },
            IcmpMessage::Redirect {
                code: IcmpRedirect::Host,
                gateway: Ipv4Addr::new(198, 18, 0, 254),
            },
            IcmpMessage::ParamProblem { pointer: 9 },
            IcmpMessage::EchoReply {
                ident: 7,
                seq_no: 8,
            },
            IcmpMessage::Other {
                icmp_type: 13,
                code: 0,
                un: [1, 2, 3, 4],
            },
        ];
        for message in messages {
            let r = IcmpRepr {
                message,
                payload_len: 3,
            };
            let mut buf = [0x5au8; 11];
            r.emit(&mut buf).unwrap();
            let p = IcmpPacket::new_checked(&buf[..]).unwrap();
            assert_eq!(IcmpRepr::parse(&p).unwrap(), r);
        }
    }

    #[test]
    fn bad_input() {
        assert_eq!(
            IcmpPacket::new_checked(&ECHO[..7]).err(),
            Some(WireError::Truncated { needed: 8, got: 7 })
        );
        let mut b = ECHO;
        b[11] = 0;
        let p = IcmpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(IcmpRepr::parse(&p), Err(WireError::BadChecksum));
        let mut p = IcmpPacket::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
    }
}
