//! Networks and scenarios described in TOML.
//!
//! No kernel twin: this is the lab's description language. A file lists
//! links (wires and switches, with rate, delay and netem-like
//! impairments), hosts (CPUs, NICs with queues and addresses, routes,
//! sysctls), and a scenario (pings, captures, reports, how long to run).
//! Every error names the line and the problem.
//!
//! ```toml
//! seed = 1
//!
//! [[link]]
//! name = "w0"
//! rate = "10gbit"
//! delay = "5us"
//! loss = 0.0
//!
//! [[host]]
//! name = "h1"
//! cpus = 2
//! routes = ["default via 198.18.0.254"]
//! sysctl = { "net.ipv4.ip_forward" = "0" }
//! [[host.nic]]
//! link = "w0"
//! queues = 2
//! addr = ["198.18.0.1/24"]
//!
//! [[host]]
//! name = "h2"
//! [[host.nic]]
//! link = "w0"
//! addr = ["198.18.0.2/24"]
//!
//! [scenario]
//! duration = "2s"
//! [[scenario.ping]]
//! from = "h1"
//! to = "198.18.0.2"
//! count = 3
//! [[scenario.capture]]
//! host = "h1"
//! dev = "eth0"
//! file = "h1.pcap"
//! [[scenario.report]]
//! host = "h2"
//! show = ["ip addr", "ethtool -S eth0", "netstat -s"]
//! ```

use std::collections::HashMap;
use std::net::Ipv4Addr;

use netcore::Duration;
use nic_hw::LinkConfig;
use serde::Deserialize;
use toml::Spanned;

use crate::error::NetstackError;
use crate::host::{Host, NicConfig};
use crate::network::{Network, PhyEnd};
use crate::report::Report;

/// A whole description: the network and its scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkDesc {
    /// The seed of every random choice.
    #[serde(default = "one")]
    pub seed: u64,
    /// The links.
    #[serde(default, rename = "link")]
    pub links: Vec<LinkDesc>,
    /// The hosts.
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostDesc>,
    /// What to do.
    #[serde(default)]
    pub scenario: ScenarioDesc,
}

fn one() -> u64 {
    1
}

/// A wire or a switch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDesc {
    /// The name hosts' NICs refer to.
    pub name: Spanned<String>,
    /// `wire` (default) or `switch`.
    #[serde(default)]
    pub kind: Option<Spanned<String>>,
    /// Ports of a switch (default: as many as NICs attach).
    pub ports: Option<usize>,
    /// Rate (`10gbit`, `100mbit`, `1500kbit`, `9600bit`).
    pub rate: Option<Spanned<String>>,
    /// One-way delay (`5us`, `10ms`, `1s`).
    pub delay: Option<Spanned<String>>,
    /// Jitter.
    pub jitter: Option<Spanned<String>>,
    /// Loss probability, 0..=1.
    pub loss: Option<f64>,
    /// Duplication probability.
    pub duplicate: Option<f64>,
    /// Reordering probability (with `reorder_delay`).
    pub reorder: Option<f64>,
    /// Extra delay of reordered frames.
    pub reorder_delay: Option<Spanned<String>>,
    /// Corruption probability (one bit flipped).
    pub corrupt: Option<f64>,
    /// The transmit queue bound, in frames.
    pub queue_limit: Option<usize>,
}

/// A host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDesc {
    /// Its name.
    pub name: Spanned<String>,
    /// CPUs (default 1).
    #[serde(default = "one_usize")]
    pub cpus: usize,
    /// NICs, in bus order (`eth0`, `eth1`…).
    #[serde(default, rename = "nic")]
    pub nics: Vec<NicDesc>,
    /// Routes, in `ip route add` syntax.
    #[serde(default)]
    pub routes: Vec<Spanned<String>>,
    /// Sysctls set before the stack starts.
    #[serde(default)]
    pub sysctl: HashMap<String, Spanned<toml::Value>>,
    /// An `iptables-restore` ruleset loaded once the host is up.
    #[serde(default)]
    pub iptables: Option<Spanned<String>>,
}

fn one_usize() -> usize {
    1
}

/// One NIC of a host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicDesc {
    /// The link it is plugged into.
    pub link: Spanned<String>,
    /// Combined channels.
    #[serde(default)]
    pub queues: u32,
    /// Addresses (`198.18.0.1/24`).
    #[serde(default)]
    pub addr: Vec<Spanned<String>>,
    /// The MAC (`02:00:00:00:00:01`).
    pub mac: Option<Spanned<String>>,
    /// Ring size.
    pub ring: Option<u32>,
    /// `rx-usecs`.
    pub rx_usecs: Option<u32>,
    /// `rps_cpus` mask (hex).
    pub rps_cpus: Option<String>,
}

/// What to run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDesc {
    /// How long to run (default: until idle).
    pub duration: Option<Spanned<String>>,
    /// Pings.
    #[serde(default)]
    pub ping: Vec<PingDesc>,
    /// Captures.
    #[serde(default)]
    pub capture: Vec<CaptureDesc>,
    /// Reports printed at the end.
    #[serde(default)]
    pub report: Vec<ReportDesc>,
}

/// `ping -c COUNT -i INTERVAL -s SIZE TO` from a host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingDesc {
    /// The host that pings.
    pub from: Spanned<String>,
    /// The address pinged.
    pub to: Spanned<String>,
    /// Echo requests (default 1).
    #[serde(default = "one_u32")]
    pub count: u32,
    /// Between requests (default `1s`).
    pub interval: Option<Spanned<String>>,
    /// Payload bytes (default 56).
    #[serde(default = "fifty_six")]
    pub size: usize,
    /// When to start (default `0s`).
    pub start: Option<Spanned<String>>,
}

fn one_u32() -> u32 {
    1
}

fn fifty_six() -> usize {
    56
}

/// `tcpdump -i DEV -w FILE` on a host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureDesc {
    /// The host.
    pub host: Spanned<String>,
    /// The device (default `eth0`).
    pub dev: Option<Spanned<String>>,
    /// The pcap file.
    pub file: String,
}

/// Reports of one host.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportDesc {
    /// The host.
    pub host: Spanned<String>,
    /// The reports, as the tools' command lines (`ethtool -S eth0`).
    pub show: Vec<Spanned<String>>,
}

/// The 1-based line of byte offset `at` in `text`.
pub fn line_of(text: &str, at: usize) -> usize {
    text.get(..at.min(text.len())).map_or(0, |t| {
        t.lines().count().max(1) - usize::from(!t.ends_with('\n'))
    }) + 1
}

/// A parse error at the start of `span`.
fn err_at<T>(text: &str, span: &Spanned<T>, problem: impl Into<String>) -> NetstackError {
    NetstackError::Parse {
        line: line_of(text, span.span().start),
        problem: problem.into(),
    }
}

/// Parses a duration: a number with `ns`, `us`, `ms` or `s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration `{s}`: accepts a number with ns, us, ms or s"))?;
    let ns = match unit.trim() {
        "ns" => v,
        "us" => v * 1e3,
        "ms" => v * 1e6,
        "s" => v * 1e9,
        _ => {
            return Err(format!(
                "bad duration `{s}`: accepts a number with ns, us, ms or s"
            ));
        }
    };
    if !ns.is_finite() || ns < 0.0 {
        return Err(format!("bad duration `{s}`: must be positive"));
    }
    Ok(Duration::from_nanos(ns as u64))
}

/// Parses a rate as `tc` writes it: `10gbit`, `100mbit`, `1500kbit`, `9600bit`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let s = s.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad rate `{s}`: accepts a number with bit, kbit, mbit or gbit"))?;
    let mult = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => {
            return Err(format!(
                "bad rate `{s}`: accepts a number with bit, kbit, mbit or gbit"
            ));
        }
    };
    let bps = v * mult;
    if !bps.is_finite() || bps < 1.0 {
        return Err(format!("bad rate `{s}`: must be at least 1bit"));
    }
    Ok(bps as u64)
}

/// Parses `02:00:00:00:00:01`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("bad MAC `{s}`: accepts six hex bytes like 02:00:00:00:00:01");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (m, p) in mac.iter_mut().zip(parts) {
        *m = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

/// Parses `198.18.0.1/24`.
pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad =
        || format!("bad address `{s}`: accepts an IPv4 address with a prefix, like 198.18.0.1/24");
    let (a, p) = s.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let plen: u8 = p.parse().map_err(|_| bad())?;
    if plen > 32 {
        return Err(bad());
    }
    Ok((addr, plen))
}

impl NetworkDesc {
    /// Parses a description; errors name the line and the problem.
    pub fn parse(text: &str) -> Result<NetworkDesc, NetstackError> {
        toml::from_str(text).map_err(|e: toml::de::Error| NetstackError::Parse {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            problem: e.message().trim().to_owned(),
        })
    }
}

/// A built description: the network and the scenario, with every name
/// and value checked.
#[derive(Debug)]
pub struct Built {
    /// The network.
    pub net: Network,
    /// The scenario.
    pub scenario: Scenario,
}

/// A checked scenario.
#[derive(Debug, Default)]
pub struct Scenario {
    /// How long to run; until idle if `None`.
    pub duration: Option<Duration>,
    /// (host, destination, count, interval, size, start).
    pub pings: Vec<PingSpec>,
    /// (host, device, file).
    pub captures: Vec<(String, String, String)>,
    /// (host, reports).
    pub reports: Vec<(String, Vec<Report>)>,
}

/// One checked ping.
#[derive(Clone, Debug, PartialEq)]
pub struct PingSpec {
    /// The host that pings.
    pub from: String,
    /// The address pinged.
    pub to: Ipv4Addr,
    /// Echo requests.
    pub count: u32,
    /// Between requests.
    pub interval: Duration,
    /// Payload bytes.
    pub size: usize,
    /// When the first request goes.
    pub start: Duration,
}

fn link_config(text: &str, l: &LinkDesc) -> Result<LinkConfig, NetstackError> {
    let mut cfg = LinkConfig::new();
    let dur = |d: &Option<Spanned<String>>| -> Result<Option<Duration>, NetstackError> {
        d.as_ref()
            .map(|s| parse_duration(s.get_ref()).map_err(|p| err_at(text, s, p)))
            .transpose()
    };
    if let Some(r) = &l.rate {
        cfg = cfg.rate_bps(parse_rate(r.get_ref()).map_err(|p| err_at(text, r, p))?);
    }
    if let Some(d) = dur(&l.delay)? {
        cfg = cfg.delay(d);
    }
    if let Some(d) = dur(&l.jitter)? {
        cfg = cfg.jitter(d);
    }
    if let Some(p) = l.loss {
        cfg = cfg.loss(p);
    }
    if let Some(p) = l.duplicate {
        cfg = cfg.duplicate(p);
    }
    if let Some(p) = l.reorder {
        cfg = cfg.reorder(
            p,
            dur(&l.reorder_delay)?.unwrap_or(Duration::from_micros(10)),
        );
    }
    if let Some(p) = l.corrupt {
        cfg = cfg.corrupt(p);
    }
    if l.queue_limit.is_some() {
        cfg = cfg.queue_limit(l.queue_limit);
    }
    cfg.validate()
        .map_err(|e| err_at(text, &l.name, format!("link `{}`: {e}", l.name.get_ref())))?;
    Ok(cfg)
}

/// Most ports a switch may have: a Linux bridge's `BR_MAX_PORTS`
/// (`net/bridge/br_private.h`).
const BR_MAX_PORTS: usize = 1 << 10;

/// Builds the network and checks the scenario of a description.
pub fn build(text: &str, desc: NetworkDesc) -> Result<Built, NetstackError> {
    let mut net = Network::new(desc.seed);
    // Links first: each wire has two ends, each switch one per port.
    let mut ends: HashMap<String, std::collections::VecDeque<PhyEnd>> = HashMap::new();
    let attach_counts = {
        let mut c: HashMap<&str, usize> = HashMap::new();
        for h in &desc.hosts {
            for n in &h.nics {
                *c.entry(n.link.get_ref().as_str()).or_default() += 1;
            }
        }
        c
    };
    for l in &desc.links {
        let name = l.name.get_ref();
        if ends.contains_key(name) {
            return Err(err_at(text, &l.name, format!("two links named `{name}`")));
        }
        let cfg = link_config(text, l)?;
        let kind = l.kind.as_ref().map_or("wire", |k| k.get_ref().as_str());
        let e: Vec<PhyEnd> = match kind {
            "wire" => {
                let (a, b) = net.wire(name, cfg)?;
                vec![a, b]
            }
            "switch" => {
                let ports = l
                    .ports
                    .unwrap_or_else(|| attach_counts.get(name.as_str()).copied().unwrap_or(0));
                // A bridge takes at most BR_MAX_PORTS ports; the text must
                // not make the switch allocate what it asks for unchecked.
                if ports > BR_MAX_PORTS {
                    return Err(err_at(
                        text,
                        &l.name,
                        format!("switch `{name}`: ports {ports}: accepts 0..={BR_MAX_PORTS}"),
                    ));
                }
                net.switch(name, ports, &cfg)?
            }
            other => {
                let span = l.kind.as_ref().unwrap_or(&l.name);
                return Err(err_at(
                    text,
                    span,
                    format!("unknown link kind `{other}`: accepts \"wire\" or \"switch\""),
                ));
            }
        };
        ends.insert(name.clone(), e.into());
    }
    for h in desc.hosts {
        let mut b = Host::builder().name(h.name.get_ref()).cpus(h.cpus);
        if h.cpus == 0 || h.cpus > 64 {
            return Err(err_at(
                text,
                &h.name,
                format!("host `{}`: cpus must be 1..=64", h.name.get_ref()),
            ));
        }
        for (i, n) in h.nics.into_iter().enumerate() {
            let link = n.link.get_ref();
            let end = ends
                .get_mut(link)
                .ok_or_else(|| err_at(text, &n.link, format!("no link named `{link}`")))?
                .pop_front()
                .ok_or_else(|| {
                    err_at(text, &n.link, format!("link `{link}` has no free end left"))
                })?;
            let mut nic = NicConfig::new().queues(n.queues).phy(end);
            if let Some(m) = &n.mac {
                nic = nic.mac(parse_mac(m.get_ref()).map_err(|p| err_at(text, m, p))?);
            }
            if let Some(r) = n.ring {
                nic = nic.ring(r);
            }
            if let Some(u) = n.rx_usecs {
                nic = nic.rx_usecs(u);
            }
            if let Some(m) = &n.rps_cpus {
                nic = nic.rps_cpus(m);
            }
            b = b.nic(nic);
            for a in &n.addr {
                parse_cidr(a.get_ref()).map_err(|p| err_at(text, a, p))?;
                b = b.addr_on(i, a.get_ref());
            }
        }
        for r in &h.routes {
            crate::inet::parse_route(r.get_ref()).map_err(|p| err_at(text, r, p))?;
            b = b.route(r.get_ref());
        }
        let mut sysctls: Vec<_> = h.sysctl.iter().collect();
        sysctls.sort_by_key(|(k, _)| k.as_str());
        for (k, v) in sysctls {
            let value = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_integer()
                            .map_or_else(|| x.to_string(), |i| i.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            if let Err(e) = netcore::Sysctl::new().set(k, &value) {
                return Err(err_at(text, v, format!("sysctl {k}: {e}")));
            }
            b = b.sysctl(k, &value);
        }
        net.add_host(b)
            .map_err(|e| err_at(text, &h.name, e.to_string()))?;
        if let Some(rules) = &h.iptables {
            net.host_mut(h.name.get_ref())?
                .iptables_restore(rules.get_ref())
                .map_err(|e| err_at(text, rules, e.to_string()))?;
        }
    }
    let mut sc = Scenario::default();
    let s = desc.scenario;
    if let Some(d) = &s.duration {
        sc.duration = Some(parse_duration(d.get_ref()).map_err(|p| err_at(text, d, p))?);
    }
    let host_exists = |net: &Network, h: &Spanned<String>| -> Result<String, NetstackError> {
        net.host(h.get_ref())
            .map(|_| h.get_ref().clone())
            .map_err(|_| err_at(text, h, format!("no host named `{}`", h.get_ref())))
    };
    for p in &s.ping {
        let from = host_exists(&net, &p.from)?;
        let to: Ipv4Addr = p.to.get_ref().parse().map_err(|_| {
            err_at(
                text,
                &p.to,
                format!("bad address `{}`: accepts an IPv4 address", p.to.get_ref()),
            )
        })?;
        let interval = match &p.interval {
            Some(i) => parse_duration(i.get_ref()).map_err(|e| err_at(text, i, e))?,
            None => Duration::from_secs(1),
        };
        let start = match &p.start {
            Some(i) => parse_duration(i.get_ref()).map_err(|e| err_at(text, i, e))?,
            None => Duration::ZERO,
        };
        if p.size > 65507 {
            return Err(err_at(text, &p.from, "ping size: accepts 0..=65507"));
        }
        sc.pings.push(PingSpec {
            from,
            to,
            count: p.count,
            interval,
            size: p.size,
            start,
        });
    }
    for c in &s.capture {
        let host = host_exists(&net, &c.host)?;
        let dev = c
            .dev
            .as_ref()
            .map_or_else(|| "eth0".to_owned(), |d| d.get_ref().clone());
        if net.host(&host)?.shared().dev(&dev).is_none() {
            let span = c.dev.as_ref().unwrap_or(&c.host);
            return Err(err_at(
                text,
                span,
                format!("host `{host}` has no device `{dev}`"),
            ));
        }
        sc.captures.push((host, dev, c.file.clone()));
    }
    for r in &s.report {
        let host = host_exists(&net, &r.host)?;
        let mut list = Vec::new();
        for w in &r.show {
            let rep: Report = w
                .get_ref()
                .parse()
                .map_err(|e: NetstackError| err_at(text, w, e.to_string()))?;
            list.push(rep);
        }
        sc.reports.push((host, list));
    }
    Ok(Built { net, scenario: sc })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the network_desc fuzz target: `ports = 100000000` built
    /// that many switch ports and ran out of memory.
    #[test]
    fn a_switch_with_more_ports_than_a_bridge_is_refused() {
        let text = "[[link]]\nname = \"sw\"\nkind = \"switch\"\nports = 100000000\n";
        let desc = NetworkDesc::parse(text).unwrap();
        let err = build(text, desc).unwrap_err();
        assert!(
            matches!(&err, NetstackError::Parse { line: 2, problem }
                if problem.contains("ports 100000000: accepts 0..=1024")),
            "{err}"
        );
        let text = "[[link]]\nname = \"sw\"\nkind = \"switch\"\nports = 1024\n";
        build(text, NetworkDesc::parse(text).unwrap()).unwrap();
    }
}
