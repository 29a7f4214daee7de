//! One CPU of a host: its context and the loop it runs on IRQ exit.
//!
//! Mirrors what a Linux CPU does for networking: `irq_exit()` →
//! `invoke_softirq()` → `__do_softirq()` after hard interrupts
//! (`kernel/softirq.c`), `run_ksoftirqd()` when softirqs were deferred,
//! and `run_timer_softirq()` (`kernel/time/timer.c`) for the CPU's timer
//! wheel. The per-CPU context [`CpuCtx`] is the `C` every layer is generic
//! over: it implements `softnet::SoftnetContext`,
//! `netcore::TimerContext<…>` for each crate's typed timers and
//! `netfilter::NfHookContext`.
//!
//! ```text
//! cpu_run(now):
//!   process context (queued work: applications, configuration)
//!   irqs.handle_pending(cpu)                 hard IRQs: igb_msix_ring → napi_schedule
//!   TIMER raised if the wheel has expired timers (the tick)
//!   softirqs.do_softirq(cpu)                 NET_RX → net_rx_action
//!                                            NET_TX → net_tx_action
//!                                            TIMER  → run_timer_softirq → handle_timer
//!   ksoftirqd while deferred work remains
//!   repeat until nothing is pending
//! ```

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;

use irq::{SoftirqNr, SoftirqRun};
use netcore::{Clock, Instant, TimerContext, TimerWheel};
use softnet::{SoftnetContext, SoftnetData, SoftnetTimer};

use crate::host::HostShared;

/// Every timer a host arms, whichever crate it belongs to.
///
/// Mirrors the kernel's single timer wheel per CPU on which every
/// subsystem's `struct timer_list` sits; here each crate's typed id is
/// wrapped so one wheel holds them all and expiry is dispatched back to
/// the crate's `handle_timer`.
///
/// # Deviations from Linux
///
/// A timer lives on the wheel of the CPU that armed it, keyed by id, and
/// only that CPU's context sees it: a `timer_delete()` or
/// `timer_pending()` made on another CPU of the host (a segment of the
/// flow steered to CPU 1 while the application armed the RTO on CPU 0)
/// does not reach it, where Linux's `timer_list` knows its base. The timer
/// then fires on its CPU and the owner's handler finds it stale (TCP's
/// `icsk_pending`). Contexts say so through
/// `TimerContext::timers_complete` ([`CpuCtx::timers_complete`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostTimer {
    /// A softnet timer (the qdisc watchdog).
    Softnet(SoftnetTimer),
    /// An IPv4 timer (neighbours, reassembly).
    Ipv4(ipv4::Ipv4Timer),
    /// A netfilter timer (the conntrack garbage collector).
    Netfilter(crate::netfilter::NfTimer),
    /// A TCP timer (retransmit, delayed ACK, keepalive, TIME-WAIT,
    /// SYN-ACK).
    Tcp(tcp::TcpTimer),
}

/// A CPU's timer wheel, with its next expiry remembered between changes.
///
/// Mirrors `struct timer_base` with its `next_expiry` field, which Linux
/// keeps so that the idle loop and the tick (`get_next_timer_interrupt()`,
/// `run_local_timers()`) need not search the wheel: here the runtimes ask
/// for the next expiry of every CPU each time they look for work, and the
/// wheel is searched again only after a timer was armed, cancelled or
/// handed out. Between a change and that search it keeps a bound no later
/// than the next expiry (arming only lowers it to the new deadline), which
/// answers "is a timer due now?" ([`CpuTimers::due_by`], the tick's
/// question) without the search while the timers armed since are later
/// than now (TCP's retransmission and delayed-ACK timers, re-armed for
/// every segment).
///
/// The wheel's buckets are allocated when the first timer is armed, so a
/// context that never arms one (the stand-in a CPU keeps while its context
/// is lent to an application call) costs no allocation; the wheel's clock
/// then starts where it would have been, so timers land in the same
/// buckets either way.
pub(crate) struct CpuTimers {
    /// Boxed: a context moves whenever it is lent to an application
    /// call, and the wheel's head is most of its size.
    wheel: Option<Box<TimerWheel<HostTimer>>>,
    /// Where the wheel's clock starts when it is built (`timer_base::clk`).
    start: Instant,
    /// `wheel.next_expiry()` as of the last change.
    next_expiry: Cell<NextExpiry>,
    /// On a context built for one call outside any CPU: every id it
    /// cancelled, in order, to cancel on the CPU's own wheel after the
    /// call (see [`CpuTimers::detached`]). `None` on a CPU's context.
    cancels: Option<Vec<HostTimer>>,
}

/// What [`CpuTimers`] remembers of its wheel's next expiry.
#[derive(Clone, Copy, Debug)]
enum NextExpiry {
    /// A change made it stale (`timer_base::next_expiry_recalc`), but no
    /// timer expires before this instant ([`Instant::ZERO`]: nothing
    /// known).
    NotBefore(Instant),
    /// Known: the earliest expiry, `None` with no timer armed.
    Known(Option<Instant>),
}

/// Stale, with nothing known.
const STALE: NextExpiry = NextExpiry::NotBefore(Instant::ZERO);

/// A bound no later than any expiry the wheel reports for a timer armed
/// for `at`: a timer goes to a bucket that expires at or after its
/// deadline (rounded up to jiffies and to its level's granularity, or
/// into the ready batch with its deadline when already due), except one
/// parked at the wheel's horizon (`WHEEL_TIMEOUT_MAX`, 62 << 24 jiffies
/// after the wheel's clock, which is never before zero): no bucket
/// expires before the smaller `1 << 29` jiffies.
fn expiry_floor(at: Instant) -> Instant {
    const HORIZON: Instant = Instant::from_nanos((1 << 29) * NSEC_PER_JIFFY);
    at.min(HORIZON)
}

impl CpuTimers {
    /// An empty wheel whose clock starts at `now` (`init_timer_cpu()`).
    pub(crate) fn new(now: Instant) -> CpuTimers {
        CpuTimers {
            wheel: None,
            start: now,
            next_expiry: Cell::new(NextExpiry::Known(None)),
            cancels: None,
        }
    }

    /// The bound kept after a change that cannot bring the next expiry
    /// before `floor` (a cancel: `Instant::MAX`; an arm: the new timer's
    /// floor).
    fn lower_to(&self, floor: Instant) {
        let bound = match self.next_expiry.get() {
            NextExpiry::Known(next) => next.unwrap_or(Instant::MAX),
            NextExpiry::NotBefore(b) => b,
        };
        self.next_expiry
            .set(NextExpiry::NotBefore(bound.min(floor)));
    }

    /// The timers of a context that stands in for a CPU during one call
    /// made outside any CPU: it starts empty (the CPU's own timers are not
    /// visible, [`complete`](Self::complete) is `false`), and what the call
    /// armed ([`pop_expired`](Self::pop_expired) with `Instant::MAX`) and
    /// cancelled ([`take_cancels`](Self::take_cancels)) is applied to the
    /// CPU's wheel afterwards, cancels first.
    pub(crate) fn detached(now: Instant) -> CpuTimers {
        CpuTimers {
            cancels: Some(Vec::new()),
            ..CpuTimers::new(now)
        }
    }

    /// Whether this is a CPU's own wheel (not a detached one).
    pub(crate) fn complete(&self) -> bool {
        self.cancels.is_none()
    }

    /// The ids a detached wheel was asked to cancel, in order.
    pub(crate) fn take_cancels(&mut self) -> Vec<HostTimer> {
        self.cancels
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Arms `id` for `at`; returns the deadline it replaced.
    pub(crate) fn arm(&mut self, id: HostTimer, at: Instant) -> Option<Instant> {
        self.lower_to(expiry_floor(at));
        let start = self.start;
        self.wheel
            .get_or_insert_with(|| Box::new(TimerWheel::new(start)))
            .arm(id, at)
    }

    /// Cancels `id`; returns the deadline it had.
    pub(crate) fn cancel(&mut self, id: HostTimer) -> Option<Instant> {
        if let Some(cancels) = &mut self.cancels {
            cancels.push(id);
        }
        let prev = self.wheel.as_mut().and_then(|w| w.cancel(id));
        if prev.is_some() {
            self.lower_to(Instant::MAX);
        }
        prev
    }

    /// Stops `id` but may leave it on the wheel
    /// ([`TimerWheel::disarm`]); returns the deadline it had.
    ///
    /// For an owner whose handler ignores a stale expiry (TCP's
    /// `icsk_pending`, Linux's `inet_csk_clear_xmit_timer()` without
    /// `INET_CSK_CLEAR_TIMERS`): a disarmed timer is not pending, never
    /// fires and never moves the CPU's next expiry (an idle simulation's
    /// virtual time), and arming it again is `mod_timer()` on a queued
    /// timer. A context standing in for a CPU ([`CpuTimers::detached`])
    /// cancels, so that the CPU's own wheel hears of it.
    pub(crate) fn disarm(&mut self, id: HostTimer) -> Option<Instant> {
        if self.cancels.is_some() {
            return self.cancel(id);
        }
        let prev = self.wheel.as_mut().and_then(|w| w.disarm(id));
        if prev.is_some() {
            self.lower_to(Instant::MAX);
        }
        prev
    }

    /// The deadline of `id`, if armed.
    pub(crate) fn pending(&self, id: HostTimer) -> Option<Instant> {
        self.wheel.as_ref().and_then(|w| w.pending(id))
    }

    /// Hands out one timer due at or before `now` (see
    /// [`TimerWheel::pop_expired`]).
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(HostTimer, Instant)> {
        let Some(wheel) = self.wheel.as_mut() else {
            // An empty wheel's clock moves past `now` (to the next jiffy).
            if jiffy(self.start) <= jiffy(now) {
                self.start = Instant::from_nanos((jiffy(now) + 1).saturating_mul(NSEC_PER_JIFFY));
            }
            return None;
        };
        self.next_expiry.set(STALE);
        wheel.pop_expired(now)
    }

    /// When the earliest timer is due, as the wheel's granularity places it.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        if let NextExpiry::Known(next) = self.next_expiry.get() {
            return next;
        }
        let next = self.wheel.as_deref().and_then(TimerWheel::next_expiry);
        self.next_expiry.set(NextExpiry::Known(next));
        next
    }

    /// What is known of the next expiry without searching the wheel: an
    /// instant no later than it ([`Instant::MAX`] for none) and whether
    /// it is the expiry itself.
    #[inline]
    pub(crate) fn expiry_bound(&self) -> (Instant, bool) {
        match self.next_expiry.get() {
            NextExpiry::Known(next) => (next.unwrap_or(Instant::MAX), true),
            NextExpiry::NotBefore(bound) => (bound, false),
        }
    }

    /// Whether a timer is due at `now`: `next_expiry() <= now`, without
    /// searching the wheel while the bound kept since the last change is
    /// later than `now`.
    #[inline]
    pub(crate) fn due_by(&self, now: Instant) -> bool {
        match self.next_expiry.get() {
            NextExpiry::Known(next) => next.is_some_and(|t| t <= now),
            NextExpiry::NotBefore(bound) if bound > now => false,
            NextExpiry::NotBefore(_) => self.next_expiry().is_some_and(|t| t <= now),
        }
    }

    /// Timers armed.
    pub(crate) fn len(&self) -> usize {
        self.wheel.as_deref().map_or(0, TimerWheel::len)
    }
}

/// Nanoseconds per jiffy (`HZ` = 1000).
const NSEC_PER_JIFFY: u64 = 1_000_000_000 / netcore::HZ;

/// The jiffy `t` falls in.
fn jiffy(t: Instant) -> u64 {
    t.as_nanos() / NSEC_PER_JIFFY
}

impl From<TimerWheel<HostTimer>> for CpuTimers {
    fn from(wheel: TimerWheel<HostTimer>) -> CpuTimers {
        CpuTimers {
            wheel: Some(Box::new(wheel)),
            start: Instant::ZERO,
            next_expiry: Cell::new(STALE),
            cancels: None,
        }
    }
}

/// Work queued for a CPU's process context: an application step or a
/// configuration change that must run on that CPU.
pub type ProcessWork = Box<dyn FnOnce(&mut CpuCtx) + Send>;

/// One CPU's context: what a layer's code reaches as `ctx`.
///
/// Mirrors the per-CPU state of Linux (`this_cpu_ptr(&softnet_data)`,
/// the CPU's `timer_base`, `smp_processor_id()`) together with the
/// `struct net` of its network namespace ([`CpuCtx::host`]). Owned by
/// the CPU's runner: the simulation holds it in the host; the thread
/// runtime moves it into the CPU's thread.
pub struct CpuCtx {
    pub(crate) cpu: usize,
    pub(crate) sd: SoftnetData<CpuCtx>,
    pub(crate) timers: CpuTimers,
    pub(crate) clock: CpuClock,
    pub(crate) host: Arc<HostShared>,
    /// Where TCP's trace goes while it is recorded (`None`: off).
    pub(crate) tcp_trace: Option<crate::plot::TcpTraceLog>,
    /// The route of the last TCP connection this CPU transmitted for
    /// (see `ip_queue_xmit` in `tcp.rs`).
    pub(crate) tcp_dst: Option<Box<ipv4::InetSock>>,
    /// The device this CPU last transmitted on (`dst->dev`; see
    /// `ipv4::XmitDevCache`).
    pub(crate) xmit_dev: ipv4::XmitDevCache,
    /// The socket of this CPU's last UDP receive lookup (see
    /// `udp::UdpRcvCache`).
    pub(crate) udp_rcv: udp::UdpRcvCache,
}

/// The clock a CPU reads: the host's clock, with the virtual clock kept
/// beside it in a simulation.
///
/// Linux reads the time from a per-CPU clocksource without an indirect
/// call on the fast path (`ktime_get()` → the vDSO-like `read` of the TSC);
/// here the stack reads it on every packet (timestamps, timers, GRO), so
/// in virtual time [`CpuClock::now`] is one load of the shared virtual
/// clock instead of a call through `dyn Clock`. The same instant either
/// way: the two are the same clock.
#[derive(Clone)]
pub(crate) struct CpuClock {
    clock: Arc<dyn Clock>,
    virt: Option<netcore::VirtualClock>,
    /// `virt` caches the real `clock` ([`CpuClock::cached`]).
    cached: bool,
}

impl CpuClock {
    /// The CPU's view of `clock`.
    pub(crate) fn new(clock: &Arc<dyn Clock>) -> CpuClock {
        CpuClock {
            clock: Arc::clone(clock),
            virt: clock.as_virtual().cloned(),
            cached: false,
        }
    }

    /// The current instant.
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        match &self.virt {
            Some(v) => v.now(),
            None => self.clock.now(),
        }
    }

    /// A view of the real clock `clock` that reads the instant its CPU
    /// thread last stored ([`CpuClock::tick`]) instead of the clock: the
    /// `idle=poll` runtime's CPUs, which store it at every turn of their
    /// loop and every round of [`cpu_run_in`].
    ///
    /// As Linux's TCP reads its clock once per burst (`tcp_mstamp_refresh()`)
    /// and timers run off `jiffies`, the stack here sees time advance in
    /// steps of one round (a NAPI poll, a softirq pass, one application
    /// step), not within one: on this machine a read of the real clock (a
    /// vDSO `clock_gettime`) cost as much as a tenth of a 64-byte
    /// datagram's path.
    pub(crate) fn cached(clock: &Arc<dyn Clock>) -> CpuClock {
        CpuClock {
            clock: Arc::clone(clock),
            virt: Some(netcore::VirtualClock::starting_at(clock.now())),
            cached: true,
        }
    }

    /// Stores the real clock's instant in a [`CpuClock::cached`] view (the
    /// one writer is its CPU's thread); returns it. On any other view,
    /// returns the current instant.
    #[inline]
    pub(crate) fn tick(&self) -> Instant {
        match &self.virt {
            Some(v) if self.cached => {
                let now = self.clock.now();
                // A real clock does not go backwards; the store cannot fail.
                let _ = v.set_single_writer(now);
                now
            }
            _ => self.now(),
        }
    }
}

impl core::fmt::Debug for CpuCtx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CpuCtx")
            .field("host", &self.host.name)
            .field("cpu", &self.cpu)
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

impl CpuCtx {
    /// The CPU number (`smp_processor_id()`).
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// The host-wide state (the network namespace).
    pub fn host(&self) -> &Arc<HostShared> {
        &self.host
    }

    /// The earliest instant a timer of this CPU is due (the next tick that
    /// matters). Mirrors `get_next_timer_interrupt()`.
    pub fn next_timer(&self) -> Option<Instant> {
        self.timers.next_expiry()
    }

    /// See [`CpuTimers::expiry_bound`].
    #[inline]
    pub(crate) fn timer_bound(&self) -> (Instant, bool) {
        self.timers.expiry_bound()
    }

    /// Whether a timer of this CPU is due at `now` (`next_timer() <= now`,
    /// cheaper: see [`CpuTimers::due_by`]).
    #[inline]
    pub fn timer_due(&self, now: Instant) -> bool {
        self.timers.due_by(now)
    }

    /// Timers armed on this CPU.
    pub fn timers_pending(&self) -> usize {
        self.timers.len()
    }

    /// Whether this context sees every timer a protocol may ask it about
    /// (`TimerContext::timers_complete`): the CPU's own wheel, on a host
    /// with one CPU. A context standing in for a CPU during one call sees
    /// none of the CPU's timers, and on a host with several CPUs a timer
    /// sits on the wheel of the CPU that armed it (see the deviations of
    /// [`HostTimer`]).
    pub fn timers_complete(&self) -> bool {
        self.timers.complete() && self.host.nr_cpus() == 1
    }

    /// Starts (`Some`) or stops (`None`) recording TCP's trace on this
    /// CPU: each `tcp_probe` sample and each segment TCP transmits.
    ///
    /// Mirrors enabling the `tcp:tcp_probe` tracepoint (`echo 1 >
    /// /sys/kernel/tracing/events/tcp/tcp_probe/enable`) plus a capture
    /// of the sender's segments; one log may be shared by several CPUs.
    pub fn set_tcp_trace(&mut self, log: Option<crate::plot::TcpTraceLog>) {
        self.tcp_trace = log;
    }
}

impl TimerContext<SoftnetTimer> for CpuCtx {
    fn arm_timer(&mut self, id: SoftnetTimer, at: Instant) -> Option<Instant> {
        self.timers.arm(HostTimer::Softnet(id), at)
    }
    fn cancel_timer(&mut self, id: SoftnetTimer) -> Option<Instant> {
        self.timers.cancel(HostTimer::Softnet(id))
    }
    fn timer_pending(&self, id: SoftnetTimer) -> Option<Instant> {
        self.timers.pending(HostTimer::Softnet(id))
    }
    fn timers_complete(&self) -> bool {
        CpuCtx::timers_complete(self)
    }
}

impl TimerContext<ipv4::Ipv4Timer> for CpuCtx {
    fn arm_timer(&mut self, id: ipv4::Ipv4Timer, at: Instant) -> Option<Instant> {
        self.timers.arm(HostTimer::Ipv4(id), at)
    }
    fn cancel_timer(&mut self, id: ipv4::Ipv4Timer) -> Option<Instant> {
        self.timers.cancel(HostTimer::Ipv4(id))
    }
    fn timer_pending(&self, id: ipv4::Ipv4Timer) -> Option<Instant> {
        self.timers.pending(HostTimer::Ipv4(id))
    }
    fn timers_complete(&self) -> bool {
        CpuCtx::timers_complete(self)
    }
}

impl SoftnetContext for CpuCtx {
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn softnet_data(&mut self) -> &mut SoftnetData<Self> {
        &mut self.sd
    }
    fn smp_processor_id(&mut self) -> usize {
        self.cpu
    }
}

impl netfilter::NfHookContext for CpuCtx {
    fn nf_hooks(&self) -> &netfilter::NfHooks<Self> {
        &self.host.nf_hooks
    }
}

/// The most rounds of "process work, hard IRQs, softirqs" one
/// [`cpu_run`] makes before it returns with work still pending (the
/// runtime comes back at once): a guard against a livelock, not a Linux
/// limit.
pub const CPU_RUN_MAX_ROUNDS: usize = 64;

/// What one [`cpu_run`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuRunStats {
    /// Process-context work items run.
    pub process_work: usize,
    /// Hard IRQ handlers run.
    pub hardirqs: usize,
    /// Softirq action calls (over `do_softirq` and ksoftirqd).
    pub softirq_actions: u32,
    /// Times work was handed to ksoftirqd.
    pub ksoftirqd_runs: u32,
    /// Whether work was still pending when the round limit was reached.
    pub more: bool,
}

impl CpuRunStats {
    /// Whether anything ran.
    pub fn did_work(&self) -> bool {
        self.process_work + self.hardirqs > 0 || self.softirq_actions > 0
    }
}

/// Runs one CPU until it has nothing pending at this instant: queued
/// process work, hard IRQs, then softirqs as on IRQ exit, and ksoftirqd
/// for what `__do_softirq` deferred.
///
/// Mirrors the sequence `handle_irq()` → `irq_exit()` →
/// `invoke_softirq()` → `__do_softirq()`, with `run_ksoftirqd()` and the
/// tick's `run_local_timers()` raising `TIMER_SOFTIRQ`.
pub fn cpu_run(ctx: &mut CpuCtx) -> CpuRunStats {
    // One reference each for the whole run (the softirq actions borrow
    // the context mutably).
    let host = Arc::clone(&ctx.host);
    let clock = ctx.clock.clone();
    cpu_run_in(ctx, &host, &clock)
}

/// [`cpu_run`] with the CPU's host and clock borrowed from a caller that
/// holds them beyond the run (the simulation loop's [`crate::Host`], a CPU
/// thread): the run needs them while the softirq actions borrow the
/// context mutably, and borrowing them from the caller spares the three
/// reference count increments and decrements (locked operations) a clone
/// per run costs. `host` must be `ctx`'s own host and `clock` a view of
/// its clock.
pub(crate) fn cpu_run_in(ctx: &mut CpuCtx, host: &HostShared, clock: &CpuClock) -> CpuRunStats {
    debug_assert!(core::ptr::eq(host, Arc::as_ptr(&ctx.host)));
    let softirqs = &host.softirqs;
    let cpu = ctx.cpu;
    let span =
        tracing::trace_span!(target: "netstack::cpu", "cpu", host = %host.name, cpu).entered();
    let mut stats = CpuRunStats::default();
    for _ in 0..CPU_RUN_MAX_ROUNDS {
        // A CPU that caches the real clock stores it once per round (see
        // `CpuClock::cached`); on any other clock this is a read.
        clock.tick();
        let mut worked = false;
        // The work queued when the round found the queue: what a step
        // queues (a step that queues itself again, as a task that yields)
        // runs in the next round, after the interrupts and softirqs, so
        // that it cannot keep them from the CPU.
        let mut left = usize::MAX;
        while left > 0 {
            let Some((work, behind)) = host.pop_process_work(cpu) else {
                break;
            };
            if left == usize::MAX {
                left = behind + 1;
            }
            left -= 1;
            work(ctx);
            stats.process_work += 1;
            worked = true;
        }
        if tracing::enabled!(target: "netstack::irq", tracing::Level::TRACE)
            && host.irqs.irqs_pending(cpu).unwrap_or(false)
        {
            tracing::trace!(target: "netstack::irq", cpu, "handle_irq");
        }
        let n = host.irqs.handle_pending(cpu, softirqs).unwrap_or(0);
        stats.hardirqs += n;
        worked |= n > 0;
        if ctx.timers.due_by(clock.now()) {
            // run_local_timers(): the tick raises TIMER_SOFTIRQ.
            let _ = softirqs.raise_softirq_irqoff(cpu, SoftirqNr::Timer);
        }
        if softirqs.local_softirq_pending(cpu).unwrap_or(0) != 0 {
            let run = softirqs
                .do_softirq(
                    cpu,
                    || clock.now(),
                    || false,
                    |nr, _| {
                        softirq_action(ctx, host, nr);
                    },
                )
                .unwrap_or_default();
            stats.softirq_actions += run.actions;
            worked = true;
            if run.deferred {
                stats.ksoftirqd_runs += 1;
                tracing::trace!(target: "netstack::irq", cpu, "wakeup_softirqd");
                let r: SoftirqRun = softirqs
                    .run_ksoftirqd(
                        cpu,
                        || clock.now(),
                        || false,
                        |nr, _| {
                            softirq_action(ctx, host, nr);
                        },
                    )
                    .unwrap_or_default();
                stats.softirq_actions += r.actions;
            }
        }
        if !worked {
            drop(span);
            return stats;
        }
    }
    stats.more = true;
    drop(span);
    stats
}

/// Whether `cpu_run` would find work now (process work, IRQs, softirqs,
/// or a due timer).
///
/// Every look is lock-free (the process queue's by the host's mask of
/// non-empty queues) and only reads, so their order changes nothing but
/// the cost: interrupts first, as a CPU the loop looks at was kicked, as
/// a rule, by one.
pub fn cpu_has_work(ctx: &CpuCtx) -> bool {
    let host = &ctx.host;
    let cpu = ctx.cpu;
    host.irqs.irqs_pending(cpu).unwrap_or(false)
        || host.softirqs.local_softirq_pending(cpu).unwrap_or(0) != 0
        || ctx.timers.due_by(ctx.clock.now())
        || host.process_pending(cpu)
}

/// The action of one softirq vector: `open_softirq()`'s table. `host`
/// is the context's own host, which `cpu_run_in` holds apart from the
/// context: `net_rx_action_in` borrows its softnet state from it instead
/// of cloning the context's `Arc` per run.
fn softirq_action(ctx: &mut CpuCtx, host: &HostShared, nr: SoftirqNr) {
    match nr {
        SoftirqNr::NetRx => softnet::net_rx_action_in(ctx, &host.softnet),
        SoftirqNr::NetTx => softnet::net_tx_action(ctx),
        SoftirqNr::Timer => run_timer_softirq(ctx),
        SoftirqNr::Tasklet => crate::tcp::tcp_tsq_workfn(ctx),
        _ => {}
    }
}

/// Fires this CPU's expired timers, dispatching each to its crate.
///
/// Mirrors `run_timer_softirq()` → `__run_timers()` → `expire_timers()`.
fn run_timer_softirq(ctx: &mut CpuCtx) {
    let now = ctx.clock.now();
    let mut fired: VecDeque<HostTimer> = VecDeque::new();
    while let Some((id, _)) = ctx.timers.pop_expired(now) {
        fired.push_back(id);
    }
    for id in fired {
        tracing::trace!(target: "netstack::timer", timer = ?id, "expire_timers");
        match id {
            HostTimer::Softnet(t) => softnet::handle_timer(ctx, t),
            HostTimer::Ipv4(t) => ipv4::handle_timer(ctx, t),
            HostTimer::Netfilter(t) => crate::netfilter::handle_timer(ctx, t),
            HostTimer::Tcp(t) => crate::tcp::tcp_handle_timer(ctx, t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcore::Duration;

    /// A CPU of the `idle=poll` runtime reads the instant its loop last
    /// stored, not the clock: time stands still between two ticks and
    /// jumps to the real clock's at the next.
    #[test]
    fn a_cached_cpu_clock_moves_at_its_ticks_only() {
        let real: Arc<dyn Clock> = Arc::new(netcore::MonotonicClock::new());
        let c = CpuClock::cached(&real);
        let t0 = c.tick();
        std::thread::sleep(std::time::Duration::from_millis(3));
        assert_eq!(c.now(), t0, "no tick, no time");
        let t1 = c.tick();
        assert!(t1.saturating_duration_since(t0) >= Duration::from_millis(3));
        assert_eq!(c.now(), t1);
        assert!(real.now() >= t1);
        // The runtimes' other views read the clock each time.
        let plain = CpuClock::new(&real);
        let p0 = plain.now();
        std::thread::sleep(std::time::Duration::from_millis(1));
        assert!(plain.now() > p0);
    }

    fn watchdog(queue: u16) -> HostTimer {
        HostTimer::Softnet(SoftnetTimer::QdiscWatchdog { ifindex: 1, queue })
    }

    /// A seeded walk of arms, cancels, disarms and expiries: the remembered next
    /// expiry, every armed deadline and every timer handed out match a
    /// plain wheel's, including a wheel built late (first arm after an
    /// empty expiry pass moved its clock), and whether a timer is due
    /// now, asked of a wheel never asked for its next expiry (so that it
    /// answers from the bound it keeps across changes).
    #[test]
    fn cpu_timers_behave_like_a_plain_wheel() {
        let start = Instant::ZERO.saturating_add(Duration::from_micros(1_500));
        let mut plain: TimerWheel<HostTimer> = TimerWheel::new(start);
        let mut lazy = CpuTimers::new(start);
        let mut eager: CpuTimers = TimerWheel::new(start).into();
        let mut bounded = CpuTimers::new(start);
        let mut now = start;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..4_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = watchdog((x % 13) as u16);
            match (x >> 8) % 4 {
                0 | 1 if step > 40 => {
                    let at = now.saturating_add(Duration::from_micros((x >> 16) % 900_000));
                    let p = plain.arm(id, at);
                    assert_eq!(lazy.arm(id, at), p);
                    assert_eq!(eager.arm(id, at), p);
                    assert_eq!(bounded.arm(id, at), p);
                }
                2 if x & (1 << 40) == 0 => {
                    let p = plain.cancel(id);
                    assert_eq!(lazy.cancel(id), p);
                    assert_eq!(eager.cancel(id), p);
                    assert_eq!(bounded.cancel(id), p);
                }
                // A disarm is a cancel to every observer.
                2 => {
                    let p = plain.cancel(id);
                    assert_eq!(lazy.disarm(id), p);
                    assert_eq!(eager.disarm(id), p);
                    assert_eq!(bounded.disarm(id), p);
                }
                _ => {
                    now = now.saturating_add(Duration::from_micros((x >> 20) % 3_000));
                    loop {
                        let p = plain.pop_expired(now);
                        assert_eq!(lazy.pop_expired(now), p);
                        assert_eq!(eager.pop_expired(now), p);
                        assert_eq!(bounded.pop_expired(now), p);
                        if p.is_none() {
                            break;
                        }
                    }
                }
            }
            let due = plain.next_expiry().is_some_and(|t| t <= now);
            assert_eq!(bounded.due_by(now), due, "step {step}");
            assert_eq!(lazy.next_expiry(), plain.next_expiry(), "step {step}");
            assert_eq!(eager.next_expiry(), plain.next_expiry(), "step {step}");
            assert_eq!(lazy.pending(id), plain.pending(id));
            assert_eq!(lazy.len(), plain.len());
        }
        assert!(!plain.is_empty(), "the walk leaves timers armed");
    }

    /// A disarm on a stand-in context is a cancel the CPU's wheel hears
    /// of; on a CPU's wheel it leaves no trace but the queued entry, which
    /// does not move the next expiry.
    #[test]
    fn disarm_on_a_stand_in_context_is_replayed_as_a_cancel() {
        let at = Instant::ZERO.saturating_add(Duration::from_millis(5));
        let mut t = CpuTimers::detached(Instant::ZERO);
        t.arm(watchdog(0), at);
        assert_eq!(t.disarm(watchdog(0)), Some(at));
        assert_eq!(t.disarm(watchdog(1)), None);
        assert_eq!(t.take_cancels(), [watchdog(0), watchdog(1)]);
        let mut cpu = CpuTimers::new(Instant::ZERO);
        cpu.arm(watchdog(0), at);
        assert_eq!(cpu.next_expiry(), Some(at));
        assert_eq!(cpu.disarm(watchdog(0)), Some(at));
        assert_eq!((cpu.next_expiry(), cpu.len()), (None, 0));
        assert!(cpu.take_cancels().is_empty());
        assert_eq!(cpu.pop_expired(Instant::MAX), None);
    }

    #[test]
    fn a_context_that_arms_no_timer_builds_no_wheel() {
        let mut t = CpuTimers::new(Instant::ZERO);
        assert_eq!(t.next_expiry(), None);
        assert_eq!(t.pop_expired(Instant::MAX), None);
        assert_eq!(t.cancel(watchdog(0)), None);
        assert!(t.wheel.is_none());
        let at = Instant::ZERO.saturating_add(Duration::from_millis(5));
        t.arm(watchdog(0), at);
        assert!(t.wheel.is_some());
        assert_eq!(t.pending(watchdog(0)), Some(at));
    }
}
