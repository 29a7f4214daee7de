//! igb's ethtool operations: ring sizes, coalescing, channels, features
//! and statistics.
//!
//! Mirrors `drivers/net/ethernet/intel/igb/igb_ethtool.c`: `igb_get_drvinfo`,
//! `igb_get_ringparam`/`igb_set_ringparam`, `igb_get_coalesce`/
//! `igb_set_coalesce`, `igb_get_channels`/`igb_set_channels`,
//! `igb_set_features` (in `igb_main.c`) and `igb_get_ethtool_stats` with the
//! names and order of `igb_gstrings_stats[]`, `igb_gstrings_net_stats[]`
//! and the per-queue strings of `igb_get_strings()`.
//!
//! Every setter validates the whole request first; an invalid one returns
//! [`EthtoolError::InvalidParam`] naming the parameter and what it accepts
//! and changes nothing.
//!
//! # Deviations from Linux
//!
//! - Ring sizes must be powers of two in `64..=4096` (the rings mask their
//!   indices); igb clamps into range and rounds up to a multiple of 8.
//! - Up to 16 combined channels (igb's parts have at most 8 RSS queues).
//! - `rx-frames` and `tx-frames` are accepted (`0..=4096`, 0 = no frame
//!   limit), and a fixed `tx-usecs` (10..=10000) delays the tx cause even
//!   with queue pairs: model registers beside igb's single `EITR` per
//!   vector. `rx-usecs` drives `EITR` as igb does: 1 and 3 select the
//!   dynamic modes (`igb_set_itr()`/`igb_update_ring_itr()`), a `tx-usecs`
//!   of 0, 1 or 3 adds no tx delay (the vector's `EITR` throttles its tx
//!   work too, as on igb's paired vectors).
//! - `set_coalesce` writes the new `EITR` at once; igb leaves it to the
//!   vector's next interrupt (`set_itr`), so only the first interrupt
//!   after the change can differ.

use std::borrow::Cow;

use dma_ring::{IGB_MAX_RXD, IGB_MAX_TXD, RingSize};
use netcore::{
    EthtoolChannels, EthtoolCoalesce, EthtoolDrvinfo, EthtoolError, EthtoolOps, EthtoolRingparam,
    EthtoolStat, NetdevFeatures,
};

use crate::igb_main::{
    IGB_DRIVER_NAME, IGB_HW_FEATURES, IGB_MAX_RX_QUEUES, IgbAdapter, NON_Q_VECTORS,
};

/// Largest `rx-usecs`/`tx-usecs`. `IGB_MAX_ITR_USECS`.
pub const IGB_MAX_ITR_USECS: u32 = 10000;
/// Smallest fixed `rx-usecs`/`tx-usecs` above the mode values 0..=3.
/// `IGB_MIN_ITR_USECS`.
pub const IGB_MIN_ITR_USECS: u32 = 10;
/// Largest `rx-frames`/`tx-frames` (model only).
pub const IGB_MAX_COALESCED_FRAMES: u32 = 4096;

const USECS_ACCEPTS: &str = "0, 1, 3 or 10..=10000";

fn check_usecs(param: &'static str, v: u32) -> Result<(), EthtoolError> {
    if v > IGB_MAX_ITR_USECS || (v > 3 && v < IGB_MIN_ITR_USECS) || v == 2 {
        return Err(EthtoolError::InvalidParam {
            param,
            value: u64::from(v),
            accepts: USECS_ACCEPTS,
        });
    }
    Ok(())
}

fn check_frames(param: &'static str, v: u32) -> Result<(), EthtoolError> {
    if v > IGB_MAX_COALESCED_FRAMES {
        return Err(EthtoolError::InvalidParam {
            param,
            value: u64::from(v),
            accepts: "0..=4096",
        });
    }
    Ok(())
}

impl IgbAdapter {
    /// `(name, value)` statistics in igb's order.
    ///
    /// Mirrors `igb_get_strings()` + `igb_get_ethtool_stats()`.
    fn igb_ethtool_stats(&self) -> Vec<EthtoolStat> {
        use netcore::NetDevice as _;
        let net = self.stats64();
        let s = *self.hw_stats.lock();
        let global: [(&'static str, u64); 42] = [
            ("rx_packets", s.gprc),
            ("tx_packets", s.gptc),
            ("rx_bytes", s.gorc),
            ("tx_bytes", s.gotc),
            ("rx_broadcast", s.bprc),
            ("tx_broadcast", s.bptc),
            ("rx_multicast", s.mprc),
            ("tx_multicast", s.mptc),
            ("multicast", s.mprc),
            ("collisions", s.colc),
            ("rx_crc_errors", s.crcerrs),
            ("rx_no_buffer_count", s.rnbc),
            ("rx_missed_errors", s.mpc),
            ("tx_aborted_errors", 0),
            ("tx_carrier_errors", 0),
            ("tx_window_errors", 0),
            ("tx_abort_late_coll", 0),
            ("tx_deferred_ok", 0),
            ("tx_single_coll_ok", 0),
            ("tx_multi_coll_ok", 0),
            ("tx_timeout_count", self.tx_timeout_count),
            ("rx_long_length_errors", s.roc),
            ("rx_short_length_errors", s.ruc),
            ("rx_align_errors", s.algnerrc),
            ("tx_tcp_seg_good", s.tsctc),
            ("tx_tcp_seg_failed", s.tsctfc),
            ("rx_flow_control_xon", 0),
            ("rx_flow_control_xoff", 0),
            ("tx_flow_control_xon", 0),
            ("tx_flow_control_xoff", 0),
            ("rx_long_byte_count", s.gorc),
            ("tx_dma_out_of_sync", 0),
            ("tx_smbus", 0),
            ("rx_smbus", 0),
            ("dropped_smbus", 0),
            ("os2bmc_rx_by_bmc", 0),
            ("os2bmc_tx_by_bmc", 0),
            ("os2bmc_tx_by_host", 0),
            ("os2bmc_rx_by_host", 0),
            ("tx_hwtstamp_timeouts", 0),
            ("tx_hwtstamp_skipped", 0),
            ("rx_hwtstamp_cleared", 0),
        ];
        let netdev: [(&'static str, u64); 9] = [
            ("rx_errors", net.rx_errors),
            ("tx_errors", net.tx_errors),
            ("tx_dropped", net.tx_dropped),
            ("rx_length_errors", net.rx_length_errors),
            ("rx_over_errors", net.rx_over_errors),
            ("rx_frame_errors", net.rx_frame_errors),
            ("rx_fifo_errors", net.rx_fifo_errors),
            ("tx_fifo_errors", net.tx_fifo_errors),
            ("tx_heartbeat_errors", net.tx_heartbeat_errors),
        ];
        let mut out: Vec<EthtoolStat> = global
            .iter()
            .chain(netdev.iter())
            .map(|&(n, v)| (Cow::Borrowed(n), v))
            .collect();
        let rings = &self.ring_stats[..self.num_queues];
        let g = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        for (i, r) in rings.iter().enumerate() {
            out.push((format!("tx_queue_{i}_packets").into(), g(&r.tx_packets)));
            out.push((format!("tx_queue_{i}_bytes").into(), g(&r.tx_bytes)));
            out.push((
                format!("tx_queue_{i}_restart").into(),
                g(&r.tx_restart_queue),
            ));
        }
        for (i, r) in rings.iter().enumerate() {
            out.push((format!("rx_queue_{i}_packets").into(), g(&r.rx_packets)));
            out.push((format!("rx_queue_{i}_bytes").into(), g(&r.rx_bytes)));
            out.push((format!("rx_queue_{i}_drops").into(), g(&r.rx_drops)));
            out.push((format!("rx_queue_{i}_csum_err").into(), g(&r.rx_csum_err)));
            out.push((
                format!("rx_queue_{i}_alloc_failed").into(),
                g(&r.rx_alloc_failed),
            ));
        }
        out
    }
}

impl EthtoolOps for IgbAdapter {
    /// Mirrors `igb_get_drvinfo()`.
    fn get_drvinfo(&self) -> EthtoolDrvinfo {
        EthtoolDrvinfo {
            driver: IGB_DRIVER_NAME.into(),
            version: String::new(),
            fw_version: "1.0.0".into(),
            bus_info: self.bus_info.clone(),
            n_stats: self.igb_ethtool_stats().len() as u32,
        }
    }

    /// Mirrors `igb_get_ringparam()`.
    fn get_ringparam(&self) -> Result<EthtoolRingparam, EthtoolError> {
        Ok(EthtoolRingparam {
            rx_max_pending: IGB_MAX_RXD as u32,
            tx_max_pending: IGB_MAX_TXD as u32,
            rx_pending: self.rx_ring_count as u32,
            tx_pending: self.tx_ring_count as u32,
            ..EthtoolRingparam::default()
        })
    }

    /// Mirrors `igb_set_ringparam()`: mini and jumbo rings do not exist;
    /// the device is reinitialised with the new rings if it is up.
    fn set_ringparam(&mut self, ring: &EthtoolRingparam) -> Result<(), EthtoolError> {
        if ring.rx_mini_pending != 0 {
            return Err(EthtoolError::InvalidParam {
                param: "rx-mini",
                value: u64::from(ring.rx_mini_pending),
                accepts: "0",
            });
        }
        if ring.rx_jumbo_pending != 0 {
            return Err(EthtoolError::InvalidParam {
                param: "rx-jumbo",
                value: u64::from(ring.rx_jumbo_pending),
                accepts: "0",
            });
        }
        let accepts = "64..=4096, a power of two";
        let rx = RingSize::rx_pending(ring.rx_pending as usize).map_err(|_| {
            EthtoolError::InvalidParam {
                param: "rx",
                value: u64::from(ring.rx_pending),
                accepts,
            }
        })?;
        let tx = RingSize::tx_pending(ring.tx_pending as usize).map_err(|_| {
            EthtoolError::InvalidParam {
                param: "tx",
                value: u64::from(ring.tx_pending),
                accepts,
            }
        })?;
        if rx.get() == self.rx_ring_count && tx.get() == self.tx_ring_count {
            return Ok(());
        }
        self.igb_reinit_locked(|a| {
            a.rx_ring_count = rx.get();
            a.tx_ring_count = tx.get();
        })
        .map_err(|_| EthtoolError::NotSupported {
            op: "set_ringparam",
        })
    }

    /// Mirrors `igb_get_coalesce()`.
    fn get_coalesce(&self) -> Result<EthtoolCoalesce, EthtoolError> {
        Ok(self.coalesce)
    }

    /// Mirrors `igb_set_coalesce()`: validates `rx-usecs`/`tx-usecs` as igb
    /// does (and the frame limits, see the deviations), refuses adaptive
    /// and the parameters igb does not support, then rewrites every
    /// vector's moderation.
    fn set_coalesce(&mut self, c: &EthtoolCoalesce) -> Result<(), EthtoolError> {
        check_usecs("rx-usecs", c.rx_coalesce_usecs)?;
        check_usecs("tx-usecs", c.tx_coalesce_usecs)?;
        check_frames("rx-frames", c.rx_max_coalesced_frames)?;
        check_frames("tx-frames", c.tx_max_coalesced_frames)?;
        if c.use_adaptive_rx_coalesce || c.use_adaptive_tx_coalesce {
            return Err(EthtoolError::NotSupported {
                op: "set_coalesce adaptive-rx/adaptive-tx",
            });
        }
        let supported = EthtoolCoalesce {
            rx_coalesce_usecs: c.rx_coalesce_usecs,
            rx_max_coalesced_frames: c.rx_max_coalesced_frames,
            tx_coalesce_usecs: c.tx_coalesce_usecs,
            tx_max_coalesced_frames: c.tx_max_coalesced_frames,
            ..EthtoolCoalesce::default()
        };
        if *c != supported {
            return Err(EthtoolError::NotSupported {
                op: "set_coalesce (only rx-usecs, rx-frames, tx-usecs, tx-frames)",
            });
        }
        self.coalesce = supported;
        self.igb_write_itr_all();
        Ok(())
    }

    /// Mirrors `igb_get_channels()`: combined channels plus the one
    /// "other" (link) vector.
    fn get_channels(&self) -> Result<EthtoolChannels, EthtoolError> {
        Ok(EthtoolChannels {
            max_combined: IGB_MAX_RX_QUEUES as u32,
            max_other: NON_Q_VECTORS as u32,
            other_count: NON_Q_VECTORS as u32,
            combined_count: self.num_queues as u32,
            ..EthtoolChannels::default()
        })
    }

    /// Mirrors `igb_set_channels()`: only combined channels, `other` must
    /// stay 1, the count within `1..=16`; reinitialises the device.
    fn set_channels(&mut self, ch: &EthtoolChannels) -> Result<(), EthtoolError> {
        if ch.rx_count != 0 {
            return Err(EthtoolError::InvalidParam {
                param: "rx",
                value: u64::from(ch.rx_count),
                accepts: "0 (only combined channels)",
            });
        }
        if ch.tx_count != 0 {
            return Err(EthtoolError::InvalidParam {
                param: "tx",
                value: u64::from(ch.tx_count),
                accepts: "0 (only combined channels)",
            });
        }
        if ch.other_count != NON_Q_VECTORS as u32 {
            return Err(EthtoolError::InvalidParam {
                param: "other",
                value: u64::from(ch.other_count),
                accepts: "1",
            });
        }
        let n = ch.combined_count as usize;
        if n == 0 || n > IGB_MAX_RX_QUEUES {
            return Err(EthtoolError::InvalidParam {
                param: "combined",
                value: u64::from(ch.combined_count),
                accepts: "1..=16",
            });
        }
        if n == self.num_queues {
            return Ok(());
        }
        self.igb_reinit_locked(|a| a.num_queues = n)
            .map_err(|_| EthtoolError::NotSupported { op: "set_channels" })
    }

    fn get_features(&self) -> Result<(NetdevFeatures, NetdevFeatures), EthtoolError> {
        Ok((self.features, IGB_HW_FEATURES))
    }

    /// Mirrors `netdev_update_features()` → `netdev_fix_features()` (TSO
    /// needs scatter-gather and checksum offload) → `igb_set_features()`,
    /// which reinitialises the device when rx checksum, hashing or GRO
    /// change while it is up.
    fn set_features(&mut self, wanted: NetdevFeatures) -> Result<(), EthtoolError> {
        let fixed = wanted - IGB_HW_FEATURES;
        if !fixed.is_empty() {
            return Err(EthtoolError::InvalidParam {
                param: "features",
                value: fixed.bits(),
                accepts: "tx-scatter-gather, tx-checksum-ipv4, tx-tcp-segmentation, rx-checksum, rx-hashing, rx-gro",
            });
        }
        let mut f = wanted;
        if !f.contains(NetdevFeatures::SG) || !f.contains(NetdevFeatures::IP_CSUM) {
            f.remove(NetdevFeatures::TSO);
        }
        if f == self.features {
            return Ok(());
        }
        self.igb_reinit_locked(|a| a.set_features_locked(f))
            .map_err(|_| EthtoolError::NotSupported { op: "set_features" })
    }

    /// Mirrors `igb_get_ethtool_stats()`.
    fn get_ethtool_stats(&self) -> Vec<EthtoolStat> {
        self.igb_ethtool_stats()
    }
}
