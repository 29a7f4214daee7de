//! `packetdrill`: runs packetdrill scripts and prints the report.
//!
//! Usage: `packetdrill [-D NAME=value]... [--pcap DIR] PATH...` where each PATH is a
//! `.pkt` file or a directory searched for them. Each script is parsed, its
//! options checked, its init command turned into settings, and then run
//! against a fresh TCP stack in virtual time (`packetdrill::run_script`).
//! A script with a syntax error or a mismatch is a FAIL, one that uses
//! something the runner does not support a SKIP naming it — never a PASS.
//! With `--pcap DIR`, each script's packets (inbound as injected, outbound
//! as sent, at their virtual times) are written to `DIR/<script>.pcap`.
//! The exit status is 1 when any script failed, 2 on a usage error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use integration_tests::packetdrill::{
    Config, InitSettings, Outcome, Report, parse_script, read_defaults, run_script_traced,
    write_pcap,
};

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            if e.is_dir() || e.extension().is_some_and(|x| x == "pkt") {
                collect(&e, out)?;
            }
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn run_one(path: &Path, defines: &BTreeMap<String, String>, pcap: Option<&Path>) -> Outcome {
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(format!("cannot read script: {e}")),
    };
    let script = match parse_script(&src, defines) {
        Ok(s) => s,
        Err(e) => return Outcome::from_parse_error(&e),
    };
    let config = match Config::from_script_options(&script.options) {
        Ok(c) => c,
        Err((line, e)) => return Outcome::Skip(format!("line {line}: {e}")),
    };
    let mut settings = InitSettings::default();
    if let Some(init) = &script.init {
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Err(e) = settings.apply(&init.steps, &mut |p| read_defaults(dir, p)) {
            return Outcome::Skip(format!("line {}: {e}", init.line));
        }
    }
    let (outcome, packets) = run_script_traced(&script, &config, &settings);
    if let Some(dir) = pcap {
        let stem = path.file_stem().unwrap_or_default().to_string_lossy();
        let file = dir.join(format!("{stem}.pcap"));
        let written = std::fs::File::create(&file)
            .and_then(|f| write_pcap(std::io::BufWriter::new(f), &packets));
        if let Err(e) = written {
            eprintln!("packetdrill: {}: {e}", file.display());
        }
    }
    outcome
}

fn main() -> ExitCode {
    let mut defines = BTreeMap::new();
    let mut paths = Vec::new();
    let mut pcap: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-D" {
            let Some((k, v)) = args.next().and_then(|d| {
                d.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            }) else {
                eprintln!("packetdrill: -D takes NAME=value");
                return ExitCode::from(2);
            };
            defines.insert(k, v);
        } else if a == "--pcap" {
            let Some(dir) = args.next() else {
                eprintln!("packetdrill: --pcap takes a directory");
                return ExitCode::from(2);
            };
            let dir = PathBuf::from(dir);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("packetdrill: --pcap {}: {e}", dir.display());
                return ExitCode::from(2);
            }
            pcap = Some(dir);
        } else if a.starts_with('-') {
            eprintln!(
                "packetdrill: unknown argument {a} (accepts -D NAME=value, --pcap DIR and paths)"
            );
            return ExitCode::from(2);
        } else {
            paths.push(PathBuf::from(a));
        }
    }
    if paths.is_empty() {
        eprintln!("usage: packetdrill [-D NAME=value]... [--pcap DIR] PATH...");
        return ExitCode::from(2);
    }
    let mut files = Vec::new();
    for p in &paths {
        if let Err(e) = collect(p, &mut files) {
            eprintln!("packetdrill: {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    let mut report = Report::new();
    for f in &files {
        report.push(
            f.display().to_string(),
            run_one(f, &defines, pcap.as_deref()),
        );
    }
    print!("{report}");
    if report.all_passed_or_skipped() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
