//! Flow keys: the IPv4 5-tuple that steers and hashes a packet.
//!
//! Mirrors `net/core/flow_dissector.c` (`__skb_flow_dissect()` for Ethernet,
//! one 802.1Q tag and IPv4, `__skb_flow_get_ports()`) and `struct flow_keys`
//! in `include/net/flow_dissector.h`.
//!
//! # Deviations from Linux
//!
//! Only IPv4 over Ethernet (optionally with one VLAN tag) is dissected; IPv6,
//! MPLS, tunnels and the other encapsulations of the kernel's dissector are
//! not followed (such frames give `None`; ARP gives its ethertype only). The
//! dissector reads a frame
//! slice, not an `sk_buff`, and returns `None` where Linux returns `false`.

use core::net::Ipv4Addr;

use zerocopy::Ref;

use crate::ethernet::{EtherType, EthernetFrame};
use crate::ipv4::{IP_MF, IP_OFFSET, IpProtocol, Ipv4Hdr};
use crate::toeplitz::toeplitz_ipv4_ports;

/// The keys of one flow.
///
/// Mirrors `struct flow_keys` (its `control`, `basic`, `vlan`, `ports` and
/// `addrs` parts) in `include/net/flow_dissector.h`.
#[doc(alias = "flow_keys")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKeys {
    /// Network protocol (`basic.n_proto`).
    pub n_proto: EtherType,
    /// Transport protocol (`basic.ip_proto`).
    pub ip_proto: IpProtocol,
    /// VLAN id of the outer 802.1Q tag (`vlan.vlan_id`), if any.
    pub vlan_id: Option<u16>,
    /// Source address (`addrs.v4addrs.src`).
    pub src: Ipv4Addr,
    /// Destination address (`addrs.v4addrs.dst`).
    pub dst: Ipv4Addr,
    /// Source port (`ports.src`), 0 when not dissected.
    pub sport: u16,
    /// Destination port (`ports.dst`), 0 when not dissected.
    pub dport: u16,
    /// Offset of the transport header in the frame (`control.thoff`).
    pub thoff: u16,
    /// The datagram is a fragment (`FLOW_DIS_IS_FRAGMENT`).
    pub is_fragment: bool,
    /// The datagram is the first fragment (`FLOW_DIS_FIRST_FRAG`).
    pub first_frag: bool,
}

impl FlowKeys {
    /// The Toeplitz RSS hash of these keys under `key`, as a NIC computes it:
    /// over the 4-tuple for a protocol with ports that is not a fragment, over
    /// the addresses alone otherwise (so all fragments of a datagram land on
    /// one queue).
    pub fn toeplitz_hash(&self, key: &[u8]) -> u32 {
        if ports_offset(self.ip_proto).is_some() && !self.is_fragment {
            toeplitz_ipv4_ports(key, self.src, self.dst, self.sport, self.dport)
        } else {
            crate::toeplitz::toeplitz_ipv4(key, self.src, self.dst)
        }
    }
}

/// Dissect the ports of the first fragment too. Mirrors
/// `FLOW_DISSECTOR_F_PARSE_1ST_FRAG`.
pub const FLOW_DISSECTOR_F_PARSE_1ST_FRAG: u32 = 1 << 0;

/// Where the ports are in a transport header, or `None` for protocols without
/// ports. Mirrors `proto_ports_offset()` in `include/net/ip.h`.
pub fn ports_offset(proto: IpProtocol) -> Option<usize> {
    match proto {
        IpProtocol::Tcp
        | IpProtocol::Udp
        | IpProtocol::Dccp
        | IpProtocol::Esp
        | IpProtocol::Sctp
        | IpProtocol::UdpLite => Some(0),
        IpProtocol::Ah => Some(4),
        _ => None,
    }
}

/// Extracts the flow keys of an Ethernet frame.
///
/// Mirrors `skb_flow_dissect_flow_keys()` → `__skb_flow_dissect()`: reads the
/// Ethernet header and one VLAN tag, then for IPv4 requires IHL ≥ 5, records
/// the addresses and protocol, marks fragments, and reads the ports unless the
/// datagram is a non-first fragment (or a first fragment without
/// [`FLOW_DISSECTOR_F_PARSE_1ST_FRAG`] in `flags`). Returns `None` where Linux
/// returns `false` (truncated headers, a bad IHL); the lengths are checked
/// only as far as the dissector reads, as in Linux.
#[doc(alias = "__skb_flow_dissect")]
pub fn skb_flow_dissect_flow_keys(frame: &[u8], flags: u32) -> Option<FlowKeys> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let mut keys = FlowKeys {
        n_proto: eth.ethertype(),
        ip_proto: IpProtocol::Unknown(0),
        vlan_id: eth.vlan().map(|t| t.vid),
        src: Ipv4Addr::UNSPECIFIED,
        dst: Ipv4Addr::UNSPECIFIED,
        sport: 0,
        dport: 0,
        thoff: 0,
        is_fragment: false,
        first_frag: false,
    };
    let nhoff = eth.header_len();
    match keys.n_proto {
        EtherType::Ipv4 => {}
        // __skb_flow_dissect_arp(): without an ARP key requested, good.
        EtherType::Arp => return Some(keys),
        _ => return None,
    }
    let (iph, _) = Ref::<_, Ipv4Hdr>::from_prefix(eth.payload()).ok()?;
    if iph.ihl() < 5 {
        return None;
    }
    let thoff = nhoff + usize::from(iph.ihl()) * 4;
    keys.thoff = u16::try_from(thoff).ok()?;
    keys.src = iph.src_addr();
    keys.dst = iph.dst_addr();
    keys.ip_proto = iph.protocol.into();
    let frag_off = iph.frag_off.get();
    if frag_off & (IP_MF | IP_OFFSET) != 0 {
        keys.is_fragment = true;
        if frag_off & IP_OFFSET != 0 {
            return Some(keys);
        }
        keys.first_frag = true;
        if flags & FLOW_DISSECTOR_F_PARSE_1ST_FRAG == 0 {
            return Some(keys);
        }
    }
    if let Some(off) = ports_offset(keys.ip_proto) {
        // __skb_flow_get_ports(): no ports when the header is not there.
        if let Some(p) = frame.get(thoff + off..thoff + off + 4) {
            keys.sport = u16::from_be_bytes([p[0], p[1]]);
            keys.dport = u16::from_be_bytes([p[2], p[3]]);
        }
    }
    Some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EthernetAddress, EthernetRepr, Ipv4Repr, VlanTci};

    fn frame(proto: IpProtocol, frag: (bool, u16), vlan: Option<VlanTci>, l4: &[u8]) -> Vec<u8> {
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            vlan,
            ethertype: EtherType::Ipv4,
        };
        let ip = Ipv4Repr {
            src_addr: Ipv4Addr::new(198, 18, 0, 1),
            dst_addr: Ipv4Addr::new(198, 18, 0, 2),
            protocol: proto,
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_frag: false,
            more_frags: frag.0,
            frag_offset: frag.1,
            options: heapless::Vec::from_slice(&[1, 1, 1, 0]).unwrap(),
            payload_len: l4.len(),
        };
        let mut buf = vec![0u8; eth.header_len() + ip.buffer_len()];
        eth.emit(&mut buf).unwrap();
        ip.emit(&mut buf[eth.header_len()..]).unwrap();
        let at = eth.header_len() + ip.header_len();
        buf[at..].copy_from_slice(l4);
        buf
    }

    const PORTS: [u8; 8] = [0x9c, 0x40, 0x00, 0x50, 0, 0, 0, 0];

    #[test]
    fn tcp_five_tuple() {
        let f = frame(IpProtocol::Tcp, (false, 0), None, &PORTS);
        let k = skb_flow_dissect_flow_keys(&f, 0).unwrap();
        assert_eq!(k.n_proto, EtherType::Ipv4);
        assert_eq!(k.ip_proto, IpProtocol::Tcp);
        assert_eq!(
            (k.src, k.dst),
            (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2))
        );
        assert_eq!((k.sport, k.dport), (40000, 80));
        assert_eq!(k.thoff, 14 + 24);
        assert!(!k.is_fragment);
        assert_eq!(k.vlan_id, None);
    }

    #[test]
    fn vlan_tagged() {
        let f = frame(
            IpProtocol::Udp,
            (false, 0),
            Some(VlanTci {
                pcp: 0,
                dei: false,
                vid: 42,
            }),
            &PORTS,
        );
        let k = skb_flow_dissect_flow_keys(&f, 0).unwrap();
        assert_eq!(k.vlan_id, Some(42));
        assert_eq!(k.thoff, 18 + 24);
        assert_eq!((k.sport, k.dport), (40000, 80));
    }

    #[test]
    fn fragments() {
        let first = frame(IpProtocol::Udp, (true, 0), None, &PORTS);
        let k = skb_flow_dissect_flow_keys(&first, 0).unwrap();
        assert!(k.is_fragment && k.first_frag);
        assert_eq!((k.sport, k.dport), (0, 0));
        let k1 = skb_flow_dissect_flow_keys(&first, FLOW_DISSECTOR_F_PARSE_1ST_FRAG).unwrap();
        assert_eq!((k1.sport, k1.dport), (40000, 80));
        let later = frame(IpProtocol::Udp, (false, 1480), None, &PORTS);
        let k2 = skb_flow_dissect_flow_keys(&later, FLOW_DISSECTOR_F_PARSE_1ST_FRAG).unwrap();
        assert!(k2.is_fragment && !k2.first_frag);
        assert_eq!((k2.sport, k2.dport), (0, 0));
        // All fragments of one datagram hash alike by default.
        assert_eq!(
            k.toeplitz_hash(&crate::RSS_DEFAULT_KEY),
            k2.toeplitz_hash(&crate::RSS_DEFAULT_KEY)
        );
    }

    #[test]
    fn no_ports_protocols_and_bad_frames() {
        let f = frame(IpProtocol::Icmp, (false, 0), None, &PORTS);
        let k = skb_flow_dissect_flow_keys(&f, 0).unwrap();
        assert_eq!((k.sport, k.dport), (0, 0));
        let ah = frame(IpProtocol::Ah, (false, 0), None, &PORTS);
        assert_eq!(skb_flow_dissect_flow_keys(&ah, 0).unwrap().sport, 0);
        // Truncated transport header: addresses but no ports.
        let f = frame(IpProtocol::Tcp, (false, 0), None, &PORTS[..3]);
        let k = skb_flow_dissect_flow_keys(&f, 0).unwrap();
        assert_eq!((k.sport, k.dport), (0, 0));
        let mut bad = frame(IpProtocol::Tcp, (false, 0), None, &PORTS);
        bad[14] = 0x44;
        assert_eq!(skb_flow_dissect_flow_keys(&bad, 0), None);
        assert_eq!(skb_flow_dissect_flow_keys(&bad[..20], 0), None);
        let mut arp = bad.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(
            skb_flow_dissect_flow_keys(&arp, 0).unwrap().n_proto,
            EtherType::Arp
        );
        arp[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(skb_flow_dissect_flow_keys(&arp, 0), None);
    }

    #[test]
    fn rss_hash_of_keys() {
        let f = frame(IpProtocol::Tcp, (false, 0), None, &PORTS);
        let k = skb_flow_dissect_flow_keys(&f, 0).unwrap();
        assert_eq!(
            k.toeplitz_hash(&crate::RSS_DEFAULT_KEY),
            toeplitz_ipv4_ports(&crate::RSS_DEFAULT_KEY, k.src, k.dst, 40000, 80)
        );
    }
}
