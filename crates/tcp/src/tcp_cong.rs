//! Pluggable congestion control and the Reno default.
//!
//! Mirrors `net/ipv4/tcp_cong.c` (`struct tcp_congestion_ops`,
//! `tcp_register_congestion_control()`, `tcp_slow_start()`,
//! `tcp_cong_avoid_ai()`, `tcp_reno_*`) and the `TCP_CA_*` states of
//! `include/net/tcp.h`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::tcp_cubic::Cubic;

/// The congestion-avoidance state machine (`icsk_ca_state`).
///
/// Mirrors `enum tcp_ca_state` in `include/net/tcp.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TcpCaState {
    /// Nothing bad has been observed. `TCP_CA_Open`.
    Open = 0,
    /// Dupacks or SACKs seen. `TCP_CA_Disorder`.
    Disorder = 1,
    /// cwnd reduced (ECN, local congestion). `TCP_CA_CWR`.
    Cwr = 2,
    /// Fast retransmit / recovery. `TCP_CA_Recovery`.
    Recovery = 3,
    /// After an RTO. `TCP_CA_Loss`.
    Loss = 4,
}

/// Events a congestion controller hears about. Mirrors `enum tcp_ca_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaEvent {
    /// First transmit when no packets are in flight (`CA_EVENT_TX_START`).
    TxStart,
    /// cwnd restarted after idle (`CA_EVENT_CWND_RESTART`).
    CwndRestart,
    /// End of congestion recovery (`CA_EVENT_COMPLETE_CWR`).
    CompleteCwr,
    /// Loss timeout (`CA_EVENT_LOSS`).
    Loss,
}

/// The congestion window and what a controller may read or change.
///
/// Mirrors the fields of `struct tcp_sock` that `tcp_congestion_ops`
/// implementations touch: `snd_cwnd`, `snd_ssthresh`, `snd_cwnd_cnt`,
/// `snd_cwnd_clamp`, `is_cwnd_limited`, plus the RTT they may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpCwnd {
    /// Congestion window in segments (`snd_cwnd`).
    pub snd_cwnd: u32,
    /// Slow-start threshold (`snd_ssthresh`); `TCP_INFINITE_SSTHRESH` at start.
    pub snd_ssthresh: u32,
    /// Linear-increase counter (`snd_cwnd_cnt`).
    pub snd_cwnd_cnt: u32,
    /// Upper bound of `snd_cwnd` (`snd_cwnd_clamp`).
    pub snd_cwnd_clamp: u32,
    /// Whether the current window's flight was limited by cwnd
    /// (`is_cwnd_limited`); read it through [`TcpCwnd::tcp_is_cwnd_limited`].
    pub is_cwnd_limited: bool,
    /// The most segments out in the current window while not cwnd-limited
    /// (`max_packets_out`).
    pub max_packets_out: u32,
    /// `snd_nxt` when the window's usage was last sampled; a new window
    /// starts when `snd_una` reaches it (`cwnd_usage_seq`).
    pub cwnd_usage_seq: u32,
    /// Smoothed RTT in µs, scaled by 8 (`srtt_us`), for controllers that use it.
    pub srtt_us: u32,
    /// The socket's clock in µs when the controller is called
    /// (`tp->tcp_mstamp`).
    pub tcp_mstamp: u64,
    /// When data was last sent, µs on the same clock (`tp->lsndtime`).
    pub lsndtime: u64,
    /// First unacknowledged sequence number (`snd_una`).
    pub snd_una: u32,
    /// Next sequence number to send (`snd_nxt`).
    pub snd_nxt: u32,
}

/// `TCP_INFINITE_SSTHRESH`.
pub const TCP_INFINITE_SSTHRESH: u32 = 0x7fff_ffff;

impl TcpCwnd {
    /// The window of a new socket: `TCP_INIT_CWND`, infinite ssthresh.
    pub fn new() -> TcpCwnd {
        TcpCwnd {
            snd_cwnd: crate::tcp_sock::TCP_INIT_CWND,
            snd_ssthresh: TCP_INFINITE_SSTHRESH,
            snd_cwnd_cnt: 0,
            snd_cwnd_clamp: !0,
            is_cwnd_limited: false,
            max_packets_out: 0,
            cwnd_usage_seq: 0,
            srtt_us: 0,
            tcp_mstamp: 0,
            lsndtime: 0,
            snd_una: 0,
            snd_nxt: 0,
        }
    }

    /// Whether cwnd is below ssthresh. Mirrors `tcp_in_slow_start()`.
    pub fn in_slow_start(&self) -> bool {
        self.snd_cwnd < self.snd_ssthresh
    }

    /// Whether the sender is using the window it has, so cwnd may grow:
    /// the window's flight was cwnd-limited, or in slow start cwnd is still
    /// below twice the most segments that were out. Mirrors
    /// `tcp_is_cwnd_limited()` in `include/net/tcp.h`.
    pub fn tcp_is_cwnd_limited(&self) -> bool {
        if self.is_cwnd_limited {
            return true;
        }
        self.in_slow_start() && self.snd_cwnd < 2 * self.max_packets_out
    }

    /// Grows cwnd by one per ACKed segment up to ssthresh; returns the
    /// segments left over. Mirrors `tcp_slow_start()`.
    pub fn slow_start(&mut self, acked: u32) -> u32 {
        let cwnd = self.snd_cwnd.saturating_add(acked).min(self.snd_ssthresh);
        let left = acked - (cwnd - self.snd_cwnd).min(acked);
        self.snd_cwnd = cwnd.min(self.snd_cwnd_clamp);
        left
    }

    /// Additive increase: one segment per `w` ACKed segments. Mirrors
    /// `tcp_cong_avoid_ai()`.
    pub fn cong_avoid_ai(&mut self, w: u32, acked: u32) {
        let w = w.max(1);
        if self.snd_cwnd_cnt >= w {
            self.snd_cwnd_cnt = 0;
            self.snd_cwnd += 1;
        }
        self.snd_cwnd_cnt += acked;
        if self.snd_cwnd_cnt >= w {
            let delta = self.snd_cwnd_cnt / w;
            self.snd_cwnd_cnt -= delta * w;
            self.snd_cwnd += delta;
        }
        self.snd_cwnd = self.snd_cwnd.min(self.snd_cwnd_clamp);
    }
}

impl Default for TcpCwnd {
    fn default() -> Self {
        TcpCwnd::new()
    }
}

/// One congestion-control algorithm, per socket.
///
/// Mirrors `struct tcp_congestion_ops` in `include/net/tcp.h`: the ops table
/// becomes a trait and each socket owns one instance (its
/// `icsk_ca_priv` state lives in `self`). Registered by name with
/// [`CongestionRegistry::register`] (`tcp_register_congestion_control()`).
pub trait CongestionOps: Send + fmt::Debug {
    /// The algorithm's name (`.name`), as `tcp_congestion_control` spells it.
    fn name(&self) -> &'static str;

    /// Called when the connection is set up (`.init`).
    fn init(&mut self, _tp: &mut TcpCwnd) {}

    /// The slow-start threshold after a loss (`.ssthresh`).
    fn ssthresh(&mut self, tp: &TcpCwnd) -> u32;

    /// Grows cwnd on an ACK of `acked` segments, `ack` being the new
    /// `snd_una` (`.cong_avoid`).
    fn cong_avoid(&mut self, tp: &mut TcpCwnd, ack: u32, acked: u32);

    /// The CA state is about to change (`.set_state`).
    fn set_state(&mut self, _tp: &mut TcpCwnd, _new_state: TcpCaState) {}

    /// A congestion event (`.cwnd_event`).
    fn cwnd_event(&mut self, _tp: &mut TcpCwnd, _ev: CaEvent) {}

    /// `acked` segments were acknowledged with an RTT sample of `rtt_us`
    /// (negative when none) (`.pkts_acked`).
    fn pkts_acked(&mut self, _tp: &mut TcpCwnd, _acked: u32, _rtt_us: i64) {}

    /// Takes over the window for one ACK (`.cong_control`): the
    /// controller sees the ACK's delivery-rate sample and sets cwnd (and
    /// ssthresh) itself, as BBR does. Return `true` when it did; the
    /// default returns `false`, which means the operation is absent and
    /// TCP runs PRR in CWR/Recovery or [`CongestionOps::cong_avoid`].
    ///
    /// # Deviations from Linux
    ///
    /// The ACK's internal `FLAG_*` bits are not passed; what a controller
    /// needs of them is in the sample (`acked_sacked`, `losses`,
    /// `is_ack_delayed`).
    fn cong_control(&mut self, _tp: &mut TcpCwnd, _ack: u32, _rs: &crate::RateSample) -> bool {
        false
    }

    /// The cwnd to restore when a loss proves spurious (`.undo_cwnd`).
    fn undo_cwnd(&mut self, tp: &TcpCwnd, prior_cwnd: u32) -> u32 {
        tp.snd_cwnd.max(prior_cwnd)
    }
}

/// TCP Reno: slow start, then one segment per RTT, halve on loss.
///
/// Mirrors `tcp_reno` in `net/ipv4/tcp_cong.c` (`tcp_reno_cong_avoid()`,
/// `tcp_reno_ssthresh()`, `tcp_reno_undo_cwnd()`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Reno;

impl CongestionOps for Reno {
    fn name(&self) -> &'static str {
        "reno"
    }

    fn ssthresh(&mut self, tp: &TcpCwnd) -> u32 {
        (tp.snd_cwnd >> 1).max(2)
    }

    fn cong_avoid(&mut self, tp: &mut TcpCwnd, _ack: u32, mut acked: u32) {
        if !tp.tcp_is_cwnd_limited() {
            return;
        }
        if tp.in_slow_start() {
            acked = tp.slow_start(acked);
            if acked == 0 {
                return;
            }
        }
        let w = tp.snd_cwnd;
        tp.cong_avoid_ai(w, acked);
    }
}

/// The ssthresh to keep across a restart: the current one in CWR or
/// Recovery, else at least ¾ of cwnd. Mirrors `tcp_current_ssthresh()`.
pub(crate) fn tcp_current_ssthresh(tp: &TcpCwnd, ca_state: TcpCaState) -> u32 {
    if matches!(ca_state, TcpCaState::Cwr | TcpCaState::Recovery) {
        tp.snd_ssthresh
    } else {
        tp.snd_ssthresh.max((tp.snd_cwnd >> 1) + (tp.snd_cwnd >> 2))
    }
}

/// Congestion window validation after idle (RFC 7661 as Linux does it):
/// when nothing is in flight and the last send was more than one RTO ago,
/// cwnd is halved per RTO of idle time, down to the initial window.
/// Mirrors `tcp_slow_start_after_idle_check()` + `tcp_cwnd_restart()`;
/// `enabled` is `net.ipv4.tcp_slow_start_after_idle`.
pub(crate) fn tcp_slow_start_after_idle_check(
    ca: &mut dyn CongestionOps,
    tp: &mut TcpCwnd,
    ca_state: TcpCaState,
    enabled: bool,
    packets_out: u32,
    idle_us: u64,
    rto_us: u64,
) {
    if !enabled || packets_out > 0 || rto_us == 0 || idle_us <= rto_us {
        return;
    }
    let restart_cwnd = crate::tcp_sock::TCP_INIT_CWND.min(tp.snd_cwnd);
    ca.cwnd_event(tp, CaEvent::CwndRestart);
    tp.snd_ssthresh = tcp_current_ssthresh(tp, ca_state);
    let mut cwnd = tp.snd_cwnd;
    let mut delta = idle_us;
    while delta > rto_us && cwnd > restart_cwnd {
        delta -= rto_us;
        cwnd >>= 1;
    }
    tp.snd_cwnd = cwnd.max(restart_cwnd);
    tp.snd_cwnd_cnt = 0;
}

/// Builds one per-socket instance of an algorithm.
pub type CongestionFactory = Arc<dyn Fn() -> Box<dyn CongestionOps> + Send + Sync>;

/// The algorithms a host knows, by name.
///
/// Mirrors `tcp_cong_list` with `tcp_register_congestion_control()` and
/// `tcp_ca_find()`. Reno is always there (`tcp_reno` is built in).
pub struct CongestionRegistry {
    algos: RwLock<BTreeMap<&'static str, CongestionFactory>>,
}

impl fmt::Debug for CongestionRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.algos.read().keys()).finish()
    }
}

impl Default for CongestionRegistry {
    fn default() -> Self {
        CongestionRegistry::new()
    }
}

impl CongestionRegistry {
    /// A registry holding the built-in Reno and CUBIC.
    pub fn new() -> CongestionRegistry {
        let r = CongestionRegistry {
            algos: RwLock::new(BTreeMap::new()),
        };
        let _ = r.register("reno", Arc::new(|| Box::new(Reno)));
        let _ = r.register("cubic", Arc::new(|| Box::new(Cubic::new())));
        r
    }

    /// Adds an algorithm. Mirrors `tcp_register_congestion_control()`;
    /// `EEXIST` if the name is taken.
    pub fn register(
        &self,
        name: &'static str,
        factory: CongestionFactory,
    ) -> Result<(), netcore::Errno> {
        let mut algos = self.algos.write();
        if algos.contains_key(name) {
            return Err(netcore::Errno::Exist);
        }
        algos.insert(name, factory);
        Ok(())
    }

    /// A new instance of `name`. Mirrors `tcp_ca_find()` + `.init`.
    pub fn find(&self, name: &str) -> Option<Box<dyn CongestionOps>> {
        self.algos.read().get(name).map(|f| f())
    }

    /// The registered algorithm `name` itself, to make instances from
    /// later without the lock and the lookup. Mirrors `tcp_ca_find()`
    /// returning the `struct tcp_congestion_ops` pointer a socket keeps in
    /// `icsk_ca_ops`. Algorithms are never unregistered here, so a factory
    /// once found stays the one registered under its name.
    pub fn factory(&self, name: &str) -> Option<CongestionFactory> {
        self.algos.read().get(name).cloned()
    }

    /// The default for a new socket: `tcp_congestion_control` if
    /// registered, else Reno (`tcp_assign_congestion_control()`).
    pub fn default_for(&self, sysctl_name: &str) -> Box<dyn CongestionOps> {
        self.find(sysctl_name).unwrap_or_else(|| Box::new(Reno))
    }

    /// Names of the registered algorithms (`tcp_available_congestion_control`).
    pub fn available(&self) -> Vec<&'static str> {
        self.algos.read().keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reno_slow_start_then_linear() {
        let mut r = Reno;
        let mut tp = TcpCwnd {
            is_cwnd_limited: true,
            snd_ssthresh: 20,
            ..TcpCwnd::new()
        };
        r.cong_avoid(&mut tp, 0, 10);
        assert_eq!(tp.snd_cwnd, 20);
        // In congestion avoidance: 20 acked segments grow cwnd by one.
        r.cong_avoid(&mut tp, 0, 19);
        assert_eq!(tp.snd_cwnd, 20);
        r.cong_avoid(&mut tp, 0, 1);
        assert_eq!(tp.snd_cwnd, 21);
        assert_eq!(r.ssthresh(&tp), 10);
        tp.snd_cwnd = 3;
        assert_eq!(r.ssthresh(&tp), 2);
        // Not cwnd-limited: no growth.
        tp.is_cwnd_limited = false;
        r.cong_avoid(&mut tp, 0, 100);
        assert_eq!(tp.snd_cwnd, 3);
    }

    #[test]
    fn registry() {
        let reg = CongestionRegistry::new();
        assert_eq!(reg.available(), ["cubic", "reno"]);
        assert_eq!(reg.default_for("cubic").name(), "cubic");
        assert_eq!(reg.default_for("vegas").name(), "reno");
        assert_eq!(
            reg.register("reno", Arc::new(|| Box::new(Reno))),
            Err(netcore::Errno::Exist)
        );
    }
}
