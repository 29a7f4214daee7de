//! Seeded runs of a mixed workload over impaired links: a TCP bulk
//! transfer, a TCP request/response exchange and UDP datagrams between
//! two simulated hosts, on a wire that loses (up to 10 %), reorders,
//! duplicates and corrupts frames.
//!
//! The claim checked: every TCP byte arrives intact, or the connection
//! reports an error and what did arrive is an intact prefix; every UDP
//! datagram that arrives is one that was sent, intact. Never silent
//! corruption. Corruption comes in two kinds: a bit flipped on the wire
//! (the receiving NIC's FCS check catches it) and a bit flipped above
//! layer 2 with the FCS recomputed, as a faulty switch or NIC memory
//! would (the IP, TCP and UDP checksums must catch it).
//!
//! `NETSTACK_MIXED_RUNS=N` sets the number of runs (default 1,000);
//! `NETSTACK_MIXED_SEED=S` runs the single seed S (to replay a failure).
//! Every failure message names its seed.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Rng, Stream};
use netcore::{Duration, Instant};
use netstack::{Host, HostSockets, Network, NicConfig, PhyEnd};
use nic_hw::{LinkConfig, PhyError, PhyPort, append_fcs};
use socket::{TcpListener, TcpStream, UdpSocket};

const H2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const BULK_PORT: u16 = 5001;
const RR_PORT: u16 = 5002;
const UDP_PORT: u16 = 5003;
const BULK_LEN: usize = 24 * 1024;
const RR_ROUNDS: usize = 6;
const RR_REQ: usize = 48;
const RR_RESP: usize = 700;
const UDP_COUNT: u32 = 16;
const UDP_LEN: usize = 300;
/// Past `tcp_retries2` (~924.6 s) and `tcp_syn_retries` (~127 s): by
/// then a connection has either finished or reported its error.
const DEADLINE: Duration = Duration::from_secs(1_000);

/// A PHY decorator that flips one bit of a frame above the Ethernet
/// header and recomputes the FCS, so the frame passes the NIC's check
/// and only the IP/TCP/UDP checksums stand between it and the
/// application.
struct L3Corrupt {
    inner: PhyEnd,
    rng: Rng,
    /// Probability per frame, in millionths.
    ppm: u64,
    flipped: Arc<AtomicU64>,
}

impl PhyPort for L3Corrupt {
    fn transmit(&mut self, now: Instant, mut frame: Vec<u8>) -> Result<(), PhyError> {
        if frame.len() > 14 + 4 && self.rng.next() % 1_000_000 < self.ppm {
            frame.truncate(frame.len() - 4);
            let bits = (frame.len() - 14) * 8;
            let bit = 14 * 8 + (self.rng.next() as usize % bits);
            frame[bit / 8] ^= 1 << (bit % 8);
            append_fcs(&mut frame);
            self.flipped.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.transmit(now, frame)
    }

    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        self.inner.receive(now)
    }

    fn next_event(&self) -> Option<Instant> {
        self.inner.next_event()
    }
}

/// What one run saw.
#[derive(Default, Debug)]
struct Outcome {
    /// TCP connections that finished byte-exact.
    tcp_complete: u32,
    /// TCP connections that reported an error (with an intact prefix).
    tcp_errors: u32,
    udp_received: u32,
    wire_corrupted: u64,
    l3_corrupted: u64,
    lost: u64,
    /// The errors connections reported, with the seed.
    errors: Vec<String>,
}

/// FNV-1a, to name a byte string in a failure message.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn prob(rng: &mut Rng, max_ppm: u64) -> f64 {
    (rng.next() % (max_ppm + 1)) as f64 / 1e6
}

fn response_to(req: &[u8]) -> Vec<u8> {
    let h = fnv(req);
    (0..RR_RESP as u64)
        .map(|i| (h.rotate_left((i % 64) as u32) as u8) ^ (i as u8))
        .collect()
}

fn udp_payload(seed: u64, i: u32) -> Vec<u8> {
    let mut r = Rng::new(seed ^ (u64::from(i) << 32));
    let mut d = i.to_be_bytes().to_vec();
    d.extend((4..UDP_LEN).map(|_| r.next() as u8));
    d
}

/// Whether a socket error means "the connection failed" (anything but
/// EAGAIN).
fn failed(e: &std::io::Error) -> bool {
    e.kind() != ErrorKind::WouldBlock
}

/// The client side of one TCP connection (bulk or request/response).
struct Conn {
    stream: Stream,
    error: Option<String>,
}

impl Conn {
    fn check_error(&mut self) {
        if self.error.is_none()
            && let Ok(Some(e)) = self.stream.take_error()
        {
            self.error = Some(e.to_string());
        }
    }
}

#[allow(clippy::too_many_lines)]
fn run(seed: u64) -> Outcome {
    let mut rng = Rng::new(seed);
    let cfg = LinkConfig::default()
        .rate_bps(1_000_000_000)
        .delay(Duration::from_micros(50))
        .loss(prob(&mut rng, 100_000))
        .reorder(prob(&mut rng, 100_000), Duration::from_micros(300))
        .duplicate(prob(&mut rng, 50_000))
        .corrupt(prob(&mut rng, 20_000));
    let l3_ppm = rng.next() % 20_001;
    let describe = format!("seed {seed}: {cfg:?}, L3 corruption {l3_ppm} ppm");
    let mut net = Network::new(seed);
    let (a, b) = net.wire("w0", cfg).unwrap();
    let flipped = Arc::new(AtomicU64::new(0));
    let wrap = |inner: PhyEnd, salt: u64| -> PhyEnd {
        Box::new(L3Corrupt {
            inner,
            rng: Rng::new(seed ^ salt),
            ppm: l3_ppm,
            flipped: Arc::clone(&flipped),
        })
    };
    let (a, b) = (wrap(a, 0xa), wrap(b, 0xb));
    net.add_host(
        Host::builder()
            .name("h1")
            .nic(NicConfig::new().phy(a))
            .addr("198.18.0.1/24"),
    )
    .unwrap();
    net.add_host(
        Host::builder()
            .name("h2")
            .nic(NicConfig::new().phy(b))
            .addr("198.18.0.2/24"),
    )
    .unwrap();
    let h1 = Arc::clone(net.host("h1").unwrap().shared());
    let h2 = Arc::clone(net.host("h2").unwrap().shared());
    let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
    let (bulk_l, rr_l, udp_rx): (
        TcpListener<HostSockets>,
        TcpListener<HostSockets>,
        UdpSocket<HostSockets>,
    ) = net
        .app("h2", || {
            let l1 = TcpListener::bind(h2.socket_layer(), any(BULK_PORT)).unwrap();
            let l2 = TcpListener::bind(h2.socket_layer(), any(RR_PORT)).unwrap();
            let u = UdpSocket::bind(h2.socket_layer(), any(UDP_PORT)).unwrap();
            l1.set_nonblocking(true).unwrap();
            l2.set_nonblocking(true).unwrap();
            u.set_nonblocking(true).unwrap();
            (l1, l2, u)
        })
        .unwrap();
    let (bulk_c, rr_c, udp_tx) = net
        .app("h1", || {
            let c1 =
                TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, BULK_PORT))
                    .unwrap();
            let c2 =
                TcpStream::connect_nonblocking(h1.socket_layer(), SocketAddrV4::new(H2, RR_PORT))
                    .unwrap();
            let u = UdpSocket::bind(h1.socket_layer(), any(0)).unwrap();
            u.set_nonblocking(true).unwrap();
            (c1, c2, u)
        })
        .unwrap();
    let mut bulk = Conn {
        stream: bulk_c,
        error: None,
    };
    let mut rr = Conn {
        stream: rr_c,
        error: None,
    };
    let data: Vec<u8> = {
        let mut r = Rng::new(seed.wrapping_mul(31));
        (0..BULK_LEN).map(|_| r.next() as u8).collect()
    };
    let mut bulk_sent = 0;
    let mut bulk_closed = false;
    let mut bulk_got: Vec<u8> = Vec::new();
    let mut bulk_srv: Option<Stream> = None;
    let mut bulk_srv_err: Option<String> = None;
    let mut bulk_eof = false;
    let mut rr_srv: Option<Stream> = None;
    let mut rr_srv_in: Vec<u8> = Vec::new();
    let mut rr_srv_out: Vec<u8> = Vec::new();
    let mut rr_round = 0;
    let mut rr_req_sent = 0;
    let mut rr_resp: Vec<u8> = Vec::new();
    let mut udp_next = 0u32;
    let mut udp_seen = vec![0u32; UDP_COUNT as usize];
    let mut buf = vec![0u8; 65536];

    let end = net.now() + DEADLINE;
    let mut step = Duration::from_millis(2);
    loop {
        let mut progress = false;
        // h1: the bulk sender, the request/response client, the UDP sender.
        net.app("h1", || {
            if bulk.error.is_none() && bulk.stream.peer_addr().is_ok() {
                if bulk_sent < data.len() {
                    match bulk.stream.write(&data[bulk_sent..]) {
                        Ok(n) => {
                            bulk_sent += n;
                            progress |= n > 0;
                        }
                        Err(e) if failed(&e) => bulk.error = Some(e.to_string()),
                        Err(_) => {}
                    }
                } else if !bulk_closed {
                    let _ = bulk.stream.shutdown(std::net::Shutdown::Write);
                    bulk_closed = true;
                }
            }
            bulk.check_error();
            if rr.error.is_none() && rr.stream.peer_addr().is_ok() && rr_round < RR_ROUNDS {
                let req: Vec<u8> = (0..RR_REQ).map(|i| (rr_round * 7 + i) as u8).collect();
                if rr_req_sent < RR_REQ {
                    match rr.stream.write(&req[rr_req_sent..]) {
                        Ok(n) => rr_req_sent += n,
                        Err(e) if failed(&e) => rr.error = Some(e.to_string()),
                        Err(_) => {}
                    }
                }
                loop {
                    match rr.stream.read(&mut buf) {
                        Ok(0) => {
                            rr.error = Some("EOF before the response".to_owned());
                            break;
                        }
                        Ok(n) => {
                            rr_resp.extend_from_slice(&buf[..n]);
                            progress = true;
                        }
                        Err(e) if failed(&e) => {
                            rr.error = Some(e.to_string());
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let want = response_to(&req);
                assert!(
                    want.starts_with(&rr_resp[..rr_resp.len().min(RR_RESP)]),
                    "{describe}: round {rr_round}: the response is corrupt (got {} bytes, hash {:#x})",
                    rr_resp.len(),
                    fnv(&rr_resp)
                );
                if rr_resp.len() >= RR_RESP {
                    assert_eq!(
                        rr_resp.len(),
                        RR_RESP,
                        "{describe}: round {rr_round}: more bytes than the response"
                    );
                    rr_resp.clear();
                    rr_req_sent = 0;
                    rr_round += 1;
                }
            }
            rr.check_error();
            if udp_next < UDP_COUNT {
                let _ = udp_tx.send_to(
                    &udp_payload(seed, udp_next),
                    SocketAddrV4::new(H2, UDP_PORT),
                );
                udp_next += 1;
            }
        })
        .unwrap();
        // h2: the bulk receiver, the request/response server, the UDP
        // receiver.
        net.app("h2", || {
            if bulk_srv.is_none()
                && let Ok((s, _)) = bulk_l.accept()
            {
                s.set_nonblocking(true).unwrap();
                bulk_srv = Some(s);
            }
            if let Some(s) = bulk_srv.as_mut() {
                while !bulk_eof && bulk_srv_err.is_none() {
                    match s.read(&mut buf) {
                        Ok(0) => bulk_eof = true,
                        Ok(n) => {
                            bulk_got.extend_from_slice(&buf[..n]);
                            progress = true;
                        }
                        Err(e) if failed(&e) => bulk_srv_err = Some(e.to_string()),
                        Err(_) => break,
                    }
                }
            }
            if rr_srv.is_none()
                && let Ok((s, _)) = rr_l.accept()
            {
                s.set_nonblocking(true).unwrap();
                rr_srv = Some(s);
            }
            if let Some(s) = rr_srv.as_mut() {
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    rr_srv_in.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                while rr_srv_in.len() >= RR_REQ {
                    let req: Vec<u8> = rr_srv_in.drain(..RR_REQ).collect();
                    rr_srv_out.extend(response_to(&req));
                }
                while !rr_srv_out.is_empty() {
                    match s.write(&rr_srv_out) {
                        Ok(n) if n > 0 => {
                            rr_srv_out.drain(..n);
                        }
                        _ => break,
                    }
                }
            }
            while let Ok((n, _)) = udp_rx.recv_from(&mut buf) {
                let d = &buf[..n];
                let i = d
                    .get(..4)
                    .map_or(u32::MAX, |x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]));
                assert!(
                    i < UDP_COUNT && d == udp_payload(seed, i).as_slice(),
                    "{describe}: a corrupt UDP datagram was delivered ({n} bytes, hash {:#x})",
                    fnv(d)
                );
                udp_seen[i as usize] += 1;
            }
        })
        .unwrap();
        // Whatever has arrived is an intact prefix.
        assert!(
            data.starts_with(&bulk_got),
            "{describe}: bulk data corrupt: {} bytes received, hash {:#x}, sent prefix hash {:#x}",
            bulk_got.len(),
            fnv(&bulk_got),
            fnv(&data[..bulk_got.len().min(data.len())])
        );
        let bulk_done = bulk_eof || bulk.error.is_some() || bulk_srv_err.is_some();
        let rr_done = rr_round == RR_ROUNDS || rr.error.is_some();
        if bulk_done && rr_done && udp_next == UDP_COUNT {
            break;
        }
        assert!(
            net.now() < end,
            "{describe}: neither finished nor failed in {DEADLINE:?}: bulk {} of {BULK_LEN} \
             (client error {:?}), request/response round {rr_round} of {RR_ROUNDS} (error {:?})",
            bulk_got.len(),
            bulk.error,
            rr.error
        );
        // Waiting on a retransmission timer: look less often.
        step = if progress {
            Duration::from_millis(2)
        } else {
            Duration::from_nanos((step.as_nanos() * 2).min(200_000_000) as u64)
        };
        net.run_for(step).unwrap();
    }
    if bulk_eof {
        assert!(
            bulk_got == data,
            "{describe}: bulk transfer ended short or wrong: {} of {BULK_LEN} bytes, hash {:#x} vs {:#x}",
            bulk_got.len(),
            fnv(&bulk_got),
            fnv(&data)
        );
    }
    let mut out = Outcome::default();
    for (what, ok, err) in [
        (
            "bulk",
            bulk_eof,
            bulk.error.clone().or_else(|| bulk_srv_err.clone()),
        ),
        ("request/response", rr_round == RR_ROUNDS, rr.error.clone()),
    ] {
        if ok {
            out.tcp_complete += 1;
        } else {
            out.tcp_errors += 1;
            out.errors.push(format!(
                "{describe}: {what}: {} (at {:?})",
                err.unwrap_or_default(),
                net.now()
            ));
        }
    }
    out.udp_received = udp_seen.iter().filter(|&&n| n > 0).count() as u32;
    let (ab, ba) = net.wire_stats("w0").unwrap();
    out.wire_corrupted = ab.corrupted + ba.corrupted;
    out.lost = ab.dropped_loss + ba.dropped_loss;
    out.l3_corrupted = flipped.load(Ordering::Relaxed);
    // Sockets go before the network that holds their hosts.
    net.app("h1", || drop((bulk, rr, udp_tx))).unwrap();
    net.app("h2", || drop((bulk_srv, rr_srv, bulk_l, rr_l, udp_rx)))
        .unwrap();
    out
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn mixed_workload_over_impaired_links_never_corrupts_silently() {
    let seeds: Vec<u64> = match env_u64("NETSTACK_MIXED_SEED") {
        Some(s) => vec![s],
        None => (0..env_u64("NETSTACK_MIXED_RUNS").unwrap_or(1_000))
            .map(|i| 0x6d69_7865_6400_0000 + i)
            .collect(),
    };
    let started = std::time::Instant::now();
    let mut total = Outcome::default();
    for &seed in &seeds {
        // Any panic inside a run (an unwrap included) names its seed.
        let o = std::panic::catch_unwind(|| run(seed)).unwrap_or_else(|e| {
            let msg = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            panic!("seed {seed} (replay: NETSTACK_MIXED_SEED={seed}): {msg}")
        });
        total.tcp_complete += o.tcp_complete;
        total.tcp_errors += o.tcp_errors;
        total.udp_received += o.udp_received;
        total.wire_corrupted += o.wire_corrupted;
        total.l3_corrupted += o.l3_corrupted;
        total.lost += o.lost;
        total.errors.extend(o.errors);
    }
    eprintln!(
        "{} runs in {:.1} s: TCP connections {} complete byte-exact, {} reported an error; \
         UDP {} of {} datagrams arrived intact; frames lost {}, corrupted on the wire {} \
         (FCS), above layer 2 {} (checksums)",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        total.tcp_complete,
        total.tcp_errors,
        total.udp_received,
        seeds.len() as u64 * u64::from(UDP_COUNT),
        total.lost,
        total.wire_corrupted,
        total.l3_corrupted
    );
    for e in &total.errors {
        eprintln!("  {e}");
    }
    if seeds.len() >= 20 {
        assert!(
            total.l3_corrupted > 0 && total.wire_corrupted > 0 && total.lost > 0,
            "the runs did not exercise loss and both kinds of corruption"
        );
    }
}
