//! The IPv4 receive path per packet: `ip_rcv` → `ip_rcv_core` →
//! PRE_ROUTING (no hook) → `ip_route_input` → `ip_local_deliver` →
//! LOCAL_IN (no hook) → `ip_local_deliver_finish` → a protocol handler
//! that counts.
//!
//! Each figure is the best of [`ROUNDS`] medians of five short samples of
//! 512 packets, with any per-packet setup (building the skb) outside the
//! timed part: on a machine shared with other work, the best round is the
//! one least disturbed by it.
//!
//! `ip_rcv_local_deliver_64B` hands skbs built beforehand to the handler
//! softnet calls for `ETH_P_IP` (`ip_packet_type.func`); the counting
//! protocol frees each one, as a transport eventually does, so the figure
//! includes returning the buffer to the page pool. `_csum_offload` is the
//! same with `CHECKSUM_UNNECESSARY` set by the "NIC";
//! `_with_skb_alloc` also builds the skb inside the timed loop (through
//! `ip_rcv`, which takes the host state from the context). `_recycled`
//! passes one skb round and round: the handler parks it in a thread-local
//! and the loop pushes the IP header back and receives it again; no pool
//! work, but the park and fetch move the 112-byte `SkBuff` about six
//! times, so it is not cheaper.
//!
//! `ip_output_64B` times the transmit side: `ip_build_and_send_pkt` of a
//! 64-byte payload → route → header → LOCAL_OUT → `ip_output` →
//! POST_ROUTING → `ip_finish_output2` with a resolved (permanent)
//! neighbour → `eth_header` → `dev_queue_xmit` (default qdisc) → a device
//! that frees what it is given. `ip_queue_xmit_64B` is the same from a
//! connected socket, whose cached route skips the FIB lookup.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use benchkit::{PerIter, measure_with_setup, report};
use ipv4::testutil::{Ipv4TestCtx, TestIpHost};
use ipv4::{IcmpError, IpRcv, NetProtocol, ip_rcv};
use netcore::{IpMib, IpSummed, NET_SKB_PAD, SkBuff, VirtualClock};
use softnet::PacketType;

thread_local! {
    /// Where the recycling handler leaves the skb for the loop (the bench
    /// runs on one thread).
    static SLOT: RefCell<Option<SkBuff>> = const { RefCell::new(None) };
}

/// A transport that counts, and hands the skb back to the loop when
/// `keep` is set.
///
/// The count is a per-CPU statistic of the bench's one CPU, bumped as a
/// transport's own per-CPU counters are (`__this_cpu_inc()`, or
/// [`netcore::NetMibs::this_cpu`] on its owner thread): a plain load and
/// store. Only the bench thread runs the handler, so nothing is lost.
struct Counting {
    n: AtomicU64,
    keep: bool,
}

impl NetProtocol<Ipv4TestCtx> for Counting {
    fn handler(&self, skb: SkBuff, _ctx: &mut Ipv4TestCtx) -> Result<(), (SkBuff, IcmpError)> {
        self.n
            .store(self.n.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        if self.keep {
            SLOT.with_borrow_mut(|s| *s = Some(skb));
        }
        Ok(())
    }
}

/// A 64-byte IPv4 datagram (protocol 253, experimental) from 198.18.0.2
/// to 198.18.0.1, correct checksum.
fn datagram() -> Vec<u8> {
    let mut d = vec![0u8; 64];
    d[0] = 0x45;
    d[2..4].copy_from_slice(&64u16.to_be_bytes());
    d[8] = 64;
    d[9] = 253;
    d[12..16].copy_from_slice(&[198, 18, 0, 2]);
    d[16..20].copy_from_slice(&[198, 18, 0, 1]);
    let c = wire::ip_fast_csum(&d[..20]);
    d[10..12].copy_from_slice(&c.to_be_bytes());
    d
}

/// A device that frees every skb it is given (a driver with an infinitely
/// fast wire).
struct NullDevice(ipv4::testutil::WireDevice);

impl netcore::NetDevice for NullDevice {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn ifindex(&self) -> u32 {
        self.0.ifindex()
    }
    fn dev_addr(&self) -> netcore::DevAddr {
        self.0.dev_addr()
    }
    fn flags(&self) -> netcore::NetDeviceFlags {
        self.0.flags()
    }
    fn mtu(&self) -> u32 {
        self.0.mtu()
    }
    fn change_mtu(&mut self, mtu: u32) -> Result<(), netcore::MtuError> {
        self.0.change_mtu(mtu)
    }
    fn features(&self) -> netcore::NetdevFeatures {
        self.0.features()
    }
    fn tx_queues(&self) -> &netcore::NetdevTxQueues {
        self.0.tx_queues()
    }
    fn open(&mut self) -> Result<(), netcore::Errno> {
        self.0.open()
    }
    fn stop(&mut self) -> Result<(), netcore::Errno> {
        self.0.stop()
    }
    fn start_xmit(&mut self, skb: SkBuff, _queue: u16) -> netcore::NetdevTx {
        drop(skb);
        netcore::NetdevTx::Ok
    }
    fn stats64(&self) -> netcore::RtnlLinkStats64 {
        netcore::RtnlLinkStats64::default()
    }
    fn set_rx_mode(&mut self, _mode: &netcore::RxMode) {}
}

/// One datagram through the handler softnet calls for `ETH_P_IP`. Out of
/// line so that a profiler can single it out (`valgrind --tool=callgrind
/// --toggle-collect=ip_rcv::rx`).
#[inline(never)]
fn rx(ip_packet_type: &IpRcv<Ipv4TestCtx>, cpu: &mut Ipv4TestCtx, skb: SkBuff) -> softnet::NetRx {
    ip_packet_type.func(skb, cpu)
}

/// One recycled datagram through the handler softnet calls. Out of line so
/// that a profiler can single it out (`valgrind --tool=callgrind
/// --toggle-collect=ip_rcv::rx_one`).
#[inline(never)]
fn rx_one(ip_packet_type: &IpRcv<Ipv4TestCtx>, cpu: &mut Ipv4TestCtx) -> softnet::NetRx {
    let mut skb = SLOT.with_borrow_mut(Option::take).expect("handed back");
    skb.push(20).expect("the pulled IP header");
    ip_packet_type.func(skb, cpu)
}

/// Iterations per timed sample: short samples (tens of microseconds) keep
/// a preemption on a busy machine from inflating the median.
const SHORT: usize = 512;

/// Rounds of [`measure_with_setup`] per figure; the fastest is reported.
const ROUNDS: usize = 7;

/// Whether the figure `name` is wanted: all of them unless `IP_RCV_BENCH`
/// names one (so a profiler can be pointed at a single figure, e.g.
/// `IP_RCV_BENCH=ip_rcv_local_deliver_64B valgrind --tool=callgrind ...`).
fn wanted(name: &str) -> bool {
    std::env::var("IP_RCV_BENCH").map_or(true, |only| only == name)
}

/// [`measure_with_setup`] run [`ROUNDS`] times: the fastest round.
fn best_of<I, R>(mut setup: impl FnMut() -> I, mut f: impl FnMut(I) -> R) -> PerIter {
    (0..ROUNDS)
        .map(|_| measure_with_setup(&mut setup, &mut f, SHORT))
        .min_by(|a, b| a.as_nanos_f64().total_cmp(&b.as_nanos_f64()))
        .expect("at least one round")
}

fn main() {
    let clock = VirtualClock::new();
    let mut host = TestIpHost::new(&clock, 1);
    let ifindex = host.add_device(1, 1500, Ipv4Addr::new(198, 18, 0, 1), 24);
    let proto = Arc::new(Counting {
        n: AtomicU64::new(0),
        keep: false,
    });
    host.ipv4
        .inet_add_protocol(proto.clone(), 253)
        .expect("free slot");
    let recycler = Arc::new(Counting {
        n: AtomicU64::new(0),
        keep: true,
    });
    host.ipv4
        .inet_add_protocol(recycler.clone(), 252)
        .expect("free slot");
    let bytes = datagram();
    let pool = host.pool.clone();
    let make = |summed: IpSummed| {
        let mut skb = SkBuff::from_slice(&pool, NET_SKB_PAD, &bytes).expect("pool");
        skb.ifindex = ifindex;
        skb.ip_summed = summed;
        skb
    };

    let mut recycled = bytes.clone();
    recycled[9] = 252;
    recycled[10..12].fill(0);
    let c = wire::ip_fast_csum(&recycled[..20]);
    recycled[10..12].copy_from_slice(&c.to_be_bytes());
    let mut first = SkBuff::from_slice(&pool, NET_SKB_PAD, &recycled).expect("pool");
    first.ifindex = ifindex;
    let _ = ip_rcv(&mut host.cpu, first);
    // The handler softnet calls for ETH_P_IP, as `inet_init` registered it.
    let ip_packet_type = IpRcv::new(Arc::clone(&host.ipv4));
    if wanted("ip_rcv_local_deliver_64B") {
        let t = best_of(
            || make(IpSummed::None),
            |skb| rx(&ip_packet_type, &mut host.cpu, skb),
        );
        report("ip_rcv_local_deliver_64B", t.as_nanos_f64(), "ns/pkt");
    }
    if wanted("ip_rcv_local_deliver_64B_recycled") {
        let t = best_of(|| (), |()| rx_one(&ip_packet_type, &mut host.cpu));
        report(
            "ip_rcv_local_deliver_64B_recycled",
            t.as_nanos_f64(),
            "ns/pkt",
        );
    }
    if wanted("ip_rcv_local_deliver_64B_csum_offload") {
        let t = best_of(
            || make(IpSummed::Unnecessary),
            |skb| rx(&ip_packet_type, &mut host.cpu, skb),
        );
        report(
            "ip_rcv_local_deliver_64B_csum_offload",
            t.as_nanos_f64(),
            "ns/pkt",
        );
    }
    if wanted("ip_rcv_local_deliver_64B_with_skb_alloc") {
        let t = best_of(|| (), |()| ip_rcv(&mut host.cpu, make(IpSummed::None)));
        report(
            "ip_rcv_local_deliver_64B_with_skb_alloc",
            t.as_nanos_f64(),
            "ns/pkt",
        );
    }
    // Transmit.
    let (dev, _) = ipv4::testutil::WireDevice::new("null0", 9, [2, 0, 0, 0, 9, 9], 1500);
    let null = NullDevice(dev);
    let nd = host
        .softnet
        .dev_base()
        .register_netdevice(Box::new(null), 1)
        .expect("register");
    softnet::dev_open(&nd).expect("open");
    host.ipv4.inetdev_init(&nd).expect("inetdev");
    host.ipv4
        .with_netns_mut(|n| {
            n.inet_rtm_newaddr(ipv4::InIfaddr::new(
                9,
                Ipv4Addr::new(198, 19, 0, 1),
                24,
                "null0",
            ))
        })
        .expect("address");
    let peer = Ipv4Addr::new(198, 19, 0, 2);
    let now = netcore::Clock::now(&clock);
    let ipv4 = Arc::clone(&host.ipv4);
    ipv4.with_arp_tbl(|t| {
        t.neigh_add_permanent(
            &mut host.cpu,
            now,
            9,
            peer,
            wire::EthernetAddress([2, 0, 0, 0, 9, 8]),
            &mut Vec::new(),
        )
    })
    .expect("neighbour");
    let mut sk = ipv4::InetSock::new(17, &host.sysctl);
    let payload = [0u8; 64];
    if wanted("ip_output_64B") {
        let t = best_of(
            || SkBuff::from_slice(&pool, ipv4::MAX_IP_HEADROOM, &payload).expect("pool"),
            |skb| {
                ipv4::ip_build_and_send_pkt(
                    &mut host.cpu,
                    skb,
                    &mut sk,
                    Ipv4Addr::UNSPECIFIED,
                    peer,
                )
            },
        );
        report("ip_output_64B", t.as_nanos_f64(), "ns/pkt");
    }
    // A connected socket: the cached route (sk_dst_cache) skips the FIB.
    let mut csk = ipv4::InetSock::new(6, &host.sysctl);
    csk.daddr = peer;
    if wanted("ip_queue_xmit_64B") {
        let t = best_of(
            || SkBuff::from_slice(&pool, ipv4::MAX_IP_HEADROOM, &payload).expect("pool"),
            |skb| ipv4::ip_queue_xmit(&mut host.cpu, &mut csk, skb),
        );
        report("ip_queue_xmit_64B", t.as_nanos_f64(), "ns/pkt");
    }
    assert_eq!(host.mib(IpMib::OutNoRoutes), 0);

    assert_eq!(
        host.mib(IpMib::InDelivers),
        proto.n.load(Ordering::Relaxed) + recycler.n.load(Ordering::Relaxed),
        "every packet reached the protocol"
    );
}
