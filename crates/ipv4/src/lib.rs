//! IPv4, with Ethernet, ARP and neighbours, routing and ICMP.
//!
//! Mirrors `net/ethernet`, `net/core/neighbour.c` and `net/ipv4/{arp,route,fib_*,ip_input,ip_output,ip_fragment,icmp,protocol,af_inet}.c`.
//!
//! It will hold `eth_type_trans`, ARP and the neighbour cache with NUD
//! states, the FIB with longest-prefix match, `ip_rcv` and `ip_local_deliver`
//! with reassembly, the `NetProtocol` registry (`inet_add_protocol`),
//! `ip_queue_xmit` and `ip_output` with fragmentation, and ICMP.
//!
//! This crate is filled by issue 5; until then it holds only this
//! description.
#![forbid(unsafe_code)]
