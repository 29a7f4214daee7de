//! Concurrent established TCP connections between two simulated hosts: the
//! memory each costs, the time to open them all, and a C10K-style echo
//! over all of them.
//!
//! `NETSTACK_SCALE_CONNS` sets the count (default 100,000: the issue's
//! C10K-style echo workload, some ten seconds per run; the scale
//! figure is `NETSTACK_SCALE_CONNS=1000000`, also run by
//! `cargo xtask bench --scale 1000000`). Linux needs about 3.8 GB of
//! kernel memory for a million established connections.
//!
//! Figures: `tcp_established_N open time` (wall-clock seconds from the
//! first `connect()` to the last `accept()`), `open rate`, `open cpu
//! time` (the process's user + system seconds meanwhile: on a shared
//! machine the wall clock also counts other processes), `memory per
//! connection` (growth of the process's resident set while opening,
//! divided by N: both ends, every table, fd and application handle
//! included; not the allocator's count), `memory total`; then
//! `tcp_echo_M_32B time` and `rate` (each of the first M = min(N, 100,000)
//! connections sends 32 bytes, its server echoes them, the client checks
//! them).

use integration_tests::scale::open_connections;

fn main() {
    let conns: usize = std::env::var("NETSTACK_SCALE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100_000);
    let (report, mut lab) = match open_connections(conns, 1) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scale: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = lab.check_every(997) {
        eprintln!("scale: {e}");
        std::process::exit(1);
    }
    let tag = format!("tcp_established_{conns}");
    benchkit::report(&format!("{tag} open time"), report.open_secs, "s");
    benchkit::report(
        &format!("{tag} open rate"),
        conns as f64 / report.open_secs,
        "conn/s",
    );
    if let Some(cpu) = report.open_cpu_secs {
        benchkit::report(&format!("{tag} open cpu time"), cpu, "s");
    }
    if let Some(per) = report.rss_per_conn {
        benchkit::report(&format!("{tag} memory per connection"), per, "bytes");
        benchkit::report(
            &format!("{tag} memory total"),
            per * conns as f64 / (1u64 << 30) as f64,
            "GiB",
        );
    }
    // The echo workload is 100,000 connections; a larger run
    // echoes over its first 100,000 with the rest open and idle.
    let echo = match lab.echo_first(conns.min(100_000), 32) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scale: echo: {e}");
            std::process::exit(1);
        }
    };
    let tag = format!("tcp_echo_{}_{}B", echo.conns, echo.len);
    benchkit::report(&format!("{tag} time"), echo.secs, "s");
    benchkit::report(
        &format!("{tag} rate"),
        echo.conns as f64 / echo.secs,
        "round trips/s",
    );
    // Tearing the connections down is not measured: the process exits
    // with them open (closing a million sockets one FIN at a time costs
    // as long as opening them).
    std::mem::forget(lab);
}
