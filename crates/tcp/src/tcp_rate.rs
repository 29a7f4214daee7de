//! Delivery-rate sampling and the windowed minimum RTT.
//!
//! Mirrors `net/ipv4/tcp_rate.c` (in Linux 6.18 the file keeps only
//! `tcp_rate_check_app_limited()`; `tcp_rate_skb_sent()` moved to
//! `tcp_output.c` and `tcp_rate_skb_delivered()`/`tcp_rate_gen()` to
//! `tcp_input.c`, all three are here) and `tcp_update_rtt_min()` of
//! `tcp_input.c`.
//!
//! Each ACK yields one [`RateSample`]: how many segments were delivered
//! (ACKed or SACKed) between the send of the newest segment this ACK
//! delivered and now, over the longer of its send phase and its ACK
//! phase:
//!
//! ```text
//!   sender:  first_tx ...... sent(P)                   (send phase)
//!   ACKs:    delivered_mstamp(P) ............ now      (ACK phase)
//!   rate = (delivered_now - delivered_at_send(P)) / max(send, ACK phase)
//! ```
//!
//! A sample taken while the application left the pipe partly empty is
//! marked application-limited (`tcp_rate_check_app_limited()`), so a
//! congestion controller does not take it for the path's capacity.
//!
//! # Deviations from Linux
//!
//! - `tcp_rate_check_app_limited()` cannot see `sk_wmem_alloc` (bytes in
//!   the host's qdisc and NIC): TCP hands `ip_queue_xmit()` a copy and
//!   is not told when the device sent it, so that test is left out.
//! - The send and delivery stamps are µs in a `u32` (Linux keeps `u64`)
//!   compared with wrapping arithmetic, which keeps the socket within
//!   its 1000-byte budget and the per-segment state at 16 bytes; a
//!   sampling interval is far shorter than the 71 minutes a `u32` of µs
//!   spans. 0 means "no stamp", so a stamp that would be 0 is 1.

use crate::tcp_sock::{TcpSock, TxSkb, after};
use crate::win_minmax::Minmax;

/// What a segment remembers of the connection when it was sent, for the
/// rate sample its delivery will give. Mirrors `tcp_skb_cb->tx`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcpSkbTx {
    /// The connection's `first_tx_mstamp` at the send (µs).
    pub first_tx_mstamp: u32,
    /// The connection's `delivered_mstamp` at the send (µs); 0 once the
    /// segment's delivery was counted by a SACK.
    pub delivered_mstamp: u32,
    /// The connection's `delivered` at the send.
    pub delivered: u32,
    /// The connection was application-limited at the send.
    pub is_app_limited: bool,
}

/// The per-socket state of the rate sampler and the min-RTT filter.
///
/// Mirrors the fields of `struct tcp_sock` used by `tcp_rate.c` and
/// `tcp_update_rtt_min()`: `first_tx_mstamp`, `delivered_mstamp`,
/// `app_limited`, `rate_delivered`, `rate_interval_us`,
/// `rate_app_limited`, `rtt_min`. (`delivered` itself stays on the
/// socket, `tp->delivered`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpRateState {
    /// Send time (µs) of the segment that starts the current sampling
    /// window (`first_tx_mstamp`).
    pub first_tx_mstamp: u32,
    /// When `delivered` last grew (µs) (`delivered_mstamp`).
    pub delivered_mstamp: u32,
    /// `delivered` plus the flight when the sender became
    /// application-limited; 0 when it is not (`app_limited`).
    pub app_limited: u32,
    /// The last sample kept for `TCP_INFO`: segments delivered over
    /// `rate_interval_us` (`rate_delivered`, `rate_interval_us`).
    pub rate_delivered: u32,
    pub rate_interval_us: u32,
    /// That sample was application-limited (`rate_app_limited`).
    pub rate_app_limited: bool,
    /// The minimum RTT over `tcp_min_rtt_wlen` seconds, µs, time in ms
    /// (`rtt_min`); its value is mirrored in `TcpSock::min_rtt_us`.
    pub rtt_min: Minmax,
}

impl TcpRateState {
    /// The state of a new socket: application-limited until it sends
    /// (`tcp_init_sock()` sets `rate_app_limited`), no RTT yet.
    pub const fn new() -> TcpRateState {
        TcpRateState {
            first_tx_mstamp: 0,
            delivered_mstamp: 0,
            app_limited: 0,
            rate_delivered: 0,
            rate_interval_us: 0,
            rate_app_limited: true,
            rtt_min: Minmax::new(0, u32::MAX),
        }
    }
}

/// One delivery-rate sample, built per ACK and handed to the congestion
/// controller. Mirrors `struct rate_sample` in `include/net/tcp.h`.
///
/// As in Linux, `delivered` is -1 and `interval_us` -1 when the ACK gave
/// no valid sample; [`RateSample::is_valid`] says whether both are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateSample {
    /// `delivered_mstamp` when the newest delivered segment was sent, µs
    /// on a wrapping 32-bit clock; 0 for none (`prior_mstamp`).
    pub prior_mstamp: u32,
    /// `tp->delivered` when that segment was sent (`prior_delivered`).
    pub prior_delivered: u32,
    /// Segments delivered over the interval, -1 if unknown (`delivered`).
    pub delivered: i32,
    /// The sample's interval, µs, -1 if unknown (`interval_us`).
    pub interval_us: i64,
    /// The send phase, µs (`snd_interval_us`).
    pub snd_interval_us: u32,
    /// The ACK phase, µs (`rcv_interval_us`).
    pub rcv_interval_us: u32,
    /// The RTT sample of this ACK, µs, -1 if none (`rtt_us`).
    pub rtt_us: i64,
    /// Segments newly marked lost by this ACK (`losses`).
    pub losses: u32,
    /// Segments newly ACKed or SACKed by this ACK (`acked_sacked`).
    pub acked_sacked: u32,
    /// Segments in flight before this ACK (`prior_in_flight`).
    pub prior_in_flight: u32,
    /// `end_seq` of the newest delivered segment (`last_end_seq`).
    pub last_end_seq: u32,
    /// The sample was taken while application-limited (`is_app_limited`).
    pub is_app_limited: bool,
    /// The newest delivered segment was a retransmission (`is_retrans`).
    pub is_retrans: bool,
    /// The ACK was likely delayed (`is_ack_delayed`).
    pub is_ack_delayed: bool,
}

impl Default for RateSample {
    /// An empty sample, as `tcp_ack()` starts one (`{ .prior_delivered = 0 }`).
    fn default() -> Self {
        RateSample {
            prior_mstamp: 0,
            prior_delivered: 0,
            delivered: 0,
            interval_us: 0,
            snd_interval_us: 0,
            rcv_interval_us: 0,
            rtt_us: -1,
            losses: 0,
            acked_sacked: 0,
            prior_in_flight: 0,
            last_end_seq: 0,
            is_app_limited: false,
            is_retrans: false,
            is_ack_delayed: false,
        }
    }
}

impl RateSample {
    /// Whether the sample has a delivered count and an interval.
    pub fn is_valid(&self) -> bool {
        self.delivered >= 0 && self.interval_us > 0
    }

    /// The sampled delivery rate in bytes per second for segments of
    /// `mss` bytes, or `None` for an invalid sample.
    pub fn delivery_rate(&self, mss: u32) -> Option<u64> {
        if !self.is_valid() {
            return None;
        }
        let bytes = u64::from(self.delivered.unsigned_abs()) * u64::from(mss);
        Some(bytes * 1_000_000 / self.interval_us.unsigned_abs())
    }
}

/// `t1` (with `seq1`) was sent after `t2` (with `seq2`); equal times
/// are ordered by sequence. Mirrors `tcp_skb_sent_after()`.
fn tcp_skb_sent_after(t1: u32, t2: u32, seq1: u32, seq2: u32) -> bool {
    after(t1, t2) || (t1 == t2 && after(seq1, seq2))
}

/// `now_us` on the sampler's wrapping 32-bit clock, never 0 ("none").
fn stamp(now_us: u64) -> u32 {
    (now_us as u32).max(1)
}

/// Stamps write-queue entry `idx`, being sent at `now_us`, with the
/// connection's delivery state; an empty pipe starts a new sampling
/// window at this send. Call before `packets_out` counts the segment.
/// Mirrors `tcp_rate_skb_sent()`.
pub(crate) fn tcp_rate_skb_sent(tp: &mut TcpSock, idx: usize, now_us: u64) {
    let now_us = stamp(now_us);
    if tp.packets_out == 0 {
        tp.rate.first_tx_mstamp = now_us;
        tp.rate.delivered_mstamp = now_us;
    }
    let tx = TcpSkbTx {
        first_tx_mstamp: tp.rate.first_tx_mstamp,
        delivered_mstamp: tp.rate.delivered_mstamp,
        delivered: tp.delivered,
        is_app_limited: tp.rate.app_limited != 0,
    };
    if let Some(s) = tp.write_queue.get_mut(idx) {
        s.tx = tx;
    }
}

/// Takes the rate information of a segment just delivered (cumulatively
/// ACKed or SACKed) into `rs`: the newest-sent segment of the ACK
/// defines the sample, and moves the start of the next sampling window
/// to its send time. A SACKed segment gives its information once.
/// Mirrors `tcp_rate_skb_delivered()`.
pub(crate) fn tcp_rate_skb_delivered(
    rate: &mut TcpRateState,
    skb: &mut TxSkb,
    rs: &mut RateSample,
) {
    if skb.tx.delivered_mstamp == 0 {
        return;
    }
    let tx_tstamp = stamp(skb.sent_at.map_or(0, netcore::Instant::as_micros));
    if rs.prior_delivered == 0
        || tcp_skb_sent_after(
            tx_tstamp,
            rate.first_tx_mstamp,
            skb.end_seq,
            rs.last_end_seq,
        )
    {
        rs.prior_delivered = skb.tx.delivered;
        rs.prior_mstamp = skb.tx.delivered_mstamp;
        rs.is_app_limited = skb.tx.is_app_limited;
        rs.is_retrans = skb.sacked
            & (crate::tcp_sock::TCPCB_SACKED_RETRANS | crate::tcp_sock::TCPCB_EVER_RETRANS)
            != 0;
        rs.last_end_seq = skb.end_seq;
        rate.first_tx_mstamp = tx_tstamp;
        rs.interval_us = i64::from(tx_tstamp.wrapping_sub(skb.tx.first_tx_mstamp) as i32);
    }
    if skb.sacked & crate::tcp_sock::TCPCB_SACKED_ACKED != 0 {
        skb.tx.delivered_mstamp = 0;
    }
}

/// Completes the ACK's sample: `delivered` segments newly ACKed or
/// SACKed, `lost` newly marked lost. The interval is the longer of the
/// send and ACK phases; a sample shorter than the minimum RTT, without
/// timing, or during SACK reneging is invalid. The last valid sample
/// that is not application-limited (or beats the kept one) is kept for
/// `TCP_INFO`. Mirrors `tcp_rate_gen()`.
pub(crate) fn tcp_rate_gen(
    tp: &mut TcpSock,
    delivered: u32,
    lost: u32,
    is_sack_reneg: bool,
    now_us: u64,
    rs: &mut RateSample,
) {
    let r = &mut tp.rate;
    // The application-limited bubble is gone once it is delivered.
    if r.app_limited != 0 && after(tp.delivered, r.app_limited) {
        r.app_limited = 0;
    }
    if delivered > 0 {
        r.delivered_mstamp = stamp(now_us);
    }
    rs.acked_sacked = delivered;
    rs.losses = lost;
    if rs.prior_mstamp == 0 || is_sack_reneg {
        rs.delivered = -1;
        rs.interval_us = -1;
        return;
    }
    rs.delivered = tp.delivered.wrapping_sub(rs.prior_delivered) as i32;
    let snd_us = rs.interval_us;
    let ack_us = i64::from(stamp(now_us).wrapping_sub(rs.prior_mstamp) as i32);
    rs.interval_us = snd_us.max(ack_us);
    rs.snd_interval_us = snd_us.max(0) as u32;
    rs.rcv_interval_us = ack_us.max(0) as u32;
    // An interval below the minimum RTT cannot be right (ACK compression
    // or a spurious retransmission): no sample.
    if rs.interval_us < i64::from(tp.min_rtt_us) {
        rs.interval_us = -1;
        return;
    }
    let interval = rs.interval_us.min(i64::from(u32::MAX)) as u32;
    let delivered_now = rs.delivered.max(0) as u32;
    if !rs.is_app_limited
        || u64::from(delivered_now) * u64::from(r.rate_interval_us)
            >= u64::from(r.rate_delivered) * u64::from(interval)
    {
        r.rate_delivered = delivered_now;
        r.rate_interval_us = interval;
        r.rate_app_limited = rs.is_app_limited;
    }
}

/// Marks the connection application-limited when the sender has less
/// than a segment to send, cwnd is not the limit, and every lost segment
/// was retransmitted: samples until that flight is delivered do not show
/// the path's capacity. Mirrors `tcp_rate_check_app_limited()` (see the
/// module's deviations).
pub(crate) fn tcp_rate_check_app_limited(tp: &mut TcpSock) {
    let in_flight = tp.packets_in_flight();
    if tp.write_seq.wrapping_sub(tp.snd_nxt) < u32::from(tp.mss_cache)
        && in_flight < tp.cwnd.snd_cwnd
        && tp.lost_out <= tp.retrans_out
    {
        tp.rate.app_limited = tp.delivered.wrapping_add(in_flight).max(1);
    }
}

/// The delivery rate `TCP_INFO` reports, bytes per second: the kept
/// sample times the MSS. Mirrors `tcp_compute_delivery_rate()`.
pub(crate) fn tcp_compute_delivery_rate(tp: &TcpSock) -> u64 {
    let r = &tp.rate;
    if r.rate_delivered == 0 || r.rate_interval_us == 0 {
        return 0;
    }
    u64::from(r.rate_delivered) * u64::from(tp.mss_cache) * 1_000_000
        / u64::from(r.rate_interval_us)
}

/// Feeds an RTT sample (µs) into the windowed minimum of
/// `tcp_min_rtt_wlen` seconds (`wlen_s`), skipping a sample that is
/// probably a delayed ACK and above the minimum; updates
/// `tp.min_rtt_us`. Mirrors `tcp_update_rtt_min()`.
pub(crate) fn tcp_update_rtt_min(
    tp: &mut TcpSock,
    wlen_s: u32,
    now_ms: u32,
    rtt_us: u32,
    ack_maybe_delayed: bool,
) {
    if ack_maybe_delayed && rtt_us > tp.min_rtt_us {
        return;
    }
    let wlen_ms = wlen_s.saturating_mul(1000);
    // A zero sample counts as one jiffy (1 ms at HZ=1000) as in Linux.
    let rtt_us = if rtt_us == 0 { 1000 } else { rtt_us };
    tp.min_rtt_us = tp.rate.rtt_min.running_min(wlen_ms, now_ms, rtt_us);
}
