//! The `multiport` match: up to 15 ports or ranges.
//!
//! Mirrors `net/netfilter/xt_multiport.c` (revision 1, `struct
//! xt_multiport_v1`, `ports_match_v1()`).

use crate::x_tables::XtActionParam;

/// The most ports a multiport rule lists (`XT_MULTI_PORTS`).
pub const XT_MULTI_PORTS: usize = 15;

/// Which ports the list is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XtMultiportFlags {
    /// `--sports` (`XT_MULTIPORT_SOURCE`).
    Source,
    /// `--dports` (`XT_MULTIPORT_DESTINATION`).
    Destination,
    /// `--ports`: either port (`XT_MULTIPORT_EITHER`).
    Either,
}

/// The `multiport` match.
///
/// Mirrors `struct xt_multiport_v1`: ranges are stored as `(lo, hi)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XtMultiport {
    /// Source, destination or either.
    pub flags: XtMultiportFlags,
    /// The ports and ranges, in the order given (at most 15 entries, a
    /// range counting as two as in Linux).
    pub ports: Vec<(u16, u16)>,
    /// `! --dports`.
    pub invert: bool,
}

impl XtMultiport {
    /// Whether the packet matches (`multiport_mt()`): never for fragments
    /// or protocols without ports.
    pub fn mt(&self, par: &XtActionParam) -> bool {
        if par.fragoff != 0 || !par.has_ports {
            return false;
        }
        let hit = |p: u16| self.ports.iter().any(|&(lo, hi)| p >= lo && p <= hi);
        let m = match self.flags {
            XtMultiportFlags::Source => hit(par.sport),
            XtMultiportFlags::Destination => hit(par.dport),
            XtMultiportFlags::Either => hit(par.sport) || hit(par.dport),
        };
        m ^ self.invert
    }
}
