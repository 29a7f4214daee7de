//! Softirqs: per-CPU pending bits, the `__do_softirq` restart rule and the
//! hand-over to ksoftirqd.
//!
//! Mirrors `kernel/softirq.c` and `include/linux/interrupt.h`.
//!
//! ```text
//!  raise_softirq(cpu, NET_RX) ─► pending[cpu] |= 1<<3 ─► kick(cpu) if it was 0
//!
//!  CPU cpu, on its way out of an IRQ:        ksoftirqd/cpu, when scheduled:
//!  do_softirq(cpu, now, need_resched, f)     run_ksoftirqd(cpu, now, need_resched, f)
//!    round: take pending, run f(nr) per bit    same rounds, same rule
//!    pending again? restart while
//!      now < start + MAX_SOFTIRQ_TIME (2 ms)
//!      && !need_resched()
//!      && rounds < MAX_SOFTIRQ_RESTART (10)
//!    else wakeup_ksoftirqd(cpu) ───────────►  ksoftirqd_should_run(cpu)
//! ```
//!
//! The pending word of each CPU is atomic, so any thread may raise a softirq
//! for any CPU; the actions run only on the thread that calls `do_softirq`
//! or `run_ksoftirqd` for that CPU. That thread (the CPU's runner, the
//! first to run its softirqs) raises on its own CPU with a plain load and
//! store ([`PcpuBits`]), as Linux's `__raise_softirq_irqoff()` is a
//! `__this_cpu_or()`. Actions are not registered globally
//! (`open_softirq()`): the runner passes one dispatch closure, which has
//! `&mut` access to its CPU's own state (the softnet data, the timer wheel).

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use netcore::{Duration, Instant, PcpuBits};

use crate::irqdesc::IrqError;
use crate::smp::CpuWakeup;

/// The number of softirq vectors.
///
/// Mirrors `NR_SOFTIRQS` in `include/linux/interrupt.h`.
pub const NR_SOFTIRQS: usize = 10;

/// How many rounds `do_softirq` runs before handing the rest to ksoftirqd.
///
/// Mirrors `MAX_SOFTIRQ_RESTART` in `kernel/softirq.c`.
pub const MAX_SOFTIRQ_RESTART: u32 = 10;

/// How long `do_softirq` keeps restarting before handing the rest to
/// ksoftirqd.
///
/// Mirrors `MAX_SOFTIRQ_TIME` (`msecs_to_jiffies(2)`) in `kernel/softirq.c`.
pub const MAX_SOFTIRQ_TIME: Duration = Duration::from_millis(2);

/// A softirq vector, numbered as Linux numbers them (lower runs first).
///
/// Mirrors the anonymous enum of `HI_SOFTIRQ` … `RCU_SOFTIRQ` in
/// `include/linux/interrupt.h`; [`SoftirqNr::name`] gives the names of
/// `softirq_to_name[]` that `/proc/softirqs` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum SoftirqNr {
    /// High-priority tasklets.
    #[doc(alias = "HI_SOFTIRQ")]
    Hi = 0,
    /// Timer wheel expiry (`run_timer_softirq`).
    #[doc(alias = "TIMER_SOFTIRQ")]
    Timer = 1,
    /// Transmit completion and qdisc restarts (`net_tx_action`).
    #[doc(alias = "NET_TX_SOFTIRQ")]
    NetTx = 2,
    /// NAPI polling and the backlog (`net_rx_action`).
    #[doc(alias = "NET_RX_SOFTIRQ")]
    NetRx = 3,
    /// Block-device completions.
    #[doc(alias = "BLOCK_SOFTIRQ")]
    Block = 4,
    /// `irq_poll` polling.
    #[doc(alias = "IRQ_POLL_SOFTIRQ")]
    IrqPoll = 5,
    /// Normal-priority tasklets.
    #[doc(alias = "TASKLET_SOFTIRQ")]
    Tasklet = 6,
    /// Scheduler load balancing.
    #[doc(alias = "SCHED_SOFTIRQ")]
    Sched = 7,
    /// High-resolution timers.
    #[doc(alias = "HRTIMER_SOFTIRQ")]
    Hrtimer = 8,
    /// RCU callbacks.
    #[doc(alias = "RCU_SOFTIRQ")]
    Rcu = 9,
}

impl SoftirqNr {
    /// Every vector, in number order.
    pub const ALL: [SoftirqNr; NR_SOFTIRQS] = [
        SoftirqNr::Hi,
        SoftirqNr::Timer,
        SoftirqNr::NetTx,
        SoftirqNr::NetRx,
        SoftirqNr::Block,
        SoftirqNr::IrqPoll,
        SoftirqNr::Tasklet,
        SoftirqNr::Sched,
        SoftirqNr::Hrtimer,
        SoftirqNr::Rcu,
    ];

    /// The name `/proc/softirqs` prints (`softirq_to_name[]`).
    pub const fn name(self) -> &'static str {
        match self {
            SoftirqNr::Hi => "HI",
            SoftirqNr::Timer => "TIMER",
            SoftirqNr::NetTx => "NET_TX",
            SoftirqNr::NetRx => "NET_RX",
            SoftirqNr::Block => "BLOCK",
            SoftirqNr::IrqPoll => "IRQ_POLL",
            SoftirqNr::Tasklet => "TASKLET",
            SoftirqNr::Sched => "SCHED",
            SoftirqNr::Hrtimer => "HRTIMER",
            SoftirqNr::Rcu => "RCU",
        }
    }

    /// The vector's bit in a pending word (`1 << nr`).
    pub const fn mask(self) -> u32 {
        1 << self as u32
    }
}

impl TryFrom<u32> for SoftirqNr {
    type Error = IrqError;
    fn try_from(nr: u32) -> Result<SoftirqNr, IrqError> {
        SoftirqNr::ALL
            .get(nr as usize)
            .copied()
            .ok_or(IrqError::BadArgument {
                name: "nr",
                accepts: "a softirq number 0..=9",
            })
    }
}

impl fmt::Display for SoftirqNr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One CPU's softirq state.
///
/// Mirrors `irq_stat[cpu].__softirq_pending` and `kstat_cpu(cpu).softirqs[]`.
struct SoftirqCpu {
    /// Pending vectors, one bit each (`local_softirq_pending()`). The
    /// CPU's runner (the first thread to run its softirqs) raises on it
    /// with a plain load and store, as Linux's `or_softirq_pending()` is a
    /// `__this_cpu_or()`; other threads with a locked `or`.
    pending: PcpuBits,
    /// Runs per vector (`kstat_softirqs_cpu()`).
    kstat: [AtomicU64; NR_SOFTIRQS],
    /// Times `do_softirq` handed leftovers to ksoftirqd.
    ksoftirqd_wakeups: AtomicU64,
}

/// What one `do_softirq` or `run_ksoftirqd` call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoftirqRun {
    /// Rounds run (each takes the whole pending word once); 0 if nothing
    /// was pending.
    pub rounds: u32,
    /// Action calls made, over all rounds.
    pub actions: u32,
    /// Whether work was left pending for ksoftirqd.
    pub deferred: bool,
}

/// What a softirq action may touch: its CPU, and raising softirqs there.
///
/// Mirrors softirq context in Linux (`in_softirq()`, `smp_processor_id()`).
#[derive(Debug)]
pub struct SoftirqContext<'a> {
    softirqs: &'a Softirqs,
    cpu: usize,
    ksoftirqd: bool,
}

impl SoftirqContext<'_> {
    /// The CPU the action runs on (`smp_processor_id()`).
    pub fn smp_processor_id(&self) -> usize {
        self.cpu
    }

    /// Whether the action runs in ksoftirqd rather than on the way out of an
    /// IRQ (`current == __this_cpu_read(ksoftirqd)`).
    pub fn in_ksoftirqd(&self) -> bool {
        self.ksoftirqd
    }

    /// Marks `nr` pending on this CPU again, for the next round (how
    /// `net_rx_action` asks to be run again when it ran out of budget).
    ///
    /// Mirrors `__raise_softirq_irqoff()`.
    pub fn raise_softirq_irqoff(&mut self, nr: SoftirqNr) {
        self.softirqs.raise_on_owner(self.cpu, nr);
    }

    /// The host's softirq state, to raise on another CPU.
    pub fn softirqs(&self) -> &Softirqs {
        self.softirqs
    }
}

/// The softirq state of every CPU of a host.
///
/// Mirrors the per-CPU `irq_stat` pending words, the `kstat` softirq counts
/// and the ksoftirqd threads of `kernel/softirq.c`. Share it as
/// `Arc<Softirqs>` with the [`IrqTable`](crate::IrqTable) and every runner.
///
/// # Deviations from Linux
///
/// - [`Softirqs::raise_softirq`] takes the target CPU: Linux only raises on
///   the current CPU and reaches another one with an IPI whose handler
///   raises there; here the raise itself kicks the target, which is the
///   same effect with one step fewer.
/// - Actions are a closure the runner passes to [`Softirqs::do_softirq`],
///   not a global `softirq_vec` filled by `open_softirq()`: the action needs
///   `&mut` access to state the CPU's runner owns.
/// - ksoftirqd is not a thread of this crate: [`Softirqs::ksoftirqd_should_run`]
///   tells the runner to call [`Softirqs::run_ksoftirqd`] when it would
///   schedule ksoftirqd (after other runnable work).
/// - [`Softirqs::ksoftirqd_wakeups`] has no Linux counter (Linux shows the
///   hand-over only as ksoftirqd's CPU time); it is here so reports and
///   tests can see how often softirq work was deferred.
pub struct Softirqs {
    cpus: Box<[SoftirqCpu]>,
    wakeup: CpuWakeup,
}

impl Softirqs {
    /// Softirq state for `nr_cpus` CPUs (accepts `1..=4096`), waking CPUs
    /// through `wakeup`.
    pub fn new(nr_cpus: usize, wakeup: CpuWakeup) -> Result<Softirqs, IrqError> {
        if nr_cpus == 0 || nr_cpus > 4096 {
            return Err(IrqError::BadArgument {
                name: "nr_cpus",
                accepts: "1..=4096",
            });
        }
        let cpus = (0..nr_cpus)
            .map(|_| SoftirqCpu {
                pending: PcpuBits::new(0),
                kstat: core::array::from_fn(|_| AtomicU64::new(0)),
                ksoftirqd_wakeups: AtomicU64::new(0),
            })
            .collect();
        Ok(Softirqs { cpus, wakeup })
    }

    /// How many CPUs this state covers.
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// The wake-up hook this state kicks CPUs through.
    pub fn wakeup(&self) -> &CpuWakeup {
        &self.wakeup
    }

    #[inline]
    pub(crate) fn check_cpu(&self, cpu: usize) -> Result<usize, IrqError> {
        if cpu < self.cpus.len() {
            Ok(cpu)
        } else {
            Err(IrqError::CpuOutOfRange {
                cpu,
                nr_cpus: self.cpus.len(),
            })
        }
    }

    /// Marks `nr` pending on `cpu` and kicks `cpu` if nothing was pending
    /// there before. Callable from any thread.
    ///
    /// Mirrors `raise_softirq()` in `kernel/softirq.c` (plus the IPI that
    /// reaches another CPU). The kick is skipped when other vectors were
    /// already pending: whoever made them pending kicked already, and the
    /// CPU takes the whole word at once.
    ///
    /// Errors: [`IrqError::CpuOutOfRange`].
    pub fn raise_softirq(&self, cpu: usize, nr: SoftirqNr) -> Result<(), IrqError> {
        let cpu = self.check_cpu(cpu)?;
        // Release: what the raiser wrote before (an skb queued for the CPU)
        // is visible to the CPU that takes the word with Acquire.
        let prev = self.cpus[cpu].pending.or(u64::from(nr.mask()));
        if prev == 0 {
            self.wakeup.kick(cpu);
        }
        Ok(())
    }

    /// Marks `nr` pending on `cpu` without kicking it: for the CPU's own
    /// runner, which runs softirqs before it parks.
    ///
    /// Mirrors `raise_softirq_irqoff()` called in interrupt context (and
    /// `__raise_softirq_irqoff()`).
    ///
    /// Errors: [`IrqError::CpuOutOfRange`].
    pub fn raise_softirq_irqoff(&self, cpu: usize, nr: SoftirqNr) -> Result<(), IrqError> {
        let cpu = self.check_cpu(cpu)?;
        self.raise_on_owner(cpu, nr);
        Ok(())
    }

    /// `raise_softirq_irqoff` for a CPU already checked.
    pub(crate) fn raise_on_owner(&self, cpu: usize, nr: SoftirqNr) {
        if let Some(c) = self.cpus.get(cpu) {
            c.pending.or(u64::from(nr.mask()));
        }
    }

    /// The pending vectors of `cpu`, one bit per [`SoftirqNr::mask`].
    ///
    /// Mirrors `local_softirq_pending()`.
    #[inline]
    pub fn local_softirq_pending(&self, cpu: usize) -> Result<u32, IrqError> {
        // Bits past NR_SOFTIRQS are never set: raises go through SoftirqNr.
        Ok(self.cpus[self.check_cpu(cpu)?].pending.load() as u32)
    }

    /// Whether ksoftirqd on `cpu` has work: softirqs are pending there.
    ///
    /// Mirrors `ksoftirqd_should_run()` in `kernel/softirq.c`.
    pub fn ksoftirqd_should_run(&self, cpu: usize) -> Result<bool, IrqError> {
        Ok(self.local_softirq_pending(cpu)? != 0)
    }

    /// Runs `cpu`'s pending softirqs on the way out of an IRQ, restarting
    /// while more are raised, within [`MAX_SOFTIRQ_RESTART`] rounds and
    /// [`MAX_SOFTIRQ_TIME`]; hands what is left to ksoftirqd.
    ///
    /// Mirrors `do_softirq()` / `__do_softirq()` (`handle_softirqs(false)`)
    /// in `kernel/softirq.c`. Each round takes the whole pending word and
    /// calls `action(nr, ctx)` once per set bit, lowest first, counting it
    /// in `kstat_softirqs_cpu`. After a round, if anything is pending again,
    /// it restarts only while `now()` is before the start plus 2 ms,
    /// `need_resched()` is false and fewer than 10 rounds ran; otherwise it
    /// calls `wakeup_ksoftirqd` (kicks the CPU, counts
    /// [`Softirqs::ksoftirqd_wakeups`]) and returns with the work pending.
    ///
    /// `now` is the caller's clock (virtual or real); this function never
    /// reads one itself. Call it only from `cpu`'s own runner.
    ///
    /// Errors: [`IrqError::CpuOutOfRange`].
    #[doc(alias = "__do_softirq")]
    #[doc(alias = "handle_softirqs")]
    pub fn do_softirq(
        &self,
        cpu: usize,
        now: impl FnMut() -> Instant,
        need_resched: impl FnMut() -> bool,
        action: impl FnMut(SoftirqNr, &mut SoftirqContext<'_>),
    ) -> Result<SoftirqRun, IrqError> {
        let cpu = self.check_cpu(cpu)?;
        Ok(self.handle_softirqs(cpu, false, now, need_resched, action))
    }

    /// Runs `cpu`'s pending softirqs as ksoftirqd does.
    ///
    /// Mirrors `run_ksoftirqd()` (`handle_softirqs(true)`) in
    /// `kernel/softirq.c`: the same rounds and the same restart rule as
    /// [`Softirqs::do_softirq`]; what is still pending afterwards stays for
    /// the next time the runner schedules ksoftirqd
    /// ([`Softirqs::ksoftirqd_should_run`]), without counting a new wake-up.
    /// Actions see [`SoftirqContext::in_ksoftirqd`] as true.
    ///
    /// Errors: [`IrqError::CpuOutOfRange`].
    pub fn run_ksoftirqd(
        &self,
        cpu: usize,
        now: impl FnMut() -> Instant,
        need_resched: impl FnMut() -> bool,
        action: impl FnMut(SoftirqNr, &mut SoftirqContext<'_>),
    ) -> Result<SoftirqRun, IrqError> {
        let cpu = self.check_cpu(cpu)?;
        Ok(self.handle_softirqs(cpu, true, now, need_resched, action))
    }

    fn handle_softirqs(
        &self,
        cpu: usize,
        ksoftirqd: bool,
        mut now: impl FnMut() -> Instant,
        mut need_resched: impl FnMut() -> bool,
        mut action: impl FnMut(SoftirqNr, &mut SoftirqContext<'_>),
    ) -> SoftirqRun {
        let this = &self.cpus[cpu];
        let mut run = SoftirqRun::default();
        if this.pending.load() == 0 {
            return run;
        }
        let end = now().saturating_add(MAX_SOFTIRQ_TIME);
        let mut max_restart = MAX_SOFTIRQ_RESTART;
        let mut ctx = SoftirqContext {
            softirqs: self,
            cpu,
            ksoftirqd,
        };
        loop {
            // set_softirq_pending(0): take the whole word for this round.
            let mut pending = this.pending.take();
            run.rounds += 1;
            while pending != 0 {
                let nr = pending.trailing_zeros();
                pending &= pending - 1;
                // Bits past NR_SOFTIRQS are never set: raises go through SoftirqNr.
                let Ok(nr) = SoftirqNr::try_from(nr) else {
                    continue;
                };
                // kstat_incr_softirqs_this_cpu(): a plain increment, as
                // Linux's is. Only `cpu`'s own runner runs its softirqs (see
                // `do_softirq`), so it is the counter's only writer.
                let kstat = &this.kstat[nr as usize];
                kstat.store(kstat.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                action(nr, &mut ctx);
                run.actions += 1;
            }
            if this.pending.load() == 0 {
                return run;
            }
            max_restart -= 1;
            if now() < end && !need_resched() && max_restart > 0 {
                continue;
            }
            if !ksoftirqd {
                self.wakeup_ksoftirqd(cpu);
            }
            run.deferred = true;
            return run;
        }
    }

    /// Hands `cpu`'s pending softirqs to its ksoftirqd: counts the hand-over
    /// and kicks the CPU so its runner schedules ksoftirqd.
    ///
    /// Mirrors `wakeup_softirqd()` in `kernel/softirq.c`.
    #[doc(alias = "wakeup_softirqd")]
    fn wakeup_ksoftirqd(&self, cpu: usize) {
        self.cpus[cpu]
            .ksoftirqd_wakeups
            .fetch_add(1, Ordering::Relaxed);
        self.wakeup.kick(cpu);
    }

    /// How many times `do_softirq` on `cpu` handed leftovers to ksoftirqd.
    pub fn ksoftirqd_wakeups(&self, cpu: usize) -> Result<u64, IrqError> {
        Ok(self.cpus[self.check_cpu(cpu)?]
            .ksoftirqd_wakeups
            .load(Ordering::Relaxed))
    }

    /// How many times `nr` ran on `cpu`.
    ///
    /// Mirrors `kstat_softirqs_cpu()` in `include/linux/kernel_stat.h`.
    pub fn kstat_softirqs_cpu(&self, nr: SoftirqNr, cpu: usize) -> Result<u64, IrqError> {
        Ok(self.cpus[self.check_cpu(cpu)?].kstat[nr as usize].load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Softirqs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Softirqs")
            .field("nr_cpus", &self.nr_cpus())
            .finish_non_exhaustive()
    }
}
