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

use netcore::{DEFAULT_TX_QUEUE_LEN, Duration, ETH_DATA_LEN};

use crate::sch_fifo::Fifo;
use crate::sch_fq_codel::{FqCodel, FqCodelParams};
use crate::sch_generic::{Noqueue, PfifoFast, Qdisc, QdiscStats};
use crate::sch_tbf::{Tbf, TbfParams};

/// The kinds [`qdisc_create`] knows.
pub const QDISC_KINDS: [&str; 7] = [
    "pfifo_fast",
    "pfifo",
    "bfifo",
    "fq_codel",
    "tbf",
    "noqueue",
    "fq",
];

/// Why a qdisc could not be created.
///
/// Mirrors the `-EINVAL`/`-ENOENT` returns of `qdisc_create()` with the
/// message tc or the kernel's extack would print, naming the parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QdiscError {
    /// No qdisc of this kind (`qdisc_lookup_ops()` failed).
    UnknownKind {
        /// The kind asked for.
        kind: String,
    },
    /// A word the qdisc does not take (`What is "..."?`).
    UnknownParam {
        /// The qdisc kind.
        kind: &'static str,
        /// The word.
        param: String,
    },
    /// A parameter without its value, or a required one missing.
    MissingValue {
        /// The qdisc kind.
        kind: &'static str,
        /// The parameter.
        param: &'static str,
    },
    /// A value out of range or unparsable (`Illegal "..."`).
    BadValue {
        /// The parameter.
        param: &'static str,
        /// The value given.
        value: String,
        /// What the parameter accepts.
        accepts: &'static str,
    },
}

impl fmt::Display for QdiscError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QdiscError::UnknownKind { kind } => write!(
                f,
                "unknown qdisc \"{kind}\": accepts one of {}",
                QDISC_KINDS.join(", ")
            ),
            QdiscError::UnknownParam { kind, param } => {
                write!(f, "{kind}: what is \"{param}\"?")
            }
            QdiscError::MissingValue { kind, param } => {
                write!(f, "{kind}: \"{param}\" is required and needs a value")
            }
            QdiscError::BadValue {
                param,
                value,
                accepts,
            } => write!(
                f,
                "illegal \"{param}\" value \"{value}\": accepts {accepts}"
            ),
        }
    }
}

impl core::error::Error for QdiscError {}

/// What a qdisc reads from its device when created.
///
/// Mirrors the fields of `struct net_device` qdiscs consult:
/// `tx_queue_len` (`txqueuelen`) and `mtu` (`psched_mtu()` adds the
/// 14-byte Ethernet header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QdiscDev {
    /// `dev->tx_queue_len` (1000).
    pub tx_queue_len: u32,
    /// `dev->mtu` (1500).
    pub mtu: u32,
}

impl Default for QdiscDev {
    fn default() -> QdiscDev {
        QdiscDev {
            tx_queue_len: DEFAULT_TX_QUEUE_LEN,
            mtu: ETH_DATA_LEN,
        }
    }
}

/// Creates a qdisc of `kind` with its defaults for `dev`.
///
/// Mirrors `qdisc_create_dflt()` in `net/sched/sch_generic.c`. `tbf` has
/// no defaults (tc requires `rate` and `burst`) and is refused here.
pub fn qdisc_create_dflt(kind: &str, dev: &QdiscDev) -> Result<Box<dyn Qdisc>, QdiscError> {
    qdisc_create(kind, &[], dev)
}

/// Creates a qdisc of `kind` from tc-style parameter words, e.g.
/// `qdisc_create("tbf", &["rate", "1mbit", "burst", "10kb", "latency", "50ms"], &dev)`.
///
/// Mirrors `qdisc_create()` in `net/sched/sch_api.c` with the option
/// parsing of tc's `q_*.c`. Accepted words:
///
/// - `pfifo_fast`, `noqueue`: none.
/// - `pfifo`: `limit PACKETS`; `bfifo`: `limit SIZE` (default
///   `txqueuelen` packets, or that many MTU-sized packets in bytes).
/// - `fq_codel`: `limit PACKETS`, `flows NUMBER`, `quantum BYTES`,
///   `target TIME`, `interval TIME`, `memory_limit SIZE`, `ecn`/`noecn`,
///   `drop_batch NUMBER`.
/// - `tbf`: `rate RATE` and `burst SIZE` (or `buffer`/`maxburst`), and one
///   of `limit SIZE` or `latency TIME`.
///
/// Units: SIZE is bytes with an optional `b`, `k`/`kb`, `m`/`mb`, `g`/`gb`
/// (powers of 1024); RATE is bits per second with an optional `bit`,
/// `kbit`, `mbit`, `gbit`, `tbit` (powers of 1000) or bytes per second
/// with `bps`, `kbps`, `mbps`, `gbps`; TIME is microseconds with an
/// optional `s`/`sec`/`secs`, `ms`/`msec`/`msecs`, `us`/`usec`/`usecs`.
///
/// ```
/// use qdisc::{QdiscDev, format_tc_qdisc_show, qdisc_create};
///
/// let q = qdisc_create("fq_codel", &["limit", "2000", "target", "2ms"], &QdiscDev::default())
///     .unwrap();
/// assert!(format_tc_qdisc_show(None, q.as_ref()).contains("limit 2000p"));
/// let err = qdisc_create("tbf", &["rate", "fast"], &QdiscDev::default()).unwrap_err();
/// assert_eq!(err.to_string(), "illegal \"rate\" value \"fast\": accepts a rate such as 1mbit, 500kbit, 10gbit");
/// ```
pub fn qdisc_create(
    kind: &str,
    args: &[&str],
    dev: &QdiscDev,
) -> Result<Box<dyn Qdisc>, QdiscError> {
    let kind: &'static str =
        QDISC_KINDS
            .iter()
            .find(|k| **k == kind)
            .ok_or_else(|| QdiscError::UnknownKind {
                kind: kind.to_owned(),
            })?;
    let mut words = Args {
        kind,
        words: args,
        pos: 0,
    };
    match kind {
        "pfifo_fast" | "noqueue" => {
            words.no_more()?;
            Ok(if kind == "noqueue" {
                Box::new(Noqueue::new())
            } else {
                Box::new(PfifoFast::new(dev.tx_queue_len))
            })
        }
        "pfifo" | "bfifo" => {
            let mut limit = None;
            while let Some(word) = words.next_word() {
                match word {
                    "limit" if kind == "pfifo" => limit = Some(words.value("limit", parse_u32)?),
                    "limit" => limit = Some(words.value("limit", parse_size)?),
                    _ => return Err(words.unknown(word)),
                }
            }
            Ok(Box::new(match (kind, limit) {
                ("pfifo", Some(l)) => Fifo::pfifo(l),
                ("pfifo", None) => Fifo::pfifo_default(dev.tx_queue_len),
                (_, Some(l)) => Fifo::bfifo(l).with_mtu(dev.mtu),
                (_, None) => Fifo::bfifo_default(dev.tx_queue_len, dev.mtu),
            }))
        }
        "fq_codel" => {
            let mut p = FqCodelParams::for_mtu(dev.mtu);
            while let Some(word) = words.next_word() {
                match word {
                    "limit" => p.limit = words.value("limit", parse_u32)?,
                    "flows" => p.flows = words.value("flows", parse_u32)?,
                    "quantum" => p.quantum = words.value("quantum", parse_u32)?,
                    "target" => p.target_us = words.value("target", parse_time_us)?,
                    "interval" => p.interval_us = words.value("interval", parse_time_us)?,
                    "memory_limit" => p.memory_limit = words.value("memory_limit", parse_size)?,
                    "drop_batch" => p.drop_batch_size = words.value("drop_batch", parse_u32)?,
                    "ecn" => p.ecn = true,
                    "noecn" => p.ecn = false,
                    _ => return Err(words.unknown(word)),
                }
            }
            Ok(Box::new(FqCodel::new(p)?))
        }
        "fq" => {
            let mut p = crate::FqParams::for_mtu(dev.mtu);
            while let Some(word) = words.next_word() {
                match word {
                    "limit" => p.limit = words.value("limit", parse_u32)?,
                    "flow_limit" => p.flow_limit = words.value("flow_limit", parse_u32)?,
                    "quantum" => p.quantum = words.value("quantum", parse_u32)?,
                    "initial_quantum" => {
                        p.initial_quantum = words.value("initial_quantum", parse_u32)?;
                    }
                    "maxrate" => p.flow_max_rate = words.value("maxrate", parse_rate)?,
                    "low_rate_threshold" => {
                        p.low_rate_threshold = words.value("low_rate_threshold", parse_rate)?;
                    }
                    "refill_delay" => {
                        let us = words.value("refill_delay", parse_time_us)?;
                        p.flow_refill_delay = Duration::from_micros(u64::from(us));
                    }
                    "horizon" => {
                        let us = words.value("horizon", parse_time_us)?;
                        p.horizon = Duration::from_micros(u64::from(us));
                    }
                    "orphan_mask" => p.orphan_mask = words.value("orphan_mask", parse_u32)?,
                    "buckets" => {
                        let n = words.value("buckets", parse_u32)?;
                        p.buckets_log = n.max(1).ilog2();
                    }
                    "pacing" => p.rate_enable = true,
                    "nopacing" => p.rate_enable = false,
                    "horizon_drop" => p.horizon_drop = true,
                    "horizon_cap" => p.horizon_drop = false,
                    _ => return Err(words.unknown(word)),
                }
            }
            Ok(Box::new(crate::Fq::new(p)?))
        }
        _ => {
            let (mut rate, mut burst, mut limit, mut latency) = (None, None, None, None);
            while let Some(word) = words.next_word() {
                match word {
                    "rate" => rate = Some(words.value("rate", parse_rate)?),
                    "burst" | "buffer" | "maxburst" => {
                        burst = Some(words.value("burst", parse_size)?);
                    }
                    "limit" => limit = Some(words.value("limit", parse_size)?),
                    "latency" => latency = Some(words.value("latency", parse_time_us)?),
                    _ => return Err(words.unknown(word)),
                }
            }
            let rate = rate.ok_or(QdiscError::MissingValue {
                kind,
                param: "rate",
            })?;
            let burst = burst.ok_or(QdiscError::MissingValue {
                kind,
                param: "burst",
            })?;
            let params = match (limit, latency) {
                (Some(limit), None) => TbfParams { rate, burst, limit },
                (None, Some(us)) => {
                    TbfParams::with_latency(rate, burst, Duration::from_micros(u64::from(us)))
                }
                (Some(_), Some(_)) => {
                    return Err(QdiscError::BadValue {
                        param: "latency",
                        value: "given with limit".to_owned(),
                        accepts: "either limit or latency, not both",
                    });
                }
                (None, None) => {
                    return Err(QdiscError::MissingValue {
                        kind,
                        param: "limit",
                    });
                }
            };
            Ok(Box::new(Tbf::new(params)?))
        }
    }
}

/// A cursor over tc-style words.
struct Args<'a> {
    kind: &'static str,
    words: &'a [&'a str],
    pos: usize,
}

impl<'a> Args<'a> {
    fn next_word(&mut self) -> Option<&'a str> {
        let w = self.words.get(self.pos).copied();
        self.pos += 1;
        w
    }

    fn value<T>(
        &mut self,
        param: &'static str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, QdiscError> {
        let kind = self.kind;
        let v = self
            .next_word()
            .ok_or(QdiscError::MissingValue { kind, param })?;
        parse(v).ok_or_else(|| QdiscError::BadValue {
            param,
            value: v.to_owned(),
            accepts: accepts_of(parse_name(param)),
        })
    }

    fn unknown(&self, word: &str) -> QdiscError {
        QdiscError::UnknownParam {
            kind: self.kind,
            param: word.to_owned(),
        }
    }

    fn no_more(&mut self) -> Result<(), QdiscError> {
        match self.next_word() {
            Some(w) => Err(self.unknown(w)),
            None => Ok(()),
        }
    }
}

/// Which parser a parameter uses, for the error text.
fn parse_name(param: &str) -> &'static str {
    match param {
        "rate" | "maxrate" | "low_rate_threshold" => "rate",
        "burst" | "memory_limit" => "size",
        "target" | "interval" | "latency" | "refill_delay" | "horizon" => "time",
        _ => "number",
    }
}

fn accepts_of(parser: &str) -> &'static str {
    match parser {
        "rate" => "a rate such as 1mbit, 500kbit, 10gbit",
        "size" => "a size in bytes such as 1514, 10kb, 32mb",
        "time" => "a time such as 5ms, 100ms, 1s, 500us",
        _ => "a whole number from 0 to 4294967295",
    }
}

fn parse_u32(s: &str) -> Option<u32> {
    s.parse().ok()
}

/// Splits `"10kb"` into `(10.0, "kb")`.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..end].parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some((n, &s[end..]))
}

/// A size in bytes. Mirrors tc's `get_size()` for byte units.
fn parse_size(s: &str) -> Option<u32> {
    let (n, unit) = split_number(s)?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let v = (n * mult).round();
    (v <= f64::from(u32::MAX)).then_some(v as u32)
}

/// A rate, returned in bytes per second. Mirrors tc's `get_rate()`.
fn parse_rate(s: &str) -> Option<u64> {
    let (n, unit) = split_number(s)?;
    let bits_per_sec = match unit.to_ascii_lowercase().as_str() {
        "" | "bit" => n,
        "kbit" => n * 1e3,
        "mbit" => n * 1e6,
        "gbit" => n * 1e9,
        "tbit" => n * 1e12,
        "bps" => n * 8.0,
        "kbps" => n * 8e3,
        "mbps" => n * 8e6,
        "gbps" => n * 8e9,
        _ => return None,
    };
    let bytes = (bits_per_sec / 8.0).round();
    (1.0..1.8e19).contains(&bytes).then_some(bytes as u64)
}

/// A time, returned in microseconds. Mirrors tc's `get_time()`.
fn parse_time_us(s: &str) -> Option<u32> {
    let (n, unit) = split_number(s)?;
    let us = match unit.to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" => n * 1e6,
        "ms" | "msec" | "msecs" => n * 1e3,
        "" | "us" | "usec" | "usecs" => n,
        _ => return None,
    };
    let us = us.round();
    (us <= f64::from(u32::MAX)).then_some(us as u32)
}

/// What replacing a device's qdisc did to the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QdiscGraft {
    /// The old qdisc's kind.
    pub old_kind: &'static str,
    /// The old qdisc's counters just before it was destroyed.
    pub old_stats: QdiscStats,
    /// Packets it still held, freed ([`netcore::DropReason::QueuePurge`]).
    pub purged_packets: u32,
    /// Bytes it still held.
    pub purged_bytes: u32,
}

/// Replaces the qdisc in `slot` with `new`, destroying the old one.
///
/// Mirrors `qdisc_graft()` → `dev_graft_qdisc()` → `qdisc_put()` in
/// `net/sched/sch_api.c`/`sch_generic.c`. Linux does not migrate queued
/// packets: the old qdisc is reset (`qdisc_reset()` frees everything it
/// holds, the requeue slot included) and destroyed; the new one starts
/// empty with zeroed counters. So does this function, and it reports what
/// was freed instead of losing it silently. The packets are not counted as
/// drops of either qdisc (Linux does not count them either; the old
/// counters die with it).
///
/// ```
/// use netcore::{Instant, PagePool, PagePoolParams, SkBuff};
/// use qdisc::{FqCodel, PfifoFast, Qdisc, qdisc_graft};
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let mut slot: Box<dyn Qdisc> = Box::new(PfifoFast::default());
/// let _ = slot.enqueue(SkBuff::from_slice(&pool, 0, &[0u8; 100]).unwrap(), Instant::ZERO);
/// let graft = qdisc_graft(&mut slot, Box::new(FqCodel::default()));
/// assert_eq!((graft.old_kind, graft.purged_packets, graft.purged_bytes), ("pfifo_fast", 1, 100));
/// assert_eq!(slot.id(), "fq_codel");
/// ```
#[doc(alias = "dev_graft_qdisc")]
pub fn qdisc_graft(slot: &mut Box<dyn Qdisc>, new: Box<dyn Qdisc>) -> QdiscGraft {
    let mut old = core::mem::replace(slot, new);
    let old_stats = old.stats();
    old.reset();
    QdiscGraft {
        old_kind: old.id(),
        old_stats,
        purged_packets: old_stats.qlen,
        purged_bytes: old_stats.backlog,
    }
}

/// Formats a byte count as tc's `sprint_size()` does: `32Mb`, `10Kb`,
/// `1600b` (a unit only when the value is within a small tolerance of a
/// round number of it).
pub fn sprint_size(bytes: u32) -> String {
    const KILO: f64 = 1024.0;
    const MEGA: f64 = KILO * KILO;
    let sz = f64::from(bytes);
    if sz >= MEGA && (MEGA * (sz / MEGA).round() - sz).abs() < 1024.0 {
        format!("{}Mb", fmt_g((sz / MEGA).round(), 6))
    } else if sz >= KILO && (KILO * (sz / KILO).round() - sz).abs() < 16.0 {
        format!("{}Kb", fmt_g((sz / KILO).round(), 6))
    } else {
        format!("{bytes}b")
    }
}

/// Formats a time in microseconds as tc's `sprint_time()` does (three
/// significant digits, `%.3g`): `1.5s`, `5ms`, `100ms`, `500us`. The
/// kernel reports CoDel's 5 ms target as 4999 µs (its clock counts
/// 1.024 µs units); three digits print it back as `5ms`.
pub fn sprint_time(usecs: u64) -> String {
    let t = usecs as f64;
    if t >= 1e6 {
        format!("{}s", fmt_g(t / 1e6, 3))
    } else if t >= 1e3 {
        format!("{}ms", fmt_g(t / 1e3, 3))
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

/// C's `%.{precision}g` for values from 1e-3 up: `precision` significant
/// digits, trailing zeros removed.
fn fmt_g(x: f64, precision: i32) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let digits = x.abs().log10().floor() as i32 + 1;
    let decimals = (precision - digits).max(0) as usize;
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
    use crate::testutil::{pool, skb_len, skb_prio};
    use netcore::Instant;

    #[test]
    fn create_by_name_with_defaults_and_parameters() {
        let dev = QdiscDev::default();
        for kind in ["pfifo_fast", "pfifo", "bfifo", "fq_codel", "noqueue"] {
            assert_eq!(qdisc_create_dflt(kind, &dev).unwrap().id(), kind);
        }
        let show = |q: Box<dyn Qdisc>| format_tc_qdisc_show(None, q.as_ref());
        assert!(show(qdisc_create_dflt("bfifo", &dev).unwrap()).contains("limit 1514000b"));
        assert!(show(qdisc_create("pfifo", &["limit", "50"], &dev).unwrap()).contains("limit 50p"));
        let q = qdisc_create(
            "fq_codel",
            &[
                "limit",
                "500",
                "flows",
                "64",
                "quantum",
                "300",
                "target",
                "2ms",
                "interval",
                "50ms",
                "memory_limit",
                "4mb",
                "noecn",
                "drop_batch",
                "8",
            ],
            &dev,
        )
        .unwrap();
        assert!(show(q).starts_with(
            "qdisc fq_codel 0: root refcnt 2 limit 500p flows 64 quantum 300 target 2ms \
             interval 50ms memory_limit 4Mb drop_batch 8 \n"
        ));
        let q = qdisc_create(
            "tbf",
            &["rate", "8mbit", "burst", "5kb", "limit", "20000"],
            &dev,
        )
        .unwrap();
        assert!(
            show(q).starts_with("qdisc tbf 0: root refcnt 2 rate 8Mbit burst 5Kb lat 14.9ms \n")
        );
    }

    #[test]
    fn bad_words_are_named() {
        let dev = QdiscDev::default();
        let err = |kind, args: &[&str]| qdisc_create(kind, args, &dev).unwrap_err();
        assert_eq!(
            err("sfq", &[]),
            QdiscError::UnknownKind {
                kind: "sfq".to_owned()
            }
        );
        assert!(err("sfq", &[]).to_string().contains("pfifo_fast, pfifo"));
        assert_eq!(
            err("pfifo_fast", &["limit", "5"]),
            QdiscError::UnknownParam {
                kind: "pfifo_fast",
                param: "limit".to_owned()
            }
        );
        assert_eq!(
            err("pfifo", &["limit"]),
            QdiscError::MissingValue {
                kind: "pfifo",
                param: "limit"
            }
        );
        let e = err("fq_codel", &["target", "5 parsecs"]);
        assert_eq!(
            e.to_string(),
            "illegal \"target\" value \"5 parsecs\": accepts a time such as 5ms, 100ms, 1s, 500us"
        );
        assert!(
            err("fq_codel", &["flows", "70000"])
                .to_string()
                .contains("flows")
        );
        assert_eq!(
            err("tbf", &["burst", "10kb", "latency", "1ms"]),
            QdiscError::MissingValue {
                kind: "tbf",
                param: "rate"
            }
        );
        assert_eq!(
            err("tbf", &["rate", "1mbit", "burst", "10kb"]),
            QdiscError::MissingValue {
                kind: "tbf",
                param: "limit"
            }
        );
        assert!(
            err(
                "tbf",
                &[
                    "rate", "1mbit", "burst", "10kb", "limit", "1", "latency", "1ms"
                ]
            )
            .to_string()
            .contains("latency")
        );
        assert!(
            qdisc_create_dflt("tbf", &dev).is_err(),
            "tbf has no defaults"
        );
    }

    #[test]
    fn units_parse_as_tc_parses_them() {
        assert_eq!(parse_size("1514"), Some(1514));
        assert_eq!(parse_size("10kb"), Some(10_240));
        assert_eq!(parse_size("32MB"), Some(32 << 20));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_rate("1mbit"), Some(125_000));
        assert_eq!(parse_rate("100kbps"), Some(100_000));
        assert_eq!(parse_rate("8000"), Some(1000));
        assert_eq!(parse_time_us("5ms"), Some(5_000));
        assert_eq!(parse_time_us("1.5s"), Some(1_500_000));
        assert_eq!(parse_time_us("250"), Some(250));
    }

    #[test]
    fn grafting_frees_the_old_queue_and_reports_it() {
        let pool = pool();
        let mut slot: Box<dyn Qdisc> =
            qdisc_create_dflt("pfifo_fast", &QdiscDev::default()).unwrap();
        let t = Instant::ZERO;
        for prio in [0, 6, 2, 0] {
            let _ = slot.enqueue(skb_prio(&pool, 500, prio), t);
        }
        let sent = slot.dequeue(t).unwrap();
        slot.requeue(sent); // the driver was busy: it sits in the requeue slot
        let _ = slot.enqueue(skb_len(&pool, 100), t);
        let graft = qdisc_graft(&mut slot, Box::new(FqCodel::default()));
        assert_eq!(graft.old_kind, "pfifo_fast");
        assert_eq!((graft.purged_packets, graft.purged_bytes), (5, 2100));
        assert_eq!(graft.old_stats.requeues, 1);
        assert_eq!(
            pool.stats().inflight(),
            0,
            "every old packet went back to the pool"
        );
        assert_eq!(slot.id(), "fq_codel");
        assert_eq!(
            slot.stats(),
            QdiscStats::default(),
            "the new qdisc starts clean"
        );
        assert!(slot.dequeue(t).is_none());
    }

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
        assert_eq!(sprint_time(4_999), "5ms");
        assert_eq!(sprint_time(99_999), "100ms");
        assert_eq!(sprint_time(33_333), "33.3ms");
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
