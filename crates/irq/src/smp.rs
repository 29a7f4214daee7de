//! The per-CPU wake-up seam: how raise paths reach a CPU that may be parked.
//!
//! Mirrors the role of `smp_send_reschedule()` (the reschedule IPI in
//! `kernel/sched/core.c`) and of `wake_up_process()` on a CPU's ksoftirqd in
//! `kernel/softirq.c`. In the kernel, making work pending on another CPU is
//! followed by an IPI so that CPU leaves its idle loop; here the runtime that
//! owns the CPUs registers one callback, "kick CPU n", and every raise path
//! calls it when it makes work pending on a CPU.
//!
//! - The simulation registers a closure that schedules "CPU n runs" in its
//!   event queue.
//! - The thread runtime registers a closure that unparks CPU n's OS thread.
//!
//! The callback must be cheap and must not call back into this crate's
//! raise paths (it runs on the raising thread, possibly inside a handler).

use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

/// The callback type the runtime registers: it receives the CPU to wake.
pub type KickFn = dyn Fn(usize) + Send + Sync;

/// A shared, replaceable "kick CPU n" hook.
///
/// Mirrors the reschedule IPI (`smp_send_reschedule()`) and the wake-up of a
/// CPU's ksoftirqd (`wakeup_softirqd()` in `kernel/softirq.c`).
///
/// Clones share the hook: create one, hand clones to [`IrqTable`](crate::IrqTable)
/// and [`Softirqs`](crate::Softirqs), and register the runtime's callback
/// with [`CpuWakeup::set`] at any time (before or after). Until a callback is
/// registered, kicks go nowhere, which suits a caller that
/// polls every CPU anyway.
#[derive(Clone, Default)]
pub struct CpuWakeup {
    inner: Arc<WakeupInner>,
}

#[derive(Default)]
struct WakeupInner {
    hook: RwLock<Option<Arc<KickFn>>>,
}

impl CpuWakeup {
    /// A hook with no callback registered yet.
    pub fn new() -> CpuWakeup {
        CpuWakeup::default()
    }

    /// Registers (or replaces) the runtime's "kick CPU n" callback.
    pub fn set(&self, kick: impl Fn(usize) + Send + Sync + 'static) {
        *self.inner.hook.write() = Some(Arc::new(kick));
    }

    /// Removes the callback; later kicks go nowhere.
    pub fn clear(&self) {
        *self.inner.hook.write() = None;
    }

    /// Wakes `cpu`: calls the registered callback, if any.
    ///
    /// Mirrors `smp_send_reschedule(cpu)` / `wake_up_process(ksoftirqd)`.
    /// Callable from any thread.
    pub fn kick(&self, cpu: usize) {
        // Clone the Arc out so the callback runs without the lock held: a
        // callback that registers a new hook must not deadlock.
        let hook = self.inner.hook.read().clone();
        if let Some(hook) = hook {
            hook(cpu);
        }
    }
}

impl fmt::Debug for CpuWakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuWakeup")
            .field("registered", &self.inner.hook.read().is_some())
            .finish()
    }
}
