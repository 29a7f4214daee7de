//! UDP.
//!
//! Mirrors `net/ipv4/udp.c`.
//!
//! It will hold `udp_rcv` and `udp_sendmsg`, socket lookup with
//! `SO_REUSEADDR` and `SO_REUSEPORT`, checksums, receive-buffer accounting and
//! drops, and ICMP errors delivered to sockets.
//!
//! This crate is filled by issue 7; until then it holds only this
//! description.
#![forbid(unsafe_code)]
