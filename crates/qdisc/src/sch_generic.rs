//! The qdisc contract, its statistics, the requeue slot, and the two
//! qdiscs every device can have without configuration: `noqueue` and
//! `pfifo_fast`.
//!
//! Mirrors `include/net/sch_generic.h` (`struct Qdisc_ops`, `struct Qdisc`,
//! `qdisc_bstats_update()`, `qdisc_qstats_backlog_inc()`) and
//! `net/sched/sch_generic.c` (`dev_requeue_skb()`, `dequeue_skb()`,
//! `qdisc_reset()`, `noqueue_qdisc_ops`, `pfifo_fast_ops`).
//!
//! # Drops
//!
//! A qdisc that refuses or evicts a packet frees it itself with
//! [`kfree_skb_reason`]`(skb, DropReason::QdiscDrop)` and counts it in
//! [`QdiscStats::drops`]; the caller learns of it from the [`NetXmit`]
//! verdict. This is what Linux does: `qdisc_drop()` puts the skb on the
//! `to_free` list and `__dev_xmit_skb()` frees that list with
//! `SKB_DROP_REASON_QDISC_DROP` right after the enqueue returns.
//!
//! # Deviations from Linux
//!
//! - One drop reason, [`DropReason::QdiscDrop`], for every qdisc drop
//!   (netcore does not carry 6.18's finer `QDISC_OVERLIMIT`,
//!   `QDISC_CONGESTED`, ... reasons). Packets freed by [`Qdisc::reset`] use
//!   [`DropReason::QueuePurge`] and are not counted as drops, as Linux's
//!   `qdisc_reset()` does not count them.
//! - `TCQ_F_CAN_BYPASS` is a method, [`Qdisc::can_bypass`], rather than a
//!   flag word; `pfifo_fast` and the FIFOs answer as Linux sets the flag.
//! - No per-CPU statistics (`TCQ_F_CPUSTATS`): one owner holds the qdisc
//!   behind its root lock, so plain counters suffice.

use core::fmt;
use std::collections::VecDeque;

use netcore::{DEFAULT_TX_QUEUE_LEN, DropReason, Instant, SkBuff, kfree_skb_reason};

/// What [`Qdisc::enqueue`] did with a packet.
///
/// Mirrors the `NET_XMIT_*` codes of `include/linux/netdevice.h`.
#[doc(alias = "NET_XMIT_SUCCESS")]
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetXmit {
    /// The packet was queued. `NET_XMIT_SUCCESS`.
    #[doc(alias = "NET_XMIT_SUCCESS")]
    Success,
    /// The packet was dropped (and freed, and counted). `NET_XMIT_DROP`.
    #[doc(alias = "NET_XMIT_DROP")]
    Drop,
    /// Congestion: the qdisc dropped packets of this packet's flow to make
    /// room (this one may have been queued or may have been among them).
    /// `NET_XMIT_CN`.
    #[doc(alias = "NET_XMIT_CN")]
    Cn,
}

impl NetXmit {
    /// The kernel's integer value (`NET_XMIT_SUCCESS` 0, `NET_XMIT_DROP` 1,
    /// `NET_XMIT_CN` 2).
    pub const fn as_raw(self) -> i32 {
        match self {
            NetXmit::Success => 0,
            NetXmit::Drop => 1,
            NetXmit::Cn => 2,
        }
    }
}

/// The counters of one qdisc.
///
/// Mirrors `struct gnet_stats_basic` (`bytes`, `packets`: what was
/// dequeued) and `struct gnet_stats_queue` (`qlen`, `backlog`, `drops`,
/// `requeues`, `overlimits`) of `include/uapi/linux/gen_stats.h`, the two
/// blocks `tc -s qdisc show` prints as `Sent ...` and `backlog ...`.
#[doc(alias = "gnet_stats_basic")]
#[doc(alias = "gnet_stats_queue")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct QdiscStats {
    /// Bytes dequeued (handed towards the driver).
    pub bytes: u64,
    /// Packets dequeued.
    pub packets: u64,
    /// Packets held now, the requeue slot included (`sch->q.qlen`).
    pub qlen: u32,
    /// Bytes held now (`qstats.backlog`).
    pub backlog: u32,
    /// Packets dropped (refused, evicted, or dropped by an AQM).
    pub drops: u32,
    /// Packets the driver handed back busy ([`Qdisc::requeue`]).
    pub requeues: u32,
    /// Times the qdisc was over its limit: a shaper throttled a dequeue
    /// (tbf), a classifier saw an overlimit.
    pub overlimits: u32,
}

impl QdiscStats {
    /// Counts a dequeued packet. Mirrors `qdisc_bstats_update()`: a GSO
    /// skb counts as its `gso_segs` packets, as `bstats_update()` does.
    #[doc(alias = "qdisc_bstats_update")]
    pub fn bstats_update(&mut self, skb: &SkBuff) {
        self.bytes += skb.len() as u64;
        self.packets += if skb.is_gso() {
            u64::from(skb.gso_segs.max(1))
        } else {
            1
        };
    }

    /// Counts a packet entering the queue (qlen and backlog). Mirrors
    /// `qdisc_qstats_backlog_inc()` plus `sch->q.qlen++`.
    #[doc(alias = "qdisc_qstats_backlog_inc")]
    pub fn queue_inc(&mut self, skb: &SkBuff) {
        self.qlen += 1;
        self.backlog = self.backlog.wrapping_add(skb.len() as u32);
    }

    /// Counts a packet leaving the queue. Mirrors
    /// `qdisc_qstats_backlog_dec()` plus `sch->q.qlen--`.
    #[doc(alias = "qdisc_qstats_backlog_dec")]
    pub fn queue_dec(&mut self, skb: &SkBuff) {
        self.qlen -= 1;
        self.backlog = self.backlog.wrapping_sub(skb.len() as u32);
    }

    /// Drops `skb`: counts it and frees it with
    /// [`DropReason::QdiscDrop`]. Mirrors `qdisc_drop()`.
    #[doc(alias = "qdisc_drop")]
    pub fn drop_skb(&mut self, skb: SkBuff) {
        self.drops += 1;
        kfree_skb_reason(skb, DropReason::QdiscDrop);
    }
}

/// The requeue slot: packets the driver handed back busy, sent again
/// before anything else the qdisc holds.
///
/// Mirrors `q->gso_skb` with `dev_requeue_skb()`, the head of
/// `dequeue_skb()` and `qdisc_peek_dequeued()` in `sch_generic.c`. A
/// qdisc embeds one, calls [`GsoSkb::dequeue`] first in its own
/// `dequeue`, and forwards [`Qdisc::requeue`] to [`GsoSkb::requeue`].
/// Packets in the slot count in `qlen`/`backlog`; they were counted in
/// `bytes`/`packets` when first dequeued and are not counted again.
#[doc(alias = "gso_skb")]
#[derive(Debug, Default)]
pub struct GsoSkb {
    skbs: VecDeque<SkBuff>,
}

impl GsoSkb {
    /// An empty slot.
    pub const fn new() -> GsoSkb {
        GsoSkb {
            skbs: VecDeque::new(),
        }
    }

    /// Puts back a packet the driver refused, counting a requeue. Mirrors
    /// `dev_requeue_skb()`.
    #[doc(alias = "dev_requeue_skb")]
    pub fn requeue(&mut self, skb: SkBuff, stats: &mut QdiscStats) {
        stats.requeues += 1;
        stats.queue_inc(&skb);
        self.skbs.push_back(skb);
    }

    /// Keeps a packet a peek had to dequeue, at the front, without counting
    /// a requeue. Mirrors `qdisc_peek_dequeued()`.
    #[doc(alias = "qdisc_peek_dequeued")]
    pub fn stash(&mut self, skb: SkBuff, stats: &mut QdiscStats) {
        stats.queue_inc(&skb);
        self.skbs.push_front(skb);
    }

    /// Takes the first held packet. Mirrors the `gso_skb` branch of
    /// `dequeue_skb()` and `qdisc_dequeue_peeked()`.
    pub fn dequeue(&mut self, stats: &mut QdiscStats) -> Option<SkBuff> {
        let skb = self.skbs.pop_front()?;
        stats.queue_dec(&skb);
        Some(skb)
    }

    /// The first held packet.
    pub fn peek(&self) -> Option<&SkBuff> {
        self.skbs.front()
    }

    /// Whether the slot is empty.
    pub fn is_empty(&self) -> bool {
        self.skbs.is_empty()
    }

    /// Frees every held packet ([`DropReason::QueuePurge`]), uncounted as
    /// drops. Mirrors the `gso_skb` purge of `qdisc_reset()`.
    pub fn purge(&mut self, stats: &mut QdiscStats) {
        while let Some(skb) = self.skbs.pop_front() {
            stats.queue_dec(&skb);
            kfree_skb_reason(skb, DropReason::QueuePurge);
        }
    }
}

/// A queueing discipline: what sits between `dev_queue_xmit()` and the
/// driver's `start_xmit`.
///
/// Mirrors `struct Qdisc_ops` in `include/net/sch_generic.h` (with the
/// per-instance state of `struct Qdisc` inside the implementing type). It
/// is object-safe and `Send`: a device keeps one `Box<dyn Qdisc>` per
/// transmit queue behind its root lock. Time is passed in (`now`); a
/// shaping qdisc says through [`Qdisc::next_event`] when the caller should
/// try again, as Linux arms `qdisc_watchdog_schedule_ns()`.
///
/// The caller's loop (`qdisc_restart()` in Linux):
///
/// ```
/// use netcore::{Instant, PagePool, PagePoolParams, SkBuff};
/// use qdisc::{NetXmit, PfifoFast, Qdisc};
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let mut q: Box<dyn Qdisc> = Box::new(PfifoFast::new(1000));
/// let now = Instant::ZERO;
/// let skb = SkBuff::from_slice(&pool, 0, &[0u8; 60]).unwrap();
/// assert_eq!(q.enqueue(skb, now), NetXmit::Success);
/// let skb = q.dequeue(now).unwrap();
/// // the driver said NETDEV_TX_BUSY: give it back, it goes out first next time
/// q.requeue(skb);
/// assert_eq!(q.stats().requeues, 1);
/// assert_eq!(q.dequeue(now).unwrap().len(), 60);
/// assert_eq!(q.stats().packets, 1); // counted once, when first dequeued
/// ```
#[doc(alias = "Qdisc_ops")]
pub trait Qdisc: Send {
    /// The qdisc's kind, as `tc` prints it (`"pfifo_fast"`, `"fq_codel"`).
    /// Mirrors `Qdisc_ops::id` (`TCA_KIND`).
    #[doc(alias = "kind")]
    fn id(&self) -> &'static str;

    /// Offers a packet. A refused or evicted packet is freed by the qdisc
    /// and counted in [`QdiscStats::drops`]. Mirrors `Qdisc_ops::enqueue`.
    fn enqueue(&mut self, skb: SkBuff, now: Instant) -> NetXmit;

    /// Takes the next packet to send, if one may go at `now`; the requeue
    /// slot comes first. Mirrors `Qdisc_ops::dequeue` behind
    /// `dequeue_skb()`.
    fn dequeue(&mut self, now: Instant) -> Option<SkBuff>;

    /// The packet the next [`Qdisc::dequeue`] would return, without taking
    /// it. A qdisc that can only tell by dequeuing (fq_codel) dequeues and
    /// keeps the packet in its requeue slot, as `qdisc_peek_dequeued()`
    /// does. Mirrors `Qdisc_ops::peek`.
    fn peek(&mut self, now: Instant) -> Option<&SkBuff>;

    /// Takes back a packet the driver refused (`NETDEV_TX_BUSY`); it is the
    /// next one dequeued. Counts a requeue. Mirrors `dev_requeue_skb()`.
    #[doc(alias = "dev_requeue_skb")]
    fn requeue(&mut self, skb: SkBuff);

    /// Frees every held packet ([`DropReason::QueuePurge`], not counted as
    /// drops) and forgets per-flow state; the cumulative counters stay.
    /// Mirrors `qdisc_reset()` with `Qdisc_ops::reset`.
    fn reset(&mut self);

    /// The counters now.
    fn stats(&self) -> QdiscStats;

    /// For a shaping qdisc holding packets: the instant at which
    /// [`Qdisc::dequeue`] can next succeed (may be in the past). `None`
    /// when no timer is needed (work-conserving qdiscs, or empty). Mirrors
    /// the instant passed to `qdisc_watchdog_schedule_ns()`.
    #[doc(alias = "qdisc_watchdog_schedule_ns")]
    fn next_event(&self) -> Option<Instant> {
        None
    }

    /// Whether an empty instance of this qdisc may be bypassed: a packet
    /// offered while it holds nothing and nobody runs it goes straight to
    /// the driver, counted by [`Qdisc::bstats_bypass`] as if it had been
    /// enqueued and dequeued at once. Only a work-conserving FIFO may say
    /// yes (the order and the counters come out the same). Mirrors the
    /// `TCQ_F_CAN_BYPASS` flag that `pfifo_fast_init()` and `fifo_init()`
    /// set; `false` by default, as for every other qdisc.
    #[doc(alias = "TCQ_F_CAN_BYPASS")]
    fn can_bypass(&self) -> bool {
        false
    }

    /// Counts a packet sent past the empty queue in the basic counters
    /// (`bytes`, `packets`: `tc -s qdisc` shows it as sent). Called only
    /// when [`Qdisc::can_bypass`] said yes and [`Qdisc::qlen`] is 0.
    /// Mirrors `qdisc_bstats_update()` on the bypass path of
    /// `__dev_xmit_skb()`; does nothing by default.
    fn bstats_bypass(&mut self, skb: &SkBuff) {
        let _ = skb;
    }

    /// The bypass test and count of a packet offered now, in one call
    /// through a `dyn Qdisc`: when the qdisc may be bypassed
    /// ([`Qdisc::can_bypass`]) and holds nothing ([`Qdisc::qlen`] is 0),
    /// counts `skb` with [`Qdisc::bstats_bypass`] and returns `true`;
    /// otherwise changes nothing and returns `false`. Mirrors the
    /// `(q->flags & TCQ_F_CAN_BYPASS) && !qdisc_qlen(q)` test of
    /// `__dev_xmit_skb()` with its `qdisc_bstats_update()`. Not meant to be
    /// overridden: the default is those three calls, monomorphised for
    /// each qdisc, so only the first goes through the vtable.
    fn bypass(&mut self, skb: &SkBuff) -> bool {
        if self.can_bypass() && self.qlen() == 0 {
            self.bstats_bypass(skb);
            true
        } else {
            false
        }
    }

    /// Whether the qdisc may be bypassed and holds nothing, so that a run
    /// of it would dequeue nothing and arm nothing (the run after a
    /// bypass). One call through a `dyn Qdisc` for
    /// [`Qdisc::qlen`] and [`Qdisc::can_bypass`]; not meant to be
    /// overridden.
    fn idle_bypassable(&self) -> bool {
        self.qlen() == 0 && self.can_bypass()
    }

    /// Whether the qdisc queues at all. `false` only for `noqueue`, whose
    /// device the caller drives directly. Mirrors the `q->enqueue != NULL`
    /// test of `__dev_queue_xmit()`.
    fn has_enqueue(&self) -> bool {
        true
    }

    /// Writes the qdisc's parameters as `tc qdisc show` prints them after
    /// `refcnt 2 ` (e.g. `limit 1000p`). Mirrors `Qdisc_ops::dump` with
    /// tc's `print_qopt`.
    fn dump(&self, f: &mut dyn fmt::Write) -> fmt::Result;

    /// Writes the qdisc's extra statistics as `tc -s qdisc show` prints
    /// them on their own lines (fq_codel's `maxpacket ...`); nothing by
    /// default. Mirrors `Qdisc_ops::dump_stats` with tc's `print_xstats`.
    fn dump_stats(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        let _ = f;
        Ok(())
    }

    /// Packets held now. Mirrors `qdisc_qlen()`.
    fn qlen(&self) -> u32 {
        self.stats().qlen
    }
}

impl fmt::Debug for dyn Qdisc {
    /// The kind and the counters (a qdisc's queue is not printed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qdisc")
            .field("id", &self.id())
            .field("stats", &self.stats())
            .finish()
    }
}

// Every built-in qdisc fits in a `Box<dyn Qdisc>` a device can own and
// move between threads.
const _: fn() = || {
    fn assert_impl<T: Qdisc + Send + 'static>() {}
    fn assert_send<T: Send + ?Sized>() {}
    assert_impl::<Noqueue>();
    assert_impl::<PfifoFast>();
    assert_impl::<crate::Fifo>();
    assert_impl::<crate::FqCodel>();
    assert_impl::<crate::Tbf>();
    assert_impl::<crate::Fq>();
    assert_send::<Box<dyn Qdisc>>();
};

/// Hands a packet the driver refused back to the qdisc. Mirrors
/// `dev_requeue_skb()` in `net/sched/sch_generic.c`.
pub fn dev_requeue_skb(skb: SkBuff, q: &mut dyn Qdisc) {
    q.requeue(skb);
}

/// The qdisc of a device without a queue (loopback, virtual devices): the
/// caller transmits directly.
///
/// Mirrors `noqueue_qdisc_ops` in `net/sched/sch_generic.c`:
/// [`Qdisc::has_enqueue`] is `false`, the twin of `noqueue_init()` clearing
/// `qdisc->enqueue`. A packet offered anyway is dropped and counted, as
/// `noop_enqueue()` does, and the verdict is [`NetXmit::Cn`] as there.
#[doc(alias = "noqueue_qdisc_ops")]
#[derive(Debug, Default)]
pub struct Noqueue {
    stats: QdiscStats,
}

impl Noqueue {
    /// A `noqueue` qdisc.
    pub fn new() -> Noqueue {
        Noqueue::default()
    }
}

impl Qdisc for Noqueue {
    fn id(&self) -> &'static str {
        "noqueue"
    }

    fn enqueue(&mut self, skb: SkBuff, _now: Instant) -> NetXmit {
        self.stats.drop_skb(skb);
        NetXmit::Cn
    }

    fn dequeue(&mut self, _now: Instant) -> Option<SkBuff> {
        None
    }

    fn peek(&mut self, _now: Instant) -> Option<&SkBuff> {
        None
    }

    fn requeue(&mut self, skb: SkBuff) {
        // Nothing can be held: a driver refusing a direct transmit keeps
        // the packet itself in Linux (`dev_queue_xmit` frees it with
        // -ENETDOWN); here it is dropped and counted.
        self.stats.drop_skb(skb);
    }

    fn reset(&mut self) {}

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    fn has_enqueue(&self) -> bool {
        false
    }

    fn dump(&self, _f: &mut dyn fmt::Write) -> fmt::Result {
        Ok(())
    }
}

/// The highest priority value the priomap covers. Mirrors `TC_PRIO_MAX`.
pub const TC_PRIO_MAX: u32 = 15;

/// The number of bands of `pfifo_fast`. Mirrors `PFIFO_FAST_BANDS`.
pub const PFIFO_FAST_BANDS: usize = 3;

/// Which band each priority goes to: band 0 is sent first.
///
/// Mirrors `sch_default_prio2band` (`prio2band`) in
/// `net/sched/sch_generic.c`: `TC_PRIO_INTERACTIVE` (6) and
/// `TC_PRIO_CONTROL` (7) go to band 0, `TC_PRIO_BESTEFFORT` (0) to band 1,
/// `TC_PRIO_BULK` (2) to band 2.
#[doc(alias = "sch_default_prio2band")]
pub const PRIO2BAND: [u8; TC_PRIO_MAX as usize + 1] =
    [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];

/// The default qdisc: three FIFO bands chosen by `skb.priority`, band 0
/// emptied first.
///
/// Mirrors `pfifo_fast_ops` in `net/sched/sch_generic.c`. The band is
/// [`PRIO2BAND`]`[skb.priority & TC_PRIO_MAX]`. Each band holds up to
/// `limit` packets (the device's `txqueuelen`, 1000 by default): since
/// Linux 4.16 each band is an `skb_array` ring of `tx_queue_len` slots, and
/// a packet finding its band's ring full is dropped.
#[doc(alias = "pfifo_fast_ops")]
#[derive(Debug)]
pub struct PfifoFast {
    bands: [VecDeque<SkBuff>; PFIFO_FAST_BANDS],
    limit: u32,
    stats: QdiscStats,
    gso: GsoSkb,
}

impl Default for PfifoFast {
    fn default() -> PfifoFast {
        PfifoFast::new(DEFAULT_TX_QUEUE_LEN)
    }
}

impl PfifoFast {
    /// A `pfifo_fast` whose bands each hold `tx_queue_len` packets
    /// (`pfifo_fast_init()`); 0 is taken as 1, as Linux does for a
    /// zero-length ring.
    #[doc(alias = "pfifo_fast_init")]
    pub fn new(tx_queue_len: u32) -> PfifoFast {
        PfifoFast {
            bands: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            limit: tx_queue_len.max(1),
            stats: QdiscStats::default(),
            gso: GsoSkb::new(),
        }
    }

    /// The per-band packet limit.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Packets held in `band` (0..3), the requeue slot not included.
    pub fn band_len(&self, band: usize) -> usize {
        self.bands.get(band).map_or(0, VecDeque::len)
    }

    /// The band a priority maps to. Mirrors the `prio2band` lookup of
    /// `pfifo_fast_enqueue()`.
    pub fn band_of(priority: u32) -> usize {
        PRIO2BAND[(priority & TC_PRIO_MAX) as usize] as usize
    }
}

impl Qdisc for PfifoFast {
    fn id(&self) -> &'static str {
        "pfifo_fast"
    }

    fn enqueue(&mut self, skb: SkBuff, _now: Instant) -> NetXmit {
        let band = &mut self.bands[PfifoFast::band_of(skb.priority)];
        if band.len() >= self.limit as usize {
            self.stats.drop_skb(skb);
            return NetXmit::Drop;
        }
        self.stats.queue_inc(&skb);
        band.push_back(skb);
        NetXmit::Success
    }

    fn dequeue(&mut self, _now: Instant) -> Option<SkBuff> {
        if let Some(skb) = self.gso.dequeue(&mut self.stats) {
            return Some(skb);
        }
        let skb = self.bands.iter_mut().find_map(VecDeque::pop_front)?;
        self.stats.queue_dec(&skb);
        self.stats.bstats_update(&skb);
        Some(skb)
    }

    fn peek(&mut self, _now: Instant) -> Option<&SkBuff> {
        if let Some(skb) = self.gso.peek() {
            return Some(skb);
        }
        self.bands.iter().find_map(VecDeque::front)
    }

    fn requeue(&mut self, skb: SkBuff) {
        self.gso.requeue(skb, &mut self.stats);
    }

    /// `pfifo_fast_init()` sets `TCQ_F_CAN_BYPASS`.
    fn can_bypass(&self) -> bool {
        true
    }

    fn bstats_bypass(&mut self, skb: &SkBuff) {
        self.stats.bstats_update(skb);
    }

    fn reset(&mut self) {
        self.gso.purge(&mut self.stats);
        for band in &mut self.bands {
            while let Some(skb) = band.pop_front() {
                self.stats.queue_dec(&skb);
                kfree_skb_reason(skb, DropReason::QueuePurge);
            }
        }
    }

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    fn dump(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        write!(f, "bands {PFIFO_FAST_BANDS} priomap")?;
        for band in PRIO2BAND {
            write!(f, " {band}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pool, skb_len, skb_prio};

    const T0: Instant = Instant::ZERO;

    #[test]
    fn prio2band_is_linuxs_priomap() {
        let bands: Vec<usize> = (0..16).map(PfifoFast::band_of).collect();
        assert_eq!(bands, [1, 2, 2, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
        // only the low four bits count
        assert_eq!(PfifoFast::band_of(16 + 6), 0);
        assert_eq!(PfifoFast::band_of(0x0001_0002), 2);
    }

    #[test]
    fn pfifo_fast_empties_band_0_before_1_before_2() {
        let pool = pool();
        let mut q = PfifoFast::new(1000);
        // bulk (band 2), best effort (band 1), interactive (band 0), in
        // that arrival order, two of each, lengths tagging the packets
        for (i, prio) in [2u32, 0, 6, 2, 0, 6].into_iter().enumerate() {
            assert_eq!(
                q.enqueue(skb_prio(&pool, 100 + i, prio), T0),
                NetXmit::Success
            );
        }
        assert_eq!((q.band_len(0), q.band_len(1), q.band_len(2)), (2, 2, 2));
        assert_eq!(q.peek(T0).map(SkBuff::len), Some(102));
        let order: Vec<usize> = std::iter::from_fn(|| q.dequeue(T0))
            .map(|s| s.len())
            .collect();
        assert_eq!(order, [102, 105, 101, 104, 100, 103]);
        let s = q.stats();
        assert_eq!((s.packets, s.bytes, s.qlen, s.backlog), (6, 615, 0, 0));
    }

    #[test]
    fn pfifo_fast_drops_past_the_band_limit_and_counts() {
        let pool = pool();
        let mut q = PfifoFast::new(3);
        for _ in 0..3 {
            assert_eq!(q.enqueue(skb_prio(&pool, 60, 0), T0), NetXmit::Success);
        }
        assert_eq!(q.enqueue(skb_prio(&pool, 60, 0), T0), NetXmit::Drop);
        // another band still has room: the limit is per band (skb_array)
        assert_eq!(q.enqueue(skb_prio(&pool, 70, 7), T0), NetXmit::Success);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog, s.drops), (4, 250, 1));
        assert_eq!(
            pool.stats().inflight(),
            4,
            "the dropped skb went back to the pool"
        );
    }

    #[test]
    fn requeued_packet_goes_first_and_is_counted_once() {
        let pool = pool();
        let mut q = PfifoFast::new(10);
        let _ = q.enqueue(skb_len(&pool, 100), T0);
        let _ = q.enqueue(skb_len(&pool, 200), T0);
        let first = q.dequeue(T0).unwrap();
        dev_requeue_skb(first, &mut q);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog, s.requeues, s.packets), (2, 300, 1, 1));
        assert_eq!(q.peek(T0).map(SkBuff::len), Some(100));
        assert_eq!(q.dequeue(T0).map(|s| s.len()), Some(100));
        assert_eq!(q.dequeue(T0).map(|s| s.len()), Some(200));
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog, s.packets, s.bytes), (0, 0, 2, 300));
    }

    #[test]
    fn reset_frees_everything_without_counting_drops() {
        let pool = pool();
        let mut q = PfifoFast::new(10);
        for prio in [0, 2, 6] {
            let _ = q.enqueue(skb_prio(&pool, 64, prio), T0);
        }
        let skb = q.dequeue(T0).unwrap();
        q.requeue(skb);
        q.reset();
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog, s.drops, s.requeues), (0, 0, 0, 1));
        assert_eq!(pool.stats().inflight(), 0);
        assert!(q.dequeue(T0).is_none());
    }

    #[test]
    fn noqueue_refuses_and_counts() {
        let pool = pool();
        let mut q = Noqueue::new();
        assert!(!q.has_enqueue());
        assert_eq!(q.enqueue(skb_len(&pool, 60), T0), NetXmit::Cn);
        assert!(q.dequeue(T0).is_none());
        assert_eq!(q.stats().drops, 1);
        assert_eq!(pool.stats().inflight(), 0);
        assert!(PfifoFast::default().has_enqueue());
        assert_eq!(
            crate::format_tc_qdisc_show(Some("lo"), &q),
            "qdisc noqueue 0: dev lo root refcnt 2 \n \
             Sent 0 bytes 0 pkt (dropped 1, overlimits 0 requeues 0) \n \
             backlog 0b 0p requeues 0\n"
        );
    }

    #[test]
    fn pfifo_fast_may_be_bypassed_and_counts_a_bypassed_packet_as_sent() {
        let pool = pool();
        let mut q = PfifoFast::new(10);
        assert!(q.can_bypass());
        assert!(!Noqueue::new().can_bypass());
        q.bstats_bypass(&skb_len(&pool, 64));
        let s = q.stats();
        assert_eq!((s.packets, s.bytes, s.qlen, s.backlog), (1, 64, 0, 0));
        assert!(
            crate::format_tc_qdisc_show(None, &q).contains(" Sent 64 bytes 1 pkt "),
            "tc shows a bypassed packet as sent"
        );
    }

    #[test]
    fn net_xmit_values_are_the_kernels() {
        assert_eq!(NetXmit::Success.as_raw(), 0);
        assert_eq!(NetXmit::Drop.as_raw(), 1);
        assert_eq!(NetXmit::Cn.as_raw(), 2);
    }
}
