//! Reports in the formats of the Linux tools, assembled from the layers'
//! own formatters.
//!
//! Mirrors what `ip`, `ethtool`, `tc`, `netstat` and `sysctl` print and
//! the `/proc` files they read: `/proc/interrupts` and `/proc/softirqs`
//! (`irq`), `/proc/net/softnet_stat` (`softnet`), `/proc/net/snmp` and
//! `netstat -s` (`netcore`'s MIBs), `sysctl -a` (`netcore`), `tc -s qdisc`
//! (`qdisc`), `ethtool -S/-g/-c/-l/-i` (`netcore`'s formatters over the
//! driver's `EthtoolOps`), `ip addr`/`ip route`/`ip neigh` (`ipv4`),
//! `/proc/net/udp` (`udp`), `ss -uanp`/`ss -tanpi` (`socket`'s layout of
//! rows from the UDP table and `tcp`'s `inet_diag`).
//!
//! # Deviations from Linux
//!
//! A host has no processes: `ss -p` shows every open socket file as
//! belonging to one process, [`SS_APP_COMM`] with pid [`SS_APP_PID`],
//! with the socket layer's fd.

use core::fmt;
use core::str::FromStr;
use std::net::{Ipv4Addr, SocketAddrV4};

use netcore::{
    EthtoolOps, format_channels, format_coalesce, format_drvinfo, format_ringparam, format_stats,
};

use crate::error::NetstackError;
use crate::host::Host;

/// One report a host can print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// `ip addr show`.
    IpAddr,
    /// `ip route show` (the main table).
    IpRoute,
    /// `ip neigh show`.
    IpNeigh,
    /// `ip tcp_metrics show`.
    IpTcpMetrics,
    /// `ethtool -S DEV`.
    EthtoolStats(String),
    /// `ethtool -g DEV`.
    EthtoolRing(String),
    /// `ethtool -c DEV`.
    EthtoolCoalesce(String),
    /// `ethtool -l DEV`.
    EthtoolChannels(String),
    /// `ethtool -i DEV`.
    EthtoolDriver(String),
    /// `tc -s qdisc show`.
    TcQdisc,
    /// `cat /proc/interrupts`.
    ProcInterrupts,
    /// `cat /proc/softirqs`.
    ProcSoftirqs,
    /// `cat /proc/net/softnet_stat`.
    SoftnetStat,
    /// `cat /proc/net/snmp`.
    ProcNetSnmp,
    /// `netstat -s`.
    NetstatS,
    /// `sysctl -a` (the net.* keys this stack has).
    SysctlA,
    /// `iptables-save` (`-c`: with rule counters).
    IptablesSave {
        /// Whether rule counters are printed (`-c`).
        counters: bool,
    },
    /// `conntrack -L`.
    ConntrackL,
    /// `iptables [-t TABLE] -L -n [-v] [-x] [--line-numbers]`.
    IptablesList {
        /// The table (`-t`, filter by default).
        table: netfilter::IptTableKind,
        /// `-v`, `-x`, `--line-numbers`.
        fmt: netfilter::IptListFormat,
    },
    /// `cat /proc/net/udp`.
    ProcNetUdp,
    /// `ss -uan`, `ss -tan` and their `-p` (processes) and `-i` (TCP
    /// details) forms, e.g. `ss -uanp`, `ss -tanpi`.
    Ss {
        /// TCP (`-t`) or UDP (`-u`).
        tcp: bool,
        /// `-p`.
        processes: bool,
        /// `-i` (TCP only, as `ss` prints no details for UDP).
        info: bool,
    },
}

/// The report names [`Report::from_str`] accepts.
pub const REPORT_NAMES: &str = "\"ip addr\", \"ip route\", \"ip neigh\", \"ip tcp_metrics\", \"ethtool -S DEV\", \
\"ethtool -g DEV\", \"ethtool -c DEV\", \"ethtool -l DEV\", \"ethtool -i DEV\", \"tc -s qdisc\", \
\"/proc/interrupts\", \"/proc/softirqs\", \"/proc/net/softnet_stat\", \"/proc/net/snmp\", \
\"netstat -s\", \"sysctl -a\", \"iptables-save\", \"iptables-save -c\", \"conntrack -L\", \
\"iptables [-t TABLE] -L -n [-v] [-x] [--line-numbers]\", \
\"/proc/net/udp\", \"ss -uan[p]\", \"ss -tan[p][i]\"";

impl FromStr for Report {
    type Err = NetstackError;

    fn from_str(s: &str) -> Result<Report, NetstackError> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let dev = |i: usize| words.get(i).map(|d| (*d).to_owned());
        let r = match words.as_slice() {
            ["ip", "addr" | "a" | "address", ..] => Some(Report::IpAddr),
            ["ip", "route" | "r", ..] => Some(Report::IpRoute),
            ["ip", "neigh" | "n" | "neighbour", ..] => Some(Report::IpNeigh),
            ["ip", "tcp_metrics" | "tcpmetrics", ..] => Some(Report::IpTcpMetrics),
            ["ethtool", "-S", _] => dev(2).map(Report::EthtoolStats),
            ["ethtool", "-g", _] => dev(2).map(Report::EthtoolRing),
            ["ethtool", "-c", _] => dev(2).map(Report::EthtoolCoalesce),
            ["ethtool", "-l", _] => dev(2).map(Report::EthtoolChannels),
            ["ethtool", "-i", _] => dev(2).map(Report::EthtoolDriver),
            ["tc", "-s", "qdisc", ..] | ["tc", "qdisc", ..] => Some(Report::TcQdisc),
            ["/proc/interrupts"] => Some(Report::ProcInterrupts),
            ["/proc/softirqs"] => Some(Report::ProcSoftirqs),
            ["/proc/net/softnet_stat"] => Some(Report::SoftnetStat),
            ["/proc/net/snmp"] => Some(Report::ProcNetSnmp),
            ["netstat", "-s"] => Some(Report::NetstatS),
            ["sysctl", "-a"] => Some(Report::SysctlA),
            ["iptables-save"] => Some(Report::IptablesSave { counters: false }),
            ["iptables-save", "-c"] => Some(Report::IptablesSave { counters: true }),
            ["conntrack", "-L"] => Some(Report::ConntrackL),
            ["iptables", args @ ..] => crate::netfilter::parse_iptables_list(args)
                .map(|(table, fmt)| Report::IptablesList { table, fmt }),
            ["/proc/net/udp"] => Some(Report::ProcNetUdp),
            ["ss", flags] => parse_ss_flags(flags),
            _ => None,
        };
        r.ok_or_else(|| {
            NetstackError::Config(format!("unknown report `{s}`: accepts {REPORT_NAMES}"))
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::IpAddr => f.write_str("ip addr"),
            Report::IpRoute => f.write_str("ip route"),
            Report::IpNeigh => f.write_str("ip neigh"),
            Report::IpTcpMetrics => f.write_str("ip tcp_metrics"),
            Report::EthtoolStats(d) => write!(f, "ethtool -S {d}"),
            Report::EthtoolRing(d) => write!(f, "ethtool -g {d}"),
            Report::EthtoolCoalesce(d) => write!(f, "ethtool -c {d}"),
            Report::EthtoolChannels(d) => write!(f, "ethtool -l {d}"),
            Report::EthtoolDriver(d) => write!(f, "ethtool -i {d}"),
            Report::TcQdisc => f.write_str("tc -s qdisc"),
            Report::ProcInterrupts => f.write_str("/proc/interrupts"),
            Report::ProcSoftirqs => f.write_str("/proc/softirqs"),
            Report::SoftnetStat => f.write_str("/proc/net/softnet_stat"),
            Report::ProcNetSnmp => f.write_str("/proc/net/snmp"),
            Report::NetstatS => f.write_str("netstat -s"),
            Report::SysctlA => f.write_str("sysctl -a"),
            Report::IptablesSave { counters: false } => f.write_str("iptables-save"),
            Report::IptablesSave { counters: true } => f.write_str("iptables-save -c"),
            Report::ConntrackL => f.write_str("conntrack -L"),
            Report::IptablesList { table, fmt } => {
                f.write_str(&crate::netfilter::iptables_list_command(*table, *fmt))
            }
            Report::ProcNetUdp => f.write_str("/proc/net/udp"),
            Report::Ss {
                tcp,
                processes,
                info,
            } => write!(
                f,
                "ss -{}an{}{}",
                if *tcp { 't' } else { 'u' },
                if *processes { "p" } else { "" },
                if *info { "i" } else { "" }
            ),
        }
    }
}

/// `ss`'s flags as one word (`-uanp`, `-tanpi`): `a` and `n` and one of
/// `t`/`u`, with `p` and (for TCP) `i`, in any order.
fn parse_ss_flags(flags: &str) -> Option<Report> {
    let f = flags.strip_prefix('-')?;
    if f.chars().any(|c| !"tuanpi".contains(c)) || !f.contains('a') || !f.contains('n') {
        return None;
    }
    let tcp = match (f.contains('t'), f.contains('u')) {
        (true, false) => true,
        (false, true) => false,
        _ => return None,
    };
    let info = f.contains('i');
    if info && !tcp {
        return None;
    }
    Some(Report::Ss {
        tcp,
        processes: f.contains('p'),
        info,
    })
}

/// The command name `ss -p` shows for a host's applications: the host's
/// sockets all belong to one process (see [`SS_APP_PID`]).
pub const SS_APP_COMM: &str = "app";
/// The pid `ss -p` shows for a host's applications.
pub const SS_APP_PID: u32 = 1;

impl Host {
    /// Prints `report` as the Linux tool would for this host.
    pub fn report(&self, report: &Report) -> Result<String, NetstackError> {
        let s = &self.shared;
        let ethtool = |dev: &str, f: &dyn Fn(&dyn EthtoolOps) -> Result<String, NetstackError>| {
            self.with_ethtool(dev, |ops| f(ops))?
        };
        match report {
            Report::IpAddr => Ok(crate::inet::ip_addr_show(s)),
            Report::IpRoute => Ok(crate::inet::ip_route_show(s)),
            Report::IpNeigh => Ok(crate::inet::ip_neigh_show(s)),
            Report::IpTcpMetrics => {
                let source = |daddr| {
                    let mut fl4 = ipv4::Flowi4::new(daddr, 6);
                    let _ = s.ipv4.with_netns(|n| n.ip_route_output_key(&mut fl4));
                    fl4.saddr
                };
                Ok(s.transports
                    .tcp
                    .stack
                    .tcp_metrics_show(self.clock.now(), source))
            }
            Report::EthtoolStats(d) => ethtool(d, &|ops| {
                Ok(format!(
                    "NIC statistics:\n{}",
                    format_stats(&ops.get_ethtool_stats())
                ))
            }),
            Report::EthtoolRing(d) => ethtool(d, &|ops| {
                Ok(format_ringparam(
                    d,
                    &ops.get_ringparam().map_err(NetstackError::layer)?,
                ))
            }),
            Report::EthtoolCoalesce(d) => ethtool(d, &|ops| {
                Ok(format_coalesce(
                    d,
                    &ops.get_coalesce().map_err(NetstackError::layer)?,
                ))
            }),
            Report::EthtoolChannels(d) => ethtool(d, &|ops| {
                Ok(format_channels(
                    d,
                    &ops.get_channels().map_err(NetstackError::layer)?,
                ))
            }),
            Report::EthtoolDriver(d) => ethtool(d, &|ops| Ok(format_drvinfo(&ops.get_drvinfo()))),
            Report::TcQdisc => self.tc_qdisc_show(),
            Report::ProcInterrupts => Ok(s.irqs.proc_interrupts()),
            Report::ProcSoftirqs => Ok(s.softirqs.proc_softirqs()),
            Report::SoftnetStat => Ok(s.softnet.softnet_stat()),
            Report::ProcNetSnmp => Ok(s.mibs.snapshot().proc_net_snmp()),
            Report::NetstatS => Ok(s.mibs.snapshot().netstat_s()),
            Report::SysctlA => Ok(s.sysctl.list()),
            // Without a loaded ruleset the tables are not registered:
            // iptables-save prints nothing, conntrack -L no entry.
            Report::IptablesSave { counters } => Ok(s
                .netfilter
                .get()
                .map(|nf| nf.iptables_save(*counters))
                .unwrap_or_default()),
            Report::ConntrackL => Ok(s
                .netfilter
                .get()
                .map(|nf| nf.conntrack_list(self.clock.now()))
                .unwrap_or_default()),
            Report::IptablesList { table, fmt } => Ok(self.iptables_list(*table, *fmt)),
            Report::ProcNetUdp => Ok(udp::proc_net_udp(&s.transports.udp)),
            Report::Ss {
                tcp,
                processes,
                info,
            } => {
                let rows = if *tcp { self.ss_tcp() } else { self.ss_udp() };
                Ok(socket::ss_render(
                    &rows,
                    socket::SsOptions {
                        processes: *processes,
                        info: *info,
                    },
                ))
            }
        }
    }

    /// The UDP sockets as `ss -ua` lists them (`udp_diag`): `UNCONN` or
    /// `ESTAB`, `Recv-Q` `sk_rmem_alloc`, `Send-Q` `sk_wmem_alloc`, in the
    /// order of the socket table.
    fn ss_udp(&self) -> Vec<socket::SsRow> {
        let files = self.shared.socket_layer().socket_files();
        self.shared
            .transports
            .udp
            .sockets()
            .iter()
            .map(|sk| {
                let ino = sk.ino();
                socket::SsRow {
                    state: match sk.state() {
                        udp::UdpState::Established => "ESTAB",
                        udp::UdpState::Close => "UNCONN",
                    },
                    recv_q: sk.rmem_alloc() as u64,
                    send_q: sk.wmem_alloc() as u64,
                    local: sk.local_addr(),
                    peer: sk
                        .peer_addr()
                        .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
                    process: files
                        .iter()
                        .find(|f| f.protocol == udp::IPPROTO_UDP && f.ino == ino)
                        .map(|f| socket::ss_process(SS_APP_COMM, SS_APP_PID, f.fd)),
                    info: None,
                }
            })
            .collect()
    }

    /// The TCP sockets as `ss -ta` lists them (`tcp_diag`, from
    /// [`tcp::TcpStack::ss`]): full sockets, then TIME-WAIT ones; the
    /// process is the open file with the same addresses.
    fn ss_tcp(&self) -> Vec<socket::SsRow> {
        let files = self.shared.socket_layer().socket_files();
        let entries = self.shared.transports.tcp.stack.ss(self.clock.now());
        entries
            .into_iter()
            .map(|e| {
                let process = files
                    .iter()
                    .find(|f| {
                        f.protocol == socket::IPPROTO_TCP
                            && f.local == Some(e.local)
                            && f.peer
                                .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
                                == e.peer
                    })
                    .map(|f| socket::ss_process(SS_APP_COMM, SS_APP_PID, f.fd));
                socket::SsRow {
                    state: e.state,
                    recv_q: u64::from(e.recv_q),
                    send_q: u64::from(e.send_q),
                    local: e.local,
                    peer: e.peer,
                    process,
                    info: Some(e.info),
                }
            })
            .collect()
    }

    /// `tc -s qdisc show`: the qdisc of every transmit queue in use of
    /// every device.
    fn tc_qdisc_show(&self) -> Result<String, NetstackError> {
        let mut out = String::new();
        let nics = self.shared.nics().clone();
        for nic in &nics {
            let dev = &nic.netdev;
            let used = self
                .with_ethtool(dev.name(), |ops| {
                    ops.get_channels().map(|c| c.combined_count)
                })?
                .map_err(NetstackError::layer)?
                .max(1) as u16;
            for q in 0..used.min(dev.num_tx_queues()) {
                let text = dev
                    .with_qdisc(q, |qd| qdisc::format_tc_qdisc_show(Some(dev.name()), qd))
                    .map_err(NetstackError::layer)?;
                out.push_str(&text);
                if !text.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        Ok(out)
    }
}
