//! The client commands on a TAP-attached host: `get`, `ping`, `udp`.
//!
//! Mirrors three user-space tools run on a Linux machine: `curl`/`wget`
//! (an HTTP/1.1 GET over a TCP socket), `ping` (ICMP echo over a ping
//! socket, `socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`) and `nc -u` (UDP
//! datagrams out, replies printed). Each runs on a [`TapHost`]'s sockets
//! from an application thread, as a process runs on a CPU.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use socket::{EPOLL_CTL_ADD, EpollEvent, EpollEvents, TcpStream};

use crate::error::NetstackError;
use crate::host::HostShared;
use crate::http::{HttpGetReport, HttpUrl, http_get_on};
use crate::ping::PingReport;
use crate::sockets::{HostSockets, UdpSocket};

/// `GET url` through `host`'s TCP, body copied to `sink`.
///
/// Connects (blocking), sends one request with `Connection: close`, and
/// reads the response; every read waits at most `timeout` (`SO_RCVTIMEO`)
/// so a stalled transfer ends with an error naming how far it got.
pub fn http_get(
    host: &Arc<HostShared>,
    url: &HttpUrl,
    sink: &mut impl Write,
    timeout: StdDuration,
) -> Result<HttpGetReport, NetstackError> {
    let start = StdInstant::now();
    let s = connect_timeout(host, url.addr, timeout)?;
    let slice = timeout.min(StdDuration::from_millis(200));
    s.set_read_timeout(Some(slice))
        .and_then(|()| s.set_write_timeout(Some(slice)))
        .map_err(|e| NetstackError::Runtime(format!("setsockopt: {e}")))?;
    let mut s = Patient { s, idle: timeout };
    http_get_on(&mut s, url, sink, start)
        .map_err(|e| NetstackError::Runtime(format!("GET {}{}: {e}", url.addr, url.path)))
}

/// Connects to `addr`, giving up after `timeout` (`connect()` on a
/// non-blocking socket, then `epoll_wait()` for it to become writable, as
/// `curl --connect-timeout` does).
pub fn connect_timeout(
    host: &Arc<HostShared>,
    addr: SocketAddrV4,
    timeout: StdDuration,
) -> Result<TcpStream<HostSockets>, NetstackError> {
    let err = |what: &str, e: &dyn std::fmt::Display| {
        NetstackError::Runtime(format!("connect to {addr}: {what}: {e}"))
    };
    let layer = host.socket_layer();
    let s = TcpStream::connect_nonblocking(layer, addr).map_err(|e| err("connect", &e))?;
    let ep = layer
        .epoll_create1(0)
        .map_err(|e| err("epoll_create1", &e))?;
    let r = (|| {
        layer
            .epoll_ctl(
                ep,
                EPOLL_CTL_ADD,
                s.as_raw_fd(),
                Some(EpollEvent {
                    events: EpollEvents::EPOLLOUT,
                    data: 0,
                }),
            )
            .map_err(|e| err("epoll_ctl", &e))?;
        let until = StdInstant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return Err(err("timed out", &format!("no answer in {timeout:?}")));
            }
            let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
            let ready = layer
                .epoll_wait(ep, 1, ms)
                .map_err(|e| err("epoll_wait", &e))?;
            if !ready.is_empty() {
                break;
            }
        }
        if let Some(e) = s.take_error().map_err(|e| err("SO_ERROR", &e))? {
            return Err(err("refused or unreachable", &e));
        }
        s.set_nonblocking(false).map_err(|e| err("fcntl", &e))
    })();
    let _ = layer.close(ep);
    r.map(|()| s)
}

/// A stream whose reads and writes wait up to `idle` for progress,
/// retrying the short `SO_RCVTIMEO`/`SO_SNDTIMEO` waits (and the
/// `EAGAIN` a blocking call may return when data arrives as it gives up).
struct Patient<S> {
    s: S,
    idle: StdDuration,
}

fn waits(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock
            | std::io::ErrorKind::TimedOut
            | std::io::ErrorKind::Interrupted
    )
}

impl<S: std::io::Read> std::io::Read for Patient<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let until = StdInstant::now() + self.idle;
        loop {
            match self.s.read(buf) {
                Err(e) if waits(&e) && StdInstant::now() < until => {}
                other => return other,
            }
        }
    }
}

impl<S: Write> Write for Patient<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let until = StdInstant::now() + self.idle;
        loop {
            match self.s.write(buf) {
                Err(e) if waits(&e) && StdInstant::now() < until => {}
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.s.flush()
    }
}

/// Sends `count` echo requests of `size` bytes to `dst`, one every
/// `interval`, then waits up to `wait` for the last replies.
pub fn ping(
    host: &Arc<HostShared>,
    dst: Ipv4Addr,
    count: u16,
    size: usize,
    interval: StdDuration,
    wait: StdDuration,
) -> Result<PingReport, NetstackError> {
    if count == 0 {
        return Err(NetstackError::bad_arg("count", "1 to 65535"));
    }
    if size > 65_507 {
        return Err(NetstackError::bad_arg("size", "0 to 65507 bytes"));
    }
    let sock = host.ping_socket(dst, size);
    for seq in 1..=count {
        let s = Arc::clone(&sock);
        host.run_on(0, move |ctx| {
            let _ = s.send(ctx, seq);
        });
        let until = StdInstant::now() + if seq == count { wait } else { interval };
        while StdInstant::now() < until {
            if seq == count && sock.report().received() >= usize::from(count) {
                break;
            }
            std::thread::sleep(StdDuration::from_millis(1));
        }
    }
    Ok(sock.report())
}

/// Sends each of `payloads` to `dst` as one datagram and collects the
/// replies that arrive within `wait` after each.
pub fn udp_exchange(
    host: &Arc<HostShared>,
    dst: SocketAddrV4,
    payloads: &[Vec<u8>],
    wait: StdDuration,
) -> Result<Vec<Vec<u8>>, NetstackError> {
    let io =
        |what: &str, e: std::io::Error| NetstackError::Runtime(format!("udp {dst}: {what}: {e}"));
    let u = UdpSocket::bind(host, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
        .map_err(|e| io("bind", e))?;
    u.connect(dst).map_err(|e| io("connect", e))?;
    u.set_read_timeout(Some(StdDuration::from_millis(20)))
        .map_err(|e| io("setsockopt", e))?;
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 65_536];
    for p in payloads {
        u.send(p).map_err(|e| io("send", e))?;
        let until = StdInstant::now() + wait;
        let before = replies.len();
        while StdInstant::now() < until && replies.len() == before {
            match u.recv(&mut buf) {
                Ok(n) => replies.push(buf[..n].to_vec()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(io("recv", e)),
            }
        }
    }
    Ok(replies)
}
