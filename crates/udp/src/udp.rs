//! UDP over IPv4: the socket table, receive, send, ICMP errors and the
//! `/proc/net/udp` listing.
//!
//! Mirrors `net/ipv4/udp.c` (with `inet_bind()`/`inet_autobind()` from
//! `net/ipv4/af_inet.c` and `ip4_datagram_connect()` from
//! `net/ipv4/datagram.c`, the parts of them UDP sockets use).
//!
//! ```text
//!  ip_local_deliver_finish ─► udp_rcv ─► length, checksum
//!                                │
//!                                ├─ udp4_lib_lookup: connected 4-tuple,
//!                                │  bound address, wildcard (compute_score,
//!                                │  SO_REUSEPORT group by flow hash)
//!                                │     ├─ found ─► udp_queue_rcv_skb ─► sk_receive_queue
//!                                │     └─ none  ─► NoPorts, skb back to IP (port unreachable)
//!  udp_sendmsg ─► autobind, route, build header + checksum ─► ip_send_skb
//!  icmp_rcv ─► udp_err ─► sk_err (ECONNREFUSED, EMSGSIZE, ...) on a connected socket
//! ```

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use netcore::{
    DropReason, Errno, IcmpMib, IpMib, IpSummed, PktType, SkBuff, UdpMib, consume_skb,
    kfree_skb_reason,
};
use parking_lot::RwLock;
use wire::{UDP_HLEN, csum_fold, csum_partial, csum_tcpudp_magic, csum_tcpudp_nofold};

use crate::context::{Flowi4, UdpContext};
use crate::sock::{
    POLLIN, POLLOUT, POLLRDNORM, POLLWRBAND, POLLWRNORM, RCV_SHUTDOWN, SEND_SHUTDOWN,
    SHUTDOWN_MASK, SOCK_BINDADDR_LOCK, SOCK_BINDPORT_LOCK, SockAddrs, UdpSock, UdpState,
};
use crate::sock_reuseport::{reciprocal_scale, udp_ehashfn};

/// IP protocol number of UDP (`IPPROTO_UDP`).
pub const IPPROTO_UDP: u8 = 17;

/// Headroom UDP reserves in front of its header for the IP and link-layer
/// headers (`MAX_HEADER` + the largest IPv4 header, rounded).
pub const UDP_MAX_HEADER: usize = 128;

/// An IPv4 header without options (`sizeof(struct iphdr)`).
const IPV4_HLEN: usize = 20;

/// The largest UDP payload over IPv4: 65535 - 20 (IP) - 8 (UDP). A larger
/// `sendmsg` fails with `EMSGSIZE`.
pub const UDP_MAX_PAYLOAD: usize = 0xFFFF - 20 - UDP_HLEN;

/// One socket in the table, with the addresses it is hashed under.
#[derive(Debug, Clone)]
struct UdpHashEntry {
    addrs: SockAddrs,
    /// Order of binding, for `SO_REUSEPORT` groups (`reuseport_add_sock()`
    /// appends).
    bind_seq: u64,
    sk: Arc<UdpSock>,
}

/// The host's UDP sockets, hashed by local port.
///
/// Mirrors `struct udp_table` (`udp_table.hash`, one `udp_hslot` per
/// port; Linux's second hash by address and port, `hash2`, becomes the
/// two passes of [`udp4_lib_lookup`]). A `parking_lot` reader-writer lock
/// stands for the per-slot spinlocks and RCU: receive lookups take it for
/// reading; bind, connect and close for writing. Lock order: a socket's
/// lock may be held when taking the table lock, never the reverse.
pub struct UdpTable {
    slots: RwLock<HashMap<u16, Vec<UdpHashEntry>, BuildHasherDefault<PortHasher>>>,
    /// `udp_ehash_secret`, the seed of the flow hash.
    secret: u32,
    next_seq: AtomicU64,
    /// Bumped by every change of `slots` (bind, connect, disconnect,
    /// close): a [`UdpRcvCache`] entry of an older generation is stale.
    genid: AtomicU64,
}

/// The socket a CPU last delivered a datagram to, with the flow and the
/// table generation it was looked up for.
///
/// Linux's receive lookup (`__udp4_lib_lookup()` from `__udp4_lib_rcv()`)
/// takes no lock and no reference (RCU, and UDP sockets are freed after a
/// grace period, `SOCK_RCU_FREE`). Here the
/// table is behind a reader-writer lock and sockets are reference
/// counted, so each CPU keeps the last result instead: a datagram of the
/// same flow (addresses, ports, input device) on an unchanged table
/// takes the socket out, is queued to it, and puts it back, with no
/// lock and no reference count; any bind, connect or close makes the
/// entry stale, so a lookup gives the same socket it would give anyway.
/// A stale entry still holds its socket (a closed one is freed when the
/// CPU's next datagram replaces the entry), as an RCU reader delays the
/// free of a socket it saw.
#[derive(Default)]
pub struct UdpRcvCache {
    entry: Option<(UdpFlowKey, u64, Arc<UdpSock>)>,
}

impl std::fmt::Debug for UdpRcvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpRcvCache")
            .field("flow", &self.entry.as_ref().map(|e| e.0))
            .finish()
    }
}

/// What [`udp4_lib_lookup`] decides on: the datagram's addresses and
/// ports, and its input device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UdpFlowKey {
    saddr: Ipv4Addr,
    sport: u16,
    daddr: Ipv4Addr,
    dport: u16,
    dif: u32,
}

impl UdpRcvCache {
    /// Takes the socket if it was looked up for `key` in generation `genid`.
    #[inline]
    fn take(&mut self, key: &UdpFlowKey, genid: u64) -> Option<Arc<UdpSock>> {
        if self
            .entry
            .as_ref()
            .is_some_and(|(k, g, _)| k == key && *g == genid)
        {
            self.entry.take().map(|(_, _, sk)| sk)
        } else {
            None
        }
    }

    #[inline]
    fn put(&mut self, key: UdpFlowKey, genid: u64, sk: Arc<UdpSock>) {
        self.entry = Some((key, genid, sk));
    }
}

impl std::fmt::Debug for UdpTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpTable")
            .field("sockets", &self.len())
            .finish_non_exhaustive()
    }
}

impl UdpTable {
    /// An empty table whose flow hash is seeded with `secret`
    /// (`udp_ehash_secret`, random at boot).
    ///
    /// Mirrors `udp_table_init()`.
    pub fn new(secret: u32) -> UdpTable {
        UdpTable {
            slots: RwLock::new(HashMap::default()),
            secret,
            next_seq: AtomicU64::new(0),
            genid: AtomicU64::new(0),
        }
    }

    /// The table's generation ([`UdpRcvCache`]).
    #[inline]
    pub fn genid(&self) -> u64 {
        self.genid.load(Ordering::Acquire)
    }

    /// Makes every [`UdpRcvCache`] entry stale; called with the table
    /// locked for writing, after the change.
    fn changed(&self) {
        self.genid.fetch_add(1, Ordering::Release);
    }

    /// Number of bound sockets.
    pub fn len(&self) -> usize {
        self.slots.read().values().map(Vec::len).sum()
    }

    /// Whether no socket is bound.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound sockets, by port then in chain order.
    pub fn sockets(&self) -> Vec<Arc<UdpSock>> {
        let slots = self.slots.read();
        let mut ports: Vec<_> = slots.keys().copied().collect();
        ports.sort_unstable();
        ports
            .iter()
            .flat_map(|p| slots[p].iter().map(|e| Arc::clone(&e.sk)))
            .collect()
    }

    /// Replaces the hashed addresses of `sk` (after connect or disconnect;
    /// Linux's `udp_lib_rehash()`).
    fn rehash(&self, sk: &Arc<UdpSock>, addrs: SockAddrs) {
        let mut slots = self.slots.write();
        if let Some(e) = slots
            .get_mut(&addrs.num)
            .and_then(|v| v.iter_mut().find(|e| Arc::ptr_eq(&e.sk, sk)))
        {
            e.addrs = addrs;
        }
        self.changed();
    }

    fn unhash(&self, sk: &Arc<UdpSock>, port: u16) {
        let mut slots = self.slots.write();
        if let Some(v) = slots.get_mut(&port) {
            v.retain(|e| !Arc::ptr_eq(&e.sk, sk));
            if v.is_empty() {
                slots.remove(&port);
            }
        }
        self.changed();
    }
}

/// The hash of a local port in [`UdpTable`]: one multiplication.
///
/// Mirrors `udp_hashfn()` (`(num + net_hash_mix(net)) & mask`), which
/// needs no keyed hash either: the key is a port the host chose or bound,
/// and at most 65,536 of them exist, so no sender can make a chain grow.
#[derive(Default)]
struct PortHasher(u64);

impl Hasher for PortHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u8(b);
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.write_u64((self.0 << 8) | u64::from(b));
    }

    fn write_u16(&mut self, port: u16) {
        self.write_u64(u64::from(port));
    }

    fn write_u64(&mut self, v: u64) {
        // Fibonacci hashing: the high bits (hashbrown's tag) and the low
        // bits (its bucket) both depend on every bit of the port.
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Whether binding `me` to its port conflicts with a socket of `slot`.
///
/// Mirrors `udp_lib_lport_inuse()`: a socket conflicts when not both have
/// `SO_REUSEADDR`, their devices overlap and their addresses overlap
/// (equal, or either is the wildcard, `inet_rcv_saddr_equal()`); a
/// conflicting pair that both set `SO_REUSEPORT` is allowed.
fn udp_lib_lport_inuse(slot: &[UdpHashEntry], me: &SockAddrs, sk: &Arc<UdpSock>) -> bool {
    for e in slot {
        let o = &e.addrs;
        if Arc::ptr_eq(&e.sk, sk) || (o.reuse && me.reuse) {
            continue;
        }
        let dev_overlap =
            o.bound_dev_if == 0 || me.bound_dev_if == 0 || o.bound_dev_if == me.bound_dev_if;
        let addr_overlap = o.rcv_saddr == me.rcv_saddr
            || o.rcv_saddr.is_unspecified()
            || me.rcv_saddr.is_unspecified();
        if dev_overlap && addr_overlap {
            // The first overlapping socket decides, as in Linux.
            return !(o.reuseport && me.reuseport);
        }
    }
    false
}

/// Binds `sk` to local port `snum`, or to a free ephemeral port from
/// `net.ipv4.ip_local_port_range` when `snum` is 0, and hashes it.
///
/// Mirrors `udp_lib_get_port()` / `udp_v4_get_port()`. The caller holds the
/// socket's lock and has set `inner.addrs.rcv_saddr`. Returns the port, or
/// `EADDRINUSE` when it is taken (every ephemeral port included).
///
/// # Deviations from Linux
///
/// The ephemeral search starts at a random port of the range and walks it
/// upwards, wrapping; Linux walks hash slots with an odd stride, which with
/// a 65536-slot table visits the ports in the same order.
fn udp_lib_get_port<C: UdpContext>(
    ctx: &mut C,
    sk: &Arc<UdpSock>,
    addrs: &mut SockAddrs,
    snum: u16,
) -> Result<u16, Errno> {
    let rand = ctx.prandom_u32();
    let (low, high) = ctx.sysctl().ip_local_port_range();
    let table = ctx.udp_table();
    let mut slots = table.slots.write();
    let port = if snum == 0 {
        let low = u16::try_from(low.clamp(1, 65535)).unwrap_or(1);
        let high = u16::try_from(high.clamp(i64::from(low), 65535)).unwrap_or(low);
        let remaining = u32::from(high - low) + 1;
        let first = reciprocal_scale(rand, remaining);
        let free = (0..remaining)
            .map(|i| low + ((first + i) % remaining) as u16)
            .find(|&p| {
                let mut me = *addrs;
                me.num = p;
                !slots
                    .get(&p)
                    .is_some_and(|slot| udp_lib_lport_inuse(slot, &me, sk))
            });
        free.ok_or(Errno::AddrInUse)?
    } else {
        let mut me = *addrs;
        me.num = snum;
        if slots
            .get(&snum)
            .is_some_and(|slot| udp_lib_lport_inuse(slot, &me, sk))
        {
            return Err(Errno::AddrInUse);
        }
        snum
    };
    addrs.num = port;
    let entry = UdpHashEntry {
        addrs: *addrs,
        bind_seq: table.next_seq.fetch_add(1, Ordering::Relaxed),
        sk: Arc::clone(sk),
    };
    // IPv4 sockets go to the head of the chain (`hlist_add_head_rcu`), so on
    // equal scores the most recently bound socket wins.
    slots.entry(port).or_default().insert(0, entry);
    table.changed();
    Ok(port)
}

/// Binds `sk` to `addr` (`bind()` on a UDP socket).
///
/// Mirrors `inet_bind()` → `__inet_bind()` in `net/ipv4/af_inet.c`.
/// Errors, in Linux's order: `EADDRNOTAVAIL` when the address is not the
/// wildcard, one of the host's, broadcast or multicast; `EINVAL` when the
/// socket is already bound (or connected); `EADDRINUSE` when the port is
/// taken (see [`UdpSock::set_reuse`] and [`UdpSock::set_reuseport`]).
#[doc(alias = "__inet_bind")]
pub fn inet_bind<C: UdpContext>(
    ctx: &mut C,
    sk: &Arc<UdpSock>,
    addr: SocketAddrV4,
) -> Result<(), Errno> {
    let ip = *addr.ip();
    if !ip.is_unspecified() && !ctx.inet_addr_valid_or_nonlocal(ip) {
        return Err(Errno::AddrNotAvail);
    }
    let mut inner = sk.lock();
    if inner.state != UdpState::Close || inner.addrs.num != 0 {
        return Err(Errno::Inval);
    }
    let mut addrs = inner.addrs;
    addrs.rcv_saddr = ip;
    let port = udp_lib_get_port(ctx, sk, &mut addrs, addr.port())?;
    inner.addrs = addrs;
    // A broadcast or multicast bind address is not a source address.
    inner.saddr = if ip.is_broadcast() || ip.is_multicast() {
        Ipv4Addr::UNSPECIFIED
    } else {
        ip
    };
    if !ip.is_unspecified() {
        inner.userlocks |= SOCK_BINDADDR_LOCK;
    }
    if addr.port() != 0 {
        inner.userlocks |= SOCK_BINDPORT_LOCK;
    }
    inner.hashed = true;
    tracing::debug!(target: "netstack::udp", sport = port, saddr = %ip, "inet_bind");
    Ok(())
}

/// Binds an unbound socket to an ephemeral port (before a send or
/// connect); does nothing when it is bound. `EAGAIN` when no port is free.
///
/// Mirrors `inet_autobind()`.
pub fn inet_autobind<C: UdpContext>(ctx: &mut C, sk: &Arc<UdpSock>) -> Result<(), Errno> {
    let mut inner = sk.lock();
    if inner.addrs.num != 0 {
        return Ok(());
    }
    let mut addrs = inner.addrs;
    let port = udp_lib_get_port(ctx, sk, &mut addrs, 0).map_err(|_| Errno::Again)?;
    inner.addrs = addrs;
    inner.hashed = true;
    tracing::debug!(target: "netstack::udp", sport = port, "inet_autobind");
    Ok(())
}

/// Connects `sk` to `addr`: later sends go there, and only datagrams from
/// there are received.
///
/// Mirrors `inet_dgram_connect()` + `ip4_datagram_connect()`
/// (`net/ipv4/datagram.c`): autobinds (`EAGAIN`), routes to the peer
/// (`ENETUNREACH`, counting `OutNoRoutes`), refuses a broadcast peer
/// without `SO_BROADCAST` (`EACCES`), takes the route's source address when
/// the socket was bound to the wildcard, and marks the socket
/// `TCP_ESTABLISHED`. The route is cached for later sends
/// (`sk_dst_set()`), the flow hash chosen (`sk_set_txhash()`) and the IP
/// id counter started at a random value. A pending error is cleared
/// (`sk->sk_err` is not reported by connect).
#[doc(alias = "inet_dgram_connect")]
pub fn ip4_datagram_connect<C: UdpContext>(
    ctx: &mut C,
    sk: &Arc<UdpSock>,
    addr: SocketAddrV4,
) -> Result<(), Errno> {
    inet_autobind(ctx, sk)?;
    // sk_set_txhash() (net_tx_rndhash(): random, never 0) and the random
    // start of inet_id, drawn before the socket lock is taken.
    let txhash = ctx.prandom_u32().max(1);
    let inet_id = (ctx.prandom_u32() >> 16) as u16;
    let genid = ctx.rt_genid();
    let mut inner = sk.lock();
    let fl = Flowi4 {
        oif: inner.addrs.bound_dev_if,
        mark: inner.mark,
        tos: inner.tos,
        proto: IPPROTO_UDP,
        daddr: *addr.ip(),
        saddr: inner.saddr,
        dport: addr.port(),
        sport: inner.addrs.num,
    };
    let rt = match ctx.ip_route_output(&fl) {
        Ok(rt) => rt,
        Err(e) => {
            if e == Errno::NetUnreach {
                ctx.mibs().inc(ctx.cpu(), IpMib::OutNoRoutes);
            }
            return Err(e);
        }
    };
    if rt.broadcast && !inner.broadcast {
        return Err(Errno::Acces);
    }
    if inner.saddr.is_unspecified() {
        inner.saddr = rt.saddr;
    }
    let mut addrs = inner.addrs;
    if addrs.rcv_saddr.is_unspecified() {
        addrs.rcv_saddr = rt.saddr;
    }
    addrs.daddr = *addr.ip();
    addrs.dport = addr.port();
    inner.addrs = addrs;
    inner.state = UdpState::Established;
    // sk_dst_set(): later sends to the peer reuse this route.
    inner.dst_cache = Some((rt, genid));
    inner.txhash = txhash;
    inner.inet_id = inet_id;
    ctx.udp_table().rehash(sk, addrs);
    tracing::debug!(target: "netstack::udp", daddr = %addr.ip(), dport = addr.port(), "ip4_datagram_connect");
    Ok(())
}

/// Dissolves the association made by connect (`connect()` with
/// `AF_UNSPEC`).
///
/// Mirrors `udp_disconnect()`: the peer is forgotten; the local address
/// and port stay only when `bind()` chose them (`SOCK_BINDADDR_LOCK`,
/// `SOCK_BINDPORT_LOCK`), otherwise they are released.
pub fn udp_disconnect<C: UdpContext>(ctx: &mut C, sk: &Arc<UdpSock>) {
    let mut inner = sk.lock();
    inner.state = UdpState::Close;
    // sk_dst_reset()
    inner.dst_cache = None;
    let old_port = inner.addrs.num;
    let mut addrs = inner.addrs;
    addrs.daddr = Ipv4Addr::UNSPECIFIED;
    addrs.dport = 0;
    if inner.userlocks & SOCK_BINDADDR_LOCK == 0 {
        addrs.rcv_saddr = Ipv4Addr::UNSPECIFIED;
        inner.saddr = Ipv4Addr::UNSPECIFIED;
    }
    if inner.userlocks & SOCK_BINDPORT_LOCK == 0 && inner.hashed {
        ctx.udp_table().unhash(sk, old_port);
        addrs.num = 0;
        inner.hashed = false;
        inner.addrs = addrs;
    } else {
        inner.addrs = addrs;
        if inner.hashed {
            ctx.udp_table().rehash(sk, addrs);
        }
    }
}

/// Shuts down one or both directions.
///
/// Mirrors `inet_shutdown()` for a datagram socket: `how` is `SHUT_RD` (0),
/// `SHUT_WR` (1) or `SHUT_RDWR` (2), anything else `EINVAL`. On an
/// unconnected socket the bits are still set (so pollers see `POLLHUP`) and
/// the call returns `ENOTCONN`, as Linux does. Wakes the socket.
#[doc(alias = "inet_shutdown")]
pub fn udp_shutdown(sk: &UdpSock, how: i32) -> Result<(), Errno> {
    let bits = match how {
        0 => RCV_SHUTDOWN,
        1 => SEND_SHUTDOWN,
        2 => SHUTDOWN_MASK,
        _ => return Err(Errno::Inval),
    };
    let connected = {
        let mut inner = sk.lock();
        inner.shutdown |= bits;
        inner.state == UdpState::Established
    };
    sk.wake(u32::MAX);
    if connected {
        Ok(())
    } else {
        Err(Errno::NotConn)
    }
}

/// Releases a socket: removes it from the table and frees its queue.
///
/// Mirrors `udp_lib_close()` → `sk_common_release()` → `udp_lib_unhash()`
/// and `udp_destroy_sock()`.
#[doc(alias = "udp_lib_unhash")]
pub fn udp_lib_close<C: UdpContext>(ctx: &mut C, sk: &Arc<UdpSock>) {
    let mut inner = sk.lock();
    if inner.hashed {
        ctx.udp_table().unhash(sk, inner.addrs.num);
        inner.hashed = false;
    }
    inner.dead = true;
    inner.rmem_alloc = 0;
    for skb in inner.receive_queue.drain(..) {
        consume_skb(skb);
    }
    drop(inner);
    sk.set_wakeup(None);
}

/// How well `e` matches a datagram, -1 for not at all.
///
/// Mirrors `compute_score()`: 2 for an IPv4 socket, +4 for each of a bound
/// local address, a connected peer address, a connected peer port and a
/// bound device that match; any of them set and different disqualifies.
fn compute_score(e: &SockAddrs, saddr: Ipv4Addr, sport: u16, daddr: Ipv4Addr, dif: u32) -> i32 {
    let mut score = 2;
    if !e.rcv_saddr.is_unspecified() {
        if e.rcv_saddr != daddr {
            return -1;
        }
        score += 4;
    }
    if !e.daddr.is_unspecified() {
        if e.daddr != saddr {
            return -1;
        }
        score += 4;
    }
    if e.dport != 0 {
        if e.dport != sport {
            return -1;
        }
        score += 4;
    }
    if e.bound_dev_if != 0 {
        if e.bound_dev_if != dif {
            return -1;
        }
        score += 4;
    }
    score
}

/// Picks one member of the `SO_REUSEPORT` group of `best` by flow hash.
///
/// Mirrors `lookup_reuseport()` → `reuseport_select_sock()`: the group is
/// the unconnected reuseport sockets bound to the same address, port and
/// device, in bind order; the member is `socks[reciprocal_scale(hash, n)]`.
fn lookup_reuseport(slot: &[UdpHashEntry], best: &SockAddrs, hash: u32) -> Option<Arc<UdpSock>> {
    let mut group: Vec<&UdpHashEntry> = slot
        .iter()
        .filter(|e| {
            e.addrs.reuseport
                && e.addrs.dport == 0
                && e.addrs.rcv_saddr == best.rcv_saddr
                && e.addrs.bound_dev_if == best.bound_dev_if
        })
        .collect();
    if group.len() < 2 {
        return None;
    }
    group.sort_by_key(|e| e.bind_seq);
    let i = reciprocal_scale(hash, group.len() as u32) as usize;
    Some(Arc::clone(&group[i].sk))
}

/// Finds the socket a datagram from `saddr:sport` to `daddr:dport`
/// arriving on interface `dif` belongs to.
///
/// Mirrors `__udp4_lib_lookup()` with `udp4_lib_lookup2()`: first the
/// sockets bound (or connected, which binds) to `daddr`, then those bound
/// to the wildcard; in each pass the highest [`compute_score`] wins (the
/// most recently bound on a tie), and a winner in an `SO_REUSEPORT` group
/// is replaced by the group member the flow hash picks.
#[doc(alias = "__udp4_lib_lookup")]
pub fn udp4_lib_lookup(
    table: &UdpTable,
    saddr: Ipv4Addr,
    sport: u16,
    daddr: Ipv4Addr,
    dport: u16,
    dif: u32,
) -> Option<Arc<UdpSock>> {
    let slots = table.slots.read();
    let slot = slots.get(&dport)?;
    // The flow hash only matters to an `SO_REUSEPORT` group (Linux, too,
    // computes it only when the winner has `sk_reuseport` set).
    let hash = || udp_ehashfn(daddr, dport, saddr, sport, table.secret);
    for pass_addr in [daddr, Ipv4Addr::UNSPECIFIED] {
        let mut badness = 0;
        let mut result: Option<&UdpHashEntry> = None;
        for e in slot.iter().filter(|e| e.addrs.rcv_saddr == pass_addr) {
            let score = compute_score(&e.addrs, saddr, sport, daddr, dif);
            if score > badness {
                badness = score;
                if e.addrs.reuseport
                    && let Some(sk) = lookup_reuseport(slot, &e.addrs, hash())
                {
                    return Some(sk);
                }
                result = Some(e);
            }
        }
        if let Some(e) = result {
            return Some(Arc::clone(&e.sk));
        }
    }
    None
}

fn ip_addrs(skb: &SkBuff) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let iph = skb.network_header()?;
    let s: [u8; 4] = iph.get(12..16)?.try_into().ok()?;
    let d: [u8; 4] = iph.get(16..20)?.try_into().ok()?;
    Some((Ipv4Addr::from(s), Ipv4Addr::from(d)))
}

fn udp_checksum_ok(skb: &SkBuff, saddr: Ipv4Addr, daddr: Ipv4Addr) -> bool {
    let data = skb.data();
    let check = u16::from_be_bytes([data[6], data[7]]);
    // CHECKSUM_PARTIAL on receive: looped back from this host before the
    // sum was filled (`skb_csum_unnecessary()` accepts it).
    if check == 0
        || matches!(
            skb.ip_summed,
            IpSummed::Unnecessary | IpSummed::Partial { .. }
        )
    {
        return true;
    }
    let len = data.len() as u16;
    csum_tcpudp_magic(saddr, daddr, len, IPPROTO_UDP, csum_partial(data, 0)) == 0
}

/// Receives one UDP datagram from IP.
///
/// Mirrors `udp_rcv()` → `__udp4_lib_rcv()`. On entry `skb.data()` starts
/// at the UDP header and the network header is set. Checks the length
/// field (too short, or longer than the packet: `InErrors`) and trims the
/// skb to it, verifies the checksum unless it is zero ("none") or the skb
/// is `CHECKSUM_UNNECESSARY` (`InCsumErrors` + `InErrors`), finds the
/// socket ([`udp4_lib_lookup`]) and queues the datagram
/// ([`udp_queue_rcv_skb`]). Broadcast and multicast datagrams go to every
/// matching socket, or count `IgnoredMulti` when none.
///
/// Returns `Err(skb)` when no socket matched a unicast datagram: `NoPorts`
/// is counted and the caller (IP) sends ICMP port unreachable quoting the
/// packet, then frees it. Otherwise the skb is consumed.
///
/// # Deviations from Linux
///
/// The checksum is verified here, before queueing, rather than when
/// `recvmsg()` copies the payload; the counters are the same, but a
/// corrupt datagram never occupies the receive buffer. A
/// `CHECKSUM_COMPLETE` sum from the device is not trusted (it would need
/// to be adjusted for every header pulled): the sum is recomputed.
#[tracing::instrument(level = "trace", target = "netstack::udp", skip_all, fields(len = skb.len()))]
#[allow(clippy::result_large_err)] // the skb goes back by value (STYLE.md §5)
pub fn udp_rcv<C: UdpContext>(ctx: &mut C, mut skb: SkBuff) -> Result<(), SkBuff> {
    // A datagram sent to this host still belongs to its sender's send
    // buffer: release it before it is queued here (Linux's ip_rcv_core()
    // and loopback_xmit() call skb_orphan()).
    skb.orphan();
    let cpu = ctx.cpu();
    let mibs = ctx.mibs();
    let data = skb.data();
    if data.len() < UDP_HLEN {
        mibs.inc(cpu, UdpMib::InErrors);
        kfree_skb_reason(skb, DropReason::PktTooSmall);
        return Ok(());
    }
    let ulen = usize::from(u16::from_be_bytes([data[4], data[5]]));
    let sport = u16::from_be_bytes([data[0], data[1]]);
    let dport = u16::from_be_bytes([data[2], data[3]]);
    if ulen > data.len() || ulen < UDP_HLEN || skb.trim(ulen).is_err() {
        mibs.inc(cpu, UdpMib::InErrors);
        kfree_skb_reason(skb, DropReason::PktTooSmall);
        return Ok(());
    }
    let Some((saddr, daddr)) = ip_addrs(&skb) else {
        mibs.inc(cpu, UdpMib::InErrors);
        kfree_skb_reason(skb, DropReason::PktTooSmall);
        return Ok(());
    };
    if !udp_checksum_ok(&skb, saddr, daddr) {
        mibs.inc(cpu, UdpMib::InCsumErrors);
        mibs.inc(cpu, UdpMib::InErrors);
        kfree_skb_reason(skb, DropReason::UdpCsum);
        return Ok(());
    }
    skb.reset_transport_header();
    if matches!(skb.pkt_type, PktType::Broadcast | PktType::Multicast)
        || daddr.is_broadcast()
        || daddr.is_multicast()
    {
        udp4_lib_mcast_deliver(ctx, skb, saddr, sport, daddr, dport);
        return Ok(());
    }
    let key = UdpFlowKey {
        saddr,
        sport,
        daddr,
        dport,
        dif: skb.ifindex,
    };
    let genid = ctx.udp_table().genid();
    let sk = match ctx.udp_rcv_cache().and_then(|c| c.take(&key, genid)) {
        Some(sk) => Some(sk),
        None => udp4_lib_lookup(ctx.udp_table(), saddr, sport, daddr, dport, skb.ifindex),
    };
    if let Some(sk) = sk {
        udp_queue_rcv_skb(ctx, &sk, skb);
        if let Some(c) = ctx.udp_rcv_cache() {
            c.put(key, genid, sk);
        }
        Ok(())
    } else {
        ctx.mibs().inc(cpu, UdpMib::NoPorts);
        tracing::trace!(target: "netstack::udp", %saddr, sport, %daddr, dport, reason = "NO_SOCKET");
        Err(skb)
    }
}

/// Delivers a broadcast or multicast datagram to every socket that would
/// accept it.
///
/// Mirrors `__udp4_lib_mcast_deliver()`: each matching socket gets a
/// clone; with none, the datagram counts `IgnoredMulti` and is freed (no
/// ICMP error for broadcasts).
fn udp4_lib_mcast_deliver<C: UdpContext>(
    ctx: &mut C,
    skb: SkBuff,
    saddr: Ipv4Addr,
    sport: u16,
    daddr: Ipv4Addr,
    dport: u16,
) {
    let targets: Vec<Arc<UdpSock>> = {
        let slots = ctx.udp_table().slots.read();
        slots
            .get(&dport)
            .map(|slot| {
                slot.iter()
                    .filter(|e| {
                        (e.addrs.rcv_saddr.is_unspecified() || e.addrs.rcv_saddr == daddr)
                            && (e.addrs.daddr.is_unspecified() || e.addrs.daddr == saddr)
                            && (e.addrs.dport == 0 || e.addrs.dport == sport)
                            && (e.addrs.bound_dev_if == 0 || e.addrs.bound_dev_if == skb.ifindex)
                    })
                    .map(|e| Arc::clone(&e.sk))
                    .collect()
            })
            .unwrap_or_default()
    };
    if targets.is_empty() {
        ctx.mibs().inc(ctx.cpu(), UdpMib::IgnoredMulti);
        consume_skb(skb);
        return;
    }
    let (last, rest) = targets.split_last().expect("targets is not empty");
    for sk in rest {
        udp_queue_rcv_skb(ctx, sk, skb.clone());
    }
    udp_queue_rcv_skb(ctx, last, skb);
}

/// Queues a datagram on a socket, charging its truesize to the receive
/// buffer, and wakes readers.
///
/// Mirrors `udp_queue_rcv_skb()` → `__udp_queue_rcv_skb()` →
/// `__udp_enqueue_schedule_skb()`. The datagram is dropped when
/// `rmem_alloc + truesize > sk_rcvbuf` and either the buffer is beyond
/// `INT_MAX / 2` or it is already over `sk_rcvbuf` (so one datagram is
/// always let in, even into a tiny buffer). A drop counts `RcvbufErrors`
/// and `InErrors` and the socket's `sk_drops`.
#[doc(alias = "__udp_enqueue_schedule_skb")]
pub fn udp_queue_rcv_skb<C: UdpContext>(ctx: &mut C, sk: &UdpSock, mut skb: SkBuff) {
    // Past the UDP header: the queue holds payloads, headers stay readable.
    if skb.pull(UDP_HLEN).is_err() {
        ctx.mibs().inc(ctx.cpu(), UdpMib::InErrors);
        kfree_skb_reason(skb, DropReason::PktTooSmall);
        return;
    }
    skb.tstamp = ctx.now();
    let mut inner = sk.lock();
    let size = skb.truesize();
    let rmem = inner.rmem_alloc;
    let rcvbuf = usize::try_from(inner.rcvbuf).unwrap_or(0);
    if inner.dead || (rmem + size > rcvbuf && (rcvbuf > (i32::MAX >> 1) as usize || rmem > rcvbuf))
    {
        drop(inner);
        sk.inc_drops();
        ctx.mibs().inc(ctx.cpu(), UdpMib::RcvbufErrors);
        ctx.mibs().inc(ctx.cpu(), UdpMib::InErrors);
        kfree_skb_reason(skb, DropReason::SocketRcvbuff);
        return;
    }
    inner.rmem_alloc = rmem + size;
    inner.receive_queue.push_back(skb);
    drop(inner);
    // sk_data_ready()
    sk.wake(POLLIN | POLLRDNORM);
}

/// What [`udp_recvmsg`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpRecv {
    /// Bytes copied into the caller's buffer.
    pub copied: usize,
    /// The datagram's full payload length.
    pub len: usize,
    /// The sender (`msg_name`).
    pub from: SocketAddrV4,
}

impl UdpRecv {
    /// Whether the datagram was cut to fit the buffer (`MSG_TRUNC` in
    /// `msg_flags`).
    pub fn truncated(&self) -> bool {
        self.copied < self.len
    }
}

/// Receives one datagram without blocking.
///
/// Mirrors `udp_recvmsg()` with `__skb_recv_udp()`. A pending error
/// (`sk_err`, e.g. `ECONNREFUSED` after a port unreachable) is returned
/// and cleared first. Then the first datagram is copied (cut to `buf`);
/// with `peek` it stays queued, otherwise it is dequeued, its truesize
/// uncharged and `InDatagrams` counted (Linux counts at read time, not at
/// arrival). An empty queue gives `EAGAIN`, or `Ok` with nothing when the
/// read side is shut down and the caller would block (`nonblock ==
/// false`): a blocked reader wakes with 0 after `shutdown(SHUT_RD)`.
#[doc(alias = "__skb_recv_udp")]
pub fn udp_recvmsg<C: UdpContext>(
    ctx: &mut C,
    sk: &UdpSock,
    buf: &mut [u8],
    peek: bool,
    nonblock: bool,
) -> Result<UdpRecv, Errno> {
    let mut inner = sk.lock();
    if let Some(err) = inner.err.take() {
        return Err(err);
    }
    let Some(skb) = inner.receive_queue.front() else {
        if !nonblock && inner.shutdown & RCV_SHUTDOWN != 0 {
            return Ok(UdpRecv {
                copied: 0,
                len: 0,
                from: SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
            });
        }
        return Err(Errno::Again);
    };
    let payload = skb.data();
    let copied = payload.len().min(buf.len());
    buf[..copied].copy_from_slice(&payload[..copied]);
    let sport = skb
        .transport_header()
        .and_then(|h| h.get(..2))
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let saddr = ip_addrs(skb).map_or(Ipv4Addr::UNSPECIFIED, |(s, _)| s);
    let out = UdpRecv {
        copied,
        len: payload.len(),
        from: SocketAddrV4::new(saddr, sport),
    };
    if !peek {
        let skb = inner.receive_queue.pop_front().expect("front exists");
        inner.rmem_alloc = inner.rmem_alloc.saturating_sub(skb.truesize());
        drop(inner);
        consume_skb(skb);
        ctx.mibs().this_cpu(ctx.cpu()).inc(UdpMib::InDatagrams);
    }
    Ok(out)
}

/// Sends one datagram without blocking.
///
/// Mirrors `inet_sendmsg()` → `udp_sendmsg()` → `ip_make_skb()` →
/// `udp_send_skb()`. In order: autobind an unbound socket (`EAGAIN` when
/// no port is free); more than 65,507 bytes → `EMSGSIZE`; the destination
/// is `to` (port 0 → `EINVAL`) or the connected peer (none →
/// `EDESTADDRREQ`); route it (`ENETUNREACH` counting `OutNoRoutes`, ...)
/// — a send to the connected peer reuses the route connect cached
/// (`sk_dst_check()`) while the routing generation has not moved on, and
/// caches a fresh one otherwise (`sk_dst_set()`);
/// a broadcast destination needs `SO_BROADCAST` (`EACCES`); a pending
/// error is returned and cleared (`sock_alloc_send_pskb()`); a
/// send-shut socket gives `EPIPE`; a full send buffer (`sk_wmem_alloc >=
/// sk_sndbuf`) `EAGAIN` and `SndbufErrors`. The header is filled with the
/// checksum (zero with `SO_NO_CHECK`; the pseudo-header sum and
/// `CHECKSUM_PARTIAL` when the route's device offloads it), DF is allowed
/// when the datagram fits the path MTU (`IP_PMTUDISC_WANT`), and IP
/// fragments larger ones. A connected socket numbers its datagrams with
/// its own IP id counter (`inet_id`) and marks them with its flow hash
/// (`sk_txhash`, `skb_set_hash_from_sk()`). Success counts `OutDatagrams`; an `ENOBUFS` from
/// below counts `SndbufErrors` and is reported as success, as in Linux.
///
/// The datagram's truesize is charged to `sk_wmem_alloc` from here until
/// the skb is freed — after the NIC's transmit completion, a qdisc drop,
/// or a local receiver's read — by [`UdpSock`]'s skb destructor
/// (`skb_set_owner_w()` / `sock_wfree()`), so `SO_SNDBUF` bounds what the
/// socket has queued below it, and `sock_wfree()` wakes a writer waiting
/// for room.
#[tracing::instrument(level = "trace", target = "netstack::udp", skip_all, fields(len = buf.len()))]
pub fn udp_sendmsg<C: UdpContext>(
    ctx: &mut C,
    sk: &Arc<UdpSock>,
    buf: &[u8],
    to: Option<SocketAddrV4>,
) -> Result<usize, Errno> {
    let len = buf.len();
    let mut inner = sk.lock();
    // inet_autobind(), which takes the socket lock itself: only an
    // unbound socket lets go of the lock taken here for the flow.
    if inner.addrs.num == 0 {
        drop(inner);
        inet_autobind(ctx, sk)?;
        inner = sk.lock();
    }
    if len > UDP_MAX_PAYLOAD {
        return Err(Errno::MsgSize);
    }
    let genid = ctx.rt_genid();
    let connected = to.is_none();
    let (daddr, dport) = if let Some(to) = to {
        if to.port() == 0 {
            return Err(Errno::Inval);
        }
        (*to.ip(), to.port())
    } else {
        if inner.state != UdpState::Established {
            return Err(Errno::DestAddrReq);
        }
        (inner.addrs.daddr, inner.addrs.dport)
    };
    let fl = Flowi4 {
        oif: inner.addrs.bound_dev_if,
        mark: inner.mark,
        tos: inner.tos,
        proto: IPPROTO_UDP,
        daddr,
        saddr: inner.saddr,
        dport,
        sport: inner.addrs.num,
    };
    let (no_check, broadcast_ok, txhash) = (inner.no_check_tx, inner.broadcast, inner.txhash);
    // Only a send to the connected peer uses (and fills) the cache.
    let cached = if connected {
        inner.sk_dst_check(genid)
    } else {
        None
    };
    let (rt, mut inner) = if let Some(mut rt) = cached {
        // The connected fast path: the cached route, the skb and the
        // checks of sock_alloc_send_pskb() under the one lock taken for
        // the flow (Linux reads a connected socket's destination and its
        // cached dst without lock_sock(); the neighbour table's lock and
        // the page pool's, taken under it, are leaves).
        if ctx.dst_neigh_refresh(&mut rt, fl.daddr) {
            // The route keeps the next hop's entry from now on.
            if let Some((c, g)) = inner.dst_cache.as_mut()
                && *g == genid
            {
                *c = rt;
            }
        }
        (rt, inner)
    } else {
        drop(inner);
        let rt = match ctx.ip_route_output(&fl) {
            Ok(rt) => rt,
            Err(e) => {
                if e == Errno::NetUnreach {
                    ctx.mibs().inc(ctx.cpu(), IpMib::OutNoRoutes);
                }
                return Err(e);
            }
        };
        let mut inner = sk.lock();
        if connected {
            // sk_dst_set()
            inner.dst_cache = Some((rt, genid));
        }
        (rt, inner)
    };
    if rt.broadcast && !broadcast_ok {
        return Err(Errno::Acces);
    }
    let Ok(mut skb) = SkBuff::alloc(ctx.page_pool(), UDP_MAX_HEADER + UDP_HLEN + len) else {
        drop(inner);
        ctx.mibs().inc(ctx.cpu(), UdpMib::SndbufErrors);
        return Err(Errno::NoBufs);
    };
    // sock_alloc_send_pskb(): a pending error is returned and cleared, a
    // send-shut socket gives EPIPE, and there is room while
    // sk_wmem_alloc < sk_sndbuf.
    if let Some(err) = inner.err.take() {
        return Err(err);
    }
    if inner.shutdown & SEND_SHUTDOWN != 0 {
        return Err(Errno::Pipe);
    }
    if sk.wmem_alloc() >= usize::try_from(inner.sndbuf).unwrap_or(0) {
        drop(inner);
        ctx.mibs().inc(ctx.cpu(), UdpMib::SndbufErrors);
        return Err(Errno::Again);
    }
    // ip_select_ident_segs(): a connected socket numbers its datagrams
    // with its own counter (atomic_add_return(), so the first is the
    // random start + 1).
    let id =
        (inner.state == UdpState::Established && !inner.addrs.daddr.is_unspecified()).then(|| {
            inner.inet_id = inner.inet_id.wrapping_add(1);
            inner.inet_id
        });
    drop(inner);
    let ulen = UDP_HLEN + len;
    // skb_set_owner_w(): charged until the skb is freed (transmitted,
    // dropped, or read by a local receiver); skb_set_hash_from_sk(): a
    // connected socket's datagrams carry its sk_txhash, so the device
    // layer picks a queue without dissecting them.
    sk.skb_set_owner_w(&mut skb);
    if txhash != 0 {
        skb.set_hash(txhash, true);
    }
    let rt_saddr = if fl.saddr.is_unspecified() {
        rt.saddr
    } else {
        fl.saddr
    };
    // __ip_append_data(): CHECKSUM_PARTIAL only for a datagram that goes
    // as one packet (`length + fragheaderlen <= mtu`) on a device that
    // sums it; a fragmented one is summed here.
    let offload = rt.csum_offload && IPV4_HLEN + ulen <= rt.mtu as usize;
    let built = udp_build(&mut skb, &fl, rt_saddr, buf, no_check, offload);
    let result = match built {
        Ok(()) => {
            skb.mark = fl.mark;
            let fl = Flowi4 {
                saddr: rt_saddr,
                ..fl
            };
            let df = ulen + 20 <= rt.mtu as usize;
            ctx.ip_send_skb(skb, &fl, &rt, df, id)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            ctx.mibs().this_cpu(ctx.cpu()).inc(UdpMib::OutDatagrams);
            Ok(len)
        }
        Err(Errno::NoBufs) => {
            ctx.mibs().inc(ctx.cpu(), UdpMib::SndbufErrors);
            Ok(len)
        }
        Err(e) => Err(e),
    }
}

/// Writes the UDP header and payload into `skb` after its headroom.
///
/// Mirrors `udp_send_skb()`'s header fill with `udp4_hwcsum()` /
/// `csum_tcpudp_magic()`: a computed checksum of 0 is sent as 0xffff
/// (`CSUM_MANGLED_0`).
fn udp_build(
    skb: &mut SkBuff,
    fl: &Flowi4,
    saddr: Ipv4Addr,
    payload: &[u8],
    no_check: bool,
    offload: bool,
) -> Result<(), Errno> {
    let ulen = UDP_HLEN + payload.len();
    skb.reserve(UDP_MAX_HEADER).map_err(|_| Errno::NoBufs)?;
    let head = skb.headroom();
    let data = skb.put(ulen).map_err(|_| Errno::NoBufs)?;
    data[0..2].copy_from_slice(&fl.sport.to_be_bytes());
    data[2..4].copy_from_slice(&fl.dport.to_be_bytes());
    data[4..6].copy_from_slice(&(ulen as u16).to_be_bytes());
    data[6..8].copy_from_slice(&[0, 0]);
    data[UDP_HLEN..].copy_from_slice(payload);
    if no_check {
        skb.ip_summed = IpSummed::None;
    } else if offload {
        let pseudo = csum_tcpudp_nofold(saddr, fl.daddr, ulen as u16, IPPROTO_UDP, 0);
        data[6..8].copy_from_slice(&(!csum_fold(pseudo)).to_be_bytes());
        skb.ip_summed = IpSummed::Partial {
            csum_start: head as u16,
            csum_offset: 6,
        };
    } else {
        let check = csum_tcpudp_magic(
            saddr,
            fl.daddr,
            ulen as u16,
            IPPROTO_UDP,
            csum_partial(data, 0),
        );
        let check = if check == 0 { 0xffff } else { check };
        data[6..8].copy_from_slice(&check.to_be_bytes());
    }
    skb.reset_transport_header();
    Ok(())
}

/// The errno and "fatal" flag of each ICMP destination-unreachable code.
///
/// Mirrors `icmp_err_convert[]` in `net/ipv4/icmp.c`. `ENONET` (for
/// `ICMP_HOST_ISOLATED`) is not in [`Errno`]; `EHOSTUNREACH` stands in.
const ICMP_ERR_CONVERT: [(Errno, bool); 16] = [
    (Errno::NetUnreach, false),  // NET_UNREACH
    (Errno::HostUnreach, false), // HOST_UNREACH
    (Errno::NoProtoOpt, true),   // PROT_UNREACH
    (Errno::ConnRefused, true),  // PORT_UNREACH
    (Errno::MsgSize, false),     // FRAG_NEEDED
    (Errno::OpNotSupp, false),   // SR_FAILED
    (Errno::NetUnreach, true),   // NET_UNKNOWN
    (Errno::HostDown, true),     // HOST_UNKNOWN
    (Errno::HostUnreach, true),  // HOST_ISOLATED (ENONET)
    (Errno::NetUnreach, true),   // NET_ANO
    (Errno::HostUnreach, true),  // HOST_ANO
    (Errno::NetUnreach, false),  // NET_UNR_TOS
    (Errno::HostUnreach, false), // HOST_UNR_TOS
    (Errno::HostUnreach, true),  // PKT_FILTERED
    (Errno::HostUnreach, true),  // PREC_VIOLATION
    (Errno::HostUnreach, true),  // PREC_CUTOFF
];

const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_SOURCE_QUENCH: u8 = 4;
const ICMP_REDIRECT: u8 = 5;
const ICMP_PARAMETERPROB: u8 = 12;
const ICMP_FRAG_NEEDED: u8 = 4;

/// Delivers an ICMP error about a datagram this host sent to the socket
/// that sent it.
///
/// Mirrors `udp_err()` → `__udp4_lib_err()`. `from` sent the ICMP message;
/// `quoted` is the ICMP payload:
/// the offending IP header and at least the first 8 bytes after it. The
/// sender is found by the reversed addresses; none counts ICMP `InErrors`
/// and returns `ENOENT`. The error becomes `sk_err` only when it is "hard"
/// (port and protocol unreachable, fragmentation needed, parameter
/// problem, the administratively prohibited codes) and the socket is
/// connected, as Linux does without `IP_RECVERR`; the next `recvmsg` or
/// `sendmsg` returns it (`ECONNREFUSED`, `EMSGSIZE`, ...) and `poll`
/// reports `POLLERR`. A redirect updates the route toward the peer
/// (`ipv4_sk_redirect()`); source quench is ignored.
#[doc(alias = "__udp4_lib_err")]
pub fn udp_err<C: UdpContext>(
    ctx: &mut C,
    icmp_type: u8,
    code: u8,
    info: u32,
    from: Ipv4Addr,
    quoted: &[u8],
) -> Result<(), Errno> {
    let ihl = usize::from(quoted.first().map_or(0, |b| b & 0x0f)) * 4;
    let Some(uh) = quoted.get(ihl..ihl + 4).filter(|_| ihl >= 20) else {
        ctx.mibs().inc(ctx.cpu(), IcmpMib::InErrors);
        return Err(Errno::Inval);
    };
    let our = Ipv4Addr::new(quoted[12], quoted[13], quoted[14], quoted[15]);
    let peer = Ipv4Addr::new(quoted[16], quoted[17], quoted[18], quoted[19]);
    let our_port = u16::from_be_bytes([uh[0], uh[1]]);
    let peer_port = u16::from_be_bytes([uh[2], uh[3]]);
    let Some(sk) = udp4_lib_lookup(ctx.udp_table(), peer, peer_port, our, our_port, 0) else {
        ctx.mibs().inc(ctx.cpu(), IcmpMib::InErrors);
        return Err(Errno::NoEnt);
    };
    let (err, harderr) = match icmp_type {
        ICMP_SOURCE_QUENCH => return Ok(()),
        ICMP_REDIRECT => {
            // ipv4_sk_redirect(): `from` says `info` is the better first
            // hop toward the peer.
            ctx.ip_rt_redirect(peer, from, Ipv4Addr::from(info), code);
            return Ok(());
        }
        ICMP_PARAMETERPROB => (Errno::Proto, true),
        ICMP_DEST_UNREACH if code == ICMP_FRAG_NEEDED => {
            // ipv4_sk_update_pmtu(): the path MTU is learned for every
            // socket toward the peer, connected or not.
            ctx.ip_rt_update_pmtu(peer, info);
            (Errno::MsgSize, true)
        }
        ICMP_DEST_UNREACH => ICMP_ERR_CONVERT
            .get(usize::from(code))
            .copied()
            .unwrap_or((Errno::HostUnreach, false)),
        _ => (Errno::HostUnreach, false),
    };
    if !harderr || sk.state() != UdpState::Established {
        return Ok(());
    }
    tracing::debug!(target: "netstack::udp", err = err.name(), "udp_err");
    sk.set_error(err);
    Ok(())
}

/// `/proc/net/udp`: one line per socket.
///
/// Mirrors `udp4_seq_show()` / `udp4_format_sock()`: addresses as the
/// kernel prints a `__be32` with `%08X` on x86-64 (127.0.0.1 is
/// `0100007F`), ports in hex, `st` 07 (unconnected) or 01 (connected),
/// `tx_queue:rx_queue` as `sk_wmem_alloc:sk_rmem_alloc`, uid 0, the inode,
/// and `drops`. Lines are padded to 127 columns, as `seq_pad()` does; the
/// pointer is printed as zeros (`%pK` with `kptr_restrict`).
#[doc(alias = "udp4_seq_show")]
pub fn proc_net_udp(table: &UdpTable) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<127}",
        "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops"
    );
    let hex = |a: Ipv4Addr| u32::from_le_bytes(a.octets());
    for sk in table.sockets() {
        let (addrs, state, rmem) = {
            let inner = sk.lock();
            (inner.addrs, inner.state, inner.rmem_alloc)
        };
        let wmem = sk.wmem_alloc();
        let line = format!(
            "{:5}: {:08X}:{:04X} {:08X}:{:04X} {:02X} {:08X}:{:08X} {:02X}:{:08X} {:08X} {:5} {:8} {} {} {:016x} {}",
            addrs.num,
            hex(addrs.rcv_saddr),
            addrs.num,
            hex(addrs.daddr),
            addrs.dport,
            state as u8,
            wmem,
            rmem,
            0,
            0,
            0,
            0,
            0,
            sk.ino(),
            Arc::strong_count(&sk).saturating_sub(1),
            0,
            sk.drops(),
        );
        let _ = writeln!(out, "{line:<127}");
    }
    out
}

/// `ss -uan` (or `ss -uanp` with `process`): one line per UDP socket.
///
/// Mirrors `ss`'s columns for UDP as it reads them from `sock_diag`:
/// `State` (`UNCONN` or `ESTAB`), `Recv-Q` (`sk_rmem_alloc`), `Send-Q`
/// (`sk_wmem_alloc`), local and peer `address:port` (`*` for a wildcard
/// port), and the `Process` column `process(ino)` returns (e.g.
/// `users:(("app",pid=1,fd=3))`).
pub fn ss_udp(table: &UdpTable, process: impl Fn(u64) -> Option<String>) -> String {
    let mut out =
        String::from("State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n");
    for sk in table.sockets() {
        let (addrs, state, rmem) = {
            let inner = sk.lock();
            (inner.addrs, inner.state, inner.rmem_alloc)
        };
        let wmem = sk.wmem_alloc();
        let st = match state {
            UdpState::Established => "ESTAB",
            UdpState::Close => "UNCONN",
        };
        let peer = if addrs.dport == 0 {
            format!("{}:*", addrs.daddr)
        } else {
            format!("{}:{}", addrs.daddr, addrs.dport)
        };
        let local = format!("{}:{}", addrs.rcv_saddr, addrs.num);
        let proc_col = process(sk.ino()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{st:<6} {rmem:<6} {wmem:<6} {local:>18} {peer:>17} {proc_col}"
        );
    }
    out
}

/// The poll keys a send or receive wake-up carries, for socket layers.
pub const UDP_WAKE_READ: u32 = POLLIN | POLLRDNORM;
/// See [`UDP_WAKE_READ`].
pub const UDP_WAKE_WRITE: u32 = POLLOUT | POLLWRNORM | POLLWRBAND;

/// The header of a received datagram, for tests and listings:
/// `(saddr, sport, daddr, dport)` of an skb queued on a socket.
pub fn udp_skb_addrs(skb: &SkBuff) -> Option<(SocketAddrV4, SocketAddrV4)> {
    let (s, d) = ip_addrs(skb)?;
    let th = skb.transport_header()?;
    let sp = u16::from_be_bytes([*th.first()?, *th.get(1)?]);
    let dp = u16::from_be_bytes([*th.get(2)?, *th.get(3)?]);
    Some((SocketAddrV4::new(s, sp), SocketAddrV4::new(d, dp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(rcv: [u8; 4], port: u16, reuse: bool, reuseport: bool) -> SockAddrs {
        SockAddrs {
            rcv_saddr: Ipv4Addr::from(rcv),
            num: port,
            daddr: Ipv4Addr::UNSPECIFIED,
            dport: 0,
            bound_dev_if: 0,
            reuse,
            reuseport,
        }
    }

    #[test]
    fn compute_score_prefers_more_specific_sockets() {
        let s = Ipv4Addr::new(198, 18, 0, 2);
        let d = Ipv4Addr::new(198, 18, 0, 1);
        let wild = addrs([0; 4], 53, false, false);
        let bound = addrs([198, 18, 0, 1], 53, false, false);
        let mut conn = bound;
        conn.daddr = s;
        conn.dport = 4000;
        assert_eq!(compute_score(&wild, s, 4000, d, 1), 2);
        assert_eq!(compute_score(&bound, s, 4000, d, 1), 6);
        assert_eq!(compute_score(&conn, s, 4000, d, 1), 14);
        assert_eq!(compute_score(&conn, s, 4001, d, 1), -1);
        let mut dev = wild;
        dev.bound_dev_if = 2;
        assert_eq!(compute_score(&dev, s, 4000, d, 1), -1);
        assert_eq!(compute_score(&dev, s, 4000, d, 2), 6);
    }

    #[test]
    fn lport_inuse_follows_reuseaddr_and_reuseport() {
        let sysctl = netcore::Sysctl::new();
        let a = UdpSock::new(1, &sysctl);
        let b = UdpSock::new(2, &sysctl);
        let entry = |x: SockAddrs, sk: &Arc<UdpSock>| UdpHashEntry {
            addrs: x,
            bind_seq: 0,
            sk: Arc::clone(sk),
        };
        let slot = [entry(addrs([0; 4], 53, false, false), &a)];
        assert!(udp_lib_lport_inuse(
            &slot,
            &addrs([198, 18, 0, 1], 53, false, false),
            &b
        ));
        let slot = [entry(addrs([198, 18, 0, 2], 53, false, false), &a)];
        assert!(!udp_lib_lport_inuse(
            &slot,
            &addrs([198, 18, 0, 1], 53, false, false),
            &b
        ));
        let slot = [entry(addrs([0; 4], 53, true, false), &a)];
        assert!(!udp_lib_lport_inuse(
            &slot,
            &addrs([0; 4], 53, true, false),
            &b
        ));
        assert!(udp_lib_lport_inuse(
            &slot,
            &addrs([0; 4], 53, false, false),
            &b
        ));
        let slot = [entry(addrs([0; 4], 53, false, true), &a)];
        assert!(!udp_lib_lport_inuse(
            &slot,
            &addrs([0; 4], 53, false, true),
            &b
        ));
        // A socket never conflicts with itself.
        assert!(!udp_lib_lport_inuse(
            &slot,
            &addrs([0; 4], 53, false, false),
            &a
        ));
    }
}
