//! The receive path from the rx ring to a protocol handler, one core: the
//! issue's figure, starting where the NIC's DMA ends.
//!
//! Outside the timed region a device model (a `dma_ring` device half)
//! writes frames into the posted page-pool buffers and writes their
//! descriptors back (`DD`), the whole ring (`IGB_DEFAULT_RXD`, 256) at a
//! time. Timed: the IRQ's `napi_schedule`, then `NET_RX` until the NAPI
//! completes — `net_rx_action` → `napi_poll` → the driver's poll, which
//! mirrors `igb_clean_rx_irq()` (reap, `napi_build_skb()` on the buffer,
//! checksum/hash/queue fields, `eth_type_trans()`, `napi_gro_receive()`,
//! refill from the pool) → GRO → `netif_receive_skb` → a `PacketType`
//! for IPv4, which frees the skb back to the pool.
//!
//! Handlers:
//!
//! - *counting*: counts skbs and the wire segments they carry; no other
//!   per-skb work. The 64-byte figure uses it (the issue's "counting
//!   protocol handler").
//! - *protocol*: what a transport's receive does per skb whatever its
//!   size — the checks of `ip_rcv_core()` (version, header length, header
//!   checksum, total length), a 4-tuple lookup in an established hash
//!   behind a lock (`__inet_lookup_established()` + `bh_lock_sock()`), the
//!   in-order sequence check and `rcv_nxt` advance. GRO on pays it once
//!   per merged skb, GRO off once per frame: that is the gain GRO exists
//!   for, and the counting handler cannot show it.
//!
//! Figures: `rx ring→handler 64B` (Mpps, UDP, GRO on: passed through),
//! `rx ring→handler 1500B TCP GRO on|off` and the same `, protocol
//! handler` (Gbit/s of wire frames, 1514 bytes + FCS). Each is checked
//! after it is taken: every frame reached the handler, in order, and GRO
//! merged when on. `cargo bench -p softnet --bench rx_ring -- WORD` runs
//! only the figures whose name contains WORD; `RX_RING_ROUNDS=N` runs N
//! untimed-fill + timed-poll rounds of the first wanted figure and prints
//! nothing else (for `valgrind --tool=callgrind`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant as StdInstant};

use benchkit::{black_box, report};
use dma_ring::{IGB_DEFAULT_RXD, RxDevice, RxDriver, RxStatusError, RxWriteback, rx_ring};
use irq::{CpuWakeup, Softirqs};
use napi::{NapiPoll, NapiPollCtx, NapiStruct, PollLists, napi_schedule_on, netif_napi_add};
use netcore::{
    ETH_P_IP, Instant, IpSummed, NET_SKB_PAD, PageBuf, PagePool, PagePoolParams, PktType, SkBuff,
    Sysctl, TimerContext,
};
use parking_lot::Mutex;
use softnet::{
    NetRx, PacketType, PtypeMatch, Softnet, SoftnetContext, SoftnetData, SoftnetTimer,
    net_rx_action,
};
use wire::{ETH_HLEN, ip_fast_csum};

/// The headroom igb leaves in front of a frame (`IGB_SKB_PAD`:
/// `NET_SKB_PAD + NET_IP_ALIGN`).
const IGB_SKB_PAD: usize = NET_SKB_PAD + 2;
/// TCP payload of a full 1500-byte IPv4 packet.
const MSS: usize = 1460;
/// The receiving NIC's address (locally administered).
const DEV_ADDR: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The sender's address.
const PEER_ADDR: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// Samples per figure; the median is reported. Each sample is the median
/// time per frame of the rounds (fill, then poll the ring empty) it ran.
const SAMPLES: usize = 9;
/// Timed time per sample.
const SAMPLE_TIME: Duration = Duration::from_millis(40);

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

/// The counting handler: skbs and the wire segments they stand for.
#[derive(Default)]
struct Counter {
    skbs: AtomicU64,
    segs: AtomicU64,
}

impl PacketType<BenchCtx> for Counter {
    fn ptype(&self) -> PtypeMatch {
        PtypeMatch::Type(ETH_P_IP)
    }
    fn func(&self, skb: SkBuff, _ctx: &mut BenchCtx) -> NetRx {
        // Single writer: load and store instead of a locked add.
        let segs = u64::from(skb.gso_segs.max(1));
        self.skbs
            .store(self.skbs.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        self.segs
            .store(self.segs.load(Ordering::Relaxed) + segs, Ordering::Relaxed);
        drop(skb);
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

/// One flow's receive state in [`ProtoRcv`]'s table.
#[derive(Default)]
struct FlowState {
    rcv_nxt: Option<u32>,
    skbs: u64,
    segs: u64,
    bytes: u64,
    out_of_order: u64,
}

/// The protocol handler: a transport's fixed per-skb receive work (see the
/// module doc), on IPv4/TCP.
#[derive(Default)]
struct ProtoRcv {
    /// The established hash: (saddr, daddr, sport, dport) → flow.
    ehash: Mutex<HashMap<[u8; 12], FlowState>>,
    bad: AtomicU64,
}

impl ProtoRcv {
    fn totals(&self) -> (u64, u64, u64, u64) {
        let t = self.ehash.lock();
        t.values().fold((0, 0, 0, 0), |(a, b, c, d), f| {
            (a + f.skbs, b + f.segs, c + f.bytes, d + f.out_of_order)
        })
    }
}

impl PacketType<BenchCtx> for ProtoRcv {
    fn ptype(&self) -> PtypeMatch {
        PtypeMatch::Type(ETH_P_IP)
    }
    fn func(&self, skb: SkBuff, _ctx: &mut BenchCtx) -> NetRx {
        let d = skb.data();
        // ip_rcv_core(): version 4, IHL 5 or more, the header checksum,
        // a total length the skb holds.
        let ok = d.len() >= 40
            && d[0] >> 4 == 4
            && d[0] & 0x0f >= 5
            && ip_fast_csum(&d[..usize::from(d[0] & 0x0f) * 4]) == 0
            && usize::from(u16::from_be_bytes([d[2], d[3]])) <= skb.len()
            && d[9] == 6;
        if !ok {
            self.bad.fetch_add(1, Ordering::Relaxed);
            return NetRx::Drop;
        }
        let ihl = usize::from(d[0] & 0x0f) * 4;
        let tot = usize::from(u16::from_be_bytes([d[2], d[3]]));
        let th = &d[ihl..];
        let mut key = [0u8; 12];
        key[..8].copy_from_slice(&d[12..20]);
        key[8..].copy_from_slice(&th[..4]);
        let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
        let doff = usize::from(th[12] >> 4) * 4;
        let payload = tot.saturating_sub(ihl + doff) as u32;
        // __inet_lookup_established() + bh_lock_sock(); then the
        // in-order check of tcp_rcv_established() and rcv_nxt.
        let mut t = self.ehash.lock();
        let f = t.entry(key).or_default();
        if f.rcv_nxt.is_some_and(|n| n != seq) {
            f.out_of_order += 1;
        }
        f.rcv_nxt = Some(seq.wrapping_add(payload));
        f.skbs += 1;
        f.segs += u64::from(skb.gso_segs.max(1));
        f.bytes += u64::from(payload);
        drop(t);
        drop(skb);
        NetRx::Success
    }
    fn name(&self) -> &'static str {
        "proto_rcv"
    }
    /// Reads only the linear headers; the payload may stay in fragments.
    fn accepts_nonlinear(&self) -> bool {
        true
    }
}

/// The driver's poll routine: igb's rx clean on a `dma_ring` ring.
struct RingPoll {
    rx: RxDriver<PageBuf>,
    pool: PagePool,
    refill: Vec<PageBuf>,
    ifindex: u32,
    /// The ring's counters (`igb_rx_queue_stats`): packets, bytes.
    stats: Arc<[AtomicU64; 2]>,
}

impl RingPoll {
    /// Mirrors `igb_clean_rx_irq()` with `igb_build_skb()`,
    /// `igb_process_skb_fields()` and `igb_alloc_rx_buffers()`, as
    /// `nic_hw::IgbPoll` does.
    fn igb_clean_rx_irq(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
        let (mut packets, mut bytes) = (0u64, 0u64);
        let ifindex = self.ifindex;
        let done = self.rx.clean_rx_irq(budget, |buf, wb| {
            if wb.status_error.has_frame_error() {
                return;
            }
            let mut built = SkBuff::from_page(buf, IGB_SKB_PAD, usize::from(wb.length));
            let Ok(skb) = built.as_mut() else {
                return;
            };
            packets += 1;
            bytes += skb.len() as u64;
            let st = wb.status_error;
            if !st.contains(RxStatusError::IXSM)
                && !st.intersects(RxStatusError::TCPE | RxStatusError::IPE)
                && st.intersects(RxStatusError::TCPCS | RxStatusError::UDPCS)
            {
                skb.ip_summed = IpSummed::Unnecessary;
            }
            skb.set_hash(wb.rss_hash, false);
            skb.queue_mapping = 0;
            skb.ifindex = ifindex;
            if eth_type_trans(skb).is_none() {
                return;
            }
            if let Ok(skb) = built {
                napi.napi_gro_receive(skb);
            }
        });
        let want = self.rx.unused();
        self.pool.alloc_bulk(want, &mut self.refill);
        let refill = &mut self.refill;
        self.rx.alloc_rx_buffers(want, || refill.pop());
        self.refill.clear();
        // Single writer: load and store instead of a locked add.
        let [p, b] = &*self.stats;
        p.store(p.load(Ordering::Relaxed) + packets, Ordering::Relaxed);
        b.store(b.load(Ordering::Relaxed) + bytes, Ordering::Relaxed);
        done
    }
}

impl NapiPoll for RingPoll {
    /// Mirrors `igb_poll()` (rx only).
    fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
        let work = self.igb_clean_rx_irq(napi, budget);
        if work >= budget {
            return budget;
        }
        // The driver would unmask its vector when this returns true.
        black_box(napi.napi_complete_done(work));
        work
    }
}

/// Mirrors `eth_type_trans()` as igb's driver does it: MAC header, pull,
/// `pkt_type`, `protocol`, network header.
fn eth_type_trans(skb: &mut SkBuff) -> Option<()> {
    skb.reset_mac_header();
    let hdr = skb.pull(ETH_HLEN).ok()?.first_chunk::<ETH_HLEN>()?;
    let proto = u16::from_be_bytes([hdr[12], hdr[13]]);
    // ether_addr_equal_64bits(): one 64-bit load, the source MAC's first
    // two bytes masked off.
    let [a, b, c, d, e, f, g, h, ..] = *hdr;
    let dst = u64::from_le_bytes([a, b, c, d, e, f, g, h]) & 0xFFFF_FFFF_FFFF;
    let [o0, o1, o2, o3, o4, o5] = DEV_ADDR;
    let own = u64::from_le_bytes([o0, o1, o2, o3, o4, o5, 0, 0]);
    let pkt_type = if a & 1 != 0 {
        if dst == 0xFFFF_FFFF_FFFF {
            PktType::Broadcast
        } else {
            PktType::Multicast
        }
    } else if dst == own {
        PktType::Host
    } else {
        PktType::OtherHost
    };
    skb.pkt_type = pkt_type;
    skb.protocol = proto;
    skb.reset_network_header();
    Some(())
}

/// The workload of one figure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// 64-byte UDP frames (60 bytes written, the FCS stripped).
    Udp64,
    /// One in-order TCP flow of full-sized segments.
    Tcp1500,
}

/// The device side: writes frames into the posted buffers and writes the
/// descriptors back, outside the timed region.
struct Device {
    rx: RxDevice<PageBuf>,
    frame: Vec<u8>,
    load: Load,
    seq: u32,
    written: u64,
}

impl Device {
    /// Fills every posted descriptor; returns how many.
    fn fill(&mut self) -> usize {
        let mut n = 0;
        let status = RxStatusError::EOP
            | RxStatusError::IPCS
            | if self.load == Load::Tcp1500 {
                RxStatusError::TCPCS
            } else {
                RxStatusError::UDPCS
            };
        while let Some(mut f) = self.rx.fetch() {
            if self.load == Load::Tcp1500 {
                self.frame[38..42].copy_from_slice(&self.seq.to_be_bytes());
                self.seq = self.seq.wrapping_add(MSS as u32);
            }
            let len = self.frame.len();
            f.buffer_mut()[IGB_SKB_PAD..IGB_SKB_PAD + len].copy_from_slice(&self.frame);
            f.write_back(RxWriteback {
                length: len as u16,
                status_error: status,
                rss_hash: 0x5eed_0001,
                vlan: 0,
            });
            n += 1;
        }
        self.written += n as u64;
        n
    }
}

/// An Ethernet + IPv4 frame: UDP with an 18-byte payload (60 bytes, a
/// 64-byte frame with its FCS) or TCP with `MSS` bytes.
fn frame(load: Load) -> Vec<u8> {
    let (proto, l4_len) = match load {
        Load::Udp64 => (17u8, 8 + 18),
        Load::Tcp1500 => (6u8, 20 + MSS),
    };
    let mut f = Vec::with_capacity(14 + 20 + l4_len);
    f.extend_from_slice(&DEV_ADDR);
    f.extend_from_slice(&PEER_ADDR);
    f.extend_from_slice(&ETH_P_IP.to_be_bytes());
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
    ip[6] = 0x40; // DF, ID fixed at 0
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let c = ip_fast_csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut l4 = vec![0u8; l4_len];
    l4[0..2].copy_from_slice(&40000u16.to_be_bytes());
    l4[2..4].copy_from_slice(&5201u16.to_be_bytes());
    if load == Load::Tcp1500 {
        l4[8..12].copy_from_slice(&1u32.to_be_bytes());
        l4[12] = 5 << 4;
        l4[13] = 0x10; // ACK
        l4[14..16].copy_from_slice(&65535u16.to_be_bytes());
        for (i, b) in l4[20..].iter_mut().enumerate() {
            *b = i as u8;
        }
    } else {
        l4[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    }
    f.extend_from_slice(&l4);
    f
}

/// Which handler a figure uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Handler {
    Counting,
    Protocol,
}

/// One host: softnet on one CPU, one NAPI on a ring, one handler.
struct Host {
    ctx: BenchCtx,
    napi: Arc<NapiStruct>,
    softirqs: Arc<Softirqs>,
    device: Device,
    counter: Arc<Counter>,
    proto: Arc<ProtoRcv>,
    rx_stats: Arc<[AtomicU64; 2]>,
    pool: PagePool,
}

impl Host {
    fn new(load: Load, gro: bool, handler: Handler) -> Host {
        let lists = PollLists::new(1).expect("one CPU");
        let softirqs = Arc::new(Softirqs::new(1, CpuWakeup::new()).expect("one CPU"));
        let sysctl = Arc::new(Sysctl::new());
        let net: Arc<Softnet<BenchCtx>> =
            Softnet::new(Arc::clone(&lists), Arc::clone(&softirqs), sysctl).expect("softnet");
        let counter = Arc::new(Counter::default());
        let proto = Arc::new(ProtoRcv::default());
        match handler {
            Handler::Counting => net.dev_add_pack(counter.clone()),
            Handler::Protocol => net.dev_add_pack(proto.clone()),
        }
        let ctx = BenchCtx {
            sd: net.softnet_data(0).expect("cpu 0"),
        };
        let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
        let (mut rx, dev) = rx_ring::<PageBuf>(IGB_DEFAULT_RXD).expect("ring size");
        let mut bufs = Vec::new();
        pool.alloc_bulk(IGB_DEFAULT_RXD, &mut bufs);
        rx.alloc_rx_buffers(IGB_DEFAULT_RXD, || bufs.pop());
        let rx_stats = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let napi = netif_napi_add(
            &lists,
            1,
            RingPoll {
                rx,
                pool: pool.clone(),
                refill: Vec::with_capacity(IGB_DEFAULT_RXD),
                ifindex: 1,
                stats: Arc::clone(&rx_stats),
            },
        );
        if gro {
            napi.set_gro_pool(Some(pool.clone()));
        }
        napi.napi_enable().expect("enable");
        Host {
            ctx,
            napi,
            softirqs,
            device: Device {
                rx: dev,
                frame: frame(load),
                load,
                seq: 1,
                written: 0,
            },
            counter,
            proto,
            rx_stats,
            pool,
        }
    }

    /// The IRQ, then `NET_RX` until the NAPI has completed: every written
    /// descriptor is reaped and handed up. Not inlined, so that callgrind
    /// can count it alone (`--toggle-collect='*poll_all*'`).
    #[inline(never)]
    fn poll_all(&mut self) {
        let _ = napi_schedule_on(&self.napi, 0, &self.softirqs);
        while self.napi.napi_is_scheduled() {
            net_rx_action(&mut self.ctx);
        }
    }

    /// One round: fill the ring (untimed), poll it empty (timed). Returns
    /// the frames and the time.
    fn round(&mut self) -> (usize, Duration) {
        let n = self.device.fill();
        let start = StdInstant::now();
        self.poll_all();
        (n, start.elapsed())
    }

    /// (skbs, segments) that reached the handler.
    fn delivered(&self) -> (u64, u64) {
        let (skbs, segs, _, _) = self.proto.totals();
        (
            skbs + self.counter.skbs.load(Ordering::Relaxed),
            segs + self.counter.segs.load(Ordering::Relaxed),
        )
    }
}

/// Takes a figure: ns per frame, the median of [`SAMPLES`] samples, after
/// checking that every frame reached the handler (and GRO merged when on).
fn run(load: Load, gro: bool, handler: Handler) -> f64 {
    let mut h = Host::new(load, gro, handler);
    for _ in 0..64 {
        h.round();
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            // Each round (a ring's worth, some 20 µs) is timed alone and
            // the sample is the median round: a round the scheduler
            // preempted on a shared machine is an outlier, not a trend.
            let mut t = Duration::ZERO;
            let mut per_frame = Vec::new();
            while t < SAMPLE_TIME {
                let (n, d) = h.round();
                t += d;
                per_frame.push(d.as_nanos() as f64 / n as f64);
            }
            per_frame.sort_by(f64::total_cmp);
            per_frame[per_frame.len() / 2]
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let (skbs, segs) = h.delivered();
    assert_eq!(
        segs, h.device.written,
        "every frame written reached the handler"
    );
    let [packets, bytes] = &*h.rx_stats;
    assert_eq!(packets.load(Ordering::Relaxed), h.device.written);
    let frame_len = h.device.frame.len() as u64;
    assert_eq!(bytes.load(Ordering::Relaxed), h.device.written * frame_len);
    if handler == Handler::Protocol {
        let (_, _, bytes, ooo) = h.proto.totals();
        assert_eq!(ooo, 0, "the flow arrived in order");
        assert_eq!(bytes, h.device.written * MSS as u64, "every payload byte");
        assert_eq!(h.proto.bad.load(Ordering::Relaxed), 0);
    }
    if load == Load::Tcp1500 && gro {
        assert!(
            skbs * 8 < segs,
            "GRO merged ({skbs} skbs for {segs} frames)"
        );
    } else {
        assert_eq!(skbs, segs, "one skb per frame");
    }
    let stats = h.pool.stats();
    assert_eq!(stats.alloc_fail, 0);
    samples[SAMPLES / 2]
}

/// Whether the figure `name` was asked for on the command line.
fn wanted(name: &str) -> bool {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()))
}

fn main() {
    let figures = [
        ("rx ring→handler 64B", Load::Udp64, true, Handler::Counting),
        (
            "rx ring→handler 1500B TCP GRO on",
            Load::Tcp1500,
            true,
            Handler::Counting,
        ),
        (
            "rx ring→handler 1500B TCP GRO off",
            Load::Tcp1500,
            false,
            Handler::Counting,
        ),
        (
            "rx ring→handler 1500B TCP GRO on, protocol handler",
            Load::Tcp1500,
            true,
            Handler::Protocol,
        ),
        (
            "rx ring→handler 1500B TCP GRO off, protocol handler",
            Load::Tcp1500,
            false,
            Handler::Protocol,
        ),
    ];
    // A fixed number of rounds of one figure, for callgrind.
    if let Some(rounds) = std::env::var("RX_RING_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        if let Some(&(_, load, gro, handler)) = figures.iter().find(|f| wanted(f.0)) {
            let mut h = Host::new(load, gro, handler);
            for _ in 0..rounds {
                h.round();
            }
            assert_eq!(h.delivered().1, h.device.written);
        }
        return;
    }
    for (name, load, gro, handler) in figures {
        if !wanted(name) {
            continue;
        }
        let ns = run(load, gro, handler);
        match load {
            Load::Udp64 => report(name, 1e3 / ns, "Mpps"),
            // Wire frames: 1514 bytes + FCS.
            Load::Tcp1500 => report(name, (14 + 20 + 20 + MSS + 4) as f64 * 8.0 / ns, "Gbit/s"),
        }
    }
}
