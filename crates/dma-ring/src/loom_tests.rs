//! loom models of the ring protocol: one model per protocol step, the
//! device and the driver on separate threads, rings of 2–4 entries so
//! wrap-around, a full ring and an empty ring are all reached, and a
//! conservation check at the end (every buffer posted comes back exactly
//! once, in order; `loom::alloc::Track` reports any buffer leaked).
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p dma-ring --profile loom --target-dir target/loom --lib loom_`.

use loom::alloc::Track;
use loom::thread;

use crate::{Full, RxWriteback, TxDesc, rx_ring, tx_ring};

type Buf = Track<u32>;

fn buf(id: u32) -> Buf {
    Track::new(id)
}

/// The device fills `count` rx descriptors in order, writing the buffer's
/// id into the length, spinning (yielding) while the ring is empty for it.
fn rx_device(mut device: crate::RxDevice<Buf>, count: u32) {
    let mut filled = 0;
    while filled < count {
        match device.fetch() {
            Some(f) => {
                let id = *f.buffer().get_ref();
                assert_eq!(id, filled, "the device takes descriptors in order");
                f.write_back(RxWriteback::eop(id as u16));
                filled += 1;
            }
            None => thread::yield_now(),
        }
    }
}

/// Post/fill/reap across wrap-around: 3 buffers through a ring of 2. The
/// driver fills the ring, is refused a third post (and gets the buffer
/// back), and reaps while the device fills.
#[test]
fn loom_rx_post_fill_reap_wraps() {
    const N: u32 = 3;
    loom::model(|| {
        let (mut driver, device) = rx_ring::<Buf>(2).unwrap();
        let dev = thread::spawn(move || rx_device(device, N));

        driver.post(buf(0)).unwrap();
        driver.post(buf(1)).unwrap();
        // Nothing reaped yet, so the ring is full whatever the device did.
        let Err(Full(back)) = driver.post(buf(2)) else {
            panic!("a ring of 2 took a third buffer");
        };
        assert_eq!(*back.get_ref(), 2);
        let mut pending = Some(back);

        let mut reaped = Vec::new();
        while reaped.len() < N as usize {
            if let Some(b) = pending.take()
                && let Err(Full(b)) = driver.post(b)
            {
                pending = Some(b);
            }
            match driver.reap() {
                Some((b, wb)) => {
                    assert_eq!(u32::from(wb.length), *b.get_ref());
                    reaped.push(*b.get_ref());
                }
                None => thread::yield_now(),
            }
        }
        dev.join().unwrap();
        assert_eq!(reaped, [0, 1, 2]);
        assert!(driver.is_empty());
        assert!(pending.is_none());
    });
}

/// Batched post and clean (`alloc_rx_buffers`, `clean_rx_irq`) on a ring
/// of 4: 5 buffers, so the tail wraps and the ring fills and drains.
#[test]
fn loom_rx_batched_ring_of_4() {
    const N: u32 = 5;
    loom::model(|| {
        let (mut driver, device) = rx_ring::<Buf>(4).unwrap();
        let dev = thread::spawn(move || rx_device(device, N));
        let mut next = 0;
        let mut reaped = Vec::new();
        while reaped.len() < N as usize {
            let want = (N - next) as usize;
            let posted = driver.alloc_rx_buffers(want, || {
                next += 1;
                Some(buf(next - 1))
            });
            let before = reaped.len();
            driver.clean_rx_irq(4, |b, _| reaped.push(*b.get_ref()));
            if posted == 0 && reaped.len() == before {
                thread::yield_now();
            }
        }
        dev.join().unwrap();
        assert_eq!(reaped, [0, 1, 2, 3, 4]);
        assert!(driver.is_empty());
    });
}

/// Reaping an empty ring and stopping at the first descriptor without
/// `DD` while the device writes it back: 2 buffers in a ring of 4, reaped
/// one call at a time as they appear.
#[test]
fn loom_rx_reap_races_write_back() {
    loom::model(|| {
        let (mut driver, device) = rx_ring::<Buf>(4).unwrap();
        // The device sees an empty ring first, then the posted buffers.
        let dev = thread::spawn(move || rx_device(device, 2));
        assert!(driver.reap().is_none());
        driver.stage(buf(0)).unwrap();
        driver.stage(buf(1)).unwrap();
        driver.flush();
        let mut next = 0;
        while next < 2 {
            if let Some((b, _)) = driver.reap() {
                assert_eq!(*b.get_ref(), next);
                next += 1;
            } else {
                thread::yield_now();
            }
        }
        dev.join().unwrap();
        assert!(driver.reap().is_none());
    });
}

/// Fill/send/clean across wrap-around: 3 descriptors through a ring of 2.
#[test]
fn loom_tx_fill_send_clean_wraps() {
    const N: u32 = 3;
    loom::model(|| {
        let (mut driver, mut device) = tx_ring::<Buf>(2).unwrap();
        let dev = thread::spawn(move || {
            let mut sent = 0;
            while sent < N {
                match device.fetch() {
                    Some(f) => {
                        assert_eq!(*f.buf.get_ref(), sent, "the device sends in order");
                        assert_eq!(u32::from(f.len), 60 + sent);
                        f.write_back();
                        sent += 1;
                    }
                    None => thread::yield_now(),
                }
            }
        });

        let mut next = 0;
        let mut cleaned = Vec::new();
        let mut pending: Option<TxDesc<Buf>> = None;
        while cleaned.len() < N as usize {
            if next < N {
                let desc = pending
                    .take()
                    .unwrap_or_else(|| TxDesc::new(buf(next), 60 + next as u16));
                match driver.xmit(desc) {
                    Ok(()) => next += 1,
                    Err(Full(desc)) => {
                        assert_eq!(*desc.buf.get_ref(), next);
                        pending = Some(desc);
                    }
                }
            }
            match driver.clean() {
                Some(d) => cleaned.push(*d.buf.get_ref()),
                None => thread::yield_now(),
            }
        }
        dev.join().unwrap();
        assert_eq!(cleaned, [0, 1, 2]);
        assert!(driver.is_empty());
    });
}

/// The device is removed while traffic flows: it fills one descriptor and
/// drops its half while the driver reaps; the driver's teardown then hands
/// back every buffer not reaped, and nothing is lost or returned twice.
#[test]
fn loom_rx_device_removed_then_teardown() {
    loom::model(|| {
        let (mut driver, device) = rx_ring::<Buf>(2).unwrap();
        driver.post(buf(0)).unwrap();
        driver.post(buf(1)).unwrap();
        let dev = thread::spawn(move || rx_device(device, 1));

        let mut reaped = Vec::new();
        if let Some((b, _)) = driver.reap() {
            reaped.push(*b.get_ref());
        }
        dev.join().unwrap();
        let rest: Vec<u32> = driver
            .clean_rx_ring()
            .unwrap()
            .iter()
            .map(|b| *b.get_ref())
            .collect();
        reaped.extend(rest);
        assert_eq!(reaped, [0, 1]);
    });
}

/// The driver drops its half first while the device still sends; the
/// device's drop then frees every descriptor left, exactly once (a leak
/// or a double drop fails the `Track` check).
#[test]
fn loom_tx_drop_halves_on_both_threads() {
    loom::model(|| {
        let (mut driver, mut device) = tx_ring::<Buf>(2).unwrap();
        driver.xmit(TxDesc::new(buf(0), 60)).unwrap();
        driver.xmit(TxDesc::new(buf(1), 60)).unwrap();
        let dev = thread::spawn(move || {
            if let Some(f) = device.fetch() {
                assert_eq!(*f.buf.get_ref(), 0);
                f.write_back();
            }
            drop(device);
        });
        if let Some(d) = driver.clean() {
            assert_eq!(*d.buf.get_ref(), 0);
        }
        drop(driver);
        dev.join().unwrap();
    });
}

/// Batched fill with one tail bump (`xmit_more`) and batched clean on a
/// ring of 4: 5 descriptors, so the tail wraps and the ring fills.
#[test]
fn loom_tx_batched_ring_of_4() {
    const N: u32 = 5;
    loom::model(|| {
        let (mut driver, mut device) = tx_ring::<Buf>(4).unwrap();
        let dev = thread::spawn(move || {
            let mut sent = 0;
            while sent < N {
                match device.fetch() {
                    Some(f) => {
                        assert_eq!(*f.buf.get_ref(), sent);
                        f.write_back();
                        sent += 1;
                    }
                    None => thread::yield_now(),
                }
            }
        });
        let mut next = 0;
        let mut cleaned = Vec::new();
        while cleaned.len() < N as usize {
            let mut filled = 0;
            while next < N && !driver.is_full() {
                driver.fill(TxDesc::new(buf(next), 60)).unwrap();
                next += 1;
                filled += 1;
            }
            driver.flush();
            let done = driver.clean_tx_irq(4, |d| cleaned.push(*d.buf.get_ref()));
            if filled == 0 && done == 0 {
                thread::yield_now();
            }
        }
        dev.join().unwrap();
        assert_eq!(cleaned, [0, 1, 2, 3, 4]);
    });
}

/// The device takes a descriptor, drops the fetch without writing it back
/// (the descriptor stays posted with its buffer), then fills it, while the
/// driver polls: the driver never sees it early and gets it exactly once.
#[test]
fn loom_rx_fetch_abandoned_then_filled() {
    loom::model(|| {
        let (mut driver, mut device) = rx_ring::<Buf>(2).unwrap();
        driver.post(buf(0)).unwrap();
        let dev = thread::spawn(move || {
            // Fetched and read, then abandoned without a write-back.
            assert_eq!(
                *device
                    .fetch()
                    .expect("posted before the spawn")
                    .buffer()
                    .get_ref(),
                0
            );
            device
                .fetch()
                .expect("still posted")
                .write_back(RxWriteback::eop(9));
        });
        let got = loop {
            if let Some((b, wb)) = driver.reap() {
                break (*b.get_ref(), wb.length);
            }
            thread::yield_now();
        };
        dev.join().unwrap();
        assert_eq!(got, (0, 9));
        assert!(driver.is_empty());
    });
}

/// Reuse in place (`reuse_rx_irq`, igb's `igb_reuse_rx_page()`): two
/// buffers in a ring of 2 carry 4 frames; the driver sees each frame once,
/// in order, always in the buffer the device filled, and gets both buffers
/// back at teardown.
#[test]
fn loom_rx_reuse_in_place() {
    const FRAMES: u16 = 4;
    loom::model(|| {
        let (mut driver, mut device) = rx_ring::<Buf>(2).unwrap();
        driver.post(buf(0)).unwrap();
        driver.post(buf(1)).unwrap();
        let dev = thread::spawn(move || {
            let mut filled = 0u16;
            while filled < FRAMES {
                match device.fetch() {
                    Some(f) => {
                        let id = *f.buffer().get_ref();
                        assert_eq!(u32::from(filled % 2), id, "buffers come back in ring order");
                        f.write_back(RxWriteback::eop(filled));
                        filled += 1;
                    }
                    None => thread::yield_now(),
                }
            }
            device
        });
        let mut seen = Vec::new();
        while seen.len() < usize::from(FRAMES) {
            let n = driver.reuse_rx_irq(2, |b, wb| seen.push((*b.get_ref(), wb.length)));
            if n == 0 {
                thread::yield_now();
            }
        }
        drop(dev.join().unwrap());
        assert_eq!(seen, [(0, 0), (1, 1), (0, 2), (1, 3)]);
        assert!(driver.is_full());
        assert_eq!(driver.clean_rx_ring().unwrap().len(), 2);
    });
}

/// The device's one-step fill (`RxDevice::fill`, the igb model's receive
/// path): it declines the first descriptor once (the frame did not fit:
/// the descriptor stays posted), then fills 3 buffers through a ring of 2
/// while the driver reaps and posts again; the driver sees each frame
/// once, in order, written into the buffer it posted.
#[test]
fn loom_rx_fill_in_one_step() {
    loom::model(|| {
        let (mut driver, mut device) = rx_ring::<Buf>(2).unwrap();
        driver.post(buf(0)).unwrap();
        driver.post(buf(1)).unwrap();
        let dev = thread::spawn(move || {
            let declined = device.fill(|b| {
                assert_eq!(*b.get_ref(), 0);
                None
            });
            assert_eq!(declined, Some(false), "posted before the spawn");
            let mut filled = 0;
            while filled < 3 {
                match device.fill(|b| Some(RxWriteback::eop(*b.get_ref() as u16))) {
                    Some(wrote) => {
                        assert!(wrote);
                        filled += 1;
                    }
                    None => thread::yield_now(),
                }
            }
        });
        let mut seen = Vec::new();
        while seen.len() < 3 {
            match driver.reap() {
                Some((b, wb)) => {
                    seen.push((*b.get_ref(), wb.length));
                    if seen.len() == 1 {
                        driver.post(buf(2)).unwrap();
                    }
                }
                None => thread::yield_now(),
            }
        }
        dev.join().unwrap();
        assert_eq!(seen, [(0, 0), (1, 1), (2, 2)]);
        assert!(driver.is_empty());
    });
}
