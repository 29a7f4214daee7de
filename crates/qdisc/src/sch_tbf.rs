//! The token bucket filter: a shaper that lets packets go at `rate` on
//! average and at most `burst` bytes back to back.
//!
//! Mirrors `net/sched/sch_tbf.c` (`tbf_enqueue()`, `tbf_dequeue()`,
//! `tbf_change()`) and `psched_l2t_ns()` of `include/net/sch_generic.h`.
//! Tokens are kept in time units, as Linux keeps them: the bucket holds
//! `buffer` nanoseconds' worth (the time `burst` bytes take at `rate`); a
//! packet of `len` bytes costs `psched_l2t_ns(rate, len)`; tokens accrue
//! one nanosecond per nanosecond since the last send (`t_c`).
//!
//! # Deviations from Linux
//!
//! - No `peakrate`/`mtu` (the second bucket) and no `mpu`, `overhead` or
//!   `linklayer`; packets larger than the bucket are dropped (Linux
//!   segments a GSO skb that is too large, `tbf_segment()`).
//! - The inner `bfifo` Linux creates as class `1:1` is folded in: the byte
//!   limit is checked here and there is no class to show.
//! - `psched_l2t_ns()` is an exact division rather than the kernel's
//!   multiply-and-shift approximation.

use core::fmt;
use std::collections::VecDeque;

use netcore::{DropReason, Duration, Instant, SkBuff, kfree_skb_reason};

use crate::sch_api::{sprint_rate, sprint_size, sprint_time};
use crate::sch_generic::{GsoSkb, NetXmit, Qdisc, QdiscStats};

/// The parameters of `tbf`, as `tc qdisc add ... tbf` takes them.
///
/// Mirrors `struct tc_tbf_qopt` with `TCA_TBF_RATE64` and `TCA_TBF_BURST`.
#[doc(alias = "tc_tbf_qopt")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TbfParams {
    /// The sustained rate in bytes per second (`rate`).
    pub rate: u64,
    /// The bucket size in bytes (`burst`, `buffer`, `maxburst`).
    pub burst: u32,
    /// Bytes that may wait in the queue (`limit`).
    pub limit: u32,
}

impl TbfParams {
    /// Parameters with the queue limit given as a latency, as tc computes
    /// it: `limit = rate × latency + burst`.
    pub fn with_latency(rate: u64, burst: u32, latency: Duration) -> TbfParams {
        let queued = u128::from(rate) * latency.as_nanos() / 1_000_000_000;
        TbfParams {
            rate,
            burst,
            limit: (queued + u128::from(burst)).min(u128::from(u32::MAX)) as u32,
        }
    }

    /// Checks that `rate` and `burst` are non-zero, as tc requires ("Both
    /// rate and burst are required").
    pub fn validate(self) -> Result<TbfParams, crate::QdiscError> {
        if self.rate == 0 {
            return Err(crate::QdiscError::BadValue {
                param: "rate",
                value: "0".to_owned(),
                accepts: "a rate above 0 (e.g. 1mbit)",
            });
        }
        if self.burst == 0 {
            return Err(crate::QdiscError::BadValue {
                param: "burst",
                value: "0".to_owned(),
                accepts: "a size above 0 bytes (e.g. 10kb)",
            });
        }
        Ok(self)
    }
}

/// The time `len` bytes take at `rate` bytes per second, in nanoseconds.
/// Mirrors `psched_l2t_ns()`.
pub fn psched_l2t_ns(rate: u64, len: u64) -> i64 {
    (u128::from(len) * 1_000_000_000 / u128::from(rate.max(1))).min(i64::MAX as u128) as i64
}

/// The `tbf` qdisc.
///
/// Mirrors `tbf_qdisc_ops` in `net/sched/sch_tbf.c`.
///
/// ```
/// use netcore::{Instant, PagePool, PagePoolParams, SkBuff};
/// use qdisc::{Qdisc, Tbf, TbfParams};
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// // 1 Mbit/s, a 2000-byte bucket, 10 kB of queue
/// let mut q = Tbf::new(TbfParams { rate: 125_000, burst: 2000, limit: 10_000 }).unwrap();
/// for _ in 0..3 {
///     let _ = q.enqueue(SkBuff::from_slice(&pool, 0, &[0u8; 1000]).unwrap(), Instant::ZERO);
/// }
/// let t = Instant::from_secs(1);
/// assert!(q.dequeue(t).is_some()); // the bucket is full: two go at once
/// assert!(q.dequeue(t).is_some());
/// assert!(q.dequeue(t).is_none()); // throttled
/// // 1000 bytes at 125000 B/s: 8 ms later
/// assert_eq!(q.next_event(), Some(Instant::from_millis(1008)));
/// assert!(q.dequeue(Instant::from_millis(1008)).is_some());
/// ```
#[doc(alias = "tbf_qdisc_ops")]
#[derive(Debug)]
pub struct Tbf {
    params: TbfParams,
    /// The bucket size in ns (`q->buffer`).
    buffer: i64,
    /// The largest packet that can ever fit the bucket (`q->max_size`).
    max_size: u32,
    /// Tokens (ns) at `t_c` (`q->tokens`).
    tokens: i64,
    /// When tokens were last counted (`q->t_c`).
    t_c: Instant,
    queue: VecDeque<SkBuff>,
    stats: QdiscStats,
    gso: GsoSkb,
}

impl Tbf {
    /// A `tbf` with a full bucket. Mirrors `tbf_init()`/`tbf_change()`.
    pub fn new(params: TbfParams) -> Result<Tbf, crate::QdiscError> {
        let params = params.validate()?;
        let buffer = psched_l2t_ns(params.rate, u64::from(params.burst));
        Ok(Tbf {
            params,
            buffer,
            max_size: params.burst,
            tokens: buffer,
            t_c: Instant::ZERO,
            queue: VecDeque::new(),
            stats: QdiscStats::default(),
            gso: GsoSkb::new(),
        })
    }

    /// The parameters in force.
    pub fn params(&self) -> &TbfParams {
        &self.params
    }

    /// A GSO packet larger than the bucket: cut into its segments, each
    /// queued on its own. Mirrors `tbf_segment()`; a segment that does not
    /// fit is dropped and counted, the packet counts as dropped only when
    /// no segment was queued.
    fn tbf_segment(&mut self, skb: SkBuff) -> NetXmit {
        let Some(segs) = tcp4_segment(&skb) else {
            self.stats.drop_skb(skb);
            return NetXmit::Drop;
        };
        // The segments keep the GSO skb, and so its owner's charge (TCP
        // Small Queues), until the last of them is freed, as
        // tcp_gso_segment() hands the owner on to them.
        let hold: std::sync::Arc<dyn netcore::SkbDestructor> =
            std::sync::Arc::new(GsoHold(parking_lot::Mutex::new(Some(skb))));
        let mut queued = 0;
        for mut seg in segs {
            seg.set_destructor(std::sync::Arc::clone(&hold));
            let len = seg.len() as u32;
            if len > self.max_size
                || u64::from(self.stats.backlog) + u64::from(len) > u64::from(self.params.limit)
            {
                self.stats.drop_skb(seg);
                continue;
            }
            self.stats.queue_inc(&seg);
            self.queue.push_back(seg);
            queued += 1;
        }
        if queued > 0 {
            NetXmit::Success
        } else {
            NetXmit::Drop
        }
    }

    /// Tokens available at `now`, in ns, capped at the bucket size.
    fn toks_at(&self, now: Instant) -> i64 {
        let elapsed =
            i64::try_from(now.saturating_duration_since(self.t_c).as_nanos()).unwrap_or(i64::MAX);
        (elapsed.min(self.buffer) + self.tokens).min(self.buffer)
    }
}

impl Qdisc for Tbf {
    fn id(&self) -> &'static str {
        "tbf"
    }

    fn enqueue(&mut self, skb: SkBuff, _now: Instant) -> NetXmit {
        let len = skb.len() as u32;
        if len > self.max_size && skb.is_gso() {
            return self.tbf_segment(skb);
        }
        // larger than the bucket: it could never be sent
        // (and the inner bfifo's byte limit)
        if len > self.max_size
            || u64::from(self.stats.backlog) + u64::from(len) > u64::from(self.params.limit)
        {
            self.stats.drop_skb(skb);
            return NetXmit::Drop;
        }
        self.stats.queue_inc(&skb);
        self.queue.push_back(skb);
        NetXmit::Success
    }

    fn dequeue(&mut self, now: Instant) -> Option<SkBuff> {
        if let Some(skb) = self.gso.dequeue(&mut self.stats) {
            return Some(skb);
        }
        let len = self.queue.front()?.len();
        let toks = self.toks_at(now) - psched_l2t_ns(self.params.rate, len as u64);
        if toks < 0 {
            // Linux arms the watchdog here for `now + -toks`; the caller
            // reads the same instant from `next_event`.
            self.stats.overlimits += 1;
            return None;
        }
        let skb = self.queue.pop_front()?;
        self.t_c = now;
        self.tokens = toks;
        self.stats.queue_dec(&skb);
        self.stats.bstats_update(&skb);
        Some(skb)
    }

    fn peek(&mut self, _now: Instant) -> Option<&SkBuff> {
        if let Some(skb) = self.gso.peek() {
            return Some(skb);
        }
        self.queue.front()
    }

    fn requeue(&mut self, skb: SkBuff) {
        self.gso.requeue(skb, &mut self.stats);
    }

    fn reset(&mut self) {
        self.gso.purge(&mut self.stats);
        while let Some(skb) = self.queue.pop_front() {
            self.stats.queue_dec(&skb);
            kfree_skb_reason(skb, DropReason::QueuePurge);
        }
        // tbf_reset(): a full bucket again
        self.tokens = self.buffer;
    }

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    fn next_event(&self) -> Option<Instant> {
        if !self.gso.is_empty() {
            return Some(self.t_c);
        }
        let needed = psched_l2t_ns(self.params.rate, self.queue.front()?.len() as u64);
        let wait = (needed - self.tokens).max(0);
        Some(self.t_c + Duration::from_nanos(wait as u64))
    }

    fn dump(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        let p = &self.params;
        write!(
            f,
            "rate {} burst {} ",
            sprint_rate(p.rate),
            sprint_size(p.burst)
        )?;
        if p.limit >= p.burst {
            let lat_us = u128::from(p.limit - p.burst) * 1_000_000 / u128::from(p.rate);
            write!(
                f,
                "lat {} ",
                sprint_time(lat_us.min(u128::from(u32::MAX)) as u64)
            )
        } else {
            write!(f, "limit {} ", sprint_size(p.limit))
        }
    }
}

/// The owner of the segments `tbf_segment()` cut: holds the GSO skb
/// until every segment is freed.
struct GsoHold(parking_lot::Mutex<Option<SkBuff>>);

impl netcore::SkbDestructor for GsoHold {
    fn destruct(&self, _skb: &SkBuff) {}

    fn set_pacing_status_fq(&self) {
        if let Some(skb) = self.0.lock().as_ref() {
            skb.set_sk_pacing_status_fq();
        }
    }
}

/// Cuts a TCP/IPv4 GSO skb (network and transport headers set) into
/// linear segments of `gso_size` payload bytes with full IPv4 and TCP
/// checksums, or `None` when it is not one. The software path of
/// `skb_gso_segment()` that `tbf_segment()` calls (`tcp_gso_segment()`
/// for a device without checksum offload); the segments are not owned.
fn tcp4_segment(skb: &SkBuff) -> Option<Vec<SkBuff>> {
    let nh = usize::try_from(skb.network_offset()?).ok()?;
    let th = usize::try_from(skb.transport_offset()?).ok()?;
    let mut doff = [0u8; 1];
    skb.copy_bits(th + 12, &mut doff).ok()?;
    let hdr_len = th + usize::from(doff[0] >> 4) * 4;
    let mut hdr = vec![0u8; hdr_len];
    skb.copy_bits(0, &mut hdr).ok()?;
    if th < nh + 20 || hdr[nh] >> 4 != 4 || hdr[nh + 9] != 6 {
        return None;
    }
    let mss = usize::from(skb.gso_size);
    let payload = skb.len().checked_sub(hdr_len)?;
    if mss == 0 {
        return None;
    }
    let nsegs = payload.div_ceil(mss).max(1);
    let ip = |o: usize| core::net::Ipv4Addr::new(hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]);
    let (saddr, daddr) = (ip(nh + 12), ip(nh + 16));
    let id0 = u16::from_be_bytes([hdr[nh + 4], hdr[nh + 5]]);
    let seq0 = u32::from_be_bytes([hdr[th + 4], hdr[th + 5], hdr[th + 6], hdr[th + 7]]);
    let headroom = skb.headroom();
    let mut out = Vec::with_capacity(nsegs);
    for i in 0..nsegs {
        let off = i * mss;
        let len = mss.min(payload - off);
        let mut seg = SkBuff::alloc(skb.pool(), headroom + hdr_len + len).ok()?;
        seg.reserve(headroom).ok()?;
        let d = seg.put(hdr_len + len).ok()?;
        d[..hdr_len].copy_from_slice(&hdr);
        skb.copy_bits(hdr_len + off, &mut d[hdr_len..]).ok()?;
        let tot_len = u16::try_from(hdr_len - nh + len).ok()?;
        d[nh + 2..nh + 4].copy_from_slice(&tot_len.to_be_bytes());
        d[nh + 4..nh + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
        d[nh + 10..nh + 12].fill(0);
        let ip_check = wire::ip_fast_csum(&d[nh..th]);
        d[nh + 10..nh + 12].copy_from_slice(&ip_check.to_be_bytes());
        d[th + 4..th + 8].copy_from_slice(&seq0.wrapping_add(off as u32).to_be_bytes());
        if i + 1 < nsegs {
            d[th + 13] &= !0x09; // FIN, PSH on the last segment only
        }
        if i > 0 {
            d[th + 13] &= !0x80; // CWR on the first only
        }
        d[th + 16..th + 18].fill(0);
        let tcp_len = u16::try_from(hdr_len - th + len).ok()?;
        let sum = wire::csum_partial(&d[th..], 0);
        let check = wire::csum_tcpudp_magic(saddr, daddr, tcp_len, 6, sum);
        d[th + 16..th + 18].copy_from_slice(&check.to_be_bytes());
        seg.reset_mac_header();
        seg.set_network_header(nh).ok()?;
        seg.set_transport_header(th).ok()?;
        seg.protocol = skb.protocol;
        seg.ifindex = skb.ifindex;
        seg.mark = skb.mark;
        seg.priority = skb.priority;
        seg.queue_mapping = skb.queue_mapping;
        seg.hash = skb.hash;
        seg.l4_hash = skb.l4_hash;
        seg.tstamp = skb.tstamp;
        seg.vlan_tci = skb.vlan_tci;
        seg.nfct = skb.nfct;
        out.push(seg);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format_tc_qdisc_show;
    use crate::testutil::{pool, skb_len};

    const MBIT: u64 = 125_000;

    #[test]
    fn holds_its_rate_within_one_percent_over_ten_seconds() {
        let pool = pool();
        let rate = 10 * MBIT; // 10 Mbit/s
        let mut q = Tbf::new(TbfParams {
            rate,
            burst: 15_000,
            limit: 100_000,
        })
        .unwrap();
        let end = Instant::from_secs(10);
        let mut now = Instant::ZERO;
        let mut sent = 0u64;
        while now < end {
            // oversupply: keep the queue topped up
            while q.stats().backlog + 1500 <= 100_000 {
                assert_eq!(q.enqueue(skb_len(&pool, 1500), now), NetXmit::Success);
            }
            while let Some(skb) = q.dequeue(now) {
                sent += skb.len() as u64;
            }
            // sleep until the watchdog would fire
            let next = q.next_event().expect("a backlogged tbf has a next event");
            assert!(next > now, "dequeue stopped although a packet could go");
            now = next;
        }
        let expected = rate * 10;
        let err = sent.abs_diff(expected) as f64 / expected as f64;
        assert!(
            err < 0.01,
            "sent {sent} bytes, expected {expected} ({err:.4})"
        );
        assert!(sent <= expected + 15_000, "more than rate × time + burst");
        assert_eq!(q.stats().drops, 0);
    }

    #[test]
    fn the_bucket_lets_a_burst_go_back_to_back_then_throttles() {
        let pool = pool();
        let mut q = Tbf::new(TbfParams {
            rate: MBIT,
            burst: 10_000,
            limit: 50_000,
        })
        .unwrap();
        let t = Instant::from_secs(5);
        for _ in 0..20 {
            let _ = q.enqueue(skb_len(&pool, 1000), t);
        }
        let burst = std::iter::from_fn(|| q.dequeue(t)).count();
        assert_eq!(burst, 10, "exactly the bucket's 10000 bytes at one instant");
        assert_eq!(
            q.stats().overlimits,
            1,
            "the refused dequeue is an overlimit"
        );
        // the next packet waits 1000 bytes at 125000 B/s = 8 ms
        assert_eq!(q.next_event(), Some(t + Duration::from_millis(8)));
        assert!(q.dequeue(t + Duration::from_millis(7)).is_none());
        assert_eq!(q.stats().overlimits, 2);
        assert!(q.dequeue(t + Duration::from_millis(8)).is_some());
    }

    #[test]
    fn packets_larger_than_the_bucket_or_the_limit_are_dropped() {
        let pool = pool();
        let mut q = Tbf::new(TbfParams {
            rate: MBIT,
            burst: 1500,
            limit: 3000,
        })
        .unwrap();
        assert_eq!(
            q.enqueue(skb_len(&pool, 1501), Instant::ZERO),
            NetXmit::Drop
        );
        assert_eq!(
            q.enqueue(skb_len(&pool, 1500), Instant::ZERO),
            NetXmit::Success
        );
        assert_eq!(
            q.enqueue(skb_len(&pool, 1500), Instant::ZERO),
            NetXmit::Success
        );
        assert_eq!(q.enqueue(skb_len(&pool, 100), Instant::ZERO), NetXmit::Drop);
        assert_eq!(q.stats().drops, 2);
        assert_eq!(
            q.next_event(),
            Some(Instant::ZERO),
            "the first can go at once"
        );
    }

    #[test]
    fn latency_sets_the_limit_and_prints_back() {
        let p = TbfParams::with_latency(MBIT, 10 * 1024, Duration::from_millis(50));
        assert_eq!(p.limit, 6250 + 10 * 1024);
        let q = Tbf::new(p).unwrap();
        assert_eq!(
            format_tc_qdisc_show(None, &q),
            "qdisc tbf 0: root refcnt 2 rate 1Mbit burst 10Kb lat 50ms \n \
             Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) \n \
             backlog 0b 0p requeues 0\n"
        );
        assert!(
            Tbf::new(TbfParams { rate: 0, ..p })
                .unwrap_err()
                .to_string()
                .contains("rate")
        );
        assert!(
            Tbf::new(TbfParams { burst: 0, ..p })
                .unwrap_err()
                .to_string()
                .contains("burst")
        );
    }
}
