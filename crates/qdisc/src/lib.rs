//! Queueing disciplines for the transmit path.
//!
//! Mirrors `net/sched`: the [`Qdisc`] trait (Linux's `struct Qdisc_ops`)
//! sits between `dev_queue_xmit()` and the driver. The caller (`softnet`)
//! enqueues with [`Qdisc::enqueue`], runs the qdisc by calling
//! [`Qdisc::dequeue`] until it is empty or its quota is spent, hands each
//! packet to the driver, gives back a packet the driver refused with
//! [`Qdisc::requeue`] (`dev_requeue_skb()`), and arms a timer at
//! [`Qdisc::next_event`] for shaping qdiscs (`qdisc_watchdog`). A device
//! whose qdisc says `!has_enqueue()` ([`Noqueue`]) is driven directly.
//!
//! Contents, by the kernel file each mirrors:
//!
//! - `sch_generic.c`: [`Qdisc`], [`NetXmit`], [`QdiscStats`], the requeue
//!   slot [`GsoSkb`], [`Noqueue`] and the default [`PfifoFast`].
//! - `sch_fifo.c`: [`Fifo`] (`pfifo`, `bfifo`).
//! - `sch_fq.c`: [`Fq`] (pacing by the skbs' departure times).
//! - `sch_fq_codel.c` on `codel.h`/`codel_impl.h`: [`FqCodel`] on the
//!   CoDel pieces of [`codel`].
//! - `sch_tbf.c`: [`Tbf`].
//! - `sch_api.c` and tc's printing: [`qdisc_create`],
//!   [`qdisc_create_dflt`], [`qdisc_graft`], [`format_tc_qdisc_show`].
//!
//! ```
//! use netcore::{Instant, PagePool, PagePoolParams, SkBuff};
//! use qdisc::{NetXmit, QdiscDev, format_tc_qdisc_show, qdisc_create_dflt};
//!
//! let pool = PagePool::new(PagePoolParams::default()).unwrap();
//! let mut q = qdisc_create_dflt("pfifo_fast", &QdiscDev::default()).unwrap();
//! let mut bulk = SkBuff::from_slice(&pool, 0, &[0u8; 1000]).unwrap();
//! bulk.priority = 2; // TC_PRIO_BULK: band 2
//! let mut ssh = SkBuff::from_slice(&pool, 0, &[0u8; 100]).unwrap();
//! ssh.priority = 6; // TC_PRIO_INTERACTIVE: band 0
//! assert_eq!(q.enqueue(bulk, Instant::ZERO), NetXmit::Success);
//! assert_eq!(q.enqueue(ssh, Instant::ZERO), NetXmit::Success);
//! assert_eq!(q.dequeue(Instant::ZERO).unwrap().len(), 100); // band 0 first
//! assert!(format_tc_qdisc_show(None, q.as_ref()).contains(" Sent 100 bytes 1 pkt "));
//! ```
#![forbid(unsafe_code)]

pub mod codel;
mod sch_api;
mod sch_fifo;
mod sch_fq;
mod sch_fq_codel;
mod sch_generic;
mod sch_tbf;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;

pub use netcore::{reciprocal_scale, skb_get_hash};
pub use sch_api::{
    QDISC_KINDS, QdiscDev, QdiscError, QdiscGraft, format_tc_qdisc_show, qdisc_create,
    qdisc_create_dflt, qdisc_graft, sprint_rate, sprint_size, sprint_time,
};
pub use sch_fifo::{BFIFO_DEFAULT_LIMIT, ETH_HLEN, Fifo, FifoLimit};
pub use sch_fq::{Fq, FqParams, FqXstats};
pub use sch_fq_codel::{
    FQ_CODEL_MAX_FLOWS, FQ_CODEL_QUANTUM_MAX, FQ_CODEL_QUANTUM_MIN, FqCodel, FqCodelParams,
    FqCodelXstats,
};
pub use sch_generic::{
    GsoSkb, NetXmit, Noqueue, PFIFO_FAST_BANDS, PRIO2BAND, PfifoFast, Qdisc, QdiscStats,
    TC_PRIO_MAX, dev_requeue_skb,
};
pub use sch_tbf::{Tbf, TbfParams, psched_l2t_ns};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
