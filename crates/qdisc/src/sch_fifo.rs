//! The simple FIFOs: `pfifo` (a packet limit) and `bfifo` (a byte limit).
//!
//! Mirrors `net/sched/sch_fifo.c` (`pfifo_enqueue()`, `bfifo_enqueue()`,
//! `fifo_init()`) and the queue helpers `qdisc_enqueue_tail()`,
//! `qdisc_dequeue_head()` of `include/net/sch_generic.h`.

use core::fmt;
use std::collections::VecDeque;

use netcore::{DEFAULT_TX_QUEUE_LEN, DropReason, ETH_DATA_LEN, Instant, SkBuff, kfree_skb_reason};

use crate::sch_api::sprint_size;
use crate::sch_generic::{GsoSkb, NetXmit, Qdisc, QdiscStats};

/// The Ethernet header length that `psched_mtu()` adds to the MTU
/// (`dev->hard_header_len`, `ETH_HLEN`).
pub const ETH_HLEN: u32 = 14;

/// Which limit a [`Fifo`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FifoLimit {
    /// At most this many packets (`pfifo`).
    Packets(u32),
    /// At most this many bytes held (`bfifo`).
    Bytes(u32),
}

/// A tail-drop FIFO: `pfifo` or `bfifo`.
///
/// Mirrors `pfifo_qdisc_ops` and `bfifo_qdisc_ops` in
/// `net/sched/sch_fifo.c`. A packet that would take the queue past its
/// limit is dropped (and counted), the queue is left as it was.
#[doc(alias = "pfifo_qdisc_ops")]
#[doc(alias = "bfifo_qdisc_ops")]
#[derive(Debug)]
pub struct Fifo {
    queue: VecDeque<SkBuff>,
    limit: FifoLimit,
    /// `TCQ_F_CAN_BYPASS`, as `fifo_init()` decides it.
    bypass: bool,
    stats: QdiscStats,
    gso: GsoSkb,
}

impl Fifo {
    /// A `pfifo` holding at most `limit` packets.
    pub fn pfifo(limit: u32) -> Fifo {
        Fifo::new(FifoLimit::Packets(limit))
    }

    /// A `bfifo` holding at most `limit` bytes.
    pub fn bfifo(limit: u32) -> Fifo {
        Fifo::new(FifoLimit::Bytes(limit))
    }

    /// A `pfifo` with Linux's default limit, the device's `txqueuelen`
    /// (`fifo_init()` without options).
    pub fn pfifo_default(tx_queue_len: u32) -> Fifo {
        Fifo::pfifo(tx_queue_len)
    }

    /// A `bfifo` with Linux's default limit, `txqueuelen × psched_mtu()`
    /// (`psched_mtu()` is the MTU plus the 14-byte Ethernet header).
    pub fn bfifo_default(tx_queue_len: u32, mtu: u32) -> Fifo {
        Fifo::bfifo(tx_queue_len.saturating_mul(mtu + ETH_HLEN)).with_mtu(mtu)
    }

    /// A FIFO with the given limit, on a device of the default MTU (1500).
    pub fn new(limit: FifoLimit) -> Fifo {
        Fifo {
            queue: VecDeque::new(),
            limit,
            bypass: false,
            stats: QdiscStats::default(),
            gso: GsoSkb::new(),
        }
        .with_mtu(ETH_DATA_LEN)
    }

    /// The same FIFO on a device of MTU `mtu`, which decides whether an
    /// empty `bfifo` may be bypassed: only if a full-sized frame
    /// (`psched_mtu()`, the MTU plus the Ethernet header) fits its limit.
    /// A `pfifo` may be bypassed whenever its limit is at least one
    /// packet. Mirrors the `TCQ_F_CAN_BYPASS` decision of `fifo_init()`.
    #[must_use]
    pub fn with_mtu(mut self, mtu: u32) -> Fifo {
        self.bypass = match self.limit {
            FifoLimit::Packets(limit) => limit >= 1,
            FifoLimit::Bytes(limit) => limit >= mtu.saturating_add(ETH_HLEN),
        };
        self
    }

    /// The limit.
    pub fn limit(&self) -> FifoLimit {
        self.limit
    }
}

impl Default for Fifo {
    /// A `pfifo` of the default `txqueuelen` (1000) packets.
    fn default() -> Fifo {
        Fifo::pfifo_default(DEFAULT_TX_QUEUE_LEN)
    }
}

/// The default `bfifo` limit for an Ethernet device of the default MTU:
/// 1000 × 1514 bytes.
pub const BFIFO_DEFAULT_LIMIT: u32 = DEFAULT_TX_QUEUE_LEN * (ETH_DATA_LEN + ETH_HLEN);

impl Qdisc for Fifo {
    fn id(&self) -> &'static str {
        match self.limit {
            FifoLimit::Packets(_) => "pfifo",
            FifoLimit::Bytes(_) => "bfifo",
        }
    }

    fn enqueue(&mut self, skb: SkBuff, _now: Instant) -> NetXmit {
        let fits = match self.limit {
            // `sch->q.qlen < sch->limit`
            FifoLimit::Packets(limit) => self.stats.qlen < limit,
            // `sch->qstats.backlog + qdisc_pkt_len(skb) <= sch->limit`
            FifoLimit::Bytes(limit) => {
                u64::from(self.stats.backlog) + skb.len() as u64 <= u64::from(limit)
            }
        };
        if !fits {
            self.stats.drop_skb(skb);
            return NetXmit::Drop;
        }
        self.stats.queue_inc(&skb);
        self.queue.push_back(skb);
        NetXmit::Success
    }

    fn dequeue(&mut self, _now: Instant) -> Option<SkBuff> {
        if let Some(skb) = self.gso.dequeue(&mut self.stats) {
            return Some(skb);
        }
        let skb = self.queue.pop_front()?;
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

    fn can_bypass(&self) -> bool {
        self.bypass
    }

    fn bstats_bypass(&mut self, skb: &SkBuff) {
        self.stats.bstats_update(skb);
    }

    fn reset(&mut self) {
        self.gso.purge(&mut self.stats);
        while let Some(skb) = self.queue.pop_front() {
            self.stats.queue_dec(&skb);
            kfree_skb_reason(skb, DropReason::QueuePurge);
        }
    }

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    fn dump(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        match self.limit {
            FifoLimit::Packets(limit) => write!(f, "limit {limit}p"),
            FifoLimit::Bytes(limit) => write!(f, "limit {}", sprint_size(limit)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{pool, skb_len};

    const T0: Instant = Instant::ZERO;

    #[test]
    fn pfifo_counts_packets_not_bytes() {
        let pool = pool();
        let mut q = Fifo::pfifo(2);
        assert_eq!(q.enqueue(skb_len(&pool, 1500), T0), NetXmit::Success);
        assert_eq!(q.enqueue(skb_len(&pool, 1500), T0), NetXmit::Success);
        assert_eq!(q.enqueue(skb_len(&pool, 60), T0), NetXmit::Drop);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog, s.drops), (2, 3000, 1));
        assert_eq!(q.dequeue(T0).map(|s| s.len()), Some(1500));
        assert_eq!(q.enqueue(skb_len(&pool, 60), T0), NetXmit::Success);
        assert_eq!(
            pool.stats().inflight(),
            2,
            "one held, one dequeued and freed by the test"
        );
    }

    #[test]
    fn bfifo_counts_bytes_and_accepts_an_exact_fit() {
        let pool = pool();
        let mut q = Fifo::bfifo(3000);
        assert_eq!(q.enqueue(skb_len(&pool, 1500), T0), NetXmit::Success);
        assert_eq!(q.enqueue(skb_len(&pool, 1501), T0), NetXmit::Drop);
        assert_eq!(q.enqueue(skb_len(&pool, 1500), T0), NetXmit::Success);
        // full to the byte: even a small packet is refused
        assert_eq!(q.enqueue(skb_len(&pool, 1), T0), NetXmit::Drop);
        let s = q.stats();
        assert_eq!((s.qlen, s.backlog, s.drops), (2, 3000, 2));
        let out: Vec<usize> = std::iter::from_fn(|| q.dequeue(T0))
            .map(|s| s.len())
            .collect();
        assert_eq!(out, [1500, 1500]);
        assert_eq!(q.stats().bytes, 3000);
    }

    #[test]
    fn defaults_are_linuxs() {
        assert_eq!(Fifo::default().limit(), FifoLimit::Packets(1000));
        assert_eq!(
            Fifo::bfifo_default(1000, 1500).limit(),
            FifoLimit::Bytes(1_514_000)
        );
        assert_eq!(BFIFO_DEFAULT_LIMIT, 1_514_000);
        let mut s = String::new();
        Fifo::bfifo(BFIFO_DEFAULT_LIMIT).dump(&mut s).unwrap();
        assert_eq!(s, "limit 1514000b");
        s.clear();
        Fifo::pfifo(100).dump(&mut s).unwrap();
        assert_eq!(s, "limit 100p");
    }

    #[test]
    fn bypass_is_allowed_as_fifo_init_allows_it() {
        assert!(Fifo::pfifo(1).can_bypass());
        assert!(!Fifo::pfifo(0).can_bypass());
        // bfifo: only if one full-sized frame (MTU + 14) fits
        assert!(Fifo::bfifo(1514).can_bypass());
        assert!(!Fifo::bfifo(1513).can_bypass());
        assert!(!Fifo::bfifo(1514).with_mtu(9000).can_bypass());
        assert!(Fifo::bfifo_default(1000, 9000).can_bypass());
        let pool = pool();
        let mut q = Fifo::pfifo(10);
        q.bstats_bypass(&skb_len(&pool, 60));
        let s = q.stats();
        assert_eq!((s.packets, s.bytes, s.qlen, s.backlog), (1, 60, 0, 0));
    }
}
