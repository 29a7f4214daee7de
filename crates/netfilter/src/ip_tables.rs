//! iptables: tables of chains of rules, checked and compiled as a whole,
//! traversed at their hooks.
//!
//! Mirrors `net/ipv4/netfilter/ip_tables.c` (`struct ipt_ip`, `struct
//! ipt_entry`, `ip_packet_match()`, `icmp_match()`, `ipt_do_table()`,
//! `translate_table()` with `mark_source_chains()`), `net/netfilter/x_tables.c`
//! (`xt_replace_table()`), and the table modules
//! `net/ipv4/netfilter/iptable_{filter,nat,mangle,raw}.c`.
//!
//! ```text
//!  NF_HOOK ─► table hook ─► ipt_do_table: chain = hook's built-in chain
//!     for each candidate rule (classifier) in order:
//!        ip_packet_match && every match ─► counters += 1, len
//!          ACCEPT/DROP ─► verdict       jump ─► push, enter chain
//!          RETURN / end of user chain ─► pop      goto ─► enter, no push
//!          LOG, MARK ─► continue        REJECT ─► send, DROP
//!     end of built-in chain ─► policy (counted)
//! ```

use std::cell::Cell;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{Instant, SkBuff};
use parking_lot::RwLock;

use crate::classifier::{CLASSIFY_MIN_RULES, Classifier};
use crate::core::{NfHookHandle, NfHookReg, NfHooks};
use crate::ipt_reject::{IptRejectWith, reject_tg};
use crate::netfilter::NfInetHooks::{Forward, LocalIn, LocalOut, PostRouting, PreRouting};
use crate::netfilter::{NfHookOps, NfHookState, NfInetHooks, NfSkb, NfVerdict};
use crate::netfilter_ipv4::{
    NF_IP_PRI_FILTER, NF_IP_PRI_MANGLE, NF_IP_PRI_NAT_DST, NF_IP_PRI_NAT_SRC, NF_IP_PRI_RAW,
};
use crate::nf_conntrack_core::{IpConntrackInfo, NfConntrack, nf_ct_get_info};
use crate::nf_nat_core::{NfNatManipType, NfNatRange2};
use crate::nf_nat_masquerade::nf_nat_masquerade_ipv4;
use crate::x_tables::{IfName, NetfilterContext, XtActionParam, XtCounters};
use crate::xt_conntrack::XtConntrackMtinfo;
use crate::xt_length::XtLengthInfo;
use crate::xt_limit::XtRateinfo;
use crate::xt_log::{XtLogInfo, log_tg};
use crate::xt_mark::{XtMarkMtinfo1, XtMarkTginfo2};
use crate::xt_multiport::XtMultiport;
use crate::xt_nat::{nf_nat_redirect_ipv4, xt_nat_target};
use crate::xt_tcpudp::{XtTcp, XtUdp};

/// Invert the input interface test (`IPT_INV_VIA_IN`).
pub const IPT_INV_VIA_IN: u8 = 0x01;
/// Invert the output interface test (`IPT_INV_VIA_OUT`).
pub const IPT_INV_VIA_OUT: u8 = 0x02;
/// Invert the source test (`IPT_INV_SRCIP`).
pub const IPT_INV_SRCIP: u8 = 0x08;
/// Invert the destination test (`IPT_INV_DSTIP`).
pub const IPT_INV_DSTIP: u8 = 0x10;
/// Invert the fragment test (`IPT_INV_FRAG`).
pub const IPT_INV_FRAG: u8 = 0x20;
/// Invert the protocol test (`IPT_INV_PROTO`).
pub const IPT_INV_PROTO: u8 = 0x40;
/// `-f`: match second and later fragments (`IPT_F_FRAG`).
pub const IPT_F_FRAG: u8 = 0x01;

/// The deepest nesting of jumps a table may have (the kernel's jump stack
/// is as deep as the table has chains; ours is fixed).
pub const XT_MAX_JUMP_DEPTH: usize = 64;

/// An interface name in a rule; `eth+` matches every name starting with
/// `eth`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IptIface {
    /// The name, without the trailing `+`.
    pub name: String,
    /// Whether the name is a prefix (`+` given).
    pub wildcard: bool,
}

impl IptIface {
    /// Parses `eth0` or `eth+`.
    ///
    /// # Deviations from Linux
    /// iptables only warns about odd characters in an interface name; this
    /// refuses, besides names of `IFNAMSIZ` or more, every name no device
    /// can carry (`dev_valid_name()`: `/`, `:`, whitespace), control or
    /// quote characters and a leading `!` (read back as an inversion), so what `iptables-save` prints unquoted always
    /// restores to the same rule.
    pub fn parse(s: &str) -> Option<IptIface> {
        let (name, wildcard) = match s.strip_suffix('+') {
            Some(n) => (n, true),
            None => (s, false),
        };
        if name.len() >= crate::x_tables::IFNAMSIZ || (!wildcard && name.is_empty()) {
            return None;
        }
        if name.starts_with('!')
            || !name
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b':' | b'"' | b'\'' | b'\\'))
        {
            return None;
        }
        Some(IptIface {
            name: name.to_owned(),
            wildcard,
        })
    }

    /// Whether device `dev` (`None`: no device) matches
    /// (`ifname_compare_aligned()` with the mask iptables builds).
    pub fn matches(&self, dev: Option<&IfName>) -> bool {
        let d = dev.map_or(&[][..], IfName::as_bytes);
        if self.wildcard {
            d.starts_with(self.name.as_bytes())
        } else {
            d == self.name.as_bytes()
        }
    }
}

impl fmt::Display for IptIface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name, if self.wildcard { "+" } else { "" })
    }
}

/// The IP-header part of a rule.
///
/// Mirrors `struct ipt_ip`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IptIp {
    /// Source address (`-s`), already masked.
    pub src: Ipv4Addr,
    /// Source mask; 0.0.0.0 when any.
    pub smsk: Ipv4Addr,
    /// Destination address (`-d`).
    pub dst: Ipv4Addr,
    /// Destination mask.
    pub dmsk: Ipv4Addr,
    /// `-i`.
    pub iniface: Option<IptIface>,
    /// `-o`.
    pub outiface: Option<IptIface>,
    /// `-p`; 0 for any.
    pub proto: u8,
    /// `IPT_F_FRAG`.
    pub flags: u8,
    /// `IPT_INV_*`.
    pub invflags: u8,
}

impl Default for IptIp {
    fn default() -> Self {
        IptIp {
            src: Ipv4Addr::UNSPECIFIED,
            smsk: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::UNSPECIFIED,
            dmsk: Ipv4Addr::UNSPECIFIED,
            iniface: None,
            outiface: None,
            proto: 0,
            flags: 0,
            invflags: 0,
        }
    }
}

impl IptIp {
    /// Whether the packet matches the IP part.
    ///
    /// Mirrors `ip_packet_match()`.
    #[inline]
    pub fn ip_packet_match(
        &self,
        par: &XtActionParam,
        in_name: Option<&IfName>,
        out_name: Option<&IfName>,
    ) -> bool {
        let inv = |f: u8| self.invflags & f != 0;
        if ((par.saddr & self.smsk.to_bits()) != self.src.to_bits()) ^ inv(IPT_INV_SRCIP)
            || ((par.daddr & self.dmsk.to_bits()) != self.dst.to_bits()) ^ inv(IPT_INV_DSTIP)
        {
            return false;
        }
        if let Some(i) = &self.iniface
            && !(i.matches(in_name) ^ inv(IPT_INV_VIA_IN))
        {
            return false;
        }
        if let Some(o) = &self.outiface
            && !(o.matches(out_name) ^ inv(IPT_INV_VIA_OUT))
        {
            return false;
        }
        if self.proto != 0 && ((par.protocol != self.proto) ^ inv(IPT_INV_PROTO)) {
            return false;
        }
        if self.flags & IPT_F_FRAG != 0 && ((par.fragoff == 0) ^ inv(IPT_INV_FRAG)) {
            return false;
        }
        true
    }
}

/// The `icmp` match (`--icmp-type T[/C]`).
///
/// Mirrors `struct ipt_icmp` and `icmp_match()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IptIcmp {
    /// The type; `0xff` is `any`.
    pub icmp_type: u8,
    /// Code range.
    pub code: (u8, u8),
    /// `! --icmp-type`.
    pub invert: bool,
}

impl IptIcmp {
    /// Whether the packet matches; never for non-first fragments.
    pub fn mt(&self, par: &XtActionParam) -> bool {
        if par.fragoff != 0 || !par.has_icmp || par.protocol != 1 {
            return false;
        }
        let hit = self.icmp_type == 0xff
            || (self.icmp_type == par.icmp_type
                && par.icmp_code >= self.code.0
                && par.icmp_code <= self.code.1);
        hit ^ self.invert
    }
}

/// One match of a rule (`struct xt_entry_match`), by extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XtMatch {
    /// `-m tcp`.
    Tcp(XtTcp),
    /// `-m udp`.
    Udp(XtUdp),
    /// `-m icmp`.
    Icmp(IptIcmp),
    /// `-m multiport`.
    Multiport(XtMultiport),
    /// `-m conntrack --ctstate` / `-m state --state`.
    Conntrack(XtConntrackMtinfo),
    /// `-m mark`.
    Mark(XtMarkMtinfo1),
    /// `-m length`.
    Length(XtLengthInfo),
    /// `-m limit`.
    Limit(XtRateinfo),
}

impl XtMatch {
    /// The extension name (`-m NAME`).
    pub fn name(&self) -> &'static str {
        match self {
            XtMatch::Tcp(_) => "tcp",
            XtMatch::Udp(_) => "udp",
            XtMatch::Icmp(_) => "icmp",
            XtMatch::Multiport(_) => "multiport",
            XtMatch::Conntrack(c) if c.alias => "state",
            XtMatch::Conntrack(_) => "conntrack",
            XtMatch::Mark(_) => "mark",
            XtMatch::Length(_) => "length",
            XtMatch::Limit(_) => "limit",
        }
    }

    /// Whether the packet matches.
    #[inline]
    pub fn mt(&self, par: &XtActionParam, skb: &SkBuff, now: Instant) -> bool {
        match self {
            XtMatch::Tcp(m) => m.mt(par),
            XtMatch::Udp(m) => m.mt(par),
            XtMatch::Icmp(m) => m.mt(par),
            XtMatch::Multiport(m) => m.mt(par),
            XtMatch::Conntrack(m) => m.mt(skb),
            XtMatch::Mark(m) => m.mt(skb),
            XtMatch::Length(m) => m.mt(par),
            XtMatch::Limit(m) => m.mt(now),
        }
    }
}

/// What a rule does when it matches (`struct xt_entry_target`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XtTarget {
    /// No `-j`: count and continue.
    None,
    /// `-j ACCEPT` (`NF_ACCEPT` as a standard verdict).
    Accept,
    /// `-j DROP`.
    Drop,
    /// `-j RETURN` (`XT_RETURN`).
    Return,
    /// `-j CHAIN`: call a user chain.
    Jump(String),
    /// `-g CHAIN`: continue in a user chain without coming back.
    Goto(String),
    /// `-j REJECT`.
    Reject(IptRejectWith),
    /// `-j LOG`.
    Log(XtLogInfo),
    /// `-j MARK`.
    Mark(XtMarkTginfo2),
    /// `-j SNAT --to-source`.
    Snat(NfNatRange2),
    /// `-j DNAT --to-destination`.
    Dnat(NfNatRange2),
    /// `-j MASQUERADE [--to-ports]`.
    Masquerade(NfNatRange2),
    /// `-j REDIRECT [--to-ports]`.
    Redirect(NfNatRange2),
}

impl XtTarget {
    /// The target name as `-j` takes it.
    pub fn name(&self) -> &str {
        match self {
            XtTarget::None => "",
            XtTarget::Accept => "ACCEPT",
            XtTarget::Drop => "DROP",
            XtTarget::Return => "RETURN",
            XtTarget::Jump(c) | XtTarget::Goto(c) => c,
            XtTarget::Reject(_) => "REJECT",
            XtTarget::Log(_) => "LOG",
            XtTarget::Mark(_) => "MARK",
            XtTarget::Snat(_) => "SNAT",
            XtTarget::Dnat(_) => "DNAT",
            XtTarget::Masquerade(_) => "MASQUERADE",
            XtTarget::Redirect(_) => "REDIRECT",
        }
    }
}

/// One rule.
///
/// Mirrors `struct ipt_entry`: the IP part, the matches, the target, and
/// the rule's counters.
#[derive(Clone, Debug)]
pub struct IptEntry {
    /// The IP header tests.
    pub ip: IptIp,
    /// The matches, in order.
    pub matches: Vec<XtMatch>,
    /// The target.
    pub target: XtTarget,
    /// Packets and bytes that matched.
    pub counters: XtCounters,
    /// The line the rule came from in an `iptables-restore` file (0 when
    /// built in code), for error messages.
    pub line: usize,
}

impl PartialEq for IptEntry {
    /// Rules are equal when they test and do the same (counters and source
    /// line aside).
    fn eq(&self, o: &Self) -> bool {
        self.ip == o.ip && self.matches == o.matches && self.target == o.target
    }
}

impl IptEntry {
    /// A rule with the given parts and zero counters.
    pub fn new(ip: IptIp, matches: Vec<XtMatch>, target: XtTarget) -> IptEntry {
        IptEntry {
            ip,
            matches,
            target,
            counters: XtCounters::default(),
            line: 0,
        }
    }
}

/// A built-in chain's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IptPolicy {
    /// `ACCEPT`.
    Accept,
    /// `DROP`.
    Drop,
}

impl IptPolicy {
    /// `ACCEPT` or `DROP`.
    pub fn name(self) -> &'static str {
        match self {
            IptPolicy::Accept => "ACCEPT",
            IptPolicy::Drop => "DROP",
        }
    }
}

/// A chain: built-in (with a policy) or user-defined.
#[derive(Clone, Debug)]
pub struct IptChain {
    /// `INPUT`, ... or the user's name.
    pub name: String,
    /// `Some` for built-in chains.
    pub policy: Option<IptPolicy>,
    /// Policy counters (packets that fell off the end of a built-in chain).
    pub counters: XtCounters,
    /// The rules, in order.
    pub rules: Vec<IptEntry>,
    /// The line the chain was declared on (0 when built in code).
    pub line: usize,
}

impl IptChain {
    /// An empty built-in chain with `policy`.
    pub fn builtin(hook: NfInetHooks, policy: IptPolicy) -> IptChain {
        IptChain {
            name: hook.name().to_owned(),
            policy: Some(policy),
            counters: XtCounters::default(),
            rules: Vec::new(),
            line: 0,
        }
    }

    /// An empty user chain.
    pub fn user(name: &str) -> IptChain {
        IptChain {
            name: name.to_owned(),
            policy: None,
            counters: XtCounters::default(),
            rules: Vec::new(),
            line: 0,
        }
    }
}

/// The four IPv4 tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IptTableKind {
    /// `raw` (`iptable_raw.c`): PREROUTING, OUTPUT at -300.
    Raw,
    /// `mangle` (`iptable_mangle.c`): all five at -150.
    Mangle,
    /// `nat` (`iptable_nat.c`): PREROUTING, OUTPUT at -100 (DNAT), INPUT,
    /// POSTROUTING at 100 (SNAT).
    Nat,
    /// `filter` (`iptable_filter.c`): INPUT, FORWARD, OUTPUT at 0.
    Filter,
}

impl IptTableKind {
    /// All four, in the order `iptables-save` prints them here.
    pub const ALL: [IptTableKind; 4] = [
        IptTableKind::Raw,
        IptTableKind::Mangle,
        IptTableKind::Nat,
        IptTableKind::Filter,
    ];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            IptTableKind::Raw => "raw",
            IptTableKind::Mangle => "mangle",
            IptTableKind::Nat => "nat",
            IptTableKind::Filter => "filter",
        }
    }

    /// The table named `s`.
    pub fn from_name(s: &str) -> Option<IptTableKind> {
        IptTableKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The hooks the table has built-in chains at (`valid_hooks`).
    pub fn valid_hooks(self) -> &'static [NfInetHooks] {
        match self {
            IptTableKind::Raw => &[PreRouting, LocalOut],
            IptTableKind::Mangle => &[PreRouting, LocalIn, Forward, LocalOut, PostRouting],
            IptTableKind::Nat => &[PreRouting, LocalIn, LocalOut, PostRouting],
            IptTableKind::Filter => &[LocalIn, Forward, LocalOut],
        }
    }

    /// The priority the table's hook runs at.
    pub fn priority(self, hook: NfInetHooks) -> i32 {
        match self {
            IptTableKind::Raw => NF_IP_PRI_RAW,
            IptTableKind::Mangle => NF_IP_PRI_MANGLE,
            IptTableKind::Nat => match NfNatManipType::of_hook(hook) {
                NfNatManipType::Dst => NF_IP_PRI_NAT_DST,
                NfNatManipType::Src => NF_IP_PRI_NAT_SRC,
            },
            IptTableKind::Filter => NF_IP_PRI_FILTER,
        }
    }
}

/// Why a table was refused.
///
/// Mirrors the errors of `translate_table()` and the extensions'
/// `checkentry` (`EINVAL`, `ELOOP`, `ENOENT`), with where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XtError {
    /// The chain at fault.
    pub chain: String,
    /// The rule's position in the chain, from 1; 0 for the chain itself.
    pub rule: usize,
    /// The source line (0 when not from a file).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for XtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line != 0 {
            write!(f, "line {}: ", self.line)?;
        }
        if self.rule != 0 {
            write!(
                f,
                "chain {} rule {}: {}",
                self.chain, self.rule, self.reason
            )
        } else {
            write!(f, "chain {}: {}", self.chain, self.reason)
        }
    }
}

impl std::error::Error for XtError {}

type IfNames = (Option<IfName>, Option<IfName>);

/// What a rule does, resolved.
#[derive(Clone, Copy)]
enum Jump {
    Next,
    Chain(u32),
    Goto(u32),
}

/// A checked, compiled table (`struct xt_table_info`).
struct IptTableInfo {
    chains: Vec<IptChain>,
    jumps: Vec<Vec<Jump>>,
    classifiers: Vec<Option<Classifier>>,
    hook_entry: [Option<u32>; 5],
}

/// One table, swapped as a whole on replace.
///
/// Mirrors `struct xt_table` with its `private` `struct xt_table_info`:
/// packets take a reference to the current compiled table and walk it;
/// [`XtTable::replace`] checks and compiles a new one and swaps it in
/// (`xt_replace_table()`), so a packet never sees half a ruleset.
pub struct XtTable {
    kind: IptTableKind,
    private: RwLock<Arc<IptTableInfo>>,
}

impl fmt::Debug for XtTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XtTable")
            .field("name", &self.kind.name())
            .finish_non_exhaustive()
    }
}

fn err(chain: &IptChain, rule: usize, reason: impl Into<String>) -> XtError {
    let line = if rule == 0 {
        chain.line
    } else {
        chain.rules.get(rule - 1).map_or(chain.line, |r| r.line)
    };
    XtError {
        chain: chain.name.clone(),
        rule,
        line,
        reason: reason.into(),
    }
}

/// Checks a table's chains and compiles them (`translate_table()`).
fn translate_table(kind: IptTableKind, chains: Vec<IptChain>) -> Result<IptTableInfo, XtError> {
    let mut hook_entry = [None; 5];
    let mut index = std::collections::HashMap::new();
    for (i, c) in chains.iter().enumerate() {
        if index.insert(c.name.clone(), i as u32).is_some() {
            return Err(err(c, 0, "chain already exists"));
        }
        match (
            c.policy,
            NfInetHooks::ALL.iter().find(|h| h.name() == c.name),
        ) {
            (Some(_), Some(h)) if kind.valid_hooks().contains(h) => {
                hook_entry[h.index()] = Some(i as u32);
            }
            (Some(_), _) => {
                return Err(err(
                    c,
                    0,
                    format!("table {} has no built-in chain {}", kind.name(), c.name),
                ));
            }
            (None, Some(h)) if kind.valid_hooks().contains(h) => {
                return Err(err(c, 0, "a built-in chain needs a policy"));
            }
            (None, _) => {
                // A double quote would open a quoted word when
                // iptables-restore reads the `-A`/`-j` lines iptables-save
                // prints (names are printed bare), so the name could not
                // be restored.
                if c.name.is_empty()
                    || c.name.len() > 28
                    || c.name.starts_with('-')
                    || c.name.contains(|ch: char| ch.is_whitespace() || ch == '"')
                {
                    return Err(err(
                        c,
                        0,
                        "invalid chain name (1 to 28 characters, no blanks or double quotes, not starting with '-')",
                    ));
                }
            }
        }
    }
    if let Some(h) = kind
        .valid_hooks()
        .iter()
        .find(|h| hook_entry[h.index()].is_none())
    {
        return Err(XtError {
            chain: h.name().to_owned(),
            rule: 0,
            line: 0,
            reason: format!(
                "table {} needs its built-in chain {}",
                kind.name(),
                h.name()
            ),
        });
    }
    // Resolve jumps.
    let mut jumps = Vec::with_capacity(chains.len());
    for c in &chains {
        let mut js = Vec::with_capacity(c.rules.len());
        for (r, e) in c.rules.iter().enumerate() {
            js.push(match &e.target {
                XtTarget::Jump(t) | XtTarget::Goto(t) => {
                    let Some(&to) = index.get(t.as_str()) else {
                        return Err(err(c, r + 1, format!("no chain or target named {t}")));
                    };
                    if chains[to as usize].policy.is_some() {
                        return Err(err(c, r + 1, format!("cannot jump to built-in chain {t}")));
                    }
                    if matches!(e.target, XtTarget::Jump(_)) {
                        Jump::Chain(to)
                    } else {
                        Jump::Goto(to)
                    }
                }
                _ => Jump::Next,
            });
        }
        jumps.push(js);
    }
    // mark_source_chains: the hooks each chain is reachable from, loops,
    // and nesting depth.
    let mut hooks_of = vec![0u8; chains.len()];
    for h in kind.valid_hooks() {
        let Some(start) = hook_entry[h.index()] else {
            continue;
        };
        let mut marks = vec![Mark::default(); chains.len()];
        visit(
            &chains,
            &jumps,
            start,
            1 << h.index(),
            &mut hooks_of,
            &mut marks,
            0,
        )?;
    }
    // Per-rule checks (`xt_check_match`, `xt_check_target`).
    for (ci, c) in chains.iter().enumerate() {
        for (r, e) in c.rules.iter().enumerate() {
            check_entry(kind, c, r + 1, e, hooks_of[ci])?;
        }
    }
    let classifiers: Vec<Option<Classifier>> = chains
        .iter()
        .map(|c| {
            if c.rules.len() > CLASSIFY_MIN_RULES {
                Classifier::build(&c.rules)
            } else {
                None
            }
        })
        .collect();
    Ok(IptTableInfo {
        chains,
        jumps,
        classifiers,
        hook_entry,
    })
}

/// What the walk from one hook knows about a chain.
#[derive(Clone, Copy, Default)]
struct Mark {
    /// On the chain of jumps being walked (reaching it again is a loop).
    onpath: bool,
    /// The deepest nesting it has been walked from without error.
    walked: Option<usize>,
}

/// Walks the jumps from chain `c`, `depth` jumps below a hook's chain.
///
/// A chain already walked from as deep or deeper is not walked again: what
/// lies below it is known to be loop-free and shallow enough. So each
/// chain is walked at most [`XT_MAX_JUMP_DEPTH`] times per hook, where
/// walking every path would take time exponential in the nesting (two
/// jumps to the next chain, 40 chains deep, is 2^40 paths).
/// `mark_source_chains()` likewise visits each rule once per hook.
fn visit(
    chains: &[IptChain],
    jumps: &[Vec<Jump>],
    c: u32,
    hookbit: u8,
    hooks_of: &mut [u8],
    marks: &mut [Mark],
    depth: usize,
) -> Result<(), XtError> {
    let ci = c as usize;
    if marks[ci].onpath {
        return Err(err(
            &chains[ci],
            0,
            "loop: the chain is reached from itself (ELOOP)",
        ));
    }
    if marks[ci].walked.is_some_and(|d| d >= depth) {
        return Ok(());
    }
    if depth >= XT_MAX_JUMP_DEPTH {
        return Err(err(
            &chains[ci],
            0,
            format!("jumps nested deeper than {XT_MAX_JUMP_DEPTH}"),
        ));
    }
    hooks_of[ci] |= hookbit;
    marks[ci].onpath = true;
    for j in &jumps[ci] {
        if let Jump::Chain(t) | Jump::Goto(t) = *j {
            visit(chains, jumps, t, hookbit, hooks_of, marks, depth + 1)?;
        }
    }
    marks[ci] = Mark {
        onpath: false,
        walked: Some(depth),
    };
    Ok(())
}

fn hooks_names(mask: u8) -> String {
    NfInetHooks::ALL
        .iter()
        .filter(|h| mask & (1 << h.index()) != 0)
        .map(|h| h.name())
        .collect::<Vec<_>>()
        .join(",")
}

fn check_entry(
    kind: IptTableKind,
    c: &IptChain,
    r: usize,
    e: &IptEntry,
    hooks: u8,
) -> Result<(), XtError> {
    let proto_is = |p: u8| e.ip.proto == p && e.ip.invflags & IPT_INV_PROTO == 0;
    for m in &e.matches {
        match m {
            XtMatch::Tcp(_) if !proto_is(6) => {
                return Err(err(
                    c,
                    r,
                    "match \"tcp\" is only valid for protocol 6 (-p tcp)",
                ));
            }
            XtMatch::Udp(_) if !(proto_is(17) || proto_is(136)) => {
                return Err(err(
                    c,
                    r,
                    "match \"udp\" is only valid for protocol 17 (-p udp)",
                ));
            }
            XtMatch::Icmp(_) if !proto_is(1) => {
                return Err(err(
                    c,
                    r,
                    "match \"icmp\" is only valid for protocol 1 (-p icmp)",
                ));
            }
            XtMatch::Multiport(mp) => {
                if !(proto_is(6) || proto_is(17) || proto_is(136) || proto_is(132) || proto_is(33))
                {
                    return Err(err(
                        c,
                        r,
                        "multiport needs -p tcp, udp, udplite, sctp or dccp",
                    ));
                }
                let slots: usize = mp
                    .ports
                    .iter()
                    .map(|(a, b)| if a == b { 1 } else { 2 })
                    .sum();
                if slots > crate::xt_multiport::XT_MULTI_PORTS {
                    return Err(err(
                        c,
                        r,
                        "multiport takes at most 15 ports (a range counts as two)",
                    ));
                }
            }
            XtMatch::Limit(l) if l.avg == 0 || l.burst == 0 => {
                return Err(err(c, r, "limit: rate and burst must be positive"));
            }
            _ => {}
        }
    }
    let allowed = |table: Option<IptTableKind>, hookmask: u8, name: &str| -> Result<(), XtError> {
        if let Some(t) = table
            && t != kind
        {
            return Err(err(
                c,
                r,
                format!("target {name} is only valid in the {} table", t.name()),
            ));
        }
        if hooks & !hookmask != 0 {
            return Err(err(
                c,
                r,
                format!(
                    "target {name} is only valid in {}, but the chain is reached from {}",
                    hooks_names(hookmask),
                    hooks_names(hooks)
                ),
            ));
        }
        Ok(())
    };
    let bit = |h: NfInetHooks| 1u8 << h.index();
    match &e.target {
        XtTarget::Reject(w) => {
            allowed(
                Some(IptTableKind::Filter),
                bit(LocalIn) | bit(Forward) | bit(LocalOut),
                "REJECT",
            )?;
            if *w == IptRejectWith::TcpReset && !proto_is(6) {
                return Err(err(
                    c,
                    r,
                    "REJECT --reject-with tcp-reset is only valid with -p tcp",
                ));
            }
        }
        XtTarget::Snat(_) => allowed(
            Some(IptTableKind::Nat),
            bit(PostRouting) | bit(LocalIn),
            "SNAT",
        )?,
        XtTarget::Dnat(_) => allowed(
            Some(IptTableKind::Nat),
            bit(PreRouting) | bit(LocalOut),
            "DNAT",
        )?,
        XtTarget::Masquerade(_) => {
            allowed(Some(IptTableKind::Nat), bit(PostRouting), "MASQUERADE")?;
        }
        XtTarget::Redirect(_) => allowed(
            Some(IptTableKind::Nat),
            bit(PreRouting) | bit(LocalOut),
            "REDIRECT",
        )?,
        XtTarget::Log(l) => {
            if l.level > 7 {
                return Err(err(c, r, "LOG --log-level must be 0..=7"));
            }
            if l.prefix.len() > 29 {
                return Err(err(c, r, "LOG --log-prefix is at most 29 characters"));
            }
        }
        _ => {}
    }
    Ok(())
}

impl XtTable {
    /// A table of `kind` with its built-in chains empty and policy ACCEPT
    /// (what loading `iptable_filter` etc. gives).
    pub fn new(kind: IptTableKind) -> Arc<XtTable> {
        let chains = kind
            .valid_hooks()
            .iter()
            .map(|&h| IptChain::builtin(h, IptPolicy::Accept))
            .collect();
        let info = match translate_table(kind, chains) {
            Ok(i) => i,
            Err(e) => unreachable!("the empty table is valid: {e}"),
        };
        Arc::new(XtTable {
            kind,
            private: RwLock::new(Arc::new(info)),
        })
    }

    /// Which table this is.
    pub fn kind(&self) -> IptTableKind {
        self.kind
    }

    /// The table's name.
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Checks and compiles `chains`, then swaps them in; on error nothing
    /// changes.
    ///
    /// Mirrors `do_replace()` → `translate_table()` → `xt_replace_table()`.
    /// The chains' counters are taken as they are (zero them for
    /// `iptables-restore` without `-c`).
    pub fn replace(&self, chains: Vec<IptChain>) -> Result<(), XtError> {
        let info = self.check(chains)?;
        *self.private.write() = Arc::new(info);
        Ok(())
    }

    fn check(&self, chains: Vec<IptChain>) -> Result<IptTableInfo, XtError> {
        translate_table(self.kind, chains)
    }

    pub(crate) fn prepare(&self, chains: Vec<IptChain>) -> Result<PreparedTable<'_>, XtError> {
        Ok(PreparedTable {
            table: self,
            info: self.check(chains)?,
        })
    }

    /// A copy of the chains with their current counters: built-in chains
    /// in hook order, then user chains sorted by name (as libiptc lists
    /// them).
    pub fn chains(&self) -> Vec<IptChain> {
        let info = Arc::clone(&self.private.read());
        let mut v = info.chains.clone();
        v.sort_by(|a, b| match (a.policy, b.policy) {
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), Some(_)) => hook_rank(&a.name).cmp(&hook_rank(&b.name)),
            (None, None) => a.name.cmp(&b.name),
        });
        v
    }

    /// Sets every counter to zero (`iptables -Z`).
    pub fn zero_counters(&self) {
        let info = Arc::clone(&self.private.read());
        for c in &info.chains {
            c.counters.set(0, 0);
            for r in &c.rules {
                r.counters.set(0, 0);
            }
        }
    }

    /// Runs the packet through the table's chain for `state.hook`.
    ///
    /// Mirrors `ipt_do_table()`. `ct` is the connection table NAT targets
    /// bind through (only the `nat` table's hook passes it). A packet that
    /// is not a parseable IPv4 datagram is dropped.
    ///
    /// Counters: each matching rule's, and the policy's of the built-in
    /// chain a packet falls off.
    pub fn ipt_do_table<C: NetfilterContext>(
        &self,
        skb: &mut SkBuff,
        state: &NfHookState,
        ctx: &mut C,
        ct: Option<&NfConntrack>,
    ) -> NfVerdict {
        let info = Arc::clone(&self.private.read());
        let Some(start) = info.hook_entry[state.hook.index()] else {
            return NfVerdict::Accept;
        };
        let Some(par) = XtActionParam::parse(skb.data(), state) else {
            return NfVerdict::DROP;
        };
        // Interface names are fetched from the host only when a rule needs
        // them, once per traversal.
        let names_cache: Cell<Option<IfNames>> = Cell::new(None);
        let names = |ctx: &C| -> IfNames {
            if let Some(n) = names_cache.get() {
                return n;
            }
            let n = (
                ctx.dev_name(state.in_ifindex),
                ctx.dev_name(state.out_ifindex),
            );
            names_cache.set(Some(n));
            n
        };
        let now = ctx.now();
        let len = skb.len();
        let mut stack = [(0u32, 0u32); XT_MAX_JUMP_DEPTH];
        let mut depth = 0usize;
        let mut chain = start;
        let mut pos = 0usize;
        loop {
            let ci = chain as usize;
            let rules = &info.chains[ci].rules;
            let skb_ref: &SkBuff = skb;
            let ctx_ref: &C = ctx;
            let full = |i: usize| {
                let e = &rules[i];
                let (i_n, o_n) = if e.ip.iniface.is_some() || e.ip.outiface.is_some() {
                    names(ctx_ref)
                } else {
                    (None, None)
                };
                e.ip.ip_packet_match(&par, i_n.as_ref(), o_n.as_ref())
                    && e.matches.iter().all(|m| m.mt(&par, skb_ref, now))
            };
            let hit = match &info.classifiers[ci] {
                Some(cl) => cl.first_from(&par, || names(ctx_ref), pos, full),
                None => (pos..rules.len()).find(|&i| full(i)),
            };
            let ret = match hit {
                None => true,
                Some(i) => {
                    let e = &rules[i];
                    e.counters.add(len);
                    match (&e.target, info.jumps[ci][i]) {
                        (_, Jump::Chain(to)) => {
                            stack[depth] = (chain, i as u32 + 1);
                            depth += 1;
                            chain = to;
                            pos = 0;
                            continue;
                        }
                        (_, Jump::Goto(to)) => {
                            chain = to;
                            pos = 0;
                            continue;
                        }
                        (XtTarget::Accept, _) => return NfVerdict::Accept,
                        (XtTarget::Drop, _) => return NfVerdict::DROP,
                        (XtTarget::Return, _) => true,
                        (XtTarget::None | XtTarget::Jump(_) | XtTarget::Goto(_), _) => {
                            pos = i + 1;
                            false
                        }
                        (XtTarget::Log(l), _) => {
                            log_tg(l, &par, skb.mark, ctx);
                            pos = i + 1;
                            false
                        }
                        (XtTarget::Mark(m), _) => {
                            m.tg(skb);
                            pos = i + 1;
                            false
                        }
                        (XtTarget::Reject(w), _) => {
                            reject_tg(*w, skb, state.hook, ctx);
                            return NfVerdict::DROP;
                        }
                        (XtTarget::Snat(r), _) => {
                            return ct.map_or(NfVerdict::DROP, |ct| {
                                xt_nat_target(ct, skb, r, NfNatManipType::Src, ctx)
                            });
                        }
                        (XtTarget::Dnat(r), _) => {
                            return ct.map_or(NfVerdict::DROP, |ct| {
                                xt_nat_target(ct, skb, r, NfNatManipType::Dst, ctx)
                            });
                        }
                        (XtTarget::Masquerade(r), _) => {
                            return ct.map_or(NfVerdict::DROP, |ct| {
                                nf_nat_masquerade_ipv4(ct, skb, r, state.out_ifindex, ctx)
                            });
                        }
                        (XtTarget::Redirect(r), _) => {
                            return ct.map_or(NfVerdict::DROP, |ct| {
                                nf_nat_redirect_ipv4(ct, skb, r, state.hook, state.in_ifindex, ctx)
                            });
                        }
                    }
                }
            };
            if ret {
                if depth == 0 {
                    // Falling off (or RETURN from) the built-in chain, or off
                    // a chain reached by goto from it: the policy.
                    let b = &info.chains[start as usize];
                    b.counters.add(len);
                    return match b.policy {
                        Some(IptPolicy::Drop) => NfVerdict::DROP,
                        _ => NfVerdict::Accept,
                    };
                }
                depth -= 1;
                (chain, pos) = (stack[depth].0, stack[depth].1 as usize);
            }
        }
    }

    /// Registers the table at its hooks and priority.
    ///
    /// Mirrors `ipt_register_table()` with the table module's hook ops
    /// (`iptable_filter_hook`, ...). The `nat` table needs the connection
    /// table and registers `nf_nat_ipv4_fn` hooks, which run the chain
    /// only for a connection's first packet and translate every packet.
    pub fn register_hooks<C: NetfilterContext + 'static>(
        self: &Arc<Self>,
        hooks: &NfHooks<C>,
        ct: Option<&Arc<NfConntrack>>,
    ) -> Result<Vec<NfHookHandle>, netcore::Errno> {
        if self.kind == IptTableKind::Nat && ct.is_none() {
            return Err(netcore::Errno::Inval);
        }
        let regs: Vec<NfHookReg<C>> = self
            .kind
            .valid_hooks()
            .iter()
            .map(|&h| {
                NfHookReg::new(
                    h,
                    self.kind.priority(h),
                    Arc::new(TableHook {
                        table: Arc::clone(self),
                        ct: ct.cloned(),
                    }) as Arc<dyn NfHookOps<C>>,
                )
            })
            .collect();
        hooks.nf_register_net_hooks(regs)
    }
}

fn hook_rank(name: &str) -> usize {
    NfInetHooks::ALL
        .iter()
        .position(|h| h.name() == name)
        .unwrap_or(5)
}

/// A table checked and compiled, not yet swapped in (the two-phase commit
/// of `iptables-restore`).
pub(crate) struct PreparedTable<'a> {
    table: &'a XtTable,
    info: IptTableInfo,
}

impl PreparedTable<'_> {
    pub(crate) fn commit(self) {
        *self.table.private.write() = Arc::new(self.info);
    }
}

/// A table as a hook.
struct TableHook {
    table: Arc<XtTable>,
    ct: Option<Arc<NfConntrack>>,
}

impl<C: NetfilterContext> NfHookOps<C> for TableHook {
    fn hook(&self, mut skb: NfSkb<'_>, state: &NfHookState, ctx: &mut C) -> NfVerdict {
        match (&self.ct, self.table.kind) {
            (Some(ct), IptTableKind::Nat) => nf_nat_ipv4_fn(&self.table, ct, &mut skb, state, ctx),
            _ => self.table.ipt_do_table(&mut skb, state, ctx, None),
        }
    }

    fn name(&self) -> &str {
        match self.table.kind {
            IptTableKind::Raw => "iptable_raw_hook",
            IptTableKind::Mangle => "iptable_mangle_hook",
            IptTableKind::Nat => "nf_nat_ipv4_fn",
            IptTableKind::Filter => "iptable_filter_hook",
        }
    }
}

/// The `nat` table's hook: chain on a connection's first packet, binding
/// for every packet.
///
/// Mirrors `nf_nat_inet_fn()` / `nf_nat_ipv4_fn()` in
/// `net/netfilter/nf_nat_core.c` and `nf_nat_proto.c`: ICMP errors related
/// to a connection are translated with
/// [`NfConntrack::nf_nat_icmp_reply_translation`]; a NEW connection not yet
/// bound for this hook's manip runs the chain, and if no rule bound it gets
/// a null binding; then [`NfConntrack::nf_nat_packet`] rewrites the packet.
///
/// # Deviations from Linux
/// After a destination change at LOCAL_OUT Linux re-routes the packet
/// (`nf_nat_ipv4_local_fn()`); here the IP layer must compare the
/// destination before and after the hook and re-route itself.
pub fn nf_nat_ipv4_fn<C: NetfilterContext>(
    table: &XtTable,
    ct: &NfConntrack,
    skb: &mut SkBuff,
    state: &NfHookState,
    ctx: &mut C,
) -> NfVerdict {
    let Some(info) = nf_ct_get_info(skb.nfct) else {
        return NfVerdict::Accept;
    };
    let manip = NfNatManipType::of_hook(state.hook);
    match info {
        IpConntrackInfo::Untracked => return NfVerdict::Accept,
        IpConntrackInfo::Related | IpConntrackInfo::RelatedReply
            if skb.data().get(9) == Some(&1) =>
        {
            return if ct.nf_nat_icmp_reply_translation(skb, state.hook) {
                NfVerdict::Accept
            } else {
                NfVerdict::DROP
            };
        }
        IpConntrackInfo::Related | IpConntrackInfo::RelatedReply | IpConntrackInfo::New => {
            if !ct.nf_nat_initialized(skb.nfct, manip) {
                let v = table.ipt_do_table(skb, state, ctx, Some(ct));
                if v != NfVerdict::Accept {
                    return v;
                }
                if !ct.nf_nat_initialized(skb.nfct, manip) {
                    let v = ct.nf_nat_alloc_null_binding(skb.nfct, state.hook, ctx.now());
                    if v != NfVerdict::Accept {
                        return v;
                    }
                }
            }
        }
        IpConntrackInfo::Established | IpConntrackInfo::EstablishedReply => {}
    }
    if ct.nf_nat_packet(skb, state.hook) {
        NfVerdict::Accept
    } else {
        NfVerdict::DROP
    }
}

/// The four tables of one host, created together.
///
/// A Rust-only grouping of the per-netns table pointers Linux keeps in
/// `struct netns_ipv4` (`iptable_filter`, `nat_table`, ...): what
/// `iptables-save` prints and `iptables-restore` replaces.
#[derive(Debug)]
pub struct IpTables {
    /// `raw`.
    pub raw: Arc<XtTable>,
    /// `mangle`.
    pub mangle: Arc<XtTable>,
    /// `nat`.
    pub nat: Arc<XtTable>,
    /// `filter`.
    pub filter: Arc<XtTable>,
}

impl Default for IpTables {
    fn default() -> Self {
        IpTables::new()
    }
}

impl IpTables {
    /// Four empty tables with ACCEPT policies.
    pub fn new() -> IpTables {
        IpTables {
            raw: XtTable::new(IptTableKind::Raw),
            mangle: XtTable::new(IptTableKind::Mangle),
            nat: XtTable::new(IptTableKind::Nat),
            filter: XtTable::new(IptTableKind::Filter),
        }
    }

    /// The table of `kind`.
    pub fn table(&self, kind: IptTableKind) -> &Arc<XtTable> {
        match kind {
            IptTableKind::Raw => &self.raw,
            IptTableKind::Mangle => &self.mangle,
            IptTableKind::Nat => &self.nat,
            IptTableKind::Filter => &self.filter,
        }
    }

    /// Registers every table at its hooks; `nat` only when `ct` is given.
    pub fn register_hooks<C: NetfilterContext + 'static>(
        &self,
        hooks: &NfHooks<C>,
        ct: Option<&Arc<NfConntrack>>,
    ) -> Result<Vec<NfHookHandle>, netcore::Errno> {
        let mut all = Vec::new();
        for kind in IptTableKind::ALL {
            if kind == IptTableKind::Nat && ct.is_none() {
                continue;
            }
            all.extend(self.table(kind).register_hooks(hooks, ct)?);
        }
        Ok(all)
    }
}
