//! The hook points, verdicts, hook state and hook trait, and `NF_HOOK`.
//!
//! Mirrors `include/uapi/linux/netfilter.h` (verdicts, `enum
//! nf_inet_hooks`) and `include/linux/netfilter.h` (`struct nf_hook_ops`,
//! `struct nf_hook_state`, `nf_hook()`, `NF_HOOK()`).
//!
//! ```text
//!   ip_rcv ──► NF_HOOK(PRE_ROUTING) ──► okfn = ip_rcv_finish ──► route
//!                 │
//!                 ├─ hook @ -200 ─ ACCEPT ─┐
//!                 ├─ hook @    0 ─ ACCEPT ─┤   DROP   → kfree_skb, -EPERM
//!                 └─ hook @  100 ─ ACCEPT ─┘   STOLEN → the hook owns it
//!                                              QUEUE  → nf_queue handler
//! ```

use std::fmt;
use std::ops::{Deref, DerefMut};

use netcore::{Errno, SkBuff};

use crate::core::{NfConsumed, NfHookResult, NfHooks, nf_hook_slow};

/// The protocol family of IPv4 hooks (`NFPROTO_IPV4`), the only one this
/// crate implements.
pub const NFPROTO_IPV4: u8 = 2;

/// The number of IPv4 hook points (`NF_INET_NUMHOOKS`).
pub const NF_INET_NUMHOOKS: usize = 5;

/// One of the five points on the IPv4 path where hooks run.
///
/// Mirrors `enum nf_inet_hooks` in `include/uapi/linux/netfilter.h`, with
/// the kernel's numbers. [`Display`](fmt::Display) prints the name of the
/// built-in chain `iptables` attaches there (`PREROUTING`, `INPUT`, ...).
#[doc(alias = "nf_inet_hooks")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum NfInetHooks {
    /// Every received IPv4 packet, after `ip_rcv` validated it and before
    /// the route lookup (`ip_rcv`).
    #[doc(alias = "NF_INET_PRE_ROUTING")]
    PreRouting = 0,
    /// Packets for this host, after reassembly (`ip_local_deliver`).
    #[doc(alias = "NF_INET_LOCAL_IN")]
    LocalIn = 1,
    /// Packets routed through this host (`ip_forward`).
    #[doc(alias = "NF_INET_FORWARD")]
    Forward = 2,
    /// Packets this host sends, before the output route is final
    /// (`__ip_local_out`).
    #[doc(alias = "NF_INET_LOCAL_OUT")]
    LocalOut = 3,
    /// Every packet leaving, forwarded or local (`ip_output`).
    #[doc(alias = "NF_INET_POST_ROUTING")]
    PostRouting = 4,
}

impl NfInetHooks {
    /// The five hook points, in the kernel's numbering.
    pub const ALL: [NfInetHooks; NF_INET_NUMHOOKS] = [
        NfInetHooks::PreRouting,
        NfInetHooks::LocalIn,
        NfInetHooks::Forward,
        NfInetHooks::LocalOut,
        NfInetHooks::PostRouting,
    ];

    /// The kernel's number (0 for `NF_INET_PRE_ROUTING` ... 4), usable as
    /// an index.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The built-in chain name as `iptables -L` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            NfInetHooks::PreRouting => "PREROUTING",
            NfInetHooks::LocalIn => "INPUT",
            NfInetHooks::Forward => "FORWARD",
            NfInetHooks::LocalOut => "OUTPUT",
            NfInetHooks::PostRouting => "POSTROUTING",
        }
    }

    /// The C enumerator name, e.g. `NF_INET_PRE_ROUTING`.
    pub const fn c_name(self) -> &'static str {
        match self {
            NfInetHooks::PreRouting => "NF_INET_PRE_ROUTING",
            NfInetHooks::LocalIn => "NF_INET_LOCAL_IN",
            NfInetHooks::Forward => "NF_INET_FORWARD",
            NfInetHooks::LocalOut => "NF_INET_LOCAL_OUT",
            NfInetHooks::PostRouting => "NF_INET_POST_ROUTING",
        }
    }
}

impl fmt::Display for NfInetHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A hook number outside `0..=4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidHook(pub u8);

impl fmt::Display for InvalidHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "hook number {} is not an IPv4 netfilter hook (expected 0..=4: \
             PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING)",
            self.0
        )
    }
}

impl std::error::Error for InvalidHook {}

impl TryFrom<u8> for NfInetHooks {
    type Error = InvalidHook;

    fn try_from(n: u8) -> Result<Self, InvalidHook> {
        NfInetHooks::ALL
            .get(usize::from(n))
            .copied()
            .ok_or(InvalidHook(n))
    }
}

impl From<NfInetHooks> for u8 {
    fn from(h: NfInetHooks) -> u8 {
        h as u8
    }
}

/// What a hook decided about a packet.
///
/// Mirrors the `NF_DROP` ... `NF_REPEAT` verdicts of
/// `include/uapi/linux/netfilter.h`, with the values the kernel packs into
/// the verdict's upper bits (`NF_DROP_ERR(err)`, `NF_QUEUE_NR(num)`,
/// `NF_VERDICT_FLAG_QUEUE_BYPASS`) as fields.
///
/// # Deviations from Linux
/// There is no `NF_STOP`: the kernel deprecated it (it returned ACCEPT
/// without running the remaining hooks) and no in-tree hook returns it any
/// more. `NF_REPEAT` re-runs the hook in [`nf_hook_slow`] too, as it did
/// before Linux 4.16; since then only `nf_reinject()` honours it and
/// `nf_hook_slow()` warns. A hook that always repeats loops forever, as
/// in Linux.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NfVerdict {
    /// Free the packet (`NF_DROP`); the caller's `NF_HOOK` returns the
    /// errno, `EPERM` when `None`. `Some(errno)` is `NF_DROP_ERR(-errno)`,
    /// which a LOCAL_OUT hook uses to hand the sender a specific error.
    #[doc(alias = "NF_DROP")]
    #[doc(alias = "NF_DROP_ERR")]
    Drop(Option<Errno>),
    /// Pass the packet to the next hook, or to `okfn` after the last one
    /// (`NF_ACCEPT`).
    #[doc(alias = "NF_ACCEPT")]
    Accept,
    /// The hook took the packet (`NF_STOLEN`): it called [`NfSkb::steal`]
    /// and owns the buffer now.
    #[doc(alias = "NF_STOLEN")]
    Stolen,
    /// Hand the packet to the queue handler on queue `num` (`NF_QUEUE`,
    /// `NF_QUEUE_NR(num)`). With no handler or no listener on that queue
    /// the packet is dropped, unless `bypass`
    /// (`NF_VERDICT_FLAG_QUEUE_BYPASS`, iptables' `--queue-bypass`), which
    /// accepts it and continues with the next hook.
    #[doc(alias = "NF_QUEUE")]
    Queue {
        /// The queue number (`--queue-num`).
        num: u16,
        /// Accept instead of dropping when nobody listens on the queue.
        bypass: bool,
    },
    /// Call the same hook again (`NF_REPEAT`).
    #[doc(alias = "NF_REPEAT")]
    Repeat,
}

impl NfVerdict {
    /// `NF_DROP` with the default error (`EPERM`).
    pub const DROP: NfVerdict = NfVerdict::Drop(None);

    /// The C name of the verdict, e.g. `NF_ACCEPT`.
    pub const fn name(self) -> &'static str {
        match self {
            NfVerdict::Drop(_) => "NF_DROP",
            NfVerdict::Accept => "NF_ACCEPT",
            NfVerdict::Stolen => "NF_STOLEN",
            NfVerdict::Queue { .. } => "NF_QUEUE",
            NfVerdict::Repeat => "NF_REPEAT",
        }
    }
}

/// Where a packet is when a hook sees it.
///
/// Mirrors `struct nf_hook_state` in `include/linux/netfilter.h`, filled as
/// `nf_hook_state_init()` does.
///
/// # Deviations from Linux
/// Devices are ifindexes (0 when none) rather than `net_device` pointers,
/// and there is no `sk`, `net` or `okfn`: the socket does not exist yet in
/// this stack, the hooks live in the caller's context rather than in a
/// `struct net`, and `okfn` is the closure passed to [`NF_HOOK`].
#[doc(alias = "nf_hook_state")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NfHookState {
    /// The hook point being traversed.
    pub hook: NfInetHooks,
    /// The protocol family, [`NFPROTO_IPV4`].
    pub pf: u8,
    /// The interface the packet arrived on (`state->in`), 0 on LOCAL_OUT
    /// and POST_ROUTING of locally generated packets.
    pub in_ifindex: u32,
    /// The interface the packet leaves by (`state->out`), 0 on PRE_ROUTING
    /// and LOCAL_IN.
    pub out_ifindex: u32,
}

impl NfHookState {
    /// The state of an IPv4 packet at `hook`.
    ///
    /// Mirrors `nf_hook_state_init()` in `include/linux/netfilter.h`.
    #[doc(alias = "nf_hook_state_init")]
    pub const fn new(hook: NfInetHooks, in_ifindex: u32, out_ifindex: u32) -> NfHookState {
        NfHookState {
            hook,
            pf: NFPROTO_IPV4,
            in_ifindex,
            out_ifindex,
        }
    }
}

/// The packet handed to a hook: read and modify it as an [`SkBuff`]
/// (through `Deref`), or take it with [`NfSkb::steal`].
///
/// A Rust-only handle that stands for the `struct sk_buff *` the kernel
/// passes to `nf_hookfn`: the kernel hook that returns `NF_STOLEN` simply
/// keeps the pointer; here it must move the buffer out, and `steal`
/// consumes the handle so the packet cannot be touched through it
/// afterwards.
pub struct NfSkb<'a> {
    /// Always `Some` while the handle exists: [`nf_hook_slow`] builds the
    /// handle over a filled slot and only `steal` (which consumes the
    /// handle) empties it.
    slot: &'a mut Option<SkBuff>,
}

impl<'a> NfSkb<'a> {
    /// Wraps a filled slot; `None` when the slot is empty.
    pub(crate) fn new(slot: &'a mut Option<SkBuff>) -> Option<NfSkb<'a>> {
        if slot.is_some() {
            Some(NfSkb { slot })
        } else {
            None
        }
    }

    /// Takes the packet out of the hook traversal. Return
    /// [`NfVerdict::Stolen`] afterwards: the hook (or whoever it hands the
    /// packet to) now owns it and must free or reinject it.
    pub fn steal(self) -> SkBuff {
        match self.slot.take() {
            Some(skb) => skb,
            None => unreachable!("an NfSkb is only built over a filled slot"),
        }
    }
}

impl Deref for NfSkb<'_> {
    type Target = SkBuff;

    fn deref(&self) -> &SkBuff {
        match self.slot.as_ref() {
            Some(skb) => skb,
            None => unreachable!("an NfSkb is only built over a filled slot"),
        }
    }
}

impl DerefMut for NfSkb<'_> {
    fn deref_mut(&mut self) -> &mut SkBuff {
        match self.slot.as_mut() {
            Some(skb) => skb,
            None => unreachable!("an NfSkb is only built over a filled slot"),
        }
    }
}

impl fmt::Debug for NfSkb<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("NfSkb").field(&**self).finish()
    }
}

/// A hook function: one plug-in that sees every packet at the hook point
/// and priority it was registered at.
///
/// Mirrors the `hook` member (`nf_hookfn`) of `struct nf_hook_ops` in
/// `include/linux/netfilter.h`; the hook point and priority come with the
/// registration ([`NfHookReg`](crate::NfHookReg)), so one implementation
/// can be registered at several points, as iptables tables are.
///
/// `C` is the per-CPU host context the caller of [`NF_HOOK`] runs in; the
/// hook gets it mutably (conntrack will reach its tables through it).
/// Hooks are shared by every CPU, hence `Send + Sync`.
#[doc(alias = "nf_hook_ops")]
#[doc(alias = "nf_hookfn")]
pub trait NfHookOps<C: ?Sized>: Send + Sync {
    /// Decides about `skb` at `state.hook`. The hook may modify the packet
    /// (mark, headers); the next hook sees the change. To return
    /// [`NfVerdict::Stolen`] it must first take the packet with
    /// [`NfSkb::steal`].
    fn hook(&self, skb: NfSkb<'_>, state: &NfHookState, ctx: &mut C) -> NfVerdict;

    /// A name for listings and traces (like the symbol `nft list hooks`
    /// prints); the type name by default.
    fn name(&self) -> &str {
        ::core::any::type_name::<Self>()
    }
}

/// What a host context offers the hooks: the hook table of its host.
///
/// The per-CPU context of `netstack` implements it, so that IPv4 calls
/// [`NF_HOOK`] with only its context, as the kernel reaches
/// `net->nf.hooks_ipv4` through `state->net`.
pub trait NfHookContext {
    /// The hooks registered on this host (network namespace).
    fn nf_hooks(&self) -> &NfHooks<Self>;
}

/// Runs the hooks of `state.hook` over `skb`.
///
/// Mirrors `nf_hook()` in `include/linux/netfilter.h`: with no hook
/// registered at that point (the `nf_hooks_needed` static key is off) it
/// returns [`NfHookResult::Continue`] at once, without a lock, an atomic
/// read-modify-write or an allocation; otherwise it calls
/// [`nf_hook_slow`] on a snapshot of the entries.
#[inline]
pub fn nf_hook<C: NfHookContext>(ctx: &mut C, state: &NfHookState, skb: SkBuff) -> NfHookResult {
    let r = match ctx.nf_hooks().nf_hook_entries_head(state.hook) {
        None => NfHookResult::Continue(skb),
        Some(entries) => nf_hook_slow(skb, state, &entries, 0, ctx),
    };
    tracing::trace!(target: "netstack::netfilter", in_ifindex = state.in_ifindex, out_ifindex = state.out_ifindex, verdict = match &r { NfHookResult::Continue(_) => "NF_ACCEPT", NfHookResult::Consumed(NfConsumed::Stolen) => "NF_STOLEN", NfHookResult::Consumed(NfConsumed::Queued) => "NF_QUEUE", NfHookResult::Consumed(_) => "NF_DROP" }, "{}", state.hook.c_name());
    r
}

/// Runs the hooks of `state.hook` over `skb`, then `okfn` if they all
/// accepted it.
///
/// Mirrors the `NF_HOOK()` macro of `include/linux/netfilter.h`, the way
/// every IPv4 stage hands a packet on (`NF_HOOK(NFPROTO_IPV4,
/// NF_INET_PRE_ROUTING, ..., ip_rcv_finish)`). Consumes `skb`: it reaches
/// `okfn` (`Ok` with `okfn`'s result), or was dropped, stolen or queued
/// (`Err`, with what happened).
///
/// Drops: [`DropReason::NetfilterDrop`](netcore::DropReason::NetfilterDrop).
///
/// # Deviations from Linux
/// `NF_HOOK` returns an `int` that mixes `okfn`'s return with `-EPERM` and
/// `0`; here `Err` says the packet never reached `okfn`
/// ([`NfConsumed::ret`] gives the kernel's number).
///
/// ```
/// use std::sync::Arc;
/// use netcore::{PagePool, PagePoolParams, SkBuff};
/// use netfilter::{
///     NF_HOOK, NF_IP_PRI_FILTER, NfConsumed, NfHookContext, NfHookReg, NfHookState, NfHooks,
///     NfInetHooks, NfVerdict,
/// };
///
/// struct Cpu {
///     hooks: Arc<NfHooks<Cpu>>,
/// }
/// impl NfHookContext for Cpu {
///     fn nf_hooks(&self) -> &NfHooks<Cpu> {
///         &self.hooks
///     }
/// }
///
/// let mut cpu = Cpu { hooks: Arc::new(NfHooks::new()) };
/// // iptables -A INPUT -m mark --mark 7 -j DROP, as a hook.
/// cpu.hooks
///     .nf_register_net_hook(NfHookReg::from_fn(
///         NfInetHooks::LocalIn,
///         NF_IP_PRI_FILTER,
///         |skb, _state, _cpu| if skb.mark == 7 { NfVerdict::DROP } else { NfVerdict::Accept },
///     ))
///     .unwrap();
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let state = NfHookState::new(NfInetHooks::LocalIn, 1, 0);
/// let skb = SkBuff::from_slice(&pool, 0, b"hello").unwrap();
/// let delivered = NF_HOOK(&mut cpu, &state, skb, |_cpu, skb| skb.len());
/// assert_eq!(delivered, Ok(5));
///
/// let mut skb = SkBuff::from_slice(&pool, 0, b"hello").unwrap();
/// skb.mark = 7;
/// let dropped = NF_HOOK(&mut cpu, &state, skb, |_cpu, skb| skb.len());
/// assert_eq!(dropped, Err(NfConsumed::Dropped(netcore::Errno::Perm)));
/// assert_eq!(pool.stats().inflight(), 0); // freed back to the pool
/// ```
#[allow(non_snake_case)]
#[inline]
pub fn NF_HOOK<C: NfHookContext, R>(
    ctx: &mut C,
    state: &NfHookState,
    skb: SkBuff,
    okfn: impl FnOnce(&mut C, SkBuff) -> R,
) -> Result<R, NfConsumed> {
    match nf_hook(ctx, state, skb) {
        NfHookResult::Continue(skb) => Ok(okfn(ctx, skb)),
        NfHookResult::Consumed(how) => Err(how),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_numbers_and_names_are_the_kernels() {
        let got: Vec<(u8, &str, &str)> = NfInetHooks::ALL
            .iter()
            .map(|&h| (u8::from(h), h.name(), h.c_name()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "PREROUTING", "NF_INET_PRE_ROUTING"),
                (1, "INPUT", "NF_INET_LOCAL_IN"),
                (2, "FORWARD", "NF_INET_FORWARD"),
                (3, "OUTPUT", "NF_INET_LOCAL_OUT"),
                (4, "POSTROUTING", "NF_INET_POST_ROUTING"),
            ]
        );
        assert_eq!(NfInetHooks::Forward.to_string(), "FORWARD");
    }

    #[test]
    fn hook_numbers_round_trip_and_bad_ones_are_named() {
        for h in NfInetHooks::ALL {
            assert_eq!(NfInetHooks::try_from(u8::from(h)), Ok(h));
        }
        let err = NfInetHooks::try_from(5).unwrap_err();
        assert_eq!(err, InvalidHook(5));
        assert!(err.to_string().starts_with("hook number 5 is not"));
    }

    #[test]
    fn state_init_fills_pf_ipv4() {
        let s = NfHookState::new(NfInetHooks::Forward, 2, 3);
        assert_eq!((s.pf, s.in_ifindex, s.out_ifindex), (2, 2, 3));
    }

    #[test]
    fn verdict_names() {
        assert_eq!(NfVerdict::DROP.name(), "NF_DROP");
        assert_eq!(
            NfVerdict::Queue {
                num: 3,
                bypass: true
            }
            .name(),
            "NF_QUEUE"
        );
        assert_eq!(NfVerdict::Repeat.name(), "NF_REPEAT");
    }
}
