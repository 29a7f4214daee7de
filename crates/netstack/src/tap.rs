//! A TAP device as a NIC's PHY, with the padding a real MAC adds.
//!
//! Mirrors what sits between two Ethernet MACs: a transmitting MAC pads a
//! frame to the 60-byte minimum before the FCS (IEEE 802.3 §4.2.3.3), so a
//! receiving NIC never sees a runt from a healthy peer. The kernel's TAP
//! driver hands frames over unpadded (a 42-byte ARP request), which the
//! NIC model would count as undersize (`RUC`) and drop; [`TapPhy`] pads
//! them as the kernel's MAC would have.

use netcore::Instant;
use nic_hw::{ETH_FCS_LEN, PhyError, PhyPort, TapDevice, append_fcs};

/// The minimum Ethernet frame without FCS (`ETH_ZLEN`).
pub const ETH_ZLEN: usize = 60;

/// A [`TapDevice`] as a PHY port, padding short frames from the kernel.
#[derive(Debug)]
pub struct TapPhy {
    tap: TapDevice,
}

impl TapPhy {
    /// Wraps an open TAP device (open it non-blocking: the device thread
    /// polls it).
    pub fn new(tap: TapDevice) -> TapPhy {
        TapPhy { tap }
    }
}

impl PhyPort for TapPhy {
    fn transmit(&mut self, now: Instant, frame: Vec<u8>) -> Result<(), PhyError> {
        self.tap.transmit(now, frame)
    }

    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        let Some(mut frame) = self.tap.receive(now)? else {
            return Ok(None);
        };
        if frame.len() < ETH_ZLEN + ETH_FCS_LEN && frame.len() >= ETH_FCS_LEN {
            frame.truncate(frame.len() - ETH_FCS_LEN);
            frame.resize(ETH_ZLEN, 0);
            append_fcs(&mut frame);
        }
        Ok(Some(frame))
    }

    fn next_event(&self) -> Option<Instant> {
        None
    }
}
