//! The `tcp` and `udp` matches: port ranges, TCP flags.
//!
//! Mirrors `net/netfilter/xt_tcpudp.c` (`tcp_mt()`, `udp_mt()`); iptables
//! loads them implicitly for `-p tcp --dport 22`, and `iptables-save`
//! prints them explicitly (`-p tcp -m tcp --dport 22`).

use crate::x_tables::XtActionParam;

/// Invert the source-port test (`XT_TCP_INV_SRCPT`, `XT_UDP_INV_SRCPT`).
pub const XT_TCP_INV_SRCPT: u8 = 0x01;
/// Invert the destination-port test (`XT_TCP_INV_DSTPT`).
pub const XT_TCP_INV_DSTPT: u8 = 0x02;
/// Invert the flags test (`XT_TCP_INV_FLAGS`).
pub const XT_TCP_INV_FLAGS: u8 = 0x04;

/// The `tcp` match.
///
/// Mirrors `struct xt_tcp` in `include/uapi/linux/netfilter/xt_tcpudp.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtTcp {
    /// Source port range, inclusive (`--sport a:b`); `(0, 65535)` when any.
    pub spts: (u16, u16),
    /// Destination port range (`--dport a:b`).
    pub dpts: (u16, u16),
    /// Flags to examine (`--tcp-flags MASK ...`).
    pub flg_mask: u8,
    /// Of those, the ones that must be set (`--tcp-flags ... COMP`).
    pub flg_cmp: u8,
    /// `XT_TCP_INV_*` bits.
    pub invflags: u8,
}

impl Default for XtTcp {
    fn default() -> Self {
        XtTcp {
            spts: (0, 0xffff),
            dpts: (0, 0xffff),
            flg_mask: 0,
            flg_cmp: 0,
            invflags: 0,
        }
    }
}

/// Whether `port` is in `[min, max]`, inverted when `invert`
/// (`port_match()`).
#[inline]
pub fn port_match(min: u16, max: u16, port: u16, invert: bool) -> bool {
    (port >= min && port <= max) ^ invert
}

impl XtTcp {
    /// Whether the packet matches.
    ///
    /// Mirrors `tcp_mt()`: a non-first fragment or a truncated header never
    /// matches.
    #[inline]
    pub fn mt(&self, par: &XtActionParam) -> bool {
        if par.fragoff != 0 || !par.has_ports || par.protocol != 6 {
            return false;
        }
        port_match(
            self.spts.0,
            self.spts.1,
            par.sport,
            self.invflags & XT_TCP_INV_SRCPT != 0,
        ) && port_match(
            self.dpts.0,
            self.dpts.1,
            par.dport,
            self.invflags & XT_TCP_INV_DSTPT != 0,
        ) && (((par.tcp_flags & self.flg_mask) == self.flg_cmp)
            ^ (self.invflags & XT_TCP_INV_FLAGS != 0))
    }
}

/// The `udp` match.
///
/// Mirrors `struct xt_udp` in `include/uapi/linux/netfilter/xt_tcpudp.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtUdp {
    /// Source port range (`--sport`).
    pub spts: (u16, u16),
    /// Destination port range (`--dport`).
    pub dpts: (u16, u16),
    /// `XT_UDP_INV_SRCPT` (0x01) and `XT_UDP_INV_DSTPT` (0x02).
    pub invflags: u8,
}

impl Default for XtUdp {
    fn default() -> Self {
        XtUdp {
            spts: (0, 0xffff),
            dpts: (0, 0xffff),
            invflags: 0,
        }
    }
}

impl XtUdp {
    /// Whether the packet matches (`udp_mt()`); the match also serves
    /// UDP-Lite (136), as in Linux.
    #[inline]
    pub fn mt(&self, par: &XtActionParam) -> bool {
        if par.fragoff != 0 || !par.has_ports || !matches!(par.protocol, 17 | 136) {
            return false;
        }
        port_match(
            self.spts.0,
            self.spts.1,
            par.sport,
            self.invflags & XT_TCP_INV_SRCPT != 0,
        ) && port_match(
            self.dpts.0,
            self.dpts.1,
            par.dport,
            self.invflags & XT_TCP_INV_DSTPT != 0,
        )
    }
}
