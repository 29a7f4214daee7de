//! The interrupt controller's side: a device raising a line, and masking.
//!
//! Mirrors `kernel/irq/chip.c` (`mask_irq()`, `unmask_irq()`) and what the
//! hardware does before `handle_edge_irq()` runs: an MSI write or a line
//! assertion sets the CPU's pending bit and interrupts that CPU. A raise
//! while the line is masked or disabled is latched in the descriptor
//! (`IRQS_PENDING`, like an MSI-X pending-bit array entry) and replayed when
//! the line can take it again.

use core::sync::atomic::Ordering;

use crate::irqdesc::{IrqError, IrqTable, ST_MASKED, ST_PENDING, ST_REQUESTED, can_handle};
use crate::manage::take_replay;

/// What became of one raise of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqRaise {
    /// The interrupt is pending on `cpu`, which was kicked if the bit was new.
    Delivered {
        /// The CPU the line is routed to.
        cpu: usize,
    },
    /// The line is disabled or masked: the interrupt is latched
    /// (`IRQS_PENDING`) and is delivered when the line is enabled/unmasked.
    /// Several raises while latched collapse into one, as edges do.
    Latched,
    /// The line has no handler: counted in [`IrqTable::irq_err_count`] and
    /// dropped (Linux's `handle_bad_irq()`).
    Spurious,
}

impl IrqTable {
    /// A device raises `irq`: the interrupt becomes pending on the line's
    /// affinity CPU, which is kicked through the [`CpuWakeup`](crate::CpuWakeup)
    /// hook; or it is latched if the line is disabled or masked.
    ///
    /// Mirrors the hardware half of interrupt delivery (the MSI write that
    /// sets a bit in the target CPU's IRR) up to the point where
    /// `common_interrupt()` would run on that CPU. Lock-free and callable
    /// from any thread (a device backend's thread in the thread runtime);
    /// the handler runs later, in [`IrqTable::handle_pending`] on the target
    /// CPU's thread.
    ///
    /// Counters: `irq_err_count` (the `ERR:` row) for a line without handler.
    pub fn raise_irq(&self, irq: u32) -> Result<IrqRaise, IrqError> {
        let desc = self.irq_to_desc(irq)?;
        let mut s = desc.state.load(Ordering::Acquire);
        loop {
            if s & ST_REQUESTED == 0 {
                self.irq_err_count.fetch_add(1, Ordering::Relaxed);
                return Ok(IrqRaise::Spurious);
            }
            if can_handle(s) {
                let cpu = self.deliver_to_cpu(desc);
                return Ok(IrqRaise::Delivered { cpu });
            }
            if s & ST_PENDING != 0 {
                return Ok(IrqRaise::Latched);
            }
            // Latch with a CAS: if an enable or unmask races with us, the
            // CAS fails and we look at the new state again, so the interrupt
            // is either latched before the enable takes it, or delivered.
            match desc.state.compare_exchange_weak(
                s,
                s | ST_PENDING,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(IrqRaise::Latched),
                Err(now) => s = now,
            }
        }
    }

    /// Masks `irq` at the chip: raises are latched until [`IrqTable::unmask_irq`].
    ///
    /// Mirrors `mask_irq()` in `kernel/irq/chip.c` (`irq_chip.irq_mask`,
    /// `IRQD_IRQ_MASKED`). Masking is not counted: a second mask is a no-op.
    /// This is what a NAPI driver does to its queue's vector between
    /// `napi_schedule()` and `napi_complete_done()`.
    ///
    /// Errors: [`IrqError::IrqOutOfRange`], [`IrqError::NotRequested`].
    pub fn mask_irq(&self, irq: u32) -> Result<(), IrqError> {
        let desc = self.irq_to_desc(irq)?;
        desc.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & ST_REQUESTED != 0).then_some(s | ST_MASKED)
            })
            .map(|_| ())
            .map_err(|_| IrqError::NotRequested { irq })
    }

    /// Unmasks `irq` at the chip, replaying an interrupt latched while it was
    /// masked (if the line is not also disabled).
    ///
    /// Mirrors `unmask_irq()` in `kernel/irq/chip.c`; the replay is what the
    /// hardware does when an MSI-X vector with its pending bit set is
    /// unmasked.
    ///
    /// Errors: [`IrqError::IrqOutOfRange`], [`IrqError::NotRequested`].
    pub fn unmask_irq(&self, irq: u32) -> Result<(), IrqError> {
        let desc = self.irq_to_desc(irq)?;
        let old = desc
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & ST_REQUESTED != 0).then(|| take_replay(s & !ST_MASKED))
            })
            .map_err(|_| IrqError::NotRequested { irq })?;
        self.replay_if_latched(desc, old & !ST_MASKED);
        Ok(())
    }
}
