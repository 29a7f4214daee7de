//! Timer-wheel and MIB-counter costs: what every TCP segment pays to
//! re-arm its retransmit timer and bump its counters.

use benchkit::{black_box, measure, report};
use netcore::{Duration, Instant, IpMib, NetMibs, Sysctl, TimerWheel};

fn main() {
    let t0 = Instant::from_secs(1);
    let mut wheel: TimerWheel<u32> = TimerWheel::with_capacity(t0, 10_000);
    // A background population, as on a busy host.
    for id in 0..10_000u32 {
        wheel.arm(id, t0 + Duration::from_millis(u64::from(id % 5000) + 1));
    }

    let mut n = 0u64;
    let t = measure(|| {
        n += 1;
        let id = 20_000 + (n % 64) as u32;
        wheel.arm(id, t0 + Duration::from_millis(200 + n % 100));
        black_box(wheel.cancel(id))
    });
    report("timer arm+cancel", t.as_nanos_f64(), "ns");

    let mut n = 0u64;
    let t = measure(|| {
        n += 1;
        // mod_timer of an already pending timer (the RTO re-arm on every ACK).
        black_box(wheel.arm(
            (n % 10_000) as u32,
            t0 + Duration::from_millis(300 + n % 1000),
        ))
    });
    report("timer mod_timer (pending)", t.as_nanos_f64(), "ns");

    let mut w2: TimerWheel<u32> = TimerWheel::with_capacity(t0, 1024);
    let mut now = t0;
    let t = measure(|| {
        w2.arm(1, now + Duration::from_millis(1));
        now += Duration::from_millis(1);
        black_box(w2.pop_expired(now))
    });
    report("timer arm+expire (1 ms)", t.as_nanos_f64(), "ns");

    let mibs = NetMibs::new(4);
    let t = measure(|| mibs.inc(black_box(1), IpMib::InReceives));
    report("mib counter inc (per-cpu shard)", t.as_nanos_f64(), "ns");

    let t = measure(|| black_box(mibs.snapshot()));
    report("mib snapshot (4 cpus)", t.as_nanos_f64(), "ns");

    let sysctl = Sysctl::new();
    let t = measure(|| black_box(sysctl.get_int(black_box(Sysctl::NETDEV_BUDGET))));
    report("sysctl get_int (typed key)", t.as_nanos_f64(), "ns");
}
