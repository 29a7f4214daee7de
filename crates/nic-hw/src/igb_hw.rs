//! The simulated igb-class NIC: register file, EEPROM, MAC filter, rx and tx
//! DMA engines, interrupt moderation, RSS and offloads.
//!
//! Mirrors the hardware that `drivers/net/ethernet/intel/igb` drives (an
//! 82576, `E1000_DEV_ID_82576`), as the datasheet describes it and as
//! `e1000_82575.c`/`e1000_mac.c` program it. The model is sans-IO and
//! deterministic: it is driven by [`IgbHw::poll`] and [`IgbHw::on_timer`]
//! with the current time, reports its next deadline with
//! [`IgbHw::next_event`], takes frames from its [`PhyPort`], and touches the
//! host only through the rx/tx descriptor rings (`dma-ring`) and MSI-X
//! interrupts ([`IrqTable::raise_irq`]).
//!
//! ```text
//!  PhyPort ─frame+FCS─▶ length/FCS check ─▶ MAC filter ─▶ RSS ─▶ rx ring q (DMA copy, DD)
//!                                                                   │ moderation (EITR)
//!                                                                   ▼
//!                                      EICR cause ─▶ EIMS? ─▶ raise_irq(MSI-X line)
//!  tx ring q ─TDT doorbell─▶ gather to EOP ─▶ TSO / csum insert ─▶ +FCS ─▶ PhyPort
//! ```
//!
//! # Deviations from Linux
//!
//! - Descriptors carry buffer handles, not DMA addresses: the driver hands
//!   the device its half of each ring ([`IgbHw::attach_rx_ring`] stands for
//!   writing `RDBAL`/`RDBAH`/`RDLEN`), and the ring's tail *is* the `RDT`/
//!   `TDT` register. A `TDT` write is still the doorbell that starts
//!   transmission.
//! - Checksum and TSO offloads locate the headers by parsing the frame
//!   (Ethernet, one optional 802.1Q tag, IPv4, TCP/UDP) instead of reading
//!   `MACLEN`/`IPLEN` from a context descriptor.
//! - `EITR` throttles a vector as the 82576's does (an interrupt at
//!   least the interval after the vector's previous one; a cause raised
//!   later interrupts at once). A new interval counts from the vector's
//!   last interrupt, which is what `igb_write_itr()` relies on when it
//!   writes at the start of one. Beside it the model has frame limits
//!   per direction and a tx delay (`ethtool -C` `rx-frames`, `tx-frames`,
//!   `tx-usecs`; model registers, see [`e1000_regs`](crate::e1000_regs)):
//!   with a frame limit the cause waits for that many frames or for the
//!   `EITR` interval after the first one, and a reached limit interrupts at
//!   once.
//! - Model note: the receive MAC does not recompute the CRC of a frame
//!   its PHY vouches for ([`PhyPort::receive_into_fcs_good`]: sent by a
//!   MAC with [`PhyPort::transmit_swap_fcs_good`] and not altered by the
//!   wire), as the check could only pass. Every other frame — corrupted on
//!   the wire, from a TAP or a switch port, or injected raw — is checked,
//!   so `CRCERRS` counts exactly what it would.
//! - Model note: the transmit MAC does not compute the FCS either. It
//!   leaves four bytes of room and vouches for the FCS; the CRC is
//!   computed where its bytes are read: by the wire before it corrupts a
//!   frame (the bit flips in the frame as sent, so the receiver's check
//!   fails as it would), by the wire for a reader that takes a frame's
//!   bytes as they are (`receive`, `poll`, a decorator's port), by a
//!   PHY that cannot carry the vouch (a switch or TAP port, any other
//!   [`PhyPort`]: the default `transmit_swap_fcs_good` writes it), and by
//!   the receive MAC when `RCTL.SECRC` is clear and the FCS is DMAed to
//!   the host (`ethtool -K rx-fcs on`). What every reader sees is the
//!   frame with its real FCS; only a frame that crosses a wire untouched
//!   to a MAC that strips the FCS is never summed.
//! - Model note: the receive checksum offload does not sum the TCP/UDP
//!   payload of a frame whose sending MAC vouches for its checksum
//!   ([`Vouch::L4_CSUM`]: written by the transmit offload or TSO, and
//!   found by it to verify over the datagram the IPv4 header delimits —
//!   the receiver's own check, made on the sum the sender had in hand)
//!   and that the wire delivers unchanged. The status bits come out as
//!   the sum would give them: the IPv4 header checksum, fragments,
//!   lengths and protocol are still read from the frame. A checksum the
//!   stack wrote, one from a wrong `CHECKSUM_PARTIAL` seed, and every
//!   frame from a TAP, a switch, a raw injection or a corrupting wire are
//!   summed, so `rx_csum_offload_errors`/`csum_err` count exactly.
//! - A frame larger than one rx buffer is dropped and counted in `ROC`
//!   instead of spanning several descriptors (no jumbo frames).

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use dma_ring::{RxDevice, RxStatusError, RxWriteback, TxCmd, TxDevice, TxPopts};
use irq::IrqTable;
use netcore::{Duration, Instant, PageBuf, SkBuff};
use wire::{
    FlowKeys, IpProtocol, csum_add, csum_fold, csum_partial, csum_short_wide, csum_sub,
    csum_tcpudp_magic, ip_fast_csum, skb_flow_dissect_flow_keys,
};

use crate::e1000_regs as r;
use crate::fcs::{ETH_FCS_LEN, FcsUnit, write_fcs};
use crate::pci::{PCI_COMMAND_MASTER, PciConfigHeader, PciFunction};
use crate::phy::{PhyNextEvent, PhyPort, Vouch};
use netcore::{SpinLock, SpinLockGuard};

/// Intel's PCI vendor id. `PCI_VENDOR_ID_INTEL`.
pub const PCI_VENDOR_ID_INTEL: u16 = 0x8086;
/// The 82576's device id (copper). `E1000_DEV_ID_82576`.
pub const E1000_DEV_ID_82576: u16 = 0x10C9;
/// The PCI class of an Ethernet controller (`PCI_CLASS_NETWORK_ETHERNET << 8`).
pub const PCI_CLASS_NETWORK_ETHERNET: u32 = 0x020000;

// The doorbell and timer bitmaps of `IgbHw` have one bit per queue and per
// vector in a `u32`.
const _: () = assert!(r::IGB_MAX_QUEUES <= 32 && r::IGB_MAX_MSIX_VECTORS <= 32);

/// The smallest frame on the wire, FCS included (`ETH_ZLEN + ETH_FCS_LEN`).
const MIN_FRAME_LEN: usize = 64;
/// The largest frame without jumbo frames, FCS and one VLAN tag included.
const MAX_STD_FRAME_LEN: u32 = 1522;
/// The capacity the transmit engine gives a frame buffer before it gathers
/// into it: a standard frame with its FCS needs no reallocation.
const TX_FRAME_ROOM: usize = MAX_STD_FRAME_LEN as usize;

/// The hardware statistics registers, accumulated since they were last
/// read (they clear on read).
///
/// Mirrors the counters `igb_update_stats()` reads into `struct
/// e1000_hw_stats`.
#[doc(alias = "e1000_hw_stats")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct E1000HwStats {
    /// `CRCERRS`: frames with a bad FCS.
    pub crcerrs: u64,
    /// `ALGNERRC`: alignment errors.
    pub algnerrc: u64,
    /// `MPC`: frames missed for lack of a posted descriptor.
    pub mpc: u64,
    /// `COLC`: collisions.
    pub colc: u64,
    /// `GPRC`: good frames received.
    pub gprc: u64,
    /// `BPRC`: broadcast frames received.
    pub bprc: u64,
    /// `MPRC`: multicast frames received.
    pub mprc: u64,
    /// `GPTC`: good frames transmitted.
    pub gptc: u64,
    /// `GORC`: good octets received (FCS included).
    pub gorc: u64,
    /// `GOTC`: good octets transmitted (FCS included).
    pub gotc: u64,
    /// `RNBC`: frames that found no rx buffer.
    pub rnbc: u64,
    /// `RUC`: undersized frames.
    pub ruc: u64,
    /// `ROC`: oversized frames.
    pub roc: u64,
    /// `TPR`: every frame received.
    pub tpr: u64,
    /// `TPT`: every frame transmitted.
    pub tpt: u64,
    /// `MPTC`: multicast frames transmitted.
    pub mptc: u64,
    /// `BPTC`: broadcast frames transmitted.
    pub bptc: u64,
    /// `TSCTC`: TSO contexts transmitted.
    pub tsctc: u64,
    /// `TSCTFC`: TSO contexts that failed.
    pub tsctfc: u64,
}

/// The multicast table array position of a multicast address: `(register,
/// bit)`.
///
/// Mirrors `igb_hash_mc_addr()` in `e1000_mac.c` with `mc_filter_type` 0
/// and 128 registers: the hash is bits 4..16 of the address's last two bytes.
pub fn igb_hash_mc_addr(mc_addr: &[u8; 6]) -> (usize, u32) {
    let hash = ((u16::from(mc_addr[4]) >> 4) | (u16::from(mc_addr[5]) << 4)) & 0x0FFF;
    (usize::from(hash >> 5) & 0x7F, u32::from(hash & 0x1F))
}

/// Builds the EEPROM image of a board with MAC address `mac`: the address
/// in words 0..3 (little endian) and the checksum word making words
/// 0..=0x3F sum to [`NVM_SUM`](r::NVM_SUM).
///
/// Mirrors the NVM layout `igb_read_mac_addr()` and
/// `igb_validate_nvm_checksum()` rely on.
pub fn igb_eeprom_image(mac: [u8; 6]) -> [u16; 64] {
    let mut words = [0u16; 64];
    for i in 0..3 {
        words[i] = u16::from_le_bytes([mac[2 * i], mac[2 * i + 1]]);
    }
    let sum = words[..63].iter().fold(0u16, |s, w| s.wrapping_add(*w));
    words[usize::from(r::NVM_CHECKSUM_REG)] = r::NVM_SUM.wrapping_sub(sum);
    words
}

/// A Toeplitz hash precomputed per input byte for one key: `t[i][b]` is
/// the hash contribution of byte value `b` at input position `i`.
struct ToeplitzTable {
    t: Box<[[u32; 256]; 12]>,
}

impl ToeplitzTable {
    fn new(key: &[u8; 40]) -> Self {
        let bit = |k: usize| -> u32 { u32::from(key[k / 8] >> (7 - (k % 8)) & 1) };
        let window = |start: usize| -> u32 { (0..32).fold(0u32, |w, j| (w << 1) | bit(start + j)) };
        let mut t = Box::new([[0u32; 256]; 12]);
        for (i, row) in t.iter_mut().enumerate() {
            let w: [u32; 8] = core::array::from_fn(|j| window(i * 8 + j));
            for (b, slot) in row.iter_mut().enumerate() {
                *slot = (0..8)
                    .filter(|j| b & (0x80 >> j) != 0)
                    .fold(0, |h, j| h ^ w[j]);
            }
        }
        ToeplitzTable { t }
    }

    fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(self.t.iter())
            .fold(0, |h, (&b, row)| h ^ row[usize::from(b)])
    }
}

/// One MSI-X table entry: the line a vector raises.
///
/// A real entry holds a message address and data, which keep nothing
/// alive; likewise the entry does not own the interrupt controller. An
/// owning handle would close a cycle (the table's handlers hold the
/// device, the device its table) and leak both with every rx buffer.
#[derive(Clone)]
struct MsixEntry {
    irqs: Weak<IrqTable>,
    line: u32,
}

/// Moderation state of one interrupt vector.
///
/// `EITR` is a throttle, as on the 82576: once the vector has interrupted,
/// its next interrupt waits until the interval has passed since that one
/// (a cause raised later than that interrupts at once). The model's
/// frame and tx-interval registers decide when a cause is raised (see the
/// module's deviations).
#[derive(Clone, Copy, Debug, Default)]
struct VectorState {
    /// The `EITR` interval in microseconds (0: no throttling).
    rx_usecs: u32,
    rx_frames: u32,
    tx_usecs: u32,
    tx_frames: u32,
    rx_pending: u32,
    tx_pending: u32,
    rx_deadline: Option<Instant>,
    tx_deadline: Option<Instant>,
    /// `rx_pending` at which the frame limit interrupts: `rx_frames`, or 0
    /// when it is not set (every frame raises the cause, which `EITR`
    /// throttles: the hardware). Kept in step with the limits by
    /// [`VectorState::set_limits`], so a frame costs one compare.
    rx_fire_at: u32,
    /// The same for tx: 0 when neither `tx_frames` nor `tx_usecs` is set,
    /// `u32::MAX` when only the tx timer counts.
    tx_fire_at: u32,
    /// When the vector last interrupted: the start of the throttle interval.
    last_fire: Option<Instant>,
    /// `last_fire` plus the `EITR` interval (`None` before the first
    /// interrupt or with no interval): when the throttle lets the vector
    /// interrupt again. Kept in step by [`VectorState::set_throttle`], so
    /// the timer checks add no time arithmetic.
    throttle_end: Option<Instant>,
    /// An unmasked cause is waiting for the throttle interval to end.
    held: bool,
    /// Interrupts this vector raised (for tests and `/proc/interrupts`
    /// cross-checks).
    raised: u64,
}

impl VectorState {
    /// Recomputes the frame thresholds after a limit changed.
    fn set_limits(&mut self) {
        self.rx_fire_at = self.rx_frames;
        self.tx_fire_at = match (self.tx_usecs, self.tx_frames) {
            (0, 0) => 0,
            (_, 0) => u32::MAX,
            (_, f) => f,
        };
    }

    /// Recomputes [`throttle_end`](VectorState::throttle_end) after the
    /// vector interrupted or its interval changed.
    fn set_throttle(&mut self) {
        // In nanoseconds: `Instant + Duration` is a call per interrupt.
        self.throttle_end = match self.last_fire {
            Some(last) if self.rx_usecs != 0 => Some(Instant::from_nanos(
                last.as_nanos()
                    .saturating_add(u64::from(self.rx_usecs) * 1_000),
            )),
            _ => None,
        };
    }

    fn deadline(&self) -> Option<Instant> {
        let timers = min_opt(self.rx_deadline, self.tx_deadline);
        if self.held {
            min_opt(timers, self.throttle_end)
        } else {
            timers
        }
    }
}

#[derive(Default)]
struct RxQueue {
    dev: Option<RxDevice<PageBuf>>,
    rxdctl: u32,
    srrctl: u32,
    offset: usize,
    vector: Option<usize>,
    drops: u64,
}

#[derive(Default)]
struct TxQueue {
    dev: Option<TxDevice<SkBuff>>,
    txdctl: u32,
    vector: Option<usize>,
}

/// What the device did with one frame from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// Written into a descriptor of rx queue `queue`.
    Received {
        /// The queue RSS picked.
        queue: usize,
    },
    /// Shorter than 64 bytes (`RUC`).
    Undersize,
    /// Longer than `RLPML` or than an rx buffer (`ROC`).
    Oversize,
    /// Bad FCS (`CRCERRS`).
    CrcError,
    /// Not for this station (MAC filter).
    Filtered,
    /// No descriptor posted (`MPC`, `RNBC`, `RQDPC`).
    Missed {
        /// The queue RSS picked.
        queue: usize,
    },
    /// The receiver is disabled (`RCTL.EN` clear or bus mastering off).
    Disabled,
}

/// The simulated NIC.
///
/// Mirrors the register-level behaviour of an 82576 as
/// `drivers/net/ethernet/intel/igb` sees it through `rd32()`/`wr32()`.
/// Wrap it in an [`IgbDevice`] to put it on a [`PciBus`](crate::PciBus).
pub struct IgbHw {
    ctrl: u32,
    status: u32,
    rctl: u32,
    tctl: u32,
    gpie: u32,
    eims: u32,
    eiac: u32,
    eiam: u32,
    eicr: u32,
    icr: u32,
    ims: u32,
    rxcsum: u32,
    rlpml: u32,
    mrqc: u32,
    ivar_misc: u32,
    eerd: u32,
    eeprom: [u16; 64],
    rar: [(u32, u32); r::E1000_RAR_ENTRIES_82576],
    mta: [u32; r::E1000_MTA_REGS],
    reta: [u8; r::IGB_RETA_SIZE],
    rss_key: [u8; 40],
    rss_table: Option<ToeplitzTable>,
    rxq: Vec<RxQueue>,
    txq: Vec<TxQueue>,
    vectors: Vec<VectorState>,
    /// Tx queues whose `TDT` doorbell rang since the transmit engine last
    /// ran, one bit per queue: `poll` visits only these.
    tx_doorbells: u32,
    /// Vectors with a moderation timer running, one bit per vector:
    /// `on_timer` and `next_event` look only at these, so an idle device
    /// costs the same with 1 queue or 16.
    timers_armed: u32,
    /// The earliest deadline of the vectors in `timers_armed`
    /// (`Instant::MAX` when none), kept by [`IgbHw::rearm`]: `next_event`
    /// reads it and `on_timer` returns at once before it.
    timer_due: Instant,
    msix: Vec<Option<MsixEntry>>,
    stats: E1000HwStats,
    /// The MAC's CRC logic for received frames.
    fcs: FcsUnit,
    phy: Option<Box<dyn PhyPort + Send>>,
    phy_errors: u64,
    now: Instant,
    bus_master: bool,
    /// The frame the transmit engine is gathering (reused).
    tx_frame: Vec<u8>,
    /// The TSO segment the transmit engine is cutting (reused).
    tx_seg: Vec<u8>,
    /// The frame the receive side last took from the PHY (reused).
    rx_frame: Vec<u8>,
}

impl fmt::Debug for IgbHw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IgbHw")
            .field("mac", &self.perm_addr())
            .field("ctrl", &self.ctrl)
            .field("rctl", &self.rctl)
            .field("eims", &self.eims)
            .field("eicr", &self.eicr)
            .finish_non_exhaustive()
    }
}

impl IgbHw {
    /// A powered-on, reset 82576 whose EEPROM holds `mac`, attached to `phy`
    /// (or to nothing: frames it sends are lost, as on an unplugged port).
    pub fn new(mac: [u8; 6], phy: Option<Box<dyn PhyPort + Send>>) -> IgbHw {
        let mut hw = IgbHw {
            ctrl: 0,
            status: 0,
            rctl: 0,
            tctl: 0,
            gpie: 0,
            eims: 0,
            eiac: 0,
            eiam: 0,
            eicr: 0,
            icr: 0,
            ims: 0,
            rxcsum: 0,
            rlpml: MAX_STD_FRAME_LEN,
            mrqc: 0,
            ivar_misc: 0,
            eerd: 0,
            eeprom: igb_eeprom_image(mac),
            rar: [(0, 0); r::E1000_RAR_ENTRIES_82576],
            mta: [0; r::E1000_MTA_REGS],
            reta: [0; r::IGB_RETA_SIZE],
            rss_key: [0; 40],
            rss_table: None,
            rxq: (0..r::IGB_MAX_QUEUES).map(|_| RxQueue::default()).collect(),
            txq: (0..r::IGB_MAX_QUEUES).map(|_| TxQueue::default()).collect(),
            vectors: vec![VectorState::default(); r::IGB_MAX_MSIX_VECTORS],
            tx_doorbells: 0,
            timers_armed: 0,
            timer_due: Instant::MAX,
            msix: vec![None; r::IGB_MAX_MSIX_VECTORS],
            stats: E1000HwStats::default(),
            fcs: FcsUnit::new(),
            phy,
            phy_errors: 0,
            now: Instant::ZERO,
            bus_master: false,
            tx_frame: Vec::new(),
            tx_seg: Vec::new(),
            rx_frame: Vec::new(),
        };
        hw.reset();
        hw
    }

    /// Global reset (`CTRL.RST`): registers to their defaults, RAR\[0\]
    /// loaded from the EEPROM, link down, rings detached, statistics kept
    /// (they clear on read, not on reset).
    fn reset(&mut self) {
        self.ctrl = 0;
        self.status = r::STATUS_FD | r::STATUS_SPEED_1000;
        self.rctl = 0;
        self.tctl = 0;
        self.gpie = 0;
        self.eims = 0;
        self.eiac = 0;
        self.eiam = 0;
        self.eicr = 0;
        self.icr = 0;
        self.ims = 0;
        self.rxcsum = 0;
        self.rlpml = MAX_STD_FRAME_LEN;
        self.mrqc = 0;
        self.mta = [0; r::E1000_MTA_REGS];
        self.reta = [0; r::IGB_RETA_SIZE];
        self.rar = [(0, 0); r::E1000_RAR_ENTRIES_82576];
        let mac = self.perm_addr();
        self.rar[0] = rar_from_mac(mac);
        for q in &mut self.rxq {
            *q = RxQueue::default();
        }
        for q in &mut self.txq {
            *q = TxQueue::default();
        }
        self.tx_doorbells = 0;
        self.timers_armed = 0;
        self.timer_due = Instant::MAX;
        for v in &mut self.vectors {
            let raised = v.raised;
            *v = VectorState {
                raised,
                ..VectorState::default()
            };
        }
    }

    /// The permanent MAC address, as stored in the EEPROM.
    pub fn perm_addr(&self) -> [u8; 6] {
        let mut mac = [0u8; 6];
        for i in 0..3 {
            mac[2 * i..2 * i + 2].copy_from_slice(&self.eeprom[i].to_le_bytes());
        }
        mac
    }

    /// Sets or clears bus mastering (the `PCI_COMMAND_MASTER` bit): without
    /// it the device does no DMA.
    pub fn set_bus_master(&mut self, on: bool) {
        self.bus_master = on;
    }

    /// Programs MSI-X table entry `vector` to raise `line` of `irqs` (what
    /// the PCI core writes into the table in BAR 3). The entry refers to
    /// `irqs` without keeping it alive, as a message address owns nothing.
    pub fn msix_table_write(&mut self, vector: usize, irqs: &Arc<IrqTable>, line: u32) {
        if let Some(slot) = self.msix.get_mut(vector) {
            *slot = Some(MsixEntry {
                irqs: Arc::downgrade(irqs),
                line,
            });
        }
    }

    /// Clears MSI-X table entry `vector` (`pci_free_irq_vectors()`).
    pub fn msix_table_clear(&mut self, vector: usize) {
        if let Some(slot) = self.msix.get_mut(vector) {
            *slot = None;
        }
    }

    /// Hands the device its half of rx ring `queue`: it may now DMA into
    /// the buffers the driver posts. Stands for `RDBAL`/`RDBAH`/`RDLEN`.
    /// An out-of-range queue gives the half back.
    pub fn attach_rx_ring(
        &mut self,
        queue: usize,
        ring: RxDevice<PageBuf>,
    ) -> Result<(), RxDevice<PageBuf>> {
        match self.rxq.get_mut(queue) {
            Some(q) => {
                q.dev = Some(ring);
                Ok(())
            }
            None => Err(ring),
        }
    }

    /// Takes rx ring `queue` away from the device (queue disabled, DMA
    /// stopped); the driver drops it and then reclaims its buffers.
    pub fn detach_rx_ring(&mut self, queue: usize) -> Option<RxDevice<PageBuf>> {
        self.rxq.get_mut(queue).and_then(|q| q.dev.take())
    }

    /// Hands the device its half of tx ring `queue` (`TDBAL`/`TDLEN`).
    pub fn attach_tx_ring(
        &mut self,
        queue: usize,
        ring: TxDevice<SkBuff>,
    ) -> Result<(), TxDevice<SkBuff>> {
        match self.txq.get_mut(queue) {
            Some(q) => {
                q.dev = Some(ring);
                Ok(())
            }
            None => Err(ring),
        }
    }

    /// Takes tx ring `queue` away from the device.
    pub fn detach_tx_ring(&mut self, queue: usize) -> Option<TxDevice<SkBuff>> {
        if queue < r::IGB_MAX_QUEUES {
            self.tx_doorbells &= !(1 << queue);
        }
        self.txq.get_mut(queue).and_then(|q| q.dev.take())
    }

    /// How many interrupts vector `vector` has raised since power-on.
    pub fn vector_interrupts(&self, vector: usize) -> u64 {
        self.vectors.get(vector).map_or(0, |v| v.raised)
    }

    /// Errors the PHY port returned (frames it could not take or give).
    pub fn phy_errors(&self) -> u64 {
        self.phy_errors
    }

    /// A register read. Mirrors `rd32()`; statistics registers, `EICR` and
    /// `ICR` clear on read, as on the hardware. Unknown registers read 0.
    pub fn rd32(&mut self, reg: u32) -> u32 {
        if let Some(v) = self.rd_queue_reg(reg) {
            return v;
        }
        match reg {
            r::CTRL => self.ctrl,
            r::STATUS => self.status,
            r::EERD => self.eerd,
            r::RCTL => self.rctl,
            r::TCTL => self.tctl,
            r::GPIE => self.gpie,
            r::EICS => self.eicr,
            r::EIMS => self.eims,
            r::EIAC => self.eiac,
            r::EIAM => self.eiam,
            r::EICR => core::mem::take(&mut self.eicr),
            r::ICR => core::mem::take(&mut self.icr),
            r::IMS => self.ims,
            r::RXCSUM => self.rxcsum,
            r::RLPML => self.rlpml,
            r::MRQC => self.mrqc,
            r::IVAR_MISC => self.ivar_misc,
            r::CRCERRS => take32(&mut self.stats.crcerrs),
            r::ALGNERRC => take32(&mut self.stats.algnerrc),
            r::MPC => take32(&mut self.stats.mpc),
            r::COLC => take32(&mut self.stats.colc),
            r::GPRC => take32(&mut self.stats.gprc),
            r::BPRC => take32(&mut self.stats.bprc),
            r::MPRC => take32(&mut self.stats.mprc),
            r::GPTC => take32(&mut self.stats.gptc),
            r::GORCL => self.stats.gorc as u32,
            r::GORCH => (core::mem::take(&mut self.stats.gorc) >> 32) as u32,
            r::GOTCL => self.stats.gotc as u32,
            r::GOTCH => (core::mem::take(&mut self.stats.gotc) >> 32) as u32,
            r::RNBC => take32(&mut self.stats.rnbc),
            r::RUC => take32(&mut self.stats.ruc),
            r::ROC => take32(&mut self.stats.roc),
            r::TPR => take32(&mut self.stats.tpr),
            r::TPT => take32(&mut self.stats.tpt),
            r::MPTC => take32(&mut self.stats.mptc),
            r::BPTC => take32(&mut self.stats.bptc),
            r::TSCTC => take32(&mut self.stats.tsctc),
            r::TSCTFC => take32(&mut self.stats.tsctfc),
            _ => self.rd_array_reg(reg).unwrap_or(0),
        }
    }

    fn rd_array_reg(&self, reg: u32) -> Option<u32> {
        let idx = |base: u32, n: usize, stride: u32| {
            (reg >= base && reg < base + n as u32 * stride && (reg - base).is_multiple_of(stride))
                .then(|| ((reg - base) / stride) as usize)
        };
        if let Some(i) = idx(r::MTA, r::E1000_MTA_REGS, 4) {
            return Some(self.mta[i]);
        }
        if let Some(i) = idx(r::ral(0), r::E1000_RAR_ENTRIES_82576, 8) {
            return Some(self.rar[i].0);
        }
        if let Some(i) = idx(r::rah(0), r::E1000_RAR_ENTRIES_82576, 8) {
            return Some(self.rar[i].1);
        }
        if let Some(i) = idx(r::RETA, r::IGB_RETA_SIZE / 4, 4) {
            return Some(u32::from_le_bytes(
                self.reta[i * 4..i * 4 + 4].try_into().ok()?,
            ));
        }
        if let Some(i) = idx(r::RSSRK, 10, 4) {
            return Some(u32::from_le_bytes(
                self.rss_key[i * 4..i * 4 + 4].try_into().ok()?,
            ));
        }
        if let Some(v) = idx(r::eitr(0), r::IGB_MAX_MSIX_VECTORS, 4) {
            return Some(self.vectors[v].rx_usecs << 2);
        }
        if let Some(v) = idx(r::sim_eitr_frames(0), r::IGB_MAX_MSIX_VECTORS, 8) {
            let s = &self.vectors[v];
            return Some(s.rx_frames | (s.tx_frames << 16));
        }
        if let Some(v) = idx(r::sim_eitr_tx(0), r::IGB_MAX_MSIX_VECTORS, 8) {
            return Some(self.vectors[v].tx_usecs);
        }
        if let Some(q) = idx(r::ivar(0), r::IGB_MAX_QUEUES, 4) {
            let enc = |v: Option<usize>| v.map_or(0, |v| v as u32 | r::IVAR_VALID);
            return Some(enc(self.rxq[q].vector) | (enc(self.txq[q].vector) << 8));
        }
        if let Some(q) = idx(r::sim_rxoff(0), r::IGB_MAX_QUEUES, 4) {
            return Some(self.rxq[q].offset as u32);
        }
        None
    }

    /// Decodes a per-queue register: `(rx?, queue, offset within the block)`.
    fn decode_queue_reg(reg: u32) -> Option<(bool, usize, u32)> {
        // Below the first block: the interrupt and control registers a
        // driver writes most (`EIMS` once per poll) skip the search.
        if reg < 0x02800 {
            return None;
        }
        let blocks = [
            (0x02800u32, 0x100u32, true, 0usize),
            (0x03800, 0x100, false, 0),
            (0x0C000, 0x40, true, 0),
            (0x0E000, 0x40, false, 0),
        ];
        for (base, stride, rx, _) in blocks {
            let span = stride * r::IGB_MAX_QUEUES as u32;
            if reg >= base && reg < base + span {
                let q = ((reg - base) / stride) as usize;
                let off = (reg - base) % stride;
                let low_block = stride == 0x100;
                if low_block && q >= 4 {
                    return None;
                }
                if !low_block && q < 4 && off != 0x30 {
                    return None;
                }
                return Some((rx, q, off));
            }
        }
        None
    }

    fn rd_queue_reg(&mut self, reg: u32) -> Option<u32> {
        let (rx, q, off) = Self::decode_queue_reg(reg)?;
        if rx {
            let rq = &mut self.rxq[q];
            match off {
                0x0C => Some(rq.srrctl),
                0x10 => Some(rq.dev.as_ref().map_or(0, |d| d.head() as u32)),
                0x28 => Some(rq.rxdctl),
                0x30 => Some(take32(&mut rq.drops)),
                _ => Some(0),
            }
        } else {
            let tq = &self.txq[q];
            match off {
                0x10 => Some(tq.dev.as_ref().map_or(0, |d| d.head() as u32)),
                0x28 => Some(tq.txdctl),
                _ => Some(0),
            }
        }
    }

    /// A register write. Mirrors `wr32()`. Writes with side effects:
    /// `CTRL.RST` resets, `CTRL.SLU` brings the link up (raising the
    /// link-status cause), `EIMS` unmasks (firing a latched cause), `EICS`
    /// sets causes, `TDT` rings the transmit doorbell, `EERD` reads the
    /// EEPROM, `RSSRK` reloads the hash key.
    pub fn wr32(&mut self, reg: u32, val: u32) {
        if self.wr_queue_reg(reg, val) {
            return;
        }
        match reg {
            r::CTRL => {
                if val & r::CTRL_RST != 0 {
                    self.reset();
                    return;
                }
                let was_up = self.status & r::STATUS_LU != 0;
                self.ctrl = val;
                if val & r::CTRL_SLU != 0 && !was_up {
                    self.status |= r::STATUS_LU;
                    self.raise_other(r::ICR_LSC);
                } else if val & r::CTRL_SLU == 0 && was_up {
                    self.status &= !r::STATUS_LU;
                    self.raise_other(r::ICR_LSC);
                }
            }
            r::EERD => {
                if val & r::EERD_START != 0 {
                    let addr = (val >> r::EERD_ADDR_SHIFT) as usize & 0x3FFF;
                    let data = self.eeprom.get(addr).copied().unwrap_or(0xFFFF);
                    self.eerd = (u32::from(data) << r::EERD_DATA_SHIFT)
                        | (val & 0xFFFC & !r::EERD_START)
                        | r::EERD_DONE;
                }
            }
            r::RCTL => self.rctl = val,
            r::TCTL => self.tctl = val,
            r::GPIE => self.gpie = val,
            r::EICS => self.set_causes(val),
            r::EIMS => {
                self.eims |= val;
                let fire = self.eicr & self.eims;
                for v in bits(fire) {
                    self.try_deliver(v);
                }
            }
            r::EIMC => self.eims &= !val,
            r::EIAC => self.eiac = val,
            r::EIAM => self.eiam = val,
            r::EICR => self.eicr &= !val,
            r::ICR => self.icr &= !val,
            r::IMS => {
                self.ims |= val;
                if self.icr & self.ims != 0 {
                    self.signal_other();
                }
            }
            r::IMC => self.ims &= !val,
            r::RXCSUM => self.rxcsum = val,
            r::RLPML => self.rlpml = val & 0x3FFF,
            r::MRQC => self.mrqc = val,
            r::IVAR_MISC => self.ivar_misc = val,
            _ => self.wr_array_reg(reg, val),
        }
    }

    fn wr_array_reg(&mut self, reg: u32, val: u32) {
        let idx = |base: u32, n: usize, stride: u32| {
            (reg >= base && reg < base + n as u32 * stride && (reg - base).is_multiple_of(stride))
                .then(|| ((reg - base) / stride) as usize)
        };
        if let Some(i) = idx(r::MTA, r::E1000_MTA_REGS, 4) {
            self.mta[i] = val;
        } else if let Some(i) = idx(r::ral(0), r::E1000_RAR_ENTRIES_82576, 8) {
            self.rar[i].0 = val;
        } else if let Some(i) = idx(r::rah(0), r::E1000_RAR_ENTRIES_82576, 8) {
            self.rar[i].1 = val;
        } else if let Some(i) = idx(r::RETA, r::IGB_RETA_SIZE / 4, 4) {
            self.reta[i * 4..i * 4 + 4].copy_from_slice(&val.to_le_bytes());
        } else if let Some(i) = idx(r::RSSRK, 10, 4) {
            self.rss_key[i * 4..i * 4 + 4].copy_from_slice(&val.to_le_bytes());
            self.rss_table = None;
        } else if let Some(v) = idx(r::eitr(0), r::IGB_MAX_MSIX_VECTORS, 4) {
            self.vectors[v].rx_usecs = (val & r::EITR_INTERVAL_MASK) >> 2;
            self.vectors[v].set_limits();
            self.vectors[v].set_throttle();
            self.rearm(v);
        } else if let Some(v) = idx(r::sim_eitr_frames(0), r::IGB_MAX_MSIX_VECTORS, 8) {
            self.vectors[v].rx_frames = val & 0xFFFF;
            self.vectors[v].tx_frames = val >> 16;
            self.vectors[v].set_limits();
            self.rearm(v);
        } else if let Some(v) = idx(r::sim_eitr_tx(0), r::IGB_MAX_MSIX_VECTORS, 8) {
            self.vectors[v].tx_usecs = val & 0xFFFF;
            self.vectors[v].set_limits();
            self.rearm(v);
        } else if let Some(q) = idx(r::ivar(0), r::IGB_MAX_QUEUES, 4) {
            let dec = |b: u32| (b & r::IVAR_VALID != 0).then_some((b & 0x1F) as usize);
            self.rxq[q].vector = dec(val & 0xFF);
            self.txq[q].vector = dec((val >> 8) & 0xFF);
        } else if let Some(q) = idx(r::sim_rxoff(0), r::IGB_MAX_QUEUES, 4) {
            self.rxq[q].offset = val as usize;
        }
    }

    fn wr_queue_reg(&mut self, reg: u32, val: u32) -> bool {
        let Some((rx, q, off)) = Self::decode_queue_reg(reg) else {
            return false;
        };
        if rx {
            let rq = &mut self.rxq[q];
            match off {
                0x0C => rq.srrctl = val,
                0x28 => rq.rxdctl = val,
                // RDT: the ring's tail is published by the driver half itself.
                _ => {}
            }
        } else {
            let tq = &mut self.txq[q];
            match off {
                0x18 => self.tx_doorbells |= 1 << q,
                0x28 => tq.txdctl = val,
                _ => {}
            }
        }
        true
    }

    fn set_causes(&mut self, mask: u32) {
        for v in bits(mask) {
            self.signal_vector(v);
        }
    }

    /// A non-queue cause (link status change): latched in ICR, signalled on
    /// the "other" vector when unmasked in IMS.
    fn raise_other(&mut self, cause: u32) {
        self.icr |= cause;
        if self.ims & cause != 0 {
            self.signal_other();
        }
    }

    fn signal_other(&mut self) {
        if self.ivar_misc & r::IVAR_VALID != 0 {
            let v = (self.ivar_misc & 0x1F) as usize;
            self.signal_vector(v);
        }
    }

    /// Sets the cause of vector `v` in EICR and interrupts if unmasked
    /// (when the throttle allows).
    fn signal_vector(&mut self, v: usize) {
        if v >= r::IGB_MAX_MSIX_VECTORS {
            return;
        }
        self.eicr |= 1 << v;
        if self.eims & (1 << v) != 0 {
            self.try_deliver(v);
        }
    }

    /// Interrupts on vector `v` now, or, inside its `EITR` interval, holds
    /// the interrupt until the interval ends.
    fn try_deliver(&mut self, v: usize) {
        let s = &mut self.vectors[v];
        if let Some(end) = s.throttle_end
            && self.now < end
        {
            if !s.held {
                s.held = true;
                self.rearm(v);
            }
            return;
        }
        self.deliver(v);
    }

    /// Sends vector `v`'s MSI-X message, then applies auto-mask (`EIAM`
    /// with `GPIE.EIAME`) and auto-clear (`EIAC`).
    fn deliver(&mut self, v: usize) {
        let bit = 1u32 << v;
        if let Some(Some(entry)) = self.msix.get(v)
            && let Some(irqs) = entry.irqs.upgrade()
        {
            // A line freed by the driver makes the raise spurious; the IRQ
            // core counts it, nothing else to do. A controller already gone
            // (the host is being torn down) takes no message at all.
            let _ = irqs.raise_irq(entry.line);
            self.vectors[v].raised += 1;
        }
        let s = &mut self.vectors[v];
        s.last_fire = Some(self.now);
        s.set_throttle();
        if s.held {
            s.held = false;
            self.rearm(v);
        }
        if self.gpie & r::GPIE_EIAME != 0 && self.eiam & bit != 0 {
            self.eims &= !bit;
        }
        if self.eiac & bit != 0 {
            self.eicr &= !bit;
        }
    }

    /// Keeps vector `v`'s bit in `timers_armed` exactly while it has a
    /// deadline, and [`IgbHw::timer_due`] the earliest deadline.
    fn rearm(&mut self, v: usize) {
        let bit = 1u32 << v;
        let deadline = self.vectors[v].deadline();
        if deadline.is_some() {
            self.timers_armed |= bit;
        } else {
            self.timers_armed &= !bit;
        }
        // No other vector armed (one queue pair, the usual case): its
        // deadline is the earliest, without a second look.
        if self.timers_armed & !bit == 0 {
            self.timer_due = deadline.unwrap_or(Instant::MAX);
            return;
        }
        let mut due = Instant::MAX;
        for v in bits(self.timers_armed) {
            if let Some(d) = self.vectors[v].deadline() {
                due = due.min(d);
            }
        }
        self.timer_due = due;
    }

    /// A moderation limit of vector `v` was reached: reset its counters
    /// and raise its cause. A frame limit (`bypass`) interrupts at once,
    /// as the model's `rx-frames`/`tx-frames` promise; a timer's cause
    /// goes through the throttle.
    #[cold]
    #[inline(never)]
    fn itr_fire(&mut self, v: usize, bypass: bool) {
        let s = &mut self.vectors[v];
        s.rx_pending = 0;
        s.tx_pending = 0;
        s.rx_deadline = None;
        s.tx_deadline = None;
        self.rearm(v);
        if bypass {
            self.eicr |= 1 << v;
            if self.eims & (1 << v) != 0 {
                self.deliver(v);
            }
        } else {
            self.signal_vector(v);
        }
    }

    /// One received frame steps vector `v`'s rx moderation: without a
    /// frame limit the cause is raised at once (and throttled by `EITR`);
    /// with one, at the limit or `rx-usecs` after the first frame.
    #[inline(always)]
    fn rx_event(&mut self, v: usize, now: Instant) {
        let Some(s) = self.vectors.get_mut(v) else {
            return;
        };
        if s.rx_fire_at == 0 {
            let bit = 1u32 << v;
            self.eicr |= bit;
            if self.eims & bit != 0 {
                self.try_deliver(v);
            }
            return;
        }
        s.rx_pending += 1;
        if s.rx_pending >= s.rx_fire_at {
            self.itr_fire(v, true);
        } else if s.rx_deadline.is_none() {
            s.rx_deadline = Some(now + Duration::from_micros(u64::from(s.rx_usecs)));
            self.rearm(v);
        }
    }

    fn tx_event(&mut self, v: usize, now: Instant) {
        let s = &mut self.vectors[v];
        if s.tx_fire_at == 0 {
            self.signal_vector(v);
            return;
        }
        s.tx_pending += 1;
        if s.tx_pending >= s.tx_fire_at {
            self.itr_fire(v, true);
        } else if s.tx_deadline.is_none() {
            s.tx_deadline = Some(now + Duration::from_micros(u64::from(s.tx_usecs)));
            self.rearm(v);
        }
    }

    /// When the device next needs [`poll`](IgbHw::poll) or
    /// [`on_timer`](IgbHw::on_timer): a rung doorbell (now), a moderation
    /// timer, or a frame due at the PHY.
    #[inline]
    pub fn next_event(&self) -> Option<Instant> {
        // A rung doorbell on a queue with a ring: nothing is earlier.
        if self.doorbell_due() {
            return Some(self.now);
        }
        let next = self.phy.as_ref().and_then(|p| p.next_event());
        if self.timer_due == Instant::MAX {
            return next;
        }
        min_opt(next, Some(self.timer_due))
    }

    /// Whether a rung doorbell on a queue with a ring makes the device due
    /// at once ([`next_event`](IgbHw::next_event)'s first case).
    #[inline]
    fn doorbell_due(&self) -> bool {
        self.tx_doorbells != 0 && bits(self.tx_doorbells).any(|q| self.txq[q].dev.is_some())
    }

    /// The device's own part of [`next_event`](IgbHw::next_event) (all of
    /// it but the PHY's), encoded for [`IgbDevice`]'s published word (see
    /// [`OwnDue`]).
    #[inline]
    fn own_due(&self) -> u64 {
        if self.doorbell_due() {
            let ns = self.now.as_nanos();
            return if ns < OwnDue::DOORBELL {
                OwnDue::DOORBELL | ns
            } else {
                OwnDue::STALE
            };
        }
        match self.timer_due.as_nanos() {
            u64::MAX => OwnDue::NO_TIMER,
            ns if ns < OwnDue::NO_TIMER => ns,
            _ => OwnDue::STALE,
        }
    }

    /// Fires every moderation timer due by `now` and delivers every
    /// interrupt whose throttle interval ended.
    #[inline]
    pub fn on_timer(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if now >= self.timer_due {
            self.fire_timers(now);
        }
    }

    /// [`on_timer`](IgbHw::on_timer) once a deadline is due: visits the
    /// armed vectors.
    #[inline(never)]
    fn fire_timers(&mut self, now: Instant) {
        for v in bits(self.timers_armed) {
            let s = &self.vectors[v];
            let due = |d: Option<Instant>| d.is_some_and(|d| d <= now);
            if due(s.rx_deadline) || due(s.tx_deadline) {
                self.itr_fire(v, false);
            }
            let s = &mut self.vectors[v];
            if s.held && due(s.throttle_end) {
                s.held = false;
                if self.eicr & self.eims & (1 << v) != 0 {
                    self.deliver(v);
                }
                self.rearm(v);
            }
        }
    }

    /// Runs the device up to `now`: transmits what rung doorbells handed
    /// it, receives every frame the PHY has for it, fires due timers.
    /// Returns how many frames it received from the PHY.
    pub fn poll(&mut self, now: Instant) -> usize {
        self.now = self.now.max(now);
        let bells = core::mem::take(&mut self.tx_doorbells);
        for q in bits(bells) {
            self.igb_xmit_ring(q, now);
        }
        if bells != 0
            && let Some(phy) = self.phy.as_mut()
            && phy.flush().is_err()
        {
            self.phy_errors += 1;
        }
        let mut received = 0;
        // One buffer for every frame: the PHY swaps its contents with the
        // buffers it recycles. It is taken out of the device only while a
        // frame is being received, so a poll that finds none moves nothing.
        // A port that can tell that nothing has arrived (`rx_ready`) spares
        // the attempt: most polls only end an interrupt throttle or send.
        while let Some(phy) = self.phy.as_mut() {
            if !phy.rx_ready(now) {
                break;
            }
            match phy.receive_into_vouched(now, &mut self.rx_frame) {
                Ok(Some(vouch)) => {
                    received += 1;
                    let frame = core::mem::take(&mut self.rx_frame);
                    self.receive_frame_checked(now, &frame, vouch);
                    self.rx_frame = frame;
                }
                Ok(None) => break,
                Err(_) => {
                    self.phy_errors += 1;
                    break;
                }
            }
        }
        self.on_timer(now);
        received
    }

    /// The MAC filter: whether a frame for `dst` is accepted.
    #[inline]
    fn mac_filter(&self, dst: u64) -> bool {
        // The station's own address (RAR[0]) first: the common case costs
        // one compare of the 48-bit address.
        let (lo, hi) = self.rar[0];
        if hi & r::RAH_AV != 0 && dst == u64::from(lo) | (u64::from(hi & 0xFFFF) << 32) {
            return true;
        }
        self.mac_filter_slow(dst)
    }

    /// [`mac_filter`](Self::mac_filter) past `RAR[0]`: broadcast,
    /// multicast (`MPE`, the `MTA` hash), promiscuous (`UPE`), the other
    /// exact entries.
    #[inline(never)]
    fn mac_filter_slow(&self, dst: u64) -> bool {
        let b = dst.to_le_bytes();
        let dst = [b[0], b[1], b[2], b[3], b[4], b[5]];
        let want = rar_from_mac(dst);
        if dst == [0xFF; 6] {
            return self.rctl & (r::RCTL_BAM | r::RCTL_MPE | r::RCTL_UPE) != 0;
        }
        if dst[0] & 1 != 0 {
            if self.rctl & r::RCTL_MPE != 0 {
                return true;
            }
            let (reg, bit) = igb_hash_mc_addr(&dst);
            return self.mta[reg] & (1 << bit) != 0;
        }
        if self.rctl & r::RCTL_UPE != 0 {
            return true;
        }
        self.rar
            .iter()
            .any(|&(lo, hi)| hi & r::RAH_AV != 0 && lo == want.0 && hi & 0xFFFF == want.1 & 0xFFFF)
    }

    /// The RSS hash and queue of a frame: queue 0 without RSS, so the
    /// single-queue path does not carry the dissector inline.
    #[inline(always)]
    fn rss(&mut self, frame: &[u8]) -> (u32, usize) {
        if self.mrqc & r::MRQC_ENABLE_RSS_MQ == 0 {
            return (0, 0);
        }
        self.rss_hash_queue(frame)
    }

    /// [`rss`](Self::rss) with RSS on: dissect, hash, look up the
    /// redirection table.
    #[inline(never)]
    fn rss_hash_queue(&mut self, frame: &[u8]) -> (u32, usize) {
        let Some(keys) = skb_flow_dissect_flow_keys(frame, 0) else {
            return (0, 0);
        };
        if keys.n_proto != wire::EtherType::Ipv4 {
            return (0, 0);
        }
        let key = self.rss_key;
        let table = self
            .rss_table
            .get_or_insert_with(|| ToeplitzTable::new(&key));
        let hash = rss_hash(table, &keys, self.mrqc);
        (hash, usize::from(self.reta[(hash & 0x7F) as usize]))
    }

    /// One frame (FCS included) arrives from the wire.
    ///
    /// The receive path of the MAC: size checks (`RUC`, `ROC`), the FCS
    /// check (`CRCERRS`), the MAC filter, RSS, then the DMA into the next
    /// posted descriptor of the chosen queue (`MPC` when there is none),
    /// the write-back with `DD`, `EOP`, checksum status and the RSS hash,
    /// and the rx moderation step of the queue's vector.
    pub fn receive_frame(&mut self, now: Instant, frame: &[u8]) -> RxOutcome {
        self.receive_frame_checked(now, frame, Vouch::empty())
    }

    /// [`receive_frame`](IgbHw::receive_frame) of a frame the PHY vouches
    /// for (`fcs_good`: sent by a MAC and not altered on the wire), whose
    /// CRC is then not recomputed: the check could only pass. A frame the
    /// wire corrupted, or from any port that cannot vouch (TAP, switch, a
    /// test's raw frame), is checked and counted in `CRCERRS` as before.
    #[inline]
    ///
    /// A frame vouched for with [`Vouch::L4_CSUM`] too is not summed by the
    /// checksum offload either: its TCP/UDP checksum verifies (the sending
    /// MAC wrote it and checked it). Everything else the offload looks at
    /// (the IPv4 header checksum, fragments, lengths, the protocol) is
    /// still read from the frame.
    fn receive_frame_checked(&mut self, now: Instant, frame: &[u8], vouch: Vouch) -> RxOutcome {
        let fcs_good = vouch.contains(Vouch::FCS);
        let l4_good = vouch.contains(Vouch::FCS | Vouch::L4_CSUM);
        // The interrupt throttle compares against the device's clock.
        self.now = self.now.max(now);
        if self.rctl & r::RCTL_EN == 0 || !self.bus_master {
            return RxOutcome::Disabled;
        }
        let len = frame.len();
        if len < MIN_FRAME_LEN {
            self.stats.ruc += 1;
            return RxOutcome::Undersize;
        }
        if len > self.rlpml as usize + ETH_FCS_LEN {
            self.stats.roc += 1;
            return RxOutcome::Oversize;
        }
        if !fcs_good && !self.fcs.check(frame) {
            self.stats.crcerrs += 1;
            return RxOutcome::CrcError;
        }
        // The destination as a 48-bit little-endian number, from one load.
        let Some(head) = frame.first_chunk::<8>() else {
            return RxOutcome::Undersize;
        };
        let dst = u64::from_le_bytes(*head) & 0xFFFF_FFFF_FFFF;
        if !self.mac_filter(dst) {
            return RxOutcome::Filtered;
        }
        self.stats.tpr += 1;
        let payload = &frame[..len - ETH_FCS_LEN];
        let dma_len = if self.rctl & r::RCTL_SECRC != 0 {
            payload.len()
        } else {
            len
        };
        let (hash, queue) = self.rss(payload);
        let mut status = RxStatusError::EOP;
        if self.rxcsum & (r::RXCSUM_IPOFL | r::RXCSUM_TUOFL) != 0 {
            status |= rx_checksum(payload, self.rxcsum, l4_good);
        } else {
            status |= RxStatusError::IXSM;
        }
        let report_hash = self.rxcsum & r::RXCSUM_PCSD != 0;
        let rq = &mut self.rxq[queue];
        let Some(dev) = rq
            .dev
            .as_mut()
            .filter(|_| rq.rxdctl & r::RXDCTL_QUEUE_ENABLE != 0)
        else {
            rq.drops += 1;
            self.stats.mpc += 1;
            self.stats.rnbc += 1;
            return RxOutcome::Missed { queue };
        };
        let off = rq.offset;
        let wb = RxWriteback {
            length: dma_len as u16,
            status_error: status,
            rss_hash: if report_hash { hash } else { 0 },
            vlan: 0,
        };
        // The DMA into the posted buffer, then the write-back. A vouched
        // frame's FCS bytes are only room for it: written here when the
        // FCS is not stripped (`RCTL.SECRC` clear).
        let write_crc = fcs_good && dma_len == len;
        let filled = dev.fill(
            #[inline(always)]
            |buf| {
                let dst_bytes = buf.get_mut(off..off + dma_len)?;
                dma_copy(dst_bytes, &frame[..dma_len]);
                if write_crc {
                    write_fcs(dst_bytes);
                }
                Some(wb)
            },
        );
        match filled {
            Some(true) => {}
            Some(false) => {
                // Does not fit one buffer: not written back, the descriptor
                // stays posted.
                self.stats.roc += 1;
                return RxOutcome::Oversize;
            }
            None => {
                rq.drops += 1;
                self.stats.mpc += 1;
                self.stats.rnbc += 1;
                return RxOutcome::Missed { queue };
            }
        }
        let vector = rq.vector;
        self.stats.gprc += 1;
        self.stats.gorc += len as u64;
        // Group addresses only (broadcast is one): unicast costs one test.
        if dst & 1 != 0 {
            if dst == 0xFFFF_FFFF_FFFF {
                self.stats.bprc += 1;
            } else {
                self.stats.mprc += 1;
            }
        }
        if let Some(v) = vector {
            self.rx_event(v, now);
        }
        RxOutcome::Received { queue }
    }

    /// The transmit engine of queue `q`: takes every descriptor handed over
    /// (gathering each frame up to its `EOP`), applies the offloads, adds
    /// the FCS, sends the frames to the PHY, writes `DD` back and steps the
    /// queue's tx moderation.
    ///
    /// Of the payload copies of a TCP bulk transfer (four per segment:
    /// `send()` into the write queue's skbs and `recv()` out of the
    /// receive queue, which the socket API requires, and the two DMAs of
    /// the hardware model) this is the transmit DMA: the gather from the
    /// skb's buffers into the frame the MAC sends (cut into segments by the
    /// TSO engine as it reads). The frame then moves to the wire and to the
    /// receiving device without a copy ([`PhyPort::transmit_swap_vouched`]),
    /// whose receive DMA ([`dma_copy`]) writes it into a posted buffer.
    fn igb_xmit_ring(&mut self, q: usize, now: Instant) {
        if self.tctl & r::TCTL_EN == 0 || !self.bus_master {
            return;
        }
        let tq = &mut self.txq[q];
        if tq.txdctl & r::TXDCTL_QUEUE_ENABLE == 0 {
            return;
        }
        let Some(dev) = tq.dev.as_mut() else { return };
        let vector = tq.vector;
        // The frame being gathered and the TSO segment being cut live in
        // buffers the device keeps, so transmission allocates nothing.
        let mut frame = core::mem::take(&mut self.tx_frame);
        let mut seg = core::mem::take(&mut self.tx_seg);
        frame.clear();
        let mut mac = TxMac {
            phy: &mut self.phy,
            phy_errors: &mut self.phy_errors,
            stats: &mut self.stats,
            now,
        };
        let mut packets = 0u32;
        let mut first: Option<TxPopts> = None;
        // A TSO frame is cut as it is read ([`TsoCut`]): `frame` keeps its
        // header and `seg` the segment being cut.
        let mut tso: Option<TsoCut> = None;
        while let Some(fetch) = dev.fetch() {
            let desc = &*fetch;
            if first.is_none() {
                first = Some(desc.popts);
                if desc.cmd.contains(TxCmd::TSE) {
                    tso = Some(TsoCut::new(
                        usize::from(desc.mss),
                        usize::from(desc.hdr_len),
                    ));
                } else {
                    // Room for a whole frame and its FCS: the buffer may be
                    // one the PHY recycled from a short frame, and growing
                    // it while gathering would reallocate (a third of
                    // `tcp_bulk`'s frames did). Buffers keep this size as
                    // they circulate.
                    frame.reserve(TX_FRAME_ROOM);
                }
            }
            // Gather: the buffer's bytes may continue in its fragments.
            let mut left = usize::from(desc.len).min(desc.buf.len());
            for part in core::iter::once(desc.buf.data()).chain(desc.buf.frags()) {
                let n = left.min(part.len());
                match tso.as_mut() {
                    // Every segment's checksum is computed from its own
                    // pseudo header: it verifies.
                    Some(cut) => cut.feed(&part[..n], &mut frame, &mut seg, &mut |f| {
                        mac.send(f, Vouch::L4_CSUM);
                    }),
                    None => frame.extend_from_slice(&part[..n]),
                }
                left -= n;
                if left == 0 {
                    break;
                }
            }
            let eop = desc.cmd.contains(TxCmd::EOP);
            fetch.write_back();
            if !eop {
                continue;
            }
            let popts = first.take().unwrap_or_else(TxPopts::empty);
            packets += 1;
            if let Some(cut) = tso.take() {
                if cut.finish(&frame, &mut seg, &mut |f| mac.send(f, Vouch::L4_CSUM)) {
                    mac.stats.tsctc += 1;
                } else {
                    mac.stats.tsctfc += 1;
                }
            } else {
                let vouch = if tx_checksum(&mut frame, popts) {
                    Vouch::L4_CSUM
                } else {
                    Vouch::empty()
                };
                mac.send(&mut frame, vouch);
            }
            frame.clear();
        }
        self.tx_frame = frame;
        self.tx_seg = seg;
        if let Some(v) = vector {
            for _ in 0..packets {
                self.tx_event(v, now);
            }
        }
    }
}

/// The transmit MAC: pads, appends the FCS, counts and hands frames to the
/// PHY (the fields of [`IgbHw`] it needs, borrowed next to a tx ring).
struct TxMac<'a> {
    phy: &'a mut Option<Box<dyn PhyPort + Send>>,
    phy_errors: &'a mut u64,
    stats: &'a mut E1000HwStats,
    now: Instant,
}

impl TxMac<'_> {
    /// Sends one frame (no FCS yet). The PHY takes the buffer over where
    /// it can ([`PhyPort::transmit_swap`]), so `frame` is left empty,
    /// possibly holding another buffer.
    ///
    /// The FCS is vouched for, not computed: the frame goes out with four
    /// bytes of room that the PHY fills in when a reader needs them
    /// ([`PhyPort::transmit_swap_fcs_good`]; see the module's model notes).
    /// `l4` is [`Vouch::L4_CSUM`] when the checksum offload wrote a TCP/UDP
    /// checksum that verifies, else empty.
    fn send(&mut self, frame: &mut Vec<u8>, l4: Vouch) {
        if frame.len() < MIN_FRAME_LEN - ETH_FCS_LEN {
            frame.resize(MIN_FRAME_LEN - ETH_FCS_LEN, 0);
        }
        frame.extend_from_slice(&[0; ETH_FCS_LEN]);
        let stats = &mut *self.stats;
        stats.gptc += 1;
        stats.tpt += 1;
        stats.gotc += frame.len() as u64;
        if frame[..6] == [0xFF; 6] {
            stats.bptc += 1;
        } else if frame[0] & 1 != 0 {
            stats.mptc += 1;
        }
        match self.phy.as_mut() {
            Some(phy) => {
                if phy
                    .transmit_swap_vouched(self.now, frame, Vouch::FCS | l4)
                    .is_err()
                {
                    *self.phy_errors += 1;
                }
            }
            None => frame.clear(),
        }
    }
}

/// An [`IgbHw`] as a PCI function: the model behind a lock, which is what
/// BAR 0 maps to.
///
/// The lock stands for the serialisation a real device's register file
/// gives for free; it is uncontended in the simulation (one thread) and
/// held only for one register access or one `poll` step otherwise.
///
/// A transmit doorbell (`TDT` write, once per frame in `igb_xmit_frame_ring()`)
/// takes no lock: like a posted MMIO write it only sets the queue's bit in
/// a doorbell word, which the device picks up whenever it is next locked
/// (`poll`, `next_event`, any register access). The driver publishes the
/// ring's tail (Release) before it rings; the device takes the word with
/// Acquire before it fetches descriptors.
#[derive(Debug)]
pub struct IgbDevice {
    hw: SpinLock<IgbHw>,
    /// `TDT` writes not yet seen by the model, one bit per tx queue. One
    /// word: a doorbell is one atomic OR, and a lock takes every rung
    /// doorbell with one swap (a lock with none rung, with one load)
    /// instead of a swap of a summary flag and a visit of a flag per queue.
    tdt_bells: AtomicU32,
    /// The model's own part of its next event ([`IgbHw::own_due`]), as of
    /// the last unlock: republished by every [`IgbGuard`] as it drops, so
    /// [`IgbDevice::next_event`] reads it without the lock.
    own_due: AtomicU64,
    /// The PHY's next event without the lock, when the port gives one
    /// ([`PhyPort::shared_next_event`]); else `next_event` locks.
    phy_due: PhyDue,
}

/// How [`IgbDevice::next_event`] learns the PHY's next event.
#[derive(Debug)]
enum PhyDue {
    /// No PHY: never.
    Absent,
    /// From the port's shared handle.
    Shared(Arc<dyn PhyNextEvent>),
    /// Only the port itself knows: read under the lock.
    Locked,
}

/// The encoding of [`IgbDevice`]'s `own_due` word.
struct OwnDue;

impl OwnDue {
    /// Unknown: the reader takes the lock (an instant the encoding cannot
    /// hold, never met in practice).
    const STALE: u64 = u64::MAX;
    /// Flag: a rung doorbell on a queue with a ring, due at the instant in
    /// the low bits whatever the PHY says.
    const DOORBELL: u64 = 1 << 63;
    /// No moderation timer armed (`timer_due == Instant::MAX`).
    const NO_TIMER: u64 = Self::DOORBELL - 1;
}

/// [`IgbDevice::lock`]'s guard: the model, locked; on drop it republishes
/// the model's own next event before the unlock.
pub struct IgbGuard<'a> {
    hw: SpinLockGuard<'a, IgbHw>,
    own_due: &'a AtomicU64,
}

impl core::ops::Deref for IgbGuard<'_> {
    type Target = IgbHw;

    #[inline]
    fn deref(&self) -> &IgbHw {
        &self.hw
    }
}

impl core::ops::DerefMut for IgbGuard<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut IgbHw {
        &mut self.hw
    }
}

impl Drop for IgbGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let due = self.hw.own_due();
        // Release (before the unlock): a reader that sees the value sees
        // the model's state it was computed from. Only the lock holder
        // writes the word, so a plain store suffices.
        if self.own_due.load(Ordering::Relaxed) != due {
            self.own_due.store(due, Ordering::Release);
        }
    }
}

impl fmt::Debug for IgbGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IgbGuard").finish_non_exhaustive()
    }
}

impl IgbDevice {
    /// An 82576 with `mac` in its EEPROM, attached to `phy`.
    pub fn new(mac: [u8; 6], phy: Option<Box<dyn PhyPort + Send>>) -> Arc<IgbDevice> {
        let phy_due = match &phy {
            None => PhyDue::Absent,
            Some(p) => p.shared_next_event().map_or(PhyDue::Locked, PhyDue::Shared),
        };
        let hw = IgbHw::new(mac, phy);
        let own_due = AtomicU64::new(hw.own_due());
        Arc::new(IgbDevice {
            hw: SpinLock::new(hw),
            tdt_bells: AtomicU32::new(0),
            own_due,
            phy_due,
        })
    }

    /// Locks the model for a sequence of accesses (after handing it the
    /// doorbells rung since it was last locked).
    #[inline]
    pub fn lock(&self) -> IgbGuard<'_> {
        let mut hw = IgbGuard {
            hw: self.hw.lock(),
            own_due: &self.own_due,
        };
        // Relaxed peek, then Acquire: pairs with the Release OR in `wr32`,
        // so the descriptors published before a doorbell are visible. A
        // doorbell rung after the swap sets its bit again, so the next lock
        // picks it up.
        if self.tdt_bells.load(Ordering::Relaxed) != 0 {
            // Until this guard republishes, a lock-free `next_event` that
            // finds no doorbell word set (the swap's Release pairs with its
            // Acquire load) finds this mark and takes the lock, so it never
            // misses the doorbells taken here.
            self.own_due.store(OwnDue::STALE, Ordering::Relaxed);
            hw.tx_doorbells |= self.tdt_bells.swap(0, Ordering::AcqRel);
        }
        hw
    }

    /// A register read (`rd32()`).
    pub fn rd32(&self, reg: u32) -> u32 {
        self.lock().rd32(reg)
    }

    /// A register write (`wr32()`); a `TDT` write rings the queue's
    /// doorbell without taking the lock.
    #[inline]
    pub fn wr32(&self, reg: u32, val: u32) {
        if let Some(q) = tdt_queue(reg) {
            // Release: the tail the driver published happens-before the
            // device's Acquire in `lock`.
            self.tdt_bells.fetch_or(1 << q, Ordering::Release);
            return;
        }
        self.lock().wr32(reg, val);
    }

    /// See [`IgbHw::poll`].
    #[inline]
    pub fn poll(&self, now: Instant) -> usize {
        self.lock().poll(now)
    }

    /// [`poll`](IgbDevice::poll), then [`next_event`](IgbDevice::next_event)
    /// under the same lock: the frames received and when the device next
    /// needs a poll. For an event loop that would read the next event right
    /// after the poll (nothing else can move the device's own deadlines in
    /// between; a doorbell rung later is picked up by the next lock).
    pub fn poll_next_event(&self, now: Instant) -> (usize, Option<Instant>) {
        let mut hw = self.lock();
        let received = hw.poll(now);
        (received, hw.next_event())
    }

    /// See [`IgbHw::next_event`] (inline, like it: the simulation reads
    /// a device's next event more often than it polls it).
    ///
    /// Without the lock when it can: the model's own part as published by
    /// the last unlock (the answer the lock would give to a reader ordered
    /// before any holder now) and the PHY's from its shared handle. A
    /// doorbell rung since the last lock, a PHY without a handle or an
    /// unencodable instant take the lock, as before.
    #[inline]
    pub fn next_event(&self) -> Option<Instant> {
        // Acquire: pairs with `lock`'s swap (see there).
        if self.tdt_bells.load(Ordering::Acquire) == 0 {
            let own = self.own_due.load(Ordering::Acquire);
            if own != OwnDue::STALE {
                if own & OwnDue::DOORBELL != 0 {
                    return Some(Instant::from_nanos(own & !OwnDue::DOORBELL));
                }
                let phy = match &self.phy_due {
                    PhyDue::Absent => None,
                    PhyDue::Shared(p) => p.next_event(),
                    PhyDue::Locked => return self.lock().next_event(),
                };
                if own == OwnDue::NO_TIMER {
                    return phy;
                }
                return min_opt(phy, Some(Instant::from_nanos(own)));
            }
        }
        self.lock().next_event()
    }

    /// See [`IgbHw::on_timer`].
    pub fn on_timer(&self, now: Instant) {
        self.lock().on_timer(now);
    }
}

/// The earlier of two optional instants (`None` is "never").
#[inline]
fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The queue whose `TDT` register `reg` is, if it is one.
#[inline]
fn tdt_queue(reg: u32) -> Option<usize> {
    let q = if (r::tdt(0)..=r::tdt(3)).contains(&reg) {
        (reg - r::tdt(0)) / 0x100
    } else if (r::tdt(4)..=r::tdt(r::IGB_MAX_QUEUES - 1)).contains(&reg) {
        (reg - r::tdt(4)) / 0x40 + 4
    } else {
        return None;
    };
    (reg == r::tdt(q as usize)).then_some(q as usize)
}

impl PciFunction for IgbDevice {
    fn header(&self) -> PciConfigHeader {
        PciConfigHeader {
            vendor_id: PCI_VENDOR_ID_INTEL,
            device_id: E1000_DEV_ID_82576,
            revision: 1,
            class: PCI_CLASS_NETWORK_ETHERNET,
            subsystem_vendor_id: PCI_VENDOR_ID_INTEL,
            subsystem_id: 0x0000,
        }
    }

    fn msix_vectors(&self) -> u16 {
        r::IGB_MAX_MSIX_VECTORS as u16
    }

    fn command_write(&self, command: u16) {
        self.lock()
            .set_bus_master(command & PCI_COMMAND_MASTER != 0);
    }

    fn msix_table_write(&self, vector: u16, irqs: &Arc<IrqTable>, line: u32) {
        self.lock()
            .msix_table_write(usize::from(vector), irqs, line);
    }

    fn msix_table_clear(&self, vector: u16) {
        self.lock().msix_table_clear(usize::from(vector));
    }

    fn surprise_remove(&self) {
        let mut hw = self.lock();
        hw.set_bus_master(false);
        for q in 0..r::IGB_MAX_QUEUES {
            drop(hw.detach_rx_ring(q));
            drop(hw.detach_tx_ring(q));
        }
    }
}

/// The receive DMA's copy of one frame into its buffer (`dst.len() ==
/// src.len()`). Frames of 16 to 128 bytes are copied inline as two
/// overlapping pieces of 16, 32 or 64 bytes, one from each end (what small
/// `memcpy`s do), with no loop; longer ones with `copy_from_slice`. The
/// `memcpy` call it replaces took a tenth of the rx time for 60-byte
/// frames (`perf record`).
#[inline(always)]
fn dma_copy(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() != n || !(16..=128).contains(&n) {
        dst.copy_from_slice(src);
    } else if n <= 32 {
        copy_ends::<16>(dst, src);
    } else if n <= 64 {
        copy_ends::<32>(dst, src);
    } else {
        copy_ends::<64>(dst, src);
    }
}

/// Copies the first and the last `N` bytes of `src` (of length `N` to
/// `2 * N`) to `dst` of the same length: every byte, some twice.
#[inline(always)]
fn copy_ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = *s;
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
        *d = *s;
    }
}

fn take32(c: &mut u64) -> u32 {
    core::mem::take(c).min(u64::from(u32::MAX)) as u32
}

/// The set bits of `mask`, lowest first (one step per set bit).
fn bits(mut mask: u32) -> impl Iterator<Item = usize> {
    core::iter::from_fn(move || {
        (mask != 0).then(|| {
            let b = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            b
        })
    })
}

/// The RAL/RAH pair of a MAC address, RAH with the address-valid bit.
fn rar_from_mac(mac: [u8; 6]) -> (u32, u32) {
    (
        u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]),
        u32::from(u16::from_le_bytes([mac[4], mac[5]])) | r::RAH_AV,
    )
}

fn rss_hash(table: &ToeplitzTable, keys: &FlowKeys, mrqc: u32) -> u32 {
    let mut input = [0u8; 12];
    input[..4].copy_from_slice(&keys.src.octets());
    input[4..8].copy_from_slice(&keys.dst.octets());
    input[8..10].copy_from_slice(&keys.sport.to_be_bytes());
    input[10..].copy_from_slice(&keys.dport.to_be_bytes());
    let four_tuple = !keys.is_fragment
        && match keys.ip_proto {
            IpProtocol::Tcp => mrqc & r::MRQC_RSS_FIELD_IPV4_TCP != 0,
            IpProtocol::Udp => mrqc & r::MRQC_RSS_FIELD_IPV4_UDP != 0,
            _ => false,
        };
    if four_tuple {
        table.hash(&input)
    } else if mrqc & r::MRQC_RSS_FIELD_IPV4 != 0 {
        table.hash(&input[..8])
    } else {
        0
    }
}

/// Where the IPv4 header of an Ethernet frame starts (one optional 802.1Q
/// tag), if the frame carries IPv4.
fn ipv4_offset(frame: &[u8]) -> Option<usize> {
    let et = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    match et {
        0x0800 => Some(14),
        0x8100 if frame.get(16..18)? == [0x08, 0x00] => Some(18),
        _ => None,
    }
}

/// The checksum status bits the receive checksum offload reports.
///
/// The sums are kept in little-endian word order (bytes swapped in each
/// 16-bit word), as 64-bit words added into a 128-bit accumulator (an add
/// and an add-with-carry each), and tested once per check with
/// [`csum_ok`]: a sum checks out in either byte order or in neither, so no
/// swap is needed. The fixed IPv4 header is three loads, its addresses one
/// more (the pseudo header's).
///
/// The common frame — untagged IPv4 with a 20-byte header, both checks on
/// — is recognised with one compare of the EtherType and version/IHL
/// bytes and checked here; anything else (802.1Q tag, options, a check
/// switched off, too short to tell) goes to [`rx_checksum_any`], which
/// gives the same bits for the common frame too (tested). The fast path
/// is inlined into `receive_frame` (8 instructions a frame fewer than the
/// call, callgrind), the general path stays out of line.
#[inline(always)]
fn rx_checksum(frame: &[u8], rxcsum: u32, l4_good: bool) -> RxStatusError {
    const BOTH: u32 = r::RXCSUM_IPOFL | r::RXCSUM_TUOFL;
    if rxcsum & BOTH == BOTH
        && let Some((eth_ip, payload)) = frame.split_first_chunk::<34>()
        // EtherType 0x0800 and version 4 with IHL 5, as one masked word.
        && u32::from_le_bytes([eth_ip[12], eth_ip[13], eth_ip[14], eth_ip[15]]) & 0xFF_FFFF
            == 0x45_0008
        && let Some((_, ip)) = eth_ip.split_last_chunk::<20>()
    {
        if !csum_ok(ip_fixed_sum(ip)) {
            return RxStatusError::IPCS | RxStatusError::IPE;
        }
        return RxStatusError::IPCS | rx_l4_checksum(ip, 20, payload, l4_good);
    }
    rx_checksum_any(frame, rxcsum, l4_good)
}

/// [`rx_checksum`] for any frame: an optional 802.1Q tag, IPv4 options,
/// either check switched off.
#[inline(never)]
fn rx_checksum_any(frame: &[u8], rxcsum: u32, l4_good: bool) -> RxStatusError {
    let Some(l3) = ipv4_offset(frame) else {
        return RxStatusError::empty();
    };
    // The fixed header as an array (no further bounds checks on it), the
    // options after it, the rest of the datagram after them.
    let Some((fixed, after)) = frame.get(l3..).and_then(<[u8]>::split_first_chunk::<20>) else {
        return RxStatusError::empty();
    };
    let vihl = fixed[0];
    let ihl = usize::from(vihl & 0x0F) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return RxStatusError::empty();
    }
    let Some((opts, payload)) = after.split_at_checked(ihl - 20) else {
        return RxStatusError::empty();
    };
    let mut st = RxStatusError::empty();
    if rxcsum & r::RXCSUM_IPOFL != 0 {
        st |= RxStatusError::IPCS;
        if !csum_ok(ip_fixed_sum(fixed) + le_sum(opts)) {
            st |= RxStatusError::IPE;
            return st;
        }
    }
    if rxcsum & r::RXCSUM_TUOFL == 0 {
        return st;
    }
    st | rx_l4_checksum(fixed, ihl, payload, l4_good)
}

/// The sum of the fixed IPv4 header `ip`: two 64-bit words and a 32-bit
/// one.
#[inline(always)]
fn ip_fixed_sum(ip: &[u8; 20]) -> u128 {
    u128::from(le64_at(ip, 0)) + u128::from(le64_at(ip, 8)) + u128::from(le64_at(ip, 12) >> 32)
}

/// The eight bytes of `b` from `i` as a little-endian word (one load).
#[inline(always)]
fn le64_at(b: &[u8; 20], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

/// The TCP/UDP half of the receive checksum offload, for an IPv4 header
/// `ip` of `ihl` bytes followed by `payload` (the frame's bytes after the
/// header): the status bit `TCPCS` or `UDPCS`, with `TCPE` when the
/// checksum is wrong. Nothing for a fragment, a datagram that runs past
/// the frame, another protocol or a header too short for its protocol;
/// `UDPCS` alone for a UDP checksum of 0 (none sent).
#[inline(always)]
fn rx_l4_checksum(ip: &[u8; 20], ihl: usize, payload: &[u8], l4_good: bool) -> RxStatusError {
    // MF or a fragment offset (bytes 6 and 7, `IP_MF | IP_OFFSET`), tested
    // in the header's first word, which the header sum loaded already.
    if le64_at(ip, 0) & 0xFF3F_0000_0000_0000 != 0 {
        return RxStatusError::empty();
    }
    let tot_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let Some(l4) = tot_len.checked_sub(ihl).and_then(|n| payload.get(..n)) else {
        return RxStatusError::empty();
    };
    let proto = ip[9];
    let bit = match proto {
        6 if l4.len() >= 20 => RxStatusError::TCPCS,
        17 if l4.len() >= 8 => RxStatusError::UDPCS,
        _ => return RxStatusError::empty(),
    };
    if proto == 17 && l4[6..8] == [0, 0] {
        return bit;
    }
    // The sender's MAC found this checksum good over these same bytes.
    if l4_good {
        return bit;
    }
    // The pseudo header: the addresses (one 64-bit word), then protocol and
    // length (at most 65535) as big-endian words, byte-swapped into the
    // sum's order.
    let pseudo = le64_at(ip, 12);
    let proto_len = (u64::from(proto) << 8) + u64::from((l4.len() as u16).swap_bytes());
    if csum_ok(u128::from(pseudo) + u128::from(proto_len) + le_sum(l4)) {
        bit
    } else {
        bit | RxStatusError::TCPE
    }
}

/// The ones'-complement sum of `data`'s 16-bit words, in little-endian
/// word order (bytes swapped in each word), not folded, below 2^72, so a
/// caller may add a few such sums and test them once with [`csum_ok`].
///
/// Below 128 bytes (headers, small datagrams) it is wire's loop-free
/// [`csum_short_wide`], inlined here; longer data goes to
/// `csum_partial()`.
#[inline(always)]
fn le_sum(data: &[u8]) -> u128 {
    if data.len() >= 128 {
        return le_sum_long(data);
    }
    csum_short_wide(data)
}

/// [`le_sum`] of 128 bytes or more: `csum_partial()`, out of line so that
/// its vector code does not weigh on the short path's registers.
#[inline(never)]
fn le_sum_long(data: &[u8]) -> u128 {
    u128::from((csum_partial(data, 0) as u16).swap_bytes())
}

/// Whether a nonzero ones'-complement sum checks out: whether it folds to
/// 0xFFFF (negative zero), as a received header with its checksum must.
///
/// Folding (adding the 16-bit halves with end-around carries) keeps a sum's
/// residue modulo 0xFFFF, since 2^16 is 1 modulo 0xFFFF, and a nonzero sum
/// never folds to 0; so a nonzero sum folds to 0xFFFF exactly when it is a
/// multiple of 0xFFFF. The 128-bit sum goes to 64 bits by adding its
/// halves with the carry (2^64 is 1 modulo 0xFFFF too), then the test is a
/// multiply and a compare (the compiler's divisibility test), where a fold
/// is a dozen instructions. Every sum checked here is nonzero: an IPv4
/// header's holds its version, a pseudo header's its protocol number.
#[inline(always)]
fn csum_ok(s: u128) -> bool {
    debug_assert_ne!(s, 0, "only nonzero sums are checked");
    // The high half is below 2^64 − 1 (a sum of fewer than 2^64 words), so
    // adding the carry back cannot overflow again.
    let (lo, carry) = (s as u64).overflowing_add((s >> 64) as u64);
    (lo + u64::from(carry)).is_multiple_of(0xFFFF)
}

fn ipv4_at(b: &[u8], at: usize) -> core::net::Ipv4Addr {
    core::net::Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// Transmit checksum insertion (`TXSM`: the L4 checksum over a field that
/// holds the pseudo-header sum, as `CHECKSUM_PARTIAL` leaves it; `IXSM`:
/// the IPv4 header checksum).
///
/// Returns whether it wrote a TCP/UDP checksum that verifies: over the
/// whole datagram the IPv4 header delimits, with the pseudo header of the
/// addresses, protocol and length in the frame (the check a receiver's
/// offload makes, done here on the sum already in hand: the field's seed
/// taken out, the written checksum put in). A wrong seed from the stack
/// gives a checksum that does not verify, and no vouch.
fn tx_checksum(frame: &mut [u8], popts: TxPopts) -> bool {
    if popts.is_empty() {
        return false;
    }
    let Some(l3) = ipv4_offset(frame) else {
        return false;
    };
    let Some(&vihl) = frame.get(l3) else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0F) * 4;
    if ihl < 20 || frame.len() < l3 + ihl {
        return false;
    }
    if popts.contains(TxPopts::IXSM) {
        frame[l3 + 10..l3 + 12].fill(0);
        let c = ip_fast_csum(&frame[l3..l3 + ihl]);
        frame[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    if popts.contains(TxPopts::TXSM) {
        let tot_len = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
        let end = (l3 + tot_len).min(frame.len());
        let l4 = l3 + ihl;
        let proto = frame[l3 + 9];
        let check_at = match proto {
            6 if end >= l4 + 20 => l4 + 16,
            17 if end >= l4 + 8 => l4 + 6,
            _ => return false,
        };
        let seed = u16::from_be_bytes([frame[check_at], frame[check_at + 1]]);
        let sum = csum_partial(&frame[l4..end], 0);
        let mut c = csum_fold(sum);
        if c == 0 && proto == 17 {
            c = 0xFFFF;
        }
        frame[check_at..check_at + 2].copy_from_slice(&c.to_be_bytes());
        // The receiver's sum: the datagram with `c` in place of the seed.
        let whole = l3 + tot_len <= frame.len();
        let summed = csum_add(csum_sub(sum, u32::from(seed)), u32::from(c));
        return whole
            && csum_tcpudp_magic(
                ipv4_at(frame, l3 + 12),
                ipv4_at(frame, l3 + 16),
                (end - l4) as u16,
                proto,
                summed,
            ) == 0;
    }
    false
}

/// The fields of a TSO frame's headers that [`TsoCut`] rewrites per
/// segment, parsed once.
#[derive(Clone, Copy)]
struct TsoHeader {
    l3: usize,
    ihl: usize,
    l4: usize,
    doff: usize,
    id: u16,
    seq: u32,
    flags: u8,
    src: core::net::Ipv4Addr,
    dst: core::net::Ipv4Addr,
}

impl TsoHeader {
    /// Parses the `hdr_len` header bytes of a TSO frame (`hdr` is exactly
    /// those bytes): Ethernet (with one VLAN tag or none), IPv4, TCP.
    /// `None` (`TSCTFC`) when they do not parse, `hdr_len` disagrees with
    /// them or `mss` is 0.
    fn parse(hdr: &[u8], mss: usize) -> Option<Self> {
        let l3 = ipv4_offset(hdr)?;
        let (&vihl, &proto) = (hdr.get(l3)?, hdr.get(l3 + 9)?);
        let ihl = usize::from(vihl & 0x0F) * 4;
        if vihl >> 4 != 4 || ihl < 20 || proto != 6 || mss == 0 {
            return None;
        }
        let l4 = l3 + ihl;
        let doff = usize::from(*hdr.get(l4 + 12)? >> 4) * 4;
        if doff < 20 || l4 + doff != hdr.len() {
            return None;
        }
        Some(Self {
            l3,
            ihl,
            l4,
            doff,
            id: u16::from_be_bytes([hdr[l3 + 4], hdr[l3 + 5]]),
            seq: u32::from_be_bytes([hdr[l4 + 4], hdr[l4 + 5], hdr[l4 + 6], hdr[l4 + 7]]),
            flags: hdr[l4 + 13],
            src: ipv4_at(hdr, l3 + 12),
            dst: ipv4_at(hdr, l3 + 16),
        })
    }
}

/// TCP segmentation offload, streaming: cuts one large TCP/IPv4 frame into
/// frames of at most `mss` payload bytes, each with its own IPv4 total
/// length, id and header checksum, and TCP sequence number, flags and
/// checksum (FIN and PSH on the last segment only, CWR on the first only).
///
/// The frame comes in pieces as the DMA engine reads its descriptors'
/// buffers ([`feed`](TsoCut::feed)): the first `hdr_len` bytes are kept as
/// the header, and the payload goes straight into the segment being cut,
/// so each payload byte is copied once (not gathered into the whole frame
/// first). A full segment is handed on as soon as a byte of the next one
/// arrives (then it is not the last); the last goes at the end of packet
/// ([`finish`](TsoCut::finish)). A frame whose headers do not parse emits
/// nothing and is counted as failed (`TSCTFC`), as before.
///
/// # Model notes
///
/// The 82576 also cuts segments as it fetches the payload (its packet
/// buffer holds a few KB, not a 64 KB frame); what goes on the wire is the
/// same either way.
struct TsoCut {
    mss: usize,
    hdr_len: usize,
    state: TsoState,
}

/// Where a [`TsoCut`] is in its frame.
#[derive(Clone, Copy)]
enum TsoState {
    /// Gathering the header (fewer than `hdr_len` bytes so far).
    Header,
    /// Cutting segment `i`; `open` when `seg` holds its header (and
    /// possibly payload) and it has not been handed on.
    Cutting { h: TsoHeader, i: usize, open: bool },
    /// The headers did not parse: the rest of the frame is dropped.
    Failed,
}

impl TsoCut {
    fn new(mss: usize, hdr_len: usize) -> Self {
        Self {
            mss,
            hdr_len,
            state: TsoState::Header,
        }
    }

    /// Takes the next `data` bytes of the frame; `hdr` keeps the header
    /// (the caller's buffer, empty at the start of the frame) and `seg`
    /// the segment being cut; full segments go to `emit`.
    fn feed(
        &mut self,
        mut data: &[u8],
        hdr: &mut Vec<u8>,
        seg: &mut Vec<u8>,
        emit: &mut impl FnMut(&mut Vec<u8>),
    ) {
        if let TsoState::Header = self.state {
            let n = (self.hdr_len - hdr.len()).min(data.len());
            hdr.extend_from_slice(&data[..n]);
            data = &data[n..];
            if hdr.len() == self.hdr_len {
                self.state = match TsoHeader::parse(hdr, self.mss) {
                    Some(h) => TsoState::Cutting {
                        h,
                        i: 0,
                        open: false,
                    },
                    None => TsoState::Failed,
                };
            }
        }
        let TsoState::Cutting { h, i, open } = &mut self.state else {
            return;
        };
        while !data.is_empty() {
            if *open && seg.len() - self.hdr_len == self.mss {
                tso_close(seg, h, self.mss, *i, false);
                emit(seg);
                *i += 1;
                *open = false;
            }
            if !*open {
                tso_open(seg, hdr);
                *open = true;
            }
            let n = (self.mss - (seg.len() - self.hdr_len)).min(data.len());
            seg.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
    }

    /// Ends the frame: hands on its last segment (a frame with no payload
    /// is one segment of headers). Returns `false` (`TSCTFC`), having
    /// emitted nothing at all, when the headers did not parse or the frame
    /// ended inside them.
    fn finish(self, hdr: &[u8], seg: &mut Vec<u8>, emit: &mut impl FnMut(&mut Vec<u8>)) -> bool {
        let TsoState::Cutting { h, i, open } = self.state else {
            return false;
        };
        if !open {
            tso_open(seg, hdr);
        }
        tso_close(seg, &h, self.mss, i, true);
        emit(seg);
        true
    }
}

/// Starts a segment in `seg`: the frame's header, with room for a whole
/// frame (the buffer may be a short one the PHY recycled).
fn tso_open(seg: &mut Vec<u8>, hdr: &[u8]) {
    seg.clear();
    seg.reserve(TX_FRAME_ROOM.max(hdr.len() + ETH_FCS_LEN));
    seg.extend_from_slice(hdr);
}

/// Completes segment `i` (of `mss`-byte segments) in `seg`, header and
/// payload in place: IPv4 total length, id and checksum, TCP sequence
/// number, flags and checksum.
fn tso_close(seg: &mut [u8], h: &TsoHeader, mss: usize, i: usize, last: bool) {
    const FIN: u8 = 0x01;
    const PSH: u8 = 0x08;
    const CWR: u8 = 0x80;
    let (l3, l4) = (h.l3, h.l4);
    let chunk = seg.len() - l4 - h.doff;
    let ip_len = (h.ihl + h.doff + chunk) as u16;
    seg[l3 + 2..l3 + 4].copy_from_slice(&ip_len.to_be_bytes());
    seg[l3 + 4..l3 + 6].copy_from_slice(&h.id.wrapping_add(i as u16).to_be_bytes());
    seg[l3 + 10..l3 + 12].fill(0);
    let ipc = ip_fast_csum(&seg[l3..l4]);
    seg[l3 + 10..l3 + 12].copy_from_slice(&ipc.to_be_bytes());
    let s = h.seq.wrapping_add((i * mss) as u32);
    seg[l4 + 4..l4 + 8].copy_from_slice(&s.to_be_bytes());
    let mut f = h.flags;
    if !last {
        f &= !(FIN | PSH);
    }
    if i != 0 {
        f &= !CWR;
    }
    seg[l4 + 13] = f;
    seg[l4 + 16..l4 + 18].fill(0);
    let tcp_len = (h.doff + chunk) as u16;
    let c = csum_tcpudp_magic(h.src, h.dst, tcp_len, 6, csum_partial(&seg[l4..], 0));
    seg[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fcs::append_fcs;

    /// An Ethernet + IPv4 + TCP (20-byte header) frame for [`TsoCut`]:
    /// id 0x1234, sequence number near wrapping, CWR|PSH|ACK|FIN.
    fn tso_frame(payload: usize) -> Vec<u8> {
        let mut f = vec![0u8; 54];
        f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[198, 18, 0, 1]);
        f[30..34].copy_from_slice(&[198, 18, 0, 2]);
        f[34..38].copy_from_slice(&[0x0f, 0xa0, 0x13, 0x88]);
        f[38..42].copy_from_slice(&0xffff_f000u32.to_be_bytes());
        f[46] = 0x50;
        f[47] = 0x80 | 0x10 | 0x08 | 0x01;
        f.extend((0..payload).map(|i| (i * 7 + 3) as u8));
        f
    }

    /// Cuts `frame` fed in pieces that end at each of `cuts` (offsets into
    /// the frame); returns the segments and what `finish` said.
    fn tso_cut(frame: &[u8], mss: usize, hdr_len: usize, cuts: &[usize]) -> (Vec<Vec<u8>>, bool) {
        let mut out = Vec::new();
        let (mut hdr, mut seg) = (Vec::new(), Vec::new());
        let mut emit = |f: &mut Vec<u8>| out.push(core::mem::take(f));
        let mut cut = TsoCut::new(mss, hdr_len);
        let mut at = 0;
        for &end in cuts.iter().chain(core::iter::once(&frame.len())) {
            let end = end.clamp(at, frame.len());
            cut.feed(&frame[at..end], &mut hdr, &mut seg, &mut emit);
            at = end;
        }
        let ok = cut.finish(&hdr, &mut seg, &mut emit);
        (out, ok)
    }

    #[test]
    fn tso_cut_gives_the_same_segments_however_the_frame_is_split() {
        let mss = 100;
        for payload in [0, 1, 99, 100, 101, 300, 333] {
            let frame = tso_frame(payload);
            let (whole, ok) = tso_cut(&frame, mss, 54, &[]);
            assert!(ok);
            assert_eq!(
                whole.len(),
                payload.div_ceil(mss).max(1),
                "payload {payload}"
            );
            let mut got = Vec::new();
            for (i, seg) in whole.iter().enumerate() {
                let chunk = &seg[54..];
                assert!(chunk.len() <= mss);
                got.extend_from_slice(chunk);
                assert_eq!(
                    usize::from(u16::from_be_bytes([seg[16], seg[17]])),
                    seg.len() - 14
                );
                assert_eq!(u16::from_be_bytes([seg[18], seg[19]]), 0x1234 + i as u16);
                assert_eq!(ip_fast_csum(&seg[14..34]), 0, "IPv4 checksum verifies");
                let seq = u32::from_be_bytes([seg[38], seg[39], seg[40], seg[41]]);
                assert_eq!(seq, 0xffff_f000u32.wrapping_add((i * mss) as u32));
                let last = i + 1 == whole.len();
                let f = seg[47];
                assert_eq!(f & 0x09 == 0x09, last, "FIN and PSH on the last only");
                assert_eq!(f & 0x09 == 0, !last);
                assert_eq!(f & 0x80 != 0, i == 0, "CWR on the first only");
                let sum = csum_partial(&seg[34..], 0);
                let tcp_len = (seg.len() - 34) as u16;
                let src = core::net::Ipv4Addr::new(198, 18, 0, 1);
                let dst = core::net::Ipv4Addr::new(198, 18, 0, 2);
                assert_eq!(
                    csum_tcpudp_magic(src, dst, tcp_len, 6, sum),
                    0,
                    "TCP checksum"
                );
            }
            assert_eq!(got, frame[54..]);
            let splits: [&[usize]; 6] = [
                &[1],
                &[10, 40, 53],
                &[54],
                &[54, 154],
                &[60, 154, 155, 254, 300],
                &[20, 100, 153, 154, 253, 255, 256, 354],
            ];
            for cuts in splits {
                assert_eq!(
                    tso_cut(&frame, mss, 54, cuts),
                    (whole.clone(), true),
                    "{cuts:?}"
                );
            }
            let bytewise: Vec<usize> = (1..frame.len()).collect();
            assert_eq!(tso_cut(&frame, mss, 54, &bytewise), (whole.clone(), true));
        }
    }

    #[test]
    fn tso_cut_emits_nothing_for_a_frame_it_cannot_parse() {
        let frame = tso_frame(500);
        // hdr_len disagrees with the headers, the frame ends inside them,
        // mss 0, not TCP.
        assert_eq!(tso_cut(&frame, 100, 50, &[20]), (vec![], false));
        assert_eq!(tso_cut(&frame[..40], 100, 54, &[20]), (vec![], false));
        assert_eq!(tso_cut(&frame, 0, 54, &[]), (vec![], false));
        let mut udp = frame.clone();
        udp[23] = 17;
        assert_eq!(tso_cut(&udp, 100, 54, &[60]), (vec![], false));
    }

    /// Folds a partial sum to 16 bits with end-around carries, the
    /// definition [`csum_ok`] is checked against.
    fn fold16(s: impl Into<u128>) -> u16 {
        let mut s: u128 = s.into();
        while s > 0xFFFF {
            s = (s & 0xFFFF) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn csum_ok_is_a_fold_to_all_ones_for_nonzero_sums() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Sums of every size up to the high half's bound, and multiples of
        // 0xFFFF near them.
        let mut sums: Vec<u128> = (0..30_000)
            .map(|i| {
                let s = (u128::from(next()) << 64 | u128::from(next())) >> (i % 128);
                if i % 3 == 0 { s - s % 0xFFFF } else { s }
            })
            .collect();
        sums.extend([1, 0xFFFE, 0xFFFF, 0x1_0000, 0x1_FFFE, 0xFFFF_FFFF]);
        sums.extend([
            u128::from(u64::MAX),
            1 << 64,
            (1 << 64) + 0xFFFE,
            (1 << 65) - 1,
        ]);
        sums.extend((0..100).map(|k| 0xFFFFu128 << k));
        for s in sums
            .into_iter()
            .filter(|&s| s != 0 && s >> 64 < u128::from(u64::MAX))
        {
            assert_eq!(csum_ok(s), fold16(s) == 0xFFFF, "sum {s:#x}");
        }
    }

    #[test]
    fn eeprom_holds_mac_and_checksum() {
        let mac = [0x02, 0, 0, 0, 0, 0x01];
        let img = igb_eeprom_image(mac);
        assert_eq!(img.iter().fold(0u16, |s, w| s.wrapping_add(*w)), r::NVM_SUM);
        let mut hw = IgbHw::new(mac, None);
        assert_eq!(hw.perm_addr(), mac);
        hw.wr32(r::EERD, (2 << r::EERD_ADDR_SHIFT) | r::EERD_START);
        let v = hw.rd32(r::EERD);
        assert_ne!(v & r::EERD_DONE, 0);
        assert_eq!((v >> r::EERD_DATA_SHIFT) as u16, 0x0100);
        // RAR[0] loaded from the EEPROM at reset.
        assert_eq!(hw.rd32(r::rah(0)), 0x0100 | r::RAH_AV);
    }

    #[test]
    fn toeplitz_table_passes_microsofts_verification_suite() {
        // "Verifying the RSS Hash Calculation", IPv4: source, destination,
        // source port, destination port, then the hash over the addresses
        // and over addresses and ports, with the default key.
        type Vector = ([u8; 4], [u8; 4], u16, u16, u32, u32);
        let vectors: [Vector; 5] = [
            (
                [66, 9, 149, 187],
                [161, 142, 100, 80],
                2794,
                1766,
                0x323e_8fc2,
                0x51cc_c178,
            ),
            (
                [199, 92, 111, 2],
                [65, 69, 140, 83],
                14230,
                4739,
                0xd718_262a,
                0xc626_b0ea,
            ),
            (
                [24, 19, 198, 95],
                [12, 22, 207, 184],
                12898,
                38024,
                0xd2d0_a5de,
                0x5c2b_394a,
            ),
            (
                [38, 27, 205, 30],
                [209, 142, 163, 6],
                48228,
                2217,
                0x8298_9176,
                0xafc7_327f,
            ),
            (
                [153, 39, 163, 191],
                [202, 188, 127, 2],
                44251,
                1303,
                0x5d18_09c5,
                0x10e8_28a2,
            ),
        ];
        let t = ToeplitzTable::new(&wire::RSS_DEFAULT_KEY);
        for (src, dst, sport, dport, ipv4, ipv4_tcp) in vectors {
            let mut input = [0u8; 12];
            input[..4].copy_from_slice(&src);
            input[4..8].copy_from_slice(&dst);
            input[8..10].copy_from_slice(&sport.to_be_bytes());
            input[10..].copy_from_slice(&dport.to_be_bytes());
            assert_eq!(t.hash(&input[..8]), ipv4, "{src:?} -> {dst:?}");
            assert_eq!(
                t.hash(&input),
                ipv4_tcp,
                "{src:?}:{sport} -> {dst:?}:{dport}"
            );
        }
        // Any key, any input: the table is the bit-serial hash.
        let mut x = 0x0123_4567_89AB_CDEFu64;
        let mut byte = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for _ in 0..50 {
            let key: [u8; 40] = core::array::from_fn(|_| byte());
            let t = ToeplitzTable::new(&key);
            for _ in 0..20 {
                let input: [u8; 12] = core::array::from_fn(|_| byte());
                assert_eq!(t.hash(&input), wire::toeplitz_hash(&key, &input));
                assert_eq!(t.hash(&input[..8]), wire::toeplitz_hash(&key, &input[..8]));
            }
        }
    }

    #[test]
    fn le_sum_folds_to_wires_sum() {
        let data: Vec<u8> = (0..1600u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in (0..140).chain([255, 256, 1480, 1600]) {
            let d = &data[..n];
            assert_eq!(
                !fold16(le_sum(d)).swap_bytes(),
                wire::ip_compute_csum(d),
                "len {n}"
            );
        }
        // Sums of all-ones and high-nibble words carry out of every 16-bit
        // column: the folds must put every carry back.
        for n in 0..128 {
            let ones = vec![0xFFu8; n];
            let high = vec![0xF0u8; n];
            for d in [&ones, &high] {
                assert_eq!(
                    !fold16(le_sum(d)).swap_bytes(),
                    wire::ip_compute_csum(d),
                    "len {n}"
                );
            }
        }
        // All ones stays all ones (never the zero of the other form).
        assert_eq!(fold16(le_sum(&[0xFF; 20])), 0xFFFF);
        assert_eq!(fold16(le_sum(&[])), 0);
        assert_eq!(fold16((1u64 << 48) - 1), 0xFFFF);
        assert_eq!(fold16(u64::MAX), 0xFFFF);
        assert_eq!(fold16(1u64 << 63), 0x8000);
        assert_eq!(fold16(0x0001_0000_0000_0000u64), 1);
    }

    #[test]
    fn le_sum_matches_a_byte_at_a_time_sum() {
        // Every length 0..=200 at every start 0..8 (alignment), over
        // pseudo-random bytes and over all-0xFF bytes (the most carries),
        // against 16-bit little-endian words added one at a time.
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let random: Vec<u8> = (0..208)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let ones = vec![0xFFu8; 208];
        for buf in [&random, &ones] {
            for start in 0..8 {
                for len in 0..=200 {
                    let data = &buf[start..start + len];
                    let reference: u64 = data
                        .chunks(2)
                        .map(|p| u64::from(p[0]) | (u64::from(*p.get(1).unwrap_or(&0)) << 8))
                        .sum();
                    assert_eq!(
                        fold16(le_sum(data)),
                        fold16(reference),
                        "len {len} start {start}"
                    );
                }
            }
        }
    }

    #[test]
    fn rx_checksum_status_bits() {
        use crate::testutil::{MAC_A, MAC_B, tcp_frame, udp_frame};
        let (a, b) = (
            core::net::Ipv4Addr::new(198, 18, 0, 1),
            core::net::Ipv4Addr::new(198, 18, 0, 2),
        );
        let all = r::RXCSUM_IPOFL | r::RXCSUM_TUOFL;
        for len in [0, 1, 18, 1471] {
            let udp = udp_frame(MAC_A, MAC_B, a, b, (1, 2), len);
            assert_eq!(
                rx_checksum(&udp, all, false),
                RxStatusError::IPCS | RxStatusError::UDPCS,
                "udp {len}"
            );
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut tcp = tcp_frame(MAC_A, MAC_B, a, b, (1, 2), 9, 0x10, &payload);
            assert_eq!(
                rx_checksum(&tcp, all, false),
                RxStatusError::IPCS | RxStatusError::TCPCS,
                "tcp {len}"
            );
            let last = tcp.len() - 1;
            tcp[last] ^= 0x40;
            assert_eq!(
                rx_checksum(&tcp, all, false),
                RxStatusError::IPCS | RxStatusError::TCPCS | RxStatusError::TCPE,
                "bad tcp {len}"
            );
            tcp[22] ^= 1; // TTL: the IPv4 header checksum no longer holds
            assert_eq!(
                rx_checksum(&tcp, all, false),
                RxStatusError::IPCS | RxStatusError::IPE
            );
            assert_eq!(
                rx_checksum(&tcp, r::RXCSUM_TUOFL, false),
                RxStatusError::TCPCS | RxStatusError::TCPE
            );
        }
        // UDP with no checksum (0) is not checked.
        let mut udp = udp_frame(MAC_A, MAC_B, a, b, (1, 2), 10);
        udp[40..42].fill(0);
        udp[45] ^= 0xFF;
        assert_eq!(
            rx_checksum(&udp, all, false),
            RxStatusError::IPCS | RxStatusError::UDPCS
        );
        // IPv4 options (IHL 6, four NOPs) are summed into the header
        // checksum and skipped before the datagram.
        let base = udp_frame(MAC_A, MAC_B, a, b, (1, 2), 10);
        let mut opt = base[..34].to_vec();
        opt.extend_from_slice(&[1, 1, 1, 1]);
        opt.extend_from_slice(&base[34..]);
        opt[14] = 0x46;
        let tot = u16::from_be_bytes([opt[16], opt[17]]) + 4;
        opt[16..18].copy_from_slice(&tot.to_be_bytes());
        opt[24..26].fill(0);
        let c = wire::ip_fast_csum(&opt[14..38]);
        opt[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            rx_checksum(&opt, all, false),
            RxStatusError::IPCS | RxStatusError::UDPCS
        );
        opt[35] ^= 0x10; // an option byte: the header sum breaks
        assert_eq!(
            rx_checksum(&opt, all, false),
            RxStatusError::IPCS | RxStatusError::IPE
        );
        // Truncated: the total length runs past the frame, no L4 check;
        // a header longer than the frame, no check at all.
        let mut short = base.clone();
        short[16..18].copy_from_slice(&0x0400u16.to_be_bytes());
        short[24..26].fill(0);
        let c = wire::ip_fast_csum(&short[14..34]);
        short[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(rx_checksum(&short, all, false), RxStatusError::IPCS);
        assert_eq!(rx_checksum(&base[..30], all, false), RxStatusError::empty());
    }

    /// The receive checksum offload from its definition: big-endian
    /// 16-bit words summed one at a time, every field parsed on its own.
    fn rx_checksum_reference(frame: &[u8], rxcsum: u32) -> RxStatusError {
        let sum = |d: &[u8]| -> u64 {
            d.chunks(2)
                .map(|p| u64::from(u16::from_be_bytes([p[0], *p.get(1).unwrap_or(&0)])))
                .sum()
        };
        let ok = |s: u64| fold16(s) == 0xFFFF;
        let l3 = match (frame.get(12..14), frame.get(16..18)) {
            (Some([8, 0]), _) => 14,
            (Some([0x81, 0]), Some([8, 0])) => 18,
            _ => return RxStatusError::empty(),
        };
        let ip = &frame[l3..];
        if ip.len() < 20 || ip[0] >> 4 != 4 {
            return RxStatusError::empty();
        }
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        if ihl < 20 || ip.len() < ihl {
            return RxStatusError::empty();
        }
        let mut st = RxStatusError::empty();
        if rxcsum & r::RXCSUM_IPOFL != 0 {
            st |= RxStatusError::IPCS;
            if !ok(sum(&ip[..ihl])) {
                return st | RxStatusError::IPE;
            }
        }
        let fragment = ip[6] & 0x3F != 0 || ip[7] != 0;
        if rxcsum & r::RXCSUM_TUOFL == 0 || fragment {
            return st;
        }
        let tot_len = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if tot_len < ihl || tot_len > ip.len() {
            return st;
        }
        let l4 = &ip[ihl..tot_len];
        let (bit, min_len) = match ip[9] {
            6 => (RxStatusError::TCPCS, 20),
            17 => (RxStatusError::UDPCS, 8),
            _ => return st,
        };
        if l4.len() < min_len {
            return st;
        }
        st |= bit;
        if ip[9] == 17 && l4[6..8] == [0, 0] {
            return st;
        }
        let pseudo = sum(&ip[12..20]) + u64::from(ip[9]) + l4.len() as u64;
        if !ok(pseudo + sum(l4)) {
            st |= RxStatusError::TCPE;
        }
        st
    }

    #[test]
    fn rx_checksum_matches_its_definition_on_mangled_frames() {
        use crate::testutil::{MAC_A, MAC_B, tcp_frame, udp_frame};
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut rand = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let (a, b) = (
            core::net::Ipv4Addr::new(198, 18, 0, 1),
            core::net::Ipv4Addr::new(198, 18, 7, 200),
        );
        let mut checked = [0usize; 3];
        for i in 0..6000 {
            let len = rand(200);
            let payload: Vec<u8> = (0..len).map(|_| rand(256) as u8).collect();
            let mut f = if i % 2 == 0 {
                udp_frame(MAC_A, MAC_B, a, b, (rand(65536) as u16, 53), len)
            } else {
                let flags = rand(256) as u8;
                tcp_frame(
                    MAC_A,
                    MAC_B,
                    a,
                    b,
                    (80, 40000),
                    rand(1 << 30) as u32,
                    flags,
                    &payload,
                )
            };
            match i % 8 {
                // An 802.1Q tag before the EtherType.
                1 => {
                    f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
                }
                // IPv4 options (NOPs), IHL and lengths fixed up.
                2 => {
                    let n = 4 * (1 + rand(10));
                    f.splice(34..34, core::iter::repeat_n(1u8, n));
                    f[14] = 0x45 + (n / 4) as u8;
                    let tot = u16::from_be_bytes([f[16], f[17]]) + n as u16;
                    f[16..18].copy_from_slice(&tot.to_be_bytes());
                    f[24..26].fill(0);
                    let c = wire::ip_fast_csum(&f[14..34 + n]);
                    f[24..26].copy_from_slice(&c.to_be_bytes());
                }
                _ => {}
            }
            // Ethernet padding past the datagram, as short frames carry.
            f.resize(f.len().max(60) + rand(3) * rand(9), 0);
            // Then mangle: a random byte, a header field, or a cut.
            match rand(6) {
                0 => {
                    let at = rand(f.len());
                    f[at] = rand(256) as u8;
                }
                1 => {
                    // Version/IHL, flags/fragment offset, protocol or length.
                    let at = [14, 20, 21, 23, 16, 17, 12, 13][rand(8)];
                    f[at] = [0, 1, 0x45, 0x46, 0x20, 0x40, 6, 17, 0xFF][rand(9)];
                }
                2 => f.truncate(rand(f.len() + 1)),
                3 => {
                    // The UDP checksum to 0 (none) or the last byte off.
                    if f.len() > 41 {
                        f[40..42].fill(0);
                    }
                    let last = f.len() - 1;
                    f[last] ^= 1;
                }
                _ => {}
            }
            for rxcsum in [
                0,
                r::RXCSUM_IPOFL,
                r::RXCSUM_TUOFL,
                r::RXCSUM_IPOFL | r::RXCSUM_TUOFL,
            ] {
                let want = rx_checksum_reference(&f, rxcsum);
                assert_eq!(
                    rx_checksum(&f, rxcsum, false),
                    want,
                    "frame {i} rxcsum {rxcsum:#x}: {f:02x?}"
                );
                assert_eq!(
                    rx_checksum_any(&f, rxcsum, false),
                    want,
                    "frame {i} rxcsum {rxcsum:#x}"
                );
                if want.contains(RxStatusError::TCPE) {
                    checked[0] += 1;
                } else if want.intersects(RxStatusError::TCPCS | RxStatusError::UDPCS) {
                    checked[1] += 1;
                } else if want.contains(RxStatusError::IPE) {
                    checked[2] += 1;
                }
            }
        }
        // Every outcome was reached many times.
        assert!(checked.iter().all(|&n| n > 500), "{checked:?}");
    }

    /// The transmit offload vouches for a TCP/UDP checksum exactly when
    /// the receiver's offload would find it good, and a receiver that
    /// takes the vouch reports what its own sum would have.
    #[test]
    fn tx_checksum_vouches_exactly_for_checksums_that_verify() {
        use crate::testutil::{MAC_A, MAC_B, tcp_frame, udp_frame};
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let (a, b) = (
            core::net::Ipv4Addr::new(198, 18, 0, 1),
            core::net::Ipv4Addr::new(198, 18, 7, 200),
        );
        let both = r::RXCSUM_IPOFL | r::RXCSUM_TUOFL;
        let (mut vouched, mut refused) = (0, 0);
        for i in 0..4000 {
            let len = rand(300);
            let payload: Vec<u8> = (0..len).map(|_| rand(256) as u8).collect();
            let (mut f, proto, check) = if i % 2 == 0 {
                (
                    udp_frame(MAC_A, MAC_B, a, b, (rand(65536) as u16, 53), len),
                    17,
                    40,
                )
            } else {
                let f = tcp_frame(MAC_A, MAC_B, a, b, (80, 40000), 7, 0x18, &payload);
                (f, 6, 50)
            };
            // What CHECKSUM_PARTIAL leaves in the field: the pseudo
            // header's sum, right or (one time in three) wrong.
            let l4_len = (f.len() - 34) as u16;
            let mut seed = !csum_tcpudp_magic(a, b, l4_len, proto, 0);
            if rand(3) == 0 {
                seed = seed.wrapping_add(1 + rand(0xFFFE) as u16);
            }
            f[check..check + 2].copy_from_slice(&seed.to_be_bytes());
            match rand(5) {
                // The IPv4 total length past the frame, or short of it.
                0 => {
                    let tot = u16::from_be_bytes([f[16], f[17]]);
                    let tot = tot.wrapping_add(rand(9) as u16).wrapping_sub(4);
                    f[16..18].copy_from_slice(&tot.to_be_bytes());
                }
                // An 802.1Q tag before the EtherType.
                1 => {
                    f.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
                }
                _ => {}
            }
            let vouch = tx_checksum(&mut f, TxPopts::TXSM | TxPopts::IXSM);
            f.resize(f.len().max(60), 0);
            let want = rx_checksum(&f, both, false);
            let good = want.intersects(RxStatusError::TCPCS | RxStatusError::UDPCS)
                && !want.intersects(RxStatusError::TCPE | RxStatusError::IPE);
            assert_eq!(vouch, good, "frame {i}: {want:?}");
            if vouch {
                assert_eq!(rx_checksum(&f, both, true), want, "frame {i}");
                vouched += 1;
            } else if want.contains(RxStatusError::TCPE) {
                refused += 1;
            }
        }
        assert!(vouched > 1500 && refused > 500, "{vouched} {refused}");
    }

    #[test]
    fn mac_filter_exact_entries_and_valid_bits() {
        let own = [0x02, 0, 0, 0, 0, 0x01];
        let other = [0x02, 0, 0, 0, 0, 0x07];
        let mut hw = IgbHw::new(own, None);
        hw.set_bus_master(true);
        hw.wr32(r::RCTL, r::RCTL_EN);
        let frame = |dst: [u8; 6]| {
            let mut f = vec![0u8; 60];
            f[..6].copy_from_slice(&dst);
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
            append_fcs(&mut f);
            f
        };
        // Accepted frames find no ring here: `Missed` means the filter
        // passed them, `Filtered` that it did not.
        let passed = |hw: &mut IgbHw, dst| match hw.receive_frame(Instant::ZERO, &frame(dst)) {
            RxOutcome::Missed { .. } => true,
            RxOutcome::Filtered => false,
            o => panic!("{o:?}"),
        };
        assert!(passed(&mut hw, own), "RAR[0], loaded at reset");
        assert!(!passed(&mut hw, other));
        assert!(!passed(&mut hw, [0xFF; 6]), "broadcast needs BAM");
        let (lo, hi) = rar_from_mac(other);
        hw.wr32(r::ral(3), lo);
        hw.wr32(r::rah(3), hi);
        assert!(passed(&mut hw, other), "a second exact entry");
        hw.wr32(r::rah(3), hi & !r::RAH_AV);
        assert!(
            !passed(&mut hw, other),
            "an entry without AV matches nothing"
        );
        let (lo, hi) = rar_from_mac(own);
        hw.wr32(r::rah(0), hi & !r::RAH_AV);
        assert!(!passed(&mut hw, own), "nor does RAR[0] without AV");
        hw.wr32(r::ral(0), lo ^ 1);
        hw.wr32(r::rah(0), hi);
        assert!(!passed(&mut hw, own), "RAR[0] now holds another address");
        hw.wr32(r::RCTL, r::RCTL_EN | r::RCTL_BAM);
        assert!(passed(&mut hw, [0xFF; 6]));
        assert_eq!(hw.rd32(r::BPRC), 0, "counted only when received");
    }

    #[test]
    fn poll_next_event_is_a_poll_then_next_event() {
        let dev = IgbDevice::new([2, 0, 0, 0, 0, 1], None);
        let us = |n: u64| Instant::ZERO + Duration::from_micros(n);
        {
            let mut hw = dev.lock();
            hw.wr32(r::eitr(2), 50 << 2);
            hw.wr32(r::EIMS, 1 << 2);
            hw.on_timer(us(0));
            hw.rx_event(2, us(0)); // interrupts at once
            hw.on_timer(us(10));
            hw.rx_event(2, us(10)); // held until the interval ends
        }
        assert_eq!(dev.poll_next_event(us(20)), (0, Some(us(50))));
        assert_eq!(dev.next_event(), Some(us(50)));
        assert_eq!(dev.poll_next_event(us(50)), (0, None));
        assert_eq!(dev.lock().vectors[2].last_fire, Some(us(50)));
    }

    #[test]
    fn timers_and_doorbells_are_visited_by_their_bits() {
        let mut hw = IgbHw::new([2, 0, 0, 0, 0, 1], None);
        let us = |n: u64| Instant::ZERO + Duration::from_micros(n);
        hw.wr32(r::eitr(3), 10 << 2);
        hw.wr32(r::eitr(5), 20 << 2);
        // With a frame limit the cause waits for `rx-usecs` from the first
        // frame (the model's rx-frames mode).
        hw.wr32(r::sim_eitr_frames(3), 4);
        hw.wr32(r::sim_eitr_frames(5), 4);
        assert_eq!(hw.next_event(), None, "idle: nothing armed");
        hw.rx_event(3, us(0));
        hw.rx_event(5, us(5));
        hw.rx_event(3, us(7)); // the timer runs from the first frame
        assert_eq!(hw.timers_armed, (1 << 3) | (1 << 5));
        assert_eq!(hw.next_event(), Some(us(10)));
        hw.on_timer(us(9));
        assert_eq!(hw.rd32(r::EICS), 0, "nothing due yet");
        hw.on_timer(us(10));
        assert_eq!(hw.rd32(r::EICS), 1 << 3, "vector 3's cause latched");
        assert_eq!(hw.timers_armed, 1 << 5);
        assert_eq!(hw.next_event(), Some(us(25)));
        hw.on_timer(us(30));
        assert_eq!(hw.rd32(r::EICS), (1 << 3) | (1 << 5));
        assert_eq!((hw.timers_armed, hw.next_event()), (0, None));
        // A frame limit fires at once and arms nothing.
        hw.wr32(r::sim_eitr_frames(3), 2);
        hw.rx_event(3, us(40));
        hw.rx_event(3, us(41));
        assert_eq!(hw.timers_armed, 0);
        assert_eq!(hw.vectors[3].rx_pending, 0, "fired on the second frame");
        // A doorbell on a queue without a ring is no event; `poll` clears it.
        hw.wr32(r::tdt(2), 1);
        assert_eq!(hw.tx_doorbells, 1 << 2);
        assert_eq!(hw.next_event(), None);
        hw.poll(us(50));
        assert_eq!(hw.tx_doorbells, 0);
    }

    #[test]
    fn eitr_throttles_the_vector_from_its_last_interrupt() {
        let mut hw = IgbHw::new([2, 0, 0, 0, 0, 1], None);
        let us = |n: u64| Instant::ZERO + Duration::from_micros(n);
        let bit = 1u32 << 2;
        hw.wr32(r::eitr(2), 50 << 2);
        hw.wr32(r::EIAC, bit); // a delivered cause leaves EICR
        hw.wr32(r::EIMS, bit);
        let frame_at = |hw: &mut IgbHw, t: u64| {
            hw.on_timer(us(t));
            hw.rx_event(2, us(t));
        };
        // The first cause interrupts at once.
        frame_at(&mut hw, 0);
        assert_eq!((hw.eicr & bit, hw.vectors[2].last_fire), (0, Some(us(0))));
        // Inside the interval the interrupt is held until it ends.
        frame_at(&mut hw, 10);
        frame_at(&mut hw, 20);
        assert_eq!(hw.eicr & bit, bit, "held");
        assert_eq!(hw.next_event(), Some(us(50)));
        hw.on_timer(us(49));
        assert_eq!(hw.eicr & bit, bit, "still held");
        hw.on_timer(us(50));
        assert_eq!((hw.eicr & bit, hw.vectors[2].last_fire), (0, Some(us(50))));
        assert_eq!((hw.timers_armed, hw.next_event()), (0, None));
        // A cause after the interval interrupts at once.
        frame_at(&mut hw, 200);
        assert_eq!((hw.eicr & bit, hw.vectors[2].last_fire), (0, Some(us(200))));
        // A masked cause waits for EIMS; unmasked inside the interval, it
        // waits for the interval too.
        hw.wr32(r::EIMC, bit);
        frame_at(&mut hw, 210);
        assert_eq!((hw.eicr & bit, hw.timers_armed), (bit, 0));
        hw.wr32(r::EIMS, bit);
        assert_eq!(hw.next_event(), Some(us(250)));
        // A new interval counts from the last interrupt.
        hw.wr32(r::eitr(2), (20 << 2) | r::EITR_CNT_IGNR);
        assert_eq!(hw.next_event(), Some(us(220)));
        hw.on_timer(us(220));
        assert_eq!((hw.eicr & bit, hw.vectors[2].last_fire), (0, Some(us(220))));
        // Without an interval every cause interrupts at once.
        hw.wr32(r::eitr(2), 0);
        frame_at(&mut hw, 221);
        assert_eq!((hw.eicr & bit, hw.vectors[2].last_fire), (0, Some(us(221))));
    }

    /// The receive MAC takes a vouched frame's last four bytes as room
    /// for its FCS: it writes the real FCS when it DMAs them
    /// (`RCTL.SECRC` clear), and a frame nobody vouches for is checked.
    #[test]
    fn a_vouched_fcs_is_written_when_dmaed_and_others_are_checked() {
        let pool = netcore::PagePool::new(netcore::PagePoolParams::default()).unwrap();
        let mac = [2, 0, 0, 0, 0, 2];
        let mut hw = IgbHw::new(mac, None);
        hw.set_bus_master(true);
        let (mut drv, dev) = dma_ring::rx_ring::<PageBuf>(8).unwrap();
        assert!(hw.attach_rx_ring(0, dev).is_ok());
        hw.wr32(r::rxdctl(0), r::RXDCTL_QUEUE_ENABLE);
        drv.alloc_rx_buffers(8, || pool.alloc());
        let mut real = vec![0u8; 60];
        real[..6].copy_from_slice(&mac);
        real[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        real[12..14].copy_from_slice(&[0x88, 0xb5]);
        real[14..]
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = i as u8);
        append_fcs(&mut real);
        let mut lazy = real.clone();
        lazy[60..].fill(0);
        let t = Instant::ZERO;
        let mut dmaed = |hw: &mut IgbHw, frame: &[u8], good: bool| {
            let vouch = if good { Vouch::FCS } else { Vouch::empty() };
            let outcome = hw.receive_frame_checked(t, frame, vouch);
            let got = drv
                .reap()
                .map(|(buf, wb)| buf[..usize::from(wb.length)].to_vec());
            (outcome, got)
        };
        let received = RxOutcome::Received { queue: 0 };
        // The FCS kept (SECRC clear): the host sees the real one.
        hw.wr32(r::RCTL, r::RCTL_EN);
        assert_eq!(dmaed(&mut hw, &lazy, true), (received, Some(real.clone())));
        assert_eq!(dmaed(&mut hw, &real, false), (received, Some(real.clone())));
        // Stripped: the bytes before it, whatever the room held.
        hw.wr32(r::RCTL, r::RCTL_EN | r::RCTL_SECRC);
        assert_eq!(
            dmaed(&mut hw, &lazy, true),
            (received, Some(real[..60].to_vec()))
        );
        // Not vouched for: room that holds no FCS is a CRC error.
        assert_eq!(dmaed(&mut hw, &lazy, false), (RxOutcome::CrcError, None));
        let mut flipped = real.clone();
        flipped[20] ^= 4;
        assert_eq!(dmaed(&mut hw, &flipped, false), (RxOutcome::CrcError, None));
        assert_eq!(hw.rd32(r::CRCERRS), 2);
        assert_eq!(hw.rd32(r::GPRC), 3);
    }

    #[test]
    fn dma_copy_copies_every_length() {
        let src: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..300 {
            let mut dst = vec![0u8; n];
            dma_copy(&mut dst, &src[..n]);
            assert_eq!(dst, src[..n], "len {n}");
        }
    }

    #[test]
    fn mc_hash_is_igbs() {
        // 01:00:5e:00:00:01: hash = (0x00 >> 4) | (0x01 << 4) = 0x010.
        assert_eq!(igb_hash_mc_addr(&[1, 0, 0x5e, 0, 0, 1]), (0, 16));
        assert_eq!(igb_hash_mc_addr(&[1, 0, 0x5e, 0, 0xf0, 0xff]), (0x7F, 0x1F));
    }

    #[test]
    fn tdt_doorbell_is_decoded_for_every_queue_only() {
        for q in 0..r::IGB_MAX_QUEUES {
            assert_eq!(tdt_queue(r::tdt(q)), Some(q));
            assert_eq!(tdt_queue(r::tdt(q) + 4), None);
            assert_eq!(tdt_queue(r::txdctl(q)), None);
            assert_eq!(tdt_queue(r::rdt(q)), None);
        }
        assert_eq!(tdt_queue(r::CTRL), None);
        let dev = IgbDevice::new([2, 0, 0, 0, 0, 1], None);
        dev.wr32(r::tdt(5), 1);
        assert_eq!(
            dev.lock().tx_doorbells,
            1 << 5,
            "the rung doorbell reaches the model"
        );
        assert_eq!(dev.tdt_bells.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn clear_on_read_and_queue_decode() {
        let mut hw = IgbHw::new([2, 0, 0, 0, 0, 1], None);
        hw.stats.gprc = 5;
        hw.stats.gorc = (7 << 32) | 9;
        assert_eq!(hw.rd32(r::GPRC), 5);
        assert_eq!(hw.rd32(r::GPRC), 0);
        assert_eq!(hw.rd32(r::GORCL), 9);
        assert_eq!(hw.rd32(r::GORCH), 7);
        assert_eq!(hw.rd32(r::GORCL), 0);
        assert_eq!(IgbHw::decode_queue_reg(r::rxdctl(5)), Some((true, 5, 0x28)));
        assert_eq!(IgbHw::decode_queue_reg(r::tdt(2)), Some((false, 2, 0x18)));
        assert_eq!(IgbHw::decode_queue_reg(r::rqdpc(1)), Some((true, 1, 0x30)));
        hw.wr32(r::rxdctl(9), r::RXDCTL_QUEUE_ENABLE);
        assert_eq!(hw.rd32(r::rxdctl(9)), r::RXDCTL_QUEUE_ENABLE);
        hw.wr32(r::eitr(3), 50 << 2);
        assert_eq!(hw.rd32(r::eitr(3)), 50 << 2);
    }
}
