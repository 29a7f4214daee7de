//! The flow hash TCP puts on each skb it sends (`sk_txhash`,
//! `skb_set_hash_from_sk()`): chosen at connect (`sk_set_txhash()`), taken
//! by the accepted child from its request (`tcp_rsk(req)->txhash`), new
//! after a retransmission timeout or a SYN-ACK retransmission
//! (`sk_rethink_txhash()`, `tcp_rtx_synack()`) unless
//! `net.core.txrehash` is 0.
//!
//! The skbs are taken from each host's context as TCP hands them to IP and
//! carried by hand, so the test sees the hash each one carries. An skb
//! with an L4 hash is never dissected again: `skb_get_hash()` returns the
//! socket's hash as it is.

use std::net::SocketAddrV4;
use std::sync::Arc;

use netcore::{LinuxMib, SkBuff, Sysctl, TimerContext, skb_get_hash};
use tcp::testutil::{Net, parse_seg};
use tcp::{MsgFlags, TcpContext, TcpSocket, TcpTimer, tcp_v4_rcv};
use wire::TcpFlags;

/// One skb as TCP sent it: from which host, its flags, payload length and
/// flow hash (`hash`, `l4_hash`).
#[derive(Clone, Copy, Debug)]
struct Sent {
    from: usize,
    flags: TcpFlags,
    len: usize,
    hash: u32,
    l4_hash: bool,
}

/// Takes what host `i` sent, without delivering it.
fn take(net: &mut Net, i: usize) -> Vec<(Sent, SkBuff)> {
    let now = net.now();
    core::mem::take(&mut net.hosts[i].ctx.out)
        .into_iter()
        .map(|mut skb| {
            let seg = parse_seg(now, skb.data()).expect("TCP sent a well-formed segment");
            let sent = Sent {
                from: i,
                flags: seg.tcp.flags,
                len: seg.len(),
                hash: skb.hash,
                l4_hash: skb.l4_hash,
            };
            // What the qdisc and queue selection would compute: with an
            // L4 hash set, the skb is not dissected and keeps it.
            assert_eq!(skb_get_hash(&mut skb), sent.hash, "{sent:?}");
            (sent, skb)
        })
        .collect()
}

/// Gives an IPv4 datagram from the other host to host `to`'s TCP.
fn deliver(net: &mut Net, to: usize, mut skb: SkBuff) {
    let hl = skb.data().first().map_or(20, |b| usize::from(b & 0xf) * 4);
    skb.reset_network_header();
    skb.pull(hl).expect("an IPv4 header");
    skb.reset_transport_header();
    let h = &mut net.hosts[to];
    tcp_v4_rcv(&h.stack, &mut h.ctx, skb);
}

/// Carries segments both ways until neither host sends; returns them all.
fn pump(net: &mut Net) -> Vec<Sent> {
    let mut log = Vec::new();
    loop {
        let mut moved = false;
        for i in 0..2 {
            for (sent, skb) in take(net, i) {
                log.push(sent);
                deliver(net, 1 - i, skb);
                moved = true;
            }
        }
        if !moved {
            return log;
        }
    }
}

/// Fires host `i`'s earliest timer, which must match `want`.
fn fire(net: &mut Net, i: usize, want: impl Fn(&TcpTimer) -> bool) {
    let h = &mut net.hosts[i];
    let (at, _, id) = h.ctx.next_timer().expect("a timer is armed");
    assert!(want(&id), "next timer of host {i} is {id:?}");
    h.ctx.set_now(at);
    h.ctx.cancel_timer(id);
    h.stack.handle_timer(&mut h.ctx, id);
}

fn send(net: &mut Net, i: usize, sk: &TcpSocket, data: &[u8]) {
    let h = &mut net.hosts[i];
    let n = h
        .stack
        .sendmsg(&mut h.ctx, sk, data, MsgFlags::empty())
        .expect("room in the send buffer");
    assert_eq!(n, data.len());
}

fn recv(net: &mut Net, i: usize, sk: &TcpSocket, len: usize) -> Vec<u8> {
    let h = &mut net.hosts[i];
    let mut buf = vec![0u8; len + 1];
    let n = h
        .stack
        .recvmsg(&mut h.ctx, sk, &mut buf, MsgFlags::DONTWAIT)
        .expect("data arrived");
    buf.truncate(n);
    buf
}

/// A listener on host 1 and a connect from host 0, the SYN not yet
/// carried: (client, listener).
fn start(net: &mut Net, port: u16) -> (Arc<TcpSocket>, Arc<TcpSocket>) {
    let l = net.listen(1, port, 16);
    let c = net.socket(0);
    let dst = SocketAddrV4::new(net.addr(1), port);
    let h = &mut net.hosts[0];
    assert_eq!(
        h.stack.connect(&mut h.ctx, &c, dst),
        Err(netcore::Errno::InProgress)
    );
    (c, l)
}

/// The one hash of every segment host `i` sent, checked to be an L4 hash
/// and not 0.
fn hash_of(log: &[Sent], i: usize) -> u32 {
    let mine: Vec<&Sent> = log.iter().filter(|s| s.from == i).collect();
    assert!(!mine.is_empty(), "host {i} sent nothing");
    let h = mine[0].hash;
    assert_ne!(h, 0, "host {i}: no flow hash");
    for s in &mine {
        assert!(s.l4_hash, "host {i}: {s:?}");
        assert_eq!(s.hash, h, "host {i}: {s:?}");
    }
    h
}

#[test]
fn every_segment_of_a_connection_carries_its_sockets_hash() {
    let mut net = Net::new(2);
    let (c, l) = start(&mut net, 80);
    let mut log = pump(&mut net);
    let s = net.hosts[1].stack.accept(&l).expect("handshake completed");
    // SYN, SYN-ACK, ACK.
    let flags: Vec<TcpFlags> = log.iter().map(|s| s.flags).collect();
    assert_eq!(
        flags,
        [TcpFlags::SYN, TcpFlags::SYN | TcpFlags::ACK, TcpFlags::ACK]
    );
    send(&mut net, 0, &c, &[7u8; 3000]);
    log.extend(pump(&mut net));
    assert_eq!(recv(&mut net, 1, &s, 3000), [7u8; 3000]);
    send(&mut net, 1, &s, &[9u8; 100]);
    log.extend(pump(&mut net));
    assert_eq!(recv(&mut net, 0, &c, 100), [9u8; 100]);
    // Both ends sent data and ACKs, each under one hash of its own: the
    // SYN-ACK's hash (the request's) is the accepted child's.
    assert!(log.iter().any(|s| s.from == 0 && s.len > 0));
    assert!(log.iter().any(|s| s.from == 1 && s.len > 0));
    let (hc, hs) = (hash_of(&log, 0), hash_of(&log, 1));
    assert_ne!(hc, hs, "two random draws");
    // Nothing timed out: no rehash.
    assert_eq!(net.mib(0, LinuxMib::TcpTimeoutRehash), 0);
    assert_eq!(net.mib(1, LinuxMib::TcpTimeoutRehash), 0);
}

/// Sends one segment from the client that the wire loses (with its tail
/// loss probe) and lets the retransmission timer fire: the old hash and
/// the retransmission.
fn lose_and_retransmit(net: &mut Net) -> (u32, Sent) {
    let (c, l) = start(net, 81);
    let log = pump(net);
    let _s = net.hosts[1].stack.accept(&l).expect("handshake completed");
    let old = hash_of(&log, 0);
    send(net, 0, &c, b"lost once");
    let lost = take(net, 0);
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].0.hash, old);
    // The tail loss probe comes first and is lost too; then the
    // retransmission timer fires.
    loop {
        let (_, _, id) = net.hosts[0].ctx.next_timer().expect("a timer is armed");
        fire(net, 0, |_| true);
        if matches!(id, TcpTimer::Retransmit(_)) {
            break;
        }
        for (probe, _) in take(net, 0) {
            assert_eq!(probe.hash, old, "no rehash before a timeout: {probe:?}");
        }
    }
    let mut again = take(net, 0);
    assert_eq!(again.len(), 1, "one retransmission");
    let (rtx, skb) = again.remove(0);
    assert_eq!(rtx.len, b"lost once".len());
    assert!(rtx.l4_hash);
    deliver(net, 1, skb);
    (old, rtx)
}

#[test]
fn a_retransmission_timeout_picks_a_new_hash() {
    let mut net = Net::new(2);
    let (old, rtx) = lose_and_retransmit(&mut net);
    assert_ne!(rtx.hash, old, "sk_rethink_txhash() drew a new hash");
    assert_ne!(rtx.hash, 0);
    assert_eq!(net.mib(0, LinuxMib::TcpTimeoutRehash), 1);
    // The connection goes on under the new hash.
    let log = pump(&mut net);
    assert!(
        log.iter()
            .filter(|s| s.from == 0)
            .all(|s| s.hash == rtx.hash)
    );
}

#[test]
fn txrehash_zero_keeps_the_hash_across_a_timeout() {
    let mut net = Net::new(2);
    net.hosts[0]
        .ctx
        .sysctl()
        .set_int(Sysctl::TXREHASH, 0)
        .expect("a boolean sysctl");
    let (old, rtx) = lose_and_retransmit(&mut net);
    assert_eq!(rtx.hash, old);
    assert_eq!(net.mib(0, LinuxMib::TcpTimeoutRehash), 0);
}

#[test]
fn a_retransmitted_syn_ack_has_a_new_hash_that_the_child_keeps() {
    let mut net = Net::new(2);
    let (c, l) = start(&mut net, 82);
    let syn = take(&mut net, 0);
    assert_eq!(syn.len(), 1);
    for (_, skb) in syn {
        deliver(&mut net, 1, skb);
    }
    let first = take(&mut net, 1);
    assert_eq!(first.len(), 1, "one SYN-ACK, lost");
    let first = first[0].0;
    fire(&mut net, 1, |t| matches!(t, TcpTimer::SynAck { .. }));
    let second = take(&mut net, 1);
    assert_eq!(second.len(), 1, "the SYN-ACK again");
    let (synack, skb) = (second[0].0, second.into_iter().next().expect("one").1);
    assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert!(synack.l4_hash);
    assert_ne!(synack.hash, first.hash, "tcp_rtx_synack() drew a new hash");
    deliver(&mut net, 0, skb);
    let mut log = pump(&mut net);
    let s = net.hosts[1].stack.accept(&l).expect("handshake completed");
    send(&mut net, 1, &s, b"from the child");
    log.extend(pump(&mut net));
    assert_eq!(recv(&mut net, 0, &c, 14), b"from the child");
    assert!(log.iter().any(|s| s.from == 1 && s.len > 0));
    assert_eq!(hash_of(&log, 1), synack.hash);
}
