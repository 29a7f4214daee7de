//! Many concurrent established TCP connections between two simulated
//! hosts, for the scale test (a bounded count) and the scale bench (up to
//! the 1,000,000).
//!
//! Host `h1` (198.18.0.1) connects to `h2` (198.18.0.2) over a 10 Gbit/s
//! wire; `h2` listens on as many ports as the connection count needs
//! (one four-tuple space per port: `ip_local_port_range` is widened to
//! 1024–65535 on `h1`; 25,000 connections per port). Both hosts raise
//! `RLIMIT_NOFILE` to fit, as the seed document's limits would be raised on
//! Linux. Connections open in batches through the socket API, the server
//! accepting as they come, exactly as an application would.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use netcore::{Duration, TcpMib};
use netstack::{Host, HostSockets, Network, NicConfig};
use nic_hw::LinkConfig;
use socket::{TcpListener, TcpStream};

/// Connections per listening port: well under half the ephemeral range,
/// so that connect()'s port search (which tries every other port first,
/// as `__inet_hash_connect()` does) never walks a nearly full space.
pub const CONNS_PER_PORT: usize = 25_000;
/// The first listening port on `h2`.
pub const FIRST_PORT: u16 = 10_000;
/// Connections started per batch (below the listen backlog of 128, so
/// the accept queue never overflows).
const BATCH: usize = 100;

/// A connection's (client end, server end).
type Ends = (SocketAddrV4, SocketAddrV4);

/// What opening the connections took.
#[derive(Clone, Copy, Debug)]
pub struct ScaleReport {
    /// Established connections (each has a socket on both hosts).
    pub conns: usize,
    /// Wall-clock seconds to open them all (build excluded).
    pub open_secs: f64,
    /// CPU seconds (user and system) the process spent opening them: the
    /// wall-clock figure without the time other processes took the CPU;
    /// `None` where `/proc/self/stat` cannot be read.
    pub open_cpu_secs: Option<f64>,
    /// Virtual seconds the simulation ran to open them.
    pub virtual_secs: f64,
    /// Growth of the process's resident memory per connection (both
    /// ends, every table and fd included), in bytes; `None` where
    /// `/proc/self/statm` cannot be read.
    pub rss_per_conn: Option<f64>,
}

/// What the echo workload took ([`ScaleLab::echo_all`]).
#[derive(Clone, Copy, Debug)]
pub struct EchoReport {
    /// Connections that each carried one message there and back.
    pub conns: usize,
    /// Bytes of each message.
    pub len: usize,
    /// Wall-clock seconds for all the round trips.
    pub secs: f64,
    /// Virtual seconds the simulation ran meanwhile.
    pub virtual_secs: f64,
}

/// Clients that send their echo message per step: as many as the
/// connections opened per step, so a step's segments fit in the NIC's
/// transmit ring (a full ring while softirqs run at one virtual instant
/// keeps `net_tx_action` rescheduling itself).
const ECHO_BATCH: usize = BATCH;

/// The echo message of connection `i`: `len` bytes that differ between
/// any two connections (its index, little-endian, repeated, each byte
/// mixed with its position).
fn echo_msg(i: usize, len: usize) -> Vec<u8> {
    let tag = (i as u64).to_le_bytes();
    (0..len)
        .map(|j| tag[j % 8] ^ (j as u8).wrapping_mul(31))
        .collect()
}

/// Two hosts holding `conns` established connections.
pub struct ScaleLab {
    // Sockets go before the network that holds their hosts.
    /// The client ends.
    pub clients: Vec<TcpStream<HostSockets>>,
    /// The server ends, in accept order.
    pub servers: Vec<TcpStream<HostSockets>>,
    listeners: Vec<TcpListener<HostSockets>>,
    /// The network.
    pub net: Network,
}

/// The CPU time (user + system) the process has used, in seconds
/// (`/proc/self/stat` fields 14 and 15, in clock ticks of 1/100 s).
pub fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces: count fields after its ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut f = rest.split_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// The process's resident set in bytes.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn host(name: &str, addr: &str, phy: netstack::PhyEnd, files: usize) -> netstack::HostBuilder {
    // fs.file-max (838,860 by default, 10 % of memory in KiB) is raised
    // with RLIMIT_NOFILE, as the seed document raises both on Linux.
    let file_max = files.max(838_860).to_string();
    Host::builder()
        .name(name)
        .cpus(1)
        .nic(NicConfig::new().phy(phy))
        .addr(addr)
        .sysctl("net.ipv4.ip_local_port_range", "1024 65535")
        .sysctl("fs.file-max", &file_max)
}

/// Opens `conns` connections from `h1` to `h2`; errors say what failed.
pub fn open_connections(conns: usize, seed: u64) -> Result<(ScaleReport, ScaleLab), String> {
    let mut net = Network::new(seed);
    // Every connection's handshake is in flight at once in a batch: room
    // in the wire for all of it.
    let (a, b) = net
        .wire(
            "w0",
            LinkConfig::default()
                .rate_bps(10_000_000_000)
                .delay(Duration::from_micros(5)),
        )
        .map_err(|e| e.to_string())?;
    let nofile = conns + 1024;
    net.add_host(host("h1", "198.18.0.1/24", a, nofile))
        .map_err(|e| e.to_string())?;
    net.add_host(host("h2", "198.18.0.2/24", b, nofile))
        .map_err(|e| e.to_string())?;
    let h1 = Arc::clone(net.host("h1").map_err(|e| e.to_string())?.shared());
    let h2 = Arc::clone(net.host("h2").map_err(|e| e.to_string())?.shared());
    let nofile = nofile as u64;
    for h in [&h1, &h2] {
        h.socket_layer()
            .set_rlimit_nofile(nofile)
            .map_err(|e| format!("setrlimit(RLIMIT_NOFILE, {nofile}): {e:?}"))?;
    }
    let ports = conns.div_ceil(CONNS_PER_PORT).max(1);
    let mut listeners = Vec::new();
    for i in 0..ports {
        let port = FIRST_PORT + i as u16;
        let l = net
            .app("h2", || {
                TcpListener::bind(
                    h2.socket_layer(),
                    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
                )
            })
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("listen on {port}: {e}"))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        listeners.push(l);
    }

    let rss0 = rss_bytes();
    let cpu0 = cpu_secs();
    let start = Instant::now();
    let vstart = net.now();
    let mut clients = Vec::with_capacity(conns);
    let mut servers = Vec::with_capacity(conns);
    while clients.len() < conns || servers.len() < conns {
        let first = clients.len();
        let n = BATCH.min(conns - first);
        let batch = net
            .app("h1", || {
                (first..first + n)
                    .map(|i| {
                        let port = FIRST_PORT + (i / CONNS_PER_PORT) as u16;
                        TcpStream::connect_nonblocking(
                            h1.socket_layer(),
                            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), port),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string())?;
        for s in batch {
            clients.push(s.map_err(|e| format!("connect #{}: {e}", clients.len()))?);
        }
        // Long enough for the batch's handshakes to complete before the
        // next batch starts (so at most BATCH wait in an accept queue): a
        // handshake crosses three interrupts of igb's dynamic moderation,
        // up to IGB_START_ITR (162 us) apart before it settles at
        // IGB_20K_ITR (49 us).
        net.run_for(Duration::from_millis(1))
            .map_err(|e| e.to_string())?;
        let accepted = net
            .app("h2", || {
                let mut out = Vec::new();
                for l in &listeners {
                    while let Ok((s, _)) = l.accept() {
                        out.push(s);
                    }
                }
                out
            })
            .map_err(|e| e.to_string())?;
        if clients.len() == conns && accepted.is_empty() {
            // Everything started: wait for the stragglers (a SYN
            // retransmission takes a second).
            net.run_for(Duration::from_millis(100))
                .map_err(|e| e.to_string())?;
            if net.now().saturating_duration_since(vstart) > Duration::from_secs(30) {
                use netcore::LinuxMib;
                return Err(format!(
                    "only {} of {conns} connections accepted after 30 s (h1 CurrEstab {}, \
                     h2 CurrEstab {}, ListenOverflows {}, ListenDrops {}, SyncookiesSent {}, \
                     h1 AttemptFails {})",
                    servers.len(),
                    h1.mibs.get(TcpMib::CurrEstab),
                    h2.mibs.get(TcpMib::CurrEstab),
                    h2.mibs.get(LinuxMib::ListenOverflows),
                    h2.mibs.get(LinuxMib::ListenDrops),
                    h2.mibs.get(LinuxMib::SyncookiesSent),
                    h1.mibs.get(TcpMib::AttemptFails),
                ));
            }
        }
        servers.extend(accepted);
    }
    let open_secs = start.elapsed().as_secs_f64();
    let open_cpu_secs = cpu0.zip(cpu_secs()).map(|(a, b)| b - a);
    let virtual_secs = net.now().saturating_duration_since(vstart).as_secs_f64();
    let rss_per_conn = match (rss0, rss_bytes()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / conns as f64),
        _ => None,
    };
    for (h, name) in [(&h1, "h1"), (&h2, "h2")] {
        let est = h.mibs.get(TcpMib::CurrEstab);
        if est != conns as u64 {
            return Err(format!(
                "{name} has {est} established connections, not {conns}"
            ));
        }
    }
    Ok((
        ScaleReport {
            conns,
            open_secs,
            open_cpu_secs,
            virtual_secs,
            rss_per_conn,
        },
        ScaleLab {
            clients,
            servers,
            listeners,
            net,
        },
    ))
}

impl ScaleLab {
    /// Sends a distinct message over every `stride`-th connection, client
    /// to server, and checks that each server end reads exactly it.
    /// Returns how many connections were checked.
    pub fn check_every(&mut self, stride: usize) -> Result<usize, String> {
        let picks: Vec<usize> = (0..self.clients.len()).step_by(stride.max(1)).collect();
        // A connection is named by its two ends: with several listening
        // ports one client port serves several connections.
        let mut sent: Vec<(Ends, Vec<u8>)> = Vec::with_capacity(picks.len());
        // Written in steps of BATCH, as the connections were opened (a
        // step's segments must fit in the transmit ring).
        for step in picks.chunks(BATCH) {
            let clients = &mut self.clients;
            let wrote: Vec<(Ends, Vec<u8>)> = self
                .net
                .app("h1", || {
                    step.iter()
                        .map(|&i| {
                            let msg = format!("connection {i} says hello").into_bytes();
                            let c = &mut clients[i];
                            let _ = c.write(&msg);
                            let ends = (
                                c.local_addr().expect("connected"),
                                c.peer_addr().expect("connected"),
                            );
                            (ends, msg)
                        })
                        .collect()
                })
                .map_err(|e| e.to_string())?;
            sent.extend(wrote);
            self.net
                .run_for(Duration::from_micros(200))
                .map_err(|e| e.to_string())?;
        }
        self.net
            .run_for(Duration::from_millis(50))
            .map_err(|e| e.to_string())?;
        let servers = &mut self.servers;
        let got: Vec<(Ends, Vec<u8>)> = self
            .net
            .app("h2", || {
                let mut out = Vec::new();
                let mut buf = [0u8; 256];
                for s in servers.iter_mut() {
                    let data = match s.read(&mut buf) {
                        Ok(n) => buf[..n].to_vec(),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                        Err(e) => e.to_string().into_bytes(),
                    };
                    let ends = (
                        s.peer_addr().expect("connected"),
                        s.local_addr().expect("connected"),
                    );
                    out.push((ends, data));
                }
                out
            })
            .map_err(|e| e.to_string())?;
        if got.len() != sent.len() {
            return Err(format!(
                "{} connections carried data, {} were written to",
                got.len(),
                sent.len()
            ));
        }
        let got: std::collections::HashMap<Ends, Vec<u8>> = got.into_iter().collect();
        for ((from, to), msg) in &sent {
            let Some(data) = got.get(&(*from, *to)) else {
                return Err(format!("nothing arrived from {from} at {to}"));
            };
            if data != msg {
                return Err(format!(
                    "{from} sent {:?} to {to}, the server read {:?}",
                    String::from_utf8_lossy(msg),
                    String::from_utf8_lossy(data)
                ));
            }
        }
        Ok(sent.len())
    }

    /// The C10K-style echo workload: every client sends a message of its
    /// own (`len` bytes, at least 8), its server end reads it whole and
    /// writes it back, and the client checks the bytes it reads. Clients
    /// start in steps of 100 (each step runs the network for 200 µs
    /// between the client writes, the server echoes and the client
    /// reads), and the connections that have not finished carry over to
    /// the next step, as an event loop would serve them.
    pub fn echo_all(&mut self, len: usize) -> Result<EchoReport, String> {
        self.echo_first(self.clients.len(), len)
    }

    /// [`ScaleLab::echo_all`] over the first `count` connections only
    /// (the others stay open and idle).
    pub fn echo_first(&mut self, count: usize, len: usize) -> Result<EchoReport, String> {
        let len = len.max(8);
        let n = count.min(self.clients.len());
        let start = Instant::now();
        let vstart = self.net.now();
        // The server end of each client: matched by the connection's
        // two addresses.
        let (clients, servers) = (&self.clients, &self.servers);
        let by_ends: std::collections::HashMap<Ends, usize> = self
            .net
            .app("h2", || {
                servers
                    .iter()
                    .enumerate()
                    .filter_map(|(j, s)| Some(((s.peer_addr().ok()?, s.local_addr().ok()?), j)))
                    .collect()
            })
            .map_err(|e| e.to_string())?;
        let pair: Vec<usize> = self
            .net
            .app("h1", || {
                clients[..n]
                    .iter()
                    .map(|c| {
                        let ends = (c.local_addr().ok()?, c.peer_addr().ok()?);
                        by_ends.get(&ends).copied()
                    })
                    .collect::<Option<Vec<usize>>>()
            })
            .map_err(|e| e.to_string())?
            .ok_or("a client has no server end")?;
        drop(by_ends);
        // Bytes read so far, by client index, on each side.
        let mut at_server: std::collections::HashMap<usize, Vec<u8>> =
            std::collections::HashMap::new();
        let mut at_client: std::collections::HashMap<usize, Vec<u8>> =
            std::collections::HashMap::new();
        let mut started = 0;
        while started < n || !at_server.is_empty() || !at_client.is_empty() {
            let batch = started..(started + ECHO_BATCH).min(n);
            started = batch.end;
            let clients = &mut self.clients;
            let wrote = self
                .net
                .app("h1", || {
                    for i in batch.clone() {
                        let msg = echo_msg(i, len);
                        match clients[i].write(&msg) {
                            Ok(k) if k == len => {}
                            other => return Err(format!("client {i} wrote {other:?} of {len}")),
                        }
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            wrote?;
            at_server.extend(batch.map(|i| (i, Vec::new())));
            self.net
                .run_for(Duration::from_micros(200))
                .map_err(|e| e.to_string())?;
            let servers = &mut self.servers;
            let echoed = self
                .net
                .app("h2", || {
                    let mut done = Vec::new();
                    let mut buf = [0u8; 256];
                    for (&i, got) in &mut at_server {
                        let s = &mut servers[pair[i]];
                        match s.read(&mut buf) {
                            Ok(0) => return Err(format!("server end of {i}: end of stream")),
                            Ok(k) => got.extend_from_slice(&buf[..k]),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                            Err(e) => return Err(format!("server end of {i}: {e}")),
                        }
                        if got.len() >= len {
                            match s.write(got) {
                                Ok(k) if k == got.len() => done.push(i),
                                other => {
                                    return Err(format!("server end of {i} echoed {other:?}"));
                                }
                            }
                        }
                    }
                    Ok(done)
                })
                .map_err(|e| e.to_string())??;
            for i in echoed {
                at_server.remove(&i);
                at_client.insert(i, Vec::new());
            }
            self.net
                .run_for(Duration::from_micros(200))
                .map_err(|e| e.to_string())?;
            let clients = &mut self.clients;
            let finished = self
                .net
                .app("h1", || {
                    let mut done = Vec::new();
                    let mut buf = [0u8; 256];
                    for (&i, got) in &mut at_client {
                        match clients[i].read(&mut buf) {
                            Ok(0) => return Err(format!("client {i}: end of stream")),
                            Ok(k) => got.extend_from_slice(&buf[..k]),
                            Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                            Err(e) => return Err(format!("client {i}: {e}")),
                        }
                        if got.len() >= len {
                            if *got != echo_msg(i, len) {
                                return Err(format!(
                                    "client {i} sent {:?}, read back {got:?}",
                                    echo_msg(i, len)
                                ));
                            }
                            done.push(i);
                        }
                    }
                    Ok(done)
                })
                .map_err(|e| e.to_string())??;
            for i in finished {
                at_client.remove(&i);
            }
            if self.net.now().saturating_duration_since(vstart) > Duration::from_secs(60) {
                return Err(format!(
                    "echo: {} servers and {} clients still waiting after 60 s",
                    at_server.len(),
                    at_client.len()
                ));
            }
        }
        Ok(EchoReport {
            conns: n,
            len,
            secs: start.elapsed().as_secs_f64(),
            virtual_secs: self
                .net
                .now()
                .saturating_duration_since(vstart)
                .as_secs_f64(),
        })
    }

    /// Closes every socket inside the hosts' application context.
    pub fn close(mut self) {
        let clients = std::mem::take(&mut self.clients);
        let servers = std::mem::take(&mut self.servers);
        let listeners = std::mem::take(&mut self.listeners);
        let _ = self.net.app("h1", || drop(clients));
        let _ = self.net.app("h2", || drop((servers, listeners)));
    }
}
