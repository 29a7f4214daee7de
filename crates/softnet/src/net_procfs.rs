//! `/proc/net/softnet_stat` and `/proc/net/ptype`.
//!
//! Mirrors `softnet_seq_show()` and `ptype_seq_show()` in
//! `net/core/net-procfs.c`.

use core::fmt::Write as _;

use crate::dev::{Softnet, SoftnetContext};

/// The counters of one CPU's softnet data, as `/proc/net/softnet_stat`
/// prints them.
///
/// Mirrors the fields of `struct softnet_data` that `softnet_seq_show()`
/// reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SoftnetStat {
    /// Packets through `netif_receive_skb_core` (`processed`).
    pub processed: u32,
    /// Packets dropped at the backlog (`dropped`).
    pub dropped: u32,
    /// `net_rx_action` runs that stopped with budget or time spent
    /// (`time_squeeze`).
    pub time_squeeze: u32,
    /// Backlog wake-ups received from other CPUs (`received_rps`).
    pub received_rps: u32,
    /// Flow-limit drops (`flow_limit_count`; no flow limit here: 0).
    pub flow_limit_count: u32,
    /// Packets in `input_pkt_queue`.
    pub input_qlen: u32,
    /// Packets in `process_queue`.
    pub process_qlen: u32,
    /// The CPU.
    pub cpu: u32,
}

impl<C: SoftnetContext> Softnet<C> {
    /// The counters of `cpu`, or `None` past the last CPU.
    pub fn softnet_stat_cpu(&self, cpu: usize) -> Option<SoftnetStat> {
        if cpu >= self.nr_cpus() {
            return None;
        }
        let q = self.backlog_queue(cpu);
        Some(SoftnetStat {
            processed: q.processed.get(),
            dropped: q.dropped.get(),
            time_squeeze: q.time_squeeze.get(),
            received_rps: q.received_rps.get(),
            flow_limit_count: q.flow_limit_count.get(),
            input_qlen: q.input_qlen() as u32,
            process_qlen: q.process_qlen() as u32,
            cpu: cpu as u32,
        })
    }

    /// The text of `/proc/net/softnet_stat`: one line per CPU of fifteen
    /// `%08x` columns — processed, dropped, time_squeeze, five zeros (was
    /// fastroute), zero (was cpu_collision), received_rps,
    /// flow_limit_count, backlog length (input + process queue), the CPU
    /// index, input_pkt_queue length, process_queue length.
    ///
    /// Mirrors `softnet_seq_show()` of Linux 6.x, which appended the last
    /// two columns (6.4) to the thirteen older tools parse.
    #[doc(alias = "softnet_seq_show")]
    pub fn softnet_stat(&self) -> String {
        let mut out = String::new();
        for cpu in 0..self.nr_cpus() {
            let Some(s) = self.softnet_stat_cpu(cpu) else {
                continue;
            };
            let _ = writeln!(
                out,
                "{:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x} {:08x}",
                s.processed,
                s.dropped,
                s.time_squeeze,
                0,
                0,
                0,
                0,
                0,
                0,
                s.received_rps,
                s.flow_limit_count,
                s.input_qlen + s.process_qlen,
                s.cpu,
                s.input_qlen,
                s.process_qlen,
            );
        }
        out
    }

    /// The text of `/proc/net/ptype`: `Type Device      Function`, then one
    /// line per handler (`ALL ` for taps, else the ethertype as `%04x`).
    ///
    /// Mirrors `ptype_seq_show()`.
    #[doc(alias = "ptype_seq_show")]
    pub fn ptype_show(&self) -> String {
        let mut out = String::from("Type Device      Function\n");
        for (ty, dev, func) in self.ptype_lines() {
            match ty {
                None => out.push_str("ALL "),
                Some(t) => {
                    let _ = write!(out, "{t:04x}");
                }
            }
            let _ = writeln!(out, " {dev:<8} {func}");
        }
        out
    }
}
