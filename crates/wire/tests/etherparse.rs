//! Cross-checks with etherparse: what we emit parses the same there, and
//! what etherparse builds parses the same here.

mod common;

use core::net::Ipv4Addr;

use etherparse::{
    LinkHeader, NetHeaders, PacketBuilder, PacketHeaders, TcpOptionElement, TransportHeader,
};
use proptest::prelude::*;
use wire::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IcmpMessage, IcmpPacket, IcmpRepr,
    IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOptions, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};

/// Builds Ethernet + IPv4 + a transport header with our reprs; `emit_l4`
/// writes the transport header into its slice.
fn frame_with(
    eth: &EthernetRepr,
    ip: &Ipv4Repr,
    payload: &[u8],
    l4_hlen: usize,
    emit_l4: impl FnOnce(&mut [u8]),
) -> Vec<u8> {
    let mut buf = vec![0u8; eth.header_len() + ip.buffer_len()];
    eth.emit(&mut buf).unwrap();
    let ip_at = eth.header_len();
    ip.emit(&mut buf[ip_at..]).unwrap();
    let l4_at = ip_at + ip.header_len();
    buf[l4_at + l4_hlen..].copy_from_slice(payload);
    emit_l4(&mut buf[l4_at..]);
    buf
}

fn base_ip(
    proto: IpProtocol,
    options: heapless::Vec<u8, 40>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Ipv4Repr {
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: proto,
        ttl: 64,
        tos: 0,
        ident: 7,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options,
        payload_len: 0,
    }
}

fn expected_options(o: &TcpOptions) -> Vec<TcpOptionElement> {
    // The elements tcp_options_write() lays out, in order, NOPs included.
    let mut v = Vec::new();
    if let Some(mss) = o.mss {
        v.push(TcpOptionElement::MaximumSegmentSize(mss));
    }
    if let Some((a, b)) = o.timestamp {
        if o.sack_ok {
            v.push(TcpOptionElement::SelectiveAcknowledgementPermitted);
        } else {
            v.extend([TcpOptionElement::Noop, TcpOptionElement::Noop]);
        }
        v.push(TcpOptionElement::Timestamp(a, b));
    } else if o.sack_ok {
        v.extend([
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgementPermitted,
        ]);
    }
    if let Some(s) = o.wscale {
        v.extend([TcpOptionElement::Noop, TcpOptionElement::WindowScale(s)]);
    }
    if let Some((first, rest)) = o.sack_blocks.split_first() {
        let mut more = [None; 3];
        for (slot, b) in more.iter_mut().zip(rest) {
            *slot = Some((b.start_seq, b.end_seq));
        }
        v.extend([TcpOptionElement::Noop, TcpOptionElement::Noop]);
        v.push(TcpOptionElement::SelectiveAcknowledgement(
            (first.start_seq, first.end_seq),
            more,
        ));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn our_tcp_frames_parse_in_etherparse(
        eth in common::ethernet(),
        options in common::ipv4_options(),
        tcp in common::tcp(100),
        src in common::addr(),
        dst in common::addr(),
    ) {
        let eth = EthernetRepr { ethertype: EtherType::Ipv4, ..eth };
        let payload: Vec<u8> = (0..tcp.payload_len).map(|i| i as u8).collect();
        let mut ip = base_ip(IpProtocol::Tcp, options, src, dst);
        ip.payload_len = tcp.buffer_len();
        let buf = frame_with(&eth, &ip, &payload, tcp.header_len(), |b| tcp.emit(b, src, dst).unwrap());

        let h = PacketHeaders::from_ethernet_slice(&buf).unwrap();
        prop_assert_eq!(h.vlan_ids().first().map(|v| v.value()), eth.vlan.map(|t| t.vid));
        let Some(LinkHeader::Ethernet2(e)) = h.link else { panic!("no ethernet") };
        prop_assert_eq!(e.source, eth.src_addr.0);
        prop_assert_eq!(e.destination, eth.dst_addr.0);
        let Some(NetHeaders::Ipv4(iph, _)) = h.net else { panic!("no ipv4") };
        prop_assert_eq!(iph.source, src.octets());
        prop_assert_eq!(iph.destination, dst.octets());
        prop_assert_eq!(usize::from(iph.total_len), ip.buffer_len());
        prop_assert_eq!(iph.header_checksum, iph.calc_header_checksum());
        prop_assert_eq!(iph.options.as_slice(), &ip.options[..]);
        let Some(TransportHeader::Tcp(t)) = h.transport else { panic!("no tcp") };
        prop_assert_eq!((t.source_port, t.destination_port), (tcp.src_port, tcp.dst_port));
        prop_assert_eq!((t.sequence_number, t.acknowledgment_number), (tcp.seq, tcp.ack));
        prop_assert_eq!(t.window_size, tcp.window);
        prop_assert_eq!(t.urgent_pointer, tcp.urgent);
        let f = tcp.flags;
        prop_assert_eq!(
            [t.fin, t.syn, t.rst, t.psh, t.ack, t.urg, t.ece, t.cwr, t.ns],
            [TcpFlags::FIN, TcpFlags::SYN, TcpFlags::RST, TcpFlags::PSH, TcpFlags::ACK, TcpFlags::URG, TcpFlags::ECE, TcpFlags::CWR, TcpFlags::AE]
                .map(|x| f.contains(x))
        );
        prop_assert_eq!(t.checksum, t.calc_checksum_ipv4(&iph, &payload).unwrap());
        let opts: Vec<_> = t.options_iterator().map(Result::unwrap).collect();
        prop_assert_eq!(opts, expected_options(&tcp.options));
        prop_assert_eq!(h.payload.slice(), &payload[..]);
    }

    #[test]
    fn our_udp_frames_parse_in_etherparse(udp in common::udp(100), src in common::addr(), dst in common::addr()) {
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            vlan: None,
            ethertype: EtherType::Ipv4,
        };
        let payload: Vec<u8> = (0..udp.payload_len).map(|i| (i * 3) as u8).collect();
        let mut ip = base_ip(IpProtocol::Udp, heapless::Vec::new(), src, dst);
        ip.payload_len = udp.buffer_len();
        let buf = frame_with(&eth, &ip, &payload, 8, |b| udp.emit(b, src, dst).unwrap());
        let h = PacketHeaders::from_ethernet_slice(&buf).unwrap();
        let Some(NetHeaders::Ipv4(iph, _)) = h.net else { panic!("no ipv4") };
        let Some(TransportHeader::Udp(u)) = h.transport else { panic!("no udp") };
        prop_assert_eq!((u.source_port, u.destination_port), (udp.src_port, udp.dst_port));
        prop_assert_eq!(usize::from(u.length), udp.buffer_len());
        prop_assert_eq!(u.checksum, u.calc_checksum_ipv4(&iph, &payload).unwrap());
    }

    #[test]
    fn etherparse_tcp_frames_parse_here(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), ttl in any::<u8>(),
        sport in any::<u16>(), dport in any::<u16>(), seq in any::<u32>(), ack in any::<u32>(),
        win in any::<u16>(), mss in any::<u16>(), ts in any::<(u32, u32)>(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, ttl)
            .tcp(sport, dport, seq, win)
            .ack(ack)
            .psh()
            .options(&[
                TcpOptionElement::MaximumSegmentSize(mss),
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(ts.0, ts.1),
            ])
            .unwrap();
        let mut buf = Vec::new();
        builder.write(&mut buf, &payload).unwrap();

        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(eth.src_addr(), EthernetAddress([2, 0, 0, 0, 0, 1]));
        prop_assert_eq!(eth.ethertype(), EtherType::Ipv4);
        let ip = Ipv4Packet::new_verified(eth.payload()).unwrap();
        prop_assert_eq!(ip.src_addr(), Ipv4Addr::from(src));
        prop_assert_eq!(ip.dst_addr(), Ipv4Addr::from(dst));
        prop_assert_eq!(ip.ttl(), ttl);
        prop_assert_eq!(ip.protocol(), IpProtocol::Tcp);
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let repr = TcpRepr::parse(&tcp, ip.src_addr(), ip.dst_addr()).unwrap();
        prop_assert_eq!((repr.src_port, repr.dst_port, repr.seq, repr.ack, repr.window), (sport, dport, seq, ack, win));
        prop_assert_eq!(repr.flags, TcpFlags::ACK | TcpFlags::PSH);
        prop_assert_eq!(&repr.options, &TcpOptions { mss: Some(mss), timestamp: Some(ts), ..TcpOptions::default() });
        prop_assert_eq!(tcp.payload(), &payload[..]);
        // Round trip through our repr gives back etherparse's bytes.
        let mut again = vec![0u8; repr.buffer_len()];
        again[repr.header_len()..].copy_from_slice(&payload);
        repr.emit(&mut again, ip.src_addr(), ip.dst_addr()).unwrap();
        prop_assert_eq!(&again[..], ip.payload());
    }

    #[test]
    fn etherparse_udp_and_icmp_parse_here(
        src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sport in any::<u16>(), dport in any::<u16>(),
        id in any::<u16>(), seq in any::<u16>(), vid in 0u16..4096,
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut buf = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .single_vlan(etherparse::VlanId::try_new(vid).unwrap())
            .ipv4(src, dst, 64)
            .udp(sport, dport)
            .write(&mut buf, &payload)
            .unwrap();
        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(eth.vlan().map(|t| t.vid), Some(vid));
        let ip = Ipv4Packet::new_verified(eth.payload()).unwrap();
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        let repr = UdpRepr::parse(&udp, ip.src_addr(), ip.dst_addr()).unwrap();
        prop_assert_eq!(repr, UdpRepr { src_port: sport, dst_port: dport, payload_len: payload.len() });
        prop_assert_eq!(udp.payload(), &payload[..]);

        let mut buf = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .icmpv4_echo_request(id, seq)
            .write(&mut buf, &payload)
            .unwrap();
        let eth = EthernetFrame::new_checked(&buf[..]).unwrap();
        let ip = Ipv4Packet::new_verified(eth.payload()).unwrap();
        prop_assert_eq!(ip.protocol(), IpProtocol::Icmp);
        let icmp = IcmpPacket::new_checked(ip.payload()).unwrap();
        prop_assert_eq!(
            IcmpRepr::parse(&icmp).unwrap(),
            IcmpRepr { message: IcmpMessage::EchoRequest { ident: id, seq_no: seq }, payload_len: payload.len() }
        );
    }
}
