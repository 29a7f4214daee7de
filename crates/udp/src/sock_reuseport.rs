//! Choosing one socket of an `SO_REUSEPORT` group by flow hash.
//!
//! Mirrors `reuseport_select_sock()` in `net/core/sock_reuseport.c`, with
//! the flow hash of `udp_ehashfn()` (`net/ipv4/udp.c`). `jhash_3words()`
//! and `reciprocal_scale()` are netcore's (`netcore::flow_dissector`), the
//! one definition RPS, XPS and `fq_codel` use too.

use std::net::Ipv4Addr;

pub use netcore::{jhash_3words, reciprocal_scale};

/// The flow hash of a received datagram, for `SO_REUSEPORT` selection.
///
/// Mirrors `udp_ehashfn()`: `jhash_3words(laddr, faddr, lport << 16 |
/// fport, secret)`. Addresses are taken as the kernel reads `__be32` on a
/// little-endian machine, so hashes match an x86-64 kernel with the same
/// secret.
pub fn udp_ehashfn(laddr: Ipv4Addr, lport: u16, faddr: Ipv4Addr, fport: u16, secret: u32) -> u32 {
    let le = |a: Ipv4Addr| u32::from_le_bytes(a.octets());
    jhash_3words(
        le(laddr),
        le(faddr),
        (u32::from(lport) << 16) | u32::from(fport.to_be()),
        secret,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reciprocal_scale_covers_the_range_evenly() {
        assert_eq!(reciprocal_scale(0, 4), 0);
        assert_eq!(reciprocal_scale(u32::MAX, 4), 3);
        assert_eq!(reciprocal_scale(0x8000_0000, 4), 2);
        assert_eq!(reciprocal_scale(0x3fff_ffff, 4), 0);
        assert_eq!(reciprocal_scale(0x4000_0000, 4), 1);
    }

    #[test]
    fn jhash_depends_on_every_word_and_the_seed() {
        let h = jhash_3words(1, 2, 3, 0);
        assert_ne!(h, jhash_3words(1, 2, 4, 0));
        assert_ne!(h, jhash_3words(0, 2, 3, 0));
        assert_ne!(h, jhash_3words(1, 2, 3, 1));
        assert_eq!(h, jhash_3words(1, 2, 3, 0));
    }
}
