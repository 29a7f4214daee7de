//! Creating qdiscs by name, replacing a device's qdisc, and the text of
//! `tc -s qdisc show`.
//!
//! Mirrors `net/sched/sch_api.c` (`qdisc_create()`, `qdisc_graft()`,
//! `tc_fill_qdisc()`), `qdisc_create_dflt()` and `dev_graft_qdisc()` of
//! `net/sched/sch_generic.c`, and the printing side of iproute2's `tc`
//! (`tc/tc_qdisc.c`, `tc/tc_util.c`: `sprint_size`, `sprint_time`,
//! `sprint_rate`).
//!
//! # Deviations from Linux
//!
//! - Parameters come as tc-style words (`["limit", "100"]`) rather than
//!   netlink attributes; the parser accepts the words and units `tc` does
//!   for these qdiscs (listed at [`qdisc_create`]), and a bad word is an
//!   error naming the parameter.
//! - The shown handle is always `0:` and the parent always `root` with
//!   `refcnt 2`, as for the default root qdisc `qdisc_create_dflt()`
//!   attaches to a single-queue device; there are no classes or handles.

use core::fmt::{self, Write as _};

use crate::sch_generic::Qdisc;

/// Formats a byte count as tc's `sprint_size()` does: `32Mb`, `10Kb`,
/// `1600b` (a unit only when the value is within a small tolerance of a
/// round number of it).
pub fn sprint_size(bytes: u32) -> String {
    const KILO: f64 = 1024.0;
    const MEGA: f64 = KILO * KILO;
    let sz = f64::from(bytes);
    if sz >= MEGA && (MEGA * (sz / MEGA).round() - sz).abs() < 1024.0 {
        format!("{}Mb", fmt_g((sz / MEGA).round()))
    } else if sz >= KILO && (KILO * (sz / KILO).round() - sz).abs() < 16.0 {
        format!("{}Kb", fmt_g((sz / KILO).round()))
    } else {
        format!("{bytes}b")
    }
}

/// Formats a time in microseconds as tc's `sprint_time()` does: `1.5s`,
/// `5ms`, `100ms`, `500us`.
pub fn sprint_time(usecs: u64) -> String {
    let t = usecs as f64;
    if t >= 1e6 {
        format!("{}s", fmt_g(t / 1e6))
    } else if t >= 1e3 {
        format!("{}ms", fmt_g(t / 1e3))
    } else {
        format!("{usecs}us")
    }
}

/// Formats a rate given in bytes per second as tc's `sprint_rate()` does,
/// in bits per second with SI units: `1Mbit`, `1500Kbit`, `800bit`.
pub fn sprint_rate(bytes_per_sec: u64) -> String {
    const UNITS: [&str; 5] = ["", "K", "M", "G", "T"];
    let mut rate = bytes_per_sec.saturating_mul(8);
    let mut i = 0;
    while i < UNITS.len() - 1 {
        if rate < 1000 || (!rate.is_multiple_of(1000) && rate < 1_000_000) {
            break;
        }
        rate /= 1000;
        i += 1;
    }
    format!("{rate}{}bit", UNITS[i])
}

/// C's `%g`: six significant digits, trailing zeros removed.
fn fmt_g(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let digits = x.abs().log10().floor() as i32 + 1;
    let decimals = (6 - digits).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Prints one qdisc as `tc -s qdisc show` does.
///
/// Mirrors `print_qdisc()` in iproute2's `tc/tc_qdisc.c` with the kernel's
/// `tc_fill_qdisc()`. With `dev` `None` the output is that of
/// `tc -s qdisc show dev eth0` (the device is not repeated); with
/// `Some("eth0")` that of `tc -s qdisc show`, which names it. The lines
/// are: the kind, handle, parent and parameters; `Sent ...`; `backlog ...`;
/// then the qdisc's own statistics ([`Qdisc::dump_stats`]), if any.
///
/// ```
/// use qdisc::{PfifoFast, format_tc_qdisc_show};
///
/// let q = PfifoFast::new(1000);
/// assert_eq!(
///     format_tc_qdisc_show(None, &q),
///     "qdisc pfifo_fast 0: root refcnt 2 bands 3 priomap 1 2 2 2 1 2 0 0 1 1 1 1 1 1 1 1\n \
///      Sent 0 bytes 0 pkt (dropped 0, overlimits 0 requeues 0) \n \
///      backlog 0b 0p requeues 0\n"
/// );
/// ```
#[doc(alias = "print_qdisc")]
#[doc(alias = "tc_fill_qdisc")]
pub fn format_tc_qdisc_show(dev: Option<&str>, q: &dyn Qdisc) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; a qdisc's dump only writes.
    let _ = write_tc_qdisc_show(&mut out, dev, q);
    out
}

fn write_tc_qdisc_show(out: &mut String, dev: Option<&str>, q: &dyn Qdisc) -> fmt::Result {
    write!(out, "qdisc {} 0: ", q.id())?;
    if let Some(dev) = dev {
        write!(out, "dev {dev} ")?;
    }
    out.push_str("root refcnt 2 ");
    q.dump(out)?;
    let s = q.stats();
    write!(
        out,
        "\n Sent {} bytes {} pkt (dropped {}, overlimits {} requeues {}) \n backlog {} {}p requeues {}\n",
        s.bytes,
        s.packets,
        s.drops,
        s.overlimits,
        s.requeues,
        sprint_size(s.backlog),
        s.qlen,
        s.requeues
    )?;
    let mut xstats = String::new();
    q.dump_stats(&mut xstats)?;
    if !xstats.is_empty() {
        out.push_str(&xstats);
        out.push('\n');
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_as_tc_prints_them() {
        assert_eq!(sprint_size(0), "0b");
        assert_eq!(sprint_size(1514), "1514b");
        assert_eq!(sprint_size(1600), "1600b");
        assert_eq!(sprint_size(10 * 1024), "10Kb");
        assert_eq!(sprint_size(10 * 1024 + 15), "10Kb");
        assert_eq!(sprint_size(10 * 1024 + 16), "10256b");
        assert_eq!(sprint_size(32 << 20), "32Mb");
    }

    #[test]
    fn times_print_as_tc_prints_them() {
        assert_eq!(sprint_time(5_000), "5ms");
        assert_eq!(sprint_time(100_000), "100ms");
        assert_eq!(sprint_time(2_500), "2.5ms");
        assert_eq!(sprint_time(1_500_000), "1.5s");
        assert_eq!(sprint_time(999), "999us");
    }

    #[test]
    fn rates_print_as_tc_prints_them() {
        assert_eq!(sprint_rate(125_000), "1Mbit");
        assert_eq!(sprint_rate(187_500), "1500Kbit");
        assert_eq!(sprint_rate(100), "800bit");
        assert_eq!(sprint_rate(125_000_000), "1Gbit");
        assert_eq!(sprint_rate(1_250), "10Kbit");
    }
}
