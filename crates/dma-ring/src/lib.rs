//! NIC descriptor rings shared by a simulated device and its driver.
//!
//! Mirrors the rx and tx descriptor rings of an igb-class NIC as
//! `drivers/net/ethernet/intel/igb/igb_main.c` drives them: `struct
//! igb_ring` with `next_to_use`/`next_to_clean`, the head and tail
//! registers (`RDH`/`RDT`, `TDH`/`TDT`), and the `DD` (descriptor done)
//! write-back.
//!
//! # The ownership protocol
//!
//! A ring is split into a driver half and a device half, each `Send` and
//! not `Clone`, each owned by one thread. Every descriptor has exactly one
//! owner at a time, and ownership moves in two ways only:
//!
//! - **driver → device**: the driver writes descriptors at `next_to_use`
//!   and then stores the tail register with **Release**
//!   ([`RxDriver::post`], [`TxDriver::xmit`], or `stage`/`fill` then
//!   `flush` for a batch). The device loads the tail with **Acquire**, and
//!   only when its cached copy says it has caught up; every descriptor
//!   between its head and the tail is then its own.
//! - **device → driver**: the device writes the descriptor back and stores
//!   its status word with `DD` set, with **Release**, then advances its
//!   head. The driver loads the status word at `next_to_clean` with
//!   **Acquire** and stops at the first descriptor without `DD`
//!   ([`RxDriver::clean_rx_irq`], [`TxDriver::clean_tx_irq`]).
//!
//! Nothing stronger is used, no lock is taken, and the head register is
//! only a diagnostic copy. The rings are generic over the buffer handle
//! `T: Send` (the NIC carries `netcore` page-pool handles); a full ring
//! hands the value back in [`Full`], and a ring torn down or dropped drops
//! or returns every buffer in it exactly once.
//!
//! ```text
//!                 driver                              device
//!   post/fill ──> [next_to_use]  ── tail (Release) ──>  fetch at head
//!                                                         │ fill / send
//!   reap/clean <─ [next_to_clean] <── DD (Release) ──  write_back
//! ```
//!
//! The protocol is checked with loom (`RUSTFLAGS="--cfg loom"`, see the
//! README) and the unit tests run under Miri. This is one of the two places
//! in the workspace allowed `unsafe`.
//!
//! # Example
//!
//! ```
//! use dma_ring::{rx_ring, RxStatusError, RxWriteback};
//!
//! let (mut driver, mut device) = rx_ring::<Vec<u8>>(4).unwrap();
//! // The driver posts empty buffers and bumps the tail.
//! assert_eq!(driver.alloc_rx_buffers(4, || Some(vec![0; 64])), 4);
//! assert!(driver.is_full());
//!
//! // The device receives a frame into the first posted buffer.
//! let mut fetch = device.fetch().unwrap();
//! fetch.buffer_mut()[..3].copy_from_slice(b"abc");
//! fetch.write_back(RxWriteback {
//!     status_error: RxStatusError::EOP | RxStatusError::IPCS,
//!     ..RxWriteback::eop(3)
//! });
//!
//! // The driver reaps it in order; the next descriptor has no DD yet.
//! let mut frames = Vec::new();
//! driver.clean_rx_irq(64, |buf, wb| frames.push((buf, wb)));
//! assert_eq!(frames.len(), 1);
//! let (buf, wb) = &frames[0];
//! assert_eq!(&buf[..wb.length as usize], b"abc");
//! assert!(wb.status_error.contains(RxStatusError::DD | RxStatusError::IPCS));
//!
//! // Device removed: the driver gets back the three buffers still posted.
//! drop(device);
//! assert_eq!(driver.clean_rx_ring().unwrap().len(), 3);
//! ```

mod desc;
mod ring;
mod ringparam;
mod rx;
mod sync;
mod tx;

// The README's example compiles and runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// Each half may move to its own thread.
const _: fn() = || {
    fn assert_send<S: Send>() {}
    assert_send::<RxDriver<Vec<u8>>>();
    assert_send::<RxDevice<Vec<u8>>>();
    assert_send::<TxDriver<Vec<u8>>>();
    assert_send::<TxDevice<Vec<u8>>>();
};

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;

pub use desc::{RxStatusError, RxWriteback, TxCmd, TxDesc, TxPopts, TxStatus};
pub use ring::{DeviceAttached, Full, MAX_RING_ENTRIES, MIN_RING_ENTRIES, RingSizeError};
pub use ringparam::{
    IGB_DEFAULT_RXD, IGB_DEFAULT_TXD, IGB_MAX_RXD, IGB_MAX_TXD, IGB_MIN_RXD, IGB_MIN_TXD, RingSize,
};
pub use rx::{RxDevice, RxDriver, RxFetch, rx_ring};
pub use tx::{TxDevice, TxDriver, TxFetch, tx_ring};
