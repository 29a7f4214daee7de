//! The pages of `docs/` that report what the stack withstands and how fast
//! it is, checked against the tests and benchmarks that make their claims.
//!
//! - `docs/hardening.md`: every section names the test files that check
//!   it (`## Attacks (`tests/tests/attacks.rs`)`); every counter or state a
//!   table row says it is "checked by" must be read by one of those files,
//!   or by a source file the row itself names (unit tests such as
//!   `crates/tcp/src/tcp_mem.rs`). Names are compared as Linux prints them
//!   against the Rust spelling (`TCPChallengeACK` ~ `TcpChallengeAck`):
//!   case and underscores are ignored.
//! - `docs/performance.md`: every workload of the latest "netstack beside
//!   Linux" table must be a figure pair a bench prints
//!   (`<workload>/netstack` and `<workload>/linux`), so the table can be
//!   regenerated with `cargo xtask bench`.
//!
//! A page that names a test file that no longer exists, a counter no test
//! reads, or a workload no bench prints fails here.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the integration-tests package sits in the workspace root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The backticked spans of a line.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// Lowercase without underscores: Linux's counter names and their Rust
/// spellings compare equal.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The identifier a backticked span names (`Ipv4Frags::mem()` → `mem`,
/// `InHdrErrors` → `InHdrErrors`), or `None` for spans that are not one
/// (numbers, sysctl values).
fn identifier(span: &str) -> Option<&str> {
    let end = span
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.'))
        .unwrap_or(span.len());
    let path = &span[..end];
    let last = path.rsplit([':', '.']).next()?;
    (last.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && !last.is_empty())
        .then_some(last)
}

fn is_rs(span: &str) -> bool {
    Path::new(span)
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("rs"))
}

fn table_cells(line: &str) -> Option<Vec<&str>> {
    let t = line.trim();
    if !t.starts_with('|') || t.starts_with("| ---") {
        return None;
    }
    Some(t.trim_matches('|').split('|').map(str::trim).collect())
}

#[test]
fn hardening_claims_are_read_by_the_tests_named() {
    let page = read("docs/hardening.md");
    let mut files: Vec<String> = Vec::new();
    let mut checked = 0;
    let mut missing = Vec::new();
    for line in page.lines() {
        if line.starts_with("## ") {
            files = backticked(line)
                .into_iter()
                .filter(|s| is_rs(s))
                .map(str::to_string)
                .collect();
            for f in &files {
                assert!(
                    root().join(f).is_file(),
                    "docs/hardening.md section `{line}` names {f}, which does not exist"
                );
            }
            continue;
        }
        let Some(cells) = table_cells(line) else {
            continue;
        };
        if files.is_empty() || cells.len() < 2 || cells[0] == "attack" || cells[0] == "fault" {
            continue;
        }
        let mut sources: Vec<String> = files.clone();
        sources.extend(
            backticked(line)
                .into_iter()
                .filter(|s| is_rs(s) && root().join(s).is_file())
                .map(str::to_string),
        );
        let text = fold(&sources.iter().map(|f| read(f)).collect::<String>());
        let last = cells[cells.len() - 1];
        for span in backticked(last) {
            let Some(id) = identifier(span) else { continue };
            checked += 1;
            if !text.contains(&fold(id)) {
                missing.push(format!("`{id}` (row: {})", &cells[0]));
            }
        }
    }
    assert!(
        checked >= 30,
        "docs/hardening.md: only {checked} checked-by names found; has the table layout changed?"
    );
    assert!(
        missing.is_empty(),
        "docs/hardening.md claims checks no named test reads:\n{}",
        missing.join("\n")
    );
}

#[test]
fn performance_workloads_are_printed_by_the_benches() {
    let page = read("docs/performance.md");
    let latest = page
        .split("## The latest figures")
        .nth(1)
        .expect("docs/performance.md has a `## The latest figures` section");
    let latest = latest.split("\n## ").next().unwrap_or(latest);
    let mut benches = Vec::new();
    for dir in ["crates", "tests"] {
        collect_benches(&root().join(dir), &mut benches);
    }
    let mut workloads = Vec::new();
    let mut in_pairs = false;
    for line in latest.lines() {
        if line.starts_with("### ") {
            in_pairs = line.contains("netstack beside Linux");
            continue;
        }
        let Some(cells) = table_cells(line) else {
            continue;
        };
        if !in_pairs || cells[0] == "workload" {
            continue;
        }
        let w = cells[0].split_whitespace().next().unwrap_or_default();
        workloads.push(w.to_string());
    }
    assert!(
        workloads.len() >= 6,
        "docs/performance.md's latest table lists {} workloads; the issue names six",
        workloads.len()
    );
    for w in &workloads {
        for side in ["netstack", "linux"] {
            // Printed as a literal (`"tcp_crr/netstack"`), as a pair by
            // `benchkit::report_vs_linux("tap_download", ..)`, or built in
            // one bench file from the workload's literal and a format
            // string ending in the side (`"tcp_bulk_tso_on"` …
            // `"{name}/netstack"`).
            let literal = format!("\"{w}/{side}\"");
            let pair = format!("report_vs_linux(\"{w}\"");
            let name = format!("\"{w}\"");
            let suffix = format!("}}/{side}\"");
            assert!(
                benches.iter().any(|text| text.contains(&literal)
                    || text.contains(&pair)
                    || (text.contains(&name) && text.contains(&suffix))),
                "docs/performance.md lists `{w}`, but no bench prints `{w}/{side}`"
            );
        }
    }
}

/// Collects the text of every `benches/*.rs` below `dir`, a file each.
fn collect_benches(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect_benches(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs")
            && p.parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "benches")
        {
            out.push(std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
}
