//! `cargo xtask packetdrill [PATH...]`: runs packetdrill scripts against the
//! stack with the runner binary of `integration-tests`, and the `packetdrill`
//! step of `test-all`.
//!
//! With no PATH it runs every script of `core-set.list` in
//! `../shared/conformance/packetdrill/`. The corpus lives outside the
//! repository: when it is missing the command prints a skip (and fails when
//! `CI=true`, where the corpus must be present).
//!
//! The `test-all` step runs the whole corpus (core set, kernel selftests,
//! gVisor scripts) and the project's own scripts in
//! `tests/packetdrill/conformance/`, and fails only when a script listed in
//! `tests/packetdrill/expected-pass.list` does not pass: the list holds what
//! passes today and only grows.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::steps::{self, Counts};

/// The conformance corpus, beside the repository.
pub fn corpus_dir() -> PathBuf {
    steps::root().join("../shared/conformance/packetdrill")
}

/// The scripts that must keep passing.
fn expected_pass_list() -> PathBuf {
    steps::root().join("tests/packetdrill/expected-pass.list")
}

/// The project's own conformance scripts (Linux behaviours the corpus
/// does not cover), listed in `expected-pass.list` by their path from the
/// repository's root.
fn own_scripts_dir() -> PathBuf {
    steps::root().join("tests/packetdrill/conformance")
}

/// Non-comment lines of a list file (one relative path per line).
fn read_list(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// One script's result line: `PASS path`, `FAIL path: why`, `SKIP path: why`.
pub struct ScriptResult {
    /// `PASS`, `FAIL` or `SKIP`.
    pub status: String,
    /// The path relative to the corpus (or as given).
    pub path: String,
    /// The whole line, with the relative path.
    pub line: String,
}

/// Runs the runner binary on `paths` and returns its per-script results.
fn run_runner(
    paths: &[PathBuf],
    pcap: Option<&str>,
    echo: bool,
) -> Result<Vec<ScriptResult>, String> {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "run",
        "-q",
        "-p",
        "integration-tests",
        "--bin",
        "packetdrill",
        "--",
    ]);
    if let Some(dir) = pcap {
        cmd.args(["--pcap", dir]);
    }
    cmd.args(paths);
    let out = steps::run(&mut cmd, echo);
    let corpus = corpus_dir();
    let prefix = format!("{}/", corpus.display());
    // The project's own scripts are named from the repository's root.
    let root_prefix = format!("{}/", steps::root().display());
    let mut results = Vec::new();
    for l in &out.lines {
        let Some((status, rest)) = l.split_once(' ') else {
            continue;
        };
        if !matches!(status, "PASS" | "FAIL" | "SKIP") {
            continue;
        }
        let rest = rest
            .strip_prefix(&prefix)
            .or_else(|| rest.strip_prefix(&root_prefix))
            .unwrap_or(rest);
        let path = rest.split(": ").next().unwrap_or(rest).to_string();
        results.push(ScriptResult {
            status: status.to_string(),
            path,
            line: format!("{status} {rest}"),
        });
    }
    if results.is_empty() && !out.success {
        return Err(format!(
            "the packetdrill runner did not run:\n{}",
            out.lines.join("\n")
        ));
    }
    Ok(results)
}

fn counts(results: &[ScriptResult]) -> Counts {
    let n = |s: &str| results.iter().filter(|r| r.status == s).count() as u64;
    Counts {
        passed: n("PASS"),
        failed: n("FAIL"),
        skipped: n("SKIP"),
    }
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `cargo xtask packetdrill [--pcap DIR] [PATH...]`.
pub fn run(args: &[String]) -> Result<bool, String> {
    let (pcap, args) = match args {
        [flag, dir, rest @ ..] if flag == "--pcap" => (Some(dir.as_str()), rest),
        [flag] if flag == "--pcap" => return Err("--pcap takes a directory".into()),
        _ => (None, args),
    };
    let paths: Vec<PathBuf> = if args.is_empty() {
        let dir = corpus_dir();
        if !dir.is_dir() {
            let why = format!("packetdrill: skipped: {} is missing", dir.display());
            if ci() {
                return Err(format!("{why} (CI=true requires it)"));
            }
            println!("{why}");
            return Ok(true);
        }
        read_list(&dir.join("core-set.list"))?
            .into_iter()
            .map(|p| dir.join(p))
            .collect()
    } else {
        args.iter()
            .map(|a| std::fs::canonicalize(a).unwrap_or_else(|_| PathBuf::from(a)))
            .collect()
    };
    let results = run_runner(&paths, pcap, false)?;
    for r in &results {
        println!("{}", r.line);
    }
    let c = counts(&results);
    println!(
        "{} passed, {} failed, {} skipped",
        c.passed, c.failed, c.skipped
    );
    Ok(c.failed == 0)
}

/// The `test-all` step: runs the whole corpus and returns how many scripts
/// of `expected-pass.list` did not pass, with the corpus counts. `Err` is a
/// reason to skip.
pub fn step() -> Result<(u64, Counts), String> {
    let dir = corpus_dir();
    if !dir.is_dir() {
        return Err(format!("{} is missing", dir.display()));
    }
    let expected = read_list(&expected_pass_list())?;
    let mut paths = ["tcp", "linux-selftests", "gvisor"]
        .iter()
        .map(|d| dir.join(d))
        .filter(|p| p.is_dir())
        .collect::<Vec<_>>();
    paths.push(own_scripts_dir());
    let results = run_runner(&paths, None, false)?;
    let mut regressions = 0;
    for e in &expected {
        match results.iter().find(|r| &r.path == e) {
            Some(r) if r.status == "PASS" => {}
            Some(r) => {
                regressions += 1;
                println!("xtask: packetdrill regression: {}", r.line);
            }
            None => {
                regressions += 1;
                println!("xtask: packetdrill regression: {e} did not run");
            }
        }
    }
    Ok((regressions, counts(&results)))
}
