//! Sockets on a host: UDP registered at boot, the host's socket layer, and
//! how an application's system calls reach a CPU.
//!
//! Mirrors three pieces of Linux: `inet_init()` registering UDP
//! (`inet_add_protocol(&udp_protocol, IPPROTO_UDP)`, `udp_table_init()`,
//! `inet_register_protosw()` for `SOCK_DGRAM`); the `struct net` fields UDP
//! reads (`net->ipv4.udp_table`); and a system call running in process
//! context on the CPU its task is scheduled on, with bottom halves off
//! (`local_bh_disable()`), so the transmit path of a `sendto` uses that
//! CPU's `softnet_data` and timer wheel.
//!
//! ```text
//!  application ── netstack::UdpSocket / host.socket_layer() ── SocketLayer<HostSockets>
//!                                                                 │ with_ctx(f)
//!    lent CPU context (app_on / Host::app / Network::app) ◄───────┤ 1. this thread holds a lent CPU
//!    the CPU thread hands its context over (thread runtime) ◄─────┤ 2. another thread (blocking calls)
//!    a context built for the call, timers handed to the CPU ◄─────┘ 3. outside any CPU (simulation set-up)
//! ```
//!
//! # Deviations from Linux
//!
//! - A CPU context belongs to its runner (the simulation loop or a CPU
//!   thread), so "running on a CPU" is a lend: application code given to
//!   [`HostShared::app_on`], [`Host::app`] or [`Network::app`] runs with the
//!   CPU's context moved into the calling thread's stack of lends (only
//!   that thread uses it, as only the task running on a CPU uses its
//!   per-CPU data), where the socket layer finds it; the CPU runs nothing
//!   else meanwhile (as with bottom halves off). On the thread runtime a
//!   call from an application thread asks the CPU thread for its context
//!   and waits for it.
//! - A call made outside any CPU while no thread runtime runs the host
//!   (set-up code between simulation steps) runs on a context built for the
//!   call: what it queued for transmission is flushed at once
//!   (`net_tx_action`), and the timers it armed (ARP) and cancelled (a
//!   socket closed between steps stops its retransmit timer) are applied
//!   to the application CPU's wheel when that CPU next runs. The call
//!   does not see the timers already on that wheel: its context says so
//!   (`TimerContext::timers_complete` is `false`), and a cancel or re-arm
//!   returns no previous expiry for them.

use std::cell::RefCell;
use std::net::{SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use ipv4::Prandom;
use netcore::{Clock, Duration, Instant, Sysctl};
use parking_lot::{Condvar, Mutex};
use socket::{SocketHost, SocketLayer, UdpProtosw};
use udp::{UdpNetContext, UdpTable};

use crate::cpu::{CpuClock, CpuCtx, CpuTimers};
use crate::error::NetstackError;
use crate::host::{Host, HostShared};
use crate::network::Network;

/// How long a call from an application thread waits for a CPU thread to
/// hand over its context before it runs on a context built for the call
/// (the runtime is stopping).
pub const CPU_HANDOFF_TIMEOUT: Duration = Duration::from_secs(1);

/// A host's socket layer.
pub type HostSocketLayer = SocketLayer<HostSockets>;

/// The transport state of a host (part of [`HostShared`]).
///
/// Mirrors the `struct net` fields of the transports: `udp_table`
/// (`udp_table_init()`), and the host's socket layer (`inetsw`, the fd
/// table).
pub struct Transports {
    /// The UDP socket table (`net->ipv4.udp_table`).
    pub udp: UdpTable,
    /// The host's TCP (`tcp_hashinfo`, the sockets and their wake-ups).
    pub tcp: crate::tcp::HostTcp,
    rng: Mutex<Prandom>,
    layer: Arc<HostSocketLayer>,
}

impl std::fmt::Debug for Transports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transports")
            .field("udp", &self.udp)
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl Transports {
    /// The transports of a host with `cpus` CPUs, seeded with `seed`
    /// (`udp_ehash_secret`, ephemeral ports).
    pub(crate) fn new(
        seed: u64,
        cpus: usize,
        sysctl: &Arc<Sysctl>,
        clock: &Arc<dyn Clock>,
    ) -> Transports {
        let mut rng = Prandom::new(seed ^ 0x7564_7073_6f63_6b73);
        let secret = (rng.next_u64() >> 32) as u32;
        let host = Arc::new(HostSockets {
            host: OnceLock::new(),
            clock: Arc::clone(clock),
            sysctl: Arc::clone(sysctl),
            cpus: cpus.max(1),
            threaded: AtomicBool::new(false),
            remote: Mutex::new(()),
            app_cpu: AtomicUsize::new(0),
        });
        let layer = SocketLayer::new(host);
        layer.inet_register_protosw(Arc::new(UdpProtosw));
        let tcp = crate::tcp::HostTcp::new(seed, sysctl);
        layer.inet_register_protosw(Arc::new(tcp.protosw()));
        Transports {
            udp: UdpTable::new(secret),
            tcp,
            rng: Mutex::new(rng),
            layer,
        }
    }
}

/// Registers the transports with IPv4 on a host being built (after
/// `ipv4::inet_init`), as `inet_init()` does after ICMP.
pub(crate) fn inet_init_transports(ctx: &mut CpuCtx) -> Result<(), NetstackError> {
    let _ = ctx
        .host
        .transports
        .layer
        .host()
        .host
        .set(Arc::downgrade(&ctx.host));
    udp::udp_add_protocol(ctx)
        .map_err(|e| NetstackError::Config(format!("inet_add_protocol(udp): {e}")))?;
    crate::tcp::tcp_add_protocol(ctx)
}

impl UdpNetContext for CpuCtx {
    fn udp_table(&self) -> &UdpTable {
        &self.host.transports.udp
    }

    fn cpu_id(&self) -> usize {
        self.cpu
    }

    fn prandom_u32(&mut self) -> u32 {
        (self.host.transports.rng.lock().next_u64() >> 32) as u32
    }

    #[inline]
    fn udp_rcv_cache(&mut self) -> Option<&mut udp::UdpRcvCache> {
        Some(&mut self.udp_rcv)
    }
}

/// A CPU context lent to application code on the calling thread: the
/// address of the [`HostSockets`] lending, and the context (boxed, so that
/// lending and giving it back move a pointer, not the context; `None`
/// while a socket call of the thread runs on it).
///
/// Mirrors `current` running on a CPU with bottom halves off: only the
/// task that runs there uses the CPU's `softnet_data` and timers. Only the
/// lending thread ever uses a lent context, so the lends live in a
/// thread-local stack ([`LENDS`]), not in a slot of the host other threads
/// would have to lock past: a lend costs no atomic operation.
struct Lend {
    host: usize,
    ctx: Option<Box<CpuCtx>>,
}

std::thread_local! {
    /// The lends the calling thread runs, innermost last (a lend of one
    /// host can run inside another's, and of the same host inside that).
    static LENDS: RefCell<Vec<Lend>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the calling thread's lends; `None` when they cannot be
/// reached (the thread's locals are being destroyed, or a borrow is
/// live, which no code path leaves across a call): as if no lend ran.
#[inline(always)]
fn with_lends<R>(f: impl FnOnce(&mut Vec<Lend>) -> R) -> Option<R> {
    LENDS
        .try_with(|l| l.try_borrow_mut().ok().map(|mut l| f(&mut l)))
        .ok()
        .flatten()
}

/// What the socket layer of a host needs from it: a CPU context for each
/// call, the clock, the sysctls, and whether a caller may sleep.
///
/// Mirrors the task side of a system call: `current` running on a CPU
/// (`smp_processor_id()`), sleeping in `schedule_timeout()` when it may.
pub struct HostSockets {
    host: OnceLock<Weak<HostShared>>,
    clock: Arc<dyn Clock>,
    sysctl: Arc<Sysctl>,
    /// The host's CPUs (lends themselves live in [`LENDS`]).
    cpus: usize,
    threaded: AtomicBool,
    remote: Mutex<()>,
    app_cpu: AtomicUsize,
}

impl std::fmt::Debug for HostSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSockets")
            .field("threaded", &self.threaded.load(Ordering::Relaxed))
            .field("app_cpu", &self.app_cpu.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Puts a lent context back in its runner's hands, even if the
/// application code panicked.
struct LendGuard<'a> {
    home: Home<'a>,
    /// Where the lend sits in [`LENDS`]; `None` if the thread's locals
    /// could not be reached (the lend then holds the context itself and
    /// socket calls do not find it).
    index: Option<usize>,
    /// The context, when it is not in [`LENDS`] (see `index`).
    kept: Option<Box<CpuCtx>>,
    /// The context is back in its runner's hands (the lend ended
    /// normally): the drop has nothing to put back.
    returned: bool,
}

/// Where a lent context goes back to.
enum Home<'a> {
    /// A runner that keeps its context boxed ([`Host::app`]): the boxes
    /// are swapped.
    Boxed(&'a mut Box<CpuCtx>),
    /// A runner's context reached by reference (process work queued with
    /// [`HostShared::app_on`]): the contents are swapped back.
    Inline(&'a mut CpuCtx),
}

impl<'a> LendGuard<'a> {
    /// Lends `real` to the calling thread's socket calls on `host`, as
    /// the thread's innermost lend, until the guard drops.
    #[inline]
    fn new(host: &HostSockets, home: Home<'a>, real: Box<CpuCtx>) -> Self {
        let mut real = Some(real);
        let index = with_lends(|l| {
            l.push(Lend {
                host: std::ptr::from_ref(host).addr(),
                ctx: real.take(),
            });
            l.len() - 1
        });
        LendGuard {
            home,
            index,
            kept: real,
            returned: false,
        }
    }

    /// Puts the context back; returns the placeholder that stood in for
    /// it (`None` if the context was already back). Inlined into the
    /// lends, where it ends every call; the drop's call is the cold path.
    #[inline(always)]
    fn give_back(&mut self) -> Option<Box<CpuCtx>> {
        if self.returned {
            return None;
        }
        self.returned = true;
        let mut real = match self.index {
            // Lends end innermost first: this one is the last (truncate
            // also drops any a forgotten guard left above it).
            Some(i) => with_lends(|l| {
                let ctx = l.get_mut(i).and_then(|e| e.ctx.take());
                l.truncate(i);
                ctx
            })
            .flatten(),
            None => self.kept.take(),
        }?;
        match &mut self.home {
            Home::Boxed(ctx) => Some(std::mem::replace(*ctx, real)),
            Home::Inline(ctx) => {
                std::mem::swap(*ctx, &mut *real);
                Some(real)
            }
        }
    }
}

impl LendGuard<'_> {
    /// [`LendGuard::give_back`] for a lend that did not end normally
    /// (its code panicked).
    #[cold]
    #[inline(never)]
    fn give_back_on_unwind(&mut self) {
        drop(self.give_back());
    }
}

impl Drop for LendGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // The placeholder, if the lend did not end normally, is dropped.
        if !self.returned {
            self.give_back_on_unwind();
        }
    }
}

/// A lent context a socket call runs on, taken out of its [`LENDS`]
/// entry; put back when the call ends, also on unwind.
struct InUse {
    index: usize,
    ctx: Option<Box<CpuCtx>>,
}

impl Drop for InUse {
    #[inline]
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            // The entry outlives the call (its lend ends after it).
            let _ = with_lends(|l| {
                if let Some(e) = l.get_mut(self.index) {
                    e.ctx = Some(ctx);
                }
            });
        }
    }
}

/// The hand-over of a CPU thread's context to an application thread.
enum Handoff {
    Waiting,
    Offered(Box<CpuCtx>),
    InUse,
    Returned(Box<CpuCtx>),
    Cancelled,
}

struct HandoffCell {
    state: Mutex<Handoff>,
    cv: Condvar,
}

impl HostSockets {
    fn shared(&self) -> Option<Arc<HostShared>> {
        self.host.get().and_then(Weak::upgrade)
    }

    /// The CPU application threads' calls run on (0 by default).
    pub fn app_cpu(&self) -> usize {
        self.app_cpu.load(Ordering::Relaxed)
    }

    /// Sets the CPU application threads' calls run on (`taskset`); errors
    /// name `cpu` when the host has no such CPU.
    pub fn set_app_cpu(&self, cpu: usize) -> Result<(), NetstackError> {
        if cpu >= self.cpus {
            return Err(NetstackError::bad_arg("cpu", "a CPU of the host"));
        }
        self.app_cpu.store(cpu, Ordering::Relaxed);
        Ok(())
    }

    /// Whether a thread runtime runs the host's CPUs.
    #[inline]
    pub fn threaded(&self) -> bool {
        self.threaded.load(Ordering::Acquire)
    }

    /// Told by the thread runtime when it starts and stops running the
    /// host.
    pub(crate) fn set_threaded(&self, on: bool) {
        self.threaded.store(on, Ordering::Release);
    }

    /// Whether the calling thread runs a lend of this host's CPUs.
    fn lent_here(&self) -> bool {
        let me = std::ptr::from_ref(self).addr();
        with_lends(|l| l.iter().any(|e| e.host == me)).unwrap_or(false)
    }

    /// Takes the context of this host's innermost lend on the calling
    /// thread that no socket call of the thread runs on already (a call
    /// inside another passes over the one in use).
    #[inline]
    fn take_lent(&self) -> Option<InUse> {
        let me = std::ptr::from_ref(self).addr();
        with_lends(|l| {
            l.iter_mut()
                .enumerate()
                .rev()
                .find(|(_, e)| e.host == me && e.ctx.is_some())
                .map(|(index, e)| InUse {
                    index,
                    ctx: e.ctx.take(),
                })
        })
        .flatten()
    }

    /// Runs `f` with `ctx` lent to this thread's socket calls (a
    /// context the runner does not keep boxed: it is swapped into a box
    /// holding a stand-in, and back).
    fn lend<R>(&self, ctx: &mut CpuCtx, f: impl FnOnce() -> R) -> R {
        let mut real = Box::new(scratch_ctx(&ctx.host, ctx.cpu, ctx.clock.clone()));
        std::mem::swap(ctx, &mut *real);
        let mut guard = LendGuard::new(self, Home::Inline(ctx), real);
        let r = f();
        drop(guard.give_back());
        r
    }

    /// [`HostSockets::lend`] with `spare` (a placeholder an earlier lend
    /// handed back, or `None`) standing in for the CPU meanwhile; returns
    /// the placeholder for the next lend, so a runner that keeps it builds
    /// none per call.
    fn lend_with<R>(
        &self,
        ctx: &mut Box<CpuCtx>,
        spare: Option<Box<CpuCtx>>,
        f: impl FnOnce() -> R,
    ) -> (R, Option<Box<CpuCtx>>) {
        let placeholder = match spare {
            // Nothing runs on a placeholder (the runner that owns the CPU
            // is the one lending it), so one that armed no timer is as
            // new; the check keeps that true if it ever is not.
            Some(p) if p.cpu == ctx.cpu && p.timers.len() == 0 => p,
            _ => Box::new(scratch_ctx(&ctx.host, ctx.cpu, ctx.clock.clone())),
        };
        let real = std::mem::replace(ctx, placeholder);
        let mut guard = LendGuard::new(self, Home::Boxed(ctx), real);
        let r = f();
        let placeholder = guard.give_back();
        (r, placeholder)
    }

    /// Asks the application CPU's thread for its context, runs `f` with
    /// it, and gives it back. `Err(f)` when no context came in time.
    fn with_remote_ctx<R, F: FnOnce(&mut CpuCtx) -> R>(
        &self,
        host: &Arc<HostShared>,
        f: F,
    ) -> Result<R, F> {
        let _one_at_a_time = self.remote.lock();
        let cpu = self.app_cpu();
        let cell = Arc::new(HandoffCell {
            state: Mutex::new(Handoff::Waiting),
            cv: Condvar::new(),
        });
        let mut placeholder = Box::new(scratch_ctx(host, cpu, CpuClock::new(&self.clock)));
        let theirs = Arc::clone(&cell);
        host.run_on(cpu, move |ctx| {
            let mut st = theirs.state.lock();
            if !matches!(*st, Handoff::Waiting) {
                return;
            }
            std::mem::swap(ctx, &mut *placeholder);
            *st = Handoff::Offered(placeholder);
            theirs.cv.notify_all();
            loop {
                if let Handoff::Returned(_) = &*st
                    && let Handoff::Returned(mut real) =
                        std::mem::replace(&mut *st, Handoff::Waiting)
                {
                    std::mem::swap(ctx, &mut *real);
                    return;
                }
                theirs.cv.wait(&mut st);
            }
        });
        let deadline = std::time::Instant::now() + CPU_HANDOFF_TIMEOUT;
        let mut st = cell.state.lock();
        let real = loop {
            if let Handoff::Offered(_) = &*st
                && let Handoff::Offered(c) = std::mem::replace(&mut *st, Handoff::InUse)
            {
                break c;
            }
            if cell.cv.wait_until(&mut st, deadline).timed_out() && matches!(*st, Handoff::Waiting)
            {
                *st = Handoff::Cancelled;
                return Err(f);
            }
        };
        drop(st);
        let mut back = GiveBack {
            cell: &cell,
            ctx: Some(real),
        };
        match back.ctx.as_mut() {
            Some(ctx) => Ok(f(ctx)),
            None => Err(f),
        }
    }
}

/// Gives a handed-over context back to its CPU thread, even if the call
/// panicked.
struct GiveBack<'a> {
    cell: &'a HandoffCell,
    ctx: Option<Box<CpuCtx>>,
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.ctx.take() {
            *self.cell.state.lock() = Handoff::Returned(c);
            self.cell.cv.notify_all();
        }
    }
}

/// A context for CPU `cpu` of `host` that no runner owns: a stand-in
/// while the real one is lent, or the context of a call made outside any
/// CPU.
fn scratch_ctx(host: &Arc<HostShared>, cpu: usize, clock: CpuClock) -> CpuCtx {
    let cpu = cpu.min(host.nr_cpus() - 1);
    CpuCtx {
        cpu,
        sd: host
            .softnet
            .softnet_data(cpu)
            .unwrap_or_else(|_| unreachable_cpu(host)),
        // No allocation: the wheel is built only if the call arms a timer.
        timers: CpuTimers::new(clock.now()),
        clock,
        host: Arc::clone(host),
        tcp_trace: None,
        tcp_dst: None,
        xmit_dev: ipv4::XmitDevCache::default(),
        udp_rcv: udp::UdpRcvCache::default(),
    }
}

/// CPU 0's softnet data: every host has CPU 0, and `cpu` was clamped to
/// the host's CPUs, so the first lookup cannot fail; this keeps the
/// function total.
fn unreachable_cpu(host: &Arc<HostShared>) -> softnet::SoftnetData<CpuCtx> {
    match host.softnet.softnet_data(0) {
        Ok(sd) => sd,
        Err(e) => panic!("host {} has no CPU 0: {e}", host.name),
    }
}

/// Runs `f` on a context built for the call, then flushes what it queued
/// for transmission and hands its timers to the application CPU.
fn with_scratch_ctx<R>(
    host: &Arc<HostShared>,
    cpu: usize,
    clock: &Arc<dyn Clock>,
    f: impl FnOnce(&mut CpuCtx) -> R,
) -> R {
    let mut ctx = scratch_ctx(host, cpu, CpuClock::new(clock));
    ctx.timers = CpuTimers::detached(clock.now());
    let r = f(&mut ctx);
    softnet::net_tx_action(&mut ctx);
    let mut timers = Vec::new();
    while let Some(t) = ctx.timers.pop_expired(Instant::MAX) {
        timers.push(t);
    }
    let cancels = ctx.timers.take_cancels();
    if timers.is_empty() && cancels.is_empty() {
        // The call may have rung a doorbell or left softirq work: the
        // runner looks at the CPU and its host's devices again.
        host.wakeup.kick(ctx.cpu);
    } else {
        // On the CPU's own wheel: what the call cancelled (timers armed
        // there before it), then what it armed (mod_timer moves a pending
        // one), so each id ends as the call left it.
        host.run_on(ctx.cpu, move |c| {
            for id in cancels {
                c.timers.cancel(id);
            }
            for (id, at) in timers {
                c.timers.arm(id, at);
            }
        });
    }
    r
}

impl SocketHost for HostSockets {
    type Ctx = CpuCtx;

    /// # Panics
    ///
    /// When the host was dropped while its socket layer is still used
    /// (the [`UdpSocket`] wrapper keeps its host alive, so only a bare
    /// [`SocketLayer`] kept past its host can get here).
    fn with_ctx<R>(&self, f: impl FnOnce(&mut CpuCtx) -> R) -> R {
        // A lend of this host on the calling thread (the innermost one
        // not in use by a socket call the thread runs already).
        if let Some(mut in_use) = self.take_lent()
            && let Some(ctx) = in_use.ctx.as_mut()
        {
            return f(ctx);
        }
        let Some(host) = self.shared() else {
            panic!("a socket call on a host that no longer exists");
        };
        let f = if self.threaded() {
            match self.with_remote_ctx(&host, f) {
                Ok(r) => return r,
                Err(f) => f,
            }
        } else {
            f
        };
        with_scratch_ctx(&host, self.app_cpu(), &self.clock, f)
    }

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    fn sysctl(&self) -> &Sysctl {
        &self.sysctl
    }

    #[inline]
    fn can_sleep(&self) -> bool {
        self.threaded() && !self.lent_here()
    }
}

impl HostShared {
    /// The host's socket layer: its fd table (`RLIMIT_NOFILE`) and socket
    /// calls (`socket`, `bind`, `sendto`, `recvmsg`, `epoll_*`, ...).
    pub fn socket_layer(&self) -> &Arc<HostSocketLayer> {
        &self.transports.layer
    }

    /// What the socket layer runs on (the lend of CPU contexts, the
    /// application CPU).
    pub fn socket_host(&self) -> &Arc<HostSockets> {
        self.transports.layer.host()
    }

    /// Queues application code for `cpu`'s process context: `f` runs the
    /// next time the runtime runs that CPU, with the CPU's context lent to
    /// its socket calls (which do not sleep there: a call that would wait
    /// returns `EAGAIN`).
    pub fn app_on(&self, cpu: usize, f: impl FnOnce() + Send + 'static) {
        self.run_on(cpu, move |ctx| {
            let sockets = Arc::clone(ctx.host.socket_host());
            sockets.lend(ctx, f);
        });
    }
}

impl HostShared {
    /// Queues application code for `cpu`'s process context to run once
    /// the socket `fd` of this host's socket layer is ready for `events`
    /// (`EPOLLIN`, `EPOLLOUT`, ...; errors and hang-ups always count): the
    /// protocol's wake-up (`sk_data_ready()`, `sk_write_space()`, ...)
    /// pushes the step, nothing polls. At once when the socket is ready
    /// now. One-shot: a step that wants more calls this again.
    ///
    /// Mirrors a task blocked on its socket (or a one-shot
    /// `IORING_OP_POLL_ADD`) being woken by the socket's wait queue and
    /// scheduled on its CPU (`try_to_wake_up()`); see
    /// [`socket::SocketLayer::poll_add`]. Errors name `fd` when it is not
    /// an open socket.
    pub fn app_on_ready(
        self: &Arc<Self>,
        cpu: usize,
        fd: socket::Fd,
        events: u32,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), NetstackError> {
        let host = Arc::downgrade(self);
        self.socket_layer()
            .poll_add(fd, events, move |_| {
                if let Some(h) = host.upgrade() {
                    h.app_on(cpu, f);
                }
            })
            .map_err(|_| NetstackError::bad_arg("fd", "an open socket of the host"))
    }
}

impl Host {
    /// Runs application code now on CPU `cpu` (process context), its
    /// socket calls on that CPU's context; the simulation runs what they
    /// queued at its next step. Errors name `cpu` when the host has no such
    /// CPU or runs on threads.
    pub fn app<R>(&mut self, cpu: usize, f: impl FnOnce() -> R) -> Result<R, NetstackError> {
        let spare = self.spare_ctx.get_mut(cpu).and_then(Option::take);
        let (r, placeholder) = self.with_cpu_box(cpu, |shared, ctx| {
            shared.socket_host().lend_with(ctx, spare, f)
        })?;
        if let Some(slot) = self.spare_ctx.get_mut(cpu) {
            *slot = placeholder;
        }
        Ok(r)
    }

    /// The host's socket layer.
    pub fn socket_layer(&self) -> &Arc<HostSocketLayer> {
        self.shared.socket_layer()
    }
}

impl Network {
    /// Runs application code now on CPU 0 of host `host` (see
    /// [`Host::app`]); meant for application steps scheduled with
    /// [`Network::at`]/[`Network::after`].
    pub fn app<R>(&mut self, host: &str, f: impl FnOnce() -> R) -> Result<R, NetstackError> {
        self.host_mut(host)?.app(0, f)
    }
}

/// Something that names a host: a [`Host`], its [`HostShared`].
pub trait AsHost {
    /// The host-wide state.
    fn as_host(&self) -> &Arc<HostShared>;
}

impl AsHost for Host {
    fn as_host(&self) -> &Arc<HostShared> {
        self.shared()
    }
}

impl AsHost for Arc<HostShared> {
    fn as_host(&self) -> &Arc<HostShared> {
        self
    }
}

/// The first IPv4 address `addr` names, or an error naming the argument
/// (`InvalidInput`). Shared by the UDP and TCP std-like wrappers.
pub(crate) fn v4(addr: impl ToSocketAddrs) -> std::io::Result<SocketAddrV4> {
    addr.to_socket_addrs()?
        .find_map(|a| match a {
            std::net::SocketAddr::V4(a) => Some(a),
            std::net::SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "address: accepts an IPv4 socket address (198.18.0.1:7)",
            )
        })
}

/// A UDP socket on a host, shaped like `std::net::UdpSocket`.
///
/// Mirrors `socket(AF_INET, SOCK_DGRAM, 0)` and the calls on it, through
/// the host's socket layer. The methods of [`socket::UdpSocket`] (receive,
/// timeouts, `set_nonblocking`, `take_error`, ...) are reached through
/// `Deref`; errors are `std::io::Error`s with Linux's errno
/// (`raw_os_error()`).
pub struct UdpSocket {
    inner: socket::UdpSocket<HostSockets>,
    host: Arc<HostShared>,
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("host", &self.host.name)
            .field("inner", &self.inner)
            .finish()
    }
}

impl UdpSocket {
    /// Creates a socket on `host` bound to `addr` (`"198.18.0.1:7"`,
    /// `"0.0.0.0:0"`).
    pub fn bind(host: &impl AsHost, addr: impl ToSocketAddrs) -> std::io::Result<UdpSocket> {
        let host = Arc::clone(host.as_host());
        let inner = socket::UdpSocket::bind(host.socket_layer(), v4(addr)?)?;
        Ok(UdpSocket { inner, host })
    }

    /// Sends `buf` to `addr`.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> std::io::Result<usize> {
        self.inner.send_to(buf, v4(addr)?)
    }

    /// Connects to `addr` (sets the default destination and filters what
    /// is received).
    pub fn connect(&self, addr: impl ToSocketAddrs) -> std::io::Result<()> {
        self.inner.connect(v4(addr)?)
    }

    /// The host the socket lives on.
    pub fn host(&self) -> &Arc<HostShared> {
        &self.host
    }
}

impl std::ops::Deref for UdpSocket {
    type Target = socket::UdpSocket<HostSockets>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}
