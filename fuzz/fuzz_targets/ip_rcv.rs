//! `ip_rcv` with reassembly: arbitrary IPv4 datagrams, fragments included,
//! delivered to one host of the ipv4 crate's test context
//! (`ipv4::testutil::TestIpHost`, 198.18.0.1/24 on eth0), with virtual time
//! advancing between them as the input says.
//!
//! The input is a list of records `ctl: u8, delay: u8, len: u16 (LE),
//! datagram[len]`. `ctl` helps the fuzzer past checks it would rarely
//! guess: bit 0 sets the destination to the host's address, bit 1 a
//! source on its subnet, bit 2 fills in the header checksum. After each
//! datagram the clock advances `delay` × 100 ms, firing due timers
//! (fragment queue expiry, neighbour probes). At the end the clock runs
//! on 200 s, by which every fragment queue and neighbour queue has
//! expired, and the pool must hold exactly the buffers it held before the
//! input: a buffer still out then is a leak.

#![no_main]

use std::net::Ipv4Addr;

use ipv4::eth_type_trans;
use ipv4::testutil::TestIpHost;
use libfuzzer_sys::fuzz_target;
use netcore::{Clock, Duration, NET_SKB_PAD, SkBuff, VirtualClock};
use wire::{ETH_HLEN, EtherType, EthernetAddress, EthernetRepr, Ipv4Packet};

/// Largest datagram fed: one MTU of eth0.
const MTU: usize = 1500;

fuzz_target!(|data: &[u8]| {
    let clock = VirtualClock::new();
    let mut host = TestIpHost::new(&clock, 1);
    let ifindex = host.add_device(1, MTU as u32, Ipv4Addr::new(198, 18, 0, 1), 24);
    host.run_until_idle();
    let _ = host.take_frames(ifindex);
    let start = host.pool.stats().inflight();

    let mut rest = data;
    while rest.len() >= 4 {
        let (ctl, delay) = (rest[0], rest[1]);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]])).min(MTU);
        rest = &rest[4..];
        let len = len.min(rest.len());
        let (dgram, tail) = rest.split_at(len);
        rest = tail;
        receive(&mut host, ifindex, ctl, dgram);
        advance(&mut host, &clock, Duration::from_millis(u64::from(delay) * 100));
        let _ = host.take_frames(ifindex);
    }
    advance(&mut host, &clock, Duration::from_secs(200));
    let _ = host.take_frames(ifindex);
    assert_eq!(
        host.pool.stats().inflight(),
        start,
        "buffers still held after every queue expired"
    );
});

/// Frames `dgram` (fixed up per `ctl`) to eth0 and receives it as a
/// driver would: `eth_type_trans()`, then `netif_receive_skb()`.
fn receive(host: &mut TestIpHost, ifindex: u32, ctl: u8, dgram: &[u8]) {
    let dev_addr = host.port(ifindex).addr;
    let mut frame = vec![0u8; ETH_HLEN + dgram.len()];
    EthernetRepr {
        src_addr: EthernetAddress([0x02, 0, 0, 0, 0x99, 1]),
        dst_addr: dev_addr,
        vlan: None,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut frame)
    .expect("room for the header");
    frame[ETH_HLEN..].copy_from_slice(dgram);
    if let Ok(mut ip) = Ipv4Packet::new_checked(&mut frame[ETH_HLEN..]) {
        if ctl & 1 != 0 {
            ip.set_dst_addr(Ipv4Addr::new(198, 18, 0, 1));
        }
        if ctl & 2 != 0 {
            ip.set_src_addr(Ipv4Addr::new(198, 18, 0, 2));
        }
        if ctl & 4 != 0 {
            ip.fill_checksum();
        }
    }
    // A pool running dry is a drop, as in a driver.
    let Ok(mut skb) = SkBuff::from_slice(&host.pool, NET_SKB_PAD, &frame) else {
        return;
    };
    skb.ifindex = ifindex;
    if eth_type_trans(&mut skb, dev_addr).is_ok() {
        let _ = softnet::netif_receive_skb(&mut host.cpu, skb);
    }
    host.run_until_idle();
}

/// Moves the clock on by `d`, stopping at each armed timer on the way.
fn advance(host: &mut TestIpHost, clock: &VirtualClock, d: Duration) {
    let end = clock.now() + d;
    // Periodic timers (neighbour GC) re-arm forever: bound the steps.
    for _ in 0..1000 {
        host.run_until_idle();
        match host.next_timer() {
            Some(t) if t <= end => {
                if t > clock.now() {
                    let _ = clock.set(t);
                }
            }
            _ => break,
        }
    }
    if end > clock.now() {
        let _ = clock.set(end);
    }
    host.run_until_idle();
}
