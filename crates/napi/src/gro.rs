//! Generic receive offload: the per-NAPI table of held packets, merging,
//! flushing.
//!
//! Mirrors `net/core/gro.c` (`dev_gro_receive()`, `gro_list_prepare()`,
//! `skb_gro_receive()`, `napi_gro_complete()`, `__napi_gro_flush_chain()`,
//! `napi_gro_flush()`, `gro_flush_oldest()`), with the IPv4 and TCP steps
//! in [`crate::tcp_offload`].
//!
//! A packet handed to [`GroList::napi_gro_receive`] is, in Linux's words:
//! merged into a held packet of its flow (`GRO_MERGED`), held as the first
//! of its flow (`GRO_HELD`), or passed up (`GRO_NORMAL`). Held packets go up
//! at the end of each poll that used its whole weight (only those held since
//! an earlier jiffy), at `napi_complete_done` (all), when the flow's next
//! segment cannot be merged (before it, so order is kept), and when their
//! bucket is full (the oldest).
//!
//! # Deviations from Linux
//!
//! - Merging chains each segment's buffer to the held packet as a fragment
//!   ([`SkBuff::append_frags`]), as `skb_gro_receive()` does, with no copy;
//!   fragments beyond `MAX_SKB_FRAGS` stay in the same list instead of a
//!   `frag_list`. Without a pool ([`NapiStruct::set_gro_pool`](crate::NapiStruct::set_gro_pool))
//!   GRO is off, as with `NETIF_F_GRO` cleared; the pool is not used for
//!   merging.
//! - Packets pass up one by one, not batched by `gro_normal_batch`.
//! - A TCP segment GRO cannot handle (IP options, a fragment, a bad
//!   checksum) first flushes the held packets of its address pair, so a
//!   flow's order is kept; Linux passes it up ahead of them. A packet of
//!   another protocol goes up at once, as in Linux (only TCP has a GRO
//!   handler here), and costs one look at the IP protocol byte.
//! - Checksums: a segment the device verified (`CHECKSUM_UNNECESSARY`) is
//!   merged as is; any other is verified in software first, as
//!   `skb_gro_checksum_validate()` does, and a bad one is not merged. A
//!   merged packet is `CHECKSUM_UNNECESSARY` only when every segment was,
//!   and then carries Linux's pseudo-header value in the TCP checksum field
//!   (`tcp4_gro_complete()`); otherwise it gets a full, correct TCP checksum
//!   and `CHECKSUM_NONE`. Linux marks every merged packet `CHECKSUM_PARTIAL`.

use heapless::Vec as HVec;
use netcore::{ETH_P_IP, IpSummed, PagePool, SkBuff, SkbGsoType};
use wire::ETH_HLEN;

use crate::dev::GroReceive;
use crate::tcp_offload::{
    IPPROTO_TCP, TcpGroVerdict, parse_inet_tcp, tcp_gro_receive, tcp_segment_closes,
    tcp4_gro_complete,
};

/// The number of GRO hash buckets per NAPI. Mirrors `GRO_HASH_BUCKETS`.
pub const GRO_HASH_BUCKETS: usize = 8;

/// The most packets held in one bucket; one more flushes the oldest.
/// Mirrors `MAX_GRO_SKBS`.
pub const MAX_GRO_SKBS: usize = 8;

/// What GRO did with a packet.
///
/// Mirrors `enum gro_result` in `include/linux/netdevice.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroResult {
    /// Merged into a held packet of its flow. `GRO_MERGED`.
    #[doc(alias = "GRO_MERGED")]
    Merged,
    /// Held as the first packet of a flow. `GRO_HELD`.
    #[doc(alias = "GRO_HELD")]
    Held,
    /// Passed up unchanged. `GRO_NORMAL`.
    #[doc(alias = "GRO_NORMAL")]
    Normal,
}

/// GRO counters of one NAPI.
///
/// Linux has no such per-NAPI counters (only the netdev qstats
/// `rx-hw-gro-packets`/`rx-hw-gro-wire-packets` for hardware GRO); these
/// count the [`GroResult`]s and the flushes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroStats {
    /// Packets merged into a held packet (`GRO_MERGED` results).
    pub merged: u64,
    /// Packets held as the first of a flow (`GRO_HELD` results).
    pub held: u64,
    /// Packets passed up unchanged (`GRO_NORMAL` results).
    pub normal: u64,
    /// Held packets sent up (`napi_gro_complete()` calls), merged or not.
    pub flushed: u64,
    /// Flush events that sent up at least one held packet: end of poll,
    /// completion, a non-mergeable segment, a full bucket.
    pub flushes: u64,
}

/// One held packet and what GRO knows about it (`NAPI_GRO_CB(p)`).
#[derive(Debug)]
pub(crate) struct GroSkb {
    pub(crate) skb: SkBuff,
    /// The jiffy it was first held in.
    age: u64,
    /// Segments merged into it, itself included.
    pub(crate) count: u16,
    /// The segment size (`gso_size`): the first segment's payload length.
    pub(crate) mss: u16,
    /// The flow's IPv4 ID stays fixed (DF set and the second segment had
    /// the same ID).
    pub(crate) ip_fixedid: bool,
    /// Every segment came with `CHECKSUM_UNNECESSARY`.
    pub(crate) all_csum_unnecessary: bool,
    /// The flow's keys, to match without reparsing.
    pub(crate) key: FlowKey,
    /// The sequence number the next segment must carry.
    pub(crate) next_seq: u32,
}

/// What makes two packets one flow for GRO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlowKey {
    pub(crate) ifindex: u32,
    pub(crate) vlan_tci: Option<u16>,
    pub(crate) mac: Option<[u8; ETH_HLEN]>,
    pub(crate) saddr: [u8; 4],
    pub(crate) daddr: [u8; 4],
    pub(crate) ports: [u8; 4],
}

/// The GRO state of one NAPI (`struct gro_node`): its hash buckets of held
/// packets, the pool merged packets are built in, and counters.
///
/// The buckets are bounded (heapless) and boxed once, so the table never
/// reallocates and does not sit on the stack of whoever creates the NAPI.
#[derive(Debug, Default)]
pub(crate) struct GroList {
    pool: Option<PagePool>,
    hash: Box<[HVec<GroSkb, MAX_GRO_SKBS>; GRO_HASH_BUCKETS]>,
    /// Bit `i` is set when bucket `i` holds packets (`gro->bitmask`).
    gro_bitmask: u8,
    stats: GroStats,
}

/// The MAC header of an skb whose data starts at the network header.
#[inline]
fn mac_header(skb: &SkBuff) -> Option<[u8; ETH_HLEN]> {
    // From the MAC header to the tail: exactly ETH_HLEN more than the data
    // when the data starts right after it.
    let mac = skb.mac_header()?;
    if mac.len() != skb.headlen() + ETH_HLEN {
        return None;
    }
    mac.first_chunk().copied()
}

impl GroList {
    pub(crate) fn new() -> GroList {
        GroList::default()
    }

    pub(crate) fn set_pool(&mut self, pool: Option<PagePool>) {
        self.pool = pool;
    }

    pub(crate) fn stats(&self) -> GroStats {
        self.stats
    }

    /// How many packets are held.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn held(&self) -> usize {
        self.hash.iter().map(|b| b.len()).sum()
    }

    /// Mirrors `napi_gro_receive()` → `dev_gro_receive()` →
    /// `inet_gro_receive()` → `tcp4_gro_receive()`.
    #[inline]
    pub(crate) fn napi_gro_receive(
        &mut self,
        skb: SkBuff,
        sink: &mut dyn GroReceive,
        jiffies: u64,
    ) -> GroResult {
        if !self.gro_may_hold(&skb) {
            return self.normal(skb, sink);
        }
        // Nothing held, and a segment that closes (PSH, FIN, ...: every
        // request and reply of a request/response flow): whatever the
        // checks below find, it goes up unchanged and nothing is flushed
        // first, so they are skipped. Not in Linux, which parses and looks
        // up first; the outcome and the counters are the same.
        if self.gro_bitmask == 0 && tcp_segment_closes(&skb) {
            return self.normal(skb, sink);
        }
        let Some(seg) = parse_inet_tcp(&skb) else {
            // A TCP segment GRO cannot handle (options, fragment, bad
            // checksum): its address pair's held packets go up first, so
            // the flow's order is kept.
            if self.gro_bitmask != 0
                && let Some((saddr, daddr)) = crate::tcp_offload::ipv4_addrs(&skb)
            {
                self.flush_matching(sink, |k| {
                    k.ifindex == skb.ifindex && k.saddr == saddr && k.daddr == daddr
                });
            }
            return self.normal(skb, sink);
        };
        let key = FlowKey {
            ifindex: skb.ifindex,
            vlan_tci: skb.vlan_tci,
            mac: mac_header(&skb),
            saddr: seg.saddr,
            daddr: seg.daddr,
            ports: seg.ports,
        };
        let bucket = (skb.hash as usize) & (GRO_HASH_BUCKETS - 1);
        let pos = self.hash[bucket].iter().position(|p| p.key == key);
        let verdict = tcp_gro_receive(pos.map(|i| &mut self.hash[bucket][i]), skb, &seg);
        match verdict {
            TcpGroVerdict::Merged { flush } => {
                self.stats.merged += 1;
                if flush && let Some(i) = pos {
                    let p = self.hash[bucket].remove(i);
                    self.update_bitmask(bucket);
                    self.napi_gro_complete(p, sink);
                    self.stats.flushes += 1;
                }
                GroResult::Merged
            }
            TcpGroVerdict::NotMerged { flush_skb, skb } => {
                if let Some(i) = pos {
                    let p = self.hash[bucket].remove(i);
                    self.update_bitmask(bucket);
                    self.napi_gro_complete(p, sink);
                    self.stats.flushes += 1;
                }
                if flush_skb {
                    return self.normal(skb, sink);
                }
                if self.hash[bucket].is_full() {
                    // gro_flush_oldest(): the first held is the oldest.
                    let oldest = self.hash[bucket].remove(0);
                    self.napi_gro_complete(oldest, sink);
                    self.stats.flushes += 1;
                }
                let held = GroSkb {
                    age: jiffies,
                    count: 1,
                    mss: seg.payload_len as u16,
                    ip_fixedid: false,
                    all_csum_unnecessary: skb.ip_summed == IpSummed::Unnecessary,
                    key,
                    next_seq: seg.seq.wrapping_add(seg.payload_len as u32),
                    skb,
                };
                // Cannot fail: a full bucket was made room in above.
                let _ = self.hash[bucket].push(held);
                self.update_bitmask(bucket);
                self.stats.held += 1;
                GroResult::Held
            }
        }
    }

    /// Whether GRO may do anything with `skb` but pass it up: GRO is on
    /// and the packet is IPv4/TCP. Mirrors `netif_elide_gro()` (no pool, as
    /// with `NETIF_F_GRO` cleared; not IPv4) and the offload lookup of
    /// `inet_gro_receive()` (only TCP has a GRO handler here: any other
    /// protocol goes up at once and leaves the held packets alone).
    #[inline]
    pub(crate) fn gro_may_hold(&self, skb: &SkBuff) -> bool {
        self.pool.is_some() && skb.protocol == ETH_P_IP && skb.data().get(9) == Some(&IPPROTO_TCP)
    }

    /// Counts a packet passed up unchanged (`GRO_NORMAL`).
    #[inline]
    pub(crate) fn count_normal(&mut self) {
        self.stats.normal += 1;
    }

    /// Sets or clears bucket `bucket`'s bit in `gro_bitmask`.
    fn update_bitmask(&mut self, bucket: usize) {
        if self.hash[bucket].is_empty() {
            self.gro_bitmask &= !(1 << bucket);
        } else {
            self.gro_bitmask |= 1 << bucket;
        }
    }

    #[inline]
    fn normal(&mut self, skb: SkBuff, sink: &mut dyn GroReceive) -> GroResult {
        self.stats.normal += 1;
        sink.netif_receive_skb(skb);
        GroResult::Normal
    }

    /// Sends a held packet up, fixing its headers if segments were merged.
    /// Mirrors `napi_gro_complete()` (→ `inet_gro_complete()` →
    /// `tcp4_gro_complete()`).
    fn napi_gro_complete(&mut self, p: GroSkb, sink: &mut dyn GroReceive) {
        self.stats.flushed += 1;
        let mut skb = p.skb;
        if p.count > 1 {
            tcp4_gro_complete(&mut skb, p.count, p.mss, p.all_csum_unnecessary);
            skb.gso_type |= SkbGsoType::TCPV4;
            if p.ip_fixedid {
                skb.gso_type |= SkbGsoType::TCP_FIXEDID;
            }
        }
        sink.netif_receive_skb(skb);
    }

    /// Sends up the held packets of every bucket, oldest first; with
    /// `flush_old`, stops in each bucket at the first packet held in the
    /// current jiffy. Mirrors `napi_gro_flush()` / `__napi_gro_flush_chain()`.
    ///
    /// Inline up to the test of `gro_bitmask`: every poll completion
    /// flushes, and most find nothing held.
    #[inline]
    pub(crate) fn napi_gro_flush(
        &mut self,
        sink: &mut dyn GroReceive,
        flush_old: bool,
        jiffies: u64,
    ) {
        if self.gro_bitmask != 0 {
            self.napi_gro_flush_held(sink, flush_old, jiffies);
        }
    }

    /// [`napi_gro_flush`](Self::napi_gro_flush) with something held.
    #[inline(never)]
    fn napi_gro_flush_held(&mut self, sink: &mut dyn GroReceive, flush_old: bool, jiffies: u64) {
        let mut any = false;
        for bucket in 0..GRO_HASH_BUCKETS {
            if self.gro_bitmask & (1 << bucket) == 0 {
                continue;
            }
            let keep_from = if flush_old {
                self.hash[bucket]
                    .iter()
                    .position(|p| p.age == jiffies)
                    .unwrap_or(self.hash[bucket].len())
            } else {
                self.hash[bucket].len()
            };
            for _ in 0..keep_from {
                let p = self.hash[bucket].remove(0);
                self.napi_gro_complete(p, sink);
                any = true;
            }
            self.update_bitmask(bucket);
        }
        if any {
            self.stats.flushes += 1;
        }
    }

    /// Flushes, in age order per bucket, the held packets whose key matches.
    fn flush_matching(&mut self, sink: &mut dyn GroReceive, matches: impl Fn(&FlowKey) -> bool) {
        let mut any = false;
        for bucket in 0..GRO_HASH_BUCKETS {
            let mut i = 0;
            while i < self.hash[bucket].len() {
                if matches(&self.hash[bucket][i].key) {
                    let p = self.hash[bucket].remove(i);
                    self.napi_gro_complete(p, sink);
                    any = true;
                } else {
                    i += 1;
                }
            }
            self.update_bitmask(bucket);
        }
        if any {
            self.stats.flushes += 1;
        }
    }

    /// Frees every held packet without sending it up. Mirrors `gro_cleanup()`.
    pub(crate) fn gro_cleanup(&mut self) {
        for bucket in self.hash.iter_mut() {
            bucket.clear();
        }
        self.gro_bitmask = 0;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::net::Ipv4Addr;

    use netcore::{ETH_P_IP, GSO_MAX_SIZE, PagePoolParams};
    use wire::{Ipv4Packet, TcpFlags, TcpPacket, csum_partial, csum_tcpudp_magic, ip_fast_csum};

    use super::*;

    const SRC: [u8; 4] = [198, 18, 0, 1];
    const DST: [u8; 4] = [198, 18, 0, 2];

    /// A TCP segment description for [`frame`].
    #[derive(Clone)]
    struct Seg {
        sport: u16,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        id: u16,
        df: bool,
        ttl: u8,
        opts: Vec<u8>,
        payload: Vec<u8>,
        proto: u8,
        summed: IpSummed,
    }

    fn seg(i: u32, len: usize) -> Seg {
        Seg {
            sport: 40000,
            seq: 1000 + i * len as u32,
            ack: 77,
            flags: TcpFlags::ACK,
            id: 100 + i as u16,
            df: true,
            ttl: 64,
            opts: vec![1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 9],
            payload: (0..len).map(|b| (i as usize * 7 + b) as u8).collect(),
            proto: 6,
            summed: IpSummed::Unnecessary,
        }
    }

    /// Builds the skb a driver hands GRO after `eth_type_trans()`.
    fn frame(pool: &PagePool, s: &Seg) -> SkBuff {
        let thlen = 20 + s.opts.len();
        let tot = 20 + thlen + s.payload.len();
        let mut f = vec![0u8; 14 + tot];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(tot as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&s.id.to_be_bytes());
        ip[6] = if s.df { 0x40 } else { 0 };
        ip[8] = s.ttl;
        ip[9] = s.proto;
        ip[12..16].copy_from_slice(&SRC);
        ip[16..20].copy_from_slice(&DST);
        let c = ip_fast_csum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let th = &mut ip[20..];
        th[0..2].copy_from_slice(&s.sport.to_be_bytes());
        th[2..4].copy_from_slice(&80u16.to_be_bytes());
        th[4..8].copy_from_slice(&s.seq.to_be_bytes());
        th[8..12].copy_from_slice(&s.ack.to_be_bytes());
        th[12] = ((thlen / 4) as u8) << 4;
        th[13] = s.flags.bits() as u8;
        th[14..16].copy_from_slice(&512u16.to_be_bytes());
        th[20..thlen].copy_from_slice(&s.opts);
        th[thlen..].copy_from_slice(&s.payload);
        let l4 = (thlen + s.payload.len()) as u16;
        let c = csum_tcpudp_magic(
            Ipv4Addr::from(SRC),
            Ipv4Addr::from(DST),
            l4,
            s.proto,
            csum_partial(th, 0),
        );
        th[16..18].copy_from_slice(&c.to_be_bytes());
        let mut skb = SkBuff::from_slice(pool, 64, &f).unwrap();
        skb.reset_mac_header();
        skb.pull(14).unwrap();
        skb.reset_network_header();
        skb.protocol = ETH_P_IP;
        skb.ifindex = 2;
        skb.ip_summed = s.summed;
        skb
    }

    fn pool() -> PagePool {
        PagePool::new(PagePoolParams::default()).unwrap()
    }

    fn gro(pool: &PagePool) -> GroList {
        let mut g = GroList::new();
        g.set_pool(Some(pool.clone()));
        g
    }

    fn run(g: &mut GroList, pool: &PagePool, segs: &[Seg]) -> (Vec<GroResult>, Vec<SkBuff>) {
        let mut out: Vec<SkBuff> = Vec::new();
        let r = segs
            .iter()
            .map(|s| g.napi_gro_receive(frame(pool, s), &mut out, 0))
            .collect();
        (r, out)
    }

    /// The packet's bytes in one piece (a linearized clone).
    fn flat(skb: &SkBuff) -> SkBuff {
        let mut c = skb.clone();
        c.linearize().unwrap();
        c
    }

    fn tcp_payload(skb: &SkBuff) -> Vec<u8> {
        let skb = &flat(skb);
        let ip = Ipv4Packet::new_verified(skb.data()).unwrap();
        TcpPacket::new_checked(ip.payload())
            .unwrap()
            .payload()
            .to_vec()
    }

    #[test]
    fn ten_in_order_segments_become_one() {
        let pool = pool();
        let mut g = gro(&pool);
        let segs: Vec<Seg> = (0..10).map(|i| seg(i, 1000)).collect();
        let (r, mut out) = run(&mut g, &pool, &segs);
        assert_eq!(r[0], GroResult::Held);
        assert!(r[1..].iter().all(|&x| x == GroResult::Merged));
        assert!(out.is_empty());
        g.napi_gro_flush(&mut out, false, 0);
        assert_eq!(out.len(), 1);
        let skb = &out[0];
        assert_eq!(skb.len(), 20 + 32 + 10 * 1000);
        assert_eq!(
            (skb.headlen(), skb.nr_frags()),
            (20 + 32 + 1000, 9),
            "each merged segment is chained as a fragment"
        );
        assert_eq!(
            pool.stats().inflight(),
            10,
            "no buffer beyond the segments'"
        );
        let flat = flat(skb);
        let ip = Ipv4Packet::new_verified(flat.data()).unwrap();
        assert_eq!(usize::from(ip.total_len()), skb.len());
        let want: Vec<u8> = segs.iter().flat_map(|s| s.payload.clone()).collect();
        assert_eq!(tcp_payload(skb), want);
        assert_eq!((skb.gso_size, skb.gso_segs), (1000, 10));
        assert!(skb.gso_type.contains(SkbGsoType::TCPV4));
        assert!(!skb.gso_type.contains(SkbGsoType::TCP_FIXEDID));
        assert_eq!(skb.ip_summed, IpSummed::Unnecessary);
        assert_eq!(skb.mac_header().unwrap()[..6], [2, 0, 0, 0, 0, 2]);
        assert_eq!(
            g.stats(),
            GroStats {
                merged: 9,
                held: 1,
                normal: 0,
                flushed: 1,
                flushes: 1
            }
        );
    }

    #[test]
    fn unverified_segments_merge_with_a_full_checksum() {
        let pool = pool();
        let mut g = gro(&pool);
        let mut segs: Vec<Seg> = (0..3).map(|i| seg(i, 500)).collect();
        segs[1].summed = IpSummed::None;
        let (_, mut out) = run(&mut g, &pool, &segs);
        g.napi_gro_flush(&mut out, false, 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ip_summed, IpSummed::None);
        assert_eq!(out[0].gso_segs, 3);
        let flat0 = flat(&out[0]);
        let ip = Ipv4Packet::new_verified(flat0.data()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.verify_checksum(ip.src_addr(), ip.dst_addr()));
        // A corrupted unverified segment is not merged: it goes up as is,
        // after the held packet of its hosts.
        let mut bad = seg(3, 500);
        bad.summed = IpSummed::None;
        let mut skb = frame(&pool, &bad);
        skb.data_mut().unwrap()[60] ^= 0xff;
        let mut g = gro(&pool);
        let (_, mut out) = run(&mut g, &pool, &segs[..1]);
        assert_eq!(g.napi_gro_receive(skb, &mut out, 0), GroResult::Normal);
        assert_eq!(out.len(), 2);
        assert_eq!(tcp_payload(&out[0]), segs[0].payload);
    }

    #[test]
    fn never_merges_across_a_sequence_gap() {
        let pool = pool();
        let mut g = gro(&pool);
        let (r, mut out) = run(&mut g, &pool, &[seg(0, 100), seg(2, 100)]);
        assert_eq!(r, [GroResult::Held, GroResult::Held]);
        // The first went up before the second was held.
        assert_eq!(out.len(), 1);
        assert_eq!(tcp_payload(&out[0]), seg(0, 100).payload);
        g.napi_gro_flush(&mut out, false, 0);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|s| s.gso_segs == 0));
    }

    #[test]
    fn never_merges_across_a_flag_change() {
        for flag in [TcpFlags::URG, TcpFlags::SYN, TcpFlags::RST, TcpFlags::ECE] {
            let pool = pool();
            let mut g = gro(&pool);
            let mut s1 = seg(1, 100);
            s1.flags |= flag;
            let (r, mut out) = run(&mut g, &pool, &[seg(0, 100), s1]);
            assert_ne!(r[1], GroResult::Merged, "{flag:?}");
            g.napi_gro_flush(&mut out, false, 0);
            assert_eq!(out.len(), 2, "{flag:?}");
            assert_eq!(tcp_payload(&out[0]), seg(0, 100).payload);
        }
    }

    #[test]
    fn psh_and_fin_close_the_merged_packet() {
        let pool = pool();
        let mut g = gro(&pool);
        let mut last = seg(2, 100);
        last.flags |= TcpFlags::PSH;
        let (r, out) = run(&mut g, &pool, &[seg(0, 100), seg(1, 100), last]);
        assert_eq!(r, [GroResult::Held, GroResult::Merged, GroResult::Merged]);
        assert_eq!(out.len(), 1, "sent up at once");
        assert_eq!(out[0].gso_segs, 3);
        let flat0 = flat(&out[0]);
        let ip = Ipv4Packet::new_verified(flat0.data()).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        assert!(tcp.flags().contains(TcpFlags::PSH));
        // A short segment closes it too.
        let mut g = gro(&pool);
        let mut short = seg(1, 100);
        short.payload.truncate(40);
        let (r, out) = run(&mut g, &pool, &[seg(0, 100), short]);
        assert_eq!(r[1], GroResult::Merged);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), 20 + 32 + 140);
    }

    #[test]
    fn never_merges_different_options_or_ip_fields() {
        let pool = pool();
        let mut ts = seg(1, 100);
        ts.opts[11] = 10; // TSecr advanced: Linux compares every option byte
        let mut ttl = seg(1, 100);
        ttl.ttl = 63;
        let mut id = seg(1, 100);
        id.df = false;
        id.id = 100 + 5;
        let mut ack = seg(1, 100);
        ack.ack = 78;
        for (name, s) in [("options", ts), ("ttl", ttl), ("id/df", id), ("ack", ack)] {
            let mut g = gro(&pool);
            let (r, _) = run(&mut g, &pool, &[seg(0, 100), s]);
            assert_ne!(r[1], GroResult::Merged, "{name}");
        }
    }

    #[test]
    fn fixed_ip_id_with_df_merges_and_is_marked() {
        let pool = pool();
        let mut g = gro(&pool);
        let segs: Vec<Seg> = (0..3)
            .map(|i| Seg {
                id: 7,
                ..seg(i, 100)
            })
            .collect();
        let (r, mut out) = run(&mut g, &pool, &segs);
        assert_eq!(r[2], GroResult::Merged);
        g.napi_gro_flush(&mut out, false, 0);
        assert!(out[0].gso_type.contains(SkbGsoType::TCP_FIXEDID));
    }

    #[test]
    fn different_flows_are_held_apart() {
        let pool = pool();
        let mut g = gro(&pool);
        let b = |i| Seg {
            sport: 40001,
            ..seg(i, 100)
        };
        let (r, mut out) = run(&mut g, &pool, &[seg(0, 100), b(0), seg(1, 100), b(1)]);
        assert_eq!(
            r,
            [
                GroResult::Held,
                GroResult::Held,
                GroResult::Merged,
                GroResult::Merged
            ]
        );
        assert_eq!(g.held(), 2);
        g.napi_gro_flush(&mut out, false, 0);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|s| s.gso_segs == 2));
        let ports: Vec<u16> = out
            .iter()
            .map(|s| u16::from_be_bytes([s.data()[20], s.data()[21]]))
            .collect();
        assert_eq!(ports, [40000, 40001]);
    }

    #[test]
    fn a_non_tcp_packet_passes_the_held_ones_and_leaves_them_held() {
        let pool = pool();
        let mut g = gro(&pool);
        let udp = Seg {
            proto: 17,
            opts: vec![],
            ..seg(2, 8)
        };
        let (r, out) = run(&mut g, &pool, &[seg(0, 100), seg(1, 100), udp]);
        assert_eq!(r, [GroResult::Held, GroResult::Merged, GroResult::Normal]);
        assert_eq!(out.len(), 1, "only the UDP packet went up");
        assert_eq!(out[0].data()[9], 17);
        assert_eq!(g.held(), 1);
        let (r, _) = run(&mut g, &pool, &[seg(2, 100)]);
        assert_eq!(r, [GroResult::Merged], "the flow still merges");
    }

    #[test]
    fn a_tcp_segment_gro_cannot_take_flushes_its_hosts_held_packets_first() {
        let pool = pool();
        let mut g = gro(&pool);
        let bad = Seg {
            summed: IpSummed::None,
            ..seg(2, 100)
        };
        let mut bad_skb = frame(&pool, &bad);
        // Corrupt the TCP checksum: GRO must not merge it.
        bad_skb.data_mut().unwrap()[20 + 16] ^= 0xff;
        let (r, mut out) = run(&mut g, &pool, &[seg(0, 100), seg(1, 100)]);
        assert_eq!(r, [GroResult::Held, GroResult::Merged]);
        assert_eq!(g.napi_gro_receive(bad_skb, &mut out, 0), GroResult::Normal);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].gso_segs, 2, "the held packet went up first");
        assert_eq!(g.held(), 0);
    }

    /// With nothing held, a closing segment goes up as it is, whether GRO
    /// could have parsed it or not; with a packet held, a closing segment
    /// of its flow still closes the held packet (the full checks run).
    #[test]
    fn a_closing_segment_with_nothing_held_goes_up_unchanged() {
        let pool = pool();
        let mut g = gro(&pool);
        let mut psh = seg(0, 1);
        psh.flags |= TcpFlags::PSH;
        let mut bad = frame(
            &pool,
            &Seg {
                summed: IpSummed::None,
                ..psh.clone()
            },
        );
        bad.data_mut().unwrap()[20 + 16] ^= 0xff;
        let (r, mut out) = run(&mut g, &pool, &[psh.clone()]);
        assert_eq!(r, [GroResult::Normal]);
        assert_eq!(g.napi_gro_receive(bad, &mut out, 0), GroResult::Normal);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].gso_segs, 0, "passed up as it came");
        assert_eq!((g.stats.normal, g.stats.merged, g.stats.flushes), (2, 0, 0));
        let mut last = seg(1, 100);
        last.flags |= TcpFlags::PSH;
        let (r, out) = run(&mut g, &pool, &[seg(0, 100), last]);
        assert_eq!(r, [GroResult::Held, GroResult::Merged]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].gso_segs, 2);
        assert_eq!(g.held(), 0);
    }

    #[test]
    fn stays_below_64k() {
        let pool = pool();
        let mut g = gro(&pool);
        let segs: Vec<Seg> = (0..50).map(|i| seg(i, 1448)).collect();
        let (_, mut out) = run(&mut g, &pool, &segs);
        g.napi_gro_flush(&mut out, false, 0);
        assert_eq!(out.len(), 2);
        assert!(out[0].len() < GSO_MAX_SIZE);
        assert_eq!(out[0].gso_segs, 45);
        assert_eq!(out[1].gso_segs, 5);
    }

    #[test]
    fn a_full_bucket_flushes_its_oldest() {
        let pool = pool();
        let mut g = gro(&pool);
        let flows: Vec<Seg> = (0..9)
            .map(|f| Seg {
                sport: 1000 + f,
                ..seg(0, 100)
            })
            .collect();
        let (_, out) = run(&mut g, &pool, &flows);
        assert_eq!(out.len(), 1);
        assert_eq!(
            u16::from_be_bytes([out[0].data()[20], out[0].data()[21]]),
            1000
        );
        assert_eq!(g.held(), MAX_GRO_SKBS);
    }

    #[test]
    fn without_a_pool_gro_is_off_and_pure_acks_pass() {
        let pool = pool();
        let mut g = GroList::new();
        let (r, out) = run(&mut g, &pool, &[seg(0, 100), seg(1, 100)]);
        assert_eq!(r, [GroResult::Normal, GroResult::Normal]);
        assert_eq!(out.len(), 2);
        let mut g = gro(&pool);
        let (r, _) = run(&mut g, &pool, &[seg(0, 0)]);
        assert_eq!(r, [GroResult::Normal]);
    }

    #[test]
    fn flush_old_keeps_packets_of_this_jiffy() {
        let pool = pool();
        let mut g = gro(&pool);
        let mut out: Vec<SkBuff> = Vec::new();
        g.napi_gro_receive(frame(&pool, &seg(0, 100)), &mut out, 5);
        g.napi_gro_flush(&mut out, true, 5);
        assert!(out.is_empty());
        g.napi_gro_flush(&mut out, true, 6);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn napi_poll_flushes_old_packets_at_end_of_a_full_poll_and_all_on_complete() {
        use std::collections::VecDeque;

        use irq::{CpuWakeup, Softirqs};
        use netcore::Instant;

        use crate::{
            NapiPoll, NapiPollCtx, PollLists, napi_poll, napi_schedule_on, netif_napi_add,
        };

        struct Feed(VecDeque<SkBuff>);
        impl NapiPoll for Feed {
            fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
                let mut work = 0;
                while work < budget {
                    let Some(skb) = self.0.pop_front() else { break };
                    napi.napi_gro_receive(skb);
                    work += 1;
                }
                if work < budget {
                    napi.napi_complete_done(work);
                }
                work
            }
        }

        let pool = pool();
        let lists = PollLists::new(1).unwrap();
        let softirqs = Softirqs::new(1, CpuWakeup::new()).unwrap();
        let frames = (0..130).map(|i| frame(&pool, &seg(i, 100))).collect();
        let napi = netif_napi_add(&lists, 2, Feed(frames));
        napi.set_gro_pool(Some(pool.clone()));
        napi.napi_enable().unwrap();
        napi_schedule_on(&napi, 0, &softirqs).unwrap();
        let mut out: Vec<SkBuff> = Vec::new();
        let poll_at = |ms: u64, out: &mut Vec<SkBuff>| {
            let n = lists.cpu(0).unwrap().pop_front().unwrap();
            let r = napi_poll(&n, 0, &softirqs, out, Instant::from_millis(ms)).unwrap();
            if r.repoll {
                lists.cpu(0).unwrap().list_add_tail(n);
            }
            r
        };
        // Full weight in jiffy 0: the packet held in this jiffy stays held.
        assert!(poll_at(0, &mut out).repoll);
        assert!(out.is_empty());
        // Full weight in a later jiffy: the packet held since jiffy 0 goes up.
        assert!(poll_at(2, &mut out).repoll);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].gso_segs, 128);
        // Two left: the poll completes, which flushes everything.
        assert!(!poll_at(2, &mut out).repoll);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].gso_segs, 2);
        let st = napi.gro_stats();
        assert_eq!((st.held, st.merged, st.flushed, st.normal), (2, 128, 2, 0));
    }
}
