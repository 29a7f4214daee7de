//! IPv4 on a host: `inet_init`, addresses and routes, and the reports of
//! `ip`.
//!
//! Mirrors `inet_init()` (`net/ipv4/af_inet.c`, done by `ipv4::inet_init`
//! on CPU 0), the `NETDEV_REGISTER`/`NETDEV_UP` notifications that give
//! each device its `in_device` (`inetdev_event()`), and what `ip addr
//! add`, `ip route add` and `ip addr`/`ip route`/`ip neigh` do through
//! rtnetlink.

use std::net::Ipv4Addr;
use std::sync::Arc;

use ipv4::{FibConfig, InIfaddr, Ipv4Context, Ipv4Net, LinkFacts, RouteTable};
use netcore::NetDeviceFlags;

use crate::cpu::CpuCtx;
use crate::error::NetstackError;
use crate::host::HostShared;

impl Ipv4Context for CpuCtx {
    fn ipv4(&self) -> &Arc<Ipv4Net<Self>> {
        &self.host.ipv4
    }

    #[inline]
    fn xmit_dev_cache(&mut self) -> Option<&mut ipv4::XmitDevCache> {
        Some(&mut self.xmit_dev)
    }
}

/// A route in `ip route add` syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination prefix.
    pub dst: Ipv4Addr,
    /// Prefix length.
    pub dst_len: u8,
    /// Gateway (`via`).
    pub via: Option<Ipv4Addr>,
    /// Output device (`dev`).
    pub dev: Option<String>,
    /// Metric (`metric`).
    pub metric: Option<u32>,
}

/// Parses `198.18.1.0/24 via 198.18.0.254 [dev eth0] [metric N]`,
/// `default via GW`, `DST/LEN dev DEV`.
pub fn parse_route(spec: &str) -> Result<RouteSpec, String> {
    let bad = |why: &str| {
        format!(
            "bad route `{spec}`: {why}; accepts `PREFIX/LEN|default [via GW] [dev DEV] [metric N]`"
        )
    };
    let mut words = spec.split_whitespace();
    let dst = words.next().ok_or_else(|| bad("empty"))?;
    let (dst, dst_len) = if dst == "default" {
        (Ipv4Addr::UNSPECIFIED, 0)
    } else {
        let (a, l) = dst.split_once('/').unwrap_or((dst, "32"));
        let a: Ipv4Addr = a.parse().map_err(|_| bad("bad prefix"))?;
        let l: u8 = l.parse().map_err(|_| bad("bad prefix length"))?;
        if l > 32 {
            return Err(bad("prefix length above 32"));
        }
        (a, l)
    };
    let mut r = RouteSpec {
        dst,
        dst_len,
        via: None,
        dev: None,
        metric: None,
    };
    while let Some(w) = words.next() {
        let v = words
            .next()
            .ok_or_else(|| bad("a keyword without its value"))?;
        match w {
            "via" => r.via = Some(v.parse().map_err(|_| bad("bad gateway"))?),
            "dev" => r.dev = Some(v.to_owned()),
            "metric" => r.metric = Some(v.parse().map_err(|_| bad("bad metric"))?),
            _ => return Err(bad("unknown keyword")),
        }
    }
    if r.via.is_none() && r.dev.is_none() {
        return Err(bad("neither `via` nor `dev`"));
    }
    Ok(r)
}

/// Brings IPv4 up on a built host: `inet_init` on CPU 0, an `in_device`
/// for every NIC (up), the addresses, then the routes.
pub(crate) fn inet_setup(
    ctx: &mut CpuCtx,
    addrs: &[(usize, String)],
    routes: &[String],
) -> Result<(), NetstackError> {
    ipv4::inet_init(ctx).map_err(|e| NetstackError::Config(format!("inet_init: {e}")))?;
    crate::sockets::inet_init_transports(ctx)?;
    let host = Arc::clone(&ctx.host);
    let net = &host.ipv4;
    for nic in host.nics().iter() {
        net.inetdev_init(&nic.netdev).map_err(|e| {
            NetstackError::Config(format!("inetdev_init {}: {e}", nic.netdev.name()))
        })?;
        net.with_netns_mut(|n| n.devices.set_up(nic.netdev.ifindex(), true))
            .map_err(NetstackError::layer)?;
    }
    for (i, cidr) in addrs {
        let nic = host
            .nics()
            .get(*i)
            .cloned()
            .ok_or_else(|| NetstackError::Config(format!("address {cidr}: no NIC eth{i}")))?;
        let (a, plen) = crate::config::parse_cidr(cidr).map_err(NetstackError::Config)?;
        let ifa = InIfaddr::new(nic.netdev.ifindex(), a, plen, nic.netdev.name());
        net.with_netns_mut(|n| n.inet_rtm_newaddr(ifa))
            .map_err(|e| NetstackError::Config(format!("ip addr add {cidr}: {e}")))?;
    }
    // NETDEV_UP with the addresses on (`ip addr add`, then `ip link set
    // up`): gratuitous ARP when arp_notify is on (Linux's default is off).
    for nic in host.nics().iter() {
        ipv4::inetdev_event(ctx, nic.netdev.ifindex(), ipv4::NetdevEvent::Up)
            .map_err(NetstackError::layer)?;
    }
    for spec in routes {
        let r = parse_route(spec).map_err(NetstackError::Config)?;
        let mut cfg = FibConfig::new(r.dst, r.dst_len);
        if let Some(gw) = r.via {
            cfg = cfg.via(gw);
        }
        if let Some(d) = &r.dev {
            let dev = host.dev(d).ok_or_else(|| {
                NetstackError::Config(format!("ip route add {spec}: no device `{d}`"))
            })?;
            cfg = cfg.dev(dev.ifindex());
        }
        if let Some(m) = r.metric {
            cfg = cfg.metric(m);
        }
        net.with_netns_mut(|n| n.inet_rtm_newroute(cfg))
            .map_err(|e| NetstackError::Config(format!("ip route add {spec}: {e}")))?;
    }
    Ok(())
}

/// `ip addr show`: every device with IPv4 state, `lo` first.
pub(crate) fn ip_addr_show(s: &HostShared) -> String {
    s.ipv4.with_netns(|n| {
        let mut out = String::new();
        for d in n.devices.iter() {
            let facts = if d.loopback {
                LinkFacts {
                    flags: "LOOPBACK,UP,LOWER_UP".to_owned(),
                    mtu: ipv4::LOOPBACK_MTU,
                    qdisc: "noqueue".to_owned(),
                    state: "UNKNOWN".to_owned(),
                    qlen: 1000,
                    link: "link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00".to_owned(),
                }
            } else if let Some(nic) = s
                .nics()
                .iter()
                .find(|x| x.netdev.ifindex() == d.ifindex)
                .cloned()
            {
                let (flags, mtu, qlen) = nic
                    .netdev
                    .with_device(|dev| (dev.flags(), dev.mtu(), dev.txqueuelen()));
                let mut f = vec!["BROADCAST", "MULTICAST"];
                if flags.contains(NetDeviceFlags::UP) {
                    f.push("UP");
                }
                if flags.contains(NetDeviceFlags::LOWER_UP) {
                    f.push("LOWER_UP");
                }
                let qdisc = if nic.netdev.num_tx_queues() > 1 {
                    "mq".to_owned()
                } else {
                    nic.netdev
                        .with_qdisc(0, |q| q.id().to_owned())
                        .unwrap_or_default()
                };
                let m = nic.netdev.dev_addr();
                LinkFacts {
                    flags: f.join(","),
                    mtu,
                    qdisc,
                    state: if nic.netdev.is_up() { "UP" } else { "DOWN" }.to_owned(),
                    qlen,
                    link: format!(
                        "link/ether {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} brd ff:ff:ff:ff:ff:ff",
                        m[0], m[1], m[2], m[3], m[4], m[5]
                    ),
                }
            } else {
                continue;
            };
            if let Ok(text) = n.devices.ip_addr_show(d.ifindex, &facts) {
                out.push_str(&text);
            }
        }
        out
    })
}

/// `ip route show` (table main).
pub(crate) fn ip_route_show(s: &HostShared) -> String {
    s.ipv4.with_netns(|n| n.ip_route_show(RouteTable::Main))
}

/// `ip neigh show`.
pub(crate) fn ip_neigh_show(s: &HostShared) -> String {
    let names: Vec<(u32, String)> = s
        .nics()
        .iter()
        .map(|n| (n.netdev.ifindex(), n.netdev.name().to_owned()))
        .collect();
    s.ipv4.with_arp_tbl(|t| {
        t.ip_neigh_show(|i| {
            names
                .iter()
                .find(|(x, _)| *x == i)
                .map_or_else(|| i.to_string(), |(_, n)| n.clone())
        })
    })
}
