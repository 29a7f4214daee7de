//! A host attached to a Linux TAP device, and the services `netstack
//! serve` runs on it.
//!
//! Mirrors two pieces of a Linux machine: a NIC whose cable is the TAP
//! (the kernel's stack on the other end, as on a virtual machine's
//! `virtio-net` backed by `tun`), and `inetd`'s built-in services
//! (`echo` RFC 862, `discard` RFC 863, `chargen` RFC 864, over TCP and
//! UDP) plus a small HTTP/1.1 responder (`http.rs`).
//!
//! ```text
//!  kernel stack ─ tapN ═ /dev/net/tun ═ vhost worker ─ TapNetdev (eth0) ─ softnet ─ IPv4 ─ TCP/UDP ─ sockets ─ Inetd threads
//! ```
//!
//! With [`TapHostConfig::igb`] the TAP is instead the PHY of an igb NIC:
//!
//! ```text
//!  kernel stack ─ tapN ═ /dev/net/tun ═ TapPhy ─ igb model ─ NAPI ─ softnet ─ …
//! ```
//!
//! # Deviations from Linux
//!
//! - One thread waits on an epoll set of every listening socket and UDP
//!   socket, and each TCP connection gets its own thread, as `inetd`'s
//!   `wait`/`nowait` services fork; the threads poll a stop flag every
//!   [`INETD_POLL`] instead of being killed by a signal.
//! - UDP chargen answers each datagram with one 74-byte line (RFC 864
//!   allows 0 to 512 bytes of any content).

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use nic_hw::{TUN_F_CSUM, TUN_F_TSO4, TapDevice, TapOptions};
use parking_lot::Mutex;
use socket::{EPOLL_CTL_ADD, EpollEvent, EpollEvents, TcpListener, TcpStream};

use crate::error::NetstackError;
use crate::host::FIRST_NIC_IFINDEX;
use crate::host::{Host, HostShared, NicConfig};
use crate::http::{
    BadRequest, HTTP_MAX_HEAD, HTTP_PATTERN_PERIOD, HttpRoute, head_end, parse_request,
    pattern_period, response_head, route,
};
use crate::network::Network;
use crate::sockets::{HostSockets, UdpSocket};
use crate::tap::{
    TapCapture, TapNetdev, TapOffloadHandle, TapOffloadStats, TapPhy, TapWorker, TapWorkerHandle,
};
use crate::threads::ThreadRuntime;
use softnet::NetDev;

/// How often service threads look at the stop flag while idle.
pub const INETD_POLL: StdDuration = StdDuration::from_millis(100);

/// The name of the host `netstack serve` and the client commands build.
pub const TAP_HOST_NAME: &str = "netstack";

/// How to attach a host to a TAP device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapHostConfig {
    /// The TAP interface (created if absent).
    pub tap: String,
    /// The host's address, `A.B.C.D/LEN`.
    pub addr: String,
    /// The default gateway, if any.
    pub gateway: Option<Ipv4Addr>,
    /// CPUs of the host (threads).
    pub cpus: usize,
    /// Where to write a pcap of the frames crossing the TAP (the cable
    /// between our NIC and the kernel).
    pub pcap: Option<PathBuf>,
    /// Whether to open the TAP with `IFF_VNET_HDR` and ask for checksum
    /// and TSO offloads (`TUNSETOFFLOAD`).
    pub offload: bool,
    /// Seed of the host's random choices (ISNs, ports).
    pub seed: u64,
    /// Cable the TAP to a simulated igb NIC (its PHY is the TAP: frames
    /// cross the NIC model's rings, TSO engine and FCS) instead of the
    /// virtio-net-like TAP device, whose GSO skbs cross whole.
    pub igb: bool,
}

impl TapHostConfig {
    /// A host on `tap` with address `addr` (`A.B.C.D/LEN`), two CPUs, no
    /// gateway, no capture, offloads on.
    pub fn new(tap: &str, addr: &str) -> TapHostConfig {
        TapHostConfig {
            tap: tap.to_owned(),
            addr: addr.to_owned(),
            gateway: None,
            cpus: 2,
            pcap: None,
            offload: true,
            seed: 1,
            igb: false,
        }
    }
}

/// A host on the thread runtime whose only NIC is cabled to a TAP device.
#[derive(Debug)]
pub struct TapHost {
    rt: Option<ThreadRuntime>,
    /// The TAP device's worker (none on the igb NIC).
    worker: Option<TapWorkerHandle>,
    host: Arc<HostShared>,
    capture: Option<TapCapture>,
    offloads: TapOffloadHandle,
    tap: String,
    addr: Ipv4Addr,
    started: StdInstant,
}

impl TapHost {
    /// Opens (creating if absent) the TAP device, brings its kernel side
    /// up, builds a host with one NIC on it and starts the thread runtime.
    ///
    /// Errors name the argument that is wrong (`cpus`, `addr`) or say what
    /// the kernel refused (root or `CAP_NET_ADMIN` is needed).
    pub fn attach(cfg: &TapHostConfig) -> Result<TapHost, NetstackError> {
        if !(1..=64).contains(&cfg.cpus) {
            return Err(NetstackError::bad_arg("cpus", "1 to 64"));
        }
        let (addr, _) = crate::config::parse_cidr(&cfg.addr).map_err(|_| {
            NetstackError::bad_arg("addr", "an IPv4 address with prefix length, A.B.C.D/LEN")
        })?;
        let opts = TapOptions::new().nonblocking(true).vnet_hdr(cfg.offload);
        let tap = TapDevice::open_with(&cfg.tap, opts)
            .map_err(|e| NetstackError::Io(format!("TAP {}: {e}", cfg.tap)))?;
        if cfg.offload {
            tap.set_offload(TUN_F_CSUM | TUN_F_TSO4)
                .map_err(|e| NetstackError::Io(format!("TAP {}: {e}", cfg.tap)))?;
        }
        tap.set_link_up()
            .map_err(|e| NetstackError::Io(format!("TAP {}: {e}", cfg.tap)))?;
        let name = tap.name().to_owned();
        let mut phy = TapPhy::new(tap);
        let offloads = phy.offload_handle();
        let capture = match &cfg.pcap {
            Some(p) => {
                let f = std::fs::File::create(p)
                    .map_err(|e| NetstackError::Io(format!("{}: {e}", p.display())))?;
                let w = softnet::PcapWriter::new(std::io::BufWriter::new(f))
                    .map_err(|e| NetstackError::Io(format!("{}: {e}", p.display())))?;
                let c: TapCapture = Arc::new(Mutex::new(w));
                phy = phy.with_capture(Arc::clone(&c));
                Some(c)
            }
            None => None,
        };
        let mut net = Network::realtime(cfg.seed);
        let mut b = Host::builder()
            .name(TAP_HOST_NAME)
            .cpus(cfg.cpus)
            .seed(cfg.seed);
        let mut worker = None;
        if cfg.igb {
            b = b.nic(NicConfig::new().phy(Box::new(phy))).addr(&cfg.addr);
            if let Some(gw) = cfg.gateway {
                b = b.route(&format!("default via {gw}"));
            }
            net.add_host(b)?;
        } else {
            let hi = net.add_host(b)?;
            worker = Some(attach_tap_netdev(&mut net.hosts[hi], phy, cfg)?);
        }
        let clock = Arc::clone(net.clock());
        let rt = ThreadRuntime::start(net)?;
        let host = rt.host(TAP_HOST_NAME)?;
        let worker = match worker {
            Some((w, dev)) => Some(
                w.spawn(Arc::clone(&host), dev, clock)
                    .map_err(|e| NetstackError::Runtime(format!("TAP worker: {e}")))?,
            ),
            None => None,
        };
        Ok(TapHost {
            rt: Some(rt),
            worker,
            host,
            capture,
            offloads,
            tap: name,
            addr,
            started: StdInstant::now(),
        })
    }

    /// The host (its sockets, counters, devices).
    pub fn host(&self) -> &Arc<HostShared> {
        &self.host
    }

    /// The TAP interface's name on the kernel side.
    pub fn tap_name(&self) -> &str {
        &self.tap
    }

    /// The host's address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Writes what the capture buffered to its file.
    pub fn flush_capture(&self) -> Result<(), NetstackError> {
        match &self.capture {
            Some(c) => c
                .lock()
                .flush()
                .map_err(|e| NetstackError::Io(format!("capture: {e}"))),
            None => Ok(()),
        }
    }

    /// What the TAP's virtio-net offloads did so far: reads and writes,
    /// super-frames cut and merged.
    pub fn offload_stats(&self) -> TapOffloadStats {
        self.offloads.snapshot()
    }

    /// Time since the host started.
    pub fn uptime(&self) -> StdDuration {
        self.started.elapsed()
    }

    /// Stops the runtime, flushes the capture and returns the network
    /// (for reports); the TAP device closes when the network is dropped.
    pub fn stop(mut self) -> Result<Network, NetstackError> {
        let rt = self
            .rt
            .take()
            .ok_or_else(|| NetstackError::Runtime("already stopped".to_owned()))?;
        if let Some(mut w) = self.worker.take() {
            w.stop();
        }
        let net = rt.stop()?;
        self.flush_capture()?;
        Ok(net)
    }
}

/// Registers a [`TapNetdev`] on `phy` as `eth0` of `host` (ifindex
/// [`FIRST_NIC_IFINDEX`], the MAC a first NIC would get), opens it and
/// gives it the address and default route of `cfg`, as `ip link set
/// eth0 up`, `ip addr add` and `ip route add default via` would.
fn attach_tap_netdev(
    host: &mut Host,
    phy: TapPhy,
    cfg: &TapHostConfig,
) -> Result<(TapWorker, Arc<NetDev>), NetstackError> {
    let sh = Arc::clone(host.shared());
    let mac = crate::host::default_mac(TAP_HOST_NAME, 0);
    let (dev, worker) = TapNetdev::new("eth0", FIRST_NIC_IFINDEX, mac, phy)
        .map_err(|e| NetstackError::Io(format!("TAP {}: {e}", cfg.tap)))?;
    let netdev = sh
        .softnet
        .dev_base()
        .register_netdevice(Box::new(dev), 1)
        .map_err(|e| NetstackError::Config(format!("register_netdevice: {e}")))?;
    softnet::dev_open(&netdev).map_err(|e| NetstackError::Config(format!("dev_open: {e}")))?;
    let ifindex = netdev.ifindex();
    sh.ipv4
        .inetdev_init(&netdev)
        .map_err(|e| NetstackError::Config(format!("inetdev_init eth0: {e}")))?;
    sh.ipv4
        .with_netns_mut(|n| n.devices.set_up(ifindex, true))
        .map_err(NetstackError::layer)?;
    host.ip_addr_add("eth0", &cfg.addr)?;
    host.with_cpu(0, |ctx| {
        ipv4::inetdev_event(ctx, ifindex, ipv4::NetdevEvent::Up)
    })?
    .map_err(NetstackError::layer)?;
    if let Some(gw) = cfg.gateway {
        sh.ipv4
            .with_netns_mut(|n| {
                n.inet_rtm_newroute(ipv4::FibConfig::new(Ipv4Addr::UNSPECIFIED, 0).via(gw))
            })
            .map_err(|e| NetstackError::Config(format!("ip route add default via {gw}: {e}")))?;
    }
    Ok((worker, netdev))
}

/// The counters of one service.
#[derive(Debug, Default)]
struct ServiceCounters {
    connections: AtomicU64,
    datagrams: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl ServiceCounters {
    fn snapshot(&self) -> ServiceStats {
        ServiceStats {
            connections: self.connections.load(Ordering::Relaxed),
            datagrams: self.datagrams.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// What one service did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// UDP datagrams received.
    pub datagrams: u64,
    /// Bytes received (TCP payload and UDP datagrams).
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
}

#[derive(Debug, Default)]
struct InetdCounters {
    echo: ServiceCounters,
    discard: ServiceCounters,
    chargen: ServiceCounters,
    http: ServiceCounters,
    http_requests: AtomicU64,
    http_2xx: AtomicU64,
    http_400: AtomicU64,
    http_404: AtomicU64,
    http_405: AtomicU64,
}

/// What the services did, as `netstack serve` prints it on exit and the
/// status page shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InetdSummary {
    /// Port 7.
    pub echo: ServiceStats,
    /// Port 9.
    pub discard: ServiceStats,
    /// Port 19.
    pub chargen: ServiceStats,
    /// Port 80 (connections and bytes).
    pub http: ServiceStats,
    /// HTTP requests answered.
    pub http_requests: u64,
    /// Of those, 200s.
    pub http_2xx: u64,
    /// 400s (malformed requests).
    pub http_400: u64,
    /// 404s.
    pub http_404: u64,
    /// 405s.
    pub http_405: u64,
}

impl std::fmt::Display for InetdSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<8} {:>11} {:>10} {:>14} {:>14}",
            "service", "connections", "datagrams", "bytes in", "bytes out"
        )?;
        for (name, s) in [
            ("echo", self.echo),
            ("discard", self.discard),
            ("chargen", self.chargen),
            ("http", self.http),
        ] {
            writeln!(
                f,
                "{name:<8} {:>11} {:>10} {:>14} {:>14}",
                s.connections, s.datagrams, s.bytes_in, s.bytes_out
            )?;
        }
        writeln!(
            f,
            "http requests {}: 200 {}, 400 {}, 404 {}, 405 {}",
            self.http_requests, self.http_2xx, self.http_400, self.http_404, self.http_405
        )
    }
}

impl InetdCounters {
    fn summary(&self) -> InetdSummary {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        InetdSummary {
            echo: self.echo.snapshot(),
            discard: self.discard.snapshot(),
            chargen: self.chargen.snapshot(),
            http: self.http.snapshot(),
            http_requests: g(&self.http_requests),
            http_2xx: g(&self.http_2xx),
            http_400: g(&self.http_400),
            http_404: g(&self.http_404),
            http_405: g(&self.http_405),
        }
    }
}

/// The services' ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Echo,
    Discard,
    Chargen,
    Http,
}

impl Service {
    const TCP: [(Service, u16); 4] = [
        (Service::Echo, 7),
        (Service::Discard, 9),
        (Service::Chargen, 19),
        (Service::Http, 80),
    ];
    const UDP: [(Service, u16); 3] = [
        (Service::Echo, 7),
        (Service::Discard, 9),
        (Service::Chargen, 19),
    ];

    fn counters(self, c: &InetdCounters) -> &ServiceCounters {
        match self {
            Service::Echo => &c.echo,
            Service::Discard => &c.discard,
            Service::Chargen => &c.chargen,
            Service::Http => &c.http,
        }
    }
}

type Stream = TcpStream<HostSockets>;

/// Shared by the service threads.
struct InetdShared {
    host: Arc<HostShared>,
    stop: Arc<AtomicBool>,
    counters: InetdCounters,
    started: StdInstant,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

/// The services on a host: TCP and UDP echo (7), discard (9), chargen
/// (19), and HTTP/1.1 on TCP 80.
///
/// Mirrors `inetd` with its internal services enabled, plus a web server.
pub struct Inetd {
    shared: Arc<InetdShared>,
    main: Option<JoinHandle<Result<(), NetstackError>>>,
}

impl std::fmt::Debug for Inetd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inetd")
            .field("summary", &self.summary())
            .finish_non_exhaustive()
    }
}

fn sock_err(what: &str, port: u16, e: &std::io::Error) -> NetstackError {
    NetstackError::Runtime(format!("inetd: {what} port {port}: {e}"))
}

impl Inetd {
    /// Binds every service's socket on `host` (on the thread runtime) and
    /// starts serving. Errors name the port that could not be bound.
    pub fn start(host: &Arc<HostShared>) -> Result<Inetd, NetstackError> {
        let layer = host.socket_layer();
        let ep = layer
            .epoll_create1(0)
            .map_err(|e| NetstackError::Runtime(format!("inetd: epoll_create1: {e}")))?;
        let mut listeners = Vec::new();
        for (svc, port) in Service::TCP {
            let l = TcpListener::bind(layer, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                .map_err(|e| sock_err("listen on TCP", port, &e))?;
            l.set_nonblocking(true)
                .map_err(|e| sock_err("listen on TCP", port, &e))?;
            let data = listeners.len() as u64;
            layer
                .epoll_ctl(
                    ep,
                    EPOLL_CTL_ADD,
                    l.as_raw_fd(),
                    Some(EpollEvent {
                        events: EpollEvents::EPOLLIN,
                        data,
                    }),
                )
                .map_err(|e| NetstackError::Runtime(format!("inetd: epoll_ctl: {e}")))?;
            listeners.push((svc, l));
        }
        let mut udps = Vec::new();
        for (svc, port) in Service::UDP {
            let u = UdpSocket::bind(host, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
                .map_err(|e| sock_err("bind UDP", port, &e))?;
            u.set_nonblocking(true)
                .map_err(|e| sock_err("bind UDP", port, &e))?;
            let data = 100 + udps.len() as u64;
            layer
                .epoll_ctl(
                    ep,
                    EPOLL_CTL_ADD,
                    u.as_raw_fd(),
                    Some(EpollEvent {
                        events: EpollEvents::EPOLLIN,
                        data,
                    }),
                )
                .map_err(|e| NetstackError::Runtime(format!("inetd: epoll_ctl: {e}")))?;
            udps.push((svc, u));
        }
        let shared = Arc::new(InetdShared {
            host: Arc::clone(host),
            stop: Arc::new(AtomicBool::new(false)),
            counters: InetdCounters::default(),
            started: StdInstant::now(),
            conns: Mutex::new(Vec::new()),
        });
        let sh = Arc::clone(&shared);
        let main = std::thread::Builder::new()
            .name("inetd".to_owned())
            .spawn(move || inetd_loop(&sh, ep, &listeners, &udps))
            .map_err(|e| NetstackError::Runtime(format!("inetd: spawning: {e}")))?;
        Ok(Inetd {
            shared,
            main: Some(main),
        })
    }

    /// What the services did so far.
    pub fn summary(&self) -> InetdSummary {
        self.shared.counters.summary()
    }

    /// Stops every service thread (closing their sockets) and returns
    /// what they did.
    pub fn stop(mut self) -> Result<InetdSummary, NetstackError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<InetdSummary, NetstackError> {
        self.shared.stop.store(true, Ordering::Release);
        let mut r = Ok(());
        if let Some(m) = self.main.take() {
            r = m
                .join()
                .unwrap_or_else(|_| Err(NetstackError::Runtime("inetd panicked".to_owned())));
        }
        let conns: Vec<_> = std::mem::take(&mut *self.shared.conns.lock());
        for c in conns {
            if c.join().is_err() {
                r = Err(NetstackError::Runtime(
                    "an inetd connection thread panicked".to_owned(),
                ));
            }
        }
        r.map(|()| self.summary())
    }
}

impl Drop for Inetd {
    fn drop(&mut self) {
        if self.main.is_some() {
            let _ = self.shutdown();
        }
    }
}

fn inetd_loop(
    sh: &Arc<InetdShared>,
    ep: socket::Fd,
    listeners: &[(Service, TcpListener<HostSockets>)],
    udps: &[(Service, UdpSocket)],
) -> Result<(), NetstackError> {
    let layer = sh.host.socket_layer();
    let mut buf = vec![0u8; 65_536];
    let wait_ms = i32::try_from(INETD_POLL.as_millis()).unwrap_or(100);
    while !sh.stop.load(Ordering::Acquire) {
        let ready = layer
            .epoll_wait(ep, 16, wait_ms)
            .map_err(|e| NetstackError::Runtime(format!("inetd: epoll_wait: {e}")))?;
        for ev in ready {
            if let Some((svc, l)) = usize::try_from(ev.data).ok().and_then(|i| listeners.get(i)) {
                accept_all(sh, *svc, l);
            } else if let Some((svc, u)) = usize::try_from(ev.data - 100)
                .ok()
                .and_then(|i| udps.get(i))
            {
                udp_serve(&sh.counters, *svc, u, &mut buf);
            }
        }
        // Reap finished connection threads.
        sh.conns.lock().retain(|h| !h.is_finished());
    }
    let _ = layer.close(ep);
    Ok(())
}

fn accept_all(sh: &Arc<InetdShared>, svc: Service, l: &TcpListener<HostSockets>) {
    loop {
        match l.accept() {
            Ok((s, _peer)) => {
                svc.counters(&sh.counters)
                    .connections
                    .fetch_add(1, Ordering::Relaxed);
                let sh2 = Arc::clone(sh);
                let spawned = std::thread::Builder::new()
                    .name(format!("inetd-{svc:?}").to_lowercase())
                    .spawn(move || tcp_serve(&sh2, svc, s));
                if let Ok(h) = spawned {
                    sh.conns.lock().push(h);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!("inetd: accept on {svc:?}: {e}");
                return;
            }
        }
    }
}

/// The 72 printable characters of chargen line `n` (RFC 864's rotating
/// pattern over the 95 printable ASCII characters) with CRLF.
pub fn chargen_line(n: u64) -> [u8; 74] {
    let mut line = [0u8; 74];
    for (i, b) in line.iter_mut().take(72).enumerate() {
        *b = b' ' + ((n + i as u64) % 95) as u8;
    }
    line[72] = b'\r';
    line[73] = b'\n';
    line
}

fn udp_serve(c: &InetdCounters, svc: Service, u: &UdpSocket, buf: &mut [u8]) {
    let counters = svc.counters(c);
    loop {
        let (n, peer) = match u.recv_from(buf) {
            Ok(x) => x,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!("inetd: UDP {svc:?}: {e}");
                return;
            }
        };
        let dgrams = counters.datagrams.fetch_add(1, Ordering::Relaxed);
        counters.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        let reply: Option<Vec<u8>> = match svc {
            Service::Echo => Some(buf[..n].to_vec()),
            Service::Chargen => Some(chargen_line(dgrams).to_vec()),
            Service::Discard | Service::Http => None,
        };
        if let Some(r) = reply
            && let Ok(k) = u.send_to(&r, peer)
        {
            counters.bytes_out.fetch_add(k as u64, Ordering::Relaxed);
        }
    }
}

/// Reads into `buf`; `Ok(None)` when the stop flag rose while waiting.
fn read_stoppable(
    s: &mut Stream,
    buf: &mut [u8],
    stop: &AtomicBool,
) -> std::io::Result<Option<usize>> {
    loop {
        match s.read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::Acquire) {
                    return Ok(None);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `buf`; `Ok(false)` when the stop flag rose first.
fn write_stoppable(s: &mut Stream, mut buf: &[u8], stop: &AtomicBool) -> std::io::Result<bool> {
    while !buf.is_empty() {
        match s.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::Acquire) {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn tcp_serve(sh: &InetdShared, svc: Service, mut s: Stream) {
    let _ = s.set_read_timeout(Some(INETD_POLL));
    let _ = s.set_write_timeout(Some(INETD_POLL));
    let r = match svc {
        Service::Echo | Service::Discard => stream_echo(sh, svc, &mut s),
        Service::Chargen => stream_chargen(sh, &mut s),
        Service::Http => http_serve(sh, &Arc::new(Mutex::new(s))),
    };
    if let Err(e) = r {
        tracing::debug!("inetd: {svc:?} connection: {e}");
    }
}

fn stream_echo(sh: &InetdShared, svc: Service, s: &mut Stream) -> std::io::Result<()> {
    let c = svc.counters(&sh.counters);
    let mut buf = vec![0u8; 65_536];
    while let Some(n) = read_stoppable(s, &mut buf, &sh.stop)? {
        if n == 0 {
            break;
        }
        c.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        if svc == Service::Echo {
            if !write_stoppable(s, &buf[..n], &sh.stop)? {
                break;
            }
            c.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn stream_chargen(sh: &InetdShared, s: &mut Stream) -> std::io::Result<()> {
    let c = &sh.counters.chargen;
    // 95 lines make a full rotation: send them as one block, forever.
    let block: Vec<u8> = (0..95).flat_map(chargen_line).collect();
    loop {
        if !write_stoppable(s, &block, &sh.stop)? {
            return Ok(());
        }
        c.bytes_out.fetch_add(block.len() as u64, Ordering::Relaxed);
    }
}

fn http_serve(sh: &InetdShared, stream: &Arc<Mutex<Stream>>) -> std::io::Result<()> {
    let c = &sh.counters;
    // Sixteen periods of the pattern (1 MB): bodies go out in writes of up
    // to that much, fewer system calls for the socket layer.
    let period: Arc<[u8]> = pattern_period().repeat(16).into();
    let mut guard = stream.lock();
    let mut buf = vec![0u8; HTTP_MAX_HEAD + 4096];
    let mut have = 0usize;
    loop {
        // Read one request head.
        let end = loop {
            if let Some(e) = head_end(&buf[..have]) {
                break Some(e);
            }
            if have >= HTTP_MAX_HEAD {
                break None;
            }
            let Some(n) = read_stoppable(&mut guard, &mut buf[have..], &sh.stop)? else {
                return Ok(());
            };
            if n == 0 {
                return Ok(());
            }
            c.http.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
            have += n;
        };
        c.http_requests.fetch_add(1, Ordering::Relaxed);
        let parsed = match end {
            Some(e) => parse_request(&buf[..e]).map(|r| (r, e)),
            None => Err(BadRequest(format!(
                "request head longer than {HTTP_MAX_HEAD} bytes"
            ))),
        };
        let (req, end) = match parsed {
            Ok(x) => x,
            Err(why) => {
                c.http_400.fetch_add(1, Ordering::Relaxed);
                let body = format!("400 Bad Request: {why}\n");
                let head =
                    response_head(400, "Bad Request", "text/plain", body.len() as u64, false);
                let out = [head.as_bytes(), body.as_bytes()].concat();
                if write_stoppable(&mut guard, &out, &sh.stop)? {
                    c.http
                        .bytes_out
                        .fetch_add(out.len() as u64, Ordering::Relaxed);
                }
                let _ = guard.shutdown(std::net::Shutdown::Write);
                return Ok(());
            }
        };
        // Drop the head, then the declared body.
        buf.copy_within(end..have, 0);
        have -= end;
        let mut body_left = req.content_length;
        let k = (have as u64).min(body_left) as usize;
        buf.copy_within(k..have, 0);
        have -= k;
        body_left -= k as u64;
        while body_left > 0 {
            let lim = (buf.len() as u64).min(body_left) as usize;
            let Some(n) = read_stoppable(&mut guard, &mut buf[..lim], &sh.stop)? else {
                return Ok(());
            };
            if n == 0 {
                return Ok(());
            }
            body_left -= n as u64;
        }
        let head_only = req.method == "HEAD";
        let keep = req.keep_alive;
        let sent = match route(&req) {
            HttpRoute::Bytes(n) => {
                c.http_2xx.fetch_add(1, Ordering::Relaxed);
                let head = response_head(200, "OK", "application/octet-stream", n, keep);
                if !write_stoppable(&mut guard, head.as_bytes(), &sh.stop)? {
                    return Ok(());
                }
                let mut sent = head.len() as u64;
                if !head_only && n > 0 {
                    // The body goes out from the CPU's process context as
                    // the socket has room; this thread waits for the end.
                    drop(guard);
                    let done = PatternSend::start(sh, stream, &period, n);
                    let r = done.wait(&sh.stop);
                    guard = stream.lock();
                    match r {
                        Some(r) => sent += r?,
                        None => return Ok(()),
                    }
                }
                sent
            }
            other => {
                let (status, reason, body) = match other {
                    HttpRoute::Status => {
                        c.http_2xx.fetch_add(1, Ordering::Relaxed);
                        (200, "OK", status_page(sh))
                    }
                    HttpRoute::BadBytes => {
                        c.http_400.fetch_add(1, Ordering::Relaxed);
                        (
                            400,
                            "Bad Request",
                            format!(
                                "400 Bad Request: /bytes/N takes N from 0 to {}\n",
                                crate::http::HTTP_MAX_BYTES
                            ),
                        )
                    }
                    HttpRoute::MethodNotAllowed => {
                        c.http_405.fetch_add(1, Ordering::Relaxed);
                        (
                            405,
                            "Method Not Allowed",
                            "405 Method Not Allowed: GET or HEAD\n".to_owned(),
                        )
                    }
                    _ => {
                        c.http_404.fetch_add(1, Ordering::Relaxed);
                        (
                            404,
                            "Not Found",
                            format!("404 Not Found: {}\nTry / or /bytes/N.\n", req.target),
                        )
                    }
                };
                let mut out = response_head(
                    status,
                    reason,
                    "text/plain; charset=utf-8",
                    body.len() as u64,
                    keep,
                )
                .into_bytes();
                if status == 405 {
                    // RFC 9110 §15.5.6: a 405 lists the methods allowed.
                    let at = out.len() - 2;
                    out.splice(at..at, b"Allow: GET, HEAD\r\n".iter().copied());
                }
                if !head_only {
                    out.extend_from_slice(body.as_bytes());
                }
                if !write_stoppable(&mut guard, &out, &sh.stop)? {
                    return Ok(());
                }
                out.len() as u64
            }
        };
        c.http.bytes_out.fetch_add(sent, Ordering::Relaxed);
        if !keep {
            let _ = guard.shutdown(std::net::Shutdown::Write);
            return Ok(());
        }
    }
}

/// How a [`PatternSend`] ended: the body bytes sent, or the error that
/// stopped it.
#[derive(Default)]
struct SendDone {
    result: Mutex<Option<std::io::Result<u64>>>,
    cv: parking_lot::Condvar,
}

impl SendDone {
    fn finish(&self, r: std::io::Result<u64>) {
        *self.result.lock() = Some(r);
        self.cv.notify_all();
    }

    /// Waits for the end; `None` when the stop flag rose first.
    fn wait(&self, stop: &AtomicBool) -> Option<std::io::Result<u64>> {
        let mut g = self.result.lock();
        loop {
            if let Some(r) = g.take() {
                return Some(r);
            }
            if stop.load(Ordering::Acquire) {
                return None;
            }
            let _ = self.cv.wait_for(&mut g, INETD_POLL);
        }
    }
}

/// The body of a `GET /bytes/N` answer, written from the application
/// CPU's process context whenever the socket has room.
///
/// Mirrors an event-driven server's `EPOLLOUT` loop (or the kernel's
/// `sendfile()` being pushed by `sk_write_space()`): each step writes
/// until the send buffer is full (`EAGAIN`), then arms a one-shot wait
/// for `EPOLLOUT` ([`HostShared::app_on_ready`]) and returns. The step
/// runs on the CPU whose context the connection thread's calls borrow
/// (`app_cpu`), so the ACKs that free room and the writes that fill it
/// run on one thread with no hand-over per write.
struct PatternSend {
    host: Weak<HostShared>,
    stream: Weak<Mutex<Stream>>,
    cpu: usize,
    period: Arc<[u8]>,
    /// Body bytes written so far, and the body's length.
    off: u64,
    len: u64,
    stop: Arc<AtomicBool>,
    done: Arc<SendDone>,
}

impl PatternSend {
    /// Starts sending `len` bytes of the pattern on `stream`; wait on the
    /// returned [`SendDone`].
    fn start(
        sh: &InetdShared,
        stream: &Arc<Mutex<Stream>>,
        period: &Arc<[u8]>,
        len: u64,
    ) -> Arc<SendDone> {
        let done = Arc::new(SendDone::default());
        let cpu = sh.host.socket_host().app_cpu();
        let p = PatternSend {
            host: Arc::downgrade(&sh.host),
            stream: Arc::downgrade(stream),
            cpu,
            period: Arc::clone(period),
            off: 0,
            len,
            stop: Arc::clone(&sh.stop),
            done: Arc::clone(&done),
        };
        sh.host.app_on(cpu, move || p.step());
        done
    }

    fn step(mut self) {
        let Some(stream) = self.stream.upgrade() else {
            return self.done.finish(Err(ErrorKind::BrokenPipe.into()));
        };
        let mut s = stream.lock();
        while self.off < self.len {
            if self.stop.load(Ordering::Acquire) {
                return self.done.finish(Err(ErrorKind::Interrupted.into()));
            }
            let start = (self.off % HTTP_PATTERN_PERIOD as u64) as usize;
            let k = ((self.period.len() - start) as u64).min(self.len - self.off) as usize;
            match s.write(&self.period[start..start + k]) {
                Ok(0) => return self.done.finish(Err(ErrorKind::WriteZero.into())),
                Ok(n) => self.off += n as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    // Full: wait for room (a step on the CPU never sleeps).
                    let fd = s.as_raw_fd();
                    drop(s);
                    drop(stream);
                    let Some(host) = self.host.upgrade() else {
                        return self.done.finish(Err(ErrorKind::BrokenPipe.into()));
                    };
                    let done = Arc::clone(&self.done);
                    let cpu = self.cpu;
                    if host
                        .app_on_ready(cpu, fd, EpollEvents::EPOLLOUT.bits(), move || self.step())
                        .is_err()
                    {
                        done.finish(Err(ErrorKind::BrokenPipe.into()));
                    }
                    return;
                }
                Err(e) => return self.done.finish(Err(e)),
            }
        }
        self.done.finish(Ok(self.len));
    }
}

/// The text of `GET /`: uptime, the services' counters, the NIC's
/// counters and `/proc/net/snmp`.
fn status_page(sh: &InetdShared) -> String {
    let h = &sh.host;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "netstack host {} up {:.1} s\n",
        h.name,
        sh.started.elapsed().as_secs_f64()
    );
    let _ = writeln!(s, "{}", sh.counters.summary());
    let mut devs: Vec<Arc<softnet::NetDev>> =
        h.nics().iter().map(|n| Arc::clone(&n.netdev)).collect();
    if devs.is_empty() {
        devs.extend(h.dev("eth0"));
    }
    for dev in &devs {
        let st = dev.dev_get_stats();
        let _ = writeln!(
            s,
            "{}: RX packets {} bytes {} errors {} dropped {}  TX packets {} bytes {} errors {} dropped {}",
            dev.name(),
            st.rx_packets,
            st.rx_bytes,
            st.rx_errors,
            st.rx_dropped,
            st.tx_packets,
            st.tx_bytes,
            st.tx_errors,
            st.tx_dropped
        );
    }
    let _ = writeln!(s, "\n{}", h.mibs.snapshot().proc_net_snmp());
    s
}
