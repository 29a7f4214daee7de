//! Protocol memory: the `net.ipv4.tcp_mem` limits, each socket's
//! `sk_forward_alloc` quanta and TCP memory pressure.
//!
//! Mirrors the memory-accounting half of `net/core/sock.c`
//! (`__sk_mem_raise_allocated()`, `__sk_mem_schedule()`,
//! `__sk_mem_reduce_allocated()`, `__sk_mem_reclaim()`,
//! `sk_forced_mem_schedule()`), its inline helpers in
//! `include/net/sock.h` (`sk_rmem_schedule()`, `sk_wmem_schedule()`,
//! `sk_mem_reclaim()`, `sk_mem_pages()`, `sk_under_memory_pressure()`) and
//! `tcp_enter_memory_pressure()`/`tcp_leave_memory_pressure()` of
//! `net/ipv4/tcp.c`.
//!
//! ```text
//!   host (one network namespace)      TcpMemory: memory_allocated (pages)
//!     |                                          memory_pressure (since)
//!     +-- socket A  pages ---------+             sockets_allocated
//!     +-- socket B  pages ---------+--> sum == memory_allocated
//!
//!   a socket's pages * 4096 = rmem_alloc + wmem_queued + sk_forward_alloc
//!
//!   sk_rmem_schedule / sk_wmem_schedule(size):
//!     size <= sk_forward_alloc           -> yes, nothing global changes
//!     else raise by whole pages          -> __sk_mem_raise_allocated:
//!        allocated <= tcp_mem[0]          yes, leave pressure
//!        allocated >  tcp_mem[1]          enter pressure (TCPMemoryPressures)
//!        allocated >  tcp_mem[2]          no (the caller drops or blocks)
//!        under pressure                   yes for small or below-average sockets
//!   sk_mem_reclaim: whole free pages of sk_forward_alloc go back
//!     (below tcp_mem[0]: leave pressure, TCPMemoryPressuresChrono += ms)
//! ```
//!
//! # Deviations from Linux
//!
//! - The charge follows the queues: a socket records the pages it holds
//!   and `sk_forward_alloc` is derived as those pages less what its queues
//!   hold (`sk_rmem_alloc + sk_wmem_queued`), instead of being adjusted by
//!   every `sk_mem_charge()`/`sk_mem_uncharge()`. Freeing data therefore
//!   raises `sk_forward_alloc` at once, as `sk_mem_uncharge()` does, and
//!   the pages go back to the host at the next [`sk_mem_reclaim`]: after
//!   each segment `tcp_v4_rcv()` processed, after `recvmsg()` and when the
//!   socket is closed or freed. A socket dropped without that returns its
//!   pages when it is freed.
//! - `tcp_mem` and `memory_allocated` (with its per-CPU reserves) are per
//!   host (network namespace), where Linux's are global. There is no
//!   memory cgroup.
//! - A CPU's reserve in front of `memory_allocated` (as
//!   `sk_memory_allocated_add()` batches up to `net.core.mem_pcpu_rsv`
//!   pages) is written by one thread only, the first that charged memory
//!   for that CPU (see [`netcore::PerCpuI64`]); charges made on any other
//!   thread, and pages a socket returns when it is dropped without a
//!   context, go to `memory_allocated` at once.
//! - Refusing send memory does not shrink `SO_SNDBUF`
//!   (`sk_stream_moderate_sndbuf()`): netstack has no `tcp_sndbuf_expand()`
//!   to grow it back, so the writer is refused (`EAGAIN`) until memory is
//!   freed instead.
//! - Orphans are counted exactly in one atomic per host
//!   ([`TcpMemory::orphan_count`]); Linux sums per-CPU counters into
//!   `tcp_orphan_cache` every 100 ms and compares that.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use netcore::{LinuxMib, PerCpuI64, Sysctl};

use crate::context::TcpContext;
use crate::tcp_sock::TcpSock;

/// The accounting unit of protocol memory: one page
/// (`PAGE_SIZE`, formerly `SK_MEM_QUANTUM`). `tcp_mem` counts these.
pub const SK_MEM_QUANTUM: i64 = 4096;

/// The CPUs that have a reserve in front of `memory_allocated`: Linux's
/// default `CONFIG_NR_CPUS` on x86-64 (a higher CPU number charges the
/// global counter directly).
const TCP_MEM_PCPU_CPUS: usize = 64;

/// One host's TCP memory: the pages every TCP socket holds, whether TCP is
/// under memory pressure, and how many sockets there are.
///
/// Mirrors `tcp_memory_allocated`, `tcp_memory_pressure` and
/// `tcp_sockets_allocated` of `net/ipv4/tcp.c`, which `tcp_prot` points
/// at (`memory_allocated`, `memory_pressure`, `sockets_allocated`), with
/// the limits in `net.ipv4.tcp_mem` (`sysctl_mem`). `/proc/net/sockstat`
/// prints [`TcpMemory::memory_allocated`] as the `mem` of its `TCP:` line.
///
/// Shared by the host's [`crate::TcpStack`] and its sockets (each socket
/// that holds memory keeps a reference, as `sk->sk_prot` does).
#[doc(alias = "tcp_memory_allocated")]
#[derive(Debug)]
pub struct TcpMemory {
    /// Pages charged to TCP sockets (`tcp_memory_allocated`), less what
    /// the CPUs hold in `per_cpu_fw_alloc`.
    memory_allocated: AtomicI64,
    /// Each CPU's pages not yet added to (or, below zero, taken from)
    /// `memory_allocated`: `tcp_memory_per_cpu_fw_alloc`, which
    /// `tcp_prot.per_cpu_fw_alloc` points at.
    per_cpu_fw_alloc: PerCpuI64,
    /// 0, or the time (ms, at least 1) pressure was entered
    /// (`tcp_memory_pressure`, which holds jiffies).
    memory_pressure: AtomicU64,
    /// Full sockets (`tcp_sockets_allocated`).
    sockets_allocated: AtomicI64,
    /// Orphaned full sockets: closed by the user, still alive in TCP
    /// (`tcp_orphan_count`).
    orphans: AtomicI64,
}

impl Default for TcpMemory {
    fn default() -> TcpMemory {
        TcpMemory {
            memory_allocated: AtomicI64::new(0),
            per_cpu_fw_alloc: PerCpuI64::new(TCP_MEM_PCPU_CPUS),
            memory_pressure: AtomicU64::new(0),
            sockets_allocated: AtomicI64::new(0),
            orphans: AtomicI64::new(0),
        }
    }
}

impl TcpMemory {
    /// No memory charged, no pressure, no sockets.
    pub fn new() -> TcpMemory {
        TcpMemory::default()
    }

    /// Orphaned sockets alive now: closed by their user, kept by TCP to
    /// finish the connection (FIN-WAIT-1, CLOSING, LAST-ACK, a long
    /// FIN-WAIT-2). Mirrors `tcp_orphan_count` (what `/proc/net/sockstat`
    /// prints as `orphan`); TIME-WAIT mini sockets are not counted.
    pub fn orphan_count(&self) -> u64 {
        self.orphans.load(Ordering::Relaxed).max(0) as u64
    }

    /// The pages charged to TCP sockets, as the global counter has them:
    /// each CPU may hold up to `net.core.mem_pcpu_rsv` pages more or less
    /// in its reserve. Mirrors `sk_memory_allocated()` (the `mem` of
    /// `/proc/net/sockstat`, `proto_memory_allocated()`).
    pub fn memory_allocated(&self) -> i64 {
        self.memory_allocated.load(Ordering::Relaxed)
    }

    /// Whether TCP is under memory pressure. Mirrors
    /// `tcp_under_memory_pressure()` (without memory cgroups).
    pub fn under_memory_pressure(&self) -> bool {
        self.memory_pressure.load(Ordering::Relaxed) != 0
    }

    /// The number of full TCP sockets. Mirrors
    /// `sk_sockets_allocated_read_positive()`.
    pub fn sockets_allocated(&self) -> i64 {
        self.sockets_allocated.load(Ordering::Relaxed).max(0)
    }

    /// Counts a new full socket (`sk_sockets_allocated_inc()`).
    pub(crate) fn sockets_allocated_inc(&self) {
        self.sockets_allocated.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a freed full socket (`sk_sockets_allocated_dec()`).
    pub(crate) fn sockets_allocated_dec(&self) {
        self.sockets_allocated.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds `amt` pages to `cpu`'s reserve, and the reserve to the global
    /// counter once it reaches `net.core.mem_pcpu_rsv`. Mirrors
    /// `sk_memory_allocated_add()` (`this_cpu_add_return()` then
    /// `proto_memory_pcpu_drain()`); off the CPU's owning thread the pages
    /// go to the global counter at once.
    #[inline]
    fn memory_allocated_add(&self, sysctl: &Sysctl, cpu: usize, amt: i64) {
        let Some(pcpu) = self.per_cpu_fw_alloc.this_cpu(cpu) else {
            self.memory_allocated.fetch_add(amt, Ordering::Relaxed);
            return;
        };
        if pcpu.add_return(amt) >= sysctl.get_int(Sysctl::MEM_PCPU_RSV) {
            self.memory_pcpu_drain(cpu);
        }
    }

    /// Takes `amt` pages from `cpu`'s reserve, and the reserve from the
    /// global counter once it is `net.core.mem_pcpu_rsv` below zero.
    /// Mirrors `sk_memory_allocated_sub()`.
    #[inline]
    fn memory_allocated_sub(&self, sysctl: &Sysctl, cpu: usize, amt: i64) {
        let Some(pcpu) = self.per_cpu_fw_alloc.this_cpu(cpu) else {
            self.memory_allocated.fetch_sub(amt, Ordering::Relaxed);
            return;
        };
        if pcpu.add_return(-amt) <= -sysctl.get_int(Sysctl::MEM_PCPU_RSV) {
            self.memory_pcpu_drain(cpu);
        }
    }

    /// Moves `cpu`'s reserve to the global counter. Mirrors
    /// `proto_memory_pcpu_drain()`.
    #[cold]
    fn memory_pcpu_drain(&self, cpu: usize) {
        let Some(pcpu) = self.per_cpu_fw_alloc.this_cpu(cpu) else {
            return;
        };
        let val = pcpu.xchg(0);
        if val != 0 {
            self.memory_allocated.fetch_add(val, Ordering::Relaxed);
        }
    }
}

/// What one socket holds of its protocol's memory.
///
/// Stands for `sk->sk_forward_alloc` with `sk->sk_prot`: the pages this
/// socket charged to [`TcpMemory`] (see the module's deviations for how
/// `sk_forward_alloc` derives from them). Returns its pages when dropped.
#[derive(Debug, Default)]
pub(crate) struct SkMem {
    prot: Option<Arc<TcpMemory>>,
    pages: i64,
}

impl SkMem {
    /// The pages this socket holds.
    #[cfg(test)]
    pub(crate) fn pages(&self) -> i64 {
        self.pages
    }
}

impl Drop for SkMem {
    /// Returns what the socket still holds straight to the global counter
    /// (there is no context, so no CPU, here; Linux's `sk_mem_reclaim()`
    /// in `sk_destruct` goes through the CPU's reserve).
    fn drop(&mut self) {
        if let Some(prot) = &self.prot
            && self.pages > 0
        {
            prot.memory_allocated
                .fetch_sub(self.pages, Ordering::Relaxed);
        }
    }
}

/// Whether memory is for receiving or sending (`SK_MEM_RECV`,
/// `SK_MEM_SEND`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SkMemKind {
    /// Receive queues (`SK_MEM_RECV`).
    Recv,
    /// The write queue (`SK_MEM_SEND`).
    Send,
}

/// The pages that hold `amt` bytes, rounded up. Mirrors `sk_mem_pages()`.
pub(crate) fn sk_mem_pages(amt: i64) -> i64 {
    (amt.max(0) + SK_MEM_QUANTUM - 1) / SK_MEM_QUANTUM
}

/// The bytes this socket may still queue without charging more pages; less
/// than zero when its queues hold more than it charged (as after
/// [`sk_forced_mem_schedule`]). Mirrors `sk->sk_forward_alloc`.
pub(crate) fn sk_forward_alloc(tp: &TcpSock) -> i64 {
    tp.sk_mem.pages * SK_MEM_QUANTUM - i64::from(tp.rmem_alloc) - i64::from(tp.wmem_queued)
}

/// `tcp_mem[i]`: 0 the level below which pressure ends, 1 the level above
/// which it starts, 2 the hard limit. Mirrors `sk_prot_mem_limits()`.
fn sk_prot_mem_limits(sysctl: &Sysctl, i: usize) -> i64 {
    sysctl.get_vec(Sysctl::TCP_MEM)[i]
}

/// Marks TCP under memory pressure, once. Mirrors
/// `tcp_enter_memory_pressure()`. Counter: `TCPMemoryPressures`.
pub(crate) fn tcp_enter_memory_pressure<C: TcpContext>(mem: &TcpMemory, ctx: &C) {
    if mem.under_memory_pressure() {
        return;
    }
    let since = (ctx.now().as_nanos() / 1_000_000).max(1);
    if mem
        .memory_pressure
        .compare_exchange(0, since, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        ctx.mibs()
            .this_cpu(ctx.cpu())
            .inc(LinuxMib::TcpMemoryPressures);
        tracing::debug!(target: "netstack::tcp", allocated = mem.memory_allocated(), "tcp_enter_memory_pressure");
    }
}

/// Ends memory pressure. Mirrors `tcp_leave_memory_pressure()`. Counter:
/// `TCPMemoryPressuresChrono` (milliseconds spent under pressure).
pub(crate) fn tcp_leave_memory_pressure<C: TcpContext>(mem: &TcpMemory, ctx: &C) {
    if !mem.under_memory_pressure() {
        return;
    }
    let since = mem.memory_pressure.swap(0, Ordering::Relaxed);
    if since != 0 {
        let now = ctx.now().as_nanos() / 1_000_000;
        ctx.mibs().add(
            ctx.cpu(),
            LinuxMib::TcpMemoryPressuresChrono,
            now.saturating_sub(since),
        );
        tracing::debug!(target: "netstack::tcp", allocated = mem.memory_allocated(), "tcp_leave_memory_pressure");
    }
}

/// Charges `amt` pages to the protocol for a request of `size` bytes and
/// says whether the socket may have them; refused pages are taken back.
///
/// Mirrors `__sk_mem_raise_allocated()`: under `tcp_mem[0]` always (and
/// pressure ends); above `tcp_mem[1]` pressure starts; above `tcp_mem[2]`
/// never; in between, a socket below `tcp_rmem[0]`/`tcp_wmem[0]` or using
/// less than its share (`tcp_mem[2]` over the socket count) still may. A
/// send request by a socket whose queue already reaches `SO_SNDBUF` is
/// granted (the writer will wait for the buffer anyway).
pub(crate) fn sk_mem_raise_allocated<C: TcpContext>(
    mem: &TcpMemory,
    ctx: &C,
    tp: &TcpSock,
    size: i64,
    amt: i64,
    kind: SkMemKind,
) -> bool {
    let sysctl = ctx.sysctl();
    mem.memory_allocated_add(sysctl, ctx.cpu(), amt);
    let allocated = mem.memory_allocated();
    if allocated <= sk_prot_mem_limits(sysctl, 0) {
        tcp_leave_memory_pressure(mem, ctx);
        return true;
    }
    if allocated > sk_prot_mem_limits(sysctl, 1) {
        tcp_enter_memory_pressure(mem, ctx);
    }
    if allocated <= sk_prot_mem_limits(sysctl, 2) {
        // The minimum buffer is guaranteed under pressure (RFC 7323 needs
        // a few segments of window), but never past the hard limit.
        let below_min = match kind {
            SkMemKind::Recv => i64::from(tp.rmem_alloc) < sysctl.tcp_rmem()[0],
            SkMemKind::Send => i64::from(tp.wmem_queued) < sysctl.tcp_wmem()[0],
        };
        if below_min {
            return true;
        }
        if !mem.under_memory_pressure() {
            return true;
        }
        // Fair share: sockets using less than the average may grow.
        let used = i64::from(tp.wmem_queued) + i64::from(tp.rmem_alloc) + sk_forward_alloc(tp);
        if sk_prot_mem_limits(sysctl, 2) > mem.sockets_allocated() * sk_mem_pages(used) {
            return true;
        }
    }
    // suppress_allocation:
    if kind == SkMemKind::Send && i64::from(tp.wmem_queued) + size >= i64::from(tp.sndbuf) {
        return true;
    }
    tracing::trace!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, allocated, ?kind, "sock_exceed_buf_limit");
    mem.memory_allocated_sub(sysctl, ctx.cpu(), amt);
    false
}

/// Charges the pages `size` bytes need to the socket, if the protocol
/// grants them. Mirrors `__sk_mem_schedule()`.
pub(crate) fn sk_mem_schedule<C: TcpContext>(
    mem: &Arc<TcpMemory>,
    ctx: &C,
    tp: &mut TcpSock,
    size: i64,
    kind: SkMemKind,
) -> bool {
    let amt = sk_mem_pages(size);
    sk_mem_attach(mem, tp);
    tp.sk_mem.pages += amt;
    if sk_mem_raise_allocated(mem, ctx, tp, size, amt, kind) {
        true
    } else {
        tp.sk_mem.pages -= amt;
        false
    }
}

/// Makes `mem` the socket's protocol accounting if it has none yet.
fn sk_mem_attach(mem: &Arc<TcpMemory>, tp: &mut TcpSock) {
    if tp.sk_mem.prot.is_none() {
        tp.sk_mem.prot = Some(Arc::clone(mem));
    }
}

/// Whether `size` more bytes (an skb's truesize) may join the receive
/// queues, charging pages if `sk_forward_alloc` does not cover them.
/// Mirrors `sk_rmem_schedule()`.
pub(crate) fn sk_rmem_schedule<C: TcpContext>(
    mem: &Arc<TcpMemory>,
    ctx: &C,
    tp: &mut TcpSock,
    size: u32,
) -> bool {
    let delta = i64::from(size) - sk_forward_alloc(tp);
    delta <= 0 || sk_mem_schedule(mem, ctx, tp, delta, SkMemKind::Recv)
}

/// Whether `size` more bytes may join the write queue, charging pages if
/// `sk_forward_alloc` does not cover them. Mirrors `sk_wmem_schedule()`.
pub(crate) fn sk_wmem_schedule<C: TcpContext>(
    mem: &Arc<TcpMemory>,
    ctx: &C,
    tp: &mut TcpSock,
    size: u32,
) -> bool {
    let delta = i64::from(size) - sk_forward_alloc(tp);
    delta <= 0 || sk_mem_schedule(mem, ctx, tp, delta, SkMemKind::Send)
}

/// Charges the pages `size` bytes need whatever the limits say, so a
/// connection always makes progress (the first skb of an empty queue).
/// Mirrors `sk_forced_mem_schedule()`.
pub(crate) fn sk_forced_mem_schedule<C: TcpContext>(
    mem: &Arc<TcpMemory>,
    ctx: &C,
    tp: &mut TcpSock,
    size: u32,
) {
    let delta = i64::from(size) - sk_forward_alloc(tp);
    if delta <= 0 {
        return;
    }
    let amt = sk_mem_pages(delta);
    sk_mem_attach(mem, tp);
    tp.sk_mem.pages += amt;
    mem.memory_allocated_add(ctx.sysctl(), ctx.cpu(), amt);
}

/// Gives `amt` pages back to the protocol; pressure ends below
/// `tcp_mem[0]`. Mirrors `__sk_mem_reduce_allocated()`.
pub(crate) fn sk_mem_reduce_allocated<C: TcpContext>(mem: &TcpMemory, ctx: &C, amt: i64) {
    mem.memory_allocated_sub(ctx.sysctl(), ctx.cpu(), amt);
    if mem.under_memory_pressure() && mem.memory_allocated() < sk_prot_mem_limits(ctx.sysctl(), 0) {
        tcp_leave_memory_pressure(mem, ctx);
    }
}

/// Returns the whole pages of `sk_forward_alloc` to the protocol. Mirrors
/// `sk_mem_reclaim()` with `__sk_mem_reclaim()`; after the queues are
/// purged it frees everything the socket held.
pub(crate) fn sk_mem_reclaim<C: TcpContext>(ctx: &C, tp: &mut TcpSock) {
    let reclaimable = sk_forward_alloc(tp);
    if reclaimable < SK_MEM_QUANTUM {
        return;
    }
    let Some(prot) = tp.sk_mem.prot.as_deref() else {
        return;
    };
    let amt = (reclaimable / SK_MEM_QUANTUM).min(tp.sk_mem.pages);
    sk_mem_reduce_allocated(prot, ctx, amt);
    tp.sk_mem.pages -= amt;
}

/// Whether the socket's protocol is under memory pressure. Mirrors
/// `tcp_under_memory_pressure()` (false for a socket that never charged
/// memory).
pub(crate) fn tcp_under_memory_pressure(tp: &TcpSock) -> bool {
    tp.sk_mem
        .prot
        .as_ref()
        .is_some_and(|p| p.under_memory_pressure())
}

/// Lowers the window to offer to four segments under memory pressure.
/// Mirrors `tcp_adjust_rcv_ssthresh()` (no `SO_RESERVE_MEM`).
pub(crate) fn tcp_adjust_rcv_ssthresh(tp: &mut TcpSock) {
    tp.rcv_ssthresh = tp.rcv_ssthresh.min(4 * u32::from(tp.advmss));
}

/// How many of `copy` bytes the writer may queue now: all if
/// `sk_wmem_schedule()` grants them, else what `sk_forward_alloc` still
/// covers, with a forced charge up to `tcp_wmem[0]` so a socket with
/// little queued always progresses. 0 means wait for memory (`EAGAIN`).
/// Mirrors `tcp_wmem_schedule()` in `net/ipv4/tcp.c`.
pub(crate) fn tcp_wmem_schedule<C: TcpContext>(
    mem: &Arc<TcpMemory>,
    ctx: &C,
    tp: &mut TcpSock,
    copy: u32,
) -> u32 {
    if sk_wmem_schedule(mem, ctx, tp, copy) {
        return copy;
    }
    let left = ctx.sysctl().tcp_wmem()[0] - i64::from(tp.wmem_queued);
    if left > 0 {
        sk_forced_mem_schedule(mem, ctx, tp, left.min(i64::from(copy)) as u32);
    }
    sk_forward_alloc(tp).clamp(0, i64::from(copy)) as u32
}

/// Whether the host is out of TCP memory for this socket: it queues more
/// than `SOCK_MIN_SNDBUF` for sending while TCP holds more than
/// `tcp_mem[2]` pages. Mirrors `tcp_out_of_memory()`.
pub(crate) fn tcp_out_of_memory<C: TcpContext>(ctx: &C, tp: &TcpSock) -> bool {
    let mem = tp.sk_mem.prot.as_ref();
    tp.wmem_queued > crate::tcp_sock::SOCK_MIN_SNDBUF
        && mem.is_some_and(|m| m.memory_allocated() > sk_prot_mem_limits(ctx.sysctl(), 2))
}

/// Marks the socket orphaned (`SOCK_DEAD`) and counts it. Mirrors
/// `sock_orphan()` followed by `this_cpu_inc(tcp_orphan_count)` in
/// `__tcp_close()` and `inet_child_forget()`.
pub(crate) fn sock_orphan(mem: &TcpMemory, tp: &mut TcpSock) {
    if !tp.dead && !tp.destroyed {
        tp.dead = true;
        mem.orphans.fetch_add(1, Ordering::Relaxed);
    }
}

/// An orphan is being freed: it no longer counts. Mirrors the
/// `this_cpu_dec(*sk->sk_prot->orphan_count)` of
/// `inet_csk_destroy_sock()`; call before `destroyed` is set.
pub(crate) fn tcp_orphan_freed(mem: &TcpMemory, tp: &TcpSock) {
    if tp.dead && !tp.destroyed {
        mem.orphans.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether there are too many orphans: their count, doubled `shift`
/// times, is above `net.ipv4.tcp_max_orphans`. Mirrors
/// `tcp_too_many_orphans()` (which reads the per-CPU counters' cached
/// sum, `tcp_orphan_cache`; here the count is exact).
pub(crate) fn tcp_too_many_orphans(mem: &TcpMemory, sysctl: &Sysctl, shift: u32) -> bool {
    let max = sysctl.get_int(Sysctl::TCP_MAX_ORPHANS).max(0) as u64;
    mem.orphan_count().checked_shl(shift).unwrap_or(u64::MAX) > max
}

/// Whether an orphan must be dropped rather than kept alive: too many
/// orphans (weighted by `shift`) or TCP out of memory. Mirrors
/// `tcp_check_oom()` with its two messages.
pub(crate) fn tcp_check_oom<C: TcpContext>(
    mem: &TcpMemory,
    ctx: &C,
    tp: &TcpSock,
    shift: u32,
) -> bool {
    let too_many_orphans = tcp_too_many_orphans(mem, ctx.sysctl(), shift);
    let oom = tcp_out_of_memory(ctx, tp);
    if too_many_orphans {
        tracing::info!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, "too many orphaned sockets");
    }
    if oom {
        tracing::info!(target: "netstack::tcp", sport = tp.sport, dport = tp.dport, "out of memory -- consider tuning tcp_mem");
    }
    too_many_orphans || oom
}

/// An orphan's retransmission or zero-window probe timer fired: drop it
/// when orphans or memory run short. Mirrors `tcp_out_of_resources()`:
/// an orphan that sent nothing for twice `TCP_RTO_MAX` (or whose caller
/// does not want a reset) counts double, one with a soft error double
/// again; a dropped orphan is reset if it sent within `TCP_TIMEWAIT_LEN`
/// or its window is closed with nothing in flight (or `do_reset`), then
/// finished (`TCPAbortOnMemory`). Returns whether it was dropped.
pub(crate) fn tcp_out_of_resources<C: TcpContext>(
    stack: &crate::tcp::TcpStack,
    ctx: &mut C,
    tp: &mut TcpSock,
    mut do_reset: bool,
) -> bool {
    let idle = ctx.now().saturating_duration_since(tp.lsndtime);
    let mut shift = 0;
    if idle > 2 * crate::tcp_sock::TCP_RTO_MAX || !do_reset {
        shift += 1;
    }
    if tp.sk_err_soft.is_some() {
        shift += 1;
    }
    if !tcp_check_oom(&stack.mem, ctx, tp, shift) {
        return false;
    }
    if idle <= crate::tcp_sock::TCP_TIMEWAIT_LEN || (tp.snd_wnd == 0 && tp.packets_out == 0) {
        do_reset = true;
    }
    if do_reset {
        crate::tcp_output::tcp_send_active_reset(ctx, tp);
    }
    crate::tcp::tcp_done(stack, ctx, tp);
    ctx.mibs()
        .this_cpu(ctx.cpu())
        .inc(LinuxMib::TcpAbortOnMemory);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp_sock::SockId;
    use crate::testutil::{FakeTcpCtx, Net};
    use core::net::Ipv4Addr;
    use netcore::{Duration, Instant, PagePool, PagePoolParams};

    const Q: u32 = SK_MEM_QUANTUM as u32;

    /// A context with `tcp_mem` set and no per-CPU reserve
    /// (`net.core.mem_pcpu_rsv` = 0): every charge reaches
    /// `memory_allocated` at once, so limits of a few pages are exact.
    fn ctx(tcp_mem: &str) -> FakeTcpCtx {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let c = FakeTcpCtx::new(Ipv4Addr::new(198, 18, 0, 1), 1, pool);
        c.sysctl().set("net.ipv4.tcp_mem", tcp_mem).unwrap();
        c.sysctl().set("net.core.mem_pcpu_rsv", "0").unwrap();
        c
    }

    /// With the default reserve (256 pages, `SK_MEMORY_PCPU_RESERVE`) a
    /// CPU's charges reach `memory_allocated` only once they add up to
    /// the reserve, and its returns once they add up to minus the
    /// reserve, as `sk_memory_allocated_add()`/`_sub()` batch them.
    #[test]
    fn charges_reach_memory_allocated_in_batches_of_mem_pcpu_rsv() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let c = FakeTcpCtx::new(Ipv4Addr::new(198, 18, 0, 1), 1, pool);
        let rsv = c.sysctl().get_int(Sysctl::MEM_PCPU_RSV);
        assert_eq!(rsv, netcore::SK_MEMORY_PCPU_RESERVE);
        assert_eq!(rsv, 256);
        let mem = Arc::new(TcpMemory::new());
        let mut tp = sock(1);
        assert!(sk_rmem_schedule(&mem, &c, &mut tp, 255 * Q));
        assert_eq!((tp.sk_mem.pages(), mem.memory_allocated()), (255, 0));
        assert!(sk_rmem_schedule(&mem, &c, &mut tp, 256 * Q));
        // The reserve reached 256: all of it moved to the global count.
        assert_eq!((tp.sk_mem.pages(), mem.memory_allocated()), (256, 256));
        sk_mem_reclaim(&c, &mut tp);
        // 256 pages back to the reserve: -256 moves them at once.
        assert_eq!((tp.sk_mem.pages(), mem.memory_allocated()), (0, 0));
        assert!(sk_rmem_schedule(&mem, &c, &mut tp, 3 * Q));
        sk_mem_reclaim(&c, &mut tp);
        assert_eq!((tp.sk_mem.pages(), mem.memory_allocated()), (0, 0));
        assert_eq!(mem.per_cpu_fw_alloc.sum(), 0);
    }

    fn sock(id: u64) -> TcpSock {
        TcpSock::new(SockId(id), 16384, 131_072, Box::new(crate::Reno))
    }

    fn mib(c: &FakeTcpCtx, f: LinuxMib) -> u64 {
        c.mibs().get(f)
    }

    #[test]
    fn pages_round_up_and_forward_alloc_covers_what_was_charged() {
        assert_eq!(sk_mem_pages(0), 0);
        assert_eq!(sk_mem_pages(1), 1);
        assert_eq!(sk_mem_pages(4096), 1);
        assert_eq!(sk_mem_pages(4097), 2);
        let c = ctx("100 200 300");
        let mem = Arc::new(TcpMemory::new());
        let mut tp = sock(1);
        assert!(sk_rmem_schedule(&mem, &c, &mut tp, 3000));
        assert_eq!((tp.sk_mem.pages(), mem.memory_allocated()), (1, 1));
        tp.rmem_alloc += 3000;
        assert_eq!(sk_forward_alloc(&tp), 1096);
        // Covered by sk_forward_alloc: nothing global changes.
        assert!(sk_rmem_schedule(&mem, &c, &mut tp, 1000));
        assert_eq!(mem.memory_allocated(), 1);
        // Beyond it: the pages for what it does not cover are charged.
        assert!(sk_rmem_schedule(&mem, &c, &mut tp, 2 * Q));
        assert_eq!(mem.memory_allocated(), 3);
        assert_eq!(sk_forward_alloc(&tp), 3 * i64::from(Q) - 3000);
        // Freeing the data gives the whole pages back.
        tp.rmem_alloc = 0;
        sk_mem_reclaim(&c, &mut tp);
        assert_eq!((tp.sk_mem.pages(), mem.memory_allocated()), (0, 0));
        assert_eq!(mib(&c, LinuxMib::TcpMemoryPressures), 0);
    }

    #[test]
    fn pressure_starts_above_tcp_mem_1_and_ends_below_tcp_mem_0_with_its_duration() {
        let mut c = ctx("2 4 6");
        let mem = Arc::new(TcpMemory::new());
        let mut a = sock(1);
        mem.sockets_allocated_inc();
        // Four pages: at the pressure level, not above it.
        assert!(sk_rmem_schedule(&mem, &c, &mut a, 4 * Q));
        assert!(!mem.under_memory_pressure());
        a.rmem_alloc = 4 * Q;
        // The fifth page starts pressure (counted once); a socket above
        // tcp_rmem[0] but under its fair share (6 pages for 1 socket)
        // still gets it.
        c.set_now(Instant::ZERO + Duration::from_secs(1));
        assert!(sk_rmem_schedule(&mem, &c, &mut a, Q));
        assert!(mem.under_memory_pressure());
        assert!(tcp_under_memory_pressure(&a));
        assert_eq!(mib(&c, LinuxMib::TcpMemoryPressures), 1);
        a.rmem_alloc += Q;
        // A sixth page would be its whole share: refused, nothing kept.
        assert!(!sk_rmem_schedule(&mem, &c, &mut a, Q));
        assert_eq!((a.sk_mem.pages(), mem.memory_allocated()), (5, 5));
        // A socket below tcp_rmem[0] is guaranteed its minimum...
        let mut b = sock(2);
        assert!(sk_rmem_schedule(&mem, &c, &mut b, 100));
        b.rmem_alloc = 100;
        assert_eq!(mem.memory_allocated(), 6);
        // ...but never past tcp_mem[2].
        assert!(!sk_rmem_schedule(&mem, &c, &mut b, Q));
        assert_eq!((b.sk_mem.pages(), mem.memory_allocated()), (1, 6));
        assert_eq!(mib(&c, LinuxMib::TcpMemoryPressures), 1);
        // Reading down to five pages keeps pressure; below two ends it.
        c.set_now(Instant::ZERO + Duration::from_millis(1250));
        a.rmem_alloc = 4 * Q;
        sk_mem_reclaim(&c, &mut a);
        assert_eq!(mem.memory_allocated(), 5);
        assert!(mem.under_memory_pressure());
        a.rmem_alloc = 0;
        sk_mem_reclaim(&c, &mut a);
        assert_eq!(mem.memory_allocated(), 1);
        assert!(!mem.under_memory_pressure());
        assert_eq!(mib(&c, LinuxMib::TcpMemoryPressuresChrono), 250);
    }

    #[test]
    fn under_pressure_small_sockets_and_fair_shares_are_granted_large_ones_refused() {
        let c = ctx("1 2 8");
        let mem = Arc::new(TcpMemory::new());
        for _ in 0..2 {
            mem.sockets_allocated_inc();
        }
        let mut big = sock(1);
        assert!(sk_rmem_schedule(&mem, &c, &mut big, 5 * Q));
        big.rmem_alloc = 5 * Q;
        assert!(mem.under_memory_pressure());
        // big holds 5 pages; 2 sockets * 5 > 8: above its share.
        assert!(!sk_rmem_schedule(&mem, &c, &mut big, Q));
        // A socket below tcp_rmem[0] (4096) is guaranteed its minimum.
        let mut small = sock(2);
        assert!(sk_rmem_schedule(&mem, &c, &mut small, 1000));
        assert_eq!(mem.memory_allocated(), 6);
        // The first skb of an empty queue is charged whatever the limits.
        let mut forced = sock(3);
        sk_forced_mem_schedule(&mem, &c, &mut forced, 3 * Q);
        assert_eq!((forced.sk_mem.pages(), mem.memory_allocated()), (3, 9));
        // Freed sockets give their pages back.
        drop(forced);
        drop(small);
        drop(big);
        assert_eq!(mem.memory_allocated(), 0);
    }

    #[test]
    fn send_memory_is_refused_past_the_hard_limit_except_below_tcp_wmem_0() {
        let c = ctx("1 2 4");
        let mem = Arc::new(TcpMemory::new());
        mem.sockets_allocated_inc();
        let mut tp = sock(1);
        tp.sndbuf = 1 << 20;
        assert_eq!(tcp_wmem_schedule(&mem, &c, &mut tp, 4 * Q), 4 * Q);
        tp.wmem_queued = 4 * Q;
        // Over tcp_mem[2] with tcp_wmem[0] queued: nothing more.
        assert_eq!(tcp_wmem_schedule(&mem, &c, &mut tp, 2000), 0);
        assert_eq!(mem.memory_allocated(), 4);
        // A writer with (almost) nothing queued may go up to tcp_wmem[0].
        let mut w = sock(2);
        w.sndbuf = 1 << 20;
        let got = tcp_wmem_schedule(&mem, &c, &mut w, 10_000);
        assert_eq!(got, 4096);
        // A queue already at SO_SNDBUF is granted (it blocks on the buffer).
        tp.sndbuf = 4 * Q;
        assert_eq!(tcp_wmem_schedule(&mem, &c, &mut tp, 100), 100);
    }

    /// Two writers on a host with `tcp_mem` = 2 4 6 pages whose segments
    /// are not acknowledged (the path drops them): the first fills its
    /// send buffer, the second gets `tcp_wmem[0]` and then `EAGAIN` with
    /// room left in its buffer; once ACKs free memory it writes again.
    #[test]
    fn a_writer_past_tcp_mem_gets_eagain_until_acks_free_memory() {
        let mut net = Net::new(2);
        net.hosts[0]
            .ctx
            .sysctl()
            .set("net.ipv4.tcp_mem", "2 4 6")
            .unwrap();
        // No per-CPU reserve: limits of a few pages are exact.
        net.hosts[0]
            .ctx
            .sysctl()
            .set("net.core.mem_pcpu_rsv", "0")
            .unwrap();
        let pairs: Vec<_> = (0..2).map(|i| net.connect_pair(80 + i)).collect();
        let from = net.addr(0);
        net.set_drop_filter(move |seg| seg.src == from && !seg.is_empty());
        let data = vec![0x42u8; 64 * 1024];
        let (a, b) = (&pairs[0].0, &pairs[1].0);
        // 16 KiB send buffers, set by the user so tcp_sndbuf_expand()
        // leaves them.
        for sk in [a, b] {
            net.setsockopt(0, sk, crate::SockOpt::SndBuf(8192)).unwrap();
        }
        // The first writer fills its 16 KiB send buffer (five pages).
        let mut sent_a = 0;
        while let Ok(n) = net.send(0, a, &data) {
            sent_a += n;
        }
        assert!(sent_a >= 12_000, "first writer queued {sent_a}");
        let pages = net.hosts[0].stack.memory().memory_allocated();
        assert!(pages >= 4, "{pages} pages for a full send buffer");
        // The second is held to about tcp_wmem[0], then refused.
        let mut sent_b = 0;
        let err = loop {
            match net.send(0, b, &data) {
                Ok(n) => sent_b += n,
                Err(e) => break e,
            }
        };
        assert_eq!(err, netcore::Errno::Again);
        assert!(
            sent_b > 0 && sent_b <= 4096,
            "second writer queued {sent_b}"
        );
        assert!(
            b.lock().sk_stream_memory_free(u32::MAX, 0),
            "refused with buffer room"
        );
        // Past tcp_mem[2] only the forced tcp_wmem[0] was added (the first
        // writer may have gone past it while filling an skb beyond its
        // SO_SNDBUF, which Linux grants too).
        let h = &net.hosts[0];
        assert!(h.stack.memory().memory_allocated() <= pages.max(6) + 2);
        assert!(mib(&h.ctx, LinuxMib::TcpMemoryPressures) >= 1);
        // The path heals: retransmissions are acknowledged, memory is
        // freed, and the second writer is taken again.
        net.clear_drop_filter();
        let mut more = 0;
        for _ in 0..3_000 {
            net.run_for_ms(1);
            if let Ok(n) = net.send(0, b, &data[..1000]) {
                more += n;
                break;
            }
        }
        assert_eq!(more, 1000, "the writer stayed refused after ACKs");
    }

    /// Closing a socket with unacknowledged data while TCP is past
    /// `tcp_mem[2]` does not leave an orphan: it is reset and freed
    /// (`TCPAbortOnMemory`), and its pages return.
    #[test]
    fn close_past_tcp_mem_resets_instead_of_keeping_an_orphan() {
        let mut net = Net::new(2);
        // No per-CPU reserve: the pages held are in memory_allocated.
        net.hosts[0]
            .ctx
            .sysctl()
            .set("net.core.mem_pcpu_rsv", "0")
            .unwrap();
        let (c, _s) = net.connect_pair(80);
        let from = net.addr(0);
        net.set_drop_filter(move |seg| seg.src == from && !seg.is_empty());
        let mut queued = 0;
        while let Ok(n) = net.send(0, &c, &[7u8; 4096]) {
            queued += n;
        }
        assert!(queued > 8192);
        let pages = net.hosts[0].stack.memory().memory_allocated();
        // A hard limit below what is held: the next close finds TCP out
        // of memory.
        net.hosts[0]
            .ctx
            .sysctl()
            .set("net.ipv4.tcp_mem", "1 1 1")
            .unwrap();
        assert!(pages > 1);
        net.clear_drop_filter();
        net.close(0, &c);
        let h = &net.hosts[0];
        assert_eq!(c.state(), crate::TcpState::Close);
        assert_eq!(mib(&h.ctx, LinuxMib::TcpAbortOnMemory), 1);
        assert_eq!(h.stack.memory().memory_allocated(), 0);
        net.run_for_ms(5);
        assert!(
            net.log
                .iter()
                .any(|s| s.src == from && s.tcp.flags.contains(wire::TcpFlags::RST)),
            "no RST for the aborted connection"
        );
    }

    /// Closes the client end of `n` connections whose peers never answer
    /// (everything from host 1 is dropped), so each stays an orphan in
    /// FIN-WAIT-1 retransmitting its FIN.
    fn orphans(net: &mut Net, n: u16) -> Vec<Arc<crate::TcpSocket>> {
        let pairs: Vec<_> = (0..n).map(|i| net.connect_pair(80 + i)).collect();
        let peer = net.addr(1);
        net.set_drop_filter(move |seg| seg.src == peer);
        pairs
            .into_iter()
            .map(|(c, _s)| {
                net.close(0, &c);
                net.run_for_ms(1);
                c
            })
            .collect()
    }

    fn rsts_from(net: &Net, from: Ipv4Addr, port: u16) -> usize {
        net.log
            .iter()
            .filter(|s| {
                s.src == from && s.tcp.dst_port == port && s.tcp.flags.contains(wire::TcpFlags::RST)
            })
            .count()
    }

    /// `tcp_max_orphans` = 2: the third connection closed while two
    /// orphans live is reset at once instead of orphaned
    /// (`TCPAbortOnMemory`), the two keep retransmitting their FINs.
    #[test]
    fn a_close_past_tcp_max_orphans_resets_the_connection() {
        let mut net = Net::new(2);
        net.hosts[0]
            .ctx
            .sysctl()
            .set("net.ipv4.tcp_max_orphans", "2")
            .unwrap();
        let from = net.addr(0);
        let socks = orphans(&mut net, 3);
        let h = &net.hosts[0];
        assert_eq!(h.stack.memory().orphan_count(), 2);
        assert_eq!(mib(&h.ctx, LinuxMib::TcpAbortOnMemory), 1);
        assert_eq!(socks[0].state(), crate::TcpState::FinWait1);
        assert_eq!(socks[1].state(), crate::TcpState::FinWait1);
        assert_eq!(socks[2].state(), crate::TcpState::Close);
        assert_eq!(rsts_from(&net, from, 82), 1, "the third is reset");
        assert_eq!(rsts_from(&net, from, 80) + rsts_from(&net, from, 81), 0);
        // The orphans are freed when they finish: the count follows.
        net.clear_drop_filter();
        net.run_for_ms(3_000);
        assert_eq!(net.hosts[0].stack.memory().orphan_count(), 0);
        assert_eq!(mib(&net.hosts[0].ctx, LinuxMib::TcpAbortOnMemory), 1);
    }

    /// Orphans already alive when `tcp_max_orphans` is lowered are
    /// dropped by their retransmission timer (`tcp_out_of_resources()`):
    /// reset while above the limit, the rest keep going.
    #[test]
    fn orphans_over_a_lowered_limit_are_reset_by_their_timer() {
        let mut net = Net::new(2);
        let from = net.addr(0);
        let socks = orphans(&mut net, 3);
        assert_eq!(net.hosts[0].stack.memory().orphan_count(), 3);
        assert_eq!(mib(&net.hosts[0].ctx, LinuxMib::TcpAbortOnMemory), 0);
        net.hosts[0]
            .ctx
            .sysctl()
            .set("net.ipv4.tcp_max_orphans", "1")
            .unwrap();
        // The FINs' retransmission timers fire within the first RTO.
        net.run_for_ms(1_500);
        let h = &net.hosts[0];
        assert_eq!(h.stack.memory().orphan_count(), 1);
        assert_eq!(mib(&h.ctx, LinuxMib::TcpAbortOnMemory), 2);
        let closed = socks
            .iter()
            .filter(|c| c.state() == crate::TcpState::Close)
            .count();
        assert_eq!(closed, 2);
        let rsts: usize = (80..83).map(|p| rsts_from(&net, from, p)).sum();
        assert_eq!(rsts, 2);
    }

    /// Three senders into one host that does not read, `tcp_mem` = 4 8 12
    /// pages there: its TCP memory stays near the hard limit, drops are
    /// counted, and once it reads everything arrives byte-exact and
    /// pressure ends.
    #[test]
    fn a_host_that_does_not_read_stays_under_tcp_mem_and_recovers_exact() {
        let mut net = Net::new(2);
        net.hosts[1]
            .ctx
            .sysctl()
            .set("net.ipv4.tcp_mem", "4 8 12")
            .unwrap();
        // No per-CPU reserve: limits of a few pages are exact.
        net.hosts[1]
            .ctx
            .sysctl()
            .set("net.core.mem_pcpu_rsv", "0")
            .unwrap();
        let pairs: Vec<_> = (0..3).map(|i| net.connect_pair(80 + i)).collect();
        let data: Vec<u8> = (0..150_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut sent = [0usize; 3];
        let mut peak = 0i64;
        for _ in 0..400 {
            for ((c, _), n) in pairs.iter().zip(sent.iter_mut()) {
                if let Ok(k) = net.send(0, c, &data[*n..]) {
                    *n += k;
                }
            }
            net.run_for_ms(1);
            peak = peak.max(net.hosts[1].stack.memory().memory_allocated());
        }
        let h = &net.hosts[1];
        let drops = mib(&h.ctx, LinuxMib::TcpRcvQDrop) + mib(&h.ctx, LinuxMib::TcpOfoDrop);
        assert!(mib(&h.ctx, LinuxMib::TcpMemoryPressures) >= 1);
        assert!(drops > 0, "nothing was refused at tcp_mem = 4 8 12");
        // The hard limit, plus one forced skb per socket.
        assert!(peak <= 12 + 3, "TCP held {peak} pages");
        let queued: u32 = pairs.iter().map(|(_, s)| s.lock().rmem_alloc).sum();
        assert!(queued <= 15 * Q, "{queued} bytes queued");
        // The reader comes back: every byte, in order, on every connection.
        let mut got = vec![Vec::new(); 3];
        let mut buf = vec![0u8; 65536];
        for _ in 0..20_000 {
            for (((c, s), n), g) in pairs.iter().zip(sent.iter_mut()).zip(got.iter_mut()) {
                if *n < data.len()
                    && let Ok(k) = net.send(0, c, &data[*n..])
                {
                    *n += k;
                }
                while let Ok(k) = net.recv(1, s, &mut buf) {
                    g.extend_from_slice(&buf[..k]);
                }
            }
            if got.iter().all(|g| g.len() == data.len()) {
                break;
            }
            net.run_for_ms(1);
        }
        for g in &got {
            assert!(*g == data, "{} bytes, not byte-exact", g.len());
        }
        let h = &net.hosts[1];
        assert!(!h.stack.memory().under_memory_pressure());
        assert!(mib(&h.ctx, LinuxMib::TcpMemoryPressuresChrono) > 0);
        assert!(h.stack.memory().memory_allocated() <= 3);
    }
}
