//! Register offsets and bits of the simulated igb-class NIC.
//!
//! Mirrors `drivers/net/ethernet/intel/igb/e1000_regs.h` and the bits of
//! `e1000_defines.h` for an 82576: the offsets are the datasheet's, so a
//! register dump reads like the real part's. Only the registers the model
//! implements are listed.
//!
//! # Deviations from Linux
//!
//! A few registers have no twin in the hardware and live in a model-only
//! window at [`SIM_BASE`]: the rx-frames/tx-usecs/tx-frames moderation
//! limits (igb hardware has one interval per vector, `EITR`), and the
//! offset at which the device writes into an rx buffer (igb encodes it in
//! the descriptor's DMA address, `igb_rx_offset()`).

/// Device control. `E1000_CTRL`.
pub const CTRL: u32 = 0x00000;
/// Device status. `E1000_STATUS`.
pub const STATUS: u32 = 0x00008;
/// EEPROM read (`E1000_EERD`): write the word address with `EERD_START`,
/// read the data back with `EERD_DONE`.
pub const EERD: u32 = 0x00014;
/// Extended device control. `E1000_CTRL_EXT`.
pub const CTRL_EXT: u32 = 0x00018;
/// Interrupt cause read (the non-queue causes: link status change).
/// `E1000_ICR`.
pub const ICR: u32 = 0x000C0;
/// Interrupt mask set (non-queue causes). `E1000_IMS`.
pub const IMS: u32 = 0x000D0;
/// Interrupt mask clear (non-queue causes). `E1000_IMC`.
pub const IMC: u32 = 0x000D8;
/// Receive control. `E1000_RCTL`.
pub const RCTL: u32 = 0x00100;
/// Transmit control. `E1000_TCTL`.
pub const TCTL: u32 = 0x00400;
/// General purpose interrupt enable. `E1000_GPIE`.
pub const GPIE: u32 = 0x01514;
/// Extended interrupt cause set. `E1000_EICS`.
pub const EICS: u32 = 0x01520;
/// Extended interrupt mask set/read. `E1000_EIMS`.
pub const EIMS: u32 = 0x01524;
/// Extended interrupt mask clear. `E1000_EIMC`.
pub const EIMC: u32 = 0x01528;
/// Extended interrupt auto clear. `E1000_EIAC`.
pub const EIAC: u32 = 0x0152C;
/// Extended interrupt auto mask. `E1000_EIAM`.
pub const EIAM: u32 = 0x01530;
/// Extended interrupt cause read (clears on read). `E1000_EICR`.
pub const EICR: u32 = 0x01580;
/// Receive checksum control. `E1000_RXCSUM`.
pub const RXCSUM: u32 = 0x05000;
/// Receive long packet maximum length. `E1000_RLPML`.
pub const RLPML: u32 = 0x05004;
/// Multicast table array, 128 registers. `E1000_MTA`.
pub const MTA: u32 = 0x05200;
/// Multiple receive queues command (RSS enable and hashed fields).
/// `E1000_MRQC`.
pub const MRQC: u32 = 0x05818;
/// Redirection table, 32 registers of four 8-bit entries. `E1000_RETA`.
pub const RETA: u32 = 0x05C00;
/// RSS random key, 10 registers (40 bytes). `E1000_RSSRK`.
pub const RSSRK: u32 = 0x05C80;

/// Number of receive address (RAL/RAH) entries of an 82576.
pub const E1000_RAR_ENTRIES_82576: usize = 24;
/// Number of multicast table array registers.
pub const E1000_MTA_REGS: usize = 128;
/// Number of redirection table entries.
pub const IGB_RETA_SIZE: usize = 128;
/// Number of queue pairs the model has.
pub const IGB_MAX_QUEUES: usize = 16;
/// Number of MSI-X vectors: one "other" vector plus one per queue pair.
pub const IGB_MAX_MSIX_VECTORS: usize = IGB_MAX_QUEUES + 1;

/// Receive address low of entry `n`. `E1000_RAL(n)`.
pub const fn ral(n: usize) -> u32 {
    0x05400 + (n as u32) * 8
}
/// Receive address high of entry `n`. `E1000_RAH(n)`.
pub const fn rah(n: usize) -> u32 {
    0x05404 + (n as u32) * 8
}
/// Multicast table array register `n`.
pub const fn mta(n: usize) -> u32 {
    MTA + (n as u32) * 4
}
/// Redirection table register `n`.
pub const fn reta(n: usize) -> u32 {
    RETA + (n as u32) * 4
}
/// RSS key register `n`.
pub const fn rssrk(n: usize) -> u32 {
    RSSRK + (n as u32) * 4
}
/// Interrupt throttle of vector `n`. `E1000_EITR(n)`.
pub const fn eitr(n: usize) -> u32 {
    0x01680 + (n as u32) * 4
}
/// Interrupt vector allocation of queue `n`: rx vector in bits 0..8, tx
/// vector in bits 8..16, each with [`IVAR_VALID`]. `E1000_IVAR0 + 4n`.
pub const fn ivar(n: usize) -> u32 {
    0x01700 + (n as u32) * 4
}
/// Vector of the non-queue ("other") causes. `E1000_IVAR_MISC`.
pub const IVAR_MISC: u32 = 0x01740;

const fn queue_reg(base_lo: u32, base_hi: u32, n: usize) -> u32 {
    if n < 4 {
        base_lo + (n as u32) * 0x100
    } else {
        base_hi + (n as u32) * 0x40
    }
}

/// Rx descriptor base of queue `n` (the model's "attach"). `E1000_RDBAL(n)`.
pub const fn rdbal(n: usize) -> u32 {
    queue_reg(0x02800, 0x0C000, n)
}
/// Rx split and replication control of queue `n`. `E1000_SRRCTL(n)`.
pub const fn srrctl(n: usize) -> u32 {
    queue_reg(0x0280C, 0x0C00C, n)
}
/// Rx descriptor head of queue `n`. `E1000_RDH(n)`.
pub const fn rdh(n: usize) -> u32 {
    queue_reg(0x02810, 0x0C010, n)
}
/// Rx descriptor tail of queue `n`. `E1000_RDT(n)`.
pub const fn rdt(n: usize) -> u32 {
    queue_reg(0x02818, 0x0C018, n)
}
/// Rx descriptor control of queue `n`. `E1000_RXDCTL(n)`.
pub const fn rxdctl(n: usize) -> u32 {
    queue_reg(0x02828, 0x0C028, n)
}
/// Rx queue drop packet count of queue `n` (clears on read). `E1000_RQDPC(n)`.
pub const fn rqdpc(n: usize) -> u32 {
    0x0C030 + (n as u32) * 0x40
}
/// Tx descriptor head of queue `n`. `E1000_TDH(n)`.
pub const fn tdh(n: usize) -> u32 {
    queue_reg(0x03810, 0x0E010, n)
}
/// Tx descriptor tail of queue `n`: writing it is the doorbell.
/// `E1000_TDT(n)`.
pub const fn tdt(n: usize) -> u32 {
    queue_reg(0x03818, 0x0E018, n)
}
/// Tx descriptor control of queue `n`. `E1000_TXDCTL(n)`.
pub const fn txdctl(n: usize) -> u32 {
    queue_reg(0x03828, 0x0E028, n)
}

/// Start of the model-only registers (see the module's deviations).
pub const SIM_BASE: u32 = 0x1F000;
/// Model-only: vector `n`'s rx-frames limit (bits 0..16) and tx-frames
/// limit (bits 16..32).
pub const fn sim_eitr_frames(n: usize) -> u32 {
    SIM_BASE + (n as u32) * 8
}
/// Model-only: vector `n`'s tx-usecs interval, in microseconds.
pub const fn sim_eitr_tx(n: usize) -> u32 {
    SIM_BASE + 4 + (n as u32) * 8
}
/// Model-only: byte offset at which the device writes frames into the rx
/// buffers of queue `n` (`igb_rx_offset()`).
pub const fn sim_rxoff(n: usize) -> u32 {
    SIM_BASE + 0x400 + (n as u32) * 4
}

// Statistics registers (clear on read).
/// CRC error count. `E1000_CRCERRS`.
pub const CRCERRS: u32 = 0x04000;
/// Alignment error count. `E1000_ALGNERRC`.
pub const ALGNERRC: u32 = 0x04004;
/// Missed packets count. `E1000_MPC`.
pub const MPC: u32 = 0x04010;
/// Collision count. `E1000_COLC`.
pub const COLC: u32 = 0x04028;
/// Good packets received count. `E1000_GPRC`.
pub const GPRC: u32 = 0x04074;
/// Broadcast packets received count. `E1000_BPRC`.
pub const BPRC: u32 = 0x04078;
/// Multicast packets received count. `E1000_MPRC`.
pub const MPRC: u32 = 0x0407C;
/// Good packets transmitted count. `E1000_GPTC`.
pub const GPTC: u32 = 0x04080;
/// Good octets received count, low. `E1000_GORCL`.
pub const GORCL: u32 = 0x04088;
/// Good octets received count, high (reading it clears both halves).
pub const GORCH: u32 = 0x0408C;
/// Good octets transmitted count, low. `E1000_GOTCL`.
pub const GOTCL: u32 = 0x04090;
/// Good octets transmitted count, high.
pub const GOTCH: u32 = 0x04094;
/// Receive no buffers count. `E1000_RNBC`.
pub const RNBC: u32 = 0x040A0;
/// Receive undersize count. `E1000_RUC`.
pub const RUC: u32 = 0x040A4;
/// Receive oversize count. `E1000_ROC`.
pub const ROC: u32 = 0x040AC;
/// Total packets received. `E1000_TPR`.
pub const TPR: u32 = 0x040D0;
/// Total packets transmitted. `E1000_TPT`.
pub const TPT: u32 = 0x040D4;
/// Multicast packets transmitted count. `E1000_MPTC`.
pub const MPTC: u32 = 0x040F0;
/// Broadcast packets transmitted count. `E1000_BPTC`.
pub const BPTC: u32 = 0x040F4;
/// TCP segmentation contexts transmitted. `E1000_TSCTC`.
pub const TSCTC: u32 = 0x040F8;
/// TCP segmentation contexts failed. `E1000_TSCTFC`.
pub const TSCTFC: u32 = 0x040FC;

// CTRL / STATUS.
/// Set link up. `E1000_CTRL_SLU`.
pub const CTRL_SLU: u32 = 0x0000_0040;
/// Global reset. `E1000_CTRL_RST`.
pub const CTRL_RST: u32 = 0x0400_0000;
/// Full duplex. `E1000_STATUS_FD`.
pub const STATUS_FD: u32 = 0x0000_0001;
/// Link up. `E1000_STATUS_LU`.
pub const STATUS_LU: u32 = 0x0000_0002;
/// Speed 1000. `E1000_STATUS_SPEED_1000`.
pub const STATUS_SPEED_1000: u32 = 0x0000_0080;

// EERD.
/// Start a read. `E1000_NVM_RW_REG_START`.
pub const EERD_START: u32 = 1;
/// The read is done. `E1000_NVM_RW_REG_DONE`.
pub const EERD_DONE: u32 = 2;
/// Shift of the word address. `E1000_NVM_RW_ADDR_SHIFT`.
pub const EERD_ADDR_SHIFT: u32 = 2;
/// Shift of the data. `E1000_NVM_RW_REG_DATA`.
pub const EERD_DATA_SHIFT: u32 = 16;

// RCTL.
/// Receiver enable. `E1000_RCTL_EN`.
pub const RCTL_EN: u32 = 0x0000_0002;
/// Unicast promiscuous. `E1000_RCTL_UPE`.
pub const RCTL_UPE: u32 = 0x0000_0008;
/// Multicast promiscuous. `E1000_RCTL_MPE`.
pub const RCTL_MPE: u32 = 0x0000_0010;
/// Long packet enable. `E1000_RCTL_LPE`.
pub const RCTL_LPE: u32 = 0x0000_0020;
/// Broadcast accept mode. `E1000_RCTL_BAM`.
pub const RCTL_BAM: u32 = 0x0000_8000;
/// Strip the Ethernet CRC. `E1000_RCTL_SECRC`.
pub const RCTL_SECRC: u32 = 0x0400_0000;
/// Transmit enable. `E1000_TCTL_EN`.
pub const TCTL_EN: u32 = 0x0000_0002;

// RXCSUM.
/// IPv4 checksum offload. `E1000_RXCSUM_IPOFL`.
pub const RXCSUM_IPOFL: u32 = 0x0000_0100;
/// TCP/UDP checksum offload. `E1000_RXCSUM_TUOFL`.
pub const RXCSUM_TUOFL: u32 = 0x0000_0200;
/// Report the RSS hash instead of the packet checksum. `E1000_RXCSUM_PCSD`.
pub const RXCSUM_PCSD: u32 = 0x0000_2000;

// MRQC.
/// Enable RSS. `E1000_MRQC_ENABLE_RSS_MQ`.
pub const MRQC_ENABLE_RSS_MQ: u32 = 0x0000_0002;
/// Hash IPv4 TCP 4-tuples. `E1000_MRQC_RSS_FIELD_IPV4_TCP`.
pub const MRQC_RSS_FIELD_IPV4_TCP: u32 = 0x0001_0000;
/// Hash IPv4 2-tuples. `E1000_MRQC_RSS_FIELD_IPV4`.
pub const MRQC_RSS_FIELD_IPV4: u32 = 0x0002_0000;
/// Hash IPv4 UDP 4-tuples. `E1000_MRQC_RSS_FIELD_IPV4_UDP`.
pub const MRQC_RSS_FIELD_IPV4_UDP: u32 = 0x0040_0000;

/// Address valid bit of RAH. `E1000_RAH_AV`.
pub const RAH_AV: u32 = 0x8000_0000;

// RXDCTL / TXDCTL.
/// Queue enable. `E1000_RXDCTL_QUEUE_ENABLE`.
pub const RXDCTL_QUEUE_ENABLE: u32 = 0x0200_0000;
/// Queue enable. `E1000_TXDCTL_QUEUE_ENABLE`.
pub const TXDCTL_QUEUE_ENABLE: u32 = 0x0200_0000;

// GPIE.
/// MSI-X mode. `E1000_GPIE_MSIX_MODE`.
pub const GPIE_MSIX_MODE: u32 = 0x0000_0010;
/// Extended interrupt auto mask enable. `E1000_GPIE_EIAME`.
pub const GPIE_EIAME: u32 = 0x4000_0000;
/// PBA support. `E1000_GPIE_PBA`.
pub const GPIE_PBA: u32 = 0x8000_0000;

/// Valid bit of an IVAR entry. `E1000_IVAR_VALID`.
pub const IVAR_VALID: u32 = 0x80;
/// Link status change cause (ICR/IMS). `E1000_ICR_LSC`.
pub const ICR_LSC: u32 = 0x0000_0004;

/// The EITR interval field: microseconds shifted left by 2, as
/// `igb_write_itr()` writes it. `E1000_EITR_ITR_INT_MASK`-like.
pub const EITR_INTERVAL_MASK: u32 = 0x0000_7FFC;
/// EITR: the write does not restart the interval counter.
/// `E1000_EITR_CNT_IGNR`.
pub const EITR_CNT_IGNR: u32 = 0x8000_0000;

// EEPROM words.
/// EEPROM word of the first two MAC address bytes (`NVM_MAC_ADDR`); the
/// address is words 0..3, little endian.
pub const NVM_MAC_ADDR: u16 = 0x0000;
/// EEPROM checksum word; words 0..=0x3F sum to [`NVM_SUM`].
pub const NVM_CHECKSUM_REG: u16 = 0x003F;
/// What the first 64 EEPROM words sum to. `NVM_SUM`.
pub const NVM_SUM: u16 = 0xBABA;
