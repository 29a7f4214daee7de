//! Netfilter on a host: the iptables tables, connection tracking and NAT
//! hooked into the host's IPv4 hook points.
//!
//! Mirrors what loading `iptable_raw`, `iptable_mangle`, `iptable_nat`,
//! `iptable_filter` and `nf_conntrack` does in a network namespace
//! (`ipt_register_table()`, `nf_ct_netns_get()` → the conntrack hook ops),
//! then `iptables-restore`; the REJECT helpers of
//! `net/ipv4/netfilter/nf_reject_ipv4.c` (`nf_send_reset()`,
//! `nf_send_unreach()`) sending through the host's IPv4 output; and the
//! conntrack garbage collector (`gc_worker()` in
//! `net/netfilter/nf_conntrack_core.c`) on a host timer.
//!
//! ```text
//!  Host::iptables_restore(text)
//!    first time: NfConntrack::new + register_hooks     (-200 / INT_MAX)
//!                IpTables::new + register_hooks        (raw, mangle, nat, filter)
//!                arm HostTimer::Netfilter(Gc) on CPU 0 (every NF_CT_GC_INTERVAL)
//!    then:       iptables_restore(tables, text)        (all tables or none)
//! ```
//!
//! # Deviations from Linux
//!
//! Conntrack is registered with the first ruleset, whatever the rules use
//! (Linux loads it when a table needs it: NAT, `-m conntrack`, `-m
//! state`). The garbage collector runs every [`NF_CT_GC_INTERVAL`]
//! (`GC_SCAN_INTERVAL_MIN`) instead of adapting its period between 1 and
//! 60 s to how many entries expire. `nf_send_reset` does not verify the
//! offending segment's checksum.

use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{Duration, Instant, SkBuff, TimerContext};
use netfilter::{
    IfName, IpTables, IptListFormat, IptTableKind, NetfilterContext, NfConntrack, NfHookHandle,
    NfInetHooks, iptables_list, iptables_restore, iptables_save,
};
use parking_lot::Mutex;
use wire::{IcmpDestUnreach, TcpFlags, TcpOptions, TcpRepr};

use crate::cpu::{CpuCtx, HostTimer};
use crate::error::NetstackError;
use crate::host::Host;

/// How often the conntrack garbage collector runs
/// (`GC_SCAN_INTERVAL_MIN`, one second).
pub const NF_CT_GC_INTERVAL: Duration = Duration::from_secs(1);

/// Headroom reserved in a RST for the IPv4 and Ethernet headers.
const RST_HEADROOM: usize = 128;

/// A netfilter timer of a host.
///
/// Mirrors the conntrack `gc_work` delayed work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NfTimer {
    /// The conntrack garbage collector (`gc_worker()`).
    Gc,
}

/// A host's loaded netfilter: its four tables and its connection table.
///
/// Mirrors the per-netns pointers `net->ipv4.iptable_*` and
/// `net->ct` of a namespace where the table modules and conntrack are
/// loaded.
pub struct NfState {
    /// `raw`, `mangle`, `nat`, `filter`.
    pub tables: IpTables,
    /// The connection table.
    pub ct: Arc<NfConntrack>,
    /// The registered hooks (kept for as long as the host lives).
    handles: Vec<NfHookHandle>,
}

impl core::fmt::Debug for NfState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NfState")
            .field("ct", &self.ct)
            .field("hooks", &self.handles.len())
            .finish_non_exhaustive()
    }
}

impl NfState {
    /// What `iptables-save` prints (with `[packets:bytes]` on every rule
    /// when `counters`, as `iptables-save -c`).
    pub fn iptables_save(&self, counters: bool) -> String {
        iptables_save(&self.tables, counters)
    }

    /// What `iptables -t TABLE -L -n` prints with the options of `fmt`
    /// (`-v` for the packet and byte counters of each rule and policy).
    pub fn iptables_list(&self, table: IptTableKind, fmt: IptListFormat) -> String {
        iptables_list(self.tables.table(table), fmt)
    }

    /// What `conntrack -L` prints at `now`.
    pub fn conntrack_list(&self, now: Instant) -> String {
        self.ct.list(now)
    }
}

/// Parses the arguments of an `iptables` listing command (after the
/// word `iptables`): `[-t TABLE] -L -n [-v] [-x] [--line-numbers]`, the
/// flags in any order, also combined (`-Lvn`, `-nvL`). `-n` is required:
/// only the numeric form exists (see `netfilter::iptables_list`).
pub(crate) fn parse_iptables_list(args: &[&str]) -> Option<(IptTableKind, IptListFormat)> {
    let mut table = IptTableKind::Filter;
    let mut fmt = IptListFormat::default();
    let (mut list, mut numeric) = (false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "-t" | "--table" => table = IptTableKind::from_name(it.next()?)?,
            "--list" => list = true,
            "--numeric" => numeric = true,
            "--verbose" => fmt.verbose = true,
            "--exact" => fmt.exact = true,
            "--line-numbers" => fmt.line_numbers = true,
            f if f.len() > 1 && f.starts_with('-') && !f.starts_with("--") => {
                for c in f[1..].chars() {
                    match c {
                        'L' => list = true,
                        'n' => numeric = true,
                        'v' => fmt.verbose = true,
                        'x' => fmt.exact = true,
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    (list && numeric).then_some((table, fmt))
}

/// The command line of a listing, in the canonical form
/// [`parse_iptables_list`] reads back: `iptables [-t TABLE] -L -n [-v]
/// [-x] [--line-numbers]`.
pub(crate) fn iptables_list_command(table: IptTableKind, fmt: IptListFormat) -> String {
    let mut s = String::from("iptables");
    if table != IptTableKind::Filter {
        s.push_str(" -t ");
        s.push_str(table.name());
    }
    s.push_str(" -L");
    if fmt.verbose {
        s.push_str(" -v");
    }
    s.push_str(" -n");
    if fmt.exact {
        s.push_str(" -x");
    }
    if fmt.line_numbers {
        s.push_str(" --line-numbers");
    }
    s
}

/// The slot in the host-wide state that holds the loaded netfilter, empty
/// until the first ruleset.
#[derive(Debug, Default)]
pub struct HostNetfilter {
    state: Mutex<Option<Arc<NfState>>>,
}

impl HostNetfilter {
    /// The loaded netfilter, if a ruleset was loaded.
    pub fn get(&self) -> Option<Arc<NfState>> {
        self.state.lock().clone()
    }
}

/// Loads `text` (the `iptables-restore` format) into the host of `ctx`,
/// registering the tables and conntrack first if this is the first
/// ruleset, and arming the garbage collector on this CPU.
///
/// Mirrors `iptables-restore` on a namespace (`do_replace()` per table).
/// All tables of `text` are replaced or none; the error names the line.
pub fn nf_iptables_restore(ctx: &mut CpuCtx, text: &str) -> Result<Arc<NfState>, NetstackError> {
    let host = Arc::clone(&ctx.host);
    let state = {
        let mut slot = host.netfilter.state.lock();
        if let Some(s) = slot.as_ref() {
            Arc::clone(s)
        } else {
            let seed = host.name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            let ct = NfConntrack::new((*host.sysctl).clone(), seed);
            let mut handles = ct
                .register_hooks(&host.nf_hooks)
                .map_err(|e| NetstackError::Config(format!("conntrack hooks: {e}")))?;
            let tables = IpTables::new();
            handles.extend(
                tables
                    .register_hooks(&host.nf_hooks, Some(&ct))
                    .map_err(|e| NetstackError::Config(format!("iptables hooks: {e}")))?,
            );
            let s = Arc::new(NfState {
                tables,
                ct,
                handles,
            });
            *slot = Some(Arc::clone(&s));
            s
        }
    };
    iptables_restore(&state.tables, text, false)
        .map_err(|e| NetstackError::Config(format!("iptables-restore: {e}")))?;
    if TimerContext::<NfTimer>::timer_pending(ctx, NfTimer::Gc).is_none() {
        let at = ctx.clock.now() + NF_CT_GC_INTERVAL;
        ctx.arm_timer(NfTimer::Gc, at);
    }
    Ok(state)
}

/// Runs an expired netfilter timer.
///
/// Mirrors `gc_worker()`: reaps expired connections, then queues itself
/// again.
pub fn handle_timer(ctx: &mut CpuCtx, t: NfTimer) {
    match t {
        NfTimer::Gc => {
            let now = ctx.clock.now();
            if let Some(s) = ctx.host.netfilter.get() {
                let reaped = s.ct.gc(now);
                tracing::trace!(target: "netstack::netfilter", reaped, count = s.ct.count(), "gc_worker");
            }
            ctx.arm_timer(NfTimer::Gc, now + NF_CT_GC_INTERVAL);
        }
    }
}

impl TimerContext<NfTimer> for CpuCtx {
    fn arm_timer(&mut self, id: NfTimer, at: Instant) -> Option<Instant> {
        self.timers.arm(HostTimer::Netfilter(id), at)
    }
    fn cancel_timer(&mut self, id: NfTimer) -> Option<Instant> {
        self.timers.cancel(HostTimer::Netfilter(id))
    }
    fn timer_pending(&self, id: NfTimer) -> Option<Instant> {
        self.timers.pending(HostTimer::Netfilter(id))
    }
    fn timers_complete(&self) -> bool {
        CpuCtx::timers_complete(self)
    }
}

impl Host {
    /// Loads an `iptables-restore` ruleset (the tables and conntrack are
    /// registered with the first one; see the module's deviations).
    /// Returns the host's tables and connection table.
    ///
    /// Errors: the line `iptables-restore` refused, or the host runs on
    /// threads (use [`nf_iptables_restore`] from one of its CPUs).
    pub fn iptables_restore(&mut self, text: &str) -> Result<Arc<NfState>, NetstackError> {
        self.with_cpu(0, |ctx| nf_iptables_restore(ctx, text))?
    }

    /// The host's loaded netfilter, if a ruleset was loaded.
    pub fn netfilter(&self) -> Option<Arc<NfState>> {
        self.shared.netfilter.get()
    }

    /// `iptables -t TABLE -L -n` with the options of `fmt`, e.g.
    /// [`IptListFormat::VERBOSE`] for `iptables -L -v -n`. A host without
    /// a ruleset lists the pristine table: built-in chains, policy ACCEPT,
    /// no rules, zero counters.
    pub fn iptables_list(&self, table: IptTableKind, fmt: IptListFormat) -> String {
        match self.netfilter() {
            Some(nf) => nf.iptables_list(table, fmt),
            None => iptables_list(IpTables::new().table(table), fmt),
        }
    }
}

impl NetfilterContext for CpuCtx {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn dev_name(&self, ifindex: u32) -> Option<IfName> {
        let dev = self.host.softnet.dev_base().dev_get_by_index(ifindex)?;
        IfName::new(dev.name())
    }

    fn inet_select_addr(&self, ifindex: u32) -> Option<Ipv4Addr> {
        self.host.ipv4.with_netns(|ns| {
            ns.devices
                .inet_select_addr(ifindex, Ipv4Addr::UNSPECIFIED, ipv4::RtScope::Universe)
        })
    }

    fn nf_send_reset(&mut self, oldskb: &SkBuff, hook: NfInetHooks) {
        let Some((saddr, daddr, tos, rst)) = nf_reject_ip_tcphdr(oldskb.data()) else {
            return;
        };
        let mut seg = vec![0u8; rst.buffer_len()];
        // The RST goes back: from the old destination to the old source.
        if rst.emit(&mut seg, daddr, saddr).is_err() {
            return;
        }
        let Ok(skb) = SkBuff::from_slice(&self.host.pool, RST_HEADROOM, &seg) else {
            return;
        };
        let mut sk = ipv4::InetSock::new(6, &self.host.sysctl);
        sk.tos = tos;
        sk.pmtudisc = ipv4::IpPmtudisc::Do;
        let r = ipv4::ip_build_and_send_pkt(self, skb, &mut sk, daddr, saddr);
        tracing::trace!(target: "netstack::netfilter", hook = hook.name(), saddr = %daddr, daddr = %saddr, ok = r.is_ok(), "nf_send_reset");
    }

    fn nf_send_unreach(&mut self, skb_in: &SkBuff, code: IcmpDestUnreach, hook: NfInetHooks) {
        let r = ipv4::icmp_send(self, skb_in, ipv4::IcmpError::DestUnreach(code));
        tracing::trace!(target: "netstack::netfilter", hook = hook.name(), ?code, ok = r.is_ok(), "nf_send_unreach");
    }
}

/// The RST answering the TCP segment whose IPv4 datagram is `d`: its
/// addresses, TOS and the RST's header; `None` when no RST is due (not a
/// first fragment, not TCP, truncated, or itself a RST).
///
/// Mirrors `nf_reject_ip_tcphdr_get()` and `nf_reject_ip_tcphdr_put()`.
fn nf_reject_ip_tcphdr(d: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, TcpRepr)> {
    let ihl = usize::from(*d.first()? & 0x0f) * 4;
    let frag = u16::from_be_bytes([*d.get(6)?, *d.get(7)?]);
    if ihl < 20 || frag & 0x1fff != 0 || *d.get(9)? != 6 {
        return None;
    }
    let tot = usize::from(u16::from_be_bytes([*d.get(2)?, *d.get(3)?])).min(d.len());
    let saddr = Ipv4Addr::new(*d.get(12)?, *d.get(13)?, *d.get(14)?, *d.get(15)?);
    let daddr = Ipv4Addr::new(*d.get(16)?, *d.get(17)?, *d.get(18)?, *d.get(19)?);
    let th = d.get(ihl..tot)?;
    let doff = usize::from(*th.get(12)? >> 4) * 4;
    if th.len() < 20 || doff < 20 || doff > th.len() {
        return None;
    }
    let flags = th[13];
    let (fin, syn, rst, ack) = (flags & 0x01, flags & 0x02, flags & 0x04, flags & 0x10);
    if rst != 0 {
        return None;
    }
    let oseq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
    let oack = u32::from_be_bytes([th[8], th[9], th[10], th[11]]);
    let (seq, ack_seq, flags) = if ack != 0 {
        (oack, 0, TcpFlags::RST)
    } else {
        let payload = (th.len() - doff) as u32;
        let ack_seq = oseq
            .wrapping_add(u32::from(syn >> 1))
            .wrapping_add(u32::from(fin))
            .wrapping_add(payload);
        (0, ack_seq, TcpFlags::RST | TcpFlags::ACK)
    };
    let repr = TcpRepr {
        src_port: u16::from_be_bytes([th[2], th[3]]),
        dst_port: u16::from_be_bytes([th[0], th[1]]),
        seq,
        ack: ack_seq,
        flags,
        window: 0,
        urgent: 0,
        options: TcpOptions::default(),
        payload_len: 0,
    };
    Some((saddr, daddr, d[1], repr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(flags: u8, seq: u32, ack: u32, payload: usize) -> Vec<u8> {
        let len = 40 + payload;
        let mut d = vec![0u8; len];
        d[0] = 0x45;
        d[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        d[9] = 6;
        d[12..16].copy_from_slice(&[198, 18, 0, 1]);
        d[16..20].copy_from_slice(&[198, 18, 0, 2]);
        d[20..22].copy_from_slice(&40000u16.to_be_bytes());
        d[22..24].copy_from_slice(&22u16.to_be_bytes());
        d[24..28].copy_from_slice(&seq.to_be_bytes());
        d[28..32].copy_from_slice(&ack.to_be_bytes());
        d[32] = 5 << 4;
        d[33] = flags;
        d
    }

    #[test]
    fn iptables_list_commands_parse_and_print_back() {
        let v = IptListFormat::VERBOSE;
        for (cmd, want) in [
            ("-L -v -n", Some((IptTableKind::Filter, v))),
            ("-nvL", Some((IptTableKind::Filter, v))),
            (
                "-t nat -L -n",
                Some((IptTableKind::Nat, IptListFormat::default())),
            ),
            (
                "-L -n -v -x --line-numbers",
                Some((
                    IptTableKind::Filter,
                    IptListFormat {
                        verbose: true,
                        exact: true,
                        line_numbers: true,
                    },
                )),
            ),
            ("-L -v", None),
            ("-t nosuch -L -n", None),
            ("-L -n -Z", None),
        ] {
            let args: Vec<&str> = cmd.split_whitespace().collect();
            assert_eq!(parse_iptables_list(&args), want, "{cmd}");
            if let Some((t, f)) = want {
                let line = iptables_list_command(t, f);
                let back: Vec<&str> = line.split_whitespace().skip(1).collect();
                assert_eq!(parse_iptables_list(&back), want, "{line}");
            }
        }
        assert_eq!(
            iptables_list_command(IptTableKind::Nat, v),
            "iptables -t nat -L -v -n"
        );
    }

    #[test]
    fn rst_to_a_syn_acks_it_and_to_an_ack_takes_its_number() {
        let (s, d, _, r) = nf_reject_ip_tcphdr(&segment(0x02, 1000, 0, 0)).unwrap();
        assert_eq!(
            (s, d),
            (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2))
        );
        assert_eq!((r.src_port, r.dst_port), (22, 40000));
        assert_eq!(
            (r.seq, r.ack, r.flags),
            (0, 1001, TcpFlags::RST | TcpFlags::ACK)
        );
        let (_, _, _, r) = nf_reject_ip_tcphdr(&segment(0x18, 5, 777, 10)).unwrap();
        assert_eq!((r.seq, r.ack, r.flags), (777, 0, TcpFlags::RST));
        let (_, _, _, r) = nf_reject_ip_tcphdr(&segment(0x01, 5, 0, 10)).unwrap();
        assert_eq!(r.ack, 16);
    }

    #[test]
    fn no_rst_to_a_rst_a_later_fragment_or_a_truncated_segment() {
        assert!(nf_reject_ip_tcphdr(&segment(0x04, 1, 0, 0)).is_none());
        let mut frag = segment(0x02, 1, 0, 0);
        frag[7] = 1;
        assert!(nf_reject_ip_tcphdr(&frag).is_none());
        assert!(nf_reject_ip_tcphdr(&segment(0x02, 1, 0, 0)[..30]).is_none());
        assert!(nf_reject_ip_tcphdr(&[]).is_none());
    }
}
