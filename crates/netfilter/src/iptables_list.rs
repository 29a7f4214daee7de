//! `iptables -L -n [-v] [-x] [--line-numbers]`: a table listed in columns,
//! with packet and byte counters per rule and per built-in chain's policy.
//!
//! Mirrors `list_entries()` and `print_firewall()` in iptables'
//! `iptables/iptables.c`, the column helpers of `iptables/xshared.c`
//! (`print_header()`, `print_rule_details()`, `print_fragment()`,
//! `print_ifaces()`, `print_ipv4_addresses()`), `xtables_print_num()` of
//! `libxtables/xtables.c`, and the `print` functions of the extensions
//! this crate implements (`libxt_tcp.c`, `libxt_udp.c`, `libipt_icmp.c`,
//! `libxt_multiport.c`, `libxt_conntrack.c`, `libxt_mark.c`,
//! `libxt_length.c`, `libxt_limit.c`, `libipt_REJECT.c`, `libxt_LOG.c`,
//! `libxt_MARK.c`, `libxt_NAT.c`, `libxt_MASQUERADE.c`, `libxt_REDIRECT.c`).
//!
//! ```text
//! Chain INPUT (policy DROP 3 packets, 252 bytes)
//!  pkts bytes target     prot opt in     out     source               destination
//!     2   168 ACCEPT     all  --  *      *       0.0.0.0/0            0.0.0.0/0            ctstate RELATED,ESTABLISHED
//! ```
//!
//! # Deviations from Linux
//! - Only the numeric form (`-n`) exists: the simulation has no resolver,
//!   service or ICMP-name database, so names are never looked up.
//! - `LOG` prints `flags 0`: the log flags (`--log-tcp-sequence`, ...) are
//!   not kept by [`XtLogInfo`](crate::XtLogInfo).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::ip_tables::{
    IPT_F_FRAG, IPT_INV_DSTIP, IPT_INV_FRAG, IPT_INV_PROTO, IPT_INV_SRCIP, IPT_INV_VIA_IN,
    IPT_INV_VIA_OUT, IptEntry, IptIface, XtMatch, XtTable, XtTarget,
};
use crate::iptables_save::print_rate;
use crate::nf_nat_core::{
    NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PERSISTENT, NF_NAT_RANGE_PROTO_RANDOM,
    NF_NAT_RANGE_PROTO_RANDOM_FULLY, NF_NAT_RANGE_PROTO_SPECIFIED, NfNatRange2,
};
use crate::xt_conntrack::XT_STATE_NAMES;
use crate::xt_multiport::XtMultiportFlags;
use crate::xt_tcpudp::{XT_TCP_INV_DSTPT, XT_TCP_INV_FLAGS, XT_TCP_INV_SRCPT};

/// The options of a listing: `iptables -L -n` plus these flags.
///
/// Mirrors the `FMT_*` format bits `list_entries()` builds from the
/// command line (`FMT_NUMERIC` and `FMT_OPTIONS` always set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IptListFormat {
    /// `-v`: counters and the `in`/`out` columns (`FMT_VIA`; without it,
    /// `FMT_NOCOUNTS`).
    pub verbose: bool,
    /// `-x`: exact counters instead of `K`/`M`/`G` suffixes (clears
    /// `FMT_KILOMEGAGIGA`).
    pub exact: bool,
    /// `--line-numbers`: a `num` column (`FMT_LINENUMBERS`).
    pub line_numbers: bool,
}

impl IptListFormat {
    /// `-L -v -n`, the usual way to read counters.
    pub const VERBOSE: IptListFormat = IptListFormat {
        verbose: true,
        exact: false,
        line_numbers: false,
    };
}

/// One counter in a column (`xtables_print_num()`): exact, or rounded to
/// `K`, `M`, `G`, `T` above 99999; `table` pads to the column width.
fn print_num(out: &mut String, n: u64, fmt: IptListFormat, table: bool) {
    if fmt.exact {
        if table {
            let _ = write!(out, "{n:>8} ");
        } else {
            let _ = write!(out, "{n} ");
        }
        return;
    }
    if n <= 99_999 {
        if table {
            let _ = write!(out, "{n:>5} ");
        } else {
            let _ = write!(out, "{n} ");
        }
        return;
    }
    let mut n = n;
    for unit in ["K", "M", "G"] {
        n = (n + 500) / 1000;
        if n <= 9999 {
            if table {
                let _ = write!(out, "{n:>4}{unit} ");
            } else {
                let _ = write!(out, "{n}{unit} ");
            }
            return;
        }
    }
    n = (n + 500) / 1000;
    if table {
        let _ = write!(out, "{n:>4}T ");
    } else {
        let _ = write!(out, "{n}T ");
    }
}

/// `print_header()`: the chain line and the column titles.
fn print_header(
    out: &mut String,
    name: &str,
    policy: Option<(&str, u64, u64)>,
    refs: usize,
    fmt: IptListFormat,
) {
    let _ = write!(out, "Chain {name}");
    match policy {
        Some((pol, p, b)) => {
            let _ = write!(out, " (policy {pol}");
            if fmt.verbose {
                out.push(' ');
                print_num(out, p, fmt, false);
                out.push_str("packets, ");
                print_num(out, b, fmt, false);
                out.push_str("bytes");
            }
            out.push_str(")\n");
        }
        None => {
            let _ = writeln!(out, " ({refs} references)");
        }
    }
    if fmt.line_numbers {
        let _ = write!(out, "{:<4} ", "num");
    }
    if fmt.verbose {
        if fmt.exact {
            let _ = write!(out, "{:>8} {:>10} ", "pkts", "bytes");
        } else {
            let _ = write!(out, "{:>5} {:>5} ", "pkts", "bytes");
        }
    }
    let _ = write!(out, "{:<9} ", "target");
    out.push_str(" prot opt");
    if fmt.verbose {
        let _ = write!(out, " {:<6} {:<6} ", "in", "out");
    }
    let _ = write!(out, " {:<19} ", "source");
    let _ = writeln!(out, " {:<19} ", "destination");
}

/// `proto_to_name()` with lookups off: the names of
/// `xtables_chain_protos`, else the number.
fn proto_name(p: u8) -> String {
    match p {
        0 => "all".into(),
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        135 => "mh".into(),
        136 => "udplite".into(),
        n => n.to_string(),
    }
}

/// `ipv4_addr_to_string()` in numeric form: the address and `/len`
/// (nothing for /32, a dotted mask when not contiguous).
fn addr_string(addr: Ipv4Addr, mask: Ipv4Addr) -> String {
    let m = mask.to_bits();
    if m == u32::MAX {
        addr.to_string()
    } else if m.leading_ones() + m.trailing_zeros() == 32 {
        format!("{addr}/{}", m.leading_ones())
    } else {
        format!("{addr}/{mask}")
    }
}

fn iface_string(i: Option<&IptIface>, inv: bool) -> String {
    let name = i.map_or_else(|| "*".to_owned(), IptIface::to_string);
    format!("{}{name}", if inv { "!" } else { "" })
}

/// `print_ports()` of `libxt_tcp.c`/`libxt_udp.c`.
fn print_ports(out: &mut String, name: &str, r: (u16, u16), inv: bool) {
    if r == (0, 0xffff) && !inv {
        return;
    }
    let i = if inv { "!" } else { "" };
    if r.0 == r.1 {
        let _ = write!(out, " {name}:{i}{}", r.0);
    } else {
        let _ = write!(out, " {name}s:{i}{}:{}", r.0, r.1);
    }
}

fn print_states(out: &mut String, mask: u16) {
    let mut sep = ' ';
    for (n, b) in XT_STATE_NAMES {
        if mask & b != 0 {
            out.push(sep);
            out.push_str(n);
            sep = ',';
        }
    }
}

/// A match's `print` function.
fn print_match(out: &mut String, m: &XtMatch) {
    match m {
        XtMatch::Tcp(t) => {
            out.push_str(" tcp");
            print_ports(out, "spt", t.spts, t.invflags & XT_TCP_INV_SRCPT != 0);
            print_ports(out, "dpt", t.dpts, t.invflags & XT_TCP_INV_DSTPT != 0);
            let inv = t.invflags & XT_TCP_INV_FLAGS != 0;
            if t.flg_mask != 0 || inv {
                let _ = write!(
                    out,
                    " flags:{}0x{:02X}/0x{:02X}",
                    if inv { "!" } else { "" },
                    t.flg_mask,
                    t.flg_cmp
                );
            }
        }
        XtMatch::Udp(u) => {
            out.push_str(" udp");
            print_ports(out, "spt", u.spts, u.invflags & XT_TCP_INV_SRCPT != 0);
            print_ports(out, "dpt", u.dpts, u.invflags & XT_TCP_INV_DSTPT != 0);
        }
        XtMatch::Icmp(i) => {
            out.push_str(" icmp");
            if i.invert {
                out.push_str(" !");
            }
            let _ = write!(out, "type {}", i.icmp_type);
            if i.code.0 == i.code.1 {
                let _ = write!(out, " code {}", i.code.0);
            } else if i.code != (0, 0xff) {
                let _ = write!(out, " codes {}-{}", i.code.0, i.code.1);
            }
        }
        XtMatch::Multiport(mp) => {
            out.push_str(" multiport");
            out.push_str(match mp.flags {
                XtMultiportFlags::Source => " sports ",
                XtMultiportFlags::Destination => " dports ",
                XtMultiportFlags::Either => " ports ",
            });
            if mp.invert {
                out.push_str(" !");
            }
            for (k, &(a, b)) in mp.ports.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{a}");
                if a != b {
                    let _ = write!(out, ":{b}");
                }
            }
        }
        XtMatch::Conntrack(c) => {
            if c.invert {
                out.push_str(" !");
            }
            out.push_str(if c.alias { " state" } else { " ctstate" });
            print_states(out, c.state_mask);
        }
        XtMatch::Mark(mk) => {
            out.push_str(" mark match");
            if mk.invert {
                out.push_str(" !");
            }
            if mk.mask == u32::MAX {
                let _ = write!(out, " 0x{:x}", mk.mark);
            } else {
                let _ = write!(out, " 0x{:x}/0x{:x}", mk.mark, mk.mask);
            }
        }
        XtMatch::Length(l) => {
            let _ = write!(out, " length {}", if l.invert { "!" } else { "" });
            if l.min == l.max {
                let _ = write!(out, "{}", l.min);
            } else {
                let _ = write!(out, "{}:{}", l.min, l.max);
            }
        }
        XtMatch::Limit(l) => {
            out.push_str(" limit: avg");
            print_rate(out, l.avg);
            let _ = write!(out, " burst {}", l.burst);
        }
    }
}

/// `print_range()` of `libxt_NAT.c`.
fn print_nat_range(out: &mut String, r: &NfNatRange2) {
    if r.flags & NF_NAT_RANGE_MAP_IPS != 0 {
        let _ = write!(out, "{}", r.min_addr);
        if r.max_addr != r.min_addr {
            let _ = write!(out, "-{}", r.max_addr);
        }
    }
    if r.flags & NF_NAT_RANGE_PROTO_SPECIFIED != 0 {
        let _ = write!(out, ":{}", r.min_proto);
        if r.max_proto != r.min_proto {
            let _ = write!(out, "-{}", r.max_proto);
        }
    }
}

fn print_random(out: &mut String, r: &NfNatRange2) {
    if r.flags & NF_NAT_RANGE_PROTO_RANDOM != 0 {
        out.push_str(" random");
    }
    if r.flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY != 0 {
        out.push_str(" random-fully");
    }
}

/// A target's `print` function (none for the standard verdicts and
/// jumps).
fn print_target(out: &mut String, t: &XtTarget) {
    match t {
        XtTarget::Reject(w) => {
            let _ = write!(out, " reject-with {}", w.name());
        }
        XtTarget::Log(l) => {
            let _ = write!(out, " LOG flags 0 level {}", l.level);
            if !l.prefix.is_empty() {
                let _ = write!(out, " prefix \"{}\"", l.prefix);
            }
        }
        XtTarget::Mark(m) => {
            let _ = if m.mark == 0 {
                write!(out, " MARK and 0x{:x}", !m.mask)
            } else if m.mark == m.mask {
                write!(out, " MARK or 0x{:x}", m.mark)
            } else if m.mask == 0 {
                write!(out, " MARK xor 0x{:x}", m.mark)
            } else if m.mask == u32::MAX {
                write!(out, " MARK set 0x{:x}", m.mark)
            } else {
                write!(out, " MARK xset 0x{:x}/0x{:x}", m.mark, m.mask)
            };
        }
        XtTarget::Snat(r) | XtTarget::Dnat(r) => {
            out.push_str(" to:");
            print_nat_range(out, r);
            print_random(out, r);
            if r.flags & NF_NAT_RANGE_PERSISTENT != 0 {
                out.push_str(" persistent");
            }
        }
        XtTarget::Masquerade(r) | XtTarget::Redirect(r) => {
            if r.flags & NF_NAT_RANGE_PROTO_SPECIFIED != 0 {
                out.push_str(if matches!(t, XtTarget::Masquerade(_)) {
                    " masq ports: "
                } else {
                    " redir ports "
                });
                let _ = write!(out, "{}", r.min_proto);
                if r.max_proto != r.min_proto {
                    let _ = write!(out, "-{}", r.max_proto);
                }
            }
            print_random(out, r);
        }
        _ => {}
    }
}

/// `print_firewall()`: one rule's row.
fn print_firewall(out: &mut String, e: &IptEntry, num: usize, fmt: IptListFormat) {
    let ip = &e.ip;
    let inv = |f: u8| ip.invflags & f != 0;
    if fmt.line_numbers {
        let _ = write!(out, "{num:<4} ");
    }
    if fmt.verbose {
        let (p, b) = e.counters.get();
        print_num(out, p, fmt, true);
        print_num(out, b, fmt, true);
    }
    let _ = write!(out, "{:<9} ", e.target.name());
    out.push(if inv(IPT_INV_PROTO) { '!' } else { ' ' });
    let _ = write!(out, "{:<5}", proto_name(ip.proto));
    out.push(if inv(IPT_INV_FRAG) { '!' } else { '-' });
    out.push(if ip.flags & IPT_F_FRAG != 0 { 'f' } else { '-' });
    out.push(' ');
    if fmt.verbose {
        let _ = write!(
            out,
            " {:<6} {:<6} ",
            iface_string(ip.iniface.as_ref(), inv(IPT_INV_VIA_IN)),
            iface_string(ip.outiface.as_ref(), inv(IPT_INV_VIA_OUT))
        );
    }
    out.push(if inv(IPT_INV_SRCIP) { '!' } else { ' ' });
    let _ = write!(out, "{:<19} ", addr_string(ip.src, ip.smsk));
    out.push(if inv(IPT_INV_DSTIP) { '!' } else { ' ' });
    let _ = write!(out, "{:<19} ", addr_string(ip.dst, ip.dmsk));
    if matches!(e.target, XtTarget::Goto(_)) {
        out.push_str("[goto] ");
    }
    for m in &e.matches {
        print_match(out, m);
    }
    print_target(out, &e.target);
    out.push('\n');
}

/// A table as `iptables -t NAME -L -n` prints it with the options of
/// `fmt`: each chain (built-in chains in hook order with their policy and
/// its counters, then user chains by name with their reference count),
/// a blank line between chains.
///
/// Mirrors `list_entries()` in iptables' `iptables/iptables.c`.
pub fn iptables_list(table: &XtTable, fmt: IptListFormat) -> String {
    let chains = table.chains();
    let mut out = String::new();
    for (k, c) in chains.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let refs = chains
            .iter()
            .flat_map(|o| &o.rules)
            .filter(
                |r| matches!(&r.target, XtTarget::Jump(to) | XtTarget::Goto(to) if *to == c.name),
            )
            .count();
        let (p, b) = c.counters.get();
        let policy = c.policy.map(|pol| (pol.name(), p, b));
        print_header(&mut out, &c.name, policy, refs, fmt);
        for (n, e) in c.rules.iter().enumerate() {
            print_firewall(&mut out, e, n + 1, fmt);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ip_tables::{IptChain, IptPolicy, IptTableKind};
    use crate::iptables_save::parse_rule;
    use crate::netfilter::NfInetHooks;

    fn rule(s: &str) -> IptEntry {
        let w: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        parse_rule(&w).unwrap()
    }

    #[test]
    fn counters_round_to_units_as_xtables_print_num() {
        let f = IptListFormat::VERBOSE;
        let mut s = String::new();
        for n in [
            0,
            99_999,
            100_000,
            1_234_567,
            9_999_499,
            9_999_500,
            12_345_678_901,
        ] {
            print_num(&mut s, n, f, true);
        }
        assert_eq!(s, "    0 99999  100K 1235K 9999K   10M   12G ");
        let mut s = String::new();
        print_num(&mut s, 1_234_567, IptListFormat { exact: true, ..f }, true);
        print_num(&mut s, 1_234_567, f, false);
        assert_eq!(s, " 1234567 1235K ");
    }

    /// The exact text iptables 1.8 prints for its own test ruleset
    /// (`tests/shell/testcases/iptables/0002-verbose-output_0`, whose
    /// comparison ignores trailing blanks: here they are kept, as printed).
    #[test]
    fn the_verbose_listing_matches_iptables_text() {
        let t = XtTable::new(IptTableKind::Filter);
        let mut fwd = IptChain::builtin(NfInetHooks::Forward, IptPolicy::Accept);
        fwd.rules.push(rule(
            "-s 10.0.0.1/32 -d 10.0.0.2/32 -i eth2 -o eth3 -j ACCEPT",
        ));
        fwd.rules.push(rule(
            "-s 10.0.0.4/32 -d 10.0.0.5/32 -i eth2 -o eth3 -j ACCEPT",
        ));
        t.replace(vec![
            IptChain::builtin(NfInetHooks::LocalIn, IptPolicy::Accept),
            fwd,
            IptChain::builtin(NfInetHooks::LocalOut, IptPolicy::Accept),
        ])
        .unwrap();
        let got = iptables_list(&t, IptListFormat::VERBOSE);
        let trimmed: Vec<&str> = got.lines().map(str::trim_end).collect();
        assert_eq!(
            trimmed.join("\n"),
            "Chain INPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination

Chain FORWARD (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination
    0     0 ACCEPT     all  --  eth2   eth3    10.0.0.1             10.0.0.2
    0     0 ACCEPT     all  --  eth2   eth3    10.0.0.4             10.0.0.5

Chain OUTPUT (policy ACCEPT 0 packets, 0 bytes)
 pkts bytes target     prot opt in     out     source               destination"
        );
        // The trailing blanks of the header and rows, as printf leaves them.
        assert!(got.contains(" source               destination         \n"));
        assert!(got.contains("10.0.0.1             10.0.0.2            \n"));
    }

    #[test]
    fn matches_targets_and_user_chains_print_as_iptables_does() {
        let t = XtTable::new(IptTableKind::Filter);
        let mut input = IptChain::builtin(NfInetHooks::LocalIn, IptPolicy::Drop);
        for r in [
            "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-p tcp -m tcp --dport 22 --syn -j ssh",
            "! -s 198.18.0.0/15 -p udp -m udp --sport 53 --dport 1024:65535 -j DROP",
            "-p icmp -m icmp --icmp-type 8 -m limit --limit 3/hour -j ACCEPT",
            "-i eth+ -p 47 -j LOG --log-prefix gre:",
            "-p icmp -j REJECT --reject-with icmp-host-unreachable",
            "-m mark --mark 0x1 -m length --length 0:100 -g ssh",
        ] {
            input.rules.push(rule(r));
        }
        let mut ssh = IptChain::user("ssh");
        ssh.rules
            .push(rule("-p tcp -j REJECT --reject-with tcp-reset"));
        t.replace(vec![
            input,
            IptChain::builtin(NfInetHooks::Forward, IptPolicy::Accept),
            IptChain::builtin(NfInetHooks::LocalOut, IptPolicy::Accept),
            ssh,
        ])
        .unwrap();
        let got = iptables_list(&t, IptListFormat::default());
        let lines: Vec<&str> = got.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            [
                "Chain INPUT (policy DROP)",
                "target     prot opt source               destination",
                "ACCEPT     all  --  0.0.0.0/0            0.0.0.0/0            ctstate RELATED,ESTABLISHED",
                "ssh        tcp  --  0.0.0.0/0            0.0.0.0/0            tcp dpt:22 flags:0x17/0x02",
                "DROP       udp  -- !198.18.0.0/15        0.0.0.0/0            udp spt:53 dpts:1024:65535",
                "ACCEPT     icmp --  0.0.0.0/0            0.0.0.0/0            icmptype 8 limit: avg 3/hour burst 5",
                "LOG        47   --  0.0.0.0/0            0.0.0.0/0            LOG flags 0 level 4 prefix \"gre:\"",
                "REJECT     icmp --  0.0.0.0/0            0.0.0.0/0            reject-with icmp-host-unreachable",
                "ssh        all  --  0.0.0.0/0            0.0.0.0/0           [goto]  mark match 0x1 length 0:100",
                "",
                "Chain FORWARD (policy ACCEPT)",
                "target     prot opt source               destination",
                "",
                "Chain OUTPUT (policy ACCEPT)",
                "target     prot opt source               destination",
                "",
                "Chain ssh (2 references)",
                "target     prot opt source               destination",
                "REJECT     tcp  --  0.0.0.0/0            0.0.0.0/0            reject-with tcp-reset",
            ]
        );
    }
}
