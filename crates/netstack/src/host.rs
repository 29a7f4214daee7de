//! A host: one network namespace's worth of stack, built from its parts.
//!
//! Mirrors the boot of the networking stack: `net_dev_init()` (per-CPU
//! softnet data, the backlog NAPIs, the softirq actions), the PCI core
//! probing the NICs and the driver registering them (`pci_register_driver()`
//! → `igb_probe()` → `register_netdev()`), `inet_init()` (`dev_add_pack()`
//! for IPv4 and ARP, `inet_add_protocol()` for ICMP…), then the
//! configuration `ip addr add`, `ip route add` and `sysctl -w` would do.
//!
//! ```text
//!  Host ── HostShared (Arc, the namespace: devices, ptypes, hooks, FIB, MIBs, sysctls)
//!   └── cpus: [CpuCtx; N]   each: SoftnetData, TimerWheel<HostTimer>, clock
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use irq::{CpuWakeup, IrqTable, Softirqs};
use napi::PollLists;
use netcore::{
    Clock, DevAddr, EthtoolChannels, EthtoolOps, EthtoolRingparam, NetMibs, PagePool,
    PagePoolParams, SizeClass, Sysctl, TimerWheel, VirtualClock,
};
use netfilter::NfHooks;
use nic_hw::{IgbDevice, IgbDriver, IgbNetdev, PciBdf, PciBus, PhyPort};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use qdisc::Qdisc;
use softnet::{NetDev, PacketType, PcapFilter, PcapTap, Softnet, dev_open};

use crate::cpu::{CpuCtx, ProcessWork};
use crate::error::NetstackError;
use crate::netdev::DriverNetDevice;

/// The first IRQ number the host's PCI bus hands out for MSI-X vectors
/// (lower numbers are the legacy lines of a PC).
pub const FIRST_MSI_IRQ: u32 = 24;

/// How many IRQ lines a host's interrupt controller has.
pub const NR_IRQS: u32 = 1024;

/// The ifindex the first NIC gets (1 is `lo` in Linux).
pub const FIRST_NIC_IFINDEX: u32 = 2;

/// How one NIC of a host is configured at build time.
///
/// Mirrors what a PC's slot, the NIC's EEPROM and the first `ethtool -L`,
/// `-G`, `-C` calls decide: the MAC, the number of combined channels, the
/// ring sizes, the interrupt moderation, and what the PHY is plugged into.
#[derive(Default)]
pub struct NicConfig {
    /// The MAC in the NIC's EEPROM; derived from the host name if `None`.
    pub mac: Option<[u8; 6]>,
    /// Combined channels (queue pairs with one MSI-X vector each); 1 if 0.
    pub queues: u32,
    /// rx/tx descriptors per ring (`ethtool -G rx N tx N`); the driver's
    /// default if `None`.
    pub ring: Option<u32>,
    /// `rx-usecs` (`ethtool -C`); the driver's default if `None`.
    pub rx_usecs: Option<u32>,
    /// The `rps_cpus` mask text (hex, as in sysfs) for every rx queue.
    pub rps_cpus: Option<String>,
    phy: Option<Box<dyn PhyPort + Send>>,
}

impl fmt::Debug for NicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NicConfig")
            .field("mac", &self.mac)
            .field("queues", &self.queues)
            .field("ring", &self.ring)
            .field("rx_usecs", &self.rx_usecs)
            .field("rps_cpus", &self.rps_cpus)
            .field("phy", &self.phy.is_some())
            .finish()
    }
}

impl NicConfig {
    /// A NIC with one queue pair, the driver's defaults and no cable.
    pub fn new() -> NicConfig {
        NicConfig::default()
    }

    /// Sets the MAC.
    pub fn mac(mut self, mac: [u8; 6]) -> NicConfig {
        self.mac = Some(mac);
        self
    }

    /// Sets the number of combined channels.
    pub fn queues(mut self, n: u32) -> NicConfig {
        self.queues = n;
        self
    }

    /// Sets the rx and tx ring sizes.
    pub fn ring(mut self, n: u32) -> NicConfig {
        self.ring = Some(n);
        self
    }

    /// Sets `rx-usecs`.
    pub fn rx_usecs(mut self, usecs: u32) -> NicConfig {
        self.rx_usecs = Some(usecs);
        self
    }

    /// Sets the RPS mask of every rx queue (hex text, as `rps_cpus`).
    pub fn rps_cpus(mut self, mask: &str) -> NicConfig {
        self.rps_cpus = Some(mask.to_owned());
        self
    }

    /// Plugs the PHY into `port` (a wire end, a switch port, a TAP).
    pub fn phy(mut self, port: Box<dyn PhyPort + Send>) -> NicConfig {
        self.phy = Some(port);
        self
    }
}

/// One NIC of a built host: the device model, the driver's adapter and
/// the core's registered device.
#[derive(Clone)]
pub struct Nic {
    /// The device model on the bus (what the runtime polls).
    pub device: Arc<IgbDevice>,
    /// Where the device sits on the host's PCI bus (`lspci`).
    pub bdf: PciBdf,
    /// The driver's adapter (ethtool reaches it here).
    pub adapter: IgbNetdev,
    /// The registered net device.
    pub netdev: Arc<NetDev>,
}

impl fmt::Debug for Nic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nic")
            .field("name", &self.netdev.name())
            .field("ifindex", &self.netdev.ifindex())
            .finish_non_exhaustive()
    }
}

/// The host-wide state: what Linux keeps in `struct net` and in globals.
///
/// Shared (`Arc`) by every CPU context of the host and by the runtimes.
pub struct HostShared {
    /// The host's name (`uname -n`), used in reports and walks.
    pub name: String,
    /// The interrupt controller's lines.
    pub irqs: Arc<IrqTable>,
    /// Per-CPU softirq state.
    pub softirqs: Arc<Softirqs>,
    /// The "kick CPU n" hook the runtime sets.
    pub wakeup: CpuWakeup,
    /// Per-CPU NAPI poll lists.
    pub poll_lists: Arc<PollLists>,
    /// The device layer (devices, packet types, backlogs).
    pub softnet: Arc<Softnet<CpuCtx>>,
    /// The one buffer pool.
    pub pool: PagePool,
    /// The sysctls.
    pub sysctl: Arc<Sysctl>,
    /// The MIB counters (`/proc/net/snmp`, `/proc/net/netstat`).
    pub mibs: Arc<NetMibs>,
    /// The netfilter hooks.
    pub nf_hooks: NfHooks<CpuCtx>,
    /// The IPv4 state (addresses, routes, ARP, fragments, protocols).
    pub ipv4: Arc<ipv4::Ipv4Net<CpuCtx>>,
    /// The ping sockets.
    pub pings: crate::ping::PingTable,
    /// The iptables tables and conntrack, once a ruleset is loaded.
    pub netfilter: crate::netfilter::HostNetfilter,
    /// The transports (the UDP table) and the socket layer.
    pub transports: crate::sockets::Transports,
    /// The NICs bound to a driver and registered, in bus order.
    nics: RwLock<Vec<Nic>>,
    /// Every NIC device model plugged into the host, bound or removed
    /// from the bus: the hardware the runtimes poll.
    hw: Vec<Arc<IgbDevice>>,
    /// The PCI bus the NICs sit on.
    pub bus: Mutex<PciBus>,
    /// The igb driver.
    pub driver: Arc<IgbDriver>,
    process: Box<[Mutex<VecDeque<ProcessWork>>]>,
    /// A bit per CPU whose process queue is not empty, kept under the
    /// queue's lock: a runtime's look for work reads it without the lock
    /// (as `need_resched` is read before the runqueue's lock is taken).
    process_queued: AtomicU64,
}

impl fmt::Debug for HostShared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostShared")
            .field("name", &self.name)
            .field("nics", &*self.nics.read())
            .finish_non_exhaustive()
    }
}

impl HostShared {
    /// The number of CPUs.
    pub fn nr_cpus(&self) -> usize {
        self.process.len()
    }

    /// The index of `cpu`'s process queue (the last CPU's for a CPU the
    /// host does not have).
    fn process_index(&self, cpu: usize) -> usize {
        cpu.min(self.process.len() - 1)
    }

    /// Whether `cpu`'s process queue has work (without its lock).
    #[inline]
    pub(crate) fn process_pending(&self, cpu: usize) -> bool {
        self.process_queued.load(Ordering::Acquire) & (1 << self.process_index(cpu)) != 0
    }

    /// Takes the next work queued for `cpu`'s process context, with how
    /// much is queued behind it.
    #[inline]
    pub(crate) fn pop_process_work(&self, cpu: usize) -> Option<(ProcessWork, usize)> {
        if !self.process_pending(cpu) {
            return None;
        }
        let i = self.process_index(cpu);
        let mut q = self.process[i].lock();
        let work = q.pop_front();
        if q.is_empty() {
            self.process_queued.fetch_and(!(1 << i), Ordering::Release);
        }
        work.map(|w| (w, q.len()))
    }

    /// Queues `work` for `cpu`'s process context and kicks the CPU.
    pub fn run_on(&self, cpu: usize, work: impl FnOnce(&mut CpuCtx) + Send + 'static) {
        let i = self.process_index(cpu);
        {
            let mut q = self.process[i].lock();
            q.push_back(Box::new(work));
            self.process_queued.fetch_or(1 << i, Ordering::Release);
        }
        self.wakeup.kick(cpu);
    }

    /// The registered device named `name`.
    pub fn dev(&self, name: &str) -> Option<Arc<NetDev>> {
        self.softnet.dev_base().dev_get_by_name(name)
    }

    /// The NIC whose net device is named `name`.
    pub fn nic(&self, name: &str) -> Option<Nic> {
        self.nics
            .read()
            .iter()
            .find(|n| n.netdev.name() == name)
            .cloned()
    }

    /// The NICs bound to their driver and registered, in bus order (what
    /// `ip link` lists). A NIC removed from the bus
    /// ([`Host::pci_stop_and_remove_bus_device`]) is not among them; one
    /// probed again ([`Host::pci_rescan_bus`]) comes back at the end.
    ///
    /// The list is read-locked while the guard lives: do not remove or
    /// probe a device while holding it.
    pub fn nics(&self) -> RwLockReadGuard<'_, Vec<Nic>> {
        self.nics.read()
    }

    /// Every NIC device model plugged into the host, whether a driver
    /// drives it or it was removed from the bus: the hardware the
    /// runtimes poll (a removed device still takes frames off its cable
    /// and drops them, as a powered card with no driver does).
    pub fn nic_devices(&self) -> &[Arc<IgbDevice>] {
        &self.hw
    }
}

/// A host: the shared namespace state and its CPUs.
///
/// Build one with [`Host::builder`]; run it in a [`crate::Network`]
/// (simulation) or with [`crate::ThreadRuntime`].
pub struct Host {
    pub(crate) shared: Arc<HostShared>,
    /// Each CPU's context, boxed: lending it to application code
    /// ([`Host::app`]) or to a CPU thread moves a pointer, not the context.
    #[allow(clippy::vec_box)] // the box is what a lend swaps
    pub(crate) cpus: Vec<Box<CpuCtx>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The CPUs' view of `clock`, held for [`crate::cpu::cpu_run_in`].
    pub(crate) cpu_clock: crate::cpu::CpuClock,
    /// One bit per CPU that may have work the simulation has not looked
    /// at: set by the host's wake-up hook (an IRQ delivered, a softirq
    /// raised from elsewhere, process work queued) and after process
    /// context ran on the CPU outside the simulation loop; see
    /// [`Host::kick_all`].
    pub(crate) kicked: Arc<irq::KickMask>,
    /// Per CPU, the placeholder context that stood in for it during the
    /// last [`Host::app`] call, kept for the next one.
    pub(crate) spare_ctx: Vec<Option<Box<CpuCtx>>>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.shared.name)
            .field("cpus", &self.shared.nr_cpus())
            .field("nics", &*self.shared.nics())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Host`]: CPUs, NICs, addresses, routes, sysctls.
///
/// ```
/// use netstack::{Host, NicConfig};
/// let h = Host::builder().name("h1").cpus(2).nic(NicConfig::new().queues(2)).build()?;
/// assert_eq!(h.nr_cpus(), 2);
/// assert_eq!(h.shared().dev("eth0").unwrap().ifindex(), 2);
/// # Ok::<(), netstack::NetstackError>(())
/// ```
pub struct HostBuilder {
    name: String,
    cpus: usize,
    nics: Vec<NicConfig>,
    addrs: Vec<(usize, String)>,
    routes: Vec<String>,
    sysctls: Vec<(String, String)>,
    clock: Option<Arc<dyn Clock>>,
    seed: u64,
}

impl fmt::Debug for HostBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBuilder")
            .field("name", &self.name)
            .field("cpus", &self.cpus)
            .field("nics", &self.nics)
            .field("addrs", &self.addrs)
            .field("routes", &self.routes)
            .field("sysctls", &self.sysctls)
            .finish_non_exhaustive()
    }
}

impl Default for HostBuilder {
    fn default() -> HostBuilder {
        HostBuilder {
            name: "host".to_owned(),
            cpus: 1,
            nics: Vec::new(),
            addrs: Vec::new(),
            routes: Vec::new(),
            sysctls: Vec::new(),
            clock: None,
            seed: 1,
        }
    }
}

impl HostBuilder {
    /// Sets the host name.
    pub fn name(mut self, name: &str) -> HostBuilder {
        name.clone_into(&mut self.name);
        self
    }

    /// Sets the number of CPUs (1..=64).
    pub fn cpus(mut self, n: usize) -> HostBuilder {
        self.cpus = n;
        self
    }

    /// Adds a NIC (the next `ethN`).
    pub fn nic(mut self, nic: NicConfig) -> HostBuilder {
        self.nics.push(nic);
        self
    }

    /// Adds an address (`198.18.0.1/24`) to the last NIC added (`ip addr
    /// add … dev ethN`).
    pub fn addr(mut self, cidr: &str) -> HostBuilder {
        let dev = self.nics.len().saturating_sub(1);
        self.addrs.push((dev, cidr.to_owned()));
        self
    }

    /// Adds an address to NIC number `nic` (0 is `eth0`).
    pub fn addr_on(mut self, nic: usize, cidr: &str) -> HostBuilder {
        self.addrs.push((nic, cidr.to_owned()));
        self
    }

    /// Adds a route in `ip route add` syntax: `198.18.1.0/24 via
    /// 198.18.0.254`, `default via 198.18.0.254`, `198.18.2.0/24 dev eth1`.
    pub fn route(mut self, spec: &str) -> HostBuilder {
        self.routes.push(spec.to_owned());
        self
    }

    /// Sets a sysctl (`net.ipv4.ip_forward`, `1`) before the stack starts.
    pub fn sysctl(mut self, key: &str, value: &str) -> HostBuilder {
        self.sysctls.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The clock every CPU reads (a shared `VirtualClock` in a simulated
    /// network, a `MonotonicClock` for the thread runtime). A private
    /// virtual clock by default.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> HostBuilder {
        self.clock = Some(clock);
        self
    }

    /// Seeds the host's random numbers (IP IDs, ARP jitter).
    pub fn seed(mut self, seed: u64) -> HostBuilder {
        self.seed = seed;
        self
    }

    /// Builds the host: `net_dev_init`, PCI probe, device registration and
    /// open, `inet_init`, then addresses, routes and sysctls.
    ///
    /// Errors name the argument and what it accepts, or the layer that
    /// refused.
    pub fn build(self) -> Result<Host, NetstackError> {
        let n = self.cpus;
        if n == 0 || n > 64 {
            return Err(NetstackError::bad_arg("cpus", "1..=64"));
        }
        let clock = self
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(VirtualClock::new()));
        let sysctl = Arc::new(Sysctl::new());
        for (k, v) in &self.sysctls {
            sysctl
                .set(k, v)
                .map_err(|e| NetstackError::Config(format!("sysctl {k}={v}: {e}")))?;
        }
        // net_dev_init(): per-CPU state, backlog NAPIs.
        let wakeup = CpuWakeup::new();
        let irqs = Arc::new(
            IrqTable::new("PCI-MSIX", NR_IRQS, n, wakeup.clone()).map_err(NetstackError::layer)?,
        );
        let softirqs = Arc::new(Softirqs::new(n, wakeup.clone()).map_err(NetstackError::layer)?);
        let poll_lists = PollLists::new(n).map_err(NetstackError::layer)?;
        let softnet = Softnet::<CpuCtx>::new(
            Arc::clone(&poll_lists),
            Arc::clone(&softirqs),
            Arc::clone(&sysctl),
        )
        .map_err(NetstackError::layer)?;
        let rx_bufs: usize = self
            .nics
            .iter()
            // Bounded by igb's limits (16 queues, 4096 descriptors): the
            // pool is sized before `ethtool -L`/`-G` below check the
            // values, and a ring of u32::MAX must get their error, not an
            // allocation of 2^32 buffer slots.
            .map(|c| c.queues.clamp(1, 16) as usize * c.ring.unwrap_or(256).min(4096) as usize)
            .sum();
        let pool = PagePool::new(PagePoolParams {
            small: SizeClass {
                pool_size: (rx_bufs + 1024).next_power_of_two(),
                ..SizeClass::DEFAULT
            },
            ..PagePoolParams::default()
        })
        .map_err(NetstackError::layer)?;
        let mibs = Arc::new(NetMibs::new(n));

        // The PCI bus: one 82576 per NIC, then the igb driver probes them.
        let mut bus = PciBus::new(0, Arc::clone(&irqs), FIRST_MSI_IRQ);
        let mut nic_cfgs = Vec::with_capacity(self.nics.len());
        let mut devices = Vec::with_capacity(self.nics.len());
        for (i, mut cfg) in self.nics.into_iter().enumerate() {
            let mac = cfg.mac.unwrap_or_else(|| default_mac(&self.name, i));
            if mac[0] & 1 != 0 || mac == [0; 6] {
                return Err(NetstackError::bad_arg(
                    "mac",
                    "a unicast, non-zero address (02:… is locally administered)",
                ));
            }
            let dev = IgbDevice::new(mac, cfg.phy.take());
            let bdf = bus
                .add_device(Arc::clone(&dev))
                .map_err(NetstackError::layer)?;
            devices.push((dev, bdf));
            nic_cfgs.push(cfg);
        }
        let driver = IgbDriver::new(pool.clone(), Arc::clone(&poll_lists), FIRST_NIC_IFINDEX);
        bus.pci_register_driver(driver.clone())
            .map_err(NetstackError::layer)?;

        // register_netdev() + dev_open(), with the first ethtool settings.
        let adapters = driver.netdevs();
        if adapters.len() != devices.len() {
            return Err(NetstackError::Config(format!(
                "igb bound {} of {} NICs",
                adapters.len(),
                devices.len()
            )));
        }
        let hw: Vec<Arc<IgbDevice>> = devices.iter().map(|(d, _)| Arc::clone(d)).collect();
        let mut nics = Vec::with_capacity(adapters.len());
        for ((adapter, (device, bdf)), cfg) in adapters.into_iter().zip(devices).zip(&nic_cfgs) {
            let queues = cfg.queues.max(1);
            {
                let mut a = adapter.lock();
                let name = netcore::NetDevice::name(&*a).to_owned();
                let ops: &mut dyn EthtoolOps = &mut *a;
                let ch = ops.get_channels().map_err(NetstackError::layer)?;
                ops.set_channels(&EthtoolChannels {
                    combined_count: queues,
                    ..ch
                })
                .map_err(|e| NetstackError::Config(format!("{name}: ethtool -L: {e}")))?;
                if let Some(ring) = cfg.ring {
                    let r = ops.get_ringparam().map_err(NetstackError::layer)?;
                    ops.set_ringparam(&EthtoolRingparam {
                        rx_pending: ring,
                        tx_pending: ring,
                        ..r
                    })
                    .map_err(|e| NetstackError::Config(format!("{name}: ethtool -G: {e}")))?;
                }
                if let Some(usecs) = cfg.rx_usecs {
                    let c = ops.get_coalesce().map_err(NetstackError::layer)?;
                    ops.set_coalesce(&netcore::EthtoolCoalesce {
                        rx_coalesce_usecs: usecs,
                        ..c
                    })
                    .map_err(|e| NetstackError::Config(format!("{name}: ethtool -C: {e}")))?;
                }
            }
            let netdev = softnet
                .dev_base()
                .register_netdevice(
                    Box::new(DriverNetDevice::new(Arc::clone(&adapter))),
                    queues as u16,
                )
                .map_err(|e| NetstackError::Config(format!("register_netdevice: {e}")))?;
            dev_open(&netdev).map_err(|e| NetstackError::Config(format!("dev_open: {e}")))?;
            // Spread the queue vectors over the CPUs, as irqbalance would.
            {
                let a = adapter.lock();
                for q in 0..queues as usize {
                    if let Some(irq) = a.queue_irq(q) {
                        irqs.irq_set_affinity(irq, q % n)
                            .map_err(NetstackError::layer)?;
                    }
                }
            }
            if let Some(mask) = &cfg.rps_cpus {
                for q in 0..queues as u16 {
                    netdev
                        .store_rps_cpus(q, mask)
                        .map_err(|e| NetstackError::Config(format!("rps_cpus {mask}: {e}")))?;
                }
            }
            nics.push(Nic {
                device,
                bdf,
                adapter,
                netdev,
            });
        }

        let now = clock.now();
        let ipv4 = Arc::new(ipv4::Ipv4Net::new(
            Arc::clone(&sysctl),
            Arc::clone(&mibs),
            pool.clone(),
            self.seed,
            now,
        ));
        let transports = crate::sockets::Transports::new(self.seed, n, &sysctl, &clock);
        let shared = Arc::new(HostShared {
            name: self.name.clone(),
            irqs,
            softirqs,
            wakeup,
            poll_lists,
            softnet: Arc::clone(&softnet),
            pool,
            sysctl,
            mibs,
            nf_hooks: NfHooks::new(),
            ipv4,
            pings: crate::ping::PingTable::default(),
            netfilter: crate::netfilter::HostNetfilter::default(),
            transports,
            nics: RwLock::new(nics),
            hw,
            bus: Mutex::new(bus),
            driver,
            process: (0..n).map(|_| Mutex::new(VecDeque::new())).collect(),
            process_queued: AtomicU64::new(0),
        });
        let mut cpus = Vec::with_capacity(n);
        for cpu in 0..n {
            cpus.push(Box::new(CpuCtx {
                cpu,
                sd: softnet.softnet_data(cpu).map_err(NetstackError::layer)?,
                timers: TimerWheel::new(now).into(),
                clock: crate::cpu::CpuClock::new(&clock),
                host: Arc::clone(&shared),
                tcp_trace: None,
                tcp_dst: None,
                xmit_dev: ipv4::XmitDevCache::default(),
                udp_rcv: udp::UdpRcvCache::default(),
            }));
        }
        // inet_init() runs on CPU 0 (its neighbour GC timer lives there).
        crate::inet::inet_setup(&mut cpus[0], &self.addrs, &self.routes)?;
        Ok(Host {
            shared,
            cpus,
            cpu_clock: crate::cpu::CpuClock::new(&clock),
            clock,
            kicked: Arc::new(irq::KickMask::new(all_cpus(n))),
            spare_ctx: (0..n).map(|_| None).collect(),
        })
    }
}

/// The mask with a bit for each of `n` CPUs (1..=64).
pub(crate) fn all_cpus(n: usize) -> u64 {
    u64::MAX >> (64 - n.clamp(1, 64))
}

/// The MAC a NIC gets when none is given: locally administered,
/// `02:` + four bytes of a hash of the host name + the NIC number.
pub fn default_mac(host: &str, nic: usize) -> DevAddr {
    // FNV-1a: stable across runs and platforms.
    let mut h: u32 = 0x811c_9dc5;
    for b in host.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let b = h.to_be_bytes();
    [0x02, b[0], b[1], b[2], b[3], nic as u8]
}

impl Drop for Host {
    /// Tears the host down as a network namespace going away does:
    /// every device is closed through its driver (`dev_close()` →
    /// `ndo_stop`, which frees the IRQs, stops NAPI and gives every posted
    /// receive buffer back to the pool), and work still queued for the
    /// CPUs is dropped (it may hold sockets of the host).
    ///
    /// Mirrors `cleanup_net()` → `default_device_exit_batch()` →
    /// `unregister_netdevice_many()` → `dev_close_many()`.
    fn drop(&mut self) {
        for nic in self.shared.nics().iter() {
            if let Err(e) = softnet::dev_close(&nic.netdev) {
                tracing::warn!(target: "netstack::host", host = %self.shared.name, dev = nic.netdev.name(), err = %e, "dev_close at teardown");
            }
        }
        for q in &self.shared.process {
            let work: Vec<ProcessWork> = q.lock().drain(..).collect();
            drop(work);
        }
        self.shared.process_queued.store(0, Ordering::Release);
    }
}

impl Host {
    /// A builder with one CPU, no NIC.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The host's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The number of CPUs.
    pub fn nr_cpus(&self) -> usize {
        self.shared.nr_cpus()
    }

    /// The host-wide state.
    pub fn shared(&self) -> &Arc<HostShared> {
        &self.shared
    }

    /// The clock the host's CPUs read.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Runs `f` on CPU `cpu`'s context now (process context). Only while
    /// the host is not handed to the thread runtime; errors name `cpu`.
    pub fn with_cpu<R>(
        &mut self,
        cpu: usize,
        f: impl FnOnce(&mut CpuCtx) -> R,
    ) -> Result<R, NetstackError> {
        self.with_cpu_box(cpu, |_, ctx| f(ctx))
    }

    /// [`Host::with_cpu`] on the box the host keeps the context in, so
    /// that `f` can lend it by moving the pointer ([`Host::app`]); `f`
    /// also gets the host-wide state, borrowed.
    pub(crate) fn with_cpu_box<R>(
        &mut self,
        cpu: usize,
        f: impl FnOnce(&HostShared, &mut Box<CpuCtx>) -> R,
    ) -> Result<R, NetstackError> {
        let ctx = self.cpus.get_mut(cpu).ok_or_else(|| {
            NetstackError::bad_arg("cpu", "a CPU of the host, or the host runs on threads")
        })?;
        let r = f(&self.shared, ctx);
        // What ran may have left the CPU work (a softirq raised without a
        // kick) or rung a doorbell: the simulation looks again. On the
        // simulation's own thread the mark is a plain load and store.
        self.kicked.or(1 << cpu);
        Ok(r)
    }

    /// Marks every CPU as possibly having work, so that the simulation
    /// looks at each again (after code it does not see ran: an
    /// application event, a change made between runs).
    pub(crate) fn kick_all(&self) {
        self.kicked.or(all_cpus(self.shared.nr_cpus()));
    }

    /// Queues `work` for CPU `cpu`'s process context (it runs the next
    /// time the runtime runs that CPU).
    pub fn run_on(&self, cpu: usize, work: impl FnOnce(&mut CpuCtx) + Send + 'static) {
        self.shared.run_on(cpu, work);
    }

    /// Registers a packet handler or tap. Mirrors `dev_add_pack()`.
    pub fn dev_add_pack(&self, pt: Arc<dyn PacketType<CpuCtx>>) {
        self.shared.softnet.dev_add_pack(pt);
    }

    /// Replaces the qdisc of `dev`'s tx queue `queue` (`tc qdisc replace
    /// dev DEV root …`); returns the old one.
    pub fn replace_qdisc(
        &self,
        dev: &str,
        queue: u16,
        qdisc: Box<dyn Qdisc>,
    ) -> Result<Box<dyn Qdisc>, NetstackError> {
        let d = self
            .shared
            .dev(dev)
            .ok_or_else(|| NetstackError::NoDevice(dev.to_owned()))?;
        d.dev_graft_qdisc(queue, qdisc)
            .map_err(NetstackError::layer)
    }

    /// Runs `f` on the ethtool operations of `dev`'s driver.
    pub fn with_ethtool<R>(
        &self,
        dev: &str,
        f: impl FnOnce(&mut dyn EthtoolOps) -> R,
    ) -> Result<R, NetstackError> {
        let nic = self
            .shared
            .nic(dev)
            .ok_or_else(|| NetstackError::NoDevice(dev.to_owned()))?;
        let mut a = nic.adapter.lock();
        Ok(f(&mut *a))
    }

    /// Removes NIC `dev`'s PCI device from the running host, as `echo 1 >
    /// /sys/bus/pci/devices/…/remove` does; returns where it sat on the bus.
    ///
    /// Mirrors `pci_stop_and_remove_bus_device()`: the driver is unbound
    /// (`igb_remove()`), whose `unregister_netdev()` closes the device
    /// (`dev_close()`: qdiscs reset and their packets freed, `ndo_stop`
    /// frees the rings' buffers back to the pool, the IRQs and the NAPIs),
    /// and the `NETDEV_UNREGISTER` notifier takes IPv4 off it
    /// (`inetdev_destroy()`: its addresses and every route through it go,
    /// as `fib_disable_ip()` does; `neigh_ifdown()` flushes its neighbours).
    /// The MSI-X vectors are freed and bus mastering is turned off. The
    /// device model stays in its slot ([`HostShared::nic_devices`]) and
    /// [`Host::pci_rescan_bus`] finds it again.
    ///
    /// Sockets keep their state: TCP keeps retransmitting with backoff
    /// (its route lookups fail meanwhile) until the device and an address
    /// come back or `tcp_retries2` runs out.
    ///
    /// Errors: [`NetstackError::NoDevice`] when no NIC is named `dev`.
    ///
    /// ```
    /// use netstack::{Host, NicConfig};
    /// let mut h = Host::builder().nic(NicConfig::new()).addr("198.18.0.1/24").build()?;
    /// let old = h.shared().dev("eth0").unwrap().ifindex();
    /// h.pci_stop_and_remove_bus_device("eth0")?;
    /// assert!(h.shared().dev("eth0").is_none());
    /// assert_eq!(h.pci_rescan_bus()?, ["eth0"]);
    /// h.ip_addr_add("eth0", "198.18.0.1/24")?;
    /// assert_ne!(h.shared().dev("eth0").unwrap().ifindex(), old);
    /// # Ok::<(), netstack::NetstackError>(())
    /// ```
    ///
    /// # Deviations from Linux
    ///
    /// The igb driver here does not call the core's `unregister_netdev()`
    /// itself (the host registered the device, so the host unregisters it
    /// before unbinding the driver); the order of the steps is Linux's.
    #[doc(alias = "remove_device")]
    pub fn pci_stop_and_remove_bus_device(&mut self, dev: &str) -> Result<PciBdf, NetstackError> {
        let nic = self
            .shared
            .nic(dev)
            .ok_or_else(|| NetstackError::NoDevice(dev.to_owned()))?;
        let ifindex = nic.netdev.ifindex();
        // unregister_netdev(): dev_close(), then NETDEV_UNREGISTER.
        self.shared
            .softnet
            .dev_base()
            .unregister_netdevice(ifindex)
            .map_err(|e| NetstackError::Config(format!("unregister_netdevice {dev}: {e}")))?;
        let shared = Arc::clone(&self.shared);
        match self.with_cpu(0, |ctx| shared.ipv4.inetdev_destroy(ctx, ifindex))? {
            Ok(()) | Err(netcore::Errno::NoDev) => {}
            Err(e) => {
                return Err(NetstackError::Config(format!("inetdev_destroy {dev}: {e}")));
            }
        }
        self.shared
            .nics
            .write()
            .retain(|n| !Arc::ptr_eq(&n.netdev, &nic.netdev));
        // The bus unbinds igb (igb_remove()) and forgets the device.
        self.shared
            .bus
            .lock()
            .remove_device(nic.bdf)
            .map_err(|e| NetstackError::Config(format!("remove {}: {e}", nic.bdf)))?;
        tracing::info!(target: "netstack::host", host = %self.shared.name, dev, bdf = %nic.bdf, "pci_stop_and_remove_bus_device");
        Ok(nic.bdf)
    }

    /// Finds every NIC device in the host's slots that is not on the bus
    /// and probes it again, as `echo 1 > /sys/bus/pci/rescan` does;
    /// returns the names of the net devices that appeared.
    ///
    /// Mirrors `pci_rescan_bus()` → `pci_bus_add_devices()` →
    /// `igb_probe()` → `register_netdev()`, then `ip link set DEV up`
    /// (`dev_open()`, `NETDEV_UP`). Each device comes back as a new net
    /// device with a new ifindex and the driver's defaults (one queue
    /// pair, default rings and coalescing, no RPS): nothing of its former
    /// configuration survives, and it has no IPv4 address until one is
    /// added ([`Host::ip_addr_add`]).
    ///
    /// Errors: the bus's, the driver's or the core's, naming the step.
    /// The driver names a re-probed device as `dev_alloc_name("eth%d")`
    /// does: the lowest `eth<N>` no bound device uses.
    #[doc(alias = "probe_device")]
    pub fn pci_rescan_bus(&mut self) -> Result<Vec<String>, NetstackError> {
        let shared = Arc::clone(&self.shared);
        let n = shared.nr_cpus();
        let mut names = Vec::new();
        for device in &shared.hw {
            if shared
                .nics
                .read()
                .iter()
                .any(|x| Arc::ptr_eq(&x.device, device))
            {
                continue;
            }
            let before = shared.driver.netdevs();
            let bdf = shared
                .bus
                .lock()
                .add_device(Arc::clone(device))
                .map_err(|e| NetstackError::Config(format!("pci_rescan_bus: {e}")))?;
            let Some(adapter) = shared
                .driver
                .netdevs()
                .into_iter()
                .find(|a| !before.iter().any(|b| Arc::ptr_eq(a, b)))
            else {
                return Err(NetstackError::Config(format!(
                    "pci_rescan_bus: igb did not bind {bdf}"
                )));
            };
            let queues = {
                let mut a = adapter.lock();
                let ops: &mut dyn EthtoolOps = &mut *a;
                ops.get_channels()
                    .map_err(NetstackError::layer)?
                    .combined_count
                    .max(1)
            };
            let netdev = shared
                .softnet
                .dev_base()
                .register_netdevice(
                    Box::new(DriverNetDevice::new(Arc::clone(&adapter))),
                    queues as u16,
                )
                .map_err(|e| NetstackError::Config(format!("register_netdevice: {e}")))?;
            dev_open(&netdev).map_err(|e| NetstackError::Config(format!("dev_open: {e}")))?;
            {
                let a = adapter.lock();
                for q in 0..queues as usize {
                    if let Some(irq) = a.queue_irq(q) {
                        shared
                            .irqs
                            .irq_set_affinity(irq, q % n)
                            .map_err(NetstackError::layer)?;
                    }
                }
            }
            let ifindex = netdev.ifindex();
            shared.ipv4.inetdev_init(&netdev).map_err(|e| {
                NetstackError::Config(format!("inetdev_init {}: {e}", netdev.name()))
            })?;
            shared
                .ipv4
                .with_netns_mut(|x| x.devices.set_up(ifindex, true))
                .map_err(NetstackError::layer)?;
            self.with_cpu(0, |ctx| {
                ipv4::inetdev_event(ctx, ifindex, ipv4::NetdevEvent::Up)
            })?
            .map_err(NetstackError::layer)?;
            names.push(netdev.name().to_owned());
            tracing::info!(target: "netstack::host", host = %shared.name, dev = netdev.name(), %bdf, "pci_rescan_bus: probed");
            shared.nics.write().push(Nic {
                device: Arc::clone(device),
                bdf,
                adapter,
                netdev,
            });
        }
        Ok(names)
    }

    /// Adds an IPv4 address (`198.18.0.1/24`) to device `dev` of the
    /// running host, with its prefix route, as `ip addr add CIDR dev DEV`.
    ///
    /// Mirrors `inet_rtm_newaddr()` → `__inet_insert_ifa()` →
    /// `fib_add_ifaddr()`. Errors name the argument (`cidr`) or the
    /// device, or carry the layer's refusal (`EEXIST`).
    pub fn ip_addr_add(&mut self, dev: &str, cidr: &str) -> Result<(), NetstackError> {
        let d = self
            .shared
            .dev(dev)
            .ok_or_else(|| NetstackError::NoDevice(dev.to_owned()))?;
        let (a, plen) = crate::config::parse_cidr(cidr).map_err(NetstackError::Config)?;
        let ifa = ipv4::InIfaddr::new(d.ifindex(), a, plen, d.name());
        self.shared
            .ipv4
            .with_netns_mut(|n| n.inet_rtm_newaddr(ifa))
            .map_err(|e| NetstackError::Config(format!("ip addr add {cidr} dev {dev}: {e}")))?;
        // fib_inetaddr_event(NETDEV_UP): cached routes are looked up again.
        self.shared.ipv4.rt_cache_flush();
        Ok(())
    }

    /// Starts a pcap capture of `dev` (`tcpdump -i DEV -w PATH`): both
    /// directions, nanosecond timestamps of the host's clock.
    pub fn capture(&self, dev: &str, path: &Path) -> Result<Capture, NetstackError> {
        let d = self
            .shared
            .dev(dev)
            .ok_or_else(|| NetstackError::NoDevice(dev.to_owned()))?;
        let file = File::create(path)
            .map_err(|e| NetstackError::Io(format!("{}: {e}", path.display())))?;
        let tap = Arc::new(
            PcapTap::new(
                BufWriter::new(file),
                Vec::<PcapFilter>::new(),
                Some(d.ifindex()),
            )
            .map_err(|e| NetstackError::Io(format!("{}: {e}", path.display())))?,
        );
        self.dev_add_pack(tap.clone());
        Ok(Capture {
            tap,
            path: path.to_owned(),
        })
    }
}

/// A running pcap capture; flush it before reading the file.
#[derive(Debug, Clone)]
pub struct Capture {
    tap: Arc<PcapTap<BufWriter<File>>>,
    path: std::path::PathBuf,
}

impl Capture {
    /// Where the capture goes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Packets captured so far.
    pub fn captured(&self) -> u64 {
        self.tap.captured()
    }

    /// Writes buffered packets to the file.
    pub fn flush(&self) -> Result<(), NetstackError> {
        self.tap
            .with_writer(std::io::Write::flush)
            .map_err(|e| NetstackError::Io(format!("{}: {e}", self.path.display())))
    }
}
