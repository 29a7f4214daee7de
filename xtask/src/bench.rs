//! `cargo xtask bench`: every benchmark of the workspace, as one table.
//!
//! Each crate's `benches/*.rs` targets (`harness = false`) print their
//! figures as `BENCH<TAB>name<TAB>value<TAB>unit` lines through `benchkit`.
//! This command runs them all with `cargo bench`, collects those lines in
//! the order they came, and prints a table; `--json FILE` also writes the
//! figures as a JSON array of `{ "bench", "name", "value", "unit" }` (bench: the bench target that printed it).

use std::process::Command;

use crate::steps;

/// One figure a benchmark printed.
#[derive(Debug, PartialEq)]
pub struct Figure {
    pub krate: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
}

pub fn run(args: &[String]) -> Result<bool, String> {
    let mut json: Option<String> = None;
    let mut crates: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => {
                json = Some(
                    it.next()
                        .ok_or("bench: --json needs a FILE argument")?
                        .clone(),
                );
            }
            s if s.starts_with('-') => return Err(format!("bench: unknown option `{s}`")),
            s => crates.push(s.to_string()),
        }
    }

    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.arg("bench");
    if crates.is_empty() {
        cmd.arg("--workspace");
    } else {
        for c in &crates {
            cmd.args(["-p", c]);
        }
    }
    cmd.arg("--benches");
    let out = steps::run(&mut cmd, true);
    let figures = parse_figures(&out.lines);

    println!();
    println!("{:<12} {:<52} {:>14}  unit", "bench", "figure", "value");
    for f in &figures {
        println!(
            "{:<12} {:<52} {:>14.3}  {}",
            f.krate, f.name, f.value, f.unit
        );
    }
    println!(
        "{} figures{}",
        figures.len(),
        if out.success {
            ""
        } else {
            " (a benchmark FAILED)"
        }
    );

    if let Some(path) = json {
        let rows: Vec<serde_json::Value> = figures
            .iter()
            .map(|f| {
                serde_json::json!({ "bench": f.krate, "name": f.name, "value": f.value, "unit": f.unit })
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("bench: cannot write {path}: {e}"))?;
        println!("wrote {path}");
    }
    Ok(out.success)
}

/// Collects `BENCH` lines, naming each figure's crate from cargo's
/// `Running benches/x.rs (target/release/deps/x-hash)` lines.
fn parse_figures(lines: &[String]) -> Vec<Figure> {
    let mut krate = String::from("?");
    let mut figures = Vec::new();
    for line in lines {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Running ") {
            // "Running benches/wire.rs (target/release/deps/wire-0123abcd)"
            if let Some(open) = rest.find("deps/") {
                let bin = &rest[open + 5..];
                let bin = bin.trim_end_matches(')');
                krate = bin.rsplit_once('-').map_or(bin, |(n, _)| n).to_string();
            }
            continue;
        }
        let mut parts = t.split('\t');
        if parts.next() != Some("BENCH") {
            continue;
        }
        let (Some(name), Some(value), Some(unit)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        figures.push(Figure {
            krate: krate.clone(),
            name: name.into(),
            value,
            unit: unit.into(),
        });
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bench_lines_with_their_crate() {
        let lines: Vec<String> = [
            "     Running benches/wire.rs (target/release/deps/wire-0123abcd)",
            "BENCH\tchecksum 1500B\t12.500\tGB/s",
            "noise",
            "BENCH\tbroken line",
            "     Running benches/skbuff.rs (target/release/deps/skbuff-99)",
            "BENCH\tskb alloc+free\t21.000\tns",
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        let f = parse_figures(&lines);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0],
            Figure {
                krate: "wire".into(),
                name: "checksum 1500B".into(),
                value: 12.5,
                unit: "GB/s".into()
            }
        );
        assert_eq!(f[1].krate, "skbuff");
    }
}
