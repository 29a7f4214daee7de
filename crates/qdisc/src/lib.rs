//! Queueing disciplines for the transmit path.
//!
//! Mirrors `net/sched`: the [`Qdisc`] trait (Linux's `struct Qdisc_ops`)
//! sits between `dev_queue_xmit()` and the driver. The caller (`softnet`)
//! enqueues with [`Qdisc::enqueue`], runs the qdisc by calling
//! [`Qdisc::dequeue`] until it is empty or its quota is spent, hands each
//! packet to the driver, gives back a packet the driver refused with
//! [`Qdisc::requeue`] (`dev_requeue_skb()`), and arms a timer at
//! [`Qdisc::next_event`] for shaping qdiscs (`qdisc_watchdog`).
//!
//! Contents, by the kernel file each mirrors:
//!
//! - `sch_generic.c`: [`Qdisc`], [`NetXmit`], [`QdiscStats`], the requeue
//!   slot [`GsoSkb`], [`Noqueue`] and the default [`PfifoFast`].
//! - `sch_api.c` and tc's printing: [`format_tc_qdisc_show`],
//!   [`sprint_size`], [`sprint_time`], [`sprint_rate`].
//!
//! ```
//! use netcore::{Instant, PagePool, PagePoolParams, SkBuff};
//! use qdisc::{NetXmit, PfifoFast, Qdisc};
//!
//! let pool = PagePool::new(PagePoolParams::default()).unwrap();
//! let mut q = PfifoFast::new(1000);
//! let mut bulk = SkBuff::from_slice(&pool, 0, &[0u8; 1000]).unwrap();
//! bulk.priority = 2; // TC_PRIO_BULK: band 2
//! let mut ssh = SkBuff::from_slice(&pool, 0, &[0u8; 100]).unwrap();
//! ssh.priority = 6; // TC_PRIO_INTERACTIVE: band 0
//! assert_eq!(q.enqueue(bulk, Instant::ZERO), NetXmit::Success);
//! assert_eq!(q.enqueue(ssh, Instant::ZERO), NetXmit::Success);
//! assert_eq!(q.dequeue(Instant::ZERO).unwrap().len(), 100); // band 0 first
//! assert_eq!(q.stats().backlog, 1000);
//! ```
#![forbid(unsafe_code)]

mod sch_api;
mod sch_generic;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;

pub use sch_api::{format_tc_qdisc_show, sprint_rate, sprint_size, sprint_time};
pub use sch_generic::{
    GsoSkb, NetXmit, Noqueue, PFIFO_FAST_BANDS, PRIO2BAND, PfifoFast, Qdisc, QdiscStats,
    TC_PRIO_MAX, dev_requeue_skb,
};
