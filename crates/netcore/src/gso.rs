//! Generic segmentation offload: cutting a GSO skb into the frames a
//! device without the matching offload can send.
//!
//! Mirrors `skb_gso_segment()`/`__skb_gso_segment()` and `skb_gso_ok()`
//! of `net/core/gso.c` and `netif_needs_gso()` of `netdevice.h`. The
//! TCP/IPv4 segmenter the dispatch reaches is [`tcp4_gso_segment`]; the
//! caller on the transmit path is softnet's `validate_xmit_skb()`, and a
//! qdisc that must cut a packet to fit (`tbf`) calls it too.

use crate::tcp_offload::{GsoError, tcp4_gso_segment};
use crate::{IpSummed, NetdevFeatures, SkBuff, SkbGsoType};

/// The `NETIF_F_GSO_*` shift: `SKB_GSO_*` bit `n` is feature bit `n + 16`.
const NETIF_F_GSO_SHIFT: u32 = 16;

/// Whether a device with `features` takes a GSO skb of `gso_type` as it
/// is. Mirrors `skb_gso_ok()` / `net_gso_ok()`.
#[doc(alias = "net_gso_ok")]
pub fn skb_gso_ok(gso_type: SkbGsoType, features: NetdevFeatures) -> bool {
    let needed = NetdevFeatures::from_bits_retain(u64::from(gso_type.bits()) << NETIF_F_GSO_SHIFT);
    features.contains(needed)
}

/// Whether `skb` must be segmented in software before a device with
/// `features` may send it. Mirrors `netif_needs_gso()`.
pub fn netif_needs_gso(skb: &SkBuff, features: NetdevFeatures) -> bool {
    skb.is_gso()
        && (!skb_gso_ok(skb.gso_type, features)
            || !matches!(
                skb.ip_summed,
                IpSummed::Partial { .. } | IpSummed::Unnecessary
            ))
}

/// Segments a GSO skb for a device with `features`.
///
/// Mirrors `skb_gso_segment()` → `skb_mac_gso_segment()`: dispatches on
/// the ethertype and GSO type; only TCP over IPv4 is segmented here
/// ([`tcp4_gso_segment`]).
pub fn skb_gso_segment(skb: &SkBuff, features: NetdevFeatures) -> Result<Vec<SkBuff>, GsoError> {
    if skb.protocol != crate::ETH_P_IP {
        return Err(GsoError::Unsupported {
            gso_type: skb.gso_type,
        });
    }
    tcp4_gso_segment(skb, features)
}
