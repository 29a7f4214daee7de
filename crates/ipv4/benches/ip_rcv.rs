//! The IPv4 receive path per packet: `ip_rcv` → `ip_rcv_core` →
//! PRE_ROUTING (no hook) → `ip_route_input` → `ip_local_deliver` →
//! LOCAL_IN (no hook) → `ip_local_deliver_finish` → a protocol handler
//! that counts.
//!
//! `ip_rcv_local_deliver_64B` recycles one skb: the handler hands it back
//! and the loop pushes the IP header back in front and receives it again,
//! so only the IPv4 path is timed. The other figures take skbs from the
//! page pool (allocation outside or inside the timed loop) and free them
//! in the handler.

use std::cell::RefCell;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use benchkit::{measure, measure_with_setup, report};
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
struct Counting {
    n: AtomicU64,
    keep: bool,
}

impl NetProtocol<Ipv4TestCtx> for Counting {
    fn handler(&self, skb: SkBuff, _ctx: &mut Ipv4TestCtx) -> Result<(), (SkBuff, IcmpError)> {
        self.n.fetch_add(1, Ordering::Relaxed);
        if self.keep {
            SLOT.with(|s| *s.borrow_mut() = Some(skb));
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
    let t = measure(|| {
        let mut skb = SLOT.with(|s| s.borrow_mut().take()).expect("handed back");
        skb.push(20).expect("the pulled IP header");
        ip_packet_type.func(skb, &mut host.cpu)
    });
    report("ip_rcv_local_deliver_64B", t.as_nanos_f64(), "ns/pkt");
    let t = measure_with_setup(
        || make(IpSummed::None),
        |skb| ip_rcv(&mut host.cpu, skb),
        512,
    );
    report(
        "ip_rcv_local_deliver_64B_pool_free",
        t.as_nanos_f64(),
        "ns/pkt",
    );
    let t = measure_with_setup(
        || make(IpSummed::Unnecessary),
        |skb| ip_rcv(&mut host.cpu, skb),
        512,
    );
    report(
        "ip_rcv_local_deliver_64B_csum_offload",
        t.as_nanos_f64(),
        "ns/pkt",
    );
    let t = measure(|| {
        let skb = make(IpSummed::None);
        ip_rcv(&mut host.cpu, skb)
    });
    report(
        "ip_rcv_local_deliver_64B_with_skb_alloc",
        t.as_nanos_f64(),
        "ns/pkt",
    );
    assert_eq!(
        host.mib(IpMib::InDelivers),
        proto.n.load(Ordering::Relaxed) + recycler.n.load(Ordering::Relaxed),
        "every packet reached the protocol"
    );
}
