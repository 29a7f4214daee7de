//! Netfilter on simulated hosts: a firewall (ACCEPT, DROP, REJECT with
//! ICMP or a TCP reset seen on the wire, stateful rules for ICMP and TCP,
//! INVALID catching an out-of-window segment forged on the wire), its
//! `iptables -L -v -n` listing, NAT routers (two pinging clients; eight
//! clients from one source port), over the simulated NICs and wires; and
//! the two example scenarios.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use netcore::{Duration, IcmpMsgDir, IpMib, TcpMib};
use netfilter::{IptListFormat, IptTableKind};
use netstack::{Host, Network, NicConfig, PingSocket, Report, UdpSocket};
use nic_hw::{LinkConfig, PhyError, PhyPort};
use socket::{TcpListener, TcpStream};

const ECONNREFUSED: i32 = 111;

fn ping(net: &mut Network, from: &str, to: Ipv4Addr, count: u16) -> Arc<PingSocket> {
    let h = net.host(from).unwrap().shared().clone();
    let sock = h.ping_socket(to, 56);
    for seq in 1..=count {
        let (s, h) = (Arc::clone(&sock), Arc::clone(&h));
        net.after(Duration::from_millis(u64::from(seq - 1) * 200), move |_| {
            h.run_on(0, move |ctx| {
                let _ = s.send(ctx, seq);
            });
        });
    }
    sock
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

const FIREWALL: &str = "\
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 198.18.0.1/32 -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A INPUT -s 198.18.0.3/32 -p icmp -j REJECT --reject-with icmp-port-unreachable
COMMIT
";

/// h1, fw, h3 and h4 on one switch; fw loads [`FIREWALL`].
fn firewall_lan() -> Network {
    let mut net = Network::new(7);
    let ports = net.switch("sw0", 4, &LinkConfig::default()).unwrap();
    for (end, (name, addr)) in ports.into_iter().zip([
        ("h1", "198.18.0.1/24"),
        ("fw", "198.18.0.2/24"),
        ("h3", "198.18.0.3/24"),
        ("h4", "198.18.0.4/24"),
    ]) {
        net.add_host(
            Host::builder()
                .name(name)
                .nic(NicConfig::new().phy(end))
                .addr(addr),
        )
        .unwrap();
    }
    net.host_mut("fw")
        .unwrap()
        .iptables_restore(FIREWALL)
        .unwrap();
    net
}

#[test]
fn the_firewall_accepts_drops_and_rejects_by_rule() {
    let mut net = firewall_lan();
    let ok = ping(&mut net, "h1", ip("198.18.0.2"), 3);
    let rejected = ping(&mut net, "h3", ip("198.18.0.2"), 3);
    let dropped = ping(&mut net, "h4", ip("198.18.0.2"), 3);
    net.run_for(Duration::from_secs(2)).unwrap();

    // Allowed: every request answered.
    assert_eq!(ok.report().received(), 3, "{}", ok.report());
    // Dropped and rejected: nothing answered.
    assert_eq!(dropped.report().received(), 0);
    assert_eq!(rejected.report().received(), 0);

    let fw = net.host("fw").unwrap();
    let m = fw.shared().mibs.snapshot();
    // Only h1's three requests reached ICMP on fw (InType8), and only its
    // three replies were sent (OutType0); the dropped and rejected nine
    // never were delivered.
    assert_eq!(m.icmpmsg(IcmpMsgDir::In, 8), 3);
    assert_eq!(m.icmpmsg(IcmpMsgDir::Out, 0), 3);
    // REJECT sent three port unreachables (OutType3).
    assert_eq!(m.icmpmsg(IcmpMsgDir::Out, 3), 3);
    // ... which h3 received as ICMP destination unreachable.
    let h3 = net.host("h3").unwrap().shared().mibs.snapshot();
    assert_eq!(h3.icmpmsg(IcmpMsgDir::In, 3), 3);
    let h4 = net.host("h4").unwrap().shared().mibs.snapshot();
    assert_eq!(h4.icmpmsg(IcmpMsgDir::In, 3), 0);

    // The counters: h1's first request is NEW and meets the ACCEPT rule,
    // its next two belong to that connection (one ICMP id) and are
    // ESTABLISHED; REJECT 3; the DROP policy h4's 3.
    let save = fw.report(&"iptables-save -c".parse().unwrap()).unwrap();
    assert!(save.contains(":INPUT DROP [3:252]"), "{save}");
    assert!(
        save.contains("[2:168] -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        "{save}"
    );
    assert!(
        save.contains("[1:84] -A INPUT -s 198.18.0.1/32 -p icmp -m icmp --icmp-type 8 -j ACCEPT"),
        "{save}"
    );
    assert!(
        save.contains(
            "[3:252] -A INPUT -s 198.18.0.3/32 -p icmp -j REJECT --reject-with icmp-port-unreachable"
        ),
        "{save}"
    );
    // conntrack saw the three ping flows.
    let ct = fw.report(&Report::ConntrackL).unwrap();
    assert!(ct.contains("src=198.18.0.1 dst=198.18.0.2 type=8"), "{ct}");
}

#[test]
fn stateful_rules_let_replies_in_and_refuse_unsolicited_requests() {
    let mut net = firewall_lan();
    // fw pings h4: its requests leave (OUTPUT ACCEPT), the replies come
    // back ESTABLISHED and are accepted.
    let out = ping(&mut net, "fw", ip("198.18.0.4"), 3);
    net.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(out.report().received(), 3, "{}", out.report());
    // h4's own pings to fw are NEW and meet the DROP policy.
    let unsolicited = ping(&mut net, "h4", ip("198.18.0.2"), 3);
    net.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(unsolicited.report().received(), 0);
    let fw = net.host("fw").unwrap();
    let save = fw.report(&"iptables-save -c".parse().unwrap()).unwrap();
    assert!(save.contains(":INPUT DROP [3:252]"), "{save}");
    assert!(
        save.contains("[3:252] -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        "{save}"
    );
    let m = fw.shared().mibs.snapshot();
    assert_eq!(m.icmpmsg(IcmpMsgDir::In, 0), 3);
    assert_eq!(m.icmpmsg(IcmpMsgDir::In, 8), 0);
}

#[test]
fn conntrack_entries_are_reaped_by_the_gc_timer() {
    let mut net = firewall_lan();
    let ok = ping(&mut net, "h1", ip("198.18.0.2"), 1);
    net.run_for(Duration::from_secs(1)).unwrap();
    assert_eq!(ok.report().received(), 1);
    let nf = net.host("fw").unwrap().netfilter().unwrap();
    assert_eq!(nf.ct.count(), 1);
    // nf_conntrack_icmp_timeout is 30 s; the gc runs every second.
    net.run_for(Duration::from_secs(32)).unwrap();
    assert_eq!(nf.ct.count(), 0);
    assert_eq!(nf.conntrack_list(net.now()), "");
}

#[test]
fn a_bad_ruleset_names_its_line_and_changes_nothing() {
    let mut net = firewall_lan();
    let fw = net.host_mut("fw").unwrap();
    let before = fw.report(&"iptables-save".parse().unwrap()).unwrap();
    let err = fw
        .iptables_restore("*filter\n-A INPUT -j NOSUCHTARGET\nCOMMIT\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(
        fw.report(&"iptables-save".parse().unwrap()).unwrap(),
        before
    );
}

const NAT: &str = "\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth1 -j MASQUERADE
COMMIT
";

#[test]
fn a_nat_router_masquerades_two_clients_behind_it() {
    let mut net = Network::new(3);
    let lan = net.switch("lan", 3, &LinkConfig::default()).unwrap();
    let (out_r, out_s) = net.wire("wan", LinkConfig::default()).unwrap();
    let mut lan = lan.into_iter();
    net.add_host(
        Host::builder()
            .name("r")
            .sysctl("net.ipv4.ip_forward", "1")
            .nic(NicConfig::new().phy(lan.next().unwrap()))
            .addr("198.18.1.1/24")
            .nic(NicConfig::new().phy(out_r))
            .addr("198.18.2.1/24"),
    )
    .unwrap();
    for (name, addr) in [("c1", "198.18.1.10/24"), ("c2", "198.18.1.11/24")] {
        net.add_host(
            Host::builder()
                .name(name)
                .nic(NicConfig::new().phy(lan.next().unwrap()))
                .addr(addr)
                .route("default via 198.18.1.1"),
        )
        .unwrap();
    }
    // The server has no route to 198.18.1.0/24: only translated replies
    // can come back.
    net.add_host(
        Host::builder()
            .name("srv")
            .nic(NicConfig::new().phy(out_s))
            .addr("198.18.2.2/24"),
    )
    .unwrap();
    net.host_mut("r").unwrap().iptables_restore(NAT).unwrap();

    let p1 = ping(&mut net, "c1", ip("198.18.2.2"), 3);
    let p2 = ping(&mut net, "c2", ip("198.18.2.2"), 3);
    net.run_for(Duration::from_secs(2)).unwrap();
    assert_eq!(p1.report().received(), 3, "{}", p1.report());
    assert_eq!(p2.report().received(), 3, "{}", p2.report());
    for r in p1.report().replies.iter().chain(&p2.report().replies) {
        assert_eq!(r.from, ip("198.18.2.2"));
        assert_eq!(r.ttl, 63);
    }

    // The server saw only the router: its one neighbour is 198.18.2.1.
    let srv = net.host("srv").unwrap();
    let neigh = srv.report(&Report::IpNeigh).unwrap();
    assert!(neigh.contains("198.18.2.1 "), "{neigh}");
    assert!(!neigh.contains("198.18.1."), "{neigh}");
    let m = srv.shared().mibs.snapshot();
    assert_eq!(m.icmpmsg(IcmpMsgDir::In, 8), 6);
    assert_eq!(m.get(IpMib::InAddrErrors), 0);

    // The router's connections: each client's original tuple, replies
    // addressed to the router's outside address.
    let ct = net.host("r").unwrap().report(&Report::ConntrackL).unwrap();
    for c in ["198.18.1.10", "198.18.1.11"] {
        let line = ct
            .lines()
            .find(|l| l.contains(&format!("src={c} dst=198.18.2.2")))
            .unwrap_or_else(|| panic!("no entry of {c} in\n{ct}"));
        assert!(line.contains("src=198.18.2.2 dst=198.18.2.1"), "{line}");
    }
    let save = net
        .host("r")
        .unwrap()
        .report(&"iptables-save -c".parse().unwrap())
        .unwrap();
    // MASQUERADE ran on each connection's first packet only.
    assert!(
        save.contains("[2:168] -A POSTROUTING -o eth1 -j MASQUERADE"),
        "{save}"
    );
}

fn run_example(file: &str) -> String {
    let path = format!("{}/examples/{file}", env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netstack"))
        .args(["run", &path])
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_firewall_example_runs() {
    let text = run_example("firewall.toml");
    assert!(text.contains("3 packets transmitted, 3 received"), "{text}");
    assert!(text.contains("3 packets transmitted, 0 received"), "{text}");
    assert!(text.contains("fw$ iptables -L -v -n\n"), "{text}");
    assert!(
        text.contains("Chain INPUT (policy DROP 3 packets, 252 bytes)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "    3   252 REJECT     icmp --  *      *       198.18.0.3           0.0.0.0/0            reject-with icmp-port-unreachable\n"
        ),
        "{text}"
    );
    assert!(text.contains("fw$ iptables-save -c"), "{text}");
    assert!(text.contains(":INPUT DROP [3:252]"), "{text}");
    assert!(text.contains("fw$ conntrack -L"), "{text}");
}

#[test]
fn the_nat_example_runs() {
    let text = run_example("nat.toml");
    assert_eq!(
        text.matches("3 packets transmitted, 3 received").count(),
        2,
        "{text}"
    );
    assert!(text.contains("src=198.18.2.2 dst=198.18.2.1"), "{text}");
    // MASQUERADE overflows its 9-column target field, as in iptables.
    assert!(
        text.contains(
            "    2   168 MASQUERADE  all  --  *      eth1    0.0.0.0/0            0.0.0.0/0           \n"
        ),
        "{text}"
    );
}

/// One IPv4 packet of a capture: addresses, protocol, total length and the
/// transport header's first 20 bytes (or fewer).
#[derive(Debug)]
struct Seen {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    len: u16,
    l4: Vec<u8>,
}

impl Seen {
    fn ports(&self) -> (u16, u16) {
        (
            u16::from_be_bytes([self.l4[0], self.l4[1]]),
            u16::from_be_bytes([self.l4[2], self.l4[3]]),
        )
    }
    fn tcp_flags(&self) -> u8 {
        self.l4[13]
    }
    fn seq_ack(&self) -> (u32, u32) {
        let w = |o: usize| u32::from_be_bytes(self.l4[o..o + 4].try_into().unwrap());
        (w(4), w(8))
    }
}

/// The IPv4 packets of a pcap file (Ethernet link type), in order.
fn pcap_ipv4(bytes: &[u8]) -> Vec<Seen> {
    assert_eq!(
        &bytes[..4],
        &0xa1b2_3c4d_u32.to_le_bytes(),
        "nanosecond pcap"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &bytes[at + 16..at + 16 + incl];
        at += 16 + incl;
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let l4 = &ip[ihl..];
        out.push(Seen {
            src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            proto: ip[9],
            len: u16::from_be_bytes([ip[2], ip[3]]),
            l4: l4[..l4.len().min(20)].to_vec(),
        });
    }
    out
}

const REJECTS: &str = "\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 23 -j REJECT --reject-with tcp-reset
-A INPUT -p udp -m udp --dport 9999 -j REJECT --reject-with icmp-port-unreachable
COMMIT
";

const H1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const FW: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// h1 and fw on one wire, fw with `rules`.
fn wired(rules: &str) -> Network {
    let mut net = Network::new(11);
    let (a, b) = net.wire("w0", LinkConfig::default()).unwrap();
    for (name, end, addr) in [("h1", a, "198.18.0.1/24"), ("fw", b, "198.18.0.2/24")] {
        net.add_host(
            Host::builder()
                .name(name)
                .nic(NicConfig::new().phy(end))
                .addr(addr),
        )
        .unwrap();
    }
    net.host_mut("fw").unwrap().iptables_restore(rules).unwrap();
    net
}

fn pcap_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("netstack-nf-{}-{name}.pcap", std::process::id()))
}

/// REJECT answers for the stack: a TCP reset to a port that has a
/// listener (so the RST is netfilter's, not TCP's), and an ICMP port
/// unreachable to a port that has a bound UDP socket. Both are seen on the
/// client's wire, and the client's sockets get ECONNREFUSED.
#[test]
fn reject_answers_with_a_reset_or_an_icmp_seen_on_the_wire() {
    let mut net = wired(REJECTS);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let fw = Arc::clone(net.host("fw").unwrap().shared());
    let path = pcap_path("reject");
    let cap = net.host("h1").unwrap().capture("eth0", &path).unwrap();

    // Open doors behind the firewall: both would answer without the rules.
    let l = TcpListener::bind(
        fw.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 23),
    )
    .unwrap();
    l.set_nonblocking(true).unwrap();
    let srv = UdpSocket::bind(&fw, "0.0.0.0:9999").unwrap();

    let c = net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(FW, 23))
        })
        .unwrap()
        .unwrap();
    let u = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    u.connect("198.18.0.2:9999").unwrap();
    net.app("h1", || u.send(b"anyone?")).unwrap().unwrap();
    net.run_for(Duration::from_millis(20)).unwrap();

    // The client's view: refused, both ways.
    let err = net.app("h1", || c.take_error()).unwrap().unwrap();
    assert_eq!(err.and_then(|e| e.raw_os_error()), Some(ECONNREFUSED));
    let mut buf = [0u8; 64];
    let e = net
        .app("h1", || {
            u.set_nonblocking(true)?;
            u.recv(&mut buf)
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(ECONNREFUSED), "{e}");
    // Nothing reached the sockets behind the rules, and TCP itself sent no
    // reset: the one on the wire is REJECT's.
    let e = net.app("fw", || l.accept()).unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    let e = net
        .app("fw", || {
            srv.set_nonblocking(true)?;
            srv.recv_from(&mut buf)
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(fw.mibs.get(TcpMib::OutRsts), 0);
    assert_eq!(h1.mibs.get(TcpMib::AttemptFails), 1);

    // The wire.
    cap.flush().unwrap();
    let seen = pcap_ipv4(&std::fs::read(&path).unwrap());
    let _ = std::fs::remove_file(&path);
    let syn = seen
        .iter()
        .find(|p| p.proto == 6 && p.src == H1 && p.ports().1 == 23)
        .expect("the SYN");
    assert_eq!(syn.tcp_flags(), 0x02);
    let rsts: Vec<&Seen> = seen
        .iter()
        .filter(|p| p.proto == 6 && p.src == FW && p.tcp_flags() & 0x04 != 0)
        .collect();
    assert_eq!(rsts.len(), 1, "{seen:?}");
    let rst = rsts[0];
    // nf_send_reset to a SYN: RST|ACK, seq 0, acking the SYN.
    assert_eq!(rst.tcp_flags(), 0x14);
    assert_eq!(rst.ports(), (23, syn.ports().0));
    assert_eq!(rst.seq_ack(), (0, syn.seq_ack().0.wrapping_add(1)));
    assert_eq!(rst.dst, H1);
    let dgram = seen
        .iter()
        .find(|p| p.proto == 17 && p.src == H1)
        .expect("the datagram");
    let unreach: Vec<&Seen> = seen
        .iter()
        .filter(|p| p.proto == 1 && p.src == FW)
        .collect();
    assert_eq!(unreach.len(), 1, "{seen:?}");
    // Type 3 (destination unreachable), code 3 (port), quoting the
    // datagram: its header follows the 8 bytes of ICMP header.
    assert_eq!(&unreach[0].l4[..2], &[3, 3]);
    assert_eq!(
        unreach[0].len,
        20 + 8 + dgram.len,
        "the whole small datagram is quoted"
    );

    // iptables -L -v -n counts each rule's one packet and its bytes; the
    // reset and the ICMP error left through OUTPUT (ip_local_out).
    let list = net
        .host("fw")
        .unwrap()
        .iptables_list(IptTableKind::Filter, IptListFormat::VERBOSE);
    let want = format!(
        "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         
    1 {:>5} REJECT     tcp  --  *      *       0.0.0.0/0            0.0.0.0/0            tcp dpt:23 reject-with tcp-reset
    1 {:>5} REJECT     udp  --  *      *       0.0.0.0/0            0.0.0.0/0            udp dpt:9999 reject-with icmp-port-unreachable

Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination         

Chain OUTPUT (policy ACCEPT 2 packets, {} bytes)
 pkts bytes target     prot opt in     out     source               destination         
",
        syn.len,
        dgram.len,
        rst.len + unreach[0].len
    );
    assert_eq!(list, want);
}

const STATEFUL_TCP: &str = "\
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate INVALID -j DROP
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
";

/// A firewall that accepts only its own connections' packets: its TCP
/// connection out to h1 completes and carries data back, while h1's
/// connection attempts in meet the DROP policy (no SYN-ACK, no reset).
#[test]
fn stateful_tcp_lets_replies_in_and_drops_unsolicited_syns() {
    let mut net = wired(STATEFUL_TCP);
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let fw = Arc::clone(net.host("fw").unwrap().shared());
    let l1 = TcpListener::bind(
        h1.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80),
    )
    .unwrap();
    let lfw = TcpListener::bind(
        fw.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 22),
    )
    .unwrap();
    l1.set_nonblocking(true).unwrap();
    lfw.set_nonblocking(true).unwrap();

    // Outbound from fw: allowed, and the replies come in as ESTABLISHED.
    let mut out = net
        .app("fw", || {
            TcpStream::connect_nonblocking(fw.socket_layer(), SocketAddrV4::new(H1, 80))
        })
        .unwrap()
        .unwrap();
    net.run_for(Duration::from_millis(5)).unwrap();
    let (mut s, _) = net.app("h1", || l1.accept()).unwrap().unwrap();
    assert_eq!(net.app("h1", || s.write(b"reply")).unwrap().unwrap(), 5);
    net.run_for(Duration::from_millis(5)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(net.app("fw", || out.read(&mut buf)).unwrap().unwrap(), 5);
    assert_eq!(&buf[..5], b"reply");

    // Inbound to fw: the SYN and its retransmission are dropped.
    let c = net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(FW, 22))
        })
        .unwrap()
        .unwrap();
    net.run_for(Duration::from_millis(1500)).unwrap();
    assert!(net.app("h1", || c.take_error()).unwrap().unwrap().is_none());
    let e = net.app("fw", || lfw.accept()).unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(fw.mibs.get(TcpMib::PassiveOpens), 0);
    assert_eq!(fw.mibs.get(TcpMib::OutRsts), 0);
    let nf = net.host("fw").unwrap().netfilter().unwrap();
    let input = &nf.tables.table(IptTableKind::Filter).chains()[0];
    let (dropped, _) = input.counters.get();
    // The initial SYN and one retransmission (after the 1 s initial RTO).
    assert_eq!(dropped, 2, "{}", nf.iptables_save(true));
    let (invalid, _) = input.rules[0].counters.get();
    assert_eq!(invalid, 0);
    let (established, _) = input.rules[1].counters.get();
    assert!(established >= 2, "SYN-ACK and data: {established}");
}

/// Eight clients behind a masquerading router each send from the same UDP
/// source port to one server: the server sees only the router's address,
/// with eight distinct ports (the first client keeps 5000, the clashes get
/// others); each echo returns to its own client; the router's mapping
/// table lists the eight flows, refreshed to the UDP timeouts, and empties
/// once they expire.
#[test]
fn many_clients_behind_a_nat_router_share_its_address_and_one_source_port() {
    const CLIENTS: u8 = 8;
    let mut net = Network::new(5);
    let lan = net
        .switch("lan", usize::from(CLIENTS) + 1, &LinkConfig::default())
        .unwrap();
    let (out_r, out_s) = net.wire("wan", LinkConfig::default()).unwrap();
    let mut lan = lan.into_iter();
    net.add_host(
        Host::builder()
            .name("r")
            .sysctl("net.ipv4.ip_forward", "1")
            .nic(NicConfig::new().phy(lan.next().unwrap()))
            .addr("198.18.1.1/24")
            .nic(NicConfig::new().phy(out_r))
            .addr("198.18.2.1/24"),
    )
    .unwrap();
    for i in 0..CLIENTS {
        net.add_host(
            Host::builder()
                .name(&format!("c{i}"))
                .nic(NicConfig::new().phy(lan.next().unwrap()))
                .addr(&format!("198.18.1.{}/24", 10 + i))
                .route("default via 198.18.1.1"),
        )
        .unwrap();
    }
    net.add_host(
        Host::builder()
            .name("srv")
            .nic(NicConfig::new().phy(out_s))
            .addr("198.18.2.2/24"),
    )
    .unwrap();
    net.host_mut("r").unwrap().iptables_restore(NAT).unwrap();
    let srv_host = Arc::clone(net.host("srv").unwrap().shared());
    let srv = UdpSocket::bind(&srv_host, "0.0.0.0:53").unwrap();
    srv.set_nonblocking(true).unwrap();

    let mut socks = Vec::new();
    for i in 0..CLIENTS {
        let name = format!("c{i}");
        let h = Arc::clone(net.host(&name).unwrap().shared());
        let s = UdpSocket::bind(&h, "0.0.0.0:5000").unwrap();
        s.set_nonblocking(true).unwrap();
        net.app(&name, || s.send_to(&[i; 8], "198.18.2.2:53"))
            .unwrap()
            .unwrap();
        // One at a time, so that client 0 is the first to claim port 5000.
        net.run_for(Duration::from_millis(2)).unwrap();
        socks.push((name, s));
    }

    // The server: every datagram from the router, each from its own port;
    // it echoes each one back.
    let mut ports = std::collections::BTreeMap::new();
    let mut buf = [0u8; 64];
    while let Ok((n, from)) = net.app("srv", || srv.recv_from(&mut buf)).unwrap() {
        assert_eq!(n, 8);
        assert_eq!(*from.ip(), ip("198.18.2.1"), "the server sees the router");
        assert!(
            ports.insert(from.port(), buf[0]).is_none(),
            "port {} given twice",
            from.port()
        );
        net.app("srv", || srv.send_to(&buf[..n], from))
            .unwrap()
            .unwrap();
    }
    assert_eq!(ports.len(), usize::from(CLIENTS));
    assert_eq!(
        ports.get(&5000),
        Some(&0),
        "the first client keeps its port"
    );
    net.run_for(Duration::from_millis(5)).unwrap();
    for (i, (name, s)) in socks.iter().enumerate() {
        let (n, from) = net
            .app(name, || s.recv_from(&mut buf))
            .unwrap()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((n, buf[0]), (8, i as u8), "{name} gets its own echo");
        assert_eq!(from, "198.18.2.2:53".parse().unwrap());
    }

    // The mapping table: eight replied flows, each reply translated to the
    // router's address and the port the server saw. The first reply
    // refreshed the flow with the unreplied timeout (30 s): SEEN_REPLY is
    // set after udp_packet() runs, as in Linux.
    let r = net.host("r").unwrap();
    let ct = r.report(&Report::ConntrackL).unwrap();
    assert_eq!(ct.lines().count(), usize::from(CLIENTS), "{ct}");
    for (port, &i) in &ports {
        let line = ct
            .lines()
            .find(|l| l.contains(&format!("src=198.18.1.{} ", 10 + i)))
            .unwrap_or_else(|| panic!("no flow of client {i}:\n{ct}"));
        assert!(line.starts_with("udp      17 29 "), "{line}");
        assert!(
            line.contains(&format!(
                "src=198.18.2.2 dst=198.18.2.1 sport=53 dport={port} "
            )),
            "{line}"
        );
        assert!(!line.contains("[UNREPLIED]") && !line.contains("[ASSURED]"));
    }
    let nf = r.netfilter().unwrap();
    assert_eq!(nf.ct.stat().insert_failed, 0);
    // 31 s later the gc has reaped them all.
    net.run_for(Duration::from_secs(31)).unwrap();
    assert_eq!(nf.ct.count(), 0, "{}", nf.conntrack_list(net.now()));
}

/// A PHY between h1's NIC and its wire that records what h1 sends and
/// slips queued frames onto the wire before h1's next frame: a forged
/// segment injected mid-connection, as an attacker on the link would.
struct Injector {
    inner: Box<dyn PhyPort + Send>,
    sent: Arc<parking_lot::Mutex<Vec<Vec<u8>>>>,
    queued: Arc<parking_lot::Mutex<Vec<Vec<u8>>>>,
}

impl PhyPort for Injector {
    fn transmit(&mut self, now: netcore::Instant, frame: Vec<u8>) -> Result<(), PhyError> {
        for f in self.queued.lock().drain(..) {
            self.inner.transmit(now, f)?;
        }
        self.sent.lock().push(frame.clone());
        self.inner.transmit(now, frame)
    }
    fn receive(&mut self, now: netcore::Instant) -> Result<Option<Vec<u8>>, PhyError> {
        self.inner.receive(now)
    }
    fn next_event(&self) -> Option<netcore::Instant> {
        self.inner.next_event()
    }
}

/// The one's-complement sum of `data` (RFC 1071), folded.
fn csum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `frame` (Ethernet, FCS included, IPv4/TCP) with its sequence number
/// moved by `delta`, checksums and FCS recomputed.
fn shift_seq(frame: &[u8], delta: u32) -> Vec<u8> {
    let mut f = frame[..frame.len() - 4].to_vec();
    let ip = 14;
    let ihl = usize::from(f[ip] & 0x0f) * 4;
    let tot = usize::from(u16::from_be_bytes([f[ip + 2], f[ip + 3]]));
    let th = ip + ihl;
    let seq = u32::from_be_bytes(f[th + 4..th + 8].try_into().unwrap()).wrapping_add(delta);
    f[th + 4..th + 8].copy_from_slice(&seq.to_be_bytes());
    f[th + 16..th + 18].copy_from_slice(&[0, 0]);
    let seg_len = tot - ihl;
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&f[ip + 12..ip + 20]);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(seg_len as u16).to_be_bytes());
    let partial: u32 = pseudo
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let c = csum(&f[th..ip + tot], partial);
    f[th + 16..th + 18].copy_from_slice(&c.to_be_bytes());
    nic_hw::append_fcs(&mut f);
    f
}

/// A segment far outside the window of an established connection, forged
/// on the wire, is INVALID to conntrack and dropped by the INVALID rule
/// before TCP sees it; the connection goes on.
#[test]
fn invalid_catches_an_out_of_window_segment_forged_on_the_wire() {
    let mut net = Network::new(13);
    let (a, b) = net.wire("w0", LinkConfig::default()).unwrap();
    let sent = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let queued = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let a = Box::new(Injector {
        inner: a,
        sent: Arc::clone(&sent),
        queued: Arc::clone(&queued),
    });
    for (name, end, addr) in [
        ("h1", a as Box<dyn PhyPort + Send>, "198.18.0.1/24"),
        ("fw", b, "198.18.0.2/24"),
    ] {
        net.add_host(
            Host::builder()
                .name(name)
                .nic(NicConfig::new().phy(end))
                .addr(addr),
        )
        .unwrap();
    }
    net.host_mut("fw")
        .unwrap()
        .iptables_restore(
            "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
             -A INPUT -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n",
        )
        .unwrap();
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let fw = Arc::clone(net.host("fw").unwrap().shared());
    let l = TcpListener::bind(
        fw.socket_layer(),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80),
    )
    .unwrap();
    let mut c = net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(FW, 80))
        })
        .unwrap()
        .unwrap();
    net.run_for(Duration::from_millis(5)).unwrap();
    let (mut s, _) = net.app("fw", || l.accept()).unwrap().unwrap();
    assert_eq!(net.app("h1", || c.write(b"hello")).unwrap().unwrap(), 5);
    net.run_for(Duration::from_millis(5)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(net.app("fw", || s.read(&mut buf)).unwrap().unwrap(), 5);

    // Forge: h1's data segment again, 10 MB further on.
    let data = sent
        .lock()
        .iter()
        .rev()
        .find(|f| {
            f.len() > 14 + 40 + 4 && f[14 + 9] == 6 && {
                let tot = usize::from(u16::from_be_bytes([f[16], f[17]]));
                tot > 40
            }
        })
        .cloned()
        .expect("h1's data segment");
    let forged = shift_seq(&data, 10_000_000);
    let forged_len = u64::from(u16::from_be_bytes([forged[16], forged[17]]));
    queued.lock().push(forged);
    let invalid_before = net
        .host("fw")
        .unwrap()
        .netfilter()
        .unwrap()
        .ct
        .stat()
        .invalid;
    assert_eq!(net.app("h1", || c.write(b"more")).unwrap().unwrap(), 4);
    net.run_for(Duration::from_millis(5)).unwrap();
    assert!(queued.lock().is_empty(), "the forged segment went out");

    // The INVALID rule took it; conntrack counted it; TCP never saw it,
    // and the connection still carries data.
    let nf = net.host("fw").unwrap().netfilter().unwrap();
    let input = &nf.tables.table(IptTableKind::Filter).chains()[0];
    assert_eq!(input.rules[0].counters.get(), (1, forged_len));
    assert_eq!(nf.ct.stat().invalid, invalid_before + 1);
    assert_eq!(net.app("fw", || s.read(&mut buf)).unwrap().unwrap(), 4);
    assert_eq!(&buf[..4], b"more");
}
