//! The ethtool seam: ring sizes, interrupt coalescing, channels, features
//! and statistics by name, plus printers in the format of the `ethtool`
//! command.
//!
//! Mirrors `struct ethtool_ops` in `include/linux/ethtool.h`, the uapi
//! structs of `include/uapi/linux/ethtool.h`, and the output of
//! `ethtool -i/-g/-c/-l/-k/-S`.

use core::fmt::{self, Write as _};
use std::borrow::Cow;

use crate::errno::Errno;
use crate::netdevice::{NETDEV_FEATURE_NAMES, NetdevFeatures};

/// Driver identification, as `ethtool -i` prints it.
///
/// Mirrors `struct ethtool_drvinfo`.
#[doc(alias = "ethtool_drvinfo")]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EthtoolDrvinfo {
    /// Driver name, e.g. `"igb"`.
    pub driver: String,
    /// Driver version.
    pub version: String,
    /// Firmware version.
    pub fw_version: String,
    /// Bus address, e.g. `"0000:00:03.0"`.
    pub bus_info: String,
    /// Number of statistics [`EthtoolOps::get_ethtool_stats`] returns.
    pub n_stats: u32,
}

/// Descriptor ring sizes, as `ethtool -g` prints and `-G` sets them.
///
/// Mirrors `struct ethtool_ringparam`. A maximum of 0 means the ring does
/// not exist (printed `n/a`).
#[doc(alias = "ethtool_ringparam")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthtoolRingparam {
    /// Largest rx ring.
    pub rx_max_pending: u32,
    /// Largest rx mini ring.
    pub rx_mini_max_pending: u32,
    /// Largest rx jumbo ring.
    pub rx_jumbo_max_pending: u32,
    /// Largest tx ring.
    pub tx_max_pending: u32,
    /// Current rx ring size (`ethtool -G rx`).
    pub rx_pending: u32,
    /// Current rx mini ring size.
    pub rx_mini_pending: u32,
    /// Current rx jumbo ring size.
    pub rx_jumbo_pending: u32,
    /// Current tx ring size (`ethtool -G tx`).
    pub tx_pending: u32,
}

/// Interrupt coalescing, as `ethtool -c` prints and `-C` sets it.
///
/// Mirrors `struct ethtool_coalesce`; field names are the kernel's, the
/// doc names the `ethtool` keyword.
#[doc(alias = "ethtool_coalesce")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthtoolCoalesce {
    /// `rx-usecs`: delay an rx interrupt this long after a frame.
    pub rx_coalesce_usecs: u32,
    /// `rx-frames`: or until this many frames arrived.
    pub rx_max_coalesced_frames: u32,
    /// `rx-usecs-irq`.
    pub rx_coalesce_usecs_irq: u32,
    /// `rx-frames-irq`.
    pub rx_max_coalesced_frames_irq: u32,
    /// `tx-usecs`: delay a tx-completion interrupt this long.
    pub tx_coalesce_usecs: u32,
    /// `tx-frames`: or until this many frames were sent.
    pub tx_max_coalesced_frames: u32,
    /// `tx-usecs-irq`.
    pub tx_coalesce_usecs_irq: u32,
    /// `tx-frames-irq`.
    pub tx_max_coalesced_frames_irq: u32,
    /// `stats-block-usecs`.
    pub stats_block_coalesce_usecs: u32,
    /// `adaptive-rx`.
    pub use_adaptive_rx_coalesce: bool,
    /// `adaptive-tx`.
    pub use_adaptive_tx_coalesce: bool,
    /// `pkt-rate-low`.
    pub pkt_rate_low: u32,
    /// `rx-usecs-low`.
    pub rx_coalesce_usecs_low: u32,
    /// `rx-frames-low`.
    pub rx_max_coalesced_frames_low: u32,
    /// `tx-usecs-low`.
    pub tx_coalesce_usecs_low: u32,
    /// `tx-frames-low`.
    pub tx_max_coalesced_frames_low: u32,
    /// `pkt-rate-high`.
    pub pkt_rate_high: u32,
    /// `rx-usecs-high`.
    pub rx_coalesce_usecs_high: u32,
    /// `rx-frames-high`.
    pub rx_max_coalesced_frames_high: u32,
    /// `tx-usecs-high`.
    pub tx_coalesce_usecs_high: u32,
    /// `tx-frames-high`.
    pub tx_max_coalesced_frames_high: u32,
    /// `sample-interval`.
    pub rate_sample_interval: u32,
}

/// Queue counts, as `ethtool -l` prints and `-L` sets them.
///
/// Mirrors `struct ethtool_channels`. A maximum of 0 means the kind does
/// not exist (printed `n/a`).
#[doc(alias = "ethtool_channels")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthtoolChannels {
    /// Most rx-only channels.
    pub max_rx: u32,
    /// Most tx-only channels.
    pub max_tx: u32,
    /// Most other channels (link interrupts, ...).
    pub max_other: u32,
    /// Most combined rx+tx channels.
    pub max_combined: u32,
    /// Current rx-only channels.
    pub rx_count: u32,
    /// Current tx-only channels.
    pub tx_count: u32,
    /// Current other channels.
    pub other_count: u32,
    /// Current combined channels.
    pub combined_count: u32,
}

/// Why an ethtool request was refused.
///
/// Mirrors the `-EINVAL`/`-EOPNOTSUPP` returns of ethtool handlers and the
/// extack message that names the offending parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EthtoolError {
    /// A value out of the accepted range; nothing was changed.
    InvalidParam {
        /// The ethtool keyword, e.g. `"rx"` or `"rx-usecs"`.
        param: &'static str,
        /// The value given.
        value: u64,
        /// What is accepted, e.g. `"64..=4096, a power of two"`.
        accepts: &'static str,
    },
    /// The driver does not implement the operation.
    NotSupported {
        /// The operation, e.g. `"set_coalesce"`.
        op: &'static str,
    },
}

impl fmt::Display for EthtoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EthtoolError::InvalidParam {
                param,
                value,
                accepts,
            } => {
                write!(f, "invalid {param} value {value}: accepts {accepts}")
            }
            EthtoolError::NotSupported { op } => write!(f, "{op}: Operation not supported"),
        }
    }
}

impl core::error::Error for EthtoolError {}

impl From<EthtoolError> for Errno {
    fn from(e: EthtoolError) -> Errno {
        match e {
            EthtoolError::InvalidParam { .. } => Errno::Inval,
            EthtoolError::NotSupported { .. } => Errno::OpNotSupp,
        }
    }
}

/// One named statistic, as `ethtool -S` prints it.
pub type EthtoolStat = (Cow<'static, str>, u64);

/// The ethtool operations of a driver.
///
/// Mirrors `struct ethtool_ops` in `include/linux/ethtool.h`. Every `set_*`
/// validates the whole request first: **an invalid setting changes
/// nothing** and returns [`EthtoolError::InvalidParam`] naming the
/// parameter and its accepted range. Operations a driver does not provide
/// keep the default, which returns [`EthtoolError::NotSupported`].
#[doc(alias = "ethtool_ops")]
pub trait EthtoolOps: Send {
    /// Driver identification. Mirrors `get_drvinfo`.
    fn get_drvinfo(&self) -> EthtoolDrvinfo;

    /// Ring sizes. Mirrors `get_ringparam`.
    fn get_ringparam(&self) -> Result<EthtoolRingparam, EthtoolError> {
        Err(EthtoolError::NotSupported {
            op: "get_ringparam",
        })
    }

    /// Resizes rings (only the `*_pending` fields are read). Mirrors
    /// `set_ringparam`.
    fn set_ringparam(&mut self, ring: &EthtoolRingparam) -> Result<(), EthtoolError> {
        let _ = ring;
        Err(EthtoolError::NotSupported {
            op: "set_ringparam",
        })
    }

    /// Interrupt coalescing. Mirrors `get_coalesce`.
    fn get_coalesce(&self) -> Result<EthtoolCoalesce, EthtoolError> {
        Err(EthtoolError::NotSupported { op: "get_coalesce" })
    }

    /// Sets interrupt coalescing. Mirrors `set_coalesce`.
    fn set_coalesce(&mut self, coalesce: &EthtoolCoalesce) -> Result<(), EthtoolError> {
        let _ = coalesce;
        Err(EthtoolError::NotSupported { op: "set_coalesce" })
    }

    /// Queue counts. Mirrors `get_channels`.
    fn get_channels(&self) -> Result<EthtoolChannels, EthtoolError> {
        Err(EthtoolError::NotSupported { op: "get_channels" })
    }

    /// Sets queue counts (only the `*_count` fields are read). Mirrors
    /// `set_channels`.
    fn set_channels(&mut self, channels: &EthtoolChannels) -> Result<(), EthtoolError> {
        let _ = channels;
        Err(EthtoolError::NotSupported { op: "set_channels" })
    }

    /// `(enabled, changeable)` offloads, as `ethtool -k` shows them.
    /// Mirrors `ETHTOOL_GFEATURES` (`dev->features`, `dev->hw_features`).
    fn get_features(&self) -> Result<(NetdevFeatures, NetdevFeatures), EthtoolError> {
        Err(EthtoolError::NotSupported { op: "get_features" })
    }

    /// Enables exactly `wanted` (`ethtool -K`). Mirrors `ETHTOOL_SFEATURES`
    /// and `ndo_set_features`; a bit outside the changeable set is refused.
    fn set_features(&mut self, wanted: NetdevFeatures) -> Result<(), EthtoolError> {
        let _ = wanted;
        Err(EthtoolError::NotSupported { op: "set_features" })
    }

    /// Statistics by name, in the driver's order. Mirrors
    /// `get_sset_count` + `get_strings` + `get_ethtool_stats`.
    fn get_ethtool_stats(&self) -> Vec<EthtoolStat> {
        Vec::new()
    }
}

fn n_a(v: u32) -> Cow<'static, str> {
    if v == 0 {
        Cow::Borrowed("n/a")
    } else {
        Cow::Owned(v.to_string())
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Prints `ethtool -i IFNAME` output.
pub fn format_drvinfo(info: &EthtoolDrvinfo) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "driver: {}", info.driver);
    let _ = writeln!(s, "version: {}", info.version);
    let _ = writeln!(s, "firmware-version: {}", info.fw_version);
    let _ = writeln!(s, "expansion-rom-version: ");
    let _ = writeln!(s, "bus-info: {}", info.bus_info);
    let _ = writeln!(
        s,
        "supports-statistics: {}",
        if info.n_stats > 0 { "yes" } else { "no" }
    );
    let _ = writeln!(s, "supports-test: no");
    let _ = writeln!(s, "supports-eeprom-access: no");
    let _ = writeln!(s, "supports-register-dump: no");
    let _ = writeln!(s, "supports-priv-flags: no");
    s
}

/// Prints `ethtool -g IFNAME` output.
pub fn format_ringparam(ifname: &str, r: &EthtoolRingparam) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Ring parameters for {ifname}:");
    let _ = writeln!(s, "Pre-set maximums:");
    let _ = writeln!(s, "RX:\t\t\t{}", n_a(r.rx_max_pending));
    let _ = writeln!(s, "RX Mini:\t\t{}", n_a(r.rx_mini_max_pending));
    let _ = writeln!(s, "RX Jumbo:\t\t{}", n_a(r.rx_jumbo_max_pending));
    let _ = writeln!(s, "TX:\t\t\t{}", n_a(r.tx_max_pending));
    let _ = writeln!(s, "Current hardware settings:");
    let _ = writeln!(s, "RX:\t\t\t{}", n_a(r.rx_pending));
    let _ = writeln!(s, "RX Mini:\t\t{}", n_a(r.rx_mini_pending));
    let _ = writeln!(s, "RX Jumbo:\t\t{}", n_a(r.rx_jumbo_pending));
    let _ = writeln!(s, "TX:\t\t\t{}", n_a(r.tx_pending));
    s
}

/// Prints `ethtool -c IFNAME` output.
pub fn format_coalesce(ifname: &str, c: &EthtoolCoalesce) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Coalesce parameters for {ifname}:");
    let _ = writeln!(
        s,
        "Adaptive RX: {}  TX: {}",
        on_off(c.use_adaptive_rx_coalesce),
        on_off(c.use_adaptive_tx_coalesce)
    );
    let groups: [&[(&str, u32)]; 5] = [
        &[
            ("stats-block-usecs", c.stats_block_coalesce_usecs),
            ("sample-interval", c.rate_sample_interval),
            ("pkt-rate-low", c.pkt_rate_low),
            ("pkt-rate-high", c.pkt_rate_high),
        ],
        &[
            ("rx-usecs", c.rx_coalesce_usecs),
            ("rx-frames", c.rx_max_coalesced_frames),
            ("rx-usecs-irq", c.rx_coalesce_usecs_irq),
            ("rx-frames-irq", c.rx_max_coalesced_frames_irq),
        ],
        &[
            ("tx-usecs", c.tx_coalesce_usecs),
            ("tx-frames", c.tx_max_coalesced_frames),
            ("tx-usecs-irq", c.tx_coalesce_usecs_irq),
            ("tx-frames-irq", c.tx_max_coalesced_frames_irq),
        ],
        &[
            ("rx-usecs-low", c.rx_coalesce_usecs_low),
            ("rx-frames-low", c.rx_max_coalesced_frames_low),
            ("tx-usecs-low", c.tx_coalesce_usecs_low),
            ("tx-frames-low", c.tx_max_coalesced_frames_low),
        ],
        &[
            ("rx-usecs-high", c.rx_coalesce_usecs_high),
            ("rx-frames-high", c.rx_max_coalesced_frames_high),
            ("tx-usecs-high", c.tx_coalesce_usecs_high),
            ("tx-frames-high", c.tx_max_coalesced_frames_high),
        ],
    ];
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        for (name, v) in *group {
            let _ = writeln!(s, "{name}: {v}");
        }
    }
    s
}

/// Prints `ethtool -l IFNAME` output.
pub fn format_channels(ifname: &str, c: &EthtoolChannels) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Channel parameters for {ifname}:");
    let _ = writeln!(s, "Pre-set maximums:");
    let _ = writeln!(s, "RX:\t\t{}", n_a(c.max_rx));
    let _ = writeln!(s, "TX:\t\t{}", n_a(c.max_tx));
    let _ = writeln!(s, "Other:\t\t{}", n_a(c.max_other));
    let _ = writeln!(s, "Combined:\t{}", n_a(c.max_combined));
    let _ = writeln!(s, "Current hardware settings:");
    let _ = writeln!(s, "RX:\t\t{}", n_a(c.rx_count));
    let _ = writeln!(s, "TX:\t\t{}", n_a(c.tx_count));
    let _ = writeln!(s, "Other:\t\t{}", n_a(c.other_count));
    let _ = writeln!(s, "Combined:\t{}", n_a(c.combined_count));
    s
}

/// Prints `ethtool -k IFNAME` output: every known feature, `on`/`off`,
/// with ` [fixed]` when it is not in `changeable`.
pub fn format_features(
    ifname: &str,
    enabled: NetdevFeatures,
    changeable: NetdevFeatures,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Features for {ifname}:");
    for &(f, name) in NETDEV_FEATURE_NAMES {
        let fixed = if changeable.contains(f) {
            ""
        } else {
            " [fixed]"
        };
        let _ = writeln!(s, "{name}: {}{fixed}", on_off(enabled.contains(f)));
    }
    s
}

/// Prints `ethtool -S IFNAME` output.
pub fn format_stats(stats: &[EthtoolStat]) -> String {
    let mut s = String::from("NIC statistics:\n");
    for (name, v) in stats {
        let _ = writeln!(s, "     {name}: {v}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ringparam_text() {
        let r = EthtoolRingparam {
            rx_max_pending: 4096,
            tx_max_pending: 4096,
            rx_pending: 256,
            tx_pending: 256,
            ..Default::default()
        };
        let t = format_ringparam("eth0", &r);
        assert!(t.starts_with("Ring parameters for eth0:\nPre-set maximums:\nRX:\t\t\t4096\n"));
        assert!(t.contains("RX Mini:\t\tn/a\n"));
        assert!(t.ends_with("Current hardware settings:\nRX:\t\t\t256\nRX Mini:\t\tn/a\nRX Jumbo:\t\tn/a\nTX:\t\t\t256\n"));
    }

    #[test]
    fn coalesce_channels_stats_features_text() {
        let c = EthtoolCoalesce {
            rx_coalesce_usecs: 3,
            rx_max_coalesced_frames: 16,
            ..Default::default()
        };
        let t = format_coalesce("eth0", &c);
        assert!(t.contains("Adaptive RX: off  TX: off\n"));
        assert!(t.contains("\nrx-usecs: 3\nrx-frames: 16\n"));
        let ch = EthtoolChannels {
            max_combined: 8,
            combined_count: 4,
            ..Default::default()
        };
        let t = format_channels("eth0", &ch);
        assert!(t.contains("Combined:\t8\n") && t.ends_with("Combined:\t4\n"));
        let t = format_stats(&[
            ("rx_packets".into(), 12),
            (Cow::Owned("tx_queue_0_packets".into()), 3),
        ]);
        assert_eq!(
            t,
            "NIC statistics:\n     rx_packets: 12\n     tx_queue_0_packets: 3\n"
        );
        let t = format_features(
            "eth0",
            NetdevFeatures::RXCSUM | NetdevFeatures::GRO,
            NetdevFeatures::GRO,
        );
        assert!(t.contains("rx-checksum: on [fixed]\n"));
        assert!(t.contains("rx-gro: on\n"));
        assert!(t.contains("tx-tcp-segmentation: off [fixed]\n"));
        let d = EthtoolDrvinfo {
            driver: "igb".into(),
            n_stats: 3,
            ..Default::default()
        };
        assert!(format_drvinfo(&d).contains("driver: igb\n"));
    }

    #[test]
    fn error_names_param_and_range() {
        let e = EthtoolError::InvalidParam {
            param: "rx",
            value: 3,
            accepts: "64..=4096, a power of two",
        };
        assert_eq!(
            e.to_string(),
            "invalid rx value 3: accepts 64..=4096, a power of two"
        );
        assert_eq!(Errno::from(e), Errno::Inval);
        assert_eq!(
            Errno::from(EthtoolError::NotSupported { op: "set_coalesce" }),
            Errno::OpNotSupp
        );
    }
}
