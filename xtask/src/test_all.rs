//! `cargo xtask test-all`: everything CI checks, in one command.
//!
//! Steps, in order: `cargo fmt --check`, `cargo clippy` with warnings denied,
//! the test suite (cargo-nextest when installed, else `cargo test`), the doc
//! tests, the loom models of every crate that has them (built with
//! `--cfg loom` into a target directory of their own, so the main build is
//! not invalidated), and Miri over the crates that contain `unsafe` when a
//! nightly toolchain with Miri can be had, then every fuzz target for
//! [`FUZZ_SECONDS`] seconds when cargo-fuzz is installed (`.ci/run`
//! installs it). Each step prints one summary line;
//! the last line is `N passed, N failed, N skipped`, counting tests (fmt and
//! clippy count as one check each). The exit status is non-zero when
//! anything failed.
//!
//! CI machines have little disk: under CI (or with `--reclaim`) the private
//! target directories of the loom, Miri and fuzz steps are removed once
//! their step is done (no later step reads them), and after every step a
//! line `xtask: disk: ...` says how much space is left, so a run that fills
//! the disk shows where it did.
//!
//! Tests that need root or `../shared/` skip with a printed reason on a
//! developer's machine; under CI (`CI=true`) or with `--require-root-tests`
//! this command sets `NETSTACK_FORBID_SKIP=1`, which turns such skips into
//! failures.

use std::fs;
use std::process::Command;

use crate::steps::{self, Counts, Output};

/// Crates whose unit tests also run under Miri: the ones allowed `unsafe`
/// that do no foreign calls.
const MIRI_CRATES: &[&str] = &["dma-ring"];

/// Seconds each fuzz target runs in the `fuzz` step.
const FUZZ_SECONDS: u64 = 10;

enum Outcome {
    /// The step ran; `Some` counts when it ran tests.
    Ran { ok: bool, counts: Option<Counts> },
    /// The step could not run here, for the reason given.
    Skipped(String),
}

struct Options {
    require_root_tests: bool,
    loom: bool,
    miri: bool,
    fuzz: bool,
    reclaim: bool,
}

pub fn run(args: &[String]) -> Result<bool, String> {
    let mut opts = Options {
        require_root_tests: false,
        loom: true,
        miri: true,
        fuzz: true,
        reclaim: false,
    };
    for a in args {
        match a.as_str() {
            "--require-root-tests" => opts.require_root_tests = true,
            "--no-loom" => opts.loom = false,
            "--no-miri" => opts.miri = false,
            "--no-fuzz" => opts.fuzz = false,
            "--reclaim" => opts.reclaim = true,
            other => return Err(format!("test-all: unknown option `{other}`")),
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let forbid_skip = ci || opts.require_root_tests;
    let reclaim = ci || opts.reclaim;

    let mut summary: Vec<String> = Vec::new();
    let mut total = Counts::default();
    let mut record = |name: &str, outcome: Outcome, secs: f64| {
        let line = match outcome {
            Outcome::Ran { ok, counts } => {
                let c = counts.unwrap_or(if ok {
                    Counts {
                        passed: 1,
                        ..Counts::default()
                    }
                } else {
                    Counts {
                        failed: 1,
                        ..Counts::default()
                    }
                });
                // A step that failed without any failing test (a build error)
                // still counts as one failure.
                let c = if ok || c.failed > 0 {
                    c
                } else {
                    Counts { failed: 1, ..c }
                };
                total.add(c);
                let what = if counts.is_some() {
                    format!(
                        " ({} passed, {} failed, {} skipped)",
                        c.passed, c.failed, c.skipped
                    )
                } else {
                    String::new()
                };
                format!(
                    "{name:<10} {}{what} in {secs:.1}s",
                    if ok { "ok" } else { "FAILED" }
                )
            }
            Outcome::Skipped(why) => format!("{name:<10} skipped: {why}"),
        };
        println!("xtask: {line}");
        summary.push(line);
        report_disk();
    };

    // 1. Formatting.
    let out = cargo(&["fmt", "--all", "--check"], &[]);
    record(
        "fmt",
        Outcome::Ran {
            ok: out.success,
            counts: None,
        },
        out.elapsed.as_secs_f64(),
    );

    // 2. Lints.
    let out = cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    );
    record(
        "clippy",
        Outcome::Ran {
            ok: out.success,
            counts: None,
        },
        out.elapsed.as_secs_f64(),
    );

    // 3. The test suite.
    let forbid: &[(&str, &str)] = if forbid_skip {
        &[("NETSTACK_FORBID_SKIP", "1")]
    } else {
        &[]
    };
    let out = if steps::has_program("cargo", &["nextest", "--version"]) {
        cargo(&["nextest", "run", "--workspace", "--no-fail-fast"], forbid)
    } else {
        cargo(
            &[
                "test",
                "--workspace",
                "--lib",
                "--bins",
                "--tests",
                "--examples",
                "--no-fail-fast",
            ],
            forbid,
        )
    };
    report_skips(&out);
    record("tests", ran_tests(&out), out.elapsed.as_secs_f64());

    // 4. Doc tests (nextest does not run them).
    let out = cargo(&["test", "--workspace", "--doc"], &[]);
    record("doctests", ran_tests(&out), out.elapsed.as_secs_f64());

    // 5. loom models.
    let loom_crates = crates_with_loom();
    if !opts.loom {
        record("loom", Outcome::Skipped("--no-loom given".into()), 0.0);
    } else if loom_crates.is_empty() {
        record(
            "loom",
            Outcome::Skipped("no crate has loom models yet".into()),
            0.0,
        );
    } else {
        let mut args = vec![
            "test",
            "--profile",
            "loom",
            "--target-dir",
            "target/loom",
            "--lib",
        ];
        for c in &loom_crates {
            args.extend(["-p", c.as_str()]);
        }
        args.extend(["--", "loom"]);
        let out = cargo(
            &args,
            &[("RUSTFLAGS", "--cfg loom"), ("LOOM_MAX_PREEMPTIONS", "2")],
        );
        record("loom", ran_tests(&out), out.elapsed.as_secs_f64());
        if reclaim {
            remove_target("target/loom");
        }
    }

    // 6. Miri.
    if opts.miri {
        let present: Vec<&str> = MIRI_CRATES
            .iter()
            .copied()
            .filter(|c| crate_has_code(c))
            .collect();
        if present.is_empty() {
            record(
                "miri",
                Outcome::Skipped("no unsafe crate has code yet".into()),
                0.0,
            );
        } else if let Err(why) = miri_available() {
            record("miri", Outcome::Skipped(why), 0.0);
        } else {
            let mut args = vec![
                "+nightly",
                "miri",
                "test",
                "--target-dir",
                "target/miri",
                "--lib",
            ];
            for c in &present {
                args.extend(["-p", c]);
            }
            let out = cargo(&args, &[]);
            record("miri", ran_tests(&out), out.elapsed.as_secs_f64());
            if reclaim {
                remove_target("target/miri");
            }
        }
    } else {
        record("miri", Outcome::Skipped("--no-miri given".into()), 0.0);
    }

    // 7. Fuzzing, bounded: the stable build without a sanitizer, the same
    // on every machine (a fresh CI machine has no nightly toolchain).
    if !opts.fuzz {
        record("fuzz", Outcome::Skipped("--no-fuzz given".into()), 0.0);
    } else if !crate::fuzz::cargo_fuzz_installed() {
        record(
            "fuzz",
            Outcome::Skipped(
                "cargo-fuzz is not installed (`cargo install cargo-fuzz --locked`; .ci/run does it)"
                    .into(),
            ),
            0.0,
        );
    } else {
        let runs = crate::fuzz::run_bounded(
            crate::fuzz::TARGETS,
            FUZZ_SECONDS,
            crate::fuzz::Toolchain::StableNoSanitizer,
        );
        let secs = runs.iter().map(|r| r.secs).sum();
        for r in &runs {
            println!("xtask: {}", r.line);
        }
        let counts = steps::Counts {
            passed: runs.iter().filter(|r| r.ok).count() as u64,
            failed: runs.iter().filter(|r| !r.ok).count() as u64,
            skipped: 0,
        };
        record(
            "fuzz",
            Outcome::Ran {
                ok: counts.failed == 0,
                counts: Some(counts),
            },
            secs,
        );
        if reclaim {
            remove_target("fuzz/target");
        }
    }

    // 8. packetdrill: the conformance corpus; only a script of
    // tests/packetdrill/expected-pass.list that stops passing fails the step.
    let start = std::time::Instant::now();
    match crate::packetdrill::step() {
        Ok((regressions, c)) => {
            println!(
                "xtask: packetdrill corpus: {} passed, {} failed, {} skipped; {regressions} of expected-pass.list not passing",
                c.passed, c.failed, c.skipped
            );
            record(
                "packetdrill",
                Outcome::Ran {
                    ok: regressions == 0,
                    counts: Some(steps::Counts {
                        passed: c.passed,
                        failed: regressions,
                        skipped: c.skipped + c.failed - regressions.min(c.failed),
                    }),
                },
                start.elapsed().as_secs_f64(),
            );
        }
        Err(why) if ci => {
            println!("xtask: packetdrill: {why} (CI=true requires the corpus)");
            record(
                "packetdrill",
                Outcome::Ran {
                    ok: false,
                    counts: None,
                },
                0.0,
            );
        }
        Err(why) => record("packetdrill", Outcome::Skipped(why), 0.0),
    }

    println!();
    for line in &summary {
        println!("{line}");
    }
    println!(
        "{} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    Ok(total.failed == 0)
}

fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // `cargo +nightly` must go through rustup's proxy, not the resolved cargo.
    if args.first().is_some_and(|a| a.starts_with('+')) {
        cmd = Command::new("cargo");
    }
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    eprintln!("xtask: running cargo {}", args.join(" "));
    steps::run(&mut cmd, true)
}

/// Removes a step's private target directory (relative to the workspace
/// root) and says how much it held.
fn remove_target(rel: &str) {
    let dir = steps::root().join(rel);
    if !dir.is_dir() {
        return;
    }
    let size = dir_size(&dir);
    match fs::remove_dir_all(&dir) {
        Ok(()) => println!(
            "xtask: removed {rel} ({:.2} GiB) to free disk",
            size as f64 / f64::from(1u32 << 30)
        ),
        Err(e) => println!("xtask: could not remove {rel}: {e}"),
    }
}

/// Bytes in the files under `dir` (symbolic links not followed).
fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Prints the space left on the workspace's file system and the size of
/// the target directory (`CARGO_TARGET_DIR` when set, else `target/`; `df`
/// does the first, a machine without it prints nothing).
fn report_disk() {
    let root = steps::root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let avail = Command::new("df")
        .args(["-k", "--output=avail"])
        .arg(&root)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<u64>().ok())
        });
    if let Some(kib) = avail {
        println!(
            "xtask: disk: {:.2} GiB free, target {:.2} GiB, fuzz/target/ {:.2} GiB",
            kib as f64 / f64::from(1u32 << 20),
            dir_size(&target) as f64 / f64::from(1u32 << 30),
            dir_size(&root.join("fuzz/target")) as f64 / f64::from(1u32 << 30),
        );
    }
}

fn ran_tests(out: &Output) -> Outcome {
    Outcome::Ran {
        ok: out.success,
        counts: steps::count_tests(&out.lines),
    }
}

/// Repeats the `SKIP` lines tests printed, so they are not lost in the log.
fn report_skips(out: &Output) {
    for line in out
        .lines
        .iter()
        .filter(|l| l.trim_start().starts_with("SKIP "))
    {
        println!("xtask: {}", line.trim());
    }
}

/// Workspace crates whose manifest declares a `cfg(loom)` dependency, i.e.
/// the crates that have loom models.
fn crates_with_loom() -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir(steps::root().join("crates")) else {
        return found;
    };
    for entry in dir.flatten() {
        let manifest = entry.path().join("Cargo.toml");
        // A loom model needs loom as a dependency under `cfg(loom)`; the
        // lint table's `check-cfg` entry alone does not count.
        if fs::read_to_string(&manifest)
            .is_ok_and(|t| t.contains("[target.'cfg(loom)'.dependencies]"))
        {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found.sort();
    found
}

/// Whether a crate holds more than its opening description.
fn crate_has_code(name: &str) -> bool {
    fs::read_to_string(steps::root().join("crates").join(name).join("src/lib.rs")).is_ok_and(|t| {
        t.lines()
            .any(|l| l.starts_with("mod ") || l.starts_with("pub mod "))
    })
}

/// Makes `cargo +nightly miri` usable, installing the component when it
/// can; says why not otherwise.
fn miri_available() -> Result<(), String> {
    if !steps::has_program("rustup", &["--version"]) {
        return Err("rustup is not installed, so no nightly toolchain can be had".into());
    }
    if steps::has_program("cargo", &["+nightly", "miri", "--version"]) {
        return Ok(());
    }
    eprintln!("xtask: trying `rustup component add miri rust-src --toolchain nightly`");
    let out = steps::run(
        Command::new("rustup").args([
            "component",
            "add",
            "miri",
            "rust-src",
            "--toolchain",
            "nightly",
        ]),
        true,
    );
    if out.success && steps::has_program("cargo", &["+nightly", "miri", "--version"]) {
        Ok(())
    } else {
        let why = out
            .lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .cloned()
            .unwrap_or_default();
        Err(format!(
            "cargo +nightly miri is not available and could not be installed ({why})"
        ))
    }
}
