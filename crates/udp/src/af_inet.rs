//! UDP plugged into IPv4: the `udp_protocol` handler pair and the bridge
//! from [`ipv4::Ipv4Context`] to [`UdpContext`].
//!
//! Mirrors `udp_protocol` (`.handler = udp_rcv, .err_handler = udp_err`)
//! and its `inet_add_protocol(&udp_protocol, IPPROTO_UDP)` in
//! `inet_init()` (`net/ipv4/af_inet.c`), and the IP calls of
//! `udp_sendmsg()`: `ip_route_output_flow()` and `ip_send_skb()`.

use std::net::Ipv4Addr;
use std::sync::Arc;

use ipv4::{IcmpErrInfo, IcmpError, Ipv4Context, NetProtocol, RtnType};
use netcore::{Errno, Instant, NetMibs, PagePool, SkBuff, Sysctl};
use wire::IP_DF;

use crate::context::{Flowi4, RouteInfo, UdpContext};
use crate::udp::{IPPROTO_UDP, UdpTable, udp_err, udp_rcv};

/// UDP's entry in the IPv4 protocol table.
///
/// Mirrors `static const struct net_protocol udp_protocol`: `handler` is
/// [`udp_rcv`] (a datagram no socket wants comes back with
/// [`IcmpError::PORT_UNREACH`]), `err_handler` is [`udp_err`].
#[derive(Debug, Default, Clone, Copy)]
pub struct UdpProtocol;

impl<C: UdpContext> NetProtocol<C> for UdpProtocol {
    fn handler(&self, skb: SkBuff, ctx: &mut C) -> Result<(), (SkBuff, IcmpError)> {
        udp_rcv(ctx, skb).map_err(|skb| (skb, IcmpError::PORT_UNREACH))
    }

    fn err_handler(&self, info: &IcmpErrInfo<'_>, ctx: &mut C) {
        let _ = udp_err(
            ctx,
            info.icmp_type,
            info.code,
            info.info,
            info.from,
            info.quoted,
        );
    }

    #[allow(clippy::unnecessary_literal_bound)] // the trait's signature
    fn name(&self) -> &str {
        "udp"
    }
}

/// Registers UDP with the host's IPv4 layer (protocol 17).
///
/// Mirrors `inet_add_protocol(&udp_protocol, IPPROTO_UDP)` in
/// `inet_init()`. `EBUSY` when protocol 17 is taken.
pub fn udp_add_protocol<C: Ipv4Context + UdpContext>(ctx: &C) -> Result<(), Errno> {
    let prot: Arc<dyn NetProtocol<C>> = Arc::new(UdpProtocol);
    ctx.ipv4().inet_add_protocol(prot, IPPROTO_UDP)
}

/// What a host context adds to [`Ipv4Context`] for UDP: the socket table,
/// its CPU number readable through `&self`, and randomness. With it, the
/// context is a [`UdpContext`] whose route lookup and output are
/// `ipv4`'s ([`ipv4::ip_route_output_key`], [`ipv4::ip_build_and_send_pkt`]).
pub trait UdpNetContext: Ipv4Context {
    /// The host's UDP table.
    fn udp_table(&self) -> &UdpTable;
    /// The CPU this context runs on.
    fn cpu_id(&self) -> usize;
    /// A random 32-bit number.
    fn prandom_u32(&mut self) -> u32;
    /// This CPU's receive lookup cache ([`UdpContext::udp_rcv_cache`]).
    fn udp_rcv_cache(&mut self) -> Option<&mut crate::UdpRcvCache> {
        None
    }
}

/// The CPU clock, through the supertrait of [`Ipv4Context`] (UDP does not
/// name `softnet`).
fn ipv4_now<T: Ipv4Context>(ctx: &T) -> Instant {
    ctx.now()
}

impl<C: UdpNetContext> UdpContext for C {
    fn udp_table(&self) -> &UdpTable {
        UdpNetContext::udp_table(self)
    }

    fn mibs(&self) -> &NetMibs {
        self.ipv4().mibs()
    }

    fn cpu(&self) -> usize {
        self.cpu_id()
    }

    fn sysctl(&self) -> &Sysctl {
        self.ipv4().sysctl()
    }

    fn page_pool(&self) -> &PagePool {
        self.ipv4().pool()
    }

    fn now(&self) -> Instant {
        ipv4_now(self)
    }

    fn prandom_u32(&mut self) -> u32 {
        UdpNetContext::prandom_u32(self)
    }

    fn udp_rcv_cache(&mut self) -> Option<&mut crate::UdpRcvCache> {
        UdpNetContext::udp_rcv_cache(self)
    }

    fn inet_addr_valid_or_nonlocal(&self, addr: Ipv4Addr) -> bool {
        self.ipv4().inet_addr_valid_or_nonlocal(addr)
    }

    fn ip_route_output(&mut self, fl: &Flowi4) -> Result<RouteInfo, Errno> {
        let mut fl4 = ipv4::Flowi4 {
            daddr: fl.daddr,
            saddr: fl.saddr,
            oif: fl.oif,
            proto: fl.proto,
            tos: fl.tos,
            mark: fl.mark,
        };
        let rt = ipv4::ip_route_output_key(self, &mut fl4)?;
        Ok(RouteInfo {
            saddr: fl4.saddr,
            // dst_mtu(): the route carries its device's MTU.
            mtu: rt.mtu,
            broadcast: rt.rt_type == RtnType::Broadcast,
            // `rt->dst.dev->features`, read when the route is looked up
            // (Linux reads it at every send; a socket here keeps a route
            // until the routes or the device table change, so an
            // `ethtool -K tx off` reaches the sockets that look up again,
            // and the igb model sums a CHECKSUM_PARTIAL datagram anyway).
            csum_offload: rt.rt_type != RtnType::Local && self.ipv4().dev_ip_csum_offload(rt.oif),
            dst: Some(rt),
        })
    }

    fn ip_rt_redirect(&mut self, daddr: Ipv4Addr, old_gw: Ipv4Addr, new_gw: Ipv4Addr, code: u8) {
        let now = self.now();
        self.ipv4()
            .ip_rt_do_redirect(daddr, old_gw, new_gw, code, now);
    }

    fn ip_rt_update_pmtu(&mut self, daddr: Ipv4Addr, mtu: u32) {
        let now = self.now();
        self.ipv4().ip_rt_update_pmtu(daddr, mtu, now);
    }

    fn rt_genid(&self) -> u64 {
        self.ipv4().rt_genid_at(|| self.now())
    }

    #[inline]
    fn dst_neigh_refresh(&mut self, rt: &mut RouteInfo, daddr: Ipv4Addr) -> bool {
        match rt.dst.as_mut() {
            Some(dst) => ipv4::rt_neigh_refresh(self.ipv4(), dst, daddr),
            None => false,
        }
    }

    fn ip_send_skb(
        &mut self,
        mut skb: SkBuff,
        fl: &Flowi4,
        rt: &RouteInfo,
        df: bool,
        id: Option<u16>,
    ) -> Result<(), Errno> {
        let Some(dst) = rt.dst else {
            // No route object: let IP route and build the header itself.
            let mut sk = ipv4::InetSock::new(IPPROTO_UDP, self.ipv4().sysctl());
            sk.saddr = fl.saddr;
            sk.tos = fl.tos;
            sk.mark = fl.mark;
            sk.bound_dev_if = fl.oif;
            return ipv4::ip_build_and_send_pkt(self, skb, &mut sk, fl.saddr, fl.daddr).map(|_| ());
        };
        let sysctl = self.ipv4().sysctl();
        // IP_PMTUDISC_WANT (DONT with ip_no_pmtu_disc): DF when it fits.
        let df = df && sysctl.get_int(Sysctl::IP_NO_PMTU_DISC) == 0;
        let ttl = if dst.rt_type == RtnType::Multicast {
            UDP_MC_TTL
        } else {
            u8::try_from(sysctl.get_int(Sysctl::IP_DEFAULT_TTL)).unwrap_or(64)
        };
        let id = match id {
            Some(id) => id,
            None if df => 0,
            None => {
                let now = ipv4_now(self);
                self.ipv4()
                    .ip_select_ident(fl.daddr, fl.saddr, IPPROTO_UDP, 1, now)
            }
        };
        ip_make_skb_header(&mut skb, fl, ttl, id, df)?;
        ipv4::ip_local_out(self, skb, &dst)
    }
}

/// `mc_ttl`: the TTL of multicast datagrams (`IP_MULTICAST_TTL`, 1).
const UDP_MC_TTL: u8 = 1;

/// Pushes the 20-byte IPv4 header of a datagram UDP built; `ip_local_out`
/// fills in the total length and the header checksum.
///
/// Mirrors the header fill of `__ip_make_skb()` (`net/ipv4/ip_output.c`):
/// version and IHL, TOS, DF, TTL, protocol, addresses, the id from
/// `ip_select_ident_segs()`; `skb->mark` from the socket.
fn ip_make_skb_header(
    skb: &mut SkBuff,
    fl: &Flowi4,
    ttl: u8,
    id: u16,
    df: bool,
) -> Result<(), Errno> {
    let h = skb.push(20).map_err(|_| Errno::NoBufs)?;
    h[0] = 0x45;
    h[1] = fl.tos;
    h[2..4].fill(0);
    h[4..6].copy_from_slice(&id.to_be_bytes());
    h[6..8].copy_from_slice(&(if df { IP_DF } else { 0u16 }).to_be_bytes());
    h[8] = ttl;
    h[9] = IPPROTO_UDP;
    h[10..12].fill(0);
    h[12..16].copy_from_slice(&fl.saddr.octets());
    h[16..20].copy_from_slice(&fl.daddr.octets());
    skb.reset_network_header();
    skb.mark = fl.mark;
    Ok(())
}
