//! Why a packet was dropped, and the one call that drops it.
//!
//! Mirrors `include/net/dropreason-core.h` (`enum skb_drop_reason`) and
//! `kfree_skb_reason()` in `net/core/skbuff.c`. Every drop site does three
//! things: bump the Linux-named MIB counter (the caller's job, since only
//! it knows which MIB), emit a trace event with the reason, and release the
//! buffer to the pool. [`kfree_skb_reason`] does the last two.

use core::fmt;

use crate::skbuff::SkBuff;

macro_rules! drop_reasons {
    ($($variant:ident, $name:literal, $alias:literal, $doc:literal;)*) => {
        /// Why an skb was dropped.
        ///
        /// Mirrors `enum skb_drop_reason` in `include/net/dropreason-core.h`,
        /// one variant per `SKB_DROP_REASON_*` value, in the kernel's order.
        /// [`Display`](fmt::Display) prints the name the `skb:kfree_skb`
        /// tracepoint prints (`NO_SOCKET`).
        ///
        /// # Deviations from Linux
        /// The numeric values are not the kernel's (they change between
        /// releases); `SKB_NOT_DROPPED_YET` and `SKB_CONSUMED` are not drop
        /// reasons here: a consumed skb goes through [`consume_skb`].
        #[doc(alias = "skb_drop_reason")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DropReason {
            $(
                #[doc = $doc]
                #[doc(alias = $alias)]
                $variant,
            )*
        }

        impl DropReason {
            /// Every reason, in the kernel's order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant),*];

            /// The kernel's name without the `SKB_DROP_REASON_` prefix, as
            /// the `skb:kfree_skb` tracepoint and `dropwatch` print it.
            pub const fn name(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// The full C enumerator name, e.g. `SKB_DROP_REASON_NO_SOCKET`.
            pub const fn c_name(self) -> &'static str {
                match self { $(DropReason::$variant => $alias,)* }
            }
        }
    };
}

drop_reasons! {
NotSpecified, "NOT_SPECIFIED", "SKB_DROP_REASON_NOT_SPECIFIED", "No more precise reason was given.";
NoSocket, "NO_SOCKET", "SKB_DROP_REASON_NO_SOCKET", "No socket matched the packet.";
PktTooSmall, "PKT_TOO_SMALL", "SKB_DROP_REASON_PKT_TOO_SMALL", "The packet is shorter than its headers require.";
TcpCsum, "TCP_CSUM", "SKB_DROP_REASON_TCP_CSUM", "The TCP checksum is wrong.";
SocketFilter, "SOCKET_FILTER", "SKB_DROP_REASON_SOCKET_FILTER", "A socket filter rejected the packet.";
UdpCsum, "UDP_CSUM", "SKB_DROP_REASON_UDP_CSUM", "The UDP checksum is wrong.";
NetfilterDrop, "NETFILTER_DROP", "SKB_DROP_REASON_NETFILTER_DROP", "A netfilter rule dropped the packet.";
OtherHost, "OTHERHOST", "SKB_DROP_REASON_OTHERHOST", "The frame is for another host (seen in promiscuous mode).";
IpCsum, "IP_CSUM", "SKB_DROP_REASON_IP_CSUM", "The IPv4 header checksum is wrong.";
IpInhdr, "IP_INHDR", "SKB_DROP_REASON_IP_INHDR", "The IPv4 header is invalid (counted in `InHdrErrors`).";
IpRpfilter, "IP_RPFILTER", "SKB_DROP_REASON_IP_RPFILTER", "Reverse-path filtering rejected the source address.";
UnicastInL2Multicast, "UNICAST_IN_L2_MULTICAST", "SKB_DROP_REASON_UNICAST_IN_L2_MULTICAST", "An IP unicast packet arrived in a link-layer multicast or broadcast frame.";
XfrmPolicy, "XFRM_POLICY", "SKB_DROP_REASON_XFRM_POLICY", "An IPsec policy check failed.";
IpNoproto, "IP_NOPROTO", "SKB_DROP_REASON_IP_NOPROTO", "No handler is registered for the IP protocol number.";
SocketRcvbuff, "SOCKET_RCVBUFF", "SKB_DROP_REASON_SOCKET_RCVBUFF", "The socket's receive buffer is full.";
ProtoMem, "PROTO_MEM", "SKB_DROP_REASON_PROTO_MEM", "The protocol's global memory limit was reached.";
TcpAuthHdr, "TCP_AUTH_HDR", "SKB_DROP_REASON_TCP_AUTH_HDR", "TCP-MD5 or TCP-AO options are duplicated or malformed.";
TcpMd5notfound, "TCP_MD5NOTFOUND", "SKB_DROP_REASON_TCP_MD5NOTFOUND", "An MD5 signature was expected and missing.";
TcpMd5unexpected, "TCP_MD5UNEXPECTED", "SKB_DROP_REASON_TCP_MD5UNEXPECTED", "An MD5 signature arrived where none was expected.";
TcpMd5failure, "TCP_MD5FAILURE", "SKB_DROP_REASON_TCP_MD5FAILURE", "The MD5 signature is wrong.";
TcpAonotfound, "TCP_AONOTFOUND", "SKB_DROP_REASON_TCP_AONOTFOUND", "A TCP-AO option was expected and missing.";
TcpAounexpected, "TCP_AOUNEXPECTED", "SKB_DROP_REASON_TCP_AOUNEXPECTED", "A TCP-AO option arrived where none was expected.";
TcpAokeynotfound, "TCP_AOKEYNOTFOUND", "SKB_DROP_REASON_TCP_AOKEYNOTFOUND", "The TCP-AO key is unknown.";
TcpAofailure, "TCP_AOFAILURE", "SKB_DROP_REASON_TCP_AOFAILURE", "The TCP-AO MAC is wrong.";
SocketBacklog, "SOCKET_BACKLOG", "SKB_DROP_REASON_SOCKET_BACKLOG", "The socket backlog was full (counted in `TCPBacklogDrop`).";
TcpFlags, "TCP_FLAGS", "SKB_DROP_REASON_TCP_FLAGS", "The TCP flag combination is invalid.";
TcpZerowindow, "TCP_ZEROWINDOW", "SKB_DROP_REASON_TCP_ZEROWINDOW", "Data arrived while the receive window is zero (`TCPZeroWindowDrop`).";
TcpOldData, "TCP_OLD_DATA", "SKB_DROP_REASON_TCP_OLD_DATA", "The data was already received (a spurious retransmission).";
TcpOverwindow, "TCP_OVERWINDOW", "SKB_DROP_REASON_TCP_OVERWINDOW", "The data starts beyond the right edge of the receive window.";
TcpOfomerge, "TCP_OFOMERGE", "SKB_DROP_REASON_TCP_OFOMERGE", "The data is already in the out-of-order queue (`TCPOFOMerge`).";
TcpRfc7323Paws, "TCP_RFC7323_PAWS", "SKB_DROP_REASON_TCP_RFC7323_PAWS", "The PAWS timestamp check failed (`PAWSEstabRejected`).";
TcpOldSequence, "TCP_OLD_SEQUENCE", "SKB_DROP_REASON_TCP_OLD_SEQUENCE", "The sequence number is old (a duplicate segment).";
TcpInvalidSequence, "TCP_INVALID_SEQUENCE", "SKB_DROP_REASON_TCP_INVALID_SEQUENCE", "The sequence number is not acceptable.";
TcpReset, "TCP_RESET", "SKB_DROP_REASON_TCP_RESET", "The RST is invalid.";
TcpInvalidSyn, "TCP_INVALID_SYN", "SKB_DROP_REASON_TCP_INVALID_SYN", "A SYN arrived where none is allowed.";
TcpClose, "TCP_CLOSE", "SKB_DROP_REASON_TCP_CLOSE", "The socket is in the CLOSE state.";
TcpFastopen, "TCP_FASTOPEN", "SKB_DROP_REASON_TCP_FASTOPEN", "A Fast Open request socket dropped the packet.";
TcpOldAck, "TCP_OLD_ACK", "SKB_DROP_REASON_TCP_OLD_ACK", "The ACK is old but within the window.";
TcpTooOldAck, "TCP_TOO_OLD_ACK", "SKB_DROP_REASON_TCP_TOO_OLD_ACK", "The ACK is older than the window.";
TcpAckUnsentData, "TCP_ACK_UNSENT_DATA", "SKB_DROP_REASON_TCP_ACK_UNSENT_DATA", "The ACK covers data never sent.";
TcpOfoQueuePrune, "TCP_OFO_QUEUE_PRUNE", "SKB_DROP_REASON_TCP_OFO_QUEUE_PRUNE", "Pruned from the out-of-order queue under memory pressure.";
TcpOfoDrop, "TCP_OFO_DROP", "SKB_DROP_REASON_TCP_OFO_DROP", "The data is already in the receive queue.";
IpOutnoroutes, "IP_OUTNOROUTES", "SKB_DROP_REASON_IP_OUTNOROUTES", "The output route lookup failed.";
BpfCgroupEgress, "BPF_CGROUP_EGRESS", "SKB_DROP_REASON_BPF_CGROUP_EGRESS", "A cgroup egress BPF program dropped the packet.";
Ipv6disabled, "IPV6DISABLED", "SKB_DROP_REASON_IPV6DISABLED", "IPv6 is disabled on the device.";
NeighCreatefail, "NEIGH_CREATEFAIL", "SKB_DROP_REASON_NEIGH_CREATEFAIL", "A neighbour entry could not be created.";
NeighFailed, "NEIGH_FAILED", "SKB_DROP_REASON_NEIGH_FAILED", "The neighbour entry is in the FAILED state.";
NeighQueuefull, "NEIGH_QUEUEFULL", "SKB_DROP_REASON_NEIGH_QUEUEFULL", "The neighbour entry's queue of unresolved packets is full.";
NeighDead, "NEIGH_DEAD", "SKB_DROP_REASON_NEIGH_DEAD", "The neighbour entry is dead.";
TcEgress, "TC_EGRESS", "SKB_DROP_REASON_TC_EGRESS", "The tc egress hook dropped the packet.";
QdiscDrop, "QDISC_DROP", "SKB_DROP_REASON_QDISC_DROP", "The qdisc refused the packet (queue full).";
CpuBacklog, "CPU_BACKLOG", "SKB_DROP_REASON_CPU_BACKLOG", "The per-CPU backlog was full (`netdev_max_backlog`) or the RPS flow limit hit.";
Xdp, "XDP", "SKB_DROP_REASON_XDP", "An XDP program dropped the packet.";
TcIngress, "TC_INGRESS", "SKB_DROP_REASON_TC_INGRESS", "The tc ingress hook dropped the packet.";
UnhandledProto, "UNHANDLED_PROTO", "SKB_DROP_REASON_UNHANDLED_PROTO", "No handler for the ethertype or protocol.";
SkbCsum, "SKB_CSUM", "SKB_DROP_REASON_SKB_CSUM", "Computing the skb's checksum failed.";
SkbGsoSeg, "SKB_GSO_SEG", "SKB_DROP_REASON_SKB_GSO_SEG", "Segmenting a GSO skb failed.";
SkbUcopyFault, "SKB_UCOPY_FAULT", "SKB_DROP_REASON_SKB_UCOPY_FAULT", "Copying data from the application failed.";
DevHdr, "DEV_HDR", "SKB_DROP_REASON_DEV_HDR", "The device-specific header or metadata is invalid.";
DevReady, "DEV_READY", "SKB_DROP_REASON_DEV_READY", "The device is not ready (not up, or a queue not set up).";
FullRing, "FULL_RING", "SKB_DROP_REASON_FULL_RING", "A ring buffer was full.";
Nomem, "NOMEM", "SKB_DROP_REASON_NOMEM", "Memory (a pool buffer) could not be allocated.";
HdrTrunc, "HDR_TRUNC", "SKB_DROP_REASON_HDR_TRUNC", "A header could not be pulled: the packet is truncated.";
TapFilter, "TAP_FILTER", "SKB_DROP_REASON_TAP_FILTER", "A filter attached to a tap device dropped the packet.";
TapTxfilter, "TAP_TXFILTER", "SKB_DROP_REASON_TAP_TXFILTER", "A tap device's transmit filter dropped the packet.";
IcmpCsum, "ICMP_CSUM", "SKB_DROP_REASON_ICMP_CSUM", "The ICMP checksum is wrong.";
InvalidProto, "INVALID_PROTO", "SKB_DROP_REASON_INVALID_PROTO", "The packet breaks its protocol's rules (e.g. a broadcast ICMP timestamp).";
IpInaddrerrors, "IP_INADDRERRORS", "SKB_DROP_REASON_IP_INADDRERRORS", "The destination is not reachable (counted in `InAddrErrors`).";
IpInnoroutes, "IP_INNOROUTES", "SKB_DROP_REASON_IP_INNOROUTES", "No route to the destination (counted in `InNoRoutes`).";
PktTooBig, "PKT_TOO_BIG", "SKB_DROP_REASON_PKT_TOO_BIG", "The packet is larger than the MTU allows.";
DupFrag, "DUP_FRAG", "SKB_DROP_REASON_DUP_FRAG", "A duplicate fragment.";
FragReasmTimeout, "FRAG_REASM_TIMEOUT", "SKB_DROP_REASON_FRAG_REASM_TIMEOUT", "Reassembly timed out (`ipfrag_time`).";
FragTooFar, "FRAG_TOO_FAR", "SKB_DROP_REASON_FRAG_TOO_FAR", "The fragment is too far from its siblings (`ipfrag_max_dist`).";
TcpMinttl, "TCP_MINTTL", "SKB_DROP_REASON_TCP_MINTTL", "The TTL is below the socket's `IP_MINTTL`.";
Ipv6BadExthdr, "IPV6_BAD_EXTHDR", "SKB_DROP_REASON_IPV6_BAD_EXTHDR", "A bad IPv6 extension header.";
Ipv6NdiscFrag, "IPV6_NDISC_FRAG", "SKB_DROP_REASON_IPV6_NDISC_FRAG", "A fragmented neighbour-discovery message.";
Ipv6NdiscHopLimit, "IPV6_NDISC_HOP_LIMIT", "SKB_DROP_REASON_IPV6_NDISC_HOP_LIMIT", "A neighbour-discovery message with a wrong hop limit.";
Ipv6NdiscBadCode, "IPV6_NDISC_BAD_CODE", "SKB_DROP_REASON_IPV6_NDISC_BAD_CODE", "A neighbour-discovery message with a wrong ICMPv6 code.";
Ipv6NdiscBadOptions, "IPV6_NDISC_BAD_OPTIONS", "SKB_DROP_REASON_IPV6_NDISC_BAD_OPTIONS", "A neighbour-discovery message with bad options.";
Ipv6NdiscNsOtherhost, "IPV6_NDISC_NS_OTHERHOST", "SKB_DROP_REASON_IPV6_NDISC_NS_OTHERHOST", "A neighbour solicitation for another host.";
QueuePurge, "QUEUE_PURGE", "SKB_DROP_REASON_QUEUE_PURGE", "Freed while purging a whole queue.";
TcCookieError, "TC_COOKIE_ERROR", "SKB_DROP_REASON_TC_COOKIE_ERROR", "Processing a tc extended cookie failed.";
PacketSockError, "PACKET_SOCK_ERROR", "SKB_DROP_REASON_PACKET_SOCK_ERROR", "A packet socket failed after its filter matched.";
TcChainNotfound, "TC_CHAIN_NOTFOUND", "SKB_DROP_REASON_TC_CHAIN_NOTFOUND", "The tc chain lookup failed.";
TcReclassifyLoop, "TC_RECLASSIFY_LOOP", "SKB_DROP_REASON_TC_RECLASSIFY_LOOP", "tc reclassified the packet too many times.";}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Drops `skb` for `reason`: emits a `kfree_skb` trace event with the
/// reason and returns the buffer to its pool (unless a clone still holds
/// it).
///
/// Mirrors `kfree_skb_reason()` in `net/core/skbuff.c` and its
/// `skb:kfree_skb` tracepoint. Consumes the skb. The caller bumps the MIB
/// counter that goes with the drop (`InHdrErrors`, `InCsumErrors`, ...).
#[doc(alias = "kfree_skb")]
pub fn kfree_skb_reason(skb: SkBuff, reason: DropReason) {
    tracing::trace!(
        target: "netcore::skbuff",
        reason = reason.name(),
        ifindex = skb.ifindex,
        protocol = skb.protocol,
        len = skb.len(),
        "kfree_skb"
    );
    drop(skb);
}

/// Frees an skb that was used up normally (delivered, transmitted): no
/// drop is recorded.
///
/// Mirrors `consume_skb()` in `net/core/skbuff.c` and its `skb:consume_skb`
/// tracepoint.
pub fn consume_skb(skb: SkBuff) {
    tracing::trace!(target: "netcore::skbuff", len = skb.len(), "consume_skb");
    drop(skb);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_pool::{PagePool, PagePoolParams};

    #[test]
    fn names_match_the_kernel() {
        assert_eq!(DropReason::NoSocket.to_string(), "NO_SOCKET");
        assert_eq!(DropReason::IpCsum.c_name(), "SKB_DROP_REASON_IP_CSUM");
        assert_eq!(DropReason::CpuBacklog.name(), "CPU_BACKLOG");
        assert_eq!(DropReason::ALL.first(), Some(&DropReason::NotSpecified));
        assert_eq!(DropReason::ALL.len(), 85);
        for r in DropReason::ALL {
            assert_eq!(r.c_name().strip_prefix("SKB_DROP_REASON_"), Some(r.name()));
        }
    }

    #[test]
    fn kfree_returns_buffer_to_pool() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let skb = SkBuff::from_slice(&pool, 0, b"bad").unwrap();
        let clone = skb.clone();
        kfree_skb_reason(skb, DropReason::IpCsum);
        assert_eq!(pool.stats().inflight(), 1, "the clone still holds it");
        consume_skb(clone);
        let s = pool.stats();
        assert_eq!((s.inflight(), s.recycle_ring), (0, 1));
    }
}
