//! `netstack plot`: a bulk transfer's congestion window and time-sequence
//! graph, drawn from the recorded `tcp_probe` trace.
//!
//! Mirrors what one does on Linux with the `tcp:tcp_probe` tracepoint
//! (`include/trace/events/tcp.h`) and a capture of the sender: enable the
//! event, run a transfer, then plot `snd_cwnd` and `ssthresh` over time
//! and a time-sequence graph of the segments sent (as `tcptrace` and
//! `xplot` draw it). Here the host records the trace itself
//! ([`CpuCtx::set_tcp_trace`](crate::CpuCtx::set_tcp_trace)) into a
//! [`TcpTrace`], and [`run_plot`] writes two SVG files.
//!
//! ```text
//!  tcp_ack() ─► TcpContext::tcp_probe ─► CpuCtx ─► TcpTrace.probes ─► cwnd.svg
//!  tcp_transmit_skb() ─► CpuCtx::ip_queue_xmit ─► TcpTrace.sent ──► tseq.svg
//! ```
//!
//! # Deviations from Linux
//!
//! - The segment trace is taken where TCP hands a segment to IP
//!   (`ip_queue_xmit()`), not from a packet capture; a segment the qdisc
//!   or the wire drops still appears, which is what a sender-side graph
//!   shows.
//! - The SVG is written by hand (a few dozen lines) rather than with a
//!   plotting crate: the build has no registry access for new crates.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netcore::{Duration, Instant, SkBuff};
use nic_hw::LinkConfig;
use parking_lot::Mutex;
use tcp::TcpProbe;

use crate::error::NetstackError;
use crate::host::{Host, NicConfig};
use crate::network::Network;
use crate::tcp::{TcpBulkReport, tcp_bulk};

/// A shared recorder of TCP's trace, handed to
/// [`CpuCtx::set_tcp_trace`](crate::CpuCtx::set_tcp_trace).
pub type TcpTraceLog = Arc<Mutex<TcpTrace>>;

/// One segment TCP transmitted. Mirrors what `tcptrace` takes from a
/// capture of the sender for its time-sequence graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentSegment {
    /// When TCP handed it to IP.
    pub at: Instant,
    /// Source address and port.
    pub src: SocketAddrV4,
    /// Destination address and port.
    pub dst: SocketAddrV4,
    /// Its sequence number.
    pub seq: u32,
    /// Payload bytes.
    pub len: u32,
    /// Whether it starts below the highest sequence number already sent
    /// on its flow (a retransmission).
    pub retrans: bool,
}

/// A recorded TCP trace: every `tcp_probe` sample and every segment sent.
///
/// Mirrors the ring buffer of `/sys/kernel/tracing/trace` with the
/// `tcp:tcp_probe` event enabled, plus a capture of the sender.
#[derive(Clone, Debug, Default)]
pub struct TcpTrace {
    /// One sample per processed ACK, in order.
    pub probes: Vec<TcpProbe>,
    /// One entry per segment transmitted, in order.
    pub sent: Vec<SentSegment>,
    /// The highest sequence number sent so far (`snd_nxt` as seen on the
    /// wire), by flow.
    high: HashMap<(SocketAddrV4, SocketAddrV4), u32>,
}

impl TcpTrace {
    /// A new, empty log to share between CPUs.
    pub fn log() -> TcpTraceLog {
        Arc::new(Mutex::new(TcpTrace::default()))
    }

    /// Whether the congestion window ever shrank from one sample to the
    /// next of the same flow (a loss or a reduction was answered).
    pub fn cwnd_reductions(&self) -> usize {
        let mut last: HashMap<(SocketAddrV4, SocketAddrV4), u32> = HashMap::new();
        let mut n = 0;
        for p in &self.probes {
            if let Some(prev) = last.insert((p.src, p.dst), p.snd_cwnd)
                && p.snd_cwnd < prev
            {
                n += 1;
            }
        }
        n
    }
}

/// Records the segment in `skb` (a TCP header and payload, as TCP hands
/// it to IP) into `log`. Segments too short to hold a header are skipped.
pub(crate) fn trace_xmit(
    log: &TcpTraceLog,
    at: Instant,
    skb: &SkBuff,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
) {
    let h = skb.data();
    let (Some(ports), Some(seq), Some(&off)) = (h.get(0..4), h.get(4..8), h.get(12)) else {
        return;
    };
    let doff = usize::from(off >> 4) * 4;
    let len = u32::try_from(skb.len().saturating_sub(doff)).unwrap_or(u32::MAX);
    let src = SocketAddrV4::new(saddr, u16::from_be_bytes([ports[0], ports[1]]));
    let dst = SocketAddrV4::new(daddr, u16::from_be_bytes([ports[2], ports[3]]));
    let seq = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
    let mut t = log.lock();
    let end = seq.wrapping_add(len);
    let retrans = match t.high.get(&(src, dst)) {
        // after(high, seq): the segment starts below what was sent.
        Some(&high) => len > 0 && (high.wrapping_sub(seq) as i32) > 0,
        None => false,
    };
    let high = t.high.entry((src, dst)).or_insert(end);
    if (end.wrapping_sub(*high) as i32) > 0 {
        *high = end;
    }
    t.sent.push(SentSegment {
        at,
        src,
        dst,
        seq,
        len,
        retrans,
    });
}

/// What `netstack plot` runs.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotOptions {
    /// Seed of every random choice.
    pub seed: u64,
    /// Bytes h1 sends to h2.
    pub bytes: u64,
    /// Probability that the wire drops a frame, each direction (0 ≤ p < 1).
    pub loss: f64,
    /// Directory the SVG files go to (created if absent).
    pub out: PathBuf,
}

/// What [`run_plot`] produced.
#[derive(Clone, Debug)]
pub struct PlotReport {
    /// The congestion window graph.
    pub cwnd_svg: PathBuf,
    /// The time-sequence graph.
    pub tseq_svg: PathBuf,
    /// The sender's recorded trace.
    pub trace: TcpTrace,
    /// The transfer.
    pub bulk: TcpBulkReport,
}

/// The demo's port for the bulk stream (`iperf`'s).
const PLOT_PORT: u16 = 5001;

/// Runs a bulk transfer from h1 to h2 on the demo's two hosts (a
/// 10 Gbit/s wire, here with `loss`), recording h1's TCP trace, and
/// writes `cwnd.svg` and `tseq.svg` into `out`.
///
/// Errors name the bad argument (`bytes` must be positive, `loss` in
/// `0..1`), the file that could not be written, or the layer that failed.
pub fn run_plot(opts: &PlotOptions) -> Result<PlotReport, NetstackError> {
    if opts.bytes == 0 {
        return Err(NetstackError::bad_arg("bytes", "a positive byte count"));
    }
    if !(0.0..1.0).contains(&opts.loss) {
        return Err(NetstackError::bad_arg(
            "loss",
            "a probability from 0 up to (not including) 1",
        ));
    }
    let cfg = LinkConfig::default()
        .rate_bps(10_000_000_000)
        .delay(Duration::from_micros(1))
        .loss(opts.loss);
    cfg.validate()
        .map_err(|_| NetstackError::bad_arg("loss", "a probability from 0 up to 1"))?;
    let mut net = Network::new(opts.seed);
    let (a, b) = net.wire("w0", cfg)?;
    for (name, addr, phy) in [("h1", "198.18.0.1/24", a), ("h2", "198.18.0.2/24", b)] {
        net.add_host(
            Host::builder()
                .name(name)
                .cpus(2)
                .nic(NicConfig::new().queues(2).phy(phy))
                .addr(addr),
        )?;
    }
    let log = TcpTrace::log();
    let h1 = net.host_mut("h1")?;
    for cpu in 0..h1.nr_cpus() {
        let l = Arc::clone(&log);
        h1.with_cpu(cpu, move |c| c.set_tcp_trace(Some(l)))?;
    }
    let bulk = tcp_bulk(
        &mut net,
        "h1",
        "h2",
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), PLOT_PORT),
        opts.bytes,
        Duration::from_micros(50),
        Duration::from_secs(600),
    )?;
    let trace = log.lock().clone();
    std::fs::create_dir_all(&opts.out)
        .map_err(|e| NetstackError::Io(format!("{}: {e}", opts.out.display())))?;
    let cwnd_svg = opts.out.join("cwnd.svg");
    let tseq_svg = opts.out.join("tseq.svg");
    write_file(&cwnd_svg, &cwnd_plot(&trace))?;
    write_file(&tseq_svg, &tseq_plot(&trace))?;
    Ok(PlotReport {
        cwnd_svg,
        tseq_svg,
        trace,
        bulk,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), NetstackError> {
    std::fs::write(path, text).map_err(|e| NetstackError::Io(format!("{}: {e}", path.display())))
}

/// How a series is drawn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Draw {
    /// A line through the points.
    Line,
    /// A step function: each value holds until the next point.
    Step,
    /// A cross at each point.
    Marks,
}

/// One line of a graph: its name, colour, points and how it is drawn.
struct Series {
    name: &'static str,
    colour: &'static str,
    points: Vec<(f64, f64)>,
    draw: Draw,
}

/// The time of `at` in milliseconds since `t0`.
fn ms(at: Instant, t0: Instant) -> f64 {
    at.saturating_duration_since(t0).as_nanos() as f64 / 1e6
}

/// `snd_cwnd` and `ssthresh` (segments) over time, from the probes of
/// the first flow in the trace.
fn cwnd_plot(t: &TcpTrace) -> String {
    let first = t.probes.first().map(|p| (p.src, p.dst));
    let t0 = t.probes.first().map_or(Instant::ZERO, |p| p.at);
    let flow: Vec<&TcpProbe> = t
        .probes
        .iter()
        .filter(|p| Some((p.src, p.dst)) == first)
        .collect();
    let cwnd = flow
        .iter()
        .map(|p| (ms(p.at, t0), f64::from(p.snd_cwnd)))
        .collect();
    // An "infinite" ssthresh (slow start before any loss) is left out.
    let ssthresh = flow
        .iter()
        .filter(|p| p.ssthresh < 0x7fff_ffff)
        .map(|p| (ms(p.at, t0), f64::from(p.ssthresh)))
        .collect();
    svg_graph(
        "snd_cwnd and ssthresh (tcp_probe)",
        "time (ms)",
        "segments",
        &[
            Series {
                name: "snd_cwnd",
                colour: "#1f77b4",
                points: cwnd,
                draw: Draw::Step,
            },
            Series {
                name: "ssthresh",
                colour: "#ff7f0e",
                points: ssthresh,
                draw: Draw::Step,
            },
        ],
    )
}

/// The sequence number (relative to the first) of each data segment sent
/// on the first flow over time; retransmissions marked.
fn tseq_plot(t: &TcpTrace) -> String {
    let data: Vec<&SentSegment> = t.sent.iter().filter(|s| s.len > 0).collect();
    let first = data.first().map(|s| (s.src, s.dst));
    let (t0, isn) = data.first().map_or((Instant::ZERO, 0), |s| (s.at, s.seq));
    let flow = || data.iter().filter(|s| Some((s.src, s.dst)) == first);
    let point = |s: &&&SentSegment| (ms(s.at, t0), f64::from(s.seq.wrapping_sub(isn)));
    svg_graph(
        "time-sequence graph (sender)",
        "time (ms)",
        "relative sequence number",
        &[
            Series {
                name: "sent",
                colour: "#1f77b4",
                points: flow().filter(|s| !s.retrans).map(|s| point(&s)).collect(),
                draw: Draw::Line,
            },
            Series {
                name: "retransmitted",
                colour: "#d62728",
                points: flow().filter(|s| s.retrans).map(|s| point(&s)).collect(),
                draw: Draw::Marks,
            },
        ],
    )
}

/// Graph size and margins, in SVG user units.
const W: f64 = 800.0;
const H: f64 = 480.0;
const ML: f64 = 80.0;
const MR: f64 = 20.0;
const MT: f64 = 40.0;
const MB: f64 = 60.0;

/// A line graph with axes, ticks, a legend and one polyline (or a path
/// of marks) per series.
fn svg_graph(title: &str, xlabel: &str, ylabel: &str, series: &[Series]) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x1, mut y1) = (0.0f64, 0.0f64);
    for &(x, y) in all {
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let (x1, y1) = (if x1 > 0.0 { x1 } else { 1.0 }, y1.max(1.0) * 1.05);
    let px = |x: f64| ML + x / x1 * (W - ML - MR);
    let py = |y: f64| H - MB - y / y1 * (H - MT - MB);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="{W}" height="{H}" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="16">{}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>
<path d="M{ML} {MT} V{} H{}" fill="none" stroke="black"/>"#,
        W / 2.0,
        xml_escape(title),
        (ML + W - MR) / 2.0,
        H - 16.0,
        xml_escape(xlabel),
        (MT + H - MB) / 2.0,
        (MT + H - MB) / 2.0,
        xml_escape(ylabel),
        H - MB,
        W - MR,
    );
    for i in 0..=5 {
        let f = f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text><text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            px(x1 * f),
            H - MB + 18.0,
            tick(x1 * f),
            ML - 6.0,
            py(y1 * f) + 4.0,
            tick(y1 * f),
        );
    }
    for (i, ser) in series.iter().enumerate() {
        let ly = MT + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{ly}" fill="{}">{} ({} points)</text>"#,
            ML + 10.0,
            ser.colour,
            ser.name,
            ser.points.len()
        );
        if ser.points.is_empty() {
            continue;
        }
        if ser.draw == Draw::Marks {
            let mut d = String::new();
            for &(x, y) in &ser.points {
                let _ = write!(
                    d,
                    "M{:.1} {:.1}h6M{:.1} {:.1}v6",
                    px(x) - 3.0,
                    py(y),
                    px(x),
                    py(y) - 3.0
                );
            }
            let _ = writeln!(
                s,
                r#"<path class="{}" d="{d}" stroke="{}" stroke-width="1.5" fill="none"/>"#,
                ser.name, ser.colour
            );
        } else {
            let mut pts: Vec<String> = Vec::with_capacity(ser.points.len() * 2);
            let mut prev: Option<f64> = None;
            for &(x, y) in &ser.points {
                if ser.draw == Draw::Step
                    && let Some(py0) = prev
                {
                    pts.push(format!("{:.1},{py0:.1}", px(x)));
                }
                pts.push(format!("{:.1},{:.1}", px(x), py(y)));
                prev = Some(py(y));
            }
            let _ = writeln!(
                s,
                r#"<polyline class="{}" points="{}" stroke="{}" stroke-width="1" fill="none"/>"#,
                ser.name,
                pts.join(" "),
                ser.colour
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// A tick label: at most three significant decimals.
fn tick(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
