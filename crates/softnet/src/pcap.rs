//! A packet tap that writes classic pcap files tcpdump and tshark read.
//!
//! No single kernel twin: it plays the part of `tcpdump -w` on an
//! `AF_PACKET` socket, which the kernel feeds through a `ptype_all` handler
//! (`packet_rcv()` in `net/packet/af_packet.c`) on receive and
//! `dev_queue_xmit_nit()` on transmit. The file format is libpcap's
//! (<https://www.tcpdump.org/manpages/pcap-savefile.5.html>) with
//! nanosecond timestamps.
//!
//! ```text
//! file header (24 bytes): magic a1b23c4d, version 2.4, thiszone 0,
//!                         sigfigs 0, snaplen 262144, linktype 1 (Ethernet)
//! record header (16 bytes): ts_sec, ts_nsec, incl_len, orig_len; then the frame
//! ```
//!
//! Timestamps are the skb's `tstamp` when set, else the context's `now()`
//! (virtual time in the simulation, counted from the epoch).

use core::fmt;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use netcore::{Instant, SkBuff};
use parking_lot::Mutex;
use wire::{IpProtocol, skb_flow_dissect_flow_keys};

use crate::dev::SoftnetContext;
use crate::ptype::{NetRx, PacketType, PtypeMatch};
use crate::rps::skb_frame;

/// The magic of a pcap file with nanosecond timestamps, as written in the
/// writer's byte order (little-endian here).
pub const PCAP_MAGIC_NSEC: u32 = 0xa1b2_3c4d;
/// The largest frame kept whole; longer frames are cut (tcpdump's default
/// `-s 262144`).
pub const PCAP_SNAPLEN: u32 = 262_144;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Writes the pcap file header and then one record per packet.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header to `w`.
    pub fn new(mut w: W) -> io::Result<PcapWriter<W>> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC_NSEC.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay 0.
        h[16..20].copy_from_slice(&PCAP_SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write_all(&h)?;
        Ok(PcapWriter { w })
    }

    /// Writes one frame seen at `ts`, cut to the snap length.
    pub fn write_packet(&mut self, ts: Instant, frame: &[u8]) -> io::Result<()> {
        let nanos = ts.as_nanos();
        let incl = frame.len().min(PCAP_SNAPLEN as usize);
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&((nanos / 1_000_000_000) as u32).to_le_bytes());
        r[4..8].copy_from_slice(&((nanos % 1_000_000_000) as u32).to_le_bytes());
        r[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        r[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.w.write_all(&r)?;
        self.w.write_all(&frame[..incl])
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.w
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// One capture condition, in tcpdump's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcapFilter {
    /// `host ADDR`: IPv4 source or destination (or ARP sender or target).
    Host(Ipv4Addr),
    /// `port N`: TCP or UDP source or destination port.
    Port(u16),
    /// `tcp`.
    Tcp,
    /// `udp`.
    Udp,
    /// `icmp`.
    Icmp,
    /// `arp`.
    Arp,
}

/// A filter expression that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapFilterError {
    /// The word that was not understood.
    pub word: String,
}

impl fmt::Display for PcapFilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad pcap filter word `{}`: accepts `host ADDR`, `port N`, `tcp`, `udp`, `icmp`, `arp`, joined by `and`",
            self.word
        )
    }
}

impl core::error::Error for PcapFilterError {}

impl PcapFilter {
    /// Parses an expression of conditions joined by `and` (`"udp and port
    /// 53"`); the empty expression captures everything.
    pub fn parse_expr(expr: &str) -> Result<Vec<PcapFilter>, PcapFilterError> {
        let mut out = Vec::new();
        let mut words = expr.split_whitespace();
        let err = |w: &str| PcapFilterError { word: w.to_owned() };
        while let Some(w) = words.next() {
            let f = match w {
                "and" | "&&" => continue,
                "tcp" => PcapFilter::Tcp,
                "udp" => PcapFilter::Udp,
                "icmp" => PcapFilter::Icmp,
                "arp" => PcapFilter::Arp,
                "host" => {
                    let a = words.next().ok_or_else(|| err(w))?;
                    PcapFilter::Host(a.parse().map_err(|_| err(a))?)
                }
                "port" => {
                    let p = words.next().ok_or_else(|| err(w))?;
                    PcapFilter::Port(p.parse().map_err(|_| err(p))?)
                }
                other => return Err(err(other)),
            };
            out.push(f);
        }
        Ok(out)
    }

    /// Whether an Ethernet frame matches. Truncated or foreign frames match
    /// only conditions they visibly meet.
    pub fn matches(&self, frame: &[u8]) -> bool {
        let ethertype = frame.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]]));
        if ethertype == Some(netcore::ETH_P_ARP) {
            return match self {
                PcapFilter::Arp => true,
                PcapFilter::Host(a) => {
                    let ip = |o: usize| {
                        frame
                            .get(o..o + 4)
                            .map(|b| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                    };
                    ip(28) == Some(*a) || ip(38) == Some(*a)
                }
                _ => false,
            };
        }
        let Some(keys) = skb_flow_dissect_flow_keys(frame, 0) else {
            return false;
        };
        if ethertype != Some(netcore::ETH_P_IP) {
            return false;
        }
        match self {
            PcapFilter::Host(a) => keys.src == *a || keys.dst == *a,
            PcapFilter::Port(p) => {
                matches!(keys.ip_proto, IpProtocol::Tcp | IpProtocol::Udp)
                    && (keys.sport == *p || keys.dport == *p)
            }
            PcapFilter::Tcp => keys.ip_proto == IpProtocol::Tcp,
            PcapFilter::Udp => keys.ip_proto == IpProtocol::Udp,
            PcapFilter::Icmp => keys.ip_proto == IpProtocol::Icmp,
            PcapFilter::Arp => false,
        }
    }
}

/// A `ptype_all` tap that writes every matching packet, received or sent,
/// to a pcap stream.
///
/// Register it with [`Softnet::dev_add_pack`](crate::Softnet::dev_add_pack)
/// (as `Arc<dyn PacketType<C>>`); keep your own `Arc<PcapTap<W>>` to read
/// the writer and the counters. Write errors are counted, never raised:
/// a tap must not disturb the packet path.
pub struct PcapTap<W: Write> {
    writer: Mutex<PcapWriter<W>>,
    filters: Vec<PcapFilter>,
    dev: Option<u32>,
    captured: AtomicU64,
    write_errors: AtomicU64,
}

impl<W: Write> fmt::Debug for PcapTap<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapTap")
            .field("filters", &self.filters)
            .field("dev", &self.dev)
            .field("captured", &self.captured())
            .finish_non_exhaustive()
    }
}

impl<W: Write> PcapTap<W> {
    /// A tap writing to `w` packets that match every filter of `filters`
    /// (see [`PcapFilter::parse_expr`]), on device `dev` only or on all.
    pub fn new(w: W, filters: Vec<PcapFilter>, dev: Option<u32>) -> io::Result<PcapTap<W>> {
        Ok(PcapTap {
            writer: Mutex::new(PcapWriter::new(w)?),
            filters,
            dev,
            captured: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        })
    }

    /// Packets written.
    pub fn captured(&self) -> u64 {
        self.captured.load(Ordering::Relaxed)
    }

    /// Packets lost to write errors.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    /// Runs `f` on the underlying writer (to flush it, or read a `Vec`).
    pub fn with_writer<R>(&self, f: impl FnOnce(&mut W) -> R) -> R {
        f(self.writer.lock().get_mut())
    }

    /// Writes `skb` if it matches; the timestamp is `tstamp` if set, else
    /// `now`.
    pub fn capture(&self, skb: &SkBuff, now: Instant) {
        let head = skb_frame(skb);
        let whole: Vec<u8>;
        let frame = if skb.is_nonlinear() {
            whole = core::iter::once(head)
                .chain(skb.frags())
                .flatten()
                .copied()
                .collect();
            &whole[..]
        } else {
            head
        };
        if !self.filters.iter().all(|f| f.matches(frame)) {
            return;
        }
        let ts = if skb.tstamp == Instant::ZERO {
            now
        } else {
            skb.tstamp
        };
        match self.writer.lock().write_packet(ts, frame) {
            Ok(()) => {
                self.captured.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.write_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<C: SoftnetContext, W: Write + Send> PacketType<C> for PcapTap<W> {
    fn ptype(&self) -> PtypeMatch {
        PtypeMatch::All
    }

    fn dev(&self) -> Option<u32> {
        self.dev
    }

    fn func(&self, skb: SkBuff, ctx: &mut C) -> NetRx {
        self.capture(&skb, ctx.now());
        NetRx::Success
    }

    fn accepts_nonlinear(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "packet_rcv"
    }
}
