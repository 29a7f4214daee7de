//! loom models of the race between an arriving interrupt and a completing
//! poll (`napi_schedule_prep()` against `napi_complete_done()`).
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p napi
//! --profile loom --target-dir target/loom --lib loom`.
//!
//! In both models a device thread makes packets available and then raises
//! the interrupt, while a poller thread (the CPU's `net_rx_action`) polls
//! until its list is empty. Afterwards the main thread plays the CPU running
//! the `NET_RX` that was raised. The conservation check: every packet that
//! arrived was polled, and the NAPI ends idle — no packet is stranded behind
//! a NAPI that nobody will poll.

use irq::{CpuWakeup, SoftirqNr, Softirqs};
use loom::sync::atomic::AtomicBool;
use loom::thread;
use netcore::Instant;

use crate::sync::{Arc, AtomicUsize, Ordering};
use crate::{
    NapiPoll, NapiPollCtx, NapiState, NapiStruct, PollLists, napi_poll, napi_schedule_on,
    netif_napi_add,
};

/// An interrupt line with the device's auto-mask: delivering masks it; a
/// raise while masked is latched and delivered by the unmask.
struct IrqLine(AtomicUsize);

const MASKED: usize = 1;
const LATCHED: usize = 2;

impl IrqLine {
    /// The device raises the line; returns whether the interrupt is
    /// delivered now (the line was unmasked; it is masked by delivery).
    fn raise(&self) -> bool {
        let mut v = self.0.load(Ordering::Acquire);
        loop {
            let new = if v & MASKED != 0 { v | LATCHED } else { MASKED };
            match self
                .0
                .compare_exchange(v, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return v & MASKED == 0,
                Err(cur) => v = cur,
            }
        }
    }

    /// The driver unmasks; returns whether a latched interrupt is delivered
    /// (and the line masked again by that delivery).
    fn unmask(&self) -> bool {
        let mut v = self.0.load(Ordering::Acquire);
        loop {
            let new = if v & LATCHED != 0 { MASKED } else { 0 };
            match self
                .0
                .compare_exchange(v, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return v & LATCHED != 0,
                Err(cur) => v = cur,
            }
        }
    }
}

/// The driver: its "ring" is a count of frames the device made available.
struct Driver {
    rx: Arc<AtomicUsize>,
    polled: Arc<AtomicUsize>,
    /// With an interrupt line: unmask after completing, and note when a
    /// latched interrupt fires so the CPU runs the handler.
    irq: Option<(Arc<IrqLine>, Arc<AtomicBool>)>,
}

impl NapiPoll for Driver {
    fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
        // Acquire: pairs with the device's Release publication of a frame.
        let got = self.rx.swap(0, Ordering::Acquire).min(budget);
        self.polled.fetch_add(got, Ordering::Relaxed);
        if got < budget
            && napi.napi_complete_done(got)
            && let Some((line, fire)) = &self.irq
            && line.unmask()
        {
            fire.store(true, Ordering::Release);
        }
        got
    }
}

/// The CPU's `net_rx_action`: poll every listed NAPI until the list is
/// empty; with an interrupt line, run the handler of a latched interrupt
/// that fired on unmask (it schedules the NAPI, as `napi_schedule` does).
fn run_cpu(
    lists: &PollLists,
    softirqs: &Softirqs,
    napi: &Arc<NapiStruct>,
    fire: Option<&AtomicBool>,
) {
    loop {
        if let Some(n) = lists.cpu(0).unwrap().pop_front() {
            let mut sink = |_skb| {};
            let r = napi_poll(&n, 0, softirqs, &mut sink, Instant::ZERO).unwrap();
            if r.repoll {
                lists.cpu(0).unwrap().list_add_tail(n);
            }
        } else if let Some(f) = fire
            && f.swap(false, Ordering::AcqRel)
        {
            napi_schedule_on(napi, 0, softirqs).unwrap();
        } else {
            return;
        }
    }
}

fn check_idle(lists: &PollLists, napi: &NapiStruct) {
    assert!(lists.cpu(0).unwrap().is_empty());
    assert_eq!(napi.state(), NapiState::LISTED, "NAPI left scheduled");
}

/// Without masking: the device calls `napi_schedule` for every frame, so a
/// schedule can land while the poll runs. MISSED must make the completing
/// poll keep SCHED and list the NAPI again.
#[test]
fn loom_schedule_vs_complete_missed() {
    loom::model(|| {
        let lists = PollLists::new(1).unwrap();
        let softirqs = Arc::new(Softirqs::new(1, CpuWakeup::new()).unwrap());
        let rx = Arc::new(AtomicUsize::new(0));
        let polled = Arc::new(AtomicUsize::new(0));
        let napi = netif_napi_add(
            &lists,
            1,
            Driver {
                rx: Arc::clone(&rx),
                polled: Arc::clone(&polled),
                irq: None,
            },
        );
        napi.napi_enable().unwrap();
        // The first frame has arrived and scheduled the NAPI.
        rx.fetch_add(1, Ordering::Release);
        assert!(napi_schedule_on(&napi, 0, &softirqs).unwrap());

        let device = {
            let (napi, softirqs, rx) = (Arc::clone(&napi), Arc::clone(&softirqs), Arc::clone(&rx));
            thread::spawn(move || {
                // Release: the frame is visible to whoever acquires it.
                rx.fetch_add(1, Ordering::Release);
                napi_schedule_on(&napi, 0, &softirqs).unwrap();
            })
        };
        let poller = {
            let (napi, softirqs, lists) =
                (Arc::clone(&napi), Arc::clone(&softirqs), Arc::clone(&lists));
            thread::spawn(move || run_cpu(&lists, &softirqs, &napi, None))
        };
        device.join().unwrap();
        poller.join().unwrap();

        // Whatever is still listed has NET_RX raised for it.
        if !lists.cpu(0).unwrap().is_empty() {
            let pending = softirqs.local_softirq_pending(0).unwrap();
            assert_ne!(
                pending & SoftirqNr::NetRx.mask(),
                0,
                "listed without NET_RX"
            );
        }
        run_cpu(&lists, &softirqs, &napi, None);
        assert_eq!(polled.load(Ordering::Relaxed), 2, "a frame was stranded");
        check_idle(&lists, &napi);
    });
}

/// With the device's auto-mask: the interrupt is masked while the NAPI
/// polls, a raise meanwhile is latched, and the driver unmasks only when
/// `napi_complete_done` says it may; the latched interrupt then fires.
#[test]
fn loom_irq_vs_complete_masked() {
    loom::model(|| {
        let lists = PollLists::new(1).unwrap();
        let softirqs = Arc::new(Softirqs::new(1, CpuWakeup::new()).unwrap());
        let rx = Arc::new(AtomicUsize::new(0));
        let polled = Arc::new(AtomicUsize::new(0));
        // Masked: the first interrupt was delivered (auto-mask) and scheduled.
        let line = Arc::new(IrqLine(AtomicUsize::new(MASKED)));
        let fire = Arc::new(AtomicBool::new(false));
        let napi = netif_napi_add(
            &lists,
            1,
            Driver {
                rx: Arc::clone(&rx),
                polled: Arc::clone(&polled),
                irq: Some((Arc::clone(&line), Arc::clone(&fire))),
            },
        );
        napi.napi_enable().unwrap();
        rx.fetch_add(1, Ordering::Release);
        assert!(napi_schedule_on(&napi, 0, &softirqs).unwrap());

        let device = {
            let (napi, softirqs, rx, line) = (
                Arc::clone(&napi),
                Arc::clone(&softirqs),
                Arc::clone(&rx),
                Arc::clone(&line),
            );
            thread::spawn(move || {
                rx.fetch_add(1, Ordering::Release);
                if line.raise() {
                    // Delivered: the handler schedules the NAPI.
                    napi_schedule_on(&napi, 0, &softirqs).unwrap();
                }
            })
        };
        let poller = {
            let (napi, softirqs, lists, fire) = (
                Arc::clone(&napi),
                Arc::clone(&softirqs),
                Arc::clone(&lists),
                Arc::clone(&fire),
            );
            thread::spawn(move || run_cpu(&lists, &softirqs, &napi, Some(&fire)))
        };
        device.join().unwrap();
        poller.join().unwrap();

        run_cpu(&lists, &softirqs, &napi, Some(&fire));
        assert_eq!(polled.load(Ordering::Relaxed), 2, "a frame was stranded");
        check_idle(&lists, &napi);
        assert_eq!(line.0.load(Ordering::Acquire), 0, "interrupt left masked");
    });
}
