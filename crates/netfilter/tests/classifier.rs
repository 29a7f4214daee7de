//! The compiled classifier against the linear walk of `ipt_do_table()`:
//! on random rulesets and packets, the same rules match (counters), in the
//! same order, and the same verdict comes out.
//!
//! The rules mix every classified field (source and destination prefixes
//! of any length, interfaces with `+` and `!`, protocols, port ranges,
//! negations) with unclassified matches (`--syn`, `multiport`, ICMP type),
//! and a non-terminal target (LOG) so that the walk resumes after a hit,
//! across the 64-rule words of the bitsets.

use std::net::Ipv4Addr;

use netcore::{Instant, PagePool, PagePoolParams, SkBuff};
use netfilter::{
    IfName, IptChain, IptPolicy, IptTableKind, NetfilterContext, NfHookState, NfInetHooks,
    NfVerdict, XtActionParam, XtTable, XtTarget, parse_rule,
};
use proptest::prelude::*;
use wire::IcmpDestUnreach;

struct Cpu;

impl NetfilterContext for Cpu {
    fn now(&self) -> Instant {
        Instant::from_secs(1000)
    }
    fn dev_name(&self, ifindex: u32) -> Option<IfName> {
        match ifindex {
            1 => IfName::new("eth0"),
            2 => IfName::new("eth1"),
            3 => IfName::new("wlan0"),
            _ => None,
        }
    }
    fn inet_select_addr(&self, _: u32) -> Option<Ipv4Addr> {
        None
    }
    fn nf_send_reset(&mut self, _: &SkBuff, _: NfInetHooks) {}
    fn nf_send_unreach(&mut self, _: &SkBuff, _: IcmpDestUnreach, _: NfInetHooks) {}
}

fn not(b: bool) -> &'static str {
    if b { "! " } else { "" }
}

/// An address in 198.18.0.0/22, where packets and rules meet often.
fn addr() -> impl Strategy<Value = Ipv4Addr> {
    (0u8..4, any::<u8>()).prop_map(|(c, d)| Ipv4Addr::new(198, 18, c, d))
}

fn prefix(flag: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        1 => (any::<bool>(), addr(), 0u8..=32).prop_map(move |(n, a, l)| {
            let mask = u32::MAX.checked_shl(32 - u32::from(l)).unwrap_or(0);
            let a = Ipv4Addr::from_bits(a.to_bits() & mask);
            format!(" {}{flag} {a}/{l}", not(n))
        }),
    ]
}

fn iface(flag: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => (any::<bool>(), prop::sample::select(vec!["eth0", "eth1", "eth+", "wlan0", "lo"]))
            .prop_map(move |(n, i)| format!(" {}{flag} {i}", not(n))),
    ]
}

fn ports(flag: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        1 => (any::<bool>(), 0u16..40, 0u16..20).prop_map(move |(n, lo, w)| {
            if w == 0 {
                format!(" {}{flag} {lo}", not(n))
            } else {
                format!(" {}{flag} {lo}:{}", not(n), lo + w)
            }
        }),
    ]
}

fn proto() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        2 => (ports("--sport"), ports("--dport"), any::<bool>()).prop_map(|(s, d, syn)| {
            format!(" -p tcp -m tcp{s}{d}{}", if syn { " --syn" } else { "" })
        }),
        2 => (ports("--sport"), ports("--dport")).prop_map(|(s, d)| format!(" -p udp -m udp{s}{d}")),
        1 => prop::collection::vec(0u16..40, 1..4).prop_map(|p| {
            let l: Vec<String> = p.iter().map(u16::to_string).collect();
            format!(" -p udp -m multiport --dports {}", l.join(","))
        }),
        1 => (0u8..12).prop_map(|t| format!(" -p icmp -m icmp --icmp-type {t}")),
        1 => Just(" ! -p tcp".to_owned()),
        1 => Just(" -p gre".to_owned()),
    ]
}

fn target() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["ACCEPT", "ACCEPT", "DROP", "LOG"])
}

fn rule() -> impl Strategy<Value = String> {
    (
        prefix("-s"),
        prefix("-d"),
        iface("-i"),
        iface("-o"),
        proto(),
        target(),
    )
        .prop_map(|(s, d, i, o, p, t)| format!("{s}{d}{i}{o}{p} -j {t}"))
}

#[derive(Clone, Debug)]
struct Pkt {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    sport: u16,
    dport: u16,
    syn: bool,
    in_if: u32,
    out_if: u32,
}

fn pkt() -> impl Strategy<Value = Pkt> {
    (
        addr(),
        addr(),
        prop::sample::select(vec![6u8, 17, 1, 47]),
        0u16..64,
        0u16..64,
        any::<bool>(),
        0u32..4,
        0u32..4,
    )
        .prop_map(|(src, dst, proto, sport, dport, syn, in_if, out_if)| Pkt {
            src,
            dst,
            proto,
            sport,
            dport,
            syn,
            in_if,
            out_if,
        })
}

fn bytes(p: &Pkt) -> Vec<u8> {
    let mut b = vec![0u8; 40];
    b[0] = 0x45;
    b[2..4].copy_from_slice(&40u16.to_be_bytes());
    b[8] = 64;
    b[9] = p.proto;
    b[12..16].copy_from_slice(&p.src.octets());
    b[16..20].copy_from_slice(&p.dst.octets());
    if p.proto == 1 {
        // ICMP type and code.
        b[20] = (p.sport % 12) as u8;
        b[21] = 0;
    } else {
        b[20..22].copy_from_slice(&p.sport.to_be_bytes());
        b[22..24].copy_from_slice(&p.dport.to_be_bytes());
        b[32] = 0x50;
        b[33] = if p.syn { 0x02 } else { 0x10 };
    }
    b
}

fn check(rules: &[String], pkts: &[Pkt]) -> Result<(), TestCaseError> {
    let mut chain = IptChain::builtin(NfInetHooks::Forward, IptPolicy::Drop);
    for r in rules {
        let words: Vec<String> = r.split_whitespace().map(str::to_owned).collect();
        chain
            .rules
            .push(parse_rule(&words).map_err(|e| TestCaseError::fail(format!("{r}: {e}")))?);
    }
    let entries = chain.rules.clone();
    let table = XtTable::new(IptTableKind::Filter);
    table
        .replace(vec![
            IptChain::builtin(NfInetHooks::LocalIn, IptPolicy::Accept),
            chain,
            IptChain::builtin(NfInetHooks::LocalOut, IptPolicy::Accept),
        ])
        .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    let pool = PagePool::new(PagePoolParams::default()).unwrap();
    let mut cpu = Cpu;
    let now = cpu.now();
    let counts = |t: &XtTable| -> Vec<u64> {
        let c = t.chains();
        let fwd = c.iter().find(|c| c.name == "FORWARD").unwrap();
        fwd.rules.iter().map(|r| r.counters.get().0).collect()
    };
    for p in pkts {
        let data = bytes(p);
        let state = NfHookState::new(NfInetHooks::Forward, p.in_if, p.out_if);
        let par = XtActionParam::parse(&data, &state).unwrap();
        let mut skb = SkBuff::from_slice(&pool, 0, &data).unwrap();
        let (i_n, o_n) = (cpu.dev_name(p.in_if), cpu.dev_name(p.out_if));
        // The reference: every rule in order, in full, until a verdict.
        let mut want_hits = vec![0u64; entries.len()];
        let mut want = NfVerdict::DROP;
        for (k, e) in entries.iter().enumerate() {
            if e.ip.ip_packet_match(&par, i_n.as_ref(), o_n.as_ref())
                && e.matches.iter().all(|m| m.mt(&par, &skb, now))
            {
                want_hits[k] = 1;
                match e.target {
                    XtTarget::Accept => {
                        want = NfVerdict::Accept;
                        break;
                    }
                    XtTarget::Drop => break,
                    _ => {}
                }
            }
        }
        let before = counts(&table);
        let got = table.ipt_do_table(&mut skb, &state, &mut cpu, None);
        let hits: Vec<u64> = counts(&table)
            .iter()
            .zip(&before)
            .map(|(a, b)| a - b)
            .collect();
        prop_assert_eq!(got, want, "{:?}", p);
        prop_assert_eq!(hits, want_hits, "{:?}", p);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Rulesets above the classifier's threshold (9 rules and up, across
    /// several bitset words).
    #[test]
    fn the_classifier_matches_the_linear_walk(
        rules in prop::collection::vec(rule(), 9..200),
        pkts in prop::collection::vec(pkt(), 1..40),
    ) {
        check(&rules, &pkts)?;
    }

    /// Rulesets whose rules mostly match the packet: many hits, long
    /// LOG runs, first-match decided late.
    #[test]
    fn dense_hits_keep_first_match_order(
        n in 9usize..150,
        t in prop::collection::vec(target(), 150),
        pkts in prop::collection::vec(pkt(), 1..10),
    ) {
        let rules: Vec<String> = (0..n)
            .map(|k| {
                let extra = match k % 5 {
                    0 => " -s 198.18.0.0/22",
                    1 => " ! -i lo",
                    2 => " ! -p icmp",
                    3 => " -d 198.18.0.0/16",
                    _ => "",
                };
                format!("{extra} -j {}", t[k])
            })
            .collect();
        check(&rules, &pkts)?;
    }
}
