//! igb's transmit queues under the core (softnet): the core puts packets
//! only on as many queues as the driver has rings
//! (`netif_set_real_num_tx_queues()`), a full ring stops the skb's queue,
//! the tx clean wakes it and the wake reschedules the qdisc, so a flood
//! of a small ring loses nothing.

use core::net::Ipv4Addr;
use std::sync::Arc;

use irq::{CpuWakeup, IrqTable, SoftirqNr};
use netcore::{
    DevAddr, Errno, EthtoolCoalesce, EthtoolRingparam, MtuError, NetDevice, NetDeviceFlags,
    NetdevFeatures, NetdevTx, NetdevTxQueues, PagePool, PagePoolParams, RtnlLinkStats64, RxMode,
    SkBuff,
};
use nic_hw::testutil::{MAC_A, MAC_B, TEST_FIRST_IRQ, udp_frame};
use nic_hw::{IgbDevice, IgbDriver, IgbNetdev, PciBus};
use qdisc::QdiscStats;
use softnet::testutil::TestHost;
use softnet::{NetDev, dev_open, dev_queue_xmit};

/// The adapter as the core's `NetDevice` (what `register_netdev()` gets).
struct Dev {
    name: String,
    tx_queues: NetdevTxQueues,
    adapter: IgbNetdev,
}

impl NetDevice for Dev {
    fn name(&self) -> &str {
        &self.name
    }
    fn ifindex(&self) -> u32 {
        self.adapter.lock().ifindex()
    }
    fn dev_addr(&self) -> DevAddr {
        self.adapter.lock().dev_addr()
    }
    fn flags(&self) -> NetDeviceFlags {
        self.adapter.lock().flags()
    }
    fn mtu(&self) -> u32 {
        self.adapter.lock().mtu()
    }
    fn change_mtu(&mut self, new_mtu: u32) -> Result<(), MtuError> {
        self.adapter.lock().change_mtu(new_mtu)
    }
    fn txqueuelen(&self) -> u32 {
        self.adapter.lock().txqueuelen()
    }
    fn features(&self) -> NetdevFeatures {
        self.adapter.lock().features()
    }
    fn tx_queues(&self) -> &NetdevTxQueues {
        &self.tx_queues
    }
    fn open(&mut self) -> Result<(), Errno> {
        self.adapter.lock().open()
    }
    fn stop(&mut self) -> Result<(), Errno> {
        self.adapter.lock().stop()
    }
    fn start_xmit(&mut self, skb: SkBuff, queue: u16) -> NetdevTx {
        self.adapter.lock().start_xmit(skb, queue)
    }
    fn stats64(&self) -> RtnlLinkStats64 {
        self.adapter.lock().stats64()
    }
    fn set_rx_mode(&mut self, mode: &RxMode) {
        self.adapter.lock().set_rx_mode(mode);
    }
}

struct Host {
    net: TestHost,
    irqs: Arc<IrqTable>,
    dev: Arc<IgbDevice>,
    adapter: IgbNetdev,
    nd: Arc<NetDev>,
    pool: PagePool,
    _bus: PciBus,
}

impl Host {
    /// One CPU, one igb with a 64-descriptor tx ring and `channels`
    /// channels, registered with the core and opened; no moderation.
    fn new(channels: u32) -> Host {
        let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
        let net = TestHost::new(1);
        let irqs = Arc::new(IrqTable::new("txq-msi", 256, 1, CpuWakeup::new()).expect("table"));
        let mut bus = PciBus::new(0, Arc::clone(&irqs), TEST_FIRST_IRQ);
        let dev = IgbDevice::new(MAC_A, None);
        let bdf = bus.add_device(Arc::clone(&dev)).expect("bus has room");
        let driver = IgbDriver::new(pool.clone(), Arc::clone(&net.lists), 2);
        bus.pci_register_driver(driver.clone()).expect("igb binds");
        let adapter = driver.netdev(bdf).expect("igb probed the NIC");
        let (name, tx_queues) = {
            let mut a = adapter.lock();
            let ops = a.ethtool_ops().expect("ethtool ops");
            ops.set_ringparam(&EthtoolRingparam {
                tx_pending: 64,
                ..ops.get_ringparam().expect("ringparam")
            })
            .expect("64 tx descriptors");
            let mut ch = ops.get_channels().expect("channels");
            ch.combined_count = channels;
            ops.set_channels(&ch).expect("channels in range");
            ops.set_coalesce(&EthtoolCoalesce {
                rx_coalesce_usecs: 0,
                tx_coalesce_usecs: 0,
                ..EthtoolCoalesce::default()
            })
            .expect("no moderation");
            (a.name().to_owned(), a.tx_queues().clone())
        };
        let boxed = Box::new(Dev {
            name,
            tx_queues,
            adapter: Arc::clone(&adapter),
        });
        let nd = net
            .net
            .dev_base()
            .register_netdevice(boxed, 16)
            .expect("registered");
        dev_open(&nd).expect("open");
        Host {
            net,
            irqs,
            dev,
            adapter,
            nd,
            pool,
            _bus: bus,
        }
    }

    /// The device sends what the doorbells announced, its IRQs run, then
    /// the softirqs (NAPI's tx clean, the rescheduled qdiscs) until idle.
    fn service(&mut self) {
        // rx-usecs 0 still leaves igb's smallest interval (1 µs) between a
        // vector's interrupts (igb_write_itr() writes 0 as 4): let it pass.
        let now = self.net.clock.advance(netcore::Duration::from_micros(1));
        self.dev.poll(now);
        let _ = self.irqs.handle_pending(0, &self.net.softirqs);
        self.net.run_until_idle();
    }

    fn stat(&self, name: &str) -> u64 {
        let mut a = self.adapter.lock();
        let ops = a.ethtool_ops().expect("ethtool ops");
        ops.get_ethtool_stats()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no stat {name}"))
            .1
    }

    /// `tx_queue_N_restart` summed over the rings.
    fn restarts(&self) -> u64 {
        let mut a = self.adapter.lock();
        let ops = a.ethtool_ops().expect("ethtool ops");
        ops.get_ethtool_stats()
            .into_iter()
            .filter(|(n, _)| n.starts_with("tx_queue_") && n.ends_with("_restart"))
            .map(|(_, v)| v)
            .sum()
    }

    /// Sums a qdisc statistic over every core queue.
    fn qdisc_sum(&self, f: impl Fn(&QdiscStats) -> u64) -> u64 {
        (0..self.nd.num_tx_queues())
            .map(|q| {
                self.nd
                    .with_qdisc(q, |qd| f(&qd.stats()))
                    .expect("queue in range")
            })
            .sum()
    }
}

/// 600 UDP frames of 300 different flows (so the hash spreads them over
/// every queue the core may use) into a 64-descriptor ring, all sent
/// before the device runs: the ring fills many times over.
fn flood(h: &mut Host) -> usize {
    let n = 600;
    for i in 0..n {
        let port = 1000 + (i % 300) as u16;
        let frame = udp_frame(
            MAC_A,
            MAC_B,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            (port, 9),
            64,
        );
        let skb = SkBuff::from_slice(&h.pool, 64, &frame).expect("skb");
        let ctx = h.net.ctx(0);
        let _ = dev_queue_xmit(ctx, &h.nd, skb).expect("device up");
        if i % 250 == 249 {
            // Now and then the device and the softirqs run in between.
            h.service();
        }
    }
    n
}

fn ring_full_then_drained(channels: u32) {
    let mut h = Host::new(channels);
    let rings = channels as u16;
    assert_eq!(h.nd.num_tx_queues(), 16, "igb's core queues");
    assert_eq!(
        h.nd.real_num_tx_queues(),
        rings,
        "the core uses one queue per ring"
    );
    let sent = flood(&mut h);
    // The ring filled: some queue stopped and its packets wait in qdiscs.
    assert!(h.restarts() > 0 || h.qdisc_sum(|s| u64::from(s.qlen)) > 0);
    for _ in 0..200 {
        if h.qdisc_sum(|s| u64::from(s.qlen)) == 0 && h.stat("tx_packets") == sent as u64 {
            break;
        }
        h.service();
    }
    assert_eq!(
        h.stat("tx_packets"),
        sent as u64,
        "every packet left the ring"
    );
    assert_eq!(h.qdisc_sum(|s| u64::from(s.drops)), 0, "TX_BUSY is no drop");
    assert_eq!(h.qdisc_sum(|s| u64::from(s.qlen)), 0, "the backlog drained");
    assert_eq!(h.qdisc_sum(|s| s.packets), sent as u64);
    assert!(
        h.qdisc_sum(|s| u64::from(s.requeues)) > 0,
        "the driver said busy"
    );
    assert!(h.restarts() > 0, "the clean woke a stopped queue");
    for q in rings..16 {
        let stats = h.nd.with_qdisc(q, |qd| qd.stats()).expect("queue");
        assert_eq!(stats.packets, 0, "queue {q} has no ring and no packet");
    }
    for q in 0..16 {
        assert!(
            !h.nd.tx_queues().get(q).expect("queue").is_stopped(),
            "queue {q} runs again"
        );
    }
    assert!(!h.net.pending(0, SoftirqNr::NetTx));
}

#[test]
fn one_ring_full_stops_its_queue_and_the_clean_drains_the_qdisc() {
    ring_full_then_drained(1);
}

#[test]
fn four_rings_full_stop_their_queues_and_the_clean_drains_the_qdiscs() {
    ring_full_then_drained(4);
}

#[test]
fn ring_full_stops_the_skbs_queue_and_a_clean_wakes_it() {
    // Driver level, 4 channels: an skb on queue 2 fills ring 2; queue 2
    // (the skb's) is the one stopped, the others run; the clean wakes it.
    let mut h = Host::new(4);
    let frame = udp_frame(
        MAC_A,
        MAC_B,
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 0, 2),
        (1, 2),
        64,
    );
    let busy = (0..100).find_map(|_| {
        let skb = SkBuff::from_slice(&h.pool, 64, &frame).expect("skb");
        match h.adapter.lock().start_xmit(skb, 2) {
            NetdevTx::Ok => None,
            NetdevTx::Busy(skb) => Some(skb),
        }
    });
    assert!(busy.is_some(), "a 64-descriptor ring fills");
    let stopped: Vec<u16> = (0..16)
        .filter(|&q| h.nd.tx_queues().get(q).expect("queue").is_stopped())
        .collect();
    assert_eq!(stopped, [2], "only the ring's own queue stops");
    h.service();
    assert!(!h.nd.tx_queues().get(2).expect("queue").is_stopped());
    assert_eq!(h.stat("tx_queue_2_restart"), 1);
}

#[test]
fn channels_set_how_many_queues_the_core_uses() {
    let h = Host::new(4);
    assert_eq!(h.nd.real_num_tx_queues(), 4);
    {
        let mut a = h.adapter.lock();
        let ops = a.ethtool_ops().expect("ethtool ops");
        let mut ch = ops.get_channels().expect("channels");
        ch.combined_count = 2;
        ops.set_channels(&ch).expect("2 channels");
    }
    assert_eq!(h.nd.real_num_tx_queues(), 2, "ethtool -L 2 while up");
}
