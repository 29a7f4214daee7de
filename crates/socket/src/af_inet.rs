//! `AF_INET` datagram sockets: UDP behind the [`ProtoOps`] seam.
//!
//! Mirrors `inet_dgram_ops` and the UDP entry of `inetsw_array[]` in
//! `net/ipv4/af_inet.c`, with `udp_prot`'s methods from `net/ipv4/udp.c`
//! (reached through the `udp` crate).

use std::net::SocketAddrV4;
use std::sync::Arc;

use netcore::Errno;
use udp::{UdpContext, UdpSock};

use crate::net::{InetProtosw, MsgFlags, ProtoOps, RecvMsg, SkOpt, SockType, Wakeup};
use crate::wait::WaitQueue;

/// A UDP socket as the socket layer sees it.
///
/// Mirrors a `struct socket` whose `ops` is `inet_dgram_ops` and whose
/// `sk` is a UDP sock.
#[derive(Debug)]
pub struct UdpOps {
    sk: Arc<UdpSock>,
    /// The socket's wait queue (`struct socket_wq`), held here so that
    /// UDP's wake-up hook can hold it too ([`ProtoOps::install_wait_queue`]).
    wq: Arc<WaitQueue>,
    /// `SO_KEEPALIVE` and `SO_LINGER` are accepted on any socket and only
    /// acted on by TCP; UDP keeps them for `getsockopt`, and
    /// `SO_OOBINLINE` too (no urgent data in UDP).
    keepalive: parking_lot::Mutex<(bool, i64)>,
    oobinline: std::sync::atomic::AtomicBool,
}

impl UdpOps {
    /// Wraps a UDP socket.
    pub fn new(sk: Arc<UdpSock>) -> UdpOps {
        UdpOps {
            sk,
            wq: Arc::new(WaitQueue::new()),
            keepalive: parking_lot::Mutex::new((false, -1)),
            oobinline: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The UDP socket.
    pub fn sock(&self) -> &Arc<UdpSock> {
        &self.sk
    }
}

fn flag(val: i64) -> bool {
    val != 0
}

impl<C: UdpContext> ProtoOps<C> for UdpOps {
    fn sock_type(&self) -> SockType {
        SockType::Dgram
    }

    fn protocol(&self) -> u8 {
        udp::IPPROTO_UDP
    }

    /// UDP keeps its hook as a closure (`udp::SkWakeup`): one small
    /// allocation per UDP socket, which wakes the socket layer's wait
    /// queue while it lives.
    fn set_wakeup(&self, wakeup: Option<Wakeup>) {
        self.sk.set_wakeup(wakeup.map(|wq| -> udp::SkWakeup {
            Arc::new(move |key| {
                if let Some(wq) = wq.upgrade() {
                    wq.wake_up(key);
                }
            })
        }));
    }

    /// UDP's hook holds the socket's wait queue (`UdpOps::wq`): a
    /// wake-up wakes it with no reference taken (`sk->sk_wq` under RCU).
    /// The queue lives as long as the UDP socket, which wakes nothing
    /// after a close (`set_wakeup(None)`).
    fn install_wait_queue(&self) -> bool {
        let wq = Arc::clone(&self.wq);
        self.sk
            .set_wakeup(Some(Arc::new(move |key| wq.wake_up(key))));
        true
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.wq)
    }

    fn bind(&self, ctx: &mut C, addr: SocketAddrV4) -> Result<(), Errno> {
        udp::inet_bind(ctx, &self.sk, addr)
    }

    fn connect(&self, ctx: &mut C, addr: Option<SocketAddrV4>) -> Result<(), Errno> {
        if let Some(addr) = addr {
            udp::ip4_datagram_connect(ctx, &self.sk, addr)
        } else {
            udp::udp_disconnect(ctx, &self.sk);
            Ok(())
        }
    }

    fn sendmsg(
        &self,
        ctx: &mut C,
        buf: &[u8],
        to: Option<SocketAddrV4>,
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        // udp_sendmsg(): "Mirror BSD error message compatibility".
        if flags.contains(MsgFlags::OOB) {
            return Err(Errno::OpNotSupp);
        }
        udp::udp_sendmsg(ctx, &self.sk, buf, to)
    }

    fn recvmsg(&self, ctx: &mut C, buf: &mut [u8], flags: MsgFlags) -> Result<RecvMsg, Errno> {
        let r = udp::udp_recvmsg(
            ctx,
            &self.sk,
            buf,
            flags.contains(MsgFlags::PEEK),
            flags.contains(MsgFlags::DONTWAIT),
        )?;
        let truncated = r.truncated();
        Ok(RecvMsg {
            len: if flags.contains(MsgFlags::TRUNC) {
                r.len
            } else {
                r.copied
            },
            copied: r.copied,
            from: (r.len > 0 || r.from.port() != 0).then_some(r.from),
            flags: if truncated {
                MsgFlags::TRUNC
            } else {
                MsgFlags::empty()
            },
        })
    }

    fn shutdown(&self, _ctx: &mut C, how: i32) -> Result<(), Errno> {
        udp::udp_shutdown(&self.sk, how)
    }

    fn release(&self, ctx: &mut C) {
        udp::udp_lib_close(ctx, &self.sk);
    }

    fn getname(&self, peer: bool) -> Result<SocketAddrV4, Errno> {
        if peer {
            self.sk.peer_addr()
        } else {
            Ok(self.sk.local_addr())
        }
    }

    fn poll(&self) -> u32 {
        self.sk.poll()
    }

    fn ioctl_inq(&self) -> usize {
        self.sk.first_packet_length()
    }

    fn sk_setopt(&self, _ctx: &mut C, opt: SkOpt, val: i64) -> Result<(), Errno> {
        match opt {
            SkOpt::RcvBuf => self.sk.set_rcvbuf(i32::try_from(val).unwrap_or(i32::MAX)),
            SkOpt::SndBuf => self.sk.set_sndbuf(i32::try_from(val).unwrap_or(i32::MAX)),
            SkOpt::ReuseAddr => self.sk.set_reuse(flag(val)),
            SkOpt::ReusePort => self.sk.set_reuseport(flag(val)),
            SkOpt::Broadcast => self.sk.set_broadcast(flag(val)),
            SkOpt::NoCheck => self.sk.set_no_check_tx(flag(val)),
            SkOpt::Mark => self.sk.set_mark(val as u32),
            SkOpt::KeepAlive => self.keepalive.lock().0 = flag(val),
            SkOpt::Linger => self.keepalive.lock().1 = val,
            SkOpt::OobInline => self
                .oobinline
                .store(flag(val), std::sync::atomic::Ordering::Relaxed),
            SkOpt::Error | SkOpt::AcceptConn => return Err(Errno::NoProtoOpt),
        }
        Ok(())
    }

    fn sk_getopt(&self, _ctx: &mut C, opt: SkOpt) -> Result<i64, Errno> {
        Ok(match opt {
            SkOpt::RcvBuf => i64::from(self.sk.rcvbuf()),
            SkOpt::SndBuf => i64::from(self.sk.sndbuf()),
            SkOpt::ReuseAddr => i64::from(self.sk.reuse()),
            SkOpt::ReusePort => i64::from(self.sk.reuseport()),
            SkOpt::Broadcast => i64::from(self.sk.broadcast()),
            SkOpt::NoCheck => i64::from(self.sk.no_check_tx()),
            SkOpt::Mark => i64::from(self.sk.mark()),
            SkOpt::KeepAlive => i64::from(self.keepalive.lock().0),
            SkOpt::Linger => self.keepalive.lock().1,
            SkOpt::Error => self.sk.sock_error().map_or(0, |e| i64::from(e.as_i32())),
            SkOpt::AcceptConn => 0,
            SkOpt::OobInline => {
                i64::from(self.oobinline.load(std::sync::atomic::Ordering::Relaxed))
            }
        })
    }

    fn ino(&self) -> u64 {
        self.sk.ino()
    }
}

/// The UDP entry of the `AF_INET` protocol switch: `SOCK_DGRAM`,
/// `IPPROTO_UDP`.
///
/// Mirrors `{ .type = SOCK_DGRAM, .protocol = IPPROTO_UDP, .prot =
/// &udp_prot, .ops = &inet_dgram_ops }` in `inetsw_array[]`.
#[derive(Debug, Default, Clone, Copy)]
pub struct UdpProtosw;

impl<C: UdpContext> InetProtosw<C> for UdpProtosw {
    fn sock_type(&self) -> SockType {
        SockType::Dgram
    }

    fn protocol(&self) -> u8 {
        udp::IPPROTO_UDP
    }

    fn create(&self, ctx: &mut C, ino: u64) -> Result<Arc<dyn ProtoOps<C>>, Errno> {
        let sk = UdpSock::new(ino, ctx.sysctl());
        Ok(Arc::new(UdpOps::new(sk)))
    }
}
