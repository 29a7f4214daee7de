//! Pacing and TCP Small Queues on simulated hosts: a bulk TCP transfer
//! through `fq` (departure times honoured, the socket told it need not
//! pace) and through a slow `tbf` whose queue TSQ keeps short; in both the
//! device's frees wake the socket through the TASKLET softirq.

use std::net::{Ipv4Addr, SocketAddrV4};

use netcore::Duration;
use netstack::{Host, Network, NicConfig, tcp_bulk};
use nic_hw::LinkConfig;
use qdisc::{Fq, FqParams, QdiscDev, qdisc_create};

const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn network(link: LinkConfig, sysctls: &[(&str, &str)]) -> Network {
    let mut net = Network::new(5);
    net.set_event_budget(u64::MAX);
    let (a, b) = net.wire("w0", link).unwrap();
    for (name, addr, phy) in [("h1", "198.18.0.1/24", a), ("h2", "198.18.0.2/24", b)] {
        let mut hb = Host::builder()
            .name(name)
            .nic(NicConfig::new().queues(1).phy(phy))
            .addr(addr);
        for (k, v) in sysctls {
            hb = hb.sysctl(k, v);
        }
        net.add_host(hb).unwrap();
    }
    net
}

/// Puts a qdisc made by `make` on every tx queue of h1's eth0 (as `tc
/// qdisc replace dev eth0 root` does under `mq`).
fn graft_all(net: &Network, make: impl Fn() -> Box<dyn qdisc::Qdisc>) -> u16 {
    let h = net.host("h1").unwrap();
    let mut n = 0;
    while h.replace_qdisc("eth0", n, make()).is_ok() {
        n += 1;
    }
    n
}

/// The sum of `f` over every tx queue's qdisc of h1's eth0.
fn sum_queues(net: &Network, f: impl Fn(&mut dyn qdisc::Qdisc) -> u64) -> u64 {
    let dev = net.host("h1").unwrap().shared().dev("eth0").unwrap();
    (0..)
        .map_while(|q| dev.with_qdisc(q, |qd| f(qd)).ok())
        .sum()
}

#[test]
fn fq_paces_a_bulk_flow_by_its_departure_times() {
    let mut net = network(
        LinkConfig::default()
            .rate_bps(100_000_000)
            .delay(Duration::from_millis(5)),
        &[],
    );
    assert!(graft_all(&net, || Box::new(Fq::new(FqParams::default()).unwrap())) > 0);
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5001),
        4 << 20,
        Duration::from_micros(100),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(r.intact && r.closed, "{r:?}");
    // fq held packets until their departure times (throttled) and sent
    // everything (no drop).
    let sent = sum_queues(&net, |q| q.stats().packets);
    let drops = sum_queues(&net, |q| u64::from(q.stats().drops));
    let throttled = sum_queues(&net, |q| {
        let mut x = String::new();
        let _ = q.dump_stats(&mut x);
        x.split(" throttled ")
            .nth(2)
            .and_then(|t| t.split_whitespace().next())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0)
    });
    assert!(sent > 2800, "{sent} packets through fq");
    assert!(throttled > 0, "fq never throttled a flow");
    assert_eq!(drops, 0);
    // 4 MiB over 100 Mbit/s: about 0.34 s of serialisation plus slow
    // start; pacing must not slow the flow down beyond that.
    assert!(
        r.virtual_time < Duration::from_millis(800),
        "took {:?}",
        r.virtual_time
    );
}

#[test]
fn tsq_keeps_a_slow_qdisc_from_overflowing() {
    // A 20 Mbit/s tbf with room for 48 KiB in front of a 1 Gbit/s wire:
    // without TSQ slow start would overflow it (and retransmit); with
    // tcp_limit_output_bytes at 16 KiB the socket keeps under 16 KiB plus
    // one GSO packet below TCP, and the device's frees restart it.
    let mut net = network(
        LinkConfig::default()
            .rate_bps(1_000_000_000)
            .delay(Duration::from_millis(2)),
        &[("net.ipv4.tcp_limit_output_bytes", "16384")],
    );
    graft_all(&net, || {
        qdisc_create(
            "tbf",
            &["rate", "20mbit", "burst", "4kb", "limit", "48kb"],
            &QdiscDev::default(),
        )
        .unwrap()
    });
    let r = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(H2, 5002),
        2 << 20,
        Duration::from_micros(100),
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(r.intact && r.closed, "{r:?}");
    let sent = sum_queues(&net, |q| q.stats().packets);
    let drops = sum_queues(&net, |q| u64::from(q.stats().drops));
    assert!(sent > 1400, "{sent} packets through tbf");
    assert_eq!(drops, 0, "tbf dropped {drops}");
    assert_eq!(r.retrans, 0, "{r:?}");
    // 2 MiB at 20 Mbit/s is 0.84 s; the link stays busy.
    assert!(
        r.virtual_time < Duration::from_millis(1100),
        "took {:?}",
        r.virtual_time
    );
}
