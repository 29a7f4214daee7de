//! A UDP echo exchange between two simulated hosts: the echo service (RFC
//! 862, `inetd`'s `echo dgram`) on one, a client timing round trips on the
//! other, both event-driven (each step is pushed by its socket's wake-up).
//!
//! No kernel twin: an application on the socket layer, as `netstack demo`
//! runs it.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Weak};

use netcore::{Clock, Duration, Instant};
use parking_lot::Mutex;
use socket::EpollEvents;

use crate::error::NetstackError;
use crate::host::HostShared;
use crate::network::Network;
use crate::sockets::UdpSocket;

/// How long the client waits for one reply before it counts it lost.
pub const ECHO_TIMEOUT: Duration = Duration::from_millis(10);

/// What the echo client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpEchoReport {
    /// The echo server's address.
    pub server: SocketAddrV4,
    /// Payload bytes per datagram.
    pub size: usize,
    /// Datagrams sent.
    pub sent: usize,
    /// Round-trip times of the replies that came back intact, by sequence
    /// number (1-based).
    pub rtts: Vec<(u32, Duration)>,
}

impl UdpEchoReport {
    /// Replies received.
    pub fn received(&self) -> usize {
        self.rtts.len()
    }
}

fn us(d: Duration) -> String {
    let ns = d.as_nanos();
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

impl fmt::Display for UdpEchoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (seq, rtt) in &self.rtts {
            writeln!(
                f,
                "{} bytes from {}: seq={seq} time={} us",
                self.size,
                self.server,
                us(*rtt)
            )?;
        }
        write!(
            f,
            "--- {} udp echo: {} datagrams sent, {} echoed",
            self.server,
            self.sent,
            self.received()
        )?;
        if let (Some(min), Some(max)) = (
            self.rtts.iter().map(|r| r.1).min(),
            self.rtts.iter().map(|r| r.1).max(),
        ) {
            let n = self.rtts.len() as u64;
            let avg = Duration::from_nanos(
                self.rtts.iter().map(|r| r.1.as_nanos() as u64).sum::<u64>() / n,
            );
            write!(
                f,
                ", rtt min/avg/max = {}/{}/{} us",
                us(min),
                us(avg),
                us(max)
            )?;
        }
        writeln!(f)
    }
}

fn io(e: &std::io::Error) -> NetstackError {
    NetstackError::Runtime(format!("udp echo: {e}"))
}

/// The echo service on `srv`: each time the socket becomes readable, a
/// step runs on CPU 0 that sends every queued datagram back to its sender
/// and waits again. Holds the socket weakly: dropping it stops the service.
fn echo_service(host: &Arc<HostShared>, srv: Weak<UdpSocket>) -> Result<(), NetstackError> {
    let Some(fd) = srv.upgrade().map(|s| s.as_raw_fd()) else {
        return Ok(());
    };
    let h = Arc::downgrade(host);
    host.app_on_ready(0, fd, EpollEvents::EPOLLIN.bits(), move || {
        let Some(s) = srv.upgrade() else { return };
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
        drop(s);
        if let Some(h) = h.upgrade() {
            let _ = echo_service(&h, srv);
        }
    })
}

/// The client's wait for the reply `msg`: a step pushed when its socket
/// is readable reads what came; the matching reply records the instant it
/// was read, anything else waits again.
fn await_reply(
    host: &Arc<HostShared>,
    cli: Weak<UdpSocket>,
    msg: Arc<Vec<u8>>,
    clock: Arc<dyn Clock>,
    got: Arc<Mutex<Option<Instant>>>,
) -> Result<(), NetstackError> {
    let Some(fd) = cli.upgrade().map(|s| s.as_raw_fd()) else {
        return Ok(());
    };
    let h = Arc::downgrade(host);
    host.app_on_ready(0, fd, EpollEvents::EPOLLIN.bits(), move || {
        let Some(s) = cli.upgrade() else { return };
        let mut buf = vec![0u8; msg.len().max(2048)];
        while let Ok(n) = s.recv(&mut buf) {
            if buf[..n] == msg[..] {
                *got.lock() = Some(clock.now());
                return;
            }
        }
        drop(s);
        if let Some(h) = h.upgrade() {
            let _ = await_reply(&h, cli, msg, clock, got);
        }
    })
}

/// Runs an echo server on `server` (bound to `0.0.0.0:port`) and sends
/// `count` datagrams of `size` bytes from `client` to `server_addr:port`,
/// one at a time; each reply is checked byte for byte and timed. Both
/// applications are event-driven: their steps are pushed by their
/// sockets' wake-ups ([`HostShared::app_on_ready`]), so a round trip is
/// timed to the instant the reply was read, and nothing polls.
///
/// Errors name the host or the socket call that failed; `size` must be
/// 4..=65507 (the sequence number is the first 4 bytes). A reply not back
/// within [`ECHO_TIMEOUT`] counts as lost.
pub fn udp_echo(
    net: &mut Network,
    client: &str,
    server: &str,
    server_addr: SocketAddrV4,
    count: u32,
    size: usize,
) -> Result<UdpEchoReport, NetstackError> {
    if !(4..=udp::UDP_MAX_PAYLOAD).contains(&size) {
        return Err(NetstackError::bad_arg("size", "4..=65507 bytes"));
    }
    let sh = Arc::clone(net.host(server)?.shared());
    let ch = Arc::clone(net.host(client)?.shared());
    let srv = Arc::new(
        UdpSocket::bind(
            &sh,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, server_addr.port()),
        )
        .map_err(|e| io(&e))?,
    );
    let cli = Arc::new(UdpSocket::bind(&ch, "0.0.0.0:0").map_err(|e| io(&e))?);
    cli.connect(server_addr).map_err(|e| io(&e))?;
    srv.set_nonblocking(true).map_err(|e| io(&e))?;
    cli.set_nonblocking(true).map_err(|e| io(&e))?;
    echo_service(&sh, Arc::downgrade(&srv))?;
    let mut report = UdpEchoReport {
        server: server_addr,
        size,
        sent: 0,
        rtts: Vec::new(),
    };
    let clock = Arc::clone(net.clock());
    for seq in 1..=count {
        let msg: Arc<Vec<u8>> = Arc::new(
            seq.to_be_bytes()
                .into_iter()
                .chain((4..size).map(|i| i as u8))
                .collect(),
        );
        let t0 = net.now();
        net.app(client, || cli.send(&msg))?.map_err(|e| io(&e))?;
        report.sent += 1;
        let got = Arc::new(Mutex::new(None));
        await_reply(
            &ch,
            Arc::downgrade(&cli),
            Arc::clone(&msg),
            Arc::clone(&clock),
            Arc::clone(&got),
        )?;
        let deadline = t0.saturating_add(ECHO_TIMEOUT);
        if net.run_until_done(deadline, || got.lock().is_some())?
            && let Some(at) = *got.lock()
        {
            report.rtts.push((seq, at.saturating_duration_since(t0)));
        }
    }
    Ok(report)
}

/// The demo's UDP part: 10 datagrams of 64 bytes from h1 to the echo
/// service on h2, with the Udp counters of both hosts; the text says what
/// failed if the exchange could not run.
pub(crate) fn demo_udp_echo(net: &mut Network) -> String {
    use std::fmt::Write as _;
    let mut text = String::from(
        "\nh1$ udp echo 198.18.0.2:7 (10 datagrams of 64 bytes; h2 runs the echo service)\n",
    );
    match udp_echo(
        net,
        "h1",
        "h2",
        SocketAddrV4::new(crate::demo::DEMO_H2, 7),
        10,
        64,
    ) {
        Ok(r) => text.push_str(&r.to_string()),
        Err(e) => {
            let _ = writeln!(text, "udp echo failed: {e}");
        }
    }
    for h in net.hosts() {
        let m = &h.shared().mibs;
        let _ = writeln!(
            text,
            "  {}: Udp InDatagrams {} OutDatagrams {} NoPorts {} RcvbufErrors {}",
            h.name(),
            m.get(netcore::UdpMib::InDatagrams),
            m.get(netcore::UdpMib::OutDatagrams),
            m.get(netcore::UdpMib::NoPorts),
            m.get(netcore::UdpMib::RcvbufErrors)
        );
    }
    text
}
