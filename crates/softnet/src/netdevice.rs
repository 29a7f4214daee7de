//! The core's half of `struct net_device` and the host's device table.
//!
//! Mirrors `struct net_device` / `struct netdev_queue` /
//! `struct netdev_rx_queue` (the fields the core owns, not the driver's),
//! `register_netdevice()`, `unregister_netdevice()`, `dev_open()`,
//! `dev_close()`, `dev_get_by_index()`, `__dev_get_by_name()`,
//! `dev_graft_qdisc()`, `dev_get_stats()` and the `rps_cpus`/`xps_cpus`
//! queue attributes of `net/core/net-sysfs.c`.
//!
//! The driver (`Box<dyn NetDevice>`) sits behind the *device TX lock*; each
//! transmit queue's qdisc sits behind its *qdisc root lock*. The two are
//! never held together (`netcore::lock_order`).
//!
//! # Deviations from Linux
//!
//! - The default qdisc (`net.core.default_qdisc`, or `noqueue` when
//!   `txqueuelen` is 0) is attached per transmit queue at registration,
//!   where Linux attaches `noop` and installs `mq` + the default qdisc in
//!   `dev_activate()`; a device that is down refuses packets before the
//!   qdisc instead.
//! - An unknown ethertype counts `rx_dropped`, as Linux does
//!   (`rx_nohandler` is only counted by exact-match delivery, for bonding
//!   slaves, which does not exist here; the counter is kept for `ip -s`).

use core::fmt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use netcore::Sysctl;
use netcore::{
    DevAddr, Errno, NetDevice, NetdevFeatures, NetdevTxQueues, RtnlLinkStats64,
    SharedNetdevFeatures,
};
use netcore::{SpinLock, SpinLockGuard};
use parking_lot::{Mutex, RwLock};
use qdisc::{Noqueue, PfifoFast, Qdisc, QdiscDev, qdisc_create_dflt};

use crate::SoftnetError;
use crate::rps::{CpuMask, RpsMap, XpsMaps};

/// The qdisc of one transmit queue and the state its root lock guards.
pub(crate) struct QdiscRoot {
    pub(crate) qdisc: Box<dyn Qdisc>,
    /// `__QDISC_STATE_RUNNING` / `qdisc->running`: one CPU runs it.
    pub(crate) running: bool,
    /// `__QDISC_STATE_DEACTIVATED`: the device is down.
    pub(crate) deactivated: bool,
}

/// One transmit queue's core state.
///
/// Mirrors the core half of `struct netdev_queue` (`qdisc`, `xps_cpus`) and
/// the `state` bits of its `struct Qdisc`.
pub(crate) struct TxQueue {
    /// The qdisc root lock and what it guards.
    pub(crate) root: Mutex<QdiscRoot>,
    /// `__QDISC_STATE_SCHED`: on some CPU's output queue.
    pub(crate) sched: AtomicBool,
    /// Left with packets because the driver stopped the queue; waiting for
    /// `netif_tx_wake_queue`.
    pub(crate) wait_wake: AtomicBool,
    xps_cpus: Mutex<CpuMask>,
}

/// One receive queue's core state. Mirrors `struct netdev_rx_queue`.
struct RxQueue {
    rps_cpus: Mutex<CpuMask>,
    rps_map: RwLock<Option<RpsMap>>,
}

/// Counters the core keeps for a device besides the driver's.
///
/// Mirrors `struct net_device_core_stats` (`dev->core_stats`).
#[derive(Debug, Default)]
struct CoreStats {
    rx_dropped: AtomicU64,
    tx_dropped: AtomicU64,
    rx_nohandler: AtomicU64,
}

/// A registered network device: the driver behind its lock, the qdiscs
/// of its transmit queues, the steering maps of its queues, the counters
/// the core keeps.
///
/// Mirrors the core's part of `struct net_device`. Shared as `Arc<NetDev>`
/// (Linux's `dev_hold()` reference); get one with
/// [`DevBase::dev_get_by_index`] or [`DevBase::dev_get_by_name`].
#[doc(alias = "net_device")]
pub struct NetDev {
    name: String,
    ifindex: u32,
    dev_addr: DevAddr,
    nr_cpus: usize,
    device: SpinLock<Box<dyn NetDevice>>,
    /// The driver's published `dev->features`, read on transmit without
    /// the device lock (`None`: the driver keeps none, ask it under lock).
    features: Option<SharedNetdevFeatures>,
    tx_state: NetdevTxQueues,
    pub(crate) txq: Box<[TxQueue]>,
    rxq: Box<[RxQueue]>,
    xps: RwLock<Option<XpsMaps>>,
    up: AtomicBool,
    registered: AtomicBool,
    stats: CoreStats,
    rps_needed: Arc<AtomicUsize>,
}

impl fmt::Debug for NetDev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetDev")
            .field("name", &self.name)
            .field("ifindex", &self.ifindex)
            .field("up", &self.is_up())
            .field("num_tx_queues", &self.txq.len())
            .field("num_rx_queues", &self.rxq.len())
            .finish_non_exhaustive()
    }
}

/// The qdisc a new tx queue gets: `noqueue` without a queue length, else
/// `net.core.default_qdisc` (`pfifo_fast` if that kind cannot be built
/// without parameters). Mirrors `attach_one_default_qdisc()`.
fn default_qdisc(sysctl: &Sysctl, txqueuelen: u32, mtu: u32) -> Box<dyn Qdisc> {
    if txqueuelen == 0 {
        return Box::new(Noqueue::new());
    }
    let kind = sysctl.get_str(Sysctl::DEFAULT_QDISC);
    let dev = QdiscDev {
        tx_queue_len: txqueuelen,
        mtu,
    };
    qdisc_create_dflt(&kind, &dev).unwrap_or_else(|e| {
        tracing::warn!(target: "netstack::softnet", kind = &*kind, error = %e, "default_qdisc refused; using pfifo_fast");
        Box::new(PfifoFast::new(txqueuelen))
    })
}

impl NetDev {
    /// The interface name (`dev->name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index (`dev->ifindex`).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The MAC address at registration (`dev->dev_addr`).
    pub fn dev_addr(&self) -> DevAddr {
        self.dev_addr
    }

    /// Whether the device is administratively up (`IFF_UP`).
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Whether it is still in the device table.
    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    /// How many tx queues (and qdiscs) the device has:
    /// `dev->num_tx_queues`.
    pub fn num_tx_queues(&self) -> u16 {
        self.txq.len() as u16
    }

    /// How many of them the driver uses (`dev->real_num_tx_queues`, set
    /// by its `netif_set_real_num_tx_queues()`): packets are put only on
    /// these.
    pub fn real_num_tx_queues(&self) -> u16 {
        self.tx_state.real_num().clamp(1, self.num_tx_queues())
    }

    /// `dev->real_num_rx_queues`.
    pub fn num_rx_queues(&self) -> u16 {
        self.rxq.len() as u16
    }

    /// The driver's transmit-queue states (stopped or not), shared with the
    /// driver.
    pub fn tx_queues(&self) -> &NetdevTxQueues {
        &self.tx_state
    }

    /// Runs `f` on the driver with the device lock held (what the core does
    /// around `ndo_*` calls). Never call it with a qdisc root lock held.
    #[doc(alias = "netif_tx_lock")]
    pub fn with_device<R>(&self, f: impl FnOnce(&mut dyn NetDevice) -> R) -> R {
        f(&mut **self.device.lock())
    }

    pub(crate) fn device_lock(&self) -> SpinLockGuard<'_, Box<dyn NetDevice>> {
        self.device.lock()
    }

    /// The device's enabled offloads (`dev->features`): from the driver's
    /// published cell without the device lock when it keeps one (as Linux
    /// reads `dev->features` on transmit), else from the driver under the
    /// device lock.
    #[inline]
    pub fn features(&self) -> NetdevFeatures {
        match &self.features {
            Some(f) => f.load(),
            None => self.device.lock().features(),
        }
    }

    /// Runs `f` on the qdisc of tx queue `queue` with its root lock held
    /// (to read its statistics or `tc` text). Errors name `queue`.
    pub fn with_qdisc<R>(
        &self,
        queue: u16,
        f: impl FnOnce(&mut dyn Qdisc) -> R,
    ) -> Result<R, SoftnetError> {
        let txq = self.txq_checked(queue)?;
        Ok(f(&mut *txq.root.lock().qdisc))
    }

    fn txq_checked(&self, queue: u16) -> Result<&TxQueue, SoftnetError> {
        self.txq
            .get(usize::from(queue))
            .ok_or(SoftnetError::QueueOutOfRange {
                queue,
                num_queues: self.num_tx_queues(),
            })
    }

    fn rxq_checked(&self, queue: u16) -> Result<&RxQueue, SoftnetError> {
        self.rxq
            .get(usize::from(queue))
            .ok_or(SoftnetError::QueueOutOfRange {
                queue,
                num_queues: self.num_rx_queues(),
            })
    }

    /// Replaces the qdisc of tx queue `queue`, even while the device runs;
    /// returns the old one, reset (its packets freed, its counters kept).
    ///
    /// Mirrors `dev_graft_qdisc()` + `qdisc_reset()` (as `tc qdisc replace
    /// dev DEV root ...` does through `qdisc_graft()`).
    pub fn dev_graft_qdisc(
        &self,
        queue: u16,
        qdisc: Box<dyn Qdisc>,
    ) -> Result<Box<dyn Qdisc>, SoftnetError> {
        let txq = self.txq_checked(queue)?;
        let mut root = txq.root.lock();
        let mut old = core::mem::replace(&mut root.qdisc, qdisc);
        old.reset();
        Ok(old)
    }

    /// The device counters: the driver's `ndo_get_stats64` plus the drops
    /// the core counted. Mirrors `dev_get_stats()`.
    pub fn dev_get_stats(&self) -> RtnlLinkStats64 {
        let mut s = self.with_device(|d| d.stats64());
        s.rx_dropped += self.stats.rx_dropped.load(Ordering::Relaxed);
        s.tx_dropped += self.stats.tx_dropped.load(Ordering::Relaxed);
        s.rx_nohandler += self.stats.rx_nohandler.load(Ordering::Relaxed);
        s
    }

    /// `dev_core_stats_rx_dropped_inc()`.
    pub(crate) fn rx_dropped_inc(&self) {
        self.stats.rx_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// `dev_core_stats_tx_dropped_inc()`.
    pub(crate) fn tx_dropped_inc(&self) {
        self.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the RPS CPUs of rx queue `queue` from sysfs text (`echo f >
    /// /sys/class/net/DEV/queues/rx-N/rps_cpus`); an empty mask (`0`)
    /// turns RPS off for the queue.
    ///
    /// Mirrors `store_rps_map()`. Errors: a bad queue or mask, named.
    pub fn store_rps_cpus(&self, queue: u16, text: &str) -> Result<(), SoftnetError> {
        let mask = CpuMask::parse(text, self.nr_cpus)?;
        self.set_rps_cpus(queue, &mask)
    }

    /// Sets the RPS CPUs of rx queue `queue` from a mask.
    pub fn set_rps_cpus(&self, queue: u16, mask: &CpuMask) -> Result<(), SoftnetError> {
        let rxq = self.rxq_checked(queue)?;
        let map = RpsMap::from_mask(mask);
        let mut cur = rxq.rps_map.write();
        match (cur.is_some(), map.is_some()) {
            (false, true) => {
                self.rps_needed.fetch_add(1, Ordering::Release);
            }
            (true, false) => {
                self.rps_needed.fetch_sub(1, Ordering::Release);
            }
            _ => {}
        }
        *cur = map;
        *rxq.rps_cpus.lock() = mask.clone();
        Ok(())
    }

    /// The `rps_cpus` text of rx queue `queue` (`show_rps_map()`), without
    /// the trailing newline.
    pub fn show_rps_cpus(&self, queue: u16) -> Result<String, SoftnetError> {
        Ok(self.rxq_checked(queue)?.rps_cpus.lock().to_string())
    }

    /// The CPU RPS steers a packet received on rx queue `queue` to, if the
    /// queue has a map; `hash` (the flow hash) is computed only then.
    pub(crate) fn rps_cpu_with(&self, queue: u16, hash: impl FnOnce() -> u32) -> Option<usize> {
        let rxq = self.rxq.get(usize::from(queue))?;
        let map = rxq.rps_map.read();
        map.as_ref().map(|m| m.cpu_for_hash(hash()))
    }

    /// Sets the XPS CPUs of tx queue `queue` from sysfs text (`echo 1 >
    /// /sys/class/net/DEV/queues/tx-N/xps_cpus`).
    ///
    /// Mirrors `xps_cpus_store()` → `netif_set_xps_queue()`.
    pub fn store_xps_cpus(&self, queue: u16, text: &str) -> Result<(), SoftnetError> {
        let mask = CpuMask::parse(text, self.nr_cpus)?;
        let txq = self.txq_checked(queue)?;
        *txq.xps_cpus.lock() = mask;
        let masks: Vec<CpuMask> = self.txq.iter().map(|q| q.xps_cpus.lock().clone()).collect();
        *self.xps.write() = XpsMaps::build(&masks, self.nr_cpus);
        Ok(())
    }

    /// The `xps_cpus` text of tx queue `queue` (`xps_cpus_show()`).
    pub fn show_xps_cpus(&self, queue: u16) -> Result<String, SoftnetError> {
        Ok(self.txq_checked(queue)?.xps_cpus.lock().to_string())
    }

    /// The XPS pick for `cpu`, if XPS is configured. Mirrors
    /// `get_xps_queue()`.
    pub(crate) fn get_xps_queue(&self, cpu: usize, skb: &mut netcore::SkBuff) -> Option<u16> {
        let maps = self.xps.read();
        let q = maps.as_ref()?.queue_for(cpu, skb)?;
        (q < self.real_num_tx_queues()).then_some(q)
    }
}

/// The host's device table.
///
/// Mirrors `dev_base_head` with the `dev_index_head` and `dev_name_head`
/// hashes of `struct net`.
pub struct DevBase {
    inner: RwLock<DevBaseInner>,
    nr_cpus: usize,
    sysctl: Arc<Sysctl>,
    rps_needed: Arc<AtomicUsize>,
}

#[derive(Default)]
struct DevBaseInner {
    by_index: BTreeMap<u32, Arc<NetDev>>,
    by_name: HashMap<String, u32>,
}

impl fmt::Debug for DevBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.read();
        f.debug_list()
            .entries(inner.by_index.values().map(|d| d.name()))
            .finish()
    }
}

/// `IFNAMSIZ`: an interface name is at most 15 bytes plus the NUL.
pub const IFNAMSIZ: usize = 16;

/// Mirrors `dev_valid_name()`.
fn dev_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < IFNAMSIZ
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
}

impl DevBase {
    pub(crate) fn new(nr_cpus: usize, sysctl: Arc<Sysctl>) -> DevBase {
        DevBase {
            inner: RwLock::new(DevBaseInner::default()),
            nr_cpus,
            sysctl,
            rps_needed: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether any rx queue of any device has an RPS map (the
    /// `rps_needed` static key).
    #[inline]
    pub(crate) fn rps_needed(&self) -> bool {
        self.rps_needed.load(Ordering::Relaxed) != 0
    }

    /// Adds a driver's device to the table with `num_rx_queues` receive
    /// queues; its transmit queues are the driver's. Every tx queue gets
    /// the default qdisc. The device starts down.
    ///
    /// Mirrors `register_netdevice()` (with `alloc_netdev_mqs()`'s queue
    /// counts). Errors: [`Errno::Inval`] for an invalid name
    /// (`dev_valid_name()`), ifindex 0 or no rx queue; [`Errno::Exist`]
    /// when the name or ifindex is taken.
    pub fn register_netdevice(
        &self,
        dev: Box<dyn NetDevice>,
        num_rx_queues: u16,
    ) -> Result<Arc<NetDev>, Errno> {
        let name = dev.name().to_owned();
        let ifindex = dev.ifindex();
        if !dev_valid_name(&name) || ifindex == 0 || num_rx_queues == 0 {
            return Err(Errno::Inval);
        }
        let mut inner = self.inner.write();
        if inner.by_index.contains_key(&ifindex) || inner.by_name.contains_key(&name) {
            return Err(Errno::Exist);
        }
        let tx_state = dev.tx_queues().clone();
        let features = dev.shared_features();
        let (txqueuelen, mtu) = (dev.txqueuelen(), dev.mtu());
        let txq = (0..tx_state.len())
            .map(|_| TxQueue {
                root: Mutex::new(QdiscRoot {
                    qdisc: default_qdisc(&self.sysctl, txqueuelen, mtu),
                    running: false,
                    deactivated: true,
                }),
                sched: AtomicBool::new(false),
                wait_wake: AtomicBool::new(false),
                xps_cpus: Mutex::new(CpuMask::new(self.nr_cpus)),
            })
            .collect();
        let rxq = (0..num_rx_queues)
            .map(|_| RxQueue {
                rps_cpus: Mutex::new(CpuMask::new(self.nr_cpus)),
                rps_map: RwLock::new(None),
            })
            .collect();
        let nd = Arc::new(NetDev {
            dev_addr: dev.dev_addr(),
            name: name.clone(),
            ifindex,
            nr_cpus: self.nr_cpus,
            device: SpinLock::new(dev),
            features,
            tx_state,
            txq,
            rxq,
            xps: RwLock::new(None),
            up: AtomicBool::new(false),
            registered: AtomicBool::new(true),
            stats: CoreStats::default(),
            rps_needed: Arc::clone(&self.rps_needed),
        });
        inner.by_index.insert(ifindex, Arc::clone(&nd));
        inner.by_name.insert(name, ifindex);
        tracing::info!(target: "netstack::softnet", ifindex, name = nd.name(), "register_netdevice");
        Ok(nd)
    }

    /// Closes the device and removes it from the table; returns it (the
    /// driver is dropped with the last `Arc`).
    ///
    /// Mirrors `unregister_netdevice()`. Errors: [`Errno::NoDev`].
    pub fn unregister_netdevice(&self, ifindex: u32) -> Result<Arc<NetDev>, Errno> {
        let dev = {
            let mut inner = self.inner.write();
            let dev = inner.by_index.remove(&ifindex).ok_or(Errno::NoDev)?;
            inner.by_name.remove(dev.name());
            dev
        };
        // Best effort, as Linux: a failing ndo_stop does not keep it registered.
        let _ = dev_close(&dev);
        for q in &dev.rxq {
            if q.rps_map.write().take().is_some() {
                self.rps_needed.fetch_sub(1, Ordering::Release);
            }
        }
        dev.registered.store(false, Ordering::Release);
        Ok(dev)
    }

    /// The device with index `ifindex`. Mirrors `dev_get_by_index()`.
    pub fn dev_get_by_index(&self, ifindex: u32) -> Option<Arc<NetDev>> {
        self.inner.read().by_index.get(&ifindex).cloned()
    }

    /// The device named `name`. Mirrors `__dev_get_by_name()` /
    /// `dev_get_by_name()`.
    #[doc(alias = "__dev_get_by_name")]
    pub fn dev_get_by_name(&self, name: &str) -> Option<Arc<NetDev>> {
        let inner = self.inner.read();
        let ifindex = inner.by_name.get(name)?;
        inner.by_index.get(ifindex).cloned()
    }

    /// Every registered device, by ifindex (`for_each_netdev()`).
    pub fn devices(&self) -> Vec<Arc<NetDev>> {
        self.inner.read().by_index.values().cloned().collect()
    }
}

/// Brings a device up: the driver's `open`, then its qdiscs are
/// activated. Opening an up device does nothing.
///
/// Mirrors `dev_open()` → `__dev_open()` → `ndo_open` + `dev_activate()`.
/// Errors: the driver's, or [`Errno::NoDev`] once unregistered.
pub fn dev_open(dev: &NetDev) -> Result<(), Errno> {
    if !dev.is_registered() {
        return Err(Errno::NoDev);
    }
    if dev.is_up() {
        return Ok(());
    }
    dev.with_device(|d| d.open())?;
    for q in &dev.txq {
        q.root.lock().deactivated = false;
    }
    dev.up.store(true, Ordering::Release);
    tracing::info!(target: "netstack::softnet", ifindex = dev.ifindex, "dev_open");
    Ok(())
}

/// Brings a device down: its qdiscs are deactivated and emptied, then the
/// driver's `stop`. Closing a down device does nothing.
///
/// Mirrors `dev_close()` → `__dev_close_many()` → `dev_deactivate_many()`
/// (qdiscs reset, packets freed) + `ndo_stop`.
pub fn dev_close(dev: &NetDev) -> Result<(), Errno> {
    if !dev.up.swap(false, Ordering::AcqRel) {
        return Ok(());
    }
    for q in &dev.txq {
        let mut root = q.root.lock();
        root.deactivated = true;
        root.qdisc.reset();
        q.wait_wake.store(false, Ordering::Relaxed);
    }
    tracing::info!(target: "netstack::softnet", ifindex = dev.ifindex, "dev_close");
    dev.with_device(|d| d.stop())
}
