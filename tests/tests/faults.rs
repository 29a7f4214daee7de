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
    let data: Vec<u8> = (0..2_000_000u64).map(bulk_pattern).collect();
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
    // Data must be outstanding when the path goes: the send buffer grows
    // with the window (tcp_sndbuf_expand), so top it up first.
    if let Ok(n) = p.net.app("h1", || c.write(&data[sent..])).unwrap() {
        sent += n;
    }
    assert!(
        sent > got.len(),
        "nothing outstanding at the cut ({sent} sent)"
    );
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

/// Sends ping `seq` from h1 to h2 now.
fn ping_once(p: &mut Pair, sock: &netstack::PingSocket, seq: u16) {
    let sent = p
        .net
        .host_mut("h1")
        .unwrap()
        .with_cpu(0, |ctx| sock.send(ctx, seq))
        .unwrap();
    // No route or a failed neighbour is an error the pinger sees, not a
    // panic; either way the request is counted.
    let _ = sent;
}

/// The page pool's buffers out of the pool once the network is idle.
fn pool_inflight(net: &Network, host: &str) -> u64 {
    net.host(host).unwrap().shared().pool.stats().inflight()
}

#[test]
fn a_nic_removed_and_reprobed_mid_transfer_resumes_byte_exact() {
    let mut p = pair(25, false);
    let (mut c, mut s) = connect(&mut p);
    p.net.run_for(Duration::from_millis(10)).unwrap();
    let h2 = Arc::clone(p.net.host("h2").unwrap().shared());
    let old_ifindex = h2.dev("eth0").unwrap().ifindex();
    let rx_ring = p
        .net
        .host("h2")
        .unwrap()
        .with_ethtool("eth0", |e| e.get_ringparam().unwrap().rx_pending)
        .unwrap();
    let inflight0 = pool_inflight(&p.net, "h2");
    let pinger = p.net.host("h1").unwrap().shared().ping_socket(H2, 56);
    let mut seq = 0u16;

    let data: Vec<u8> = (0..1_500_000u64).map(bulk_pattern).collect();
    let (mut sent, mut got) = (0, Vec::new());
    while got.len() < 400_000 {
        assert!(
            transfer_step(
                &mut p,
                &mut c,
                &mut s,
                &data,
                &mut sent,
                &mut got,
                Duration::from_millis(2)
            )
            .is_none()
        );
        if p.net.now().as_nanos() % 20_000_000 < 2_000_000 {
            seq += 1;
            ping_once(&mut p, &pinger, seq);
        }
    }
    let replies_before = pinger.replies().len();
    assert!(replies_before > 0, "no ping answered before the removal");

    // Bad arguments are refused by name.
    let e = p
        .net
        .host_mut("h2")
        .unwrap()
        .pci_stop_and_remove_bus_device("eth9")
        .unwrap_err();
    assert!(e.to_string().contains("eth9"), "{e}");
    let e = p
        .net
        .stall_cpu("h2", 5, Duration::from_millis(1))
        .unwrap_err();
    assert!(e.to_string().contains("cpu"), "{e}");
    // echo 1 > /sys/bus/pci/devices/0000:00:00.0/remove on h2.
    let bdf = p
        .net
        .host_mut("h2")
        .unwrap()
        .pci_stop_and_remove_bus_device("eth0")
        .unwrap();
    assert!(h2.dev("eth0").is_none(), "eth0 still registered");
    assert!(h2.nics().is_empty(), "eth0 still listed");
    assert!(
        h2.bus.lock().device(bdf).is_none(),
        "the device is still on the bus"
    );
    let report = |p: &Pair, r: netstack::Report| p.net.host("h2").unwrap().report(&r).unwrap();
    let ip_addr = report(&p, netstack::Report::IpAddr);
    assert!(
        !ip_addr.contains("eth0"),
        "ip addr still shows eth0:\n{ip_addr}"
    );
    let routes = report(&p, netstack::Report::IpRoute);
    assert!(
        !routes.contains("198.18.0.0/24"),
        "the route through eth0 is left:\n{routes}"
    );
    // igb_remove() gave every posted rx buffer back. What TCP already
    // holds is read first: igb's dynamic moderation settles at
    // IGB_4K_ITR (245 us) in bulk, so one interrupt can hand TCP most of a
    // ring of frames that the reader has not consumed yet, and those
    // pages are the socket's, not the ring's.
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = p.net.app("h2", || s.read(&mut buf)).unwrap() {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        pool_inflight(&p.net, "h2") + u64::from(rx_ring) <= inflight0 + 64,
        "rx buffers not freed: {} in flight, {inflight0} before, ring {rx_ring}",
        pool_inflight(&p.net, "h2")
    );
    let mut again = h2.ipv4.with_netns(|n| n.devices.iter().count());
    assert_eq!(again, 1, "only lo keeps IPv4 state");

    // Two seconds without the NIC: nothing crosses, pings go unanswered.
    // What was already received (socket queue, backlog) is read first.
    let end = p.net.now() + Duration::from_secs(2);
    transfer_step(
        &mut p,
        &mut c,
        &mut s,
        &data,
        &mut sent,
        &mut got,
        Duration::from_millis(10),
    );
    transfer_step(
        &mut p,
        &mut c,
        &mut s,
        &data,
        &mut sent,
        &mut got,
        Duration::from_millis(10),
    );
    let during = got.len();
    let replies_removed = pinger.replies().len();
    while p.net.now() < end {
        let e = transfer_step(
            &mut p,
            &mut c,
            &mut s,
            &data,
            &mut sent,
            &mut got,
            Duration::from_millis(10),
        );
        assert!(
            e.is_none(),
            "the sender failed while the NIC was away: {e:?}"
        );
        if p.net.now().as_nanos() % 200_000_000 < 10_000_000 {
            seq += 1;
            ping_once(&mut p, &pinger, seq);
        }
    }
    assert_eq!(got.len(), during, "data arrived through a removed NIC");
    assert!(
        pinger.replies().len() <= replies_removed + 1,
        "pings answered through a removed NIC"
    );

    // echo 1 > /sys/bus/pci/rescan; ip addr add 198.18.0.2/24 dev eth0.
    let h2m = p.net.host_mut("h2").unwrap();
    let names = h2m.pci_rescan_bus().unwrap();
    assert_eq!(names, ["eth0"]);
    h2m.ip_addr_add("eth0", "198.18.0.2/24").unwrap();
    let new_ifindex = h2.dev("eth0").unwrap().ifindex();
    assert_ne!(
        new_ifindex, old_ifindex,
        "a re-probed NIC is a new net device"
    );
    again = h2.ipv4.with_netns(|n| n.devices.iter().count());
    assert_eq!(again, 2);
    let resumed_from = p.net.now();
    let limit = resumed_from + Duration::from_secs(60);
    while got.len() < data.len() {
        assert!(
            p.net.now() < limit,
            "the transfer did not resume ({} of {})",
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
        assert!(
            e.is_none(),
            "the connection failed after the re-probe: {e:?}"
        );
        if p.net.now().as_nanos() % 100_000_000 < 5_000_000 {
            seq += 1;
            ping_once(&mut p, &pinger, seq);
        }
    }
    assert!(
        got == data,
        "the transfer is not byte-exact after the re-probe"
    );
    for _ in 0..5 {
        seq += 1;
        ping_once(&mut p, &pinger, seq);
        p.net.run_for(Duration::from_millis(20)).unwrap();
    }
    assert!(
        pinger.replies().iter().any(|r| r.seq > seq - 5),
        "pings are not answered after the re-probe"
    );
    drop(p.net.app("h1", || drop(c)));
    drop(p.net.app("h2", || drop(s)));
    p.net.run_for(Duration::from_secs(1)).unwrap();
    // Nothing leaked: the new rings hold as many buffers as the old.
    assert_eq!(
        pool_inflight(&p.net, "h2"),
        inflight0,
        "page pool buffers leaked over remove and re-probe"
    );
    eprintln!(
        "{bdf} removed for 2 s: resumed and finished {:?} after the re-probe",
        p.net.now().saturating_duration_since(resumed_from)
    );
}

#[test]
fn a_stalled_cpu_with_rps_drops_at_its_backlog_counts_every_frame_and_recovers() {
    const BURST: u64 = 3_000;
    const LEN: usize = 400_000;
    const STALL: Duration = Duration::from_millis(50);
    // Two CPUs; the NIC's one queue interrupts CPU 0, and RPS steers every
    // flow to CPU 1 (rps_cpus = 2), whose runner then stalls.
    let mut lab = Lab::with_victim_cpus(26, 2, |nic| nic.rps_cpus("2"));
    // ethtool -K eth0 gro off: one frame, one skb through the backlog, so
    // the frame counts below add up exactly.
    lab.net
        .host("victim")
        .unwrap()
        .with_ethtool("eth0", |e| {
            let (on, _) = e.get_features().unwrap();
            e.set_features(on.difference(netcore::NetdevFeatures::GRO))
                .unwrap();
        })
        .unwrap();
    let v = lab.victim();
    let max_backlog = v.sysctl.netdev_max_backlog() as u32;
    assert_eq!(max_backlog, 1000, "Linux's default netdev_max_backlog");
    let stat = |cpu: usize| v.softnet.softnet_stat_cpu(cpu).unwrap();
    let rx_packets = || v.dev("eth0").unwrap().dev_get_stats().rx_packets;
    let rx_missed = || v.dev("eth0").unwrap().dev_get_stats().rx_missed_errors;
    let client = lab.client();

    let (mut s, _) = lab.connect();
    let data: Vec<u8> = (0..LEN as u64).map(|i| bulk_pattern(i + 7)).collect();
    let (mut sent, mut got) = (0, Vec::with_capacity(LEN));
    let mut buf = vec![0u8; 65536];
    let mut before = None;
    let mut checked_full = false;
    let end = lab.now() + Duration::from_secs(60);
    while got.len() < LEN {
        assert!(
            lab.now() < end,
            "the echo did not finish after the stall: {} of {LEN}",
            got.len()
        );
        let (w, r) = lab
            .net
            .app("client", || {
                let w = if sent < LEN {
                    s.write(&data[sent..])
                } else {
                    Ok(0)
                };
                (w, s.read(&mut buf))
            })
            .unwrap();
        match w {
            Ok(n) => sent += n,
            Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock, "client write: {e}"),
        }
        match r {
            Ok(0) => panic!("the victim closed the connection"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock, "client read: {e}"),
        }
        if before.is_none() && got.len() >= LEN / 4 {
            // Stall CPU 1 mid-transfer and flood the victim with UDP (to a
            // closed port) at line rate while it is stalled.
            before = Some((
                lab.now(),
                rx_packets(),
                [stat(0), stat(1)],
                lab.mib(UdpMib::NoPorts),
                client.mibs.get(TcpMib::RetransSegs),
                rx_missed(),
            ));
            lab.net.stall_cpu("victim", 1, STALL).unwrap();
            let ip = Ip::new(ATTACKER, VICTIM, 17);
            for i in 0..BURST {
                let mut u = vec![0x30, 0x39, 0x7a, 0x69, 0, 16, 0, 0];
                u.extend_from_slice(&i.to_be_bytes());
                lab.attack(ip.frame(&u));
            }
        }
        if let Some((at, ..)) = before
            && !checked_full
            && lab.now() >= at + Duration::from_millis(45)
        {
            // Linux's test `qlen <= netdev_max_backlog` admits one more.
            assert!(lab.net.cpu_stalled("victim", 1));
            assert_eq!(
                stat(1).input_qlen,
                max_backlog + 1,
                "the backlog is not full"
            );
            checked_full = true;
        }
        lab.step();
    }
    assert!(checked_full, "the transfer finished before the stall ended");
    assert!(got == data, "the echo is not byte-exact after the stall");
    lab.run(Duration::from_millis(200));
    let (_, rx0, st0, noports0, retrans0, missed0) = before.unwrap();
    let st = [stat(0), stat(1)];
    assert_eq!(
        st[1].input_qlen + st[1].process_qlen,
        0,
        "CPU 1's backlog did not drain"
    );
    let processed: u32 = (0..2).map(|c| st[c].processed - st0[c].processed).sum();
    let dropped: u32 = (0..2).map(|c| st[c].dropped - st0[c].dropped).sum();
    let frames = rx_packets() - rx0;
    assert!(
        st[1].dropped > st0[1].dropped,
        "no drop counted at CPU 1's backlog"
    );
    assert_eq!(st[0].dropped, st0[0].dropped, "CPU 0 was never stalled");
    // Every frame the NIC delivered was either processed by a CPU or
    // dropped at a backlog and counted in softnet_stat.
    assert_eq!(
        frames,
        u64::from(processed + dropped),
        "NIC frames {frames} = processed {processed} + dropped {dropped}"
    );
    // The flood: what reached UDP (no socket: NoPorts) plus what the
    // backlog dropped plus what the NIC missed covers every datagram; the
    // rest of the drops are TCP segments, which the client retransmitted.
    // The NIC misses frames because igb's dynamic moderation holds the
    // interrupt of a bulk receiver for up to IGB_4K_ITR (245 us), longer
    // than a line-rate burst takes to fill the rx ring (rx_missed_errors,
    // as on a real igb).
    let udp_in = lab.mib(UdpMib::NoPorts) - noports0;
    let udp_dropped = BURST - udp_in;
    let missed = rx_missed() - missed0;
    assert!(udp_in > 0 && udp_dropped > 0, "udp delivered {udp_in}");
    assert!(
        u64::from(dropped) + missed >= udp_dropped,
        "udp lost {udp_dropped}, backlog dropped {dropped}, NIC missed {missed}"
    );
    let tcp_dropped = u64::from(dropped) + missed - udp_dropped;
    if tcp_dropped > 0 {
        assert!(client.mibs.get(TcpMib::RetransSegs) > retrans0);
    }
    eprintln!(
        "CPU 1 stalled {STALL:?}: {frames} frames, {processed} processed, {dropped} dropped \
         at the backlog, {missed} missed by the NIC ({udp_dropped} UDP, {tcp_dropped} TCP); \
         UDP delivered {udp_in} of {BURST}"
    );
    drop(lab.net.app("client", || drop(s)));
    lab.serves_legit_client(50_000);
}
