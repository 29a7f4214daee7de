//! The packetdrill executor against the runner's self-test scripts in
//! `tests/packetdrill/tests/`: each script's `// Expect:` line says whether
//! it must PASS or FAIL and on which line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use integration_tests::packetdrill::{
    Config, InitSettings, LINKTYPE_RAW, Outcome, parse_script, read_defaults, run_script,
    run_script_traced, write_pcap,
};

fn self_tests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packetdrill/tests")
}

fn run(path: &Path) -> (String, Outcome) {
    let src = std::fs::read_to_string(path).expect("self-test script is readable");
    let script = parse_script(&src, &BTreeMap::new()).expect("self-test script parses");
    let config = Config::from_script_options(&script.options).expect("options are valid");
    let mut settings = InitSettings::default();
    if let Some(init) = &script.init {
        let dir = path.parent().expect("script has a directory");
        settings
            .apply(&init.steps, &mut |p| read_defaults(dir, p))
            .expect("init command is supported");
    }
    (src, run_script(&script, &config, &settings))
}

/// `// Expect: PASS` or `// Expect: FAIL line N (…)`.
fn expectation(src: &str) -> (bool, Option<u32>) {
    let line = src
        .lines()
        .find_map(|l| l.strip_prefix("// Expect: "))
        .expect("script has an Expect line");
    if line.starts_with("PASS") {
        return (true, None);
    }
    let n = line
        .strip_prefix("FAIL line ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    (false, n)
}

#[test]
fn self_tests_pass_and_fail_as_their_expect_lines_say() {
    let mut entries: Vec<_> = std::fs::read_dir(self_tests())
        .expect("self-test directory exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pkt"))
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 4, "one passing and three failing self-tests");
    let (mut passed, mut failed) = (0, 0);
    for p in &entries {
        let (src, outcome) = run(p);
        let (must_pass, fail_line) = expectation(&src);
        let name = p.display();
        if must_pass {
            assert_eq!(outcome, Outcome::Pass, "{name}");
            passed += 1;
        } else {
            let Outcome::Fail(msg) = &outcome else {
                panic!("{name} must FAIL, got {outcome:?}");
            };
            let line = fail_line.expect("FAIL expectation names a line");
            assert!(msg.starts_with(&format!("line {line}:")), "{name}: {msg}");
            failed += 1;
        }
    }
    assert_eq!((passed, failed), (1, 3));
}

#[test]
fn wrong_syscall_return_names_both_values() {
    let (_, outcome) = run(&self_tests().join("wrong-syscall-return.pkt"));
    let Outcome::Fail(msg) = outcome else {
        panic!("must fail: {outcome:?}");
    };
    assert!(msg.contains("Expected result 999 but got 1000"), "{msg}");
}

#[test]
fn wrong_ack_reports_the_ack_field() {
    let (_, outcome) = run(&self_tests().join("wrong-ack.pkt"));
    let Outcome::Fail(msg) = outcome else {
        panic!("must fail: {outcome:?}");
    };
    assert!(msg.contains("ack 1001") && msg.ends_with("(ack)"), "{msg}");
}

fn inline(src: &str) -> Outcome {
    let script = parse_script(src, &BTreeMap::new()).expect("inline script parses");
    run_script(&script, &Config::default(), &InitSettings::default())
}

#[test]
fn an_unsupported_call_is_a_skip_not_a_pass() {
    let o = inline(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 epoll_create(1) = 4\n",
    );
    let Outcome::Skip(msg) = o else {
        panic!("must skip: {o:?}");
    };
    assert!(
        msg.contains("line 2") && msg.contains("epoll_create"),
        "{msg}"
    );
}

#[test]
fn active_open_with_syn_retransmit_times() {
    // The SYN goes at 0, its retransmission after TCP_TIMEOUT_INIT (1 s);
    // a nonblocking connect returns EINPROGRESS.
    let o = inline(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
         +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n\
         +0 > S 0:0(0) <...>\n\
         +1 > S 0:0(0) <...>\n\
         +0 < S. 0:0(0) ack 1 win 65535 <mss 1460>\n\
         +0 > . 1:1(0) ack 1\n\
         +0 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n",
    );
    assert_eq!(o, Outcome::Pass);
}

#[test]
fn a_call_that_would_block_without_dots_fails() {
    let o = inline(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 bind(3, ..., ...) = 0\n\
         +0 listen(3, 1) = 0\n\
         +0 accept(3, ..., ...) = 4\n",
    );
    let Outcome::Fail(msg) = o else {
        panic!("must fail: {o:?}");
    };
    assert!(
        msg.starts_with("line 4:") && msg.contains("would block"),
        "{msg}"
    );
}

#[test]
fn a_blocking_accept_returns_when_the_handshake_completes() {
    let o = inline(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 bind(3, ..., ...) = 0\n\
         +0 listen(3, 1) = 0\n\
         0...0.200 accept(3, ..., ...) = 4\n\
         0.100 < S 0:0(0) win 65535 <mss 1000>\n\
         +0 > S. 0:0(0) ack 1 <mss 1460>\n\
         0.200 < . 1:1(0) ack 1 win 257\n\
         +0 %{ assert tcpi_state == TCP_ESTABLISHED, tcpi_state }%\n",
    );
    assert_eq!(o, Outcome::Pass);
}

/// A run written as pcap: the global header names raw IPv4, and the
/// records are the run's packets in order with their virtual times — the
/// SYN sent at 0, the SYN-ACK injected at 0.1 s, the ACK answering it, the
/// retransmitted SYN never sent (the handshake finished first).
#[test]
fn a_run_is_written_as_a_pcap_of_its_packets() {
    let script = parse_script(
        "0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n\
         +0 fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK) = 0\n\
         +0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)\n\
         +0 > S 0:0(0) <...>\n\
         +.1 < S. 0:0(0) ack 1 win 65535 <mss 1460>\n\
         +0 > . 1:1(0) ack 1\n",
        &BTreeMap::new(),
    )
    .expect("inline script parses");
    let (outcome, packets) =
        run_script_traced(&script, &Config::default(), &InitSettings::default());
    assert_eq!(outcome, Outcome::Pass);
    let mut pcap = Vec::new();
    write_pcap(&mut pcap, &packets).expect("written to memory");
    let u32_at = |o: usize| u32::from_le_bytes(pcap[o..o + 4].try_into().unwrap());
    assert_eq!(u32_at(0), 0xa1b2_c3d4);
    assert_eq!(u32_at(20), LINKTYPE_RAW);
    // (seconds, microseconds, TCP flags) of each record.
    let mut records = Vec::new();
    let mut o = 24;
    while o < pcap.len() {
        let (secs, usecs, len) = (u32_at(o), u32_at(o + 4), u32_at(o + 8) as usize);
        assert_eq!(u32_at(o + 12) as usize, len, "whole packets are kept");
        let ip = &pcap[o + 16..o + 16 + len];
        assert_eq!(ip[0] >> 4, 4, "records start with the IPv4 header");
        let ihl = usize::from(ip[0] & 0xf) * 4;
        records.push((secs, usecs, ip[ihl + 13]));
        o += 16 + len;
    }
    assert_eq!(o, pcap.len());
    let (syn, ack) = (0x02, 0x10);
    assert_eq!(
        records,
        [(0, 0, syn), (0, 100_000, syn | ack), (0, 100_000, ack)]
    );
}
