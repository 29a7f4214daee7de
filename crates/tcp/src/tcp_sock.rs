//! The TCP socket: its states, sequence space, windows, queues and timers'
//! bookkeeping.
//!
//! Mirrors `struct tcp_sock` (`include/linux/tcp.h`), the parts of
//! `struct inet_connection_sock` (`include/net/inet_connection_sock.h`),
//! `struct inet_sock` and `struct sock` that TCP uses, and the constants of
//! `include/net/tcp.h` and `include/net/tcp_states.h`.
//!
//! ```text
//!   snd_una          snd_nxt                write_seq
//!      |  in flight     |   unsent (write queue) |
//!   ---+----------------+------------------------+----->  sequence space
//!      [      write queue: TxSkb, TxSkb, ...     ]
//!
//!   copied_seq        rcv_nxt         rcv_wup + rcv_wnd
//!      | receive queue   |  window offered  |
//!   ---+-----------------+------------------+----------->  (ofo queue beyond rcv_nxt)
//! ```
//!
//! The buffers are allocated on demand: an idle established socket keeps
//! no queue (each is a [`ColdBox`], one pointer until first used) and no
//! skb.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::num::NonZeroU32;
use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use netcore::{Duration, Errno, Instant, SkBuff};
use wire::{TcpFlags, TcpSackBlock};

use crate::inet_connection_sock::ListenState;
use crate::tcp_cong::{CongestionOps, TcpCaState, TcpCwnd};

/// Identifies a socket (full, time-wait) for the life of the host; never
/// reused, so a stale timer is recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockId(pub u64);

/// The TCP states.
///
/// Mirrors `enum { TCP_ESTABLISHED = 1, ... }` in
/// `include/net/tcp_states.h`, with the kernel's numbering (what
/// `/proc/net/tcp` prints in its `st` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// `TCP_ESTABLISHED`.
    #[doc(alias = "TCP_ESTABLISHED")]
    Established = 1,
    /// `TCP_SYN_SENT`.
    #[doc(alias = "TCP_SYN_SENT")]
    SynSent = 2,
    /// `TCP_SYN_RECV`.
    #[doc(alias = "TCP_SYN_RECV")]
    SynRecv = 3,
    /// `TCP_FIN_WAIT1`.
    #[doc(alias = "TCP_FIN_WAIT1")]
    FinWait1 = 4,
    /// `TCP_FIN_WAIT2`.
    #[doc(alias = "TCP_FIN_WAIT2")]
    FinWait2 = 5,
    /// `TCP_TIME_WAIT`.
    #[doc(alias = "TCP_TIME_WAIT")]
    TimeWait = 6,
    /// `TCP_CLOSE`.
    #[doc(alias = "TCP_CLOSE")]
    Close = 7,
    /// `TCP_CLOSE_WAIT`.
    #[doc(alias = "TCP_CLOSE_WAIT")]
    CloseWait = 8,
    /// `TCP_LAST_ACK`.
    #[doc(alias = "TCP_LAST_ACK")]
    LastAck = 9,
    /// `TCP_LISTEN`.
    #[doc(alias = "TCP_LISTEN")]
    Listen = 10,
    /// `TCP_CLOSING`.
    #[doc(alias = "TCP_CLOSING")]
    Closing = 11,
}

impl TcpState {
    /// The name `ss` prints (`ESTAB`, `SYN-SENT`, ...).
    ///
    /// Mirrors `sstate_name[]` of iproute2's `ss`.
    pub fn ss_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }
}

/// The wait queue a socket's wake-ups reach: the socket layer's socket.
///
/// Mirrors `struct socket_wq` as `sk->sk_wq` points to it: TCP's
/// `sk_data_ready()`, `sk_write_space()`, `sk_state_change()` and
/// `sk_error_report()` wake it with a poll key (`EPOLLIN`, `EPOLLOUT`,
/// ... bits). The socket layer implements it on its socket and gives TCP
/// a weak reference to it ([`TcpSocket::set_sk_wq`](crate::TcpSocket::set_sk_wq)), so each socket
/// holds its own hook as Linux's does, with no per-host table and no
/// allocation of its own. Called with no TCP socket lock held.
pub trait SockWq: Send + Sync {
    /// Wakes the waiters and poll callbacks with poll key `key`. Mirrors
    /// `wake_up_interruptible_poll(&wq->wait, key)`.
    fn wake_up(&self, key: u32);
}

/// Sequence number `a` comes before `b` (mod 2^32). Mirrors `before()`.
#[inline]
pub fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// Sequence number `a` comes after `b`. Mirrors `after()`.
#[inline]
pub fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

/// `seq2 <= seq1 <= seq3` in sequence space. Mirrors `between()`.
#[inline]
pub fn between(seq1: u32, seq2: u32, seq3: u32) -> bool {
    seq3.wrapping_sub(seq2) >= seq1.wrapping_sub(seq2)
}

/// Headroom reserved in front of every TCP segment for the TCP, IP and
/// link headers. Mirrors `MAX_TCP_HEADER` (`L1_CACHE_ALIGN(128 + MAX_HEADER)`).
pub const MAX_TCP_HEADER: usize = 192;
/// What the send buffer is charged per segment beyond its payload: the skb
/// struct and its reserved headroom. Stands for the head part of Linux's
/// `skb->truesize` (payload lives in page frags and is charged by size).
pub const TCP_SKB_OVERHEAD: u32 = (core::mem::size_of::<SkBuff>() + MAX_TCP_HEADER) as u32;
/// The MSS assumed when the peer sends none. Mirrors `TCP_MSS_DEFAULT`.
pub const TCP_MSS_DEFAULT: u16 = 536;
/// The smallest MSS TCP will use (`TCP_MIN_MSS`).
pub const TCP_MIN_MSS: u16 = 88;
/// The largest window scale (`TCP_MAX_WSCALE`).
pub const TCP_MAX_WSCALE: u8 = 14;
/// Initial congestion window in segments (`TCP_INIT_CWND`).
pub const TCP_INIT_CWND: u32 = 10;
/// Default reordering degree (`TCP_FASTRETRANS_THRESH`, the default of
/// `net.ipv4.tcp_reordering`).
pub const TCP_REORDERING_DEFAULT: u32 = 3;
/// Initial RTO, 1 s (`TCP_TIMEOUT_INIT`).
pub const TCP_TIMEOUT_INIT: Duration = Duration::from_secs(1);
/// Largest RTO, 120 s (`TCP_RTO_MAX`).
pub const TCP_RTO_MAX: Duration = Duration::from_secs(120);
/// Smallest RTO, 200 ms (`TCP_RTO_MIN`).
pub const TCP_RTO_MIN: Duration = Duration::from_millis(200);
/// Smallest delayed-ACK timeout, 40 ms (`TCP_DELACK_MIN`, `HZ/25`).
pub const TCP_DELACK_MIN: Duration = Duration::from_millis(40);
/// Largest delayed-ACK timeout, 200 ms (`TCP_DELACK_MAX`, `HZ/5`).
pub const TCP_DELACK_MAX: Duration = Duration::from_millis(200);
/// Smallest ATO, 40 ms (`TCP_ATO_MIN`).
pub const TCP_ATO_MIN: Duration = Duration::from_millis(40);
/// Quick ACKs granted at most (`TCP_MAX_QUICKACKS`).
pub const TCP_MAX_QUICKACKS: u8 = 16;
/// Length of TIME-WAIT, 60 s (`TCP_TIMEWAIT_LEN`).
pub const TCP_TIMEWAIT_LEN: Duration = Duration::from_secs(60);
/// Smallest send buffer (`SOCK_MIN_SNDBUF`, 2 * 2048 + skb overhead).
pub const SOCK_MIN_SNDBUF: u32 = 4608;
/// Smallest receive buffer (`SOCK_MIN_RCVBUF`).
pub const SOCK_MIN_RCVBUF: u32 = 2304;
/// `net.core.wmem_max`/`rmem_max` default (212992).
pub const SYSCTL_MEM_MAX: u32 = 212_992;
/// `TCP_RMEM_TO_WIN_SCALE`: `scaling_ratio` is a fraction of 256.
pub const TCP_RMEM_TO_WIN_SCALE: u32 = 8;
/// `TCP_DEFAULT_SCALING_RATIO`: half the buffer is window until measured.
pub const TCP_DEFAULT_SCALING_RATIO: u8 = 1 << (TCP_RMEM_TO_WIN_SCALE - 1);

/// `sk->sk_shutdown` bit: no more receives. Mirrors `RCV_SHUTDOWN`.
pub const RCV_SHUTDOWN: u8 = 1;
/// `sk->sk_shutdown` bit: no more sends. Mirrors `SEND_SHUTDOWN`.
pub const SEND_SHUTDOWN: u8 = 2;
/// Both directions. Mirrors `SHUTDOWN_MASK`.
pub const SHUTDOWN_MASK: u8 = 3;

/// `TCPCB_SACKED_ACKED`: the segment was SACKed.
pub const TCPCB_SACKED_ACKED: u8 = 0x01;
/// `TCPCB_SACKED_RETRANS`: the segment was retransmitted and the copy is in flight.
pub const TCPCB_SACKED_RETRANS: u8 = 0x02;
/// `TCPCB_LOST`: the segment is marked lost.
pub const TCPCB_LOST: u8 = 0x04;
/// `TCPCB_EVER_RETRANS`: the segment was retransmitted at least once.
pub const TCPCB_EVER_RETRANS: u8 = 0x80;

/// `icsk_ack.pending` bit: an ACK is due. Mirrors `ICSK_ACK_SCHED`.
pub const ICSK_ACK_SCHED: u8 = 1;
/// The delayed-ACK timer is armed. Mirrors `ICSK_ACK_TIMER`.
pub const ICSK_ACK_TIMER: u8 = 2;
/// The last segment had PSH. Mirrors `ICSK_ACK_PUSHED`.
pub const ICSK_ACK_PUSHED: u8 = 4;
/// Twice pushed. Mirrors `ICSK_ACK_PUSHED2`.
pub const ICSK_ACK_PUSHED2: u8 = 8;
/// The urgent byte is in `urg_data`'s low bits. Mirrors `TCP_URG_VALID`.
pub const TCP_URG_VALID: u16 = 0x0100;
/// The urgent pointer came, its byte not yet. Mirrors `TCP_URG_NOTYET`.
pub const TCP_URG_NOTYET: u16 = 0x0200;
/// The urgent byte was read with `MSG_OOB`. Mirrors `TCP_URG_READ`.
pub const TCP_URG_READ: u16 = 0x0400;
/// Send the ACK at once. Mirrors `ICSK_ACK_NOW`.
pub const ICSK_ACK_NOW: u8 = 16;

/// What the `TCP_INFO` chronograph is timing, in rising priority: nothing,
/// data queued (busy), held back by the peer's window, held back by the
/// send buffer. Mirrors `enum tcp_chrono`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TcpChrono {
    /// `TCP_CHRONO_UNSPEC`.
    #[default]
    Unspec = 0,
    /// `TCP_CHRONO_BUSY`: data is queued or in flight.
    Busy = 1,
    /// `TCP_CHRONO_RWND_LIMITED`.
    RwndLimited = 2,
    /// `TCP_CHRONO_SNDBUF_LIMITED`.
    SndbufLimited = 3,
}

/// One segment of the write queue (sent or not).
///
/// Mirrors an skb of `sk_write_queue`/`tcp_rtx_queue` with its
/// `struct tcp_skb_cb`: `seq`, `end_seq` (SYN and FIN count one),
/// `tcp_flags`, `sacked`, and the send time `skb_mstamp_ns`. The skb holds
/// the payload only, with [`MAX_TCP_HEADER`] of headroom.
#[derive(Debug)]
pub(crate) struct TxSkb {
    pub skb: SkBuff,
    pub seq: u32,
    pub end_seq: u32,
    pub flags: TcpFlags,
    pub sacked: u8,
    /// When it was last sent (`skb_mstamp_ns`); `None` before the first send.
    pub sent_at: Option<Instant>,
    /// The delivery state at that send, for rate sampling (`tx`).
    pub tx: crate::tcp_rate::TcpSkbTx,
}

impl TxSkb {
    pub fn len(&self) -> u32 {
        self.skb.len() as u32
    }

    /// What this segment costs the send buffer (`skb->truesize`).
    pub fn truesize(&self) -> u32 {
        TCP_SKB_OVERHEAD + self.len()
    }
}

/// One skb of the receive or out-of-order queue with its starting sequence
/// number. The skb's data is the payload only.
#[derive(Debug)]
pub(crate) struct RxSkb {
    pub seq: u32,
    pub skb: SkBuff,
    pub fin: bool,
}

impl RxSkb {
    pub fn end_seq(&self) -> u32 {
        self.seq
            .wrapping_add(self.skb.len() as u32)
            .wrapping_add(u32::from(self.fin))
    }
}

/// The options negotiated and last seen. Mirrors `struct
/// tcp_options_received` (`tp->rx_opt`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RxOpt {
    pub ts_recent_stamp: u64,
    pub ts_recent: u32,
    pub rcv_tsval: u32,
    pub rcv_tsecr: u32,
    pub saw_tstamp: bool,
    pub tstamp_ok: bool,
    pub sack_ok: bool,
    pub wscale_ok: bool,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub mss_clamp: u16,
    pub user_mss: u16,
}

/// An optional time stamp in one word (`Option<Instant>` takes two):
/// `Instant::MAX`, never a real time, stands for none. Linux keeps such
/// stamps (`retrans_stamp`, `last_oow_ack_time`) as 32-bit clocks with 0
/// for none.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptInstant(Instant);

impl OptInstant {
    /// No time stamp.
    pub const NONE: OptInstant = OptInstant(Instant::MAX);

    /// The stamp, if set.
    pub fn get(self) -> Option<Instant> {
        (self.0 != Instant::MAX).then_some(self.0)
    }

    /// Sets (or with `None` clears) the stamp.
    pub fn set(&mut self, t: Option<Instant>) {
        debug_assert!(t != Some(Instant::MAX), "Instant::MAX is no time stamp");
        self.0 = t.unwrap_or(Instant::MAX);
    }

    /// Whether no stamp is set.
    pub fn is_none(self) -> bool {
        self.0 == Instant::MAX
    }
}

impl core::fmt::Debug for OptInstant {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.get().fmt(f)
    }
}

/// The delayed-ACK engine. Mirrors `icsk->icsk_ack`.
///
/// `ato` is kept in nanoseconds in one word (read and set through
/// [`IcskAck::ato`] and [`IcskAck::set_ato`]; a `Duration` takes two).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IcskAck {
    pub pending: u8,
    pub quick: u8,
    pub pingpong: u8,
    ato_ns: u64,
    pub timeout: Instant,
    pub lrcvtime: Instant,
    pub last_seg_size: u16,
    pub rcv_mss: u16,
}

impl IcskAck {
    /// The ACK timeout (`icsk_ack.ato`).
    pub fn ato(&self) -> Duration {
        Duration::from_nanos(self.ato_ns)
    }

    /// Sets the ACK timeout (at most 584 years).
    pub fn set_ato(&mut self, ato: Duration) {
        self.ato_ns = u64::try_from(ato.as_nanos()).unwrap_or(u64::MAX);
    }

    /// Whether the connection is interactive: at least
    /// `tcp_pingpong_thresh` replies went out within the ATO of the data
    /// they answered. Mirrors `inet_csk_in_pingpong_mode()`.
    pub fn in_pingpong_mode(&self, sysctl: &netcore::Sysctl) -> bool {
        i64::from(self.pingpong) >= sysctl.get_int(netcore::Sysctl::TCP_PINGPONG_THRESH)
    }

    /// Marks the connection interactive at once (the peer's FIN). Mirrors
    /// `inet_csk_enter_pingpong_mode()`.
    pub fn enter_pingpong_mode(&mut self, sysctl: &netcore::Sysctl) {
        let thresh = sysctl.get_int(netcore::Sysctl::TCP_PINGPONG_THRESH);
        self.pingpong = u8::try_from(thresh.max(0)).unwrap_or(u8::MAX);
    }
}

/// Socket options set by the user (`SO_*`, `TCP_*`): the flags, kept
/// inline; the numeric options are in [`SockOptsExt`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct SockOpts {
    pub reuseaddr: bool,
    pub keepalive: bool,
    pub nodelay: bool,
    pub cork: bool,
    pub sndbuf_locked: bool,
    pub rcvbuf_locked: bool,
    /// `SO_OOBINLINE` (`SOCK_URGINLINE`): urgent data stays in the stream.
    pub oobinline: bool,
}

/// The numeric socket options, allocated when the first is set (most
/// sockets set none): `SO_LINGER`, `TCP_KEEPIDLE`/`KEEPINTVL`/`KEEPCNT`,
/// `TCP_SYNCNT`, `TCP_USER_TIMEOUT`, `TCP_LINGER2`, `TCP_WINDOW_CLAMP`.
/// Mirrors `sk_lingertime`, `keepalive_time`/`_intvl`/`_probes`,
/// `icsk_syn_retries`, `icsk_user_timeout`, `linger2` and the user's
/// `window_clamp`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SockOptsExt {
    pub linger: Option<u32>,
    pub keepidle: Option<u32>,
    pub keepintvl: Option<u32>,
    pub keepcnt: Option<u8>,
    pub syn_retries: Option<u8>,
    pub user_timeout: u32,
    /// `TCP_LINGER2` (`tp->linger2`) in seconds, at most 120: orphaned
    /// FIN-WAIT-2 lifetime; 0 uses `tcp_fin_timeout`, -1 means no
    /// FIN-WAIT-2 (reset at once).
    pub linger2: i32,
    pub window_clamp: u32,
    /// `TCP_NOTSENT_LOWAT` (`tp->notsent_lowat`) in bytes; 0: the
    /// sysctl's.
    pub notsent_lowat: u32,
    /// `icsk_rto_max` in ms (`TCP_RTO_MAX_MS`, else `tcp_rto_max_ms` when
    /// the socket was created); 0: `TCP_RTO_MAX`.
    pub rto_max_ms: u32,
    /// `TCP_THIN_LINEAR_TIMEOUTS` (`tp->thin_lto`).
    pub thin_lto: bool,
}

impl ColdState for SockOptsExt {
    const EMPTY: &'static Self = &SockOptsExt {
        linger: None,
        keepidle: None,
        keepintvl: None,
        keepcnt: None,
        syn_retries: None,
        user_timeout: 0,
        linger2: 0,
        window_clamp: 0,
        notsent_lowat: 0,
        rto_max_ms: 0,
        thin_lto: false,
    };
    fn fresh() -> Self {
        *Self::EMPTY
    }
}

/// Per-socket state that most connections never use, kept out of line and
/// allocated on the first write.
///
/// Linux embeds all of `struct tcp_sock` in the socket; here the parts an
/// idle or loss-free connection never touches (recovery and undo state,
/// the out-of-order queue, SACK blocks, the receiver's RTT estimate) cost
/// one pointer until first written, so a million idle connections fit in
/// far less memory. Reading an unallocated box sees [`ColdState::EMPTY`],
/// the value `tcp_init_sock()` would have left there; writing through
/// `DerefMut` allocates it. Methods that only empty a queue
/// ([`ColdBox::clear`], [`ColdBox::pop_front`], ...) do not allocate.
///
/// # Deviations from Linux
///
/// Linux has no such indirection: the state is inline in `tcp_sock`.
pub(crate) struct ColdBox<T: ColdState>(Option<Box<T>>);

/// A type that can live in a [`ColdBox`]: its initial value, readable
/// without allocating.
pub(crate) trait ColdState: Sized + 'static {
    /// The value an unallocated box reads as.
    const EMPTY: &'static Self;
    /// A fresh value equal to [`ColdState::EMPTY`], for the first write.
    fn fresh() -> Self;

    /// A box this thread freed earlier, already equal to
    /// [`ColdState::EMPTY`], if the type keeps a cache of them.
    fn take_cached() -> Option<Box<Self>> {
        None
    }

    /// Offers a box being freed to this thread's cache; by default (and
    /// when the cache is full) it is dropped.
    fn cache(boxed: Box<Self>) {
        drop(boxed);
    }
}

impl<T: ColdState> ColdBox<T> {
    /// An unallocated box.
    pub const fn new() -> ColdBox<T> {
        ColdBox(None)
    }

    /// Whether the state was written and so allocated.
    #[cfg(test)]
    pub fn is_allocated(&self) -> bool {
        self.0.is_some()
    }

    /// The state when allocated, without allocating.
    pub fn allocated_mut(&mut self) -> Option<&mut T> {
        self.0.as_deref_mut()
    }

    /// Drops the state (back to [`ColdState::EMPTY`]); a queue's box goes
    /// to the thread's cache for the next queue that fills.
    pub fn free(&mut self) {
        if let Some(boxed) = self.0.take() {
            T::cache(boxed);
        }
    }

    /// Bytes allocated for the state.
    pub fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |_| core::mem::size_of::<T>())
    }
}

impl<T: ColdState> core::ops::Deref for ColdBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_deref().unwrap_or(T::EMPTY)
    }
}

impl<T: ColdState> core::ops::DerefMut for ColdBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0
            .get_or_insert_with(|| T::take_cached().unwrap_or_else(|| Box::new(T::fresh())))
    }
}

impl<T: ColdState + Clone> Clone for ColdBox<T> {
    fn clone(&self) -> Self {
        ColdBox(self.0.clone())
    }
}

impl<T: ColdState + core::fmt::Debug> core::fmt::Debug for ColdBox<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("(unallocated)"),
        }
    }
}

impl<'a, T: ColdState> IntoIterator for &'a ColdBox<T>
where
    &'a T: IntoIterator,
{
    type Item = <&'a T as IntoIterator>::Item;
    type IntoIter = <&'a T as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        (**self).into_iter()
    }
}

/// How many freed queue boxes of one type a thread keeps for reuse.
const QUEUE_CACHE_MAX: usize = 64;
/// A freed queue with more room than this (entries) is not kept.
const QUEUE_CACHE_MAX_CAPACITY: usize = 16;

/// The write and receive queues empty and fill again with every exchange
/// of a request-response connection (they are freed when empty so that
/// an idle connection holds none). Each type keeps a small per-thread
/// cache of freed, emptied boxes so that refilling a queue costs no
/// allocation, as a `kmem_cache`'s per-CPU array does for Linux's skbs.
macro_rules! cached_queue {
    ($entry:ty, $cache:ident) => {
        thread_local! {
            static $cache: core::cell::RefCell<Vec<Box<VecDeque<$entry>>>> =
                const { core::cell::RefCell::new(Vec::new()) };
        }

        impl ColdState for VecDeque<$entry> {
            const EMPTY: &'static Self = &VecDeque::new();
            fn fresh() -> Self {
                VecDeque::new()
            }
            fn take_cached() -> Option<Box<Self>> {
                $cache.try_with(|c| c.borrow_mut().pop()).ok().flatten()
            }
            fn cache(mut boxed: Box<Self>) {
                boxed.clear();
                if boxed.capacity() > QUEUE_CACHE_MAX_CAPACITY {
                    return;
                }
                let _ = $cache.try_with(|c| {
                    let mut c = c.borrow_mut();
                    if c.len() < QUEUE_CACHE_MAX {
                        c.push(boxed);
                    }
                });
            }
        }
    };
}

cached_queue!(TxSkb, TX_QUEUE_CACHE);
cached_queue!(RxSkb, RX_QUEUE_CACHE);

impl ColdState for heapless::Vec<TcpSackBlock, 4> {
    const EMPTY: &'static Self = &heapless::Vec::new();
    fn fresh() -> Self {
        heapless::Vec::new()
    }
}

/// Emptying a queue that was never allocated does not allocate it.
impl<T: 'static> ColdBox<VecDeque<T>>
where
    VecDeque<T>: ColdState,
{
    /// `VecDeque::pop_front`, without allocating an unallocated queue.
    pub fn pop_front(&mut self) -> Option<T> {
        self.allocated_mut()?.pop_front()
    }

    /// `VecDeque::pop_back`, without allocating an unallocated queue.
    pub fn pop_back(&mut self) -> Option<T> {
        self.allocated_mut()?.pop_back()
    }

    /// The queue's capacity (0 when unallocated).
    pub fn capacity(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.capacity())
    }
}

/// Emptying the SACK blocks does not allocate them.
impl ColdBox<heapless::Vec<TcpSackBlock, 4>> {
    /// `heapless::Vec::clear`, without allocating.
    pub fn clear(&mut self) {
        if let Some(v) = self.allocated_mut() {
            v.clear();
        }
    }

    /// `heapless::Vec::retain`, without allocating.
    pub fn retain(&mut self, f: impl FnMut(&TcpSackBlock) -> bool) {
        if let Some(v) = self.allocated_mut() {
            v.retain(f);
        }
    }
}

/// Loss recovery and undo state of `tcp_input.c`/`tcp_recovery.c`.
///
/// Mirrors these fields of `struct tcp_sock`: `high_seq`,
/// `prr_delivered`, `prr_out`, `prior_cwnd`, `undo_marker` (0 in Linux
/// for none), `undo_retrans`, `prior_ssthresh` (0 for none),
/// `is_sack_reneg`, `frto`, `lost` (segments ever marked lost),
/// `reord_seen`, `dsack_dups`, `tlp_high_seq` and `tlp_retrans`, plus the
/// time stamp clock of the first retransmission of the episode for Eifel
/// undo (`first_retrans_at`, 0 for none). Kept in a [`ColdBox`]: a
/// connection without loss, retransmission or reordering never
/// allocates it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpRecoveryState {
    pub high_seq: u32,
    pub prr_delivered: u32,
    pub prr_out: u32,
    pub prior_cwnd: u32,
    pub undo_marker: Option<NonZeroU32>,
    pub undo_retrans: i32,
    pub prior_ssthresh: u32,
    pub is_sack_reneg: bool,
    pub frto: bool,
    pub lost: u32,
    pub first_retrans_at: u32,
    pub dsack_dups: u32,
    pub reord_seen: u32,
    /// `snd_nxt` when a tail loss probe went out, until its episode ends
    /// (`tlp_high_seq`, 0 in Linux for none).
    pub tlp_high_seq: Option<NonZeroU32>,
    /// Whether that probe was a retransmission (`tlp_retrans`).
    pub tlp_retrans: bool,
    /// Segments delivered by ACKs that echoed ECN congestion
    /// (`tp->delivered_ce`; here because only an ECN episode writes it).
    pub delivered_ce: u32,
}

impl TcpRecoveryState {
    /// The state `tcp_init_sock()` leaves: no episode.
    const INIT: TcpRecoveryState = TcpRecoveryState {
        high_seq: 0,
        prr_delivered: 0,
        prr_out: 0,
        prior_cwnd: 0,
        undo_marker: None,
        undo_retrans: 0,
        prior_ssthresh: 0,
        is_sack_reneg: false,
        frto: false,
        lost: 0,
        first_retrans_at: 0,
        dsack_dups: 0,
        reord_seen: 0,
        tlp_high_seq: None,
        tlp_retrans: false,
        delivered_ce: 0,
    };
}

impl ColdState for TcpRecoveryState {
    const EMPTY: &'static Self = &TcpRecoveryState::INIT;
    fn fresh() -> Self {
        TcpRecoveryState::INIT
    }
}

/// The receiver's RTT estimate. Mirrors `tp->rcv_rtt_est`: the estimate
/// in µs scaled by 8 (`rtt_us`), the sequence that ends the current
/// sample (`seq`) and when it began (`time`), plus the echoed time stamp
/// of the last sample (`rcv_rtt_last_tsecr`). Kept in a [`ColdBox`]: a
/// connection that never receives data never allocates it.
///
/// The receiver's SACK compression state lives here too (it is used only
/// by a connection that receives data, out of order):
/// `tp->compressed_ack` (ACKs held back), `tp->dup_ack_counter` (the
/// immediate duplicate ACKs sent for `compressed_ack_rcv_nxt`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RcvRttEst {
    pub rtt_us: u32,
    pub seq: u32,
    pub time: Option<Instant>,
    pub last_tsecr: u32,
    pub compressed_ack: u8,
    pub dup_ack_counter: u8,
    pub compressed_ack_rcv_nxt: u32,
}

impl ColdState for RcvRttEst {
    const EMPTY: &'static Self = &RcvRttEst {
        rtt_us: 0,
        seq: 0,
        time: None,
        last_tsecr: 0,
        compressed_ack: 0,
        dup_ack_counter: 0,
        compressed_ack_rcv_nxt: 0,
    };
    fn fresh() -> Self {
        *Self::EMPTY
    }
}

/// The `TCP_INFO` chronograph: what is being timed (`chrono_type`),
/// since when (`chrono_start`), and the µs so far of each kind
/// (`chrono_stat`). Mirrors those fields of `struct tcp_sock`; kept in a
/// [`ColdBox`], so a connection that never queues data never allocates
/// it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TcpChronoState {
    pub kind: TcpChrono,
    pub start: Instant,
    pub stat: [u64; 3],
}

impl ColdState for TcpChronoState {
    const EMPTY: &'static Self = &TcpChronoState {
        kind: TcpChrono::Unspec,
        start: Instant::ZERO,
        stat: [0; 3],
    };
    fn fresh() -> Self {
        *Self::EMPTY
    }
}

/// The state of one TCP socket, behind its socket lock.
///
/// Mirrors `struct tcp_sock` with its `inet_connection_sock`, `inet_sock`
/// and `sock` parts. Crate-internal: the socket layer goes through the
/// functions of `tcp.rs`.
pub(crate) struct TcpSock {
    pub id: SockId,
    pub state: TcpState,
    // inet_sock
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    /// The port is in the bind table (`inet_csk(sk)->icsk_bind_hash`).
    pub bound: bool,
    /// The address was set by `bind()` (`SOCK_BINDADDR_LOCK`).
    pub bind_addr_locked: bool,
    /// The port was chosen by the user (`SOCK_BINDPORT_LOCK`).
    pub bind_port_locked: bool,
    // sock
    /// The flow hash every segment carries (`sk_txhash`): random, chosen
    /// at connect or taken from the request, 0 until then.
    pub txhash: u32,
    pub sk_err: Option<Errno>,
    pub sk_err_soft: Option<Errno>,
    pub shutdown: u8,
    /// Orphaned: closed by the user, kept alive by TCP (`SOCK_DEAD`).
    pub dead: bool,
    /// The user's descriptor is gone and the socket was freed
    /// (`inet_csk_destroy_sock()` ran).
    pub destroyed: bool,
    pub sndbuf: u32,
    pub rcvbuf: u32,
    pub wmem_queued: u32,
    pub rmem_alloc: u32,
    /// The pages charged to the host's TCP memory (`sk_forward_alloc`).
    pub sk_mem: crate::tcp_mem::SkMem,
    pub opts: SockOpts,
    /// The numeric options, allocated when the first is set.
    pub opts_ext: ColdBox<SockOptsExt>,
    // tcp_sock: send side
    pub snd_una: u32,
    pub snd_nxt: u32,
    pub snd_wnd: u32,
    pub snd_wl1: u32,
    pub max_window: u32,
    pub write_seq: u32,
    pub pushed_seq: u32,
    /// Where the skb `tcp_sendmsg_locked()` fills last began: the write
    /// queue holds one entry per MSS, and this marks the `size_goal`-sized
    /// skb Linux would have built around them (its unsent part starts at
    /// `max(write_skb_seq, snd_nxt)`).
    pub write_skb_seq: u32,
    pub snd_sml: u32,
    pub mss_cache: u16,
    pub advmss: u16,
    pub pmtu: u32,
    pub tsoffset: u32,
    pub lsndtime: Instant,
    /// When the first retransmission of the current episode went out
    /// (its original send time), none outside one (`retrans_stamp`).
    pub retrans_stamp: OptInstant,
    /// The write queue (`sk_write_queue` and `tcp_rtx_queue`), allocated
    /// with the first segment queued and freed when it empties.
    pub write_queue: ColdBox<VecDeque<TxSkb>>,
    /// Segments in flight, SACKed, lost, retransmitted (`packets_out`, ...).
    pub packets_out: u32,
    pub sacked_out: u32,
    pub lost_out: u32,
    pub retrans_out: u32,
    /// The reordering degree in segments (`tp->reordering`).
    pub reordering: u32,
    /// Loss recovery and undo state, allocated on the first loss,
    /// retransmission or reordering (see [`TcpRecoveryState`]).
    pub recovery: ColdBox<TcpRecoveryState>,
    pub rack: crate::tcp_rack::TcpRack,
    /// Delivery-rate sampling and the windowed min RTT (`tcp_rate.c`).
    pub rate: crate::tcp_rate::TcpRateState,
    pub ca_state: TcpCaState,
    pub cwnd: TcpCwnd,
    pub ca_ops: Box<dyn CongestionOps>,
    // RTT (tcp_rtt_estimator), in microseconds; srtt and mdev scaled by 8 and 4.
    pub srtt_us: u32,
    pub mdev_us: u32,
    pub mdev_max_us: u32,
    pub rttvar_us: u32,
    pub rtt_seq: u32,
    /// The retransmission timeout in µs (`icsk_rto`, kept in jiffies by
    /// Linux); read and set through [`TcpSock::rto`] and
    /// [`TcpSock::set_rto`].
    rto_us: u32,
    pub min_rtt_us: u32,
    // icsk
    pub retransmits: u8,
    pub backoff: u8,
    pub probes_out: u8,
    /// Which of the timers sharing `icsk_retransmit_timer` is armed
    /// (`icsk_pending`: 0 or an `ICSK_TIME_*` of `tcp_timer.rs`). Kept in
    /// step with the host's timer wheel by the helpers of `tcp_timer.rs`,
    /// so the hot path tests it and cancels only the timer armed. The
    /// deadline (`icsk_timeout`) stays with the wheel.
    pub icsk_pending: u8,
    /// Timers TCP cleared lazily ([`TcpContext::disarm_timer`]) and the
    /// host may still hold: one bit per `ICSK_TIME_*` (`1 << what`, the
    /// delayed ACK at `1 << ICSK_TIME_DACK`). Arming one clears its bit;
    /// tearing the socket down cancels those set, as Linux's
    /// `inet_csk_clear_xmit_timers()` stops the `timer_list`s. Three
    /// bits the `ICSK_TIME_*` values leave free record which of the
    /// delayed-ACK, keepalive and pacing timers were ever armed
    /// (`TIMER_USED_*` in `tcp_timer.rs`), so the teardown cancels only
    /// those.
    ///
    /// [`TcpContext::disarm_timer`]: crate::TcpContext::disarm_timer
    pub icsk_lazy: u8,
    /// Header prediction: the header word (data offset, flags but PSH,
    /// window) an in-order segment must carry to take the fast path of
    /// `tcp_rcv_established()`, or 0 when the fast path is off
    /// (`tp->pred_flags`, see `tcp_fast_path_on()` in `tcp_input.rs`).
    pub pred_flags: u32,
    pub ack: IcskAck,
    pub syn_retries_done: u8,
    // tcp_sock: receive side
    pub rcv_nxt: u32,
    pub rcv_wup: u32,
    pub rcv_wnd: u32,
    pub copied_seq: u32,
    pub window_clamp: u32,
    pub rcv_ssthresh: u32,
    pub scaling_ratio: u8,
    /// Receiver's RTT estimate (`rcv_rtt_est`), allocated with the first
    /// data received.
    pub rcv_rtt_est: ColdBox<RcvRttEst>,
    /// Receive-buffer autotuning (`rcvq_space`): bytes read per RTT, from
    /// `rcvq_seq` at `rcvq_time`.
    pub rcvq_space: u32,
    pub rcvq_seq: u32,
    pub rcvq_time: Instant,
    pub rx_opt: RxOpt,
    pub rcv_tstamp: Instant,
    /// The receive queue (`sk_receive_queue`), allocated with the first
    /// segment queued and freed when read empty.
    pub receive_queue: ColdBox<VecDeque<RxSkb>>,
    /// Out-of-order queue (`out_of_order_queue`), allocated with the
    /// first segment past a hole.
    pub ofo_queue: ColdBox<VecDeque<RxSkb>>,
    /// SACK blocks to send (`selective_acks`), allocated with the first.
    pub selective_acks: ColdBox<heapless::Vec<TcpSackBlock, 4>>,
    pub duplicate_sack: Option<TcpSackBlock>,
    pub dsack_pending: bool,
    pub rcv_fin: bool,
    /// ECN state, `TCP_ECN_*` bits (`tp->ecn_flags`, `tcp_ecn.rs`).
    pub ecn_flags: u8,
    /// Urgent data received (`tp->urg_data`): 0 for none, else
    /// [`TCP_URG_NOTYET`] (the pointer came, the byte not yet),
    /// [`TCP_URG_VALID`] with the byte in the low 8 bits, or
    /// [`TCP_URG_READ`] (read with `MSG_OOB`).
    pub urg_data: u16,
    /// Where the urgent byte is in the sequence space (`tp->urg_seq`).
    pub urg_seq: u32,
    /// The end of the urgent data we send (`tp->snd_up`) while it is not
    /// yet acknowledged: `Some` is Linux's `tcp_urg_mode()`.
    pub snd_up: Option<u32>,
    // counters for TCP_INFO
    pub total_retrans: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub segs_in: u32,
    pub segs_out: u32,
    pub data_segs_in: u32,
    pub data_segs_out: u32,
    pub delivered: u32,
    pub last_data_recv: Instant,
    pub last_ack_recv: Instant,
    /// The chronograph of `TCP_INFO`'s busy, rwnd-limited and
    /// sndbuf-limited times, allocated when data is first queued.
    pub chrono: ColdBox<TcpChronoState>,
    /// Last out-of-window ACK or challenge ACK sent (`last_oow_ack_time`).
    pub last_oow_ack_time: OptInstant,
    /// A writer found the send buffer full (`SOCK_NOSPACE`).
    pub nospace: bool,
    /// Pacing and TCP Small Queues (`sk_pacing_*`, `tcp_wstamp_ns`,
    /// `sk_wmem_alloc`, `sk_tsq_flags`), allocated when the socket first
    /// sends data or sets `SO_MAX_PACING_RATE` (`tcp_pacing.rs`).
    pub pacing: Option<Box<crate::tcp_pacing::TcpPacing>>,
    /// Listener state (SYN and accept queues), only on a listening socket.
    pub listen: Option<Box<ListenState>>,
}

impl TcpSock {
    /// A new closed socket: `tcp_init_sock()` with the defaults of
    /// `tcp_wmem[1]`/`tcp_rmem[1]`.
    pub fn new(id: SockId, sndbuf: u32, rcvbuf: u32, ca_ops: Box<dyn CongestionOps>) -> TcpSock {
        TcpSock {
            id,
            state: TcpState::Close,
            saddr: Ipv4Addr::UNSPECIFIED,
            daddr: Ipv4Addr::UNSPECIFIED,
            sport: 0,
            dport: 0,
            bound: false,
            bind_addr_locked: false,
            bind_port_locked: false,
            txhash: 0,
            sk_err: None,
            sk_err_soft: None,
            shutdown: 0,
            dead: false,
            destroyed: false,
            sndbuf,
            rcvbuf,
            wmem_queued: 0,
            rmem_alloc: 0,
            sk_mem: crate::tcp_mem::SkMem::default(),
            opts: SockOpts {
                reuseaddr: false,
                keepalive: false,
                nodelay: false,
                cork: false,
                sndbuf_locked: false,
                rcvbuf_locked: false,
                oobinline: false,
            },
            opts_ext: ColdBox::new(),
            snd_una: 0,
            snd_nxt: 0,
            snd_wnd: 0,
            snd_wl1: 0,
            max_window: 0,
            write_seq: 0,
            pushed_seq: 0,
            write_skb_seq: 0,
            snd_sml: 0,
            mss_cache: TCP_MSS_DEFAULT,
            advmss: TCP_MSS_DEFAULT,
            pmtu: 0,
            tsoffset: 0,
            lsndtime: Instant::ZERO,
            retrans_stamp: OptInstant::NONE,
            write_queue: ColdBox::new(),
            packets_out: 0,
            sacked_out: 0,
            lost_out: 0,
            retrans_out: 0,
            reordering: TCP_REORDERING_DEFAULT,
            recovery: ColdBox::new(),
            rack: crate::tcp_rack::TcpRack::new(),
            rate: crate::tcp_rate::TcpRateState::new(),
            ca_state: TcpCaState::Open,
            cwnd: TcpCwnd::new(),
            ca_ops,
            srtt_us: 0,
            mdev_us: 0,
            mdev_max_us: 0,
            rttvar_us: 0,
            rtt_seq: 0,
            rto_us: TCP_TIMEOUT_INIT.as_micros() as u32,
            min_rtt_us: u32::MAX,
            retransmits: 0,
            backoff: 0,
            probes_out: 0,
            icsk_pending: 0,
            icsk_lazy: 0,
            pred_flags: 0,
            ack: IcskAck::default(),
            syn_retries_done: 0,
            rcv_nxt: 0,
            rcv_wup: 0,
            rcv_wnd: 0,
            copied_seq: 0,
            window_clamp: 0,
            rcv_ssthresh: 0,
            scaling_ratio: TCP_DEFAULT_SCALING_RATIO,
            rcv_rtt_est: ColdBox::new(),
            rcvq_space: 0,
            rcvq_seq: 0,
            rcvq_time: Instant::ZERO,
            rx_opt: RxOpt {
                mss_clamp: TCP_MSS_DEFAULT,
                ..RxOpt::default()
            },
            rcv_tstamp: Instant::ZERO,
            receive_queue: ColdBox::new(),
            ofo_queue: ColdBox::new(),
            selective_acks: ColdBox::new(),
            duplicate_sack: None,
            dsack_pending: false,
            rcv_fin: false,
            ecn_flags: 0,
            urg_data: 0,
            urg_seq: 0,
            snd_up: None,
            total_retrans: 0,
            bytes_acked: 0,
            bytes_received: 0,
            bytes_sent: 0,
            bytes_retrans: 0,
            segs_in: 0,
            segs_out: 0,
            data_segs_in: 0,
            data_segs_out: 0,
            delivered: 0,
            last_data_recv: Instant::ZERO,
            last_ack_recv: Instant::ZERO,
            chrono: ColdBox::new(),
            last_oow_ack_time: OptInstant::NONE,
            nospace: false,
            pacing: None,
            listen: None,
        }
    }

    /// The retransmission timeout (`icsk_rto`).
    pub fn rto(&self) -> Duration {
        Duration::from_micros(u64::from(self.rto_us))
    }

    /// Sets the retransmission timeout: whole µs, at most
    /// [`TCP_RTO_MAX`] where TCP computes it (longer values saturate at
    /// 71 minutes).
    pub fn set_rto(&mut self, rto: Duration) {
        debug_assert_eq!(rto.subsec_nanos() % 1_000, 0, "rto {rto:?} is not whole µs");
        self.rto_us = u32::try_from(rto.as_micros()).unwrap_or(u32::MAX);
    }

    /// Sets the retransmission timeout in µs, already bounded by the
    /// caller (the estimator's per-ACK update, without a `Duration`).
    pub(crate) fn set_rto_us(&mut self, rto_us: u32) {
        self.rto_us = rto_us;
    }

    /// The local address and port.
    pub fn local(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.saddr, self.sport)
    }

    /// The remote address and port.
    pub fn remote(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.daddr, self.dport)
    }

    /// Segments in flight: `tcp_packets_in_flight()` =
    /// `packets_out - (sacked_out + lost_out) + retrans_out`.
    pub fn packets_in_flight(&self) -> u32 {
        (self.packets_out + self.retrans_out).saturating_sub(self.sacked_out + self.lost_out)
    }

    /// Bytes not yet sent: `write_seq - snd_nxt`.
    pub fn unsent_bytes(&self) -> u32 {
        self.write_seq.wrapping_sub(self.snd_nxt)
    }

    /// The time stamp clock of this connection in ms, with its offset
    /// (`tcp_time_stamp_ts()` + `tp->tsoffset`).
    pub fn tcp_time_stamp(&self, now: Instant) -> u32 {
        (now.as_millis() as u32).wrapping_add(self.tsoffset)
    }

    /// Free receive space as a window: `tcp_space()` through
    /// `tcp_win_from_space()`.
    pub fn tcp_space(&self) -> u32 {
        let free = self.rcvbuf.saturating_sub(self.rmem_alloc);
        tcp_win_from_space(self.scaling_ratio, free)
    }

    /// The whole buffer as a window (`tcp_full_space()`).
    pub fn tcp_full_space(&self) -> u32 {
        tcp_win_from_space(self.scaling_ratio, self.rcvbuf)
    }

    /// Bytes in the receive queue not yet read.
    pub fn rcv_queued_bytes(&self) -> u32 {
        let end = if self.rcv_fin {
            self.rcv_nxt.wrapping_sub(1)
        } else {
            self.rcv_nxt
        };
        end.wrapping_sub(self.copied_seq)
    }

    /// The largest RTO and probe interval of this socket (`icsk_rto_max`:
    /// `TCP_RTO_MAX_MS`, else `net.ipv4.tcp_rto_max_ms` when the socket
    /// was created, by default `TCP_RTO_MAX`). Mirrors `tcp_rto_max()`.
    pub fn rto_max(&self) -> Duration {
        match self.opts_ext.rto_max_ms {
            0 => TCP_RTO_MAX,
            ms => Duration::from_millis(u64::from(ms)),
        }
    }

    /// Free space in the send buffer: `sk_stream_wspace()`.
    pub fn sk_stream_wspace(&self) -> u32 {
        self.sndbuf.saturating_sub(self.wmem_queued)
    }

    /// Whether writing is allowed (`__sk_stream_memory_free()`): room in
    /// the send buffer, and fewer unsent bytes than `notsent_lowat`
    /// (`tcp_stream_memory_free()`), doubled when `wake` is 1 (a writer is
    /// woken only once they fall below half the mark).
    pub fn sk_stream_memory_free(&self, notsent_lowat: u32, wake: u32) -> bool {
        if self.wmem_queued >= self.sndbuf {
            return false;
        }
        let notsent = u64::from(self.write_seq.wrapping_sub(self.snd_nxt));
        (notsent << wake) < u64::from(notsent_lowat)
    }

    /// The unsent-bytes mark: `TCP_NOTSENT_LOWAT`, else
    /// `net.ipv4.tcp_notsent_lowat` (by default `UINT_MAX`: no mark; also
    /// when no registry is at hand). Mirrors `tcp_notsent_lowat()`.
    pub fn tcp_notsent_lowat(&self, sysctl: Option<&netcore::Sysctl>) -> u32 {
        match (self.opts_ext.notsent_lowat, sysctl) {
            (0, Some(s)) => {
                u32::try_from(s.get_int(netcore::Sysctl::TCP_NOTSENT_LOWAT)).unwrap_or(u32::MAX)
            }
            (0, None) => u32::MAX,
            (v, _) => v,
        }
    }

    /// Whether the socket is writable for poll and for a writer waiting
    /// for room: `__sk_stream_is_writeable(sk, 1)`, free space at least
    /// half of what is queued and the unsent bytes below half the mark.
    pub fn sk_stream_is_writeable(&self, sysctl: Option<&netcore::Sysctl>) -> bool {
        self.sk_stream_wspace() >= self.wmem_queued / 2
            && self.sk_stream_memory_free(self.tcp_notsent_lowat(sysctl), 1)
    }

    /// A rough count of the heap this socket holds beyond its struct.
    pub fn heap_bytes(&self) -> usize {
        self.write_queue.capacity() * core::mem::size_of::<TxSkb>()
            + (self.receive_queue.capacity() + self.ofo_queue.capacity())
                * core::mem::size_of::<RxSkb>()
            + self.write_queue.heap_bytes()
            + self.receive_queue.heap_bytes()
            + self.recovery.heap_bytes()
            + self.rcv_rtt_est.heap_bytes()
            + self.ofo_queue.heap_bytes()
            + self.selective_acks.heap_bytes()
            + self.chrono.heap_bytes()
            + self.opts_ext.heap_bytes()
            + self.wmem_queued as usize
            + self.rmem_alloc as usize
    }
}

impl crate::TcpSocket {
    /// Installs (or with `None` removes) the socket layer's wait queue
    /// that this socket's wake-ups reach. Mirrors `sock_init_data()`
    /// setting `sk->sk_wq` (and `sock_orphan()` clearing it).
    pub fn set_sk_wq(&self, wq: Option<Weak<dyn SockWq>>) {
        *self.wq.lock() = wq;
    }

    /// The wait queue this socket's wake-ups reach, if the socket layer
    /// still holds the socket. Takes only the wait queue's own lock (a
    /// leaf: nothing is locked under it), not the socket lock.
    pub fn sk_wq(&self) -> Option<Arc<dyn SockWq>> {
        self.wq.lock().as_ref().and_then(Weak::upgrade)
    }
}

/// A socket is known by its id: the host's socket table is a set of
/// `Arc<TcpSocket>` looked up by [`SockId`] (one pointer per entry instead
/// of an id and a pointer; a million sockets sit in 2²¹ slots).
impl core::hash::Hash for crate::TcpSocket {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl PartialEq for crate::TcpSocket {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for crate::TcpSocket {}

/// Looks a socket up by id in a set of sockets; hashes and compares as
/// the socket does ([`SockId`]'s `Hash` and `Eq`).
impl core::borrow::Borrow<SockId> for Arc<crate::TcpSocket> {
    fn borrow(&self) -> &SockId {
        &self.id
    }
}

impl crate::TcpStack {
    /// The wait queue of socket `id` (see [`crate::TcpSocket::sk_wq`]);
    /// `None` when the socket is gone or has none. Call it with no TCP
    /// socket lock held.
    ///
    /// Reads it under the socket tables' lock instead of cloning the
    /// socket out of the table (an `Arc` increment and decrement per
    /// wake-up); the wait queue's lock is a leaf, so the nesting orders
    /// no other lock.
    pub fn sk_wq(&self, id: SockId) -> Option<Arc<dyn SockWq>> {
        self.hashinfo.lock().socks.get(&id)?.sk_wq()
    }

    /// [`sk_wq`](Self::sk_wq) for each socket of `batch` (whatever it
    /// carries beside the id), under one lock of the socket tables:
    /// `out[i]` becomes the wait queue of `batch[i]`'s socket (`None` for
    /// a socket gone or without one; `out` as long as `batch`). Call it
    /// with no TCP socket lock held.
    ///
    /// A batch of wake-ups (the ones a segment or a call raised) finds its
    /// sockets with one lock pair instead of one per wake-up.
    pub fn sk_wqs<K>(&self, batch: &[(SockId, K)], out: &mut [Option<Arc<dyn SockWq>>]) {
        let h = self.hashinfo.lock();
        for ((id, _), wq) in batch.iter().zip(out) {
            *wq = h.socks.get(id).and_then(|sk| sk.sk_wq());
        }
    }
}

/// The buffer that backs a window of `win` bytes: `__tcp_space_from_win()`.
pub fn tcp_space_from_win(scaling_ratio: u8, win: u32) -> u32 {
    ((u64::from(win) << TCP_RMEM_TO_WIN_SCALE) / u64::from(scaling_ratio.max(1)))
        .min(u64::from(u32::MAX)) as u32
}

/// The window a buffer of `space` bytes can offer: `__tcp_win_from_space()`.
pub fn tcp_win_from_space(scaling_ratio: u8, space: u32) -> u32 {
    ((u64::from(space) * u64::from(scaling_ratio)) >> TCP_RMEM_TO_WIN_SCALE) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Net;

    /// What an idle established socket costs inline: 648 bytes, so the
    /// `TcpSocket` with its lock and `Arc` counts is a 688-byte heap chunk.
    /// The cold parts are boxed ([`ColdBox`]); a field that grows the
    /// struct past this must go out of line too (docs/hardening.md, Scale).
    const TCP_SOCK_BUDGET: usize = 648;

    #[test]
    fn a_freed_queue_box_is_reused_empty_by_the_next_queue() {
        let mut a: ColdBox<VecDeque<RxSkb>> = ColdBox::new();
        a.reserve(4);
        let addr = core::ptr::from_ref::<VecDeque<RxSkb>>(&a).addr();
        let cap = a.capacity();
        assert!(cap >= 4);
        a.free();
        assert!(!a.is_allocated());
        assert_eq!(a.heap_bytes(), 0);
        // Another socket's queue fills: it gets the same box, empty, with
        // its buffer, and no allocation.
        let mut b: ColdBox<VecDeque<RxSkb>> = ColdBox::new();
        assert!(b.is_empty());
        assert!(!b.is_allocated());
        b.reserve(1);
        assert_eq!(core::ptr::from_ref::<VecDeque<RxSkb>>(&b).addr(), addr);
        assert_eq!(b.capacity(), cap);
        assert!(b.is_empty());
        // A queue that grew large is not kept: its memory goes back.
        b.reserve(QUEUE_CACHE_MAX_CAPACITY * 4);
        b.free();
        let mut c: ColdBox<VecDeque<RxSkb>> = ColdBox::new();
        c.reserve(1);
        assert!(c.capacity() <= QUEUE_CACHE_MAX_CAPACITY);
    }

    #[test]
    fn tcp_sock_stays_within_its_size_budget() {
        let size = core::mem::size_of::<TcpSock>();
        assert!(
            size <= TCP_SOCK_BUDGET,
            "TcpSock is {size} bytes, over its budget of {TCP_SOCK_BUDGET}"
        );
        // Each cold part costs one pointer until it is used.
        assert_eq!(core::mem::size_of::<ColdBox<TcpRecoveryState>>(), 8);
        assert_eq!(core::mem::size_of::<ColdBox<VecDeque<RxSkb>>>(), 8);
    }

    /// A socket layer's wait queue that records the keys it is woken with.
    #[derive(Default)]
    struct Keys(parking_lot::Mutex<Vec<u32>>);

    impl SockWq for Keys {
        fn wake_up(&self, key: u32) {
            self.0.lock().push(key);
        }
    }

    #[test]
    fn a_socket_holds_its_wait_queue_weakly_and_is_found_by_id() {
        let mut net = Net::new(2);
        let (client, server) = net.connect_pair(80);
        // A hook is one weak pointer in the socket: no allocation of its own.
        assert_eq!(core::mem::size_of::<Option<Weak<dyn SockWq>>>(), 16);
        assert!(client.sk_wq().is_none());
        let wq = Arc::new(Keys::default());
        let weak: Weak<dyn SockWq> = Arc::downgrade(&wq) as Weak<dyn SockWq>;
        client.set_sk_wq(Some(weak));
        client.sk_wq().expect("installed").wake_up(1);
        // The host finds it by the socket's id (what a queued wake-up
        // carries); the other socket has none.
        net.hosts[0]
            .stack
            .sk_wq(client.id())
            .expect("found by id")
            .wake_up(4);
        assert!(net.hosts[1].stack.sk_wq(server.id()).is_none());
        assert!(net.hosts[0].stack.sk_wq(SockId(u64::MAX)).is_none());
        assert_eq!(*wq.0.lock(), [1, 4]);
        // The socket does not keep the socket layer's socket alive.
        drop(wq);
        assert!(client.sk_wq().is_none());
        // Removed on release (`sock_orphan()`).
        let wq = Arc::new(Keys::default());
        client.set_sk_wq(Some(Arc::downgrade(&wq) as Weak<dyn SockWq>));
        client.set_sk_wq(None);
        assert!(client.sk_wq().is_none());
    }

    #[test]
    fn a_loss_free_exchange_allocates_no_cold_state() {
        let mut net = Net::new(2);
        let (client, server) = net.connect_pair(80);
        // Just connected: nothing cold is allocated on either end.
        for sk in [&client, &server] {
            let tp = sk.lock();
            assert_eq!(tp.heap_bytes(), 0, "{:?}", tp.state);
        }
        for round in 0..5u8 {
            net.send(0, &client, &[round; 300]).unwrap();
            net.run_for_ms(50);
            let mut buf = [0u8; 600];
            assert_eq!(net.recv(1, &server, &mut buf).unwrap(), 300);
            assert_eq!(buf[..300], [round; 300]);
            net.send(1, &server, &buf[..100]).unwrap();
            net.run_for_ms(50);
            assert_eq!(net.recv(0, &client, &mut buf).unwrap(), 100);
        }
        for (name, sk) in [("client", &client), ("server", &server)] {
            let tp = sk.lock();
            assert_eq!(tp.state, TcpState::Established, "{name}");
            assert!(!tp.recovery.is_allocated(), "{name}: {:?}", tp.recovery);
            assert!(!tp.ofo_queue.is_allocated(), "{name}: ofo queue");
            assert!(!tp.selective_acks.is_allocated(), "{name}: SACK blocks");
            // Both sent data: the chronograph timed it.
            assert!(tp.chrono.is_allocated(), "{name}: chrono");
        }
        // Both received data, so both measure the receiver's RTT.
        assert!(server.lock().rcv_rtt_est.is_allocated());
    }

    #[test]
    fn a_lost_segment_allocates_the_recovery_state_and_repairs_it() {
        let mut net = Net::new(2);
        let (client, server) = net.connect_pair(80);
        // The second data segment from the client is lost once.
        let from = net.addr(0);
        let mut data_segs = 0;
        net.set_drop_filter(move |seg| {
            if seg.src == from && !seg.is_empty() {
                data_segs += 1;
                return data_segs == 2;
            }
            false
        });
        for i in 0..8u8 {
            net.send(0, &client, &[i; 1000]).unwrap();
            net.run_for_ms(1);
        }
        net.run_for_ms(2_000);
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = net.recv(1, &server, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let want: Vec<u8> = (0..8u8).flat_map(|i| [i; 1000]).collect();
        assert_eq!(got, want);
        assert!(client.lock().recovery.is_allocated());
        assert!(!server.lock().recovery.is_allocated());
    }
}
