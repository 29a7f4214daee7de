//! Test fixtures: a fake [`TcpContext`] per host and a [`Net`] that carries
//! segments between hosts in virtual time, with seeded loss, reordering
//! and duplication.
//!
//! No kernel twin (STYLE.md §8: netstack3's fake network stepped to idle).
//! Host `i` has the address `198.18.0.(i+1)`; the wire delivers by
//! destination address after a fixed delay, so two hosts form a
//! back-to-back link. Every segment put on the wire is recorded in
//! [`Net::log`] with its parsed header, so tests check what was sent.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use netcore::{
    Duration, Errno, Instant, NetMibs, PagePool, PagePoolParams, SkBuff, Sysctl, TimerContext,
};
use wire::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpPacket, TcpRepr};

use crate::context::{SkEvent, TcpContext, TcpRoute};
use crate::tcp::{MsgFlags, TcpSocket, TcpStack};
use crate::tcp_sock::SockId;
use crate::tcp_timer::TcpTimer;

/// The fake context of one host.
pub struct FakeTcpCtx {
    /// The host's address.
    pub addr: Ipv4Addr,
    /// The route MTU every lookup returns.
    pub mtu: u32,
    now: Instant,
    mibs: NetMibs,
    sysctl: Sysctl,
    pool: PagePool,
    rng: crate::SplitMix64,
    timers: HashMap<TcpTimer, (Instant, u64)>,
    timer_seq: u64,
    /// Segments handed to `ip_queue_xmit`, with their IP header pushed
    /// (a GSO packet cut into its segments, as a device without TSO has
    /// `skb_gso_segment()` do).
    pub out: Vec<SkBuff>,
    /// How many skbs TCP handed to `ip_queue_xmit` (a GSO packet counts
    /// once).
    pub ip_queue_xmit_calls: u64,
    /// The last GSO skb TCP handed to `ip_queue_xmit`, as it was (sharing
    /// its fragments with the write queue).
    pub last_gso: Option<SkBuff>,
    /// Wake-ups, in order.
    pub events: Vec<(SockId, SkEvent)>,
    /// The `tcp_probe` trace, recorded when `Some`.
    pub probes: Option<Vec<crate::TcpProbe>>,
    /// The host's TSQ list (TCP Small Queues on), set by [`Net`].
    pub tsq: Option<std::sync::Arc<crate::TsqList>>,
    /// Whether [`TcpContext::disarm_timer`] leaves the timer armed, as
    /// Linux leaves a cleared `timer_list` queued (default: it cancels).
    pub lazy_timers: bool,
    /// Timers disarmed and left armed, not armed again since.
    disarmed: std::collections::HashSet<TcpTimer>,
    /// How many timers fired after TCP had disarmed them.
    pub lazy_fired: u64,
}

impl FakeTcpCtx {
    /// A context for a host at `addr`, seeded with `seed`.
    pub fn new(addr: Ipv4Addr, seed: u64, pool: PagePool) -> FakeTcpCtx {
        FakeTcpCtx {
            addr,
            mtu: 1500,
            now: Instant::ZERO,
            mibs: NetMibs::new(1),
            sysctl: Sysctl::new(),
            pool,
            rng: crate::SplitMix64::new(seed),
            timers: HashMap::new(),
            timer_seq: 0,
            out: Vec::new(),
            ip_queue_xmit_calls: 0,
            last_gso: None,
            events: Vec::new(),
            probes: None,
            tsq: None,
            lazy_timers: false,
            disarmed: std::collections::HashSet::new(),
            lazy_fired: 0,
        }
    }

    /// Sets the clock (only forward).
    pub fn set_now(&mut self, t: Instant) {
        self.now = self.now.max(t);
    }

    /// The earliest armed timer.
    pub fn next_timer(&self) -> Option<(Instant, u64, TcpTimer)> {
        self.timers
            .iter()
            .map(|(&id, &(at, seq))| (at, seq, id))
            .min_by_key(|&(at, seq, _)| (at, seq))
    }

    /// All armed timers.
    pub fn timers(&self) -> Vec<(TcpTimer, Instant)> {
        let mut v: Vec<_> = self.timers.iter().map(|(&id, &(at, _))| (id, at)).collect();
        v.sort_by_key(|&(_, at)| at);
        v
    }

    /// Whether `ev` was reported for `sk` (and forgets the events).
    pub fn take_event(&mut self, sk: SockId, ev: SkEvent) -> bool {
        let found = self.events.contains(&(sk, ev));
        self.events.clear();
        found
    }
}

impl FakeTcpCtx {
    /// Pushes the IPv4 header of one segment and queues it on `out`.
    fn ip_queue_xmit_one(
        &mut self,
        mut skb: SkBuff,
        saddr: Ipv4Addr,
        daddr: Ipv4Addr,
        tos: u8,
    ) -> Result<(), Errno> {
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
            payload_len: skb.len(),
        };
        let hlen = ip.header_len();
        skb.push(hlen).map_err(|_| Errno::NoBufs)?;
        skb.reset_network_header();
        let buf = skb.data_mut().map_err(|_| Errno::NoBufs)?;
        ip.emit(buf).map_err(|_| Errno::Inval)?;
        self.out.push(skb);
        Ok(())
    }
}

/// The owner of the segments of a GSO skb in [`FakeTcpCtx`]: keeps the
/// GSO skb, whose owner is the socket, until every segment is freed.
struct GsoHold(parking_lot::Mutex<Option<SkBuff>>);

impl netcore::SkbDestructor for GsoHold {
    fn destruct(&self, _skb: &SkBuff) {}

    fn set_pacing_status_fq(&self) {
        if let Some(skb) = self.0.lock().as_ref() {
            skb.set_sk_pacing_status_fq();
        }
    }
}

/// Cuts a TCP GSO skb (TCP header, no IP header yet) into linear
/// segments of `gso_size` payload bytes with full checksums: the work of
/// `tcp_gso_segment()` for a device without TSO or checksum offload.
fn tcp_gso_segment_for_test(
    skb: &SkBuff,
    pool: &PagePool,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
) -> Result<Vec<SkBuff>, Errno> {
    let head = skb.data();
    let thlen = usize::from(head.get(12).ok_or(Errno::Inval)? >> 4) * 4;
    let hdr = head.get(..thlen).ok_or(Errno::Inval)?.to_vec();
    let payload = skb.len() - thlen;
    let mss = match skb.gso_size {
        0 => payload.max(1),
        n => usize::from(n),
    };
    let nsegs = payload.div_ceil(mss).max(1);
    let seq0 = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    let mut out = Vec::with_capacity(nsegs);
    for i in 0..nsegs {
        let off = i * mss;
        let len = mss.min(payload - off);
        let room = crate::tcp_sock::MAX_TCP_HEADER;
        let mut seg = SkBuff::alloc(pool, room + thlen + len).map_err(|_| Errno::NoBufs)?;
        seg.reserve(room).map_err(|_| Errno::NoBufs)?;
        let d = seg.put(thlen + len).map_err(|_| Errno::NoBufs)?;
        d[..thlen].copy_from_slice(&hdr);
        skb.copy_bits(thlen + off, &mut d[thlen..])
            .map_err(|_| Errno::Inval)?;
        d[4..8].copy_from_slice(&seq0.wrapping_add(off as u32).to_be_bytes());
        if i + 1 < nsegs {
            d[13] &= !((TcpFlags::FIN | TcpFlags::PSH).bits() as u8);
        }
        if i > 0 {
            d[13] &= !(TcpFlags::CWR.bits() as u8);
        }
        d[16..18].fill(0);
        let sum = wire::csum_partial(d, 0);
        let check = wire::csum_tcpudp_magic(saddr, daddr, (thlen + len) as u16, 6, sum);
        d[16..18].copy_from_slice(&check.to_be_bytes());
        seg.reset_transport_header();
        seg.hash = skb.hash;
        seg.l4_hash = skb.l4_hash;
        seg.sw_hash = skb.sw_hash;
        seg.tstamp = skb.tstamp;
        seg.priority = skb.priority;
        seg.mark = skb.mark;
        seg.queue_mapping = skb.queue_mapping;
        out.push(seg);
    }
    Ok(out)
}

impl TimerContext<TcpTimer> for FakeTcpCtx {
    fn arm_timer(&mut self, id: TcpTimer, at: Instant) -> Option<Instant> {
        self.disarmed.remove(&id);
        self.timer_seq += 1;
        self.timers.insert(id, (at, self.timer_seq)).map(|p| p.0)
    }

    fn cancel_timer(&mut self, id: TcpTimer) -> Option<Instant> {
        self.disarmed.remove(&id);
        self.timers.remove(&id).map(|p| p.0)
    }

    fn timer_pending(&self, id: TcpTimer) -> Option<Instant> {
        self.timers.get(&id).map(|p| p.0)
    }
}

impl TcpContext for FakeTcpCtx {
    fn now(&self) -> Instant {
        self.now
    }

    fn disarm_timer(&mut self, id: TcpTimer) {
        if self.lazy_timers {
            if self.timers.contains_key(&id) {
                self.disarmed.insert(id);
            }
        } else {
            self.cancel_timer(id);
        }
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
        if daddr.octets()[..3] != [198, 18, 0] {
            return Err(Errno::NetUnreach);
        }
        Ok(TcpRoute {
            saddr: saddr.unwrap_or(self.addr),
            mtu: self.mtu,
        })
    }

    fn ip_queue_xmit(
        &mut self,
        skb: SkBuff,
        saddr: Ipv4Addr,
        daddr: Ipv4Addr,
        tos: u8,
    ) -> Result<(), Errno> {
        self.ip_queue_xmit_calls += 1;
        if !skb.is_gso() {
            // TCP fills the checksum of a single segment itself (a GSO
            // skb's is left partial): it must verify, whatever the layout.
            let len = skb.len();
            let sum = skb.checksum(0, len, 0).expect("the whole skb");
            assert_eq!(
                wire::csum_tcpudp_magic(saddr, daddr, len as u16, 6, sum),
                0,
                "TCP sent a segment with a bad checksum"
            );
        }
        if skb.is_gso() || skb.is_nonlinear() {
            // Cut (or, for one segment, made linear) into fresh skbs, as
            // a device without scatter-gather or TSO needs it.
            let segs = tcp_gso_segment_for_test(&skb, &self.pool, saddr, daddr)?;
            if skb.is_gso() {
                self.last_gso = Some(skb.clone());
            }
            // The segments hold the skb TCP built (and so its charge to
            // the socket) until the last of them is freed, as Linux
            // splits its truesize among them.
            let hold: Arc<dyn netcore::SkbDestructor> =
                Arc::new(GsoHold(parking_lot::Mutex::new(Some(skb))));
            for mut seg in segs {
                seg.set_destructor(Arc::clone(&hold));
                self.ip_queue_xmit_one(seg, saddr, daddr, tos)?;
            }
            return Ok(());
        }
        self.ip_queue_xmit_one(skb, saddr, daddr, tos)
    }

    fn sk_wake(&mut self, sk: SockId, event: SkEvent) {
        self.events.push((sk, event));
    }

    fn tcp_probe(&mut self, sample: &crate::TcpProbe) {
        if let Some(p) = self.probes.as_mut() {
            p.push(*sample);
        }
    }

    fn trace_tcp_probe_enabled(&self) -> bool {
        self.probes.is_some()
    }

    fn tcp_tsq(&self) -> Option<&std::sync::Arc<crate::TsqList>> {
        self.tsq.as_ref()
    }
}

/// One host of a [`Net`].
pub struct Host {
    /// Its TCP.
    pub stack: TcpStack,
    /// Its context.
    pub ctx: FakeTcpCtx,
}

/// A segment seen on the wire.
#[derive(Clone, Debug)]
pub struct Seg {
    /// When it was sent.
    pub at: Instant,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Its TCP header.
    pub tcp: TcpRepr,
    /// The IP header's ECN field (the TOS byte's low two bits), as it
    /// left the sender.
    pub ecn: u8,
    /// Whether the wire dropped it.
    pub dropped: bool,
}

impl Seg {
    /// Whether the segment has exactly these flags.
    pub fn is(&self, f: TcpFlags) -> bool {
        self.tcp.flags == f
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.tcp.payload_len
    }

    /// Whether it carries no payload.
    pub fn is_empty(&self) -> bool {
        self.tcp.payload_len == 0
    }
}

/// Seeded impairments of the wire (applied to each segment).
#[derive(Clone, Copy, Debug, Default)]
pub struct Impair {
    /// Probability of dropping a segment.
    pub loss: f64,
    /// Probability of delivering a second copy.
    pub duplicate: f64,
    /// Probability of delaying a segment by up to `reorder_delay` extra.
    pub reorder: f64,
    /// The extra delay of a reordered segment.
    pub reorder_delay: Duration,
}

type DropFilter = Box<dyn FnMut(&Seg) -> bool>;
type CeMarker = Box<dyn FnMut(&Seg) -> bool>;

/// A bottleneck in front of every host: segments towards a host leave a
/// drop-tail FIFO at `rate_bps` (serialised by IP length) before the
/// wire's one-way delay.
#[derive(Clone, Copy, Debug)]
pub struct Bottleneck {
    /// Link rate in bits per second.
    pub rate_bps: u64,
    /// Segments the queue holds (the one in transmission included);
    /// an arrival beyond it is dropped.
    pub queue_limit: usize,
}

impl Bottleneck {
    /// A bottleneck of `rate_bps` whose queue holds one bandwidth-delay
    /// product of 1500-byte packets at round-trip time `rtt`.
    pub fn one_bdp(rate_bps: u64, rtt: Duration) -> Bottleneck {
        let bdp_bytes = rate_bps / 8 * rtt.as_micros() as u64 / 1_000_000;
        Bottleneck {
            rate_bps,
            queue_limit: (bdp_bytes / 1500).max(1) as usize,
        }
    }
}

/// One direction's FIFO: departure times of the queued segments.
#[derive(Debug, Default)]
struct BottleneckQueue {
    departures: std::collections::VecDeque<Instant>,
    drops: u64,
}

/// Hosts joined by a wire with a fixed one-way delay, in virtual time.
pub struct Net {
    /// The hosts.
    pub hosts: Vec<Host>,
    /// Every segment put on the wire, in order.
    pub log: Vec<Seg>,
    /// One-way delay.
    pub delay: Duration,
    /// Impairments.
    pub impair: Impair,
    wire: BTreeMap<(Instant, u64), (usize, SkBuff)>,
    wire_seq: u64,
    now: Instant,
    rng: crate::SplitMix64,
    drop_filter: Option<DropFilter>,
    ce_marker: Option<CeMarker>,
    /// Record segments in [`Net::log`] (turn off for long transfers).
    pub logging: bool,
    /// A rate-limited drop-tail queue before each host (none by default).
    pub bottleneck: Option<Bottleneck>,
    queues: Vec<BottleneckQueue>,
    /// The bottleneck stands for the sender's own qdisc and device: its
    /// skbs are freed when they leave it (TCP Small Queues count them
    /// until then), not when they enter the wire (the default).
    pub bottleneck_is_local: bool,
    /// When a queued segment leaves a local bottleneck (its wire key).
    departures: BTreeMap<(Instant, u64), (Instant, u64)>,
}

impl Net {
    /// `n` hosts, 1 ms apart, no impairment, seeded with `seed`.
    pub fn new(n: usize) -> Net {
        Net::with_seed(n, 1)
    }

    /// `n` hosts with the given seed.
    pub fn with_seed(n: usize, seed: u64) -> Net {
        let pool = PagePool::new(PagePoolParams::default()).expect("default pool params are valid");
        let hosts = (0..n)
            .map(|i| {
                let addr = Ipv4Addr::new(198, 18, 0, i as u8 + 1);
                let stack = TcpStack::new(seed.wrapping_mul(31).wrapping_add(i as u64));
                let mut ctx = FakeTcpCtx::new(addr, seed ^ (i as u64 + 100), pool.clone());
                stack.set_sysctl(ctx.sysctl.clone());
                ctx.tsq = Some(std::sync::Arc::clone(stack.tsq_list()));
                Host { stack, ctx }
            })
            .collect();
        Net {
            hosts,
            log: Vec::new(),
            delay: Duration::from_millis(1),
            impair: Impair::default(),
            wire: BTreeMap::new(),
            wire_seq: 0,
            now: Instant::ZERO,
            rng: crate::SplitMix64::new(seed ^ 0x5eed),
            drop_filter: None,
            ce_marker: None,
            logging: true,
            bottleneck: None,
            queues: (0..n).map(|_| BottleneckQueue::default()).collect(),
            bottleneck_is_local: false,
            departures: BTreeMap::new(),
        }
    }

    /// Segments the bottleneck in front of host `i` dropped.
    pub fn bottleneck_drops(&self, i: usize) -> u64 {
        self.queues.get(i).map_or(0, |q| q.drops)
    }

    /// Segments queued at the bottleneck in front of host `i`.
    pub fn bottleneck_backlog(&mut self, i: usize) -> usize {
        let now = self.now;
        let q = &mut self.queues[i];
        while q.departures.front().is_some_and(|&d| d <= now) {
            q.departures.pop_front();
        }
        q.departures.len()
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The address of host `i`.
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.hosts[i].ctx.addr
    }

    /// Drops every segment for which `f` returns true (in addition to the
    /// random impairments).
    pub fn set_drop_filter(&mut self, f: impl FnMut(&Seg) -> bool + 'static) {
        self.drop_filter = Some(Box::new(f));
    }

    /// Removes the drop filter.
    pub fn clear_drop_filter(&mut self) {
        self.drop_filter = None;
    }

    /// Marks CE on every ECN-capable segment (ECT(0) or ECT(1)) for which
    /// `f` returns true, as an AQM with ECN does instead of dropping
    /// (`INET_ECN_set_ce()`); segments that are not ECN-capable pass
    /// unmarked. The log keeps the codepoint the sender set.
    pub fn set_ce_marker(&mut self, f: impl FnMut(&Seg) -> bool + 'static) {
        self.ce_marker = Some(Box::new(f));
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn collect_out(&mut self, i: usize) {
        let out = core::mem::take(&mut self.hosts[i].ctx.out);
        for skb in out {
            self.put_on_wire(skb);
        }
    }

    fn put_on_wire(&mut self, mut skb: SkBuff) {
        let Some(seg) = parse_seg(self.now, skb.data()) else {
            return;
        };
        let mut dropped = self.chance(self.impair.loss);
        if let Some(f) = self.drop_filter.as_mut()
            && f(&seg)
        {
            dropped = true;
        }
        let dst = seg.dst;
        let mark = matches!(seg.ecn, 1 | 2) && self.ce_marker.as_mut().is_some_and(|f| f(&seg));
        if self.logging {
            self.log.push(Seg { dropped, ..seg });
        }
        if dropped {
            return;
        }
        if mark && let Ok(d) = skb.data_mut() {
            // INET_ECN_set_ce(): CE, and the header checksum redone.
            d[1] |= 3;
            d[10..12].fill(0);
            let hlen = usize::from(d[0] & 0xf) * 4;
            let check = wire::ip_fast_csum(&d[..hlen]);
            d[10..12].copy_from_slice(&check.to_be_bytes());
        }
        let Some(to) = self.hosts.iter().position(|h| h.ctx.addr == dst) else {
            return;
        };
        let mut at = self.now + self.delay;
        let mut depart = None;
        if let Some(b) = self.bottleneck {
            let now = self.now;
            let q = &mut self.queues[to];
            while q.departures.front().is_some_and(|&d| d <= now) {
                q.departures.pop_front();
            }
            if q.departures.len() >= b.queue_limit {
                q.drops += 1;
                return;
            }
            let start = q.departures.back().copied().unwrap_or(now).max(now);
            let bits = skb.len() as u64 * 8;
            let tx = Duration::from_nanos(bits * 1_000_000_000 / b.rate_bps.max(1));
            let done = start + tx;
            q.departures.push_back(done);
            at = done + self.delay;
            depart = (self.bottleneck_is_local && skb.has_destructor()).then_some(done);
        }
        if depart.is_none() {
            // On the wire: the sender's device has freed the skb.
            skb.orphan();
        }
        if self.chance(self.impair.reorder) {
            let extra = self
                .rng
                .below(self.impair.reorder_delay.as_micros().max(1) as u32);
            at += Duration::from_micros(u64::from(extra));
        }
        if self.chance(self.impair.duplicate)
            && let Ok(copy) = skb.copy()
        {
            self.wire_seq += 1;
            self.wire
                .insert((at + Duration::from_micros(10), self.wire_seq), (to, copy));
        }
        self.wire_seq += 1;
        self.wire.insert((at, self.wire_seq), (to, skb));
        if let Some(done) = depart {
            self.departures
                .insert((done, self.wire_seq), (at, self.wire_seq));
        }
    }

    /// Puts a hand-made segment from `src` (any address) on the wire
    /// towards host `to`.
    pub fn inject(&mut self, src: Ipv4Addr, to: usize, repr: &TcpRepr, payload: &[u8]) {
        let dst = self.addr(to);
        let mut buf = vec![0u8; repr.header_len() + payload.len()];
        buf[repr.header_len()..].copy_from_slice(payload);
        repr.emit(&mut buf, src, dst).expect("test segment fits");
        self.sync(to);
        let pool = self.hosts[to].ctx.page_pool().clone();
        let mut skb = SkBuff::from_slice(&pool, crate::tcp_sock::MAX_TCP_HEADER, &buf)
            .expect("pool has room");
        let _ = FakeTcpCtx::ip_queue_xmit_from(&mut skb, src, dst);
        self.put_on_wire(skb);
    }

    /// Delivers a hand-made TCP segment from `src` to host `to` now, as
    /// GRO leaves a merged packet: the IP header, the TCP header and the
    /// first `head` bytes of payload in the linear part, the rest in
    /// fragments of `frag` bytes, each in a pool buffer of its own (as
    /// each merged frame's). `segment` is the TCP header and payload,
    /// checksum included. Whatever TCP sends in answer goes on the wire.
    pub fn deliver_nonlinear(
        &mut self,
        src: Ipv4Addr,
        to: usize,
        segment: &[u8],
        head: usize,
        frag: usize,
    ) {
        let dst = self.addr(to);
        let h = self.sync(to);
        let pool = h.ctx.page_pool().clone();
        let thlen = TcpPacket::new_checked(segment).map_or(20, |p| p.header_len());
        let split = (thlen + head).min(segment.len());
        let mut skb = SkBuff::from_slice(&pool, crate::tcp_sock::MAX_TCP_HEADER, &segment[..split])
            .expect("pool has room");
        for part in segment[split..].chunks(frag.max(1)) {
            // A frame's buffer: its (here dummy) headers, then the part.
            let mut f = SkBuff::from_slice(&pool, 0, &[0u8; 54]).expect("pool has room");
            f.put_data(part).expect("a frame's buffer holds the part");
            skb.append_frags(f, 54).expect("chained");
        }
        let _ = FakeTcpCtx::ip_queue_xmit_from(&mut skb, src, dst);
        skb.reset_network_header();
        if skb.pull(20).is_ok() {
            skb.reset_transport_header();
            let h = &mut self.hosts[to];
            crate::tcp_v4_rcv(&h.stack, &mut h.ctx, skb);
        }
        self.collect_out(to);
    }

    /// Runs the next event (a delivery or a timer). Returns false when
    /// nothing is pending.
    pub fn step(&mut self) -> bool {
        let departure = self.departures.keys().next().copied();
        let wire_next = self.wire.keys().next().copied();
        let before_wire = wire_next.is_none_or(|(wa, _)| departure.is_some_and(|(d, _)| d <= wa));
        if let Some(d) = departure.filter(|_| before_wire)
            && self
                .hosts
                .iter()
                .all(|h| h.ctx.next_timer().is_none_or(|(t, ..)| d.0 <= t))
        {
            // A segment leaves the bottleneck: its skb is freed (TSQ).
            let key = self.departures.remove(&d).expect("present");
            self.now = self.now.max(d.0);
            if let Some((_, skb)) = self.wire.get_mut(&key) {
                skb.orphan();
            }
            self.run_tsq();
            return true;
        }
        let timer_next = self
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.ctx.next_timer().map(|(at, seq, id)| (at, seq, i, id)))
            .min_by_key(|&(at, seq, i, _)| (at, i, seq));
        let take_wire = match (wire_next, timer_next) {
            (None, None) => return false,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((wa, _)), Some((ta, ..))) => wa <= ta,
        };
        if take_wire {
            let key = wire_next.expect("checked");
            let (to, mut skb) = self.wire.remove(&key).expect("present");
            self.now = self.now.max(key.0);
            let h = &mut self.hosts[to];
            h.ctx.set_now(self.now);
            let hl = skb.data().first().map_or(20, |b| usize::from(b & 0xf) * 4);
            skb.reset_network_header();
            if skb.pull(hl).is_ok() {
                skb.reset_transport_header();
                crate::tcp_v4_rcv(&h.stack, &mut h.ctx, skb);
            }
            self.collect_out(to);
        } else {
            let (at, _, i, id) = timer_next.expect("checked");
            self.now = self.now.max(at);
            let h = &mut self.hosts[i];
            h.ctx.set_now(self.now);
            if h.ctx.disarmed.contains(&id) {
                h.ctx.lazy_fired += 1;
            }
            h.ctx.cancel_timer(id);
            h.stack.handle_timer(&mut h.ctx, id);
            self.collect_out(i);
        }
        self.run_tsq();
        true
    }

    /// Runs each host's TSQ work (the host's `TASKLET` softirq).
    fn run_tsq(&mut self) {
        for i in 0..self.hosts.len() {
            if self.hosts[i].stack.tsq_pending() {
                let now = self.now;
                let h = &mut self.hosts[i];
                h.ctx.set_now(now);
                h.stack.tcp_tsq_workfn(&mut h.ctx);
                self.collect_out(i);
            }
        }
    }

    /// Runs events up to `t` and sets the clock to `t`.
    pub fn run_until_time(&mut self, t: Instant) {
        // Segments a test made a host send outside the loop (a direct
        // call such as `tcp_v4_err()`) go on the wire first.
        for i in 0..self.hosts.len() {
            self.collect_out(i);
        }
        loop {
            let wire_next = self
                .wire
                .keys()
                .next()
                .map(|k| k.0)
                .into_iter()
                .chain(self.departures.keys().next().map(|k| k.0))
                .min();
            let timer_next = self
                .hosts
                .iter()
                .filter_map(|h| h.ctx.next_timer().map(|x| x.0))
                .min();
            let next = match (wire_next, timer_next) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => break,
            };
            if next > t {
                break;
            }
            self.step();
        }
        self.now = self.now.max(t);
        for h in &mut self.hosts {
            h.ctx.set_now(t);
        }
    }

    /// Runs for `ms` milliseconds of virtual time.
    pub fn run_for_ms(&mut self, ms: u64) {
        let t = self.now + Duration::from_millis(ms);
        self.run_until_time(t);
    }

    /// Runs until `done` holds, at most `limit` of virtual time; returns
    /// whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now <= end {
            if done(self) {
                return true;
            }
            if !self.step() {
                return done(self);
            }
        }
        done(self)
    }

    fn sync(&mut self, i: usize) -> &mut Host {
        let now = self.now;
        let h = &mut self.hosts[i];
        h.ctx.set_now(now);
        h
    }

    /// A new socket on host `i`.
    pub fn socket(&mut self, i: usize) -> Arc<TcpSocket> {
        let h = self.sync(i);
        h.stack.socket(&h.ctx)
    }

    /// A listener on host `i` at `port`.
    pub fn listen(&mut self, i: usize, port: u16, backlog: i32) -> Arc<TcpSocket> {
        let sk = self.socket(i);
        let h = self.sync(i);
        h.stack
            .bind(
                &mut h.ctx,
                &sk,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
            )
            .expect("bind");
        h.stack.listen(&mut h.ctx, &sk, backlog).expect("listen");
        sk
    }

    /// Starts a connect from host `i` to host `to`'s `port`.
    pub fn connect(&mut self, i: usize, sk: &TcpSocket, to: usize, port: u16) -> Result<(), Errno> {
        let dst = SocketAddrV4::new(self.addr(to), port);
        let h = self.sync(i);
        let r = h.stack.connect(&mut h.ctx, sk, dst);
        self.collect_out(i);
        r
    }

    /// Takes a connection from a listener on host `i`.
    pub fn accept(&mut self, i: usize, l: &TcpSocket) -> Result<Arc<TcpSocket>, Errno> {
        self.hosts[i].stack.accept(l)
    }

    /// Sends on host `i`.
    pub fn send(&mut self, i: usize, sk: &TcpSocket, data: &[u8]) -> Result<usize, Errno> {
        self.send_flags(i, sk, data, MsgFlags::empty())
    }

    /// Sends with flags on host `i`.
    pub fn send_flags(
        &mut self,
        i: usize,
        sk: &TcpSocket,
        data: &[u8],
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        let h = self.sync(i);
        let r = h.stack.sendmsg(&mut h.ctx, sk, data, flags);
        self.collect_out(i);
        r
    }

    /// Receives on host `i`.
    pub fn recv(&mut self, i: usize, sk: &TcpSocket, buf: &mut [u8]) -> Result<usize, Errno> {
        self.recv_flags(i, sk, buf, MsgFlags::empty())
    }

    /// Receives with flags on host `i`.
    pub fn recv_flags(
        &mut self,
        i: usize,
        sk: &TcpSocket,
        buf: &mut [u8],
        flags: MsgFlags,
    ) -> Result<usize, Errno> {
        let h = self.sync(i);
        let r = h.stack.recvmsg(&mut h.ctx, sk, buf, flags);
        self.collect_out(i);
        r
    }

    /// Closes on host `i`.
    pub fn close(&mut self, i: usize, sk: &TcpSocket) {
        let h = self.sync(i);
        h.stack.close(&mut h.ctx, sk);
        self.collect_out(i);
    }

    /// Shuts down a direction on host `i`.
    pub fn shutdown(
        &mut self,
        i: usize,
        sk: &TcpSocket,
        how: crate::Shutdown,
    ) -> Result<(), Errno> {
        let h = self.sync(i);
        let r = h.stack.shutdown(&mut h.ctx, sk, how);
        self.collect_out(i);
        r
    }

    /// Sets an option on host `i`.
    pub fn setsockopt(
        &mut self,
        i: usize,
        sk: &TcpSocket,
        opt: crate::SockOpt,
    ) -> Result<(), Errno> {
        let h = self.sync(i);
        let r = h.stack.setsockopt(&mut h.ctx, sk, opt);
        self.collect_out(i);
        r
    }

    /// A counter of host `i`.
    pub fn mib<F: netcore::MibField>(&self, i: usize, f: F) -> u64 {
        self.hosts[i].ctx.mibs().get(f)
    }

    /// Connects host 0 to a listener on host 1 at `port` and returns the
    /// client socket and the accepted server socket.
    pub fn connect_pair(&mut self, port: u16) -> (Arc<TcpSocket>, Arc<TcpSocket>) {
        let l = self.listen(1, port, 128);
        let c = self.socket(0);
        assert_eq!(self.connect(0, &c, 1, port), Err(Errno::InProgress));
        let ok = self.run_until(Duration::from_secs(5), |n| {
            n.hosts[1].stack.poll(&l).contains(crate::PollMask::IN)
        });
        assert!(ok, "handshake did not complete");
        let s = self.accept(1, &l).expect("accept");
        self.close(1, &l);
        (c, s)
    }

    /// Segments logged from host `i`.
    pub fn from(&self, i: usize) -> Vec<&Seg> {
        let a = self.addr(i);
        self.log.iter().filter(|s| s.src == a).collect()
    }
}

impl FakeTcpCtx {
    /// Marks a hand-made segment as if the IP layer built it (used by
    /// [`Net::inject`]).
    fn ip_queue_xmit_from(skb: &mut SkBuff, saddr: Ipv4Addr, daddr: Ipv4Addr) -> Result<(), Errno> {
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
        skb.push(ip.header_len()).map_err(|_| Errno::NoBufs)?;
        let buf = skb.data_mut().map_err(|_| Errno::NoBufs)?;
        ip.emit(buf).map_err(|_| Errno::Inval)
    }
}

/// Parses an IPv4/TCP datagram into a logged [`Seg`].
pub fn parse_seg(at: Instant, data: &[u8]) -> Option<Seg> {
    let ip = Ipv4Packet::new_checked(data).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    let repr = TcpRepr::parse(&tcp, ip.src_addr(), ip.dst_addr()).ok()?;
    Some(Seg {
        at,
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        tcp: repr,
        ecn: data.get(1).map_or(0, |tos| tos & 3),
        dropped: false,
    })
}
