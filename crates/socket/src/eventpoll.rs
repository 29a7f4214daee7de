//! epoll: interest lists, the ready list, level- and edge-triggered
//! reporting.
//!
//! Mirrors `fs/eventpoll.c`. Readiness is pushed, not polled: adding a
//! socket registers `ep_poll_callback` on its wait queue; the transports'
//! wake-ups (`sk_data_ready`, `sk_write_space`, `sk_state_change`,
//! `sk_error_report`) run it, and it puts the item on the ready list.
//! `epoll_wait` then re-polls only the items on that list.
//!
//! ```text
//!  udp_queue_rcv_skb ─► sk_data_ready ─► WaitQueue::wake_up(EPOLLIN)
//!                                           └─► ep_poll_callback ─► rdllist ─► epoll_wait
//!  epoll_wait: for each ready item: revents = poll() & events
//!              ONESHOT → disarm; level-triggered → back on rdllist; ET → off
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bitflags::bitflags;
use netcore::{Clock, Duration, Errno, Instant};
use parking_lot::{Condvar, Mutex};

use crate::wait::WaitQueue;

bitflags! {
    /// epoll event bits.
    ///
    /// Mirrors the `EPOLL*` values of `include/uapi/linux/eventpoll.h`
    /// (the same bits as `POLL*`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct EpollEvents: u32 {
        /// Readable.
        const EPOLLIN = 0x001;
        /// Urgent data.
        const EPOLLPRI = 0x002;
        /// Writable.
        const EPOLLOUT = 0x004;
        /// Error pending (always reported).
        const EPOLLERR = 0x008;
        /// Hung up (always reported).
        const EPOLLHUP = 0x010;
        /// Normal data readable.
        const EPOLLRDNORM = 0x040;
        /// Priority band readable.
        const EPOLLRDBAND = 0x080;
        /// Normal data writable.
        const EPOLLWRNORM = 0x100;
        /// Priority band writable.
        const EPOLLWRBAND = 0x200;
        /// The peer shut down writing, or this side shut down reading.
        const EPOLLRDHUP = 0x2000;
        /// Exclusive wake-up (accepted, not distinguished).
        const EPOLLEXCLUSIVE = 1 << 28;
        /// Wake-up source (accepted, no effect).
        const EPOLLWAKEUP = 1 << 29;
        /// Report once, then disarm until `EPOLL_CTL_MOD`.
        const EPOLLONESHOT = 1 << 30;
        /// Edge-triggered: report on changes only.
        const EPOLLET = 1 << 31;
    }
}

/// The control bits that are not events (`EP_PRIVATE_BITS`).
const EP_PRIVATE_BITS: EpollEvents = EpollEvents::EPOLLWAKEUP
    .union(EpollEvents::EPOLLONESHOT)
    .union(EpollEvents::EPOLLET)
    .union(EpollEvents::EPOLLEXCLUSIVE);

/// `EPOLL_CTL_ADD`.
pub const EPOLL_CTL_ADD: i32 = 1;
/// `EPOLL_CTL_DEL`.
pub const EPOLL_CTL_DEL: i32 = 2;
/// `EPOLL_CTL_MOD`.
pub const EPOLL_CTL_MOD: i32 = 3;
/// `EPOLL_CLOEXEC`, the only flag `epoll_create1` accepts.
pub const EPOLL_CLOEXEC: i32 = 0o2_000_000;

/// One event, as `epoll_wait` reports it and `epoll_ctl` takes it.
///
/// Mirrors `struct epoll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpollEvent {
    /// The event bits.
    pub events: EpollEvents,
    /// The user's cookie (`epoll_data_t`).
    pub data: u64,
}

/// Something epoll can watch: it has a readiness mask and a wait queue.
///
/// Mirrors `file->f_op->poll` with the file's wait queue.
pub trait Pollable: Send + Sync {
    /// The current readiness (`EPOLL*` bits).
    fn poll(&self) -> u32;
    /// The wait queue whose wake-ups change the readiness.
    fn wait_queue(&self) -> &WaitQueue;
}

struct EpItem {
    /// Unique among all items (the wait-queue callback id).
    id: u64,
    events: EpollEvents,
    data: u64,
    target: Arc<dyn Pollable>,
    /// On the ready list (`ep_is_linked(&epi->rdllink)`).
    ready: bool,
}

#[derive(Default)]
struct EpInner {
    items: HashMap<i32, EpItem>,
    rdllist: VecDeque<i32>,
    /// Bumped on every ready-list change, for waiters.
    seq: u64,
}

/// Wait-queue callback ids, unique among epoll items and one-shot polls.
pub(crate) static NEXT_ITEM_ID: AtomicU64 = AtomicU64::new(1);

/// One epoll instance.
///
/// Mirrors `struct eventpoll`: the interest set (`rbr`, keyed here by fd),
/// the ready list (`rdllist`) and the waiters of `epoll_wait` (`wq`).
/// Lock order: the epoll lock may be held while a socket is polled (its
/// lock taken); wake-ups reach [`Eventpoll`] with no socket lock held.
#[derive(Default)]
pub struct Eventpoll {
    inner: Mutex<EpInner>,
    cond: Condvar,
}

impl std::fmt::Debug for Eventpoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Eventpoll")
            .field("items", &inner.items.len())
            .field("ready", &inner.rdllist.len())
            .finish_non_exhaustive()
    }
}

impl Eventpoll {
    /// A new, empty instance. Mirrors `ep_alloc()`.
    pub fn new() -> Arc<Eventpoll> {
        Arc::new(Eventpoll::default())
    }

    /// Number of watched fds.
    pub fn len(&self) -> usize {
        self.inner.lock().items.len()
    }

    /// Whether nothing is watched.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Puts item `fd` on the ready list if the wake-up key concerns it.
    ///
    /// Mirrors `ep_poll_callback()`: a disarmed `EPOLLONESHOT` item (no
    /// event bits left) and a key that shares no bit with the item's
    /// events are ignored.
    fn ep_poll_callback(&self, fd: i32, id: u64, key: u32) {
        let mut inner = self.inner.lock();
        let EpInner {
            items,
            rdllist,
            seq,
        } = &mut *inner;
        let Some(item) = items.get_mut(&fd).filter(|i| i.id == id) else {
            return;
        };
        if (item.events - EP_PRIVATE_BITS).is_empty() {
            return;
        }
        if key != 0 && key & item.events.bits() == 0 {
            return;
        }
        if !item.ready {
            item.ready = true;
            rdllist.push_back(fd);
        }
        *seq += 1;
        drop(inner);
        self.cond.notify_all();
    }

    /// Adds, modifies or removes the item for `fd` (`target`).
    ///
    /// Mirrors `do_epoll_ctl()` after the fd checks: `EEXIST` for adding
    /// an fd already watched, `ENOENT` for modifying or removing one that
    /// is not, `EINVAL` for an unknown op. `EPOLLERR | EPOLLHUP` are always
    /// added to the events. A ready target goes on the ready list at once
    /// (`ep_insert()`, `ep_modify()`).
    pub fn epoll_ctl(
        self: &Arc<Self>,
        op: i32,
        fd: i32,
        target: &Arc<dyn Pollable>,
        event: Option<EpollEvent>,
    ) -> Result<(), Errno> {
        let mut inner = self.inner.lock();
        let ev = || {
            event.map(|e| EpollEvent {
                events: e.events | EpollEvents::EPOLLERR | EpollEvents::EPOLLHUP,
                data: e.data,
            })
        };
        match op {
            EPOLL_CTL_ADD => {
                let ev = ev().ok_or(Errno::Fault)?;
                if inner.items.contains_key(&fd) {
                    return Err(Errno::Exist);
                }
                let id = NEXT_ITEM_ID.fetch_add(1, Ordering::Relaxed);
                inner.items.insert(
                    fd,
                    EpItem {
                        id,
                        events: ev.events,
                        data: ev.data,
                        target: Arc::clone(target),
                        ready: false,
                    },
                );
                let weak: Weak<Eventpoll> = Arc::downgrade(self);
                target.wait_queue().add_callback(
                    id,
                    Arc::new(move |key| {
                        weak.upgrade().is_some_and(|ep| {
                            ep.ep_poll_callback(fd, id, key);
                            true
                        })
                    }),
                );
                self.ep_item_poll_and_queue(&mut inner, fd);
            }
            EPOLL_CTL_MOD => {
                let ev = ev().ok_or(Errno::Fault)?;
                let item = inner.items.get_mut(&fd).ok_or(Errno::NoEnt)?;
                item.events = ev.events;
                item.data = ev.data;
                self.ep_item_poll_and_queue(&mut inner, fd);
            }
            EPOLL_CTL_DEL => {
                let item = inner.items.remove(&fd).ok_or(Errno::NoEnt)?;
                inner.rdllist.retain(|&f| f != fd);
                item.target.wait_queue().remove_callback(item.id);
            }
            _ => return Err(Errno::Inval),
        }
        Ok(())
    }

    fn ep_item_poll_and_queue(&self, inner: &mut EpInner, fd: i32) {
        let Some(item) = inner.items.get_mut(&fd) else {
            return;
        };
        let revents = item.target.poll() & item.events.bits();
        if revents != 0 && !item.ready {
            item.ready = true;
            inner.rdllist.push_back(fd);
            inner.seq += 1;
            self.cond.notify_all();
        }
    }

    /// Forgets every item watching `target` (its file is being closed).
    ///
    /// Mirrors `eventpoll_release()`.
    pub fn release_target(&self, target: &Arc<dyn Pollable>) {
        let mut inner = self.inner.lock();
        let gone: Vec<(i32, u64)> = inner
            .items
            .iter()
            .filter(|(_, i)| Arc::ptr_eq(&i.target, target))
            .map(|(&fd, i)| (fd, i.id))
            .collect();
        for (fd, id) in gone {
            inner.items.remove(&fd);
            inner.rdllist.retain(|&f| f != fd);
            target.wait_queue().remove_callback(id);
        }
    }

    /// Forgets the item for `fd` if it watches `target` (the file being
    /// closed).
    ///
    /// Mirrors `eventpoll_release()` for a file open under one fd (this
    /// layer has no `dup`, so a socket's item is keyed by its own fd):
    /// one lookup instead of the walk of [`Eventpoll::release_target`].
    pub fn release_file(&self, fd: i32, target: &Arc<dyn Pollable>) {
        let mut inner = self.inner.lock();
        let Some(item) = inner.items.get(&fd) else {
            return;
        };
        if !Arc::ptr_eq(&item.target, target) {
            return;
        }
        let id = item.id;
        let was_ready = item.ready;
        inner.items.remove(&fd);
        if was_ready {
            inner.rdllist.retain(|&f| f != fd);
        }
        target.wait_queue().remove_callback(id);
    }

    /// Collects up to `maxevents` ready events.
    ///
    /// Mirrors `ep_send_events()`: each item taken off the ready list is
    /// polled again; nothing ready → dropped silently; otherwise reported,
    /// then an `EPOLLONESHOT` item is disarmed, a level-triggered one goes
    /// back on the ready list (so the next call polls it again), an
    /// `EPOLLET` one stays off until its next wake-up.
    fn ep_send_events(inner: &mut EpInner, maxevents: usize) -> Vec<EpollEvent> {
        let mut out = Vec::new();
        let mut requeue = Vec::new();
        while out.len() < maxevents {
            let Some(fd) = inner.rdllist.pop_front() else {
                break;
            };
            let Some(item) = inner.items.get_mut(&fd) else {
                continue;
            };
            item.ready = false;
            let revents = EpollEvents::from_bits_truncate(item.target.poll()) & item.events;
            let revents = revents - EP_PRIVATE_BITS;
            if revents.is_empty() {
                continue;
            }
            out.push(EpollEvent {
                events: revents,
                data: item.data,
            });
            if item.events.contains(EpollEvents::EPOLLONESHOT) {
                item.events &= EP_PRIVATE_BITS;
            } else if !item.events.contains(EpollEvents::EPOLLET) {
                item.ready = true;
                requeue.push(fd);
            }
        }
        inner.rdllist.extend(requeue);
        out
    }

    /// Waits for events.
    ///
    /// Mirrors `ep_poll()`: returns at once when events are ready; with a
    /// zero `timeout` returns what is ready (maybe nothing); otherwise
    /// sleeps until a callback readies an item or `timeout` (on `clock`)
    /// passes (`None`: forever). `maxevents` must be at least 1
    /// (`EINVAL`). With `can_sleep == false` (the simulation) it never
    /// sleeps and returns what is ready.
    pub fn epoll_wait(
        &self,
        maxevents: usize,
        timeout: Option<Duration>,
        clock: &dyn Clock,
        can_sleep: bool,
    ) -> Result<Vec<EpollEvent>, Errno> {
        if maxevents == 0 {
            return Err(Errno::Inval);
        }
        let deadline: Option<Instant> = timeout.map(|t| clock.now().saturating_add(t));
        let mut inner = self.inner.lock();
        loop {
            let events = Self::ep_send_events(&mut inner, maxevents);
            if !events.is_empty() || !can_sleep || timeout.is_some_and(|t| t.is_zero()) {
                return Ok(events);
            }
            let seen = inner.seq;
            while inner.seq == seen {
                let slice = match deadline {
                    None => Duration::from_millis(10),
                    Some(d) => {
                        let left = d.saturating_duration_since(clock.now());
                        if left.is_zero() {
                            return Ok(Vec::new());
                        }
                        left.min(Duration::from_millis(10))
                    }
                };
                self.cond.wait_for(&mut inner, slice);
            }
        }
    }
}
