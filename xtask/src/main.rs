//! Project automation for netstack: `cargo xtask <command>`.
//!
//! `cargo xtask` with no arguments lists the commands. The two that matter
//! every day are `test-all` (everything CI runs, with one summary line per
//! step and a final `N passed, N failed` line) and `bench` (every benchmark
//! of the workspace, printed as one table).

mod bench;
mod fuzz;
mod packetdrill;
mod steps;
mod test_all;

use std::fmt::Write as _;
use std::process::ExitCode;

const COMMANDS: &[(&str, &str)] = &[
    (
        "test-all",
        "fmt, clippy, the test suite, doc tests, loom models, Miri and bounded fuzzing; one line per step, then `N passed, N failed` \
         [--require-root-tests] [--no-loom] [--no-miri] [--no-fuzz] [--reclaim]",
    ),
    (
        "bench",
        "run every bench target N times, print medians/min/max, pair <workload>/netstack with <workload>/linux; \
         writes target/bench/report.{json,md} [--runs N (5)] [--scale CONNS] [--out DIR] [--json FILE] [CRATE...]",
    ),
    (
        "packetdrill",
        "run packetdrill scripts against the stack (default: ../shared core set); `N passed, N failed, N skipped` [--pcap DIR] [PATH...]",
    ),
    (
        "fuzz",
        "run the cargo-fuzz targets of fuzz/ (default: all, 20 s each); fails on a crash \
         [TARGET...] [--seconds N] [--no-sanitizer]",
    ),
];

fn usage() -> String {
    let mut s = String::from("usage: cargo xtask <command> [options]\n\ncommands:\n");
    for (name, what) in COMMANDS {
        let _ = writeln!(s, "  {name:<10} {what}");
    }
    s
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    };
    let result = match cmd.as_str() {
        "test-all" => test_all::run(rest),
        "bench" => bench::run(rest),
        "packetdrill" => packetdrill::run(rest),
        "fuzz" => fuzz::run(rest),
        "help" | "-h" | "--help" => {
            print!("{}", usage());
            Ok(true)
        }
        other => Err(format!("unknown command `{other}`\n\n{}", usage())),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(2)
        }
    }
}
