//! A userspace TCP/IP stack whose structure is the Linux networking stack.
//!
//! Mirrors the kernel's networking as a whole: `net_dev_init`, `inet_init`, ksoftirqd, `/proc`.
//!
//! It will wire the layer crates into a `Host`, own the two runtimes
//! (deterministic simulation and real threads), print reports in the formats
//! of `ip`, `ss`, `ethtool` and `tc`, write pcap captures and packet walks,
//! and provide the `netstack` command.
//!
//! This crate is filled by issue 6; until then it holds only this
//! description.
#![forbid(unsafe_code)]
