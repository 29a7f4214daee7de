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
