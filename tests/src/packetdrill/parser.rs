//! Parser from tokens to a [`Script`].
//!
//! Mirrors the grammar of packetdrill's `parser.y` as GRAMMAR.md describes it.
//! Errors carry the line and say whether the text is wrong
//! ([`ParseErrorKind::Syntax`]) or valid but outside what the runner
//! implements ([`ParseErrorKind::Unsupported`]); the runner reports the first
//! as FAIL and the second as SKIP.

use std::collections::BTreeMap;
use std::fmt;

use wire::TcpFlags;

use super::ast::{
    Action, CodeBlock, Direction, EcnSpec, Event, EventTime, Expr, IcmpEchoed, IcmpSpec, IpSpec,
    PacketBody, PacketSpec, Script, ScriptOption, ShellCommand, StructField, SyscallResult,
    SyscallSpec, TcpOptionSpec, TcpOptionsSpec, TcpSpec, TimeBase, TimePoint, Usecs,
};
use super::lexer::{Token, TokenKind, tokenize};
use super::python::{self, PyError};
use super::shell::{ShellError, parse_shell};

/// Why a script did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the problem.
    pub line: u32,
    /// What kind of problem.
    pub kind: ParseErrorKind,
}

/// The two kinds of parse failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// The script is not valid packetdrill.
    Syntax(String),
    /// The script is valid but uses a construct the runner does not support;
    /// the text names the construct.
    Unsupported(String),
}

impl ParseError {
    /// Whether the runner should SKIP (rather than FAIL) the script.
    pub fn is_unsupported(&self) -> bool {
        matches!(self.kind, ParseErrorKind::Unsupported(_))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::Syntax(m) => write!(f, "line {}: syntax error: {m}", self.line),
            ParseErrorKind::Unsupported(m) => write!(f, "line {}: unsupported: {m}", self.line),
        }
    }
}

impl std::error::Error for ParseError {}

/// System calls packetdrill knows (GRAMMAR.md §5); any other name is a syntax error.
pub const KNOWN_SYSCALLS: [&str; 34] = [
    "socket",
    "bind",
    "listen",
    "accept",
    "connect",
    "read",
    "readv",
    "recv",
    "recvfrom",
    "recvmsg",
    "write",
    "writev",
    "send",
    "sendto",
    "sendmsg",
    "fcntl",
    "ioctl",
    "close",
    "shutdown",
    "getsockopt",
    "setsockopt",
    "poll",
    "open",
    "sendfile",
    "epoll_create",
    "epoll_ctl",
    "epoll_wait",
    "pipe",
    "splice",
    "cap_set",
    "psp_key_rx",
    "psp_key_tx",
    "socketpair",
    "accept4",
];

/// Parses a script. `--define=NAME=value` options at its top apply to the
/// rest of the file; `extra_defines` stands for `-D NAME=value` on the
/// command line.
pub fn parse_script(
    src: &str,
    extra_defines: &BTreeMap<String, String>,
) -> Result<Script, ParseError> {
    let mut defines = extra_defines.clone();
    for line in src.lines() {
        if let Some((k, v)) = line
            .trim()
            .strip_prefix("--define=")
            .and_then(|d| d.split_once('='))
        {
            defines.insert(k.to_string(), v.to_string());
        }
    }
    let toks = tokenize(src, &defines).map_err(|e| ParseError {
        line: e.line,
        kind: ParseErrorKind::Syntax(e.message),
    })?;
    let mut p = Parser { src, toks, pos: 0 };
    p.script()
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

type PResult<T> = Result<T, ParseError>;

fn shell_command(line: u32, text: &str) -> PResult<ShellCommand> {
    let steps = parse_shell(text).map_err(|e| ParseError {
        line,
        kind: match e {
            ShellError::Unsupported(c) => {
                ParseErrorKind::Unsupported(format!("shell command `{}`", c.trim()))
            }
            ShellError::Malformed(m) => ParseErrorKind::Syntax(m),
        },
    })?;
    Ok(ShellCommand {
        line,
        text: text.to_string(),
        steps,
    })
}

/// Seconds as written (`1`, `.1`, `0.200`) to microseconds, exactly.
fn secs_to_usecs(kind: &TokenKind) -> Option<Usecs> {
    match kind {
        TokenKind::Int(v) => v.checked_mul(1_000_000),
        TokenKind::Float(s) => {
            let (neg, s) = s
                .strip_prefix('-')
                .map_or((false, s.as_str()), |r| (true, r));
            let (int, frac) = s.split_once('.')?;
            let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
            let mut frac_digits = frac.to_string();
            if frac_digits.len() > 6 {
                // Sub-microsecond digits: round half up.
                let round = frac_digits.as_bytes()[6] >= b'5';
                frac_digits.truncate(6);
                let v: i64 = frac_digits.parse().ok()?;
                let us = int.checked_mul(1_000_000)? + v + i64::from(round);
                return Some(if neg { -us } else { us });
            }
            while frac_digits.len() < 6 {
                frac_digits.push('0');
            }
            let v: i64 = frac_digits.parse().ok()?;
            let us = int.checked_mul(1_000_000)? + v;
            Some(if neg { -us } else { us })
        }
        _ => None,
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&TokenKind> {
        self.toks.get(self.pos).map(|t| &t.kind)
    }

    fn peek_at(&self, off: usize) -> Option<&TokenKind> {
        self.toks.get(self.pos + off).map(|t| &t.kind)
    }

    fn line(&self) -> u32 {
        self.toks
            .get(self.pos)
            .or_else(|| self.toks.last())
            .map_or(1, |t| t.line)
    }

    fn syntax<T>(&self, msg: impl Into<String>) -> PResult<T> {
        let near = self
            .toks
            .get(self.pos)
            .map_or_else(|| "end of file".to_string(), |t| format!("`{}`", t.kind));
        Err(ParseError {
            line: self.line(),
            kind: ParseErrorKind::Syntax(format!("{} (near {near})", msg.into())),
        })
    }

    fn unsupported<T>(line: u32, what: impl Into<String>) -> PResult<T> {
        Err(ParseError {
            line,
            kind: ParseErrorKind::Unsupported(what.into()),
        })
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&TokenKind::Punct(c))
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.is_punct(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, c: char) -> PResult<()> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.syntax(format!("expected `{c}`"))
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(TokenKind::Word(x)) if x == w)
    }

    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self, what: &str) -> PResult<String> {
        match self.peek() {
            Some(TokenKind::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.syntax(format!("expected {what}")),
        }
    }

    fn int(&mut self, what: &str) -> PResult<i64> {
        match self.peek() {
            Some(TokenKind::Int(v)) => {
                let v = *v;
                self.pos += 1;
                Ok(v)
            }
            _ => self.syntax(format!("expected {what} (an integer)")),
        }
    }

    fn uint<T: TryFrom<i64>>(&mut self, what: &str) -> PResult<T> {
        let line = self.line();
        let v = self.int(what)?;
        T::try_from(v).map_err(|_| ParseError {
            line,
            kind: ParseErrorKind::Syntax(format!("{what} {v} is out of range")),
        })
    }

    fn script(&mut self) -> PResult<Script> {
        let mut options = Vec::new();
        while let Some(TokenKind::Option { name, value }) = self.peek() {
            options.push(ScriptOption {
                line: self.line(),
                name: name.clone(),
                value: value.clone(),
            });
            self.pos += 1;
        }
        let mut init = None;
        if let Some(TokenKind::Shell(text)) = self.peek() {
            let (line, text) = (self.line(), text.clone());
            self.pos += 1;
            init = Some(shell_command(line, &text)?);
        }
        let mut events = Vec::new();
        let mut cleanup = None;
        while let Some(kind) = self.peek() {
            match kind {
                TokenKind::Option { .. } => {
                    return self.syntax("options are allowed only at the top of the script");
                }
                TokenKind::Shell(text) => {
                    let (line, text) = (self.line(), text.clone());
                    self.pos += 1;
                    if self.peek().is_some() {
                        return Err(ParseError {
                            line,
                            kind: ParseErrorKind::Syntax(
                                "a shell command without a time must be the init or the \
                                 cleanup command"
                                    .into(),
                            ),
                        });
                    }
                    cleanup = Some(shell_command(line, &text)?);
                }
                _ => events.push(self.event()?),
            }
        }
        if let Some(first) = events.first() {
            let zero = match first.time {
                EventTime::At(t) | EventTime::Blocking { start: t, .. } => t.usecs == 0,
                EventTime::Window { start, .. } => start.usecs == 0,
                EventTime::Any => true,
            };
            if !zero {
                return Err(ParseError {
                    line: first.line,
                    kind: ParseErrorKind::Syntax("the first event must be at time 0".into()),
                });
            }
        }
        check_absolute_order(&events)?;
        Ok(Script {
            options,
            init,
            events,
            cleanup,
        })
    }

    fn time_point(&mut self) -> PResult<TimePoint> {
        let base = if self.eat_punct('+') {
            TimeBase::Relative
        } else {
            TimeBase::Absolute
        };
        let line = self.line();
        match self.next() {
            Some(t) => match secs_to_usecs(&t.kind) {
                Some(usecs) if usecs >= 0 => Ok(TimePoint { base, usecs }),
                _ => {
                    self.pos -= 1;
                    let _ = line;
                    self.syntax("expected a time in seconds")
                }
            },
            None => self.syntax("expected a time"),
        }
    }

    fn event_time(&mut self) -> PResult<EventTime> {
        if self.eat_punct('*') {
            return Ok(EventTime::Any);
        }
        let start = self.time_point()?;
        if self.eat_punct('~') {
            let end = self.time_point()?;
            if end.base != start.base {
                return self.syntax("both ends of a time window must be absolute or both relative");
            }
            if end.usecs < start.usecs {
                return self.syntax("a time window ends before it starts");
            }
            return Ok(EventTime::Window { start, end });
        }
        if self.peek() == Some(&TokenKind::Ellipsis) {
            self.pos += 1;
            let end = self.time_point()?;
            if end.base == TimeBase::Relative {
                return self.syntax("the end of a blocking call is written without `+`");
            }
            if end.usecs < start.usecs {
                return self.syntax("a blocking call ends before it starts");
            }
            return Ok(EventTime::Blocking {
                start,
                end_usecs: end.usecs,
            });
        }
        Ok(EventTime::At(start))
    }

    fn event(&mut self) -> PResult<Event> {
        let line = self.line();
        let time = self.event_time()?;
        let action_line = self.line();
        let action = match self.peek() {
            Some(TokenKind::Punct('<')) => Action::Packet(self.packet(Direction::Inbound)?),
            Some(TokenKind::Punct('>')) => Action::Packet(self.packet(Direction::Outbound)?),
            Some(TokenKind::Shell(text)) => {
                let text = text.clone();
                self.pos += 1;
                Action::Shell(shell_command(action_line, &text)?)
            }
            Some(TokenKind::Code(text)) => {
                let text = text.clone();
                self.pos += 1;
                let program = python::parse_program(&text).map_err(|e| {
                    let l = action_line + e.line() - 1;
                    ParseError {
                        line: l,
                        kind: match e {
                            PyError::Unsupported { construct, .. } => ParseErrorKind::Unsupported(
                                format!("Python construct {construct} in a code block"),
                            ),
                            other => ParseErrorKind::Syntax(format!("in code block: {other}")),
                        },
                    }
                })?;
                Action::Code(CodeBlock { text, program })
            }
            Some(TokenKind::Word(_)) => Action::Syscall(self.syscall()?),
            _ => return self.syntax("expected a packet, system call, shell command or code block"),
        };
        match (&action, time) {
            (Action::Packet(p), EventTime::Any | EventTime::Window { .. })
                if p.direction == Direction::Inbound =>
            {
                return Err(ParseError {
                    line,
                    kind: ParseErrorKind::Syntax(
                        "`*` and time windows are allowed only on outbound packets".into(),
                    ),
                });
            }
            (Action::Syscall(_), _)
            | (_, EventTime::At(_) | EventTime::Any | EventTime::Window { .. }) => {}
            (_, EventTime::Blocking { .. }) => {
                return Err(ParseError {
                    line,
                    kind: ParseErrorKind::Syntax("only system calls can block (`...`)".into()),
                });
            }
        }
        if let (Action::Packet(p), EventTime::Any | EventTime::Window { .. }) = (&action, time) {
            debug_assert_eq!(p.direction, Direction::Outbound);
        }
        if matches!(
            action,
            Action::Syscall(_) | Action::Shell(_) | Action::Code(_)
        ) && matches!(time, EventTime::Any | EventTime::Window { .. })
        {
            return Err(ParseError {
                line,
                kind: ParseErrorKind::Syntax(
                    "`*` and time windows are allowed only on outbound packets".into(),
                ),
            });
        }
        Ok(Event { line, time, action })
    }

    // --- packets ---------------------------------------------------------

    fn packet(&mut self, direction: Direction) -> PResult<PacketSpec> {
        let line = self.line();
        self.pos += 1; // `<` or `>`
        let ip = self.ip_info()?;
        let ports = if matches!(self.peek(), Some(TokenKind::Int(_)))
            && self.peek_at(1) == Some(&TokenKind::Punct('>'))
        {
            let s = self.uint("source port")?;
            self.pos += 1;
            let d = self.uint("destination port")?;
            Some((s, d))
        } else {
            None
        };
        let body = if self.eat_word("udp") {
            self.expect_punct('(')?;
            let len = self.uint("UDP length")?;
            self.expect_punct(')')?;
            PacketBody::Udp { len }
        } else if self.eat_word("icmp") {
            PacketBody::Icmp(self.icmp()?)
        } else if ["ipv4", "ipv6", "gre", "mpls", "encap", "psp"]
            .iter()
            .any(|w| self.is_word(w))
        {
            return Self::unsupported(
                line,
                "explicit outer headers (ipv4/ipv6/gre/mpls/encap/psp) in a packet line",
            );
        } else {
            PacketBody::Tcp(self.tcp(direction)?)
        };
        Ok(PacketSpec {
            direction,
            ip,
            ports,
            body,
        })
    }

    fn ip_info(&mut self) -> PResult<IpSpec> {
        let close = if self.is_punct('[') {
            ']'
        } else if self.is_punct('(') {
            ')'
        } else {
            return Ok(IpSpec::default());
        };
        // `(`…`)` before a TCP line is ip_info only when it starts with a known keyword.
        let first = self.peek_at(1).cloned();
        let known = matches!(&first, Some(TokenKind::Word(w)) if
            ["ect0", "ect1", "ect01", "ce", "noecn", "tos", "ttl", "flowlabel", "ecn"].contains(&w.as_str()));
        if !known {
            return self.syntax("expected ECN, tos, ttl or flowlabel in `[...]`");
        }
        self.pos += 1;
        let mut ip = IpSpec::default();
        loop {
            let w = self.word("an IP field")?;
            match w.as_str() {
                "ect0" => ip.ecn = Some(EcnSpec::Ect0),
                "ect1" => ip.ecn = Some(EcnSpec::Ect1),
                "ect01" => ip.ecn = Some(EcnSpec::Ect01),
                "ce" => ip.ecn = Some(EcnSpec::Ce),
                "noecn" => ip.ecn = Some(EcnSpec::NotEct),
                "tos" => ip.tos = Some(self.uint("tos")?),
                "ttl" => ip.ttl = Some(self.uint("ttl")?),
                "flowlabel" => ip.flowlabel = Some(self.uint("flowlabel")?),
                "ecn" => {}
                other => return self.syntax(format!("unknown IP field `{other}`")),
            }
            if self.eat_punct(close) {
                break;
            }
            self.eat_punct(',');
        }
        Ok(ip)
    }

    fn flags(&mut self) -> PResult<(TcpFlags, Option<u8>)> {
        let mut flags = TcpFlags::empty();
        let mut ace = None;
        if self.eat_punct('-') {
            return Ok((flags, None));
        }
        let letters = match self.peek() {
            Some(TokenKind::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                w
            }
            Some(TokenKind::Int(v)) if self.peek_at(1) != Some(&TokenKind::Punct(':')) => {
                let v = *v;
                self.pos += 1;
                v.to_string()
            }
            _ => String::new(),
        };
        for c in letters.chars() {
            let bit = match c {
                'S' => TcpFlags::SYN,
                'F' => TcpFlags::FIN,
                'R' => TcpFlags::RST,
                'P' => TcpFlags::PSH,
                'U' => TcpFlags::URG,
                'E' => TcpFlags::ECE,
                'W' => TcpFlags::CWR,
                'A' => TcpFlags::AE,
                '0'..='7' if ace.is_none() => {
                    ace = Some(c as u8 - b'0');
                    continue;
                }
                other => return self.syntax(format!("unknown TCP flag `{other}`")),
            };
            flags |= bit;
        }
        if self.eat_punct('.') {
            flags |= TcpFlags::ACK;
        }
        if flags.is_empty() && ace.is_none() {
            return self.syntax("expected TCP flags (S F R P . U E W A, or -)");
        }
        Ok((flags, ace))
    }

    fn seq_range(&mut self) -> PResult<(u32, u32, u32)> {
        let line = self.line();
        let start: u32 = self.uint("start sequence number")?;
        self.expect_punct(':')?;
        let end: u32 = self.uint("end sequence number")?;
        self.expect_punct('(')?;
        let len: u32 = self.uint("payload length")?;
        self.expect_punct(')')?;
        if start.wrapping_add(len) != end {
            return Err(ParseError {
                line,
                kind: ParseErrorKind::Syntax(format!(
                    "inconsistent sequence range {start}:{end}({len}): end must be start + len"
                )),
            });
        }
        Ok((start, end, len))
    }

    fn tcp(&mut self, direction: Direction) -> PResult<TcpSpec> {
        let line = self.line();
        let (flags, ace) = self.flags()?;
        let (start_seq, end_seq, len) = self.seq_range()?;
        let mut spec = TcpSpec {
            flags,
            ace,
            start_seq,
            end_seq,
            len,
            ack: None,
            win: None,
            urg: None,
            options: TcpOptionsSpec::Absent,
        };
        loop {
            if self.eat_word("ack") {
                spec.ack = Some(self.uint("ack")?);
            } else if self.eat_word("win") {
                spec.win = Some(self.uint("win")?);
            } else if self.eat_word("urg") {
                spec.urg = Some(self.uint("urg")?);
            } else {
                break;
            }
        }
        if self.is_punct('<') {
            spec.options = self.tcp_options()?;
        }
        if direction == Direction::Inbound {
            if spec.win.is_none() {
                return Err(ParseError {
                    line,
                    kind: ParseErrorKind::Syntax("inbound TCP packets need `win N`".into()),
                });
            }
            if spec.options == TcpOptionsSpec::Any {
                return Err(ParseError {
                    line,
                    kind: ParseErrorKind::Syntax(
                        "`<...>` is allowed only on outbound packets".into(),
                    ),
                });
            }
        }
        Ok(spec)
    }

    fn cookie(&mut self) -> Option<String> {
        match self.peek() {
            Some(TokenKind::Word(w)) if w.bytes().all(|c| c.is_ascii_hexdigit()) => {
                let w = w.clone();
                self.pos += 1;
                Some(w)
            }
            Some(TokenKind::Int(v)) => {
                let t = &self.toks[self.pos];
                let text = self.src[t.start..t.end].to_string();
                let _ = v;
                self.pos += 1;
                Some(text)
            }
            _ => None,
        }
    }

    fn tcp_options(&mut self) -> PResult<TcpOptionsSpec> {
        self.expect_punct('<')?;
        if self.peek() == Some(&TokenKind::Ellipsis) {
            self.pos += 1;
            self.expect_punct('>')?;
            return Ok(TcpOptionsSpec::Any);
        }
        let mut list = Vec::new();
        loop {
            let line = self.line();
            let name = self.word("a TCP option")?;
            let opt = match name.as_str() {
                "nop" => TcpOptionSpec::Nop,
                "eol" => TcpOptionSpec::Eol,
                "mss" => TcpOptionSpec::Mss(self.uint("mss")?),
                "wscale" => TcpOptionSpec::Wscale(self.uint("wscale")?),
                "sackOK" => TcpOptionSpec::SackPermitted,
                "sack" => {
                    let mut blocks = Vec::new();
                    while matches!(self.peek(), Some(TokenKind::Int(_))) {
                        let l = self.uint("SACK block start")?;
                        self.expect_punct(':')?;
                        let r = self.uint("SACK block end")?;
                        blocks.push((l, r));
                    }
                    if blocks.len() > 4 {
                        return self.syntax("at most 4 SACK blocks fit in a TCP header");
                    }
                    TcpOptionSpec::Sack(blocks)
                }
                "TS" => {
                    if !self.eat_word("val") {
                        return self.syntax("expected `val` after TS");
                    }
                    let val = self.uint("TS val")?;
                    if !self.eat_word("ecr") {
                        return self.syntax("expected `ecr` after TS val");
                    }
                    let ecr = self.uint("TS ecr")?;
                    TcpOptionSpec::Timestamp { val, ecr }
                }
                "md5" => {
                    let sig = self.cookie().unwrap_or_default();
                    TcpOptionSpec::Md5(sig)
                }
                "FO" => TcpOptionSpec::FastOpen(self.cookie()),
                "FOEXP" => TcpOptionSpec::FastOpenExp(self.cookie()),
                "ECN" | "AccECN" => {
                    let mut e0b = None;
                    let mut ceb = None;
                    let mut e1b = None;
                    loop {
                        if self.eat_word("e0b") {
                            e0b = Some(self.uint("e0b")?);
                        } else if self.eat_word("ceb") {
                            ceb = Some(self.uint("ceb")?);
                        } else if self.eat_word("e1b") {
                            e1b = Some(self.uint("e1b")?);
                        } else {
                            break;
                        }
                    }
                    let Some(e0b) = e0b else {
                        return self.syntax("AccECN option needs e0b");
                    };
                    TcpOptionSpec::AccEcn { e0b, ceb, e1b }
                }
                other => return Self::unsupported(line, format!("TCP option `{other}`")),
            };
            list.push(opt);
            if self.eat_punct('>') {
                break;
            }
            self.expect_punct(',')?;
        }
        let total: usize = list.iter().map(TcpOptionSpec::wire_len).sum();
        if total > 40 {
            return self.syntax(format!("TCP options take {total} bytes; at most 40 fit"));
        }
        Ok(TcpOptionsSpec::List(list))
    }

    fn icmp(&mut self) -> PResult<IcmpSpec> {
        let kind = self.word("an ICMP type")?;
        let code = match self.peek() {
            Some(TokenKind::Word(w)) if w != "mtu" && w != "id" => {
                let w = w.clone();
                self.pos += 1;
                Some(w)
            }
            _ => None,
        };
        let mut spec = IcmpSpec {
            kind,
            code,
            mtu: None,
            id: None,
            echoed: None,
        };
        loop {
            if self.eat_word("mtu") {
                spec.mtu = Some(self.uint("mtu")?);
            } else if self.eat_word("id") {
                spec.id = Some(self.uint("id")?);
            } else {
                break;
            }
        }
        if self.eat_punct('[') {
            spec.echoed = Some(if self.eat_word("udp") {
                self.expect_punct('(')?;
                let len = self.uint("length")?;
                self.expect_punct(')')?;
                IcmpEchoed::Udp { len }
            } else if self.eat_word("raw") {
                self.expect_punct('(')?;
                let len = self.uint("length")?;
                self.expect_punct(')')?;
                IcmpEchoed::Raw { len }
            } else {
                let (start_seq, end_seq, len) = self.seq_range()?;
                IcmpEchoed::Tcp {
                    start_seq,
                    end_seq,
                    len,
                }
            });
            self.expect_punct(']')?;
        }
        Ok(spec)
    }

    // --- system calls ----------------------------------------------------

    fn syscall(&mut self) -> PResult<SyscallSpec> {
        let line = self.line();
        let name = self.word("a system call name")?;
        if !KNOWN_SYSCALLS.contains(&name.as_str()) {
            return Err(ParseError {
                line,
                kind: ParseErrorKind::Syntax(format!("unknown system call `{name}`")),
            });
        }
        self.expect_punct('(')?;
        let args = self.expr_list(')')?;
        self.expect_punct('=')?;
        let value = match self.peek() {
            Some(TokenKind::Int(v)) => {
                let v = *v;
                self.pos += 1;
                v
            }
            _ => return self.syntax("expected the return value after `=`"),
        };
        let mut result = SyscallResult {
            value,
            errno: None,
            errno_text: None,
            note: None,
        };
        if let Some(TokenKind::Word(w)) = self.peek() {
            if w.starts_with('E')
                && w.len() > 1
                && w.bytes()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            {
                result.errno = Some(w.clone());
                self.pos += 1;
            } else {
                return self.syntax(format!("expected an errno name (E…), got `{w}`"));
            }
        }
        if self.is_punct('(') {
            let text = self.paren_text()?;
            if result.errno.is_some() {
                result.errno_text = Some(text);
            } else {
                result.note = Some(text);
            }
        }
        if result.note.is_none() && self.is_punct('(') {
            result.note = Some(self.paren_text()?);
        }
        Ok(SyscallSpec { name, args, result })
    }

    /// The raw source text between a `(` and its matching `)`.
    fn paren_text(&mut self) -> PResult<String> {
        let open = self.pos;
        self.pos += 1;
        let mut depth = 1;
        while depth > 0 {
            match self.next().map(|t| t.kind) {
                Some(TokenKind::Punct('(')) => depth += 1,
                Some(TokenKind::Punct(')')) => depth -= 1,
                Some(_) => {}
                None => {
                    self.pos = open;
                    return self.syntax("unclosed `(`");
                }
            }
        }
        let start = self.toks[open].end;
        let end = self.toks[self.pos - 1].start;
        Ok(self.src[start..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "))
    }

    fn expr_list(&mut self, close: char) -> PResult<Vec<Expr>> {
        let mut out = Vec::new();
        if self.eat_punct(close) {
            return Ok(out);
        }
        loop {
            out.push(self.expr()?);
            if self.eat_punct(close) {
                return Ok(out);
            }
            self.expect_punct(',')?;
        }
    }

    fn expr(&mut self) -> PResult<Expr> {
        let first = self.atom()?;
        if !self.is_punct('|') {
            return Ok(first);
        }
        let mut v = vec![first];
        while self.eat_punct('|') {
            v.push(self.atom()?);
        }
        Ok(Expr::Or(v))
    }

    fn atom(&mut self) -> PResult<Expr> {
        let Some(t) = self.next() else {
            return self.syntax("expected an argument");
        };
        Ok(match t.kind {
            TokenKind::Ellipsis => Expr::Ellipsis,
            TokenKind::Int(v) => Expr::Int(v),
            TokenKind::Str(s) => Expr::Str(s),
            TokenKind::Word(w) => {
                if self.eat_punct('(') {
                    Expr::Call {
                        name: w,
                        args: self.expr_list(')')?,
                    }
                } else {
                    Expr::Symbol(w)
                }
            }
            TokenKind::Punct('[') => Expr::Array(self.expr_list(']')?),
            TokenKind::Punct('{') => Expr::Struct(self.struct_fields()?),
            _ => {
                self.pos -= 1;
                return self.syntax("expected an argument");
            }
        })
    }

    fn struct_fields(&mut self) -> PResult<Vec<StructField>> {
        let mut out = Vec::new();
        if self.eat_punct('}') {
            return Ok(out);
        }
        loop {
            let named = matches!(self.peek(), Some(TokenKind::Word(_)))
                && (self.peek_at(1) == Some(&TokenKind::Punct('=')) || {
                    // `name(x)=value`: look for `)` then `=`.
                    self.peek_at(1) == Some(&TokenKind::Punct('('))
                        && (2..6).any(|k| {
                            self.peek_at(k) == Some(&TokenKind::Punct(')'))
                                && self.peek_at(k + 1) == Some(&TokenKind::Punct('='))
                        })
                });
            if named {
                let name = self.word("a field name")?;
                let index = if self.eat_punct('(') {
                    let e = self.expr()?;
                    self.expect_punct(')')?;
                    Some(Box::new(e))
                } else {
                    None
                };
                self.expect_punct('=')?;
                let value = self.expr()?;
                out.push(StructField {
                    name: Some(name),
                    index,
                    value,
                });
            } else {
                out.push(StructField {
                    name: None,
                    index: None,
                    value: self.expr()?,
                });
            }
            if self.eat_punct('}') {
                return Ok(out);
            }
            self.expect_punct(',')?;
        }
    }
}

/// An absolute time may never be smaller than an earlier absolute time.
fn check_absolute_order(events: &[Event]) -> PResult<()> {
    let mut last: Option<Usecs> = None;
    for e in events {
        let abs = match e.time {
            EventTime::At(t)
            | EventTime::Blocking { start: t, .. }
            | EventTime::Window { start: t, .. }
                if t.base == TimeBase::Absolute =>
            {
                Some(t.usecs)
            }
            _ => None,
        };
        if let Some(t) = abs {
            if last.is_some_and(|l| t < l) {
                return Err(ParseError {
                    line: e.line,
                    kind: ParseErrorKind::Syntax(
                        "an absolute time is earlier than a previous absolute time".into(),
                    ),
                });
            }
            last = Some(t);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_convert_exactly() {
        assert_eq!(secs_to_usecs(&TokenKind::Float(".1".into())), Some(100_000));
        assert_eq!(
            secs_to_usecs(&TokenKind::Float("0.200".into())),
            Some(200_000)
        );
        assert_eq!(
            secs_to_usecs(&TokenKind::Float("1.0000005".into())),
            Some(1_000_001)
        );
        assert_eq!(secs_to_usecs(&TokenKind::Int(30)), Some(30_000_000));
    }
}
