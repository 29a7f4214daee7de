//! The `netstack` binary: demo, walk, run, and its errors.

use std::process::Command;

fn netstack() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netstack"))
}

#[test]
fn demo_runs_and_exits_zero() {
    let pcap = std::env::temp_dir().join(format!("netstack-cli-{}.pcap", std::process::id()));
    let out = netstack()
        .args(["demo", "--pcap"])
        .arg(&pcap)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("5 packets transmitted, 5 received, 0% packet loss"),
        "{text}"
    );
    assert!(
        text.contains("udp echo: 10 datagrams sent, 10 echoed"),
        "{text}"
    );
    assert!(
        text.contains("h2: Udp InDatagrams 10 OutDatagrams 10 NoPorts 0"),
        "{text}"
    );
    assert!(text.contains(&pcap.display().to_string()), "{text}");
    let bytes = std::fs::read(&pcap).unwrap();
    assert_eq!(&bytes[..4], &0xa1b2_3c4du32.to_le_bytes());
    let _ = std::fs::remove_file(&pcap);
}

#[test]
fn walk_prints_both_directions() {
    let out = netstack().arg("walk").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Echo request h1 -> h2"), "{text}");
    assert!(text.contains("Echo reply h2 -> h1"), "{text}");
    assert!(text.contains("net_rx_action"), "{text}");
    let out = netstack().args(["walk", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["request"]["stages"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
}

#[test]
fn walk_tcp_shows_a_data_segment_and_its_ack() {
    let out = netstack().args(["walk", "--tcp", "100"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("TCP data segment h1 -> h2 (100 bytes"),
        "{text}"
    );
    for stage in ["tcp_sendmsg", "tcp_v4_rcv", "tcp_data_queue", "tcp_recvmsg"] {
        assert!(text.contains(stage), "no {stage} in:\n{text}");
    }
    let out = netstack().args(["walk", "--tcp", "0"]).output().unwrap();
    assert!(
        !out.status.success(),
        "a zero-byte TCP walk must be refused"
    );
}

fn run_file(name: &str, text: &str) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("netstack-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let out = netstack().arg("run").arg(&path).output().unwrap();
    let _ = std::fs::remove_file(&path);
    out
}

const GOOD: &str = r#"
seed = 3

[[link]]
name = "w0"
rate = "1gbit"
delay = "50us"

[[host]]
name = "h1"
cpus = 2
[[host.nic]]
link = "w0"
queues = 2
addr = ["198.18.0.1/24"]

[[host]]
name = "h2"
[[host.nic]]
link = "w0"
addr = ["198.18.0.2/24"]

[scenario]
duration = "3s"
[[scenario.ping]]
from = "h1"
to = "198.18.0.2"
count = 2
[[scenario.report]]
host = "h2"
show = ["ip addr", "netstat -s", "/proc/net/softnet_stat", "tc -s qdisc", "ethtool -S eth0"]
"#;

#[test]
fn run_prints_the_pings_and_reports_asked_for() {
    let out = run_file("good", GOOD);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("2 packets transmitted, 2 received"), "{text}");
    assert!(text.contains("h2$ ip addr"), "{text}");
    assert!(text.contains("inet 198.18.0.2/24"), "{text}");
    assert!(text.contains("h2$ ethtool -S eth0"), "{text}");
}

#[test]
fn bad_files_name_the_line_and_exit_two() {
    let cases = [
        ("syntax", "seed = 1\n[[host]\nname = \"x\"\n", "line 2"),
        (
            "unknown-key",
            "seed = 1\n\n[[host]]\nname = \"h\"\ncpu = 2\n",
            "line 5",
        ),
        (
            "no-link",
            "[[host]]\nname = \"h\"\n[[host.nic]]\nlink = \"nowhere\"\n",
            "line 4: no link named `nowhere`",
        ),
        (
            "bad-rate",
            "[[link]]\nname = \"w\"\nrate = \"fast\"\n",
            "line 3: bad rate `fast`",
        ),
        (
            "bad-report",
            "[[host]]\nname = \"h\"\n[scenario]\n[[scenario.report]]\nhost = \"h\"\nshow = [\"ip link\"]\n",
            "line 6: unknown report `ip link`",
        ),
    ];
    for (name, text, want) in cases {
        let out = run_file(name, text);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn bad_arguments_exit_two_and_help_exists_for_every_subcommand() {
    let out = netstack().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    for sub in ["demo", "walk", "run"] {
        let out = netstack().args([sub, "--help"]).output().unwrap();
        assert!(out.status.success(), "{sub}");
        assert!(!out.stdout.is_empty(), "{sub}");
    }
    let out = netstack()
        .args(["run", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
