//! Packet walks: the stages a packet passed, read from `tracing`.
//!
//! No kernel twin (the closest are `perf trace` / `pwru`, which attach to
//! the same function names). Every layer emits `tracing` spans and events
//! named after the kernel function of each stage (`net_rx_action`,
//! `napi_poll`, `netif_receive_skb`, `ip_rcv`, `nf_hook_slow`…); the CPU
//! loop wraps each CPU's run in a `cpu` span carrying the host and CPU.
//! [`WalkLayer`] is a `tracing_subscriber::Layer` that records those spans
//! and events, with the host, CPU and clock time of each, while recording
//! is on. A [`Walk`] is the ordered list of recorded [`Stage`]s; it prints
//! as text ([`Walk::to_text`]) and JSON ([`Walk::to_json`]).
//!
//! Which packet: a walk is taken in a quiet network (ARP already resolved,
//! no other traffic), so every stage recorded belongs to the packet sent
//! and to what it caused (the reply); [`Walk::split_at`] cuts the request
//! from the reply. Stages that carry addresses (`saddr`, `daddr`) can also
//! be filtered by flow ([`Walk::filter_flow`]).

use std::fmt::Write as _;
use std::sync::Arc;

use netcore::Clock;
use parking_lot::Mutex;
use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The crates whose spans and events are stages (their `tracing`
/// targets: `netstack::…` by convention, or the module path when an
/// `#[instrument]` gives none).
pub const STACK_TARGETS: [&str; 11] = [
    "netstack",
    "softnet",
    "napi",
    "ipv4",
    "netfilter",
    "qdisc",
    "irq",
    "nic_hw",
    "tcp",
    "udp",
    "socket",
];

fn is_stack_target(target: &str) -> bool {
    STACK_TARGETS.iter().any(|t| {
        target
            .strip_prefix(t)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// One stage of a walk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Order of recording.
    pub seq: u64,
    /// The host it ran on (empty outside a CPU, e.g. a NIC's DMA).
    pub host: String,
    /// The CPU it ran on, if on one.
    pub cpu: Option<usize>,
    /// The clock's time, in nanoseconds.
    pub time_ns: u64,
    /// The stage: the kernel function's name (span name or event message).
    pub name: String,
    /// The emitting module (`netstack::softnet`…).
    pub target: String,
    /// Nesting depth under the CPU span (for indentation).
    pub depth: usize,
    /// The fields, `key=value`, in emission order.
    pub fields: Vec<(String, String)>,
    /// Whether the stage is a span (a function entered) or an event.
    pub span: bool,
}

impl Stage {
    /// The value of field `key`, if present.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The stages of one or more packets, in the order they happened.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Walk {
    /// The stages.
    pub stages: Vec<Stage>,
}

impl Walk {
    /// The stage names in order.
    pub fn names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// Splits the walk before the first stage for which `at` is true.
    pub fn split_at(&self, at: impl Fn(&Stage) -> bool) -> (Walk, Walk) {
        let i = self.stages.iter().position(at).unwrap_or(self.stages.len());
        (
            Walk {
                stages: self.stages[..i].to_vec(),
            },
            Walk {
                stages: self.stages[i..].to_vec(),
            },
        )
    }

    /// Splits the walk after the first stage for which `at` is true.
    pub fn split_after(&self, at: impl Fn(&Stage) -> bool) -> (Walk, Walk) {
        match self.stages.iter().position(at) {
            Some(i) => (
                Walk {
                    stages: self.stages[..=i].to_vec(),
                },
                Walk {
                    stages: self.stages[i + 1..].to_vec(),
                },
            ),
            None => (self.clone(), Walk::default()),
        }
    }

    /// Keeps stages without addresses and those whose `saddr`/`daddr`
    /// match the flow from `src` to `dst`.
    pub fn filter_flow(&self, src: &str, dst: &str) -> Walk {
        Walk {
            stages: self
                .stages
                .iter()
                .filter(|s| match (s.field("saddr"), s.field("daddr")) {
                    (Some(sa), Some(da)) => sa == src && da == dst,
                    _ => true,
                })
                .cloned()
                .collect(),
        }
    }

    /// The walk as text: one line per stage with time, host, CPU and the
    /// decision made.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let t0 = self.stages.first().map_or(0, |s| s.time_ns);
        for s in &self.stages {
            let dt = s.time_ns.saturating_sub(t0);
            let cpu = s
                .cpu
                .map_or_else(|| "   -".to_owned(), |c| format!("cpu{c}"));
            let indent = "  ".repeat(s.depth);
            let fields: Vec<String> = s.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                out,
                "+{:>4}.{:03} us  {:<6} {:<5} {indent}{:<24} {}",
                dt / 1000,
                dt % 1000,
                s.host,
                cpu,
                s.name,
                fields.join(" ")
            );
        }
        out
    }

    /// The walk as JSON (an object with a `stages` array).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Collects a span's or an event's fields as text.
#[derive(Default)]
struct FieldText {
    message: Option<String>,
    fields: Vec<(String, String)>,
}

impl Visit for FieldText {
    fn record_debug(&mut self, field: &Field, value: &dyn core::fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(v);
        } else {
            self.fields.push((field.name().to_owned(), v));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.fields
                .push((field.name().to_owned(), value.to_owned()));
        }
    }
}

/// What the layer keeps per span.
struct SpanData {
    fields: Vec<(String, String)>,
}

#[derive(Default)]
struct Recorder {
    on: bool,
    seq: u64,
    stages: Vec<Stage>,
}

/// A `tracing_subscriber` layer that records walk stages.
///
/// Install it with a registry (`tracing_subscriber::registry().with(layer)`)
/// as the thread's default subscriber around the run to record (the
/// simulation runs on one thread), or globally for the thread runtime.
#[derive(Clone)]
pub struct WalkLayer {
    rec: Arc<Mutex<Recorder>>,
    clock: Arc<dyn Clock>,
}

impl core::fmt::Debug for WalkLayer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WalkLayer")
            .field("recording", &self.rec.lock().on)
            .finish_non_exhaustive()
    }
}

impl WalkLayer {
    /// A layer stamping stages with `clock` (the network's), not recording.
    pub fn new(clock: Arc<dyn Clock>) -> WalkLayer {
        WalkLayer {
            rec: Arc::new(Mutex::new(Recorder::default())),
            clock,
        }
    }

    /// Starts recording (clearing what was recorded).
    pub fn start(&self) {
        let mut r = self.rec.lock();
        r.on = true;
        r.stages.clear();
    }

    /// Stops recording and returns the walk.
    pub fn stop(&self) -> Walk {
        let mut r = self.rec.lock();
        r.on = false;
        Walk {
            stages: core::mem::take(&mut r.stages),
        }
    }

    fn recording(&self) -> bool {
        self.rec.lock().on
    }

    fn push(&self, mut stage: Stage) {
        let mut r = self.rec.lock();
        if r.on {
            stage.seq = r.seq;
            r.seq += 1;
            r.stages.push(stage);
        }
    }
}

/// The host, CPU and depth of the scope a span or event is in.
fn locate<'a, S>(
    scope: impl Iterator<Item = tracing_subscriber::registry::SpanRef<'a, S>>,
) -> (String, Option<usize>, usize)
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    let mut depth = 0;
    for span in scope {
        if span.name() == "cpu" && span.metadata().target() == "netstack::cpu" {
            let ext = span.extensions();
            let data = ext.get::<SpanData>();
            let get = |k: &str| {
                data.and_then(|d| {
                    d.fields
                        .iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                })
            };
            let host = get("host").unwrap_or_default();
            let cpu = get("cpu").and_then(|c| c.parse().ok());
            return (host, cpu, depth);
        }
        if span.name() == "nic" && span.metadata().target() == "netstack::nic" {
            let ext = span.extensions();
            let host = ext
                .get::<SpanData>()
                .and_then(|d| {
                    d.fields
                        .iter()
                        .find(|(n, _)| n == "host")
                        .map(|(_, v)| v.clone())
                })
                .unwrap_or_default();
            return (host, None, depth);
        }
        depth += 1;
    }
    (String::new(), None, depth)
}

impl<S> Layer<S> for WalkLayer
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut ft = FieldText::default();
        attrs.record(&mut ft);
        let Some(span) = ctx.span(id) else { return };
        let meta = span.metadata();
        let is_frame = (meta.name() == "cpu" && meta.target() == "netstack::cpu")
            || (meta.name() == "nic" && meta.target() == "netstack::nic");
        if !is_frame && self.recording() && is_stack_target(meta.target()) {
            let (host, cpu, depth) = span
                .parent()
                .map_or((String::new(), None, 0), |p| locate(p.scope()));
            self.push(Stage {
                seq: 0,
                host,
                cpu,
                time_ns: self.clock.now().as_nanos(),
                name: meta.name().to_owned(),
                target: meta.target().to_owned(),
                depth,
                fields: ft.fields.clone(),
                span: true,
            });
        }
        span.extensions_mut().insert(SpanData { fields: ft.fields });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut ft = FieldText::default();
        values.record(&mut ft);
        if let Some(span) = ctx.span(id)
            && let Some(data) = span.extensions_mut().get_mut::<SpanData>()
        {
            data.fields.extend(ft.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if !self.recording() || !is_stack_target(event.metadata().target()) {
            return;
        }
        let mut ft = FieldText::default();
        event.record(&mut ft);
        let (host, cpu, depth) = ctx
            .event_scope(event)
            .map_or((String::new(), None, 0), |s| locate(s));
        self.push(Stage {
            seq: 0,
            host,
            cpu,
            time_ns: self.clock.now().as_nanos(),
            name: ft
                .message
                .unwrap_or_else(|| event.metadata().name().to_owned()),
            target: event.metadata().target().to_owned(),
            depth,
            fields: ft.fields,
            span: false,
        });
    }
}

/// Runs `f` with a [`WalkLayer`] recording on this thread, and returns
/// what it returned with the walk.
pub fn record_walk<R>(clock: Arc<dyn Clock>, f: impl FnOnce() -> R) -> (R, Walk) {
    use tracing_subscriber::layer::SubscriberExt;
    let layer = WalkLayer::new(clock);
    let subscriber = tracing_subscriber::registry().with(layer.clone());
    layer.start();
    let r = tracing::subscriber::with_default(subscriber, f);
    (r, layer.stop())
}

/// The walk of one TCP data segment from h1 to h2 and of what answers it.
#[derive(Debug)]
pub struct TcpWalk {
    /// The segment: from `tcp_sendmsg` on h1 through h1's egress, the
    /// wire, h2's ingress and `tcp_v4_rcv` to `tcp_data_queue` on h2.
    pub data: Walk,
    /// What followed: h2's ACK back to h1 and the reader's `tcp_recvmsg`.
    pub ack: Walk,
}

/// Runs the demo network, connects h1 to h2 over TCP (`TCP_NODELAY`), lets
/// the handshake and its ACKs settle, then records the walk of one write
/// of `len` bytes (at most one MSS) and its ACK.
///
/// Errors name the socket call that failed.
pub fn run_tcp_walk(seed: u64, len: usize) -> Result<TcpWalk, crate::NetstackError> {
    use std::io::{Read as _, Write as _};
    use std::net::SocketAddrV4;

    use crate::NetstackError;
    use crate::demo::{DEMO_H2, demo_network};
    use crate::tcp::{TcpListener, TcpStream};

    fn io(what: &str) -> impl Fn(std::io::Error) -> NetstackError + '_ {
        move |e| NetstackError::Runtime(format!("tcp walk: {what}: {e}"))
    }
    if len == 0 || len > 1448 {
        return Err(NetstackError::Config(format!(
            "tcp walk: len {len}: accepts 1..=1448 (one segment)"
        )));
    }
    let mut net = demo_network(seed)?;
    let h1 = Arc::clone(net.host("h1")?.shared());
    let h2 = Arc::clone(net.host("h2")?.shared());
    let l = TcpListener::bind(
        &h2,
        SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 5002),
    )
    .map_err(io("listen"))?;
    l.set_nonblocking(true).map_err(io("listen"))?;
    let mut c = net
        .app("h1", || {
            TcpStream::connect_nonblocking(&h1, SocketAddrV4::new(DEMO_H2, 5002))
        })?
        .map_err(io("connect"))?;
    net.run_for(netcore::Duration::from_millis(10))?;
    let (mut s, _) = net.app("h2", || l.accept())?.map_err(io("accept"))?;
    c.set_nodelay(true).map_err(io("setsockopt"))?;
    s.set_nonblocking(true).map_err(io("fcntl"))?;
    net.run_for(netcore::Duration::from_millis(100))?;
    let payload: Vec<u8> = (0..len as u64).map(crate::bulk_pattern).collect();
    let mut buf = vec![0u8; len];
    let clock = Arc::clone(net.clock());
    let (r, walk) = record_walk(clock, || -> Result<usize, NetstackError> {
        // The system calls run on the application's CPU of each host.
        let cpu1 = h1.socket_host().app_cpu();
        net.app("h1", || {
            let _cpu =
                tracing::trace_span!(target: "netstack::cpu", "cpu", host = "h1", cpu = cpu1)
                    .entered();
            c.write(&payload)
        })?
        .map_err(io("write"))?;
        net.run_for(netcore::Duration::from_millis(1))?;
        let cpu2 = h2.socket_host().app_cpu();
        let n = net
            .app("h2", || {
                let _cpu =
                    tracing::trace_span!(target: "netstack::cpu", "cpu", host = "h2", cpu = cpu2)
                        .entered();
                s.read(&mut buf)
            })?
            .map_err(io("read"))?;
        net.run_for(netcore::Duration::from_millis(50))?;
        Ok(n)
    });
    let n = r?;
    if n != len || buf != payload {
        return Err(NetstackError::Runtime(format!(
            "tcp walk: h2 read {n} of {len} bytes"
        )));
    }
    let (data, ack) = walk.split_after(|st| st.host == "h2" && st.name == "tcp_data_queue");
    Ok(TcpWalk { data, ack })
}
