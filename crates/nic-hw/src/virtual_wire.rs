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
//!
//! # Cost per frame
//!
//! The wire is on every simulated packet's path, so it keeps per-frame work
//! small without giving up exact time or determinism:
//!
//! - Frames not picked for reordering arrive in send order (jitter is
//!   clamped behind the previous frame), so they wait in a FIFO
//!   (`VecDeque`); only frames held back for reordering go to a heap, and
//!   delivery merges the two heads by (arrival, send order), exactly as one
//!   heap over all frames would.
//! - A link with no impairment configured takes a fast path that draws
//!   nothing from the generator; impairments that are off never draw either,
//!   so turning one on does not shift the others' draws.
//! - Serialisation time is kept as whole nanoseconds plus a remainder in
//!   units of 1/rate ns, with the division cached per frame length.
//! - [`transmit_slice`](VirtualWire::transmit_slice),
//!   [`receive_into`](VirtualWire::receive_into),
//!   [`poll_into`](VirtualWire::poll_into) and
//!   [`recycle`](VirtualWire::recycle) reuse frame buffers and output
//!   vectors, so a steady stream allocates nothing; [`transmit`],
//!   [`poll`] and [`receive`] remain for callers that own their `Vec`s.
//!
//! [`transmit`]: VirtualWire::transmit
//! [`poll`]: VirtualWire::poll
//! [`receive`]: VirtualWire::receive

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use netcore::{Duration, Instant};

use crate::fcs::write_fcs;
use crate::phy::{Delivery, Medium, PhyError, Vouch};
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
    /// What the sender's MAC vouched for, while the wire has changed no
    /// bit of the frame (a corruption empties it). With [`Vouch::FCS`]
    /// the last four bytes are only room for the FCS, written by
    /// [`InFlight::into_frame`] when a reader takes the bytes as they are.
    vouch: Vouch,
}

impl InFlight {
    /// The frame's bytes with its FCS in place, for a reader that does not
    /// take the vouch.
    fn into_frame(mut self) -> Vec<u8> {
        if self.vouch.contains(Vouch::FCS) {
            write_fcs(&mut self.frame);
        }
        self.frame
    }
}

/// The serialisation time of one frame length, in whole nanoseconds plus a
/// remainder in units of 1/rate ns; cached because most traffic repeats a
/// few lengths and the division is the costliest step of a transmit.
#[derive(Clone, Copy, Debug)]
struct SerialTime {
    len: usize,
    ns: u64,
    rem: u64,
}

/// The state of one direction.
#[derive(Debug)]
struct Direction {
    cfg: LinkConfig,
    /// No impairment is configured (no loss, duplication, corruption,
    /// jitter or reordering): frames skip every draw and go straight to
    /// `in_order`, with the same times the general path gives.
    plain: bool,
    /// `cfg.delay` in nanoseconds (validation bounds it to an hour).
    delay_ns: u64,
    rng: Rng,
    /// When the transmitter is free again: whole nanoseconds plus
    /// `busy_rem / rate` of one, so back-to-back frames never drift.
    busy_ns: u64,
    /// The fraction of a nanosecond past `busy_ns`, in `0..rate`.
    busy_rem: u64,
    serial: SerialTime,
    /// End of serialisation of each frame still in the transmitter; kept
    /// only with a queue limit.
    backlog: VecDeque<Instant>,
    ge_bad: bool,
    /// Latest arrival of a frame not picked for reordering.
    last_arrival: Instant,
    /// Frames not picked for reordering. Their arrivals never decrease
    /// (jitter is clamped to `last_arrival`) and their `seq` grows, so
    /// this queue is already in delivery order: no heap needed.
    in_order: VecDeque<InFlight>,
    /// Frames held back for reordering (only with `reorder > 0`), which
    /// later frames overtake; a heap on (arrival, seq).
    held: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    stats: LinkStats,
}

impl Direction {
    fn new(cfg: LinkConfig, rng: Rng) -> Direction {
        let plain = cfg.loss == 0.0
            && cfg.gilbert_elliott.is_none()
            && cfg.duplicate == 0.0
            && cfg.corrupt == 0.0
            && cfg.jitter.is_zero()
            && cfg.reorder == 0.0;
        Direction {
            delay_ns: u64::try_from(cfg.delay.as_nanos()).unwrap_or(u64::MAX),
            plain,
            cfg,
            rng,
            busy_ns: 0,
            busy_rem: 0,
            serial: SerialTime {
                len: usize::MAX,
                ns: 0,
                rem: 0,
            },
            backlog: VecDeque::new(),
            ge_bad: false,
            last_arrival: Instant::ZERO,
            in_order: VecDeque::new(),
            held: BinaryHeap::new(),
            seq: 0,
            stats: LinkStats::default(),
        }
    }

    /// How long a frame of `len` bytes occupies the transmitter,
    /// preamble and inter-frame gap included.
    #[inline]
    fn serial_time(&mut self, len: usize) -> SerialTime {
        if self.serial.len != len {
            let rate = u128::from(self.cfg.rate_bps);
            let bits = (len as u128 + (PREAMBLE_SFD_LEN + IFG_LEN) as u128) * 8;
            let units = bits * 1_000_000_000;
            self.serial = SerialTime {
                len,
                ns: u64::try_from(units / rate).unwrap_or(u64::MAX),
                // Below `rate`, which fits in a u64.
                rem: (units % rate) as u64,
            };
        }
        self.serial
    }

    /// Starts serialising a frame of `len` bytes at `now` (or when the
    /// transmitter frees up) and returns when its last bit has left.
    #[inline]
    fn serialise(&mut self, now: Instant, len: usize) -> Instant {
        let rate = self.cfg.rate_bps;
        let now_ns = now.as_nanos();
        if (now_ns, 0) > (self.busy_ns, self.busy_rem) {
            self.busy_ns = now_ns;
            self.busy_rem = 0;
        }
        let t = self.serial_time(len);
        let mut ns = t.ns;
        // Both remainders are below `rate` <= 10^15, so the sum fits.
        self.busy_rem += t.rem;
        if self.busy_rem >= rate {
            self.busy_rem -= rate;
            ns += 1;
        }
        self.busy_ns = self.busy_ns.saturating_add(ns);
        // The last bit leaves during this nanosecond: round up, so nothing
        // arrives early.
        Instant::from_nanos(self.busy_ns.saturating_add(u64::from(self.busy_rem != 0)))
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

    /// Takes `frame` sent at `now` with what its MAC vouches for; `spare`
    /// supplies the buffer of a duplicate and keeps (up to `cap`) the
    /// buffer of a dropped frame.
    fn transmit(
        &mut self,
        now: Instant,
        frame: Vec<u8>,
        vouch: Vouch,
        spare: &mut Vec<Vec<u8>>,
        cap: usize,
    ) {
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;

        if let Some(limit) = self.cfg.queue_limit {
            while self.backlog.front().is_some_and(|&done| done <= now) {
                self.backlog.pop_front();
            }
            if self.backlog.len() >= limit {
                self.stats.dropped_queue += 1;
                recycle(spare, cap, frame);
                return;
            }
        }

        let done = self.serialise(now, frame.len());
        if self.cfg.queue_limit.is_some() {
            self.backlog.push_back(done);
        }
        if self.plain {
            let at = self.delayed_plain(done);
            self.push_in_order(at, frame, vouch);
            return;
        }

        if self.lost() {
            self.stats.dropped_loss += 1;
            recycle(spare, cap, frame);
            return;
        }
        if self.cfg.duplicate > 0.0 && self.rng.gen_bool(self.cfg.duplicate) {
            self.stats.duplicated += 1;
            let mut copy = spare.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(&frame);
            self.launch(done, copy, vouch);
        }
        self.launch(done, frame, vouch);
    }

    /// Puts one copy of a frame that finished serialisation at `done` on
    /// the wire.
    fn launch(&mut self, done: Instant, mut frame: Vec<u8>, vouch: Vouch) {
        let corrupted = self.maybe_corrupt(&mut frame, vouch.contains(Vouch::FCS));
        let vouch = if corrupted { Vouch::empty() } else { vouch };
        let at = self.delayed(done);
        if self.cfg.reorder > 0.0 && self.rng.gen_bool(self.cfg.reorder) {
            let seq = self.seq;
            self.seq += 1;
            self.stats.reordered += 1;
            let at = at + self.cfg.reorder_delay;
            self.held.push(Reverse(InFlight {
                at,
                seq,
                frame,
                vouch,
            }));
        } else {
            self.push_in_order(at, frame, vouch);
        }
    }

    /// `done` plus the propagation delay.
    #[inline]
    fn delayed_plain(&self, done: Instant) -> Instant {
        Instant::from_nanos(done.as_nanos().saturating_add(self.delay_ns))
    }

    /// Queues a frame not picked for reordering: it arrives at `at`, or
    /// right behind the previous such frame if that is later.
    #[inline]
    fn push_in_order(&mut self, at: Instant, frame: Vec<u8>, vouch: Vouch) {
        let at = at.max(self.last_arrival);
        self.last_arrival = at;
        let seq = self.seq;
        self.seq += 1;
        self.in_order.push_back(InFlight {
            at,
            seq,
            frame,
            vouch,
        });
    }

    /// Flips one random bit of `frame` with the configured probability;
    /// returns whether it did. A frame whose FCS is still only room for it
    /// (`fcs_pending`) gets its FCS first: the bit flips in the frame as
    /// the sender's MAC would have sent it.
    fn maybe_corrupt(&mut self, frame: &mut [u8], fcs_pending: bool) -> bool {
        if self.cfg.corrupt > 0.0 && self.rng.gen_bool(self.cfg.corrupt) && !frame.is_empty() {
            if fcs_pending {
                write_fcs(frame);
            }
            let bit = self.rng.gen_range(0..frame.len() as u64 * 8);
            frame[(bit / 8) as usize] ^= 1 << (bit % 8);
            self.stats.corrupted += 1;
            return true;
        }
        false
    }

    /// When a copy that finished serialisation at `done` arrives, before
    /// reordering and before clamping behind earlier frames.
    fn delayed(&mut self, done: Instant) -> Instant {
        let at = self.delayed_plain(done);
        if self.cfg.jitter.is_zero() {
            return at;
        }
        let j = self.cfg.jitter.as_nanos() as u64;
        let offset = self.rng.gen_range(0..2 * j + 1);
        // offset - j in [-j, +j], never before the end of serialisation.
        if offset >= j {
            at + Duration::from_nanos(offset - j)
        } else {
            at.checked_sub(Duration::from_nanos(j - offset))
                .unwrap_or(done)
                .max(done)
        }
    }

    #[inline]
    fn next_event(&self) -> Option<Instant> {
        match (self.in_order.front(), self.held.peek()) {
            (Some(a), Some(Reverse(b))) => Some(a.at.min(b.at)),
            (Some(a), None) => Some(a.at),
            (None, Some(Reverse(b))) => Some(b.at),
            (None, None) => None,
        }
    }

    /// The next frame to arrive, if it has arrived by `now`.
    #[inline]
    fn pop_ready(&mut self, now: Instant) -> Option<InFlight> {
        // The next arrival is the smaller (arrival, seq) of the two queues'
        // heads, exactly what one heap over all frames would give.
        let (at, held_first) = match (self.in_order.front(), self.held.peek()) {
            (None, None) => return None,
            (Some(a), None) => (a.at, false),
            (None, Some(Reverse(b))) => (b.at, true),
            (Some(a), Some(Reverse(b))) => {
                if (b.at, b.seq) < (a.at, a.seq) {
                    (b.at, true)
                } else {
                    (a.at, false)
                }
            }
        };
        if at > now {
            return None;
        }
        let f = if held_first {
            self.held.pop()?.0
        } else {
            self.in_order.pop_front()?
        };
        self.stats.delivered += 1;
        Some(f)
    }

    fn in_flight(&self) -> usize {
        self.in_order.len() + self.held.len()
    }
}

/// Spare frame buffers a wire keeps for reuse at least (see
/// [`MAX_SPARE`]).
const MIN_SPARE: usize = 256;

/// Most spare frame buffers a wire keeps for reuse. Between [`MIN_SPARE`]
/// and this, a wire keeps as many as it has ever had frames in flight:
/// a burst of a whole window (a TSO engine emptying its ring onto the
/// wire) then finds its buffers among the spares of the previous one,
/// where a fixed bound of 256 had the wire free buffers as a window's
/// frames arrived and allocate them again for the next window (`tcp_bulk`:
/// one allocation and one free per four segments).
const MAX_SPARE: usize = 8192;

/// Keeps `frame`'s allocation for a later frame, if there are fewer than
/// `cap` spares.
fn recycle(spare: &mut Vec<Vec<u8>>, cap: usize, mut frame: Vec<u8>) {
    if spare.len() < cap && frame.capacity() > 0 {
        frame.clear();
        spare.push(frame);
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
    /// Emptied frame buffers handed back by receivers, reused by
    /// [`transmit_slice`](VirtualWire::transmit_slice) and duplication.
    spare: Vec<Vec<u8>>,
    /// How many spares the wire keeps: the most frames it has had in
    /// flight, within [`MIN_SPARE`]..=[`MAX_SPARE`].
    spare_cap: usize,
    /// Each direction's next arrival, republished after every change to
    /// its frames in flight.
    heads: Arc<WireHeads>,
}

/// The next arrival at each end of a [`VirtualWire`], published by the
/// wire for readers that do not take its lock (see
/// [`VirtualWire::heads`]).
///
/// No kernel twin: the simulation's view of the medium. Lets a port ask
/// "can a frame have reached me by now?" and "when is the wire's next
/// event?" with two atomic loads, where taking the wire's lock and looking
/// at its queues cost a NIC poll most of its time when nothing had
/// arrived.
#[derive(Debug)]
pub struct WireHeads {
    /// In nanoseconds, per direction (index of the sending side); `NONE`
    /// when nothing is in flight that way.
    at_ns: [AtomicU64; 2],
}

impl WireHeads {
    /// Nothing in flight. A frame arriving at `u64::MAX` ns is published
    /// one nanosecond earlier: a bound, never later than the arrival.
    const NONE: u64 = u64::MAX;

    fn new() -> WireHeads {
        WireHeads {
            at_ns: [AtomicU64::new(Self::NONE), AtomicU64::new(Self::NONE)],
        }
    }

    fn publish(&self, from: usize, next: Option<Instant>) {
        let ns = next.map_or(Self::NONE, |t| t.as_nanos().min(Self::NONE - 1));
        self.at_ns[from].store(ns, Ordering::Release);
    }

    /// When the next frame in flight towards `side` arrives (no later
    /// than; see [`WireHeads`]), or `None` when none is in flight. As of
    /// the wire's last change: a frame sent since the load may arrive
    /// earlier, exactly as if it had been sent after it.
    #[inline]
    pub fn next_arrival(&self, side: Side) -> Option<Instant> {
        let ns = self.at_ns[side.peer().index()].load(Ordering::Acquire);
        (ns != Self::NONE).then(|| Instant::from_nanos(ns))
    }

    /// Whether a frame has arrived at `side` by `now`: `false` means
    /// [`VirtualWire::receive`] (and the other receives) at `now` would
    /// find nothing.
    #[inline]
    pub fn arrived(&self, side: Side, now: Instant) -> bool {
        let ns = self.at_ns[side.peer().index()].load(Ordering::Acquire);
        ns != Self::NONE && ns <= now.as_nanos()
    }
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
            spare: Vec::new(),
            spare_cap: MIN_SPARE,
            heads: Arc::new(WireHeads::new()),
        })
    }

    /// The wire's [`WireHeads`]: each end's next arrival, readable
    /// without the wire's lock and kept up to date by every transmit and
    /// receive.
    pub fn heads(&self) -> Arc<WireHeads> {
        Arc::clone(&self.heads)
    }

    /// Republishes direction `from`'s next arrival after its frames in
    /// flight changed.
    #[inline]
    fn publish(&self, from: usize) {
        self.heads.publish(from, self.dirs[from].next_event());
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
        let cap = self.spare_cap;
        self.dirs[from.index()].transmit(now, frame, Vouch::empty(), &mut self.spare, cap);
        self.publish(from.index());
    }

    /// A spare buffer for a frame about to be sent, or a new one when
    /// there is none: then the spare bound rises to the frames in flight
    /// plus this one (see [`MAX_SPARE`]), so that they are all kept when
    /// they come back. Only a miss reads the queues.
    #[inline]
    fn take_spare(&mut self) -> Vec<u8> {
        if let Some(buf) = self.spare.pop() {
            buf
        } else {
            self.grow_spare_cap();
            Vec::new()
        }
    }

    #[cold]
    fn grow_spare_cap(&mut self) {
        let n = self.dirs[0].in_flight() + self.dirs[1].in_flight() + 1;
        if n > self.spare_cap {
            self.spare_cap = n.min(MAX_SPARE);
        }
    }

    /// Like [`transmit`](VirtualWire::transmit), but copies `frame` into a
    /// buffer the wire recycled from an earlier delivery, so a steady
    /// stream allocates nothing.
    pub fn transmit_slice(&mut self, now: Instant, from: Side, frame: &[u8]) {
        let mut buf = self.take_spare();
        buf.extend_from_slice(frame);
        self.transmit(now, from, buf);
    }

    /// Like [`transmit`](VirtualWire::transmit), but takes the frame out of
    /// `frame` and leaves a recycled (empty) buffer in its place: no copy,
    /// and no allocation once the wire has spare buffers.
    pub fn transmit_swap(&mut self, now: Instant, from: Side, frame: &mut Vec<u8>) {
        self.transmit_swap_vouched(now, from, frame, Vouch::empty());
    }

    /// Like [`transmit_swap`](VirtualWire::transmit_swap), for a frame from a
    /// MAC whose last four bytes are room for the FCS it vouches for. The
    /// wire writes the FCS only when the bytes are read as they are: before
    /// it corrupts the frame, or when a receiver takes it with
    /// [`receive`](VirtualWire::receive), [`receive_into`](VirtualWire::receive_into)
    /// or [`poll`](VirtualWire::poll). Unless the wire corrupts it, the
    /// receiving end learns from
    /// [`receive_into_fcs_good`](VirtualWire::receive_into_fcs_good) that its
    /// FCS check would pass, and the CRC is never computed.
    pub fn transmit_swap_fcs_good(&mut self, now: Instant, from: Side, frame: &mut Vec<u8>) {
        self.transmit_swap_vouched(now, from, frame, Vouch::FCS);
    }

    /// Like [`transmit_swap`](VirtualWire::transmit_swap), for a frame with
    /// what its MAC vouches for: the FCS as in
    /// [`transmit_swap_fcs_good`](VirtualWire::transmit_swap_fcs_good), and
    /// the TCP/UDP checksum ([`Vouch::L4_CSUM`], kept only with the FCS).
    /// The receiving end learns it from
    /// [`receive_into_vouched`](VirtualWire::receive_into_vouched) unless the
    /// wire corrupts the frame.
    #[inline]
    pub fn transmit_swap_vouched(
        &mut self,
        now: Instant,
        from: Side,
        frame: &mut Vec<u8>,
        vouch: Vouch,
    ) {
        let vouch = if vouch.contains(Vouch::FCS) {
            vouch
        } else {
            Vouch::empty()
        };
        let mut buf = self.take_spare();
        buf.clear();
        let sent = std::mem::replace(frame, buf);
        let cap = self.spare_cap;
        self.dirs[from.index()].transmit(now, sent, vouch, &mut self.spare, cap);
        self.publish(from.index());
    }

    /// Gives a frame buffer back for reuse by later transmits (its contents
    /// are discarded). The wire keeps as many as it has had frames in
    /// flight, from 256 up to 8,192.
    pub fn recycle(&mut self, frame: Vec<u8>) {
        recycle(&mut self.spare, self.spare_cap, frame);
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
        self.poll_into(now, &mut out);
        out
    }

    /// Like [`poll`](VirtualWire::poll), but appends to `out`, so a caller
    /// that keeps its vector allocates nothing per call. Returns how many
    /// deliveries were appended.
    pub fn poll_into(&mut self, now: Instant, out: &mut Vec<Delivery<Side>>) -> usize {
        let before = out.len();
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
            let f = self.dirs[from.index()].pop_ready(now);
            self.publish(from.index());
            if let Some(f) = f {
                out.push(Delivery {
                    at: f.at,
                    port: from.peer(),
                    frame: f.into_frame(),
                });
            }
        }
        out.len() - before
    }

    /// The next frame arrived at `side` by `now`, if any.
    pub fn receive(&mut self, now: Instant, side: Side) -> Option<Delivery<Side>> {
        let f = self.dirs[side.peer().index()].pop_ready(now)?;
        self.publish(side.peer().index());
        Some(Delivery {
            at: f.at,
            port: side,
            frame: f.into_frame(),
        })
    }

    /// Like [`receive`](VirtualWire::receive), but swaps the frame into
    /// `buf` and keeps `buf`'s old allocation for a later
    /// [`transmit_slice`](VirtualWire::transmit_slice). Returns the arrival
    /// time, or `None` (leaving `buf` alone) when nothing has arrived.
    pub fn receive_into(&mut self, now: Instant, side: Side, buf: &mut Vec<u8>) -> Option<Instant> {
        let (at, good) = self.receive_into_fcs_good(now, side, buf)?;
        if good {
            write_fcs(buf);
        }
        Some(at)
    }

    /// Like [`receive_into`](VirtualWire::receive_into), and also tells
    /// whether the frame is bit-exact as a MAC sent it with
    /// [`transmit_swap_fcs_good`](VirtualWire::transmit_swap_fcs_good) (its
    /// FCS check would pass): `false` for a corrupted frame or one sent
    /// any other way. For `true` the last four bytes are as the MAC left
    /// them (room for the FCS): a receiver that reads them writes the FCS
    /// first ([`fcs`](crate::fcs()) of the bytes before them).
    pub fn receive_into_fcs_good(
        &mut self,
        now: Instant,
        side: Side,
        buf: &mut Vec<u8>,
    ) -> Option<(Instant, bool)> {
        self.receive_into_vouched(now, side, buf)
            .map(|(at, v)| (at, v.contains(Vouch::FCS)))
    }

    /// Like [`receive_into_fcs_good`](VirtualWire::receive_into_fcs_good),
    /// with everything the sending MAC vouched for
    /// ([`transmit_swap_vouched`](VirtualWire::transmit_swap_vouched));
    /// empty for a corrupted frame or one sent any other way.
    pub fn receive_into_vouched(
        &mut self,
        now: Instant,
        side: Side,
        buf: &mut Vec<u8>,
    ) -> Option<(Instant, Vouch)> {
        let f = self.dirs[side.peer().index()].pop_ready(now)?;
        self.publish(side.peer().index());
        let old = std::mem::replace(buf, f.frame);
        recycle(&mut self.spare, self.spare_cap, old);
        Some((f.at, f.vouch))
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
        self.dirs[from.index()].in_flight()
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

    fn transmit_slice(&mut self, now: Instant, port: Side, frame: &[u8]) -> Result<(), PhyError> {
        VirtualWire::transmit_slice(self, now, port, frame);
        Ok(())
    }

    fn transmit_swap(
        &mut self,
        now: Instant,
        port: Side,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        VirtualWire::transmit_swap(self, now, port, frame);
        Ok(())
    }

    fn transmit_swap_fcs_good(
        &mut self,
        now: Instant,
        port: Side,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        VirtualWire::transmit_swap_fcs_good(self, now, port, frame);
        Ok(())
    }

    fn receive_into_fcs_good(
        &mut self,
        now: Instant,
        port: Side,
        buf: &mut Vec<u8>,
    ) -> Option<(Instant, bool)> {
        VirtualWire::receive_into_fcs_good(self, now, port, buf)
    }

    fn transmit_swap_vouched(
        &mut self,
        now: Instant,
        port: Side,
        frame: &mut Vec<u8>,
        vouch: Vouch,
    ) -> Result<(), PhyError> {
        VirtualWire::transmit_swap_vouched(self, now, port, frame, vouch);
        Ok(())
    }

    fn receive_into_vouched(
        &mut self,
        now: Instant,
        port: Side,
        buf: &mut Vec<u8>,
    ) -> Option<(Instant, Vouch)> {
        VirtualWire::receive_into_vouched(self, now, port, buf)
    }

    fn poll_into(&mut self, now: Instant, out: &mut Vec<Delivery<Side>>) -> usize {
        VirtualWire::poll_into(self, now, out)
    }

    fn receive_into(&mut self, now: Instant, port: Side, buf: &mut Vec<u8>) -> Option<Instant> {
        VirtualWire::receive_into(self, now, port, buf)
    }

    fn recycle(&mut self, frame: Vec<u8>) {
        VirtualWire::recycle(self, frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fcs::{append_fcs, check_fcs};

    /// A frame of `len` bytes (FCS included) carrying `seq` at offset 14.
    fn frame(seq: u32, len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len - 4];
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x88, 0xb5]);
        f[14..18].copy_from_slice(&seq.to_be_bytes());
        append_fcs(&mut f);
        f
    }

    fn seq_of(f: &[u8]) -> u32 {
        u32::from_be_bytes([f[14], f[15], f[16], f[17]])
    }

    fn wire(cfg: LinkConfig, seed: u64) -> VirtualWire {
        VirtualWire::new(cfg, LinkConfig::new(), seed).unwrap()
    }

    /// Sends `n` frames from A, one every `gap`, and collects everything.
    fn run(w: &mut VirtualWire, n: u32, len: usize, gap: Duration) -> Vec<Delivery<Side>> {
        let mut now = Instant::ZERO;
        for i in 0..n {
            w.transmit(now, Side::A, frame(i, len));
            now += gap;
        }
        w.poll(Instant::MAX)
    }

    fn arrival_ns(d: &[Delivery<Side>]) -> Vec<u64> {
        d.iter().map(|d| d.at.as_nanos()).collect()
    }

    #[test]
    fn back_to_back_frames_queue_behind_each_other() {
        // 10 Gbit/s: a 1500-byte frame occupies (1500 + 20) * 8 bits = 1216 ns.
        let mut w = wire(LinkConfig::new(), 1);
        let got = run(&mut w, 3, 1500, Duration::ZERO);
        assert_eq!(arrival_ns(&got), [2216, 3432, 4648]);
        assert!(got.iter().all(|d| d.port == Side::B));
        assert_eq!(
            got.iter().map(|d| seq_of(&d.frame)).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    #[test]
    fn fractional_serialisation_times_do_not_drift() {
        // 64 bytes at 10 Gbit/s take 67.2 ns; arrivals round up to whole
        // nanoseconds, but the link keeps exact time: the fifth ends at 336.
        let mut w = wire(LinkConfig::new().delay(Duration::ZERO), 1);
        let got = run(&mut w, 5, 64, Duration::ZERO);
        assert_eq!(arrival_ns(&got), [68, 135, 202, 269, 336]);
    }

    #[test]
    fn propagation_delay_and_idle_link() {
        let cfg = LinkConfig::new()
            .rate_bps(1_000_000_000)
            .delay(Duration::from_millis(5));
        let mut w = wire(cfg, 1);
        let t0 = Instant::from_millis(1);
        w.transmit(t0, Side::A, frame(0, 100));
        // 120 bytes at 1 Gbit/s: 960 ns, then 5 ms on the wire.
        let due = t0 + Duration::from_nanos(960) + Duration::from_millis(5);
        assert_eq!(w.next_event(), Some(due));
        assert!(w.poll(Instant::from_nanos(due.as_nanos() - 1)).is_empty());
        assert_eq!(w.in_flight(Side::A), 1);
        let got = w.poll(due);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].at, due);
        assert_eq!(w.next_event(), None);
        // A frame sent long after the link went idle starts at once.
        let t1 = Instant::from_secs(1);
        w.transmit(t1, Side::A, frame(1, 100));
        assert_eq!(
            w.next_event(),
            Some(t1 + Duration::from_nanos(960) + Duration::from_millis(5))
        );
    }

    #[test]
    fn directions_are_independent_and_receive_is_per_side() {
        let mut w = VirtualWire::new(
            LinkConfig::new().delay(Duration::from_micros(10)),
            LinkConfig::new().delay(Duration::from_micros(1)),
            1,
        )
        .unwrap();
        w.transmit(Instant::ZERO, Side::A, frame(1, 64));
        w.transmit(Instant::ZERO, Side::B, frame(2, 64));
        let end = Instant::from_millis(1);
        let to_a = w.receive(end, Side::A).unwrap();
        assert_eq!((to_a.port, seq_of(&to_a.frame)), (Side::A, 2));
        assert!(w.receive(end, Side::A).is_none());
        let all = w.poll(end);
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].port, seq_of(&all[0].frame)), (Side::B, 1));
        assert_eq!(w.stats(Side::A).delivered, 1);
        assert_eq!(w.stats(Side::B).delivered, 1);
        assert_eq!(w.stats(Side::A).tx_bytes, 64);
    }

    fn impaired() -> LinkConfig {
        LinkConfig::new()
            .rate_bps(1_000_000_000)
            .delay(Duration::from_micros(20))
            .jitter(Duration::from_micros(3))
            .loss(0.05)
            .gilbert_elliott(0.01, 0.3, 0.8, 0.0)
            .duplicate(0.05)
            .reorder(0.05, Duration::from_micros(50))
            .corrupt(0.05)
            .queue_limit(Some(8))
    }

    /// The published heads follow every transmit and receive, both ways,
    /// impairments included, and `arrived` says exactly whether a receive
    /// finds a frame.
    #[test]
    fn heads_track_each_directions_next_arrival() {
        let mut w = wire(impaired(), 11);
        let heads = w.heads();
        let check = |w: &VirtualWire| {
            for side in [Side::A, Side::B] {
                let next = w.dirs[side.peer().index()].next_event();
                assert_eq!(heads.next_arrival(side), next);
            }
        };
        check(&w);
        let mut buf = Vec::new();
        let mut now = Instant::ZERO;
        for i in 0..3000u32 {
            now += Duration::from_nanos(u64::from(i % 7) * 700);
            let side = if i % 3 == 0 { Side::B } else { Side::A };
            match i % 5 {
                0 => w.transmit(now, side, frame(i, 64 + (i as usize % 200))),
                1 => w.transmit_slice(now, side, &frame(i, 80)),
                2 => {
                    let mut f = frame(i, 64);
                    w.transmit_swap_fcs_good(now, side, &mut f);
                }
                3 => {
                    let ready = heads.arrived(side.peer(), now);
                    assert_eq!(
                        w.receive_into_vouched(now, side.peer(), &mut buf).is_some(),
                        ready
                    );
                }
                _ => {
                    let ready = heads.arrived(side, now);
                    assert_eq!(w.receive(now, side).is_some(), ready);
                }
            }
            check(&w);
            if i % 500 == 499 {
                w.poll(now + Duration::from_micros(30));
                check(&w);
            }
        }
        w.poll(Instant::MAX);
        check(&w);
        assert_eq!(
            (heads.next_arrival(Side::A), heads.next_arrival(Side::B)),
            (None, None)
        );
        assert!(!heads.arrived(Side::A, Instant::MAX));
    }

    #[test]
    fn same_seed_same_deliveries_other_seed_other_losses() {
        let go = |seed| {
            let mut w = wire(impaired(), seed);
            let d = run(&mut w, 5_000, 200, Duration::from_nanos(1_500));
            (d, *w.stats(Side::A))
        };
        let (a, sa) = go(11);
        let (b, sb) = go(11);
        assert_eq!(a, b, "byte for byte, time for time");
        assert_eq!(sa, sb);
        let (c, sc) = go(12);
        let seqs = |d: &[Delivery<Side>]| d.iter().map(|d| seq_of(&d.frame)).collect::<Vec<_>>();
        assert_ne!(seqs(&a), seqs(&c));
        assert_ne!(sa, sc);
        // Every impairment actually happened.
        assert!(sa.dropped_loss > 0 && sa.dropped_queue > 0 && sa.duplicated > 0);
        assert!(sa.reordered > 0 && sa.corrupted > 0);
        assert_eq!(sa.delivered, a.len() as u64);
        assert_eq!(
            sa.tx_frames - sa.dropped_queue - sa.dropped_loss + sa.duplicated,
            sa.delivered
        );
    }

    #[test]
    fn random_loss_rate_within_statistical_bounds() {
        let mut w = wire(LinkConfig::new().loss(0.1), 3);
        let got = run(&mut w, 100_000, 64, Duration::from_nanos(100));
        let s = w.stats(Side::A);
        // Binomial(100000, 0.1): mean 10000, sigma 94.9; six sigma is 569.
        assert!(
            (9_431..=10_569).contains(&s.dropped_loss),
            "{}",
            s.dropped_loss
        );
        assert_eq!(got.len() as u64 + s.dropped_loss, 100_000);
    }

    /// Lengths of the runs of consecutive lost sequence numbers.
    fn loss_bursts(got: &[Delivery<Side>], n: u32) -> Vec<u32> {
        let mut seen = vec![false; n as usize];
        for d in got {
            seen[seq_of(&d.frame) as usize] = true;
        }
        let mut bursts = Vec::new();
        let mut run = 0;
        for s in seen {
            if s {
                if run > 0 {
                    bursts.push(run);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        if run > 0 {
            bursts.push(run);
        }
        bursts
    }

    #[test]
    fn gilbert_elliott_losses_come_in_bursts_of_mean_one_over_r() {
        let n = 100_000;
        let mut w = wire(LinkConfig::new().gilbert_elliott(0.01, 0.25, 1.0, 0.0), 5);
        let got = run(&mut w, n, 64, Duration::from_nanos(100));
        let bursts = loss_bursts(&got, n);
        let mean = f64::from(bursts.iter().sum::<u32>()) / bursts.len() as f64;
        // Bad-state stays are geometric with mean 1/r = 4 (sd 3.5); about
        // 960 bursts give a standard error near 0.11.
        assert!(
            (3.4..=4.6).contains(&mean),
            "mean burst {mean} over {} bursts",
            bursts.len()
        );
        // Stationary loss fraction p / (p + r) = 3.85%.
        let lost = f64::from(n - got.len() as u32) / f64::from(n);
        assert!((0.030..=0.047).contains(&lost), "{lost}");

        // Independent loss at the same rate gives bursts barely above 1.
        let mut w = wire(LinkConfig::new().loss(lost), 5);
        let got = run(&mut w, n, 64, Duration::from_nanos(100));
        let bursts = loss_bursts(&got, n);
        let mean = f64::from(bursts.iter().sum::<u32>()) / bursts.len() as f64;
        assert!(mean < 1.15, "{mean}");
    }

    #[test]
    fn duplication_delivers_identical_copies() {
        let mut w = wire(LinkConfig::new().duplicate(0.1), 7);
        let got = run(&mut w, 10_000, 64, Duration::from_nanos(100));
        let s = w.stats(Side::A);
        // Binomial(10000, 0.1): sigma 30.
        assert!((820..=1_180).contains(&s.duplicated), "{}", s.duplicated);
        assert_eq!(got.len() as u64, 10_000 + s.duplicated);
        let copies = got.windows(2).filter(|p| p[0].frame == p[1].frame).count() as u64;
        assert_eq!(
            copies, s.duplicated,
            "each copy arrives right after its original"
        );
        assert!(got.iter().all(|d| check_fcs(&d.frame)));
    }

    #[test]
    fn reordered_frames_are_overtaken_by_later_ones() {
        let cfg = LinkConfig::new().reorder(0.1, Duration::from_micros(10));
        let mut w = wire(cfg, 9);
        let got = run(&mut w, 10_000, 64, Duration::from_micros(1));
        let s = w.stats(Side::A);
        assert!((820..=1_180).contains(&s.reordered), "{}", s.reordered);
        // A frame is out of order when a later-sent frame arrived before it.
        let order: Vec<u32> = got.iter().map(|d| seq_of(&d.frame)).collect();
        let mut max_seen = None;
        let mut late = 0u64;
        for &q in &order {
            if max_seen.is_some_and(|m| m > q) {
                late += 1;
            }
            max_seen = max_seen.max(Some(q));
        }
        // The last picked frame may have no follower; all others are late.
        assert!(
            late + 1 >= s.reordered && late <= s.reordered,
            "late {late} reordered {}",
            s.reordered
        );
        assert_eq!(order.len(), 10_000);
        assert!(
            got.windows(2).all(|p| p[0].at <= p[1].at),
            "deliveries come in time order"
        );
    }

    #[test]
    fn jitter_varies_delay_without_reordering() {
        let cfg = LinkConfig::new()
            .delay(Duration::from_micros(10))
            .jitter(Duration::from_micros(5));
        let mut w = wire(cfg, 4);
        let got = run(&mut w, 2_000, 64, Duration::from_micros(1));
        let order: Vec<u32> = got.iter().map(|d| seq_of(&d.frame)).collect();
        assert_eq!(order, (0..2_000).collect::<Vec<_>>());
        // Latency (arrival - send - 68 ns serialisation) spans the jitter range.
        let lat: Vec<i64> = got
            .iter()
            .map(|d| d.at.as_nanos() as i64 - i64::from(seq_of(&d.frame)) * 1_000 - 68)
            .collect();
        assert!(
            lat.iter().all(|&l| l >= 5_000),
            "never less than delay - jitter"
        );
        assert!(lat.iter().any(|&l| l < 6_000) && lat.iter().any(|&l| l > 14_000));
        assert_eq!(w.stats(Side::A).reordered, 0);
    }

    #[test]
    fn corrupted_frames_differ_by_one_bit_and_fail_the_fcs() {
        let mut w = wire(LinkConfig::new().corrupt(1.0), 8);
        let got = run(&mut w, 200, 64, Duration::from_micros(1));
        assert_eq!(w.stats(Side::A).corrupted, 200);
        // Without jitter or reordering, the i-th delivery is frame i.
        for (i, d) in (0..).zip(&got) {
            assert!(!check_fcs(&d.frame));
            let orig = frame(i, 64);
            let flipped: u32 = d
                .frame
                .iter()
                .zip(&orig)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert_eq!(flipped, 1, "frame {i}");
        }
        let mut w = wire(LinkConfig::new().corrupt(0.1), 8);
        let got = run(&mut w, 10_000, 64, Duration::from_micros(1));
        let bad = got.iter().filter(|d| !check_fcs(&d.frame)).count() as u64;
        assert_eq!(bad, w.stats(Side::A).corrupted);
        assert!((820..=1_180).contains(&bad), "{bad}");
    }

    #[test]
    fn queue_bound_drops_and_counts() {
        // 1 Mbit/s: a 1500-byte frame occupies 12.16 ms.
        let cfg = LinkConfig::new().rate_bps(1_000_000).queue_limit(Some(3));
        let mut w = wire(cfg, 1);
        for i in 0..10 {
            w.transmit(Instant::ZERO, Side::A, frame(i, 1500));
        }
        let s = w.stats(Side::A);
        assert_eq!((s.tx_frames, s.dropped_queue), (10, 7));
        // Once the first frame is on the wire, there is room for one more.
        let t = Instant::from_micros(12_160);
        w.transmit(t, Side::A, frame(10, 1500));
        w.transmit(t, Side::A, frame(11, 1500));
        assert_eq!(w.stats(Side::A).dropped_queue, 8);
        let got = w.poll(Instant::MAX);
        assert_eq!(
            got.iter().map(|d| seq_of(&d.frame)).collect::<Vec<_>>(),
            [0, 1, 2, 10]
        );
        assert_eq!(got[3].at, Instant::from_nanos(4 * 12_160_000 + 1_000));
    }

    #[test]
    fn buffer_reusing_calls_deliver_the_same_as_owning_ones() {
        // The allocation-free calls must not change a single byte or
        // nanosecond, with every impairment on and both directions busy.
        let cfg = impaired().queue_limit(Some(64));
        let mut owning = wire(cfg.clone(), 21);
        let mut reusing = wire(cfg, 21);
        let mut got_owning = Vec::new();
        let mut got_reusing = Vec::new();
        let mut now = Instant::ZERO;
        for i in 0..3_000u32 {
            let side = if i % 4 == 0 { Side::B } else { Side::A };
            let f = frame(i, 64 + (i as usize % 7) * 100);
            if i % 2 == 0 {
                reusing.transmit_slice(now, side, &f);
            } else {
                let mut buf = f.clone();
                reusing.transmit_swap(now, side, &mut buf);
                assert!(buf.is_empty(), "the sender keeps an empty buffer");
            }
            owning.transmit(now, side, f);
            now += Duration::from_nanos(900);
            if i % 10 == 0 {
                got_owning.extend(owning.poll(now));
                let before = got_reusing.len();
                let n = reusing.poll_into(now, &mut got_reusing);
                assert_eq!(n, got_reusing.len() - before);
            }
        }
        got_owning.extend(owning.poll(Instant::MAX));
        reusing.poll_into(Instant::MAX, &mut got_reusing);
        assert_eq!(got_owning, got_reusing);
        assert_eq!(owning.stats(Side::A), reusing.stats(Side::A));
        assert!(reusing.stats(Side::A).duplicated > 0 && reusing.stats(Side::A).reordered > 0);
    }

    #[test]
    fn receive_into_swaps_and_recycles_buffers() {
        let mut w = wire(LinkConfig::new(), 1);
        let mut buf = vec![0xee; 100];
        assert_eq!(w.receive_into(Instant::MAX, Side::B, &mut buf), None);
        assert_eq!(buf, vec![0xee; 100], "untouched when nothing arrived");
        w.transmit_slice(Instant::ZERO, Side::A, &frame(7, 64));
        // Not yet: 68 ns serialisation plus 1 µs delay.
        assert_eq!(
            w.receive_into(Instant::from_nanos(1_067), Side::B, &mut buf),
            None
        );
        assert_eq!(
            w.receive_into(Instant::from_nanos(1_068), Side::B, &mut buf),
            Some(Instant::from_nanos(1_068))
        );
        assert_eq!(buf, frame(7, 64));
        assert_eq!(w.stats(Side::A).delivered, 1);
        // The old 100-byte buffer went to the spare list; the next
        // transmit_slice reuses it, contents replaced.
        assert_eq!(w.spare.len(), 1);
        w.transmit_slice(Instant::from_micros(2), Side::B, &frame(8, 64));
        assert!(w.spare.is_empty());
        let d = w.receive(Instant::MAX, Side::A).unwrap();
        assert_eq!(d.frame, frame(8, 64));
        assert!(d.frame.capacity() >= 100, "the recycled allocation");
        // recycle() keeps at most MIN_SPARE buffers (no more frames were
        // ever in flight) and no empty ones.
        for _ in 0..MIN_SPARE + 10 {
            w.recycle(vec![0; 64]);
        }
        w.recycle(Vec::new());
        assert_eq!(w.spare.len(), MIN_SPARE);
    }

    #[test]
    fn spares_cover_the_most_frames_in_flight() {
        // A burst of more frames than MIN_SPARE: as they arrive, the wire
        // keeps every buffer the receiver hands back for the next burst.
        let mut w = wire(LinkConfig::new(), 1);
        let n = MIN_SPARE + 100;
        for i in 0..n {
            w.transmit_slice(Instant::ZERO, Side::A, &frame(i as u32, 64));
        }
        let mut buf = Vec::new();
        let mut got = 0;
        while w.receive_into(Instant::MAX, Side::B, &mut buf).is_some() {
            got += 1;
        }
        assert_eq!(got, n);
        // The receiver's first buffer was empty (not kept); it holds the
        // last frame's.
        assert_eq!(w.spare.len(), n - 1);
    }

    #[test]
    fn transmit_swap_hands_the_buffer_over_and_takes_a_spare() {
        let mut w = wire(LinkConfig::new(), 1);
        // No spare yet: the sender is left a new empty Vec.
        let mut tx = frame(1, 1514);
        let sent_ptr = tx.as_ptr();
        w.transmit_swap(Instant::ZERO, Side::A, &mut tx);
        assert!(tx.is_empty());
        // The receiver gets the very allocation that was sent (no copy),
        // and its old buffer becomes a spare.
        let mut rx = Vec::with_capacity(2048);
        let rx_old = rx.as_ptr();
        assert!(w.receive_into(Instant::MAX, Side::B, &mut rx).is_some());
        assert_eq!((rx.as_ptr(), rx.clone()), (sent_ptr, frame(1, 1514)));
        // The next swap leaves the sender that spare: no allocation.
        let mut tx = frame(2, 64);
        w.transmit_swap(Instant::from_micros(5), Side::A, &mut tx);
        assert_eq!((tx.as_ptr(), tx.len()), (rx_old, 0));
        assert!(tx.capacity() >= 2048);
        assert!(w.receive_into(Instant::MAX, Side::B, &mut rx).is_some());
        assert_eq!(rx, frame(2, 64));
    }

    #[test]
    fn only_unaltered_mac_frames_are_vouched_for() {
        let mut w = wire(LinkConfig::new(), 3);
        let mut buf = Vec::new();
        let t = Instant::from_millis(1);
        w.transmit_swap_fcs_good(Instant::ZERO, Side::A, &mut frame(1, 64));
        w.transmit_swap(Instant::ZERO, Side::A, &mut frame(2, 64));
        w.transmit_slice(Instant::ZERO, Side::A, &frame(3, 64));
        w.transmit(Instant::ZERO, Side::A, frame(4, 64));
        let got: Vec<bool> = (0..4)
            .map(|_| w.receive_into_fcs_good(t, Side::B, &mut buf).unwrap().1)
            .collect();
        assert_eq!(got, [true, false, false, false]);
        // A corrupted frame (and each corrupted duplicate) is not; the
        // draws, and so the deliveries, are those of the other calls.
        let cfg = LinkConfig::new().corrupt(0.5).duplicate(0.5);
        let (mut a, mut b) = (wire(cfg.clone(), 9), wire(cfg, 9));
        for i in 0..400 {
            let now = Instant::from_micros(u64::from(i));
            a.transmit_swap_fcs_good(now, Side::A, &mut frame(i, 64));
            b.transmit(now, Side::A, frame(i, 64));
        }
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        let mut vouched = 0;
        while let Some((_, good)) = a.receive_into_fcs_good(Instant::MAX, Side::B, &mut fa) {
            assert!(b.receive_into(Instant::MAX, Side::B, &mut fb).is_some());
            assert_eq!(fa, fb);
            let intact = (0..400).any(|i| fa == frame(i, 64));
            assert_eq!(good, intact, "vouched for exactly the intact frames");
            vouched += u64::from(good);
        }
        let s = a.stats(Side::A);
        assert_eq!(vouched, s.delivered - s.corrupted);
        assert!(s.corrupted > 0 && s.duplicated > 0);
    }

    #[test]
    fn a_vouched_fcs_is_written_only_for_readers_that_need_it() {
        // The MAC leaves room for the FCS (zeros here); the real frame is
        // the same body with its CRC.
        let lazy = |seq: u32| {
            let mut f = frame(seq, 64);
            f[60..].fill(0);
            f
        };
        let t = Instant::from_millis(1);
        let mut w = wire(LinkConfig::new(), 3);
        for seq in 0..4 {
            w.transmit_swap_fcs_good(Instant::ZERO, Side::A, &mut lazy(seq));
        }
        // A vouching receiver gets the bytes as the MAC left them.
        let mut buf = Vec::new();
        assert_eq!(
            w.receive_into_fcs_good(t, Side::B, &mut buf).map(|r| r.1),
            Some(true)
        );
        assert_eq!(buf, lazy(0));
        // Every other reader gets the frame with its FCS, as on the cable.
        assert!(w.receive_into(t, Side::B, &mut buf).is_some());
        assert_eq!(buf, frame(1, 64));
        assert_eq!(w.receive(t, Side::B).map(|d| d.frame), Some(frame(2, 64)));
        assert_eq!(Medium::poll(&mut w, t)[0].frame, frame(3, 64));
        // A corrupted frame had its FCS written before the bit flipped:
        // it differs from the real frame in exactly one bit and fails the
        // check, for a vouching receiver too.
        let mut w = wire(LinkConfig::new().corrupt(1.0), 4);
        for seq in 0..32 {
            w.transmit_swap_fcs_good(Instant::ZERO, Side::A, &mut lazy(seq));
        }
        for seq in 0..32 {
            let got = w.receive_into_fcs_good(t, Side::B, &mut buf);
            assert_eq!(got.map(|r| r.1), Some(false), "frame {seq}");
            assert!(!check_fcs(&buf));
            let flipped: u32 = buf
                .iter()
                .zip(&frame(seq, 64))
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert_eq!(flipped, 1, "frame {seq}");
        }
    }

    #[test]
    fn reordered_and_in_order_frames_merge_by_arrival_then_send_order() {
        // With reordering every frame is either held back or not; the two
        // queues must merge exactly as one (arrival, send order) heap would.
        let cfg = LinkConfig::new()
            .delay(Duration::ZERO)
            .reorder(0.5, Duration::from_nanos(67));
        let mut w = wire(cfg, 3);
        let got = run(&mut w, 2_000, 64, Duration::ZERO);
        assert_eq!(got.len(), 2_000);
        assert!(got.windows(2).all(|p| p[0].at <= p[1].at));
        // Equal arrival times come out in the order they were sent.
        for p in got.windows(2) {
            if p[0].at == p[1].at {
                assert!(seq_of(&p[0].frame) < seq_of(&p[1].frame));
            }
        }
        assert!(got.windows(2).any(|p| p[0].at == p[1].at), "ties happened");
        assert!(w.stats(Side::A).reordered > 900);
    }

    #[test]
    fn bad_config_names_the_field() {
        let field = |c: LinkConfig| c.validate().unwrap_err().field;
        assert_eq!(field(LinkConfig::new().loss(1.5)), "loss");
        assert_eq!(field(LinkConfig::new().loss(-0.1)), "loss");
        assert_eq!(field(LinkConfig::new().duplicate(f64::NAN)), "duplicate");
        assert_eq!(field(LinkConfig::new().corrupt(2.0)), "corrupt");
        assert_eq!(field(LinkConfig::new().rate_bps(0)), "rate_bps");
        assert_eq!(
            field(LinkConfig::new().delay(Duration::from_secs(3601))),
            "delay"
        );
        assert_eq!(
            field(LinkConfig::new().jitter(Duration::from_secs(4000))),
            "jitter"
        );
        assert_eq!(
            field(LinkConfig::new().reorder(0.1, Duration::ZERO)),
            "reorder_delay"
        );
        assert_eq!(
            field(LinkConfig::new().reorder(1.1, Duration::from_micros(1))),
            "reorder"
        );
        assert_eq!(field(LinkConfig::new().queue_limit(Some(0))), "queue_limit");
        assert_eq!(
            field(LinkConfig::new().gilbert_elliott(0.1, 2.0, 1.0, 0.0)),
            "gilbert_elliott.r"
        );
        let e = LinkConfig::new().loss(1.5).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid link config: loss = 1.5, expected a probability in 0..=1"
        );
        assert_eq!(
            VirtualWire::new(LinkConfig::new(), LinkConfig::new().loss(7.0), 0)
                .unwrap_err()
                .field,
            "loss"
        );
        assert!(LinkConfig::new().validate().is_ok());
    }
}
