//! The BSD socket API, epoll, and std-like wrappers.
//!
//! Mirrors `net/socket.c`, `net/ipv4/af_inet.c` and `fs/eventpoll.c`.
//!
//! It will hold the per-host fd table with `RLIMIT_NOFILE`, the socket calls
//! with Linux's errno values, epoll, and `TcpListener`, `TcpStream` and
//! `UdpSocket` shaped like `std::net`.
//!
//! This crate is filled by issue 7; until then it holds only this
//! description.
#![forbid(unsafe_code)]
