//! The `MASQUERADE` target: source NAT to the output interface's address.
//!
//! Mirrors `nf_nat_masquerade_ipv4()` in `net/netfilter/nf_nat_masquerade.c`
//! and `net/netfilter/xt_MASQUERADE.c`.

use netcore::SkBuff;

use crate::netfilter::NfVerdict;
use crate::nf_conntrack_core::NfConntrack;
use crate::nf_nat_core::{NF_NAT_RANGE_MAP_IPS, NfNatManipType, NfNatRange2};
use crate::x_tables::NetfilterContext;

/// Binds the packet's new connection to the address the host would use on
/// `out_ifindex` (`inet_select_addr()`), keeping the target's port range.
/// Drops when the interface has no address.
///
/// Mirrors `nf_nat_masquerade_ipv4()`.
///
/// # Deviations from Linux
/// Linux also remembers the interface so that connections are flushed
/// when it goes down or changes address (`masq_device_event()`); here the
/// host must flush conntrack itself on such events.
pub fn nf_nat_masquerade_ipv4<C: NetfilterContext>(
    ct: &NfConntrack,
    skb: &SkBuff,
    range: &NfNatRange2,
    out_ifindex: u32,
    ctx: &C,
) -> NfVerdict {
    let Some(newsrc) = ctx.inet_select_addr(out_ifindex) else {
        tracing::debug!(target: "netfilter", out_ifindex, "MASQUERADE: no address on the output interface");
        return NfVerdict::DROP;
    };
    let r = NfNatRange2 {
        flags: range.flags | NF_NAT_RANGE_MAP_IPS,
        min_addr: newsrc,
        max_addr: newsrc,
        ..*range
    };
    ct.nf_nat_setup_info(skb.nfct, &r, NfNatManipType::Src, ctx.now())
}
