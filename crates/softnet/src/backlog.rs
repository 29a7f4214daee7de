//! The per-CPU backlog: `input_pkt_queue`, which any CPU may feed, and the
//! backlog NAPI that drains it on its own CPU.
//!
//! Mirrors `enqueue_to_backlog()` and `process_backlog()` of
//! `net/core/dev.c` and the queue half of `struct softnet_data`.
//!
//! ```text
//!  any CPU                               CPU n (owner)
//!  ───────                               ─────────────
//!  enqueue_to_backlog(skb, n)            net_rx_action
//!    lock input_pkt_queue                  napi_poll(backlog)
//!    empty and backlog idle?                 process_backlog
//!      SCHED backlog, list it on n,            drain process_queue ─► netif_receive_skb_core
//!      raise NET_RX on n (kicks n) ◄──┐        lock input_pkt_queue
//!    push skb                         │        empty? clear SCHED (under the lock)
//!    unlock                           │        else splice it into process_queue
//!                                     └──── the "IPI"
//! ```
//!
//! The invariant that makes the hand-over safe: the backlog NAPI's SCHED
//! bit only changes with the `input_pkt_queue` lock held, so a producer
//! that finds the queue empty and SCHED clear knows the consumer is not
//! about to look again, and schedules it; and a consumer that finds the
//! queue empty clears SCHED before any producer can push. No packet is
//! ever left in the queue with the NAPI idle (checked by the loom model).

use std::collections::VecDeque;

use irq::Softirqs;
use napi::{NapiPoll, NapiPollCtx, NapiStruct};
use netcore::{DropReason, SkBuff, kfree_skb_reason};

use crate::ptype::NetRx;
use crate::sync::{Arc, AtomicUsize, LocalCounter, Mutex, Ordering};

/// The part of one CPU's `softnet_data` other CPUs touch: the input queue
/// and the counters `/proc/net/softnet_stat` shows.
#[derive(Debug)]
pub(crate) struct BacklogQueue {
    pub(crate) cpu: usize,
    /// `sd->input_pkt_queue`.
    input_pkt_queue: Mutex<VecDeque<SkBuff>>,
    /// Its length, readable without the lock (`skb_queue_len_lockless`).
    input_qlen: AtomicUsize,
    /// The length of the owner's `process_queue`.
    process_qlen: AtomicUsize,
    /// `sd->processed`: packets through `__netif_receive_skb_core` here.
    pub(crate) processed: LocalCounter,
    /// `sd->dropped`: backlog drops (any CPU adds).
    pub(crate) dropped: LocalCounter,
    /// `sd->time_squeeze`.
    pub(crate) time_squeeze: LocalCounter,
    /// `sd->received_rps`: backlog wake-ups sent here by other CPUs.
    pub(crate) received_rps: LocalCounter,
    /// The flow limit's `count` (no flow limit: stays 0).
    pub(crate) flow_limit_count: LocalCounter,
}

impl BacklogQueue {
    pub(crate) fn new(cpu: usize) -> BacklogQueue {
        BacklogQueue {
            cpu,
            input_pkt_queue: Mutex::new(VecDeque::new()),
            input_qlen: AtomicUsize::new(0),
            process_qlen: AtomicUsize::new(0),
            processed: LocalCounter::new(),
            dropped: LocalCounter::new(),
            time_squeeze: LocalCounter::new(),
            received_rps: LocalCounter::new(),
            flow_limit_count: LocalCounter::new(),
        }
    }

    /// `skb_queue_len_lockless(&sd->input_pkt_queue)`.
    pub(crate) fn input_qlen(&self) -> usize {
        self.input_qlen.load(Ordering::Relaxed)
    }

    /// `skb_queue_len_lockless(&sd->process_queue)`.
    pub(crate) fn process_qlen(&self) -> usize {
        self.process_qlen.load(Ordering::Relaxed)
    }
}

/// Queues `skb` on `q`'s CPU's backlog, scheduling its backlog NAPI there
/// (and kicking that CPU) if it was idle.
///
/// Mirrors `enqueue_to_backlog()`: accepted while the queue holds at most
/// `max_backlog` packets (so it can reach `max_backlog + 1`), else counted
/// in the target's `dropped` and freed with [`DropReason::CpuBacklog`].
/// `from_cpu` is the caller's CPU when it has one; a wake-up sent from
/// another CPU counts as `received_rps` on the target (the kernel counts
/// the IPI there).
pub(crate) fn enqueue_to_backlog(
    q: &BacklogQueue,
    backlog: &Arc<NapiStruct>,
    softirqs: &Softirqs,
    skb: SkBuff,
    max_backlog: usize,
    from_cpu: Option<usize>,
) -> NetRx {
    // Cheap early test without the lock, as Linux does.
    if q.input_qlen() > max_backlog {
        return backlog_drop(q, skb);
    }
    let mut input = q.input_pkt_queue.lock();
    let qlen = input.len();
    if qlen > max_backlog {
        drop(input);
        return backlog_drop(q, skb);
    }
    // SCHED only changes under this lock (see the module doc), so reading
    // it first keeps napi_schedule_prep from setting MISSED: Linux uses a
    // plain __test_and_set_bit(NAPI_STATE_SCHED) here for the same reason.
    if qlen == 0 && !backlog.napi_is_scheduled() && backlog.napi_schedule_prep() {
        #[allow(clippy::used_underscore_items)] // the kernel's name
        let listed = napi::__napi_schedule_on(backlog, q.cpu, softirqs);
        debug_assert!(listed.is_ok(), "backlog NAPI of an unknown CPU");
        if from_cpu.is_some_and(|c| c != q.cpu) {
            q.received_rps.inc_shared();
        }
    }
    input.push_back(skb);
    q.input_qlen.store(input.len(), Ordering::Relaxed);
    NetRx::Success
}

fn backlog_drop(q: &BacklogQueue, skb: SkBuff) -> NetRx {
    q.dropped.inc_shared();
    tracing::trace!(target: "netstack::softnet", cpu = q.cpu, reason = "CPU_BACKLOG", "enqueue_to_backlog drop");
    kfree_skb_reason(skb, DropReason::CpuBacklog);
    NetRx::Drop
}

/// The backlog NAPI's poll routine.
///
/// Mirrors `process_backlog()`: hands the packets of `process_queue` up
/// (through the poll context, to `__netif_receive_skb` without RPS), and
/// when it is empty, takes the whole `input_pkt_queue` under its lock, or
/// completes the NAPI under that lock if there is nothing.
pub(crate) struct BacklogPoll {
    q: Arc<BacklogQueue>,
    process_queue: VecDeque<SkBuff>,
}

impl BacklogPoll {
    pub(crate) fn new(q: Arc<BacklogQueue>) -> BacklogPoll {
        BacklogPoll {
            q,
            process_queue: VecDeque::new(),
        }
    }
}

impl NapiPoll for BacklogPoll {
    fn poll(&mut self, napi: &mut NapiPollCtx<'_>, quota: usize) -> usize {
        let mut work = 0;
        loop {
            while let Some(skb) = self.process_queue.pop_front() {
                self.q
                    .process_qlen
                    .store(self.process_queue.len(), Ordering::Relaxed);
                napi.netif_receive_skb(skb);
                work += 1;
                if work >= quota {
                    return work;
                }
            }
            let mut input = self.q.input_pkt_queue.lock();
            if input.is_empty() {
                // Clear SCHED with the lock held: a producer now either saw
                // the packets we took or will see SCHED clear.
                let completed = napi.napi_complete_done(work);
                debug_assert!(completed, "backlog NAPI never has MISSED set");
                return work;
            }
            // skb_queue_splice_tail_init(): process_queue is empty here.
            core::mem::swap(&mut *input, &mut self.process_queue);
            self.q.input_qlen.store(0, Ordering::Relaxed);
            self.q
                .process_qlen
                .store(self.process_queue.len(), Ordering::Relaxed);
        }
    }
}
