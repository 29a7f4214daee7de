//! A TAP device against the real kernel, inside a private network namespace.
//!
//! Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), `/dev/net/tun` and the
//! `ip` tool (iproute2). The test thread moves itself into a new network
//! namespace with `unshare(CLONE_NEWNET)`; the TAP, its address and every
//! frame live there, and the kernel deletes the namespace when the thread
//! ends, so nothing needs cleaning up. `ip` runs as a child of that thread
//! and so acts on its namespace (if it did not, it could not find the TAP).

use std::net::UdpSocket;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nic_hw::{TapDevice, TapOptions, check_fcs, unshare_net_namespace};

const TAP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const TAP_IP: [u8; 4] = [198, 18, 0, 1];
const PEER_IP: [u8; 4] = [198, 18, 0, 2];

/// Returns true (after printing why) when the test cannot run here: not
/// root, or no `/dev/net/tun`. Panics instead when CI forbids skipping
/// (`CI=true` or `NETSTACK_FORBID_SKIP=1`).
fn skip_unless_root(name: &str) -> bool {
    if netcore::testutil::skip_unless_root(name) {
        return true;
    }
    if Path::new("/dev/net/tun").exists() {
        return false;
    }
    let forbid = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("NETSTACK_FORBID_SKIP").is_ok_and(|v| v == "1");
    assert!(
        !forbid,
        "{name}: needs /dev/net/tun, and skipping is forbidden"
    );
    println!("SKIP {name}: needs /dev/net/tun (modprobe tun)");
    true
}

#[track_caller]
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (install iproute2): {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads frames until `want` accepts one or `deadline` passes.
fn read_until(tap: &mut TapDevice, deadline: Instant, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    loop {
        match tap.read_frame() {
            Ok(f) if want(&f) => return f,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no matching frame on the TAP before the deadline"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("reading the TAP: {e}"),
        }
    }
}

fn ethertype(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[12], f[13]])
}

fn in_private_netns(vnet_hdr: bool) {
    unshare_net_namespace().expect("unshare(CLONE_NEWNET)");
    let mut tap = TapDevice::open_with(
        "nstap0",
        TapOptions::new().nonblocking(true).vnet_hdr(vnet_hdr),
    )
    .expect("open TAP");
    assert_eq!(tap.name(), "nstap0");
    assert!(tap.ifindex() > 0);
    assert_eq!(tap.has_vnet_hdr(), vnet_hdr);
    ip(&[
        "link",
        "set",
        "dev",
        "nstap0",
        "address",
        "02:00:00:00:00:01",
    ]);
    ip(&["addr", "add", "198.18.0.1/24", "dev", "nstap0"]);
    ip(&["link", "set", "dev", "nstap0", "up"]);

    // Sending to 198.18.0.2 makes the kernel resolve it: an ARP request
    // leaves through the TAP, and the datagram waits in the neighbour queue.
    let sock = UdpSocket::bind("198.18.0.1:0").expect("bind in the namespace");
    sock.send_to(b"hello", "198.18.0.2:9").expect("send_to");

    let deadline = Instant::now() + Duration::from_secs(5);
    let arp = read_until(&mut tap, deadline, |f| {
        f.len() >= 14 && ethertype(f) == 0x0806
    });
    // 42 bytes of ARP (the kernel does not pad on a TAP) plus our FCS.
    assert_eq!(arp.len(), 42 + 4);
    assert!(check_fcs(&arp), "read_frame appends a valid FCS");
    let mut want = Vec::new();
    want.extend_from_slice(&[0xff; 6]); // broadcast
    want.extend_from_slice(&TAP_MAC);
    want.extend_from_slice(&[0x08, 0x06]); // ETH_P_ARP
    want.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]); // Ethernet/IPv4, request
    want.extend_from_slice(&TAP_MAC); // sender hardware address
    want.extend_from_slice(&TAP_IP); // sender protocol address
    want.extend_from_slice(&[0; 6]); // target hardware address unknown
    want.extend_from_slice(&PEER_IP); // who has 198.18.0.2
    assert_eq!(&arp[..42], &want[..]);

    // Answer it: write an ARP reply (with an FCS, which write_frame strips).
    let mut reply = Vec::new();
    reply.extend_from_slice(&TAP_MAC);
    reply.extend_from_slice(&PEER_MAC);
    reply.extend_from_slice(&[0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02]);
    reply.extend_from_slice(&PEER_MAC);
    reply.extend_from_slice(&PEER_IP);
    reply.extend_from_slice(&TAP_MAC);
    reply.extend_from_slice(&TAP_IP);
    reply.resize(60, 0);
    nic_hw::append_fcs(&mut reply);
    tap.write_frame(&reply).expect("write ARP reply");

    // The kernel learns 02:00:00:00:00:02 and releases the queued datagram.
    let udp = read_until(&mut tap, deadline, |f| {
        f.len() >= 14 && ethertype(f) == 0x0800
    });
    assert!(check_fcs(&udp));
    assert_eq!(&udp[0..6], &PEER_MAC);
    assert_eq!(&udp[6..12], &TAP_MAC);
    let ip_hdr = &udp[14..];
    assert_eq!(ip_hdr[9], 17, "protocol UDP");
    assert_eq!(&ip_hdr[12..16], &TAP_IP);
    assert_eq!(&ip_hdr[16..20], &PEER_IP);
    let ihl = usize::from(ip_hdr[0] & 0x0f) * 4;
    let udp_hdr = &ip_hdr[ihl..];
    assert_eq!(
        u16::from_be_bytes([udp_hdr[2], udp_hdr[3]]),
        9,
        "destination port"
    );
    assert_eq!(
        u16::from_be_bytes([udp_hdr[4], udp_hdr[5]]),
        8 + 5,
        "UDP length"
    );
    assert_eq!(&udp_hdr[8..13], b"hello");
}

fn run_in_thread(vnet_hdr: bool) {
    std::thread::spawn(move || in_private_netns(vnet_hdr))
        .join()
        .expect("the namespace thread failed (its panic message is above)");
}

#[test]
fn kernel_arp_request_and_reply_through_tap() {
    if skip_unless_root("tap_netns") {
        return;
    }
    run_in_thread(false);
}

#[test]
fn same_exchange_with_virtio_net_header() {
    if skip_unless_root("tap_netns_vnet_hdr") {
        return;
    }
    run_in_thread(true);
}

#[test]
fn tap_is_gone_with_its_namespace_thread() {
    if skip_unless_root("tap_netns_cleanup") {
        return;
    }
    // The TAP of a finished namespace thread is not visible in ours.
    run_in_thread(false);
    let out = Command::new("ip")
        .args(["link", "show", "nstap0"])
        .output()
        .expect("run ip");
    assert!(
        !out.status.success(),
        "nstap0 leaked into the test's namespace"
    );
}

/// Set in the environment of the unprivileged re-run of this binary.
const UNPRIV_CHILD: &str = "NIC_HW_TAP_UNPRIVILEGED_CHILD";

#[test]
fn unprivileged_open_says_root_or_cap_net_admin_is_needed() {
    if std::env::var_os(UNPRIV_CHILD).is_some() {
        // Running as nobody without capabilities (see below). Try the
        // namespace first: were we privileged after all, the TAP below would
        // then still stay out of the host's namespace.
        let e = unshare_net_namespace().expect_err("nobody cannot unshare");
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        let e = TapDevice::open("nstapx").expect_err("nobody cannot create a TAP");
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("root or CAP_NET_ADMIN"), "{e}");
        return;
    }
    if skip_unless_root("tap_unprivileged") {
        return;
    }
    // Re-run this one test as uid/gid 65534 with every capability dropped,
    // using util-linux's setpriv.
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(["--inh-caps=-all", "--bounding-set=-all"])
        .arg(exe)
        .args([
            "--exact",
            "unprivileged_open_says_root_or_cap_net_admin_is_needed",
        ])
        .env(UNPRIV_CHILD, "1")
        .output()
        .expect("run setpriv (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "unprivileged run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
