//! Descriptor formats: the rx write-back and the tx data descriptor.
//!
//! Mirrors `union e1000_adv_rx_desc` and `union e1000_adv_tx_desc` in
//! `drivers/net/ethernet/intel/igb/e1000_82575.h`, with the bit values of
//! `e1000_defines.h`. Only the fields a simulated device and its driver
//! exchange are kept; DMA addresses become the buffer handle `T`.
//!
//! # Deviations from Linux
//!
//! - igb programs TSO and checksum offload through a separate *context*
//!   descriptor (`igb_tx_ctxtdesc()`); here the MSS, header length and VLAN
//!   tag ride in the data descriptor itself, so one frame needs one slot.
//! - A descriptor carries a handle to a whole buffer, not a DMA address, so
//!   there is no packet-split header buffer and no `pkt_addr`/`hdr_addr`.

use bitflags::bitflags;

bitflags! {
    /// The rx write-back `status_error` word: status bits low, error bits high.
    ///
    /// Mirrors `upper.status_error` of `union e1000_adv_rx_desc` and the
    /// `E1000_RXD_STAT_*` / `E1000_RXDEXT_STATERR_*` bits of
    /// `drivers/net/ethernet/intel/igb/e1000_defines.h`. The device writes the
    /// whole word last, with `DD` set; the driver tests `DD` first
    /// (`igb_test_staterr()`) and reads nothing else of the descriptor before.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct RxStatusError: u32 {
        /// Descriptor done: the device has written this descriptor back.
        #[doc(alias = "E1000_RXD_STAT_DD")]
        const DD = 0x0000_0001;
        /// End of packet: the last descriptor of a frame.
        #[doc(alias = "E1000_RXD_STAT_EOP")]
        const EOP = 0x0000_0002;
        /// Ignore checksum indication: no checksum status is reported.
        #[doc(alias = "E1000_RXD_STAT_IXSM")]
        const IXSM = 0x0000_0004;
        /// The frame carried an 802.1Q tag, stripped into `vlan`.
        #[doc(alias = "E1000_RXD_STAT_VP")]
        const VP = 0x0000_0008;
        /// UDP checksum calculated by the device.
        #[doc(alias = "E1000_RXD_STAT_UDPCS")]
        const UDPCS = 0x0000_0010;
        /// TCP checksum calculated by the device (`L4CS` in the datasheet).
        #[doc(alias = "E1000_RXD_STAT_TCPCS")]
        #[doc(alias = "L4CS")]
        const TCPCS = 0x0000_0020;
        /// IPv4 header checksum calculated by the device.
        #[doc(alias = "E1000_RXD_STAT_IPCS")]
        const IPCS = 0x0000_0040;
        /// Passed in-exact filter.
        #[doc(alias = "E1000_RXD_STAT_PIF")]
        const PIF = 0x0000_0080;
        /// CRC (FCS) error.
        #[doc(alias = "E1000_RXDEXT_STATERR_CE")]
        const CE = 0x0100_0000;
        /// Symbol error.
        #[doc(alias = "E1000_RXDEXT_STATERR_SE")]
        const SE = 0x0200_0000;
        /// Sequence error.
        #[doc(alias = "E1000_RXDEXT_STATERR_SEQ")]
        const SEQ = 0x0400_0000;
        /// Carrier extension error.
        #[doc(alias = "E1000_RXDEXT_STATERR_CXE")]
        const CXE = 0x1000_0000;
        /// TCP/UDP checksum error.
        #[doc(alias = "E1000_RXDEXT_STATERR_TCPE")]
        const TCPE = 0x2000_0000;
        /// IPv4 header checksum error.
        #[doc(alias = "E1000_RXDEXT_STATERR_IPE")]
        const IPE = 0x4000_0000;
        /// Rx data error.
        #[doc(alias = "E1000_RXDEXT_STATERR_RXE")]
        const RXE = 0x8000_0000;
    }
}

impl RxStatusError {
    /// The frame errors that make igb drop a frame.
    ///
    /// Mirrors `E1000_RXDEXT_ERR_FRAME_ERR_MASK` in `e1000_defines.h`.
    #[doc(alias = "E1000_RXDEXT_ERR_FRAME_ERR_MASK")]
    pub const FRAME_ERR_MASK: Self = Self::CE
        .union(Self::SE)
        .union(Self::SEQ)
        .union(Self::CXE)
        .union(Self::RXE);

    /// Whether the frame has one of the errors in [`Self::FRAME_ERR_MASK`].
    pub fn has_frame_error(self) -> bool {
        self.intersects(Self::FRAME_ERR_MASK)
    }
}

/// What the device writes back into an rx descriptor for one received frame.
///
/// Mirrors the `wb` half of `union e1000_adv_rx_desc` in
/// `drivers/net/ethernet/intel/igb/e1000_82575.h`: `upper.length`,
/// `upper.status_error`, `upper.vlan` and `lower.hi_dword.rss`.
///
/// The device need not set [`RxStatusError::DD`]: write-back always sets it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RxWriteback {
    /// Bytes the device wrote into the buffer.
    pub length: u16,
    /// Status and error bits.
    pub status_error: RxStatusError,
    /// The RSS (Toeplitz) hash of the flow, as `skb_set_hash()` receives it.
    pub rss_hash: u32,
    /// The stripped VLAN tag (TCI); meaningful when [`RxStatusError::VP`] is set.
    pub vlan: u16,
}

impl RxWriteback {
    /// A write-back for a whole frame of `length` bytes: `EOP`, nothing else.
    pub fn eop(length: u16) -> Self {
        Self {
            length,
            status_error: RxStatusError::EOP,
            ..Self::default()
        }
    }
}

bitflags! {
    /// Command bits of a tx data descriptor.
    ///
    /// Mirrors the `E1000_ADVTXD_DCMD_*` bits of `cmd_type_len` in
    /// `union e1000_adv_tx_desc` (`drivers/net/ethernet/intel/igb/e1000_82575.h`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct TxCmd: u32 {
        /// End of packet: the last descriptor of a frame.
        #[doc(alias = "E1000_ADVTXD_DCMD_EOP")]
        const EOP = 0x0100_0000;
        /// Insert the FCS.
        #[doc(alias = "E1000_ADVTXD_DCMD_IFCS")]
        const IFCS = 0x0200_0000;
        /// Report status: ask for a DD write-back.
        #[doc(alias = "E1000_ADVTXD_DCMD_RS")]
        const RS = 0x0800_0000;
        /// Insert the VLAN tag in [`TxDesc::vlan`].
        #[doc(alias = "E1000_ADVTXD_DCMD_VLE")]
        const VLE = 0x4000_0000;
        /// TCP segmentation offload, with [`TxDesc::mss`] and [`TxDesc::hdr_len`].
        #[doc(alias = "E1000_ADVTXD_DCMD_TSE")]
        const TSE = 0x8000_0000;
    }
}

bitflags! {
    /// Checksum-insertion requests of a tx data descriptor.
    ///
    /// Mirrors the `E1000_ADVTXD_POPTS_*` bits of `olinfo_status` in
    /// `union e1000_adv_tx_desc`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct TxPopts: u32 {
        /// Insert the IPv4 header checksum.
        #[doc(alias = "E1000_ADVTXD_POPTS_IXSM")]
        const IXSM = 0x0000_0100;
        /// Insert the TCP/UDP checksum.
        #[doc(alias = "E1000_ADVTXD_POPTS_TXSM")]
        const TXSM = 0x0000_0200;
    }
}

bitflags! {
    /// The tx write-back status.
    ///
    /// Mirrors `wb.status` of `union e1000_adv_tx_desc` and
    /// `E1000_TXD_STAT_DD` in `e1000_defines.h`.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct TxStatus: u32 {
        /// Descriptor done: the device has read the buffer and sent the frame.
        #[doc(alias = "E1000_TXD_STAT_DD")]
        const DD = 0x0000_0001;
    }
}

/// One tx data descriptor: a buffer to send, its length, commands and offloads.
///
/// Mirrors `read` of `union e1000_adv_tx_desc` as `igb_tx_map()` fills it,
/// together with the TSO and VLAN fields igb puts in the context descriptor
/// (`igb_tx_ctxtdesc()`; see the module's deviations).
///
/// The driver gives the descriptor to the ring, the device reads it, and
/// the driver gets it back whole from [`TxDriver::clean_tx_irq`](crate::TxDriver::clean_tx_irq).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxDesc<T> {
    /// The buffer holding the frame.
    pub buf: T,
    /// Bytes of `buf` to send (`DTALEN`).
    pub len: u16,
    /// Command bits.
    pub cmd: TxCmd,
    /// Checksum-insertion requests.
    pub popts: TxPopts,
    /// Segment size for TSO (meaningful with [`TxCmd::TSE`]).
    pub mss: u16,
    /// Bytes of L2+L3+L4 headers copied into every TSO segment.
    pub hdr_len: u16,
    /// VLAN TCI to insert (meaningful with [`TxCmd::VLE`]).
    pub vlan: u16,
}

impl<T> TxDesc<T> {
    /// A one-descriptor frame of `len` bytes: `EOP | IFCS | RS`, no offloads,
    /// the command igb writes for the last descriptor of a frame.
    pub fn new(buf: T, len: u16) -> Self {
        Self {
            buf,
            len,
            cmd: TxCmd::EOP | TxCmd::IFCS | TxCmd::RS,
            popts: TxPopts::empty(),
            mss: 0,
            hdr_len: 0,
            vlan: 0,
        }
    }

    /// Requests checksum insertion (`CHECKSUM_PARTIAL` offload).
    pub fn with_csum(mut self, popts: TxPopts) -> Self {
        self.popts |= popts;
        self
    }

    /// Requests TCP segmentation into `mss`-byte segments after `hdr_len`
    /// bytes of headers; TSO implies both checksums are inserted, as
    /// `igb_tso()` arranges.
    pub fn with_tso(mut self, mss: u16, hdr_len: u16) -> Self {
        self.cmd |= TxCmd::TSE;
        self.popts |= TxPopts::IXSM | TxPopts::TXSM;
        self.mss = mss;
        self.hdr_len = hdr_len;
        self
    }

    /// Requests insertion of the VLAN tag `tci`.
    pub fn with_vlan(mut self, tci: u16) -> Self {
        self.cmd |= TxCmd::VLE;
        self.vlan = tci;
        self
    }
}
