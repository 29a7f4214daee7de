//! The runner's report: one line per script and a summary.
//!
//! `PASS path`, `FAIL path: message` or `SKIP path: reason`, then
//! `N passed, N failed, N skipped`. A script the runner cannot run in full (an
//! unsupported construct, command or option) is a SKIP with the reason,
//! never a PASS.

use std::fmt;

use super::parser::ParseError;

/// The result of one script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every event matched.
    Pass,
    /// The first failure, with its line.
    Fail(String),
    /// Not run in full; the reason names the missing feature.
    Skip(String),
}

impl Outcome {
    /// The outcome of a script that did not parse: SKIP for an unsupported
    /// construct, FAIL for a syntax error.
    pub fn from_parse_error(e: &ParseError) -> Self {
        if e.is_unsupported() {
            Outcome::Skip(e.to_string())
        } else {
            Outcome::Fail(e.to_string())
        }
    }
}

/// The results of a run, in the order the scripts ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// `(script path, outcome)`.
    pub entries: Vec<(String, Outcome)>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Report::default()
    }

    /// Adds one script's result.
    pub fn push(&mut self, path: impl Into<String>, outcome: Outcome) {
        self.entries.push((path.into(), outcome));
    }

    /// `(passed, failed, skipped)`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for (_, o) in &self.entries {
            match o {
                Outcome::Pass => c.0 += 1,
                Outcome::Fail(_) => c.1 += 1,
                Outcome::Skip(_) => c.2 += 1,
            }
        }
        c
    }

    /// Whether nothing failed.
    pub fn all_passed_or_skipped(&self) -> bool {
        self.counts().1 == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, o) in &self.entries {
            // Keep each result on one line.
            let one = |s: &str| s.replace('\n', " ");
            match o {
                Outcome::Pass => writeln!(f, "PASS {path}")?,
                Outcome::Fail(m) => writeln!(f, "FAIL {path}: {}", one(m))?,
                Outcome::Skip(r) => writeln!(f, "SKIP {path}: {}", one(r))?,
            }
        }
        let (p, x, s) = self.counts();
        writeln!(f, "{p} passed, {x} failed, {s} skipped")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packetdrill::parser::ParseErrorKind;

    #[test]
    fn report_lines_and_summary() {
        let mut r = Report::new();
        r.push("tcp/a.pkt", Outcome::Pass);
        r.push(
            "tcp/b.pkt",
            Outcome::Fail("line 3: expected > S.\nmore".into()),
        );
        r.push("tcp/c.pkt", Outcome::Skip("needs TCP_INQ".into()));
        r.push("tcp/d.pkt", Outcome::Pass);
        assert_eq!(
            r.to_string(),
            "PASS tcp/a.pkt\nFAIL tcp/b.pkt: line 3: expected > S. more\n\
             SKIP tcp/c.pkt: needs TCP_INQ\nPASS tcp/d.pkt\n2 passed, 1 failed, 1 skipped\n"
        );
        assert!(!r.all_passed_or_skipped());
        assert_eq!(Report::new().to_string(), "0 passed, 0 failed, 0 skipped\n");
    }

    #[test]
    fn parse_errors_map_to_skip_or_fail() {
        let unsupported = ParseError {
            line: 4,
            kind: ParseErrorKind::Unsupported("shell command `tc qdisc show`".into()),
        };
        assert_eq!(
            Outcome::from_parse_error(&unsupported),
            Outcome::Skip("line 4: unsupported: shell command `tc qdisc show`".into())
        );
        let syntax = ParseError {
            line: 9,
            kind: ParseErrorKind::Syntax("expected `)`".into()),
        };
        assert_eq!(
            Outcome::from_parse_error(&syntax),
            Outcome::Fail("line 9: syntax error: expected `)`".into())
        );
    }
}
