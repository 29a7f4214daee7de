//! `TCP_INFO` and the `ss -tan`-style listing of a host's sockets.
//!
//! Mirrors `tcp_get_info()` (`net/ipv4/tcp.c`, `struct tcp_info` of
//! `include/uapi/linux/tcp.h`) and what `inet_diag`/`ss` print
//! (`net/ipv4/inet_diag.c`, iproute2's `ss -tanpi`).

use core::fmt::Write as _;
use core::net::SocketAddrV4;

use netcore::Instant;

use crate::tcp::TcpStack;
use crate::tcp_sock::{TcpSock, TcpState};

/// The fields of `struct tcp_info` that apply here.
///
/// Mirrors `struct tcp_info` in `include/uapi/linux/tcp.h`; times are in
/// microseconds (`tcpi_rto`, `tcpi_rtt`) or milliseconds (`tcpi_last_*`)
/// as there.
#[doc(alias = "tcp_info")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// `tcpi_state` (the `TCP_*` number).
    pub state: u8,
    /// `tcpi_ca_state`.
    pub ca_state: u8,
    /// `tcpi_retransmits`.
    pub retransmits: u8,
    /// `tcpi_probes`.
    pub probes: u8,
    /// `tcpi_backoff`.
    pub backoff: u8,
    /// `tcpi_options`: `TCPI_OPT_TIMESTAMPS` 1, `SACK` 2, `WSCALE` 4,
    /// `ECN` 8 (negotiated), `ECN_SEEN` 16 (an ECT or CE segment came).
    pub options: u8,
    /// `tcpi_snd_wscale`.
    pub snd_wscale: u8,
    /// `tcpi_rcv_wscale`.
    pub rcv_wscale: u8,
    /// `tcpi_rto` (µs).
    pub rto: u32,
    /// `tcpi_ato` (µs).
    pub ato: u32,
    /// `tcpi_snd_mss`.
    pub snd_mss: u32,
    /// `tcpi_rcv_mss`.
    pub rcv_mss: u32,
    /// `tcpi_unacked` (segments in flight).
    pub unacked: u32,
    /// `tcpi_sacked`.
    pub sacked: u32,
    /// `tcpi_lost`.
    pub lost: u32,
    /// `tcpi_retrans`.
    pub retrans: u32,
    /// `tcpi_last_data_sent` (ms ago).
    pub last_data_sent: u32,
    /// `tcpi_last_data_recv` (ms ago).
    pub last_data_recv: u32,
    /// `tcpi_last_ack_recv` (ms ago).
    pub last_ack_recv: u32,
    /// `tcpi_pmtu`.
    pub pmtu: u32,
    /// `tcpi_rcv_ssthresh`.
    pub rcv_ssthresh: u32,
    /// `tcpi_rtt` (µs, smoothed).
    pub rtt: u32,
    /// `tcpi_rttvar` (µs).
    pub rttvar: u32,
    /// `tcpi_snd_ssthresh`.
    pub snd_ssthresh: u32,
    /// `tcpi_snd_cwnd`.
    pub snd_cwnd: u32,
    /// `tcpi_advmss`.
    pub advmss: u32,
    /// `tcpi_reordering`.
    pub reordering: u32,
    /// `tcpi_rcv_space` (the offered window).
    pub rcv_space: u32,
    /// `tcpi_total_retrans`.
    pub total_retrans: u32,
    /// `tcpi_bytes_acked`.
    pub bytes_acked: u64,
    /// `tcpi_bytes_received`.
    pub bytes_received: u64,
    /// `tcpi_segs_out`.
    pub segs_out: u32,
    /// `tcpi_segs_in`.
    pub segs_in: u32,
    /// `tcpi_notsent_bytes`.
    pub notsent_bytes: u32,
    /// `tcpi_min_rtt` (µs): the minimum over `tcp_min_rtt_wlen`.
    pub min_rtt: u32,
    /// `tcpi_delivery_rate` (bytes per second): the last delivery-rate
    /// sample kept (`tcp_compute_delivery_rate()`).
    pub delivery_rate: u64,
    /// `tcpi_delivery_rate_app_limited`: that sample was taken while the
    /// application did not keep the pipe full.
    pub delivery_rate_app_limited: bool,
    /// `tcpi_data_segs_in`.
    pub data_segs_in: u32,
    /// `tcpi_data_segs_out`.
    pub data_segs_out: u32,
    /// `tcpi_delivered`.
    pub delivered: u32,
    /// `tcpi_delivered_ce`: segments delivered by ACKs echoing ECN
    /// congestion.
    pub delivered_ce: u32,
    /// `tcpi_busy_time` (µs with data queued or in flight, the limited
    /// times included).
    pub busy_time: u64,
    /// `tcpi_rwnd_limited` (µs the sender was limited by the peer's window).
    pub rwnd_limited: u64,
    /// `tcpi_sndbuf_limited` (µs limited by the send buffer).
    pub sndbuf_limited: u64,
    /// `tcpi_bytes_sent`.
    pub bytes_sent: u64,
    /// `tcpi_bytes_retrans`.
    pub bytes_retrans: u64,
    /// `tcpi_snd_wnd`.
    pub snd_wnd: u32,
    /// `tcpi_rcv_wnd`.
    pub rcv_wnd: u32,
    /// `tcpi_pacing_rate` (bytes per second; `u64::MAX` while unknown).
    pub pacing_rate: u64,
    /// `tcpi_max_pacing_rate` (`SO_MAX_PACING_RATE`; `u64::MAX`: none).
    pub max_pacing_rate: u64,
}

fn ms_since(now: Instant, t: Instant) -> u32 {
    now.saturating_duration_since(t).as_millis() as u32
}

/// Fills a [`TcpInfo`]. Mirrors `tcp_get_info()`.
pub(crate) fn tcp_get_info(now: Instant, tp: &TcpSock) -> TcpInfo {
    let mut options = 0;
    if tp.rx_opt.tstamp_ok {
        options |= 1;
    }
    if tp.rx_opt.sack_ok {
        options |= 2;
    }
    if tp.rx_opt.wscale_ok {
        options |= 4;
    }
    if tp.ecn_flags & crate::tcp_ecn::TCP_ECN_OK != 0 {
        options |= 8;
    }
    if tp.ecn_flags & crate::tcp_ecn::TCP_ECN_SEEN != 0 {
        options |= 16;
    }
    let (busy_time, rwnd_limited, sndbuf_limited) =
        crate::tcp_output::tcp_get_info_chrono_stats(tp, now);
    let listen = tp.state == TcpState::Listen;
    let (acc, backlog) = crate::inet_connection_sock::listen_queue_lens(tp);
    TcpInfo {
        state: tp.state as u8,
        ca_state: tp.ca_state as u8,
        retransmits: tp.retransmits,
        probes: tp.probes_out,
        backoff: tp.backoff,
        options,
        snd_wscale: tp.rx_opt.snd_wscale,
        rcv_wscale: tp.rx_opt.rcv_wscale,
        rto: tp.rto().as_micros() as u32,
        ato: tp.ack.ato().as_micros() as u32,
        snd_mss: u32::from(tp.mss_cache),
        rcv_mss: u32::from(tp.ack.rcv_mss),
        // For a listener Linux reports the accept queue here.
        unacked: if listen { acc } else { tp.packets_out },
        sacked: if listen { backlog } else { tp.sacked_out },
        lost: tp.lost_out,
        retrans: tp.retrans_out,
        last_data_sent: ms_since(now, tp.lsndtime),
        last_data_recv: ms_since(now, tp.last_data_recv.max(tp.ack.lrcvtime)),
        last_ack_recv: ms_since(now, tp.last_ack_recv),
        pmtu: tp.pmtu,
        rcv_ssthresh: tp.rcv_ssthresh,
        rtt: tp.srtt_us >> 3,
        rttvar: tp.mdev_us >> 2,
        snd_ssthresh: tp.cwnd.snd_ssthresh,
        snd_cwnd: tp.cwnd.snd_cwnd,
        advmss: u32::from(tp.advmss),
        reordering: tp.reordering,
        rcv_space: tp.rcv_wnd,
        total_retrans: tp.total_retrans,
        bytes_acked: tp.bytes_acked,
        bytes_received: tp.bytes_received,
        segs_out: tp.segs_out,
        segs_in: tp.segs_in,
        notsent_bytes: tp.unsent_bytes(),
        min_rtt: if tp.min_rtt_us == u32::MAX {
            0
        } else {
            tp.min_rtt_us
        },
        delivery_rate: crate::tcp_rate::tcp_compute_delivery_rate(tp),
        delivery_rate_app_limited: tp.rate.rate_app_limited,
        data_segs_in: tp.data_segs_in,
        data_segs_out: tp.data_segs_out,
        delivered: tp.delivered,
        delivered_ce: tp.recovery.delivered_ce,
        busy_time,
        rwnd_limited,
        sndbuf_limited,
        bytes_sent: tp.bytes_sent,
        bytes_retrans: tp.bytes_retrans,
        snd_wnd: tp.snd_wnd,
        rcv_wnd: tp.rcv_wnd,
        pacing_rate: crate::tcp_pacing::tcpi_pacing_rate(tp),
        max_pacing_rate: tp
            .pacing
            .as_ref()
            .map_or(u64::MAX, |p| p.sk_max_pacing_rate),
    }
}

/// One line of the socket listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsEntry {
    /// The state as `ss` names it.
    pub state: &'static str,
    /// `Recv-Q`: unread bytes (accept queue length for a listener).
    pub recv_q: u32,
    /// `Send-Q`: unacknowledged plus unsent bytes (backlog for a listener).
    pub send_q: u32,
    /// Local address.
    pub local: SocketAddrV4,
    /// Peer address.
    pub peer: SocketAddrV4,
    /// The `-i` details (`cubic wscale:7,7 rto:204 rtt:...`), empty for
    /// TIME-WAIT.
    pub info: String,
}

impl TcpStack {
    /// Lists the host's TCP sockets as `ss -tani` does: full sockets then
    /// TIME-WAIT ones. Mirrors the `inet_diag` dump of `tcp_hashinfo`.
    pub fn ss(&self, now: Instant) -> Vec<SsEntry> {
        let mut out = Vec::new();
        for sk in self.all_sockets() {
            let tp = sk.lock();
            if tp.destroyed {
                continue;
            }
            let (recv_q, send_q) = if tp.state == TcpState::Listen {
                crate::inet_connection_sock::listen_queue_lens(&tp)
            } else {
                (tp.rcv_queued_bytes(), tp.write_seq.wrapping_sub(tp.snd_una))
            };
            let i = tcp_get_info(now, &tp);
            let mut info = String::new();
            let _ = write!(info, "{}", tp.ca_ops.name());
            if tp.rx_opt.wscale_ok {
                let _ = write!(info, " wscale:{},{}", i.snd_wscale, i.rcv_wscale);
            }
            let _ = write!(
                info,
                " rto:{} rtt:{:.3}/{:.3} mss:{} cwnd:{} bytes_acked:{} bytes_received:{} segs_out:{} segs_in:{}",
                i.rto / 1000,
                f64::from(i.rtt) / 1000.0,
                f64::from(i.rttvar) / 1000.0,
                i.snd_mss,
                i.snd_cwnd,
                i.bytes_acked,
                i.bytes_received,
                i.segs_out,
                i.segs_in
            );
            out.push(SsEntry {
                state: tp.state.ss_name(),
                recv_q,
                send_q,
                local: tp.local(),
                peer: tp.remote(),
                info,
            });
        }
        let mut tws: Vec<_> = self.tw.lock().values().cloned().collect();
        tws.sort_by_key(|t| t.id);
        for tw in tws {
            let (la, lp, ra, rp) = crate::tcp_minisocks::tw_addrs(&tw);
            out.push(SsEntry {
                state: if tw.substate == TcpState::TimeWait {
                    "TIME-WAIT"
                } else {
                    "FIN-WAIT-2"
                },
                recv_q: 0,
                send_q: 0,
                local: SocketAddrV4::new(la, lp),
                peer: SocketAddrV4::new(ra, rp),
                info: String::new(),
            });
        }
        out
    }

    /// The listing as text, in the columns of `ss -tani`.
    pub fn ss_text(&self, now: Instant) -> String {
        let mut s =
            String::from("State      Recv-Q Send-Q Local Address:Port  Peer Address:Port\n");
        for e in self.ss(now) {
            let peer = if e.peer.port() == 0 {
                "*:*".to_string()
            } else {
                e.peer.to_string()
            };
            let _ = writeln!(
                s,
                "{:<10} {:<6} {:<6} {:<20} {}",
                e.state, e.recv_q, e.send_q, e.local, peer
            );
            if !e.info.is_empty() {
                let _ = writeln!(s, "\t {}", e.info);
            }
        }
        s
    }
}
