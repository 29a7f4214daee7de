//! The sysctl registry: the stack's knobs under their Linux names, with the
//! defaults of Linux 6.18 (HZ=1000).
//!
//! Mirrors `kernel/sysctl.c` (`proc_dointvec_minmax()` and friends) with
//! the tables of `net/core/sysctl_net_core.c`, `net/ipv4/sysctl_net_ipv4.c`,
//! `net/ipv4/devinet.c`, `net/core/neighbour.c` and
//! `net/netfilter/nf_conntrack_standalone.c`.
//!
//! ```text
//!  "net.core.netdev_budget" --set("600")--> parse + validate --> AtomicI64
//!  Sysctl::NETDEV_BUDGET -------get_int()--------------------> one Relaxed load
//! ```
//!
//! A [`Sysctl`] is one host's (one network namespace's) registry. Clones
//! share it, so a `set` made through one clone is seen by all. Hot paths
//! read integers through typed keys ([`IntKey`], [`VecKey`], [`RangeKey`]):
//! one relaxed atomic load, no string hashing and no lock. Text values
//! (`tcp_congestion_control`) sit behind a read-write lock.
//!
//! # Deviations from Linux
//! - Some keys are accepted but change nothing, because what they tune is
//!   not built here (busy polling, RFS, ECN, Fast Open,
//!   PLPMTUD, ICMP redirects, …) or is obsolete in Linux too
//!   (`tcp_adv_win_scale`, `ipfrag_low_thresh`); the crate's README lists
//!   them with the reason for each.
//! - Values Linux computes from the machine's memory at boot are fixed
//!   here to those of a 4-CPU host with 8 GiB of RAM: `tcp_mem`, `udp_mem`
//!   (`nr_free_buffer_pages()`), `tcp_max_tw_buckets`, `tcp_max_orphans`
//!   and `tcp_max_syn_backlog` (from the established-hash size: Linux
//!   computes `max(128, ehash/128)`; we keep 2048, the value the
//!   architecture brief fixes), `nf_conntrack_max` (the hash size, 262144
//!   on hosts with 4 GiB or more) and `fs.file-max` (10% of memory in KiB).
//! - `rp_filter` defaults to 0 as in the kernel; distributions set 2 via
//!   systemd's `50-default.conf`, which netstack does not apply.
//! - Writes must give every element of a vector; Linux accepts a prefix.
//! - Vector writes are element by element, so a reader racing a writer may
//!   see a mix of old and new elements (as in Linux, which uses
//!   `WRITE_ONCE` per element). The port range is one atomic word, as
//!   Linux packs it since 6.7.

use core::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::RwLock;

const INT_MAX: i64 = i32::MAX as i64;
const UINT_MAX: i64 = u32::MAX as i64;
const LONG_MAX: i64 = i64::MAX;

/// The default of `net.core.mem_pcpu_rsv`: 1 MiB in 4 KiB pages, the
/// protocol memory a CPU may reserve before it updates the protocol's
/// global `memory_allocated`. Mirrors `SK_MEMORY_PCPU_RESERVE`
/// (`1 << (20 - PAGE_SHIFT)`).
pub const SK_MEMORY_PCPU_RESERVE: i64 = 1 << (20 - 12);

/// Congestion controls built into netstack. Mirrors what
/// `tcp_available_congestion_control` lists.
const CONGESTION_CONTROLS: &[&str] = &["reno", "cubic"];
/// Qdiscs `default_qdisc` may name (those that need no parameters).
const DEFAULT_QDISCS: &[&str] = &["pfifo_fast", "pfifo", "bfifo", "fq_codel"];

/// What a key accepts.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// An integer in `min..=max` (`proc_dointvec_minmax`).
    Int { min: i64, max: i64 },
    /// `n` integers, each in `min..=max`, printed tab-separated.
    Vec { n: usize, min: i64, max: i64 },
    /// Two integers `lo hi` with `min <= lo <= hi <= max`
    /// (`ipv4_local_port_range`).
    Range { min: i64, max: i64 },
    /// One word from `allowed`.
    Word { allowed: &'static [&'static str] },
    /// A space-separated list of words from `allowed`.
    Words { allowed: &'static [&'static str] },
    /// Read-only text.
    ReadOnly,
}

#[derive(Clone, Copy, Debug)]
enum Def {
    Int(i64),
    Ints(&'static [i64]),
    Text(&'static str),
}

struct Spec {
    name: &'static str,
    kind: Kind,
    default: Def,
}

/// A typed key for an integer sysctl (including 0/1 booleans).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntKey(u16);
/// A typed key for a vector sysctl of three integers (`tcp_rmem`, `tcp_mem`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VecKey(u16);
/// A typed key for a pair `lo hi` (`ip_local_port_range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RangeKey(u16);
/// A typed key for a text sysctl (`tcp_congestion_control`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StrKey(u16);

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const BOOL: Kind = Kind::Int { min: 0, max: 1 };
const POS: Kind = Kind::Int {
    min: 0,
    max: INT_MAX,
};
const ANY: Kind = Kind::Int {
    min: i32::MIN as i64,
    max: INT_MAX,
};

macro_rules! sysctls {
    ($( $konst:ident : $kty:ident = $name:literal, $kind:expr, $def:expr; )*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[repr(u16)]
        enum Idx { $($konst,)* }

        impl Sysctl {
            $(
                #[doc = concat!("`", $name, "`.")]
                pub const $konst: $kty = $kty(Idx::$konst as u16);
            )*
        }

        static SPECS: &[Spec] = &[ $( Spec { name: $name, kind: $kind, default: $def }, )* ];
    };
}

sysctls! {
    // fs
    FS_FILE_MAX: IntKey = "fs.file-max", int(0, LONG_MAX), Def::Int(838_860);
    FS_NR_OPEN: IntKey = "fs.nr_open", int(64, INT_MAX), Def::Int(1_048_576);
    // net.core (net/core/sysctl_net_core.c, net/core/dev.c)
    BUSY_POLL: IntKey = "net.core.busy_poll", POS, Def::Int(0);
    BUSY_READ: IntKey = "net.core.busy_read", POS, Def::Int(0);
    DEFAULT_QDISC: StrKey = "net.core.default_qdisc", Kind::Word { allowed: DEFAULT_QDISCS }, Def::Text("pfifo_fast");
    DEV_WEIGHT: IntKey = "net.core.dev_weight", int(1, INT_MAX), Def::Int(64);
    DEV_WEIGHT_RX_BIAS: IntKey = "net.core.dev_weight_rx_bias", int(1, INT_MAX), Def::Int(1);
    DEV_WEIGHT_TX_BIAS: IntKey = "net.core.dev_weight_tx_bias", int(1, INT_MAX), Def::Int(1);
    FLOW_LIMIT_TABLE_LEN: IntKey = "net.core.flow_limit_table_len", POS, Def::Int(4096);
    GRO_NORMAL_BATCH: IntKey = "net.core.gro_normal_batch", int(1, INT_MAX), Def::Int(8);
    MAX_SKB_FRAGS: IntKey = "net.core.max_skb_frags", int(1, 17), Def::Int(17);
    MEM_PCPU_RSV: IntKey = "net.core.mem_pcpu_rsv", POS, Def::Int(SK_MEMORY_PCPU_RESERVE);
    MESSAGE_BURST: IntKey = "net.core.message_burst", POS, Def::Int(10);
    MESSAGE_COST: IntKey = "net.core.message_cost", POS, Def::Int(5);
    NETDEV_BUDGET: IntKey = "net.core.netdev_budget", POS, Def::Int(300);
    NETDEV_BUDGET_USECS: IntKey = "net.core.netdev_budget_usecs", POS, Def::Int(2000);
    NETDEV_MAX_BACKLOG: IntKey = "net.core.netdev_max_backlog", POS, Def::Int(1000);
    NETDEV_TSTAMP_PREQUEUE: IntKey = "net.core.netdev_tstamp_prequeue", BOOL, Def::Int(1);
    NETDEV_UNREGISTER_TIMEOUT_SECS: IntKey = "net.core.netdev_unregister_timeout_secs", int(1, 3600), Def::Int(10);
    OPTMEM_MAX: IntKey = "net.core.optmem_max", POS, Def::Int(131_072);
    RMEM_DEFAULT: IntKey = "net.core.rmem_default", int(256, INT_MAX), Def::Int(212_992);
    RMEM_MAX: IntKey = "net.core.rmem_max", int(256, INT_MAX), Def::Int(212_992);
    RPS_SOCK_FLOW_ENTRIES: IntKey = "net.core.rps_sock_flow_entries", POS, Def::Int(0);
    SOMAXCONN: IntKey = "net.core.somaxconn", POS, Def::Int(4096);
    TSTAMP_ALLOW_DATA: IntKey = "net.core.tstamp_allow_data", BOOL, Def::Int(1);
    TXREHASH: IntKey = "net.core.txrehash", BOOL, Def::Int(1);
    WMEM_DEFAULT: IntKey = "net.core.wmem_default", int(4608, INT_MAX), Def::Int(212_992);
    WMEM_MAX: IntKey = "net.core.wmem_max", int(4608, INT_MAX), Def::Int(212_992);
    // net.ipv4.conf.{all,default} (net/ipv4/devinet.c ipv4_devconf)
    CONF_ALL_ACCEPT_LOCAL: IntKey = "net.ipv4.conf.all.accept_local", BOOL, Def::Int(0);
    CONF_ALL_ACCEPT_REDIRECTS: IntKey = "net.ipv4.conf.all.accept_redirects", BOOL, Def::Int(1);
    CONF_ALL_ARP_ANNOUNCE: IntKey = "net.ipv4.conf.all.arp_announce", int(0, 2), Def::Int(0);
    CONF_ALL_ARP_FILTER: IntKey = "net.ipv4.conf.all.arp_filter", BOOL, Def::Int(0);
    CONF_ALL_ARP_IGNORE: IntKey = "net.ipv4.conf.all.arp_ignore", int(0, 8), Def::Int(0);
    CONF_ALL_ARP_NOTIFY: IntKey = "net.ipv4.conf.all.arp_notify", BOOL, Def::Int(0);
    CONF_ALL_FORWARDING: IntKey = "net.ipv4.conf.all.forwarding", BOOL, Def::Int(0);
    CONF_ALL_LOG_MARTIANS: IntKey = "net.ipv4.conf.all.log_martians", BOOL, Def::Int(0);
    CONF_ALL_RP_FILTER: IntKey = "net.ipv4.conf.all.rp_filter", int(0, 2), Def::Int(0);
    CONF_ALL_SEND_REDIRECTS: IntKey = "net.ipv4.conf.all.send_redirects", BOOL, Def::Int(1);
    CONF_DEFAULT_ACCEPT_LOCAL: IntKey = "net.ipv4.conf.default.accept_local", BOOL, Def::Int(0);
    CONF_DEFAULT_ACCEPT_REDIRECTS: IntKey = "net.ipv4.conf.default.accept_redirects", BOOL, Def::Int(1);
    CONF_DEFAULT_ARP_ANNOUNCE: IntKey = "net.ipv4.conf.default.arp_announce", int(0, 2), Def::Int(0);
    CONF_DEFAULT_ARP_FILTER: IntKey = "net.ipv4.conf.default.arp_filter", BOOL, Def::Int(0);
    CONF_DEFAULT_ARP_IGNORE: IntKey = "net.ipv4.conf.default.arp_ignore", int(0, 8), Def::Int(0);
    CONF_DEFAULT_ARP_NOTIFY: IntKey = "net.ipv4.conf.default.arp_notify", BOOL, Def::Int(0);
    CONF_DEFAULT_FORWARDING: IntKey = "net.ipv4.conf.default.forwarding", BOOL, Def::Int(0);
    CONF_DEFAULT_LOG_MARTIANS: IntKey = "net.ipv4.conf.default.log_martians", BOOL, Def::Int(0);
    CONF_DEFAULT_RP_FILTER: IntKey = "net.ipv4.conf.default.rp_filter", int(0, 2), Def::Int(0);
    CONF_DEFAULT_SEND_REDIRECTS: IntKey = "net.ipv4.conf.default.send_redirects", BOOL, Def::Int(1);
    // net.ipv4 ICMP (net/ipv4/icmp.c icmp_sk_init)
    ICMP_ECHO_IGNORE_ALL: IntKey = "net.ipv4.icmp_echo_ignore_all", BOOL, Def::Int(0);
    ICMP_ECHO_IGNORE_BROADCASTS: IntKey = "net.ipv4.icmp_echo_ignore_broadcasts", BOOL, Def::Int(1);
    ICMP_ERRORS_USE_INBOUND_IFADDR: IntKey = "net.ipv4.icmp_errors_use_inbound_ifaddr", BOOL, Def::Int(0);
    ICMP_IGNORE_BOGUS_ERROR_RESPONSES: IntKey = "net.ipv4.icmp_ignore_bogus_error_responses", BOOL, Def::Int(1);
    ICMP_MSGS_BURST: IntKey = "net.ipv4.icmp_msgs_burst", POS, Def::Int(50);
    ICMP_MSGS_PER_SEC: IntKey = "net.ipv4.icmp_msgs_per_sec", POS, Def::Int(1000);
    ICMP_RATELIMIT: IntKey = "net.ipv4.icmp_ratelimit", POS, Def::Int(1000);
    ICMP_RATEMASK: IntKey = "net.ipv4.icmp_ratemask", ANY, Def::Int(6168);
    // net.ipv4 IP (net/ipv4/sysctl_net_ipv4.c, af_inet.c inet_init_net)
    IP_DEFAULT_TTL: IntKey = "net.ipv4.ip_default_ttl", int(1, 255), Def::Int(64);
    IP_FORWARD: IntKey = "net.ipv4.ip_forward", BOOL, Def::Int(0);
    IP_LOCAL_PORT_RANGE: RangeKey = "net.ipv4.ip_local_port_range", Kind::Range { min: 1, max: 65535 }, Def::Ints(&[32768, 60999]);
    IP_NO_PMTU_DISC: IntKey = "net.ipv4.ip_no_pmtu_disc", int(0, 3), Def::Int(0);
    IP_NONLOCAL_BIND: IntKey = "net.ipv4.ip_nonlocal_bind", BOOL, Def::Int(0);
    IPFRAG_HIGH_THRESH: IntKey = "net.ipv4.ipfrag_high_thresh", POS, Def::Int(4_194_304);
    IPFRAG_LOW_THRESH: IntKey = "net.ipv4.ipfrag_low_thresh", POS, Def::Int(3_145_728);
    IPFRAG_MAX_DIST: IntKey = "net.ipv4.ipfrag_max_dist", POS, Def::Int(64);
    IPFRAG_TIME: IntKey = "net.ipv4.ipfrag_time", POS, Def::Int(30);
    // net.ipv4.neigh.default (net/ipv4/arp.c arp_tbl; *_ms in ms, others in
    // seconds or, for locktime/proxy_delay/anycast_delay, USER_HZ ticks)
    NEIGH_ANYCAST_DELAY: IntKey = "net.ipv4.neigh.default.anycast_delay", POS, Def::Int(100);
    NEIGH_APP_SOLICIT: IntKey = "net.ipv4.neigh.default.app_solicit", POS, Def::Int(0);
    NEIGH_BASE_REACHABLE_TIME_MS: IntKey = "net.ipv4.neigh.default.base_reachable_time_ms", POS, Def::Int(30_000);
    NEIGH_DELAY_FIRST_PROBE_TIME: IntKey = "net.ipv4.neigh.default.delay_first_probe_time", POS, Def::Int(5);
    NEIGH_GC_INTERVAL: IntKey = "net.ipv4.neigh.default.gc_interval", POS, Def::Int(30);
    NEIGH_GC_STALE_TIME: IntKey = "net.ipv4.neigh.default.gc_stale_time", POS, Def::Int(60);
    NEIGH_GC_THRESH1: IntKey = "net.ipv4.neigh.default.gc_thresh1", POS, Def::Int(128);
    NEIGH_GC_THRESH2: IntKey = "net.ipv4.neigh.default.gc_thresh2", POS, Def::Int(512);
    NEIGH_GC_THRESH3: IntKey = "net.ipv4.neigh.default.gc_thresh3", POS, Def::Int(1024);
    NEIGH_LOCKTIME: IntKey = "net.ipv4.neigh.default.locktime", POS, Def::Int(100);
    NEIGH_MCAST_SOLICIT: IntKey = "net.ipv4.neigh.default.mcast_solicit", POS, Def::Int(3);
    NEIGH_PROXY_DELAY: IntKey = "net.ipv4.neigh.default.proxy_delay", POS, Def::Int(80);
    NEIGH_PROXY_QLEN: IntKey = "net.ipv4.neigh.default.proxy_qlen", POS, Def::Int(64);
    NEIGH_RETRANS_TIME_MS: IntKey = "net.ipv4.neigh.default.retrans_time_ms", POS, Def::Int(1000);
    NEIGH_UCAST_SOLICIT: IntKey = "net.ipv4.neigh.default.ucast_solicit", POS, Def::Int(3);
    NEIGH_UNRES_QLEN: IntKey = "net.ipv4.neigh.default.unres_qlen", POS, Def::Int(101);
    NEIGH_UNRES_QLEN_BYTES: IntKey = "net.ipv4.neigh.default.unres_qlen_bytes", POS, Def::Int(212_992);
    // net.ipv4.route (net/ipv4/route.c ipv4_route_netns_table and
    // ipv4_route_table; gc_timeout and mtu_expires in seconds, kept in
    // jiffies by Linux)
    ROUTE_GC_TIMEOUT: IntKey = "net.ipv4.route.gc_timeout", POS, Def::Int(300);
    ROUTE_MIN_PMTU: IntKey = "net.ipv4.route.min_pmtu", int(68, 65535), Def::Int(552);
    ROUTE_MTU_EXPIRES: IntKey = "net.ipv4.route.mtu_expires", POS, Def::Int(600);
    // net.ipv4 TCP (net/ipv4/tcp_ipv4.c tcp_sk_init, tcp.c tcp_init)
    TCP_ABORT_ON_OVERFLOW: IntKey = "net.ipv4.tcp_abort_on_overflow", BOOL, Def::Int(0);
    TCP_ADV_WIN_SCALE: IntKey = "net.ipv4.tcp_adv_win_scale", int(-31, 31), Def::Int(1);
    TCP_ALLOWED_CONGESTION_CONTROL: StrKey = "net.ipv4.tcp_allowed_congestion_control", Kind::Words { allowed: CONGESTION_CONTROLS }, Def::Text("reno cubic");
    TCP_APP_WIN: IntKey = "net.ipv4.tcp_app_win", int(0, 31), Def::Int(31);
    TCP_AUTOCORKING: IntKey = "net.ipv4.tcp_autocorking", BOOL, Def::Int(1);
    TCP_AVAILABLE_CONGESTION_CONTROL: StrKey = "net.ipv4.tcp_available_congestion_control", Kind::ReadOnly, Def::Text("reno cubic");
    TCP_BASE_MSS: IntKey = "net.ipv4.tcp_base_mss", POS, Def::Int(1024);
    TCP_CHALLENGE_ACK_LIMIT: IntKey = "net.ipv4.tcp_challenge_ack_limit", POS, Def::Int(INT_MAX);
    TCP_COMP_SACK_DELAY_NS: IntKey = "net.ipv4.tcp_comp_sack_delay_ns", int(0, LONG_MAX), Def::Int(1_000_000);
    TCP_COMP_SACK_NR: IntKey = "net.ipv4.tcp_comp_sack_nr", int(0, 255), Def::Int(44);
    TCP_COMP_SACK_SLACK_NS: IntKey = "net.ipv4.tcp_comp_sack_slack_ns", int(0, LONG_MAX), Def::Int(100_000);
    TCP_CONGESTION_CONTROL: StrKey = "net.ipv4.tcp_congestion_control", Kind::Word { allowed: CONGESTION_CONTROLS }, Def::Text("cubic");
    TCP_DSACK: IntKey = "net.ipv4.tcp_dsack", BOOL, Def::Int(1);
    TCP_EARLY_RETRANS: IntKey = "net.ipv4.tcp_early_retrans", int(0, 4), Def::Int(3);
    TCP_ECN: IntKey = "net.ipv4.tcp_ecn", int(0, 5), Def::Int(2);
    TCP_ECN_FALLBACK: IntKey = "net.ipv4.tcp_ecn_fallback", BOOL, Def::Int(1);
    TCP_FASTOPEN: IntKey = "net.ipv4.tcp_fastopen", POS, Def::Int(1);
    TCP_FIN_TIMEOUT: IntKey = "net.ipv4.tcp_fin_timeout", POS, Def::Int(60);
    TCP_FRTO: IntKey = "net.ipv4.tcp_frto", int(0, 2), Def::Int(2);
    TCP_INVALID_RATELIMIT: IntKey = "net.ipv4.tcp_invalid_ratelimit", POS, Def::Int(500);
    TCP_KEEPALIVE_INTVL: IntKey = "net.ipv4.tcp_keepalive_intvl", int(1, 32767), Def::Int(75);
    TCP_KEEPALIVE_PROBES: IntKey = "net.ipv4.tcp_keepalive_probes", int(1, 127), Def::Int(9);
    TCP_KEEPALIVE_TIME: IntKey = "net.ipv4.tcp_keepalive_time", int(1, 32767), Def::Int(7200);
    TCP_LIMIT_OUTPUT_BYTES: IntKey = "net.ipv4.tcp_limit_output_bytes", POS, Def::Int(4_194_304);
    TCP_MAX_ORPHANS: IntKey = "net.ipv4.tcp_max_orphans", POS, Def::Int(262_144);
    TCP_MAX_REORDERING: IntKey = "net.ipv4.tcp_max_reordering", POS, Def::Int(300);
    TCP_MAX_SYN_BACKLOG: IntKey = "net.ipv4.tcp_max_syn_backlog", POS, Def::Int(2048);
    TCP_MAX_TW_BUCKETS: IntKey = "net.ipv4.tcp_max_tw_buckets", POS, Def::Int(262_144);
    TCP_MEM: VecKey = "net.ipv4.tcp_mem", Kind::Vec { n: 3, min: 0, max: LONG_MAX }, Def::Ints(&[188_124, 250_832, 376_248]);
    TCP_MIN_RTT_WLEN: IntKey = "net.ipv4.tcp_min_rtt_wlen", int(0, 86400), Def::Int(300);
    TCP_MIN_SND_MSS: IntKey = "net.ipv4.tcp_min_snd_mss", int(48, 65535), Def::Int(48);
    TCP_MIN_TSO_SEGS: IntKey = "net.ipv4.tcp_min_tso_segs", int(1, INT_MAX), Def::Int(2);
    TCP_MODERATE_RCVBUF: IntKey = "net.ipv4.tcp_moderate_rcvbuf", BOOL, Def::Int(1);
    TCP_MTU_PROBING: IntKey = "net.ipv4.tcp_mtu_probing", int(0, 2), Def::Int(0);
    TCP_NO_METRICS_SAVE: IntKey = "net.ipv4.tcp_no_metrics_save", BOOL, Def::Int(0);
    TCP_NO_SSTHRESH_METRICS_SAVE: IntKey = "net.ipv4.tcp_no_ssthresh_metrics_save", BOOL, Def::Int(1);
    TCP_NOTSENT_LOWAT: IntKey = "net.ipv4.tcp_notsent_lowat", int(0, UINT_MAX), Def::Int(UINT_MAX);
    TCP_ORPHAN_RETRIES: IntKey = "net.ipv4.tcp_orphan_retries", int(0, 255), Def::Int(0);
    TCP_PACING_CA_RATIO: IntKey = "net.ipv4.tcp_pacing_ca_ratio", int(0, 1000), Def::Int(120);
    TCP_PACING_SS_RATIO: IntKey = "net.ipv4.tcp_pacing_ss_ratio", int(0, 1000), Def::Int(200);
    TCP_PINGPONG_THRESH: IntKey = "net.ipv4.tcp_pingpong_thresh", int(1, 255), Def::Int(1);
    TCP_RECOVERY: IntKey = "net.ipv4.tcp_recovery", POS, Def::Int(1);
    TCP_REORDERING: IntKey = "net.ipv4.tcp_reordering", POS, Def::Int(3);
    TCP_RETRANS_COLLAPSE: IntKey = "net.ipv4.tcp_retrans_collapse", BOOL, Def::Int(1);
    TCP_RETRIES1: IntKey = "net.ipv4.tcp_retries1", int(0, 255), Def::Int(3);
    TCP_RETRIES2: IntKey = "net.ipv4.tcp_retries2", int(0, 255), Def::Int(15);
    TCP_RFC1337: IntKey = "net.ipv4.tcp_rfc1337", BOOL, Def::Int(0);
    TCP_RMEM: VecKey = "net.ipv4.tcp_rmem", Kind::Vec { n: 3, min: 1, max: INT_MAX }, Def::Ints(&[4096, 131_072, 33_554_432]);
    TCP_RTO_MAX_MS: IntKey = "net.ipv4.tcp_rto_max_ms", int(1000, 120_000), Def::Int(120_000);
    TCP_RTO_MIN_US: IntKey = "net.ipv4.tcp_rto_min_us", int(1, INT_MAX), Def::Int(200_000);
    TCP_SACK: IntKey = "net.ipv4.tcp_sack", BOOL, Def::Int(1);
    TCP_SLOW_START_AFTER_IDLE: IntKey = "net.ipv4.tcp_slow_start_after_idle", BOOL, Def::Int(1);
    TCP_STDURG: IntKey = "net.ipv4.tcp_stdurg", BOOL, Def::Int(0);
    TCP_SYN_LINEAR_TIMEOUTS: IntKey = "net.ipv4.tcp_syn_linear_timeouts", int(0, 10), Def::Int(4);
    TCP_SYN_RETRIES: IntKey = "net.ipv4.tcp_syn_retries", int(1, 127), Def::Int(6);
    TCP_SYNACK_RETRIES: IntKey = "net.ipv4.tcp_synack_retries", int(0, 255), Def::Int(5);
    TCP_SYNCOOKIES: IntKey = "net.ipv4.tcp_syncookies", int(0, 2), Def::Int(1);
    TCP_THIN_LINEAR_TIMEOUTS: IntKey = "net.ipv4.tcp_thin_linear_timeouts", BOOL, Def::Int(0);
    TCP_TIMESTAMPS: IntKey = "net.ipv4.tcp_timestamps", int(0, 2), Def::Int(1);
    TCP_TSO_RTT_LOG: IntKey = "net.ipv4.tcp_tso_rtt_log", int(0, 255), Def::Int(9);
    TCP_TSO_WIN_DIVISOR: IntKey = "net.ipv4.tcp_tso_win_divisor", int(1, 255), Def::Int(3);
    TCP_TW_REUSE: IntKey = "net.ipv4.tcp_tw_reuse", int(0, 2), Def::Int(2);
    TCP_TW_REUSE_DELAY: IntKey = "net.ipv4.tcp_tw_reuse_delay", int(1, INT_MAX), Def::Int(1000);
    TCP_WINDOW_SCALING: IntKey = "net.ipv4.tcp_window_scaling", BOOL, Def::Int(1);
    TCP_WMEM: VecKey = "net.ipv4.tcp_wmem", Kind::Vec { n: 3, min: 1, max: INT_MAX }, Def::Ints(&[4096, 16_384, 4_194_304]);
    TCP_WORKAROUND_SIGNED_WINDOWS: IntKey = "net.ipv4.tcp_workaround_signed_windows", BOOL, Def::Int(0);
    // net.ipv4 UDP (net/ipv4/udp.c udp_init)
    UDP_MEM: VecKey = "net.ipv4.udp_mem", Kind::Vec { n: 3, min: 0, max: LONG_MAX }, Def::Ints(&[376_248, 501_664, 752_496]);
    UDP_RMEM_MIN: IntKey = "net.ipv4.udp_rmem_min", int(4096, INT_MAX), Def::Int(4096);
    UDP_WMEM_MIN: IntKey = "net.ipv4.udp_wmem_min", int(4096, INT_MAX), Def::Int(4096);
    // net.netfilter (net/netfilter/nf_conntrack_*.c)
    NF_CONNTRACK_GENERIC_TIMEOUT: IntKey = "net.netfilter.nf_conntrack_generic_timeout", POS, Def::Int(600);
    NF_CONNTRACK_ICMP_TIMEOUT: IntKey = "net.netfilter.nf_conntrack_icmp_timeout", POS, Def::Int(30);
    NF_CONNTRACK_MAX: IntKey = "net.netfilter.nf_conntrack_max", POS, Def::Int(262_144);
    NF_CONNTRACK_TCP_LOOSE: IntKey = "net.netfilter.nf_conntrack_tcp_loose", BOOL, Def::Int(1);
    NF_CONNTRACK_TCP_TIMEOUT_CLOSE: IntKey = "net.netfilter.nf_conntrack_tcp_timeout_close", POS, Def::Int(10);
    NF_CONNTRACK_TCP_TIMEOUT_CLOSE_WAIT: IntKey = "net.netfilter.nf_conntrack_tcp_timeout_close_wait", POS, Def::Int(60);
    NF_CONNTRACK_TCP_TIMEOUT_ESTABLISHED: IntKey = "net.netfilter.nf_conntrack_tcp_timeout_established", POS, Def::Int(432_000);
    NF_CONNTRACK_TCP_TIMEOUT_FIN_WAIT: IntKey = "net.netfilter.nf_conntrack_tcp_timeout_fin_wait", POS, Def::Int(120);
    NF_CONNTRACK_TCP_TIMEOUT_LAST_ACK: IntKey = "net.netfilter.nf_conntrack_tcp_timeout_last_ack", POS, Def::Int(30);
    NF_CONNTRACK_TCP_TIMEOUT_SYN_RECV: IntKey = "net.netfilter.nf_conntrack_tcp_timeout_syn_recv", POS, Def::Int(60);
    NF_CONNTRACK_TCP_TIMEOUT_SYN_SENT: IntKey = "net.netfilter.nf_conntrack_tcp_timeout_syn_sent", POS, Def::Int(120);
    NF_CONNTRACK_TCP_TIMEOUT_TIME_WAIT: IntKey = "net.netfilter.nf_conntrack_tcp_timeout_time_wait", POS, Def::Int(120);
    NF_CONNTRACK_UDP_TIMEOUT: IntKey = "net.netfilter.nf_conntrack_udp_timeout", POS, Def::Int(30);
    NF_CONNTRACK_UDP_TIMEOUT_STREAM: IntKey = "net.netfilter.nf_conntrack_udp_timeout_stream", POS, Def::Int(120);
}

/// Why a sysctl read or write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysctlError {
    /// No sysctl has this name.
    UnknownKey(String),
    /// The value does not fit the key.
    Invalid {
        /// The key.
        key: &'static str,
        /// What the key accepts, in words.
        expected: String,
        /// The rejected text.
        got: String,
    },
    /// The key cannot be written.
    ReadOnly(&'static str),
}

impl fmt::Display for SysctlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysctlError::UnknownKey(k) => write!(f, "unknown sysctl key {k:?}"),
            SysctlError::Invalid { key, expected, got } => {
                write!(f, "{key}: expected {expected}, got {got:?}")
            }
            SysctlError::ReadOnly(k) => write!(f, "{k}: read-only"),
        }
    }
}

impl core::error::Error for SysctlError {}

/// A sysctl value as text-level data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysctlValue {
    /// One integer.
    Int(i64),
    /// Several integers (vectors and ranges).
    Ints(Vec<i64>),
    /// Text.
    Text(String),
}

impl fmt::Display for SysctlValue {
    /// As `sysctl` prints it: vectors tab-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysctlValue::Int(v) => write!(f, "{v}"),
            SysctlValue::Ints(v) => {
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\t")?;
                    }
                    write!(f, "{x}")?;
                }
                Ok(())
            }
            SysctlValue::Text(s) => f.write_str(s),
        }
    }
}

struct Cell {
    ints: [AtomicI64; 3],
    text: RwLock<Arc<str>>,
}

struct Inner {
    cells: Box<[Cell]>,
    /// Spec indices sorted by name, for lookup by name and `sysctl -a`.
    by_name: Box<[u16]>,
}

/// One host's sysctl registry.
///
/// Mirrors the `/proc/sys/net` tables of one network namespace
/// (`struct net`'s `ipv4`, `core`, `ct` sysctl fields). Cheap to clone;
/// clones share the values.
///
/// ```
/// use netcore::Sysctl;
///
/// let sysctl = Sysctl::new();
/// assert_eq!(sysctl.get_int(Sysctl::NETDEV_BUDGET), 300);
/// sysctl.set("net.core.netdev_budget", "600").unwrap();
/// assert_eq!(sysctl.netdev_budget(), 600);
/// let err = sysctl.set("net.core.netdev_budget", "abc").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"net.core.netdev_budget: expected an integer in 0..=2147483647, got "abc""#
/// );
/// ```
#[derive(Clone)]
pub struct Sysctl {
    inner: Arc<Inner>,
}

impl Default for Sysctl {
    fn default() -> Sysctl {
        Sysctl::new()
    }
}

impl Sysctl {
    /// A registry holding Linux 6.18's defaults.
    pub fn new() -> Sysctl {
        let cells = SPECS
            .iter()
            .map(|spec| {
                let cell = Cell {
                    ints: core::array::from_fn(|_| AtomicI64::new(0)),
                    text: RwLock::new(Arc::from("")),
                };
                match (spec.kind, spec.default) {
                    (_, Def::Int(v)) => cell.ints[0].store(v, Ordering::Relaxed),
                    (Kind::Range { .. }, Def::Ints(v)) => {
                        cell.ints[0].store(pack(v[0], v[1]), Ordering::Relaxed);
                    }
                    (_, Def::Ints(v)) => {
                        for (c, &x) in cell.ints.iter().zip(v) {
                            c.store(x, Ordering::Relaxed);
                        }
                    }
                    (_, Def::Text(t)) => *cell.text.write() = Arc::from(t),
                }
                cell
            })
            .collect();
        let mut by_name: Vec<u16> = (0..SPECS.len() as u16).collect();
        by_name.sort_unstable_by_key(|&i| SPECS[usize::from(i)].name);
        Sysctl {
            inner: Arc::new(Inner {
                cells,
                by_name: by_name.into(),
            }),
        }
    }

    /// Every key, sorted by name.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        let mut names: Vec<&'static str> = SPECS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.into_iter()
    }

    fn lookup(&self, name: &str) -> Result<usize, SysctlError> {
        let names = &self.inner.by_name;
        names
            .binary_search_by(|&i| SPECS[usize::from(i)].name.cmp(name))
            .map(|pos| usize::from(names[pos]))
            .map_err(|_| SysctlError::UnknownKey(name.to_owned()))
    }

    /// The value of an integer sysctl: one relaxed atomic load, for hot paths.
    #[inline]
    pub fn get_int(&self, key: IntKey) -> i64 {
        self.inner.cells[usize::from(key.0)].ints[0].load(Ordering::Relaxed)
    }

    /// The three values of a vector sysctl (`tcp_rmem`: min, default, max).
    #[inline]
    pub fn get_vec(&self, key: VecKey) -> [i64; 3] {
        let c = &self.inner.cells[usize::from(key.0)];
        core::array::from_fn(|i| c.ints[i].load(Ordering::Relaxed))
    }

    /// The `(lo, hi)` of a range sysctl, read in one atomic load.
    #[inline]
    pub fn get_range(&self, key: RangeKey) -> (i64, i64) {
        unpack(self.inner.cells[usize::from(key.0)].ints[0].load(Ordering::Relaxed))
    }

    /// The value of a text sysctl.
    pub fn get_str(&self, key: StrKey) -> Arc<str> {
        Arc::clone(&self.inner.cells[usize::from(key.0)].text.read())
    }

    /// Sets an integer sysctl with the same validation as [`Sysctl::set`].
    pub fn set_int(&self, key: IntKey, value: i64) -> Result<(), SysctlError> {
        self.set_index(usize::from(key.0), &value.to_string())
    }

    /// `net.core.netdev_budget`: packets per `net_rx_action` run.
    #[inline]
    pub fn netdev_budget(&self) -> i64 {
        self.get_int(Sysctl::NETDEV_BUDGET)
    }

    /// `net.core.netdev_budget_usecs`: time limit of one `net_rx_action` run.
    #[inline]
    pub fn netdev_budget_usecs(&self) -> i64 {
        self.get_int(Sysctl::NETDEV_BUDGET_USECS)
    }

    /// `net.core.dev_weight`: the default NAPI weight.
    pub fn dev_weight(&self) -> i64 {
        self.get_int(Sysctl::DEV_WEIGHT)
    }

    /// `net.core.netdev_max_backlog`: per-CPU backlog queue limit.
    pub fn netdev_max_backlog(&self) -> i64 {
        self.get_int(Sysctl::NETDEV_MAX_BACKLOG)
    }

    /// `net.ipv4.tcp_rmem` as (min, default, max).
    pub fn tcp_rmem(&self) -> [i64; 3] {
        self.get_vec(Sysctl::TCP_RMEM)
    }

    /// `net.ipv4.tcp_wmem` as (min, default, max).
    pub fn tcp_wmem(&self) -> [i64; 3] {
        self.get_vec(Sysctl::TCP_WMEM)
    }

    /// `net.ipv4.ip_local_port_range` as (lo, hi).
    pub fn ip_local_port_range(&self) -> (i64, i64) {
        self.get_range(Sysctl::IP_LOCAL_PORT_RANGE)
    }

    /// The value of `name` (as `sysctl NAME` reads it).
    pub fn get(&self, name: &str) -> Result<SysctlValue, SysctlError> {
        let i = self.lookup(name)?;
        Ok(self.value(i))
    }

    fn value(&self, i: usize) -> SysctlValue {
        let c = &self.inner.cells[i];
        match SPECS[i].kind {
            Kind::Int { .. } => SysctlValue::Int(c.ints[0].load(Ordering::Relaxed)),
            Kind::Vec { n, .. } => SysctlValue::Ints(
                c.ints[..n]
                    .iter()
                    .map(|a| a.load(Ordering::Relaxed))
                    .collect(),
            ),
            Kind::Range { .. } => {
                let (lo, hi) = unpack(c.ints[0].load(Ordering::Relaxed));
                SysctlValue::Ints(vec![lo, hi])
            }
            Kind::Word { .. } | Kind::Words { .. } | Kind::ReadOnly => {
                SysctlValue::Text(c.text.read().to_string())
            }
        }
    }

    /// Writes `text` to `name`, as `sysctl -w NAME=TEXT` does.
    ///
    /// Mirrors `proc_dointvec_minmax()` and the handlers of the string and
    /// vector keys: leading and trailing whitespace is ignored, vectors are
    /// whitespace-separated, and integers are read in base 0 as
    /// `proc_get_long()` reads them (`0x1`, `010` and `8` all work). A value out of range, malformed, or of the
    /// wrong arity is rejected with an error naming the key and what it
    /// accepts; the old value is kept.
    pub fn set(&self, name: &str, text: &str) -> Result<(), SysctlError> {
        let i = self.lookup(name)?;
        self.set_index(i, text)
    }

    fn set_index(&self, i: usize, text: &str) -> Result<(), SysctlError> {
        let spec = &SPECS[i];
        let cell = &self.inner.cells[i];
        let invalid = |expected: String| SysctlError::Invalid {
            key: spec.name,
            expected,
            got: text.to_owned(),
        };
        match spec.kind {
            Kind::Int { min, max } => {
                let expected = || format!("an integer in {min}..={max}");
                let Some(&[v]) = parse_ints(text).as_deref() else {
                    return Err(invalid(expected()));
                };
                if !(min..=max).contains(&v) {
                    return Err(invalid(expected()));
                }
                cell.ints[0].store(v, Ordering::Relaxed);
            }
            Kind::Vec { n, min, max } => {
                let expected = || format!("{n} integers in {min}..={max}");
                let vals = parse_ints(text).ok_or_else(|| invalid(expected()))?;
                if vals.len() != n || vals.iter().any(|v| !(min..=max).contains(v)) {
                    return Err(invalid(expected()));
                }
                for (c, v) in cell.ints.iter().zip(vals) {
                    c.store(v, Ordering::Relaxed);
                }
            }
            Kind::Range { min, max } => {
                let expected = || format!("two integers lo hi with {min} <= lo <= hi <= {max}");
                let vals = parse_ints(text).ok_or_else(|| invalid(expected()))?;
                match vals[..] {
                    [lo, hi] if min <= lo && lo <= hi && hi <= max => {
                        cell.ints[0].store(pack(lo, hi), Ordering::Relaxed);
                    }
                    _ => return Err(invalid(expected())),
                }
            }
            Kind::Word { allowed } => {
                let word = text.trim();
                if !allowed.contains(&word) {
                    return Err(invalid(format!("one of: {}", allowed.join(" "))));
                }
                *cell.text.write() = Arc::from(word);
            }
            Kind::Words { allowed } => {
                let words: Vec<&str> = text.split_whitespace().collect();
                if words.is_empty() || words.iter().any(|w| !allowed.contains(w)) {
                    return Err(invalid(format!(
                        "a space-separated list of: {}",
                        allowed.join(" ")
                    )));
                }
                *cell.text.write() = Arc::from(words.join(" "));
            }
            Kind::ReadOnly => return Err(SysctlError::ReadOnly(spec.name)),
        }
        Ok(())
    }

    /// Every sysctl as `sysctl -a` prints it, sorted by name:
    /// `net.core.somaxconn = 4096`, vectors tab-separated.
    pub fn list(&self) -> String {
        let mut out = String::new();
        for &i in &*self.inner.by_name {
            let i = usize::from(i);
            out.push_str(SPECS[i].name);
            out.push_str(" = ");
            out.push_str(&self.value(i).to_string());
            out.push('\n');
        }
        out
    }
}

impl fmt::Debug for Sysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sysctl")
            .field("keys", &SPECS.len())
            .finish_non_exhaustive()
    }
}

/// The whitespace-separated integers of `text`, each read as
/// [`proc_get_long`] reads it; `None` if any word is not one.
fn parse_ints(text: &str) -> Option<Vec<i64>> {
    text.split_whitespace().map(proc_get_long).collect()
}

/// One integer as `proc_get_long()` in `kernel/sysctl.c` reads it: an
/// optional `-`, then base 0 as `simple_strtoul()` picks it (`0x`/`0X`
/// hexadecimal, a leading `0` octal, otherwise decimal), so `0x1`, `010`
/// and `8` are all accepted as `/proc/sys` accepts them.
fn proc_get_long(word: &str) -> Option<i64> {
    let (neg, digits) = match word.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, word),
    };
    let (radix, body) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
        .filter(|h| h.starts_with(|c: char| c.is_ascii_hexdigit()))
    {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    // `from_str_radix` would accept a sign of its own; the kernel does not.
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(body, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn pack(lo: i64, hi: i64) -> i64 {
    (lo << 32) | (hi & 0xffff_ffff)
}

fn unpack(v: i64) -> (i64, i64) {
    (v >> 32, v & 0xffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_readable_and_valid() {
        let s = Sysctl::new();
        for name in Sysctl::keys() {
            let v = s.get(name).unwrap_or_else(|e| panic!("{e}"));
            // Writing the default back is accepted (the default is valid)
            // unless the key is read-only.
            match s.set(name, &v.to_string()) {
                Ok(()) | Err(SysctlError::ReadOnly(_)) => {}
                Err(e) => panic!("default of {name} rejected: {e}"),
            }
            assert_eq!(s.get(name).unwrap(), v);
        }
    }

    #[test]
    fn defaults_are_linux_6_18() {
        let s = Sysctl::new();
        let int = |k: &str| match s.get(k).unwrap() {
            SysctlValue::Int(v) => v,
            other => panic!("{k} is {other:?}"),
        };
        assert_eq!(int("net.core.netdev_budget"), 300);
        assert_eq!(int("net.core.netdev_budget_usecs"), 2000);
        assert_eq!(int("net.core.somaxconn"), 4096);
        assert_eq!(int("net.core.rmem_default"), 212_992);
        assert_eq!(int("net.ipv4.tcp_syn_linear_timeouts"), 4);
        assert_eq!(int("net.ipv4.tcp_challenge_ack_limit"), 2_147_483_647);
        assert_eq!(int("net.ipv4.tcp_limit_output_bytes"), 4_194_304);
        assert_eq!(int("net.ipv4.tcp_notsent_lowat"), 4_294_967_295);
        assert_eq!(int("net.ipv4.icmp_ratemask"), 6168);
        assert_eq!(
            int("net.netfilter.nf_conntrack_tcp_timeout_established"),
            432_000
        );
        assert_eq!(s.tcp_rmem(), [4096, 131_072, 33_554_432]);
        assert_eq!(s.tcp_wmem(), [4096, 16_384, 4_194_304]);
        assert_eq!(s.ip_local_port_range(), (32768, 60999));
        assert_eq!(&*s.get_str(Sysctl::TCP_CONGESTION_CONTROL), "cubic");
        assert_eq!(&*s.get_str(Sysctl::DEFAULT_QDISC), "pfifo_fast");
        assert_eq!(s.get_int(Sysctl::IP_DEFAULT_TTL), 64);
    }

    #[test]
    fn set_get_round_trip_and_shared_between_clones() {
        let s = Sysctl::new();
        let other = s.clone();
        s.set("net.ipv4.tcp_rmem", " 8192  65536\t1048576 \n")
            .unwrap();
        assert_eq!(other.tcp_rmem(), [8192, 65536, 1_048_576]);
        assert_eq!(
            other.get("net.ipv4.tcp_rmem").unwrap().to_string(),
            "8192\t65536\t1048576"
        );
        s.set("net.ipv4.ip_local_port_range", "1024 65535").unwrap();
        assert_eq!(other.ip_local_port_range(), (1024, 65535));
        s.set("net.ipv4.tcp_congestion_control", "reno").unwrap();
        assert_eq!(&*other.get_str(Sysctl::TCP_CONGESTION_CONTROL), "reno");
        s.set("net.ipv4.tcp_allowed_congestion_control", "cubic")
            .unwrap();
        assert_eq!(
            other
                .get("net.ipv4.tcp_allowed_congestion_control")
                .unwrap()
                .to_string(),
            "cubic"
        );
        s.set_int(Sysctl::TCP_FIN_TIMEOUT, 30).unwrap();
        assert_eq!(other.get_int(Sysctl::TCP_FIN_TIMEOUT), 30);
    }

    #[test]
    fn invalid_values_are_rejected_with_the_key_and_what_it_accepts() {
        let s = Sysctl::new();
        let msg = |k: &str, v: &str| s.set(k, v).unwrap_err().to_string();
        assert_eq!(
            msg("net.core.netdev_budget", "abc"),
            r#"net.core.netdev_budget: expected an integer in 0..=2147483647, got "abc""#
        );
        assert_eq!(
            msg("net.ipv4.tcp_sack", "2"),
            r#"net.ipv4.tcp_sack: expected an integer in 0..=1, got "2""#
        );
        assert_eq!(
            msg("net.ipv4.tcp_rmem", "4096 87380"),
            r#"net.ipv4.tcp_rmem: expected 3 integers in 1..=2147483647, got "4096 87380""#
        );
        assert_eq!(
            msg("net.ipv4.ip_local_port_range", "60999 32768"),
            r#"net.ipv4.ip_local_port_range: expected two integers lo hi with 1 <= lo <= hi <= 65535, got "60999 32768""#
        );
        assert_eq!(
            msg("net.ipv4.tcp_congestion_control", "bbr"),
            r#"net.ipv4.tcp_congestion_control: expected one of: reno cubic, got "bbr""#
        );
        assert_eq!(
            msg("net.ipv4.tcp_available_congestion_control", "reno"),
            "net.ipv4.tcp_available_congestion_control: read-only"
        );
        assert_eq!(
            msg("net.core.no_such_knob", "1"),
            r#"unknown sysctl key "net.core.no_such_knob""#
        );
        assert_eq!(
            s.get("net.core.no_such_knob"),
            Err(SysctlError::UnknownKey("net.core.no_such_knob".into()))
        );
        // Nothing changed.
        assert_eq!(s.netdev_budget(), 300);
        assert_eq!(s.tcp_rmem(), [4096, 131_072, 33_554_432]);
        assert_eq!(s.ip_local_port_range(), (32768, 60999));
    }

    #[test]
    fn integers_are_read_in_base_0_as_proc_dointvec_reads_them() {
        let s = Sysctl::new();
        s.set("net.ipv4.tcp_sack", "0x0").unwrap();
        assert_eq!(s.get_int(Sysctl::TCP_SACK), 0);
        s.set("net.ipv4.tcp_sack", " 0X1\n").unwrap();
        assert_eq!(s.get_int(Sysctl::TCP_SACK), 1);
        s.set("net.core.netdev_budget", "0x258").unwrap();
        assert_eq!(s.netdev_budget(), 600);
        s.set("net.core.netdev_budget", "010").unwrap();
        assert_eq!(s.netdev_budget(), 8);
        s.set("net.core.netdev_budget", "0").unwrap();
        assert_eq!(s.netdev_budget(), 0);
        s.set("net.ipv4.tcp_rmem", "0x1000 0x20000\t020000")
            .unwrap();
        assert_eq!(s.tcp_rmem(), [4096, 131_072, 8192]);
        s.set("net.ipv4.ip_local_port_range", "0x8000 60999")
            .unwrap();
        assert_eq!(s.ip_local_port_range(), (32768, 60999));
        // Not numbers in any base, or two where one is wanted: rejected.
        for bad in ["0x", "0xg", "09", "+1", "1 2", "", "--1"] {
            assert!(s.set("net.core.netdev_budget", bad).is_err(), "{bad:?}");
        }
        assert_eq!(s.netdev_budget(), 0);
    }

    #[test]
    fn listing_is_sorted_and_formatted_like_sysctl_a() {
        let text = Sysctl::new().list();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), SPECS.len());
        let names: Vec<&str> = lines
            .iter()
            .map(|l| l.split(" = ").next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert_eq!(lines[0], "fs.file-max = 838860");
        assert!(lines.contains(&"net.core.somaxconn = 4096"));
        assert!(lines.contains(&"net.ipv4.tcp_rmem = 4096\t131072\t33554432"));
        assert!(lines.contains(&"net.ipv4.ip_local_port_range = 32768\t60999"));
        assert!(lines.contains(&"net.ipv4.tcp_available_congestion_control = reno cubic"));
    }
}
