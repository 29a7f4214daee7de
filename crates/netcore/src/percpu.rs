//! A per-CPU signed counter written only by its CPU's thread: the shape of
//! Linux's `this_cpu_add_return()`/`this_cpu_xchg()` on a per-CPU `int`
//! (such as `proto->per_cpu_fw_alloc`).
//!
//! ```text
//!   PerCpuI64: [cpu 0 | owner t7] [cpu 1 | owner t9] ...   (one cache line each)
//!   this_cpu(cpu) on the owner thread -> PerCpuI64Cpu: load + store, no lock
//!   this_cpu(cpu) on any other thread -> None: the caller takes its locked
//!                                        path (e.g. the global counter)
//! ```

use core::marker::PhantomData;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::snmp::{claim_owner, mib_thread};

/// One CPU's value and the thread that writes it.
#[repr(align(128))]
#[derive(Debug, Default)]
struct PcpuSlot {
    value: AtomicI64,
    /// The thread id (as `NetMibs` names threads) of the one writer; 0
    /// until a thread claims it, then never changed.
    owner: AtomicU64,
}

/// A signed per-CPU counter, one cache line per CPU.
///
/// Mirrors a `DEFINE_PER_CPU(int, ...)` variable used with
/// `this_cpu_add_return()` and `this_cpu_xchg()`.
///
/// # Deviations from Linux
///
/// Linux's `this_cpu_*()` ops rely on running on the CPU. Here a CPU's
/// context may be used from more than one thread (see `NetMibs`), so each
/// CPU's value has one writer thread instead: the first thread that asks
/// for [`PerCpuI64::this_cpu`] of that CPU. Every other thread gets
/// `None` and must take its own (locked) path; a CPU number past the
/// counter's size gets `None` too.
#[derive(Debug)]
pub struct PerCpuI64 {
    cpus: Box<[PcpuSlot]>,
}

impl PerCpuI64 {
    /// Zero on each of `ncpus` CPUs.
    pub fn new(ncpus: usize) -> PerCpuI64 {
        PerCpuI64 {
            cpus: (0..ncpus).map(|_| PcpuSlot::default()).collect(),
        }
    }

    /// `cpu`'s value, if the calling thread is (or now becomes) its one
    /// writer. Mirrors `this_cpu_ptr()`.
    #[doc(alias = "this_cpu_ptr")]
    #[inline]
    pub fn this_cpu(&self, cpu: usize) -> Option<PerCpuI64Cpu<'_>> {
        let slot = self.cpus.get(cpu)?;
        let me = mib_thread()?;
        claim_owner(&slot.owner, me).then_some(PerCpuI64Cpu {
            slot,
            _thread: PhantomData,
        })
    }

    /// The sum over the CPUs (a racy snapshot, as `percpu_counter_sum()`).
    pub fn sum(&self) -> i64 {
        self.cpus
            .iter()
            .map(|s| s.value.load(Ordering::Relaxed))
            .sum()
    }
}

/// One CPU's value of a [`PerCpuI64`], on the thread that writes it.
///
/// Neither `Send` nor `Sync`: it stays on the thread that owns the value,
/// so a plain load and store loses nothing.
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let c = netcore::PerCpuI64::new(1);
/// send(c.this_cpu(0).unwrap()); // a handle cannot move to another thread
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PerCpuI64Cpu<'a> {
    slot: &'a PcpuSlot,
    _thread: PhantomData<*const ()>,
}

impl PerCpuI64Cpu<'_> {
    /// Adds `v`; returns the new value. Mirrors `this_cpu_add_return()`
    /// (a plain load and store: this thread is the one writer).
    #[inline]
    pub fn add_return(self, v: i64) -> i64 {
        let n = self.slot.value.load(Ordering::Relaxed).wrapping_add(v);
        self.slot.value.store(n, Ordering::Relaxed);
        n
    }

    /// Sets `v`; returns the old value. Mirrors `this_cpu_xchg()`.
    #[inline]
    pub fn xchg(self, v: i64) -> i64 {
        let old = self.slot.value.load(Ordering::Relaxed);
        self.slot.value.store(v, Ordering::Relaxed);
        old
    }
}

/// The one thread that may write some per-CPU state with plain loads and
/// stores: the CPU's runner, the only thread that takes the state (drains
/// pending bits, runs the work they name).
///
/// Mirrors the guarantee Linux's per-CPU data gets from running on its
/// CPU with interrupts off (`__this_cpu_or()`, `set_softirq_pending()`):
/// no other writer, so no locked instruction. Here a CPU may be driven
/// from more than one thread over its life (see `NetMibs`), so the first
/// thread that [`claim`](PcpuOwner::claim)s it (the consumer, as it takes
/// the state) is its owner for good; producers ask
/// [`is_mine`](PcpuOwner::is_mine), which never claims, and any other
/// thread takes the atomic path.
#[derive(Debug, Default)]
pub struct PcpuOwner {
    /// The owner's thread id (as `NetMibs` names threads); 0 until claimed.
    owner: AtomicU64,
}

impl PcpuOwner {
    /// Nobody owns it yet.
    pub const fn new() -> PcpuOwner {
        PcpuOwner {
            owner: AtomicU64::new(0),
        }
    }

    /// Whether the calling thread owns the state, claiming it when nobody
    /// does yet: for the state's consumer.
    #[inline]
    pub fn claim(&self) -> bool {
        mib_thread().is_some_and(|me| claim_owner(&self.owner, me))
    }

    /// Whether the calling thread owns the state (never claims it): for a
    /// producer, which writes the owner's plain word only from the owner's
    /// own thread.
    #[inline]
    pub fn is_mine(&self) -> bool {
        let owner = self.owner.load(Ordering::Relaxed);
        owner != 0 && mib_thread() == Some(owner)
    }
}

/// A word of per-CPU bits set from any thread and taken by one: a CPU's
/// pending softirqs, the CPUs a polling runtime must look at.
///
/// Two words: one only the owner (a [`PcpuOwner`], claimed by the first
/// thread that takes or clears bits: the consumer) writes, with plain
/// loads and stores, as Linux's `__this_cpu_or()` on its own CPU needs
/// no locked instruction; one every other thread sets with a locked
/// `or`. Readers see the union. A take by a thread that is not the owner
/// takes the owner's word with a locked swap too.
#[derive(Debug, Default)]
pub struct PcpuBits {
    shared: AtomicU64,
    local: AtomicU64,
    owner: PcpuOwner,
}

impl PcpuBits {
    /// A word with `bits` set.
    pub const fn new(bits: u64) -> PcpuBits {
        PcpuBits {
            shared: AtomicU64::new(bits),
            local: AtomicU64::new(0),
            owner: PcpuOwner::new(),
        }
    }

    /// Sets `bits`; returns the word written as it was before (the
    /// owner's own on its thread, the shared one elsewhere), so a caller
    /// that kicks the consumer when it finds nothing set kicks at least
    /// whenever the consumer may have taken everything. Release on the
    /// shared word: what the setter wrote before is seen by the take.
    #[inline]
    pub fn or(&self, bits: u64) -> u64 {
        if self.owner.is_mine() {
            let v = self.local.load(Ordering::Relaxed);
            if v & bits != bits {
                self.local.store(v | bits, Ordering::Relaxed);
            }
            v
        } else {
            self.shared.fetch_or(bits, Ordering::AcqRel)
        }
    }

    /// The bits set in either word.
    #[inline]
    pub fn load(&self) -> u64 {
        self.shared.load(Ordering::Acquire) | self.local.load(Ordering::Relaxed)
    }

    /// Takes every set bit, leaving none (`set_softirq_pending(0)` after
    /// reading them). The caller becomes the owner if nobody is.
    #[inline]
    pub fn take(&self) -> u64 {
        let mut bits = self.local.load(Ordering::Relaxed);
        if bits != 0 {
            if self.owner.claim() {
                self.local.store(0, Ordering::Relaxed);
            } else {
                bits = self.local.swap(0, Ordering::AcqRel);
            }
        } else {
            self.owner.claim();
        }
        if self.shared.load(Ordering::Relaxed) != 0 {
            bits |= self.shared.swap(0, Ordering::AcqRel);
        }
        bits
    }

    /// Clears `bits` in both words, writing a word only when it holds one
    /// of them. The caller becomes the owner if nobody is.
    #[inline]
    pub fn clear(&self, bits: u64) {
        let v = self.local.load(Ordering::Relaxed);
        if v & bits != 0 {
            if self.owner.claim() {
                self.local.store(v & !bits, Ordering::Relaxed);
            } else {
                self.local.fetch_and(!bits, Ordering::AcqRel);
            }
        } else {
            self.owner.claim();
        }
        if self.shared.load(Ordering::Relaxed) & bits != 0 {
            self.shared.fetch_and(!bits, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_thread_owns_a_cpu_and_others_get_none() {
        let c = PerCpuI64::new(2);
        let mine = c.this_cpu(1).unwrap();
        assert_eq!(mine.add_return(5), 5);
        assert_eq!(mine.add_return(-2), 3);
        assert!(c.this_cpu(7).is_none());
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(c.this_cpu(1).is_none());
                assert!(c.this_cpu(0).is_some());
            });
        });
        assert!(c.this_cpu(0).is_none());
        assert_eq!(c.sum(), 3);
        assert_eq!(c.this_cpu(1).unwrap().xchg(0), 3);
        assert_eq!(c.sum(), 0);
    }

    #[test]
    fn a_pcpu_owner_is_the_first_claimer_and_producers_never_claim() {
        let o = std::sync::Arc::new(PcpuOwner::new());
        // A producer asking first does not become the owner.
        assert!(!o.is_mine());
        let o2 = std::sync::Arc::clone(&o);
        let other = std::thread::spawn(move || (o2.claim(), o2.is_mine()))
            .join()
            .unwrap();
        assert_eq!(other, (true, true));
        // The other thread claimed it: this one is not its owner.
        assert!(!o.claim());
        assert!(!o.is_mine());
    }

    /// The consumer's own sets go to its plain word, other threads' to
    /// the shared one; reads see both, takes and clears empty both,
    /// whichever thread makes them.
    #[test]
    fn pcpu_bits_set_by_the_owner_plainly_and_by_others_atomically() {
        let b = std::sync::Arc::new(PcpuBits::new(0b1));
        assert_eq!(b.load(), 0b1);
        // The first take claims the word for this thread.
        assert_eq!(b.take(), 0b1);
        assert_eq!(b.or(0b10), 0);
        assert_eq!(b.or(0b10), 0b10);
        assert_eq!(b.local.load(Ordering::Relaxed), 0b10);
        let b2 = std::sync::Arc::clone(&b);
        let prev = std::thread::spawn(move || b2.or(0b100)).join().unwrap();
        assert_eq!(prev, 0, "the shared word was empty");
        assert_eq!(b.shared.load(Ordering::Relaxed), 0b100);
        assert_eq!(b.load(), 0b110);
        b.clear(0b100);
        assert_eq!(b.load(), 0b10);
        assert_eq!(b.take(), 0b10);
        assert_eq!(b.load(), 0);
        // Another thread takes and clears the owner's bits with locked
        // instructions, losing none.
        b.or(0b1000);
        b.or(0b10000);
        let b3 = std::sync::Arc::clone(&b);
        let (took, left) = std::thread::spawn(move || {
            b3.clear(0b10000);
            (b3.take(), b3.load())
        })
        .join()
        .unwrap();
        assert_eq!((took, left), (0b1000, 0));
    }
}
