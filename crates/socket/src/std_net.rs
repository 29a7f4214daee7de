//! `std::net`-shaped wrappers over the socket calls.
//!
//! No kernel twin: these are the Rust standard library's `UdpSocket`,
//! `TcpListener` and `TcpStream` (which call the C library's socket
//! functions), written over [`SocketLayer`] of a chosen host. Errors are
//! `std::io::Error::from_raw_os_error(errno)`, so `kind()` and the message
//! match what `std::net` gives on Linux.

use std::io;
use std::net::{Shutdown, SocketAddrV4};
use std::sync::{Arc, OnceLock};

use netcore::{Duration, Errno};

use crate::net::{AF_INET, MsgFlags, SockType};
use crate::socket::{
    FIONBIO, Fd, FdRef, SO_BROADCAST, SO_ERROR, SO_RCVTIMEO, SO_REUSEADDR, SO_SNDTIMEO, SOL_SOCKET,
    SocketHost, SocketLayer,
};

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.as_i32())
}

fn timeval(t: Option<Duration>) -> [u8; 16] {
    let t = t.unwrap_or(Duration::ZERO);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(t.as_secs() as i64).to_ne_bytes());
    b[8..].copy_from_slice(&i64::from(t.subsec_micros()).to_ne_bytes());
    b
}

/// An open fd of a [`SocketLayer`], closed on drop.
struct OwnedFd<H: SocketHost> {
    layer: Arc<SocketLayer<H>>,
    fd: Fd,
}

impl<H: SocketHost> Drop for OwnedFd<H> {
    fn drop(&mut self) {
        let _ = self.layer.close(self.fd);
    }
}

impl<H: SocketHost> OwnedFd<H> {
    /// The [`FdRef`] of this fd kept in `cell`, taken at the first call
    /// that needs it (a socket that makes no call pays no lookup for it).
    /// A failed lookup (the fd was closed behind the owner's back) is
    /// returned as the call's error and not kept.
    #[inline]
    fn fd_ref<'a>(&self, cell: &'a OnceLock<FdRef<H::Ctx>>) -> Result<&'a FdRef<H::Ctx>, Errno> {
        match cell.get() {
            Some(r) => Ok(r),
            None => self.fd_ref_first(cell),
        }
    }

    /// [`OwnedFd::fd_ref`] for an owner whose calls take `&mut self` (a
    /// `TcpStream`'s `read` and `write`): the [`FdRef`] kept in a plain
    /// `Option`, 8 bytes smaller than a `OnceLock`'s.
    #[inline]
    fn fd_ref_mut<'a>(
        &self,
        slot: &'a mut Option<FdRef<H::Ctx>>,
    ) -> Result<&'a FdRef<H::Ctx>, Errno> {
        if slot.is_none() {
            *slot = Some(self.layer.fd_ref(self.fd)?);
        }
        slot.as_ref().ok_or(Errno::BadF)
    }

    /// [`OwnedFd::fd_ref`]'s first call: the lookup.
    #[cold]
    #[inline(never)]
    fn fd_ref_first<'a>(
        &self,
        cell: &'a OnceLock<FdRef<H::Ctx>>,
    ) -> Result<&'a FdRef<H::Ctx>, Errno> {
        let r = self.layer.fd_ref(self.fd)?;
        Ok(cell.get_or_init(|| r))
    }

    fn socket(layer: &Arc<SocketLayer<H>>, ty: SockType) -> io::Result<OwnedFd<H>> {
        let fd = layer.socket(AF_INET, ty as i32, 0).map_err(io_err)?;
        Ok(OwnedFd {
            layer: Arc::clone(layer),
            fd,
        })
    }

    fn set_timeout(&self, opt: i32, t: Option<Duration>) -> io::Result<()> {
        if t.is_some_and(|d| d.is_zero()) {
            // std rejects a zero timeout.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        self.layer
            .setsockopt(self.fd, SOL_SOCKET, opt, &timeval(t))
            .map_err(io_err)
    }

    fn timeout(&self, opt: i32) -> io::Result<Option<Duration>> {
        let mut b = [0u8; 16];
        self.layer
            .getsockopt(self.fd, SOL_SOCKET, opt, &mut b)
            .map_err(io_err)?;
        let sec = i64::from_ne_bytes(b[..8].try_into().expect("8 bytes"));
        let usec = i64::from_ne_bytes(b[8..].try_into().expect("8 bytes"));
        Ok((sec != 0 || usec != 0)
            .then(|| Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64)))
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let mut v = i32::from(on);
        self.layer.ioctl(self.fd, FIONBIO, &mut v).map_err(io_err)
    }

    fn take_error(&self) -> io::Result<Option<io::Error>> {
        let e = self
            .layer
            .getsockopt_int(self.fd, SOL_SOCKET, SO_ERROR)
            .map_err(io_err)?;
        Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
    }
}

/// A UDP socket on a netstack host.
///
/// Mirrors `std::net::UdpSocket`.
pub struct UdpSocket<H: SocketHost> {
    /// The fd's socket for the per-datagram calls (`fdget()` without a
    /// reference, see [`FdRef`]), taken at the first; dropped before the
    /// fd is closed, so the close frees the socket as before.
    sock: OnceLock<FdRef<H::Ctx>>,
    fd: OwnedFd<H>,
}

impl<H: SocketHost> std::fmt::Debug for UdpSocket<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("fd", &self.fd.fd)
            .finish_non_exhaustive()
    }
}

impl<H: SocketHost> UdpSocket<H> {
    /// Creates a UDP socket bound to `addr` on `layer`'s host.
    pub fn bind(layer: &Arc<SocketLayer<H>>, addr: SocketAddrV4) -> io::Result<UdpSocket<H>> {
        let fd = OwnedFd::socket(layer, SockType::Dgram)?;
        layer.bind(fd.fd, addr).map_err(io_err)?;
        Ok(UdpSocket {
            sock: OnceLock::new(),
            fd,
        })
    }

    /// The fd.
    pub fn as_raw_fd(&self) -> Fd {
        self.fd.fd
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.fd.layer.getsockname(self.fd.fd).map_err(io_err)
    }

    /// The connected peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddrV4> {
        self.fd.layer.getpeername(self.fd.fd).map_err(io_err)
    }

    /// Connects to `addr`.
    pub fn connect(&self, addr: SocketAddrV4) -> io::Result<()> {
        self.fd.layer.connect(self.fd.fd, addr).map_err(io_err)
    }

    /// Sends to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: SocketAddrV4) -> io::Result<usize> {
        self.fd
            .fd_ref(&self.sock)
            .and_then(|r| {
                self.fd
                    .layer
                    .sendto_ref(self.fd.fd, r, buf, MsgFlags::empty(), Some(addr))
            })
            .map_err(io_err)
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd
            .fd_ref(&self.sock)
            .and_then(|r| {
                self.fd
                    .layer
                    .sendto_ref(self.fd.fd, r, buf, MsgFlags::empty(), None)
            })
            .map_err(io_err)
    }

    /// Receives one datagram and its sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        let (n, from) = self
            .fd
            .fd_ref(&self.sock)
            .and_then(|r| {
                self.fd
                    .layer
                    .recvfrom_ref(self.fd.fd, r, buf, MsgFlags::empty())
            })
            .map_err(io_err)?;
        Ok((
            n,
            from.unwrap_or(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)),
        ))
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .fd_ref(&self.sock)
            .and_then(|r| {
                self.fd
                    .layer
                    .recvfrom_ref(self.fd.fd, r, buf, MsgFlags::empty())
            })
            .map(|(n, _)| n)
            .map_err(io_err)
    }

    /// Reads the next datagram without taking it.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
        let (n, from) = self
            .fd
            .fd_ref(&self.sock)
            .and_then(|r| {
                self.fd
                    .layer
                    .recvfrom_ref(self.fd.fd, r, buf, MsgFlags::PEEK)
            })
            .map_err(io_err)?;
        Ok((
            n,
            from.unwrap_or(SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)),
        ))
    }

    /// Sets `O_NONBLOCK`.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.fd.set_nonblocking(on)
    }

    /// Sets `SO_RCVTIMEO` (`None`: forever; zero is rejected, as in std).
    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.fd.set_timeout(SO_RCVTIMEO, t)
    }

    /// Sets `SO_SNDTIMEO`.
    pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.fd.set_timeout(SO_SNDTIMEO, t)
    }

    /// `SO_RCVTIMEO`.
    pub fn read_timeout(&self) -> io::Result<Option<std::time::Duration>> {
        self.fd.timeout(SO_RCVTIMEO)
    }

    /// `SO_SNDTIMEO`.
    pub fn write_timeout(&self) -> io::Result<Option<std::time::Duration>> {
        self.fd.timeout(SO_SNDTIMEO)
    }

    /// Sets `SO_BROADCAST`.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.fd
            .layer
            .setsockopt_int(self.fd.fd, SOL_SOCKET, SO_BROADCAST, i32::from(on))
            .map_err(io_err)
    }

    /// Takes `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.take_error()
    }
}

/// A listening TCP socket on a netstack host.
///
/// Mirrors `std::net::TcpListener`: `bind` sets `SO_REUSEADDR`, binds and
/// listens with a backlog of 128, as std does on Linux. Needs the
/// `SOCK_STREAM` transport registered ([`crate::TcpProtosw`]); without it
/// `bind` fails with `ESOCKTNOSUPPORT`.
pub struct TcpListener<H: SocketHost> {
    fd: OwnedFd<H>,
}

impl<H: SocketHost> std::fmt::Debug for TcpListener<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("fd", &self.fd.fd)
            .finish()
    }
}

impl<H: SocketHost> TcpListener<H> {
    /// Binds and listens on `addr`.
    pub fn bind(layer: &Arc<SocketLayer<H>>, addr: SocketAddrV4) -> io::Result<TcpListener<H>> {
        let fd = OwnedFd::socket(layer, SockType::Stream)?;
        layer
            .setsockopt_int(fd.fd, SOL_SOCKET, SO_REUSEADDR, 1)
            .map_err(io_err)?;
        layer.bind(fd.fd, addr).map_err(io_err)?;
        layer.listen(fd.fd, 128).map_err(io_err)?;
        Ok(TcpListener { fd })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.fd.layer.getsockname(self.fd.fd).map_err(io_err)
    }

    /// The fd (for epoll).
    pub fn as_raw_fd(&self) -> Fd {
        self.fd.fd
    }

    /// Accepts a connection.
    pub fn accept(&self) -> io::Result<(TcpStream<H>, SocketAddrV4)> {
        let (fd, peer) = self.fd.layer.accept(self.fd.fd).map_err(io_err)?;
        let fd = OwnedFd {
            layer: Arc::clone(&self.fd.layer),
            fd,
        };
        Ok((TcpStream::new(fd), peer))
    }

    /// Sets `O_NONBLOCK`.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.fd.set_nonblocking(on)
    }
}

/// A TCP connection on a netstack host.
///
/// Mirrors `std::net::TcpStream`, with `Read` and `Write`.
pub struct TcpStream<H: SocketHost> {
    /// The fd's socket for `read` and `write` (`fdget()` without a
    /// reference, see [`FdRef`]), taken at the first; dropped before the
    /// fd is closed. A plain `Option` (both calls take `&mut self`): the
    /// stream is 16 bytes larger than its fd for it, where a `OnceLock` of
    /// an `FdRef` holding the fd cost 32 (64 bytes per connection in the
    /// scale figures).
    sock: Option<FdRef<H::Ctx>>,
    fd: OwnedFd<H>,
}

impl<H: SocketHost> std::fmt::Debug for TcpStream<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("fd", &self.fd.fd)
            .finish_non_exhaustive()
    }
}

impl<H: SocketHost> TcpStream<H> {
    fn new(fd: OwnedFd<H>) -> TcpStream<H> {
        TcpStream { sock: None, fd }
    }

    /// Connects to `addr` (blocking until the handshake ends).
    pub fn connect(layer: &Arc<SocketLayer<H>>, addr: SocketAddrV4) -> io::Result<TcpStream<H>> {
        let fd = OwnedFd::socket(layer, SockType::Stream)?;
        layer.connect(fd.fd, addr).map_err(io_err)?;
        Ok(TcpStream::new(fd))
    }

    /// Starts connecting to `addr` without waiting: the socket is
    /// non-blocking and its SYN is out (`connect()` returned
    /// `EINPROGRESS`); the connection is up when the socket polls
    /// writable, and [`TcpStream::take_error`] tells a failure. What an
    /// application on a runtime that cannot block (the simulation) uses.
    pub fn connect_nonblocking(
        layer: &Arc<SocketLayer<H>>,
        addr: SocketAddrV4,
    ) -> io::Result<TcpStream<H>> {
        let fd = OwnedFd::socket(layer, SockType::Stream)?;
        fd.set_nonblocking(true)?;
        match layer.connect(fd.fd, addr) {
            Ok(()) | Err(Errno::InProgress) => Ok(TcpStream::new(fd)),
            Err(e) => Err(io_err(e)),
        }
    }

    /// The fd (for epoll).
    pub fn as_raw_fd(&self) -> Fd {
        self.fd.fd
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        self.fd.layer.getsockname(self.fd.fd).map_err(io_err)
    }

    /// The peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddrV4> {
        self.fd.layer.getpeername(self.fd.fd).map_err(io_err)
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let how = match how {
            Shutdown::Read => 0,
            Shutdown::Write => 1,
            Shutdown::Both => 2,
        };
        self.fd.layer.shutdown(self.fd.fd, how).map_err(io_err)
    }

    /// Sets `O_NONBLOCK`.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.fd.set_nonblocking(on)
    }

    /// Sets `SO_RCVTIMEO`.
    pub fn set_read_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.fd.set_timeout(SO_RCVTIMEO, t)
    }

    /// Sets `SO_SNDTIMEO`.
    pub fn set_write_timeout(&self, t: Option<std::time::Duration>) -> io::Result<()> {
        self.fd.set_timeout(SO_SNDTIMEO, t)
    }

    /// Sets `TCP_NODELAY` (`SOL_TCP`, option 1).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.fd
            .layer
            .setsockopt_int(self.fd.fd, crate::socket::SOL_TCP, 1, i32::from(on))
            .map_err(io_err)
    }

    /// Takes `SO_ERROR`.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.fd.take_error()
    }
}

impl<H: SocketHost> io::Read for TcpStream<H> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .fd_ref_mut(&mut self.sock)
            .and_then(|r| {
                self.fd
                    .layer
                    .recvfrom_ref(self.fd.fd, r, buf, MsgFlags::empty())
            })
            .map(|(n, _)| n)
            .map_err(io_err)
    }
}

impl<H: SocketHost> io::Write for TcpStream<H> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.fd
            .fd_ref_mut(&mut self.sock)
            .and_then(|r| {
                self.fd
                    .layer
                    .sendto_ref(self.fd.fd, r, buf, MsgFlags::NOSIGNAL, None)
            })
            .map_err(io_err)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use crate::testutil::FakeSocketHost;

    /// An established connection holds two streams (a million of them in
    /// the scale bench): the stream is its fd (the layer and the number)
    /// and the cached [`FdRef`], 32 bytes.
    #[test]
    fn a_stream_stays_small() {
        assert_eq!(core::mem::size_of::<OwnedFd<FakeSocketHost>>(), 16);
        assert_eq!(core::mem::size_of::<FdRef<()>>(), 16);
        assert_eq!(core::mem::size_of::<TcpStream<FakeSocketHost>>(), 32);
    }
}
