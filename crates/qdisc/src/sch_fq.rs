//! Fair Queue packet scheduler: per-socket flows served round robin, each
//! paced by the departure time its packets carry.
//!
//! Mirrors `net/sched/sch_fq.c` (`fq_classify()`, `fq_enqueue()`,
//! `fq_dequeue()`, `fq_check_throttled()`, `fq_flow_set_throttled()`,
//! `fq_gc()`, `fq_reset()`, `fq_init()`/`fq_change()`, `fq_dump()`,
//! `fq_dump_stats()`).
//!
//! ```text
//!  enqueue: skb ─► flow of skb->sk (or of its hash, masked) ─► flow queue
//!           sorted by time_to_send (skb->tstamp, the EDT, or now)
//!  dequeue: new_flows, then old_flows (DRR with `quantum` credit);
//!           a flow whose head is not due yet (time_to_send, or
//!           time_next_packet from its rate) moves to `delayed`,
//!           ordered by time, until fq_check_throttled() releases it.
//! ```
//!
//! TCP stamps each skb with its Earliest Departure Time (`tcp_wstamp_ns`,
//! advanced by the pacing rate); fq holds the packet until then. A socket
//! whose skbs fq sees learns it (`SK_PACING_FQ`, through
//! [`netcore::SkbDestructor::set_pacing_status_fq`]) and stops pacing
//! itself.
//!
//! # Deviations from Linux
//!
//! - One band: no `priomap`/`weights` (6.18's three bands share one DRR
//!   here) and no fast path for an idle qdisc (`fq_fastpath_check()`).
//! - Flows are kept in a hash map keyed on the owning socket
//!   ([`SkBuff::sk_id`]) or, for a packet without one, on its hash masked
//!   by `orphan_mask` (Linux's rb-trees keyed on `skb->sk`, with the
//!   same orphan key); `buckets` is printed but sizes nothing.
//! - No `ce_threshold` marking and no `maxrate` other than `u64::MAX`
//!   unless given; `timer_slack` is printed, the watchdog is exact.

use core::fmt;
use std::collections::{BTreeSet, HashMap, VecDeque};

use netcore::{Duration, Instant, SkBuff, skb_get_hash};

use crate::sch_api::{sprint_rate, sprint_size, sprint_time};
use crate::sch_generic::{GsoSkb, NetXmit, Qdisc, QdiscStats, TC_PRIO_MAX};

/// `TC_PRIO_CONTROL`: packets of this priority bypass the flows
/// (`q->internal`, counted as `highprio`).
const TC_PRIO_CONTROL: u32 = 7;
/// A detached flow with no packet for this long may be freed
/// (`FQ_GC_AGE`, 3 s).
const FQ_GC_AGE: Duration = Duration::from_secs(3);
/// Flows freed at most per garbage collection (`FQ_GC_MAX`).
const FQ_GC_MAX: usize = 8;

/// The parameters of `fq`, as `tc qdisc add ... fq` takes them.
///
/// Mirrors the `TCA_FQ_*` attributes; [`FqParams::for_mtu`] is what
/// `fq_init()` sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FqParams {
    /// Packets held at most (`limit`, 10000).
    pub limit: u32,
    /// Packets one flow may hold (`flow_limit`, 100).
    pub flow_limit: u32,
    /// Bytes a flow may send per round (`quantum`, 2 × `psched_mtu()`).
    pub quantum: u32,
    /// Credit of a new flow (`initial_quantum`, 10 × `psched_mtu()`).
    pub initial_quantum: u32,
    /// Pace flows (`pacing`/`nopacing`, on).
    pub rate_enable: bool,
    /// Largest rate of one flow in bytes per second (`maxrate`,
    /// unlimited: `u64::MAX`).
    pub flow_max_rate: u64,
    /// Flows below this rate (bytes per second) send one packet per round
    /// (`low_rate_threshold`, 550 kbit/s).
    pub low_rate_threshold: u64,
    /// Idle time after which a flow's credit is refilled (`refill_delay`,
    /// 40 ms).
    pub flow_refill_delay: Duration,
    /// Mask of the hash of a packet without a socket (`orphan_mask`,
    /// 1023).
    pub orphan_mask: u32,
    /// log2 of the number of flow buckets (`buckets`, 1024).
    pub buckets_log: u32,
    /// Packets timestamped further than this in the future are dropped or
    /// capped (`horizon`, 10 s).
    pub horizon: Duration,
    /// Drop (true, `horizon_drop`) or cap (`horizon_cap`) such packets.
    pub horizon_drop: bool,
    /// Timer slack in ns (`timer_slack`, 10 µs); printed only.
    pub timer_slack_ns: u64,
}

impl FqParams {
    /// The defaults of `fq_init()` for a device of `mtu` (Ethernet:
    /// `psched_mtu()` = MTU + 14).
    pub fn for_mtu(mtu: u32) -> FqParams {
        let psched_mtu = mtu + crate::ETH_HLEN;
        FqParams {
            limit: 10_000,
            flow_limit: 100,
            quantum: 2 * psched_mtu,
            initial_quantum: 10 * psched_mtu,
            rate_enable: true,
            flow_max_rate: u64::MAX,
            low_rate_threshold: 550_000 / 8,
            flow_refill_delay: Duration::from_millis(40),
            orphan_mask: 1024 - 1,
            buckets_log: 10,
            horizon: Duration::from_secs(10),
            horizon_drop: true,
            timer_slack_ns: 10_000,
        }
    }

    /// Checks the values `fq_change()` refuses: `quantum` must be in
    /// `1..=1 MiB`, `buckets` a power of two from 2 to 256 Ki, `limit`
    /// and `flow_limit` above 0.
    pub fn validate(self) -> Result<FqParams, crate::QdiscError> {
        if self.quantum == 0 || self.quantum > 1 << 20 {
            return Err(crate::QdiscError::BadValue {
                param: "quantum",
                value: self.quantum.to_string(),
                accepts: "1 to 1048576 bytes",
            });
        }
        if !(1..=18).contains(&self.buckets_log) {
            return Err(crate::QdiscError::BadValue {
                param: "buckets",
                value: (1u64 << self.buckets_log.min(63)).to_string(),
                accepts: "a power of two from 2 to 262144",
            });
        }
        if self.limit == 0 || self.flow_limit == 0 {
            return Err(crate::QdiscError::BadValue {
                param: if self.limit == 0 {
                    "limit"
                } else {
                    "flow_limit"
                },
                value: "0".to_owned(),
                accepts: "a packet count above 0",
            });
        }
        Ok(self)
    }
}

impl Default for FqParams {
    fn default() -> FqParams {
        FqParams::for_mtu(1500)
    }
}

/// The extra statistics of `fq`.
///
/// Mirrors `struct tc_fq_qd_stats` (what `tc -s qdisc show` prints below
/// the common counters).
#[doc(alias = "tc_fq_qd_stats")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FqXstats {
    /// Flows freed by garbage collection (`gc_flows`).
    pub gc_flows: u64,
    /// `TC_PRIO_CONTROL` packets sent ahead of the flows
    /// (`highprio_packets`).
    pub highprio_packets: u64,
    /// Times a flow was throttled (`throttled`).
    pub throttled: u64,
    /// Packets dropped because their flow held `flow_limit`
    /// (`flows_plimit`).
    pub flows_plimit: u64,
    /// Packets whose pacing delay was clamped to 1 s (`pkts_too_long`).
    pub pkts_too_long: u64,
    /// Packets dropped beyond the horizon (`horizon_drops`).
    pub horizon_drops: u64,
    /// Packets whose timestamp was capped to the horizon
    /// (`horizon_caps`).
    pub horizon_caps: u64,
    /// Flows known (`flows`).
    pub flows: u32,
    /// Flows with no packet (`inactive_flows`).
    pub inactive_flows: u32,
    /// Flows waiting for their next departure time (`throttled_flows`).
    pub throttled_flows: u32,
    /// Smoothed lateness of releasing throttled flows, ns
    /// (`unthrottle_latency_ns`).
    pub unthrottle_latency_ns: u64,
}

/// Which list a flow is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlowList {
    /// On no list: no packet, or just served empty
    /// (`fq_flow_set_detached()`).
    Detached,
    /// `new_flows`.
    New,
    /// `old_flows`.
    Old,
    /// `delayed`, until `time_next_packet` (`fq_flow_set_throttled()`).
    Throttled,
}

/// One flow. Mirrors `struct fq_flow`.
#[derive(Debug)]
struct FqFlow {
    /// Packets with their `time_to_send` (ns), in that order.
    q: VecDeque<(SkBuff, u64)>,
    credit: i64,
    /// When the flow may send next (ns; 0: at once).
    time_next_packet: u64,
    /// When it was last detached or had a packet added (`f->age`).
    age: Instant,
    list: FlowList,
}

/// The `fq` qdisc.
///
/// Mirrors `struct fq_sched_data` with its ops (`fq_qdisc_ops`).
///
/// ```
/// use netcore::{Duration, Instant, PagePool, PagePoolParams, SkBuff};
/// use qdisc::{Fq, FqParams, NetXmit, Qdisc};
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let mut q = Fq::new(FqParams::default()).unwrap();
/// let now = Instant::ZERO.saturating_add(Duration::from_millis(1));
/// let mut skb = SkBuff::from_slice(&pool, 0, &[0u8; 1000]).unwrap();
/// skb.tstamp = now.saturating_add(Duration::from_micros(500)); // EDT
/// assert_eq!(q.enqueue(skb, now), NetXmit::Success);
/// assert!(q.dequeue(now).is_none()); // not due yet
/// assert_eq!(q.next_event(), Some(now.saturating_add(Duration::from_micros(500))));
/// assert!(q.dequeue(q.next_event().unwrap()).is_some());
/// ```
#[doc(alias = "fq_sched_data")]
#[derive(Debug)]
pub struct Fq {
    p: FqParams,
    flows: HashMap<u64, FqFlow>,
    new_flows: VecDeque<u64>,
    old_flows: VecDeque<u64>,
    /// Throttled flows by (`time_next_packet`, key).
    delayed: BTreeSet<(u64, u64)>,
    /// `time_next_delayed_flow`: the earliest of `delayed` (`u64::MAX`:
    /// none).
    time_next_delayed_flow: u64,
    /// `TC_PRIO_CONTROL` packets (`q->internal`).
    internal: VecDeque<SkBuff>,
    gso: GsoSkb,
    stats: QdiscStats,
    x: FqXstats,
}

impl Fq {
    /// An empty `fq` with `p`, checked as `fq_change()` checks it.
    pub fn new(p: FqParams) -> Result<Fq, crate::QdiscError> {
        Ok(Fq {
            p: p.validate()?,
            flows: HashMap::new(),
            new_flows: VecDeque::new(),
            old_flows: VecDeque::new(),
            delayed: BTreeSet::new(),
            time_next_delayed_flow: u64::MAX,
            internal: VecDeque::new(),
            gso: GsoSkb::new(),
            stats: QdiscStats::default(),
            x: FqXstats::default(),
        })
    }

    /// The parameters.
    pub fn params(&self) -> FqParams {
        self.p
    }

    /// The extra statistics now. Mirrors `fq_dump_stats()`.
    pub fn xstats(&self) -> FqXstats {
        FqXstats {
            flows: self.flows.len() as u32,
            ..self.x
        }
    }

    /// Packets the flow of socket `sk_id` holds now (0 for no flow).
    pub fn flow_qlen(&self, sk_id: usize) -> usize {
        self.flows.get(&(sk_id as u64)).map_or(0, |f| f.q.len())
    }

    /// The flow key: the owning socket, else the masked hash with the low
    /// bit set (never a socket address, which is aligned). Mirrors the
    /// `sk` choice of `fq_classify()`.
    fn flow_key(&self, skb: &mut SkBuff) -> (u64, bool) {
        if let Some(id) = skb.sk_id() {
            (id as u64, true)
        } else {
            let hash = skb_get_hash(skb) & self.p.orphan_mask;
            ((u64::from(hash) << 1) | 1, false)
        }
    }

    /// Frees up to [`FQ_GC_MAX`] detached, empty flows idle for
    /// [`FQ_GC_AGE`]. Mirrors `fq_gc()`.
    fn fq_gc(&mut self, now: Instant) {
        let old: Vec<u64> = self
            .flows
            .iter()
            .filter(|(_, f)| {
                f.list == FlowList::Detached
                    && f.q.is_empty()
                    && now.saturating_duration_since(f.age) >= FQ_GC_AGE
            })
            .map(|(k, _)| *k)
            .take(FQ_GC_MAX)
            .collect();
        for k in old {
            self.flows.remove(&k);
            self.x.gc_flows += 1;
            self.x.inactive_flows = self.x.inactive_flows.saturating_sub(1);
        }
    }

    /// Moves throttled flows that are due back to `old_flows`. Mirrors
    /// `fq_check_throttled()`.
    fn fq_check_throttled(&mut self, now: u64) {
        if self.time_next_delayed_flow > now {
            return;
        }
        let sample = now - self.time_next_delayed_flow;
        let l = &mut self.x.unthrottle_latency_ns;
        *l -= *l >> 3;
        *l += sample >> 3;
        self.time_next_delayed_flow = u64::MAX;
        while let Some(&(t, key)) = self.delayed.first() {
            if t > now {
                self.time_next_delayed_flow = t;
                break;
            }
            self.delayed.pop_first();
            self.x.throttled_flows -= 1;
            if let Some(f) = self.flows.get_mut(&key) {
                f.list = FlowList::Old;
                self.old_flows.push_back(key);
            }
        }
    }

    /// Puts the head flow `key` on `delayed` until `t`. Mirrors
    /// `fq_flow_set_throttled()`.
    fn fq_flow_set_throttled(&mut self, key: u64, t: u64) {
        if let Some(f) = self.flows.get_mut(&key) {
            f.list = FlowList::Throttled;
            f.time_next_packet = t;
        }
        self.delayed.insert((t, key));
        self.x.throttled_flows += 1;
        self.x.throttled += 1;
        self.time_next_delayed_flow = self.time_next_delayed_flow.min(t);
    }

    fn fq_dequeue(&mut self, now: Instant) -> Option<SkBuff> {
        if let Some(skb) = self.internal.pop_front() {
            self.stats.queue_dec(&skb);
            return Some(skb);
        }
        let now_ns = now.as_nanos();
        self.fq_check_throttled(now_ns);
        loop {
            let (key, from_new) = if let Some(&k) = self.new_flows.front() {
                (k, true)
            } else if let Some(&k) = self.old_flows.front() {
                (k, false)
            } else {
                return None;
            };
            let head = if from_new {
                &mut self.new_flows
            } else {
                &mut self.old_flows
            };
            let Some(f) = self.flows.get_mut(&key) else {
                head.pop_front();
                continue;
            };
            if f.credit <= 0 {
                f.credit += i64::from(self.p.quantum);
                head.pop_front();
                f.list = FlowList::Old;
                self.old_flows.push_back(key);
                continue;
            }
            let Some(&(_, time_to_send)) = f.q.front() else {
                head.pop_front();
                // Force a pass through old_flows to prevent starvation.
                if from_new {
                    f.list = FlowList::Old;
                    self.old_flows.push_back(key);
                } else {
                    f.list = FlowList::Detached;
                    f.age = now;
                }
                continue;
            };
            let time_next_packet = time_to_send.max(f.time_next_packet);
            if now_ns < time_next_packet {
                head.pop_front();
                self.fq_flow_set_throttled(key, time_next_packet);
                continue;
            }
            let (skb, _) = f.q.pop_front().expect("head checked above");
            if f.q.is_empty() {
                self.x.inactive_flows += 1;
            }
            self.stats.queue_dec(&skb);
            let plen = skb.len() as u64;
            f.credit -= plen as i64;
            if !self.p.rate_enable {
                return Some(skb);
            }
            // An skb with an EDT was paced by its sender: only a flow
            // maximum applies. Without one, the flow's rate is the
            // qdisc's maximum (the socket's pacing rate is not visible
            // here, see the deviations).
            let rate = self.p.flow_max_rate;
            let mut plen = plen;
            if skb.tstamp == Instant::ZERO {
                if rate <= self.p.low_rate_threshold {
                    f.credit = 0;
                } else {
                    plen = plen.max(u64::from(self.p.quantum));
                    if f.credit > 0 {
                        return Some(skb);
                    }
                }
            }
            if rate != u64::MAX {
                let mut len = plen.saturating_mul(1_000_000_000) / rate.max(1);
                if len > 1_000_000_000 {
                    len = 1_000_000_000;
                    self.x.pkts_too_long += 1;
                }
                if f.time_next_packet != 0 {
                    len -= (len / 2).min(now_ns.saturating_sub(f.time_next_packet));
                }
                f.time_next_packet = now_ns + len;
            }
            return Some(skb);
        }
    }
}

impl Qdisc for Fq {
    fn id(&self) -> &'static str {
        "fq"
    }

    /// Mirrors `fq_enqueue()`: the packet limit, the horizon, the flow
    /// limit, then the packet joins its flow in `time_to_send` order; a
    /// detached flow goes to `new_flows` (its credit refilled after
    /// `refill_delay` idle).
    fn enqueue(&mut self, mut skb: SkBuff, now: Instant) -> NetXmit {
        if self.stats.qlen >= self.p.limit {
            self.stats.drop_skb(skb);
            return NetXmit::Drop;
        }
        let now_ns = now.as_nanos();
        let time_to_send = if skb.tstamp == Instant::ZERO {
            now_ns
        } else {
            let horizon = now_ns.saturating_add(self.p.horizon.as_nanos() as u64);
            if skb.tstamp.as_nanos() > horizon {
                if self.p.horizon_drop {
                    self.x.horizon_drops += 1;
                    self.stats.drop_skb(skb);
                    return NetXmit::Drop;
                }
                self.x.horizon_caps += 1;
                skb.tstamp = Instant::from_nanos(horizon);
            }
            skb.tstamp.as_nanos()
        };
        if skb.priority & TC_PRIO_MAX == TC_PRIO_CONTROL {
            self.x.highprio_packets += 1;
            self.stats.queue_inc(&skb);
            self.internal.push_back(skb);
            return NetXmit::Success;
        }
        let (key, is_sk) = self.flow_key(&mut skb);
        if !self.flows.contains_key(&key) {
            if self.x.inactive_flows as usize > self.flows.len() / 2 {
                self.fq_gc(now);
            }
            self.flows.insert(
                key,
                FqFlow {
                    q: VecDeque::new(),
                    credit: i64::from(self.p.initial_quantum),
                    time_next_packet: 0,
                    age: now,
                    list: FlowList::Detached,
                },
            );
            self.x.inactive_flows += 1;
            if is_sk && self.p.rate_enable {
                skb.set_sk_pacing_status_fq();
            }
        }
        let f = self.flows.get_mut(&key).expect("inserted above");
        if f.q.len() >= self.p.flow_limit as usize {
            self.x.flows_plimit += 1;
            self.stats.drop_skb(skb);
            return NetXmit::Drop;
        }
        if f.list == FlowList::Detached {
            f.list = FlowList::New;
            self.new_flows.push_back(key);
            if now.saturating_duration_since(f.age) > self.p.flow_refill_delay {
                f.credit = f.credit.max(i64::from(self.p.quantum));
            }
        }
        if f.q.is_empty() {
            self.x.inactive_flows -= 1;
        }
        f.age = now;
        // flow_queue_add(): in time_to_send order, ties in arrival order.
        let at = f.q.partition_point(|(_, t)| *t <= time_to_send);
        self.stats.queue_inc(&skb);
        f.q.insert(at, (skb, time_to_send));
        NetXmit::Success
    }

    fn dequeue(&mut self, now: Instant) -> Option<SkBuff> {
        if let Some(skb) = self.gso.dequeue(&mut self.stats) {
            return Some(skb);
        }
        let skb = self.fq_dequeue(now)?;
        self.stats.bstats_update(&skb);
        Some(skb)
    }

    fn peek(&mut self, now: Instant) -> Option<&SkBuff> {
        if self.gso.is_empty() {
            let skb = self.fq_dequeue(now)?;
            self.stats.bstats_update(&skb);
            // Counted as sent when first dequeued; the slot does not count
            // it again.
            self.gso.stash(skb, &mut self.stats);
        }
        self.gso.peek()
    }

    fn requeue(&mut self, skb: SkBuff) {
        self.gso.requeue(skb, &mut self.stats);
    }

    /// Mirrors `fq_reset()`.
    fn reset(&mut self) {
        self.gso.purge(&mut self.stats);
        for skb in self.internal.drain(..) {
            self.stats.queue_dec(&skb);
            netcore::kfree_skb_reason(skb, netcore::DropReason::QueuePurge);
        }
        for (_, f) in self.flows.drain() {
            for (skb, _) in f.q {
                self.stats.queue_dec(&skb);
                netcore::kfree_skb_reason(skb, netcore::DropReason::QueuePurge);
            }
        }
        self.new_flows.clear();
        self.old_flows.clear();
        self.delayed.clear();
        self.time_next_delayed_flow = u64::MAX;
        self.x.inactive_flows = 0;
        self.x.throttled_flows = 0;
    }

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    /// The earliest time a throttled flow may send, when nothing else can
    /// (the `qdisc_watchdog_schedule_range_ns()` of `fq_dequeue()`).
    fn next_event(&self) -> Option<Instant> {
        if !self.gso.is_empty()
            || !self.internal.is_empty()
            || !self.new_flows.is_empty()
            || !self.old_flows.is_empty()
        {
            return None;
        }
        (self.time_next_delayed_flow != u64::MAX)
            .then(|| Instant::from_nanos(self.time_next_delayed_flow))
    }

    /// Mirrors `fq_dump()` with tc's `fq_print_opt()`.
    fn dump(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        let p = &self.p;
        write!(
            f,
            "limit {}p flow_limit {}p buckets {} orphan_mask {} ",
            p.limit,
            p.flow_limit,
            1u32 << p.buckets_log,
            p.orphan_mask
        )?;
        if !p.rate_enable {
            f.write_str("nopacing ")?;
        }
        write!(
            f,
            "quantum {} initial_quantum {} ",
            sprint_size(p.quantum),
            sprint_size(p.initial_quantum)
        )?;
        if p.flow_max_rate != u64::MAX {
            write!(f, "maxrate {} ", sprint_rate(p.flow_max_rate))?;
        }
        write!(
            f,
            "low_rate_threshold {} refill_delay {} timer_slack {} horizon {} {}",
            sprint_rate(p.low_rate_threshold),
            sprint_time(p.flow_refill_delay.as_micros() as u64),
            sprint_time(p.timer_slack_ns / 1000),
            sprint_time(p.horizon.as_micros() as u64),
            if p.horizon_drop {
                "horizon_drop"
            } else {
                "horizon_cap"
            }
        )
    }

    /// Mirrors tc's `fq_print_xstats()`.
    fn dump_stats(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        let x = self.xstats();
        write!(
            f,
            "  flows {} (inactive {} throttled {})",
            x.flows, x.inactive_flows, x.throttled_flows
        )?;
        write!(
            f,
            "\n  gc {} highprio {} throttled {}",
            x.gc_flows, x.highprio_packets, x.throttled
        )?;
        if x.unthrottle_latency_ns != 0 {
            write!(
                f,
                " latency {}",
                sprint_time(x.unthrottle_latency_ns / 1000)
            )?;
        }
        if x.flows_plimit != 0 {
            write!(f, " flows_plimit {}", x.flows_plimit)?;
        }
        if x.pkts_too_long != 0 || x.horizon_drops != 0 || x.horizon_caps != 0 {
            write!(
                f,
                "\n  pkts_too_long {} alloc_errors 0 horizon_drops {} horizon_caps {}",
                x.pkts_too_long, x.horizon_drops, x.horizon_caps
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_tc_qdisc_show;
    use crate::testutil::{pool, skb_hash, skb_len};
    use netcore::SkbDestructor;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// A socket stand-in: counts freed skbs, records `SK_PACING_FQ`.
    #[derive(Default)]
    struct Sk {
        freed: AtomicUsize,
        fq: AtomicBool,
    }
    impl SkbDestructor for Sk {
        fn destruct(&self, _skb: &SkBuff) {
            self.freed.fetch_add(1, Ordering::Relaxed);
        }
        fn set_pacing_status_fq(&self) {
            self.fq.store(true, Ordering::Relaxed);
        }
    }

    fn t(us: u64) -> Instant {
        Instant::ZERO.saturating_add(Duration::from_micros(us))
    }

    fn sk_skb(pool: &netcore::PagePool, sk: &Arc<Sk>, len: usize, edt: Instant) -> SkBuff {
        let mut skb = skb_len(pool, len);
        skb.set_destructor(Arc::clone(sk) as Arc<dyn SkbDestructor>);
        skb.tstamp = edt;
        skb
    }

    #[test]
    fn edt_packets_leave_at_their_timestamps_and_tell_the_socket() {
        let pool = pool();
        let mut q = Fq::new(FqParams::default()).unwrap();
        let sk = Arc::new(Sk::default());
        // Paced at 1500 bytes per 100 µs (120 Mbit/s).
        for i in 0..5u64 {
            let skb = sk_skb(&pool, &sk, 1500, t(1000 + i * 100));
            assert_eq!(q.enqueue(skb, t(1000)), NetXmit::Success);
        }
        assert!(
            sk.fq.load(Ordering::Relaxed),
            "fq_classify sets SK_PACING_FQ"
        );
        let mut left = Vec::new();
        let mut now = t(1000);
        while q.qlen() > 0 {
            if let Some(skb) = q.dequeue(now) {
                left.push((now, skb.tstamp));
            } else {
                now = q.next_event().expect("a throttled flow has a time");
            }
        }
        assert_eq!(left.len(), 5);
        for (i, (at, edt)) in left.iter().enumerate() {
            assert_eq!(*at, t(1000 + i as u64 * 100), "departure {i}");
            assert_eq!(at, edt);
        }
        assert_eq!(q.xstats().throttled, 4);
        assert_eq!(q.stats().packets, 5);
    }

    #[test]
    fn flows_share_by_quantum_and_a_flow_is_limited() {
        let pool = pool();
        let mut q = Fq::new(FqParams {
            initial_quantum: 3028,
            ..FqParams::default()
        })
        .unwrap();
        let a = Arc::new(Sk::default());
        let b = Arc::new(Sk::default());
        for _ in 0..100 {
            assert_eq!(
                q.enqueue(sk_skb(&pool, &a, 1514, Instant::ZERO), t(0)),
                NetXmit::Success
            );
        }
        // The 101st packet of one flow is over flow_limit.
        assert_eq!(
            q.enqueue(sk_skb(&pool, &a, 1514, Instant::ZERO), t(0)),
            NetXmit::Drop
        );
        assert_eq!(a.freed.load(Ordering::Relaxed), 1);
        assert_eq!(q.xstats().flows_plimit, 1);
        for _ in 0..10 {
            let _ = q.enqueue(sk_skb(&pool, &b, 1514, Instant::ZERO), t(0));
        }
        let ida = {
            let s = sk_skb(&pool, &a, 1, Instant::ZERO);
            s.sk_id().unwrap()
        };
        // Round robin by 2 × 1514 bytes: in 20 packets, b gets 10.
        let mut from_a = 0;
        for _ in 0..20 {
            let skb = q.dequeue(t(0)).unwrap();
            if skb.sk_id() == Some(ida) {
                from_a += 1;
            }
        }
        assert_eq!(from_a, 10);
        assert_eq!(q.flow_qlen(ida), 90);
        assert_eq!(q.xstats().flows, 2);
    }

    #[test]
    fn horizon_drops_and_caps() {
        let pool = pool();
        let mut q = Fq::new(FqParams::default()).unwrap();
        let mut skb = skb_hash(&pool, 100, 7);
        skb.tstamp = t(11_000_000);
        assert_eq!(q.enqueue(skb, t(0)), NetXmit::Drop);
        assert_eq!(q.xstats().horizon_drops, 1);
        let mut q = Fq::new(FqParams {
            horizon_drop: false,
            ..FqParams::default()
        })
        .unwrap();
        let mut skb = skb_hash(&pool, 100, 7);
        skb.tstamp = t(11_000_000);
        assert_eq!(q.enqueue(skb, t(0)), NetXmit::Success);
        assert!(q.dequeue(t(9_999_999)).is_none());
        assert!(q.dequeue(t(10_000_000)).is_some());
        assert_eq!(q.xstats().horizon_caps, 1);
    }

    #[test]
    fn maxrate_paces_a_flow_without_timestamps() {
        let pool = pool();
        // 1,000,000 bytes/s: a 1000-byte packet every ms (quantum 1000).
        let mut q = Fq::new(FqParams {
            flow_max_rate: 1_000_000,
            quantum: 1000,
            initial_quantum: 1000,
            ..FqParams::default()
        })
        .unwrap();
        for _ in 0..4 {
            let _ = q.enqueue(skb_hash(&pool, 1000, 3), t(0));
        }
        let mut times = Vec::new();
        let mut now = t(0);
        while q.qlen() > 0 {
            match q.dequeue(now) {
                Some(_) => times.push(now),
                None => now = q.next_event().unwrap(),
            }
        }
        assert_eq!(times, vec![t(0), t(1000), t(2000), t(3000)]);
    }

    #[test]
    fn control_packets_go_first_and_tc_prints_fq() {
        let pool = pool();
        let mut q = Fq::new(FqParams::default()).unwrap();
        let _ = q.enqueue(skb_hash(&pool, 500, 1), t(0));
        let mut ctl = skb_hash(&pool, 60, 2);
        ctl.priority = 7;
        let _ = q.enqueue(ctl, t(0));
        assert_eq!(q.dequeue(t(0)).unwrap().len(), 60);
        let s = format_tc_qdisc_show(Some("eth0"), &q);
        assert!(
            s.starts_with(
                "qdisc fq 0: dev eth0 root refcnt 2 limit 10000p flow_limit 100p buckets 1024 \
                 orphan_mask 1023 quantum 3028b initial_quantum 15140b low_rate_threshold 550Kbit \
                 refill_delay 40ms timer_slack 10us horizon 10s horizon_drop\n"
            ),
            "{s}"
        );
        assert!(
            s.contains("  flows 1 (inactive 0 throttled 0)\n  gc 0 highprio 1 throttled 0"),
            "{s}"
        );
        q.reset();
        assert_eq!(q.qlen(), 0);
    }
}
