//! FIB lookup cost against table size: the per-packet `fib_lookup()` of
//! `ip_route_input`/`ip_route_output`.
//!
//! Tables of 10, 1,000, 10,000 and 100,000 random prefixes (lengths as in a
//! BGP table) plus a default route. `route lookup N prefixes` looks up
//! 4,096 random destinations round-robin (a busy router's working set of
//! flows: the touched part of the table stays in cache);
//! `route lookup N prefixes cold` cycles through 1,048,576 random
//! destinations, so most lookups miss the cache at every level of the
//! trie.

use std::net::Ipv4Addr;

use benchkit::{black_box, measure, report};
use ipv4::{Fib, FibAlias, FibNh, RT_TABLE_MAIN, RtProt, RtScope, RtnType};

/// A deterministic xorshift stream.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

fn alias(i: u32) -> FibAlias {
    FibAlias {
        tb_id: RT_TABLE_MAIN,
        fa_type: RtnType::Unicast,
        scope: RtScope::Universe,
        protocol: RtProt::Static,
        priority: 0,
        prefsrc: None,
        nh: FibNh {
            gw: Some(Ipv4Addr::from(0xc612_0000 | (i & 0xff))),
            oif: 2,
            scope: RtScope::Link,
        },
    }
}

/// A table of `n` prefixes of lengths 8..=32 (mostly /16–/24, as in a BGP
/// table) plus a default route.
fn table(n: usize, rng: &mut Rng) -> Fib {
    let mut fib = Fib::new();
    fib.fib_table_insert(Ipv4Addr::UNSPECIFIED, 0, alias(0), true)
        .unwrap();
    let mut added = 0;
    while added < n {
        let r = rng.next();
        let len = [8u8, 12, 16, 18, 20, 22, 23, 24, 24, 24, 28, 32][(r % 12) as usize];
        let key = rng.next() & (u32::MAX << (32 - u32::from(len)));
        if fib
            .fib_table_insert(Ipv4Addr::from(key), len, alias(r), true)
            .is_ok()
        {
            added += 1;
        }
    }
    fib
}

fn main() {
    for (n, label) in [
        (10, "10"),
        (1_000, "1k"),
        (10_000, "10k"),
        (100_000, "100k"),
    ] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let fib = table(n, &mut rng);
        for (dsts, suffix) in [(1usize << 12, ""), (1 << 20, " cold")] {
            let dsts: Vec<Ipv4Addr> = (0..dsts).map(|_| Ipv4Addr::from(rng.next())).collect();
            let mask = dsts.len() - 1;
            let mut i = 0usize;
            // The fastest of three rounds: on a machine shared with other
            // work, the one least disturbed by it.
            let t = (0..3)
                .map(|_| {
                    measure(|| {
                        i = (i + 1) & mask;
                        black_box(fib.fib_lookup(black_box(dsts[i])).map(|r| r.alias.nh.oif))
                    })
                    .as_nanos_f64()
                })
                .fold(f64::INFINITY, f64::min);
            report(&format!("route lookup {label} prefixes{suffix}"), t, "ns");
        }
    }
}
