//! A userspace TCP/IP stack whose structure is the Linux networking stack,
//! assembled.
//!
//! Mirrors the kernel's networking as a whole: `net_dev_init`, the PCI core
//! probing NICs, `inet_init`, the softirq machinery and ksoftirqd, `/proc`,
//! and the tools that read it (`ip`, `ethtool`, `tc`, `netstat`, `tcpdump`,
//! `ping`).
//!
//! Contents:
//!
//! - hosts (`host.rs`, `inet.rs`): [`Host`], [`HostBuilder`], [`NicConfig`],
//!   [`HostShared`] (the namespace), [`Nic`], [`parse_route`]; the driver's
//!   device as the core sees it ([`DriverNetDevice`], `netdev.rs`).
//! - one CPU (`cpu.rs`): the per-CPU context [`CpuCtx`] every layer is
//!   generic over, its [`HostTimer`]s, and the loop [`cpu_run`].
//! - the simulation runtime (`network.rs`): [`Network`] in virtual time with
//!   a discrete-event loop, [`Link`]s (wires and switches).
//! - the thread runtime (`threads.rs`): [`ThreadRuntime`]; a TAP device as
//!   a NIC's PHY ([`TapPhy`], `tap.rs`).
//! - real hosts (Linux): a host on a TAP device ([`TapHost`],
//!   `serve.rs`) with inetd's services and an HTTP responder ([`Inetd`]),
//!   the HTTP/1.1 pieces (`http.rs`: [`HttpUrl`], [`http_pattern`]) and
//!   the client commands ([`http_get`], [`ping()`], [`udp_exchange`],
//!   `client.rs`); see `docs/hosts.md`.
//! - applications: `ping` ([`PingSocket`], [`PingReport`], `ping.rs`);
//!   sockets (`sockets.rs`): UDP registered at boot ([`Transports`]), the
//!   host's socket layer ([`HostSocketLayer`] over [`HostSockets`]), the
//!   std-like [`UdpSocket`], application code on a CPU
//!   ([`HostShared::app_on`], [`Host::app`], [`Network::app`]); a UDP
//!   echo exchange ([`udp_echo`], `echo.rs`);
//!   experiments: [`PacketCounter`]; captures: [`Capture`].
//! - `netstack plot` (`plot.rs`): the recorded TCP trace ([`TcpTrace`],
//!   [`SentSegment`]) drawn as cwnd and time-sequence graphs ([`run_plot`]).
//! - seeing: reports in the tools' formats ([`Report`], `report.rs`),
//!   packet walks ([`WalkLayer`], [`Walk`], `walk.rs`).
//! - descriptions and scenarios (`config.rs`, `scenario.rs`):
//!   [`NetworkDesc`], [`build_network`], [`run_scenario`].
//! - the demo and walk of the `netstack` command (`demo.rs`): [`run_demo`],
//!   [`run_walk`].
//! - errors: [`NetstackError`].
//!
//! See `docs/runtime.md` and `docs/walk.md`.
#![forbid(unsafe_code)]

#[cfg(target_os = "linux")]
mod client;
mod config;
mod cpu;
mod demo;
mod echo;
mod error;
mod host;
mod http;
mod inet;
mod netdev;
mod netfilter;
mod network;
mod ping;
mod plot;
mod ptype;
mod report;
mod scenario;
#[cfg(target_os = "linux")]
mod serve;
mod sockets;
#[cfg(target_os = "linux")]
mod tap;
mod tcp;
mod threads;
mod walk;

pub use crate::netfilter::{
    HostNetfilter, NF_CT_GC_INTERVAL, NfState, NfTimer, handle_timer as nf_handle_timer,
    nf_iptables_restore,
};
#[cfg(target_os = "linux")]
pub use client::{connect_timeout, http_get, ping, udp_exchange};
pub use config::{
    Built, NetworkDesc, PingSpec, Scenario, build as build_network, line_of, parse_cidr,
    parse_duration, parse_mac, parse_rate,
};
pub use cpu::{
    CPU_RUN_MAX_ROUNDS, CpuCtx, CpuRunStats, HostTimer, ProcessWork, cpu_has_work, cpu_run,
};
pub use demo::{
    DEMO_H1, DEMO_H2, DemoOutcome, DemoWalk, default_pcap_path, demo_network, run_demo, run_walk,
    schedule_ping,
};
pub use echo::{ECHO_TIMEOUT, UdpEchoReport, udp_echo};
pub use error::NetstackError;
pub use host::{
    Capture, FIRST_MSI_IRQ, FIRST_NIC_IFINDEX, Host, HostBuilder, HostShared, NR_IRQS, Nic,
    NicConfig, default_mac,
};
pub use http::{
    BadRequest, HTTP_MAX_BYTES, HTTP_MAX_HEAD, HTTP_PATTERN_PERIOD, HttpGetReport, HttpRequest,
    HttpResponseHead, HttpRoute, HttpUrl, ReadWrite, head_end, http_get_on, http_pattern,
    parse_request, parse_response, response_head, route as http_route, write_pattern,
};
pub use inet::{RouteSpec, parse_route};
pub use netdev::DriverNetDevice;
pub use network::{AppEvent, DEFAULT_EVENT_BUDGET, Link, Network, PhyEnd, WireStats};
pub use ping::{PING_TIMESTAMP_LEN, PingReply, PingReport, PingSocket, PingTable};
pub use plot::{PlotOptions, PlotReport, SentSegment, TcpTrace, TcpTraceLog, run_plot};
pub use ptype::PacketCounter;
pub use report::{REPORT_NAMES, Report, SS_APP_COMM, SS_APP_PID};
pub use scenario::run_scenario;
#[cfg(target_os = "linux")]
pub use serve::{
    INETD_POLL, Inetd, InetdSummary, ServiceStats, TAP_HOST_NAME, TapHost, TapHostConfig,
    chargen_line,
};
pub use sockets::{
    AsHost, CPU_HANDOFF_TIMEOUT, HostSocketLayer, HostSockets, Transports, UdpSocket,
};
#[cfg(target_os = "linux")]
pub use tap::{ETH_ZLEN, TapCapture, TapOffloadStats, TapPhy};
pub use tcp::{
    HostTcp, TcpBulkReport, TcpListener, TcpStream, bulk_pattern, tcp_bulk, tcp_handle_timer,
};
pub use threads::{
    CpuIdle, DEVICE_ACTIVE_WINDOW, DEVICE_IDLE_MAX, DEVICE_IDLE_SLEEP, IDLE_PARK_MAX, ThreadRuntime,
};
pub use walk::{Stage, TcpWalk, Walk, WalkLayer, record_walk, run_tcp_walk};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
