//! The packetdrill front end against the whole corpus in
//! `../shared/conformance/packetdrill/` and against small inline scripts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use integration_tests::packetdrill::python::{CmpOp, Env, PyError, PyExpr, StmtKind, Value};
use integration_tests::packetdrill::{
    Action, Config, Direction, EcnSpec, EventTime, Expr, IcmpEchoed, InitSettings, PacketBody,
    ParseErrorKind, Script, ShellStep, TcpOptionSpec, TcpOptionsSpec, TimeBase, TimePoint,
    parse_script, read_defaults,
};

fn corpus_dir(test: &str) -> Option<PathBuf> {
    let shared = netcore::testutil::shared_dir_or_skip(test)?;
    Some(shared.join("conformance").join("packetdrill"))
}

fn pkt_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus directory is readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            pkt_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "pkt") {
            out.push(p);
        }
    }
}

fn parse(src: &str) -> Script {
    parse_script(src, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn parse_err(src: &str) -> integration_tests::packetdrill::ParseError {
    parse_script(src, &BTreeMap::new()).expect_err(src)
}

/// The init settings of a script, with its `defaults.sh` read from beside it.
fn init_settings(script: &Script, script_path: &Path) -> InitSettings {
    let mut s = InitSettings::default();
    if let Some(init) = &script.init {
        let dir = script_path.parent().expect("script has a directory");
        s.apply(&init.steps, &mut |p| read_defaults(dir, p))
            .unwrap_or_else(|e| panic!("{}: {e}", script_path.display()));
    }
    s
}

#[test]
fn every_corpus_script_parses() {
    let Some(dir) = corpus_dir("every_corpus_script_parses") else {
        return;
    };
    let mut files = Vec::new();
    pkt_files(&dir, &mut files);
    assert_eq!(files.len(), 108, "the corpus has 108 scripts");
    let mut unsupported = Vec::new();
    let mut events = 0;
    let mut blocks = 0;
    for f in &files {
        let src = std::fs::read_to_string(f).expect("script is readable");
        let rel = f
            .strip_prefix(&dir)
            .expect("under corpus")
            .display()
            .to_string();
        match parse_script(&src, &BTreeMap::new()) {
            Ok(script) => {
                events += script.events.len();
                blocks += script
                    .events
                    .iter()
                    .filter(|e| matches!(e.action, Action::Code(_)))
                    .count();
                let config = Config::from_script_options(&script.options)
                    .unwrap_or_else(|(l, e)| panic!("{rel}:{l}: {e}"));
                let settings = init_settings(&script, f);
                if script.init.is_some() {
                    // Every init in the corpus runs a defaults.sh.
                    assert_eq!(
                        settings
                            .sysctls
                            .get("net.ipv4.tcp_sack")
                            .map(String::as_str),
                        Some("1"),
                        "{rel}"
                    );
                }
                assert!(config.tolerance_usecs >= 4000, "{rel}");
            }
            Err(e) if e.is_unsupported() => unsupported.push(format!("{rel}: {e}")),
            Err(e) => panic!("{rel}: {e}"),
        }
    }
    println!(
        "{} scripts, {events} events, {blocks} code blocks",
        files.len()
    );
    for u in &unsupported {
        println!("unsupported: {u}");
    }
    // Every construct in the corpus is supported by the parser.
    assert!(unsupported.is_empty(), "{unsupported:#?}");
    assert_eq!(blocks, 126);
}

#[test]
fn corpus_init_commands_become_settings() {
    let Some(dir) = corpus_dir("corpus_init_commands_become_settings") else {
        return;
    };
    let path = dir.join("tcp/nagle/https_client.pkt");
    let script = parse(&std::fs::read_to_string(&path).expect("readable"));
    let s = init_settings(&script, &path);
    assert_eq!(s.sysctls["net.ipv4.tcp_timestamps"], "0");
    assert_eq!(s.sysctls["net.ipv4.tcp_rmem"], "4096 540000 15728640");
    assert_eq!(s.sysctls["net.ipv4.tcp_wmem"], "4096 262144 4194304");
    assert_eq!(s.sysctls["net.ipv4.tcp_fastopen"], "0x70403");
    assert_eq!(s.sysctls["net.ipv4.tcp_congestion_control"], "cubic");
    assert_eq!(
        s.offloads.get(&("tun0".into(), "tso".into())).copied(),
        Some(false)
    );
    assert_eq!(
        s.offloads.get(&("tun0".into(), "gso".into())).copied(),
        Some(false)
    );
    assert_eq!(s.qdiscs["tun0"], "pfifo");
    assert_eq!(s.restored, vec!["net.ipv4.tcp_timestamps".to_string()]);

    let path = dir.join("linux-selftests/tcp_rcv_wnd_shrink_allowed.pkt");
    let script = parse(&std::fs::read_to_string(&path).expect("readable"));
    let s = init_settings(&script, &path);
    assert_eq!(s.sysctls["net.ipv4.tcp_fastopen"], "0x3");
    assert_eq!(s.sysctls["net.ipv4.tcp_shrink_window"], "1");
    assert_eq!(s.sysctls["net.ipv4.tcp_rmem"], "4096 32768 33554432");

    let path = dir.join("packetdrill/tests/packet-timeout.pkt");
    let script = parse(&std::fs::read_to_string(&path).expect("readable"));
    assert_eq!(
        script.cleanup.as_ref().map(|c| c.steps.clone()),
        Some(vec![ShellStep::RestoreSysctls])
    );
    assert_eq!(
        init_settings(&script, &path).sysctls["net.ipv4.tcp_syn_retries"],
        "1"
    );
}

/// Picks, for each `assert NAME OP literal` chain, a value of NAME that
/// satisfies it; returns `None` when a block is not of that shape.
/// Each value comes with the direction (+1 or -1) in which moving it far
/// breaks the assert.
fn satisfying_snapshot(
    program: &integration_tests::packetdrill::python::Program,
) -> BTreeMap<String, (i128, i128)> {
    let consts = Env::with_constants();
    let lit = |e: &PyExpr| -> Option<i128> {
        match e {
            PyExpr::Int(v) => Some(*v),
            PyExpr::Name(n) => match consts.get(n) {
                Some(Value::Int(v)) => Some(*v),
                _ => None,
            },
            _ => None,
        }
    };
    let mut snap = BTreeMap::new();
    for s in &program.stmts {
        let StmtKind::Assert { test, .. } = &s.kind else {
            continue;
        };
        let PyExpr::Compare(first, rest) = test else {
            panic!("assert without comparison: {}", s.text);
        };
        let mut operands = vec![first.as_ref()];
        operands.extend(rest.iter().map(|(_, e)| e));
        let (mut lo, mut hi) = (i128::MIN, i128::MAX);
        let mut name = None;
        for (i, (op, _)) in rest.iter().enumerate() {
            let (l, r) = (operands[i], operands[i + 1]);
            let (var_left, bound) = match (l, r) {
                (PyExpr::Name(n), b) if lit(b).is_some() && consts.get(n).is_none() => {
                    name = Some(n.clone());
                    (true, lit(b).unwrap_or(0))
                }
                (b, PyExpr::Name(n)) if lit(b).is_some() && consts.get(n).is_none() => {
                    name = Some(n.clone());
                    (false, lit(b).unwrap_or(0))
                }
                _ => panic!("unexpected comparison shape: {}", s.text),
            };
            // Normalise to NAME op bound.
            let op = if var_left {
                *op
            } else {
                match op {
                    CmpOp::Lt => CmpOp::Gt,
                    CmpOp::Le => CmpOp::Ge,
                    CmpOp::Gt => CmpOp::Lt,
                    CmpOp::Ge => CmpOp::Le,
                    o => *o,
                }
            };
            match op {
                CmpOp::Eq => (lo, hi) = (bound, bound),
                CmpOp::Le => hi = hi.min(bound),
                CmpOp::Lt => hi = hi.min(bound - 1),
                CmpOp::Ge => lo = lo.max(bound),
                CmpOp::Gt => lo = lo.max(bound + 1),
                _ => panic!("unexpected operator in {}", s.text),
            }
        }
        let name = name.unwrap_or_else(|| panic!("no variable in {}", s.text));
        let (v, dir) = if lo == i128::MIN {
            (hi, 1)
        } else if hi == i128::MAX {
            (lo, -1)
        } else {
            (lo, 1)
        };
        snap.insert(name, (v, dir));
    }
    snap
}

#[test]
fn every_corpus_code_block_evaluates() {
    let Some(dir) = corpus_dir("every_corpus_code_block_evaluates") else {
        return;
    };
    let mut files = Vec::new();
    pkt_files(&dir, &mut files);
    let mut checked = 0;
    for f in &files {
        let script = parse(&std::fs::read_to_string(f).expect("readable"));
        for e in &script.events {
            let Action::Code(block) = &e.action else {
                continue;
            };
            let where_ = format!("{}:{}", f.display(), e.line);
            let solved = satisfying_snapshot(&block.program);
            assert!(!solved.is_empty(), "{where_}: no asserts");
            let snap: BTreeMap<String, i128> =
                solved.iter().map(|(k, (v, _))| (k.clone(), *v)).collect();
            // With the satisfying snapshot every assert holds.
            let mut env = Env::with_constants();
            env.bind_snapshot(&snap);
            env.run(&block.program)
                .unwrap_or_else(|err| panic!("{where_}: {err} with {snap:?}"));
            // Moving any one value far off fails exactly that assert, and the
            // message is the value (every corpus assert's message shows it).
            for (name, (v, dir)) in &solved {
                let off = v + dir * 1_000_003;
                let mut bad = snap.clone();
                bad.insert(name.clone(), off);
                let mut env = Env::with_constants();
                env.bind_snapshot(&bad);
                match env.run(&block.program) {
                    Err(PyError::AssertionFailed { expr, message, .. }) => {
                        assert!(expr.contains(name.as_str()), "{where_}: {expr}");
                        let m = message.unwrap_or_default();
                        assert!(m.contains(&off.to_string()), "{where_}: {m}");
                    }
                    other => panic!("{where_}: {name} off by 1000003 gave {other:?}"),
                }
            }
            // A missing snapshot value is a NameError, not a pass.
            let mut env = Env::with_constants();
            let err = env.run(&block.program).expect_err(&where_);
            assert!(err.to_string().starts_with("NameError"), "{where_}: {err}");
            checked += 1;
        }
    }
    assert_eq!(checked, 126);
}

#[test]
fn time_forms() {
    let s = parse(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +.1...0.200 connect(3, ..., ...) = 0\n\
         +.21~+.215 > P. 1:41(40) ack 1\n\
         * > . 1:1(0) ack 1\n\
         1.5 close(3) = 0\n\
         2.0~2.5 > F. 1:1(0) ack 1\n",
    );
    let rel = |usecs| TimePoint {
        base: TimeBase::Relative,
        usecs,
    };
    let abs = |usecs| TimePoint {
        base: TimeBase::Absolute,
        usecs,
    };
    let times: Vec<EventTime> = s.events.iter().map(|e| e.time).collect();
    assert_eq!(
        times,
        vec![
            EventTime::At(abs(0)),
            EventTime::Blocking {
                start: rel(100_000),
                end_usecs: 200_000
            },
            EventTime::Window {
                start: rel(210_000),
                end: rel(215_000)
            },
            EventTime::Any,
            EventTime::At(abs(1_500_000)),
            EventTime::Window {
                start: abs(2_000_000),
                end: abs(2_500_000)
            },
        ]
    );
    assert_eq!(s.events[1].time.to_string(), "+0.100...0.200");
    assert_eq!(
        parse_err("0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n1 close(3) = 0\n0.5 close(4) = 0")
            .line,
        3
    );
    assert!(parse_err("+1 close(3) = 0").to_string().contains("time 0"));
    assert!(
        parse_err("0 close(3) = 0\n* < . 1:1(0) ack 1 win 5")
            .to_string()
            .contains("outbound")
    );
    assert!(
        parse_err("0 close(3) = 0\n+0...1 > . 1:1(0) ack 1")
            .to_string()
            .contains("block")
    );
}

#[test]
fn packet_lines() {
    let s = parse(
        "0 < S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>\n\
         +0 > S. 0:0(0) ack 1 <...>\n\
         +0 < . 1:1(0) ack 1001 win 257 <sack 2001:3001 4001:5001,nop,nop>\n\
         +0 > . 1:1(0) ack 1 <nop,nop,TS val 100 ecr 700>\n\
         +0 < - 0:0(0) win 0\n\
         +0 > [ect0] SEW 0:0(0) win 65535\n\
         +0 < (tos 0x2, ttl 32) FP. 1:101(100) ack 1 win 257 urg 3\n\
         +0 > 4.  1:1(0) ack 1 <ECN e0b 1 ceb 0 e1b 0,nop>\n\
         +0 < udp (100)\n\
         +0 < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]\n\
         +0 < 8080>9090 R 5:5(0) win 0\n",
    );
    let pk = |i: usize| match &s.events[i].action {
        Action::Packet(p) => p.clone(),
        other => panic!("{other:?}"),
    };
    let tcp = |i: usize| match pk(i).body {
        PacketBody::Tcp(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(pk(0).direction, Direction::Inbound);
    assert_eq!(tcp(0).win, Some(32792));
    assert_eq!(
        tcp(0).options,
        TcpOptionsSpec::List(vec![
            TcpOptionSpec::Mss(1000),
            TcpOptionSpec::SackPermitted,
            TcpOptionSpec::Nop,
            TcpOptionSpec::Nop,
            TcpOptionSpec::Nop,
            TcpOptionSpec::Wscale(7)
        ])
    );
    assert_eq!(tcp(1).options, TcpOptionsSpec::Any);
    assert_eq!(
        tcp(2).options,
        TcpOptionsSpec::List(vec![
            TcpOptionSpec::Sack(vec![(2001, 3001), (4001, 5001)]),
            TcpOptionSpec::Nop,
            TcpOptionSpec::Nop
        ])
    );
    assert!(tcp(4).flags.is_empty());
    assert_eq!(pk(5).ip.ecn, Some(EcnSpec::Ect0));
    assert_eq!(
        (pk(6).ip.tos, pk(6).ip.ttl, tcp(6).urg),
        (Some(2), Some(32), Some(3))
    );
    assert_eq!(tcp(7).ace, Some(4));
    assert_eq!(pk(8).body, PacketBody::Udp { len: 100 });
    let PacketBody::Icmp(icmp) = pk(9).body else {
        panic!()
    };
    assert_eq!(
        (icmp.kind.as_str(), icmp.code.as_deref(), icmp.mtu),
        ("unreachable", Some("frag_needed"), Some(1200))
    );
    assert_eq!(
        icmp.echoed,
        Some(IcmpEchoed::Tcp {
            start_seq: 1,
            end_seq: 1461,
            len: 1460
        })
    );
    assert_eq!(pk(10).ports, Some((8080, 9090)));

    // Round trip: every packet line prints back as an equivalent line.
    let printed: Vec<String> = (0..s.events.len()).map(|i| pk(i).to_string()).collect();
    assert_eq!(
        printed[0],
        "< S 0:0(0) win 32792 <mss 1000,sackOK,nop,nop,nop,wscale 7>"
    );
    assert_eq!(printed[3], "> . 1:1(0) ack 1 <nop,nop,TS val 100 ecr 700>");
    assert_eq!(
        printed[6],
        "< [tos 0x2,ttl 32] FP. 1:101(100) ack 1 win 257 urg 3"
    );
    let mut text = String::new();
    for p in &printed {
        text.push_str("+0 ");
        text.push_str(p);
        text.push('\n');
    }
    let again = parse(&text.replacen("+0", "0", 1));
    for (a, b) in s.events.iter().zip(&again.events) {
        assert_eq!(a.action, b.action);
    }
}

#[test]
fn packet_errors() {
    let e = parse_err("0 < S 0:10(0) win 1");
    assert!(e.to_string().contains("end must be start + len"), "{e}");
    let e = parse_err("0 < S 0:0(0)");
    assert!(e.to_string().contains("win"), "{e}");
    let e = parse_err("0 < S 0:0(0) win 1 <...>");
    assert!(e.to_string().contains("outbound"), "{e}");
    let e = parse_err("0 > S 0:0(0) <mss 1460,bogus 3>");
    assert_eq!(
        e.kind,
        ParseErrorKind::Unsupported("TCP option `bogus`".into())
    );
    let e = parse_err("0 > Q 0:0(0)");
    assert!(e.to_string().contains("unknown TCP flag `Q`"), "{e}");
    let e = parse_err("0 > ipv4 1.2.3.4 > 5.6.7.8: S 0:0(0)");
    assert!(e.is_unsupported(), "{e}");
}

#[test]
fn syscall_lines() {
    let s = parse(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)\n\
         +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
         +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n\
         +0 getsockopt(3, SOL_SOCKET, SO_SNDBUF, [20000], [4]) = 0\n\
         +0 sendmsg(4, {msg_name(...)=...,\n\
                        msg_iov(3)=[{..., 100}, {..., 200}, {..., 195}],\n\
                        msg_flags=0}, MSG_MORE) = 495\n\
         +0 connect(5, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr(\"192.0.2.1\")}, 16) = 0\n\
         +0 setsockopt(4, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0}, 8) = 0\n\
         +0 read(4, ..., 100) = -1 ECONNRESET (Connection Reset by Peer)\n\
         +0 poll([{fd=4, events=POLLIN, revents=POLLIN}], 1, 0) = 1\n\
         +0 getsockopt(4, SOL_TCP, TCP_INFO, {tcpi_state=TCP_ESTABLISHED, tcpi_snd_cwnd=10}, [104]) = 0\n",
    );
    let call = |i: usize| match &s.events[i].action {
        Action::Syscall(c) => c.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(call(0).args[0], Expr::Ellipsis);
    assert_eq!(call(1).result.value, 2);
    assert_eq!(call(1).result.note.as_deref(), Some("flags O_RDWR"));
    assert_eq!(
        call(2).args[2],
        Expr::Or(vec![
            Expr::Symbol("O_RDWR".into()),
            Expr::Symbol("O_NONBLOCK".into())
        ])
    );
    let c = call(3);
    assert_eq!(
        (c.result.value, c.result.errno.as_deref()),
        (-1, Some("EINPROGRESS"))
    );
    assert_eq!(
        c.result.errno_text.as_deref(),
        Some("Operation now in progress")
    );
    assert_eq!(call(4).args[3].as_int(), Some(20000));
    assert_eq!(call(4).args[4].as_int(), Some(4));
    let msg = &call(5).args[1];
    let iov = msg.field("msg_iov").expect("msg_iov");
    assert_eq!(iov.index.as_deref(), Some(&Expr::Int(3)));
    let Expr::Array(iovs) = &iov.value else {
        panic!()
    };
    assert_eq!(iovs.len(), 3);
    assert_eq!(
        iovs[2],
        Expr::Struct(vec![
            integration_tests::packetdrill::StructField {
                name: None,
                index: None,
                value: Expr::Ellipsis
            },
            integration_tests::packetdrill::StructField {
                name: None,
                index: None,
                value: Expr::Int(195)
            },
        ])
    );
    assert_eq!(
        msg.field("msg_flags").map(|f| f.value.clone()),
        Some(Expr::Int(0))
    );
    assert_eq!(
        msg.field("msg_name").and_then(|f| f.index.as_deref()),
        Some(&Expr::Ellipsis)
    );
    assert_eq!(s.events[5].line, 6);
    let addr = &call(6).args[1];
    assert_eq!(
        addr.field("sin_addr").map(|f| f.value.clone()),
        Some(Expr::Call {
            name: "inet_addr".into(),
            args: vec![Expr::Str("192.0.2.1".into())]
        })
    );
    assert_eq!(
        call(7).args[3].field("linger").map(|f| f.value.clone()),
        Some(Expr::Int(0))
    );
    assert_eq!(call(8).result.errno.as_deref(), Some("ECONNRESET"));
    assert_eq!(
        call(10).args[3]
            .field("tcpi_snd_cwnd")
            .map(|f| f.value.clone()),
        Some(Expr::Int(10))
    );
    assert!(
        parse_err("0 frobnicate(3) = 0")
            .to_string()
            .contains("unknown system call")
    );
    assert!(
        parse_err("0 close(3) = 0 oops")
            .to_string()
            .contains("errno")
    );
}

#[test]
fn options_init_cleanup_and_defines() {
    let s = parse(
        "--tolerance_usecs=7000\n--tcp_ts_tick_usecs=1000\n--define=CODE=host_unreachable\n\
         `../common/defaults.sh\nsysctl -q net.ipv4.tcp_tso_win_divisor=100`\n\
         0 `nstat -n`\n\
         +0 < icmp unreachable CODE\n\
         +0 %{ assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd }%\n\
         +0 `nstat | grep TcpExtBeyondWindow | grep -q \" 3 \"`\n\
         `/tmp/sysctl_restore_${PPID}.sh`\n",
    );
    let c = Config::from_script_options(&s.options).expect("options are valid");
    assert_eq!((c.tolerance_usecs, c.tcp_ts_tick_usecs), (7000, Some(1000)));
    assert_eq!(c.defines["CODE"], "host_unreachable");
    let init = s.init.as_ref().expect("init");
    assert_eq!(init.line, 4);
    assert_eq!(init.steps.len(), 2);
    assert!(
        matches!(&s.events[0].action, Action::Shell(c) if c.steps == vec![ShellStep::NstatReset])
    );
    let Action::Packet(p) = &s.events[1].action else {
        panic!()
    };
    let PacketBody::Icmp(i) = &p.body else {
        panic!()
    };
    assert_eq!(i.code.as_deref(), Some("host_unreachable"));
    assert!(matches!(&s.events[2].action, Action::Code(b) if b.program.stmts.len() == 1));
    assert_eq!(s.cleanup.as_ref().map(|c| c.line), Some(10));

    // Unsupported: an unknown shell command, a compound Python statement, an unknown option.
    let e = parse_err("0 `rm -rf /`");
    assert_eq!(
        e.kind,
        ParseErrorKind::Unsupported("shell command `rm -rf /`".into())
    );
    let e = parse_err("0 %{\nif tcpi_state:\n  pass\n}%");
    assert!(e.is_unsupported() && e.line == 2, "{e}");
    let o = parse("--so_filename=x.so\n0 close(3) = 0");
    assert!(Config::from_script_options(&o.options).is_err());
    // Syntax: options after the start, stray shell in the middle, bad Python.
    assert!(
        parse_err("0 close(3) = 0\n--mss=1000")
            .to_string()
            .contains("top")
    );
    assert!(
        parse_err("0 close(3) = 0\n`nstat -n`\n+0 close(4) = 0")
            .to_string()
            .contains("init")
    );
    let e = parse_err("0 %{ assert (1 == }%");
    assert!(matches!(e.kind, ParseErrorKind::Syntax(_)), "{e}");
}

/// The project's own self-test scripts in `tests/packetdrill/tests/`.
fn own_scripts() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packetdrill/tests");
    let mut files = Vec::new();
    pkt_files(&dir, &mut files);
    files
        .into_iter()
        .map(|f| {
            let name = f
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&f).expect("readable"))
        })
        .collect()
}

#[test]
fn own_self_test_scripts_parse_and_declare_their_outcome() {
    let scripts = own_scripts();
    let mut passes = 0;
    let mut fails = 0;
    for (name, src) in &scripts {
        let script = parse(src);
        let expect = src
            .lines()
            .find_map(|l| l.strip_prefix("// Expect: "))
            .unwrap_or_else(|| panic!("{name}: no `// Expect:` line"));
        if expect == "PASS" {
            passes += 1;
            continue;
        }
        fails += 1;
        let line: u32 = expect
            .strip_prefix("FAIL line ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: bad Expect line `{expect}`"));
        assert!(
            script.events.iter().any(|e| e.line == line),
            "{name}: no event on line {line}"
        );
    }
    assert_eq!(
        (passes, fails),
        (1, 3),
        "one script must pass, three must fail"
    );
}

#[test]
fn wrong_ack_fixture_message_matches_the_matcher() {
    use integration_tests::packetdrill::{
        ActualPacket, ExpectedPacket, IpSpec, Tolerance, match_outbound, schedule,
    };
    let (_, src) = own_scripts()
        .into_iter()
        .find(|(n, _)| n == "wrong-ack.pkt")
        .expect("wrong-ack.pkt exists");
    let script = parse(&src);
    let event = script
        .events
        .iter()
        .find(|e| e.line == 18)
        .expect("line 18");
    let Action::Packet(p) = &event.action else {
        panic!("line 18 is a packet")
    };
    let PacketBody::Tcp(tcp) = &p.body else {
        panic!("TCP")
    };
    // Every earlier event is at +0 except the handshake ACK at +.1.
    let when = schedule(event.time, 100_000);
    let tol = Tolerance::from_config(&Config::default());
    let e = ExpectedPacket {
        line: event.line,
        tcp: tcp.clone(),
        ip: IpSpec::default(),
        when,
        tolerance: tol.allowed(100_000, 100_000),
        ts_tick_usecs: None,
        ts_tolerance: 4000,
    };
    let got = ActualPacket {
        time: 100_000,
        tos: 0,
        ttl: 64,
        ip_csum_ok: true,
        flags: wire::TcpFlags::ACK,
        reserved: 0,
        seq: 1,
        ack: 1001,
        win: 502,
        urg: 0,
        options_len: 0,
        options: vec![],
        payload_len: 0,
        payload_zero: true,
    };
    let documented: String = src
        .lines()
        .skip_while(|l| !l.starts_with("// Failure: "))
        .take(2)
        .map(|l| {
            l.trim_start_matches("// Failure: ")
                .trim_start_matches("//")
                .trim()
        })
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        match_outbound(&e, &got).unwrap_err().to_string(),
        documented
    );
}
