//! IRQ descriptors and the per-host table of them.
//!
//! Mirrors `kernel/irq/irqdesc.c` (`struct irq_desc`, `irq_to_desc()`,
//! `kstat_irqs_cpu()`) and the per-CPU pending state a real interrupt
//! controller keeps in hardware.
//!
//! ```text
//!  device thread                 IrqTable                        CPU n's runner
//!  ─────────────                 ────────                        ──────────────
//!  raise_irq(24) ──► desc[24].state: disabled or masked?
//!                      yes ─► set IRQS_PENDING (replayed on enable/unmask)
//!                      no  ─► pending[affinity].set(24) ─► kick(affinity)
//!                                                    handle_pending(n) ◄──┘
//!                                                    └► handle_edge_irq(desc[24])
//!                                                       └► handler.handle(24, ctx)
//! ```
//!
//! Everything a device thread touches (`state`, the per-CPU pending bitmaps,
//! the counters) is atomic; the handler itself sits behind the descriptor's
//! action lock and runs only on the thread that calls `handle_pending` for
//! the CPU the line is routed to.

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use netcore::{PcpuOwner, SpinLock};
use parking_lot::Mutex;

use crate::handle::IrqHandler;
use crate::smp::CpuWakeup;

/// Linux's `EINVAL`.
const EINVAL: i32 = 22;
/// Linux's `EBUSY`.
const EBUSY: i32 = 16;
/// Linux's `ENOENT`.
const ENOENT: i32 = 2;

/// What an IRQ call can fail with.
///
/// Mirrors the errno values `request_irq()`, `free_irq()`, `enable_irq()` and
/// `irq_set_affinity()` in `kernel/irq/manage.c` return or warn about; see
/// [`IrqError::errno`] for the mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// `irq` is not a line of this table (`EINVAL`, "no descriptor").
    IrqOutOfRange {
        /// The line asked for.
        irq: u32,
        /// How many lines the table has (valid lines are `0..nr_irqs`).
        nr_irqs: u32,
    },
    /// `cpu` is not a CPU of this host (`EINVAL`).
    CpuOutOfRange {
        /// The CPU asked for.
        cpu: usize,
        /// How many CPUs the host has (valid CPUs are `0..nr_cpus`).
        nr_cpus: usize,
    },
    /// The line already has a handler (`EBUSY`; lines are never shared here).
    Busy {
        /// The line asked for.
        irq: u32,
    },
    /// The line has no handler (Linux warns "Trying to free already-free
    /// IRQ"; we return `ENOENT`).
    NotRequested {
        /// The line asked for.
        irq: u32,
    },
    /// `enable_irq()` without a matching `disable_irq()` (Linux warns
    /// "Unbalanced enable for IRQ"; we return `EINVAL`).
    UnbalancedEnable {
        /// The line asked for.
        irq: u32,
    },
    /// A constructor argument is outside what it accepts (`EINVAL`).
    BadArgument {
        /// The argument's name.
        name: &'static str,
        /// What it accepts.
        accepts: &'static str,
    },
}

impl IrqError {
    /// The Linux errno this error corresponds to (positive, as in `errno`).
    pub fn errno(self) -> i32 {
        match self {
            IrqError::Busy { .. } => EBUSY,
            IrqError::NotRequested { .. } => ENOENT,
            IrqError::IrqOutOfRange { .. }
            | IrqError::CpuOutOfRange { .. }
            | IrqError::UnbalancedEnable { .. }
            | IrqError::BadArgument { .. } => EINVAL,
        }
    }
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IrqError::IrqOutOfRange { irq, nr_irqs } => {
                write!(
                    f,
                    "irq {irq} out of range: this table has lines 0..{nr_irqs}"
                )
            }
            IrqError::CpuOutOfRange { cpu, nr_cpus } => {
                write!(f, "cpu {cpu} out of range: this host has CPUs 0..{nr_cpus}")
            }
            IrqError::Busy { irq } => write!(f, "irq {irq} busy: it already has a handler"),
            IrqError::NotRequested { irq } => write!(f, "irq {irq} has no handler"),
            IrqError::UnbalancedEnable { irq } => write!(f, "unbalanced enable for irq {irq}"),
            IrqError::BadArgument { name, accepts } => {
                write!(f, "bad argument `{name}`: accepts {accepts}")
            }
        }
    }
}

impl core::error::Error for IrqError {}

// The descriptor's state word. Linux keeps these in `desc->istate`,
// `irq_data.state_use_accessors` and `desc->depth` under `desc->lock`; we pack
// them into one atomic so a device thread can raise a line without a lock and
// every transition is a single compare-and-swap.

/// The line has an action (a handler was requested).
pub(crate) const ST_REQUESTED: u32 = 1 << 0;
/// The line is masked at the chip (`IRQD_IRQ_MASKED`).
pub(crate) const ST_MASKED: u32 = 1 << 1;
/// An interrupt arrived while the line could not be handled and waits to be
/// replayed (`IRQS_PENDING`).
pub(crate) const ST_PENDING: u32 = 1 << 2;
/// The disable depth lives in the bits from here up (`desc->depth`).
pub(crate) const DEPTH_SHIFT: u32 = 8;
/// One level of disable depth.
pub(crate) const DEPTH_ONE: u32 = 1 << DEPTH_SHIFT;

/// The state of a line with no handler: disabled once and masked, as
/// `irq_shutdown()` leaves it.
pub(crate) const ST_SHUTDOWN: u32 = DEPTH_ONE | ST_MASKED;

/// The disable depth in a state word.
pub(crate) const fn depth(state: u32) -> u32 {
    state >> DEPTH_SHIFT
}

/// Whether a line in `state` may run its handler now (`irq_can_handle()`).
pub(crate) const fn can_handle(state: u32) -> bool {
    state & ST_REQUESTED != 0 && state & ST_MASKED == 0 && depth(state) == 0
}

/// One interrupt line.
///
/// Mirrors `struct irq_desc` in `include/linux/irqdesc.h`: the line's state
/// (depth, masked, pending), its affinity, its per-CPU counts (`kstat_irqs`)
/// and its action. Reached through [`IrqTable::irq_to_desc`].
pub struct IrqDesc {
    irq: u32,
    pub(crate) state: AtomicU32,
    pub(crate) affinity: AtomicUsize,
    /// Per-CPU count of interrupts handled (`desc->kstat_irqs`).
    pub(crate) kstat_irqs: Box<[AtomicU64]>,
    /// Interrupts whose handler returned `IrqReturn::None` (`desc->irqs_unhandled`).
    pub(crate) irqs_unhandled: AtomicU64,
    /// The action, locked while the handler runs (`desc->lock` plus
    /// `IRQD_IRQ_INPROGRESS`: holding it is what `synchronize_irq()` waits for).
    /// Mirrors `struct irqaction`'s `handler`/`thread_fn` pair.
    pub(crate) action: SpinLock<Option<Box<dyn IrqHandler>>>,
    /// The action's name (`irqaction.name`), readable while the handler runs
    /// on another CPU.
    pub(crate) name: Mutex<Option<Arc<str>>>,
}

impl IrqDesc {
    fn new(irq: u32, nr_cpus: usize) -> IrqDesc {
        IrqDesc {
            irq,
            state: AtomicU32::new(ST_SHUTDOWN),
            affinity: AtomicUsize::new(0),
            kstat_irqs: (0..nr_cpus).map(|_| AtomicU64::new(0)).collect(),
            irqs_unhandled: AtomicU64::new(0),
            action: SpinLock::new(None),
            name: Mutex::new(None),
        }
    }

    /// The line number (`irq_desc_get_irq()`).
    pub fn irq(&self) -> u32 {
        self.irq
    }

    /// The name the handler was requested under, if the line is requested.
    pub fn action_name(&self) -> Option<Arc<str>> {
        self.name.lock().clone()
    }

    /// The disable depth (`desc->depth`): 0 when enabled, 1 when free.
    pub fn depth(&self) -> u32 {
        depth(self.state.load(Ordering::Acquire))
    }

    /// Whether the line is masked at the chip (`irqd_irq_masked()`).
    pub fn is_masked(&self) -> bool {
        self.state.load(Ordering::Acquire) & ST_MASKED != 0
    }

    /// Whether an interrupt waits to be replayed (`IRQS_PENDING`).
    pub fn is_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) & ST_PENDING != 0
    }

    /// The CPU the line is routed to (the effective affinity).
    pub fn affinity(&self) -> usize {
        self.affinity.load(Ordering::Relaxed)
    }

    /// Interrupts handled on `cpu`, 0 for a CPU the host does not have.
    ///
    /// Mirrors `irq_desc_kstat_cpu()`.
    pub fn kstat_irqs_cpu(&self, cpu: usize) -> u64 {
        self.kstat_irqs
            .get(cpu)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Interrupts handled on all CPUs (`kstat_irqs()`).
    pub fn kstat_irqs(&self) -> u64 {
        self.kstat_irqs
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Interrupts the handler did not claim (`desc->irqs_unhandled`).
    pub fn irqs_unhandled(&self) -> u64 {
        self.irqs_unhandled.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for IrqDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqDesc")
            .field("irq", &self.irq)
            .field("name", &self.action_name())
            .field("depth", &self.depth())
            .field("masked", &self.is_masked())
            .field("pending", &self.is_pending())
            .field("affinity", &self.affinity())
            .field("kstat_irqs", &self.kstat_irqs())
            .finish_non_exhaustive()
    }
}

/// A set of lines, one bit each: a CPU's pending hard IRQs or pending IRQ
/// threads. Set from any thread, drained by the owning CPU.
///
/// A summary word says which runs of words may hold a bit (bit `w / group`
/// for word `w`, `group` words per bit so that 64 bits cover the table),
/// like the two-level pending bitmaps of an interrupt controller: a CPU
/// with nothing pending learns it from one load however many lines the
/// table has, and a drain still visits lines in ascending order.
pub(crate) struct IrqBitmap {
    words: Box<[AtomicU64]>,
    summary: AtomicU64,
    group: usize,
}

impl IrqBitmap {
    fn new(nr_irqs: u32) -> IrqBitmap {
        let n = (nr_irqs as usize).div_ceil(64);
        IrqBitmap {
            words: (0..n).map(|_| AtomicU64::new(0)).collect(),
            summary: AtomicU64::new(0),
            group: n.div_ceil(64).max(1),
        }
    }

    /// Sets `irq`'s bit; returns whether it was clear before.
    ///
    /// Release: the state the raiser wrote before (the device's descriptor
    /// write-back) is visible to the CPU that drains the bit with Acquire.
    /// The setter that makes a word non-empty then sets the word's summary
    /// bit; until it has, a drain may miss the word, and the kick that
    /// follows a `true` return makes the CPU look again.
    pub(crate) fn set(&self, irq: u32) -> bool {
        let w = (irq / 64) as usize;
        let bit = 1u64 << (irq % 64);
        let prev = self.words[w].fetch_or(bit, Ordering::AcqRel);
        if prev == 0 {
            self.summary
                .fetch_or(1 << (w / self.group), Ordering::Release);
        }
        prev & bit == 0
    }

    /// Takes every set bit, lowest line first, calling `f` for each.
    /// With nothing pending it is one load and a return.
    #[inline]
    pub(crate) fn drain(&self, f: impl FnMut(u32)) {
        if self.summary.load(Ordering::Relaxed) != 0 {
            self.drain_pending(f);
        }
    }

    /// [`drain`](Self::drain) once the summary says something may be set.
    #[inline(never)]
    fn drain_pending(&self, f: impl FnMut(u32)) {
        // Acquire: pairs with the Release in `set`, so the words it made
        // non-empty are seen below. A word that becomes non-empty after the
        // swap sets its summary bit again.
        let summary = self.summary.swap(0, Ordering::Acquire);
        self.drain_words(
            summary,
            |word| {
                if word.load(Ordering::Relaxed) == 0 {
                    0
                } else {
                    word.swap(0, Ordering::AcqRel)
                }
            },
            f,
        );
    }

    /// Calls `f` for every bit of the words `summary` names, lowest line
    /// first, each word taken (read and cleared) by `take`.
    #[inline(always)]
    fn drain_words(
        &self,
        mut summary: u64,
        take: impl Fn(&AtomicU64) -> u64,
        mut f: impl FnMut(u32),
    ) {
        while summary != 0 {
            let first = summary.trailing_zeros() as usize * self.group;
            summary &= summary - 1;
            // The run of words of this summary bit, by index (the
            // `enumerate().skip().take()` chain cost a sixth of a drain).
            let end = (first + self.group).min(self.words.len());
            for i in first..end {
                let mut bits = take(&self.words[i]);
                while bits != 0 {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    f(i as u32 * 64 + b);
                }
            }
        }
    }

    /// [`set`](Self::set) for the bitmap's one writer thread (the owner
    /// of an [`IrqCpu::local`] bitmap): plain loads and stores, no locked
    /// instruction. Returns whether the bit was clear before.
    #[inline]
    pub(crate) fn set_plain(&self, irq: u32) -> bool {
        let w = (irq / 64) as usize;
        let bit = 1u64 << (irq % 64);
        let prev = self.words[w].load(Ordering::Relaxed);
        self.words[w].store(prev | bit, Ordering::Relaxed);
        if prev == 0 {
            let s = self.summary.load(Ordering::Relaxed);
            self.summary
                .store(s | (1 << (w / self.group)), Ordering::Relaxed);
        }
        prev & bit == 0
    }

    /// [`drain`](Self::drain) on the bitmap's one writer thread (see
    /// [`set_plain`](Self::set_plain)): plain loads and stores.
    #[inline]
    pub(crate) fn drain_plain(&self, f: impl FnMut(u32)) {
        let summary = self.summary.load(Ordering::Relaxed);
        if summary == 0 {
            return;
        }
        self.summary.store(0, Ordering::Relaxed);
        self.drain_words(
            summary,
            |word| {
                let bits = word.load(Ordering::Relaxed);
                if bits != 0 {
                    word.store(0, Ordering::Relaxed);
                }
                bits
            },
            f,
        );
    }

    /// Whether a line may be pending: one load of the summary word.
    #[inline]
    pub(crate) fn any(&self) -> bool {
        self.summary.load(Ordering::Acquire) != 0
    }
}

/// Per-CPU interrupt state the controller keeps.
pub(crate) struct IrqCpu {
    /// Lines raised for this CPU and not yet handled, by any thread but
    /// [`owner`](Self::owner).
    pub(crate) pending: IrqBitmap,
    /// Lines raised for this CPU by its owner thread, written with plain
    /// loads and stores (the simulation delivers every interrupt from the
    /// thread that runs the CPUs; a device thread uses `pending`).
    ///
    /// Mirrors how the kernel touches its own CPU's interrupt state with
    /// no locked instruction; here the CPU's runner owns the bitmap (see
    /// [`PcpuOwner`]). Drained before `pending`, each lowest line first.
    pub(crate) local: IrqBitmap,
    /// The thread that drains this CPU's lines ([`IrqTable::handle_pending`]'s
    /// caller), once it has drained.
    pub(crate) owner: PcpuOwner,
    /// Lines whose handler returned `WakeThread` on this CPU.
    pub(crate) threads: IrqBitmap,
}

/// The interrupt lines of one host and the controller that routes them.
///
/// Mirrors the descriptor table of `kernel/irq/irqdesc.c` (`irq_to_desc()`,
/// `nr_irqs`) together with one `struct irq_chip` (its `name` is what
/// `/proc/interrupts` prints) and the per-CPU pending registers of an
/// interrupt controller (the local APIC's IRR, an MSI-X pending-bit array).
///
/// Share it as `Arc<IrqTable>`: devices raise lines from any thread; each
/// CPU's runner calls [`IrqTable::handle_pending`] for its own CPU.
///
/// # Deviations from Linux
///
/// - Lines are never shared (`IRQF_SHARED` is not supported): a second
///   `request_irq` on a line fails with `EBUSY`.
/// - Affinity is one CPU, not a mask: real hardware delivers an MSI to one
///   CPU too (the effective affinity), and that is the part that matters to
///   the stack.
/// - The flow is always edge (`handle_edge_irq`), which is what MSI/MSI-X
///   lines of a NIC use.
pub struct IrqTable {
    pub(crate) chip_name: &'static str,
    pub(crate) descs: Box<[IrqDesc]>,
    pub(crate) cpus: Box<[IrqCpu]>,
    pub(crate) wakeup: CpuWakeup,
    /// Raises of lines nobody requested (x86's `irq_err_count`, the `ERR:` row).
    pub(crate) irq_err_count: AtomicU64,
}

impl IrqTable {
    /// A table of `nr_irqs` lines (numbered `0..nr_irqs`) for `nr_cpus` CPUs,
    /// behind a chip called `chip_name`, waking CPUs through `wakeup`.
    ///
    /// Every line starts free: disabled (depth 1), masked, routed to CPU 0.
    /// Accepts `nr_irqs` in `1..=65536` and `nr_cpus` in `1..=4096`.
    pub fn new(
        chip_name: &'static str,
        nr_irqs: u32,
        nr_cpus: usize,
        wakeup: CpuWakeup,
    ) -> Result<IrqTable, IrqError> {
        if nr_irqs == 0 || nr_irqs > 65536 {
            return Err(IrqError::BadArgument {
                name: "nr_irqs",
                accepts: "1..=65536",
            });
        }
        if nr_cpus == 0 || nr_cpus > 4096 {
            return Err(IrqError::BadArgument {
                name: "nr_cpus",
                accepts: "1..=4096",
            });
        }
        Ok(IrqTable {
            chip_name,
            descs: (0..nr_irqs).map(|irq| IrqDesc::new(irq, nr_cpus)).collect(),
            cpus: (0..nr_cpus)
                .map(|_| IrqCpu {
                    pending: IrqBitmap::new(nr_irqs),
                    local: IrqBitmap::new(nr_irqs),
                    owner: PcpuOwner::new(),
                    threads: IrqBitmap::new(nr_irqs),
                })
                .collect(),
            wakeup,
            irq_err_count: AtomicU64::new(0),
        })
    }

    /// How many lines the table has (`nr_irqs`).
    pub fn nr_irqs(&self) -> u32 {
        self.descs.len() as u32
    }

    /// How many CPUs the table routes to (`nr_cpu_ids`).
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// The chip's name, as `/proc/interrupts` prints it (`irq_chip.name`).
    pub fn chip_name(&self) -> &'static str {
        self.chip_name
    }

    /// The wake-up hook this table kicks CPUs through.
    pub fn wakeup(&self) -> &CpuWakeup {
        &self.wakeup
    }

    /// The descriptor of `irq`.
    ///
    /// Mirrors `irq_to_desc()` in `kernel/irq/irqdesc.c`; an out-of-range
    /// line is an error instead of `NULL`.
    pub fn irq_to_desc(&self, irq: u32) -> Result<&IrqDesc, IrqError> {
        self.descs.get(irq as usize).ok_or(IrqError::IrqOutOfRange {
            irq,
            nr_irqs: self.nr_irqs(),
        })
    }

    /// Interrupts of `irq` handled on `cpu`.
    ///
    /// Mirrors `kstat_irqs_cpu()` in `kernel/irq/irqdesc.c`.
    pub fn kstat_irqs_cpu(&self, irq: u32, cpu: usize) -> Result<u64, IrqError> {
        let cpu = self.check_cpu(cpu)?;
        Ok(self.irq_to_desc(irq)?.kstat_irqs_cpu(cpu))
    }

    /// Raises of lines that had no handler (x86's `irq_err_count`, printed
    /// as the `ERR:` row of `/proc/interrupts`).
    pub fn irq_err_count(&self) -> u64 {
        self.irq_err_count.load(Ordering::Relaxed)
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

    /// Makes `irq` pending on its affinity CPU and kicks that CPU.
    ///
    /// Mirrors the hardware delivering a vector (and `irq_sw_resend()` for a
    /// replay): the per-CPU pending bit is the CPU's IRR bit.
    pub(crate) fn deliver_to_cpu(&self, desc: &IrqDesc) -> usize {
        let cpu = desc.affinity().min(self.cpus.len() - 1);
        let c = &self.cpus[cpu];
        let newly = if c.owner.is_mine() {
            c.local.set_plain(desc.irq)
        } else {
            c.pending.set(desc.irq)
        };
        if newly {
            self.wakeup.kick(cpu);
        }
        cpu
    }
}

impl fmt::Debug for IrqTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqTable")
            .field("chip_name", &self.chip_name)
            .field("nr_irqs", &self.nr_irqs())
            .field("nr_cpus", &self.nr_cpus())
            .field("irq_err_count", &self.irq_err_count())
            .finish_non_exhaustive()
    }
}
