//! The socket layer over two back-to-back hosts: calls, errno values,
//! blocking, epoll.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netcore::{Errno, UdpMib};
use socket::testutil::FakeSocketHost;
use socket::*;

type Layer = Arc<SocketLayer<FakeSocketHost>>;

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const DGRAM: i32 = SockType::Dgram as i32;
const STREAM: i32 = SockType::Stream as i32;

fn any(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
}

fn udp(l: &Layer, port: u16) -> Fd {
    let fd = l.socket(AF_INET, DGRAM, 0).unwrap();
    l.bind(fd, any(port)).unwrap();
    fd
}

#[allow(clippy::unnecessary_wraps)] // epoll_ctl takes the event as an Option (NULL for DEL)
fn ev(events: EpollEvents, data: u64) -> Option<EpollEvent> {
    Some(EpollEvent { events, data })
}

#[test]
fn udp_socket_wrappers_talk_both_ways() {
    let (a, b) = FakeSocketHost::pair();
    let sa = UdpSocket::bind(&a, any(4000)).unwrap();
    let sb = UdpSocket::bind(&b, any(5000)).unwrap();
    assert_eq!(sa.as_raw_fd(), 3, "the first fd after stdin/stdout/stderr");
    sa.send_to(b"ping", SocketAddrV4::new(B, 5000)).unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = sb.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"ping"[..], SocketAddrV4::new(A, 4000))
    );
    sb.connect(from).unwrap();
    sb.send(b"pong").unwrap();
    assert_eq!(sa.recv(&mut buf).unwrap(), 4);
    assert_eq!(sb.peer_addr().unwrap(), from);
    assert_eq!(
        sb.local_addr().unwrap(),
        SocketAddrV4::new(B, 5000),
        "connect fixed the address"
    );
    assert_eq!(
        sa.peer_addr().unwrap_err().raw_os_error(),
        Some(Errno::NotConn.as_i32())
    );
}

#[test]
fn udp_socket_wrapper_sees_its_fd_closed_or_reused_behind_its_back() {
    // The wrapper's calls borrow the socket it looked up at bind (FdRef);
    // a close of its fd through the layer must still give EBADF, and a
    // new socket on the same fd number is the one the calls reach, as
    // with std::net over the C library.
    let (a, b) = FakeSocketHost::pair();
    let rx = UdpSocket::bind(&b, any(5000)).unwrap();
    rx.set_nonblocking(true).unwrap();
    let s = UdpSocket::bind(&a, any(4000)).unwrap();
    let other = udp(&a, 4001);
    let to = SocketAddrV4::new(B, 5000);
    s.send_to(b"one", to).unwrap();
    a.close(other).unwrap();
    s.send_to(b"two", to).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        rx.recv_from(&mut buf).unwrap(),
        (3, SocketAddrV4::new(A, 4000))
    );
    assert_eq!(
        rx.recv_from(&mut buf).unwrap(),
        (3, SocketAddrV4::new(A, 4000))
    );
    let fd = s.as_raw_fd();
    a.close(fd).unwrap();
    let ebadf = Some(Errno::BadF.as_i32());
    assert_eq!(s.send_to(b"x", to).unwrap_err().raw_os_error(), ebadf);
    assert_eq!(s.recv(&mut buf).unwrap_err().raw_os_error(), ebadf);
    let reused = udp(&a, 4002);
    assert_eq!(reused, fd, "the lowest free fd");
    // Closed before its first call: the lazy lookup fails the same way.
    let unused = UdpSocket::bind(&a, any(4003)).unwrap();
    a.close(unused.as_raw_fd()).unwrap();
    assert_eq!(unused.send_to(b"x", to).unwrap_err().raw_os_error(), ebadf);
    drop(unused);
    s.send_to(b"three", to).unwrap();
    assert_eq!(
        rx.recv_from(&mut buf).unwrap(),
        (5, SocketAddrV4::new(A, 4002)),
        "sent from the socket now behind the fd"
    );
}

#[test]
fn port_unreachable_reaches_a_connected_socket_as_econnrefused() {
    let (a, _b) = FakeSocketHost::pair();
    let s = UdpSocket::bind(&a, any(0)).unwrap();
    s.connect(SocketAddrV4::new(B, 9)).unwrap();
    s.send(b"x").unwrap();
    let err = s.recv(&mut [0u8; 4]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(err.raw_os_error(), Some(111));
    // Reported once; SO_ERROR is clear now.
    assert!(s.take_error().unwrap().is_none());
    s.send(b"y").unwrap();
    assert_eq!(s.take_error().unwrap().unwrap().raw_os_error(), Some(111));
}

#[test]
fn blocking_recv_wakes_on_arrival_and_times_out_on_so_rcvtimeo() {
    let (a, b) = FakeSocketHost::pair();
    let rx = UdpSocket::bind(&b, any(5000)).unwrap();
    let tx = UdpSocket::bind(&a, any(0)).unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        tx.send_to(b"late", SocketAddrV4::new(B, 5000)).unwrap();
        tx
    });
    let mut buf = [0u8; 8];
    let started = Instant::now();
    assert_eq!(
        rx.recv(&mut buf).unwrap(),
        4,
        "blocked until the datagram came"
    );
    assert!(started.elapsed() >= Duration::from_millis(40));
    drop(t.join().unwrap());

    rx.set_read_timeout(Some(Duration::from_millis(60)))
        .unwrap();
    assert_eq!(rx.read_timeout().unwrap(), Some(Duration::from_millis(60)));
    let started = Instant::now();
    let err = rx.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    assert!(
        started.elapsed() >= Duration::from_millis(55),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn nonblocking_calls_return_eagain() {
    let (_a, b) = FakeSocketHost::pair();
    let fd = udp(&b, 5000);
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(fd, &mut buf, MsgFlags::DONTWAIT), Err(Errno::Again));
    assert_eq!(b.fcntl(fd, F_GETFL, 0), Ok(O_RDWR));
    b.fcntl(fd, F_SETFL, O_NONBLOCK).unwrap();
    assert_eq!(b.fcntl(fd, F_GETFL, 0), Ok(O_RDWR | O_NONBLOCK));
    assert_eq!(b.recv(fd, &mut buf, MsgFlags::empty()), Err(Errno::Again));
    let nb = b.socket(AF_INET, DGRAM | SOCK_NONBLOCK, 0).unwrap();
    assert_eq!(b.recv(nb, &mut buf, MsgFlags::empty()), Err(Errno::Again));
    // A host that cannot sleep (the simulation) never blocks either.
    let sim = FakeSocketHost::layer(&b.host().udp, false);
    let fd = sim.socket(AF_INET, DGRAM, 0).unwrap();
    sim.bind(fd, any(6000)).unwrap();
    assert_eq!(sim.recv(fd, &mut buf, MsgFlags::empty()), Err(Errno::Again));
}

#[test]
fn recv_flags_peek_and_trunc_and_fionread() {
    let (a, b) = FakeSocketHost::pair();
    let rx = udp(&b, 5000);
    let tx = udp(&a, 0);
    a.sendmsg(
        tx,
        &[b"0123", b"456789"],
        Some(SocketAddrV4::new(B, 5000)),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut n = 0;
    b.ioctl(rx, FIONREAD, &mut n).unwrap();
    assert_eq!(n, 10);
    let mut small = [0u8; 4];
    assert_eq!(b.recv(rx, &mut small, MsgFlags::PEEK), Ok(4));
    assert_eq!(
        b.recv(rx, &mut small, MsgFlags::PEEK | MsgFlags::TRUNC),
        Ok(10)
    );
    let (mut p1, mut p2) = ([0u8; 3], [0u8; 3]);
    let r = b
        .recvmsg(rx, &mut [&mut p1, &mut p2], MsgFlags::empty())
        .unwrap();
    assert_eq!(
        (&p1, &p2, r.len, r.flags),
        (b"012", b"345", 6, MsgFlags::TRUNC)
    );
    let tx_port = a.getsockname(tx).unwrap().port();
    assert_eq!(r.from, Some(SocketAddrV4::new(A, tx_port)));
    assert_eq!(
        b.recv(rx, &mut small, MsgFlags::DONTWAIT),
        Err(Errno::Again)
    );
}

#[test]
fn epoll_level_triggered_reports_until_drained() {
    let (a, b) = FakeSocketHost::pair();
    let rx = udp(&b, 5000);
    let tx = udp(&a, 0);
    let ep = b.epoll_create1(0).unwrap();
    b.epoll_ctl(ep, EPOLL_CTL_ADD, rx, ev(EpollEvents::EPOLLIN, 7))
        .unwrap();
    assert_eq!(b.epoll_wait(ep, 8, 0), Ok(vec![]));
    for _ in 0..2 {
        a.sendto(
            tx,
            b"d",
            MsgFlags::empty(),
            Some(SocketAddrV4::new(B, 5000)),
        )
        .unwrap();
    }
    let got = b.epoll_wait(ep, 8, 0).unwrap();
    assert_eq!(
        got,
        vec![EpollEvent {
            events: EpollEvents::EPOLLIN,
            data: 7
        }]
    );
    // Level-triggered: still readable after reading one of two → reported
    // again without a new arrival. (Edge-triggered would report nothing.)
    b.recv(rx, &mut [0u8; 4], MsgFlags::empty()).unwrap();
    assert_eq!(b.epoll_wait(ep, 8, 0).unwrap().len(), 1);
    assert_eq!(b.epoll_wait(ep, 8, 0).unwrap().len(), 1);
    b.recv(rx, &mut [0u8; 4], MsgFlags::empty()).unwrap();
    assert_eq!(b.epoll_wait(ep, 8, 0), Ok(vec![]), "drained: nothing");
}

#[test]
fn epoll_edge_triggered_reports_only_new_arrivals() {
    let (a, b) = FakeSocketHost::pair();
    let rx = udp(&b, 5000);
    let tx = udp(&a, 0);
    let ep = b.epoll_create1(EPOLL_CLOEXEC).unwrap();
    b.epoll_ctl(
        ep,
        EPOLL_CTL_ADD,
        rx,
        ev(EpollEvents::EPOLLIN | EpollEvents::EPOLLET, 1),
    )
    .unwrap();
    let to = Some(SocketAddrV4::new(B, 5000));
    a.sendto(tx, b"1", MsgFlags::empty(), to).unwrap();
    a.sendto(tx, b"2", MsgFlags::empty(), to).unwrap();
    assert_eq!(b.epoll_wait(ep, 8, 0).unwrap().len(), 1);
    // Still readable, but no new edge: nothing. (Level-triggered would
    // report it again.)
    assert_eq!(b.epoll_wait(ep, 8, 0), Ok(vec![]));
    b.recv(rx, &mut [0u8; 4], MsgFlags::empty()).unwrap();
    assert_eq!(b.epoll_wait(ep, 8, 0), Ok(vec![]));
    // A new datagram is a new edge.
    a.sendto(tx, b"3", MsgFlags::empty(), to).unwrap();
    assert_eq!(b.epoll_wait(ep, 8, 0).unwrap().len(), 1);
}

#[test]
fn epoll_oneshot_fires_once_until_rearmed_with_mod() {
    let (a, b) = FakeSocketHost::pair();
    let rx = udp(&b, 5000);
    let tx = udp(&a, 0);
    let ep = b.epoll_create1(0).unwrap();
    b.epoll_ctl(
        ep,
        EPOLL_CTL_ADD,
        rx,
        ev(EpollEvents::EPOLLIN | EpollEvents::EPOLLONESHOT, 3),
    )
    .unwrap();
    let to = Some(SocketAddrV4::new(B, 5000));
    a.sendto(tx, b"1", MsgFlags::empty(), to).unwrap();
    assert_eq!(b.epoll_wait(ep, 8, 0).unwrap().len(), 1);
    a.sendto(tx, b"2", MsgFlags::empty(), to).unwrap();
    assert_eq!(b.epoll_wait(ep, 8, 0), Ok(vec![]), "disarmed");
    b.epoll_ctl(
        ep,
        EPOLL_CTL_MOD,
        rx,
        ev(EpollEvents::EPOLLIN | EpollEvents::EPOLLONESHOT, 4),
    )
    .unwrap();
    assert_eq!(
        b.epoll_wait(ep, 8, 0).unwrap(),
        vec![EpollEvent {
            events: EpollEvents::EPOLLIN,
            data: 4
        }]
    );
    assert_eq!(b.epoll_wait(ep, 8, 0), Ok(vec![]));
}

#[test]
fn epoll_reports_out_err_hup_and_rdhup() {
    let (a, _b) = FakeSocketHost::pair();
    let s = udp(&a, 0);
    let ep = a.epoll_create1(0).unwrap();
    // EPOLLOUT requested: a fresh socket is writable.
    a.epoll_ctl(
        ep,
        EPOLL_CTL_ADD,
        s,
        ev(EpollEvents::EPOLLOUT | EpollEvents::EPOLLRDHUP, 0),
    )
    .unwrap();
    assert_eq!(
        a.epoll_wait(ep, 8, 0).unwrap()[0].events,
        EpollEvents::EPOLLOUT
    );
    // Only EPOLLIN requested: an error is still reported (EPOLLERR is
    // always in the set).
    a.epoll_ctl(ep, EPOLL_CTL_MOD, s, ev(EpollEvents::EPOLLIN, 0))
        .unwrap();
    a.connect(s, SocketAddrV4::new(B, 9)).unwrap();
    a.send(s, b"x", MsgFlags::empty()).unwrap();
    assert_eq!(
        a.epoll_wait(ep, 8, 0).unwrap()[0].events,
        EpollEvents::EPOLLERR
    );
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_ERROR), Ok(111));
    a.epoll_ctl(
        ep,
        EPOLL_CTL_MOD,
        s,
        ev(EpollEvents::EPOLLIN | EpollEvents::EPOLLRDHUP, 0),
    )
    .unwrap();
    a.shutdown(s, 2).unwrap();
    let e = a.epoll_wait(ep, 8, 0).unwrap()[0].events;
    assert_eq!(
        e,
        EpollEvents::EPOLLIN | EpollEvents::EPOLLRDHUP | EpollEvents::EPOLLHUP
    );
}

#[test]
fn epoll_wait_blocks_until_a_wakeup_from_another_thread() {
    let (a, b) = FakeSocketHost::pair();
    let rx = udp(&b, 5000);
    let tx = udp(&a, 0);
    let ep = b.epoll_create1(0).unwrap();
    b.epoll_ctl(ep, EPOLL_CTL_ADD, rx, ev(EpollEvents::EPOLLIN, 9))
        .unwrap();
    let a2 = Arc::clone(&a);
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        a2.sendto(
            tx,
            b"w",
            MsgFlags::empty(),
            Some(SocketAddrV4::new(B, 5000)),
        )
        .unwrap();
    });
    let got = b.epoll_wait(ep, 8, -1).unwrap();
    assert_eq!(got[0].data, 9);
    t.join().unwrap();
    // A timeout with nothing ready returns empty after the time.
    b.recv(rx, &mut [0u8; 4], MsgFlags::empty()).unwrap();
    let started = Instant::now();
    assert_eq!(b.epoll_wait(ep, 8, 30), Ok(vec![]));
    assert!(started.elapsed() >= Duration::from_millis(25));
}

#[test]
fn close_removes_the_socket_from_epoll_and_frees_the_lowest_fd() {
    let (a, _b) = FakeSocketHost::pair();
    let s1 = udp(&a, 1000);
    let s2 = udp(&a, 1001);
    let ep = a.epoll_create1(0).unwrap();
    a.epoll_ctl(ep, EPOLL_CTL_ADD, s1, ev(EpollEvents::EPOLLOUT, 1))
        .unwrap();
    a.epoll_ctl(ep, EPOLL_CTL_ADD, s2, ev(EpollEvents::EPOLLOUT, 2))
        .unwrap();
    a.close(s1).unwrap();
    let got = a.epoll_wait(ep, 8, 0).unwrap();
    assert_eq!(got.iter().map(|e| e.data).collect::<Vec<_>>(), vec![2]);
    assert_eq!(a.epoll_ctl(ep, EPOLL_CTL_DEL, s1, None), Err(Errno::BadF));
    // The port is free again and the new socket takes fd s1.
    assert_eq!(udp(&a, 1000), s1);
    assert_eq!(a.close(s1), Ok(()));
    assert_eq!(a.close(s1), Err(Errno::BadF));
}

#[test]
fn emfile_at_rlimit_nofile_and_enfile_at_file_max() {
    let (a, _b) = FakeSocketHost::pair();
    assert_eq!(a.rlimit_nofile(), 1024);
    a.set_rlimit_nofile(6).unwrap();
    let fds: Vec<Fd> = (0..3)
        .map(|_| a.socket(AF_INET, DGRAM, 0).unwrap())
        .collect();
    assert_eq!(fds, vec![3, 4, 5]);
    assert_eq!(a.socket(AF_INET, DGRAM, 0), Err(Errno::MFile));
    assert_eq!(a.epoll_create1(0), Err(Errno::MFile));
    a.close(4).unwrap();
    assert_eq!(a.socket(AF_INET, DGRAM, 0), Ok(4));
    a.set_rlimit_nofile(1024).unwrap();
    assert_eq!(a.set_rlimit_nofile(NR_OPEN_DEFAULT + 1), Err(Errno::Perm));
    // fs.nr_open is the ceiling, as setrlimit() finds it.
    a.host().udp.sysctl.set("fs.nr_open", "2048").unwrap();
    assert_eq!(a.set_rlimit_nofile(2049), Err(Errno::Perm));
    a.set_rlimit_nofile(2048).unwrap();
    a.host().udp.sysctl.set("fs.nr_open", "1048576").unwrap();
    a.set_rlimit_nofile(1024).unwrap();
    // fs.file-max counts every open file of the host (3 stdio + 3 sockets).
    assert_eq!(a.nr_files(), 6);
    a.host().udp.sysctl.set("fs.file-max", "7").unwrap();
    assert!(a.socket(AF_INET, DGRAM, 0).is_ok());
    assert_eq!(a.socket(AF_INET, DGRAM, 0), Err(Errno::NFile));
}

#[test]
fn socket_creation_errors() {
    let (a, _b) = FakeSocketHost::pair();
    assert_eq!(a.socket(10, DGRAM, 0), Err(Errno::AfNoSupport), "AF_INET6");
    assert_eq!(
        a.socket(AF_INET, 11, 0),
        Err(Errno::Inval),
        "type >= SOCK_MAX"
    );
    assert_eq!(
        a.socket(AF_INET, DGRAM | 0x100, 0),
        Err(Errno::Inval),
        "unknown type flag"
    );
    assert_eq!(
        a.socket(AF_INET, DGRAM, 6),
        Err(Errno::ProtoNoSupport),
        "TCP over SOCK_DGRAM"
    );
    assert_eq!(a.socket(AF_INET, DGRAM, 256), Err(Errno::Inval));
    assert_eq!(
        a.socket(AF_INET, SockType::SeqPacket as i32, 0),
        Err(Errno::SockTNoSupport)
    );
    // No TCP registered in this fake host: SOCK_STREAM is not supported,
    // and the std-like wrappers say so.
    assert_eq!(a.socket(AF_INET, STREAM, 0), Err(Errno::SockTNoSupport));
    let err = TcpListener::bind(&a, any(80)).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::SockTNoSupport.as_i32()));
    assert_eq!(a.socket(AF_INET, DGRAM, 17).map(|fd| fd >= 3), Ok(true));
}

#[test]
fn every_call_checks_its_fd() {
    let (a, _b) = FakeSocketHost::pair();
    let mut buf = [0u8; 4];
    let ep = a.epoll_create1(0).unwrap();
    for bad in [-1, 99] {
        assert_eq!(a.bind(bad, any(1)), Err(Errno::BadF));
        assert_eq!(a.recv(bad, &mut buf, MsgFlags::empty()), Err(Errno::BadF));
        assert_eq!(a.close(bad), Err(Errno::BadF));
        assert_eq!(a.fcntl(bad, F_GETFL, 0), Err(Errno::BadF));
        assert_eq!(a.epoll_wait(bad, 1, 0), Err(Errno::BadF));
    }
    // stdin and an epoll fd are not sockets.
    assert_eq!(a.bind(0, any(1)), Err(Errno::NotSock));
    assert_eq!(a.send(ep, b"x", MsgFlags::empty()), Err(Errno::NotSock));
    assert_eq!(a.getsockname(ep), Err(Errno::NotSock));
    assert_eq!(
        a.setsockopt_int(ep, SOL_SOCKET, SO_RCVBUF, 1),
        Err(Errno::NotSock)
    );
    let mut n = 0;
    assert_eq!(a.ioctl(ep, FIONREAD, &mut n), Err(Errno::NoTty));
}

#[test]
fn udp_call_errors() {
    let (a, _b) = FakeSocketHost::pair();
    let s = a.socket(AF_INET, DGRAM, 0).unwrap();
    let t = a.socket(AF_INET, DGRAM, 0).unwrap();
    // Wrong socket type for the call.
    assert_eq!(a.listen(s, 5), Err(Errno::OpNotSupp));
    assert_eq!(a.accept(s), Err(Errno::OpNotSupp));
    assert_eq!(a.send(s, b"x", MsgFlags::OOB), Err(Errno::OpNotSupp));
    assert_eq!(a.accept4(s, 0x1), Err(Errno::Inval));
    // Addresses.
    assert_eq!(
        a.bind(s, SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 1)),
        Err(Errno::AddrNotAvail)
    );
    a.bind(s, any(7000)).unwrap();
    assert_eq!(a.bind(s, any(7001)), Err(Errno::Inval), "already bound");
    assert_eq!(a.bind(t, any(7000)), Err(Errno::AddrInUse));
    assert_eq!(
        a.bind_raw(t, &sockaddr_in_bytes(any(7002))[..8]),
        Err(Errno::Inval),
        "short sockaddr"
    );
    assert_eq!(
        a.bind_raw(t, &[0u8; 129]),
        Err(Errno::Inval),
        "longer than sockaddr_storage"
    );
    let mut inet6 = sockaddr_in_bytes(any(7002));
    inet6[..2].copy_from_slice(&10u16.to_ne_bytes());
    assert_eq!(a.bind_raw(t, &inet6), Err(Errno::AfNoSupport));
    let mut unspec_addr = sockaddr_in_bytes(SocketAddrV4::new(A, 7002));
    unspec_addr[..2].copy_from_slice(&0u16.to_ne_bytes());
    assert_eq!(
        a.bind_raw(t, &unspec_addr),
        Err(Errno::AfNoSupport),
        "AF_UNSPEC only with INADDR_ANY"
    );
    unspec_addr[4..8].copy_from_slice(&[0; 4]);
    a.bind_raw(t, &unspec_addr).unwrap();
    assert_eq!(a.getsockname(t), Ok(any(7002)));
    // Sending.
    assert_eq!(a.send(s, b"x", MsgFlags::empty()), Err(Errno::DestAddrReq));
    assert_eq!(
        a.sendto(
            s,
            &vec![0; 65_508],
            MsgFlags::empty(),
            Some(SocketAddrV4::new(B, 9))
        ),
        Err(Errno::MsgSize)
    );
    assert_eq!(
        a.sendto(
            s,
            &vec![0; 65_507],
            MsgFlags::empty(),
            Some(SocketAddrV4::new(B, 9))
        ),
        Ok(65_507)
    );
    assert_eq!(
        a.sendto(
            s,
            b"x",
            MsgFlags::empty(),
            Some(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 9))
        ),
        Err(Errno::NetUnreach)
    );
    assert_eq!(
        a.sendto(
            s,
            b"x",
            MsgFlags::empty(),
            Some(SocketAddrV4::new(Ipv4Addr::BROADCAST, 9))
        ),
        Err(Errno::Acces)
    );
    a.setsockopt_int(s, SOL_SOCKET, SO_BROADCAST, 1).unwrap();
    assert_eq!(
        a.sendto(
            s,
            b"x",
            MsgFlags::empty(),
            Some(SocketAddrV4::new(Ipv4Addr::BROADCAST, 9))
        ),
        Ok(1)
    );
    // Peers and shutdown.
    assert_eq!(a.getpeername(s), Err(Errno::NotConn));
    assert_eq!(a.shutdown(s, 7), Err(Errno::Inval));
    assert_eq!(a.shutdown(s, 1), Err(Errno::NotConn));
    assert_eq!(
        a.sendto(s, b"x", MsgFlags::empty(), Some(SocketAddrV4::new(B, 9))),
        Err(Errno::Pipe)
    );
    // connect then AF_UNSPEC disconnect.
    a.connect(t, SocketAddrV4::new(B, 53)).unwrap();
    assert_eq!(a.getpeername(t), Ok(SocketAddrV4::new(B, 53)));
    a.connect_raw(t, &0u16.to_ne_bytes()).unwrap();
    assert_eq!(a.getpeername(t), Err(Errno::NotConn));
    assert_eq!(a.connect_raw(t, &inet6), Err(Errno::AfNoSupport));
    // ioctl and fcntl.
    let mut n = 0;
    assert_eq!(a.ioctl(s, 0x1234, &mut n), Err(Errno::NoTty));
    assert_eq!(a.fcntl(s, 99, 0), Err(Errno::Inval));
}

#[test]
fn epoll_call_errors() {
    let (a, _b) = FakeSocketHost::pair();
    let s = udp(&a, 0);
    assert_eq!(a.epoll_create1(1), Err(Errno::Inval));
    let ep = a.epoll_create1(0).unwrap();
    let out = ev(EpollEvents::EPOLLOUT, 0);
    assert_eq!(
        a.epoll_ctl(s, EPOLL_CTL_ADD, s, out),
        Err(Errno::Inval),
        "epfd is not an epoll fd"
    );
    assert_eq!(
        a.epoll_ctl(ep, EPOLL_CTL_ADD, ep, out),
        Err(Errno::Perm),
        "epoll in itself"
    );
    assert_eq!(
        a.epoll_ctl(ep, EPOLL_CTL_ADD, 0, out),
        Err(Errno::Perm),
        "stdin cannot be polled"
    );
    assert_eq!(a.epoll_ctl(ep, EPOLL_CTL_MOD, s, out), Err(Errno::NoEnt));
    assert_eq!(a.epoll_ctl(ep, EPOLL_CTL_DEL, s, None), Err(Errno::NoEnt));
    a.epoll_ctl(ep, EPOLL_CTL_ADD, s, out).unwrap();
    assert_eq!(a.epoll_ctl(ep, EPOLL_CTL_ADD, s, out), Err(Errno::Exist));
    assert_eq!(a.epoll_ctl(ep, 9, s, out), Err(Errno::Inval));
    assert_eq!(a.epoll_wait(ep, 0, 0), Err(Errno::Inval));
    assert_eq!(a.epoll_wait(ep, -1, 0), Err(Errno::Inval));
    assert_eq!(a.epoll_wait(s, 1, 0), Err(Errno::Inval));
    a.epoll_ctl(ep, EPOLL_CTL_DEL, s, None).unwrap();
    assert_eq!(a.epoll_wait(ep, 4, 0), Ok(vec![]));
}

#[test]
fn socket_options_follow_sk_setsockopt() {
    let (a, _b) = FakeSocketHost::pair();
    let s = a.socket(AF_INET, DGRAM, 0).unwrap();
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_TYPE), Ok(2));
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_PROTOCOL), Ok(17));
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_DOMAIN), Ok(2));
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_RCVBUF), Ok(212_992));
    // Doubled.
    a.setsockopt_int(s, SOL_SOCKET, SO_RCVBUF, 10_000).unwrap();
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_RCVBUF), Ok(20_000));
    // Capped by rmem_max, then doubled.
    a.setsockopt_int(s, SOL_SOCKET, SO_RCVBUF, 1 << 30).unwrap();
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_RCVBUF), Ok(2 * 212_992));
    // Negative reads as huge → the cap.
    a.setsockopt_int(s, SOL_SOCKET, SO_RCVBUF, -1).unwrap();
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_RCVBUF), Ok(2 * 212_992));
    // Floors.
    a.setsockopt_int(s, SOL_SOCKET, SO_RCVBUF, 1).unwrap();
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_RCVBUF), Ok(2304));
    a.setsockopt_int(s, SOL_SOCKET, SO_SNDBUF, 1).unwrap();
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_SNDBUF), Ok(4608));
    a.host()
        .udp
        .sysctl
        .set("net.core.wmem_max", "1000000")
        .unwrap();
    a.setsockopt_int(s, SOL_SOCKET, SO_SNDBUF, 300_000).unwrap();
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, SO_SNDBUF), Ok(600_000));
    for opt in [
        SO_REUSEADDR,
        SO_REUSEPORT,
        SO_KEEPALIVE,
        SO_BROADCAST,
        SO_NO_CHECK,
    ] {
        assert_eq!(a.getsockopt_int(s, SOL_SOCKET, opt), Ok(0));
        a.setsockopt_int(s, SOL_SOCKET, opt, 5).unwrap();
        assert_eq!(a.getsockopt_int(s, SOL_SOCKET, opt), Ok(1), "option {opt}");
    }
    // SO_LINGER round trip.
    let mut linger = [0u8; 8];
    linger[..4].copy_from_slice(&1i32.to_ne_bytes());
    linger[4..].copy_from_slice(&7i32.to_ne_bytes());
    a.setsockopt(s, SOL_SOCKET, SO_LINGER, &linger).unwrap();
    let mut out = [0u8; 8];
    assert_eq!(a.getsockopt(s, SOL_SOCKET, SO_LINGER, &mut out), Ok(8));
    assert_eq!(out, linger);
    assert_eq!(
        a.setsockopt(s, SOL_SOCKET, SO_LINGER, &linger[..4]),
        Err(Errno::Inval)
    );
    // Timeouts: a timeval; usec out of range is rejected.
    let mut tv = [0u8; 16];
    tv[..8].copy_from_slice(&2i64.to_ne_bytes());
    tv[8..].copy_from_slice(&500_000i64.to_ne_bytes());
    a.setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv).unwrap();
    let mut got = [0u8; 16];
    a.getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &mut got).unwrap();
    assert_eq!(got, tv);
    tv[8..].copy_from_slice(&1_000_000i64.to_ne_bytes());
    assert_eq!(
        a.setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv),
        Err(Errno::Inval)
    );
    // Short option values, unknown and read-only options, other levels.
    assert_eq!(
        a.setsockopt(s, SOL_SOCKET, SO_RCVBUF, &[1, 2]),
        Err(Errno::Inval)
    );
    assert_eq!(
        a.setsockopt_int(s, SOL_SOCKET, 999, 1),
        Err(Errno::NoProtoOpt)
    );
    assert_eq!(
        a.setsockopt_int(s, SOL_SOCKET, SO_TYPE, 1),
        Err(Errno::NoProtoOpt)
    );
    assert_eq!(a.getsockopt_int(s, SOL_SOCKET, 999), Err(Errno::NoProtoOpt));
    assert_eq!(a.setsockopt_int(s, SOL_UDP, 1, 1), Err(Errno::NoProtoOpt));
    // A getsockopt buffer shorter than the value gets the first bytes.
    let mut two = [0u8; 2];
    assert_eq!(a.getsockopt(s, SOL_SOCKET, SO_TYPE, &mut two), Ok(2));
}

#[test]
fn so_rcvbuf_limits_the_queue_and_drops_are_counted() {
    let (a, b) = FakeSocketHost::pair();
    let rx = udp(&b, 5000);
    let tx = udp(&a, 0);
    b.setsockopt_int(rx, SOL_SOCKET, SO_RCVBUF, 1).unwrap(); // 2304 bytes
    for _ in 0..10 {
        a.sendto(
            tx,
            &[0u8; 64],
            MsgFlags::empty(),
            Some(SocketAddrV4::new(B, 5000)),
        )
        .unwrap();
    }
    let mibs = &b.host().udp.mibs;
    let dropped = mibs.get(UdpMib::RcvbufErrors);
    assert!(dropped >= 8, "{dropped}");
    assert_eq!(mibs.get(UdpMib::InErrors), dropped);
    let mut got = 0;
    while b.recv(rx, &mut [0u8; 64], MsgFlags::DONTWAIT).is_ok() {
        got += 1;
    }
    assert_eq!(got + dropped, 10);
}

#[test]
fn so_reuseport_through_the_socket_calls() {
    let (a, b) = FakeSocketHost::pair();
    let group: Vec<Fd> = (0..2)
        .map(|_| {
            let fd = b.socket(AF_INET, DGRAM, 0).unwrap();
            b.setsockopt_int(fd, SOL_SOCKET, SO_REUSEPORT, 1).unwrap();
            b.bind(fd, any(7000)).unwrap();
            fd
        })
        .collect();
    for port in 20_000..20_040 {
        let tx = udp(&a, port);
        a.sendto(
            tx,
            b"f",
            MsgFlags::empty(),
            Some(SocketAddrV4::new(B, 7000)),
        )
        .unwrap();
        a.close(tx).unwrap();
    }
    let counts: Vec<i32> = group
        .iter()
        .map(|&fd| {
            let mut n = 0;
            while b.recv(fd, &mut [0u8; 4], MsgFlags::DONTWAIT).is_ok() {
                n += 1;
            }
            n
        })
        .collect();
    assert_eq!(counts.iter().sum::<i32>(), 40);
    assert!(counts.iter().all(|&c| c > 5), "{counts:?}");
}

/// `poll_add` is one-shot and pushed: nothing runs while the socket is not
/// ready, the first matching wake-up runs the callback once with the mask,
/// a socket already ready completes at once, a non-matching wake-up
/// (writable while waiting to read) does nothing, and bad fds are refused.
#[test]
fn poll_add_fires_once_on_the_first_matching_wakeup() {
    use std::sync::Mutex;
    let (a, b) = FakeSocketHost::pair();
    let rx = udp(&b, 5000);
    let tx = udp(&a, 0);
    let fired = Arc::new(Mutex::new(Vec::new()));
    let f = Arc::clone(&fired);
    b.poll_add(rx, EpollEvents::EPOLLIN.bits(), move |mask| {
        f.lock().unwrap().push(mask);
    })
    .unwrap();
    // Write space (EPOLLOUT) wakes the queue too, but is not what it waits
    // for.
    b.setsockopt_int(rx, SOL_SOCKET, SO_SNDBUF, 65536).unwrap();
    assert!(fired.lock().unwrap().is_empty());
    let to = Some(SocketAddrV4::new(B, 5000));
    a.sendto(tx, b"one", MsgFlags::empty(), to).unwrap();
    assert_eq!(*fired.lock().unwrap(), vec![EpollEvents::EPOLLIN.bits()]);
    a.sendto(tx, b"two", MsgFlags::empty(), to).unwrap();
    assert_eq!(fired.lock().unwrap().len(), 1, "one-shot");
    // Ready now: completes inline.
    let f = Arc::clone(&fired);
    b.poll_add(rx, EpollEvents::EPOLLIN.bits(), move |mask| {
        f.lock().unwrap().push(mask);
    })
    .unwrap();
    assert_eq!(fired.lock().unwrap().len(), 2);
    assert_eq!(b.poll_add(99, 1, |_| {}), Err(Errno::BadF));
    assert_eq!(b.poll_add(0, 1, |_| {}), Err(Errno::NotSock));
}
