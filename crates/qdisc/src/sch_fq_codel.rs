//! Fair Queuing with CoDel: flows hashed into buckets, each bucket a CoDel
//! queue, served by deficit round robin with new flows first.
//!
//! Mirrors `net/sched/sch_fq_codel.c` (`fq_codel_classify()`,
//! `fq_codel_enqueue()`, `fq_codel_drop()`, `fq_codel_dequeue()`,
//! `fq_codel_reset()`, `fq_codel_init()`/`fq_codel_change()`,
//! `fq_codel_dump_stats()`) on top of [`crate::codel`].
//!
//! With `ecn` on (the default, printed as `ecn`), CoDel marks the
//! ECN-capable packets it picks CE instead of dropping them (`ecn_mark`);
//! the packets dropped when the qdisc is over its limit are dropped
//! whatever their ECN field, as in Linux.
//!
//! # Deviations from Linux
//!
//! - No `ce_threshold` and no external classifier (`tc filter`); a packet
//!   goes to the flow `skb.priority` names (when its major number is this
//!   qdisc's handle, as in Linux) or to its hash bucket.
//! - The flow hash is [`netcore::skb_get_hash`], whose software hash is a
//!   fixed-key Toeplitz hash rather than `siphash` with a boot-time random
//!   key, so runs are reproducible; the hash is stored in the skb, as Linux
//!   stores it.
//! - No per-class statistics (`tc -s class show`).

use core::fmt;
use std::collections::VecDeque;

use netcore::{DropReason, Instant, SkBuff, kfree_skb_reason, reciprocal_scale, skb_get_hash};

use crate::codel::{
    CodelParams, CodelQueue, CodelSkb, CodelStats, CodelVars, codel_dequeue, codel_get_time,
    codel_time_to_us, us_to_codel_time,
};
use crate::sch_api::{sprint_size, sprint_time};
use crate::sch_generic::{GsoSkb, NetXmit, Qdisc, QdiscStats};

/// The most flows `fq_codel` accepts (`flows` must be `1..=65536`).
pub const FQ_CODEL_MAX_FLOWS: u32 = 65536;
/// The largest quantum `fq_codel` accepts. Mirrors `FQ_CODEL_QUANTUM_MAX`.
pub const FQ_CODEL_QUANTUM_MAX: u32 = 1 << 20;
/// The smallest quantum; smaller values are raised to it.
pub const FQ_CODEL_QUANTUM_MIN: u32 = 256;

/// The parameters of `fq_codel`, as `tc qdisc add ... fq_codel` takes them.
///
/// Mirrors the `TCA_FQ_CODEL_*` attributes; [`FqCodelParams::default`] is
/// what `fq_codel_init()` sets for an Ethernet device of MTU 1500.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FqCodelParams {
    /// Packets held at most before the fattest flow is cut (10240).
    pub limit: u32,
    /// Hash buckets (1024).
    pub flows: u32,
    /// Bytes a flow may send per round (`psched_mtu()`, 1514).
    pub quantum: u32,
    /// CoDel's target delay in µs (5000).
    pub target_us: u32,
    /// CoDel's interval in µs (100000).
    pub interval_us: u32,
    /// Bytes of `truesize` held at most (32 MiB).
    pub memory_limit: u32,
    /// Mark rather than drop (on; see the deviations: drops).
    pub ecn: bool,
    /// Packets cut at most per overlimit enqueue (64).
    pub drop_batch_size: u32,
    /// The device's `psched_mtu()` (MTU + 14): below one such packet of
    /// backlog CoDel does not drop.
    pub mtu: u32,
}

impl Default for FqCodelParams {
    fn default() -> FqCodelParams {
        FqCodelParams::for_mtu(netcore::ETH_DATA_LEN)
    }
}

impl FqCodelParams {
    /// Linux's defaults for an Ethernet device of MTU `mtu`.
    pub fn for_mtu(mtu: u32) -> FqCodelParams {
        let psched_mtu = mtu + crate::sch_fifo::ETH_HLEN;
        FqCodelParams {
            limit: 10 * 1024,
            flows: 1024,
            quantum: psched_mtu,
            target_us: 5_000,
            interval_us: 100_000,
            memory_limit: 32 << 20,
            ecn: true,
            drop_batch_size: 64,
            mtu: psched_mtu,
        }
    }

    /// Checks and normalises as `fq_codel_change()` does: `flows` must be
    /// 1..=65536 and `quantum` at most 2^20 (else an error naming the
    /// parameter); a quantum below 256 is raised to 256, a drop batch of 0
    /// to 1, a memory limit above 2^31 lowered to it.
    pub fn validate(mut self) -> Result<FqCodelParams, crate::QdiscError> {
        if self.flows == 0 || self.flows > FQ_CODEL_MAX_FLOWS {
            return Err(crate::QdiscError::BadValue {
                param: "flows",
                value: self.flows.to_string(),
                accepts: "1 to 65536",
            });
        }
        self.quantum = self.quantum.max(FQ_CODEL_QUANTUM_MIN);
        if self.quantum > FQ_CODEL_QUANTUM_MAX {
            return Err(crate::QdiscError::BadValue {
                param: "quantum",
                value: self.quantum.to_string(),
                accepts: "up to 1048576 bytes",
            });
        }
        self.drop_batch_size = self.drop_batch_size.max(1);
        self.memory_limit = self.memory_limit.min(1 << 31);
        Ok(self)
    }
}

/// The extra statistics of `fq_codel`.
///
/// Mirrors `struct tc_fq_codel_qd_stats` (`TCA_FQ_CODEL_XSTATS_QDISC`).
#[doc(alias = "tc_fq_codel_qd_stats")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FqCodelXstats {
    /// The largest packet CoDel has seen.
    pub maxpacket: u32,
    /// Packets dropped because the qdisc was over `limit` or
    /// `memory_limit`.
    pub drop_overlimit: u32,
    /// Packets CE-marked (always 0 here).
    pub ecn_mark: u32,
    /// Times a flow became active (joined the new-flows list).
    pub new_flow_count: u32,
    /// Flows on the new-flows list now.
    pub new_flows_len: u32,
    /// Flows on the old-flows list now.
    pub old_flows_len: u32,
    /// Bytes of `truesize` held now.
    pub memory_usage: u32,
    /// Of `drop_overlimit`, the drops due to `memory_limit`.
    pub drop_overmemory: u32,
}

/// One hash bucket. Mirrors `struct fq_codel_flow`.
#[derive(Debug, Default)]
struct FqCodelFlow {
    queue: VecDeque<CodelSkb>,
    /// On the new or the old list (`!list_empty(&flow->flowchain)`).
    linked: bool,
    deficit: i32,
    /// Drops (or marks) of this flow since it became active.
    dropped: u32,
    cvars: CodelVars,
}

/// The `fq_codel` qdisc.
///
/// Mirrors `fq_codel_qdisc_ops` in `net/sched/sch_fq_codel.c`.
///
/// ```
/// use netcore::{Instant, PagePool, PagePoolParams, SkBuff};
/// use qdisc::{FqCodel, NetXmit, Qdisc};
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let mut q = FqCodel::default();
/// let mut skb = SkBuff::from_slice(&pool, 0, &[0u8; 1000]).unwrap();
/// skb.set_hash(0xdead_beef, true);
/// assert_eq!(q.enqueue(skb, Instant::ZERO), NetXmit::Success);
/// assert_eq!(q.xstats().new_flows_len, 1);
/// assert!(q.dequeue(Instant::from_millis(1)).is_some());
/// ```
#[doc(alias = "fq_codel_qdisc_ops")]
#[derive(Debug)]
pub struct FqCodel {
    params: FqCodelParams,
    /// The qdisc's handle (`sch->handle`); 0 for a default qdisc.
    handle: u32,
    cparams: CodelParams,
    cstats: CodelStats,
    flows: Vec<FqCodelFlow>,
    backlogs: Vec<u32>,
    new_flows: VecDeque<u32>,
    old_flows: VecDeque<u32>,
    memory_usage: u32,
    drop_overmemory: u32,
    drop_overlimit: u32,
    new_flow_count: u32,
    stats: QdiscStats,
    gso: GsoSkb,
}

impl Default for FqCodel {
    fn default() -> FqCodel {
        FqCodel::build(FqCodelParams::default())
    }
}

impl FqCodel {
    /// An `fq_codel` with `params` after [`FqCodelParams::validate`].
    /// Mirrors `fq_codel_init()`.
    pub fn new(params: FqCodelParams) -> Result<FqCodel, crate::QdiscError> {
        Ok(FqCodel::build(params.validate()?))
    }

    fn build(params: FqCodelParams) -> FqCodel {
        let cparams = CodelParams {
            target: us_to_codel_time(params.target_us),
            interval: us_to_codel_time(params.interval_us),
            mtu: params.mtu,
            ecn: params.ecn,
        };
        FqCodel {
            params,
            handle: 0,
            cparams,
            cstats: CodelStats::default(),
            flows: (0..params.flows).map(|_| FqCodelFlow::default()).collect(),
            backlogs: vec![0; params.flows as usize],
            new_flows: VecDeque::new(),
            old_flows: VecDeque::new(),
            memory_usage: 0,
            drop_overmemory: 0,
            drop_overlimit: 0,
            new_flow_count: 0,
            stats: QdiscStats::default(),
            gso: GsoSkb::new(),
        }
    }

    /// The parameters in force.
    pub fn params(&self) -> &FqCodelParams {
        &self.params
    }

    /// The extra statistics. Mirrors `fq_codel_dump_stats()`.
    #[doc(alias = "fq_codel_dump_stats")]
    pub fn xstats(&self) -> FqCodelXstats {
        FqCodelXstats {
            maxpacket: self.cstats.maxpacket,
            drop_overlimit: self.drop_overlimit,
            ecn_mark: self.cstats.ecn_mark,
            new_flow_count: self.new_flow_count,
            new_flows_len: self.new_flows.len() as u32,
            old_flows_len: self.old_flows.len() as u32,
            memory_usage: self.memory_usage,
            drop_overmemory: self.drop_overmemory,
        }
    }

    /// Packets held in flow `idx` (0-based), the requeue slot not included.
    pub fn flow_qlen(&self, idx: u32) -> usize {
        self.flows.get(idx as usize).map_or(0, |f| f.queue.len())
    }

    /// Drops (or marks) of flow `idx` since it last became active.
    pub fn flow_dropped(&self, idx: u32) -> u32 {
        self.flows.get(idx as usize).map_or(0, |f| f.dropped)
    }

    /// The flow (0-based) a packet goes to, computing its hash if it has
    /// none. Mirrors `fq_codel_classify()` (without filters) and
    /// `fq_codel_hash()`: `reciprocal_scale(skb_get_hash(skb), flows)`.
    #[doc(alias = "fq_codel_classify")]
    pub fn classify(&self, skb: &mut SkBuff) -> u32 {
        let (major, minor) = (skb.priority & 0xffff_0000, skb.priority & 0xffff);
        if major == self.handle && minor > 0 && minor <= self.params.flows {
            return minor - 1;
        }
        reciprocal_scale(skb_get_hash(skb), self.params.flows)
    }

    /// Cuts up to `max_packets` packets from the head of the flow with the
    /// largest backlog, stopping once half that backlog is gone; returns
    /// the flow. Mirrors `fq_codel_drop()`.
    fn fq_codel_drop(&mut self, max_packets: u32) -> usize {
        let mut maxbacklog = 0;
        let mut idx = 0;
        for (i, &b) in self.backlogs.iter().enumerate() {
            if b > maxbacklog {
                maxbacklog = b;
                idx = i;
            }
        }
        let threshold = maxbacklog >> 1;
        let flow = &mut self.flows[idx];
        let (mut len, mut mem, mut i) = (0u32, 0u32, 0u32);
        while let Some(item) = flow.queue.pop_front() {
            len += item.skb.len() as u32;
            mem += item.mem_usage;
            kfree_skb_reason(item.skb, DropReason::QdiscDrop);
            i += 1;
            if i >= max_packets || len >= threshold {
                break;
            }
        }
        flow.dropped += i;
        self.backlogs[idx] -= len;
        self.memory_usage -= mem;
        self.stats.drops += i;
        self.stats.backlog -= len;
        self.stats.qlen -= i;
        idx
    }

    /// `fq_codel_dequeue()` without the requeue slot.
    fn fq_codel_dequeue(&mut self, now: Instant) -> Option<SkBuff> {
        let now = codel_get_time(now);
        loop {
            let (from_new, idx) = match self.new_flows.front() {
                Some(&i) => (true, i as usize),
                None => (false, *self.old_flows.front()? as usize),
            };
            let head = if from_new {
                &mut self.new_flows
            } else {
                &mut self.old_flows
            };
            let flow = &mut self.flows[idx];
            if flow.deficit <= 0 {
                flow.deficit += self.params.quantum as i32;
                head.pop_front();
                self.old_flows.push_back(idx as u32);
                continue;
            }
            let prev_drop_count = self.cstats.drop_count;
            let FqCodelFlow {
                queue,
                cvars,
                dropped,
                ..
            } = flow;
            let mut fq = FlowQueue {
                queue,
                flow_backlog: &mut self.backlogs[idx],
                memory_usage: &mut self.memory_usage,
                stats: &mut self.stats,
            };
            let item = codel_dequeue(&mut fq, &self.cparams, cvars, &mut self.cstats, now);
            *dropped += self.cstats.drop_count - prev_drop_count;
            let Some(item) = item else {
                // force a pass through the old flows to prevent starvation
                let head = if from_new {
                    &mut self.new_flows
                } else {
                    &mut self.old_flows
                };
                head.pop_front();
                if from_new && !self.old_flows.is_empty() {
                    self.old_flows.push_back(idx as u32);
                } else {
                    self.flows[idx].linked = false;
                }
                continue;
            };
            self.stats.bstats_update(&item.skb);
            self.flows[idx].deficit -= item.skb.len() as i32;
            if self.cstats.drop_count != 0 && self.stats.qlen != 0 {
                // Linux reports these to the parent here
                // (`qdisc_tree_reduce_backlog`); a root has none.
                self.cstats.drop_count = 0;
                self.cstats.drop_len = 0;
            }
            return Some(item.skb);
        }
    }
}

/// The view of one flow CoDel works on. Mirrors `dequeue_func()` and
/// `drop_func()` of `sch_fq_codel.c`.
struct FlowQueue<'a> {
    queue: &'a mut VecDeque<CodelSkb>,
    flow_backlog: &'a mut u32,
    memory_usage: &'a mut u32,
    stats: &'a mut QdiscStats,
}

impl CodelQueue for FlowQueue<'_> {
    fn dequeue_head(&mut self) -> Option<CodelSkb> {
        let item = self.queue.pop_front()?;
        *self.flow_backlog -= item.skb.len() as u32;
        *self.memory_usage -= item.mem_usage;
        self.stats.queue_dec(&item.skb);
        Some(item)
    }

    fn drop_skb(&mut self, item: CodelSkb) {
        self.stats.drop_skb(item.skb);
    }

    fn backlog(&self) -> u32 {
        self.stats.backlog
    }
}

impl Qdisc for FqCodel {
    fn id(&self) -> &'static str {
        "fq_codel"
    }

    fn enqueue(&mut self, mut skb: SkBuff, now: Instant) -> NetXmit {
        let idx = self.classify(&mut skb) as usize;
        let pkt_len = skb.len() as u32;
        let mem_usage = skb.truesize() as u32;
        self.backlogs[idx] += pkt_len;
        self.stats.backlog += pkt_len;
        let flow = &mut self.flows[idx];
        flow.queue.push_back(CodelSkb {
            skb,
            enqueue_time: codel_get_time(now),
            mem_usage,
        });
        if !flow.linked {
            flow.linked = true;
            self.new_flows.push_back(idx as u32);
            self.new_flow_count += 1;
            flow.deficit = self.params.quantum as i32;
            flow.dropped = 0;
        }
        self.memory_usage += mem_usage;
        let memory_limited = self.memory_usage > self.params.memory_limit;
        self.stats.qlen += 1;
        if self.stats.qlen <= self.params.limit && !memory_limited {
            return NetXmit::Success;
        }
        let prev_qlen = self.stats.qlen;
        // Cutting one packet at a time would mean one linear scan of the
        // backlogs per packet: cut half the fattest flow, at most a batch.
        let victim = self.fq_codel_drop(self.params.drop_batch_size);
        let dropped = prev_qlen - self.stats.qlen;
        self.drop_overlimit += dropped;
        if memory_limited {
            self.drop_overmemory += dropped;
        }
        if victim == idx {
            NetXmit::Cn
        } else {
            NetXmit::Success
        }
    }

    fn dequeue(&mut self, now: Instant) -> Option<SkBuff> {
        if let Some(skb) = self.gso.dequeue(&mut self.stats) {
            return Some(skb);
        }
        self.fq_codel_dequeue(now)
    }

    fn peek(&mut self, now: Instant) -> Option<&SkBuff> {
        if self.gso.is_empty() {
            let skb = self.fq_codel_dequeue(now)?;
            self.gso.stash(skb, &mut self.stats);
        }
        self.gso.peek()
    }

    fn requeue(&mut self, skb: SkBuff) {
        self.gso.requeue(skb, &mut self.stats);
    }

    fn reset(&mut self) {
        self.gso.purge(&mut self.stats);
        self.new_flows.clear();
        self.old_flows.clear();
        for flow in &mut self.flows {
            for item in flow.queue.drain(..) {
                kfree_skb_reason(item.skb, DropReason::QueuePurge);
            }
            flow.linked = false;
            flow.cvars = CodelVars::default();
        }
        self.backlogs.fill(0);
        self.stats.qlen = 0;
        self.stats.backlog = 0;
        self.memory_usage = 0;
    }

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    fn dump(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        let p = &self.params;
        write!(
            f,
            "limit {}p flows {} quantum {} target {} interval {} memory_limit {} ",
            p.limit,
            p.flows,
            p.quantum,
            sprint_time(u64::from(codel_time_to_us(self.cparams.target))),
            sprint_time(u64::from(codel_time_to_us(self.cparams.interval))),
            sprint_size(p.memory_limit),
        )?;
        if p.ecn {
            f.write_str("ecn ")?;
        }
        write!(f, "drop_batch {} ", p.drop_batch_size)
    }

    fn dump_stats(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        let x = self.xstats();
        write!(
            f,
            "  maxpacket {} drop_overlimit {} new_flow_count {} ecn_mark {}",
            x.maxpacket, x.drop_overlimit, x.new_flow_count, x.ecn_mark
        )?;
        if x.memory_usage != 0 {
            write!(f, " memory_used {}", x.memory_usage)?;
        }
        if x.drop_overmemory != 0 {
            write!(f, " drop_overmemory {}", x.drop_overmemory)?;
        }
        write!(
            f,
            "\n  new_flows_len {} old_flows_len {}",
            x.new_flows_len, x.old_flows_len
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_tc_qdisc_show;
    use crate::testutil::{pool, skb_hash};
    use netcore::Duration;

    /// A hash that `reciprocal_scale` maps to flow `idx` of 1024.
    fn hash_of_flow(idx: u32) -> u32 {
        (idx << 22) | 1
    }

    #[test]
    fn defaults_are_linuxs() {
        let p = FqCodelParams::default();
        assert_eq!(
            (p.limit, p.flows, p.quantum, p.target_us, p.interval_us),
            (10240, 1024, 1514, 5000, 100_000)
        );
        assert_eq!(
            (p.memory_limit, p.ecn, p.drop_batch_size),
            (32 << 20, true, 64)
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let err = FqCodel::new(FqCodelParams {
            flows: 0,
            ..FqCodelParams::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("flows"), "{err}");
        let err = FqCodel::new(FqCodelParams {
            quantum: FQ_CODEL_QUANTUM_MAX + 1,
            ..FqCodelParams::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("quantum"), "{err}");
        let q = FqCodel::new(FqCodelParams {
            quantum: 10,
            drop_batch_size: 0,
            ..FqCodelParams::default()
        })
        .unwrap();
        assert_eq!((q.params().quantum, q.params().drop_batch_size), (256, 1));
    }

    #[test]
    fn flows_hash_by_reciprocal_scale_and_priority_picks_a_flow() {
        let pool = pool();
        let q = FqCodel::default();
        let mut skb = skb_hash(&pool, 100, hash_of_flow(37));
        assert_eq!(q.classify(&mut skb), 37);
        assert_eq!(reciprocal_scale(u32::MAX, 1024), 1023);
        // priority 0:5 with this qdisc's handle 0 names flow 5 (1-based)
        skb.priority = 5;
        assert_eq!(q.classify(&mut skb), 4);
        skb.priority = 0x0001_0005; // another qdisc's handle: hash
        assert_eq!(q.classify(&mut skb), 37);
    }

    /// Ethernet + IPv4 + UDP from 198.18.0.1:`sport` to 198.18.0.2:53.
    fn udp_frame(sport: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
        f.extend_from_slice(&sport.to_be_bytes());
        f.extend_from_slice(&[0, 53, 0, 8, 0, 0]);
        f
    }

    #[test]
    fn a_missing_hash_is_computed_from_the_flow_keys_and_kept() {
        let pool = pool();
        let mut a = SkBuff::from_slice(&pool, 0, &udp_frame(1000)).unwrap();
        let mut a2 = SkBuff::from_slice(&pool, 0, &udp_frame(1000)).unwrap();
        let mut b = SkBuff::from_slice(&pool, 0, &udp_frame(1001)).unwrap();
        let ha = skb_get_hash(&mut a);
        assert_ne!(ha, 0);
        assert_eq!((a.hash, a.l4_hash, a.sw_hash), (ha, true, true));
        assert_eq!(skb_get_hash(&mut a2), ha, "same flow, same hash");
        assert_ne!(skb_get_hash(&mut b), ha, "other port, other hash");
        // a frame the dissector cannot read gets hash 1, as in Linux
        // (`__flow_hash_from_keys()` never returns 0): flow 0
        let mut junk = SkBuff::from_slice(&pool, 0, &[1, 2, 3]).unwrap();
        assert_eq!(skb_get_hash(&mut junk), 1);
        assert_eq!(FqCodel::default().classify(&mut junk), 0);
    }

    #[test]
    fn new_flows_are_served_before_old_ones_by_quantum() {
        let pool = pool();
        let mut q = FqCodel::default();
        let t = Instant::ZERO;
        // flow A: three full packets; then flow B: one small packet
        for _ in 0..3 {
            let _ = q.enqueue(skb_hash(&pool, 1514, hash_of_flow(1)), t);
        }
        let _ = q.enqueue(skb_hash(&pool, 100, hash_of_flow(2)), t);
        assert_eq!(q.xstats().new_flows_len, 2);
        let order: Vec<usize> = std::iter::from_fn(|| q.dequeue(t))
            .map(|s| s.len())
            .collect();
        // A spends its quantum on one packet, B (new) goes next, then A
        assert_eq!(order, [1514, 100, 1514, 1514]);
        let x = q.xstats();
        assert_eq!((x.new_flow_count, x.maxpacket), (2, 1514));
        assert_eq!((x.new_flows_len, x.old_flows_len), (0, 0));
    }

    #[test]
    fn over_the_limit_the_fattest_flow_loses_half_its_backlog() {
        let pool = pool();
        let mut q = FqCodel::new(FqCodelParams {
            limit: 100,
            ..FqCodelParams::default()
        })
        .unwrap();
        let t = Instant::ZERO;
        for _ in 0..90 {
            assert_eq!(
                q.enqueue(skb_hash(&pool, 1000, hash_of_flow(1)), t),
                NetXmit::Success
            );
        }
        for _ in 0..10 {
            assert_eq!(
                q.enqueue(skb_hash(&pool, 100, hash_of_flow(2)), t),
                NetXmit::Success
            );
        }
        // the 101st packet, of the thin flow: the fat flow pays, up to half
        // its 90000 bytes (45 packets), capped by the batch of 64
        assert_eq!(
            q.enqueue(skb_hash(&pool, 100, hash_of_flow(2)), t),
            NetXmit::Success
        );
        assert_eq!((q.flow_qlen(1), q.flow_qlen(2)), (45, 11));
        let s = q.stats();
        assert_eq!((s.qlen, s.drops, s.backlog), (56, 45, 45 * 1000 + 11 * 100));
        assert_eq!(q.xstats().drop_overlimit, 45);
        assert_eq!(q.flow_dropped(1), 45);
        // the fat flow itself going over: NET_XMIT_CN
        for _ in 0..44 {
            let _ = q.enqueue(skb_hash(&pool, 1000, hash_of_flow(1)), t);
        }
        assert_eq!(q.stats().qlen, 100);
        assert_eq!(
            q.enqueue(skb_hash(&pool, 1000, hash_of_flow(1)), t),
            NetXmit::Cn
        );
        assert_eq!(pool.stats().inflight(), u64::from(q.stats().qlen));
    }

    #[test]
    fn memory_limit_also_triggers_drops() {
        let pool = pool();
        let mut q = FqCodel::new(FqCodelParams {
            memory_limit: 10_000,
            ..FqCodelParams::default()
        })
        .unwrap();
        let t = Instant::ZERO;
        let mut verdicts = Vec::new();
        for _ in 0..10 {
            verdicts.push(q.enqueue(skb_hash(&pool, 1000, hash_of_flow(3)), t));
        }
        let x = q.xstats();
        assert!(verdicts.contains(&NetXmit::Cn));
        assert!(x.drop_overmemory > 0 && x.drop_overmemory == x.drop_overlimit);
        assert!(x.memory_usage <= 10_000 + 4096);
        assert_eq!(q.stats().drops, x.drop_overlimit);
    }

    /// A bulk flow offered at 1.2 times the link rate builds a standing
    /// queue; a sparse flow's packets still leave within the 5 ms target,
    /// while CoDel drops from the bulk flow only.
    #[test]
    fn sparse_flow_stays_fast_while_codel_drops_the_bulk_flow() {
        let pool = pool();
        let mut q = FqCodel::default();
        let (bulk_flow, sparse_flow) = (10, 20);
        let (bulk, sparse) = (hash_of_flow(bulk_flow), hash_of_flow(sparse_flow));
        // link: one 1514-byte packet every 121.12 µs (100 Mbit/s); bulk
        // offers one every 100 µs; sparse one 100-byte packet every 10 ms
        let tx_time = Duration::from_nanos(121_120);
        let mut next_tx = Instant::ZERO;
        let mut enq_times: std::collections::HashMap<u32, VecDeque<Instant>> =
            std::collections::HashMap::new();
        let mut sparse_sojourns = Vec::new();
        let mut bulk_sojourn_max = Duration::ZERO;
        let end = Instant::from_secs(2);
        let mut now = Instant::ZERO;
        let mut tick = 0u64;
        while now < end {
            if tick.is_multiple_of(100) {
                let _ = q.enqueue(skb_hash(&pool, 1514, bulk), now);
                enq_times.entry(bulk).or_default().push_back(now);
            }
            if tick.is_multiple_of(10_000) {
                let _ = q.enqueue(skb_hash(&pool, 100, sparse), now);
                enq_times.entry(sparse).or_default().push_back(now);
            }
            if now >= next_tx
                && let Some(skb) = q.dequeue(now)
            {
                // drops take head packets: skip the enqueue times of
                // the packets of this flow dropped before this one
                let flow = if skb.hash == bulk {
                    bulk_flow
                } else {
                    sparse_flow
                };
                let times = enq_times.get_mut(&skb.hash).unwrap();
                for _ in 0..times.len() - q.flow_qlen(flow) - 1 {
                    times.pop_front();
                }
                let sojourn = now - times.pop_front().unwrap();
                if skb.hash == sparse {
                    sparse_sojourns.push(sojourn);
                } else {
                    bulk_sojourn_max = bulk_sojourn_max.max(sojourn);
                }
                next_tx = now + tx_time;
            }
            tick += 1;
            now = Instant::from_micros(tick);
        }
        assert_eq!(sparse_sojourns.len(), 200);
        let worst = sparse_sojourns.iter().max().unwrap();
        assert!(*worst < Duration::from_millis(5), "sparse waited {worst:?}");
        assert!(
            bulk_sojourn_max > Duration::from_millis(50),
            "standing queue {bulk_sojourn_max:?}"
        );
        let s = q.stats();
        assert!(s.drops > 20, "CoDel dropped {} bulk packets", s.drops);
        assert_eq!(
            q.flow_dropped(sparse_flow),
            0,
            "the sparse flow lost nothing"
        );
        assert_eq!(q.flow_dropped(bulk_flow), s.drops);
        assert_eq!(
            q.xstats().drop_overlimit,
            0,
            "drops came from CoDel, not the limit"
        );
    }

    /// An Ethernet frame of `len` bytes holding an IPv4 packet whose ECN
    /// field is `ecn`, with the flow hash `hash`.
    fn ipv4_frame(pool: &netcore::PagePool, len: usize, hash: u32, ecn: u8) -> SkBuff {
        let mut skb = skb_hash(pool, len, hash);
        let d = skb.data_mut().unwrap();
        d[12..14].copy_from_slice(&netcore::ETH_P_IP.to_be_bytes());
        let ip = &mut d[14..34];
        ip[0] = 0x45;
        ip[1] = ecn;
        ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
        ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
        let check = wire::ip_fast_csum(ip);
        ip[10..12].copy_from_slice(&check.to_be_bytes());
        skb.set_network_header(14).unwrap();
        skb.protocol = netcore::ETH_P_IP;
        skb
    }

    /// A bulk flow offered faster than the link serves it builds a
    /// standing queue. With `ecn` on and ECT(0) packets CoDel marks them
    /// CE (valid header checksum, `ecn_mark`) and drops none; with `ecn`
    /// off, or packets that are not ECN-capable, it drops instead.
    #[test]
    fn codel_marks_ecn_capable_packets_instead_of_dropping_them() {
        let pool = pool();
        for (ecn, ect, marks) in [
            (true, true, true),
            (true, false, false),
            (false, true, false),
        ] {
            let case = format!("ecn {ecn}, ECT {ect}");
            let mut q = FqCodel::new(FqCodelParams {
                ecn,
                ..FqCodelParams::default()
            })
            .unwrap();
            let field = if ect { netcore::INET_ECN_ECT_0 } else { 0 };
            let hash = hash_of_flow(10);
            let tx_time = Duration::from_nanos(121_120);
            let mut next_tx = Instant::ZERO;
            let (mut sent, mut ce) = (0u32, 0u32);
            for tick in 0..2_000_000u64 {
                let now = Instant::from_micros(tick);
                if tick.is_multiple_of(100) {
                    let _ = q.enqueue(ipv4_frame(&pool, 1514, hash, field), now);
                }
                if now >= next_tx
                    && let Some(skb) = q.dequeue(now)
                {
                    let ip = skb.network_header().unwrap();
                    assert_eq!(wire::ip_fast_csum(&ip[..20]), 0, "{case}: checksum");
                    ce += u32::from(ip[1] & 3 == netcore::INET_ECN_CE);
                    sent += 1;
                    next_tx = now + tx_time;
                }
            }
            let (drops, mark) = (q.stats().drops, q.xstats().ecn_mark);
            assert!(sent > 15_000, "{case}: {sent} sent");
            if marks {
                assert_eq!(drops, 0, "{case}");
                assert!(mark > 20, "{case}: {mark} marks");
            } else {
                assert!(drops > 20, "{case}: {drops} drops");
                assert_eq!(mark, 0, "{case}");
            }
            assert_eq!(ce, mark, "{case}: CE packets on the wire");
        }
    }

    #[test]
    fn peek_keeps_the_packet_for_the_next_dequeue() {
        let pool = pool();
        let mut q = FqCodel::default();
        let _ = q.enqueue(skb_hash(&pool, 300, hash_of_flow(1)), Instant::ZERO);
        assert_eq!(q.peek(Instant::ZERO).map(SkBuff::len), Some(300));
        assert_eq!(q.stats().qlen, 1);
        assert_eq!(q.dequeue(Instant::ZERO).map(|s| s.len()), Some(300));
        assert_eq!(q.stats().qlen, 0);
        assert_eq!(q.stats().packets, 1);
    }

    #[test]
    fn tc_show_text_for_a_known_state() {
        let pool = pool();
        let mut q = FqCodel::default();
        let t = Instant::ZERO;
        for _ in 0..3 {
            let _ = q.enqueue(skb_hash(&pool, 1000, hash_of_flow(1)), t);
        }
        let _ = q.enqueue(skb_hash(&pool, 500, hash_of_flow(2)), t);
        let _ = q.dequeue(t).unwrap(); // 1000 from flow 1, which stays new
        let mem = q.xstats().memory_usage;
        assert_eq!(
            format_tc_qdisc_show(None, &q),
            format!(
                "qdisc fq_codel 0: root refcnt 2 limit 10240p flows 1024 quantum 1514 \
                 target 5ms interval 100ms memory_limit 32Mb ecn drop_batch 64 \n \
                 Sent 1000 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) \n \
                 backlog 2500b 3p requeues 0\n  \
                 maxpacket 1000 drop_overlimit 0 new_flow_count 2 ecn_mark 0 memory_used {mem}\n  \
                 new_flows_len 2 old_flows_len 0\n"
            )
        );
    }

    #[test]
    fn reset_empties_every_flow() {
        let pool = pool();
        let mut q = FqCodel::default();
        for i in 0..20 {
            let _ = q.enqueue(skb_hash(&pool, 100, hash_of_flow(i)), Instant::ZERO);
        }
        q.reset();
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog, s.drops), (0, 0, 0));
        assert_eq!(q.xstats().memory_usage, 0);
        assert_eq!((q.xstats().new_flows_len, q.xstats().old_flows_len), (0, 0));
        assert_eq!(pool.stats().inflight(), 0);
        assert!(q.dequeue(Instant::ZERO).is_none());
    }
}
