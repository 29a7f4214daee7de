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
    /// The path MTU toward the peer learned from "fragmentation needed"
    /// (the host's route exception), if any.
    pmtu: Option<u32>,
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
            pmtu: None,
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
            mtu: self.pmtu.map_or(self.mtu, |p| p.min(self.mtu)),
        })
    }

    /// The host's route exception (`__ip_rt_update_pmtu()`): lower only,
    /// never below `net.ipv4.route.min_pmtu`; a script runs far shorter
    /// than its 600 s life.
    fn ip_rt_update_pmtu(&mut self, daddr: Ipv4Addr, mtu: u32) -> u32 {
        let old = self.pmtu.map_or(self.mtu, |p| p.min(self.mtu));
        if daddr == self.remote && mtu <= old {
            let min = self.sysctl.get_int(Sysctl::ROUTE_MIN_PMTU).max(68) as u32;
            self.pmtu = Some(if mtu < min { old.min(min) } else { mtu });
        }
        self.pmtu.map_or(self.mtu, |p| p.min(self.mtu))
    }

    /// Captures what the tun device would see: a GSO skb is cut into its
    /// `gso_size` segments (sequence numbers, FIN/PSH on the last, CWR on
    /// the first, checksums redone), as `skb_gso_segment()` does for a
    /// device without TSO; the payload is read across the skb's fragments.
    fn ip_queue_xmit(
        &mut self,
        skb: SkBuff,
        saddr: Ipv4Addr,
        daddr: Ipv4Addr,
        tos: u8,
    ) -> Result<(), Errno> {
        let mut tcp = vec![0u8; skb.len()];
        skb.copy_bits(0, &mut tcp).map_err(|_| Errno::Inval)?;
        let thlen = usize::from(tcp.get(12).ok_or(Errno::Inval)? >> 4) * 4;
        let payload = tcp.len().checked_sub(thlen).ok_or(Errno::Inval)?;
        let mss = if skb.is_gso() {
            usize::from(skb.gso_size).max(1)
        } else {
            payload.max(1)
        };
        let nsegs = payload.div_ceil(mss).max(1);
        let seq0 = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        let usecs = self.now_usecs();
        for i in 0..nsegs {
            let off = i * mss;
            let len = mss.min(payload - off);
            let mut seg = Vec::with_capacity(thlen + len);
            seg.extend_from_slice(&tcp[..thlen]);
            seg.extend_from_slice(&tcp[thlen + off..thlen + off + len]);
            if skb.is_gso() {
                seg[4..8].copy_from_slice(&seq0.wrapping_add(off as u32).to_be_bytes());
                if i + 1 < nsegs {
                    seg[13] &= !((wire::TcpFlags::FIN | wire::TcpFlags::PSH).bits() as u8);
                }
                if i > 0 {
                    seg[13] &= !(wire::TcpFlags::CWR.bits() as u8);
                }
                seg[16..18].fill(0);
                let sum = wire::csum_partial(&seg, 0);
                let check = wire::csum_tcpudp_magic(saddr, daddr, seg.len() as u16, 6, sum);
                seg[16..18].copy_from_slice(&check.to_be_bytes());
            }
            let ip = Ipv4Repr {
                src_addr: saddr,
                dst_addr: daddr,
                protocol: IpProtocol::Tcp,
                ttl: 64,
                tos,
                ident: 0,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
                options: heapless::Vec::new(),
                payload_len: seg.len(),
            };
            let mut bytes = vec![0u8; ip.header_len() + seg.len()];
            ip.emit(&mut bytes).map_err(|_| Errno::Inval)?;
            bytes[ip.header_len()..].copy_from_slice(&seg);
            self.out.push(Captured { usecs, bytes });
        }
        Ok(())
    }

    fn sk_wake(&mut self, sk: SockId, _event: SkEvent) {
        self.woken.insert(sk);
    }
}
