//! The igb driver: probe, open/stop, transmit, NAPI poll and interrupt
//! handlers for the simulated 82576.
//!
//! Mirrors `drivers/net/ethernet/intel/igb/igb_main.c`. The driver touches
//! the device only through register reads and writes on its mapped BAR
//! ([`IgbDevice::rd32`]/[`IgbDevice::wr32`]) and through the descriptor
//! rings, as igb does:
//!
//! - [`IgbDriver`] is the `struct pci_driver` (`igb_driver`): its `probe`
//!   ([`igb_probe`](IgbDriver)) enables the device, sets bus mastering and
//!   the DMA mask, maps BAR 0, resets the MAC, reads the address from the
//!   EEPROM (checking the NVM checksum), allocates MSI-X vectors and
//!   registers an [`IgbAdapter`] — the net device.
//! - [`IgbAdapter`] implements [`NetDevice`] (`igb_netdev_ops`) and
//!   [`EthtoolOps`](netcore::EthtoolOps) (in `igb_ethtool.rs`).
//! - Each queue pair has a q_vector: one MSI-X vector, one NAPI whose poll
//!   ([`IgbPoll`]) cleans tx then rx (`igb_poll`).
//!
//! # Deviations from Linux
//!
//! - NAPIs and q_vectors are created at `open` and deleted at `stop`
//!   (igb allocates them at probe and on channel changes); rings likewise.
//! - The driver does `eth_type_trans()`'s work itself (MAC header, pull of
//!   the Ethernet header, `protocol`, `pkt_type`): `nic-hw` may not depend
//!   on `ipv4`, which owns that function.
//! - A `CHECKSUM_PARTIAL` skb always gets `TXSM`: the core resolves partial
//!   checksums in software before `start_xmit` when the feature is off
//!   (`skb_checksum_help()` in `validate_xmit_skb()`); likewise a GSO skb
//!   reaching the driver with TSO off is dropped and counted, since the
//!   core would have segmented it.
//! - The tx ring is shared by `start_xmit` and the poll routine through an
//!   uncontended mutex (igb relies on `next_to_use`/`next_to_clean` being
//!   touched by one side each).

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use dma_ring::{
    IGB_DEFAULT_RXD, IGB_DEFAULT_TXD, RxDriver, RxStatusError, TxCmd, TxDesc, TxDriver, TxPopts,
    rx_ring, tx_ring,
};
use irq::{HardIrqContext, IrqReturn, IrqTable};
use napi::{NapiPoll, NapiPollCtx, NapiStruct, PollLists, napi_schedule, netif_napi_add};
use netcore::SpinLock;
use netcore::{
    DevAddr, ETH_DATA_LEN, ETH_MIN_MTU, Errno, EthtoolCoalesce, IpSummed, MtuError, NET_SKB_PAD,
    NetDevice, NetDeviceFlags, NetdevFeatures, NetdevTx, NetdevTxQueues, PageBuf, PagePool,
    PktType, RtnlLinkStats64, RxMode, SharedNetdevFeatures, SkBuff, validate_mtu,
};
use parking_lot::Mutex;

use crate::e1000_regs as r;
use crate::igb_hw::{
    E1000_DEV_ID_82576, E1000HwStats, IgbDevice, PCI_VENDOR_ID_INTEL, igb_hash_mc_addr,
};
use crate::pci::{PciBdf, PciDev, PciDeviceId, PciDriver};

/// The driver's name. `igb_driver_name`.
pub const IGB_DRIVER_NAME: &str = "igb";
/// Bytes of headroom the device leaves before each received frame
/// (`IGB_SKB_PAD`: `NET_SKB_PAD + NET_IP_ALIGN`).
pub const IGB_SKB_PAD: usize = NET_SKB_PAD + 2;
/// The most queue pairs (`ethtool -L combined`).
pub const IGB_MAX_RX_QUEUES: usize = r::IGB_MAX_QUEUES;
/// Vectors that are not queue vectors (the link/"other" vector).
/// `NON_Q_VECTORS`.
pub const NON_Q_VECTORS: usize = 1;
/// The most bytes one tx descriptor carries. `IGB_MAX_DATA_PER_TXD`.
pub const IGB_MAX_DATA_PER_TXD: usize = 1 << 15;
/// Budget of tx descriptors one poll cleans. `IGB_DEFAULT_TX_WORK`.
pub const IGB_DEFAULT_TX_WORK: usize = 128;
/// Descriptors a frame may need in the worst case. `DESC_NEEDED`.
pub const DESC_NEEDED: usize = 4;
/// Free descriptors after which a stopped queue is woken.
/// `TX_WAKE_THRESHOLD` (`DESC_NEEDED * 2`).
pub const TX_WAKE_THRESHOLD: usize = DESC_NEEDED * 2;
/// Default `rx-usecs`/`tx-usecs`: igb's `IGB_DEFAULT_ITR` (3, dynamic
/// conservative interrupt moderation).
pub const IGB_DEFAULT_ITR: u32 = 3;
/// The `EITR` value a dynamic-mode vector starts with (~6,000 interrupts
/// per second, 162 µs). `IGB_START_ITR`.
pub const IGB_START_ITR: u32 = 648;
/// The `EITR` value of the bulk latency range (~4,000 interrupts per
/// second, 245 µs). `IGB_4K_ITR`.
pub const IGB_4K_ITR: u32 = 980;
/// The `EITR` value of the low latency range (~20,000 interrupts per
/// second, 49 µs). `IGB_20K_ITR`.
pub const IGB_20K_ITR: u32 = 196;
/// The `EITR` value of the lowest latency range (~70,000 interrupts per
/// second, 14 µs). `IGB_70K_ITR`.
pub const IGB_70K_ITR: u32 = 56;

/// The IDs igb binds to (`igb_pci_tbl`), limited to the modelled part.
pub static IGB_PCI_TBL: [PciDeviceId; 1] = [PciDeviceId::device(
    PCI_VENDOR_ID_INTEL,
    E1000_DEV_ID_82576,
    0,
)];

/// Per-ring counters, kept across `stop`/`open`.
///
/// Mirrors `struct igb_rx_queue_stats` / `igb_tx_queue_stats` (`u64_stats`).
/// Read them; the driver writes the packet and byte counts only under
/// their ring's lock, with a plain load and store (see `add_locked`).
#[derive(Debug, Default)]
pub struct IgbRingStats {
    /// Frames passed up on this rx queue.
    pub rx_packets: AtomicU64,
    /// Bytes passed up (Ethernet header included, FCS stripped).
    pub rx_bytes: AtomicU64,
    /// Frames the device dropped for this queue (`RQDPC`).
    pub rx_drops: AtomicU64,
    /// Frames with a checksum error reported by the device.
    pub rx_csum_err: AtomicU64,
    /// Buffer allocations that failed while refilling.
    pub rx_alloc_failed: AtomicU64,
    /// Frames sent on this tx queue (TSO segments counted one by one).
    pub tx_packets: AtomicU64,
    /// Bytes sent (headers of every segment included).
    pub tx_bytes: AtomicU64,
    /// Times the queue was woken after being stopped (`restart_queue`).
    pub tx_restart_queue: AtomicU64,
}

fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// [`add`] for a counter whose every writer holds the same ring lock (the
/// packet and byte counts, `u64_stats_update_begin()`'s single writer per
/// ring in Linux): a load and a store, no locked add. Readers see whole
/// values either way.
fn add_locked(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One queue pair's rings, shared by `start_xmit` and the poll routine.
type SharedTx = Arc<SpinLock<Option<TxDriver<SkBuff>>>>;
type SharedRx = Arc<SpinLock<Option<RxDriver<PageBuf>>>>;

/// The class of traffic one interrupt's work falls in.
///
/// Mirrors `enum latency_range` in `igb.h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
enum LatencyRange {
    /// Few small packets: interrupt as often as allowed.
    #[default]
    Lowest,
    /// Mixed traffic: ~20,000 interrupts per second.
    Low,
    /// Full-sized frames or TSO: ~4,000 interrupts per second.
    Bulk,
}

/// The work one direction of a q_vector did since its last ITR update.
///
/// Mirrors `struct igb_ring_container` (`total_packets`, `total_bytes`,
/// `itr`).
#[derive(Clone, Copy, Debug, Default)]
struct IgbRingContainer {
    total_packets: u32,
    total_bytes: u32,
    itr: LatencyRange,
}

impl IgbRingContainer {
    fn add(&mut self, packets: u64, bytes: u64) {
        self.total_packets = self.total_packets.saturating_add(packets as u32);
        self.total_bytes = self
            .total_bytes
            .saturating_add(u32::try_from(bytes).unwrap_or(u32::MAX));
    }
}

/// The interrupt-rate state a q_vector's poll routine and its hard-IRQ
/// handler share: the `EITR` value to write and whether it changed.
///
/// Mirrors `q_vector->itr_val`, `q_vector->set_itr` and the adapter's
/// `rx_itr_setting`.
#[derive(Debug)]
struct IgbItr {
    /// `itr_val`: the interval in `EITR` units (µs << 2), or a mode value.
    itr_val: AtomicU32,
    /// `set_itr`: `itr_val` changed and is written at the next interrupt.
    set_itr: AtomicBool,
    /// `adapter->rx_itr_setting`: 0, 1 or 3 (no/dynamic/dynamic
    /// conservative moderation) or a fixed interval in `EITR` units.
    rx_itr_setting: AtomicU32,
}

impl IgbItr {
    /// The setting and starting value for `rx-usecs` `usecs`, as
    /// `igb_set_coalesce()` and `igb_alloc_q_vector()` derive them.
    fn new(usecs: u32) -> IgbItr {
        let itr = IgbItr {
            itr_val: AtomicU32::new(0),
            set_itr: AtomicBool::new(false),
            rx_itr_setting: AtomicU32::new(0),
        };
        itr.set_coalesce(usecs);
        itr
    }

    /// Mirrors the per-vector part of `igb_set_coalesce()`: a dynamic
    /// mode starts at `IGB_START_ITR`, a fixed interval is used as is.
    fn set_coalesce(&self, usecs: u32) {
        let setting = if usecs != 0 && usecs <= 3 {
            usecs
        } else {
            usecs << 2
        };
        let val = if setting != 0 && setting <= 3 {
            IGB_START_ITR
        } else {
            setting
        };
        self.rx_itr_setting.store(setting, Ordering::Relaxed);
        self.itr_val.store(val, Ordering::Relaxed);
        self.set_itr.store(true, Ordering::Release);
    }

    /// Writes a changed interval to the vector's `EITR`: at the start of
    /// an interrupt, so the new interval runs from this interrupt on.
    ///
    /// Mirrors `igb_write_itr()`: a zero interval is written as the
    /// smallest one (1 µs), with `E1000_EITR_CNT_IGNR` on the 82576.
    fn igb_write_itr(&self, hw: &IgbDevice, vector: usize) {
        if !self.set_itr.load(Ordering::Acquire) {
            return;
        }
        let mut val = self.itr_val.load(Ordering::Relaxed) & r::EITR_INTERVAL_MASK;
        if val == 0 {
            val = 0x4;
        }
        hw.wr32(r::eitr(vector), val | r::EITR_CNT_IGNR);
        self.set_itr.store(false, Ordering::Relaxed);
    }

    /// Stores a new interval to be written at the next interrupt.
    fn set_itr_val(&self, new_itr: u32) {
        if new_itr != self.itr_val.load(Ordering::Relaxed) {
            self.itr_val.store(new_itr, Ordering::Relaxed);
            self.set_itr.store(true, Ordering::Release);
        }
    }
}

/// Classifies the work of one interrupt: moves `rc.itr` between the
/// latency ranges by packet count and bytes, then clears the counters.
///
/// Mirrors `igb_update_itr()` (thresholds as igb's).
fn igb_update_itr(rc: &mut IgbRingContainer) {
    let (packets, bytes) = (rc.total_packets, rc.total_bytes);
    if packets == 0 {
        return;
    }
    let per = bytes / packets;
    rc.itr = match rc.itr {
        LatencyRange::Lowest if per > 8000 => LatencyRange::Bulk,
        LatencyRange::Lowest if packets < 5 && bytes > 512 => LatencyRange::Low,
        LatencyRange::Low if bytes > 10000 => {
            if per > 8000 || packets < 10 || per > 1200 {
                LatencyRange::Bulk
            } else if packets > 35 {
                LatencyRange::Lowest
            } else {
                LatencyRange::Low
            }
        }
        LatencyRange::Low if per > 2000 => LatencyRange::Bulk,
        LatencyRange::Low if packets <= 2 && bytes < 512 => LatencyRange::Lowest,
        LatencyRange::Bulk if bytes > 25000 && packets > 35 => LatencyRange::Low,
        LatencyRange::Bulk if bytes < 1500 => LatencyRange::Low,
        same => same,
    };
    rc.total_bytes = 0;
    rc.total_packets = 0;
}

/// One q_vector of an up device.
///
/// Mirrors `struct igb_q_vector`.
#[derive(Debug)]
struct IgbQVector {
    napi: Arc<NapiStruct>,
    rx: SharedRx,
    tx: SharedTx,
    irq: u32,
    itr: Arc<IgbItr>,
    /// Set after [`IgbAdapter::igb_stop_tx`] stopped a queue past
    /// `real_num_tx_queues` that maps onto this ring (shared with the
    /// ring's [`IgbPoll`]).
    others_stopped: Arc<AtomicBool>,
}

/// The NAPI poll routine of one q_vector.
///
/// Mirrors `igb_poll()` with `igb_clean_tx_irq()` and `igb_clean_rx_irq()`.
pub struct IgbPoll {
    queue: usize,
    vector: usize,
    rx: SharedRx,
    tx: SharedTx,
    hw: Arc<IgbDevice>,
    pool: PagePool,
    stats: Arc<IgbRingStats>,
    tx_queues: NetdevTxQueues,
    features: NetdevFeatures,
    ifindex: u32,
    dev_addr: DevAddr,
    /// The buffers of one refill, taken from the pool in one step (kept
    /// to reuse its allocation).
    refill: Vec<PageBuf>,
    /// `q_vector->rx`/`q_vector->tx`: work since the last ITR update.
    rx_c: IgbRingContainer,
    tx_c: IgbRingContainer,
    itr: Arc<IgbItr>,
    /// See [`IgbQVector::others_stopped`]: the tx clean looks past its own
    /// queue only when it is set.
    others_stopped: Arc<AtomicBool>,
    /// `adapter->num_q_vectors`: one vector uses `igb_set_itr()`, more
    /// use `igb_update_ring_itr()`.
    num_q_vectors: usize,
}

impl std::fmt::Debug for IgbPoll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IgbPoll")
            .field("queue", &self.queue)
            .field("vector", &self.vector)
            .finish_non_exhaustive()
    }
}

impl IgbPoll {
    /// Reclaims sent descriptors, frees their skbs, counts them, and wakes
    /// the queue if it was stopped and has room again. Returns whether the
    /// ring was cleaned completely within the budget.
    ///
    /// Mirrors `igb_clean_tx_irq()`.
    fn igb_clean_tx_irq(&mut self) -> bool {
        let mut guard = self.tx.lock();
        let Some(tx) = guard.as_mut() else {
            return true;
        };
        let (mut packets, mut bytes) = (0u64, 0u64);
        let mut frame_bytes = 0usize;
        let mut tso: Option<(usize, usize)> = None;
        let cleaned = tx.clean_tx_irq_consume(IGB_DEFAULT_TX_WORK, |desc| {
            frame_bytes += usize::from(desc.len);
            if desc.cmd.contains(TxCmd::TSE) {
                tso = Some((usize::from(desc.mss), usize::from(desc.hdr_len)));
            }
            if desc.cmd.contains(TxCmd::EOP) {
                // igb_tx_map(): bytecount = len + (gso_segs - 1) * hdr_len.
                let (segs, hdr) = match tso.take() {
                    Some((mss, hdr)) if mss > 0 && frame_bytes > hdr => {
                        ((frame_bytes - hdr).div_ceil(mss), hdr)
                    }
                    _ => (1, 0),
                };
                packets += segs as u64;
                bytes += (frame_bytes + (segs - 1) * hdr) as u64;
                frame_bytes = 0;
            }
            // The ring frees the skb where it lies (napi_consume_skb()).
        });
        if packets > 0 {
            // Under the tx ring's lock, like every write of these two.
            add_locked(&self.stats.tx_packets, packets);
            add_locked(&self.stats.tx_bytes, bytes);
            self.tx_c.add(packets, bytes);
        }
        let room = tx.unused();
        let size = tx.size();
        drop(guard);
        if room >= TX_WAKE_THRESHOLD.min(size / 2) && self.igb_wake_tx_queues() {
            add(&self.stats.tx_restart_queue, 1);
        }
        cleaned < IGB_DEFAULT_TX_WORK
    }

    /// Wakes the ring's stopped queue (`netif_wake_subqueue(netdev,
    /// tx_ring->queue_index)`), and any queue past `real_num_tx_queues`
    /// that maps onto this ring (one that still held packets when
    /// `ethtool -L` lowered the count, see [`IgbAdapter::igb_stop_tx`]);
    /// returns whether any was stopped (one restart, however many).
    ///
    /// The ring's own queue is the one Linux looks at; the others are
    /// looked at only after `igb_stop_tx` stopped one of them, so the
    /// common clean tests one queue, not all sixteen.
    fn igb_wake_tx_queues(&self) -> bool {
        let mut woke = false;
        if let Some(txq) = self.tx_queues.get(self.queue as u16)
            && txq.is_stopped()
        {
            woke |= txq.wake();
        }
        // Acquire pairs with the Release store after the stop: a queue
        // stopped before the flag was set is seen stopped here; one
        // stopped later sets the flag again for the next clean.
        if self.others_stopped.load(Ordering::Relaxed)
            && self.others_stopped.swap(false, Ordering::Acquire)
        {
            let n = usize::from(self.tx_queues.real_num()).max(1);
            for q in (self.queue + n..usize::from(self.tx_queues.len())).step_by(n) {
                if let Some(txq) = self.tx_queues.get(q as u16)
                    && txq.is_stopped()
                {
                    woke |= txq.wake();
                }
            }
        }
        woke
    }

    /// Reaps received frames, builds skbs on their buffers without copying,
    /// fills in checksum, hash, queue and protocol, passes them to GRO, and
    /// refills the ring. Returns how many frames it handled.
    ///
    /// Mirrors `igb_clean_rx_irq()` with `igb_build_skb()`,
    /// `igb_process_skb_fields()` (`igb_rx_checksum()`, `igb_rx_hash()`,
    /// `skb_record_rx_queue()`, `eth_type_trans()`) and
    /// `igb_alloc_rx_buffers()`.
    fn igb_clean_rx_irq(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
        let mut guard = self.rx.lock();
        let Some(rx) = guard.as_mut() else { return 0 };
        let (mut packets, mut bytes, mut csum_err) = (0u64, 0u64, 0u64);
        let rxcsum = self.features.contains(NetdevFeatures::RXCSUM);
        let rxhash = self.features.contains(NetdevFeatures::RXHASH);
        let (queue, ifindex, dev_addr) = (self.queue, self.ifindex, self.dev_addr);
        let done = rx.clean_rx_irq(budget, |buf, wb| {
            if wb.status_error.has_frame_error() {
                return; // igb_cleanup_headers(): dropped, buffer back to the pool
            }
            // The skb is filled in where from_page() built it (in the
            // `Result`) and moved only once, into napi_gro_receive().
            let mut built = SkBuff::from_page(buf, IGB_SKB_PAD, usize::from(wb.length));
            let Ok(skb) = built.as_mut() else {
                return;
            };
            packets += 1;
            bytes += skb.len() as u64;
            let st = wb.status_error;
            if rxcsum && !st.contains(RxStatusError::IXSM) {
                if st.intersects(RxStatusError::TCPE | RxStatusError::IPE) {
                    csum_err += 1;
                } else if st.intersects(RxStatusError::TCPCS | RxStatusError::UDPCS) {
                    skb.ip_summed = IpSummed::Unnecessary;
                }
            }
            if rxhash {
                skb.set_hash(wb.rss_hash, false);
            }
            skb.queue_mapping = queue as u16;
            skb.ifindex = ifindex;
            if eth_type_trans(skb, dev_addr).is_err() {
                return;
            }
            if let Ok(skb) = built {
                napi.napi_gro_receive(skb);
            }
        });
        // `if (cleaned_count) igb_alloc_rx_buffers(...)`: a poll that
        // reaped nothing (a tx completion) refills nothing.
        let want = rx.unused();
        let posted = if want > 0 {
            self.pool.alloc_bulk(want, &mut self.refill);
            let refill = &mut self.refill;
            rx.alloc_rx_buffers(want, || refill.pop())
        } else {
            0
        };
        if packets > 0 {
            // Under the rx ring's lock, like every write of these two.
            add_locked(&self.stats.rx_packets, packets);
            add_locked(&self.stats.rx_bytes, bytes);
        }
        drop(guard);
        if want > 0 {
            // Nothing is left over (the ring had room for `want`);
            // whatever is goes back to the pool.
            self.refill.clear();
            if want > posted {
                add(&self.stats.rx_alloc_failed, (want - posted) as u64);
            }
        }
        if packets > 0 {
            self.rx_c.add(packets, bytes);
        }
        if csum_err > 0 {
            add(&self.stats.rx_csum_err, csum_err);
        }
        done
    }
}

/// Sets the MAC header, pulls the Ethernet header and sets `protocol` and
/// `pkt_type`. Mirrors `eth_type_trans()` in `net/ethernet/eth.c` (see the
/// module's deviations).
fn eth_type_trans(skb: &mut SkBuff, dev_addr: DevAddr) -> Result<(), netcore::SkbError> {
    skb.reset_mac_header();
    let hdr = skb.pull(wire::ETH_HLEN)?;
    let Some(hdr) = hdr.first_chunk::<{ wire::ETH_HLEN }>() else {
        let len = hdr.len();
        return Err(netcore::SkbError::TooShort {
            needed: wire::ETH_HLEN,
            len,
        });
    };
    let proto = u16::from_be_bytes([hdr[12], hdr[13]]);
    // ether_addr_equal_64bits(): one 64-bit load, the source MAC's first
    // two bytes masked off.
    let dst = u64::from_le_bytes([
        hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6], hdr[7],
    ]) & 0xFFFF_FFFF_FFFF;
    let own = u64::from_le_bytes([
        dev_addr[0],
        dev_addr[1],
        dev_addr[2],
        dev_addr[3],
        dev_addr[4],
        dev_addr[5],
        0,
        0,
    ]);
    skb.pkt_type = if hdr[0] & 1 != 0 {
        if dst == 0xFFFF_FFFF_FFFF {
            PktType::Broadcast
        } else {
            PktType::Multicast
        }
    } else if dst == own {
        PktType::Host
    } else {
        PktType::OtherHost
    };
    skb.protocol = proto;
    skb.reset_network_header();
    Ok(())
}

impl IgbPoll {
    /// Picks the next interrupt interval of a lone q_vector from the
    /// latency ranges of its rx and tx work.
    ///
    /// Mirrors `igb_set_itr()`: conservative mode (setting 3) never uses
    /// the lowest range; a longer interval (fewer interrupts) goes through
    /// igb's smoothing step; the value is written at the next interrupt.
    fn igb_set_itr(&mut self) {
        let itr_val = self.itr.itr_val.load(Ordering::Relaxed);
        igb_update_itr(&mut self.tx_c);
        igb_update_itr(&mut self.rx_c);
        let mut current = self.rx_c.itr.max(self.tx_c.itr);
        if current == LatencyRange::Lowest && self.itr.rx_itr_setting.load(Ordering::Relaxed) == 3 {
            current = LatencyRange::Low;
        }
        let mut new_itr = match current {
            LatencyRange::Lowest => IGB_70K_ITR,
            LatencyRange::Low => IGB_20K_ITR,
            LatencyRange::Bulk => IGB_4K_ITR,
        };
        if new_itr > itr_val {
            let damped = u64::from(new_itr) * u64::from(itr_val)
                / (u64::from(new_itr) + u64::from(itr_val >> 2));
            new_itr = new_itr.max(u32::try_from(damped).unwrap_or(u32::MAX));
        }
        self.itr.set_itr_val(new_itr);
    }

    /// Picks the next interrupt interval of one of several q_vectors from
    /// the average frame size of its work.
    ///
    /// Mirrors `igb_update_ring_itr()`: half the average wire size (a
    /// third for mid-sized frames), at least `IGB_20K_ITR` in
    /// conservative mode.
    fn igb_update_ring_itr(&mut self) {
        let avg = |c: &IgbRingContainer| c.total_bytes.checked_div(c.total_packets).unwrap_or(0);
        let avg_wire_size = avg(&self.rx_c).max(avg(&self.tx_c));
        self.rx_c.total_bytes = 0;
        self.rx_c.total_packets = 0;
        self.tx_c.total_bytes = 0;
        self.tx_c.total_packets = 0;
        if avg_wire_size == 0 {
            return;
        }
        // CRC, preamble and inter-frame gap; jumbo frames not starved.
        let avg_wire_size = (avg_wire_size + 24).min(3000);
        let mut new_val = if avg_wire_size > 300 && avg_wire_size < 1200 {
            avg_wire_size / 3
        } else {
            avg_wire_size / 2
        };
        if new_val < IGB_20K_ITR && self.itr.rx_itr_setting.load(Ordering::Relaxed) == 3 {
            new_val = IGB_20K_ITR;
        }
        self.itr.set_itr_val(new_val);
    }

    /// Updates the interrupt interval (dynamic modes) and unmasks the
    /// vector. Mirrors `igb_ring_irq_enable()`.
    fn igb_ring_irq_enable(&mut self) {
        if self.itr.rx_itr_setting.load(Ordering::Relaxed) & 3 != 0 {
            if self.num_q_vectors == 1 {
                self.igb_set_itr();
            } else {
                self.igb_update_ring_itr();
            }
        }
        self.hw.wr32(r::EIMS, 1 << self.vector);
    }
}

impl NapiPoll for IgbPoll {
    /// Mirrors `igb_poll()`: tx clean, rx clean within `budget`, and on
    /// completion `igb_ring_irq_enable()`.
    fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
        let clean_complete = self.igb_clean_tx_irq();
        let work = self.igb_clean_rx_irq(napi, budget);
        if !clean_complete || work >= budget {
            return budget;
        }
        if napi.napi_complete_done(work) {
            self.igb_ring_irq_enable();
        }
        work.min(budget.saturating_sub(1))
    }
}

/// The net device of one 82576: configuration, rings when up, counters.
///
/// Mirrors `struct igb_adapter` together with its `struct net_device`.
pub struct IgbAdapter {
    pub(crate) name: String,
    pub(crate) ifindex: u32,
    pub(crate) dev_addr: DevAddr,
    pub(crate) bus_info: String,
    pub(crate) hw: Arc<IgbDevice>,
    irqs: Arc<IrqTable>,
    irq_lines: Vec<u32>,
    pool: PagePool,
    lists: Arc<PollLists>,
    pub(crate) num_queues: usize,
    pub(crate) rx_ring_count: usize,
    pub(crate) tx_ring_count: usize,
    pub(crate) coalesce: EthtoolCoalesce,
    pub(crate) features: NetdevFeatures,
    /// `features`, published for the core's transmit path (which reads it
    /// without this adapter's lock); stored with every change of
    /// `features` ([`IgbAdapter::set_features_locked`]).
    shared_features: SharedNetdevFeatures,
    mtu: u32,
    flags: NetDeviceFlags,
    tx_queues: NetdevTxQueues,
    q_vectors: Vec<IgbQVector>,
    pub(crate) ring_stats: Vec<Arc<IgbRingStats>>,
    pub(crate) hw_stats: Mutex<E1000HwStats>,
    tx_dropped: AtomicU64,
    pub(crate) tx_timeout_count: u64,
    rx_mode: RxMode,
    removed: bool,
}

impl std::fmt::Debug for IgbAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IgbAdapter")
            .field("name", &self.name)
            .field("ifindex", &self.ifindex)
            .field("num_queues", &self.num_queues)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

impl Drop for IgbAdapter {
    /// Mirrors `free_netdev()` after `unregister_netdev()`, which closes a
    /// device that is still up: the last handle to an adapter that was never
    /// stopped (its host dropped whole) still frees its IRQs, detaches its
    /// rings from the device and gives every posted buffer back to the pool,
    /// whoever else still holds its NAPIs or its device model.
    fn drop(&mut self) {
        self.igb_close();
    }
}

/// The features igb can toggle (`netdev->hw_features`).
pub const IGB_HW_FEATURES: NetdevFeatures = NetdevFeatures::SG
    .union(NetdevFeatures::IP_CSUM)
    .union(NetdevFeatures::TSO)
    .union(NetdevFeatures::RXCSUM)
    .union(NetdevFeatures::RXHASH)
    .union(NetdevFeatures::GRO);

impl IgbAdapter {
    /// The device is up (`netif_running()`).
    pub fn is_up(&self) -> bool {
        self.flags.contains(NetDeviceFlags::UP)
    }

    /// The NAPI of queue pair `q` while the device is up.
    pub fn napi(&self, q: usize) -> Option<&Arc<NapiStruct>> {
        self.q_vectors.get(q).map(|v| &v.napi)
    }

    /// The Linux IRQ number of queue pair `q`'s vector while up.
    pub fn queue_irq(&self, q: usize) -> Option<u32> {
        self.q_vectors.get(q).map(|v| v.irq)
    }

    /// The mapped device (for the simulation's event loop).
    pub fn device(&self) -> &Arc<IgbDevice> {
        &self.hw
    }

    /// Reaps up to `budget` received frames of rx queue `q`, drops each one
    /// before an skb is built and posts its buffer again where it lies;
    /// returns how many frames it reaped (0 when the device is down or `q`
    /// is not one of its queues).
    ///
    /// Mirrors `igb_clean_rx_irq()` running an XDP program that returns
    /// `XDP_DROP`: `igb_run_xdp()` consumes the frame, and
    /// `igb_put_rx_buffer()` → `igb_reuse_rx_page()` hands the same buffer
    /// back to the ring at `next_to_alloc`, so the refill allocates nothing.
    /// What is left is the driver's own receive work — test `DD`, read the
    /// write-back, take the buffer, refill, bump `RDT` once — the figure
    /// Linux drop benchmarks (`xdp1`, `xdp-bench drop`) report per core.
    ///
    /// Counters: `rx_queue_N_packets` and `rx_queue_N_bytes` (igb counts
    /// XDP frames), added once per call as igb's `u64_stats` per ring.
    ///
    /// # Deviations from Linux
    ///
    /// There is no BPF program: the verdict is fixed, and the caller (a
    /// busy poller, the `nic` benchmark) calls this directly instead of
    /// from the queue's NAPI poll, which always builds skbs.
    #[doc(alias = "igb_run_xdp")]
    #[doc(alias = "XDP_DROP")]
    pub fn igb_clean_rx_irq_xdp_drop(&self, q: usize, budget: usize) -> usize {
        let Some(qv) = self.q_vectors.get(q) else {
            return 0;
        };
        let mut guard = qv.rx.lock();
        let Some(rx) = guard.as_mut() else { return 0 };
        let mut bytes = 0u64;
        let done = rx.reuse_rx_irq(budget, |_, wb| bytes += u64::from(wb.length));
        if done > 0 {
            // Under the rx ring's lock (see `add_locked`).
            let st = &self.ring_stats[q];
            add_locked(&st.rx_packets, done as u64);
            add_locked(&st.rx_bytes, bytes);
        }
        drop(guard);
        done
    }

    /// Per-queue counters.
    pub fn ring_stats(&self, q: usize) -> Option<&IgbRingStats> {
        self.ring_stats.get(q).map(AsRef::as_ref)
    }

    /// Reads (and thereby clears) the hardware statistics registers into
    /// the accumulated counters. Mirrors `igb_update_stats()`.
    pub fn igb_update_stats(&self) {
        let hw = &self.hw;
        let mut s = self.hw_stats.lock();
        let mut hwl = hw.lock();
        s.crcerrs += u64::from(hwl.rd32(r::CRCERRS));
        s.algnerrc += u64::from(hwl.rd32(r::ALGNERRC));
        s.mpc += u64::from(hwl.rd32(r::MPC));
        s.colc += u64::from(hwl.rd32(r::COLC));
        s.gprc += u64::from(hwl.rd32(r::GPRC));
        s.bprc += u64::from(hwl.rd32(r::BPRC));
        s.mprc += u64::from(hwl.rd32(r::MPRC));
        s.gptc += u64::from(hwl.rd32(r::GPTC));
        let lo = u64::from(hwl.rd32(r::GORCL));
        s.gorc += lo | (u64::from(hwl.rd32(r::GORCH)) << 32);
        let lo = u64::from(hwl.rd32(r::GOTCL));
        s.gotc += lo | (u64::from(hwl.rd32(r::GOTCH)) << 32);
        s.rnbc += u64::from(hwl.rd32(r::RNBC));
        s.ruc += u64::from(hwl.rd32(r::RUC));
        s.roc += u64::from(hwl.rd32(r::ROC));
        s.tpr += u64::from(hwl.rd32(r::TPR));
        s.tpt += u64::from(hwl.rd32(r::TPT));
        s.mptc += u64::from(hwl.rd32(r::MPTC));
        s.bptc += u64::from(hwl.rd32(r::BPTC));
        s.tsctc += u64::from(hwl.rd32(r::TSCTC));
        s.tsctfc += u64::from(hwl.rd32(r::TSCTFC));
        for (q, st) in self.ring_stats.iter().enumerate() {
            add(&st.rx_drops, u64::from(hwl.rd32(r::rqdpc(q))));
        }
    }

    /// Programs the receive filter: RAR\[0\] from the device address, the
    /// multicast table from the list, promiscuous/all-multicast in RCTL.
    /// Mirrors `igb_set_rx_mode()` and `igb_write_mc_addr_list()`.
    fn igb_write_rx_mode(&self) {
        let mut hw = self.hw.lock();
        let mac = self.dev_addr;
        hw.wr32(
            r::ral(0),
            u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        );
        hw.wr32(
            r::rah(0),
            u32::from(u16::from_le_bytes([mac[4], mac[5]])) | r::RAH_AV,
        );
        let mut mta = [0u32; r::E1000_MTA_REGS];
        for addr in &self.rx_mode.mc_list {
            let (reg, bit) = igb_hash_mc_addr(addr);
            mta[reg] |= 1 << bit;
        }
        for (i, v) in mta.iter().enumerate() {
            hw.wr32(r::mta(i), *v);
        }
        let mut rctl = hw.rd32(r::RCTL) & !(r::RCTL_UPE | r::RCTL_MPE);
        if self.rx_mode.promisc {
            rctl |= r::RCTL_UPE | r::RCTL_MPE;
        } else if self.rx_mode.allmulti {
            rctl |= r::RCTL_MPE;
        }
        hw.wr32(r::RCTL, rctl);
    }

    /// Applies the coalescing settings to every queue vector: the
    /// interval setting and starting value (`igb_set_coalesce()`), written
    /// to `EITR` (`igb_write_itr()`), and the model's frame and tx limits.
    /// A dynamic `tx-usecs` (1 or 3) adds no tx delay: the vector's
    /// dynamic `EITR` moderates its tx work as on igb's paired vectors.
    pub(crate) fn igb_write_itr_all(&self) {
        let c = &self.coalesce;
        for (q, qv) in self.q_vectors.iter().enumerate() {
            let v = q + NON_Q_VECTORS;
            qv.itr.set_coalesce(c.rx_coalesce_usecs);
            qv.itr.igb_write_itr(&self.hw, v);
            let mut hw = self.hw.lock();
            hw.wr32(
                r::sim_eitr_frames(v),
                (c.rx_max_coalesced_frames & 0xFFFF) | (c.tx_max_coalesced_frames << 16),
            );
            let tx_usecs = if c.tx_coalesce_usecs <= 3 {
                0
            } else {
                c.tx_coalesce_usecs
            };
            hw.wr32(r::sim_eitr_tx(v), tx_usecs);
        }
    }

    /// Writes the RXCSUM register from the features.
    fn igb_write_rxcsum(&self) {
        let mut v = r::RXCSUM_PCSD;
        if self.features.contains(NetdevFeatures::RXCSUM) {
            v |= r::RXCSUM_IPOFL | r::RXCSUM_TUOFL;
        }
        self.hw.wr32(r::RXCSUM, v);
    }

    /// Brings the device up. Mirrors `__igb_open()`:
    /// `igb_setup_all_tx_resources()`, `igb_setup_all_rx_resources()`,
    /// `igb_configure()` (rx mode, RSS, rings, `igb_alloc_rx_buffers()`),
    /// `igb_request_irq()`, `napi_enable()`, `igb_configure_msix()`,
    /// `igb_irq_enable()`, link up, `netif_tx_start_all_queues()`.
    fn igb_open(&mut self) -> Result<(), Errno> {
        if self.removed {
            return Err(Errno::NoDev);
        }
        if self.is_up() {
            return Ok(());
        }
        let n = self.num_queues;
        // netif_set_real_num_tx_queues(): the core picks among the rings'
        // queues only, so each ring's queue is the one it stops and wakes.
        self.tx_queues
            .set_real_num(n as u16)
            .map_err(|_| Errno::Inval)?;
        let mut rings = Vec::with_capacity(n);
        for _ in 0..n {
            let (txd, txdev) = tx_ring::<SkBuff>(self.tx_ring_count).map_err(|_| Errno::Inval)?;
            let (rxd, rxdev) = rx_ring::<PageBuf>(self.rx_ring_count).map_err(|_| Errno::Inval)?;
            rings.push((txd, txdev, rxd, rxdev));
        }
        // igb_configure(): filter, RSS, checksum, rings.
        self.igb_write_rx_mode();
        self.igb_setup_mrqc();
        self.igb_write_rxcsum();
        let mut q_rings = Vec::with_capacity(n);
        {
            let mut hw = self.hw.lock();
            hw.wr32(r::RLPML, self.mtu + 18 + 4);
            for (q, (txd, txdev, rxd, rxdev)) in rings.into_iter().enumerate() {
                let v = (q + NON_Q_VECTORS) as u32;
                if hw.attach_tx_ring(q, txdev).is_err() || hw.attach_rx_ring(q, rxdev).is_err() {
                    return Err(Errno::Inval);
                }
                hw.wr32(r::txdctl(q), r::TXDCTL_QUEUE_ENABLE);
                hw.wr32(r::srrctl(q), 2); // BSIZEPKT: 2 KB buffers
                hw.wr32(r::sim_rxoff(q), IGB_SKB_PAD as u32);
                hw.wr32(r::rxdctl(q), r::RXDCTL_QUEUE_ENABLE);
                hw.wr32(r::ivar(q), (v | r::IVAR_VALID) | ((v | r::IVAR_VALID) << 8));
                q_rings.push((txd, rxd));
            }
            let rctl = (hw.rd32(r::RCTL) & (r::RCTL_UPE | r::RCTL_MPE))
                | r::RCTL_EN
                | r::RCTL_BAM
                | r::RCTL_SECRC;
            hw.wr32(r::RCTL, rctl);
            hw.wr32(r::TCTL, r::TCTL_EN);
        }
        let mut q_vectors = Vec::with_capacity(n);
        for (q, (txd, mut rxd)) in q_rings.into_iter().enumerate() {
            let want = rxd.unused();
            let posted = rxd.alloc_rx_buffers(want, || self.pool.alloc());
            add(&self.ring_stats[q].rx_alloc_failed, (want - posted) as u64);
            let rx: SharedRx = Arc::new(SpinLock::new(Some(rxd)));
            let tx: SharedTx = Arc::new(SpinLock::new(Some(txd)));
            let vector = q + NON_Q_VECTORS;
            let itr = Arc::new(IgbItr::new(self.coalesce.rx_coalesce_usecs));
            let others_stopped = Arc::new(AtomicBool::new(false));
            let poll = IgbPoll {
                queue: q,
                vector,
                rx: Arc::clone(&rx),
                tx: Arc::clone(&tx),
                hw: Arc::clone(&self.hw),
                pool: self.pool.clone(),
                stats: Arc::clone(&self.ring_stats[q]),
                tx_queues: self.tx_queues.clone(),
                features: self.features,
                ifindex: self.ifindex,
                dev_addr: self.dev_addr,
                refill: Vec::with_capacity(self.rx_ring_count),
                rx_c: IgbRingContainer::default(),
                tx_c: IgbRingContainer::default(),
                itr: Arc::clone(&itr),
                others_stopped: Arc::clone(&others_stopped),
                num_q_vectors: n,
            };
            let napi = netif_napi_add(&self.lists, self.ifindex, poll);
            if self.features.contains(NetdevFeatures::GRO) {
                napi.set_gro_pool(Some(self.pool.clone()));
            }
            q_vectors.push(IgbQVector {
                napi,
                rx,
                tx,
                irq: self.irq_lines[vector],
                itr,
                others_stopped,
            });
        }
        // igb_request_irq() → igb_request_msix().
        let other = self.irq_lines[0];
        let hw = Arc::clone(&self.hw);
        self.irqs
            .request_irq(
                other,
                move |_irq: u32, _ctx: &mut HardIrqContext<'_>| igb_msix_other(&hw),
                self.name.clone(),
            )
            .map_err(|_| Errno::Busy)?;
        for (q, qv) in q_vectors.iter().enumerate() {
            let napi = Arc::clone(&qv.napi);
            let (hw, itr) = (Arc::clone(&self.hw), Arc::clone(&qv.itr));
            let vector = q + NON_Q_VECTORS;
            let name = format!("{}-TxRx-{q}", self.name);
            if self
                .irqs
                .request_irq(
                    qv.irq,
                    move |_irq: u32, ctx: &mut HardIrqContext<'_>| {
                        igb_msix_ring(&napi, &itr, &hw, vector, ctx)
                    },
                    name,
                )
                .is_err()
            {
                let _ = self.irqs.free_irq(other);
                for prev in &q_vectors[..q] {
                    let _ = self.irqs.free_irq(prev.irq);
                }
                return Err(Errno::Busy);
            }
        }
        for qv in &q_vectors {
            let _ = qv.napi.napi_enable();
        }
        self.q_vectors = q_vectors;
        self.igb_write_itr_all();
        {
            // igb_configure_msix() + igb_irq_enable().
            let queue_mask = ((1u32 << n) - 1) << NON_Q_VECTORS;
            let mut hw = self.hw.lock();
            hw.wr32(r::GPIE, r::GPIE_MSIX_MODE | r::GPIE_PBA | r::GPIE_EIAME);
            hw.wr32(r::IVAR_MISC, r::IVAR_VALID);
            // eims_enable_mask: the queue vectors and the other vector,
            // all auto-cleared and auto-masked (igb_irq_enable()).
            hw.wr32(r::EIAC, queue_mask | 1);
            hw.wr32(r::EIAM, queue_mask | 1);
            hw.wr32(r::EIMS, queue_mask | 1);
            hw.wr32(r::IMS, r::ICR_LSC);
            let ctrl = hw.rd32(r::CTRL);
            hw.wr32(r::CTRL, ctrl | r::CTRL_SLU);
        }
        for q in 0..self.tx_queues.len() {
            if let Some(txq) = self.tx_queues.get(q) {
                txq.start();
            }
        }
        self.flags |= NetDeviceFlags::UP | NetDeviceFlags::RUNNING | NetDeviceFlags::LOWER_UP;
        Ok(())
    }

    /// Programs RSS: the key, the redirection table spreading the queues
    /// in contiguous blocks, and MRQC. Mirrors `igb_setup_mrqc()` and
    /// `igb_write_rss_indir_tbl()`.
    fn igb_setup_mrqc(&self) {
        let mut hw = self.hw.lock();
        for (i, w) in wire::RSS_DEFAULT_KEY.chunks_exact(4).enumerate() {
            hw.wr32(r::rssrk(i), u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
        let n = self.num_queues;
        for reg in 0..r::IGB_RETA_SIZE / 4 {
            let e = |j: usize| ((j * n) / r::IGB_RETA_SIZE) as u8;
            let j = reg * 4;
            hw.wr32(
                r::reta(reg),
                u32::from_le_bytes([e(j), e(j + 1), e(j + 2), e(j + 3)]),
            );
        }
        let mrqc = if n > 1 {
            r::MRQC_ENABLE_RSS_MQ | r::MRQC_RSS_FIELD_IPV4 | r::MRQC_RSS_FIELD_IPV4_TCP
        } else {
            0
        };
        hw.wr32(r::MRQC, mrqc);
    }

    /// Brings the device down and frees everything `open` took. Mirrors
    /// `__igb_close()` → `igb_down()` (receiver and queues disabled,
    /// interrupts masked, `napi_disable()`, `igb_free_irq()`),
    /// `igb_free_all_tx_resources()` and `igb_free_all_rx_resources()`
    /// (`igb_clean_tx_ring()`/`igb_clean_rx_ring()` give every buffer back).
    fn igb_close(&mut self) {
        if !self.is_up() {
            return;
        }
        self.flags
            .remove(NetDeviceFlags::UP | NetDeviceFlags::RUNNING | NetDeviceFlags::LOWER_UP);
        self.tx_queues.stop_all();
        {
            let mut hw = self.hw.lock();
            let rctl = hw.rd32(r::RCTL);
            hw.wr32(r::RCTL, rctl & !r::RCTL_EN);
            hw.wr32(r::TCTL, 0);
            hw.wr32(r::EIMC, !0);
            hw.wr32(r::EIAM, 0);
            hw.wr32(r::IMC, !0);
            for q in 0..self.num_queues {
                hw.wr32(r::rxdctl(q), 0);
                hw.wr32(r::txdctl(q), 0);
            }
            let ctrl = hw.rd32(r::CTRL);
            hw.wr32(r::CTRL, ctrl & !r::CTRL_SLU);
        }
        let _ = self.irqs.free_irq(self.irq_lines[0]);
        let q_vectors = core::mem::take(&mut self.q_vectors);
        for (q, qv) in q_vectors.into_iter().enumerate() {
            // napi_disable() waits for a scheduled poll to finish; this one
            // cannot wait, so a NAPI still listed on a CPU is taken off the
            // list instead (a listed NAPI and its lists hold each other).
            qv.napi.napi_disable();
            self.igb_unlist_napi(&qv.napi);
            let _ = self.irqs.free_irq(qv.irq);
            let (rxdev, txdev) = {
                let mut hw = self.hw.lock();
                (hw.detach_rx_ring(q), hw.detach_tx_ring(q))
            };
            drop(rxdev);
            drop(txdev);
            if let Some(rx) = qv.rx.lock().take() {
                drop(rx.clean_rx_ring());
            }
            if let Some(tx) = qv.tx.lock().take() {
                drop(tx.clean_tx_ring());
            }
            qv.napi.netif_napi_del();
        }
        self.igb_update_stats();
    }

    /// Takes `napi` off every CPU's poll list. A NAPI caught in flight by a
    /// `net_rx_action` that has already taken its list finds its rings gone
    /// and completes with no work.
    fn igb_unlist_napi(&self, napi: &Arc<NapiStruct>) {
        for cpu in 0..self.lists.nr_cpus() {
            let Ok(list) = self.lists.cpu(cpu) else {
                continue;
            };
            let mut listed = list.list_splice_init();
            let before = listed.len();
            listed.retain(|n| !Arc::ptr_eq(n, napi));
            if listed.len() != before || !listed.is_empty() {
                list.list_splice(&mut listed);
            }
        }
    }

    /// Stops the device for good: the PCI device is going away. Mirrors
    /// `igb_remove()` (`unregister_netdev()` closes it first).
    fn igb_remove(&mut self) {
        self.igb_close();
        self.removed = true;
    }

    /// Sets `dev->features` and publishes it to the core's transmit path.
    /// Mirrors the `netdev->features = features` of `igb_set_features()`.
    pub(crate) fn set_features_locked(&mut self, features: NetdevFeatures) {
        self.features = features;
        self.shared_features.store(features);
    }

    /// Reconfigures with the device down and back up if it was up (ring,
    /// channel and feature changes). Mirrors `igb_reinit_locked()`.
    pub(crate) fn igb_reinit_locked(
        &mut self,
        change: impl FnOnce(&mut Self),
    ) -> Result<(), Errno> {
        let was_up = self.is_up();
        self.igb_close();
        change(self);
        if was_up { self.igb_open() } else { Ok(()) }
    }

    /// Tx descriptors a frame of `len` bytes needs.
    fn igb_desc_count(&self, len: usize) -> usize {
        if self.features.contains(NetdevFeatures::SG) {
            len.div_ceil(IGB_MAX_DATA_PER_TXD).max(1)
        } else {
            1
        }
    }

    /// Stops the queue of ring `ring` (`netif_stop_subqueue(netdev,
    /// tx_ring->queue_index)` in `igb_maybe_stop_tx()`), and the skb's
    /// own queue `queue` when that is another one.
    ///
    /// # Deviations from Linux
    ///
    /// `queue` differs from `ring` only for a queue past
    /// `real_num_tx_queues` that still held packets when `ethtool -L`
    /// lowered the count. Linux resets those qdiscs
    /// (`qdisc_reset_all_tx_gt()`), and would keep retrying such a queue
    /// while the ring is full; here its packets are kept and the queue is
    /// stopped with the ring's, and woken with it
    /// (`IgbPoll::igb_wake_tx_queues`).
    fn igb_stop_tx(&self, ring: usize, queue: u16) {
        if let Some(txq) = self.tx_queues.get(ring as u16) {
            txq.stop();
        }
        if usize::from(queue) != ring
            && let Some(txq) = self.tx_queues.get(queue)
        {
            txq.stop();
            // Release: the stop is visible to the clean that sees the flag.
            if let Some(qv) = self.q_vectors.get(ring) {
                qv.others_stopped.store(true, Ordering::Release);
            }
        }
    }

    /// Maps one skb onto tx descriptors and rings the doorbell. Mirrors
    /// `igb_xmit_frame_ring()` with `igb_tso()`, `igb_tx_csum()`,
    /// `igb_tx_map()` and `igb_maybe_stop_tx()`, called with
    /// `netdev_xmit_more()` false.
    fn igb_xmit_frame_ring(&self, skb: SkBuff, queue: u16) -> NetdevTx {
        if !self.is_up() {
            add(&self.tx_dropped, 1);
            return NetdevTx::Ok;
        }
        let q = usize::from(queue) % self.num_queues;
        let Some(qv) = self.q_vectors.get(q) else {
            add(&self.tx_dropped, 1);
            return NetdevTx::Ok;
        };
        let mut guard = qv.tx.lock();
        let Some(tx) = guard.as_mut() else {
            add(&self.tx_dropped, 1);
            return NetdevTx::Ok;
        };
        match self.igb_tx_map(tx, skb) {
            Ok(true) => {}
            Ok(false) => return NetdevTx::Ok,
            Err(skb) => {
                self.igb_stop_tx(q, queue);
                return NetdevTx::Busy(skb);
            }
        }
        tx.flush();
        let tail = tx.tail() as u32;
        let room = tx.unused();
        drop(guard);
        self.hw.wr32(r::tdt(q), tail);
        // igb_maybe_stop_tx(tx_ring, DESC_NEEDED): stop early.
        if room < DESC_NEEDED {
            self.igb_stop_tx(q, queue);
        }
        NetdevTx::Ok
    }

    /// Hands a run of skbs to tx queue `queue`: each is mapped onto
    /// descriptors as [`start_xmit`](NetDevice::start_xmit) would, and the
    /// tail (`TDT`) is written once, after the last.
    ///
    /// Mirrors `dev_hard_start_xmit()` walking an skb list into
    /// `igb_xmit_frame_ring()` with `netdev_xmit_more()` true for every skb
    /// but the last: igb then skips the `writel()` of the tail
    /// (`if (netif_xmit_stopped(txq) || !netdev_xmit_more())`) and the
    /// device sees the whole run on one doorbell.
    ///
    /// Takes skbs from `skbs` until it runs dry or the queue stops: when
    /// the ring fills (`igb_maybe_stop_tx()` stops the queue early, with
    /// [`DESC_NEEDED`] left) the tail is written at once and the skbs not
    /// yet taken stay in the iterator. Returns [`NetdevTx::Busy`] with the
    /// skb that found no room (the queue is then stopped), otherwise
    /// [`NetdevTx::Ok`]. Frames the device cannot send (device down, TSO
    /// off, too long) are dropped and counted in `tx_dropped`, as one at a
    /// time.
    ///
    /// # Deviations from Linux
    ///
    /// igb's xmit path takes no lock of its own: the core holds the queue's
    /// `_xmit_lock` and `igb_clean_tx_irq()` runs lock-free against it.
    /// Here the ring's driver half (filling and cleaning) is one object
    /// shared with the queue's NAPI poll behind a mutex; this path takes
    /// it once per run of skbs, not once per skb.
    #[doc(alias = "netdev_xmit_more")]
    pub fn igb_xmit_frames(&self, skbs: &mut impl Iterator<Item = SkBuff>, queue: u16) -> NetdevTx {
        if !self.is_up() {
            add(&self.tx_dropped, skbs.by_ref().count() as u64);
            return NetdevTx::Ok;
        }
        let q = usize::from(queue) % self.num_queues;
        let Some(qv) = self.q_vectors.get(q) else {
            add(&self.tx_dropped, skbs.by_ref().count() as u64);
            return NetdevTx::Ok;
        };
        let mut guard = qv.tx.lock();
        let Some(tx) = guard.as_mut() else {
            drop(guard);
            add(&self.tx_dropped, skbs.by_ref().count() as u64);
            return NetdevTx::Ok;
        };
        let mut result = NetdevTx::Ok;
        let mut filled = false;
        for skb in skbs.by_ref() {
            match self.igb_tx_map(tx, skb) {
                Ok(queued) => filled |= queued,
                Err(skb) => {
                    // igb_maybe_stop_tx(tx_ring, count + 3) failed.
                    self.igb_stop_tx(q, queue);
                    result = NetdevTx::Busy(skb);
                    break;
                }
            }
            // igb_maybe_stop_tx(tx_ring, DESC_NEEDED): stop early, and
            // write the tail now (`netif_xmit_stopped()`).
            if tx.unused() < DESC_NEEDED {
                self.igb_stop_tx(q, queue);
                break;
            }
        }
        if !filled {
            return result;
        }
        tx.flush();
        let tail = tx.tail() as u32;
        drop(guard);
        self.hw.wr32(r::tdt(q), tail);
        result
    }

    /// Fills the descriptors of one skb (the tail is not written).
    /// Returns whether it was queued (`false`: dropped and counted), or the
    /// skb back when the ring lacks room for it. Mirrors the part of
    /// `igb_xmit_frame_ring()` before the tail write: the room check,
    /// `igb_tso()`/`igb_tx_csum()` and `igb_tx_map()`.
    #[inline(always)]
    fn igb_tx_map(&self, tx: &mut TxDriver<SkBuff>, skb: SkBuff) -> Result<bool, SkBuff> {
        let len = skb.len();
        let count = self.igb_desc_count(len);
        let tso = skb.is_gso();
        if (tso && !self.features.contains(NetdevFeatures::TSO))
            || (count == 1 && len > IGB_MAX_DATA_PER_TXD)
            || len < wire::ETH_HLEN
        {
            add(&self.tx_dropped, 1);
            return Ok(false);
        }
        let hdr_len = if tso {
            tso_header_len(skb.data())
        } else {
            None
        };
        if tso && hdr_len.is_none() {
            add(&self.tx_dropped, 1);
            return Ok(false);
        }
        // igb_maybe_stop_tx(tx_ring, count + 3), room for a context descriptor too.
        if tx.unused() < count + 1 {
            return Err(skb);
        }
        let popts = match skb.ip_summed {
            IpSummed::Partial { .. } => TxPopts::TXSM,
            _ => TxPopts::empty(),
        };
        let gso_size = skb.gso_size;
        let first = |desc: TxDesc<SkBuff>| match hdr_len {
            Some(h) => desc.with_tso(gso_size, h as u16),
            None => desc.with_csum(popts),
        };
        if count == 1 {
            let n = len as u16;
            if tx.fill(first(TxDesc::new(skb, n))).is_err() {
                // Unreachable after the room check.
                add(&self.tx_dropped, 1);
                return Ok(false);
            }
            return Ok(true);
        }
        // One descriptor per IGB_MAX_DATA_PER_TXD bytes (igb_tx_map() maps
        // the head and each frag; a descriptor here holds an skb instead of
        // a DMA address): the first holds the skb itself, cut to its
        // piece, each other one a clone of its piece that shares only the
        // buffers the piece lies in. All are cut before any is filled so
        // that a failure loses the frame whole. The skb's owner is released
        // here, as when the skb was dropped after cloning every piece.
        let mut rest = Vec::with_capacity(count - 1);
        for i in 1..count {
            let start = i * IGB_MAX_DATA_PER_TXD;
            let n = IGB_MAX_DATA_PER_TXD.min(len - start);
            let Ok(piece) = skb.clone_range(start, n) else {
                add(&self.tx_dropped, 1);
                return Ok(false);
            };
            rest.push(piece);
        }
        let mut skb = skb;
        skb.orphan();
        if skb.trim(IGB_MAX_DATA_PER_TXD.min(len)).is_err() {
            // Unreachable: `count > 1` means the skb is longer.
            add(&self.tx_dropped, 1);
            return Ok(false);
        }
        let last = count - 1;
        for (i, piece) in core::iter::once(skb).chain(rest).enumerate() {
            let n = piece.len() as u16;
            let mut desc = TxDesc::new(piece, n);
            if i != last {
                desc.cmd.remove(TxCmd::EOP | TxCmd::RS);
            }
            if i == 0 {
                desc = first(desc);
            }
            if tx.fill(desc).is_err() {
                // Unreachable after the room check; the frame is lost whole.
                add(&self.tx_dropped, 1);
            }
        }
        Ok(true)
    }
}

/// The length of the Ethernet + IPv4 + TCP headers of a TSO frame.
fn tso_header_len(frame: &[u8]) -> Option<usize> {
    let l3 = match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
        0x0800 => 14,
        0x8100 => 18,
        _ => return None,
    };
    let ihl = usize::from(frame.get(l3)? & 0x0F) * 4;
    let doff = usize::from(frame.get(l3 + ihl + 12)? >> 4) * 4;
    (ihl >= 20 && doff >= 20).then_some(l3 + ihl + doff)
}

/// The hard-IRQ handler of a queue vector. Mirrors `igb_msix_ring()`: the
/// device auto-masked the vector (`EIAM`); write the interval the last
/// poll chose (`igb_write_itr()`), schedule the NAPI.
fn igb_msix_ring(
    napi: &Arc<NapiStruct>,
    itr: &IgbItr,
    hw: &IgbDevice,
    vector: usize,
    ctx: &mut HardIrqContext<'_>,
) -> IrqReturn {
    itr.igb_write_itr(hw, vector);
    let _ = napi_schedule(napi, ctx);
    IrqReturn::Handled
}

/// The hard-IRQ handler of the "other" vector. Mirrors `igb_msix_other()`:
/// read (and clear) ICR, note a link change, re-enable the vector.
fn igb_msix_other(hw: &IgbDevice) -> IrqReturn {
    let mut hw = hw.lock();
    let icr = hw.rd32(r::ICR);
    hw.wr32(r::EIMS, 1);
    if icr == 0 {
        IrqReturn::None
    } else {
        IrqReturn::Handled
    }
}

impl NetDevice for IgbAdapter {
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

    fn max_mtu(&self) -> u32 {
        // One rx buffer must hold the frame (see the device's deviations).
        (self.pool.buf_size().saturating_sub(IGB_SKB_PAD + 18 + 4) as u32).min(9216)
    }

    fn change_mtu(&mut self, new_mtu: u32) -> Result<(), MtuError> {
        validate_mtu(new_mtu, ETH_MIN_MTU, self.max_mtu())?;
        self.mtu = new_mtu;
        if self.is_up() {
            self.hw.wr32(r::RLPML, new_mtu + 18 + 4);
        }
        Ok(())
    }

    fn features(&self) -> NetdevFeatures {
        self.features
    }

    fn hw_features(&self) -> NetdevFeatures {
        IGB_HW_FEATURES
    }

    fn shared_features(&self) -> Option<SharedNetdevFeatures> {
        Some(self.shared_features.clone())
    }

    fn tx_queues(&self) -> &NetdevTxQueues {
        &self.tx_queues
    }

    /// Mirrors `igb_open()`.
    fn open(&mut self) -> Result<(), Errno> {
        let r = self.igb_open();
        if r.is_err() {
            self.flags.insert(NetDeviceFlags::UP);
            self.igb_close();
        }
        r
    }

    /// Mirrors `igb_close()`.
    fn stop(&mut self) -> Result<(), Errno> {
        self.igb_close();
        Ok(())
    }

    /// Mirrors `igb_xmit_frame()`.
    fn start_xmit(&mut self, skb: SkBuff, queue: u16) -> NetdevTx {
        self.igb_xmit_frame_ring(skb, queue)
    }

    /// Mirrors `igb_get_stats64()` (after `igb_update_stats()`).
    fn stats64(&self) -> RtnlLinkStats64 {
        self.igb_update_stats();
        let s = *self.hw_stats.lock();
        let sum = |f: fn(&IgbRingStats) -> &AtomicU64| {
            self.ring_stats.iter().map(|r| get(f(r))).sum::<u64>()
        };
        let rqdpc = sum(|r| &r.rx_drops);
        RtnlLinkStats64 {
            rx_packets: sum(|r| &r.rx_packets),
            rx_bytes: sum(|r| &r.rx_bytes),
            tx_packets: sum(|r| &r.tx_packets),
            tx_bytes: sum(|r| &r.tx_bytes),
            multicast: s.mprc,
            rx_errors: s.crcerrs + s.algnerrc + s.ruc + s.roc,
            rx_length_errors: s.ruc + s.roc,
            rx_crc_errors: s.crcerrs,
            rx_frame_errors: s.algnerrc,
            rx_missed_errors: s.mpc,
            rx_fifo_errors: rqdpc,
            collisions: s.colc,
            tx_dropped: get(&self.tx_dropped),
            ..RtnlLinkStats64::default()
        }
    }

    /// Mirrors `igb_set_rx_mode()`.
    fn set_rx_mode(&mut self, mode: &RxMode) {
        self.rx_mode = mode.clone();
        self.flags.set(NetDeviceFlags::PROMISC, mode.promisc);
        self.flags.set(NetDeviceFlags::ALLMULTI, mode.allmulti);
        self.igb_write_rx_mode();
    }

    fn ethtool_ops(&mut self) -> Option<&mut dyn netcore::EthtoolOps> {
        Some(self)
    }
}

/// A registered igb net device, shared by the driver (for `remove`) and
/// whoever drives it (the host, a test). The lock is the device lock of
/// `netcore::NetDevice`'s contract: a spinlock, since every transmit takes
/// it (`ndo_start_xmit`); `open`, `stop` and ethtool hold it longer, and a
/// transmit waiting on them yields its thread.
pub type IgbNetdev = Arc<SpinLock<IgbAdapter>>;

/// The igb PCI driver.
///
/// Mirrors `static struct pci_driver igb_driver` with `igb_probe()` and
/// `igb_remove()`. It allocates rx buffers from `pool` (the stack's one
/// page pool) and binds NAPIs to `lists`.
pub struct IgbDriver {
    pool: PagePool,
    lists: Arc<PollLists>,
    next_ifindex: Mutex<u32>,
    netdevs: Mutex<Vec<(PciBdf, IgbNetdev)>>,
}

impl std::fmt::Debug for IgbDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IgbDriver")
            .field("netdevs", &self.netdevs.lock().len())
            .finish_non_exhaustive()
    }
}

impl IgbDriver {
    /// A driver whose devices get interface indexes from `first_ifindex`
    /// on and names `eth0`, `eth1`, ... in probe order.
    pub fn new(pool: PagePool, lists: Arc<PollLists>, first_ifindex: u32) -> Arc<IgbDriver> {
        Arc::new(IgbDriver {
            pool,
            lists,
            next_ifindex: Mutex::new(first_ifindex.max(1)),
            netdevs: Mutex::new(Vec::new()),
        })
    }

    /// The net device bound to `bdf`, if any.
    pub fn netdev(&self, bdf: PciBdf) -> Option<IgbNetdev> {
        self.netdevs
            .lock()
            .iter()
            .find(|(b, _)| *b == bdf)
            .map(|(_, n)| Arc::clone(n))
    }

    /// Every net device this driver registered, in probe order.
    pub fn netdevs(&self) -> Vec<IgbNetdev> {
        self.netdevs
            .lock()
            .iter()
            .map(|(_, n)| Arc::clone(n))
            .collect()
    }

    /// Reads one EEPROM word through EERD. Mirrors `igb_read_nvm_eerd()`.
    fn igb_read_nvm_eerd(hw: &IgbDevice, word: u16) -> Result<u16, Errno> {
        hw.wr32(
            r::EERD,
            (u32::from(word) << r::EERD_ADDR_SHIFT) | r::EERD_START,
        );
        let v = hw.rd32(r::EERD);
        if v & r::EERD_DONE == 0 {
            return Err(Errno::Io);
        }
        Ok((v >> r::EERD_DATA_SHIFT) as u16)
    }
}

impl PciDriver for IgbDriver {
    fn name(&self) -> &'static str {
        IGB_DRIVER_NAME
    }

    fn id_table(&self) -> &[PciDeviceId] {
        &IGB_PCI_TBL
    }

    /// Mirrors `igb_probe()`.
    fn probe(&self, pdev: &mut PciDev, _id: &PciDeviceId) -> Result<Box<dyn Any + Send>, Errno> {
        pdev.pci_enable_device()?;
        if let Err(e) = pdev.dma_set_mask_and_coherent(u64::MAX) {
            pdev.pci_disable_device();
            return Err(e);
        }
        pdev.pci_set_master();
        let Some(hw) = pdev.pci_iomap::<IgbDevice>(0) else {
            pdev.pci_disable_device();
            return Err(Errno::Io);
        };
        // igb_reset_hw(): a global reset loads RAR[0] from the NVM.
        hw.wr32(r::CTRL, r::CTRL_RST);
        // igb_validate_nvm_checksum() and igb_read_mac_addr().
        let mut sum = 0u16;
        let mut words = [0u16; 64];
        for (i, w) in words.iter_mut().enumerate() {
            *w = Self::igb_read_nvm_eerd(&hw, i as u16)?;
            sum = sum.wrapping_add(*w);
        }
        if sum != r::NVM_SUM {
            pdev.pci_clear_master();
            pdev.pci_disable_device();
            return Err(Errno::Io);
        }
        let mut mac = [0u8; 6];
        for i in 0..3 {
            mac[2 * i..2 * i + 2].copy_from_slice(&words[i].to_le_bytes());
        }
        if mac[0] & 1 != 0 || mac == [0; 6] {
            pdev.pci_clear_master();
            pdev.pci_disable_device();
            return Err(Errno::Io);
        }
        // igb_init_interrupt_scheme(): one vector per queue pair + other.
        let nvec = pdev.pci_alloc_irq_vectors(
            (NON_Q_VECTORS + 1) as u16,
            (NON_Q_VECTORS + IGB_MAX_RX_QUEUES) as u16,
        )?;
        let irq_lines: Vec<u32> = (0..nvec).filter_map(|v| pdev.pci_irq_vector(v)).collect();
        let ifindex = {
            let mut next = self.next_ifindex.lock();
            let i = *next;
            *next += 1;
            i
        };
        // register_netdev() → dev_alloc_name("eth%d"): the lowest unit
        // no bound device of this driver uses, so a re-probed NIC takes
        // back the name its removal freed.
        let unit = {
            let bound = self.netdevs.lock();
            let used: Vec<usize> = bound
                .iter()
                .filter_map(|(_, n)| n.lock().name.strip_prefix("eth")?.parse().ok())
                .collect();
            (0..=used.len())
                .find(|u| !used.contains(u))
                .unwrap_or(used.len())
        };
        let adapter = IgbAdapter {
            name: format!("eth{unit}"),
            ifindex,
            dev_addr: mac,
            bus_info: pdev.pci_name(),
            hw,
            irqs: Arc::clone(pdev.irq_table()),
            irq_lines,
            pool: self.pool.clone(),
            lists: Arc::clone(&self.lists),
            num_queues: 1,
            rx_ring_count: IGB_DEFAULT_RXD,
            tx_ring_count: IGB_DEFAULT_TXD,
            coalesce: EthtoolCoalesce {
                rx_coalesce_usecs: IGB_DEFAULT_ITR,
                tx_coalesce_usecs: IGB_DEFAULT_ITR,
                ..EthtoolCoalesce::default()
            },
            features: IGB_HW_FEATURES,
            shared_features: SharedNetdevFeatures::new(IGB_HW_FEATURES),
            mtu: ETH_DATA_LEN,
            flags: NetDeviceFlags::BROADCAST | NetDeviceFlags::MULTICAST,
            tx_queues: NetdevTxQueues::new(IGB_MAX_RX_QUEUES as u16),
            q_vectors: Vec::new(),
            ring_stats: (0..IGB_MAX_RX_QUEUES).map(|_| Arc::default()).collect(),
            hw_stats: Mutex::new(E1000HwStats::default()),
            tx_dropped: AtomicU64::new(0),
            tx_timeout_count: 0,
            rx_mode: RxMode::default(),
            removed: false,
        };
        let netdev: IgbNetdev = Arc::new(SpinLock::new(adapter));
        self.netdevs.lock().push((pdev.bdf(), Arc::clone(&netdev)));
        Ok(Box::new(netdev))
    }

    /// Mirrors `igb_remove()`: unregister (closing the device if up), free
    /// the vectors, stop DMA, disable the device.
    fn remove(&self, pdev: &mut PciDev, drvdata: Box<dyn Any + Send>) {
        if let Ok(netdev) = drvdata.downcast::<IgbNetdev>() {
            netdev.lock().igb_remove();
            self.netdevs
                .lock()
                .retain(|(_, n)| !Arc::ptr_eq(n, &netdev));
        }
        pdev.pci_free_irq_vectors();
        pdev.pci_clear_master();
        pdev.pci_disable_device();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(itr: LatencyRange, packets: u32, bytes: u32) -> LatencyRange {
        let mut c = IgbRingContainer {
            total_packets: packets,
            total_bytes: bytes,
            itr,
        };
        igb_update_itr(&mut c);
        assert_eq!((c.total_packets, c.total_bytes), (0, 0), "counters cleared");
        c.itr
    }

    #[test]
    fn igb_update_itr_moves_between_ranges_as_igb() {
        use LatencyRange::{Bulk, Low, Lowest};
        // No work: unchanged, counters untouched.
        let mut idle = IgbRingContainer {
            itr: Bulk,
            ..IgbRingContainer::default()
        };
        igb_update_itr(&mut idle);
        assert_eq!(idle.itr, Bulk);
        // Lowest: TSO-sized average goes bulk; a few mid packets go low.
        assert_eq!(rc(Lowest, 1, 9000), Bulk);
        assert_eq!(rc(Lowest, 4, 600), Low);
        assert_eq!(rc(Lowest, 1, 100), Lowest);
        assert_eq!(rc(Lowest, 5, 6000), Lowest);
        // Low: more than 10,000 bytes of full frames, few packets, or
        // large averages go bulk; many small ones go lowest.
        assert_eq!(rc(Low, 20, 20 * 1514), Bulk);
        assert_eq!(rc(Low, 9, 12_000), Bulk);
        assert_eq!(rc(Low, 40, 40 * 300), Lowest);
        assert_eq!(rc(Low, 20, 20 * 600), Low);
        assert_eq!(rc(Low, 3, 9000), Bulk, "average above 2000");
        assert_eq!(rc(Low, 2, 200), Lowest);
        assert_eq!(rc(Low, 3, 200), Low);
        // Bulk: many packets over 25,000 bytes, or under 1,500 bytes, go low.
        assert_eq!(rc(Bulk, 40, 40 * 1514), Low);
        assert_eq!(rc(Bulk, 20, 20 * 1514), Bulk);
        assert_eq!(rc(Bulk, 1, 66), Low);
        assert_eq!(rc(Bulk, 5, 5000), Bulk);
    }

    #[test]
    fn coalesce_settings_start_as_igb() {
        let itr = |usecs| {
            let i = IgbItr::new(usecs);
            (
                i.rx_itr_setting.load(Ordering::Relaxed),
                i.itr_val.load(Ordering::Relaxed),
                i.set_itr.load(Ordering::Relaxed),
            )
        };
        assert_eq!(itr(0), (0, 0, true));
        assert_eq!(itr(1), (1, IGB_START_ITR, true));
        assert_eq!(itr(3), (3, IGB_START_ITR, true));
        assert_eq!(itr(50), (200, 200, true));
        // An unchanged value is not written again.
        let i = IgbItr::new(3);
        i.set_itr.store(false, Ordering::Relaxed);
        i.set_itr_val(IGB_START_ITR);
        assert!(!i.set_itr.load(Ordering::Relaxed));
        i.set_itr_val(IGB_20K_ITR);
        assert!(i.set_itr.load(Ordering::Relaxed));
    }
}
