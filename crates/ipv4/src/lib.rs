//! IPv4, with Ethernet, ARP and neighbours, routing, forwarding and ICMP.
//!
//! Mirrors `net/ethernet/eth.c`, `net/core/neighbour.c` and
//! `net/ipv4/{af_inet,protocol,ip_input,ip_forward,ip_output,ip_fragment,icmp,arp,devinet,fib_*,route}.c`.
//! `docs/ipv4.md` walks a datagram through it.
//!
//! Seams: below, `softnet` ([`PacketType`](softnet::PacketType) handlers
//! registered with `dev_add_pack`, `dev_queue_xmit`, `netif_rx` for
//! loopback) and `netfilter` (`NF_HOOK` at the five IPv4 hook points);
//! above, transports implement [`NetProtocol`] and call [`ip_queue_xmit`],
//! [`ip_build_and_send_pkt`] or [`ip_local_out`]; the host implements
//! [`Ipv4Context`] on its CPU context and calls [`handle_timer`] from its
//! TIMER softirq.
//!
//! Table of contents:
//!
//! - the host-wide state and the context: [`Ipv4Net`], [`Ipv4Context`],
//!   [`Ipv4Dev`] (`netns_ipv4`); bring-up: [`inet_init`] (`af_inet.c`);
//! - Ethernet: [`eth_type_trans`], [`eth_header`], [`ip_eth_mc_map`];
//! - receive: [`ip_rcv`], [`ip_rcv_core`], [`ip_local_deliver`], [`IpRcv`]
//!   (`ip_input.c`); forwarding: [`ip_forward`] (`ip_forward.c`);
//! - transmit: [`InetSock`], [`ip_queue_xmit`], [`ip_build_and_send_pkt`],
//!   [`ip_local_out`], [`ip_output`], [`ip_route_output_key`] (`ip_output.c`);
//! - protocols: [`NetProtocol`], [`IcmpError`], [`IcmpErrInfo`]
//!   (`protocol.c`);
//! - ICMP: [`icmp_rcv`], [`icmp_send`], [`IcmpProtocol`], and the builders
//!   [`icmp_build_error`], [`icmp_build_reply`] with the rate limiters
//!   [`IcmpRateLimit`] (`icmp.c`, `inetpeer.c`);
//! - ARP and neighbours: [`arp_rcv`], [`ArpRcv`], [`arp_process`],
//!   [`arp_solicit`], [`arp_create`] (`arp.c`), [`NeighTable`]
//!   (`neighbour.c`);
//! - addresses and routing: [`InetDevices`] (`devinet.c`), [`FibTrie`]
//!   (`fib_trie.c`), [`Fib`], [`FibConfig`], [`NetnsIpv4`] with
//!   `ip_route_input`/`ip_route_output_key`, [`Rtable`], [`Flowi4`]
//!   (`fib_frontend.c`, `fib_semantics.c`, `route.c`), with `ip addr`/`ip
//!   route` listings; path MTU exceptions [`FnheTable`] kept by
//!   [`Ipv4Net::ip_rt_update_pmtu`] (`route_exception.rs`);
//! - fragments: [`Ipv4Frags`] (reassembly, `ip_fragment.c` and
//!   `inet_fragment.c`) and [`ip_do_fragment`] (`ip_output.c`);
//! - timers: [`Ipv4Timer`], [`handle_timer`]; randomness: [`Prandom`];
//! - test fixtures (feature `testutils`): the `testutil` module.
//!
//! # Example
//!
//! Two hosts on a fake wire; one pings the other (ARP first):
//!
//! ```
//! use ipv4::testutil::TestNetwork;
//! use netcore::{IcmpMsgDir, IpMib, Sysctl};
//!
//! let mut n = TestNetwork::new();
//! let a = n.add_host(Sysctl::new());
//! let b = n.add_host(Sysctl::new());
//! let ia = n.hosts[a].add_device(1, 1500, "198.18.0.1".parse().unwrap(), 24);
//! let ib = n.hosts[b].add_device(2, 1500, "198.18.0.2".parse().unwrap(), 24);
//! n.connect(&[(a, ia), (b, ib)]);
//! n.hosts[a].ping("198.18.0.2".parse().unwrap(), 1, 1, 56).unwrap();
//! assert_eq!(n.run_until_idle(), 4); // who-has, is-at, echo request, echo reply
//! assert_eq!(n.hosts[b].mib(IpMib::InDelivers), 1);
//! assert_eq!(n.hosts[a].icmpmsg(IcmpMsgDir::In, 0), 1); // InEchoReps
//! ```
#![forbid(unsafe_code)]

mod af_inet;
mod arp;
mod context;
mod devinet;
mod eth;
mod fib_trie;
mod icmp;
mod icmp_rcv;
mod ip_forward;
mod ip_fragment;
mod ip_input;
mod ip_output;
mod ip_output_frag;
mod neighbour;
mod protocol;
mod random;
mod route;
mod route_exception;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;
mod timers;

pub use af_inet::inet_init;

pub use arp::{
    ArpConf, ArpDecision, ArpFrame, ArpRcv, arp_create, arp_parse, arp_process, arp_rcv,
    arp_solicit, inetdev_send_gratuitous_arp,
};
pub use context::{
    Ipv4Context, Ipv4Dev, Ipv4Net, LOOPBACK_IFINDEX, LOOPBACK_MTU, XmitDevCache, ip_nf_reinject,
};
pub use devinet::{
    DevconfKnob, DevconfTarget, IfaFlags, InDevice, InIfaddr, InetDevices, Ipv4Devconf, LinkFacts,
    NetdevEvent, inetdev_event,
};
pub use eth::{eth_header, eth_type_trans, ip_eth_mc_map};
pub use fib_trie::FibTrie;
pub use icmp::{
    ICMP_ERROR_MAX_LEN, IPTOS_PREC_INTERNETCONTROL, IcmpRateLimit, IcmpSendCtx, IcmpSendError,
    icmp_build_error, icmp_build_reply,
};
pub use icmp_rcv::{IcmpProtocol, icmp_rcv, icmp_send};
pub use ip_forward::ip_forward;
pub use ip_fragment::{FragAction, FragKey, Ipv4Frags};
pub use ip_input::{IpRcv, ip_local_deliver, ip_rcv, ip_rcv_core};
pub use ip_output::{
    InetSock, IpPmtudisc, MAX_IP_HEADROOM, ip_build_and_send_pkt, ip_local_out, ip_output,
    ip_queue_xmit, ip_route_output_key, rt_neigh_refresh,
};
pub use ip_output_frag::{FragmentError, ip_do_fragment};
pub use neighbour::{
    NeighAction, NeighHint, NeighParms, NeighStatistics, NeighTable, NeighUpdateFlags, Neighbour,
    NudState,
};
pub use protocol::{IcmpErrInfo, IcmpError, NetProtocol};
pub use random::Prandom;
pub use route::{
    Fib, FibAlias, FibConfig, FibNh, FibResult, Flowi4, NetnsIpv4, RT_TABLE_LOCAL, RT_TABLE_MAIN,
    RouteInputError, RouteTable, RpFilter, RtProt, RtScope, Rtable, RtnType,
};
pub use route_exception::{
    FNHE_MAX, FibNhException, FnheTable, IP_RT_REDIRECT_LOAD, IP_RT_REDIRECT_NUMBER,
    IP_RT_REDIRECT_SILENCE, RedirectPeers,
};
pub use timers::{FragId, Ipv4Timer, NeighId, handle_timer};

/// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
