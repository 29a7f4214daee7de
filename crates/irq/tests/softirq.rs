//! Softirq behaviour through the public API: the restart rule, the
//! ksoftirqd hand-over, cross-thread raising and `/proc/softirqs`.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration as StdDuration;

use irq::{
    CpuWakeup, HardIrqContext, IrqRaise, IrqReturn, IrqTable, MAX_SOFTIRQ_RESTART, SoftirqNr,
    SoftirqRun, Softirqs,
};
use netcore::{Duration, Instant};
use parking_lot::Mutex;

fn softirqs(nr_cpus: usize) -> (Softirqs, Arc<Mutex<Vec<usize>>>) {
    let wakeup = CpuWakeup::new();
    let kicks = Arc::new(Mutex::new(Vec::new()));
    let k = kicks.clone();
    wakeup.set(move |cpu| k.lock().push(cpu));
    (Softirqs::new(nr_cpus, wakeup).unwrap(), kicks)
}

#[test]
fn nothing_pending_runs_nothing() {
    let (s, kicks) = softirqs(1);
    let run = s
        .do_softirq(0, || Instant::ZERO, || false, |_, _| panic!("no action"))
        .unwrap();
    assert_eq!(run, SoftirqRun::default());
    assert!(kicks.lock().is_empty());
}

#[test]
fn a_round_runs_every_pending_vector_lowest_first() {
    let (s, _) = softirqs(1);
    s.raise_softirq_irqoff(0, SoftirqNr::NetRx).unwrap();
    s.raise_softirq_irqoff(0, SoftirqNr::Timer).unwrap();
    s.raise_softirq_irqoff(0, SoftirqNr::NetRx).unwrap();
    assert_eq!(
        s.local_softirq_pending(0).unwrap(),
        SoftirqNr::Timer.mask() | SoftirqNr::NetRx.mask()
    );
    let mut order = Vec::new();
    let run = s
        .do_softirq(
            0,
            || Instant::ZERO,
            || false,
            |nr, ctx| {
                assert!(!ctx.in_ksoftirqd());
                assert_eq!(ctx.smp_processor_id(), 0);
                order.push(nr);
            },
        )
        .unwrap();
    assert_eq!(order, [SoftirqNr::Timer, SoftirqNr::NetRx]);
    assert_eq!(
        run,
        SoftirqRun {
            rounds: 1,
            actions: 2,
            deferred: false
        }
    );
    assert_eq!(s.local_softirq_pending(0).unwrap(), 0);
    assert_eq!(s.kstat_softirqs_cpu(SoftirqNr::NetRx, 0).unwrap(), 1);
}

#[test]
fn a_softirq_that_reraises_forever_stops_after_ten_rounds_and_wakes_ksoftirqd() {
    let (s, kicks) = softirqs(2);
    s.raise_softirq(1, SoftirqNr::NetRx).unwrap();
    assert_eq!(*kicks.lock(), [1], "raise on an idle CPU kicks it");

    let mut calls = 0;
    let run = s
        .do_softirq(
            1,
            || Instant::ZERO,
            || false,
            |nr, ctx| {
                calls += 1;
                ctx.raise_softirq_irqoff(nr);
            },
        )
        .unwrap();
    assert_eq!(MAX_SOFTIRQ_RESTART, 10);
    assert_eq!(
        run,
        SoftirqRun {
            rounds: 10,
            actions: 10,
            deferred: true
        }
    );
    assert_eq!(calls, 10);
    assert_eq!(s.ksoftirqd_wakeups(1).unwrap(), 1);
    assert_eq!(*kicks.lock(), [1, 1], "wakeup_ksoftirqd kicks the CPU");
    assert!(s.ksoftirqd_should_run(1).unwrap());
    assert_eq!(s.ksoftirqd_wakeups(0).unwrap(), 0);

    // ksoftirqd runs the same rule; leftovers stay for its next turn
    // without counting another hand-over.
    let mut in_ksoftirqd = Vec::new();
    let run = s
        .run_ksoftirqd(
            1,
            || Instant::ZERO,
            || false,
            |nr, ctx| {
                in_ksoftirqd.push(ctx.in_ksoftirqd());
                if in_ksoftirqd.len() < 3 {
                    ctx.raise_softirq_irqoff(nr);
                }
            },
        )
        .unwrap();
    assert_eq!(
        run,
        SoftirqRun {
            rounds: 3,
            actions: 3,
            deferred: false
        }
    );
    assert_eq!(in_ksoftirqd, [true, true, true]);
    assert!(!s.ksoftirqd_should_run(1).unwrap());
    assert_eq!(s.ksoftirqd_wakeups(1).unwrap(), 1);
    assert_eq!(s.kstat_softirqs_cpu(SoftirqNr::NetRx, 1).unwrap(), 13);
}

#[test]
fn two_ms_of_fake_time_stop_the_restarts_early() {
    let (s, _) = softirqs(1);
    s.raise_softirq(0, SoftirqNr::Timer).unwrap();
    // Each action takes 1 ms of virtual time.
    let clock = Cell::new(Instant::from_millis(100));
    let run = s
        .do_softirq(
            0,
            || clock.get(),
            || false,
            |nr, ctx| {
                clock.set(clock.get() + Duration::from_millis(1));
                ctx.raise_softirq_irqoff(nr);
            },
        )
        .unwrap();
    // Round 1 ends at 101 ms (< 102: restart); round 2 ends at 102 ms: stop.
    assert_eq!(
        run,
        SoftirqRun {
            rounds: 2,
            actions: 2,
            deferred: true
        }
    );
    assert_eq!(s.ksoftirqd_wakeups(0).unwrap(), 1);

    // 0.4 ms per action: five rounds fit before 2 ms have passed.
    let run = s
        .do_softirq(
            0,
            || clock.get(),
            || false,
            |nr, ctx| {
                clock.set(clock.get() + Duration::from_micros(400));
                ctx.raise_softirq_irqoff(nr);
            },
        )
        .unwrap();
    assert_eq!(
        run,
        SoftirqRun {
            rounds: 5,
            actions: 5,
            deferred: true
        }
    );
    assert_eq!(s.ksoftirqd_wakeups(0).unwrap(), 2);
}

#[test]
fn need_resched_hands_over_after_one_round() {
    let (s, _) = softirqs(1);
    s.raise_softirq(0, SoftirqNr::NetTx).unwrap();
    let run = s
        .do_softirq(
            0,
            || Instant::ZERO,
            || true,
            |nr, ctx| ctx.raise_softirq_irqoff(nr),
        )
        .unwrap();
    assert_eq!(
        run,
        SoftirqRun {
            rounds: 1,
            actions: 1,
            deferred: true
        }
    );
    assert_eq!(s.ksoftirqd_wakeups(0).unwrap(), 1);
}

#[test]
fn raise_rejects_a_cpu_out_of_range() {
    let (s, kicks) = softirqs(2);
    let err = s.raise_softirq(2, SoftirqNr::NetRx).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cpu 2 out of range: this host has CPUs 0..2"
    );
    assert!(kicks.lock().is_empty());
    assert!(SoftirqNr::try_from(10).is_err());
    assert_eq!(SoftirqNr::try_from(3).unwrap(), SoftirqNr::NetRx);
}

#[test]
fn cross_thread_raise_sets_the_pending_bit_and_kicks_the_cpu() {
    let wakeup = CpuWakeup::new();
    let kicks = Arc::new(Mutex::new(Vec::new()));
    let k = kicks.clone();
    // The kick records the kicking thread too, to show it ran on the raiser.
    wakeup.set(move |cpu| k.lock().push((cpu, std::thread::current().id())));
    let irqs = Arc::new(IrqTable::new("netstack-msi", 32, 2, wakeup.clone()).unwrap());
    let softirqs = Arc::new(Softirqs::new(2, wakeup).unwrap());

    let handled = Arc::new(AtomicU32::new(0));
    let h = handled.clone();
    irqs.request_irq(
        17,
        move |_irq: u32, ctx: &mut HardIrqContext<'_>| {
            assert_eq!(ctx.smp_processor_id(), 1);
            h.fetch_add(1, Ordering::Relaxed);
            ctx.raise_softirq_irqoff(SoftirqNr::NetRx);
            IrqReturn::Handled
        },
        "eth0-rx-1",
    )
    .unwrap();
    irqs.irq_set_affinity(17, 1).unwrap();

    // The device thread raises the line and a softirq on CPU 1.
    let (irqs2, softirqs2) = (irqs.clone(), softirqs.clone());
    let device = std::thread::spawn(move || {
        let raised = irqs2.raise_irq(17).unwrap();
        softirqs2.raise_softirq(1, SoftirqNr::Timer).unwrap();
        (raised, std::thread::current().id())
    });
    let (raised, device_id) = device.join().unwrap();
    assert_eq!(raised, IrqRaise::Delivered { cpu: 1 });
    assert_eq!(*kicks.lock(), [(1, device_id), (1, device_id)]);
    assert!(irqs.irqs_pending(1).unwrap());
    assert_eq!(
        softirqs.local_softirq_pending(1).unwrap(),
        SoftirqNr::Timer.mask()
    );

    // CPU 1's own thread handles it.
    let (irqs3, softirqs3) = (irqs.clone(), softirqs.clone());
    let cpu1 = std::thread::spawn(move || {
        let ran = irqs3.handle_pending(1, &softirqs3).unwrap();
        let mut seen = Vec::new();
        softirqs3
            .do_softirq(1, || Instant::ZERO, || false, |nr, _| seen.push(nr))
            .unwrap();
        (ran, seen)
    });
    let (ran, seen) = cpu1.join().unwrap();
    assert_eq!(ran, 1);
    assert_eq!(seen, [SoftirqNr::Timer, SoftirqNr::NetRx]);
    assert_eq!(handled.load(Ordering::Relaxed), 1);
}

#[test]
fn many_threads_raising_lose_no_interrupt_across_disable_and_enable() {
    // Raisers race a CPU that disables and enables the line: every raise is
    // either handled or latched and replayed, so after a final drain the
    // line has run at least once after the last raise and never while
    // disabled.
    let wakeup = CpuWakeup::new();
    let irqs = Arc::new(IrqTable::new("netstack-msi", 8, 1, wakeup.clone()).unwrap());
    let softirqs = Softirqs::new(1, wakeup).unwrap();
    let disabled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ran_while_disabled = Arc::new(AtomicU32::new(0));
    let (d, r) = (disabled.clone(), ran_while_disabled.clone());
    irqs.request_irq(
        2,
        move |_: u32, _: &mut HardIrqContext<'_>| {
            if d.load(Ordering::SeqCst) {
                r.fetch_add(1, Ordering::Relaxed);
            }
            IrqReturn::Handled
        },
        "eth0",
    )
    .unwrap();
    let raisers: Vec<_> = (0..2)
        .map(|_| {
            let irqs = irqs.clone();
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    irqs.raise_irq(2).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..500 {
        irqs.disable_irq(2).unwrap();
        disabled.store(true, Ordering::SeqCst);
        irqs.handle_pending(0, &softirqs).unwrap();
        disabled.store(false, Ordering::SeqCst);
        irqs.enable_irq(2).unwrap();
        irqs.handle_pending(0, &softirqs).unwrap();
        std::thread::sleep(StdDuration::from_micros(1));
    }
    for t in raisers {
        t.join().unwrap();
    }
    irqs.handle_pending(0, &softirqs).unwrap();
    let desc = irqs.irq_to_desc(2).unwrap();
    assert_eq!(ran_while_disabled.load(Ordering::Relaxed), 0);
    assert!(!desc.is_pending(), "nothing latched is left behind");
    assert!(!irqs.irqs_pending(0).unwrap());
    assert!(desc.kstat_irqs() >= 1);
}

#[test]
fn proc_softirqs_text() {
    let (s, _) = softirqs(2);
    for _ in 0..3 {
        s.raise_softirq(0, SoftirqNr::Timer).unwrap();
        s.do_softirq(0, || Instant::ZERO, || false, |_, _| {})
            .unwrap();
    }
    s.raise_softirq(1, SoftirqNr::NetRx).unwrap();
    s.raise_softirq(1, SoftirqNr::Rcu).unwrap();
    s.do_softirq(1, || Instant::ZERO, || false, |_, _| {})
        .unwrap();
    assert_eq!(
        s.proc_softirqs(),
        concat!(
            "                    CPU0       CPU1       \n",
            "          HI:          0          0\n",
            "       TIMER:          3          0\n",
            "      NET_TX:          0          0\n",
            "      NET_RX:          0          1\n",
            "       BLOCK:          0          0\n",
            "    IRQ_POLL:          0          0\n",
            "     TASKLET:          0          0\n",
            "       SCHED:          0          0\n",
            "     HRTIMER:          0          0\n",
            "         RCU:          0          1\n",
        )
    );
}

/// The CPU's runner (the thread that ran its softirqs first) raises on
/// its own CPU into a word only it writes; another thread's raise goes
/// to the shared word. A round takes both, lowest vector first, and
/// leaves nothing behind; a raise from another thread after the owner
/// claimed the CPU still runs.
#[test]
fn the_owners_raises_and_other_threads_raises_run_in_one_round() {
    let (s, _) = softirqs(1);
    let s = Arc::new(s);
    let run = |s: &Softirqs| {
        let mut order = Vec::new();
        s.do_softirq(0, || Instant::ZERO, || false, |nr, _| order.push(nr))
            .unwrap();
        order
    };
    // This thread becomes the owner by running the CPU's softirqs.
    s.raise_softirq_irqoff(0, SoftirqNr::Tasklet).unwrap();
    assert_eq!(run(&s), [SoftirqNr::Tasklet]);
    s.raise_softirq_irqoff(0, SoftirqNr::NetRx).unwrap();
    let other = Arc::clone(&s);
    std::thread::spawn(move || other.raise_softirq_irqoff(0, SoftirqNr::Timer).unwrap())
        .join()
        .unwrap();
    assert_eq!(
        s.local_softirq_pending(0).unwrap(),
        SoftirqNr::Timer.mask() | SoftirqNr::NetRx.mask()
    );
    assert_eq!(run(&s), [SoftirqNr::Timer, SoftirqNr::NetRx]);
    assert_eq!(s.local_softirq_pending(0).unwrap(), 0);
    // Another thread raising alone.
    let other = Arc::clone(&s);
    std::thread::spawn(move || other.raise_softirq_irqoff(0, SoftirqNr::NetTx).unwrap())
        .join()
        .unwrap();
    assert_eq!(run(&s), [SoftirqNr::NetTx]);
    assert!(run(&s).is_empty());
}
