//! IPv4, with Ethernet, ARP and neighbours, routing and ICMP.
//!
//! Mirrors `net/ethernet`, `net/core/neighbour.c` and
//! `net/ipv4/{arp,devinet,fib_*,route,ip_input,ip_output,ip_fragment,icmp,protocol,af_inet}.c`.
//!
//! The parts below are sans-IO data structures: each takes an explicit
//! `now`, arms its timers through [`netcore::TimerContext`] with an
//! [`Ipv4Timer`], counts into [`netcore::NetMibs`], reads its knobs from
//! [`netcore::Sysctl`], and returns what must happen (frames to send,
//! packets released or dropped, ICMP errors to emit) instead of doing it.
//! The receive and transmit glue (`ip_rcv`, `ip_output`, `eth_type_trans`,
//! the `NetProtocol` registry) wires them to `softnet`.
//!
//! Table of contents:
//!
//! - addresses and routing: [`InetDevices`] (`devinet.c`), [`FibTrie`]
//!   (`fib_trie.c`), [`Fib`], [`FibConfig`], [`NetnsIpv4`] (`fib_frontend.c`,
//!   `fib_semantics.c`, `route.c`), with `ip addr`/`ip route` listings;
//! - neighbours: [`NeighTable`] (`net/core/neighbour.c`) and the ARP
//!   protocol ([`arp_process`], [`arp_solicit`], [`arp_create`]; `arp.c`);
//! - fragments: [`Ipv4Frags`] (reassembly, `ip_fragment.c` and
//!   `inet_fragment.c`) and [`ip_do_fragment`] (`ip_output.c`);
//! - ICMP: [`icmp_send`], [`icmp_reply`] and the rate limiters
//!   ([`IcmpRateLimit`]; `icmp.c`, `inetpeer.c`);
//! - timers: [`Ipv4Timer`]; randomness: [`Prandom`].
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
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;
mod timers;

pub use af_inet::inet_init;

pub use arp::{
    ArpDecision, ArpFrame, ArpRcv, arp_create, arp_parse, arp_process, arp_rcv, arp_solicit,
    inetdev_send_gratuitous_arp,
};
pub use context::{Ipv4Context, Ipv4Dev, Ipv4Net, LOOPBACK_IFINDEX, LOOPBACK_MTU};
pub use devinet::{IfaFlags, InDevice, InIfaddr, InetDevices, LinkFacts};
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
    ip_queue_xmit, ip_route_output_key,
};
pub use ip_output_frag::{FragmentError, ip_do_fragment};
pub use neighbour::{
    NeighAction, NeighParms, NeighStatistics, NeighTable, NeighUpdateFlags, Neighbour, NudState,
};
pub use protocol::{IcmpErrInfo, IcmpError, NetProtocol};
pub use random::Prandom;
pub use route::{
    Fib, FibAlias, FibConfig, FibNh, FibResult, Flowi4, NetnsIpv4, RT_TABLE_LOCAL, RT_TABLE_MAIN,
    RouteInputError, RouteTable, RtProt, RtScope, Rtable, RtnType,
};
pub use timers::{FragId, Ipv4Timer, NeighId, handle_timer};
