//! Zero-copy packet formats: Ethernet, ARP, IPv4, ICMPv4, UDP and TCP.
//!
//! Mirrors `include/uapi/linux/{if_ether,if_arp,ip,icmp,udp,tcp}.h` and
//! `net/core/flow_dissector.c`.
#![forbid(unsafe_code)]

mod arp;
mod checksum;
mod error;
mod ethernet;
mod icmp;
mod ipv4;
mod macros;
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
pub use icmp::{
    ICMP_HLEN, IcmpDestUnreach, IcmpHdr, IcmpMessage, IcmpPacket, IcmpRedirect, IcmpRepr,
    IcmpTimeExceeded, IcmpType,
};
pub use ipv4::{
    IP_DF, IP_MF, IP_OFFSET, IPOPT_END, IPOPT_LSRR, IPOPT_NOOP, IPOPT_RA, IPOPT_RR, IPOPT_SSRR,
    IPOPT_TS, IPV4_MAX_OPTLEN, IPV4_MIN_HLEN, IpProtocol, Ipv4Hdr, Ipv4Option, Ipv4OptionsIter,
    Ipv4Packet, Ipv4Repr,
};
pub use udp::{UDP_HLEN, UdpHdr, UdpPacket, UdpRepr};
