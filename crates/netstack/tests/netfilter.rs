//! Netfilter on simulated hosts: a firewall (ACCEPT, DROP, REJECT,
//! stateful rules) and a NAT router masquerading two clients, over the
//! simulated NICs and wires; and the two example scenarios.

use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{Duration, IcmpMsgDir, IpMib};
use netstack::{Host, Network, NicConfig, PingSocket, Report};
use nic_hw::LinkConfig;

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
}
