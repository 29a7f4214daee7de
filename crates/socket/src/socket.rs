//! The socket calls of one host: the fd table and the BSD API with
//! Linux's errno values.
//!
//! Mirrors `net/socket.c` (`__sys_socket`, `__sys_bind`, ..., `sock_ioctl`),
//! the fd table of `fs/file.c` (`alloc_fd` with `RLIMIT_NOFILE`) and
//! `fs/file_table.c` (`fs.file-max`), `sk_setsockopt()`/`sk_getsockopt()`
//! of `net/core/sock.c`, `inet_create()` of `net/ipv4/af_inet.c`, and the
//! epoll system calls of `fs/eventpoll.c`.
//!
//! ```text
//!  application ─► SocketLayer::recv(fd) ─► fd table ─► Socket ─► ProtoOps::recvmsg (never blocks)
//!                       ▲   EAGAIN and blocking: wait on the socket's WaitQueue  │
//!                       └──────────── woken by the transport's Wakeup ◄──────────┘
//! ```

use std::borrow::Cow;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use netcore::{Clock, Duration, Errno, Sysctl};
use parking_lot::{Mutex, RwLock};

use crate::eventpoll::{EpollEvent, Eventpoll, Pollable};
use crate::file::FdTable;
use crate::net::{
    AF_INET, AF_UNSPEC, InetProtosw, MsgFlags, ProtoOps, RecvMsg, SOCK_CLOEXEC, SOCK_NONBLOCK,
    SkOpt, SockType,
};
use crate::wait::WaitQueue;

/// How many times a blocking call retries at once when its attempt said
/// `EAGAIN` but `poll` already reports the socket ready (see `wait_loop`).
const WAIT_LOOP_RACE_RETRIES: u32 = 3;

/// A file descriptor.
pub type Fd = i32;

/// `SOL_SOCKET`.
pub const SOL_SOCKET: i32 = 1;
/// `SOL_IP` (`IPPROTO_IP`).
pub const SOL_IP: i32 = 0;
/// `SOL_TCP` (`IPPROTO_TCP`).
pub const SOL_TCP: i32 = 6;
/// `SOL_UDP` (`IPPROTO_UDP`).
pub const SOL_UDP: i32 = 17;
/// `SO_REUSEADDR`.
pub const SO_REUSEADDR: i32 = 2;
/// `SO_TYPE` (read-only).
pub const SO_TYPE: i32 = 3;
/// `SO_ERROR` (read-only; reading clears it).
pub const SO_ERROR: i32 = 4;
/// `SO_BROADCAST`.
pub const SO_BROADCAST: i32 = 6;
/// `SO_SNDBUF`.
pub const SO_SNDBUF: i32 = 7;
/// `SO_RCVBUF`.
pub const SO_RCVBUF: i32 = 8;
/// `SO_KEEPALIVE`.
pub const SO_KEEPALIVE: i32 = 9;
/// `SO_OOBINLINE`.
pub const SO_OOBINLINE: i32 = 10;
/// `SO_NO_CHECK`.
pub const SO_NO_CHECK: i32 = 11;
/// `SO_LINGER` (`struct linger`, 8 bytes).
pub const SO_LINGER: i32 = 13;
/// `SO_REUSEPORT`.
pub const SO_REUSEPORT: i32 = 15;
/// `SO_RCVTIMEO` (`SO_RCVTIMEO_OLD`, a 16-byte `struct timeval`).
pub const SO_RCVTIMEO: i32 = 20;
/// `SO_SNDTIMEO` (`SO_SNDTIMEO_OLD`).
pub const SO_SNDTIMEO: i32 = 21;
/// `SO_ACCEPTCONN` (read-only).
pub const SO_ACCEPTCONN: i32 = 30;
/// `SO_MARK`.
pub const SO_MARK: i32 = 36;
/// `SO_PROTOCOL` (read-only).
pub const SO_PROTOCOL: i32 = 38;
/// `SO_DOMAIN` (read-only).
pub const SO_DOMAIN: i32 = 39;

/// `F_GETFL`.
pub const F_GETFL: i32 = 3;
/// `F_SETFL`.
pub const F_SETFL: i32 = 4;
/// `O_RDWR`.
pub const O_RDWR: i32 = 2;
/// `O_NONBLOCK`.
pub const O_NONBLOCK: i32 = 0o4000;
/// `FIONREAD` (`SIOCINQ`).
pub const FIONREAD: u32 = 0x541B;
/// `FIONBIO`.
pub const FIONBIO: u32 = 0x5421;
/// `SIOCATMARK`: whether the read point is at the urgent mark.
pub const SIOCATMARK: u32 = 0x8905;

/// The default `RLIMIT_NOFILE` soft limit (`INR_OPEN_CUR`).
pub const INR_OPEN_CUR: u64 = 1024;
/// The largest `RLIMIT_NOFILE` (`fs.nr_open` default, `INR_OPEN_MAX`
/// 1048576).
pub const NR_OPEN_DEFAULT: u64 = 1 << 20;

/// The smallest receive buffer (`SOCK_MIN_RCVBUF`): `TCP_SKB_MIN_TRUESIZE`,
/// 2048 + `SKB_DATA_ALIGN(sizeof(struct sk_buff))` on x86-64.
pub const SOCK_MIN_RCVBUF: i64 = 2048 + 256;
/// The smallest send buffer (`SOCK_MIN_SNDBUF`): twice that.
pub const SOCK_MIN_SNDBUF: i64 = 2 * SOCK_MIN_RCVBUF;

/// `sizeof(struct sockaddr_in)`.
pub const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct sockaddr_storage)`: longer addresses are `EINVAL`.
const SOCKADDR_STORAGE_LEN: usize = 128;

/// What the socket layer needs from its host.
///
/// The host lends a per-CPU context for process-context work (a send runs
/// the transmit path on the calling CPU, as a system call does), gives the
/// clock that `SO_RCVTIMEO`/`SO_SNDTIMEO` and `epoll_wait` timeouts are
/// measured on, and the sysctls (`fs.file-max`, `net.core.rmem_max`, ...).
pub trait SocketHost: Send + Sync + 'static {
    /// The host's per-CPU context type.
    type Ctx: 'static;

    /// Runs `f` with a context of the calling thread's CPU.
    fn with_ctx<R>(&self, f: impl FnOnce(&mut Self::Ctx) -> R) -> R;

    /// The host's clock.
    fn clock(&self) -> &dyn Clock;

    /// The host's sysctls.
    fn sysctl(&self) -> &Sysctl;

    /// Whether a call may put the calling thread to sleep. The thread
    /// runtime says yes; the single-threaded simulation says no, and a
    /// call that would block returns `EAGAIN` instead (the simulation
    /// resumes the application after an epoll or wake-up event).
    fn can_sleep(&self) -> bool {
        true
    }
}

/// File-level state of a socket (`struct file` flags and the `struct
/// sock` fields only the socket layer uses), as one call reads it.
#[derive(Clone, Copy, Debug, Default)]
struct SockFile {
    /// `O_NONBLOCK`.
    nonblock: bool,
    /// `sk_rcvtimeo`: `None` waits forever.
    rcvtimeo: Option<Duration>,
    /// `sk_sndtimeo`.
    sndtimeo: Option<Duration>,
}

/// [`SockFile`] as the socket keeps it: three atomics, 24 bytes (a
/// million sockets each save the lock and the `Option<Duration>`s'
/// padding). A timeout is held in nanoseconds, 0 for none (`SO_RCVTIMEO`
/// of zero means "wait forever" in Linux too).
#[derive(Debug, Default)]
struct SockFileCell {
    nonblock: AtomicBool,
    rcvtimeo_ns: AtomicU64,
    sndtimeo_ns: AtomicU64,
}

fn timeo_to_ns(t: Option<Duration>) -> u64 {
    t.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn timeo_from_ns(ns: u64) -> Option<Duration> {
    (ns != 0).then(|| Duration::from_nanos(ns))
}

impl SockFileCell {
    fn new(nonblock: bool) -> SockFileCell {
        SockFileCell {
            nonblock: AtomicBool::new(nonblock),
            ..SockFileCell::default()
        }
    }

    #[inline]
    fn get(&self) -> SockFile {
        SockFile {
            nonblock: self.nonblock(),
            rcvtimeo: timeo_from_ns(self.rcvtimeo_ns.load(Ordering::Relaxed)),
            sndtimeo: timeo_from_ns(self.sndtimeo_ns.load(Ordering::Relaxed)),
        }
    }

    fn nonblock(&self) -> bool {
        self.nonblock.load(Ordering::Relaxed)
    }

    fn set_nonblock(&self, on: bool) {
        self.nonblock.store(on, Ordering::Relaxed);
    }

    fn set_rcvtimeo(&self, t: Option<Duration>) {
        self.rcvtimeo_ns.store(timeo_to_ns(t), Ordering::Relaxed);
    }

    fn set_sndtimeo(&self, t: Option<Duration>) {
        self.sndtimeo_ns.store(timeo_to_ns(t), Ordering::Relaxed);
    }
}

/// The completion of a one-shot [`SocketLayer::poll_add`].
type PollCallback = Box<dyn FnOnce(u32) + Send>;

/// One open socket file as a listing sees it
/// ([`SocketLayer::socket_files`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketFile {
    /// The fd.
    pub fd: Fd,
    /// The IP protocol (`IPPROTO_TCP` 6, `IPPROTO_UDP` 17).
    pub protocol: u8,
    /// The inode number.
    pub ino: u64,
    /// The local address (`getsockname()`), when it has one.
    pub local: Option<SocketAddrV4>,
    /// The peer (`getpeername()`), when connected.
    pub peer: Option<SocketAddrV4>,
}

/// An open socket.
///
/// Mirrors `struct socket` with its `struct file`: the transport
/// ([`ProtoOps`]), the wait queue (`struct socket_wq`, embedded as in
/// Linux) and the file flags.
pub struct Socket<C: ?Sized + 'static> {
    ops: Arc<dyn ProtoOps<C>>,
    /// The wait queue, unless the transport holds it
    /// ([`ProtoOps::wait_queue`]): see [`Socket::wq`].
    wq: WaitQueue,
    file: SockFileCell,
}

impl<C: ?Sized + 'static> std::fmt::Debug for Socket<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("type", &self.ops.sock_type())
            .field("ino", &self.ops.ino())
            .finish_non_exhaustive()
    }
}

impl<C: ?Sized + 'static> Socket<C> {
    fn new(ops: Arc<dyn ProtoOps<C>>, nonblock: bool) -> Arc<Socket<C>> {
        Arc::new_cyclic(|me: &Weak<Socket<C>>| {
            // The transport's wake-up reaches the wait queue (`sk->sk_wq`):
            // one it holds itself, or the embedded one through a hook
            // that holds no reference that would keep the socket alive.
            if !ops.install_wait_queue() {
                let hook: Weak<dyn tcp::SockWq> = me.clone();
                ops.set_wakeup(Some(hook));
            }
            Socket {
                ops,
                wq: WaitQueue::new(),
                file: SockFileCell::new(nonblock),
            }
        })
    }

    /// The transport.
    pub fn ops(&self) -> &Arc<dyn ProtoOps<C>> {
        &self.ops
    }

    /// The socket's wait queue (`sock->wq`): the transport's when it
    /// holds one ([`ProtoOps::wait_queue`], UDP), else the embedded one.
    #[inline]
    fn wq(&self) -> &WaitQueue {
        self.ops.wait_queue().unwrap_or(&self.wq)
    }
}

/// The socket's embedded wait queue is what its transport wakes
/// (`sk->sk_wq` pointing into `struct socket`). Only a transport that
/// holds no queue of its own gets this hook (see [`Socket::new`]), so the
/// embedded queue is the socket's.
impl<C: ?Sized + 'static> tcp::SockWq for Socket<C> {
    fn wake_up(&self, key: u32) {
        self.wq.wake_up(key);
    }
}

impl<C: ?Sized + 'static> Pollable for Socket<C> {
    fn poll(&self) -> u32 {
        self.ops.poll()
    }

    fn wait_queue(&self) -> &WaitQueue {
        self.wq()
    }
}

enum File<C: ?Sized + 'static> {
    /// fds 0–2: standard streams (not sockets).
    Stdio,
    Socket(Arc<Socket<C>>),
    Epoll(Arc<Eventpoll>),
    /// An fd reserved while `accept` waits.
    Reserved,
}

impl<C: ?Sized + 'static> Clone for File<C> {
    fn clone(&self) -> Self {
        match self {
            File::Stdio => File::Stdio,
            File::Socket(s) => File::Socket(Arc::clone(s)),
            File::Epoll(e) => File::Epoll(Arc::clone(e)),
            File::Reserved => File::Reserved,
        }
    }
}

/// An fd looked up once by the owner of the fd, for its later calls.
///
/// Linux's `fdget()` takes no reference on a file when the fd table is
/// not shared, and reads the table under RCU without a lock. The
/// `std::net`-shaped wrappers own their fd; an `FdRef` keeps the socket
/// the fd named when it was taken, and [`SocketLayer`]'s calls on it
/// (`sendto_ref`, `recvfrom_ref`) borrow that socket, with neither the
/// table's lock nor a reference count, while no socket's file has left
/// the table since; after a `close` of any socket they look the fd up
/// again, so an fd closed or reused behind the owner's back gives what
/// the plain calls give (`EBADF`, or the socket now behind the fd).
///
/// It does not hold the fd: its owner passes the fd it owns to each call,
/// so that a `TcpStream` grows by 16 bytes for it (an established
/// connection holds two; see the scale figures in docs/performance.md).
pub struct FdRef<C: ?Sized + 'static> {
    sock: Arc<Socket<C>>,
    /// `SocketLayer::fd_gen` when the fd was last seen naming `sock`.
    gen_seen: AtomicU64,
}

impl<C: ?Sized + 'static> std::fmt::Debug for FdRef<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FdRef").finish_non_exhaustive()
    }
}

/// The socket layer of one host: its fd table and system calls.
///
/// Mirrors a process's `files_struct` (the fd table, limited by
/// `RLIMIT_NOFILE`, 1024 by default, `EMFILE` beyond) with the host-wide
/// count of open files (`fs.file-max`, `ENFILE` beyond), the `AF_INET`
/// protocol switch (`inetsw`), and the socket system calls. fds 0, 1 and 2
/// are taken by the standard streams, so the first socket is fd 3, as in a
/// fresh process.
///
/// Every call returns `Err(Errno)` with Linux's value; see
/// `docs/socket.md` for the table.
pub struct SocketLayer<H: SocketHost> {
    host: Arc<H>,
    fds: Mutex<FdTable<File<H::Ctx>>>,
    /// The open epoll instances, for `eventpoll_release()` on a close
    /// (Linux finds them through the file's `f_ep` list).
    epolls: Mutex<Vec<Arc<Eventpoll>>>,
    rlimit_nofile: AtomicU64,
    nr_files: AtomicU64,
    next_ino: AtomicU64,
    /// Bumped (under `fds`' lock, so a plain load and store) whenever a
    /// socket's file leaves the table: an [`FdRef`] taken before the bump
    /// looks its fd up again, one taken after it borrows its socket.
    fd_gen: AtomicU64,
    inetsw: RwLock<Vec<Arc<dyn InetProtosw<H::Ctx>>>>,
}

impl<H: SocketHost> std::fmt::Debug for SocketLayer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketLayer")
            .field("open_files", &self.nr_files.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Parses a `struct sockaddr_in` as `bind`/`connect` receive it.
///
/// Mirrors `move_addr_to_kernel()` plus the family and length checks of
/// `inet_bind()`/`ip4_datagram_connect()`: longer than
/// `sockaddr_storage` or shorter than `sockaddr_in` → `EINVAL`; a family
/// other than `AF_INET` → `EAFNOSUPPORT`. Returns `None` for `AF_UNSPEC`
/// (the caller decides: bind treats it as `AF_INET` with `INADDR_ANY`,
/// connect as a disconnect).
pub fn sockaddr_in_parse(bytes: &[u8]) -> Result<Option<SocketAddrV4>, Errno> {
    if bytes.len() > SOCKADDR_STORAGE_LEN {
        return Err(Errno::Inval);
    }
    let family = bytes
        .get(..2)
        .map(|f| i32::from(u16::from_ne_bytes([f[0], f[1]])));
    if family == Some(AF_UNSPEC) && bytes.len() < SOCKADDR_IN_LEN {
        return Ok(None);
    }
    if bytes.len() < SOCKADDR_IN_LEN {
        return Err(Errno::Inval);
    }
    let port = u16::from_be_bytes([bytes[2], bytes[3]]);
    let ip = Ipv4Addr::new(bytes[4], bytes[5], bytes[6], bytes[7]);
    match family {
        Some(AF_INET) => Ok(Some(SocketAddrV4::new(ip, port))),
        Some(AF_UNSPEC) => Ok(None),
        _ => Err(Errno::AfNoSupport),
    }
}

/// Encodes `addr` as a `struct sockaddr_in`.
pub fn sockaddr_in_bytes(addr: SocketAddrV4) -> [u8; SOCKADDR_IN_LEN] {
    let mut b = [0u8; SOCKADDR_IN_LEN];
    b[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
    b[2..4].copy_from_slice(&addr.port().to_be_bytes());
    b[4..8].copy_from_slice(&addr.ip().octets());
    b
}

fn read_int(optval: &[u8]) -> Result<i32, Errno> {
    let b = optval.get(..4).ok_or(Errno::Inval)?;
    Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

fn put(out: &mut [u8], val: &[u8]) -> usize {
    let n = out.len().min(val.len());
    out[..n].copy_from_slice(&val[..n]);
    n
}

/// Reads a `struct timeval` for `SO_RCVTIMEO`/`SO_SNDTIMEO`.
///
/// Mirrors `sock_set_timeout()`: shorter than 16 bytes → `EINVAL`;
/// `tv_usec` outside `0..1_000_000` → `EDOM` in Linux, `EINVAL` here
/// (`EDOM` is not in [`Errno`]); a negative `tv_sec` is a zero timeout
/// (fail at once); zero means wait forever.
fn read_timeval(optval: &[u8]) -> Result<Option<Duration>, Errno> {
    let b = optval.get(..16).ok_or(Errno::Inval)?;
    let sec = i64::from_ne_bytes(b[..8].try_into().map_err(|_| Errno::Inval)?);
    let usec = i64::from_ne_bytes(b[8..16].try_into().map_err(|_| Errno::Inval)?);
    if !(0..1_000_000).contains(&usec) {
        return Err(Errno::Inval);
    }
    if sec < 0 {
        return Ok(Some(Duration::ZERO));
    }
    if sec == 0 && usec == 0 {
        return Ok(None);
    }
    Ok(Some(
        Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64),
    ))
}

fn timeval_bytes(t: Option<Duration>) -> [u8; 16] {
    let t = t.unwrap_or(Duration::ZERO);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(t.as_secs() as i64).to_ne_bytes());
    b[8..].copy_from_slice(&i64::from(t.subsec_micros()).to_ne_bytes());
    b
}

impl<H: SocketHost> SocketLayer<H> {
    /// The socket layer of `host`, with no protocol registered (see
    /// [`SocketLayer::inet_register_protosw`]) and fds 0–2 taken.
    pub fn new(host: Arc<H>) -> Arc<SocketLayer<H>> {
        Arc::new(SocketLayer {
            host,
            fds: Mutex::new({
                let mut fds = FdTable::new();
                for _ in 0..3 {
                    fds.alloc_fd(File::Stdio, 3);
                }
                fds
            }),
            epolls: Mutex::new(Vec::new()),
            rlimit_nofile: AtomicU64::new(INR_OPEN_CUR),
            nr_files: AtomicU64::new(3),
            next_ino: AtomicU64::new(10_000),
            fd_gen: AtomicU64::new(0),
            inetsw: RwLock::new(Vec::new()),
        })
    }

    /// The host.
    pub fn host(&self) -> &Arc<H> {
        &self.host
    }

    /// Registers a transport for `socket(AF_INET, type, protocol)`.
    ///
    /// Mirrors `inet_register_protosw()`.
    pub fn inet_register_protosw(&self, p: Arc<dyn InetProtosw<H::Ctx>>) {
        self.inetsw.write().push(p);
    }

    /// The `RLIMIT_NOFILE` soft limit (`getrlimit`).
    pub fn rlimit_nofile(&self) -> u64 {
        self.rlimit_nofile.load(Ordering::Relaxed)
    }

    /// Sets the `RLIMIT_NOFILE` limit (`setrlimit`): fds at or above it
    /// cannot be allocated. `EPERM` above `fs.nr_open` (by default
    /// 1048576, `NR_OPEN_DEFAULT`), as `do_prlimit()` refuses it.
    pub fn set_rlimit_nofile(&self, limit: u64) -> Result<(), Errno> {
        let nr_open = self.host.sysctl().get_int(Sysctl::FS_NR_OPEN);
        if limit > u64::try_from(nr_open).unwrap_or(0) {
            return Err(Errno::Perm);
        }
        self.rlimit_nofile.store(limit, Ordering::Relaxed);
        Ok(())
    }

    /// Files open on the host (`/proc/sys/fs/file-nr`'s first field).
    pub fn nr_files(&self) -> u64 {
        self.nr_files.load(Ordering::Relaxed)
    }

    /// Allocates the lowest free fd for `file`.
    ///
    /// Mirrors `get_unused_fd_flags()` (`EMFILE` at `RLIMIT_NOFILE`; the
    /// lowest free fd from the table's bitmaps, see `file.rs`) and
    /// `alloc_empty_file()` (`ENFILE` at `fs.file-max`).
    fn fd_install(&self, file: File<H::Ctx>) -> Result<Fd, Errno> {
        let end = usize::try_from(self.rlimit_nofile()).unwrap_or(usize::MAX);
        let mut fds = self.fds.lock();
        let fd = fds.alloc_fd(file, end).ok_or(Errno::MFile)?;
        let max = self.host.sysctl().get_int(Sysctl::FS_FILE_MAX);
        if self.nr_files.load(Ordering::Relaxed) >= u64::try_from(max).unwrap_or(0) {
            fds.take(fd);
            return Err(Errno::NFile);
        }
        self.nr_files.fetch_add(1, Ordering::Relaxed);
        Ok(fd as Fd)
    }

    fn file(&self, fd: Fd) -> Result<File<H::Ctx>, Errno> {
        let fds = self.fds.lock();
        usize::try_from(fd)
            .ok()
            .and_then(|i| fds.get(i))
            .filter(|f| !matches!(f, File::Reserved))
            .cloned()
            .ok_or(Errno::BadF)
    }

    /// The socket behind `fd`: `EBADF` for no file, `ENOTSOCK` for a file
    /// that is not a socket (`sockfd_lookup_light()`).
    pub fn sock(&self, fd: Fd) -> Result<Arc<Socket<H::Ctx>>, Errno> {
        match self.file(fd)? {
            File::Socket(s) => Ok(s),
            _ => Err(Errno::NotSock),
        }
    }

    /// Looks `fd` up once for the calls of an owner of the fd (the
    /// `std::net`-shaped wrappers): see [`FdRef`].
    pub fn fd_ref(&self, fd: Fd) -> Result<FdRef<H::Ctx>, Errno> {
        let fds = self.fds.lock();
        let gen_now = self.fd_gen.load(Ordering::Relaxed);
        match usize::try_from(fd).ok().and_then(|i| fds.get(i)) {
            Some(File::Socket(s)) => Ok(FdRef {
                sock: Arc::clone(s),
                gen_seen: AtomicU64::new(gen_now),
            }),
            Some(File::Reserved) | None => Err(Errno::BadF),
            Some(_) => Err(Errno::NotSock),
        }
    }

    /// The socket behind `r`'s fd, borrowed from `r` while the fd still
    /// names it.
    ///
    /// Mirrors `fdget()` / `sockfd_lookup_light()` on a table no other
    /// thread changed: Linux reads the table under RCU and takes no
    /// reference (`FDPUT_FPUT` unset). Here no socket's file has left the
    /// table since `r` last checked (`fd_gen` unchanged, one plain load):
    /// the fd still names `r`'s socket, so the call borrows it without
    /// the table's lock or a reference count. Otherwise the fd is looked
    /// up as [`SocketLayer::sock`] does (`EBADF`, `ENOTSOCK`, or another
    /// socket now behind the fd), and `r` is marked current again when it
    /// still names `r`'s socket.
    fn fdget<'a>(
        &self,
        fd: Fd,
        r: &'a FdRef<H::Ctx>,
    ) -> Result<Cow<'a, Arc<Socket<H::Ctx>>>, Errno> {
        if self.fd_gen.load(Ordering::Acquire) == r.gen_seen.load(Ordering::Relaxed) {
            return Ok(Cow::Borrowed(&r.sock));
        }
        let fds = self.fds.lock();
        let gen_now = self.fd_gen.load(Ordering::Relaxed);
        match usize::try_from(fd).ok().and_then(|i| fds.get(i)) {
            Some(File::Socket(s)) if Arc::ptr_eq(s, &r.sock) => {
                r.gen_seen.store(gen_now, Ordering::Relaxed);
                Ok(Cow::Borrowed(&r.sock))
            }
            Some(File::Socket(s)) => Ok(Cow::Owned(Arc::clone(s))),
            Some(File::Reserved) | None => Err(Errno::BadF),
            Some(_) => Err(Errno::NotSock),
        }
    }

    fn with_ctx<R>(&self, f: impl FnOnce(&mut H::Ctx) -> R) -> R {
        self.host.with_ctx(f)
    }

    /// Retries `attempt` until it stops returning `EAGAIN`, sleeping on
    /// `sock`'s wait queue between tries while it is not `ready` (the
    /// `EPOLL*` bits that would let it progress).
    ///
    /// Mirrors the `sk_wait_event()` / `sock_rcvtimeo()` loops of the
    /// transports: non-blocking (or a host that cannot sleep) → `EAGAIN`;
    /// timeout on the host clock → `EAGAIN`.
    fn wait_loop<T>(
        &self,
        sock: &Socket<H::Ctx>,
        nonblock: bool,
        timeo: Option<Duration>,
        ready: u32,
        mut attempt: impl FnMut(&mut H::Ctx) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let clock = self.host.clock();
        let deadline = timeo.map(|t| clock.now().saturating_add(t));
        // Consecutive tries that failed although `poll` said ready: the
        // state changed between the attempt and the poll (data arrived,
        // space freed), so try again at once — a few times, then sleep on
        // the queue so a poll/attempt disagreement cannot spin.
        let mut raced = 0u32;
        loop {
            // The wake-up count, taken before the attempt so that a wake-up
            // after it is not lost: only when the call may sleep (a lock
            // saved on every non-blocking call and every call from
            // simulation code, which never sleeps).
            let seen = (!nonblock && self.host.can_sleep()).then(|| sock.wq().seq());
            match self.with_ctx(&mut attempt) {
                Err(Errno::Again) => {}
                other => return other,
            }
            if nonblock || !self.host.can_sleep() {
                return Err(Errno::Again);
            }
            let Some(seen) = seen else {
                // It could not sleep when the attempt began (a thread
                // runtime took the host meanwhile): try again at once, the
                // count taken first this time.
                continue;
            };
            if sock.ops.poll() & ready != 0 && raced < WAIT_LOOP_RACE_RETRIES {
                raced += 1;
                continue;
            }
            raced = 0;
            if !sock.wq().wait_changed(seen, clock, deadline) {
                return Err(Errno::Again);
            }
        }
    }

    /// Creates a socket.
    ///
    /// Mirrors `__sys_socket()` → `sock_create()` → `inet_create()`:
    /// flags in `ty` other than `SOCK_NONBLOCK | SOCK_CLOEXEC` → `EINVAL`;
    /// a family other than `AF_INET` → `EAFNOSUPPORT`; a type outside
    /// `0..SOCK_MAX` → `EINVAL`; a protocol outside `0..256` → `EINVAL`; a
    /// type no transport serves → `ESOCKTNOSUPPORT`; a protocol the type's
    /// transports do not speak → `EPROTONOSUPPORT`; then `EMFILE`/`ENFILE`.
    /// Protocol 0 picks the type's default (TCP for `SOCK_STREAM`, UDP for
    /// `SOCK_DGRAM`).
    pub fn socket(&self, domain: i32, ty: i32, protocol: i32) -> Result<Fd, Errno> {
        let flags = ty & !0xf;
        if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
            return Err(Errno::Inval);
        }
        if domain != AF_INET {
            return Err(Errno::AfNoSupport);
        }
        let ty = SockType::from_raw(ty & 0xf)?;
        if !(0..256).contains(&protocol) {
            return Err(Errno::Inval);
        }
        let sw = {
            let inetsw = self.inetsw.read();
            let mut of_type = inetsw.iter().filter(|p| p.sock_type() == ty).peekable();
            if of_type.peek().is_none() {
                return Err(Errno::SockTNoSupport);
            }
            let found = of_type.find(|p| protocol == 0 || i32::from(p.protocol()) == protocol);
            Arc::clone(found.ok_or(Errno::ProtoNoSupport)?)
        };
        let ino = self.next_ino.fetch_add(1, Ordering::Relaxed);
        let ops = self.with_ctx(|ctx| sw.create(ctx, ino))?;
        let sock = Socket::new(ops, flags & SOCK_NONBLOCK != 0);
        match self.fd_install(File::Socket(Arc::clone(&sock))) {
            Ok(fd) => Ok(fd),
            Err(e) => {
                self.with_ctx(|ctx| sock.ops.release(ctx));
                Err(e)
            }
        }
    }

    /// Binds `fd` to `addr`. Mirrors `__sys_bind()` → `inet_bind()`.
    pub fn bind(&self, fd: Fd, addr: SocketAddrV4) -> Result<(), Errno> {
        let sock = self.sock(fd)?;
        self.with_ctx(|ctx| sock.ops.bind(ctx, addr))
    }

    /// Binds `fd` to the `struct sockaddr_in` in `addr` (see
    /// [`sockaddr_in_parse`]); `AF_UNSPEC` is accepted only with
    /// `INADDR_ANY`, as `inet_bind()`'s compatibility rule says.
    pub fn bind_raw(&self, fd: Fd, addr: &[u8]) -> Result<(), Errno> {
        let sock = self.sock(fd)?;
        let parsed = sockaddr_in_parse(addr)?;
        let addr = match parsed {
            Some(a) => a,
            None if addr.len() >= SOCKADDR_IN_LEN && addr[4..8] == [0; 4] => SocketAddrV4::new(
                Ipv4Addr::UNSPECIFIED,
                u16::from_be_bytes([addr[2], addr[3]]),
            ),
            None => return Err(Errno::AfNoSupport),
        };
        self.with_ctx(|ctx| sock.ops.bind(ctx, addr))
    }

    /// Connects `fd` to `addr`.
    ///
    /// Mirrors `__sys_connect()`: a datagram socket records the peer
    /// (`inet_dgram_connect`); a stream socket sends its SYN and, when
    /// blocking, waits up to `SO_SNDTIMEO` for the handshake
    /// (`inet_stream_connect`: `EINPROGRESS` when non-blocking or on
    /// timeout, the connection's error, e.g. `ECONNREFUSED`, on failure).
    pub fn connect(&self, fd: Fd, addr: SocketAddrV4) -> Result<(), Errno> {
        let sock = self.sock(fd)?;
        self.connect_sock(&sock, Some(addr))
    }

    /// Connects with a raw `struct sockaddr`: `AF_UNSPEC` dissolves a
    /// datagram association (see [`sockaddr_in_parse`] for the errors).
    pub fn connect_raw(&self, fd: Fd, addr: &[u8]) -> Result<(), Errno> {
        let sock = self.sock(fd)?;
        let addr = sockaddr_in_parse(addr)?;
        self.connect_sock(&sock, addr)
    }

    fn connect_sock(
        &self,
        sock: &Arc<Socket<H::Ctx>>,
        addr: Option<SocketAddrV4>,
    ) -> Result<(), Errno> {
        match self.with_ctx(|ctx| sock.ops.connect(ctx, addr)) {
            Err(Errno::InProgress) => {
                let file = sock.file.get();
                if file.nonblock || !self.host.can_sleep() {
                    return Err(Errno::InProgress);
                }
                let clock = self.host.clock();
                let deadline = file.sndtimeo.map(|t| clock.now().saturating_add(t));
                let done = crate::eventpoll::EpollEvents::EPOLLOUT
                    | crate::eventpoll::EpollEvents::EPOLLERR
                    | crate::eventpoll::EpollEvents::EPOLLHUP;
                loop {
                    let seen = sock.wq().seq();
                    if sock.ops.poll() & done.bits() != 0 {
                        break;
                    }
                    if !sock.wq().wait_changed(seen, clock, deadline) {
                        return Err(Errno::InProgress);
                    }
                }
                match self.with_ctx(|ctx| sock.ops.sk_getopt(ctx, SkOpt::Error))? {
                    0 => Ok(()),
                    e => Err(Errno::from_i32(e as i32).unwrap_or(Errno::ConnRefused)),
                }
            }
            other => other,
        }
    }

    /// Marks `fd` as listening. Mirrors `__sys_listen()`: the backlog is
    /// capped at `net.core.somaxconn`; `EOPNOTSUPP` on a datagram socket.
    pub fn listen(&self, fd: Fd, backlog: i32) -> Result<(), Errno> {
        let sock = self.sock(fd)?;
        let somaxconn = self.host.sysctl().get_int(Sysctl::SOMAXCONN);
        let backlog = i32::try_from(i64::from(backlog).min(somaxconn)).unwrap_or(backlog);
        self.with_ctx(|ctx| sock.ops.listen(ctx, backlog))
    }

    /// Accepts a connection. See [`SocketLayer::accept4`].
    pub fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddrV4), Errno> {
        self.accept4(fd, 0)
    }

    /// Accepts a connection, with `SOCK_NONBLOCK` and/or `SOCK_CLOEXEC`
    /// for the new socket.
    ///
    /// Mirrors `__sys_accept4()`: other flags → `EINVAL`; the new fd is
    /// reserved first (`EMFILE`/`ENFILE` without taking a connection);
    /// then waits (up to `SO_RCVTIMEO`) for a connection unless
    /// non-blocking (`EAGAIN`); `EOPNOTSUPP` on a datagram socket.
    pub fn accept4(&self, fd: Fd, flags: i32) -> Result<(Fd, SocketAddrV4), Errno> {
        if flags & !(SOCK_NONBLOCK | SOCK_CLOEXEC) != 0 {
            return Err(Errno::Inval);
        }
        let sock = self.sock(fd)?;
        let newfd = self.fd_install(File::Reserved)?;
        let file = sock.file.get();
        let got = self.wait_loop(&sock, file.nonblock, file.rcvtimeo, 0, |ctx| {
            sock.ops.accept(ctx)
        });
        match got {
            Ok(ops) => {
                let peer = ops
                    .getname(true)
                    .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
                let new = Socket::new(ops, flags & SOCK_NONBLOCK != 0);
                self.fds.lock().replace(newfd as usize, File::Socket(new));
                Ok((newfd, peer))
            }
            Err(e) => {
                self.fds.lock().take(newfd as usize);
                self.nr_files.fetch_sub(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Sends on a connected socket. Mirrors `__sys_sendto()` without an
    /// address.
    pub fn send(&self, fd: Fd, buf: &[u8], flags: MsgFlags) -> Result<usize, Errno> {
        self.sendto(fd, buf, flags, None)
    }

    /// Sends, to `to` for an unconnected datagram socket.
    ///
    /// Mirrors `__sys_sendto()` → `sock_sendmsg()`: blocks (up to
    /// `SO_SNDTIMEO`) while the send buffer is full unless non-blocking
    /// (`O_NONBLOCK` or `MSG_DONTWAIT`: `EAGAIN`).
    pub fn sendto(
        &self,
        fd: Fd,
        buf: &[u8],
        flags: MsgFlags,
        to: Option<SocketAddrV4>,
    ) -> Result<usize, Errno> {
        let sock = self.sock(fd)?;
        self.sendto_sock(&sock, buf, flags, to)
    }

    /// [`SocketLayer::sendto`] on `fd`, whose [`FdRef`] is `r` (taken
    /// by [`SocketLayer::fd_ref`] of the same fd).
    pub fn sendto_ref(
        &self,
        fd: Fd,
        r: &FdRef<H::Ctx>,
        buf: &[u8],
        flags: MsgFlags,
        to: Option<SocketAddrV4>,
    ) -> Result<usize, Errno> {
        let sock = self.fdget(fd, r)?;
        self.sendto_sock(&sock, buf, flags, to)
    }

    /// `sock_sendmsg()` and the wait for room: [`SocketLayer::sendto`]
    /// after the fd lookup.
    fn sendto_sock(
        &self,
        sock: &Socket<H::Ctx>,
        buf: &[u8],
        flags: MsgFlags,
        to: Option<SocketAddrV4>,
    ) -> Result<usize, Errno> {
        let file = sock.file.get();
        let nonblock = file.nonblock || flags.contains(MsgFlags::DONTWAIT);
        let writable = crate::eventpoll::EpollEvents::EPOLLOUT.bits();
        self.wait_loop(sock, nonblock, file.sndtimeo, writable, |ctx| {
            sock.ops.sendmsg(ctx, buf, to, flags)
        })
    }

    /// Sends the concatenation of `iov` as one message. Mirrors
    /// `__sys_sendmsg()` (gather).
    pub fn sendmsg(
        &self,
        fd: Fd,
        iov: &[&[u8]],
        to: Option<SocketAddrV4>,
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        let buf: Vec<u8> = iov.concat();
        self.sendto(fd, &buf, flags, to)
    }

    /// Receives into `buf`; returns the length (the full datagram length
    /// with `MSG_TRUNC`). See [`SocketLayer::recvmsg`].
    pub fn recv(&self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize, Errno> {
        Ok(self.recv_inner(fd, buf, flags)?.len)
    }

    /// Receives into `buf` with the sender's address.
    pub fn recvfrom(
        &self,
        fd: Fd,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<(usize, Option<SocketAddrV4>), Errno> {
        let r = self.recv_inner(fd, buf, flags)?;
        Ok((r.len, r.from))
    }

    /// Receives one message scattered over `iov`.
    ///
    /// Mirrors `__sys_recvmsg()` → `sock_recvmsg()`: `MSG_PEEK` leaves the
    /// data queued, `MSG_TRUNC` returns the real length of a longer
    /// datagram, `msg_flags` has `MSG_TRUNC` when it was cut; blocks (up
    /// to `SO_RCVTIMEO`, then `EAGAIN`) unless `O_NONBLOCK` or
    /// `MSG_DONTWAIT` (`EAGAIN` at once). A pending socket error is
    /// returned first.
    pub fn recvmsg(
        &self,
        fd: Fd,
        iov: &mut [&mut [u8]],
        flags: MsgFlags,
    ) -> Result<RecvMsg, Errno> {
        let total: usize = iov.iter().map(|b| b.len()).sum();
        let mut buf = vec![0u8; total];
        let r = self.recv_inner(fd, &mut buf, flags)?;
        let mut at = 0;
        for b in iov.iter_mut() {
            let n = b.len().min(r.copied.saturating_sub(at));
            b[..n].copy_from_slice(&buf[at..at + n]);
            at += n;
        }
        Ok(r)
    }

    /// [`SocketLayer::recvfrom`] on `fd`, whose [`FdRef`] is `r` (taken
    /// by [`SocketLayer::fd_ref`] of the same fd).
    pub fn recvfrom_ref(
        &self,
        fd: Fd,
        r: &FdRef<H::Ctx>,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<(usize, Option<SocketAddrV4>), Errno> {
        let sock = self.fdget(fd, r)?;
        let r = self.recv_sock(&sock, buf, flags)?;
        Ok((r.len, r.from))
    }

    fn recv_inner(&self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<RecvMsg, Errno> {
        let sock = self.sock(fd)?;
        self.recv_sock(&sock, buf, flags)
    }

    /// `sock_recvmsg()` and the wait for data: [`SocketLayer::recvmsg`]
    /// after the fd lookup.
    fn recv_sock(
        &self,
        sock: &Socket<H::Ctx>,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<RecvMsg, Errno> {
        let file = sock.file.get();
        let nonblock = file.nonblock || flags.contains(MsgFlags::DONTWAIT);
        let flags = if nonblock {
            flags | MsgFlags::DONTWAIT
        } else {
            flags - MsgFlags::DONTWAIT
        };
        let readable = crate::eventpoll::EpollEvents::EPOLLIN.bits();
        self.wait_loop(sock, nonblock, file.rcvtimeo, readable, |ctx| {
            sock.ops.recvmsg(ctx, buf, flags)
        })
    }

    /// Shuts down part of a connection. Mirrors `__sys_shutdown()` →
    /// `inet_shutdown()`: `how` outside 0..=2 → `EINVAL`; an unconnected
    /// socket → `ENOTCONN` (pollers still see the shutdown).
    pub fn shutdown(&self, fd: Fd, how: i32) -> Result<(), Errno> {
        let sock = self.sock(fd)?;
        self.with_ctx(|ctx| sock.ops.shutdown(ctx, how))
    }

    /// Closes `fd`.
    ///
    /// Mirrors `close()` → `fput()` → `sock_close()` → `proto_ops.release`,
    /// with `eventpoll_release()` removing the socket from every epoll
    /// instance first. `EBADF` for an fd that is not open.
    pub fn close(&self, fd: Fd) -> Result<(), Errno> {
        let file = {
            let mut fds = self.fds.lock();
            let i = usize::try_from(fd)
                .ok()
                .filter(|&i| fds.get(i).is_some_and(|f| !matches!(f, File::Reserved)))
                .ok_or(Errno::BadF)?;
            let file = fds.take(i).ok_or(Errno::BadF)?;
            // Writers of fd_gen hold the table's lock: no RMW needed.
            let gen_now = self.fd_gen.load(Ordering::Relaxed);
            self.fd_gen
                .store(gen_now.wrapping_add(1), Ordering::Release);
            file
        };
        self.nr_files.fetch_sub(1, Ordering::Relaxed);
        if let File::Epoll(ep) = &file {
            self.epolls.lock().retain(|e| !Arc::ptr_eq(e, ep));
        }
        if let File::Socket(sock) = file {
            let epolls: Vec<Arc<Eventpoll>> = self.epolls.lock().clone();
            // The socket as a poll target only when an epoll instance may
            // hold it (no reference count to take and drop otherwise).
            if !epolls.is_empty() {
                let target: Arc<dyn Pollable> = sock.clone();
                for ep in epolls {
                    ep.release_file(fd, &target);
                }
            }
            sock.ops.set_wakeup(None);
            self.with_ctx(|ctx| sock.ops.release(ctx));
            sock.wq().wake_up(u32::MAX);
        }
        Ok(())
    }

    /// The local address. Mirrors `__sys_getsockname()`.
    pub fn getsockname(&self, fd: Fd) -> Result<SocketAddrV4, Errno> {
        self.sock(fd)?.ops.getname(false)
    }

    /// The peer address; `ENOTCONN` when none. Mirrors
    /// `__sys_getpeername()`.
    pub fn getpeername(&self, fd: Fd) -> Result<SocketAddrV4, Errno> {
        self.sock(fd)?.ops.getname(true)
    }

    /// Sets an option.
    ///
    /// Mirrors `__sys_setsockopt()` → `sk_setsockopt()` for `SOL_SOCKET`,
    /// the protocol's `setsockopt` for other levels. `optval` is the raw
    /// option (a native-endian `int` for most, `struct linger` for
    /// `SO_LINGER`, `struct timeval` for the timeouts); shorter than that
    /// → `EINVAL`; an unknown or read-only option → `ENOPROTOOPT`.
    /// `SO_RCVBUF`/`SO_SNDBUF` are capped at `net.core.rmem_max` /
    /// `wmem_max` (a negative value reads as huge, so it gets the cap),
    /// doubled, and raised to `SOCK_MIN_RCVBUF` (2304) /
    /// `SOCK_MIN_SNDBUF` (4608).
    pub fn setsockopt(&self, fd: Fd, level: i32, optname: i32, optval: &[u8]) -> Result<(), Errno> {
        let sock = self.sock(fd)?;
        if level != SOL_SOCKET {
            return self.with_ctx(|ctx| sock.ops.setsockopt(ctx, level, optname, optval));
        }
        let sysctl = self.host.sysctl();
        match optname {
            SO_RCVTIMEO => sock.file.set_rcvtimeo(read_timeval(optval)?),
            SO_SNDTIMEO => sock.file.set_sndtimeo(read_timeval(optval)?),
            SO_LINGER => {
                let b = optval.get(..8).ok_or(Errno::Inval)?;
                let onoff = read_int(&b[..4])?;
                let secs = read_int(&b[4..8])?;
                self.with_ctx(|ctx| {
                    sock.ops.sk_setopt(
                        ctx,
                        SkOpt::Linger,
                        if onoff == 0 {
                            -1
                        } else {
                            i64::from(secs.max(0))
                        },
                    )
                })?;
            }
            _ => {
                let val = read_int(optval)?;
                let (opt, v) = match optname {
                    SO_REUSEADDR => (SkOpt::ReuseAddr, i64::from(val != 0)),
                    SO_REUSEPORT => (SkOpt::ReusePort, i64::from(val != 0)),
                    SO_KEEPALIVE => (SkOpt::KeepAlive, i64::from(val != 0)),
                    SO_OOBINLINE => (SkOpt::OobInline, i64::from(val != 0)),
                    SO_BROADCAST => (SkOpt::Broadcast, i64::from(val != 0)),
                    SO_NO_CHECK => (SkOpt::NoCheck, i64::from(val != 0)),
                    SO_MARK => (SkOpt::Mark, i64::from(val as u32)),
                    SO_RCVBUF => {
                        let capped = u64::from(val as u32)
                            .min(u64::try_from(sysctl.get_int(Sysctl::RMEM_MAX)).unwrap_or(0));
                        let v = (capped as i64).min(i64::from(i32::MAX / 2));
                        (SkOpt::RcvBuf, (v * 2).max(SOCK_MIN_RCVBUF))
                    }
                    SO_SNDBUF => {
                        let capped = u64::from(val as u32)
                            .min(u64::try_from(sysctl.get_int(Sysctl::WMEM_MAX)).unwrap_or(0));
                        let v = (capped as i64).min(i64::from(i32::MAX / 2));
                        (SkOpt::SndBuf, (v * 2).max(SOCK_MIN_SNDBUF))
                    }
                    _ => return Err(Errno::NoProtoOpt),
                };
                self.with_ctx(|ctx| sock.ops.sk_setopt(ctx, opt, v))?;
            }
        }
        Ok(())
    }

    /// Sets an `int` option (`setsockopt(fd, level, name, &val, 4)`).
    pub fn setsockopt_int(&self, fd: Fd, level: i32, optname: i32, val: i32) -> Result<(), Errno> {
        self.setsockopt(fd, level, optname, &val.to_ne_bytes())
    }

    /// Reads an option into `optval`; returns the length written (the
    /// option's size, cut to `optval.len()`, as Linux cuts to `optlen`).
    ///
    /// Mirrors `sk_getsockopt()` for `SOL_SOCKET` (`SO_ERROR` clears the
    /// pending error), the protocol's `getsockopt` otherwise; unknown →
    /// `ENOPROTOOPT`.
    pub fn getsockopt(
        &self,
        fd: Fd,
        level: i32,
        optname: i32,
        optval: &mut [u8],
    ) -> Result<usize, Errno> {
        let sock = self.sock(fd)?;
        if level != SOL_SOCKET {
            return self.with_ctx(|ctx| sock.ops.getsockopt(ctx, level, optname, optval));
        }
        let int = |v: i64| (v as i32).to_ne_bytes();
        let ops = &sock.ops;
        let n = self.with_ctx(|ctx| -> Result<usize, Errno> {
            Ok(match optname {
                SO_TYPE => put(optval, &int(ops.sock_type() as i64)),
                SO_PROTOCOL => put(optval, &int(i64::from(ops.protocol()))),
                SO_DOMAIN => put(optval, &int(i64::from(AF_INET))),
                SO_ERROR => put(optval, &int(ops.sk_getopt(ctx, SkOpt::Error)?)),
                SO_ACCEPTCONN => put(optval, &int(ops.sk_getopt(ctx, SkOpt::AcceptConn)?)),
                SO_REUSEADDR => put(optval, &int(ops.sk_getopt(ctx, SkOpt::ReuseAddr)?)),
                SO_REUSEPORT => put(optval, &int(ops.sk_getopt(ctx, SkOpt::ReusePort)?)),
                SO_KEEPALIVE => put(optval, &int(ops.sk_getopt(ctx, SkOpt::KeepAlive)?)),
                SO_OOBINLINE => put(optval, &int(ops.sk_getopt(ctx, SkOpt::OobInline)?)),
                SO_BROADCAST => put(optval, &int(ops.sk_getopt(ctx, SkOpt::Broadcast)?)),
                SO_NO_CHECK => put(optval, &int(ops.sk_getopt(ctx, SkOpt::NoCheck)?)),
                SO_MARK => put(optval, &int(ops.sk_getopt(ctx, SkOpt::Mark)?)),
                SO_RCVBUF => put(optval, &int(ops.sk_getopt(ctx, SkOpt::RcvBuf)?)),
                SO_SNDBUF => put(optval, &int(ops.sk_getopt(ctx, SkOpt::SndBuf)?)),
                SO_LINGER => {
                    let l = ops.sk_getopt(ctx, SkOpt::Linger)?;
                    let mut b = [0u8; 8];
                    b[..4].copy_from_slice(&i32::from(l >= 0).to_ne_bytes());
                    b[4..].copy_from_slice(&(l.max(0) as i32).to_ne_bytes());
                    put(optval, &b)
                }
                SO_RCVTIMEO => put(optval, &timeval_bytes(sock.file.get().rcvtimeo)),
                SO_SNDTIMEO => put(optval, &timeval_bytes(sock.file.get().sndtimeo)),
                _ => return Err(Errno::NoProtoOpt),
            })
        })?;
        Ok(n)
    }

    /// Reads an `int` option.
    pub fn getsockopt_int(&self, fd: Fd, level: i32, optname: i32) -> Result<i32, Errno> {
        let mut b = [0u8; 4];
        self.getsockopt(fd, level, optname, &mut b)?;
        Ok(i32::from_ne_bytes(b))
    }

    /// `fcntl(fd, F_GETFL)` / `fcntl(fd, F_SETFL, flags)`: only
    /// `O_NONBLOCK` can change; other commands → `EINVAL`.
    pub fn fcntl(&self, fd: Fd, cmd: i32, arg: i32) -> Result<i32, Errno> {
        let file = self.file(fd)?;
        match (cmd, file) {
            (F_GETFL, File::Socket(s)) => {
                Ok(O_RDWR | if s.file.nonblock() { O_NONBLOCK } else { 0 })
            }
            (F_GETFL, _) => Ok(O_RDWR),
            (F_SETFL, File::Socket(s)) => {
                s.file.set_nonblock(arg & O_NONBLOCK != 0);
                Ok(0)
            }
            (F_SETFL, _) => Ok(0),
            _ => Err(Errno::Inval),
        }
    }

    /// `ioctl(fd, FIONREAD, &n)` (the first datagram's length on UDP, the
    /// bytes queued on TCP), `ioctl(fd, SIOCATMARK, &at)` (TCP: 1 when the
    /// next byte to read is the urgent one) and `ioctl(fd, FIONBIO, &on)`;
    /// other requests, or a file that is not a socket → `ENOTTY`.
    pub fn ioctl(&self, fd: Fd, request: u32, arg: &mut i32) -> Result<(), Errno> {
        let File::Socket(sock) = self.file(fd)? else {
            return Err(Errno::NoTty);
        };
        match request {
            FIONREAD => *arg = i32::try_from(sock.ops.ioctl_inq()).unwrap_or(i32::MAX),
            FIONBIO => sock.file.set_nonblock(*arg != 0),
            SIOCATMARK => *arg = i32::from(sock.ops.ioctl_atmark()?),
            _ => return Err(Errno::NoTty),
        }
        Ok(())
    }

    /// Creates an epoll instance. Mirrors `epoll_create1()`: flags other
    /// than `EPOLL_CLOEXEC` → `EINVAL`; `EMFILE`/`ENFILE`.
    pub fn epoll_create1(&self, flags: i32) -> Result<Fd, Errno> {
        if flags & !crate::eventpoll::EPOLL_CLOEXEC != 0 {
            return Err(Errno::Inval);
        }
        let ep = Eventpoll::new();
        let fd = self.fd_install(File::Epoll(Arc::clone(&ep)))?;
        self.epolls.lock().push(ep);
        Ok(fd)
    }

    /// Adds, modifies or removes `fd` in the interest list of `epfd`.
    ///
    /// Mirrors `do_epoll_ctl()`: `EBADF` for a closed `epfd` or `fd`;
    /// `EPERM` for a target that cannot be polled (a standard stream, or
    /// an epoll fd: nesting is not supported here); `EINVAL` when `epfd`
    /// is not an epoll fd or equals `fd`, or for an unknown op; then
    /// `EEXIST`/`ENOENT` (see [`Eventpoll::epoll_ctl`]).
    pub fn epoll_ctl(
        &self,
        epfd: Fd,
        op: i32,
        fd: Fd,
        event: Option<EpollEvent>,
    ) -> Result<(), Errno> {
        let ep = self.file(epfd)?;
        let target = self.file(fd)?;
        let target: Arc<dyn Pollable> = match target {
            File::Socket(s) => s,
            _ => return Err(Errno::Perm),
        };
        let File::Epoll(ep) = ep else {
            return Err(Errno::Inval);
        };
        if epfd == fd {
            return Err(Errno::Inval);
        }
        ep.epoll_ctl(op, fd, &target, event)
    }

    /// Waits for events on `epfd`.
    ///
    /// Mirrors `epoll_wait()`: `maxevents <= 0` → `EINVAL`, `epfd` not an
    /// epoll fd → `EINVAL`; `timeout_ms` -1 waits forever, 0 polls, else
    /// waits that many milliseconds on the host clock.
    pub fn epoll_wait(
        &self,
        epfd: Fd,
        maxevents: i32,
        timeout_ms: i32,
    ) -> Result<Vec<EpollEvent>, Errno> {
        let File::Epoll(ep) = self.file(epfd)? else {
            return Err(Errno::Inval);
        };
        let maxevents = usize::try_from(maxevents).map_err(|_| Errno::Inval)?;
        let timeout = (timeout_ms >= 0).then(|| Duration::from_millis(timeout_ms as u64));
        ep.epoll_wait(maxevents, timeout, self.host.clock(), self.host.can_sleep())
    }

    /// Calls `cb` once, with the readiness mask, when the socket `fd`
    /// becomes ready for one of `events` (`EPOLLIN`, `EPOLLOUT`, ...;
    /// `EPOLLERR` and `EPOLLHUP` always count) — at once if it is ready
    /// now. `EBADF`/`ENOTSOCK` for a bad fd.
    ///
    /// Mirrors a one-shot `IORING_OP_POLL_ADD` (`io_poll_add()`, whose
    /// wait-queue entry `io_poll_wake()` completes on the first wake-up
    /// whose key matches): how an event-driven application gets pushed
    /// to run when its socket is ready instead of polling it.
    pub fn poll_add(
        &self,
        fd: Fd,
        events: u32,
        cb: impl FnOnce(u32) + Send + 'static,
    ) -> Result<(), Errno> {
        use crate::eventpoll::EpollEvents;
        let sock = self.sock(fd)?;
        let mask = events | EpollEvents::EPOLLERR.bits() | EpollEvents::EPOLLHUP.bits();
        let slot: Arc<Mutex<Option<PollCallback>>> = Arc::new(Mutex::new(Some(Box::new(cb))));
        let id = crate::eventpoll::NEXT_ITEM_ID.fetch_add(1, Ordering::Relaxed);
        let theirs = Arc::clone(&slot);
        sock.wq().add_callback(
            id,
            Arc::new(move |key| {
                if key & mask == 0 {
                    return true;
                }
                let cb = theirs.lock().take();
                if let Some(cb) = cb {
                    cb(key & mask);
                }
                false
            }),
        );
        // vfs_poll() at submission: ready now → complete inline.
        let now = sock.ops.poll() & mask;
        if now != 0 {
            sock.wq().remove_callback(id);
            let cb = slot.lock().take();
            if let Some(cb) = cb {
                cb(now);
            }
        }
        Ok(())
    }

    /// The open socket files, in fd order, for listings (`ss -p`'s
    /// process column, matched by inode or by addresses).
    ///
    /// Mirrors what `ss` reads from `/proc/PID/fd/*` (`socket:[INODE]`
    /// links), with each socket's addresses.
    pub fn socket_files(&self) -> Vec<SocketFile> {
        let socks: Vec<(Fd, Arc<Socket<H::Ctx>>)> = self
            .fds
            .lock()
            .iter()
            .filter_map(|(i, f)| match f {
                File::Socket(s) => Some((i as Fd, Arc::clone(s))),
                _ => None,
            })
            .collect();
        socks
            .into_iter()
            .map(|(fd, s)| SocketFile {
                fd,
                protocol: s.ops.protocol(),
                ino: s.ops.ino(),
                local: s.ops.getname(false).ok(),
                peer: s.ops.getname(true).ok(),
            })
            .collect()
    }

    /// The fd of the socket with inode `ino`, for `ss -p`'s process
    /// column.
    pub fn fd_of_ino(&self, ino: u64) -> Option<Fd> {
        self.fds
            .lock()
            .iter()
            .find(|(_, f)| matches!(f, File::Socket(s) if s.ops.ino() == ino))
            .map(|(i, _)| i as Fd)
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// A socket with its `Arc` counts fits a 96-byte heap chunk (a
    /// million per host in the scale bench): its file flags are atomics,
    /// its wait queue one lock and a callback list allocated only when
    /// epoll watches it (was 112 with the list inline).
    #[test]
    fn an_open_socket_stays_small() {
        assert!(core::mem::size_of::<Socket<()>>() <= 72);
        assert_eq!(core::mem::size_of::<WaitQueue>(), 32);
        assert!(core::mem::size_of::<SockFileCell>() <= 24);
    }

    #[test]
    fn file_timeouts_round_trip_through_the_atomics() {
        let f = SockFileCell::new(true);
        assert!(f.get().nonblock && f.get().rcvtimeo.is_none());
        f.set_rcvtimeo(Some(Duration::from_micros(1_500)));
        f.set_sndtimeo(Some(Duration::from_secs(3)));
        f.set_nonblock(false);
        let got = f.get();
        assert!(!got.nonblock);
        assert_eq!(got.rcvtimeo, Some(Duration::from_micros(1_500)));
        assert_eq!(got.sndtimeo, Some(Duration::from_secs(3)));
        f.set_rcvtimeo(None);
        assert_eq!(f.get().rcvtimeo, None);
    }
}
