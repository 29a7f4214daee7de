//! NAPI polling and generic receive offload.
//!
//! Mirrors the NAPI half of `net/core/dev.c` (`netif_napi_add()`,
//! `napi_schedule_prep()`, `__napi_schedule()`, `napi_complete_done()`,
//! `napi_disable()`, `napi_enable()`, `__napi_poll()`), the state bits of
//! `include/linux/netdevice.h`, and GRO for TCP/IPv4 from `net/core/gro.c`,
//! `net/ipv4/af_inet.c` (`inet_gro_receive()`) and `net/ipv4/tcp_offload.c`
//! (`tcp_gro_receive()`).
//!
//! What it owns and the seams it offers:
//!
//! - [`NapiStruct`]: one driver queue's NAPI, shared as `Arc` by the driver
//!   and the poll list; its atomic state word ([`NapiState`]) guarantees one
//!   poller. Created by [`netif_napi_add`], toggled by
//!   [`NapiStruct::napi_enable`] / [`NapiStruct::napi_disable`].
//! - [`NapiPoll`]: the driver's poll routine (the seam drivers implement),
//!   called with a [`NapiPollCtx`] through which it passes packets up
//!   ([`NapiPollCtx::napi_gro_receive`], [`NapiPollCtx::netif_receive_skb`])
//!   and completes ([`NapiPollCtx::napi_complete_done`]).
//! - [`GroReceive`]: the upward seam softnet implements
//!   (`netif_receive_skb`).
//! - [`PollLists`] / [`PollList`]: the per-CPU lists of scheduled NAPIs;
//!   [`napi_schedule`] (hard-IRQ handlers) and [`napi_schedule_on`] (other
//!   contexts) push and raise `NET_RX`; softnet's `net_rx_action` pops and
//!   calls [`napi_poll`].
//!
//! Who may call what from which context is tabled in the docs of
//! [`napi_poll`]'s module (see [`NapiStruct`] and [`napi_poll`]): hard-IRQ
//! handlers schedule, only the owning CPU's runner polls and pops.
//!
//! A tiny driver with three frames pending, polled by a one-CPU loop:
//!
//! ```
//! use irq::{CpuWakeup, Softirqs};
//! use napi::{NapiPoll, NapiPollCtx, PollLists, napi_poll, napi_schedule_on, netif_napi_add};
//! use netcore::{ETH_P_IP, Instant, PagePool, PagePoolParams, SkBuff};
//!
//! struct TinyDriver { pool: PagePool, pending: usize, irq_unmasked: bool }
//!
//! impl NapiPoll for TinyDriver {
//!     fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
//!         let mut work = 0;
//!         while work < budget && self.pending > 0 {
//!             let mut skb = SkBuff::from_slice(&self.pool, 64, &[0x45; 20]).unwrap();
//!             skb.protocol = ETH_P_IP;
//!             napi.netif_receive_skb(skb); // or napi_gro_receive
//!             self.pending -= 1;
//!             work += 1;
//!         }
//!         if work < budget && napi.napi_complete_done(work) {
//!             self.irq_unmasked = true; // igb_ring_irq_enable()
//!         }
//!         work
//!     }
//! }
//!
//! let lists = PollLists::new(1)?;
//! let softirqs = Softirqs::new(1, CpuWakeup::new()).unwrap();
//! let pool = PagePool::new(PagePoolParams::default()).unwrap();
//! let napi = netif_napi_add(&lists, 2, TinyDriver { pool, pending: 3, irq_unmasked: false });
//! napi.napi_enable()?;                                  // ndo_open
//!
//! assert!(napi_schedule_on(&napi, 0, &softirqs)?);      // the IRQ fired
//! let mut delivered: Vec<SkBuff> = Vec::new();          // softnet's netif_receive_skb
//! while let Some(n) = lists.cpu(0)?.pop_front() {       // net_rx_action
//!     let r = napi_poll(&n, 0, &softirqs, &mut delivered, Instant::ZERO)?;
//!     if r.repoll { lists.cpu(0)?.list_add_tail(n); }
//! }
//! assert_eq!(delivered.len(), 3);
//! assert!(!napi.napi_is_scheduled());
//! # Ok::<(), napi::NapiError>(())
//! ```
#![forbid(unsafe_code)]

mod dev;
mod gro;
mod netdevice;
mod sync;
mod tcp_offload;

pub use dev::{
    __napi_schedule, __napi_schedule_on, GroReceive, NapiError, NapiPoll, NapiPollCtx,
    NapiPollResult, NapiStruct, PollList, PollLists, dev_weight, napi_poll, napi_schedule,
    napi_schedule_on, netif_napi_add, netif_napi_add_weight,
};
pub use gro::{GRO_HASH_BUCKETS, GroResult, GroStats, MAX_GRO_SKBS};
pub use netdevice::{MIN_NAPI_ID, NAPI_POLL_WEIGHT, NapiState};

#[cfg(all(test, loom))]
mod loom_tests;
