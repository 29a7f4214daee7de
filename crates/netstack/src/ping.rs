//! `ping`: ICMP echo requests from a host, and the replies they get.
//!
//! Mirrors a ping socket (`net/ipv4/ping.c`: `ping_v4_sendmsg()` builds
//! the echo request and sends it with `ip_push_pending_frames()`;
//! `ping_rcv()` is ICMP's handler for echo replies and finds the socket by
//! the echo identifier) together with what `iputils ping` prints.
//!
//! # Deviations from Linux
//!
//! - The socket layer does not exist yet, so the "socket" is a
//!   [`PingSocket`] registered on the host, and the reply hook is a
//!   `NetProtocol` for protocol 1 wrapping ICMP's own: it records echo
//!   replies for a registered identifier, then hands every message to the
//!   wrapped `icmp_rcv` (so the Icmp counters are Linux's).
//! - The request goes out through `ip_queue_xmit` (DF set, as `ping` does
//!   with its default `-M do` on Linux… `want` in recent iputils; both set DF
//!   for a datagram that fits).

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipv4::{IcmpError, InetSock, MAX_IP_HEADROOM, NetProtocol, ip_queue_xmit};
use netcore::{Duration, Errno, Instant, SkBuff};
use parking_lot::Mutex;
use softnet::SoftnetContext;

use crate::cpu::CpuCtx;
use crate::host::HostShared;

/// The size of the timestamp `ping` puts at the start of its payload
/// (`struct timeval` on a 64-bit machine).
pub const PING_TIMESTAMP_LEN: usize = 16;

/// One echo reply received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingReply {
    /// The echo sequence number.
    pub seq: u16,
    /// Round-trip time (reply received − request sent, host clock).
    pub rtt: Duration,
    /// TTL of the reply.
    pub ttl: u8,
    /// ICMP bytes (header + payload).
    pub bytes: usize,
    /// Who replied.
    pub from: Ipv4Addr,
}

#[derive(Debug, Default)]
struct PingState {
    sent: BTreeMap<u16, Instant>,
    replies: Vec<PingReply>,
    errors: Vec<(u16, Errno)>,
    duplicates: u64,
}

/// A ping "socket": one identifier, its requests and their replies.
#[derive(Debug)]
pub struct PingSocket {
    id: u16,
    dst: Ipv4Addr,
    size: usize,
    state: Mutex<PingState>,
}

impl PingSocket {
    /// The echo identifier.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The destination.
    pub fn dst(&self) -> Ipv4Addr {
        self.dst
    }

    /// Replies so far, in arrival order.
    pub fn replies(&self) -> Vec<PingReply> {
        self.state.lock().replies.clone()
    }

    /// Requests sent so far.
    pub fn transmitted(&self) -> usize {
        self.state.lock().sent.len()
    }

    /// Requests that could not be sent, with the error.
    pub fn send_errors(&self) -> Vec<(u16, Errno)> {
        self.state.lock().errors.clone()
    }

    /// The summary `ping` prints.
    pub fn report(&self) -> PingReport {
        let st = self.state.lock();
        PingReport {
            dst: self.dst,
            size: self.size,
            transmitted: st.sent.len(),
            replies: st.replies.clone(),
            duplicates: st.duplicates,
        }
    }

    /// Sends echo request `seq` from `ctx`'s CPU (process context).
    ///
    /// Mirrors `ping_v4_sendmsg()`: an ICMP echo header, the timestamp and
    /// iputils' fill pattern, the checksum, then `ip_queue_xmit`.
    pub fn send(&self, ctx: &mut CpuCtx, seq: u16) -> Result<(), Errno> {
        let host = Arc::clone(ctx.host());
        let now = SoftnetContext::now(ctx);
        let mut icmp = Vec::with_capacity(8 + self.size);
        icmp.extend_from_slice(&[8, 0, 0, 0]);
        icmp.extend_from_slice(&self.id.to_be_bytes());
        icmp.extend_from_slice(&seq.to_be_bytes());
        let ns = now.as_nanos();
        let mut tv = [0u8; PING_TIMESTAMP_LEN];
        tv[..8].copy_from_slice(&(ns / 1_000_000_000).to_le_bytes());
        tv[8..].copy_from_slice(&((ns % 1_000_000_000) / 1000).to_le_bytes());
        icmp.extend((0..self.size).map(|i| tv.get(i).copied().unwrap_or(i as u8)));
        let c = wire::ip_compute_csum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let skb = SkBuff::from_slice(
            &host.pool,
            MAX_IP_HEADROOM + 16 + netcore::NET_SKB_PAD,
            &icmp,
        )
        .map_err(|_| Errno::NoBufs)?;
        let mut sk = InetSock::new(1, &host.sysctl);
        sk.daddr = self.dst;
        self.state.lock().sent.insert(seq, now);
        // icmp_out_count(): ping_v4_push_pending_frames() counts the request.
        host.mibs.icmpmsg_inc(netcore::IcmpMsgDir::Out, 8);
        host.mibs.inc(ctx.cpu(), netcore::IcmpMib::OutMsgs);
        tracing::trace!(target: "netstack::ping", id = self.id, seq, daddr = %self.dst, "ping_v4_sendmsg");
        ip_queue_xmit(ctx, &mut sk, skb).inspect_err(|e| {
            self.state.lock().errors.push((seq, *e));
        })
    }

    fn on_reply(&self, seq: u16, now: Instant, ttl: u8, bytes: usize, from: Ipv4Addr) {
        let mut st = self.state.lock();
        let Some(&sent) = st.sent.get(&seq) else {
            return;
        };
        if st.replies.iter().any(|r| r.seq == seq) {
            st.duplicates += 1;
            return;
        }
        st.replies.push(PingReply {
            seq,
            rtt: now.saturating_duration_since(sent),
            ttl,
            bytes,
            from,
        });
    }
}

/// What `ping` prints at the end.
#[derive(Clone, Debug, PartialEq)]
pub struct PingReport {
    /// The destination.
    pub dst: Ipv4Addr,
    /// Payload bytes per request.
    pub size: usize,
    /// Requests sent.
    pub transmitted: usize,
    /// Replies, in arrival order.
    pub replies: Vec<PingReply>,
    /// Duplicate replies.
    pub duplicates: u64,
}

impl PingReport {
    /// Replies received.
    pub fn received(&self) -> usize {
        self.replies.len()
    }

    /// (min, avg, max, mdev) of the round-trip times, in nanoseconds.
    pub fn rtt_stats(&self) -> Option<(u64, u64, u64, u64)> {
        if self.replies.is_empty() {
            return None;
        }
        let v: Vec<u64> = self
            .replies
            .iter()
            .map(|r| r.rtt.as_nanos() as u64)
            .collect();
        let n = v.len() as u64;
        let min = *v.iter().min()?;
        let max = *v.iter().max()?;
        let avg = v.iter().sum::<u64>() / n;
        let var = v.iter().map(|x| x.abs_diff(avg).pow(2)).sum::<u64>() / n;
        Some((min, avg, max, var.isqrt()))
    }
}

fn ms(ns: u64) -> String {
    format!("{}.{:03}", ns / 1_000_000, (ns % 1_000_000) / 1000)
}

impl fmt::Display for PingReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "PING {0} ({0}) {1}({2}) bytes of data.",
            self.dst,
            self.size,
            self.size + 28
        )?;
        for r in &self.replies {
            writeln!(
                f,
                "{} bytes from {}: icmp_seq={} ttl={} time={} ms",
                r.bytes,
                r.from,
                r.seq,
                r.ttl,
                ms(r.rtt.as_nanos() as u64)
            )?;
        }
        writeln!(f)?;
        writeln!(f, "--- {} ping statistics ---", self.dst)?;
        let loss = ((self.transmitted - self.received().min(self.transmitted)) * 100)
            .checked_div(self.transmitted)
            .unwrap_or(0);
        writeln!(
            f,
            "{} packets transmitted, {} received, {loss}% packet loss",
            self.transmitted,
            self.received()
        )?;
        if let Some((min, avg, max, mdev)) = self.rtt_stats() {
            writeln!(
                f,
                "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
                ms(min),
                ms(avg),
                ms(max),
                ms(mdev)
            )?;
        }
        Ok(())
    }
}

/// The ping sockets of a host and the ICMP hook that feeds them.
///
/// Mirrors `ping_table` (`net/ipv4/ping.c`) and `ping_rcv()`.
#[derive(Default)]
pub struct PingTable {
    socks: Mutex<Vec<Arc<PingSocket>>>,
    next_id: Mutex<u16>,
    hooked: Mutex<bool>,
}

impl fmt::Debug for PingTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PingTable")
            .field("socks", &self.socks.lock().len())
            .field("next_id", &*self.next_id.lock())
            .field("hooked", &*self.hooked.lock())
            .finish()
    }
}

/// The handler for IP protocol 1 while ping sockets exist: echo replies
/// to a ping socket go to it ([`PingTable`]), then everything goes to
/// the wrapped ICMP handler.
struct PingRcv {
    host: std::sync::Weak<HostShared>,
    icmp: Arc<dyn NetProtocol<CpuCtx>>,
}

impl NetProtocol<CpuCtx> for PingRcv {
    fn handler(&self, skb: SkBuff, ctx: &mut CpuCtx) -> Result<(), (SkBuff, IcmpError)> {
        let d = skb.data();
        if d.len() >= 8
            && d[0] == 0
            && let Some(host) = self.host.upgrade()
            && let Some(iph) = skb.network_header()
            && iph.len() >= 20
        {
            let id = u16::from_be_bytes([d[4], d[5]]);
            let seq = u16::from_be_bytes([d[6], d[7]]);
            let from = Ipv4Addr::new(iph[12], iph[13], iph[14], iph[15]);
            let ttl = iph[8];
            let sock = host.pings.socks.lock().iter().find(|s| s.id == id).cloned();
            if let Some(s) = sock {
                tracing::trace!(target: "netstack::ping", id, seq, saddr = %from, "ping_rcv");
                s.on_reply(seq, SoftnetContext::now(ctx), ttl, d.len(), from);
            }
        }
        self.icmp.handler(skb, ctx)
    }

    fn name(&self) -> &'static str {
        "ping_rcv"
    }
}

impl HostShared {
    /// Opens a ping socket toward `dst` with `size` payload bytes
    /// (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`); the identifier is
    /// the host's next.
    pub fn ping_socket(self: &Arc<Self>, dst: Ipv4Addr, size: usize) -> Arc<PingSocket> {
        {
            let mut hooked = self.pings.hooked.lock();
            if !*hooked
                && let Some(icmp) = self.ipv4.inet_protocol(1)
                && self.ipv4.inet_del_protocol(&icmp, 1).is_ok()
            {
                let wrap: Arc<dyn NetProtocol<CpuCtx>> = Arc::new(PingRcv {
                    host: Arc::downgrade(self),
                    icmp,
                });
                *hooked = self.ipv4.inet_add_protocol(wrap, 1).is_ok();
            }
        }
        let id = {
            let mut n = self.pings.next_id.lock();
            *n = n.wrapping_add(1);
            // iputils uses getpid() & 0xffff; a fixed base keeps runs reproducible.
            0x4e00u16.wrapping_add(*n)
        };
        let s = Arc::new(PingSocket {
            id,
            dst,
            size,
            state: Mutex::new(PingState::default()),
        });
        self.pings.socks.lock().push(Arc::clone(&s));
        s
    }
}
