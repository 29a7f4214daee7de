//! Per-CPU receive and transmit processing of the device-agnostic layer.
//!
//! Mirrors `net/core/dev.c`.
//!
//! It will hold `SoftnetData`, `net_rx_action` with `netdev_budget` and
//! `netdev_budget_usecs`, `netif_rx` and the backlog, RPS, `netif_receive_skb`
//! with `ptype_all` taps and `ptype_base` dispatch (`dev_add_pack`),
//! `dev_queue_xmit`, `net_tx_action` and `/proc/net/softnet_stat`.
//!
//! This crate is filled by issue 4; until then it holds only this
//! description.
#![forbid(unsafe_code)]
