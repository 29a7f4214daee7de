//! `tcp_v4_rcv` against a listening and an established socket, with the
//! state of both kept across every segment of one input.
//!
//! Two hosts of the tcp crate's sans-IO test network (`tcp::testutil::Net`,
//! 198.18.0.1 the client, 198.18.0.2 the server): a listener on port 80,
//! and an established connection client:ephemeral → server:8080 made by a
//! real handshake. The input is a list of records `ctl: u8, delay: u8,
//! len: u8, bytes[len]`; the low two bits of `ctl` choose what happens:
//!
//! - 0: `bytes` is a TCP header and payload to the server (from the
//!   client's address, or from 198.18.0.(x) with bit 6);
//! - 1: the same towards the client (from the server's address);
//! - 2: the server application writes `bytes` (bit 2: the client does);
//! - 3: the applications read, shut down or close as `bytes[0]` says, and
//!   the server accepts what the listener has.
//!
//! For the injected segments, bits help the fuzzer past checks it would
//! rarely guess: bit 2 puts the established connection's ports in, bit 3
//! the sequence number the receiver expects next, bit 4 an acknowledgment
//! of what the receiver has sent, bit 5 a correct checksum. Every segment
//! the hosts send in answer crosses the wire to the other host at once;
//! after each record the clock advances `delay` × 10 ms, firing due timers.
//!
//! At the end every socket is closed, the clock runs on by 2,000 s (past
//! every retransmission, FIN-WAIT-2 and TIME-WAIT timeout), the network is
//! dropped, and the pool must hold no buffer: one still out is a leak.

#![no_main]

use std::net::Ipv4Addr;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use netcore::{Duration, Instant, SkBuff, TimerContext};
use tcp::testutil::{Net, parse_seg};
use tcp::{MAX_TCP_HEADER, MsgFlags, Shutdown, TcpContext, TcpSocket, tcp_v4_rcv};
use wire::{IpProtocol, Ipv4Repr, TcpFlags, TcpPacket};

const CLIENT: usize = 0;
const SERVER: usize = 1;
const LISTEN_PORT: u16 = 80;
const CONN_PORT: u16 = 8080;
/// Bound on the segments moved by one `pump` (a fuzzed exchange can
/// ping-pong, e.g. ACK wars; Linux rate-limits them, we bound the loop).
const PUMP_MAX: usize = 512;
/// Bound on the timer expiries of one clock advance.
const TIMERS_MAX: usize = 20_000;

/// The next sequence number each host will send, seen on the wire.
#[derive(Default)]
struct Track {
    snd_nxt: [u32; 2],
}

impl Track {
    fn see(&mut self, from: usize, seq: u32, len: u32, flags: TcpFlags) {
        let mut end = seq.wrapping_add(len);
        if flags.contains(TcpFlags::SYN) {
            end = end.wrapping_add(1);
        }
        if flags.contains(TcpFlags::FIN) {
            end = end.wrapping_add(1);
        }
        // Keep the furthest point (retransmissions go back).
        if (end.wrapping_sub(self.snd_nxt[from]) as i32) > 0 {
            self.snd_nxt[from] = end;
        }
    }
}

struct World {
    net: Net,
    track: Track,
    now: Instant,
    listener: Arc<TcpSocket>,
    client: Arc<TcpSocket>,
    server: Arc<TcpSocket>,
    accepted: Vec<Arc<TcpSocket>>,
}

fuzz_target!(|data: &[u8]| {
    let mut net = Net::new(2);
    let pool = net.hosts[CLIENT].ctx.page_pool().clone();
    let start = pool.stats().inflight();
    let listener = net.listen(SERVER, LISTEN_PORT, 8);
    let (client, server) = net.connect_pair(CONN_PORT);
    net.run_for_ms(500);
    let mut track = Track::default();
    for s in &net.log {
        let from = if s.src == net.addr(CLIENT) {
            CLIENT
        } else {
            SERVER
        };
        track.see(from, s.tcp.seq, s.tcp.payload_len as u32, s.tcp.flags);
    }
    net.logging = false;
    let now = net.now();
    let mut w = World {
        net,
        track,
        now,
        listener,
        client,
        server,
        accepted: Vec::new(),
    };

    let mut rest = data;
    while rest.len() >= 3 {
        let (ctl, delay, len) = (rest[0], rest[1], usize::from(rest[2]));
        rest = &rest[3..];
        let len = len.min(rest.len());
        let (bytes, tail) = rest.split_at(len);
        rest = tail;
        match ctl & 3 {
            0 => inject(&mut w, SERVER, ctl, bytes),
            1 => inject(&mut w, CLIENT, ctl, bytes),
            2 => app_write(&mut w, ctl, bytes),
            _ => app_other(&mut w, bytes),
        }
        pump(&mut w);
        advance(&mut w, Duration::from_millis(u64::from(delay) * 10));
    }

    // Close everything and let every timer run out.
    while let Ok(sk) = w.net.hosts[SERVER].stack.accept(&w.listener) {
        w.accepted.push(sk);
    }
    let server_side: Vec<Arc<TcpSocket>> = [&w.listener, &w.server]
        .into_iter()
        .chain(w.accepted.iter())
        .cloned()
        .collect();
    for sk in &server_side {
        let h = &mut w.net.hosts[SERVER];
        h.stack.close(&mut h.ctx, sk);
    }
    {
        let h = &mut w.net.hosts[CLIENT];
        h.stack.close(&mut h.ctx, &w.client);
    }
    pump(&mut w);
    advance(&mut w, Duration::from_secs(2000));
    drop(server_side);
    drop(w);
    assert_eq!(
        pool.stats().inflight(),
        start,
        "buffers still held after every socket closed and every timer ran out"
    );
});

/// Builds the IPv4 datagram of a fuzzed TCP segment towards host `to`.
fn inject(w: &mut World, to: usize, ctl: u8, bytes: &[u8]) {
    let from = 1 - to;
    let dst = w.net.addr(to);
    let src = if to == SERVER && ctl & 0x40 != 0 {
        Ipv4Addr::new(198, 18, 0, bytes.first().copied().unwrap_or(1).max(3))
    } else {
        w.net.addr(from)
    };
    let mut seg = bytes.to_vec();
    if seg.len() >= 20 {
        if ctl & 4 != 0 {
            let (sport, dport) = if to == SERVER {
                (w.client.local_addr().port(), CONN_PORT)
            } else {
                (CONN_PORT, w.client.local_addr().port())
            };
            seg[0..2].copy_from_slice(&sport.to_be_bytes());
            seg[2..4].copy_from_slice(&dport.to_be_bytes());
        } else if to == SERVER && ctl & 0x80 != 0 {
            seg[2..4].copy_from_slice(&LISTEN_PORT.to_be_bytes());
        }
        if ctl & 8 != 0 {
            seg[4..8].copy_from_slice(&w.track.snd_nxt[from].to_be_bytes());
        }
        if ctl & 0x10 != 0 {
            seg[8..12].copy_from_slice(&w.track.snd_nxt[to].to_be_bytes());
        }
        if ctl & 0x20 != 0
            && let Ok(mut p) = TcpPacket::new_checked(&mut seg[..])
        {
            p.fill_checksum(src, dst);
        }
    }
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        ttl: 64,
        tos: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: heapless::Vec::new(),
        payload_len: seg.len(),
    };
    let hlen = ip.header_len();
    let mut dgram = vec![0u8; hlen + seg.len()];
    if ip.emit(&mut dgram).is_err() {
        return;
    }
    dgram[hlen..].copy_from_slice(&seg);
    let pool = w.net.hosts[to].ctx.page_pool().clone();
    // A pool running dry is a drop, as in a driver.
    let Ok(skb) = SkBuff::from_slice(&pool, MAX_TCP_HEADER, &dgram) else {
        return;
    };
    deliver(w, to, skb);
}

/// Hands a datagram (data at the IP header) to host `to`'s `tcp_v4_rcv`,
/// as `ip_local_deliver_finish()` does.
fn deliver(w: &mut World, to: usize, mut skb: SkBuff) {
    let hl = skb.data().first().map_or(20, |b| usize::from(b & 0xf) * 4);
    skb.reset_network_header();
    if skb.pull(hl).is_err() {
        return;
    }
    skb.reset_transport_header();
    let h = &mut w.net.hosts[to];
    h.ctx.set_now(w.now);
    tcp_v4_rcv(&h.stack, &mut h.ctx, skb);
}

/// Carries every segment the hosts sent to the other host, until quiet.
fn pump(w: &mut World) {
    for _ in 0..PUMP_MAX {
        let mut moved = false;
        for from in [CLIENT, SERVER] {
            let out = std::mem::take(&mut w.net.hosts[from].ctx.out);
            for skb in out {
                moved = true;
                let Some(seg) = parse_seg(w.now, skb.data()) else {
                    continue;
                };
                w.track
                    .see(from, seg.tcp.seq, seg.tcp.payload_len as u32, seg.tcp.flags);
                // Answers to fuzzed sources go nowhere.
                if let Some(to) = [CLIENT, SERVER]
                    .into_iter()
                    .find(|&i| w.net.addr(i) == seg.dst)
                {
                    deliver(w, to, skb);
                }
            }
        }
        if !moved {
            return;
        }
    }
    // Still talking: drop what is left, as a congested wire would.
    for h in &mut w.net.hosts {
        h.ctx.out.clear();
    }
}

/// Moves the clock on by `d`, firing each due timer in order.
fn advance(w: &mut World, d: Duration) {
    let end = w.now + d;
    for _ in 0..TIMERS_MAX {
        let next = (0..2)
            .filter_map(|i| {
                w.net.hosts[i]
                    .ctx
                    .next_timer()
                    .map(|(at, seq, id)| (at, i, seq, id))
            })
            .min_by_key(|&(at, i, seq, _)| (at, i, seq));
        let Some((at, i, _, id)) = next else { break };
        if at > end {
            break;
        }
        w.now = w.now.max(at);
        let h = &mut w.net.hosts[i];
        h.ctx.set_now(w.now);
        h.ctx.cancel_timer(id);
        h.stack.handle_timer(&mut h.ctx, id);
        pump(w);
    }
    w.now = w.now.max(end);
    for h in &mut w.net.hosts {
        h.ctx.set_now(w.now);
    }
}

fn app_write(w: &mut World, ctl: u8, bytes: &[u8]) {
    let (i, sk) = if ctl & 4 != 0 {
        (CLIENT, w.client.clone())
    } else {
        (SERVER, w.server.clone())
    };
    let h = &mut w.net.hosts[i];
    h.ctx.set_now(w.now);
    let _ = h.stack.sendmsg(&mut h.ctx, &sk, bytes, MsgFlags::DONTWAIT);
}

fn app_other(w: &mut World, bytes: &[u8]) {
    let op = bytes.first().copied().unwrap_or(0);
    let (i, sk) = if op & 0x10 != 0 {
        (CLIENT, w.client.clone())
    } else {
        (SERVER, w.server.clone())
    };
    let mut buf = [0u8; 4096];
    let h = &mut w.net.hosts[i];
    h.ctx.set_now(w.now);
    match op & 7 {
        0 | 1 | 2 => {
            let _ = h
                .stack
                .recvmsg(&mut h.ctx, &sk, &mut buf, MsgFlags::DONTWAIT);
        }
        3 => {
            let _ = h.stack.shutdown(&mut h.ctx, &sk, Shutdown::Write);
        }
        4 => {
            let _ = h.stack.shutdown(&mut h.ctx, &sk, Shutdown::Read);
        }
        5 => h.stack.close(&mut h.ctx, &sk),
        _ => {}
    }
    let s = &mut w.net.hosts[SERVER];
    while let Ok(sk) = s.stack.accept(&w.listener) {
        w.accepted.push(sk);
    }
}
