//! The TCP of Linux.
//!
//! Mirrors `net/ipv4/tcp*.c`, `inet_connection_sock.c` and `inet_hashtables.c`.
//!
//! It will hold the state machine, request sockets and the accept queue,
//! options, timers, send and receive buffers, loss recovery, and congestion
//! control behind the `CongestionOps` trait (`tcp_congestion_ops`) with Reno
//! and CUBIC built in.
//!
//! This crate is filled by issue 8; until then it holds only this
//! description.
#![forbid(unsafe_code)]
