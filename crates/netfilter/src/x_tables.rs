//! What every table, match and target shares: the parsed packet they look
//! at, rule counters, interface names, and the context the host offers.
//!
//! Mirrors `net/netfilter/x_tables.c` and `include/linux/netfilter/x_tables.h`
//! (`struct xt_action_param`, `struct xt_counters`, `IFNAMSIZ` names).
//!
//! ```text
//!  skb (data = IPv4 header) ──► XtActionParam::parse ──► saddr daddr proto
//!                                                        sport dport flags
//!                                                        icmp type/code, len
//!  rules read the parsed view; targets may write the skb (mark, NAT)
//! ```

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};

use netcore::{Instant, SkBuff};
use wire::IcmpDestUnreach;

use crate::netfilter::{NfHookState, NfInetHooks};

/// The size of an interface name buffer, terminating NUL included
/// (`IFNAMSIZ`).
pub const IFNAMSIZ: usize = 16;

/// An interface name, at most 15 bytes, stored inline (`char name[IFNAMSIZ]`).
///
/// Copying one costs 16 bytes and no allocation, so the host can hand it
/// out per packet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IfName {
    buf: [u8; IFNAMSIZ],
    len: u8,
}

impl IfName {
    /// The name `s`; `None` when it is empty, longer than 15 bytes or holds
    /// a NUL, `/` or whitespace (what `dev_valid_name()` refuses).
    pub fn new(s: &str) -> Option<IfName> {
        let b = s.as_bytes();
        if b.is_empty()
            || b.len() >= IFNAMSIZ
            || b.iter()
                .any(|&c| c == 0 || c == b'/' || c.is_ascii_whitespace())
        {
            return None;
        }
        let mut buf = [0u8; IFNAMSIZ];
        buf[..b.len()].copy_from_slice(b);
        Some(IfName {
            buf,
            len: b.len() as u8,
        })
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("?")
    }
}

impl fmt::Debug for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the tables, conntrack and NAT need from the host's IP layer.
///
/// A Rust-only seam: in Linux these are direct calls into `net/ipv4`
/// (`dev_get_by_index()`, `inet_select_addr()`, `nf_send_reset()`,
/// `nf_send_unreach()`); here the `netstack` per-CPU context implements
/// them, so that `netfilter` depends on neither `ipv4` nor `softnet`.
pub trait NetfilterContext {
    /// The current time (virtual in the simulation): conntrack timeouts and
    /// the `limit` match's token bucket run on it.
    fn now(&self) -> Instant;

    /// The name of interface `ifindex`, `None` when there is no such
    /// interface (0 is never one).
    fn dev_name(&self, ifindex: u32) -> Option<IfName>;

    /// The primary address of interface `ifindex` usable as a source towards
    /// the outside (`inet_select_addr(dev, 0, RT_SCOPE_UNIVERSE)`), as
    /// MASQUERADE and REDIRECT need it; `None` when it has none.
    fn inet_select_addr(&self, ifindex: u32) -> Option<Ipv4Addr>;

    /// Sends a TCP RST answering `oldskb` (whose data starts at its IPv4
    /// header), as REJECT `--reject-with tcp-reset` asks.
    ///
    /// Mirrors `nf_send_reset()` in `net/ipv4/netfilter/nf_reject_ipv4.c`.
    fn nf_send_reset(&mut self, oldskb: &SkBuff, hook: NfInetHooks);

    /// Sends an ICMP destination-unreachable with `code` quoting `skb_in`
    /// (data at its IPv4 header), as REJECT's ICMP variants ask.
    ///
    /// Mirrors `nf_send_unreach()` in `net/ipv4/netfilter/nf_reject_ipv4.c`.
    fn nf_send_unreach(&mut self, skb_in: &SkBuff, code: IcmpDestUnreach, hook: NfInetHooks);
}

/// A packet and byte counter pair, updated from any CPU.
///
/// Mirrors `struct xt_counters` (per-CPU in Linux, summed when read).
#[derive(Debug, Default)]
pub struct XtCounters {
    pcnt: AtomicU64,
    bcnt: AtomicU64,
}

impl XtCounters {
    /// Counters starting at `pcnt` packets and `bcnt` bytes.
    pub fn new(pcnt: u64, bcnt: u64) -> XtCounters {
        XtCounters {
            pcnt: AtomicU64::new(pcnt),
            bcnt: AtomicU64::new(bcnt),
        }
    }

    /// Counts one packet of `len` bytes (`ADD_COUNTER`).
    #[inline]
    pub fn add(&self, len: usize) {
        self.pcnt.fetch_add(1, Ordering::Relaxed);
        self.bcnt.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// `(packets, bytes)`.
    pub fn get(&self) -> (u64, u64) {
        (
            self.pcnt.load(Ordering::Relaxed),
            self.bcnt.load(Ordering::Relaxed),
        )
    }

    /// Sets both counters (`iptables -Z` sets zeros).
    pub fn set(&self, pcnt: u64, bcnt: u64) {
        self.pcnt.store(pcnt, Ordering::Relaxed);
        self.bcnt.store(bcnt, Ordering::Relaxed);
    }
}

impl Clone for XtCounters {
    fn clone(&self) -> Self {
        let (p, b) = self.get();
        XtCounters::new(p, b)
    }
}

/// One IPv4 packet as matches see it: the header fields parsed once per
/// table traversal, plus where it is.
///
/// Mirrors `struct xt_action_param` in `include/linux/netfilter/x_tables.h`
/// (`fragoff`, `thoff`, `state`) together with the header pointers matches
/// take with `skb_header_pointer()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtActionParam {
    /// The hook point being traversed.
    pub hook: NfInetHooks,
    /// The input interface (0 when none).
    pub in_ifindex: u32,
    /// The output interface (0 when none).
    pub out_ifindex: u32,
    /// Source address, host order.
    pub saddr: u32,
    /// Destination address, host order.
    pub daddr: u32,
    /// The IP protocol number.
    pub protocol: u8,
    /// Type of service.
    pub tos: u8,
    /// Time to live.
    pub ttl: u8,
    /// IP identification.
    pub id: u16,
    /// The datagram length (`tot_len`), what `-m length` compares.
    pub len: u16,
    /// The fragment offset in 8-byte units (`par->fragoff`); non-zero
    /// fragments have no transport header.
    pub fragoff: u16,
    /// The transport header's offset (`par->thoff`, the IP header length).
    pub thoff: u16,
    /// Whether a transport header with ports (TCP, UDP, UDP-Lite, SCTP,
    /// DCCP) is present in full: the first 4 bytes at least, 20 for TCP.
    pub has_ports: bool,
    /// Source port (or 0).
    pub sport: u16,
    /// Destination port (or 0).
    pub dport: u16,
    /// The TCP flag byte (FIN 0x01 ... CWR 0x80), 0 when not TCP.
    pub tcp_flags: u8,
    /// ICMP type, when `has_icmp`.
    pub icmp_type: u8,
    /// ICMP code, when `has_icmp`.
    pub icmp_code: u8,
    /// Whether an ICMP header (first 2 bytes at least) is present.
    pub has_icmp: bool,
}

impl XtActionParam {
    /// Parses the IPv4 header at the start of `data` and the transport
    /// header after it. `None` when `data` is not a complete IPv4 header
    /// (version 4, IHL ≥ 5, header in the buffer) — the IP layer has
    /// validated packets before any hook, so this only catches misuse.
    pub fn parse(data: &[u8], state: &NfHookState) -> Option<XtActionParam> {
        let vihl = *data.first()?;
        let ihl = usize::from(vihl & 0x0f) * 4;
        if vihl >> 4 != 4 || ihl < 20 || data.len() < ihl {
            return None;
        }
        let be16 = |o: usize| u16::from_be_bytes([data[o], data[o + 1]]);
        let be32 = |o: usize| u32::from_be_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        let tot_len = be16(2);
        let frag = be16(6);
        let fragoff = frag & wire::IP_OFFSET;
        let protocol = data[9];
        // The transport header ends where the datagram ends, not where the
        // buffer does (the buffer may hold padding).
        let end = usize::from(tot_len).clamp(ihl, data.len());
        let l4 = &data[ihl..end];
        let mut p = XtActionParam {
            hook: state.hook,
            in_ifindex: state.in_ifindex,
            out_ifindex: state.out_ifindex,
            saddr: be32(12),
            daddr: be32(16),
            protocol,
            tos: data[1],
            ttl: data[8],
            id: be16(4),
            len: tot_len,
            fragoff,
            thoff: ihl as u16,
            has_ports: false,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            icmp_type: 0,
            icmp_code: 0,
            has_icmp: false,
        };
        if fragoff == 0 {
            match protocol {
                6 if l4.len() >= 20 => {
                    p.has_ports = true;
                    p.sport = u16::from_be_bytes([l4[0], l4[1]]);
                    p.dport = u16::from_be_bytes([l4[2], l4[3]]);
                    p.tcp_flags = l4[13];
                }
                17 | 136 | 132 | 33 if l4.len() >= 4 => {
                    p.has_ports = true;
                    p.sport = u16::from_be_bytes([l4[0], l4[1]]);
                    p.dport = u16::from_be_bytes([l4[2], l4[3]]);
                }
                1 if l4.len() >= 2 => {
                    p.has_icmp = true;
                    p.icmp_type = l4[0];
                    p.icmp_code = l4[1];
                }
                _ => {}
            }
        }
        Some(p)
    }

    /// The source address.
    pub fn src(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.saddr)
    }

    /// The destination address.
    pub fn dst(&self) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.daddr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifname_refuses_what_dev_valid_name_refuses() {
        assert_eq!(IfName::new("eth0").unwrap().as_str(), "eth0");
        assert!(IfName::new("").is_none());
        assert!(IfName::new("0123456789abcdef").is_none());
        assert!(IfName::new("a/b").is_none());
        assert!(IfName::new("a b").is_none());
        assert_eq!(IfName::new("0123456789abcde").unwrap().as_bytes().len(), 15);
    }

    #[test]
    fn parse_reads_ports_only_from_first_fragments() {
        let st = NfHookState::new(NfInetHooks::LocalIn, 1, 0);
        let mut ip = [0u8; 40];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
        ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
        ip[20..22].copy_from_slice(&1234u16.to_be_bytes());
        ip[22..24].copy_from_slice(&22u16.to_be_bytes());
        ip[33] = 0x02;
        let p = XtActionParam::parse(&ip, &st).unwrap();
        assert_eq!(
            (p.sport, p.dport, p.tcp_flags, p.has_ports),
            (1234, 22, 2, true)
        );
        assert_eq!(p.src(), Ipv4Addr::new(198, 18, 0, 1));
        ip[6..8].copy_from_slice(&3u16.to_be_bytes());
        let p = XtActionParam::parse(&ip, &st).unwrap();
        assert_eq!((p.fragoff, p.has_ports, p.dport), (3, false, 0));
        assert!(XtActionParam::parse(&ip[..19], &st).is_none());
        ip[0] = 0x65;
        assert!(XtActionParam::parse(&ip, &st).is_none());
    }
}
