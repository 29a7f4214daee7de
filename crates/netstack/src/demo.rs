//! The demo: two hosts on a 10 Gbit/s wire, ARP, ping, counters, a pcap;
//! and the walk of one echo request and its reply.
//!
//! What `netstack demo` and `netstack walk` run; tests run the same code.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netcore::{Duration, IcmpMib, IpMib};
use nic_hw::LinkConfig;

use crate::error::NetstackError;
use crate::host::{Host, NicConfig};
use crate::network::Network;
use crate::ping::{PingReport, PingSocket};
use crate::report::Report;
use crate::walk::{Walk, record_walk};

/// h1's address in the demo.
pub const DEMO_H1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// h2's address in the demo.
pub const DEMO_H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// The demo network: `h1` and `h2`, two CPUs and two queue pairs each, on
/// one 10 Gbit/s wire with 1 µs of delay.
pub fn demo_network(seed: u64) -> Result<Network, NetstackError> {
    let mut net = Network::new(seed);
    let (a, b) = net.wire(
        "w0",
        LinkConfig::default()
            .rate_bps(10_000_000_000)
            .delay(Duration::from_micros(1)),
    )?;
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(a))
            .addr("198.18.0.1/24"),
    )?;
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(2)
            .nic(NicConfig::new().queues(2).phy(b))
            .addr("198.18.0.2/24"),
    )?;
    Ok(net)
}

/// Schedules `count` echo requests from `from` to `to`, `interval` apart,
/// the first one now; returns the socket that collects the replies.
pub fn schedule_ping(
    net: &mut Network,
    from: &str,
    to: Ipv4Addr,
    count: u32,
    interval: Duration,
    size: usize,
) -> Result<Arc<PingSocket>, NetstackError> {
    let h = Arc::clone(net.host(from)?.shared());
    let sock = h.ping_socket(to, size);
    for i in 0..count {
        let (s, h) = (Arc::clone(&sock), Arc::clone(&h));
        let seq = (i + 1) as u16;
        net.after(interval.saturating_mul(i), move |_| {
            h.run_on(0, move |ctx| {
                let _ = s.send(ctx, seq);
            });
        });
    }
    Ok(sock)
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoOutcome {
    /// h1's ping of h2.
    pub ping: PingReport,
    /// The text `netstack demo` prints.
    pub text: String,
    /// Where the capture of h1's eth0 went.
    pub pcap: PathBuf,
    /// Virtual time the run covered.
    pub virtual_time: Duration,
}

/// Where the demo writes its pcap by default: `target/netstack-demo.pcap`
/// under the current directory if `target/` exists, else the temp dir.
pub fn default_pcap_path() -> PathBuf {
    let target = Path::new("target");
    if target.is_dir() {
        target.join("netstack-demo.pcap")
    } else {
        std::env::temp_dir().join("netstack-demo.pcap")
    }
}

/// Runs the demo: builds the network, captures h1's eth0 to `pcap`, pings
/// h2 five times (the first one resolves ARP), and reports.
pub fn run_demo(seed: u64, pcap: &Path) -> Result<DemoOutcome, NetstackError> {
    let mut net = demo_network(seed)?;
    let cap = net.host("h1")?.capture("eth0", pcap)?;
    let sock = schedule_ping(&mut net, "h1", DEMO_H2, 5, Duration::from_secs(1), 56)?;
    net.run_for(Duration::from_secs(5))?;
    // Hook: the TCP bulk transfer and the UDP exchange of issue 6 join the
    // demo here once the `tcp` and `udp` crates provide sockets.
    let transports = demo_transports(&mut net);
    cap.flush()?;
    let ping = sock.report();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "netstack demo: h1 (198.18.0.1) and h2 (198.18.0.2), 2 CPUs and 2 queue pairs each, \
         one 10 Gbit/s wire (1 us delay), seed {seed}\n"
    );
    let _ = writeln!(text, "h1$ ping -c 5 198.18.0.2");
    text.push_str(&ping.to_string());
    let _ = writeln!(text, "\nh1$ ip neigh");
    text.push_str(&net.host("h1")?.report(&Report::IpNeigh)?);
    for t in &transports {
        text.push_str(t);
    }
    let _ = writeln!(text, "\nKey counters:");
    let _ = writeln!(
        text,
        "  {:<4} {:>10} {:>10} {:>12} {:>12} {:>9} {:>9} {:>16}",
        "host",
        "rx_packets",
        "tx_packets",
        "Ip InRecv",
        "Ip OutReq",
        "Icmp In",
        "Icmp Out",
        "softnet processed"
    );
    for h in net.hosts() {
        let s = h.shared();
        let st = s.nics()[0].netdev.dev_get_stats();
        let m = s.mibs.snapshot();
        let processed: Vec<String> = (0..h.nr_cpus())
            .map(|c| {
                s.softnet
                    .softnet_stat_cpu(c)
                    .map_or(0, |x| x.processed)
                    .to_string()
            })
            .collect();
        let _ = writeln!(
            text,
            "  {:<4} {:>10} {:>10} {:>12} {:>12} {:>9} {:>9} {:>16}",
            h.name(),
            st.rx_packets,
            st.tx_packets,
            m.get(IpMib::InReceives),
            m.get(IpMib::OutRequests),
            m.get(IcmpMib::InMsgs),
            m.get(IcmpMib::OutMsgs),
            format!("cpu {}", processed.join("/"))
        );
    }
    let w = net.wire_stats("w0");
    if let Some((ab, ba)) = w {
        let _ = writeln!(
            text,
            "  wire w0: {} frames h1->h2, {} frames h2->h1, {} lost",
            ab.delivered,
            ba.delivered,
            ab.dropped_loss + ba.dropped_loss
        );
    }
    let _ = writeln!(
        text,
        "\nVirtual time covered: {:.3} s (idle periods cost nothing).",
        net.now().as_nanos() as f64 / 1e9
    );
    let _ = writeln!(
        text,
        "Capture of h1 eth0: {} ({} packets; open with tcpdump -r or wireshark).",
        pcap.display(),
        cap.captured()
    );
    Ok(DemoOutcome {
        ping,
        text,
        pcap: pcap.to_owned(),
        virtual_time: Duration::from_nanos(net.now().as_nanos()),
    })
}

/// The transports' part of the demo: a UDP echo exchange (TCP joins when
/// its sockets exist).
fn demo_transports(net: &mut Network) -> Vec<String> {
    vec![
        crate::echo::demo_udp_echo(net),
        crate::tcp::demo_tcp_bulk(net),
    ]
}

/// The walks `netstack walk` prints: one echo request from h1 to h2 and
/// its reply, recorded after a first ping has resolved ARP.
#[derive(Debug)]
pub struct DemoWalk {
    /// The echo request, from `ping_v4_sendmsg` on h1 to `icmp_rcv` on h2
    /// (with h1's transmit completion).
    pub request: Walk,
    /// The echo reply, from h2's transmit inside `icmp_rcv` to `icmp_rcv`
    /// on h1.
    pub reply: Walk,
}

/// Runs the demo network and records the walk of one ping each way.
pub fn run_walk(seed: u64) -> Result<DemoWalk, NetstackError> {
    let mut net = demo_network(seed)?;
    let warm = schedule_ping(&mut net, "h1", DEMO_H2, 1, Duration::ZERO, 56)?;
    net.run_for(Duration::from_millis(10))?;
    if warm.report().received() != 1 {
        return Err(NetstackError::Runtime(
            "the first ping got no reply".to_owned(),
        ));
    }
    let clock = Arc::clone(net.clock());
    let sock = schedule_ping(&mut net, "h1", DEMO_H2, 1, Duration::ZERO, 56)?;
    let (r, walk) = record_walk(clock, || net.run_for(Duration::from_millis(10)));
    r?;
    if sock.report().received() != 1 {
        return Err(NetstackError::Runtime(
            "the walked ping got no reply".to_owned(),
        ));
    }
    // The request ends where h2's ICMP takes it; the reply starts there.
    let (request, reply) = walk.split_after(|s| s.host == "h2" && s.name == "icmp_rcv");
    Ok(DemoWalk { request, reply })
}
