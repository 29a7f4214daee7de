//! The `length` match: the datagram's total length.
//!
//! Mirrors `net/netfilter/xt_length.c` (`length_mt()`, `struct
//! xt_length_info`).

use crate::x_tables::XtActionParam;

/// The `length` match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtLengthInfo {
    /// Smallest length that matches.
    pub min: u16,
    /// Largest length that matches.
    pub max: u16,
    /// `! --length`.
    pub invert: bool,
}

impl XtLengthInfo {
    /// Whether the IPv4 `tot_len` is in range (`length_mt()`).
    pub fn mt(&self, par: &XtActionParam) -> bool {
        (par.len >= self.min && par.len <= self.max) ^ self.invert
    }
}
