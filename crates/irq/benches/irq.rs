//! The cost of the interrupt paths: an idle `handle_pending`, one hard IRQ
//! raised and handled, one softirq raised and run, and a raise whose kick crosses to another thread's
//! table (atomics only; no thread is woken).

use irq::{CpuWakeup, HardIrqContext, IrqReturn, IrqTable, SoftirqNr, Softirqs};
use netcore::Instant;

fn main() {
    let wakeup = CpuWakeup::new();
    wakeup.set(|cpu| {
        benchkit::black_box(cpu);
    });
    let irqs = IrqTable::new("netstack-msi", 256, 2, wakeup.clone()).expect("table");
    let softirqs = Softirqs::new(2, wakeup).expect("softirqs");
    irqs.request_irq(
        24,
        |irq: u32, _ctx: &mut HardIrqContext<'_>| {
            benchkit::black_box(irq);
            IrqReturn::Handled
        },
        "eth0-rx-0",
    )
    .expect("request");
    irqs.request_irq(
        25,
        |_irq: u32, ctx: &mut HardIrqContext<'_>| {
            ctx.raise_softirq_irqoff(SoftirqNr::NetRx);
            IrqReturn::Handled
        },
        "eth0-rx-1",
    )
    .expect("request");

    // A CPU's runner calls this on every turn, mostly with nothing
    // pending: one load of the pending summary, however many lines.
    let big = IrqTable::new("netstack-msi", 1024, 2, CpuWakeup::new()).expect("table");
    let t = benchkit::measure(|| {
        benchkit::black_box(&big)
            .handle_pending(0, &softirqs)
            .expect("handle")
    });
    benchkit::report(
        "irq handle_pending, idle (1024 lines)",
        t.as_nanos_f64(),
        "ns",
    );

    let t = benchkit::measure(|| {
        irqs.raise_irq(24).expect("raise");
        irqs.handle_pending(0, &softirqs).expect("handle")
    });
    benchkit::report("irq raise_irq + handle_pending", t.as_nanos_f64(), "ns");

    let t = benchkit::measure(|| {
        softirqs.raise_softirq(0, SoftirqNr::NetRx).expect("raise");
        softirqs.do_softirq(
            0,
            || Instant::ZERO,
            || false,
            |nr, _| {
                benchkit::black_box(nr);
            },
        )
    });
    benchkit::report("irq raise_softirq + do_softirq", t.as_nanos_f64(), "ns");

    let t = benchkit::measure(|| {
        irqs.raise_irq(25).expect("raise");
        irqs.handle_pending(0, &softirqs).expect("handle");
        softirqs.do_softirq(
            0,
            || Instant::ZERO,
            || false,
            |nr, _| {
                benchkit::black_box(nr);
            },
        )
    });
    benchkit::report(
        "irq raise -> handler -> NET_RX softirq",
        t.as_nanos_f64(),
        "ns",
    );

    let t = benchkit::measure(|| {
        irqs.disable_irq_nosync(24).expect("disable");
        irqs.raise_irq(24).expect("raise");
        irqs.enable_irq(24).expect("enable");
        irqs.handle_pending(0, &softirqs).expect("handle")
    });
    benchkit::report(
        "irq latched raise + replay on enable_irq",
        t.as_nanos_f64(),
        "ns",
    );
}
