//! The receive ring: the driver posts empty buffers, the device fills them
//! and writes back `DD`, the driver reaps them in order.
//!
//! Mirrors `igb_alloc_rx_buffers()`, `igb_clean_rx_irq()` and
//! `igb_clean_rx_ring()` in `drivers/net/ethernet/intel/igb/igb_main.c`, and
//! the device's side of the same descriptors.
//!
//! ```text
//!            next_to_clean        RDH                 RDT   next_to_use
//!                 |                |                   |        |
//!   +----+----+---v+----+----+----v+----+----+----+---v+----+--v-+----+
//!   |    |    | DD | DD | DD |post |post |post|post|stg |stg |    |    |
//!   +----+----+----+----+----+-----+-----+----+----+----+----+----+----+
//!    free      ^^^^^^^^^^^^^^ ^^^^^^^^^^^^^^^^^^^^^^ ^^^^^^^^^  free
//!              written back:   posted: owned by the  staged:
//!              driver reaps    device, filled in     driver,
//!              (clean_rx_irq)  order from RDH        not yet
//!                                                    flushed
//! ```

use core::fmt;

use crate::desc::{RxStatusError, RxWriteback};
use crate::ring::{DeviceAttached, DeviceEnd, DriverEnd, Full, RingSizeError, new_ring};

/// One rx descriptor slot: the posted buffer and the write-back fields
/// other than the status word (which is the slot's atomic).
#[derive(Debug)]
struct RxSlot<T> {
    buf: Option<T>,
    length: u16,
    rss_hash: u32,
    vlan: u16,
}

impl<T> RxSlot<T> {
    /// The write-back the device left in this slot, with its status word.
    #[inline(always)]
    fn writeback(&self, status: u32) -> RxWriteback {
        RxWriteback {
            length: self.length,
            status_error: RxStatusError::from_bits_retain(status),
            rss_hash: self.rss_hash,
            vlan: self.vlan,
        }
    }
}

/// Creates an rx ring of `count` descriptors and splits it into its
/// driver and device halves.
///
/// Mirrors `igb_setup_rx_resources()` in `igb_main.c`. `count` must be a
/// power of two in `2..=4096`; a real device validates the user's value
/// with [`RingSize`](crate::RingSize) first (`64..=4096`). Every descriptor
/// starts empty and owned by the driver.
#[doc(alias = "igb_setup_rx_resources")]
pub fn rx_ring<T: Send>(count: usize) -> Result<(RxDriver<T>, RxDevice<T>), RingSizeError> {
    let (driver, device) = new_ring(count, || RxSlot {
        buf: None,
        length: 0,
        rss_hash: 0,
        vlan: 0,
    })?;
    Ok((RxDriver { end: driver }, RxDevice { end: device }))
}

/// The driver's half of an rx ring: posts buffers and reaps received frames.
///
/// Mirrors the driver side of `struct igb_ring` (`next_to_use`,
/// `next_to_clean`, the `RDT` tail register). Owned by one thread (the
/// queue's NAPI poller); `Send`, not `Clone`:
///
/// ```compile_fail
/// let (driver, _device) = dma_ring::rx_ring::<u32>(4).unwrap();
/// let second = driver.clone(); // one owner per half
/// ```
pub struct RxDriver<T> {
    end: DriverEnd<RxSlot<T>>,
}

impl<T: Send> RxDriver<T> {
    /// Number of descriptors in the ring.
    pub fn size(&self) -> usize {
        self.end.size()
    }

    /// Descriptors free for posting.
    ///
    /// Mirrors `igb_desc_unused()` in `igb.h`, without its one reserved slot
    /// (free-running indices tell a full ring from an empty one).
    #[doc(alias = "igb_desc_unused")]
    #[inline]
    pub fn unused(&self) -> usize {
        self.end.unused()
    }

    /// Descriptors posted, staged or written back and not yet reaped.
    pub fn len(&self) -> usize {
        self.end.used()
    }

    /// Whether no descriptor can be posted.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.end.unused() == 0
    }

    /// Whether the ring holds no buffer at all.
    pub fn is_empty(&self) -> bool {
        self.end.used() == 0
    }

    /// The slot the next post writes (`rx_ring->next_to_use`).
    pub fn next_to_use(&self) -> usize {
        self.end.next_to_use()
    }

    /// The slot the next reap reads (`rx_ring->next_to_clean`).
    pub fn next_to_clean(&self) -> usize {
        self.end.next_to_clean()
    }

    /// The value last written to the tail register (`RDT`).
    #[doc(alias = "RDT")]
    pub fn tail(&self) -> usize {
        self.end.tail()
    }

    /// A snapshot of the device's head register (`RDH`); diagnostic only.
    #[doc(alias = "RDH")]
    pub fn head(&self) -> usize {
        self.end.head()
    }

    /// Posts one empty buffer and bumps the tail, handing it to the device.
    ///
    /// On a full ring returns `Err(Full(buf))`: the buffer is given back.
    pub fn post(&mut self, buf: T) -> Result<(), Full<T>> {
        self.stage(buf)?;
        self.flush();
        Ok(())
    }

    /// Writes one empty buffer into the next descriptor without bumping the
    /// tail: the device does not see it until [`flush`](Self::flush).
    #[inline]
    pub fn stage(&mut self, buf: T) -> Result<(), Full<T>> {
        self.end
            .stage(buf, |slot, buf| {
                debug_assert!(slot.buf.is_none(), "posting over a live buffer");
                slot.buf = Some(buf);
            })
            .map_err(Full)
    }

    /// Bumps the tail over every staged descriptor (`writel(i, rx_ring->tail)`).
    #[inline]
    pub fn flush(&mut self) {
        self.end.flush();
    }

    /// Posts up to `count` buffers from `alloc`, stopping early when the ring
    /// is full or `alloc` returns `None`, then bumps the tail once. Returns
    /// how many were posted.
    ///
    /// Mirrors `igb_alloc_rx_buffers()` in `igb_main.c`; `alloc` plays
    /// `igb_alloc_mapped_page()`, and `None` is its allocation failure
    /// (`alloc_rx_buff_failed`), after which the ring is left as it is.
    #[doc(alias = "igb_alloc_rx_buffers")]
    #[inline]
    pub fn alloc_rx_buffers(
        &mut self,
        count: usize,
        mut alloc: impl FnMut() -> Option<T>,
    ) -> usize {
        let mut posted = 0;
        while posted < count && !self.is_full() {
            let Some(buf) = alloc() else { break };
            let staged = self.stage(buf);
            debug_assert!(staged.is_ok(), "the ring was checked not full");
            posted += 1;
        }
        self.flush();
        posted
    }

    /// Reaps the descriptor at `next_to_clean` if the device has written it
    /// back: the buffer and what the device wrote. `None` at the first
    /// descriptor without `DD`; nothing after it is looked at.
    #[inline]
    pub fn reap(&mut self) -> Option<(T, RxWriteback)> {
        self.end
            .clean(|slot, status| (slot.buf.take(), RxSlot::writeback(slot, status)))
            .map(|(buf, wb)| {
                (
                    buf.expect("a written-back rx descriptor holds its buffer"),
                    wb,
                )
            })
    }

    /// Reaps up to `budget` written-back descriptors in order, handing each
    /// buffer and its write-back to `deliver`; returns how many.
    ///
    /// Mirrors `igb_clean_rx_irq()` in `igb_main.c`: it stops at the first
    /// descriptor without `DD`, and the caller refills with
    /// [`alloc_rx_buffers`](Self::alloc_rx_buffers) afterwards.
    ///
    /// # Deviations from Linux
    ///
    /// igb refills inside the loop every `IGB_RX_BUFFER_WRITE` (16) cleaned
    /// descriptors; buffers come from the caller here, so refilling is its
    /// step.
    #[doc(alias = "igb_clean_rx_irq")]
    #[inline]
    pub fn clean_rx_irq(
        &mut self,
        budget: usize,
        mut deliver: impl FnMut(T, RxWriteback),
    ) -> usize {
        let mut done = 0;
        while done < budget {
            let Some((buf, wb)) = self.reap() else { break };
            deliver(buf, wb);
            done += 1;
        }
        done
    }

    /// Reaps up to `budget` written-back descriptors in order, shows each
    /// buffer and its write-back to `peek`, and posts the same buffer again;
    /// bumps the tail once at the end. Returns how many.
    ///
    /// Mirrors `igb_clean_rx_irq()` when every frame is consumed without
    /// keeping its buffer (an XDP program returning `XDP_DROP`):
    /// `igb_reuse_rx_page()` moves the buffer to `next_to_alloc`. On a full
    /// ring — the steady state — that is the slot just cleaned, so the
    /// buffer does not move at all; otherwise it moves to `next_to_use`.
    #[doc(alias = "igb_reuse_rx_page")]
    #[inline]
    pub fn reuse_rx_irq(&mut self, budget: usize, mut peek: impl FnMut(&T, RxWriteback)) -> usize {
        // A full ring stays full (each step frees one slot and fills one),
        // and one that is not full stays so: one loop or the other.
        let mut done = self.end.clean_restage(budget, |slot, status| {
            if let Some(buf) = slot.buf.as_ref() {
                peek(buf, RxSlot::writeback(slot, status));
            }
        });
        if done == 0 {
            while done < budget {
                let Some((buf, wb)) = self.reap() else { break };
                peek(&buf, wb);
                let staged = self.stage(buf);
                debug_assert!(staged.is_ok(), "the slot just reaped is free");
                done += 1;
            }
        }
        self.flush();
        done
    }

    /// Tears the ring down and returns every buffer still in it, in ring
    /// order from `next_to_clean` (written back first, then posted, then
    /// staged). Fails, giving the driver back, while the device half exists.
    ///
    /// Mirrors `igb_clean_rx_ring()` in `igb_main.c`, which runs after
    /// `igb_down()` has stopped the device's DMA.
    #[doc(alias = "igb_clean_rx_ring")]
    pub fn clean_rx_ring(self) -> Result<Vec<T>, DeviceAttached<Self>> {
        self.end
            .drain(|slot| slot.buf.take())
            .map_err(|end| DeviceAttached(Self { end }))
    }
}

impl<T> fmt::Debug for RxDriver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxDriver")
            .field("size", &self.end.size())
            .field("next_to_use", &self.end.next_to_use())
            .field("next_to_clean", &self.end.next_to_clean())
            .field("tail", &self.end.tail())
            .field("staged", &self.end.staged())
            .finish()
    }
}

/// The device's half of an rx ring: takes posted buffers in order, fills
/// them and writes them back.
///
/// Plays the NIC's receive DMA engine (the `RDH` head register). Owned by
/// one thread (the device model); `Send`, not `Clone`. Dropping it is the
/// device stopping its DMA: buffers stay in the ring for the driver.
pub struct RxDevice<T> {
    end: DeviceEnd<RxSlot<T>>,
}

impl<T: Send> RxDevice<T> {
    /// Number of descriptors in the ring.
    pub fn size(&self) -> usize {
        self.end.size()
    }

    /// The device's head register (`RDH`): the next descriptor it fills.
    #[doc(alias = "RDH")]
    pub fn head(&self) -> usize {
        self.end.head()
    }

    /// Descriptors posted to the device and not yet written back; reads the
    /// tail register.
    pub fn pending(&mut self) -> usize {
        self.end.pending()
    }

    /// Takes the descriptor at the head if the driver has posted one; `None`
    /// when the ring is empty for the device (the NIC's `rx_no_buffer_count`
    /// case).
    ///
    /// The buffer is the device's until [`RxFetch::write_back`]; dropping
    /// the fetch without writing back leaves the descriptor posted.
    #[inline]
    pub fn fetch(&mut self) -> Option<RxFetch<'_, T>> {
        let posted = self.end.with_head(|slot| slot.buf.is_some())?;
        assert!(posted, "a posted rx descriptor holds a buffer");
        Some(RxFetch { dev: self })
    }

    /// Fills the descriptor at the head in one step, if the driver has
    /// posted one: `fill` writes the frame into the posted buffer and
    /// returns the write-back, or `None` to leave the descriptor posted
    /// (the frame did not fit). Returns `None` when no descriptor is posted
    /// (the NIC's `rx_no_buffer_count` case), else whether it wrote back.
    ///
    /// [`fetch`](Self::fetch), [`RxFetch::buffer_mut`] and
    /// [`RxFetch::write_back`] in one call, with the descriptor found once:
    /// the receive path of a device model that handles one frame at a time.
    #[inline(always)]
    pub fn fill(&mut self, fill: impl FnOnce(&mut T) -> Option<RxWriteback>) -> Option<bool> {
        self.end.fill_head(
            #[inline(always)]
            |slot| {
                let buf = slot
                    .buf
                    .as_mut()
                    .expect("a posted rx descriptor holds a buffer");
                let wb = fill(buf)?;
                slot.length = wb.length;
                slot.rss_hash = wb.rss_hash;
                slot.vlan = wb.vlan;
                Some((wb.status_error | RxStatusError::DD).bits())
            },
        )
    }
}

impl<T> fmt::Debug for RxDevice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxDevice")
            .field("size", &self.end.size())
            .field("head", &self.end.head())
            .finish()
    }
}

/// A posted rx descriptor the device is filling.
///
/// A view of the descriptor at the device's head: the device writes the
/// frame into the posted buffer where it lies (as a NIC DMAs into the
/// buffer the descriptor points at), and [`write_back`](Self::write_back)
/// hands the descriptor to the driver with the write-back and `DD`.
/// Dropping the fetch without writing back leaves the descriptor posted.
pub struct RxFetch<'a, T: Send> {
    dev: &'a mut RxDevice<T>,
}

impl<T: Send> RxFetch<'_, T> {
    /// The posted buffer.
    #[inline]
    pub fn buffer(&self) -> &T {
        self.dev
            .end
            .head_ref()
            .and_then(|slot| slot.buf.as_ref())
            .expect("the fetched descriptor stays at the head until write-back")
    }

    /// The posted buffer, to write the frame into.
    #[inline(always)]
    pub fn buffer_mut(&mut self) -> &mut T {
        self.dev
            .end
            .head_mut()
            .and_then(|slot| slot.buf.as_mut())
            .expect("the fetched descriptor stays at the head until write-back")
    }

    /// Writes `wb` back with `DD` set and advances the head: the descriptor
    /// and its buffer now belong to the driver.
    #[inline]
    pub fn write_back(self, wb: RxWriteback) {
        let status = (wb.status_error | RxStatusError::DD).bits();
        self.dev.end.write_back(status, |slot| {
            slot.length = wb.length;
            slot.rss_hash = wb.rss_hash;
            slot.vlan = wb.vlan;
        });
    }
}

impl<T: Send> fmt::Debug for RxFetch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxFetch")
            .field("head", &self.dev.head())
            .finish()
    }
}
