//! The compiled form of a chain: per-field bitsets that narrow a packet's
//! candidate rules before any rule is evaluated.
//!
//! No kernel twin: Linux's `ipt_do_table()` walks every rule. Here each
//! classified field (source, destination, protocol, ports, interfaces)
//! splits its value space into elementary intervals, each carrying the
//! bitset of rules whose constraint on that field admits the interval.
//! A packet looks its value up in each field (a binary search), ANDs the
//! bitsets word by word, and evaluates in full — in rule order — only the
//! rules left; first-match semantics are unchanged because a rule is
//! skipped only when one of its fields cannot match.
//!
//! ```text
//!   rule:    0 1 2 3 4 ...
//!   src   →  1 0 1 1 1      (interval containing 198.18.0.7)
//!   proto →  1 1 0 1 1      (6)
//!   dport →  0 1 1 1 0      (interval containing 22)
//!   AND   =  0 0 0 1 0   → evaluate rule 3 only
//! ```

use std::collections::HashMap;

use crate::ip_tables::{
    IPT_INV_DSTIP, IPT_INV_PROTO, IPT_INV_SRCIP, IPT_INV_VIA_IN, IPT_INV_VIA_OUT, IptEntry,
    IptIface, XtMatch,
};
use crate::x_tables::{IfName, XtActionParam};
use crate::xt_tcpudp::{XT_TCP_INV_DSTPT, XT_TCP_INV_SRCPT};

/// Chains with at most this many rules are walked linearly.
pub(crate) const CLASSIFY_MIN_RULES: usize = 8;

struct Store {
    words: usize,
    data: Vec<u64>,
    dedup: HashMap<Vec<u64>, u32>,
}

impl Store {
    fn intern(&mut self, set: &[u64]) -> u32 {
        if let Some(&o) = self.dedup.get(set) {
            return o;
        }
        let o = self.data.len() as u32;
        self.data.extend_from_slice(set);
        self.dedup.insert(set.to_vec(), o);
        o
    }
}

/// An entry of a field's lookup trie: a set (store offset), an inner
/// node, or a short list of intervals scanned in order.
const TAG_SHIFT: u32 = 30;
const TAG_SET: u32 = 0;
const TAG_NODE: u32 = 1;
const TAG_LIST: u32 = 2;
/// A range holding at most this many intervals becomes a list, not a node.
const LIST_MAX: usize = 8;

/// A field over `0..2^bits` split into intervals, each with its set.
///
/// The lookup is a multibit trie with 8-bit strides (as a routing table's
/// DIR-24-8): a value walks at most `bits / 8` nodes of 256 entries, and a
/// range holding few intervals ends in a short list instead of a node —
/// no search over every interval, and memory bounded by the interval
/// count (a node exists only where more than [`LIST_MAX`] intervals meet).
struct IntervalField {
    bits: u32,
    root: u32,
    nodes: Vec<u32>,
    list: Vec<(u32, u32)>,
}

impl IntervalField {
    /// `ranges[r]`: the disjoint inclusive intervals rule `r` admits, over
    /// `0..2^bits`.
    fn build(ranges: &[Vec<(u32, u32)>], bits: u32, store: &mut Store) -> IntervalField {
        let mut events: Vec<(u64, usize)> = Vec::new();
        for (r, iv) in ranges.iter().enumerate() {
            for &(lo, hi) in iv {
                events.push((u64::from(lo), r));
                events.push((u64::from(hi) + 1, r));
            }
        }
        events.sort_unstable();
        let mut cur = vec![0u64; store.words];
        let mut starts = Vec::new();
        let mut sets = Vec::new();
        let mut i = 0;
        let mut point = 0u64;
        loop {
            while i < events.len() && events[i].0 == point {
                let r = events[i].1;
                cur[r / 64] ^= 1 << (r % 64);
                i += 1;
            }
            if point >= 1u64 << bits {
                break;
            }
            let off = store.intern(&cur);
            if sets.last() != Some(&off) {
                starts.push(point as u32);
                sets.push(off);
            }
            match events.get(i) {
                Some(&(p, _)) => point = p,
                None => break,
            }
        }
        let mut f = IntervalField {
            bits,
            root: 0,
            nodes: Vec::new(),
            list: Vec::new(),
        };
        f.root = f.entry(&starts, &sets, 0, bits);
        f
    }

    /// The entry for the values `lo..lo + 2^width`.
    fn entry(&mut self, starts: &[u32], sets: &[u32], lo: u64, width: u32) -> u32 {
        let hi = lo + (1u64 << width);
        let first = starts
            .partition_point(|&s| u64::from(s) <= lo)
            .saturating_sub(1);
        let end = starts.partition_point(|&s| u64::from(s) < hi);
        if end - first == 1 {
            return (TAG_SET << TAG_SHIFT) | sets[first];
        }
        if end - first <= LIST_MAX {
            let at = self.list.len();
            for k in first..end {
                self.list
                    .push((u64::from(starts[k]).max(lo) as u32, sets[k]));
            }
            return (TAG_LIST << TAG_SHIFT) | ((end - first) as u32) << 26 | at as u32;
        }
        let at = self.nodes.len();
        self.nodes.resize(at + 256, 0);
        for c in 0..256u64 {
            let e = self.entry(starts, sets, lo + (c << (width - 8)), width - 8);
            self.nodes[at + c as usize] = e;
        }
        (TAG_NODE << TAG_SHIFT) | (at >> 8) as u32
    }

    #[inline]
    fn lookup(&self, v: u32) -> u32 {
        let mut e = self.root;
        let mut shift = self.bits;
        loop {
            match e >> TAG_SHIFT {
                TAG_SET => return e,
                TAG_NODE => {
                    shift -= 8;
                    let node = ((e & 0x3fff_ffff) as usize) << 8;
                    e = self.nodes[node | ((v >> shift) & 0xff) as usize];
                }
                _ => {
                    let at = (e & 0x03ff_ffff) as usize;
                    let n = ((e >> 26) & 0xf) as usize;
                    let l = &self.list[at..at + n];
                    let mut r = l[0].1;
                    for &(s, o) in &l[1..] {
                        if s > v {
                            break;
                        }
                        r = o;
                    }
                    return r;
                }
            }
        }
    }
}

/// An interface field: exact names seen in rules, a conservative set for
/// other names, and a set for "no interface".
struct IfaceField {
    /// Few names in practice: a linear scan beats hashing 16 bytes.
    names: Vec<(IfName, u32)>,
    other: u32,
    none: u32,
}

impl IfaceField {
    fn build(specs: &[Option<(&IptIface, bool)>], store: &mut Store) -> IfaceField {
        let words = store.words;
        let mut names: Vec<IfName> = specs
            .iter()
            .flatten()
            .filter_map(|(s, _)| IfName::new(&s.name))
            .collect();
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        names.dedup();
        let mut set_for = |pred: &dyn Fn(&IptIface, bool) -> bool| {
            let mut v = vec![0u64; words];
            for (r, s) in specs.iter().enumerate() {
                let admit = match s {
                    None => true,
                    Some((spec, inv)) => pred(spec, *inv),
                };
                if admit {
                    v[r / 64] |= 1 << (r % 64);
                }
            }
            store.intern(&v)
        };
        let mut map = Vec::new();
        for n in &names {
            let o = set_for(&|spec, inv| spec.matches(Some(n)) ^ inv);
            map.push((*n, o));
        }
        // Any other name: wildcards and inverted specs may match, exact
        // names from the rules do not (this name is not one of them).
        let other = set_for(&|spec, inv| spec.wildcard || inv);
        let none = set_for(&|_, inv| inv);
        IfaceField {
            names: map,
            other,
            none,
        }
    }

    #[inline]
    fn lookup(&self, name: Option<&IfName>) -> u32 {
        match name {
            None => self.none,
            Some(n) => self
                .names
                .iter()
                .find(|(m, _)| m == n)
                .map_or(self.other, |&(_, o)| o),
        }
    }
}

/// The compiled candidate filter of one chain.
pub(crate) struct Classifier {
    words: usize,
    store: Vec<u64>,
    all: u32,
    src: Option<IntervalField>,
    dst: Option<IntervalField>,
    proto: Option<Box<[u32; 256]>>,
    sport: Option<IntervalField>,
    dport: Option<IntervalField>,
    iniface: Option<IfaceField>,
    outiface: Option<IfaceField>,
}

fn prefix_ranges(addr: u32, mask: u32, inv: bool) -> Vec<(u32, u32)> {
    // A contiguous mask: ones then zeros.
    if mask.leading_ones() + mask.trailing_zeros() != 32 {
        return vec![(0, u32::MAX)];
    }
    let lo = addr & mask;
    let hi = lo | !mask;
    if !inv {
        return vec![(lo, hi)];
    }
    complement(&[(lo, hi)], u32::MAX)
}

fn complement(iv: &[(u32, u32)], max: u32) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next = 0u64;
    for &(lo, hi) in iv {
        if u64::from(lo) > next {
            out.push((next as u32, lo - 1));
        }
        next = u64::from(hi) + 1;
    }
    if next <= u64::from(max) {
        out.push((next as u32, max));
    }
    out
}

fn port_ranges(r: (u16, u16), inv: bool) -> Vec<(u32, u32)> {
    let iv = [(u32::from(r.0), u32::from(r.1))];
    if r.0 > r.1 {
        return if inv { vec![(0, 0xffff)] } else { Vec::new() };
    }
    if inv {
        complement(&iv, 0xffff)
    } else {
        iv.to_vec()
    }
}

/// The port constraints of a rule usable for classification: those of the
/// `tcp`/`udp` match if no stateful match (`limit`) comes before it.
type PortSets = Option<Vec<(u32, u32)>>;

fn rule_ports(e: &IptEntry) -> (PortSets, PortSets) {
    for m in &e.matches {
        match m {
            XtMatch::Limit(_) => break,
            XtMatch::Tcp(t) => {
                return (
                    Some(port_ranges(t.spts, t.invflags & XT_TCP_INV_SRCPT != 0)),
                    Some(port_ranges(t.dpts, t.invflags & XT_TCP_INV_DSTPT != 0)),
                );
            }
            XtMatch::Udp(u) => {
                return (
                    Some(port_ranges(u.spts, u.invflags & XT_TCP_INV_SRCPT != 0)),
                    Some(port_ranges(u.dpts, u.invflags & XT_TCP_INV_DSTPT != 0)),
                );
            }
            _ => {}
        }
    }
    (None, None)
}

impl Classifier {
    /// Builds the filter for a chain's rules; `None` (walk the chain) if
    /// the sets would not fit the 30-bit offsets of the lookup tries.
    pub(crate) fn build(rules: &[IptEntry]) -> Option<Classifier> {
        let n = rules.len();
        let words = n.div_ceil(64).max(1);
        let mut store = Store {
            words,
            data: Vec::new(),
            dedup: HashMap::new(),
        };
        let mut all = vec![0u64; words];
        for r in 0..n {
            all[r / 64] |= 1 << (r % 64);
        }
        let all_off = store.intern(&all);
        let full = vec![(0u32, u32::MAX)];
        let full16 = vec![(0u32, 0xffffu32)];

        let src: Vec<_> = rules
            .iter()
            .map(|e| {
                let m = e.ip.smsk.to_bits();
                if m == 0 && e.ip.invflags & IPT_INV_SRCIP == 0 {
                    full.clone()
                } else {
                    prefix_ranges(e.ip.src.to_bits(), m, e.ip.invflags & IPT_INV_SRCIP != 0)
                }
            })
            .collect();
        let dst: Vec<_> = rules
            .iter()
            .map(|e| {
                let m = e.ip.dmsk.to_bits();
                if m == 0 && e.ip.invflags & IPT_INV_DSTIP == 0 {
                    full.clone()
                } else {
                    prefix_ranges(e.ip.dst.to_bits(), m, e.ip.invflags & IPT_INV_DSTIP != 0)
                }
            })
            .collect();
        let uses = |v: &[Vec<(u32, u32)>], f: &Vec<(u32, u32)>| v.iter().any(|r| r != f);
        let src = uses(&src, &full).then(|| IntervalField::build(&src, 32, &mut store));
        let dst = uses(&dst, &full).then(|| IntervalField::build(&dst, 32, &mut store));

        let proto = rules.iter().any(|e| e.ip.proto != 0).then(|| {
            let mut t = Box::new([0u32; 256]);
            for (p, slot) in t.iter_mut().enumerate() {
                let mut v = vec![0u64; words];
                for (r, e) in rules.iter().enumerate() {
                    let inv = e.ip.invflags & IPT_INV_PROTO != 0;
                    if e.ip.proto == 0 || ((usize::from(e.ip.proto) == p) ^ inv) {
                        v[r / 64] |= 1 << (r % 64);
                    }
                }
                *slot = store.intern(&v);
            }
            t
        });

        let ports: Vec<_> = rules.iter().map(rule_ports).collect();
        let sp: Vec<_> = ports
            .iter()
            .map(|p| p.0.clone().unwrap_or_else(|| full16.clone()))
            .collect();
        let dp: Vec<_> = ports
            .iter()
            .map(|p| p.1.clone().unwrap_or_else(|| full16.clone()))
            .collect();
        let sport = uses(&sp, &full16).then(|| IntervalField::build(&sp, 16, &mut store));
        let dport = uses(&dp, &full16).then(|| IntervalField::build(&dp, 16, &mut store));

        let ins: Vec<_> = rules
            .iter()
            .map(|e| {
                e.ip.iniface
                    .as_ref()
                    .map(|s| (s, e.ip.invflags & IPT_INV_VIA_IN != 0))
            })
            .collect();
        let outs: Vec<_> = rules
            .iter()
            .map(|e| {
                e.ip.outiface
                    .as_ref()
                    .map(|s| (s, e.ip.invflags & IPT_INV_VIA_OUT != 0))
            })
            .collect();
        let iniface = ins
            .iter()
            .any(Option::is_some)
            .then(|| IfaceField::build(&ins, &mut store));
        let outiface = outs
            .iter()
            .any(Option::is_some)
            .then(|| IfaceField::build(&outs, &mut store));

        if store.data.len() >= 1 << TAG_SHIFT {
            return None;
        }
        Some(Classifier {
            words,
            store: store.data,
            all: all_off,
            src,
            dst,
            proto,
            sport,
            dport,
            iniface,
            outiface,
        })
    }

    /// The first rule at or after `pos`, in order, among the candidates,
    /// for which `eval` (the full match) says yes.
    #[inline]
    pub(crate) fn first_from(
        &self,
        par: &XtActionParam,
        names: impl Fn() -> (Option<IfName>, Option<IfName>),
        pos: usize,
        mut eval: impl FnMut(usize) -> bool,
    ) -> Option<usize> {
        let first = pos / 64;
        let n = self.words - first;
        // The candidates so far, from word `first` on: a stack buffer for
        // up to 2,048 rules, the heap beyond.
        let mut stack = [0u64; 32];
        let mut heap = Vec::new();
        let acc: &mut [u64] = if n <= stack.len() {
            &mut stack[..n]
        } else {
            heap.resize(n, 0);
            &mut heap
        };
        // The protocol's set (or every rule) starts the candidates.
        let init = self
            .proto
            .as_ref()
            .map_or(self.all, |t| t[usize::from(par.protocol)]);
        acc.copy_from_slice(&self.store[init as usize + first..][..n]);
        acc[0] &= u64::MAX << (pos % 64);
        if acc.iter().all(|&w| w == 0) {
            return None;
        }
        // ANDs one field's set into the candidates; true when none is left.
        let and = |o: u32, acc: &mut [u64]| -> bool {
            let set = &self.store[o as usize + first..][..acc.len()];
            let mut any = 0;
            for (a, &b) in acc.iter_mut().zip(set) {
                *a &= b;
                any |= *a;
            }
            any == 0
        };
        // The other fields one at a time, most selective first; stop as
        // soon as no candidate is left.
        if par.has_ports {
            if let Some(f) = &self.dport
                && and(f.lookup(u32::from(par.dport)), acc)
            {
                return None;
            }
            if let Some(f) = &self.sport
                && and(f.lookup(u32::from(par.sport)), acc)
            {
                return None;
            }
        }
        if let Some(f) = &self.src
            && and(f.lookup(par.saddr), acc)
        {
            return None;
        }
        if let Some(f) = &self.dst
            && and(f.lookup(par.daddr), acc)
        {
            return None;
        }
        if let Some(f) = &self.iniface
            && and(f.lookup(names().0.as_ref()), acc)
        {
            return None;
        }
        if let Some(f) = &self.outiface
            && and(f.lookup(names().1.as_ref()), acc)
        {
            return None;
        }
        for (w, &word) in acc.iter().enumerate() {
            let mut m = word;
            while m != 0 {
                let i = (first + w) * 64 + m.trailing_zeros() as usize;
                if eval(i) {
                    return Some(i);
                }
                m &= m - 1;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complements_and_prefixes() {
        assert_eq!(complement(&[(10, 20)], 100), vec![(0, 9), (21, 100)]);
        assert_eq!(complement(&[(0, 100)], 100), vec![]);
        assert_eq!(
            prefix_ranges(0xc612_0000, 0xfffe_0000, false),
            vec![(0xc612_0000, 0xc613_ffff)]
        );
        assert_eq!(prefix_ranges(1, 0xff00_ff00, false), vec![(0, u32::MAX)]);
        assert_eq!(port_ranges((22, 22), true), vec![(0, 21), (23, 0xffff)]);
    }
}
