//! The driver's interface to its lines: request, free, disable, enable,
//! affinity.
//!
//! Mirrors `kernel/irq/manage.c`. Every call here is callable from any
//! thread; those that wait for a running handler (`free_irq`,
//! `disable_irq`, `synchronize_irq`) must not be called from that line's own
//! handler, exactly as in Linux, where doing so deadlocks.

use core::sync::atomic::Ordering;
use std::sync::Arc;

use crate::handle::IrqHandler;
use crate::irqdesc::{
    DEPTH_ONE, IrqDesc, IrqError, IrqTable, ST_MASKED, ST_PENDING, ST_REQUESTED, ST_SHUTDOWN, depth,
};

/// The deepest a line can be disabled (the depth field's width).
const MAX_DEPTH: u32 = u32::MAX >> crate::irqdesc::DEPTH_SHIFT;

impl IrqTable {
    /// Installs `handler` on `irq` under `name` and enables the line.
    ///
    /// Mirrors `request_irq()` / `request_threaded_irq()` in
    /// `kernel/irq/manage.c`: the line starts unmasked with depth 0
    /// (`irq_startup()`), routed to the CPU set by [`IrqTable::irq_set_affinity`]
    /// (CPU 0 by default). An interrupt latched before the request is
    /// forgotten: it belonged to no one.
    ///
    /// Errors: [`IrqError::IrqOutOfRange`] for a line the table lacks,
    /// [`IrqError::Busy`] (`EBUSY`) when the line already has a handler.
    ///
    /// # Deviations from Linux
    ///
    /// No flags (`IRQF_SHARED`, `IRQF_ONESHOT`) and no `dev_id`: the handler
    /// object carries its own device state.
    pub fn request_irq(
        &self,
        irq: u32,
        handler: impl IrqHandler + 'static,
        name: impl Into<Arc<str>>,
    ) -> Result<(), IrqError> {
        let desc = self.irq_to_desc(irq)?;
        let mut action = desc.action.lock();
        if action.is_some() {
            return Err(IrqError::Busy { irq });
        }
        *action = Some(Box::new(handler));
        *desc.name.lock() = Some(name.into());
        // Release: the action above is published before a raiser can see
        // the line as requested.
        desc.state.store(ST_REQUESTED, Ordering::Release);
        Ok(())
    }

    /// Removes the handler of `irq`, waiting for it to finish if it is
    /// running, and returns it.
    ///
    /// Mirrors `free_irq()` in `kernel/irq/manage.c`: the line is shut down
    /// (masked, depth 1), a latched interrupt is dropped, and the per-CPU
    /// counts stay, as `/proc/interrupts` keeps them.
    ///
    /// Errors: [`IrqError::IrqOutOfRange`]; [`IrqError::NotRequested`] where
    /// Linux warns "Trying to free already-free IRQ".
    pub fn free_irq(&self, irq: u32) -> Result<Box<dyn IrqHandler>, IrqError> {
        let desc = self.irq_to_desc(irq)?;
        let mut action = desc.action.lock();
        let handler = action.take().ok_or(IrqError::NotRequested { irq })?;
        desc.state.store(ST_SHUTDOWN, Ordering::Release);
        *desc.name.lock() = None;
        Ok(handler)
    }

    /// Disables `irq` one level deeper without waiting for a running handler.
    ///
    /// Mirrors `disable_irq_nosync()` in `kernel/irq/manage.c`: nesting is
    /// counted in the depth; an interrupt raised while the depth is above
    /// zero is latched (`IRQS_PENDING`) and replayed by the final
    /// [`IrqTable::enable_irq`]. Safe to call from the line's own handler.
    pub fn disable_irq_nosync(&self, irq: u32) -> Result<(), IrqError> {
        let desc = self.irq_to_desc(irq)?;
        let r = desc
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & ST_REQUESTED != 0 && depth(s) < MAX_DEPTH).then_some(s + DEPTH_ONE)
            });
        match r {
            Ok(_) => Ok(()),
            Err(s) if s & ST_REQUESTED == 0 => Err(IrqError::NotRequested { irq }),
            Err(_) => Err(IrqError::BadArgument {
                name: "irq",
                accepts: "a line disabled fewer than 16777215 times",
            }),
        }
    }

    /// Disables `irq` one level deeper and waits until its handler is not
    /// running.
    ///
    /// Mirrors `disable_irq()` in `kernel/irq/manage.c` (`disable_irq_nosync()`
    /// then `synchronize_irq()`). Must not be called from the line's own
    /// handler: that deadlocks, as in Linux.
    pub fn disable_irq(&self, irq: u32) -> Result<(), IrqError> {
        self.disable_irq_nosync(irq)?;
        self.synchronize_irq(irq)
    }

    /// Waits until the handler of `irq` is not running on any CPU.
    ///
    /// Mirrors `synchronize_irq()` in `kernel/irq/manage.c`.
    pub fn synchronize_irq(&self, irq: u32) -> Result<(), IrqError> {
        let desc = self.irq_to_desc(irq)?;
        drop(desc.action.lock());
        Ok(())
    }

    /// Undoes one [`IrqTable::disable_irq`]; the last one re-enables the line
    /// and replays an interrupt latched while it was disabled.
    ///
    /// Mirrors `enable_irq()` in `kernel/irq/manage.c` and the replay of
    /// `check_irq_resend()` in `kernel/irq/resend.c`: a latched interrupt is
    /// made pending on the line's affinity CPU (and that CPU is kicked)
    /// exactly once. A line still masked keeps its latched interrupt for
    /// [`IrqTable::unmask_irq`].
    ///
    /// Errors: [`IrqError::NotRequested`]; [`IrqError::UnbalancedEnable`]
    /// where Linux warns "Unbalanced enable for IRQ".
    pub fn enable_irq(&self, irq: u32) -> Result<(), IrqError> {
        let desc = self.irq_to_desc(irq)?;
        let r = desc
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                if s & ST_REQUESTED == 0 || depth(s) == 0 {
                    return None;
                }
                Some(take_replay(s - DEPTH_ONE))
            });
        match r {
            Ok(old) => {
                self.replay_if_latched(desc, old - DEPTH_ONE);
                Ok(())
            }
            Err(s) if s & ST_REQUESTED == 0 => Err(IrqError::NotRequested { irq }),
            Err(_) => Err(IrqError::UnbalancedEnable { irq }),
        }
    }

    /// Routes `irq` to `cpu`: later interrupts become pending there.
    ///
    /// Mirrors `irq_set_affinity()` in `kernel/irq/manage.c` with a
    /// one-CPU mask. An interrupt already pending on the old CPU is handled
    /// there, as a vector already in flight is in Linux (the move takes
    /// effect with the next interrupt, `irq_move_irq()`). Works on free lines
    /// too, so a driver may route a line before requesting it.
    ///
    /// Errors: [`IrqError::IrqOutOfRange`], [`IrqError::CpuOutOfRange`].
    pub fn irq_set_affinity(&self, irq: u32, cpu: usize) -> Result<(), IrqError> {
        let desc = self.irq_to_desc(irq)?;
        let cpu = self.check_cpu(cpu)?;
        desc.affinity.store(cpu, Ordering::Relaxed);
        Ok(())
    }

    /// The CPU `irq` is routed to.
    ///
    /// Mirrors reading `/proc/irq/N/effective_affinity_list`.
    pub fn irq_get_affinity(&self, irq: u32) -> Result<usize, IrqError> {
        Ok(self.irq_to_desc(irq)?.affinity())
    }

    /// Replays a latched interrupt after an enable or unmask.
    ///
    /// `before_take` is the state the transition produced before
    /// [`take_replay`] ran on it: if it was latched and `take_replay` cleared
    /// the latch (the line can take interrupts now), this caller won the
    /// right to replay it, and makes it pending on the line's CPU
    /// (`check_irq_resend()` in `kernel/irq/resend.c`).
    pub(crate) fn replay_if_latched(&self, desc: &IrqDesc, before_take: u32) {
        if before_take & ST_PENDING != 0 && take_replay(before_take) & ST_PENDING == 0 {
            self.deliver_to_cpu(desc);
        }
    }
}

/// Clears `IRQS_PENDING` from `s` when the line in `s` can take interrupts
/// again (depth 0, unmasked): the caller then replays the interrupt.
pub(crate) fn take_replay(s: u32) -> u32 {
    if depth(s) == 0 && s & ST_MASKED == 0 {
        s & !ST_PENDING
    } else {
        s
    }
}
