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
    pub(crate) timers: TimerWheel<HostTimer>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) host: Arc<HostShared>,
    /// Where TCP's trace goes while it is recorded (`None`: off).
    pub(crate) tcp_trace: Option<crate::plot::TcpTraceLog>,
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

    /// Timers armed on this CPU.
    pub fn timers_pending(&self) -> usize {
        self.timers.len()
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
    let host = Arc::clone(&ctx.host);
    let cpu = ctx.cpu;
    let span =
        tracing::trace_span!(target: "netstack::cpu", "cpu", host = %host.name, cpu).entered();
    let mut stats = CpuRunStats::default();
    for _ in 0..CPU_RUN_MAX_ROUNDS {
        let mut worked = false;
        loop {
            let work = host.process_queue(cpu).lock().pop_front();
            let Some(work) = work else { break };
            work(ctx);
            stats.process_work += 1;
            worked = true;
        }
        if tracing::enabled!(target: "netstack::irq", tracing::Level::TRACE)
            && host.irqs.irqs_pending(cpu).unwrap_or(false)
        {
            tracing::trace!(target: "netstack::irq", cpu, "handle_irq");
        }
        let n = host.irqs.handle_pending(cpu, &host.softirqs).unwrap_or(0);
        stats.hardirqs += n;
        worked |= n > 0;
        let now = ctx.clock.now();
        if ctx.timers.next_expiry().is_some_and(|t| t <= now) {
            // run_local_timers(): the tick raises TIMER_SOFTIRQ.
            let _ = host.softirqs.raise_softirq_irqoff(cpu, SoftirqNr::Timer);
        }
        if host.softirqs.local_softirq_pending(cpu).unwrap_or(0) != 0 {
            let softirqs = Arc::clone(&host.softirqs);
            let clock = Arc::clone(&ctx.clock);
            let run = softirqs
                .do_softirq(
                    cpu,
                    || clock.now(),
                    || false,
                    |nr, _| {
                        softirq_action(ctx, nr);
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
                            softirq_action(ctx, nr);
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
pub fn cpu_has_work(ctx: &CpuCtx) -> bool {
    let host = &ctx.host;
    let cpu = ctx.cpu;
    !host.process_queue(cpu).lock().is_empty()
        || host.irqs.irqs_pending(cpu).unwrap_or(false)
        || host.softirqs.local_softirq_pending(cpu).unwrap_or(0) != 0
        || ctx
            .timers
            .next_expiry()
            .is_some_and(|t| t <= ctx.clock.now())
}

/// The action of one softirq vector: `open_softirq()`'s table.
fn softirq_action(ctx: &mut CpuCtx, nr: SoftirqNr) {
    match nr {
        SoftirqNr::NetRx => softnet::net_rx_action(ctx),
        SoftirqNr::NetTx => softnet::net_tx_action(ctx),
        SoftirqNr::Timer => run_timer_softirq(ctx),
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
