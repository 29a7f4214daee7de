//! Zero-copy packet formats: Ethernet, ARP, IPv4, ICMPv4, UDP and TCP, the
//! Internet checksum, flow keys and the Toeplitz RSS hash.
//!
//! Mirrors the uapi headers `include/uapi/linux/{if_ether,if_arp,ip,icmp,udp,tcp}.h`,
//! the checksum helpers of `include/net/checksum.h` and `lib/checksum.c`, and
//! `net/core/flow_dissector.c`. This crate holds formats only: no state, no
//! counters, no policy; it depends on no other netstack crate.
//!
//! Each format has three parts:
//!
//! - a **layout struct** (`EthHdr`, `ArpHdr`, `Ipv4Hdr`, `IcmpHdr`, `UdpHdr`,
//!   `TcpHdr`): `#[repr(C)]` zerocopy types with network-endian fields, read in
//!   place over the frame like `struct iphdr` over `skb->data`;
//! - a **checked view** (`EthernetFrame`, `ArpPacket`, `Ipv4Packet`,
//!   `IcmpPacket`, `UdpPacket`, `TcpPacket`) over any zerocopy
//!   `SplitByteSlice` (`&[u8]`, `&mut [u8]`): `new_checked` validates every
//!   length once, after which no accessor can fail or panic. This is the
//!   receive fast path. Views over `&mut [u8]` edit in place (TTL decrement
//!   with an incremental checksum, NAT address rewrite, checksum fill);
//! - a **`Repr`** (`EthernetRepr`, `ArpRepr`, `Ipv4Repr`, `IcmpRepr`,
//!   `UdpRepr`, `TcpRepr`) with `parse`, `header_len`/`buffer_len` and `emit`,
//!   for building packets and in tests. `emit` writes a header in front of a
//!   payload that is already in place, as `skb_push` does.
//!
//! Errors are [`WireError`]s that carry the numbers that were wrong.
//!
//! # Example
//!
//! Build a TCP/IPv4/Ethernet frame with the reprs and read it back through
//! the views:
//!
//! ```
//! use core::net::Ipv4Addr;
//! use wire::{
//!     EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
//!     TcpFlags, TcpOptions, TcpPacket, TcpRepr,
//! };
//!
//! let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
//! let payload = b"hello";
//! let tcp = TcpRepr {
//!     src_port: 40000,
//!     dst_port: 80,
//!     seq: 1000,
//!     ack: 0,
//!     flags: TcpFlags::SYN,
//!     window: 64240,
//!     urgent: 0,
//!     options: TcpOptions { mss: Some(1460), sack_ok: true, ..TcpOptions::default() },
//!     payload_len: payload.len(),
//! };
//! let ip = Ipv4Repr {
//!     src_addr: src,
//!     dst_addr: dst,
//!     protocol: IpProtocol::Tcp,
//!     ttl: 64,
//!     tos: 0,
//!     ident: 1,
//!     dont_frag: true,
//!     more_frags: false,
//!     frag_offset: 0,
//!     options: heapless::Vec::new(),
//!     payload_len: tcp.buffer_len(),
//! };
//! let eth = EthernetRepr {
//!     src_addr: "02:00:00:00:00:01".parse()?,
//!     dst_addr: EthernetAddress([0x02, 0, 0, 0, 0, 0x02]),
//!     vlan: None,
//!     ethertype: EtherType::Ipv4,
//! };
//!
//! // Lay the payload down first, then push each header in front of it.
//! let mut frame = vec![0u8; eth.buffer_len(ip.buffer_len())];
//! let (l3, l4) = (eth.header_len(), eth.header_len() + ip.header_len());
//! frame[l4 + tcp.header_len()..].copy_from_slice(payload);
//! tcp.emit(&mut frame[l4..], src, dst)?;
//! ip.emit(&mut frame[l3..])?;
//! eth.emit(&mut frame)?;
//!
//! // The receive path: views, checksums verified, no Repr needed.
//! let eth_v = EthernetFrame::new_checked(&frame[..])?;
//! assert_eq!(eth_v.ethertype(), EtherType::Ipv4);
//! let ip_v = Ipv4Packet::new_verified(eth_v.payload())?;
//! let tcp_v = TcpPacket::new_checked(ip_v.payload())?;
//! assert!(tcp_v.verify_checksum(ip_v.src_addr(), ip_v.dst_addr()));
//! assert_eq!(tcp_v.payload(), payload);
//!
//! // And back to reprs for comparison.
//! assert_eq!(TcpRepr::parse(&tcp_v, src, dst)?, tcp);
//! assert_eq!(Ipv4Repr::parse(&ip_v)?, ip);
//! assert_eq!(EthernetRepr::parse(&eth_v), eth);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod arp;
mod checksum;
mod error;
mod ethernet;
mod flow_dissector;
mod icmp;
mod ipv4;
mod macros;
mod tcp;
mod tcp_options;
mod toeplitz;
mod udp;

pub use arp::{ARP_ETH_IPV4_LEN, ARPHRD_ETHER, ArpEthIpv4, ArpHdr, ArpOp, ArpPacket, ArpRepr};
pub use checksum::{
    csum_add, csum_block_add, csum_fold, csum_partial, csum_replace2, csum_replace4,
    csum_short_wide, csum_sub, csum_tcpudp_magic, csum_tcpudp_nofold, ip_compute_csum,
    ip_fast_csum,
};
pub use error::WireError;
pub use ethernet::{
    AddrParseError, ETH_ALEN, ETH_DATA_LEN, ETH_FRAME_LEN, ETH_HLEN, ETH_ZLEN, EthHdr, EtherType,
    EthernetAddress, EthernetFrame, EthernetRepr, VLAN_HLEN, VlanHdr, VlanTci,
};
pub use flow_dissector::{
    FLOW_DISSECTOR_F_PARSE_1ST_FRAG, FlowKeys, ports_offset, skb_flow_dissect_flow_keys,
};
pub use icmp::{
    ICMP_HLEN, IcmpDestUnreach, IcmpHdr, IcmpMessage, IcmpPacket, IcmpRedirect, IcmpRepr,
    IcmpTimeExceeded, IcmpType,
};
pub use ipv4::{
    IP_DF, IP_MF, IP_OFFSET, IPOPT_END, IPOPT_LSRR, IPOPT_NOOP, IPOPT_RA, IPOPT_RR, IPOPT_SSRR,
    IPOPT_TS, IPV4_MAX_OPTLEN, IPV4_MIN_HLEN, IpProtocol, Ipv4Hdr, Ipv4Option, Ipv4OptionsIter,
    Ipv4Packet, Ipv4Repr,
};
pub use tcp::{TCP_MIN_HLEN, TcpFlags, TcpHdr, TcpPacket, TcpRepr};
pub use tcp_options::{
    MAX_TCP_OPTION_SPACE, SackBlocks, TCP_NUM_SACKS, TCPOLEN_MSS, TCPOLEN_SACK_BASE,
    TCPOLEN_SACK_PERBLOCK, TCPOLEN_SACK_PERM, TCPOLEN_TIMESTAMP, TCPOLEN_WINDOW, TCPOPT_EOL,
    TCPOPT_MSS, TCPOPT_NOP, TCPOPT_SACK, TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP, TCPOPT_WINDOW,
    TcpOption, TcpOptions, TcpOptionsIter, TcpSackBlock,
};
pub use toeplitz::{
    RSS_DEFAULT_KEY, RSS_KEY_LEN, toeplitz_hash, toeplitz_ipv4, toeplitz_ipv4_ports,
};
pub use udp::{UDP_HLEN, UdpHdr, UdpPacket, UdpRepr};
