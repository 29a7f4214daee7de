//! An in-memory full-duplex Ethernet link with netem-like impairments.
//!
//! Mirrors what `tc qdisc add dev X root netem rate R delay D J loss L
//! duplicate P reorder Q corrupt C limit N` does to a veth pair
//! (`net/sched/sch_netem.c`), but as a sans-IO model in virtual time: the
//! caller says when frames are sent, asks when the next one arrives, and
//! collects deliveries. Same seed and same calls give the same deliveries,
//! byte for byte and nanosecond for nanosecond.
//!
//! Each direction (A→B, B→A) has its own [`LinkConfig`], generator and
//! [`LinkStats`]. A frame goes through these stages in order:
//!
//! ```text
//! transmit(now, side, frame)
//!   │ tx_frames, tx_bytes
//!   ├─ transmit queue full? ───────────────────────────── dropped_queue
//!   ├─ serialise: starts when the previous frame is done,
//!   │  lasts (len + 8 preamble/SFD + 12 IFG) * 8 / rate
//!   ├─ lost (random loss, Gilbert–Elliott)? ──────────── dropped_loss
//!   ├─ duplicated? a second copy follows ─────────────── duplicated
//!   └─ per copy: corrupt one bit? ────────────────────── corrupted
//!                arrival = end of serialisation + delay ± jitter
//!                (never before an earlier frame, unless picked for
//!                reordering: then + reorder delay) ──── reordered
//! poll(now) ─ frames whose arrival ≤ now ─────────────── delivered
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;

use netcore::{Duration, Instant};

use crate::phy::{Delivery, Medium, PhyError};
use crate::rng::Rng;

/// Bytes of preamble and start-of-frame delimiter before every frame.
pub const PREAMBLE_SFD_LEN: usize = 8;
/// Bytes of the minimum inter-frame gap after every frame.
pub const IFG_LEN: usize = 12;

/// Longest delay, jitter or reorder delay a link accepts: one hour.
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// Fastest rate a link accepts: 1 Pbit/s.
const MAX_RATE_BPS: u64 = 1_000_000_000_000_000;

/// One end of a [`VirtualWire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The first end.
    A,
    /// The second end.
    B,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// Parameters of the Gilbert–Elliott two-state loss model.
///
/// Mirrors `struct tc_netem_gemodel` (`include/uapi/linux/pkt_sched.h`),
/// which netem names p, r, 1-h and 1-k: here `loss_bad` is netem's `1-h` and
/// `loss_good` its `1-k`, so every field is a plain probability.
#[doc(alias = "tc_netem_gemodel")]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state, per frame.
    pub p: f64,
    /// Probability of moving from the bad to the good state, per frame; the
    /// mean stay in the bad state is `1 / r` frames.
    pub r: f64,
    /// Probability of losing a frame while in the bad state.
    pub loss_bad: f64,
    /// Probability of losing a frame while in the good state.
    pub loss_good: f64,
}

/// The configuration of one direction of a link: rate, delay, impairments.
///
/// Mirrors the options of `tc qdisc ... netem` (`struct tc_netem_qopt` and
/// its attributes in `include/uapi/linux/pkt_sched.h`). Built with chained
/// setters; checked by [`LinkConfig::validate`] (which
/// [`VirtualWire::new`] calls).
///
/// Default: 10 Gbit/s, 1 µs propagation delay, no impairment, unbounded
/// transmit queue.
///
/// ```
/// use netcore::Duration;
/// use nic_hw::LinkConfig;
/// let cfg = LinkConfig::new()
///     .rate_bps(1_000_000_000)
///     .delay(Duration::from_micros(5))
///     .loss(0.01);
/// assert!(cfg.validate().is_ok());
/// let err = LinkConfig::new().loss(1.5).validate().unwrap_err();
/// assert_eq!(err.field, "loss");
/// ```
#[doc(alias = "netem")]
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    rate_bps: u64,
    delay: Duration,
    jitter: Duration,
    loss: f64,
    gilbert_elliott: Option<GilbertElliott>,
    duplicate: f64,
    reorder: f64,
    reorder_delay: Duration,
    corrupt: f64,
    queue_limit: Option<usize>,
}

impl Default for LinkConfig {
    fn default() -> LinkConfig {
        LinkConfig {
            rate_bps: 10_000_000_000,
            delay: Duration::from_micros(1),
            jitter: Duration::ZERO,
            loss: 0.0,
            gilbert_elliott: None,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            corrupt: 0.0,
            queue_limit: None,
        }
    }
}

/// A [`LinkConfig`] field holds a value it does not accept.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfigError {
    /// The field's name, as its setter is named (`"loss"`, `"rate_bps"`).
    pub field: &'static str,
    /// The rejected value (durations in seconds).
    pub value: f64,
    /// What the field accepts.
    pub expected: &'static str,
}

impl fmt::Display for LinkConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid link config: {} = {}, expected {}",
            self.field, self.value, self.expected
        )
    }
}

impl core::error::Error for LinkConfigError {}

fn check_prob(field: &'static str, p: f64) -> Result<(), LinkConfigError> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(LinkConfigError {
            field,
            value: p,
            expected: "a probability in 0..=1",
        })
    }
}

fn check_delay(field: &'static str, d: Duration) -> Result<(), LinkConfigError> {
    if d <= MAX_DELAY {
        Ok(())
    } else {
        Err(LinkConfigError {
            field,
            value: d.as_secs_f64(),
            expected: "a duration of at most 3600 s",
        })
    }
}

impl LinkConfig {
    /// The default: 10 Gbit/s, 1 µs delay, no impairment.
    pub fn new() -> LinkConfig {
        LinkConfig::default()
    }

    /// Line rate in bit/s (1 to 10^15); sets the serialisation delay.
    ///
    /// Mirrors netem's `rate`.
    pub fn rate_bps(mut self, rate: u64) -> LinkConfig {
        self.rate_bps = rate;
        self
    }

    /// Propagation delay added to every frame once it is serialised.
    ///
    /// Mirrors netem's `delay` (latency).
    pub fn delay(mut self, delay: Duration) -> LinkConfig {
        self.delay = delay;
        self
    }

    /// Uniform jitter: each frame's delay varies in `delay ± jitter`, never
    /// below zero and never overtaking an earlier frame.
    ///
    /// Mirrors netem's `delay D J` (jitter) with a uniform distribution.
    pub fn jitter(mut self, jitter: Duration) -> LinkConfig {
        self.jitter = jitter;
        self
    }

    /// Probability that a frame is lost, independently of the others.
    ///
    /// Mirrors netem's `loss random P`.
    pub fn loss(mut self, p: f64) -> LinkConfig {
        self.loss = p;
        self
    }

    /// Bursty loss with the Gilbert–Elliott model (applies in addition to
    /// [`loss`](LinkConfig::loss)).
    ///
    /// Mirrors netem's `loss gemodel p r 1-h 1-k`.
    pub fn gilbert_elliott(mut self, p: f64, r: f64, loss_bad: f64, loss_good: f64) -> LinkConfig {
        self.gilbert_elliott = Some(GilbertElliott {
            p,
            r,
            loss_bad,
            loss_good,
        });
        self
    }

    /// Probability that a frame is delivered twice.
    ///
    /// Mirrors netem's `duplicate P`.
    pub fn duplicate(mut self, p: f64) -> LinkConfig {
        self.duplicate = p;
        self
    }

    /// Probability that a frame is held back by `extra_delay`, so frames
    /// sent after it may overtake it.
    ///
    /// Mirrors netem's `reorder P` with `delay`. Netem sends the picked
    /// frames *without* the delay so they overtake the others; here the
    /// picked frame is delayed so the others overtake it. The receiver sees
    /// the same kind of disorder, and it works with a zero base delay.
    pub fn reorder(mut self, p: f64, extra_delay: Duration) -> LinkConfig {
        self.reorder = p;
        self.reorder_delay = extra_delay;
        self
    }

    /// Probability that one random bit of a frame is flipped; the receiver's
    /// FCS check then fails.
    ///
    /// Mirrors netem's `corrupt P`.
    pub fn corrupt(mut self, p: f64) -> LinkConfig {
        self.corrupt = p;
        self
    }

    /// Bound on the frames waiting in (or being serialised by) the
    /// transmitter; frames beyond it are dropped and counted in
    /// `dropped_queue`. `None` is unbounded.
    ///
    /// Mirrors netem's `limit`, counting only frames not yet on the wire.
    pub fn queue_limit(mut self, frames: Option<usize>) -> LinkConfig {
        self.queue_limit = frames;
        self
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), LinkConfigError> {
        if !(1..=MAX_RATE_BPS).contains(&self.rate_bps) {
            return Err(LinkConfigError {
                field: "rate_bps",
                value: self.rate_bps as f64,
                expected: "a rate in 1..=10^15 bit/s",
            });
        }
        check_delay("delay", self.delay)?;
        check_delay("jitter", self.jitter)?;
        check_prob("loss", self.loss)?;
        if let Some(ge) = self.gilbert_elliott {
            check_prob("gilbert_elliott.p", ge.p)?;
            check_prob("gilbert_elliott.r", ge.r)?;
            check_prob("gilbert_elliott.loss_bad", ge.loss_bad)?;
            check_prob("gilbert_elliott.loss_good", ge.loss_good)?;
        }
        check_prob("duplicate", self.duplicate)?;
        check_prob("reorder", self.reorder)?;
        check_delay("reorder_delay", self.reorder_delay)?;
        if self.reorder > 0.0 && self.reorder_delay.is_zero() {
            return Err(LinkConfigError {
                field: "reorder_delay",
                value: 0.0,
                expected: "a duration above zero when reorder is above zero",
            });
        }
        check_prob("corrupt", self.corrupt)?;
        if self.queue_limit == Some(0) {
            return Err(LinkConfigError {
                field: "queue_limit",
                value: 0.0,
                expected: "None (unbounded) or at least 1 frame",
            });
        }
        Ok(())
    }
}

/// Counters of one direction of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Frames handed to the transmitter.
    pub tx_frames: u64,
    /// Bytes handed to the transmitter (FCS included, no preamble or IFG).
    pub tx_bytes: u64,
    /// Frames handed to the receiver by `poll`/`receive`, copies included.
    pub delivered: u64,
    /// Frames lost on the wire (random or Gilbert–Elliott loss).
    pub dropped_loss: u64,
    /// Frames dropped because the transmit queue was full.
    pub dropped_queue: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Frames held back for reordering.
    pub reordered: u64,
    /// Frames with one bit flipped.
    pub corrupted: u64,
}

/// A frame on its way, ordered by arrival then by transmission order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    frame: Vec<u8>,
}

/// The state of one direction.
#[derive(Debug)]
struct Direction {
    cfg: LinkConfig,
    rng: Rng,
    /// When the transmitter is free again, in units of 1/rate ns
    /// (nanoseconds times the rate), so back-to-back frames never drift.
    busy_until: u128,
    /// End of serialisation of each frame still in the transmitter; kept
    /// only with a queue limit.
    backlog: VecDeque<Instant>,
    ge_bad: bool,
    /// Latest arrival of a frame not picked for reordering.
    last_arrival: Instant,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    stats: LinkStats,
}

impl Direction {
    fn new(cfg: LinkConfig, rng: Rng) -> Direction {
        Direction {
            cfg,
            rng,
            busy_until: 0,
            backlog: VecDeque::new(),
            ge_bad: false,
            last_arrival: Instant::ZERO,
            in_flight: BinaryHeap::new(),
            seq: 0,
            stats: LinkStats::default(),
        }
    }

    /// Whether the frame now finishing serialisation is lost.
    fn lost(&mut self) -> bool {
        let random = self.cfg.loss > 0.0 && self.rng.gen_bool(self.cfg.loss);
        let bursty = match self.cfg.gilbert_elliott {
            None => false,
            Some(ge) => {
                // Loss is decided in the current state, then the state
                // moves, as netem's loss_gilb_ell() does.
                let (loss, leave) = if self.ge_bad {
                    (ge.loss_bad, ge.r)
                } else {
                    (ge.loss_good, ge.p)
                };
                let lost = self.rng.gen_bool(loss);
                if self.rng.gen_bool(leave) {
                    self.ge_bad = !self.ge_bad;
                }
                lost
            }
        };
        random | bursty
    }

    fn transmit(&mut self, now: Instant, mut frame: Vec<u8>) {
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;

        if let Some(limit) = self.cfg.queue_limit {
            while self.backlog.front().is_some_and(|&done| done <= now) {
                self.backlog.pop_front();
            }
            if self.backlog.len() >= limit {
                self.stats.dropped_queue += 1;
                return;
            }
        }

        let rate = u128::from(self.cfg.rate_bps);
        let start = self.busy_until.max(u128::from(now.as_nanos()) * rate);
        let bits = ((frame.len() + PREAMBLE_SFD_LEN + IFG_LEN) * 8) as u128;
        self.busy_until = start + bits * 1_000_000_000;
        // The last bit leaves during this nanosecond: round up, so nothing
        // arrives early.
        let done_ns = self.busy_until.div_ceil(rate);
        let done = Instant::from_nanos(u64::try_from(done_ns).unwrap_or(u64::MAX));
        if self.cfg.queue_limit.is_some() {
            self.backlog.push_back(done);
        }

        if self.lost() {
            self.stats.dropped_loss += 1;
            return;
        }
        let copies = if self.cfg.duplicate > 0.0 && self.rng.gen_bool(self.cfg.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for copy in 0..copies {
            let mut f = if copy + 1 == copies {
                std::mem::take(&mut frame)
            } else {
                frame.clone()
            };
            self.maybe_corrupt(&mut f);
            let seq = self.seq;
            self.seq += 1;
            let at = self.arrival(done);
            self.in_flight.push(Reverse(InFlight { at, seq, frame: f }));
        }
    }

    /// Flips one random bit of `frame` with the configured probability.
    fn maybe_corrupt(&mut self, frame: &mut [u8]) {
        if self.cfg.corrupt > 0.0 && self.rng.gen_bool(self.cfg.corrupt) && !frame.is_empty() {
            let bit = self.rng.gen_range(0..frame.len() as u64 * 8);
            frame[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
        }
    }

    /// When a copy that finished serialisation at `done` arrives.
    fn arrival(&mut self, done: Instant) -> Instant {
        let mut at = done + self.cfg.delay;
        if !self.cfg.jitter.is_zero() {
            let j = self.cfg.jitter.as_nanos() as u64;
            let offset = self.rng.gen_range(0..2 * j + 1);
            // offset - j in [-j, +j], never before the end of serialisation.
            at = if offset >= j {
                at + Duration::from_nanos(offset - j)
            } else {
                at.checked_sub(Duration::from_nanos(j - offset))
                    .unwrap_or(done)
                    .max(done)
            };
        }
        if self.cfg.reorder > 0.0 && self.rng.gen_bool(self.cfg.reorder) {
            self.stats.reordered += 1;
            return at + self.cfg.reorder_delay;
        }
        at = at.max(self.last_arrival);
        self.last_arrival = at;
        at
    }

    fn next_event(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse(f)| f.at)
    }

    fn pop_ready(&mut self, now: Instant) -> Option<InFlight> {
        if self.next_event()? <= now {
            let Reverse(f) = self.in_flight.pop()?;
            self.stats.delivered += 1;
            Some(f)
        } else {
            None
        }
    }
}

/// A full-duplex point-to-point Ethernet link between ends A and B.
///
/// Mirrors a veth pair with netem on both ends (`drivers/net/veth.c`,
/// `net/sched/sch_netem.c`), as a deterministic sans-IO model. Frames
/// include their FCS; the wire never looks inside them.
///
/// ```
/// use netcore::{Duration, Instant};
/// use nic_hw::{LinkConfig, Side, VirtualWire};
///
/// // 1 Gbit/s, 5 µs: a 1500-byte frame takes (1500 + 20) * 8 ns to send.
/// let cfg = LinkConfig::new().rate_bps(1_000_000_000).delay(Duration::from_micros(5));
/// let mut wire = VirtualWire::symmetric(cfg, 7).unwrap();
/// wire.transmit(Instant::ZERO, Side::A, vec![0; 1500]);
/// assert_eq!(wire.next_event(), Some(Instant::from_nanos(12_160 + 5_000)));
/// let got = wire.poll(Instant::from_millis(1));
/// assert_eq!(got[0].port, Side::B);
/// assert_eq!(wire.stats(Side::A).delivered, 1);
/// ```
#[derive(Debug)]
pub struct VirtualWire {
    dirs: [Direction; 2],
}

impl VirtualWire {
    /// A link whose A→B direction follows `a_to_b` and B→A follows
    /// `b_to_a`, with impairment decisions drawn from `seed`.
    ///
    /// Each direction has its own generator derived from `seed`, so traffic
    /// one way never changes what happens the other way.
    pub fn new(
        a_to_b: LinkConfig,
        b_to_a: LinkConfig,
        seed: u64,
    ) -> Result<VirtualWire, LinkConfigError> {
        a_to_b.validate()?;
        b_to_a.validate()?;
        let root = Rng::new(seed);
        Ok(VirtualWire {
            dirs: [
                Direction::new(a_to_b, root.fork(0)),
                Direction::new(b_to_a, root.fork(1)),
            ],
        })
    }

    /// A link with the same configuration both ways.
    pub fn symmetric(cfg: LinkConfig, seed: u64) -> Result<VirtualWire, LinkConfigError> {
        VirtualWire::new(cfg.clone(), cfg, seed)
    }

    /// Sends `frame` (FCS included) from `from` at `now`; the wire takes it.
    ///
    /// `now` must not go backwards between calls. Drops are counted in
    /// [`stats`](VirtualWire::stats), never reported.
    pub fn transmit(&mut self, now: Instant, from: Side, frame: Vec<u8>) {
        self.dirs[from.index()].transmit(now, frame);
    }

    /// The arrival time of the next frame in flight either way.
    pub fn next_event(&self) -> Option<Instant> {
        match (self.dirs[0].next_event(), self.dirs[1].next_event()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every frame arrived by `now`, in arrival order (ties: the one
    /// arriving at B first, then transmission order).
    pub fn poll(&mut self, now: Instant) -> Vec<Delivery<Side>> {
        let mut out = Vec::new();
        loop {
            let to_b = self.dirs[0].next_event().filter(|&t| t <= now);
            let to_a = self.dirs[1].next_event().filter(|&t| t <= now);
            let from = match (to_b, to_a) {
                (None, None) => break,
                (Some(_), None) => Side::A,
                (None, Some(_)) => Side::B,
                (Some(b), Some(a)) => {
                    if b <= a {
                        Side::A
                    } else {
                        Side::B
                    }
                }
            };
            if let Some(f) = self.dirs[from.index()].pop_ready(now) {
                out.push(Delivery {
                    at: f.at,
                    port: from.peer(),
                    frame: f.frame,
                });
            }
        }
        out
    }

    /// The next frame arrived at `side` by `now`, if any.
    pub fn receive(&mut self, now: Instant, side: Side) -> Option<Delivery<Side>> {
        let f = self.dirs[side.peer().index()].pop_ready(now)?;
        Some(Delivery {
            at: f.at,
            port: side,
            frame: f.frame,
        })
    }

    /// The counters of the direction that starts at `from`.
    pub fn stats(&self, from: Side) -> &LinkStats {
        &self.dirs[from.index()].stats
    }

    /// The configuration of the direction that starts at `from`.
    pub fn config(&self, from: Side) -> &LinkConfig {
        &self.dirs[from.index()].cfg
    }

    /// Frames in flight in the direction that starts at `from`.
    pub fn in_flight(&self, from: Side) -> usize {
        self.dirs[from.index()].in_flight.len()
    }
}

impl Medium for VirtualWire {
    type Port = Side;

    fn transmit(&mut self, now: Instant, port: Side, frame: Vec<u8>) -> Result<(), PhyError> {
        VirtualWire::transmit(self, now, port, frame);
        Ok(())
    }

    fn next_event(&self) -> Option<Instant> {
        VirtualWire::next_event(self)
    }

    fn poll(&mut self, now: Instant) -> Vec<Delivery<Side>> {
        VirtualWire::poll(self, now)
    }

    fn receive(&mut self, now: Instant, port: Side) -> Option<Delivery<Side>> {
        VirtualWire::receive(self, now, port)
    }
}
