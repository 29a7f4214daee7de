//! A simulated igb-class NIC, its bus, its driver and its wires.
//!
//! Mirrors `drivers/net/ethernet/intel/igb`, `drivers/pci` and, on the wire
//! side, `net/sched/sch_netem.c`, `net/bridge` and `drivers/net/tun.c`.
//!
//! What is here now — the PHY/wire side:
//!
//! - [`fcs`](fcs()): the Ethernet frame check sequence (CRC-32 with
//!   `PCLMULQDQ` folding), [`append_fcs`], [`check_fcs`] (`lib/crc32.c`),
//!   [`FcsUnit`] (the MAC's receive check).
//! - [`PhyPort`] and [`Medium`]: the seam between a MAC and what it is
//!   attached to; frames cross it with their FCS. [`MediumPort`] is one port
//!   of a shared medium.
//! - [`VirtualWire`]: a full-duplex link in virtual time with rate,
//!   delay, jitter, loss (random and Gilbert–Elliott), duplication,
//!   reordering, corruption and a bounded transmit queue, configured by
//!   [`LinkConfig`], counted in [`LinkStats`] (netem's model).
//! - [`Switch`]: a learning switch over N links (the bridge's FDB and
//!   flooding).
//! - [`Rng`]: the seedable generator behind every impairment.
//! - [`TapDevice`] (Linux): a TAP interface as a PHY, and
//!   [`unshare_net_namespace`] for tests.
//!
//! The NIC and its driver:
//!
//! - [`IgbHw`] / [`IgbDevice`]: an 82576 at register level ([`e1000_regs`]):
//!   EEPROM, MAC filter, FCS check, RSS, rx/tx DMA over `dma-ring` rings,
//!   interrupt causes, masks and moderation, TSO and checksum offloads,
//!   clear-on-read statistics.
//! - [`PciBus`], [`PciDev`], [`PciDriver`], [`PciDeviceId`]: the bus,
//!   `pci_register_driver`, probe and (hot) removal.
//! - [`IgbDriver`], [`IgbAdapter`], [`IgbPoll`]: the igb driver, its
//!   `netcore::NetDevice` and `netcore::EthtoolOps`, its NAPI poll.
//! - `testutil` (`testutils` feature): hosts, a wire and an event loop in
//!   virtual time, frame builders.
#![deny(unsafe_code)]

pub mod e1000_regs;
mod fcs;
mod igb_ethtool;
mod igb_hw;
mod igb_main;
mod pci;
mod phy;
mod rng;
mod switch;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod tap;
#[cfg(any(test, feature = "testutils"))]
pub mod testutil;
mod virtual_wire;

pub use fcs::{CRC32_POLY_LE, ETH_FCS_LEN, FcsUnit, append_fcs, check_fcs, crc32_le, fcs};
pub use igb_ethtool::{IGB_MAX_COALESCED_FRAMES, IGB_MAX_ITR_USECS, IGB_MIN_ITR_USECS};
pub use igb_hw::{
    E1000_DEV_ID_82576, E1000HwStats, IgbDevice, IgbHw, PCI_CLASS_NETWORK_ETHERNET,
    PCI_VENDOR_ID_INTEL, RxOutcome, igb_eeprom_image, igb_hash_mc_addr,
};
pub use igb_main::{
    DESC_NEEDED, IGB_4K_ITR, IGB_20K_ITR, IGB_70K_ITR, IGB_DEFAULT_ITR, IGB_DEFAULT_TX_WORK,
    IGB_DRIVER_NAME, IGB_HW_FEATURES, IGB_MAX_DATA_PER_TXD, IGB_MAX_RX_QUEUES, IGB_PCI_TBL,
    IGB_SKB_PAD, IGB_START_ITR, IgbAdapter, IgbDriver, IgbNetdev, IgbPoll, IgbRingStats,
    NON_Q_VECTORS, TX_WAKE_THRESHOLD,
};
pub use pci::{
    PCI_ANY_ID, PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PciBdf, PciBus,
    PciConfigHeader, PciDev, PciDeviceId, PciDriver, PciError, PciFunction, pci_match_id,
};
pub use phy::{Delivery, Medium, MediumPort, PhyError, PhyNextEvent, PhyPort, Vouch};
pub use rng::Rng;
pub use switch::{BR_DEFAULT_AGEING_TIME, Switch, SwitchPortStats};
#[cfg(target_os = "linux")]
pub use tap::{
    StopSignals, TUN_F_CSUM, TUN_F_TSO_ECN, TUN_F_TSO4, TUN_F_TSO6, TapDevice, TapOptions,
    VirtioNetHdr, unshare_net_namespace,
};
pub use virtual_wire::{
    GilbertElliott, IFG_LEN, LinkConfig, LinkConfigError, LinkStats, PREAMBLE_SFD_LEN, Side,
    VirtualWire, WireHeads,
};
