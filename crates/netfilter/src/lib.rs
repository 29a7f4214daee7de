//! Packet filtering, connection tracking and NAT for IPv4.
//!
//! Mirrors `net/netfilter` and `net/ipv4/netfilter`.
//!
//! It will hold the five IPv4 hook points with priorities and verdicts
//! (`nf_register_net_hook`, `NF_HOOK`), iptables-like tables, chains, rules
//! and targets with counters and an `iptables-save` text form, connection
//! tracking, and NAT.
//!
//! This crate is filled by issue 12; until then it holds only this
//! description.
#![forbid(unsafe_code)]
