//! Loss recovery in virtual time: RACK's reordering window adapting to a
//! path that reorders by three segments, a spurious retransmission
//! timeout undone (Eifel with timestamps, F-RTO without), and one loss
//! repaired by RACK's reordering timer instead of the RTO. Each test
//! samples `TCP_INFO` (cwnd, ssthresh, ca_state, reordering) over time.

use std::cell::RefCell;
use std::rc::Rc;

use netcore::{Duration, Instant, LinuxMib, TcpMib};
use tcp::testutil::{Bottleneck, Net};
use tcp::{TcpContext, TcpInfo, TcpSocket};
use wire::TcpRepr;

/// The byte every test writes, so a segment can be rebuilt from its header.
const FILL: u8 = 0x5a;
const CA_OPEN: u8 = 0;
const CA_RECOVERY: u8 = 3;
const CA_LOSS: u8 = 4;

/// A `TCP_INFO` sample of the sender.
#[derive(Clone, Copy, Debug)]
struct Sample {
    ms: u64,
    cwnd: u32,
    ssthresh: u32,
    ca_state: u8,
    reordering: u32,
    total_retrans: u32,
}

/// Two hosts 10 ms apart (20 ms RTT), buffers sized so the window, not
/// the application, limits the flow.
fn net(seed: u64, timestamps: bool) -> Net {
    let mut net = Net::with_seed(2, seed);
    net.delay = Duration::from_millis(10);
    net.logging = false;
    for h in &net.hosts {
        let s = h.ctx.sysctl();
        s.set("net.ipv4.tcp_wmem", "4096 262144 262144").unwrap();
        s.set("net.ipv4.tcp_rmem", "4096 1048576 1048576").unwrap();
        s.set(
            "net.ipv4.tcp_timestamps",
            if timestamps { "1" } else { "0" },
        )
        .unwrap();
    }
    net
}

fn info(net: &Net, c: &TcpSocket) -> TcpInfo {
    net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, c)
}

fn sample(net: &Net, c: &TcpSocket, start: Instant) -> Sample {
    let i = info(net, c);
    Sample {
        ms: net.now().saturating_duration_since(start).as_millis() as u64,
        cwnd: i.snd_cwnd,
        ssthresh: i.snd_ssthresh,
        ca_state: i.ca_state,
        reordering: i.reordering,
        total_retrans: i.total_retrans,
    }
}

/// Keeps host 0's send buffer full and drains host 1, checking every byte.
fn pump(net: &mut Net, c: &TcpSocket, s: &TcpSocket, received: &mut u64) {
    let chunk = vec![FILL; 16 * 1024];
    while net.send(0, c, &chunk).is_ok_and(|n| n > 0) {}
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = net.recv(1, s, &mut buf) {
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == FILL), "data corrupted");
        *received += n as u64;
    }
}

/// Segments held back by the wire's filter, released by the test loop.
#[derive(Default)]
struct Held {
    /// Held segments with how many data segments went out after them.
    segs: Vec<(TcpRepr, u32)>,
    /// The test is re-injecting: let everything through.
    injecting: bool,
    /// Data segments host 0 sent.
    data_segs: u64,
    /// Segments held so far.
    events: u32,
}

fn reinject(net: &mut Net, held: &Rc<RefCell<Held>>, from: usize, to: usize, repr: &TcpRepr) {
    let payload = vec![FILL; repr.payload_len];
    held.borrow_mut().injecting = true;
    let src = net.addr(from);
    net.inject(src, to, repr, &payload);
    held.borrow_mut().injecting = false;
}

/// What a run over a path that reorders by three segments gives.
struct ReorderRun {
    net: Net,
    samples: Vec<Sample>,
    /// `RetransSegs` when each held segment was released.
    retrans_at_event: Vec<u64>,
    events: u32,
    received: u64,
}

/// Three seconds of bulk transfer at 20 Mbit/s where ten times a data
/// segment arrives three segments late.
fn reorder_run(timestamps: bool) -> ReorderRun {
    let mut net = net(11, timestamps);
    // 20 Mbit/s: a segment every 0.6 ms, so three segments of displacement
    // are far less than a quarter of the 20 ms minimum RTT.
    net.bottleneck = Some(Bottleneck {
        rate_bps: 20_000_000,
        queue_limit: 10_000,
    });
    let (c, s) = net.connect_pair(5001);
    let held = Rc::new(RefCell::new(Held::default()));
    let addr0 = net.addr(0);
    let h = held.clone();
    // Every 150th data segment (ten times) is held until three later data
    // segments have left, then sent: it arrives three segments late.
    net.set_drop_filter(move |seg| {
        let mut h = h.borrow_mut();
        if h.injecting || seg.src != addr0 || seg.is_empty() {
            return false;
        }
        h.data_segs += 1;
        for (_, later) in &mut h.segs {
            *later += 1;
        }
        if h.data_segs % 150 == 100 && h.events < 10 {
            h.events += 1;
            h.segs.push((seg.tcp.clone(), 0));
            return true;
        }
        false
    });
    let start = net.now();
    let end = start + Duration::from_secs(3);
    let mut received = 0;
    let mut samples = Vec::new();
    let mut next_sample = start;
    // Retransmissions counted at each reordering event.
    let mut retrans_at_event = Vec::new();
    while net.now() < end {
        pump(&mut net, &c, &s, &mut received);
        if !net.step() {
            break;
        }
        let due: Vec<TcpRepr> = {
            let mut h = held.borrow_mut();
            let (go, keep): (Vec<_>, Vec<_>) = h.segs.drain(..).partition(|(_, l)| *l >= 3);
            h.segs = keep;
            go.into_iter().map(|(r, _)| r).collect()
        };
        for r in &due {
            retrans_at_event.push(net.mib(0, TcpMib::RetransSegs));
            reinject(&mut net, &held, 0, 1, r);
        }
        if net.now() >= next_sample {
            samples.push(sample(&net, &c, start));
            next_sample += Duration::from_millis(10);
        }
    }
    net.clear_drop_filter();
    let events = held.borrow().events;
    ReorderRun {
        net,
        samples,
        retrans_at_event,
        events,
        received,
    }
}

#[test]
fn reordering_by_three_segments_stops_causing_retransmissions() {
    let ReorderRun {
        net,
        samples,
        retrans_at_event,
        events,
        received,
    } = reorder_run(true);
    assert_eq!(events, 10, "reordering events");
    let retrans = net.mib(0, TcpMib::RetransSegs);
    // The first event is taken for a loss (three SACKed segments make
    // RACK's window zero) and the retransmission proves spurious; from
    // then on RACK waits min_rtt/4 and the reordering is absorbed.
    assert!(
        retrans <= 1,
        "{retrans} retransmissions: {retrans_at_event:?}"
    );
    let after_second = retrans_at_event[1];
    assert_eq!(retrans, after_second, "{retrans_at_event:?}");
    assert_eq!(net.mib(0, LinuxMib::TcpTimeouts), 0);
    let reorder = net.mib(0, LinuxMib::TcpSackReorder) + net.mib(0, LinuxMib::TcpTsReorder);
    assert!(reorder >= 1, "reordering never detected");
    let last = samples.last().copied().expect("samples");
    assert!(last.reordering >= 4, "{last:?}");
    // A spurious recovery is undone: a D-SACK or an ACK of the original.
    let undo = net.mib(0, LinuxMib::TcpDsackUndo)
        + net.mib(0, LinuxMib::TcpPartialUndo)
        + net.mib(0, LinuxMib::TcpFullUndo);
    if retrans > 0 {
        assert!(undo >= 1, "spurious recovery not undone");
    }
    // Over time: no sample in Loss, and cwnd never cut below half of what
    // it was 100 ms earlier once the flow is going.
    assert!(samples.iter().all(|x| x.ca_state != CA_LOSS), "{samples:?}");
    for w in samples.windows(11).skip(20) {
        assert!(w[10].cwnd * 2 >= w[0].cwnd, "cwnd collapsed: {w:?}");
    }
    assert!(received > 3_000_000, "only {received} bytes");
}

#[test]
fn reordering_without_timestamps_is_undone_by_dsack() {
    // Without timestamps the late original cannot be told from the
    // retransmission when it is acked, so (as in Linux) the reordering
    // degree is not learnt from this pattern: each event is a spurious
    // fast retransmit, and each is undone when its D-SACK arrives.
    let r = reorder_run(false);
    assert_eq!(r.events, 10);
    let retrans = r.net.mib(0, TcpMib::RetransSegs);
    let undone = r.net.mib(0, LinuxMib::TcpDsackUndo) + r.net.mib(0, LinuxMib::TcpFullUndo);
    assert_eq!(retrans, 10, "{:?}", r.retrans_at_event);
    // Every retransmission comes back as a D-SACK, and every recovery is
    // undone: by the D-SACK itself, or at its end once the D-SACK made
    // undo_retrans zero.
    assert_eq!(r.net.mib(0, LinuxMib::TcpDsackRecv), 10);
    assert!(r.net.mib(0, LinuxMib::TcpDsackUndo) >= 5);
    assert_eq!(undone, retrans);
    let last = r.samples.last().copied().expect("samples");
    assert_eq!(last.reordering, 3, "{last:?}");
    assert_eq!(r.net.mib(0, LinuxMib::TcpTimeouts), 0);
    assert!(r.samples.iter().all(|x| x.ca_state != CA_LOSS));
    // Undo restores the window: it never stays halved for 100 ms.
    for w in r.samples.windows(11).skip(20) {
        assert!(w[10].cwnd * 2 >= w[0].cwnd, "cwnd collapsed: {w:?}");
    }
    assert!(r.received > 3_000_000, "only {} bytes", r.received);
}

/// Runs a bulk flow for 600 ms, then holds every segment from host 1 for
/// `stall` and releases them in order: the sender times out although
/// nothing was lost. Returns the samples and the sample index where the
/// stall began and ended.
fn stall_acks(net: &mut Net, stall: Duration) -> (Vec<Sample>, usize, usize) {
    let (c, s) = net.connect_pair(5002);
    let held = Rc::new(RefCell::new(Held::default()));
    let start = net.now();
    let mut received = 0;
    let mut samples = Vec::new();
    let mut ms = 0;
    let mut run_ms = |net: &mut Net, samples: &mut Vec<Sample>, n: u64, received: &mut u64| {
        for _ in 0..n {
            pump(net, &c, &s, received);
            ms += 1;
            net.run_until_time(start + Duration::from_millis(ms));
            samples.push(sample(net, &c, start));
        }
    };
    run_ms(net, &mut samples, 600, &mut received);
    let addr1 = net.addr(1);
    let h = held.clone();
    net.set_drop_filter(move |seg| {
        let mut h = h.borrow_mut();
        if h.injecting || seg.src != addr1 {
            return false;
        }
        h.segs.push((seg.tcp.clone(), 0));
        true
    });
    let stall_start = samples.len();
    run_ms(net, &mut samples, stall.as_millis() as u64, &mut received);
    net.clear_drop_filter();
    let acks: Vec<TcpRepr> = held.borrow_mut().segs.drain(..).map(|(r, _)| r).collect();
    assert!(!acks.is_empty());
    for r in &acks {
        reinject(net, &held, 1, 0, r);
    }
    let stall_end = samples.len();
    run_ms(net, &mut samples, 400, &mut received);
    assert!(received > 500_000, "only {received} bytes");
    (samples, stall_start, stall_end)
}

#[test]
fn spurious_rto_is_undone_by_timestamps() {
    let mut net = net(12, true);
    let (samples, stall, release) = stall_acks(&mut net, Duration::from_millis(450));
    let before = samples[stall - 1];
    assert!(net.mib(0, LinuxMib::TcpTimeouts) >= 1, "no RTO");
    // The timeout entered Loss with cwnd at one segment above the flight.
    let loss = samples[stall..release]
        .iter()
        .find(|x| x.ca_state == CA_LOSS)
        .copied()
        .expect("Loss state");
    assert!(loss.cwnd < before.cwnd, "{loss:?} {before:?}");
    // The released ACKs echo timestamps from before the retransmission:
    // Eifel undoes the reduction and the connection is Open again with
    // the window it had.
    assert!(net.mib(0, LinuxMib::TcpLossUndo) >= 1);
    let after = samples[release..]
        .iter()
        .find(|x| x.ca_state == CA_OPEN)
        .copied()
        .expect("back to Open");
    assert!(after.ms - samples[release].ms <= 50, "{after:?}");
    assert!(after.cwnd >= before.cwnd, "cwnd {after:?} was {before:?}");
    assert!(after.ssthresh >= before.ssthresh, "{after:?} {before:?}");
    // And it stays out of Loss.
    let undone = samples
        .iter()
        .position(|x| x.ms == after.ms)
        .expect("sample");
    assert!(samples[undone..].iter().all(|x| x.ca_state != CA_LOSS));
}

#[test]
fn spurious_rto_is_undone_by_frto() {
    // No timestamps: only F-RTO (RFC 5682) can tell the timeout was
    // spurious, from an ACK of data that was never retransmitted.
    let mut net = net(13, false);
    let (samples, stall, release) = stall_acks(&mut net, Duration::from_millis(450));
    let before = samples[stall - 1];
    assert!(net.mib(0, LinuxMib::TcpTimeouts) >= 1, "no RTO");
    assert!(
        samples[stall..release]
            .iter()
            .any(|x| x.ca_state == CA_LOSS)
    );
    assert!(net.mib(0, LinuxMib::TcpSpuriousRtos) >= 1);
    assert!(net.mib(0, LinuxMib::TcpLossUndo) >= 1);
    let after = samples[release..]
        .iter()
        .find(|x| x.ca_state == CA_OPEN)
        .copied()
        .expect("back to Open");
    assert!(after.cwnd >= before.cwnd, "cwnd {after:?} was {before:?}");
}

#[test]
fn one_loss_is_found_by_the_rack_reordering_timer() {
    let mut net = net(14, true);
    net.logging = true;
    let (c, s) = net.connect_pair(5003);
    // A few exchanges for an RTT estimate.
    let mut received = 0;
    let mut buf = [0u8; 8192];
    for _ in 0..5 {
        net.send(0, &c, &[FILL; 100]).unwrap();
        net.run_for_ms(50);
        received += net.recv(1, &s, &mut buf).unwrap();
    }
    let mss = info(&net, &c).snd_mss as usize;
    // Three segments; the first is lost. Only two are SACKed, fewer than
    // the duplicate-ACK threshold: RACK's timer finds the loss.
    let mut first = true;
    net.set_drop_filter(move |seg| {
        let drop = first && !seg.is_empty();
        if drop {
            first = false;
        }
        drop
    });
    let start = net.now();
    net.send(0, &c, &vec![FILL; 3 * mss]).unwrap();
    let mut samples = Vec::new();
    for _ in 0..300 {
        net.run_for_ms(1);
        samples.push(sample(&net, &c, start));
        if let Ok(n) = net.recv(1, &s, &mut buf) {
            received += n;
        }
    }
    net.clear_drop_filter();
    assert_eq!(received, 500 + 3 * mss);
    assert_eq!(net.mib(0, LinuxMib::TcpTimeouts), 0);
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 1);
    // The retransmission leaves one RTT (20 ms) plus a quarter of the
    // minimum RTT (5 ms) plus 2 ms of timer slack after the original.
    let data: Vec<_> = net.from(0).into_iter().filter(|x| !x.is_empty()).collect();
    let lost = data.iter().find(|x| x.dropped).expect("dropped segment");
    let again = data
        .iter()
        .find(|x| !x.dropped && x.tcp.seq == lost.tcp.seq)
        .expect("retransmission");
    let gap = again.at.saturating_duration_since(lost.at).as_micros();
    assert!(
        (26_000..=29_000).contains(&gap),
        "retransmitted after {gap} µs"
    );
    // Recovery was entered by the timer and left when the hole filled.
    let rec = samples
        .iter()
        .position(|x| x.ca_state == CA_RECOVERY)
        .expect("Recovery");
    assert!(samples[rec].ms >= 26, "{:?}", samples[rec]);
    let open = samples[rec..]
        .iter()
        .find(|x| x.ca_state == CA_OPEN)
        .expect("Open again");
    assert!(open.ms <= samples[rec].ms + 30, "{open:?}");
    assert_eq!(samples.last().map(|x| x.total_retrans), Some(1));
}

#[test]
fn newreno_repairs_two_holes_in_one_recovery() {
    // Without SACK (RFC 6582): three duplicate ACKs retransmit the first
    // hole, the partial ACK that follows retransmits the second, all in
    // one recovery episode and without a timeout.
    let mut net = net(15, true);
    for h in &net.hosts {
        h.ctx.sysctl().set("net.ipv4.tcp_sack", "0").unwrap();
    }
    let (c, s) = net.connect_pair(5004);
    let start = net.now();
    let mut received = 0;
    let mut samples = Vec::new();
    for ms in 1..=300 {
        pump(&mut net, &c, &s, &mut received);
        net.run_until_time(start + Duration::from_millis(ms));
    }
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 0);
    // Drop the next data segment and the fifth after it.
    let mut seen = 0;
    net.set_drop_filter(move |seg| {
        if seg.is_empty() {
            return false;
        }
        seen += 1;
        seen == 1 || seen == 6
    });
    for ms in 301..=800 {
        pump(&mut net, &c, &s, &mut received);
        net.run_until_time(start + Duration::from_millis(ms));
        samples.push(sample(&net, &c, start));
    }
    net.clear_drop_filter();
    assert_eq!(net.mib(0, LinuxMib::TcpTimeouts), 0);
    assert_eq!(net.mib(0, LinuxMib::TcpRenoRecovery), 1);
    assert_eq!(net.mib(0, LinuxMib::TcpSackRecovery), 0);
    // Real losses: nothing to undo.
    assert_eq!(net.mib(0, LinuxMib::TcpFullUndo), 0);
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 2);
    let rec = samples
        .iter()
        .position(|x| x.ca_state == CA_RECOVERY)
        .expect("Recovery");
    let open = samples[rec..]
        .iter()
        .position(|x| x.ca_state == CA_OPEN)
        .expect("Open again");
    // Two round trips: the fast retransmit, then the partial ACK's.
    assert!((20..=80).contains(&open), "recovery took {open} ms");
    // Leaving Recovery sets cwnd to ssthresh (CUBIC's 0.7).
    let before = samples[rec - 1];
    let after = samples[rec + open];
    assert_eq!(after.cwnd, after.ssthresh, "{after:?}");
    assert!(
        after.ssthresh <= before.cwnd * 717 / 1024 + 1,
        "{before:?} {after:?}"
    );
    assert!(received > 1_000_000, "only {received} bytes");
}

/// Bulk transfer for six seconds over the loss bench's path (1 Gbit/s,
/// 5 ms each way, 1 % random loss each way) with Linux's default
/// tcp_wmem; `sndbuf` set by the user if given. Returns the goodput in
/// Mbit/s, the `TCP_INFO` samples every 10 ms, SO_SNDBUF at each of them,
/// the final `TCP_INFO` and the RTOs (`TCPTimeouts`). `seed` draws the
/// losses.
fn loss1_run(sndbuf: Option<u32>, seed: u64) -> (f64, Vec<Sample>, Vec<i64>, TcpInfo, u64) {
    let mut net = Net::with_seed(2, seed);
    net.delay = Duration::from_millis(5);
    net.logging = false;
    net.impair.loss = 0.01;
    net.bottleneck = Some(Bottleneck {
        rate_bps: 1_000_000_000,
        queue_limit: 10_000,
    });
    let (c, s) = net.connect_pair(5001);
    if let Some(v) = sndbuf {
        net.setsockopt(0, &c, tcp::SockOpt::SndBuf(v)).unwrap();
    }
    let get_sndbuf = |net: &Net| {
        let h = &net.hosts[0];
        h.stack
            .getsockopt(&h.ctx, &c, tcp::SockOptName::SndBuf)
            .unwrap()
    };
    let start = net.now();
    let mut received = 0;
    let mut samples = Vec::new();
    let mut bufs = vec![get_sndbuf(&net)];
    for ms in 1..=6000u64 {
        pump(&mut net, &c, &s, &mut received);
        net.run_until_time(start + Duration::from_millis(ms));
        if ms % 10 == 0 {
            samples.push(sample(&net, &c, start));
            bufs.push(get_sndbuf(&net));
        }
    }
    let mbit = received as f64 * 8.0 / 6.0 / 1e6;
    let rtos = net.mib(0, LinuxMib::TcpTimeouts);
    (mbit, samples, bufs, info(&net, &c), rtos)
}

#[test]
fn one_percent_loss_grows_the_send_buffer_with_cwnd() {
    // SO_SNDBUF starts at tcp_wmem[1], 16 KiB: fewer than ten segments.
    // tcp_sndbuf_expand() grows it to two windows when the connection is
    // set up and whenever the writer waits while cwnd has room, so the
    // window, not the buffer, limits the flow.
    let (mbit, samples, bufs, i, rtos) = loss1_run(None, 3);
    // Recovery repairs the losses without timeouts but for one: at 1.54 s
    // the cumulative ACK of a flight and then the ACK of the tail loss
    // probe are both lost (1 % each way), which only the RTO repairs.
    assert!(rtos <= 1, "{rtos} RTOs");
    // Two initial windows of worst-case segments: 20 times the MSS with
    // its headers and shared info rounded up to 2048, plus the skb.
    assert!((41_000..50_000).contains(&bufs[0]), "{}", bufs[0]);
    // Never limited by the buffer: the window was always the limit.
    assert_eq!(i.sndbuf_limited, 0, "{i:?}");
    // The buffer only grew, and holds two of the largest windows the flow
    // had (2048 bytes and more per segment), up to tcp_wmem[2].
    assert!(bufs.windows(2).all(|w| w[1] >= w[0]));
    let max_cwnd = samples.iter().map(|x| x.cwnd).max().unwrap();
    let last = *bufs.last().unwrap();
    assert!(last >= (2 * 2048 * i64::from(max_cwnd)).min(4_194_304));
    // Losses are repaired by fast recovery, many times, each a reduction
    // of cwnd with ssthresh set: the sawtooth of a loss-limited flow.
    let recoveries = samples
        .windows(2)
        .filter(|w| w[0].ca_state != CA_RECOVERY && w[1].ca_state == CA_RECOVERY)
        .count();
    assert!(recoveries >= 20, "{recoveries} recoveries: {samples:?}");
    assert!(
        samples[samples.len() / 2..]
            .iter()
            .all(|x| x.ssthresh < 1000)
    );
    // Goodput: above what Linux's CUBIC gets on this path (10.18 Mbit/s
    // in the loss bench).
    assert!(mbit > 11.0, "{mbit:.2} Mbit/s");
    // The delivery rate kept is the flow's order of magnitude (one window
    // per RTT), not the link's 1 Gbit/s.
    assert!((200_000..20_000_000).contains(&i.delivery_rate), "{i:?}");
    // The same path with a buffer the user fixed at 16 KiB: the writer
    // waits for buffer space while cwnd has room, and the flow is slower
    // (about 11 Mbit/s: the buffer is checked once per skb and the unsent
    // rest of a pushed skb is filled again without a check, as in Linux,
    // so up to a size goal of data is queued beyond it).
    let (_, locked, bufs, i, _) = loss1_run(Some(8192), 3);
    assert!(bufs.iter().all(|&b| b == 16_384));
    assert!(i.sndbuf_limited > 0, "{i:?}");
    assert!(locked.iter().any(|x| x.ca_state == CA_RECOVERY));
    // Slower on average over three loss patterns (one pattern alone may
    // cost the free flow an RTO and leave the two level).
    let mean = |sndbuf| (3..6).map(|seed| loss1_run(sndbuf, seed).0).sum::<f64>() / 3.0;
    let (free, locked_mbit) = (mean(None), mean(Some(8192)));
    assert!(locked_mbit < free - 0.5, "{locked_mbit:.2} vs {free:.2}");
}
