//! Pacing and TCP Small Queues: how fast a socket sends, and how much of
//! it may wait below TCP.
//!
//! Mirrors the pacing and TSQ parts of `net/ipv4/tcp_output.c`
//! (`tcp_update_skb_after_send()`, `tcp_pacing_check()`,
//! `tcp_small_queue_check()`, `tcp_wfree()`, `tcp_tsq_write()`,
//! `tcp_tsq_handler()`, `tcp_tsq_workfn()`, `tcp_pace_kick()`), of
//! `net/ipv4/tcp_input.c` (`tcp_update_pacing_rate()`) and the
//! `sk_pacing_*` fields of `struct sock` (`SO_MAX_PACING_RATE` in
//! `net/core/sock.c`).
//!
//! ```text
//!  ACK ─► tcp_update_pacing_rate: sk_pacing_rate = 200 % / 120 % of cwnd·mss/srtt
//!  tcp_write_xmit ─► tcp_pacing_check (internal pacing: wait for tcp_wstamp_ns,
//!                    TcpTimer::Pacing) ─► tcp_small_queue_check (TSQ: bytes below
//!                    TCP ≤ max(2 skbs, ~1 ms at the pacing rate)) ─► transmit:
//!                    skb->tstamp = tcp_wstamp_ns (EDT), owner = the socket (tcp_wfree)
//!                    ─► tcp_update_skb_after_send: tcp_wstamp_ns += len / rate
//!  tcp_push ─► autocorking: a small tail waits while packets are below TCP
//!                    (TSQF_THROTTLED set, counted TCPAutoCorking)
//!  qdisc (fq) holds the skb until its tstamp; the device frees it ─► tcp_wfree:
//!                    TSQF_THROTTLED ─► TsqList ─► kick (the host's TASKLET softirq)
//!                    ─► TcpStack::tcp_tsq_workfn ─► tcp_tsq_write ─► tcp_write_xmit
//! ```
//!
//! Pacing has three modes, as `sk_pacing_status` has: none (the default
//! with CUBIC: departure times are stamped but not advanced), fq (the
//! qdisc said it paces: departure times advance and fq enforces them) and
//! needed (`SO_MAX_PACING_RATE` was set and no fq paces: TCP waits for
//! each departure time itself on a pacing timer).
//!
//! # Deviations from Linux
//!
//! - `sk_pacing_rate` is recomputed at each `tcp_write_xmit()` and for
//!   `TCP_INFO` rather than at the end of each ACK's processing; the
//!   inputs (cwnd, ssthresh, `packets_out`, srtt) are the same, and an
//!   ACK always ends in a `tcp_write_xmit()`.
//! - Only segments with data (or SYN/FIN) are owned by the socket and
//!   charged to `sk_wmem_alloc`; pure ACKs are not (Linux charges them
//!   and frees them through `__sock_wfree()`, which never wakes TSQ).
//! - "The retransmit queue holds one skb" (`tcp_rtx_queue_empty_or_single_skb()`)
//!   is read as "what is in flight fits one GSO packet": the write queue
//!   holds one entry per MSS.
//! - The pacing timer is a typed timer on the host's wheel, whose
//!   granularity is the host's (exact in the test fixtures, one jiffy on
//!   a netstack host), not a nanosecond hrtimer.
//! - The TSQ work runs where the host runs its `TASKLET` softirq; Linux
//!   6.18 uses a BH workqueue (`system_bh_wq`), the same context.
//! - There is no TSQ counter: Linux has none either (a
//!   `TCPSmallQueueFailure` counter was proposed, not merged).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use netcore::{Instant, SkBuff, SkbDestructor, Sysctl};
use parking_lot::Mutex;

use crate::context::TcpContext;
use crate::tcp::TcpStack;
use crate::tcp_sock::{SockId, TcpSock, TcpState};
use crate::tcp_timer::TcpTimer;

/// `sk_pacing_shift` of TCP sockets: TSQ and TSO size themselves on
/// about 1 ms (2^-10 s) of the pacing rate.
pub(crate) const SK_PACING_SHIFT: u32 = 10;

/// `TSQF_THROTTLED`: TSQ held the socket back; the next free wakes it.
const TSQF_THROTTLED: u8 = 1;
/// `TSQF_QUEUED`: the socket is on the TSQ list.
const TSQF_QUEUED: u8 = 2;

/// Who paces a socket's packets. Mirrors `enum sk_pacing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SkPacing {
    /// `SK_PACING_NONE`: nobody; departure times are not advanced.
    None,
    /// `SK_PACING_NEEDED`: TCP paces itself (`tcp_internal_pacing`).
    Needed,
    /// `SK_PACING_FQ`: the fq qdisc enforces the departure times.
    Fq,
}

/// The sockets whose queued bytes went down while TSQ held them back,
/// waiting for the host to run [`TcpStack::tcp_tsq_workfn`].
///
/// Mirrors the per-CPU `struct tsq_work` (its list and the work item),
/// one per host here. The host installs a kick with
/// [`TcpStack::tsq_set_kick`]: it is called (with the CPU the socket
/// last sent from) when the list becomes non-empty, from whatever thread
/// freed the skb, and should raise the `TASKLET` softirq on that CPU.
#[doc(alias = "tsq_work")]
#[derive(Default)]
pub struct TsqList {
    head: Mutex<Vec<SockId>>,
    pending: AtomicBool,
    kick: Mutex<Option<TsqKick>>,
}

/// The host's kick for the TSQ work (see [`TcpStack::tsq_set_kick`]).
type TsqKick = Box<dyn Fn(usize) + Send + Sync>;

impl core::fmt::Debug for TsqList {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TsqList")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl TsqList {
    /// Queues `id` and kicks the host when the list was empty.
    fn push(&self, id: SockId, cpu: usize) {
        let was_empty = {
            let mut h = self.head.lock();
            let e = h.is_empty();
            h.push(id);
            e
        };
        self.pending.store(true, Ordering::Release);
        if was_empty && let Some(k) = self.kick.lock().as_ref() {
            k(cpu);
        }
    }
}

/// The socket as the owner of its skbs below TCP: `sk_wmem_alloc`, the
/// TSQ flags and the pacing status a qdisc may set.
///
/// The skb destructor of TCP (`tcp_wfree()`); shared by the socket and
/// every skb it has in a qdisc or device queue.
struct TcpTsq {
    id: SockId,
    list: Arc<TsqList>,
    /// Bytes (truesize) of this socket's skbs not yet freed below TCP
    /// (`sk_wmem_alloc`).
    wmem_alloc: AtomicUsize,
    /// `sk_tsq_flags`.
    flags: AtomicU8,
    /// A pacing qdisc claimed the socket (`SK_PACING_FQ`).
    fq: AtomicBool,
    /// The CPU the socket last sent from (where the TSQ work should run).
    cpu: AtomicUsize,
}

impl SkbDestructor for TcpTsq {
    /// Gives the skb's truesize back and, when TSQ held the socket back,
    /// queues it for [`TcpStack::tcp_tsq_workfn`]. Mirrors `tcp_wfree()`.
    #[doc(alias = "tcp_wfree")]
    fn destruct(&self, skb: &SkBuff) {
        let len = skb.truesize();
        let _ = self
            .wmem_alloc
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                Some(w.saturating_sub(len))
            });
        let mut oval = self.flags.load(Ordering::Acquire);
        loop {
            if oval & TSQF_THROTTLED == 0 || oval & TSQF_QUEUED != 0 {
                return;
            }
            let nval = (oval & !TSQF_THROTTLED) | TSQF_QUEUED;
            match self
                .flags
                .compare_exchange(oval, nval, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(v) => oval = v,
            }
        }
        self.list.push(self.id, self.cpu.load(Ordering::Relaxed));
    }

    fn set_pacing_status_fq(&self) {
        self.fq.store(true, Ordering::Release);
    }
}

/// A socket's pacing and TSQ state, allocated when it first sends data
/// or sets `SO_MAX_PACING_RATE`.
///
/// Mirrors `sk_pacing_rate`, `sk_max_pacing_rate`, `sk_pacing_status`
/// (`struct sock`) and `tcp_wstamp_ns`, `pacing_timer`, `tsq_node`
/// (`struct tcp_sock`).
pub(crate) struct TcpPacing {
    /// Bytes per second; `u64::MAX` until first computed (`~0UL`).
    pub sk_pacing_rate: u64,
    /// `SO_MAX_PACING_RATE` in bytes per second (`u64::MAX`: none).
    pub sk_max_pacing_rate: u64,
    /// `SK_PACING_NEEDED` was asked for.
    pub needed: bool,
    /// The Earliest Departure Time of the next skb, ns (`tcp_wstamp_ns`).
    pub tcp_wstamp_ns: u64,
    /// The owner of the socket's skbs below TCP; `None` when the host
    /// has no TSQ list (no TSQ then).
    tsq: Option<Arc<TcpTsq>>,
}

impl TcpPacing {
    fn new<C: TcpContext>(ctx: &C, id: SockId) -> TcpPacing {
        TcpPacing {
            sk_pacing_rate: u64::MAX,
            sk_max_pacing_rate: u64::MAX,
            needed: false,
            tcp_wstamp_ns: 0,
            tsq: ctx.tcp_tsq().map(|list| {
                Arc::new(TcpTsq {
                    id,
                    list: Arc::clone(list),
                    wmem_alloc: AtomicUsize::new(0),
                    flags: AtomicU8::new(0),
                    fq: AtomicBool::new(false),
                    cpu: AtomicUsize::new(ctx.cpu()),
                })
            }),
        }
    }

    /// Who paces (`sk_pacing_status`).
    pub fn status(&self) -> SkPacing {
        if self
            .tsq
            .as_ref()
            .is_some_and(|t| t.fq.load(Ordering::Acquire))
        {
            SkPacing::Fq
        } else if self.needed {
            SkPacing::Needed
        } else {
            SkPacing::None
        }
    }

    /// `sk_wmem_alloc`: bytes of this socket's skbs not yet freed below
    /// TCP.
    #[cfg(test)]
    pub fn wmem_alloc(&self) -> usize {
        self.tsq
            .as_ref()
            .map_or(0, |t| t.wmem_alloc.load(Ordering::Acquire))
    }
}

/// The pacing state of `tp`, allocated on first use.
pub(crate) fn tcp_pacing<'a, C: TcpContext>(ctx: &C, tp: &'a mut TcpSock) -> &'a mut TcpPacing {
    let id = tp.id;
    tp.pacing
        .get_or_insert_with(|| Box::new(TcpPacing::new(ctx, id)))
}

/// The pacing rate `cwnd * mss / srtt` scaled by `tcp_pacing_ss_ratio`
/// (200 %, in slow start below half ssthresh) or `tcp_pacing_ca_ratio`
/// (120 %), in bytes per second, capped by `SO_MAX_PACING_RATE`.
/// Mirrors the computation of `tcp_update_pacing_rate()`.
pub(crate) fn tcp_compute_pacing_rate(sysctl: &Sysctl, tp: &TcpSock) -> u64 {
    let mut rate = u64::from(tp.mss_cache) * ((1_000_000 / 100) << 3);
    let ratio = if tp.cwnd.snd_cwnd < tp.cwnd.snd_ssthresh / 2 {
        sysctl.get_int(Sysctl::TCP_PACING_SS_RATIO)
    } else {
        sysctl.get_int(Sysctl::TCP_PACING_CA_RATIO)
    };
    rate = rate.saturating_mul(ratio.max(0) as u64);
    rate = rate.saturating_mul(u64::from(tp.cwnd.snd_cwnd.max(tp.packets_out)));
    if tp.srtt_us != 0 {
        rate /= u64::from(tp.srtt_us);
    }
    let max = tp
        .pacing
        .as_ref()
        .map_or(u64::MAX, |p| p.sk_max_pacing_rate);
    rate.min(max)
}

/// Stores the rate of [`tcp_compute_pacing_rate`] in `sk_pacing_rate`.
/// Mirrors `tcp_update_pacing_rate()`.
pub(crate) fn tcp_update_pacing_rate<C: TcpContext>(ctx: &C, tp: &mut TcpSock) {
    let rate = tcp_compute_pacing_rate(ctx.sysctl(), tp);
    tcp_pacing(ctx, tp).sk_pacing_rate = rate;
}

/// `sk_pacing_rate` now: the stored rate, or the one the socket's state
/// gives before anything was stored.
pub(crate) fn sk_pacing_rate(sysctl: &Sysctl, tp: &TcpSock) -> u64 {
    match tp.pacing.as_ref() {
        Some(p) if p.sk_pacing_rate != u64::MAX => p.sk_pacing_rate,
        _ => tcp_compute_pacing_rate(sysctl, tp),
    }
}

/// `tcpi_pacing_rate`: the stored rate; before one is stored, the rate
/// the socket's state gives with the default ratios once an RTT is known,
/// else `u64::MAX` (Linux's `~0UL` of a new socket).
pub(crate) fn tcpi_pacing_rate(tp: &TcpSock) -> u64 {
    match tp.pacing.as_ref() {
        Some(p) if p.sk_pacing_rate != u64::MAX => p.sk_pacing_rate,
        _ if tp.srtt_us != 0 => {
            let ratio = if tp.cwnd.snd_cwnd < tp.cwnd.snd_ssthresh / 2 {
                200
            } else {
                120
            };
            let rate = u64::from(tp.mss_cache) * ((1_000_000 / 100) << 3) * ratio;
            let rate = rate.saturating_mul(u64::from(tp.cwnd.snd_cwnd.max(tp.packets_out)));
            (rate / u64::from(tp.srtt_us)).min(
                tp.pacing
                    .as_ref()
                    .map_or(u64::MAX, |p| p.sk_max_pacing_rate),
            )
        }
        _ => u64::MAX,
    }
}

/// Whether TCP must pace itself: `SO_MAX_PACING_RATE` (or a congestion
/// control) asked for pacing and no fq qdisc took it over. Mirrors
/// `tcp_needs_internal_pacing()`.
pub(crate) fn tcp_needs_internal_pacing(tp: &TcpSock) -> bool {
    tp.pacing
        .as_ref()
        .is_some_and(|p| p.status() == SkPacing::Needed)
}

/// With internal pacing, holds the send while the next departure time is
/// in the future, arming the pacing timer for it. Mirrors
/// `tcp_pacing_check()`.
pub(crate) fn tcp_pacing_check<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) -> bool {
    if !tcp_needs_internal_pacing(tp) {
        return false;
    }
    let Some(p) = tp.pacing.as_ref() else {
        return false;
    };
    let now = ctx.now();
    if p.tcp_wstamp_ns <= now.as_nanos() {
        return false;
    }
    let id = TcpTimer::Pacing(tp.id);
    if ctx.timer_pending(id).is_none() {
        let at = Instant::from_nanos(p.tcp_wstamp_ns);
        tp.icsk_lazy |= crate::tcp_timer::TIMER_USED_PACING;
        ctx.arm_timer(id, at);
    }
    true
}

/// The departure time of an skb sent now: `tcp_wstamp_ns` brought up to
/// the clock. Returns it with the value before (`prior_wstamp`). Mirrors
/// the head of `__tcp_transmit_skb()` (`skb_set_delivery_time()`).
pub(crate) fn tcp_wstamp_for_xmit<C: TcpContext>(ctx: &C, tp: &mut TcpSock) -> (Instant, u64) {
    let now = ctx.now().as_nanos();
    match tp.pacing.as_mut() {
        Some(p) => {
            let prior = p.tcp_wstamp_ns;
            p.tcp_wstamp_ns = p.tcp_wstamp_ns.max(now);
            (Instant::from_nanos(p.tcp_wstamp_ns), prior)
        }
        None => (Instant::from_nanos(now), now),
    }
}

/// After an skb of `len` bytes left: when someone paces, the next
/// departure time moves by `len` at the pacing rate (less up to half of it
/// for lateness), except for the first ten data segments. Mirrors
/// `tcp_update_skb_after_send()`.
pub(crate) fn tcp_update_skb_after_send(tp: &mut TcpSock, len: u32, prior_wstamp: u64) {
    let data_segs_out = tp.data_segs_out;
    let Some(p) = tp.pacing.as_mut() else {
        return;
    };
    if p.status() == SkPacing::None {
        return;
    }
    let rate = p.sk_pacing_rate;
    if rate != u64::MAX && rate != 0 && data_segs_out >= 10 {
        let mut len_ns = u64::from(len) * 1_000_000_000 / rate;
        let credit = p.tcp_wstamp_ns.saturating_sub(prior_wstamp);
        len_ns -= (len_ns / 2).min(credit);
        p.tcp_wstamp_ns += len_ns;
    }
}

/// Makes the socket the owner of a segment it sends: the skb's truesize
/// is charged to `sk_wmem_alloc` and given back when the skb is freed
/// below TCP. Mirrors `skb_set_owner_w()` with `tcp_wfree` in
/// `__tcp_transmit_skb()`.
pub(crate) fn tcp_skb_set_owner_w<C: TcpContext>(ctx: &C, tp: &mut TcpSock, skb: &mut SkBuff) {
    let cpu = ctx.cpu();
    let Some(tsq) = tcp_pacing(ctx, tp).tsq.clone() else {
        return;
    };
    tsq.cpu.store(cpu, Ordering::Relaxed);
    skb.orphan();
    tsq.wmem_alloc.fetch_add(skb.truesize(), Ordering::AcqRel);
    skb.set_destructor(tsq as Arc<dyn SkbDestructor>);
}

/// `sk_wmem_alloc` as Linux reads it: the bytes (truesize) of this
/// socket's skbs below TCP, plus the 1 the socket's own reference adds to
/// the counter.
pub(crate) fn sk_wmem_alloc(tp: &TcpSock) -> usize {
    let below = tp
        .pacing
        .as_ref()
        .and_then(|p| p.tsq.as_ref())
        .map_or(0, |t| t.wmem_alloc.load(Ordering::Acquire));
    below + 1
}

/// Sets `TSQF_THROTTLED`, so that the next free below TCP runs the TSQ
/// work for the socket; returns whether the flag was clear (the
/// `test_bit()` + `set_bit()` of `tcp_push()`). Does nothing without TSQ.
pub(crate) fn tsq_throttle(tp: &TcpSock) -> bool {
    let Some(t) = tp.pacing.as_ref().and_then(|p| p.tsq.as_ref()) else {
        return false;
    };
    t.flags.load(Ordering::Acquire) & TSQF_THROTTLED == 0
        && t.flags.fetch_or(TSQF_THROTTLED, Ordering::AcqRel) & TSQF_THROTTLED == 0
}

/// TCP Small Queues: whether sending an skb of `truesize` must wait
/// because the socket already has more than its share below TCP — the
/// larger of two such skbs and about 1 ms at the pacing rate, at most
/// `tcp_limit_output_bytes` unless something paces, doubled `factor`
/// times. Sets `TSQF_THROTTLED` so that the next free below TCP wakes the
/// socket. A flight of at most one GSO packet (`one_packet_in_flight`)
/// always goes. Mirrors `tcp_small_queue_check()`.
pub(crate) fn tcp_small_queue_check(
    sysctl: &Sysctl,
    tp: &TcpSock,
    truesize: u32,
    factor: u32,
    one_packet_in_flight: bool,
) -> bool {
    let Some(p) = tp.pacing.as_ref() else {
        return false;
    };
    let Some(tsq) = p.tsq.as_ref() else {
        return false;
    };
    let rate = sk_pacing_rate(sysctl, tp);
    let mut limit = (2 * u64::from(truesize)).max(rate >> SK_PACING_SHIFT);
    if p.status() == SkPacing::None {
        let lob = sysctl.get_int(Sysctl::TCP_LIMIT_OUTPUT_BYTES).max(0) as u64;
        limit = limit.min(lob);
    }
    limit <<= factor;
    if tsq.wmem_alloc.load(Ordering::Acquire) as u64 > limit {
        if one_packet_in_flight {
            return false;
        }
        tsq.flags.fetch_or(TSQF_THROTTLED, Ordering::AcqRel);
        // A free may have come between the test and the flag: test again.
        if tsq.wmem_alloc.load(Ordering::Acquire) as u64 > limit {
            return true;
        }
    }
    false
}

/// Sets `SO_MAX_PACING_RATE` (bytes per second; `u64::MAX` for none):
/// the pacing rate is capped by it, and a socket that sets it asks for
/// pacing (`SK_PACING_NEEDED`), which TCP does itself unless an fq qdisc
/// takes over. Mirrors the `SO_MAX_PACING_RATE` case of
/// `sk_setsockopt()`.
pub(crate) fn sk_set_max_pacing_rate<C: TcpContext>(ctx: &C, tp: &mut TcpSock, rate: u64) {
    let p = tcp_pacing(ctx, tp);
    if rate != u64::MAX {
        p.needed = true;
    }
    p.sk_max_pacing_rate = rate;
    p.sk_pacing_rate = p.sk_pacing_rate.min(rate);
}

/// Sends what TSQ or pacing held back: lost segments first, then new
/// data. Mirrors `tcp_tsq_write()` (`tcp_tsq_handler()` with the socket
/// lock taken).
pub(crate) fn tcp_tsq_write<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    if matches!(
        tp.state,
        TcpState::Established
            | TcpState::FinWait1
            | TcpState::Closing
            | TcpState::CloseWait
            | TcpState::LastAck
    ) {
        if tp.lost_out > tp.retrans_out && tp.cwnd.snd_cwnd > tp.packets_in_flight() {
            crate::tcp_output::tcp_xmit_retransmit_queue(ctx, tp);
        }
        let nonagle = crate::tcp_output::tp_nonagle(tp);
        crate::tcp_output::tcp_write_xmit(ctx, tp, nonagle, false);
    }
}

/// The pacing timer fired. Mirrors `tcp_pace_kick()`.
pub(crate) fn tcp_pace_kick<C: TcpContext>(ctx: &mut C, tp: &mut TcpSock) {
    tcp_tsq_write(ctx, tp);
}

impl TcpStack {
    /// The host's TSQ list, for [`TcpContext::tcp_tsq`].
    pub fn tsq_list(&self) -> &Arc<TsqList> {
        &self.tsq
    }

    /// Installs the host's kick: called with a CPU number when a socket
    /// joins the empty TSQ list, from the thread that freed the skb; it
    /// should make that CPU run [`TcpStack::tcp_tsq_workfn`] soon (raise
    /// its `TASKLET` softirq). Mirrors `tasklet_schedule()` /
    /// `queue_work(system_bh_wq, ...)` in `tcp_wfree()`.
    pub fn tsq_set_kick(&self, kick: Box<dyn Fn(usize) + Send + Sync>) {
        *self.tsq.kick.lock() = Some(kick);
    }

    /// Whether sockets wait on the TSQ list.
    pub fn tsq_pending(&self) -> bool {
        self.tsq.pending.load(Ordering::Acquire)
    }

    /// Runs the TSQ work: each socket on the list sends what TSQ held
    /// back. Mirrors `tcp_tsq_workfn()` → `tcp_tsq_handler()`.
    pub fn tcp_tsq_workfn<C: TcpContext>(&self, ctx: &mut C) {
        let list = {
            let mut h = self.tsq.head.lock();
            self.tsq.pending.store(false, Ordering::Release);
            core::mem::take(&mut *h)
        };
        for id in list {
            let Some(sk) = self.get(id) else { continue };
            let mut tp = sk.lock();
            if let Some(t) = tp.pacing.as_ref().and_then(|p| p.tsq.as_ref()) {
                t.flags.fetch_and(!TSQF_QUEUED, Ordering::AcqRel);
            }
            tcp_tsq_write(ctx, &mut tp);
        }
    }
}

// The TSQ list and the skb owner cross threads (the device frees skbs).
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TsqList>();
    assert_send_sync::<TcpTsq>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Bottleneck, Net};
    use crate::{SockOpt, TcpSocket};
    use netcore::Duration;

    /// Moves `total` bytes from host 0 to host 1, calling `each` after
    /// every event; returns when all arrived (or after `limit`).
    fn bulk(
        net: &mut Net,
        c: &TcpSocket,
        s: &TcpSocket,
        total: usize,
        limit: Duration,
        mut each: impl FnMut(&mut Net),
    ) -> usize {
        let data = vec![0x5a_u8; 64 * 1024];
        let (mut sent, mut got) = (0, 0);
        let mut buf = vec![0u8; 64 * 1024];
        let end = net.now() + limit;
        while got < total && net.now() <= end {
            while sent < total {
                match net.send(0, c, &data[..(total - sent).min(data.len())]) {
                    Ok(n) => sent += n,
                    Err(_) => break,
                }
            }
            if !net.step() {
                break;
            }
            each(net);
            while let Ok(n) = net.recv(1, s, &mut buf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
        }
        got
    }

    /// Bytes of host 0's segments waiting in the bottleneck queue and
    /// the socket's `sk_wmem_alloc`.
    fn below_tcp(net: &mut Net, c: &TcpSocket) -> (usize, usize) {
        let q = net.bottleneck_backlog(1);
        let w = c.lock().pacing.as_ref().map_or(0, |p| p.wmem_alloc());
        (q, w)
    }

    #[test]
    fn tsq_keeps_one_bulk_flow_from_filling_a_slow_queue() {
        // 10 Mbit/s with room for 1000 packets: only TSQ keeps the queue
        // short; without it slow start fills it with the whole cwnd.
        // tcp_limit_output_bytes 16 KiB bounds what the unpaced socket
        // (no fq, no SO_MAX_PACING_RATE) may have below TCP.
        const LIMIT: usize = 16 * 1024;
        let run = |tsq: bool| {
            let mut net = Net::new(2);
            net.logging = false;
            net.bottleneck = Some(Bottleneck {
                rate_bps: 10_000_000,
                queue_limit: 1000,
            });
            net.bottleneck_is_local = true;
            net.hosts[0]
                .ctx
                .sysctl()
                .set_int(Sysctl::TCP_LIMIT_OUTPUT_BYTES, LIMIT as i64)
                .unwrap();
            if !tsq {
                net.hosts[0].ctx.tsq = None;
            }
            let (c, s) = net.connect_pair(80);
            let (mut max_q, mut max_w, mut one_packet) = (0, 0, 0);
            let got = bulk(&mut net, &c, &s, 1 << 20, Duration::from_secs(5), |n| {
                let (q, w) = below_tcp(n, &c);
                max_q = max_q.max(q);
                max_w = max_w.max(w);
                // The largest GSO packet the socket may build now
                // (tcp_tso_segs() segments of truesize each).
                let tp = c.lock();
                let mss = u32::from(tp.mss_cache);
                let segs = crate::tcp_output::tcp_tso_segs(n.hosts[0].ctx.sysctl(), &tp, mss);
                let ts = (crate::tcp_sock::TCP_SKB_OVERHEAD + mss) as usize;
                // The GSO skb's truesize: its fragments are the entries'
                // whole buffers, and its header has a buffer of its own.
                let entry = tp.write_queue.front().map_or(0, |e| e.skb.truesize());
                let head = netcore::SkBuff::alloc(
                    n.hosts[0].ctx.page_pool(),
                    crate::tcp_sock::MAX_TCP_HEADER,
                )
                .map_or(0, |h| h.truesize());
                one_packet = one_packet.max(segs as usize * ts.max(entry) + head);
            });
            let secs = net.now().as_nanos() as f64 / 1e9;
            (got, max_q, max_w, secs, one_packet)
        };
        let (got, max_q, max_w, secs, one_packet) = run(true);
        assert_eq!(got, 1 << 20);
        // A GSO packet goes while the socket is at or under the limit, or
        // when it is the only one in flight (tcp_rtx_queue_empty_or_single_skb()),
        // and the wire holds it whole until its last segment leaves, as a
        // TSO device does: what is below TCP stays under the limit plus two
        // such packets.
        assert!(one_packet <= 65536, "GSO packets of {one_packet} bytes");
        assert!(
            max_w > 0 && max_w <= LIMIT + 2 * one_packet,
            "sk_wmem_alloc peaked at {max_w} (one packet {one_packet})"
        );
        assert!(
            max_q * 1448 <= LIMIT + 2 * one_packet,
            "{max_q} packets queued"
        );
        // ...and the flow still fills the link: 1 MiB at 10 Mbit/s is
        // 0.84 s of serialisation.
        assert!(secs < 1.0, "took {secs:.3} s");
        let (got, max_q_off, ..) = run(false);
        assert_eq!(got, 1 << 20);
        eprintln!(
            "TSQ: at most {max_q} packets ({max_w} bytes of truesize) below TCP, \
             {secs:.3} s; without TSQ {max_q_off} packets"
        );
        assert!(
            max_q_off > 2 * max_q && max_q_off > 40,
            "without TSQ the queue reached {max_q_off} (with TSQ {max_q})"
        );
    }

    #[test]
    fn max_pacing_rate_paces_internally_at_that_rate() {
        const RATE: u64 = 1_250_000; // 10 Mbit/s
        let mut net = Net::new(2);
        let (c, s) = net.connect_pair(80);
        net.setsockopt(0, &c, SockOpt::MaxPacingRate(RATE)).unwrap();
        let got = bulk(&mut net, &c, &s, 400_000, Duration::from_secs(5), |_| {});
        assert_eq!(got, 400_000);
        let data: Vec<(Instant, usize)> = net
            .from(0)
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| (g.at, g.len()))
            .collect();
        // After the first ten segments, each GSO packet (segments sent at
        // the same instant) leaves len / rate after the one before.
        let mut runs: Vec<(Instant, usize)> = Vec::new();
        for &(at, len) in &data[10..] {
            match runs.last_mut() {
                Some(r) if r.0 == at => r.1 += len,
                _ => runs.push((at, len)),
            }
        }
        assert!(runs.len() > 30, "{} packets", runs.len());
        for w in runs.windows(2) {
            let gap = w[1].0.as_nanos() - w[0].0.as_nanos();
            let want = w[0].1 as u64 * 1_000_000_000 / RATE;
            assert!(
                gap >= want && gap <= want + 1_000,
                "gap {gap} ns after {} bytes, want {want}",
                w[0].1
            );
        }
        let span = runs.last().unwrap().0.as_nanos() - runs[0].0.as_nanos();
        let bytes: usize = runs[..runs.len() - 1].iter().map(|r| r.1).sum();
        let rate = bytes as f64 * 1e9 / span as f64;
        assert!(
            (rate / RATE as f64 - 1.0).abs() < 0.01,
            "rate {rate:.0} B/s"
        );
        let info = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
        assert_eq!(info.max_pacing_rate, RATE);
        assert!(info.pacing_rate <= RATE && info.pacing_rate > 0);
        let unpaced = net.hosts[1].stack.tcp_info(&net.hosts[1].ctx, &s);
        assert_eq!(unpaced.max_pacing_rate, u64::MAX);
    }

    #[test]
    fn an_fq_qdisc_takes_over_pacing_from_departure_times() {
        let mut net = Net::new(2);
        let (c, s) = net.connect_pair(80);
        // The socket's first data segment meets an fq qdisc.
        let h = &mut net.hosts[0];
        h.stack
            .sendmsg(&mut h.ctx, &c, &[1u8; 1000], crate::MsgFlags::empty())
            .unwrap();
        let skb = h.ctx.out.pop().expect("a data segment");
        assert!(
            skb.has_destructor(),
            "data segments are owned by the socket"
        );
        skb.set_sk_pacing_status_fq();
        drop(skb);
        assert!(!tcp_needs_internal_pacing(&c.lock()));
        assert_eq!(c.lock().pacing.as_ref().unwrap().status(), SkPacing::Fq);
        // Now departure times run ahead of the clock by len /
        // sk_pacing_rate per packet, and the socket never arms its own
        // pacing timer (fq would hold each skb until its time).
        let (mut lead, mut timer) = (0u64, false);
        let got = bulk(&mut net, &c, &s, 300_000, Duration::from_secs(5), |n| {
            let now = n.now().as_nanos();
            let w = c.lock().pacing.as_ref().unwrap().tcp_wstamp_ns;
            lead = lead.max(w.saturating_sub(now));
            timer |= n.hosts[0]
                .ctx
                .timers()
                .iter()
                .any(|(t, _)| matches!(t, TcpTimer::Pacing(_)));
        });
        assert!(got >= 300_000, "{got} bytes arrived");
        assert!(
            lead > 100_000,
            "departure times led the clock by {lead} ns at most"
        );
        assert!(!timer, "no internal pacing under fq");
        let rate = c.lock().pacing.as_ref().unwrap().sk_pacing_rate;
        assert!(rate != u64::MAX && rate > 0);
        // The next data segment carries the departure time as its tstamp.
        let h = &mut net.hosts[0];
        let w = h.stack.tcp_info(&h.ctx, &c);
        assert_eq!(w.pacing_rate, rate);
    }
}
