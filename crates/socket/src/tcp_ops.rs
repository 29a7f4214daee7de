//! `AF_INET` stream sockets: TCP behind the [`ProtoOps`] seam.
//!
//! Mirrors `inet_stream_ops` and the TCP entry of `inetsw_array[]` in
//! `net/ipv4/af_inet.c` (`inet_stream_connect()`, `inet_accept()`,
//! `inet_listen()`, `inet_shutdown()`, `inet_release()`), with
//! `tcp_prot`'s methods reached through the `tcp` crate's [`TcpStack`],
//! and the socket wake-ups (`sk->sk_wq`) TCP raises through
//! [`TcpContext::sk_wake`].
//!
//! # Deviations from Linux
//!
//! - TCP raises its wake-ups with the socket lock held, and the socket
//!   layer's hooks poll the socket (epoll), which takes that lock; so the
//!   host queues them ([`TcpWakeups::sk_wake`]) and delivers them once
//!   TCP has returned ([`TcpWakeups::flush`]): the adapter after each
//!   call, the host after `tcp_v4_rcv` and after TCP's timers.
//! - `connect(AF_UNSPEC)` on a stream socket (`tcp_disconnect()`) is
//!   `EOPNOTSUPP`; abort with `SO_LINGER` 0 and `close` instead.
//! - `SO_REUSEPORT`, `SO_BROADCAST`, `SO_NO_CHECK` and `SO_MARK` are
//!   `ENOPROTOOPT` (TCP here keeps no such field).

use std::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use netcore::Errno;
use tcp::{SkEvent, SockId, SockOpt, SockOptName, TcpContext, TcpSocket, TcpStack, TcpState};

use crate::net::{InetProtosw, MsgFlags, ProtoOps, RecvMsg, SkOpt, SockType, Wakeup};

/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u8 = 6;

/// `TCP_NODELAY`.
pub const TCP_NODELAY: i32 = 1;
/// `TCP_MAXSEG`.
pub const TCP_MAXSEG: i32 = 2;
/// `TCP_CORK`.
pub const TCP_CORK: i32 = 3;
/// `TCP_KEEPIDLE`.
pub const TCP_KEEPIDLE: i32 = 4;
/// `TCP_KEEPINTVL`.
pub const TCP_KEEPINTVL: i32 = 5;
/// `TCP_KEEPCNT`.
pub const TCP_KEEPCNT: i32 = 6;
/// `TCP_SYNCNT`.
pub const TCP_SYNCNT: i32 = 7;
/// `TCP_LINGER2`: lifetime of an orphaned FIN_WAIT2 socket, seconds.
pub const TCP_LINGER2: i32 = 8;
/// `TCP_WINDOW_CLAMP`.
pub const TCP_WINDOW_CLAMP: i32 = 10;
/// `TCP_USER_TIMEOUT`.
pub const TCP_USER_TIMEOUT: i32 = 18;
/// `TCP_NOTSENT_LOWAT`.
pub const TCP_NOTSENT_LOWAT: i32 = 25;
/// `TCP_THIN_LINEAR_TIMEOUTS`.
pub const TCP_THIN_LINEAR_TIMEOUTS: i32 = 16;
/// `TCP_RTO_MAX_MS`.
pub const TCP_RTO_MAX_MS: i32 = 44;

/// The poll key a TCP wake-up carries to the socket's wait queue.
///
/// Mirrors the keys of `sock_def_readable()` (`EPOLLIN | EPOLLPRI |
/// EPOLLRDNORM | EPOLLRDBAND`: data or urgent data),
/// `sk_stream_write_space()` (`EPOLLOUT | EPOLLWRNORM`),
/// `sock_def_wakeup()` (every waiter) and `sock_def_error_report()`
/// (`EPOLLERR`).
pub fn sk_event_key(event: SkEvent) -> u32 {
    const IN: u32 = 0x001 | 0x002 | 0x040 | 0x080;
    const OUT: u32 = 0x004 | 0x100;
    const ERR: u32 = 0x008;
    const HUP: u32 = 0x010 | 0x2000;
    match event {
        SkEvent::DataReady => IN,
        SkEvent::WriteSpace => OUT,
        SkEvent::StateChange => IN | OUT | ERR | HUP,
        SkEvent::ErrorReport => ERR,
    }
}

/// The wake-ups a host's TCP raised and not yet delivered.
///
/// Each TCP socket holds its own hook, `sk->sk_wq` (installed by
/// [`ProtoOps::set_wakeup`], kept by [`TcpSocket::set_sk_wq`]); this queue
/// holds the wake-ups raised while TCP held a socket lock, by socket id,
/// until [`TcpWakeups::flush`] finds each socket's hook through the
/// host's `stack` and calls it. One per host, shared by its CPUs.
pub struct TcpWakeups {
    stack: Arc<TcpStack>,
    /// A spinlock: held to push or take a few ids, as the wait queue
    /// head's spinlock a Linux wake-up takes.
    queue: netcore::SpinLock<WakeQueue>,
    /// Whether `queue.pending` holds anything; changed only with `queue`
    /// locked, read without it so that a flush with nothing to deliver
    /// (most of them) takes no lock.
    queued: AtomicBool,
}

/// The wake-ups not yet delivered, under one lock. [`TcpWakeups::flush`]
/// copies them out a few at a time ([`WAKE_BATCH`]), so the buffer keeps
/// its capacity and queueing allocates nothing once it has grown.
#[derive(Default)]
struct WakeQueue {
    pending: Vec<(SockId, u32)>,
}

/// Wake-ups [`TcpWakeups::flush`] takes per lock of the queue: a segment
/// or a call raises a few.
const WAKE_BATCH: usize = 4;

impl std::fmt::Debug for TcpWakeups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpWakeups")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl TcpWakeups {
    /// An empty queue for the sockets of `stack`.
    pub fn new(stack: Arc<TcpStack>) -> TcpWakeups {
        TcpWakeups {
            stack,
            queue: netcore::SpinLock::new(WakeQueue::default()),
            queued: AtomicBool::new(false),
        }
    }

    /// Queues `event` for socket `sk` (what a host's
    /// [`TcpContext::sk_wake`] does). Wake-ups of a socket without a hook
    /// (not yet accepted, or closed) are dropped at delivery.
    pub fn sk_wake(&self, sk: SockId, event: SkEvent) {
        let mut q = self.queue.lock();
        q.pending.push((sk, sk_event_key(event)));
        self.queued.store(true, Ordering::Release);
    }

    /// Delivers the queued wake-ups. Call with no TCP socket lock held.
    ///
    /// Inline for the test of the flag (most calls find nothing queued and
    /// then pay no call, prologue or epilogue); the delivery is out of line.
    #[inline]
    pub fn flush(&self) {
        if self.queued.load(Ordering::Acquire) {
            self.flush_queued();
        }
    }

    /// [`flush`](Self::flush) once the flag said something was queued.
    ///
    /// Takes up to [`WAKE_BATCH`] wake-ups, oldest first, with one lock of
    /// the queue; finds their sockets' wait queues with one lock of the
    /// socket tables ([`TcpStack::sk_wqs`]) and wakes them in order with
    /// no lock held. The queue is locked again only for what is left, or
    /// if the flag says that more was queued meanwhile (as
    /// [`flush`](Self::flush) itself reads it): whoever queues a wake-up
    /// flushes after it, so one this flush misses is delivered by its
    /// raiser.
    #[inline(never)]
    fn flush_queued(&self) {
        let mut batch = [(SockId(0), 0u32); WAKE_BATCH];
        let mut wqs: [Option<Arc<dyn tcp::SockWq>>; WAKE_BATCH] = Default::default();
        let mut q = self.queue.lock();
        loop {
            let n = q.pending.len().min(WAKE_BATCH);
            if n == 0 {
                break;
            }
            batch[..n].copy_from_slice(&q.pending[..n]);
            if n == q.pending.len() {
                q.pending.clear();
            } else {
                q.pending.drain(..n);
            }
            let left = !q.pending.is_empty();
            if !left {
                self.queued.store(false, Ordering::Release);
            }
            drop(q);
            self.stack.sk_wqs(&batch[..n], &mut wqs[..n]);
            for (wq, &(_, key)) in wqs[..n].iter_mut().zip(&batch[..n]) {
                if let Some(wq) = wq.take() {
                    wq.wake_up(key);
                }
            }
            // What is left, and what the hooks (or other CPUs) queued
            // meanwhile.
            if !left && !self.queued.load(Ordering::Acquire) {
                break;
            }
            q = self.queue.lock();
        }
        // Every slot was taken above: nothing to drop.
        std::mem::forget(wqs);
    }

    /// Wake-ups queued and not yet delivered.
    pub fn pending(&self) -> usize {
        self.queue.lock().pending.len()
    }
}

/// A TCP socket as the socket layer sees it.
///
/// Mirrors a `struct socket` whose `ops` is `inet_stream_ops` and whose
/// `sk` is a TCP sock.
///
/// 24 bytes, so that with its `Arc` counts it takes a 48-byte heap chunk
/// (a million sockets per host): the host's TCP and wake-ups are behind
/// one shared `Arc`, the inode number is 32 bits as `get_next_ino()`'s.
#[derive(Debug)]
pub struct TcpOps {
    sk: Arc<TcpSocket>,
    host: Arc<TcpOpsHost>,
    ino: u32,
    /// `SO_LINGER` as the socket layer reads it back (-1 off).
    linger: AtomicI32,
}

/// What every TCP socket of a host shares: the host's TCP and the
/// wake-up hooks.
#[derive(Debug)]
struct TcpOpsHost {
    stack: Arc<TcpStack>,
    wakeups: Arc<TcpWakeups>,
}

impl TcpOps {
    /// Wraps a TCP socket of `stack`.
    pub fn new(
        sk: Arc<TcpSocket>,
        stack: Arc<TcpStack>,
        wakeups: Arc<TcpWakeups>,
        ino: u64,
    ) -> TcpOps {
        TcpOps::with_host(sk, Arc::new(TcpOpsHost { stack, wakeups }), ino)
    }

    fn with_host(sk: Arc<TcpSocket>, host: Arc<TcpOpsHost>, ino: u64) -> TcpOps {
        TcpOps {
            sk,
            host,
            ino: ino as u32,
            linger: AtomicI32::new(-1),
        }
    }

    /// The TCP socket.
    pub fn sock(&self) -> &Arc<TcpSocket> {
        &self.sk
    }

    /// Runs a TCP call, then delivers the wake-ups it raised.
    fn call<R>(&self, f: impl FnOnce() -> R) -> R {
        let r = f();
        self.host.wakeups.flush();
        r
    }
}

fn int_opt(optval: &[u8]) -> Result<u32, Errno> {
    u32::try_from(signed_int_opt(optval)?).map_err(|_| Errno::Inval)
}

/// An `int` option value that may be negative; `EINVAL` when shorter.
fn signed_int_opt(optval: &[u8]) -> Result<i32, Errno> {
    let b = optval.get(..4).ok_or(Errno::Inval)?;
    Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

impl<C: TcpContext> ProtoOps<C> for TcpOps {
    fn sock_type(&self) -> SockType {
        SockType::Stream
    }

    fn protocol(&self) -> u8 {
        IPPROTO_TCP
    }

    fn set_wakeup(&self, wakeup: Option<Wakeup>) {
        self.sk.set_sk_wq(wakeup);
    }

    fn bind(&self, ctx: &mut C, addr: SocketAddrV4) -> Result<(), Errno> {
        self.call(|| self.host.stack.bind(ctx, &self.sk, addr))
    }

    /// Mirrors `inet_stream_connect()`: `EINPROGRESS` once the SYN is out;
    /// a second call reports `EALREADY` while connecting, `EISCONN` once
    /// connected, or the connection's error.
    fn connect(&self, ctx: &mut C, addr: Option<SocketAddrV4>) -> Result<(), Errno> {
        let Some(addr) = addr else {
            return Err(Errno::OpNotSupp);
        };
        self.call(|| self.host.stack.connect(ctx, &self.sk, addr))
    }

    fn listen(&self, ctx: &mut C, backlog: i32) -> Result<(), Errno> {
        self.call(|| self.host.stack.listen(ctx, &self.sk, backlog))
    }

    fn accept(&self, ctx: &mut C) -> Result<Arc<dyn ProtoOps<C>>, Errno> {
        let _ = ctx;
        let child = self.host.stack.accept(&self.sk)?;
        let ino = u64::from(self.ino).wrapping_mul(1_000_003) ^ child.id().0;
        Ok(Arc::new(TcpOps::with_host(
            child,
            Arc::clone(&self.host),
            ino,
        )))
    }

    fn sendmsg(
        &self,
        ctx: &mut C,
        buf: &[u8],
        to: Option<SocketAddrV4>,
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        // tcp_sendmsg() ignores msg_name on a connected socket.
        let _ = to;
        let mut f = tcp::MsgFlags::empty();
        if flags.contains(MsgFlags::OOB) {
            f |= tcp::MsgFlags::OOB;
        }
        if flags.contains(MsgFlags::MORE) {
            f |= tcp::MsgFlags::MORE;
        }
        if flags.contains(MsgFlags::DONTWAIT) {
            f |= tcp::MsgFlags::DONTWAIT;
        }
        self.call(|| self.host.stack.sendmsg(ctx, &self.sk, buf, f))
    }

    fn recvmsg(&self, ctx: &mut C, buf: &mut [u8], flags: MsgFlags) -> Result<RecvMsg, Errno> {
        let mut f = tcp::MsgFlags::empty();
        if flags.contains(MsgFlags::PEEK) {
            f |= tcp::MsgFlags::PEEK;
        }
        let oob = flags.contains(MsgFlags::OOB);
        if oob {
            f |= tcp::MsgFlags::OOB;
        }
        let n = self.call(|| self.host.stack.recvmsg(ctx, &self.sk, buf, f))?;
        // tcp_recv_urg(): the urgent byte comes with MSG_OOB (and
        // MSG_TRUNC into an empty buffer).
        let mut out = MsgFlags::empty();
        if oob {
            out |= MsgFlags::OOB;
            if buf.is_empty() {
                out |= MsgFlags::TRUNC;
            }
        }
        Ok(RecvMsg {
            len: if oob { 1 } else { n },
            copied: n,
            from: None,
            flags: out,
        })
    }

    fn shutdown(&self, ctx: &mut C, how: i32) -> Result<(), Errno> {
        let how = match how {
            0 => tcp::Shutdown::Read,
            1 => tcp::Shutdown::Write,
            2 => tcp::Shutdown::Both,
            _ => return Err(Errno::Inval),
        };
        self.call(|| self.host.stack.shutdown(ctx, &self.sk, how))
    }

    /// `inet_release()` → `tcp_close()`. The hook to the socket layer's
    /// wait queue is already off (`sock_orphan()`): the socket layer takes
    /// it off before it releases ([`crate::SocketLayer::close`] calls
    /// [`ProtoOps::set_wakeup`] with `None`), or frees the socket with it
    /// when its creation failed; it is not taken off twice (a lock pair
    /// per close).
    fn release(&self, ctx: &mut C) {
        self.call(|| self.host.stack.close(ctx, &self.sk));
    }

    /// Mirrors `inet_getname()`: the peer only once connected (`ENOTCONN`
    /// in CLOSE, LISTEN and SYN-SENT).
    fn getname(&self, peer: bool) -> Result<SocketAddrV4, Errno> {
        if !peer {
            return Ok(self.sk.local_addr());
        }
        match self.sk.state() {
            TcpState::Close | TcpState::Listen | TcpState::SynSent => Err(Errno::NotConn),
            _ => Ok(self.sk.peer_addr()),
        }
    }

    fn poll(&self) -> u32 {
        self.host.stack.poll(&self.sk).bits()
    }

    fn ioctl_inq(&self) -> usize {
        self.sk.inq()
    }

    fn ioctl_atmark(&self) -> Result<bool, Errno> {
        self.host.stack.ioctl_atmark(&self.sk)
    }

    fn sk_setopt(&self, ctx: &mut C, opt: SkOpt, val: i64) -> Result<(), Errno> {
        // The socket layer hands the buffer sizes already doubled;
        // TCP's SockOpt doubles them itself.
        let half = |v: i64| u32::try_from(v / 2).unwrap_or(u32::MAX);
        let o = match opt {
            SkOpt::RcvBuf => SockOpt::RcvBuf(half(val)),
            SkOpt::SndBuf => SockOpt::SndBuf(half(val)),
            SkOpt::ReuseAddr => SockOpt::ReuseAddr(val != 0),
            SkOpt::KeepAlive => SockOpt::KeepAlive(val != 0),
            SkOpt::OobInline => SockOpt::OobInline(val != 0),
            SkOpt::Linger => {
                self.linger
                    .store(i32::try_from(val).unwrap_or(i32::MAX), Ordering::Relaxed);
                SockOpt::Linger(u32::try_from(val).ok())
            }
            SkOpt::ReusePort
            | SkOpt::Broadcast
            | SkOpt::NoCheck
            | SkOpt::Mark
            | SkOpt::Error
            | SkOpt::AcceptConn => return Err(Errno::NoProtoOpt),
        };
        self.call(|| self.host.stack.setsockopt(ctx, &self.sk, o))
    }

    fn sk_getopt(&self, ctx: &mut C, opt: SkOpt) -> Result<i64, Errno> {
        let name = match opt {
            SkOpt::RcvBuf => SockOptName::RcvBuf,
            SkOpt::SndBuf => SockOptName::SndBuf,
            SkOpt::ReuseAddr => SockOptName::ReuseAddr,
            SkOpt::KeepAlive => SockOptName::KeepAlive,
            SkOpt::OobInline => SockOptName::OobInline,
            SkOpt::Error => SockOptName::Error,
            SkOpt::Linger => return Ok(i64::from(self.linger.load(Ordering::Relaxed))),
            SkOpt::AcceptConn => return Ok(i64::from(self.sk.state() == TcpState::Listen)),
            SkOpt::ReusePort | SkOpt::Broadcast | SkOpt::NoCheck | SkOpt::Mark => {
                return Ok(0);
            }
        };
        self.host.stack.getsockopt(ctx, &self.sk, name)
    }

    /// Mirrors `do_tcp_setsockopt()` for the `SOL_TCP` options TCP keeps
    /// (`TCP_NODELAY`, `TCP_MAXSEG`, `TCP_CORK`, `TCP_KEEPIDLE`,
    /// `TCP_KEEPINTVL`, `TCP_KEEPCNT`, `TCP_SYNCNT`, `TCP_LINGER2`,
    /// `TCP_WINDOW_CLAMP`, `TCP_USER_TIMEOUT`, `TCP_NOTSENT_LOWAT`, `TCP_RTO_MAX_MS`,
    /// `TCP_THIN_LINEAR_TIMEOUTS`): an `int`, `EINVAL` when
    /// shorter or out of the option's range.
    fn setsockopt(
        &self,
        ctx: &mut C,
        level: i32,
        optname: i32,
        optval: &[u8],
    ) -> Result<(), Errno> {
        if level != i32::from(IPPROTO_TCP) {
            return Err(Errno::NoProtoOpt);
        }
        if optname == TCP_LINGER2 {
            // Signed: a negative value means "abort instead of FIN_WAIT2".
            let v = signed_int_opt(optval)?;
            return self.call(|| {
                self.host
                    .stack
                    .setsockopt(ctx, &self.sk, SockOpt::Linger2(v))
            });
        }
        let v = int_opt(optval)?;
        let o = match optname {
            TCP_NODELAY => SockOpt::NoDelay(v != 0),
            TCP_MAXSEG => SockOpt::MaxSeg(v),
            TCP_CORK => SockOpt::Cork(v != 0),
            TCP_KEEPIDLE => SockOpt::KeepIdle(v),
            TCP_KEEPINTVL => SockOpt::KeepIntvl(v),
            TCP_KEEPCNT => SockOpt::KeepCnt(v),
            TCP_SYNCNT => SockOpt::SynCnt(v),
            TCP_WINDOW_CLAMP => SockOpt::WindowClamp(v),
            TCP_USER_TIMEOUT => SockOpt::UserTimeout(v),
            TCP_NOTSENT_LOWAT => SockOpt::NotsentLowat(v),
            TCP_RTO_MAX_MS => SockOpt::RtoMaxMs(v),
            TCP_THIN_LINEAR_TIMEOUTS => SockOpt::ThinLinearTimeouts(v != 0),
            _ => return Err(Errno::NoProtoOpt),
        };
        self.call(|| self.host.stack.setsockopt(ctx, &self.sk, o))
    }

    /// Mirrors `do_tcp_getsockopt()` for the same options (an `int`).
    fn getsockopt(
        &self,
        ctx: &mut C,
        level: i32,
        optname: i32,
        optval: &mut [u8],
    ) -> Result<usize, Errno> {
        if level != i32::from(IPPROTO_TCP) {
            return Err(Errno::NoProtoOpt);
        }
        let name = match optname {
            TCP_NODELAY => SockOptName::NoDelay,
            TCP_MAXSEG => SockOptName::MaxSeg,
            TCP_CORK => SockOptName::Cork,
            TCP_KEEPIDLE => SockOptName::KeepIdle,
            TCP_KEEPINTVL => SockOptName::KeepIntvl,
            TCP_KEEPCNT => SockOptName::KeepCnt,
            TCP_SYNCNT => SockOptName::SynCnt,
            TCP_LINGER2 => SockOptName::Linger2,
            TCP_USER_TIMEOUT => SockOptName::UserTimeout,
            TCP_NOTSENT_LOWAT => SockOptName::NotsentLowat,
            TCP_RTO_MAX_MS => SockOptName::RtoMaxMs,
            TCP_THIN_LINEAR_TIMEOUTS => SockOptName::ThinLinearTimeouts,
            _ => return Err(Errno::NoProtoOpt),
        };
        let v = self.host.stack.getsockopt(ctx, &self.sk, name)?;
        let b = (v as i32).to_ne_bytes();
        let n = optval.len().min(b.len());
        optval[..n].copy_from_slice(&b[..n]);
        Ok(n)
    }

    fn ino(&self) -> u64 {
        u64::from(self.ino)
    }
}

/// The TCP entry of the `AF_INET` protocol switch: `SOCK_STREAM`,
/// `IPPROTO_TCP`.
///
/// Mirrors `{ .type = SOCK_STREAM, .protocol = IPPROTO_TCP, .prot =
/// &tcp_prot, .ops = &inet_stream_ops }` in `inetsw_array[]`; `create` is
/// `tcp_v4_init_sock()` through [`TcpStack::socket`].
#[derive(Debug, Clone)]
pub struct TcpProtosw {
    host: Arc<TcpOpsHost>,
}

impl TcpProtosw {
    /// The entry for the host's TCP `stack`, its sockets' hooks in
    /// `wakeups`.
    pub fn new(stack: Arc<TcpStack>, wakeups: Arc<TcpWakeups>) -> TcpProtosw {
        TcpProtosw {
            host: Arc::new(TcpOpsHost { stack, wakeups }),
        }
    }
}

impl<C: TcpContext> InetProtosw<C> for TcpProtosw {
    fn sock_type(&self) -> SockType {
        SockType::Stream
    }

    fn protocol(&self) -> u8 {
        IPPROTO_TCP
    }

    fn create(&self, ctx: &mut C, ino: u64) -> Result<Arc<dyn ProtoOps<C>>, Errno> {
        let sk = self.host.stack.socket(ctx);
        Ok(Arc::new(TcpOps::with_host(sk, Arc::clone(&self.host), ino)))
    }
}
#[cfg(test)]
mod size_tests {
    use super::*;

    /// With its `Arc` counts a TCP socket's ops take a 48-byte chunk.
    #[test]
    fn tcp_ops_is_three_words() {
        assert_eq!(core::mem::size_of::<TcpOps>(), 24);
    }
}
