//! The `mark` match and the `MARK` target.
//!
//! Mirrors `net/netfilter/xt_mark.c` (`mark_mt()`, `mark_tg()`, `struct
//! xt_mark_mtinfo1`, `struct xt_mark_tginfo2`).

use netcore::SkBuff;

/// The `mark` match: `(skb->mark & mask) == mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtMarkMtinfo1 {
    /// The value to compare with.
    pub mark: u32,
    /// The bits compared.
    pub mask: u32,
    /// `! --mark`.
    pub invert: bool,
}

impl XtMarkMtinfo1 {
    /// Whether the packet's mark matches (`mark_mt()`).
    #[inline]
    pub fn mt(&self, skb: &SkBuff) -> bool {
        ((skb.mark & self.mask) == self.mark) ^ self.invert
    }
}

/// The `MARK` target: `skb->mark = (skb->mark & ~mask) ^ mark`.
///
/// `--set-mark v/m` is `mark = v, mask = v | m`; `--set-xmark v/m` is
/// `mark = v, mask = m`;
/// `--and-mark b` is `mark = 0, mask = !b`; `--or-mark b` is
/// `mark = b, mask = b`; `--xor-mark b` is `mark = b, mask = 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtMarkTginfo2 {
    /// The bits XORed in.
    pub mark: u32,
    /// The bits cleared first.
    pub mask: u32,
}

impl XtMarkTginfo2 {
    /// Applies the target (`mark_tg()`); the traversal continues.
    #[inline]
    pub fn tg(&self, skb: &mut SkBuff) {
        skb.mark = (skb.mark & !self.mask) ^ self.mark;
    }
}
