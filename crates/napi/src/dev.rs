//! NAPI: scheduling, completion, disabling, the per-CPU poll lists and one
//! poll of one NAPI.
//!
//! Mirrors the NAPI half of `net/core/dev.c`: `netif_napi_add_weight()`,
//! `napi_schedule_prep()`, `__napi_schedule()`, `____napi_schedule()`,
//! `napi_complete_done()`, `napi_disable_locked()`, `napi_enable_locked()`,
//! `__napi_poll()` and `napi_poll()`, and the `poll_list` of `struct
//! softnet_data`.
//!
//! # Who may call what, from where
//!
//! | call | context | why it is safe |
//! |---|---|---|
//! | [`napi_schedule`], [`__napi_schedule`] | the driver's hard-IRQ handler, on the CPU the line is routed to | the list is that CPU's own; SCHED makes the push unique |
//! | [`napi_schedule_on`], [`__napi_schedule_on`] | any thread (softirq, process context, timers) | same; the raise kicks the target CPU |
//! | [`NapiStruct::napi_schedule_prep`] | any thread | one atomic read-modify-write of the state word |
//! | [`napi_poll`] | the runner of the CPU whose list the NAPI was taken from (`net_rx_action`) | SCHED is held: nobody else polls; the poll-routine lock is uncontended |
//! | [`NapiPollCtx`] methods | the driver's [`NapiPoll::poll`], inside [`napi_poll`] | the context exists only there |
//! | [`NapiStruct::napi_disable`] / [`NapiStruct::napi_enable`] | the driver's `open`/`stop` (process context, "RTNL held") | DISABLE blocks new schedules; disable takes SCHED itself |
//! | [`PollList`] pops and splices | only the owning CPU's runner | pushes may come from any CPU, pops never do |

use std::collections::VecDeque;

use irq::{HardIrqContext, SoftirqNr, Softirqs};
use netcore::{Instant, PagePool, SkBuff, Sysctl};

use crate::gro::{GroList, GroResult, GroStats};
use crate::netdevice::{MIN_NAPI_ID, NAPI_POLL_WEIGHT, NapiState};
use crate::sync::{Arc, AtomicU32, AtomicUsize, Mutex, Ordering};

/// A driver's poll routine.
///
/// Mirrors the `poll` callback of `struct napi_struct` (`int (*poll)(struct
/// napi_struct *, int)`). [`napi_poll`] calls it with SCHED held and the
/// NAPI off every list; it must:
///
/// - handle at most `budget` received packets and return how many it
///   handled (tx completions do not count);
/// - hand each packet up with [`NapiPollCtx::napi_gro_receive`] (or
///   [`NapiPollCtx::netif_receive_skb`] to bypass GRO);
/// - when it handled fewer than `budget`, call
///   [`NapiPollCtx::napi_complete_done`] and unmask its interrupt only if
///   that returned `true`;
/// - when it handled exactly `budget`, leave the NAPI alone: it stays
///   scheduled and is polled again.
///
/// It runs in softirq context: it must not block.
pub trait NapiPoll: Send {
    /// Polls for up to `budget` packets; returns how many were handled.
    fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize;
}

impl core::fmt::Debug for dyn NapiPoll {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("dyn NapiPoll")
    }
}

/// Where NAPI hands received packets up: the upper layer's
/// `netif_receive_skb`.
///
/// `softnet` implements it (taps, tc ingress, `ptype_base` dispatch, RPS);
/// tests implement it with a closure or a `Vec`. This is the context trait
/// through which the lower crate calls upward (ARCHITECTURE.md §1); in
/// Linux GRO calls `netif_receive_skb_list_internal()` directly.
pub trait GroReceive {
    /// Receives one packet (data at the network header, `protocol` set).
    ///
    /// Mirrors `netif_receive_skb()`.
    fn netif_receive_skb(&mut self, skb: SkBuff);
}

impl<F: FnMut(SkBuff)> GroReceive for F {
    fn netif_receive_skb(&mut self, skb: SkBuff) {
        self(skb);
    }
}

impl GroReceive for Vec<SkBuff> {
    fn netif_receive_skb(&mut self, skb: SkBuff) {
        self.push(skb);
    }
}

/// A bad argument to a NAPI call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NapiError {
    /// `cpu` is not a CPU of the poll lists.
    CpuOutOfRange {
        /// The CPU asked for.
        cpu: usize,
        /// How many CPUs the lists have.
        nr_cpus: usize,
    },
    /// An argument outside what the call accepts.
    BadArgument {
        /// The argument's name.
        name: &'static str,
        /// What it accepts.
        accepts: &'static str,
    },
    /// [`NapiStruct::napi_enable`] on a NAPI that is not disabled (Linux's
    /// `BUG_ON(!test_bit(NAPI_STATE_SCHED, &val))`).
    NotDisabled,
}

impl core::fmt::Display for NapiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NapiError::CpuOutOfRange { cpu, nr_cpus } => {
                write!(
                    f,
                    "cpu {cpu} out of range: the poll lists have {nr_cpus} CPUs"
                )
            }
            NapiError::BadArgument { name, accepts } => {
                write!(f, "bad argument `{name}`: accepts {accepts}")
            }
            NapiError::NotDisabled => f.write_str("napi_enable on a NAPI that is not disabled"),
        }
    }
}

impl core::error::Error for NapiError {}

/// One CPU's list of scheduled NAPIs.
///
/// Mirrors `softnet_data.poll_list`. Pushes come from that CPU's hard-IRQ
/// handlers and, through [`napi_schedule_on`], from any thread; pops and
/// splices only from the owning CPU's runner (`net_rx_action`). The lock is
/// therefore uncontended in the steady state (Linux disables local IRQs
/// instead). A NAPI is on at most one list at a time: only the winner of
/// SCHED pushes it.
#[derive(Debug)]
pub struct PollList {
    queue: Mutex<VecDeque<Arc<NapiStruct>>>,
    /// `queue.len()`, stored under the lock after every change: the
    /// emptiness tests `net_rx_action` makes (twice a run, most finding the
    /// list empty) and the splice of an empty list read it without taking
    /// the lock. A NAPI listed concurrently is followed by a raise of
    /// `NET_RX` on the list's CPU, so a test that misses it only sees the
    /// list as it was an instant earlier, as the lock would have let it.
    len: AtomicUsize,
}

impl PollList {
    fn new() -> PollList {
        PollList {
            queue: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
        }
    }

    /// Stores the length after a change (the lock is held).
    #[inline]
    fn set_len(&self, q: &VecDeque<Arc<NapiStruct>>) {
        self.len.store(q.len(), Ordering::Release);
    }

    /// Appends a scheduled NAPI. Mirrors `list_add_tail(&n->poll_list, ...)`
    /// in `____napi_schedule()`; softnet uses it to put repolled NAPIs back.
    pub fn list_add_tail(&self, napi: Arc<NapiStruct>) {
        let mut q = self.queue.lock();
        q.push_back(napi);
        self.set_len(&q);
    }

    /// Takes the first NAPI, if any (`list_first_entry` + `list_del_init`).
    pub fn pop_front(&self) -> Option<Arc<NapiStruct>> {
        let mut q = self.queue.lock();
        let n = q.pop_front();
        self.set_len(&q);
        n
    }

    /// Takes the whole list, leaving it empty, as `net_rx_action` does at
    /// its start. Mirrors `list_splice_init()`.
    pub fn list_splice_init(&self) -> VecDeque<Arc<NapiStruct>> {
        let mut q = self.queue.lock();
        let list = core::mem::take(&mut *q);
        self.set_len(&q);
        list
    }

    /// Takes the whole list into `into`, which must be empty, leaving the
    /// list empty with `into`'s buffer: once both buffers have grown,
    /// taking the list allocates nothing. Mirrors `list_splice_init()`,
    /// which moves list heads and allocates nothing either. An empty list
    /// is left alone without taking the lock (inline: no call either).
    #[inline]
    pub fn list_splice_init_into(&self, into: &mut VecDeque<Arc<NapiStruct>>) {
        debug_assert!(into.is_empty(), "list_splice_init_into needs an empty list");
        if !self.is_empty() {
            self.list_splice_init_into_locked(into);
        }
    }

    /// [`list_splice_init_into`](Self::list_splice_init_into) of a list
    /// that was not empty.
    #[inline(never)]
    fn list_splice_init_into_locked(&self, into: &mut VecDeque<Arc<NapiStruct>>) {
        let mut q = self.queue.lock();
        core::mem::swap(&mut *q, into);
        self.set_len(&q);
    }

    /// Puts `list` (drained) in front of what was scheduled meanwhile, as
    /// `net_rx_action` does at its end with the NAPIs it did not finish.
    /// Mirrors `list_splice()` onto `sd->poll_list`.
    pub fn list_splice(&self, list: &mut VecDeque<Arc<NapiStruct>>) {
        let mut q = self.queue.lock();
        while let Some(n) = list.pop_back() {
            q.push_front(n);
        }
        self.set_len(&q);
    }

    /// How many NAPIs are listed.
    #[inline]
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether the list is empty (`list_empty()`).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }
}

/// The poll lists of every CPU of a host, shared as `Arc<PollLists>` by the
/// host, its drivers' NAPIs and softnet.
///
/// Mirrors the per-CPU `softnet_data.poll_list`s plus `napi_gen_id`.
/// A listed NAPI holds an `Arc` to these lists and the lists hold an `Arc`
/// to it while it is scheduled; the cycle ends when it is polled.
#[derive(Debug)]
pub struct PollLists {
    cpus: Box<[PollList]>,
    next_napi_id: AtomicU32,
}

impl PollLists {
    /// Lists for `nr_cpus` CPUs (accepts `1..=4096`).
    pub fn new(nr_cpus: usize) -> Result<Arc<PollLists>, NapiError> {
        if nr_cpus == 0 || nr_cpus > 4096 {
            return Err(NapiError::BadArgument {
                name: "nr_cpus",
                accepts: "1..=4096",
            });
        }
        Ok(Arc::new(PollLists {
            cpus: (0..nr_cpus).map(|_| PollList::new()).collect(),
            next_napi_id: AtomicU32::new(MIN_NAPI_ID),
        }))
    }

    /// How many CPUs the lists cover.
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    /// The list of `cpu`. Errors: [`NapiError::CpuOutOfRange`].
    pub fn cpu(&self, cpu: usize) -> Result<&PollList, NapiError> {
        self.cpus.get(cpu).ok_or(NapiError::CpuOutOfRange {
            cpu,
            nr_cpus: self.cpus.len(),
        })
    }
}

/// What the poll routine and its GRO state own; locked by the poller.
struct NapiInner {
    poll: Box<dyn NapiPoll>,
    gro: GroList,
}

/// One NAPI context: a driver queue's poll routine, its state word and its
/// GRO table.
///
/// Mirrors `struct napi_struct` in `include/linux/netdevice.h`. Shared as
/// `Arc<NapiStruct>` by the driver (its queue vector, whose IRQ handler
/// schedules it) and the poll list it is queued on. Created disabled by
/// [`netif_napi_add`]; the driver calls [`NapiStruct::napi_enable`] in
/// `open`.
///
/// # Deviations from Linux
///
/// - The poll routine is a trait object behind an uncontended lock (SCHED
///   already guarantees one poller); Linux stores a function pointer and
///   the driver reaches its private data through `container_of`.
/// - [`NapiStruct::napi_disable`] does not sleep: it reports whether the
///   NAPI is now disabled and the caller retries, where Linux loops with
///   `usleep_range()`.
/// - No busy polling, threaded NAPI, deferred hard IRQs or GRO flush
///   timeout: the bits exist for fidelity but nothing here sets
///   `IN_BUSY_POLL`, `PREFER_BUSY_POLL`, `THREADED` or `SCHED_THREADED`.
pub struct NapiStruct {
    state: AtomicUsize,
    weight: usize,
    napi_id: u32,
    ifindex: u32,
    lists: Arc<PollLists>,
    inner: Mutex<NapiInner>,
}

impl core::fmt::Debug for NapiStruct {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NapiStruct")
            .field("napi_id", &self.napi_id)
            .field("ifindex", &self.ifindex)
            .field("weight", &self.weight)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// The default NAPI weight from the `net.core.dev_weight` sysctl, for
/// NAPIs that are not a driver's (softnet's backlog).
///
/// Mirrors `weight_p` (`dev_rx_weight = weight_p * dev_weight_rx_bias`).
pub fn dev_weight(sysctl: &Sysctl) -> usize {
    let w = sysctl.dev_weight() * sysctl.get_int(Sysctl::DEV_WEIGHT_RX_BIAS);
    usize::try_from(w).unwrap_or(NAPI_POLL_WEIGHT).max(1)
}

/// Creates a NAPI for device `ifindex` with [`NAPI_POLL_WEIGHT`], bound to
/// `lists`, disabled (SCHED and NPSVC set) and LISTED.
///
/// Mirrors `netif_napi_add()`.
pub fn netif_napi_add(
    lists: &Arc<PollLists>,
    ifindex: u32,
    poll: impl NapiPoll + 'static,
) -> Arc<NapiStruct> {
    netif_napi_add_weight_boxed(lists, ifindex, Box::new(poll), NAPI_POLL_WEIGHT)
}

/// Creates a NAPI with an explicit `weight` (accepts 1 or more; above
/// [`NAPI_POLL_WEIGHT`] is allowed but logged, as Linux does).
///
/// Mirrors `netif_napi_add_weight()`.
pub fn netif_napi_add_weight(
    lists: &Arc<PollLists>,
    ifindex: u32,
    poll: impl NapiPoll + 'static,
    weight: usize,
) -> Result<Arc<NapiStruct>, NapiError> {
    if weight == 0 {
        return Err(NapiError::BadArgument {
            name: "weight",
            accepts: "1 or more packets",
        });
    }
    if weight > NAPI_POLL_WEIGHT {
        tracing::warn!(
            target: "netstack::napi",
            ifindex,
            weight,
            "netif_napi_add_weight() called with weight above NAPI_POLL_WEIGHT"
        );
    }
    Ok(netif_napi_add_weight_boxed(
        lists,
        ifindex,
        Box::new(poll),
        weight,
    ))
}

fn netif_napi_add_weight_boxed(
    lists: &Arc<PollLists>,
    ifindex: u32,
    poll: Box<dyn NapiPoll>,
    weight: usize,
) -> Arc<NapiStruct> {
    let napi_id = lists.next_napi_id.fetch_add(1, Ordering::Relaxed);
    let state = NapiState::SCHED | NapiState::NPSVC | NapiState::LISTED;
    Arc::new(NapiStruct {
        state: AtomicUsize::new(state.bits()),
        weight,
        napi_id,
        ifindex,
        lists: Arc::clone(lists),
        inner: Mutex::new(NapiInner {
            poll,
            gro: GroList::new(),
        }),
    })
}

/// What the state transition of `napi_complete_done` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Completion {
    /// SCHED cleared: the NAPI is idle.
    Done,
    /// MISSED was set: SCHED kept, the NAPI must be listed again.
    Missed,
}

impl NapiStruct {
    /// A snapshot of the state word.
    pub fn state(&self) -> NapiState {
        NapiState::from_bits_retain(self.state.load(Ordering::Acquire))
    }

    /// The most packets one poll may handle (`napi->weight`).
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// The NAPI id (`napi->napi_id`), unique among the NAPIs of its lists.
    pub fn napi_id(&self) -> u32 {
        self.napi_id
    }

    /// The device's ifindex (`napi->dev->ifindex`).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The poll lists this NAPI is scheduled onto.
    pub fn poll_lists(&self) -> &Arc<PollLists> {
        &self.lists
    }

    /// Whether SCHED is set. Mirrors `napi_is_scheduled()`.
    pub fn napi_is_scheduled(&self) -> bool {
        self.state().contains(NapiState::SCHED)
    }

    /// Whether a disable is pending. Mirrors `napi_disable_pending()`.
    pub fn napi_disable_pending(&self) -> bool {
        self.state().contains(NapiState::DISABLE)
    }

    /// Tries to take the right to schedule this NAPI.
    ///
    /// Mirrors `napi_schedule_prep()`: refused (`false`) while DISABLE is
    /// set; otherwise sets SCHED and returns whether it was clear. When SCHED
    /// was already set (a poll is pending or running), sets MISSED so the
    /// running poll is not allowed to complete: the event that called this is
    /// not lost. The winner must list the NAPI ([`__napi_schedule`]).
    pub fn napi_schedule_prep(&self) -> bool {
        let mut val = self.state.load(Ordering::Relaxed);
        loop {
            if val & NapiState::DISABLE.bits() != 0 {
                return false;
            }
            let mut new = val | NapiState::SCHED.bits();
            if val & NapiState::SCHED.bits() != 0 {
                new |= NapiState::MISSED.bits();
            }
            // AcqRel: the caller's writes (a packet in the ring) are released
            // to whoever reads this transition, and a poller's completion is
            // acquired. Every transition of the word is a read-modify-write,
            // so they are totally ordered.
            match self
                .state
                .compare_exchange_weak(val, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return val & NapiState::SCHED.bits() == 0,
                Err(cur) => val = cur,
            }
        }
    }

    /// The state transition of `napi_complete_done()`: clear SCHED, or keep
    /// it and clear MISSED when MISSED was set.
    fn complete_state(&self) -> Completion {
        let clear = NapiState::MISSED
            | NapiState::SCHED
            | NapiState::SCHED_THREADED
            | NapiState::PREFER_BUSY_POLL;
        let mut val = self.state.load(Ordering::Relaxed);
        loop {
            debug_assert!(
                val & NapiState::SCHED.bits() != 0,
                "completing an unscheduled NAPI"
            );
            let mut new = val & !clear.bits();
            if val & NapiState::MISSED.bits() != 0 {
                new |= NapiState::SCHED.bits();
            }
            // AcqRel: pairs with napi_schedule_prep (see there).
            match self
                .state
                .compare_exchange_weak(val, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if val & NapiState::MISSED.bits() != 0 => return Completion::Missed,
                Ok(_) => return Completion::Done,
                Err(cur) => val = cur,
            }
        }
    }

    /// Disables the NAPI, without sleeping: returns `true` once it is
    /// disabled, `false` while a poll is still scheduled (call again later).
    ///
    /// Mirrors `napi_disable_locked()`: sets DISABLE (new schedules are
    /// refused; a poll that uses its whole weight completes instead of
    /// repolling), then, once SCHED and NPSVC are clear, takes SCHED and
    /// NPSVC itself, clears THREADED and PREFER_BUSY_POLL, and clears DISABLE.
    /// A disabled NAPI holds SCHED, so nothing can schedule it until
    /// [`NapiStruct::napi_enable`]. Disabling a disabled NAPI returns `true`.
    ///
    /// # Deviations from Linux
    ///
    /// Linux sleeps in a loop until the poll finishes; this sans-IO version
    /// leaves DISABLE set and returns `false`, and the caller retries (after
    /// letting the CPU that owns the poll run).
    pub fn napi_disable(&self) -> bool {
        let mut val = self
            .state
            .fetch_or(NapiState::DISABLE.bits(), Ordering::AcqRel)
            | NapiState::DISABLE.bits();
        let busy = (NapiState::SCHED | NapiState::NPSVC).bits();
        loop {
            if val & NapiState::NPSVC.bits() != 0 && val & NapiState::SCHED.bits() != 0 {
                // Already disabled (there is no netpoll here to own NPSVC).
                self.state
                    .fetch_and(!NapiState::DISABLE.bits(), Ordering::AcqRel);
                return true;
            }
            if val & busy != 0 {
                return false;
            }
            let new = (val | busy) & !(NapiState::THREADED | NapiState::PREFER_BUSY_POLL).bits();
            match self
                .state
                .compare_exchange_weak(val, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(cur) => val = cur,
            }
        }
        self.state
            .fetch_and(!NapiState::DISABLE.bits(), Ordering::AcqRel);
        true
    }

    /// Enables a disabled NAPI: clears SCHED and NPSVC so it can be
    /// scheduled.
    ///
    /// Mirrors `napi_enable_locked()`. Errors: [`NapiError::NotDisabled`]
    /// unless SCHED and NPSVC are both set (Linux only checks SCHED, with a
    /// `BUG_ON`; here a scheduled NAPI is told apart from a disabled one).
    pub fn napi_enable(&self) -> Result<(), NapiError> {
        let disabled = (NapiState::SCHED | NapiState::NPSVC).bits();
        let mut val = self.state.load(Ordering::Relaxed);
        loop {
            if val & disabled != disabled {
                return Err(NapiError::NotDisabled);
            }
            let new = val & !(NapiState::SCHED | NapiState::NPSVC).bits();
            match self
                .state
                .compare_exchange_weak(val, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(cur) => val = cur,
            }
        }
    }

    /// Removes the NAPI from the system's lists (clears LISTED). Returns
    /// whether it was listed. The NAPI should be disabled first.
    ///
    /// Mirrors `__netif_napi_del()`; the GRO table is flushed into the void
    /// (its held packets are freed, as `gro_cleanup()` does).
    pub fn netif_napi_del(&self) -> bool {
        let prev = self
            .state
            .fetch_and(!NapiState::LISTED.bits(), Ordering::AcqRel);
        self.inner.lock().gro.gro_cleanup();
        prev & NapiState::LISTED.bits() != 0
    }

    /// Sets the pool GRO takes its large buffers from, or `None` to turn
    /// GRO off (every packet passes through as `GRO_NORMAL`). Off by
    /// default; see [`napi_gro_receive`](NapiPollCtx::napi_gro_receive).
    ///
    /// Mirrors toggling `NETIF_F_GRO` on the device. Call it with the NAPI
    /// disabled or idle; it takes the poll-routine lock.
    pub fn set_gro_pool(&self, pool: Option<PagePool>) {
        self.inner.lock().gro.set_pool(pool);
    }

    /// The GRO counters of this NAPI.
    pub fn gro_stats(&self) -> GroStats {
        self.inner.lock().gro.stats()
    }
}

/// Lists a NAPI whose SCHED the caller won on the current CPU and raises
/// `NET_RX` there, from a hard-IRQ handler.
///
/// Mirrors `__napi_schedule_irqoff()` / `____napi_schedule()`. Call it only
/// after [`NapiStruct::napi_schedule_prep`] returned `true`; otherwise the
/// NAPI could be listed twice. Errors: [`NapiError::CpuOutOfRange`] when the
/// handler's CPU is not one of the NAPI's lists.
pub fn __napi_schedule(
    napi: &Arc<NapiStruct>,
    ctx: &mut HardIrqContext<'_>,
) -> Result<(), NapiError> {
    let cpu = ctx.smp_processor_id();
    napi.lists.cpu(cpu)?.list_add_tail(Arc::clone(napi));
    tracing::trace!(target: "netstack::napi", napi_id = napi.napi_id, cpu, "napi_schedule");
    ctx.raise_softirq_irqoff(SoftirqNr::NetRx);
    Ok(())
}

/// Schedules a NAPI from its driver's hard-IRQ handler: SCHED (or MISSED),
/// then the current CPU's poll list and `NET_RX`. Returns whether this call
/// scheduled it.
///
/// Mirrors `napi_schedule()` (`napi_schedule_irqoff()`). The handler has
/// masked its vector (or the device auto-masked it); the poll unmasks it
/// after [`NapiPollCtx::napi_complete_done`] returns `true`.
/// Errors: [`NapiError::CpuOutOfRange`], checked before SCHED is touched.
pub fn napi_schedule(
    napi: &Arc<NapiStruct>,
    ctx: &mut HardIrqContext<'_>,
) -> Result<bool, NapiError> {
    napi.lists.cpu(ctx.smp_processor_id())?;
    if napi.napi_schedule_prep() {
        #[allow(clippy::used_underscore_items)] // the kernel's name
        __napi_schedule(napi, ctx)?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// Lists a NAPI whose SCHED the caller won on `cpu`'s poll list and raises
/// `NET_RX` there (kicking that CPU if it was idle), from any thread.
///
/// Mirrors `__napi_schedule()` (the variant for contexts with hard IRQs
/// enabled) plus the IPI when `cpu` is not the caller's. Errors:
/// [`NapiError::CpuOutOfRange`] (for the lists or for `softirqs`).
pub fn __napi_schedule_on(
    napi: &Arc<NapiStruct>,
    cpu: usize,
    softirqs: &Softirqs,
) -> Result<(), NapiError> {
    if cpu >= softirqs.nr_cpus() {
        return Err(NapiError::CpuOutOfRange {
            cpu,
            nr_cpus: softirqs.nr_cpus(),
        });
    }
    napi.lists.cpu(cpu)?.list_add_tail(Arc::clone(napi));
    // Cannot fail: `cpu` was checked against `softirqs` above.
    let _ = softirqs.raise_softirq(cpu, SoftirqNr::NetRx);
    Ok(())
}

/// Schedules a NAPI on `cpu` from softirq or process context (a timer, a
/// wake-up from another CPU). Returns whether this call scheduled it.
///
/// Mirrors `napi_schedule()` called outside hard-IRQ context.
pub fn napi_schedule_on(
    napi: &Arc<NapiStruct>,
    cpu: usize,
    softirqs: &Softirqs,
) -> Result<bool, NapiError> {
    napi.lists.cpu(cpu)?;
    if cpu >= softirqs.nr_cpus() {
        return Err(NapiError::CpuOutOfRange {
            cpu,
            nr_cpus: softirqs.nr_cpus(),
        });
    }
    if napi.napi_schedule_prep() {
        #[allow(clippy::used_underscore_items)] // the kernel's name
        __napi_schedule_on(napi, cpu, softirqs)?;
        Ok(true)
    } else {
        Ok(false)
    }
}

/// What a driver's poll routine may call, handed to [`NapiPoll::poll`].
///
/// Mirrors the `struct napi_struct *` a Linux poll routine receives, limited
/// to what it may do there: pass packets up (with or without GRO) and
/// complete.
pub struct NapiPollCtx<'a> {
    napi: &'a Arc<NapiStruct>,
    gro: &'a mut GroList,
    sink: &'a mut dyn GroReceive,
    cpu: usize,
    softirqs: &'a Softirqs,
    now: Instant,
    /// `now` in jiffies, computed once per poll.
    jiffies: u64,
    completed: bool,
}

impl core::fmt::Debug for NapiPollCtx<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NapiPollCtx")
            .field("napi", self.napi)
            .field("cpu", &self.cpu)
            .field("now", &self.now)
            .field("completed", &self.completed)
            .finish_non_exhaustive()
    }
}

impl NapiPollCtx<'_> {
    /// Hands a received packet to GRO, which merges it into a held packet
    /// of its flow, holds it, or passes it up (after flushing what it held
    /// of the flow, so order is kept).
    ///
    /// Mirrors `napi_gro_receive()` in `net/core/gro.c`. The packet must
    /// look as after `eth_type_trans()`: `protocol` set, data at the network
    /// header, the MAC header set (compared as Linux's
    /// `gro_list_prepare()` does).
    #[inline]
    pub fn napi_gro_receive(&mut self, skb: SkBuff) -> GroResult {
        tracing::trace!(target: "netstack::napi", len = skb.len(), proto = skb.protocol, queue = skb.queue_mapping, "napi_gro_receive");
        // The packets GRO has no handler for go straight up, with one move.
        if !self.gro.gro_may_hold(&skb) {
            self.gro.count_normal();
            self.sink.netif_receive_skb(skb);
            return GroResult::Normal;
        }
        let jiffies = self.jiffies();
        self.gro.napi_gro_receive(skb, &mut *self.sink, jiffies)
    }

    /// Passes a packet up without GRO. Mirrors `netif_receive_skb()` called
    /// from a poll routine.
    #[inline]
    pub fn netif_receive_skb(&mut self, skb: SkBuff) {
        self.sink.netif_receive_skb(skb);
    }

    /// Flushes GRO's held packets up: all of them, or with `flush_old` only
    /// those held since an earlier jiffy. Mirrors `napi_gro_flush()`.
    pub fn napi_gro_flush(&mut self, flush_old: bool) {
        let jiffies = self.jiffies();
        self.gro.napi_gro_flush(&mut *self.sink, flush_old, jiffies);
    }

    /// Reports the poll done: flushes GRO and clears SCHED, unless a
    /// schedule request came during the poll (MISSED), in which case the
    /// NAPI stays scheduled and is listed again on this CPU. Returns whether
    /// the driver may unmask its interrupt.
    ///
    /// Mirrors `napi_complete_done()`. Returns `false` without completing
    /// when NPSVC or IN_BUSY_POLL is set, and on a second call in the same
    /// poll. `work_done` is what the poll handled; it only feeds tracing
    /// here (Linux uses it for deferred hard IRQs).
    pub fn napi_complete_done(&mut self, work_done: usize) -> bool {
        let state = self.napi.state();
        if self.completed {
            tracing::warn!(target: "netstack::napi", napi_id = self.napi.napi_id, "napi_complete_done called twice in one poll");
            return false;
        }
        if state.intersects(NapiState::NPSVC | NapiState::IN_BUSY_POLL) {
            return false;
        }
        let jiffies = self.jiffies();
        self.gro.napi_gro_flush(&mut *self.sink, false, jiffies);
        self.completed = true;
        match self.napi.complete_state() {
            Completion::Done => {
                tracing::trace!(target: "netstack::napi", napi_id = self.napi.napi_id, work_done, "napi_complete_done");
                true
            }
            Completion::Missed => {
                tracing::trace!(target: "netstack::napi", napi_id = self.napi.napi_id, work_done, "napi_complete_done: missed, rescheduled");
                // The cpu was checked by napi_poll.
                #[allow(clippy::used_underscore_items)] // the kernel's name
                let _ = __napi_schedule_on(self.napi, self.cpu, self.softirqs);
                false
            }
        }
    }

    /// `napi_complete_done(0)`. Mirrors `napi_complete()`.
    pub fn napi_complete(&mut self) -> bool {
        self.napi_complete_done(0)
    }

    /// The CPU the poll runs on (`smp_processor_id()`).
    pub fn smp_processor_id(&self) -> usize {
        self.cpu
    }

    /// The time of this poll, as given to [`napi_poll`].
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The NAPI being polled.
    pub fn napi(&self) -> &NapiStruct {
        self.napi
    }

    fn jiffies(&self) -> u64 {
        self.jiffies
    }
}

/// The result of one [`napi_poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NapiPollResult {
    /// Packets the poll handled (counts against `netdev_budget`).
    pub work: usize,
    /// The NAPI used its whole weight and stays scheduled: put it on the
    /// repoll list (it is on no list now).
    pub repoll: bool,
}

/// Polls one NAPI taken off `cpu`'s poll list, once, with its weight.
///
/// Mirrors `napi_poll()` + `__napi_poll()` in `net/core/dev.c`, which
/// `net_rx_action` calls for each listed NAPI. Locks the poll routine and,
/// if SCHED is set, calls it with the NAPI's weight. Then:
///
/// - fewer packets than the weight: the driver completed (or must have);
///   `repoll = false`;
/// - the whole weight, with a disable pending: completes the NAPI on the
///   driver's behalf; `repoll = false`;
/// - the whole weight otherwise: flushes GRO packets held since an earlier
///   jiffy (`HZ >= 1000`) and returns `repoll = true`; the caller appends
///   the NAPI to its repoll list.
///
/// `now` stamps GRO ages (one jiffy is one millisecond). Call it only from
/// `cpu`'s runner, with a NAPI popped from that CPU's list. Errors:
/// [`NapiError::CpuOutOfRange`].
pub fn napi_poll(
    napi: &Arc<NapiStruct>,
    cpu: usize,
    softirqs: &Softirqs,
    sink: &mut dyn GroReceive,
    now: Instant,
) -> Result<NapiPollResult, NapiError> {
    napi.lists.cpu(cpu)?;
    if cpu >= softirqs.nr_cpus() {
        return Err(NapiError::CpuOutOfRange {
            cpu,
            nr_cpus: softirqs.nr_cpus(),
        });
    }
    let weight = napi.weight;
    let _span = tracing::trace_span!(target: "netstack::napi", "napi_poll", napi_id = napi.napi_id, ifindex = napi.ifindex).entered();
    let mut inner = napi.inner.lock();
    let NapiInner { poll, gro } = &mut *inner;
    let mut ctx = NapiPollCtx {
        napi,
        gro,
        sink,
        cpu,
        softirqs,
        now,
        jiffies: now.as_nanos() / (1_000_000_000 / netcore::HZ),
        completed: false,
    };
    let mut work = 0;
    if napi.napi_is_scheduled() {
        work = poll.poll(&mut ctx, weight);
    }
    if work > weight {
        tracing::error!(target: "netstack::napi", napi_id = napi.napi_id, work, weight, "NAPI poll function returned more than its budget");
    }
    if work < weight {
        return Ok(NapiPollResult {
            work,
            repoll: false,
        });
    }
    if ctx.completed {
        // "Drivers must not modify the NAPI state if they consume the
        // entire weight": it is idle or listed again already.
        tracing::warn!(target: "netstack::napi", napi_id = napi.napi_id, "NAPI completed after consuming its whole weight");
        return Ok(NapiPollResult {
            work,
            repoll: false,
        });
    }
    if napi.napi_disable_pending() {
        ctx.napi_complete();
        return Ok(NapiPollResult {
            work,
            repoll: false,
        });
    }
    ctx.napi_gro_flush(true);
    Ok(NapiPollResult { work, repoll: true })
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};

    use irq::{CpuWakeup, IrqReturn, IrqTable};
    use netcore::{ETH_P_IP, PagePool, PagePoolParams};

    use super::*;

    /// A driver with `pending` frames in its "ring"; each poll takes up to
    /// `budget`, tags each skb with its index, completes when it ran dry and
    /// counts how often it was told to unmask.
    struct FakeRx {
        pool: PagePool,
        next: u32,
        pending: u32,
        unmasks: Arc<StdAtomicUsize>,
        polls: Arc<StdAtomicUsize>,
    }

    impl NapiPoll for FakeRx {
        fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
            self.polls.fetch_add(1, StdOrdering::Relaxed);
            let mut work = 0;
            while work < budget && self.pending > 0 {
                let mut skb = SkBuff::from_slice(&self.pool, 64, &self.next.to_be_bytes()).unwrap();
                skb.protocol = ETH_P_IP;
                napi.netif_receive_skb(skb);
                self.next += 1;
                self.pending -= 1;
                work += 1;
            }
            if work < budget && napi.napi_complete_done(work) {
                self.unmasks.fetch_add(1, StdOrdering::Relaxed);
            }
            work
        }
    }

    struct Fixture {
        lists: Arc<PollLists>,
        softirqs: Softirqs,
        napi: Arc<NapiStruct>,
        unmasks: Arc<StdAtomicUsize>,
        polls: Arc<StdAtomicUsize>,
    }

    fn fixture(pending: u32, weight: usize) -> Fixture {
        let lists = PollLists::new(2).unwrap();
        let softirqs = Softirqs::new(2, CpuWakeup::new()).unwrap();
        let unmasks = Arc::new(StdAtomicUsize::new(0));
        let polls = Arc::new(StdAtomicUsize::new(0));
        let drv = FakeRx {
            pool: PagePool::new(PagePoolParams::default()).unwrap(),
            next: 0,
            pending,
            unmasks: Arc::clone(&unmasks),
            polls: Arc::clone(&polls),
        };
        let napi = netif_napi_add_weight(&lists, 3, drv, weight).unwrap();
        Fixture {
            lists,
            softirqs,
            napi,
            unmasks,
            polls,
        }
    }

    fn net_rx_pending(softirqs: &Softirqs, cpu: usize) -> bool {
        softirqs.local_softirq_pending(cpu).unwrap() & SoftirqNr::NetRx.mask() != 0
    }

    #[test]
    fn list_splice_init_into_swaps_buffers_and_keeps_order() {
        let f = fixture(0, NAPI_POLL_WEIGHT);
        let list = f.lists.cpu(0).unwrap();
        for _ in 0..3 {
            list.list_add_tail(Arc::clone(&f.napi));
        }
        let mut scratch: VecDeque<Arc<NapiStruct>> = VecDeque::with_capacity(16);
        let cap = scratch.capacity();
        list.list_splice_init_into(&mut scratch);
        assert_eq!(scratch.len(), 3);
        assert!(list.is_empty());
        // the list now owns the scratch buffer: adding needs no allocation
        assert!(list.queue.lock().capacity() >= cap);
        scratch.clear();
        list.list_add_tail(Arc::clone(&f.napi));
        list.list_splice_init_into(&mut scratch);
        assert_eq!(scratch.len(), 1);
        // The lock-free length follows every change; an empty list's
        // splice takes nothing.
        scratch.clear();
        list.list_splice_init_into(&mut scratch);
        assert!(scratch.is_empty() && list.is_empty());
        list.list_add_tail(Arc::clone(&f.napi));
        list.list_add_tail(Arc::clone(&f.napi));
        assert_eq!(list.len(), 2);
        assert!(list.pop_front().is_some());
        assert_eq!(list.len(), 1);
        let mut back = list.list_splice_init();
        assert_eq!((back.len(), list.len()), (1, 0));
        list.list_splice(&mut back);
        assert_eq!(list.len(), 1);
        assert_eq!(list.list_splice_init().len(), 1);
        assert!(list.is_empty());
    }

    #[test]
    fn created_disabled_and_listed() {
        let f = fixture(0, NAPI_POLL_WEIGHT);
        assert_eq!(
            f.napi.state(),
            NapiState::SCHED | NapiState::NPSVC | NapiState::LISTED
        );
        assert_eq!(f.napi.weight(), 64);
        assert_eq!(f.napi.napi_id(), MIN_NAPI_ID);
        assert_eq!(f.napi.ifindex(), 3);
        // Scheduling a disabled NAPI is refused (SCHED is held by "disabled").
        assert!(!napi_schedule_on(&f.napi, 0, &f.softirqs).unwrap());
        assert!(f.lists.cpu(0).unwrap().is_empty());
        // A second NAPI gets the next id.
        let other = netif_napi_add(
            &f.lists,
            3,
            FakeRx {
                pool: PagePool::new(PagePoolParams::default()).unwrap(),
                next: 0,
                pending: 0,
                unmasks: Arc::default(),
                polls: Arc::default(),
            },
        );
        assert_eq!(other.napi_id(), MIN_NAPI_ID + 1);
    }

    #[test]
    fn enable_then_schedule_lists_once_and_raises_net_rx() {
        let f = fixture(0, NAPI_POLL_WEIGHT);
        f.napi.napi_enable().unwrap();
        assert_eq!(f.napi.state(), NapiState::LISTED);
        assert!(napi_schedule_on(&f.napi, 1, &f.softirqs).unwrap());
        assert!(f.napi.state().contains(NapiState::SCHED));
        assert_eq!(f.lists.cpu(1).unwrap().len(), 1);
        assert!(net_rx_pending(&f.softirqs, 1));
        assert!(!net_rx_pending(&f.softirqs, 0));
        // Second schedule: not listed again, MISSED remembered.
        assert!(!napi_schedule_on(&f.napi, 1, &f.softirqs).unwrap());
        assert_eq!(f.lists.cpu(1).unwrap().len(), 1);
        assert!(f.napi.state().contains(NapiState::MISSED));
        // Enabling a scheduled (not disabled) NAPI is refused.
        assert_eq!(f.napi.napi_enable(), Err(NapiError::NotDisabled));
    }

    #[test]
    fn schedule_twice_missed_complete_returns_false_and_relists() {
        let f = fixture(3, NAPI_POLL_WEIGHT);
        f.napi.napi_enable().unwrap();
        assert_eq!(f.napi.state(), NapiState::LISTED);
        assert!(f.napi.napi_schedule_prep());
        assert!(!f.napi.napi_schedule_prep());
        assert_eq!(
            f.napi.state(),
            NapiState::LISTED | NapiState::SCHED | NapiState::MISSED
        );
        // The "IRQ" lists it on CPU 0.
        #[allow(clippy::used_underscore_items)]
        __napi_schedule_on(&f.napi, 0, &f.softirqs).unwrap();
        let mut got: Vec<SkBuff> = Vec::new();
        let n = f.lists.cpu(0).unwrap().pop_front().unwrap();
        let r = napi_poll(&n, 0, &f.softirqs, &mut got, Instant::ZERO).unwrap();
        assert_eq!(
            r,
            NapiPollResult {
                work: 3,
                repoll: false
            }
        );
        assert_eq!(got.len(), 3);
        // MISSED: completion refused, NAPI still scheduled and listed again.
        assert_eq!(f.unmasks.load(StdOrdering::Relaxed), 0);
        assert_eq!(f.napi.state(), NapiState::LISTED | NapiState::SCHED);
        assert_eq!(f.lists.cpu(0).unwrap().len(), 1);
        // Polled again: nothing left, completes, may unmask.
        let n = f.lists.cpu(0).unwrap().pop_front().unwrap();
        let r = napi_poll(&n, 0, &f.softirqs, &mut got, Instant::ZERO).unwrap();
        assert_eq!(
            r,
            NapiPollResult {
                work: 0,
                repoll: false
            }
        );
        assert_eq!(f.unmasks.load(StdOrdering::Relaxed), 1);
        assert_eq!(f.napi.state(), NapiState::LISTED);
        assert!(f.lists.cpu(0).unwrap().is_empty());
        assert_eq!(f.polls.load(StdOrdering::Relaxed), 2);
    }

    #[test]
    fn weight_64_with_1000_frames_polls_64_at_a_time() {
        let f = fixture(1000, NAPI_POLL_WEIGHT);
        f.napi.napi_enable().unwrap();
        assert!(napi_schedule_on(&f.napi, 0, &f.softirqs).unwrap());
        let mut got: Vec<SkBuff> = Vec::new();
        let mut works = Vec::new();
        // A tiny net_rx_action: poll, repoll at the tail.
        while let Some(n) = f.lists.cpu(0).unwrap().pop_front() {
            let r = napi_poll(&n, 0, &f.softirqs, &mut got, Instant::ZERO).unwrap();
            works.push(r.work);
            if r.repoll {
                f.lists.cpu(0).unwrap().list_add_tail(n);
            }
        }
        assert_eq!(works.len(), 16);
        assert!(works[..15].iter().all(|&w| w == 64));
        assert_eq!(works[15], 1000 - 15 * 64);
        let idx: Vec<u32> = got
            .iter()
            .map(|s| u32::from_be_bytes(s.data().try_into().unwrap()))
            .collect();
        assert_eq!(idx, (0..1000).collect::<Vec<_>>());
        assert_eq!(f.unmasks.load(StdOrdering::Relaxed), 1);
        assert_eq!(f.napi.state(), NapiState::LISTED);
    }

    #[test]
    fn disable_blocks_scheduling_and_waits_for_the_poll() {
        let f = fixture(200, NAPI_POLL_WEIGHT);
        f.napi.napi_enable().unwrap();
        assert!(napi_schedule_on(&f.napi, 0, &f.softirqs).unwrap());
        // A poll is scheduled: disable cannot finish yet, but blocks new schedules.
        assert!(!f.napi.napi_disable());
        assert!(f.napi.napi_disable_pending());
        assert!(!f.napi.napi_schedule_prep());
        assert!(!f.napi.state().contains(NapiState::MISSED));
        // The poll uses its whole weight; with a disable pending it completes instead of repolling.
        let mut got: Vec<SkBuff> = Vec::new();
        let n = f.lists.cpu(0).unwrap().pop_front().unwrap();
        let r = napi_poll(&n, 0, &f.softirqs, &mut got, Instant::ZERO).unwrap();
        assert_eq!(
            r,
            NapiPollResult {
                work: 64,
                repoll: false
            }
        );
        assert!(!f.napi.napi_is_scheduled());
        assert!(f.napi.napi_disable());
        assert_eq!(
            f.napi.state(),
            NapiState::SCHED | NapiState::NPSVC | NapiState::LISTED
        );
        assert!(f.napi.napi_disable(), "disabling twice is fine");
        assert!(!napi_schedule_on(&f.napi, 0, &f.softirqs).unwrap());
        assert!(f.lists.cpu(0).unwrap().is_empty());
        f.napi.napi_enable().unwrap();
        assert!(napi_schedule_on(&f.napi, 0, &f.softirqs).unwrap());
        assert_eq!(f.napi.napi_enable(), Err(NapiError::NotDisabled));
    }

    #[test]
    fn hard_irq_handler_schedules_on_its_cpu() {
        let f = fixture(5, NAPI_POLL_WEIGHT);
        f.napi.napi_enable().unwrap();
        let wakeup = CpuWakeup::new();
        let irqs = IrqTable::new("test-msi", 32, 2, wakeup).unwrap();
        let napi = Arc::clone(&f.napi);
        let scheduled = Arc::new(StdAtomicUsize::new(0));
        let s = Arc::clone(&scheduled);
        irqs.request_irq(
            24,
            move |_irq: u32, ctx: &mut HardIrqContext<'_>| {
                if napi_schedule(&napi, ctx).unwrap() {
                    s.fetch_add(1, StdOrdering::Relaxed);
                }
                IrqReturn::Handled
            },
            "eth0-rx-0",
        )
        .unwrap();
        irqs.irq_set_affinity(24, 1).unwrap();
        irqs.raise_irq(24).unwrap();
        assert_eq!(irqs.handle_pending(1, &f.softirqs).unwrap(), 1);
        assert_eq!(scheduled.load(StdOrdering::Relaxed), 1);
        assert_eq!(f.lists.cpu(1).unwrap().len(), 1);
        assert!(net_rx_pending(&f.softirqs, 1));
        // A second IRQ while scheduled only marks MISSED.
        irqs.raise_irq(24).unwrap();
        irqs.handle_pending(1, &f.softirqs).unwrap();
        assert_eq!(scheduled.load(StdOrdering::Relaxed), 1);
        assert!(f.napi.state().contains(NapiState::MISSED));
    }

    #[test]
    fn bad_arguments_are_named() {
        let f = fixture(0, NAPI_POLL_WEIGHT);
        f.napi.napi_enable().unwrap();
        assert_eq!(
            napi_schedule_on(&f.napi, 2, &f.softirqs),
            Err(NapiError::CpuOutOfRange { cpu: 2, nr_cpus: 2 })
        );
        // The refused call did not take SCHED.
        assert!(!f.napi.napi_is_scheduled());
        let mut sink: Vec<SkBuff> = Vec::new();
        assert!(napi_poll(&f.napi, 9, &f.softirqs, &mut sink, Instant::ZERO).is_err());
        assert!(matches!(
            PollLists::new(0),
            Err(NapiError::BadArgument {
                name: "nr_cpus",
                ..
            })
        ));
        let drv = FakeRx {
            pool: PagePool::new(PagePoolParams::default()).unwrap(),
            next: 0,
            pending: 0,
            unmasks: Arc::default(),
            polls: Arc::default(),
        };
        let e = netif_napi_add_weight(&f.lists, 1, drv, 0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "bad argument `weight`: accepts 1 or more packets"
        );
    }

    #[test]
    fn dev_weight_follows_the_sysctl() {
        let sysctl = Sysctl::new();
        assert_eq!(dev_weight(&sysctl), 64);
        sysctl.set("net.core.dev_weight", "16").unwrap();
        sysctl.set("net.core.dev_weight_rx_bias", "2").unwrap();
        assert_eq!(dev_weight(&sysctl), 32);
    }

    #[test]
    fn napi_del_clears_listed() {
        let f = fixture(0, NAPI_POLL_WEIGHT);
        assert!(f.napi.netif_napi_del());
        assert!(!f.napi.state().contains(NapiState::LISTED));
        assert!(!f.napi.netif_napi_del());
    }
}
