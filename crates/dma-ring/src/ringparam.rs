//! Ring sizes as `ethtool -G` sets them.
//!
//! Mirrors the `IGB_*_RXD`/`IGB_*_TXD` limits in
//! `drivers/net/ethernet/intel/igb/igb.h` and the checks of
//! `igb_set_ringparam()` in `igb_ethtool.c`.
//!
//! # Deviations from Linux
//!
//! igb clamps `rx_pending`/`tx_pending` into `64..=4096` and rounds them up
//! to a multiple of 8 (`REQ_RX_DESCRIPTOR_MULTIPLE`). Here the ring masks its
//! indices, so sizes must be powers of two, and a value out of range is
//! rejected with an error naming it instead of being silently changed.

use crate::ring::RingSizeError;

/// igb's default rx ring size.
pub const IGB_DEFAULT_RXD: usize = 256;
/// igb's smallest rx ring size.
pub const IGB_MIN_RXD: usize = 64;
/// igb's largest rx ring size.
pub const IGB_MAX_RXD: usize = 4096;
/// igb's default tx ring size.
pub const IGB_DEFAULT_TXD: usize = 256;
/// igb's smallest tx ring size.
pub const IGB_MIN_TXD: usize = 64;
/// igb's largest tx ring size.
pub const IGB_MAX_TXD: usize = 4096;

/// A validated ring size for a real device: a power of two in `64..=4096`.
///
/// Mirrors the `rx_pending`/`tx_pending` fields of `struct ethtool_ringparam`
/// (`include/uapi/linux/ethtool.h`) as `igb_set_ringparam()` accepts them.
/// The default is 256 ([`IGB_DEFAULT_RXD`]).
///
/// ```
/// use dma_ring::RingSize;
///
/// assert_eq!(RingSize::rx_pending(512).unwrap().get(), 512);
/// let err = RingSize::tx_pending(100).unwrap_err();
/// assert_eq!(err.to_string(), "tx_pending = 100: expected a power of two in 64..=4096");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RingSize(usize);

impl RingSize {
    /// The default ring size, 256 descriptors.
    pub const DEFAULT: Self = Self(IGB_DEFAULT_RXD);

    /// Validates `value` given for the parameter named `param`.
    pub fn new(param: &'static str, value: usize) -> Result<Self, RingSizeError> {
        if value.is_power_of_two() && (IGB_MIN_RXD..=IGB_MAX_RXD).contains(&value) {
            Ok(Self(value))
        } else {
            Err(RingSizeError {
                param,
                value,
                min: IGB_MIN_RXD,
                max: IGB_MAX_RXD,
            })
        }
    }

    /// Validates an rx ring size (`ethtool -G DEV rx N`).
    pub fn rx_pending(value: usize) -> Result<Self, RingSizeError> {
        Self::new("rx_pending", value)
    }

    /// Validates a tx ring size (`ethtool -G DEV tx N`).
    pub fn tx_pending(value: usize) -> Result<Self, RingSizeError> {
        Self::new("tx_pending", value)
    }

    /// The number of descriptors.
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for RingSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl From<RingSize> for usize {
    fn from(size: RingSize) -> usize {
        size.0
    }
}
