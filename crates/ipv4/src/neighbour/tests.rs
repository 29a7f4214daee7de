use std::net::Ipv4Addr;

use netcore::testutil::FakeTimers;
use netcore::{Duration, Instant, PagePool, PagePoolParams, SkBuff};
use wire::{EthernetAddress, IpProtocol, Ipv4Repr};

use super::*;

const ETH0: u32 = 2;
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const ME: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER_HA: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

fn pool() -> PagePool {
    PagePool::new(PagePoolParams::default()).unwrap()
}

fn datagram(pool: &PagePool, src: Ipv4Addr, payload: usize) -> SkBuff {
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: PEER,
        protocol: IpProtocol::Udp,
        ttl: 64,
        tos: 0,
        ident: 1,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        options: heapless::Vec::new(),
        payload_len: payload,
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut bytes).unwrap();
    SkBuff::from_slice(pool, 64, &bytes).unwrap()
}

fn table(t0: Instant) -> NeighTable {
    NeighTable::new(NeighParms::default(), 42, t0)
}

fn solicits(out: &[NeighAction]) -> Vec<(u32, Option<Ipv4Addr>)> {
    out.iter()
        .filter_map(|a| match a {
            NeighAction::Solicit {
                probes, saddr_hint, ..
            } => Some((*probes, *saddr_hint)),
            _ => None,
        })
        .collect()
}

fn outputs(out: &[NeighAction]) -> usize {
    out.iter()
        .filter(|a| matches!(a, NeighAction::Output { ha, .. } if *ha == PEER_HA))
        .count()
}

fn state(t: &NeighTable) -> NudState {
    t.peek(ETH0, PEER).unwrap().nud_state
}

#[test]
fn reachable_time_is_randomised_in_half_to_one_and_a_half_base() {
    let mut rng = Prandom::new(7);
    let base = Duration::from_secs(30);
    let draws: Vec<Duration> = (0..1000)
        .map(|_| neigh_rand_reach_time(&mut rng, base))
        .collect();
    assert!(draws.iter().all(|d| *d >= base / 2 && *d < base * 3 / 2));
    assert!(draws.iter().any(|d| *d < base) && draws.iter().any(|d| *d > base));
    // Same seed, same draws.
    let mut again = Prandom::new(7);
    assert_eq!(neigh_rand_reach_time(&mut again, base), draws[0]);
}

#[test]
fn resolution_queues_then_releases_every_packet() {
    let pool = pool();
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(100);
    timers.advance_to(t0);
    let mut t = table(t0);
    let mut out = Vec::new();
    t.neigh_resolve_output(
        &mut timers,
        t0,
        ETH0,
        PEER,
        datagram(&pool, ME, 10),
        &mut out,
    )
    .unwrap();
    // INCOMPLETE, one broadcast probe (probes starts at ucast_solicit = 3),
    // the retransmit timer one second out.
    assert_eq!(state(&t), NudState::INCOMPLETE);
    assert_eq!(solicits(&out), [(3, Some(ME))]);
    let id = t.peek(ETH0, PEER).unwrap().id;
    timers.assert_timers_installed([(Ipv4Timer::NeighTimer(id), t0 + Duration::from_secs(1))]);
    out.clear();
    t.neigh_resolve_output(
        &mut timers,
        t0,
        ETH0,
        PEER,
        datagram(&pool, ME, 20),
        &mut out,
    )
    .unwrap();
    assert!(out.is_empty(), "a second packet only queues");
    assert_eq!(t.peek(ETH0, PEER).unwrap().arp_queue_len(), 2);

    // The reply: REACHABLE, both packets leave, in order.
    let t1 = t0 + Duration::from_millis(3);
    t.neigh_update(
        &mut timers,
        t1,
        id,
        Some(PEER_HA),
        NudState::REACHABLE,
        NeighUpdateFlags::OVERRIDE,
        &mut out,
    )
    .unwrap();
    assert_eq!(state(&t), NudState::REACHABLE);
    let lens: Vec<usize> = out
        .iter()
        .map(|a| match a {
            NeighAction::Output { skb, ha, .. } => {
                assert_eq!(*ha, PEER_HA);
                skb.len()
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(lens, [30, 40]);
    assert_eq!(t.peek(ETH0, PEER).unwrap().arp_queue_len_bytes(), 0);
    timers.assert_timers_installed([(Ipv4Timer::NeighTimer(id), t1 + t.reachable_time())]);
    out.clear();
    // Once resolved, packets go straight out.
    t.neigh_resolve_output(
        &mut timers,
        t1,
        ETH0,
        PEER,
        datagram(&pool, ME, 1),
        &mut out,
    )
    .unwrap();
    assert_eq!(outputs(&out), 1);
}

#[test]
fn every_state_with_exact_timers() {
    let pool = pool();
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(100);
    timers.advance_to(t0);
    let mut t = table(t0);
    let rt = t.reachable_time();
    let mut out = Vec::new();
    let id = t
        .neigh_event_ns(&mut timers, t0, ETH0, PEER, PEER_HA, &mut out)
        .unwrap();
    // A request for us creates the sender's entry STALE, no timer.
    assert_eq!(state(&t), NudState::STALE);
    timers.assert_no_timers_installed();
    // Use while STALE: DELAY, the packet leaves at once, delay_first_probe_time armed.
    t.neigh_resolve_output(
        &mut timers,
        t0,
        ETH0,
        PEER,
        datagram(&pool, ME, 1),
        &mut out,
    )
    .unwrap();
    assert_eq!((state(&t), outputs(&out)), (NudState::DELAY, 1));
    timers.assert_timers_installed([(Ipv4Timer::NeighTimer(id), t0 + Duration::from_secs(5))]);
    // An upper-layer confirmation during DELAY: back to REACHABLE at expiry.
    t.neigh_confirm(t0 + Duration::from_secs(2), ETH0, PEER);
    let fired = timers.trigger_next().unwrap();
    let now = timers.now();
    t.on_timer(&mut timers, now, fired, &mut out);
    assert_eq!(state(&t), NudState::REACHABLE);
    let confirmed = t0 + Duration::from_secs(2);
    timers.assert_timers_installed([(Ipv4Timer::NeighTimer(id), confirmed + rt)]);
    // At exactly confirmed + reachable_time the entry is still alive
    // (time_before_eq) and the timer is pushed HZ/100 out; then it expires
    // unused: STALE, no timer.
    let fired = timers.trigger_next().unwrap();
    let now = timers.now();
    t.on_timer(&mut timers, now, fired, &mut out);
    assert_eq!(state(&t), NudState::REACHABLE);
    timers.assert_timers_installed([(Ipv4Timer::NeighTimer(id), now + Duration::from_millis(10))]);
    let fired = timers.trigger_next().unwrap();
    let now = timers.now();
    t.on_timer(&mut timers, now, fired, &mut out);
    assert_eq!(state(&t), NudState::STALE);
    timers.assert_no_timers_installed();
    // Used again: DELAY; no confirmation in 5 s: PROBE with unicast probes.
    out.clear();
    let t2 = timers.now() + Duration::from_secs(1);
    timers.advance_to(t2);
    t.neigh_resolve_output(
        &mut timers,
        t2,
        ETH0,
        PEER,
        datagram(&pool, ME, 1),
        &mut out,
    )
    .unwrap();
    assert_eq!(state(&t), NudState::DELAY);
    out.clear();
    let fired = timers.trigger_next().unwrap();
    assert_eq!(timers.now(), t2 + Duration::from_secs(5));
    let now = timers.now();
    t.on_timer(&mut timers, now, fired, &mut out);
    assert_eq!(state(&t), NudState::PROBE);
    timers.assert_timers_installed([(Ipv4Timer::NeighTimer(id), t2 + Duration::from_secs(6))]);
    // Three unicast probes (probes 0, 1, 2 < ucast_solicit), one second apart…
    for _ in 0..2 {
        let fired = timers.trigger_next().unwrap();
        let now = timers.now();
        t.on_timer(&mut timers, now, fired, &mut out);
        assert_eq!(state(&t), NudState::PROBE);
    }
    assert_eq!(
        solicits(&out).iter().map(|s| s.0).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // … then FAILED.
    let fired = timers.trigger_next().unwrap();
    let now = timers.now();
    t.on_timer(&mut timers, now, fired, &mut out);
    assert_eq!(state(&t), NudState::FAILED);
    assert_eq!(timers.now(), t2 + Duration::from_secs(8));
    timers.assert_no_timers_installed();
    assert_eq!(t.stats().res_failed, 1);
    // FAILED and used again: INCOMPLETE with broadcast probes.
    out.clear();
    let now = timers.now();
    t.neigh_resolve_output(
        &mut timers,
        now,
        ETH0,
        PEER,
        datagram(&pool, ME, 1),
        &mut out,
    )
    .unwrap();
    assert_eq!(state(&t), NudState::INCOMPLETE);
    assert_eq!(solicits(&out), [(3, Some(ME))]);
    // A permanent entry ignores ARP but not the administrator; NOARP likewise.
    t.neigh_add_permanent(&mut timers, now, ETH0, PEER, PEER_HA, &mut out)
        .unwrap();
    assert_eq!(state(&t), NudState::PERMANENT);
    timers.assert_no_timers_installed();
    assert_eq!(
        t.neigh_update(
            &mut timers,
            now,
            id,
            Some(EthernetAddress([2, 0, 0, 0, 0, 9])),
            NudState::REACHABLE,
            NeighUpdateFlags::OVERRIDE,
            &mut out
        ),
        Err(Errno::Perm)
    );
    t.neigh_update(
        &mut timers,
        now,
        id,
        None,
        NudState::NOARP,
        NeighUpdateFlags::ADMIN,
        &mut out,
    )
    .unwrap();
    assert_eq!(state(&t), NudState::NOARP);
}

#[test]
fn reachable_entry_used_recently_goes_to_delay() {
    let pool = pool();
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(100);
    timers.advance_to(t0);
    let mut t = table(t0);
    let rt = t.reachable_time();
    let mut out = Vec::new();
    let id = t.neigh_create(&mut timers, t0, ETH0, PEER, false).unwrap();
    t.neigh_update(
        &mut timers,
        t0,
        id,
        Some(PEER_HA),
        NudState::REACHABLE,
        NeighUpdateFlags::OVERRIDE,
        &mut out,
    )
    .unwrap();
    let late = (t0 + rt).checked_sub(Duration::from_secs(1)).unwrap();
    timers.advance_to(late);
    t.neigh_resolve_output(
        &mut timers,
        late,
        ETH0,
        PEER,
        datagram(&pool, ME, 1),
        &mut out,
    )
    .unwrap();
    for _ in 0..2 {
        let fired = timers.trigger_next().unwrap();
        let now = timers.now();
        t.on_timer(&mut timers, now, fired, &mut out);
    }
    assert_eq!(state(&t), NudState::DELAY);
    let fired_at = t0 + rt + Duration::from_millis(10);
    timers
        .assert_timers_installed([(Ipv4Timer::NeighTimer(id), fired_at + Duration::from_secs(5))]);
}

#[test]
fn failure_reports_each_queued_packet_unreachable() {
    let pool = pool();
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(100);
    timers.advance_to(t0);
    let mut t = table(t0);
    let mut out = Vec::new();
    for n in 0..3 {
        t.neigh_resolve_output(
            &mut timers,
            t0,
            ETH0,
            PEER,
            datagram(&pool, ME, n),
            &mut out,
        )
        .unwrap();
    }
    // Two more broadcast probes at +1 s and +2 s, FAILED at +3 s.
    let mut times = Vec::new();
    while let Some(fired) = timers.trigger_next() {
        times.push(timers.now());
        let now = timers.now();
        t.on_timer(&mut timers, now, fired, &mut out);
    }
    assert_eq!(times, [1, 2, 3].map(|s| t0 + Duration::from_secs(s)));
    assert_eq!(
        solicits(&out).iter().map(|s| s.0).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    let unreach: Vec<usize> = out
        .iter()
        .filter_map(|a| match a {
            NeighAction::HostUnreachable { skb } => Some(skb.len()),
            _ => None,
        })
        .collect();
    assert_eq!(unreach, [20, 21, 22]);
    assert_eq!(state(&t), NudState::FAILED);
    assert_eq!(t.stats().res_failed, 1);
}

#[test]
fn unresolved_queue_is_bounded_in_bytes_oldest_dropped() {
    let pool = pool();
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(1);
    timers.advance_to(t0);
    let mut t = table(t0);
    let mut out = Vec::new();
    let one = datagram(&pool, ME, 1000).truesize();
    let fit = t.parms().queue_len_bytes / one;
    for _ in 0..fit + 3 {
        t.neigh_resolve_output(
            &mut timers,
            t0,
            ETH0,
            PEER,
            datagram(&pool, ME, 1000),
            &mut out,
        )
        .unwrap();
    }
    let n = t.peek(ETH0, PEER).unwrap();
    assert_eq!(n.arp_queue_len(), fit);
    assert!(n.arp_queue_len_bytes() <= 212_992);
    assert_eq!(t.stats().unresolved_discards, 3);
}

#[test]
fn gc_thresholds_refuse_then_reclaim() {
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(100);
    timers.advance_to(t0);
    let parms = NeighParms {
        gc_thresh1: 2,
        gc_thresh2: 3,
        gc_thresh3: 4,
        ..NeighParms::default()
    };
    let mut t = NeighTable::new(parms, 1, t0);
    let mut out = Vec::new();
    let ip = |i: u8| Ipv4Addr::new(198, 18, 1, i);
    for i in 0..4 {
        t.neigh_event_ns(&mut timers, t0, ETH0, ip(i), PEER_HA, &mut out)
            .unwrap();
    }
    // At gc_thresh3 with every entry fresh (updated < 5 s ago): refused.
    assert_eq!(
        t.neigh_create(&mut timers, t0, ETH0, ip(9), false),
        Err(Errno::NoBufs)
    );
    assert_eq!(t.stats().table_fulls, 1);
    assert_eq!(t.stats().forced_gc_runs, 1);
    // Permanent entries are exempt.
    t.neigh_add_permanent(&mut timers, t0, ETH0, ip(50), PEER_HA, &mut out)
        .unwrap();
    // Six seconds later the oldest idle entry is reclaimed to make room.
    let t1 = t0 + Duration::from_secs(6);
    t.neigh_create(&mut timers, t1, ETH0, ip(9), false).unwrap();
    assert_eq!(t.stats().forced_gc_runs, 2);
    assert!(t.peek(ETH0, ip(0)).is_none(), "oldest entry reclaimed");
    assert!(t.peek(ETH0, ip(1)).is_some());
    assert_eq!(t.stats().destroys, 1);
    // Periodic GC: above gc_thresh1, entries unused for gc_stale_time go.
    t.start_gc(&mut timers, t1);
    timers.assert_timers_installed([(Ipv4Timer::NeighGc, t1 + Duration::from_secs(15))]);
    let late = t1 + Duration::from_secs(61);
    while timers
        .scheduled(Ipv4Timer::NeighGc)
        .is_some_and(|at| at <= late)
    {
        let fired = timers.trigger_next().unwrap();
        let now = timers.now();
        t.on_timer(&mut timers, now, fired, &mut out);
    }
    assert_eq!(t.stats().periodic_gc_runs, 4);
    assert!(t.peek(ETH0, ip(1)).is_none());
    assert!(t.peek(ETH0, ip(50)).is_some(), "permanent entries stay");
}

#[test]
fn ip_neigh_show_lines() {
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(1);
    let mut t = table(t0);
    let mut out = Vec::new();
    let id = t.neigh_create(&mut timers, t0, ETH0, PEER, false).unwrap();
    t.neigh_update(
        &mut timers,
        t0,
        id,
        Some(PEER_HA),
        NudState::REACHABLE,
        NeighUpdateFlags::OVERRIDE,
        &mut out,
    )
    .unwrap();
    let pool = pool();
    t.neigh_resolve_output(
        &mut timers,
        t0,
        ETH0,
        Ipv4Addr::new(198, 18, 0, 3),
        datagram(&pool, ME, 1),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        t.ip_neigh_show(|i| if i == ETH0 {
            "eth0".into()
        } else {
            i.to_string()
        }),
        "198.18.0.2 dev eth0 lladdr 02:00:00:00:00:02 REACHABLE\n\
         198.18.0.3 dev eth0 INCOMPLETE\n"
    );
}

#[test]
fn output_ha_sends_at_once_only_from_connected_delay_and_probe() {
    let pool = pool();
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(100);
    timers.advance_to(t0);
    let mut t = table(t0);
    let mut out = Vec::new();
    // No entry: the caller must resolve.
    assert_eq!(t.neigh_output_ha(ETH0, PEER, t0), None);
    let id = t.neigh_create(&mut timers, t0, ETH0, PEER, false).unwrap();
    // Learned from the peer's request: STALE, which must go through
    // neigh_resolve_output() (and so to DELAY).
    t.neigh_update(
        &mut timers,
        t0,
        id,
        Some(PEER_HA),
        NudState::STALE,
        NeighUpdateFlags::OVERRIDE,
        &mut out,
    )
    .unwrap();
    assert_eq!(t.neigh_output_ha(ETH0, PEER, t0), None);
    let t1 = t0 + Duration::from_millis(3);
    t.neigh_resolve_output(
        &mut timers,
        t1,
        ETH0,
        PEER,
        datagram(&pool, ME, 1),
        &mut out,
    )
    .unwrap();
    assert_eq!(state(&t), NudState::DELAY);
    assert_eq!(outputs(&out), 1);
    // DELAY: sent at once, `used` stamped, no state change, no new timer.
    let t2 = t1 + Duration::from_millis(7);
    assert_eq!(t.neigh_output_ha(ETH0, PEER, t2), Some(PEER_HA));
    assert_eq!(t.peek(ETH0, PEER).unwrap().used, t2);
    assert_eq!(state(&t), NudState::DELAY);
    timers.assert_timers_installed([(
        Ipv4Timer::NeighTimer(id),
        t1 + NeighParms::default().delay_probe_time,
    )]);
    // REACHABLE: the address as is, `used` untouched (neigh_hh_output()).
    t.neigh_update(
        &mut timers,
        t2,
        id,
        Some(PEER_HA),
        NudState::REACHABLE,
        NeighUpdateFlags::OVERRIDE,
        &mut out,
    )
    .unwrap();
    let t3 = t2 + Duration::from_millis(5);
    assert_eq!(t.neigh_output_ha(ETH0, PEER, t3), Some(PEER_HA));
    assert_eq!(t.peek(ETH0, PEER).unwrap().used, t2);
    // Another interface's entry is not this one.
    assert_eq!(t.neigh_output_ha(ETH0 + 1, PEER, t3), None);
}

#[test]
fn a_hint_sends_as_the_lookup_until_the_table_changes() {
    let mut timers = FakeTimers::new();
    let t0 = Instant::from_secs(100);
    timers.advance_to(t0);
    let mut t = table(t0);
    let mut out = Vec::new();
    assert_eq!(t.neigh_hint(ETH0, PEER), None);
    let id = t.neigh_create(&mut timers, t0, ETH0, PEER, false).unwrap();
    // NONE and INCOMPLETE do not send at once: no hint.
    assert_eq!(t.neigh_hint(ETH0, PEER), None);
    t.neigh_update(
        &mut timers,
        t0,
        id,
        Some(PEER_HA),
        NudState::REACHABLE,
        NeighUpdateFlags::OVERRIDE,
        &mut out,
    )
    .unwrap();
    let h = t.neigh_hint(ETH0, PEER).unwrap();
    assert!(h.connected);
    assert_eq!(h.genid, t.genid());
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(t.neigh_hint_output(&h, ETH0, PEER, t1), Some(PEER_HA));
    // Not for another next hop or device.
    assert_eq!(t.neigh_hint_output(&h, ETH0, ME, t1), None);
    assert_eq!(t.neigh_hint_output(&h, ETH0 + 1, PEER, t1), None);
    // A CONNECTED entry's output leaves `used` alone, as the lookup does.
    assert_eq!(t.peek(ETH0, PEER).unwrap().used, t0);
    // A new address (or any state change) ends the hint.
    let other = EthernetAddress([2, 0, 0, 0, 0, 9]);
    t.neigh_update(
        &mut timers,
        t1,
        id,
        Some(other),
        NudState::REACHABLE,
        NeighUpdateFlags::OVERRIDE,
        &mut out,
    )
    .unwrap();
    assert_eq!(t.neigh_hint_output(&h, ETH0, PEER, t1), None);
    assert_eq!(t.neigh_output_ha(ETH0, PEER, t1), Some(other));
    // A DELAY entry's hint stamps `used` as neigh_output_ha() does.
    t.neigh_update(
        &mut timers,
        t1,
        id,
        Some(other),
        NudState::DELAY,
        NeighUpdateFlags::OVERRIDE | NeighUpdateFlags::ADMIN,
        &mut out,
    )
    .unwrap();
    let h = t.neigh_hint(ETH0, PEER).unwrap();
    assert!(!h.connected);
    let t2 = t1 + Duration::from_secs(1);
    assert_eq!(t.neigh_hint_output(&h, ETH0, PEER, t2), Some(other));
    assert_eq!(t.peek(ETH0, PEER).unwrap().used, t2);
    // Removal ends it too.
    t.neigh_delete(&mut timers, ETH0, PEER).unwrap();
    assert_eq!(t.neigh_hint_output(&h, ETH0, PEER, t2), None);
}
