//! The device seam: what the core asks of a network driver.
//!
//! Mirrors `struct net_device` and `struct net_device_ops` in
//! `include/linux/netdevice.h`, the `NETIF_F_*` feature bits of
//! `include/linux/netdev_features.h`, the `IFF_*` flags of
//! `include/uapi/linux/if.h` and `struct rtnl_link_stats64` of
//! `include/uapi/linux/if_link.h`. Layers above the driver reach hardware
//! only through [`NetDevice`], as the kernel's core never includes a driver
//! header.

use core::fmt;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use bitflags::bitflags;

use crate::errno::Errno;
use crate::ethtool::EthtoolOps;
use crate::skbuff::SkBuff;

/// A device's link-layer (MAC) address.
///
/// Mirrors `dev->dev_addr` for Ethernet (`ETH_ALEN` = 6 bytes).
pub type DevAddr = [u8; 6];

/// The smallest MTU an Ethernet device accepts (`ETH_MIN_MTU`).
pub const ETH_MIN_MTU: u32 = 68;
/// The default Ethernet MTU (`ETH_DATA_LEN`).
pub const ETH_DATA_LEN: u32 = 1500;
/// The default transmit queue length (`DEFAULT_TX_QUEUE_LEN`).
pub const DEFAULT_TX_QUEUE_LEN: u32 = 1000;

bitflags! {
    /// Offloads a device offers or has enabled.
    ///
    /// Mirrors `netdev_features_t` and the `NETIF_F_*` bits of
    /// `include/linux/netdev_features.h`, bit for bit.
    #[doc(alias = "netdev_features_t")]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct NetdevFeatures: u64 {
        /// Scatter/gather transmit. `NETIF_F_SG`.
        #[doc(alias = "NETIF_F_SG")] const SG = 1 << 0;
        /// TCP/UDP over IPv4 transmit checksum. `NETIF_F_IP_CSUM`.
        #[doc(alias = "NETIF_F_IP_CSUM")] const IP_CSUM = 1 << 1;
        /// Generic transmit checksum. `NETIF_F_HW_CSUM`.
        #[doc(alias = "NETIF_F_HW_CSUM")] const HW_CSUM = 1 << 3;
        /// TCP/UDP over IPv6 transmit checksum. `NETIF_F_IPV6_CSUM`.
        #[doc(alias = "NETIF_F_IPV6_CSUM")] const IPV6_CSUM = 1 << 4;
        /// DMA to high memory. `NETIF_F_HIGHDMA`.
        #[doc(alias = "NETIF_F_HIGHDMA")] const HIGHDMA = 1 << 5;
        /// Frag-list transmit. `NETIF_F_FRAGLIST`.
        #[doc(alias = "NETIF_F_FRAGLIST")] const FRAGLIST = 1 << 6;
        /// VLAN tag insertion on transmit. `NETIF_F_HW_VLAN_CTAG_TX`.
        #[doc(alias = "NETIF_F_HW_VLAN_CTAG_TX")] const HW_VLAN_CTAG_TX = 1 << 7;
        /// VLAN tag stripping on receive. `NETIF_F_HW_VLAN_CTAG_RX`.
        #[doc(alias = "NETIF_F_HW_VLAN_CTAG_RX")] const HW_VLAN_CTAG_RX = 1 << 8;
        /// VLAN filtering on receive. `NETIF_F_HW_VLAN_CTAG_FILTER`.
        #[doc(alias = "NETIF_F_HW_VLAN_CTAG_FILTER")] const HW_VLAN_CTAG_FILTER = 1 << 9;
        /// Cannot handle VLAN frames. `NETIF_F_VLAN_CHALLENGED`.
        #[doc(alias = "NETIF_F_VLAN_CHALLENGED")] const VLAN_CHALLENGED = 1 << 10;
        /// Software segmentation offload. `NETIF_F_GSO`.
        #[doc(alias = "NETIF_F_GSO")] const GSO = 1 << 11;
        /// Bound to its network namespace. `NETIF_F_NETNS_LOCAL`.
        #[doc(alias = "NETIF_F_NETNS_LOCAL")] const NETNS_LOCAL = 1 << 13;
        /// Generic receive offload. `NETIF_F_GRO`.
        #[doc(alias = "NETIF_F_GRO")] const GRO = 1 << 14;
        /// Large receive offload. `NETIF_F_LRO`.
        #[doc(alias = "NETIF_F_LRO")] const LRO = 1 << 15;
        /// TCPv4 segmentation. `NETIF_F_TSO`.
        #[doc(alias = "NETIF_F_TSO")] const TSO = 1 << 16;
        /// Re-verifies GSO skbs from untrusted sources. `NETIF_F_GSO_ROBUST`.
        #[doc(alias = "NETIF_F_GSO_ROBUST")] const GSO_ROBUST = 1 << 17;
        /// TCP segmentation with ECN. `NETIF_F_TSO_ECN`.
        #[doc(alias = "NETIF_F_TSO_ECN")] const TSO_ECN = 1 << 18;
        /// TSO may change the IPv4 ID. `NETIF_F_TSO_MANGLEID`.
        #[doc(alias = "NETIF_F_TSO_MANGLEID")] const TSO_MANGLEID = 1 << 19;
        /// TCPv6 segmentation. `NETIF_F_TSO6`.
        #[doc(alias = "NETIF_F_TSO6")] const TSO6 = 1 << 20;
        /// UDP payload segmentation. `NETIF_F_GSO_UDP_L4`.
        #[doc(alias = "NETIF_F_GSO_UDP_L4")] const GSO_UDP_L4 = 1 << 33;
        /// n-tuple receive filters. `NETIF_F_NTUPLE`.
        #[doc(alias = "NETIF_F_NTUPLE")] const NTUPLE = 1 << 38;
        /// Receive hashing (RSS hash in the skb). `NETIF_F_RXHASH`.
        #[doc(alias = "NETIF_F_RXHASH")] const RXHASH = 1 << 39;
        /// Receive checksum offload. `NETIF_F_RXCSUM`.
        #[doc(alias = "NETIF_F_RXCSUM")] const RXCSUM = 1 << 40;
        /// Uncached copy from user space. `NETIF_F_NOCACHE_COPY`.
        #[doc(alias = "NETIF_F_NOCACHE_COPY")] const NOCACHE_COPY = 1 << 41;
        /// Loopback of transmitted frames. `NETIF_F_LOOPBACK`.
        #[doc(alias = "NETIF_F_LOOPBACK")] const LOOPBACK = 1 << 42;
        /// Keep the FCS on received frames. `NETIF_F_RXFCS`.
        #[doc(alias = "NETIF_F_RXFCS")] const RXFCS = 1 << 43;
        /// Receive errored frames too. `NETIF_F_RXALL`.
        #[doc(alias = "NETIF_F_RXALL")] const RXALL = 1 << 44;
        /// Hardware GRO. `NETIF_F_GRO_HW`.
        #[doc(alias = "NETIF_F_GRO_HW")] const GRO_HW = 1 << 55;
    }
}

/// `(feature, name)` as `ethtool -k` prints it (`netdev_features_strings[]`
/// in `net/ethtool/common.c`).
pub const NETDEV_FEATURE_NAMES: &[(NetdevFeatures, &str)] = &[
    (NetdevFeatures::SG, "tx-scatter-gather"),
    (NetdevFeatures::IP_CSUM, "tx-checksum-ipv4"),
    (NetdevFeatures::HW_CSUM, "tx-checksum-ip-generic"),
    (NetdevFeatures::IPV6_CSUM, "tx-checksum-ipv6"),
    (NetdevFeatures::HIGHDMA, "highdma"),
    (NetdevFeatures::FRAGLIST, "tx-scatter-gather-fraglist"),
    (NetdevFeatures::HW_VLAN_CTAG_TX, "tx-vlan-hw-insert"),
    (NetdevFeatures::HW_VLAN_CTAG_RX, "rx-vlan-hw-parse"),
    (NetdevFeatures::HW_VLAN_CTAG_FILTER, "rx-vlan-filter"),
    (NetdevFeatures::VLAN_CHALLENGED, "vlan-challenged"),
    (NetdevFeatures::GSO, "tx-generic-segmentation"),
    (NetdevFeatures::NETNS_LOCAL, "netns-local"),
    (NetdevFeatures::GRO, "rx-gro"),
    (NetdevFeatures::LRO, "rx-lro"),
    (NetdevFeatures::TSO, "tx-tcp-segmentation"),
    (NetdevFeatures::GSO_ROBUST, "tx-gso-robust"),
    (NetdevFeatures::TSO_ECN, "tx-tcp-ecn-segmentation"),
    (NetdevFeatures::TSO_MANGLEID, "tx-tcp-mangleid-segmentation"),
    (NetdevFeatures::TSO6, "tx-tcp6-segmentation"),
    (NetdevFeatures::GSO_UDP_L4, "tx-udp-segmentation"),
    (NetdevFeatures::NTUPLE, "rx-ntuple-filter"),
    (NetdevFeatures::RXHASH, "rx-hashing"),
    (NetdevFeatures::RXCSUM, "rx-checksum"),
    (NetdevFeatures::NOCACHE_COPY, "tx-nocache-copy"),
    (NetdevFeatures::LOOPBACK, "loopback"),
    (NetdevFeatures::RXFCS, "rx-fcs"),
    (NetdevFeatures::RXALL, "rx-all"),
    (NetdevFeatures::GRO_HW, "rx-gro-hw"),
];

bitflags! {
    /// Interface flags, as `ip link` shows them.
    ///
    /// Mirrors `enum net_device_flags` (`IFF_*`) in
    /// `include/uapi/linux/if.h`, bit for bit.
    #[doc(alias = "net_device_flags")]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct NetDeviceFlags: u32 {
        /// Administratively up. `IFF_UP`.
        #[doc(alias = "IFF_UP")] const UP = 1 << 0;
        /// Has a valid broadcast address. `IFF_BROADCAST`.
        #[doc(alias = "IFF_BROADCAST")] const BROADCAST = 1 << 1;
        /// Debugging on. `IFF_DEBUG`.
        #[doc(alias = "IFF_DEBUG")] const DEBUG = 1 << 2;
        /// A loopback device. `IFF_LOOPBACK`.
        #[doc(alias = "IFF_LOOPBACK")] const LOOPBACK = 1 << 3;
        /// A point-to-point link. `IFF_POINTOPOINT`.
        #[doc(alias = "IFF_POINTOPOINT")] const POINTOPOINT = 1 << 4;
        /// Avoid trailers (obsolete). `IFF_NOTRAILERS`.
        #[doc(alias = "IFF_NOTRAILERS")] const NOTRAILERS = 1 << 5;
        /// Operationally up (carrier present). `IFF_RUNNING`.
        #[doc(alias = "IFF_RUNNING")] const RUNNING = 1 << 6;
        /// No ARP. `IFF_NOARP`.
        #[doc(alias = "IFF_NOARP")] const NOARP = 1 << 7;
        /// Receives all frames. `IFF_PROMISC`.
        #[doc(alias = "IFF_PROMISC")] const PROMISC = 1 << 8;
        /// Receives all multicast frames. `IFF_ALLMULTI`.
        #[doc(alias = "IFF_ALLMULTI")] const ALLMULTI = 1 << 9;
        /// Bonding master. `IFF_MASTER`.
        #[doc(alias = "IFF_MASTER")] const MASTER = 1 << 10;
        /// Bonding slave. `IFF_SLAVE`.
        #[doc(alias = "IFF_SLAVE")] const SLAVE = 1 << 11;
        /// Supports multicast. `IFF_MULTICAST`.
        #[doc(alias = "IFF_MULTICAST")] const MULTICAST = 1 << 12;
        /// Can select media type. `IFF_PORTSEL`.
        #[doc(alias = "IFF_PORTSEL")] const PORTSEL = 1 << 13;
        /// Auto media selection. `IFF_AUTOMEDIA`.
        #[doc(alias = "IFF_AUTOMEDIA")] const AUTOMEDIA = 1 << 14;
        /// Dynamic addresses. `IFF_DYNAMIC`.
        #[doc(alias = "IFF_DYNAMIC")] const DYNAMIC = 1 << 15;
        /// Link layer up. `IFF_LOWER_UP`.
        #[doc(alias = "IFF_LOWER_UP")] const LOWER_UP = 1 << 16;
        /// Dormant. `IFF_DORMANT`.
        #[doc(alias = "IFF_DORMANT")] const DORMANT = 1 << 17;
        /// Echoes sent packets. `IFF_ECHO`.
        #[doc(alias = "IFF_ECHO")] const ECHO = 1 << 18;
    }
}

/// What [`NetDevice::start_xmit`] did with an skb.
///
/// Mirrors `netdev_tx_t` (`NETDEV_TX_OK`, `NETDEV_TX_BUSY`).
#[doc(alias = "netdev_tx_t")]
#[derive(Debug)]
pub enum NetdevTx {
    /// The driver took the skb (queued it for the hardware or dropped and
    /// counted it). `NETDEV_TX_OK`.
    #[doc(alias = "NETDEV_TX_OK")]
    Ok,
    /// The queue was full; the skb is handed back for the qdisc to requeue
    /// (`dev_requeue_skb()`). A driver returning this should also have
    /// stopped the queue. `NETDEV_TX_BUSY`.
    #[doc(alias = "NETDEV_TX_BUSY")]
    Busy(SkBuff),
}

/// Device counters, as `ip -s link` prints them.
///
/// Mirrors `struct rtnl_link_stats64` in `include/uapi/linux/if_link.h`,
/// field for field.
#[doc(alias = "rtnl_link_stats64")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtnlLinkStats64 {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes transmitted.
    pub tx_bytes: u64,
    /// Bad packets received.
    pub rx_errors: u64,
    /// Packet transmit problems.
    pub tx_errors: u64,
    /// Received packets dropped for lack of buffers.
    pub rx_dropped: u64,
    /// Transmit packets dropped.
    pub tx_dropped: u64,
    /// Multicast packets received.
    pub multicast: u64,
    /// Collisions.
    pub collisions: u64,
    /// Received frames with a bad length.
    pub rx_length_errors: u64,
    /// Receiver ring overruns.
    pub rx_over_errors: u64,
    /// Received frames with a bad CRC.
    pub rx_crc_errors: u64,
    /// Received frames with a framing error.
    pub rx_frame_errors: u64,
    /// Receiver FIFO overruns.
    pub rx_fifo_errors: u64,
    /// Frames the receiver missed (no descriptor).
    pub rx_missed_errors: u64,
    /// Transmissions aborted.
    pub tx_aborted_errors: u64,
    /// Carrier lost while sending.
    pub tx_carrier_errors: u64,
    /// Transmit FIFO underruns.
    pub tx_fifo_errors: u64,
    /// Heartbeat errors.
    pub tx_heartbeat_errors: u64,
    /// Late collisions.
    pub tx_window_errors: u64,
    /// Compressed packets received.
    pub rx_compressed: u64,
    /// Compressed packets transmitted.
    pub tx_compressed: u64,
    /// Received packets no protocol handler took.
    pub rx_nohandler: u64,
    /// Received packets for another host, dropped.
    pub rx_otherhost_dropped: u64,
}

/// The receive filter the core wants: promiscuous and all-multicast modes
/// and the multicast addresses to accept.
///
/// Mirrors what `ndo_set_rx_mode` reads from `dev->flags` (`IFF_PROMISC`,
/// `IFF_ALLMULTI`) and `dev->mc` (`netdev_for_each_mc_addr`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxMode {
    /// Accept every frame.
    pub promisc: bool,
    /// Accept every multicast frame.
    pub allmulti: bool,
    /// Multicast addresses to accept.
    pub mc_list: Vec<DevAddr>,
}

/// An MTU outside the device's range.
///
/// Mirrors the `-EINVAL` and extack message of `dev_validate_mtu()` in
/// `net/core/dev.c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MtuError {
    /// The MTU asked for.
    pub mtu: u32,
    /// The smallest MTU the device accepts (`dev->min_mtu`).
    pub min: u32,
    /// The largest MTU the device accepts (`dev->max_mtu`).
    pub max: u32,
}

impl fmt::Display for MtuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mtu {} out of range: accepts {}..={}",
            self.mtu, self.min, self.max
        )
    }
}

impl core::error::Error for MtuError {}

impl From<MtuError> for Errno {
    fn from(_: MtuError) -> Errno {
        Errno::Inval
    }
}

/// Checks `mtu` against `min..=max`.
///
/// Mirrors `dev_validate_mtu()` in `net/core/dev.c`.
#[doc(alias = "dev_validate_mtu")]
pub fn validate_mtu(mtu: u32, min: u32, max: u32) -> Result<(), MtuError> {
    if (min..=max).contains(&mtu) {
        Ok(())
    } else {
        Err(MtuError { mtu, min, max })
    }
}

/// A refused [`NetdevTxQueues::set_real_num`]: `real_num_tx_queues`
/// accepts `1..=num_tx_queues`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealNumTxQueuesError {
    /// The count asked for.
    pub requested: u16,
    /// How many queues the device has (`dev->num_tx_queues`).
    pub num_tx_queues: u16,
}

impl fmt::Display for RealNumTxQueuesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "real_num_tx_queues {} out of range: accepts 1..={}",
            self.requested, self.num_tx_queues
        )
    }
}

impl core::error::Error for RealNumTxQueuesError {}

/// The driver has stopped the queue (`__QUEUE_STATE_DRV_XOFF`).
const QUEUE_STATE_DRV_XOFF: u32 = 1 << 0;

/// The state of one transmit queue, shared by the core (which checks it
/// before calling `start_xmit`) and the driver (which stops it when its
/// ring fills and wakes it from tx completion, possibly on another CPU).
///
/// Mirrors `struct netdev_queue` and its `state` bits in
/// `include/linux/netdevice.h`.
#[doc(alias = "netdev_queue")]
#[derive(Debug, Default)]
pub struct NetdevQueue {
    state: AtomicU32,
}

impl NetdevQueue {
    /// Stops the queue: the core will not call `start_xmit` for it until
    /// it is woken. Mirrors `netif_tx_stop_queue()`.
    #[doc(alias = "netif_tx_stop_queue")]
    pub fn stop(&self) {
        // Release pairs with the Acquire in `is_stopped`: writes the driver
        // made before stopping (ring full) are visible to the core.
        self.state.fetch_or(QUEUE_STATE_DRV_XOFF, Ordering::Release);
    }

    /// Wakes the queue; returns whether it was stopped, in which case the
    /// caller should reschedule the queue's qdisc (`__netif_schedule()`).
    /// Mirrors `netif_tx_wake_queue()`.
    #[doc(alias = "netif_tx_wake_queue")]
    pub fn wake(&self) -> bool {
        self.state
            .fetch_and(!QUEUE_STATE_DRV_XOFF, Ordering::AcqRel)
            & QUEUE_STATE_DRV_XOFF
            != 0
    }

    /// Starts the queue without asking for a reschedule.
    /// Mirrors `netif_tx_start_queue()`.
    #[doc(alias = "netif_tx_start_queue")]
    pub fn start(&self) {
        self.state
            .fetch_and(!QUEUE_STATE_DRV_XOFF, Ordering::Release);
    }

    /// Whether the queue is stopped. Mirrors `netif_tx_queue_stopped()`.
    #[doc(alias = "netif_tx_queue_stopped")]
    #[inline]
    pub fn is_stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) & QUEUE_STATE_DRV_XOFF != 0
    }
}

/// A device's enabled offloads as the transmit path reads them: one
/// atomic word the driver stores into whenever `dev->features` changes;
/// cloning shares it.
///
/// Mirrors the lockless reads of `dev->features` in `validate_xmit_skb()`
/// (`netif_skb_features()`), which Linux does without `netif_tx_lock`.
///
/// # Deviations from Linux
///
/// Linux keeps one `dev->features` word; here a driver keeps its own copy
/// behind its own lock and publishes every change in this cell too
/// ([`NetDevice::shared_features`]), so the core reads the features
/// without taking the device lock.
#[doc(alias = "netdev_features_t")]
#[derive(Clone, Debug, Default)]
pub struct SharedNetdevFeatures(Arc<AtomicU64>);

impl SharedNetdevFeatures {
    /// A cell holding `features`.
    pub fn new(features: NetdevFeatures) -> SharedNetdevFeatures {
        SharedNetdevFeatures(Arc::new(AtomicU64::new(features.bits())))
    }

    /// The features last stored.
    #[inline]
    pub fn load(&self) -> NetdevFeatures {
        NetdevFeatures::from_bits_retain(self.0.load(Ordering::Acquire))
    }

    /// Publishes `features` (what the driver set in `dev->features`).
    #[inline]
    pub fn store(&self, features: NetdevFeatures) {
        self.0.store(features.bits(), Ordering::Release);
    }
}

/// A device's transmit queues; cloning shares them, so a driver can keep a
/// handle for its completion path while the core holds the device.
///
/// Mirrors `dev->_tx` / `dev->num_tx_queues`, with
/// `dev->real_num_tx_queues`: how many of them the device uses.
#[derive(Clone, Debug)]
pub struct NetdevTxQueues {
    queues: Arc<[NetdevQueue]>,
    real_num: Arc<AtomicU16>,
}

impl NetdevTxQueues {
    /// `n` queues, all started. `n` is at least 1 (0 is taken as 1, as a
    /// device always has one queue).
    pub fn new(n: u16) -> NetdevTxQueues {
        let n = usize::from(n.max(1));
        NetdevTxQueues {
            queues: (0..n).map(|_| NetdevQueue::default()).collect(),
            real_num: Arc::new(AtomicU16::new(n as u16)),
        }
    }

    /// How many queues there are (`dev->num_tx_queues`).
    pub fn len(&self) -> u16 {
        self.queues.len() as u16
    }

    /// How many queues the device uses (`dev->real_num_tx_queues`): the
    /// core picks a queue for a packet among the first this many. All of
    /// them until the driver says otherwise.
    pub fn real_num(&self) -> u16 {
        self.real_num.load(Ordering::Acquire)
    }

    /// Sets how many queues the device uses, for a driver with fewer
    /// rings than queues (igb after `ethtool -L`). Accepts `1..=len()`;
    /// anything else is refused with [`RealNumTxQueuesError`] and changes
    /// nothing.
    ///
    /// Mirrors `netif_set_real_num_tx_queues()` in `net/core/dev.c`.
    ///
    /// # Deviations from Linux
    ///
    /// Linux also resets the qdiscs of the queues given up
    /// (`qdisc_reset_all_tx_gt()`); the queue states here know nothing of
    /// qdiscs, so packets already queued there are left to the driver,
    /// which maps them onto its rings.
    #[doc(alias = "netif_set_real_num_tx_queues")]
    pub fn set_real_num(&self, n: u16) -> Result<(), RealNumTxQueuesError> {
        if n == 0 || n > self.len() {
            return Err(RealNumTxQueuesError {
                requested: n,
                num_tx_queues: self.len(),
            });
        }
        self.real_num.store(n, Ordering::Release);
        Ok(())
    }

    /// Always false: a device has at least one queue.
    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Queue `index`, or `None` past the end.
    /// Mirrors `netdev_get_tx_queue()`.
    #[doc(alias = "netdev_get_tx_queue")]
    pub fn get(&self, index: u16) -> Option<&NetdevQueue> {
        self.queues.get(usize::from(index))
    }

    /// Stops every queue. Mirrors `netif_tx_stop_all_queues()`.
    #[doc(alias = "netif_tx_stop_all_queues")]
    pub fn stop_all(&self) {
        self.queues.iter().for_each(NetdevQueue::stop);
    }

    /// Wakes every queue. Mirrors `netif_tx_wake_all_queues()`.
    #[doc(alias = "netif_tx_wake_all_queues")]
    pub fn wake_all(&self) {
        for q in self.queues.iter() {
            q.wake();
        }
    }
}

/// A network device as the core sees it: a driver implements this.
///
/// Mirrors `struct net_device` (the attributes) and `struct
/// net_device_ops` (`ndo_open`, `ndo_stop`, `ndo_start_xmit`,
/// `ndo_get_stats64`, `ndo_set_rx_mode`, `ndo_change_mtu`) in
/// `include/linux/netdevice.h`. Object-safe and `Send`: the core keeps
/// devices as `Box<dyn NetDevice>` in its device table.
///
/// # Locking contract
///
/// Linux calls `ndo_start_xmit` with the queue's `_xmit_lock` held
/// (`HARD_TX_LOCK`) and never with the qdisc root lock held. Here every
/// method that changes the device takes `&mut self`: the core owns the
/// device behind one lock (the *device TX lock* of
/// [`lock_order`](crate::lock_order)), takes it around `start_xmit`, `open`,
/// `stop`, `set_rx_mode` and `change_mtu`, and never holds a qdisc root lock
/// at the same time. The only state shared outside that lock is the
/// per-queue stopped bit ([`NetdevQueue`], atomic), which the driver's
/// completion path may wake from another CPU without the device lock.
///
/// # Deviations from Linux
///
/// - `start_xmit` gets the queue index as an argument (Linux reads
///   `skb->queue_mapping`); the core passes `skb.queue_mapping`.
/// - `set_rx_mode` is given the filter ([`RxMode`]) instead of reading
///   `dev->flags` and `dev->mc` itself.
/// - The device address is a plain `[u8; 6]` ([`DevAddr`]).
#[doc(alias = "net_device")]
#[doc(alias = "net_device_ops")]
pub trait NetDevice: Send {
    /// The interface name (`dev->name`), e.g. `"eth0"`.
    fn name(&self) -> &str;

    /// The interface index (`dev->ifindex`), unique per host, from 1.
    fn ifindex(&self) -> u32;

    /// The link-layer address (`dev->dev_addr`).
    fn dev_addr(&self) -> DevAddr;

    /// The interface flags (`dev->flags`); a driver reports `UP` after a
    /// successful [`open`](NetDevice::open) and `RUNNING | LOWER_UP` while
    /// it has carrier.
    fn flags(&self) -> NetDeviceFlags;

    /// The MTU (`dev->mtu`).
    fn mtu(&self) -> u32;

    /// The smallest accepted MTU (`dev->min_mtu`).
    fn min_mtu(&self) -> u32 {
        ETH_MIN_MTU
    }

    /// The largest accepted MTU (`dev->max_mtu`).
    fn max_mtu(&self) -> u32 {
        ETH_DATA_LEN
    }

    /// Changes the MTU. Mirrors `dev_set_mtu()` + `ndo_change_mtu`: an MTU
    /// outside `min_mtu()..=max_mtu()` is refused with an [`MtuError`]
    /// naming the range, and changes nothing.
    fn change_mtu(&mut self, new_mtu: u32) -> Result<(), MtuError>;

    /// The transmit queue length the qdisc uses (`dev->tx_queue_len`).
    fn txqueuelen(&self) -> u32 {
        DEFAULT_TX_QUEUE_LEN
    }

    /// The enabled offloads (`dev->features`).
    fn features(&self) -> NetdevFeatures;

    /// The cell in which the driver publishes every change of
    /// [`features`](NetDevice::features), if it keeps one: the core then
    /// reads the features on transmit without the device lock. `None` (the
    /// default) makes the core ask [`features`](NetDevice::features) under
    /// the device lock. A driver that returns a cell must store into it
    /// each time its features change, before the change can be observed.
    fn shared_features(&self) -> Option<SharedNetdevFeatures> {
        None
    }

    /// The offloads that can be toggled (`dev->hw_features`).
    fn hw_features(&self) -> NetdevFeatures {
        self.features()
    }

    /// The transmit queues and their stopped state.
    fn tx_queues(&self) -> &NetdevTxQueues;

    /// Brings the device up: allocates rings, enables interrupts and NAPI.
    /// Mirrors `ndo_open` (called from `dev_open()`).
    fn open(&mut self) -> Result<(), Errno>;

    /// Brings the device down, releasing every buffer it holds.
    /// Mirrors `ndo_stop` (called from `dev_close()`).
    fn stop(&mut self) -> Result<(), Errno>;

    /// Hands one skb to the hardware on tx queue `queue`.
    ///
    /// Mirrors `ndo_start_xmit`. Takes ownership of `skb`: on
    /// [`NetdevTx::Ok`] the driver owns it (queued, or dropped and counted
    /// in `tx_dropped`); on [`NetdevTx::Busy`] it comes back unchanged. The
    /// core calls it only while the queue is not stopped, with the device
    /// lock held (see the trait's locking contract).
    fn start_xmit(&mut self, skb: SkBuff, queue: u16) -> NetdevTx;

    /// The device counters. Mirrors `ndo_get_stats64`.
    fn stats64(&self) -> RtnlLinkStats64;

    /// Programs the receive filter. Mirrors `ndo_set_rx_mode`.
    fn set_rx_mode(&mut self, mode: &RxMode);

    /// The device's ethtool operations, if it has any (`dev->ethtool_ops`).
    fn ethtool_ops(&mut self) -> Option<&mut dyn EthtoolOps> {
        None
    }
}

/// Compile-time check that the trait stays object-safe.
const _: Option<&dyn NetDevice> = None;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_num_tx_queues_range() {
        let qs = NetdevTxQueues::new(16);
        assert_eq!(qs.real_num(), 16, "all queues until the driver says");
        let shared = qs.clone();
        qs.set_real_num(4).unwrap();
        assert_eq!(shared.real_num(), 4, "clones share the count");
        let e = qs.set_real_num(17).unwrap_err();
        assert_eq!(
            e.to_string(),
            "real_num_tx_queues 17 out of range: accepts 1..=16"
        );
        assert!(qs.set_real_num(0).is_err());
        assert_eq!(qs.real_num(), 4, "a refused count changes nothing");
    }

    #[test]
    fn shared_features_clones_share() {
        let f = SharedNetdevFeatures::new(NetdevFeatures::SG | NetdevFeatures::TSO);
        let core_side = f.clone();
        assert_eq!(core_side.load(), NetdevFeatures::SG | NetdevFeatures::TSO);
        f.store(NetdevFeatures::SG);
        assert_eq!(
            core_side.load(),
            NetdevFeatures::SG,
            "clones share the word"
        );
        assert_eq!(
            SharedNetdevFeatures::default().load(),
            NetdevFeatures::empty()
        );
    }

    #[test]
    fn queue_stop_wake() {
        let qs = NetdevTxQueues::new(2);
        let q0 = qs.get(0).unwrap();
        assert!(!q0.is_stopped());
        q0.stop();
        assert!(q0.is_stopped());
        assert!(!qs.get(1).unwrap().is_stopped());
        assert!(q0.wake(), "was stopped: reschedule");
        assert!(!q0.wake(), "already running");
        qs.stop_all();
        let driver_side = qs.clone();
        std::thread::spawn(move || driver_side.wake_all())
            .join()
            .unwrap();
        assert!(!qs.get(1).unwrap().is_stopped());
        assert!(qs.get(2).is_none());
        assert_eq!(NetdevTxQueues::new(0).len(), 1);
    }

    #[test]
    fn feature_and_flag_bits_are_linuxs() {
        assert_eq!(NetdevFeatures::TSO.bits(), 1 << 16);
        assert_eq!(NetdevFeatures::RXCSUM.bits(), 1 << 40);
        assert_eq!(NetdevFeatures::RXHASH.bits(), 1 << 39);
        assert_eq!(NetDeviceFlags::PROMISC.bits(), 0x100);
        assert_eq!(NetDeviceFlags::LOWER_UP.bits(), 0x10000);
        let names: Vec<_> = NETDEV_FEATURE_NAMES.iter().map(|(_, n)| *n).collect();
        assert!(names.contains(&"rx-checksum"));
        assert_eq!(
            NETDEV_FEATURE_NAMES.len(),
            NetdevFeatures::all().iter().count()
        );
    }

    #[test]
    fn mtu_range() {
        assert_eq!(validate_mtu(1500, 68, 9000), Ok(()));
        let e = validate_mtu(9001, 68, 9000).unwrap_err();
        assert_eq!(e.to_string(), "mtu 9001 out of range: accepts 68..=9000");
        assert_eq!(Errno::from(e), Errno::Inval);
        assert!(validate_mtu(67, 68, 9000).is_err());
    }
}
