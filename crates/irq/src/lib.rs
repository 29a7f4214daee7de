//! Hard IRQ lines and softirqs.
//!
//! Mirrors `kernel/irq` (descriptors, `request_irq`/`free_irq`, nested
//! `disable_irq`/`enable_irq`, mask/unmask, affinity, the edge flow handler,
//! `/proc/interrupts`) and `kernel/softirq.c` (per-CPU pending bits,
//! `raise_softirq`, the `__do_softirq` restart rule, the ksoftirqd
//! hand-over, `/proc/softirqs`).
//!
//! What it owns and the seams it offers:
//!
//! - [`IrqTable`]: one host's lines. A device raises a line from any thread
//!   ([`IrqTable::raise_irq`]); the line becomes pending on its affinity CPU,
//!   which is woken through [`CpuWakeup`]; that CPU's runner calls
//!   [`IrqTable::handle_pending`], which runs the driver's [`IrqHandler`].
//! - [`Softirqs`]: per-CPU pending vectors ([`SoftirqNr`]), raised from any
//!   thread or from a handler through [`HardIrqContext`]; run by
//!   [`Softirqs::do_softirq`] and [`Softirqs::run_ksoftirqd`] with the
//!   runner's dispatch closure.
//! - [`CpuWakeup`]: the one seam it consumes — the runtime's "kick CPU n"
//!   callback (the simulation schedules the CPU; the thread runtime unparks
//!   its thread).
//!
//! The crate is sans-IO: it never sleeps, spawns or reads a clock; time
//! comes in as a `now` closure. Pending state is atomic, so the same code
//! serves the one-thread simulation and one OS thread per CPU.
//!
//! One CPU's runner, per iteration: `handle_pending` (hard IRQs, then
//! `irq_exit`), `run_irq_threads`, `do_softirq`, and, when it would schedule
//! ksoftirqd, `run_ksoftirqd` while `ksoftirqd_should_run`.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use irq::{CpuWakeup, IrqRaise, IrqReturn, IrqTable, SoftirqNr, Softirqs};
//! use netcore::Instant;
//!
//! let wakeup = CpuWakeup::new();
//! let kicked = Arc::new(AtomicUsize::new(usize::MAX));
//! let k = kicked.clone();
//! wakeup.set(move |cpu| k.store(cpu, Ordering::Relaxed));
//!
//! let irqs = IrqTable::new("netstack-msi", 64, 2, wakeup.clone())?;
//! let softirqs = Softirqs::new(2, wakeup)?;
//!
//! // The driver's handler schedules NAPI: it raises NET_RX on its CPU.
//! irqs.request_irq(24, |_irq: u32, ctx: &mut irq::HardIrqContext<'_>| {
//!     ctx.raise_softirq_irqoff(SoftirqNr::NetRx);
//!     IrqReturn::Handled
//! }, "eth0-rx-0")?;
//! irqs.irq_set_affinity(24, 1)?;
//!
//! // The device raises the line: pending on CPU 1, which is kicked.
//! assert_eq!(irqs.raise_irq(24)?, IrqRaise::Delivered { cpu: 1 });
//! assert_eq!(kicked.load(Ordering::Relaxed), 1);
//!
//! // CPU 1's runner: hard IRQs, then softirqs.
//! assert_eq!(irqs.handle_pending(1, &softirqs)?, 1);
//! let mut polled = Vec::new();
//! let run = softirqs.do_softirq(1, || Instant::ZERO, || false, |nr, _ctx| polled.push(nr))?;
//! assert_eq!(polled, [SoftirqNr::NetRx]);
//! assert_eq!(run.rounds, 1);
//! assert_eq!(irqs.kstat_irqs_cpu(24, 1)?, 1);
//! assert_eq!(softirqs.kstat_softirqs_cpu(SoftirqNr::NetRx, 1)?, 1);
//! # Ok::<(), irq::IrqError>(())
//! ```
#![forbid(unsafe_code)]

mod chip;
mod handle;
mod irqdesc;
mod manage;
mod proc;
mod smp;
mod softirq;

pub use chip::IrqRaise;
pub use handle::{HardIrqContext, IrqHandler, IrqReturn};
pub use irqdesc::{IrqDesc, IrqError, IrqTable};
pub use smp::{CpuWakeup, KickFn, KickMask};
pub use softirq::{
    MAX_SOFTIRQ_RESTART, MAX_SOFTIRQ_TIME, NR_SOFTIRQS, SoftirqContext, SoftirqNr, SoftirqRun,
    Softirqs,
};
