//! Netfilter for IPv4: the hook points, their priorities and verdicts.
//!
//! Mirrors `net/netfilter/core.c`, `net/netfilter/nf_queue.c`,
//! `include/linux/netfilter.h` and `include/uapi/linux/netfilter{,_ipv4}.h`.
//! The IPv4 layer calls [`NF_HOOK`] at its five hook points
//! ([`NfInetHooks`]); plug-ins implementing [`NfHookOps`] are registered at
//! a point and priority with [`NfHooks::nf_register_net_hook`] and decide
//! with an [`NfVerdict`]. The iptables tables ([`XtTable`], [`IpTables`]),
//! connection tracking ([`NfConntrack`]) and NAT are hooks of this kind;
//! what they need from the IP layer comes through [`NetfilterContext`].
//!
//! Protocol code is generic over the per-CPU host context `C` (defined by
//! `netstack`); hooks receive it mutably. The context reaches its host's
//! hooks through [`NfHookContext`].
//!
//! Contents, by the kernel file each mirrors:
//!
//! - `include/uapi/linux/netfilter.h`, `include/linux/netfilter.h`:
//!   [`NfInetHooks`], [`NfVerdict`], [`NfHookState`], the [`NfHookOps`]
//!   trait with its packet handle [`NfSkb`], [`NfHookContext`], [`nf_hook`]
//!   and [`NF_HOOK`].
//! - `include/uapi/linux/netfilter_ipv4.h`: the `NF_IP_PRI_*` priorities.
//! - `net/netfilter/core.c`: [`NfHooks`] (`nf_register_net_hook`,
//!   `nf_unregister_net_hook`), [`NfHookReg`], [`NfHookHandle`],
//!   [`NfHookEntries`], [`nf_hook_slow`], [`NfHookResult`],
//!   [`NfConsumed`] and the per-point [`NfHookStats`].
//! - `net/netfilter/nf_queue.c`: [`NfQueueHandler`], [`NfQueueEntry`],
//!   [`nf_reinject`].
//! - `net/netfilter/x_tables.c`: [`XtActionParam`], [`XtCounters`],
//!   [`IfName`], the host seam [`NetfilterContext`].
//! - `net/ipv4/netfilter/ip_tables.c`, `iptable_*.c`: [`XtTable`],
//!   [`IpTables`], [`IptChain`], [`IptEntry`], [`IptIp`], [`IptIcmp`],
//!   [`XtMatch`], [`XtTarget`], [`nf_nat_ipv4_fn`]; the compiled
//!   classifier (`classifier.rs`, no kernel twin).
//! - `net/netfilter/xt_*.c`, `ipt_REJECT.c`: [`XtTcp`], [`XtUdp`],
//!   [`XtMultiport`], [`XtConntrackMtinfo`], [`XtMarkMtinfo1`],
//!   [`XtMarkTginfo2`], [`XtLengthInfo`], [`XtRateinfo`], [`XtLogInfo`],
//!   [`IptRejectWith`], [`xt_nat_target`], [`nf_nat_redirect_ipv4`].
//! - iptables' `iptables-save`/`iptables-restore`: [`iptables_save`],
//!   [`iptables_restore`], [`parse_rule`], [`ipt_rule_to_string`].
//! - iptables' `iptables -L -n` (`list_entries()`): [`iptables_list`],
//!   [`IptListFormat`].
//! - `net/netfilter/nf_conntrack_core.c`, `nf_conntrack_proto_*.c`:
//!   [`NfConntrack`], [`NfConn`], [`NfConntrackTuple`],
//!   [`IpConntrackInfo`], [`IpConntrackStat`], [`IpCtTcp`],
//!   [`TcpConntrack`].
//! - `net/netfilter/nf_nat_core.c`, `nf_nat_proto.c`,
//!   `nf_nat_masquerade.c`: [`NfNatRange2`], [`NfNatManipType`],
//!   [`nf_nat_ipv4_manip_pkt`], [`nf_nat_masquerade_ipv4`].
//!
//! # Example
//!
//! Two hooks at LOCAL_IN: a mangle hook marks the packet, a filter hook
//! drops marked packets; an unmarked path shows `okfn` running.
//!
//! ```
//! use std::sync::Arc;
//! use netcore::{Errno, PagePool, PagePoolParams, SkBuff};
//! use netfilter::{
//!     NF_HOOK, NF_IP_PRI_FILTER, NF_IP_PRI_MANGLE, NfConsumed, NfHookContext, NfHookReg,
//!     NfHookState, NfHooks, NfInetHooks, NfVerdict,
//! };
//!
//! struct Cpu {
//!     hooks: Arc<NfHooks<Cpu>>,
//!     delivered: usize,
//! }
//! impl NfHookContext for Cpu {
//!     fn nf_hooks(&self) -> &NfHooks<Cpu> {
//!         &self.hooks
//!     }
//! }
//!
//! let hooks = Arc::new(NfHooks::new());
//! // -t mangle -A INPUT -p udp -j MARK --set-mark 1 (byte 9 of the IPv4 header is the protocol)
//! hooks
//!     .nf_register_net_hook(NfHookReg::from_fn(NfInetHooks::LocalIn, NF_IP_PRI_MANGLE, |mut skb, _, _| {
//!         if skb.data().get(9) == Some(&17) {
//!             skb.mark = 1;
//!         }
//!         NfVerdict::Accept
//!     }))
//!     .unwrap();
//! // -t filter -A INPUT -m mark --mark 1 -j DROP
//! hooks
//!     .nf_register_net_hook(NfHookReg::from_fn(NfInetHooks::LocalIn, NF_IP_PRI_FILTER, |skb, _, _| {
//!         if skb.mark == 1 { NfVerdict::DROP } else { NfVerdict::Accept }
//!     }))
//!     .unwrap();
//!
//! let mut cpu = Cpu { hooks: Arc::clone(&hooks), delivered: 0 };
//! let pool = PagePool::new(PagePoolParams::default()).unwrap();
//! let state = NfHookState::new(NfInetHooks::LocalIn, 1, 0);
//! let ip_local_deliver_finish = |cpu: &mut Cpu, skb: SkBuff| cpu.delivered += skb.len();
//!
//! let mut tcp = [0u8; 40];
//! tcp[9] = 6;
//! let skb = SkBuff::from_slice(&pool, 0, &tcp).unwrap();
//! assert_eq!(NF_HOOK(&mut cpu, &state, skb, ip_local_deliver_finish), Ok(()));
//! let mut udp = [0u8; 28];
//! udp[9] = 17;
//! let skb = SkBuff::from_slice(&pool, 0, &udp).unwrap();
//! let r = NF_HOOK(&mut cpu, &state, skb, ip_local_deliver_finish);
//! assert_eq!(r, Err(NfConsumed::Dropped(Errno::Perm)));
//!
//! assert_eq!(cpu.delivered, 40);
//! let st = hooks.stats(NfInetHooks::LocalIn);
//! assert_eq!((st.packets, st.accepted, st.dropped), (2, 1, 1));
//! assert_eq!(pool.stats().inflight(), 0);
//! ```
#![forbid(unsafe_code)]

mod classifier;
mod core;
mod ip_tables;
mod ipt_reject;
mod iptables_list;
mod iptables_save;
mod netfilter;
mod netfilter_ipv4;
mod nf_conntrack_core;
mod nf_conntrack_proto_icmp;
mod nf_conntrack_proto_tcp;
mod nf_conntrack_proto_udp;
mod nf_nat_core;
mod nf_nat_masquerade;
mod nf_queue;
mod x_tables;
mod xt_conntrack;
mod xt_length;
mod xt_limit;
mod xt_log;
mod xt_mark;
mod xt_multiport;
mod xt_nat;
mod xt_tcpudp;

pub use crate::core::{
    MAX_HOOK_COUNT, NfConsumed, NfHookEntries, NfHookHandle, NfHookReg, NfHookResult, NfHookStats,
    NfHooks, nf_hook_slow,
};
pub use crate::netfilter::{
    InvalidHook, NF_HOOK, NF_INET_NUMHOOKS, NFPROTO_IPV4, NfHookContext, NfHookOps, NfHookState,
    NfInetHooks, NfSkb, NfVerdict, nf_hook,
};
pub use crate::netfilter_ipv4::{
    NF_IP_PRI_CONNTRACK, NF_IP_PRI_CONNTRACK_CONFIRM, NF_IP_PRI_CONNTRACK_DEFRAG,
    NF_IP_PRI_CONNTRACK_HELPER, NF_IP_PRI_FILTER, NF_IP_PRI_FIRST, NF_IP_PRI_LAST,
    NF_IP_PRI_MANGLE, NF_IP_PRI_NAT_DST, NF_IP_PRI_NAT_SRC, NF_IP_PRI_RAW,
    NF_IP_PRI_RAW_BEFORE_DEFRAG, NF_IP_PRI_SECURITY, NF_IP_PRI_SELINUX_FIRST,
    NF_IP_PRI_SELINUX_LAST,
};
pub use crate::nf_queue::{NfQueueEntry, NfQueueHandler, nf_reinject};

pub use crate::ip_tables::{
    IPT_F_FRAG, IPT_INV_DSTIP, IPT_INV_FRAG, IPT_INV_PROTO, IPT_INV_SRCIP, IPT_INV_VIA_IN,
    IPT_INV_VIA_OUT, IpTables, IptChain, IptEntry, IptIcmp, IptIface, IptIp, IptPolicy,
    IptTableKind, XT_MAX_JUMP_DEPTH, XtError, XtMatch, XtTable, XtTarget, nf_nat_ipv4_fn,
};
pub use crate::ipt_reject::{IptRejectWith, reject_tg};
pub use crate::iptables_list::{IptListFormat, iptables_list};
pub use crate::iptables_save::{
    RestoreError, ipt_rule_to_string, iptables_restore, iptables_save, iptables_save_table,
    parse_rule,
};
pub use crate::nf_conntrack_core::{
    IpConntrackDir, IpConntrackInfo, IpConntrackStat, NF_CT_EVICTION_RANGE, NF_CT_MAX_SLOTS,
    NF_CT_UNCONFIRMED_TIMEOUT, NFCT_UNTRACKED, NfConn, NfConnProto, NfConntrack, NfConntrackTuple,
    ips, nf_ct_get_info,
};
pub use crate::nf_conntrack_proto_icmp::is_icmp_error;
pub use crate::nf_conntrack_proto_tcp::{
    IP_CT_TCP_FLAG_BE_LIBERAL, IP_CT_TCP_FLAG_CLOSE_INIT, IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED,
    IP_CT_TCP_FLAG_MAXACK_SET, IP_CT_TCP_FLAG_SACK_PERM, IP_CT_TCP_FLAG_WINDOW_SCALE, IpCtTcp,
    IpCtTcpState, NF_CT_TCP_MAX_RETRANS, NF_CT_TCP_TIMEOUT_RETRANS, NF_CT_TCP_TIMEOUT_UNACK,
    TcpConntrack, tcp_error, tcp_new,
};
pub use crate::nf_nat_core::{
    NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PERSISTENT, NF_NAT_RANGE_PROTO_RANDOM,
    NF_NAT_RANGE_PROTO_RANDOM_FULLY, NF_NAT_RANGE_PROTO_SPECIFIED, NfNatManipType, NfNatRange2,
    nf_nat_ipv4_manip_pkt,
};
pub use crate::nf_nat_masquerade::nf_nat_masquerade_ipv4;
pub use crate::x_tables::{IFNAMSIZ, IfName, NetfilterContext, XtActionParam, XtCounters};
pub use crate::xt_conntrack::{
    XT_CONNTRACK_STATE_INVALID, XT_STATE_ESTABLISHED, XT_STATE_NAMES, XT_STATE_NEW,
    XT_STATE_RELATED, XT_STATE_UNTRACKED, XtConntrackMtinfo, xt_state_bit,
};
pub use crate::xt_length::XtLengthInfo;
pub use crate::xt_limit::{
    XT_LIMIT_AVG_DEFAULT, XT_LIMIT_BURST_DEFAULT, XT_LIMIT_SCALE, XtRateinfo,
};
pub use crate::xt_log::{LOG_DEFAULT_LEVEL, XtLogInfo, log_tg, nf_log_line};
pub use crate::xt_mark::{XtMarkMtinfo1, XtMarkTginfo2};
pub use crate::xt_multiport::{XT_MULTI_PORTS, XtMultiport, XtMultiportFlags};
pub use crate::xt_nat::{nf_nat_redirect_ipv4, xt_nat_target};
pub use crate::xt_tcpudp::{
    XT_TCP_INV_DSTPT, XT_TCP_INV_FLAGS, XT_TCP_INV_SRCPT, XtTcp, XtUdp, port_match,
};

/// The README's example runs as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
