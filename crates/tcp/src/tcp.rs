//! The host's TCP and the socket-facing operations.
//!
//! Mirrors `net/ipv4/tcp.c` (`tcp_sendmsg_locked()`, `tcp_recvmsg_locked()`,
//! `tcp_cleanup_rbuf()`, `tcp_close()`, `tcp_shutdown()`, `tcp_disconnect()`,
//! `tcp_set_state()`, `tcp_done()`, `tcp_poll()`, `do_tcp_setsockopt()`,
//! `do_tcp_getsockopt()`, `tcp_get_info()`), the `struct proto tcp_prot`
//! entry points of `net/ipv4/tcp_ipv4.c` (`tcp_v4_init_sock()`,
//! `tcp_v4_connect()`), and `inet_bind()`/`inet_listen()`/`inet_accept()`
//! of `af_inet.c`.
//!
//! Sockets live in the host's table as `Arc<TcpSocket>`, each with its own
//! lock (`lock_sock()`); the tables of `inet_hashtables.rs` map addresses to
//! socket ids. The operations never block: where Linux would sleep they
//! return `EAGAIN`/`EINPROGRESS` and the socket layer waits for the
//! matching [`SkEvent`](crate::SkEvent).
//!
//! # Deviations from Linux
//!
//! - Blocking, `SO_RCVTIMEO`/`SO_SNDTIMEO` and lingering close with a
//!   timeout belong to the socket layer.
//! - No TCP Fast Open.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bitflags::bitflags;
use netcore::{Duration, Errno, Sysctl, TcpMib};
use parking_lot::{Mutex, MutexGuard};

use crate::context::{SkEvent, TcpContext};
use crate::inet_connection_sock::{ListenState, inet_csk_listen_stop};
use crate::inet_hashtables::{EhashEntry, FourTuple, InetHashinfo};
use crate::secure_seq::{
    TcpSecrets, secure_ipv4_port_ephemeral, secure_tcp_seq, secure_tcp_ts_off,
};
use crate::tcp_cong::CongestionRegistry;
use crate::tcp_minisocks::InetTimewaitSock;
use crate::tcp_output::{
    TCP_NAGLE_CORK, TCP_NAGLE_OFF, TCP_NAGLE_PUSH, tcp_connect, tcp_current_mss,
    tcp_push_pending_frames, tcp_queue_chunk, tcp_receive_window, tcp_select_window_raw,
    tcp_send_ack, tcp_send_active_reset, tcp_send_fin, tcp_write_xmit, tp_nonagle,
};
use crate::tcp_sock::{
    ICSK_ACK_PUSHED, ICSK_ACK_PUSHED2, ICSK_ACK_SCHED, RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK,
    SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF, SYSCTL_MEM_MAX, SockId, TCP_TIMEWAIT_LEN, TCP_URG_READ,
    TCP_URG_VALID, TcpSock, TcpState, after,
};
use crate::tcp_timer::{TcpTimer, inet_csk_clear_xmit_timers, inet_csk_reset_keepalive_timer};

/// One TCP socket of the host: its id and its state behind the socket lock.
///
/// Mirrors a `struct sock` of `tcp_prot` with `sk_lock` (`lock_sock()`).
/// Handed to the socket layer as `Arc<TcpSocket>`; every operation goes
/// through [`TcpStack`].
pub struct TcpSocket {
    pub(crate) id: SockId,
    inner: Mutex<TcpSock>,
    /// The socket layer's wait queue (`sk->sk_wq`); `None` before the
    /// socket layer takes the socket (a child not yet accepted) and after
    /// it lets go. Linux reads it under RCU, not under the socket lock;
    /// here it sits behind a spinlock of its own that is never held while
    /// taking another, so [`TcpStack::sk_wq`] reaches it under the socket
    /// table's lock without cloning the socket or taking its lock.
    pub(crate) wq: netcore::SpinLock<Option<Weak<dyn crate::SockWq>>>,
}

impl core::fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TcpSocket")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl TcpSocket {
    /// The socket's id (also the key of its timers and wake-ups).
    pub fn id(&self) -> SockId {
        self.id
    }

    pub(crate) fn new(tp: TcpSock) -> Arc<TcpSocket> {
        Arc::new(TcpSocket {
            id: tp.id,
            inner: Mutex::new(tp),
            wq: netcore::SpinLock::new(None),
        })
    }

    /// `lock_sock()`.
    pub(crate) fn lock(&self) -> MutexGuard<'_, TcpSock> {
        self.inner.lock()
    }

    /// The current state (`sk->sk_state`).
    pub fn state(&self) -> TcpState {
        self.inner.lock().state
    }

    /// Bytes received and not yet read (`ioctl(SIOCINQ)`). Mirrors
    /// `tcp_inq()`: 0 on a listener.
    pub fn inq(&self) -> usize {
        let tp = self.inner.lock();
        if tp.state == TcpState::Listen {
            0
        } else {
            tp.rcv_queued_bytes() as usize
        }
    }

    /// The local address (`inet_saddr`, `inet_sport`).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.inner.lock().local()
    }

    /// The peer's address (`inet_daddr`, `inet_dport`).
    pub fn peer_addr(&self) -> SocketAddrV4 {
        self.inner.lock().remote()
    }

    /// Bytes of our structures this socket holds while idle: the socket
    /// struct, its `Arc`, and the capacity of its queues.
    pub fn footprint(&self) -> usize {
        let tp = self.inner.lock();
        // The socket, its Arc counts, its queues, and its entries in the
        // host's tables (socket map, established hash, bind bucket).
        let tables = 2 * core::mem::size_of::<SockId>()
            + core::mem::size_of::<usize>()
            + core::mem::size_of::<FourTuple>()
            + core::mem::size_of::<EhashEntry>()
            + core::mem::size_of::<crate::inet_hashtables::BindOwner>()
            + 3;
        core::mem::size_of::<TcpSocket>()
            + 2 * core::mem::size_of::<usize>()
            + tp.heap_bytes()
            + tables
    }
}

bitflags! {
    /// Flags of `sendmsg`/`recvmsg`. Mirrors the `MSG_*` bits.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct MsgFlags: u32 {
        /// `MSG_OOB`: urgent data (send: its last byte is urgent; receive:
        /// read the urgent byte).
        const OOB = 0x1;
        /// `MSG_PEEK`: read without consuming.
        const PEEK = 0x2;
        /// `MSG_DONTWAIT`: never wait (the operations here never do).
        const DONTWAIT = 0x40;
        /// `MSG_WAITALL`: the socket layer waits for the full length.
        const WAITALL = 0x100;
        /// `MSG_MORE`: more data follows, hold partial segments.
        const MORE = 0x8000;
    }
}

bitflags! {
    /// Readiness of a socket for epoll. Mirrors the `EPOLL*` bits that
    /// `tcp_poll()` returns.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct PollMask: u32 {
        /// `EPOLLIN`.
        const IN = 0x001;
        /// `EPOLLPRI`: urgent data to read.
        const PRI = 0x002;
        /// `EPOLLOUT`.
        const OUT = 0x004;
        /// `EPOLLERR`.
        const ERR = 0x008;
        /// `EPOLLHUP`.
        const HUP = 0x010;
        /// `EPOLLRDNORM`.
        const RDNORM = 0x040;
        /// `EPOLLWRNORM`.
        const WRNORM = 0x100;
        /// `EPOLLRDHUP`.
        const RDHUP = 0x2000;
    }
}

/// Which direction `shutdown()` closes. Mirrors `SHUT_RD`, `SHUT_WR`,
/// `SHUT_RDWR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// `SHUT_RD`.
    Read,
    /// `SHUT_WR`.
    Write,
    /// `SHUT_RDWR`.
    Both,
}

/// A socket option with its value, for `setsockopt`.
///
/// Mirrors the `SOL_SOCKET` and `SOL_TCP` options TCP implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOpt {
    /// `SO_REUSEADDR`.
    ReuseAddr(bool),
    /// `SO_KEEPALIVE`.
    KeepAlive(bool),
    /// `SO_LINGER`: `None` off, `Some(secs)` on (0 = abortive close).
    Linger(Option<u32>),
    /// `SO_SNDBUF` (stored doubled, as Linux does).
    SndBuf(u32),
    /// `SO_RCVBUF` (stored doubled).
    RcvBuf(u32),
    /// `SO_OOBINLINE`: urgent data stays in the normal stream.
    OobInline(bool),
    /// `TCP_NODELAY`.
    NoDelay(bool),
    /// `TCP_CORK`.
    Cork(bool),
    /// `TCP_KEEPIDLE` in seconds (1..=32767).
    KeepIdle(u32),
    /// `TCP_KEEPINTVL` in seconds (1..=32767).
    KeepIntvl(u32),
    /// `TCP_KEEPCNT` (1..=127).
    KeepCnt(u32),
    /// `TCP_MAXSEG` (88..=32767, before connecting).
    MaxSeg(u32),
    /// `TCP_SYNCNT` (1..=127).
    SynCnt(u32),
    /// `TCP_USER_TIMEOUT` in ms.
    UserTimeout(u32),
    /// `TCP_NOTSENT_LOWAT` in bytes (0: the sysctl's): writes stop, and
    /// `EPOLLOUT` clears, while that many bytes are queued unsent.
    NotsentLowat(u32),
    /// `TCP_RTO_MAX_MS` (1000..=120000): the socket's largest RTO and
    /// probe interval.
    RtoMaxMs(u32),
    /// `TCP_THIN_LINEAR_TIMEOUTS`: a thin stream's first six RTOs do not
    /// back off (as `net.ipv4.tcp_thin_linear_timeouts` for every socket).
    ThinLinearTimeouts(bool),
    /// `TCP_WINDOW_CLAMP`.
    WindowClamp(u32),
    /// `TCP_LINGER2` in seconds: how long an orphaned connection stays in
    /// FIN-WAIT-2. Negative: none (reset when the peer ACKs our FIN);
    /// 0: `tcp_fin_timeout`; above 120 (`TCP_FIN_TIMEOUT_MAX`): 120.
    Linger2(i32),
    /// `SO_MAX_PACING_RATE` in bytes per second (`u64::MAX`: no cap):
    /// caps the pacing rate and asks for pacing.
    MaxPacingRate(u64),
}

/// The name of an option for `getsockopt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockOptName {
    /// `SO_REUSEADDR`.
    ReuseAddr,
    /// `SO_KEEPALIVE`.
    KeepAlive,
    /// `SO_SNDBUF`.
    SndBuf,
    /// `SO_RCVBUF`.
    RcvBuf,
    /// `SO_ERROR` (reading clears it): the errno number, 0 for none.
    Error,
    /// `SO_OOBINLINE`.
    OobInline,
    /// `TCP_NODELAY`.
    NoDelay,
    /// `TCP_CORK`.
    Cork,
    /// `TCP_KEEPIDLE`.
    KeepIdle,
    /// `TCP_KEEPINTVL`.
    KeepIntvl,
    /// `TCP_KEEPCNT`.
    KeepCnt,
    /// `TCP_MAXSEG`: the current MSS (or the user's before connecting).
    MaxSeg,
    /// `TCP_SYNCNT`.
    SynCnt,
    /// `TCP_USER_TIMEOUT`.
    UserTimeout,
    /// `TCP_NOTSENT_LOWAT` (0 when unset).
    NotsentLowat,
    /// `TCP_RTO_MAX_MS`: the socket's largest RTO in ms.
    RtoMaxMs,
    /// `TCP_THIN_LINEAR_TIMEOUTS`.
    ThinLinearTimeouts,
    /// `TCP_LINGER2`: -1 when disabled, else the FIN-WAIT-2 lifetime in
    /// seconds (`tcp_fin_timeout` when unset).
    Linger2,
    /// `SO_MAX_PACING_RATE` (-1 for none, as `~0UL` reads back).
    MaxPacingRate,
}

/// The hash of the socket tables keyed by [`SockId`]: the ids are
/// handed out in sequence by the stack (no peer chooses them), so a
/// multiply-rotate mix spreads them as well as SipHash would, for a few
/// instructions per lookup (one per segment received).
pub(crate) type SockIdHash = core::hash::BuildHasherDefault<SockIdHasher>;

/// The hasher of [`SockIdHash`].
#[derive(Debug, Default)]
pub(crate) struct SockIdHasher(u64);

impl core::hash::Hasher for SockIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The host's TCP: sockets, lookup tables, secrets and shared limits.
///
/// Mirrors the TCP part of `struct net` (`net->ipv4.tcp_death_row`,
/// `tcp_hashinfo`, `tcp_challenge_*`) plus `tcp_prot`. One per host,
/// shared (`Arc`) by its CPUs; each socket has its own lock. Lock order:
/// a socket's lock before the tables' lock; a listener's lock before its
/// children's.
pub struct TcpStack {
    /// The full sockets, found by id (one pointer per entry: the id is
    /// read through the socket, see `tcp_sock.rs`).
    pub(crate) tw: Mutex<HashMap<SockId, InetTimewaitSock, SockIdHash>>,
    next_id: AtomicU64,
    pub(crate) hashinfo: Mutex<InetHashinfo>,
    pub(crate) secrets: TcpSecrets,
    /// The congestion-control algorithms (`tcp_cong_list`).
    pub congestion: CongestionRegistry,
    /// `tcp_challenge_timestamp` (seconds) and `tcp_challenge_count`.
    pub(crate) challenge: Mutex<(u64, u32)>,
    /// The host's TCP memory (`tcp_memory_allocated`, `tcp_mem`).
    pub(crate) mem: Arc<crate::tcp_mem::TcpMemory>,
    /// Sockets TSQ held back whose skbs were freed (`tsq_work`).
    pub(crate) tsq: Arc<crate::TsqList>,
    /// What closed connections learned per destination (`tcp_metrics`).
    pub(crate) metrics: Mutex<crate::tcp_metrics::TcpMetrics>,
    /// The host's sysctls, for what TCP reads without a context (`poll`);
    /// see [`TcpStack::set_sysctl`].
    sysctl: std::sync::OnceLock<Sysctl>,
}

impl core::fmt::Debug for TcpStack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TcpStack")
            .field("sockets", &self.hashinfo.lock().socks.len())
            .field("time_wait", &self.tw.lock().len())
            .finish_non_exhaustive()
    }
}

impl TcpStack {
    /// A host's TCP with secrets drawn from `seed` (the host's seeded
    /// random source: the same seed gives the same ISNs and ports).
    pub fn new(seed: u64) -> TcpStack {
        let secrets = TcpSecrets::from_seed(seed);
        TcpStack {
            tw: Mutex::new(HashMap::default()),
            next_id: AtomicU64::new(1),
            hashinfo: Mutex::new(InetHashinfo::with_ehash_secret(secrets.ehash_secret)),
            secrets,
            congestion: CongestionRegistry::new(),
            challenge: Mutex::new((u64::MAX, 0)),
            mem: Arc::new(crate::tcp_mem::TcpMemory::new()),
            tsq: Arc::new(crate::TsqList::default()),
            metrics: Mutex::new(crate::tcp_metrics::TcpMetrics::default()),
            sysctl: std::sync::OnceLock::new(),
        }
    }

    /// Gives TCP the host's sysctl registry for what it reads outside a
    /// [`TcpContext`]: `poll()`'s `tcp_notsent_lowat`. Set once (later
    /// calls are ignored); until set, `poll()` knows no unsent-bytes mark.
    pub fn set_sysctl(&self, sysctl: Sysctl) {
        let _ = self.sysctl.set(sysctl);
    }

    /// `ip tcp_metrics show` at `now`: what closed connections left for
    /// each destination (`saddr` names this host's address toward it).
    pub fn tcp_metrics_show(
        &self,
        now: netcore::Instant,
        saddr: impl Fn(Ipv4Addr) -> Ipv4Addr,
    ) -> String {
        self.metrics.lock().show(now, saddr)
    }

    /// The cached metrics toward `daddr` at `now`, if any.
    pub fn tcp_metrics_get(
        &self,
        daddr: Ipv4Addr,
        now: netcore::Instant,
    ) -> Option<crate::TcpMetricsBlock> {
        self.metrics.lock().get(daddr, now).copied()
    }

    /// The host's TCP memory: pages charged against `net.ipv4.tcp_mem`
    /// and the pressure state (`/proc/net/sockstat`'s `mem`).
    pub fn memory(&self) -> &crate::tcp_mem::TcpMemory {
        &self.mem
    }

    pub(crate) fn alloc_id(&self) -> SockId {
        SockId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn get(&self, id: SockId) -> Option<Arc<TcpSocket>> {
        self.hashinfo.lock().socks.get(&id).cloned()
    }

    pub(crate) fn insert(&self, sk: Arc<TcpSocket>) {
        if self.hashinfo.lock().socks.replace(sk).is_none() {
            self.mem.sockets_allocated_inc();
        }
    }

    pub(crate) fn remove(&self, id: SockId) {
        if self.hashinfo.lock().socks.take(&id).is_some() {
            self.mem.sockets_allocated_dec();
        }
    }

    /// The number of full sockets the host holds (TIME-WAIT not included).
    pub fn socket_count(&self) -> usize {
        self.hashinfo.lock().socks.len()
    }

    /// The bytes of our structures held by every full socket of this host
    /// (the sum of [`TcpSocket::footprint`]), as `/proc/net/sockstat`'s
    /// `mem` accounts the kernel's.
    pub fn sockets_footprint(&self) -> usize {
        let socks: Vec<Arc<TcpSocket>> = self.hashinfo.lock().socks.iter().cloned().collect();
        socks.iter().map(|s| s.footprint()).sum()
    }

    /// The number of TIME-WAIT (and FIN-WAIT-2 mini) sockets.
    pub fn time_wait_count(&self) -> usize {
        self.tw.lock().len()
    }

    pub(crate) fn all_sockets(&self) -> Vec<Arc<TcpSocket>> {
        let mut v: Vec<_> = self.hashinfo.lock().socks.iter().cloned().collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// A new closed socket. Mirrors `tcp_v4_init_sock()` /
    /// `tcp_init_sock()`: `sk_sndbuf = tcp_wmem[1]`, `sk_rcvbuf =
    /// tcp_rmem[1]`, the congestion control of `tcp_congestion_control`
    /// (Reno until CUBIC is registered).
    pub fn socket<C: TcpContext>(&self, ctx: &C) -> Arc<TcpSocket> {
        let sysctl = ctx.sysctl();
        let ca = self
            .congestion
            .default_for(&sysctl.get_str(Sysctl::TCP_CONGESTION_CONTROL));
        let mut tp = TcpSock::new(
            self.alloc_id(),
            sysctl.tcp_wmem()[1] as u32,
            sysctl.tcp_rmem()[1] as u32,
            ca,
        );
        // tcp_init_sock(): icsk_rto_max from tcp_rto_max_ms, kept out of
        // line unless it differs from TCP_RTO_MAX.
        let rto_max_ms = sysctl.get_int(Sysctl::TCP_RTO_MAX_MS);
        if u128::try_from(rto_max_ms).ok() != Some(crate::tcp_sock::TCP_RTO_MAX.as_millis()) {
            tp.opts_ext.rto_max_ms = u32::try_from(rto_max_ms).unwrap_or(0);
        }
        let sk = TcpSocket::new(tp);
        self.insert(sk.clone());
        sk
    }

    /// Binds to a local address and port (0 = pick one). Mirrors
    /// `inet_bind()` + `inet_csk_get_port()`.
    ///
    /// Errors: `EADDRNOTAVAIL` for an address not of this host (unless
    /// `ip_nonlocal_bind`), `EINVAL` if already bound, `EADDRINUSE`.
    pub fn bind<C: TcpContext>(
        &self,
        ctx: &mut C,
        sk: &TcpSocket,
        addr: SocketAddrV4,
    ) -> Result<(), Errno> {
        // __inet_bind(): the address first.
        if !addr.ip().is_unspecified() && !ctx.inet_addr_valid_or_nonlocal(*addr.ip()) {
            return Err(Errno::AddrNotAvail);
        }
        let mut tp = sk.lock();
        if tp.state != TcpState::Close || tp.sport != 0 {
            return Err(Errno::Inval);
        }
        let range = port_range(ctx.sysctl());
        let rand = ctx.prandom_u32();
        let port = self.hashinfo.lock().bind(
            tp.id,
            *addr.ip(),
            addr.port(),
            tp.opts.reuseaddr,
            range,
            rand,
        )?;
        tp.saddr = *addr.ip();
        tp.sport = port;
        tp.bound = true;
        tp.bind_port_locked = addr.port() != 0;
        tp.bind_addr_locked = !addr.ip().is_unspecified();
        Ok(())
    }

    /// Starts listening. Mirrors `inet_listen()` +
    /// `inet_csk_listen_start()`: the backlog is `min(backlog, somaxconn)`
    /// (`sk_max_ack_backlog`); an unbound socket gets an ephemeral port.
    ///
    /// Errors: `EINVAL` (connected), `EADDRINUSE` (another listener).
    pub fn listen<C: TcpContext>(
        &self,
        ctx: &mut C,
        sk: &TcpSocket,
        backlog: i32,
    ) -> Result<(), Errno> {
        let mut tp = sk.lock();
        let somaxconn = ctx.sysctl().get_int(Sysctl::SOMAXCONN).max(0) as u32;
        let backlog = (backlog.max(0) as u32).min(somaxconn);
        match tp.state {
            TcpState::Listen => {
                if let Some(l) = tp.listen.as_mut() {
                    l.max_ack_backlog = backlog;
                }
                return Ok(());
            }
            TcpState::Close => {}
            _ => return Err(Errno::Inval),
        }
        if !tp.bound {
            drop(tp);
            self.bind(ctx, sk, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
            tp = sk.lock();
        }
        let mut h = self.hashinfo.lock();
        if h.listen_conflict(tp.id, tp.saddr, tp.sport) {
            return Err(Errno::AddrInUse);
        }
        h.hash_listener(tp.id, tp.saddr, tp.sport);
        let ehashfn = *h.ehash.hasher();
        drop(h);
        tp.listen = Some(Box::new(ListenState::new(backlog, ehashfn)));
        tp.state = TcpState::Listen;
        Ok(())
    }

    /// Opens a connection. Mirrors `tcp_v4_connect()`: route lookup for
    /// the source address and MTU, an ephemeral port by
    /// `__inet_hash_connect()`, a random flow hash (`sk_set_txhash()`), the
    /// ISN (`secure_tcp_seq()`) and timestamp offset
    /// (`secure_tcp_ts_off()`), then `tcp_connect()`.
    ///
    /// Returns `EINPROGRESS` when the SYN is out; completion comes as
    /// `StateChange` (then [`SockOptName::Error`] tells the result).
    /// Errors: `EISCONN`, `EALREADY`, `EINVAL`, route errors,
    /// `EADDRNOTAVAIL`.
    pub fn connect<C: TcpContext>(
        &self,
        ctx: &mut C,
        sk: &TcpSocket,
        addr: SocketAddrV4,
    ) -> Result<(), Errno> {
        let mut tp = sk.lock();
        match tp.state {
            TcpState::Close => {}
            TcpState::SynSent | TcpState::SynRecv => return Err(Errno::Already),
            TcpState::Listen => return Err(Errno::Inval),
            _ => return Err(Errno::IsConn),
        }
        if addr.port() == 0 || addr.ip().is_unspecified() {
            return Err(Errno::Inval);
        }
        let route = ctx.ip_route_output(*addr.ip(), tp.bind_addr_locked.then_some(tp.saddr))?;
        if !tp.bind_addr_locked {
            tp.saddr = route.saddr;
        }
        tp.daddr = *addr.ip();
        tp.dport = addr.port();
        tp.pmtu = route.mtu;
        let id = tp.id;
        let now = ctx.now();
        let range = port_range(ctx.sysctl());
        let rand8 = if tp.bound { 0 } else { ctx.prandom_u32() };
        let recycled = {
            let mut h = self.hashinfo.lock();
            // A TIME-WAIT socket on the 4-tuple may be taken over
            // (tcp_twsk_unique()); its table is locked inside the hash
            // lock, the one place the two nest.
            let bound = tp.bound;
            let sysctl = ctx.sysctl();
            let twsk_unique = |tw| {
                let tws = self.tw.lock();
                crate::tcp_minisocks::tcp_twsk_unique(tws.get(&tw)?, bound, sysctl, now)
            };
            if tp.bound {
                // bind() chose the port: only the 4-tuple must be unique.
                let t = four_tuple(&tp);
                h.check_established(t, id, twsk_unique)?
            } else {
                let off = secure_ipv4_port_ephemeral(&self.secrets, tp.saddr, tp.daddr, tp.dport);
                let (port, recycled) = h.hash_connect(
                    id,
                    tp.saddr,
                    tp.daddr,
                    tp.dport,
                    range,
                    off,
                    rand8,
                    twsk_unique,
                )?;
                tp.sport = port;
                tp.bound = true;
                recycled
            }
        };
        // tcp_twsk_unique(): the connection goes on from the TIME-WAIT
        // socket's sequence space and timestamp.
        let reuse = recycled.map(|(tw, reuse)| {
            crate::tcp_minisocks::inet_twsk_recycle(self, ctx, tw);
            tp.rx_opt.ts_recent = reuse.ts_recent;
            tp.rx_opt.ts_recent_stamp = reuse.ts_recent_stamp;
            reuse.write_seq
        });
        // sk_set_txhash(): every segment of the connection carries this
        // hash, so the device layer picks a queue without dissecting it.
        tp.txhash = crate::inet_connection_sock::net_tx_rndhash(ctx);
        if ctx.sysctl().get_int(Sysctl::TCP_TIMESTAMPS) != 0 {
            tp.tsoffset = secure_tcp_ts_off(&self.secrets, tp.saddr, tp.daddr);
        }
        let iss = reuse.unwrap_or_else(|| {
            secure_tcp_seq(&self.secrets, tp.saddr, tp.daddr, tp.sport, tp.dport, now)
        });
        tcp_set_state(self, ctx, &mut tp, TcpState::SynSent);
        tcp_connect(ctx, &mut tp, iss)?;
        Err(Errno::InProgress)
    }

    /// Takes a connection from the accept queue. Mirrors
    /// `inet_csk_accept()`. Errors: `EINVAL` (not listening), `EAGAIN`
    /// (queue empty).
    pub fn accept(&self, sk: &TcpSocket) -> Result<Arc<TcpSocket>, Errno> {
        let mut tp = sk.lock();
        if tp.state != TcpState::Listen {
            return Err(Errno::Inval);
        }
        let l = tp.listen.as_mut().ok_or(Errno::Inval)?;
        let child = l.accept_queue.pop_front().ok_or(Errno::Again)?;
        drop(tp);
        Ok(child)
    }

    /// Queues data for sending and pushes what may go. Mirrors
    /// `tcp_sendmsg_locked()` + `tcp_push()`: data is copied into skbs of
    /// one MSS (`size_goal`), up to `SO_SNDBUF`; without `MSG_MORE` the last
    /// segment is marked PSH and sent as Nagle allows.
    ///
    /// Returns the bytes queued. Errors: a pending `SO_ERROR`, `EPIPE`
    /// after `shutdown(SHUT_WR)` or close, `ENOTCONN`, `EAGAIN` (buffer
    /// full, or still connecting).
    pub fn sendmsg<C: TcpContext>(
        &self,
        ctx: &mut C,
        sk: &TcpSocket,
        data: &[u8],
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        let mut tp = sk.lock();
        tracing::trace!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, len = data.len(), "tcp_sendmsg");
        // Is sending application-limited?
        crate::tcp_rate::tcp_rate_check_app_limited(&mut tp);
        if let Some(e) = tp.sk_err.take() {
            return Err(e);
        }
        if tp.shutdown & SEND_SHUTDOWN != 0 {
            return Err(Errno::Pipe);
        }
        match tp.state {
            TcpState::Established | TcpState::CloseWait => {}
            TcpState::SynSent | TcpState::SynRecv => return Err(Errno::Again),
            TcpState::Close | TcpState::Listen => return Err(Errno::NotConn),
            _ => return Err(Errno::Pipe),
        }
        if data.is_empty() {
            return Ok(0);
        }
        // tcp_send_mss(): one MSS per skb, bounded by the largest buffer.
        let max_payload = ctx
            .page_pool()
            .max_buf_size()
            .saturating_sub(crate::tcp_sock::MAX_TCP_HEADER);
        let mss_now = tcp_current_mss(&tp);
        let size_goal = usize::from(mss_now).min(max_payload).max(1);
        // The skb Linux would fill (tcp_xmit_size_goal()), built here from
        // MSS-sized entries; writing into an unsent one clears its PSH.
        let skb_goal = crate::tcp_output::tcp_xmit_size_goal(&tp, u32::from(mss_now));
        let mut skb_len = write_skb_len(&tp);
        if skb_len > 0
            && let Some(tail) = tp.write_queue.back_mut()
        {
            tail.flags.remove(wire::TcpFlags::PSH);
        }
        // The copy loop of tcp_sendmsg_locked(): a full skb is pushed at
        // once when more than half the peer's largest window was written
        // since the last push (forced_push(), marked PSH), or sent alone
        // when it is the send head (tcp_push_one()).
        let mut copied = 0;
        let mut out_of_space = false;
        while copied < data.len() {
            if skb_len == 0 || skb_len >= skb_goal {
                // A new skb (tcp_stream_alloc_skb() + tcp_skb_entail()).
                tp.write_skb_seq = tp.write_seq;
                skb_len = 0;
            }
            // tcp_wmem_schedule(): protocol memory (tcp_mem) for the copy.
            let overhead = crate::tcp_sock::TCP_SKB_OVERHEAD;
            let want = (data.len() - copied).min(size_goal) as u32 + overhead;
            let granted = crate::tcp_mem::tcp_wmem_schedule(&self.mem, ctx, &mut tp, want);
            if granted <= overhead {
                out_of_space = true;
                break;
            }
            let end = (copied + (granted - overhead) as usize)
                .min(copied + (skb_goal - skb_len) as usize);
            let Some((n, _)) = tcp_queue_chunk(
                ctx,
                &mut tp,
                &data[copied..end],
                size_goal,
                copied == 0,
                skb_len == 0,
            )?
            else {
                out_of_space = true;
                break;
            };
            copied += n;
            skb_len += n as u32;
            if copied == data.len() || skb_len < skb_goal {
                continue;
            }
            if forced_push(&tp) {
                tcp_mark_push(&mut tp);
                tcp_push_pending_frames(ctx, &mut tp, TCP_NAGLE_PUSH);
            } else if !after(tp.write_skb_seq, tp.snd_nxt) {
                // tcp_push_one(): this skb is the send head.
                tcp_write_xmit(ctx, &mut tp, TCP_NAGLE_PUSH, true);
            }
            // The loop starts again from tcp_write_queue_tail(): when the
            // push sent the head of this skb (tso_fragment()), the unsent
            // rest is the tail and is filled up to the size goal without
            // a new send-buffer check, as in Linux.
            skb_len = write_skb_len(&tp);
        }
        if out_of_space {
            // wait_for_space: SOCK_NOSPACE, and what was copied is pushed.
            tp.nospace = true;
            if copied > 0 {
                tcp_push(ctx, &mut tp, false, TCP_NAGLE_PUSH, skb_goal);
            }
        }
        if copied == 0 {
            if tp.write_queue.is_empty() {
                // out_err with EAGAIN and nothing queued: wake the writer
                // (edge-triggered poll) and stop the sndbuf chronograph.
                crate::tcp_output::tcp_chrono_stop(
                    &mut tp,
                    crate::tcp_sock::TcpChrono::SndbufLimited,
                    ctx.now(),
                );
            }
            return Err(Errno::Again);
        }
        // tcp_mark_urg(): the last byte written is the urgent one.
        if flags.contains(MsgFlags::OOB) {
            tp.snd_up = Some(tp.write_seq);
        }
        let nonagle = tp_nonagle(&tp);
        tcp_push(
            ctx,
            &mut tp,
            flags.contains(MsgFlags::MORE),
            nonagle,
            skb_goal,
        );
        Ok(copied)
    }

    /// Reads received data. Mirrors `tcp_recvmsg_locked()` with
    /// `tcp_cleanup_rbuf()`: `MSG_PEEK` leaves the data queued; reading
    /// frees receive space and may send a window update.
    ///
    /// Returns the bytes read, 0 at end of stream. Errors: `ENOTCONN`, a
    /// pending `SO_ERROR`, `EAGAIN` when nothing is there yet.
    pub fn recvmsg<C: TcpContext>(
        &self,
        ctx: &mut C,
        sk: &TcpSocket,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        let mut tp = sk.lock();
        if tp.state == TcpState::Listen {
            return Err(Errno::NotConn);
        }
        let peek = flags.contains(MsgFlags::PEEK);
        if flags.contains(MsgFlags::OOB) {
            return tcp_recv_urg(&mut tp, buf, peek);
        }
        let mut copied = 0usize;
        let mut seq = tp.copied_seq;
        for s in &tp.receive_queue {
            if copied == buf.len() {
                break;
            }
            // Reading stops at the urgent mark once something was read.
            if tp.urg_data != 0 && tp.urg_seq == seq && copied > 0 {
                break;
            }
            let mut off = seq.wrapping_sub(s.seq) as usize;
            let len = s.skb.len();
            if off >= len {
                continue;
            }
            let mut n = (len - off).min(buf.len() - copied);
            if tp.urg_data != 0 {
                let urg_offset = tp.urg_seq.wrapping_sub(seq) as usize;
                if urg_offset < n {
                    if urg_offset > 0 {
                        n = urg_offset;
                    } else if !tp.opts.oobinline {
                        // The urgent byte is not part of the stream.
                        seq = seq.wrapping_add(1);
                        off += 1;
                        n -= 1;
                        if n == 0 {
                            continue;
                        }
                    }
                }
            }
            let to = &mut buf[copied..copied + n];
            if s.skb.is_nonlinear() {
                // skb_copy_datagram_msg(): the linear part, then the
                // fragments, straight into the user's buffer.
                if s.skb.copy_bits(off, to).is_err() {
                    break;
                }
            } else {
                to.copy_from_slice(&s.skb.data()[off..off + n]);
            }
            copied += n;
            seq = seq.wrapping_add(n as u32);
        }
        if copied == 0 {
            // SOCK_DONE (the FIN arrived) first, then a pending error.
            if buf.is_empty() || tp.rcv_fin {
                return Ok(0);
            }
            if let Some(e) = tp.sk_err.take() {
                return Err(e);
            }
            if tp.shutdown & RCV_SHUTDOWN != 0 {
                return Ok(0);
            }
            if tp.state == TcpState::Close {
                return if tp.rcv_fin {
                    Ok(0)
                } else {
                    Err(Errno::NotConn)
                };
            }
            return Err(Errno::Again);
        }
        tracing::trace!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, copied, "tcp_recvmsg");
        if !peek {
            tp.copied_seq = seq;
            if tp.urg_data != 0 && after(tp.copied_seq, tp.urg_seq) {
                tp.urg_data = 0;
                crate::tcp_input::tcp_fast_path_check(&mut tp);
            }
            while let Some(front) = tp.receive_queue.front() {
                let end = front.seq.wrapping_add(front.skb.len() as u32);
                if after(end, tp.copied_seq) {
                    break;
                }
                let s = tp.receive_queue.pop_front().expect("checked front");
                tp.rmem_alloc = tp.rmem_alloc.saturating_sub(s.skb.truesize() as u32);
            }
            if tp.receive_queue.is_empty() {
                tp.receive_queue.free();
            }
            let now = ctx.now();
            crate::tcp_input::tcp_rcv_space_adjust(ctx.sysctl(), &mut tp, now);
            tcp_cleanup_rbuf(ctx, &mut tp, copied);
            crate::tcp_mem::sk_mem_reclaim(ctx, &mut tp);
        }
        Ok(copied)
    }

    /// Closes one or both directions. Mirrors `inet_shutdown()` +
    /// `tcp_shutdown()`: `SHUT_WR` sends a FIN (ESTABLISHED → FIN-WAIT-1,
    /// CLOSE-WAIT → LAST-ACK); `SHUT_RD` makes reads return 0.
    ///
    /// Errors: `ENOTCONN` when not connected.
    pub fn shutdown<C: TcpContext>(
        &self,
        ctx: &mut C,
        sk: &TcpSocket,
        how: Shutdown,
    ) -> Result<(), Errno> {
        let mut tp = sk.lock();
        let bits = match how {
            Shutdown::Read => RCV_SHUTDOWN,
            Shutdown::Write => SEND_SHUTDOWN,
            Shutdown::Both => SHUTDOWN_MASK,
        };
        match tp.state {
            TcpState::Close => {
                tp.shutdown |= bits;
                return Err(Errno::NotConn);
            }
            TcpState::Listen => {
                if bits & RCV_SHUTDOWN != 0 {
                    self.disconnect(ctx, &mut tp);
                }
                return Ok(());
            }
            TcpState::SynSent => {
                self.disconnect(ctx, &mut tp);
                return Ok(());
            }
            _ => {}
        }
        tp.shutdown |= bits;
        if bits & SEND_SHUTDOWN != 0
            && matches!(
                tp.state,
                TcpState::Established | TcpState::SynRecv | TcpState::CloseWait
            )
            && tcp_close_state(self, ctx, &mut tp)
        {
            tcp_send_fin(ctx, &mut tp);
        }
        if !tp.dead {
            ctx.sk_wake(tp.id, SkEvent::StateChange);
        }
        Ok(())
    }

    /// Closes the socket for the user. Mirrors `tcp_close()`: unread data
    /// or `SO_LINGER` 0 abort with a RST (`TCPAbortOnClose`,
    /// `TCPAbortOnData`); otherwise a FIN is sent and the socket lives on,
    /// orphaned, through FIN-WAIT/LAST-ACK (an orphaned FIN-WAIT-2 becomes a
    /// mini socket for `tcp_fin_timeout`). A listener resets its queued
    /// connections (`inet_csk_listen_stop()`).
    pub fn close<C: TcpContext>(&self, ctx: &mut C, sk: &TcpSocket) {
        let mut tp = sk.lock();
        tp.shutdown = SHUTDOWN_MASK;
        let cpu = ctx.cpu();
        if tp.state == TcpState::Listen {
            tcp_set_state(self, ctx, &mut tp, TcpState::Close);
            inet_csk_listen_stop(self, ctx, &mut tp);
        } else {
            let unread = tp.rcv_queued_bytes() > 0;
            if unread {
                ctx.mibs()
                    .this_cpu(cpu)
                    .inc(netcore::LinuxMib::TcpAbortOnClose);
                tcp_set_state(self, ctx, &mut tp, TcpState::Close);
                tcp_send_active_reset(ctx, &mut tp);
            } else if tp.opts_ext.linger == Some(0) {
                self.disconnect(ctx, &mut tp);
                ctx.mibs()
                    .this_cpu(cpu)
                    .inc(netcore::LinuxMib::TcpAbortOnData);
            } else if tcp_close_state(self, ctx, &mut tp) {
                tcp_send_fin(ctx, &mut tp);
            }
        }
        // adjudge_to_death: orphan the socket.
        crate::tcp_mem::sock_orphan(&self.mem, &mut tp);
        tcp_purge_receive_queue(&mut tp);
        crate::tcp_mem::sk_mem_reclaim(ctx, &mut tp);
        if tp.state == TcpState::FinWait2 && tp.opts_ext.linger2 < 0 {
            // No FIN-WAIT-2 wanted: abort (`TCPAbortOnLinger`).
            tcp_set_state(self, ctx, &mut tp, TcpState::Close);
            tcp_send_active_reset(ctx, &mut tp);
            ctx.mibs()
                .this_cpu(cpu)
                .inc(netcore::LinuxMib::TcpAbortOnLinger);
        } else if tp.state == TcpState::FinWait2 {
            let tmo = tcp_fin_time(ctx, &tp);
            if tmo > TCP_TIMEWAIT_LEN {
                inet_csk_reset_keepalive_timer(ctx, &mut tp, tmo.saturating_sub(TCP_TIMEWAIT_LEN));
            } else {
                crate::tcp_minisocks::tcp_time_wait(self, ctx, &mut tp, TcpState::FinWait2, tmo);
                return;
            }
        }
        if tp.state != TcpState::Close && crate::tcp_mem::tcp_check_oom(&self.mem, ctx, &tp, 0) {
            // Too many orphans or out of tcp_mem: the orphan is not kept
            // (`TCPAbortOnMemory`).
            tcp_set_state(self, ctx, &mut tp, TcpState::Close);
            tcp_send_active_reset(ctx, &mut tp);
            ctx.mibs()
                .this_cpu(cpu)
                .inc(netcore::LinuxMib::TcpAbortOnMemory);
        }
        if tp.state == TcpState::Close {
            inet_csk_destroy_sock(self, ctx, &mut tp);
        }
    }

    /// Aborts the connection: RST if synchronized, back to CLOSE, queues
    /// purged. Mirrors `tcp_disconnect()`.
    pub(crate) fn disconnect<C: TcpContext>(&self, ctx: &mut C, tp: &mut TcpSock) {
        let old = tp.state;
        if old != TcpState::Close {
            tcp_set_state(self, ctx, tp, TcpState::Close);
        }
        if old == TcpState::Listen {
            inet_csk_listen_stop(self, ctx, tp);
        } else if matches!(
            old,
            TcpState::Established
                | TcpState::CloseWait
                | TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::SynRecv
                | TcpState::Closing
                | TcpState::LastAck
        ) {
            tcp_send_active_reset(ctx, tp);
        } else if old == TcpState::SynSent {
            tp.sk_err = Some(Errno::ConnReset);
        }
        inet_csk_clear_xmit_timers(ctx, tp);
        tcp_write_queue_purge(tp);
        tcp_purge_receive_queue(tp);
        crate::tcp_mem::sk_mem_reclaim(ctx, tp);
        if !tp.dead {
            ctx.sk_wake(tp.id, SkEvent::StateChange);
        }
    }

    /// Sets an option. Mirrors `sk_setsockopt()` / `do_tcp_setsockopt()`.
    ///
    /// Errors: `EINVAL` naming nothing more than Linux does (a value out
    /// of the range documented on each [`SockOpt`] variant).
    pub fn setsockopt<C: TcpContext>(
        &self,
        ctx: &mut C,
        sk: &TcpSocket,
        opt: SockOpt,
    ) -> Result<(), Errno> {
        let mut tp = sk.lock();
        match opt {
            SockOpt::ReuseAddr(v) => tp.opts.reuseaddr = v,
            SockOpt::KeepAlive(v) => {
                // tcp_set_keepalive()
                if v && !tp.opts.keepalive
                    && !matches!(tp.state, TcpState::Close | TcpState::Listen)
                {
                    let when = crate::tcp_timer::keepalive_time_when(ctx, &tp);
                    inet_csk_reset_keepalive_timer(ctx, &mut tp, when);
                } else if !v {
                    ctx.cancel_timer(TcpTimer::Keepalive(tp.id));
                }
                tp.opts.keepalive = v;
            }
            SockOpt::Linger(v) => tp.opts_ext.linger = v,
            SockOpt::SndBuf(v) => {
                tp.sndbuf = (v.min(SYSCTL_MEM_MAX) * 2).max(SOCK_MIN_SNDBUF);
                tp.opts.sndbuf_locked = true;
                if tp.nospace && tp.sk_stream_is_writeable(Some(ctx.sysctl())) {
                    tp.nospace = false;
                    ctx.sk_wake(tp.id, SkEvent::WriteSpace);
                }
            }
            SockOpt::ThinLinearTimeouts(v) => tp.opts_ext.thin_lto = v,
            SockOpt::RtoMaxMs(v) => {
                // do_tcp_setsockopt(): 1 s .. TCP_RTO_MAX_SEC.
                if !(1000..=120_000).contains(&v) {
                    return Err(Errno::Inval);
                }
                tp.opts_ext.rto_max_ms = v;
            }
            SockOpt::NotsentLowat(v) => {
                // do_tcp_setsockopt(): the mark moves, and a writer it
                // now lets go is woken (sk->sk_write_space()).
                tp.opts_ext.notsent_lowat = v;
                if tp.nospace && tp.sk_stream_is_writeable(Some(ctx.sysctl())) {
                    tp.nospace = false;
                    ctx.sk_wake(tp.id, SkEvent::WriteSpace);
                }
            }
            SockOpt::RcvBuf(v) => {
                tp.rcvbuf = (v.min(SYSCTL_MEM_MAX) * 2).max(SOCK_MIN_RCVBUF);
                tp.opts.rcvbuf_locked = true;
            }
            SockOpt::OobInline(v) => tp.opts.oobinline = v,
            SockOpt::NoDelay(v) => {
                tp.opts.nodelay = v;
                if v {
                    let n = tp_nonagle(&tp) | TCP_NAGLE_PUSH;
                    tcp_push_pending_frames(ctx, &mut tp, n);
                }
            }
            SockOpt::Cork(v) => {
                tp.opts.cork = v;
                if !v {
                    let n = if tp.opts.nodelay {
                        TCP_NAGLE_OFF | TCP_NAGLE_PUSH
                    } else {
                        0
                    };
                    tcp_push_pending_frames(ctx, &mut tp, n);
                }
            }
            SockOpt::KeepIdle(v) => {
                if !(1..=32767).contains(&v) {
                    return Err(Errno::Inval);
                }
                tp.opts_ext.keepidle = Some(v);
                if tp.opts.keepalive && !matches!(tp.state, TcpState::Close | TcpState::Listen) {
                    let last = tp.rcv_tstamp.max(tp.ack.lrcvtime);
                    let elapsed = ctx.now().saturating_duration_since(last);
                    let when = Duration::from_secs(u64::from(v)).saturating_sub(elapsed);
                    inet_csk_reset_keepalive_timer(ctx, &mut tp, when);
                }
            }
            SockOpt::KeepIntvl(v) => {
                if !(1..=32767).contains(&v) {
                    return Err(Errno::Inval);
                }
                tp.opts_ext.keepintvl = Some(v);
            }
            SockOpt::KeepCnt(v) => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::Inval);
                }
                tp.opts_ext.keepcnt = Some(v as u8);
            }
            SockOpt::MaxSeg(v) => {
                if !(88..=32767).contains(&v) {
                    return Err(Errno::Inval);
                }
                tp.rx_opt.user_mss = v as u16;
            }
            SockOpt::SynCnt(v) => {
                if !(1..=127).contains(&v) {
                    return Err(Errno::Inval);
                }
                tp.opts_ext.syn_retries = Some(v as u8);
            }
            SockOpt::UserTimeout(v) => tp.opts_ext.user_timeout = v,
            SockOpt::Linger2(v) => tp.opts_ext.linger2 = v.clamp(-1, TCP_FIN_TIMEOUT_MAX_SECS),
            SockOpt::MaxPacingRate(v) => crate::tcp_pacing::sk_set_max_pacing_rate(ctx, &mut tp, v),
            SockOpt::WindowClamp(v) => {
                if v == 0 {
                    if tp.state != TcpState::Close {
                        return Err(Errno::Inval);
                    }
                    tp.opts_ext.window_clamp = 0;
                } else {
                    let v = v.max(SOCK_MIN_RCVBUF / 2);
                    tp.opts_ext.window_clamp = v;
                    tp.window_clamp = v;
                }
            }
        }
        Ok(())
    }

    /// `setsockopt(TCP_CONGESTION)`: switches the socket to the algorithm
    /// registered as `name`. Mirrors `tcp_set_congestion_control()` with
    /// `tcp_reinit_congestion_control()`: on a connected socket the new
    /// algorithm starts from the current cwnd and ssthresh (`.init` runs
    /// and the socket leaves any per-algorithm state behind).
    ///
    /// # Errors
    ///
    /// `ENOENT` when no algorithm of that name is registered
    /// ([`CongestionRegistry::available`] lists them).
    pub fn set_congestion_control<C: TcpContext>(
        &self,
        ctx: &C,
        sk: &TcpSocket,
        name: &str,
    ) -> Result<(), Errno> {
        let ca = self.congestion.find(name).ok_or(Errno::NoEnt)?;
        let mut tp = sk.lock();
        if tp.ca_ops.name() == ca.name() {
            return Ok(());
        }
        tp.ca_ops = ca;
        if !matches!(tp.state, TcpState::Close | TcpState::Listen) {
            let tp = &mut *tp;
            tp.cwnd.tcp_mstamp = ctx.now().as_micros();
            tp.cwnd.snd_una = tp.snd_una;
            tp.cwnd.snd_nxt = tp.snd_nxt;
            tp.ca_ops.init(&mut tp.cwnd);
        }
        Ok(())
    }

    /// `getsockopt(TCP_CONGESTION)`: the socket's algorithm name.
    pub fn congestion_control(&self, sk: &TcpSocket) -> &'static str {
        sk.lock().ca_ops.name()
    }

    /// Reads an option. Mirrors `sk_getsockopt()` / `do_tcp_getsockopt()`.
    pub fn getsockopt<C: TcpContext>(
        &self,
        ctx: &C,
        sk: &TcpSocket,
        name: SockOptName,
    ) -> Result<i64, Errno> {
        let mut tp = sk.lock();
        let s = ctx.sysctl();
        Ok(match name {
            SockOptName::ReuseAddr => i64::from(tp.opts.reuseaddr),
            SockOptName::KeepAlive => i64::from(tp.opts.keepalive),
            SockOptName::SndBuf => i64::from(tp.sndbuf),
            SockOptName::RcvBuf => i64::from(tp.rcvbuf),
            SockOptName::Error => tp.sk_err.take().map_or(0, |e| i64::from(e as i32)),
            SockOptName::OobInline => i64::from(tp.opts.oobinline),
            SockOptName::NoDelay => i64::from(tp.opts.nodelay),
            SockOptName::Cork => i64::from(tp.opts.cork),
            SockOptName::KeepIdle => i64::from(
                tp.opts_ext
                    .keepidle
                    .unwrap_or(s.get_int(Sysctl::TCP_KEEPALIVE_TIME) as u32),
            ),
            SockOptName::KeepIntvl => i64::from(
                tp.opts_ext
                    .keepintvl
                    .unwrap_or(s.get_int(Sysctl::TCP_KEEPALIVE_INTVL) as u32),
            ),
            SockOptName::KeepCnt => i64::from(
                tp.opts_ext
                    .keepcnt
                    .unwrap_or(s.get_int(Sysctl::TCP_KEEPALIVE_PROBES) as u8),
            ),
            SockOptName::MaxSeg => {
                if matches!(tp.state, TcpState::Close | TcpState::Listen) {
                    i64::from(if tp.rx_opt.user_mss != 0 {
                        tp.rx_opt.user_mss
                    } else {
                        crate::tcp_sock::TCP_MSS_DEFAULT
                    })
                } else {
                    i64::from(tp.mss_cache)
                }
            }
            SockOptName::SynCnt => i64::from(
                tp.opts_ext
                    .syn_retries
                    .unwrap_or(s.get_int(Sysctl::TCP_SYN_RETRIES) as u8),
            ),
            SockOptName::UserTimeout => i64::from(tp.opts_ext.user_timeout),
            SockOptName::NotsentLowat => i64::from(tp.opts_ext.notsent_lowat),
            SockOptName::RtoMaxMs => tp.rto_max().as_millis() as i64,
            SockOptName::ThinLinearTimeouts => i64::from(tp.opts_ext.thin_lto),
            SockOptName::Linger2 => match tp.opts_ext.linger2 {
                0 => s.get_int(Sysctl::TCP_FIN_TIMEOUT),
                v => i64::from(v),
            },
            SockOptName::MaxPacingRate => tp
                .pacing
                .as_ref()
                .map_or(-1, |p| i64::try_from(p.sk_max_pacing_rate).unwrap_or(-1)),
        })
    }

    /// Readiness for epoll. Mirrors `tcp_poll()` (and
    /// `inet_csk_listen_poll()` for a listener).
    pub fn poll(&self, sk: &TcpSocket) -> PollMask {
        let tp = sk.lock();
        let mut mask = PollMask::empty();
        if tp.state == TcpState::Listen {
            if tp
                .listen
                .as_ref()
                .is_some_and(|l| !l.accept_queue.is_empty())
            {
                mask |= PollMask::IN | PollMask::RDNORM;
            }
            return mask;
        }
        if tp.shutdown == SHUTDOWN_MASK || tp.state == TcpState::Close {
            mask |= PollMask::HUP;
        }
        if tp.shutdown & RCV_SHUTDOWN != 0 {
            mask |= PollMask::IN | PollMask::RDNORM | PollMask::RDHUP;
        }
        if !matches!(tp.state, TcpState::SynSent | TcpState::SynRecv) {
            // tcp_stream_is_readable(): an urgent byte at the read point,
            // out of line, is not data to read.
            let at_mark = tp.urg_data != 0 && tp.urg_seq == tp.copied_seq && !tp.opts.oobinline;
            if tp.rcv_queued_bytes() > u32::from(at_mark) {
                mask |= PollMask::IN | PollMask::RDNORM;
            }
            if tp.urg_data & TCP_URG_VALID != 0 {
                mask |= PollMask::PRI;
            }
            if tp.shutdown & SEND_SHUTDOWN != 0 || tp.sk_stream_is_writeable(self.sysctl.get()) {
                mask |= PollMask::OUT | PollMask::WRNORM;
            }
        }
        if tp.sk_err.is_some() {
            mask |= PollMask::ERR;
        }
        mask
    }

    /// Bytes queued for reading. Mirrors `ioctl(SIOCINQ)` (`tcp_inq()`);
    /// `EINVAL` on a listener.
    pub fn ioctl_inq(&self, sk: &TcpSocket) -> Result<u32, Errno> {
        let tp = sk.lock();
        if tp.state == TcpState::Listen {
            return Err(Errno::Inval);
        }
        Ok(tp.rcv_queued_bytes())
    }

    /// Whether the next byte to read is the urgent one. Mirrors
    /// `ioctl(SIOCATMARK)` (`tcp_ioctl()`); `EINVAL` on a listener.
    pub fn ioctl_atmark(&self, sk: &TcpSocket) -> Result<bool, Errno> {
        let tp = sk.lock();
        if tp.state == TcpState::Listen {
            return Err(Errno::Inval);
        }
        Ok(tp.urg_data != 0 && tp.urg_seq == tp.copied_seq)
    }

    /// Bytes not yet acknowledged by the peer. Mirrors
    /// `ioctl(SIOCOUTQ)` (`write_seq - snd_una`); `EINVAL` on a listener.
    pub fn ioctl_outq(&self, sk: &TcpSocket) -> Result<u32, Errno> {
        let tp = sk.lock();
        if tp.state == TcpState::Listen {
            return Err(Errno::Inval);
        }
        Ok(tp.write_seq.wrapping_sub(tp.snd_una))
    }

    /// The connection's `struct tcp_info`. Mirrors `tcp_get_info()`.
    pub fn tcp_info<C: TcpContext>(&self, ctx: &C, sk: &TcpSocket) -> crate::TcpInfo {
        let tp = sk.lock();
        crate::inet_diag::tcp_get_info(ctx.now(), &tp)
    }

    /// Dispatches an expired timer. Mirrors the kernel's timer callbacks
    /// (`tcp_write_timer()`, `tcp_delack_timer()`, `tcp_keepalive_timer()`,
    /// `tw_timer_handler()`, `reqsk_timer_handler()`), each taking the
    /// socket lock first. A timer of a socket that is gone is ignored.
    pub fn handle_timer<C: TcpContext>(&self, ctx: &mut C, timer: TcpTimer) {
        use crate::tcp_timer as t;
        match timer {
            TcpTimer::TimeWait(id) => crate::tcp_minisocks::tw_timer_handler(self, ctx, id),
            TcpTimer::SynAck { listener, req } => {
                if let Some(sk) = self.get(listener) {
                    let mut tp = sk.lock();
                    crate::inet_connection_sock::reqsk_timer_handler(self, ctx, &mut tp, req);
                }
            }
            TcpTimer::Pacing(id) => {
                let Some(sk) = self.get(id) else { return };
                crate::tcp_pacing::tcp_pace_kick(ctx, &mut sk.lock());
            }
            TcpTimer::CompressedAck(id) => {
                let Some(sk) = self.get(id) else { return };
                crate::tcp_input::tcp_compressed_ack_kick(ctx, &mut sk.lock());
            }
            TcpTimer::Retransmit(id)
            | TcpTimer::Probe0(id)
            | TcpTimer::LossProbe(id)
            | TcpTimer::ReoTimeout(id)
            | TcpTimer::DelAck(id)
            | TcpTimer::Keepalive(id) => {
                let Some(sk) = self.get(id) else { return };
                let mut tp = sk.lock();
                if matches!(
                    timer,
                    TcpTimer::Retransmit(_)
                        | TcpTimer::Probe0(_)
                        | TcpTimer::LossProbe(_)
                        | TcpTimer::ReoTimeout(_)
                ) && !t::icsk_timer_fired(&mut tp, timer)
                {
                    return;
                }
                match timer {
                    TcpTimer::Retransmit(_) => t::tcp_retransmit_timer(self, ctx, &mut tp),
                    TcpTimer::Probe0(_) => t::tcp_probe_timer(self, ctx, &mut tp),
                    TcpTimer::LossProbe(_) => {
                        crate::tcp_recovery::tcp_send_loss_probe(ctx, &mut tp);
                    }
                    TcpTimer::ReoTimeout(_) => crate::tcp_rack::tcp_rack_reo_timeout(ctx, &mut tp),
                    TcpTimer::DelAck(_) => t::tcp_delack_timer(ctx, &mut tp),
                    _ => t::tcp_keepalive_timer(self, ctx, &mut tp),
                }
            }
        }
    }
}

/// `ip_local_port_range` as `(lo, hi)`.
pub(crate) fn port_range(s: &Sysctl) -> (u16, u16) {
    let (lo, hi) = s.ip_local_port_range();
    (lo.clamp(1, 65535) as u16, hi.clamp(1, 65535) as u16)
}

pub(crate) fn four_tuple(tp: &TcpSock) -> FourTuple {
    FourTuple {
        laddr: tp.saddr,
        lport: tp.sport,
        raddr: tp.daddr,
        rport: tp.dport,
    }
}

/// The bytes of the unsent skb `tcp_sendmsg_locked()` would append to
/// (`tcp_write_queue_tail()`), 0 when there is none: all was sent, or the
/// tail carries a FIN.
fn write_skb_len(tp: &TcpSock) -> u32 {
    if tp.write_seq == tp.snd_nxt
        || tp.write_queue.back().is_none_or(|t| {
            t.flags
                .intersects(wire::TcpFlags::FIN | wire::TcpFlags::SYN)
        })
    {
        return 0;
    }
    let start = if after(tp.write_skb_seq, tp.snd_nxt) {
        tp.write_skb_seq
    } else {
        tp.snd_nxt
    };
    tp.write_seq.wrapping_sub(start)
}

/// More than half the peer's largest window was written since the last
/// push. Mirrors `forced_push()`.
fn forced_push(tp: &TcpSock) -> bool {
    after(tp.write_seq, tp.pushed_seq.wrapping_add(tp.max_window >> 1))
}

/// Ends a write: marks the unsent tail PSH unless `more` (`MSG_MORE`) or
/// when a push is forced, then sends what Nagle (`nonagle`, or cork with
/// `more`) lets go — unless autocorking holds the tail back.
///
/// Autocorking (`tcp_should_autocork()`, `net.ipv4.tcp_autocorking`): a
/// tail smaller than `size_goal` (the skb Linux would fill) waits while
/// data is in flight and some of this socket's packets are still below
/// TCP (in a qdisc or a device ring, `sk_wmem_alloc` above the tail's
/// truesize): `TSQF_THROTTLED` is set (`TCPAutoCorking` counted when it
/// was not), so the free of those packets (`tcp_wfree()`) runs TSQ's
/// `tcp_write_xmit()`, which sends the tail grown by the writes made in
/// the meantime. Mirrors `tcp_push()`.
fn tcp_push<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, more: bool, nonagle: u8, size_goal: u32) {
    let skb_len = write_skb_len(tp);
    if skb_len == 0 {
        return;
    }
    if !more || forced_push(tp) {
        tcp_mark_push(tp);
    }
    // The cheap tests first: a request/response write finds nothing in
    // flight and reads neither the sysctl nor the queue.
    if tp.packets_out > 0
        && skb_len < size_goal
        && ctx.sysctl().get_int(Sysctl::TCP_AUTOCORKING) != 0
        && let truesize = write_skb_truesize(tp)
        && crate::tcp_pacing::sk_wmem_alloc(tp) > truesize
    {
        if crate::tcp_pacing::tsq_throttle(tp) {
            ctx.mibs()
                .this_cpu(ctx.cpu())
                .inc(netcore::LinuxMib::TcpAutoCorking);
        }
        // A free below TCP may have come before the flag was set.
        if crate::tcp_pacing::sk_wmem_alloc(tp) > truesize {
            return;
        }
    }
    let nonagle = if more { TCP_NAGLE_CORK } else { nonagle };
    tcp_push_pending_frames(ctx, tp, nonagle);
}

/// The truesize of the skb Linux would be filling: the unsent write-queue
/// entries from `write_skb_seq` on.
fn write_skb_truesize(tp: &TcpSock) -> usize {
    let start = if after(tp.write_skb_seq, tp.snd_nxt) {
        tp.write_skb_seq
    } else {
        tp.snd_nxt
    };
    tp.write_queue
        .iter()
        .rev()
        .take_while(|e| after(e.end_seq, start))
        .map(|e| e.skb.truesize())
        .sum()
}

/// Marks the unsent tail segment PSH. Mirrors `tcp_mark_push()`.
fn tcp_mark_push(tp: &mut TcpSock) {
    tp.pushed_seq = tp.write_seq;
    if tp.write_queue.len() > tp.packets_out as usize
        && let Some(tail) = tp.write_queue.back_mut()
    {
        tail.flags |= wire::TcpFlags::PSH;
    }
}

/// After the user read `copied` bytes: ACK if one is due and worth sending
/// now, or if the window can grow to at least twice what was offered.
/// Mirrors `tcp_cleanup_rbuf()`.
pub(crate) fn tcp_cleanup_rbuf<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock, copied: usize) {
    let mut time_to_ack = false;
    if tp.ack.pending & ICSK_ACK_SCHED != 0 {
        let unacked = tp.rcv_nxt.wrapping_sub(tp.rcv_wup);
        if unacked > u32::from(tp.ack.rcv_mss)
            || (copied > 0
                && (tp.ack.pending & ICSK_ACK_PUSHED2 != 0
                    || (tp.ack.pending & ICSK_ACK_PUSHED != 0
                        && !tp.ack.in_pingpong_mode(ctx.sysctl())))
                && tp.rmem_alloc == 0)
        {
            time_to_ack = true;
        }
    }
    if copied > 0 && !time_to_ack && tp.shutdown & RCV_SHUTDOWN == 0 {
        let now_win = tcp_receive_window(tp);
        if 2 * now_win <= tp.window_clamp {
            let new_window = tcp_select_window_raw(tp);
            if new_window != 0 && new_window >= 2 * now_win {
                time_to_ack = true;
            }
        }
    }
    if time_to_ack
        && !matches!(
            tp.state,
            TcpState::Close | TcpState::Listen | TcpState::SynSent
        )
    {
        tcp_send_ack(ctx, tp);
    }
}

/// Moves to `state` with Linux's bookkeeping. Mirrors `tcp_set_state()`:
/// `CurrEstab` up on ESTABLISHED and down when leaving ESTABLISHED or
/// CLOSE-WAIT, `EstabResets` when ESTABLISHED or CLOSE-WAIT goes straight to
/// CLOSE, and on CLOSE the socket leaves the lookup tables and its port.
pub(crate) fn tcp_set_state<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    state: TcpState,
) {
    tcp_set_state_hashed(stack, ctx, tp, state, true);
}

/// [`tcp_set_state`] for a socket that may already be out of the lookup
/// tables: with `hashed` false, CLOSE skips `inet_unhash()` as Linux's
/// does for an `sk_unhashed()` socket (one that
/// `inet_twsk_hashdance_schedule()` took out for its TIME-WAIT sock, and
/// whose automatic port went to the TIME-WAIT sock too).
fn tcp_set_state_hashed<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    state: TcpState,
    hashed: bool,
) {
    let old = tp.state;
    let cpu = ctx.cpu();
    let mibs = ctx.mibs();
    match state {
        TcpState::Established => {
            if old != TcpState::Established {
                mibs.this_cpu(cpu).inc(TcpMib::CurrEstab);
            }
        }
        TcpState::CloseWait => {
            if old == TcpState::SynRecv {
                mibs.this_cpu(cpu).inc(TcpMib::CurrEstab);
            }
        }
        TcpState::Close => {
            if matches!(old, TcpState::CloseWait | TcpState::Established) {
                mibs.this_cpu(cpu).inc(TcpMib::EstabResets);
            }
            if hashed {
                unhash(stack, tp);
            }
            if matches!(old, TcpState::Established | TcpState::CloseWait) {
                mibs.this_cpu(cpu).dec(TcpMib::CurrEstab);
            }
        }
        _ => {
            if matches!(old, TcpState::Established | TcpState::CloseWait) {
                mibs.this_cpu(cpu).dec(TcpMib::CurrEstab);
            }
        }
    }
    tracing::debug!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, from = ?old, to = ?state, "tcp_set_state");
    tp.state = state;
}

/// Removes the socket from the tables and releases its port. Mirrors
/// `inet_unhash()` + `inet_put_port()`.
///
/// A port the user chose with `bind()` stays bound until the socket is
/// freed (`SOCK_BINDPORT_LOCK`); an automatic one is released and the local
/// socket leaves the bind table, so a later `connect()` picks a new port.
fn unhash(stack: &TcpStack, tp: &mut TcpSock) {
    let mut h = stack.hashinfo.lock();
    if tp.state == TcpState::Listen {
        h.unhash_listener(tp.id, tp.sport);
    } else {
        let t = four_tuple(tp);
        h.ehash_remove(&t, EhashEntry::Sock(tp.id));
    }
    if tp.bound && !tp.bind_port_locked {
        // inet_put_port() clears inet_num; inet_sport stays for a last RST.
        h.unbind(tp.id, tp.sport);
        tp.bound = false;
    }
}

/// The connection is finished: CLOSE, timers stopped, the user told, an
/// orphan freed. Mirrors `tcp_done()` (`AttemptFails` from SYN-SENT and
/// SYN-RECV).
pub(crate) fn tcp_done<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    tcp_done_hashed(stack, ctx, tp, true);
}

/// [`tcp_done`] for a socket that may already be out of the lookup
/// tables (`hashed` false: see [`tcp_set_state_hashed`]).
pub(crate) fn tcp_done_hashed<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    hashed: bool,
) {
    if matches!(tp.state, TcpState::SynSent | TcpState::SynRecv) {
        ctx.mibs().this_cpu(ctx.cpu()).inc(TcpMib::AttemptFails);
    }
    tcp_set_state_hashed(stack, ctx, tp, TcpState::Close, hashed);
    inet_csk_clear_xmit_timers(ctx, tp);
    tp.shutdown = SHUTDOWN_MASK;
    if tp.dead {
        // The timers were cleared just above and nothing re-armed them:
        // tcp_v4_destroy_sock()'s second clear would find none.
        inet_csk_destroy_sock_cleared(stack, ctx, tp);
    } else {
        ctx.sk_wake(tp.id, SkEvent::StateChange);
    }
}

/// Reports a fatal error (`ETIMEDOUT`, or the soft error seen) and
/// finishes the connection. Mirrors `tcp_write_err()` (`TCPAbortOnTimeout`).
pub(crate) fn tcp_write_err<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    let err = crate::tcp_timer::timeout_errno(tp);
    tp.sk_err = Some(err);
    ctx.sk_wake(tp.id, SkEvent::ErrorReport);
    tcp_write_queue_purge(tp);
    tcp_done(stack, ctx, tp);
    ctx.mibs()
        .this_cpu(ctx.cpu())
        .inc(netcore::LinuxMib::TcpAbortOnTimeout);
}

/// Frees the write queue. Mirrors `tcp_write_queue_purge()`.
pub(crate) fn tcp_write_queue_purge(tp: &mut TcpSock) {
    tp.write_queue.free();
    tp.wmem_queued = 0;
    tp.packets_out = 0;
    tp.sacked_out = 0;
    tp.lost_out = 0;
    tp.retrans_out = 0;
}

fn tcp_purge_receive_queue(tp: &mut TcpSock) {
    tp.receive_queue.free();
    tp.ofo_queue.free();
    tp.rmem_alloc = 0;
}

/// Frees a closed orphan: it leaves the host's socket table. Mirrors
/// `inet_csk_destroy_sock()` (its timers cleared by `tcp_v4_destroy_sock()`).
pub(crate) fn inet_csk_destroy_sock<C: TcpContext>(
    stack: &TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
) {
    inet_csk_clear_xmit_timers(ctx, tp);
    inet_csk_destroy_sock_cleared(stack, ctx, tp);
}

/// [`inet_csk_destroy_sock`] for a socket whose timers were just cleared
/// (`tcp_done()` clears them first): the rest of the destruction.
fn inet_csk_destroy_sock_cleared<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) {
    if tp.bound {
        // inet_put_port(): the port is released with the socket.
        stack.hashinfo.lock().unbind(tp.id, tp.sport);
        tp.bound = false;
    }
    tcp_write_queue_purge(tp);
    tcp_purge_receive_queue(tp);
    crate::tcp_mem::sk_mem_reclaim(ctx, tp);
    crate::tcp_mem::tcp_orphan_freed(&stack.mem, tp);
    tp.destroyed = true;
    stack.remove(tp.id);
}

/// The state a user close or `SHUT_WR` moves to, and whether a FIN must be
/// sent. Mirrors `tcp_close_state()` with its `new_state[]` table.
fn tcp_close_state<C: TcpContext>(stack: &TcpStack, ctx: &mut C, tp: &mut TcpSock) -> bool {
    let (next, fin) = match tp.state {
        TcpState::Established | TcpState::SynRecv => (TcpState::FinWait1, true),
        TcpState::CloseWait => (TcpState::LastAck, true),
        TcpState::SynSent | TcpState::TimeWait | TcpState::Close | TcpState::Listen => {
            (TcpState::Close, false)
        }
        s => (s, false),
    };
    if next != tp.state {
        tcp_set_state(stack, ctx, tp, next);
    }
    fin
}

/// The largest `TCP_LINGER2`, in seconds (`TCP_FIN_TIMEOUT_MAX`, 120 s).
const TCP_FIN_TIMEOUT_MAX_SECS: i32 = 120;

/// How long an orphaned FIN-WAIT-2 socket lives: `TCP_LINGER2` if set,
/// else `tcp_fin_timeout`, at least 3.5 RTO. Mirrors `tcp_fin_time()`.
pub(crate) fn tcp_fin_time<C: TcpContext>(ctx: &C, tp: &TcpSock) -> Duration {
    let secs = if tp.opts_ext.linger2 > 0 {
        i64::from(tp.opts_ext.linger2)
    } else {
        ctx.sysctl().get_int(Sysctl::TCP_FIN_TIMEOUT)
    };
    let fin = Duration::from_secs(secs.max(0) as u64);
    let rto = tp.rto();
    let min = (rto * 4).saturating_sub(rto / 2);
    fin.max(min)
}

/// `recv(MSG_OOB)`: the urgent byte, out of the stream. Mirrors
/// `tcp_recv_urg()`: `EINVAL` with `SO_OOBINLINE`, without urgent data,
/// or once it was read; `ENOTCONN` on a closed socket that never got a
/// FIN; the byte (left for the next call with `MSG_PEEK`; 0 bytes for an
/// empty buffer, as `MSG_TRUNC`); 0 at end of stream; `EAGAIN` when the
/// pointer came and the byte not yet (this call never waits, as in BSD).
fn tcp_recv_urg(tp: &mut TcpSock, buf: &mut [u8], peek: bool) -> Result<usize, Errno> {
    if tp.opts.oobinline || tp.urg_data == 0 || tp.urg_data == TCP_URG_READ {
        return Err(Errno::Inval);
    }
    if tp.state == TcpState::Close && !tp.rcv_fin {
        return Err(Errno::NotConn);
    }
    if tp.urg_data & TCP_URG_VALID != 0 {
        let c = tp.urg_data as u8;
        if !peek {
            tp.urg_data = TCP_URG_READ;
        }
        return match buf.first_mut() {
            Some(b) => {
                *b = c;
                Ok(1)
            }
            None => Ok(0),
        };
    }
    if tp.state == TcpState::Close || tp.shutdown & RCV_SHUTDOWN != 0 {
        return Ok(0);
    }
    Err(Errno::Again)
}
