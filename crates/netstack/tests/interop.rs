//! netstack against the Linux kernel's own stack, through a TAP device.
//!
//! Each test runs in a thread that moves into a private network namespace
//! (`unshare(CLONE_NEWNET)`): the TAP, the kernel-side address, the
//! nftables rules and every tool it starts (`ping`, `curl`, `socat`,
//! `python3 -m http.server`, `ss`) live there, and the namespace goes away
//! with the thread and its children, even when the test fails. Every
//! command runs under `timeout`, and every read of our host has a timeout.
//!
//! Each test captures our host's `eth0` and checks the capture with
//! `tshark`: no malformed packet, no bad checksum, no expert error.
//!
//! Needs root and `curl`, `socat`, `nft`, `tshark`, `python3`, `ss`,
//! `ping`, `sha256sum`, `timeout`; skips with the reason otherwise, and
//! fails instead under `CI=true` or `NETSTACK_FORBID_SKIP=1`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use netcore::TcpMib;
use netstack::{HttpUrl, Inetd, TapHost, TapHostConfig, http_get, udp_exchange, write_pattern};
use nic_hw::unshare_net_namespace;

/// The kernel's address on the TAP.
const KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Our host's address.
const US: &str = "198.18.0.2";
/// The size of each download (100 MiB).
const DOWNLOAD: u64 = 100 * 1024 * 1024;
/// The longest any one download may take.
const DOWNLOAD_LIMIT_S: u64 = 240;

const TOOLS: [&str; 9] = [
    "curl",
    "socat",
    "nft",
    "tshark",
    "python3",
    "ss",
    "ping",
    "sha256sum",
    "timeout",
];

/// Skips (returns true) without root or a tool; panics instead under CI.
fn skip(test: &str) -> bool {
    if netcore::testutil::skip_unless_root(test) {
        return true;
    }
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return false;
    }
    let msg = format!("SKIP {test}: missing tools: {}", missing.join(", "));
    let forbid = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("NETSTACK_FORBID_SKIP").is_ok_and(|v| v == "1");
    assert!(
        !forbid,
        "{msg} (CI=true or NETSTACK_FORBID_SKIP=1 forbids skipping)"
    );
    println!("{msg}");
    true
}

/// Runs `f` in a thread inside a new network namespace, re-raising its
/// panic.
fn in_netns(f: impl FnOnce() + Send + 'static) {
    let t = std::thread::spawn(move || {
        unshare_net_namespace().expect("unshare(CLONE_NEWNET)");
        f();
    });
    if let Err(p) = t.join() {
        std::panic::resume_unwind(p);
    }
}

/// Runs a command under `timeout SECS`.
fn run(secs: u64, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(secs.to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
fn ok(secs: u64, args: &[&str]) -> String {
    let o = run(secs, args);
    assert!(
        o.status.success(),
        "{args:?}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A child process in its own process group, killed with the whole group
/// (`socat ... fork` leaves children) when the test ends, passes or fails.
struct Kid(Child);

impl Kid {
    fn spawn(cmd: &mut Command) -> Kid {
        Kid(cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}")))
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// A scratch directory removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let d =
            std::env::temp_dir().join(format!("netstack-interop-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("interop: keeping {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Attaches our host to `nstap0` (capturing to `pcap`) and gives the
/// kernel side its address.
fn attach(pcap: &Path) -> TapHost {
    let mut cfg = TapHostConfig::new("nstap0", &format!("{US}/24"));
    cfg.pcap = Some(pcap.to_owned());
    let th = TapHost::attach(&cfg).expect("attach to nstap0");
    ok(10, &["ip", "link", "set", "lo", "up"]);
    ok(10, &["ip", "addr", "add", "198.18.0.1/24", "dev", "nstap0"]);
    th
}

/// The SHA-256 of `len` bytes of the `/bytes/N` pattern.
fn pattern_sha256(len: u64) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let w = std::thread::spawn(move || write_pattern(&mut stdin, len));
    let mut out = String::new();
    c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    w.join().unwrap().unwrap();
    assert!(c.wait().unwrap().success());
    out.split_whitespace().next().unwrap().to_owned()
}

fn file_sha256(p: &Path) -> String {
    let out = ok(120, &["sha256sum", p.to_str().unwrap()]);
    out.split_whitespace().next().unwrap().to_owned()
}

/// Problems tshark finds in a capture: malformed packets, bad IP, TCP or
/// UDP checksums, expert-info errors. One line each (frame number and
/// message).
fn tshark_problems(pcap: &Path) -> Vec<String> {
    let o = run(
        300,
        &[
            "tshark",
            "-n",
            "-r",
            pcap.to_str().unwrap(),
            // No reassembly of a 100 MB HTTP body: frames are checked one
            // by one (and it takes seconds instead of minutes).
            "-o",
            "tcp.desegment_tcp_streams:FALSE",
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "_ws.malformed || _ws.expert.severity == \"Error\" || ip.checksum.status == \"Bad\" \
             || tcp.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" \
             || icmp.checksum.status == \"Bad\"",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.col.Protocol",
            "-e",
            "_ws.expert.message",
        ],
    );
    assert!(
        o.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Flushes the capture and asserts tshark finds nothing wrong in it.
fn assert_clean_capture(pcap: &Path) {
    let p = tshark_problems(pcap);
    assert!(
        p.is_empty(),
        "tshark found {} problems in {}:\n{}",
        p.len(),
        pcap.display(),
        p.join("\n")
    );
}

/// Runs tshark over `pcap` with display filter `filter` and prints
/// `fields` (tab-separated, one line per packet); no reassembly.
fn tshark_fields(pcap: &Path, filter: &str, fields: &[&str]) -> String {
    let mut args = vec![
        "tshark",
        "-n",
        "-r",
        pcap.to_str().unwrap(),
        "-o",
        "tcp.desegment_tcp_streams:FALSE",
        "-Y",
        filter,
        "-T",
        "fields",
    ];
    for f in fields {
        args.extend(["-e", f]);
    }
    ok(300, &args)
}

/// The TCP option kinds of the SYNs (and SYN-ACKs) `src` sent, one
/// comma-separated list per segment, as tshark decodes them.
fn syn_option_kinds(pcap: &Path, src: &str) -> Vec<String> {
    let filter = format!("tcp.flags.syn == 1 && ip.src == {src}");
    tshark_fields(pcap, &filter, &["tcp.option_kind"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The option words `ss -ti` prints for the one connection in `out`
/// before `wscale:` (`ts`, `sack`, `ecn`, the congestion control), and
/// the `wscale:` and `mss:` values.
fn ss_options(out: &str) -> (Vec<String>, String, String) {
    let line = out
        .lines()
        .find(|l| l.contains("wscale:"))
        .unwrap_or_else(|| panic!("no connection in `ss -ti`:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let flags = words
        .iter()
        .take_while(|w| !w.starts_with("wscale:"))
        .map(|w| (*w).to_owned())
        .collect();
    let get = |k: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(k))
            .unwrap_or_default()
            .to_owned()
    };
    (flags, get("wscale:"), get("mss:"))
}

/// Stops the services and the host; returns the capture's path after a
/// flush.
fn stop(th: TapHost, inetd: Option<Inetd>) {
    if let Some(i) = inetd {
        i.stop().unwrap();
    }
    th.stop().unwrap();
}

#[test]
fn tshark_check_flags_a_bad_checksum() {
    if skip("interop::tshark_check_flags_a_bad_checksum") {
        return;
    }
    // A capture of one Ethernet/IPv4/UDP frame with a wrong UDP checksum:
    // the check must find it, or a clean result would prove nothing.
    let s = Scratch::new("tshark-self");
    let pcap = s.path("bad.pcap");
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&65_535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let mut ip = vec![
        0x45, 0, 0, 33, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
    ];
    let c = wire::ip_fast_csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&[
        0x30, 0x39, 0x00, 0x07, 0, 13, 0xde, 0xad, b'h', b'e', b'l', b'l', b'o',
    ]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    f.extend_from_slice(&frame);
    std::fs::write(&pcap, f).unwrap();
    let p = tshark_problems(&pcap);
    assert_eq!(p.len(), 1, "{p:?}");
}

#[test]
fn kernel_pings_us_and_we_ping_the_kernel() {
    if skip("interop::kernel_pings_us_and_we_ping_the_kernel") {
        return;
    }
    in_netns(|| {
        let s = Scratch::new("ping");
        let pcap = s.path("ping.pcap");
        let th = attach(&pcap);
        let out = ok(20, &["ping", "-c", "3", "-i", "0.2", "-W", "2", US]);
        assert!(out.contains("3 received"), "{out}");
        let r = netstack::ping(
            th.host(),
            KERNEL,
            3,
            56,
            Duration::from_millis(200),
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(r.received(), 3, "{r}");
        assert!(
            r.replies.iter().all(|p| p.from == KERNEL && p.ttl == 64),
            "{r}"
        );
        let m = th.host().mibs.snapshot();
        // InType8 (echo requests from the kernel), InType0 (its replies).
        assert_eq!(m.icmpmsg(netcore::IcmpMsgDir::In, 8), 3);
        assert_eq!(m.icmpmsg(netcore::IcmpMsgDir::In, 0), 3);
        stop(th, None);
        assert_clean_capture(&pcap);
    });
}

#[test]
fn udp_and_tcp_services_answer_the_kernel_and_we_reach_the_kernels_udp_echo() {
    if skip("interop::udp_and_tcp_services") {
        return;
    }
    in_netns(|| {
        let s = Scratch::new("udp");
        let pcap = s.path("udp.pcap");
        let th = attach(&pcap);
        let inetd = Inetd::start(th.host()).unwrap();
        // Kernel -> us: UDP echo, discard (no answer), chargen.
        let o = Command::new("timeout")
            .args(["10", "socat", "-t", "2", "-", &format!("UDP:{US}:7")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        o.stdin
            .as_ref()
            .unwrap()
            .write_all(b"hello from the kernel\n")
            .unwrap();
        let o = o.wait_with_output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "hello from the kernel\n"
        );
        let o = ok(
            10,
            &["sh", "-c", &format!("echo x | socat -t 1 - UDP:{US}:19")],
        );
        assert_eq!(o.len(), 74, "one chargen line: {o:?}");
        assert_eq!(o.as_bytes(), &netstack::chargen_line(0));
        // Kernel -> us: TCP echo and discard.
        let o = ok(
            10,
            &[
                "sh",
                "-c",
                &format!("printf 'tcp echo' | socat -t 2 - TCP:{US}:7"),
            ],
        );
        assert_eq!(o, "tcp echo");
        let o = ok(
            10,
            &[
                "sh",
                "-c",
                &format!("head -c 100000 /dev/zero | socat -t 2 - TCP:{US}:9"),
            ],
        );
        assert_eq!(o, "");
        let o = ok(
            10,
            &["sh", "-c", &format!("socat -u TCP:{US}:19 - | head -c 740")],
        );
        let want: Vec<u8> = (0..10).flat_map(netstack::chargen_line).collect();
        assert_eq!(o.as_bytes(), &want[..]);
        // HTTP statuses.
        let codes = ok(
            20,
            &[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} ",
                &format!("http://{US}/"),
                &format!("http://{US}/nothing"),
                &format!("http://{US}/bytes/x"),
            ],
        );
        assert_eq!(codes, "200 404 400 ");
        let o = ok(
            10,
            &[
                "sh",
                "-c",
                &format!("printf 'NOT HTTP\\r\\n\\r\\n' | socat -t 2 - TCP:{US}:80"),
            ],
        );
        assert!(o.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{o}");
        let page = ok(10, &["curl", "-s", &format!("http://{US}/")]);
        assert!(page.contains("Tcp: RtoAlgorithm"), "{page}");
        // Us -> kernel: the kernel's UDP echo (socat) answers our datagrams.
        let _echo = Kid::spawn(
            Command::new("socat").args(["UDP4-LISTEN:7007,bind=198.18.0.1,fork", "PIPE"]),
        );
        std::thread::sleep(Duration::from_millis(300));
        let msgs: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("datagram {i}").into_bytes())
            .collect();
        let replies = udp_exchange(
            th.host(),
            SocketAddrV4::new(KERNEL, 7007),
            &msgs,
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(replies, msgs);
        let sum = inetd.summary();
        assert_eq!(sum.echo.datagrams, 1);
        assert_eq!(sum.chargen.datagrams, 1);
        assert_eq!(sum.echo.connections, 1);
        assert_eq!(sum.discard.bytes_in, 100_000);
        assert_eq!((sum.http_404, sum.http_400), (1, 2));
        stop(th, Some(inetd));
        assert_clean_capture(&pcap);
    });
}

/// curl downloads `DOWNLOAD` bytes then 1000 more over the same
/// connection; returns (hash of the first body, curl's stats line).
fn curl_download(s: &Scratch) -> (String, String) {
    let body = s.path("curl.bin");
    let stats = ok(
        DOWNLOAD_LIMIT_S,
        &[
            "curl",
            "-sS",
            "--max-time",
            &DOWNLOAD_LIMIT_S.to_string(),
            "-o",
            body.to_str().unwrap(),
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_download} %{num_connects}\n",
            &format!("http://{US}/bytes/{DOWNLOAD}"),
            &format!("http://{US}/bytes/1000"),
        ],
    );
    let h = file_sha256(&body);
    let _ = std::fs::remove_file(&body);
    (h, stats)
}

fn curl_downloads_100_mb(loss: bool) {
    let name = if loss { "curl-loss" } else { "curl" };
    in_netns(move || {
        let s = Scratch::new(name);
        let pcap = s.path("curl.pcap");
        let th = attach(&pcap);
        if loss {
            add_loss();
        }
        let inetd = Inetd::start(th.host()).unwrap();
        let t = Instant::now();
        let (hash, stats) = curl_download(&s);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{name}: {DOWNLOAD} bytes in {secs:.1} s ({:.1} Mbit/s)",
            DOWNLOAD as f64 * 8.0 / secs / 1e6
        );
        // Two transfers, one connection: the second reused it.
        assert_eq!(stats, format!("200 {DOWNLOAD} 1\n200 1000 0\n"));
        assert_eq!(hash, pattern_sha256(DOWNLOAD));
        let sum = inetd.summary();
        assert_eq!(sum.http.connections, 1, "{sum}");
        assert_eq!(sum.http_2xx, 2, "{sum}");
        let retrans = th.host().mibs.get(TcpMib::RetransSegs);
        if loss {
            let (din, dout) = loss_drops();
            println!("{name}: nftables dropped {din} in, {dout} out; we retransmitted {retrans}");
            assert!(din > 0 && dout > 0, "the loss rules dropped nothing");
            assert!(retrans > 0, "2 % loss must cost retransmissions");
        }
        stop(th, Some(inetd));
        assert_clean_capture(&pcap);
    });
}

#[test]
fn curl_downloads_100_mb_from_our_responder_over_one_keep_alive_connection() {
    if skip("interop::curl_downloads_100_mb") {
        return;
    }
    curl_downloads_100_mb(false);
}

/// The packets the loss rules dropped (input, output).
fn loss_drops() -> (u64, u64) {
    let out = ok(10, &["nft", "list", "table", "inet", "loss"]);
    let mut n = out.lines().filter_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let i = w.iter().position(|x| *x == "packets")?;
        w.get(i + 1)?.parse::<u64>().ok()
    });
    (n.next().unwrap_or(0), n.next().unwrap_or(0))
}

/// Drops 2 % of packets at random each way on the kernel side.
fn add_loss() {
    for cmd in [
        "add table inet loss",
        "add chain inet loss in { type filter hook input priority 0 ; }",
        "add chain inet loss out { type filter hook output priority 0 ; }",
        "add rule inet loss in iifname nstap0 numgen random mod 100 < 2 counter drop",
        "add rule inet loss out oifname nstap0 numgen random mod 100 < 2 counter drop",
    ] {
        let args: Vec<&str> = std::iter::once("nft").chain(cmd.split(' ')).collect();
        ok(10, &args);
    }
}

#[test]
fn curl_downloads_100_mb_under_2_percent_loss() {
    if skip("interop::curl_downloads_100_mb_under_2_percent_loss") {
        return;
    }
    curl_downloads_100_mb(true);
}

/// Serves `DOWNLOAD` bytes from `python3 -m http.server` on the kernel
/// side and downloads them with our client.
fn get_from_python(loss: bool) {
    let name = if loss { "get-loss" } else { "get" };
    in_netns(move || {
        let s = Scratch::new(name);
        let pcap = s.path("get.pcap");
        let dir = s.path("www");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file.bin");
        {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
            // Any content: the pattern shifted by one byte.
            write_pattern(&mut w, DOWNLOAD + 1).unwrap();
        }
        let want = file_sha256(&file);
        let th = attach(&pcap);
        if loss {
            add_loss();
        }
        let _server = Kid::spawn(
            Command::new("python3")
                .args([
                    "-m",
                    "http.server",
                    "8000",
                    "--bind",
                    "198.18.0.1",
                    "--directory",
                ])
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        // Wait until the server listens (a kernel socket of this namespace).
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect("198.18.0.1:8000").is_err() {
            assert!(
                Instant::now() < deadline,
                "python3 -m http.server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let url: HttpUrl = "http://198.18.0.1:8000/file.bin".parse().unwrap();
        let mut sha = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut sink = std::io::BufWriter::with_capacity(1 << 20, sha.stdin.take().unwrap());
        let r = http_get(th.host(), &url, &mut sink, Duration::from_secs(30)).unwrap();
        drop(sink);
        let mut out = String::new();
        sha.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        sha.wait().unwrap();
        println!(
            "{name}: {} bytes in {:.1} s ({:.1} Mbit/s)",
            r.bytes,
            r.elapsed.as_secs_f64(),
            r.gbps() * 1000.0
        );
        if loss {
            let (din, dout) = loss_drops();
            println!("{name}: nftables dropped {din} in, {dout} out");
            assert!(din > 0 && dout > 0, "the loss rules dropped nothing");
        }
        assert_eq!(r.status, 200);
        assert_eq!(r.bytes, DOWNLOAD + 1);
        assert_eq!(out.split_whitespace().next(), Some(want.as_str()));
        // The kernel's TSO super-frames arrived whole (one read each), and
        // our ACKs went out.
        let st = th.offload_stats();
        println!("{name}: {st:?}");
        assert!(
            st.rx_gso_frames > 0,
            "no GSO super-frame from the kernel: {st:?}"
        );
        assert!(
            st.rx_gso_segments > 2 * st.rx_gso_frames,
            "super-frames of more than two segments: {st:?}"
        );
        stop(th, None);
        assert_clean_capture(&pcap);
        if !loss {
            // Our SYN carries its options in the kernel's order: MSS,
            // SACK-permitted, timestamps, NOP, window scale (as curl's SYN
            // through the kernel in the other tests).
            let ours = syn_option_kinds(&pcap, US);
            assert_eq!(ours, ["2,4,8,1,3"], "our SYN's option kinds");
            let kernel = syn_option_kinds(&pcap, "198.18.0.1");
            assert_eq!(kernel, ["2,4,8,1,3"], "the kernel's SYN-ACK's option kinds");
        }
    });
}

#[test]
fn netstack_get_downloads_100_mb_from_python_http_server() {
    if skip("interop::netstack_get_downloads_100_mb") {
        return;
    }
    get_from_python(false);
}

#[test]
fn netstack_get_downloads_100_mb_under_2_percent_loss() {
    if skip("interop::netstack_get_downloads_100_mb_under_2_percent_loss") {
        return;
    }
    get_from_python(true);
}

#[test]
fn the_kernel_sees_our_negotiated_options_and_our_syn_ack_order_matches_its_syn() {
    if skip("interop::the_kernel_sees_our_negotiated_options") {
        return;
    }
    in_netns(|| {
        let s = Scratch::new("ss");
        let pcap = s.path("ss.pcap");
        let th = attach(&pcap);
        let inetd = Inetd::start(th.host()).unwrap();
        // A kernel connection to our discard service, held open.
        let mut conn = Kid::spawn(
            Command::new("socat")
                .args(["-u", "STDIN", &format!("TCP:{US}:9")])
                .stdin(Stdio::piped()),
        );
        conn.0
            .stdin
            .as_mut()
            .unwrap()
            .write_all(b"some bytes\n")
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let info = loop {
            let out = ok(10, &["ss", "-tin", "state", "established", "dst", US]);
            if out.contains("wscale:") || Instant::now() > deadline {
                break out;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // The same view of a connection between two kernel sockets of this
        // namespace: what the kernel negotiates with itself.
        let kl = std::net::TcpListener::bind("198.18.0.1:0").unwrap();
        let kaddr = kl.local_addr().unwrap();
        let _kc = std::net::TcpStream::connect(kaddr).unwrap();
        let _ks = kl.accept().unwrap();
        let kinfo = ok(
            10,
            &[
                "ss",
                "-tin",
                "state",
                "established",
                "dst",
                &kaddr.to_string(),
            ],
        );
        drop(conn);
        stop(th, Some(inetd));
        let (flags, wscale, mss) = ss_options(&info);
        let (kflags, _, _) = ss_options(&kinfo);
        println!("ss -ti toward us: {flags:?} wscale:{wscale} mss:{mss}");
        assert_eq!(
            flags, kflags,
            "options as between two kernel sockets:\n{info}\n{kinfo}"
        );
        assert_eq!(
            mss, "1448",
            "MSS 1460 less the 12 bytes of timestamps:\n{info}"
        );
        // The window scale the kernel uses toward us is what our SYN-ACK
        // announced (and ours toward it what its SYN did).
        let shifts = tshark_fields(
            &pcap,
            "tcp.flags.syn == 1",
            &["ip.src", "tcp.options.wscale.shift"],
        );
        let shift = |src: &str| {
            shifts
                .lines()
                .find_map(|l| l.strip_prefix(src).map(|r| r.trim().to_owned()))
                .unwrap_or_default()
        };
        assert_eq!(
            wscale,
            format!("{},{}", shift(US), shift("198.18.0.1")),
            "{info}\n{shifts}"
        );
        // Our SYN-ACK's options come in the order of the kernel's SYN.
        let theirs = syn_option_kinds(&pcap, "198.18.0.1");
        let ours = syn_option_kinds(&pcap, US);
        assert_eq!(theirs.len(), 1);
        assert_eq!(
            ours, theirs,
            "SYN-ACK options in the order of the kernel's SYN"
        );
        assert_clean_capture(&pcap);
    });
}

#[test]
fn serve_command_stops_cleanly_on_sigint_with_a_summary() {
    if skip("interop::serve_command_stops_cleanly_on_sigint") {
        return;
    }
    in_netns(|| {
        // The README's set-up: a persistent TAP with the kernel's address,
        // then `netstack serve` attaches to it.
        ok(10, &["ip", "link", "set", "lo", "up"]);
        ok(
            10,
            &[
                "ip", "tuntap", "add", "dev", "nstap1", "mode", "tap", "vnet_hdr",
            ],
        );
        ok(10, &["ip", "addr", "add", "198.18.0.1/24", "dev", "nstap1"]);
        ok(10, &["ip", "link", "set", "nstap1", "up"]);
        let mut serve = Kid::spawn(
            Command::new(env!("CARGO_BIN_EXE_netstack"))
                .args([
                    "serve",
                    "--tap",
                    "nstap1",
                    "--addr",
                    "198.18.0.2/24",
                    "--gateway",
                    "198.18.0.1",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let body = loop {
            let o = run(
                5,
                &["curl", "-s", "-m", "2", &format!("http://{US}/bytes/5000")],
            );
            if o.status.success() || Instant::now() > deadline {
                break o.stdout;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(body.len(), 5000);
        assert!(
            body.iter()
                .enumerate()
                .all(|(i, &b)| b == netstack::http_pattern(i as u64))
        );
        // `netstack get`, `ping` and `udp` from a second host on a second TAP.
        ok(
            10,
            &[
                "ip", "tuntap", "add", "dev", "nstap2", "mode", "tap", "vnet_hdr",
            ],
        );
        ok(10, &["ip", "addr", "add", "198.19.0.1/24", "dev", "nstap2"]);
        ok(10, &["ip", "link", "set", "nstap2", "up"]);
        ok(10, &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
        let bin = env!("CARGO_BIN_EXE_netstack");
        let attach2 = [
            "--tap",
            "nstap2",
            "--addr",
            "198.19.0.2/24",
            "--gateway",
            "198.19.0.1",
        ];
        let mut args = vec![
            bin,
            "get",
            "http://198.18.0.2/bytes/300000",
            "--timeout",
            "10",
        ];
        args.extend(attach2);
        let o = run(30, &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.stdout.len(), 300_000);
        assert!(
            o.stdout
                .iter()
                .enumerate()
                .all(|(i, &b)| b == netstack::http_pattern(i as u64))
        );
        assert!(String::from_utf8_lossy(&o.stderr).contains("Gbit/s"));
        let mut args = vec![bin, "ping", "-c", "2", "-i", "0.1", "198.18.0.2"];
        args.extend(attach2);
        let o = ok(30, &args);
        assert!(o.contains("2 packets transmitted, 2 received"), "{o}");
        let mut args = vec![bin, "udp", "198.18.0.2:7"];
        args.extend(attach2);
        let o = ok(
            30,
            &[
                "sh",
                "-c",
                &format!("printf 'one\\ntwo\\n' | {}", args.join(" ")),
            ],
        );
        assert_eq!(o, "one\ntwo\n");
        // Ctrl-C: a clean stop and a summary.
        ok(5, &["kill", "-INT", &serve.0.id().to_string()]);
        let t = Instant::now();
        let status = loop {
            if let Some(s) = serve.0.try_wait().unwrap() {
                break s;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "serve did not stop on SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut out = String::new();
        serve
            .0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(status.success(), "{status}: {out}");
        assert!(out.contains("stopped by signal 2"), "{out}");
        assert!(out.contains("http requests"), "{out}");
        assert!(out.contains("eth0: RX packets"), "{out}");
    });
}

/// How many packets of `pcap` match `filter`.
fn count_packets(pcap: &Path, filter: &str) -> usize {
    tshark_fields(pcap, filter, &["frame.number"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// ECN with the kernel as the peer: the kernel asks for it
/// (`net.ipv4.tcp_ecn=1` in its namespace) and downloads 20 MiB from our
/// responder while nftables marks CE on one in a hundred of our ECT(0)
/// packets as they enter the kernel. Our SYN-ACK accepts (ECE, no CWR),
/// our new data leaves ECT(0), the kernel echoes the marks with ECE, and
/// we answer with CWR and a reduced window (`TCPDeliveredCE`); the body
/// arrives whole.
#[test]
fn the_kernel_negotiates_ecn_with_us_and_we_answer_its_echo_with_cwr() {
    if skip("interop::the_kernel_negotiates_ecn_with_us") {
        return;
    }
    in_netns(|| {
        const LEN: u64 = 20 * 1024 * 1024;
        let s = Scratch::new("ecn");
        let pcap = s.path("ecn.pcap");
        let th = attach(&pcap);
        // This thread's namespace: its /proc/sys/net is the one curl sees.
        std::fs::write("/proc/sys/net/ipv4/tcp_ecn", "1").unwrap();
        for cmd in [
            "add table inet cemark",
            "add chain inet cemark in { type filter hook input priority 0 ; }",
            "add rule inet cemark in iifname nstap0 ip ecn ect0 numgen inc mod 100 == 0 counter ip ecn set ce",
        ] {
            let args: Vec<&str> = std::iter::once("nft").chain(cmd.split(' ')).collect();
            ok(10, &args);
        }
        let inetd = Inetd::start(th.host()).unwrap();
        let body = s.path("ecn.bin");
        let stats = ok(
            60,
            &[
                "curl",
                "-sS",
                "--max-time",
                "60",
                "-o",
                body.to_str().unwrap(),
                "-w",
                "%{http_code} %{size_download}",
                &format!("http://{US}/bytes/{LEN}"),
            ],
        );
        assert_eq!(stats, format!("200 {LEN}"));
        assert_eq!(file_sha256(&body), pattern_sha256(LEN));
        let marked = loss_drops_in("cemark");
        let mibs = &th.host().mibs;
        let delivered_ce = mibs.get(netcore::LinuxMib::TcpDeliveredCe);
        let retrans = mibs.get(TcpMib::RetransSegs);
        stop(th, Some(inetd));
        println!(
            "ecn: nftables marked {marked}; TCPDeliveredCE {delivered_ce}; retransmitted {retrans}"
        );
        assert!(marked > 10, "nftables marked {marked}");
        assert!(delivered_ce > 0, "no ACK echoing CE reached us");
        let synack = format!("ip.src == {US} && tcp.flags.syn == 1 && tcp.flags.ack == 1");
        assert_eq!(
            count_packets(&pcap, &format!("{synack} && tcp.flags.ece == 1")),
            1
        );
        assert_eq!(
            count_packets(&pcap, &format!("{synack} && tcp.flags.cwr == 1")),
            0
        );
        let kernel_syn = "ip.src == 198.18.0.1 && tcp.flags.syn == 1 && tcp.flags.ack == 0";
        assert_eq!(
            count_packets(
                &pcap,
                &format!("{kernel_syn} && tcp.flags.ece == 1 && tcp.flags.cwr == 1")
            ),
            1
        );
        let data = format!("ip.src == {US} && tcp.len > 0");
        let ect0 = count_packets(&pcap, &format!("{data} && ip.dsfield.ecn == 2"));
        assert!(ect0 > 1000, "{ect0} ECT(0) data packets");
        assert!(count_packets(&pcap, "ip.src == 198.18.0.1 && tcp.flags.ece == 1") > 0);
        let cwr = count_packets(&pcap, &format!("{data} && tcp.flags.cwr == 1"));
        assert!(cwr > 0, "we never sent CWR");
        assert_clean_capture(&pcap);
    });
}

/// The packets the first counter of nftables table `inet NAME` counted.
fn loss_drops_in(name: &str) -> u64 {
    let out = ok(10, &["nft", "list", "table", "inet", name]);
    out.lines()
        .find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let i = w.iter().position(|x| *x == "packets")?;
            w.get(i + 1)?.parse::<u64>().ok()
        })
        .unwrap_or(0)
}
