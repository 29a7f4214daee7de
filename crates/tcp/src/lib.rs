//! The TCP of Linux, sans-IO.
//!
//! Mirrors `net/ipv4/tcp*.c`, `inet_connection_sock.c`, `inet_hashtables.c`,
//! `inet_timewait_sock.c`, `syncookies.c` and `net/core/secure_seq.c`: the
//! state machine with all eleven states, request sockets with the SYN and
//! accept queues and SYN cookies, the lookup tables with Linux's port
//! selection, send and receive queues with Nagle, delayed ACKs, SACK and
//! D-SACK, RTO and loss recovery (RACK-TLP, SACK and NewReno with PRR,
//! undo and F-RTO), the timers, RFC 5961 protections, `TCP_INFO` and the
//! Tcp/TcpExt counters.
//!
//! The crate never does I/O and never reads a clock: everything it needs
//! from the host comes through [`TcpContext`] (time, timers, counters,
//! sysctls, buffers, randomness, route lookup, `ip_queue_xmit`, socket
//! wake-ups). Timers are typed ids ([`TcpTimer`]) that the host fires back
//! into [`TcpStack::handle_timer`]; segments from IP enter at
//! [`tcp_v4_rcv`]. Congestion control is a plug-in ([`CongestionOps`],
//! Reno and CUBIC built in, CUBIC the default).
//!
//! Table of contents:
//!
//! - the host's TCP and the socket-facing operations: [`TcpStack`],
//!   [`TcpSocket`], [`MsgFlags`], [`PollMask`], [`SockOpt`],
//!   [`SockOptName`], [`Shutdown`] (`tcp.rs`);
//! - the context seam: [`TcpContext`], [`SkEvent`], [`TcpRoute`]
//!   (`context.rs`);
//! - the IPv4 protocol table entry: [`TcpProtocol`] (`ipv4::NetProtocol`
//!   with `tcp_v4_rcv`/`tcp_v4_err`, `protocol.rs`);
//! - receive: [`tcp_v4_rcv`], [`tcp_v4_err`], [`tcp_v4_send_reset`]
//!   (`tcp_ipv4.rs`), the state machine (`tcp_input.rs`), TIME-WAIT
//!   (`tcp_minisocks.rs`), listeners (`inet_connection_sock.rs`);
//! - send: `tcp_output.rs` ([`tcp_select_initial_window`]);
//! - pacing (`sk_pacing_rate`, EDT departure times, the pacing timer)
//!   and TCP Small Queues: [`TsqList`] (`tcp_pacing.rs`);
//! - timers: [`TcpTimer`] (`tcp_timer.rs`); tail loss probes
//!   (`tcp_recovery.rs`); RACK loss detection and NewReno loss marking
//!   (`tcp_rack.rs`);
//! - memory: `tcp_mem` accounting and pressure, [`TcpMemory`]
//!   (`tcp_mem.rs`); per-destination metrics, [`TcpMetricsBlock`]
//!   (`tcp_metrics.rs`);
//! - the per-ACK trace: [`TcpProbe`] (`tcp_probe.rs`); delivery-rate
//!   samples [`RateSample`] and the windowed min RTT (`tcp_rate.rs`,
//!   [`Minmax`] in `win_minmax.rs`);
//! - tables: [`InetHashinfo`] (`inet_hashtables.rs`); secrets and ISNs:
//!   [`secure_tcp_seq`] (`secure_seq.rs`); SYN cookies (`syncookies.rs`);
//! - ECN (RFC 3168): negotiation, ECT marking, CE echo and CWR
//!   (`tcp_ecn.rs`);
//! - congestion control: [`CongestionOps`], [`Reno`],
//!   [`CongestionRegistry`] (`tcp_cong.rs`), [`Cubic`] (`tcp_cubic.rs`);
//! - `TCP_INFO` and `ss`: [`TcpInfo`], [`SsEntry`] (`inet_diag.rs`);
//! - states and constants: [`TcpState`], [`SockId`] (`tcp_sock.rs`);
//! - fixtures (`testutils` feature): `testutil::{FakeTcpCtx, Net}`.
//!
//! # Example
//!
//! Two hosts back to back in virtual time: connect, send, receive.
//!
//! ```
//! use tcp::testutil::Net;
//! use tcp::{PollMask, TcpState};
//!
//! let mut net = Net::new(2);
//! let (client, server) = net.connect_pair(80);
//! assert_eq!(client.state(), TcpState::Established);
//! net.send(0, &client, b"hello").unwrap();
//! net.run_for_ms(10);
//! assert!(net.hosts[1].stack.poll(&server).contains(PollMask::IN));
//! let mut buf = [0u8; 16];
//! let n = net.recv(1, &server, &mut buf).unwrap();
//! assert_eq!(&buf[..n], b"hello");
//! ```
#![forbid(unsafe_code)]

mod context;
mod inet_connection_sock;
mod inet_diag;
mod inet_hashtables;
mod protocol;
mod secure_seq;
mod syncookies;
mod tcp;
mod tcp_cong;
mod tcp_cubic;
mod tcp_ecn;
mod tcp_input;
mod tcp_ipv4;
mod tcp_mem;
mod tcp_metrics;
mod tcp_minisocks;
mod tcp_output;
mod tcp_pacing;
mod tcp_probe;
mod tcp_rack;
mod tcp_rate;
mod tcp_recovery;
mod tcp_sock;
mod tcp_timer;
#[cfg(test)]
mod tests;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;
mod win_minmax;

pub use context::{SkEvent, TcpContext, TcpRoute};
pub use inet_diag::{SsEntry, TcpInfo};
pub use inet_hashtables::{EhashEntry, FourTuple, InetHashinfo};
pub use protocol::{TcpProtocol, tcp_icmp_decode, tcp_ip_queue_xmit, tcp_ip_route_output};
pub use secure_seq::{
    SiphashKey, SplitMix64, TcpSecrets, secure_ipv4_port_ephemeral, secure_tcp_seq,
    secure_tcp_ts_off, siphash,
};
pub use syncookies::{
    MSSTAB, cookie_init_timestamp, cookie_timestamp_decode, cookie_v4_check_mss,
    cookie_v4_init_sequence,
};
pub use tcp::{MsgFlags, PollMask, Shutdown, SockOpt, SockOptName, TcpSocket, TcpStack};
pub use tcp_cong::{
    CaEvent, CongestionFactory, CongestionOps, CongestionRegistry, Reno, TCP_INFINITE_SSTHRESH,
    TcpCaState, TcpCwnd,
};
pub use tcp_cubic::{Cubic, CubicParams, cubic_root};
pub use tcp_input::TcpSeg;
pub use tcp_ipv4::{TcpIcmpError, tcp_v4_err, tcp_v4_rcv, tcp_v4_send_reset};
pub use tcp_mem::{SK_MEM_QUANTUM, TcpMemory};
pub use tcp_metrics::{TCP_METRICS_TIMEOUT, TCP_TIMEOUT_FALLBACK, TcpMetricsBlock};
pub use tcp_output::{TCP_NAGLE_CORK, TCP_NAGLE_OFF, TCP_NAGLE_PUSH, tcp_select_initial_window};
pub use tcp_pacing::TsqList;
pub use tcp_probe::TcpProbe;
pub use tcp_rate::RateSample;
pub use tcp_sock::{
    MAX_TCP_HEADER, SockId, SockWq, TCP_DELACK_MAX, TCP_DELACK_MIN, TCP_INIT_CWND, TCP_MSS_DEFAULT,
    TCP_RTO_MAX, TCP_RTO_MIN, TCP_TIMEOUT_INIT, TCP_TIMEWAIT_LEN, TcpState, after, before, between,
};
pub use tcp_timer::TcpTimer;
pub use win_minmax::{Minmax, MinmaxSample};

/// The README's examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
