//! A user-written qdisc plugged into a running host from outside the
//! crates: a FIFO that drops every Nth packet (a crude loss injector at
//! the egress of one device).
//!
//! `cargo run -p netstack --example custom_qdisc`

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use netcore::{Duration, Instant, SkBuff, consume_skb};
use netstack::{DEMO_H2, NetstackError, demo_network, schedule_ping};
use qdisc::{NetXmit, Qdisc, QdiscStats};

/// Drops every `n`th packet enqueued; the others leave in order.
pub struct DropEveryNth {
    n: u64,
    seen: u64,
    q: VecDeque<SkBuff>,
    stats: QdiscStats,
}

impl DropEveryNth {
    /// A qdisc that drops packets `n`, `2n`, `3n`…
    pub fn new(n: u64) -> DropEveryNth {
        DropEveryNth {
            n: n.max(1),
            seen: 0,
            q: VecDeque::new(),
            stats: QdiscStats::default(),
        }
    }
}

impl Qdisc for DropEveryNth {
    fn id(&self) -> &'static str {
        "drop_nth"
    }

    fn enqueue(&mut self, skb: SkBuff, _now: Instant) -> NetXmit {
        self.seen += 1;
        if self.seen.is_multiple_of(self.n) {
            self.stats.drops += 1;
            consume_skb(skb);
            return NetXmit::Drop;
        }
        self.stats.qlen += 1;
        self.stats.backlog += skb.len() as u32;
        self.q.push_back(skb);
        NetXmit::Success
    }

    fn dequeue(&mut self, _now: Instant) -> Option<SkBuff> {
        let skb = self.q.pop_front()?;
        self.stats.qlen -= 1;
        self.stats.backlog -= skb.len() as u32;
        self.stats.bstats_update(&skb);
        Some(skb)
    }

    fn peek(&mut self, _now: Instant) -> Option<&SkBuff> {
        self.q.front()
    }

    fn requeue(&mut self, skb: SkBuff) {
        self.stats.requeues += 1;
        self.stats.qlen += 1;
        self.stats.backlog += skb.len() as u32;
        self.q.push_front(skb);
    }

    fn reset(&mut self) {
        self.q.clear();
        self.stats.qlen = 0;
        self.stats.backlog = 0;
    }

    fn stats(&self) -> QdiscStats {
        self.stats
    }

    fn dump(&self, f: &mut dyn fmt::Write) -> fmt::Result {
        write!(f, "drop_nth every {}", self.n)
    }
}

/// Pings h2 six times through h1's eth0 with `DropEveryNth(3)` as its
/// qdisc; returns the replies received and the qdisc's `tc -s` text.
pub fn run() -> Result<(usize, String), NetstackError> {
    let mut net = demo_network(1)?;
    let h1 = net.host("h1")?;
    // `tc qdisc replace dev eth0 root drop_nth` on every queue in use.
    for q in 0..2 {
        h1.replace_qdisc("eth0", q, Box::new(DropEveryNth::new(3)))?;
    }
    let sock = schedule_ping(&mut net, "h1", DEMO_H2, 6, Duration::from_millis(100), 56)?;
    net.run_for(Duration::from_secs(1))?;
    let tc = net.host("h1")?.report(&netstack::Report::TcQdisc)?;
    let received = Arc::clone(&sock).report().received();
    Ok((received, tc))
}

#[allow(dead_code)] // the test includes this file and calls `run` only
fn main() -> Result<(), NetstackError> {
    let (received, tc) = run()?;
    println!("6 pings, {received} replies\n\nh1$ tc -s qdisc\n{tc}");
    Ok(())
}
