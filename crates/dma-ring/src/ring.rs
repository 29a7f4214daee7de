//! The descriptor ring shared by a device and its driver: slots, head and
//! tail, and the ownership protocol common to rx and tx.
//!
//! Mirrors `struct igb_ring` in `drivers/net/ethernet/intel/igb/igb.h`
//! (`next_to_use`, `next_to_clean`, the `tail` register) and the device's
//! head register (`RDH`/`TDH`).
//!
//! Indices are free-running `usize` counters; a slot is `index & mask`.
//! The four cursors always satisfy
//! `next_to_clean <= head <= tail <= next_to_use <= next_to_clean + size`
//! (in wrapping arithmetic), and each range of slots has one owner:
//!
//! | slots                          | owner  | how the owner learns it                       |
//! |--------------------------------|--------|-----------------------------------------------|
//! | `[next_to_clean, head)`        | driver | `DD` in the slot's status word (Acquire)      |
//! | `[head, tail)`                 | device | the tail register (Acquire, cached)           |
//! | `[tail, next_to_use)`          | driver | it staged them and has not bumped the tail    |
//! | `[next_to_use, clean + size)`  | driver | it cleaned them itself                        |

use core::fmt;
use core::ops::Deref;

use crate::sync::{Arc, AtomicU32, AtomicUsize, Ordering, UnsafeCell};

/// The `DD` bit, at the same place in the rx and tx status words.
pub(crate) const DD: u32 = 0x1;

/// The smallest ring [`rx_ring`](crate::rx_ring) and [`tx_ring`](crate::tx_ring)
/// accept (loom models use 2–4 entries).
pub const MIN_RING_ENTRIES: usize = 2;
/// The largest ring [`rx_ring`](crate::rx_ring) and [`tx_ring`](crate::tx_ring)
/// accept, igb's `IGB_MAX_RXD`.
pub const MAX_RING_ENTRIES: usize = 4096;

/// Aligns a value to its own cache-line pair so the device's and the
/// driver's indices never share a line (128 bytes: the adjacent-line
/// prefetcher of x86 pulls lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One descriptor: its status word and the rest of its fields.
///
/// `status` is the slot's ownership word. The device stores it last, with
/// `DD` set, in a Release store; the driver loads it first with Acquire, and
/// only after seeing `DD` touches `desc`.
#[derive(Debug)]
struct Slot<S> {
    status: AtomicU32,
    desc: UnsafeCell<S>,
}

/// The memory the two halves share.
#[derive(Debug)]
pub(crate) struct Shared<S> {
    /// The tail register (`RDT`/`TDT`): written by the driver only.
    tail: CachePadded<AtomicUsize>,
    /// The head register (`RDH`/`TDH`): written by the device only. A
    /// diagnostic copy (as `ethtool -d` reads it); ownership travels through
    /// the slots' `DD` bits, so it is stored and loaded Relaxed.
    head: CachePadded<AtomicUsize>,
    slots: Box<[Slot<S>]>,
    mask: usize,
}

// SAFETY: `Shared` is reached from exactly two halves, a `DriverEnd` and a
// `DeviceEnd`, each owned by one thread (neither is `Clone`). A slot's `desc`
// is touched only by the half that owns the slot under the protocol in the
// module doc, and ownership moves only through a Release store observed by an
// Acquire load (tail for driver → device, `DD` for device → driver), so no
// two threads ever access one `desc` at the same time. Moving descriptors
// between threads this way needs `S: Send`, and nothing more: `S` is never
// shared by reference between the threads.
unsafe impl<S: Send> Sync for Shared<S> {}

impl<S> Shared<S> {
    /// The slot of free-running index `index`, without a bounds check: the
    /// ring's hottest line, run three times per received frame.
    #[inline(always)]
    fn slot(&self, index: usize) -> &Slot<S> {
        let i = index & self.mask;
        debug_assert!(i < self.slots.len());
        // SAFETY: `new_ring` sets `mask` to `slots.len() - 1` with
        // `slots.len()` a power of two (`check_count`), and neither changes
        // afterwards, so `index & mask < slots.len()`.
        unsafe { self.slots.get_unchecked(i) }
    }
}

/// Validates a ring's entry count: a power of two in
/// [`MIN_RING_ENTRIES`]`..=`[`MAX_RING_ENTRIES`].
pub(crate) fn check_count(count: usize) -> Result<usize, RingSizeError> {
    if count.is_power_of_two() && (MIN_RING_ENTRIES..=MAX_RING_ENTRIES).contains(&count) {
        Ok(count)
    } else {
        Err(RingSizeError {
            param: "count",
            value: count,
            min: MIN_RING_ENTRIES,
            max: MAX_RING_ENTRIES,
        })
    }
}

/// Builds a ring of `count` slots, every one empty and owned by the driver.
pub(crate) fn new_ring<S>(
    count: usize,
    mut empty: impl FnMut() -> S,
) -> Result<(DriverEnd<S>, DeviceEnd<S>), RingSizeError> {
    let count = check_count(count)?;
    let slots = (0..count)
        .map(|_| Slot {
            status: AtomicU32::new(0),
            desc: UnsafeCell::new(empty()),
        })
        .collect();
    let shared = Arc::new(Shared {
        tail: CachePadded(AtomicUsize::new(0)),
        head: CachePadded(AtomicUsize::new(0)),
        slots,
        mask: count - 1,
    });
    let driver = DriverEnd {
        shared: Arc::clone(&shared),
        next_to_use: 0,
        next_to_clean: 0,
        tail: 0,
    };
    let device = DeviceEnd {
        shared,
        head: 0,
        tail_cache: 0,
    };
    Ok((driver, device))
}

/// The driver's half of the ring protocol: `next_to_use`, `next_to_clean`
/// and the last tail value written.
#[derive(Debug)]
pub(crate) struct DriverEnd<S> {
    shared: Arc<Shared<S>>,
    next_to_use: usize,
    next_to_clean: usize,
    tail: usize,
}

impl<S> DriverEnd<S> {
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.shared.mask + 1
    }

    /// Slots holding a descriptor the driver has not cleaned yet.
    #[inline]
    pub(crate) fn used(&self) -> usize {
        self.next_to_use.wrapping_sub(self.next_to_clean)
    }

    /// Slots free for the driver to fill (`igb_desc_unused()`).
    #[inline]
    pub(crate) fn unused(&self) -> usize {
        self.size() - self.used()
    }

    pub(crate) fn next_to_use(&self) -> usize {
        self.next_to_use & self.shared.mask
    }

    pub(crate) fn next_to_clean(&self) -> usize {
        self.next_to_clean & self.shared.mask
    }

    pub(crate) fn tail(&self) -> usize {
        self.tail & self.shared.mask
    }

    /// Staged descriptors not yet handed over by a tail bump.
    pub(crate) fn staged(&self) -> usize {
        self.next_to_use.wrapping_sub(self.tail)
    }

    pub(crate) fn head(&self) -> usize {
        // Relaxed: the head register is a diagnostic; it orders nothing.
        self.shared.head.load(Ordering::Relaxed) & self.shared.mask
    }

    /// Fills the slot at `next_to_use` with `f` if one is free, without
    /// handing it to the device; returns `value` back if the ring is full.
    #[inline(always)]
    pub(crate) fn stage<V>(&mut self, value: V, f: impl FnOnce(&mut S, V)) -> Result<(), V> {
        if self.used() == self.size() {
            return Err(value);
        }
        let slot = self.shared.slot(self.next_to_use);
        // SAFETY: the slot is in `[next_to_use, next_to_clean + size)`, owned
        // by the driver: the device reaches it only after a tail bump that
        // covers it, and this is the only `&mut` to it on the driver side
        // (`&mut self`).
        slot.desc.with_mut(|desc| f(unsafe { &mut *desc }, value));
        // Relaxed: clears the previous lap's `DD` (as `igb_alloc_rx_buffers()`
        // clears `status_error`). Only the driver loads this word; the
        // device's next store to it happens after it has seen the tail bump
        // that follows this store, so the order is fixed without a fence.
        slot.status.store(0, Ordering::Relaxed);
        self.next_to_use = self.next_to_use.wrapping_add(1);
        Ok(())
    }

    /// Bumps the tail over every staged descriptor (`writel(i, tail)`).
    #[inline]
    pub(crate) fn flush(&mut self) {
        if self.tail != self.next_to_use {
            self.tail = self.next_to_use;
            // Release: publishes the descriptors written by `stage` (the
            // `wmb()` before `writel()` in igb); pairs with the device's
            // Acquire load in `DeviceEnd::peek`.
            self.shared.tail.store(self.tail, Ordering::Release);
        }
    }

    /// Cleans the descriptor at `next_to_clean` if the device has written it
    /// back: `f` gets the slot and its status word. Returns `None` at the
    /// first descriptor without `DD`.
    #[inline(always)]
    pub(crate) fn clean<R>(&mut self, f: impl FnOnce(&mut S, u32) -> R) -> Option<R> {
        if self.next_to_clean == self.tail {
            // Nothing handed to the device is outstanding.
            return None;
        }
        let slot = self.shared.slot(self.next_to_clean);
        // Acquire: pairs with the device's Release store of `DD` in
        // `DeviceEnd::write_back`, so the rest of the descriptor it wrote is
        // visible below (the `dma_rmb()` after the `DD` test in igb).
        let status = slot.status.load(Ordering::Acquire);
        if status & DD == 0 {
            return None;
        }
        // SAFETY: `DD` is set, so the device has finished with this slot and
        // published it; it is now in `[next_to_clean, head)`, owned by the
        // driver, which holds `&mut self`.
        let out = slot.desc.with_mut(|desc| f(unsafe { &mut *desc }, status));
        self.next_to_clean = self.next_to_clean.wrapping_add(1);
        Some(out)
    }

    /// On a full ring, cleans up to `budget` descriptors from
    /// `next_to_clean` that the device has written back, and stages each
    /// slot again, with whatever `f` left in it, without moving it: `f`
    /// gets each slot and its status word, in order, up to the first
    /// descriptor without `DD`. Returns how many; 0 when the ring is not
    /// full (the slot to refill is then another).
    ///
    /// On a full ring `next_to_use == next_to_clean + size`, so the slot
    /// the driver cleans is the very slot it fills next; a buffer reused in
    /// place (igb's `igb_reuse_rx_page()`) stays where it is, and the ring
    /// stays full. The cursors are read once and written once, so the loop
    /// keeps them in registers: per descriptor it is the `DD` load, `f`,
    /// and the store that clears `DD`.
    #[inline(always)]
    pub(crate) fn clean_restage(&mut self, budget: usize, mut f: impl FnMut(&mut S, u32)) -> usize {
        if self.used() != self.size() {
            return 0;
        }
        // Only descriptors before the tail were handed to the device.
        let limit = budget.min(self.tail.wrapping_sub(self.next_to_clean));
        let start = self.next_to_clean;
        // The slots and the mask in locals: the stores below could alias
        // `Shared`'s fields as far as the compiler knows, and it would load
        // them again for every descriptor.
        let (slots, mask) = (&*self.shared.slots, self.shared.mask);
        let mut n = 0;
        while n < limit {
            let i = start.wrapping_add(n) & mask;
            debug_assert!(i < slots.len());
            // SAFETY: as in `Shared::slot`: `mask` is `slots.len() - 1` with
            // `slots.len()` a power of two, so `i < slots.len()`.
            let slot = unsafe { slots.get_unchecked(i) };
            // Acquire: as in `clean`, pairs with the device's Release of `DD`.
            let status = slot.status.load(Ordering::Acquire);
            if status & DD == 0 {
                break;
            }
            // SAFETY: the slot is before the tail and `DD` is set, so the
            // device has written it back and published it (as in `clean`):
            // it is the driver's. The ring is full, so once cleaned the slot
            // is in `[next_to_use, next_to_clean + size)`, the driver's until
            // a tail bump hands it over; the driver holds `&mut self`.
            slot.desc.with_mut(|desc| f(unsafe { &mut *desc }, status));
            // Relaxed: as in `stage`, clears this lap's `DD` before the slot
            // is handed over again by `flush`'s Release.
            slot.status.store(0, Ordering::Relaxed);
            n += 1;
        }
        self.next_to_clean = start.wrapping_add(n);
        self.next_to_use = self.next_to_use.wrapping_add(n);
        n
    }

    /// Takes every outstanding descriptor once the device half is gone, in
    /// ring order from `next_to_clean`; `Err(self)` while it is attached.
    pub(crate) fn drain<R>(
        mut self,
        mut f: impl FnMut(&mut S) -> Option<R>,
    ) -> Result<Vec<R>, Self> {
        let used = self.used();
        let start = self.next_to_clean;
        let Some(shared) = Arc::get_mut(&mut self.shared) else {
            return Err(self);
        };
        // The device half has been dropped: its last accesses happen-before
        // `get_mut` succeeds (the Arc's Release decrement and Acquire check).
        let mut out = Vec::with_capacity(used);
        for i in 0..used {
            let slot = &shared.slots[start.wrapping_add(i) & shared.mask];
            // SAFETY: `get_mut` proved this is the only reference to the ring.
            if let Some(r) = slot.desc.with_mut(|desc| f(unsafe { &mut *desc })) {
                out.push(r);
            }
        }
        self.next_to_clean = self.next_to_use;
        self.tail = self.next_to_use;
        Ok(out)
    }
}

/// The device's half of the ring protocol: its head and its cached copy of
/// the tail.
#[derive(Debug)]
pub(crate) struct DeviceEnd<S> {
    shared: Arc<Shared<S>>,
    head: usize,
    tail_cache: usize,
}

impl<S> DeviceEnd<S> {
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.shared.mask + 1
    }

    pub(crate) fn head(&self) -> usize {
        self.head & self.shared.mask
    }

    /// Descriptors handed to the device and not yet written back; reloads
    /// the tail register.
    pub(crate) fn pending(&mut self) -> usize {
        // Acquire: pairs with the driver's Release in `DriverEnd::flush`.
        self.tail_cache = self.shared.tail.load(Ordering::Acquire);
        self.tail_cache.wrapping_sub(self.head)
    }

    /// Whether the device owns a descriptor at its head; reloads the tail
    /// only when the cached copy says the ring is empty.
    #[inline(always)]
    fn peek(&mut self) -> bool {
        if self.head == self.tail_cache {
            // Acquire: pairs with the driver's Release in
            // `DriverEnd::flush`, making the staged descriptors visible.
            self.tail_cache = self.shared.tail.load(Ordering::Acquire);
        }
        self.head != self.tail_cache
    }

    /// Runs `f` on the descriptor at the head, if the device owns one,
    /// without writing it back.
    #[inline(always)]
    pub(crate) fn with_head<R>(&mut self, f: impl FnOnce(&mut S) -> R) -> Option<R> {
        if !self.peek() {
            return None;
        }
        let slot = self.shared.slot(self.head);
        // SAFETY: `head < tail` as loaded with Acquire: the slot is in
        // `[head, tail)`, owned by the device, which holds `&mut self`.
        Some(slot.desc.with_mut(|desc| f(unsafe { &mut *desc })))
    }

    /// The descriptor at the head, read in place, if the device owns one;
    /// does not reload the tail (call after `with_head` found one).
    #[inline(always)]
    pub(crate) fn head_ref(&self) -> Option<&S> {
        if self.head == self.tail_cache {
            return None;
        }
        let slot = self.shared.slot(self.head);
        // SAFETY: `head != tail_cache`, and `tail_cache` was loaded with
        // Acquire: the slot is in `[head, tail)`, owned by the device. The
        // returned borrow of `self` keeps `write_back` (the only hand-back,
        // which needs `&mut self`) from running while it lives, and the
        // driver does not touch device-owned slots.
        Some(slot.desc.with(|desc| unsafe { &*desc }))
    }

    /// The descriptor at the head, for writing in place, if the device owns
    /// one; does not reload the tail (call after `with_head` found one).
    #[inline(always)]
    pub(crate) fn head_mut(&mut self) -> Option<&mut S> {
        if self.head == self.tail_cache {
            return None;
        }
        let slot = self.shared.slot(self.head);
        // SAFETY: as in `head_ref`, the slot is in `[head, tail)`, owned by
        // the device; the `&mut self` borrow makes this the only reference
        // the device side holds to it until it ends.
        Some(slot.desc.with_mut(|desc| unsafe { &mut *desc }))
    }

    /// Runs `f` on the descriptor at the head, if the device owns one, and
    /// writes it back if `f` returns a status: `status | DD`, then the head
    /// advances. `None` when the device owns no descriptor, else whether
    /// it wrote back. [`with_head`](Self::with_head) and
    /// [`write_back`](Self::write_back) in one step, the slot found once.
    #[inline(always)]
    pub(crate) fn fill_head(&mut self, f: impl FnOnce(&mut S) -> Option<u32>) -> Option<bool> {
        if !self.peek() {
            return None;
        }
        let slot = self.shared.slot(self.head);
        // SAFETY: as in `with_head`: `head < tail` as loaded with Acquire,
        // so the slot is in `[head, tail)`, owned by the device, which holds
        // `&mut self`; only the store of `DD` below hands it back.
        let filled = slot.desc.with_mut(
            #[inline(always)]
            |desc| f(unsafe { &mut *desc }),
        );
        let Some(status) = filled else {
            return Some(false);
        };
        // Release: as in `write_back`, hands the slot to the driver with
        // everything `f` wrote.
        slot.status.store(status | DD, Ordering::Release);
        self.head = self.head.wrapping_add(1);
        // Relaxed: diagnostic register, see `Shared::head`.
        self.shared.head.store(self.head, Ordering::Relaxed);
        Some(true)
    }

    /// Runs `f` on the descriptor at the head, then writes `status | DD`
    /// back and advances the head. The caller has seen `with_head` succeed
    /// since the last write-back.
    #[inline(always)]
    pub(crate) fn write_back(&mut self, status: u32, f: impl FnOnce(&mut S)) {
        debug_assert!(
            self.head != self.tail_cache,
            "write-back without a descriptor"
        );
        let slot = self.shared.slot(self.head);
        // SAFETY: as in `with_head`: the slot is still owned by the device,
        // since only this store of `DD` below hands it back.
        slot.desc.with_mut(|desc| f(unsafe { &mut *desc }));
        // Release: hands the slot to the driver with everything written
        // above; pairs with the Acquire load in `DriverEnd::clean`.
        slot.status.store(status | DD, Ordering::Release);
        self.head = self.head.wrapping_add(1);
        // Relaxed: diagnostic register, see `Shared::head`.
        self.shared.head.store(self.head, Ordering::Relaxed);
    }
}

/// The ring is full: the value could not be queued and is handed back.
///
/// Like `NETDEV_TX_BUSY`, the caller keeps ownership and decides whether to
/// retry, requeue or drop.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Full<T>(pub T);

impl<T> Full<T> {
    /// Gives the value back.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for Full<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("descriptor ring is full")
    }
}

impl<T> core::error::Error for Full<T> {}

/// The device half of the ring still exists, so the driver may not tear the
/// ring down; the driver half is handed back.
///
/// igb stops the device's DMA (`igb_down()`) before it frees ring buffers;
/// here the device stops by dropping its half.
pub struct DeviceAttached<D>(pub D);

impl<D> fmt::Debug for DeviceAttached<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceAttached(..)")
    }
}

impl<D> fmt::Display for DeviceAttached<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the device half of the ring is still attached; drop it before tearing down")
    }
}

impl<D> core::error::Error for DeviceAttached<D> {}

/// A ring size outside what is accepted: names the parameter, the value and
/// the range of powers of two accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RingSizeError {
    /// The parameter (`count`, `rx_pending`, `tx_pending`).
    pub param: &'static str,
    /// The value given.
    pub value: usize,
    /// The smallest accepted value.
    pub min: usize,
    /// The largest accepted value.
    pub max: usize,
}

impl fmt::Display for RingSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {}: expected a power of two in {}..={}",
            self.param, self.value, self.min, self.max
        )
    }
}

impl core::error::Error for RingSizeError {}
