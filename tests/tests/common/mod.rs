//! The lab of the hardening tests: a victim host serving TCP echo, a
//! legitimate client and an attacker's raw port, on one learning switch.
//!
//! The attacker is not a host: it is the bare PHY end of a switch port,
//! so it can put any frame on the wire (spoofed addresses, lying lengths,
//! bad checksums) exactly as a machine on the LAN could. Frames are built
//! by hand here, FCS included, never through the stack under test.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use netcore::{Duration, Instant, MibField};
use netstack::{Host, HostShared, HostSockets, Network, NicConfig, PhyEnd, bulk_pattern};
use nic_hw::{LinkConfig, append_fcs};
use socket::{TcpListener, TcpStream};

/// The victim's address (the echo server).
pub const VICTIM: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The legitimate client's address.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// An address the attacker owns (it answers nothing as it).
pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 66);
/// The victim's MAC.
pub const VICTIM_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
/// The client's MAC.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The attacker's MAC.
pub const ATTACKER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x66];
/// The echo service's port on the victim.
pub const ECHO_PORT: u16 = 7;

/// One step of the lab's clock: the echo server runs after each.
pub const STEP: Duration = Duration::from_millis(1);

pub type Stream = TcpStream<HostSockets>;

/// The victim's echo service: accepts everything, sends every byte back.
pub struct EchoServer {
    listener: TcpListener<HostSockets>,
    conns: Vec<(Stream, Vec<u8>)>,
    /// Bytes echoed so far.
    pub echoed: usize,
    /// Whether the service accepts (off: the accept queue fills).
    pub accepting: bool,
    /// Whether the service reads (off: receive buffers fill).
    pub reading: bool,
}

impl EchoServer {
    fn pump(&mut self) {
        while self.accepting
            && let Ok((s, _)) = self.listener.accept()
        {
            let _ = s.set_nonblocking(true);
            self.conns.push((s, Vec::new()));
        }
        let mut buf = vec![0u8; 65536];
        let reading = self.reading;
        let echoed = &mut self.echoed;
        self.conns.retain_mut(|(s, pending)| {
            let open = if reading {
                match read_all(s, &mut buf, pending) {
                    Some(open) => open,
                    None => return false,
                }
            } else {
                true
            };
            while !pending.is_empty() {
                match s.write(pending) {
                    Ok(0) => break,
                    Ok(n) => {
                        pending.drain(..n);
                        *echoed += n;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return false,
                }
            }
            open || !pending.is_empty()
        });
    }

    /// Connections the service holds.
    pub fn conns(&self) -> usize {
        self.conns.len()
    }
}

/// Reads what `s` has into `pending`: `Some(open)`, or `None` on an error.
fn read_all(s: &mut Stream, buf: &mut [u8], pending: &mut Vec<u8>) -> Option<bool> {
    loop {
        match s.read(buf) {
            Ok(0) => return Some(false),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(true),
            Err(_) => return None,
        }
    }
}

/// The victim, the client and the attacker's port.
pub struct Lab {
    // The service's sockets go before the network that holds their host.
    pub echo: EchoServer,
    pub net: Network,
    pub attacker: PhyEnd,
    /// Frames the attacker's port received (ARP requests, replies to
    /// spoofed sources that happened to be its MAC).
    pub attacker_rx: Vec<Vec<u8>>,
}

/// The switch's links: 1 Gbit/s, 10 µs.
pub fn lan_link() -> LinkConfig {
    LinkConfig::default()
        .rate_bps(1_000_000_000)
        .delay(Duration::from_micros(10))
}

impl Lab {
    /// The lab with `sysctls` set on the victim (`key`, `value`).
    pub fn new(seed: u64, sysctls: &[(&str, &str)]) -> Lab {
        Lab::with_victim_nic(seed, sysctls, |nic| nic)
    }

    /// The lab with the victim's NIC configured by `nic`.
    pub fn with_victim_nic(
        seed: u64,
        sysctls: &[(&str, &str)],
        nic: impl FnOnce(NicConfig) -> NicConfig,
    ) -> Lab {
        let mut net = Network::new(seed);
        let mut ports = net.switch("sw0", 3, &lan_link()).unwrap();
        let attacker = ports.pop().unwrap();
        let client_port = ports.pop().unwrap();
        let victim_port = ports.pop().unwrap();
        let mut victim = Host::builder()
            .name("victim")
            .cpus(1)
            .nic(nic(NicConfig::new().mac(VICTIM_MAC).phy(victim_port)))
            .addr("198.18.0.2/24");
        for (k, v) in sysctls {
            victim = victim.sysctl(k, v);
        }
        net.add_host(victim).unwrap();
        net.add_host(
            Host::builder()
                .name("client")
                .cpus(1)
                .nic(NicConfig::new().mac(CLIENT_MAC).phy(client_port))
                .addr("198.18.0.1/24"),
        )
        .unwrap();
        let v = Arc::clone(net.host("victim").unwrap().shared());
        let listener = net
            .app("victim", || {
                TcpListener::bind(
                    v.socket_layer(),
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT),
                )
            })
            .unwrap()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        Lab {
            net,
            attacker,
            echo: EchoServer {
                listener,
                conns: Vec::new(),
                echoed: 0,
                accepting: true,
                reading: true,
            },
            attacker_rx: Vec::new(),
        }
    }

    /// The lab with a victim of `cpus` CPUs whose NIC is configured by
    /// `nic` (for RPS: `nic.rps_cpus("2")` steers every flow to CPU 1).
    pub fn with_victim_cpus(
        seed: u64,
        cpus: usize,
        nic: impl FnOnce(NicConfig) -> NicConfig,
    ) -> Lab {
        let mut net = Network::new(seed);
        let mut ports = net.switch("sw0", 3, &lan_link()).unwrap();
        let attacker = ports.pop().unwrap();
        let client_port = ports.pop().unwrap();
        let victim_port = ports.pop().unwrap();
        net.add_host(
            Host::builder()
                .name("victim")
                .cpus(cpus)
                .nic(nic(NicConfig::new().mac(VICTIM_MAC).phy(victim_port)))
                .addr("198.18.0.2/24"),
        )
        .unwrap();
        net.add_host(
            Host::builder()
                .name("client")
                .cpus(1)
                .nic(NicConfig::new().mac(CLIENT_MAC).phy(client_port))
                .addr("198.18.0.1/24"),
        )
        .unwrap();
        let v = Arc::clone(net.host("victim").unwrap().shared());
        let listener = net
            .app("victim", || {
                TcpListener::bind(
                    v.socket_layer(),
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT),
                )
            })
            .unwrap()
            .unwrap();
        listener.set_nonblocking(true).unwrap();
        Lab {
            net,
            attacker,
            echo: EchoServer {
                listener,
                conns: Vec::new(),
                echoed: 0,
                accepting: true,
                reading: true,
            },
            attacker_rx: Vec::new(),
        }
    }

    /// The victim's host state.
    pub fn victim(&self) -> Arc<HostShared> {
        Arc::clone(self.net.host("victim").unwrap().shared())
    }

    /// The client's host state.
    pub fn client(&self) -> Arc<HostShared> {
        Arc::clone(self.net.host("client").unwrap().shared())
    }

    /// A counter of the victim.
    pub fn mib<F: MibField>(&self, f: F) -> u64 {
        self.victim().mibs.get(f)
    }

    pub fn now(&self) -> Instant {
        self.net.now()
    }

    /// Sends a frame (without FCS: it is added) from the attacker's port.
    pub fn attack(&mut self, mut frame: Vec<u8>) {
        append_fcs(&mut frame);
        let now = self.net.now();
        self.attacker.transmit(now, frame).unwrap();
    }

    /// Runs one step: the network, then the echo service, then the
    /// attacker's port is drained.
    pub fn step(&mut self) {
        self.net.run_for(STEP).unwrap();
        let echo = &mut self.echo;
        self.net.app("victim", || echo.pump()).unwrap();
        let now = self.net.now();
        while let Ok(Some(f)) = self.attacker.receive(now) {
            if self.attacker_rx.len() < 10_000 {
                self.attacker_rx.push(f);
            }
        }
    }

    /// Runs `d` in steps.
    pub fn run(&mut self, d: Duration) {
        let end = self.now().saturating_add(d);
        while self.now() < end {
            self.step();
        }
    }

    /// Sends `frames` from the attacker at `per_sec` frames per second of
    /// virtual time, the network and echo service running meanwhile.
    pub fn flood(&mut self, frames: usize, per_sec: usize, mut make: impl FnMut(usize) -> Vec<u8>) {
        let per_step = (per_sec / 1000).max(1);
        let mut i = 0;
        while i < frames {
            for _ in 0..per_step.min(frames - i) {
                let f = make(i);
                self.attack(f);
                i += 1;
            }
            self.step();
        }
    }

    /// Opens a connection from the legitimate client to the echo service.
    /// Returns the stream once it is established and the time that took.
    pub fn connect(&mut self) -> (Stream, Duration) {
        let c = self.client();
        let start = self.now();
        let s = self
            .net
            .app("client", || {
                TcpStream::connect_nonblocking(
                    c.socket_layer(),
                    SocketAddrV4::new(VICTIM, ECHO_PORT),
                )
            })
            .unwrap()
            .unwrap();
        for _ in 0..10_000 {
            self.step();
            if s.peer_addr().is_ok() {
                return (s, self.now().saturating_duration_since(start));
            }
            let err = self.net.app("client", || s.take_error()).unwrap().unwrap();
            assert!(
                err.is_none(),
                "the legitimate client failed to connect: {err:?}"
            );
        }
        panic!("the legitimate client did not connect in 10 s");
    }

    /// Sends `len` bytes of a pattern over `s` and reads them back; asserts
    /// the echo is byte-exact within `limit` of virtual time.
    pub fn echo_exact(&mut self, s: &mut Stream, len: usize, seed: u64, limit: Duration) {
        let data: Vec<u8> = (0..len as u64).map(|i| bulk_pattern(i + seed)).collect();
        let mut sent = 0;
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 65536];
        let end = self.now().saturating_add(limit);
        while got.len() < len {
            assert!(
                self.now() < end,
                "echo stalled: sent {sent}, got back {} of {len}",
                got.len()
            );
            let (w, r) = self
                .net
                .app("client", || {
                    let w = if sent < len {
                        s.write(&data[sent..])
                    } else {
                        Ok(0)
                    };
                    let r = s.read(&mut buf);
                    (w, r)
                })
                .unwrap();
            match w {
                Ok(n) => sent += n,
                Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock, "client write: {e}"),
            }
            match r {
                Ok(0) => panic!("the victim closed the echo connection"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => assert_eq!(e.kind(), ErrorKind::WouldBlock, "client read: {e}"),
            }
            self.step();
        }
        assert_eq!(got.len(), len);
        assert!(got == data, "echo is not byte-exact");
    }

    /// A legitimate client connects, echoes `len` bytes byte-exact and
    /// closes; returns its handshake time.
    pub fn serves_legit_client(&mut self, len: usize) -> Duration {
        let (mut s, handshake) = self.connect();
        self.echo_exact(
            &mut s,
            len,
            handshake.as_nanos() as u64,
            Duration::from_secs(30),
        );
        let _ = self.net.app("client", || drop(s));
        self.run(Duration::from_millis(5));
        handshake
    }
}

/// Internet checksum of `data`.
pub fn csum(data: &[u8], init: u32) -> u16 {
    let mut sum = init;
    for c in data.chunks(2) {
        let w = u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
        sum += w;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame (no FCS).
pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len().max(46));
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    // Pad to the minimum frame, as a NIC does.
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// The fields of a hand-made IPv4 header.
#[derive(Clone)]
pub struct Ip {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub id: u16,
    /// Flags and fragment offset in 8-byte units, as on the wire
    /// (0x2000 = MF, 0x4000 = DF).
    pub frag: u16,
    pub ttl: u8,
    pub options: Vec<u8>,
    /// Overrides the total length field (a lying length).
    pub tot_len: Option<u16>,
    /// Overrides the IHL field.
    pub ihl: Option<u8>,
    /// Leaves the header checksum wrong.
    pub bad_csum: bool,
}

impl Ip {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ip {
        Ip {
            src,
            dst,
            proto,
            id: 1,
            frag: 0x4000,
            ttl: 64,
            options: Vec::new(),
            tot_len: None,
            ihl: None,
            bad_csum: false,
        }
    }

    /// The datagram: header, then `payload`.
    pub fn datagram(&self, payload: &[u8]) -> Vec<u8> {
        let hlen = 20 + self.options.len();
        let mut h = vec![0u8; hlen];
        h[0] = 0x40 | self.ihl.unwrap_or((hlen / 4) as u8);
        let tot = self.tot_len.unwrap_or((hlen + payload.len()) as u16);
        h[2..4].copy_from_slice(&tot.to_be_bytes());
        h[4..6].copy_from_slice(&self.id.to_be_bytes());
        h[6..8].copy_from_slice(&self.frag.to_be_bytes());
        h[8] = self.ttl;
        h[9] = self.proto;
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        h[20..].copy_from_slice(&self.options);
        let mut c = csum(&h, 0);
        if self.bad_csum {
            c = c.wrapping_add(1);
        }
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    /// The datagram in a frame from the attacker's MAC to the victim.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        eth(VICTIM_MAC, ATTACKER_MAC, 0x0800, &self.datagram(payload))
    }
}

/// TCP flags.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// A hand-made TCP segment.
#[derive(Clone)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<u8>,
    /// Overrides the data offset (in 32-bit words).
    pub doff: Option<u8>,
    /// Leaves the checksum wrong.
    pub bad_csum: bool,
}

impl Tcp {
    pub fn new(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8) -> Tcp {
        Tcp {
            sport,
            dport,
            seq,
            ack,
            flags,
            window: 65535,
            options: Vec::new(),
            doff: None,
            bad_csum: false,
        }
    }

    /// The segment's bytes with its checksum for `src` → `dst`.
    pub fn bytes(&self, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let hlen = 20 + self.options.len();
        let mut t = vec![0u8; hlen];
        t[0..2].copy_from_slice(&self.sport.to_be_bytes());
        t[2..4].copy_from_slice(&self.dport.to_be_bytes());
        t[4..8].copy_from_slice(&self.seq.to_be_bytes());
        t[8..12].copy_from_slice(&self.ack.to_be_bytes());
        t[12] = self.doff.unwrap_or((hlen / 4) as u8) << 4;
        t[13] = self.flags;
        t[14..16].copy_from_slice(&self.window.to_be_bytes());
        t[20..].copy_from_slice(&self.options);
        t.extend_from_slice(payload);
        let mut pseudo = 0u32;
        for w in [src.octets(), dst.octets()] {
            pseudo += u32::from(u16::from_be_bytes([w[0], w[1]]));
            pseudo += u32::from(u16::from_be_bytes([w[2], w[3]]));
        }
        pseudo += 6 + t.len() as u32;
        let mut c = csum(&t, pseudo);
        if self.bad_csum {
            c = c.wrapping_add(1);
        }
        t[16..18].copy_from_slice(&c.to_be_bytes());
        t
    }

    /// The segment in a datagram in a frame to the victim.
    pub fn frame(&self, src: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        Ip::new(src, VICTIM, 6).frame(&self.bytes(src, VICTIM, payload))
    }
}

/// An ARP packet (Ethernet/IPv4) in a frame.
pub fn arp(
    eth_dst: [u8; 6],
    op: u16,
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    eth(eth_dst, sha, 0x0806, &a)
}

/// A small deterministic generator for attack traffic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn u32(&mut self) -> u32 {
        self.next() as u32
    }
}

/// A TCP segment read from a capture.
#[derive(Clone, Copy, Debug)]
pub struct PcapSeg {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub len: usize,
}

impl PcapSeg {
    /// The sequence number after this segment (SYN and FIN count one).
    pub fn end_seq(&self) -> u32 {
        self.seq
            .wrapping_add(self.len as u32)
            .wrapping_add(u32::from(self.flags & (SYN | FIN) != 0))
    }
}

/// Reads the TCP segments of a pcap file.
pub fn pcap_tcp(path: &std::path::Path) -> Vec<PcapSeg> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let incl = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        let f = &data[at + 16..(at + 16 + incl).min(data.len())];
        at += 16 + incl;
        if f.len() < 54 || f[12..14] != [0x08, 0x00] || f[23] != 6 {
            continue;
        }
        let ip = &f[14..];
        let ihl = usize::from(ip[0] & 15) * 4;
        let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let t = &ip[ihl..];
        let doff = usize::from(t[12] >> 4) * 4;
        out.push(PcapSeg {
            src: Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
            dst: Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
            sport: u16::from_be_bytes([t[0], t[1]]),
            dport: u16::from_be_bytes([t[2], t[3]]),
            seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
            ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
            flags: t[13],
            len: tot.saturating_sub(ihl + doff),
        });
    }
    out
}
