//! Running a described scenario: captures, pings, the run, the reports.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::config::Built;
use crate::error::NetstackError;

/// Runs a built description and returns what `netstack run` prints: each
/// ping's output, each report under a `host$ command` line, and where the
/// captures went.
pub fn run_scenario(built: Built) -> Result<String, NetstackError> {
    let Built { mut net, scenario } = built;
    let mut caps = Vec::new();
    for (h, d, f) in &scenario.captures {
        caps.push((h.clone(), d.clone(), net.host(h)?.capture(d, Path::new(f))?));
    }
    let mut socks = Vec::new();
    for p in &scenario.pings {
        let host = Arc::clone(net.host(&p.from)?.shared());
        let sock = host.ping_socket(p.to, p.size);
        for i in 0..p.count {
            let (s, h) = (Arc::clone(&sock), Arc::clone(&host));
            let seq = (i + 1) as u16;
            let at = p.start.saturating_add(p.interval.saturating_mul(i));
            net.after(at, move |_| {
                h.run_on(0, move |ctx| {
                    let _ = s.send(ctx, seq);
                });
            });
        }
        socks.push((p.clone(), sock));
    }
    match scenario.duration {
        Some(d) => net.run_for(d)?,
        None => net.run_until_idle()?,
    }
    let mut out = String::new();
    for (p, s) in &socks {
        let _ = writeln!(
            out,
            "{}$ ping -c {} -s {} {}",
            p.from, p.count, p.size, p.to
        );
        out.push_str(&s.report().to_string());
        out.push('\n');
    }
    for (h, reports) in &scenario.reports {
        let host = net.host(h)?;
        for r in reports {
            let _ = writeln!(out, "{h}$ {r}");
            out.push_str(&host.report(r)?);
            out.push('\n');
        }
    }
    for (h, d, c) in &caps {
        c.flush()?;
        let _ = writeln!(
            out,
            "capture of {h} {d}: {} ({} packets)",
            c.path().display(),
            c.captured()
        );
    }
    let _ = writeln!(
        out,
        "virtual time: {:.6} s",
        net.now().as_nanos() as f64 / 1e9
    );
    Ok(out)
}
