//! NIC descriptor rings shared by a simulated device and its driver.
//!
//! Mirrors a NIC's rx and tx descriptor rings (as `drivers/net/ethernet/intel/igb` drives them).
//!
//! The rings carry handles to `netcore`'s page-pool buffers. The driver posts
//! descriptors and bumps the tail; the device fills them and writes back a
//! done (DD) bit with release ordering; the driver reaps in order with acquire
//! ordering. Every descriptor has exactly one owner at a time. This is one of
//! the two places in the workspace allowed `unsafe`, and the protocol is
//! checked with loom.
//!
//! This crate is filled by issue 3; until then it holds only this
//! description.
