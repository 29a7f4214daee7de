//! The thread runtime: one OS thread per CPU, in real time.
//!
//! Mirrors how Linux runs its CPUs: each CPU runs the same loop as in the
//! simulation (process work, hard IRQs, softirqs, ksoftirqd, timers) and,
//! with nothing pending, idles until an interrupt or an IPI wakes it
//! (`do_idle()` → `cpuidle`, woken by `smp_send_reschedule()`). Here a CPU
//! parks on a condition variable with a timeout at its next timer; the
//! hosts' `irq::CpuWakeup` hook unparks it when an IRQ or a softirq is
//! raised for it (a NIC's MSI-X line, an RPS hand-over from another CPU,
//! work queued by an application). One device thread runs the NIC models
//! (wire deliveries, TAP reads, doorbells, moderation timers), as the
//! hardware runs beside the CPUs.
//!
//! The device thread sleeps too: until the earliest instant a NIC has
//! something due (a frame arriving off a wire, an interrupt moderation
//! timer), or until a CPU thread that ran work kicks it (a driver that
//! rang a transmit doorbell or refilled a receive ring: the posted MMIO
//! write that wakes the hardware).
//!
//! # Polling CPUs (`idle=poll`)
//!
//! [`ThreadRuntime::start_with`] and [`CpuIdle::Poll`] make each CPU
//! thread spin instead of parking, as a kernel booted with `idle=poll`
//! does (`cpu_idle_poll()`): nothing waits for a wake-up, so an interrupt
//! or a queued step is seen within one turn of the loop. In that mode
//! there is no device thread: each NIC model is run by one CPU thread of
//! its own host (NIC `i` by CPU `i % nr_cpus`), between that CPU's
//! rounds, whenever the NIC has something due ([`IgbDevice::next_event`],
//! read without its lock). That is a deviation: a NIC is not run by a CPU.
//! It is what lets a host with one CPU run on one core with nothing else
//! beside it; with a device thread as well, two spinning hosts would be
//! three spinning threads on a two-core machine. Poll mode is for
//! measuring: every CPU thread takes a core whether or not it has work.
//!
//! # Deviations from Linux
//!
//! - A TAP descriptor cannot wake the device thread (the NIC model is
//!   sans-IO and the TAP backend a non-blocking descriptor, with no
//!   `poll(2)` under `forbid(unsafe_code)`): while idle the thread looks
//!   at the NICs every [`DEVICE_IDLE_SLEEP`] for [`DEVICE_ACTIVE_WINDOW`]
//!   after the last received frame, then doubling up to
//!   [`DEVICE_IDLE_MAX`], and back to the minimum on the next frame: an
//!   idle runtime costs about a thousand wake-ups a second instead of
//!   spinning, and only a frame from the kernel after a quiet spell waits
//!   (at most [`DEVICE_IDLE_MAX`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use netcore::{Clock, Duration};
use parking_lot::{Condvar, Mutex};

use nic_hw::IgbDevice;

use crate::cpu::{CpuClock, CpuCtx, cpu_has_work, cpu_run_in};
use crate::error::NetstackError;
use crate::host::HostShared;
use crate::network::Network;

/// The longest a CPU sleeps without a timer (it re-checks the stop flag).
pub const IDLE_PARK_MAX: Duration = Duration::from_millis(10);

/// The device thread's first idle sleep when no NIC had work and none has
/// anything due sooner (see [`DEVICE_IDLE_MAX`]).
pub const DEVICE_IDLE_SLEEP: Duration = Duration::from_micros(20);

/// How long after the last received frame the device thread keeps its
/// idle sleep at [`DEVICE_IDLE_SLEEP`] before it starts backing off.
pub const DEVICE_ACTIVE_WINDOW: Duration = Duration::from_millis(10);

/// The longest the device thread sleeps with nothing due (the idle sleep
/// doubles from [`DEVICE_IDLE_SLEEP`] up to this): how late a frame from
/// a backend that cannot wake it (a TAP) may be seen after a quiet spell.
pub const DEVICE_IDLE_MAX: Duration = Duration::from_millis(1);

/// What a CPU thread does with nothing to run: Linux's `idle=` boot
/// parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CpuIdle {
    /// Sleep until an interrupt, a queued step or the next timer wakes it
    /// (the default idle loop: `cpuidle` halts the CPU and an IPI wakes
    /// it). A device thread runs the NIC models.
    #[default]
    Halt,
    /// Spin, looking for work on every turn (`idle=poll`); the CPU threads
    /// run their own host's NIC models (see the module's documentation).
    Poll,
}

/// A CPU's idle state: parked until kicked or its timeout.
#[derive(Default)]
struct Parker {
    kicked: Mutex<bool>,
    cv: Condvar,
}

impl Parker {
    fn unpark(&self) {
        *self.kicked.lock() = true;
        self.cv.notify_one();
    }

    fn park_timeout(&self, d: Duration) {
        let mut k = self.kicked.lock();
        if !*k {
            let _ = self.cv.wait_for(&mut k, d);
        }
        *k = false;
    }
}

/// A network running on threads. Stop it with [`ThreadRuntime::stop`] to
/// get the network back (with its counters) for reports.
pub struct ThreadRuntime {
    net: Option<Network>,
    stop: Arc<AtomicBool>,
    cpus: Vec<(usize, JoinHandle<Box<CpuCtx>>)>,
    device: Option<JoinHandle<()>>,
    device_parker: Arc<Parker>,
    device_rounds: Arc<AtomicU64>,
}

impl core::fmt::Debug for ThreadRuntime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThreadRuntime")
            .field("cpus", &self.cpus.len())
            .finish_non_exhaustive()
    }
}

impl ThreadRuntime {
    /// Starts a network built with [`Network::realtime`]: one thread per
    /// CPU of every host and one device thread (none when no host has a
    /// NIC model). Idle CPUs sleep ([`CpuIdle::Halt`]).
    pub fn start(net: Network) -> Result<ThreadRuntime, NetstackError> {
        ThreadRuntime::start_with(net, CpuIdle::Halt)
    }

    /// [`ThreadRuntime::start`] with the idle behaviour `idle`: with
    /// [`CpuIdle::Poll`] every CPU thread spins and runs its host's NIC
    /// models, and there is no device thread.
    pub fn start_with(mut net: Network, idle: CpuIdle) -> Result<ThreadRuntime, NetstackError> {
        if net.is_simulated() {
            return Err(NetstackError::Runtime(
                "the thread runtime needs a network on the real clock (Network::realtime)"
                    .to_owned(),
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let clock = Arc::clone(net.clock());
        net.set_threaded(true);
        let device_parker = Arc::new(Parker::default());
        let mut cpus = Vec::new();
        for (hi, host) in net.hosts.iter_mut().enumerate() {
            let parkers: Arc<Vec<Parker>> =
                Arc::new((0..host.nr_cpus()).map(|_| Parker::default()).collect());
            let p = Arc::clone(&parkers);
            host.shared.socket_host().set_threaded(true);
            if idle == CpuIdle::Halt {
                host.shared.wakeup.set(move |cpu| {
                    if let Some(p) = p.get(cpu) {
                        p.unpark();
                    }
                });
            } else {
                // Nobody sleeps: a kick has nothing to wake.
                host.shared.wakeup.clear();
            }
            let nr_cpus = host.nr_cpus();
            for ctx in std::mem::take(&mut host.cpus) {
                if idle == CpuIdle::Poll {
                    let devices: Vec<Arc<IgbDevice>> = host
                        .shared
                        .nic_devices()
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % nr_cpus == ctx.cpu)
                        .map(|(_, d)| Arc::clone(d))
                        .collect();
                    let stop = Arc::clone(&stop);
                    let clock = Arc::clone(&clock);
                    let name = format!("{}-cpu{}", host.shared.name, ctx.cpu);
                    let h = std::thread::Builder::new()
                        .name(name)
                        .spawn(move || cpu_thread_poll(ctx, &devices, &stop, &clock))
                        .map_err(|e| {
                            NetstackError::Runtime(format!("spawning a CPU thread: {e}"))
                        })?;
                    cpus.push((hi, h));
                    continue;
                }
                let parkers = Arc::clone(&parkers);
                let stop = Arc::clone(&stop);
                let clock = Arc::clone(&clock);
                let device = Arc::clone(&device_parker);
                let name = format!("{}-cpu{}", host.shared.name, ctx.cpu);
                let h = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || cpu_thread(ctx, &parkers, &device, &stop, &*clock))
                    .map_err(|e| NetstackError::Runtime(format!("spawning a CPU thread: {e}")))?;
                cpus.push((hi, h));
            }
        }
        let hosts: Vec<Arc<HostShared>> = net.hosts.iter().map(|h| Arc::clone(&h.shared)).collect();
        let dstop = Arc::clone(&stop);
        let dparker = Arc::clone(&device_parker);
        let device_rounds = Arc::new(AtomicU64::new(0));
        let rounds = Arc::clone(&device_rounds);
        // No NIC model anywhere (a TAP host's eth0 has its own worker):
        // no device thread to wake every few microseconds.
        let has_hw = idle == CpuIdle::Halt && hosts.iter().any(|h| !h.nic_devices().is_empty());
        let device = if has_hw {
            Some(
                std::thread::Builder::new()
                    .name("nic-hw".to_owned())
                    .spawn(move || device_thread(&hosts, &dparker, &rounds, &dstop, &*clock))
                    .map_err(|e| {
                        NetstackError::Runtime(format!("spawning the device thread: {e}"))
                    })?,
            )
        } else {
            None
        };
        Ok(ThreadRuntime {
            net: Some(net),
            stop,
            cpus,
            device,
            device_parker,
            device_rounds,
        })
    }

    /// The shared state of the host named `name`.
    pub fn host(&self, name: &str) -> Result<Arc<HostShared>, NetstackError> {
        self.net
            .as_ref()
            .and_then(|n| n.hosts.iter().find(|h| h.name() == name))
            .map(|h| Arc::clone(&h.shared))
            .ok_or_else(|| NetstackError::NoHost(name.to_owned()))
    }

    /// How many times the device thread has looked at the NICs so far
    /// (each wake-up, whether by a due event, a kick or the idle sleep).
    pub fn device_rounds(&self) -> u64 {
        self.device_rounds.load(Ordering::Relaxed)
    }

    /// The network's clock.
    pub fn clock(&self) -> Option<Arc<dyn Clock>> {
        self.net.as_ref().map(|n| Arc::clone(n.clock()))
    }

    /// Stops every thread and returns the network, its CPUs back in their
    /// hosts.
    pub fn stop(mut self) -> Result<Network, NetstackError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<Network, NetstackError> {
        self.stop.store(true, Ordering::Release);
        let mut net = self
            .net
            .take()
            .ok_or_else(|| NetstackError::Runtime("already stopped".to_owned()))?;
        for h in &net.hosts {
            // Wake every CPU so it sees the stop flag.
            for cpu in 0..h.nr_cpus() {
                h.shared.wakeup.kick(cpu);
            }
        }
        let mut failed = false;
        for (hi, j) in self.cpus.drain(..) {
            match j.join() {
                Ok(ctx) => net.hosts[hi].cpus.push(ctx),
                Err(_) => failed = true,
            }
        }
        net.set_threaded(false);
        for h in &mut net.hosts {
            h.cpus.sort_by_key(|c| c.cpu);
            h.shared.wakeup.clear();
            h.shared.socket_host().set_threaded(false);
        }
        self.device_parker.unpark();
        if let Some(d) = self.device.take() {
            failed |= d.join().is_err();
        }
        if failed {
            return Err(NetstackError::Runtime(
                "a runtime thread panicked".to_owned(),
            ));
        }
        Ok(net)
    }
}

impl Drop for ThreadRuntime {
    fn drop(&mut self) {
        if self.net.is_some() {
            let _ = self.shutdown();
        }
    }
}

/// One CPU: run until nothing is pending, then park until kicked or the
/// next timer. A round that did work kicks the device thread (the driver
/// may have rung a doorbell or refilled a ring).
fn cpu_thread(
    mut ctx: Box<CpuCtx>,
    parkers: &[Parker],
    device: &Parker,
    stop: &AtomicBool,
    clock: &dyn Clock,
) -> Box<CpuCtx> {
    let cpu = ctx.cpu;
    // Held for the thread's life: a run borrows them (see `cpu_run_in`).
    let host = Arc::clone(&ctx.host);
    let cpu_clock = ctx.clock.clone();
    while !stop.load(Ordering::Acquire) {
        let s = cpu_run_in(&mut ctx, &host, &cpu_clock);
        if s.did_work() {
            device.unpark();
        }
        if s.more || cpu_has_work(&ctx) {
            continue;
        }
        let now = clock.now();
        let timeout = ctx
            .next_timer()
            .map_or(IDLE_PARK_MAX, |t| t.saturating_duration_since(now))
            .min(IDLE_PARK_MAX);
        if let Some(p) = parkers.get(cpu) {
            p.park_timeout(timeout);
        }
    }
    ctx
}

/// One CPU that never sleeps (`idle=poll`): each turn runs the NIC models
/// it was given that have something due, then the CPU's own work; with
/// nothing to do it spins (`cpu_relax()`).
fn cpu_thread_poll(
    mut ctx: Box<CpuCtx>,
    devices: &[Arc<IgbDevice>],
    stop: &AtomicBool,
    clock: &Arc<dyn Clock>,
) -> Box<CpuCtx> {
    let host = Arc::clone(&ctx.host);
    // The CPU reads the instant its loop last stored (see
    // `CpuClock::cached`); the context gets its own clock back at the end.
    let cpu_clock = CpuClock::cached(clock);
    let own_clock = std::mem::replace(&mut ctx.clock, cpu_clock.clone());
    while !stop.load(Ordering::Acquire) {
        let now = cpu_clock.tick();
        let mut moved = false;
        for d in devices {
            if d.next_event().is_some_and(|t| t <= now) {
                d.poll(now);
                moved = true;
            }
        }
        let s = cpu_run_in(&mut ctx, &host, &cpu_clock);
        if !moved && !s.did_work() {
            std::hint::spin_loop();
        }
    }
    ctx.clock = own_clock;
    ctx
}

/// The NICs: poll every device of every host; when none had work, sleep
/// until the earliest thing due at a NIC, a kick from a CPU, or the idle
/// sleep (which grows while nothing happens).
fn device_thread(
    hosts: &[Arc<HostShared>],
    parker: &Parker,
    rounds: &AtomicU64,
    stop: &AtomicBool,
    clock: &dyn Clock,
) {
    let mut idle = DEVICE_IDLE_SLEEP;
    let mut last_frame = clock.now();
    while !stop.load(Ordering::Acquire) {
        rounds.fetch_add(1, Ordering::Relaxed);
        let now = clock.now();
        let mut moved = 0;
        let mut next: Option<netcore::Instant> = None;
        for h in hosts {
            for device in h.nic_devices() {
                moved += device.poll(now);
                if let Some(t) = device.next_event() {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
        }
        if moved > 0 {
            idle = DEVICE_IDLE_SLEEP;
            last_frame = now;
            continue;
        }
        let due = next.map(|t| t.saturating_duration_since(clock.now()));
        if due.is_some_and(|d| d.is_zero()) {
            continue;
        }
        parker.park_timeout(due.map_or(idle, |d| d.min(idle)));
        // Traffic tends to come in bursts: keep looking often for a while
        // after the last frame, then back off.
        if now.saturating_duration_since(last_frame) >= DEVICE_ACTIVE_WINDOW {
            idle =
                Duration::from_nanos((idle.as_nanos() * 2).min(DEVICE_IDLE_MAX.as_nanos()) as u64);
        }
    }
}
