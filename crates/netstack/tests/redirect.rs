//! ICMP redirects between simulated hosts: a router that forwards a
//! datagram back out of the link it came in on tells the sender of the
//! better first hop (`ip_rt_send_redirect()`, rate limited per source),
//! and the sender's UDP or TCP hands the redirect to IPv4, which keeps it
//! as a route exception (`__ip_do_redirect()`): later datagrams go to the
//! better router directly. `accept_redirects` and `send_redirects` turn
//! each side off.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use netcore::{Duration, IcmpMsgDir, IpMib};
use netstack::{Host, Network, NicConfig, UdpSocket, tcp_bulk};
use nic_hw::LinkConfig;

const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 5, 2);
const R2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 253);

/// h1, r1 and r2 on one switched LAN (198.18.0.0/24); h1's default route
/// is r1, r1 reaches 198.18.5.0/24 through r2, which has h2 on a wire.
/// `sysctls` go to (host, key, value).
fn lan(seed: u64, sysctls: &[(&str, &str, &str)]) -> Network {
    let mut net = Network::new(seed);
    let mut ports = net
        .switch("lan", 3, &LinkConfig::default())
        .unwrap()
        .into_iter();
    let (r2_out, h2_in) = net.wire("w1", LinkConfig::default()).unwrap();
    let set = |mut b: netstack::HostBuilder, name: &str| {
        for (h, k, v) in sysctls {
            if *h == name {
                b = b.sysctl(k, v);
            }
        }
        b
    };
    let h1 = Host::builder()
        .name("h1")
        .nic(NicConfig::new().phy(ports.next().unwrap()))
        .addr("198.18.0.1/24")
        .route("default via 198.18.0.254");
    net.add_host(set(h1, "h1")).unwrap();
    let r1 = Host::builder()
        .name("r1")
        .sysctl("net.ipv4.ip_forward", "1")
        .nic(NicConfig::new().phy(ports.next().unwrap()))
        .addr("198.18.0.254/24")
        .route("198.18.5.0/24 via 198.18.0.253");
    net.add_host(set(r1, "r1")).unwrap();
    let r2 = Host::builder()
        .name("r2")
        .sysctl("net.ipv4.ip_forward", "1")
        .nic(NicConfig::new().phy(ports.next().unwrap()))
        .addr("198.18.0.253/24")
        .nic(NicConfig::new().phy(r2_out))
        .addr("198.18.5.254/24");
    net.add_host(set(r2, "r2")).unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .nic(NicConfig::new().phy(h2_in))
            .addr("198.18.5.2/24")
            .route("default via 198.18.5.254"),
    )
    .unwrap();
    net
}

fn shared(net: &Network, name: &str) -> Arc<netstack::HostShared> {
    Arc::clone(net.host(name).unwrap().shared())
}

fn redirects(net: &Network, name: &str, dir: IcmpMsgDir) -> u64 {
    shared(net, name).mibs.snapshot().icmpmsg(dir, 5)
}

/// Sends `n` datagrams from h1 to h2, 10 ms apart; returns how many h2
/// read.
fn udp_flow(net: &mut Network, n: usize) -> usize {
    let (h1, h2) = (shared(net, "h1"), shared(net, "h2"));
    let rx = UdpSocket::bind(&h2, "0.0.0.0:7000").unwrap();
    let tx = UdpSocket::bind(&h1, "0.0.0.0:0").unwrap();
    tx.connect("198.18.5.2:7000").unwrap();
    rx.set_nonblocking(true).unwrap();
    let mut got = 0;
    for i in 0..n {
        net.app("h1", || tx.send(&[i as u8; 100])).unwrap().unwrap();
        net.run_for(Duration::from_millis(10)).unwrap();
        let mut buf = [0u8; 200];
        while net.app("h2", || rx.recv(&mut buf)).unwrap().is_ok() {
            got += 1;
        }
    }
    got
}

/// The first datagram goes h1 → r1 → r2 → h2; r1 sends h1 one redirect
/// naming r2 (and forwards the datagram all the same); h1 keeps r2 as
/// the first hop toward h2, so r1 forwards nothing more.
#[test]
fn a_redirect_moves_later_datagrams_to_the_better_router() {
    let mut net = lan(1, &[]);
    assert_eq!(udp_flow(&mut net, 6), 6);
    assert_eq!(redirects(&net, "r1", IcmpMsgDir::Out), 1);
    assert_eq!(redirects(&net, "h1", IcmpMsgDir::In), 1);
    let r1 = shared(&net, "r1");
    assert_eq!(r1.mibs.get(IpMib::ForwDatagrams), 1, "only the first");
    let e = shared(&net, "h1")
        .ipv4
        .rt_exception(H2)
        .expect("an exception");
    assert_eq!(e.gw, Some(R2));
    assert_eq!(shared(&net, "r2").mibs.get(IpMib::ForwDatagrams), 6);
}

/// With `accept_redirects` off (`conf/all` and `conf/default`) h1 keeps
/// sending through r1, which keeps forwarding and sends fewer and fewer
/// redirects (more than 40 ms, 80 ms, 160 ms ... apart; nine at most).
#[test]
fn a_host_that_refuses_redirects_keeps_its_route() {
    let off = [
        ("h1", "net.ipv4.conf.all.accept_redirects", "0"),
        ("h1", "net.ipv4.conf.default.accept_redirects", "0"),
    ];
    let mut net = lan(2, &off);
    assert_eq!(udp_flow(&mut net, 30), 30);
    assert_eq!(shared(&net, "r1").mibs.get(IpMib::ForwDatagrams), 30);
    // At 0, 50 and 140 ms (gaps over 40 and 80 ms); the next would wait
    // past 300 ms.
    let sent = redirects(&net, "r1", IcmpMsgDir::Out);
    assert_eq!(sent, 3, "{sent} redirects for 30 datagrams");
    assert!(shared(&net, "h1").ipv4.rt_exception(H2).is_none());
}

/// With `send_redirects` off on r1 nothing tells h1.
#[test]
fn a_router_that_sends_no_redirects_keeps_forwarding() {
    let off = [
        ("r1", "net.ipv4.conf.all.send_redirects", "0"),
        ("r1", "net.ipv4.conf.default.send_redirects", "0"),
    ];
    let mut net = lan(3, &off);
    assert_eq!(udp_flow(&mut net, 5), 5);
    assert_eq!(redirects(&net, "r1", IcmpMsgDir::Out), 0);
    assert_eq!(shared(&net, "r1").mibs.get(IpMib::ForwDatagrams), 5);
}

/// TCP takes the redirect too (`tcp_v4_err()` → `do_redirect()`), and the
/// connection's cached route follows it: of a 1 MiB transfer r1 forwards
/// only what left before the redirect arrived.
#[test]
fn a_tcp_connection_follows_a_redirect() {
    let mut net = lan(4, &[]);
    let rep = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5001),
        1 << 20,
        Duration::from_micros(50),
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(rep.intact && rep.closed, "{rep:?}");
    assert!(redirects(&net, "h1", IcmpMsgDir::In) >= 1);
    let via_r1 = shared(&net, "r1").mibs.get(IpMib::ForwDatagrams);
    let via_r2 = shared(&net, "r2").mibs.get(IpMib::ForwDatagrams);
    assert!(via_r1 < 5, "r1 forwarded {via_r1}");
    assert!(via_r2 > 100, "r2 forwarded {via_r2}");
    let e = shared(&net, "h1")
        .ipv4
        .rt_exception(H2)
        .expect("an exception");
    assert_eq!(e.gw, Some(R2));
}
