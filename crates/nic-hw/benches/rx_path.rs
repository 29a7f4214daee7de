//! The receive path from the wire to a protocol handler, one core:
//! frames arrive at the igb model's MAC (`IgbHw::receive_frame`: FCS,
//! filter, checksum offload, DMA into the rx ring, write-back, moderation)
//! → MSI-X → `igb_msix_ring` schedules the NAPI → `NET_RX` →
//! softnet's `net_rx_action` → `igb_poll` (reap, skb build, refill) →
//! GRO → `netif_receive_skb` → a counting `PacketType` for IPv4.
//!
//! One iteration is one NAPI cycle: 64 frames (the NAPI weight) into the
//! ring, the hard IRQ, then softirqs until `NET_RX` is idle again (the
//! second poll finds the ring empty and completes). Interrupt moderation
//! is off (`ethtool -C rx-usecs 0`), so the vector fires on the first
//! frame and stays auto-masked until the poll completes.
//!
//! Figures: `rx path 64B (nic→napi→softnet)` in Mpps (UDP, default
//! features, GRO on: UDP is passed through), and `rx path 1500B TCP GRO
//! on` / `GRO off` in Gbit/s of wire frames (1514 bytes + FCS, one
//! in-order TCP flow). Each figure is checked after it is taken: nothing
//! missed by the NIC, every frame (every TCP segment) reached the handler,
//! and GRO merged when on.

use core::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use benchkit::{black_box, measure, report};
use irq::{CpuWakeup, IrqTable, SoftirqNr};
use netcore::{
    Duration, ETH_P_IP, EthtoolCoalesce, Instant, NetDevice, NetdevFeatures, PagePool,
    PagePoolParams, SkBuff,
};
use nic_hw::testutil::{MAC_A, MAC_B, TEST_FIRST_IRQ, tcp_frame, udp_frame};
use nic_hw::{IgbDevice, IgbDriver, IgbNetdev, PciBus, append_fcs, e1000_regs as r};
use softnet::testutil::{TestCtx, TestHost};
use softnet::{NetRx, PacketType, PtypeMatch};

/// Frames per iteration: one NAPI weight.
const BATCH: usize = 64;
/// TCP payload of a full 1500-byte IPv4 packet.
const MSS: usize = 1460;

/// The protocol handler: counts skbs and the wire segments they carry.
#[derive(Default)]
struct Counter {
    skbs: AtomicU64,
    segs: AtomicU64,
}

impl PacketType<TestCtx> for Counter {
    fn ptype(&self) -> PtypeMatch {
        PtypeMatch::Type(ETH_P_IP)
    }
    fn func(&self, skb: SkBuff, _ctx: &mut TestCtx) -> NetRx {
        // Single writer: load and store instead of a locked add.
        let segs = u64::from(skb.gso_segs.max(1));
        self.skbs
            .store(self.skbs.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.segs
            .store(self.segs.load(Ordering::Relaxed) + segs, Ordering::Relaxed);
        drop(black_box(skb));
        NetRx::Success
    }
    fn name(&self) -> &'static str {
        "count_rcv"
    }
    /// It only counts: a GRO packet's chained segments are fine as they are.
    fn accepts_nonlinear(&self) -> bool {
        true
    }
}

/// One host: softnet (one CPU) with the counting handler, and one igb NIC
/// probed on a PCI bus whose NAPIs sit on softnet's poll lists.
struct Host {
    net: TestHost,
    irqs: Arc<IrqTable>,
    dev: Arc<IgbDevice>,
    netdev: IgbNetdev,
    counter: Arc<Counter>,
    _bus: PciBus,
    /// Virtual time, advanced a microsecond per cycle.
    now: Instant,
}

impl Host {
    fn new(gro: bool) -> Host {
        let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
        let net = TestHost::new(1);
        let counter = Arc::new(Counter::default());
        net.net.dev_add_pack(counter.clone());
        let irqs =
            Arc::new(IrqTable::new("rx-path-msi", 256, 1, CpuWakeup::new()).expect("IRQ table"));
        let mut bus = PciBus::new(0, Arc::clone(&irqs), TEST_FIRST_IRQ);
        let dev = IgbDevice::new(MAC_B, None);
        let bdf = bus.add_device(Arc::clone(&dev)).expect("bus has room");
        let driver = IgbDriver::new(pool, Arc::clone(&net.lists), 2);
        bus.pci_register_driver(driver.clone()).expect("igb binds");
        let netdev = driver.netdev(bdf).expect("igb probed the NIC");
        {
            let mut nd = netdev.lock();
            nd.open().expect("open");
            let ops = nd.ethtool_ops().expect("igb has ethtool ops");
            let (f, _) = ops.get_features().expect("features");
            let f = if gro {
                f | NetdevFeatures::GRO
            } else {
                f - NetdevFeatures::GRO
            };
            ops.set_features(f).expect("GRO toggles");
            ops.set_coalesce(&EthtoolCoalesce {
                rx_coalesce_usecs: 0,
                tx_coalesce_usecs: 0,
                ..EthtoolCoalesce::default()
            })
            .expect("rx-usecs 0");
        }
        Host {
            net,
            irqs,
            dev,
            netdev,
            counter,
            _bus: bus,
            now: Instant::ZERO,
        }
    }

    /// One NAPI cycle: the frames arrive, the hard IRQ runs, then the
    /// softirqs until `NET_RX` is idle.
    fn cycle(&mut self, frames: &[Vec<u8>]) {
        // A microsecond per cycle: igb's smallest interrupt interval
        // (rx-usecs 0 still writes 1 µs to EITR), so each burst interrupts.
        self.now += Duration::from_micros(1);
        {
            let mut hw = self.dev.lock();
            for f in frames {
                black_box(hw.receive_frame(self.now, black_box(f)));
            }
        }
        let _ = self.irqs.handle_pending(0, &self.net.softirqs);
        while self.net.pending(0, SoftirqNr::NetRx) {
            self.net.run_softirqs(0);
        }
    }

    /// Frames the NIC missed for want of a descriptor (`MPC`, clears).
    fn missed(&self) -> u32 {
        self.dev.rd32(r::MPC)
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.counter.skbs.load(Ordering::Relaxed),
            self.counter.segs.load(Ordering::Relaxed),
        )
    }

    fn rx_packets(&self) -> u64 {
        self.netdev.lock().stats64().rx_packets
    }
}

/// Runs cycles of `frames` and returns the time per frame (ns), after
/// checking that every frame reached the handler.
fn run(gro: bool, frames: &[Vec<u8>], expect_merge: bool) -> f64 {
    let mut h = Host::new(gro);
    for _ in 0..16 {
        h.cycle(frames);
    }
    let per = measure(|| h.cycle(frames));
    let (skbs, segs) = h.counts();
    assert_eq!(h.missed(), 0, "the NIC missed no frame");
    assert_eq!(segs, h.rx_packets(), "every frame reached the handler");
    if expect_merge {
        assert!(
            skbs * 8 < segs,
            "GRO merged ({skbs} skbs for {segs} frames)"
        );
    } else {
        assert_eq!(skbs, segs, "one skb per frame");
    }
    per.as_nanos_f64() / frames.len() as f64
}

/// Whether the figure `name` was asked for: `cargo bench --bench rx_path
/// -- WORD` runs only the figures whose name contains WORD (for profiling).
fn wanted(name: &str) -> bool {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
}

fn main() {
    let (ip_a, ip_b) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));

    let mut small = udp_frame(MAC_A, MAC_B, ip_a, ip_b, (40000, 5201), 18);
    append_fcs(&mut small);
    assert_eq!(small.len(), 64);
    let small = vec![small; BATCH];
    let name = "rx path 64B (nic→napi→softnet)";
    if wanted(name) {
        let ns = run(true, &small, false);
        report(name, 1e3 / ns, "Mpps");
    }

    // One in-order flow of full-sized segments; the same 64 segments
    // every cycle (GRO is flushed when the poll completes).
    let payload: Vec<u8> = (0..MSS).map(|i| i as u8).collect();
    let big: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| {
            let seq = 1 + (i * MSS) as u32;
            let mut f = tcp_frame(MAC_A, MAC_B, ip_a, ip_b, (40000, 5201), seq, 0x10, &payload);
            append_fcs(&mut f);
            f
        })
        .collect();
    assert_eq!(big[0].len(), 1518);
    let bits = big[0].len() as f64 * 8.0;
    for gro in [true, false] {
        let tag = if gro { "on" } else { "off" };
        let name = format!("rx path 1500B TCP GRO {tag}");
        if wanted(&name) {
            let ns = run(gro, &big, gro);
            report(&name, bits / ns, "Gbit/s");
        }
    }
}
