//! FIB lookup cost against table size: the per-packet `fib_lookup()` of
//! `ip_route_input`/`ip_route_output`.

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
    for (n, name) in [
        (100, "route lookup 100 prefixes"),
        (10_000, "route lookup 10k prefixes"),
    ] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let fib = table(n, &mut rng);
        // 4096 random destinations, looked up round-robin.
        let dsts: Vec<Ipv4Addr> = (0..4096).map(|_| Ipv4Addr::from(rng.next())).collect();
        let mut i = 0usize;
        let t = measure(|| {
            i = (i + 1) & 4095;
            black_box(fib.fib_lookup(black_box(dsts[i])).map(|r| r.alias.nh.oif))
        });
        report(name, t.as_nanos_f64(), "ns");
    }
}
