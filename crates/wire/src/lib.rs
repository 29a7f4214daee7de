//! Zero-copy packet formats: Ethernet, ARP, IPv4, ICMPv4, UDP and TCP.
//!
//! Mirrors `include/uapi/linux/{if_ether,if_arp,ip,icmp,udp,tcp}.h` and
//! `net/core/flow_dissector.c`.
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
    csum_add, csum_block_add, csum_fold, csum_partial, csum_replace2, csum_replace4, csum_sub,
    csum_tcpudp_magic, csum_tcpudp_nofold, ip_compute_csum, ip_fast_csum,
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
