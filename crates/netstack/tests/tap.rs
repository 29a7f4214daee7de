//! A host on the thread runtime attached to a Linux TAP device in a private
//! network namespace: the kernel pings it, and it pings the kernel.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use netstack::{Host, Network, NicConfig, TapPhy, ThreadRuntime};
use nic_hw::{TapDevice, TapOptions, unshare_net_namespace};

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

#[test]
fn a_host_on_a_tap_answers_the_kernels_ping_and_pings_the_kernel() {
    if netcore::testutil::skip_unless_root("tap::a_host_on_a_tap_answers_the_kernels_ping") {
        return;
    }
    // Everything runs in a thread that moves into a new network namespace;
    // the namespace disappears with its last user when the thread ends.
    let t = std::thread::spawn(|| {
        unshare_net_namespace().expect("unshare(CLONE_NEWNET)");
        let tap = TapDevice::open_with("nstap0", TapOptions::new().nonblocking(true)).unwrap();
        for cmd in [
            &["ip", "link", "set", "lo", "up"][..],
            &["ip", "addr", "add", "198.18.0.1/24", "dev", "nstap0"],
            &["ip", "link", "set", "nstap0", "up"],
        ] {
            let o = sh(cmd);
            assert!(
                o.status.success(),
                "{cmd:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let mut net = Network::realtime(9);
        net.add_host(
            Host::builder()
                .name("h1")
                .cpus(2)
                .nic(NicConfig::new().phy(Box::new(TapPhy::new(tap))))
                .addr("198.18.0.2/24"),
        )
        .unwrap();
        let rt = ThreadRuntime::start(net).unwrap();

        // The kernel pings the host.
        let o = sh(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.2"]);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        if !o.status.success() {
            let h = rt.host("h1").unwrap();
            let st = h.nics()[0].netdev.dev_get_stats();
            eprintln!(
                "h1 eth0: rx {} tx {} packets\n{}",
                st.rx_packets,
                st.tx_packets,
                h.mibs.snapshot().proc_net_snmp()
            );
            eprintln!(
                "kernel ip neigh:\n{}",
                String::from_utf8_lossy(&sh(&["ip", "neigh"]).stdout)
            );
            eprintln!(
                "kernel ip -s link:\n{}",
                String::from_utf8_lossy(&sh(&["ip", "-s", "link", "show", "nstap0"]).stdout)
            );
        }
        assert!(
            o.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.contains("3 received"), "{text}");

        // The host pings the kernel.
        let h1 = rt.host("h1").unwrap();
        let sock = h1.ping_socket(Ipv4Addr::new(198, 18, 0, 1), 56);
        for seq in 1..=2u16 {
            let s = Arc::clone(&sock);
            h1.run_on(0, move |ctx| {
                let _ = s.send(ctx, seq);
            });
            let deadline = StdInstant::now() + StdDuration::from_secs(5);
            while sock.report().received() < usize::from(seq) && StdInstant::now() < deadline {
                std::thread::sleep(StdDuration::from_millis(2));
            }
        }
        let net = rt.stop().unwrap();
        let rep = sock.report();
        assert_eq!(rep.received(), 2, "{rep}");
        let m = net.host("h1").unwrap().shared().mibs.snapshot();
        assert_eq!(m.get(netcore::IcmpMib::InMsgs), 3 + 2);
        assert_eq!(m.get(netcore::IcmpMib::OutMsgs), 3 + 2);
    });
    t.join().unwrap();
}
