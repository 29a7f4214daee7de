//! Property tests: `parse(emit(repr)) == repr` for every format, and random
//! bytes never make a view or a parser panic.

mod common;

use proptest::prelude::*;
use wire::{
    ArpPacket, ArpRepr, EthernetFrame, EthernetRepr, IcmpPacket, IcmpRepr, Ipv4Packet, Ipv4Repr,
    TcpOptions, TcpOptionsIter, TcpPacket, TcpRepr, UdpPacket, UdpRepr, WireError,
    skb_flow_dissect_flow_keys,
};

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ethernet_round_trip(repr in common::ethernet(), len in 0usize..64) {
        let mut buf = vec![0u8; repr.buffer_len(len)];
        let hlen = repr.header_len();
        buf[hlen..].copy_from_slice(&payload(len));
        repr.emit(&mut buf).unwrap();
        let frame = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&frame), repr);
        prop_assert_eq!(frame.payload(), &payload(len)[..]);
    }

    #[test]
    fn arp_round_trip(repr in common::arp()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf).unwrap();
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()), repr);
    }

    #[test]
    fn ipv4_round_trip(repr in common::ipv4(200)) {
        let mut buf = vec![0u8; repr.buffer_len()];
        let hlen = repr.header_len();
        buf[hlen..].copy_from_slice(&payload(repr.payload_len));
        repr.emit(&mut buf).unwrap();
        let p = Ipv4Packet::new_verified(&buf[..]).unwrap();
        prop_assert_eq!(p.payload(), &payload(repr.payload_len)[..]);
        prop_assert_eq!(Ipv4Repr::parse(&p).unwrap(), repr);
    }

    #[test]
    fn icmp_round_trip(repr in common::icmp(100)) {
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[8..].copy_from_slice(&payload(repr.payload_len));
        repr.emit(&mut buf).unwrap();
        prop_assert_eq!(IcmpRepr::parse(&IcmpPacket::new_checked(&buf[..]).unwrap()).unwrap(), repr);
    }

    #[test]
    fn udp_round_trip(repr in common::udp(200), src in common::addr(), dst in common::addr()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        buf[8..].copy_from_slice(&payload(repr.payload_len));
        repr.emit(&mut buf, src, dst).unwrap();
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_ne!(p.checksum(), 0);
        prop_assert_eq!(UdpRepr::parse(&p, src, dst).unwrap(), repr);
    }

    #[test]
    fn tcp_round_trip(repr in common::tcp(200), src in common::addr(), dst in common::addr()) {
        let mut buf = vec![0u8; repr.buffer_len()];
        let hlen = repr.header_len();
        buf[hlen..].copy_from_slice(&payload(repr.payload_len));
        repr.emit(&mut buf, src, dst).unwrap();
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(TcpRepr::parse(&p, src, dst).unwrap(), repr);
    }

    #[test]
    fn tcp_options_round_trip(opts in common::tcp_options()) {
        let mut buf = [0u8; 40];
        let n = opts.emit(&mut buf).unwrap();
        prop_assert_eq!(n % 4, 0);
        prop_assert_eq!(TcpOptions::parse(&buf[..n]).unwrap(), opts);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let src = core::net::Ipv4Addr::new(198, 18, 0, 1);
        let dst = core::net::Ipv4Addr::new(198, 18, 0, 2);
        if let Ok(f) = EthernetFrame::new_checked(&bytes[..]) {
            let _ = EthernetRepr::parse(&f);
            let _ = (f.payload(), f.vlan(), f.ethertype(), f.header_len());
        }
        if let Ok(p) = ArpPacket::new_checked(&bytes[..]) {
            let _ = ArpRepr::parse(&p);
        }
        if let Ok(p) = Ipv4Packet::new_checked(&bytes[..]) {
            let _ = Ipv4Repr::parse(&p);
            let _ = p.options_iter().count();
            prop_assert!(p.header_len() + p.payload().len() <= bytes.len());
        }
        if let Ok(p) = IcmpPacket::new_checked(&bytes[..]) {
            let _ = IcmpRepr::parse(&p);
        }
        if let Ok(p) = UdpPacket::new_checked(&bytes[..]) {
            let _ = UdpRepr::parse(&p, src, dst);
            prop_assert_eq!(p.payload().len() + 8, usize::from(p.len()));
        }
        if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
            let _ = TcpRepr::parse(&p, src, dst);
            prop_assert!(p.options_iter().all(|o| o.is_ok()));
        }
        let _ = TcpOptions::parse(&bytes);
        let _ = TcpOptionsIter::new(&bytes).count();
        let _ = skb_flow_dissect_flow_keys(&bytes, 0);
        let _ = skb_flow_dissect_flow_keys(&bytes, wire::FLOW_DISSECTOR_F_PARSE_1ST_FRAG);
    }

    #[test]
    fn mutable_views_on_random_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(mut p) = Ipv4Packet::new_checked(&mut bytes[..]) {
            p.decrease_ttl();
            p.fill_checksum();
            prop_assert!(p.verify_checksum());
        }
    }

    #[test]
    fn every_truncation_is_an_error(repr in common::tcp(40), cut in 0usize..200) {
        let src = core::net::Ipv4Addr::new(198, 18, 0, 1);
        let dst = core::net::Ipv4Addr::new(198, 18, 0, 2);
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut buf, src, dst).unwrap();
        let cut = cut.min(repr.header_len().saturating_sub(1));
        let err = TcpPacket::new_checked(&buf[..cut]).err();
        let is_truncated = matches!(err, Some(WireError::Truncated { got, .. }) if got == cut);
        prop_assert!(is_truncated, "{:?}", err);
    }
}
