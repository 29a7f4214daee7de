//! The lock order of the whole stack.
//!
//! Mirrors the locking rules the kernel writes down next to its locks
//! (`net/sched/sch_generic.c`, `net/core/dev.c`, `include/net/sock.h`,
//! `net/core/neighbour.c`, `net/netfilter/nf_conntrack_core.c`). It has no
//! code: it is the one place that says which real lock may be taken while
//! another is held, so that no two paths can take the same pair in
//! opposite orders and deadlock.
//!
//! # The locks
//!
//! Most state is owned, not locked: per-CPU structures (softnet data, NAPI
//! poll lists, timer wheels, GRO tables) belong to their CPU's runner and
//! are reached through `&mut`; cross-CPU hand-over goes through lock-free
//! queues (descriptor rings, the RPS backlog). The few real locks, all
//! `parking_lot`, are:
//!
//! | # | lock | Linux | guards |
//! |---|------|-------|--------|
//! | 1 | socket lock | `lock_sock()` / `sk->sk_lock` | one socket's state, queues and timers |
//! | 2 | qdisc root lock | `qdisc_lock()` / `qdisc_root_lock()` | one qdisc tree (enqueue, dequeue) |
//! | 3 | device TX lock | `__netif_tx_lock()` / `netdev_queue._xmit_lock` | one tx queue of a device around `ndo_start_xmit` |
//! | 4 | FIB | `fib_info_lock`, RTNL for writers | routes |
//! | 5 | neighbour table | `tbl->lock`, `neigh->lock` | ARP entries and their queued skbs |
//! | 6 | conntrack buckets | `nf_conntrack_locks[]` | conntrack hash buckets |
//! | 7 | page-pool free list | the `ptr_ring` producer lock | a pool size class's recycle ring |
//!
//! # The order
//!
//! A lock may be taken while holding only locks listed *before* it in
//! [`LOCK_ORDER_EDGES`]. In prose:
//!
//! - The **socket lock** is outermost: a transport holding it may send,
//!   which walks IP output (FIB and neighbour lookups, conntrack on
//!   `LOCAL_OUT`/`POST_ROUTING`) down to `dev_queue_xmit`.
//! - **FIB** readers and the **neighbour table** are taken on the way out
//!   and released before the packet reaches the device layer; a neighbour
//!   entry's queued skbs are taken off under its lock and transmitted after
//!   it is dropped (`neigh_update()` does the same).
//! - **Conntrack buckets** are taken inside netfilter hooks, after FIB and
//!   neighbour lookups of the same hook are done, never while a qdisc or
//!   device lock is held.
//! - The **qdisc root lock** and the **device TX lock** are *never held
//!   together*: `sch_direct_xmit()` releases the root lock before taking the
//!   TX lock and re-takes it after, exactly as `net/sched/sch_generic.c`
//!   documents ("the qdisc lock and the netif_tx_lock are never held
//!   together" is the meaning of its comment). The `__QDISC_STATE_RUNNING`
//!   bit, not the root lock, keeps a second CPU out of `qdisc_run` while the
//!   first transmits.
//! - The **page-pool free list** is a leaf: freeing an skb may happen under
//!   any of the locks above, and nothing is ever taken while it is held.
//!
//! Interrupt-context rules have no twin here: the runtimes never preempt a
//! runner in the middle of a lock, so the kernel's `_bh`/`_irqsave` variants
//! collapse into the plain lock.
//!
//! # Deviations from Linux
//!
//! Linux's order is spread over comments and lockdep annotations; this list
//! is checked by review, not by a lock-class checker. If the number of locks
//! grows past a handful, typed levels (`Locked<T, L>` with `LockBefore`
//! edges) should replace it.

/// One "A before B" edge: `B` may be taken while `A` is held, never the
/// reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockEdge {
    /// The lock held.
    pub before: &'static str,
    /// The lock taken inside it.
    pub after: &'static str,
}

/// Every allowed nesting, by lock name as in the table above. Pairs not
/// listed (in particular the qdisc root lock with the device TX lock, in
/// either order) must never be held together.
pub const LOCK_ORDER_EDGES: &[LockEdge] = &[
    LockEdge {
        before: "socket lock",
        after: "FIB",
    },
    LockEdge {
        before: "socket lock",
        after: "neighbour table",
    },
    LockEdge {
        before: "socket lock",
        after: "conntrack buckets",
    },
    LockEdge {
        before: "socket lock",
        after: "qdisc root lock",
    },
    LockEdge {
        before: "socket lock",
        after: "device TX lock",
    },
    LockEdge {
        before: "socket lock",
        after: "page-pool free list",
    },
    LockEdge {
        before: "FIB",
        after: "page-pool free list",
    },
    LockEdge {
        before: "neighbour table",
        after: "page-pool free list",
    },
    LockEdge {
        before: "conntrack buckets",
        after: "page-pool free list",
    },
    LockEdge {
        before: "qdisc root lock",
        after: "page-pool free list",
    },
    LockEdge {
        before: "device TX lock",
        after: "page-pool free list",
    },
];

/// Whether `after` may be taken while `before` is held.
pub fn may_nest(before: &str, after: &str) -> bool {
    LOCK_ORDER_EDGES
        .iter()
        .any(|e| e.before == before && e.after == after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qdisc_and_tx_lock_never_nest() {
        assert!(!may_nest("qdisc root lock", "device TX lock"));
        assert!(!may_nest("device TX lock", "qdisc root lock"));
        assert!(may_nest("socket lock", "device TX lock"));
    }

    #[test]
    fn order_is_acyclic_and_page_pool_is_leaf() {
        assert!(
            LOCK_ORDER_EDGES
                .iter()
                .all(|e| e.before != "page-pool free list")
        );
        for e in LOCK_ORDER_EDGES {
            assert!(
                !may_nest(e.after, e.before),
                "cycle between {} and {}",
                e.before,
                e.after
            );
        }
    }
}
