//! A per-ACK trace of a connection's congestion state.
//!
//! Mirrors the `tcp:tcp_probe` tracepoint (`include/trace/events/tcp.h`,
//! the successor of the `tcp_probe` module): the addresses and ports, the
//! sequence numbers, `snd_cwnd`, `ssthresh`, `snd_wnd`, `srtt`, and
//! here also the packets in flight, the CA state and a delivery rate. The
//! host receives one [`TcpProbe`] per processed ACK through
//! [`TcpContext::tcp_probe`](crate::TcpContext::tcp_probe) (a no-op unless
//! it overrides it).
//!
//! # Deviations from Linux
//!
//! - Linux fires the tracepoint at the top of `tcp_rcv_established()`,
//!   before the ACK is processed; here the sample is taken at the end of
//!   `tcp_ack()`, so it shows the state the ACK produced.
//! - `delivery_rate` is not a field of Linux's tracepoint: it is the
//!   ACK's delivery-rate sample ([`RateSample`](crate::RateSample), the
//!   rate `tcp_rate_gen()` computes), or the last valid one kept for
//!   `TCP_INFO` (`tcpi_delivery_rate`) when this ACK gave none.

use core::net::SocketAddrV4;

use netcore::Instant;

use crate::tcp_cong::TcpCaState;
use crate::tcp_rate::RateSample;
use crate::tcp_sock::TcpSock;

/// One sample of the trace. Mirrors the fields of `trace_tcp_probe()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TcpProbe {
    /// When the ACK was processed.
    pub at: Instant,
    /// Local address and port (`saddr`, `sport`).
    pub src: SocketAddrV4,
    /// Remote address and port (`daddr`, `dport`).
    pub dst: SocketAddrV4,
    /// `snd_una`.
    pub snd_una: u32,
    /// `snd_nxt`.
    pub snd_nxt: u32,
    /// `snd_cwnd`, segments.
    pub snd_cwnd: u32,
    /// `snd_ssthresh`, segments.
    pub ssthresh: u32,
    /// `snd_wnd`, bytes.
    pub snd_wnd: u32,
    /// Smoothed RTT, µs (`srtt_us >> 3`).
    pub srtt_us: u32,
    /// Segments in flight (`tcp_packets_in_flight()`).
    pub inflight: u32,
    /// `icsk_ca_state`.
    pub ca_state: TcpCaState,
    /// The ACK's delivery-rate sample in bytes per second, else the last
    /// valid one (`tcpi_delivery_rate`).
    pub delivery_rate: u64,
}

/// Builds the sample for `tp` after an ACK processed at `now` whose
/// rate sample is `rs`.
pub(crate) fn tcp_probe_sample(tp: &TcpSock, now: Instant, rs: &RateSample) -> TcpProbe {
    let srtt_us = tp.srtt_us >> 3;
    let delivery_rate = rs
        .delivery_rate(u32::from(tp.mss_cache))
        .unwrap_or_else(|| crate::tcp_rate::tcp_compute_delivery_rate(tp));
    TcpProbe {
        at: now,
        src: SocketAddrV4::new(tp.saddr, tp.sport),
        dst: SocketAddrV4::new(tp.daddr, tp.dport),
        snd_una: tp.snd_una,
        snd_nxt: tp.snd_nxt,
        snd_cwnd: tp.cwnd.snd_cwnd,
        ssthresh: tp.cwnd.snd_ssthresh,
        snd_wnd: tp.snd_wnd,
        srtt_us,
        inflight: tp.packets_in_flight(),
        ca_state: tp.ca_state,
        delivery_rate,
    }
}
