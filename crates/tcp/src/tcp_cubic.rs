//! CUBIC, Linux's default congestion control, with HyStart.
//!
//! Mirrors `net/ipv4/tcp_cubic.c`: the window follows
//! `W(t) = C·(t − K)³ + W_max` (RFC 9438) in the kernel's fixed-point
//! arithmetic (time in 2⁻¹⁰ s, `C = bic_scale/1024 = 41/1024` per 100 ms
//! of RTT folded into `cube_rtt_scale` and `cube_factor`), multiplicative
//! decrease `β = 717/1024`, fast convergence, the Reno-friendly region
//! (`tcp_friendliness`), and HyStart's two slow-start exits (ACK train and
//! RTT increase).
//!
//! # Deviations from Linux
//!
//! - Time is kept in microseconds rather than jiffies (as the kernel's
//!   `bpf_cubic.c` does); the epoch arithmetic converts µs to 2⁻¹⁰ s.
//! - `cubic_root()` is an exact integer cube root (floor) rather than the
//!   kernel's table-plus-one-Newton-step approximation (≤ 0.2 % apart).
//! - `hystart_ack_delay()` is 0: the controller does not see
//!   `sk_pacing_rate`, so the ACK-train threshold is `delay_min / 2` as for
//!   an unpaced socket without a GSO allowance. The `TCPHystart*` counters
//!   are not kept (the controller has no counter handle).
//! - Linux's CUBIC implements the original HyStart, not the RFC 9406
//!   HyStart++ conservative slow start; this follows Linux.

use std::sync::{Arc, LazyLock};

use crate::tcp_cong::{CaEvent, CongestionOps, TcpCaState, TcpCwnd};
use crate::tcp_sock::after;

/// `BICTCP_BETA_SCALE`: β is in 1/1024.
const BICTCP_BETA_SCALE: u32 = 1024;
/// `BICTCP_HZ`: CUBIC's time unit is 2⁻¹⁰ s.
const BICTCP_HZ: u32 = 10;
/// `HYSTART_ACK_TRAIN`.
const HYSTART_ACK_TRAIN: u32 = 0x1;
/// `HYSTART_DELAY`.
const HYSTART_DELAY: u32 = 0x2;
/// `HYSTART_MIN_SAMPLES`: RTT samples per round before the delay test.
const HYSTART_MIN_SAMPLES: u8 = 8;
/// `HYSTART_DELAY_MIN` in µs.
const HYSTART_DELAY_MIN: u32 = 4000;
/// `HYSTART_DELAY_MAX` in µs.
const HYSTART_DELAY_MAX: u32 = 16000;
/// `bictcp_update()` runs at most every `HZ / 32` for an unchanged cwnd.
const UPDATE_THROTTLE_US: i32 = 1_000_000 / 32;
/// One second in µs: delay samples this soon after an epoch starts are
/// discarded.
const USEC_PER_SEC: u64 = 1_000_000;

/// CUBIC's module parameters, with Linux's defaults.
///
/// Mirrors the `module_param`s of `tcp_cubic.c` (`fast_convergence`,
/// `beta`, `initial_ssthresh`, `bic_scale`, `tcp_friendliness`, `hystart`,
/// `hystart_detect`, `hystart_low_window`, `hystart_ack_delta_us`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CubicParams {
    /// Release more bandwidth when `W_max` shrinks (`fast_convergence`, 1).
    pub fast_convergence: bool,
    /// Multiplicative decrease in 1/1024 (`beta`, 717).
    pub beta: u32,
    /// Initial ssthresh when HyStart is off; 0 keeps infinity
    /// (`initial_ssthresh`).
    pub initial_ssthresh: u32,
    /// `C` in 1/1024 (`bic_scale`, 41).
    pub bic_scale: u32,
    /// Keep at least Reno's rate (`tcp_friendliness`, 1).
    pub tcp_friendliness: bool,
    /// Hybrid slow start (`hystart`, 1).
    pub hystart: bool,
    /// `HYSTART_ACK_TRAIN | HYSTART_DELAY` (`hystart_detect`, 3).
    pub hystart_detect: u32,
    /// HyStart acts from this cwnd on (`hystart_low_window`, 16).
    pub hystart_low_window: u32,
    /// ACKs closer than this are a train, µs (`hystart_ack_delta_us`, 2000).
    pub hystart_ack_delta_us: u32,
}

impl Default for CubicParams {
    fn default() -> Self {
        CubicParams {
            fast_convergence: true,
            beta: 717,
            initial_ssthresh: 0,
            bic_scale: 41,
            tcp_friendliness: true,
            hystart: true,
            hystart_detect: HYSTART_ACK_TRAIN | HYSTART_DELAY,
            hystart_low_window: 16,
            hystart_ack_delta_us: 2000,
        }
    }
}

/// CUBIC's module parameters with the constants `cubictcp_register()`
/// derives from them (`beta_scale`, `cube_rtt_scale`, `cube_factor`).
#[derive(Debug)]
struct CubicConsts {
    params: CubicParams,
    cube_rtt_scale: u64,
    beta_scale: u32,
    cube_factor: u64,
}

impl CubicConsts {
    /// Derives the constants as `cubictcp_register()` does. `beta` is
    /// clamped to `1..=1023` and `bic_scale` to at least 1 so they stay
    /// finite.
    fn new(mut params: CubicParams) -> CubicConsts {
        params.beta = params.beta.clamp(1, BICTCP_BETA_SCALE - 1);
        params.bic_scale = params.bic_scale.max(1);
        let beta_scale =
            8 * (BICTCP_BETA_SCALE + params.beta) / 3 / (BICTCP_BETA_SCALE - params.beta);
        let cube_rtt_scale = u64::from(params.bic_scale) * 10;
        let cube_factor = (1u64 << (10 + 3 * BICTCP_HZ)) / cube_rtt_scale;
        CubicConsts {
            params,
            cube_rtt_scale,
            beta_scale,
            cube_factor,
        }
    }
}

/// Per-socket CUBIC state.
///
/// Mirrors `struct bictcp` in `tcp_cubic.c` (`cnt`, `last_max_cwnd`,
/// `last_cwnd`, `last_time`, `bic_origin_point`, `bic_K`, `delay_min`,
/// `epoch_start`, `ack_cnt`, `tcp_cwnd`, and HyStart's `sample_cnt`,
/// `found`, `round_start`, `end_seq`, `last_ack`, `curr_rtt`) with the
/// operations of `cubictcp` (`cubictcp_init()`, `cubictcp_cong_avoid()`,
/// `cubictcp_recalc_ssthresh()`, `cubictcp_state()`,
/// `cubictcp_cwnd_event()`, `cubictcp_acked()`).
///
/// As in `struct bictcp` the time stamps are 32 bits (the low bits of the
/// µs clock, compared modulo 2³²) and `sample_cnt` is a byte, so the
/// state takes 72 bytes; `epoch_start` alone stays a 64-bit µs value,
/// since the curve's `t` is measured from it and an epoch can outlast
/// the 71 minutes a 32-bit µs clock spans.
#[derive(Clone, Debug)]
pub struct Cubic {
    /// The module parameters and the constants derived from them, shared
    /// by every socket that uses the same parameters (Linux keeps them as
    /// module globals; a copy per socket cost ≈ 50 B each).
    consts: Arc<CubicConsts>,
    /// Increase cwnd by one per `cnt` ACKed segments.
    cnt: u32,
    last_max_cwnd: u32,
    last_cwnd: u32,
    /// When `last_cwnd` was set, the low 32 bits of the µs clock (Linux
    /// keeps 32-bit jiffies): only compared for the update throttle.
    last_time: u32,
    bic_origin_point: u32,
    bic_k: u32,
    delay_min: u32,
    epoch_start: u64,
    ack_cnt: u32,
    tcp_cwnd: u32,
    sample_cnt: u8,
    found: bool,
    /// Start of the HyStart round, low 32 bits of the µs clock, as
    /// `bictcp_clock_us()` gives it.
    round_start: u32,
    end_seq: u32,
    /// Last ACK of the train, low 32 bits of the µs clock.
    last_ack: u32,
    curr_rtt: u32,
}

impl Default for Cubic {
    fn default() -> Self {
        Cubic::new()
    }
}

impl Cubic {
    /// CUBIC with Linux's default parameters.
    pub fn new() -> Cubic {
        static DEFAULT: LazyLock<Arc<CubicConsts>> =
            LazyLock::new(|| Arc::new(CubicConsts::new(CubicParams::default())));
        Cubic::with_consts(Arc::clone(&DEFAULT))
    }

    /// CUBIC with the given parameters; the derived constants are those of
    /// `cubictcp_register()`. `beta` is clamped to `1..=1023` and
    /// `bic_scale` to at least 1 so the constants stay finite.
    pub fn with_params(params: CubicParams) -> Cubic {
        Cubic::with_consts(Arc::new(CubicConsts::new(params)))
    }

    /// CUBIC sharing already-derived constants.
    fn with_consts(consts: Arc<CubicConsts>) -> Cubic {
        Cubic {
            consts,
            cnt: 0,
            last_max_cwnd: 0,
            last_cwnd: 0,
            last_time: 0,
            bic_origin_point: 0,
            bic_k: 0,
            delay_min: 0,
            epoch_start: 0,
            ack_cnt: 0,
            tcp_cwnd: 0,
            sample_cnt: 0,
            found: false,
            round_start: 0,
            end_seq: 0,
            last_ack: 0,
            curr_rtt: 0,
        }
    }

    /// `W_max`, the window before the last reduction (`last_max_cwnd`).
    pub fn last_max_cwnd(&self) -> u32 {
        self.last_max_cwnd
    }

    /// `K` in 2⁻¹⁰ s: the time to climb back to `W_max` (`bic_K`).
    pub fn bic_k(&self) -> u32 {
        self.bic_k
    }

    /// The smallest RTT seen, µs (`delay_min`).
    pub fn delay_min(&self) -> u32 {
        self.delay_min
    }

    /// Whether HyStart ended slow start (`found`).
    pub fn hystart_found(&self) -> bool {
        self.found
    }

    /// Forgets the epoch and `W_max`. Mirrors `bictcp_reset()`.
    fn bictcp_reset(&mut self) {
        self.cnt = 0;
        self.last_max_cwnd = 0;
        self.last_cwnd = 0;
        self.last_time = 0;
        self.bic_origin_point = 0;
        self.bic_k = 0;
        self.delay_min = 0;
        self.epoch_start = 0;
        self.ack_cnt = 0;
        self.tcp_cwnd = 0;
        self.found = false;
    }

    /// Starts a HyStart round at `snd_nxt`. Mirrors
    /// `bictcp_hystart_reset()`.
    fn bictcp_hystart_reset(&mut self, tp: &TcpCwnd) {
        let now = bictcp_clock_us(tp);
        self.round_start = now;
        self.last_ack = now;
        self.end_seq = tp.snd_nxt;
        self.curr_rtt = u32::MAX;
        self.sample_cnt = 0;
    }

    /// Computes `cnt` from the cubic curve and the Reno estimate. Mirrors
    /// `bictcp_update()`.
    fn bictcp_update(&mut self, tp: &TcpCwnd, cwnd: u32, acked: u32) {
        let now = tp.tcp_mstamp;
        let now32 = bictcp_clock_us(tp);
        self.ack_cnt = self.ack_cnt.saturating_add(acked);
        if self.last_cwnd == cwnd
            && (now32.wrapping_sub(self.last_time) as i32) <= UPDATE_THROTTLE_US
        {
            return;
        }
        // The epoch has started and this is the same instant: only the
        // Reno-friendly part can change.
        if self.epoch_start == 0 || now32 != self.last_time {
            self.last_cwnd = cwnd;
            self.last_time = now32;
            if self.epoch_start == 0 {
                // Record the beginning of an epoch (0 means none, so a
                // clock at 0 starts at 1 µs).
                self.epoch_start = now.max(1);
                self.ack_cnt = acked;
                self.tcp_cwnd = cwnd;
                if self.last_max_cwnd <= cwnd {
                    self.bic_k = 0;
                    self.bic_origin_point = cwnd;
                } else {
                    // K = cbrt((W_max - cwnd) / C) in 2^-10 s.
                    let diff = u64::from(self.last_max_cwnd - cwnd);
                    self.bic_k = cubic_root(self.consts.cube_factor.saturating_mul(diff)) as u32;
                    self.bic_origin_point = self.last_max_cwnd;
                }
            }
            // t: time since the epoch plus one minimum RTT, in 2^-10 s.
            let elapsed_us = now.saturating_sub(self.epoch_start) + u64::from(self.delay_min);
            let t = (elapsed_us << BICTCP_HZ) / USEC_PER_SEC;
            let k = u64::from(self.bic_k);
            let offs = t.abs_diff(k);
            // C/rtt * (t - K)^3; offs is bounded so the product fits for
            // the windows and times TCP reaches (as in Linux).
            let delta = (self
                .consts
                .cube_rtt_scale
                .saturating_mul(offs)
                .saturating_mul(offs)
                .saturating_mul(offs)
                >> (10 + 3 * BICTCP_HZ)) as u32;
            let bic_target = if t < k {
                self.bic_origin_point.saturating_sub(delta)
            } else {
                self.bic_origin_point.saturating_add(delta)
            };
            self.cnt = if bic_target > cwnd {
                cwnd / (bic_target - cwnd)
            } else {
                // Very small increment when above the curve.
                cwnd.saturating_mul(100)
            };
            // Before the first loss, grow no slower than Reno-ish slow
            // growth: at least one segment per 20 ACKs.
            if self.last_max_cwnd == 0 && self.cnt > 20 {
                self.cnt = 20;
            }
        }
        if self.consts.params.tcp_friendliness {
            // The window standard TCP would have (RFC 9438 §4.3).
            let delta = (cwnd * self.consts.beta_scale) >> 3;
            if delta > 0 && self.ack_cnt > delta {
                let n = self.ack_cnt / delta;
                self.ack_cnt -= n * delta;
                self.tcp_cwnd += n;
            }
            if self.tcp_cwnd > cwnd {
                let delta = self.tcp_cwnd - cwnd;
                let max_cnt = cwnd / delta;
                self.cnt = self.cnt.min(max_cnt);
            }
        }
        // Never faster than 1.5x per RTT.
        self.cnt = self.cnt.max(2);
    }

    /// HyStart's two exits from slow start. Mirrors `hystart_update()`.
    fn hystart_update(&mut self, tp: &mut TcpCwnd, delay: u32) {
        if after(tp.snd_una, self.end_seq) {
            self.bictcp_hystart_reset(tp);
        }
        if tp.snd_cwnd < self.consts.params.hystart_low_window {
            return;
        }
        if self.consts.params.hystart_detect & HYSTART_ACK_TRAIN != 0 {
            let now = bictcp_clock_us(tp);
            // ACKs of one round arriving closely spaced: once the train
            // spans half the minimum RTT, the pipe is full.
            if i64::from(now.wrapping_sub(self.last_ack) as i32)
                <= i64::from(self.consts.params.hystart_ack_delta_us)
            {
                self.last_ack = now;
                // hystart_ack_delay() is 0 without a pacing rate; unpaced,
                // the threshold is halved.
                let threshold = i64::from(self.delay_min >> 1);
                if i64::from(now.wrapping_sub(self.round_start) as i32) > threshold {
                    self.found = true;
                    tp.snd_ssthresh = tp.snd_cwnd;
                }
            }
        }
        if self.consts.params.hystart_detect & HYSTART_DELAY != 0 {
            self.curr_rtt = self.curr_rtt.min(delay);
            if self.sample_cnt < HYSTART_MIN_SAMPLES {
                self.sample_cnt += 1;
            } else {
                let thresh = (self.delay_min >> 3).clamp(HYSTART_DELAY_MIN, HYSTART_DELAY_MAX);
                if self.curr_rtt > self.delay_min.saturating_add(thresh) {
                    self.found = true;
                    tp.snd_ssthresh = tp.snd_cwnd;
                }
            }
        }
    }
}

/// The low 32 bits of the socket's µs clock, which HyStart's and the
/// throttle's time stamps keep. Mirrors `bictcp_clock_us()` (Linux keeps
/// `tp->tcp_mstamp` and truncates it the same way); differences are taken
/// modulo 2³², as the kernel's `(s32)(now - then)`.
fn bictcp_clock_us(tp: &TcpCwnd) -> u32 {
    tp.tcp_mstamp as u32
}

/// The integer cube root of `a`, rounded down.
///
/// Stands in for `cubic_root()` of `tcp_cubic.c` (see the module's
/// deviations).
pub fn cubic_root(a: u64) -> u64 {
    if a == 0 {
        return 0;
    }
    // Start above the root (2^ceil(bits/3)) and run Newton's method down.
    let bits = 64 - a.leading_zeros();
    let mut x: u64 = 1u64 << bits.div_ceil(3);
    loop {
        let y = (2 * x + a / (x * x)) / 3;
        if y >= x {
            break;
        }
        x = y;
    }
    // Settle exactly on the floor.
    while x.checked_pow(3).is_none_or(|c| c > a) {
        x -= 1;
    }
    while (x + 1).checked_pow(3).is_some_and(|c| c <= a) {
        x += 1;
    }
    x
}

impl CongestionOps for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }

    fn init(&mut self, tp: &mut TcpCwnd) {
        self.bictcp_reset();
        if self.consts.params.hystart {
            self.bictcp_hystart_reset(tp);
        }
        if !self.consts.params.hystart && self.consts.params.initial_ssthresh != 0 {
            tp.snd_ssthresh = self.consts.params.initial_ssthresh;
        }
    }

    fn ssthresh(&mut self, tp: &TcpCwnd) -> u32 {
        self.epoch_start = 0;
        // W_max, lowered further when the window keeps shrinking (fast
        // convergence).
        self.last_max_cwnd =
            if tp.snd_cwnd < self.last_max_cwnd && self.consts.params.fast_convergence {
                ((u64::from(tp.snd_cwnd) * u64::from(BICTCP_BETA_SCALE + self.consts.params.beta))
                    / u64::from(2 * BICTCP_BETA_SCALE)) as u32
            } else {
                tp.snd_cwnd
            };
        (((u64::from(tp.snd_cwnd) * u64::from(self.consts.params.beta))
            / u64::from(BICTCP_BETA_SCALE)) as u32)
            .max(2)
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
        self.bictcp_update(tp, tp.snd_cwnd, acked);
        tp.cong_avoid_ai(self.cnt, acked);
    }

    fn set_state(&mut self, tp: &mut TcpCwnd, new_state: TcpCaState) {
        if new_state == TcpCaState::Loss {
            self.bictcp_reset();
            self.bictcp_hystart_reset(tp);
        }
    }

    fn cwnd_event(&mut self, tp: &mut TcpCwnd, ev: CaEvent) {
        if ev == CaEvent::TxStart {
            // After idle, shift the epoch so the curve does not jump ahead
            // by the idle time.
            let now = tp.tcp_mstamp;
            let delta = now.saturating_sub(tp.lsndtime);
            if self.epoch_start != 0 && delta > 0 {
                self.epoch_start = (self.epoch_start + delta).min(now);
            }
        }
    }

    fn pkts_acked(&mut self, tp: &mut TcpCwnd, _acked: u32, rtt_us: i64) {
        if rtt_us < 0 {
            return;
        }
        // Discard delay samples right after a reduction.
        if self.epoch_start != 0 && tp.tcp_mstamp.saturating_sub(self.epoch_start) < USEC_PER_SEC {
            return;
        }
        let delay = u32::try_from(rtt_us).unwrap_or(u32::MAX).max(1);
        if self.delay_min == 0 || self.delay_min > delay {
            self.delay_min = delay;
        }
        if !self.found && tp.in_slow_start() && self.consts.params.hystart {
            self.hystart_update(tp, delay);
        }
    }

    fn undo_cwnd(&mut self, tp: &TcpCwnd, prior_cwnd: u32) -> u32 {
        // tcp_reno_undo_cwnd(), as cubictcp uses: max(cwnd, prior_cwnd).
        tp.snd_cwnd.max(prior_cwnd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_shares_its_constants_between_sockets() {
        // The per-socket part: the 16 fields of `struct bictcp` plus one
        // pointer to the shared parameters (was 128 B with a copy of
        // them, 88 with 64-bit time stamps): 72 B, an 80-byte heap chunk.
        assert!(
            core::mem::size_of::<Cubic>() <= 72,
            "{}",
            core::mem::size_of::<Cubic>()
        );
        let a = Cubic::new();
        let b = Cubic::new();
        assert!(Arc::ptr_eq(&a.consts, &b.consts));
        let c = Cubic::with_params(CubicParams {
            beta: 5000,
            bic_scale: 0,
            ..CubicParams::default()
        });
        assert_eq!(c.consts.params.beta, 1023);
        assert_eq!(c.consts.params.bic_scale, 1);
        assert!(!Arc::ptr_eq(&a.consts, &c.consts));
    }

    fn tp_at(now_us: u64, cwnd: u32, ssthresh: u32) -> TcpCwnd {
        TcpCwnd {
            snd_cwnd: cwnd,
            snd_ssthresh: ssthresh,
            is_cwnd_limited: true,
            tcp_mstamp: now_us,
            ..TcpCwnd::new()
        }
    }

    #[test]
    fn cube_root_is_exact_floor() {
        for a in [0u64, 1, 7, 8, 26, 27, 28, 999, 1000, 1 << 40, u64::MAX] {
            let r = cubic_root(a);
            assert!(r.pow(3) <= a, "{a}");
            assert!((r + 1).checked_pow(3).is_none_or(|c| c > a), "{a}");
        }
        assert_eq!(cubic_root(1_000_000_000), 1000);
    }

    #[test]
    fn constants_match_cubictcp_register() {
        let c = Cubic::new();
        assert_eq!(c.consts.beta_scale, 15);
        assert_eq!(c.consts.cube_rtt_scale, 410);
        assert_eq!(c.consts.cube_factor, (1u64 << 40) / 410);
    }

    #[test]
    fn loss_sets_beta_and_fast_convergence() {
        let mut c = Cubic::new();
        let tp = tp_at(1_000_000, 100, 50);
        // First loss: W_max = cwnd, ssthresh = 0.7 cwnd.
        assert_eq!(c.ssthresh(&tp), 70);
        assert_eq!(c.last_max_cwnd(), 100);
        // Second loss below W_max: fast convergence lowers W_max to
        // cwnd * (1 + beta) / 2.
        let tp = tp_at(2_000_000, 80, 70);
        assert_eq!(c.ssthresh(&tp), 56);
        assert_eq!(c.last_max_cwnd(), 80 * 1741 / 2048);
        assert_eq!(c.ssthresh(&tp_at(0, 2, 2)), 2);
    }

    #[test]
    fn window_is_concave_then_convex_around_w_max() {
        // 100 ms RTT, W_max 1000, after the reduction to 700: the window
        // climbs fast, flattens near 1000 around t = K, then grows again.
        let mut c = Cubic::new();
        let mut tp = tp_at(1_000_000, 1000, TCP_INF);
        c.delay_min = 100_000;
        tp.snd_ssthresh = c.ssthresh(&tp);
        assert_eq!(tp.snd_ssthresh, 700);
        tp.snd_cwnd = tp.snd_ssthresh;
        let mut now = 1_000_000u64;
        let mut samples = Vec::new();
        for _ in 0..200 {
            // One RTT: a full window of ACKs.
            now += 100_000;
            tp.tcp_mstamp = now;
            let w = tp.snd_cwnd;
            for _ in 0..w {
                c.cong_avoid(&mut tp, 0, 1);
            }
            samples.push(tp.snd_cwnd);
        }
        // K = cbrt(300 / 0.4) s = 9.09 s.
        let k_ms = u64::from(c.bic_k()) * 1000 / 1024;
        assert!((9000..9200).contains(&k_ms), "K = {k_ms} ms");
        let at = |ms: u64| i64::from(samples[(ms / 100 - 1) as usize]);
        // Concave: the first second gains more than the second before K.
        assert!(
            at(1000) - 700 > 3 * (at(k_ms) - at(k_ms - 1000)),
            "{samples:?}"
        );
        // Plateau near W_max around K.
        assert!((990..=1010).contains(&at(k_ms)), "{}", at(k_ms));
        // Convex beyond: the last second grows more than the one after K.
        assert!(
            at(20_000) - at(19_000) > 3 * (at(k_ms + 1000) - at(k_ms)),
            "{samples:?}"
        );
    }

    const TCP_INF: u32 = crate::tcp_cong::TCP_INFINITE_SSTHRESH;

    #[test]
    fn hystart_delay_increase_ends_slow_start() {
        let mut c = Cubic::new();
        let mut tp = tp_at(1_000, 32, TCP_INF);
        tp.snd_nxt = 100_000;
        c.init(&mut tp);
        // A round of samples at the base RTT, spaced beyond the train
        // delta so only the delay test can fire.
        let mut now = 1_000u64;
        for _ in 0..10 {
            now += 5_000;
            tp.tcp_mstamp = now;
            c.pkts_acked(&mut tp, 1, 20_000);
        }
        assert!(!c.hystart_found());
        assert_eq!(tp.snd_ssthresh, TCP_INF);
        // Next round: RTT up by 5 ms (> max(4 ms, 20/8 ms)).
        tp.snd_una = 100_001;
        tp.snd_nxt = 200_000;
        for _ in 0..10 {
            now += 5_000;
            tp.tcp_mstamp = now;
            c.pkts_acked(&mut tp, 1, 25_000);
        }
        assert!(c.hystart_found());
        assert_eq!(tp.snd_ssthresh, 32);
    }

    #[test]
    fn hystart_ack_train_ends_slow_start() {
        let mut c = Cubic::new();
        let mut tp = tp_at(0, 64, TCP_INF);
        tp.snd_nxt = 1;
        c.init(&mut tp);
        // ACKs every 500 µs with a 20 ms RTT: after 10 ms (delay_min / 2)
        // of train the round ends slow start.
        let mut now = 0;
        while !c.hystart_found() && now < 30_000 {
            now += 500;
            tp.tcp_mstamp = now;
            c.pkts_acked(&mut tp, 1, 20_000);
        }
        assert!(c.hystart_found());
        assert!((10_000..=11_000).contains(&now), "{now}");
        assert_eq!(tp.snd_ssthresh, 64);
    }

    #[test]
    fn loss_state_resets_and_idle_shifts_epoch() {
        let mut c = Cubic::new();
        let mut tp = tp_at(5_000_000, 50, 40);
        c.cong_avoid(&mut tp, 0, 1);
        assert_eq!(c.epoch_start, 5_000_000);
        // 2 s idle: the epoch moves forward by the idle time.
        tp.lsndtime = 5_000_000;
        tp.tcp_mstamp = 7_000_000;
        c.cwnd_event(&mut tp, CaEvent::TxStart);
        assert_eq!(c.epoch_start, 7_000_000);
        c.ssthresh(&tp);
        assert_eq!(c.last_max_cwnd(), 50);
        c.set_state(&mut tp, TcpCaState::Loss);
        assert_eq!(c.last_max_cwnd(), 0);
        assert_eq!(c.epoch_start, 0);
    }
}
