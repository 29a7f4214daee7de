//! The driver's net device as the core sees it.
//!
//! Mirrors the hand-over in `register_netdev()`: the igb driver allocates
//! its `net_device` (an [`IgbNetdev`], shared because the driver keeps its
//! own reference for `remove` and the runtime's event loop), and the core
//! registers it. [`DriverNetDevice`] forwards every `ndo_*` call to the
//! driver's adapter under the adapter's lock.
//!
//! # Deviations from Linux
//!
//! - `ethtool_ops` is not reachable through the core's handle (the adapter
//!   sits behind its own lock); the host reaches the driver's
//!   `EthtoolOps` through its NIC record instead ([`crate::Host::with_ethtool`]).

use netcore::{
    DevAddr, Errno, MtuError, NetDevice, NetDeviceFlags, NetdevFeatures, NetdevTx, NetdevTxQueues,
    RtnlLinkStats64, RxMode, SharedNetdevFeatures, SkBuff,
};
use nic_hw::IgbNetdev;

/// The core's handle on one igb net device.
///
/// Mirrors the `struct net_device` the driver passes to
/// `register_netdev()`; the adapter itself stays the driver's.
pub struct DriverNetDevice {
    name: String,
    tx_queues: NetdevTxQueues,
    adapter: IgbNetdev,
}

impl core::fmt::Debug for DriverNetDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DriverNetDevice")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl DriverNetDevice {
    /// Wraps the adapter the driver's `probe` created.
    pub fn new(adapter: IgbNetdev) -> DriverNetDevice {
        let (name, tx_queues) = {
            let a = adapter.lock();
            (a.name().to_owned(), a.tx_queues().clone())
        };
        DriverNetDevice {
            name,
            tx_queues,
            adapter,
        }
    }

    /// The driver's adapter.
    pub fn adapter(&self) -> &IgbNetdev {
        &self.adapter
    }
}

impl NetDevice for DriverNetDevice {
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
    fn min_mtu(&self) -> u32 {
        self.adapter.lock().min_mtu()
    }
    fn max_mtu(&self) -> u32 {
        self.adapter.lock().max_mtu()
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
    fn hw_features(&self) -> NetdevFeatures {
        self.adapter.lock().hw_features()
    }
    fn shared_features(&self) -> Option<SharedNetdevFeatures> {
        self.adapter.lock().shared_features()
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

const _: fn() = || {
    fn assert_impl<T: NetDevice>() {}
    assert_impl::<DriverNetDevice>();
};
