//! The hierarchical timer wheel: typed timer ids armed for an [`Instant`].
//!
//! Mirrors the non-cascading timer wheel of `kernel/time/timer.c` (Linux
//! 4.8 and later) with HZ=1000, so one jiffy is one millisecond.
//!
//! ```text
//!  level  granularity        bucket covers (delta from now)
//!  0      1 ms               0 ms      .. 63 ms
//!  1      8 ms               63 ms     .. 504 ms
//!  2      64 ms              504 ms    .. 4 s
//!  3      512 ms             4 s       .. 32 s
//!  4      4.096 s            32 s      .. 4 min 18 s
//!  5      32.768 s           4 min     .. 34 min
//!  6      4 min 22 s         34 min    .. 4 h 35 min
//!  7      34 min 57 s        4.5 h     .. 36.7 h
//!  8      4 h 39 min         36.7 h    .. 12.2 days
//! ```
//!
//! Each level has 64 buckets (`LVL_SIZE`), each 8 times (`LVL_CLK_DIV`)
//! coarser than the level below. A timer goes into the level whose range
//! holds its distance from now and stays there until its bucket expires;
//! timers are never cascaded down, as in Linux. The price is precision: a
//! timer in level `n` can fire up to that level's granularity late (Linux's
//! `calc_index()` rounds the expiry up to the level's granularity, so a timer
//! never fires early). Deadlines are first rounded up to the next jiffy, so
//! level 0 is exact at jiffy resolution.
//!
//! The wheel stores ids, not callbacks (STYLE §3): the owner arms
//! `TcpTimer::Retransmit` for an instant and gets that id back from
//! [`TimerWheel::pop_expired`] once the instant has passed.
//!
//! # Deviations from Linux
//! - Level 0 is not rounded up by one jiffy: Linux adds one jiffy because
//!   its `jiffies` counter ticks at the edge of a period; our deadlines are
//!   exact instants rounded up to the jiffy, so the extra jiffy is not needed.
//!   Higher levels round up to the next multiple of their granularity
//!   (Linux: the multiple strictly after), which keeps the same "never early,
//!   at most one granularity late" contract.
//! - Timers further away than `WHEEL_TIMEOUT_CUTOFF` (about 12.2 days) are
//!   parked at the wheel's horizon as in Linux, but when that bucket expires
//!   they are re-queued instead of firing early: a timer never fires before
//!   its deadline.
//! - Timers are keyed by id (`mod_timer` on an id), not by a `timer_list`
//!   embedded in the owner; an index from id to slab slot (open
//!   addressing, [`IdIndex`]) gives O(1) modify and cancel. Entries live in a slab with index-linked bucket
//!   lists, so arming allocates nothing once the slab has grown.
//! - Re-arming a pending timer for an expiry in the bucket it already sits
//!   in only updates its expiry, as `mod_timer()`'s own shortcut does when
//!   the new expiry maps to the same bucket (`__mod_timer()` with
//!   `idx == timer_get_idx(timer)`).
//! - Within one expiry batch timers fire in deadline order (then arm order);
//!   Linux runs a bucket's list in insertion order.

use core::fmt;
use core::hash::{Hash, Hasher};

use crate::time::{Duration, Instant};

/// Jiffies per second. Mirrors `HZ` (`CONFIG_HZ_1000`).
pub const HZ: u64 = 1000;
/// Nanoseconds in one jiffy.
const NSEC_PER_JIFFY: u64 = 1_000_000_000 / HZ;

/// Each level is `2^LVL_CLK_SHIFT` = 8 times coarser than the one below.
/// Mirrors `LVL_CLK_SHIFT` in `kernel/time/timer.c`.
pub const LVL_CLK_SHIFT: u32 = 3;
/// Buckets per level: `2^LVL_BITS` = 64. Mirrors `LVL_BITS`.
pub const LVL_BITS: u32 = 6;
/// Buckets per level. Mirrors `LVL_SIZE`.
pub const LVL_SIZE: usize = 1 << LVL_BITS;
const LVL_MASK: u64 = (LVL_SIZE as u64) - 1;
/// Number of levels for HZ > 100. Mirrors `LVL_DEPTH`.
pub const LVL_DEPTH: usize = 9;
const WHEEL_SIZE: usize = LVL_SIZE * LVL_DEPTH;

const fn lvl_shift(lvl: usize) -> u32 {
    lvl as u32 * LVL_CLK_SHIFT
}

const fn lvl_gran(lvl: usize) -> u64 {
    1 << lvl_shift(lvl)
}

/// First delta (in jiffies) that goes to level `n` (n >= 1).
const fn lvl_start(n: usize) -> u64 {
    (LVL_MASK) << ((n as u32 - 1) * LVL_CLK_SHIFT)
}

/// Deltas at or beyond this are parked at the horizon. Mirrors
/// `WHEEL_TIMEOUT_CUTOFF`.
const WHEEL_TIMEOUT_CUTOFF: u64 = lvl_start(LVL_DEPTH);
/// Where parked timers go. Mirrors `WHEEL_TIMEOUT_MAX`.
const WHEEL_TIMEOUT_MAX: u64 = WHEEL_TIMEOUT_CUTOFF - lvl_gran(LVL_DEPTH - 1);

const NIL: u32 = u32::MAX;

/// The level a timer `delta` jiffies away goes to. Mirrors the level choice
/// of `calc_wheel_index()`.
fn level_for(delta: u64) -> usize {
    (0..LVL_DEPTH - 1)
        .find(|&lvl| delta < lvl_start(lvl + 1))
        .unwrap_or(LVL_DEPTH - 1)
}

fn jiffies_ceil(t: Instant) -> u64 {
    t.as_nanos().div_ceil(NSEC_PER_JIFFY)
}

fn jiffies_floor(t: Instant) -> u64 {
    t.as_nanos() / NSEC_PER_JIFFY
}

fn jiffies_to_instant(j: u64) -> Instant {
    Instant::from_nanos(j.saturating_mul(NSEC_PER_JIFFY))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    Bucket(u16),
    Ready,
}

#[derive(Debug)]
struct TimerEntry<T> {
    id: Option<T>,
    deadline: Instant,
    /// The deadline in jiffies, rounded up.
    expires: u64,
    /// Arm order, to break ties between equal deadlines deterministically.
    seq: u64,
    prev: u32,
    next: u32,
    slot: Slot,
    /// Disarmed ([`TimerWheel::disarm`]): still in its bucket, but not
    /// pending, never handed out, and not counted by `next_expiry`.
    dead: bool,
}

/// A small multiplicative hasher for timer ids (small enums and integers);
/// ids are chosen by the stack, not by the wire, so no DoS resistance is
/// needed.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The hash of `id` that [`IdIndex`] keeps: the high half of
/// [`IdHasher`]'s product (its best-mixed bits).
#[inline(always)]
fn id_hash<T: Hash>(id: &T) -> u32 {
    let mut h = IdHasher::default();
    id.hash(&mut h);
    (h.finish() >> 32) as u32
}

/// One slot of an [`IdIndex`]: a slab index (`NIL` for an empty slot)
/// and the hash of the id that entry holds.
#[derive(Clone, Copy, Debug)]
struct IdSlot {
    idx: u32,
    hash: u32,
}

const EMPTY_SLOT: IdSlot = IdSlot { idx: NIL, hash: 0 };

/// The index from timer id to slab entry: open addressing with linear
/// probing over slab indices, the ids themselves being read from the slab
/// (a slab entry holds `Some(id)` exactly while the index maps `id` to
/// it). A removal shifts the entries after it back (no tombstones), so
/// the table never needs a rehash in place, however many ids come and go
/// (one socket's timers per connection). Each slot is 8 bytes, whatever
/// the id's size.
///
/// Linux needs no index (the owner embeds its `timer_list`); this is the
/// cheapest lookup by id that keeps the wheel's interface.
struct IdIndex {
    slots: Vec<IdSlot>,
    len: usize,
}

impl IdIndex {
    /// An index with room for `capacity` ids before it grows.
    fn with_capacity(capacity: usize) -> IdIndex {
        let slots = if capacity == 0 {
            Vec::new()
        } else {
            vec![EMPTY_SLOT; (capacity * 2 + 1).next_power_of_two().max(8)]
        };
        IdIndex { slots, len: 0 }
    }

    #[inline(always)]
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot holding `id` (whose hash is `hash`), if any.
    #[inline(always)]
    fn find<T: Copy + Eq>(&self, slab: &[TimerEntry<T>], id: T, hash: u32) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.probe(slab, id, hash).ok()
    }

    /// `Ok` with the slot holding `id` (whose hash is `hash`), or `Err`
    /// with the empty slot that ends its probe run (where
    /// [`insert_at`](Self::insert_at) may put it). The table must have a
    /// slot.
    #[inline(always)]
    fn probe<T: Copy + Eq>(
        &self,
        slab: &[TimerEntry<T>],
        id: T,
        hash: u32,
    ) -> Result<usize, usize> {
        self.probe_run(hash, |s| {
            s.hash == hash && slab[s.idx as usize].id.is_some_and(|i| i == id)
        })
    }

    /// Walks the probe run of `hash`: `Ok` with the first slot `hit`
    /// accepts, or `Err` with the empty slot that ends the run. The table
    /// must have a slot.
    #[inline(always)]
    fn probe_run(&self, hash: u32, mut hit: impl FnMut(IdSlot) -> bool) -> Result<usize, usize> {
        let mask = self.mask();
        let mut pos = hash as usize & mask;
        loop {
            let s = self.slots[pos];
            if s.idx == NIL {
                return Err(pos);
            }
            if hit(s) {
                return Ok(pos);
            }
            pos = (pos + 1) & mask;
        }
    }

    /// Whether one more id needs a bigger table (at most half full, so
    /// that a probe for an id not in the index ends after ~2.5 slots).
    #[inline(always)]
    fn full(&self) -> bool {
        (self.len + 1) * 2 > self.slots.len()
    }

    /// Puts slab entry `idx` (hash `hash`) into empty slot `pos`, from
    /// [`probe`](Self::probe) with no growth since.
    #[inline]
    fn insert_at(&mut self, pos: usize, hash: u32, idx: u32) {
        self.slots[pos] = IdSlot { idx, hash };
        self.len += 1;
    }

    /// The slot holding slab entry `idx`, whose id's hash is `hash`.
    #[inline]
    fn find_idx(&self, idx: u32, hash: u32) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.probe_run(hash, |s| s.idx == idx).ok()
    }

    /// Empties slot `pos`, moving back the entries of its probe run that
    /// may take it (backward-shift deletion); returns the slab index it
    /// held.
    #[inline]
    fn remove_at(&mut self, pos: usize) -> u32 {
        let mask = self.mask();
        let idx = self.slots[pos].idx;
        let mut hole = pos;
        let mut j = pos;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s.idx == NIL {
                break;
            }
            let home = s.hash as usize & mask;
            // `s` may fill the hole if the hole lies on its probe path,
            // from its home slot to `j`.
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY_SLOT;
        self.len -= 1;
        idx
    }

    /// Doubles the table (8 slots at first).
    #[cold]
    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(8);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY_SLOT; cap]);
        let mask = cap - 1;
        for s in old.into_iter().filter(|s| s.idx != NIL) {
            let mut pos = s.hash as usize & mask;
            while self.slots[pos].idx != NIL {
                pos = (pos + 1) & mask;
            }
            self.slots[pos] = s;
        }
    }
}

/// Disarmed entries a wheel keeps before it may purge them (see
/// `TimerWheel::purge_dead`): below this, and below the number of
/// pending timers, they wait for their bucket to run.
#[cfg(not(test))]
const DEAD_PURGE_MIN: usize = 1024;
/// Small in unit tests, so the wheel's model property test purges often.
#[cfg(test)]
const DEAD_PURGE_MIN: usize = 4;

/// A hierarchical timer wheel of typed timer ids.
///
/// Mirrors `struct timer_base` and its operations in `kernel/time/timer.c`:
/// [`arm`](Self::arm) is `mod_timer()`/`add_timer()`,
/// [`cancel`](Self::cancel) is `timer_delete()` (`del_timer()`),
/// [`pending`](Self::pending) is `timer_pending()`, and
/// [`pop_expired`](Self::pop_expired) is the body of `__run_timers()` run
/// from the `TIMER` softirq. One wheel per CPU; it is not shared.
///
/// Each id is armed at most once: arming an id that is pending moves it.
///
/// ```
/// use netcore::{Duration, Instant, TimerWheel};
///
/// #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
/// enum TcpTimer { Retransmit, DelAck }
///
/// let t0 = Instant::from_secs(1);
/// let mut wheel = TimerWheel::new(t0);
/// wheel.arm(TcpTimer::Retransmit, t0 + Duration::from_millis(200));
/// wheel.arm(TcpTimer::DelAck, t0 + Duration::from_millis(40));
/// assert_eq!(wheel.next_expiry(), Some(t0 + Duration::from_millis(40)));
/// let mut fired = Vec::new();
/// wheel.run_timers(t0 + Duration::from_millis(100), |id, _| fired.push(id));
/// assert_eq!(fired, [TcpTimer::DelAck]);
/// ```
pub struct TimerWheel<T> {
    /// The next jiffy to process. Mirrors `timer_base::clk`.
    clk: u64,
    heads: Box<[u32; WHEEL_SIZE]>,
    /// One bit per bucket with timers. Mirrors `timer_base::pending_map`.
    pending_map: [u64; LVL_DEPTH],
    /// One bit per bucket with a timer not disarmed: what
    /// [`next_expiry`](Self::next_expiry) searches, so disarmed entries
    /// (thousands of them on a host with many idle connections) cost it
    /// nothing.
    live_map: [u64; LVL_DEPTH],
    /// How many timers not disarmed each bucket holds (`live_map`'s bit
    /// is set when the count is not zero).
    live: Box<[u32; WHEEL_SIZE]>,
    slab: Vec<TimerEntry<T>>,
    free: u32,
    ids: IdIndex,
    /// Expired timers not yet handed out, sorted latest first.
    ready: Vec<(Instant, u64, u32)>,
    seq: u64,
    /// Entries disarmed but still in a bucket (in `ids`, not pending).
    dead: usize,
    /// Slab indices of the ids looked up most recently (`NIL` for none),
    /// checked before `ids` is hashed. A hint is trusted only if its slab
    /// entry still holds the id (a released entry's id is `None`; a slab
    /// entry holds an id exactly while `ids` maps that id to it), so it
    /// needs no invalidation.
    ///
    /// Linux needs no lookup at all: the owner holds its `timer_list`. A
    /// socket re-arms and clears the same few timers (delayed ACK,
    /// retransmit) over and over, so two hints skip the hash on most of
    /// TCP's arms and disarms; nothing observable changes.
    hint: [u32; 2],
}

impl<T: Copy + Eq + Hash> TimerWheel<T> {
    /// An empty wheel whose clock starts at `now`.
    ///
    /// Mirrors `init_timer_cpu()`.
    pub fn new(now: Instant) -> TimerWheel<T> {
        TimerWheel::with_capacity(now, 0)
    }

    /// An empty wheel with room for `capacity` timers before it allocates.
    pub fn with_capacity(now: Instant, capacity: usize) -> TimerWheel<T> {
        TimerWheel {
            clk: jiffies_floor(now),
            heads: Box::new([NIL; WHEEL_SIZE]),
            pending_map: [0; LVL_DEPTH],
            live_map: [0; LVL_DEPTH],
            live: Box::new([0; WHEEL_SIZE]),
            slab: Vec::with_capacity(capacity),
            free: NIL,
            ids: IdIndex::with_capacity(capacity),
            ready: Vec::with_capacity(capacity.min(64)),
            seq: 0,
            dead: 0,
            hint: [NIL; 2],
        }
    }

    /// Whether slab entry `h` holds `id`.
    #[inline(always)]
    fn holds(&self, h: u32, id: T) -> bool {
        self.slab
            .get(h as usize)
            .is_some_and(|e| e.id.is_some_and(|i| i == id))
    }

    /// The slab index of `id` if a hint points at it.
    #[inline(always)]
    fn hinted(&self, id: T) -> Option<u32> {
        let [h0, h1] = self.hint;
        if self.holds(h0, id) {
            Some(h0)
        } else if self.holds(h1, id) {
            Some(h1)
        } else {
            None
        }
    }

    /// [`hinted`](Self::hinted), moving a hit to the front: most lookups
    /// then compare the id once.
    #[inline(always)]
    fn hinted_mru(&mut self, id: T) -> Option<u32> {
        let [h0, h1] = self.hint;
        if self.holds(h0, id) {
            Some(h0)
        } else if self.holds(h1, id) {
            self.hint = [h1, h0];
            Some(h1)
        } else {
            None
        }
    }

    /// Remembers `idx` as the most recent lookup.
    #[inline(always)]
    fn remember(&mut self, idx: u32) {
        if self.hint[0] != idx {
            self.hint = [idx, self.hint[0]];
        }
    }

    /// The slab index of `id`, if it is in the wheel: a hint, else the
    /// id map (and the index becomes a hint).
    #[inline(always)]
    fn lookup(&mut self, id: T) -> Option<u32> {
        if let Some(idx) = self.hinted_mru(id) {
            return Some(idx);
        }
        let pos = self.ids.find(&self.slab, id, id_hash(&id))?;
        let idx = self.ids.slots[pos].idx;
        self.remember(idx);
        Some(idx)
    }

    /// The granularity of wheel level `lvl` (1 ms × 8^lvl), or `None` past
    /// the last level.
    pub fn granularity(lvl: usize) -> Option<Duration> {
        (lvl < LVL_DEPTH).then(|| Duration::from_millis(lvl_gran(lvl)))
    }

    /// How late a timer armed at `armed_at` for `deadline` may fire, at
    /// most: the granularity of the level it lands in (strictly less than
    /// this much after `deadline`). It never fires before `deadline`.
    pub fn slack(armed_at: Instant, deadline: Instant) -> Duration {
        let delta = jiffies_ceil(deadline).saturating_sub(jiffies_floor(armed_at));
        Duration::from_millis(lvl_gran(level_for(delta.min(WHEEL_TIMEOUT_CUTOFF - 1))))
    }

    /// Number of pending timers (armed and not yet handed out).
    pub fn len(&self) -> usize {
        self.ids.len - self.dead
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Arms `id` to expire at `deadline`, moving it if it is already armed.
    ///
    /// Mirrors `mod_timer()` (and `add_timer()` for a new id) in
    /// `kernel/time/timer.c`. Returns the previous deadline if `id` was
    /// pending. O(1); allocates only when the wheel holds more timers than
    /// ever before. A deadline in the past fires on the next
    /// [`pop_expired`](Self::pop_expired).
    #[doc(alias = "mod_timer")]
    #[doc(alias = "add_timer")]
    pub fn arm(&mut self, id: T, deadline: Instant) -> Option<Instant> {
        self.seq += 1;
        let seq = self.seq;
        let expires = jiffies_ceil(deadline);
        // A hinted id needs no hash; else one hash of the id: its index
        // slot is found or made at once.
        // Ok: the id's entry; Err: a new entry.
        let found = if let Some(idx) = self.hinted_mru(id) {
            Ok(idx)
        } else {
            self.index_or_alloc(id)
        };
        let (idx, previous) = match found {
            Ok(idx) => {
                let entry = &mut self.slab[idx as usize];
                // A disarmed entry comes back to life: it was not pending.
                let prev = if entry.dead {
                    entry.dead = false;
                    self.dead -= 1;
                    // A dead entry is always in a bucket (disarm cancels
                    // one already collected): it counts as live again.
                    if let Slot::Bucket(b) = entry.slot {
                        self.live_inc(usize::from(b));
                    }
                    None
                } else {
                    Some(entry.deadline)
                };
                if let Slot::Bucket(b) = self.slab[idx as usize].slot
                    && self.stays_in(usize::from(b), self.slab[idx as usize].expires, expires)
                {
                    // Same bucket: only the expiry changes (mod_timer()'s
                    // shortcut); collect() reads it when the bucket runs.
                    let e = &mut self.slab[idx as usize];
                    e.deadline = deadline;
                    e.expires = expires;
                    e.seq = seq;
                    return prev;
                }
                self.detach(idx);
                (idx, prev)
            }
            Err(idx) => (idx, None),
        };
        let e = &mut self.slab[idx as usize];
        e.deadline = deadline;
        e.expires = expires;
        e.seq = seq;
        self.enqueue(idx);
        previous
    }

    /// The slab entry of `id` when no hint holds it: `Ok` with the entry
    /// the index maps it to, else `Err` with a new entry for it, indexed.
    /// The index becomes a hint. Out of line: a socket re-arming its timers
    /// finds them by a hint and does not carry this path.
    #[inline(never)]
    fn index_or_alloc(&mut self, id: T) -> Result<u32, u32> {
        let hash = id_hash(&id);
        if self.ids.full() {
            self.ids.grow();
        }
        let found = match self.ids.probe(&self.slab, id, hash) {
            Ok(pos) => Ok(self.ids.slots[pos].idx),
            Err(pos) => {
                let idx = alloc(&mut self.slab, &mut self.free, id);
                self.ids.insert_at(pos, hash, idx);
                Err(idx)
            }
        };
        let (Ok(idx) | Err(idx)) = found;
        self.remember(idx);
        found
    }

    /// Cancels `id`; returns its deadline if it was pending.
    ///
    /// Mirrors `timer_delete()` (formerly `del_timer()`). O(1), except for
    /// a timer already expired but not yet handed out (linear in that
    /// batch).
    #[doc(alias = "del_timer")]
    #[doc(alias = "timer_delete")]
    pub fn cancel(&mut self, id: T) -> Option<Instant> {
        let pos = self.ids.find(&self.slab, id, id_hash(&id))?;
        let idx = self.ids.remove_at(pos);
        let e = &self.slab[idx as usize];
        let deadline = (!e.dead).then_some(e.deadline);
        if e.dead {
            self.dead -= 1;
        }
        self.detach(idx);
        self.release(idx);
        deadline
    }

    /// Stops `id` without taking it off the wheel; returns its deadline if
    /// it was pending.
    ///
    /// For an owner that keeps its own "armed" flag and ignores a stale
    /// expiry, as TCP does with `icsk_pending` when Linux is built without
    /// `INET_CSK_CLEAR_TIMERS` (`inet_csk_clear_xmit_timer()` leaves the
    /// `timer_list` queued). Observably it is [`cancel`](Self::cancel): the
    /// id is no longer [`pending`](Self::pending), is not counted by
    /// [`len`](Self::len), never comes out of
    /// [`pop_expired`](Self::pop_expired) and does not move
    /// [`next_expiry`](Self::next_expiry). The entry stays in its bucket
    /// (one hash lookup, no unlinking) until the bucket expires, the id
    /// is armed again (`mod_timer()`'s same-bucket shortcut when the new
    /// expiry lands in the same bucket), or disarmed entries outnumber the
    /// pending timers and the wheel purges them all.
    pub fn disarm(&mut self, id: T) -> Option<Instant> {
        let idx = self.lookup(id)?;
        let e = &mut self.slab[idx as usize];
        match e.slot {
            Slot::Bucket(b) if !e.dead => {
                e.dead = true;
                self.dead += 1;
                let deadline = e.deadline;
                self.live_dec(usize::from(b));
                if self.dead > DEAD_PURGE_MIN.max(self.len()) {
                    self.purge_dead();
                }
                Some(deadline)
            }
            Slot::Bucket(_) | Slot::Free => None,
            // Already collected: leave the batch now.
            Slot::Ready => self.cancel(id),
        }
    }

    /// The deadline `id` is armed for, if it is pending.
    ///
    /// Mirrors `timer_pending()`, returning the expiry as well.
    #[doc(alias = "timer_pending")]
    pub fn pending(&self, id: T) -> Option<Instant> {
        self.hinted(id)
            .or_else(|| {
                let pos = self.ids.find(&self.slab, id, id_hash(&id))?;
                Some(self.ids.slots[pos].idx)
            })
            .and_then(|idx| {
                let e = &self.slab[idx as usize];
                (!e.dead).then_some(e.deadline)
            })
    }

    /// The earliest instant at which a pending timer is due, so an idle
    /// simulation can jump virtual time there.
    ///
    /// Mirrors `get_next_timer_interrupt()`. The instant is the expiry of a
    /// wheel bucket, so it may be up to one level granularity after the
    /// earliest deadline, and for timers parked beyond the wheel's horizon
    /// it may be an instant at which nothing fires (they are re-queued).
    pub fn next_expiry(&self) -> Option<Instant> {
        if let Some(&(deadline, _, _)) = self.ready.last() {
            return Some(deadline);
        }
        next_jiffy(self.clk, &self.live_map).map(jiffies_to_instant)
    }

    /// Hands out one timer whose deadline is at or before `now`, with its
    /// deadline, or `None` when none is due.
    ///
    /// Mirrors `__run_timers()`/`expire_timers()`: the wheel clock advances
    /// bucket by bucket up to `now`; expired timers come out in deadline
    /// order within a batch. The handler may re-arm between calls (the id is
    /// no longer pending once handed out). `now` must not decrease between
    /// calls.
    #[doc(alias = "run_timers")]
    #[doc(alias = "__run_timers")]
    pub fn pop_expired(&mut self, now: Instant) -> Option<(T, Instant)> {
        loop {
            if let Some((deadline, _, idx)) = self.ready.pop() {
                let id = self.slab[idx as usize].id.expect("ready timer has an id");
                self.unindex(idx, id);
                self.slab[idx as usize].slot = Slot::Free;
                self.release(idx);
                return Some((id, deadline));
            }
            let target = jiffies_floor(now);
            if self.clk > target {
                return None;
            }
            match next_jiffy(self.clk, &self.pending_map) {
                Some(j) if j <= target => self.collect(j),
                _ => {
                    self.clk = target + 1;
                    return None;
                }
            }
        }
    }

    /// Fires every timer due at `now`, calling `f(id, deadline)` for each;
    /// returns how many fired.
    ///
    /// Mirrors `run_timer_softirq()`. `f` cannot re-arm; use
    /// [`pop_expired`](Self::pop_expired) in a loop for that.
    pub fn run_timers(&mut self, now: Instant, mut f: impl FnMut(T, Instant)) -> usize {
        let mut n = 0;
        while let Some((id, deadline)) = self.pop_expired(now) {
            f(id, deadline);
            n += 1;
        }
        n
    }

    /// Takes slab entry `idx`, which holds `id`, out of the id index.
    #[inline]
    fn unindex(&mut self, idx: u32, id: T) {
        if let Some(pos) = self.ids.find_idx(idx, id_hash(&id)) {
            self.ids.remove_at(pos);
        }
    }

    fn release(&mut self, idx: u32) {
        let e = &mut self.slab[idx as usize];
        e.id = None;
        e.dead = false;
        e.slot = Slot::Free;
        e.prev = NIL;
        e.next = self.free;
        self.free = idx;
    }

    /// Takes `idx` out of its bucket or out of the ready batch.
    fn detach(&mut self, idx: u32) {
        match self.slab[idx as usize].slot {
            Slot::Free => {}
            Slot::Ready => {
                self.ready.retain(|&(_, _, i)| i != idx);
            }
            Slot::Bucket(b) => {
                let (prev, next) = {
                    let e = &self.slab[idx as usize];
                    (e.prev, e.next)
                };
                if prev == NIL {
                    self.heads[b as usize] = next;
                } else {
                    self.slab[prev as usize].next = next;
                }
                if next != NIL {
                    self.slab[next as usize].prev = prev;
                }
                let b = b as usize;
                if self.heads[b] == NIL {
                    self.pending_map[b / LVL_SIZE] &= !(1 << (b % LVL_SIZE));
                }
                if !self.slab[idx as usize].dead {
                    self.live_dec(b);
                }
            }
        }
        self.slab[idx as usize].slot = Slot::Free;
    }

    /// Puts `idx` into the bucket for its expiry. Mirrors
    /// `enqueue_timer()` with `calc_wheel_index()`.
    fn enqueue(&mut self, idx: u32) {
        let expires = self.slab[idx as usize].expires;
        if expires < self.clk {
            // The jiffy has already been processed: due now.
            let e = &mut self.slab[idx as usize];
            e.slot = Slot::Ready;
            let item = (e.deadline, e.seq, idx);
            let pos = self
                .ready
                .partition_point(|r| (r.0, r.1) > (item.0, item.1));
            self.ready.insert(pos, item);
            return;
        }
        let b = self.wheel_index(expires);
        let head = self.heads[b];
        {
            let e = &mut self.slab[idx as usize];
            e.prev = NIL;
            e.next = head;
            e.slot = Slot::Bucket(b as u16);
        }
        if head != NIL {
            self.slab[head as usize].prev = idx;
        }
        self.heads[b] = idx;
        self.pending_map[b / LVL_SIZE] |= 1 << (b % LVL_SIZE);
        self.live_inc(b);
    }

    /// Drops every disarmed entry from the buckets. Run when the disarmed
    /// entries outnumber the pending timers (and [`DEAD_PURGE_MIN`]), so
    /// their memory stays bounded by the pending timers' (a host with a
    /// million idle connections whose handshake timers TCP cleared
    /// lazily) at an amortized O(1) per disarm: each purge frees at least
    /// half of what it walks.
    fn purge_dead(&mut self) {
        for lvl in 0..LVL_DEPTH {
            let mut map = self.pending_map[lvl];
            while map != 0 {
                let b = lvl * LVL_SIZE + map.trailing_zeros() as usize;
                map &= map - 1;
                let mut idx = self.heads[b];
                while idx != NIL {
                    let e = &self.slab[idx as usize];
                    let (next, dead, id) = (e.next, e.dead, e.id);
                    if dead {
                        self.detach(idx);
                        if let Some(id) = id {
                            self.unindex(idx, id);
                        }
                        self.dead -= 1;
                        self.release(idx);
                    }
                    idx = next;
                }
            }
        }
    }

    /// One more timer not disarmed in bucket `b`.
    #[inline]
    fn live_inc(&mut self, b: usize) {
        self.live[b] += 1;
        self.live_map[b / LVL_SIZE] |= 1 << (b % LVL_SIZE);
    }

    /// One timer fewer not disarmed in bucket `b`.
    #[inline]
    fn live_dec(&mut self, b: usize) {
        self.live[b] -= 1;
        if self.live[b] == 0 {
            self.live_map[b / LVL_SIZE] &= !(1 << (b % LVL_SIZE));
        }
    }

    /// Whether a timer in bucket `b` with expiry jiffy `old` would go to
    /// the same bucket if armed now for jiffy `new`. The same expiry in a
    /// bucket of a level below the last stays there while the distance
    /// from the wheel's clock is still in that level's range (the clock
    /// only moves forward, so the distance only shrinks): `mod_timer()`'s
    /// return for an unchanged expiry, without recomputing the bucket.
    #[inline]
    fn stays_in(&self, b: usize, old: u64, new: u64) -> bool {
        let lvl = b / LVL_SIZE;
        if old == new && new >= self.clk && lvl < LVL_DEPTH - 1 {
            return lvl == 0 || new - self.clk >= lvl_start(lvl);
        }
        self.bucket_for(new) == Some(b)
    }

    /// The bucket a timer expiring at jiffy `expires` goes to, or `None`
    /// if that jiffy has been processed (the timer is due now).
    fn bucket_for(&self, expires: u64) -> Option<usize> {
        (expires >= self.clk).then(|| self.wheel_index(expires))
    }

    /// The bucket for jiffy `expires` (not before `clk`). Mirrors
    /// `calc_wheel_index()`.
    fn wheel_index(&self, expires: u64) -> usize {
        let delta = expires - self.clk;
        let (lvl, expires) = if delta >= WHEEL_TIMEOUT_CUTOFF {
            (LVL_DEPTH - 1, self.clk + WHEEL_TIMEOUT_MAX)
        } else {
            (level_for(delta), expires)
        };
        // Round up to the level's granularity: never early.
        let bucket = expires.div_ceil(lvl_gran(lvl));
        lvl * LVL_SIZE + (bucket & LVL_MASK) as usize
    }

    /// Processes jiffy `j`: moves every bucket expiring at `j` to the ready
    /// batch. Mirrors `collect_expired_timers()`.
    fn collect(&mut self, j: u64) {
        self.clk = j + 1;
        for lvl in 0..LVL_DEPTH {
            if lvl > 0 && j & (lvl_gran(lvl) - 1) != 0 {
                break;
            }
            let b = lvl * LVL_SIZE + ((j >> lvl_shift(lvl)) & LVL_MASK) as usize;
            if self.pending_map[lvl] & (1 << (b % LVL_SIZE)) == 0 {
                continue;
            }
            self.pending_map[lvl] &= !(1 << (b % LVL_SIZE));
            self.live_map[lvl] &= !(1 << (b % LVL_SIZE));
            self.live[b] = 0;
            let mut idx = core::mem::replace(&mut self.heads[b], NIL);
            while idx != NIL {
                let e = &mut self.slab[idx as usize];
                let next = e.next;
                e.prev = NIL;
                e.next = NIL;
                if e.dead {
                    // Disarmed: dropped here, where Linux's handler would
                    // find its owner's flag clear and return.
                    e.slot = Slot::Free;
                    if let Some(id) = e.id {
                        self.unindex(idx, id);
                    }
                    self.dead -= 1;
                    self.release(idx);
                } else if e.expires > j {
                    // Parked beyond the horizon: not due yet, re-queue.
                    self.enqueue(idx);
                } else {
                    e.slot = Slot::Ready;
                    self.ready.push((e.deadline, e.seq, idx));
                }
                idx = next;
            }
        }
        self.ready
            .sort_unstable_by_key(|&(deadline, seq, _)| core::cmp::Reverse((deadline, seq)));
    }
}

#[cfg(test)]
impl<T: Copy + Eq + Hash> TimerWheel<T> {
    /// Checks `live`/`live_map` against the buckets' contents.
    fn assert_live_counts(&self) {
        for b in 0..WHEEL_SIZE {
            let mut n = 0;
            let mut idx = self.heads[b];
            while idx != NIL {
                let e = &self.slab[idx as usize];
                n += u32::from(!e.dead);
                idx = e.next;
            }
            assert_eq!(self.live[b], n, "bucket {b}");
            let bit = self.live_map[b / LVL_SIZE] & (1 << (b % LVL_SIZE)) != 0;
            assert_eq!(bit, n > 0, "bucket {b}");
        }
    }
}

/// The first jiffy, from `clk` on, whose bucket has its bit set in
/// `maps` (one bitmap per level): the earliest on every level, as
/// `__next_timer_interrupt()` takes the minimum of each level's first
/// pending bucket.
///
/// Called each time a CPU's next expiry is read after a change, so kept
/// lean: the granularities are powers of two (a shift, no division) and
/// the minimum is a plain `u64` (`u64::MAX` for none: no jiffy of a
/// wheel whose clock is an [`Instant`] in jiffies comes near it).
#[inline]
fn next_jiffy(clk: u64, maps: &[u64; LVL_DEPTH]) -> Option<u64> {
    let mut best = u64::MAX;
    for (lvl, &map) in maps.iter().enumerate() {
        if map == 0 {
            continue;
        }
        let shift = lvl_shift(lvl);
        // The first bucket of this level not processed yet:
        // `clk.div_ceil(lvl_gran(lvl))`.
        let start = (clk + (lvl_gran(lvl) - 1)) >> shift;
        let pos = (start & LVL_MASK) as u32;
        let off = u64::from(map.rotate_right(pos).trailing_zeros());
        best = best.min((start + off) << shift);
    }
    (best != u64::MAX).then_some(best)
}

/// Takes a free slab slot for `id` (from the free list, else a new one);
/// returns its index. A free function so that [`TimerWheel::arm`] can
/// call it beside the id index.
fn alloc<T>(slab: &mut Vec<TimerEntry<T>>, free: &mut u32, id: T) -> u32 {
    let entry = TimerEntry {
        id: Some(id),
        deadline: Instant::ZERO,
        expires: 0,
        seq: 0,
        prev: NIL,
        next: NIL,
        slot: Slot::Free,
        dead: false,
    };
    if *free == NIL {
        let idx = u32::try_from(slab.len()).expect("fewer than 2^32 timers");
        slab.push(entry);
        idx
    } else {
        let idx = *free;
        *free = slab[idx as usize].next;
        slab[idx as usize] = entry;
        idx
    }
}

impl<T: fmt::Debug> fmt::Debug for TimerWheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerWheel")
            .field("clk", &self.clk)
            .field("pending", &(self.ids.len - self.dead))
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::collections::HashMap;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn drain(w: &mut TimerWheel<u32>, now: Instant) -> Vec<(u32, Instant)> {
        let mut v = Vec::new();
        while let Some(x) = w.pop_expired(now) {
            v.push(x);
        }
        v
    }

    #[test]
    fn level_ranges_match_linux() {
        assert_eq!(level_for(0), 0);
        assert_eq!(level_for(62), 0);
        assert_eq!(level_for(63), 1);
        assert_eq!(level_for(503), 1);
        assert_eq!(level_for(504), 2);
        assert_eq!(level_for(WHEEL_TIMEOUT_CUTOFF - 1), 8);
        assert_eq!(WHEEL_TIMEOUT_CUTOFF, 63 << 24);
        assert_eq!(
            TimerWheel::<u32>::granularity(3),
            Some(Duration::from_millis(512))
        );
        assert_eq!(TimerWheel::<u32>::granularity(9), None);
    }

    #[test]
    fn level0_is_exact_to_the_jiffy() {
        let mut w = TimerWheel::new(ms(0));
        w.arm(1u32, Instant::from_micros(5_500));
        assert_eq!(w.next_expiry(), Some(ms(6)));
        assert!(drain(&mut w, Instant::from_micros(5_999)).is_empty());
        assert_eq!(drain(&mut w, ms(6)), [(1, Instant::from_micros(5_500))]);
        assert!(w.is_empty());
        assert_eq!(w.next_expiry(), None);
    }

    #[test]
    fn higher_levels_round_up_within_granularity() {
        let mut w = TimerWheel::new(ms(0));
        // 1000 ms away: level 2 (64 ms granularity), bucket at 1024 ms.
        w.arm(7u32, ms(1000));
        assert_eq!(w.next_expiry(), Some(ms(1024)));
        assert!(drain(&mut w, ms(1023)).is_empty());
        assert_eq!(drain(&mut w, ms(1024)), [(7, ms(1000))]);
    }

    #[test]
    fn modify_and_cancel() {
        let mut w = TimerWheel::new(ms(0));
        assert_eq!(w.arm(1u32, ms(10)), None);
        assert_eq!(w.arm(2, ms(20)), None);
        assert_eq!(w.arm(1, ms(30)), Some(ms(10)));
        assert_eq!(w.pending(1), Some(ms(30)));
        assert_eq!(w.cancel(2), Some(ms(20)));
        assert_eq!(w.cancel(2), None);
        assert_eq!(w.pending(2), None);
        assert!(drain(&mut w, ms(25)).is_empty());
        assert_eq!(drain(&mut w, ms(30)), [(1, ms(30))]);
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn past_deadline_fires_on_next_pop_and_rearm_from_handler() {
        let mut w = TimerWheel::new(ms(100));
        w.arm(1u32, ms(50));
        assert_eq!(w.next_expiry(), Some(ms(50)));
        assert_eq!(w.pop_expired(ms(100)), Some((1, ms(50))));
        // Re-arm from the "handler" for a later time: it fires once, later.
        w.arm(1, ms(150));
        assert_eq!(w.pop_expired(ms(100)), None);
        assert_eq!(drain(&mut w, ms(200)), [(1, ms(150))]);
    }

    #[test]
    fn batch_fires_in_deadline_order() {
        let mut w = TimerWheel::new(ms(0));
        w.arm(3u32, ms(30));
        w.arm(1, ms(10));
        w.arm(2, ms(20));
        w.arm(4, ms(20));
        let ids: Vec<u32> = drain(&mut w, ms(40))
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, [1, 2, 4, 3]);
    }

    #[test]
    fn far_future_timers_never_fire_early() {
        let mut w = TimerWheel::new(ms(0));
        let two_hours = Instant::from_secs(2 * 3600);
        let thirty_days = Instant::from_secs(30 * 86_400);
        w.arm(1u32, two_hours);
        w.arm(2, thirty_days);
        w.arm(3, Instant::MAX);
        let mut now = ms(0);
        let mut fired = Vec::new();
        let mut jumps = 0;
        while let Some(next) = w.next_expiry() {
            if next > Instant::from_secs(40 * 86_400) {
                break;
            }
            now = now.max(next);
            for (id, deadline) in drain(&mut w, now) {
                assert!(now >= deadline);
                assert!(now - deadline < TimerWheel::<u32>::slack(ms(0), deadline));
                fired.push(id);
            }
            jumps += 1;
            assert!(jumps < 100, "next_expiry must make progress");
        }
        assert_eq!(fired, [1, 2]);
        assert_eq!(w.pending(3), Some(Instant::MAX));
    }

    #[test]
    fn the_id_index_survives_churn() {
        // Many ids come and go (as sockets' timers do): every id armed
        // and not cancelled is found, every cancelled one is not, and the
        // index never holds more than the live ids.
        let mut w = TimerWheel::new(ms(0));
        let mut model: HashMap<u64, Instant> = HashMap::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = x % 3_000;
            if x & 0x100 == 0 {
                let at = ms(1_000 + (x >> 20) % 100_000);
                assert_eq!(w.arm(id, at), model.insert(id, at), "step {step}");
            } else {
                assert_eq!(w.cancel(id), model.remove(&id), "step {step}");
            }
            if step % 997 == 0 {
                for probe in 0..3_000u64 {
                    assert_eq!(w.pending(probe), model.get(&probe).copied());
                }
            }
            assert_eq!(w.ids.len, model.len());
        }
        assert_eq!(w.len(), model.len());
    }

    #[test]
    fn slab_is_reused() {
        let mut w = TimerWheel::with_capacity(ms(0), 4);
        for round in 0..100u64 {
            for id in 0..4u32 {
                w.arm(id, ms(round * 10 + 5));
            }
            for id in 0..2u32 {
                w.cancel(id);
            }
            assert_eq!(drain(&mut w, ms(round * 10 + 5)).len(), 2);
        }
        assert_eq!(w.slab.len(), 4);
    }

    #[test]
    fn a_stale_hint_is_not_trusted() {
        // The hints point at slab entries; once an id leaves the wheel its
        // entry is reused by another id, and the old id must not be found.
        let mut w = TimerWheel::new(ms(0));
        w.arm(1u32, ms(10));
        assert_eq!(w.disarm(1), Some(ms(10)));
        assert_eq!(w.cancel(1), None);
        w.arm(2u32, ms(20));
        assert_eq!(w.slab.len(), 1);
        assert_eq!(w.pending(1), None);
        assert_eq!(w.disarm(1), None);
        assert_eq!(w.pending(2), Some(ms(20)));
        assert_eq!(w.arm(1, ms(30)), None);
        assert_eq!(w.pending(1), Some(ms(30)));
        assert_eq!(w.pending(2), Some(ms(20)));
        assert_eq!(drain(&mut w, ms(30)), [(2, ms(20)), (1, ms(30))]);
        assert_eq!(w.pending(2), None);
        assert_eq!(w.disarm(2), None);
    }

    #[test]
    fn rearm_within_its_bucket_moves_the_expiry() {
        let mut w = TimerWheel::new(ms(0));
        // 100 ms away: level 1 (8 ms granularity), bucket at 104 ms.
        assert_eq!(w.arm(1u32, ms(100)), None);
        assert_eq!(w.arm(2u32, ms(101)), None);
        // Later within the same bucket, then earlier within it.
        assert_eq!(w.arm(1, ms(103)), Some(ms(100)));
        assert_eq!(w.pending(1), Some(ms(103)));
        assert_eq!(w.arm(2, ms(97)), Some(ms(101)));
        assert_eq!(w.next_expiry(), Some(ms(104)));
        assert!(drain(&mut w, ms(103)).is_empty());
        // Deadline order within the batch follows the new deadlines.
        assert_eq!(drain(&mut w, ms(104)), [(2, ms(97)), (1, ms(103))]);
        // Out of the bucket: it moves.
        w.arm(3, ms(200));
        assert_eq!(w.arm(3, ms(150)), Some(ms(200)));
        assert_eq!(drain(&mut w, ms(199)), [(3, ms(150))]);
        assert!(w.is_empty());
    }

    #[test]
    fn many_ids_arm_cancel_and_fire() {
        let mut w = TimerWheel::new(ms(0));
        // Ids that share their low bits: a weak id hash would collide.
        let id = |n: u32| n << 12;
        for n in 0..3_000u32 {
            assert_eq!(w.arm(id(n), ms(1_000 + u64::from(n))), None);
        }
        assert_eq!(w.len(), 3_000);
        for n in (0..3_000u32).filter(|n| n % 3 != 0) {
            assert_eq!(w.cancel(id(n)), Some(ms(1_000 + u64::from(n))));
        }
        assert_eq!(w.len(), 1_000);
        for n in 0..3_000u32 {
            let want = (n % 3 == 0).then(|| ms(1_000 + u64::from(n)));
            assert_eq!(w.pending(id(n)), want, "id {n}");
            assert_eq!(w.cancel(id(n) + 1), None);
        }
        let fired: Vec<u32> = drain(&mut w, ms(10_000))
            .into_iter()
            .map(|(i, _)| i >> 12)
            .collect();
        assert_eq!(fired, (0..3_000).step_by(3).collect::<Vec<_>>());
        assert!(w.is_empty());
        assert_eq!(w.pending(id(0)), None);
    }

    /// Re-armed for the same jiffy, a timer stays in its bucket while its
    /// distance from the clock is still in its level's range, and moves to
    /// a finer level once it is not (as a fresh arm would place it).
    #[test]
    fn rearm_for_the_same_jiffy_moves_down_a_level_when_due_sooner() {
        let mut w = TimerWheel::new(ms(0));
        // 100 ms away: level 1, bucket at 104 ms; 300 ms: level 1, 304 ms.
        w.arm(1u32, ms(100));
        w.arm(2u32, ms(300));
        assert_eq!(w.next_expiry(), Some(ms(104)));
        assert!(drain(&mut w, ms(60)).is_empty());
        // 40 ms away now: level 0, exact.
        assert_eq!(w.arm(1, ms(100)), Some(ms(100)));
        assert_eq!(w.next_expiry(), Some(ms(100)));
        // 240 ms away: still level 1, same bucket.
        assert_eq!(w.arm(2, Instant::from_micros(299_500)), Some(ms(300)));
        assert_eq!(drain(&mut w, ms(100)), [(1, ms(100))]);
        assert_eq!(w.next_expiry(), Some(ms(304)));
        assert_eq!(drain(&mut w, ms(304)), [(2, Instant::from_micros(299_500))]);
    }

    /// A disarmed timer is gone for every observer: not pending, not
    /// counted, never fired, and the idle jump skips its bucket; armed
    /// again it is new (no previous deadline) and fires once, at the new
    /// time, whether or not it lands in its old bucket.
    /// Thousands of disarmed timers (idle connections whose handshake
    /// timers TCP cleared lazily) in the buckets before a live one: the
    /// wheel keeps at most [`DEAD_PURGE_MIN`] of them, the idle jump goes
    /// straight to the live one, and reviving or cancelling them keeps the
    /// count of live timers per bucket exact.
    #[test]
    fn many_disarmed_timers_before_a_live_one() {
        let mut w = TimerWheel::new(ms(0));
        for id in 0..10_000u32 {
            w.arm(id, ms(1 + u64::from(id % 3000)));
            assert!(w.disarm(id).is_some());
        }
        // Purged whenever they outnumbered the pending timers and the
        // minimum: their memory stays bounded.
        assert!(w.dead <= DEAD_PURGE_MIN, "{} disarmed entries kept", w.dead);
        assert!(w.ids.len <= DEAD_PURGE_MIN);
        w.arm(20_000, ms(5000));
        w.assert_live_counts();
        assert_eq!(w.len(), 1);
        let next = w.next_expiry().unwrap();
        assert!(next >= ms(5000) && next < ms(5000 + 600), "{next}");
        // Revive one, cancel another disarmed one.
        w.arm(7, ms(8));
        assert_eq!(w.cancel(8), None);
        w.assert_live_counts();
        assert_eq!(w.next_expiry(), Some(ms(8)));
        assert_eq!(drain(&mut w, ms(4000)), [(7, ms(8))]);
        w.assert_live_counts();
        assert_eq!(drain(&mut w, ms(6000)), [(20_000, ms(5000))]);
        assert!(w.is_empty());
    }

    #[test]
    fn disarm_is_a_cancel_that_leaves_the_entry_queued() {
        let mut w = TimerWheel::new(ms(0));
        w.arm(1u32, ms(40));
        w.arm(2, ms(200));
        assert_eq!(w.disarm(1), Some(ms(40)));
        assert_eq!(w.disarm(1), None);
        assert_eq!(w.pending(1), None);
        assert_eq!(w.len(), 1);
        // Timer 2 (level 1, bucket at 200 ms) is the next expiry, not 40 ms.
        assert_eq!(w.next_expiry(), Some(ms(200)));
        assert!(drain(&mut w, ms(100)).is_empty());
        // Purged when its bucket ran: the id is free again.
        assert_eq!(w.cancel(1), None);
        // Disarm, then arm into the same bucket (the shortcut) and into
        // another one.
        w.arm(3, ms(150));
        w.arm(4, ms(150));
        assert_eq!(w.disarm(3), Some(ms(150)));
        assert_eq!(w.disarm(4), Some(ms(150)));
        assert_eq!(w.arm(3, ms(151)), None);
        assert_eq!(w.arm(4, ms(120)), None);
        assert_eq!(w.pending(3), Some(ms(151)));
        assert_eq!(w.len(), 3);
        // A cancel of a disarmed id reports nothing pending.
        w.arm(5, ms(300));
        w.disarm(5);
        assert_eq!(w.cancel(5), None);
        assert_eq!(w.len(), 3);
        assert_eq!(w.next_expiry(), Some(ms(120)));
        assert_eq!(drain(&mut w, ms(160)), [(4, ms(120)), (3, ms(151))]);
        // Every entry of the earliest buckets disarmed: the jump goes to
        // the first live one.
        w.arm(6, ms(170));
        w.arm(7, ms(170));
        w.disarm(6);
        w.disarm(7);
        assert_eq!(w.next_expiry(), Some(ms(200)));
        assert_eq!(drain(&mut w, ms(1_000)), [(2, ms(200))]);
        assert!(w.is_empty());
        assert_eq!(w.next_expiry(), None);
        // A timer already collected into the ready batch leaves it.
        w.arm(8, ms(1_010));
        w.arm(9, ms(1_010));
        assert_eq!(w.pop_expired(ms(1_010)), Some((8, ms(1_010))));
        assert_eq!(w.disarm(9), Some(ms(1_010)));
        assert_eq!(w.pop_expired(ms(1_010)), None);
        assert!(w.is_empty());
        assert!(w.slab.len() <= 8, "slots reused: {}", w.slab.len());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Arm(u8, u64),
        Cancel(u8),
        Disarm(u8),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..32, prop_oneof![0u64..100, 0u64..5_000, 0u64..3_000_000])
                .prop_map(|(id, d)| Op::Arm(id, d)),
            1 => (0u8..32).prop_map(Op::Cancel),
            1 => (0u8..32).prop_map(Op::Disarm),
            3 => prop_oneof![0u64..10, 0u64..2_000, 0u64..500_000].prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The wheel against a BinaryHeap model: the same ids fire, none
        /// early, none later than the slack; cancelled timers never fire;
        /// re-armed timers fire once, at the new time.
        #[test]
        fn wheel_matches_heap_model(start in 0u64..10_000_000, ops in proptest::collection::vec(op(), 1..200)) {
            let mut now = Instant::from_micros(start);
            let mut w: TimerWheel<u8> = TimerWheel::new(now);
            // The model: live timers by id, and a min-heap of the instant by
            // which each armed timer must have fired (deadline + slack).
            let mut model: HashMap<u8, (Instant, Instant, u64)> = HashMap::new();
            let mut heap: BinaryHeap<Reverse<(Instant, u8, u64)>> = BinaryHeap::new();
            let mut generation = 0u64;
            let check = |w: &mut TimerWheel<u8>, now: Instant,
                         model: &mut HashMap<u8, (Instant, Instant, u64)>,
                         heap: &mut BinaryHeap<Reverse<(Instant, u8, u64)>>| -> Result<(), TestCaseError> {
                while let Some((id, deadline)) = w.pop_expired(now) {
                    let (d, _, _) = model.remove(&id).ok_or_else(|| TestCaseError::fail(format!("{id} fired but not armed")))?;
                    prop_assert_eq!(d, deadline);
                    prop_assert!(deadline <= now, "{} fired early: {} < {}", id, now, deadline);
                }
                // Every timer whose must-fire-by instant has passed has fired.
                while let Some(&Reverse((by, id, g))) = heap.peek() {
                    if by > now {
                        break;
                    }
                    heap.pop();
                    if let Some(&(d, _, mg)) = model.get(&id) {
                        prop_assert!(mg != g, "{} due at {} not fired by {}", id, d, now);
                    }
                }
                Ok(())
            };
            for op in ops {
                match op {
                    Op::Arm(id, d) => {
                        let at = now + Duration::from_micros(d);
                        generation += 1;
                        let prev = w.arm(id, at);
                        let mprev = model.insert(id, (at, now, generation)).map(|m| m.0);
                        prop_assert_eq!(prev, mprev);
                        let by = at + TimerWheel::<u8>::slack(now, at);
                        heap.push(Reverse((by, id, generation)));
                    }
                    Op::Cancel(id) => {
                        prop_assert_eq!(w.cancel(id), model.remove(&id).map(|m| m.0));
                    }
                    // For the model a disarm is a cancel.
                    Op::Disarm(id) => {
                        prop_assert_eq!(w.disarm(id), model.remove(&id).map(|m| m.0));
                    }
                    Op::Advance(d) => {
                        now += Duration::from_micros(d);
                        check(&mut w, now, &mut model, &mut heap)?;
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                w.assert_live_counts();
                // The idle jump never goes past the earliest live deadline's
                // bucket, nor stops where only disarmed timers wait.
                if let Some(next) = w.next_expiry() {
                    let by = model
                        .values()
                        .map(|&(d, armed, _)| d + TimerWheel::<u8>::slack(armed, d))
                        .min();
                    prop_assert!(by.is_some(), "next expiry {} with nothing armed", next);
                    if let Some(by) = by {
                        prop_assert!(next < by.max(now + Duration::from_millis(1)), "{} past {}", next, by);
                    }
                }
            }
            // Run to completion by jumping over idle periods.
            let mut steps = 0;
            while let Some(next) = w.next_expiry() {
                now = now.max(next);
                check(&mut w, now, &mut model, &mut heap)?;
                steps += 1;
                prop_assert!(steps < 10_000);
            }
            prop_assert!(model.is_empty());
        }
    }
}
