//! The shared vocabulary of the netstack layers.
//!
//! Mirrors `include/linux/skbuff.h`, `include/linux/netdevice.h`,
//! `include/linux/ethtool.h`, `net/core/skbuff.c`, `net/core/page_pool.c`
//! and `kernel/time`: the types every layer above the wire formats speaks.
//!
//! - time: [`Instant`] and [`Duration`].
//! - buffers: [`SkBuff`] on [`PagePool`] buffers ([`PageBuf`]); the flow
//!   hash [`skb_get_hash`] with [`reciprocal_scale`] and [`jhash_3words`];
//!   software segmentation of GSO skbs ([`skb_gso_segment`], `net/core/gso.c`,
//!   with the TCP/IPv4 segmenter [`tcp4_gso_segment`]).
//! - errors: [`Errno`]; the lock order: [`lock_order`].
//! - clocks and timers: [`Clock`] ([`VirtualClock`], [`MonotonicClock`]) and
//!   the hierarchical [`TimerWheel`] of typed timer ids.
//! - counters: [`NetMibs`], the per-CPU MIB counters of `/proc/net/snmp` and
//!   `/proc/net/netstat`, summed into a [`MibSnapshot`].
//! - knobs: [`Sysctl`], the sysctl registry with Linux 6.18's defaults.
//! - fixtures (`testutils` feature): `testutil::{FakeClock, FakeTimers}` and
//!   the skip helpers `skip_unless_root`, `shared_dir_or_skip`.
//!
//! # Example
//!
//! A received frame, from a pool buffer to the IP header, without a copy:
//!
//! ```
//! use netcore::{DropReason, ETH_P_IP, PagePool, PagePoolParams, SkBuff, kfree_skb_reason};
//!
//! let pool = PagePool::new(PagePoolParams::default()).unwrap();
//! // The driver posts a buffer; the device writes a 34-byte frame at offset 64.
//! let mut buf = pool.alloc().unwrap();
//! buf[64 + 12..64 + 14].copy_from_slice(&ETH_P_IP.to_be_bytes());
//! let mut skb = SkBuff::from_page(buf, 64, 34).unwrap();
//! // eth_type_trans(): note the MAC header, read the ethertype, pull it.
//! skb.reset_mac_header();
//! skb.protocol = u16::from_be_bytes([skb.data()[12], skb.data()[13]]);
//! skb.pull(14).unwrap();
//! skb.reset_network_header();
//! assert_eq!((skb.protocol, skb.len(), skb.mac_offset()), (ETH_P_IP, 20, Some(-14)));
//! // A tap takes a clone (no copy); then the stack drops the packet.
//! let tap = skb.clone();
//! kfree_skb_reason(skb, DropReason::IpInhdr);
//! drop(tap);
//! assert_eq!(pool.stats().inflight(), 0); // back in the pool
//! ```
#![forbid(unsafe_code)]

mod clock;
mod dropreason;
mod errno;
mod ethtool;
#[cfg(any(test, feature = "testutils"))]
mod fake_netdevice;
mod flow_dissector;
mod gso;
mod inet_ecn;
pub mod lock_order;
mod netdevice;
mod page_pool;
mod percpu;
mod skbuff;
mod snmp;
mod spinlock;
mod sysctl;
mod tcp_offload;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;
mod time;
mod timer;
mod timer_context;

pub use clock::{Clock, ClockWentBackwards, MonotonicClock, VirtualClock};
pub use dropreason::{DropReason, consume_skb, kfree_skb_reason};
pub use errno::{Errno, UnknownErrno};
pub use ethtool::{
    EthtoolChannels, EthtoolCoalesce, EthtoolDrvinfo, EthtoolError, EthtoolOps, EthtoolRingparam,
    EthtoolStat, format_channels, format_coalesce, format_drvinfo, format_features,
    format_ringparam, format_stats,
};
pub use flow_dissector::{jhash_3words, reciprocal_scale, skb_get_hash};
pub use gso::{netif_needs_gso, skb_gso_ok, skb_gso_segment};
pub use inet_ecn::{
    INET_ECN_CE, INET_ECN_ECT_0, INET_ECN_ECT_1, INET_ECN_MASK, INET_ECN_NOT_ECT, inet_ecn_set_ce,
};
pub use netdevice::{
    DEFAULT_TX_QUEUE_LEN, DevAddr, ETH_DATA_LEN, ETH_MIN_MTU, MtuError, NETDEV_FEATURE_NAMES,
    NetDevice, NetDeviceFlags, NetdevFeatures, NetdevQueue, NetdevTx, NetdevTxQueues,
    RealNumTxQueuesError, RtnlLinkStats64, RxMode, SharedNetdevFeatures, validate_mtu,
};
pub use page_pool::{
    GSO_MAX_SIZE, PAGE_POOL_DEFAULT_BUF_SIZE, PAGE_POOL_DEFAULT_POOL_SIZE, PageBuf, PagePool,
    PagePoolParamError, PagePoolParams, PagePoolStats, SizeClass,
};
pub use percpu::{PcpuBits, PcpuOwner, PerCpuI64, PerCpuI64Cpu};
pub use skbuff::{
    ETH_P_ARP, ETH_P_IP, IpSummed, MAX_SKB_FRAGS, NET_SKB_PAD, PktType, SkBuff, SkbDestructor,
    SkbError, SkbGsoType,
};
pub use snmp::{
    IcmpMib, IcmpMsgDir, IpExtMib, IpMib, LinuxMib, MibField, MibSnapshot, NetMibs, NetMibsCpu,
    TcpMib, UdpLiteMib, UdpMib,
};
pub use spinlock::{SpinLock, SpinLockGuard};
pub use sysctl::{
    IntKey, RangeKey, SK_MEMORY_PCPU_RESERVE, StrKey, Sysctl, SysctlError, SysctlValue, VecKey,
};
pub use tcp_offload::{GsoError, tcp4_gso_segment};
pub use time::{Duration, Instant};
pub use timer::{HZ, LVL_BITS, LVL_CLK_SHIFT, LVL_DEPTH, LVL_SIZE, TimerWheel};
pub use timer_context::TimerContext;

/// The fake device for tests of the layers above the driver (`testutils`
/// feature).
#[cfg(any(test, feature = "testutils"))]
pub mod testutil_netdev {
    pub use crate::fake_netdevice::{FAKE_MAX_MTU, FAKE_MAX_RING, FakeNetDevice};
}
