//! The device-agnostic core: the per-CPU softnet data, `net_rx_action`,
//! `netif_receive_skb`, `netif_rx`, `dev_queue_xmit` and `net_tx_action`.
//!
//! Mirrors `net/core/dev.c`. The receive side, on the CPU a NIC queue's IRQ
//! is routed to:
//!
//! ```text
//! NET_RX ─► net_rx_action ─► napi_poll(driver) ─► napi_gro_receive ─► netif_receive_skb
//!             (budget 300,      (weight 64)                              │ RPS? enqueue_to_backlog(cpu n) ─► IPI
//!              2 jiffies)                                                ▼
//!                         napi_poll(backlog) ─► process_backlog ─► netif_receive_skb_core
//!                                                                   taps, tc ingress, ptype_base
//! ```
//!
//! and the transmit side, on the sending CPU:
//!
//! ```text
//! dev_queue_xmit ─► netdev_pick_tx (XPS, hash) ─► qdisc enqueue ─► qdisc_run (quota 64)
//!   ─► taps (PACKET_OUTGOING) ─► driver start_xmit; BUSY ─► requeue; stopped ─► wait for wake
//! NET_TX ─► net_tx_action: free the completion queue, run the qdiscs scheduled here
//! ```
//!
//! # The context
//!
//! Everything here is generic over the host's per-CPU context `C`
//! ([`SoftnetContext`]): it gives the time, this CPU's [`SoftnetData`] and
//! a timer seam. Protocol handlers ([`PacketType<C>`]) receive the same
//! `&mut C`, so the layers above reach their own state through it.
//!
//! # Deviations from Linux
//!
//! - `skb.protocol` must be set by the driver before the packet reaches
//!   [`netif_receive_skb`] (Linux drivers call `eth_type_trans()`, which
//!   belongs to `ipv4` here, above this crate). Data must start at the
//!   network header with the MAC header set, as after `eth_type_trans()`.
//! - The RPS "IPI" is sent at once from `enqueue_to_backlog` (as a raise of
//!   `NET_RX` on the target, which kicks it), not batched until the end of
//!   `net_rx_action` (`net_rps_action_and_irq_enable()`).
//! - A driver cannot call into this crate (drivers sit below it), so a
//!   queue the driver wakes (`NetdevQueue::wake()`) is noticed here after
//!   each NAPI poll and in `net_tx_action`, where Linux's
//!   `netif_tx_wake_queue()` schedules the qdisc itself. Callers above the
//!   driver can call [`netif_tx_wake_queue`] directly.
//! - The backlog NAPI's weight is read from `dev_weight` when the host is
//!   built, not before every poll.

use core::fmt;
use std::collections::VecDeque;
use std::sync::Weak;
use std::sync::atomic::AtomicUsize as StdAtomicUsize;

use irq::{SoftirqNr, Softirqs};
use napi::{GroReceive, NapiError, NapiStruct, PollLists, netif_napi_add_weight};
use netcore::{
    DropReason, Errno, Instant, NetdevTx, SkBuff, Sysctl, TimerContext, consume_skb,
    kfree_skb_reason,
};
use parking_lot::Mutex as PlMutex;
use qdisc::NetXmit;

use crate::backlog::{BacklogPoll, BacklogQueue, enqueue_to_backlog};
use crate::gso::{XmitSkbs, validate_xmit_skb};
use crate::netdevice::{DevBase, NetDev};
use crate::ptype::{
    NetRx, PacketType, PtypeEntry, PtypeLists, PtypeMatch, PtypeRegistry, TcIngress, TcVerdict,
    same_handler,
};
use crate::rps::skb_tx_hash;
use crate::sch_generic::{qdisc_run_begin, qdisc_run_inner, sch_direct_xmit};
use crate::sync::Arc as SyncArc;
use netcore::skb_get_hash;
use std::sync::Arc;

/// A bad argument to a softnet call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftnetError {
    /// `cpu` is not one of the host's CPUs.
    CpuOutOfRange {
        /// The CPU asked for.
        cpu: usize,
        /// How many CPUs there are.
        nr_cpus: usize,
    },
    /// `queue` is not one of the device's queues.
    QueueOutOfRange {
        /// The queue asked for.
        queue: u16,
        /// How many queues of that direction the device has.
        num_queues: u16,
    },
    /// An argument outside what the call accepts.
    BadArgument {
        /// The argument's name.
        name: &'static str,
        /// What it accepts.
        accepts: &'static str,
    },
    /// The NAPI layer refused (building the backlog NAPIs).
    Napi(NapiError),
}

impl fmt::Display for SoftnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SoftnetError::CpuOutOfRange { cpu, nr_cpus } => {
                write!(f, "cpu {cpu} out of range: the host has {nr_cpus} CPUs")
            }
            SoftnetError::QueueOutOfRange { queue, num_queues } => {
                write!(
                    f,
                    "queue {queue} out of range: the device has {num_queues} queues"
                )
            }
            SoftnetError::BadArgument { name, accepts } => {
                write!(f, "bad argument `{name}`: accepts {accepts}")
            }
            SoftnetError::Napi(e) => write!(f, "napi: {e}"),
        }
    }
}

impl core::error::Error for SoftnetError {}

impl From<NapiError> for SoftnetError {
    fn from(e: NapiError) -> Self {
        SoftnetError::Napi(e)
    }
}

impl From<SoftnetError> for Errno {
    fn from(_: SoftnetError) -> Errno {
        Errno::Inval
    }
}

/// The timers softnet arms through the host's [`TimerContext`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SoftnetTimer {
    /// A shaping qdisc holds packets that may go at the armed time.
    /// Mirrors `qdisc_watchdog` (`qdisc_watchdog_schedule_ns()`); on expiry
    /// call [`handle_timer`], which schedules the qdisc.
    QdiscWatchdog {
        /// The device.
        ifindex: u32,
        /// The transmit queue.
        queue: u16,
    },
}

/// What softnet needs from the host's per-CPU context.
///
/// The host (the `netstack` crate) defines one context type per CPU runner
/// and implements every layer's context trait on it. This one is small:
/// the time, this CPU's [`SoftnetData`] (which also reaches the host-wide
/// [`Softnet`]), and arming [`SoftnetTimer`]s on the CPU's timer wheel.
pub trait SoftnetContext: TimerContext<SoftnetTimer> + Sized + 'static {
    /// The current time of this CPU's clock (virtual in the simulation).
    fn now(&self) -> Instant;

    /// This CPU's softnet data (`this_cpu_ptr(&softnet_data)`).
    fn softnet_data(&mut self) -> &mut SoftnetData<Self>;

    /// The CPU this context runs on (`smp_processor_id()`).
    fn smp_processor_id(&mut self) -> usize {
        self.softnet_data().cpu
    }
}

/// One CPU's shared half: its backlog queue and backlog NAPI.
struct SoftnetCpu {
    queue: SyncArc<BacklogQueue>,
    backlog: SyncArc<NapiStruct>,
}

/// The host-wide state of the device layer: the per-CPU backlogs, the
/// packet-type registry, the device table.
///
/// Mirrors the globals of `net/core/dev.c`: the per-CPU `softnet_data`
/// array (its cross-CPU half), `ptype_all`/`ptype_base`, and `dev_base`
/// of `init_net`. Shared as `Arc<Softnet<C>>` by every CPU's
/// [`SoftnetData`].
pub struct Softnet<C: ?Sized> {
    cpus: Box<[SoftnetCpu]>,
    poll_lists: SyncArc<PollLists>,
    softirqs: Arc<Softirqs>,
    sysctl: Arc<Sysctl>,
    ptypes: PtypeRegistry<C>,
    dev_base: DevBase,
    wake_watch: PlMutex<Vec<(Weak<NetDev>, u16)>>,
    wake_watch_len: StdAtomicUsize,
}

impl<C: ?Sized> fmt::Debug for Softnet<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Softnet")
            .field("nr_cpus", &self.cpus.len())
            .field("ptypes", &self.ptypes)
            .field("dev_base", &self.dev_base)
            .finish_non_exhaustive()
    }
}

impl<C: SoftnetContext> Softnet<C> {
    /// The device layer of a host with `poll_lists.nr_cpus()` CPUs: one
    /// backlog queue and one enabled backlog NAPI (weight `dev_weight`) per
    /// CPU.
    ///
    /// Mirrors `net_dev_init()`. Errors: [`SoftnetError::BadArgument`]
    /// naming `softirqs` when it covers a different number of CPUs.
    pub fn new(
        poll_lists: SyncArc<PollLists>,
        softirqs: Arc<Softirqs>,
        sysctl: Arc<Sysctl>,
    ) -> Result<Arc<Softnet<C>>, SoftnetError> {
        let nr_cpus = poll_lists.nr_cpus();
        if softirqs.nr_cpus() != nr_cpus {
            return Err(SoftnetError::BadArgument {
                name: "softirqs",
                accepts: "softirq state for as many CPUs as the poll lists",
            });
        }
        let weight = napi::dev_weight(&sysctl);
        let mut cpus = Vec::with_capacity(nr_cpus);
        for cpu in 0..nr_cpus {
            let queue = SyncArc::new(BacklogQueue::new(cpu));
            let backlog = netif_napi_add_weight(
                &poll_lists,
                0,
                BacklogPoll::new(SyncArc::clone(&queue)),
                weight,
            )?;
            backlog.napi_enable()?;
            cpus.push(SoftnetCpu { queue, backlog });
        }
        let dev_base = DevBase::new(nr_cpus, Arc::clone(&sysctl));
        Ok(Arc::new(Softnet {
            cpus: cpus.into_boxed_slice(),
            poll_lists,
            softirqs,
            sysctl,
            ptypes: PtypeRegistry::new(),
            dev_base,
            wake_watch: PlMutex::new(Vec::new()),
            wake_watch_len: StdAtomicUsize::new(0),
        }))
    }

    /// Creates the owned half of `cpu`'s softnet data, for that CPU's
    /// context. Errors: [`SoftnetError::CpuOutOfRange`].
    pub fn softnet_data(self: &Arc<Self>, cpu: usize) -> Result<SoftnetData<C>, SoftnetError> {
        self.check_cpu(cpu)?;
        let (ptypes, ptype_gen) = self.ptypes.snapshot();
        Ok(SoftnetData {
            cpu,
            net: Arc::clone(self),
            ptype_taps: !ptypes.all.is_empty(),
            ptypes: Some(ptypes),
            ptype_gen,
            output_queue: VecDeque::new(),
            completion_queue: Vec::new(),
            rx_list: VecDeque::new(),
            rx_repoll: VecDeque::new(),
        })
    }

    /// Registers a protocol handler or a tap; it sees packets from the
    /// next one on. Mirrors `dev_add_pack()`.
    pub fn dev_add_pack(&self, pt: Arc<dyn PacketType<C>>) {
        tracing::info!(target: "netstack::softnet", name = pt.name(), "dev_add_pack");
        let kind = pt.ptype();
        let entry = PtypeEntry { dev: pt.dev(), pt };
        self.ptypes.update(|l| match kind {
            PtypeMatch::All => l.all.push(entry),
            PtypeMatch::Type(ty) => l.base.push((ty, entry)),
        });
    }

    /// Removes a handler added with [`Softnet::dev_add_pack`] (the same
    /// `Arc`); returns whether it was registered. Packets already being
    /// handled on other CPUs may still reach it, as after Linux's
    /// `dev_remove_pack()` until `synchronize_net()`.
    pub fn dev_remove_pack(&self, pt: &Arc<dyn PacketType<C>>) -> bool {
        self.ptypes.update(|l| {
            let before = l.all.len() + l.base.len();
            l.all.retain(|e| !same_handler(&e.pt, pt));
            l.base.retain(|(_, e)| !same_handler(&e.pt, pt));
            before != l.all.len() + l.base.len()
        })
    }

    /// Attaches `hook` at the tc ingress point of device `ifindex`,
    /// replacing any previous one. Mirrors adding a filter to the device's
    /// `clsact`/`ingress` qdisc.
    pub fn tc_ingress_attach(&self, ifindex: u32, hook: Arc<dyn TcIngress<C>>) {
        self.ptypes.update(|l| {
            l.ingress.retain(|(i, _)| *i != ifindex);
            l.ingress.push((ifindex, hook));
        });
    }

    /// Removes the tc ingress hook of `ifindex`; returns whether there was
    /// one.
    pub fn tc_ingress_detach(&self, ifindex: u32) -> bool {
        self.ptypes.update(|l| {
            let before = l.ingress.len();
            l.ingress.retain(|(i, _)| *i != ifindex);
            before != l.ingress.len()
        })
    }

    /// The `/proc/net/ptype` lines after the header: `ALL ` or the
    /// ethertype in hex, the device name, the handler name.
    pub(crate) fn ptype_lines(&self) -> Vec<(Option<u16>, String, String)> {
        let (lists, _) = self.ptypes.snapshot();
        let dev_name = |d: Option<u32>| {
            d.and_then(|i| self.dev_base.dev_get_by_index(i))
                .map(|d| d.name().to_owned())
                .unwrap_or_default()
        };
        let mut out: Vec<_> = lists
            .all
            .iter()
            .map(|e| (None, dev_name(e.dev), e.pt.name().to_owned()))
            .collect();
        out.extend(
            lists
                .base
                .iter()
                .map(|(ty, e)| (Some(*ty), dev_name(e.dev), e.pt.name().to_owned())),
        );
        out
    }
}

impl<C: ?Sized> Softnet<C> {
    /// How many CPUs the host has.
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    fn check_cpu(&self, cpu: usize) -> Result<(), SoftnetError> {
        if cpu < self.cpus.len() {
            Ok(())
        } else {
            Err(SoftnetError::CpuOutOfRange {
                cpu,
                nr_cpus: self.cpus.len(),
            })
        }
    }

    /// The device table.
    pub fn dev_base(&self) -> &DevBase {
        &self.dev_base
    }

    /// The sysctls this layer reads (`netdev_budget`, ...).
    pub fn sysctl(&self) -> &Arc<Sysctl> {
        &self.sysctl
    }

    /// The host's softirq state.
    pub fn softirqs(&self) -> &Arc<Softirqs> {
        &self.softirqs
    }

    /// The per-CPU NAPI poll lists.
    pub fn poll_lists(&self) -> &SyncArc<PollLists> {
        &self.poll_lists
    }

    /// `cpu`'s backlog NAPI (to inspect its state).
    pub fn backlog_napi(&self, cpu: usize) -> Result<&SyncArc<NapiStruct>, SoftnetError> {
        self.check_cpu(cpu)?;
        Ok(&self.cpus[cpu].backlog)
    }

    pub(crate) fn backlog_queue(&self, cpu: usize) -> &BacklogQueue {
        &self.cpus[cpu].queue
    }

    /// Queues `skb` on `cpu`'s backlog from any thread (a device thread, a
    /// loopback device), kicking that CPU.
    ///
    /// Mirrors `enqueue_to_backlog()`; see [`netif_rx`] for the usual
    /// entry. Drops (counted in `cpu`'s `dropped`, freed with
    /// [`DropReason::CpuBacklog`]) past `netdev_max_backlog`. Errors:
    /// [`SoftnetError::CpuOutOfRange`] (the skb is freed).
    pub fn enqueue_to_backlog(&self, skb: SkBuff, cpu: usize) -> Result<NetRx, SoftnetError> {
        if let Err(e) = self.check_cpu(cpu) {
            kfree_skb_reason(skb, DropReason::NotSpecified);
            return Err(e);
        }
        Ok(self.enqueue_from(skb, cpu, None))
    }

    fn enqueue_from(&self, skb: SkBuff, cpu: usize, from: Option<usize>) -> NetRx {
        let c = &self.cpus[cpu];
        let max = usize::try_from(self.sysctl.netdev_max_backlog()).unwrap_or(0);
        enqueue_to_backlog(&c.queue, &c.backlog, &self.softirqs, skb, max, from)
    }

    fn watch_for_wake(&self, dev: &Arc<NetDev>, queue: u16) {
        let mut w = self.wake_watch.lock();
        w.push((Arc::downgrade(dev), queue));
        self.wake_watch_len
            .store(w.len(), std::sync::atomic::Ordering::Release);
    }

    /// Takes the watched queues the driver has woken since; `None`, without
    /// the lock or a list to build and free, when no queue is watched (the
    /// common case: checked after every `NET_RX` and `NET_TX` run).
    #[inline]
    fn take_woken(&self) -> Option<Vec<(Arc<NetDev>, u16)>> {
        if self
            .wake_watch_len
            .load(std::sync::atomic::Ordering::Acquire)
            == 0
        {
            return None;
        }
        Some(self.take_woken_watched())
    }

    /// [`Softnet::take_woken`] when some queue is watched.
    fn take_woken_watched(&self) -> Vec<(Arc<NetDev>, u16)> {
        let mut woken = Vec::new();
        let mut w = self.wake_watch.lock();
        w.retain(|(weak, q)| {
            let Some(dev) = weak.upgrade() else {
                return false;
            };
            let stopped = dev
                .tx_queues()
                .get(*q)
                .is_none_or(netcore::NetdevQueue::is_stopped);
            if stopped && dev.is_up() {
                return true;
            }
            // Off the watch list: the next stop must put it back on
            // (`wait_for_wake` adds a queue only when this flag was clear).
            if let Some(txq) = dev.txq.get(usize::from(*q)) {
                txq.wait_wake
                    .store(false, std::sync::atomic::Ordering::Release);
            }
            if dev.is_up() {
                woken.push((dev, *q));
            }
            false
        });
        self.wake_watch_len
            .store(w.len(), std::sync::atomic::Ordering::Release);
        woken
    }
}

/// The owned half of one CPU's softnet data.
///
/// Mirrors the CPU-private part of `struct softnet_data`: the qdiscs
/// scheduled here (`output_queue`), the skbs to free in `NET_TX`
/// (`completion_queue`), and this CPU's view of the packet-type lists.
/// Owned by the CPU's context; reach the host-wide [`Softnet`] through
/// [`SoftnetData::softnet`].
pub struct SoftnetData<C: ?Sized> {
    cpu: usize,
    net: Arc<Softnet<C>>,
    /// This CPU's view of the handler lists; `None` while `net_rx_action`
    /// has taken it out (it lends the lists to the whole poll without an
    /// `Arc` clone: two locked instructions per softirq run).
    ptypes: Option<Arc<PtypeLists<C>>>,
    /// The registry generation of `ptypes` (or of the taken-out view).
    ptype_gen: u64,
    /// Whether generation `ptype_gen` has `ETH_P_ALL` taps: what every
    /// transmit asks, answered while the lists are lent out.
    ptype_taps: bool,
    output_queue: VecDeque<(Arc<NetDev>, u16)>,
    completion_queue: Vec<SkBuff>,
    /// `net_rx_action`'s working lists, kept between runs so that taking
    /// the poll list allocates nothing.
    rx_list: VecDeque<SyncArc<NapiStruct>>,
    rx_repoll: VecDeque<SyncArc<NapiStruct>>,
}

impl<C: ?Sized> fmt::Debug for SoftnetData<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftnetData")
            .field("cpu", &self.cpu)
            .field("output_queue", &self.output_queue.len())
            .field("completion_queue", &self.completion_queue.len())
            .finish_non_exhaustive()
    }
}

impl<C: ?Sized> SoftnetData<C> {
    /// The CPU this data belongs to.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// The host-wide state.
    pub fn softnet(&self) -> &Arc<Softnet<C>> {
        &self.net
    }

    /// This CPU's view of the handler lists, refreshed if they changed.
    fn ptypes(&mut self) -> Arc<PtypeLists<C>> {
        self.refresh_ptypes();
        match &self.ptypes {
            Some(p) => Arc::clone(p),
            None => self.snapshot_ptypes(),
        }
    }

    /// Takes this CPU's view of the handler lists out (refreshed if they
    /// changed), for [`put_ptypes`](Self::put_ptypes) to give back: a
    /// move, not an `Arc` clone. What runs meanwhile on this CPU and asks
    /// for the lists gets its own snapshot.
    #[inline]
    fn take_ptypes(&mut self) -> Arc<PtypeLists<C>> {
        self.refresh_ptypes();
        match self.ptypes.take() {
            Some(p) => p,
            None => self.snapshot_ptypes(),
        }
    }

    /// Gives back what [`take_ptypes`](Self::take_ptypes) took, unless a
    /// caller in between installed a snapshot (as new or newer).
    #[inline]
    fn put_ptypes(&mut self, lists: Arc<PtypeLists<C>>) {
        if self.ptypes.is_none() {
            self.ptypes = Some(lists);
        }
    }

    /// Installs a fresh snapshot of the registry and returns a clone.
    #[cold]
    fn snapshot_ptypes(&mut self) -> Arc<PtypeLists<C>> {
        let (lists, generation) = self.net.ptypes.snapshot();
        self.ptype_taps = !lists.all.is_empty();
        self.ptype_gen = generation;
        self.ptypes = Some(Arc::clone(&lists));
        lists
    }

    #[inline]
    fn refresh_ptypes(&mut self) {
        if self.net.ptypes.generation() != self.ptype_gen {
            let (lists, generation) = self.net.ptypes.snapshot();
            self.ptype_taps = !lists.all.is_empty();
            self.ptypes = Some(lists);
            self.ptype_gen = generation;
        }
    }

    /// Qdiscs waiting on this CPU's `NET_TX` (`sd->output_queue`).
    pub fn output_queue_len(&self) -> usize {
        self.output_queue.len()
    }
}

/// The jiffy of `t` (HZ = 1000).
fn jiffies(t: Instant) -> u64 {
    t.as_nanos() / (1_000_000_000 / netcore::HZ)
}

/// Mirrors `usecs_to_jiffies()` (rounds up).
fn usecs_to_jiffies(usecs: u64) -> u64 {
    usecs.div_ceil(1_000_000 / netcore::HZ)
}

/// What NAPI hands packets to during one poll: `netif_receive_skb` with
/// (device NAPIs) or without (the backlog) RPS.
struct RxSink<'a, C: SoftnetContext> {
    ctx: &'a mut C,
    net: &'a Softnet<C>,
    ptypes: &'a PtypeLists<C>,
    cpu: usize,
    rps: bool,
    dev_cache: Option<Arc<NetDev>>,
}

impl<C: SoftnetContext> GroReceive for RxSink<'_, C> {
    fn netif_receive_skb(&mut self, skb: SkBuff) {
        let _ = netif_receive_skb_internal(
            self.ctx,
            self.net,
            self.ptypes,
            self.cpu,
            skb,
            self.rps,
            &mut self.dev_cache,
        );
    }
}

/// The device an skb arrived on, through a one-entry cache (a NAPI's
/// packets all come from one device).
fn cached_dev<'a, C: ?Sized>(
    net: &Softnet<C>,
    cache: &'a mut Option<Arc<NetDev>>,
    ifindex: u32,
) -> Option<&'a Arc<NetDev>> {
    if cache.as_ref().is_none_or(|d| d.ifindex() != ifindex) {
        *cache = net.dev_base.dev_get_by_index(ifindex);
    }
    cache.as_ref()
}

/// Mirrors `get_rps_cpu()`: the CPU the receive queue's RPS map picks for
/// the skb's flow, or `None` to process it here.
fn get_rps_cpu<C: ?Sized>(
    net: &Softnet<C>,
    skb: &mut SkBuff,
    dev_cache: &mut Option<Arc<NetDev>>,
) -> Option<usize> {
    let dev = cached_dev(net, dev_cache, skb.ifindex)?;
    let queue = skb.queue_mapping;
    if queue >= dev.num_rx_queues() {
        tracing::warn!(target: "netstack::softnet", ifindex = skb.ifindex, queue, "get_rps_cpu: rx queue beyond the device's queues");
        return None;
    }
    let cpu = dev.rps_cpu_with(queue, || {
        skb.reset_network_header();
        skb_get_hash(skb)
    })?;
    (cpu < net.cpus.len()).then_some(cpu)
}

/// `netif_receive_skb_internal()`: RPS, then the core.
#[inline]
fn netif_receive_skb_internal<C: SoftnetContext>(
    ctx: &mut C,
    net: &Softnet<C>,
    ptypes: &PtypeLists<C>,
    cpu: usize,
    mut skb: SkBuff,
    rps: bool,
    dev_cache: &mut Option<Arc<NetDev>>,
) -> NetRx {
    if rps
        && net.dev_base.rps_needed()
        && let Some(target) = get_rps_cpu(net, &mut skb, dev_cache)
    {
        return net.enqueue_from(skb, target, Some(cpu));
    }
    netif_receive_skb_core(ctx, net, ptypes, cpu, skb, dev_cache)
}

/// Makes `skb` linear unless its consumer reads fragments; `false` when
/// that needed a buffer the pool could not give (the caller drops it with
/// `NOMEM`). See [`PacketType::accepts_nonlinear`].
#[inline]
fn linear_for<C: ?Sized>(skb: &mut SkBuff, pt: Option<&dyn PacketType<C>>) -> bool {
    if !skb.is_nonlinear() || pt.is_some_and(PacketType::accepts_nonlinear) {
        return true;
    }
    linearize_for_handler(skb)
}

/// The slow half of [`linear_for`]: copies a GRO packet into one buffer.
#[cold]
#[inline(never)]
fn linearize_for_handler(skb: &mut SkBuff) -> bool {
    match skb.linearize() {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(target: "netstack::softnet", ifindex = skb.ifindex, len = skb.len(), error = %e, "cannot linearize a GRO packet");
            false
        }
    }
}

/// Delivers one packet: a clone to every tap, then the tc ingress hook,
/// then the handler(s) registered for `skb.protocol`.
///
/// Mirrors `__netif_receive_skb_core()` (the `_core` suffix stands for
/// the two leading underscores). Counts `processed` on this CPU; an
/// ethertype without a handler counts the device's `rx_dropped` and frees
/// the packet with [`DropReason::UnhandledProto`]; a tc `SHOT` frees it
/// with [`DropReason::TcIngress`].
#[doc(alias = "__netif_receive_skb_core")]
#[inline]
fn netif_receive_skb_core<C: SoftnetContext>(
    ctx: &mut C,
    net: &Softnet<C>,
    ptypes: &PtypeLists<C>,
    cpu: usize,
    mut skb: SkBuff,
    dev_cache: &mut Option<Arc<NetDev>>,
) -> NetRx {
    net.cpus[cpu].queue.processed.inc_local();
    tracing::trace!(target: "netstack::softnet", cpu, ifindex = skb.ifindex, proto = skb.protocol, taps = ptypes.all.len(), "netif_receive_skb");
    skb.reset_network_header();
    if !skb.transport_header_was_set() {
        skb.reset_transport_header();
    }
    let ifindex = skb.ifindex;
    if !ptypes.all.is_empty() {
        deliver_ptype_all(ctx, ptypes, &skb);
    }
    if !ptypes.ingress.is_empty() {
        skb = match sch_handle_ingress(ctx, ptypes, skb) {
            Ok(skb) => skb,
            Err(consumed) => return consumed,
        };
    }
    let proto = skb.protocol;
    let mut prev: Option<&PtypeEntry<C>> = None;
    for (ty, e) in &ptypes.base {
        if *ty == proto && e.dev.is_none_or(|d| d == ifindex) {
            if let Some(p) = prev {
                let mut c = skb.clone();
                if linear_for(&mut c, Some(&*p.pt)) {
                    let _ = p.pt.func(c, ctx);
                }
            }
            prev = Some(e);
        }
    }
    if let Some(p) = prev {
        if !linear_for(&mut skb, Some(&*p.pt)) {
            kfree_skb_reason(skb, DropReason::Nomem);
            return NetRx::Drop;
        }
        return p.pt.func(skb, ctx);
    }
    if let Some(dev) = cached_dev(net, dev_cache, ifindex) {
        dev.rx_dropped_inc();
    }
    tracing::trace!(target: "netstack::softnet", ifindex, proto, reason = "UNHANDLED_PROTO", "netif_receive_skb drop");
    kfree_skb_reason(skb, DropReason::UnhandledProto);
    NetRx::Drop
}

/// Gives every `ptype_all` tap of the packet's device a clone of it (the
/// `ptype_all` loop of `__netif_receive_skb_core()`); out of line so that a
/// host without taps pays one test.
#[inline(never)]
fn deliver_ptype_all<C: SoftnetContext>(ctx: &mut C, ptypes: &PtypeLists<C>, skb: &SkBuff) {
    for tap in &ptypes.all {
        if tap.dev.is_none_or(|d| d == skb.ifindex) {
            let mut c = skb.clone();
            if linear_for(&mut c, Some(&*tap.pt)) {
                let _ = tap.pt.func(c, ctx);
            }
        }
    }
}

/// Runs the device's tc ingress hook, if it has one: the packet back to go
/// on, or what became of it (dropped, stolen). Mirrors
/// `sch_handle_ingress()`.
#[inline(never)]
fn sch_handle_ingress<C: SoftnetContext>(
    ctx: &mut C,
    ptypes: &PtypeLists<C>,
    mut skb: SkBuff,
) -> Result<SkBuff, NetRx> {
    let ifindex = skb.ifindex;
    let Some((_, hook)) = ptypes.ingress.iter().find(|(i, _)| *i == ifindex) else {
        return Ok(skb);
    };
    if !linear_for::<C>(&mut skb, None) {
        kfree_skb_reason(skb, DropReason::Nomem);
        return Err(NetRx::Drop);
    }
    match hook.classify(skb, ctx) {
        TcVerdict::Ok(s) => Ok(s),
        TcVerdict::Shot(s) => {
            kfree_skb_reason(s, DropReason::TcIngress);
            Err(NetRx::Drop)
        }
        TcVerdict::Stolen => Err(NetRx::Success),
    }
}

/// Delivers a received packet on this CPU (or, with RPS, queues it for the
/// CPU its flow maps to).
///
/// Mirrors `netif_receive_skb()`: for callers outside a NAPI poll (NAPI
/// drivers use [`napi::NapiPollCtx::netif_receive_skb`], which lands in
/// the same place). Call it from the CPU's runner (softirq context).
/// Consumes `skb`. `skb.protocol`, `skb.ifindex` and `skb.queue_mapping`
/// (the rx queue) must be set.
pub fn netif_receive_skb<C: SoftnetContext>(ctx: &mut C, skb: SkBuff) -> NetRx {
    let sd = ctx.softnet_data();
    let cpu = sd.cpu;
    let net = Arc::clone(&sd.net);
    let ptypes = sd.ptypes();
    let mut cache = None;
    netif_receive_skb_internal(ctx, &net, &ptypes, cpu, skb, true, &mut cache)
}

/// Queues a received packet on a backlog for later processing: RPS's
/// choice, or this CPU's.
///
/// Mirrors `netif_rx()` → `netif_rx_internal()` → `enqueue_to_backlog()`.
/// For packets that do not come from a NAPI poll (loopback, tunnels,
/// non-NAPI drivers). Drops past `netdev_max_backlog`
/// ([`DropReason::CpuBacklog`], counted in the target's `dropped`).
pub fn netif_rx<C: SoftnetContext>(ctx: &mut C, mut skb: SkBuff) -> NetRx {
    let sd = ctx.softnet_data();
    let cpu = sd.cpu;
    let net = Arc::clone(&sd.net);
    let mut cache = None;
    let target = if net.dev_base.rps_needed() {
        get_rps_cpu(&net, &mut skb, &mut cache).unwrap_or(cpu)
    } else {
        cpu
    };
    net.enqueue_from(skb, target, Some(cpu))
}

/// The `NET_RX` softirq: polls the NAPIs scheduled on this CPU within the
/// packet budget and the time limit.
///
/// Mirrors `net_rx_action()`: takes this CPU's poll list; polls each NAPI
/// once with its weight (`napi_poll()`), subtracting its work from
/// `netdev_budget` (300); a NAPI that used its whole weight goes on the
/// repoll list. When the list runs dry it picks up NAPIs scheduled
/// meanwhile (if nothing waits for a repoll). It stops when the budget is
/// spent or `netdev_budget_usecs` (2000 µs, rounded up to jiffies) have
/// passed on the context's clock, counting a `time_squeeze`. Unfinished,
/// newly scheduled and repolled NAPIs go back on the list, in that order,
/// and `NET_RX` is raised again if it is not empty.
///
/// Call it from the CPU's softirq dispatch for [`SoftirqNr::NetRx`].
#[inline]
pub fn net_rx_action<C: SoftnetContext>(ctx: &mut C) {
    let net = Arc::clone(ctx.softnet_data().softnet());
    net_rx_action_in(ctx, &net);
}

/// [`net_rx_action`] for a caller that holds the host's softnet state
/// apart from the context (`net` must be the context's
/// [`SoftnetData::softnet`]): spares the `Arc` clone and drop (two
/// locked instructions) the context's own reference would cost per
/// softirq run, as it is borrowed mutably for the whole poll.
#[tracing::instrument(level = "trace", skip_all, name = "net_rx_action")]
pub fn net_rx_action_in<C: SoftnetContext>(ctx: &mut C, net: &Softnet<C>) {
    let sd = ctx.softnet_data();
    debug_assert!(
        core::ptr::eq(net, Arc::as_ptr(&sd.net)),
        "net_rx_action_in: another host's softnet"
    );
    let cpu = sd.cpu;
    let Ok(poll_list) = net.poll_lists.cpu(cpu) else {
        return;
    };
    let ptypes = sd.take_ptypes();
    let usecs = u64::try_from(net.sysctl.netdev_budget_usecs()).unwrap_or(0);
    let time_limit = jiffies(ctx.now()) + usecs_to_jiffies(usecs);
    let mut budget = net.sysctl.netdev_budget();
    let sd = ctx.softnet_data();
    let mut list = core::mem::take(&mut sd.rx_list);
    let mut repoll = core::mem::take(&mut sd.rx_repoll);
    // Both come back empty (see the end of this function); the tests
    // spare the out-of-line `VecDeque::clear` (~18 instructions each) per
    // softirq run.
    if !list.is_empty() {
        list.clear();
    }
    if !repoll.is_empty() {
        repoll.clear();
    }
    poll_list.list_splice_init_into(&mut list);
    loop {
        let Some(n) = list.pop_front() else {
            if repoll.is_empty() {
                // `goto start`: anything scheduled while we polled?
                poll_list.list_splice_init_into(&mut list);
                if list.is_empty() {
                    break;
                }
                continue;
            }
            break;
        };
        budget -= napi_poll_one(ctx, net, &ptypes, cpu, &n, &mut repoll) as i64;
        if budget <= 0 || jiffies(ctx.now()) >= time_limit {
            net.cpus[cpu].queue.time_squeeze.inc_local();
            break;
        }
    }
    tracing::trace!(target: "netstack::softnet", cpu, budget = net.sysctl.netdev_budget(), left = budget, "net_rx_action done");
    if !poll_list.is_empty() {
        list.extend(poll_list.list_splice_init());
    }
    if !repoll.is_empty() {
        list.extend(repoll.drain(..));
    }
    if !list.is_empty() {
        poll_list.list_splice(&mut list);
    }
    let sd = ctx.softnet_data();
    sd.put_ptypes(ptypes);
    put_back(&mut sd.rx_list, list);
    put_back(&mut sd.rx_repoll, repoll);
    if !poll_list.is_empty() {
        let _ = net.softirqs.raise_softirq_irqoff(cpu, SoftirqNr::NetRx);
    }
    if let Some(woken) = net.take_woken() {
        for (dev, q) in woken {
            netif_schedule_queue(ctx, &dev, q);
        }
    }
}

/// Puts a working list back in `slot`, which holds the empty list
/// `mem::take` left there. An unallocated list is forgotten rather than
/// dropped: it owns nothing, and its drop (not inlined) costs ~20
/// instructions per `net_rx_action`; one that somehow holds anything is
/// dropped as usual.
fn put_back<T>(slot: &mut VecDeque<T>, list: VecDeque<T>) {
    let old = core::mem::replace(slot, list);
    if old.capacity() == 0 {
        core::mem::forget(old);
    }
}

/// One `napi_poll()` with the right receive sink.
fn napi_poll_one<C: SoftnetContext>(
    ctx: &mut C,
    net: &Softnet<C>,
    ptypes: &PtypeLists<C>,
    cpu: usize,
    n: &SyncArc<NapiStruct>,
    repoll: &mut VecDeque<SyncArc<NapiStruct>>,
) -> usize {
    let is_backlog = SyncArc::ptr_eq(n, &net.cpus[cpu].backlog);
    let now = ctx.now();
    let mut sink = RxSink {
        ctx,
        net,
        ptypes,
        cpu,
        rps: !is_backlog,
        dev_cache: None,
    };
    match napi::napi_poll(n, cpu, &net.softirqs, &mut sink, now) {
        Ok(r) => {
            if r.repoll {
                repoll.push_back(SyncArc::clone(n));
            }
            r.work
        }
        Err(e) => {
            tracing::error!(target: "netstack::softnet", cpu, error = %e, "napi_poll refused");
            0
        }
    }
}

/// Picks the transmit queue for an skb.
///
/// Mirrors `netdev_core_pick_tx()` → `netdev_pick_tx()`: queue 0 on a
/// single-queue device; else the XPS map of this CPU (`get_xps_queue()`),
/// else the flow hash (`skb_tx_hash()`). Only the queues the driver uses
/// (`real_num_tx_queues`) are picked.
pub fn netdev_pick_tx(dev: &NetDev, cpu: usize, skb: &mut SkBuff) -> u16 {
    let n = dev.real_num_tx_queues();
    if n <= 1 {
        return 0;
    }
    dev.get_xps_queue(cpu, skb)
        .unwrap_or_else(|| skb_tx_hash(skb, n))
}

/// Transmits an skb on a device: picks the queue, enqueues on its qdisc and
/// runs the qdisc (or, for `noqueue`, calls the driver directly).
///
/// Mirrors `dev_queue_xmit()` → `__dev_queue_xmit()` → `__dev_xmit_skb()`.
/// A qdisc that may be bypassed (`TCQ_F_CAN_BYPASS`: `pfifo_fast`,
/// `pfifo`, a `bfifo` that fits a full frame), is empty and is not being
/// run is skipped: the packet goes straight to the driver
/// (`sch_direct_xmit()`) and is counted in the qdisc's `Sent` bytes and
/// packets, as if it had been enqueued and dequeued at once; a packet the
/// driver refuses is requeued in the qdisc.
/// Consumes `skb` (data at the Ethernet header). Returns the qdisc's verdict
/// ([`NetXmit::Drop`] when it refused the packet, which it freed and
/// counted). Errors: [`Errno::NetDown`] when the device is down, or a
/// `noqueue` device is busy (the skb is freed and `tx_dropped` counted,
/// as Linux's "Virtual device asks to queue packet!").
#[tracing::instrument(level = "trace", skip_all, name = "dev_queue_xmit", fields(ifindex = dev.ifindex(), len = skb.len()))]
pub fn dev_queue_xmit<C: SoftnetContext>(
    ctx: &mut C,
    dev: &Arc<NetDev>,
    mut skb: SkBuff,
) -> Result<NetXmit, Errno> {
    skb.ifindex = dev.ifindex();
    if !dev.is_up() {
        dev.tx_dropped_inc();
        kfree_skb_reason(skb, DropReason::DevReady);
        return Err(Errno::NetDown);
    }
    let cpu = ctx.smp_processor_id();
    let txq = netdev_pick_tx(dev, cpu, &mut skb);
    skb.queue_mapping = txq;
    let q = &dev.txq[usize::from(txq)];
    let mut root = q.root.lock();
    if root.qdisc.has_enqueue() {
        if root.deactivated {
            drop(root);
            kfree_skb_reason(skb, DropReason::QdiscDrop);
            return Ok(NetXmit::Drop);
        }
        if !root.running && root.qdisc.bypass(&skb) && qdisc_run_begin(&mut root) {
            // A work-conserving qdisc with nothing queued and nobody
            // running it: straight to the driver, counted as sent (by
            // `bypass`).
            let (mut root, sent) = sch_direct_xmit(ctx, dev, txq, skb, root);
            if sent {
                // Packets other CPUs enqueued meanwhile.
                qdisc_run_inner(ctx, dev, txq, root);
            } else {
                root.running = false;
            }
            return Ok(NetXmit::Success);
        }
        let rc = root.qdisc.enqueue(skb, ctx.now());
        if qdisc_run_begin(&mut root) {
            qdisc_run_inner(ctx, dev, txq, root);
        }
        return Ok(rc);
    }
    drop(root);
    let stopped = dev
        .tx_queues()
        .get(txq)
        .is_none_or(netcore::NetdevQueue::is_stopped);
    if !stopped {
        match dev_hard_start_xmit_list(ctx, dev, txq, validate_xmit_skb(skb, dev)) {
            (NetdevTx::Ok, _) => return Ok(NetXmit::Success),
            (NetdevTx::Busy(s), rest) => {
                // Segments behind a refused one go with it.
                for seg in rest.into_iter().flatten() {
                    dev.tx_dropped_inc();
                    kfree_skb_reason(seg, DropReason::NotSpecified);
                }
                skb = s;
            }
        }
    }
    tracing::warn!(target: "netstack::softnet", ifindex = dev.ifindex(), "Virtual device asks to queue packet!");
    dev.tx_dropped_inc();
    kfree_skb_reason(skb, DropReason::NotSpecified);
    Err(Errno::NetDown)
}

/// Gives every tap a clone of an outgoing packet (`PACKET_OUTGOING`).
///
/// Mirrors `dev_queue_xmit_nit()`.
fn dev_queue_xmit_nit<C: SoftnetContext>(ctx: &mut C, ptypes: &PtypeLists<C>, skb: &SkBuff) {
    for tap in &ptypes.all {
        if tap.dev.is_none_or(|d| d == skb.ifindex) {
            let mut clone = skb.clone();
            clone.pkt_type = netcore::PktType::Outgoing;
            let _ = tap.pt.func(clone, ctx);
        }
    }
}

/// Hands one skb to the driver: taps first, then `start_xmit` under the
/// device lock (refused as busy if the queue is stopped).
///
/// Mirrors `dev_hard_start_xmit()` → `xmit_one()` → `netdev_start_xmit()`,
/// with `sch_direct_xmit()`'s `netif_xmit_frozen_or_stopped()` check. Like
/// Linux, a packet the driver refuses and that is sent again later is seen
/// by the taps each time it is tried. Inline: on the transmit path of
/// every packet, where a call would move the skb once more.
#[inline(always)]
pub(crate) fn dev_hard_start_xmit<C: SoftnetContext>(
    ctx: &mut C,
    dev: &NetDev,
    txq: u16,
    skb: SkBuff,
) -> NetdevTx {
    let stopped = || {
        dev.tx_queues()
            .get(txq)
            .is_none_or(netcore::NetdevQueue::is_stopped)
    };
    if stopped() {
        return NetdevTx::Busy(skb);
    }
    let sd = ctx.softnet_data();
    sd.refresh_ptypes();
    if sd.ptype_taps {
        let ptypes = sd.ptypes();
        dev_queue_xmit_nit(ctx, &ptypes, &skb);
    }
    let mut d = dev.device_lock();
    if stopped() {
        return NetdevTx::Busy(skb);
    }
    d.start_xmit(skb, txq)
}

/// Hands the packets [`validate_xmit_skb`] left to the driver, in order,
/// until one is refused; returns the last verdict and the packets not yet
/// tried (behind a refused one), `None` when there was a single packet.
///
/// Mirrors `dev_hard_start_xmit()`'s loop over an skb list (`xmit_one()`
/// per packet). A dropped packet counts as sent, as Linux continues. The
/// rest is an `Option` so the common single packet neither builds nor
/// drops an empty `VecDeque` (a non-inlined drop, ~65 instructions per
/// packet).
pub(crate) fn dev_hard_start_xmit_list<C: SoftnetContext>(
    ctx: &mut C,
    dev: &NetDev,
    txq: u16,
    skbs: XmitSkbs,
) -> (NetdevTx, Option<VecDeque<SkBuff>>) {
    match skbs {
        XmitSkbs::One(skb) => (dev_hard_start_xmit(ctx, dev, txq, skb), None),
        XmitSkbs::Dropped => (NetdevTx::Ok, None),
        XmitSkbs::Segs(mut segs) => {
            while let Some(seg) = segs.pop_front() {
                if let NetdevTx::Busy(seg) = dev_hard_start_xmit(ctx, dev, txq, seg) {
                    return (NetdevTx::Busy(seg), Some(segs));
                }
            }
            (NetdevTx::Ok, Some(segs))
        }
    }
}

/// Puts a tx queue's qdisc on this CPU's output queue and raises `NET_TX`,
/// unless it is already scheduled.
///
/// Mirrors `__netif_schedule()` / `__netif_reschedule()`.
#[doc(alias = "__netif_schedule")]
pub fn netif_schedule_queue<C: SoftnetContext>(ctx: &mut C, dev: &Arc<NetDev>, queue: u16) {
    let Some(q) = dev.txq.get(usize::from(queue)) else {
        return;
    };
    if q.sched.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    let sd = ctx.softnet_data();
    sd.output_queue.push_back((Arc::clone(dev), queue));
    let _ = sd.net.softirqs.raise_softirq(sd.cpu, SoftirqNr::NetTx);
}

/// Called when the driver's tx queue `queue` has room again: starts it
/// and, if it was stopped, schedules its qdisc.
///
/// Mirrors `netif_tx_wake_queue()`. Errors name a bad `queue`.
pub fn netif_tx_wake_queue<C: SoftnetContext>(
    ctx: &mut C,
    dev: &Arc<NetDev>,
    queue: u16,
) -> Result<(), SoftnetError> {
    let state = dev
        .tx_queues()
        .get(queue)
        .ok_or(SoftnetError::QueueOutOfRange {
            queue,
            num_queues: dev.num_tx_queues(),
        })?;
    let was_stopped = state.wake();
    let waiting = dev.txq[usize::from(queue)]
        .wait_wake
        .swap(false, std::sync::atomic::Ordering::AcqRel);
    if was_stopped || waiting {
        netif_schedule_queue(ctx, dev, queue);
    }
    Ok(())
}

/// Remembers that tx queue `queue` holds packets but its driver queue is
/// stopped: it is scheduled again once the driver wakes it.
pub(crate) fn wait_for_wake<C: SoftnetContext>(ctx: &mut C, dev: &Arc<NetDev>, queue: u16) {
    let q = &dev.txq[usize::from(queue)];
    if !q.wait_wake.swap(true, std::sync::atomic::Ordering::AcqRel) {
        ctx.softnet_data().net.watch_for_wake(dev, queue);
    }
}

/// Frees an skb later, in this CPU's `NET_TX` softirq (for contexts that
/// must not free now). Mirrors `dev_kfree_skb_irq()` (`dev_consume_skb_irq()`).
pub fn dev_kfree_skb_irq<C: SoftnetContext>(ctx: &mut C, skb: SkBuff) {
    let sd = ctx.softnet_data();
    sd.completion_queue.push(skb);
    let _ = sd.net.softirqs.raise_softirq(sd.cpu, SoftirqNr::NetTx);
}

/// The `NET_TX` softirq: frees the completion queue and runs the qdiscs
/// scheduled on this CPU.
///
/// Mirrors `net_tx_action()`: each scheduled qdisc loses its SCHED mark
/// and is run (`qdisc_run()`) if its root lock is free, else scheduled
/// again. Also schedules queues whose driver woke them since they stopped.
#[tracing::instrument(level = "trace", skip_all, name = "net_tx_action")]
pub fn net_tx_action<C: SoftnetContext>(ctx: &mut C) {
    let sd = ctx.softnet_data();
    for skb in core::mem::take(&mut sd.completion_queue) {
        consume_skb(skb);
    }
    let out = core::mem::take(&mut sd.output_queue);
    let net = Arc::clone(&sd.net);
    for (dev, queue) in out {
        let q = &dev.txq[usize::from(queue)];
        q.sched.store(false, std::sync::atomic::Ordering::Release);
        match q.root.try_lock() {
            Some(mut root) => {
                if qdisc_run_begin(&mut root) {
                    qdisc_run_inner(ctx, &dev, queue, root);
                }
            }
            None => netif_schedule_queue(ctx, &dev, queue),
        }
    }
    if let Some(woken) = net.take_woken() {
        for (dev, q) in woken {
            netif_schedule_queue(ctx, &dev, q);
        }
    }
}

/// Handles an expired [`SoftnetTimer`]: a qdisc watchdog schedules its
/// qdisc. Mirrors `qdisc_watchdog()`.
pub fn handle_timer<C: SoftnetContext>(ctx: &mut C, timer: SoftnetTimer) {
    match timer {
        SoftnetTimer::QdiscWatchdog { ifindex, queue } => {
            let dev = ctx.softnet_data().net.dev_base.dev_get_by_index(ifindex);
            if let Some(dev) = dev {
                netif_schedule_queue(ctx, &dev, queue);
            }
        }
    }
}
