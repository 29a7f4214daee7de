//! The back half of the runner: plays a parsed script against one TCP stack
//! in virtual time.
//!
//! Mirrors packetdrill's `run.c` (`run_script()`, the event loop),
//! `run_packet.c` (`run_packet_event()`: inject `<` lines, sniff and verify
//! `>` lines) and `run_system_call.c` (`run_system_call_event()`), with the
//! kernel under test replaced by a [`tcp::TcpStack`] behind a context that
//! captures what it sends (`exec_ctx.rs`). GRAMMAR.md §7 is the loop:
//! advance the clock to each event firing the stack's timers on the way,
//! build and deliver inbound segments, take outbound ones in order and
//! match them, call the socket API and check its result, snapshot
//! `TCP_INFO` for `%{ }%` blocks and evaluate them at the end.
//!
//! # Deviations from packetdrill
//!
//! * IPv4 only; `sport>dport`, UDP and ICMP lines, explicit socket
//!   addresses, and system calls or socket options the stack does not
//!   implement make the script a SKIP naming them.
//! * A call without `...` that would block is a FAIL ("would block"),
//!   as GRAMMAR.md §5 asks, rather than stalling the interpreter.
//! * TSO aggregation is done by the harness: consecutive MSS-sized
//!   segments are merged as GRAMMAR.md §4 describes.
//! * Init commands: sysctls are written to the host's `Sysctl` (an unknown
//!   one is a SKIP), `ip link … mtu` sets the route MTU, offload and qdisc
//!   settings are accepted and have no effect.
//! * At the end packetdrill closes the fds and injects a RST; the stack is
//!   simply dropped here, as nothing after the last line is checked.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddrV4};
use std::sync::Arc;

use netcore::{Errno, PagePool, PagePoolParams, SkBuff};
use tcp::{
    MAX_TCP_HEADER, MsgFlags, Shutdown, SockOpt, SockOptName, TcpIcmpError, TcpInfo, TcpSocket,
    TcpStack, TcpState,
};
use wire::{IpProtocol, Ipv4Repr, TcpFlags};

use super::ast::{
    Action, Event, Expr, IcmpEchoed, IcmpSpec, IpSpec, PacketBody, PacketSpec, Script,
    SyscallResult, SyscallSpec, TcpOptionSpec, TcpOptionsSpec, TcpSpec, Usecs,
};
use super::config::{Config, IpVersion};
use super::exec_ctx::{Captured, PdCtx};
use super::matcher::{ActualPacket, ExpectedPacket, match_outbound, timeout_message};
use super::python::{Env, Program, PyError};
use super::report::Outcome;
use super::seq_map::{SeqMap, TsMap};
use super::shell::{InitSettings, ShellStep};
use super::timing::{Schedule, Tolerance, check_return_time, check_time, schedule};

/// How far `*` lines and blocked calls may wait for the stack (virtual time).
const WAIT_LIMIT_USECS: Usecs = 600_000_000;

/// The first remote port the harness uses for connections to a listener.
const REMOTE_PORT_BASE: u16 = 48_000;

/// Sysctls of `defaults.sh` that the stack does not have and that cannot
/// change a run: `tcp_fack` no longer exists in Linux 6.18 either (the
/// write fails there too), `tcp_ecn_option` only shapes the AccECN option,
/// which is never negotiated while `tcp_ecn` is 0, and `tcp_fastopen_key`
/// only keys TFO cookies, whose option lines make a script SKIP.
const INERT_SYSCTLS: [&str; 3] = [
    "net.ipv4.tcp_fack",
    "net.ipv4.tcp_ecn_option",
    "net.ipv4.tcp_fastopen_key",
];

/// Why a run stopped early.
enum Stop {
    Fail(String),
    Skip(String),
}

type Step = Result<(), Stop>;

fn skip<T>(line: u32, what: impl std::fmt::Display) -> Result<T, Stop> {
    Err(Stop::Skip(format!("line {line}: unsupported: {what}")))
}

fn fail<T>(line: u32, what: impl std::fmt::Display) -> Result<T, Stop> {
    Err(Stop::Fail(format!("line {line}: {what}")))
}

/// Runs `script` with `config` after `init` (the init command's settings)
/// and returns the outcome: PASS only when every line ran and matched.
pub fn run_script(script: &Script, config: &Config, init: &InitSettings) -> Outcome {
    run_script_traced(script, config, init).0
}

/// [`run_script`], also returning every packet of the run in order: the
/// inbound segments as injected and every datagram the stack sent, each
/// with its virtual time in microseconds since the script started (what
/// [`super::write_pcap`] writes for Wireshark).
pub fn run_script_traced(
    script: &Script,
    config: &Config,
    init: &InitSettings,
) -> (Outcome, Vec<(i64, Vec<u8>)>) {
    let mut ex = match Executor::new(config, init) {
        Ok(ex) => ex,
        Err(Stop::Fail(m)) => return (Outcome::Fail(m), Vec::new()),
        Err(Stop::Skip(m)) => return (Outcome::Skip(m), Vec::new()),
    };
    let outcome = match ex.run(script) {
        Ok(()) => Outcome::Pass,
        Err(Stop::Fail(m)) => Outcome::Fail(m),
        Err(Stop::Skip(m)) => Outcome::Skip(m),
    };
    (outcome, std::mem::take(&mut ex.trace))
}

struct Fd {
    sk: Arc<TcpSocket>,
    nonblock: bool,
}

#[derive(Clone, Copy)]
enum ParkKind {
    Accept {
        fd: i64,
        new_fd: i64,
    },
    Connect {
        fd: i64,
    },
    Read {
        fd: i64,
        len: usize,
    },
    Write {
        fd: i64,
        len: usize,
        done: usize,
        flags: MsgFlags,
    },
}

struct Parked {
    line: u32,
    name: String,
    kind: ParkKind,
    result: SyscallResult,
    when: Schedule,
    tolerance: Usecs,
}

struct Snapshot {
    line: u32,
    program: Program,
    info: Option<BTreeMap<String, i128>>,
}

struct Executor {
    stack: TcpStack,
    ctx: PdCtx,
    config: Config,
    tolerance: Tolerance,
    fds: BTreeMap<i64, Fd>,
    sut: Option<Arc<TcpSocket>>,
    local_port: Option<u16>,
    remote_port: u16,
    next_remote_port: u16,
    active: bool,
    seq: SeqMap,
    ts: TsMap,
    fifo: VecDeque<ActualPacket>,
    parked: Option<Parked>,
    deferred: Option<Stop>,
    prev_script_time: Usecs,
    snapshots: Vec<Snapshot>,
    /// `nstat`'s history: the counter values of its last update (`nstat`
    /// or `nstat -n`); empty (all zero) until then, as in a fresh
    /// namespace.
    nstat_history: BTreeMap<String, u64>,
    /// Every packet of the run, inbound and outbound, with its time.
    trace: Vec<(Usecs, Vec<u8>)>,
}

impl Executor {
    fn new(config: &Config, init: &InitSettings) -> Result<Executor, Stop> {
        let (IpVersion::Ipv4, IpAddr::V4(local), IpAddr::V4(remote)) =
            (config.ip_version, config.local_ip, config.remote_ip)
        else {
            return Err(Stop::Skip("unsupported: IPv6 runs".into()));
        };
        let pool = PagePool::new(PagePoolParams::default())
            .map_err(|e| Stop::Fail(format!("page pool: {e:?}")))?;
        let mtu = init.mtus.values().next().copied().unwrap_or(config.mtu);
        let ctx = PdCtx::new(local, remote, mtu, pool);
        for (k, v) in &init.sysctls {
            if INERT_SYSCTLS.contains(&k.as_str()) {
                continue;
            }
            if let Err(e) = ctx.sysctl_ref().set(k, v) {
                return Err(Stop::Skip(format!("unsupported: sysctl {k}={v}: {e}")));
            }
        }
        Ok(Executor {
            stack: TcpStack::new(0x7064),
            ctx,
            config: config.clone(),
            tolerance: Tolerance::from_config(config),
            fds: BTreeMap::new(),
            sut: None,
            local_port: None,
            remote_port: REMOTE_PORT_BASE,
            next_remote_port: REMOTE_PORT_BASE,
            active: false,
            seq: SeqMap::new(),
            ts: TsMap::new(),
            fifo: VecDeque::new(),
            parked: None,
            deferred: None,
            prev_script_time: 0,
            snapshots: Vec::new(),
            nstat_history: BTreeMap::new(),
            trace: Vec::new(),
        })
    }

    fn run(&mut self, script: &Script) -> Step {
        for ev in &script.events {
            self.event(ev)?;
            if let Some(s) = self.deferred.take() {
                return Err(s);
            }
        }
        if let Some(p) = &self.parked {
            let (line, name) = (p.line, p.name.clone());
            let limit = self.now() + WAIT_LIMIT_USECS;
            while self.parked.is_some() && self.fire_next(limit) {}
            if let Some(s) = self.deferred.take() {
                return Err(s);
            }
            if self.parked.is_some() {
                return fail(line, format!("blocking {name} call never returned"));
            }
        }
        self.eval_blocks()
    }

    fn now(&self) -> Usecs {
        self.ctx.now_usecs()
    }

    fn event(&mut self, ev: &Event) -> Step {
        let now = self.now();
        let when = schedule(ev.time, now);
        let tol = when.script_time().map_or(self.tolerance.usecs, |t| {
            self.tolerance.allowed(t, self.prev_script_time)
        });
        if let Action::Packet(p) = &ev.action
            && p.direction == super::ast::Direction::Outbound
        {
            return self.outbound(ev.line, p, when, tol);
        }
        if let Some(start) = when.start() {
            self.advance_to(start);
            if let Some(s) = self.deferred.take() {
                return Err(s);
            }
            if let Err(e) = check_time(when, self.now(), tol) {
                return fail(ev.line, format!("event time: {e}"));
            }
            self.prev_script_time = start;
        }
        match &ev.action {
            Action::Packet(p) => self.inbound(ev.line, p),
            Action::Syscall(s) => self.syscall(ev.line, s, when, tol),
            Action::Shell(sh) => {
                for step in &sh.steps {
                    match step {
                        ShellStep::Sysctl { key, value, .. } => {
                            if let Err(e) = self.ctx.sysctl_ref().set(key, value) {
                                return skip(ev.line, format!("sysctl {key}={value}: {e}"));
                            }
                        }
                        ShellStep::NstatReset => self.nstat_history = self.nstat_counters(),
                        ShellStep::NstatExpect {
                            counter,
                            value,
                            update_history,
                        } => {
                            let now = self.nstat_counters();
                            let Some(&cur) = now.get(counter) else {
                                return skip(ev.line, format!("nstat counter {counter}"));
                            };
                            let base = self.nstat_history.get(counter).copied().unwrap_or(0);
                            let delta = i64::try_from(cur.wrapping_sub(base)).unwrap_or(-1);
                            if *update_history {
                                self.nstat_history = now;
                            }
                            // nstat prints only counters that moved, so
                            // `grep -q " 0 "` never matches a counter.
                            if delta != *value || delta == 0 {
                                return fail(
                                    ev.line,
                                    format!("nstat: {counter} grew by {delta}, expected {value}"),
                                );
                            }
                        }
                        other => return skip(ev.line, format!("timed shell command {other:?}")),
                    }
                }
                Ok(())
            }
            Action::Code(c) => {
                let info = self
                    .sut
                    .as_ref()
                    .map(|sk| snapshot(&self.stack.tcp_info(&self.ctx, sk)));
                self.snapshots.push(Snapshot {
                    line: ev.line,
                    program: c.program.clone(),
                    info,
                });
                Ok(())
            }
        }
    }

    // ---- time -------------------------------------------------------------

    /// Fires the earliest timer if it is due by `limit`; false when none is.
    fn fire_next(&mut self, limit: Usecs) -> bool {
        let Some((at, id)) = self.ctx.next_timer() else {
            return false;
        };
        if at > limit {
            return false;
        }
        self.ctx.set_now_usecs(at);
        netcore::TimerContext::cancel_timer(&mut self.ctx, id);
        self.stack.handle_timer(&mut self.ctx, id);
        self.after_stack();
        true
    }

    fn advance_to(&mut self, t: Usecs) {
        while self.fire_next(t) {}
        self.ctx.set_now_usecs(t);
    }

    /// Collects what the stack sent and retries a parked call.
    fn after_stack(&mut self) {
        self.drain();
        self.poll_parked();
    }

    fn drain(&mut self) {
        let out = std::mem::take(&mut self.ctx.out);
        for Captured { usecs, bytes } in out {
            self.trace.push((usecs, bytes.clone()));
            let ihl = usize::from(bytes.first().copied().unwrap_or(0x45) & 0xf) * 4;
            let port = |o: usize| {
                bytes
                    .get(ihl + o..ihl + o + 2)
                    .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
            };
            let (sport, dport) = (port(0), port(2));
            let Ok(pkt) = ActualPacket::from_ipv4(&bytes, usecs) else {
                continue;
            };
            if self.local_port.is_none() && pkt.flags.contains(TcpFlags::SYN) {
                self.local_port = Some(sport);
                self.remote_port = dport;
            }
            if Some(sport) == self.local_port && dport == self.remote_port {
                self.fifo.push_back(pkt);
            }
        }
    }

    // ---- packets ------------------------------------------------------------

    fn outbound(&mut self, line: u32, p: &PacketSpec, when: Schedule, tol: Usecs) -> Step {
        let PacketBody::Tcp(spec) = &p.body else {
            return skip(line, "outbound non-TCP packet");
        };
        if p.ports.is_some() {
            return skip(line, "sport>dport");
        }
        let deadline = when
            .outbound_deadline()
            .unwrap_or(self.now() + WAIT_LIMIT_USECS);
        let ts_tol = when
            .script_time()
            .map_or(0, |t| self.tolerance.allowed(t, 0));
        let expected = ExpectedPacket {
            line,
            tcp: spec.clone(),
            ip: p.ip,
            when,
            tolerance: tol,
            ts_tick_usecs: self.config.tcp_ts_tick_usecs,
            ts_tolerance: ts_tol,
        };
        while self.fifo.is_empty() {
            if !self.fire_next(deadline) {
                return Err(Stop::Fail(timeout_message(&expected)));
            }
            if let Some(s) = self.deferred.take() {
                return Err(s);
            }
        }
        let mut got = self.fifo.pop_front().expect("fifo is not empty");
        if !self.config.strict_segments {
            self.aggregate(&mut got, spec.len);
        }
        self.ctx.set_now_usecs(got.time);
        if spec.flags.contains(TcpFlags::SYN) && got.flags.contains(TcpFlags::SYN) {
            self.seq.learn_local_isn(spec.start_seq, got.seq);
        }
        if let TcpOptionsSpec::List(opts) = &spec.options
            && let Some(live) = got.ts_val()
        {
            for o in opts {
                if let TcpOptionSpec::Timestamp { val, .. } = o {
                    self.ts.record_outbound(*val, live);
                }
            }
        }
        let mapped = got.to_script_space(&self.seq, &self.ts);
        self.prev_script_time = when.script_time().unwrap_or(got.time);
        match_outbound(&expected, &mapped).map_err(|m| Stop::Fail(m.to_string()))
    }

    /// Merges following segments into `got` as TSO would have sent them
    /// (GRAMMAR.md §4 "TSO aggregation").
    fn aggregate(&mut self, got: &mut ActualPacket, want_len: u32) {
        let seg = got.payload_len;
        while got.payload_len < want_len && seg > 0 {
            let Some(next) = self.fifo.front() else { break };
            let same = next.seq == got.seq.wrapping_add(got.payload_len)
                && next.ack == got.ack
                && next.payload_len > 0
                && next.payload_len <= seg
                && !got.flags.contains(TcpFlags::FIN)
                && got.payload_len.is_multiple_of(seg)
                && (next.flags - TcpFlags::PSH - TcpFlags::FIN - TcpFlags::CWR)
                    == (got.flags - TcpFlags::PSH - TcpFlags::FIN - TcpFlags::CWR);
            if !same {
                break;
            }
            let next = self.fifo.pop_front().expect("front exists");
            let cwr = got.flags & TcpFlags::CWR;
            got.flags = (next.flags - TcpFlags::CWR) | cwr;
            got.payload_len += next.payload_len;
            got.payload_zero &= next.payload_zero;
            got.win = next.win;
            got.options = next.options;
            got.options_len = next.options_len;
            got.time = next.time;
        }
    }

    fn inbound(&mut self, line: u32, p: &PacketSpec) -> Step {
        let spec = match &p.body {
            PacketBody::Tcp(spec) => spec,
            PacketBody::Icmp(icmp) if p.ports.is_none() => return self.inbound_icmp(line, icmp),
            _ => return skip(line, "inbound non-TCP packet"),
        };
        if p.ports.is_some() {
            return skip(line, "sport>dport");
        }
        if spec.ace.is_some() {
            return skip(line, "AccECN flags");
        }
        if spec.flags.contains(TcpFlags::SYN) && !spec.flags.contains(TcpFlags::ACK) && !self.active
        {
            self.next_remote_port = self.next_remote_port.wrapping_add(1);
            self.remote_port = self.next_remote_port;
            self.local_port = Some(self.config.bind_port);
        }
        let Some(dport) = self.local_port else {
            return fail(
                line,
                "inbound packet before the socket under test has a port",
            );
        };
        let bytes = self.build_inbound(line, p.ip, spec, dport)?;
        self.trace.push((self.now(), bytes.clone()));
        let pool = tcp::TcpContext::page_pool(&self.ctx).clone();
        let Ok(mut skb) = SkBuff::from_slice(&pool, MAX_TCP_HEADER, &bytes) else {
            return fail(line, "no buffer for the inbound packet");
        };
        skb.reset_network_header();
        if skb.pull(20).is_err() {
            return fail(line, "inbound packet shorter than its IP header");
        }
        skb.reset_transport_header();
        tcp::tcp_v4_rcv(&self.stack, &mut self.ctx, skb);
        self.after_stack();
        Ok(())
    }

    /// An ICMP error quoting one of our segments, handed to
    /// `tcp_v4_err()` as `icmp_unreach()` would: the quoted sequence
    /// number mapped to the live one, the (type, code) turned into what
    /// `tcp_v4_err()` distinguishes.
    fn inbound_icmp(&mut self, line: u32, icmp: &IcmpSpec) -> Step {
        let Some(IcmpEchoed::Tcp { start_seq, .. }) = icmp.echoed else {
            return skip(line, "ICMP error not quoting a TCP segment");
        };
        let Some(err) = icmp_error(icmp) else {
            return skip(line, format!("ICMP {icmp}"));
        };
        let (IpAddr::V4(l), IpAddr::V4(r)) = (self.config.local_ip, self.config.remote_ip) else {
            return skip(line, "IPv6");
        };
        let Some(sport) = self.local_port else {
            return fail(line, "ICMP error before the socket under test has a port");
        };
        let seq = self.seq.inbound_ack(start_seq);
        tcp::tcp_v4_err(
            &self.stack,
            &mut self.ctx,
            l,
            sport,
            r,
            self.remote_port,
            seq,
            err,
        );
        self.after_stack();
        Ok(())
    }

    fn build_inbound(
        &self,
        line: u32,
        ip: IpSpec,
        spec: &TcpSpec,
        dport: u16,
    ) -> Result<Vec<u8>, Stop> {
        let mut opts = Vec::new();
        match &spec.options {
            TcpOptionsSpec::Absent => {}
            TcpOptionsSpec::Any => return fail(line, "<...> on an inbound packet"),
            TcpOptionsSpec::List(list) => {
                for o in list {
                    match o {
                        TcpOptionSpec::Eol => opts.push(0),
                        TcpOptionSpec::Nop => opts.push(1),
                        TcpOptionSpec::Mss(v) => {
                            opts.extend([2, 4]);
                            opts.extend(v.to_be_bytes());
                        }
                        TcpOptionSpec::Wscale(v) => opts.extend([3, 3, *v]),
                        TcpOptionSpec::SackPermitted => opts.extend([4, 2]),
                        TcpOptionSpec::Sack(blocks) => {
                            opts.extend([5, (2 + 8 * blocks.len()) as u8]);
                            for b in blocks {
                                let (l, r) = self.seq.inbound_sack(*b);
                                opts.extend(l.to_be_bytes());
                                opts.extend(r.to_be_bytes());
                            }
                        }
                        TcpOptionSpec::Timestamp { val, ecr } => {
                            let ecr = self
                                .ts
                                .inbound_ecr(*ecr, self.config.tcp_ts_ecr_scaled)
                                .or_else(|e| fail(line, e))?;
                            opts.extend([8, 10]);
                            opts.extend(val.to_be_bytes());
                            opts.extend(ecr.to_be_bytes());
                        }
                        other => return skip(line, format!("inbound TCP option {other}")),
                    }
                }
            }
        }
        if opts.len() % 4 != 0 || opts.len() > 40 {
            return fail(
                line,
                format!(
                    "inbound options take {} bytes, not a multiple of 4 up to 40",
                    opts.len()
                ),
            );
        }
        let hlen = 20 + opts.len();
        let mut seg = vec![0u8; hlen + spec.len as usize];
        seg[0..2].copy_from_slice(&self.remote_port.to_be_bytes());
        seg[2..4].copy_from_slice(&dport.to_be_bytes());
        seg[4..8].copy_from_slice(&spec.start_seq.to_be_bytes());
        let ack = spec.ack.map_or(0, |a| self.seq.inbound_ack(a));
        seg[8..12].copy_from_slice(&ack.to_be_bytes());
        let flags = spec.flags.bits();
        seg[12] = ((hlen / 4) as u8) << 4 | ((flags >> 8) as u8 & 1);
        seg[13] = flags as u8;
        let Some(win) = spec.win else {
            return fail(line, "inbound packet without win");
        };
        seg[14..16].copy_from_slice(&win.to_be_bytes());
        seg[18..20].copy_from_slice(&spec.urg.unwrap_or(0).to_be_bytes());
        seg[20..hlen].copy_from_slice(&opts);
        let (src, dst) = (self.ctx.remote, self.ctx.local);
        let Ok(len) = u16::try_from(seg.len()) else {
            return fail(line, "inbound segment longer than 65535 bytes");
        };
        let sum = wire::csum_partial(&seg, 0);
        let check = wire::csum_tcpudp_magic(src, dst, len, 6, sum);
        seg[16..18].copy_from_slice(&check.to_be_bytes());
        let tos = ip.tos.unwrap_or(0)
            | ip.ecn.map_or(0, |e| match e {
                super::ast::EcnSpec::NotEct => 0,
                super::ast::EcnSpec::Ect1 => 1,
                super::ast::EcnSpec::Ect0 | super::ast::EcnSpec::Ect01 => 2,
                super::ast::EcnSpec::Ce => 3,
            });
        let repr = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: IpProtocol::Tcp,
            ttl: ip.ttl.unwrap_or(64),
            tos,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: heapless::Vec::new(),
            payload_len: seg.len(),
        };
        let mut bytes = vec![0u8; repr.header_len() + seg.len()];
        repr.emit(&mut bytes)
            .or_else(|e| fail(line, format!("IPv4 header: {e:?}")))?;
        bytes[repr.header_len()..].copy_from_slice(&seg);
        Ok(bytes)
    }

    // ---- system calls -------------------------------------------------------

    fn fd(&self, line: u32, e: Option<&Expr>) -> Result<(i64, Arc<TcpSocket>, bool), Stop> {
        let Some(n) = e.and_then(int) else {
            return fail(line, "the fd argument is not an integer");
        };
        match self.fds.get(&n) {
            Some(f) => Ok((n, f.sk.clone(), f.nonblock)),
            None => fail(line, format!("fd {n} is not open")),
        }
    }

    fn syscall(&mut self, line: u32, s: &SyscallSpec, when: Schedule, tol: Usecs) -> Step {
        // One blocking call at a time: a new call waits for the parked one.
        if let Some(p) = &self.parked {
            let (pl, pname) = (p.line, p.name.clone());
            let limit = self.now() + WAIT_LIMIT_USECS;
            while self.parked.is_some() && self.fire_next(limit) {}
            if let Some(st) = self.deferred.take() {
                return Err(st);
            }
            if self.parked.is_some() {
                return fail(pl, format!("blocking {pname} call never returned"));
            }
        }
        let a = &s.args;
        let name = s.name.as_str();
        let got: Result<i64, Errno> = match name {
            "socket" => {
                let ty = a.get(1).and_then(int).unwrap_or(-1);
                let fam_ok =
                    matches!(a.first(), Some(Expr::Ellipsis)) || a.first().and_then(int) == Some(2);
                if !fam_ok || ty & 0xf != 1 {
                    return skip(line, "socket() other than an IPv4 SOCK_STREAM");
                }
                // inet_create() finds no SOCK_STREAM protocol but TCP
                // (IPPROTO_TCP, or 0 for the default).
                match a.get(2).and_then(int) {
                    Some(0 | 6) => {}
                    Some(_) => {
                        return check_result(line, "socket", &s.result, Err(Errno::ProtoNoSupport));
                    }
                    None => return skip(line, "socket() protocol"),
                }
                if s.result.value < 0 {
                    return skip(line, "socket() expected to fail");
                }
                let sk = self.stack.socket(&self.ctx);
                self.fds.insert(
                    s.result.value,
                    Fd {
                        sk,
                        nonblock: ty & 0x800 != 0,
                    },
                );
                Ok(s.result.value)
            }
            "bind" => {
                let (_, sk, _) = self.fd(line, a.first())?;
                if !matches!(a.get(1), Some(Expr::Ellipsis)) {
                    return skip(line, "bind() to an explicit address");
                }
                let IpAddr::V4(l) = self.config.local_ip else {
                    return skip(line, "IPv6");
                };
                let r = self.stack.bind(
                    &mut self.ctx,
                    &sk,
                    SocketAddrV4::new(l, self.config.bind_port),
                );
                r.map(|()| 0)
            }
            "listen" => {
                let (_, sk, _) = self.fd(line, a.first())?;
                let backlog = a.get(1).and_then(int).unwrap_or(0) as i32;
                let r = self.stack.listen(&mut self.ctx, &sk, backlog).map(|()| 0);
                if r.is_ok() && !self.active && self.local_port.is_none() {
                    // As packetdrill does, a segment that is not a SYN
                    // sent before any connection exists goes to the
                    // listener's port from a fresh remote port.
                    self.next_remote_port = self.next_remote_port.wrapping_add(1);
                    self.remote_port = self.next_remote_port;
                    self.local_port = Some(self.config.bind_port);
                }
                r
            }
            "connect" => {
                let (fd, sk, nonblock) = self.fd(line, a.first())?;
                if !matches!(a.get(1), Some(Expr::Ellipsis)) {
                    return skip(line, "connect() to an explicit address");
                }
                let IpAddr::V4(r) = self.config.remote_ip else {
                    return skip(line, "IPv6");
                };
                self.active = true;
                self.local_port = None;
                self.remote_port = self.config.connect_port;
                self.sut = Some(sk.clone());
                let res = self.stack.connect(
                    &mut self.ctx,
                    &sk,
                    SocketAddrV4::new(r, self.config.connect_port),
                );
                self.after_stack();
                match res {
                    Err(Errno::InProgress) if !nonblock => {
                        return self.park(line, s, ParkKind::Connect { fd }, when, tol);
                    }
                    other => other.map(|()| 0),
                }
            }
            "accept" => {
                let (fd, sk, nonblock) = self.fd(line, a.first())?;
                match self.stack.accept(&sk) {
                    Ok(child) => Ok(self.new_fd(s.result.value, child)),
                    Err(Errno::Again) if !nonblock => {
                        let kind = ParkKind::Accept {
                            fd,
                            new_fd: s.result.value,
                        };
                        return self.park(line, s, kind, when, tol);
                    }
                    Err(e) => Err(e),
                }
            }
            "write" | "send" => {
                let (fd, sk, nonblock) = self.fd(line, a.first())?;
                let Some(len) = a.get(2).and_then(int) else {
                    return skip(line, format!("{name}() length that is not an integer"));
                };
                let flags = match a.get(3).map(msg_flags) {
                    None => MsgFlags::empty(),
                    Some(Some(f)) => f,
                    Some(None) => return skip(line, format!("{name}() flags")),
                };
                self.write(line, s, fd, &sk, nonblock, len as usize, flags, when, tol)?
            }
            "sendmsg" => {
                let (fd, sk, nonblock) = self.fd(line, a.first())?;
                let Some(len) = a.get(1).and_then(iov_len) else {
                    return skip(line, "sendmsg() message other than msg_iov of {..., N}");
                };
                let flags = match a.get(2).map(msg_flags) {
                    None => MsgFlags::empty(),
                    Some(Some(f)) => f,
                    Some(None) => return skip(line, "sendmsg() flags"),
                };
                self.write(line, s, fd, &sk, nonblock, len, flags, when, tol)?
            }
            "read" | "recv" => {
                let (fd, sk, nonblock) = self.fd(line, a.first())?;
                let Some(len) = a.get(2).and_then(int) else {
                    return skip(line, format!("{name}() length that is not an integer"));
                };
                let flags = match a.get(3).map(msg_flags) {
                    None => MsgFlags::empty(),
                    Some(Some(f)) => f,
                    Some(None) => return skip(line, format!("{name}() flags")),
                };
                let mut buf = vec![0u8; len as usize];
                let r = self.stack.recvmsg(&mut self.ctx, &sk, &mut buf, flags);
                self.after_stack();
                match r {
                    Err(Errno::Again) if !nonblock && !flags.contains(MsgFlags::DONTWAIT) => {
                        let kind = ParkKind::Read {
                            fd,
                            len: len as usize,
                        };
                        return self.park(line, s, kind, when, tol);
                    }
                    other => other.map(|n| n as i64),
                }
            }
            "close" => {
                let Some(fd) = a.first().and_then(int) else {
                    return fail(line, "close() fd is not an integer");
                };
                match self.fds.remove(&fd) {
                    Some(f) => {
                        self.stack.close(&mut self.ctx, &f.sk);
                        self.after_stack();
                        Ok(0)
                    }
                    None => Err(Errno::BadF),
                }
            }
            "shutdown" => {
                let (_, sk, _) = self.fd(line, a.first())?;
                let how = match a.get(1).and_then(int) {
                    Some(0) => Shutdown::Read,
                    Some(1) => Shutdown::Write,
                    Some(2) => Shutdown::Both,
                    _ => return fail(line, "shutdown() how is not SHUT_RD, SHUT_WR or SHUT_RDWR"),
                };
                let r = self.stack.shutdown(&mut self.ctx, &sk, how);
                self.after_stack();
                r.map(|()| 0)
            }
            "setsockopt" => {
                let (_, sk, _) = self.fd(line, a.first())?;
                let opt = sockopt(line, a.get(2), a.get(3))?;
                let r = self.stack.setsockopt(&mut self.ctx, &sk, opt);
                self.after_stack();
                r.map(|()| 0)
            }
            "getsockopt" => {
                let (_, sk, _) = self.fd(line, a.first())?;
                let Some(Expr::Symbol(n)) = a.get(2) else {
                    return skip(line, "getsockopt() option that is not a name");
                };
                let Some(opt) = sockopt_name(n) else {
                    return skip(line, format!("getsockopt({n})"));
                };
                let r = self.stack.getsockopt(&self.ctx, &sk, opt);
                if let (Ok(v), Some(want)) = (r, a.get(3).and_then(int))
                    && v != want
                {
                    return fail(
                        line,
                        format!(
                            "runtime error in getsockopt call: Bad getsockopt optval: expected: {want} actual: {v}"
                        ),
                    );
                }
                r.map(|_| 0)
            }
            "fcntl" => {
                let Some(fd) = a.first().and_then(int) else {
                    return fail(line, "fcntl() fd is not an integer");
                };
                let Some(f) = self.fds.get_mut(&fd) else {
                    return fail(line, format!("fd {fd} is not open"));
                };
                match a.get(1).and_then(int) {
                    Some(3) => Ok(2 | if f.nonblock { 0x800 } else { 0 }),
                    Some(4) => {
                        f.nonblock = a.get(2).and_then(int).unwrap_or(0) & 0x800 != 0;
                        Ok(0)
                    }
                    _ => return skip(line, "fcntl() command other than F_GETFL/F_SETFL"),
                }
            }
            "ioctl" => {
                let (_, sk, _) = self.fd(line, a.first())?;
                if !matches!(a.get(1), Some(Expr::Symbol(n)) if n == "SIOCINQ" || n == "FIONREAD") {
                    return skip(line, "ioctl() other than SIOCINQ");
                }
                let v = sk.inq() as i64;
                if let Some(want) = a.get(2).and_then(int)
                    && v != want
                {
                    return fail(
                        line,
                        format!(
                            "runtime error in ioctl call: Bad ioctl optval: expected: {want} actual: {v}"
                        ),
                    );
                }
                Ok(0)
            }
            other => return skip(line, format!("system call {other}()")),
        };
        check_result(line, name, &s.result, got)
    }

    fn new_fd(&mut self, fd: i64, sk: Arc<TcpSocket>) -> i64 {
        self.sut = Some(sk.clone());
        self.fds.insert(
            fd,
            Fd {
                sk,
                nonblock: false,
            },
        );
        fd
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        line: u32,
        s: &SyscallSpec,
        fd: i64,
        sk: &TcpSocket,
        nonblock: bool,
        len: usize,
        flags: MsgFlags,
        when: Schedule,
        tol: Usecs,
    ) -> Result<Result<i64, Errno>, Stop> {
        let data = vec![0u8; len];
        self.ctx.woken.remove(&sk.id());
        let r = self.stack.sendmsg(&mut self.ctx, sk, &data, flags);
        self.after_stack();
        let blocking = !nonblock && !flags.contains(MsgFlags::DONTWAIT);
        match r {
            Ok(n) if n < len && blocking => {
                let kind = ParkKind::Write {
                    fd,
                    len,
                    done: n,
                    flags,
                };
                self.park(line, s, kind, when, tol)?;
                Ok(Ok(-2))
            }
            Err(Errno::Again) if blocking => {
                let kind = ParkKind::Write {
                    fd,
                    len,
                    done: 0,
                    flags,
                };
                self.park(line, s, kind, when, tol)?;
                Ok(Ok(-2))
            }
            other => Ok(other.map(|n| n as i64)),
        }
    }

    /// Parks a call that would block; it must be marked blocking (`...`).
    fn park(
        &mut self,
        line: u32,
        s: &SyscallSpec,
        kind: ParkKind,
        when: Schedule,
        tol: Usecs,
    ) -> Step {
        if !matches!(when, Schedule::Blocking { .. }) {
            return fail(
                line,
                format!(
                    "{}() would block, and the line is not marked blocking (`...`)",
                    s.name
                ),
            );
        }
        self.parked = Some(Parked {
            line,
            name: s.name.clone(),
            kind,
            result: s.result.clone(),
            when,
            tolerance: tol,
        });
        self.poll_parked();
        if let Some(st) = self.deferred.take() {
            return Err(st);
        }
        Ok(())
    }

    /// Retries the parked call; when it completes, checks its result and
    /// return time (a failure is kept in `deferred`).
    fn poll_parked(&mut self) {
        let Some(mut p) = self.parked.take() else {
            return;
        };
        let got: Option<Result<i64, Errno>> = match p.kind {
            ParkKind::Accept { fd, new_fd } => match self.fds.get(&fd).map(|f| f.sk.clone()) {
                None => Some(Err(Errno::BadF)),
                Some(sk) => match self.stack.accept(&sk) {
                    Ok(child) => Some(Ok(self.new_fd(new_fd, child))),
                    Err(Errno::Again) => None,
                    Err(e) => Some(Err(e)),
                },
            },
            ParkKind::Connect { fd } => match self.fds.get(&fd).map(|f| f.sk.clone()) {
                None => Some(Err(Errno::BadF)),
                Some(sk) => match sk.state() {
                    TcpState::SynSent | TcpState::SynRecv => None,
                    TcpState::Established | TcpState::CloseWait => Some(Ok(0)),
                    _ => {
                        let e = self
                            .stack
                            .getsockopt(&self.ctx, &sk, SockOptName::Error)
                            .unwrap_or(0);
                        Some(Err(Errno::from_i32(e as i32).unwrap_or(Errno::ConnRefused)))
                    }
                },
            },
            ParkKind::Read { fd, len } => match self.fds.get(&fd).map(|f| f.sk.clone()) {
                None => Some(Err(Errno::BadF)),
                Some(sk) => {
                    let mut buf = vec![0u8; len];
                    match self
                        .stack
                        .recvmsg(&mut self.ctx, &sk, &mut buf, MsgFlags::empty())
                    {
                        Err(Errno::Again) => None,
                        r => Some(r.map(|n| n as i64)),
                    }
                }
            },
            ParkKind::Write {
                fd,
                len,
                done,
                flags,
            } => match self.fds.get(&fd).map(|f| f.sk.clone()) {
                None => Some(Err(Errno::BadF)),
                // A writer blocked in sk_stream_wait_memory() tries again
                // only when the socket wakes it (sk_stream_write_space()
                // once a third of the buffer is free, an error, data).
                Some(sk) if !self.ctx.woken.remove(&sk.id()) => None,
                Some(sk) => {
                    let data = vec![0u8; len - done];
                    match self.stack.sendmsg(&mut self.ctx, &sk, &data, flags) {
                        Ok(n) if done + n == len => Some(Ok(len as i64)),
                        Ok(n) => {
                            p.kind = ParkKind::Write {
                                fd,
                                len,
                                done: done + n,
                                flags,
                            };
                            None
                        }
                        Err(Errno::Again) => None,
                        Err(e) if done > 0 => {
                            let _ = e;
                            Some(Ok(done as i64))
                        }
                        Err(e) => Some(Err(e)),
                    }
                }
            },
        };
        self.drain();
        let Some(got) = got else {
            self.parked = Some(p);
            return;
        };
        let now = self.now();
        if let Err(e) = check_result(p.line, &p.name, &p.result, got) {
            self.deferred.get_or_insert(e);
        } else if let Err(e) = check_return_time(p.when, now, p.tolerance) {
            self.deferred.get_or_insert(Stop::Fail(format!(
                "line {}: {} returned at the wrong time: {e}",
                p.line, p.name
            )));
        }
    }

    // ---- code blocks --------------------------------------------------------

    fn eval_blocks(&self) -> Step {
        for b in &self.snapshots {
            let Some(info) = &b.info else {
                return skip(b.line, "%{ }% block before there is a socket under test");
            };
            let mut env = Env::with_constants();
            env.bind_snapshot(info);
            match env.run(&b.program) {
                Ok(()) => {}
                Err(PyError::AssertionFailed { expr, message, .. }) => {
                    let m = message.map(|m| format!(": {m}")).unwrap_or_default();
                    return fail(b.line, format!("assertion failed: {expr}{m}"));
                }
                Err(PyError::Runtime { message, .. }) if message.contains("NameError") => {
                    return skip(b.line, format!("a name our TCP_INFO lacks ({message})"));
                }
                Err(e @ PyError::Unsupported { .. }) => return skip(b.line, format!("{e:?}")),
                Err(e) => return fail(b.line, format!("code block: {e:?}")),
            }
        }
        Ok(())
    }
}

impl Executor {
    /// Every counter under the name `nstat` prints (`TcpExtBeyondWindow`,
    /// `TcpInSegs`, …): the group label and the counter's name.
    fn nstat_counters(&self) -> BTreeMap<String, u64> {
        fn add<F: netcore::MibField>(snap: &netcore::MibSnapshot, out: &mut BTreeMap<String, u64>) {
            for (name, v) in snap.group::<F>() {
                out.insert(format!("{}{name}", F::GROUP), v);
            }
        }
        let snap = tcp::TcpContext::mibs(&self.ctx).snapshot();
        let mut out = BTreeMap::new();
        add::<netcore::IpMib>(&snap, &mut out);
        add::<netcore::IpExtMib>(&snap, &mut out);
        add::<netcore::IcmpMib>(&snap, &mut out);
        add::<netcore::TcpMib>(&snap, &mut out);
        add::<netcore::UdpMib>(&snap, &mut out);
        add::<netcore::LinuxMib>(&snap, &mut out);
        out
    }
}

impl PdCtx {
    fn sysctl_ref(&self) -> &netcore::Sysctl {
        tcp::TcpContext::sysctl(self)
    }
}

/// What `tcp_v4_err()` makes of an ICMP error: `icmp_err_convert[]` for
/// "destination unreachable", `EHOSTUNREACH` for "time exceeded", `EPROTO`
/// for "parameter problem", nothing for "source quench". `None`: a type
/// or code the runner does not know.
fn icmp_error(icmp: &IcmpSpec) -> Option<TcpIcmpError> {
    let unreach = |e| Some(TcpIcmpError::Unreachable(e));
    match (icmp.kind.as_str(), icmp.code.as_deref()) {
        ("unreachable", Some("frag_needed")) => {
            Some(TcpIcmpError::FragNeeded(u16::try_from(icmp.mtu?).ok()?))
        }
        ("unreachable", Some(code)) => match code {
            "net_unreachable" | "net_unknown" | "net_prohibited" | "net_unreachable_for_tos" => {
                unreach(Errno::NetUnreach)
            }
            "host_unreachable"
            | "host_prohibited"
            | "host_unreachable_for_tos"
            | "packet_filtered"
            | "precedence_violation"
            | "precedence_cutoff" => unreach(Errno::HostUnreach),
            "protocol_unreachable" => unreach(Errno::NoProtoOpt),
            "port_unreachable" => unreach(Errno::ConnRefused),
            "source_route_failed" => unreach(Errno::OpNotSupp),
            "host_unknown" => unreach(Errno::HostDown),
            _ => None,
        },
        ("time_exceeded", _) => unreach(Errno::HostUnreach),
        ("parameter_problem", _) => unreach(Errno::Proto),
        ("source_quench", _) => Some(TcpIcmpError::Other),
        _ => None,
    }
}

/// Compares a call's result with the script's: value, and errno for -1.
fn check_result(line: u32, name: &str, want: &SyscallResult, got: Result<i64, Errno>) -> Step {
    match got {
        Ok(-2) => Ok(()), // parked: checked when it returns
        Ok(v) if v == want.value && want.errno.is_none() => Ok(()),
        Ok(v) => fail(
            line,
            format!(
                "runtime error in {name} call: Expected result {} but got {v}",
                want.value
            ),
        ),
        Err(e) => {
            // `= -1` with no errno checks only the failure, as packetdrill.
            if want.value == -1 && want.errno.as_deref().is_none_or(|n| n == e.name()) {
                Ok(())
            } else {
                // packetdrill's wording: "non-negative" for a wanted fd or
                // count, the errno by number and strerror().
                let wanted = if want.value >= 0 {
                    "non-negative result".to_string()
                } else {
                    format!(
                        "result {}{}",
                        want.value,
                        want.errno
                            .as_deref()
                            .map(|e| format!(" {e}"))
                            .unwrap_or_default()
                    )
                };
                fail(
                    line,
                    format!(
                        "runtime error in {name} call: Expected {wanted} but got -1 with errno {} ({}, {})",
                        e as i32,
                        e.name(),
                        e.strerror()
                    ),
                )
            }
        }
    }
}

/// The integer value of an argument: a number, a known constant, an errno
/// name, `A|B`, or `[N]`.
fn int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Int(v) => Some(*v),
        Expr::Array(v) if v.len() == 1 => int(&v[0]),
        Expr::Or(parts) => parts.iter().try_fold(0, |acc, p| int(p).map(|v| acc | v)),
        Expr::Symbol(s) => symbol(s),
        _ => None,
    }
}

fn symbol(s: &str) -> Option<i64> {
    Some(match s {
        "NULL" | "SHUT_RD" | "IPPROTO_IP" => 0,
        "SOCK_STREAM" | "SOL_SOCKET" | "SHUT_WR" => 1,
        "AF_INET" | "O_RDWR" | "SHUT_RDWR" | "MSG_PEEK" => 2,
        "F_GETFL" => 3,
        "F_SETFL" => 4,
        "IPPROTO_TCP" | "SOL_TCP" => 6,
        "IPPROTO_UDP" => 17,
        "MSG_DONTWAIT" => 0x40,
        "MSG_WAITALL" => 0x100,
        "O_NONBLOCK" | "SOCK_NONBLOCK" => 0x800,
        "MSG_MORE" => 0x8000,
        _ => return Errno::ALL.iter().find(|e| e.name() == s).map(|e| *e as i64),
    })
}

fn msg_flags(e: &Expr) -> Option<MsgFlags> {
    let v = int(e)?;
    let f = MsgFlags::from_bits(u32::try_from(v).ok()?)?;
    Some(f)
}

/// The total length of `msg_iov` in a `struct msghdr` argument.
fn iov_len(e: &Expr) -> Option<usize> {
    let iov = e.field("msg_iov")?;
    let Expr::Array(items) = &iov.value else {
        return None;
    };
    let mut total = 0usize;
    for it in items {
        let Expr::Struct(f) = it else { return None };
        total += usize::try_from(int(&f.get(1)?.value)?).ok()?;
    }
    if e.field("msg_control").is_some() {
        return None;
    }
    Some(total)
}

fn sockopt(line: u32, name: Option<&Expr>, val: Option<&Expr>) -> Result<SockOpt, Stop> {
    let Some(Expr::Symbol(n)) = name else {
        return skip(line, "setsockopt() option that is not a name");
    };
    if n == "SO_LINGER" {
        let (Some(on), Some(secs)) = (
            val.and_then(|v| v.field("l_onoff").or_else(|| v.field("onoff")))
                .and_then(|f| int(&f.value)),
            val.and_then(|v| v.field("l_linger").or_else(|| v.field("linger")))
                .and_then(|f| int(&f.value)),
        ) else {
            return skip(line, "SO_LINGER value");
        };
        return Ok(SockOpt::Linger((on != 0).then_some(secs as u32)));
    }
    let Some(v) = val.and_then(int) else {
        return skip(
            line,
            format!("setsockopt({n}) value that is not an integer"),
        );
    };
    let (b, u) = (v != 0, v as u32);
    Ok(match n.as_str() {
        "SO_REUSEADDR" => SockOpt::ReuseAddr(b),
        "SO_KEEPALIVE" => SockOpt::KeepAlive(b),
        "SO_SNDBUF" => SockOpt::SndBuf(u),
        "SO_RCVBUF" => SockOpt::RcvBuf(u),
        "TCP_NODELAY" => SockOpt::NoDelay(b),
        "TCP_CORK" => SockOpt::Cork(b),
        "TCP_KEEPIDLE" => SockOpt::KeepIdle(u),
        "TCP_KEEPINTVL" => SockOpt::KeepIntvl(u),
        "TCP_KEEPCNT" => SockOpt::KeepCnt(u),
        "TCP_MAXSEG" => SockOpt::MaxSeg(u),
        "TCP_SYNCNT" => SockOpt::SynCnt(u),
        "TCP_USER_TIMEOUT" => SockOpt::UserTimeout(u),
        "TCP_WINDOW_CLAMP" => SockOpt::WindowClamp(u),
        "TCP_LINGER2" => SockOpt::Linger2(i32::try_from(v.clamp(-1, 1 << 20)).unwrap_or(-1)),
        other => return skip(line, format!("setsockopt({other})")),
    })
}

fn sockopt_name(n: &str) -> Option<SockOptName> {
    Some(match n {
        "SO_REUSEADDR" => SockOptName::ReuseAddr,
        "SO_KEEPALIVE" => SockOptName::KeepAlive,
        "SO_SNDBUF" => SockOptName::SndBuf,
        "SO_RCVBUF" => SockOptName::RcvBuf,
        "SO_ERROR" => SockOptName::Error,
        "TCP_NODELAY" => SockOptName::NoDelay,
        "TCP_CORK" => SockOptName::Cork,
        "TCP_KEEPIDLE" => SockOptName::KeepIdle,
        "TCP_KEEPINTVL" => SockOptName::KeepIntvl,
        "TCP_KEEPCNT" => SockOptName::KeepCnt,
        "TCP_MAXSEG" => SockOptName::MaxSeg,
        "TCP_SYNCNT" => SockOptName::SynCnt,
        "TCP_USER_TIMEOUT" => SockOptName::UserTimeout,
        "TCP_LINGER2" => SockOptName::Linger2,
        _ => return None,
    })
}

/// The `tcpi_*` names of a `TCP_INFO` snapshot.
fn snapshot(i: &TcpInfo) -> BTreeMap<String, i128> {
    let fields: [(&str, i128); 46] = [
        ("state", i.state.into()),
        ("ca_state", i.ca_state.into()),
        ("retransmits", i.retransmits.into()),
        ("probes", i.probes.into()),
        ("backoff", i.backoff.into()),
        ("options", i.options.into()),
        ("snd_wscale", i.snd_wscale.into()),
        ("rcv_wscale", i.rcv_wscale.into()),
        ("rto", i.rto.into()),
        ("ato", i.ato.into()),
        ("snd_mss", i.snd_mss.into()),
        ("rcv_mss", i.rcv_mss.into()),
        ("unacked", i.unacked.into()),
        ("sacked", i.sacked.into()),
        ("lost", i.lost.into()),
        ("retrans", i.retrans.into()),
        ("last_data_sent", i.last_data_sent.into()),
        ("last_data_recv", i.last_data_recv.into()),
        ("last_ack_recv", i.last_ack_recv.into()),
        ("pmtu", i.pmtu.into()),
        ("rcv_ssthresh", i.rcv_ssthresh.into()),
        ("rtt", i.rtt.into()),
        ("rttvar", i.rttvar.into()),
        ("snd_ssthresh", i.snd_ssthresh.into()),
        ("snd_cwnd", i.snd_cwnd.into()),
        ("advmss", i.advmss.into()),
        ("reordering", i.reordering.into()),
        ("rcv_space", i.rcv_space.into()),
        ("total_retrans", i.total_retrans.into()),
        ("bytes_acked", i.bytes_acked.into()),
        ("bytes_received", i.bytes_received.into()),
        ("segs_out", i.segs_out.into()),
        ("segs_in", i.segs_in.into()),
        ("notsent_bytes", i.notsent_bytes.into()),
        ("min_rtt", i.min_rtt.into()),
        ("data_segs_in", i.data_segs_in.into()),
        ("data_segs_out", i.data_segs_out.into()),
        ("delivered", i.delivered.into()),
        ("delivered_ce", i.delivered_ce.into()),
        ("busy_time", i.busy_time.into()),
        ("rwnd_limited", i.rwnd_limited.into()),
        ("sndbuf_limited", i.sndbuf_limited.into()),
        ("bytes_sent", i.bytes_sent.into()),
        ("bytes_retrans", i.bytes_retrans.into()),
        ("snd_wnd", i.snd_wnd.into()),
        ("rcv_wnd", i.rcv_wnd.into()),
    ];
    fields
        .into_iter()
        .map(|(k, v)| (format!("tcpi_{k}"), v))
        .collect()
}
