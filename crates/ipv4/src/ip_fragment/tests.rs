use netcore::testutil::FakeTimers;
use netcore::{
    Duration, Instant, IpExtMib, IpMib, NetMibs, PagePool, PagePoolParams, SkBuff, Sysctl,
};
use wire::{IpProtocol, Ipv4Packet, Ipv4Repr};

use super::*;
use crate::ip_do_fragment;

fn pool() -> PagePool {
    PagePool::new(PagePoolParams::default()).unwrap()
}

/// A fragment of datagram `ident`: payload bytes `off..off+len` of a
/// pattern, MF as given.
fn frag(pool: &PagePool, ident: u16, off: usize, len: usize, mf: bool) -> SkBuff {
    let repr = Ipv4Repr {
        src_addr: "198.18.0.2".parse().unwrap(),
        dst_addr: "198.18.0.1".parse().unwrap(),
        protocol: IpProtocol::Udp,
        ttl: 64,
        tos: 0,
        ident,
        dont_frag: false,
        more_frags: mf,
        frag_offset: off as u16,
        options: heapless::Vec::new(),
        payload_len: len,
    };
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    for (i, x) in b[20..].iter_mut().enumerate() {
        *x = ((off + i) % 251) as u8;
    }
    SkBuff::from_slice(pool, 64, &b).unwrap()
}

struct Env {
    pool: PagePool,
    timers: FakeTimers<Ipv4Timer>,
    mibs: NetMibs,
    frags: Ipv4Frags,
    now: Instant,
}

impl Env {
    fn new() -> Env {
        Env {
            pool: pool(),
            timers: FakeTimers::new(),
            mibs: NetMibs::new(1),
            frags: Ipv4Frags::new(&Sysctl::new()),
            now: Instant::from_secs(1),
        }
    }
    fn feed(&mut self, skb: SkBuff) -> FragAction {
        self.frags
            .ip_defrag(&mut self.timers, self.now, &self.mibs, 0, &self.pool, skb)
    }
    fn put(&mut self, ident: u16, off: usize, len: usize, mf: bool) -> FragAction {
        let skb = frag(&self.pool, ident, off, len, mf);
        self.feed(skb)
    }
    fn count(&self, f: impl netcore::MibField) -> u64 {
        self.mibs.get(f)
    }
}

#[track_caller]
fn whole(a: FragAction, len: usize) -> SkBuff {
    let FragAction::Reassembled(skb) = a else {
        panic!("expected a reassembled datagram, got {a:?}")
    };
    let p = Ipv4Packet::new_verified(skb.data()).unwrap();
    assert_eq!(
        (p.total_len() as usize, p.frag_offset(), p.more_frags()),
        (20 + len, 0, false)
    );
    for (i, &x) in p.payload().iter().enumerate() {
        assert_eq!(x, (i % 251) as u8, "byte {i}");
    }
    skb
}

#[test]
fn in_order_and_out_of_order() {
    let mut e = Env::new();
    assert!(matches!(e.put(1, 0, 16, true), FragAction::Queued));
    assert!(matches!(e.put(1, 16, 16, true), FragAction::Queued));
    whole(e.put(1, 32, 5, false), 37);
    assert!(matches!(e.put(2, 32, 5, false), FragAction::Queued));
    assert!(matches!(e.put(2, 0, 16, true), FragAction::Queued));
    whole(e.put(2, 16, 16, true), 37);
    assert_eq!(
        (
            e.count(IpMib::ReasmReqds),
            e.count(IpMib::ReasmOKs),
            e.count(IpMib::ReasmFails)
        ),
        (6, 2, 0)
    );
    assert_eq!((e.frags.nr_queues(), e.frags.mem()), (0, 0));
    e.timers.assert_no_timers_installed();
}

#[test]
fn duplicates_are_dropped_and_the_queue_kept() {
    let mut e = Env::new();
    e.put(3, 0, 16, true);
    e.put(3, 16, 16, true);
    // An exact duplicate, and one inside the contiguous run 0..32.
    assert!(matches!(
        e.put(3, 16, 16, true),
        FragAction::Dropped(DropReason::DupFrag)
    ));
    assert!(matches!(
        e.put(3, 8, 8, true),
        FragAction::Dropped(DropReason::DupFrag)
    ));
    whole(e.put(3, 32, 8, false), 40);
    assert_eq!(e.count(IpMib::ReasmFails), 0);
}

#[test]
fn any_overlap_discards_the_datagram() {
    let mut e = Env::new();
    e.put(4, 0, 16, true);
    e.put(4, 32, 8, false);
    // Straddles the end of the first run.
    assert!(matches!(e.put(4, 8, 16, true), FragAction::Dropped(_)));
    assert_eq!(
        (e.count(IpExtMib::ReasmOverlaps), e.count(IpMib::ReasmFails)),
        (1, 1)
    );
    assert_eq!(e.frags.nr_queues(), 0);
    e.timers.assert_no_timers_installed();
    // The rest of the datagram now starts a fresh queue that never completes.
    assert!(matches!(e.put(4, 16, 16, true), FragAction::Queued));
    // Two different ends contradict each other.
    e.put(5, 0, 8, true);
    e.put(5, 16, 8, false);
    assert!(matches!(e.put(5, 16, 16, false), FragAction::Dropped(_)));
    assert_eq!(e.count(IpMib::ReasmFails), 2);
}

#[test]
fn timeout_sends_time_exceeded_only_when_the_first_fragment_came() {
    let mut e = Env::new();
    e.timers.advance_to(e.now);
    e.put(6, 0, 16, true);
    let now = e.now;
    e.put(7, 16, 16, false);
    e.timers.assert_timers_installed([
        (
            Ipv4Timer::FragExpire(FragId(1)),
            now + Duration::from_secs(30),
        ),
        (
            Ipv4Timer::FragExpire(FragId(2)),
            now + Duration::from_secs(30),
        ),
    ]);
    let mut results = Vec::new();
    while let Some(t) = e.timers.trigger_next() {
        results.push(e.frags.on_timer(&mut e.timers, &e.mibs, 0, t).unwrap());
    }
    assert!(
        matches!(&results[0], FragAction::TimeExceeded { head } if Ipv4Packet::new_checked(head.data()).unwrap().ident() == 6)
    );
    assert!(matches!(
        &results[1],
        FragAction::Dropped(DropReason::FragReasmTimeout)
    ));
    assert_eq!(
        (e.count(IpMib::ReasmTimeout), e.count(IpMib::ReasmFails)),
        (2, 2)
    );
    assert_eq!(e.frags.mem(), 0);
}

#[test]
fn memory_above_high_thresh_refuses_fragments() {
    let mut e = Env::new();
    let sysctl = Sysctl::new();
    sysctl.set_int(Sysctl::IPFRAG_HIGH_THRESH, 20_000).unwrap();
    e.frags = Ipv4Frags::new(&sysctl);
    let mut ident = 100;
    while e.frags.mem() <= 20_000 {
        assert!(matches!(e.put(ident, 0, 8, true), FragAction::Queued));
        ident += 1;
    }
    let fails = e.count(IpMib::ReasmFails);
    // Even the missing piece of an existing queue is refused now.
    assert!(matches!(e.put(100, 8, 8, false), FragAction::Dropped(_)));
    assert_eq!(e.count(IpMib::ReasmFails), fails + 1);
}

#[test]
fn oversize_datagram_is_refused() {
    let mut e = Env::new();
    // Ping of death: the last fragment ends past 65535 - 20.
    e.put(9, 0, 1480, true);
    let mut off = 1480;
    while off + 1480 < 65528 {
        let _ = e.put(9, off, 1480, true);
        off += 1480;
    }
    let a = e.put(9, off, 65528 - off + 8, false);
    assert!(matches!(a, FragAction::Dropped(_)), "{a:?}");
    assert_eq!(e.count(IpMib::ReasmFails), 1);
    assert_eq!(e.count(IpMib::ReasmOKs), 0);
}

#[test]
fn our_own_fragments_reassemble_to_the_original_in_any_order() {
    let mut e = Env::new();
    let orig = frag(&e.pool, 77, 0, 4000, false);
    let orig_bytes = orig.data().to_vec();
    let mut pieces = ip_do_fragment(orig, 1500, &e.pool, &e.mibs, 0).unwrap();
    assert_eq!(pieces.len(), 3);
    pieces.swap(0, 2);
    let mut out = None;
    for p in pieces {
        if let FragAction::Reassembled(skb) = e.feed(p) {
            out = Some(skb);
        }
    }
    assert_eq!(out.unwrap().data(), &orig_bytes[..]);
}
