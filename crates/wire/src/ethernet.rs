//! Ethernet II frames with an optional 802.1Q VLAN tag, and MAC addresses.
//!
//! Mirrors `include/uapi/linux/if_ether.h` (`struct ethhdr`, the `ETH_P_*`
//! ethertypes), `include/linux/if_vlan.h` (`struct vlan_hdr`) and
//! `include/linux/etherdevice.h` (the address predicates).
//!
//! ```text
//! +----------+----------+-----------------+---------------------+---------
//! | h_dest 6 | h_source | h_proto 2       | [h_vlan_TCI 2       | payload
//! |          | 6        | (0x8100 if VLAN)|  h_vlan_encap 2]    |
//! +----------+----------+-----------------+---------------------+---------
//! ```
//!
//! The frame check sequence is not part of the view: like Linux after the
//! driver, the buffer ends with the payload (and any padding to 60 bytes).

use core::fmt;
use core::str::FromStr;

use zerocopy::network_endian::U16;
use zerocopy::{
    FromBytes, Immutable, IntoBytes, KnownLayout, Ref, SplitByteSlice, SplitByteSliceMut, Unaligned,
};

use crate::WireError;
use crate::error::{check_room, split_header};
use crate::macros::enum_with_unknown;

/// Octets in one Ethernet address. Mirrors `ETH_ALEN`.
pub const ETH_ALEN: usize = 6;
/// Octets in the Ethernet header without a VLAN tag. Mirrors `ETH_HLEN`.
pub const ETH_HLEN: usize = 14;
/// Minimum frame length without the FCS. Mirrors `ETH_ZLEN`.
pub const ETH_ZLEN: usize = 60;
/// Maximum payload (the default MTU). Mirrors `ETH_DATA_LEN`.
pub const ETH_DATA_LEN: usize = 1500;
/// Maximum frame length without the FCS. Mirrors `ETH_FRAME_LEN`.
pub const ETH_FRAME_LEN: usize = 1514;
/// Octets an 802.1Q tag adds. Mirrors `VLAN_HLEN` in `include/linux/if_vlan.h`.
pub const VLAN_HLEN: usize = 4;

enum_with_unknown! {
    /// The ethertype in `h_proto`: what the payload of a frame is.
    ///
    /// Mirrors the `ETH_P_*` constants in `include/uapi/linux/if_ether.h`.
    pub enum EtherType(u16) {
        /// IPv4. `ETH_P_IP`.
        #[doc(alias = "ETH_P_IP")]
        Ipv4 = 0x0800,
        /// ARP. `ETH_P_ARP`.
        #[doc(alias = "ETH_P_ARP")]
        Arp = 0x0806,
        /// An 802.1Q VLAN tag follows. `ETH_P_8021Q`.
        #[doc(alias = "ETH_P_8021Q")]
        Vlan = 0x8100,
        /// IPv6. `ETH_P_IPV6`.
        #[doc(alias = "ETH_P_IPV6")]
        Ipv6 = 0x86dd,
        /// An 802.1ad service tag (QinQ) follows. `ETH_P_8021AD`.
        #[doc(alias = "ETH_P_8021AD")]
        QinQ = 0x88a8,
        /// Link Layer Discovery Protocol. `ETH_P_LLDP`.
        #[doc(alias = "ETH_P_LLDP")]
        Lldp = 0x88cc,
    }
}

/// A 48-bit Ethernet (MAC) address.
///
/// Mirrors the `u8 addr[ETH_ALEN]` that Linux passes around, with the
/// predicates of `include/linux/etherdevice.h` as methods. Displays as
/// `02:00:00:00:00:01` and parses from the same form.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(transparent)]
pub struct EthernetAddress(pub [u8; ETH_ALEN]);

impl EthernetAddress {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Self = Self([0xff; ETH_ALEN]);
    /// The all-zero address.
    pub const ZERO: Self = Self([0; ETH_ALEN]);

    /// The six octets.
    pub const fn octets(&self) -> [u8; ETH_ALEN] {
        self.0
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`. Mirrors `is_broadcast_ether_addr()`.
    #[doc(alias = "is_broadcast_ether_addr")]
    pub const fn is_broadcast(&self) -> bool {
        u64::from_be_bytes([
            0, 0, self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5],
        ]) == 0xffff_ffff_ffff
    }

    /// Whether the group bit (bit 0 of the first octet) is set; broadcast is
    /// multicast too. Mirrors `is_multicast_ether_addr()`.
    #[doc(alias = "is_multicast_ether_addr")]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether the group bit is clear. Mirrors `is_unicast_ether_addr()`.
    #[doc(alias = "is_unicast_ether_addr")]
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the locally-administered bit (bit 1 of the first octet) is set.
    /// Mirrors `is_local_ether_addr()`.
    #[doc(alias = "is_local_ether_addr")]
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// Whether all octets are zero. Mirrors `is_zero_ether_addr()`.
    #[doc(alias = "is_zero_ether_addr")]
    pub const fn is_zero(&self) -> bool {
        u64::from_be_bytes([
            0, 0, self.0[0], self.0[1], self.0[2], self.0[3], self.0[4], self.0[5],
        ]) == 0
    }

    /// Whether the address may be a device's own address: not multicast and not
    /// zero. Mirrors `is_valid_ether_addr()`.
    #[doc(alias = "is_valid_ether_addr")]
    pub const fn is_valid(&self) -> bool {
        !self.is_multicast() && !self.is_zero()
    }
}

impl From<[u8; ETH_ALEN]> for EthernetAddress {
    fn from(octets: [u8; ETH_ALEN]) -> Self {
        Self(octets)
    }
}

impl From<EthernetAddress> for [u8; ETH_ALEN] {
    fn from(addr: EthernetAddress) -> Self {
        addr.0
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text given to [`EthernetAddress::from_str`] is not six colon-separated
/// pairs of hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrParseError;

impl fmt::Display for AddrParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid Ethernet address: expected six colon-separated hex pairs like 02:00:00:00:00:01")
    }
}

impl core::error::Error for AddrParseError {}

impl FromStr for EthernetAddress {
    type Err = AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; ETH_ALEN];
        let mut parts = s.split(':');
        for octet in &mut out {
            let part = parts.next().ok_or(AddrParseError)?;
            if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(AddrParseError);
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| AddrParseError)?;
        }
        if parts.next().is_some() {
            return Err(AddrParseError);
        }
        Ok(Self(out))
    }
}

/// The Ethernet II header as it lies on the wire.
///
/// Mirrors `struct ethhdr` in `include/uapi/linux/if_ether.h`.
#[doc(alias = "ethhdr")]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct EthHdr {
    /// Destination address.
    pub h_dest: EthernetAddress,
    /// Source address.
    pub h_source: EthernetAddress,
    /// Ethertype of what follows (0x8100 when a VLAN tag follows).
    pub h_proto: U16,
}

/// The 802.1Q tag that follows `h_proto == ETH_P_8021Q`.
///
/// Mirrors `struct vlan_hdr` in `include/linux/if_vlan.h`.
#[doc(alias = "vlan_hdr")]
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct VlanHdr {
    /// Priority (3 bits), drop eligible (1 bit), VLAN id (12 bits).
    pub h_vlan_tci: U16,
    /// Ethertype of the payload.
    pub h_vlan_encapsulated_proto: U16,
}

/// The tag control information of an 802.1Q tag, split into its fields.
///
/// Mirrors the `VLAN_PRIO_MASK`, `VLAN_CFI_MASK` and `VLAN_VID_MASK` split of
/// `h_vlan_TCI` in `include/linux/if_vlan.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VlanTci {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator (formerly CFI).
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
}

impl VlanTci {
    /// Splits a raw TCI.
    pub const fn from_raw(tci: u16) -> Self {
        Self {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// Joins the fields into a raw TCI (out-of-range bits are masked off).
    pub const fn to_raw(self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }
}

/// A checked view of an Ethernet II frame.
///
/// [`EthernetFrame::new_checked`] checks that the buffer holds the header (and
/// the VLAN tag when `h_proto` announces one); after that no accessor can fail.
/// Only one 802.1Q tag is read: a second tag is left in the payload with
/// [`EthernetFrame::ethertype`] reporting [`EtherType::Vlan`].
pub struct EthernetFrame<B> {
    hdr: Ref<B, EthHdr>,
    vlan: Option<Ref<B, VlanHdr>>,
    payload: B,
}

impl<B: SplitByteSlice> EthernetFrame<B> {
    /// Checks the lengths of a frame and returns a view of it.
    ///
    /// Errors: [`WireError::Truncated`] when the buffer is shorter than the
    /// header (14 bytes, 18 with a VLAN tag).
    pub fn new_checked(buf: B) -> Result<Self, WireError> {
        let len = buf.len();
        let (hdr, rest) = split_header::<B, EthHdr>(buf)?;
        if EtherType::from(hdr.h_proto.get()) == EtherType::Vlan {
            let (vlan, payload) =
                split_header::<B, VlanHdr>(rest).map_err(|_| WireError::Truncated {
                    needed: ETH_HLEN + VLAN_HLEN,
                    got: len,
                })?;
            Ok(Self {
                hdr,
                vlan: Some(vlan),
                payload,
            })
        } else {
            Ok(Self {
                hdr,
                vlan: None,
                payload: rest,
            })
        }
    }

    /// The fixed header.
    pub fn header(&self) -> &EthHdr {
        &self.hdr
    }

    /// Destination address.
    pub fn dst_addr(&self) -> EthernetAddress {
        self.hdr.h_dest
    }

    /// Source address.
    pub fn src_addr(&self) -> EthernetAddress {
        self.hdr.h_source
    }

    /// The ethertype of the payload: the encapsulated type when a VLAN tag is
    /// present, as `skb->protocol` is after `vlan_untag()`.
    pub fn ethertype(&self) -> EtherType {
        match &self.vlan {
            Some(v) => v.h_vlan_encapsulated_proto.get().into(),
            None => self.hdr.h_proto.get().into(),
        }
    }

    /// The 802.1Q tag, if the frame carries one.
    pub fn vlan(&self) -> Option<VlanTci> {
        self.vlan
            .as_ref()
            .map(|v| VlanTci::from_raw(v.h_vlan_tci.get()))
    }

    /// Length of the header including the VLAN tag.
    pub fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            ETH_HLEN + VLAN_HLEN
        } else {
            ETH_HLEN
        }
    }

    /// The payload (everything after the header, padding included).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Consumes the view and returns the payload buffer.
    pub fn into_payload(self) -> B {
        self.payload
    }
}

impl<B: SplitByteSliceMut> EthernetFrame<B> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.hdr.h_dest = addr;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.hdr.h_source = addr;
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.payload
    }
}

/// The fields of an Ethernet II header, for building frames and in tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: EthernetAddress,
    /// Destination address.
    pub dst_addr: EthernetAddress,
    /// The 802.1Q tag, if any.
    pub vlan: Option<VlanTci>,
    /// Ethertype of the payload (the encapsulated one when tagged).
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header fields of a checked frame.
    pub fn parse<B: SplitByteSlice>(frame: &EthernetFrame<B>) -> Self {
        Self {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan: frame.vlan(),
            ethertype: frame.ethertype(),
        }
    }

    /// Length of the header this repr emits: 14, or 18 with a VLAN tag.
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            ETH_HLEN + VLAN_HLEN
        } else {
            ETH_HLEN
        }
    }

    /// Length of a frame carrying `payload_len` bytes.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len
    }

    /// Writes the header at the start of `buf`; the payload after it is left
    /// untouched.
    ///
    /// Mirrors `eth_header()` in `net/ethernet/eth.c` (plus `vlan_insert_tag()`
    /// when tagged). Errors: [`WireError::BufferTooSmall`] when `buf` is shorter
    /// than [`EthernetRepr::header_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        check_room(buf, self.header_len())?;
        let (outer, inner) = match self.vlan {
            Some(_) => (EtherType::Vlan, Some(self.ethertype)),
            None => (self.ethertype, None),
        };
        let hdr = EthHdr {
            h_dest: self.dst_addr,
            h_source: self.src_addr,
            h_proto: U16::new(outer.into()),
        };
        buf[..ETH_HLEN].copy_from_slice(hdr.as_bytes());
        if let (Some(tci), Some(inner)) = (self.vlan, inner) {
            let tag = VlanHdr {
                h_vlan_tci: U16::new(tci.to_raw()),
                h_vlan_encapsulated_proto: U16::new(inner.into()),
            };
            buf[ETH_HLEN..ETH_HLEN + VLAN_HLEN].copy_from_slice(tag.as_bytes());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // dst 02:00:00:00:00:02, src 02:00:00:00:00:01, IPv4, payload aa bb.
    static FRAME: [u8; 16] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0xaa,
        0xbb,
    ];
    // The same with VLAN 100, priority 5, and ARP inside.
    static TAGGED: [u8; 20] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0xa0,
        0x64, 0x08, 0x06, 0xaa, 0xbb,
    ];

    fn mac(last: u8) -> EthernetAddress {
        EthernetAddress([0x02, 0, 0, 0, 0, last])
    }

    #[test]
    fn test_deconstruct() {
        let f = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), mac(2));
        assert_eq!(f.src_addr(), mac(1));
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn test_deconstruct_vlan() {
        let f = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(
            f.vlan(),
            Some(VlanTci {
                pcp: 5,
                dei: false,
                vid: 100
            })
        );
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn test_construct() {
        let mut buf = [0u8; 16];
        buf[14..].copy_from_slice(&[0xaa, 0xbb]);
        let repr = EthernetRepr {
            src_addr: mac(1),
            dst_addr: mac(2),
            vlan: None,
            ethertype: EtherType::Ipv4,
        };
        assert_eq!(repr.buffer_len(2), 16);
        repr.emit(&mut buf).unwrap();
        assert_eq!(buf, FRAME);

        let mut buf = [0u8; 20];
        buf[18..].copy_from_slice(&[0xaa, 0xbb]);
        let repr = EthernetRepr {
            vlan: Some(VlanTci {
                pcp: 5,
                dei: false,
                vid: 100,
            }),
            ethertype: EtherType::Arp,
            ..repr
        };
        repr.emit(&mut buf).unwrap();
        assert_eq!(buf, TAGGED);
        assert_eq!(
            repr.emit(&mut [0u8; 17]),
            Err(WireError::BufferTooSmall {
                needed: 18,
                got: 17
            })
        );
    }

    #[test]
    fn mutable_view_edits_in_place() {
        let mut buf = FRAME;
        let mut f = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        f.set_dst_addr(EthernetAddress::BROADCAST);
        f.set_src_addr(mac(9));
        f.payload_mut()[0] = 0x11;
        assert_eq!(&buf[..6], &[0xff; 6]);
        assert_eq!(&buf[6..12], &[2, 0, 0, 0, 0, 9]);
        assert_eq!(buf[14], 0x11);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&FRAME[..13]).err(),
            Some(WireError::Truncated {
                needed: 14,
                got: 13
            })
        );
        assert_eq!(
            EthernetFrame::new_checked(&TAGGED[..17]).err(),
            Some(WireError::Truncated {
                needed: 18,
                got: 17
            })
        );
    }

    #[test]
    fn address_predicates_and_text() {
        let a: EthernetAddress = "02:00:00:00:00:01".parse().unwrap();
        assert_eq!(a, mac(1));
        assert_eq!(a.to_string(), "02:00:00:00:00:01");
        assert!(a.is_local() && a.is_unicast() && a.is_valid());
        assert!(!a.is_multicast() && !a.is_broadcast() && !a.is_zero());
        assert!(
            EthernetAddress::BROADCAST.is_broadcast() && EthernetAddress::BROADCAST.is_multicast()
        );
        assert!(
            "01:00:5e:00:00:fb"
                .parse::<EthernetAddress>()
                .unwrap()
                .is_multicast()
        );
        assert!(EthernetAddress::ZERO.is_zero() && !EthernetAddress::ZERO.is_valid());
        assert_eq!(
            "ab:CD:ef:00:11:22"
                .parse::<EthernetAddress>()
                .unwrap()
                .to_string(),
            "ab:cd:ef:00:11:22"
        );
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:01:03",
            "2:00:00:00:00:01",
            "02:00:00:00:00:0g",
            "+2:00:00:00:00:01",
        ] {
            assert_eq!(bad.parse::<EthernetAddress>(), Err(AddrParseError), "{bad}");
        }
    }

    #[test]
    fn ethertype_round_trips() {
        for v in [0x0800u16, 0x0806, 0x8100, 0x86dd, 0x88a8, 0x88cc, 0x1234] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x1234), EtherType::Unknown(0x1234));
    }

    #[test]
    fn vlan_tci_fields() {
        let t = VlanTci {
            pcp: 7,
            dei: true,
            vid: 4095,
        };
        assert_eq!(t.to_raw(), 0xffff);
        assert_eq!(
            VlanTci::from_raw(0x3005),
            VlanTci {
                pcp: 1,
                dei: true,
                vid: 5
            }
        );
    }
}
