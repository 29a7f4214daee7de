//! Every `wire` parser on arbitrary bytes: the checked views
//! (`EthernetFrame`, `ArpPacket`, `Ipv4Packet`, `IcmpPacket`, `UdpPacket`,
//! `TcpPacket`), their Reprs' `parse`, `TcpOptions::parse` and
//! `skb_flow_dissect_flow_keys`.
//!
//! The input is tried as a whole at every layer (so each parser sees raw
//! bytes) and also walked down from Ethernet, so the fuzzer can reach the
//! transport parsers through valid outer headers. Besides never panicking,
//! a Repr parsed from the wire must emit again, and parsing what it emitted
//! must give the same Repr.

#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use wire::{
    ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, FLOW_DISSECTOR_F_PARSE_1ST_FRAG,
    IcmpPacket, IcmpRepr, IpProtocol, Ipv4Packet, Ipv4Repr, MAX_TCP_OPTION_SPACE, TcpOptions,
    TcpPacket, TcpRepr, UdpPacket, UdpRepr, WireError, skb_flow_dissect_flow_keys,
};

fuzz_target!(|data: &[u8]| {
    let _ = skb_flow_dissect_flow_keys(data, 0);
    let _ = skb_flow_dissect_flow_keys(data, FLOW_DISSECTOR_F_PARSE_1ST_FRAG);
    ethernet(data);
    arp(data);
    ipv4(data);
    let (s, d) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
    icmp(data);
    udp(data, s, d);
    tcp(data, s, d);
    tcp_options(data);
});

fn ethernet(data: &[u8]) {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let repr = EthernetRepr::parse(&frame);
    let _ = (frame.header_len(), frame.src_addr(), frame.dst_addr());
    let payload = frame.payload();
    assert!(frame.header_len() + payload.len() == data.len());
    let mut buf = vec![0u8; frame.header_len()];
    repr.emit(&mut buf).expect("a parsed Ethernet header emits");
    let again = EthernetFrame::new_checked(&buf[..]).expect("an emitted header parses");
    assert_eq!(EthernetRepr::parse(&again), repr);
    match frame.ethertype() {
        EtherType::Arp => arp(payload),
        EtherType::Ipv4 => ipv4(payload),
        _ => {}
    }
}

fn arp(data: &[u8]) {
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let repr = ArpRepr::parse(&packet);
    let mut buf = vec![0u8; data.len()];
    repr.emit(&mut buf).expect("a parsed ARP packet emits");
    let again = ArpPacket::new_checked(&buf[..]).expect("an emitted ARP packet parses");
    assert_eq!(ArpRepr::parse(&again), repr);
}

fn ipv4(data: &[u8]) {
    let Ok(packet) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (packet.tos(), packet.ttl(), packet.ident(), packet.is_fragment());
    for opt in packet.options_iter() {
        let _ = opt;
    }
    let Ok(repr) = Ipv4Repr::parse(&packet) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf).expect("a parsed IPv4 header emits");
    let again = Ipv4Packet::new_checked(&buf[..]).expect("an emitted IPv4 header parses");
    assert_eq!(Ipv4Repr::parse(&again).as_ref(), Ok(&repr));
    // Transport headers only in the first fragment, as Linux reads them.
    if packet.frag_offset() != 0 {
        return;
    }
    let (s, d) = (packet.src_addr(), packet.dst_addr());
    match packet.protocol() {
        IpProtocol::Icmp => icmp(packet.payload()),
        IpProtocol::Udp => udp(packet.payload(), s, d),
        IpProtocol::Tcp => tcp(packet.payload(), s, d),
        _ => {}
    }
}

fn icmp(data: &[u8]) {
    let Ok(packet) = IcmpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        packet.icmp_type(),
        packet.code(),
        packet.echo_ident(),
        packet.echo_seq(),
        packet.gateway(),
        packet.next_hop_mtu(),
        packet.pointer(),
    );
    if let Ok(repr) = IcmpRepr::parse(&packet) {
        let mut buf = data.to_vec();
        // Whatever the message, emitting into the buffer it came from works.
        repr.emit(&mut buf).expect("a parsed ICMP message emits");
    }
}

fn udp(data: &[u8], s: Ipv4Addr, d: Ipv4Addr) {
    let Ok(packet) = UdpPacket::new_checked(data) else {
        return;
    };
    let Ok(repr) = UdpRepr::parse(&packet, s, d) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut buf, s, d).expect("a parsed UDP header emits");
    let again = UdpPacket::new_checked(&buf[..]).expect("an emitted UDP header parses");
    assert_eq!(UdpRepr::parse(&again, s, d), Ok(repr));
}

fn tcp(data: &[u8], s: Ipv4Addr, d: Ipv4Addr) {
    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    let _ = (packet.flags(), packet.seq_number(), packet.window());
    for opt in packet.options_iter() {
        let _ = opt;
    }
    let Ok(repr) = TcpRepr::parse(&packet, s, d) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    match repr.emit(&mut buf, s, d) {
        Ok(()) => {}
        // As in tcp_options below: options that fit in 40 bytes on the
        // wire may need more laid out as Linux writes them (NOP-aligned
        // SACK blocks next to MSS and SACK-permitted); emit refuses them.
        Err(WireError::OptionsTooLong(n)) if n > MAX_TCP_OPTION_SPACE => return,
        Err(e) => panic!("a parsed TCP header does not emit: {e:?}"),
    }
    let again = TcpPacket::new_checked(&buf[..]).expect("an emitted TCP header parses");
    assert_eq!(TcpRepr::parse(&again, s, d), Ok(repr));
}

fn tcp_options(data: &[u8]) {
    // At most 40 bytes of options fit a TCP header.
    let opts = &data[..data.len().min(40)];
    let Ok(parsed) = TcpOptions::parse(opts) else {
        return;
    };
    let mut buf = [0u8; 64];
    let Ok(n) = parsed.emit(&mut buf) else {
        // The parsed fields may need more room than the 40 bytes they came
        // in (a SACK block list next to a timestamp): refusing is fine.
        return;
    };
    assert_eq!(TcpOptions::parse(&buf[..n]), Ok(parsed));
}
