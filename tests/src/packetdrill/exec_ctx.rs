//! The executor's host: one TCP stack behind a [`TcpContext`] whose
//! `ip_queue_xmit` captures every segment instead of sending it.
//!
//! Mirrors what packetdrill's tun device is to a kernel under test: the
//! stack routes `remote_ip` out of one interface, and whatever it sends is
//! sniffed. Time is virtual and only moves when the executor moves it;
//! timers are kept here and fired by the executor in time order.

use core::net::Ipv4Addr;
use std::collections::HashMap;

use netcore::{Errno, Instant, NetMibs, PagePool, SkBuff, Sysctl, TimerContext};
use tcp::{SkEvent, SockId, SplitMix64, TcpContext, TcpRoute, TcpTimer};
use wire::{IpProtocol, Ipv4Repr};

/// One captured outbound datagram: IPv4 bytes and the virtual time it left.
#[derive(Clone, Debug)]
pub(super) struct Captured {
    /// Virtual time in microseconds since the script started.
    pub(super) usecs: i64,
    /// The IPv4 datagram.
    pub(super) bytes: Vec<u8>,
}

/// The context of the host under test.
pub(super) struct PdCtx {
    now: Instant,
    mibs: NetMibs,
    sysctl: Sysctl,
    pool: PagePool,
    rng: SplitMix64,
    timers: HashMap<TcpTimer, (Instant, u64)>,
    timer_seq: u64,
    /// The host's address (`--local_ip`).
    pub(super) local: Ipv4Addr,
    /// The only reachable peer (`--remote_ip`).
    pub(super) remote: Ipv4Addr,
    /// The route MTU (`--mtu`, or an init `ip link … mtu`).
    pub(super) mtu: u32,
    /// Segments sent, in order.
    pub(super) out: Vec<Captured>,
    /// Sockets the stack woke (`sk_write_space`, `sk_data_ready`, …)
    /// since the runner last looked: a blocked call tries again only then.
    pub(super) woken: std::collections::BTreeSet<SockId>,
}

impl PdCtx {
    pub(super) fn new(local: Ipv4Addr, remote: Ipv4Addr, mtu: u32, pool: PagePool) -> PdCtx {
        PdCtx {
            now: Instant::ZERO,
            mibs: NetMibs::new(1),
            sysctl: Sysctl::new(),
            pool,
            rng: SplitMix64::new(0x7061_636b_6574),
            timers: HashMap::new(),
            timer_seq: 0,
            local,
            remote,
            mtu,
            out: Vec::new(),
            woken: std::collections::BTreeSet::new(),
        }
    }

    /// The virtual clock in microseconds.
    pub(super) fn now_usecs(&self) -> i64 {
        self.now.as_micros() as i64
    }

    /// Moves the clock forward (never back).
    pub(super) fn set_now_usecs(&mut self, usecs: i64) {
        let t = Instant::from_micros(usecs.max(0) as u64);
        self.now = self.now.max(t);
    }

    /// The earliest armed timer and its time in microseconds.
    pub(super) fn next_timer(&self) -> Option<(i64, TcpTimer)> {
        self.timers
            .iter()
            .map(|(&id, &(at, seq))| (at, seq, id))
            .min_by_key(|&(at, seq, _)| (at, seq))
            .map(|(at, _, id)| (at.as_micros() as i64, id))
    }
}

impl TimerContext<TcpTimer> for PdCtx {
    fn arm_timer(&mut self, id: TcpTimer, at: Instant) -> Option<Instant> {
        self.timer_seq += 1;
        self.timers.insert(id, (at, self.timer_seq)).map(|p| p.0)
    }

    fn cancel_timer(&mut self, id: TcpTimer) -> Option<Instant> {
        self.timers.remove(&id).map(|p| p.0)
    }

    fn timer_pending(&self, id: TcpTimer) -> Option<Instant> {
        self.timers.get(&id).map(|p| p.0)
    }
}

impl TcpContext for PdCtx {
    fn now(&self) -> Instant {
        self.now
    }

    fn mibs(&self) -> &NetMibs {
        &self.mibs
    }

    fn sysctl(&self) -> &Sysctl {
        &self.sysctl
    }

    fn page_pool(&self) -> &PagePool {
        &self.pool
    }

    fn prandom_u32(&mut self) -> u32 {
        self.rng.next_u64() as u32
    }

    fn ip_route_output(
        &mut self,
        daddr: Ipv4Addr,
        saddr: Option<Ipv4Addr>,
    ) -> Result<TcpRoute, Errno> {
        if daddr != self.remote {
            return Err(Errno::NetUnreach);
        }
        Ok(TcpRoute {
            saddr: saddr.unwrap_or(self.local),
            mtu: self.mtu,
        })
    }

    fn ip_queue_xmit(
        &mut self,
        skb: SkBuff,
        saddr: Ipv4Addr,
        daddr: Ipv4Addr,
    ) -> Result<(), Errno> {
        let ip = Ipv4Repr {
            src_addr: saddr,
            dst_addr: daddr,
            protocol: IpProtocol::Tcp,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: heapless::Vec::new(),
            payload_len: skb.len(),
        };
        let mut bytes = vec![0u8; ip.header_len() + skb.len()];
        ip.emit(&mut bytes).map_err(|_| Errno::Inval)?;
        bytes[ip.header_len()..].copy_from_slice(skb.data());
        let usecs = self.now_usecs();
        self.out.push(Captured { usecs, bytes });
        Ok(())
    }

    fn sk_wake(&mut self, sk: SockId, _event: SkEvent) {
        self.woken.insert(sk);
    }
}
