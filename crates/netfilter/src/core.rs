//! Hook registration and traversal.
//!
//! Mirrors `net/netfilter/core.c`: `nf_register_net_hook()` keeps, for each
//! hook point, an array of entries sorted by priority (`struct
//! nf_hook_entries`), replaced as a whole on every change so that the
//! packet path reads a consistent snapshot without waiting for writers;
//! `nf_hook_slow()` walks that array and applies each verdict.
//!
//! ```text
//!  NfHooks (one per host)            packet path (any CPU)
//!  ┌──────────────────────┐
//!  │ needed[PRE_ROUTING]=2│ ◄── load: 0 → skip (no lock, no RMW)
//!  │ head[PRE_ROUTING] ───┼──► Arc[ (-200, ct) (0, filter) ] ◄── clone, walk
//!  │ ...                  │
//!  └──────────────────────┘   register/unregister: build a new array
//!                              under nf_hook_mutex, swap the head
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use netcore::{DropReason, Errno, SkBuff, kfree_skb_reason};
use parking_lot::{Mutex, RwLock};

use crate::netfilter::{NF_INET_NUMHOOKS, NfHookOps, NfHookState, NfInetHooks, NfSkb, NfVerdict};
use crate::nf_queue::{NfQueueHandler, NfQueueOutcome, nf_queue};

/// The most hooks one hook point accepts (`MAX_HOOK_COUNT`); one more is
/// refused with `E2BIG`.
pub const MAX_HOOK_COUNT: usize = 1024;

/// A hook with the point and priority to register it at.
///
/// Mirrors the registration half of `struct nf_hook_ops` (`hooknum`,
/// `priority`, `pf`) in `include/linux/netfilter.h`; the `hook` function
/// half is the [`NfHookOps`] trait object.
pub struct NfHookReg<C: ?Sized> {
    /// The hook point (`hooknum`).
    pub hooknum: NfInetHooks,
    /// Lower runs first; see the `NF_IP_PRI_*` constants.
    pub priority: i32,
    /// The hook itself.
    pub ops: Arc<dyn NfHookOps<C>>,
}

impl<C: ?Sized> NfHookReg<C> {
    /// A registration of `ops` at `hooknum` with `priority`.
    pub fn new(hooknum: NfInetHooks, priority: i32, ops: Arc<dyn NfHookOps<C>>) -> NfHookReg<C> {
        NfHookReg {
            hooknum,
            priority,
            ops,
        }
    }

    /// A registration of a closure as the hook function.
    pub fn from_fn<F>(hooknum: NfInetHooks, priority: i32, f: F) -> NfHookReg<C>
    where
        F: Fn(NfSkb<'_>, &NfHookState, &mut C) -> NfVerdict + Send + Sync + 'static,
        C: 'static,
    {
        NfHookReg::new(hooknum, priority, Arc::new(FnHook(f)))
    }
}

impl<C: ?Sized> fmt::Debug for NfHookReg<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NfHookReg")
            .field("hooknum", &self.hooknum)
            .field("priority", &self.priority)
            .field("ops", &self.ops.name())
            .finish()
    }
}

/// A closure as an [`NfHookOps`].
struct FnHook<F>(F);

impl<C: ?Sized, F> NfHookOps<C> for FnHook<F>
where
    F: Fn(NfSkb<'_>, &NfHookState, &mut C) -> NfVerdict + Send + Sync,
{
    fn hook(&self, skb: NfSkb<'_>, state: &NfHookState, ctx: &mut C) -> NfVerdict {
        (self.0)(skb, state, ctx)
    }

    fn name(&self) -> &str {
        ::core::any::type_name::<F>()
    }
}

/// Names one registered hook, to unregister it.
///
/// The kernel names a registration by the address of its `nf_hook_ops`;
/// a handle is the Rust counterpart. Handles are unique across every
/// [`NfHooks`] of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a hook can only be unregistered with its handle"]
pub struct NfHookHandle {
    hook: NfInetHooks,
    id: u64,
}

impl NfHookHandle {
    /// The hook point the hook is registered at.
    pub fn hooknum(self) -> NfInetHooks {
        self.hook
    }
}

static NEXT_HOOK_ID: AtomicU64 = AtomicU64::new(1);

/// One hook in an [`NfHookEntries`] array (`struct nf_hook_entry` plus the
/// `nf_hook_ops` pointer kept after the array).
struct NfHookEntry<C: ?Sized> {
    ops: Arc<dyn NfHookOps<C>>,
    priority: i32,
    id: u64,
}

impl<C: ?Sized> Clone for NfHookEntry<C> {
    fn clone(&self) -> Self {
        NfHookEntry {
            ops: Arc::clone(&self.ops),
            priority: self.priority,
            id: self.id,
        }
    }
}

/// What the hook points of one host share with every snapshot: counters
/// and the queue handler.
pub(crate) struct NfShared<C: ?Sized> {
    counters: [HookCounters; NF_INET_NUMHOOKS],
    pub(crate) queue_handler: RwLock<Option<Arc<dyn NfQueueHandler<C>>>>,
}

/// A snapshot of the hooks at one point, sorted by priority.
///
/// Mirrors `struct nf_hook_entries` in `include/linux/netfilter.h`: an
/// immutable array that registration replaces as a whole. A packet walks
/// the snapshot it took, even if hooks are registered or unregistered
/// meanwhile (the kernel gets the same from RCU); cloning it is one atomic
/// increment.
pub struct NfHookEntries<C: ?Sized> {
    inner: Arc<EntriesInner<C>>,
}

struct EntriesInner<C: ?Sized> {
    hook: NfInetHooks,
    hooks: Box<[NfHookEntry<C>]>,
    shared: Arc<NfShared<C>>,
}

impl<C: ?Sized> Clone for NfHookEntries<C> {
    fn clone(&self) -> Self {
        NfHookEntries {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C: ?Sized> NfHookEntries<C> {
    /// The hook point of these entries.
    pub fn hook(&self) -> NfInetHooks {
        self.inner.hook
    }

    /// How many hooks run at this point (`num_hook_entries`).
    pub fn len(&self) -> usize {
        self.inner.hooks.len()
    }

    /// Whether no hook runs (never true of a snapshot [`NfHooks`] hands
    /// out: an empty point has none).
    pub fn is_empty(&self) -> bool {
        self.inner.hooks.is_empty()
    }

    /// The hooks in the order they run, with their priorities.
    pub fn iter(&self) -> impl Iterator<Item = (i32, &dyn NfHookOps<C>)> {
        self.inner.hooks.iter().map(|e| (e.priority, &*e.ops))
    }

    pub(crate) fn shared(&self) -> &NfShared<C> {
        &self.inner.shared
    }

    fn counters(&self) -> &HookCounters {
        &self.inner.shared.counters[self.inner.hook.index()]
    }
}

impl<C: ?Sized> fmt::Debug for NfHookEntries<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NfHookEntries")
            .field("hook", &self.inner.hook)
            .field(
                "hooks",
                &self
                    .iter()
                    .map(|(p, ops)| (p, ops.name()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[derive(Default)]
struct HookCounters {
    packets: AtomicU64,
    accepted: AtomicU64,
    dropped: AtomicU64,
    stolen: AtomicU64,
    queued: AtomicU64,
    reinjected: AtomicU64,
}

impl HookCounters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What happened to the packets that met hooks at one point.
///
/// Netfilter's core keeps no such counters (iptables counts per rule); they
/// are ours, for tests and reports. Only packets that found at least one
/// hook are counted: the empty fast path counts nothing. When no packet is
/// in a queue, `packets + reinjected == accepted + dropped + stolen +
/// queued`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NfHookStats {
    /// Packets that entered [`nf_hook_slow`] from [`nf_hook`](crate::nf_hook).
    pub packets: u64,
    /// Packets every hook accepted (handed back to `okfn`).
    pub accepted: u64,
    /// Packets freed by a DROP verdict, or by a QUEUE verdict that found no
    /// listener and had no bypass.
    pub dropped: u64,
    /// Packets a hook stole.
    pub stolen: u64,
    /// Packets handed to the queue handler.
    pub queued: u64,
    /// Packets given back by the queue handler ([`nf_reinject`](crate::nf_reinject)).
    pub reinjected: u64,
}

/// The hooks of one host (network namespace), at the five IPv4 points.
///
/// Mirrors `net->nf.hooks_ipv4[]` with `nf_hook_mutex` and the
/// `nf_hooks_needed` static keys of `net/netfilter/core.c`. Shared by every
/// CPU of the host (put it in an `Arc`); registration locks, the packet
/// path does not when a point is empty, and otherwise takes a read lock
/// just long enough to clone the snapshot.
pub struct NfHooks<C: ?Sized> {
    heads: [RwLock<Option<NfHookEntries<C>>>; NF_INET_NUMHOOKS],
    /// Hooks per point (`nf_hooks_needed`), read before the head so that an
    /// empty point costs one plain load.
    needed: [AtomicUsize; NF_INET_NUMHOOKS],
    /// Serialises writers (`nf_hook_mutex`).
    nf_hook_mutex: Mutex<()>,
    shared: Arc<NfShared<C>>,
}

impl<C: ?Sized> Default for NfHooks<C> {
    fn default() -> Self {
        NfHooks::new()
    }
}

impl<C: ?Sized> fmt::Debug for NfHooks<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for h in NfInetHooks::ALL {
            m.entry(&h, &self.heads[h.index()].read());
        }
        m.finish()
    }
}

impl<C: ?Sized> NfHooks<C> {
    /// No hook at any point (`netfilter_net_init()`).
    pub fn new() -> NfHooks<C> {
        NfHooks {
            heads: Default::default(),
            needed: Default::default(),
            nf_hook_mutex: Mutex::new(()),
            shared: Arc::new(NfShared {
                counters: Default::default(),
                queue_handler: RwLock::new(None),
            }),
        }
    }

    /// Adds a hook at `reg.hooknum`, ordered by priority.
    ///
    /// Mirrors `nf_register_net_hook()` and `nf_hook_entries_grow()` in
    /// `net/netfilter/core.c`. As in Linux 4.16 and later, a hook goes
    /// *before* the hooks already registered with the same priority (the
    /// kernel copies the old entries while the new priority is strictly
    /// greater, then inserts). Packets already walking the old snapshot do
    /// not see it.
    ///
    /// Errors: `E2BIG` when the point already holds [`MAX_HOOK_COUNT`]
    /// hooks.
    pub fn nf_register_net_hook(&self, reg: NfHookReg<C>) -> Result<NfHookHandle, Errno> {
        let i = reg.hooknum.index();
        let _guard = self.nf_hook_mutex.lock();
        let old = self.heads[i].read().clone();
        let old: &[NfHookEntry<C>] = old.as_ref().map_or(&[], |e| &e.inner.hooks);
        if old.len() >= MAX_HOOK_COUNT {
            return Err(Errno::TooBig);
        }
        let id = NEXT_HOOK_ID.fetch_add(1, Ordering::Relaxed);
        let at = old
            .iter()
            .position(|e| reg.priority <= e.priority)
            .unwrap_or(old.len());
        let mut new = Vec::with_capacity(old.len() + 1);
        new.extend_from_slice(&old[..at]);
        new.push(NfHookEntry {
            ops: reg.ops,
            priority: reg.priority,
            id,
        });
        new.extend_from_slice(&old[at..]);
        self.publish(reg.hooknum, new);
        self.needed[i].fetch_add(1, Ordering::Release);
        tracing::info!(
            target: "netstack::netfilter",
            hook = reg.hooknum.name(),
            priority = reg.priority,
            "nf_register_net_hook"
        );
        Ok(NfHookHandle {
            hook: reg.hooknum,
            id,
        })
    }

    /// Removes the hook `handle` names.
    ///
    /// Mirrors `nf_unregister_net_hook()` in `net/netfilter/core.c`.
    /// Packets walking an older snapshot (or sitting in a queue) may still
    /// call the hook once; the snapshot keeps it alive until they are done,
    /// as `synchronize_net()` waits for them in the kernel.
    ///
    /// Errors: `ENOENT` when no such hook is registered here (the kernel
    /// warns "hook not found!").
    pub fn nf_unregister_net_hook(&self, handle: NfHookHandle) -> Result<(), Errno> {
        let i = handle.hook.index();
        let _guard = self.nf_hook_mutex.lock();
        let old = self.heads[i].read().clone().ok_or(Errno::NoEnt)?;
        if !old.inner.hooks.iter().any(|e| e.id == handle.id) {
            return Err(Errno::NoEnt);
        }
        let new: Vec<_> = old
            .inner
            .hooks
            .iter()
            .filter(|e| e.id != handle.id)
            .cloned()
            .collect();
        self.needed[i].fetch_sub(1, Ordering::Release);
        self.publish(handle.hook, new);
        tracing::info!(target: "netstack::netfilter", hook = handle.hook.name(), "nf_unregister_net_hook");
        Ok(())
    }

    /// Registers several hooks; on an error unregisters those already
    /// added and returns it.
    ///
    /// Mirrors `nf_register_net_hooks()` in `net/netfilter/core.c`.
    pub fn nf_register_net_hooks(
        &self,
        regs: impl IntoIterator<Item = NfHookReg<C>>,
    ) -> Result<Vec<NfHookHandle>, Errno> {
        let mut done = Vec::new();
        for reg in regs {
            match self.nf_register_net_hook(reg) {
                Ok(h) => done.push(h),
                Err(e) => {
                    self.nf_unregister_net_hooks(&done);
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// Unregisters several hooks, last first, skipping unknown handles.
    ///
    /// Mirrors `nf_unregister_net_hooks()` in `net/netfilter/core.c`.
    pub fn nf_unregister_net_hooks(&self, handles: &[NfHookHandle]) {
        for &h in handles.iter().rev() {
            // An unknown handle is what the kernel only warns about.
            let _ = self.nf_unregister_net_hook(h);
        }
    }

    /// Replaces the snapshot of `hook` (caller holds `nf_hook_mutex`).
    fn publish(&self, hook: NfInetHooks, hooks: Vec<NfHookEntry<C>>) {
        let new = if hooks.is_empty() {
            None
        } else {
            Some(NfHookEntries {
                inner: Arc::new(EntriesInner {
                    hook,
                    hooks: hooks.into_boxed_slice(),
                    shared: Arc::clone(&self.shared),
                }),
            })
        };
        // The old snapshot is dropped after the write lock is released, so a
        // hook's destructor never runs under it.
        let old = std::mem::replace(&mut *self.heads[hook.index()].write(), new);
        drop(old);
    }

    /// The current snapshot of `hook`, or `None` when no hook is
    /// registered there.
    ///
    /// Mirrors `nf_hook_entries_head()` in `net/netfilter/core.c` together
    /// with the `nf_hooks_needed` static-key test of `nf_hook()`: an empty
    /// point costs one atomic load, no lock and no reference count.
    #[inline]
    pub fn nf_hook_entries_head(&self, hook: NfInetHooks) -> Option<NfHookEntries<C>> {
        let i = hook.index();
        if self.needed[i].load(Ordering::Acquire) == 0 {
            return None;
        }
        self.heads[i].read().clone()
    }

    /// Runs the hooks of `state.hook` over `skb`, for a caller that holds
    /// the hooks apart from its context. See [`nf_hook`](crate::nf_hook).
    #[inline]
    pub fn nf_hook(&self, state: &NfHookState, skb: SkBuff, ctx: &mut C) -> NfHookResult {
        match self.nf_hook_entries_head(state.hook) {
            None => NfHookResult::Continue(skb),
            Some(entries) => nf_hook_slow(skb, state, &entries, 0, ctx),
        }
    }

    /// The counters of `hook`.
    pub fn stats(&self, hook: NfInetHooks) -> NfHookStats {
        let c = &self.shared.counters[hook.index()];
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NfHookStats {
            packets: get(&c.packets),
            accepted: get(&c.accepted),
            dropped: get(&c.dropped),
            stolen: get(&c.stolen),
            queued: get(&c.queued),
            reinjected: get(&c.reinjected),
        }
    }

    /// Installs the handler that QUEUE verdicts hand packets to, replacing
    /// any previous one.
    ///
    /// Mirrors `nf_register_queue_handler()` in `net/netfilter/nf_queue.c`.
    ///
    /// # Deviations from Linux
    /// The handler is per host here; Linux keeps one global handler
    /// (`nfnetlink_queue`) which looks up the queue in the packet's netns.
    pub fn nf_register_queue_handler(&self, qh: Arc<dyn NfQueueHandler<C>>) {
        *self.shared.queue_handler.write() = Some(qh);
    }

    /// Removes the queue handler; QUEUE verdicts then drop (or bypass).
    ///
    /// Mirrors `nf_unregister_queue_handler()` in `net/netfilter/nf_queue.c`.
    pub fn nf_unregister_queue_handler(&self) {
        let old = self.shared.queue_handler.write().take();
        drop(old);
    }
}

/// What became of a packet that did not come out of the hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfConsumed {
    /// A hook returned DROP; the packet was freed with
    /// [`DropReason::NetfilterDrop`]. The errno is the one the verdict
    /// carried, `EPERM` by default.
    Dropped(Errno),
    /// A hook stole the packet.
    Stolen,
    /// The queue handler holds the packet; it comes back through
    /// [`nf_reinject`](crate::nf_reinject).
    Queued,
    /// A QUEUE verdict could not queue the packet (`ESRCH`: no handler or
    /// no listener on the queue, without bypass) and it was freed.
    QueueFailed(Errno),
}

impl NfConsumed {
    /// The kernel's return value of `nf_hook()`/`NF_HOOK()` for this
    /// outcome: `-errno` for a DROP, 0 otherwise.
    pub fn ret(self) -> i32 {
        match self {
            NfConsumed::Dropped(e) => -(e as i32),
            NfConsumed::Stolen | NfConsumed::Queued | NfConsumed::QueueFailed(_) => 0,
        }
    }
}

/// The result of running the hooks of one point.
///
/// The Rust shape of `nf_hook_slow()`'s `int`: `1` becomes
/// [`Continue`](NfHookResult::Continue) with the packet, everything else
/// [`Consumed`](NfHookResult::Consumed).
#[derive(Debug)]
#[must_use = "a Continue result holds the packet, to hand to okfn"]
pub enum NfHookResult {
    /// Every hook accepted; the caller continues with `okfn(skb)`.
    Continue(SkBuff),
    /// The packet is gone from the caller's hands.
    Consumed(NfConsumed),
}

impl NfHookResult {
    /// The kernel's return value: 1 for continue, else as
    /// [`NfConsumed::ret`].
    pub fn ret(&self) -> i32 {
        match self {
            NfHookResult::Continue(_) => 1,
            NfHookResult::Consumed(c) => c.ret(),
        }
    }
}

/// Runs the hooks of a snapshot over `skb`, from entry `s` on.
///
/// Mirrors `nf_hook_slow()` in `net/netfilter/core.c`: ACCEPT goes on to
/// the next entry, DROP frees the packet and returns its errno (`EPERM`
/// by default), STOLEN leaves it to the hook, QUEUE hands it to the queue
/// handler (and goes on if that fails with bypass set), REPEAT calls the
/// same entry again. Consumes `skb`; it comes back only in
/// [`NfHookResult::Continue`].
///
/// Called from the caller's CPU with its context; hooks run in priority
/// order on this thread.
///
/// Counters: `packets` and one of the outcomes of [`NfHookStats`].
/// Drops: [`DropReason::NetfilterDrop`].
///
/// # Deviations from Linux
/// A hook that returns STOLEN without calling [`NfSkb::steal`] cannot
/// keep the packet here; it is freed (counted as stolen). A hook that
/// steals and returns another verdict is counted as stolen too. See
/// [`NfVerdict`] for REPEAT.
#[tracing::instrument(level = "trace", skip_all, fields(hook = state.hook.name(), len = skb.len()))]
pub fn nf_hook_slow<C: ?Sized>(
    skb: SkBuff,
    state: &NfHookState,
    entries: &NfHookEntries<C>,
    s: usize,
    ctx: &mut C,
) -> NfHookResult {
    HookCounters::bump(&entries.counters().packets);
    nf_iterate(skb, state, entries, s, None, ctx)
}

/// Walks `entries` from `i`; when `pending` is given it is the verdict of
/// entry `i` (a reinjected packet), else entry `i` is called. Shared by
/// [`nf_hook_slow`] and `nf_reinject()`, as the kernel's `nf_iterate()`.
pub(crate) fn nf_iterate<C: ?Sized>(
    skb: SkBuff,
    state: &NfHookState,
    entries: &NfHookEntries<C>,
    mut i: usize,
    mut pending: Option<NfVerdict>,
    ctx: &mut C,
) -> NfHookResult {
    let counters = entries.counters();
    let hooks = &entries.inner.hooks;
    let mut slot = Some(skb);
    while i < hooks.len() {
        let verdict = match pending.take() {
            Some(v) => v,
            None => match NfSkb::new(&mut slot) {
                Some(handle) => hooks[i].ops.hook(handle, state, ctx),
                None => NfVerdict::Stolen,
            },
        };
        // ACCEPT and REPEAT leave the packet where it is, without moving it.
        if slot.is_some() {
            match verdict {
                NfVerdict::Accept => {
                    i += 1;
                    continue;
                }
                NfVerdict::Repeat => continue,
                _ => {}
            }
        }
        let Some(skb) = slot.take() else {
            // The hook stole the packet, whatever it returned.
            if verdict != NfVerdict::Stolen {
                tracing::debug!(
                    target: "netstack::netfilter",
                    hook = hooks[i].ops.name(),
                    verdict = verdict.name(),
                    "hook stole the packet but did not return NF_STOLEN"
                );
            }
            HookCounters::bump(&counters.stolen);
            return NfHookResult::Consumed(NfConsumed::Stolen);
        };
        match verdict {
            NfVerdict::Accept => {
                slot = Some(skb);
                i += 1;
            }
            NfVerdict::Repeat => slot = Some(skb),
            NfVerdict::Drop(err) => {
                HookCounters::bump(&counters.dropped);
                kfree_skb_reason(skb, DropReason::NetfilterDrop);
                return NfHookResult::Consumed(NfConsumed::Dropped(err.unwrap_or(Errno::Perm)));
            }
            NfVerdict::Stolen => {
                tracing::debug!(
                    target: "netstack::netfilter",
                    hook = hooks[i].ops.name(),
                    "NF_STOLEN without stealing: freeing the packet"
                );
                HookCounters::bump(&counters.stolen);
                kfree_skb_reason(skb, DropReason::NetfilterDrop);
                return NfHookResult::Consumed(NfConsumed::Stolen);
            }
            NfVerdict::Queue { num, bypass } => {
                match nf_queue(skb, state, entries, i, num, bypass, ctx) {
                    NfQueueOutcome::Queued => {
                        HookCounters::bump(&counters.queued);
                        return NfHookResult::Consumed(NfConsumed::Queued);
                    }
                    NfQueueOutcome::Bypass(skb) => {
                        slot = Some(skb);
                        i += 1;
                    }
                    NfQueueOutcome::Dropped(err) => {
                        HookCounters::bump(&counters.dropped);
                        return NfHookResult::Consumed(NfConsumed::QueueFailed(err));
                    }
                }
            }
        }
    }
    // The loop returns as soon as the slot empties, so it is full here.
    if let Some(skb) = slot {
        HookCounters::bump(&counters.accepted);
        NfHookResult::Continue(skb)
    } else {
        HookCounters::bump(&counters.stolen);
        NfHookResult::Consumed(NfConsumed::Stolen)
    }
}

/// Counts a packet given back by the queue handler.
pub(crate) fn count_reinject<C: ?Sized>(entries: &NfHookEntries<C>) {
    HookCounters::bump(&entries.counters().reinjected);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netfilter::{NF_HOOK, NfHookContext};
    use crate::netfilter_ipv4::*;
    use netcore::{PagePool, PagePoolParams};

    /// A per-CPU context: the host's hooks plus what the hooks record.
    struct Cpu {
        hooks: Arc<NfHooks<Cpu>>,
        log: Vec<&'static str>,
        kept: Vec<SkBuff>,
        calls: u32,
    }

    impl NfHookContext for Cpu {
        fn nf_hooks(&self) -> &NfHooks<Cpu> {
            &self.hooks
        }
    }

    fn cpu() -> Cpu {
        Cpu {
            hooks: Arc::new(NfHooks::new()),
            log: Vec::new(),
            kept: Vec::new(),
            calls: 0,
        }
    }

    fn pool() -> PagePool {
        PagePool::new(PagePoolParams::default()).unwrap()
    }

    fn skb(pool: &PagePool) -> SkBuff {
        SkBuff::from_slice(pool, 0, &[0x45; 60]).unwrap()
    }

    const IN: NfHookState = NfHookState::new(NfInetHooks::LocalIn, 1, 0);

    fn logger(
        hook: NfInetHooks,
        priority: i32,
        name: &'static str,
        verdict: NfVerdict,
    ) -> NfHookReg<Cpu> {
        NfHookReg::from_fn(hook, priority, move |_skb, _st, cpu: &mut Cpu| {
            cpu.log.push(name);
            verdict
        })
    }

    #[test]
    fn hooks_run_by_priority_and_new_equal_priorities_go_first() {
        let mut c = cpu();
        let h = Arc::clone(&c.hooks);
        let at = NfInetHooks::LocalIn;
        let _ = h.nf_register_net_hook(logger(at, NF_IP_PRI_FILTER, "filter", NfVerdict::Accept));
        let _ = h.nf_register_net_hook(logger(at, NF_IP_PRI_LAST, "last", NfVerdict::Accept));
        let _ = h.nf_register_net_hook(logger(at, NF_IP_PRI_CONNTRACK, "ct", NfVerdict::Accept));
        let _ = h.nf_register_net_hook(logger(at, NF_IP_PRI_FIRST, "first", NfVerdict::Accept));
        // Same priority as "filter", registered later: Linux 6.x puts it before.
        let _ = h.nf_register_net_hook(logger(at, NF_IP_PRI_FILTER, "filter2", NfVerdict::Accept));
        // Another hook point is not run.
        let _ = h.nf_register_net_hook(logger(
            NfInetHooks::Forward,
            NF_IP_PRI_FILTER,
            "forward",
            NfVerdict::DROP,
        ));
        let pool = pool();
        let out = NF_HOOK(&mut c, &IN, skb(&pool), |_, skb| skb.len());
        assert_eq!(out, Ok(60));
        assert_eq!(c.log, ["first", "ct", "filter2", "filter", "last"]);
        let prios: Vec<i32> = h
            .nf_hook_entries_head(at)
            .unwrap()
            .iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(prios, [i32::MIN, -200, 0, 0, i32::MAX]);
        assert_eq!(
            h.stats(at),
            NfHookStats {
                packets: 1,
                accepted: 1,
                ..NfHookStats::default()
            }
        );
    }

    #[test]
    fn drop_frees_the_buffer_stops_the_walk_and_returns_eperm() {
        let mut c = cpu();
        let h = Arc::clone(&c.hooks);
        let _ = h.nf_register_net_hook(logger(IN.hook, -10, "dropper", NfVerdict::DROP));
        let _ = h.nf_register_net_hook(logger(IN.hook, 10, "after", NfVerdict::Accept));
        let pool = pool();
        let mut okfn_ran = false;
        let out = NF_HOOK(&mut c, &IN, skb(&pool), |_, _| okfn_ran = true);
        assert_eq!(out, Err(NfConsumed::Dropped(Errno::Perm)));
        assert_eq!(out.unwrap_err().ret(), -1);
        assert!(!okfn_ran);
        assert_eq!(c.log, ["dropper"]);
        assert_eq!(pool.stats().inflight(), 0);
        assert_eq!(h.stats(IN.hook).dropped, 1);
    }

    #[test]
    fn drop_err_carries_the_errno() {
        let c = cpu();
        let out_state = NfHookState::new(NfInetHooks::LocalOut, 0, 2);
        let _ = c.hooks.nf_register_net_hook(logger(
            NfInetHooks::LocalOut,
            0,
            "reject",
            NfVerdict::Drop(Some(Errno::Acces)),
        ));
        let pool = pool();
        let r = c.hooks.nf_hook(&out_state, skb(&pool), &mut cpu());
        assert_eq!(r.ret(), -13);
        assert!(matches!(
            r,
            NfHookResult::Consumed(NfConsumed::Dropped(Errno::Acces))
        ));
    }

    #[test]
    fn stolen_packet_stays_alive_in_the_hook() {
        let mut c = cpu();
        let h = Arc::clone(&c.hooks);
        let _ = h.nf_register_net_hook(NfHookReg::from_fn(IN.hook, 0, |skb, _, cpu: &mut Cpu| {
            cpu.kept.push(skb.steal());
            NfVerdict::Stolen
        }));
        let _ = h.nf_register_net_hook(logger(IN.hook, 10, "after", NfVerdict::Accept));
        let pool = pool();
        let out = NF_HOOK(&mut c, &IN, skb(&pool), |_, _| ());
        assert_eq!(out, Err(NfConsumed::Stolen));
        assert!(c.log.is_empty());
        assert_eq!(pool.stats().inflight(), 1);
        assert_eq!(c.kept[0].len(), 60);
        c.kept.clear();
        assert_eq!(pool.stats().inflight(), 0);
        assert_eq!(h.stats(IN.hook).stolen, 1);
    }

    #[test]
    fn stolen_verdict_without_stealing_frees_the_packet() {
        let mut c = cpu();
        let _ = c
            .hooks
            .nf_register_net_hook(logger(IN.hook, 0, "liar", NfVerdict::Stolen));
        let pool = pool();
        assert_eq!(
            NF_HOOK(&mut c, &IN, skb(&pool), |_, _| ()),
            Err(NfConsumed::Stolen)
        );
        assert_eq!(pool.stats().inflight(), 0);
    }

    #[test]
    fn steal_with_accept_verdict_still_counts_as_stolen() {
        let mut c = cpu();
        let _ = c.hooks.nf_register_net_hook(NfHookReg::from_fn(
            IN.hook,
            0,
            |skb, _, cpu: &mut Cpu| {
                cpu.kept.push(skb.steal());
                NfVerdict::Accept
            },
        ));
        let pool = pool();
        assert_eq!(
            NF_HOOK(&mut c, &IN, skb(&pool), |_, _| ()),
            Err(NfConsumed::Stolen)
        );
        assert_eq!(c.kept.len(), 1);
    }

    #[test]
    fn repeat_reruns_the_same_hook_then_continues() {
        let mut c = cpu();
        let h = Arc::clone(&c.hooks);
        let _ = h.nf_register_net_hook(logger(IN.hook, -10, "before", NfVerdict::Accept));
        let _ = h.nf_register_net_hook(NfHookReg::from_fn(IN.hook, 0, |_, _, cpu: &mut Cpu| {
            cpu.calls += 1;
            cpu.log.push("repeater");
            if cpu.calls == 1 {
                NfVerdict::Repeat
            } else {
                NfVerdict::Accept
            }
        }));
        let _ = h.nf_register_net_hook(logger(IN.hook, 10, "after", NfVerdict::Accept));
        let pool = pool();
        assert_eq!(NF_HOOK(&mut c, &IN, skb(&pool), |_, _| 1), Ok(1));
        assert_eq!(c.log, ["before", "repeater", "repeater", "after"]);
    }

    #[test]
    fn queue_without_handler_drops_and_with_bypass_continues() {
        let mut c = cpu();
        let h = Arc::clone(&c.hooks);
        let q = h
            .nf_register_net_hook(logger(
                IN.hook,
                0,
                "nfqueue",
                NfVerdict::Queue {
                    num: 3,
                    bypass: false,
                },
            ))
            .unwrap();
        let _ = h.nf_register_net_hook(logger(IN.hook, 10, "after", NfVerdict::Accept));
        let pool = pool();
        let out = NF_HOOK(&mut c, &IN, skb(&pool), |_, _| ());
        assert_eq!(out, Err(NfConsumed::QueueFailed(Errno::Srch)));
        assert_eq!(out.unwrap_err().ret(), 0);
        assert_eq!(pool.stats().inflight(), 0);
        assert_eq!(c.log, ["nfqueue"]);

        h.nf_unregister_net_hook(q).unwrap();
        let _ = h.nf_register_net_hook(logger(
            IN.hook,
            0,
            "bypass",
            NfVerdict::Queue {
                num: 3,
                bypass: true,
            },
        ));
        c.log.clear();
        assert_eq!(NF_HOOK(&mut c, &IN, skb(&pool), |_, s| s.len()), Ok(60));
        assert_eq!(c.log, ["bypass", "after"]);
        let st = h.stats(IN.hook);
        assert_eq!(
            (st.packets, st.dropped, st.accepted, st.queued),
            (2, 1, 1, 0)
        );
    }

    #[test]
    fn unregister_removes_the_hook_and_unknown_handles_are_enoent() {
        let mut c = cpu();
        let h = Arc::clone(&c.hooks);
        let a = h
            .nf_register_net_hook(logger(IN.hook, 0, "a", NfVerdict::Accept))
            .unwrap();
        let b = h
            .nf_register_net_hook(logger(IN.hook, 5, "b", NfVerdict::DROP))
            .unwrap();
        assert_eq!(b.hooknum(), NfInetHooks::LocalIn);
        h.nf_unregister_net_hook(b).unwrap();
        assert_eq!(h.nf_unregister_net_hook(b), Err(Errno::NoEnt));
        let pool = pool();
        assert_eq!(NF_HOOK(&mut c, &IN, skb(&pool), |_, _| ()), Ok(()));
        assert_eq!(c.log, ["a"]);
        h.nf_unregister_net_hook(a).unwrap();
        assert!(h.nf_hook_entries_head(IN.hook).is_none());
        // A handle from another host is unknown here.
        let other: NfHooks<Cpu> = NfHooks::new();
        let foreign = other
            .nf_register_net_hook(logger(IN.hook, 0, "x", NfVerdict::Accept))
            .unwrap();
        assert_eq!(h.nf_unregister_net_hook(foreign), Err(Errno::NoEnt));
    }

    #[test]
    fn a_packet_keeps_the_snapshot_it_started_with() {
        let c = cpu();
        let h = Arc::clone(&c.hooks);
        let a = h
            .nf_register_net_hook(logger(IN.hook, 0, "a", NfVerdict::Accept))
            .unwrap();
        let snap = h.nf_hook_entries_head(IN.hook).unwrap();
        h.nf_unregister_net_hook(a).unwrap();
        assert_eq!(snap.len(), 1);
        let mut c2 = cpu();
        let pool = pool();
        let r = nf_hook_slow(skb(&pool), &IN, &snap, 0, &mut c2);
        assert!(matches!(r, NfHookResult::Continue(_)));
        assert_eq!(c2.log, ["a"]);
    }

    #[test]
    fn empty_points_take_the_fast_path_and_count_nothing() {
        let mut c = cpu();
        let h = Arc::clone(&c.hooks);
        let _ = h.nf_register_net_hook(logger(NfInetHooks::Forward, 0, "fwd", NfVerdict::DROP));
        assert!(h.nf_hook_entries_head(IN.hook).is_none());
        let pool = pool();
        assert_eq!(NF_HOOK(&mut c, &IN, skb(&pool), |_, s| s.len()), Ok(60));
        assert_eq!(h.stats(IN.hook), NfHookStats::default());
        assert_eq!(pool.stats().inflight(), 0);
    }

    #[test]
    fn a_mark_set_by_one_hook_is_seen_by_the_next() {
        let mut c = cpu();
        let h = Arc::clone(&c.hooks);
        // iptables -t mangle -j MARK --set-mark 42; then a filter on the mark.
        let _ = h.nf_register_net_hook(NfHookReg::from_fn(
            IN.hook,
            NF_IP_PRI_MANGLE,
            |mut skb, _, _: &mut Cpu| {
                skb.mark = 42;
                NfVerdict::Accept
            },
        ));
        let _ = h.nf_register_net_hook(NfHookReg::from_fn(
            IN.hook,
            NF_IP_PRI_FILTER,
            |skb, _, _: &mut Cpu| {
                if skb.mark == 42 {
                    NfVerdict::DROP
                } else {
                    NfVerdict::Accept
                }
            },
        ));
        let pool = pool();
        assert_eq!(
            NF_HOOK(&mut c, &IN, skb(&pool), |_, _| ()),
            Err(NfConsumed::Dropped(Errno::Perm))
        );
        // With the hooks passing it, okfn sees the mark too.
        let mut c2 = cpu();
        let _ = c2.hooks.nf_register_net_hook(NfHookReg::from_fn(
            IN.hook,
            0,
            |mut skb, _, _: &mut Cpu| {
                skb.mark |= 1;
                NfVerdict::Accept
            },
        ));
        assert_eq!(NF_HOOK(&mut c2, &IN, skb(&pool), |_, s| s.mark), Ok(1));
    }

    #[test]
    fn the_hook_sees_the_state() {
        let mut c = cpu();
        let fwd = NfHookState::new(NfInetHooks::Forward, 4, 7);
        let _ = c.hooks.nf_register_net_hook(NfHookReg::from_fn(
            NfInetHooks::Forward,
            0,
            |_, st, cpu: &mut Cpu| {
                cpu.calls = st.in_ifindex * 10 + st.out_ifindex;
                NfVerdict::Accept
            },
        ));
        let pool = pool();
        assert_eq!(NF_HOOK(&mut c, &fwd, skb(&pool), |_, _| ()), Ok(()));
        assert_eq!(c.calls, 47);
    }

    #[test]
    fn registration_is_refused_past_max_hook_count_and_batches_roll_back() {
        let h: NfHooks<Cpu> = NfHooks::new();
        let many: Vec<_> = (0..MAX_HOOK_COUNT - 1)
            .map(|i| logger(IN.hook, i as i32, "n", NfVerdict::Accept))
            .collect();
        let handles = h.nf_register_net_hooks(many).unwrap();
        // A batch of two with room for one: the first is rolled back.
        let two = [
            logger(IN.hook, 0, "a", NfVerdict::Accept),
            logger(IN.hook, 0, "b", NfVerdict::Accept),
        ];
        assert_eq!(h.nf_register_net_hooks(two), Err(Errno::TooBig));
        assert_eq!(
            h.nf_hook_entries_head(IN.hook).unwrap().len(),
            MAX_HOOK_COUNT - 1
        );
        let last = h.nf_register_net_hook(logger(IN.hook, 0, "last", NfVerdict::Accept));
        assert!(last.is_ok());
        assert_eq!(
            h.nf_register_net_hook(logger(IN.hook, 0, "one too many", NfVerdict::Accept)),
            Err(Errno::TooBig)
        );
        h.nf_unregister_net_hooks(&handles);
        assert_eq!(h.nf_hook_entries_head(IN.hook).unwrap().len(), 1);
    }

    #[test]
    fn hooks_are_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<NfHooks<Cpu>>();
        assert_send_sync::<NfHookEntries<Cpu>>();
    }
}
