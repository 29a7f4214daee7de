//! `cargo xtask bench`: every benchmark of the workspace, as one report.
//!
//! Each crate's `benches/*.rs` targets (`harness = false`) print their
//! figures as `BENCH<TAB>name<TAB>value<TAB>unit` lines through `benchkit`.
//! This command builds them all once (`cargo bench --no-run`), runs every
//! bench executable `--runs N` times (5 by default), and for each figure
//! keeps the median, minimum and maximum of the runs. Figures named
//! `<workload>/netstack` and `<workload>/linux` with the same unit are
//! paired and their ratio (netstack ÷ linux) computed; the machine's memcpy
//! bandwidth (benchkit's own `memcpy_bandwidth` figure) is printed as the
//! physical ceiling of bulk transfer.
//!
//! It prints one table and writes `report.json` and `report.md` into
//! `target/bench/` (or `--out DIR`); `--json FILE` also writes the JSON to
//! FILE. Each figure carries the command that reproduces it
//! (`cargo bench -p CRATE --bench TARGET`). `--scale N` sets
//! `NETSTACK_SCALE_CONNS` for the scale bench of `integration-tests`
//! (concurrent established connections; `--scale 1000000` is the issue's
//! million).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::steps;

/// How many times each bench executable runs when `--runs` is not given.
const DEFAULT_RUNS: usize = 5;

/// The benchkit figure that measures the machine's memcpy bandwidth.
const CEILING_FIGURE: &str = "memcpy_bandwidth";

/// One figure one run of a bench printed.
#[derive(Debug, PartialEq)]
pub struct Figure {
    /// The bench target that printed it (`cargo bench --bench` name).
    pub bench: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
}

/// A bench executable `cargo bench --no-run` built.
#[derive(Debug, PartialEq)]
pub struct BenchTarget {
    /// The package it belongs to (`cargo bench -p` name).
    pub package: String,
    /// The bench target's name (`cargo bench --bench` name).
    pub bench: String,
    /// The executable.
    pub exe: PathBuf,
    /// The package's directory (cargo runs benches there).
    pub dir: PathBuf,
}

impl BenchTarget {
    fn reproduce(&self) -> String {
        format!("cargo bench -p {} --bench {}", self.package, self.bench)
    }
}

/// One figure over all runs.
#[derive(Debug, PartialEq)]
pub struct Summary {
    pub package: String,
    pub bench: String,
    pub name: String,
    pub unit: String,
    /// Every run's value, in run order.
    pub values: Vec<f64>,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// The command that reproduces the figure.
    pub reproduce: String,
}

/// A `<workload>/netstack` figure beside its `<workload>/linux` twin.
#[derive(Debug, PartialEq)]
pub struct Pair {
    pub workload: String,
    pub unit: String,
    pub netstack: f64,
    pub linux: f64,
    /// netstack ÷ linux (medians).
    pub ratio: f64,
    pub reproduce: String,
}

struct Options {
    runs: usize,
    /// `--scale N`: `NETSTACK_SCALE_CONNS` for the scale bench.
    scale: Option<u64>,
    json: Option<PathBuf>,
    out: PathBuf,
    packages: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        runs: DEFAULT_RUNS,
        scale: None,
        json: None,
        out: steps::root().join("target").join("bench"),
        packages: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => {
                opts.json = Some(
                    it.next()
                        .ok_or("bench: --json needs a FILE argument")?
                        .into(),
                );
            }
            "--out" => {
                opts.out = it.next().ok_or("bench: --out needs a DIR argument")?.into();
            }
            "--runs" => {
                let v = it
                    .next()
                    .ok_or("bench: --runs needs a number of runs (a positive integer)")?;
                opts.runs = v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("bench: --runs `{v}`: accepts a positive integer of runs")
                })?;
            }
            "--scale" => {
                let v = it
                    .next()
                    .ok_or("bench: --scale needs a number of connections (a positive integer)")?;
                opts.scale = Some(v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    format!("bench: --scale `{v}`: accepts a positive integer of connections")
                })?);
            }
            s if s.starts_with('-') => return Err(format!("bench: unknown option `{s}`")),
            s => opts.packages.push(s.to_string()),
        }
    }
    Ok(opts)
}

pub fn run(args: &[String]) -> Result<bool, String> {
    let opts = parse_args(args)?;

    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args([
        "bench",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    if opts.packages.is_empty() {
        cmd.arg("--workspace");
    } else {
        for c in &opts.packages {
            cmd.args(["-p", c]);
        }
    }
    cmd.arg("--benches");
    eprintln!("xtask: building the bench targets (cargo bench --no-run)");
    let build = steps::run(&mut cmd, false);
    if !build.success {
        for l in build.lines.iter().filter(|l| !l.starts_with('{')) {
            eprintln!("{l}");
        }
        return Err("bench: `cargo bench --no-run` failed".into());
    }
    let targets = parse_artifacts(&build.lines);
    if targets.is_empty() {
        return Err("bench: no bench targets were built".into());
    }

    let mut ok = true;
    let mut figures: Vec<(usize, Figure)> = Vec::new();
    for run in 1..=opts.runs {
        for (i, t) in targets.iter().enumerate() {
            eprintln!(
                "xtask: run {run}/{}: {} ({})",
                opts.runs,
                t.bench,
                t.reproduce()
            );
            let mut cmd = Command::new(&t.exe);
            cmd.arg("--bench");
            if let Some(n) = opts.scale {
                cmd.env("NETSTACK_SCALE_CONNS", n.to_string());
            }
            let out = run_in(&mut cmd, &t.dir);
            if !out.success {
                ok = false;
                eprintln!("xtask: {} FAILED in run {run}:", t.bench);
                for l in out.lines.iter().rev().take(20).rev() {
                    eprintln!("  {l}");
                }
            }
            figures.extend(
                parse_figures(&out.lines, &t.bench)
                    .into_iter()
                    .map(|f| (i, f)),
            );
        }
    }

    let summaries = summarise(&targets, &figures);
    let pairs = pair(&summaries);
    let ceiling = summaries
        .iter()
        .find(|s| s.name == CEILING_FIGURE && s.unit == "GB/s")
        .map(|s| s.median);
    let machine = Machine::detect();

    print!("{}", table(&summaries, &pairs, ceiling));
    println!(
        "{} figures from {} bench targets, {} runs each{}",
        summaries.len(),
        targets.len(),
        opts.runs,
        if ok { "" } else { " (a benchmark FAILED)" }
    );

    let json = report_json(&machine, opts.runs, &summaries, &pairs, ceiling);
    let json = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    let md = report_markdown(&machine, opts.runs, &summaries, &pairs, ceiling);
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| format!("bench: cannot create {}: {e}", opts.out.display()))?;
    for (name, text) in [("report.json", &json), ("report.md", &md)] {
        let path = opts.out.join(name);
        std::fs::write(&path, text)
            .map_err(|e| format!("bench: cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    if let Some(path) = opts.json {
        std::fs::write(&path, &json)
            .map_err(|e| format!("bench: cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ok)
}

/// Runs a bench executable in its package's directory, as `cargo bench`
/// does, keeping stdout and stderr lines.
fn run_in(cmd: &mut Command, dir: &Path) -> steps::Output {
    let start = std::time::Instant::now();
    match cmd.current_dir(dir).output() {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            steps::Output {
                success: o.status.success(),
                lines: text.lines().map(String::from).collect(),
                elapsed: start.elapsed(),
            }
        }
        Err(e) => steps::Output {
            success: false,
            lines: vec![format!("could not start {cmd:?}: {e}")],
            elapsed: start.elapsed(),
        },
    }
}

/// The bench executables in `cargo bench --no-run --message-format=json`
/// output: `compiler-artifact` messages of targets of kind `bench`.
fn parse_artifacts(lines: &[String]) -> Vec<BenchTarget> {
    let mut targets = Vec::new();
    for line in lines.iter().filter(|l| l.starts_with('{')) {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_bench = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bench"));
        let (Some(exe), Some(bench), Some(id), Some(manifest)) = (
            msg["executable"].as_str(),
            msg["target"]["name"].as_str(),
            msg["package_id"].as_str(),
            msg["manifest_path"].as_str(),
        ) else {
            continue;
        };
        if !is_bench {
            continue;
        }
        let dir = Path::new(manifest)
            .parent()
            .map_or_else(steps::root, Path::to_path_buf);
        targets.push(BenchTarget {
            package: package_name(id, &dir),
            bench: bench.into(),
            exe: exe.into(),
            dir,
        });
    }
    targets
}

/// The package name in a cargo package id: `path+file:///x/crates/wire#0.1.0`
/// (name = last path segment), `path+file:///x/xtask/benchkit#benchkit@0.1.0`,
/// or the old `wire 0.1.0 (path+file:///…)`.
fn package_name(id: &str, dir: &Path) -> String {
    if let Some((_, frag)) = id.rsplit_once('#') {
        if let Some((name, _)) = frag.split_once('@') {
            return name.into();
        }
        if let Some(last) = id[..id.len() - frag.len() - 1].rsplit('/').next() {
            return last.into();
        }
    }
    if let Some((name, _)) = id.split_once(' ') {
        return name.into();
    }
    dir.file_name()
        .map_or_else(|| id.into(), |n| n.to_string_lossy().into_owned())
}

/// Collects the `BENCH` lines one bench executable printed.
fn parse_figures(lines: &[String], bench: &str) -> Vec<Figure> {
    let mut figures = Vec::new();
    for line in lines {
        let mut parts = line.trim().split('\t');
        if parts.next() != Some("BENCH") {
            continue;
        }
        let (Some(name), Some(value), Some(unit), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if !value.is_finite() {
            continue;
        }
        figures.push(Figure {
            bench: bench.into(),
            name: name.into(),
            value,
            unit: unit.into(),
        });
    }
    figures
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// Groups the figures of all runs by (target, name, unit), in the order
/// they first appeared, with median, min and max.
fn summarise(targets: &[BenchTarget], figures: &[(usize, Figure)]) -> Vec<Summary> {
    let mut index: HashMap<(usize, &str, &str), usize> = HashMap::new();
    let mut out: Vec<Summary> = Vec::new();
    for (t, f) in figures {
        let key = (*t, f.name.as_str(), f.unit.as_str());
        let i = *index.entry(key).or_insert_with(|| {
            out.push(Summary {
                package: targets[*t].package.clone(),
                bench: targets[*t].bench.clone(),
                name: f.name.clone(),
                unit: f.unit.clone(),
                values: Vec::new(),
                median: 0.0,
                min: 0.0,
                max: 0.0,
                reproduce: targets[*t].reproduce(),
            });
            out.len() - 1
        });
        out[i].values.push(f.value);
    }
    for s in &mut out {
        s.median = median(&s.values);
        s.min = s.values.iter().copied().fold(f64::INFINITY, f64::min);
        s.max = s.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    }
    out
}

/// Pairs every `<workload>/netstack` with the `<workload>/linux` of the same
/// unit, in the order the netstack figures appear.
fn pair(summaries: &[Summary]) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for ours in summaries {
        let Some(workload) = ours.name.strip_suffix("/netstack") else {
            continue;
        };
        let linux_name = format!("{workload}/linux");
        let Some(linux) = summaries
            .iter()
            .find(|s| s.name == linux_name && s.unit == ours.unit)
        else {
            continue;
        };
        pairs.push(Pair {
            workload: workload.into(),
            unit: ours.unit.clone(),
            netstack: ours.median,
            linux: linux.median,
            ratio: ours.median / linux.median,
            reproduce: ours.reproduce.clone(),
        });
    }
    pairs
}

/// What the figures were measured on.
struct Machine {
    cpu: String,
    cpus: usize,
    mem_gib: f64,
    kernel: String,
    rustc: String,
}

impl Machine {
    fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown CPU".into(), |(_, m)| m.trim().to_string());
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let mem_kib: f64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| format!("Linux {}", s.trim()));
        let rustc = Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map_or_else(|| "unknown rustc".into(), |s| s.trim().to_string());
        Machine {
            cpu,
            cpus,
            mem_gib: mem_kib / (1024.0 * 1024.0),
            kernel,
            rustc,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{}, {} CPUs, {:.1} GiB RAM, {}, {}",
            self.cpu, self.cpus, self.mem_gib, self.kernel, self.rustc
        )
    }
}

/// The table printed on stdout.
fn table(summaries: &[Summary], pairs: &[Pair], ceiling: Option<f64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{:<12} {:<52} {:>14} {:>14} {:>14}  unit",
        "bench", "figure", "median", "min", "max"
    );
    for f in summaries {
        let _ = writeln!(
            s,
            "{:<12} {:<52} {:>14.3} {:>14.3} {:>14.3}  {}",
            f.bench, f.name, f.median, f.min, f.max, f.unit
        );
    }
    if !pairs.is_empty() {
        let _ = writeln!(
            s,
            "\n{:<40} {:>14} {:>14} {:>9}  unit",
            "workload", "netstack", "linux", "ratio"
        );
        for p in pairs {
            let _ = writeln!(
                s,
                "{:<40} {:>14.3} {:>14.3} {:>8.3}x  {}",
                p.workload, p.netstack, p.linux, p.ratio, p.unit
            );
        }
    }
    if let Some(c) = ceiling {
        let _ = writeln!(
            s,
            "\nmemcpy bandwidth (the ceiling of bulk transfer): {c:.2} GB/s = {:.1} Gbit/s",
            c * 8.0
        );
    }
    s
}

fn report_json(
    machine: &Machine,
    runs: usize,
    summaries: &[Summary],
    pairs: &[Pair],
    ceiling: Option<f64>,
) -> serde_json::Value {
    serde_json::json!({
        "machine": {
            "cpu": machine.cpu,
            "cpus": machine.cpus,
            "mem_gib": machine.mem_gib,
            "kernel": machine.kernel,
            "rustc": machine.rustc,
        },
        "runs": runs,
        "command": format!("cargo xtask bench --runs {runs}"),
        "memcpy_ceiling_gbytes_per_s": ceiling,
        "pairs": pairs.iter().map(|p| serde_json::json!({
            "workload": p.workload,
            "unit": p.unit,
            "netstack": p.netstack,
            "linux": p.linux,
            "ratio": p.ratio,
            "reproduce": p.reproduce,
        })).collect::<Vec<_>>(),
        "figures": summaries.iter().map(|f| serde_json::json!({
            "package": f.package,
            "bench": f.bench,
            "name": f.name,
            "unit": f.unit,
            "median": f.median,
            "min": f.min,
            "max": f.max,
            "values": f.values,
            "reproduce": f.reproduce,
        })).collect::<Vec<_>>(),
    })
}

/// Escapes `|` so a figure name cannot break a Markdown table row.
fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn report_markdown(
    machine: &Machine,
    runs: usize,
    summaries: &[Summary],
    pairs: &[Pair],
    ceiling: Option<f64>,
) -> String {
    let mut s = String::from("# netstack benchmark report\n\n");
    let _ = writeln!(s, "Machine: {}.\n", machine.describe());
    let _ = writeln!(
        s,
        "Made by `cargo xtask bench --runs {runs}`: every bench target ran {runs} times; \
         each figure is the median of the runs, with min and max.\n"
    );
    if let Some(c) = ceiling {
        let _ = writeln!(
            s,
            "Physical ceiling for bulk transfer: memcpy bandwidth {c:.2} GB/s ({:.1} Gbit/s) \
             (`cargo bench -p benchkit --bench memcpy`).\n",
            c * 8.0
        );
    }
    s.push_str("## netstack beside Linux\n\n");
    if pairs.is_empty() {
        s.push_str(
            "No `<workload>/netstack` figure had a `<workload>/linux` twin in this run.\n\n",
        );
    } else {
        s.push_str("| workload | netstack | Linux | ratio | unit | reproduce |\n");
        s.push_str("| --- | ---: | ---: | ---: | --- | --- |\n");
        for p in pairs {
            let _ = writeln!(
                s,
                "| {} | {:.3} | {:.3} | {:.3}x | {} | `{}` |",
                md_cell(&p.workload),
                p.netstack,
                p.linux,
                p.ratio,
                md_cell(&p.unit),
                p.reproduce
            );
        }
        s.push('\n');
    }
    s.push_str("## Every figure\n\n");
    s.push_str("| package/bench | figure | median | min | max | unit | reproduce |\n");
    s.push_str("| --- | --- | ---: | ---: | ---: | --- | --- |\n");
    for f in summaries {
        let _ = writeln!(
            s,
            "| {}/{} | {} | {:.3} | {:.3} | {:.3} | {} | `{}` |",
            f.package,
            f.bench,
            md_cell(&f.name),
            f.median,
            f.min,
            f.max,
            md_cell(&f.unit),
            f.reproduce
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_string()).collect()
    }

    fn target(package: &str, bench: &str) -> BenchTarget {
        BenchTarget {
            package: package.into(),
            bench: bench.into(),
            exe: PathBuf::from("/x"),
            dir: PathBuf::from("/"),
        }
    }

    fn fig(name: &str, value: f64, unit: &str) -> Figure {
        Figure {
            bench: "b".into(),
            name: name.into(),
            value,
            unit: unit.into(),
        }
    }

    #[test]
    fn parses_bench_lines_and_skips_broken_ones() {
        let f = parse_figures(
            &lines(&[
                "BENCH\tchecksum 1500B\t12.500\tGB/s",
                "noise",
                "BENCH\tbroken line",
                "BENCH\tnot a number\tabc\tns",
                "BENCH\ttoo\tmany\t1\tfields",
                "BENCH\tinf\tinf\tns",
                "  BENCH\tskb alloc+free\t21.000\tns  ",
            ]),
            "wire",
        );
        assert_eq!(
            f,
            vec![
                Figure {
                    bench: "wire".into(),
                    name: "checksum 1500B".into(),
                    value: 12.5,
                    unit: "GB/s".into()
                },
                Figure {
                    bench: "wire".into(),
                    name: "skb alloc+free".into(),
                    value: 21.0,
                    unit: "ns".into()
                },
            ]
        );
    }

    #[test]
    fn finds_bench_executables_in_cargo_messages() {
        let msgs = lines(&[
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/wire#0.1.0","manifest_path":"/w/crates/wire/Cargo.toml","target":{"kind":["bench"],"name":"wire"},"executable":"/w/target/release/deps/wire-01"}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/wire#0.1.0","manifest_path":"/w/crates/wire/Cargo.toml","target":{"kind":["lib"],"name":"wire"},"executable":"/w/target/release/deps/wire-02"}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/xtask/benchkit#benchkit@0.1.0","manifest_path":"/w/xtask/benchkit/Cargo.toml","target":{"kind":["bench"],"name":"memcpy"},"executable":"/w/target/release/deps/memcpy-03"}"#,
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/crates/dma-ring#0.1.0","manifest_path":"/w/crates/dma-ring/Cargo.toml","target":{"kind":["bench"],"name":"dma_ring"},"executable":null}"#,
            r#"{"reason":"build-finished","success":true}"#,
            "Compiling wire",
        ]);
        let t = parse_artifacts(&msgs);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].package, "wire");
        assert_eq!(t[0].bench, "wire");
        assert_eq!(t[0].exe, PathBuf::from("/w/target/release/deps/wire-01"));
        assert_eq!(t[0].dir, PathBuf::from("/w/crates/wire"));
        assert_eq!(t[0].reproduce(), "cargo bench -p wire --bench wire");
        assert_eq!(t[1].package, "benchkit");
        assert_eq!(t[1].bench, "memcpy");
    }

    #[test]
    fn package_names_from_every_id_format() {
        let d = Path::new("/w/crates/x");
        assert_eq!(
            package_name("path+file:///w/crates/dma-ring#0.1.0", d),
            "dma-ring"
        );
        assert_eq!(
            package_name("path+file:///w/tests#integration-tests@0.1.0", d),
            "integration-tests"
        );
        assert_eq!(
            package_name("wire 0.1.0 (path+file:///w/crates/wire)", d),
            "wire"
        );
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert!((median(&[5.0, 1.0, 3.0]) - 3.0).abs() < 1e-12);
        assert!((median(&[4.0, 1.0, 3.0, 2.0]) - 2.5).abs() < 1e-12);
        assert!((median(&[7.0]) - 7.0).abs() < 1e-12);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn summarises_runs_per_target_and_name() {
        let targets = [target("wire", "wire"), target("tcp", "tcp")];
        let mut figures = Vec::new();
        for (run, v) in [3.0, 1.0, 2.0, 5.0, 4.0].into_iter().enumerate() {
            figures.push((0, fig("csum", v, "ns")));
            // The same name in another target is another figure.
            figures.push((1, fig("csum", 100.0 + run as f64, "ns")));
        }
        let s = summarise(&targets, &figures);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].bench, "wire");
        assert_eq!(s[0].values, vec![3.0, 1.0, 2.0, 5.0, 4.0]);
        assert!((s[0].median - 3.0).abs() < 1e-12);
        assert!((s[0].min - 1.0).abs() < 1e-12);
        assert!((s[0].max - 5.0).abs() < 1e-12);
        assert_eq!(s[0].reproduce, "cargo bench -p wire --bench wire");
        assert_eq!(s[1].package, "tcp");
        assert!((s[1].median - 102.0).abs() < 1e-12);
    }

    #[test]
    fn pairs_netstack_with_linux_of_the_same_unit() {
        let targets = [target("netstack", "udp"), target("netstack", "tcp")];
        let figures = vec![
            (0, fig("udp_64B_rx/netstack", 2e6, "datagrams/s")),
            (0, fig("udp_64B_rx/linux", 1e6, "datagrams/s")),
            (1, fig("tcp_bulk/linux", 40.0, "Gbit/s")),
            (1, fig("tcp_bulk/netstack", 10.0, "Gbit/s")),
            // No twin: not paired.
            (1, fig("tcp_rr_1B/netstack", 5.0, "us")),
            // Twin of another unit: not paired.
            (1, fig("conn_rate/netstack", 5.0, "conn/s")),
            (1, fig("conn_rate/linux", 5.0, "us")),
        ];
        let p = pair(&summarise(&targets, &figures));
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].workload, "udp_64B_rx");
        assert!((p[0].ratio - 2.0).abs() < 1e-12);
        assert_eq!(p[0].reproduce, "cargo bench -p netstack --bench udp");
        assert_eq!(p[1].workload, "tcp_bulk");
        assert!((p[1].ratio - 0.25).abs() < 1e-12);
        assert_eq!(p[1].unit, "Gbit/s");
    }

    #[test]
    fn reports_carry_ceiling_pairs_and_commands() {
        let targets = [target("benchkit", "memcpy"), target("netstack", "udp")];
        let figures = vec![
            (0, fig(CEILING_FIGURE, 10.0, "GB/s")),
            (1, fig("udp|64B/netstack", 3.0, "Mpps")),
            (1, fig("udp|64B/linux", 2.0, "Mpps")),
        ];
        let s = summarise(&targets, &figures);
        let p = pair(&s);
        let m = Machine {
            cpu: "Test CPU".into(),
            cpus: 2,
            mem_gib: 4.0,
            kernel: "Linux 6.18".into(),
            rustc: "rustc 1.95".into(),
        };
        let md = report_markdown(&m, 5, &s, &p, Some(10.0));
        assert!(md.contains("Machine: Test CPU, 2 CPUs, 4.0 GiB RAM"));
        assert!(md.contains("memcpy bandwidth 10.00 GB/s (80.0 Gbit/s)"));
        assert!(md.contains(
            "| udp\\|64B | 3.000 | 2.000 | 1.500x | Mpps | `cargo bench -p netstack --bench udp` |"
        ));
        let json = report_json(&m, 5, &s, &p, Some(10.0));
        assert_eq!(json["runs"], 5);
        assert_eq!(json["pairs"][0]["ratio"], 1.5);
        assert_eq!(
            json["figures"][0]["reproduce"],
            "cargo bench -p benchkit --bench memcpy"
        );
        let t = table(&s, &p, Some(10.0));
        assert!(t.contains("1.500x"));
        assert!(t.contains("80.0 Gbit/s"));
    }
}
