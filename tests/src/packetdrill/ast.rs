//! The syntax tree of a packetdrill script.
//!
//! Mirrors the grammar of packetdrill's `parser.y` as GRAMMAR.md §2–§6 describes
//! it: options, an init command, timed events (packets, system calls, shell
//! commands, code blocks) and a cleanup command. `Display` prints packets and
//! times back in script syntax, which the matcher's messages use.

use std::fmt;

use wire::TcpFlags;

use super::python::Program;
use super::shell::ShellStep;

/// A time in microseconds, the unit packetdrill keeps all times in.
pub type Usecs = i64;

/// A whole parsed script.
#[derive(Clone, Debug, PartialEq)]
pub struct Script {
    /// `--name[=value]` lines from the top of the file, in order.
    pub options: Vec<ScriptOption>,
    /// The untimed shell command before the first event.
    pub init: Option<ShellCommand>,
    /// The timed events, in file order.
    pub events: Vec<Event>,
    /// The untimed shell command after the last event.
    pub cleanup: Option<ShellCommand>,
}

/// One `--name[=value]` option written in the script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptOption {
    /// Line of the option.
    pub line: u32,
    /// The name without the leading `--`.
    pub name: String,
    /// The value after `=`.
    pub value: Option<String>,
}

/// A shell command, kept as text and as the structured steps it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct ShellCommand {
    /// Line of the opening backtick.
    pub line: u32,
    /// The text between the backticks.
    pub text: String,
    /// What the command does, one step per recognised command.
    pub steps: Vec<ShellStep>,
}

/// One timed line of the script.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Line of the event's first token (its time).
    pub line: u32,
    /// When it happens.
    pub time: EventTime,
    /// What happens.
    pub action: Action,
}

/// Whether a time is counted from the script start or from the previous event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeBase {
    /// `T`: seconds since the script started.
    Absolute,
    /// `+T`: seconds after the previous event.
    Relative,
}

/// One written time, `T` or `+T`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimePoint {
    /// Absolute or relative.
    pub base: TimeBase,
    /// The value in microseconds.
    pub usecs: Usecs,
}

/// The time column of an event (GRAMMAR.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTime {
    /// `T` or `+T`.
    At(TimePoint),
    /// `*`: any time (outbound packets only).
    Any,
    /// `T1~T2` or `+T1~+T2` (outbound packets only).
    Window {
        /// Earliest expected time.
        start: TimePoint,
        /// Latest expected time.
        end: TimePoint,
    },
    /// `T...E` before a system call that must block from `T` and return at
    /// `E`; `E` counts from the same base as `T` (GRAMMAR.md §3).
    Blocking {
        /// When the call starts.
        start: TimePoint,
        /// When it must return, in microseconds from `start`'s base.
        end_usecs: Usecs,
    },
}

/// What an event does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// `<` or `>` packet line.
    Packet(PacketSpec),
    /// A system call with its expected result.
    Syscall(SyscallSpec),
    /// A timed shell command.
    Shell(ShellCommand),
    /// A `%{ … }%` code block.
    Code(CodeBlock),
}

/// A `%{ … }%` block: its text and the parsed program.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeBlock {
    /// The text between `%{` and `}%`.
    pub text: String,
    /// The statements.
    pub program: Program,
}

/// `<` (injected into the stack) or `>` (expected from the stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `<`: the script sends it to the stack.
    Inbound,
    /// `>`: the stack must send it.
    Outbound,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "<",
            Direction::Outbound => ">",
        })
    }
}

/// A packet line.
#[derive(Clone, Debug, PartialEq)]
pub struct PacketSpec {
    /// Inbound or outbound.
    pub direction: Direction,
    /// The `[…]`/`(…)` IP fields, if written.
    pub ip: IpSpec,
    /// `sport>dport`, if written.
    pub ports: Option<(u16, u16)>,
    /// The transport part.
    pub body: PacketBody,
}

/// The IP-level fields a packet line may give (GRAMMAR.md §4 `ip_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IpSpec {
    /// ECN codepoint.
    pub ecn: Option<EcnSpec>,
    /// Whole TOS byte.
    pub tos: Option<u8>,
    /// TTL.
    pub ttl: Option<u8>,
    /// IPv6 flow label.
    pub flowlabel: Option<u32>,
}

/// An ECN codepoint written in `[…]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcnSpec {
    /// `noecn`: 00.
    NotEct,
    /// `ect1`: 01.
    Ect1,
    /// `ect0`: 10.
    Ect0,
    /// `ce`: 11.
    Ce,
    /// `ect01`: either ECT codepoint matches.
    Ect01,
}

impl EcnSpec {
    fn name(self) -> &'static str {
        match self {
            EcnSpec::NotEct => "noecn",
            EcnSpec::Ect1 => "ect1",
            EcnSpec::Ect0 => "ect0",
            EcnSpec::Ce => "ce",
            EcnSpec::Ect01 => "ect01",
        }
    }

    /// Whether the two ECN bits of a received TOS byte match this spec.
    pub fn matches(self, ecn_bits: u8) -> bool {
        match self {
            EcnSpec::NotEct => ecn_bits == 0,
            EcnSpec::Ect1 => ecn_bits == 1,
            EcnSpec::Ect0 => ecn_bits == 2,
            EcnSpec::Ce => ecn_bits == 3,
            EcnSpec::Ect01 => ecn_bits == 1 || ecn_bits == 2,
        }
    }
}

/// The transport part of a packet line.
#[derive(Clone, Debug, PartialEq)]
pub enum PacketBody {
    /// A TCP segment.
    Tcp(TcpSpec),
    /// `udp (LEN)`.
    Udp {
        /// Payload length.
        len: u32,
    },
    /// `icmp TYPE [CODE] [mtu N] [id N] [echoed]`.
    Icmp(IcmpSpec),
}

/// A TCP segment as written: `flags start:end(len) [ack N] [win N] [urg N] [<opts>]`.
#[derive(Clone, Debug, PartialEq)]
pub struct TcpSpec {
    /// The flag bits (`.` is ACK).
    pub flags: TcpFlags,
    /// AccECN ACE value written as a digit 0–7, if any.
    pub ace: Option<u8>,
    /// First sequence number (script space).
    pub start_seq: u32,
    /// Sequence number after the payload; `start_seq + len`.
    pub end_seq: u32,
    /// Payload length.
    pub len: u32,
    /// `ack N` (script space).
    pub ack: Option<u32>,
    /// `win N`: the raw 16-bit field.
    pub win: Option<u16>,
    /// `urg N`.
    pub urg: Option<u16>,
    /// The option list.
    pub options: TcpOptionsSpec,
}

/// The `<…>` part of a TCP line.
#[derive(Clone, Debug, PartialEq)]
pub enum TcpOptionsSpec {
    /// No `<…>`: the segment carries no options.
    Absent,
    /// `<...>`: options are not checked (outbound only).
    Any,
    /// The options in wire order.
    List(Vec<TcpOptionSpec>),
}

/// One TCP option as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOptionSpec {
    /// `eol`.
    Eol,
    /// `nop`.
    Nop,
    /// `mss N`.
    Mss(u16),
    /// `wscale N`.
    Wscale(u8),
    /// `sackOK`.
    SackPermitted,
    /// `sack L:R …` in script sequence space.
    Sack(Vec<(u32, u32)>),
    /// `TS val V ecr E`.
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// `md5 …`: the signature text.
    Md5(String),
    /// `FO [cookie]` (option 34).
    FastOpen(Option<String>),
    /// `FOEXP [cookie]` (experimental option 254).
    FastOpenExp(Option<String>),
    /// `ECN e0b N [ceb N [e1b N]]` (AccECN).
    AccEcn {
        /// ECT(0) byte counter.
        e0b: u32,
        /// CE byte counter.
        ceb: Option<u32>,
        /// ECT(1) byte counter.
        e1b: Option<u32>,
    },
}

impl TcpOptionSpec {
    /// Bytes this option takes on the wire, as packetdrill encodes it.
    pub fn wire_len(&self) -> usize {
        match self {
            TcpOptionSpec::Eol | TcpOptionSpec::Nop => 1,
            TcpOptionSpec::Mss(_) => 4,
            TcpOptionSpec::Wscale(_) => 3,
            TcpOptionSpec::SackPermitted => 2,
            TcpOptionSpec::Sack(b) => 2 + 8 * b.len(),
            TcpOptionSpec::Timestamp { .. } => 10,
            TcpOptionSpec::Md5(_) => 18,
            TcpOptionSpec::FastOpen(c) => 2 + c.as_ref().map_or(0, |c| c.len() / 2),
            TcpOptionSpec::FastOpenExp(c) => 4 + c.as_ref().map_or(0, |c| c.len() / 2),
            TcpOptionSpec::AccEcn { ceb, e1b, .. } => {
                2 + 3 + 3 * usize::from(ceb.is_some()) + 3 * usize::from(e1b.is_some())
            }
        }
    }
}

impl fmt::Display for TcpOptionSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TcpOptionSpec::Eol => f.write_str("eol"),
            TcpOptionSpec::Nop => f.write_str("nop"),
            TcpOptionSpec::Mss(v) => write!(f, "mss {v}"),
            TcpOptionSpec::Wscale(v) => write!(f, "wscale {v}"),
            TcpOptionSpec::SackPermitted => f.write_str("sackOK"),
            TcpOptionSpec::Sack(blocks) => {
                f.write_str("sack")?;
                for (l, r) in blocks {
                    write!(f, " {l}:{r}")?;
                }
                Ok(())
            }
            TcpOptionSpec::Timestamp { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            TcpOptionSpec::Md5(s) => write!(f, "md5 {s}"),
            TcpOptionSpec::FastOpen(c) => match c {
                Some(c) => write!(f, "FO {c}"),
                None => f.write_str("FO"),
            },
            TcpOptionSpec::FastOpenExp(c) => match c {
                Some(c) => write!(f, "FOEXP {c}"),
                None => f.write_str("FOEXP"),
            },
            TcpOptionSpec::AccEcn { e0b, ceb, e1b } => {
                write!(f, "ECN e0b {e0b}")?;
                if let Some(c) = ceb {
                    write!(f, " ceb {c}")?;
                }
                if let Some(e) = e1b {
                    write!(f, " e1b {e}")?;
                }
                Ok(())
            }
        }
    }
}

/// Writes TCP flags the way scripts spell them: `S`, `F`, `R`, `P`, `U`,
/// `E`, `W`, `A` in that order, then `.` for ACK; `-` when none is set.
pub fn format_tcp_flags(flags: TcpFlags, ace: Option<u8>) -> String {
    let mut s = String::new();
    if let Some(a) = ace {
        s.push(char::from(b'0' + a));
    }
    for (bit, c) in [
        (TcpFlags::SYN, 'S'),
        (TcpFlags::FIN, 'F'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::URG, 'U'),
        (TcpFlags::ECE, 'E'),
        (TcpFlags::CWR, 'W'),
        (TcpFlags::AE, 'A'),
        (TcpFlags::ACK, '.'),
    ] {
        if flags.contains(bit) {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

impl fmt::Display for TcpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}:{}({})",
            format_tcp_flags(self.flags, self.ace),
            self.start_seq,
            self.end_seq,
            self.len
        )?;
        if let Some(a) = self.ack {
            write!(f, " ack {a}")?;
        }
        if let Some(w) = self.win {
            write!(f, " win {w}")?;
        }
        if let Some(u) = self.urg {
            write!(f, " urg {u}")?;
        }
        match &self.options {
            TcpOptionsSpec::Absent => Ok(()),
            TcpOptionsSpec::Any => f.write_str(" <...>"),
            TcpOptionsSpec::List(list) => {
                f.write_str(" <")?;
                for (i, o) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{o}")?;
                }
                f.write_str(">")
            }
        }
    }
}

impl fmt::Display for IpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(e) = self.ecn {
            parts.push(e.name().to_string());
        }
        if let Some(t) = self.tos {
            parts.push(format!("tos 0x{t:x}"));
        }
        if let Some(t) = self.ttl {
            parts.push(format!("ttl {t}"));
        }
        if let Some(l) = self.flowlabel {
            parts.push(format!("flowlabel 0x{l:x}"));
        }
        if parts.is_empty() {
            Ok(())
        } else {
            write!(f, "[{}] ", parts.join(","))
        }
    }
}

impl fmt::Display for PacketSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.direction, self.ip)?;
        if let Some((s, d)) = self.ports {
            write!(f, "{s}>{d} ")?;
        }
        match &self.body {
            PacketBody::Tcp(t) => write!(f, "{t}"),
            PacketBody::Udp { len } => write!(f, "udp ({len})"),
            PacketBody::Icmp(i) => write!(f, "{i}"),
        }
    }
}

/// An ICMP packet line: `icmp unreachable frag_needed mtu 1200 [1:1461(1460)]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcmpSpec {
    /// Type name (`unreachable`, `time_exceeded`, `echo_request`, …).
    pub kind: String,
    /// Code name (`frag_needed`, `host_unreachable`, …).
    pub code: Option<String>,
    /// `mtu N`: next-hop MTU for "fragmentation needed".
    pub mtu: Option<u32>,
    /// `id N`.
    pub id: Option<u16>,
    /// The echoed transport header.
    pub echoed: Option<IcmpEchoed>,
}

/// The part of the offending packet an ICMP error quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpEchoed {
    /// `[start:end(len)]`: a TCP header with that sequence range.
    Tcp {
        /// First sequence number.
        start_seq: u32,
        /// End sequence number.
        end_seq: u32,
        /// Length.
        len: u32,
    },
    /// `[udp (N)]`.
    Udp {
        /// Payload length.
        len: u32,
    },
    /// `[raw (N)]`.
    Raw {
        /// Length.
        len: u32,
    },
}

impl fmt::Display for IcmpSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "icmp {}", self.kind)?;
        if let Some(c) = &self.code {
            write!(f, " {c}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu {m}")?;
        }
        if let Some(i) = self.id {
            write!(f, " id {i}")?;
        }
        match self.echoed {
            None => Ok(()),
            Some(IcmpEchoed::Tcp {
                start_seq,
                end_seq,
                len,
            }) => write!(f, " [{start_seq}:{end_seq}({len})]"),
            Some(IcmpEchoed::Udp { len }) => write!(f, " [udp ({len})]"),
            Some(IcmpEchoed::Raw { len }) => write!(f, " [raw ({len})]"),
        }
    }
}

/// A system call line: `name(args) = result [ERRNO [(text)]] [(note)]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyscallSpec {
    /// The call's name (`socket`, `sendmsg`, …).
    pub name: String,
    /// The arguments.
    pub args: Vec<Expr>,
    /// The expected result.
    pub result: SyscallResult,
}

/// The expected outcome of a system call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallResult {
    /// The return value (`-1` for errors; for `socket`/`accept` a script fd).
    pub value: i64,
    /// The symbolic errno, e.g. `EINPROGRESS`.
    pub errno: Option<String>,
    /// The free text after the errno, e.g. `Operation now in progress`.
    pub errno_text: Option<String>,
    /// A trailing note such as `flags O_RDWR` (ignored by packetdrill).
    pub note: Option<String>,
}

/// A system call argument (GRAMMAR.md §5 "Argument forms").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// `...`: filled in automatically / not checked.
    Ellipsis,
    /// An integer.
    Int(i64),
    /// A symbolic constant (`SOCK_STREAM`, `NULL`, …).
    Symbol(String),
    /// A `"string"`.
    Str(String),
    /// `A|B|…`.
    Or(Vec<Expr>),
    /// `[a, b, …]`: an array, or a pointer to an int when it has one element.
    Array(Vec<Expr>),
    /// `{…}`: a struct with named or positional fields.
    Struct(Vec<StructField>),
    /// `htons(8080)`, `inet_addr("…")`.
    Call {
        /// Function name.
        name: String,
        /// Its arguments.
        args: Vec<Expr>,
    },
}

/// One field of a `{…}` struct argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructField {
    /// `name` in `name=value` (None for positional fields such as iovec's).
    pub name: Option<String>,
    /// `N` in `msg_iov(N)=…` or `msg_name(...)=…`.
    pub index: Option<Box<Expr>>,
    /// The value.
    pub value: Expr,
}

impl Expr {
    /// The integer this expression denotes, when it is a plain integer or a
    /// one-element array of one (`[1]`).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Expr::Int(v) => Some(*v),
            Expr::Array(v) if v.len() == 1 => v[0].as_int(),
            _ => None,
        }
    }

    /// The named field of a struct argument.
    pub fn field(&self, name: &str) -> Option<&StructField> {
        match self {
            Expr::Struct(fields) => fields.iter().find(|f| f.name.as_deref() == Some(name)),
            _ => None,
        }
    }
}

/// Writes a time in seconds with millisecond precision (`0.200`), or more
/// digits when the microseconds need them.
pub fn format_secs(usecs: Usecs) -> String {
    let sign = if usecs < 0 { "-" } else { "" };
    let a = usecs.unsigned_abs();
    let (s, us) = (a / 1_000_000, a % 1_000_000);
    if us % 1000 == 0 {
        format!("{sign}{s}.{:03}", us / 1000)
    } else {
        format!("{sign}{s}.{us:06}")
    }
}

impl fmt::Display for TimePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.base == TimeBase::Relative {
            f.write_str("+")?;
        }
        f.write_str(&format_secs(self.usecs))
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventTime::At(t) => write!(f, "{t}"),
            EventTime::Any => f.write_str("*"),
            EventTime::Window { start, end } => write!(f, "{start}~{end}"),
            EventTime::Blocking { start, end_usecs } => {
                write!(f, "{start}...{}", format_secs(*end_usecs))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_as_scripts_write_them() {
        assert_eq!(format_tcp_flags(TcpFlags::SYN | TcpFlags::ACK, None), "S.");
        assert_eq!(
            format_tcp_flags(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK, None),
            "FP."
        );
        assert_eq!(
            format_tcp_flags(TcpFlags::SYN | TcpFlags::ECE | TcpFlags::CWR, None),
            "SEW"
        );
        assert_eq!(format_tcp_flags(TcpFlags::empty(), None), "-");
        assert_eq!(format_tcp_flags(TcpFlags::ACK, Some(5)), "5.");
    }

    #[test]
    fn seconds_format() {
        assert_eq!(format_secs(200_000), "0.200");
        assert_eq!(format_secs(1_000_000), "1.000");
        assert_eq!(format_secs(1_234_567), "1.234567");
        assert_eq!(format_secs(-4000), "-0.004");
    }

    #[test]
    fn option_wire_lengths() {
        let opts = [
            TcpOptionSpec::Mss(1460),
            TcpOptionSpec::SackPermitted,
            TcpOptionSpec::Timestamp { val: 1, ecr: 0 },
            TcpOptionSpec::Nop,
            TcpOptionSpec::Wscale(8),
        ];
        assert_eq!(opts.iter().map(TcpOptionSpec::wire_len).sum::<usize>(), 20);
        assert_eq!(TcpOptionSpec::Sack(vec![(1, 2), (3, 4)]).wire_len(), 18);
    }
}
