//! The longest-prefix-match structure under the FIB.
//!
//! Mirrors the role of `struct trie` and `fib_table_lookup()` in
//! `net/ipv4/fib_trie.c`: map a destination address to the most specific
//! prefix that covers it, in a time that does not grow with the number of
//! prefixes.
//!
//! ```text
//!   addr = a.b.c.d
//!   root[a.b] ──leaf──▶ best prefix of length 0..=16 covering a.b.0.0/16
//!        │child
//!        ▼
//!   node[c]   ──leaf──▶ best prefix of length 17..=24
//!        │child
//!        ▼
//!   node[d]   ──leaf──▶ best prefix of length 25..=32
//!
//!   node = runs (256 bits: where a new value starts) + up to 4 slots,
//!          in one 64-byte line; more slots live in a shared arena
//!   node[i] = slot number rank(runs, i)   rank = popcount of runs[0..=i] - 1
//! ```
//!
//! A lookup reads at most three slots and keeps the deepest leaf it saw.
//!
//! # Deviations from Linux
//!
//! Linux uses a level-compressed, path-compressed binary trie (LC-trie)
//! whose nodes resize as they fill. This is a fixed-stride multibit trie
//! (16-8-8) with controlled prefix expansion: each prefix is written into
//! the slots of the level its length falls in. The 2^16-slot root is a
//! plain array (512 KiB per table); the 256-slot nodes below it are stored
//! run-length compressed, as Poptrie does: a 256-bit map of where a run
//! of equal slots starts and one slot per run, found by a popcount. A node
//! with at most four runs (one /20 in a /16 makes three) fits in one cache
//! line; longer lists live in an arena shared by all nodes. 100,000 random
//! prefixes take a few MiB instead of the 100+ MiB of uncompressed nodes,
//! so more of the table stays in cache. An update decompresses the one or
//! two nodes it touches, changes them and compresses them again; arena
//! space a node outgrows is reclaimed by compaction once it is half the
//! arena. The observable behaviour — longest-prefix match, dump order — is
//! the same. Nodes emptied by deletions are not reclaimed.

use std::collections::HashMap;

const NONE: u32 = u32::MAX;
const ROOT_BITS: u32 = 16;
const NODE_SLOTS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    /// The entry of the longest prefix of this level covering the slot.
    leaf: u32,
    /// The next level's node, `NONE` if none.
    child: u32,
}

const EMPTY: Slot = Slot {
    leaf: NONE,
    child: NONE,
};

/// Slots a node keeps in its own cache line.
const INLINE: usize = 4;

/// A 256-slot node, run-length compressed into one cache line.
///
/// `runs` has bit `i` (word `i / 64`, bit `i % 64`) set when slot `i`
/// starts a run: it is slot 0 or differs from slot `i - 1`. With at most
/// [`INLINE`] runs their slots are `slots[..runs]`; with more, `slots[0]`
/// is `{ leaf: offset, child: capacity }` of a range of [`Levels::arena`].
#[derive(Clone, Debug)]
#[repr(align(64))]
struct Node {
    runs: [u64; 4],
    slots: [Slot; INLINE],
}

impl Node {
    /// How many runs, and how many start before slot `i` (inclusive).
    #[inline]
    fn rank(&self, i: usize) -> (usize, usize) {
        let r = &self.runs;
        let (p0, p1, p2, p3) = (
            r[0].count_ones(),
            r[1].count_ones(),
            r[2].count_ones(),
            r[3].count_ones(),
        );
        let below = match i >> 6 {
            0 => 0,
            1 => p0,
            2 => p0 + p1,
            _ => p0 + p1 + p2,
        };
        let upto = u64::MAX >> (63 - (i & 63));
        let at = below + (r[(i >> 6) & 3] & upto).count_ones();
        ((p0 + p1 + p2 + p3) as usize, at as usize)
    }
}

/// The nodes below the root, with the arena their long slot lists live in.
#[derive(Clone, Debug, Default)]
struct Levels {
    nodes: Vec<Node>,
    /// Slot lists of nodes with more than [`INLINE`] runs.
    arena: Vec<Slot>,
    /// Arena slots no node uses any more (reclaimed by compaction).
    garbage: usize,
}

impl Levels {
    /// Slot `i` (0..256) of node `n`.
    #[inline]
    fn get(&self, n: usize, i: usize) -> Slot {
        let node = &self.nodes[n];
        // Bit 0 of word 0 is always set, so `at` is at least 1.
        let (runs, at) = node.rank(i);
        if runs <= INLINE {
            node.slots[(at - 1) % INLINE]
        } else {
            self.arena[node.slots[0].leaf as usize + at - 1]
        }
    }

    fn expand(&self, n: usize) -> [Slot; NODE_SLOTS] {
        let mut full = [EMPTY; NODE_SLOTS];
        for (i, s) in full.iter_mut().enumerate() {
            *s = self.get(n, i);
        }
        full
    }

    /// Stores `full` as node `n` (`n == nodes.len()` appends a node).
    fn compress(&mut self, n: usize, full: &[Slot; NODE_SLOTS]) {
        let mut runs = [0u64; 4];
        let mut list = Vec::new();
        for (i, s) in full.iter().enumerate() {
            if i == 0 || full[i - 1] != *s {
                runs[i >> 6] |= 1 << (i & 63);
                list.push(*s);
            }
        }
        // The arena range the node had, if any: (offset, capacity).
        let old = self.nodes.get(n).and_then(|node| {
            let (r, _) = node.rank(0);
            (r > INLINE).then_some((node.slots[0].leaf as usize, node.slots[0].child as usize))
        });
        let mut slots = [EMPTY; INLINE];
        if list.len() <= INLINE {
            slots[..list.len()].copy_from_slice(&list);
            if let Some((_, cap)) = old {
                self.garbage += cap;
            }
        } else {
            let (off, cap) = match old {
                Some((off, cap)) if list.len() <= cap => (off, cap),
                _ => {
                    if let Some((_, cap)) = old {
                        self.garbage += cap;
                    }
                    self.arena.extend_from_slice(&list);
                    (self.arena.len() - list.len(), list.len())
                }
            };
            self.arena[off..off + list.len()].copy_from_slice(&list);
            slots[0] = Slot {
                leaf: off as u32,
                child: cap as u32,
            };
        }
        let node = Node { runs, slots };
        if n == self.nodes.len() {
            self.nodes.push(node);
        } else {
            self.nodes[n] = node;
        }
        if self.garbage > 4096 && self.garbage > self.arena.len() / 2 {
            self.compact();
        }
    }

    /// Copies every live slot list into a new arena.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.garbage);
        for node in &mut self.nodes {
            let (runs, _) = node.rank(0);
            if runs > INLINE {
                let off = node.slots[0].leaf as usize;
                node.slots[0] = Slot {
                    leaf: arena.len() as u32,
                    child: runs as u32,
                };
                arena.extend_from_slice(&self.arena[off..off + runs]);
            }
        }
        self.arena = arena;
        self.garbage = 0;
    }
}

/// Where a prefix's slots are: the root's, or a node's.
#[derive(Clone, Copy, Debug)]
enum Span {
    Root {
        start: usize,
        count: usize,
    },
    Node {
        node: usize,
        start: usize,
        count: usize,
    },
}

#[derive(Clone, Debug)]
struct Entry<V> {
    key: u32,
    plen: u8,
    value: V,
}

/// A longest-prefix-match map from IPv4 prefixes to values.
///
/// Mirrors `struct trie` in `net/ipv4/fib_trie.c` (see the module docs for
/// how the structure differs). Keys are host-order `u32` addresses; a
/// prefix must have no bits set past its length.
#[derive(Clone, Debug)]
pub struct FibTrie<V> {
    root: Vec<Slot>,
    nodes: Levels,
    entries: Vec<Option<Entry<V>>>,
    free: Vec<u32>,
    index: HashMap<(u32, u8), u32>,
}

impl<V> Default for FibTrie<V> {
    fn default() -> Self {
        FibTrie::new()
    }
}

/// The netmask of a prefix length (0..=32) in host order.
pub(crate) fn prefix_mask(plen: u8) -> u32 {
    if plen == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(plen.min(32)))
    }
}

/// The first length of the level `plen` is stored in.
fn level_lo(plen: u8) -> u8 {
    match plen {
        0..=16 => 0,
        17..=24 => 17,
        _ => 25,
    }
}

/// Applies `f` to every slot of `span`.
fn update_span(root: &mut [Slot], nodes: &mut Levels, span: Span, mut f: impl FnMut(&mut Slot)) {
    match span {
        Span::Root { start, count } => root[start..start + count].iter_mut().for_each(f),
        Span::Node { node, start, count } => {
            let mut full = nodes.expand(node);
            full[start..start + count].iter_mut().for_each(&mut f);
            nodes.compress(node, &full);
        }
    }
}

impl<V> FibTrie<V> {
    /// An empty trie.
    pub fn new() -> FibTrie<V> {
        FibTrie {
            root: vec![EMPTY; 1 << ROOT_BITS],
            nodes: Levels::default(),
            entries: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the trie holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn entry(&self, id: u32) -> &Entry<V> {
        self.entries[id as usize]
            .as_ref()
            .expect("a slot never names a freed entry")
    }

    /// The value stored for exactly `key/plen`.
    pub fn get(&self, key: u32, plen: u8) -> Option<&V> {
        let id = *self.index.get(&(key, plen))?;
        Some(&self.entry(id).value)
    }

    /// The value stored for exactly `key/plen`, writable.
    pub fn get_mut(&mut self, key: u32, plen: u8) -> Option<&mut V> {
        let id = *self.index.get(&(key, plen))?;
        self.entries[id as usize].as_mut().map(|e| &mut e.value)
    }

    fn alloc_node(&mut self) -> u32 {
        let n = self.nodes.nodes.len();
        self.nodes.compress(n, &[EMPTY; NODE_SLOTS]);
        n as u32
    }

    /// The slots the prefix covers at its level, creating the nodes on the
    /// way when `create`.
    fn span(&mut self, key: u32, plen: u8, create: bool) -> Option<Span> {
        let r = (key >> ROOT_BITS) as usize;
        if plen <= 16 {
            return Some(Span::Root {
                start: r,
                count: 1 << (16 - plen),
            });
        }
        if self.root[r].child == NONE {
            if !create {
                return None;
            }
            self.root[r].child = self.alloc_node();
        }
        let n1 = self.root[r].child as usize;
        let i1 = ((key >> 8) & 0xff) as usize;
        if plen <= 24 {
            return Some(Span::Node {
                node: n1,
                start: i1,
                count: 1 << (24 - plen),
            });
        }
        let mut n2 = self.nodes.get(n1, i1).child;
        if n2 == NONE {
            if !create {
                return None;
            }
            n2 = self.alloc_node();
            let span = Span::Node {
                node: n1,
                start: i1,
                count: 1,
            };
            update_span(&mut self.root, &mut self.nodes, span, |s| s.child = n2);
        }
        Some(Span::Node {
            node: n2 as usize,
            start: (key & 0xff) as usize,
            count: 1 << (32 - plen),
        })
    }

    /// Inserts or replaces the value for `key/plen`; returns the old value.
    ///
    /// Mirrors the leaf insertion of `fib_insert_alias()`. Fails (handing
    /// the value back) when `plen` exceeds 32 or `key` has bits past
    /// `plen`, as `fib_table_insert()` refuses with `EINVAL`.
    pub fn insert(&mut self, key: u32, plen: u8, value: V) -> Result<Option<V>, V> {
        if plen > 32 || key & !prefix_mask(plen) != 0 {
            return Err(value);
        }
        if let Some(v) = self.get_mut(key, plen) {
            return Ok(Some(std::mem::replace(v, value)));
        }
        let entry = Entry { key, plen, value };
        let id = if let Some(id) = self.free.pop() {
            self.entries[id as usize] = Some(entry);
            id
        } else {
            self.entries.push(Some(entry));
            (self.entries.len() - 1) as u32
        };
        self.index.insert((key, plen), id);
        let span = self.span(key, plen, true).expect("create makes the path");
        let entries = &self.entries;
        let plen_of = |id: u32| entries[id as usize].as_ref().map_or(0, |e| e.plen);
        update_span(&mut self.root, &mut self.nodes, span, |s| {
            if s.leaf == NONE || plen_of(s.leaf) <= plen {
                s.leaf = id;
            }
        });
        Ok(None)
    }

    /// Removes `key/plen`; returns its value.
    ///
    /// Mirrors the leaf removal of `fib_remove_alias()`: the slots the prefix
    /// held fall back to the next shorter prefix of the same level (or to
    /// nothing, letting the lookup use the level above).
    pub fn remove(&mut self, key: u32, plen: u8) -> Option<V> {
        let id = self.index.remove(&(key, plen))?;
        let lo = level_lo(plen);
        let fallback = (lo..plen)
            .rev()
            .find_map(|l| self.index.get(&(key & prefix_mask(l), l)).copied())
            .unwrap_or(NONE);
        if let Some(span) = self.span(key, plen, false) {
            update_span(&mut self.root, &mut self.nodes, span, |s| {
                if s.leaf == id {
                    s.leaf = fallback;
                }
            });
        }
        self.free.push(id);
        self.entries[id as usize].take().map(|e| e.value)
    }

    /// The longest prefix covering `addr`: `(key, plen, value)`.
    ///
    /// Mirrors the descent of `fib_table_lookup()`. At most three slot reads.
    #[inline]
    pub fn lookup(&self, addr: u32) -> Option<(u32, u8, &V)> {
        let s0 = self.root[(addr >> ROOT_BITS) as usize];
        let mut best = s0.leaf;
        if s0.child != NONE {
            let s1 = self
                .nodes
                .get(s0.child as usize, ((addr >> 8) & 0xff) as usize);
            if s1.leaf != NONE {
                best = s1.leaf;
            }
            if s1.child != NONE {
                let s2 = self.nodes.get(s1.child as usize, (addr & 0xff) as usize);
                if s2.leaf != NONE {
                    best = s2.leaf;
                }
            }
        }
        if best == NONE {
            return None;
        }
        let e = self.entry(best);
        Some((e.key, e.plen, &e.value))
    }

    /// Every prefix in dump order: by key ascending, then longer prefixes
    /// first (the order of the aliases in a Linux trie leaf).
    pub fn iter(&self) -> impl Iterator<Item = (u32, u8, &V)> {
        let mut v: Vec<(u32, u8, &V)> = self
            .entries
            .iter()
            .flatten()
            .map(|e| (e.key, e.plen, &e.value))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        v.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute(model: &[(u32, u8)], addr: u32) -> Option<(u32, u8)> {
        model
            .iter()
            .filter(|&&(k, l)| addr & prefix_mask(l) == k)
            .max_by_key(|&&(_, l)| l)
            .copied()
    }

    #[test]
    fn longest_prefix_wins_and_falls_back_on_removal() {
        let mut t = FibTrie::new();
        let a = |s: &str| u32::from(s.parse::<std::net::Ipv4Addr>().unwrap());
        t.insert(0, 0, "default").unwrap();
        t.insert(a("198.18.0.0"), 15, "bench").unwrap();
        t.insert(a("198.18.0.0"), 24, "lan").unwrap();
        t.insert(a("198.18.0.1"), 32, "me").unwrap();
        assert_eq!(t.lookup(a("198.18.0.1")).unwrap().2, &"me");
        assert_eq!(t.lookup(a("198.18.0.2")).unwrap().2, &"lan");
        assert_eq!(t.lookup(a("198.19.3.2")).unwrap().2, &"bench");
        assert_eq!(t.lookup(a("10.0.0.1")).unwrap().2, &"default");
        assert_eq!(t.remove(a("198.18.0.0"), 24), Some("lan"));
        assert_eq!(t.lookup(a("198.18.0.2")).unwrap().2, &"bench");
        assert_eq!(t.lookup(a("198.18.0.1")).unwrap().2, &"me");
        assert_eq!(t.insert(a("198.18.0.1"), 24, "bad"), Err("bad"));
        assert_eq!(t.insert(0, 33, "bad"), Err("bad"));
        let order: Vec<_> = t.iter().map(|(k, l, _)| (k, l)).collect();
        assert_eq!(
            order,
            [(0, 0), (a("198.18.0.0"), 15), (a("198.18.0.1"), 32)]
        );
    }

    fn prefix() -> impl Strategy<Value = (u32, u8)> {
        // Cluster the keys so that prefixes nest and collide often.
        (0u32..4, any::<u32>(), 0u8..=32).prop_map(|(hi, lo, l)| {
            let k = (0xc612_0000 | (hi << 14)) ^ (lo & 0x0000_3fff);
            (k & prefix_mask(l), l)
        })
    }

    proptest! {
        #[test]
        fn node_compression_round_trips(
            vals in proptest::collection::vec((0u32..4, 0u32..3), NODE_SLOTS),
            runs in proptest::collection::vec(1usize..40, 1..20),
        ) {
            // Runs of equal slots of random lengths, with few distinct values.
            let mut full = [EMPTY; NODE_SLOTS];
            let mut i = 0;
            for (k, len) in runs.iter().cycle().enumerate().take(NODE_SLOTS) {
                let (leaf, child) = vals[k];
                for s in full.iter_mut().skip(i).take(*len) {
                    *s = Slot { leaf: if leaf == 3 { NONE } else { leaf }, child: if child == 2 { NONE } else { child } };
                }
                i += len;
                if i >= NODE_SLOTS { break; }
            }
            let mut nodes = Levels::default();
            // Node 0 starts empty, then takes the runs, then half of them
            // (in place in the arena or back inline), then all again.
            nodes.compress(0, &[EMPTY; NODE_SLOTS]);
            let mut half = full;
            half[128..].fill(EMPTY);
            for f in [&full, &half, &full] {
                nodes.compress(0, f);
                prop_assert_eq!(nodes.expand(0), *f);
                for (i, s) in f.iter().enumerate() {
                    prop_assert_eq!(nodes.get(0, i), *s, "slot {}", i);
                }
                let distinct_runs = 1 + f.windows(2).filter(|w| w[0] != w[1]).count();
                prop_assert_eq!(nodes.nodes[0].rank(255), (distinct_runs, distinct_runs));
            }
            nodes.compact();
            prop_assert_eq!(nodes.expand(0), full);
        }

        #[test]
        fn lpm_matches_brute_force(
            ops in proptest::collection::vec((any::<bool>(), prefix()), 1..200),
            probes in proptest::collection::vec(any::<u32>(), 64),
        ) {
            let mut t = FibTrie::new();
            let mut model: Vec<(u32, u8)> = Vec::new();
            for (add, (k, l)) in ops {
                if add {
                    t.insert(k, l, (k, l)).unwrap();
                    if !model.contains(&(k, l)) { model.push((k, l)); }
                } else {
                    let had = model.iter().position(|&p| p == (k, l));
                    prop_assert_eq!(t.remove(k, l).is_some(), had.is_some());
                    if let Some(i) = had { model.swap_remove(i); }
                }
            }
            prop_assert_eq!(t.len(), model.len());
            let mut addrs: Vec<u32> = probes.iter().map(|p| 0xc612_0000 ^ (p & 0x0000_ffff)).collect();
            addrs.extend(probes);
            addrs.extend(model.iter().map(|&(k, _)| k));
            for a in addrs {
                prop_assert_eq!(t.lookup(a).map(|(k, l, _)| (k, l)), brute(&model, a), "addr {:#x}", a);
            }
        }
    }
}
