//! Generic segmentation offload on output: what the device cannot do is
//! done in software just before the driver.
//!
//! Mirrors `skb_gso_segment()`/`__skb_gso_segment()` and `skb_gso_ok()`
//! of `net/core/gso.c`, and `validate_xmit_skb()` with `netif_needs_gso()`
//! and `skb_needs_linearize()` of `net/core/dev.c`. The TCP/IPv4 segmenter
//! itself is in [`crate::tcp_offload`].
//!
//! # Deviations from Linux
//!
//! - `CHECKSUM_PARTIAL` on a packet that is not GSO is left to the driver
//!   even when the device lacks checksum offload (Linux computes it with
//!   `skb_csum_hwoffload_help()`); the drivers here finish it themselves.

use std::collections::VecDeque;

use netcore::{DropReason, IpSummed, NetdevFeatures, SkBuff, SkbGsoType, kfree_skb_reason};

use crate::netdevice::NetDev;
use crate::tcp_offload::{GsoError, tcp4_gso_segment};

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
    if skb.protocol != netcore::ETH_P_IP {
        return Err(GsoError::Unsupported {
            gso_type: skb.gso_type,
        });
    }
    tcp4_gso_segment(skb, features)
}

/// The packets [`validate_xmit_skb`] leaves to send, in order.
#[derive(Debug)]
pub(crate) enum XmitSkbs {
    /// One packet, as it was or made linear.
    One(SkBuff),
    /// The segments of a GSO packet.
    Segs(VecDeque<SkBuff>),
    /// Nothing: the packet was dropped (and counted).
    Dropped,
}

/// Makes a packet fit the device: segments a GSO packet the device cannot
/// take, linearizes a nonlinear one when the device lacks scatter-gather.
///
/// Mirrors `validate_xmit_skb()`. A packet that cannot be fixed is freed
/// and counted in the device's `tx_dropped`. The device's features are read
/// only for a GSO or nonlinear packet, so the common case costs two tests.
pub(crate) fn validate_xmit_skb(mut skb: SkBuff, dev: &NetDev) -> XmitSkbs {
    if !skb.is_gso() && !skb.is_nonlinear() {
        return XmitSkbs::One(skb);
    }
    let features = dev.device_lock().features();
    if netif_needs_gso(&skb, features) {
        return match skb_gso_segment(&skb, features) {
            Ok(segs) => {
                tracing::trace!(target: "netstack::softnet", ifindex = dev.ifindex(), segs = segs.len(), "skb_gso_segment");
                drop(skb);
                XmitSkbs::Segs(segs.into())
            }
            Err(e) => {
                tracing::debug!(target: "netstack::softnet", ifindex = dev.ifindex(), error = %e, "validate_xmit_skb: cannot segment");
                dev.tx_dropped_inc();
                kfree_skb_reason(skb, DropReason::NotSpecified);
                XmitSkbs::Dropped
            }
        };
    }
    // skb_needs_linearize()
    if skb.is_nonlinear() && !features.contains(NetdevFeatures::SG) && skb.linearize().is_err() {
        dev.tx_dropped_inc();
        kfree_skb_reason(skb, DropReason::Nomem);
        return XmitSkbs::Dropped;
    }
    XmitSkbs::One(skb)
}
