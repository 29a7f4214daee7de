//! The seam between the socket layer and the transports.
//!
//! Mirrors `include/linux/net.h` (`struct proto_ops`, `enum sock_type`,
//! the `MSG_*` flags of `include/linux/socket.h`) and `struct inet_protosw`
//! (`include/net/protocol.h`).

use std::net::SocketAddrV4;
use std::sync::{Arc, Weak};

use bitflags::bitflags;
use netcore::Errno;

use crate::wait::WaitQueue;

/// `AF_UNSPEC`.
pub const AF_UNSPEC: i32 = 0;
/// `AF_INET`, the only family this stack implements.
pub const AF_INET: i32 = 2;
/// `SOCK_NONBLOCK`, or-ed into `socket()`'s type or `accept4()`'s flags.
pub const SOCK_NONBLOCK: i32 = 0o4000;
/// `SOCK_CLOEXEC` (accepted; there is no exec).
pub const SOCK_CLOEXEC: i32 = 0o2_000_000;
/// `SOCK_MAX`: types at or above it are `EINVAL`.
const SOCK_MAX: i32 = 11;

/// A socket type.
///
/// Mirrors `enum sock_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SockType {
    /// `SOCK_STREAM` (1): TCP.
    #[doc(alias = "SOCK_STREAM")]
    Stream = 1,
    /// `SOCK_DGRAM` (2): UDP.
    #[doc(alias = "SOCK_DGRAM")]
    Dgram = 2,
    /// `SOCK_RAW` (3).
    #[doc(alias = "SOCK_RAW")]
    Raw = 3,
    /// `SOCK_RDM` (4).
    #[doc(alias = "SOCK_RDM")]
    Rdm = 4,
    /// `SOCK_SEQPACKET` (5).
    #[doc(alias = "SOCK_SEQPACKET")]
    SeqPacket = 5,
    /// `SOCK_DCCP` (6).
    #[doc(alias = "SOCK_DCCP")]
    Dccp = 6,
    /// `SOCK_PACKET` (10).
    #[doc(alias = "SOCK_PACKET")]
    Packet = 10,
}

impl SockType {
    /// The type for a `socket()` type argument without its flag bits;
    /// `EINVAL` for numbers Linux rejects (`type < 0 || type >= SOCK_MAX`),
    /// `ESOCKTNOSUPPORT` for the gaps.
    pub fn from_raw(ty: i32) -> Result<SockType, Errno> {
        if !(0..SOCK_MAX).contains(&ty) {
            return Err(Errno::Inval);
        }
        Ok(match ty {
            1 => SockType::Stream,
            2 => SockType::Dgram,
            3 => SockType::Raw,
            4 => SockType::Rdm,
            5 => SockType::SeqPacket,
            6 => SockType::Dccp,
            10 => SockType::Packet,
            _ => return Err(Errno::SockTNoSupport),
        })
    }
}

bitflags! {
    /// Flags of `send`/`recv` calls.
    ///
    /// Mirrors the `MSG_*` values of `include/linux/socket.h`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct MsgFlags: u32 {
        /// `MSG_OOB`.
        const OOB = 0x1;
        /// `MSG_PEEK`: read without dequeuing.
        const PEEK = 0x2;
        /// `MSG_DONTROUTE`.
        const DONTROUTE = 0x4;
        /// `MSG_TRUNC`: return the real datagram length; in `msg_flags`,
        /// the datagram was cut.
        const TRUNC = 0x20;
        /// `MSG_DONTWAIT`: this call does not block.
        const DONTWAIT = 0x40;
        /// `MSG_EOR`.
        const EOR = 0x80;
        /// `MSG_WAITALL`.
        const WAITALL = 0x100;
        /// `MSG_NOSIGNAL` (there are no signals; accepted).
        const NOSIGNAL = 0x4000;
        /// `MSG_MORE`.
        const MORE = 0x8000;
    }
}

/// What a receive returns.
///
/// Mirrors the return value of `recvmsg()` with `msg_name` and
/// `msg_flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvMsg {
    /// The call's return value: bytes copied, or the full datagram length
    /// with `MSG_TRUNC`.
    pub len: usize,
    /// Bytes copied into the buffer.
    pub copied: usize,
    /// The sender (`msg_name`), when the protocol has one.
    pub from: Option<SocketAddrV4>,
    /// `msg_flags`: [`MsgFlags::TRUNC`] when the datagram was cut.
    pub flags: MsgFlags,
}

/// The `struct sock` options the socket layer sets and reads through a
/// transport (`sk_setsockopt()` fields the transport uses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkOpt {
    /// `sk_rcvbuf` in bytes, as stored (already doubled and clamped).
    RcvBuf,
    /// `sk_sndbuf` in bytes, as stored.
    SndBuf,
    /// `sk_reuse` (`SO_REUSEADDR`), 0 or 1.
    ReuseAddr,
    /// `sk_reuseport` (`SO_REUSEPORT`), 0 or 1.
    ReusePort,
    /// `SOCK_KEEPOPEN` (`SO_KEEPALIVE`), 0 or 1.
    KeepAlive,
    /// `SO_LINGER`: -1 off, else the linger time in seconds.
    Linger,
    /// `SOCK_BROADCAST` (`SO_BROADCAST`), 0 or 1.
    Broadcast,
    /// `sk_no_check_tx` (`SO_NO_CHECK`), 0 or 1.
    NoCheck,
    /// `sk_mark` (`SO_MARK`).
    Mark,
    /// `sk_err`: reading it clears it (`SO_ERROR`); the errno or 0.
    Error,
    /// Whether the socket listens (`SO_ACCEPTCONN`), 0 or 1.
    AcceptConn,
    /// `SOCK_URGINLINE` (`SO_OOBINLINE`), 0 or 1: urgent data stays in
    /// the stream.
    OobInline,
}

/// The wake-up hook the socket layer gives a transport: a weak reference
/// to the socket's wait queue, woken with a poll key (`EPOLLIN`,
/// `EPOLLOUT`, ... bits) whenever readiness may have changed, never with
/// the transport's socket lock held.
///
/// Mirrors `sk->sk_wq` reached by `sk_data_ready()`, `sk_write_space()`,
/// `sk_state_change()` and `sk_error_report()`: it points into the
/// socket layer's socket (its embedded wait queue), so a transport socket
/// holds its hook itself at the cost of one pointer, without a closure
/// or a table of its own.
pub type Wakeup = Weak<dyn tcp::SockWq>;

/// What the socket layer calls on a transport socket.
///
/// Mirrors `struct proto_ops` (`inet_dgram_ops`, `inet_stream_ops`)
/// together with the `struct proto` methods they reach. Object-safe and
/// generic over the host context `C`; one value per socket, shared as
/// `Arc<dyn ProtoOps<C>>`.
///
/// Every method is non-blocking: a call that would wait returns `EAGAIN`
/// (or `EINPROGRESS` for a stream connect), and the socket layer waits on
/// the socket's wait queue, woken through the [`Wakeup`] hook, and retries.
/// Methods with a default return the errno Linux's `sock_no_*` stubs
/// return.
pub trait ProtoOps<C: ?Sized>: Send + Sync {
    /// `SOCK_STREAM` or `SOCK_DGRAM`.
    fn sock_type(&self) -> SockType;

    /// The IP protocol number (`IPPROTO_TCP` 6, `IPPROTO_UDP` 17).
    fn protocol(&self) -> u8;

    /// Installs (or, with `None`, removes) the wake-up hook.
    fn set_wakeup(&self, wakeup: Option<Wakeup>);

    /// Makes the wait queue the transport holds itself (see
    /// [`ProtoOps::wait_queue`]) its wake-up target and returns `true`;
    /// `false` (the default) for a transport that takes the [`Wakeup`]
    /// hook instead (the socket layer then calls `set_wakeup` with a hook
    /// to the queue it embeds).
    ///
    /// Mirrors `sk->sk_wq`, which Linux reads under RCU: a transport
    /// holding its queue wakes it with no reference taken per wake-up
    /// (upgrading the [`Wakeup`] is a locked RMW, dropping it another).
    fn install_wait_queue(&self) -> bool {
        false
    }

    /// The socket's wait queue when the transport holds it (`None`, the
    /// default: the one the socket layer embeds).
    fn wait_queue(&self) -> Option<&WaitQueue> {
        None
    }

    /// Binds to a local address. Mirrors `proto_ops.bind` (`inet_bind`).
    fn bind(&self, ctx: &mut C, addr: SocketAddrV4) -> Result<(), Errno>;

    /// Connects to `addr`, or with `None` (`AF_UNSPEC`) dissolves the
    /// association. A stream connect that has sent its SYN returns
    /// `EINPROGRESS`; the socket layer then waits for `EPOLLOUT` and reads
    /// [`SkOpt::Error`]. Mirrors `proto_ops.connect`.
    fn connect(&self, ctx: &mut C, addr: Option<SocketAddrV4>) -> Result<(), Errno>;

    /// Starts listening. Mirrors `proto_ops.listen`; `sock_no_listen`
    /// (`EOPNOTSUPP`) by default.
    fn listen(&self, ctx: &mut C, backlog: i32) -> Result<(), Errno> {
        let _ = (ctx, backlog);
        Err(Errno::OpNotSupp)
    }

    /// Takes one established connection (`EAGAIN` when none).
    /// Mirrors `proto_ops.accept`; `sock_no_accept` (`EOPNOTSUPP`) by
    /// default.
    fn accept(&self, ctx: &mut C) -> Result<Arc<dyn ProtoOps<C>>, Errno> {
        let _ = ctx;
        Err(Errno::OpNotSupp)
    }

    /// Sends `buf` (to `to` for an unconnected datagram socket). Returns
    /// the bytes taken. Mirrors `proto_ops.sendmsg`.
    fn sendmsg(
        &self,
        ctx: &mut C,
        buf: &[u8],
        to: Option<SocketAddrV4>,
        flags: MsgFlags,
    ) -> Result<usize, Errno>;

    /// Receives into `buf`. With [`MsgFlags::DONTWAIT`] the caller will not
    /// wait, so an end-of-stream condition that only a blocking reader sees
    /// is not reported. Mirrors `proto_ops.recvmsg`.
    fn recvmsg(&self, ctx: &mut C, buf: &mut [u8], flags: MsgFlags) -> Result<RecvMsg, Errno>;

    /// Shuts down reading (0), writing (1) or both (2). Mirrors
    /// `proto_ops.shutdown` (`inet_shutdown`).
    fn shutdown(&self, ctx: &mut C, how: i32) -> Result<(), Errno>;

    /// Releases the socket (last `close()`). Mirrors `proto_ops.release`.
    fn release(&self, ctx: &mut C);

    /// The local (`peer == false`) or peer address. Mirrors
    /// `proto_ops.getname` (`inet_getname`): `ENOTCONN` for an absent peer.
    fn getname(&self, peer: bool) -> Result<SocketAddrV4, Errno>;

    /// The readiness mask, `EPOLL*` bits. Mirrors `proto_ops.poll`.
    fn poll(&self) -> u32;

    /// Bytes `ioctl(FIONREAD)` reports. Mirrors `SIOCINQ` in the
    /// protocol's `ioctl`.
    fn ioctl_inq(&self) -> usize;

    /// Whether the next byte to read is urgent data (`SIOCATMARK`); the
    /// protocols without urgent data: `ENOTTY` (no such ioctl for them).
    fn ioctl_atmark(&self) -> Result<bool, Errno> {
        Err(Errno::NoTty)
    }

    /// Sets a `struct sock` field (see [`SkOpt`]); `ENOPROTOOPT` when the
    /// transport has no such field. Runs on a CPU (`ctx`): TCP arms the
    /// keepalive timer for `SO_KEEPALIVE`.
    fn sk_setopt(&self, ctx: &mut C, opt: SkOpt, val: i64) -> Result<(), Errno>;

    /// Reads a `struct sock` field (see [`SkOpt`]).
    fn sk_getopt(&self, ctx: &mut C, opt: SkOpt) -> Result<i64, Errno>;

    /// A protocol-level option (`SOL_IP`, `SOL_TCP`, `SOL_UDP`). Mirrors
    /// `proto.setsockopt`; `ENOPROTOOPT` by default.
    fn setsockopt(
        &self,
        ctx: &mut C,
        level: i32,
        optname: i32,
        optval: &[u8],
    ) -> Result<(), Errno> {
        let _ = (ctx, level, optname, optval);
        Err(Errno::NoProtoOpt)
    }

    /// Reads a protocol-level option into `optval`, returning its length.
    /// Mirrors `proto.getsockopt`; `ENOPROTOOPT` by default.
    fn getsockopt(
        &self,
        ctx: &mut C,
        level: i32,
        optname: i32,
        optval: &mut [u8],
    ) -> Result<usize, Errno> {
        let _ = (ctx, level, optname, optval);
        Err(Errno::NoProtoOpt)
    }

    /// The inode number listings print for this socket.
    fn ino(&self) -> u64 {
        0
    }
}

/// A transport registered for one socket type and protocol.
///
/// Mirrors `struct inet_protosw` (`type`, `protocol`, the `prot`/`ops`
/// pair) registered with `inet_register_protosw()`; `create` stands for
/// `sk_alloc()` + `sk->sk_prot->init()`.
pub trait InetProtosw<C: ?Sized>: Send + Sync {
    /// The socket type it serves.
    fn sock_type(&self) -> SockType;

    /// Its protocol number (the one `socket(AF_INET, type, 0)` picks).
    fn protocol(&self) -> u8;

    /// Creates a socket; `ino` is the inode number to report.
    fn create(&self, ctx: &mut C, ino: u64) -> Result<Arc<dyn ProtoOps<C>>, Errno>;
}
