//! UDP over IPv4.
//!
//! Mirrors `net/ipv4/udp.c`, with the UDP parts of `net/ipv4/af_inet.c`
//! (`inet_bind`, `inet_autobind`, `inet_shutdown`), `net/ipv4/datagram.c`
//! (`ip4_datagram_connect`), `net/core/datagram.c` (`datagram_poll`) and
//! `net/core/sock_reuseport.c`.
//!
//! Table of contents:
//!
//! - the socket: [`UdpSock`] (`struct udp_sock`) with its receive queue,
//!   buffer sizes, pending error and [`UdpSock::poll`]; the wake-up hook
//!   [`SkWakeup`] a socket layer installs;
//! - the table and lookup: [`UdpTable`], [`udp4_lib_lookup`]
//!   (`compute_score`, `SO_REUSEADDR`, `SO_REUSEPORT` by [`udp_ehashfn`]
//!   and [`reciprocal_scale`]);
//! - calls: [`inet_bind`], [`inet_autobind`], [`ip4_datagram_connect`],
//!   [`udp_disconnect`], [`udp_sendmsg`], [`udp_recvmsg`],
//!   [`udp_shutdown`], [`udp_lib_close`];
//! - from IP: [`udp_rcv`] (hands the skb back when no socket matched, so
//!   IP sends port unreachable) and [`udp_err`] (ICMP errors to sockets);
//! - listings: [`proc_net_udp`] (`/proc/net/udp`), [`ss_udp`] (`ss -uanp`);
//! - IPv4: [`UdpProtocol`] (`udp_protocol`, registered by
//!   [`udp_add_protocol`]) and [`UdpNetContext`], which makes any
//!   [`ipv4::Ipv4Context`] with a UDP table a [`UdpContext`];
//! - the seam below: [`UdpContext`], with [`Flowi4`] and [`RouteInfo`];
//!   `testutil` (feature `testutils`) has a fake IP layer joining two
//!   hosts back to back.
//!
//! The code is sans-IO: nothing here blocks. A call that would wait
//! returns `EAGAIN`; the socket layer waits on the wake-up hook.
//!
//! Counters (`/proc/net/snmp` `Udp:`): `InDatagrams` (counted when read,
//! as Linux does), `NoPorts`, `InErrors`, `OutDatagrams`, `RcvbufErrors`,
//! `SndbufErrors`, `InCsumErrors`, `IgnoredMulti`.
//!
//! # Example
//!
//! Two hosts back to back, one datagram each way:
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use udp::testutil::FakeUdpHost;
//! use udp::{UdpSock, inet_bind, udp_recvmsg, udp_sendmsg};
//!
//! let (a, b) = FakeUdpHost::pair();
//! let (mut ca, mut cb) = (a.ctx(), b.ctx());
//! let sa = UdpSock::new(1, &a.sysctl);
//! let sb = UdpSock::new(2, &b.sysctl);
//! inet_bind(&mut cb, &sb, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5353)).unwrap();
//! let to = SocketAddrV4::new(b.addr, 5353);
//! assert_eq!(udp_sendmsg(&mut ca, &sa, b"ping", Some(to)), Ok(4));
//! let mut buf = [0u8; 16];
//! let got = udp_recvmsg(&mut cb, &sb, &mut buf, false, true).unwrap();
//! assert_eq!(&buf[..got.copied], b"ping");
//! assert_eq!(got.from, sa.local_addr().into_with_ip(a.addr));
//! # trait WithIp { fn into_with_ip(self, ip: Ipv4Addr) -> SocketAddrV4; }
//! # impl WithIp for SocketAddrV4 { fn into_with_ip(self, ip: Ipv4Addr) -> SocketAddrV4 { SocketAddrV4::new(ip, self.port()) } }
//! ```
#![forbid(unsafe_code)]

mod af_inet;
mod context;
mod sock;
mod sock_reuseport;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;
mod udp;

pub use af_inet::{UdpNetContext, UdpProtocol, udp_add_protocol};
pub use context::{Flowi4, RouteInfo, UdpContext};
pub use sock::{
    POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI, POLLRDHUP, POLLRDNORM, POLLWRBAND, POLLWRNORM,
    RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK, SOCK_BINDADDR_LOCK, SOCK_BINDPORT_LOCK,
    SOCK_RCVBUF_LOCK, SOCK_SNDBUF_LOCK, SkWakeup, UdpSock, UdpState,
};
pub use sock_reuseport::{jhash_3words, reciprocal_scale, udp_ehashfn};
pub use udp::{
    IPPROTO_UDP, UDP_MAX_HEADER, UDP_MAX_PAYLOAD, UDP_WAKE_READ, UDP_WAKE_WRITE, UdpRcvCache,
    UdpRecv, UdpTable, inet_autobind, inet_bind, ip4_datagram_connect, proc_net_udp, ss_udp,
    udp_disconnect, udp_err, udp_lib_close, udp_queue_rcv_skb, udp_rcv, udp_recvmsg, udp_sendmsg,
    udp_shutdown, udp_skb_addrs, udp4_lib_lookup,
};
