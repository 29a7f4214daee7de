//! Same seed, same packets byte for byte; the thread runtime passes the
//! same ping scenario.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use netcore::{Duration, IcmpMib};
use netstack::{Host, Network, NicConfig, ThreadRuntime};
use nic_hw::LinkConfig;

fn build(net: &mut Network, cfg: &LinkConfig) {
    let (a, b) = net.wire("w0", cfg.clone()).unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(a))
            .addr("198.18.0.1/24"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(b))
            .addr("198.18.0.2/24"),
    )
    .unwrap();
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netstack-{}-{name}.pcap", std::process::id()))
}

/// Ten pings 100 ms apart over a wire with `cfg`; returns the pcap bytes of
/// h1's eth0 and the replies received.
fn run(seed: u64, cfg: &LinkConfig, name: &str) -> (Vec<u8>, usize) {
    let mut net = Network::new(seed);
    build(&mut net, cfg);
    let path = tmp(name);
    let cap = net.host("h1").unwrap().capture("eth0", &path).unwrap();
    let h1 = net.host("h1").unwrap().shared().clone();
    let sock = h1.ping_socket(Ipv4Addr::new(198, 18, 0, 2), 56);
    for seq in 1..=10u16 {
        let (s, h) = (Arc::clone(&sock), Arc::clone(&h1));
        net.after(Duration::from_millis(u64::from(seq) * 100), move |_| {
            h.run_on(0, move |ctx| {
                let _ = s.send(ctx, seq);
            });
        });
    }
    net.run_for(Duration::from_secs(5)).unwrap();
    cap.flush().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    (bytes, sock.report().received())
}

#[test]
fn one_seed_gives_identical_pcaps_and_another_seed_with_loss_differs() {
    let clean = LinkConfig::default().jitter(Duration::from_micros(3));
    let (a, ra) = run(42, &clean, "a");
    let (b, rb) = run(42, &clean, "b");
    assert_eq!((ra, rb), (10, 10));
    assert!(a.len() > 24 + 20 * 98, "{} bytes", a.len());
    assert_eq!(a, b);

    let lossy = LinkConfig::default().loss(0.3);
    let (c, rc) = run(42, &lossy, "c");
    let (d, rd) = run(42, &lossy, "d");
    assert_eq!((c.clone(), rc), (d, rd), "same seed, same losses");
    let (e, re) = run(43, &lossy, "e");
    assert!(rc < 10 && re < 10, "loss 0.3 loses some of 10: {rc} {re}");
    assert_ne!(c, e, "another seed loses other packets");
}

#[test]
fn ping_passes_on_the_thread_runtime() {
    let mut net = Network::realtime(1);
    build(&mut net, &LinkConfig::default());
    let rt = ThreadRuntime::start(net).unwrap();
    let h1 = rt.host("h1").unwrap();
    let sock = h1.ping_socket(Ipv4Addr::new(198, 18, 0, 2), 56);
    for seq in 1..=3u16 {
        let s = Arc::clone(&sock);
        h1.run_on(1, move |ctx| {
            let _ = s.send(ctx, seq);
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while sock.report().received() < usize::from(seq) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    let net = rt.stop().unwrap();
    let rep = sock.report();
    assert_eq!((rep.transmitted, rep.received()), (3, 3), "{rep}");
    for h in ["h1", "h2"] {
        let m = net.host(h).unwrap().shared().mibs.snapshot();
        assert_eq!(
            (m.get(IcmpMib::InMsgs), m.get(IcmpMib::OutMsgs)),
            (3, 3),
            "{h}"
        );
    }
}
