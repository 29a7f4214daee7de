//! The whole host on arbitrary frames: each frame arrives at the igb
//! model's MAC (`IgbHw::receive_frame`, FCS appended here), then the
//! simulated runtime runs the host — DMA, MSI-X, NAPI, softnet, GRO,
//! `netif_receive_skb`, ARP, IPv4, ICMP and whatever answers go out.
//!
//! The input is a list of records `delay: u8, len: u16 (LE), frame[len]`;
//! after each frame the network runs `delay` × 100 ms of virtual time. At
//! the end it runs 200 s more, by which every fragment queue and
//! neighbour queue has expired, and the host's pool must hold exactly the
//! buffers it held before the input (the rx ring's posted buffers).
//!
//! The host is built once per process and reused, because building one
//! per input would be far slower. So a crash may depend on earlier inputs;
//! the in-flight check after every input keeps a leak attributable to the
//! input that caused it, and each input gets its own event budget. TCP
//! segments have their own target, `tcp_v4_rcv`.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use netcore::Duration;
use netstack::{Host, Network, NicConfig};
use nic_hw::append_fcs;
use wire::ETH_FRAME_LEN;

thread_local! {
    /// The host, and the buffers its pool holds when idle.
    static HOST: RefCell<Option<(Network, u64)>> = const { RefCell::new(None) };
}

fn build() -> (Network, u64) {
    let mut net = Network::new(1);
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(1)
            .nic(NicConfig::new().mac([0x02, 0, 0, 0, 0, 1]))
            .addr("198.18.0.1/24"),
    )
    .expect("a valid host");
    net.run_until_idle().expect("an idle host settles");
    let start = pool_inflight(&net);
    (net, start)
}

fuzz_target!(|data: &[u8]| {
    HOST.with_borrow_mut(|host| {
        let (net, start) = host.get_or_insert_with(build);
        run(net, *start, data);
    });
});

/// Loop iterations one input may take: a storm (a timer re-armed at once,
/// a frame that makes more frames) fails the input that caused it.
const EVENTS_PER_INPUT: u64 = 10_000_000;

fn run(net: &mut Network, start: u64, data: &[u8]) {
    // The network's event budget counts over its whole life and this one
    // lives across inputs: give each input its own allowance.
    net.set_event_budget(net.events_run() + EVENTS_PER_INPUT);
    let mut rest = data;
    while rest.len() >= 3 {
        let delay = rest[0];
        let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(ETH_FRAME_LEN);
        rest = &rest[3..];
        let len = len.min(rest.len());
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        let mut frame = frame.to_vec();
        append_fcs(&mut frame);
        let now = net.now();
        let host = net.host("h1").expect("the host");
        let _ = host.shared().nics()[0]
            .device
            .lock()
            .receive_frame(now, &frame);
        net.run_for(Duration::from_millis(u64::from(delay) * 100))
            .expect("the host runs within its event budget");
    }
    net.run_for(Duration::from_secs(200))
        .expect("the host runs within its event budget");
    assert_eq!(
        pool_inflight(&net),
        start,
        "buffers still held after every queue expired"
    );
}

fn pool_inflight(net: &Network) -> u64 {
    net.host("h1")
        .expect("the host")
        .shared()
        .pool
        .stats()
        .inflight()
}
