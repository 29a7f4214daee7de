//! Running handlers: the driver's plug-in and the per-CPU delivery step.
//!
//! Mirrors `kernel/irq/handle.c` (`handle_irq_event()`, `irqreturn_t`),
//! `handle_edge_irq()` in `kernel/irq/chip.c`, `generic_handle_irq()` /
//! `common_interrupt()` (the arch entry a CPU runs when its pending bit is
//! set) and `irq_thread()` in `kernel/irq/manage.c`.
//!
//! The CPU's runner calls [`IrqTable::handle_pending`] for its own CPU; the
//! handlers of the lines pending there run on that thread, one at a time,
//! lowest line first.

use core::sync::atomic::Ordering;

use crate::irqdesc::{IrqDesc, IrqError, IrqTable, ST_PENDING, ST_REQUESTED, can_handle};
use crate::softirq::{SoftirqNr, Softirqs};

/// What a handler did with an interrupt.
///
/// Mirrors `enum irqreturn` (`irqreturn_t`) in `include/linux/irqreturn.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IrqReturn {
    /// The interrupt was not from this device (counted in `irqs_unhandled`).
    #[doc(alias = "IRQ_NONE")]
    None,
    /// The interrupt was handled.
    #[doc(alias = "IRQ_HANDLED")]
    Handled,
    /// The interrupt was handled in part; run the handler's
    /// [`IrqHandler::thread_fn`] (the runner calls [`IrqTable::run_irq_threads`]).
    #[doc(alias = "IRQ_WAKE_THREAD")]
    WakeThread,
}

/// An interrupt handler: the plug-in a driver installs with
/// [`IrqTable::request_irq`].
///
/// Mirrors `irq_handler_t` (the `handler` and `thread_fn` of `struct
/// irqaction`). `handle` runs in hard-IRQ context on the CPU the line is
/// routed to: it must be short, never block, and never call `free_irq`,
/// `disable_irq` or `synchronize_irq` on its own line (they wait for it);
/// `disable_irq_nosync`, `mask_irq` and raising softirqs are fine.
///
/// A closure `FnMut(u32, &mut HardIrqContext) -> IrqReturn + Send` is a
/// handler.
pub trait IrqHandler: Send {
    /// Handles one interrupt of line `irq`.
    fn handle(&mut self, irq: u32, ctx: &mut HardIrqContext<'_>) -> IrqReturn;

    /// The threaded half, run by [`IrqTable::run_irq_threads`] after
    /// `handle` returned [`IrqReturn::WakeThread`]. The default does nothing.
    ///
    /// Mirrors the `thread_fn` of `request_threaded_irq()`.
    fn thread_fn(&mut self, irq: u32, ctx: &mut HardIrqContext<'_>) -> IrqReturn {
        let _ = (irq, ctx);
        IrqReturn::None
    }
}

impl<F> IrqHandler for F
where
    F: FnMut(u32, &mut HardIrqContext<'_>) -> IrqReturn + Send,
{
    fn handle(&mut self, irq: u32, ctx: &mut HardIrqContext<'_>) -> IrqReturn {
        self(irq, ctx)
    }
}

impl core::fmt::Debug for dyn IrqHandler {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("dyn IrqHandler")
    }
}

/// A boxed handler is a handler: what [`IrqTable::free_irq`] returns can be
/// requested again.
impl IrqHandler for Box<dyn IrqHandler> {
    fn handle(&mut self, irq: u32, ctx: &mut HardIrqContext<'_>) -> IrqReturn {
        (**self).handle(irq, ctx)
    }
    fn thread_fn(&mut self, irq: u32, ctx: &mut HardIrqContext<'_>) -> IrqReturn {
        (**self).thread_fn(irq, ctx)
    }
}

/// What a handler may touch: the CPU it runs on and that CPU's softirqs.
///
/// Mirrors hard-IRQ context in Linux: `smp_processor_id()` is stable and
/// `raise_softirq_irqoff()` marks work for the softirq pass that follows on
/// this CPU (`irq_exit()`).
#[derive(Debug)]
pub struct HardIrqContext<'a> {
    cpu: usize,
    softirqs: &'a Softirqs,
}

impl HardIrqContext<'_> {
    /// The CPU this handler runs on.
    ///
    /// Mirrors `smp_processor_id()`.
    pub fn smp_processor_id(&self) -> usize {
        self.cpu
    }

    /// Marks softirq `nr` pending on this CPU, without kicking it (it is
    /// running, and runs softirqs on its way out of the IRQ).
    ///
    /// Mirrors `raise_softirq_irqoff()` called from a hard-IRQ handler
    /// (`in_interrupt()` is true, so ksoftirqd is not woken).
    pub fn raise_softirq_irqoff(&mut self, nr: SoftirqNr) {
        self.softirqs.raise_on_owner(self.cpu, nr);
    }

    /// The host's softirq state, to raise on another CPU (the RPS hand-over)
    /// or read counts.
    pub fn softirqs(&self) -> &Softirqs {
        self.softirqs
    }
}

impl IrqTable {
    /// Runs the handlers of every line pending on `cpu`, lowest line first.
    ///
    /// Mirrors the arch entry `common_interrupt()` → `generic_handle_irq()` →
    /// `handle_edge_irq()` → `handle_irq_event()`, for every vector pending
    /// in the CPU's IRR. Call it only from `cpu`'s own runner. A line that
    /// was disabled or masked between its raise and now is latched
    /// (`IRQS_PENDING`) instead of handled, as `handle_edge_irq()` does; a
    /// line freed in between is dropped.
    ///
    /// Returns how many handlers ran. Counters: the per-CPU `kstat_irqs` of
    /// each handled line (the `/proc/interrupts` columns), `irqs_unhandled`
    /// when a handler returns [`IrqReturn::None`].
    ///
    /// Errors: [`IrqError::CpuOutOfRange`] when `cpu` is not a CPU of this
    /// table or of `softirqs`.
    #[doc(alias = "generic_handle_irq")]
    #[doc(alias = "do_IRQ")]
    pub fn handle_pending(&self, cpu: usize, softirqs: &Softirqs) -> Result<usize, IrqError> {
        let cpu = self.check_cpu(cpu)?;
        softirqs.check_cpu(cpu)?;
        let mut ran = 0;
        let mut handle = |irq: u32| {
            if let Some(desc) = self.descs.get(irq as usize)
                && self.handle_edge_irq(desc, cpu, softirqs)
            {
                ran += 1;
            }
        };
        let c = &self.cpus[cpu];
        // The runner owns the CPU's plain bitmap (the first to drain it
        // claims it); another thread takes its bits with locked swaps.
        if c.owner.claim() {
            c.local.drain_plain(&mut handle);
        } else {
            c.local.drain(&mut handle);
        }
        c.pending.drain(&mut handle);
        Ok(ran)
    }

    /// Whether any line is pending on `cpu` (the CPU's IRR is not empty).
    ///
    /// A runner parks only when this, [`IrqTable::irq_threads_pending`] and
    /// [`Softirqs::local_softirq_pending`] are all clear.
    #[inline]
    pub fn irqs_pending(&self, cpu: usize) -> Result<bool, IrqError> {
        let c = &self.cpus[self.check_cpu(cpu)?];
        Ok(c.local.any() || c.pending.any())
    }

    /// Whether a handler on `cpu` returned [`IrqReturn::WakeThread`] and its
    /// thread has not run yet.
    pub fn irq_threads_pending(&self, cpu: usize) -> Result<bool, IrqError> {
        Ok(self.cpus[self.check_cpu(cpu)?].threads.any())
    }

    /// Runs the threaded halves woken on `cpu`.
    ///
    /// Mirrors `irq_thread()` in `kernel/irq/manage.c`: each line's
    /// `thread_fn` runs once per wake-up, in process context on the CPU whose
    /// handler woke it. Returns how many ran.
    ///
    /// # Deviations from Linux
    ///
    /// No separate kthread per line: the CPU's runner calls this, which is
    /// the order a kthread pinned to that CPU would run in anyway.
    #[doc(alias = "irq_thread")]
    pub fn run_irq_threads(&self, cpu: usize, softirqs: &Softirqs) -> Result<usize, IrqError> {
        let cpu = self.check_cpu(cpu)?;
        softirqs.check_cpu(cpu)?;
        let mut ran = 0;
        self.cpus[cpu].threads.drain(|irq| {
            let Some(desc) = self.descs.get(irq as usize) else {
                return;
            };
            let mut action = desc.action.lock();
            if let Some(handler) = action.as_mut() {
                let mut ctx = HardIrqContext { cpu, softirqs };
                handler.thread_fn(irq, &mut ctx);
                ran += 1;
            }
        });
        Ok(ran)
    }

    /// Handles one interrupt of `desc` on `cpu`; returns whether the handler ran.
    ///
    /// Mirrors `handle_edge_irq()` in `kernel/irq/chip.c`.
    fn handle_edge_irq(&self, desc: &IrqDesc, cpu: usize, softirqs: &Softirqs) -> bool {
        // The action lock is what `synchronize_irq()` waits on; checking the
        // state only once it is held means a `disable_irq()` that returned
        // can never be followed by this handler running.
        let mut action = desc.action.lock();
        let mut s = desc.state.load(Ordering::Acquire);
        loop {
            if s & ST_REQUESTED == 0 {
                return false;
            }
            if can_handle(s) {
                break;
            }
            if s & ST_PENDING != 0 {
                return false;
            }
            match desc.state.compare_exchange_weak(
                s,
                s | ST_PENDING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return false,
                Err(now) => s = now,
            }
        }
        let Some(handler) = action.as_mut() else {
            return false;
        };
        // kstat_incr_irqs_this_cpu(): a plain increment, as Linux's is.
        // Every write of the counter happens here under the action lock, so
        // a load and a store lose nothing (readers see whole values).
        let kstat = &desc.kstat_irqs[cpu];
        kstat.store(kstat.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        let mut ctx = HardIrqContext { cpu, softirqs };
        match handler.handle(desc.irq(), &mut ctx) {
            IrqReturn::None => {
                desc.irqs_unhandled.fetch_add(1, Ordering::Relaxed);
            }
            IrqReturn::Handled => {}
            IrqReturn::WakeThread => {
                self.cpus[cpu].threads.set(desc.irq());
            }
        }
        true
    }
}
