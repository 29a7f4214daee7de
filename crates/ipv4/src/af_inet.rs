//! Bringing IPv4 up on a host: the packet types and the ICMP protocol.
//!
//! Mirrors `inet_init()` in `net/ipv4/af_inet.c` (with `arp_init()` of
//! `net/ipv4/arp.c` and `ip_init()`): the parts that register handlers.
//! The per-host state itself is built by [`Ipv4Net::new`](crate::Ipv4Net::new).
//!
//! ```text
//!  inet_init(ctx)
//!    ├─ inet_add_protocol(icmp_protocol, IPPROTO_ICMP)
//!    ├─ dev_add_pack(ip_packet_type)   ETH_P_IP  → ip_rcv
//!    ├─ dev_add_pack(arp_packet_type)  ETH_P_ARP → arp_rcv
//!    └─ arp_tbl: start the periodic neighbour GC (neigh_table_init)
//!  transports then call ctx.ipv4().inet_add_protocol(…, IPPROTO_UDP / IPPROTO_TCP)
//! ```

use std::sync::Arc;

use netcore::Errno;
use softnet::{PacketType, SoftnetContext};
use wire::IpProtocol;

use crate::arp::ArpRcv;
use crate::context::Ipv4Context;
use crate::icmp_rcv::IcmpProtocol;
use crate::ip_input::IpRcv;

/// Registers IPv4 on the host of `ctx`: ICMP as protocol 1, `ip_rcv` for
/// `ETH_P_IP` and `arp_rcv` for `ETH_P_ARP` with `dev_add_pack`, and arms
/// the ARP table's garbage collection on this CPU's timers.
///
/// Mirrors `inet_init()`. Call it once per host, after building the
/// [`Ipv4Net`](crate::Ipv4Net) the context reaches, from the CPU that will
/// run the neighbour GC timer.
///
/// # Errors
///
/// [`Errno::Busy`] when ICMP is already registered (a second call).
pub fn inet_init<C: Ipv4Context>(ctx: &mut C) -> Result<(), Errno> {
    let net = Arc::clone(ctx.ipv4());
    net.inet_add_protocol(Arc::new(IcmpProtocol), IpProtocol::Icmp.into())?;
    let softnet = Arc::clone(ctx.softnet_data().softnet());
    let ip: Arc<dyn PacketType<C>> = Arc::new(IpRcv::new(Arc::clone(&net)));
    softnet.dev_add_pack(ip);
    let arp: Arc<dyn PacketType<C>> = Arc::new(ArpRcv::new(Arc::clone(&net)));
    softnet.dev_add_pack(arp);
    let now = SoftnetContext::now(ctx);
    net.arp_tbl().lock().start_gc(ctx, now);
    tracing::info!(target: "netstack::ipv4", "inet_init");
    Ok(())
}
