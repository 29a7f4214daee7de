//! Connection tracking: tuples, the connection table, its hooks and
//! counters.
//!
//! Mirrors `net/netfilter/nf_conntrack_core.c` (`nf_conntrack_in()`,
//! `resolve_normal_ct()`, `init_conntrack()`, `__nf_conntrack_confirm()`,
//! `early_drop()`, the gc worker), `include/net/netfilter/nf_conntrack_tuple.h`
//! and `net/netfilter/nf_conntrack_standalone.c` (the listing).
//!
//! ```text
//!  PRE_ROUTING / LOCAL_OUT @ -200         LOCAL_IN / POST_ROUTING @ INT_MAX
//!  nf_conntrack_in:                        nf_conntrack_confirm:
//!   tuple ─► hash ─► found? ─► l4 packet()  unconfirmed? insert orig+reply
//!              │ no                          into the hash (CONFIRMED)
//!              └► init_conntrack (unconfirmed slot, early_drop if full)
//!   skb.nfct = (generation, slot, ctinfo)
//! ```
//!
//! Tables, conntrack matches and NAT find the packet's connection through
//! [`SkBuff::nfct`](netcore::SkBuff): an opaque handle to a slot here.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use netcore::{Duration, Instant, SkBuff, Sysctl};
use parking_lot::Mutex;

use crate::core::NfHookReg;
use crate::core::{NfHookHandle, NfHooks};
use crate::netfilter::{NfHookOps, NfHookState, NfInetHooks, NfSkb, NfVerdict};
use crate::netfilter_ipv4::{NF_IP_PRI_CONNTRACK, NF_IP_PRI_CONNTRACK_CONFIRM};
use crate::nf_conntrack_proto_icmp::{
    icmp_error_tuple, icmp_new, icmp_pkt_to_tuple, is_icmp_error,
};
use crate::nf_conntrack_proto_tcp::{IpCtTcp, TcpConntrack, tcp_error, tcp_new, tcp_packet};
use crate::nf_conntrack_proto_udp::{udp_new, udp_packet};
use crate::x_tables::NetfilterContext;

/// One direction of a connection: addresses, protocol and the protocol's
/// identifiers (ports; ICMP id, type and code).
///
/// Mirrors `struct nf_conntrack_tuple`. For TCP, UDP and other port
/// protocols `src_u`/`dst_u` are the ports; for ICMP `src_u` is the echo id
/// and `dst_u` is `type << 8 | code`.
#[doc(alias = "nf_conntrack_tuple")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NfConntrackTuple {
    /// Source address (`src.u3`).
    pub src: Ipv4Addr,
    /// Destination address (`dst.u3`).
    pub dst: Ipv4Addr,
    /// The IP protocol (`dst.protonum`).
    pub protonum: u8,
    /// Source port or ICMP id (`src.u`).
    pub src_u: u16,
    /// Destination port or ICMP `type << 8 | code` (`dst.u`).
    pub dst_u: u16,
}

impl Hash for NfConntrackTuple {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(u64::from(self.src.to_bits()) << 32 | u64::from(self.dst.to_bits()));
        h.write_u64(
            u64::from(self.protonum) << 32 | u64::from(self.src_u) << 16 | u64::from(self.dst_u),
        );
    }
}

impl NfConntrackTuple {
    /// The tuple of the other direction.
    ///
    /// Mirrors `nf_ct_invert_tuple()`: addresses and ports swap; an ICMP
    /// request becomes its reply type (echo 8 ↔ 0, timestamp 13 ↔ 14,
    /// info 15 ↔ 16, address mask 17 ↔ 18).
    pub fn invert(&self) -> NfConntrackTuple {
        if self.protonum == 1 {
            let ty = (self.dst_u >> 8) as u8;
            let code = self.dst_u & 0xff;
            let inv = match ty {
                8 => 0,
                0 => 8,
                13 => 14,
                14 => 13,
                15 => 16,
                16 => 15,
                17 => 18,
                18 => 17,
                other => other,
            };
            return NfConntrackTuple {
                src: self.dst,
                dst: self.src,
                protonum: 1,
                src_u: self.src_u,
                dst_u: u16::from(inv) << 8 | code,
            };
        }
        NfConntrackTuple {
            src: self.dst,
            dst: self.src,
            protonum: self.protonum,
            src_u: self.dst_u,
            dst_u: self.src_u,
        }
    }

    fn print(&self, out: &mut String) {
        let _ = write!(out, "src={} dst={} ", self.src, self.dst);
        match self.protonum {
            1 => {
                let _ = write!(
                    out,
                    "type={} code={} id={} ",
                    self.dst_u >> 8,
                    self.dst_u & 0xff,
                    self.src_u
                );
            }
            6 | 17 | 132 | 33 | 136 => {
                let _ = write!(out, "sport={} dport={} ", self.src_u, self.dst_u);
            }
            _ => {}
        }
    }
}

/// Which way a packet goes on its connection (`enum ip_conntrack_dir`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpConntrackDir {
    /// The direction of the first packet (`IP_CT_DIR_ORIGINAL`).
    Original = 0,
    /// The answers (`IP_CT_DIR_REPLY`).
    Reply = 1,
}

impl IpConntrackDir {
    /// The other direction.
    pub fn other(self) -> IpConntrackDir {
        match self {
            IpConntrackDir::Original => IpConntrackDir::Reply,
            IpConntrackDir::Reply => IpConntrackDir::Original,
        }
    }
}

/// What a packet is to its connection.
///
/// Mirrors `enum ip_conntrack_info` in
/// `include/uapi/linux/netfilter/nf_conntrack_common.h`, with its numbers.
#[doc(alias = "ip_conntrack_info")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpConntrackInfo {
    /// Part of a connection that has seen a reply (`IP_CT_ESTABLISHED`).
    Established = 0,
    /// Related to a connection, e.g. an ICMP error (`IP_CT_RELATED`).
    Related = 1,
    /// The first packets of a connection (`IP_CT_NEW`).
    New = 2,
    /// A reply (`IP_CT_ESTABLISHED_REPLY`, `IP_CT_IS_REPLY`).
    EstablishedReply = 3,
    /// Related, in the reply direction (`IP_CT_RELATED_REPLY`).
    RelatedReply = 4,
    /// Deliberately not tracked (`IP_CT_UNTRACKED`).
    Untracked = 7,
}

impl IpConntrackInfo {
    fn from_bits(b: u32) -> Option<IpConntrackInfo> {
        Some(match b {
            0 => IpConntrackInfo::Established,
            1 => IpConntrackInfo::Related,
            2 => IpConntrackInfo::New,
            3 => IpConntrackInfo::EstablishedReply,
            4 => IpConntrackInfo::RelatedReply,
            7 => IpConntrackInfo::Untracked,
            _ => return None,
        })
    }

    /// The packet's direction (`CTINFO2DIR()`).
    pub fn dir(self) -> IpConntrackDir {
        match self {
            IpConntrackInfo::EstablishedReply | IpConntrackInfo::RelatedReply => {
                IpConntrackDir::Reply
            }
            _ => IpConntrackDir::Original,
        }
    }
}

/// The `skb->_nfct` value of a packet deliberately left untracked.
pub const NFCT_UNTRACKED: u32 = IpConntrackInfo::Untracked as u32;

const NFCT_INFO_BITS: u32 = 3;
const NFCT_SLOT_BITS: u32 = 21;
const NFCT_SLOT_MASK: u32 = (1 << NFCT_SLOT_BITS) - 1;
/// The most connections one table can hold (slots addressable from
/// `skb.nfct`): 2^21 − 1.
pub const NF_CT_MAX_SLOTS: usize = (1 << NFCT_SLOT_BITS) as usize - 1;

/// The ctinfo of a packet from its `nfct` handle; `None` when untracked by
/// accident (no connection: what matches call INVALID).
///
/// Mirrors the `ctinfo` half of `nf_ct_get()`.
pub fn nf_ct_get_info(nfct: u32) -> Option<IpConntrackInfo> {
    if nfct == 0 {
        None
    } else {
        IpConntrackInfo::from_bits(nfct & 7)
    }
}

fn nfct_encode(slot: u32, generation: u8, info: IpConntrackInfo) -> u32 {
    u32::from(generation) << (NFCT_INFO_BITS + NFCT_SLOT_BITS)
        | (slot + 1) << NFCT_INFO_BITS
        | info as u32
}

fn nfct_decode(nfct: u32) -> Option<(u32, u8, IpConntrackInfo)> {
    let info = nf_ct_get_info(nfct)?;
    let s = (nfct >> NFCT_INFO_BITS) & NFCT_SLOT_MASK;
    if s == 0 {
        return None;
    }
    Some((
        s - 1,
        (nfct >> (NFCT_INFO_BITS + NFCT_SLOT_BITS)) as u8,
        info,
    ))
}

/// Connection status bits (`enum ip_conntrack_status`, `IPS_*`).
pub mod ips {
    /// An expected connection (`IPS_EXPECTED`).
    pub const EXPECTED: u32 = 1 << 0;
    /// Packets have been seen both ways (`IPS_SEEN_REPLY`).
    pub const SEEN_REPLY: u32 = 1 << 1;
    /// Never early-dropped (`IPS_ASSURED`).
    pub const ASSURED: u32 = 1 << 2;
    /// In the hash table (`IPS_CONFIRMED`).
    pub const CONFIRMED: u32 = 1 << 3;
    /// Source NAT applies (`IPS_SRC_NAT`).
    pub const SRC_NAT: u32 = 1 << 4;
    /// Destination NAT applies (`IPS_DST_NAT`).
    pub const DST_NAT: u32 = 1 << 5;
    /// Both NAT bits (`IPS_NAT_MASK`).
    pub const NAT_MASK: u32 = SRC_NAT | DST_NAT;
    /// Source NAT was decided (`IPS_SRC_NAT_DONE`).
    pub const SRC_NAT_DONE: u32 = 1 << 7;
    /// Destination NAT was decided (`IPS_DST_NAT_DONE`).
    pub const DST_NAT_DONE: u32 = 1 << 8;
    /// Being removed (`IPS_DYING`).
    pub const DYING: u32 = 1 << 9;
}

/// The per-protocol part of a connection (`union nf_conntrack_proto`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NfConnProto {
    /// No per-protocol state (`nf_conntrack_proto_generic.c`).
    Generic,
    /// TCP state and window tracking.
    Tcp(IpCtTcp),
    /// UDP: when the flow counts as a stream (`ct->proto.udp.stream_ts`).
    Udp {
        /// Two seconds after the first packet.
        stream_ts: Instant,
    },
    /// ICMP echo and friends.
    Icmp,
}

/// One tracked connection.
///
/// Mirrors `struct nf_conn`: both tuples, status bits, the expiry time, the
/// connection mark and the per-protocol state.
#[doc(alias = "nf_conn")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfConn {
    /// `[ORIGINAL, REPLY]` tuples (`tuplehash[].tuple`); NAT rewrites the
    /// reply tuple.
    pub tuplehash: [NfConntrackTuple; 2],
    /// `ips::*` bits.
    pub status: u32,
    /// When the connection expires (`ct->timeout`).
    pub timeout: Instant,
    /// The connection mark (`ct->mark`).
    pub mark: u32,
    /// Per-protocol state.
    pub proto: NfConnProto,
    created: Instant,
}

impl NfConn {
    /// The original-direction tuple.
    pub fn orig(&self) -> &NfConntrackTuple {
        &self.tuplehash[0]
    }

    /// The reply-direction tuple.
    pub fn reply(&self) -> &NfConntrackTuple {
        &self.tuplehash[1]
    }

    /// Whether status bit(s) `bit` are all set.
    pub fn test(&self, bit: u32) -> bool {
        self.status & bit == bit
    }

    /// Sets the expiry to `now + secs` (`nf_ct_refresh_acct()`).
    pub(crate) fn refresh(&mut self, now: Instant, secs: i64) {
        self.timeout = now + Duration::from_secs(secs.max(0) as u64);
    }

    /// The TCP state, when TCP.
    pub fn tcp_state(&self) -> Option<TcpConntrack> {
        match &self.proto {
            NfConnProto::Tcp(t) => Some(t.state),
            _ => None,
        }
    }
}

/// Conntrack counters.
///
/// Mirrors `struct ip_conntrack_stat` (`/proc/net/stat/nf_conntrack`,
/// `conntrack -S`), with the kernel's names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpConntrackStat {
    /// Lookups that found a connection.
    pub found: u64,
    /// Packets that could not be tracked (bad header, bad TCP flags,
    /// out-of-window, no new connection possible).
    pub invalid: u64,
    /// Packets conntrack did not look at (fragments, already tracked).
    pub ignore: u64,
    /// Connections inserted into the table.
    pub insert: u64,
    /// Confirmations refused because the tuple was taken.
    pub insert_failed: u64,
    /// Packets dropped because the table was full and nothing could be
    /// evicted.
    pub drop: u64,
    /// Unassured connections evicted to make room.
    pub early_drop: u64,
    /// ICMP errors that quote no known connection, or malformed ones.
    pub error: u64,
    /// Lookups restarted (hash resize races in Linux; 0 here, see
    /// Deviations).
    pub search_restart: u64,
    /// Confirmation clashes resolved by using the existing entry.
    pub clash_resolve: u64,
}

#[derive(Default)]
struct StatCells {
    found: AtomicU64,
    invalid: AtomicU64,
    ignore: AtomicU64,
    insert: AtomicU64,
    insert_failed: AtomicU64,
    drop: AtomicU64,
    early_drop: AtomicU64,
    error: AtomicU64,
    search_restart: AtomicU64,
    clash_resolve: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A seeded hasher for tuples (Linux uses a seeded siphash).
#[derive(Clone, Copy)]
pub(crate) struct CtHashBuilder(u64);

impl BuildHasher for CtHashBuilder {
    type Hasher = CtHasher;
    fn build_hasher(&self) -> CtHasher {
        CtHasher(self.0)
    }
}

pub(crate) struct CtHasher(u64);

impl Hasher for CtHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) generation: u8,
    pub(crate) conn: Option<NfConn>,
}

/// The table behind the lock.
pub(crate) struct CtInner {
    /// Tuple → `slot << 1 | dir`, confirmed connections only.
    pub(crate) hash: HashMap<NfConntrackTuple, u32, CtHashBuilder>,
    pub(crate) slots: Vec<Slot>,
    free: Vec<u32>,
    /// Connections allocated, confirmed or not (`nf_conntrack_count`).
    pub(crate) count: usize,
    cursor: usize,
    pub(crate) rng: u64,
}

impl CtInner {
    /// A pseudo-random 32-bit number (xorshift; seeded per table).
    pub(crate) fn random(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 16) as u32
    }

    pub(crate) fn conn(&self, slot: u32) -> Option<&NfConn> {
        self.slots.get(slot as usize)?.conn.as_ref()
    }

    pub(crate) fn conn_mut(&mut self, slot: u32) -> Option<&mut NfConn> {
        self.slots.get_mut(slot as usize)?.conn.as_mut()
    }

    /// The slot of a live handle (generation checked).
    fn resolve(&self, nfct: u32) -> Option<(u32, IpConntrackInfo)> {
        let (slot, generation, info) = nfct_decode(nfct)?;
        let s = self.slots.get(slot as usize)?;
        (s.generation == generation && s.conn.is_some()).then_some((slot, info))
    }

    fn alloc(&mut self, conn: NfConn) -> Option<u32> {
        let slot = if let Some(s) = self.free.pop() {
            s
        } else {
            if self.slots.len() >= NF_CT_MAX_SLOTS {
                return None;
            }
            self.slots.push(Slot::default());
            (self.slots.len() - 1) as u32
        };
        self.slots[slot as usize].conn = Some(conn);
        self.count += 1;
        Some(slot)
    }

    /// Removes a connection from the hash and frees its slot
    /// (`nf_ct_delete()` + `nf_ct_put()`).
    pub(crate) fn delete(&mut self, slot: u32) {
        let Some(s) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let Some(conn) = s.conn.take() else { return };
        s.generation = s.generation.wrapping_add(1);
        if conn.test(ips::CONFIRMED) {
            for (d, t) in conn.tuplehash.iter().enumerate() {
                if self.hash.get(t) == Some(&(slot << 1 | d as u32)) {
                    self.hash.remove(t);
                }
            }
        }
        self.free.push(slot);
        self.count -= 1;
    }

    /// Whether `tuple` (a reply tuple) is in use by a connection other
    /// than `ignored` (`nf_conntrack_tuple_taken()`).
    pub(crate) fn tuple_taken(&self, tuple: &NfConntrackTuple, ignored: u32, now: Instant) -> bool {
        match self.hash.get(tuple) {
            Some(&v) => {
                let slot = v >> 1;
                slot != ignored && self.conn(slot).is_some_and(|c| c.timeout > now)
            }
            None => false,
        }
    }

    /// Evicts one unassured connection near the cursor (`early_drop()`).
    fn early_drop(&mut self, now: Instant) -> bool {
        let n = self.slots.len();
        for _ in 0..n.min(NF_CT_EVICTION_RANGE) {
            self.cursor = (self.cursor + 1) % n.max(1);
            let slot = self.cursor as u32;
            if let Some(c) = self.conn(slot)
                && c.test(ips::CONFIRMED)
                && (!c.test(ips::ASSURED) || c.timeout <= now)
            {
                self.delete(slot);
                return true;
            }
        }
        false
    }
}

/// How many entries `early_drop` looks at before giving up
/// (`NF_CT_EVICTION_RANGE`, per bucket in Linux).
pub const NF_CT_EVICTION_RANGE: usize = 64;

/// How long an unconfirmed connection may wait for its packet to reach the
/// confirm hook before the gc reclaims it.
pub const NF_CT_UNCONFIRMED_TIMEOUT: Duration = Duration::from_secs(5);

/// What a protocol's `packet()` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum L4Verdict {
    Accept,
    /// `-NF_ACCEPT`: let it through without a connection (INVALID).
    Invalid,
    /// Kill the connection and look up again (TCP reopening a closed one).
    Repeat,
}

/// The packet fields conntrack needs, parsed once.
pub(crate) struct CtPacket<'a> {
    pub(crate) saddr: Ipv4Addr,
    pub(crate) daddr: Ipv4Addr,
    pub(crate) protocol: u8,
    /// The transport header and data (to `tot_len`).
    pub(crate) l4: &'a [u8],
}

impl<'a> CtPacket<'a> {
    /// `None` when not a complete, unfragmented IPv4 datagram.
    pub(crate) fn parse(data: &'a [u8]) -> Result<CtPacket<'a>, ParseFail> {
        if data.len() < 20 || data[0] >> 4 != 4 {
            return Err(ParseFail::Malformed);
        }
        let ihl = usize::from(data[0] & 0xf) * 4;
        let tot = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if ihl < 20 || tot < ihl || data.len() < tot {
            return Err(ParseFail::Malformed);
        }
        let frag = u16::from_be_bytes([data[6], data[7]]);
        if frag & (wire::IP_MF | wire::IP_OFFSET) != 0 {
            return Err(ParseFail::Fragment);
        }
        Ok(CtPacket {
            saddr: Ipv4Addr::new(data[12], data[13], data[14], data[15]),
            daddr: Ipv4Addr::new(data[16], data[17], data[18], data[19]),
            protocol: data[9],
            l4: &data[ihl..tot],
        })
    }
}

pub(crate) enum ParseFail {
    Malformed,
    Fragment,
}

/// Builds the tuple of a packet (`nf_ct_get_tuple()`); `None` when the
/// transport header is too short.
pub(crate) fn nf_ct_get_tuple(p: &CtPacket<'_>) -> Option<NfConntrackTuple> {
    let (src_u, dst_u) = match p.protocol {
        6 | 17 | 132 | 33 | 136 => {
            let l = p.l4.get(..4)?;
            (
                u16::from_be_bytes([l[0], l[1]]),
                u16::from_be_bytes([l[2], l[3]]),
            )
        }
        1 => icmp_pkt_to_tuple(p.l4)?,
        _ => (0, 0),
    };
    Some(NfConntrackTuple {
        src: p.saddr,
        dst: p.daddr,
        protonum: p.protocol,
        src_u,
        dst_u,
    })
}

/// The timeouts in force, read from the sysctls at each use.
pub(crate) struct CtTimeouts<'a>(pub(crate) &'a Sysctl);

/// The connection tracking table of one host (network namespace).
///
/// Mirrors the per-netns conntrack state (`nf_conntrack_hash`,
/// `nf_conntrack_count`, `net->ct.stat`). Shared by every CPU behind an
/// `Arc`; register its hooks with [`NfConntrack::register_hooks`].
///
/// # Deviations from Linux
/// - One lock over the table rather than per-bucket spinlocks and RCU
///   lookups; lookups cost a lock and a hash probe.
/// - Fragments are not reassembled before tracking (Linux's
///   `nf_defrag_ipv4` runs at -400): a fragment gets no connection (the
///   INVALID state). A host that wants fragments tracked reassembles them
///   first.
/// - The skb refers to its connection by a slot index with an 8-bit
///   generation (`skb.nfct`) instead of a counted pointer; a connection
///   freed while a packet still refers to it is detected by the
///   generation and the packet then counts as untracked by accident.
/// - A packet dropped between `nf_conntrack_in` and the confirm hook
///   leaves its unconfirmed entry behind until [`NfConntrack::gc`] frees
///   it ([`NF_CT_UNCONFIRMED_TIMEOUT`]); Linux frees it with the skb.
/// - `search_restart` stays 0: the table is never resized under a reader.
/// - No helpers, expectations, events, zones or accounting.
pub struct NfConntrack {
    pub(crate) inner: Mutex<CtInner>,
    stats: StatCells,
    pub(crate) sysctl: Sysctl,
}

impl fmt::Debug for NfConntrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NfConntrack")
            .field("count", &self.count())
            .field("stat", &self.stat())
            .finish_non_exhaustive()
    }
}

impl NfConntrack {
    /// An empty table reading its limits and timeouts from `sysctl`
    /// (`net.netfilter.nf_conntrack_*`); `seed` seeds the hash and the NAT
    /// port choice (deterministic in the simulation).
    pub fn new(sysctl: Sysctl, seed: u64) -> Arc<NfConntrack> {
        Arc::new(NfConntrack {
            inner: Mutex::new(CtInner {
                hash: HashMap::with_hasher(CtHashBuilder(seed ^ 0x5851_F42D_4C95_7F2D)),
                slots: Vec::new(),
                free: Vec::new(),
                count: 0,
                cursor: 0,
                rng: seed | 1,
            }),
            stats: StatCells::default(),
            sysctl,
        })
    }

    /// The counters.
    pub fn stat(&self) -> IpConntrackStat {
        let s = &self.stats;
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        IpConntrackStat {
            found: l(&s.found),
            invalid: l(&s.invalid),
            ignore: l(&s.ignore),
            insert: l(&s.insert),
            insert_failed: l(&s.insert_failed),
            drop: l(&s.drop),
            early_drop: l(&s.early_drop),
            error: l(&s.error),
            search_restart: l(&s.search_restart),
            clash_resolve: l(&s.clash_resolve),
        }
    }

    /// The counters as `conntrack -S` prints them.
    pub fn stat_show(&self) -> String {
        let s = self.stat();
        format!(
            "cpu=0   \tfound={} invalid={} insert={} insert_failed={} drop={} early_drop={} error={} search_restart={} clash_resolve={}\n",
            s.found,
            s.invalid,
            s.insert,
            s.insert_failed,
            s.drop,
            s.early_drop,
            s.error,
            s.search_restart,
            s.clash_resolve
        )
    }

    /// Connections allocated (`nf_conntrack_count`).
    pub fn count(&self) -> usize {
        self.inner.lock().count
    }

    /// Connections in the hash (confirmed, not expired at `now`).
    pub fn confirmed(&self, now: Instant) -> Vec<NfConn> {
        let inner = self.inner.lock();
        let mut v: Vec<NfConn> = inner
            .slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .filter(|c| c.test(ips::CONFIRMED) && c.timeout > now)
            .cloned()
            .collect();
        v.sort_by_key(|c| c.created);
        v
    }

    /// A copy of the connection of `skb` and the packet's ctinfo.
    ///
    /// Mirrors `nf_ct_get()`.
    pub fn nf_ct_get(&self, skb: &SkBuff) -> Option<(NfConn, IpConntrackInfo)> {
        let inner = self.inner.lock();
        let (slot, info) = inner.resolve(skb.nfct)?;
        Some((inner.conn(slot)?.clone(), info))
    }

    /// Runs `f` on the connection of `nfct` (to set its mark, say).
    pub fn with_ct<R>(&self, nfct: u32, f: impl FnOnce(&mut NfConn) -> R) -> Option<R> {
        let mut inner = self.inner.lock();
        let (slot, _) = inner.resolve(nfct)?;
        inner.conn_mut(slot).map(f)
    }

    /// Finds the connection a tuple belongs to, and in which direction
    /// (`nf_conntrack_find_get()`).
    pub fn nf_conntrack_find_get(
        &self,
        tuple: &NfConntrackTuple,
        now: Instant,
    ) -> Option<(NfConn, IpConntrackDir)> {
        let inner = self.inner.lock();
        let v = *inner.hash.get(tuple)?;
        let c = inner.conn(v >> 1)?;
        (c.timeout > now).then(|| {
            (
                c.clone(),
                if v & 1 == 0 {
                    IpConntrackDir::Original
                } else {
                    IpConntrackDir::Reply
                },
            )
        })
    }

    /// Removes every connection (`conntrack -F`).
    pub fn flush(&self) {
        let mut inner = self.inner.lock();
        for slot in 0..inner.slots.len() as u32 {
            inner.delete(slot);
        }
    }

    /// Removes expired connections and stale unconfirmed ones; returns how
    /// many went.
    ///
    /// Mirrors `gc_worker()`; the host calls it periodically (Linux runs
    /// it at most every `GC_SCAN_INTERVAL_MAX`, 60 s, sooner when busy),
    /// and lookups reap expired entries they meet anyway.
    pub fn gc(&self, now: Instant) -> usize {
        let mut inner = self.inner.lock();
        let mut n = 0;
        for slot in 0..inner.slots.len() as u32 {
            let dead = inner.conn(slot).is_some_and(|c| {
                if c.test(ips::CONFIRMED) {
                    c.timeout <= now
                } else {
                    now.saturating_duration_since(c.created) > NF_CT_UNCONFIRMED_TIMEOUT
                }
            });
            if dead {
                inner.delete(slot);
                n += 1;
            }
        }
        n
    }

    /// The table as `conntrack -L` prints it, one connection a line, oldest
    /// first; the remaining lifetime in whole seconds at `now`.
    ///
    /// Mirrors `ct_seq_show()` in `net/netfilter/nf_conntrack_standalone.c`
    /// in the layout of the `conntrack` tool:
    /// `tcp      6 431999 ESTABLISHED src=… dst=… sport=… dport=… src=… dst=… sport=… dport=… [ASSURED] mark=0 use=1`.
    pub fn list(&self, now: Instant) -> String {
        let mut out = String::new();
        for c in self.confirmed(now) {
            let o = c.orig();
            let name = match o.protonum {
                6 => "tcp",
                17 => "udp",
                1 => "icmp",
                136 => "udplite",
                132 => "sctp",
                33 => "dccp",
                _ => "unknown",
            };
            let left = c.timeout.saturating_duration_since(now).as_secs();
            let _ = write!(out, "{name:<8} {} {left} ", o.protonum);
            if let Some(st) = c.tcp_state() {
                let _ = write!(out, "{} ", st.name());
            }
            o.print(&mut out);
            if !c.test(ips::SEEN_REPLY) {
                out.push_str("[UNREPLIED] ");
            }
            c.reply().print(&mut out);
            if c.test(ips::ASSURED) {
                out.push_str("[ASSURED] ");
            }
            let _ = writeln!(out, "mark={} use=1", c.mark);
        }
        out
    }

    fn timeouts(&self) -> CtTimeouts<'_> {
        CtTimeouts(&self.sysctl)
    }

    /// Tracks one packet: finds or creates its connection, runs the
    /// protocol's state machine and attaches the result to `skb.nfct`.
    ///
    /// Mirrors `nf_conntrack_in()` with `resolve_normal_ct()` and
    /// `init_conntrack()`. `skb`'s data starts at its IPv4 header. Returns
    /// DROP only when the table is full and nothing can be evicted.
    ///
    /// Counters: `found`, `invalid`, `ignore`, `drop`, `early_drop`, `error`.
    pub fn nf_conntrack_in(&self, skb: &mut SkBuff, now: Instant) -> NfVerdict {
        if skb.nfct != 0 {
            bump(&self.stats.ignore);
            return NfVerdict::Accept;
        }
        let p = match CtPacket::parse(skb.data()) {
            Ok(p) => p,
            Err(ParseFail::Fragment) => {
                bump(&self.stats.ignore);
                return NfVerdict::Accept;
            }
            Err(ParseFail::Malformed) => {
                bump(&self.stats.invalid);
                return NfVerdict::Accept;
            }
        };
        if p.protocol == 1 && p.l4.first().is_some_and(|&t| is_icmp_error(t)) {
            skb.nfct = self.icmp_error(&p, now);
            return NfVerdict::Accept;
        }
        if p.protocol == 6 && !tcp_error(p.l4) {
            bump(&self.stats.invalid);
            return NfVerdict::Accept;
        }
        let Some(tuple) = nf_ct_get_tuple(&p) else {
            bump(&self.stats.invalid);
            return NfVerdict::Accept;
        };
        let to = self.timeouts();
        let mut inner = self.inner.lock();
        for _attempt in 0..2 {
            // resolve_normal_ct: look up, or create an unconfirmed entry.
            let found = match inner.hash.get(&tuple).copied() {
                Some(v) if inner.conn(v >> 1).is_some_and(|c| c.timeout > now) => Some(v),
                Some(v) => {
                    inner.delete(v >> 1);
                    None
                }
                None => None,
            };
            let (slot, dir) = if let Some(v) = found {
                bump(&self.stats.found);
                (
                    v >> 1,
                    if v & 1 == 0 {
                        IpConntrackDir::Original
                    } else {
                        IpConntrackDir::Reply
                    },
                )
            } else {
                let proto = match p.protocol {
                    6 => tcp_new(p.l4, to.0.get_int(Sysctl::NF_CONNTRACK_TCP_LOOSE) != 0)
                        .map(NfConnProto::Tcp),
                    17 | 136 => Some(udp_new(now)),
                    1 => icmp_new(&tuple).then_some(NfConnProto::Icmp),
                    _ => Some(NfConnProto::Generic),
                };
                let Some(proto) = proto else {
                    bump(&self.stats.invalid);
                    return NfVerdict::Accept;
                };
                let max = to.0.get_int(Sysctl::NF_CONNTRACK_MAX).max(0) as usize;
                if max > 0 && inner.count >= max {
                    if inner.early_drop(now) {
                        bump(&self.stats.early_drop);
                    } else {
                        bump(&self.stats.drop);
                        tracing::debug!(target: "netfilter", "nf_conntrack: table full, dropping packet");
                        return NfVerdict::DROP;
                    }
                }
                let conn = NfConn {
                    tuplehash: [tuple, tuple.invert()],
                    status: 0,
                    timeout: now,
                    mark: 0,
                    proto,
                    created: now,
                };
                let Some(slot) = inner.alloc(conn) else {
                    bump(&self.stats.drop);
                    return NfVerdict::DROP;
                };
                (slot, IpConntrackDir::Original)
            };
            let Some(conn) = inner.conn_mut(slot) else {
                return NfVerdict::Accept;
            };
            let info = if dir == IpConntrackDir::Reply {
                IpConntrackInfo::EstablishedReply
            } else if conn.test(ips::SEEN_REPLY) {
                IpConntrackInfo::Established
            } else {
                IpConntrackInfo::New
            };
            let verdict = match p.protocol {
                6 => tcp_packet(conn, dir, p.l4, now, &to),
                17 | 136 => udp_packet(conn, now, &to),
                1 => {
                    conn.refresh(now, to.0.get_int(Sysctl::NF_CONNTRACK_ICMP_TIMEOUT));
                    L4Verdict::Accept
                }
                _ => {
                    conn.refresh(now, to.0.get_int(Sysctl::NF_CONNTRACK_GENERIC_TIMEOUT));
                    L4Verdict::Accept
                }
            };
            match verdict {
                L4Verdict::Accept => {
                    if dir == IpConntrackDir::Reply {
                        conn.status |= ips::SEEN_REPLY;
                    }
                    let generation = inner.slots[slot as usize].generation;
                    skb.nfct = nfct_encode(slot, generation, info);
                    return NfVerdict::Accept;
                }
                L4Verdict::Invalid => {
                    if !conn.test(ips::CONFIRMED) {
                        inner.delete(slot);
                    }
                    bump(&self.stats.invalid);
                    return NfVerdict::Accept;
                }
                L4Verdict::Repeat => {
                    inner.delete(slot);
                }
            }
        }
        bump(&self.stats.invalid);
        NfVerdict::Accept
    }

    /// Finds the connection an ICMP error quotes; the handle for the error
    /// (RELATED or RELATED_REPLY), or 0.
    ///
    /// Mirrors `nf_conntrack_icmpv4_error()` and `icmp_error_message()`.
    fn icmp_error(&self, p: &CtPacket<'_>, now: Instant) -> u32 {
        let Some(inner_tuple) = icmp_error_tuple(p.l4) else {
            bump(&self.stats.error);
            return 0;
        };
        // The quoted packet went the other way: its inverse is the tuple of
        // the direction the error travels.
        let want = inner_tuple.invert();
        let inner = self.inner.lock();
        match inner.hash.get(&want) {
            Some(&v) if inner.conn(v >> 1).is_some_and(|c| c.timeout > now) => {
                bump(&self.stats.found);
                let slot = v >> 1;
                let info = if v & 1 == 0 {
                    IpConntrackInfo::Related
                } else {
                    IpConntrackInfo::RelatedReply
                };
                nfct_encode(slot, inner.slots[slot as usize].generation, info)
            }
            _ => {
                bump(&self.stats.error);
                0
            }
        }
    }

    /// Inserts the packet's connection into the table if it is new.
    ///
    /// Mirrors `nf_conntrack_confirm()` / `__nf_conntrack_confirm()`: runs
    /// last at LOCAL_IN and POST_ROUTING. A clash with an identical
    /// connection confirmed meanwhile moves the packet onto that one
    /// (`clash_resolve`); any other clash drops it (`insert_failed`).
    pub fn nf_conntrack_confirm(&self, skb: &mut SkBuff, now: Instant) -> NfVerdict {
        let mut inner = self.inner.lock();
        let Some((slot, info)) = inner.resolve(skb.nfct) else {
            return NfVerdict::Accept;
        };
        let Some(conn) = inner.conn(slot) else {
            return NfVerdict::Accept;
        };
        if conn.test(ips::CONFIRMED) || info.dir() != IpConntrackDir::Original {
            return NfVerdict::Accept;
        }
        let [orig, reply] = conn.tuplehash;
        let taken = |t: &NfConntrackTuple, inner: &CtInner| {
            inner
                .hash
                .get(t)
                .copied()
                .filter(|&v| inner.conn(v >> 1).is_some_and(|c| c.timeout > now))
        };
        if let Some(v) = taken(&orig, &inner) {
            let existing = v >> 1;
            let same = inner
                .conn(existing)
                .is_some_and(|c| c.tuplehash == [orig, reply]);
            inner.delete(slot);
            if same && v & 1 == 0 {
                bump(&self.stats.clash_resolve);
                let generation = inner.slots[existing as usize].generation;
                skb.nfct = nfct_encode(existing, generation, info);
                return NfVerdict::Accept;
            }
            bump(&self.stats.insert_failed);
            skb.nfct = 0;
            return NfVerdict::DROP;
        }
        if taken(&reply, &inner).is_some() {
            inner.delete(slot);
            bump(&self.stats.insert_failed);
            skb.nfct = 0;
            return NfVerdict::DROP;
        }
        // Stale entries under these tuples (expired) go first.
        for t in [orig, reply] {
            if let Some(v) = inner.hash.get(&t).copied() {
                inner.delete(v >> 1);
            }
        }
        inner.hash.insert(orig, slot << 1);
        inner.hash.insert(reply, slot << 1 | 1);
        if let Some(c) = inner.conn_mut(slot) {
            c.status |= ips::CONFIRMED;
        }
        bump(&self.stats.insert);
        NfVerdict::Accept
    }

    /// Registers conntrack at its four hooks: `nf_conntrack_in` at
    /// PRE_ROUTING and LOCAL_OUT (-200), `nf_conntrack_confirm` at
    /// LOCAL_IN and POST_ROUTING (`INT_MAX`).
    ///
    /// Mirrors `ipv4_conntrack_ops[]` in
    /// `net/netfilter/nf_conntrack_proto.c`.
    pub fn register_hooks<C: NetfilterContext + 'static>(
        self: &Arc<Self>,
        hooks: &NfHooks<C>,
    ) -> Result<Vec<NfHookHandle>, netcore::Errno> {
        let regs = [
            (NfInetHooks::PreRouting, NF_IP_PRI_CONNTRACK, false),
            (NfInetHooks::LocalOut, NF_IP_PRI_CONNTRACK, false),
            (NfInetHooks::LocalIn, NF_IP_PRI_CONNTRACK_CONFIRM, true),
            (NfInetHooks::PostRouting, NF_IP_PRI_CONNTRACK_CONFIRM, true),
        ]
        .map(|(h, prio, confirm)| {
            NfHookReg::new(
                h,
                prio,
                Arc::new(ConntrackHook {
                    ct: Arc::clone(self),
                    confirm,
                }) as Arc<dyn NfHookOps<C>>,
            )
        });
        hooks.nf_register_net_hooks(regs)
    }
}

/// Conntrack as a hook (`ipv4_conntrack_in`, `ipv4_conntrack_local`,
/// `ipv4_confirm`).
struct ConntrackHook {
    ct: Arc<NfConntrack>,
    confirm: bool,
}

impl<C: NetfilterContext> NfHookOps<C> for ConntrackHook {
    fn hook(&self, mut skb: NfSkb<'_>, _state: &NfHookState, ctx: &mut C) -> NfVerdict {
        let now = ctx.now();
        if self.confirm {
            self.ct.nf_conntrack_confirm(&mut skb, now)
        } else {
            self.ct.nf_conntrack_in(&mut skb, now)
        }
    }

    fn name(&self) -> &str {
        if self.confirm {
            "ipv4_confirm"
        } else {
            "ipv4_conntrack_in"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfct_handles_round_trip() {
        let h = nfct_encode(12345, 200, IpConntrackInfo::EstablishedReply);
        assert_eq!(
            nfct_decode(h),
            Some((12345, 200, IpConntrackInfo::EstablishedReply))
        );
        assert_eq!(nf_ct_get_info(0), None);
        assert_eq!(
            nf_ct_get_info(NFCT_UNTRACKED),
            Some(IpConntrackInfo::Untracked)
        );
        assert_eq!(nfct_decode(NFCT_UNTRACKED), None);
    }

    #[test]
    fn icmp_tuples_invert_request_to_reply() {
        let t = NfConntrackTuple {
            src: Ipv4Addr::new(198, 18, 0, 1),
            dst: Ipv4Addr::new(198, 18, 0, 2),
            protonum: 1,
            src_u: 77,
            dst_u: 8 << 8,
        };
        let r = t.invert();
        assert_eq!((r.src, r.dst, r.src_u, r.dst_u), (t.dst, t.src, 77, 0));
        assert_eq!(r.invert(), t);
    }
}
