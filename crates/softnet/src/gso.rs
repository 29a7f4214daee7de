//! Generic segmentation offload on output: what the device cannot do is
//! done in software just before the driver.
//!
//! Mirrors `validate_xmit_skb()` with `skb_needs_linearize()` of
//! `net/core/dev.c`. The segmentation itself (`skb_gso_segment()` of
//! `net/core/gso.c` and the TCP/IPv4 segmenter) is netcore's.
//!
//! # Deviations from Linux
//!
//! - `CHECKSUM_PARTIAL` on a packet that is not GSO is left to the driver
//!   even when the device lacks checksum offload (Linux computes it with
//!   `skb_csum_hwoffload_help()`); the drivers here finish it themselves.

use std::collections::VecDeque;

use netcore::{
    DropReason, NetdevFeatures, SkBuff, kfree_skb_reason, netif_needs_gso, skb_gso_segment,
};

use crate::netdevice::NetDev;

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

/// Whether [`validate_xmit_skb`] would hand `skb` to the driver as it is:
/// not GSO, and linear or for a device with scatter-gather. The transmit
/// path tests this first so that the common packet goes to the driver
/// without the [`XmitSkbs`] it would be wrapped in (a move of the skb and
/// a call, ~50 instructions per packet).
#[inline(always)]
pub(crate) fn skb_xmit_as_is(skb: &SkBuff, dev: &NetDev) -> bool {
    !skb.is_gso() && (!skb.is_nonlinear() || dev.features().contains(NetdevFeatures::SG))
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
    let features = dev.features();
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
