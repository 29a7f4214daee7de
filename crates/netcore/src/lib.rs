//! The shared vocabulary of the netstack layers.
//!
//! Mirrors `include/linux/skbuff.h`, `include/linux/netdevice.h`,
//! `include/linux/ethtool.h`, `net/core/skbuff.c`, `net/core/page_pool.c`
//! and `kernel/time`: the types every layer above the wire formats speaks.
//!
//! - time: [`Instant`] and [`Duration`].
//! - buffers: [`SkBuff`] on [`PagePool`] buffers ([`PageBuf`]).
//! - errors: [`Errno`]; the lock order: [`lock_order`].
//! - clocks and timers: [`Clock`] ([`VirtualClock`], [`MonotonicClock`]) and
//!   the hierarchical [`TimerWheel`] of typed timer ids.
//! - counters: [`NetMibs`], the per-CPU MIB counters of `/proc/net/snmp` and
//!   `/proc/net/netstat`, summed into a [`MibSnapshot`].
//! - knobs: [`Sysctl`], the sysctl registry with Linux 6.18's defaults.
//! - fixtures (`testutils` feature): `testutil::{FakeClock, FakeTimers}` and
//!   the skip helpers `skip_unless_root`, `shared_dir_or_skip`.
#![forbid(unsafe_code)]

mod clock;
mod dropreason;
mod errno;
mod ethtool;
#[cfg(any(test, feature = "testutils"))]
mod fake_netdevice;
pub mod lock_order;
mod netdevice;
mod page_pool;
mod skbuff;
mod snmp;
mod sysctl;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;
mod time;
mod timer;

pub use clock::{Clock, ClockWentBackwards, MonotonicClock, VirtualClock};
pub use dropreason::{DropReason, consume_skb, kfree_skb_reason};
pub use errno::{Errno, UnknownErrno};
pub use ethtool::{
    EthtoolChannels, EthtoolCoalesce, EthtoolDrvinfo, EthtoolError, EthtoolOps, EthtoolRingparam,
    EthtoolStat, format_channels, format_coalesce, format_drvinfo, format_features,
    format_ringparam, format_stats,
};
pub use netdevice::{
    DEFAULT_TX_QUEUE_LEN, DevAddr, ETH_DATA_LEN, ETH_MIN_MTU, MtuError, NETDEV_FEATURE_NAMES,
    NetDevice, NetDeviceFlags, NetdevFeatures, NetdevQueue, NetdevTx, NetdevTxQueues,
    RtnlLinkStats64, RxMode, validate_mtu,
};
pub use page_pool::{
    GSO_MAX_SIZE, PAGE_POOL_DEFAULT_BUF_SIZE, PAGE_POOL_DEFAULT_POOL_SIZE, PageBuf, PagePool,
    PagePoolParamError, PagePoolParams, PagePoolStats, SizeClass,
};
pub use skbuff::{
    ETH_P_ARP, ETH_P_IP, IpSummed, NET_SKB_PAD, PktType, SkBuff, SkbError, SkbGsoType,
};
pub use snmp::{
    IcmpMib, IcmpMsgDir, IpExtMib, IpMib, LinuxMib, MibField, MibSnapshot, NetMibs, TcpMib,
    UdpLiteMib, UdpMib,
};
pub use sysctl::{IntKey, RangeKey, StrKey, Sysctl, SysctlError, SysctlValue, VecKey};
pub use time::{Duration, Instant};
pub use timer::{HZ, LVL_BITS, LVL_CLK_SHIFT, LVL_DEPTH, LVL_SIZE, TimerWheel};

/// The fake device for tests of the layers above the driver (`testutils`
/// feature).
#[cfg(any(test, feature = "testutils"))]
pub mod testutil_netdev {
    pub use crate::fake_netdevice::{FAKE_MAX_MTU, FAKE_MAX_RING, FakeNetDevice};
}
