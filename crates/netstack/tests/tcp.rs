//! TCP between simulated hosts through every layer: sockets, TCP, IPv4,
//! neighbours, qdisc, the igb NIC model, NAPI, softnet and a wire.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use netcore::{Duration, TcpMib};
use netstack::{Host, Network, NicConfig, bulk_pattern, tcp_bulk};
use nic_hw::LinkConfig;
use socket::{EPOLL_CTL_ADD, EpollEvent, EpollEvents, TcpListener, TcpStream};

const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const ECONNREFUSED: i32 = 111;

fn pair(seed: u64, loss: f64) -> Network {
    let mut net = Network::new(seed);
    let (a, b) = net
        .wire(
            "w0",
            LinkConfig::default()
                .rate_bps(10_000_000_000)
                .delay(Duration::from_micros(1))
                .loss(loss),
        )
        .unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(2)
            .seed(seed)
            .nic(NicConfig::new().queues(2).phy(a))
            .addr("198.18.0.1/24"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(2)
            .seed(seed + 1)
            .nic(NicConfig::new().queues(2).phy(b))
            .addr("198.18.0.2/24"),
    )
    .unwrap();
    net
}

fn tcp(net: &Network, host: &str, f: TcpMib) -> u64 {
    net.host(host).unwrap().shared().mibs.get(f)
}

#[test]
fn handshake_10mb_transfer_and_orderly_close() {
    let mut net = pair(7, 0.0);
    let bytes = 10 * 1024 * 1024;
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5001),
        bytes,
        Duration::from_micros(20),
        Duration::from_secs(600),
    )
    .unwrap();
    assert_eq!(r.bytes, bytes);
    assert!(r.intact, "{r:?}");
    assert!(r.closed, "{r:?}");
    assert_eq!(tcp(&net, "h1", TcpMib::ActiveOpens), 1);
    assert_eq!(tcp(&net, "h2", TcpMib::PassiveOpens), 1);
    assert_eq!(tcp(&net, "h1", TcpMib::OutRsts), 0);
    assert_eq!(tcp(&net, "h2", TcpMib::OutRsts), 0);
    // At least one full-sized segment per 1448 bytes went h1 -> h2.
    assert!(tcp(&net, "h1", TcpMib::OutSegs) >= bytes / 1460);
    // The active closer (h1) keeps its end in TIME-WAIT; h2's is gone
    // once its FIN is acknowledged.
    net.run_for(Duration::from_millis(10)).unwrap();
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let h2 = Arc::clone(net.host("h2").unwrap().shared());
    assert_eq!(h1.transports.tcp.stack.time_wait_count(), 1);
    assert_eq!(h2.transports.tcp.stack.socket_count(), 0);
}

#[test]
fn connect_to_a_closed_port_is_refused_by_a_reset() {
    let mut net = pair(3, 0.0);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let s = net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, 9))
        })
        .unwrap()
        .unwrap();
    let rsts = tcp(&net, "h2", TcpMib::OutRsts);
    net.run_for(Duration::from_millis(5)).unwrap();
    assert_eq!(tcp(&net, "h2", TcpMib::OutRsts), rsts + 1);
    assert_eq!(tcp(&net, "h1", TcpMib::AttemptFails), 1);
    let err = net.app("h1", || s.take_error()).unwrap().unwrap();
    assert_eq!(err.and_then(|e| e.raw_os_error()), Some(ECONNREFUSED));
}

#[test]

fn transfer_under_one_percent_loss_completes_intact() {
    let mut net = pair(11, 0.01);
    let bytes = 2 * 1024 * 1024;
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5001),
        bytes,
        Duration::from_micros(50),
        Duration::from_secs(120),
    )
    .unwrap();
    assert_eq!(r.bytes, bytes);
    assert!(r.intact && r.closed, "{r:?}");
    assert!(r.retrans > 0, "1 % loss must cost retransmissions: {r:?}");
    let (ab, ba) = net.wire_stats("w0").unwrap();
    assert!(ab.dropped_loss + ba.dropped_loss > 0);
}

#[test]
fn listener_accepts_and_streams_through_epoll() {
    let mut net = pair(5, 0.0);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let h2 = Arc::clone(net.host("h2").unwrap().shared());
    let l = TcpListener::bind(
        h2.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80),
    )
    .unwrap();
    l.set_nonblocking(true).unwrap();
    let ep = h2.socket_layer().epoll_create1(0).unwrap();
    h2.socket_layer()
        .epoll_ctl(
            ep,
            EPOLL_CTL_ADD,
            l.as_raw_fd(),
            Some(EpollEvent {
                events: EpollEvents::EPOLLIN,
                data: 1,
            }),
        )
        .unwrap();
    // Nothing to accept yet: EAGAIN.
    let e = net.app("h2", || l.accept()).unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    let mut c = net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, 80))
        })
        .unwrap()
        .unwrap();
    net.run_for(Duration::from_millis(1)).unwrap();
    let ready = h2.socket_layer().epoll_wait(ep, 4, 0).unwrap();
    assert_eq!(ready.len(), 1);
    let (mut s, peer) = net.app("h2", || l.accept()).unwrap().unwrap();
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    assert_eq!(c.peer_addr().unwrap(), SocketAddrV4::new(H2, 80));
    let msg: Vec<u8> = (0..5000u64).map(bulk_pattern).collect();
    assert_eq!(net.app("h1", || c.write(&msg)).unwrap().unwrap(), msg.len());
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    for _ in 0..100 {
        net.run_for(Duration::from_millis(1)).unwrap();
        if let Ok(k) = net.app("h2", || s.read(&mut buf[n..])).unwrap() {
            n += k;
        }
        if n == msg.len() {
            break;
        }
    }
    assert_eq!(&buf[..n], &msg[..]);
    // The server closes: the client reads end of stream.
    let mut back = vec![0u8; 64];
    net.app("h2", || drop(s)).unwrap();
    net.run_for(Duration::from_millis(1)).unwrap();
    assert_eq!(net.app("h1", || c.read(&mut back)).unwrap().unwrap(), 0);
}

/// Connects h1 to a listener on h2 port `port`, returning both streams
/// (non-blocking) once the server accepted.
fn connected(
    net: &mut Network,
    port: u16,
) -> (
    TcpStream<netstack::HostSockets>,
    TcpStream<netstack::HostSockets>,
    TcpListener<netstack::HostSockets>,
) {
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let h2 = Arc::clone(net.host("h2").unwrap().shared());
    let l = TcpListener::bind(
        h2.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
    )
    .unwrap();
    l.set_nonblocking(true).unwrap();
    let c = net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, port))
        })
        .unwrap()
        .unwrap();
    net.run_for(Duration::from_millis(1)).unwrap();
    let (s, _) = net.app("h2", || l.accept()).unwrap().unwrap();
    s.set_nonblocking(true).unwrap();
    (c, s, l)
}

/// A stream borrows the socket its fd named at its first call
/// (`socket::FdRef`): when the fd is closed behind its back its calls
/// get `EBADF`, and when a new socket takes the fd number they reach
/// that socket, as `std::net::TcpStream` over the C library would.
#[test]
fn a_stream_whose_fd_is_closed_or_reused_behind_its_back() {
    const EBADF: i32 = 9;
    let mut net = pair(13, 0.0);
    let (mut c, mut s, l) = connected(&mut net, 81);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    assert_eq!(net.app("h1", || c.write(b"one")).unwrap().unwrap(), 3);
    let fd = c.as_raw_fd();
    net.app("h1", || h1.socket_layer().close(fd))
        .unwrap()
        .unwrap();
    let e = net.app("h1", || c.write(b"x")).unwrap().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(EBADF));
    let e = net
        .app("h1", || c.read(&mut [0u8; 4]))
        .unwrap()
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(EBADF));
    net.run_for(Duration::from_millis(1)).unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(net.app("h2", || s.read(&mut buf)).unwrap().unwrap(), 3);
    assert_eq!(&buf[..3], b"one");
    assert_eq!(
        net.app("h2", || s.read(&mut buf)).unwrap().unwrap(),
        0,
        "the close sent a FIN"
    );
    // A new connection takes the lowest free fd: the closed one's number.
    let c2 = net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, 81))
        })
        .unwrap()
        .unwrap();
    assert_eq!(c2.as_raw_fd(), fd);
    net.run_for(Duration::from_millis(1)).unwrap();
    let (mut s2, _) = net.app("h2", || l.accept()).unwrap().unwrap();
    s2.set_nonblocking(true).unwrap();
    assert_eq!(net.app("h1", || c.write(b"two")).unwrap().unwrap(), 3);
    net.run_for(Duration::from_millis(1)).unwrap();
    assert_eq!(net.app("h2", || s2.read(&mut buf)).unwrap().unwrap(), 3);
    assert_eq!(
        &buf[..3],
        b"two",
        "the old stream's write reached the new socket"
    );
    // `c` and `c2` name the same fd: the first drop closes it, the second
    // finds it closed (EBADF, ignored), as a double close would.
    drop(c);
    drop(c2);
}

/// The active closer's TIME-WAIT lasts `TCP_TIMEWAIT_LEN` (60 s) of
/// virtual time from the FIN that put it there. On a host its timer sits
/// on the CPU's timer wheel, which like Linux's (`kernel/time/timer.c`)
/// rounds a 60 s expiry up to its level's granularity (level 4: 4.096 s
/// at HZ=1000) and never fires early: so TIME-WAIT ends between 60 s and
/// 64.096 s, as it does on Linux.
#[test]
fn time_wait_lasts_60_seconds_on_a_host() {
    let mut net = pair(13, 0.0);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let (c, mut s, l) = connected(&mut net, 7000);
    net.app("h1", || drop(c)).unwrap();
    net.run_for(Duration::from_millis(1)).unwrap();
    let mut b = [0u8; 8];
    assert_eq!(net.app("h2", || s.read(&mut b)).unwrap().unwrap(), 0);
    net.app("h2", || {
        drop(s);
        drop(l);
    })
    .unwrap();
    // Step until h2's FIN arrived and h1 entered TIME-WAIT.
    let mut t_tw = None;
    for _ in 0..1000 {
        net.run_for(Duration::from_micros(10)).unwrap();
        if h1
            .transports
            .tcp
            .stack
            .ss(net.now())
            .iter()
            .any(|e| e.state == "TIME-WAIT")
        {
            t_tw = Some(net.now());
            break;
        }
    }
    let t_tw = t_tw.expect("h1 reached TIME-WAIT");
    assert_eq!(h1.transports.tcp.stack.time_wait_count(), 1);
    net.run_until(t_tw.saturating_add(Duration::from_millis(59_980)))
        .unwrap();
    assert_eq!(
        h1.transports.tcp.stack.time_wait_count(),
        1,
        "gone before 60 s"
    );
    let mut gone = None;
    while gone.is_none() && net.now() < t_tw.saturating_add(Duration::from_secs(70)) {
        net.run_for(Duration::from_millis(1)).unwrap();
        if h1.transports.tcp.stack.time_wait_count() == 0 {
            gone = Some(net.now().saturating_duration_since(t_tw));
        }
    }
    let gone = gone.expect("TIME-WAIT ended");
    assert!(gone >= Duration::from_secs(60), "{gone:?}");
    assert!(
        gone <= Duration::from_millis(64_097),
        "outlived 60 s and the wheel's slack: {gone:?}"
    );
    assert_eq!(tcp(&net, "h1", TcpMib::CurrEstab), 0);
    assert_eq!(
        net.host("h1")
            .unwrap()
            .shared()
            .mibs
            .get(netcore::LinuxMib::TimeWaited),
        1
    );
}

/// An echo with `TCP_NODELAY` on both ends: every small write goes out at
/// once (Nagle does not hold a tail behind unacknowledged data) and the
/// whole stream, its last bytes included, comes back.
#[test]
fn nodelay_echo_delivers_the_tail() {
    let mut net = pair(17, 0.0);
    let (mut c, mut s, _l) = connected(&mut net, 7001);
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    let msg: Vec<u8> = (0..20_011u64).map(bulk_pattern).collect();
    let out0 = tcp(&net, "h1", TcpMib::OutSegs);
    let mut sent = 0;
    let mut back = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut k = 0usize;
    let t0 = net.now();
    while back.len() < msg.len() && net.now() < t0.saturating_add(Duration::from_secs(5)) {
        if sent < msg.len() {
            // Writes of 1..=997 bytes, each leaving a sub-MSS tail.
            let n = (k * 389 % 997 + 1).min(msg.len() - sent);
            k += 1;
            if let Ok(w) = net.app("h1", || c.write(&msg[sent..sent + n])).unwrap() {
                sent += w;
            }
        }
        while let Ok(n) = net.app("h2", || s.read(&mut buf)).unwrap() {
            if n == 0 {
                break;
            }
            let mut off = 0;
            while off < n {
                match net.app("h2", || s.write(&buf[off..n])).unwrap() {
                    Ok(w) => off += w,
                    Err(_) => net.run_for(Duration::from_micros(50)).unwrap(),
                }
            }
        }
        while let Ok(n) = net.app("h1", || c.read(&mut buf)).unwrap() {
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        net.run_for(Duration::from_micros(20)).unwrap();
    }
    assert_eq!(back.len(), msg.len());
    assert_eq!(back, msg);
    // No write waited for an ACK: the tail came back well before a
    // delayed ACK (40 ms) could have released it.
    assert!(net.now().saturating_duration_since(t0) < Duration::from_millis(40));
    // Nagle off: about one segment per write (writes were < MSS).
    assert!(tcp(&net, "h1", TcpMib::OutSegs) - out0 >= k as u64 / 2);
}

/// Autocorking (`tcp_autocorking`, on by default): twenty 100-byte writes
/// with `TCP_NODELAY` in one application step. The first goes out alone;
/// the next ones wait as long as the tail's truesize stays below what the
/// socket has in the NIC's ring (`sk_wmem_alloc`): writes 2-16 leave
/// together when the tail outgrows the first packet (1,500 bytes, two
/// segments), writes 17-20 once the ring frees those packets (TSQ): four
/// segments, `TCPAutoCorking` counted once (the flag stays set). With
/// `tcp_autocorking=0` each write is a segment until the initial
/// congestion window (10) is full, and the last ten leave together on the
/// first ACK: eleven segments. The receiver gets the bytes in order
/// either way.
#[test]
fn autocorking_coalesces_small_writes_while_packets_wait_below_tcp() {
    for autocork in [true, false] {
        let mut net = pair(23, 0.0);
        let h1 = net.host("h1").unwrap().shared();
        h1.sysctl
            .set("net.ipv4.tcp_autocorking", if autocork { "1" } else { "0" })
            .unwrap();
        let (mut c, mut s, _l) = connected(&mut net, 7002);
        c.set_nodelay(true).unwrap();
        net.run_for(Duration::from_millis(1)).unwrap();
        let msg: Vec<u8> = (0..2000u64).map(bulk_pattern).collect();
        let out0 = tcp(&net, "h1", TcpMib::OutSegs);
        net.app("h1", || {
            for chunk in msg.chunks(100) {
                assert_eq!(c.write(chunk).unwrap(), 100);
            }
        })
        .unwrap();
        net.run_for(Duration::from_millis(5)).unwrap();
        let mut got = vec![0u8; 4096];
        let n = net.app("h2", || s.read(&mut got)).unwrap().unwrap();
        assert_eq!(&got[..n], &msg[..], "autocork {autocork}");
        let segs = tcp(&net, "h1", TcpMib::OutSegs) - out0;
        let corked = net
            .host("h1")
            .unwrap()
            .shared()
            .mibs
            .get(netcore::LinuxMib::TcpAutoCorking);
        if autocork {
            assert_eq!((segs, corked), (4, 1));
        } else {
            assert_eq!((segs, corked), (11, 0));
        }
    }
}

/// `netstack::TcpListener`/`TcpStream`, shaped like `std::net`'s, over a
/// host's socket layer: connect, accept, both ways, refusal as an errno.
#[test]
fn std_like_listener_and_stream() {
    let mut net = pair(19, 0.0);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let h2 = Arc::clone(net.host("h2").unwrap().shared());
    let l = netstack::TcpListener::bind(&h2, "0.0.0.0:8080").unwrap();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.host().name, "h2");
    let mut c = net
        .app("h1", || {
            netstack::TcpStream::connect_nonblocking(&h1, "198.18.0.2:8080")
        })
        .unwrap()
        .unwrap();
    net.run_for(Duration::from_millis(1)).unwrap();
    let (mut s, peer) = net.app("h2", || l.accept()).unwrap().unwrap();
    assert_eq!(peer, c.local_addr().unwrap());
    assert_eq!(s.host().name, "h2");
    net.app("h1", || c.write_all(b"ping")).unwrap().unwrap();
    net.run_for(Duration::from_millis(1)).unwrap();
    let mut b = [0u8; 8];
    assert_eq!(net.app("h2", || s.read(&mut b)).unwrap().unwrap(), 4);
    assert_eq!(&b[..4], b"ping");
    net.app("h2", || s.write_all(b"pong")).unwrap().unwrap();
    net.run_for(Duration::from_millis(1)).unwrap();
    assert_eq!(net.app("h1", || c.read(&mut b)).unwrap().unwrap(), 4);
    assert_eq!(&b[..4], b"pong");
    // A bad address names the argument.
    let e = netstack::TcpListener::bind(&h2, "[::1]:80").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    // A closed port: the SYN is answered by a RST, ECONNREFUSED.
    let r = net
        .app("h1", || {
            netstack::TcpStream::connect_nonblocking(&h1, "198.18.0.2:9")
        })
        .unwrap()
        .unwrap();
    net.run_for(Duration::from_millis(1)).unwrap();
    let err = net.app("h1", || r.take_error()).unwrap().unwrap();
    assert_eq!(err.and_then(|e| e.raw_os_error()), Some(ECONNREFUSED));
}

/// `TCP_LINGER2` through the socket layer: unset it reads back as
/// `tcp_fin_timeout` (60), a value sets it, a negative value is accepted
/// (abort instead of FIN_WAIT2) and reads back as -1, a short buffer is
/// `EINVAL`.
#[test]
fn tcp_linger2_through_setsockopt() {
    let mut net = pair(23, 0.0);
    let (c, _s, _l) = connected(&mut net, 7003);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let layer = h1.socket_layer();
    let fd = c.as_raw_fd();
    let get = || layer.getsockopt_int(fd, socket::SOL_TCP, socket::TCP_LINGER2);
    assert_eq!(get(), Ok(60));
    layer
        .setsockopt_int(fd, socket::SOL_TCP, socket::TCP_LINGER2, 5)
        .unwrap();
    assert_eq!(get(), Ok(5));
    layer
        .setsockopt_int(fd, socket::SOL_TCP, socket::TCP_LINGER2, -7)
        .unwrap();
    assert_eq!(get(), Ok(-1));
    assert_eq!(
        layer.setsockopt(fd, socket::SOL_TCP, socket::TCP_LINGER2, &[1, 0]),
        Err(netcore::Errno::Inval)
    );
}

/// h1 — r — h2 with the router's second link at MTU 1200: h1's TCP starts
/// at MSS 1448 and TSO; the router cannot forward the 1500-byte segments
/// with DF (a GRO packet whose segments do not fit, `ip_exceeds_mtu()`)
/// and answers "fragmentation needed, MTU 1200". h1 keeps that as a path
/// MTU exception toward h2, drops its MSS to 1148 and resends at once
/// (no RTO); a second connection starts from the exception and never
/// meets the router's limit; once `net.ipv4.route.mtu_expires` has passed
/// a third one starts from the device MTU again.
#[test]
fn the_router_s_fragmentation_needed_sets_a_path_mtu_exception_for_the_destination() {
    use netcore::{IcmpMib, IpMib, LinuxMib};
    let mut net = common::routed_with_narrow_link(21, 1200);
    let h2 = Ipv4Addr::new(198, 18, 1, 2);
    let r = Arc::clone(net.host("r").unwrap().shared());
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    h1.sysctl.set("net.ipv4.route.mtu_expires", "30").unwrap();
    let run = |net: &mut Network| {
        let rep = tcp_bulk(
            net,
            "h1",
            "h2",
            SocketAddrV4::new(h2, 5001),
            1 << 20,
            Duration::from_micros(50),
            Duration::from_secs(30),
        )
        .unwrap();
        assert!(rep.intact && rep.closed, "{rep:?}");
        rep
    };
    let first = run(&mut net);
    let too_big = r.mibs.get(IpMib::FragFails);
    assert!(too_big > 0, "the router sent no fragmentation needed");
    assert!(r.mibs.get(IcmpMib::OutMsgs) > 0);
    assert!(first.retrans > 0, "{first:?}");
    assert_eq!(
        h1.mibs.get(LinuxMib::TcpTimeouts),
        0,
        "resent at once, not after an RTO"
    );
    let e = h1
        .ipv4
        .rt_exception(h2)
        .expect("a PMTU exception toward h2");
    assert_eq!(e.pmtu, 1200);
    // The next connection starts at MSS 1148: the router drops nothing.
    let second = run(&mut net);
    assert_eq!(second.retrans, 0, "{second:?}");
    assert_eq!(r.mibs.get(IpMib::FragFails), too_big);
    // Past mtu_expires the exception no longer applies.
    net.run_for(Duration::from_secs(31)).unwrap();
    let third = run(&mut net);
    assert!(r.mibs.get(IpMib::FragFails) > too_big, "{third:?}");
    assert!(third.intact);
}

/// Urgent data through the socket layer: `send(MSG_OOB)` on h1; on h2
/// epoll reports `EPOLLPRI`, `recv` stops at the mark, `SIOCATMARK` says
/// 1 there, `recvmsg(MSG_OOB)` returns the urgent byte flagged `MSG_OOB`,
/// and the stream goes on without it; with `SO_OOBINLINE` (read back as
/// 1) `MSG_OOB` is `EINVAL` and the byte stays in the stream.
#[test]
fn urgent_data_through_the_socket_layer() {
    use socket::{MsgFlags, SIOCATMARK, SO_OOBINLINE, SOL_SOCKET};
    for inline in [false, true] {
        let mut net = pair(29, 0.0);
        let (c, s, _l) = connected(&mut net, 7005);
        let (h1, h2) = (
            Arc::clone(net.host("h1").unwrap().shared()),
            Arc::clone(net.host("h2").unwrap().shared()),
        );
        let (l1, l2) = (h1.socket_layer(), h2.socket_layer());
        let (fc, fs) = (c.as_raw_fd(), s.as_raw_fd());
        if inline {
            l2.setsockopt_int(fs, SOL_SOCKET, SO_OOBINLINE, 1).unwrap();
            assert_eq!(l2.getsockopt_int(fs, SOL_SOCKET, SO_OOBINLINE), Ok(1));
        }
        let ep = l2.epoll_create1(0).unwrap();
        let ev = EpollEvent {
            events: EpollEvents::EPOLLPRI,
            data: 1,
        };
        l2.epoll_ctl(ep, EPOLL_CTL_ADD, fs, Some(ev)).unwrap();
        net.app("h1", || l1.send(fc, b"ab", MsgFlags::empty()))
            .unwrap()
            .unwrap();
        net.app("h1", || l1.send(fc, b"!", MsgFlags::OOB))
            .unwrap()
            .unwrap();
        net.app("h1", || l1.send(fc, b"cd", MsgFlags::empty()))
            .unwrap()
            .unwrap();
        net.run_for(Duration::from_millis(5)).unwrap();
        let evs = l2.epoll_wait(ep, 4, 0).unwrap();
        assert_eq!(evs.len(), 1, "EPOLLPRI");
        assert!(evs[0].events.contains(EpollEvents::EPOLLPRI));
        let mut buf = [0u8; 16];
        let got = net
            .app("h2", || l2.recv(fs, &mut buf, MsgFlags::empty()))
            .unwrap();
        assert_eq!(got, Ok(2));
        assert_eq!(&buf[..2], b"ab", "stops at the mark");
        let mut at = 0;
        l2.ioctl(fs, SIOCATMARK, &mut at).unwrap();
        assert_eq!(at, 1);
        let oob = net
            .app("h2", || l2.recvmsg(fs, &mut [&mut buf[..]], MsgFlags::OOB))
            .unwrap();
        if inline {
            assert_eq!(oob.map(|m| m.len), Err(netcore::Errno::Inval));
            let got = net
                .app("h2", || l2.recv(fs, &mut buf, MsgFlags::empty()))
                .unwrap();
            assert_eq!(got, Ok(3));
            assert_eq!(&buf[..3], b"!cd");
        } else {
            let m = oob.unwrap();
            assert_eq!((m.len, buf[0]), (1, b'!'));
            assert!(m.flags.contains(MsgFlags::OOB));
            let got = net
                .app("h2", || l2.recv(fs, &mut buf, MsgFlags::empty()))
                .unwrap();
            assert_eq!(got, Ok(2));
            assert_eq!(&buf[..2], b"cd");
        }
        l2.ioctl(fs, SIOCATMARK, &mut at).unwrap();
        assert_eq!(at, 0);
    }
}

/// `ip tcp_metrics`: after a transfer h1 closed (so entered TIME-WAIT) it
/// lists what the connection measured toward h2, with h1's source
/// address; with `net.ipv4.tcp_no_metrics_save=1` it lists nothing.
#[test]
fn ip_tcp_metrics_lists_the_closed_connection_s_peer() {
    for nosave in ["0", "1"] {
        let mut net = pair(31, 0.0);
        let h1 = Arc::clone(net.host("h1").unwrap().shared());
        h1.sysctl
            .set("net.ipv4.tcp_no_metrics_save", nosave)
            .unwrap();
        let r = tcp_bulk(
            &mut net,
            "h1",
            "h2",
            SocketAddrV4::new(H2, 5001),
            1 << 20,
            Duration::from_micros(20),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(r.intact && r.closed);
        net.run_for(Duration::from_millis(10)).unwrap();
        let report: netstack::Report = "ip tcp_metrics".parse().unwrap();
        let out = net.host("h1").unwrap().report(&report).unwrap();
        if nosave == "1" {
            assert_eq!(out, "");
        } else {
            assert!(out.starts_with("198.18.0.2 age "), "{out}");
            assert!(out.contains(" rtt ") && out.contains("us rttvar "), "{out}");
            assert!(out.trim_end().ends_with("source 198.18.0.1"), "{out}");
        }
    }
}

/// `bind()` to an address this host does not have is `EADDRNOTAVAIL` for
/// TCP as for UDP (`inet_addr_valid_or_nonlocal()`), and allowed with
/// `net.ipv4.ip_nonlocal_bind=1`; one of the host's own addresses always
/// binds.
#[test]
fn bind_to_a_foreign_address_needs_ip_nonlocal_bind() {
    use socket::AF_INET;
    const SOCK_STREAM: i32 = 1;
    let net = pair(33, 0.0);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let layer = h1.socket_layer();
    let foreign = SocketAddrV4::new(Ipv4Addr::new(198, 18, 9, 9), 7000);
    let own = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7001);
    for ty in [SOCK_STREAM, 2] {
        let fd = layer.socket(AF_INET, ty, 0).unwrap();
        assert_eq!(
            layer.bind(fd, foreign),
            Err(netcore::Errno::AddrNotAvail),
            "type {ty}"
        );
        layer.bind(fd, own).unwrap();
        layer.close(fd).unwrap();
    }
    h1.sysctl.set("net.ipv4.ip_nonlocal_bind", "1").unwrap();
    for ty in [SOCK_STREAM, 2] {
        let fd = layer.socket(AF_INET, ty, 0).unwrap();
        assert_eq!(layer.bind(fd, foreign), Ok(()), "type {ty}");
        layer.close(fd).unwrap();
    }
}

/// A transfer between application threads on hosts whose CPUs poll
/// (`idle=poll`: one spinning thread per CPU, which also runs its host's
/// NIC model; no device thread) arrives whole and in order, and the
/// connection closes cleanly: the runtime `tcp_bulk_2cpu` measures.
#[test]
fn a_transfer_on_polling_cpus_arrives_whole() {
    const LEN: u64 = 4 << 20;
    let net = common::two_hosts(Network::realtime(11));
    let rt = netstack::ThreadRuntime::start_with(net, netstack::CpuIdle::Poll).unwrap();
    let (h1, h2) = (rt.host("h1").unwrap(), rt.host("h2").unwrap());
    let l = TcpListener::bind(
        h2.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5005),
    )
    .unwrap();
    let writer = std::thread::spawn(move || {
        let mut c = TcpStream::connect(h1.socket_layer(), SocketAddrV4::new(H2, 5005)).unwrap();
        let data: Vec<u8> = (0..LEN).map(bulk_pattern).collect();
        c.write_all(&data).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        // Wait for the peer's FIN before the socket goes.
        let mut end = [0u8; 1];
        assert_eq!(c.read(&mut end).unwrap(), 0);
    });
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, bulk_pattern(got + i as u64), "byte {}", got + i as u64);
        }
        got += n as u64;
    }
    assert_eq!(got, LEN);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    writer.join().unwrap();
    assert_eq!(rt.device_rounds(), 0, "no device thread");
    drop((s, l));
    let net = rt.stop().unwrap();
    assert_eq!(tcp(&net, "h1", TcpMib::ActiveOpens), 1);
    assert_eq!(tcp(&net, "h2", TcpMib::PassiveOpens), 1);
}
