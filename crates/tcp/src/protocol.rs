//! TCP's entry in the IPv4 protocol table.
//!
//! Mirrors `tcp_protocol` (`struct net_protocol` in `net/ipv4/af_inet.c`)
//! with `.handler = tcp_v4_rcv` and `.err_handler = tcp_v4_err`,
//! registered by `inet_init()` through `inet_add_protocol()`.

use core::net::Ipv4Addr;
use std::sync::Arc;

use ipv4::{
    Flowi4, IcmpErrInfo, IcmpError, InetSock, Ipv4Context, NetProtocol, ip_build_and_send_pkt,
    ip_route_output_key,
};
use netcore::{Errno, SkBuff};

use crate::context::{TcpContext, TcpRoute};
use crate::tcp::TcpStack;
use crate::tcp_ipv4::{TcpIcmpError, tcp_v4_err, tcp_v4_rcv};

/// The TCP handler for `IPPROTO_TCP` in the host's protocol table.
///
/// Mirrors `tcp_protocol` in `net/ipv4/af_inet.c`. The host registers one
/// per namespace: `ipv4.inet_add_protocol(IPPROTO_TCP,
/// Arc::new(TcpProtocol::new(stack)))`; its context type implements
/// [`TcpContext`].
#[derive(Clone, Debug)]
pub struct TcpProtocol {
    /// The host's TCP.
    pub stack: Arc<TcpStack>,
}

impl TcpProtocol {
    /// The handler of `stack`.
    pub fn new(stack: Arc<TcpStack>) -> TcpProtocol {
        TcpProtocol { stack }
    }
}

/// Reads what `tcp_v4_err()` needs from an ICMP error: our address and
/// port, the peer's, the quoted sequence number and the kind of error.
///
/// Mirrors the decoding at the top of `tcp_v4_err()`: destination
/// unreachable (fragmentation needed with its MTU, otherwise the errno of
/// `icmp_err_convert[]`), time exceeded (`EHOSTUNREACH`) and redirects
/// (with their gateway and sender) matter; other types are ignored. `None` when the quoted TCP header is too short.
pub fn tcp_icmp_decode(info: &IcmpErrInfo<'_>) -> Option<(u16, u16, u32, TcpIcmpError)> {
    let th = info.transport();
    if th.len() < 8 {
        return None;
    }
    let sport = u16::from_be_bytes([th[0], th[1]]);
    let dport = u16::from_be_bytes([th[2], th[3]]);
    let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
    let err = match (info.icmp_type, info.code) {
        (3, 4) => TcpIcmpError::FragNeeded(u16::try_from(info.info).unwrap_or(u16::MAX)),
        (3, code) if code <= 15 => {
            TcpIcmpError::Unreachable(info.errno().map_or(Errno::HostUnreach, |e| e.0))
        }
        (11, _) => TcpIcmpError::Unreachable(Errno::HostUnreach),
        (5, code) if code <= 3 => TcpIcmpError::Redirect {
            gateway: core::net::Ipv4Addr::from(info.info),
            from: info.from,
            code,
        },
        _ => TcpIcmpError::Other,
    };
    Some((sport, dport, seq, err))
}

/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;

/// The route lookup of [`TcpContext::ip_route_output`] for a host whose
/// context is an [`Ipv4Context`]: the source address the route picks and
/// the output device's MTU.
///
/// Mirrors `ip_route_connect()` (`ip_route_output_key()` with
/// `flowi4_proto = IPPROTO_TCP`). Errors: those of the route lookup
/// (`EHOSTUNREACH`, `ENETUNREACH`).
pub fn tcp_ip_route_output<C: Ipv4Context>(
    ctx: &C,
    daddr: Ipv4Addr,
    saddr: Option<Ipv4Addr>,
) -> Result<TcpRoute, Errno> {
    let mut fl4 = Flowi4 {
        daddr,
        saddr: saddr.unwrap_or(Ipv4Addr::UNSPECIFIED),
        oif: 0,
        proto: IPPROTO_TCP,
        tos: 0,
        mark: 0,
    };
    let rt = ip_route_output_key(ctx, &mut fl4)?;
    Ok(TcpRoute {
        saddr: fl4.saddr,
        mtu: rt.mtu,
    })
}

/// The transmit of [`TcpContext::ip_queue_xmit`] for a host whose context
/// is an [`Ipv4Context`]: a TCP segment from `saddr` to `daddr` through
/// `ip_build_and_send_pkt()` (route, IP header with DF, LOCAL_OUT,
/// `ip_output`). Consumes `skb`.
///
/// Mirrors `ip_queue_xmit()` as `tcp_transmit_skb()` calls it.
///
/// # Deviations from Linux
///
/// The route is looked up per segment (no `sk_dst_cache` kept in the TCP
/// socket yet).
pub fn tcp_ip_queue_xmit<C: Ipv4Context>(
    ctx: &mut C,
    skb: SkBuff,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    tos: u8,
) -> Result<(), Errno> {
    let sysctl = Arc::clone(ctx.ipv4().sysctl());
    let mut sk = InetSock::new(IPPROTO_TCP, &sysctl);
    sk.saddr = saddr;
    sk.daddr = daddr;
    sk.tos = tos;
    ip_build_and_send_pkt(ctx, skb, &mut sk, saddr, daddr).map(|_| ())
}

impl<C: TcpContext> NetProtocol<C> for TcpProtocol {
    /// Mirrors `tcp_v4_rcv()`: TCP consumes every segment (a segment for
    /// no socket is answered with a RST, never an ICMP error).
    fn handler(&self, skb: SkBuff, ctx: &mut C) -> Result<(), (SkBuff, IcmpError)> {
        tcp_v4_rcv(&self.stack, ctx, skb);
        Ok(())
    }

    /// TCP reads a GRO packet's payload where it lies (the receive queue
    /// keeps it, `recvmsg()` copies from the fragments), so IP hands it
    /// over without making it linear.
    fn accepts_nonlinear(&self) -> bool {
        true
    }

    /// Mirrors `tcp_v4_err()`.
    fn err_handler(&self, info: &IcmpErrInfo<'_>, ctx: &mut C) {
        if let Some((sport, dport, seq, err)) = tcp_icmp_decode(info) {
            tcp_v4_err(
                &self.stack,
                ctx,
                info.saddr(),
                sport,
                info.daddr(),
                dport,
                seq,
                err,
            );
        }
    }

    fn name(&self) -> &'static str {
        "tcp"
    }
}

#[cfg(any(test, feature = "testutils"))]
const _: fn() = || {
    fn assert_impl<T: NetProtocol<crate::testutil::FakeTcpCtx>>() {}
    assert_impl::<TcpProtocol>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn decode_icmp_errors() {
        // A quoted IPv4 header (20 bytes) + 8 bytes of TCP header.
        let mut q = vec![0u8; 28];
        q[0] = 0x45;
        q[9] = 6;
        q[12..16].copy_from_slice(&[198, 18, 0, 1]);
        q[16..20].copy_from_slice(&[198, 18, 0, 2]);
        q[20..22].copy_from_slice(&40000u16.to_be_bytes());
        q[22..24].copy_from_slice(&80u16.to_be_bytes());
        q[24..28].copy_from_slice(&0x0102_0304u32.to_be_bytes());
        let mk = |t, c, info| IcmpErrInfo {
            icmp_type: t,
            code: c,
            info,
            from: Ipv4Addr::new(198, 18, 0, 9),
            ifindex: 2,
            quoted: &q,
        };
        assert_eq!(
            tcp_icmp_decode(&mk(3, 4, 1400)),
            Some((40000, 80, 0x0102_0304, TcpIcmpError::FragNeeded(1400)))
        );
        assert_eq!(
            tcp_icmp_decode(&mk(3, 1, 0)).map(|d| d.3),
            Some(TcpIcmpError::Unreachable(Errno::HostUnreach))
        );
        assert_eq!(
            tcp_icmp_decode(&mk(3, 3, 0)).map(|d| d.3),
            Some(TcpIcmpError::Unreachable(Errno::ConnRefused))
        );
        assert_eq!(
            tcp_icmp_decode(&mk(11, 0, 0)).map(|d| d.3),
            Some(TcpIcmpError::Unreachable(Errno::HostUnreach))
        );
        assert_eq!(
            tcp_icmp_decode(&mk(4, 0, 0)).map(|d| d.3),
            Some(TcpIcmpError::Other)
        );
        let short = IcmpErrInfo {
            quoted: &q[..24],
            ..mk(3, 1, 0)
        };
        assert_eq!(tcp_icmp_decode(&short), None);
    }
}
