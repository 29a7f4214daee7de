//! The BSD socket API, epoll, and `std::net`-like wrappers.
//!
//! Mirrors `net/socket.c` (the socket system calls), `net/ipv4/af_inet.c`
//! (`inet_create`, the protocol switch, `inet_dgram_ops`),
//! `net/core/sock.c` (`SOL_SOCKET` options), `fs/file.c` and
//! `fs/file_table.c` (the fd table, `RLIMIT_NOFILE`, `fs.file-max`) and
//! `fs/eventpoll.c` (epoll).
//!
//! Table of contents:
//!
//! - the seam to transports: [`ProtoOps`] (`struct proto_ops`), created
//!   through an [`InetProtosw`] registered with
//!   [`SocketLayer::inet_register_protosw`]; UDP's are [`UdpOps`] and
//!   [`UdpProtosw`], TCP's [`TcpOps`] and [`TcpProtosw`] with the
//!   queue of wake-ups [`TcpWakeups`] (`tcp_ops.rs`; each socket keeps
//!   its own hook, a weak [`Wakeup`] to its wait queue);
//! - the calls: [`SocketLayer`] (one host's fd table and system calls:
//!   `socket`, `bind`, `connect`, `listen`, `accept4`, `sendto`,
//!   `recvmsg`, `shutdown`, `close`, `setsockopt`, `fcntl`, `ioctl`,
//!   `epoll_*`), over a [`SocketHost`];
//! - waiting: [`WaitQueue`] (blocked callers and poll callbacks);
//! - listings: [`ss_render`] lays out [`SsRow`]s as `ss` prints them
//!   (`ss.rs`, iproute2's `misc/ss.c`), [`SocketLayer::socket_files`]
//!   gives the fds for `ss -p`;
//! - epoll: [`Eventpoll`], [`EpollEvents`], [`EpollEvent`];
//! - wrappers: [`UdpSocket`], [`TcpListener`], [`TcpStream`] with
//!   `std::io::Error::from_raw_os_error` errors;
//! - `testutil` (feature `testutils`): [`testutil::FakeSocketHost`].
//!
//! # Blocking
//!
//! Transports never block: they return `EAGAIN`. A blocking call then
//! sleeps on the socket's [`WaitQueue`] (a `parking_lot` condvar) until
//! the transport's wake-up or the `SO_RCVTIMEO`/`SO_SNDTIMEO` deadline,
//! measured on the host's clock, and retries. A host whose runtime cannot
//! sleep (the single-threaded simulation, [`SocketHost::can_sleep`]) gets
//! `EAGAIN` instead, and resumes the application when epoll or the wake-up
//! says the socket is ready.
//!
//! # Example
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use socket::{UdpSocket, testutil::FakeSocketHost};
//!
//! let (a, b) = FakeSocketHost::pair();
//! let rx = UdpSocket::bind(&b, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5353)).unwrap();
//! let tx = UdpSocket::bind(&a, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
//! tx.send_to(b"hi", SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 5353)).unwrap();
//! let mut buf = [0u8; 8];
//! let (n, from) = rx.recv_from(&mut buf).unwrap();
//! assert_eq!((&buf[..n], *from.ip()), (&b"hi"[..], Ipv4Addr::new(198, 18, 0, 1)));
//! ```
#![forbid(unsafe_code)]

mod af_inet;
mod eventpoll;
mod file;
mod net;
mod socket;
mod ss;
mod std_net;
mod tcp_ops;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;
mod wait;

pub use af_inet::{UdpOps, UdpProtosw};
pub use eventpoll::{
    EPOLL_CLOEXEC, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD, EpollEvent, EpollEvents, Eventpoll,
    Pollable,
};
pub use net::{
    AF_INET, AF_UNSPEC, InetProtosw, MsgFlags, ProtoOps, RecvMsg, SOCK_CLOEXEC, SOCK_NONBLOCK,
    SkOpt, SockType, Wakeup,
};
pub use socket::{
    F_GETFL, F_SETFL, FIONBIO, FIONREAD, Fd, FdRef, INR_OPEN_CUR, NR_OPEN_DEFAULT, O_NONBLOCK,
    O_RDWR, SIOCATMARK, SO_ACCEPTCONN, SO_BROADCAST, SO_DOMAIN, SO_ERROR, SO_KEEPALIVE, SO_LINGER,
    SO_MARK, SO_NO_CHECK, SO_OOBINLINE, SO_PROTOCOL, SO_RCVBUF, SO_RCVTIMEO, SO_REUSEADDR,
    SO_REUSEPORT, SO_SNDBUF, SO_SNDTIMEO, SO_TYPE, SOCK_MIN_RCVBUF, SOCK_MIN_SNDBUF,
    SOCKADDR_IN_LEN, SOL_IP, SOL_SOCKET, SOL_TCP, SOL_UDP, Socket, SocketFile, SocketHost,
    SocketLayer, sockaddr_in_bytes, sockaddr_in_parse,
};
pub use ss::{SsOptions, SsRow, ss_process, ss_render};
pub use std_net::{TcpListener, TcpStream, UdpSocket};
pub use tcp_ops::{
    IPPROTO_TCP, TCP_CORK, TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_LINGER2, TCP_MAXSEG,
    TCP_NODELAY, TCP_NOTSENT_LOWAT, TCP_RTO_MAX_MS, TCP_SYNCNT, TCP_THIN_LINEAR_TIMEOUTS,
    TCP_USER_TIMEOUT, TCP_WINDOW_CLAMP, TcpOps, TcpProtosw, TcpWakeups, sk_event_key,
};
pub use wait::WaitQueue;
