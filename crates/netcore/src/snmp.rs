//! MIB counters with the names Linux prints in `/proc/net/snmp` and
//! `/proc/net/netstat`.
//!
//! Mirrors `include/uapi/linux/snmp.h` (the counter enums),
//! `include/net/snmp.h` (per-CPU MIB storage, `SNMP_INC_STATS`) and
//! `net/ipv4/proc.c` (`snmp4_*_list`, `snmp_seq_show()`,
//! `netstat_seq_show()`).
//!
//! ```text
//!  CPU 0  shared [Ip | IpExt | Icmp | Tcp | Udp | UdpLite | TcpExt]  inc(cpu, f): atomic add, any thread
//!         local  [Ip | IpExt | Icmp | Tcp | Udp | UdpLite | TcpExt]  this_cpu(cpu): load + store,
//!         owner  (the one thread that writes `local`)                   by the owner thread only
//!  CPU 1  shared [...]  local [...]  owner
//!  ...                                              (each shard cache-padded)
//!  IcmpMsg      [In type 0..255 | Out type 0..255]  (shared atomics, as Linux)
//!                         snapshot() = sum of every shard
//! ```
//!
//! Each group is an enum whose variants are the counters, in the order Linux
//! prints them, and whose [`MibField::name`] is the name Linux prints.

use core::cell::Cell;
use core::fmt::{self, Write as _};
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};

/// A counter of one MIB group.
///
/// Implemented by [`IpMib`], [`IpExtMib`], [`IcmpMib`], [`TcpMib`],
/// [`UdpMib`], [`UdpLiteMib`] and [`LinuxMib`] (TcpExt).
pub trait MibField: Copy + fmt::Debug + 'static {
    /// The group's label in `/proc/net/snmp` or `/proc/net/netstat`
    /// (`"Ip"`, `"TcpExt"`, …).
    const GROUP: &'static str;
    /// Every counter of the group, in the order Linux prints them.
    const ALL: &'static [Self];
    /// Where the group starts in a shard.
    #[doc(hidden)]
    const OFFSET: usize;
    /// The counter's position within its group.
    fn index(self) -> usize;
    /// The counter's name exactly as Linux prints it (`"InReceives"`).
    fn name(self) -> &'static str;
}

macro_rules! mib_group {
    (
        $(#[$meta:meta])*
        $ty:ident, $group:literal, offset = $offset:expr;
        $( $(#[doc = $doc:literal])* $variant:ident = $name:literal, )*
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u16)]
        pub enum $ty {
            $( $(#[doc = $doc])* #[doc = concat!("Printed as `", $name, "`.")] $variant, )*
        }

        impl $ty {
            /// Number of counters in the group.
            pub const COUNT: usize = [$($name),*].len();
        }

        impl MibField for $ty {
            const GROUP: &'static str = $group;
            const ALL: &'static [Self] = &[$($ty::$variant),*];
            const OFFSET: usize = $offset;
            fn index(self) -> usize {
                self as usize
            }
            fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }
        }
    };
}

mib_group! {
    /// The `Ip:` group of `/proc/net/snmp` (after `Forwarding` and
    /// `DefaultTTL`, which come from sysctls).
    ///
    /// Mirrors `snmp4_ipstats_list` in `net/ipv4/proc.c` (the
    /// `IPSTATS_MIB_*` counters).
    IpMib, "Ip", offset = 0;
    /// Datagrams received from interfaces, including those in error.
    InReceives = "InReceives",
    /// Datagrams discarded for header errors (bad checksum, version, TTL…).
    InHdrErrors = "InHdrErrors",
    /// Datagrams discarded for an invalid destination address.
    InAddrErrors = "InAddrErrors",
    /// Datagrams forwarded (`IPSTATS_MIB_OUTFORWDATAGRAMS`).
    ForwDatagrams = "ForwDatagrams",
    /// Datagrams for an unknown or unsupported protocol.
    InUnknownProtos = "InUnknownProtos",
    /// Datagrams discarded without error (e.g. lack of buffer space).
    InDiscards = "InDiscards",
    /// Datagrams delivered to upper-layer protocols.
    InDelivers = "InDelivers",
    /// Datagrams handed to IP for transmission by local protocols.
    OutRequests = "OutRequests",
    /// Output datagrams discarded without error.
    OutDiscards = "OutDiscards",
    /// Output datagrams discarded for lack of a route.
    OutNoRoutes = "OutNoRoutes",
    /// Reassembly timeouts.
    ReasmTimeout = "ReasmTimeout",
    /// Fragments received needing reassembly.
    ReasmReqds = "ReasmReqds",
    /// Datagrams successfully reassembled.
    ReasmOKs = "ReasmOKs",
    /// Reassembly failures.
    ReasmFails = "ReasmFails",
    /// Datagrams successfully fragmented.
    FragOKs = "FragOKs",
    /// Datagrams that needed fragmenting but could not be (DF set).
    FragFails = "FragFails",
    /// Fragments created.
    FragCreates = "FragCreates",
    /// Datagrams transmitted, forwarded ones included (`IPSTATS_MIB_OUTPKTS`).
    OutTransmits = "OutTransmits",
}

mib_group! {
    /// The `IpExt:` group of `/proc/net/netstat`.
    ///
    /// Mirrors `snmp4_ipextstats_list` in `net/ipv4/proc.c`.
    IpExtMib, "IpExt", offset = IpMib::COUNT;
    /// Datagrams dropped for lack of an input route.
    InNoRoutes = "InNoRoutes",
    /// Datagrams shorter than their IP total length.
    InTruncatedPkts = "InTruncatedPkts",
    /// Multicast datagrams received.
    InMcastPkts = "InMcastPkts",
    /// Multicast datagrams sent.
    OutMcastPkts = "OutMcastPkts",
    /// Broadcast datagrams received.
    InBcastPkts = "InBcastPkts",
    /// Broadcast datagrams sent.
    OutBcastPkts = "OutBcastPkts",
    /// Octets received.
    InOctets = "InOctets",
    /// Octets sent.
    OutOctets = "OutOctets",
    /// Multicast octets received.
    InMcastOctets = "InMcastOctets",
    /// Multicast octets sent.
    OutMcastOctets = "OutMcastOctets",
    /// Broadcast octets received.
    InBcastOctets = "InBcastOctets",
    /// Broadcast octets sent.
    OutBcastOctets = "OutBcastOctets",
    /// Datagrams with a bad header checksum.
    InCsumErrors = "InCsumErrors",
    /// Datagrams received with ECN codepoint Not-ECT.
    InNoECTPkts = "InNoECTPkts",
    /// Datagrams received with ECT(1).
    InECT1Pkts = "InECT1Pkts",
    /// Datagrams received with ECT(0).
    InECT0Pkts = "InECT0Pkts",
    /// Datagrams received with CE.
    InCEPkts = "InCEPkts",
    /// Reassemblies failed because fragments overlapped.
    ReasmOverlaps = "ReasmOverlaps",
}

mib_group! {
    /// The scalar counters of the `Icmp:` group of `/proc/net/snmp`; the
    /// per-type columns (`InEchos`, `OutDestUnreachs`, …) come from the
    /// IcmpMsg counters ([`NetMibs::icmpmsg_inc`]), as in Linux.
    ///
    /// Mirrors `ICMP_MIB_*` and `icmp_put()` in `net/ipv4/proc.c`.
    IcmpMib, "Icmp", offset = IpMib::COUNT + IpExtMib::COUNT;
    /// ICMP messages received.
    InMsgs = "InMsgs",
    /// ICMP messages received in error.
    InErrors = "InErrors",
    /// ICMP messages with a bad checksum.
    InCsumErrors = "InCsumErrors",
    /// ICMP messages sent.
    OutMsgs = "OutMsgs",
    /// ICMP messages not sent because of errors.
    OutErrors = "OutErrors",
    /// ICMP messages suppressed by the global rate limit (`icmp_msgs_per_sec`).
    OutRateLimitGlobal = "OutRateLimitGlobal",
    /// ICMP messages suppressed by the per-host rate limit (`icmp_ratelimit`).
    OutRateLimitHost = "OutRateLimitHost",
}

mib_group! {
    /// The `Tcp:` group of `/proc/net/snmp`.
    ///
    /// Mirrors `snmp4_tcp_list` in `net/ipv4/proc.c` (`TCP_MIB_*`).
    /// `CurrEstab` is a gauge (decremented with [`NetMibs::dec`]), and
    /// `MaxConn` is printed signed (it is -1).
    TcpMib, "Tcp", offset = IpMib::COUNT + IpExtMib::COUNT + IcmpMib::COUNT;
    /// Retransmission timeout algorithm: 1 = other (Linux's own).
    RtoAlgorithm = "RtoAlgorithm",
    /// Minimum RTO in milliseconds (200).
    RtoMin = "RtoMin",
    /// Maximum RTO in milliseconds (120000).
    RtoMax = "RtoMax",
    /// Connection limit; -1 = dynamic.
    MaxConn = "MaxConn",
    /// CLOSED -> SYN-SENT transitions.
    ActiveOpens = "ActiveOpens",
    /// LISTEN -> SYN-RCVD transitions.
    PassiveOpens = "PassiveOpens",
    /// Failed connection attempts.
    AttemptFails = "AttemptFails",
    /// Resets in ESTABLISHED or CLOSE-WAIT.
    EstabResets = "EstabResets",
    /// Connections currently ESTABLISHED or CLOSE-WAIT (a gauge).
    CurrEstab = "CurrEstab",
    /// Segments received.
    InSegs = "InSegs",
    /// Segments sent, excluding retransmissions.
    OutSegs = "OutSegs",
    /// Segments retransmitted.
    RetransSegs = "RetransSegs",
    /// Segments received in error.
    InErrs = "InErrs",
    /// Segments sent with RST.
    OutRsts = "OutRsts",
    /// Segments with a bad checksum.
    InCsumErrors = "InCsumErrors",
}

macro_rules! udp_mib_list {
    ($(#[$m:meta])* $ty:ident, $group:literal, $offset:expr) => {
        mib_group! {
            $(#[$m])*
            $ty, $group, offset = $offset;
            /// Datagrams delivered to sockets.
            InDatagrams = "InDatagrams",
            /// Datagrams to a port with no socket.
            NoPorts = "NoPorts",
            /// Datagrams that could not be delivered for other reasons.
            InErrors = "InErrors",
            /// Datagrams sent.
            OutDatagrams = "OutDatagrams",
            /// Datagrams dropped because the receive buffer was full.
            RcvbufErrors = "RcvbufErrors",
            /// Datagrams not sent because the send buffer was full.
            SndbufErrors = "SndbufErrors",
            /// Datagrams with a bad checksum.
            InCsumErrors = "InCsumErrors",
            /// Multicast/broadcast datagrams ignored by the socket lookup.
            IgnoredMulti = "IgnoredMulti",
            /// Datagrams dropped by memory accounting (`udp_mem`).
            MemErrors = "MemErrors",
        }
    };
}

udp_mib_list!(
    /// The `Udp:` group of `/proc/net/snmp`.
    ///
    /// Mirrors `snmp4_udp_list` in `net/ipv4/proc.c` (`UDP_MIB_*`).
    UdpMib,
    "Udp",
    IpMib::COUNT + IpExtMib::COUNT + IcmpMib::COUNT + TcpMib::COUNT
);

udp_mib_list!(
    /// The `UdpLite:` group of `/proc/net/snmp` (same counters as UDP).
    ///
    /// Mirrors `net->mib.udplite_statistics` printed with `snmp4_udp_list`.
    UdpLiteMib,
    "UdpLite",
    IpMib::COUNT + IpExtMib::COUNT + IcmpMib::COUNT + TcpMib::COUNT + UdpMib::COUNT
);

mib_group! {
    /// The `TcpExt:` group of `/proc/net/netstat`.
    ///
    /// Mirrors `snmp4_net_list` in `net/ipv4/proc.c` (`LINUX_MIB_*`) as of
    /// Linux 6.18, in the kernel's order.
    LinuxMib, "TcpExt", offset = IpMib::COUNT + IpExtMib::COUNT + IcmpMib::COUNT
        + TcpMib::COUNT + UdpMib::COUNT + UdpLiteMib::COUNT;
    SyncookiesSent = "SyncookiesSent",
    SyncookiesRecv = "SyncookiesRecv",
    SyncookiesFailed = "SyncookiesFailed",
    EmbryonicRsts = "EmbryonicRsts",
    PruneCalled = "PruneCalled",
    RcvPruned = "RcvPruned",
    OfoPruned = "OfoPruned",
    OutOfWindowIcmps = "OutOfWindowIcmps",
    LockDroppedIcmps = "LockDroppedIcmps",
    ArpFilter = "ArpFilter",
    /// Sockets that finished TIME-WAIT (`LINUX_MIB_TIMEWAITED`).
    TimeWaited = "TW",
    /// `LINUX_MIB_TIMEWAITRECYCLED`.
    TimeWaitRecycled = "TWRecycled",
    /// `LINUX_MIB_TIMEWAITKILLED`.
    TimeWaitKilled = "TWKilled",
    /// `LINUX_MIB_PAWSACTIVEREJECTED`.
    PawsActiveRejected = "PAWSActive",
    /// `LINUX_MIB_PAWSESTABREJECTED`.
    PawsEstabRejected = "PAWSEstab",
    /// Segments beyond the receive window (`LINUX_MIB_BEYOND_WINDOW`).
    BeyondWindow = "BeyondWindow",
    TsecrRejected = "TSEcrRejected",
    /// `LINUX_MIB_PAWS_OLD_ACK`.
    PawsOldAck = "PAWSOldAck",
    /// `LINUX_MIB_PAWS_TW_REJECTED`.
    PawsTimewait = "PAWSTimewait",
    DelayedAcks = "DelayedACKs",
    DelayedAckLocked = "DelayedACKLocked",
    DelayedAckLost = "DelayedACKLost",
    ListenOverflows = "ListenOverflows",
    ListenDrops = "ListenDrops",
    TcpHpHits = "TCPHPHits",
    TcpPureAcks = "TCPPureAcks",
    TcpHpAcks = "TCPHPAcks",
    TcpRenoRecovery = "TCPRenoRecovery",
    TcpSackRecovery = "TCPSackRecovery",
    TcpSackReneging = "TCPSACKReneging",
    TcpSackReorder = "TCPSACKReorder",
    TcpRenoReorder = "TCPRenoReorder",
    TcpTsReorder = "TCPTSReorder",
    TcpFullUndo = "TCPFullUndo",
    TcpPartialUndo = "TCPPartialUndo",
    TcpDsackUndo = "TCPDSACKUndo",
    TcpLossUndo = "TCPLossUndo",
    TcpLostRetransmit = "TCPLostRetransmit",
    TcpRenoFailures = "TCPRenoFailures",
    TcpSackFailures = "TCPSackFailures",
    TcpLossFailures = "TCPLossFailures",
    TcpFastRetrans = "TCPFastRetrans",
    TcpSlowStartRetrans = "TCPSlowStartRetrans",
    TcpTimeouts = "TCPTimeouts",
    TcpLossProbes = "TCPLossProbes",
    TcpLossProbeRecovery = "TCPLossProbeRecovery",
    TcpRenoRecoveryFail = "TCPRenoRecoveryFail",
    TcpSackRecoveryFail = "TCPSackRecoveryFail",
    TcpRcvCollapsed = "TCPRcvCollapsed",
    TcpBacklogCoalesce = "TCPBacklogCoalesce",
    TcpDsackOldSent = "TCPDSACKOldSent",
    TcpDsackOfoSent = "TCPDSACKOfoSent",
    TcpDsackRecv = "TCPDSACKRecv",
    TcpDsackOfoRecv = "TCPDSACKOfoRecv",
    TcpAbortOnData = "TCPAbortOnData",
    TcpAbortOnClose = "TCPAbortOnClose",
    TcpAbortOnMemory = "TCPAbortOnMemory",
    TcpAbortOnTimeout = "TCPAbortOnTimeout",
    TcpAbortOnLinger = "TCPAbortOnLinger",
    TcpAbortFailed = "TCPAbortFailed",
    TcpMemoryPressures = "TCPMemoryPressures",
    TcpMemoryPressuresChrono = "TCPMemoryPressuresChrono",
    TcpSackDiscard = "TCPSACKDiscard",
    TcpDsackIgnoredOld = "TCPDSACKIgnoredOld",
    TcpDsackIgnoredNoUndo = "TCPDSACKIgnoredNoUndo",
    TcpSpuriousRtos = "TCPSpuriousRTOs",
    TcpMd5NotFound = "TCPMD5NotFound",
    TcpMd5Unexpected = "TCPMD5Unexpected",
    TcpMd5Failure = "TCPMD5Failure",
    SackShifted = "TCPSackShifted",
    SackMerged = "TCPSackMerged",
    SackShiftFallback = "TCPSackShiftFallback",
    TcpBacklogDrop = "TCPBacklogDrop",
    PfMemallocDrop = "PFMemallocDrop",
    TcpMinTtlDrop = "TCPMinTTLDrop",
    TcpDeferAcceptDrop = "TCPDeferAcceptDrop",
    /// `LINUX_MIB_IPRPFILTER`: dropped by `rp_filter`.
    IpRpFilter = "IPReversePathFilter",
    TcpTimeWaitOverflow = "TCPTimeWaitOverflow",
    TcpReqQFullDoCookies = "TCPReqQFullDoCookies",
    TcpReqQFullDrop = "TCPReqQFullDrop",
    TcpRetransFail = "TCPRetransFail",
    TcpRcvCoalesce = "TCPRcvCoalesce",
    TcpOfoQueue = "TCPOFOQueue",
    TcpOfoDrop = "TCPOFODrop",
    TcpOfoMerge = "TCPOFOMerge",
    TcpChallengeAck = "TCPChallengeACK",
    TcpSynChallenge = "TCPSYNChallenge",
    TcpFastOpenActive = "TCPFastOpenActive",
    TcpFastOpenActiveFail = "TCPFastOpenActiveFail",
    TcpFastOpenPassive = "TCPFastOpenPassive",
    TcpFastOpenPassiveFail = "TCPFastOpenPassiveFail",
    TcpFastOpenListenOverflow = "TCPFastOpenListenOverflow",
    TcpFastOpenCookieReqd = "TCPFastOpenCookieReqd",
    TcpFastOpenBlackhole = "TCPFastOpenBlackhole",
    TcpSpuriousRtxHostQueues = "TCPSpuriousRtxHostQueues",
    BusyPollRxPackets = "BusyPollRxPackets",
    TcpAutoCorking = "TCPAutoCorking",
    TcpFromZeroWindowAdv = "TCPFromZeroWindowAdv",
    TcpToZeroWindowAdv = "TCPToZeroWindowAdv",
    TcpWantZeroWindowAdv = "TCPWantZeroWindowAdv",
    TcpSynRetrans = "TCPSynRetrans",
    TcpOrigDataSent = "TCPOrigDataSent",
    TcpHystartTrainDetect = "TCPHystartTrainDetect",
    TcpHystartTrainCwnd = "TCPHystartTrainCwnd",
    TcpHystartDelayDetect = "TCPHystartDelayDetect",
    TcpHystartDelayCwnd = "TCPHystartDelayCwnd",
    TcpAckSkippedSynRecv = "TCPACKSkippedSynRecv",
    TcpAckSkippedPaws = "TCPACKSkippedPAWS",
    TcpAckSkippedSeq = "TCPACKSkippedSeq",
    TcpAckSkippedFinWait2 = "TCPACKSkippedFinWait2",
    TcpAckSkippedTimeWait = "TCPACKSkippedTimeWait",
    TcpAckSkippedChallenge = "TCPACKSkippedChallenge",
    TcpWinProbe = "TCPWinProbe",
    TcpKeepAlive = "TCPKeepAlive",
    TcpMtupFail = "TCPMTUPFail",
    TcpMtupSuccess = "TCPMTUPSuccess",
    TcpDelivered = "TCPDelivered",
    TcpDeliveredCe = "TCPDeliveredCE",
    TcpAckCompressed = "TCPAckCompressed",
    TcpZeroWindowDrop = "TCPZeroWindowDrop",
    TcpRcvQDrop = "TCPRcvQDrop",
    TcpWqueueTooBig = "TCPWqueueTooBig",
    TcpFastOpenPassiveAltKey = "TCPFastOpenPassiveAltKey",
    TcpTimeoutRehash = "TcpTimeoutRehash",
    TcpDuplicateDataRehash = "TcpDuplicateDataRehash",
    TcpDsackRecvSegs = "TCPDSACKRecvSegs",
    TcpDsackIgnoredDubious = "TCPDSACKIgnoredDubious",
    TcpMigrateReqSuccess = "TCPMigrateReqSuccess",
    TcpMigrateReqFailure = "TCPMigrateReqFailure",
    TcpPlbRehash = "TCPPLBRehash",
    TcpAoRequired = "TCPAORequired",
    TcpAoBad = "TCPAOBad",
    TcpAoKeyNotFound = "TCPAOKeyNotFound",
    TcpAoGood = "TCPAOGood",
    TcpAoDroppedIcmps = "TCPAODroppedIcmps",
}

/// Counters in one per-CPU shard.
const SHARD_LEN: usize = LinuxMib::OFFSET + LinuxMib::COUNT;
/// IcmpMsg counters: 256 input types then 256 output types.
/// Mirrors `ICMPMSG_MIB_MAX` (`__ICMPMSG_MIB_MAX` = 512).
const ICMPMSG_MIB_MAX: usize = 512;

/// ICMP types with their own column in the `Icmp:` line, in Linux's order.
/// Mirrors `icmpmibmap` in `net/ipv4/proc.c`.
const ICMPMIBMAP: [(&str, u8); 11] = [
    ("DestUnreachs", 3),
    ("TimeExcds", 11),
    ("ParmProbs", 12),
    ("SrcQuenchs", 4),
    ("Redirects", 5),
    ("Echos", 8),
    ("EchoReps", 0),
    ("Timestamps", 13),
    ("TimestampReps", 14),
    ("AddrMasks", 17),
    ("AddrMaskReps", 18),
];

/// One CPU's counters, aligned so that two CPUs never share a cache line.
#[repr(align(128))]
struct MibShard {
    counters: [AtomicU64; SHARD_LEN],
}

impl MibShard {
    fn new() -> MibShard {
        MibShard {
            counters: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A CPU's two shards and the owner of the local one.
struct MibCpu {
    /// Bumped with atomic adds from any thread ([`NetMibs::inc`], and
    /// [`NetMibs::this_cpu`] on a thread that is not the owner).
    shared: MibShard,
    /// Bumped with a plain load and store, only by `owner`.
    local: MibShard,
    /// The [`mib_thread`] id of the one thread that writes `local`; 0
    /// until a thread claims it, then never changed.
    owner: AtomicU64,
}

impl MibCpu {
    fn new() -> MibCpu {
        MibCpu {
            shared: MibShard::new(),
            local: MibShard::new(),
            owner: AtomicU64::new(0),
        }
    }

    /// Whether the calling thread (id `me`) is, or has just become, the
    /// one writer of the local shard.
    #[inline]
    fn owned_by(&self, me: u64) -> bool {
        claim_owner(&self.owner, me)
    }
}

/// Whether the calling thread (id `me`, from [`mib_thread`]) is, or has
/// just become, the one thread named by `owner_cell` (0: nobody yet; once
/// set, never changed).
#[inline]
pub(crate) fn claim_owner(owner_cell: &AtomicU64, me: u64) -> bool {
    let owner = owner_cell.load(Ordering::Relaxed);
    if owner == me {
        return true;
    }
    // Relaxed: the owner id orders nothing; only the thread whose id is
    // stored ever writes the owned data, and it read its own store.
    owner == 0
        && owner_cell
            .compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The source of [`mib_thread`] ids; 0 is never handed out.
static NEXT_MIB_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's id for claiming local shards (0 until first asked).
    static MIB_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// A number that names the calling thread for as long as the process
/// runs (never reused, never 0); `None` while the thread is being torn
/// down.
#[inline]
pub(crate) fn mib_thread() -> Option<u64> {
    MIB_THREAD
        .try_with(|id| {
            let v = id.get();
            if v != 0 {
                return v;
            }
            let v = NEXT_MIB_THREAD.fetch_add(1, Ordering::Relaxed);
            id.set(v);
            v
        })
        .ok()
}

/// One CPU's shard of a [`NetMibs`], from [`NetMibs::this_cpu`].
///
/// Mirrors the per-CPU pointer `this_cpu_ptr()` yields for
/// `__SNMP_INC_STATS()`. On the thread that owns the CPU's local shard a
/// bump is a plain load and store (Linux's `__this_cpu_add()` in softirq
/// context, no locked instruction); on any other thread it is one relaxed
/// atomic add on the CPU's shared shard. The handle is neither `Send` nor
/// `Sync`, so it is only ever used on the thread that made it: the local
/// shard has one writer, and no count is lost:
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let mibs = netcore::NetMibs::new(1);
/// send(mibs.this_cpu(0)); // a handle cannot move to another thread
/// ```
#[derive(Clone, Copy)]
pub struct NetMibsCpu<'a> {
    shard: &'a MibShard,
    /// Whether `shard` is the local shard this thread owns.
    local: bool,
    /// Keeps the handle on the thread that made it.
    _thread: PhantomData<*const ()>,
}

impl NetMibsCpu<'_> {
    /// Adds one to `field`. Mirrors `__SNMP_INC_STATS()`.
    #[inline]
    pub fn inc<F: MibField>(self, field: F) {
        self.add(field, 1);
    }

    /// Adds `n` to `field`. Mirrors `__SNMP_ADD_STATS()`.
    #[inline]
    pub fn add<F: MibField>(self, field: F, n: u64) {
        let c = &self.shard.counters[F::OFFSET + field.index()];
        if self.local {
            // The one writer: load + store loses nothing, and a reader's
            // relaxed load sees the old or the new value, never a tear.
            c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
        } else {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Subtracts one from a gauge. Mirrors `SNMP_DEC_STATS()`.
    #[inline]
    pub fn dec<F: MibField>(self, field: F) {
        self.add(field, 1u64.wrapping_neg());
    }
}

impl fmt::Debug for NetMibsCpu<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetMibsCpu")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// The direction of an IcmpMsg counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpMsgDir {
    /// Received (`InType<N>`).
    In,
    /// Sent (`OutType<N>`).
    Out,
}

/// The IPv4 MIBs of one network namespace, sharded per CPU.
///
/// Mirrors `struct netns_mib` (`net->mib`) with its per-CPU
/// `ip_statistics`, `icmp_statistics`, `tcp_statistics`, `udp_statistics`,
/// `udplite_statistics`, `net_statistics` and the shared
/// `icmpmsg_statistics`. Reading sums the shards (`snmp_fold_field`).
///
/// Each CPU has two shards. [`NetMibs::inc`] and friends, callable from
/// any thread, add atomically to the CPU's *shared* shard
/// (`SNMP_INC_STATS`). [`NetMibs::this_cpu`] is for the CPU's own receive
/// path: the first thread to ask for a CPU's handle becomes the one writer
/// of that CPU's *local* shard and bumps it with a plain load and store
/// (`__SNMP_INC_STATS`, which Linux may use because softirq context is not
/// preempted on its CPU); any other thread's handle adds atomically to the
/// shared shard.
///
/// # Deviations from Linux
///
/// Linux's `__this_cpu_inc()` relies on the CPU running one context at a
/// time. Here a CPU's context can be used from more than one thread (the
/// thread runtime lends a CPU's context to an application thread; scratch
/// contexts of application threads carry a CPU number too), so "this CPU"
/// is not enough to make a plain increment safe. Ownership is per thread
/// instead: the local shard has exactly one writer for its whole life (the
/// thread that claimed it), every other writer uses atomic adds on a
/// separate shard, and a handle cannot leave the thread that made it. No
/// count is lost; the cost is that a thread other than the claimant pays
/// the atomic add, even when it runs that CPU's receive path.
///
/// ```
/// use netcore::{IpMib, NetMibs, TcpMib};
///
/// let mibs = NetMibs::new(2);
/// mibs.inc(0, IpMib::InReceives);
/// mibs.add(1, IpMib::InReceives, 2);
/// mibs.inc(0, TcpMib::CurrEstab);
/// mibs.dec(1, TcpMib::CurrEstab);
/// let snap = mibs.snapshot();
/// assert_eq!(snap.get(IpMib::InReceives), 3);
/// assert_eq!(snap.get(TcpMib::CurrEstab), 0);
/// ```
pub struct NetMibs {
    cpus: Box<[MibCpu]>,
    icmpmsg: Box<[AtomicU64]>,
    forwarding: AtomicU64,
    default_ttl: AtomicU64,
}

impl NetMibs {
    /// MIBs for `nr_cpus` CPUs (at least one), with the TCP constants set
    /// as `tcp_mib_init()` does (RtoAlgorithm 1, RtoMin 200, RtoMax 120000,
    /// MaxConn -1), forwarding off and DefaultTTL 64.
    pub fn new(nr_cpus: usize) -> NetMibs {
        let mibs = NetMibs {
            cpus: (0..nr_cpus.max(1)).map(|_| MibCpu::new()).collect(),
            icmpmsg: (0..ICMPMSG_MIB_MAX).map(|_| AtomicU64::new(0)).collect(),
            forwarding: AtomicU64::new(0),
            default_ttl: AtomicU64::new(64),
        };
        // Mirrors tcp_mib_init() in net/ipv4/af_inet.c.
        mibs.set(TcpMib::RtoAlgorithm, 1);
        mibs.set(TcpMib::RtoMin, 200);
        mibs.set(TcpMib::RtoMax, 120_000);
        mibs.set(TcpMib::MaxConn, u64::MAX); // -1 as printed signed
        mibs
    }

    /// Number of per-CPU shards.
    pub fn nr_cpus(&self) -> usize {
        self.cpus.len()
    }

    #[inline]
    fn cpu(&self, cpu: usize) -> &MibCpu {
        let n = self.cpus.len();
        // An out-of-range CPU folds onto an existing one rather than
        // panic; the test keeps the division off the common path.
        &self.cpus[if cpu < n { cpu } else { cpu % n }]
    }

    #[inline]
    fn cell<F: MibField>(&self, cpu: usize, field: F) -> &AtomicU64 {
        &self.cpu(cpu).shared.counters[F::OFFSET + field.index()]
    }

    /// Every shard, shared and local, of every CPU.
    fn shards(&self) -> impl Iterator<Item = &MibShard> {
        self.cpus.iter().flat_map(|c| [&c.shared, &c.local])
    }

    /// `cpu`'s own counters, for the CPU's receive path, which bumps
    /// several: each bump is then one add at a fixed offset, with no shard
    /// lookup.
    ///
    /// Mirrors `this_cpu_ptr(net->mib.ip_statistics)` as the
    /// `__IP_INC_STATS()` family uses it (`__this_cpu_inc()`). The first
    /// thread to call this for `cpu` becomes the one writer of its local
    /// shard, and its bumps are a plain load and store; on every other
    /// thread the handle adds atomically to the shared shard, as
    /// [`NetMibs::inc`] does (see the type's `# Deviations from Linux`).
    /// An out-of-range `cpu` folds onto an existing CPU, as
    /// [`NetMibs::inc`] does.
    ///
    /// ```
    /// use netcore::{IpMib, NetMibs};
    ///
    /// let mibs = NetMibs::new(2);
    /// let mine = mibs.this_cpu(1);
    /// mine.inc(IpMib::InReceives);
    /// mine.add(IpMib::InDelivers, 3);
    /// assert_eq!(mibs.get(IpMib::InReceives), 1);
    /// assert_eq!(mibs.get(IpMib::InDelivers), 3);
    /// ```
    #[doc(alias = "this_cpu_ptr")]
    #[inline]
    pub fn this_cpu(&self, cpu: usize) -> NetMibsCpu<'_> {
        let c = self.cpu(cpu);
        let local = mib_thread().is_some_and(|me| c.owned_by(me));
        NetMibsCpu {
            shard: if local { &c.local } else { &c.shared },
            local,
            _thread: PhantomData,
        }
    }

    /// Adds one to `field` on `cpu`'s shard.
    ///
    /// Mirrors `SNMP_INC_STATS()` (`__IP_INC_STATS`, `TCP_INC_STATS`,
    /// `NET_INC_STATS`, …). Relaxed: counters order nothing.
    #[doc(alias = "SNMP_INC_STATS")]
    #[inline]
    pub fn inc<F: MibField>(&self, cpu: usize, field: F) {
        self.cell(cpu, field).fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n` to `field` on `cpu`'s shard. Mirrors `SNMP_ADD_STATS()`.
    #[doc(alias = "SNMP_ADD_STATS")]
    #[inline]
    pub fn add<F: MibField>(&self, cpu: usize, field: F, n: u64) {
        self.cell(cpu, field).fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts one from a gauge (`CurrEstab`) on `cpu`'s shard.
    ///
    /// Mirrors `SNMP_DEC_STATS()`. A shard may wrap below zero when the
    /// decrement happens on another CPU than the increment; the sum is
    /// still right because the fold is a wrapping sum.
    #[doc(alias = "SNMP_DEC_STATS")]
    #[inline]
    pub fn dec<F: MibField>(&self, cpu: usize, field: F) {
        self.cell(cpu, field).fetch_sub(1, Ordering::Relaxed);
    }

    /// Sets `field` to `value` (for gauges and constants; not a packet-path
    /// operation: concurrent increments on other CPUs may be lost).
    pub fn set<F: MibField>(&self, field: F, value: u64) {
        for (i, shard) in self.shards().enumerate() {
            let v = if i == 0 { value } else { 0 };
            shard.counters[F::OFFSET + field.index()].store(v, Ordering::Relaxed);
        }
    }

    /// The current value of `field`, summed over the CPUs.
    ///
    /// Mirrors `snmp_fold_field()`.
    #[doc(alias = "snmp_fold_field")]
    pub fn get<F: MibField>(&self, field: F) -> u64 {
        self.shards().fold(0u64, |acc, s| {
            acc.wrapping_add(s.counters[F::OFFSET + field.index()].load(Ordering::Relaxed))
        })
    }

    /// Counts one ICMP message of `icmp_type` in direction `dir`.
    ///
    /// Mirrors `ICMPMSGIN_INC_STATS()`/`ICMPMSGOUT_INC_STATS()`; the counters
    /// are shared atomics, not per CPU, as in Linux.
    pub fn icmpmsg_inc(&self, dir: IcmpMsgDir, icmp_type: u8) {
        let idx = usize::from(icmp_type) + if dir == IcmpMsgDir::Out { 0x100 } else { 0 };
        self.icmpmsg[idx].fetch_add(1, Ordering::Relaxed);
    }

    /// Records the `Ip: Forwarding` value (from `net.ipv4.conf.all.forwarding`).
    pub fn set_ip_forwarding(&self, forwarding: bool) {
        self.forwarding
            .store(u64::from(forwarding), Ordering::Relaxed);
    }

    /// Records the `Ip: DefaultTTL` value (from `net.ipv4.ip_default_ttl`).
    pub fn set_ip_default_ttl(&self, ttl: u8) {
        self.default_ttl.store(u64::from(ttl), Ordering::Relaxed);
    }

    /// Sums every shard into a plain snapshot.
    pub fn snapshot(&self) -> MibSnapshot {
        let mut values = vec![0u64; SHARD_LEN];
        for shard in self.shards() {
            for (v, c) in values.iter_mut().zip(shard.counters.iter()) {
                *v = v.wrapping_add(c.load(Ordering::Relaxed));
            }
        }
        let mut icmpmsg = [0u64; ICMPMSG_MIB_MAX];
        for (v, c) in icmpmsg.iter_mut().zip(self.icmpmsg.iter()) {
            *v = c.load(Ordering::Relaxed);
        }
        MibSnapshot {
            values,
            icmpmsg: Box::new(icmpmsg),
            forwarding: self.forwarding.load(Ordering::Relaxed) != 0,
            default_ttl: self.default_ttl.load(Ordering::Relaxed) as u8,
        }
    }
}

impl fmt::Debug for NetMibs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetMibs")
            .field("nr_cpus", &self.cpus.len())
            .finish_non_exhaustive()
    }
}

/// The summed value of every counter at one moment, and its text forms.
#[derive(Clone, PartialEq, Eq)]
pub struct MibSnapshot {
    values: Vec<u64>,
    icmpmsg: Box<[u64; ICMPMSG_MIB_MAX]>,
    /// `Ip: Forwarding` (printed 1 when forwarding, 2 when not).
    pub forwarding: bool,
    /// `Ip: DefaultTTL`.
    pub default_ttl: u8,
}

impl Default for MibSnapshot {
    fn default() -> MibSnapshot {
        MibSnapshot {
            values: vec![0; SHARD_LEN],
            icmpmsg: Box::new([0; ICMPMSG_MIB_MAX]),
            forwarding: false,
            default_ttl: 64,
        }
    }
}

impl MibSnapshot {
    /// The value of `field`.
    pub fn get<F: MibField>(&self, field: F) -> u64 {
        self.values[F::OFFSET + field.index()]
    }

    /// Sets `field` (for building expected snapshots in tests).
    pub fn set<F: MibField>(&mut self, field: F, value: u64) {
        self.values[F::OFFSET + field.index()] = value;
    }

    /// The IcmpMsg counter of `icmp_type` in direction `dir`.
    pub fn icmpmsg(&self, dir: IcmpMsgDir, icmp_type: u8) -> u64 {
        self.icmpmsg[usize::from(icmp_type) + if dir == IcmpMsgDir::Out { 0x100 } else { 0 }]
    }

    /// Sets an IcmpMsg counter (for building expected snapshots in tests).
    pub fn set_icmpmsg(&mut self, dir: IcmpMsgDir, icmp_type: u8, value: u64) {
        self.icmpmsg[usize::from(icmp_type) + if dir == IcmpMsgDir::Out { 0x100 } else { 0 }] =
            value;
    }

    /// Every counter of a group with its name, in Linux's order.
    pub fn group<F: MibField>(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        F::ALL.iter().map(|&f| (f.name(), self.get(f)))
    }

    fn put_group<F: MibField>(&self, out: &mut String) {
        let _ = write!(out, "{}:", F::GROUP);
        for &f in F::ALL {
            let _ = write!(out, " {}", f.name());
        }
        let _ = write!(out, "\n{}:", F::GROUP);
        for &f in F::ALL {
            let v = self.get(f);
            // MaxConn is signed (RFC 2012); everything else unsigned.
            if F::GROUP == "Tcp" && f.name() == "MaxConn" {
                let _ = write!(out, " {}", v as i64);
            } else {
                let _ = write!(out, " {v}");
            }
        }
        out.push('\n');
    }

    /// The per-type columns of the `Icmp:` line, In or Out.
    fn icmp_columns(&self, dir: IcmpMsgDir) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ICMPMIBMAP
            .iter()
            .map(move |&(name, ty)| (name, self.icmpmsg(dir, ty)))
    }

    /// The text of `/proc/net/snmp`.
    ///
    /// Mirrors `snmp_seq_show()` in `net/ipv4/proc.c`: for each group a line
    /// of names and a line of values; `IcmpMsg` lines list only non-zero
    /// types, at most 16 per pair of lines, and are absent when all are zero.
    #[doc(alias = "snmp_seq_show")]
    pub fn proc_net_snmp(&self) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("Ip: Forwarding DefaultTTL");
        for &f in IpMib::ALL {
            let _ = write!(out, " {}", f.name());
        }
        let _ = write!(
            out,
            "\nIp: {} {}",
            if self.forwarding { 1 } else { 2 },
            self.default_ttl
        );
        for &f in IpMib::ALL {
            let _ = write!(out, " {}", self.get(f));
        }
        // icmp_put()
        out.push_str("\nIcmp: InMsgs InErrors InCsumErrors");
        for (name, _) in self.icmp_columns(IcmpMsgDir::In) {
            let _ = write!(out, " In{name}");
        }
        out.push_str(" OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost");
        for (name, _) in self.icmp_columns(IcmpMsgDir::Out) {
            let _ = write!(out, " Out{name}");
        }
        let _ = write!(
            out,
            "\nIcmp: {} {} {}",
            self.get(IcmpMib::InMsgs),
            self.get(IcmpMib::InErrors),
            self.get(IcmpMib::InCsumErrors)
        );
        for (_, v) in self.icmp_columns(IcmpMsgDir::In) {
            let _ = write!(out, " {v}");
        }
        let _ = write!(
            out,
            " {} {} {} {}",
            self.get(IcmpMib::OutMsgs),
            self.get(IcmpMib::OutErrors),
            self.get(IcmpMib::OutRateLimitGlobal),
            self.get(IcmpMib::OutRateLimitHost)
        );
        for (_, v) in self.icmp_columns(IcmpMsgDir::Out) {
            let _ = write!(out, " {v}");
        }
        // icmpmsg_put(): non-zero types, 16 per line pair.
        let nonzero: Vec<(usize, u64)> = self
            .icmpmsg
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, v)| v != 0)
            .collect();
        for chunk in nonzero.chunks(16) {
            out.push_str("\nIcmpMsg:");
            for &(i, _) in chunk {
                let dir = if i & 0x100 != 0 { "Out" } else { "In" };
                let _ = write!(out, " {dir}Type{}", i & 0xff);
            }
            out.push_str("\nIcmpMsg:");
            for &(_, v) in chunk {
                let _ = write!(out, " {v}");
            }
        }
        out.push('\n');
        self.put_group::<TcpMib>(&mut out);
        self.put_group::<UdpMib>(&mut out);
        self.put_group::<UdpLiteMib>(&mut out);
        out
    }

    /// The text of `/proc/net/netstat` (IPv4 part: `TcpExt` and `IpExt`).
    ///
    /// Mirrors `netstat_seq_show()` in `net/ipv4/proc.c`.
    ///
    /// # Deviations from Linux
    /// Linux also prints an `MPTcpExt:` group; netstack has no MPTCP.
    #[doc(alias = "netstat_seq_show")]
    pub fn proc_net_netstat(&self) -> String {
        let mut out = String::with_capacity(8192);
        self.put_group::<LinuxMib>(&mut out);
        self.put_group::<IpExtMib>(&mut out);
        out
    }

    /// The counters as `netstat -s` (net-tools) lays them out: a header per
    /// group and one indented line per counter.
    ///
    /// # Deviations from Linux
    /// net-tools words each known counter as a sentence ("`12 total
    /// packets received`"); this prints the sentence for the common Ip, Tcp
    /// and Udp counters and `Name: value` for the rest, as net-tools does
    /// for counters it does not know. Zero counters are omitted except in
    /// the Tcp group, which net-tools always prints in full.
    pub fn netstat_s(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Ip:");
        let _ = writeln!(
            out,
            "    Forwarding: {}",
            if self.forwarding { "1" } else { "2" }
        );
        self.put_s::<IpMib>(&mut out, false, |f| match f {
            IpMib::InReceives => Some("total packets received"),
            IpMib::ForwDatagrams => Some("forwarded"),
            IpMib::InDiscards => Some("incoming packets discarded"),
            IpMib::InDelivers => Some("incoming packets delivered"),
            IpMib::OutRequests => Some("requests sent out"),
            IpMib::InHdrErrors => Some("with invalid headers"),
            IpMib::InAddrErrors => Some("with invalid addresses"),
            IpMib::OutDiscards => Some("outgoing packets dropped"),
            IpMib::OutNoRoutes => Some("dropped because of missing route"),
            _ => None,
        });
        let _ = writeln!(out, "Icmp:");
        let _ = writeln!(
            out,
            "    {} ICMP messages received",
            self.get(IcmpMib::InMsgs)
        );
        let _ = writeln!(
            out,
            "    {} input ICMP message failed",
            self.get(IcmpMib::InErrors)
        );
        let _ = writeln!(out, "    {} ICMP messages sent", self.get(IcmpMib::OutMsgs));
        let _ = writeln!(
            out,
            "    {} ICMP messages failed",
            self.get(IcmpMib::OutErrors)
        );
        let nonzero: Vec<(usize, u64)> = self
            .icmpmsg
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, v)| v != 0)
            .collect();
        if !nonzero.is_empty() {
            let _ = writeln!(out, "IcmpMsg:");
            for (i, v) in nonzero {
                let dir = if i & 0x100 != 0 { "Out" } else { "In" };
                let _ = writeln!(out, "        {dir}Type{}: {v}", i & 0xff);
            }
        }
        let _ = writeln!(out, "Tcp:");
        self.put_s::<TcpMib>(&mut out, true, |f| match f {
            TcpMib::ActiveOpens => Some("active connection openings"),
            TcpMib::PassiveOpens => Some("passive connection openings"),
            TcpMib::AttemptFails => Some("failed connection attempts"),
            TcpMib::EstabResets => Some("connection resets received"),
            TcpMib::CurrEstab => Some("connections established"),
            TcpMib::InSegs => Some("segments received"),
            TcpMib::OutSegs => Some("segments sent out"),
            TcpMib::RetransSegs => Some("segments retransmitted"),
            TcpMib::InErrs => Some("bad segments received"),
            TcpMib::OutRsts => Some("resets sent"),
            _ => None,
        });
        for (group, udp) in [("Udp", false), ("UdpLite", true)] {
            let _ = writeln!(out, "{group}:");
            let words = |name: &str| match name {
                "InDatagrams" => Some("packets received"),
                "NoPorts" => Some("packets to unknown port received"),
                "InErrors" => Some("packet receive errors"),
                "OutDatagrams" => Some("packets sent"),
                "RcvbufErrors" => Some("receive buffer errors"),
                "SndbufErrors" => Some("send buffer errors"),
                _ => None,
            };
            if udp {
                self.put_s::<UdpLiteMib>(&mut out, false, |f| words(f.name()));
            } else {
                self.put_s::<UdpMib>(&mut out, false, |f| words(f.name()));
            }
        }
        let _ = writeln!(out, "TcpExt:");
        self.put_s::<LinuxMib>(&mut out, false, |_| None);
        let _ = writeln!(out, "IpExt:");
        self.put_s::<IpExtMib>(&mut out, false, |_| None);
        out
    }

    fn put_s<F: MibField>(
        &self,
        out: &mut String,
        all: bool,
        words: impl Fn(F) -> Option<&'static str>,
    ) {
        for &f in F::ALL {
            let v = self.get(f);
            match words(f) {
                Some(w) => {
                    if all || v != 0 {
                        let _ = writeln!(out, "    {v} {w}");
                    }
                }
                None => {
                    if v != 0 {
                        let shown = if F::GROUP == "Tcp" && f.name() == "MaxConn" {
                            (v as i64).to_string()
                        } else {
                            v.to_string()
                        };
                        let _ = writeln!(out, "    {}: {shown}", f.name());
                    }
                }
            }
        }
    }
}

impl fmt::Debug for MibSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn nonzero<F: MibField>(s: &MibSnapshot, m: &mut fmt::DebugMap<'_, '_>) {
            for &fld in F::ALL {
                let v = s.get(fld);
                if v != 0 {
                    m.entry(&format_args!("{}.{}", F::GROUP, fld.name()), &v);
                }
            }
        }
        let mut m = f.debug_map();
        nonzero::<IpMib>(self, &mut m);
        nonzero::<IpExtMib>(self, &mut m);
        nonzero::<IcmpMib>(self, &mut m);
        nonzero::<TcpMib>(self, &mut m);
        nonzero::<UdpMib>(self, &mut m);
        nonzero::<UdpLiteMib>(self, &mut m);
        nonzero::<LinuxMib>(self, &mut m);
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn group_sizes_match_linux() {
        assert_eq!(IpMib::COUNT, 18);
        assert_eq!(IpExtMib::COUNT, 18);
        assert_eq!(TcpMib::COUNT, 15);
        assert_eq!(UdpMib::COUNT, 9);
        assert_eq!(
            LinuxMib::ALL.first().map(|f| f.name()),
            Some("SyncookiesSent")
        );
        assert_eq!(
            LinuxMib::ALL.last().map(|f| f.name()),
            Some("TCPAODroppedIcmps")
        );
        assert_eq!(LinuxMib::TimeWaited.name(), "TW");
        assert_eq!(LinuxMib::TcpChallengeAck.name(), "TCPChallengeACK");
        // Every name is unique within its group.
        let mut names: Vec<&str> = LinuxMib::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), LinuxMib::COUNT);
        assert_eq!(std::mem::align_of::<MibShard>(), 128);
    }

    #[test]
    fn shards_sum_across_threads() {
        let mibs = Arc::new(NetMibs::new(4));
        let threads: Vec<_> = (0..4)
            .map(|cpu| {
                let mibs = Arc::clone(&mibs);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        mibs.inc(cpu, IpMib::InReceives);
                        mibs.add(cpu, IpExtMib::InOctets, 60);
                        mibs.inc(cpu, TcpMib::CurrEstab);
                        // Close on the "next" CPU: the gauge still sums right.
                        mibs.dec((cpu + 1) % 4, TcpMib::CurrEstab);
                    }
                    mibs.inc(cpu, TcpMib::CurrEstab);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let snap = mibs.snapshot();
        assert_eq!(snap.get(IpMib::InReceives), 40_000);
        assert_eq!(snap.get(IpExtMib::InOctets), 2_400_000);
        assert_eq!(snap.get(TcpMib::CurrEstab), 4);
        assert_eq!(mibs.get(TcpMib::CurrEstab), 4);
        mibs.set(TcpMib::CurrEstab, 1);
        assert_eq!(mibs.get(TcpMib::CurrEstab), 1);
        // An out-of-range CPU does not panic.
        mibs.inc(99, UdpMib::NoPorts);
        assert_eq!(mibs.get(UdpMib::NoPorts), 1);
    }

    fn known_snapshot() -> MibSnapshot {
        let mibs = NetMibs::new(2);
        mibs.add(0, IpMib::InReceives, 120);
        mibs.add(1, IpMib::InDelivers, 118);
        mibs.add(0, IpMib::OutRequests, 100);
        mibs.add(1, IpMib::InHdrErrors, 2);
        mibs.add(0, IpMib::OutTransmits, 100);
        mibs.add(0, IcmpMib::InMsgs, 3);
        mibs.add(0, IcmpMib::OutMsgs, 2);
        mibs.icmpmsg_inc(IcmpMsgDir::In, 8);
        mibs.icmpmsg_inc(IcmpMsgDir::In, 8);
        mibs.icmpmsg_inc(IcmpMsgDir::In, 3);
        mibs.icmpmsg_inc(IcmpMsgDir::Out, 0);
        mibs.icmpmsg_inc(IcmpMsgDir::Out, 0);
        mibs.add(0, TcpMib::ActiveOpens, 5);
        mibs.inc(1, TcpMib::CurrEstab);
        mibs.add(0, TcpMib::InSegs, 40);
        mibs.add(1, TcpMib::OutSegs, 42);
        mibs.add(0, UdpMib::InDatagrams, 7);
        mibs.add(0, UdpMib::NoPorts, 1);
        mibs.add(0, LinuxMib::ListenDrops, 9);
        mibs.add(1, LinuxMib::TcpAoDroppedIcmps, 1);
        mibs.add(1, IpExtMib::InOctets, 6000);
        mibs.snapshot()
    }

    /// The value of `IpMib::InReceives` in CPU `cpu`'s shared and local
    /// shards.
    fn in_receives_on(mibs: &NetMibs, cpu: usize) -> (u64, u64) {
        let at = IpMib::OFFSET + IpMib::InReceives.index();
        let c = &mibs.cpus[cpu];
        (
            c.shared.counters[at].load(Ordering::Relaxed),
            c.local.counters[at].load(Ordering::Relaxed),
        )
    }

    #[test]
    fn this_cpu_bumps_the_cpu_that_inc_bumps() {
        let mibs = NetMibs::new(3);
        let c1 = mibs.this_cpu(1);
        c1.inc(IpMib::InReceives);
        c1.add(IpExtMib::InOctets, 64);
        c1.inc(TcpMib::CurrEstab);
        mibs.this_cpu(2).dec(TcpMib::CurrEstab);
        // CPU 4 of 3 folds onto CPU 1, as inc() does.
        mibs.this_cpu(4).inc(IpMib::InReceives);
        mibs.inc(4, IpMib::InReceives);
        assert_eq!(mibs.get(IpMib::InReceives), 3);
        assert_eq!(mibs.get(IpExtMib::InOctets), 64);
        assert_eq!(mibs.get(TcpMib::CurrEstab), 0);
        assert_eq!(mibs.snapshot().get(IpMib::InReceives), 3);
        // This thread claimed CPU 1's local shard: this_cpu() bumps it,
        // inc() the shared one.
        assert_eq!(in_receives_on(&mibs, 0), (0, 0));
        assert_eq!(in_receives_on(&mibs, 1), (1, 2));
        assert_eq!(in_receives_on(&mibs, 2), (0, 0));
        assert!(format!("{c1:?}").contains("local: true"));
        // set() clears the local shards too.
        mibs.set(IpMib::InReceives, 7);
        assert_eq!(mibs.get(IpMib::InReceives), 7);
    }

    #[test]
    fn another_thread_adds_to_the_shared_shard() {
        let mibs = NetMibs::new(2);
        mibs.this_cpu(0).inc(IpMib::InReceives);
        std::thread::scope(|s| {
            s.spawn(|| {
                let h = mibs.this_cpu(0);
                assert!(format!("{h:?}").contains("local: false"));
                h.inc(IpMib::InReceives);
                // CPU 1 is still free: this thread claims it.
                mibs.this_cpu(1).inc(IpMib::InReceives);
            });
        });
        assert_eq!(in_receives_on(&mibs, 0), (1, 1));
        assert_eq!(in_receives_on(&mibs, 1), (0, 1));
        // The claimant of CPU 1 has exited; this thread still counts,
        // through the shared shard.
        mibs.this_cpu(1).inc(IpMib::InReceives);
        assert_eq!(in_receives_on(&mibs, 1), (1, 1));
        assert_eq!(mibs.get(IpMib::InReceives), 4);
    }

    /// The owner's plain bumps and other threads' atomic ones on the same
    /// CPU, at once: every count arrives.
    #[test]
    fn no_count_is_lost_when_threads_share_a_cpu() {
        const N: u64 = 20_000;
        let mibs = NetMibs::new(1);
        std::thread::scope(|s| {
            for t in 0..4 {
                let mibs = &mibs;
                s.spawn(move || {
                    for i in 0..N {
                        if (i + t) % 2 == 0 {
                            mibs.this_cpu(0).inc(IpMib::InReceives);
                        } else {
                            mibs.inc(0, IpMib::InReceives);
                        }
                        mibs.this_cpu(0).add(IpExtMib::InOctets, 3);
                    }
                });
            }
        });
        assert_eq!(mibs.get(IpMib::InReceives), 4 * N);
        assert_eq!(mibs.get(IpExtMib::InOctets), 4 * N * 3);
        let (shared, local) = in_receives_on(&mibs, 0);
        assert!(local > 0 && shared > 0, "both shards were used");
    }

    #[test]
    fn proc_net_snmp_text_is_exact() {
        let text = known_snapshot().proc_net_snmp();
        let expected = "\
Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits
Ip: 2 64 120 2 0 0 0 0 118 100 0 0 0 0 0 0 0 0 0 100
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps
Icmp: 3 0 0 1 0 0 0 0 2 0 0 0 0 0 2 0 0 0 0 0 0 0 0 0 2 0 0 0 0
IcmpMsg: InType3 InType8 OutType0
IcmpMsg: 1 2 2
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 5 0 0 0 1 40 42 0 0 0 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 7 1 0 0 0 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
";
        assert_eq!(text, expected);
    }

    #[test]
    fn icmpmsg_lines_wrap_at_sixteen_and_vanish_when_zero() {
        let mut snap = MibSnapshot::default();
        assert!(!snap.proc_net_snmp().contains("IcmpMsg"));
        for ty in 0..17u8 {
            snap.set_icmpmsg(IcmpMsgDir::In, ty, 1);
        }
        let text = snap.proc_net_snmp();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("IcmpMsg:")).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0].split(' ').count(), 17);
        assert_eq!(lines[2], "IcmpMsg: InType16");
        assert_eq!(lines[3], "IcmpMsg: 1");
    }

    #[test]
    fn proc_net_netstat_has_every_name_in_order() {
        let text = known_snapshot().proc_net_netstat();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        let names: Vec<&str> = lines[0].split(' ').collect();
        let values: Vec<&str> = lines[1].split(' ').collect();
        assert_eq!(names[0], "TcpExt:");
        assert_eq!(names.len(), LinuxMib::COUNT + 1);
        assert_eq!(values.len(), names.len());
        let at = |n: &str| names.iter().position(|&x| x == n).unwrap();
        assert_eq!(values[at("ListenDrops")], "9");
        assert_eq!(values[at("TCPAODroppedIcmps")], "1");
        assert_eq!(values[at("SyncookiesSent")], "0");
        assert!(at("PAWSEstab") + 1 == at("BeyondWindow"));
        assert!(at("PAWSTimewait") + 1 == at("DelayedACKs"));
        assert_eq!(
            lines[2],
            "IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets InMcastOctets OutMcastOctets InBcastOctets OutBcastOctets InCsumErrors InNoECTPkts InECT1Pkts InECT0Pkts InCEPkts ReasmOverlaps"
        );
        assert_eq!(lines[3], "IpExt: 0 0 0 0 0 0 6000 0 0 0 0 0 0 0 0 0 0 0");
    }

    #[test]
    fn netstat_s_words_known_counters() {
        let text = known_snapshot().netstat_s();
        assert!(text.starts_with("Ip:\n    Forwarding: 2\n    120 total packets received\n"));
        assert!(text.contains("    2 with invalid headers\n"));
        assert!(
            text.contains(
                "IcmpMsg:\n        InType3: 1\n        InType8: 2\n        OutType0: 2\n"
            )
        );
        assert!(text.contains("Tcp:\n    RtoAlgorithm: 1\n    RtoMin: 200\n    RtoMax: 120000\n    MaxConn: -1\n    5 active connection openings\n    0 passive connection openings\n"));
        assert!(text.contains("Udp:\n    7 packets received\n    1 packets to unknown port received\nUdpLite:\nTcpExt:\n    ListenDrops: 9\n    TCPAODroppedIcmps: 1\nIpExt:\n    InOctets: 6000\n"));
    }
}
