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
    /// no segment was queued. The segments are cut by netcore's
    /// `skb_gso_segment()` as for a device without offloads (linear, full
    /// checksums): the qdisc does not know the device's features.
    fn tbf_segment(&mut self, skb: SkBuff) -> NetXmit {
        let Ok(segs) = netcore::tcp4_gso_segment(&skb, netcore::NetdevFeatures::empty()) else {
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

    /// A TCP/IPv4 GSO skb of `payload` bytes cut at `mss`, as TCP hands
    /// one down: Ethernet, IPv4 and TCP headers, then the payload.
    fn tcp_gso_skb(pool: &netcore::PagePool, payload: usize, mss: u16) -> SkBuff {
        let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
        let tot = (40 + payload) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&tot.to_be_bytes());
        f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[198, 18, 0, 1, 198, 18, 0, 2]);
        f.extend_from_slice(&[0x9c, 0x40, 0, 80]);
        f.extend_from_slice(&1000u32.to_be_bytes());
        f.extend_from_slice(&77u32.to_be_bytes());
        f.extend_from_slice(&[0x50, 0x19, 0xff, 0xff, 0, 0, 0, 0]); // ACK|PSH|FIN
        f.extend((0..payload).map(|i| (i % 251) as u8));
        let mut skb = SkBuff::from_slice(pool, 64, &f).unwrap();
        skb.protocol = netcore::ETH_P_IP;
        skb.set_network_header(14).unwrap();
        skb.set_transport_header(34).unwrap();
        skb.gso_size = mss;
        skb.gso_type = netcore::SkbGsoType::TCPV4;
        skb
    }

    /// `tbf_segment()`: a GSO packet larger than the bucket goes out as its
    /// segments, each a whole frame with valid checksums, the sequence
    /// advancing by the MSS and PSH/FIN only on the last; a GSO packet
    /// that is not TCP/IPv4 cannot be cut and is dropped and counted.
    #[test]
    fn a_gso_packet_larger_than_the_bucket_is_queued_as_its_segments() {
        let pool = pool();
        let mut q = Tbf::new(TbfParams {
            rate: MBIT,
            burst: 1600,
            limit: 100_000,
        })
        .unwrap();
        let skb = tcp_gso_skb(&pool, 4000, 1448);
        assert_eq!(q.enqueue(skb, Instant::ZERO), NetXmit::Success);
        assert_eq!(q.stats().qlen, 3, "4000 bytes at 1448 a segment");
        let mut now = Instant::ZERO;
        let mut got = Vec::new();
        for i in 0..3u32 {
            let seg = loop {
                if let Some(seg) = q.dequeue(now) {
                    break seg;
                }
                now = q.next_event().expect("a backlogged tbf has a next event");
            };
            let mut b = vec![0u8; seg.len()];
            seg.copy_bits(0, &mut b).unwrap();
            let ip = wire::Ipv4Packet::new_verified(&b[14..]).unwrap();
            let tcp = wire::TcpPacket::new_checked(ip.payload()).unwrap();
            assert!(
                tcp.verify_checksum(ip.src_addr(), ip.dst_addr()),
                "segment {i}"
            );
            assert_eq!(tcp.seq_number(), 1000 + i * 1448);
            let last = i == 2;
            let fin_psh = wire::TcpFlags::FIN | wire::TcpFlags::PSH;
            assert_eq!(
                tcp.flags().contains(fin_psh),
                last,
                "segment {i}: PSH and FIN on the last only"
            );
            assert_eq!(tcp.flags().intersects(fin_psh), last, "segment {i}");
            got.extend_from_slice(tcp.payload());
        }
        assert_eq!(got, (0..4000).map(|i| (i % 251) as u8).collect::<Vec<_>>());
        let mut udp = tcp_gso_skb(&pool, 4000, 1448);
        udp.gso_type = netcore::SkbGsoType::UDP_L4;
        assert_eq!(q.enqueue(udp, now), NetXmit::Drop);
        assert_eq!(q.stats().drops, 1);
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
