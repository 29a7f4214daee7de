//! Ethernet framing: classifying a received frame and building the header
//! of an outgoing one.
//!
//! Mirrors `eth_type_trans()` and `eth_header()` in `net/ethernet/eth.c`
//! and `ip_eth_mc_map()` in `include/net/ip.h`.
//!
//! ```text
//!  receive:  [dst|src|type|payload]  eth_type_trans ─▶ mac_header = dst, data = payload,
//!                                                      protocol = type, pkt_type from dst
//!  transmit: payload ─▶ eth_header(push 14: dst, src, type) ─▶ dev_queue_xmit
//! ```

use std::net::Ipv4Addr;

use netcore::{PktType, SkBuff, SkbError};
use wire::{ETH_HLEN, EthernetAddress};

/// Classifies a received frame and moves `data` past its Ethernet header.
///
/// Mirrors `eth_type_trans()`: marks the MAC header, pulls 14 bytes, sets
/// `skb.pkt_type` — [`PktType::Broadcast`] for `ff:ff:ff:ff:ff:ff`,
/// [`PktType::Multicast`] for another group address, [`PktType::Host`]
/// for `dev_addr`, [`PktType::OtherHost`] otherwise — and returns the
/// ethertype, which it also stores in `skb.protocol`; the network header is
/// set at the new `data`. The igb driver in `nic-hw` does the same steps
/// in its own copy (it may not depend on this crate).
///
/// # Errors
///
/// [`SkbError`] when the frame is shorter than an Ethernet header; the skb
/// is left as it was.
///
/// # Deviations from Linux
///
/// No 802.3 length field or DSA tag handling: an ethertype below 0x0600 is
/// returned as is (Linux maps it to `ETH_P_802_3`/`ETH_P_802_2`).
pub fn eth_type_trans(skb: &mut SkBuff, dev_addr: EthernetAddress) -> Result<u16, SkbError> {
    if skb.len() < ETH_HLEN {
        return Err(SkbError::TooShort {
            needed: ETH_HLEN,
            len: skb.len(),
        });
    }
    skb.reset_mac_header();
    let hdr = skb.pull(ETH_HLEN)?;
    let dst = [hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5]];
    let proto = u16::from_be_bytes([hdr[12], hdr[13]]);
    skb.pkt_type = if dst[0] & 1 != 0 {
        if dst == [0xff; 6] {
            PktType::Broadcast
        } else {
            PktType::Multicast
        }
    } else if dst == dev_addr.0 {
        PktType::Host
    } else {
        PktType::OtherHost
    };
    skb.protocol = proto;
    skb.reset_network_header();
    Ok(proto)
}

/// Pushes an Ethernet header in front of `data`: destination `daddr`,
/// source `saddr`, type `proto`.
///
/// Mirrors `eth_header()` (`header_ops->create`, reached through
/// `dev_hard_header()`). Marks the MAC header and sets `skb.protocol`.
///
/// # Errors
///
/// [`SkbError`] when the skb has less than 14 bytes of headroom (callers
/// reserve `LL_RESERVED_SPACE`) or its buffer is shared and cannot be
/// written.
pub fn eth_header(
    skb: &mut SkBuff,
    proto: u16,
    daddr: EthernetAddress,
    saddr: EthernetAddress,
) -> Result<(), SkbError> {
    let h = skb.push(ETH_HLEN)?;
    h[..6].copy_from_slice(&daddr.0);
    h[6..12].copy_from_slice(&saddr.0);
    h[12..14].copy_from_slice(&proto.to_be_bytes());
    skb.reset_mac_header();
    skb.protocol = proto;
    Ok(())
}

/// The Ethernet group address of IPv4 multicast group `addr`:
/// `01:00:5e` and the group's low 23 bits.
///
/// Mirrors `ip_eth_mc_map()` in `include/net/ip.h`.
pub fn ip_eth_mc_map(addr: Ipv4Addr) -> EthernetAddress {
    let o = addr.octets();
    EthernetAddress([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcore::{PagePool, PagePoolParams};

    fn pool() -> PagePool {
        PagePool::new(PagePoolParams::default()).unwrap()
    }

    const ME: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]);

    fn frame(dst: [u8; 6]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x0b, 0x08, 0x00, 0x45, 0x00]);
        f
    }

    #[test]
    fn classifies_each_destination_kind() {
        let pool = pool();
        for (dst, want) in [
            (ME.0, PktType::Host),
            ([0xff; 6], PktType::Broadcast),
            ([0x01, 0x00, 0x5e, 0, 0, 1], PktType::Multicast),
            ([0x02, 0, 0, 0, 0, 0x0c], PktType::OtherHost),
        ] {
            let mut skb = SkBuff::from_slice(&pool, 64, &frame(dst)).unwrap();
            assert_eq!(eth_type_trans(&mut skb, ME), Ok(0x0800));
            assert_eq!(skb.pkt_type, want);
            assert_eq!(skb.protocol, 0x0800);
            assert_eq!(skb.data(), &[0x45, 0x00]);
            assert_eq!(skb.mac_offset(), Some(-14));
            assert_eq!(skb.network_header().unwrap(), &[0x45, 0x00]);
        }
    }

    #[test]
    fn a_runt_is_refused_and_left_alone() {
        let pool = pool();
        let mut skb = SkBuff::from_slice(&pool, 64, &[0xff; 13]).unwrap();
        assert!(eth_type_trans(&mut skb, ME).is_err());
        assert_eq!(skb.len(), 13);
    }

    #[test]
    fn header_is_pushed_in_front() {
        let pool = pool();
        let mut skb = SkBuff::from_slice(&pool, 64, &[0x45, 0]).unwrap();
        eth_header(&mut skb, 0x0806, EthernetAddress::BROADCAST, ME).unwrap();
        assert_eq!(
            skb.data(),
            &[
                255, 255, 255, 255, 255, 255, 2, 0, 0, 0, 0, 10, 8, 6, 0x45, 0
            ]
        );
        assert_eq!(skb.protocol, 0x0806);
        let mut none = SkBuff::from_slice(&pool, 4, &[0x45]).unwrap();
        assert!(eth_header(&mut none, 0x0800, ME, ME).is_err());
        assert_eq!(
            ip_eth_mc_map(Ipv4Addr::new(224, 129, 2, 3)),
            EthernetAddress([1, 0, 0x5e, 1, 2, 3])
        );
    }
}
