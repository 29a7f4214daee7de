//! `cargo xtask fuzz [TARGET...] [--seconds N] [--no-sanitizer]`: runs the cargo-fuzz
//! targets of `fuzz/` for a bounded time each.
//!
//! Installs cargo-fuzz when it is absent (`cargo install cargo-fuzz
//! --locked`). With a nightly toolchain the targets build with
//! AddressSanitizer (`cargo +nightly fuzz run`); without one they build on
//! the stable toolchain with `--sanitizer none`, which needs no unstable
//! flag (the coverage instrumentation is `-Cpasses=sancov-module`). Each
//! sanitizer setting builds into its own target directory, so switching
//! does not rebuild the other. The corpus of a target is
//! `fuzz/corpus/TARGET` (git-ignored, kept between runs), seeded from
//! `fuzz/seeds/TARGET`. One line per target; the command fails on a crash
//! and names the input libFuzzer saved.
//!
//! `--no-sanitizer` forces the stable build, the one test-all uses.
//!
//! `cargo xtask test-all` runs the same targets for a few seconds each
//! through [`run_bounded`], without installing anything.

use std::fs;
use std::process::Command;

use crate::steps::{self, Output};

/// Every target of `fuzz/Cargo.toml`, in the order they run.
pub const TARGETS: &[&str] = &[
    "wire_parsers",
    "ip_rcv",
    "tcp_v4_rcv",
    "host_rx",
    "iptables_restore",
    "network_desc",
];

/// Seconds per target of `cargo xtask fuzz` when `--seconds` is not given.
const DEFAULT_SECONDS: u64 = 20;

/// How the targets are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// `cargo +nightly fuzz`, AddressSanitizer.
    Nightly,
    /// `cargo fuzz --sanitizer none` on the workspace's stable toolchain.
    StableNoSanitizer,
}

impl Toolchain {
    /// The best one this machine has.
    pub fn detect() -> Toolchain {
        if steps::has_program("cargo", &["+nightly", "--version"]) {
            Toolchain::Nightly
        } else {
            Toolchain::StableNoSanitizer
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Toolchain::Nightly => "nightly, AddressSanitizer",
            Toolchain::StableNoSanitizer => "stable, --sanitizer none",
        }
    }
}

/// The outcome of one target's run.
pub struct TargetRun {
    /// Whether it ran its time without a crash.
    pub ok: bool,
    /// The summary line: executions, or the crash and its saved input.
    pub line: String,
    /// Wall time, build included.
    pub secs: f64,
}

pub fn run(args: &[String]) -> Result<bool, String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut targets: Vec<&'static str> = Vec::new();
    let mut no_sanitizer = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => {
                let v = it
                    .next()
                    .ok_or("fuzz: --seconds needs a number of seconds (a positive integer)")?;
                seconds = v.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                    format!("fuzz: --seconds `{v}`: accepts a positive integer of seconds")
                })?;
            }
            "--no-sanitizer" => no_sanitizer = true,
            other if other.starts_with('-') => {
                return Err(format!("fuzz: unknown option `{other}`"));
            }
            name => {
                let t = TARGETS.iter().find(|t| **t == name).ok_or_else(|| {
                    format!(
                        "fuzz: unknown target `{name}`: accepts one of {}",
                        TARGETS.join(", ")
                    )
                })?;
                targets.push(t);
            }
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    if !cargo_fuzz_installed() {
        eprintln!(
            "xtask: cargo-fuzz is not installed; running `cargo install cargo-fuzz --locked`"
        );
        let out = steps::run(
            Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]),
            true,
        );
        if !out.success || !cargo_fuzz_installed() {
            return Err(format!(
                "fuzz: cargo-fuzz is not installed and `cargo install cargo-fuzz --locked` failed ({})",
                last_line(&out)
            ));
        }
    }
    let toolchain = if no_sanitizer {
        Toolchain::StableNoSanitizer
    } else {
        Toolchain::detect()
    };
    println!(
        "xtask: fuzzing {} target(s) for {seconds}s each ({})",
        targets.len(),
        toolchain.describe()
    );
    let runs = run_bounded(&targets, seconds, toolchain);
    let mut ok = true;
    for r in &runs {
        println!("{}", r.line);
        ok &= r.ok;
    }
    Ok(ok)
}

/// Whether `cargo fuzz` works here.
pub fn cargo_fuzz_installed() -> bool {
    steps::has_program("cargo", &["fuzz", "--version"])
}

/// Builds and runs each of `targets` for `seconds`, printing progress to
/// stderr; returns one result per target (a build failure fails each).
pub fn run_bounded(targets: &[&'static str], seconds: u64, toolchain: Toolchain) -> Vec<TargetRun> {
    let root = steps::root();
    let fuzz_dir = root.join("fuzz");
    let mut runs = Vec::new();
    for &name in targets {
        let corpus = fuzz_dir.join("corpus").join(name);
        let artifacts = fuzz_dir.join("artifacts").join(name);
        let seeds = fuzz_dir.join("seeds").join(name);
        // Create before running: libFuzzer reads but never makes them.
        let _ = fs::create_dir_all(&corpus);
        let _ = fs::create_dir_all(&artifacts);
        let mut cmd = Command::new("cargo");
        if toolchain == Toolchain::Nightly {
            cmd.arg("+nightly");
        }
        cmd.args(["fuzz", "run", "--release", "--fuzz-dir"])
            .arg(&fuzz_dir)
            .args(["--target-dir"])
            .arg(fuzz_dir.join("target").join(match toolchain {
                Toolchain::Nightly => "asan",
                Toolchain::StableNoSanitizer => "none",
            }));
        if toolchain == Toolchain::StableNoSanitizer {
            cmd.args(["--sanitizer", "none"]);
        }
        cmd.arg(name).arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            // A fixed seed keeps the bounded CI run repeatable; exploration
            // still grows between runs through the kept corpus.
            .arg("-seed=1")
            // An input that runs for a minute is a bug (a walk exponential
            // in the input found this way took hours): fail on it with the
            // input saved, instead of libFuzzer's default of 20 minutes.
            .arg("-timeout=60")
            .arg("-print_final_stats=1");
        // host_rx keeps one host in a thread-local for the whole process;
        // LeakSanitizer would report it at exit, which is not a leak (the
        // target checks the pool's buffer count after every input).
        if name == "host_rx" {
            cmd.arg("-detect_leaks=0");
        }
        eprintln!("xtask: running {cmd:?}");
        let out = steps::run(&mut cmd, true);
        runs.push(summarise(name, &out));
    }
    runs
}

fn summarise(name: &'static str, out: &Output) -> TargetRun {
    let secs = out.elapsed.as_secs_f64();
    let artifact = out.lines.iter().find_map(|l| {
        l.split_once("Test unit written to ")
            .map(|(_, p)| p.trim().to_owned())
    });
    let execs = out.lines.iter().find_map(|l| {
        l.trim()
            .strip_prefix("stat::number_of_executed_units:")
            .map(|n| n.trim().to_owned())
    });
    let (ok, what) = match (out.success, artifact, execs) {
        (true, _, Some(n)) => (true, format!("ok, {n} runs")),
        (true, _, None) => (true, "ok".to_owned()),
        (false, Some(path), _) => {
            let why = out
                .lines
                .iter()
                .find(|l| l.contains("panicked at") || l.contains("ERROR: "))
                .map_or(String::new(), |l| format!(" ({})", l.trim()));
            (false, format!("CRASHED{why}; input saved to {path}"))
        }
        (false, None, _) => (
            false,
            format!("FAILED to build or run ({})", last_line(out)),
        ),
    };
    TargetRun {
        ok,
        line: format!("fuzz {name:<16} {what} in {secs:.1}s"),
        secs,
    }
}

fn last_line(out: &Output) -> String {
    out.lines
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .cloned()
        .unwrap_or_default()
}
