//! A fake [`NetDevice`] for tests of the layers above the driver.
//!
//! No kernel twin: it plays the part a `dummy` or `veth` device plays in
//! kernel selftests. It records every transmitted skb, can be told to
//! answer `NETDEV_TX_BUSY`, and implements [`EthtoolOps`] with ring-size
//! validation so ethtool printers and error paths can be tested.

use std::borrow::Cow;

use crate::errno::Errno;
use crate::ethtool::{
    EthtoolChannels, EthtoolDrvinfo, EthtoolError, EthtoolOps, EthtoolRingparam, EthtoolStat,
};
use crate::netdevice::{
    DevAddr, ETH_MIN_MTU, MtuError, NetDevice, NetDeviceFlags, NetdevFeatures, NetdevTx,
    NetdevTxQueues, RtnlLinkStats64, RxMode, validate_mtu,
};
use crate::skbuff::SkBuff;

/// The largest MTU the fake accepts.
pub const FAKE_MAX_MTU: u32 = 9000;
/// The largest ring the fake accepts.
pub const FAKE_MAX_RING: u32 = 4096;

/// A device that transmits into a `Vec`.
#[derive(Debug)]
pub struct FakeNetDevice {
    name: String,
    ifindex: u32,
    dev_addr: DevAddr,
    flags: NetDeviceFlags,
    mtu: u32,
    features: NetdevFeatures,
    queues: NetdevTxQueues,
    stats: RtnlLinkStats64,
    /// Every skb `start_xmit` accepted, with its queue, in order.
    pub transmitted: Vec<(SkBuff, u16)>,
    /// While true, `start_xmit` stops the queue and returns `Busy`.
    pub busy: bool,
    /// The last filter given to `set_rx_mode`.
    pub rx_mode: RxMode,
    ring: EthtoolRingparam,
}

impl FakeNetDevice {
    /// A fake `name` with index `ifindex`, address `02:00:00:00:00:<ifindex>`,
    /// MTU 1500, `queues` tx queues, down.
    pub fn new(name: &str, ifindex: u32, queues: u16) -> FakeNetDevice {
        FakeNetDevice {
            name: name.to_owned(),
            ifindex,
            dev_addr: [0x02, 0, 0, 0, 0, ifindex as u8],
            flags: NetDeviceFlags::BROADCAST | NetDeviceFlags::MULTICAST,
            mtu: 1500,
            features: NetdevFeatures::SG | NetdevFeatures::GSO | NetdevFeatures::GRO,
            queues: NetdevTxQueues::new(queues),
            stats: RtnlLinkStats64::default(),
            transmitted: Vec::new(),
            busy: false,
            rx_mode: RxMode::default(),
            ring: EthtoolRingparam {
                rx_max_pending: FAKE_MAX_RING,
                tx_max_pending: FAKE_MAX_RING,
                rx_pending: 256,
                tx_pending: 256,
                ..EthtoolRingparam::default()
            },
        }
    }
}

const RING_ACCEPTS: &str = "64..=4096, a power of two";

fn check_ring(param: &'static str, v: u32) -> Result<(), EthtoolError> {
    if (64..=FAKE_MAX_RING).contains(&v) && v.is_power_of_two() {
        Ok(())
    } else {
        Err(EthtoolError::InvalidParam {
            param,
            value: u64::from(v),
            accepts: RING_ACCEPTS,
        })
    }
}

impl NetDevice for FakeNetDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn ifindex(&self) -> u32 {
        self.ifindex
    }
    fn dev_addr(&self) -> DevAddr {
        self.dev_addr
    }
    fn flags(&self) -> NetDeviceFlags {
        self.flags
    }
    fn mtu(&self) -> u32 {
        self.mtu
    }
    fn min_mtu(&self) -> u32 {
        ETH_MIN_MTU
    }
    fn max_mtu(&self) -> u32 {
        FAKE_MAX_MTU
    }
    fn change_mtu(&mut self, new_mtu: u32) -> Result<(), MtuError> {
        validate_mtu(new_mtu, self.min_mtu(), self.max_mtu())?;
        self.mtu = new_mtu;
        Ok(())
    }
    fn features(&self) -> NetdevFeatures {
        self.features
    }
    fn tx_queues(&self) -> &NetdevTxQueues {
        &self.queues
    }
    fn open(&mut self) -> Result<(), Errno> {
        self.flags |= NetDeviceFlags::UP | NetDeviceFlags::RUNNING | NetDeviceFlags::LOWER_UP;
        self.queues.wake_all();
        Ok(())
    }
    fn stop(&mut self) -> Result<(), Errno> {
        self.flags -= NetDeviceFlags::UP | NetDeviceFlags::RUNNING | NetDeviceFlags::LOWER_UP;
        self.queues.stop_all();
        self.transmitted.clear();
        Ok(())
    }
    fn start_xmit(&mut self, skb: SkBuff, queue: u16) -> NetdevTx {
        let Some(q) = self.queues.get(queue) else {
            // A queue the device does not have: drop and count, like a
            // driver given a bad queue_mapping.
            self.stats.tx_dropped += 1;
            return NetdevTx::Ok;
        };
        if self.busy {
            q.stop();
            return NetdevTx::Busy(skb);
        }
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += skb.len() as u64;
        self.transmitted.push((skb, queue));
        NetdevTx::Ok
    }
    fn stats64(&self) -> RtnlLinkStats64 {
        self.stats
    }
    fn set_rx_mode(&mut self, mode: &RxMode) {
        self.flags.set(NetDeviceFlags::PROMISC, mode.promisc);
        self.flags.set(NetDeviceFlags::ALLMULTI, mode.allmulti);
        self.rx_mode = mode.clone();
    }
    fn ethtool_ops(&mut self) -> Option<&mut dyn EthtoolOps> {
        Some(self)
    }
}

impl EthtoolOps for FakeNetDevice {
    fn get_drvinfo(&self) -> EthtoolDrvinfo {
        EthtoolDrvinfo {
            driver: "fake".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            n_stats: 2,
            ..EthtoolDrvinfo::default()
        }
    }
    fn get_ringparam(&self) -> Result<EthtoolRingparam, EthtoolError> {
        Ok(self.ring)
    }
    fn set_ringparam(&mut self, ring: &EthtoolRingparam) -> Result<(), EthtoolError> {
        check_ring("rx", ring.rx_pending)?;
        check_ring("tx", ring.tx_pending)?;
        self.ring.rx_pending = ring.rx_pending;
        self.ring.tx_pending = ring.tx_pending;
        Ok(())
    }
    fn get_channels(&self) -> Result<EthtoolChannels, EthtoolError> {
        let n = u32::from(self.queues.len());
        Ok(EthtoolChannels {
            max_combined: n,
            combined_count: n,
            ..EthtoolChannels::default()
        })
    }
    fn get_features(&self) -> Result<(NetdevFeatures, NetdevFeatures), EthtoolError> {
        Ok((self.features, NetdevFeatures::GSO | NetdevFeatures::GRO))
    }
    fn set_features(&mut self, wanted: NetdevFeatures) -> Result<(), EthtoolError> {
        let fixed = !(NetdevFeatures::GSO | NetdevFeatures::GRO);
        if (wanted ^ self.features).intersects(fixed) {
            return Err(EthtoolError::InvalidParam {
                param: "features",
                value: wanted.bits(),
                accepts: "changes to tx-generic-segmentation and rx-gro only",
            });
        }
        self.features = wanted;
        Ok(())
    }
    fn get_ethtool_stats(&self) -> Vec<EthtoolStat> {
        vec![
            (Cow::Borrowed("tx_packets"), self.stats.tx_packets),
            (Cow::Borrowed("tx_bytes"), self.stats.tx_bytes),
        ]
    }
}

const _: fn() = || {
    fn assert_impl<T: NetDevice + EthtoolOps>() {}
    assert_impl::<FakeNetDevice>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ethtool::format_stats;
    use crate::page_pool::{PagePool, PagePoolParams};

    fn skb(pool: &PagePool, bytes: &[u8]) -> SkBuff {
        SkBuff::from_slice(pool, 0, bytes).unwrap()
    }

    #[test]
    fn records_transmits_and_busy_returns_the_skb() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut dev: Box<dyn NetDevice> = Box::new(FakeNetDevice::new("eth0", 2, 2));
        dev.open().unwrap();
        assert!(dev.flags().contains(NetDeviceFlags::UP));
        assert!(matches!(
            dev.start_xmit(skb(&pool, b"one"), 1),
            NetdevTx::Ok
        ));
        assert_eq!(dev.stats64().tx_packets, 1);
        assert_eq!(dev.stats64().tx_bytes, 3);
        assert!(matches!(dev.start_xmit(skb(&pool, b"x"), 7), NetdevTx::Ok));
        assert_eq!(dev.stats64().tx_dropped, 1);
    }

    #[test]
    fn busy_stops_queue_and_hands_back() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mut dev = FakeNetDevice::new("eth0", 2, 1);
        dev.open().unwrap();
        dev.busy = true;
        let NetdevTx::Busy(back) = dev.start_xmit(skb(&pool, b"keep"), 0) else {
            panic!("expected Busy");
        };
        assert_eq!(back.data(), b"keep");
        assert!(dev.tx_queues().get(0).unwrap().is_stopped());
        assert!(dev.transmitted.is_empty());
        dev.busy = false;
        assert!(dev.tx_queues().get(0).unwrap().wake());
        assert!(matches!(dev.start_xmit(back, 0), NetdevTx::Ok));
        assert_eq!(dev.transmitted[0].0.data(), b"keep");
        dev.stop().unwrap();
        assert_eq!(pool.stats().inflight(), 0, "stop released every buffer");
    }

    #[test]
    fn mtu_rx_mode_and_ethtool() {
        let mut dev = FakeNetDevice::new("eth0", 3, 4);
        assert_eq!(
            dev.change_mtu(9001).unwrap_err().to_string(),
            "mtu 9001 out of range: accepts 68..=9000"
        );
        assert_eq!(dev.mtu(), 1500);
        dev.change_mtu(9000).unwrap();
        assert_eq!(dev.mtu(), 9000);
        dev.set_rx_mode(&RxMode {
            promisc: true,
            allmulti: false,
            mc_list: vec![[0x01, 0, 0x5e, 0, 0, 1]],
        });
        assert!(dev.flags().contains(NetDeviceFlags::PROMISC));
        assert_eq!(dev.rx_mode.mc_list.len(), 1);
        let ops = dev.ethtool_ops().unwrap();
        let mut ring = ops.get_ringparam().unwrap();
        ring.rx_pending = 1000;
        ring.tx_pending = 512;
        let e = ops.set_ringparam(&ring).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid rx value 1000: accepts 64..=4096, a power of two"
        );
        assert_eq!(
            ops.get_ringparam().unwrap().tx_pending,
            256,
            "an invalid setting changes nothing"
        );
        ring.rx_pending = 1024;
        ops.set_ringparam(&ring).unwrap();
        assert_eq!(ops.get_ringparam().unwrap().rx_pending, 1024);
        assert_eq!(ops.get_channels().unwrap().combined_count, 4);
        assert!(
            ops.set_coalesce(&crate::ethtool::EthtoolCoalesce::default())
                .is_err()
        );
        assert!(ops.set_features(NetdevFeatures::TSO).is_err());
        ops.set_features(NetdevFeatures::SG | NetdevFeatures::GSO)
            .unwrap();
        assert_eq!(
            format_stats(&ops.get_ethtool_stats()),
            "NIC statistics:\n     tx_packets: 0\n     tx_bytes: 0\n"
        );
    }
}
