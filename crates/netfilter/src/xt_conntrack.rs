//! The `conntrack` and `state` matches: the packet's connection state.
//!
//! Mirrors `net/netfilter/xt_conntrack.c` (`conntrack_mt()`, the
//! `--ctstate` part) and `net/netfilter/xt_state.c` (`state_mt()`), which
//! read the state from the conntrack reference attached to the skb.

use netcore::SkBuff;

use crate::nf_conntrack_core::{IpConntrackInfo, nf_ct_get_info};

/// `INVALID`: no conntrack entry (`XT_CONNTRACK_STATE_INVALID`, bit 0).
pub const XT_CONNTRACK_STATE_INVALID: u16 = 1 << 0;
/// `ESTABLISHED` (`XT_STATE_BIT(IP_CT_ESTABLISHED)`).
pub const XT_STATE_ESTABLISHED: u16 = 1 << 1;
/// `RELATED` (`XT_STATE_BIT(IP_CT_RELATED)`).
pub const XT_STATE_RELATED: u16 = 1 << 2;
/// `NEW` (`XT_STATE_BIT(IP_CT_NEW)`).
pub const XT_STATE_NEW: u16 = 1 << 3;
/// `UNTRACKED` (`XT_STATE_UNTRACKED`).
pub const XT_STATE_UNTRACKED: u16 = 1 << 12;

/// The state names in the order iptables prints them.
pub const XT_STATE_NAMES: [(&str, u16); 5] = [
    ("INVALID", XT_CONNTRACK_STATE_INVALID),
    ("NEW", XT_STATE_NEW),
    ("RELATED", XT_STATE_RELATED),
    ("ESTABLISHED", XT_STATE_ESTABLISHED),
    ("UNTRACKED", XT_STATE_UNTRACKED),
];

/// The state bit of a packet: from its ctinfo, `UNTRACKED`, or `INVALID`
/// when it has no connection.
pub fn xt_state_bit(skb: &SkBuff) -> u16 {
    match nf_ct_get_info(skb.nfct) {
        None => XT_CONNTRACK_STATE_INVALID,
        Some(IpConntrackInfo::Untracked) => XT_STATE_UNTRACKED,
        Some(IpConntrackInfo::New) => XT_STATE_NEW,
        Some(IpConntrackInfo::Related | IpConntrackInfo::RelatedReply) => XT_STATE_RELATED,
        Some(IpConntrackInfo::Established | IpConntrackInfo::EstablishedReply) => {
            XT_STATE_ESTABLISHED
        }
    }
}

/// `-m conntrack --ctstate S` or `-m state --state S`.
///
/// Mirrors the state test of `struct xt_conntrack_mtinfo3` and `struct
/// xt_state_info`; `alias` records which spelling the rule used, so
/// `iptables-save` prints it back the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtConntrackMtinfo {
    /// The `XT_STATE_*` bits that match.
    pub state_mask: u16,
    /// `! --ctstate`.
    pub invert: bool,
    /// Written as `-m state --state` (`XT_CONNTRACK_STATE_ALIAS`).
    pub alias: bool,
}

impl XtConntrackMtinfo {
    /// Whether the packet's state is in the mask (`conntrack_mt()`).
    #[inline]
    pub fn mt(&self, skb: &SkBuff) -> bool {
        (xt_state_bit(skb) & self.state_mask != 0) ^ self.invert
    }
}
