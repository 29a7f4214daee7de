//! Socket wait queues: blocked callers and poll callbacks.
//!
//! Mirrors `struct socket_wq` / `wait_queue_head_t` (`include/linux/wait.h`,
//! `kernel/sched/wait.c`) in the thread runtime's form: a condvar for
//! callers blocked in a socket call, and a list of callbacks (epoll's
//! `ep_poll_callback`) run on every wake-up with its poll key.

use netcore::{Clock, Duration, Instant};
use parking_lot::{Condvar, Mutex};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A callback on a wait queue: `(key)`. Returns `false` when it is dead
/// and should be removed.
pub(crate) type WaitCallback = Arc<dyn Fn(u32) -> bool + Send + Sync>;

/// One socket's wait queue.
///
/// Mirrors `struct socket_wq`. A wake-up bumps a sequence number (so a
/// waiter that checked readiness before sleeping cannot miss it), wakes
/// every blocked caller and runs every callback with the key.
///
/// A wake-up of a queue nobody waits on and no callback watches (the
/// common case; Linux's `wq_has_sleeper()` test) is one atomic add: the
/// word that counts wake-ups also counts the blocked callers and flags a
/// callback list, so the add itself tells the waker whether there is
/// anything to do under the lock.
#[derive(Default)]
pub struct WaitQueue {
    /// The wake-up count (from bit [`SEQ_SHIFT`] up), the number of
    /// callers blocked in [`wait_changed`](Self::wait_changed) (low
    /// bits, [`WAITERS`]) and whether there are callbacks
    /// ([`HAS_CALLBACKS`]). The low parts change only with `inner`
    /// locked; the count is bumped without the lock by a wake-up. A
    /// waiter registers itself (one RMW on this word) before it checks
    /// the count, so a wake-up either is seen by that check or sees the
    /// waiter and takes the lock to wake it.
    seq: AtomicU64,
    inner: Mutex<WqInner>,
    cond: Condvar,
}

/// The bits of [`WaitQueue::seq`] that count blocked callers.
const WAITERS: u64 = (1 << 24) - 1;
/// The bit of [`WaitQueue::seq`] set while the queue has callbacks.
const HAS_CALLBACKS: u64 = 1 << 24;
/// Where the wake-up count starts in [`WaitQueue::seq`].
const SEQ_SHIFT: u32 = 25;

/// What the queue's lock guards: the callbacks and the changes of the
/// waiter count and callback flag in [`WaitQueue::seq`] (one lock, and
/// the callback list allocated with its first entry, so
/// an idle socket's queue is 32 bytes: a million sockets rarely have
/// epoll watching them all).
#[derive(Default)]
struct WqInner {
    #[allow(clippy::box_collection)] // one word while unused, three once used
    callbacks: Option<Box<Vec<(u64, WaitCallback)>>>,
}

impl WqInner {
    /// Removes the callbacks `f` rejects; frees the list once empty.
    /// `seq` is the queue's word, whose callback flag is cleared with
    /// the list.
    fn retain(&mut self, seq: &AtomicU64, f: impl FnMut(&(u64, WaitCallback)) -> bool) {
        if let Some(list) = self.callbacks.as_mut() {
            list.retain(f);
            if list.is_empty() {
                self.callbacks = None;
                seq.fetch_and(!HAS_CALLBACKS, Ordering::AcqRel);
            }
        }
    }
}

impl std::fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("WaitQueue")
            .field("seq", &self.seq())
            .field(
                "callbacks",
                &inner.callbacks.as_ref().map_or(0, |l| l.len()),
            )
            .finish_non_exhaustive()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub fn new() -> WaitQueue {
        WaitQueue::default()
    }

    /// The current wake-up count; pass it to [`WaitQueue::wait_changed`].
    #[inline]
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire) >> SEQ_SHIFT
    }

    /// Wakes every waiter and runs every callback with `key`.
    ///
    /// Mirrors `wake_up_interruptible_sync_poll(&wq->wait, key)`. The
    /// callback list is copied first so a callback may take locks that
    /// are held while callbacks are added (epoll's).
    ///
    /// A queue with no blocked caller and no callback (no epoll watches
    /// the socket, the common case) only bumps the count, without the
    /// lock (`wq_has_sleeper()` false); one without callbacks only bumps
    /// it and wakes blocked callers: no list is copied or freed.
    pub fn wake_up(&self, key: u32) {
        // AcqRel: a callback registered after this bump reads it with its
        // own RMW and so sees what the waker did before waking.
        let old = self.seq.fetch_add(1 << SEQ_SHIFT, Ordering::AcqRel);
        if old & (WAITERS | HAS_CALLBACKS) == 0 {
            return;
        }
        let callbacks: Vec<(u64, WaitCallback)> = {
            // A blocked caller checks the count and sleeps under the lock:
            // taking it here waits until it sleeps, so the notify reaches
            // it.
            let inner = self.inner.lock();
            match inner.callbacks.as_deref() {
                None => {
                    drop(inner);
                    self.cond.notify_all();
                    return;
                }
                Some(list) => list.clone(),
            }
        };
        self.cond.notify_all();
        let mut dead = Vec::new();
        for (id, cb) in &callbacks {
            if !cb(key) {
                dead.push(*id);
            }
        }
        if !dead.is_empty() {
            self.inner
                .lock()
                .retain(&self.seq, |(id, _)| !dead.contains(id));
        }
    }

    /// Adds a callback under `id`. Mirrors `add_wait_queue()` as
    /// `ep_ptable_queue_proc()` uses it.
    pub(crate) fn add_callback(&self, id: u64, cb: WaitCallback) {
        let mut inner = self.inner.lock();
        if inner.callbacks.is_none() {
            self.seq.fetch_or(HAS_CALLBACKS, Ordering::AcqRel);
        }
        inner.callbacks.get_or_insert_default().push((id, cb));
    }

    /// Removes the callback `id`. Mirrors `remove_wait_queue()`.
    pub(crate) fn remove_callback(&self, id: u64) {
        self.inner.lock().retain(&self.seq, |(i, _)| *i != id);
    }

    /// Blocks until a wake-up after `seen` or until `deadline` on `clock`
    /// (`None`: no deadline). Returns `false` on timeout.
    ///
    /// The deadline is measured on the host's clock; the thread sleeps in
    /// slices of at most 10 ms of real time and re-reads the clock, so a
    /// virtual clock advanced by another thread is honoured too.
    pub fn wait_changed(&self, seen: u64, clock: &dyn Clock, deadline: Option<Instant>) -> bool {
        let mut inner = self.inner.lock();
        // Registered before the first check (see `seq`), gone on return.
        self.seq.fetch_add(1, Ordering::AcqRel);
        let _waiter = Waiter(&self.seq);
        loop {
            if self.seq() != seen {
                return true;
            }
            let slice = match deadline {
                None => Duration::from_millis(10),
                Some(d) => {
                    let left = d.saturating_duration_since(clock.now());
                    if left.is_zero() {
                        return false;
                    }
                    left.min(Duration::from_millis(10))
                }
            };
            self.cond.wait_for(&mut inner, slice);
        }
    }
}

/// A caller blocked in [`WaitQueue::wait_changed`], counted in the queue's
/// word until it returns (with the lock held: the guard drops before it).
struct Waiter<'a>(&'a AtomicU64);

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcore::VirtualClock;
    use std::sync::mpsc;

    /// The blocked-caller count in the queue's word.
    fn waiters(q: &WaitQueue) -> u64 {
        q.seq.load(Ordering::Acquire) & WAITERS
    }

    fn has_callbacks(q: &WaitQueue) -> bool {
        q.seq.load(Ordering::Acquire) & HAS_CALLBACKS != 0
    }

    /// With nobody waiting and no callback, a wake-up only counts: it does
    /// not take the queue's lock (`wq_has_sleeper()` false), so it
    /// finishes while another holder keeps the lock.
    #[test]
    fn a_wake_up_nobody_waits_for_takes_no_lock() {
        let q = Arc::new(WaitQueue::default());
        let held = q.inner.lock();
        let (tx, rx) = mpsc::channel();
        let waker = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || {
                q.wake_up(1);
                tx.send(q.seq()).unwrap();
            })
        };
        // A liveness bound, not a speed one: a wake-up that took the lock
        // would wait here for as long as the test holds it.
        let seq = rx.recv_timeout(std::time::Duration::from_secs(30));
        drop(held);
        waker.join().unwrap();
        assert_eq!(seq, Ok(1));
    }

    /// A caller blocked in `wait_changed` is counted in the word until it
    /// returns, and a wake-up ends its wait with `true`.
    #[test]
    fn a_blocked_caller_is_counted_until_a_wake_up_ends_its_wait() {
        let q = Arc::new(WaitQueue::default());
        let clock = VirtualClock::starting_at(Instant::from_secs(1));
        let seen = q.seq();
        let sleeper = {
            let q = Arc::clone(&q);
            std::thread::spawn(move || q.wait_changed(seen, &clock, None))
        };
        let mut polls = 0;
        while waiters(&q) == 0 {
            polls += 1;
            assert!(polls < 30_000, "the caller never registered as a waiter");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(waiters(&q), 1);
        q.wake_up(1);
        assert!(sleeper.join().unwrap());
        assert_eq!((waiters(&q), q.seq()), (0, seen + 1));
    }

    /// A timed-out wait returns `false` and leaves the count as it was.
    #[test]
    fn a_timed_out_wait_unregisters() {
        let q = WaitQueue::default();
        let clock = VirtualClock::starting_at(Instant::from_secs(1));
        let past = Instant::from_secs(1);
        assert!(!q.wait_changed(q.seq(), &clock, Some(past)));
        assert_eq!(waiters(&q), 0);
    }

    /// Callbacks run with the key; one that returns `false` is dropped; the
    /// word's callback flag follows the list, so a queue left without
    /// callbacks goes back to the lock-free wake-up.
    #[test]
    fn callbacks_run_with_the_key_and_their_flag_follows_the_list() {
        let q = WaitQueue::default();
        assert!(!has_callbacks(&q));
        let keys = Arc::new(Mutex::new(Vec::new()));
        let k = Arc::clone(&keys);
        q.add_callback(
            7,
            Arc::new(move |key| {
                k.lock().push(key);
                true
            }),
        );
        q.add_callback(8, Arc::new(|_| false));
        assert!(has_callbacks(&q));
        q.wake_up(0x41);
        assert_eq!(*keys.lock(), [0x41]);
        assert_eq!(q.inner.lock().callbacks.as_ref().map(|l| l.len()), Some(1));
        assert!(has_callbacks(&q));
        q.remove_callback(7);
        assert!(!has_callbacks(&q));
        assert!(q.inner.lock().callbacks.is_none());
        q.wake_up(0x42);
        assert_eq!(*keys.lock(), [0x41]);
        assert_eq!(q.seq(), 2);
    }
}
