//! Frames through the whole device path of two simulated hosts:
//! dev_queue_xmit → qdisc → igb start_xmit → tx ring → wire → MAC filter →
//! DMA → MSI-X → napi_schedule → NET_RX → net_rx_action → igb poll →
//! netif_receive_skb → a counting packet type.

use std::sync::Arc;

use netcore::{Duration, Instant, SkBuff};
use netstack::{Host, Network, NicConfig, PacketCounter, Report};
use nic_hw::LinkConfig;
use softnet::{PtypeMatch, dev_queue_xmit};

const ETH_P_EXPERIMENT: u16 = 0x88B5;

fn two_hosts(seed: u64, cfg: LinkConfig) -> Network {
    let mut net = Network::new(seed);
    let (a, b) = net.wire("w0", cfg).unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(a)),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(b)),
    )
    .unwrap();
    net
}

fn frame(src: [u8; 6], dst: [u8; 6], i: u8, len: usize) -> Vec<u8> {
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETH_P_EXPERIMENT.to_be_bytes());
    f.extend((0..len - 14).map(|j| i.wrapping_add(j as u8)));
    f
}

fn send(net: &mut Network, from: &str, n: u8) {
    let h1 = net.host(from).unwrap().shared().clone();
    let dst = net.host("h2").unwrap().shared().nics()[0].netdev.dev_addr();
    let src = h1.nics()[0].netdev.dev_addr();
    h1.clone().run_on(0, move |ctx| {
        let dev = h1.dev("eth0").unwrap();
        for i in 0..n {
            let mut skb = SkBuff::from_slice(&h1.pool, 64, &frame(src, dst, i, 100)).unwrap();
            skb.protocol = ETH_P_EXPERIMENT;
            assert_eq!(dev_queue_xmit(ctx, &dev, skb), Ok(qdisc::NetXmit::Success));
        }
    });
}

#[test]
fn frames_cross_the_wire_and_reach_the_packet_type_with_exact_counters() {
    let mut net = two_hosts(7, LinkConfig::default());
    let counter = Arc::new(PacketCounter::new(PtypeMatch::Type(ETH_P_EXPERIMENT), None));
    net.host("h2").unwrap().dev_add_pack(counter.clone());
    send(&mut net, "h1", 5);
    net.run_until_idle().unwrap();

    assert_eq!(counter.packets(), 5);
    assert_eq!(counter.bytes(), 5 * 86);
    let h2 = net.host("h2").unwrap();
    let st = h2.shared().dev("eth0").unwrap().dev_get_stats();
    assert_eq!((st.rx_packets, st.rx_bytes), (5, 5 * 100));
    let h1 = net.host("h1").unwrap();
    let st = h1.shared().dev("eth0").unwrap().dev_get_stats();
    assert_eq!((st.tx_packets, st.tx_bytes), (5, 5 * 100));
    // No RSS hash for a non-IP frame: queue 0, whose vector is on CPU 0.
    let ss = h2.report(&Report::SoftnetStat).unwrap();
    let cpu0: Vec<&str> = ss.lines().next().unwrap().split(' ').collect();
    assert_eq!(cpu0[0], "00000005", "{ss}");
    let ethtool = h2.report(&Report::EthtoolStats("eth0".into())).unwrap();
    assert!(ethtool.contains("rx_packets: 5"), "{ethtool}");
    assert!(ethtool.contains("rx_queue_0_packets: 5"), "{ethtool}");
    let irqs = h2.report(&Report::ProcInterrupts).unwrap();
    assert!(irqs.contains("eth0-TxRx-0"), "{irqs}");
}

#[test]
fn virtual_time_jumps_over_idle_periods() {
    let mut net = two_hosts(1, LinkConfig::default().delay(Duration::from_millis(250)));
    let counter = Arc::new(PacketCounter::new(PtypeMatch::Type(ETH_P_EXPERIMENT), None));
    net.host("h2").unwrap().dev_add_pack(counter.clone());
    net.at(Instant::from_secs(30), |net| send(net, "h1", 1));
    net.run_until(Instant::from_secs(30)).unwrap();
    assert_eq!(counter.packets(), 0);
    net.run_until_idle().unwrap();
    assert_eq!(counter.packets(), 1);
    let now = net.now();
    assert!(
        now >= Instant::from_millis(30_250) && now < Instant::from_millis(30_251),
        "{now:?}"
    );
    assert!(
        net.events_run() < 200,
        "{} loop iterations",
        net.events_run()
    );
}

#[test]
fn the_event_budget_stops_a_run_that_never_ends() {
    fn again(net: &mut Network) {
        net.after(Duration::from_micros(1), again);
    }
    let mut net = two_hosts(1, LinkConfig::default());
    net.after(Duration::ZERO, again);
    net.set_event_budget(1000);
    let err = net.run_until_idle().unwrap_err();
    assert!(err.to_string().contains("event budget of 1000"), "{err}");
}

#[test]
fn frames_cross_on_the_thread_runtime() {
    let mut net = Network::realtime(3);
    let (a, b) = net.wire("w0", LinkConfig::default()).unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(a)),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(b)),
    )
    .unwrap();
    let counter = Arc::new(PacketCounter::new(PtypeMatch::Type(ETH_P_EXPERIMENT), None));
    net.host("h2").unwrap().dev_add_pack(counter.clone());
    send(&mut net, "h1", 3);
    let rt = netstack::ThreadRuntime::start(net).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while counter.packets() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let net = rt.stop().unwrap();
    assert_eq!(counter.packets(), 3);
    let st = net
        .host("h2")
        .unwrap()
        .shared()
        .dev("eth0")
        .unwrap()
        .dev_get_stats();
    assert_eq!(st.rx_packets, 3);
}

/// Dropping a network tears its hosts down like a namespace going away:
/// each device is closed through the driver (IRQs freed, NAPI stopped,
/// posted receive buffers back in the pool) and nothing keeps the hosts
/// or their device models alive.
#[test]
fn dropping_a_network_closes_its_devices_and_frees_everything() {
    let mut net = two_hosts(3, LinkConfig::default());
    send(&mut net, "h1", 20);
    net.run_for(Duration::from_millis(1)).unwrap();
    let hosts: Vec<_> = net
        .hosts()
        .iter()
        .map(|h| Arc::downgrade(h.shared()))
        .collect();
    let devices: Vec<_> = net
        .hosts()
        .iter()
        .map(|h| Arc::clone(&h.shared().nics()[0].device))
        .collect();
    let pools: Vec<_> = net
        .hosts()
        .iter()
        .map(|h| h.shared().pool.clone())
        .collect();
    assert!(
        pools.iter().all(|p| p.stats().inflight() > 0),
        "rx rings are posted"
    );
    drop(net);
    assert!(
        hosts.iter().all(|h| h.upgrade().is_none()),
        "a host outlived its network"
    );
    for d in &devices {
        assert_eq!(Arc::strong_count(d), 1, "a device model outlived its host");
    }
    for p in &pools {
        assert_eq!(p.stats().inflight(), 0, "{:?}", p.stats());
    }
}

/// A NIC removed from the middle of three and the bus rescanned: the
/// driver names it as `dev_alloc_name("eth%d")` does, with the lowest free
/// unit (`eth1`), while `eth0` and `eth2` stay as they were.
#[test]
fn a_reprobed_nic_takes_the_lowest_free_name() {
    let mut net = Network::new(3);
    net.add_host(
        Host::builder()
            .name("h")
            .nic(NicConfig::new())
            .nic(NicConfig::new())
            .nic(NicConfig::new()),
    )
    .unwrap();
    net.run_until_idle().unwrap();
    let names = |net: &Network| {
        let mut v: Vec<String> = net
            .host("h")
            .unwrap()
            .shared()
            .nics()
            .iter()
            .map(|n| n.netdev.name().to_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&net), ["eth0", "eth1", "eth2"]);
    let h = net.host_mut("h").unwrap();
    h.pci_stop_and_remove_bus_device("eth1").unwrap();
    assert_eq!(names(&net), ["eth0", "eth2"]);
    let h = net.host_mut("h").unwrap();
    assert_eq!(h.pci_rescan_bus().unwrap(), ["eth1"]);
    assert_eq!(names(&net), ["eth0", "eth1", "eth2"]);
    net.run_until_idle().unwrap();
}

/// Found by the network_desc fuzz target (`ring = 4000000000` in a
/// scenario): the page pool was sized from the ring before `ethtool -G`
/// checked it, and the allocation of 2^32 slots aborted the process. Now
/// the ring gets the driver's error and nothing is allocated for it.
#[test]
fn an_oversized_ring_is_refused_not_allocated() {
    for (queues, ring) in [(1, u32::MAX), (u32::MAX, 4096), (u32::MAX, u32::MAX)] {
        let mut net = Network::new(1);
        let err = net
            .add_host(
                Host::builder()
                    .name("h")
                    .nic(NicConfig::new().queues(queues).ring(ring)),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ethtool -G") || err.contains("ethtool -L"),
            "queues {queues} ring {ring}: {err}"
        );
    }
}
