//! Route exceptions: what ICMP taught about the path toward one
//! destination: a smaller path MTU ("fragmentation needed", kept for
//! `net.ipv4.route.mtu_expires`) or a better first hop (a redirect, kept
//! for `net.ipv4.route.gc_timeout`).
//!
//! Mirrors `struct fib_nh_exception` (`fnhe_pmtu`, `fnhe_gw`,
//! `fnhe_expires`, `fnhe_mtu_locked`) with `__ip_rt_update_pmtu()`,
//! `__ip_do_redirect()`, `update_or_create_fnhe()`, `rt_bind_exception()`
//! and the exception part of `ipv4_mtu()` in `net/ipv4/route.c`.
//!
//! ```text
//!  ICMP frag needed (mtu) ─▶ tcp_v4_err / udp_err ─▶ ip_rt_update_pmtu(daddr, mtu)
//!                                  lower only; below min_pmtu: min_pmtu, "locked"
//!                                  expires = now + mtu_expires; rt_cache_flush()
//!  ip_route_output_key(daddr) ─▶ rt.mtu = min(device MTU, the exception's pmtu)
//!                                  while it has not expired
//! ```
//!
//! # Deviations from Linux
//!
//! - Linux hangs the exceptions off each next hop (`nhc_exceptions`, 2048
//!   buckets of at most 5); here one table per host, keyed by
//!   destination, holds at most [`FNHE_MAX`] and, when full, replaces
//!   the exception closest to expiring (`fnhe_oldest()`).
//! - A socket's cached route keeps the MTU it was looked up with until the
//!   routing generation changes: adding or lowering an exception bumps
//!   it, and so does the first use of a cached route after an exception
//!   expired ([`Ipv4Net::rt_genid_at`](crate::Ipv4Net::rt_genid_at));
//!   Linux's `ipv4_mtu()` reads the expiry on every use instead.
//! - A locked PMTU (below `min_pmtu`) is kept and applied, but the DF bit
//!   is still set by the socket's PMTU discovery mode (Linux clears it on
//!   a locked MTU, `ip_mtu_locked()`).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use netcore::{Duration, Instant};

/// The most exceptions kept (Linux: `FNHE_HASH_SIZE` × `FNHE_RECLAIM_DEPTH`).
pub const FNHE_MAX: usize = 2048 * 5;

/// What is known about the path toward one destination. Mirrors `struct
/// fib_nh_exception`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FibNhException {
    /// The path MTU (`fnhe_pmtu`), 0 for none.
    pub pmtu: u32,
    /// The first hop a redirect named (`fnhe_gw`), for routes leaving
    /// through device `oif`.
    pub gw: Option<Ipv4Addr>,
    /// The device of the route the redirect corrected.
    pub oif: u32,
    /// When it stops applying (`fnhe_expires`).
    pub expires: Instant,
    /// It was clamped up to `min_pmtu` (`fnhe_mtu_locked`).
    pub locked: bool,
}

/// The exceptions of one host, by destination.
#[derive(Debug, Default)]
pub struct FnheTable {
    map: HashMap<Ipv4Addr, FibNhException>,
}

impl FnheTable {
    /// The path MTU toward `daddr` at `now`, if an exception applies.
    /// Mirrors the `rt_pmtu` test of `ipv4_mtu()`.
    pub fn pmtu(&self, daddr: Ipv4Addr, now: Instant) -> Option<u32> {
        self.lookup(daddr, now).map(|e| e.pmtu).filter(|&p| p != 0)
    }

    /// The exception toward `daddr` that applies at `now`.
    pub fn lookup(&self, daddr: Ipv4Addr, now: Instant) -> Option<&FibNhException> {
        self.map.get(&daddr).filter(|e| now < e.expires)
    }

    /// Records that a redirect named `gw` as the first hop toward `daddr`
    /// for routes through device `oif`, for `expires` from `now` (an
    /// exception's one lifetime covers its path MTU too). Returns whether
    /// the first hop changed. Mirrors `update_or_create_fnhe()` with a
    /// gateway.
    pub fn update_gw(
        &mut self,
        daddr: Ipv4Addr,
        oif: u32,
        gw: Ipv4Addr,
        expires: Duration,
        now: Instant,
    ) -> bool {
        self.make_room(daddr);
        let old = self.lookup(daddr, now).copied();
        let e = FibNhException {
            pmtu: old.map_or(0, |e| e.pmtu),
            gw: Some(gw),
            oif,
            expires: now + expires,
            locked: old.is_some_and(|e| e.locked),
        };
        self.map.insert(daddr, e);
        old.is_none_or(|o| o.gw != Some(gw) || o.oif != oif)
    }

    /// Makes room for one more destination (`fnhe_oldest()`: the
    /// exception closest to expiring goes).
    fn make_room(&mut self, daddr: Ipv4Addr) {
        if self.map.len() >= FNHE_MAX && !self.map.contains_key(&daddr) {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                self.map.remove(&oldest);
            }
        }
    }

    /// The exception toward `daddr`, expired or not.
    pub fn get(&self, daddr: Ipv4Addr) -> Option<&FibNhException> {
        self.map.get(&daddr)
    }

    /// Forgets the exceptions expired at `now`; returns how many went.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.map.len();
        self.map.retain(|_, e| now < e.expires);
        before - self.map.len()
    }

    /// When the first exception kept expires.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.map.values().map(|e| e.expires).min()
    }

    /// How many exceptions are kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Learns that the path toward `daddr`, whose MTU is `old_mtu` now
    /// (the device's, or an exception's), carries at most `mtu` bytes.
    /// Returns whether an exception was created or lowered (cached routes
    /// must then be looked up again).
    ///
    /// Mirrors `__ip_rt_update_pmtu()` with `update_or_create_fnhe()`: a
    /// larger MTU than the current one is ignored; one below `min_pmtu`
    /// becomes `min_pmtu` (never above the current MTU) and is locked;
    /// the same MTU again only renews an exception in the second half of
    /// its life; the exception lasts `expires` from `now`.
    pub fn update_pmtu(
        &mut self,
        daddr: Ipv4Addr,
        old_mtu: u32,
        mtu: u32,
        min_pmtu: u32,
        expires: Duration,
        now: Instant,
    ) -> bool {
        if old_mtu < mtu {
            return false;
        }
        let (mtu, locked) = if mtu < min_pmtu {
            (old_mtu.min(min_pmtu), true)
        } else {
            (mtu, false)
        };
        if let Some(e) = self.map.get(&daddr)
            && now < e.expires
            && e.pmtu == mtu
            && !locked
            && now + expires / 2 < e.expires
        {
            return false;
        }
        self.make_room(daddr);
        let old = self.lookup(daddr, now).copied();
        let lowered = self.pmtu(daddr, now).is_none_or(|p| mtu < p);
        self.map.insert(
            daddr,
            FibNhException {
                pmtu: mtu,
                gw: old.and_then(|e| e.gw),
                oif: old.map_or(0, |e| e.oif),
                expires: now + expires,
                locked,
            },
        );
        lowered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 9);
    const TEN_MIN: Duration = Duration::from_secs(600);

    #[test]
    fn lowers_only_and_expires() {
        let mut t = FnheTable::default();
        let now = Instant::from_secs(5);
        assert!(
            !t.update_pmtu(D, 1500, 9000, 552, TEN_MIN, now),
            "larger: ignored"
        );
        assert!(t.is_empty());
        assert!(t.update_pmtu(D, 1500, 1200, 552, TEN_MIN, now));
        assert_eq!(t.pmtu(D, now), Some(1200));
        assert_eq!(t.pmtu(D, now + Duration::from_secs(599)), Some(1200));
        assert_eq!(t.pmtu(D, now + TEN_MIN), None, "expired");
        // Lower again: applies.
        assert!(t.update_pmtu(D, 1200, 1000, 552, TEN_MIN, now));
        assert_eq!(t.pmtu(D, now), Some(1000));
        // The same MTU early in the exception's life: nothing to do.
        assert!(!t.update_pmtu(D, 1000, 1000, 552, TEN_MIN, now + Duration::from_secs(10)));
        // Late in it: renewed, not lowered.
        let late = now + Duration::from_secs(400);
        assert!(!t.update_pmtu(D, 1000, 1000, 552, TEN_MIN, late));
        assert_eq!(t.get(D).map(|e| e.expires), Some(late + TEN_MIN));
    }

    #[test]
    fn below_min_pmtu_is_clamped_and_locked() {
        let mut t = FnheTable::default();
        let now = Instant::ZERO;
        assert!(t.update_pmtu(D, 1500, 300, 552, TEN_MIN, now));
        let e = *t.get(D).unwrap();
        assert_eq!((e.pmtu, e.locked), (552, true));
        // A path already below min_pmtu is not raised to it.
        let d2 = Ipv4Addr::new(198, 18, 1, 10);
        assert!(t.update_pmtu(d2, 500, 300, 552, TEN_MIN, now));
        assert_eq!(t.pmtu(d2, now), Some(500));
    }

    #[test]
    fn a_full_table_replaces_the_exception_closest_to_expiring() {
        let mut t = FnheTable::default();
        for i in 0..FNHE_MAX as u32 {
            let a = Ipv4Addr::from(0xc612_0000 + i);
            t.update_pmtu(
                a,
                1500,
                1400,
                552,
                TEN_MIN,
                Instant::from_secs(u64::from(i) + 1),
            );
        }
        assert_eq!(t.len(), FNHE_MAX);
        let new = Ipv4Addr::new(198, 19, 0, 9);
        t.update_pmtu(new, 1500, 1400, 552, TEN_MIN, Instant::from_secs(20_000));
        assert_eq!(t.len(), FNHE_MAX);
        assert!(
            t.get(Ipv4Addr::from(0xc612_0000)).is_none(),
            "the oldest went"
        );
        assert!(t.get(new).is_some());
    }
}

/// Redirects sent to one host, for their rate limit. Mirrors the
/// `rate_last`/`n_redirects` of the `inet_peer` that
/// `ip_rt_send_redirect()` keeps per source.
#[derive(Clone, Copy, Debug)]
struct RedirectPeer {
    rate_last: Instant,
    n_redirects: u32,
}

/// How many redirects go to one host before the router gives up on it
/// (`ip_rt_redirect_number`).
pub const IP_RT_REDIRECT_NUMBER: u32 = 9;
/// The first gap between two redirects to one host, doubled after each
/// (`ip_rt_redirect_load`, `HZ / 50`).
pub const IP_RT_REDIRECT_LOAD: Duration = Duration::from_millis(20);
/// A quiet time after which a host's count starts again
/// (`ip_rt_redirect_silence`, `ip_rt_redirect_load << (number + 1)`).
pub const IP_RT_REDIRECT_SILENCE: Duration =
    Duration::from_millis(20 << (IP_RT_REDIRECT_NUMBER + 1));
/// The most hosts remembered (Linux's `inet_peer` tree is bounded by its
/// own garbage collection).
const REDIRECT_PEERS_MAX: usize = 4096;

/// The per-source state of the redirects a router sends.
#[derive(Debug, Default)]
pub struct RedirectPeers {
    peers: std::collections::HashMap<Ipv4Addr, RedirectPeer>,
}

impl RedirectPeers {
    /// Whether a redirect may go to `saddr` at `now`, counting it if so:
    /// the first at once, then each more than `20 ms << n` after the
    /// last, n being the number sent (40, 80, 160 ms ...); after nine the
    /// host is ignored until it has sent nothing that needed a redirect
    /// for 20.48 s. Mirrors the limiter of
    /// `ip_rt_send_redirect()`.
    pub fn allow(&mut self, saddr: Ipv4Addr, now: Instant) -> bool {
        if self.peers.len() >= REDIRECT_PEERS_MAX && !self.peers.contains_key(&saddr) {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(_, p)| p.rate_last)
                .map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                self.peers.remove(&oldest);
            }
        }
        let p = self.peers.entry(saddr).or_insert(RedirectPeer {
            rate_last: now,
            n_redirects: 0,
        });
        if now > p.rate_last + IP_RT_REDIRECT_SILENCE {
            p.n_redirects = 0;
        }
        if p.n_redirects >= IP_RT_REDIRECT_NUMBER {
            p.rate_last = now;
            return false;
        }
        let gap = IP_RT_REDIRECT_LOAD * (1u32 << p.n_redirects);
        if p.n_redirects == 0 || now > p.rate_last + gap {
            p.rate_last = now;
            p.n_redirects += 1;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod redirect_tests {
    use super::*;

    #[test]
    fn redirects_back_off_then_stop_until_silence() {
        let mut r = RedirectPeers::default();
        let h = Ipv4Addr::new(198, 18, 0, 1);
        let ms = |n: u64| Instant::from_millis(n);
        assert!(r.allow(h, ms(1000)), "the first at once");
        assert!(!r.allow(h, ms(1040)), "not more than 40 ms later");
        assert!(r.allow(h, ms(1041)));
        assert!(!r.allow(h, ms(1100)), "inside 80 ms");
        assert!(r.allow(h, ms(1122)));
        let t0 = 1122;
        // Every packet asks; only the allowed ones are counted.
        let mut t = t0;
        let mut sent = 3;
        while t < 30_000 {
            t += 5;
            sent += u32::from(r.allow(h, ms(t)));
        }
        assert_eq!(sent, IP_RT_REDIRECT_NUMBER, "nine, then silence");
        // Quiet for 20.48 s: counted afresh.
        assert!(r.allow(h, ms(t + 20_481)));
    }
}
