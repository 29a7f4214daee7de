//! Concurrent established TCP connections between two simulated hosts: the
//! memory each costs and the time to open them all.
//!
//! `NETSTACK_SCALE_CONNS` sets the count (default 10,000, about a second
//! per run; the figure is `NETSTACK_SCALE_CONNS=1000000`, also run
//! by `cargo xtask bench --scale 1000000`). Linux needs about 3.8 GB of
//! kernel memory for a million established connections.

use integration_tests::scale::open_connections;

fn main() {
    let conns: usize = std::env::var("NETSTACK_SCALE_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(10_000);
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
    if let Some(per) = report.rss_per_conn {
        benchkit::report(&format!("{tag} memory per connection"), per, "bytes");
        benchkit::report(
            &format!("{tag} memory total"),
            per * conns as f64 / (1u64 << 30) as f64,
            "GiB",
        );
    }
    lab.close();
}
