//! The shell commands scripts use, recognised and turned into settings.
//!
//! packetdrill runs `` `…` `` commands with `/bin/sh`; we never do
//! (GRAMMAR.md §2, "Suggestion for us"). Each line is matched against the
//! handful of commands the corpus uses (`defaults.sh`, `sysctl -q`,
//! `set_sysctls.py`, `ethtool -K`, `tc qdisc`, `ip link … mtu`,
//! `ip tcp_metrics flush`, the sysctl restore file and `nstat`) and becomes a
//! [`ShellStep`]. Anything else is an [`ShellError::Unsupported`] command,
//! which the runner reports as a SKIP naming the command.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::python;

/// One recognised shell command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShellStep {
    /// Runs a `defaults.sh` file (its settings come from
    /// [`parse_shell`] of that file's text).
    Defaults {
        /// The path as written, relative to the script's directory.
        path: String,
    },
    /// Sets a sysctl: `sysctl -q net.ipv4.X=V` or
    /// `set_sysctls.py /proc/sys/net/ipv4/X=V`.
    Sysctl {
        /// The dotted key, e.g. `net.ipv4.tcp_min_tso_segs`.
        key: String,
        /// The value with shell arithmetic expanded, e.g. `4096 131072 33554432`.
        value: String,
        /// Whether the value is put back by the cleanup (set_sysctls.py).
        restore: bool,
    },
    /// `ethtool -K DEV feature on|off …`.
    Offload {
        /// The device (`tun0`).
        dev: String,
        /// Feature names (`tso`, `gso`, …) with their new state.
        features: Vec<(String, bool)>,
    },
    /// `tc qdisc add|replace dev DEV root KIND …`.
    Qdisc {
        /// The device.
        dev: String,
        /// The qdisc kind (`pfifo`, `fq`, …).
        kind: String,
        /// Remaining arguments.
        args: Vec<String>,
    },
    /// `ip link set [dev] DEV mtu N`.
    Mtu {
        /// The device.
        dev: String,
        /// The new MTU.
        mtu: u32,
    },
    /// `ip tcp_metrics flush all`.
    TcpMetricsFlush,
    /// `/tmp/sysctl_restore_${PPID}.sh`: put back what `set_sysctls.py` changed.
    RestoreSysctls,
    /// `nstat -n`: record the counters as the new baseline, print nothing.
    NstatReset,
    /// `nstat [-s] | grep NAME | grep -q " V "`: the counter `NAME` must have
    /// grown by exactly `V` since the baseline.
    NstatExpect {
        /// The counter as `nstat` prints it, e.g. `TcpExtBeyondWindow`.
        counter: String,
        /// The expected increase.
        value: i64,
        /// `false` with `-s`: the baseline is left as it is; `true` without
        /// it: the current values become the new baseline.
        update_history: bool,
    },
}

/// Why a shell command was not turned into steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShellError {
    /// A command the runner does not implement; the text names it.
    Unsupported(String),
    /// A recognised command with bad arguments.
    Malformed(String),
}

impl fmt::Display for ShellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShellError::Unsupported(c) => write!(f, "unsupported shell command `{c}`"),
            ShellError::Malformed(m) => write!(f, "malformed shell command: {m}"),
        }
    }
}

impl std::error::Error for ShellError {}

/// Parses the text of a `` `…` `` command (or of a `defaults.sh` file) into steps.
pub fn parse_shell(text: &str) -> Result<Vec<ShellStep>, ShellError> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut steps = Vec::new();
    for raw in joined.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line == "/tmp/sysctl_restore_${PPID}.sh" {
            steps.push(ShellStep::RestoreSysctls);
            continue;
        }
        if line.contains('|') {
            steps.push(parse_pipeline(line)?);
            continue;
        }
        let words = split_words(line)?;
        let words = strip_redirections(words);
        if words.is_empty() {
            continue;
        }
        parse_command(line, &words, &mut steps)?;
    }
    Ok(steps)
}

fn parse_command(line: &str, w: &[String], steps: &mut Vec<ShellStep>) -> Result<(), ShellError> {
    let cmd = w[0].as_str();
    let unsupported = || ShellError::Unsupported(line.to_string());
    if cmd.ends_with("defaults.sh") && w.len() == 1 {
        steps.push(ShellStep::Defaults {
            path: cmd.to_string(),
        });
    } else if cmd == "sysctl" {
        let mut any = false;
        for a in &w[1..] {
            if a == "-q" || a == "-w" {
                continue;
            }
            let (key, value) = a
                .split_once('=')
                .ok_or_else(|| ShellError::Malformed(format!("sysctl argument `{a}` has no =")))?;
            steps.push(ShellStep::Sysctl {
                key: key.to_string(),
                value: value.to_string(),
                restore: false,
            });
            any = true;
        }
        if !any {
            return Err(unsupported());
        }
    } else if cmd.ends_with("set_sysctls.py") {
        if w.len() < 2 {
            return Err(ShellError::Malformed(
                "set_sysctls.py without settings".into(),
            ));
        }
        for a in &w[1..] {
            let (path, value) = a.split_once('=').ok_or_else(|| {
                ShellError::Malformed(format!("set_sysctls.py argument `{a}` has no ="))
            })?;
            let key = path.strip_prefix("/proc/sys/").ok_or_else(|| {
                ShellError::Malformed(format!("`{path}` is not under /proc/sys/"))
            })?;
            steps.push(ShellStep::Sysctl {
                key: key.replace('/', "."),
                value: value.to_string(),
                restore: true,
            });
        }
    } else if cmd == "ethtool" && w.len() >= 5 && w[1] == "-K" && (w.len() - 3).is_multiple_of(2) {
        let mut features = Vec::new();
        for pair in w[3..].chunks(2) {
            let on = match pair[1].as_str() {
                "on" => true,
                "off" => false,
                other => {
                    return Err(ShellError::Malformed(format!(
                        "ethtool feature state `{other}` (accepts on, off)"
                    )));
                }
            };
            features.push((pair[0].clone(), on));
        }
        steps.push(ShellStep::Offload {
            dev: w[2].clone(),
            features,
        });
    } else if cmd == "tc"
        && w.len() >= 6
        && w[1] == "qdisc"
        && (w[2] == "add" || w[2] == "replace")
        && w[3] == "dev"
        && w[5] == "root"
        && w.len() >= 7
    {
        steps.push(ShellStep::Qdisc {
            dev: w[4].clone(),
            kind: w[6].clone(),
            args: w[7..].to_vec(),
        });
    } else if cmd == "ip" && w.len() == 4 && w[1] == "tcp_metrics" && w[2] == "flush" {
        steps.push(ShellStep::TcpMetricsFlush);
    } else if cmd == "ip" && w.len() >= 6 && w[1] == "link" && w[2] == "set" {
        let rest: Vec<&str> = w[3..].iter().map(String::as_str).collect();
        let rest = if rest[0] == "dev" {
            &rest[1..]
        } else {
            &rest[..]
        };
        match rest {
            [dev, "mtu", n] => {
                let mtu = n
                    .parse()
                    .map_err(|_| ShellError::Malformed(format!("mtu `{n}` is not a number")))?;
                steps.push(ShellStep::Mtu {
                    dev: (*dev).to_string(),
                    mtu,
                });
            }
            _ => return Err(unsupported()),
        }
    } else if cmd == "nstat" && w.len() == 2 && w[1] == "-n" {
        steps.push(ShellStep::NstatReset);
    } else {
        return Err(unsupported());
    }
    Ok(())
}

/// `nstat [-s] | grep NAME | grep -q " V "`.
fn parse_pipeline(line: &str) -> Result<ShellStep, ShellError> {
    let unsupported = || ShellError::Unsupported(line.to_string());
    let stages: Vec<Vec<String>> = line.split('|').map(split_words).collect::<Result<_, _>>()?;
    let [nstat, grep_name, grep_value] = stages.as_slice() else {
        return Err(unsupported());
    };
    let update_history = match nstat
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["nstat"] => true,
        ["nstat", "-s"] => false,
        _ => return Err(unsupported()),
    };
    let counter = match grep_name.as_slice() {
        [g, name] if g == "grep" => name.clone(),
        _ => return Err(unsupported()),
    };
    let value = match grep_value.as_slice() {
        [g, q, v] if g == "grep" && q == "-q" => v.trim().parse::<i64>().map_err(|_| {
            ShellError::Malformed(format!("grep pattern `{v}` is not a counter value"))
        })?,
        _ => return Err(unsupported()),
    };
    Ok(ShellStep::NstatExpect {
        counter,
        value,
        update_history,
    })
}

/// Splits a command line into words: whitespace separates, double and single
/// quotes group, `$((…))` is expanded as shell arithmetic.
fn split_words(line: &str) -> Result<Vec<String>, ShellError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                in_word = true;
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(q) => quoted.push(q),
                        None => {
                            return Err(ShellError::Malformed(format!(
                                "unterminated quote in `{line}`"
                            )));
                        }
                    }
                }
                if c == '"' {
                    cur.push_str(&expand_arith(&quoted)?);
                } else {
                    cur.push_str(&quoted);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(expand_arith(&std::mem::take(&mut cur))?);
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(expand_arith(&cur)?);
    }
    Ok(words)
}

/// Expands every `$((expr))` in `s` with integer arithmetic.
fn expand_arith(s: &str) -> Result<String, ShellError> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$((") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 3..];
        let end = after
            .find("))")
            .ok_or_else(|| ShellError::Malformed(format!("unterminated $(( in `{s}`")))?;
        let v = python::eval_int(&after[..end])
            .map_err(|e| ShellError::Malformed(format!("$(({})): {e}", &after[..end])))?;
        out.push_str(&v.to_string());
        rest = &after[end + 2..];
    }
    if rest.contains("$(") || rest.contains("${") {
        return Err(ShellError::Unsupported(s.to_string()));
    }
    out.push_str(rest);
    Ok(out)
}

/// Drops `> /dev/null`, `>/dev/null`, `2>&1` and the like.
fn strip_redirections(words: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        if w == ">" || w == "2>" || w == "1>" {
            skip_next = true;
        } else if w.starts_with(">/") || w.starts_with("2>") || w.starts_with("1>") {
        } else {
            out.push(w);
        }
    }
    out
}

/// Reads the `defaults.sh` named `path` (relative to `script_dir`) and parses
/// it. A file whose whole text is one path ending in `defaults.sh` is a
/// symbolic link stored as text (as `tcp/common/defaults.sh` is in the
/// corpus copy); it is followed relative to its own directory, at most four
/// times.
pub fn read_defaults(script_dir: &Path, path: &str) -> Result<Vec<ShellStep>, ShellError> {
    let mut file = script_dir.join(path);
    for _ in 0..4 {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| ShellError::Malformed(format!("cannot read {}: {e}", file.display())))?;
        let t = text.trim();
        if t.ends_with("defaults.sh") && !t.contains(char::is_whitespace) {
            let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
            file = dir.join(t);
            continue;
        }
        return parse_shell(&text);
    }
    Err(ShellError::Malformed(format!(
        "{path}: too many levels of links"
    )))
}

/// The settings a script's init command leaves in force, with
/// `defaults.sh` expanded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitSettings {
    /// Sysctl key → value, in the order they were last set.
    pub sysctls: BTreeMap<String, String>,
    /// Keys set through `set_sysctls.py` (to restore at cleanup).
    pub restored: Vec<String>,
    /// `(device, feature)` → on/off from `ethtool -K`.
    pub offloads: BTreeMap<(String, String), bool>,
    /// Device → root qdisc kind.
    pub qdiscs: BTreeMap<String, String>,
    /// Device → MTU.
    pub mtus: BTreeMap<String, u32>,
    /// Whether `ip tcp_metrics flush` ran.
    pub tcp_metrics_flushed: bool,
}

impl InitSettings {
    /// Applies `steps` in order. `load_defaults` returns the steps of a
    /// `defaults.sh` path (read from beside the script); it is called once
    /// per `Defaults` step.
    pub fn apply(
        &mut self,
        steps: &[ShellStep],
        load_defaults: &mut dyn FnMut(&str) -> Result<Vec<ShellStep>, ShellError>,
    ) -> Result<(), ShellError> {
        for s in steps {
            match s {
                ShellStep::Defaults { path } => {
                    let inner = load_defaults(path)?;
                    if inner
                        .iter()
                        .any(|s| matches!(s, ShellStep::Defaults { .. }))
                    {
                        return Err(ShellError::Malformed(format!(
                            "{path} runs another defaults file"
                        )));
                    }
                    self.apply(&inner, load_defaults)?;
                }
                ShellStep::Sysctl {
                    key,
                    value,
                    restore,
                } => {
                    self.sysctls.insert(key.clone(), value.clone());
                    if *restore && !self.restored.contains(key) {
                        self.restored.push(key.clone());
                    }
                }
                ShellStep::Offload { dev, features } => {
                    for (f, on) in features {
                        self.offloads.insert((dev.clone(), f.clone()), *on);
                    }
                }
                ShellStep::Qdisc { dev, kind, .. } => {
                    self.qdiscs.insert(dev.clone(), kind.clone());
                }
                ShellStep::Mtu { dev, mtu } => {
                    self.mtus.insert(dev.clone(), *mtu);
                }
                ShellStep::TcpMetricsFlush => self.tcp_metrics_flushed = true,
                ShellStep::RestoreSysctls
                | ShellStep::NstatReset
                | ShellStep::NstatExpect { .. } => {
                    return Err(ShellError::Unsupported(format!("{s:?} in an init command")));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sysctl(key: &str, value: &str, restore: bool) -> ShellStep {
        ShellStep::Sysctl {
            key: key.into(),
            value: value.into(),
            restore,
        }
    }

    #[test]
    fn init_with_sysctl_ethtool_and_set_sysctls() {
        let text = "../common/defaults.sh\nethtool -K tun0 tso off gso off\n\
                    ../common/set_sysctls.py /proc/sys/net/ipv4/tcp_slow_start_after_idle=1 \\\n\
                    \t\t /proc/sys/net/ipv4/tcp_min_tso_segs=10\n\
                    sysctl -q net.ipv4.tcp_rmem=\"4096 131072 $((32*1024*1024))\"";
        let steps = parse_shell(text).unwrap();
        assert_eq!(
            steps,
            vec![
                ShellStep::Defaults {
                    path: "../common/defaults.sh".into()
                },
                ShellStep::Offload {
                    dev: "tun0".into(),
                    features: vec![("tso".into(), false), ("gso".into(), false)]
                },
                sysctl("net.ipv4.tcp_slow_start_after_idle", "1", true),
                sysctl("net.ipv4.tcp_min_tso_segs", "10", true),
                sysctl("net.ipv4.tcp_rmem", "4096 131072 33554432", false),
            ]
        );
    }

    #[test]
    fn defaults_file_lines() {
        let text = "#!/bin/bash\n# c\nip tcp_metrics flush all > /dev/null 2>&1\n\
                    sysctl -q net.ipv4.tcp_wmem=\"4096 $((256*1024)) 4194304\"\n\
                    sysctl -q net.ipv4.tcp_early_retrans=4 net.ipv4.tcp_recovery=1\n\
                    sysctl -q net.ipv4.tcp_notsent_lowat=4294967295 > /dev/null 2>&1\n\
                    tc qdisc add dev tun0 root pfifo\n";
        let steps = parse_shell(text).unwrap();
        assert_eq!(
            steps,
            vec![
                ShellStep::TcpMetricsFlush,
                sysctl("net.ipv4.tcp_wmem", "4096 262144 4194304", false),
                sysctl("net.ipv4.tcp_early_retrans", "4", false),
                sysctl("net.ipv4.tcp_recovery", "1", false),
                sysctl("net.ipv4.tcp_notsent_lowat", "4294967295", false),
                ShellStep::Qdisc {
                    dev: "tun0".into(),
                    kind: "pfifo".into(),
                    args: vec![]
                },
            ]
        );
    }

    #[test]
    fn nstat_forms() {
        assert_eq!(
            parse_shell("nstat -n").unwrap(),
            vec![ShellStep::NstatReset]
        );
        assert_eq!(
            parse_shell("nstat -s | grep TcpExtTCPRcvQDrop| grep -q \" 1 \"").unwrap(),
            vec![ShellStep::NstatExpect {
                counter: "TcpExtTCPRcvQDrop".into(),
                value: 1,
                update_history: false
            }]
        );
        assert_eq!(
            parse_shell("nstat | grep TcpExtBeyondWindow | grep -q \" 3 \"").unwrap(),
            vec![ShellStep::NstatExpect {
                counter: "TcpExtBeyondWindow".into(),
                value: 3,
                update_history: true
            }]
        );
        assert_eq!(
            parse_shell("/tmp/sysctl_restore_${PPID}.sh").unwrap(),
            vec![ShellStep::RestoreSysctls]
        );
    }

    #[test]
    fn unknown_commands_are_unsupported() {
        assert_eq!(
            parse_shell("rm -rf /tmp/x").unwrap_err(),
            ShellError::Unsupported("rm -rf /tmp/x".into())
        );
        assert!(matches!(
            parse_shell("echo $(id)").unwrap_err(),
            ShellError::Unsupported(_)
        ));
        assert!(matches!(
            parse_shell("ethtool -K tun0 tso maybe").unwrap_err(),
            ShellError::Malformed(_)
        ));
    }

    #[test]
    fn settings_expand_defaults_and_later_lines_win() {
        let steps = parse_shell("./defaults.sh\nsysctl -q net.ipv4.tcp_timestamps=0").unwrap();
        let mut s = InitSettings::default();
        s.apply(&steps, &mut |p| {
            assert_eq!(p, "./defaults.sh");
            parse_shell("sysctl -q net.ipv4.tcp_timestamps=1 net.ipv4.tcp_sack=1")
        })
        .unwrap();
        assert_eq!(s.sysctls["net.ipv4.tcp_timestamps"], "0");
        assert_eq!(s.sysctls["net.ipv4.tcp_sack"], "1");
    }
}
