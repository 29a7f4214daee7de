//! The typed timers of the IPv4 layer.
//!
//! Linux embeds a `struct timer_list` in each object that needs one (a
//! neighbour's `timer`, a fragment queue's `timer`) and a delayed work item
//! in the neighbour table (`gc_work`). Here each of them is a value of
//! [`Ipv4Timer`] armed through [`netcore::TimerContext`]; when the CPU's
//! wheel fires one, the runner hands it back to the owning structure
//! ([`NeighTable::on_timer`](crate::NeighTable::on_timer),
//! [`Ipv4Frags::on_timer`](crate::Ipv4Frags::on_timer)).

/// Identifies one neighbour entry for the lifetime of the table.
///
/// Ids are never reused, so a timer that fires for an entry that was
/// destroyed meanwhile is recognised and ignored (Linux holds a reference
/// instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeighId(pub u64);

/// Identifies one reassembly queue for the lifetime of the fragment table;
/// never reused, like [`NeighId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FragId(pub u64);

/// A timer of the IPv4 layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ipv4Timer {
    /// A neighbour's state timer. Mirrors `neigh->timer` running
    /// `neigh_timer_handler()` in `net/core/neighbour.c`.
    NeighTimer(NeighId),
    /// The neighbour table's periodic garbage collection. Mirrors
    /// `tbl->gc_work` running `neigh_periodic_work()`.
    NeighGc,
    /// A reassembly queue's expiry. Mirrors `q->timer` running
    /// `ip_expire()` in `net/ipv4/ip_fragment.c`.
    FragExpire(FragId),
}

/// Runs an expired IPv4 timer: the host's `TIMER` softirq dispatch calls
/// it with each [`Ipv4Timer`] its wheel fires on this CPU.
///
/// Mirrors the timer callbacks themselves: `neigh_timer_handler()` (ARP
/// probes go out with `dev_queue_xmit`; packets of an entry that failed get
/// ICMP host unreachable), `neigh_periodic_work()`, and `ip_expire()`
/// (`ReasmFails`, `ReasmTimeout`, and ICMP time exceeded in reassembly
/// about the first fragment when it had arrived).
#[tracing::instrument(
    level = "trace",
    name = "ipv4_timer",
    target = "netstack::ipv4",
    skip(ctx)
)]
pub fn handle_timer<C: crate::Ipv4Context>(ctx: &mut C, timer: Ipv4Timer) {
    use crate::icmp_rcv::icmp_send_net;
    use crate::ip_fragment::FragAction;
    use crate::protocol::IcmpError;

    let net = std::sync::Arc::clone(ctx.ipv4());
    let now = ctx.now();
    match timer {
        Ipv4Timer::NeighTimer(_) | Ipv4Timer::NeighGc => {
            let mut out = Vec::new();
            net.arp_tbl().lock().on_timer(ctx, now, timer, &mut out);
            crate::ip_output::neigh_run_actions(&net, ctx, out);
        }
        Ipv4Timer::FragExpire(_) => {
            let cpu = ctx.smp_processor_id();
            let action = net.frags().lock().on_timer(ctx, net.mibs(), cpu, timer);
            if let Some(FragAction::TimeExceeded { head }) = action {
                let _ = icmp_send_net(
                    &net,
                    ctx,
                    &head,
                    IcmpError::TimeExceeded(wire::IcmpTimeExceeded::FragTime),
                );
                netcore::kfree_skb_reason(head, netcore::DropReason::FragReasmTimeout);
            }
        }
    }
}
