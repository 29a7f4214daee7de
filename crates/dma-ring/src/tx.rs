//! The transmit ring: the driver fills descriptors and bumps the tail, the
//! device sends them in order and writes back `DD`, the driver cleans them
//! and frees the buffers.
//!
//! Mirrors `igb_tx_map()`, `igb_clean_tx_irq()` and `igb_clean_tx_ring()`
//! in `drivers/net/ethernet/intel/igb/igb_main.c`, and the device's side of
//! the same descriptors.
//!
//! ```text
//!            next_to_clean        TDH                 TDT   next_to_use
//!                 |                |                   |        |
//!   +----+----+---v+----+----+----v+----+----+----+---v+----+--v-+----+
//!   |    |    | DD | DD | DD |fill |fill |fill|fill|stg |stg |    |    |
//!   +----+----+----+----+----+-----+-----+----+----+----+----+----+----+
//!    free      ^^^^^^^^^^^^^^ ^^^^^^^^^^^^^^^^^^^^^^ ^^^^^^^^^  free
//!              sent: driver    filled: owned by the  staged
//!              cleans them     device, sent in       (xmit_more),
//!              (clean_tx_irq)  order from TDH        not flushed
//! ```
//!
//! # Deviations from Linux
//!
//! igb asks for a write-back only on a frame's last descriptor (`RS` with
//! `EOP`) and watches it through `next_to_watch`. This device writes `DD`
//! back on every descriptor it sends, whatever `RS` says, so cleaning is one
//! descriptor at a time.

use core::fmt;
use core::ops::Deref;

use crate::desc::{TxDesc, TxStatus};
use crate::ring::{DeviceAttached, DeviceEnd, DriverEnd, Full, RingSizeError, new_ring};

/// Creates a tx ring of `count` descriptors and splits it into its
/// driver and device halves.
///
/// Mirrors `igb_setup_tx_resources()` in `igb_main.c`. `count` must be a
/// power of two in `2..=4096`; a real device validates the user's value
/// with [`RingSize`](crate::RingSize) first (`64..=4096`).
#[doc(alias = "igb_setup_tx_resources")]
pub fn tx_ring<T: Send>(count: usize) -> Result<(TxDriver<T>, TxDevice<T>), RingSizeError> {
    let (driver, device) = new_ring(count, || None)?;
    Ok((TxDriver { end: driver }, TxDevice { end: device }))
}

/// The driver's half of a tx ring: fills descriptors, cleans sent ones.
///
/// Mirrors the driver side of `struct igb_ring` for transmit (`TDT`).
/// Owned by one thread (the queue's xmit path and its NAPI cleaner, which
/// the kernel serialises with the tx lock); `Send`, not `Clone`.
pub struct TxDriver<T> {
    end: DriverEnd<Option<TxDesc<T>>>,
}

impl<T: Send> TxDriver<T> {
    /// Number of descriptors in the ring.
    pub fn size(&self) -> usize {
        self.end.size()
    }

    /// Descriptors free for filling (`igb_desc_unused()`); the xmit path
    /// stops the queue when this is too small
    /// (`igb_maybe_stop_tx()`).
    #[doc(alias = "igb_desc_unused")]
    #[inline]
    pub fn unused(&self) -> usize {
        self.end.unused()
    }

    /// Descriptors filled and not yet cleaned.
    pub fn len(&self) -> usize {
        self.end.used()
    }

    /// Whether no descriptor can be filled.
    pub fn is_full(&self) -> bool {
        self.end.unused() == 0
    }

    /// Whether every descriptor has been cleaned.
    pub fn is_empty(&self) -> bool {
        self.end.used() == 0
    }

    /// The slot the next fill writes (`tx_ring->next_to_use`).
    pub fn next_to_use(&self) -> usize {
        self.end.next_to_use()
    }

    /// The slot the next clean reads (`tx_ring->next_to_clean`).
    pub fn next_to_clean(&self) -> usize {
        self.end.next_to_clean()
    }

    /// The value last written to the tail register (`TDT`).
    #[doc(alias = "TDT")]
    pub fn tail(&self) -> usize {
        self.end.tail()
    }

    /// A snapshot of the device's head register (`TDH`); diagnostic only.
    #[doc(alias = "TDH")]
    pub fn head(&self) -> usize {
        self.end.head()
    }

    /// Fills one descriptor and bumps the tail: the frame is the device's.
    ///
    /// Mirrors `igb_tx_map()` followed by the tail write. On a full ring
    /// returns `Err(Full(desc))` (`NETDEV_TX_BUSY`): nothing is lost.
    #[doc(alias = "igb_tx_map")]
    pub fn xmit(&mut self, desc: TxDesc<T>) -> Result<(), Full<TxDesc<T>>> {
        self.fill(desc)?;
        self.flush();
        Ok(())
    }

    /// Fills one descriptor without bumping the tail, as igb does while
    /// `netdev_xmit_more()` says more frames follow; [`flush`](Self::flush)
    /// hands them over.
    #[inline]
    pub fn fill(&mut self, desc: TxDesc<T>) -> Result<(), Full<TxDesc<T>>> {
        self.end
            .stage(desc, |slot, desc| {
                debug_assert!(slot.is_none(), "filling over a live descriptor");
                *slot = Some(desc);
            })
            .map_err(Full)
    }

    /// Bumps the tail over every filled descriptor (`writel(i, tx_ring->tail)`).
    #[inline]
    pub fn flush(&mut self) {
        self.end.flush();
    }

    /// Cleans the descriptor at `next_to_clean` if the device has sent it,
    /// giving the descriptor (with its buffer) back; `None` at the first one
    /// without `DD`.
    #[inline]
    pub fn clean(&mut self) -> Option<TxDesc<T>> {
        self.end
            .clean(|slot, status| {
                debug_assert!(TxStatus::from_bits_retain(status).contains(TxStatus::DD));
                slot.take()
            })
            .map(|desc| desc.expect("a written-back tx descriptor holds its buffer"))
    }

    /// Cleans up to `budget` sent descriptors in order, handing each back to
    /// `free`; returns how many.
    ///
    /// Mirrors `igb_clean_tx_irq()` in `igb_main.c` (whose budget is
    /// `tx_work_limit`, `IGB_DEFAULT_TX_WORK` = 128).
    #[doc(alias = "igb_clean_tx_irq")]
    #[inline]
    pub fn clean_tx_irq(&mut self, budget: usize, mut free: impl FnMut(TxDesc<T>)) -> usize {
        let mut done = 0;
        while done < budget {
            let Some(desc) = self.clean() else { break };
            free(desc);
            done += 1;
        }
        done
    }

    /// Cleans up to `budget` sent descriptors in order: `inspect` reads each
    /// one where it lies, then its buffer is dropped in its slot; returns
    /// how many.
    ///
    /// Mirrors `igb_clean_tx_irq()` reading a `tx_buffer` and freeing its
    /// skb in place (`napi_consume_skb()`); unlike
    /// [`clean_tx_irq`](Self::clean_tx_irq) nothing is moved out of the
    /// ring, which matters when the buffer handle is large.
    #[inline]
    pub fn clean_tx_irq_consume(
        &mut self,
        budget: usize,
        mut inspect: impl FnMut(&TxDesc<T>),
    ) -> usize {
        let mut done = 0;
        while done < budget {
            let cleaned = self.end.clean(|slot, status| {
                debug_assert!(TxStatus::from_bits_retain(status).contains(TxStatus::DD));
                if let Some(desc) = slot.as_ref() {
                    inspect(desc);
                }
                // Dropped where it lies.
                *slot = None;
            });
            if cleaned.is_none() {
                break;
            }
            done += 1;
        }
        done
    }

    /// Tears the ring down and returns every buffer still in it, in ring
    /// order from `next_to_clean` (sent first, then unsent). Fails, giving
    /// the driver back, while the device half exists.
    ///
    /// Mirrors `igb_clean_tx_ring()` in `igb_main.c`.
    #[doc(alias = "igb_clean_tx_ring")]
    pub fn clean_tx_ring(self) -> Result<Vec<T>, DeviceAttached<Self>> {
        self.end
            .drain(|slot| slot.take().map(|desc| desc.buf))
            .map_err(|end| DeviceAttached(Self { end }))
    }
}

impl<T> fmt::Debug for TxDriver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxDriver")
            .field("size", &self.end.size())
            .field("next_to_use", &self.end.next_to_use())
            .field("next_to_clean", &self.end.next_to_clean())
            .field("tail", &self.end.tail())
            .field("staged", &self.end.staged())
            .finish()
    }
}

/// The device's half of a tx ring: takes filled descriptors in order, sends
/// them and writes back `DD`.
///
/// Plays the NIC's transmit DMA engine (`TDH`). Owned by one thread; `Send`,
/// not `Clone`. Dropping it stops the device: unsent frames stay in the ring
/// for the driver's teardown.
pub struct TxDevice<T> {
    end: DeviceEnd<Option<TxDesc<T>>>,
}

impl<T: Send> TxDevice<T> {
    /// Number of descriptors in the ring.
    pub fn size(&self) -> usize {
        self.end.size()
    }

    /// The device's head register (`TDH`): the next descriptor it sends.
    #[doc(alias = "TDH")]
    pub fn head(&self) -> usize {
        self.end.head()
    }

    /// Descriptors handed to the device and not yet sent; reads the tail.
    pub fn pending(&mut self) -> usize {
        self.end.pending()
    }

    /// Takes the descriptor at the head if the driver has filled one.
    ///
    /// The fetch derefs to the [`TxDesc`], so the device reads the buffer,
    /// length and offload requests; [`TxFetch::write_back`] marks it sent.
    /// Dropping the fetch without writing back leaves it unsent.
    #[inline]
    pub fn fetch(&mut self) -> Option<TxFetch<'_, T>> {
        let filled = self.end.with_head(|slot| slot.is_some())?;
        assert!(filled, "a filled tx descriptor holds a buffer");
        Some(TxFetch { dev: self })
    }
}

impl<T> fmt::Debug for TxDevice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxDevice")
            .field("size", &self.end.size())
            .field("head", &self.end.head())
            .finish()
    }
}

/// A filled tx descriptor the device is sending.
///
/// The descriptor stays in its slot while the device reads it (a real NIC
/// reads descriptors where they lie, too): the fetch is a view of the slot
/// at the head, which the device owns until [`write_back`](Self::write_back).
/// Dropping the fetch without writing back leaves the descriptor unsent.
pub struct TxFetch<'a, T: Send> {
    dev: &'a mut TxDevice<T>,
}

impl<T: Send> TxFetch<'_, T> {
    /// Writes `DD` back and advances the head: the descriptor and its buffer
    /// belong to the driver again, to be cleaned.
    #[inline]
    pub fn write_back(self) {
        self.dev.end.write_back(TxStatus::DD.bits(), |_| {});
    }
}

impl<T: Send> Deref for TxFetch<'_, T> {
    type Target = TxDesc<T>;

    #[inline]
    fn deref(&self) -> &TxDesc<T> {
        self.dev
            .end
            .head_ref()
            .and_then(Option::as_ref)
            .expect("the fetched descriptor stays at the head until write-back")
    }
}

impl<T: Send> fmt::Debug for TxFetch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxFetch")
            .field("head", &self.dev.head())
            .finish()
    }
}
