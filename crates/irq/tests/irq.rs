//! Hard-IRQ behaviour through the public API: request/free, nesting,
//! masking, affinity, counts and `/proc/interrupts`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use irq::{
    CpuWakeup, HardIrqContext, IrqError, IrqHandler, IrqRaise, IrqReturn, IrqTable, SoftirqNr,
    Softirqs,
};
use parking_lot::Mutex;

/// A host with `nr_cpus` CPUs whose wake-up hook records every kick.
struct Host {
    irqs: IrqTable,
    softirqs: Softirqs,
    kicks: Arc<Mutex<Vec<usize>>>,
}

fn host(nr_irqs: u32, nr_cpus: usize) -> Host {
    let wakeup = CpuWakeup::new();
    let kicks = Arc::new(Mutex::new(Vec::new()));
    let k = kicks.clone();
    wakeup.set(move |cpu| k.lock().push(cpu));
    Host {
        irqs: IrqTable::new("netstack-msi", nr_irqs, nr_cpus, wakeup.clone()).unwrap(),
        softirqs: Softirqs::new(nr_cpus, wakeup).unwrap(),
        kicks,
    }
}

/// A handler that counts its calls in a shared counter and claims each one.
fn counting(calls: &Arc<AtomicU32>) -> impl IrqHandler + 'static {
    let calls = calls.clone();
    move |_irq: u32, _ctx: &mut HardIrqContext<'_>| {
        calls.fetch_add(1, Ordering::Relaxed);
        IrqReturn::Handled
    }
}

#[test]
fn request_free_double_request_and_out_of_range() {
    let h = host(32, 2);
    let calls = Arc::new(AtomicU32::new(0));

    h.irqs
        .request_irq(24, counting(&calls), "eth0-rx-0")
        .unwrap();
    assert_eq!(
        h.irqs.irq_to_desc(24).unwrap().action_name().as_deref(),
        Some("eth0-rx-0")
    );
    assert_eq!(h.irqs.irq_to_desc(24).unwrap().depth(), 0);

    let busy = h
        .irqs
        .request_irq(24, counting(&calls), "eth0-rx-1")
        .unwrap_err();
    assert_eq!(busy, IrqError::Busy { irq: 24 });
    assert_eq!(busy.errno(), 16, "EBUSY");
    // The first owner keeps the line.
    assert_eq!(
        h.irqs.irq_to_desc(24).unwrap().action_name().as_deref(),
        Some("eth0-rx-0")
    );

    let oor = h
        .irqs
        .request_irq(32, counting(&calls), "eth0-tx-0")
        .unwrap_err();
    assert_eq!(
        oor,
        IrqError::IrqOutOfRange {
            irq: 32,
            nr_irqs: 32
        }
    );
    assert_eq!(oor.errno(), 22, "EINVAL");
    assert_eq!(
        oor.to_string(),
        "irq 32 out of range: this table has lines 0..32"
    );
    assert_eq!(
        h.irqs.raise_irq(99).unwrap_err(),
        IrqError::IrqOutOfRange {
            irq: 99,
            nr_irqs: 32
        }
    );

    // free_irq hands the handler back; the line is shut down again.
    let handler = h.irqs.free_irq(24).unwrap();
    assert_eq!(h.irqs.irq_to_desc(24).unwrap().depth(), 1);
    assert!(h.irqs.irq_to_desc(24).unwrap().is_masked());
    assert_eq!(h.irqs.irq_to_desc(24).unwrap().action_name(), None);
    assert_eq!(
        h.irqs.free_irq(24).unwrap_err(),
        IrqError::NotRequested { irq: 24 }
    );
    assert_eq!(h.irqs.free_irq(24).unwrap_err().errno(), 2, "ENOENT");

    // The returned handler is the one installed: requested on another line,
    // it counts in the same counter.
    h.irqs.request_irq(5, handler, "eth0-rx-0").unwrap();
    h.irqs.raise_irq(5).unwrap();
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 1);
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // The line can be requested again after free.
    h.irqs
        .request_irq(24, counting(&calls), "eth0-rx-0")
        .unwrap();
}

#[test]
fn constructors_reject_zero_sizes() {
    assert_eq!(
        IrqTable::new("c", 0, 1, CpuWakeup::new()).unwrap_err(),
        IrqError::BadArgument {
            name: "nr_irqs",
            accepts: "1..=65536"
        }
    );
    assert_eq!(
        IrqTable::new("c", 8, 0, CpuWakeup::new()).unwrap_err(),
        IrqError::BadArgument {
            name: "nr_cpus",
            accepts: "1..=4096"
        }
    );
    assert_eq!(
        Softirqs::new(0, CpuWakeup::new()).unwrap_err().to_string(),
        "bad argument `nr_cpus`: accepts 1..=4096"
    );
}

#[test]
fn raise_during_nested_disable_is_delivered_once_on_final_enable() {
    let h = host(32, 2);
    let calls = Arc::new(AtomicU32::new(0));
    h.irqs.request_irq(10, counting(&calls), "eth0").unwrap();

    h.irqs.disable_irq(10).unwrap();
    h.irqs.disable_irq(10).unwrap();
    assert_eq!(h.irqs.irq_to_desc(10).unwrap().depth(), 2);

    assert_eq!(h.irqs.raise_irq(10).unwrap(), IrqRaise::Latched);
    assert_eq!(
        h.irqs.raise_irq(10).unwrap(),
        IrqRaise::Latched,
        "edges collapse"
    );
    assert!(h.irqs.irq_to_desc(10).unwrap().is_pending());
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 0);
    assert!(h.kicks.lock().is_empty());

    // The inner enable does not deliver.
    h.irqs.enable_irq(10).unwrap();
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 0);
    assert!(h.kicks.lock().is_empty());

    // The final enable replays it: pending on CPU 0, CPU 0 kicked.
    h.irqs.enable_irq(10).unwrap();
    assert!(!h.irqs.irq_to_desc(10).unwrap().is_pending());
    assert_eq!(*h.kicks.lock(), [0]);
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 1);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 0);
    assert_eq!(calls.load(Ordering::Relaxed), 1, "delivered exactly once");

    assert_eq!(
        h.irqs.enable_irq(10).unwrap_err(),
        IrqError::UnbalancedEnable { irq: 10 }
    );
    assert_eq!(
        h.irqs.disable_irq(11).unwrap_err(),
        IrqError::NotRequested { irq: 11 }
    );
    assert_eq!(
        h.irqs.enable_irq(11).unwrap_err(),
        IrqError::NotRequested { irq: 11 }
    );
}

#[test]
fn disable_between_raise_and_handling_latches_instead_of_running() {
    let h = host(32, 1);
    let calls = Arc::new(AtomicU32::new(0));
    h.irqs.request_irq(3, counting(&calls), "eth0").unwrap();

    assert_eq!(h.irqs.raise_irq(3).unwrap(), IrqRaise::Delivered { cpu: 0 });
    h.irqs.disable_irq(3).unwrap();
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 0);
    assert_eq!(calls.load(Ordering::Relaxed), 0);
    assert!(h.irqs.irq_to_desc(3).unwrap().is_pending());
    assert_eq!(h.irqs.kstat_irqs_cpu(3, 0).unwrap(), 0);

    h.irqs.enable_irq(3).unwrap();
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 1);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn mask_latches_and_unmask_replays_unless_still_disabled() {
    let h = host(32, 1);
    let calls = Arc::new(AtomicU32::new(0));
    h.irqs
        .request_irq(7, counting(&calls), "eth0-TxRx-0")
        .unwrap();

    h.irqs.mask_irq(7).unwrap();
    h.irqs.mask_irq(7).unwrap();
    assert_eq!(h.irqs.raise_irq(7).unwrap(), IrqRaise::Latched);
    h.irqs.disable_irq(7).unwrap();
    // Unmasked but still disabled: stays latched.
    h.irqs.unmask_irq(7).unwrap();
    assert!(h.irqs.irq_to_desc(7).unwrap().is_pending());
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 0);
    // Enabled and unmasked: replayed once.
    h.irqs.enable_irq(7).unwrap();
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 1);
    assert_eq!(calls.load(Ordering::Relaxed), 1);

    // A mask alone (no disable) is undone by one unmask, not counted.
    h.irqs.mask_irq(7).unwrap();
    h.irqs.raise_irq(7).unwrap();
    h.irqs.unmask_irq(7).unwrap();
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 1);
    assert_eq!(calls.load(Ordering::Relaxed), 2);

    assert_eq!(
        h.irqs.mask_irq(8).unwrap_err(),
        IrqError::NotRequested { irq: 8 }
    );
}

#[test]
fn affinity_routes_the_pending_irq_to_its_cpu() {
    let h = host(64, 4);
    let seen_on = Arc::new(Mutex::new(Vec::new()));
    let s = seen_on.clone();
    h.irqs
        .request_irq(
            40,
            move |irq: u32, ctx: &mut HardIrqContext<'_>| {
                s.lock().push((irq, ctx.smp_processor_id()));
                IrqReturn::Handled
            },
            "eth0-rx-2",
        )
        .unwrap();
    assert_eq!(h.irqs.irq_get_affinity(40).unwrap(), 0);
    h.irqs.irq_set_affinity(40, 2).unwrap();
    assert_eq!(
        h.irqs.irq_set_affinity(40, 4).unwrap_err(),
        IrqError::CpuOutOfRange { cpu: 4, nr_cpus: 4 }
    );
    assert_eq!(h.irqs.irq_get_affinity(40).unwrap(), 2);

    assert_eq!(
        h.irqs.raise_irq(40).unwrap(),
        IrqRaise::Delivered { cpu: 2 }
    );
    assert_eq!(*h.kicks.lock(), [2]);
    assert!(!h.irqs.irqs_pending(0).unwrap());
    assert!(h.irqs.irqs_pending(2).unwrap());
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 0);
    assert_eq!(h.irqs.handle_pending(1, &h.softirqs).unwrap(), 0);
    assert_eq!(h.irqs.handle_pending(2, &h.softirqs).unwrap(), 1);
    assert_eq!(*seen_on.lock(), [(40, 2)]);
    assert_eq!(h.irqs.kstat_irqs_cpu(40, 2).unwrap(), 1);
    assert_eq!(h.irqs.kstat_irqs_cpu(40, 0).unwrap(), 0);
    assert_eq!(
        h.irqs.handle_pending(9, &h.softirqs).unwrap_err(),
        IrqError::CpuOutOfRange { cpu: 9, nr_cpus: 4 }
    );

    // A second raise before handling does not kick again: the bit is set.
    h.irqs.raise_irq(40).unwrap();
    h.irqs.raise_irq(40).unwrap();
    assert_eq!(*h.kicks.lock(), [2, 2]);
    assert_eq!(h.irqs.handle_pending(2, &h.softirqs).unwrap(), 1);
}

#[test]
fn handler_returns_are_counted_and_threads_run() {
    struct Threaded {
        hard: u32,
        threaded: Arc<AtomicU32>,
    }
    impl IrqHandler for Threaded {
        fn handle(&mut self, _irq: u32, _ctx: &mut HardIrqContext<'_>) -> IrqReturn {
            self.hard += 1;
            if self.hard % 2 == 1 {
                IrqReturn::WakeThread
            } else {
                IrqReturn::None
            }
        }
        fn thread_fn(&mut self, _irq: u32, ctx: &mut HardIrqContext<'_>) -> IrqReturn {
            self.threaded.fetch_add(1, Ordering::Relaxed);
            ctx.raise_softirq_irqoff(SoftirqNr::Block);
            IrqReturn::Handled
        }
    }
    let h = host(16, 1);
    let threaded = Arc::new(AtomicU32::new(0));
    h.irqs
        .request_irq(
            1,
            Threaded {
                hard: 0,
                threaded: threaded.clone(),
            },
            "nvme0q1",
        )
        .unwrap();

    h.irqs.raise_irq(1).unwrap();
    h.irqs.handle_pending(0, &h.softirqs).unwrap();
    assert!(h.irqs.irq_threads_pending(0).unwrap());
    assert_eq!(h.irqs.run_irq_threads(0, &h.softirqs).unwrap(), 1);
    assert_eq!(threaded.load(Ordering::Relaxed), 1);
    assert_eq!(
        h.softirqs.local_softirq_pending(0).unwrap(),
        SoftirqNr::Block.mask()
    );
    assert!(!h.irqs.irq_threads_pending(0).unwrap());

    h.irqs.raise_irq(1).unwrap();
    h.irqs.handle_pending(0, &h.softirqs).unwrap();
    assert_eq!(h.irqs.irq_to_desc(1).unwrap().irqs_unhandled(), 1);
    assert_eq!(h.irqs.run_irq_threads(0, &h.softirqs).unwrap(), 0);
    assert_eq!(h.irqs.irq_to_desc(1).unwrap().kstat_irqs(), 2);
}

#[test]
fn raise_of_a_free_line_is_spurious_and_counted_as_err() {
    let h = host(16, 1);
    assert_eq!(h.irqs.raise_irq(9).unwrap(), IrqRaise::Spurious);
    assert_eq!(h.irqs.irq_err_count(), 1);
    assert!(h.kicks.lock().is_empty());

    // Raised, then freed before the CPU got to it: dropped, not run.
    let calls = Arc::new(AtomicU32::new(0));
    h.irqs.request_irq(9, counting(&calls), "eth1").unwrap();
    h.irqs.raise_irq(9).unwrap();
    drop(h.irqs.free_irq(9).unwrap());
    assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 0);
    assert_eq!(calls.load(Ordering::Relaxed), 0);
}

#[test]
fn proc_interrupts_text() {
    let h = host(64, 2);
    let calls = Arc::new(AtomicU32::new(0));
    h.irqs
        .request_irq(24, counting(&calls), "eth0-rx-0")
        .unwrap();
    h.irqs
        .request_irq(25, counting(&calls), "eth0-tx-0")
        .unwrap();
    h.irqs.irq_set_affinity(25, 1).unwrap();
    for _ in 0..120 {
        h.irqs.raise_irq(24).unwrap();
        h.irqs.handle_pending(0, &h.softirqs).unwrap();
    }
    for _ in 0..7 {
        h.irqs.raise_irq(25).unwrap();
        h.irqs.handle_pending(1, &h.softirqs).unwrap();
    }
    h.irqs.raise_irq(3).unwrap();
    assert_eq!(h.irqs.kstat_irqs_cpu(24, 0).unwrap(), 120);
    assert_eq!(h.irqs.kstat_irqs_cpu(25, 1).unwrap(), 7);
    assert_eq!(
        h.irqs.proc_interrupts(),
        concat!(
            "           CPU0       CPU1       \n",
            " 24:        120          0  netstack-msi  24-edge      eth0-rx-0\n",
            " 25:          0          7  netstack-msi  25-edge      eth0-tx-0\n",
            "ERR:          1\n",
        )
    );

    // A freed line keeps its counts and loses its name.
    drop(h.irqs.free_irq(25).unwrap());
    let text = h.irqs.proc_interrupts();
    assert!(
        text.contains(" 25:          0          7  netstack-msi  25-edge    \n"),
        "{text}"
    );
}

#[test]
fn proc_interrupts_widens_the_number_column_for_big_tables() {
    let h = host(2048, 1);
    let calls = Arc::new(AtomicU32::new(0));
    h.irqs
        .request_irq(1024, counting(&calls), "mlx5_comp0")
        .unwrap();
    assert_eq!(
        h.irqs.proc_interrupts(),
        concat!(
            "            CPU0       \n",
            "1024:          0  netstack-msi 1024-edge      mlx5_comp0\n",
            " ERR:          0\n",
        )
    );
}

#[test]
fn pending_lines_of_a_large_table_run_lowest_first_and_idle_is_seen() {
    // 65536 lines: 1024 pending words, 16 per summary bit.
    for nr_irqs in [64, 1024, 65536] {
        let h = host(nr_irqs, 1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let lines = [nr_irqs - 1, 0, 63, 64, nr_irqs / 2, 1000 % nr_irqs, 5];
        for &line in &lines {
            let o = order.clone();
            let _ = h.irqs.request_irq(
                line,
                move |irq: u32, _ctx: &mut HardIrqContext<'_>| {
                    o.lock().push(irq);
                    IrqReturn::Handled
                },
                "t",
            );
        }
        assert!(!h.irqs.irqs_pending(0).unwrap());
        for &line in &lines {
            let _ = h.irqs.raise_irq(line);
        }
        assert!(h.irqs.irqs_pending(0).unwrap());
        // Line 64 does not exist in a table of 64: its request and raise
        // fail, and nothing runs for it.
        let mut want: Vec<u32> = lines.iter().copied().filter(|&l| l < nr_irqs).collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), want.len());
        assert_eq!(*order.lock(), want, "{nr_irqs} lines");
        assert!(!h.irqs.irqs_pending(0).unwrap(), "drained");
        assert_eq!(h.irqs.handle_pending(0, &h.softirqs).unwrap(), 0);
    }
}
