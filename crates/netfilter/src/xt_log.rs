//! The `LOG` target: one line per packet to the log.
//!
//! Mirrors `net/netfilter/xt_LOG.c` and the IPv4 line format of
//! `nf_log_ip_packet()` in `net/ipv4/netfilter/nf_log_ipv4.c`
//! (`IN=eth0 OUT= SRC=… DST=… LEN=… TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=TCP SPT=… DPT=…`).

use std::fmt::Write as _;

use crate::x_tables::{NetfilterContext, XtActionParam};

/// The default `--log-level`, warning (`LOG_DEFAULT_LEVEL`... syslog 4).
pub const LOG_DEFAULT_LEVEL: u8 = 4;

/// The `LOG` target's options (`struct xt_log_info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XtLogInfo {
    /// Syslog level 0..=7 (`--log-level`).
    pub level: u8,
    /// Text in front of each line (`--log-prefix`, at most 29 bytes).
    pub prefix: String,
}

/// Formats the log line of a packet (`nf_log_ip_packet()` with
/// `dump_ipv4_packet()`).
pub fn nf_log_line<C: NetfilterContext>(
    info: &XtLogInfo,
    par: &XtActionParam,
    mark: u32,
    ctx: &C,
) -> String {
    let name = |i: u32| ctx.dev_name(i).map(|n| n.to_string()).unwrap_or_default();
    let mut s = format!(
        "{}IN={} OUT={} SRC={} DST={} LEN={} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
        info.prefix,
        name(par.in_ifindex),
        name(par.out_ifindex),
        par.src(),
        par.dst(),
        par.len,
        par.tos & 0x1e,
        par.tos & 0xe0,
        par.ttl,
        par.id
    );
    if par.fragoff != 0 {
        let _ = write!(s, "FRAG:{} ", par.fragoff);
    }
    match par.protocol {
        6 if par.has_ports => {
            let _ = write!(s, "PROTO=TCP SPT={} DPT={} ", par.sport, par.dport);
            for (bit, n) in [
                (0x20, "URG"),
                (0x10, "ACK"),
                (0x08, "PSH"),
                (0x04, "RST"),
                (0x02, "SYN"),
                (0x01, "FIN"),
            ] {
                if par.tcp_flags & bit != 0 {
                    let _ = write!(s, "{n} ");
                }
            }
        }
        17 if par.has_ports => {
            let _ = write!(s, "PROTO=UDP SPT={} DPT={} ", par.sport, par.dport);
        }
        1 if par.has_icmp => {
            let _ = write!(
                s,
                "PROTO=ICMP TYPE={} CODE={} ",
                par.icmp_type, par.icmp_code
            );
        }
        p => {
            let _ = write!(s, "PROTO={p} ");
        }
    }
    if mark != 0 {
        let _ = write!(s, "MARK=0x{mark:x} ");
    }
    s.truncate(s.trim_end().len());
    s
}

/// Logs the packet through `tracing` (target `netfilter`) at the level
/// matching `--log-level`; the traversal continues.
///
/// Mirrors `log_tg()`.
pub fn log_tg<C: NetfilterContext>(info: &XtLogInfo, par: &XtActionParam, mark: u32, ctx: &C) {
    let line = nf_log_line(info, par, mark, ctx);
    match info.level {
        0..=3 => tracing::error!(target: "netfilter", "{line}"),
        4 => tracing::warn!(target: "netfilter", "{line}"),
        5 | 6 => tracing::info!(target: "netfilter", "{line}"),
        _ => tracing::debug!(target: "netfilter", "{line}"),
    }
}
