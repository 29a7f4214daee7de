//! The neighbour cache: IPv4 → link-layer address, with Linux's NUD state
//! machine, its timers, the queue of packets waiting for resolution, and
//! garbage collection.
//!
//! Mirrors `net/core/neighbour.c` as `arp_tbl` (`net/ipv4/arp.c`) uses it.
//!
//! ```text
//!            neigh_resolve_output                 reply (neigh_update REACHABLE)
//!   NONE ──────────────────────────▶ INCOMPLETE ──────────────────────────▶ REACHABLE
//!                                      │ probes ≥ max                           │ reachable_time
//!                                      ▼                                        ▼ elapsed
//!                                    FAILED ◀── probes ≥ max ── PROBE ◀── DELAY ◀─ used ── STALE
//!                                   (queue → ICMP host unreach)          confirmed ──▶ REACHABLE
//! ```
//!
//! The table never sends anything itself: [`NeighAction`]s tell the caller
//! to solicit (ARP, see [`arp_solicit`](crate::arp_solicit)), to transmit a
//! packet with a resolved address, or to report a packet unreachable.

use core::fmt::Write as _;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use netcore::{
    DropReason, Duration, Errno, Instant, SkBuff, Sysctl, TimerContext, kfree_skb_reason,
};
use wire::EthernetAddress;

use crate::random::{HashRnd, Prandom};
use crate::timers::{Ipv4Timer, NeighId};

bitflags::bitflags! {
    /// Neighbour Unreachability Detection states.
    ///
    /// Mirrors the `NUD_*` bits in `include/uapi/linux/neighbour.h`; an
    /// entry is in exactly one state, the empty set being `NUD_NONE`.
    #[doc(alias = "nud_state")]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct NudState: u8 {
        /// `NUD_INCOMPLETE`: resolution in progress.
        const INCOMPLETE = 0x01;
        /// `NUD_REACHABLE`: confirmed recently.
        const REACHABLE = 0x02;
        /// `NUD_STALE`: address known but unconfirmed.
        const STALE = 0x04;
        /// `NUD_DELAY`: used while stale; waiting for an upper-layer hint.
        const DELAY = 0x08;
        /// `NUD_PROBE`: unicast probes in flight.
        const PROBE = 0x10;
        /// `NUD_FAILED`: resolution failed.
        const FAILED = 0x20;
        /// `NUD_NOARP`: no resolution needed.
        const NOARP = 0x40;
        /// `NUD_PERMANENT`: configured by the administrator.
        const PERMANENT = 0x80;
    }
}

impl NudState {
    /// `NUD_IN_TIMER`: states with a running timer.
    pub const IN_TIMER: NudState = NudState::INCOMPLETE
        .union(NudState::REACHABLE)
        .union(NudState::DELAY)
        .union(NudState::PROBE);
    /// `NUD_VALID`: states whose link-layer address may be used.
    pub const VALID: NudState = NudState::PERMANENT
        .union(NudState::NOARP)
        .union(NudState::REACHABLE)
        .union(NudState::PROBE)
        .union(NudState::STALE)
        .union(NudState::DELAY);
    /// `NUD_CONNECTED`: states that need no confirmation.
    pub const CONNECTED: NudState = NudState::PERMANENT
        .union(NudState::NOARP)
        .union(NudState::REACHABLE);

    /// The name `ip neigh` prints.
    pub fn name(self) -> &'static str {
        match self {
            s if s == NudState::INCOMPLETE => "INCOMPLETE",
            s if s == NudState::REACHABLE => "REACHABLE",
            s if s == NudState::STALE => "STALE",
            s if s == NudState::DELAY => "DELAY",
            s if s == NudState::PROBE => "PROBE",
            s if s == NudState::FAILED => "FAILED",
            s if s == NudState::NOARP => "NOARP",
            s if s == NudState::PERMANENT => "PERMANENT",
            _ => "NONE",
        }
    }
}

bitflags::bitflags! {
    /// How an update may change an entry.
    ///
    /// Mirrors the `NEIGH_UPDATE_F_*` flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct NeighUpdateFlags: u32 {
        /// `NEIGH_UPDATE_F_OVERRIDE`: a different address replaces the cached one.
        const OVERRIDE = 0x0000_0001;
        /// `NEIGH_UPDATE_F_ADMIN`: an administrative change (may touch
        /// PERMANENT and NOARP entries).
        const ADMIN = 0x8000_0000;
    }
}

/// The knobs of the ARP table.
///
/// Mirrors `struct neigh_parms` (and the table's `gc_thresh*`), read from
/// the `net.ipv4.neigh.default.*` sysctls.
#[doc(alias = "neigh_parms")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighParms {
    /// `base_reachable_time_ms` (30 s).
    pub base_reachable_time: Duration,
    /// `delay_first_probe_time` (5 s).
    pub delay_probe_time: Duration,
    /// `retrans_time_ms` (1 s).
    pub retrans_time: Duration,
    /// `gc_stale_time` (60 s).
    pub gc_stale_time: Duration,
    /// `locktime` (1 s): an address replaced within it is kept.
    pub locktime: Duration,
    /// `ucast_solicit` (3).
    pub ucast_probes: u32,
    /// `mcast_solicit` (3).
    pub mcast_probes: u32,
    /// `app_solicit` (0).
    pub app_probes: u32,
    /// `mcast_resolicit` (0): broadcast probes from PROBE.
    pub mcast_reprobes: u32,
    /// `unres_qlen_bytes` (212992).
    pub queue_len_bytes: usize,
    /// `gc_thresh1` (128).
    pub gc_thresh1: usize,
    /// `gc_thresh2` (512).
    pub gc_thresh2: usize,
    /// `gc_thresh3` (1024).
    pub gc_thresh3: usize,
}

fn secs(v: i64) -> Duration {
    Duration::from_secs(u64::try_from(v).unwrap_or(0))
}
fn millis(v: i64) -> Duration {
    Duration::from_millis(u64::try_from(v).unwrap_or(0))
}
fn count(v: i64) -> usize {
    usize::try_from(v).unwrap_or(0)
}

impl NeighParms {
    /// The `net.ipv4.neigh.default.*` values of `sysctl`.
    pub fn from_sysctl(sysctl: &Sysctl) -> NeighParms {
        NeighParms {
            base_reachable_time: millis(sysctl.get_int(Sysctl::NEIGH_BASE_REACHABLE_TIME_MS)),
            delay_probe_time: secs(sysctl.get_int(Sysctl::NEIGH_DELAY_FIRST_PROBE_TIME)),
            retrans_time: millis(sysctl.get_int(Sysctl::NEIGH_RETRANS_TIME_MS)),
            gc_stale_time: secs(sysctl.get_int(Sysctl::NEIGH_GC_STALE_TIME)),
            // locktime is in USER_HZ (centiseconds).
            locktime: millis(sysctl.get_int(Sysctl::NEIGH_LOCKTIME) * 10),
            ucast_probes: sysctl.get_int(Sysctl::NEIGH_UCAST_SOLICIT) as u32,
            mcast_probes: sysctl.get_int(Sysctl::NEIGH_MCAST_SOLICIT) as u32,
            app_probes: sysctl.get_int(Sysctl::NEIGH_APP_SOLICIT) as u32,
            mcast_reprobes: 0,
            queue_len_bytes: count(sysctl.get_int(Sysctl::NEIGH_UNRES_QLEN_BYTES)),
            gc_thresh1: count(sysctl.get_int(Sysctl::NEIGH_GC_THRESH1)),
            gc_thresh2: count(sysctl.get_int(Sysctl::NEIGH_GC_THRESH2)),
            gc_thresh3: count(sysctl.get_int(Sysctl::NEIGH_GC_THRESH3)),
        }
    }
}

impl Default for NeighParms {
    /// Linux's defaults.
    fn default() -> Self {
        NeighParms::from_sysctl(&Sysctl::new())
    }
}

/// The table's counters, the columns of `/proc/net/stat/arp_cache`.
///
/// Mirrors `struct neigh_statistics`.
#[doc(alias = "neigh_statistics")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NeighStatistics {
    /// Entries allocated.
    pub allocs: u64,
    /// Entries destroyed.
    pub destroys: u64,
    /// Lookups.
    pub lookups: u64,
    /// Lookups that found an entry.
    pub hits: u64,
    /// Resolutions that failed.
    pub res_failed: u64,
    /// Broadcast requests received.
    pub rcv_probes_mcast: u64,
    /// Unicast requests received.
    pub rcv_probes_ucast: u64,
    /// Periodic GC runs.
    pub periodic_gc_runs: u64,
    /// Forced GC runs.
    pub forced_gc_runs: u64,
    /// Packets dropped from a full unresolved queue.
    pub unresolved_discards: u64,
    /// Entries refused because the table was full.
    pub table_fulls: u64,
}

/// One neighbour entry.
///
/// Mirrors `struct neighbour`.
#[doc(alias = "neighbour")]
#[derive(Debug)]
pub struct Neighbour {
    /// The entry's id (its timer's key).
    pub id: NeighId,
    /// The device.
    pub ifindex: u32,
    /// The neighbour's IPv4 address (`primary_key`).
    pub primary_key: Ipv4Addr,
    /// The link-layer address (`ha`), meaningful in a `VALID` state.
    pub ha: EthernetAddress,
    /// The NUD state.
    pub nud_state: NudState,
    /// Last state or address change.
    pub updated: Instant,
    /// Last reachability confirmation.
    pub confirmed: Instant,
    /// Last use for output.
    pub used: Instant,
    /// Solicitations sent in the current round.
    pub probes: u32,
    arp_queue: VecDeque<SkBuff>,
    arp_queue_len_bytes: usize,
}

impl Neighbour {
    /// Packets waiting for resolution.
    pub fn arp_queue_len(&self) -> usize {
        self.arp_queue.len()
    }

    /// Bytes (truesize) waiting for resolution.
    pub fn arp_queue_len_bytes(&self) -> usize {
        self.arp_queue_len_bytes
    }
}

/// What the caller must do after a neighbour operation.
#[derive(Debug)]
pub enum NeighAction {
    /// Send a solicitation (an ARP request) for `target` on `ifindex`.
    /// `probes` is the entry's count before this one, `ha` its current
    /// address, `saddr_hint` the source of the packet that triggered it;
    /// [`arp_solicit`](crate::arp_solicit) turns this into a frame.
    /// Mirrors `neigh->ops->solicit()`.
    Solicit {
        /// Device.
        ifindex: u32,
        /// Address to resolve.
        target: Ipv4Addr,
        /// Probes already sent in this round.
        probes: u32,
        /// The cached address (for unicast probes).
        ha: EthernetAddress,
        /// Source address of the queued packet, if any.
        saddr_hint: Option<Ipv4Addr>,
    },
    /// Transmit `skb` to `ha` on `ifindex` (build the Ethernet header and
    /// `dev_queue_xmit`). Mirrors `neigh->output()` once resolved.
    Output {
        /// Device.
        ifindex: u32,
        /// Destination link-layer address.
        ha: EthernetAddress,
        /// The packet (an IPv4 datagram).
        skb: SkBuff,
    },
    /// Resolution failed: send an ICMP host unreachable about `skb` to its
    /// sender, then drop it. Mirrors `arp_error_report()` →
    /// `icmp_send(ICMP_DEST_UNREACH, ICMP_HOST_UNREACH)`.
    HostUnreachable {
        /// The packet that could not be delivered.
        skb: SkBuff,
    },
}

/// The ARP neighbour table.
///
/// Mirrors `struct neigh_table` (`arp_tbl`). One per namespace; entries are
/// keyed by `(ifindex, IPv4 address)`.
#[doc(alias = "neigh_table")]
#[derive(Debug)]
pub struct NeighTable {
    parms: NeighParms,
    reachable_time: Duration,
    by_key: HashMap<(u32, Ipv4Addr), NeighId, HashRnd>,
    /// In id order, which is creation order: the `gc_list` walk order.
    neighs: BTreeMap<NeighId, Neighbour>,
    next_id: u64,
    stats: NeighStatistics,
    rng: Prandom,
    last_rand: Instant,
    last_flush: Instant,
    /// Moves whenever an entry may have changed its state or address, or
    /// was created or removed: the validity of a [`NeighHint`]. Shared
    /// with [`Ipv4Net`](crate::Ipv4Net), which reads it without the lock.
    genid: Arc<AtomicU64>,
}

/// A neighbour entry kept with a socket's cached route, valid while the
/// table's [`NeighTable::genid`] is unchanged.
///
/// Stands for the `dst->neighbour` of older Linux (newer kernels look the
/// entry up per packet, `__ipv4_neigh_lookup_noref()`): only an entry
/// that sends at once is kept, one in a `NUD_CONNECTED` state (whose
/// output, `neigh_hh_output()`, has no side effect) or in DELAY or PROBE
/// (whose output stamps `used`, which [`NeighTable::neigh_hint_output`]
/// does too), so using the kept address while nothing in the table
/// changed sends exactly what [`NeighTable::neigh_output_ha`] would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighHint {
    /// The entry.
    pub id: NeighId,
    /// The device the entry belongs to.
    pub ifindex: u32,
    /// The next hop the entry resolves (`primary_key`).
    pub nexthop: Ipv4Addr,
    /// The entry's link-layer address.
    pub ha: EthernetAddress,
    /// Whether the entry was in a `NUD_CONNECTED` state (else DELAY or
    /// PROBE: its output stamps `used`).
    pub connected: bool,
    /// The table generation it was read in.
    pub genid: u64,
}

const HZ_100: Duration = Duration::from_millis(10);

impl NeighTable {
    /// An empty table with `parms`, its randomness seeded with `seed`.
    ///
    /// Mirrors `neigh_table_init()`: draws the first `reachable_time`.
    pub fn new(parms: NeighParms, seed: u64, now: Instant) -> NeighTable {
        let mut rng = Prandom::new(seed);
        let reachable_time = neigh_rand_reach_time(&mut rng, parms.base_reachable_time);
        // neigh_hash_alloc(): the table's random hash key.
        let hash_rnd = HashRnd(rng.next_u64());
        NeighTable {
            parms,
            reachable_time,
            by_key: HashMap::with_hasher(hash_rnd),
            neighs: BTreeMap::new(),
            next_id: 1,
            stats: NeighStatistics::default(),
            rng,
            last_rand: now,
            last_flush: now,
            genid: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The table generation: moves whenever an entry may have changed its
    /// state or link-layer address, or was created or removed.
    #[inline]
    pub fn genid(&self) -> u64 {
        self.genid.load(Ordering::Acquire)
    }

    /// The generation counter itself, for a reader without the lock
    /// ([`Ipv4Net::neigh_genid`](crate::Ipv4Net::neigh_genid)).
    pub fn genid_handle(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.genid)
    }

    fn genid_bump(&self) {
        self.genid.fetch_add(1, Ordering::Release);
    }

    /// A [`NeighHint`] for `(ifindex, ip)` when its entry sends at once
    /// (a `NUD_CONNECTED` state, DELAY or PROBE); `None` otherwise.
    /// Reads only.
    pub fn neigh_hint(&self, ifindex: u32, ip: Ipv4Addr) -> Option<NeighHint> {
        let id = *self.by_key.get(&(ifindex, ip))?;
        let n = self.neighs.get(&id)?;
        let connected = n.nud_state.intersects(NudState::CONNECTED);
        (connected || n.nud_state.intersects(NudState::DELAY | NudState::PROBE)).then_some(
            NeighHint {
                id,
                ifindex,
                nexthop: ip,
                ha: n.ha,
                connected,
                genid: self.genid(),
            },
        )
    }

    /// [`NeighTable::neigh_output_ha`] from a hint: the kept address if
    /// `hint` is for `(ifindex, ip)` and the table is unchanged since (a
    /// DELAY or PROBE entry's `used` stamped as that would), else `None`.
    #[inline(always)]
    pub fn neigh_hint_output(
        &mut self,
        hint: &NeighHint,
        ifindex: u32,
        ip: Ipv4Addr,
        now: Instant,
    ) -> Option<EthernetAddress> {
        if hint.genid != self.genid() || hint.ifindex != ifindex || hint.nexthop != ip {
            return None;
        }
        if !hint.connected && !self.neigh_stamp_used(hint.id, now) {
            return None;
        }
        Some(hint.ha)
    }

    /// Stamps `used` of entry `id` (the DELAY/PROBE output of
    /// `neigh_event_send()`); whether it exists.
    fn neigh_stamp_used(&mut self, id: NeighId, now: Instant) -> bool {
        match self.neighs.get_mut(&id) {
            Some(n) => {
                n.used = now;
                true
            }
            None => false,
        }
    }

    /// The parameters.
    pub fn parms(&self) -> &NeighParms {
        &self.parms
    }

    /// The current randomised reachable time (`parms->reachable_time`).
    pub fn reachable_time(&self) -> Duration {
        self.reachable_time
    }

    /// The counters.
    pub fn stats(&self) -> NeighStatistics {
        self.stats
    }

    /// Number of entries (`tbl->entries`).
    pub fn len(&self) -> usize {
        self.neighs.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.neighs.is_empty()
    }

    /// Starts the periodic garbage collection. Mirrors the first
    /// `queue_delayed_work(..., &tbl->gc_work, ...)` of `neigh_table_init()`.
    pub fn start_gc<T: TimerContext<Ipv4Timer>>(&self, timers: &mut T, now: Instant) {
        timers.arm_timer(Ipv4Timer::NeighGc, now + self.parms.base_reachable_time / 2);
    }

    /// The entry for `(ifindex, ip)`. Mirrors `neigh_lookup()` (counted).
    pub fn neigh_lookup(&mut self, ifindex: u32, ip: Ipv4Addr) -> Option<&Neighbour> {
        self.stats.lookups += 1;
        let id = *self.by_key.get(&(ifindex, ip))?;
        self.stats.hits += 1;
        self.neighs.get(&id)
    }

    /// The entry with id `id`.
    pub fn get(&self, id: NeighId) -> Option<&Neighbour> {
        self.neighs.get(&id)
    }

    /// The entry for `(ifindex, ip)`, without counting.
    pub fn peek(&self, ifindex: u32, ip: Ipv4Addr) -> Option<&Neighbour> {
        self.neighs.get(self.by_key.get(&(ifindex, ip))?)
    }

    /// The link-layer address to send to `(ifindex, ip)` at once, without
    /// queueing or probing: that of a CONNECTED entry as is (the
    /// `neigh_hh_output()` path of `neigh_output()`), or of a DELAY or PROBE
    /// entry, whose `used` is stamped as `neigh_event_send()` does before
    /// `neigh_resolve_output()` sends. `None` for any other state or no
    /// entry: the caller takes [`NeighTable::neigh_resolve_output`].
    pub fn neigh_output_ha(
        &mut self,
        ifindex: u32,
        ip: Ipv4Addr,
        now: Instant,
    ) -> Option<EthernetAddress> {
        let id = self.by_key.get(&(ifindex, ip))?;
        let n = self.neighs.get_mut(id)?;
        if n.nud_state.intersects(NudState::CONNECTED) {
            return Some(n.ha);
        }
        if n.nud_state.intersects(NudState::DELAY | NudState::PROBE) {
            n.used = now;
            return Some(n.ha);
        }
        None
    }

    fn gc_entries(&self) -> usize {
        self.neighs
            .values()
            .filter(|n| !n.nud_state.contains(NudState::PERMANENT))
            .count()
    }

    /// Creates an entry in state NONE (or returns the existing one).
    ///
    /// Mirrors `__neigh_create()` → `neigh_alloc()`: at or above
    /// `gc_thresh3` entries, or above `gc_thresh2` when the last flush is
    /// more than 5 s old, a forced GC runs first; if it frees nothing and
    /// the table holds `gc_thresh3` entries, the entry is refused with
    /// [`Errno::NoBufs`] and counted in `table_fulls`.
    #[doc(alias = "__neigh_create")]
    #[doc(alias = "neigh_alloc")]
    pub fn neigh_create<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        ifindex: u32,
        ip: Ipv4Addr,
        permanent: bool,
    ) -> Result<NeighId, Errno> {
        if let Some(&id) = self.by_key.get(&(ifindex, ip)) {
            return Ok(id);
        }
        if !permanent {
            let entries = self.gc_entries();
            if entries >= self.parms.gc_thresh3
                || (entries >= self.parms.gc_thresh2
                    && now > self.last_flush + Duration::from_secs(5))
            {
                let shrunk = self.neigh_forced_gc(timers, now);
                if shrunk == 0 && entries >= self.parms.gc_thresh3 {
                    self.stats.table_fulls += 1;
                    return Err(Errno::NoBufs);
                }
            }
        }
        self.genid_bump();
        let id = NeighId(self.next_id);
        self.next_id += 1;
        self.stats.allocs += 1;
        self.by_key.insert((ifindex, ip), id);
        self.neighs.insert(
            id,
            Neighbour {
                id,
                ifindex,
                primary_key: ip,
                ha: EthernetAddress::ZERO,
                nud_state: NudState::empty(),
                updated: now,
                confirmed: now
                    .checked_sub(self.parms.base_reachable_time * 2)
                    .unwrap_or(Instant::ZERO),
                used: now,
                probes: 0,
                arp_queue: VecDeque::new(),
                arp_queue_len_bytes: 0,
            },
        );
        Ok(id)
    }

    /// Removes an entry, dropping its queued packets. Mirrors
    /// `neigh_remove_one()` → `neigh_destroy()`.
    fn neigh_destroy<T: TimerContext<Ipv4Timer>>(&mut self, timers: &mut T, id: NeighId) {
        self.genid_bump();
        if let Some(n) = self.neighs.remove(&id) {
            timers.cancel_timer(Ipv4Timer::NeighTimer(id));
            self.by_key.remove(&(n.ifindex, n.primary_key));
            for skb in n.arp_queue {
                kfree_skb_reason(skb, DropReason::NeighDead);
            }
            self.stats.destroys += 1;
        }
    }

    /// Removes every entry of device `ifindex`, dropping their queued
    /// packets (`NEIGH_DEAD`); returns how many went.
    ///
    /// Mirrors `neigh_ifdown()` (the device went down or away).
    pub fn neigh_ifdown<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        ifindex: u32,
    ) -> usize {
        let ids: Vec<NeighId> = self
            .neighs
            .values()
            .filter(|n| n.ifindex == ifindex)
            .map(|n| n.id)
            .collect();
        for &id in &ids {
            self.neigh_destroy(timers, id);
        }
        ids.len()
    }

    /// `ip neigh del`: removes the entry. Errors: [`Errno::NoEnt`].
    pub fn neigh_delete<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        ifindex: u32,
        ip: Ipv4Addr,
    ) -> Result<(), Errno> {
        let id = *self.by_key.get(&(ifindex, ip)).ok_or(Errno::NoEnt)?;
        self.neigh_destroy(timers, id);
        Ok(())
    }

    /// Sends `skb` toward the neighbour `nexthop` on `ifindex`, resolving it
    /// first if needed.
    ///
    /// Mirrors `ip_finish_output2()`'s `__neigh_create()` plus
    /// `neigh_resolve_output()` → `neigh_event_send()`. Takes ownership of
    /// `skb`: it is handed back in an [`NeighAction::Output`] when the
    /// address is usable (REACHABLE, STALE → DELAY, DELAY, PROBE,
    /// PERMANENT, NOARP), queued when resolution is in progress (the oldest
    /// queued packets are dropped and counted in `unresolved_discards`
    /// beyond `unres_qlen_bytes`), or dropped when the entry cannot be
    /// created ([`Errno::NoBufs`], `NEIGH_CREATEFAIL`).
    #[doc(alias = "neigh_event_send")]
    pub fn neigh_resolve_output<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        ifindex: u32,
        nexthop: Ipv4Addr,
        skb: SkBuff,
        out: &mut Vec<NeighAction>,
    ) -> Result<(), Errno> {
        let id = match self.neigh_create(timers, now, ifindex, nexthop, false) {
            Ok(id) => id,
            Err(e) => {
                kfree_skb_reason(skb, DropReason::NeighCreatefail);
                return Err(e);
            }
        };
        self.neigh_event_send(timers, now, id, Some(skb), out);
        Ok(())
    }

    /// Mirrors `neigh_event_send()`/`__neigh_event_send()` with
    /// `immediate_ok`.
    fn neigh_event_send<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        id: NeighId,
        skb: Option<SkBuff>,
        out: &mut Vec<NeighAction>,
    ) {
        self.genid_bump();
        let parms = self.parms;
        let Some(n) = self.neighs.get_mut(&id) else {
            if let Some(skb) = skb {
                kfree_skb_reason(skb, DropReason::NeighDead);
            }
            return;
        };
        n.used = now;
        let st = n.nud_state;
        let mut immediate_probe = false;
        if !st.intersects(NudState::CONNECTED | NudState::DELAY | NudState::PROBE) {
            if !st.intersects(NudState::STALE | NudState::INCOMPLETE) {
                if parms.mcast_probes + parms.app_probes > 0 {
                    n.probes = parms.ucast_probes;
                    n.nud_state = NudState::INCOMPLETE;
                    n.updated = now;
                    immediate_probe = true;
                    timers.arm_timer(
                        Ipv4Timer::NeighTimer(id),
                        now + parms.retrans_time.max(HZ_100),
                    );
                } else {
                    n.nud_state = NudState::FAILED;
                    n.updated = now;
                    if let Some(skb) = skb {
                        kfree_skb_reason(skb, DropReason::NeighFailed);
                    }
                    return;
                }
            } else if st.contains(NudState::STALE) {
                n.nud_state = NudState::DELAY;
                n.updated = now;
                timers.arm_timer(Ipv4Timer::NeighTimer(id), now + parms.delay_probe_time);
            }
        }
        if n.nud_state == NudState::INCOMPLETE {
            if let Some(skb) = skb {
                while n.arp_queue_len_bytes + skb.truesize() > parms.queue_len_bytes {
                    let Some(old) = n.arp_queue.pop_front() else {
                        break;
                    };
                    n.arp_queue_len_bytes -= old.truesize();
                    kfree_skb_reason(old, DropReason::NeighQueuefull);
                    self.stats.unresolved_discards += 1;
                }
                n.arp_queue_len_bytes += skb.truesize();
                n.arp_queue.push_back(skb);
            }
        } else if let Some(skb) = skb {
            out.push(NeighAction::Output {
                ifindex: n.ifindex,
                ha: n.ha,
                skb,
            });
        }
        if immediate_probe {
            neigh_probe(n, out);
        }
    }

    /// Changes an entry's state and address.
    ///
    /// Mirrors `neigh_update()`/`__neigh_update()`: PERMANENT and NOARP
    /// entries change only with [`NeighUpdateFlags::ADMIN`]; a different
    /// address replaces a valid one only with `OVERRIDE`; a STALE update
    /// with the same address keeps the current state; entering a connected
    /// state stamps `confirmed`; entering a valid state from an invalid one
    /// releases the queued packets as [`NeighAction::Output`]; entering
    /// FAILED from INCOMPLETE or PROBE reports them unreachable.
    /// Errors: [`Errno::NoEnt`] for an unknown id, [`Errno::Perm`] for a
    /// protected entry, [`Errno::Inval`] without an address for an invalid
    /// entry.
    #[allow(clippy::too_many_arguments)]
    pub fn neigh_update<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        id: NeighId,
        lladdr: Option<EthernetAddress>,
        new: NudState,
        flags: NeighUpdateFlags,
        out: &mut Vec<NeighAction>,
    ) -> Result<(), Errno> {
        self.genid_bump();
        let parms = self.parms;
        let reachable_time = self.reachable_time;
        let n = self.neighs.get_mut(&id).ok_or(Errno::NoEnt)?;
        let old = n.nud_state;
        if !flags.contains(NeighUpdateFlags::ADMIN)
            && old.intersects(NudState::NOARP | NudState::PERMANENT)
        {
            return Err(Errno::Perm);
        }
        if !new.intersects(NudState::VALID) {
            timers.cancel_timer(Ipv4Timer::NeighTimer(id));
            n.nud_state = new;
            if old.intersects(NudState::INCOMPLETE | NudState::PROBE) && new == NudState::FAILED {
                self.neigh_invalidate(now, id, out);
            }
            return Ok(());
        }
        let mut lladdr = match lladdr {
            Some(a) => a,
            None if old.intersects(NudState::VALID) => n.ha,
            None => return Err(Errno::Inval),
        };
        if new.intersects(NudState::CONNECTED) {
            n.confirmed = now;
        }
        let mut new = new;
        if old.intersects(NudState::VALID) {
            if lladdr != n.ha && !flags.contains(NeighUpdateFlags::OVERRIDE) {
                return Ok(());
            }
            if lladdr == n.ha && new == NudState::STALE && !flags.contains(NeighUpdateFlags::ADMIN)
            {
                new = old;
            }
        } else if lladdr == n.ha {
            lladdr = n.ha;
        }
        if new != old || lladdr != n.ha {
            n.updated = now;
        }
        if new != old {
            timers.cancel_timer(Ipv4Timer::NeighTimer(id));
            if new.contains(NudState::PROBE) {
                n.probes = 0;
            }
            if new.intersects(NudState::IN_TIMER) {
                let after = if new.contains(NudState::REACHABLE) {
                    reachable_time
                } else {
                    Duration::ZERO
                };
                timers.arm_timer(Ipv4Timer::NeighTimer(id), now + after);
            }
            n.nud_state = new;
        }
        if lladdr != n.ha {
            n.ha = lladdr;
            if !new.intersects(NudState::CONNECTED) {
                n.confirmed = now
                    .checked_sub(parms.base_reachable_time * 2)
                    .unwrap_or(Instant::ZERO);
            }
        }
        if new != old && !old.intersects(NudState::VALID) {
            let ifindex = n.ifindex;
            let ha = n.ha;
            n.arp_queue_len_bytes = 0;
            for skb in core::mem::take(&mut n.arp_queue) {
                out.push(NeighAction::Output { ifindex, ha, skb });
            }
        }
        Ok(())
    }

    /// Mirrors `neigh_invalidate()`: counts `res_failed` and reports every
    /// queued packet unreachable.
    fn neigh_invalidate(&mut self, now: Instant, id: NeighId, out: &mut Vec<NeighAction>) {
        self.stats.res_failed += 1;
        if let Some(n) = self.neighs.get_mut(&id) {
            n.updated = now;
            n.arp_queue_len_bytes = 0;
            for skb in core::mem::take(&mut n.arp_queue) {
                out.push(NeighAction::HostUnreachable { skb });
            }
        }
    }

    /// Records that `lladdr` sent us a solicitation for one of our
    /// addresses: creates the entry if needed and updates it to STALE with
    /// override. Mirrors `neigh_event_ns()`.
    pub fn neigh_event_ns<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        ifindex: u32,
        ip: Ipv4Addr,
        lladdr: EthernetAddress,
        out: &mut Vec<NeighAction>,
    ) -> Option<NeighId> {
        let id = self.neigh_create(timers, now, ifindex, ip, false).ok()?;
        let _ = self.neigh_update(
            timers,
            now,
            id,
            Some(lladdr),
            NudState::STALE,
            NeighUpdateFlags::OVERRIDE,
            out,
        );
        Some(id)
    }

    /// An upper layer saw forward progress with this neighbour (a TCP ACK):
    /// stamps `confirmed`. Mirrors `neigh_confirm()`.
    pub fn neigh_confirm(&mut self, now: Instant, ifindex: u32, ip: Ipv4Addr) {
        if let Some(id) = self.by_key.get(&(ifindex, ip))
            && let Some(n) = self.neighs.get_mut(id)
        {
            n.confirmed = now;
        }
    }

    /// `ip neigh replace IP lladdr HA dev D permanent`. Mirrors
    /// `neigh_add()` with `NUD_PERMANENT` (an admin update).
    pub fn neigh_add_permanent<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        ifindex: u32,
        ip: Ipv4Addr,
        lladdr: EthernetAddress,
        out: &mut Vec<NeighAction>,
    ) -> Result<NeighId, Errno> {
        let id = self.neigh_create(timers, now, ifindex, ip, true)?;
        self.neigh_update(
            timers,
            now,
            id,
            Some(lladdr),
            NudState::PERMANENT,
            NeighUpdateFlags::OVERRIDE | NeighUpdateFlags::ADMIN,
            out,
        )?;
        Ok(id)
    }

    /// Handles a fired [`Ipv4Timer::NeighTimer`] or [`Ipv4Timer::NeighGc`];
    /// other timers are ignored.
    pub fn on_timer<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        timer: Ipv4Timer,
        out: &mut Vec<NeighAction>,
    ) {
        match timer {
            Ipv4Timer::NeighTimer(id) => self.neigh_timer_handler(timers, now, id, out),
            Ipv4Timer::NeighGc => self.neigh_periodic_work(timers, now),
            Ipv4Timer::FragExpire(_) => {}
        }
    }

    /// Mirrors `neigh_timer_handler()`.
    fn neigh_timer_handler<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        id: NeighId,
        out: &mut Vec<NeighAction>,
    ) {
        self.genid_bump();
        let parms = self.parms;
        let reachable_time = self.reachable_time;
        let Some(n) = self.neighs.get_mut(&id) else {
            return;
        };
        let state = n.nud_state;
        if !state.intersects(NudState::IN_TIMER) {
            return;
        }
        let mut next = now + Duration::from_secs(1);
        if state.contains(NudState::REACHABLE) {
            if now <= n.confirmed + reachable_time {
                next = n.confirmed + reachable_time;
            } else if now <= n.used + parms.delay_probe_time {
                n.nud_state = NudState::DELAY;
                n.updated = now;
                next = now + parms.delay_probe_time;
            } else {
                n.nud_state = NudState::STALE;
                n.updated = now;
            }
        } else if state.contains(NudState::DELAY) {
            if now <= n.confirmed + parms.delay_probe_time {
                n.nud_state = NudState::REACHABLE;
                n.updated = now;
                next = n.confirmed + reachable_time;
            } else {
                n.nud_state = NudState::PROBE;
                n.updated = now;
                n.probes = 0;
                next = now + parms.retrans_time.max(HZ_100);
            }
        } else {
            next = now + parms.retrans_time.max(HZ_100);
        }
        let max_probes = parms.ucast_probes
            + parms.app_probes
            + if n.nud_state.contains(NudState::PROBE) {
                parms.mcast_reprobes
            } else {
                parms.mcast_probes
            };
        if n.nud_state
            .intersects(NudState::INCOMPLETE | NudState::PROBE)
            && n.probes >= max_probes
        {
            n.nud_state = NudState::FAILED;
            self.neigh_invalidate(now, id, out);
            return;
        }
        if n.nud_state.intersects(NudState::IN_TIMER) {
            timers.arm_timer(Ipv4Timer::NeighTimer(id), next.max(now + HZ_100));
        }
        if n.nud_state
            .intersects(NudState::INCOMPLETE | NudState::PROBE)
        {
            neigh_probe(n, out);
        }
    }

    /// Mirrors `neigh_forced_gc()`: walks the entries oldest first and
    /// removes idle ones (no timer running) that are FAILED, NOARP or not
    /// updated in the last 5 s, until the table is back to `gc_thresh2`.
    /// Returns how many were removed.
    pub fn neigh_forced_gc<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
    ) -> usize {
        self.stats.forced_gc_runs += 1;
        let max_clean = self.gc_entries().saturating_sub(self.parms.gc_thresh2);
        let tref = now
            .checked_sub(Duration::from_secs(5))
            .unwrap_or(Instant::ZERO);
        let victims: Vec<NeighId> = self
            .neighs
            .values()
            .filter(|n| {
                let st = n.nud_state;
                !st.intersects(NudState::PERMANENT | NudState::IN_TIMER)
                    && (st == NudState::FAILED
                        || st == NudState::NOARP
                        || !(tref <= n.updated && n.updated <= now))
            })
            .map(|n| n.id)
            .take(max_clean.max(1))
            .collect();
        let shrunk = victims.len();
        for id in victims {
            self.neigh_destroy(timers, id);
        }
        self.last_flush = now;
        shrunk
    }

    /// Mirrors `neigh_periodic_work()`: every `base_reachable_time / 2`,
    /// re-draws `reachable_time` every 300 s and, above `gc_thresh1`
    /// entries, removes idle entries that are FAILED or unused for
    /// `gc_stale_time`.
    fn neigh_periodic_work<T: TimerContext<Ipv4Timer>>(&mut self, timers: &mut T, now: Instant) {
        self.stats.periodic_gc_runs += 1;
        if now > self.last_rand + Duration::from_secs(300) {
            self.last_rand = now;
            self.reachable_time =
                neigh_rand_reach_time(&mut self.rng, self.parms.base_reachable_time);
        }
        if self.neighs.len() >= self.parms.gc_thresh1 {
            let stale = self.parms.gc_stale_time;
            let mut victims = Vec::new();
            for n in self.neighs.values_mut() {
                if n.nud_state
                    .intersects(NudState::PERMANENT | NudState::IN_TIMER)
                {
                    continue;
                }
                if n.used < n.confirmed && n.confirmed <= now {
                    n.used = n.confirmed;
                }
                if n.nud_state == NudState::FAILED || !(n.used <= now && now < n.used + stale) {
                    victims.push(n.id);
                }
            }
            for id in victims {
                self.neigh_destroy(timers, id);
            }
        }
        timers.arm_timer(Ipv4Timer::NeighGc, now + self.parms.base_reachable_time / 2);
    }

    /// `ip neigh show`: one line per entry, by device then address, e.g.
    /// `198.18.0.2 dev eth0 lladdr 02:00:00:00:00:02 REACHABLE`. `name`
    /// maps an ifindex to its device name.
    pub fn ip_neigh_show(&self, name: impl Fn(u32) -> String) -> String {
        let mut v: Vec<&Neighbour> = self.neighs.values().collect();
        v.sort_by_key(|n| (n.ifindex, n.primary_key));
        let mut s = String::new();
        for n in v {
            let _ = write!(s, "{} dev {} ", n.primary_key, name(n.ifindex));
            if n.nud_state.intersects(NudState::VALID) {
                let _ = write!(s, "lladdr {} ", n.ha);
            }
            let _ = writeln!(s, "{}", n.nud_state.name());
        }
        s
    }
}

/// Mirrors `neigh_probe()`: asks for a solicitation (quoting the newest
/// queued packet's source) and counts it.
fn neigh_probe(n: &mut Neighbour, out: &mut Vec<NeighAction>) {
    let saddr_hint = n
        .arp_queue
        .back()
        .and_then(|skb| wire::Ipv4Packet::new_checked(skb.data()).ok())
        .map(|p| p.src_addr());
    out.push(NeighAction::Solicit {
        ifindex: n.ifindex,
        target: n.primary_key,
        probes: n.probes,
        ha: n.ha,
        saddr_hint,
    });
    n.probes += 1;
}

/// A reachable time drawn uniformly from `[base/2, 3·base/2)`.
///
/// Mirrors `neigh_rand_reach_time()`.
pub(crate) fn neigh_rand_reach_time(rng: &mut Prandom, base: Duration) -> Duration {
    let ms = base.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    let ms32 = u32::try_from(ms).unwrap_or(u32::MAX);
    Duration::from_millis(u64::from(rng.below(ms32)) + (ms >> 1))
}

#[cfg(test)]
mod tests;
