//! Zero-copy packet formats: Ethernet, ARP, IPv4, ICMPv4, UDP and TCP.
//!
//! Mirrors `include/uapi/linux/{if_ether,if_arp,ip,icmp,udp,tcp}.h` and
//! `net/core/flow_dissector.c`.
#![forbid(unsafe_code)]
