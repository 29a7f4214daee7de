//! A network of hosts joined by wires and switches, and the simulation
//! runtime that runs it in virtual time.
//!
//! No kernel twin: this is the lab around the kernels. The simulation is
//! one thread and a discrete-event loop over virtual time:
//!
//! ```text
//! loop:
//!   settle(now):  repeat { poll every NIC (wire → MAC filter → DMA → MSI-X;
//!                          doorbells → tx → wire), run every CPU (cpu_run) }
//!                 until nothing moved
//!   run the application events due at now (in (time, seq) order)
//!   now = min(next app event, next wire delivery / NIC moderation timer,
//!             next CPU timer)        ← idle time costs nothing
//! ```
//!
//! Determinism: hosts, NICs and CPUs are visited in a fixed order, every
//! random choice (wire impairments, the stack's random numbers) comes from
//! generators seeded from the network's seed, and time is virtual, so one
//! seed gives the same packets, byte for byte, and the same counters.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use netcore::{Clock, Duration, Instant, MonotonicClock, VirtualClock};
use nic_hw::{
    LinkConfig, LinkStats, MediumPort, PhyError, PhyPort, Side, Switch, VirtualWire, WireHeads,
};

use crate::cpu::{cpu_has_work, cpu_run_in};
use crate::error::NetstackError;
use crate::host::{Host, HostBuilder};

/// The default number of loop iterations [`Network::run_until_idle`] may
/// take before it gives up with [`NetstackError::EventBudgetExhausted`].
pub const DEFAULT_EVENT_BUDGET: u64 = 10_000_000;

/// An application event: a closure run on the network at a virtual time.
pub type AppEvent = Box<dyn FnOnce(&mut Network) + Send>;

/// An application event in the queue: ordered by (time, seq) alone, so
/// events at one instant run in the order they were scheduled; the
/// closure travels with its key (no side table to look it up in).
struct Scheduled {
    at: Instant,
    seq: u64,
    f: AppEvent,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Scheduled) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Scheduled) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Scheduled) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One link of the network, kept for its counters.
#[derive(Clone)]
pub enum Link {
    /// A point-to-point wire.
    Wire {
        /// The link's name (`w0`, or as described).
        name: String,
        /// The wire (its ends' lock: `parking_lot`'s, taken for every
        /// frame sent and received, costs a third of std's).
        wire: Arc<netcore::SpinLock<VirtualWire>>,
    },
    /// A learning switch.
    Switch {
        /// The switch's name.
        name: String,
        /// The switch.
        switch: Arc<Mutex<Switch>>,
    },
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Link::Wire { name, .. } => write!(f, "Wire({name})"),
            Link::Switch { name, .. } => write!(f, "Switch({name})"),
        }
    }
}

/// A PHY end to plug into a NIC ([`crate::NicConfig::phy`]).
pub type PhyEnd = Box<dyn PhyPort + Send>;

/// The counters of a wire's two directions: (A→B, B→A).
pub type WireStats = (LinkStats, LinkStats);

/// One end of a [`VirtualWire`] as a NIC's PHY.
///
/// No kernel twin: the cable between two simulated NICs. Like
/// [`nic_hw::MediumPort`], but its [`PhyPort::next_event`] is this end's
/// own next arrival where the wire's counters tell it: with nothing in
/// flight towards this end, nothing can arrive (`None`), and with nothing
/// in flight from it, the wire's next event is an arrival here. Only when
/// frames travel both ways does it report the wire's next event (either
/// direction), as `MediumPort` always does. So the simulation does not
/// poll a NIC at the instant a frame reaches the NIC at the other end.
/// Both answers, and [`PhyPort::rx_ready`], come from the wire's
/// [`WireHeads`] without taking the wire's lock.
///
/// On the thread runtime, frames a MAC hands over with
/// [`PhyPort::transmit_swap_vouched`] (each transmit pass of the igb
/// model) wait in the port until the pass ends
/// ([`PhyPort::flush`]) and go on the wire under one lock, each at the
/// instant it was sent: the wire computes the same serialisation and
/// arrival times as if each had been put there at once (nothing reads
/// this direction of the wire between the send and the flush but the
/// other end, which sees the frames no earlier than their arrival). On
/// the thread runtime the two ends are run by two threads, and a lock of
/// the wire per frame on each side had the threads spend their time
/// waiting for each other's cache lines.
struct WirePort {
    wire: Arc<netcore::SpinLock<VirtualWire>>,
    end: Arc<WireEnd>,
    side: Side,
    /// Frames sent since the last flush: (when, frame, vouch).
    outbox: Vec<(Instant, Vec<u8>, nic_hw::Vouch)>,
    /// Empty frame buffers to hand a MAC for the frames it gives us, so
    /// that `transmit_swap_vouched` need not lock the wire for one.
    spares: Vec<Vec<u8>>,
    /// Whether the thread runtime runs the network (its `threaded`
    /// flag): only then are frames held back for the flush. On the
    /// simulation's one thread nobody waits for the lock, and most
    /// passes send one frame (a request, an ACK).
    batch: Arc<AtomicBool>,
}

/// The most frames a [`WirePort`] holds back before it puts them on the
/// wire without waiting for the flush (a bound on the outbox, which a
/// MAC that never flushes would otherwise grow).
const WIRE_OUTBOX_MAX: usize = 256;

/// A [`WirePort`]'s view of its wire's [`WireHeads`]: the port's
/// [`PhyPort::next_event`], also handed to the NIC model as its lock-free
/// [`PhyPort::shared_next_event`].
#[derive(Debug)]
struct WireEnd {
    heads: Arc<WireHeads>,
    side: Side,
}

impl nic_hw::PhyNextEvent for WireEnd {
    #[inline]
    fn next_event(&self) -> Option<Instant> {
        // Nothing in flight towards this end: nothing can arrive.
        let here = self.heads.next_arrival(self.side)?;
        // With nothing leaving this end, the wire's next event is the
        // next arrival here; else a bound no later than it (the wire's
        // next event either way).
        Some(match self.heads.next_arrival(self.side.peer()) {
            Some(there) => here.min(there),
            None => here,
        })
    }
}

impl WirePort {
    fn new(
        wire: Arc<netcore::SpinLock<VirtualWire>>,
        side: Side,
        batch: Arc<AtomicBool>,
    ) -> WirePort {
        let heads = wire.lock().heads();
        WirePort {
            wire,
            end: Arc::new(WireEnd { heads, side }),
            side,
            outbox: Vec::new(),
            spares: Vec::new(),
            batch,
        }
    }

    /// Puts the held-back frames on the wire, in the order and at the
    /// instants they were sent, and keeps the buffers the wire swaps back.
    #[inline]
    fn flush_outbox(&mut self) {
        if !self.outbox.is_empty() {
            self.flush_outbox_slow();
        }
    }

    #[inline(never)]
    fn flush_outbox_slow(&mut self) {
        let mut wire = self.wire.lock();
        for (now, mut frame, vouch) in self.outbox.drain(..) {
            wire.transmit_swap_vouched(now, self.side, &mut frame, vouch);
            if frame.capacity() > 0 && self.spares.len() < WIRE_OUTBOX_MAX {
                self.spares.push(frame);
            }
        }
    }

    /// The wire, locked. Every wire method finishes its bookkeeping before
    /// it can panic, so a lock released by a panic (no poisoning) still
    /// guards a consistent wire.
    fn wire(&self) -> netcore::SpinLockGuard<'_, VirtualWire> {
        self.wire.lock()
    }
}

impl PhyPort for WirePort {
    fn transmit(&mut self, now: Instant, frame: Vec<u8>) -> Result<(), PhyError> {
        self.flush_outbox();
        self.wire().transmit(now, self.side, frame);
        Ok(())
    }

    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        Ok(self.wire().receive(now, self.side).map(|d| d.frame))
    }

    fn next_event(&self) -> Option<Instant> {
        nic_hw::PhyNextEvent::next_event(&*self.end)
    }

    fn shared_next_event(&self) -> Option<Arc<dyn nic_hw::PhyNextEvent>> {
        Some(self.end.clone())
    }

    fn rx_ready(&self, now: Instant) -> bool {
        self.end.heads.arrived(self.side, now)
    }

    fn transmit_slice(&mut self, now: Instant, frame: &[u8]) -> Result<(), PhyError> {
        self.flush_outbox();
        self.wire().transmit_slice(now, self.side, frame);
        Ok(())
    }

    fn transmit_swap(&mut self, now: Instant, frame: &mut Vec<u8>) -> Result<(), PhyError> {
        self.flush_outbox();
        self.wire().transmit_swap(now, self.side, frame);
        Ok(())
    }

    fn transmit_swap_fcs_good(
        &mut self,
        now: Instant,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        self.flush_outbox();
        self.wire().transmit_swap_fcs_good(now, self.side, frame);
        Ok(())
    }

    fn receive_into_fcs_good(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Option<bool>, PhyError> {
        Ok(self
            .wire()
            .receive_into_fcs_good(now, self.side, buf)
            .map(|(_, good)| good))
    }

    fn transmit_swap_vouched(
        &mut self,
        now: Instant,
        frame: &mut Vec<u8>,
        vouch: nic_hw::Vouch,
    ) -> Result<(), PhyError> {
        if !self.batch.load(Ordering::Relaxed) {
            self.flush_outbox();
            self.wire()
                .transmit_swap_vouched(now, self.side, frame, vouch);
            return Ok(());
        }
        if self.outbox.len() >= WIRE_OUTBOX_MAX {
            self.flush_outbox();
        }
        let mut empty = self.spares.pop().unwrap_or_default();
        empty.clear();
        let sent = std::mem::replace(frame, empty);
        self.outbox.push((now, sent, vouch));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PhyError> {
        self.flush_outbox();
        Ok(())
    }

    fn receive_into_vouched(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Option<nic_hw::Vouch>, PhyError> {
        Ok(self
            .wire()
            .receive_into_vouched(now, self.side, buf)
            .map(|(_, v)| v))
    }

    fn receive_into(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<bool, PhyError> {
        Ok(self.wire().receive_into(now, self.side, buf).is_some())
    }
}

impl fmt::Debug for WirePort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WirePort")
            .field("side", &self.side)
            .finish_non_exhaustive()
    }
}

/// A PHY end the network made ([`Network::wire`], [`Network::switch`]),
/// counting in the network's `phy_moves` every call that may give another
/// NIC an earlier event.
///
/// No kernel twin: bookkeeping of the simulation loop. After polling a
/// NIC, [`Network::settle`] must read again the next event of every NIC the
/// poll may have affected. A frame put on a medium can reach any NIC, so a
/// transmit counts. Taking a frame off a full-duplex wire only removes an
/// event (the other end's next event can only move later, which costs at
/// most a poll that finds nothing), so a wire end's receive does not count;
/// a switch moves frames between its ports when any port is used, so every
/// call on a switch port but `next_event` counts. When a poll moved nothing,
/// only the polled NIC's next event is read again. Every `PhyPort` method
/// is forwarded, so the inner port's own versions (the wire's buffer swap,
/// its FCS vouching) are kept.
struct CountedPort<P> {
    inner: P,
    moves: Arc<PhyMoves>,
    /// Whether receiving counts too (a switch port).
    receive_moves: bool,
}

/// The count of calls that may have put a frame on a medium
/// ([`CountedPort`]), which [`Network::settle`] compares before and after
/// a poll.
///
/// No kernel twin. The settle loop's thread (the first to read it: a
/// [`netcore::PcpuOwner`]) counts with a plain load and store, as every
/// NIC of a simulated network is polled from that thread; any other
/// thread (a device thread) adds with a locked add. While the thread
/// runtime runs the network nobody reads the count (there is no settle
/// loop), and the CPU threads that run NIC models in `idle=poll` mode
/// would contend for the shared word on every frame: it is not kept then
/// ([`PhyMoves::set_counting`]).
#[derive(Debug)]
struct PhyMoves {
    local: AtomicU64,
    shared: AtomicU64,
    owner: netcore::PcpuOwner,
    counting: AtomicBool,
}

impl Default for PhyMoves {
    fn default() -> PhyMoves {
        PhyMoves {
            local: AtomicU64::new(0),
            shared: AtomicU64::new(0),
            owner: netcore::PcpuOwner::default(),
            counting: AtomicBool::new(true),
        }
    }
}

impl PhyMoves {
    #[inline]
    fn inc(&self) {
        if self.owner.is_mine() {
            let v = self.local.load(Ordering::Relaxed);
            self.local.store(v + 1, Ordering::Relaxed);
        } else if self.counting.load(Ordering::Relaxed) {
            self.shared.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Stops (while the thread runtime runs the network) or resumes
    /// counting moves from threads other than the settle loop's. A settle
    /// compares counts taken around one poll on its own thread, so what
    /// went uncounted in between changes none of its answers.
    fn set_counting(&self, on: bool) {
        self.counting.store(on, Ordering::Relaxed);
    }

    /// The count so far; the caller becomes the owner if nobody is.
    #[inline]
    fn read(&self) -> u64 {
        self.owner.claim();
        self.local.load(Ordering::Relaxed) + self.shared.load(Ordering::Relaxed)
    }
}

impl<P> CountedPort<P> {
    fn moved(&self) {
        self.moves.inc();
    }

    fn received(&self) {
        if self.receive_moves {
            self.moved();
        }
    }
}

impl<P: PhyPort> PhyPort for CountedPort<P> {
    fn transmit(&mut self, now: Instant, frame: Vec<u8>) -> Result<(), PhyError> {
        self.moved();
        self.inner.transmit(now, frame)
    }

    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        self.received();
        self.inner.receive(now)
    }

    fn next_event(&self) -> Option<Instant> {
        self.inner.next_event()
    }

    fn shared_next_event(&self) -> Option<Arc<dyn nic_hw::PhyNextEvent>> {
        self.inner.shared_next_event()
    }

    fn rx_ready(&self, now: Instant) -> bool {
        // A receive that counts (a switch port's) is never skipped.
        self.receive_moves || self.inner.rx_ready(now)
    }

    fn transmit_slice(&mut self, now: Instant, frame: &[u8]) -> Result<(), PhyError> {
        self.moved();
        self.inner.transmit_slice(now, frame)
    }

    fn transmit_swap(&mut self, now: Instant, frame: &mut Vec<u8>) -> Result<(), PhyError> {
        self.moved();
        self.inner.transmit_swap(now, frame)
    }

    fn receive_into(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<bool, PhyError> {
        self.received();
        self.inner.receive_into(now, buf)
    }

    fn transmit_swap_fcs_good(
        &mut self,
        now: Instant,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        self.moved();
        self.inner.transmit_swap_fcs_good(now, frame)
    }

    fn receive_into_fcs_good(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Option<bool>, PhyError> {
        self.received();
        self.inner.receive_into_fcs_good(now, buf)
    }

    fn transmit_swap_vouched(
        &mut self,
        now: Instant,
        frame: &mut Vec<u8>,
        vouch: nic_hw::Vouch,
    ) -> Result<(), PhyError> {
        self.moved();
        self.inner.transmit_swap_vouched(now, frame, vouch)
    }

    fn flush(&mut self) -> Result<(), PhyError> {
        self.inner.flush()
    }

    fn receive_into_vouched(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Option<nic_hw::Vouch>, PhyError> {
        self.received();
        self.inner.receive_into_vouched(now, buf)
    }
}

impl<P: fmt::Debug> fmt::Debug for CountedPort<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// Hosts joined by links, run by the simulation (or handed to the thread
/// runtime).
pub struct Network {
    pub(crate) clock: Arc<dyn Clock>,
    vclock: Option<VirtualClock>,
    seed: u64,
    pub(crate) hosts: Vec<Host>,
    links: Vec<Link>,
    /// Application events, earliest (then first scheduled) on top.
    events: BinaryHeap<Reverse<Scheduled>>,
    next_seq: u64,
    event_budget: u64,
    events_run: u64,
    /// CPUs that do not run: (host index, CPU, until).
    stalls: Vec<(usize, usize, Instant)>,
    /// Each NIC's next event (host order, then slot order) as the loop
    /// last read it.
    nic_due: Vec<NicDue>,
    /// What the loop knows of each host (host order) as a whole: when its
    /// devices and CPUs next need it, as `next_events` last read it, so
    /// that settle passes over a host with nothing due in one comparison.
    host_wake: Vec<HostWake>,
    /// Whether [`Network::nic_due`] and the hosts' kick masks still
    /// describe the network: set by the loop when it moves the clock, taken
    /// by the next settle (any other settle looks at everything).
    nic_due_valid: bool,
    /// Bumped by the network's PHY ends on every call that may give a NIC
    /// an earlier event (see `CountedPort`): a poll that did not bump it
    /// leaves the other NICs' next events as they were.
    phy_moves: Arc<PhyMoves>,
    /// Set while the thread runtime runs the network (the wires' ports
    /// batch their frames then: see [`WirePort`]).
    threaded: Arc<AtomicBool>,
    /// Off: every poll makes every NIC's next event stale, every round
    /// looks at every host, a round in which a CPU ran is always followed
    /// by another, and the next event is read from every host: the loop
    /// without its shortcuts (tests compare).
    #[cfg(test)]
    precise_nic_due: bool,
    /// When CPUs that were still busy at the end of a settle (softirq work
    /// handed to ksoftirqd round after round) run next, if no other event
    /// comes first.
    ksoftirqd_due: Option<Instant>,
}

/// What the loop knows of one host: a summary of its entries in `nic_due`
/// and of its CPUs' timers, made by `next_events` and marked stale by any
/// look at the host in a settle (or a frame put on a medium). [`Instant::MAX`] stands
/// for "nothing" (an event that far away never comes), so that the
/// summary is two plain comparisons.
#[derive(Clone, Copy, Debug)]
struct HostWake {
    /// Some device's entry is `NicDue::Stale`: the host must be looked
    /// at (its summary below is not to be trusted).
    look: bool,
    /// The earliest of its devices' known next events.
    nic: Instant,
    /// The earliest of its CPUs' next timers, or when `timer_exact` is
    /// false an instant no later than it (what the CPUs' wheels know
    /// without a search, see `CpuTimers`): enough to tell that nothing
    /// is due now, and to pass over the host's timers when something
    /// else comes first.
    timer: Instant,
    /// Whether `timer` is the CPUs' earliest timer itself.
    timer_exact: bool,
}

impl HostWake {
    const LOOK: HostWake = HostWake {
        look: true,
        nic: Instant::MAX,
        timer: Instant::MAX,
        timer_exact: true,
    };

    /// Whether a host whose kick mask is clear has nothing to do at `now`.
    fn quiet(&self, now: Instant) -> bool {
        !self.look && self.nic > now && self.timer > now
    }

    /// The summary of a host after a look at it: its devices' entries
    /// `dues` and its CPUs' timers (their bound when the wheel would
    /// need a search and the bound is later than `now`).
    fn of(dues: &[NicDue], cpus: &[Box<crate::cpu::CpuCtx>], now: Instant) -> HostWake {
        let mut w = HostWake {
            look: false,
            nic: Instant::MAX,
            timer: Instant::MAX,
            timer_exact: true,
        };
        for d in dues {
            match *d {
                NicDue::Known(t) => w.nic = w.nic.min(t.unwrap_or(Instant::MAX)),
                NicDue::Stale => w.look = true,
            }
        }
        for ctx in cpus {
            let (bound, exact) = ctx.timer_bound();
            if exact || bound > now {
                w.timer = w.timer.min(bound);
                w.timer_exact &= exact;
            } else {
                w.timer = w.timer.min(ctx.next_timer().unwrap_or(Instant::MAX));
            }
        }
        w
    }

    /// Makes `timer` exact (searches the wheels that need it).
    fn exact_timer(&mut self, cpus: &[Box<crate::cpu::CpuCtx>]) {
        self.timer = cpus
            .iter()
            .map(|ctx| ctx.next_timer().unwrap_or(Instant::MAX))
            .min()
            .unwrap_or(Instant::MAX);
        self.timer_exact = true;
    }
}

/// `a == b` for host names, byte by byte: names are short and looked up
/// on every application step ([`Network::app`]), where the library's
/// `bcmp` call costs more than comparing a few bytes.
#[inline]
fn name_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// What the loop knows of one NIC's next event.
#[derive(Clone, Copy, Debug)]
enum NicDue {
    /// Something may have changed it since it was read: the device was
    /// polled, a CPU of its host ran or was kicked, a device polled since
    /// put a frame on a medium (see `CountedPort`).
    Stale,
    /// `next_event()` as last read.
    Known(Option<Instant>),
}

/// Settle rounds in a row in which some CPU hit [`crate::cpu::CPU_RUN_MAX_ROUNDS`]
/// before the simulation stops running CPUs at this instant and lets time
/// move to the next event (see [`Network::settle`]).
pub const SETTLE_MAX_BUSY_ROUNDS: u64 = 16;

/// How long a CPU left busy by [`Network::settle`] waits at most before it
/// runs again: one jiffy, the next scheduler tick at which ksoftirqd would
/// run at the latest.
const KSOFTIRQD_DELAY: Duration = Duration::from_millis(1);

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("now", &self.clock.now())
            .field("hosts", &self.hosts)
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

impl Network {
    /// An empty simulated network in virtual time starting at zero; every
    /// random choice is drawn from `seed`.
    pub fn new(seed: u64) -> Network {
        let vclock = VirtualClock::new();
        Network {
            clock: Arc::new(vclock.clone()),
            vclock: Some(vclock),
            seed,
            hosts: Vec::new(),
            links: Vec::new(),
            events: BinaryHeap::new(),
            next_seq: 0,
            event_budget: DEFAULT_EVENT_BUDGET,
            events_run: 0,
            stalls: Vec::new(),
            nic_due: Vec::new(),
            host_wake: Vec::new(),
            nic_due_valid: false,
            phy_moves: Arc::new(PhyMoves::default()),
            threaded: Arc::new(AtomicBool::new(false)),
            #[cfg(test)]
            precise_nic_due: true,
            ksoftirqd_due: None,
        }
    }

    /// An empty network on the real monotonic clock, for
    /// [`crate::ThreadRuntime`].
    pub fn realtime(seed: u64) -> Network {
        let mut n = Network::new(seed);
        n.clock = Arc::new(MonotonicClock::new());
        n.vclock = None;
        n
    }

    /// Told by the thread runtime when it starts (`true`) and stops
    /// running the network: the moves of [`PhyMoves`] are not counted and
    /// the [`WirePort`]s batch their frames while it runs.
    pub(crate) fn set_threaded(&self, on: bool) {
        self.phy_moves.set_counting(!on);
        self.threaded.store(on, Ordering::Relaxed);
    }

    /// Whether the network runs in virtual time.
    pub fn is_simulated(&self) -> bool {
        self.vclock.is_some()
    }

    /// The network's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The current time.
    ///
    /// In virtual time the clock is read directly (the loop reads it many
    /// times per step), not through `dyn Clock`: `clock` is the same
    /// virtual clock then.
    #[inline]
    pub fn now(&self) -> Instant {
        match &self.vclock {
            Some(vc) => vc.now(),
            None => self.clock.now(),
        }
    }

    /// The clock every host reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn link_seed(&self) -> u64 {
        self.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(self.links.len() as u64 + 1)
    }

    /// Adds a point-to-point wire with `cfg` both ways; returns its two
    /// ends, to plug into NICs with [`crate::NicConfig::phy`].
    pub fn wire(&mut self, name: &str, cfg: LinkConfig) -> Result<(PhyEnd, PhyEnd), NetstackError> {
        let wire = VirtualWire::symmetric(cfg, self.link_seed())
            .map_err(|e| NetstackError::Config(format!("link {name}: {e}")))?;
        let wire = Arc::new(netcore::SpinLock::new(wire));
        self.links.push(Link::Wire {
            name: name.to_owned(),
            wire: Arc::clone(&wire),
        });
        let end = |wire, side| -> PhyEnd {
            Box::new(CountedPort {
                inner: WirePort::new(wire, side, Arc::clone(&self.threaded)),
                moves: Arc::clone(&self.phy_moves),
                receive_moves: false,
            })
        };
        Ok((end(Arc::clone(&wire), Side::A), end(wire, Side::B)))
    }

    /// Adds a learning switch with `ports` ports, each on a link with
    /// `cfg`; returns the host ends of the ports' links.
    pub fn switch(
        &mut self,
        name: &str,
        ports: usize,
        cfg: &LinkConfig,
    ) -> Result<Vec<PhyEnd>, NetstackError> {
        let mut sw = Switch::new(self.link_seed());
        for _ in 0..ports {
            sw.add_port(cfg.clone())
                .map_err(|e| NetstackError::Config(format!("switch {name}: {e}")))?;
        }
        let sw = Arc::new(Mutex::new(sw));
        self.links.push(Link::Switch {
            name: name.to_owned(),
            switch: Arc::clone(&sw),
        });
        Ok((0..ports)
            .map(|p| {
                Box::new(CountedPort {
                    inner: MediumPort::new(Arc::clone(&sw), p),
                    moves: Arc::clone(&self.phy_moves),
                    receive_moves: true,
                }) as PhyEnd
            })
            .collect())
    }

    /// Builds a host on the network's clock and adds it; returns its index.
    pub fn add_host(&mut self, builder: HostBuilder) -> Result<usize, NetstackError> {
        let seed = self
            .seed
            .wrapping_add(0x5851_F42D_4C95_7F2D_u64.wrapping_mul(self.hosts.len() as u64 + 1));
        let host = builder.clock(Arc::clone(&self.clock)).seed(seed).build()?;
        if self.hosts.iter().any(|h| h.name() == host.name()) {
            return Err(NetstackError::Config(format!(
                "two hosts named `{}`",
                host.name()
            )));
        }
        if self.is_simulated() {
            // The kicks the host's interrupt controller, softirqs and
            // process queues send (`smp_send_reschedule()`) mark the CPU
            // for the next settle round.
            host.shared.wakeup.set_mask(Arc::clone(&host.kicked));
        }
        self.hosts.push(host);
        self.nic_due_valid = false;
        Ok(self.hosts.len() - 1)
    }

    /// The hosts, in the order they were added.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Result<&Host, NetstackError> {
        self.hosts
            .iter()
            .find(|h| name_eq(h.name(), name))
            .ok_or_else(|| NetstackError::NoHost(name.to_owned()))
    }

    /// The host named `name`, mutably.
    pub fn host_mut(&mut self, name: &str) -> Result<&mut Host, NetstackError> {
        self.hosts
            .iter_mut()
            .find(|h| name_eq(h.name(), name))
            .ok_or_else(|| NetstackError::NoHost(name.to_owned()))
    }

    /// The links, in the order they were added.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// The counters of the wire named `name`.
    pub fn wire_stats(&self, name: &str) -> Option<WireStats> {
        self.links.iter().find_map(|l| match l {
            Link::Wire { name: n, wire } if n == name => {
                let w = wire.lock();
                Some((*w.stats(Side::A), *w.stats(Side::B)))
            }
            _ => None,
        })
    }

    /// Sets how many loop iterations [`Network::run_until_idle`] and
    /// [`Network::run_until`] may take in all (default
    /// [`DEFAULT_EVENT_BUDGET`]).
    pub fn set_event_budget(&mut self, budget: u64) {
        self.event_budget = budget;
    }

    /// Loop iterations run so far.
    pub fn events_run(&self) -> u64 {
        self.events_run
    }

    /// Schedules `f` to run on the network at virtual time `at` (an
    /// application step). Events at one instant run in the order they were
    /// scheduled.
    pub fn at(&mut self, at: Instant, f: impl FnOnce(&mut Network) + Send + 'static) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events.push(Reverse(Scheduled {
            at,
            seq,
            f: Box::new(f),
        }));
    }

    /// Schedules `f` to run `after` from now.
    pub fn after(&mut self, after: Duration, f: impl FnOnce(&mut Network) + Send + 'static) {
        let at = self.now().saturating_add(after);
        self.at(at, f);
    }

    fn check_simulated(&self) -> Result<&VirtualClock, NetstackError> {
        self.vclock.as_ref().ok_or_else(|| {
            NetstackError::Runtime(
                "this network runs on the real clock: start it with ThreadRuntime".to_owned(),
            )
        })
    }

    /// Stalls CPU `cpu` of host `host` for `d` of virtual time: the CPU
    /// runs nothing (no process work, no hard IRQ, no softirq, no timer)
    /// until the stall ends, then catches up.
    ///
    /// No kernel twin: a fault injector modelling a CPU taken away from
    /// networking (a long section with interrupts off, a real-time task
    /// that does not yield, a vCPU the hypervisor does not schedule).
    /// Work for the CPU keeps arriving meanwhile: an RPS backlog other
    /// CPUs steer packets to fills up to `net.core.netdev_max_backlog`
    /// and the excess is dropped and counted in
    /// `/proc/net/softnet_stat`'s `dropped` column, as in Linux. A second
    /// stall of the same CPU replaces the first.
    ///
    /// Errors name the host or the `cpu` argument; a thread-runtime
    /// network is refused.
    ///
    /// ```
    /// use netstack::{Host, Network};
    /// use netcore::Duration;
    /// let mut net = Network::new(1);
    /// net.add_host(Host::builder().name("h").cpus(2))?;
    /// net.stall_cpu("h", 1, Duration::from_millis(50))?;
    /// assert!(net.cpu_stalled("h", 1));
    /// net.run_for(Duration::from_millis(50))?;
    /// assert!(!net.cpu_stalled("h", 1));
    /// assert!(net.stall_cpu("h", 2, Duration::from_millis(1)).is_err());
    /// # Ok::<(), netstack::NetstackError>(())
    /// ```
    pub fn stall_cpu(&mut self, host: &str, cpu: usize, d: Duration) -> Result<(), NetstackError> {
        self.check_simulated()?;
        let h = self
            .hosts
            .iter()
            .position(|x| x.name() == host)
            .ok_or_else(|| NetstackError::NoHost(host.to_owned()))?;
        if cpu >= self.hosts[h].nr_cpus() {
            return Err(NetstackError::bad_arg("cpu", "a CPU of the host"));
        }
        let until = self.now().saturating_add(d);
        self.stalls.retain(|&(x, c, _)| (x, c) != (h, cpu));
        self.stalls.push((h, cpu, until));
        // The loop must come back when the stall ends.
        self.at(until, |_| {});
        Ok(())
    }

    /// Whether CPU `cpu` of host `host` is stalled now
    /// ([`Network::stall_cpu`]).
    pub fn cpu_stalled(&self, host: &str, cpu: usize) -> bool {
        let now = self.now();
        self.hosts
            .iter()
            .position(|x| x.name() == host)
            .is_some_and(|h| {
                self.stalls
                    .iter()
                    .any(|&(x, c, until)| (x, c) == (h, cpu) && until > now)
            })
    }

    /// Runs every NIC and CPU at the current instant until nothing moves.
    /// Returns how many rounds it took.
    ///
    /// A round polls each host's NICs that have something due now (a rung
    /// doorbell, a moderation timer, a frame arrived at their PHY: their
    /// `next_event()` is not later than now), then runs its CPUs that have
    /// work. Only a CPU's work can give a device more to do at this
    /// instant (a rung doorbell, a re-armed queue); frames a NIC takes off
    /// its wire raise their interrupts on the same host, whose CPUs run
    /// later in the same round. So another round follows only a round in
    /// which some CPU ran: a frame arriving between interrupts costs one
    /// NIC poll.
    ///
    /// Nothing idle is scanned. Each device's `next_event()` is kept
    /// between reads and read again only after something may have changed
    /// it: the device was polled, a device that may share its medium was
    /// polled (its transmissions), a CPU of its host ran or was kicked. A
    /// CPU is looked at only when its wake-up hook kicked it (an IRQ
    /// delivered, a softirq raised, process work queued: what wakes an
    /// idle CPU in Linux), when process context ran on it outside the loop
    /// ([`crate::Host::with_cpu`], an application step), or when a timer of
    /// its wheel is due. A host the last such read found quiet (no device
    /// event and no timer due by now, not kicked since) is passed over in
    /// one comparison. After its CPUs ran, a host's devices are read at
    /// once, and another round follows only when one of them is due now,
    /// the host was kicked again, or a frame went on a medium in that
    /// round. A settle called from outside the loop looks at every device
    /// and CPU.
    ///
    /// A CPU that stays busy at one instant (each of
    /// [`SETTLE_MAX_BUSY_ROUNDS`] rounds in a row ends with its softirqs
    /// handed to ksoftirqd and still pending, e.g. a qdisc rescheduling
    /// itself on `NET_TX` while the driver's ring waits for the wire) is
    /// left busy: the settle ends and the loop moves time to the next
    /// event (at most one jiffy later), where the CPU runs again. In Linux
    /// ksoftirqd is a thread the scheduler runs while the hardware works
    /// on; in virtual time the hardware only moves when the clock does.
    pub fn settle(&mut self) -> Result<u64, NetstackError> {
        self.check_simulated()?;
        if !std::mem::take(&mut self.nic_due_valid) {
            self.forget_state();
        }
        let now = self.now();
        self.stalls.retain(|&(_, _, until)| until > now);
        self.ksoftirqd_due = None;
        let mut rounds = 0;
        let mut busy_rounds = 0;
        loop {
            rounds += 1;
            self.spend(1)?;
            let mut moved = false;
            let mut busy = false;
            let mut first = 0;
            #[cfg(test)]
            let precise = self.precise_nic_due;
            #[cfg(not(test))]
            let precise = true;
            let Network {
                hosts,
                nic_due,
                host_wake,
                stalls,
                phy_moves,
                ..
            } = self;
            let round_moves = phy_moves.read();
            let mut moved_cpu = false;
            for (hi, h) in hosts.iter_mut().enumerate() {
                let devices = h.shared.nic_devices();
                let mine = first..first + devices.len();
                first = mine.end;
                if h.kicked.load() != 0 {
                    // A kicked CPU may have rung a doorbell.
                    nic_due[mine.clone()].fill(NicDue::Stale);
                } else if precise && host_wake[hi].quiet(now) {
                    // Nothing of it is due: the look below would find
                    // every device and CPU idle.
                    continue;
                }
                // Its summary is read again by the next `next_events`.
                host_wake[hi].look = true;
                for (slot, device) in devices.iter().enumerate() {
                    let i = mine.start + slot;
                    let due = match nic_due[i] {
                        NicDue::Known(due) => due,
                        NicDue::Stale => device.next_event(),
                    };
                    if due.is_none_or(|t| t > now) {
                        nic_due[i] = NicDue::Known(due);
                        continue;
                    }
                    let moves = phy_moves.read();
                    let frames = device.poll(now);
                    if phy_moves.read() == moves && precise {
                        // It put nothing on a medium: only its own next
                        // event changed.
                        nic_due[i] = NicDue::Stale;
                    } else {
                        // What it sent may arrive at any device (on any
                        // host).
                        nic_due.fill(NicDue::Stale);
                        host_wake.fill(HostWake::LOOK);
                    }
                    if frames > 0 {
                        let _nic = tracing::trace_span!(target: "netstack::nic", "nic", host = %h.shared.name).entered();
                        tracing::trace!(
                            target: "netstack::nic",
                            slot,
                            frames,
                            "nic_rx: wire, MAC filter, FCS, DMA to rx ring, DD"
                        );
                    }
                }
                let mut ran = false;
                let mut more = false;
                for ctx in &mut h.cpus {
                    let bit = 1u64 << ctx.cpu;
                    let kicked = h.kicked.load() & bit != 0;
                    if kicked {
                        h.kicked.clear(bit);
                    } else if !ctx.timer_due(now) {
                        // Idle: nothing woke it and no timer is due.
                        continue;
                    }
                    // An idle CPU stays in its idle loop (the check is
                    // cpu_run's own first look, without the IRQ entry).
                    if !cpu_has_work(ctx) {
                        continue;
                    }
                    if stalls.iter().any(|&(x, c, _)| (x, c) == (hi, ctx.cpu)) {
                        // Looked at again when the stall ends.
                        h.kicked.or(bit);
                        continue;
                    }
                    let s = cpu_run_in(ctx, &h.shared, &h.cpu_clock);
                    ran = true;
                    more |= s.did_work() || s.more;
                    busy |= s.more;
                    if s.more {
                        h.kicked.or(bit);
                    }
                }
                if more {
                    // Its driver may have rung a doorbell or re-armed a
                    // queue: its devices' next events are read again now.
                    // The CPUs' work can only have given work at this
                    // instant to their own host (a doorbell, a kick):
                    // another round is needed when the host has some.
                    let mut due_now = !precise || h.kicked.load() != 0;
                    for (device, due) in devices.iter().zip(&mut nic_due[mine]) {
                        let next = device.next_event();
                        *due = NicDue::Known(next);
                        due_now |= next.is_some_and(|t| t <= now);
                    }
                    moved |= due_now;
                    moved_cpu = true;
                } else if ran {
                    nic_due[mine].fill(NicDue::Stale);
                }
            }
            if phy_moves.read() != round_moves && moved_cpu {
                // A frame put on a medium during a round in which a CPU
                // ran: any device may have it now, look again.
                moved = true;
            }
            if !moved {
                return Ok(rounds);
            }
            busy_rounds = if busy { busy_rounds + 1 } else { 0 };
            if busy_rounds >= SETTLE_MAX_BUSY_ROUNDS {
                tracing::debug!(target: "netstack::cpu", rounds, "CPUs still busy: waiting for the next event (ksoftirqd)");
                self.ksoftirqd_due = Some(now.saturating_add(KSOFTIRQD_DELAY));
                return Ok(rounds);
            }
        }
    }

    /// Forgets what the loop knows of the devices and CPUs: every
    /// device's next event is read again and every CPU looked at, after
    /// code the loop does not see may have changed them.
    fn forget_state(&mut self) {
        for h in &self.hosts {
            h.kick_all();
        }
        // In place: the same hosts as last time, as a rule, so the same
        // devices (a host's are fixed when it is built, and both vectors
        // are sized together below).
        if self.host_wake.len() == self.hosts.len() {
            self.nic_due.fill(NicDue::Stale);
            self.host_wake.fill(HostWake::LOOK);
            return;
        }
        let devices = self
            .hosts
            .iter()
            .map(|h| h.shared.nic_devices().len())
            .sum();
        self.nic_due.clear();
        self.nic_due.resize(devices, NicDue::Stale);
        self.host_wake.clear();
        self.host_wake.resize(self.hosts.len(), HostWake::LOOK);
    }

    fn spend(&mut self, n: u64) -> Result<(), NetstackError> {
        self.events_run += n;
        if self.events_run > self.event_budget {
            return Err(NetstackError::EventBudgetExhausted {
                budget: self.event_budget,
                at_ns: self.now().as_nanos(),
            });
        }
        Ok(())
    }

    /// The next instant after now at which something is due: an
    /// application event, a frame or moderation timer at a NIC, a timer
    /// on a CPU.
    pub fn next_event(&self) -> Option<Instant> {
        let now = self.now();
        if self.events.peek().is_some_and(|Reverse(e)| e.at <= now) {
            return Some(now);
        }
        let later = |t: Option<Instant>| t.filter(|&t| t > now);
        let mut next = later(self.events.peek().map(|Reverse(e)| e.at));
        let mut merge = |t: Option<Instant>| {
            if let Some(t) = later(t) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        merge(self.ksoftirqd_due);
        for h in &self.hosts {
            for device in h.shared.nic_devices() {
                merge(device.next_event());
            }
            for ctx in &h.cpus {
                merge(ctx.next_timer());
            }
        }
        next
    }

    /// The next instant after now at which something is due, in one pass
    /// over the network: `(without CPU timers, with CPU timers)`. Reads
    /// again only the devices whose next event the loop no longer knows
    /// (see [`Network::settle`]), and keeps what it read. Without
    /// `with_timers` and without traffic, the second is not needed (the
    /// idle mode stops): then it may be `None` with a timer armed.
    fn next_events(&mut self, with_timers: bool) -> (Option<Instant>, Option<Instant>) {
        let now = self.now();
        // An application event due now counts as "now".
        if let Some(Reverse(e)) = self.events.peek()
            && e.at <= now
        {
            return (Some(now), Some(now));
        }
        // Instants after now, `Instant::MAX` for none (see `HostWake`).
        let later = |t: Instant, next: &mut Instant| {
            if t > now && t < *next {
                *next = t;
            }
        };
        let never = |t: Option<Instant>| t.unwrap_or(Instant::MAX);
        let mut traffic = Instant::MAX;
        later(
            never(self.events.peek().map(|Reverse(e)| e.at)),
            &mut traffic,
        );
        later(never(self.ksoftirqd_due), &mut traffic);
        let mut timers = Instant::MAX;
        // The earliest bound of the hosts whose timers are not known
        // exactly (see `HostWake::timer`).
        let mut bounds = Instant::MAX;
        // A host's devices are fixed when it is built, and `forget_state`
        // sizes `nic_due` and `host_wake` together: a summary per host
        // means an entry per device (without a sum over the hosts here).
        if self.host_wake.len() != self.hosts.len() {
            self.forget_state();
        }
        debug_assert_eq!(
            self.nic_due.len(),
            self.hosts
                .iter()
                .map(|h| h.shared.nic_devices().len())
                .sum::<usize>()
        );
        #[cfg(test)]
        let precise = self.precise_nic_due;
        #[cfg(not(test))]
        let precise = true;
        let mut i = 0;
        for (h, wake) in self.hosts.iter().zip(&mut self.host_wake) {
            let devices = h.shared.nic_devices();
            let mine = i..i + devices.len();
            i = mine.end;
            // A kick since the settle (a socket call outside any CPU) may
            // have rung a doorbell.
            let kicked = h.kicked.load() != 0;
            if kicked || wake.look || !precise {
                for (device, due) in devices.iter().zip(&mut self.nic_due[mine.clone()]) {
                    let next = match *due {
                        NicDue::Known(next) if !kicked => next,
                        _ => device.next_event(),
                    };
                    *due = NicDue::Known(next);
                }
                *wake = HostWake::of(&self.nic_due[mine], &h.cpus, now);
            }
            later(wake.nic, &mut traffic);
            if wake.timer_exact {
                later(wake.timer, &mut timers);
            } else {
                // A bound, later than now (`HostWake::of`).
                bounds = bounds.min(wake.timer);
            }
        }
        // Without traffic, the idle mode stops whatever the timers say.
        if bounds < traffic.min(timers) && (with_timers || traffic != Instant::MAX) {
            // A host's timer may come first: its wheels are searched.
            for (h, wake) in self.hosts.iter().zip(&mut self.host_wake) {
                if !wake.timer_exact {
                    wake.exact_timer(&h.cpus);
                    later(wake.timer, &mut timers);
                }
            }
        }
        let some = |t: Instant| (t != Instant::MAX).then_some(t);
        (some(traffic), some(traffic.min(timers)))
    }

    /// Runs the application events due now, settling after each; returns
    /// whether one ran. Inlined for the common case of none due (one
    /// look at the heap each loop iteration).
    #[inline(always)]
    fn run_due_events(&mut self) -> Result<bool, NetstackError> {
        let now = self.now();
        if self.events.peek().is_none_or(|Reverse(e)| e.at > now) {
            return Ok(false);
        }
        self.run_events_due_at(now)
    }

    /// [`Network::run_due_events`] once one is due at `now`.
    fn run_events_due_at(&mut self, now: Instant) -> Result<bool, NetstackError> {
        let mut ran = false;
        while self.events.peek().is_some_and(|Reverse(e)| e.at <= now) {
            let Some(Reverse(e)) = self.events.pop() else {
                break;
            };
            self.spend(1)?;
            (e.f)(self);
            ran = true;
            // The event may have changed anything: look at everything.
            self.nic_due_valid = false;
            self.settle()?;
        }
        Ok(ran)
    }

    /// Runs the network until virtual time `until` (events at `until`
    /// included), jumping over idle periods.
    pub fn run_until(&mut self, until: Instant) -> Result<(), NetstackError> {
        self.run_until_inner(until, true, &mut || false)
    }

    /// Runs the network until `done()` holds (checked each time the
    /// network has settled at an instant) or virtual time `until`,
    /// whichever comes first; returns whether `done()` held. For an
    /// application that waits for something its pushed steps record (a
    /// reply, a transfer's end) without polling the network.
    pub fn run_until_done(
        &mut self,
        until: Instant,
        mut done: impl FnMut() -> bool,
    ) -> Result<bool, NetstackError> {
        let mut met = false;
        self.run_until_inner(until, true, &mut || {
            met = done();
            met
        })?;
        Ok(met)
    }

    fn run_until_inner(
        &mut self,
        until: Instant,
        with_timers: bool,
        done: &mut dyn FnMut() -> bool,
    ) -> Result<(), NetstackError> {
        self.check_simulated()?;
        loop {
            self.settle()?;
            self.run_due_events()?;
            if done() {
                return Ok(());
            }
            let (traffic, all) = self.next_events(with_timers);
            let next = if with_timers {
                all
            } else {
                // Idle mode: only traffic and application events keep the
                // network running, but timers due before them still fire
                // on time.
                traffic.map(|t| all.map_or(t, |a| a.min(t)))
            };
            match next {
                Some(t) if t <= until => {
                    self.advance_to(t)?;
                    // Nothing ran since the devices were read: the next
                    // settle may trust what the loop knows of them.
                    self.nic_due_valid = true;
                }
                _ => {
                    if until > self.now() && until != Instant::MAX {
                        self.advance_to(until)?;
                        self.settle()?;
                        self.run_due_events()?;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Runs the network for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) -> Result<(), NetstackError> {
        let until = self.now().saturating_add(d);
        self.run_until(until)
    }

    /// Runs until nothing is left to happen: no application event, nothing
    /// on a wire or in a NIC, no CPU work. Armed timers alone (neighbour
    /// garbage collection, reachability, TIME_WAIT) do not keep the network
    /// busy: they stay armed, and [`Network::run_for`] lets them fire; a
    /// timer due while traffic is in flight fires as usual.
    ///
    /// Refuses to loop forever: errors with
    /// [`NetstackError::EventBudgetExhausted`] past the event budget
    /// (a broadcast storm through switches, a timer re-armed at once).
    pub fn run_until_idle(&mut self) -> Result<(), NetstackError> {
        self.run_until_inner(Instant::MAX, false, &mut || false)
    }

    /// Moves the virtual clock to `t` (never back).
    ///
    /// The loop is the clock's only writer: nothing else moves a network's
    /// virtual clock (hosts and sockets only read it; the thread runtime
    /// runs on a real clock), so a load and a store keep it monotonic
    /// ([`VirtualClock::set_single_writer`]), without `fetch_max`. Code
    /// that reaches the clock through [`Network::clock`] must not move it.
    fn advance_to(&mut self, t: Instant) -> Result<(), NetstackError> {
        let vc = self.check_simulated()?;
        if t > vc.now() {
            vc.set_single_writer(t)
                .map_err(|e| NetstackError::Runtime(format!("virtual clock: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{Host, NicConfig, UdpSocket};

    /// Two one-CPU hosts on a 10 Gbit/s wire with 1 µs of delay.
    fn pair() -> Network {
        pair_with(7, Duration::from_micros(1), None)
    }

    /// Two one-CPU hosts, h1 (198.18.0.1) and h2 (198.18.0.2), on a
    /// 10 Gbit/s wire with `delay`, seeded with `seed`; `ring` sets the
    /// NICs' descriptor rings (`ethtool -G`), else igb's default.
    pub(super) fn pair_with(seed: u64, delay: Duration, ring: Option<u32>) -> Network {
        let mut net = Network::new(seed);
        let (a, b) = net
            .wire(
                "w0",
                LinkConfig::default().rate_bps(10_000_000_000).delay(delay),
            )
            .unwrap();
        for (name, phy, addr) in [("h1", a, "198.18.0.1/24"), ("h2", b, "198.18.0.2/24")] {
            let nic = NicConfig::new().phy(phy);
            let nic = match ring {
                Some(n) => nic.ring(n),
                None => nic,
            };
            net.add_host(Host::builder().name(name).nic(nic).addr(addr))
                .unwrap();
        }
        net
    }

    /// Application events run by time, and at one instant in the order
    /// they were scheduled, whatever the order of scheduling across times.
    #[test]
    fn app_events_run_in_time_then_schedule_order() {
        let mut net = pair();
        let order = Arc::new(Mutex::new(Vec::new()));
        let t0 = net.now();
        for (name, us) in [("a", 5), ("b", 2), ("c", 5), ("d", 2), ("e", 0)] {
            let order = Arc::clone(&order);
            net.at(t0.saturating_add(Duration::from_micros(us)), move |n| {
                order
                    .lock()
                    .unwrap()
                    .push((name, n.now().saturating_duration_since(t0)));
            });
        }
        net.run_until_idle().unwrap();
        let got = order.lock().unwrap().clone();
        let us = Duration::from_micros;
        assert_eq!(
            got,
            [
                ("e", us(0)),
                ("b", us(2)),
                ("d", us(2)),
                ("a", us(5)),
                ("c", us(5))
            ]
        );
    }

    /// A wire end reports its own next arrival: nothing while frames only
    /// leave it, the arrival time while frames only come to it, and the
    /// wire's next event (either way) while they travel both ways.
    #[test]
    fn a_wire_end_reports_its_own_arrivals() {
        let cfg = LinkConfig::default()
            .rate_bps(1_000_000_000)
            .delay(Duration::from_micros(5));
        let wire = Arc::new(netcore::SpinLock::new(
            VirtualWire::symmetric(cfg, 1).unwrap(),
        ));
        let batch = Arc::new(AtomicBool::new(false));
        let mut a = WirePort::new(Arc::clone(&wire), Side::A, Arc::clone(&batch));
        let mut b = WirePort::new(Arc::clone(&wire), Side::B, batch);
        let mut frame = vec![0x02; 60];
        nic_hw::append_fcs(&mut frame);
        let t0 = Instant::ZERO;
        a.transmit_slice(t0, &frame).unwrap();
        let arrival = wire.lock().next_event().unwrap();
        assert_eq!(a.next_event(), None, "nothing travels towards A");
        assert_eq!(b.next_event(), Some(arrival));
        // B answers before A's frame arrives: both ways busy.
        b.transmit_slice(t0.saturating_add(Duration::from_micros(1)), &frame)
            .unwrap();
        assert_eq!(b.next_event(), Some(arrival));
        assert_eq!(a.next_event(), Some(arrival), "a bound, not later");
        let mut buf = Vec::new();
        // `rx_ready` says exactly whether a receive would find a frame.
        assert!(!a.rx_ready(arrival));
        assert!(!b.rx_ready(Instant::from_nanos(arrival.as_nanos() - 1)));
        assert!(b.rx_ready(arrival));
        assert!(!a.receive_into(arrival, &mut buf).unwrap());
        assert!(b.receive_into(arrival, &mut buf).unwrap());
        assert_eq!(buf, frame);
        assert!(!b.rx_ready(arrival));
        let back = a.next_event().unwrap();
        assert!(back > arrival);
        assert_eq!(b.next_event(), None);
        assert!(a.rx_ready(back));
        assert!(a.receive_into(back, &mut buf).unwrap());
        assert_eq!((a.next_event(), b.next_event()), (None, None));
        assert!(!a.rx_ready(Instant::MAX) && !b.rx_ready(Instant::MAX));
    }

    /// On the thread runtime a wire end holds back what a MAC sends in one
    /// transmit pass until the pass ends (`flush`), and the wire then
    /// gives each frame the serialisation and arrival it would have had
    /// if sent at once: the same arrivals as an end that does not batch,
    /// fed the same frames at the same instants.
    #[test]
    fn a_batching_wire_end_sends_at_the_flush_with_the_instants_given() {
        let cfg = LinkConfig::default()
            .rate_bps(1_000_000_000)
            .delay(Duration::from_micros(5));
        let arrivals = |batch: bool| {
            let wire = Arc::new(netcore::SpinLock::new(
                VirtualWire::symmetric(cfg.clone(), 1).unwrap(),
            ));
            let flag = Arc::new(AtomicBool::new(batch));
            let mut a = WirePort::new(Arc::clone(&wire), Side::A, Arc::clone(&flag));
            let mut b = WirePort::new(Arc::clone(&wire), Side::B, flag);
            let sends = [(0u64, 60usize), (0, 1514), (3_000, 200), (3_000, 60)];
            for (i, &(at, len)) in sends.iter().enumerate() {
                let mut frame = vec![i as u8; len];
                a.transmit_swap_vouched(Instant::from_nanos(at), &mut frame, nic_hw::Vouch::FCS)
                    .unwrap();
                assert!(frame.is_empty(), "the MAC gets an empty buffer back");
            }
            let held = wire.lock().in_flight(Side::A);
            a.flush().unwrap();
            assert_eq!(wire.lock().in_flight(Side::A), sends.len());
            let mut got = Vec::new();
            let mut buf = Vec::new();
            loop {
                let next = wire.lock().next_event();
                let Some(at) = next else { break };
                assert!(b.rx_ready(at));
                let vouch = b.receive_into_vouched(at, &mut buf).unwrap().unwrap();
                got.push((at, buf.len(), buf[0], vouch));
            }
            (held, got)
        };
        let (held, batched) = arrivals(true);
        assert_eq!(held, 0, "nothing on the wire before the flush");
        let (held, direct) = arrivals(false);
        assert_eq!(held, 4, "without batching each frame goes at once");
        assert_eq!(batched, direct);
        assert_eq!(batched.len(), 4);
        assert_eq!(
            batched.iter().map(|g| g.2).collect::<Vec<_>>(),
            [0, 1, 2, 3],
            "in the order sent"
        );
    }

    /// A socket call made outside any CPU (set-up code between runs, or
    /// the check of `run_until_done`) rings its doorbell without the loop
    /// seeing it: its kick makes the loop look at the host again, so the
    /// datagram still leaves at once and arrives.
    #[test]
    fn a_send_outside_any_cpu_is_not_lost_by_the_loop() {
        let mut net = pair();
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        let h2 = Arc::clone(net.host("h2").unwrap().shared());
        let rx = UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
        tx.connect("198.18.0.2:5000").unwrap();
        let mut buf = [0u8; 128];
        // ARP first, then one datagram sent between runs.
        tx.send(&[1; 64]).unwrap();
        net.run_until_idle().unwrap();
        tx.send(&[2; 64]).unwrap();
        net.run_until_idle().unwrap();
        assert_eq!(rx.recv(&mut buf).unwrap(), 64);
        assert_eq!(rx.recv(&mut buf).unwrap(), 64);
        assert_eq!(buf[0], 2);
        // Sent from the loop's own check while a timer keeps it running.
        let t0 = net.now();
        net.at(t0.saturating_add(Duration::from_millis(1)), |_| {});
        let mut sent = false;
        let until = t0.saturating_add(Duration::from_millis(2));
        net.run_until_done(until, || {
            if !sent {
                sent = true;
                tx.send(&[3; 64]).unwrap();
            }
            false
        })
        .unwrap();
        assert_eq!(rx.recv(&mut buf).unwrap(), 64);
        assert_eq!(buf[0], 3);
    }

    /// A call made outside any CPU (set-up code between simulation steps)
    /// runs on a stand-in context: it does not see the CPU's timers (and
    /// says so), and what it cancels and arms reaches the CPU's own wheel
    /// when the CPU next runs, cancels first.
    #[test]
    fn a_call_outside_any_cpu_cancels_and_arms_on_the_cpu_wheel() {
        use netcore::TimerContext;
        use socket::SocketHost;
        use softnet::SoftnetTimer;

        let mut net = pair();
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        let sockets = Arc::clone(h1.socket_host());
        let dog = |queue| SoftnetTimer::QdiscWatchdog { ifindex: 99, queue };
        let far = net.now() + Duration::from_secs(100);
        let sooner = net.now() + Duration::from_secs(50);
        net.app("h1", || {
            sockets.with_ctx(|ctx| {
                assert!(TimerContext::<SoftnetTimer>::timers_complete(ctx));
                ctx.arm_timer(dog(0), far);
                ctx.arm_timer(dog(1), far);
                ctx.arm_timer(dog(2), far);
            });
        })
        .unwrap();
        sockets.with_ctx(|ctx| {
            assert!(!TimerContext::<SoftnetTimer>::timers_complete(ctx));
            assert_eq!(
                ctx.timer_pending(dog(0)),
                None,
                "the CPU's timers are not visible"
            );
            ctx.cancel_timer(dog(0));
            ctx.arm_timer(dog(1), sooner);
            // Armed and cancelled within the call: cancelled on the CPU.
            ctx.arm_timer(dog(2), sooner);
            ctx.cancel_timer(dog(2));
        });
        net.run_for(Duration::from_millis(1)).unwrap();
        let seen = net
            .app("h1", || {
                sockets.with_ctx(|ctx| {
                    [0, 1, 2].map(|q| TimerContext::<SoftnetTimer>::timer_pending(ctx, dog(q)))
                })
            })
            .unwrap();
        assert_eq!(seen, [None, Some(sooner), None]);
    }

    /// A socket call of host h1 made inside a lend of another host (x,
    /// lent inside h1's lend on the same thread) runs on h1's lent CPU
    /// context, found by searching the thread's lends: it sees the timers of
    /// h1's CPU, and x's calls run on x's context; back in h1's lend alone,
    /// h1's calls still find it directly.
    #[test]
    fn a_call_inside_a_nested_lend_finds_the_outer_hosts_context() {
        use netcore::TimerContext;
        use socket::SocketHost;
        use softnet::SoftnetTimer;

        let dog = |ifindex| SoftnetTimer::QdiscWatchdog { ifindex, queue: 0 };
        let mut a = pair();
        let mut b = Network::new(9);
        b.add_host(Host::builder().name("x")).unwrap();
        let s1 = Arc::clone(a.host("h1").unwrap().shared().socket_host());
        let sx = Arc::clone(b.host("x").unwrap().shared().socket_host());
        let far = a.now() + Duration::from_secs(100);
        let later = b.now() + Duration::from_secs(200);
        // What a call sees: its context's view of timer 1 and timer 2, and
        // whether it sees its CPU's timers at all.
        let look = |s: &crate::HostSockets| {
            s.with_ctx(|ctx| {
                (
                    TimerContext::<SoftnetTimer>::timers_complete(ctx),
                    ctx.timer_pending(dog(1)),
                    ctx.timer_pending(dog(2)),
                )
            })
        };
        a.app("h1", || s1.with_ctx(|ctx| ctx.arm_timer(dog(1), far)))
            .unwrap();
        b.app("x", || sx.with_ctx(|ctx| ctx.arm_timer(dog(2), later)))
            .unwrap();
        let (inner, outer_inside, outer_after) = a
            .app("h1", || {
                let (inner, outer_inside) = b.app("x", || (look(&sx), look(&s1))).unwrap();
                (inner, outer_inside, look(&s1))
            })
            .unwrap();
        assert_eq!(inner, (true, None, Some(later)), "x's own context");
        assert_eq!(
            outer_inside,
            (true, Some(far), None),
            "h1's context, nested"
        );
        assert_eq!(outer_after, (true, Some(far), None), "h1's context");
        // Outside any lend: a stand-in that sees none of the CPU's timers.
        assert_eq!(look(&s1), (false, None, None));
    }

    /// Datagrams both ways at once, in rounds: h1 and h2 each send a burst
    /// to the other at the same instant, so frames travel both ways on the
    /// wire. Returns what an observer sees: the virtual time at the end,
    /// the loop iterations, the wire's counters and the datagrams each
    /// side read.
    fn both_ways(precise: bool) -> (Instant, u64, String, Vec<Vec<u8>>) {
        let mut net = pair_with(11, Duration::from_micros(3), None);
        net.precise_nic_due = precise;
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        let h2 = Arc::clone(net.host("h2").unwrap().shared());
        let s1 = UdpSocket::bind(&h1, "198.18.0.1:4000").unwrap();
        let s2 = UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap();
        s1.set_nonblocking(true).unwrap();
        s2.set_nonblocking(true).unwrap();
        s1.connect("198.18.0.2:5000").unwrap();
        s2.connect("198.18.0.1:4000").unwrap();
        let mut got = Vec::new();
        for round in 0..6u8 {
            let n = 8 + usize::from(round) * 5;
            net.app("h1", || {
                for i in 0..n {
                    s1.send(&[round, i as u8, 1].repeat(20 + i)).unwrap();
                }
            })
            .unwrap();
            net.app("h2", || {
                for i in 0..n {
                    s2.send(&[round, i as u8, 2].repeat(30 + i)).unwrap();
                }
            })
            .unwrap();
            net.run_until_idle().unwrap();
            for (host, sock) in [("h1", &s1), ("h2", &s2)] {
                net.app(host, || {
                    let mut buf = [0u8; 512];
                    while let Ok(len) = sock.recv(&mut buf) {
                        got.push(buf[..len].to_vec());
                    }
                })
                .unwrap();
            }
        }
        let stats = format!("{:?}", net.wire_stats("w0"));
        (net.now(), net.events_run(), stats, got)
    }

    /// The loop's shortcuts (re-reading only the polled NIC's next event
    /// when its poll put nothing on the wire, passing over quiet hosts, no
    /// extra round after CPUs that left their host quiet, the hosts' next
    /// events from their summaries) change nothing an observer sees: the
    /// same datagrams arrive, at the same virtual times, as when the loop
    /// looks at everything; it only takes fewer rounds.
    #[test]
    fn precise_nic_due_is_unobservable_with_traffic_both_ways() {
        let precise = both_ways(true);
        let coarse = both_ways(false);
        // Every datagram both ways (the first ones wait for ARP).
        assert_eq!(precise.3.len(), 2 * (8 + 13 + 18 + 23 + 28 + 33));
        assert_eq!(precise.0, coarse.0, "virtual time at the end");
        assert!(precise.1 < coarse.1, "loop rounds {precise:?} {coarse:?}");
        assert_eq!(precise.2, coarse.2, "wire counters");
        assert_eq!(precise.3, coarse.3, "datagrams read");
    }

    /// TCP request/response exchanges then a bulk transfer between two
    /// hosts (ITR-paced interrupts, delayed ACKs, tx completions): the
    /// virtual instant each response is read at, the wire's counters and
    /// the bytes received, with the loop's shortcuts on or off.
    fn tcp_exchanges(precise: bool) -> (Vec<Instant>, String, Vec<u8>, u64) {
        use socket::{TcpListener, TcpStream};
        use std::io::{Read, Write};
        use std::net::{Ipv4Addr, SocketAddrV4};

        let mut net = pair_with(5, Duration::from_micros(2), None);
        net.precise_nic_due = precise;
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        let h2 = Arc::clone(net.host("h2").unwrap().shared());
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7);
        let l = TcpListener::bind(h2.socket_layer(), any).unwrap();
        l.set_nonblocking(true).unwrap();
        let to = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 7);
        let mut c = net
            .app("h1", || {
                TcpStream::connect_nonblocking(h1.socket_layer(), to)
            })
            .unwrap()
            .unwrap();
        net.run_until_idle().unwrap();
        let (mut s, _) = net.app("h2", || l.accept()).unwrap().unwrap();
        let mut times = Vec::new();
        let mut b = [0u8; 1];
        for i in 0..20u8 {
            net.app("h1", || c.write(&[i])).unwrap().unwrap();
            net.run_until_idle().unwrap();
            net.app("h2", || s.read(&mut b)).unwrap().unwrap();
            net.app("h2", || s.write(&b)).unwrap().unwrap();
            net.run_until_idle().unwrap();
            assert_eq!(net.app("h1", || c.read(&mut b)).unwrap().unwrap(), 1);
            times.push(net.now());
        }
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut got = Vec::new();
        let mut sent = 0;
        c.set_nonblocking(true).unwrap();
        s.set_nonblocking(true).unwrap();
        while got.len() < data.len() {
            if sent < data.len() {
                sent += net
                    .app("h1", || c.write(&data[sent..]))
                    .unwrap()
                    .unwrap_or(0);
            }
            net.run_for(Duration::from_micros(200)).unwrap();
            net.app("h2", || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    got.extend_from_slice(&buf[..n]);
                }
            })
            .unwrap();
        }
        times.push(net.now());
        let stats = format!("{:?}", net.wire_stats("w0"));
        (times, stats, got, net.events_run())
    }

    /// TCP through the loop with and without its shortcuts: every
    /// response read at the same virtual instant, the same frames on the
    /// wire, the same bytes, in fewer rounds.
    #[test]
    fn the_loop_shortcuts_are_unobservable_with_tcp() {
        let precise = tcp_exchanges(true);
        let coarse = tcp_exchanges(false);
        assert_eq!(precise.2.len(), 200_000);
        assert_eq!(precise.0, coarse.0, "virtual instants");
        assert_eq!(precise.1, coarse.1, "wire counters");
        assert!(precise.2 == coarse.2, "bytes received");
        assert!(precise.3 < coarse.3, "rounds {} {}", precise.3, coarse.3);
    }

    /// Each frame of a burst arrives at its own instant (serialisation at
    /// the link rate) between interrupts: every one costs one loop
    /// iteration with a single settle round, not an empty second round;
    /// and every datagram is delivered.
    #[test]
    fn a_frame_arriving_between_interrupts_costs_one_settle_round() {
        let mut net = pair();
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        let h2 = Arc::clone(net.host("h2").unwrap().shared());
        let rx = UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
        tx.connect("198.18.0.2:5000").unwrap();
        let mut buf = [0u8; 128];
        // ARP first.
        net.app("h1", || tx.send(&[1; 64])).unwrap().unwrap();
        net.run_until_idle().unwrap();
        assert_eq!(net.app("h2", || rx.recv(&mut buf)).unwrap().unwrap(), 64);
        let before = net.events_run();
        net.app("h1", || {
            for _ in 0..32 {
                tx.send(&[2; 64]).unwrap();
            }
        })
        .unwrap();
        net.run_until_idle().unwrap();
        let iterations = net.events_run() - before;
        let got = net
            .app("h2", || {
                let mut n = 0;
                while let Ok(64) = rx.recv(&mut buf) {
                    n += 1;
                }
                n
            })
            .unwrap();
        assert_eq!(got, 32);
        // 32 arrivals at h2, a few interrupts and completions on both
        // hosts, each settle ending after a round in which no CPU ran.
        assert!(
            (32..48).contains(&iterations),
            "{iterations} loop rounds for 32 datagrams"
        );
    }
}

#[cfg(test)]
mod burst_tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::sync::Arc;

    use super::*;
    use crate::HostSockets;
    use socket::{TcpListener, TcpStream};

    /// Connections opened, then written to, each all at one instant.
    const CONNS: usize = 200;
    /// Descriptors per NIC ring: under a third of the data burst.
    const RING: u32 = 64;

    /// The message connection `i` sends: 1,000 bytes of its own.
    fn msg(i: usize) -> Vec<u8> {
        (0..1_000).map(|j| (i * 7 + j * 13) as u8).collect()
    }

    /// Issue 13's livelock: a burst written at one virtual instant that
    /// is several times the transmit ring (the igb model's softnet queues
    /// beyond its one hardware ring are not stopped when it fills, so
    /// `NET_TX` reschedules itself while the ring waits for the wire) used
    /// to keep
    /// `settle` at that instant for ever. Now both bursts (the SYNs, then
    /// one segment per connection) complete and every byte arrives.
    #[test]
    fn a_burst_written_at_one_instant_completes_and_arrives_whole() {
        let mut net = super::tests::pair_with(3, Duration::from_micros(5), Some(RING));
        net.set_event_budget(200_000);
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        let h2 = Arc::clone(net.host("h2").unwrap().shared());
        let to = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 7);
        let l = net
            .app("h2", || {
                TcpListener::bind(
                    h2.socket_layer(),
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7),
                )
            })
            .unwrap()
            .unwrap();
        l.set_nonblocking(true).unwrap();
        // Opened in bursts of 100 (within the accept backlog of 128),
        // each at one instant and more than the ring holds.
        let mut clients: Vec<TcpStream<HostSockets>> = Vec::new();
        let mut servers: Vec<TcpStream<HostSockets>> = Vec::new();
        while clients.len() < CONNS {
            let batch: Vec<_> = net
                .app("h1", || {
                    (0..100)
                        .map(|_| TcpStream::connect_nonblocking(h1.socket_layer(), to).unwrap())
                        .collect()
                })
                .unwrap();
            clients.extend(batch);
            // A lost SYN or SYN-ACK is sent again after 1 s.
            net.run_for(Duration::from_millis(1_100)).unwrap();
            let acc: Vec<_> = net
                .app("h2", || {
                    std::iter::from_fn(|| l.accept().ok().map(|(s, _)| s)).collect()
                })
                .unwrap();
            servers.extend(acc);
        }
        assert_eq!(servers.len(), CONNS, "every connection accepted");
        // The server end of each client, by the client's port.
        let ports: Vec<u16> = clients
            .iter()
            .map(|c| c.local_addr().unwrap().port())
            .collect();
        servers.sort_by_key(|s| {
            let p = s.peer_addr().unwrap().port();
            ports.iter().position(|&q| q == p).unwrap()
        });
        net.app("h1", || {
            for (i, c) in clients.iter_mut().enumerate() {
                c.write_all(&msg(i)).unwrap();
            }
        })
        .unwrap();
        // Segments the receiver's small ring dropped are retransmitted
        // (RTO 1 s before an RTT sample).
        net.run_for(Duration::from_millis(1_500)).unwrap();
        let got: Vec<Vec<u8>> = net
            .app("h2", || {
                servers
                    .iter_mut()
                    .map(|s| {
                        let mut data = Vec::new();
                        let mut buf = [0u8; 2048];
                        loop {
                            match s.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => data.extend_from_slice(&buf[..n]),
                                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                                Err(e) => panic!("read: {e}"),
                            }
                        }
                        data
                    })
                    .collect()
            })
            .unwrap();
        for (i, data) in got.iter().enumerate() {
            assert!(
                *data == msg(i),
                "connection {i} read {} bytes, not its 1000",
                data.len()
            );
        }
    }
}
