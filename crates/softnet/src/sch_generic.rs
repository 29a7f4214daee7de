//! Running a transmit queue's qdisc: dequeue, hand to the driver, requeue
//! what it refuses, stop at the quota.
//!
//! Mirrors `qdisc_run_begin()`/`qdisc_run_end()` of
//! `include/net/sch_generic.h` and `__qdisc_run()`, `qdisc_restart()`,
//! `dequeue_skb()` and `sch_direct_xmit()` of `net/sched/sch_generic.c`.
//! `dev_queue_xmit` uses [`sch_direct_xmit`] alone for a packet that
//! bypasses an empty qdisc (`TCQ_F_CAN_BYPASS`).
//! The qdisc itself (`Qdisc`, `pfifo_fast`, ...) is the `qdisc` crate's.
//!
//! Locking, as in Linux: the qdisc root lock is held to enqueue and to
//! dequeue, released while the driver transmits (under the device lock),
//! and taken again to requeue. The RUNNING mark (set and cleared under the
//! root lock) keeps a second CPU out of the loop meanwhile; a CPU that
//! enqueues while another runs the qdisc leaves its packet to that CPU.

use std::sync::Arc;

use netcore::{NetdevTx, Sysctl};
use parking_lot::MutexGuard;

use crate::dev::{
    SoftnetContext, SoftnetTimer, dev_hard_start_xmit, dev_hard_start_xmit_list,
    netif_schedule_queue, wait_for_wake,
};
use crate::gso::{skb_xmit_as_is, validate_xmit_skb};
use crate::netdevice::{NetDev, QdiscRoot};
use netcore::SkBuff;

/// The most packets one qdisc run sends before yielding to `NET_TX`.
///
/// Mirrors `dev_tx_weight` = `weight_p * dev_weight_tx_bias` (64 × 1).
pub fn dev_tx_weight(sysctl: &Sysctl) -> usize {
    let w = sysctl.dev_weight() * sysctl.get_int(Sysctl::DEV_WEIGHT_TX_BIAS);
    usize::try_from(w).unwrap_or(64).max(1)
}

/// Takes the RUNNING mark if nobody holds it. Mirrors `qdisc_run_begin()`.
pub(crate) fn qdisc_run_begin(root: &mut QdiscRoot) -> bool {
    if root.running {
        return false;
    }
    root.running = true;
    true
}

/// Runs the qdisc of tx queue `txq` until it is empty, the driver queue
/// stops, the driver is busy or the quota is spent; then clears RUNNING.
/// Called with the root lock held and RUNNING taken.
///
/// Mirrors `__qdisc_run()` (the `_inner` suffix for its underscores) with
/// `qdisc_restart()` and `sch_direct_xmit()`:
/// - a stopped driver queue ends the run; the queue is scheduled again
///   when the driver wakes it;
/// - `NETDEV_TX_BUSY`: the packet is requeued (`dev_requeue_skb()`,
///   counted in `requeues`) and the qdisc rescheduled;
/// - after `dev_tx_weight` packets: rescheduled (`__netif_schedule()`) to
///   finish in `NET_TX`;
/// - a shaping qdisc that holds packets but may not send yet arms
///   [`SoftnetTimer::QdiscWatchdog`] at its `next_event()`.
#[doc(alias = "__qdisc_run")]
pub(crate) fn qdisc_run_inner<'a, C: SoftnetContext>(
    ctx: &mut C,
    dev: &'a Arc<NetDev>,
    txq: u16,
    mut root: MutexGuard<'a, QdiscRoot>,
) {
    // Entered even for the empty run below: the walk of a segment
    // (`netstack::run_tcp_walk`) shows `qdisc_run` after `dev_queue_xmit`.
    let _span = tracing::trace_span!(target: "netstack::softnet", "qdisc_run", ifindex = dev.ifindex(), txq).entered();
    if root.qdisc.idle_bypassable() {
        // A work-conserving qdisc with nothing queued (the run after a
        // bypass, most often): dequeue would find nothing and arm nothing.
        root.running = false;
        return;
    }
    let quota = dev_tx_weight(ctx.softnet_data().softnet().sysctl());
    let mut packets = 0;
    loop {
        if root.deactivated {
            break;
        }
        // dequeue_skb(): nothing while the driver queue is stopped.
        if dev
            .tx_queues()
            .get(txq)
            .is_none_or(netcore::NetdevQueue::is_stopped)
        {
            if root.qdisc.qlen() > 0 {
                wait_for_wake(ctx, dev, txq);
            }
            break;
        }
        let now = ctx.now();
        let Some(skb) = root.qdisc.dequeue(now) else {
            if root.qdisc.qlen() > 0
                && let Some(at) = root.qdisc.next_event()
            {
                ctx.arm_timer(
                    SoftnetTimer::QdiscWatchdog {
                        ifindex: dev.ifindex(),
                        queue: txq,
                    },
                    at,
                );
            }
            break;
        };
        let sent;
        (root, sent) = sch_direct_xmit(ctx, dev, txq, skb, root);
        if !sent {
            break;
        }
        packets += 1;
        if packets >= quota {
            netif_schedule_queue(ctx, dev, txq);
            break;
        }
    }
    root.running = false;
}

/// Hands one packet to the driver with the root lock released, then takes
/// the lock again; returns it and whether the driver took the packet.
/// Called with the root lock held and RUNNING taken.
///
/// Mirrors `sch_direct_xmit()`: `NETDEV_TX_BUSY` (or a stopped driver
/// queue) puts the packet, and after a GSO split the segments behind it,
/// back in the qdisc in order (`dev_requeue_skb()`, counted in
/// `requeues`) and schedules the qdisc on this CPU's `NET_TX`.
pub(crate) fn sch_direct_xmit<'a, C: SoftnetContext>(
    ctx: &mut C,
    dev: &'a Arc<NetDev>,
    txq: u16,
    skb: SkBuff,
    root: MutexGuard<'a, QdiscRoot>,
) -> (MutexGuard<'a, QdiscRoot>, bool) {
    // The root lock is not held while the driver runs.
    drop(root);
    let (ret, rest) = if skb_xmit_as_is(&skb, dev) {
        (dev_hard_start_xmit(ctx, dev, txq, skb), None)
    } else {
        dev_hard_start_xmit_list(ctx, dev, txq, validate_xmit_skb(skb, dev))
    };
    let mut root = dev.txq[usize::from(txq)].root.lock();
    match ret {
        NetdevTx::Ok => (root, true),
        NetdevTx::Busy(skb) => {
            tracing::trace!(target: "netstack::softnet", ifindex = dev.ifindex(), txq, "dev_requeue_skb");
            root.qdisc.requeue(skb);
            for seg in rest.into_iter().flatten() {
                root.qdisc.requeue(seg);
            }
            netif_schedule_queue(ctx, dev, txq);
            (root, false)
        }
    }
}
