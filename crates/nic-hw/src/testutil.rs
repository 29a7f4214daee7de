//! A tiny simulation for tests and benchmarks: hosts with one igb NIC each,
//! joined by a [`VirtualWire`], run in virtual time (`testutils` feature).
//!
//! Each [`TestHost`] has what the netstack runtime will own: an IRQ table,
//! softirqs, NAPI poll lists, the page pool, a PCI bus with one 82576 and
//! the igb driver bound to it. [`Sim::run_until`] is the event loop: it
//! polls each device (which moves frames between the wire and the rings
//! and raises MSI-X lines), runs each CPU's pending hard IRQs
//! (`handle_pending`), then its softirqs with a minimal `net_rx_action`
//! that polls the scheduled NAPIs and collects what they deliver, and
//! advances time to the next event (a frame on the wire, a moderation
//! timer).

use std::sync::{Arc, Mutex};

use irq::{CpuWakeup, IrqTable, SoftirqNr, Softirqs};
use napi::{PollLists, napi_poll};
use netcore::{Instant, NetDevice, PagePool, PagePoolParams, SkBuff};

use crate::igb_hw::IgbDevice;
use crate::igb_main::{IgbDriver, IgbNetdev};
use crate::pci::{PciBdf, PciBus};
use crate::phy::MediumPort;
use crate::virtual_wire::{LinkConfig, Side, VirtualWire};

/// The first IRQ line the test bus hands out (lines below are "legacy").
pub const TEST_FIRST_IRQ: u32 = 24;

/// One simulated host with one NIC.
pub struct TestHost {
    /// The host's IRQ lines.
    pub irqs: Arc<IrqTable>,
    /// The host's softirq state.
    pub softirqs: Softirqs,
    /// The host's NAPI poll lists.
    pub lists: Arc<PollLists>,
    /// The host's one page pool.
    pub pool: PagePool,
    /// The PCI bus the NIC sits on.
    pub bus: PciBus,
    /// The igb driver.
    pub driver: Arc<IgbDriver>,
    /// The NIC's address on the bus.
    pub bdf: PciBdf,
    /// The device model (what the event loop polls).
    pub dev: Arc<IgbDevice>,
    /// The net device the driver registered (`None` after removal).
    pub netdev: Option<IgbNetdev>,
    /// Every skb NAPI delivered, in order.
    pub delivered: Vec<SkBuff>,
    /// NAPI polls run (`napi_poll` calls).
    pub polls: u64,
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("bdf", &self.bdf)
            .field("delivered", &self.delivered.len())
            .finish_non_exhaustive()
    }
}

impl TestHost {
    /// A host with `nr_cpus` CPUs and an 82576 whose EEPROM holds `mac`,
    /// attached to `phy`, probed by igb (the device is not opened).
    pub fn new(
        mac: [u8; 6],
        phy: Option<Box<dyn crate::PhyPort + Send>>,
        nr_cpus: usize,
        pool: PagePool,
    ) -> TestHost {
        let wakeup = CpuWakeup::new();
        let irqs = Arc::new(
            IrqTable::new("test-msi", 256, nr_cpus, wakeup.clone()).expect("valid IRQ table"),
        );
        let softirqs = Softirqs::new(nr_cpus, wakeup).expect("valid softirqs");
        let lists = PollLists::new(nr_cpus).expect("valid poll lists");
        let mut bus = PciBus::new(0, Arc::clone(&irqs), TEST_FIRST_IRQ);
        let dev = IgbDevice::new(mac, phy);
        let bdf = bus.add_device(Arc::clone(&dev)).expect("bus has room");
        let driver = IgbDriver::new(pool.clone(), Arc::clone(&lists), 2);
        bus.pci_register_driver(driver.clone())
            .expect("igb registers once");
        let netdev = driver.netdev(bdf);
        TestHost {
            irqs,
            softirqs,
            lists,
            pool,
            bus,
            driver,
            bdf,
            dev,
            netdev,
            delivered: Vec::new(),
            polls: 0,
        }
    }

    /// Runs the host at `now` until it has nothing left to do at this
    /// instant: device poll, hard IRQs, softirqs (NET_RX polls NAPIs).
    pub fn run(&mut self, now: Instant) {
        for _ in 0..10_000 {
            let mut busy = self.dev.poll(now) > 0;
            for cpu in 0..self.softirqs.nr_cpus() {
                busy |= self.irqs.handle_pending(cpu, &self.softirqs).unwrap_or(0) > 0;
                while self.softirqs.local_softirq_pending(cpu).unwrap_or(0) != 0 {
                    busy = true;
                    let lists = Arc::clone(&self.lists);
                    let delivered = &mut self.delivered;
                    let polls = &mut self.polls;
                    let softirqs = &self.softirqs;
                    let _ = softirqs.do_softirq(
                        cpu,
                        || now,
                        || false,
                        |nr, ctx| {
                            if nr != SoftirqNr::NetRx {
                                return;
                            }
                            net_rx_action(&lists, cpu, ctx.softirqs(), delivered, polls, now);
                        },
                    );
                }
            }
            if !busy {
                return;
            }
        }
    }

    /// The next instant the host's device needs to run.
    pub fn next_event(&self) -> Option<Instant> {
        self.dev.next_event()
    }

    /// The net device; panics after removal (a test bug).
    pub fn nd(&self) -> netcore::SpinLockGuard<'_, crate::IgbAdapter> {
        self.netdev.as_ref().expect("device not removed").lock()
    }

    /// Opens the net device.
    pub fn open(&mut self) {
        self.nd().open().expect("open succeeds");
    }
}

/// A minimal `net_rx_action`: polls every NAPI on `cpu`'s list once (the
/// ones that used their whole weight go back on the list and `NET_RX` is
/// raised again).
fn net_rx_action(
    lists: &Arc<PollLists>,
    cpu: usize,
    softirqs: &Softirqs,
    delivered: &mut Vec<SkBuff>,
    polls: &mut u64,
    now: Instant,
) {
    let Ok(list) = lists.cpu(cpu) else { return };
    let mut repoll = Vec::new();
    while let Some(n) = list.pop_front() {
        *polls += 1;
        if let Ok(r) = napi_poll(&n, cpu, softirqs, delivered, now)
            && r.repoll
        {
            repoll.push(n);
        }
    }
    if !repoll.is_empty() {
        for n in repoll {
            list.list_add_tail(n);
        }
        let _ = softirqs.raise_softirq(cpu, SoftirqNr::NetRx);
    }
}

/// Two hosts, each with one NIC, on the two sides of one wire.
pub struct Sim {
    /// Virtual time.
    pub now: Instant,
    /// The wire (shared with the two NICs' PHY ports).
    pub wire: Arc<Mutex<VirtualWire>>,
    /// Host A (on `Side::A`) and host B.
    pub hosts: [TestHost; 2],
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.now)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

/// The MAC of host A's NIC.
pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
/// The MAC of host B's NIC.
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

impl Sim {
    /// Two one-CPU hosts with NICs `MAC_A` and `MAC_B` on a wire with
    /// `cfg` and `seed`, sharing one pool (as the one-pool rule allows
    /// within a test), both opened.
    pub fn two_nics(cfg: LinkConfig, seed: u64) -> Sim {
        let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
        Self::two_nics_with_pool(cfg, seed, pool, 1)
    }

    /// As [`Sim::two_nics`], with a given pool and CPU count.
    pub fn two_nics_with_pool(cfg: LinkConfig, seed: u64, pool: PagePool, cpus: usize) -> Sim {
        let wire = Arc::new(Mutex::new(
            VirtualWire::symmetric(cfg, seed).expect("valid link config"),
        ));
        let a = TestHost::new(
            MAC_A,
            Some(Box::new(MediumPort::new(Arc::clone(&wire), Side::A))),
            cpus,
            pool.clone(),
        );
        let b = TestHost::new(
            MAC_B,
            Some(Box::new(MediumPort::new(Arc::clone(&wire), Side::B))),
            cpus,
            pool,
        );
        let mut sim = Sim {
            now: Instant::ZERO,
            wire,
            hosts: [a, b],
        };
        for h in &mut sim.hosts {
            h.open();
        }
        sim.settle();
        sim
    }

    /// Runs both hosts at the current instant until idle.
    pub fn settle(&mut self) {
        let now = self.now;
        for _ in 0..4 {
            for h in &mut self.hosts {
                h.run(now);
            }
        }
    }

    /// Runs the event loop until `until` (inclusive) or until nothing is
    /// left to happen.
    pub fn run_until(&mut self, until: Instant) {
        let mut stuck = 0;
        loop {
            self.settle();
            let next = self.hosts.iter().filter_map(TestHost::next_event).min();
            match next {
                Some(t) if t <= until && stuck < 1000 => {
                    stuck = if t <= self.now { stuck + 1 } else { 0 };
                    self.now = self.now.max(t);
                }
                _ => {
                    self.now = self.now.max(until);
                    self.settle();
                    return;
                }
            }
        }
    }
}

/// An Ethernet + IPv4 + UDP frame (no FCS) with correct checksums and
/// `payload_len` bytes of payload (byte `i` is `i as u8`).
pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: core::net::Ipv4Addr,
    dst: core::net::Ipv4Addr,
    ports: (u16, u16),
    payload_len: usize,
) -> Vec<u8> {
    let mut f = eth_ipv4_header(src_mac, dst_mac, src, dst, 17, 8 + payload_len, 0);
    let l4 = f.len();
    f.extend_from_slice(&ports.0.to_be_bytes());
    f.extend_from_slice(&ports.1.to_be_bytes());
    f.extend_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend((0..payload_len).map(|i| i as u8));
    let c = wire::csum_tcpudp_magic(
        src,
        dst,
        (8 + payload_len) as u16,
        17,
        wire::csum_partial(&f[l4..], 0),
    );
    f[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    f
}

/// An Ethernet + IPv4 + TCP frame (no FCS, 20-byte TCP header) with
/// correct checksums. `flags` is the TCP flags byte.
#[allow(clippy::too_many_arguments)] // one argument per header field a test varies
pub fn tcp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: core::net::Ipv4Addr,
    dst: core::net::Ipv4Addr,
    ports: (u16, u16),
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = eth_ipv4_header(src_mac, dst_mac, src, dst, 6, 20 + payload.len(), 0x1234);
    let l4 = f.len();
    f.extend_from_slice(&ports.0.to_be_bytes());
    f.extend_from_slice(&ports.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&1u32.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    let c = wire::csum_tcpudp_magic(
        src,
        dst,
        (20 + payload.len()) as u16,
        6,
        wire::csum_partial(&f[l4..], 0),
    );
    f[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
    f
}

fn eth_ipv4_header(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: core::net::Ipv4Addr,
    dst: core::net::Ipv4Addr,
    proto: u8,
    l4_len: usize,
    id: u16,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 20 + l4_len);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let tot = (20 + l4_len) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&tot.to_be_bytes());
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    let c = wire::ip_fast_csum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}
