//! The transport protocol table: what IP hands a datagram to once it is
//! for this host, and what a transport hands back.
//!
//! Mirrors `struct net_protocol` (`include/net/protocol.h`),
//! `inet_protos[]` and `inet_add_protocol()`/`inet_del_protocol()` in
//! `net/ipv4/protocol.c`, and the error conversion of `icmp_err_convert[]`
//! (`net/ipv4/icmp.c`).
//!
//! ```text
//!  ip_local_deliver_finish ──▶ inet_protos[iph.protocol].handler(skb)
//!        │                         ├─ Ok(())                 consumed
//!        │                         └─ Err((skb, IcmpError))  IP sends the ICMP error, frees skb
//!        └─ no handler ──▶ ICMP protocol unreachable, InUnknownProtos
//!  icmp_rcv (an error about a datagram we sent) ──▶ inet_protos[inner.protocol].err_handler(info)
//! ```

use std::net::Ipv4Addr;

use netcore::{Errno, SkBuff};
use wire::{IcmpDestUnreach, IcmpMessage, IcmpTimeExceeded};

/// An ICMP error IP should send about a datagram a transport could not
/// take.
///
/// The Rust form of the `icmp_send(skb, type, code, info)` call a Linux
/// transport makes itself (`udp_rcv()` → `icmp_send(ICMP_DEST_UNREACH,
/// ICMP_PORT_UNREACH)`); here the transport returns it and IP sends it
/// (STYLE.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// Destination unreachable with `code` (`ICMP_DEST_UNREACH`); for
    /// [`IcmpDestUnreach::FragNeeded`] use [`IcmpError::FragNeeded`].
    DestUnreach(IcmpDestUnreach),
    /// Fragmentation needed and DF set, with the next-hop MTU
    /// (`ICMP_FRAG_NEEDED`).
    FragNeeded {
        /// The MTU to report.
        mtu: u16,
    },
    /// Time exceeded (`ICMP_TIME_EXCEEDED`).
    TimeExceeded(IcmpTimeExceeded),
    /// Parameter problem at byte `pointer` of the header
    /// (`ICMP_PARAMETERPROB`).
    ParamProb {
        /// The offending octet.
        pointer: u8,
    },
    /// Redirect for the host: `gateway` is the better first hop toward
    /// the datagram's destination (`ICMP_REDIRECT`, `ICMP_REDIR_HOST`).
    Redirect {
        /// The gateway to use.
        gateway: Ipv4Addr,
    },
}

impl IcmpError {
    /// Port unreachable: no socket listens (`ICMP_PORT_UNREACH`).
    pub const PORT_UNREACH: IcmpError = IcmpError::DestUnreach(IcmpDestUnreach::PortUnreach);
    /// Protocol unreachable (`ICMP_PROT_UNREACH`).
    pub const PROT_UNREACH: IcmpError = IcmpError::DestUnreach(IcmpDestUnreach::ProtUnreach);
    /// Host unreachable (`ICMP_HOST_UNREACH`).
    pub const HOST_UNREACH: IcmpError = IcmpError::DestUnreach(IcmpDestUnreach::HostUnreach);
    /// Network unreachable (`ICMP_NET_UNREACH`).
    pub const NET_UNREACH: IcmpError = IcmpError::DestUnreach(IcmpDestUnreach::NetUnreach);

    /// The ICMP message header that carries this error.
    pub fn message(self) -> IcmpMessage {
        match self {
            IcmpError::DestUnreach(code) => IcmpMessage::DstUnreachable {
                code,
                next_hop_mtu: 0,
            },
            IcmpError::FragNeeded { mtu } => IcmpMessage::DstUnreachable {
                code: IcmpDestUnreach::FragNeeded,
                next_hop_mtu: mtu,
            },
            IcmpError::TimeExceeded(code) => IcmpMessage::TimeExceeded { code },
            IcmpError::ParamProb { pointer } => IcmpMessage::ParamProblem { pointer },
            IcmpError::Redirect { gateway } => IcmpMessage::Redirect {
                code: wire::IcmpRedirect::Host,
                gateway,
            },
        }
    }
}

/// A received ICMP error, as a transport's [`NetProtocol::err_handler`]
/// sees it.
///
/// Mirrors the arguments of `net_protocol.err_handler(skb, info)`: the
/// ICMP header (`icmp_hdr(skb)`), `info` (the next-hop MTU of a
/// fragmentation-needed message when `ip_no_pmtu_disc` allows it, the
/// pointer of a parameter problem, the gateway of a redirect as a
/// big-endian `u32`, else 0) and `skb->data`, the quoted
/// datagram: its IP header and at least 8 bytes after it (checked by
/// `icmp_socket_deliver()` before the call).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpErrInfo<'a> {
    /// The ICMP type (3, 4, 5, 11 or 12).
    pub icmp_type: u8,
    /// The ICMP code.
    pub code: u8,
    /// The type-specific value (`info`).
    pub info: u32,
    /// Who sent the ICMP message.
    pub from: Ipv4Addr,
    /// The device it arrived on.
    pub ifindex: u32,
    /// The quoted datagram, from its IP header.
    pub quoted: &'a [u8],
}

impl IcmpErrInfo<'_> {
    /// The quoted header's length (IHL × 4).
    pub fn quoted_header_len(&self) -> usize {
        usize::from(self.quoted.first().map_or(0, |b| b & 0x0f)) * 4
    }

    fn addr_at(&self, at: usize) -> Ipv4Addr {
        self.quoted
            .get(at..at + 4)
            .map_or(Ipv4Addr::UNSPECIFIED, |b| {
                Ipv4Addr::new(b[0], b[1], b[2], b[3])
            })
    }

    /// The source address of the datagram we had sent.
    pub fn saddr(&self) -> Ipv4Addr {
        self.addr_at(12)
    }

    /// Its destination.
    pub fn daddr(&self) -> Ipv4Addr {
        self.addr_at(16)
    }

    /// Its protocol.
    pub fn protocol(&self) -> u8 {
        self.quoted.get(9).copied().unwrap_or(0)
    }

    /// The quoted bytes after its IP header (the transport header's start,
    /// at least 8 bytes).
    pub fn transport(&self) -> &[u8] {
        self.quoted.get(self.quoted_header_len()..).unwrap_or(&[])
    }

    /// The socket error this ICMP error means, and whether it is fatal for
    /// a connection.
    ///
    /// Mirrors `icmp_err_convert[]` (destination unreachable codes) and the
    /// errors `udp_err()`/`tcp_v4_err()` pick for the other types: time
    /// exceeded is `EHOSTUNREACH`, parameter problem `EPROTO`, source
    /// quench none.
    pub fn errno(&self) -> Option<(Errno, bool)> {
        match self.icmp_type {
            3 => Some(match self.code {
                0 | 6 | 9 | 11 => (Errno::NetUnreach, false),
                2 => (Errno::NoProtoOpt, true),
                3 => (Errno::ConnRefused, true),
                4 => (Errno::MsgSize, false),
                5 => (Errno::OpNotSupp, false),
                _ => (Errno::HostUnreach, true),
            }),
            11 => Some((Errno::HostUnreach, false)),
            12 => Some((Errno::Proto, true)),
            _ => None,
        }
    }
}

/// A transport protocol registered with [`Ipv4Net::inet_add_protocol`](crate::Ipv4Net::inet_add_protocol).
///
/// Mirrors `struct net_protocol` (`handler`, `err_handler`). Object-safe
/// and generic over the host context `C`; stored as
/// `Arc<dyn NetProtocol<C>>` in the 256-slot table.
pub trait NetProtocol<C: ?Sized>: Send + Sync {
    /// Takes a datagram for this host.
    ///
    /// Mirrors `net_protocol.handler` (`tcp_v4_rcv`, `udp_rcv`,
    /// `icmp_rcv`). Called from `ip_local_deliver_finish()` on the
    /// receiving CPU after LOCAL_IN, reassembly done: `skb.data()` starts
    /// at the transport header (the IP header is pulled), the network
    /// header is set (read addresses with `skb.network_header()`), and the
    /// transport header is set. Owns `skb`; when nothing wants it, hands it
    /// back with the ICMP error IP must send (port unreachable for UDP).
    /// IP counts `InDelivers` either way, as Linux does.
    ///
    /// # Errors
    ///
    /// `Err((skb, error))`: IP restores the skb to its IP header, sends
    /// `error` about it (subject to `icmp_send()`'s rules and rate limits)
    /// and frees it.
    #[allow(clippy::result_large_err)] // the skb goes back by value (STYLE.md §5)
    fn handler(&self, skb: SkBuff, ctx: &mut C) -> Result<(), (SkBuff, IcmpError)>;

    /// Learns of an ICMP error about a datagram this protocol sent.
    ///
    /// Mirrors `net_protocol.err_handler(skb, info)` (`udp_err`,
    /// `tcp_v4_err`), called from `icmp_socket_deliver()`. The default
    /// ignores it.
    fn err_handler(&self, info: &IcmpErrInfo<'_>, ctx: &mut C) {
        let _ = (info, ctx);
    }

    /// Whether [`NetProtocol::handler`] reads fragments
    /// ([`SkBuff::copy_bits`], [`SkBuff::checksum`]) and so takes a GRO
    /// packet as it is. `false` (the default): IP makes a nonlinear
    /// datagram linear before the handler sees it, so `skb.data()` is the
    /// whole datagram.
    ///
    /// # Deviations from Linux
    /// Every Linux handler copes with paged skbs; here a protocol opts in
    /// (TCP does), as with softnet's `PacketType::accepts_nonlinear`.
    fn accepts_nonlinear(&self) -> bool {
        false
    }

    /// The protocol's name, for traces.
    #[allow(clippy::unnecessary_literal_bound)] // implementors may return a field
    fn name(&self) -> &str {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_kernels_errnos_and_messages() {
        let mut q = [0u8; 28];
        q[0] = 0x45;
        q[9] = 17;
        q[12..16].copy_from_slice(&[198, 18, 0, 1]);
        q[16..20].copy_from_slice(&[198, 18, 0, 2]);
        q[20..22].copy_from_slice(&5353u16.to_be_bytes());
        let info = IcmpErrInfo {
            icmp_type: 3,
            code: 3,
            info: 0,
            from: Ipv4Addr::new(198, 18, 0, 2),
            ifindex: 2,
            quoted: &q,
        };
        assert_eq!(info.errno(), Some((Errno::ConnRefused, true)));
        assert_eq!(info.protocol(), 17);
        assert_eq!(info.saddr(), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(info.daddr(), Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(&info.transport()[..2], &5353u16.to_be_bytes());
        let frag = IcmpErrInfo {
            code: 4,
            info: 1400,
            ..info
        };
        assert_eq!(frag.errno(), Some((Errno::MsgSize, false)));
        assert_eq!(
            IcmpError::FragNeeded { mtu: 1400 }.message(),
            IcmpMessage::DstUnreachable {
                code: IcmpDestUnreach::FragNeeded,
                next_hop_mtu: 1400
            }
        );
        assert_eq!(
            IcmpError::PORT_UNREACH.message(),
            IcmpMessage::DstUnreachable {
                code: IcmpDestUnreach::PortUnreach,
                next_hop_mtu: 0
            }
        );
    }
}
