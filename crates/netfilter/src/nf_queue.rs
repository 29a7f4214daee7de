//! Handing packets to a queue handler, and taking them back.
//!
//! Mirrors `net/netfilter/nf_queue.c`: a hook's QUEUE verdict passes the
//! packet, with where it stopped, to the registered queue handler (in
//! Linux `nfnetlink_queue`, which sends it to a userspace program); the
//! handler later gives a verdict with `nf_reinject()`, and the walk resumes
//! after the hook that queued it.
//!
//! ```text
//!  nf_hook_slow ─ hook i: QUEUE(num) ─► nf_queue ─► handler.outfn(entry, num)
//!                                          │ Err(ESRCH) + bypass → hook i+1
//!                                          │ Err(_)              → kfree_skb
//!  later:  nf_reinject(entry, ACCEPT) ─► hooks i+1.. ─► Continue(skb) → okfn
//! ```

use std::fmt;

use netcore::{DropReason, Errno, SkBuff, kfree_skb_reason};

use crate::core::{NfHookEntries, NfHookResult, count_reinject, nf_iterate};
use crate::netfilter::{NfHookState, NfVerdict};

/// A queued packet and where its walk through the hooks stopped.
///
/// Mirrors `struct nf_queue_entry` in `include/net/netfilter/nf_queue.h`.
///
/// # Deviations from Linux
/// The entry keeps the hook snapshot it was queued from, so
/// [`nf_reinject`] resumes on the same hooks even if some were
/// unregistered meanwhile; Linux instead re-reads the current hooks and
/// flushes the queues when a hook goes away (`nf_queue_nf_hook_drop()`).
pub struct NfQueueEntry<C: ?Sized> {
    /// The packet (the handler may read and modify it).
    pub skb: SkBuff,
    /// The hook state the packet was queued with.
    pub state: NfHookState,
    hook_index: usize,
    entries: NfHookEntries<C>,
}

impl<C: ?Sized> NfQueueEntry<C> {
    /// The position, in priority order, of the hook that queued the packet
    /// (`hook_index`).
    pub fn hook_index(&self) -> usize {
        self.hook_index
    }
}

impl<C: ?Sized> fmt::Debug for NfQueueEntry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NfQueueEntry")
            .field("skb", &self.skb)
            .field("state", &self.state)
            .field("hook_index", &self.hook_index)
            .finish_non_exhaustive()
    }
}

/// Where QUEUE verdicts send packets.
///
/// Mirrors `struct nf_queue_handler` in `include/net/netfilter/nf_queue.h`
/// (its `outfn`); register it with
/// [`NfHooks::nf_register_queue_handler`](crate::NfHooks::nf_register_queue_handler).
pub trait NfQueueHandler<C: ?Sized>: Send + Sync {
    /// Takes `entry` onto queue `queuenum`. On failure gives the entry back
    /// with the errno: `ESRCH` when nobody listens on that queue (then a
    /// bypass verdict lets the packet through), anything else drops it.
    // The entry goes back by value, as the style guide's "give ownership
    // back on failure" asks; boxing it would allocate on every refusal.
    #[allow(clippy::result_large_err)]
    fn outfn(
        &self,
        entry: NfQueueEntry<C>,
        queuenum: u16,
        ctx: &mut C,
    ) -> Result<(), (NfQueueEntry<C>, Errno)>;
}

/// What `nf_queue` did with a packet.
pub(crate) enum NfQueueOutcome {
    /// The handler holds it.
    Queued,
    /// Nobody listens and the verdict had bypass: go on with the next hook.
    Bypass(SkBuff),
    /// Freed; the errno says why.
    Dropped(Errno),
}

/// Hands `skb`, stopped at entry `index` of `entries`, to the queue
/// handler.
///
/// Mirrors `nf_queue()` and `__nf_queue()` in `net/netfilter/nf_queue.c`.
///
/// # Deviations from Linux
/// A packet that cannot be queued is freed with
/// [`DropReason::NetfilterDrop`] (Linux uses a plain `kfree_skb()`, reason
/// `NOT_SPECIFIED`), so drop monitors name netfilter.
pub(crate) fn nf_queue<C: ?Sized>(
    skb: SkBuff,
    state: &NfHookState,
    entries: &NfHookEntries<C>,
    index: usize,
    queuenum: u16,
    bypass: bool,
    ctx: &mut C,
) -> NfQueueOutcome {
    let handler = entries.shared().queue_handler.read().clone();
    let (skb, err) = match handler {
        None => (skb, Errno::Srch),
        Some(qh) => {
            let entry = NfQueueEntry {
                skb,
                state: *state,
                hook_index: index,
                entries: entries.clone(),
            };
            match qh.outfn(entry, queuenum, ctx) {
                Ok(()) => return NfQueueOutcome::Queued,
                Err((entry, err)) => (entry.skb, err),
            }
        }
    };
    if err == Errno::Srch && bypass {
        return NfQueueOutcome::Bypass(skb);
    }
    tracing::trace!(target: "netstack::netfilter", queuenum, err = err.name(), "nf_queue failed");
    kfree_skb_reason(skb, DropReason::NetfilterDrop);
    NfQueueOutcome::Dropped(err)
}

/// Gives a queued packet back with the handler's verdict and resumes its
/// walk.
///
/// Mirrors `nf_reinject()` in `net/netfilter/nf_queue.c`: ACCEPT continues
/// with the hook after the one that queued the packet, REPEAT calls that
/// hook again, DROP frees it, QUEUE queues it again. Returns
/// [`NfHookResult::Continue`] when the packet came through every hook:
/// the caller then runs the `okfn` of that hook point (the one
/// `entry.state.hook` names).
///
/// Counters: `reinjected`, then the outcome. Drops:
/// [`DropReason::NetfilterDrop`].
///
/// # Deviations from Linux
/// Linux calls `state->okfn` itself; here the result goes back to the
/// caller, who knows which stage follows the hook point. A STOLEN verdict
/// cannot leave the packet with the handler (it gave the packet back), so
/// the packet is freed.
pub fn nf_reinject<C: ?Sized>(
    entry: NfQueueEntry<C>,
    verdict: NfVerdict,
    ctx: &mut C,
) -> NfHookResult {
    let NfQueueEntry {
        skb,
        state,
        hook_index,
        entries,
    } = entry;
    count_reinject(&entries);
    match verdict {
        NfVerdict::Accept => nf_iterate(skb, &state, &entries, hook_index + 1, None, ctx),
        NfVerdict::Repeat => nf_iterate(skb, &state, &entries, hook_index, None, ctx),
        other => nf_iterate(skb, &state, &entries, hook_index, Some(other), ctx),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use netcore::{PagePool, PagePoolParams};
    use parking_lot::Mutex;

    use super::*;
    use crate::core::{NfConsumed, NfHookReg, NfHooks};
    use crate::netfilter::{NfInetHooks, NfSkb};

    struct Cpu {
        log: Vec<&'static str>,
    }

    /// Holds packets on queue 0; nobody listens on the others; queue 9
    /// fails with ENOMEM.
    #[derive(Default)]
    struct Userspace {
        held: Mutex<Vec<NfQueueEntry<Cpu>>>,
    }

    impl NfQueueHandler<Cpu> for Userspace {
        fn outfn(
            &self,
            entry: NfQueueEntry<Cpu>,
            queuenum: u16,
            _ctx: &mut Cpu,
        ) -> Result<(), (NfQueueEntry<Cpu>, Errno)> {
            match queuenum {
                0 => {
                    self.held.lock().push(entry);
                    Ok(())
                }
                9 => Err((entry, Errno::NoMem)),
                _ => Err((entry, Errno::Srch)),
            }
        }
    }

    const IN: NfHookState = NfHookState::new(NfInetHooks::LocalIn, 1, 0);

    fn setup(queue: NfVerdict) -> (NfHooks<Cpu>, Arc<Userspace>) {
        let hooks = NfHooks::new();
        let us = Arc::new(Userspace::default());
        hooks.nf_register_queue_handler(us.clone());
        let _ = hooks.nf_register_net_hook(NfHookReg::from_fn(
            IN.hook,
            -10,
            |_: NfSkb<'_>, _: &NfHookState, c: &mut Cpu| {
                c.log.push("first");
                NfVerdict::Accept
            },
        ));
        let _ = hooks.nf_register_net_hook(NfHookReg::from_fn(
            IN.hook,
            0,
            move |_: NfSkb<'_>, _: &NfHookState, c: &mut Cpu| {
                c.log.push("queue");
                queue
            },
        ));
        let _ = hooks.nf_register_net_hook(NfHookReg::from_fn(
            IN.hook,
            10,
            |_: NfSkb<'_>, _: &NfHookState, c: &mut Cpu| {
                c.log.push("after");
                NfVerdict::Accept
            },
        ));
        (hooks, us)
    }

    fn skb(pool: &PagePool) -> SkBuff {
        SkBuff::from_slice(pool, 0, &[1; 40]).unwrap()
    }

    #[test]
    fn queued_packet_is_held_then_reinjected_after_the_queueing_hook() {
        let (hooks, us) = setup(NfVerdict::Queue {
            num: 0,
            bypass: false,
        });
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut cpu = Cpu { log: vec![] };
        let r = hooks.nf_hook(&IN, skb(&pool), &mut cpu);
        assert!(matches!(r, NfHookResult::Consumed(NfConsumed::Queued)));
        assert_eq!(pool.stats().inflight(), 1);
        assert_eq!(cpu.log, ["first", "queue"]);

        let entry = us.held.lock().pop().unwrap();
        assert_eq!((entry.hook_index(), entry.state), (1, IN));
        match nf_reinject(entry, NfVerdict::Accept, &mut cpu) {
            NfHookResult::Continue(skb) => assert_eq!(skb.len(), 40),
            other @ NfHookResult::Consumed(_) => panic!("expected Continue, got {other:?}"),
        }
        assert_eq!(cpu.log, ["first", "queue", "after"]);
        let st = hooks.stats(IN.hook);
        assert_eq!(
            (st.packets, st.queued, st.reinjected, st.accepted),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn reinject_drop_frees_and_repeat_reruns_the_queueing_hook() {
        let (hooks, us) = setup(NfVerdict::Queue {
            num: 0,
            bypass: false,
        });
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut cpu = Cpu { log: vec![] };
        let _ = hooks.nf_hook(&IN, skb(&pool), &mut cpu);
        let entry = us.held.lock().pop().unwrap();
        let r = nf_reinject(entry, NfVerdict::DROP, &mut cpu);
        assert!(matches!(
            r,
            NfHookResult::Consumed(NfConsumed::Dropped(Errno::Perm))
        ));
        assert_eq!(pool.stats().inflight(), 0);
        assert_eq!(hooks.stats(IN.hook).dropped, 1);

        // REPEAT calls the queueing hook again, which queues it again.
        let _ = hooks.nf_hook(&IN, skb(&pool), &mut cpu);
        cpu.log.clear();
        let entry = us.held.lock().pop().unwrap();
        let r = nf_reinject(entry, NfVerdict::Repeat, &mut cpu);
        assert!(matches!(r, NfHookResult::Consumed(NfConsumed::Queued)));
        assert_eq!(cpu.log, ["queue"]);
        assert_eq!(us.held.lock().len(), 1);
    }

    #[test]
    fn nobody_on_the_queue_drops_unless_bypass() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut cpu = Cpu { log: vec![] };
        let (hooks, _us) = setup(NfVerdict::Queue {
            num: 5,
            bypass: false,
        });
        let r = hooks.nf_hook(&IN, skb(&pool), &mut cpu);
        assert!(matches!(
            r,
            NfHookResult::Consumed(NfConsumed::QueueFailed(Errno::Srch))
        ));
        assert_eq!(pool.stats().inflight(), 0);

        let (hooks, _us) = setup(NfVerdict::Queue {
            num: 5,
            bypass: true,
        });
        cpu.log.clear();
        assert!(matches!(
            hooks.nf_hook(&IN, skb(&pool), &mut cpu),
            NfHookResult::Continue(_)
        ));
        assert_eq!(cpu.log, ["first", "queue", "after"]);
    }

    #[test]
    fn other_queue_errors_drop_even_with_bypass() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut cpu = Cpu { log: vec![] };
        let (hooks, _us) = setup(NfVerdict::Queue {
            num: 9,
            bypass: true,
        });
        let r = hooks.nf_hook(&IN, skb(&pool), &mut cpu);
        assert!(matches!(
            r,
            NfHookResult::Consumed(NfConsumed::QueueFailed(Errno::NoMem))
        ));
        assert_eq!(pool.stats().inflight(), 0);
        assert_eq!(cpu.log, ["first", "queue"]);
    }

    #[test]
    fn unregistering_the_handler_makes_queue_drop() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut cpu = Cpu { log: vec![] };
        let (hooks, _us) = setup(NfVerdict::Queue {
            num: 0,
            bypass: false,
        });
        hooks.nf_unregister_queue_handler();
        let r = hooks.nf_hook(&IN, skb(&pool), &mut cpu);
        assert!(matches!(
            r,
            NfHookResult::Consumed(NfConsumed::QueueFailed(Errno::Srch))
        ));
        assert_eq!(pool.stats().inflight(), 0);
    }
}
