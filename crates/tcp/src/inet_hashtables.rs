//! The lookup tables: established (4-tuple), listening, and bind buckets,
//! with ephemeral port selection.
//!
//! Mirrors `net/ipv4/inet_hashtables.c` (`__inet_lookup_established()`,
//! `__inet_lookup_listener()`, `__inet_hash_connect()`, `inet_ehash_insert()`)
//! and the bind-conflict rules of `inet_csk_get_port()` /
//! `inet_csk_bind_conflict()` in `net/ipv4/inet_connection_sock.c`.
//!
//! ```text
//!   ehash:  (saddr, sport, daddr, dport) -> full or TIME-WAIT socket
//!   lhash:  port -> [(bound addr, listener)]
//!   bhash:  port -> bucket [(owner, addr, SO_REUSEADDR, listening)]
//! ```

use core::cell::Cell;
use core::net::Ipv4Addr;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use netcore::Errno;

use crate::tcp_sock::SockId;

/// The 4-tuple of a connection from the local side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FourTuple {
    /// Local address.
    pub laddr: Ipv4Addr,
    /// Local port.
    pub lport: u16,
    /// Remote address.
    pub raddr: Ipv4Addr,
    /// Remote port.
    pub rport: u16,
}

impl core::hash::Hash for FourTuple {
    /// The three words `inet_ehashfn()` hashes: local address, remote
    /// address, local port << 16 | remote port.
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u32(u32::from(self.laddr));
        state.write_u32(u32::from(self.raddr));
        state.write_u32((u32::from(self.lport) << 16) | u32::from(self.rport));
    }
}

/// The established table's hash: `jhash_3words()` of the 4-tuple's three
/// words under the host's secret.
///
/// Mirrors `inet_ehashfn()` (`inet_ehash_secret`); a keyed hash, so a peer
/// cannot aim connections at one bucket, at a fraction of SipHash's cost
/// per segment. The 32-bit result is spread over 64 bits for the table's
/// control bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InetEhashfn {
    secret: u32,
}

impl InetEhashfn {
    pub(crate) fn new(secret: u32) -> InetEhashfn {
        InetEhashfn { secret }
    }
}

impl core::hash::BuildHasher for InetEhashfn {
    type Hasher = InetEhasher;

    fn build_hasher(&self) -> InetEhasher {
        InetEhasher {
            secret: self.secret,
            words: [0; 3],
            n: 0,
        }
    }
}

/// The hash of the port-keyed tables (`lhash`, `bhash`): the port times
/// a 64-bit odd constant. Mirrors `inet_lhashfn()`/`inet_bhashfn()`, which
/// hash a port by a mix with the namespace alone (the port is ours, not
/// the peer's, so it needs no keyed hash).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PortHash;

impl core::hash::BuildHasher for PortHash {
    type Hasher = PortHasher;

    fn build_hasher(&self) -> PortHasher {
        PortHasher(0)
    }
}

/// The hasher of [`PortHash`].
#[derive(Debug)]
pub(crate) struct PortHasher(u64);

impl core::hash::Hasher for PortHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u16(&mut self, port: u16) {
        self.0 = (self.0 ^ u64::from(port)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    /// A listener's request numbers (`ListenState::req_index`): counted
    /// up by the listener itself, so like a port they need no keyed hash.
    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The hasher of [`InetEhashfn`]: gathers the three words, hashes them at
/// `finish()`; any other input folds into the seed.
#[derive(Debug)]
pub(crate) struct InetEhasher {
    secret: u32,
    words: [u32; 3],
    n: usize,
}

impl core::hash::Hasher for InetEhasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.secret = self.secret.rotate_left(5) ^ u32::from(b);
        }
    }

    fn write_u32(&mut self, w: u32) {
        if let Some(slot) = self.words.get_mut(self.n) {
            *slot = w;
            self.n += 1;
        } else {
            self.write(&w.to_ne_bytes());
        }
    }

    fn finish(&self) -> u64 {
        let [a, b, c] = self.words;
        let h = netcore::jhash_3words(a, b, c, self.secret);
        u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

/// What an established-hash entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EhashEntry {
    /// A full socket.
    Sock(SockId),
    /// A TIME-WAIT mini socket (`inet_timewait_sock`).
    TimeWait(SockId),
}

/// An [`EhashEntry`] as the established table stores it: the socket id
/// in two 32-bit halves with the TIME-WAIT tag in the top bit, so an
/// entry with its 12-byte key takes 20 bytes instead of 32 (Linux links
/// the sockets into the buckets through `sk_nulls_node` instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EhashSlot([u32; 2]);

/// The tag bit of a TIME-WAIT entry in an [`EhashSlot`].
const EHASH_TW: u32 = 1 << 31;

impl EhashSlot {
    /// Packs `e`. Socket ids come from a counter and stay below 2^63.
    fn pack(e: EhashEntry) -> EhashSlot {
        let (id, tw) = match e {
            EhashEntry::Sock(id) => (id.0, 0),
            EhashEntry::TimeWait(id) => (id.0, EHASH_TW),
        };
        EhashSlot([((id >> 32) as u32 & !EHASH_TW) | tw, id as u32])
    }

    fn unpack(self) -> EhashEntry {
        let id = SockId((u64::from(self.0[0] & !EHASH_TW) << 32) | u64::from(self.0[1]));
        if self.0[0] & EHASH_TW == 0 {
            EhashEntry::Sock(id)
        } else {
            EhashEntry::TimeWait(id)
        }
    }
}

/// One user of a bound port. Mirrors a socket on `tb->owners`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BindOwner {
    pub id: SockId,
    pub addr: Ipv4Addr,
    pub reuse: bool,
    pub listening: bool,
    /// Bound by `connect()`'s port search, not by `bind()`
    /// (`tb->fastreuse == -1`).
    pub by_connect: bool,
    pub time_wait: bool,
}

/// The host's TCP tables. Mirrors `struct inet_hashinfo`.
#[derive(Debug, Default)]
pub struct InetHashinfo {
    pub(crate) ehash: HashMap<FourTuple, EhashSlot, InetEhashfn>,
    /// The entry [`InetHashinfo::lookup_established`] found last, emptied
    /// by every change of `ehash`.
    ehash_last: Cell<Option<(FourTuple, EhashSlot)>>,
    pub(crate) lhash: HashMap<u16, Vec<(Ipv4Addr, SockId)>, PortHash>,
    pub(crate) bhash: HashMap<u16, Vec<BindOwner>, PortHash>,
    /// `table_perturb[]` of `__inet_hash_connect()`.
    pub(crate) table_perturb: Vec<u32>,
    /// The host's full sockets by [`SockId`], which the entries above
    /// name.
    ///
    /// # Deviations from Linux
    ///
    /// Linux's ehash entries are the sockets themselves; here they name
    /// a socket by id and this set, under the same lock, holds the
    /// socket, so a lookup hands back the socket it found under one
    /// lock (`__inet_lookup_established()` with its `refcount_inc`)
    /// instead of a second table's lock.
    pub(crate) socks:
        std::collections::HashSet<std::sync::Arc<crate::TcpSocket>, crate::tcp::SockIdHash>,
}

/// `INET_TABLE_PERTURB_SIZE`.
const INET_TABLE_PERTURB_SIZE: usize = 1 << 16;

fn addrs_overlap(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a.is_unspecified() || b.is_unspecified() || a == b
}

impl InetHashinfo {
    /// Empty tables.
    pub fn new() -> InetHashinfo {
        InetHashinfo::default()
    }

    /// Empty tables whose established hash is keyed by `secret`
    /// (`inet_ehash_secret`).
    pub(crate) fn with_ehash_secret(secret: u32) -> InetHashinfo {
        InetHashinfo {
            ehash: HashMap::with_hasher(InetEhashfn::new(secret)),
            ..InetHashinfo::default()
        }
    }

    /// Finds the socket of an established or TIME-WAIT connection.
    /// Mirrors `__inet_lookup_established()`.
    ///
    /// # Deviations from Linux
    ///
    /// The entry found last is kept until the table changes, so that the
    /// segments of one busy connection in a row skip the keyed hash of the
    /// 4-tuple (Linux hashes each); the result is the same.
    #[inline]
    pub fn lookup_established(&self, t: &FourTuple) -> Option<EhashEntry> {
        if let Some((last, slot)) = self.ehash_last.get()
            && last == *t
        {
            return Some(slot.unpack());
        }
        let slot = *self.ehash.get(t)?;
        self.ehash_last.set(Some((*t, slot)));
        Some(slot.unpack())
    }

    /// `ehash` changed: the entry [`InetHashinfo::lookup_established`]
    /// keeps may be gone.
    #[inline]
    fn ehash_changed(&self) {
        self.ehash_last.set(None);
    }

    /// Finds the listener for `(daddr, dport)`: an exact address beats the
    /// wildcard. Mirrors `__inet_lookup_listener()` (the score of
    /// `compute_score()` for the address).
    pub fn lookup_listener(&self, daddr: Ipv4Addr, dport: u16) -> Option<SockId> {
        let list = self.lhash.get(&dport)?;
        list.iter()
            .find(|(a, _)| *a == daddr)
            .or_else(|| list.iter().find(|(a, _)| a.is_unspecified()))
            .map(|&(_, id)| id)
    }

    /// Whether `owner` may take `port` on `addr` next to the current owners.
    /// Mirrors `inet_csk_bind_conflict()` with `SO_REUSEADDR`: two sockets
    /// conflict when their addresses overlap, unless both set
    /// `SO_REUSEADDR` and the other is not listening.
    fn bind_conflict(&self, port: u16, addr: Ipv4Addr, reuse: bool) -> bool {
        self.bhash.get(&port).is_some_and(|owners| {
            owners
                .iter()
                .any(|o| addrs_overlap(o.addr, addr) && !(reuse && o.reuse && !o.listening))
        })
    }

    /// Binds `id` to `addr:port`; port 0 picks a free port from
    /// `range` (odd offsets first, as `inet_csk_find_open_port()` leaves the
    /// even ones to `connect()`). Mirrors `inet_csk_get_port()`.
    ///
    /// Errors: `EADDRINUSE` on a conflict or when no port is free.
    pub(crate) fn bind(
        &mut self,
        id: SockId,
        addr: Ipv4Addr,
        port: u16,
        reuse: bool,
        range: (u16, u16),
        rand: u32,
    ) -> Result<u16, Errno> {
        let port = if port == 0 {
            let (low, high) = (u32::from(range.0), u32::from(range.1) + 1);
            let mut remaining = high - low;
            if remaining > 1 {
                remaining &= !1;
            }
            let mut offset = (rand % remaining) | 1;
            let mut found = None;
            'scan: loop {
                let mut port = low + offset;
                let mut i = 0;
                while i < remaining {
                    if port >= high {
                        port -= remaining;
                    }
                    if !self.bind_conflict(port as u16, addr, reuse)
                        && !self.bhash.contains_key(&(port as u16))
                    {
                        found = Some(port as u16);
                        break 'scan;
                    }
                    i += 2;
                    port += 2;
                }
                offset = offset.wrapping_sub(1);
                if offset & 1 != 0 {
                    break;
                }
            }
            found.ok_or(Errno::AddrInUse)?
        } else {
            if self.bind_conflict(port, addr, reuse) {
                return Err(Errno::AddrInUse);
            }
            port
        };
        self.bhash.entry(port).or_default().push(BindOwner {
            id,
            addr,
            reuse,
            listening: false,
            by_connect: false,
            time_wait: false,
        });
        Ok(port)
    }

    /// Removes `id` from the bucket of `port`. Mirrors `inet_put_port()`.
    ///
    /// A bucket is searched from its newest owner: a listener's port holds
    /// every accepted child and TIME-WAIT socket on it, and the socket
    /// that leaves (or turns TIME-WAIT) is most often a recent one (Linux
    /// unlinks an owner in O(1) from its intrusive list).
    pub(crate) fn unbind(&mut self, id: SockId, port: u16) {
        if let Some(owners) = self.bhash.get_mut(&port) {
            if let Some(pos) = owners.iter().rposition(|o| o.id == id) {
                owners.remove(pos);
            }
            if owners.is_empty() {
                self.bhash.remove(&port);
            }
        }
    }

    /// Moves a port's ownership from a full socket to its TIME-WAIT socket.
    /// Mirrors `inet_twsk_hashdance()` (the tw joins `tb->owners`).
    pub(crate) fn rebind_time_wait(&mut self, from: SockId, to: SockId, port: u16) {
        if let Some(o) = self
            .bhash
            .get_mut(&port)
            .and_then(|owners| owners.iter_mut().rev().find(|o| o.id == from))
        {
            o.id = to;
            o.time_wait = true;
            o.listening = false;
        }
    }

    /// Whether `listen()` may start on `port` (another listener on an
    /// overlapping address is a conflict even with `SO_REUSEADDR`).
    /// Mirrors the `inet_csk_get_port()` re-check of `inet_csk_listen_start()`.
    pub(crate) fn listen_conflict(&self, id: SockId, addr: Ipv4Addr, port: u16) -> bool {
        self.bhash.get(&port).is_some_and(|owners| {
            owners
                .iter()
                .any(|o| o.id != id && addrs_overlap(o.addr, addr) && o.listening)
        })
    }

    /// Adds a listener. Mirrors `inet_hash()` / `__inet_hash()`.
    pub(crate) fn hash_listener(&mut self, id: SockId, addr: Ipv4Addr, port: u16) {
        self.lhash.entry(port).or_default().push((addr, id));
        if let Some(o) = self
            .bhash
            .get_mut(&port)
            .and_then(|owners| owners.iter_mut().rev().find(|o| o.id == id))
        {
            o.listening = true;
        }
    }

    /// Removes a listener. Mirrors `inet_unhash()` for a listener.
    pub(crate) fn unhash_listener(&mut self, id: SockId, port: u16) {
        if let Some(list) = self.lhash.get_mut(&port) {
            list.retain(|&(_, l)| l != id);
            if list.is_empty() {
                self.lhash.remove(&port);
            }
        }
        if let Some(o) = self
            .bhash
            .get_mut(&port)
            .and_then(|owners| owners.iter_mut().rev().find(|o| o.id == id))
        {
            o.listening = false;
        }
    }

    /// Inserts a connection; `EADDRNOTAVAIL` if the 4-tuple is taken.
    /// Mirrors `inet_ehash_insert()`.
    pub(crate) fn ehash_insert(&mut self, t: FourTuple, e: EhashEntry) -> Result<(), Errno> {
        match self.ehash.entry(t) {
            Entry::Occupied(_) => Err(Errno::AddrNotAvail),
            Entry::Vacant(v) => {
                v.insert(EhashSlot::pack(e));
                self.ehash_last.set(None);
                Ok(())
            }
        }
    }

    /// Removes a connection if it is still `e`. Mirrors `inet_unhash()` /
    /// `inet_twsk_unhash()`.
    pub(crate) fn ehash_remove(&mut self, t: &FourTuple, e: EhashEntry) {
        if let Entry::Occupied(o) = self.ehash.entry(*t)
            && *o.get() == EhashSlot::pack(e)
        {
            o.remove();
            self.ehash_last.set(None);
        }
    }

    /// Puts `new` in the place of `old` under the same 4-tuple, with one
    /// lookup: what [`ehash_remove`](Self::ehash_remove) of `old` then
    /// [`ehash_insert`](Self::ehash_insert) of `new` would leave (an entry
    /// other than `old` stays; an empty place takes `new`). Mirrors
    /// `inet_twsk_hashdance_schedule()`, which adds the TIME-WAIT sock to
    /// the full socket's chain and unlinks the socket from it under one
    /// bucket lock.
    pub(crate) fn ehash_replace(&mut self, t: FourTuple, old: EhashEntry, new: EhashEntry) {
        match self.ehash.entry(t) {
            Entry::Occupied(mut o) => {
                if *o.get() == EhashSlot::pack(old) {
                    o.insert(EhashSlot::pack(new));
                    self.ehash_last.set(None);
                }
            }
            Entry::Vacant(v) => {
                v.insert(EhashSlot::pack(new));
                self.ehash_last.set(None);
            }
        }
    }

    /// Hashes the connection `id` of a socket whose port `bind()` chose:
    /// the 4-tuple must be free, or held by a TIME-WAIT socket for which
    /// `twsk_unique` returns `Some` (that socket is taken over: the caller
    /// deschedules it). Mirrors `__inet_check_established()` as
    /// `__inet_hash_connect()` calls it for a bound port (`twp == NULL`).
    ///
    /// Errors: `EADDRNOTAVAIL` when the 4-tuple is taken.
    pub(crate) fn check_established<T>(
        &mut self,
        t: FourTuple,
        id: SockId,
        twsk_unique: impl FnOnce(SockId) -> Option<T>,
    ) -> Result<Option<(SockId, T)>, Errno> {
        let tw = match self.ehash.get(&t).map(|e| e.unpack()) {
            None => None,
            Some(EhashEntry::TimeWait(tw)) => {
                Some((tw, twsk_unique(tw).ok_or(Errno::AddrNotAvail)?))
            }
            Some(EhashEntry::Sock(_)) => return Err(Errno::AddrNotAvail),
        };
        if let Some((tw_id, _)) = &tw {
            // The TIME-WAIT socket's share of the port goes with it.
            self.unbind(*tw_id, t.lport);
        }
        self.ehash_changed();
        self.ehash.insert(t, EhashSlot::pack(EhashEntry::Sock(id)));
        Ok(tw)
    }

    /// Picks a local port for `connect()` and hashes the connection.
    ///
    /// Mirrors `__inet_hash_connect()` of Linux 6.x: the search starts at
    /// `table_perturb[index] + (port_offset >> 32)` modulo the range, tries
    /// the ports of the range's low parity first in steps of two, then the
    /// other parity; a port already used by `connect()` may be shared when
    /// the 4-tuple is unique (`__inet_check_established()`: free, or held
    /// by a TIME-WAIT socket for which `twsk_unique` returns `Some`), a port
    /// bound by `bind()` may not. On success `table_perturb[index]` moves on
    /// by the distance searched plus a random multiple of two
    /// (`get_random_u32_below(8)`).
    ///
    /// Returns the port, and the TIME-WAIT socket taken over (its hash
    /// entry and port are the connection's now; the caller deschedules it)
    /// with what `twsk_unique` said. Errors: `EADDRNOTAVAIL` when every port
    /// is taken.
    #[allow(clippy::too_many_arguments)] // the kernel function's inputs, one by one
    pub(crate) fn hash_connect<T>(
        &mut self,
        id: SockId,
        laddr: Ipv4Addr,
        raddr: Ipv4Addr,
        rport: u16,
        range: (u16, u16),
        port_offset: u64,
        rand8: u32,
        mut twsk_unique: impl FnMut(SockId) -> Option<T>,
    ) -> Result<(u16, Option<(SockId, T)>), Errno> {
        if self.table_perturb.is_empty() {
            self.table_perturb = vec![0; INET_TABLE_PERTURB_SIZE];
        }
        let (low, high_incl) = (u32::from(range.0), u32::from(range.1));
        let high = high_incl + 1;
        let mut remaining = high - low;
        if remaining > 1 {
            remaining &= !1;
        }
        let step = 2;
        let index = (port_offset as usize) & (INET_TABLE_PERTURB_SIZE - 1);
        let mut offset = self.table_perturb[index].wrapping_add((port_offset >> 32) as u32);
        offset %= remaining;
        offset &= !1;
        loop {
            let mut port = low + offset;
            let mut i = 0;
            while i < remaining {
                if port >= high {
                    port -= remaining;
                }
                let p = port as u16;
                let t = FourTuple {
                    laddr,
                    lport: p,
                    raddr,
                    rport,
                };
                let usable = match self.bhash.get(&p) {
                    None => Some(None),
                    // Only connect()-ed owners (TIME-WAIT ones included):
                    // the port is shared if this 4-tuple is unique.
                    Some(owners) if owners.iter().all(|o| o.by_connect) => {
                        match self.ehash.get(&t).map(|e| e.unpack()) {
                            None => Some(None),
                            Some(EhashEntry::TimeWait(tw)) => {
                                twsk_unique(tw).map(|r| Some((tw, r)))
                            }
                            Some(EhashEntry::Sock(_)) => None,
                        }
                    }
                    Some(_) => None,
                };
                if let Some(tw) = usable {
                    if let Some((tw_id, _)) = &tw {
                        // inet_twsk_bind_unhash(): the port is the new
                        // connection's; the hash entry is replaced below.
                        self.unbind(*tw_id, p);
                    }
                    self.bhash.entry(p).or_default().push(BindOwner {
                        id,
                        addr: laddr,
                        reuse: false,
                        listening: false,
                        by_connect: true,
                        time_wait: false,
                    });
                    self.ehash_changed();
                    self.ehash.insert(t, EhashSlot::pack(EhashEntry::Sock(id)));
                    let i = i.max(rand8 % 8 * step);
                    self.table_perturb[index] = self.table_perturb[index].wrapping_add(i + step);
                    return Ok((p, tw));
                }
                i += step;
                port += step;
            }
            offset += 1;
            if offset & 1 == 0 || remaining <= 1 {
                return Err(Errno::AddrNotAvail);
            }
        }
    }

    /// Number of sockets in the established table (full and TIME-WAIT).
    pub fn ehash_len(&self) -> usize {
        self.ehash.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// The established hash is `inet_ehashfn()`: jhash of (laddr, raddr,
    /// lport << 16 | rport) under the secret, spread to 64 bits; another
    /// secret moves the tuple, and lookups find what was inserted.
    #[test]
    fn ehash_is_jhash_of_the_tuple_under_the_secret() {
        use core::hash::BuildHasher;
        let t = FourTuple {
            laddr: A,
            lport: 80,
            raddr: B,
            rport: 40000,
        };
        let h = |secret| InetEhashfn::new(secret).hash_one(t);
        let want = u64::from(netcore::jhash_3words(
            u32::from(A),
            u32::from(B),
            (80 << 16) | 0x9c40, // port 40000
            7,
        ))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        assert_eq!(h(7), want);
        assert_ne!(h(7), h(8));
        let mut info = InetHashinfo::with_ehash_secret(7);
        for p in 0..500u16 {
            let u = FourTuple { rport: p, ..t };
            info.ehash
                .insert(u, EhashSlot::pack(EhashEntry::Sock(SockId(u64::from(p)))));
        }
        for p in 0..500u16 {
            let u = FourTuple { rport: p, ..t };
            assert_eq!(
                info.lookup_established(&u),
                Some(EhashEntry::Sock(SockId(u64::from(p))))
            );
        }
        assert_eq!(info.lookup_established(&FourTuple { lport: 81, ..t }), None);
    }

    #[test]
    fn reuseaddr_rules() {
        let mut h = InetHashinfo::new();
        let r = (32768, 60999);
        assert_eq!(h.bind(SockId(1), A, 80, false, r, 0), Ok(80));
        assert_eq!(h.bind(SockId(2), A, 80, true, r, 0), Err(Errno::AddrInUse));
        assert_eq!(
            h.bind(SockId(2), Ipv4Addr::UNSPECIFIED, 80, false, r, 0),
            Err(Errno::AddrInUse)
        );
        // Another address does not overlap.
        assert_eq!(h.bind(SockId(3), B, 80, false, r, 0), Ok(80));
        // Both with SO_REUSEADDR, neither listening: allowed.
        assert_eq!(h.bind(SockId(4), A, 81, true, r, 0), Ok(81));
        assert_eq!(h.bind(SockId(5), A, 81, true, r, 0), Ok(81));
        // Once one listens, the other may not bind again.
        h.hash_listener(SockId(4), A, 81);
        assert_eq!(h.bind(SockId(6), A, 81, true, r, 0), Err(Errno::AddrInUse));
        assert_eq!(h.lookup_listener(A, 81), Some(SockId(4)));
        h.unhash_listener(SockId(4), 81);
        assert_eq!(h.lookup_listener(A, 81), None);
        // Port 0 picks an odd offset in the range.
        let p = h.bind(SockId(7), A, 0, false, r, 12).unwrap();
        assert_eq!(p, 32768 + 13);
    }

    #[test]
    fn ehash_replace_is_remove_then_insert() {
        let t = FourTuple {
            laddr: A,
            lport: 80,
            raddr: B,
            rport: 40000,
        };
        let (sock, tw, other) = (
            EhashEntry::Sock(SockId(1)),
            EhashEntry::TimeWait(SockId(2)),
            EhashEntry::Sock(SockId(3)),
        );
        for before in [None, Some(sock), Some(other)] {
            let mut a = InetHashinfo::with_ehash_secret(7);
            let mut b = InetHashinfo::with_ehash_secret(7);
            if let Some(e) = before {
                a.ehash_insert(t, e).unwrap();
                b.ehash_insert(t, e).unwrap();
            }
            assert_eq!(a.lookup_established(&t), before);
            a.ehash_remove(&t, sock);
            let _ = a.ehash_insert(t, tw);
            b.ehash_replace(t, sock, tw);
            assert_eq!(a.lookup_established(&t), b.lookup_established(&t));
            assert_eq!(a.ehash.len(), b.ehash.len());
        }
    }

    #[test]
    fn ehash_entries_pack_and_unpack() {
        for id in [0, 1, 0xffff_ffff, 0x1_0000_0000, (1 << 63) - 1] {
            for e in [
                EhashEntry::Sock(SockId(id)),
                EhashEntry::TimeWait(SockId(id)),
            ] {
                assert_eq!(EhashSlot::pack(e).unpack(), e);
            }
        }
        assert_eq!(core::mem::size_of::<(FourTuple, EhashSlot)>(), 20);
        let mut h = InetHashinfo::new();
        let t = FourTuple {
            laddr: A,
            lport: 40000,
            raddr: B,
            rport: 80,
        };
        h.ehash_insert(t, EhashEntry::TimeWait(SockId(7))).unwrap();
        assert_eq!(
            h.lookup_established(&t),
            Some(EhashEntry::TimeWait(SockId(7)))
        );
        // Removing another entry for the same tuple leaves it.
        h.ehash_remove(&t, EhashEntry::Sock(SockId(7)));
        assert_eq!(h.ehash_len(), 1);
        h.ehash_remove(&t, EhashEntry::TimeWait(SockId(7)));
        assert_eq!(h.lookup_established(&t), None);
        // The entry found last is not kept past a change of the table.
        h.ehash_insert(t, EhashEntry::Sock(SockId(8))).unwrap();
        assert_eq!(h.lookup_established(&t), Some(EhashEntry::Sock(SockId(8))));
        let u = FourTuple { rport: 81, ..t };
        assert_eq!(h.lookup_established(&u), None);
        assert_eq!(h.lookup_established(&t), Some(EhashEntry::Sock(SockId(8))));
        h.ehash_remove(&t, EhashEntry::Sock(SockId(8)));
        h.ehash_insert(t, EhashEntry::TimeWait(SockId(9))).unwrap();
        assert_eq!(
            h.lookup_established(&t),
            Some(EhashEntry::TimeWait(SockId(9)))
        );
    }

    #[test]
    fn listener_exact_beats_wildcard() {
        let mut h = InetHashinfo::new();
        h.hash_listener(SockId(1), Ipv4Addr::UNSPECIFIED, 80);
        h.hash_listener(SockId(2), B, 80);
        assert_eq!(h.lookup_listener(B, 80), Some(SockId(2)));
        assert_eq!(h.lookup_listener(A, 80), Some(SockId(1)));
    }

    /// `hash_connect()` to B:`rport` from A, no TIME-WAIT socket taken over.
    fn hc(h: &mut InetHashinfo, id: SockId, rport: u16, r: (u16, u16)) -> Result<u16, Errno> {
        h.hash_connect(id, A, B, rport, r, 0, 0, |_| None::<()>)
            .map(|(p, _)| p)
    }

    /// A TIME-WAIT 4-tuple that `twsk_unique` lets go is taken over with
    /// its port, by the port search and by a bound socket alike; one it
    /// keeps blocks the port for that peer.
    #[test]
    fn connect_takes_over_a_time_wait_tuple_twsk_unique_allows() {
        let r = (1000, 1000);
        let t = FourTuple {
            laddr: A,
            lport: 1000,
            raddr: B,
            rport: 80,
        };
        let time_wait = |h: &mut InetHashinfo, from: u64, tw: u64| {
            h.rebind_time_wait(SockId(from), SockId(tw), 1000);
            h.ehash_replace(
                t,
                EhashEntry::Sock(SockId(from)),
                EhashEntry::TimeWait(SockId(tw)),
            );
        };
        let mut h = InetHashinfo::new();
        assert_eq!(hc(&mut h, SockId(1), 80, r), Ok(1000));
        time_wait(&mut h, 1, 50);
        // Kept: the one port of the range is taken for this peer.
        let mut asked = Vec::new();
        let got = h.hash_connect(SockId(2), A, B, 80, r, 0, 0, |tw| {
            asked.push(tw);
            None::<u32>
        });
        assert_eq!(got, Err(Errno::AddrNotAvail));
        assert_eq!(asked, [SockId(50)]);
        // Let go: the new connection holds the tuple and the port alone.
        let got = h.hash_connect(SockId(3), A, B, 80, r, 0, 0, |_| Some(7u32));
        assert_eq!(got, Ok((1000, Some((SockId(50), 7)))));
        assert_eq!(h.lookup_established(&t), Some(EhashEntry::Sock(SockId(3))));
        let owners: Vec<_> = h.bhash[&1000].iter().map(|o| o.id).collect();
        assert_eq!(owners, [SockId(3)]);
        // A bound socket: the same rule through check_established().
        time_wait(&mut h, 3, 60);
        assert_eq!(
            h.check_established(t, SockId(4), |_| None::<()>),
            Err(Errno::AddrNotAvail)
        );
        assert_eq!(
            h.check_established(t, SockId(4), Some),
            Ok(Some((SockId(60), SockId(60))))
        );
        assert_eq!(h.lookup_established(&t), Some(EhashEntry::Sock(SockId(4))));
        // (Its port had no other owner: 4 was not bound by bind() here.)
        assert!(!h.bhash.contains_key(&1000));
        // A live connection on the tuple is never taken over.
        assert_eq!(
            h.check_established(t, SockId(5), |_| Some(())),
            Err(Errno::AddrNotAvail)
        );
    }

    #[test]
    fn hash_connect_parity_and_sharing() {
        let mut h = InetHashinfo::new();
        let r = (32768, 60999);
        // Offset 0 from the key: first port is `low`, even parity.
        let p1 = hc(&mut h, SockId(1), 80, r).unwrap();
        assert_eq!(p1, 32768);
        // The perturbation moved on by one step: next search starts at +2.
        let p2 = hc(&mut h, SockId(2), 80, r).unwrap();
        assert_eq!(p2, 32770);
        // A different destination may share a port used by connect().
        h.table_perturb[0] = 0;
        let p3 = hc(&mut h, SockId(3), 81, r).unwrap();
        assert_eq!(p3, 32768);
        // A port bound by bind() is skipped.
        h.table_perturb[0] = 0;
        h.bind(SockId(9), A, 32772, false, r, 0).unwrap();
        let p4 = hc(&mut h, SockId(4), 80, r).unwrap();
        assert_eq!(p4, 32774);
        // A TIME-WAIT 4-tuple blocks its own port for that peer only.
        h.table_perturb[0] = 0;
        h.rebind_time_wait(SockId(1), SockId(50), 32768);
        let t = FourTuple {
            laddr: A,
            lport: 32768,
            raddr: B,
            rport: 80,
        };
        h.ehash
            .insert(t, EhashSlot::pack(EhashEntry::TimeWait(SockId(50))));
        let p5 = hc(&mut h, SockId(5), 80, r).unwrap();
        assert_ne!(p5, 32768);
        h.table_perturb[0] = 0;
        assert_eq!(hc(&mut h, SockId(6), 82, r), Ok(32768));
        // A tiny range runs out, then tries the other parity.
        let mut h = InetHashinfo::new();
        let r = (1000, 1001);
        assert_eq!(hc(&mut h, SockId(1), 80, r), Ok(1000));
        assert_eq!(hc(&mut h, SockId(2), 80, r), Ok(1001));
        assert_eq!(hc(&mut h, SockId(3), 80, r), Err(Errno::AddrNotAvail));
    }
}
