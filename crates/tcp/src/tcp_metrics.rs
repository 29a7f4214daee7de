//! What closed connections learned about a destination, for the next
//! connection to it.
//!
//! Mirrors `net/ipv4/tcp_metrics.c`: `struct tcp_metrics_block` (RTT,
//! RTT variance, ssthresh, cwnd, reordering, and when it was last
//! updated), `tcp_update_metrics()` when a connection ends (entering
//! TIME-WAIT, or LAST-ACK acknowledged), `tcp_init_metrics()` when one
//! starts, and `ip tcp_metrics show`. Saving is on unless
//! `net.ipv4.tcp_no_metrics_save`; ssthresh is saved only without
//! `net.ipv4.tcp_no_ssthresh_metrics_save` (set by default since Linux
//! 5.6).
//!
//! ```text
//!  close ──▶ tcp_update_metrics(): RTT up at once, down by 1/8 (EWMA);
//!            variance likewise; cwnd/ssthresh by congestion phase
//!  connect/accept ──▶ tcp_init_metrics(): a cached RTT above the
//!            handshake's seeds the first RTO (rtt + max(2·rtt, rto_min));
//!            no handshake sample and none cached: RTO 3 s (RFC 6298 5.7)
//! ```
//!
//! # Deviations from Linux
//!
//! - One table per host keyed by the peer's address (Linux keys by both
//!   addresses, in a hash sized by memory, `tcpmhash_entries`); at most
//!   [`TCP_METRICS_MAX`] destinations, the least recently updated making
//!   room.
//! - No locked metrics (`ip route ... rtt lock`) and no TCP Fast Open
//!   cookies (no Fast Open).

use core::net::Ipv4Addr;
use std::collections::HashMap;
use std::fmt::Write as _;

use netcore::{Duration, Instant, Sysctl};

use crate::context::TcpContext;
use crate::tcp_cong::{TCP_INFINITE_SSTHRESH, TcpCaState};
use crate::tcp_sock::TcpSock;

/// How long an entry is trusted (`TCP_METRICS_TIMEOUT`, one hour): an
/// older one is treated as empty.
pub const TCP_METRICS_TIMEOUT: Duration = Duration::from_secs(3600);
/// The most destinations kept.
pub const TCP_METRICS_MAX: usize = 16384;
/// The RTO used when neither the handshake nor the cache gave an RTT
/// (`TCP_TIMEOUT_FALLBACK`, RFC 6298 5.7).
pub const TCP_TIMEOUT_FALLBACK: Duration = Duration::from_secs(3);

/// The metrics of one destination. Mirrors `struct tcp_metrics_block`'s
/// `tcpm_vals[]` (RTT and variance in µs scaled by 8 and 4, as `srtt_us`
/// and `mdev_us`) with `tcpm_stamp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpMetricsBlock {
    /// `TCP_METRIC_RTT`: smoothed RTT, µs × 8.
    pub rtt: u32,
    /// `TCP_METRIC_RTTVAR`: RTT variation, µs × 4.
    pub rttvar: u32,
    /// `TCP_METRIC_SSTHRESH`.
    pub ssthresh: u32,
    /// `TCP_METRIC_CWND`.
    pub cwnd: u32,
    /// `TCP_METRIC_REORDERING`.
    pub reordering: u32,
    /// When last updated (`tcpm_stamp`).
    pub stamp: Instant,
}

/// A host's metrics cache (`tcp_metrics_hash`).
#[derive(Debug, Default)]
pub struct TcpMetrics {
    map: HashMap<Ipv4Addr, TcpMetricsBlock>,
}

impl TcpMetrics {
    /// The entry for `daddr` still trusted at `now`. Mirrors
    /// `tcp_get_metrics()` with `tcpm_check_stamp()`.
    pub fn get(&self, daddr: Ipv4Addr, now: Instant) -> Option<&TcpMetricsBlock> {
        self.map
            .get(&daddr)
            .filter(|m| now.saturating_duration_since(m.stamp) < TCP_METRICS_TIMEOUT)
    }

    /// How many destinations are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }

    /// The entry for `daddr`, created empty (an aged one emptied) if
    /// need be. Mirrors `tcp_get_metrics(..., create)` →
    /// `tcpm_new()`/`tcpm_suck_dst()`.
    fn get_or_create(&mut self, daddr: Ipv4Addr, now: Instant) -> &mut TcpMetricsBlock {
        if self.map.len() >= TCP_METRICS_MAX && !self.map.contains_key(&daddr) {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, m)| m.stamp)
                .map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                self.map.remove(&oldest);
            }
        }
        let m = self.map.entry(daddr).or_default();
        if now.saturating_duration_since(m.stamp) >= TCP_METRICS_TIMEOUT {
            *m = TcpMetricsBlock {
                stamp: now,
                ..TcpMetricsBlock::default()
            };
        }
        m
    }

    /// `ip tcp_metrics show`: one line per destination, as iproute2
    /// prints them (`age`, then the metrics that are set; RTTs in µs).
    pub fn show(&self, now: Instant, saddr: impl Fn(Ipv4Addr) -> Ipv4Addr) -> String {
        let mut rows: Vec<_> = self.map.iter().collect();
        rows.sort_by_key(|(a, _)| u32::from(**a));
        let mut out = String::new();
        for (daddr, m) in rows {
            let age = now.saturating_duration_since(m.stamp);
            let _ = write!(
                out,
                "{daddr} age {}.{:03}sec",
                age.as_secs(),
                age.subsec_millis()
            );
            if m.ssthresh != 0 {
                let _ = write!(out, " ssthresh {}", m.ssthresh);
            }
            if m.cwnd != 0 {
                let _ = write!(out, " cwnd {}", m.cwnd);
            }
            if m.rtt != 0 {
                let _ = write!(out, " rtt {}us rttvar {}us", m.rtt >> 3, m.rttvar >> 2);
            }
            if m.reordering != 0 {
                let _ = write!(out, " reordering {}", m.reordering);
            }
            let _ = writeln!(out, " source {}", saddr(*daddr));
        }
        out
    }
}

/// A connection ends: what it measured goes into the cache for its peer.
/// Mirrors `tcp_update_metrics()`: nothing with `tcp_no_metrics_save`;
/// a connection that never measured an RTT, or whose last timer backed
/// off, clears the cached RTT; otherwise the RTT is kept if larger, else
/// moved down by an eighth of the difference, and the variance likewise
/// (by a quarter); cwnd and ssthresh by the congestion phase
/// (ssthresh only without `tcp_no_ssthresh_metrics_save`); a reordering
/// degree learned above the sysctl's.
pub(crate) fn tcp_update_metrics<C: TcpContext>(
    metrics: &parking_lot::Mutex<TcpMetrics>,
    ctx: &C,
    tp: &TcpSock,
) {
    let sysctl = ctx.sysctl();
    if sysctl.get_int(Sysctl::TCP_NO_METRICS_SAVE) != 0 || tp.daddr.is_unspecified() {
        return;
    }
    let now = ctx.now();
    let mut table = metrics.lock();
    if tp.backoff > 0 || tp.srtt_us == 0 {
        if let Some(m) = table.map.get_mut(&tp.daddr) {
            m.rtt = 0;
        }
        return;
    }
    let save_ssthresh = sysctl.get_int(Sysctl::TCP_NO_SSTHRESH_METRICS_SAVE) == 0;
    let default_reordering = sysctl.get_int(Sysctl::TCP_REORDERING).max(1) as u32;
    let m = table.get_or_create(tp.daddr, now);
    let d = i64::from(m.rtt) - i64::from(tp.srtt_us);
    m.rtt = if d <= 0 {
        tp.srtt_us
    } else {
        (i64::from(m.rtt) - (d >> 3)) as u32
    };
    let dev = ((d.unsigned_abs() >> 1) as u32).max(tp.mdev_us);
    m.rttvar = if dev >= m.rttvar {
        dev
    } else {
        m.rttvar - ((m.rttvar - dev) >> 2)
    };
    let cwnd = tp.cwnd.snd_cwnd;
    let ssthresh = tp.cwnd.snd_ssthresh;
    let in_slow_start = cwnd < ssthresh;
    if ssthresh >= TCP_INFINITE_SSTHRESH {
        // tcp_in_initial_slowstart(): slow start never ended.
        if save_ssthresh && m.ssthresh != 0 && (cwnd >> 1) > m.ssthresh {
            m.ssthresh = cwnd >> 1;
        }
        if cwnd > m.cwnd {
            m.cwnd = cwnd;
        }
    } else if !in_slow_start && tp.ca_state == TcpCaState::Open {
        // Congestion avoidance: cwnd is meaningful.
        if save_ssthresh {
            m.ssthresh = (cwnd >> 1).max(ssthresh);
        }
        m.cwnd = (m.cwnd + cwnd) >> 1;
    } else {
        m.cwnd = (m.cwnd + ssthresh) >> 1;
        if save_ssthresh && m.ssthresh != 0 && ssthresh > m.ssthresh {
            m.ssthresh = ssthresh;
        }
        if m.reordering < tp.reordering && tp.reordering != default_reordering {
            m.reordering = tp.reordering;
        }
    }
    m.stamp = now;
}

/// A connection starts: ssthresh back to infinity (or the cached one,
/// when saved), the cached reordering degree, and the first RTO from a
/// cached RTT larger than the handshake's (`rtt + max(2·rtt, rto_min)`,
/// the estimator itself left alone); with no RTT from the handshake and
/// none cached, RTO and variance 3 s. Mirrors `tcp_init_metrics()`.
pub(crate) fn tcp_init_metrics<C: TcpContext>(
    metrics: &parking_lot::Mutex<TcpMetrics>,
    ctx: &C,
    tp: &mut TcpSock,
) {
    tp.cwnd.snd_ssthresh = TCP_INFINITE_SSTHRESH;
    let sysctl = ctx.sysctl();
    let now = ctx.now();
    let mut crtt = 0;
    if let Some(m) = metrics.lock().get(tp.daddr, now) {
        if sysctl.get_int(Sysctl::TCP_NO_SSTHRESH_METRICS_SAVE) == 0 && m.ssthresh != 0 {
            tp.cwnd.snd_ssthresh = m.ssthresh;
        }
        if m.reordering != 0 {
            tp.reordering = m.reordering;
        }
        crtt = m.rtt;
    }
    if crtt > tp.srtt_us {
        let rtt = Duration::from_micros(u64::from(crtt >> 3));
        let rto_min = Duration::from_micros(sysctl.get_int(Sysctl::TCP_RTO_MIN_US).max(1) as u64);
        let rto = rtt + (rtt * 2).max(rto_min);
        tp.set_rto(rto);
    } else if tp.srtt_us == 0 {
        let us = TCP_TIMEOUT_FALLBACK.as_micros() as u32;
        tp.rttvar_us = us;
        tp.mdev_us = us;
        tp.mdev_max_us = us;
        tp.set_rto(TCP_TIMEOUT_FALLBACK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aged_entries_are_empty_and_a_full_table_drops_the_oldest() {
        let mut t = TcpMetrics::default();
        let a = Ipv4Addr::new(198, 18, 0, 2);
        let now = Instant::from_secs(10);
        t.get_or_create(a, now).rtt = 800;
        assert_eq!(t.get(a, now).map(|m| m.rtt), Some(800));
        let later = now + TCP_METRICS_TIMEOUT;
        assert!(t.get(a, later).is_none(), "an hour old");
        assert_eq!(t.get_or_create(a, later).rtt, 0, "emptied");
        for i in 0..TCP_METRICS_MAX as u32 {
            t.get_or_create(
                Ipv4Addr::from(0xc613_0000 + i),
                later + Duration::from_secs(u64::from(i) + 1),
            );
        }
        assert_eq!(t.len(), TCP_METRICS_MAX);
        assert!(
            t.get(a, later + Duration::from_secs(5)).is_none(),
            "the oldest went"
        );
    }
}
