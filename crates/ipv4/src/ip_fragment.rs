//! IPv4 reassembly.
//!
//! Mirrors `net/ipv4/ip_fragment.c` (`ip_defrag()`, `ip_frag_queue()`,
//! `ip_frag_reasm()`, `ip_expire()`) and `net/ipv4/inet_fragment.c`
//! (`inet_frag_find()`, `inet_frag_queue_insert()`, `inet_frag_kill()`).
//!
//! ```text
//!  fragment ─▶ ip_defrag ─▶ queue (src,dst,id,proto) ─▶ complete? ─▶ one contiguous skb
//!                              │ ipfrag_time (30 s)
//!                              ▼
//!                          ip_expire ─▶ ReasmTimeout, ICMP time exceeded if offset 0 seen
//! ```
//!
//! # Deviations from Linux
//!
//! - `ipfrag_max_dist` (the per-peer distance check of `ip_frag_too_far()`)
//!   is not applied: it needs the inet_peer cache.
//! - Memory is the sum of the queued skbs' truesize plus the size of the
//!   queue structure; Linux charges the same way with its own sizes.
//! - The reassembled datagram is copied into one pool buffer (Linux chains
//!   the fragments as a frag list).

use std::collections::HashMap;
use std::net::Ipv4Addr;

use netcore::{
    DropReason, Duration, Instant, IpExtMib, IpMib, NET_SKB_PAD, NetMibs, PagePool, SkBuff, Sysctl,
    TimerContext, kfree_skb_reason,
};
use wire::{IP_DF, IP_MF, IP_OFFSET, Ipv4Packet};

use crate::timers::{FragId, Ipv4Timer};

/// What identifies the fragments of one datagram.
///
/// Mirrors `struct frag_v4_compare_key` (without the defrag user and vif).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub saddr: Ipv4Addr,
    /// Destination address.
    pub daddr: Ipv4Addr,
    /// Identification.
    pub id: u16,
    /// Protocol.
    pub protocol: u8,
}

/// The outcome of [`Ipv4Frags::ip_defrag`] or of an expiry.
#[derive(Debug)]
pub enum FragAction {
    /// The datagram is whole: one skb, IP header fixed up (`frag_off` 0 or
    /// DF, `tot_len`, checksum).
    Reassembled(SkBuff),
    /// The fragment was queued (`-EINPROGRESS`).
    Queued,
    /// The fragment was dropped (and possibly its queue with it).
    Dropped(DropReason),
    /// A queue expired after its first fragment had arrived: send ICMP
    /// time exceeded (fragment reassembly) about `head`, the offset-0
    /// fragment as received.
    TimeExceeded {
        /// The first fragment.
        head: SkBuff,
    },
}

#[derive(Debug)]
struct Frag {
    offset: usize,
    end: usize,
    ihl: usize,
    skb: SkBuff,
}

#[derive(Debug)]
struct Ipq {
    key: FragKey,
    /// Sorted by offset, never overlapping.
    frags: Vec<Frag>,
    len: usize,
    meat: usize,
    first_in: bool,
    last_in: bool,
    truesize: usize,
    max_size: usize,
    max_df_size: usize,
}

const IPQ_SIZE: usize = core::mem::size_of::<Ipq>();

enum Insert {
    Ok(usize),
    Dup,
    Overlap,
}

impl Ipq {
    /// Mirrors `inet_frag_queue_insert()`: a fragment inside an existing run
    /// of contiguous fragments is a duplicate; any other overlap poisons the
    /// datagram.
    fn insert_pos(&self, offset: usize, end: usize) -> Insert {
        let Some(last) = self.frags.last() else {
            return Insert::Ok(0);
        };
        if last.end < end {
            return if offset < last.end {
                Insert::Overlap
            } else {
                Insert::Ok(self.frags.len())
            };
        }
        // Walk the runs.
        let mut i = 0;
        while i < self.frags.len() {
            let start = self.frags[i].offset;
            let mut j = i;
            while j + 1 < self.frags.len() && self.frags[j + 1].offset == self.frags[j].end {
                j += 1;
            }
            let run_end = self.frags[j].end;
            if end <= start {
                return Insert::Ok(i);
            }
            if offset < run_end {
                return if offset >= start && end <= run_end {
                    Insert::Dup
                } else {
                    Insert::Overlap
                };
            }
            i = j + 1;
        }
        Insert::Ok(self.frags.len())
    }
}

/// The reassembly queues of one namespace.
///
/// Mirrors `struct fqdir` with its `ipq`s.
#[doc(alias = "fqdir")]
#[derive(Debug)]
pub struct Ipv4Frags {
    by_key: HashMap<FragKey, FragId>,
    queues: HashMap<FragId, Ipq>,
    next_id: u64,
    mem: usize,
    high_thresh: usize,
    timeout: Duration,
}

impl Ipv4Frags {
    /// Empty, with `ipfrag_high_thresh` and `ipfrag_time` from `sysctl`.
    pub fn new(sysctl: &Sysctl) -> Ipv4Frags {
        Ipv4Frags {
            by_key: HashMap::new(),
            queues: HashMap::new(),
            next_id: 1,
            mem: 0,
            high_thresh: usize::try_from(sysctl.get_int(Sysctl::IPFRAG_HIGH_THRESH)).unwrap_or(0),
            timeout: Duration::from_secs(
                u64::try_from(sysctl.get_int(Sysctl::IPFRAG_TIME)).unwrap_or(0),
            ),
        }
    }

    /// Bytes charged to the queues (`frag_mem_limit()`).
    pub fn mem(&self) -> usize {
        self.mem
    }

    /// Number of queues.
    pub fn nr_queues(&self) -> usize {
        self.queues.len()
    }

    /// Mirrors `inet_frag_kill()`: unhash, stop the timer, free.
    fn kill<T: TimerContext<Ipv4Timer>>(&mut self, timers: &mut T, id: FragId) -> Option<Ipq> {
        let q = self.queues.remove(&id)?;
        self.by_key.remove(&q.key);
        timers.cancel_timer(Ipv4Timer::FragExpire(id));
        self.mem -= q.truesize + IPQ_SIZE;
        Some(q)
    }

    /// Queues one fragment; returns the whole datagram when it is complete.
    ///
    /// Mirrors `ip_defrag()` → `ip_find()` → `ip_frag_queue()` →
    /// `ip_frag_reasm()`. `skb` starts at a validated IPv4 header of a
    /// fragment (MF set or a non-zero offset). Takes ownership of `skb`.
    ///
    /// Counters: `ReasmReqds` for every fragment; `ReasmFails` when the
    /// memory is above `ipfrag_high_thresh` (the fragment is refused), when
    /// a fragment contradicts the datagram's end, is empty, overlaps (also
    /// `ReasmOverlaps`; the whole queue is discarded), or when the datagram
    /// would exceed 65535 bytes; `ReasmOKs` on completion. An exact or
    /// contained duplicate is dropped (`DUP_FRAG`) and the queue kept.
    #[allow(clippy::too_many_arguments)]
    pub fn ip_defrag<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        now: Instant,
        mibs: &NetMibs,
        cpu: usize,
        pool: &PagePool,
        skb: SkBuff,
    ) -> FragAction {
        mibs.inc(cpu, IpMib::ReasmReqds);
        let Ok(p) = Ipv4Packet::new_checked(skb.data()) else {
            kfree_skb_reason(skb, DropReason::IpInhdr);
            return FragAction::Dropped(DropReason::IpInhdr);
        };
        let key = FragKey {
            saddr: p.src_addr(),
            daddr: p.dst_addr(),
            id: p.ident(),
            protocol: p.protocol().into(),
        };
        let frag_off = p.header().frag_off.get();
        let ihl = p.header_len();
        let plen = p.payload().len();
        let df = frag_off & IP_DF != 0;
        // inet_frag_find(): refuse above the high threshold.
        if self.high_thresh == 0 || self.mem > self.high_thresh {
            mibs.inc(cpu, IpMib::ReasmFails);
            kfree_skb_reason(skb, DropReason::NotSpecified);
            return FragAction::Dropped(DropReason::NotSpecified);
        }
        let id = if let Some(&id) = self.by_key.get(&key) {
            id
        } else {
            let id = FragId(self.next_id);
            self.next_id += 1;
            self.by_key.insert(key, id);
            self.queues.insert(
                id,
                Ipq {
                    key,
                    frags: Vec::new(),
                    len: 0,
                    meat: 0,
                    first_in: false,
                    last_in: false,
                    truesize: 0,
                    max_size: 0,
                    max_df_size: 0,
                },
            );
            self.mem += IPQ_SIZE;
            timers.arm_timer(Ipv4Timer::FragExpire(id), now + self.timeout);
            id
        };
        let offset = usize::from(frag_off & IP_OFFSET) << 3;
        let mut end = offset + plen;
        let q = self.queues.get_mut(&id).expect("just found or made");
        let corrupt = if frag_off & IP_MF == 0 {
            let bad = end < q.len || (q.last_in && end != q.len);
            if !bad {
                q.last_in = true;
                q.len = end;
            }
            bad
        } else {
            end &= !7;
            let bad = end > q.len && q.last_in;
            if !bad && end > q.len {
                q.len = end;
            }
            bad
        };
        if corrupt || end == offset {
            self.kill(timers, id);
            mibs.inc(cpu, IpMib::ReasmFails);
            kfree_skb_reason(skb, DropReason::NotSpecified);
            return FragAction::Dropped(DropReason::NotSpecified);
        }
        let at = match q.insert_pos(offset, end) {
            Insert::Ok(at) => at,
            Insert::Dup => {
                kfree_skb_reason(skb, DropReason::DupFrag);
                return FragAction::Dropped(DropReason::DupFrag);
            }
            Insert::Overlap => {
                self.kill(timers, id);
                mibs.inc(cpu, IpExtMib::ReasmOverlaps);
                mibs.inc(cpu, IpMib::ReasmFails);
                kfree_skb_reason(skb, DropReason::NotSpecified);
                return FragAction::Dropped(DropReason::NotSpecified);
            }
        };
        let truesize = skb.truesize();
        q.meat += end - offset;
        q.truesize += truesize;
        if offset == 0 {
            q.first_in = true;
        }
        let fragsize = end - offset + ihl;
        q.max_size = q.max_size.max(fragsize);
        if df && fragsize > q.max_df_size {
            q.max_df_size = fragsize;
        }
        q.frags.insert(
            at,
            Frag {
                offset,
                end,
                ihl,
                skb,
            },
        );
        self.mem += truesize;
        if !(q.first_in && q.last_in && q.meat == q.len) {
            return FragAction::Queued;
        }
        let q = self.kill(timers, id).expect("present");
        match ip_frag_reasm(&q, pool) {
            Ok(skb) => {
                mibs.inc(cpu, IpMib::ReasmOKs);
                FragAction::Reassembled(skb)
            }
            Err(reason) => {
                mibs.inc(cpu, IpMib::ReasmFails);
                FragAction::Dropped(reason)
            }
        }
    }

    /// Handles a fired [`Ipv4Timer::FragExpire`]; other timers give `None`.
    ///
    /// Mirrors `ip_expire()`: the queue is discarded and counted in
    /// `ReasmFails` and `ReasmTimeout`; if its first fragment had arrived,
    /// [`FragAction::TimeExceeded`] hands it back for the ICMP error.
    pub fn on_timer<T: TimerContext<Ipv4Timer>>(
        &mut self,
        timers: &mut T,
        mibs: &NetMibs,
        cpu: usize,
        timer: Ipv4Timer,
    ) -> Option<FragAction> {
        let Ipv4Timer::FragExpire(id) = timer else {
            return None;
        };
        let q = self.kill(timers, id)?;
        mibs.inc(cpu, IpMib::ReasmFails);
        mibs.inc(cpu, IpMib::ReasmTimeout);
        let mut frags = q.frags.into_iter();
        let head = q
            .first_in
            .then(|| frags.next())
            .flatten()
            .filter(|f| f.offset == 0);
        for f in frags {
            kfree_skb_reason(f.skb, DropReason::FragReasmTimeout);
        }
        Some(match head {
            Some(f) => FragAction::TimeExceeded { head: f.skb },
            None => FragAction::Dropped(DropReason::FragReasmTimeout),
        })
    }
}

/// Mirrors `ip_frag_reasm()`: one skb with the first fragment's header
/// (options included) and every payload in order.
fn ip_frag_reasm(q: &Ipq, pool: &PagePool) -> Result<SkBuff, DropReason> {
    let head = q.frags.first().ok_or(DropReason::NotSpecified)?;
    let ihl = head.ihl;
    let total = ihl + q.len;
    if total > 65535 {
        return Err(DropReason::NotSpecified);
    }
    let mut skb = SkBuff::alloc(pool, NET_SKB_PAD + total).map_err(|_| DropReason::Nomem)?;
    skb.reserve(NET_SKB_PAD).map_err(|_| DropReason::Nomem)?;
    skb.put_data(&head.skb.data()[..ihl])
        .map_err(|_| DropReason::Nomem)?;
    for f in &q.frags {
        let data = &f.skb.data()[f.ihl..f.ihl + (f.end - f.offset)];
        skb.put_data(data).map_err(|_| DropReason::Nomem)?;
    }
    skb.reset_network_header();
    skb.protocol = head.skb.protocol;
    skb.ifindex = head.skb.ifindex;
    skb.pkt_type = head.skb.pkt_type;
    skb.tstamp = head.skb.tstamp;
    let df = q.max_df_size == q.max_size;
    let bytes = skb.data_mut().map_err(|_| DropReason::Nomem)?;
    let mut p = Ipv4Packet::new_checked(&mut bytes[..]).map_err(|_| DropReason::IpInhdr)?;
    p.header_mut().tot_len = (total as u16).into();
    p.header_mut().frag_off = if df { IP_DF } else { 0 }.into();
    p.fill_checksum();
    Ok(skb)
}

#[cfg(test)]
mod tests;
