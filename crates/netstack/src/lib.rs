//! A userspace TCP/IP stack whose structure is the Linux networking stack,
//! assembled.
//!
//! Mirrors the kernel's networking as a whole: `net_dev_init`, the PCI core
//! probing NICs, `inet_init`, the softirq machinery and ksoftirqd, `/proc`,
//! and the tools that read it (`ip`, `ethtool`, `tc`, `netstat`, `tcpdump`).
//!
//! Contents:
//!
//! - hosts: [`Host`], [`HostBuilder`], [`NicConfig`], [`HostShared`] (the
//!   namespace), [`Nic`]; the per-CPU context [`CpuCtx`] every layer is
//!   generic over, its [`HostTimer`]s, and one CPU's loop [`cpu_run`]
//!   (`cpu.rs`); the driver's device as the core sees it
//!   ([`DriverNetDevice`]).
//! - networks and the simulation runtime: [`Network`] (virtual time,
//!   discrete events), [`Link`].
//! - experiments: [`PacketCounter`]; pcap captures ([`Capture`]).
//! - errors: [`NetstackError`].
#![forbid(unsafe_code)]

mod config;
mod cpu;
mod demo;
mod error;
mod host;
mod inet;
mod netdev;
mod network;
mod ping;
mod ptype;
mod report;
mod scenario;
mod threads;
mod walk;

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
pub use error::NetstackError;
pub use host::{
    Capture, FIRST_MSI_IRQ, FIRST_NIC_IFINDEX, Host, HostBuilder, HostShared, NR_IRQS, Nic,
    NicConfig, default_mac,
};
pub use inet::{RouteSpec, parse_route};
pub use netdev::DriverNetDevice;
pub use network::{AppEvent, DEFAULT_EVENT_BUDGET, Link, Network, PhyEnd, WireStats};
pub use ping::{PING_TIMESTAMP_LEN, PingReply, PingReport, PingSocket, PingTable};
pub use ptype::PacketCounter;
pub use report::{REPORT_NAMES, Report};
pub use scenario::run_scenario;
pub use threads::{DEVICE_IDLE_SLEEP, IDLE_PARK_MAX, ThreadRuntime};
pub use walk::{Stage, Walk, WalkLayer, record_walk};
