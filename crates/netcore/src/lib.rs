//! The shared vocabulary of the netstack layers.
//!
//! Mirrors `include/linux/skbuff.h`, `include/linux/netdevice.h`,
//! `include/linux/ethtool.h`, `net/core/skbuff.c`, `net/core/page_pool.c`
//! and `kernel/time`: the types every layer above the wire formats speaks.
//!
//! - time: [`Instant`] and [`Duration`].
//! - buffers: [`SkBuff`] on [`PagePool`] buffers ([`PageBuf`]).
//! - errors: [`Errno`]; the lock order: [`lock_order`].
#![forbid(unsafe_code)]

mod errno;
pub mod lock_order;
mod page_pool;
mod skbuff;
mod time;

pub use errno::{Errno, UnknownErrno};
pub use page_pool::{
    GSO_MAX_SIZE, PAGE_POOL_DEFAULT_BUF_SIZE, PAGE_POOL_DEFAULT_POOL_SIZE, PageBuf, PagePool,
    PagePoolParamError, PagePoolParams, PagePoolStats, SizeClass,
};
pub use skbuff::{
    ETH_P_ARP, ETH_P_IP, IpSummed, NET_SKB_PAD, PktType, SkBuff, SkbError, SkbGsoType,
};
pub use time::{Duration, Instant};
