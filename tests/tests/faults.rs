//! Link and device faults in the simulation: a wire cut mid-transfer and
//! restored (the transfer resumes after RTO backoff), a cut longer than
//! `tcp_retries2` allows (`ETIMEDOUT`), and a receive ring that fills
//! (drops counted by the NIC, nothing else lost).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use netcore::{Duration, Instant, IpMib, LinuxMib, TcpMib, UdpMib};
use netstack::{Host, Network, NicConfig, PhyEnd, bulk_pattern};
use nic_hw::{PhyError, PhyPort};
use socket::{TcpListener, TcpStream};

const ETIMEDOUT: i32 = 110;
const EHOSTUNREACH: i32 = 113;
const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// A PHY decorator that cuts the cable: while `cut` is set, frames sent
/// vanish and frames arriving are lost. With `ip_only`, only IPv4 frames
/// are lost and ARP still passes (a black hole further along the path,
/// where the next hop still answers).
struct CutPhy {
    inner: PhyEnd,
    cut: Arc<AtomicBool>,
    ip_only: bool,
}

impl CutPhy {
    fn drops(&self, frame: &[u8]) -> bool {
        self.cut.load(Ordering::Relaxed)
            && (!self.ip_only || frame.get(12..14) == Some(&[0x08, 0x00]))
    }
}

impl PhyPort for CutPhy {
    fn transmit(&mut self, now: Instant, frame: Vec<u8>) -> Result<(), PhyError> {
        if self.drops(&frame) {
            return Ok(());
        }
        self.inner.transmit(now, frame)
    }

    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        loop {
            match self.inner.receive(now)? {
                Some(f) if self.drops(&f) => {}
                other => return Ok(other),
            }
        }
    }

    fn next_event(&self) -> Option<Instant> {
        self.inner.next_event()
    }
}

/// Two hosts on a wire whose h1 end can be cut; h2 listens on 5001.
struct Pair {
    // The listener goes before the network that holds its host.
    listener: TcpListener<netstack::HostSockets>,
    net: Network,
    cut: Arc<AtomicBool>,
}

fn pair(seed: u64, ip_only: bool) -> Pair {
    let mut net = Network::new(seed);
    let (a, b) = net.wire("w0", lan_link()).unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let a: PhyEnd = Box::new(CutPhy {
        inner: a,
        cut: Arc::clone(&cut),
        ip_only,
    });
    net.add_host(
        Host::builder()
            .name("h1")
            .cpus(1)
            .nic(NicConfig::new().phy(a))
            .addr("198.18.0.1/24"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .cpus(1)
            .nic(NicConfig::new().phy(b))
            .addr("198.18.0.2/24"),
    )
    .unwrap();
    let h2 = Arc::clone(net.host("h2").unwrap().shared());
    let listener = net
        .app("h2", || {
            TcpListener::bind(
                h2.socket_layer(),
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5001),
            )
        })
        .unwrap()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    Pair { listener, net, cut }
}

/// Connects h1 to h2:5001; returns (client, server).
fn connect(p: &mut Pair) -> (Stream, Stream) {
    let h1 = Arc::clone(p.net.host("h1").unwrap().shared());
    let c = p
        .net
        .app("h1", || {
            TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, 5001))
        })
        .unwrap()
        .unwrap();
    for _ in 0..1000 {
        p.net.run_for(Duration::from_millis(1)).unwrap();
        let l = &p.listener;
        if let Ok((s, _)) = p.net.app("h2", || l.accept()).unwrap() {
            s.set_nonblocking(true).unwrap();
            return (c, s);
        }
    }
    panic!("no connection");
}

/// Moves data h1 → h2 for one step; returns whether h1's write failed
/// with an error other than EAGAIN (the error).
fn transfer_step(
    p: &mut Pair,
    c: &mut Stream,
    s: &mut Stream,
    data: &[u8],
    sent: &mut usize,
    got: &mut Vec<u8>,
    step: Duration,
) -> Option<std::io::Error> {
    let mut failed = None;
    if *sent < data.len() {
        match p.net.app("h1", || c.write(&data[*sent..])).unwrap() {
            Ok(n) => *sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => failed = Some(e),
        }
    }
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = p.net.app("h2", || s.read(&mut buf)).unwrap() {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    p.net.run_for(step).unwrap();
    failed
}

#[test]
fn wire_cut_for_30s_mid_transfer_resumes_after_rto_backoff() {
    let mut p = pair(21, false);
    let (mut c, mut s) = connect(&mut p);
    let data: Vec<u8> = (0..3_000_000u64).map(bulk_pattern).collect();
    let (mut sent, mut got) = (0, Vec::new());
    let step = Duration::from_millis(2);
    while got.len() < 1_000_000 {
        assert!(transfer_step(&mut p, &mut c, &mut s, &data, &mut sent, &mut got, step).is_none());
    }
    let h1 = Arc::clone(p.net.host("h1").unwrap().shared());
    let retrans = h1.mibs.get(TcpMib::RetransSegs);
    let cut_at = p.net.now();
    p.cut.store(true, Ordering::Relaxed);
    p.net.run_for(Duration::from_secs(30)).unwrap();
    let during = got.len();
    p.cut.store(false, Ordering::Relaxed);
    let restored_at = p.net.now();
    let h2 = Arc::clone(p.net.host("h2").unwrap().shared());
    let h2_in = h2.mibs.get(TcpMib::InSegs);
    let mut resumed_at = None;
    let limit = restored_at + Duration::from_secs(180);
    while got.len() < data.len() {
        assert!(
            p.net.now() < limit,
            "the transfer did not finish ({} of {})",
            got.len(),
            data.len()
        );
        let e = transfer_step(
            &mut p,
            &mut c,
            &mut s,
            &data,
            &mut sent,
            &mut got,
            Duration::from_millis(5),
        );
        assert!(e.is_none(), "the connection failed after the cut: {e:?}");
        // The first segment that reaches h2 after the restore.
        if resumed_at.is_none() && h2.mibs.get(TcpMib::InSegs) > h2_in {
            resumed_at = Some(p.net.now());
        }
    }
    assert!(got == data, "the transfer is not byte-exact after the cut");
    assert!(
        h1.mibs.get(TcpMib::RetransSegs) > retrans,
        "no retransmission during a 30 s cut"
    );
    let resumed = resumed_at.unwrap().saturating_duration_since(restored_at);
    // Exponential backoff: the first retransmission after the cable comes
    // back waits for the backed-off RTO, at most TCP_RTO_MAX (120 s).
    assert!(
        resumed <= Duration::from_secs(120),
        "resumed only {resumed:?} after the restore"
    );
    assert!(during <= 1_100_000, "data crossed a cut wire");
    eprintln!("cut at {cut_at:?}, restored 30 s later, resumed {resumed:?} after the restore");
    drop(p.net.app("h1", || drop(c)));
    drop(p.net.app("h2", || drop(s)));
}

/// Cuts h1's path for longer than `tcp_retries2` allows mid-transfer;
/// returns the error the writer gets. The path then comes back and a new
/// connection works.
fn cut_past_retries2(seed: u64, ip_only: bool) -> Option<i32> {
    let mut p = pair(seed, ip_only);
    let (mut c, mut s) = connect(&mut p);
    let data: Vec<u8> = (0..500_000u64).map(bulk_pattern).collect();
    let (mut sent, mut got) = (0, Vec::new());
    while got.len() < 100_000 {
        transfer_step(
            &mut p,
            &mut c,
            &mut s,
            &data,
            &mut sent,
            &mut got,
            Duration::from_millis(2),
        );
    }
    let h1 = Arc::clone(p.net.host("h1").unwrap().shared());
    let aborts = h1.mibs.get(LinuxMib::TcpAbortOnTimeout);
    p.cut.store(true, Ordering::Relaxed);
    // tcp_retries2 = 15 gives up after about 924.6 s of backoff.
    p.net.run_for(Duration::from_secs(800)).unwrap();
    let early = p.net.app("h1", || c.take_error()).unwrap().unwrap();
    assert!(early.is_none(), "gave up before tcp_retries2: {early:?}");
    p.net.run_for(Duration::from_secs(400)).unwrap();
    let err = p.net.app("h1", || c.take_error()).unwrap().unwrap();
    assert_eq!(h1.mibs.get(LinuxMib::TcpAbortOnTimeout), aborts + 1);
    // The path comes back: a new connection works.
    p.cut.store(false, Ordering::Relaxed);
    let (mut c2, mut s2) = connect(&mut p);
    let (mut sent, mut got) = (0, Vec::new());
    let small = &data[..50_000];
    while got.len() < small.len() {
        transfer_step(
            &mut p,
            &mut c2,
            &mut s2,
            small,
            &mut sent,
            &mut got,
            Duration::from_millis(2),
        );
    }
    assert!(got == small);
    drop(p.net.app("h1", || drop((c, c2))));
    drop(p.net.app("h2", || drop((s, s2))));
    err.and_then(|e| e.raw_os_error())
}

#[test]
fn a_black_hole_longer_than_tcp_retries2_fails_with_etimedout() {
    assert_eq!(cut_past_retries2(22, true), Some(ETIMEDOUT));
}

#[test]
fn a_cable_cut_longer_than_tcp_retries2_fails_with_ehostunreach() {
    // As in Linux: the neighbour of the peer fails during the cut, the
    // local "host unreachable" becomes the socket's soft error, and
    // tcp_write_err() reports it instead of ETIMEDOUT.
    assert_eq!(cut_past_retries2(24, false), Some(EHOSTUNREACH));
}

#[test]
fn a_full_rx_ring_drops_and_counts_and_the_host_keeps_serving() {
    const BURST: u64 = 3_000;
    // A small ring and a long interrupt delay: a line-rate burst overruns it.
    let mut lab = Lab::with_victim_nic(23, &[], |nic| nic.ring(64).rx_usecs(200));
    let v = lab.victim();
    let ip_in = lab.mib(IpMib::InReceives);
    let no_ports = lab.mib(UdpMib::NoPorts);
    let missed = |lab: &Lab| -> u64 {
        lab.net
            .host("victim")
            .unwrap()
            .with_ethtool("eth0", |e| {
                e.get_ethtool_stats()
                    .iter()
                    .filter(|s| s.0 == "rx_missed_errors")
                    .map(|s| s.1)
                    .sum()
            })
            .unwrap()
    };
    let missed0 = missed(&lab);
    let ip = Ip::new(ATTACKER, VICTIM, 17);
    for i in 0..BURST {
        let mut u = vec![0x30, 0x39, 0x7a, 0x69, 0, 16, 0, 0];
        u.extend_from_slice(&i.to_be_bytes());
        lab.attack(ip.frame(&u));
    }
    lab.run(Duration::from_millis(50));
    let dropped = missed(&lab) - missed0;
    let delivered = lab.mib(IpMib::InReceives) - ip_in;
    assert!(
        dropped > 0,
        "a {BURST}-frame burst did not overrun a 64-slot ring"
    );
    // Every frame is accounted for: delivered to IP or counted by the NIC.
    assert_eq!(
        delivered + dropped,
        BURST,
        "delivered {delivered}, dropped {dropped}"
    );
    assert_eq!(lab.mib(UdpMib::NoPorts) - no_ports, delivered);
    // The ring drains and the host serves as before.
    lab.serves_legit_client(100_000);
    let _ = v;
}
