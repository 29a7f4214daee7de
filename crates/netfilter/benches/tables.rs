//! Cost per packet of the filter table with 0, 100 and 1,000 rules the
//! packet does not match, and of a conntrack lookup in a table of 100,000
//! connections.
//!
//! The rules mix source prefixes, destination ports, protocols and input
//! interfaces, as a real ruleset does; the compiled classifier should keep
//! 1,000 rules within 3× the cost of none. The packet is a TCP segment
//! parsed afresh each time (as `ipt_do_table` does per hook).
//!
//! The build machine is shared by many jobs on two cores: wall-clock time
//! there mostly measures waiting for a core. Each figure is therefore the
//! CPU time the bench thread itself ran (`/proc/thread-self/schedstat`)
//! per packet, the best of five rounds taken in turn across the tables
//! (wall-clock `benchkit::measure` where schedstat is missing).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant as WallClock;

use benchkit::{measure, report};
use netcore::{Instant, IpSummed, PagePool, PagePoolParams, SkBuff, Sysctl};
use netfilter::{
    IfName, IptChain, IptPolicy, IptTableKind, NetfilterContext, NfConntrack, NfHookState,
    NfInetHooks, NfVerdict, XtTable, parse_rule,
};
use wire::IcmpDestUnreach;

struct Cpu;

impl NetfilterContext for Cpu {
    fn now(&self) -> Instant {
        Instant::from_secs(1000)
    }
    fn dev_name(&self, ifindex: u32) -> Option<IfName> {
        IfName::new(if ifindex == 1 { "eth0" } else { "eth1" })
    }
    fn inet_select_addr(&self, _: u32) -> Option<Ipv4Addr> {
        None
    }
    fn nf_send_reset(&mut self, _: &SkBuff, _: NfInetHooks) {}
    fn nf_send_unreach(&mut self, _: &SkBuff, _: IcmpDestUnreach, _: NfInetHooks) {}
}

fn packet(src: [u8; 4], sport: u16, dport: u16, proto: u8) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src);
    p[16..20].copy_from_slice(&[198, 18, 0, 1]);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p[32] = 0x50;
    p[33] = 0x10;
    p
}

fn rule(i: u32) -> String {
    // Never matches 198.18.200.7 -> 198.18.0.1 tcp 40000 -> 443 on eth0.
    let b = (i % 250) as u8;
    let c = (i / 250) as u8;
    match i % 4 {
        0 => format!("-s 198.19.{c}.{b}/32 -j DROP"),
        1 => format!("-p tcp -m tcp --dport {} -j DROP", 1000 + i),
        2 => format!("-i eth1 -p udp -m udp --dport {} -j ACCEPT", 2000 + i),
        _ => format!(
            "-s 198.19.{c}.0/24 -p tcp -m tcp --sport {} -j DROP",
            3000 + i
        ),
    }
}

/// Nanoseconds this thread has run on a CPU (`/proc/thread-self/schedstat`,
/// first field), or `None` where the file is missing.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The best of `rounds` measurements of `f` (one per entry), each about
/// 100 ms of work, in nanoseconds of this thread's CPU time per call; the
/// measurements of the entries alternate so that a burst of load does not
/// fall on one entry only.
fn best_cpu_ns<F: FnMut()>(fs: &mut [F], rounds: usize) -> Vec<f64> {
    let iters: Vec<u64> = fs
        .iter_mut()
        .map(|f| {
            let est = measure(&mut *f).as_nanos_f64().max(1.0);
            ((100e6 / est) as u64).max(1)
        })
        .collect();
    let mut best = vec![f64::INFINITY; fs.len()];
    for _ in 0..rounds {
        for (k, f) in fs.iter_mut().enumerate() {
            let (cpu0, wall0) = (thread_cpu_ns(), WallClock::now());
            for _ in 0..iters[k] {
                f();
            }
            let ns = match (cpu0, thread_cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64,
                _ => wall0.elapsed().as_nanos() as f64,
            };
            best[k] = best[k].min(ns / iters[k] as f64);
        }
    }
    best
}

fn main() {
    let pool = PagePool::new(PagePoolParams::default()).expect("pool");
    let state = NfHookState::new(NfInetHooks::LocalIn, 1, 0);
    let bytes = packet([198, 18, 200, 7], 40000, 443, 6);
    let tables: Vec<(u32, std::sync::Arc<XtTable>)> = [0u32, 100, 1000]
        .into_iter()
        .map(|n| {
            let table = XtTable::new(IptTableKind::Filter);
            let mut input = IptChain::builtin(NfInetHooks::LocalIn, IptPolicy::Accept);
            for i in 0..n {
                let words: Vec<String> = rule(i).split(' ').map(str::to_owned).collect();
                input.rules.push(parse_rule(&words).expect("rule"));
            }
            table
                .replace(vec![
                    input,
                    IptChain::builtin(NfInetHooks::Forward, IptPolicy::Accept),
                    IptChain::builtin(NfInetHooks::LocalOut, IptPolicy::Accept),
                ])
                .expect("table");
            (n, table)
        })
        .collect();
    let mut runs: Vec<_> = tables
        .iter()
        .map(|(_, table)| {
            let mut skb = SkBuff::from_slice(&pool, 0, &bytes).expect("skb");
            let mut cpu = Cpu;
            move || {
                let v = table.ipt_do_table(&mut skb, &state, &mut cpu, None);
                assert_eq!(v, NfVerdict::Accept);
                black_box(v);
            }
        })
        .collect();
    let best = best_cpu_ns(&mut runs, 5);
    for (k, (n, _)) in tables.iter().enumerate() {
        report(
            &format!("filter INPUT, {n} non-matching rules"),
            best[k],
            "ns/pkt",
        );
        if *n > 0 {
            report(
                &format!("filter INPUT, {n} rules vs 0"),
                best[k] / best[0],
                "x",
            );
        }
    }

    // Conntrack: 100,000 UDP flows, then look one up per packet.
    let ct = NfConntrack::new(Sysctl::new(), 7);
    let now = Instant::from_secs(1000);
    for i in 0..100_000u32 {
        let src = [198, 18, (i >> 16) as u8 | 0x80, (i >> 8) as u8];
        let p = packet(src, (i & 0xff) as u16 + 1024, 53, 17);
        let mut skb = SkBuff::from_slice(&pool, 0, &p).expect("skb");
        skb.ip_summed = IpSummed::Unnecessary;
        assert_eq!(ct.nf_conntrack_in(&mut skb, now), NfVerdict::Accept);
        assert_eq!(ct.nf_conntrack_confirm(&mut skb, now), NfVerdict::Accept);
    }
    assert_eq!(ct.count(), 100_000);
    let probe = packet([198, 18, 0x80 | 1, 0x23], 0x45 + 1024, 53, 17);
    let mut skb = SkBuff::from_slice(&pool, 0, &probe).expect("skb");
    let mut lookup = [|| {
        skb.nfct = 0;
        let v = ct.nf_conntrack_in(&mut skb, now);
        assert_ne!(skb.nfct, 0, "the probe belongs to a tracked flow");
        black_box(v);
    }];
    let per = best_cpu_ns(&mut lookup, 5)[0];
    report(
        "nf_conntrack_in, hit among 100000 connections",
        per,
        "ns/pkt",
    );
    report("conntrack stat found", ct.stat().found as f64, "lookups");
}
