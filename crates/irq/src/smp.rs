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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use netcore::PcpuBits;
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
    /// The mask [`CpuWakeup::set_mask`] registered (one per hook: a
    /// later different mask is registered as a callback).
    mask: OnceLock<Arc<KickMask>>,
    /// Whether kicks go to `mask` instead of the callback: set by
    /// `set_mask`, cleared by `set` and `clear` (under `hook`'s write
    /// lock, so that registrations are ordered).
    mask_on: AtomicBool,
}

impl CpuWakeup {
    /// A hook with no callback registered yet.
    pub fn new() -> CpuWakeup {
        CpuWakeup::default()
    }

    /// Registers (or replaces) the runtime's "kick CPU n" callback.
    pub fn set(&self, kick: impl Fn(usize) + Send + Sync + 'static) {
        let mut hook = self.inner.hook.write();
        self.inner.mask_on.store(false, Ordering::Release);
        *hook = Some(Arc::new(kick));
    }

    /// Registers (or replaces) a callback that sets bit `n` of `mask`
    /// for a kick of CPU `n` (CPUs from 64 on are not marked): the same
    /// as [`CpuWakeup::set`] with that closure, but a kick takes no lock
    /// and makes no indirect call (a runtime that polls marked CPUs, the
    /// simulation, kicks on every interrupt it delivers).
    pub fn set_mask(&self, mask: Arc<KickMask>) {
        let mut hook = self.inner.hook.write();
        let current = self.inner.mask.get_or_init(|| Arc::clone(&mask));
        if Arc::ptr_eq(current, &mask) {
            *hook = None;
            self.inner.mask_on.store(true, Ordering::Release);
        } else {
            self.inner.mask_on.store(false, Ordering::Release);
            *hook = Some(Arc::new(move |cpu| mark(&mask, cpu)));
        }
    }

    /// Removes the callback; later kicks go nowhere.
    pub fn clear(&self) {
        let mut hook = self.inner.hook.write();
        self.inner.mask_on.store(false, Ordering::Release);
        *hook = None;
    }

    /// Wakes `cpu`: calls the registered callback, if any.
    ///
    /// Mirrors `smp_send_reschedule(cpu)` / `wake_up_process(ksoftirqd)`.
    /// Callable from any thread.
    pub fn kick(&self, cpu: usize) {
        if self.inner.mask_on.load(Ordering::Acquire)
            && let Some(mask) = self.inner.mask.get()
        {
            mark(mask, cpu);
            return;
        }
        // Clone the Arc out so the callback runs without the lock held: a
        // callback that registers a new hook must not deadlock.
        let hook = self.inner.hook.read().clone();
        if let Some(hook) = hook {
            hook(cpu);
        }
    }
}

/// Sets `cpu`'s bit of a kick mask ([`CpuWakeup::set_mask`]).
#[inline]
fn mark(mask: &KickMask, cpu: usize) {
    if cpu < 64 {
        mask.or(1 << cpu);
    }
}

/// The CPUs a polling runtime (the simulation) must look at again, bit
/// `n` for CPU `n`: set by kicks ([`CpuWakeup::set_mask`]), cleared by
/// the runtime's loop as it looks.
///
/// A [`PcpuBits`]: the loop's own thread (the first to clear a bit) sets
/// bits with a plain load and store, as the simulation delivers every
/// interrupt and runs every CPU from that thread, the way Linux's
/// `resched_curr()` on the current CPU only sets a flag and sends no IPI;
/// other threads set them with a locked `or`.
pub type KickMask = PcpuBits;

impl fmt::Debug for CpuWakeup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registered =
            self.inner.hook.read().is_some() || self.inner.mask_on.load(Ordering::Acquire);
        f.debug_struct("CpuWakeup")
            .field("registered", &registered)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use super::*;

    /// A mask takes the kicks until a callback or `clear` replaces it;
    /// registered again it takes them again, and a second mask is
    /// served (as a callback) too.
    #[test]
    fn a_mask_takes_kicks_until_replaced() {
        let w = CpuWakeup::new();
        let m = Arc::new(KickMask::new(0));
        w.set_mask(Arc::clone(&m));
        w.kick(3);
        w.kick(64);
        assert_eq!(m.load(), 1 << 3);
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        w.set(move |cpu| {
            c.fetch_add(cpu as u64, Ordering::Relaxed);
        });
        w.kick(5);
        assert_eq!((m.load(), calls.load(Ordering::Relaxed)), (1 << 3, 5));
        w.clear();
        w.kick(1);
        assert_eq!(m.load(), 1 << 3);
        w.set_mask(Arc::clone(&m));
        w.kick(1);
        assert_eq!(m.load(), (1 << 3) | (1 << 1));
        let other = Arc::new(KickMask::new(0));
        w.set_mask(Arc::clone(&other));
        w.kick(2);
        assert_eq!((m.load(), other.load()), (0b1010, 1 << 2));
        assert!(format!("{w:?}").contains("true"));
    }
}
