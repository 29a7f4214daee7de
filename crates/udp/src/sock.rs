//! The UDP socket: addresses, buffers, the receive queue, the pending error
//! and the wake-ups.
//!
//! Mirrors the parts of `struct sock` (`include/net/sock.h`),
//! `struct inet_sock` (`include/net/inet_sock.h`) and `struct udp_sock`
//! (`include/linux/udp.h`) that UDP uses, with `datagram_poll()` from
//! `net/core/datagram.c`.
//!
//! ```text
//!   udp_rcv (softirq)                       recvmsg (process)
//!        │ __udp_enqueue_schedule_skb            ▲
//!        ▼                                       │ udp_recvmsg
//!   sk_receive_queue [skb][skb][skb]  ── rmem_alloc ≤ sk_rcvbuf
//!        │
//!        └─ sk_data_ready() ─► wake-up hook (socket layer: wait queue, epoll)
//! ```

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use netcore::{Errno, SkBuff, SkbDestructor, Sysctl};

use crate::context::RouteInfo;
use netcore::{SpinLock, SpinLockGuard};
use parking_lot::RwLock;

/// Readable (`EPOLLIN`, `POLLIN`).
pub const POLLIN: u32 = 0x001;
/// Urgent data (`EPOLLPRI`).
pub const POLLPRI: u32 = 0x002;
/// Writable (`EPOLLOUT`).
pub const POLLOUT: u32 = 0x004;
/// An error is pending (`EPOLLERR`).
pub const POLLERR: u32 = 0x008;
/// Hung up: both directions shut down (`EPOLLHUP`).
pub const POLLHUP: u32 = 0x010;
/// Normal data readable (`EPOLLRDNORM`).
pub const POLLRDNORM: u32 = 0x040;
/// Normal data writable (`EPOLLWRNORM`).
pub const POLLWRNORM: u32 = 0x100;
/// Priority data writable (`EPOLLWRBAND`).
pub const POLLWRBAND: u32 = 0x200;
/// The peer (or `shutdown(SHUT_RD)`) closed the read side (`EPOLLRDHUP`).
pub const POLLRDHUP: u32 = 0x2000;

/// `shutdown()` bit: no more receives (`RCV_SHUTDOWN`).
pub const RCV_SHUTDOWN: u8 = 1;
/// `shutdown()` bit: no more sends (`SEND_SHUTDOWN`).
pub const SEND_SHUTDOWN: u8 = 2;
/// Both shutdown bits (`SHUTDOWN_MASK`).
pub const SHUTDOWN_MASK: u8 = 3;

/// `sk_userlocks` bit: the user set `SO_SNDBUF` (`SOCK_SNDBUF_LOCK`).
pub const SOCK_SNDBUF_LOCK: u8 = 1;
/// `sk_userlocks` bit: the user set `SO_RCVBUF` (`SOCK_RCVBUF_LOCK`).
pub const SOCK_RCVBUF_LOCK: u8 = 2;
/// `sk_userlocks` bit: `bind()` chose the address (`SOCK_BINDADDR_LOCK`).
pub const SOCK_BINDADDR_LOCK: u8 = 4;
/// `sk_userlocks` bit: `bind()` chose the port (`SOCK_BINDPORT_LOCK`).
pub const SOCK_BINDPORT_LOCK: u8 = 8;

/// The wake-up hook a socket layer installs: called with the poll key
/// (`POLLIN | POLLRDNORM` for new data, `POLLOUT` for write space,
/// `POLLERR` for an error, all bits for a state change), after the socket's
/// lock is released.
///
/// Mirrors `sk->sk_wq` with `sk_data_ready()`, `sk_write_space()`,
/// `sk_error_report()` and `sk_state_change()` calling
/// `wake_up_interruptible_sync_poll()` with a key.
pub type SkWakeup = Arc<dyn Fn(u32) + Send + Sync>;

/// [`UdpSock`]'s wake-up mode: no hook.
const WAKE_NONE: u8 = 0;
/// [`UdpSock`]'s wake-up mode: the first hook installed.
const WAKE_FIRST: u8 = 1;
/// [`UdpSock`]'s wake-up mode: a hook installed after the first.
const WAKE_LATER: u8 = 2;

/// The state of a UDP socket: closed (unconnected, bound or not) or
/// connected.
///
/// Mirrors the two `sk_state` values UDP uses, `TCP_CLOSE` (7) and
/// `TCP_ESTABLISHED` (1), as `/proc/net/udp` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UdpState {
    /// Connected to a peer (`TCP_ESTABLISHED`).
    #[doc(alias = "TCP_ESTABLISHED")]
    Established = 1,
    /// Not connected (`TCP_CLOSE`).
    #[doc(alias = "TCP_CLOSE")]
    Close = 7,
}

/// The addresses a socket is hashed under, copied into the table so lookup
/// needs no socket lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SockAddrs {
    /// `inet_rcv_saddr`: the bound local address, 0 for any.
    pub rcv_saddr: Ipv4Addr,
    /// `inet_num`: the local port in host order, 0 when unbound.
    pub num: u16,
    /// `inet_daddr`: the connected peer, 0 when not connected.
    pub daddr: Ipv4Addr,
    /// `inet_dport`: the connected peer's port, 0 when not connected.
    pub dport: u16,
    /// `sk_bound_dev_if`.
    pub bound_dev_if: u32,
    /// `sk_reuse` (`SO_REUSEADDR`).
    pub reuse: bool,
    /// `sk_reuseport` (`SO_REUSEPORT`).
    pub reuseport: bool,
}

/// The lock-protected part of a UDP socket.
///
/// Mirrors the fields of `struct sock`/`inet_sock`/`udp_sock` that
/// `lock_sock()` and the receive-queue lock protect; one `parking_lot`
/// mutex stands for both (lock 1 of `netcore::lock_order`).
#[derive(Debug)]
pub(crate) struct UdpSockInner {
    pub addrs: SockAddrs,
    /// `inet_saddr`: the source address sends use (0: routing chooses).
    pub saddr: Ipv4Addr,
    pub state: UdpState,
    /// `sk_rcvbuf` in bytes (already doubled, as Linux stores it).
    pub rcvbuf: i32,
    /// `sk_sndbuf` in bytes.
    pub sndbuf: i32,
    /// `sk_rmem_alloc`: truesize of the skbs in the receive queue.
    pub rmem_alloc: usize,
    /// `sk_receive_queue`.
    pub receive_queue: VecDeque<SkBuff>,
    /// `sk_err`: the pending error, reported once by the next call.
    pub err: Option<Errno>,
    /// `sk_shutdown`: [`RCV_SHUTDOWN`] | [`SEND_SHUTDOWN`].
    pub shutdown: u8,
    /// `sk_userlocks`.
    pub userlocks: u8,
    /// `SO_NO_CHECK`: send with a zero checksum.
    pub no_check_tx: bool,
    /// `SO_BROADCAST`.
    pub broadcast: bool,
    /// `sk_mark` (`SO_MARK`).
    pub mark: u32,
    /// `inet->tos` (`IP_TOS`).
    pub tos: u8,
    /// Whether the socket is in the table (`sk_hashed()`).
    pub hashed: bool,
    /// Whether `release` ran (`SOCK_DEAD`).
    pub dead: bool,
    /// `sk_dst_cache`: a connected socket's route, with the routing
    /// generation it was looked up in.
    pub dst_cache: Option<(RouteInfo, u64)>,
    /// `sk_txhash`: the flow hash a connected socket's datagrams carry to
    /// the device layer (random, non-zero, set by connect); 0 for none.
    pub txhash: u32,
    /// `inet_id`: the IP id counter of a connected socket (random at
    /// connect).
    pub inet_id: u16,
}

impl UdpSockInner {
    /// The cached route if it is still valid; a stale one is dropped.
    ///
    /// Mirrors `sk_dst_check()` / `__sk_dst_check()`.
    pub fn sk_dst_check(&mut self, rt_genid: u64) -> Option<RouteInfo> {
        match self.dst_cache {
            Some((rt, genid)) if genid == rt_genid => Some(rt),
            Some(_) => {
                self.dst_cache = None;
                None
            }
            None => None,
        }
    }
}

/// A UDP socket.
///
/// Mirrors `struct udp_sock` (with its `struct inet_sock` and
/// `struct sock`). Shared as `Arc<UdpSock>` between the socket table (for
/// receive lookups) and the file that owns it. Created by
/// [`UdpSock::new`] (`udp_init_sock()`), bound by [`crate::inet_bind`],
/// removed from the table by [`crate::udp_lib_close`].
pub struct UdpSock {
    /// The socket's state. A spinlock: UDP's paths never sleep holding
    /// it, as Linux's take only the receive queue's spinlock
    /// (`sk_receive_queue.lock`) and `bh_lock_sock()`, never the
    /// sleeping `lock_sock()` on the fast path.
    inner: SpinLock<UdpSockInner>,
    /// The first wake-up hook installed, kept for the socket's life so a
    /// wake-up reads it with a plain load (see [`UdpSock::wake`]).
    wakeup_first: OnceLock<SkWakeup>,
    /// Which hook a wake-up calls: [`WAKE_NONE`], [`WAKE_FIRST`] or
    /// [`WAKE_LATER`].
    wakeup_mode: AtomicU8,
    /// A hook installed after the first (a socket given a second hook);
    /// its write side also orders the [`UdpSock::set_wakeup`] calls.
    wakeup_later: RwLock<Option<SkWakeup>>,
    /// `sk_wmem_alloc`: truesize of the datagrams this socket sent that
    /// are not freed yet (queued in a qdisc, on a TX ring, in flight to a
    /// local socket). An atomic, as in Linux, so the skb destructor never
    /// needs the socket lock.
    wmem_alloc: AtomicUsize,
    /// `sk_drops`.
    drops: AtomicU32,
    /// `sk_sndbuf` as the skb destructor reads it, without the socket
    /// lock (Linux's `READ_ONCE(sk->sk_sndbuf)`): a copy of
    /// [`UdpSockInner::sndbuf`], stored with it.
    sndbuf_once: AtomicI32,
    /// The inode number `/proc/net/udp` and `ss` print.
    ino: u64,
}

impl std::fmt::Debug for UdpSock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSock")
            .field("ino", &self.ino)
            .field("addrs", &self.inner.lock().addrs)
            .finish_non_exhaustive()
    }
}

impl UdpSock {
    /// Creates an unbound, unconnected socket with the default buffer sizes
    /// (`net.core.rmem_default`, `net.core.wmem_default`, 212992 each).
    ///
    /// Mirrors `sk_alloc()` + `sock_init_data()` + `udp_init_sock()`.
    /// `ino` is the inode number listings print.
    #[doc(alias = "udp_init_sock")]
    pub fn new(ino: u64, sysctl: &Sysctl) -> Arc<UdpSock> {
        let clamp = |v: i64| i32::try_from(v).unwrap_or(i32::MAX);
        let sndbuf = clamp(sysctl.get_int(Sysctl::WMEM_DEFAULT));
        Arc::new(UdpSock {
            inner: SpinLock::new(UdpSockInner {
                addrs: SockAddrs {
                    rcv_saddr: Ipv4Addr::UNSPECIFIED,
                    num: 0,
                    daddr: Ipv4Addr::UNSPECIFIED,
                    dport: 0,
                    bound_dev_if: 0,
                    reuse: false,
                    reuseport: false,
                },
                saddr: Ipv4Addr::UNSPECIFIED,
                state: UdpState::Close,
                rcvbuf: clamp(sysctl.get_int(Sysctl::RMEM_DEFAULT)),
                sndbuf,
                rmem_alloc: 0,
                receive_queue: VecDeque::new(),
                err: None,
                shutdown: 0,
                userlocks: 0,
                no_check_tx: false,
                broadcast: false,
                mark: 0,
                tos: 0,
                hashed: false,
                dead: false,
                dst_cache: None,
                txhash: 0,
                inet_id: 0,
            }),
            wakeup_first: OnceLock::new(),
            wakeup_mode: AtomicU8::new(WAKE_NONE),
            wakeup_later: RwLock::new(None),
            wmem_alloc: AtomicUsize::new(0),
            drops: AtomicU32::new(0),
            sndbuf_once: AtomicI32::new(sndbuf),
            ino,
        })
    }

    pub(crate) fn lock(&self) -> SpinLockGuard<'_, UdpSockInner> {
        self.inner.lock()
    }

    /// Installs the hook called on every readiness change (`None`: no
    /// more wake-ups).
    pub fn set_wakeup(&self, wakeup: Option<SkWakeup>) {
        let mut later = self.wakeup_later.write();
        let mode = match wakeup {
            None => {
                *later = None;
                WAKE_NONE
            }
            Some(hook) => match self.wakeup_first.set(hook) {
                Ok(()) => WAKE_FIRST,
                Err(hook) => {
                    *later = Some(hook);
                    WAKE_LATER
                }
            },
        };
        self.wakeup_mode.store(mode, Ordering::Release);
    }

    /// Calls the wake-up hook with `key`. Must be called without the socket
    /// lock held.
    ///
    /// Mirrors `sk->sk_data_ready()` / `sk_write_space()` reaching the
    /// socket's wait queue through `sk->sk_wq`, which Linux reads under
    /// `rcu_read_lock()`: no lock and no reference. The hook a socket
    /// gets first (the socket layer's, the only one it ever gets) is read
    /// with plain loads; no lock is held while it runs, so it may make
    /// socket calls (close this socket, too). A wake-up that read the
    /// hook before a `set_wakeup(None)` still runs it, as an RCU reader
    /// that started before the update does.
    pub(crate) fn wake(&self, key: u32) {
        match self.wakeup_mode.load(Ordering::Acquire) {
            WAKE_FIRST => {
                if let Some(hook) = self.wakeup_first.get() {
                    hook(key);
                }
            }
            WAKE_LATER => {
                let hook = self.wakeup_later.read().clone();
                if let Some(hook) = hook {
                    hook(key);
                }
            }
            _ => {}
        }
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// Datagrams dropped at this socket (`sk_drops`, the `drops` column of
    /// `/proc/net/udp`).
    pub fn drops(&self) -> u32 {
        self.drops.load(Ordering::Relaxed)
    }

    pub(crate) fn inc_drops(&self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }

    /// The bound local address and port (`getsockname()`): the address is
    /// `0.0.0.0` when bound to any, the port 0 when unbound.
    ///
    /// Mirrors `inet_getname()` with `peer == 0`.
    pub fn local_addr(&self) -> SocketAddrV4 {
        let sk = self.lock();
        SocketAddrV4::new(sk.addrs.rcv_saddr, sk.addrs.num)
    }

    /// The connected peer (`getpeername()`), or `ENOTCONN`.
    ///
    /// Mirrors `inet_getname()` with `peer == 1`.
    pub fn peer_addr(&self) -> Result<SocketAddrV4, Errno> {
        let sk = self.lock();
        if sk.state != UdpState::Established || sk.addrs.dport == 0 {
            return Err(Errno::NotConn);
        }
        Ok(SocketAddrV4::new(sk.addrs.daddr, sk.addrs.dport))
    }

    /// The socket's state.
    pub fn state(&self) -> UdpState {
        self.lock().state
    }

    /// `sk_rcvbuf`.
    pub fn rcvbuf(&self) -> i32 {
        self.lock().rcvbuf
    }

    /// Sets `sk_rcvbuf` to `bytes` as the socket layer computed it (doubled
    /// and clamped by `sock_setsockopt()`), and sets `SOCK_RCVBUF_LOCK`.
    pub fn set_rcvbuf(&self, bytes: i32) {
        let mut sk = self.lock();
        sk.rcvbuf = bytes;
        sk.userlocks |= SOCK_RCVBUF_LOCK;
    }

    /// `sk_sndbuf`.
    pub fn sndbuf(&self) -> i32 {
        self.lock().sndbuf
    }

    /// Sets `sk_sndbuf` (see [`UdpSock::set_rcvbuf`]) and wakes writers,
    /// as `sk_write_space()` does.
    pub fn set_sndbuf(&self, bytes: i32) {
        {
            let mut sk = self.lock();
            sk.sndbuf = bytes;
            self.sndbuf_once.store(bytes, Ordering::Relaxed);
            sk.userlocks |= SOCK_SNDBUF_LOCK;
        }
        self.wake(POLLOUT | POLLWRNORM | POLLWRBAND);
    }

    /// `sk_rmem_alloc`: bytes (truesize) held by the receive queue.
    pub fn rmem_alloc(&self) -> usize {
        self.lock().rmem_alloc
    }

    /// `sk_wmem_alloc`: bytes (truesize) of sent datagrams not yet freed.
    pub fn wmem_alloc(&self) -> usize {
        self.wmem_alloc.load(Ordering::Acquire)
    }

    /// Charges `skb` to the send buffer and makes the socket its owner, so
    /// freeing the skb gives the bytes back.
    ///
    /// Mirrors `skb_set_owner_w()` in `net/core/sock.c`.
    pub(crate) fn skb_set_owner_w(self: &Arc<Self>, skb: &mut SkBuff) {
        skb.orphan();
        self.wmem_alloc.fetch_add(skb.truesize(), Ordering::AcqRel);
        skb.set_destructor(Arc::clone(self) as Arc<dyn SkbDestructor>);
    }

    /// `SO_REUSEADDR`.
    pub fn reuse(&self) -> bool {
        self.lock().addrs.reuse
    }

    /// Sets `SO_REUSEADDR` (`sk_reuse`); takes effect at the next bind.
    pub fn set_reuse(&self, on: bool) {
        self.lock().addrs.reuse = on;
    }

    /// `SO_REUSEPORT`.
    pub fn reuseport(&self) -> bool {
        self.lock().addrs.reuseport
    }

    /// Sets `SO_REUSEPORT` (`sk_reuseport`); takes effect at the next bind.
    pub fn set_reuseport(&self, on: bool) {
        self.lock().addrs.reuseport = on;
    }

    /// `SO_BROADCAST`.
    pub fn broadcast(&self) -> bool {
        self.lock().broadcast
    }

    /// Sets `SO_BROADCAST`: sending to a broadcast address needs it.
    pub fn set_broadcast(&self, on: bool) {
        self.lock().broadcast = on;
    }

    /// `SO_NO_CHECK`.
    pub fn no_check_tx(&self) -> bool {
        self.lock().no_check_tx
    }

    /// Sets `SO_NO_CHECK`: send datagrams with a zero ("none") checksum.
    pub fn set_no_check_tx(&self, on: bool) {
        self.lock().no_check_tx = on;
    }

    /// `SO_MARK`.
    pub fn mark(&self) -> u32 {
        self.lock().mark
    }

    /// Sets `SO_MARK`; the cached route is dropped (`sk_dst_reset()`), as
    /// routing may depend on the mark.
    pub fn set_mark(&self, mark: u32) {
        let mut sk = self.lock();
        if sk.mark != mark {
            sk.mark = mark;
            sk.dst_cache = None;
        }
    }

    /// Whether a route is cached (`sk_dst_get() != NULL`): after connect,
    /// and after a connected send, until the routing generation moves on.
    pub fn has_dst_cache(&self) -> bool {
        self.lock().dst_cache.is_some()
    }

    /// `sk_txhash`: the flow hash connect chose, 0 before.
    pub fn txhash(&self) -> u32 {
        self.lock().txhash
    }

    /// Takes the pending error (`SO_ERROR`), clearing it.
    ///
    /// Mirrors `sock_error()`.
    pub fn sock_error(&self) -> Option<Errno> {
        self.lock().err.take()
    }

    /// Records `err` as the pending error and wakes the socket.
    ///
    /// Mirrors setting `sk->sk_err` and calling `sk_error_report()`.
    #[doc(alias = "sk_error_report")]
    pub fn set_error(&self, err: Errno) {
        self.lock().err = Some(err);
        self.wake(POLLERR);
    }

    /// The `sk_shutdown` bits.
    pub fn shutdown_bits(&self) -> u8 {
        self.lock().shutdown
    }

    /// Datagrams waiting in the receive queue.
    pub fn rx_queue_len(&self) -> usize {
        self.lock().receive_queue.len()
    }

    /// The payload length of the first datagram waiting, 0 when none
    /// (`ioctl(FIONREAD)` on a UDP socket).
    ///
    /// Mirrors `first_packet_length()` as `udp_ioctl(SIOCINQ)` uses it.
    pub fn first_packet_length(&self) -> usize {
        self.lock().receive_queue.front().map_or(0, SkBuff::len)
    }

    /// The readiness mask (`POLLIN`, `POLLOUT`, `POLLERR`, `POLLHUP`,
    /// `POLLRDHUP`, ...).
    ///
    /// Mirrors `udp_poll()` → `datagram_poll()` in `net/core/datagram.c`:
    /// error pending → `POLLERR`; read side shut → `POLLRDHUP | POLLIN`;
    /// both shut → `POLLHUP`; a queued datagram → `POLLIN`; writable while
    /// `sk_wmem_alloc` is under half of `sk_sndbuf` (`sock_writeable()`).
    #[doc(alias = "udp_poll")]
    #[doc(alias = "datagram_poll")]
    pub fn poll(&self) -> u32 {
        let sk = self.lock();
        let mut mask = 0;
        if sk.err.is_some() {
            mask |= POLLERR;
        }
        if sk.shutdown & RCV_SHUTDOWN != 0 {
            mask |= POLLRDHUP | POLLIN | POLLRDNORM;
        }
        if sk.shutdown == SHUTDOWN_MASK {
            mask |= POLLHUP;
        }
        if !sk.receive_queue.is_empty() {
            mask |= POLLIN | POLLRDNORM;
        }
        let sndbuf = usize::try_from(sk.sndbuf).unwrap_or(0);
        if self.wmem_alloc() < sndbuf / 2 {
            mask |= POLLOUT | POLLWRNORM | POLLWRBAND;
        }
        mask
    }
}

impl SkbDestructor for UdpSock {
    /// Gives a freed datagram's truesize back to `sk_wmem_alloc` and wakes
    /// writers when the socket becomes writable again (less than half of
    /// `sk_sndbuf` in use).
    ///
    /// Mirrors `sock_wfree()` → `sock_def_write_space()` in
    /// `net/core/sock.c`.
    #[doc(alias = "sock_wfree")]
    fn destruct(&self, skb: &SkBuff) {
        let len = skb.truesize();
        let before = self
            .wmem_alloc
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                Some(w.saturating_sub(len))
            })
            .unwrap_or(0);
        let after = before.saturating_sub(len);
        // sndbuf is read without the lock, as Linux reads sk_sndbuf with
        // READ_ONCE(): no lock is taken per freed datagram.
        let half = usize::try_from(self.sndbuf_once.load(Ordering::Relaxed)).unwrap_or(0) / 2;
        if before >= half && after < half || half == 0 {
            self.wake(POLLOUT | POLLWRNORM | POLLWRBAND);
        }
    }
}
