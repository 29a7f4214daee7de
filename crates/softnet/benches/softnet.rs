//! The receive path from a NAPI driver to a protocol handler.
//!
//! A fake device fills skbs on page-pool buffers outside the timed loop
//! (the DMA); a fake driver reaps them in its NAPI poll and passes them to
//! GRO or straight up; `net_rx_action` → `napi_poll` →
//! `netif_receive_skb_core` delivers them to a counting `PacketType`, which
//! frees them back to the pool. One iteration is one `net_rx_action` run
//! of one NAPI poll (64 packets).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use irq::{CpuWakeup, Softirqs};
use napi::{NapiPoll, NapiPollCtx, PollLists, napi_schedule_on, netif_napi_add};
use netcore::{
    ETH_P_IP, Instant, IpSummed, NET_SKB_PAD, PagePool, PagePoolParams, SkBuff, Sysctl,
    TimerContext,
};
use parking_lot::Mutex;
use softnet::{
    NetRx, PacketType, PtypeMatch, Softnet, SoftnetContext, SoftnetData, SoftnetTimer,
    net_rx_action,
};

/// The smallest host context: no clock movement, timers ignored.
struct BenchCtx {
    sd: SoftnetData<BenchCtx>,
}

impl TimerContext<SoftnetTimer> for BenchCtx {
    fn arm_timer(&mut self, _id: SoftnetTimer, _at: Instant) -> Option<Instant> {
        None
    }
    fn cancel_timer(&mut self, _id: SoftnetTimer) -> Option<Instant> {
        None
    }
    fn timer_pending(&self, _id: SoftnetTimer) -> Option<Instant> {
        None
    }
}

impl SoftnetContext for BenchCtx {
    fn now(&self) -> Instant {
        Instant::ZERO
    }
    fn softnet_data(&mut self) -> &mut SoftnetData<Self> {
        &mut self.sd
    }
}

/// Counts what reaches it (single writer: load + store).
struct Counter(AtomicU64);

impl PacketType<BenchCtx> for Counter {
    fn ptype(&self) -> PtypeMatch {
        PtypeMatch::Type(ETH_P_IP)
    }
    fn func(&self, skb: SkBuff, _ctx: &mut BenchCtx) -> NetRx {
        let n = self.0.load(Ordering::Relaxed);
        self.0.store(n + 1, Ordering::Relaxed);
        drop(skb);
        NetRx::Success
    }
    fn accepts_nonlinear(&self) -> bool {
        true
    }
}

/// The receive ring the "device" fills outside the timed loop: skbs built
/// on pool buffers (the DMA), in arrival order.
type Ring = Arc<Mutex<VecDeque<SkBuff>>>;

/// A driver that reaps up to its budget from the ring, as
/// `igb_clean_rx_irq` reaps written-back descriptors.
struct FakeDriver {
    ring: Ring,
    gro: bool,
}

impl NapiPoll for FakeDriver {
    fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
        let mut ring = self.ring.lock();
        let mut work = 0;
        while work < budget {
            let Some(skb) = ring.pop_front() else {
                break;
            };
            if self.gro {
                napi.napi_gro_receive(skb);
            } else {
                napi.netif_receive_skb(skb);
            }
            work += 1;
        }
        if work < budget {
            napi.napi_complete_done(work);
        }
        work
    }
}

/// The device side: DMA one frame into a pool buffer and write back the
/// descriptor (the driver's `eth_type_trans()` fields included).
struct FakeDevice {
    pool: PagePool,
    frame: Vec<u8>,
    tcp_payload: Option<u32>,
    seq: u32,
}

impl FakeDevice {
    fn receive(&mut self) -> SkBuff {
        if let Some(len) = self.tcp_payload {
            self.frame[38..42].copy_from_slice(&self.seq.to_be_bytes());
            self.seq = self.seq.wrapping_add(len);
        }
        let mut skb = SkBuff::from_slice(&self.pool, NET_SKB_PAD, &self.frame).unwrap();
        skb.reset_mac_header();
        skb.protocol = ETH_P_IP;
        let _ = skb.pull(14);
        skb.reset_network_header();
        skb.ifindex = 1;
        skb.ip_summed = IpSummed::Unnecessary;
        skb
    }
}

fn frame(tcp_payload: Option<usize>) -> Vec<u8> {
    let l4_len = match tcp_payload {
        Some(p) => 20 + p,
        None => 8 + 18, // 64-byte frame without FCS: 14 + 20 + 8 + 18 + 4 (FCS)
    };
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = if tcp_payload.is_some() { 6 } else { 17 };
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let mut sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    let mut l4 = vec![0u8; l4_len];
    l4[0..2].copy_from_slice(&40000u16.to_be_bytes());
    l4[2..4].copy_from_slice(&5201u16.to_be_bytes());
    if tcp_payload.is_some() {
        l4[8..12].copy_from_slice(&1u32.to_be_bytes());
        l4[12] = 5 << 4;
        l4[13] = 0x10; // ACK
        l4[14..16].copy_from_slice(&65535u16.to_be_bytes());
    } else {
        l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    }
    f.extend_from_slice(&l4);
    f
}

/// Runs the receive path; returns the ns per packet without and with the
/// device's fill in the timed loop, and the frame length.
fn run(tcp_payload: Option<usize>, gro: bool) -> (f64, f64, usize) {
    let lists = PollLists::new(1).unwrap();
    let softirqs = Arc::new(Softirqs::new(1, CpuWakeup::new()).unwrap());
    let sysctl = Arc::new(Sysctl::new());
    let net: Arc<Softnet<BenchCtx>> =
        Softnet::new(Arc::clone(&lists), Arc::clone(&softirqs), sysctl).unwrap();
    let counter = Arc::new(Counter(AtomicU64::new(0)));
    net.dev_add_pack(counter.clone());
    let mut ctx = BenchCtx {
        sd: net.softnet_data(0).unwrap(),
    };
    let pool = PagePool::new(PagePoolParams::default()).unwrap();
    let f = frame(tcp_payload);
    let len = f.len();
    let ring: Ring = Arc::default();
    let mut device = FakeDevice {
        pool: pool.clone(),
        frame: f,
        tcp_payload: tcp_payload.map(|p| p as u32),
        seq: 1,
    };
    let napi = netif_napi_add(
        &lists,
        1,
        FakeDriver {
            ring: Arc::clone(&ring),
            gro,
        },
    );
    if gro {
        napi.set_gro_pool(Some(pool));
    }
    napi.napi_enable().unwrap();
    napi_schedule_on(&napi, 0, &softirqs).unwrap();
    // Warm the pool and caches.
    for _ in 0..64 {
        for _ in 0..64 {
            let skb = device.receive();
            ring.lock().push_back(skb);
        }
        net_rx_action(&mut ctx);
    }
    // One iteration: the device fills 64 descriptors (untimed), then one
    // net_rx_action polls them all up to the handler (timed).
    let per_run = benchkit::measure_with_setup(
        || {
            let mut r = ring.lock();
            for _ in 0..64 {
                r.push_back(device.receive());
            }
        },
        |()| {
            // The IRQ, if the last poll completed; then NET_RX.
            if !napi.napi_is_scheduled() {
                let _ = napi_schedule_on(&napi, 0, &softirqs);
            }
            net_rx_action(&mut ctx);
        },
        // 8 × 64 = 512 descriptors: a NIC ring's worth, so the skbs are
        // as warm as a real ring's.
        8,
    );
    // The same with the device's fill (one pool allocation and a frame copy
    // per packet) inside the timed loop.
    let with_dma = benchkit::measure(|| {
        {
            let mut r = ring.lock();
            for _ in 0..64 {
                r.push_back(device.receive());
            }
        }
        if !napi.napi_is_scheduled() {
            let _ = napi_schedule_on(&napi, 0, &softirqs);
        }
        net_rx_action(&mut ctx);
    });
    assert!(ring.lock().is_empty(), "every packet was polled");
    let delivered = counter.0.load(Ordering::Relaxed);
    assert!(delivered > 0, "packets reached the handler");
    (
        per_run.as_nanos_f64() / 64.0,
        with_dma.as_nanos_f64() / 64.0,
        len,
    )
}

fn main() {
    for gro in [false, true] {
        let tag = if gro { "on" } else { "off" };
        let (ns, ns_dma, _) = run(None, gro);
        benchkit::report(
            &format!("softnet rx 64B frames, GRO {tag}"),
            1e3 / ns,
            "Mpps",
        );
        benchkit::report(&format!("softnet rx 64B per packet, GRO {tag}"), ns, "ns");
        benchkit::report(
            &format!("softnet rx 64B frames incl. device fill, GRO {tag}"),
            1e3 / ns_dma,
            "Mpps",
        );
        let (ns, ns_dma, len) = run(Some(1448), gro);
        // Line-rate accounting: frame + FCS, as a NIC counts bytes.
        let bits = (len + 4) as f64 * 8.0;
        benchkit::report(
            &format!("softnet rx 1500B TCP, GRO {tag}"),
            bits / ns,
            "Gbit/s",
        );
        benchkit::report(
            &format!("softnet rx 1500B TCP incl. device fill, GRO {tag}"),
            bits / ns_dma,
            "Gbit/s",
        );
    }
}
