//! Running one step of a pipeline: a command whose output is shown as it
//! runs and kept for counting.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The workspace root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// What a finished command left behind.
pub struct Output {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Every line it printed, stdout and stderr interleaved as they came.
    pub lines: Vec<String>,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Runs `cmd` in the workspace root, echoing its output line by line (to
/// stderr, so that a caller's stdout carries only summaries) and keeping it.
pub fn run(cmd: &mut Command, echo: bool) -> Output {
    let start = Instant::now();
    cmd.current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Output {
                success: false,
                lines: vec![format!("could not start {cmd:?}: {e}")],
                elapsed: start.elapsed(),
            };
        }
    };
    let (tx, rx) = mpsc::channel::<String>();
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|stream| {
        let tx = tx.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(tx);
    let mut lines = Vec::new();
    for line in rx {
        if echo {
            eprintln!("{line}");
        }
        lines.push(line);
    }
    for r in readers {
        let _ = r.join();
    }
    let success = child.wait().is_ok_and(|s| s.success());
    Output {
        success,
        lines,
        elapsed: start.elapsed(),
    }
}

/// Whether `cmd --version`-like probing of a program succeeds.
pub fn has_program(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Counts of tests in a step's output.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// Reads test counts from the output of `cargo test` (one `test result:`
/// line per binary) or of `cargo nextest` (one `Summary` line).
pub fn count_tests(lines: &[String]) -> Option<Counts> {
    let mut total = Counts::default();
    let mut found = false;
    for line in lines {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("test result: ") {
            // test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...
            found = true;
            total.passed += number_before(rest, " passed");
            total.failed += number_before(rest, " failed");
            total.skipped += number_before(rest, " ignored");
        } else if line.starts_with("Summary [") && line.contains(" run: ") {
            // Summary [   1.2s] 42 tests run: 40 passed, 2 failed, 3 skipped
            found = true;
            let rest = &line[line.find(" run: ").map_or(0, |i| i + 6)..];
            total.passed += number_before(rest, " passed");
            total.failed += number_before(rest, " failed");
            total.failed += number_before(rest, " timed out");
            total.skipped += number_before(rest, " skipped");
        }
    }
    found.then_some(total)
}

/// The number written just before `word` in `text` (0 when absent).
fn number_before(text: &str, word: &str) -> u64 {
    let Some(end) = text.find(word) else { return 0 };
    let digits: String = text[..end]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(String::from).collect()
    }

    #[test]
    fn counts_cargo_test_output() {
        let out = lines(
            "test result: ok. 5 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n\
             noise\n\
             test result: FAILED. 12 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        assert_eq!(
            count_tests(&out),
            Some(Counts {
                passed: 17,
                failed: 2,
                skipped: 1
            })
        );
    }

    #[test]
    fn counts_nextest_output() {
        let out = lines("     Summary [   3.141s] 42 tests run: 40 passed, 2 failed, 3 skipped");
        assert_eq!(
            count_tests(&out),
            Some(Counts {
                passed: 40,
                failed: 2,
                skipped: 3
            })
        );
        let out = lines("     Summary [   0.5s] 7 tests run: 7 passed, 0 skipped");
        assert_eq!(
            count_tests(&out),
            Some(Counts {
                passed: 7,
                failed: 0,
                skipped: 0
            })
        );
    }

    #[test]
    fn no_count_without_a_summary() {
        assert_eq!(
            count_tests(&lines("Compiling wire\nerror[E0308]: mismatched types")),
            None
        );
    }
}
