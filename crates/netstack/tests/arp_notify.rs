//! `arp_notify`: with `net.ipv4.conf.all.arp_notify=1` a host announces its
//! address with a gratuitous ARP request when its device comes up
//! (`inetdev_event(NETDEV_UP)` → `inetdev_send_gratuitous_arp()`); with
//! Linux's default 0 it sends none.

use std::path::PathBuf;

use netcore::Duration;
use netstack::{Host, Network, NicConfig};
use nic_hw::LinkConfig;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netstack-{}-arpn-{name}.pcap", std::process::id()))
}

/// ARP requests whose sender and target address are both 198.18.0.1
/// (announcements of h1's address) in a pcap file.
fn announcements(pcap: &[u8]) -> usize {
    let mut n = 0;
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let caplen =
            u32::from_le_bytes([pcap[off + 8], pcap[off + 9], pcap[off + 10], pcap[off + 11]])
                as usize;
        let frame = &pcap[off + 16..(off + 16 + caplen).min(pcap.len())];
        off += 16 + caplen;
        if frame.len() < 42 || frame[12..14] != [0x08, 0x06] {
            continue;
        }
        let arp = &frame[14..];
        let op = u16::from_be_bytes([arp[6], arp[7]]);
        let (spa, tpa) = (&arp[14..18], &arp[24..28]);
        if op == 1 && spa == [198, 18, 0, 1] && tpa == [198, 18, 0, 1] && frame[..6] == [0xff; 6] {
            n += 1;
        }
    }
    n
}

fn run(arp_notify: &str, name: &str) -> usize {
    let mut net = Network::new(7);
    let (a, b) = net.wire("w0", LinkConfig::default()).unwrap();
    // h2 first, so its capture sees what h1 sends when h1's device comes up.
    net.add_host(
        Host::builder()
            .name("h2")
            .nic(NicConfig::new().phy(b))
            .addr("198.18.0.2/24"),
    )
    .unwrap();
    let path = tmp(name);
    let cap = net.host("h2").unwrap().capture("eth0", &path).unwrap();
    net.add_host(
        Host::builder()
            .name("h1")
            .sysctl("net.ipv4.conf.all.arp_notify", arp_notify)
            .nic(NicConfig::new().phy(a))
            .addr("198.18.0.1/24"),
    )
    .unwrap();
    net.run_for(Duration::from_millis(10)).unwrap();
    cap.flush().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    announcements(&bytes)
}

#[test]
fn device_up_announces_the_address_only_with_arp_notify() {
    assert_eq!(
        run("1", "on"),
        1,
        "arp_notify=1: one announcement of 198.18.0.1"
    );
    assert_eq!(run("0", "off"), 0, "arp_notify=0 (Linux's default): none");
}
