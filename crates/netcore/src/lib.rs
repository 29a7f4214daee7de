//! The shared vocabulary of the netstack layers.
//!
//! Mirrors `include/linux/skbuff.h`, `include/linux/netdevice.h`,
//! `include/linux/ethtool.h`, `net/core/skbuff.c`, `net/core/page_pool.c`
//! and `kernel/time`: the types every layer above the wire formats speaks.
//!
//! - time: [`Instant`] and [`Duration`].
#![forbid(unsafe_code)]

mod time;

pub use time::{Duration, Instant};
