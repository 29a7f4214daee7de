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
//! - a pcap tap: [`PcapTap`], [`PcapFilter`].
//!
//! Seams: it consumes `napi` (poll lists, [`napi::napi_poll`]), `irq`
//! (`Softirqs` to raise `NET_RX`/`NET_TX`), `qdisc` (the `Qdisc` trait) and
//! `netcore` (`NetDevice`, `SkBuff`, sysctls, timers); it offers
//! [`PacketType`] to the protocols above and implements `napi`'s
//! `GroReceive` for the NAPIs below. See the README for a whole example.
#![forbid(unsafe_code)]

mod backlog;
mod dev;
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
    dev_queue_xmit, handle_timer, net_rx_action, net_tx_action, netdev_pick_tx, netif_receive_skb,
    netif_rx, netif_schedule_queue, netif_tx_wake_queue,
};
pub use net_procfs::SoftnetStat;
pub use netdevice::{DevBase, IFNAMSIZ, NetDev, dev_close, dev_open};
pub use pcap::{
    LINKTYPE_ETHERNET, PCAP_MAGIC_NSEC, PCAP_SNAPLEN, PcapFilter, PcapFilterError, PcapTap,
    PcapWriter,
};
pub use ptype::{NetRx, PacketType, PtypeMatch, TcIngress, TcVerdict};
pub use rps::{CpuMask, RpsMap, reciprocal_scale, skb_get_hash, skb_tx_hash};
pub use sch_generic::dev_tx_weight;
