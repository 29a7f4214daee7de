//! Per-CPU receive and transmit processing of the device-agnostic layer.
//!
//! Mirrors `net/core/dev.c` (with `net/core/net-procfs.c`, the RPS/XPS
//! parts of `net/core/net-sysfs.c` and the `qdisc_run` side of
//! `net/sched/sch_generic.c`): what happens to a packet between a NIC's NAPI
//! poll and a protocol handler, and between a protocol and the driver.
//!
//! Contents, by the kernel file each mirrors:
//!
//! - `dev.c` ([`dev`](crate::net_rx_action) and friends): [`SoftnetContext`],
//!   the host-wide [`Softnet`] and the per-CPU [`SoftnetData`];
//!   [`net_rx_action`], [`netif_receive_skb`], [`netif_rx`];
//!   [`dev_queue_xmit`], [`netdev_pick_tx`], [`net_tx_action`],
//!   [`netif_tx_wake_queue`], [`netif_schedule_queue`], [`handle_timer`].
//! - the backlog (`enqueue_to_backlog()`, `process_backlog()`):
//!   [`Softnet::enqueue_to_backlog`] and the per-CPU backlog NAPI.
//! - RPS/XPS: [`CpuMask`], [`RpsMap`], [`reciprocal_scale`],
//!   [`skb_get_hash`], [`skb_tx_hash`].
//! - `packet_type`: [`PacketType`], [`PtypeMatch`], [`NetRx`],
//!   [`Softnet::dev_add_pack`]; the tc ingress hook [`TcIngress`].
//! - `net_device` and the device table: [`NetDev`], [`DevBase`],
//!   [`dev_open`], [`dev_close`].
//! - `net-procfs.c`: [`Softnet::softnet_stat`], [`SoftnetStat`],
//!   [`Softnet::ptype_show`].
//! - `sch_generic.c`: [`dev_tx_weight`] and the qdisc run loop.
//! - `validate_xmit_skb()`: software GSO runs on the way to the driver
//!   for a device without TSO, with netcore's [`skb_gso_segment`],
//!   [`skb_gso_ok`], [`netif_needs_gso`], [`tcp4_gso_segment`] and
//!   [`GsoError`] (re-exported here).
//! - a pcap tap: [`PcapTap`], [`PcapFilter`].
//!
//! Seams: it consumes `napi` (poll lists, [`napi::napi_poll`]), `irq`
//! (`Softirqs` to raise `NET_RX`/`NET_TX`), `qdisc` (the `Qdisc` trait) and
//! `netcore` (`NetDevice`, `SkBuff`, sysctls, timers); it offers
//! [`PacketType`] to the protocols above and implements `napi`'s
//! `GroReceive` for the NAPIs below.
//!
//! # Example
//!
//! A one-CPU host: a context type, an IPv4 handler and a tap registered
//! with `dev_add_pack`, one packet received through `netif_rx` and the
//! `NET_RX` softirq:
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use irq::{CpuWakeup, SoftirqNr, Softirqs};
//! use napi::PollLists;
//! use netcore::{ETH_P_IP, Instant, PagePool, PagePoolParams, SkBuff, Sysctl, TimerContext};
//! use softnet::{NetRx, PacketType, PtypeMatch, Softnet, SoftnetContext, SoftnetData,
//!               SoftnetTimer, net_rx_action, netif_rx};
//!
//! // The host's per-CPU context: every layer's context trait is implemented on it.
//! struct Cpu { sd: SoftnetData<Cpu> }
//! impl TimerContext<SoftnetTimer> for Cpu {
//!     fn arm_timer(&mut self, _: SoftnetTimer, _: Instant) -> Option<Instant> { None }
//!     fn cancel_timer(&mut self, _: SoftnetTimer) -> Option<Instant> { None }
//!     fn timer_pending(&self, _: SoftnetTimer) -> Option<Instant> { None }
//! }
//! impl SoftnetContext for Cpu {
//!     fn now(&self) -> Instant { Instant::ZERO }
//!     fn softnet_data(&mut self) -> &mut SoftnetData<Cpu> { &mut self.sd }
//! }
//!
//! // A protocol handler, generic over the context as ipv4's `ip_rcv` is.
//! struct IpRcv(AtomicU64);
//! impl<C: SoftnetContext> PacketType<C> for IpRcv {
//!     fn ptype(&self) -> PtypeMatch { PtypeMatch::Type(ETH_P_IP) }
//!     fn func(&self, skb: SkBuff, _ctx: &mut C) -> NetRx {
//!         assert_eq!(skb.data()[0], 0x45);
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!         NetRx::Success
//!     }
//!     fn name(&self) -> &str { "ip_rcv" }
//! }
//!
//! let softirqs = Arc::new(Softirqs::new(1, CpuWakeup::new()).unwrap());
//! let net = Softnet::<Cpu>::new(PollLists::new(1)?, softirqs.clone(), Arc::new(Sysctl::new()))?;
//! let ip = Arc::new(IpRcv(AtomicU64::new(0)));
//! net.dev_add_pack(ip.clone());
//! let mut cpu0 = Cpu { sd: net.softnet_data(0)? };
//!
//! // A received IPv4 packet, after the driver's eth_type_trans().
//! let pool = PagePool::new(PagePoolParams::default()).unwrap();
//! let mut skb = SkBuff::from_slice(&pool, 64, &[0x45; 20]).unwrap();
//! skb.protocol = ETH_P_IP;
//! assert_eq!(netif_rx(&mut cpu0, skb), NetRx::Success); // onto CPU 0's backlog
//!
//! // CPU 0's runner: NET_RX is pending; net_rx_action polls the backlog NAPI.
//! assert_ne!(softirqs.local_softirq_pending(0).unwrap() & SoftirqNr::NetRx.mask(), 0);
//! net_rx_action(&mut cpu0);
//! assert_eq!(ip.0.load(Ordering::Relaxed), 1);
//! assert!(net.softnet_stat().starts_with("00000001 00000000 00000000"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod backlog;
mod dev;
mod gso;
#[cfg(all(test, loom))]
mod loom_tests;
mod net_procfs;
mod netdevice;
mod pcap;
mod ptype;
mod rps;
mod sch_generic;
mod sync;
#[cfg(all(test, not(loom)))]
mod tests;
#[cfg(all(any(test, feature = "testutils"), not(loom)))]
pub mod testutil;

pub use dev::{
    Softnet, SoftnetContext, SoftnetData, SoftnetError, SoftnetTimer, dev_kfree_skb_irq,
    dev_queue_xmit, handle_timer, net_rx_action, net_rx_action_in, net_tx_action, netdev_pick_tx,
    netif_receive_skb, netif_rx, netif_schedule_queue, netif_tx_wake_queue,
};
pub use net_procfs::SoftnetStat;
pub use netcore::{
    GsoError, netif_needs_gso, reciprocal_scale, skb_get_hash, skb_gso_ok, skb_gso_segment,
    tcp4_gso_segment,
};
pub use netdevice::{DevBase, IFNAMSIZ, NetDev, dev_close, dev_open};
pub use pcap::{
    LINKTYPE_ETHERNET, PCAP_MAGIC_NSEC, PCAP_SNAPLEN, PcapFilter, PcapFilterError, PcapTap,
    PcapWriter,
};
pub use ptype::{NetRx, PacketType, PtypeMatch, TcIngress, TcVerdict};
pub use rps::{CpuMask, RpsMap, skb_tx_hash};
pub use sch_generic::dev_tx_weight;

// The lower-layer types in softnet's own signatures, re-exported so that a
// layer above (ipv4) can name them without depending on those crates.
pub use irq::{CpuWakeup, SoftirqNr, Softirqs};
pub use napi::PollLists;
pub use qdisc::NetXmit;
