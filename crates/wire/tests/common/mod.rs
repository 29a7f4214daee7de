#![allow(dead_code, reason = "each test binary uses a subset of the strategies")]
//! Strategies shared by the property tests: random reprs of every format.

use core::net::Ipv4Addr;

use proptest::prelude::*;
use wire::{
    ArpOp, ArpRepr, EtherType, EthernetAddress, EthernetRepr, IcmpDestUnreach, IcmpMessage,
    IcmpRedirect, IcmpRepr, IcmpTimeExceeded, IpProtocol, Ipv4Repr, SackBlocks, TcpFlags,
    TcpOptions, TcpRepr, TcpSackBlock, UdpRepr, VlanTci,
};

pub fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

pub fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from_bits)
}

pub fn ethernet() -> impl Strategy<Value = EthernetRepr> {
    let vlan = proptest::option::of(
        (0u8..8, any::<bool>(), 0u16..4096).prop_map(|(pcp, dei, vid)| VlanTci { pcp, dei, vid }),
    );
    // Ethertypes other than the VLAN tags, which would change the layout.
    let ethertype = any::<u16>()
        .prop_filter("not a tag", |t| *t != 0x8100)
        .prop_map(EtherType::from);
    (mac(), mac(), vlan, ethertype).prop_map(|(src_addr, dst_addr, vlan, ethertype)| EthernetRepr {
        src_addr,
        dst_addr,
        vlan,
        ethertype,
    })
}

/// A well-formed IPv4 options area: NOPs and router-alert-like TLVs, padded
/// with EOL to a multiple of 4.
pub fn ipv4_options() -> impl Strategy<Value = heapless::Vec<u8, 40>> {
    proptest::collection::vec(
        prop_oneof![
            Just(vec![1u8]),
            (2u8..6).prop_map(|len| {
                let mut v = vec![148u8, len];
                v.resize(usize::from(len), 0);
                v
            })
        ],
        0..6,
    )
    .prop_map(|parts| {
        let mut out: Vec<u8> = parts.concat();
        out.truncate(36);
        // Cut a TLV that the truncation split: fall back to NOPs.
        let mut i = 0;
        while i < out.len() {
            if out[i] == 1 {
                i += 1;
            } else if i + 1 < out.len() && i + usize::from(out[i + 1]) <= out.len() {
                i += usize::from(out[i + 1]);
            } else {
                out.truncate(i);
            }
        }
        out.resize(out.len().next_multiple_of(4), 0);
        heapless::Vec::from_slice(&out).expect("at most 36 bytes")
    })
}

pub fn ipv4(max_payload: usize) -> impl Strategy<Value = Ipv4Repr> {
    (
        (
            addr(),
            addr(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u16>(),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
            ipv4_options(),
            0..=max_payload,
        ),
    )
        .prop_map(
            |(
                (src_addr, dst_addr, proto, ttl, tos, ident),
                (dont_frag, more_frags, off, options, payload_len),
            )| Ipv4Repr {
                src_addr,
                dst_addr,
                protocol: IpProtocol::from(proto),
                ttl,
                tos,
                ident,
                dont_frag,
                more_frags,
                frag_offset: off << 3,
                options,
                payload_len,
            },
        )
}

pub fn arp() -> impl Strategy<Value = ArpRepr> {
    (any::<u16>(), mac(), addr(), mac(), addr()).prop_map(|(op, sha, sip, tha, tip)| ArpRepr {
        operation: ArpOp::from(op),
        sha,
        sip,
        tha,
        tip,
    })
}

pub fn udp(max_payload: usize) -> impl Strategy<Value = UdpRepr> {
    (any::<u16>(), any::<u16>(), 0..=max_payload).prop_map(|(src_port, dst_port, payload_len)| {
        UdpRepr {
            src_port,
            dst_port,
            payload_len,
        }
    })
}

pub fn icmp(max_payload: usize) -> impl Strategy<Value = IcmpRepr> {
    let message = prop_oneof![
        (any::<u16>(), any::<u16>())
            .prop_map(|(ident, seq_no)| IcmpMessage::EchoRequest { ident, seq_no }),
        (any::<u16>(), any::<u16>())
            .prop_map(|(ident, seq_no)| IcmpMessage::EchoReply { ident, seq_no }),
        (any::<u8>(), any::<u16>()).prop_map(|(code, next_hop_mtu)| IcmpMessage::DstUnreachable {
            code: IcmpDestUnreach::from(code),
            next_hop_mtu,
        }),
        any::<u8>().prop_map(|code| IcmpMessage::TimeExceeded {
            code: IcmpTimeExceeded::from(code)
        }),
        (any::<u8>(), addr()).prop_map(|(code, gateway)| IcmpMessage::Redirect {
            code: IcmpRedirect::from(code),
            gateway,
        }),
        any::<u8>().prop_map(|pointer| IcmpMessage::ParamProblem { pointer }),
        (
            prop_oneof![Just(13u8), Just(14), 19u8..=255],
            any::<u8>(),
            any::<[u8; 4]>()
        )
            .prop_map(|(icmp_type, code, un)| IcmpMessage::Other {
                icmp_type,
                code,
                un
            }),
    ];
    (message, 0..=max_payload).prop_map(|(message, payload_len)| IcmpRepr {
        message,
        payload_len,
    })
}

pub fn tcp_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        any::<bool>(),
        proptest::option::of(any::<(u32, u32)>()),
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
    )
        .prop_map(|(mss, wscale, sack_ok, timestamp, blocks)| {
            let mut o = TcpOptions {
                mss,
                wscale,
                sack_ok,
                timestamp,
                sack_blocks: SackBlocks::new(),
            };
            for (start_seq, end_seq) in blocks {
                if o.buffer_len() + 8 + if o.sack_blocks.is_empty() { 4 } else { 0 } > 40 {
                    break;
                }
                o.sack_blocks
                    .push(TcpSackBlock { start_seq, end_seq })
                    .expect("at most 4");
            }
            o
        })
}

pub fn tcp(max_payload: usize) -> impl Strategy<Value = TcpRepr> {
    (
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            0u16..0x200,
        ),
        (any::<u16>(), any::<u16>(), tcp_options(), 0..=max_payload),
    )
        .prop_map(
            |((src_port, dst_port, seq, ack, flags), (window, urgent, options, payload_len))| {
                TcpRepr {
                    src_port,
                    dst_port,
                    seq,
                    ack,
                    flags: TcpFlags::from_bits_truncate(flags),
                    window,
                    urgent,
                    options,
                    payload_len,
                }
            },
        )
}
