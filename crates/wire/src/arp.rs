//! ARP for Ethernet and IPv4.
//!
//! Mirrors `include/uapi/linux/if_arp.h` (`struct arphdr`, `ARPHRD_*`,
//! `ARPOP_*`) and the header checks of `arp_rcv()` in `net/ipv4/arp.c`.
//!
//! ```text
//! +--------+--------+------+------+--------+--------+--------+--------+--------+
//! | ar_hrd | ar_pro |ar_hln|ar_pln| ar_op  | ar_sha | ar_sip | ar_tha | ar_tip |
//! |   2    |   2    |  1   |  1   |   2    |   6    |   4    |   6    |   4    |
//! +--------+--------+------+------+--------+--------+--------+--------+--------+
//! ```

use core::net::Ipv4Addr;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::WireError;
use crate::error::{check_room, split_header};
use crate::ethernet::{EtherType, EthernetAddress};
use crate::macros::enum_with_unknown;

/// Hardware type of Ethernet. Mirrors `ARPHRD_ETHER`.
pub const ARPHRD_ETHER: u16 = 1;
/// Length of an ARP packet for Ethernet and IPv4.
pub const ARP_ETH_IPV4_LEN: usize = 28;

enum_with_unknown! {
    /// The ARP operation.
    ///
    /// Mirrors the `ARPOP_*` values in `include/uapi/linux/if_arp.h`.
    pub enum ArpOp(u16) {
        /// `ARPOP_REQUEST`.
        #[doc(alias = "ARPOP_REQUEST")]
        Request = 1,
        /// `ARPOP_REPLY`.
        #[doc(alias = "ARPOP_REPLY")]
        Reply = 2,
        /// RARP request. `ARPOP_RREQUEST`.
        #[doc(alias = "ARPOP_RREQUEST")]
        RRequest = 3,
        /// RARP reply. `ARPOP_RREPLY`.
        #[doc(alias = "ARPOP_RREPLY")]
        RReply = 4,
        /// InARP request. `ARPOP_InREQUEST`.
        #[doc(alias = "ARPOP_InREQUEST")]
        InRequest = 8,
        /// InARP reply. `ARPOP_InREPLY`.
        #[doc(alias = "ARPOP_InREPLY")]
        InReply = 9,
        /// (ATM)ARP NAK. `ARPOP_NAK`.
        #[doc(alias = "ARPOP_NAK")]
        Nak = 10,
    }
}

/// The fixed part of an ARP header.
///
/// Mirrors `struct arphdr` in `include/uapi/linux/if_arp.h`.
#[doc(alias = "arphdr")]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ArpHdr {
    /// Hardware address format (`ARPHRD_ETHER`).
    pub ar_hrd: U16,
    /// Protocol address format (`ETH_P_IP`).
    pub ar_pro: U16,
    /// Hardware address length.
    pub ar_hln: u8,
    /// Protocol address length.
    pub ar_pln: u8,
    /// Operation.
    pub ar_op: U16,
}

/// The addresses that follow [`ArpHdr`] for Ethernet and IPv4.
///
/// Mirrors the commented-out tail of `struct arphdr` (and `struct arpreq`'s
/// layout in `arp_rcv()`'s pointer walk).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct ArpEthIpv4 {
    /// Sender hardware address.
    pub ar_sha: EthernetAddress,
    /// Sender IP address.
    pub ar_sip: [u8; 4],
    /// Target hardware address.
    pub ar_tha: EthernetAddress,
    /// Target IP address.
    pub ar_tip: [u8; 4],
}

/// A checked view of an ARP packet for Ethernet and IPv4.
pub struct ArpPacket<B> {
    hdr: Ref<B, ArpHdr>,
    body: Ref<B, ArpEthIpv4>,
}

impl<B: SplitByteSlice> ArpPacket<B> {
    /// Checks the header and lengths and returns a view.
    ///
    /// Mirrors the checks of `arp_rcv()`/`arp_process()`. Errors:
    /// [`WireError::Truncated`] below 28 bytes, [`WireError::Unsupported`]
    /// when the hardware type is not Ethernet, the protocol not IPv4 or the
    /// address lengths not 6 and 4. Bytes after the 28 (Ethernet padding) are
    /// ignored.
    pub fn new_checked(buf: B) -> Result<Self, WireError> {
        let got = buf.len();
        let (hdr, rest) = split_header::<B, ArpHdr>(buf).map_err(|_| WireError::Truncated {
            needed: ARP_ETH_IPV4_LEN,
            got,
        })?;
        let unsupported = |field, value: u32| Err(WireError::Unsupported { field, value });
        if hdr.ar_hrd.get() != ARPHRD_ETHER {
            return unsupported("ar_hrd", hdr.ar_hrd.get().into());
        }
        if hdr.ar_pro.get() != u16::from(EtherType::Ipv4) {
            return unsupported("ar_pro", hdr.ar_pro.get().into());
        }
        if hdr.ar_hln != 6 {
            return unsupported("ar_hln", hdr.ar_hln.into());
        }
        if hdr.ar_pln != 4 {
            return unsupported("ar_pln", hdr.ar_pln.into());
        }
        let (body, _padding) =
            split_header::<B, ArpEthIpv4>(rest).map_err(|_| WireError::Truncated {
                needed: ARP_ETH_IPV4_LEN,
                got,
            })?;
        Ok(Self { hdr, body })
    }

    /// The operation.
    pub fn operation(&self) -> ArpOp {
        self.hdr.ar_op.get().into()
    }

    /// Sender hardware address.
    pub fn sha(&self) -> EthernetAddress {
        self.body.ar_sha
    }

    /// Sender IP address.
    pub fn sip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.body.ar_sip)
    }

    /// Target hardware address.
    pub fn tha(&self) -> EthernetAddress {
        self.body.ar_tha
    }

    /// Target IP address.
    pub fn tip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.body.ar_tip)
    }
}

impl<B: SplitByteSliceMut> ArpPacket<B> {
    /// The address part, writable (to turn a request into a reply in place).
    pub fn body_mut(&mut self) -> &mut ArpEthIpv4 {
        &mut self.body
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, op: ArpOp) {
        self.hdr.ar_op = U16::new(op.into());
    }
}

/// The fields of an Ethernet/IPv4 ARP packet, for building packets and in
/// tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Operation.
    pub operation: ArpOp,
    /// Sender hardware address.
    pub sha: EthernetAddress,
    /// Sender IP address.
    pub sip: Ipv4Addr,
    /// Target hardware address.
    pub tha: EthernetAddress,
    /// Target IP address.
    pub tip: Ipv4Addr,
}

impl ArpRepr {
    /// Reads a checked ARP packet.
    pub fn parse<B: SplitByteSlice>(packet: &ArpPacket<B>) -> Self {
        Self {
            operation: packet.operation(),
            sha: packet.sha(),
            sip: packet.sip(),
            tha: packet.tha(),
            tip: packet.tip(),
        }
    }

    /// Length of the packet: 28.
    pub const fn buffer_len(&self) -> usize {
        ARP_ETH_IPV4_LEN
    }

    /// Writes the packet into `buf[..28]`.
    ///
    /// Mirrors `arp_create()` in `net/ipv4/arp.c`. Errors:
    /// [`WireError::BufferTooSmall`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        check_room(buf, ARP_ETH_IPV4_LEN)?;
        let hdr = ArpHdr {
            ar_hrd: U16::new(ARPHRD_ETHER),
            ar_pro: U16::new(EtherType::Ipv4.into()),
            ar_hln: 6,
            ar_pln: 4,
            ar_op: U16::new(self.operation.into()),
        };
        let body = ArpEthIpv4 {
            ar_sha: self.sha,
            ar_sip: self.sip.octets(),
            ar_tha: self.tha,
            ar_tip: self.tip.octets(),
        };
        buf[..8].copy_from_slice(hdr.as_bytes());
        buf[8..ARP_ETH_IPV4_LEN].copy_from_slice(body.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Who has 198.18.0.2? Tell 198.18.0.1 (02:00:00:00:00:01).
    static PACKET: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 198,
        18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2,
    ];

    fn repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOp::Request,
            sha: EthernetAddress([2, 0, 0, 0, 0, 1]),
            sip: Ipv4Addr::new(198, 18, 0, 1),
            tha: EthernetAddress::ZERO,
            tip: Ipv4Addr::new(198, 18, 0, 2),
        }
    }

    #[test]
    fn test_deconstruct() {
        let p = ArpPacket::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.operation(), ArpOp::Request);
        assert_eq!(p.sha(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.sip(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(p.tha(), EthernetAddress::ZERO);
        assert_eq!(p.tip(), Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(ArpRepr::parse(&p), repr());
    }

    #[test]
    fn test_construct() {
        let mut buf = [0xffu8; 28];
        repr().emit(&mut buf).unwrap();
        assert_eq!(buf, PACKET);
        assert_eq!(
            repr().emit(&mut [0u8; 27]),
            Err(WireError::BufferTooSmall {
                needed: 28,
                got: 27
            })
        );
    }

    #[test]
    fn reply_in_place() {
        let mut b = PACKET;
        let mut p = ArpPacket::new_checked(&mut b[..]).unwrap();
        p.set_operation(ArpOp::Reply);
        p.body_mut().ar_tha = EthernetAddress([2, 0, 0, 0, 0, 2]);
        assert_eq!(b[7], 2);
        assert_eq!(b[18..24], [2, 0, 0, 0, 0, 2]);
    }

    #[test]
    fn rejects_other_formats() {
        assert_eq!(
            ArpPacket::new_checked(&PACKET[..27]).err(),
            Some(WireError::Truncated {
                needed: 28,
                got: 27
            })
        );
        assert_eq!(
            ArpPacket::new_checked(&PACKET[..5]).err(),
            Some(WireError::Truncated { needed: 28, got: 5 })
        );
        let mut b = PACKET;
        b[1] = 6;
        assert_eq!(
            ArpPacket::new_checked(&b[..]).err(),
            Some(WireError::Unsupported {
                field: "ar_hrd",
                value: 6
            })
        );
        let mut b = PACKET;
        b[2] = 0x86;
        b[3] = 0xdd;
        assert_eq!(
            ArpPacket::new_checked(&b[..]).err(),
            Some(WireError::Unsupported {
                field: "ar_pro",
                value: 0x86dd
            })
        );
        let mut b = PACKET;
        b[4] = 8;
        assert_eq!(
            ArpPacket::new_checked(&b[..]).err(),
            Some(WireError::Unsupported {
                field: "ar_hln",
                value: 8
            })
        );
        let mut b = PACKET;
        b[5] = 16;
        assert_eq!(
            ArpPacket::new_checked(&b[..]).err(),
            Some(WireError::Unsupported {
                field: "ar_pln",
                value: 16
            })
        );
    }
}
