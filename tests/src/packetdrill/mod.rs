//! The front half of a packetdrill runner: language, evaluator, timing,
//! matching and reports — everything that does not need the TCP stack.
//!
//! packetdrill (google/packetdrill) tests a TCP stack with scripts of timed
//! packets and system calls. GRAMMAR.md in `../shared/conformance/packetdrill/`
//! describes the language and how packetdrill matches packets; this module
//! implements it in Rust so the scripts can run against our stack in virtual
//! time:
//!
//! ```text
//!  script text ──lexer──▶ tokens ──parser──▶ Script (ast)
//!                                   │           │ options ─▶ Config
//!                                   │           │ `init`  ─▶ ShellStep ─▶ InitSettings
//!                                   │           │ %{ }%   ─▶ python::Program
//!  executor (exec.rs):    events ─▶ timing::schedule ─▶ inject / sniff
//!                         sniffed bytes ─▶ ActualPacket ─▶ to_script_space (SeqMap, TsMap)
//!                                        ─▶ match_outbound(ExpectedPacket) ─▶ Mismatch
//!                         end of run ─▶ python::Env::run per block ─▶ Outcome ─▶ Report
//! ```
//!
//! Files mirror packetdrill's: `lexer.rs` (`lexer.l`), `parser.rs` (`parser.y`),
//! `config.rs` (`config.c`), `python.rs` (`code.c` plus the Python it runs),
//! `timing.rs` and `seq_map.rs` and `matcher.rs` (`run.c`, `run_packet.c`).
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use integration_tests::packetdrill::{Action, parse_script};
//!
//! let script = parse_script(
//!     "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
//!      +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n\
//!      +0 > S 0:0(0) <mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 8>\n",
//!     &BTreeMap::new(),
//! )?;
//! assert_eq!(script.events.len(), 3);
//! let Action::Syscall(c) = &script.events[1].action else { unreachable!() };
//! assert_eq!(c.result.errno.as_deref(), Some("EINPROGRESS"));
//! # Ok::<(), integration_tests::packetdrill::ParseError>(())
//! ```

mod ast;
mod config;
mod exec;
mod exec_ctx;
mod lexer;
mod matcher;
mod parser;
mod pcap;
pub mod python;
mod report;
mod seq_map;
mod shell;
mod timing;

pub use ast::{
    Action, CodeBlock, Direction, EcnSpec, Event, EventTime, Expr, IcmpEchoed, IcmpSpec, IpSpec,
    PacketBody, PacketSpec, Script, ScriptOption, ShellCommand, StructField, SyscallResult,
    SyscallSpec, TcpOptionSpec, TcpOptionsSpec, TcpSpec, TimeBase, TimePoint, Usecs, format_secs,
    format_tcp_flags,
};
pub use config::{Config, ConfigError, IpVersion};
pub use exec::{run_script, run_script_traced};
pub use lexer::{LexError, Token, TokenKind, tokenize};
pub use matcher::{
    ActualPacket, ActualTcpOption, CaptureError, ExpectedPacket, Field, Mismatch, match_outbound,
    timeout_message,
};
pub use parser::{KNOWN_SYSCALLS, ParseError, ParseErrorKind, parse_script};
pub use pcap::{LINKTYPE_RAW, write_pcap};
pub use report::{Outcome, Report};
pub use seq_map::{SeqMap, TsMap, UnknownEcr, ts_val_ok};
pub use shell::{InitSettings, ShellError, ShellStep, parse_shell, read_defaults};
pub use timing::{
    OUTBOUND_TIMEOUT_USECS, Schedule, TimingError, Tolerance, check_return_time, check_time,
    schedule,
};
