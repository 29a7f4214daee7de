//! The measuring loop and report format shared by netstack's benchmarks.
//!
//! Every benchmark is a `harness = false` bench target of the crate it
//! measures. It times its work with [`measure`] and prints each figure with
//! [`report`], one line per figure:
//!
//! ```text
//! BENCH<TAB>name<TAB>value<TAB>unit
//! ```
//!
//! `cargo xtask bench` runs every bench target five times, collects those
//! lines and prints one table of medians with min and max; it writes
//! `target/bench/report.json` and `report.md`. A figure named
//! `<workload>/netstack` is paired with `<workload>/linux` (same unit) and
//! their ratio computed; [`report_vs_linux`] prints such a pair. The
//! `memcpy` bench of this crate measures [`memcpy_bandwidth`], the ceiling
//! of bulk transfer on the machine.
//! Figures are ratios and rates measured in one run on one machine; no test
//! ever asserts a wall-clock bound.
//!
//! ```
//! let per_iter = benchkit::measure(|| std::hint::black_box(2u64 + 2));
//! benchkit::report("two plus two", per_iter.as_nanos_f64(), "ns");
//! ```

use std::time::{Duration, Instant};

pub use std::hint::black_box;

/// How long one sample runs for, once the iteration count is calibrated.
const SAMPLE_TIME: Duration = Duration::from_millis(60);
/// How many samples are taken; the median is reported.
const SAMPLES: usize = 5;

/// The time one iteration took: the median over [`SAMPLES`] samples.
#[derive(Clone, Copy, Debug)]
pub struct PerIter {
    nanos: f64,
}

impl PerIter {
    /// Nanoseconds per iteration.
    pub fn as_nanos_f64(self) -> f64 {
        self.nanos
    }

    /// Iterations per second.
    pub fn per_second(self) -> f64 {
        1e9 / self.nanos
    }

    /// Millions of iterations per second (for example Mpps when one
    /// iteration handles one packet).
    pub fn millions_per_second(self) -> f64 {
        1e3 / self.nanos
    }

    /// Gigabytes (10^9 bytes) per second when one iteration handles `bytes`.
    pub fn gbytes_per_second(self, bytes: usize) -> f64 {
        bytes as f64 / self.nanos
    }

    /// Gigabits per second when one iteration handles `bytes`.
    pub fn gbits_per_second(self, bytes: usize) -> f64 {
        bytes as f64 * 8.0 / self.nanos
    }
}

/// Times `f`: calibrates an iteration count so that one sample takes about
/// 60 ms, takes five samples and returns the median time per iteration.
pub fn measure<R>(mut f: impl FnMut() -> R) -> PerIter {
    let mut iters: u64 = 1;
    loop {
        let t = time(&mut f, iters);
        if t >= SAMPLE_TIME / 4 || iters >= 1 << 40 {
            let scale = SAMPLE_TIME.as_secs_f64() / t.as_secs_f64().max(1e-9);
            iters = ((iters as f64 * scale) as u64).max(1);
            break;
        }
        iters *= 4;
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| time(&mut f, iters).as_nanos() as f64 / iters as f64)
        .collect();
    samples.sort_by(f64::total_cmp);
    PerIter {
        nanos: samples[SAMPLES / 2],
    }
}

/// Times `f` over `iters` iterations with one setup per iteration that is
/// not timed: `setup` builds the input, `f` consumes it.
pub fn measure_with_setup<I, R>(
    mut setup: impl FnMut() -> I,
    mut f: impl FnMut(I) -> R,
    iters: usize,
) -> PerIter {
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let inputs: Vec<I> = (0..iters).map(|_| setup()).collect();
            let start = Instant::now();
            for input in inputs {
                black_box(f(input));
            }
            start.elapsed().as_nanos() as f64 / iters.max(1) as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    PerIter {
        nanos: samples[SAMPLES / 2],
    }
}

fn time<R>(f: &mut impl FnMut() -> R, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed()
}

/// Prints one figure in the format `cargo xtask bench` collects.
pub fn report(name: &str, value: f64, unit: &str) {
    println!("{}", format_line(name, value, unit));
}

/// Prints a workload's figure for netstack and for the Linux kernel, named
/// `<workload>/netstack` and `<workload>/linux`, which `cargo xtask bench`
/// pairs into one row with their ratio.
pub fn report_vs_linux(workload: &str, netstack: f64, linux: f64, unit: &str) {
    report(&format!("{workload}/netstack"), netstack, unit);
    report(&format!("{workload}/linux"), linux, unit);
}

/// The `BENCH` line of one figure.
pub fn format_line(name: &str, value: f64, unit: &str) -> String {
    format!("BENCH\t{name}\t{value:.3}\t{unit}")
}

/// The machine's memory-copy bandwidth in GB/s (10^9 bytes per second):
/// the median time to copy a `bytes`-long buffer that does not fit in the
/// caches (use at least 64 MiB). Bulk transfer through any stack that
/// copies the data once on each side cannot beat half of it.
pub fn memcpy_bandwidth(bytes: usize) -> f64 {
    let src = vec![0x5au8; bytes];
    let mut dst = vec![0u8; bytes];
    let per = measure(|| {
        dst.copy_from_slice(black_box(&src));
        black_box(dst[bytes / 2])
    });
    per.gbytes_per_second(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_four_tab_separated_fields() {
        assert_eq!(
            format_line("udp 64B", 1.23456, "Mpps"),
            "BENCH\tudp 64B\t1.235\tMpps"
        );
    }

    #[test]
    fn memcpy_bandwidth_is_positive() {
        let gbs = memcpy_bandwidth(1 << 16);
        assert!(gbs.is_finite() && gbs > 0.0, "{gbs}");
    }
}
