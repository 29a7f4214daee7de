//! UDP between two hosts joined back to back by the fake IP layer.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use netcore::{Errno, IcmpMib, IpSummed, UdpMib};
use udp::testutil::{FakeUdpCtx, FakeUdpHost};
use udp::{
    POLLERR, POLLIN, POLLOUT, UDP_MAX_PAYLOAD, UdpSock, UdpState, inet_bind, ip4_datagram_connect,
    proc_net_udp, ss_udp, udp_disconnect, udp_err, udp_lib_close, udp_recvmsg, udp_sendmsg,
    udp_shutdown,
};

fn any(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
}

struct Pair {
    a: Arc<FakeUdpHost>,
    b: Arc<FakeUdpHost>,
    ca: FakeUdpCtx,
    cb: FakeUdpCtx,
}

fn pair() -> Pair {
    let (a, b) = FakeUdpHost::pair();
    let (ca, cb) = (a.ctx(), b.ctx());
    Pair { a, b, ca, cb }
}

fn recv(ctx: &mut FakeUdpCtx, sk: &UdpSock) -> Result<(Vec<u8>, SocketAddrV4), Errno> {
    let mut buf = vec![0u8; 70_000];
    let r = udp_recvmsg(ctx, sk, &mut buf, false, true)?;
    buf.truncate(r.copied);
    Ok((buf, r.from))
}

#[test]
fn datagrams_flow_both_ways_unconnected() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.ca, &sa, any(4000)).unwrap();
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    let to_b = SocketAddrV4::new(p.b.addr, 5000);
    let to_a = SocketAddrV4::new(p.a.addr, 4000);
    assert_eq!(udp_sendmsg(&mut p.ca, &sa, b"hello", Some(to_b)), Ok(5));
    assert_eq!(recv(&mut p.cb, &sb).unwrap(), (b"hello".to_vec(), to_a));
    assert_eq!(udp_sendmsg(&mut p.cb, &sb, b"world!", Some(to_a)), Ok(6));
    assert_eq!(recv(&mut p.ca, &sa).unwrap(), (b"world!".to_vec(), to_b));
    assert_eq!(recv(&mut p.ca, &sa), Err(Errno::Again));
    assert_eq!(p.a.mibs.get(UdpMib::OutDatagrams), 1);
    assert_eq!(p.b.mibs.get(UdpMib::InDatagrams), 1);
    assert_eq!(p.a.mibs.get(UdpMib::InDatagrams), 1);
    assert_eq!(sb.rmem_alloc(), 0);
}

#[test]
fn connected_sockets_send_without_address_and_filter_by_peer() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    let other = UdpSock::new(3, &p.a.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    // Unconnected with no address: EDESTADDRREQ.
    assert_eq!(
        udp_sendmsg(&mut p.ca, &sa, b"x", None),
        Err(Errno::DestAddrReq)
    );
    ip4_datagram_connect(&mut p.ca, &sa, SocketAddrV4::new(p.b.addr, 5000)).unwrap();
    assert_eq!(sa.state(), UdpState::Established);
    // Autobound to an ephemeral port, source address from the route.
    let local = sa.local_addr();
    assert_eq!(*local.ip(), p.a.addr);
    let (lo, hi) = p.a.sysctl.ip_local_port_range();
    assert!((lo..=hi).contains(&i64::from(local.port())), "{local}");
    assert_eq!(sa.peer_addr(), Ok(SocketAddrV4::new(p.b.addr, 5000)));
    assert_eq!(udp_sendmsg(&mut p.ca, &sa, b"c1", None), Ok(2));
    let (data, from) = recv(&mut p.cb, &sb).unwrap();
    assert_eq!((data.as_slice(), from), (&b"c1"[..], local));
    // B answers; a datagram from another port of A does not reach sa.
    assert_eq!(udp_sendmsg(&mut p.cb, &sb, b"r1", Some(local)), Ok(2));
    assert_eq!(recv(&mut p.ca, &sa).unwrap().0, b"r1");
    inet_bind(&mut p.ca, &other, any(6000)).unwrap();
    assert_eq!(udp_sendmsg(&mut p.ca, &other, b"stray", Some(local)), Ok(5));
    assert_eq!(recv(&mut p.ca, &sa), Err(Errno::Again));
    // Disconnect: the ephemeral port was not chosen by bind, so it goes.
    udp_disconnect(&mut p.ca, &sa);
    assert_eq!(sa.peer_addr(), Err(Errno::NotConn));
    assert_eq!(sa.local_addr(), any(0));
}

#[test]
fn port_unreachable_surfaces_as_econnrefused_on_a_connected_socket() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    ip4_datagram_connect(&mut p.ca, &sa, SocketAddrV4::new(p.b.addr, 9)).unwrap();
    assert_eq!(udp_sendmsg(&mut p.ca, &sa, b"anyone?", None), Ok(7));
    assert_eq!(p.b.mibs.get(UdpMib::NoPorts), 1);
    assert_ne!(sa.poll() & POLLERR, 0);
    assert_eq!(recv(&mut p.ca, &sa), Err(Errno::ConnRefused));
    // Reported once.
    assert_eq!(recv(&mut p.ca, &sa), Err(Errno::Again));
    // The next send also sees a new error first.
    assert_eq!(udp_sendmsg(&mut p.ca, &sa, b"again", None), Ok(5));
    assert_eq!(
        udp_sendmsg(&mut p.ca, &sa, b"third", None),
        Err(Errno::ConnRefused)
    );
    assert_eq!(p.b.mibs.get(UdpMib::NoPorts), 2);

    // An unconnected socket is not told (no IP_RECVERR).
    let su = UdpSock::new(2, &p.a.sysctl);
    assert_eq!(
        udp_sendmsg(&mut p.ca, &su, b"x", Some(SocketAddrV4::new(p.b.addr, 9))),
        Ok(1)
    );
    assert_eq!(su.poll() & POLLERR, 0);
    assert_eq!(recv(&mut p.ca, &su), Err(Errno::Again));
}

#[test]
fn icmp_errors_for_unknown_sockets_count_icmp_in_errors() {
    let mut p = pair();
    let mut q = [0u8; 28];
    q[0] = 0x45;
    q[9] = 17;
    q[12..16].copy_from_slice(&p.a.addr.octets());
    q[16..20].copy_from_slice(&p.b.addr.octets());
    q[20..22].copy_from_slice(&4444u16.to_be_bytes());
    q[22..24].copy_from_slice(&9u16.to_be_bytes());
    assert_eq!(
        udp_err(&mut p.ca, 3, 3, 0, std::net::Ipv4Addr::UNSPECIFIED, &q),
        Err(Errno::NoEnt)
    );
    assert_eq!(p.a.mibs.get(IcmpMib::InErrors), 1);
    assert_eq!(
        udp_err(
            &mut p.ca,
            3,
            3,
            0,
            std::net::Ipv4Addr::UNSPECIFIED,
            &q[..22]
        ),
        Err(Errno::Inval)
    );
}

#[test]
fn frag_needed_and_other_icmp_errors_map_like_linux() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    ip4_datagram_connect(&mut p.ca, &sa, SocketAddrV4::new(p.b.addr, 7)).unwrap();
    let port = sa.local_addr().port();
    let mut q = [0u8; 28];
    q[0] = 0x45;
    q[9] = 17;
    q[12..16].copy_from_slice(&p.a.addr.octets());
    q[16..20].copy_from_slice(&p.b.addr.octets());
    q[20..22].copy_from_slice(&port.to_be_bytes());
    q[22..24].copy_from_slice(&7u16.to_be_bytes());
    // Frag needed: EMSGSIZE.
    udp_err(&mut p.ca, 3, 4, 1400, std::net::Ipv4Addr::UNSPECIFIED, &q).unwrap();
    assert_eq!(recv(&mut p.ca, &sa), Err(Errno::MsgSize));
    // Host unreachable is soft: not reported without IP_RECVERR.
    udp_err(&mut p.ca, 3, 1, 0, std::net::Ipv4Addr::UNSPECIFIED, &q).unwrap();
    assert_eq!(recv(&mut p.ca, &sa), Err(Errno::Again));
    // Parameter problem: EPROTO. Source quench: ignored.
    udp_err(&mut p.ca, 12, 0, 0, std::net::Ipv4Addr::UNSPECIFIED, &q).unwrap();
    assert_eq!(sa.sock_error(), Some(Errno::Proto));
    udp_err(&mut p.ca, 4, 0, 0, std::net::Ipv4Addr::UNSPECIFIED, &q).unwrap();
    assert_eq!(sa.sock_error(), None);
}

#[test]
fn a_full_receive_queue_drops_and_counts() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    assert_eq!(sb.rcvbuf(), 212_992, "rmem_default");
    // Room for a little more than two datagrams' truesize.
    let to = SocketAddrV4::new(p.b.addr, 5000);
    udp_sendmsg(&mut p.ca, &sa, &[1u8; 64], Some(to)).unwrap();
    let truesize = sb.rmem_alloc();
    assert!(truesize > 64);
    sb.set_rcvbuf(i32::try_from(truesize * 2 + truesize / 2).unwrap());
    for i in 0..9u8 {
        udp_sendmsg(&mut p.ca, &sa, &[i; 64], Some(to)).unwrap();
    }
    // Queued while rmem ≤ rcvbuf: the 1st, 2nd, 3rd fit, then drops.
    assert_eq!(sb.rx_queue_len(), 3);
    assert_eq!(p.b.mibs.get(UdpMib::RcvbufErrors), 7);
    assert_eq!(p.b.mibs.get(UdpMib::InErrors), 7);
    assert_eq!(sb.drops(), 7);
    assert_eq!(sb.rmem_alloc(), truesize * 3);
    // Reading frees room again.
    for _ in 0..3 {
        recv(&mut p.cb, &sb).unwrap();
    }
    assert_eq!(sb.rmem_alloc(), 0);
    udp_sendmsg(&mut p.ca, &sa, &[9; 64], Some(to)).unwrap();
    assert_eq!(sb.rx_queue_len(), 1);
    // A buffer smaller than one datagram still takes one ("always allow
    // at least one packet").
    sb.set_rcvbuf(1);
    let before = sb.rx_queue_len();
    recv(&mut p.cb, &sb).unwrap();
    udp_sendmsg(&mut p.ca, &sa, &[1; 64], Some(to)).unwrap();
    udp_sendmsg(&mut p.ca, &sa, &[2; 64], Some(to)).unwrap();
    assert_eq!((before, sb.rx_queue_len()), (1, 1));
}

#[test]
fn so_reuseport_spreads_flows_by_hash_and_keeps_each_flow_on_one_socket() {
    let mut p = pair();
    let group: Vec<_> = (0..4)
        .map(|i| {
            let s = UdpSock::new(10 + i, &p.b.sysctl);
            s.set_reuseport(true);
            inet_bind(&mut p.cb, &s, any(7000)).unwrap();
            s
        })
        .collect();
    // A fifth socket without SO_REUSEPORT cannot join.
    let loner = UdpSock::new(20, &p.b.sysctl);
    assert_eq!(
        inet_bind(&mut p.cb, &loner, any(7000)),
        Err(Errno::AddrInUse)
    );
    let to = SocketAddrV4::new(p.b.addr, 7000);
    let mut senders = Vec::new();
    for i in 0..64u16 {
        let s = UdpSock::new(100 + u64::from(i), &p.a.sysctl);
        inet_bind(&mut p.ca, &s, any(20_000 + i)).unwrap();
        senders.push(s);
    }
    for round in 0..2 {
        for s in &senders {
            udp_sendmsg(&mut p.ca, s, &[round], Some(to)).unwrap();
        }
    }
    let counts: Vec<usize> = group.iter().map(|s| s.rx_queue_len()).collect();
    assert_eq!(counts.iter().sum::<usize>(), 128);
    assert!(
        counts.iter().all(|&c| c >= 8),
        "every member gets flows: {counts:?}"
    );
    // Both datagrams of each flow went to the same socket.
    for s in &group {
        let mut from = Vec::new();
        while let Ok((_, f)) = recv(&mut p.cb, s) {
            from.push(f.port());
        }
        from.sort_unstable();
        assert!(
            from.chunks(2).all(|c| c.len() == 2 && c[0] == c[1]),
            "{from:?}"
        );
    }
}

#[test]
fn so_reuseaddr_lets_sockets_share_a_port_and_the_newest_gets_unicast() {
    let mut p = pair();
    let s1 = UdpSock::new(1, &p.b.sysctl);
    let s2 = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &s1, any(8000)).unwrap();
    assert_eq!(inet_bind(&mut p.cb, &s2, any(8000)), Err(Errno::AddrInUse));
    // A specific address overlaps the wildcard too.
    assert_eq!(
        inet_bind(&mut p.cb, &s2, SocketAddrV4::new(p.b.addr, 8000)),
        Err(Errno::AddrInUse)
    );
    udp_lib_close(&mut p.cb, &s1);
    let s1 = UdpSock::new(3, &p.b.sysctl);
    s1.set_reuse(true);
    s2.set_reuse(true);
    inet_bind(&mut p.cb, &s1, any(8000)).unwrap();
    inet_bind(&mut p.cb, &s2, any(8000)).unwrap();
    let sa = UdpSock::new(4, &p.a.sysctl);
    udp_sendmsg(
        &mut p.ca,
        &sa,
        b"u",
        Some(SocketAddrV4::new(p.b.addr, 8000)),
    )
    .unwrap();
    assert_eq!((s1.rx_queue_len(), s2.rx_queue_len()), (0, 1));
}

#[test]
fn lookup_prefers_connected_then_bound_address_then_wildcard() {
    let mut p = pair();
    let wild = UdpSock::new(1, &p.b.sysctl);
    let bound = UdpSock::new(2, &p.b.sysctl);
    let conn = UdpSock::new(3, &p.b.sysctl);
    for s in [&wild, &bound, &conn] {
        s.set_reuse(true);
    }
    inet_bind(&mut p.cb, &wild, any(9000)).unwrap();
    inet_bind(&mut p.cb, &bound, SocketAddrV4::new(p.b.addr, 9000)).unwrap();
    inet_bind(&mut p.cb, &conn, any(9000)).unwrap();
    ip4_datagram_connect(&mut p.cb, &conn, SocketAddrV4::new(p.a.addr, 1111)).unwrap();
    let to = SocketAddrV4::new(p.b.addr, 9000);
    let from_1111 = UdpSock::new(10, &p.a.sysctl);
    inet_bind(&mut p.ca, &from_1111, any(1111)).unwrap();
    let from_2222 = UdpSock::new(11, &p.a.sysctl);
    inet_bind(&mut p.ca, &from_2222, any(2222)).unwrap();
    udp_sendmsg(&mut p.ca, &from_1111, b"1", Some(to)).unwrap();
    udp_sendmsg(&mut p.ca, &from_2222, b"2", Some(to)).unwrap();
    assert_eq!(recv(&mut p.cb, &conn).unwrap().0, b"1");
    assert_eq!(recv(&mut p.cb, &bound).unwrap().0, b"2");
    udp_lib_close(&mut p.cb, &bound);
    udp_sendmsg(&mut p.ca, &from_2222, b"3", Some(to)).unwrap();
    assert_eq!(recv(&mut p.cb, &wild).unwrap().0, b"3");
}

#[test]
fn bind_errors_follow_inet_bind() {
    let mut p = pair();
    let s = UdpSock::new(1, &p.a.sysctl);
    assert_eq!(
        inet_bind(
            &mut p.ca,
            &s,
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 9, 9), 1)
        ),
        Err(Errno::AddrNotAvail)
    );
    inet_bind(&mut p.ca, &s, SocketAddrV4::new(p.a.addr, 0)).unwrap();
    let port = s.local_addr().port();
    assert!((32768..=60999).contains(&port));
    assert_eq!(inet_bind(&mut p.ca, &s, any(5)), Err(Errno::Inval));
    // The ephemeral range can run out.
    p.a.sysctl
        .set("net.ipv4.ip_local_port_range", "40000 40001")
        .unwrap();
    let x = UdpSock::new(2, &p.a.sysctl);
    let y = UdpSock::new(3, &p.a.sysctl);
    let z = UdpSock::new(4, &p.a.sysctl);
    inet_bind(&mut p.ca, &x, any(0)).unwrap();
    inet_bind(&mut p.ca, &y, any(0)).unwrap();
    let mut ports = [x.local_addr().port(), y.local_addr().port()];
    ports.sort_unstable();
    assert_eq!(ports, [40000, 40001]);
    assert_eq!(inet_bind(&mut p.ca, &z, any(0)), Err(Errno::AddrInUse));
    // Autobind on send reports EAGAIN (inet_autobind).
    let to = SocketAddrV4::new(p.b.addr, 1);
    assert_eq!(
        udp_sendmsg(&mut p.ca, &z, b"x", Some(to)),
        Err(Errno::Again)
    );
}

#[test]
fn sendmsg_errors() {
    let mut p = pair();
    let s = UdpSock::new(1, &p.a.sysctl);
    let to = SocketAddrV4::new(p.b.addr, 53);
    assert_eq!(
        udp_sendmsg(&mut p.ca, &s, &vec![0; UDP_MAX_PAYLOAD + 1], Some(to)),
        Err(Errno::MsgSize)
    );
    assert_eq!(
        udp_sendmsg(&mut p.ca, &s, b"x", Some(SocketAddrV4::new(p.b.addr, 0))),
        Err(Errno::Inval)
    );
    assert_eq!(
        udp_sendmsg(
            &mut p.ca,
            &s,
            b"x",
            Some(SocketAddrV4::new(Ipv4Addr::new(203, 0, 113, 1), 53))
        ),
        Err(Errno::NetUnreach)
    );
    assert_eq!(p.a.mibs.get(netcore::IpMib::OutNoRoutes), 1);
    let bcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, 53);
    assert_eq!(
        udp_sendmsg(&mut p.ca, &s, b"x", Some(bcast)),
        Err(Errno::Acces)
    );
    s.set_broadcast(true);
    assert_eq!(udp_sendmsg(&mut p.ca, &s, b"x", Some(bcast)), Ok(1));
    assert_eq!(
        p.b.mibs.get(UdpMib::IgnoredMulti),
        1,
        "no listener: ignored, no ICMP"
    );
    assert_eq!(
        udp_shutdown(&s, 1),
        Err(Errno::NotConn),
        "unconnected, but the bit is set"
    );
    assert_eq!(udp_sendmsg(&mut p.ca, &s, b"x", Some(to)), Err(Errno::Pipe));
    assert_eq!(udp_shutdown(&s, 3), Err(Errno::Inval));
    // ENOBUFS from below counts SndbufErrors and is reported as sent.
    let t = UdpSock::new(2, &p.a.sysctl);
    *p.a.fail_output.lock() = Some(Errno::NoBufs);
    assert_eq!(udp_sendmsg(&mut p.ca, &t, b"x", Some(to)), Ok(1));
    assert_eq!(p.a.mibs.get(UdpMib::SndbufErrors), 1);
    *p.a.fail_output.lock() = Some(Errno::HostUnreach);
    assert_eq!(
        udp_sendmsg(&mut p.ca, &t, b"x", Some(to)),
        Err(Errno::HostUnreach)
    );
}

#[test]
fn largest_datagram_is_sent_for_ip_to_fragment_and_arrives_whole() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    let big: Vec<u8> = (0..UDP_MAX_PAYLOAD).map(|i| i as u8).collect();
    let to = SocketAddrV4::new(p.b.addr, 5000);
    assert_eq!(udp_sendmsg(&mut p.ca, &sa, &big, Some(to)), Ok(65_507));
    udp_sendmsg(&mut p.ca, &sa, b"small", Some(to)).unwrap();
    let sent = p.a.sent.lock().clone();
    assert_eq!(
        (sent[0].ip_len, sent[0].df),
        (65_535, false),
        "larger than the MTU: no DF"
    );
    assert_eq!(
        (sent[1].ip_len, sent[1].df),
        (33, true),
        "fits: DF (IP_PMTUDISC_WANT)"
    );
    assert_eq!(recv(&mut p.cb, &sb).unwrap().0, big);
}

#[test]
fn a_connected_socket_reuses_its_route_until_the_generation_moves_on() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    let to = SocketAddrV4::new(p.b.addr, 5000);
    ip4_datagram_connect(&mut p.ca, &sa, to).unwrap();
    assert!(sa.has_dst_cache());
    assert_eq!(*p.a.route_lookups.lock(), 1, "connect routes once");
    for _ in 0..3 {
        udp_sendmsg(&mut p.ca, &sa, b"x", None).unwrap();
    }
    assert_eq!(
        *p.a.route_lookups.lock(),
        1,
        "connected sends use sk_dst_cache"
    );
    // An explicit address is not the connected path: routed each time.
    udp_sendmsg(&mut p.ca, &sa, b"x", Some(to)).unwrap();
    assert_eq!(*p.a.route_lookups.lock(), 2);
    // A new routing generation (here: the path MTU changed) is looked up,
    // and its MTU applies at once.
    *p.a.mtu.lock() = 576;
    let big = vec![7u8; 1000];
    udp_sendmsg(&mut p.ca, &sa, &big, None).unwrap();
    udp_sendmsg(&mut p.ca, &sa, &big, None).unwrap();
    assert_eq!(*p.a.route_lookups.lock(), 3);
    let sent = p.a.sent.lock().clone();
    assert_eq!(
        (sent[4].ip_len, sent[4].df),
        (1028, false),
        "over 576: no DF"
    );
    // SO_MARK may change the route: the cache is dropped.
    sa.set_mark(7);
    assert!(!sa.has_dst_cache());
    udp_sendmsg(&mut p.ca, &sa, b"x", None).unwrap();
    assert_eq!(*p.a.route_lookups.lock(), 4);
    // Disconnect forgets the route.
    udp_disconnect(&mut p.ca, &sa);
    assert!(!sa.has_dst_cache());
    for _ in 0..7 {
        assert!(!recv(&mut p.cb, &sb).unwrap().0.is_empty());
    }
}

#[test]
fn a_connected_socket_numbers_its_datagrams_and_hashes_them_with_its_txhash() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    let sc = UdpSock::new(3, &p.a.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    let to = SocketAddrV4::new(p.b.addr, 5000);
    assert_eq!(sa.txhash(), 0);
    ip4_datagram_connect(&mut p.ca, &sa, to).unwrap();
    assert_ne!(sa.txhash(), 0, "sk_set_txhash() never leaves 0");
    p.a.hold_tx();
    udp_sendmsg(&mut p.ca, &sa, b"one", None).unwrap();
    udp_sendmsg(&mut p.ca, &sa, b"two", None).unwrap();
    udp_sendmsg(&mut p.ca, &sc, b"unconnected", Some(to)).unwrap();
    let sent = p.a.sent.lock().clone();
    let (first, second) = (sent[0].id.unwrap(), sent[1].id.unwrap());
    assert_eq!(second, first.wrapping_add(1), "inet_id counts up");
    assert_eq!(
        sent[2].id, None,
        "an unconnected socket leaves the id to IP"
    );
    let held = p.a.hold_tx.lock().take().unwrap();
    assert_eq!((held[0].hash, held[0].l4_hash), (sa.txhash(), true));
    assert_eq!((held[1].hash, held[1].l4_hash), (sa.txhash(), true));
    assert_eq!((held[2].hash, held[2].l4_hash), (0, false));
}

#[test]
fn recvmsg_peek_and_truncation() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    udp_sendmsg(
        &mut p.ca,
        &sa,
        b"0123456789",
        Some(SocketAddrV4::new(p.b.addr, 5000)),
    )
    .unwrap();
    assert_eq!(sb.first_packet_length(), 10);
    let mut small = [0u8; 4];
    let peeked = udp_recvmsg(&mut p.cb, &sb, &mut small, true, true).unwrap();
    assert_eq!(
        (peeked.copied, peeked.len, peeked.truncated()),
        (4, 10, true)
    );
    assert_eq!(&small, b"0123");
    assert_eq!(
        p.b.mibs.get(UdpMib::InDatagrams),
        0,
        "peeking does not count"
    );
    let got = udp_recvmsg(&mut p.cb, &sb, &mut small, false, true).unwrap();
    assert_eq!((got.copied, got.len), (4, 10));
    // The rest of a truncated datagram is gone.
    assert_eq!(
        udp_recvmsg(&mut p.cb, &sb, &mut small, false, true),
        Err(Errno::Again)
    );
    assert_eq!(p.b.mibs.get(UdpMib::InDatagrams), 1);
    // After SHUT_RD a would-be-blocking read returns 0 bytes.
    let _ = udp_shutdown(&sb, 0);
    assert_eq!(
        udp_recvmsg(&mut p.cb, &sb, &mut small, false, false)
            .unwrap()
            .copied,
        0
    );
    assert_eq!(
        udp_recvmsg(&mut p.cb, &sb, &mut small, false, true),
        Err(Errno::Again)
    );
}

fn udp_bytes(
    sport: u16,
    dport: u16,
    payload: &[u8],
    check: Option<u16>,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Vec<u8> {
    let mut v = vec![0u8; 8 + payload.len()];
    let repr = wire::UdpRepr {
        src_port: sport,
        dst_port: dport,
        payload_len: payload.len(),
    };
    v[8..].copy_from_slice(payload);
    repr.emit(&mut v, src, dst).unwrap();
    if let Some(c) = check {
        v[6..8].copy_from_slice(&c.to_be_bytes());
    }
    v
}

#[test]
fn receive_checks_length_and_checksum() {
    let mut p = pair();
    let sb = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    let (a, b) = (p.a.addr, p.b.addr);
    // Good checksum.
    p.cb.inject(a, &udp_bytes(1, 5000, b"ok", None, a, b))
        .unwrap();
    // Zero checksum: "none", accepted.
    p.cb.inject(a, &udp_bytes(1, 5000, b"nosum", Some(0), a, b))
        .unwrap();
    assert_eq!(sb.rx_queue_len(), 2);
    // Bad checksum: InCsumErrors + InErrors, even for a closed port (no ICMP).
    let mut bad = udp_bytes(1, 5000, b"bad", None, a, b);
    bad[9] ^= 0xff;
    p.cb.inject(a, &bad).unwrap();
    let mut bad_closed = udp_bytes(1, 5001, b"bad", None, a, b);
    bad_closed[9] ^= 0xff;
    p.cb.inject(a, &bad_closed).unwrap();
    assert_eq!(p.b.mibs.get(UdpMib::InCsumErrors), 2);
    assert_eq!(p.b.mibs.get(UdpMib::InErrors), 2);
    assert_eq!(p.b.mibs.get(UdpMib::NoPorts), 0);
    // Short length field, length beyond the packet, runt header.
    let mut short = udp_bytes(1, 5000, b"abc", Some(0), a, b);
    short[4..6].copy_from_slice(&7u16.to_be_bytes());
    p.cb.inject(a, &short).unwrap();
    let mut long = udp_bytes(1, 5000, b"abc", Some(0), a, b);
    long[4..6].copy_from_slice(&100u16.to_be_bytes());
    p.cb.inject(a, &long).unwrap();
    p.cb.inject(a, &[0, 1, 2]).unwrap();
    assert_eq!(p.b.mibs.get(UdpMib::InErrors), 5);
    // A length shorter than the packet trims the padding.
    let mut padded = udp_bytes(1, 5000, b"abcdef", Some(0), a, b);
    padded[4..6].copy_from_slice(&11u16.to_be_bytes());
    p.cb.inject(a, &padded).unwrap();
    // A closed port: the skb comes back for ICMP, NoPorts counted.
    let back = p.cb.inject(a, &udp_bytes(1, 5001, b"?", None, a, b));
    assert!(back.is_err());
    assert_eq!(p.b.mibs.get(UdpMib::NoPorts), 1);
    // CHECKSUM_UNNECESSARY skips the check: build one by hand.
    let mut bytes = vec![0u8; 20];
    bytes[0] = 0x45;
    bytes[12..16].copy_from_slice(&a.octets());
    bytes[16..20].copy_from_slice(&b.octets());
    bytes.extend_from_slice(&bad);
    let mut skb = netcore::SkBuff::from_slice(&p.b.pool, 64, &bytes).unwrap();
    skb.reset_network_header();
    skb.pull(20).unwrap();
    skb.ip_summed = IpSummed::Unnecessary;
    udp::udp_rcv(&mut p.cb, skb).unwrap();
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| recv(&mut p.cb, &sb).ok().map(|r| r.0)).collect();
    assert_eq!(
        got,
        vec![
            b"ok".to_vec(),
            b"nosum".to_vec(),
            b"abc".to_vec(),
            vec![b'b', b'a' ^ 0xff, b'd']
        ]
    );
}

#[test]
fn checksum_offload_and_so_no_check() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    let to = SocketAddrV4::new(p.b.addr, 5000);
    *p.a.csum_offload.lock() = true;
    udp_sendmsg(&mut p.ca, &sa, b"offloaded", Some(to)).unwrap();
    *p.a.csum_offload.lock() = false;
    sa.set_no_check_tx(true);
    udp_sendmsg(&mut p.ca, &sa, b"nocheck", Some(to)).unwrap();
    assert_eq!(recv(&mut p.cb, &sb).unwrap().0, b"offloaded");
    assert_eq!(recv(&mut p.cb, &sb).unwrap().0, b"nocheck");
    assert_eq!(p.b.mibs.get(UdpMib::InCsumErrors), 0);
}

#[test]
fn wakeups_fire_on_data_and_errors_and_poll_reports_them() {
    let mut p = pair();
    let sa = UdpSock::new(1, &p.a.sysctl);
    let sb = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &sb, any(5000)).unwrap();
    let keys = Arc::new(AtomicU32::new(0));
    let k = Arc::clone(&keys);
    sb.set_wakeup(Some(Arc::new(move |key| {
        k.fetch_or(key, Ordering::Relaxed);
    })));
    assert_eq!(sb.poll() & (POLLIN | POLLOUT), POLLOUT);
    udp_sendmsg(
        &mut p.ca,
        &sa,
        b"x",
        Some(SocketAddrV4::new(p.b.addr, 5000)),
    )
    .unwrap();
    assert_ne!(keys.load(Ordering::Relaxed) & POLLIN, 0);
    assert_ne!(sb.poll() & POLLIN, 0);
    sb.set_error(Errno::ConnRefused);
    assert_ne!(keys.load(Ordering::Relaxed) & POLLERR, 0);
}

#[test]
fn proc_net_udp_and_ss_list_sockets_like_linux() {
    let mut p = pair();
    let sb = UdpSock::new(4242, &p.b.sysctl);
    inet_bind(&mut p.cb, &sb, SocketAddrV4::new(p.b.addr, 53)).unwrap();
    let text = proc_net_udp(&p.b.table);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("   sl  local_address rem_address   st tx_queue rx_queue"));
    assert_eq!(header.len(), 127);
    let row = lines.next().unwrap();
    // 198.18.0.2 as the kernel prints a __be32 on x86-64, port 53 = 0035.
    assert!(
        row.starts_with("   53: 020012C6:0035 00000000:0000 07 00000000:00000000"),
        "{row}"
    );
    assert!(row.contains(" 4242 "), "{row}");
    let ss = ss_udp(&p.b.table, |ino| {
        (ino == 4242).then(|| "users:((\"dns\",pid=1,fd=3))".to_string())
    });
    let line = ss.lines().nth(1).unwrap();
    assert!(line.starts_with("UNCONN"), "{line}");
    assert!(line.contains("198.18.0.2:53"), "{line}");
    assert!(line.contains("0.0.0.0:*"), "{line}");
    assert!(line.ends_with("users:((\"dns\",pid=1,fd=3))"), "{line}");
    udp_lib_close(&mut p.cb, &sb);
    assert_eq!(proc_net_udp(&p.b.table).lines().count(), 1);
    assert!(p.b.table.is_empty());
}

#[test]
fn so_sndbuf_charges_each_datagram_until_its_skb_is_freed() {
    let mut p = pair();
    let s = UdpSock::new(1, &p.a.sysctl);
    let r = UdpSock::new(2, &p.b.sysctl);
    inet_bind(&mut p.cb, &r, any(53)).unwrap();
    let to = SocketAddrV4::new(p.b.addr, 53);
    let wakes = Arc::new(AtomicU32::new(0));
    let w = Arc::clone(&wakes);
    s.set_wakeup(Some(Arc::new(move |key| {
        if key & POLLOUT != 0 {
            w.fetch_add(1, Ordering::Relaxed);
        }
    })));
    // Delivered at once: the skb is freed (orphaned at the receiver), so
    // nothing stays charged.
    assert_eq!(udp_sendmsg(&mut p.ca, &s, b"x", Some(to)), Ok(1));
    assert_eq!(s.wmem_alloc(), 0);
    // Held below the socket (a qdisc, a TX ring): each datagram stays
    // charged, up to sk_sndbuf; then EAGAIN and SndbufErrors.
    s.set_sndbuf(4608); // SOCK_MIN_SNDBUF, as setsockopt stores it
    wakes.store(0, Ordering::Relaxed);
    p.a.hold_tx();
    let mut sent = 0;
    let err = loop {
        match udp_sendmsg(&mut p.ca, &s, &[7; 64], Some(to)) {
            Ok(64) => sent += 1,
            other => break other,
        }
        assert!(sent < 100, "the send buffer never filled");
    };
    assert_eq!(err, Err(Errno::Again));
    assert!(sent >= 1);
    let charged = s.wmem_alloc();
    assert!(
        charged >= 4608,
        "{charged} bytes charged after {sent} datagrams"
    );
    assert_eq!(s.poll() & POLLOUT, 0, "not writable while full");
    assert_eq!(p.a.mibs.get(UdpMib::SndbufErrors), 1);
    assert_eq!(p.a.mibs.get(UdpMib::OutDatagrams), sent + 1);
    assert_eq!(wakes.load(Ordering::Relaxed), 0);
    // Transmit completion frees them: the charge goes back to zero, the
    // writer is woken once (sock_wfree → sk_write_space) and may send.
    assert_eq!(p.a.flush_tx(), usize::try_from(sent).unwrap());
    assert_eq!(s.wmem_alloc(), 0);
    assert_ne!(s.poll() & POLLOUT, 0);
    assert_eq!(wakes.load(Ordering::Relaxed), 1);
    assert_eq!(udp_sendmsg(&mut p.ca, &s, &[7; 64], Some(to)), Ok(64));
}
