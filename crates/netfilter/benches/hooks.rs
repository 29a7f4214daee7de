//! Cost per packet of `NF_HOOK` with 0, 1 and 4 accepting hooks.
//!
//! One skb is allocated once and cycled: `okfn` hands it back, so the
//! figures are the hook traversal (snapshot, calls, counters), not
//! allocation. A second set measures taking the snapshot alone.

use std::sync::Arc;

use benchkit::{black_box, measure, report};
use netcore::{PagePool, PagePoolParams, SkBuff};
use netfilter::{
    NF_HOOK, NfHookContext, NfHookOps, NfHookReg, NfHookState, NfHooks, NfInetHooks, NfSkb,
    NfVerdict,
};

struct Cpu {
    hooks: Arc<NfHooks<Cpu>>,
    seen: u64,
}

impl NfHookContext for Cpu {
    fn nf_hooks(&self) -> &NfHooks<Cpu> {
        &self.hooks
    }
}

/// A hook that reads the mark and accepts, like a rule that does not match.
struct AcceptHook;

impl NfHookOps<Cpu> for AcceptHook {
    fn hook(&self, skb: NfSkb<'_>, _state: &NfHookState, ctx: &mut Cpu) -> NfVerdict {
        ctx.seen += u64::from(skb.mark);
        NfVerdict::Accept
    }
}

fn main() {
    let pool = PagePool::new(PagePoolParams::default()).expect("pool");
    let state = NfHookState::new(NfInetHooks::PreRouting, 1, 0);
    // Baseline: moving the skb out of its slot and back, which every
    // NF_HOOK figure below includes.
    let mut slot = Some(SkBuff::from_slice(&pool, 0, &[0x45; 64]).expect("skb"));
    let per = measure(|| {
        let skb = black_box(slot.take().expect("skb"));
        slot = Some(skb);
    });
    report(
        "NF_HOOK harness baseline (skb out of its slot and back)",
        per.as_nanos_f64(),
        "ns/pkt",
    );
    for n in [0usize, 1, 4] {
        let mut cpu = Cpu {
            hooks: Arc::new(NfHooks::new()),
            seen: 0,
        };
        for i in 0..n {
            let _handle = cpu
                .hooks
                .nf_register_net_hook(NfHookReg::new(
                    NfInetHooks::PreRouting,
                    i as i32 * 100 - 200,
                    Arc::new(AcceptHook),
                ))
                .expect("register");
        }
        let mut slot = Some(SkBuff::from_slice(&pool, 0, &[0x45; 64]).expect("skb"));
        let per = measure(|| {
            let skb = slot.take().expect("the skb comes back from okfn");
            let out = NF_HOOK(&mut cpu, &state, skb, |_, skb| skb);
            slot = out.ok();
        });
        assert!(slot.is_some(), "every hook accepts");
        report(
            &format!("NF_HOOK, {n} accepting hook(s)"),
            per.as_nanos_f64(),
            "ns/pkt",
        );
        let hooks = Arc::clone(&cpu.hooks);
        let per = measure(|| black_box(hooks.nf_hook_entries_head(NfInetHooks::PreRouting)));
        report(
            &format!("nf_hook_entries_head, {n} hook(s)"),
            per.as_nanos_f64(),
            "ns",
        );
        black_box(cpu.seen);
    }
}
