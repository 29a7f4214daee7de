//! UDP between hosts through every layer: sockets, UDP, IPv4 (with
//! fragmentation), neighbours, qdisc, the igb NIC model, NAPI, softnet and
//! a wire; on the simulation and on the thread runtime.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use netcore::{Duration, IcmpMsgDir, IpMib, UdpMib};
use netstack::{CpuIdle, Host, Network, NicConfig, ThreadRuntime, UdpSocket};
use nic_hw::LinkConfig;
use socket::{
    AF_INET, EPOLL_CTL_ADD, EpollEvent, EpollEvents, MsgFlags, SO_RCVBUF, SO_REUSEPORT, SO_SNDBUF,
    SOCK_NONBLOCK, SOL_SOCKET,
};

const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SOCK_DGRAM: i32 = 2;
const ECONNREFUSED: i32 = 111;
const EAGAIN: i32 = 11;

fn pair_on(mut net: Network) -> Network {
    let (a, b) = net
        .wire(
            "w0",
            LinkConfig::default()
                .rate_bps(10_000_000_000)
                .delay(Duration::from_micros(1)),
        )
        .unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(a))
            .addr("198.18.0.1/24"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(b))
            .addr("198.18.0.2/24"),
    )
    .unwrap();
    net
}

fn pair() -> Network {
    pair_on(Network::new(7))
}

fn host(net: &Network, name: &str) -> Arc<netstack::HostShared> {
    Arc::clone(net.host(name).unwrap().shared())
}

fn udp(net: &Network, name: &str, f: UdpMib) -> u64 {
    net.host(name).unwrap().shared().mibs.get(f)
}

fn ip(net: &Network, name: &str, f: IpMib) -> u64 {
    net.host(name).unwrap().shared().mibs.get(f)
}

fn step(net: &mut Network) {
    net.run_for(Duration::from_millis(5)).unwrap();
}

/// Receives without waiting, on `host`'s CPU 0.
fn recv_now(
    net: &mut Network,
    host: &str,
    s: &UdpSocket,
) -> std::io::Result<(Vec<u8>, SocketAddrV4)> {
    net.app(host, || {
        let mut buf = vec![0u8; 65536];
        s.set_nonblocking(true)?;
        let (n, from) = s.recv_from(&mut buf)?;
        buf.truncate(n);
        Ok((buf, from))
    })
    .unwrap()
}

#[test]
fn unconnected_datagrams_both_ways() {
    let mut net = pair();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let server = UdpSocket::bind(&h2, "0.0.0.0:7").unwrap();
    let client = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    let cport = client.local_addr().unwrap().port();
    assert!(cport >= 32768, "ephemeral port {cport}");
    let sent = net
        .app("h1", || {
            client.send_to(b"hello over the wire", "198.18.0.2:7")
        })
        .unwrap()
        .unwrap();
    assert_eq!(sent, 19);
    // Nothing has crossed yet: the datagram waits for ARP.
    assert_eq!(
        recv_now(&mut net, "h2", &server)
            .unwrap_err()
            .raw_os_error(),
        Some(EAGAIN)
    );
    step(&mut net);
    let (got, from) = recv_now(&mut net, "h2", &server).unwrap();
    assert_eq!(got, b"hello over the wire");
    assert_eq!(from, SocketAddrV4::new(H1, cport));
    net.app("h2", || server.send_to(b"and back", from))
        .unwrap()
        .unwrap();
    step(&mut net);
    let (got, from) = recv_now(&mut net, "h1", &client).unwrap();
    assert_eq!(
        (got.as_slice(), from),
        (&b"and back"[..], SocketAddrV4::new(H2, 7))
    );
    for h in ["h1", "h2"] {
        assert_eq!(udp(&net, h, UdpMib::InDatagrams), 1, "{h}");
        assert_eq!(udp(&net, h, UdpMib::OutDatagrams), 1, "{h}");
        assert_eq!(udp(&net, h, UdpMib::NoPorts), 0, "{h}");
    }
    assert_eq!(ip(&net, "h2", IpMib::InDelivers), 1);
}

#[test]
fn connected_datagrams_both_ways() {
    let mut net = pair();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let a = UdpSocket::bind(&h1, "198.18.0.1:4000").unwrap();
    let b = UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap();
    a.connect("198.18.0.2:5000").unwrap();
    b.connect("198.18.0.1:4000").unwrap();
    assert_eq!(a.peer_addr().unwrap(), SocketAddrV4::new(H2, 5000));
    for i in 0..5u8 {
        net.app("h1", || a.send(&[i; 100])).unwrap().unwrap();
        net.app("h2", || b.send(&[i + 100; 200])).unwrap().unwrap();
    }
    step(&mut net);
    for i in 0..5u8 {
        let (x, _) = recv_now(&mut net, "h2", &b).unwrap();
        assert_eq!(x, vec![i; 100]);
        let (y, _) = recv_now(&mut net, "h1", &a).unwrap();
        assert_eq!(y, vec![i + 100; 200]);
    }
    assert_eq!(
        recv_now(&mut net, "h1", &a).unwrap_err().raw_os_error(),
        Some(EAGAIN)
    );
    assert_eq!(udp(&net, "h1", UdpMib::InDatagrams), 5);
    assert_eq!(udp(&net, "h2", UdpMib::OutDatagrams), 5);
}

#[test]
fn port_unreachable_is_econnrefused() {
    let mut net = pair();
    let h1 = host(&net, "h1");
    let s = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    s.connect("198.18.0.2:9999").unwrap();
    net.app("h1", || s.send(b"anyone?")).unwrap().unwrap();
    step(&mut net);
    assert_eq!(udp(&net, "h2", UdpMib::NoPorts), 1);
    let h2m = &net.host("h2").unwrap().shared().mibs;
    assert_eq!(
        h2m.snapshot().icmpmsg(IcmpMsgDir::Out, 3),
        1,
        "OutDestUnreachs"
    );
    let h1m = &net.host("h1").unwrap().shared().mibs;
    assert_eq!(
        h1m.snapshot().icmpmsg(IcmpMsgDir::In, 3),
        1,
        "InDestUnreachs"
    );
    let err = recv_now(&mut net, "h1", &s).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(ECONNREFUSED), "{err}");
    // Reported once.
    assert_eq!(
        recv_now(&mut net, "h1", &s).unwrap_err().raw_os_error(),
        Some(EAGAIN)
    );
}

#[test]
fn receive_queue_over_rcvbuf_drops_and_counts() {
    let mut net = pair();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let rx = UdpSocket::bind(&h2, "0.0.0.0:6000").unwrap();
    let layer = h2.socket_layer();
    layer
        .setsockopt_int(rx.as_raw_fd(), SOL_SOCKET, SO_RCVBUF, 2048)
        .unwrap();
    assert_eq!(
        layer
            .getsockopt_int(rx.as_raw_fd(), SOL_SOCKET, SO_RCVBUF)
            .unwrap(),
        4096
    );
    let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    let n = 40;
    for _ in 0..n {
        net.app("h1", || tx.send_to(&[0x5a; 1000], "198.18.0.2:6000"))
            .unwrap()
            .unwrap();
        step(&mut net);
    }
    let mut got = 0;
    while let Ok((d, _)) = recv_now(&mut net, "h2", &rx) {
        assert_eq!(d, vec![0x5a; 1000]);
        got += 1;
    }
    let drops = udp(&net, "h2", UdpMib::RcvbufErrors);
    assert!(got > 0 && drops > 0, "got {got}, drops {drops}");
    assert_eq!(got + drops, n);
    assert_eq!(udp(&net, "h2", UdpMib::InErrors), drops);
    assert_eq!(udp(&net, "h2", UdpMib::InDatagrams), got);
}

#[test]
fn reuseport_spreads_flows() {
    let mut net = pair();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let layer = h2.socket_layer();
    let fds: Vec<i32> = (0..2)
        .map(|_| {
            let fd = layer
                .socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)
                .unwrap();
            layer
                .setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)
                .unwrap();
            layer.bind(fd, SocketAddrV4::new(H2, 5353)).unwrap();
            fd
        })
        .collect();
    let flows = 32;
    let senders: Vec<UdpSocket> = (0..flows)
        .map(|_| UdpSocket::bind(&h1, "0.0.0.0:0").unwrap())
        .collect();
    for s in &senders {
        net.app("h1", || s.send_to(b"flow", "198.18.0.2:5353"))
            .unwrap()
            .unwrap();
    }
    step(&mut net);
    let mut per_socket = Vec::new();
    for &fd in &fds {
        let mut n = 0;
        let mut buf = [0u8; 16];
        while net
            .app("h2", || layer.recv(fd, &mut buf, MsgFlags::empty()))
            .unwrap()
            .is_ok()
        {
            n += 1;
        }
        per_socket.push(n);
    }
    assert_eq!(per_socket.iter().sum::<usize>(), flows);
    assert!(per_socket.iter().all(|&n| n > 0), "{per_socket:?}");
}

#[test]
fn datagram_over_the_mtu_is_fragmented_and_reassembled() {
    let mut net = pair();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let rx = UdpSocket::bind(&h2, "0.0.0.0:7000").unwrap();
    let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    let big: Vec<u8> = (0..8000u32).map(|i| (i * 7 % 251) as u8).collect();
    net.app("h1", || tx.send_to(&big, "198.18.0.2:7000"))
        .unwrap()
        .unwrap();
    step(&mut net);
    let (got, _) = recv_now(&mut net, "h2", &rx).unwrap();
    assert_eq!(got.len(), 8000);
    assert_eq!(got, big);
    // 8 + 8000 bytes of UDP in 1480-byte pieces: 6 fragments.
    assert_eq!(ip(&net, "h1", IpMib::FragOKs), 1);
    assert_eq!(ip(&net, "h1", IpMib::FragCreates), 6);
    assert_eq!(ip(&net, "h2", IpMib::ReasmReqds), 6);
    assert_eq!(ip(&net, "h2", IpMib::ReasmOKs), 1);
    assert_eq!(udp(&net, "h2", UdpMib::InDatagrams), 1);
}

#[test]
fn epoll_reports_real_arrivals() {
    let mut net = pair();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let rx = UdpSocket::bind(&h2, "0.0.0.0:8000").unwrap();
    let layer = h2.socket_layer();
    let ep = layer.epoll_create1(0).unwrap();
    layer
        .epoll_ctl(
            ep,
            EPOLL_CTL_ADD,
            rx.as_raw_fd(),
            Some(EpollEvent {
                events: EpollEvents::EPOLLIN,
                data: 42,
            }),
        )
        .unwrap();
    // The simulation cannot sleep: a timeout returns what is ready now.
    assert!(layer.epoll_wait(ep, 8, 1000).unwrap().is_empty());
    let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    net.app("h1", || tx.send_to(b"wake up", "198.18.0.2:8000"))
        .unwrap()
        .unwrap();
    step(&mut net);
    let ev = layer.epoll_wait(ep, 8, 0).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].data, 42);
    assert!(ev[0].events.contains(EpollEvents::EPOLLIN));
    let (got, _) = recv_now(&mut net, "h2", &rx).unwrap();
    assert_eq!(got, b"wake up");
    assert!(layer.epoll_wait(ep, 8, 0).unwrap().is_empty());
}

#[test]
fn queued_application_steps_run_on_a_cpu() {
    let mut net = pair();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let rx = Arc::new(UdpSocket::bind(&h2, "0.0.0.0:9000").unwrap());
    let tx = Arc::new(UdpSocket::bind(&h1, "0.0.0.0:0").unwrap());
    for i in 0..3u8 {
        let (tx, h1) = (Arc::clone(&tx), Arc::clone(&h1));
        net.after(Duration::from_millis(u64::from(i)), move |_| {
            h1.app_on(1, move || {
                let _ = tx.send_to(&[i], "198.18.0.2:9000");
            });
        });
    }
    let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
    {
        let (rx, h2, got) = (Arc::clone(&rx), Arc::clone(&h2), Arc::clone(&got));
        net.after(Duration::from_millis(10), move |_| {
            h2.app_on(0, move || {
                rx.set_nonblocking(false).unwrap();
                let mut buf = [0u8; 4];
                // A blocking call on a CPU that cannot sleep: EAGAIN when empty.
                while let Ok(n) = rx.recv(&mut buf) {
                    got.lock().push(buf[..n].to_vec());
                }
            });
        });
    }
    net.run_for(Duration::from_millis(20)).unwrap();
    assert_eq!(*got.lock(), vec![vec![0], vec![1], vec![2]]);
}

#[test]
fn blocking_send_and_receive_on_the_thread_runtime() {
    blocking_echo_on_threads(CpuIdle::Halt, 3);
}

/// The same exchange with CPUs that never sleep (`idle=poll`): each CPU
/// thread runs its own host's NIC model (NIC 0 on CPU 0 of each host with
/// two CPUs), and there is no device thread.
#[test]
fn blocking_send_and_receive_on_polling_cpus() {
    let rt = blocking_echo_on_threads(CpuIdle::Poll, 4);
    assert_eq!(rt, 0, "no device thread in idle=poll mode");
}

/// Three datagrams echoed between an application thread on h1 and one on
/// h2, both blocking; returns the device thread's rounds.
fn blocking_echo_on_threads(idle: CpuIdle, seed: u64) -> u64 {
    let net = pair_on(Network::realtime(seed));
    let rt = ThreadRuntime::start_with(net, idle).unwrap();
    let (h1, h2) = (rt.host("h1").unwrap(), rt.host("h2").unwrap());
    let server = UdpSocket::bind(&h2, "0.0.0.0:7").unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..3 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            server.send_to(&buf[..n], from).unwrap();
        }
    });
    let client = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    client.connect("198.18.0.2:7").unwrap();
    for i in 0..3u8 {
        let msg = vec![i; 500 + usize::from(i)];
        client.send(&msg).unwrap();
        let mut buf = [0u8; 2048];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], msg.as_slice());
    }
    echo.join().unwrap();
    let rounds = rt.device_rounds();
    let net = rt.stop().unwrap();
    assert_eq!(udp(&net, "h1", UdpMib::InDatagrams), 3);
    assert_eq!(udp(&net, "h2", UdpMib::InDatagrams), 3);
    assert_eq!(udp(&net, "h2", UdpMib::OutDatagrams), 3);
    rounds
}

/// An application step that queues itself again (a task that yields)
/// runs behind the interrupts and softirqs of its CPU, not before them
/// all: the datagram the first step sends to its own host (through `lo`:
/// `netif_rx()`, then `NET_RX_SOFTIRQ`) is in the socket when the second
/// step looks. Were the queue run until empty before the softirqs, the
/// steps would never see it.
#[test]
fn a_step_that_queues_itself_again_leaves_the_softirqs_their_turn() {
    fn step(
        h: &Arc<netstack::HostShared>,
        socks: Arc<(UdpSocket, UdpSocket)>,
        i: u32,
        seen_at: Arc<AtomicU32>,
    ) {
        let host = Arc::clone(h);
        h.app_on(0, move || {
            let (rx, tx) = &*socks;
            if i == 0 {
                tx.send_to(&[7; 8], "198.18.0.2:9").unwrap();
            }
            let mut buf = [0u8; 64];
            if rx.recv(&mut buf).is_ok() {
                seen_at.store(i, Ordering::Relaxed);
            } else if i < 100 {
                step(&host, socks, i + 1, seen_at);
            }
        });
    }
    let mut net = pair();
    let h2 = host(&net, "h2");
    let rx = UdpSocket::bind(&h2, "198.18.0.2:9").unwrap();
    let tx = UdpSocket::bind(&h2, "0.0.0.0:0").unwrap();
    rx.set_nonblocking(true).unwrap();
    let seen_at = Arc::new(AtomicU32::new(u32::MAX));
    step(&h2, Arc::new((rx, tx)), 0, Arc::clone(&seen_at));
    net.run_until_idle().unwrap();
    assert_eq!(seen_at.load(Ordering::Relaxed), 1);
}

/// `/proc/net/udp` and `ss -uanp` on a host, in the kernel's and
/// iproute2's exact formats: a bound socket holding two unread datagrams
/// (its `rx_queue`/`Recv-Q` is their truesize), a connected one, an
/// unbound one (no line), with the socket layer's fds.
#[test]
fn proc_net_udp_and_ss_uanp_reports() {
    let mut net = pair();
    let h1 = host(&net, "h1");
    let h2 = host(&net, "h2");
    let rx = UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap();
    let tx = UdpSocket::bind(&h1, "0.0.0.0:4000").unwrap();
    let c = UdpSocket::bind(&h2, "0.0.0.0:53").unwrap();
    net.app("h2", || c.connect("198.18.0.1:4000"))
        .unwrap()
        .unwrap();
    net.app("h1", || {
        tx.send_to(&[1; 64], "198.18.0.2:5000").unwrap();
        tx.send_to(&[2; 10], "198.18.0.2:5000").unwrap();
    })
    .unwrap();
    step(&mut net);
    let queued = h2
        .transports
        .udp
        .sockets()
        .iter()
        .find(|sk| sk.local_addr().port() == 5000)
        .unwrap()
        .rmem_alloc();
    assert!(queued > 0);
    let h = net.host("h2").unwrap();
    let text = h.report(&"/proc/net/udp".parse().unwrap()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            "
    );
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| l.len() == 127), "{text}");
    // Port 53 sorts first: connected to 198.18.0.1:4000 (st 01), which
    // bound it to the route's source address (ip4_datagram_connect).
    assert!(
        lines[1].starts_with("   53: 020012C6:0035 010012C6:0FA0 01 00000000:00000000 00:00000000 00000000     0        0 "),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(&format!(
            " 5000: 020012C6:1388 00000000:0000 07 00000000:{queued:08X} 00:00000000 00000000     0        0 "
        )),
        "{}",
        lines[2]
    );
    let fd_c = c.as_raw_fd();
    let fd_rx = rx.as_raw_fd();
    let ss = h.report(&"ss -uanp".parse().unwrap()).unwrap();
    let users = |fd: i32| format!("users:((\"app\",pid=1,fd={fd}))");
    let expect = format!(
        "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess                    \n\
         ESTAB  0      0         198.18.0.2:53     198.18.0.1:4000 {}\n\
         UNCONN {queued:<6} 0         198.18.0.2:5000      0.0.0.0:*    {}\n",
        users(fd_c),
        users(fd_rx)
    );
    assert_eq!(ss, expect);
    let plain = h.report(&"ss -uan".parse().unwrap()).unwrap();
    assert_eq!(
        plain,
        format!(
            "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n\
             ESTAB  0      0         198.18.0.2:53     198.18.0.1:4000       \n\
             UNCONN {queued:<6} 0         198.18.0.2:5000      0.0.0.0:*          \n"
        )
    );
    assert!("ss -uanpi".parse::<netstack::Report>().is_err());
    assert_eq!(
        "ss -tanpi".parse::<netstack::Report>().unwrap().to_string(),
        "ss -tanpi"
    );
}

/// `ss -tanp` and `ss -tanpi` list a listener, an established pair and the
/// TCP details, with the process column from the socket layer's fds.
#[test]
fn ss_tanpi_lists_tcp_sockets() {
    let mut net = pair();
    let h1 = host(&net, "h1");
    let h2 = host(&net, "h2");
    let l = net
        .app("h2", || {
            socket::TcpListener::bind(h2.socket_layer(), SocketAddrV4::new(H2, 8080))
        })
        .unwrap()
        .unwrap();
    let c = net
        .app("h1", || {
            socket::TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, 8080))
        })
        .unwrap()
        .unwrap();
    step(&mut net);
    let port = c.local_addr().unwrap().port();
    let h = net.host("h2").unwrap();
    let ss = h.report(&"ss -tanp".parse().unwrap()).unwrap();
    let users = format!(" users:((\"app\",pid=1,fd={}))", l.as_raw_fd());
    // The connection is not accepted yet: no process. The last line's
    // Process field does not count toward its width (see socket::ss).
    assert_eq!(
        ss,
        format!(
            "State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process{pad}\n\
             LISTEN 1      128       198.18.0.2:8080      0.0.0.0:*    {users}\n\
             ESTAB  0      0         198.18.0.2:8080   198.18.0.1:{port}{pad2}\n",
            pad = " ".repeat(users.len() - "Process".len()),
            pad2 = " ".repeat(users.len()),
        )
    );
    let si = h.report(&"ss -tanpi".parse().unwrap()).unwrap();
    let lines: Vec<&str> = si.lines().collect();
    assert_eq!(lines.len(), 5, "{si}");
    // The details (from tcp's inet_diag) on their own line after a tab
    // and a space, as tcp_show_info() prints them.
    assert!(
        lines[2].starts_with("\t ") && lines[2].contains(" rto:"),
        "{si}"
    );
    assert!(
        lines[4].starts_with("\t ") && lines[4].contains(" rto:"),
        "{si}"
    );
    drop(c);
}

/// SO_SNDBUF through every layer: datagrams stay charged to the sender
/// while they sit in the qdisc and on the TX ring, a non-blocking send
/// gets EAGAIN (and SndbufErrors) once sk_wmem_alloc reaches sk_sndbuf,
/// and the NIC's transmit completion gives the room back.
#[test]
fn so_sndbuf_is_charged_until_transmit_completion() {
    let mut net = pair();
    let h1 = host(&net, "h1");
    let h2 = host(&net, "h2");
    let rx = UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap();
    let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    tx.connect("198.18.0.2:5000").unwrap();
    // Resolve ARP first, so datagrams go straight to the device.
    net.app("h1", || tx.send(&[0; 64])).unwrap().unwrap();
    step(&mut net);
    let layer = h1.socket_layer();
    let fd = tx.as_raw_fd();
    // 4608 (SOCK_MIN_SNDBUF) after setsockopt's doubling and floor.
    layer.setsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, 1).unwrap();
    assert_eq!(
        layer.getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF).unwrap(),
        4608
    );
    tx.set_nonblocking(true).unwrap();
    let errors = udp(&net, "h1", UdpMib::SndbufErrors);
    let (sent, err) = net
        .app("h1", || {
            let mut sent = 0;
            loop {
                match tx.send(&[7; 64]) {
                    Ok(_) => sent += 1,
                    Err(e) => return (sent, e),
                }
                assert!(sent < 1000, "SO_SNDBUF never filled");
            }
        })
        .unwrap();
    assert_eq!(err.raw_os_error(), Some(EAGAIN));
    assert!(sent >= 1);
    assert_eq!(udp(&net, "h1", UdpMib::SndbufErrors), errors + 1);
    let charged = |h: &Arc<netstack::HostShared>| {
        h.transports
            .udp
            .sockets()
            .iter()
            .map(|s| s.wmem_alloc())
            .sum::<usize>()
    };
    assert!(charged(&h1) >= 4608);
    // Transmit and complete: the charge goes back, sending works again.
    step(&mut net);
    assert_eq!(charged(&h1), 0);
    net.app("h1", || tx.send(&[8; 64])).unwrap().unwrap();
    step(&mut net);
    let mut got = 0;
    while recv_now(&mut net, "h2", &rx).is_ok() {
        got += 1;
    }
    assert_eq!(got, 1 + sent + 1, "every accepted datagram arrived");
}

/// An application step is pushed by its socket's wake-up: registered while
/// nothing is queued it does not run; the datagram's arrival
/// (sk_data_ready) queues it once on the CPU, and it finds the datagram.
#[test]
fn a_readable_socket_pushes_its_application_step() {
    let mut net = pair();
    let h1 = host(&net, "h1");
    let h2 = host(&net, "h2");
    let rx = Arc::new(UdpSocket::bind(&h2, "198.18.0.2:5000").unwrap());
    rx.set_nonblocking(true).unwrap();
    let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    let runs = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let (r, log, clock) = (Arc::clone(&rx), Arc::clone(&runs), Arc::clone(net.clock()));
    h2.app_on_ready(0, rx.as_raw_fd(), EpollEvents::EPOLLIN.bits(), move || {
        let mut buf = [0u8; 64];
        log.lock().push((clock.now(), r.recv(&mut buf).ok()));
    })
    .unwrap();
    step(&mut net);
    assert!(runs.lock().is_empty(), "ran before anything arrived");
    let t0 = net.now();
    net.app("h1", || tx.send_to(b"wake", "198.18.0.2:5000"))
        .unwrap()
        .unwrap();
    let arrived = net
        .run_until_done(t0.saturating_add(Duration::from_millis(5)), || {
            !runs.lock().is_empty()
        })
        .unwrap();
    assert!(arrived);
    let got = runs.lock().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, Some(4), "the step found the datagram");
    // It ran at the instant of delivery: after the wire's 1 µs, well
    // before any polling period would have come round.
    let waited = got[0].0.saturating_duration_since(t0);
    assert!(waited > Duration::from_micros(1) && waited < Duration::from_micros(200));
    // One-shot: a second datagram does not run it again.
    net.app("h1", || tx.send_to(b"again", "198.18.0.2:5000"))
        .unwrap()
        .unwrap();
    step(&mut net);
    assert_eq!(runs.lock().len(), 1);
    assert!(
        h2.app_on_ready(0, 999, EpollEvents::EPOLLIN.bits(), || {})
            .is_err()
    );
}

/// The echo exchange runs on pushed steps: every reply comes back, all
/// round trips of a quiet network are equal, and the loop iterations
/// stay proportional to the packets, not to the time waited.
#[test]
fn udp_echo_is_event_driven() {
    let mut net = pair();
    let before = net.events_run();
    let r = netstack::udp_echo(&mut net, "h1", "h2", SocketAddrV4::new(H2, 7), 10, 64).unwrap();
    assert_eq!((r.sent, r.received()), (10, 10), "{r}");
    // The first round trip resolves ARP; the others are alike.
    let later: Vec<_> = r.rtts[1..].iter().map(|x| x.1).collect();
    assert!(later.windows(2).all(|w| w[0] == w[1]), "{r}");
    assert!(r.rtts[0].1 > later[0]);
    let iterations = net.events_run() - before;
    assert!(
        iterations < 500,
        "{iterations} loop iterations for 10 echoes"
    );
    // The service stopped with the exchange: its port is free again.
    assert!(UdpSocket::bind(&host(&net, "h2"), "0.0.0.0:7").is_ok());
}

/// The thread runtime's device thread sleeps while nothing happens
/// (DEVICE_IDLE_SLEEP doubling up to DEVICE_IDLE_MAX, or until a NIC has
/// something due) instead of looking at the NICs every 20 µs, and still
/// carries traffic at once: a CPU that rang a doorbell kicks it.
#[test]
fn the_device_thread_sleeps_when_idle_and_wakes_for_traffic() {
    let net = pair_on(Network::realtime(5));
    let rt = ThreadRuntime::start(net).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let r0 = rt.device_rounds();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let idle_rounds = rt.device_rounds() - r0;
    // 200 ms at DEVICE_IDLE_MAX (1 ms) is about 200 rounds; looking every
    // 20 µs would be thousands.
    assert!(
        idle_rounds < 600,
        "{idle_rounds} device rounds in 200 ms idle"
    );
    let (h1, h2) = (rt.host("h1").unwrap(), rt.host("h2").unwrap());
    let rx = UdpSocket::bind(&h2, "0.0.0.0:9").unwrap();
    rx.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    for i in 0..3u8 {
        tx.send_to(&[i; 32], "198.18.0.2:9").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(rx.recv(&mut buf).unwrap(), 32);
        assert_eq!(buf[0], i);
    }
    drop((rx, tx));
    rt.stop().unwrap();
}

/// Each CPU keeps the socket of its last receive lookup (`UdpRcvCache`);
/// a bind, connect or close makes it stale, so what arrives after goes
/// where a fresh lookup sends it: to the socket bound after a close, and
/// not to a socket that connected elsewhere since (NoPorts instead).
#[test]
fn receive_lookups_follow_binds_connects_and_closes() {
    let mut net = pair();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let client = UdpSocket::bind(&h1, "0.0.0.0:4444").unwrap();
    let a = UdpSocket::bind(&h2, "0.0.0.0:7").unwrap();
    let send = |net: &mut Network, msg: &'static [u8]| {
        net.app("h1", || client.send_to(msg, "198.18.0.2:7"))
            .unwrap()
            .unwrap();
        step(net);
    };
    send(&mut net, b"one");
    assert_eq!(recv_now(&mut net, "h2", &a).unwrap().0, b"one");
    send(&mut net, b"two");
    assert_eq!(recv_now(&mut net, "h2", &a).unwrap().0, b"two");
    // Closed, and another socket bound to the port: the new one gets it.
    drop(a);
    let b = UdpSocket::bind(&h2, "0.0.0.0:7").unwrap();
    send(&mut net, b"three");
    assert_eq!(recv_now(&mut net, "h2", &b).unwrap().0, b"three");
    // Connected to another peer: datagrams from this one match no socket.
    net.app("h2", || b.connect("198.18.0.1:5555"))
        .unwrap()
        .unwrap();
    let no_ports = udp(&net, "h2", UdpMib::NoPorts);
    send(&mut net, b"four");
    assert_eq!(udp(&net, "h2", UdpMib::NoPorts), no_ports + 1);
    let e = recv_now(&mut net, "h2", &b).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
}

/// h1 — r — h2 with the router's link to h2 at MTU 1200. A 1400-byte
/// datagram leaves h1 whole with DF (`IP_PMTUDISC_WANT`, the default);
/// the router cannot forward it and answers "fragmentation needed". The
/// connected socket reads `EMSGSIZE` once, h1 keeps the path MTU for h2
/// (`ipv4_sk_update_pmtu()`), and the same datagram sent again leaves in
/// two fragments that fit and arrive whole.
#[test]
fn fragmentation_needed_teaches_the_path_mtu_and_the_next_datagram_is_fragmented() {
    let mut net = common::routed_with_narrow_link(9, 1200);
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let rx = UdpSocket::bind(&h2, "0.0.0.0:7000").unwrap();
    let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    tx.connect("198.18.1.2:7000").unwrap();
    let dgram: Vec<u8> = (0..1400u32).map(|i| (i * 13 % 251) as u8).collect();
    net.app("h1", || tx.send(&dgram)).unwrap().unwrap();
    net.run_for(Duration::from_millis(5)).unwrap();
    assert_eq!(ip(&net, "r", IpMib::FragFails), 1);
    assert_eq!(udp(&net, "h2", UdpMib::InDatagrams), 0);
    assert_eq!(ip(&net, "h1", IpMib::FragCreates), 0, "sent whole");
    let err = recv_now(&mut net, "h1", &tx).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(90), "EMSGSIZE: {err}");
    assert_eq!(
        h1.ipv4
            .rt_exception(Ipv4Addr::new(198, 18, 1, 2))
            .map(|e| e.pmtu),
        Some(1200)
    );
    net.app("h1", || tx.send(&dgram)).unwrap().unwrap();
    net.run_for(Duration::from_millis(5)).unwrap();
    assert_eq!(ip(&net, "h1", IpMib::FragCreates), 2);
    assert_eq!(ip(&net, "r", IpMib::FragFails), 1, "nothing more dropped");
    let (got, _) = recv_now(&mut net, "h2", &rx).unwrap();
    assert_eq!(got, dgram);
}

/// The UDP checksum fields of the datagrams to port `dport` in a pcap
/// file, each with the pseudo-header sum alone (what `CHECKSUM_PARTIAL`
/// leaves in the field) and the checksum the datagram should carry
/// (`None` for a first fragment: the rest of the datagram is elsewhere).
fn udp_checks(pcap: &[u8], dport: u16) -> Vec<(u16, u16, Option<u16>)> {
    let addr = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let mut out = Vec::new();
    for f in common::pcap_frames(pcap) {
        if f.len() < 42 || f[12..14] != [0x08, 0x00] || f[23] != 17 {
            continue;
        }
        let ihl = usize::from(f[14] & 0x0f) * 4;
        let u = &f[14 + ihl..];
        if u16::from_be_bytes([u[2], u[3]]) != dport {
            continue;
        }
        let ulen = u16::from_be_bytes([u[4], u[5]]);
        let (saddr, daddr) = (addr(&f[26..30]), addr(&f[30..34]));
        let pseudo = !wire::csum_tcpudp_magic(saddr, daddr, ulen, 17, 0);
        let full = (usize::from(ulen) <= u.len()).then(|| {
            let mut zeroed = u[..usize::from(ulen)].to_vec();
            zeroed[6..8].fill(0);
            match wire::csum_tcpudp_magic(saddr, daddr, ulen, 17, wire::csum_partial(&zeroed, 0)) {
                0 => 0xffff,
                c => c,
            }
        });
        out.push((u16::from_be_bytes([u[6], u[7]]), pseudo, full));
    }
    out
}

/// UDP leaves its checksum to a NIC that offers to compute it
/// (`CHECKSUM_PARTIAL`, as `__ip_append_data()` does on an igb, which has
/// `NETIF_F_IP_CSUM`): a capture on the sender shows the pseudo-header
/// sum in the field, as tcpdump on a Linux sender shows "bad udp cksum"
/// for offloaded datagrams, and the receiver finds the checksum good. A
/// datagram that goes as fragments, and every datagram once `ethtool -K
/// eth0 tx off` took the offload away, is summed by the stack.
#[test]
fn udp_leaves_its_checksum_to_a_nic_that_offers_it() {
    let mut net = pair();
    let path = std::env::temp_dir().join(format!("netstack-{}-udpcsum.pcap", std::process::id()));
    let cap = net.host("h1").unwrap().capture("eth0", &path).unwrap();
    let (h1, h2) = (host(&net, "h1"), host(&net, "h2"));
    let rx = UdpSocket::bind(&h2, "198.18.0.2:9").unwrap();
    rx.set_nonblocking(true).unwrap();
    let send = |net: &mut Network, len: usize| {
        let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
        let msg = vec![0xa5u8; len];
        net.app("h1", || tx.send_to(&msg, "198.18.0.2:9"))
            .unwrap()
            .unwrap();
        net.run_for(Duration::from_millis(5)).unwrap();
        let mut buf = vec![0u8; 4096];
        let n = net.app("h2", || rx.recv(&mut buf)).unwrap().unwrap();
        assert_eq!(&buf[..n], msg.as_slice());
    };
    send(&mut net, 100); // offloaded
    send(&mut net, 3000); // fragmented: summed by the stack
    net.host("h1")
        .unwrap()
        .with_ethtool("eth0", |ops| {
            let (f, _) = ops.get_features().unwrap();
            ops.set_features(
                f - netcore::NetdevFeatures::IP_CSUM - netcore::NetdevFeatures::HW_CSUM,
            )
            .unwrap();
        })
        .unwrap();
    send(&mut net, 100); // tx off: summed by the stack
    cap.flush().unwrap();
    let pcap = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let checks = udp_checks(&pcap, 9);
    assert_eq!(checks.len(), 3, "{checks:?}");
    let (field, pseudo, full) = checks[0];
    assert_eq!(
        field, pseudo,
        "offloaded: the pseudo-header sum for the NIC"
    );
    assert_ne!(Some(field), full);
    let (field, pseudo, full) = checks[1];
    assert_eq!(full, None, "the first fragment");
    assert_ne!(
        field, pseudo,
        "a fragmented datagram is summed by the stack"
    );
    let (field, _, full) = checks[2];
    assert_eq!(Some(field), full, "tx off: summed by the stack");
    assert_eq!(udp(&net, "h2", UdpMib::InCsumErrors), 0);
    assert_eq!(udp(&net, "h2", UdpMib::InDatagrams), 3);
}
