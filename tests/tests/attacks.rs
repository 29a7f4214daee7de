//! Attacks and bad input against a whole simulated host, from a raw port
//! on its LAN. Each test ends (and most also start) with a legitimate
//! client echoing data byte-exact through the victim: the victim must keep
//! serving, lose nothing, and count what it refused where Linux does.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;

use common::*;
use netcore::{Duration, IpMib, LinuxMib, TcpMib, UdpMib};

/// A handshake within this time needed no SYN retransmission
/// (`TCP_TIMEOUT_INIT` is 1 s).
const NORMAL_HANDSHAKE: Duration = Duration::from_millis(100);

#[test]
fn baseline_client_is_served() {
    let mut lab = Lab::new(1, &[]);
    let hs = lab.serves_legit_client(100_000);
    assert!(hs < NORMAL_HANDSHAKE, "{hs:?}");
    assert_eq!(lab.echo.echoed, 100_000);
}

#[test]
fn syn_flood_at_100k_per_second_engages_cookies_and_a_client_connects() {
    let mut lab = Lab::new(2, &[]);
    let mut rng = Rng::new(2);
    let mut syn = |_| {
        let r = rng.next();
        // Random sources on the LAN that never answer.
        let src = Ipv4Addr::new(198, 18, 0, 100 + (r % 150) as u8);
        Tcp::new((r >> 16) as u16 | 1024, ECHO_PORT, (r >> 32) as u32, 0, SYN).frame(src, &[])
    };
    // 0.1 s of flood, then the client starts while 0.1 s more goes on.
    lab.flood(10_000, 100_000, &mut syn);
    let sent_before = lab.mib(LinuxMib::SyncookiesSent);
    assert!(sent_before > 0, "SYN cookies did not engage");
    let c = lab.client();
    let s = lab
        .net
        .app("client", || {
            socket::TcpStream::connect_nonblocking(
                c.socket_layer(),
                std::net::SocketAddrV4::new(VICTIM, ECHO_PORT),
            )
        })
        .unwrap()
        .unwrap();
    let start = lab.now();
    let mut connected_at = None;
    for i in 0..100 {
        for k in 0..100 {
            let f = syn(i * 100 + k);
            lab.attack(f);
        }
        lab.step();
        if connected_at.is_none() && s.peer_addr().is_ok() {
            connected_at = Some(lab.now());
        }
    }
    let at = connected_at.expect("the legitimate client did not connect during the flood");
    let hs = at.saturating_duration_since(start);
    assert!(
        hs < NORMAL_HANDSHAKE,
        "handshake took {hs:?} under the flood"
    );
    assert!(lab.mib(LinuxMib::SyncookiesSent) > sent_before);
    assert_eq!(
        c.mibs.get(TcpMib::RetransSegs),
        0,
        "the client had to retransmit its SYN"
    );
    let mut s = s;
    lab.echo_exact(&mut s, 50_000, 7, Duration::from_secs(10));
    // The request queue stayed bounded by the backlog.
    let v = lab.victim();
    assert!(v.transports.tcp.stack.socket_count() < 1_000);
    drop(s);
    lab.run(Duration::from_millis(10));
    lab.serves_legit_client(10_000);
}

/// The victim's next expected sequence number from the client and its own
/// next sequence number, read from a capture of its NIC.
fn seqs_from_capture(path: &std::path::Path, client_port: u16) -> (u32, u32) {
    let segs = pcap_tcp(path);
    let from_client = segs
        .iter()
        .rev()
        .find(|s| s.src == CLIENT && s.sport == client_port)
        .expect("a segment from the client");
    let from_victim = segs
        .iter()
        .rev()
        .find(|s| s.src == VICTIM && s.dport == client_port)
        .expect("a segment from the victim");
    (from_client.end_seq(), from_victim.end_seq())
}

#[test]
fn blind_rst_syn_and_data_injection_get_challenge_acks_and_change_nothing() {
    let mut lab = Lab::new(3, &[]);
    let dir = std::env::temp_dir().join(format!("netstack-attacks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("victim.pcap");
    let cap = lab
        .net
        .host("victim")
        .unwrap()
        .capture("eth0", &pcap)
        .unwrap();
    let (mut s, _) = lab.connect();
    lab.echo_exact(&mut s, 20_000, 1, Duration::from_secs(10));
    lab.run(Duration::from_millis(50));
    cap.flush().unwrap();
    let cport = s.local_addr().unwrap().port();
    let (rcv_nxt, snd_nxt) = seqs_from_capture(&pcap, cport);
    let seg = |seq: u32, ack: u32, flags: u8| Tcp::new(cport, ECHO_PORT, seq, ack, flags);
    let resets = lab.mib(TcpMib::EstabResets);
    let challenges = lab.mib(LinuxMib::TcpChallengeAck);

    // Blind RSTs with guessed sequence numbers far from the window.
    let mut rng = Rng::new(3);
    for _ in 0..500 {
        let mut seq = rng.u32();
        if seq.wrapping_sub(rcv_nxt) < 1 << 24 {
            seq = seq.wrapping_add(1 << 30);
        }
        lab.attack(seg(seq, 0, RST).frame(CLIENT, &[]));
    }
    lab.run(Duration::from_millis(600));
    assert_eq!(
        lab.mib(TcpMib::EstabResets),
        resets,
        "a blind RST reset the connection"
    );

    // A RST inside the window but not at rcv_nxt: a challenge ACK.
    lab.attack(seg(rcv_nxt.wrapping_add(1000), 0, RST).frame(CLIENT, &[]));
    lab.run(Duration::from_millis(600));
    assert_eq!(lab.mib(TcpMib::EstabResets), resets);
    assert_eq!(lab.mib(LinuxMib::TcpChallengeAck), challenges + 1);

    // A SYN on the established connection: a challenge ACK.
    lab.attack(seg(rng.u32(), 0, SYN).frame(CLIENT, &[]));
    lab.run(Duration::from_millis(600));
    assert_eq!(lab.mib(TcpMib::EstabResets), resets);
    assert_eq!(lab.mib(LinuxMib::TcpChallengeAck), challenges + 2);

    // Data at the right sequence number but acknowledging far in the past
    // (RFC 5961 §5): dropped with a challenge ACK, nothing delivered.
    let too_old = snd_nxt.wrapping_sub(1 << 30);
    lab.attack(seg(rcv_nxt, too_old, ACK | PSH).frame(CLIENT, b"INJECTED"));
    lab.run(Duration::from_millis(600));
    assert_eq!(lab.mib(LinuxMib::TcpChallengeAck), challenges + 3);
    // Data with guessed sequence numbers: out of window, dropped.
    for _ in 0..200 {
        let seq = rcv_nxt.wrapping_add(1 << 28).wrapping_add(rng.u32() >> 4);
        lab.attack(seg(seq, snd_nxt, ACK | PSH).frame(CLIENT, b"INJECTED"));
    }
    lab.run(Duration::from_millis(50));
    assert_eq!(lab.mib(TcpMib::EstabResets), resets);
    // The stream is intact: an injected byte would break the echo.
    lab.echo_exact(&mut s, 20_000, 2, Duration::from_secs(10));
    let mut probe = [0u8; 16];
    let r = lab
        .net
        .app("client", || std::io::Read::read(&mut s, &mut probe))
        .unwrap();
    assert!(
        matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "bytes nobody sent reached the client: {r:?}"
    );
    drop(cap);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An ICMP echo request's bytes (header and `data`).
fn icmp_echo(id: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    m.extend_from_slice(data);
    let c = csum(&m, 0);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// The fragments of `payload` (an IP payload) of `len` bytes each.
fn fragments(ip: &Ip, payload: &[u8], len: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + len).min(payload.len());
        let mut f = ip.clone();
        f.frag = (off / 8) as u16 | if end < payload.len() { 0x2000 } else { 0 };
        out.push(f.frame(&payload[off..end]));
        off = end;
    }
    out
}

#[test]
fn fragment_attacks_are_refused_and_counted() {
    let mut lab = Lab::new(4, &[]);
    let base = Ip::new(ATTACKER, VICTIM, 1);

    // Teardrop: the second fragment overlaps the first.
    let fails = lab.mib(IpMib::ReasmFails);
    let msg = icmp_echo(1, &[0xab; 64]);
    let mut a = base.clone();
    a.id = 100;
    a.frag = 0x2000;
    lab.attack(a.frame(&msg[..48]));
    a.frag = 24 / 8;
    lab.attack(a.frame(&msg[24..]));
    lab.run(Duration::from_millis(5));
    assert!(lab.mib(IpMib::ReasmFails) > fails, "overlap not refused");

    // Ping of death: fragments adding up past 65,535 bytes.
    let fails = lab.mib(IpMib::ReasmFails);
    let echo_out = lab.victim().mibs.get(netcore::IcmpMib::OutMsgs);
    let big = icmp_echo(2, &vec![0x55; 65_600]);
    let mut p = base.clone();
    p.id = 200;
    for f in fragments(&p, &big, 1480) {
        lab.attack(f);
        lab.step();
    }
    lab.run(Duration::from_millis(5));
    assert!(
        lab.mib(IpMib::ReasmFails) > fails,
        "oversized reassembly not refused"
    );
    assert_eq!(
        lab.victim().mibs.get(netcore::IcmpMib::OutMsgs),
        echo_out,
        "the victim answered an oversized datagram"
    );

    // Tiny first fragment (8 bytes: the ICMP header only): reassembled
    // correctly and answered.
    let oks = lab.mib(IpMib::ReasmOKs);
    let mut t = base.clone();
    t.id = 300;
    for f in fragments(&t, &icmp_echo(3, &[0x11; 40]), 8) {
        lab.attack(f);
    }
    lab.run(Duration::from_millis(5));
    assert_eq!(lab.mib(IpMib::ReasmOKs), oks + 1);

    lab.serves_legit_client(20_000);
}

#[test]
fn fragment_flood_stays_under_ipfrag_high_thresh() {
    const HIGH: usize = 262_144;
    let mut lab = Lab::new(
        5,
        &[
            ("net.ipv4.ipfrag_high_thresh", "262144"),
            ("net.ipv4.ipfrag_low_thresh", "196608"),
        ],
    );
    let v = lab.victim();
    let fails = lab.mib(IpMib::ReasmFails);
    let mut ip = Ip::new(ATTACKER, VICTIM, 17);
    ip.frag = 0x2000;
    let mut max_mem = 0;
    // First fragments that never complete, each of another datagram.
    for i in 0..1_000u16 {
        ip.id = i;
        lab.attack(ip.frame(&[0x77; 1400]));
        if i % 10 == 9 {
            lab.step();
            max_mem = max_mem.max(v.ipv4.with_frags(ipv4::Ipv4Frags::mem));
        }
    }
    lab.run(Duration::from_millis(5));
    max_mem = max_mem.max(v.ipv4.with_frags(ipv4::Ipv4Frags::mem));
    assert!(
        max_mem > HIGH / 2,
        "the flood never filled the queues ({max_mem})"
    );
    assert!(
        max_mem <= HIGH + 4096,
        "fragment memory {max_mem} went past ipfrag_high_thresh"
    );
    assert!(
        lab.mib(IpMib::ReasmFails) > fails,
        "refused fragments not counted"
    );
    lab.serves_legit_client(20_000);
    // ipfrag_time (30 s) later every queue has expired.
    lab.run(Duration::from_secs(31));
    assert_eq!(v.ipv4.with_frags(ipv4::Ipv4Frags::mem), 0);
}

#[test]
fn malformed_headers_on_every_layer_are_dropped_and_counted() {
    let mut lab = Lab::new(6, &[]);
    lab.serves_legit_client(1_000);
    lab.run(Duration::from_millis(100));
    let v = lab.victim();
    let inflight = v.pool.stats().inflight();
    let hdr_errors = lab.mib(IpMib::InHdrErrors);
    let tcp_csum = lab.mib(TcpMib::InCsumErrors);
    let tcp_errs = lab.mib(TcpMib::InErrs);
    let udp_errs = lab.mib(UdpMib::InErrors);
    let tcp_in = lab.mib(TcpMib::InSegs);

    let ip = |proto| Ip::new(ATTACKER, VICTIM, proto);
    let tcp = Tcp::new(4000, ECHO_PORT, 1, 0, SYN);
    let good_tcp = tcp.bytes(ATTACKER, VICTIM, &[]);
    let mut frames = Vec::new();
    // Ethernet: unknown ethertype, truncated to a header.
    frames.push(eth(VICTIM_MAC, ATTACKER_MAC, 0x88b5, &[1, 2, 3]));
    // IPv4: wrong version, IHL below 5, IHL past the total length, total
    // length past the frame, total length below the header, bad checksum.
    let mut d = ip(6).datagram(&good_tcp);
    d[0] = 0x65;
    frames.push(eth(VICTIM_MAC, ATTACKER_MAC, 0x0800, &d));
    for ihl in [3, 15] {
        let mut i = ip(6);
        i.ihl = Some(ihl);
        frames.push(i.frame(&good_tcp));
    }
    for tot in [2000, 12] {
        let mut i = ip(6);
        i.tot_len = Some(tot);
        frames.push(i.frame(&good_tcp));
    }
    let mut i = ip(6);
    i.bad_csum = true;
    frames.push(i.frame(&good_tcp));
    // IP options: one whose length runs past the header, one of length 0,
    // one of length 1.
    for opts in [
        vec![0x44, 40, 5, 0],
        vec![0x07, 0, 0, 0],
        vec![0x83, 1, 0, 0],
    ] {
        let mut i = ip(6);
        i.options = opts;
        frames.push(i.frame(&good_tcp));
    }
    // TCP: bad checksum, data offset below 5, data offset past the
    // segment, a zero-length option, an option running past the header,
    // an MSS option of the wrong length.
    let mut t = tcp.clone();
    t.bad_csum = true;
    frames.push(ip(6).frame(&t.bytes(ATTACKER, VICTIM, &[])));
    for doff in [2, 15] {
        let mut t = tcp.clone();
        t.doff = Some(doff);
        frames.push(ip(6).frame(&t.bytes(ATTACKER, VICTIM, &[])));
    }
    for opts in [
        vec![2, 0, 0, 0],
        vec![8, 40, 0, 0],
        vec![2, 3, 5, 0xb4],
        vec![3, 3, 200, 0],
    ] {
        let mut t = tcp.clone();
        t.options = opts;
        frames.push(ip(6).frame(&t.bytes(ATTACKER, VICTIM, &[])));
    }
    // UDP: a length longer than the datagram, shorter than its header, a
    // bad checksum.
    for (len, csum) in [(500u16, 0u16), (4, 0), (16, 0x1234)] {
        let mut u = vec![0x10, 0x00, 0x00, 0x07];
        u.extend_from_slice(&len.to_be_bytes());
        u.extend_from_slice(&csum.to_be_bytes());
        u.extend_from_slice(&[9; 8]);
        frames.push(ip(17).frame(&u));
    }
    // ICMP: truncated, bad checksum.
    frames.push(ip(1).frame(&[8, 0]));
    let mut m = icmp_echo(9, b"abcd");
    m[2] ^= 0xff;
    frames.push(ip(1).frame(&m));
    // ARP: truncated, wrong address lengths.
    frames.push(eth(VICTIM_MAC, ATTACKER_MAC, 0x0806, &[0, 1, 8, 0]));
    let mut a = arp(VICTIM_MAC, 1, ATTACKER_MAC, ATTACKER, [0; 6], VICTIM);
    a[14 + 4] = 9;
    frames.push(a);
    for f in frames {
        lab.attack(f);
        lab.step();
    }
    // A frame with a bad FCS: the NIC drops it (no FCS appended here, so
    // the last four bytes are not a valid CRC).
    let mut bad = ip(6).frame(&good_tcp);
    bad.extend_from_slice(&[0, 0, 0, 0]);
    lab.attacker.transmit(lab.net.now(), bad).unwrap();
    lab.run(Duration::from_millis(10));

    assert!(
        lab.mib(IpMib::InHdrErrors) >= hdr_errors + 4,
        "IP header errors not counted"
    );
    assert!(lab.mib(TcpMib::InCsumErrors) > tcp_csum);
    assert!(lab.mib(TcpMib::InErrs) >= tcp_errs + 2);
    assert!(lab.mib(UdpMib::InErrors) > udp_errs);
    // None of the broken SYNs opened anything.
    assert_eq!(lab.mib(TcpMib::PassiveOpens), 1);
    assert!(lab.mib(TcpMib::InSegs) >= tcp_in);
    // Nothing was lost either: every buffer is back in the pool once the
    // replies queued for the attacker's unanswered ARP have failed (3 s).
    lab.run(Duration::from_secs(5));
    assert_eq!(
        v.pool.stats().inflight(),
        inflight,
        "a dropped frame leaked its buffer"
    );
    lab.serves_legit_client(20_000);
}

/// Sends a SYN to the echo port and an ICMP echo request from each of
/// `srcs`; asserts the victim answered none and still serves the client.
fn martian_sources_are_ignored(srcs: &[Ipv4Addr]) {
    let mut lab = Lab::new(7, &[]);
    let out_segs = lab.mib(TcpMib::OutSegs);
    let opens = lab.mib(TcpMib::PassiveOpens);
    for &src in srcs {
        lab.attack(Tcp::new(ECHO_PORT, ECHO_PORT, 1000, 0, SYN).frame(src, &[]));
        let mut echo = Ip::new(src, VICTIM, 1);
        echo.id = 7;
        lab.attack(echo.frame(&icmp_echo(4, b"x")));
        lab.step();
    }
    lab.run(Duration::from_millis(20));
    assert_eq!(
        lab.mib(TcpMib::OutSegs),
        out_segs,
        "the victim answered a martian SYN"
    );
    assert_eq!(lab.mib(TcpMib::PassiveOpens), opens);
    assert_eq!(
        lab.victim().mibs.get(netcore::IcmpMib::OutMsgs),
        0,
        "the victim answered a martian echo"
    );
    lab.serves_legit_client(20_000);
}

#[test]
fn broadcast_multicast_zero_and_loopback_sources_are_ignored() {
    martian_sources_are_ignored(&[
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(224, 0, 0, 1),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::LOCALHOST,
    ]);
}

/// LAND: a SYN and an echo request whose source is the victim's own
/// address. `fib_validate_source()` (rp_filter=0, accept_local=0) makes it a
/// martian source. A subnet-broadcast source (198.18.0.255) is not tested
/// here: with rp_filter=0 Linux's fast path only rejects local addresses.
#[test]
fn land_sources_are_ignored() {
    martian_sources_are_ignored(&[VICTIM]);
}

#[test]
fn unsolicited_arp_replies_create_nothing_and_arp_flood_stays_under_gc_thresh3() {
    let mut lab = Lab::new(
        8,
        &[
            ("net.ipv4.neigh.default.gc_thresh1", "16"),
            ("net.ipv4.neigh.default.gc_thresh2", "32"),
            ("net.ipv4.neigh.default.gc_thresh3", "64"),
        ],
    );
    let v = lab.victim();
    let neigh = |v: &Arc<netstack::HostShared>| v.ipv4.with_arp_tbl(|t| t.len());
    // A client connected before the flood.
    let (mut s, _) = lab.connect();
    lab.echo_exact(&mut s, 10_000, 1, Duration::from_secs(5));
    let before = neigh(&v);
    // Replies nobody asked for, for addresses the victim never looked up.
    for i in 0..50u8 {
        let ip = Ipv4Addr::new(198, 18, 0, 100 + i);
        lab.attack(arp(VICTIM_MAC, 2, ATTACKER_MAC, ip, VICTIM_MAC, VICTIM));
    }
    lab.run(Duration::from_millis(5));
    assert_eq!(
        neigh(&v),
        before,
        "an unsolicited ARP reply created an entry"
    );

    // Requests from every address of the subnet: each would create an
    // entry for its sender; the table stops at gc_thresh3.
    let mut max = 0;
    for round in 0..3 {
        for host in 3..=254u8 {
            if host == 66 {
                continue;
            }
            let ip = Ipv4Addr::new(198, 18, 0, host);
            let mac = [0x02, 0xaa, 0, round, 0, host];
            lab.attack(arp([0xff; 6], 1, mac, ip, [0; 6], VICTIM));
            if host % 16 == 0 {
                lab.step();
                max = max.max(neigh(&v));
            }
        }
        lab.step();
        max = max.max(neigh(&v));
    }
    assert!(max >= 32, "the flood never filled the table ({max})");
    assert!(
        max <= 64,
        "the neighbour table grew to {max}, past gc_thresh3 (64)"
    );
    // The connected client is still served.
    lab.echo_exact(&mut s, 20_000, 2, Duration::from_secs(5));
    lab.net.app("client", || drop(s)).unwrap();
    // As in Linux, forced GC only evicts entries older than 5 s, so a new
    // neighbour waits until the flood's entries have aged; then it works.
    lab.run(Duration::from_secs(6));
    lab.serves_legit_client(20_000);
    assert!(neigh(&v) <= 64);
}

#[test]
fn accept_queue_overflow_recovers_once_the_server_accepts() {
    let mut lab = Lab::new(9, &[]);
    let c = lab.client();
    lab.echo.accepting = false;
    let mut streams = Vec::new();
    for _ in 0..200 {
        let s = lab
            .net
            .app("client", || {
                socket::TcpStream::connect_nonblocking(
                    c.socket_layer(),
                    std::net::SocketAddrV4::new(VICTIM, ECHO_PORT),
                )
            })
            .unwrap()
            .unwrap();
        streams.push(s);
        lab.step();
    }
    lab.run(Duration::from_millis(50));
    assert!(
        lab.mib(LinuxMib::ListenOverflows) > 0,
        "200 connections into a backlog of 128 did not overflow"
    );
    lab.echo.accepting = true;
    lab.run(Duration::from_secs(5));
    assert!(
        lab.echo.conns() >= 128,
        "only {} accepted",
        lab.echo.conns()
    );
    drop(streams);
    lab.run(Duration::from_millis(50));
    lab.serves_legit_client(20_000);
}

#[test]
fn a_reader_that_stops_is_bounded_by_its_receive_buffer_and_resumes_exact() {
    let mut lab = Lab::new(10, &[]);
    lab.echo.reading = false;
    let (mut s, _) = lab.connect();
    let v = lab.victim();
    let rmem_max = v.sysctl.tcp_rmem()[2] as usize;
    // The client writes far more than the victim's buffer holds.
    let data: Vec<u8> = (0..8_000_000u64)
        .map(|i| netstack::bulk_pattern(i + 5))
        .collect();
    let mut sent = 0;
    for _ in 0..3_000 {
        if let Ok(n) = lab
            .net
            .app("client", || std::io::Write::write(&mut s, &data[sent..]))
            .unwrap()
        {
            sent += n;
        }
        lab.step();
        let queued: u32 = v
            .transports
            .tcp
            .stack
            .ss(lab.now())
            .iter()
            .map(|e| e.recv_q)
            .sum();
        assert!(
            queued as usize <= rmem_max,
            "receive queue {queued} past tcp_rmem max"
        );
        if sent == data.len() {
            break;
        }
    }
    assert!(
        sent < data.len(),
        "the victim took everything without reading"
    );
    // The victim reads again: every byte arrives, in order.
    lab.echo.reading = true;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    for _ in 0..60_000 {
        if sent < data.len()
            && let Ok(n) = lab
                .net
                .app("client", || std::io::Write::write(&mut s, &data[sent..]))
                .unwrap()
        {
            sent += n;
        }
        while let Ok(n) = lab
            .net
            .app("client", || std::io::Read::read(&mut s, &mut buf))
            .unwrap()
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
        lab.step();
    }
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the echo after the stall is not byte-exact");
}

#[test]
fn tcp_mem_pressure_bounds_memory_and_connections_recover() {
    // tcp_mem in pages: pressure at 32 pages (128 KiB), hard limit 48.
    const HARD: usize = 48 * 4096;
    // No per-CPU reserve (its default, 256 pages, is far above these
    // limits): every charge reaches memory_allocated at once.
    let mut lab = Lab::new(
        11,
        &[
            ("net.ipv4.tcp_mem", "16 32 48"),
            ("net.core.mem_pcpu_rsv", "0"),
        ],
    );
    lab.echo.reading = false;
    let v = lab.victim();
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(lab.connect().0);
    }
    let data: Vec<u8> = (0..400_000u64)
        .map(|i| netstack::bulk_pattern(i + 11))
        .collect();
    let mut sent = [0usize; 4];
    let mut max_queued = 0usize;
    let mut max_pages = 0i64;
    for _ in 0..2_000 {
        for (s, n) in conns.iter_mut().zip(sent.iter_mut()) {
            if *n < data.len()
                && let Ok(k) = lab
                    .net
                    .app("client", || std::io::Write::write(s, &data[*n..]))
                    .unwrap()
            {
                *n += k;
            }
        }
        lab.step();
        let queued: u32 = v
            .transports
            .tcp
            .stack
            .ss(lab.now())
            .iter()
            .map(|e| e.recv_q)
            .sum();
        max_queued = max_queued.max(queued as usize);
        max_pages = max_pages.max(v.transports.tcp.stack.memory().memory_allocated());
    }
    // Pages charged to TCP: the hard limit, plus at most one skb per
    // connection forced into an empty receive queue.
    assert!(
        max_pages <= 48 + 4,
        "TCP held {max_pages} pages with tcp_mem[2] = 48"
    );
    let drops = lab.mib(LinuxMib::TcpRcvQDrop) + lab.mib(LinuxMib::TcpOfoDrop);
    assert!(drops > 0, "nothing was dropped past tcp_mem");
    assert!(
        lab.mib(LinuxMib::TcpMemoryPressures) > 0,
        "tcp_mem pressure never entered (receive queues reached {max_queued} bytes)"
    );
    assert!(
        max_queued <= HARD * 2,
        "receive queues held {max_queued} bytes past tcp_mem"
    );
    // The service reads again: every connection completes byte-exact.
    lab.echo.reading = true;
    let mut got = vec![Vec::new(); 4];
    let mut buf = vec![0u8; 65536];
    for _ in 0..60_000 {
        for ((s, n), g) in conns.iter_mut().zip(sent.iter_mut()).zip(got.iter_mut()) {
            if *n < data.len()
                && let Ok(k) = lab
                    .net
                    .app("client", || std::io::Write::write(s, &data[*n..]))
                    .unwrap()
            {
                *n += k;
            }
            while let Ok(k) = lab
                .net
                .app("client", || std::io::Read::read(s, &mut buf))
                .unwrap()
            {
                if k == 0 {
                    break;
                }
                g.extend_from_slice(&buf[..k]);
            }
        }
        if got.iter().all(|g| g.len() == data.len()) {
            break;
        }
        lab.step();
    }
    for g in &got {
        assert!(
            *g == data,
            "a connection did not recover byte-exact ({} bytes)",
            g.len()
        );
    }
    // Everything read: pressure is over and its duration counted.
    assert!(!v.transports.tcp.stack.memory().under_memory_pressure());
    assert!(lab.mib(LinuxMib::TcpMemoryPressuresChrono) > 0);
    lab.serves_legit_client(20_000);
}

#[test]
fn fd_exhaustion_fails_accept_with_emfile_and_a_client_is_served_once_fds_free() {
    const EMFILE: i32 = 24;
    // The service process may hold 32 fds (RLIMIT_NOFILE); the echo
    // listener and the attacked service's listener take some of them.
    const NOFILE: usize = 32;
    let mut lab = Lab::new(12, &[]);
    let v = lab.victim();
    let layer = Arc::clone(v.socket_layer());
    layer.set_rlimit_nofile(NOFILE as u64).unwrap();
    let svc = lab
        .net
        .app("victim", || {
            socket::TcpListener::bind(
                &layer,
                std::net::SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9),
            )
        })
        .unwrap()
        .unwrap();
    svc.set_nonblocking(true).unwrap();
    let base = layer.nr_files() as usize;
    // The attacker opens 200 connections and keeps them; the service
    // accepts all it can and holds them.
    let c = lab.client();
    let mut attack = Vec::new();
    let mut held = Vec::new();
    let mut emfile = 0usize;
    for _ in 0..200 {
        let s = lab
            .net
            .app("client", || {
                socket::TcpStream::connect_nonblocking(
                    c.socket_layer(),
                    std::net::SocketAddrV4::new(VICTIM, 9),
                )
            })
            .unwrap()
            .unwrap();
        attack.push(s);
        lab.step();
        loop {
            match lab.net.app("victim", || svc.accept()).unwrap() {
                Ok((s, _)) => held.push(s),
                Err(e) if e.raw_os_error() == Some(EMFILE) => {
                    emfile += 1;
                    break;
                }
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "accept: {e}");
                    break;
                }
            }
        }
    }
    lab.run(Duration::from_millis(50));
    assert_eq!(held.len(), NOFILE - base, "fds the service got");
    assert_eq!(layer.nr_files(), NOFILE as u64);
    assert!(emfile > 0, "accept never failed with EMFILE");
    // 200 connections behind an accept that cannot take them: the
    // backlog of 128 overflowed.
    assert!(lab.mib(LinuxMib::ListenOverflows) > 0);
    // A legitimate client's handshake completes (TCP needs no fd), but
    // the echo service cannot accept it while the fds are taken.
    let (mut s, _) = lab.connect();
    lab.run(Duration::from_millis(200));
    assert_eq!(
        lab.echo.conns(),
        0,
        "the echo service accepted past the limit"
    );
    // The service drops the attacker's connections: fds free, and the
    // waiting client is served byte-exact, as is a new one.
    lab.net.app("victim", || drop(held)).unwrap();
    lab.net.app("client", || drop(attack)).unwrap();
    lab.echo_exact(&mut s, 20_000, 12, Duration::from_secs(5));
    assert_eq!(lab.echo.conns(), 1);
    lab.net.app("client", || drop(s)).unwrap();
    lab.run(Duration::from_millis(5));
    lab.serves_legit_client(20_000);
}
