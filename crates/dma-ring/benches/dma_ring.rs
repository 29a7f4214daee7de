//! Benchmarks of the descriptor rings: single-thread rx and tx cycles and a
//! two-thread device/driver throughput figure.

use std::thread;
use std::time::Instant;

use benchkit::{black_box, measure, report};
use dma_ring::{IGB_DEFAULT_RXD, RxWriteback, TxDesc, rx_ring, tx_ring};

/// Descriptors moved per iteration of the single-thread cycles.
const BATCH: usize = 64;
/// Descriptors moved through the ring in the two-thread figure.
const THREADED: u32 = 10_000_000;

fn main() {
    rx_cycle();
    tx_cycle();
    rx_two_threads();
}

/// post → device fill → reap, one batch per iteration, a `u32` handle.
fn rx_cycle() {
    let (mut driver, mut device) = rx_ring::<u32>(IGB_DEFAULT_RXD).unwrap();
    let mut id = 0u32;
    let per_iter = measure(|| {
        driver.alloc_rx_buffers(BATCH, || {
            id = id.wrapping_add(1);
            Some(id)
        });
        while let Some(fetch) = device.fetch() {
            let len = *fetch.buffer() as u16;
            fetch.write_back(RxWriteback::eop(len));
        }
        let mut sum = 0u32;
        driver.clean_rx_irq(BATCH, |buf, wb| {
            sum = sum.wrapping_add(buf ^ u32::from(wb.length));
        });
        black_box(sum)
    });
    let ns = per_iter.as_nanos_f64() / BATCH as f64;
    report("dma_ring rx post+fill+reap", ns, "ns/desc");
    report("dma_ring rx post+fill+reap rate", 1e3 / ns, "Mdesc/s");
}

/// fill → device send → clean, one batch per iteration.
fn tx_cycle() {
    let (mut driver, mut device) = tx_ring::<u32>(IGB_DEFAULT_RXD).unwrap();
    let mut id = 0u32;
    let per_iter = measure(|| {
        for _ in 0..BATCH {
            id = id.wrapping_add(1);
            if driver.fill(TxDesc::new(id, 60)).is_err() {
                break;
            }
        }
        driver.flush();
        let mut bytes = 0u32;
        while let Some(fetch) = device.fetch() {
            bytes += u32::from(fetch.len);
            fetch.write_back();
        }
        driver.clean_tx_irq(BATCH, |d| {
            black_box(d.buf);
        });
        black_box(bytes)
    });
    let ns = per_iter.as_nanos_f64() / BATCH as f64;
    report("dma_ring tx fill+send+clean", ns, "ns/desc");
    report("dma_ring tx fill+send+clean rate", 1e3 / ns, "Mdesc/s");
}

/// The device on its own thread, the driver on this one; descriptors per
/// second end to end through a 256-entry rx ring.
fn rx_two_threads() {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let (mut driver, mut device) = rx_ring::<u32>(IGB_DEFAULT_RXD).unwrap();
        let start = Instant::now();
        let dev = thread::spawn(move || {
            let mut filled = 0u32;
            while filled < THREADED {
                match device.fetch() {
                    Some(f) => {
                        f.write_back(RxWriteback::eop(60));
                        filled += 1;
                    }
                    None => std::hint::spin_loop(),
                }
            }
        });
        let mut posted = 0u32;
        let mut reaped = 0u32;
        while reaped < THREADED {
            let want = (THREADED - posted) as usize;
            posted += driver.alloc_rx_buffers(want.min(64), || Some(0)) as u32;
            reaped += driver.clean_rx_irq(64, |buf, _| {
                black_box(buf);
            }) as u32;
        }
        dev.join().unwrap();
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(THREADED));
    }
    report("dma_ring rx two threads", best, "ns/desc");
    report("dma_ring rx two threads rate", 1e3 / best, "Mdesc/s");
}
