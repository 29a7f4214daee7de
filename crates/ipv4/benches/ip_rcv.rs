//! The IPv4 receive path per packet: `ip_rcv` → `ip_rcv_core` →
//! PRE_ROUTING (no hook) → `ip_route_input` → `ip_local_deliver` →
//! LOCAL_IN (no hook) → `ip_local_deliver_finish` → a protocol handler
//! that counts and frees. Buffers come from the host's page pool and go
//! back to it when the handler drops the skb, so the loop recycles them.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use benchkit::{measure, measure_with_setup, report};
use ipv4::testutil::{Ipv4TestCtx, TestIpHost};
use ipv4::{IcmpError, NetProtocol, ip_rcv};
use netcore::{IpMib, IpSummed, NET_SKB_PAD, SkBuff, VirtualClock};

/// A transport that only counts.
struct Counting(AtomicU64);

impl NetProtocol<Ipv4TestCtx> for Counting {
    fn handler(&self, skb: SkBuff, _ctx: &mut Ipv4TestCtx) -> Result<(), (SkBuff, IcmpError)> {
        self.0.fetch_add(1, Ordering::Relaxed);
        drop(skb);
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
    let proto = Arc::new(Counting(AtomicU64::new(0)));
    host.ipv4
        .inet_add_protocol(proto.clone(), 253)
        .expect("free slot");
    let bytes = datagram();
    let pool = host.pool.clone();
    let make = |summed: IpSummed| {
        let mut skb = SkBuff::from_slice(&pool, NET_SKB_PAD, &bytes).expect("pool");
        skb.ifindex = ifindex;
        skb.ip_summed = summed;
        skb
    };

    let t = measure_with_setup(
        || make(IpSummed::None),
        |skb| ip_rcv(&mut host.cpu, skb),
        512,
    );
    report("ip_rcv_local_deliver_64B", t.as_nanos_f64(), "ns/pkt");
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
        proto.0.load(Ordering::Relaxed),
        "every packet reached the protocol"
    );
}
