//! The `SNAT`, `DNAT` and `REDIRECT` targets.
//!
//! Mirrors `net/netfilter/xt_nat.c` (`xt_snat_target_v2()`,
//! `xt_dnat_target_v2()`) and `net/netfilter/xt_REDIRECT.c` with
//! `nf_nat_redirect_ipv4()` in `net/netfilter/nf_nat_redirect.c`: each binds
//! the new connection of the packet with [`NfConntrack::nf_nat_setup_info`].

use std::net::Ipv4Addr;

use netcore::SkBuff;

use crate::netfilter::{NfInetHooks, NfVerdict};
use crate::nf_conntrack_core::NfConntrack;
use crate::nf_nat_core::{NF_NAT_RANGE_MAP_IPS, NfNatManipType, NfNatRange2};
use crate::x_tables::NetfilterContext;

/// SNAT or DNAT to `range` (`xt_snat_target_v2()`, `xt_dnat_target_v2()`).
pub fn xt_nat_target<C: NetfilterContext>(
    ct: &NfConntrack,
    skb: &SkBuff,
    range: &NfNatRange2,
    manip: NfNatManipType,
    ctx: &C,
) -> NfVerdict {
    ct.nf_nat_setup_info(skb.nfct, range, manip, ctx.now())
}

/// REDIRECT: DNAT to this host — 127.0.0.1 for locally generated packets,
/// the input interface's primary address otherwise (dropped when it has
/// none), with the target's ports.
///
/// Mirrors `nf_nat_redirect_ipv4()`.
pub fn nf_nat_redirect_ipv4<C: NetfilterContext>(
    ct: &NfConntrack,
    skb: &SkBuff,
    range: &NfNatRange2,
    hook: NfInetHooks,
    in_ifindex: u32,
    ctx: &C,
) -> NfVerdict {
    let newdst = if hook == NfInetHooks::LocalOut {
        Ipv4Addr::LOCALHOST
    } else {
        match ctx.inet_select_addr(in_ifindex) {
            Some(a) => a,
            None => return NfVerdict::DROP,
        }
    };
    let r = NfNatRange2 {
        flags: range.flags | NF_NAT_RANGE_MAP_IPS,
        min_addr: newdst,
        max_addr: newdst,
        ..*range
    };
    ct.nf_nat_setup_info(skb.nfct, &r, NfNatManipType::Dst, ctx.now())
}
