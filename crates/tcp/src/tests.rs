//! Scenario tests: two stacks back to back through the fake network, in
//! virtual time, checking the segments on the wire as well as what the
//! application sees.

use core::net::{Ipv4Addr, SocketAddrV4};

use netcore::{Duration, Errno, LinuxMib, TcpMib};
use wire::{TcpFlags, TcpOptions, TcpRepr};

use crate::testutil::{Impair, Net};
use crate::{MsgFlags, PollMask, Shutdown, SockOpt, SockOptName, TcpState};

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const URG: TcpFlags = TcpFlags::URG;
const PSH: TcpFlags = TcpFlags::PSH;
const RST: TcpFlags = TcpFlags::RST;

fn fnv(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut r = crate::SplitMix64::new(seed);
    (0..len).map(|_| r.next_u64() as u8).collect()
}

#[test]
fn handshake_segments_and_options() {
    let mut net = Net::new(2);
    let l = net.listen(1, 80, 128);
    let c = net.socket(0);
    assert_eq!(net.connect(0, &c, 1, 80), Err(Errno::InProgress));
    assert_eq!(c.state(), TcpState::SynSent);
    net.run_for_ms(10);
    assert_eq!(c.state(), TcpState::Established);
    let s = net.accept(1, &l).unwrap();
    assert_eq!(s.state(), TcpState::Established);
    assert_eq!(s.peer_addr(), c.local_addr());

    let log = &net.log;
    assert_eq!(log.len(), 3, "{log:#?}");
    // SYN: MSS 1460, SACK_PERM + TS, NOP, WS 10 (tcp_rmem[2] = 32 MiB).
    let syn = &log[0];
    assert!(syn.is(SYN));
    assert_eq!(syn.tcp.window, 64240);
    assert_eq!(
        syn.tcp.options,
        TcpOptions {
            mss: Some(1460),
            wscale: Some(10),
            sack_ok: true,
            timestamp: syn.tcp.options.timestamp,
            sack_blocks: wire::SackBlocks::new(),
        }
    );
    assert_eq!(syn.tcp.options.timestamp.unwrap().1, 0);
    // Ephemeral port in ip_local_port_range, even parity first.
    assert!((32768..=60999).contains(&syn.tcp.src_port));
    assert_eq!(syn.tcp.src_port % 2, 0);
    // SYN-ACK acks the ISN, echoes the TS.
    let sa = &log[1];
    assert!(sa.is(SYN | ACK));
    assert_eq!(sa.tcp.ack, syn.tcp.seq.wrapping_add(1));
    // The SYN-ACK's window is a multiple of the MSS less the TS option.
    assert_eq!(sa.tcp.window, 65160);
    assert_eq!(sa.tcp.options.mss, Some(1460));
    assert_eq!(sa.tcp.options.wscale, Some(10));
    assert!(sa.tcp.options.sack_ok);
    assert_eq!(
        sa.tcp.options.timestamp.unwrap().1,
        syn.tcp.options.timestamp.unwrap().0
    );
    // Final ACK: scaled window (64240 >> 10 rounded up), TS.
    let a = &log[2];
    assert!(a.is(ACK));
    assert_eq!(a.tcp.seq, syn.tcp.seq.wrapping_add(1));
    assert_eq!(a.tcp.ack, sa.tcp.seq.wrapping_add(1));
    assert_eq!(a.tcp.window, 63);
    assert!(a.tcp.options.timestamp.is_some());
    assert!(a.tcp.options.mss.is_none());
    assert_eq!(net.mib(0, TcpMib::ActiveOpens), 1);
    assert_eq!(net.mib(1, TcpMib::PassiveOpens), 1);
    assert_eq!(net.mib(0, TcpMib::CurrEstab), 1);
    assert_eq!(net.mib(1, TcpMib::CurrEstab), 1);
    let info = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    assert_eq!(info.snd_mss, 1448);
    assert_eq!(info.snd_cwnd, 10);
    assert_eq!(info.options, 7);
    assert!(info.rtt >= 1900 && info.rtt <= 2100, "rtt {}", info.rtt);
}

#[test]
fn data_transfer_and_delayed_ack_timing() {
    let mut net = Net::new(2);
    let (c, s) = net.connect_pair(80);
    net.log.clear();
    let t0 = net.now();
    assert_eq!(net.send(0, &c, &[7u8; 1000]), Ok(1000));
    net.run_for_ms(5);
    // Quick-ACK mode at the start: the ACK comes at once.
    let segs: Vec<_> = net.log.iter().collect();
    assert!(segs[0].is(PSH | ACK));
    assert_eq!(segs[0].len(), 1000);
    assert_eq!(segs[0].at, t0);
    assert!(segs[1].is(ACK));
    assert_eq!(segs[1].tcp.ack, segs[0].tcp.seq.wrapping_add(1000));
    assert_eq!(segs[1].at, t0 + Duration::from_millis(1));
    let mut buf = [0u8; 2000];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(1000));
    assert!(buf[..1000].iter().all(|&b| b == 7));
    assert_eq!(net.recv(1, &s, &mut buf), Err(Errno::Again));
    // Peer sends FIN: in CLOSE-WAIT the ACK is delayed by 40 ms (pingpong).
    net.log.clear();
    net.shutdown(0, &c, Shutdown::Write).unwrap();
    assert_eq!(c.state(), TcpState::FinWait1);
    net.run_for_ms(100);
    assert_eq!(s.state(), TcpState::CloseWait);
    let fin = &net.log[0];
    assert!(fin.is(FIN | ACK));
    let ack = &net.log[1];
    assert!(ack.is(ACK));
    assert_eq!(ack.at - fin.at, Duration::from_millis(41));
    assert_eq!(net.mib(1, LinuxMib::DelayedAcks), 1);
    assert_eq!(c.state(), TcpState::FinWait2);
    assert_eq!(net.recv(1, &s, &mut buf), Ok(0));
}

#[test]
fn transfer_10mb_hash_equal() {
    let mut net = Net::new(2);
    net.logging = false;
    let (c, s) = net.connect_pair(5001);
    let data = pattern(10 << 20, 9);
    let mut sent = 0;
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 65536];
    let ok = net.run_until(Duration::from_secs(600), |n| {
        if sent < data.len()
            && let Ok(k) = n.send(0, &c, &data[sent..])
        {
            sent += k;
        }
        while let Ok(k) = n.recv(1, &s, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    });
    assert!(ok, "received {} of {}", got.len(), data.len());
    net.run_for_ms(300);
    assert_eq!(fnv(&got), fnv(&data));
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 0);
    let info = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    // The SYN counts one, as in tcp_snd_una_update().
    assert_eq!(info.bytes_acked, data.len() as u64 + 1);
    assert_eq!(info.total_retrans, 0);
}

/// Runs a bidirectional-close scenario and returns the two sockets.
fn pair() -> (
    Net,
    std::sync::Arc<crate::TcpSocket>,
    std::sync::Arc<crate::TcpSocket>,
) {
    let mut net = Net::new(2);
    let (c, s) = net.connect_pair(80);
    net.log.clear();
    (net, c, s)
}

#[test]
fn orderly_close_active_and_passive_with_time_wait_60s() {
    let (mut net, c, s) = pair();
    net.close(0, &c);
    assert_eq!(c.state(), TcpState::FinWait1);
    net.run_for_ms(5);
    // The orphan's full socket is gone: a FIN-WAIT-2 mini socket remains.
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(s.state(), TcpState::CloseWait);
    assert_eq!(net.hosts[0].stack.socket_count(), 0);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    assert_eq!(net.hosts[0].stack.ss(net.now())[0].state, "FIN-WAIT-2");
    let mut buf = [0u8; 8];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(0));
    net.close(1, &s);
    assert_eq!(s.state(), TcpState::LastAck);
    let t_close = net.now();
    net.run_for_ms(5);
    assert_eq!(s.state(), TcpState::Close);
    assert_eq!(net.hosts[1].stack.socket_count(), 0);
    // tcp_done() of the orphan left none of its timers on the host, lazily
    // cleared ones included.
    assert_eq!(net.hosts[1].ctx.timers(), [], "timers left after close");
    // Wire: FIN (client), ACK (delayed 40 ms in CLOSE-WAIT? no: the close
    // came first, so the FIN went out and the ACK of the FIN came at once),
    // FIN (server), ACK (client, from TIME-WAIT).
    let flags: Vec<_> = net.log.iter().map(|s| s.tcp.flags).collect();
    assert_eq!(flags, [FIN | ACK, ACK, FIN | ACK, ACK], "{:#?}", net.log);
    let ss = net.hosts[0].stack.ss(net.now());
    assert_eq!(ss.len(), 1);
    assert_eq!(ss[0].state, "TIME-WAIT");
    // TIME-WAIT lasts TCP_TIMEWAIT_LEN from the FIN's arrival.
    net.run_until_time(t_close + Duration::from_millis(59_990));
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    net.run_until_time(t_close + Duration::from_millis(60_010));
    assert_eq!(net.hosts[0].stack.time_wait_count(), 0);
    assert_eq!(net.mib(0, LinuxMib::TimeWaited), 1);
    assert_eq!(net.mib(0, TcpMib::CurrEstab), 0);
    assert_eq!(net.mib(1, TcpMib::CurrEstab), 0);
    assert_eq!(net.mib(0, TcpMib::EstabResets), 0);
}

#[test]
fn close_with_unread_data_and_linger_zero_send_rst() {
    let (mut net, c, s) = pair();
    net.send(0, &c, b"unread").unwrap();
    net.run_for_ms(5);
    net.close(1, &s);
    net.run_for_ms(5);
    let rst = net
        .from(1)
        .into_iter()
        .find(|x| x.tcp.flags.contains(RST))
        .cloned()
        .unwrap();
    assert!(rst.is(RST | ACK));
    assert_eq!(net.mib(1, LinuxMib::TcpAbortOnClose), 1);
    assert_eq!(net.mib(1, TcpMib::OutRsts), 1);
    assert_eq!(c.state(), TcpState::Close);
    let mut buf = [0u8; 8];
    assert_eq!(net.recv(0, &c, &mut buf), Err(Errno::ConnReset));
    assert_eq!(net.mib(0, TcpMib::EstabResets), 1);

    let (mut net, c, s) = pair();
    net.setsockopt(0, &c, SockOpt::Linger(Some(0))).unwrap();
    net.close(0, &c);
    net.run_for_ms(5);
    assert!(net.log[0].is(RST | ACK));
    assert_eq!(s.state(), TcpState::Close);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 0);
}

#[test]
fn connect_refused_by_rst() {
    let mut net = Net::new(2);
    let c = net.socket(0);
    assert_eq!(net.connect(0, &c, 1, 9), Err(Errno::InProgress));
    net.run_for_ms(5);
    assert!(net.log[0].is(SYN));
    assert!(net.log[1].is(RST | ACK));
    assert_eq!(net.log[1].tcp.ack, net.log[0].tcp.seq.wrapping_add(1));
    assert_eq!(c.state(), TcpState::Close);
    let h = &net.hosts[0];
    assert_eq!(
        h.stack.getsockopt(&h.ctx, &c, SockOptName::Error),
        Ok(i64::from(Errno::ConnRefused as i32))
    );
    assert_eq!(net.mib(0, TcpMib::AttemptFails), 1);
    assert_eq!(net.mib(1, TcpMib::OutRsts), 1);
}

#[test]
fn syn_retransmits_linear_then_exponential_then_etimedout() {
    let mut net = Net::new(2);
    net.set_drop_filter(|s| s.tcp.flags.contains(SYN));
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(200_000);
    let syns: Vec<_> = net
        .log
        .iter()
        .filter(|s| s.is(SYN))
        .map(|s| s.at.as_millis())
        .collect();
    // tcp_syn_retries 6 + tcp_syn_linear_timeouts 4 = 10 retransmissions.
    assert_eq!(
        syns,
        [
            0, 1000, 2000, 3000, 4000, 5000, 7000, 11000, 19000, 35000, 67000
        ]
    );
    assert_eq!(c.state(), TcpState::Close);
    let h = &net.hosts[0];
    assert_eq!(
        h.stack.getsockopt(&h.ctx, &c, SockOptName::Error),
        Ok(i64::from(Errno::TimedOut as i32))
    );
    assert_eq!(net.mib(0, LinuxMib::TcpSynRetrans), 10);
    assert_eq!(net.mib(0, TcpMib::AttemptFails), 1);
}

#[test]
fn synack_retransmission_and_lost_final_ack() {
    let mut net = Net::new(2);
    let l = net.listen(1, 80, 16);
    // Drop the client's first two segments after the SYN (final ACK).
    let mut dropped = 0;
    net.set_drop_filter(move |s| {
        if s.is(ACK) && s.src == Ipv4Addr::new(198, 18, 0, 1) && dropped < 1 {
            dropped += 1;
            return true;
        }
        false
    });
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(1500);
    // The SYN-ACK was resent after 1 s; the client ACKed it again.
    let synacks: Vec<_> = net
        .log
        .iter()
        .filter(|s| s.is(SYN | ACK))
        .map(|s| s.at.as_millis())
        .collect();
    assert_eq!(synacks, [1, 1001]);
    assert_eq!(c.state(), TcpState::Established);
    assert!(net.accept(1, &l).is_ok());
    assert_eq!(net.mib(1, LinuxMib::TcpSynRetrans), 1);
}

/// A socket on host 0 bound to port 1111 and one on host 1 bound to 2222,
/// for the simultaneous-open tests.
fn bound_pair(
    net: &mut Net,
) -> (
    std::sync::Arc<crate::TcpSocket>,
    std::sync::Arc<crate::TcpSocket>,
) {
    let a = net.socket(0);
    let b = net.socket(1);
    for (i, sk, port) in [(0, &a, 1111u16), (1, &b, 2222)] {
        let h = &mut net.hosts[i];
        h.stack
            .bind(
                &mut h.ctx,
                sk,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
            )
            .unwrap();
    }
    (a, b)
}

#[test]
fn simultaneous_open_and_simultaneous_close() {
    let mut net = Net::new(2);
    let (a, b) = bound_pair(&mut net);
    assert_eq!(net.connect(0, &a, 1, 2222), Err(Errno::InProgress));
    assert_eq!(net.connect(1, &b, 0, 1111), Err(Errno::InProgress));
    net.run_for_ms(20);
    assert_eq!(a.state(), TcpState::Established);
    assert_eq!(b.state(), TcpState::Established);
    // Crossed SYNs, then each side answers with SYN-ACK, then ACKs.
    assert!(net.log[0].is(SYN) && net.log[1].is(SYN));
    assert_eq!(net.log.iter().filter(|s| s.is(SYN | ACK)).count(), 2);
    net.send(0, &a, b"x").unwrap();
    net.run_for_ms(5);
    let mut buf = [0u8; 4];
    assert_eq!(net.recv(1, &b, &mut buf), Ok(1));
    // Simultaneous close: both FINs cross, both go through CLOSING.
    net.log.clear();
    net.close(0, &a);
    net.close(1, &b);
    assert_eq!(a.state(), TcpState::FinWait1);
    net.run_for_ms(1);
    let flags: Vec<_> = net.log.iter().take(4).map(|s| s.tcp.flags).collect();
    assert_eq!(flags, [FIN | ACK, FIN | ACK, ACK, ACK]);
    net.run_for_ms(10);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    assert_eq!(net.hosts[1].stack.time_wait_count(), 1);
    assert_eq!(net.hosts[0].stack.socket_count(), 0);
}

#[test]
fn shutdown_write_then_read_half_close() {
    let (mut net, c, s) = pair();
    net.shutdown(0, &c, Shutdown::Write).unwrap();
    net.run_for_ms(50);
    assert_eq!(net.send(0, &c, b"x"), Err(Errno::Pipe));
    // The server can still send to the half-closed client.
    net.send(1, &s, b"reply").unwrap();
    net.run_for_ms(5);
    let mut buf = [0u8; 8];
    assert_eq!(net.recv(0, &c, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"reply");
    assert_eq!(net.recv(1, &s, &mut buf), Ok(0));
    assert!(
        net.hosts[1]
            .stack
            .poll(&s)
            .contains(PollMask::RDHUP | PollMask::IN | PollMask::OUT)
    );
    // SHUT_RD: reads return 0 at once.
    net.shutdown(1, &s, Shutdown::Read).unwrap();
    assert_eq!(net.recv(1, &s, &mut buf), Ok(0));
    net.close(1, &s);
    net.run_for_ms(5);
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
}

#[test]
fn msg_peek_and_poll() {
    let (mut net, c, s) = pair();
    assert_eq!(
        net.hosts[1].stack.poll(&s),
        PollMask::OUT | PollMask::WRNORM
    );
    net.send(0, &c, b"abcdef").unwrap();
    net.run_for_ms(5);
    assert!(net.hosts[1].stack.poll(&s).contains(PollMask::IN));
    let mut buf = [0u8; 4];
    assert_eq!(net.recv_flags(1, &s, &mut buf, MsgFlags::PEEK), Ok(4));
    assert_eq!(&buf, b"abcd");
    assert_eq!(net.recv(1, &s, &mut buf), Ok(4));
    assert_eq!(&buf, b"abcd");
    assert_eq!(net.recv(1, &s, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"ef");
}

#[test]
fn nagle_on_and_off_packet_counts() {
    // Ten 100-byte writes while the first is unacknowledged.
    let count = |nodelay: bool| {
        let (mut net, c, _s) = pair();
        net.setsockopt(0, &c, SockOpt::NoDelay(nodelay)).unwrap();
        for _ in 0..10 {
            net.send(0, &c, &[1u8; 100]).unwrap();
        }
        net.run_for_ms(50);
        net.from(0)
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.len())
            .collect::<Vec<_>>()
    };
    // Nagle: one small segment, then the rest coalesced when it is acked.
    assert_eq!(count(false), [100, 900]);
    // TCP_NODELAY: every write is its own segment.
    assert_eq!(count(true), [100; 10]);
}

#[test]
fn cork_and_msg_more_hold_partial_segments() {
    let (mut net, c, _s) = pair();
    net.setsockopt(0, &c, SockOpt::Cork(true)).unwrap();
    net.send(0, &c, &[1; 40]).unwrap();
    net.run_for_ms(50);
    net.send(0, &c, &[1; 40]).unwrap();
    net.run_for_ms(10);
    assert!(net.log.is_empty());
    net.setsockopt(0, &c, SockOpt::Cork(false)).unwrap();
    assert!(net.log[0].is(PSH | ACK));
    assert_eq!(net.log[0].len(), 80);
    net.run_for_ms(10);
    net.log.clear();
    // MSG_MORE: held, then TCP_NODELAY pushes them, without PSH.
    net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
    net.send_flags(0, &c, &[1; 40], MsgFlags::MORE).unwrap();
    net.run_for_ms(50);
    net.send_flags(0, &c, &[1; 40], MsgFlags::MORE).unwrap();
    net.run_for_ms(10);
    assert!(net.log.is_empty());
    net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
    assert!(net.log[0].is(ACK));
    assert_eq!(net.log[0].len(), 80);
}

#[test]
fn accept_queue_overflow_counts_and_drops_final_ack() {
    let mut net = Net::new(2);
    let l = net.listen(1, 80, 1);
    // A completes and waits in the accept queue.
    let a = net.socket(0);
    let _ = net.connect(0, &a, 1, 80);
    net.run_for_ms(10);
    // B and C handshake at once: both SYNs find room; B's ACK fills the
    // queue (backlog 1 holds two: sk_acceptq_is_full() is "more than"),
    // C's ACK is dropped.
    let b = net.socket(0);
    let c = net.socket(0);
    let _ = net.connect(0, &b, 1, 80);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(10);
    assert_eq!(net.mib(1, LinuxMib::ListenOverflows), 1);
    assert_eq!(net.mib(1, LinuxMib::ListenDrops), 1);
    assert_eq!(net.mib(1, TcpMib::PassiveOpens), 2);
    assert_eq!(net.mib(1, LinuxMib::SyncookiesSent), 0);
    // C thinks it is connected; its request waits on the server.
    assert_eq!(c.state(), TcpState::Established);
    assert_eq!(net.accept(1, &l).unwrap().peer_addr(), a.local_addr());
    assert_eq!(net.accept(1, &l).unwrap().peer_addr(), b.local_addr());
    assert_eq!(net.accept(1, &l).err(), Some(Errno::Again));
    // The SYN-ACK retransmission after 1 s makes C ACK again (a challenge
    // ACK for the old SYN); now the child is created.
    net.run_for_ms(1500);
    assert_eq!(net.accept(1, &l).unwrap().peer_addr(), c.local_addr());
    assert_eq!(net.mib(1, LinuxMib::TcpSynRetrans), 1);
    assert_eq!(net.mib(0, LinuxMib::TcpSynChallenge), 1);
    // With the queue full, a new SYN is dropped outright.
    for _ in 0..2 {
        let d = net.socket(0);
        let _ = net.connect(0, &d, 1, 80);
        net.run_for_ms(10);
    }
    net.log.clear();
    let f = net.socket(0);
    let _ = net.connect(0, &f, 1, 80);
    net.run_for_ms(10);
    assert_eq!(net.log.len(), 1, "only the SYN: {:#?}", net.log);
    assert_eq!(f.state(), TcpState::SynSent);
    assert_eq!(net.mib(1, LinuxMib::ListenOverflows), 2);
    assert_eq!(net.mib(1, LinuxMib::ListenDrops), 2);
}

#[test]
fn syn_flood_with_cookies_legit_client_connects() {
    let mut net = Net::new(2);
    let l = net.listen(1, 80, 8);
    // 200 spoofed SYNs from an address nobody answers for.
    for i in 0..200u16 {
        let syn = TcpRepr {
            src_port: 10000 + i,
            dst_port: 80,
            seq: u32::from(i) * 7777,
            ack: 0,
            flags: SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                ..TcpOptions::default()
            },
            payload_len: 0,
        };
        net.inject(Ipv4Addr::new(198, 18, 0, 99), 1, &syn, &[]);
    }
    net.run_for_ms(5);
    assert!(net.mib(1, LinuxMib::SyncookiesSent) >= 190);
    assert!(net.mib(1, LinuxMib::TcpReqQFullDoCookies) >= 190);
    // A real client still gets in, through a cookie.
    net.log.clear();
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(10);
    assert_eq!(c.state(), TcpState::Established);
    let s = net.accept(1, &l).unwrap();
    assert_eq!(net.mib(1, LinuxMib::SyncookiesRecv), 1);
    // The cookie SYN-ACK's TS value carries wscale and SACK in its low bits.
    let sa = net.log.iter().find(|s| s.is(SYN | ACK)).unwrap();
    assert!(sa.tcp.options.sack_ok && sa.tcp.options.wscale.is_some());
    let info = net.hosts[1].stack.tcp_info(&net.hosts[1].ctx, &s);
    assert_eq!(info.snd_wscale, 10);
    assert_eq!(info.options, 7);
    // Data flows both ways.
    net.send(0, &c, b"ping").unwrap();
    net.run_for_ms(5);
    let mut buf = [0u8; 8];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(4));
    // A forged cookie ACK fails.
    let bad = TcpRepr {
        src_port: 4444,
        dst_port: 80,
        seq: 1,
        ack: 12345,
        flags: ACK,
        window: 100,
        urgent: 0,
        options: TcpOptions::default(),
        payload_len: 0,
    };
    net.inject(Ipv4Addr::new(198, 18, 0, 1), 1, &bad, &[]);
    net.run_for_ms(5);
    assert_eq!(net.mib(1, LinuxMib::SyncookiesFailed), 1);
    let rst = net
        .from(1)
        .into_iter()
        .rev()
        .find(|s| s.tcp.dst_port == 4444)
        .cloned()
        .unwrap();
    assert!(rst.is(RST));
    assert_eq!(rst.tcp.seq, 12345);
}

#[test]
fn keepalive_probes_then_timeout() {
    let (mut net, c, s) = pair();
    net.setsockopt(0, &c, SockOpt::KeepIdle(10)).unwrap();
    net.setsockopt(0, &c, SockOpt::KeepIntvl(2)).unwrap();
    net.setsockopt(0, &c, SockOpt::KeepCnt(3)).unwrap();
    net.setsockopt(0, &c, SockOpt::KeepAlive(true)).unwrap();
    let t0 = net.now();
    net.run_for_ms(10_500);
    // One probe at 10 s: seq = snd_una - 1, no data; the peer ACKs it.
    let probes: Vec<_> = net
        .from(0)
        .into_iter()
        .filter(|x| x.is(ACK))
        .cloned()
        .collect();
    assert_eq!(probes.len(), 1);
    assert_eq!((probes[0].at - t0).as_millis(), 10_000);
    let snd_una = net.hosts[1]
        .stack
        .tcp_info(&net.hosts[1].ctx, &s)
        .bytes_received;
    assert_eq!(snd_una, 0);
    assert!(net.from(1).iter().any(|x| x.at > probes[0].at && x.is(ACK)));
    assert_eq!(net.mib(0, LinuxMib::TcpKeepAlive), 1);
    // Now the peer disappears: 10 s after its last ACK (at 10.002 s) a
    // probe, then one every 2 s; after 3 unanswered, RST and ETIMEDOUT.
    net.set_drop_filter(|s| s.src == Ipv4Addr::new(198, 18, 0, 2));
    net.log.clear();
    net.run_for_ms(30_000);
    let at: Vec<_> = net
        .from(0)
        .iter()
        .map(|x| (x.at - t0).as_millis())
        .collect();
    assert_eq!(at, [20_002, 22_002, 24_002, 26_002], "{:#?}", net.log);
    assert!(net.log.last().unwrap().tcp.flags.contains(RST));
    assert_eq!(c.state(), TcpState::Close);
    let h = &net.hosts[0];
    assert_eq!(
        h.stack.getsockopt(&h.ctx, &c, SockOptName::Error),
        Ok(i64::from(Errno::TimedOut as i32))
    );
}

#[test]
fn zero_window_and_persist_probes() {
    let mut net = Net::new(2);
    // A small receive buffer (set on the listener, inherited) fills up.
    let l = net.socket(1);
    net.setsockopt(1, &l, SockOpt::RcvBuf(4096)).unwrap();
    {
        let h = &mut net.hosts[1];
        h.stack
            .bind(&mut h.ctx, &l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80))
            .unwrap();
        h.stack.listen(&mut h.ctx, &l, 8).unwrap();
    }
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(10);
    let s = net.accept(1, &l).unwrap();
    let syn_ack = net.log.iter().find(|x| x.is(SYN | ACK)).unwrap();
    assert_eq!(syn_ack.tcp.window, 2896);
    let data = pattern(64 * 1024, 3);
    let mut sent = 0;
    for _ in 0..50 {
        if let Ok(k) = net.send(0, &c, &data[sent..]) {
            sent += k;
        }
        net.run_for_ms(20);
    }
    let zero = net.from(1).into_iter().any(|x| x.tcp.window == 0);
    assert!(zero, "receiver never advertised a zero window");
    assert!(net.mib(1, LinuxMib::TcpToZeroWindowAdv) >= 1);
    // Probes go out with growing intervals while the window stays shut.
    net.log.clear();
    net.run_for_ms(15_000);
    let probes: Vec<_> = net.from(0).into_iter().cloned().collect();
    assert!(probes.len() >= 3, "{probes:?}");
    // Each probe is an old sequence number without data (tcp_xmit_probe_skb).
    let snd_una = net.from(1).last().unwrap().tcp.ack;
    assert!(
        probes
            .iter()
            .all(|p| p.is_empty() && p.tcp.seq == snd_una.wrapping_sub(1))
    );
    // The interval doubles (tcp_probe0_when()); each answer re-arms the
    // timer from its arrival (tcp_ack_probe()), one RTT (2 ms) later.
    let gaps: Vec<_> = probes
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis())
        .collect();
    assert!(gaps.windows(2).all(|g| g[1] + 2 == 2 * g[0]), "{gaps:?}");
    assert!(net.mib(0, LinuxMib::TcpWinProbe) >= 3);
    assert_eq!(c.state(), TcpState::Established);
    // The reader drains: the window opens and everything arrives.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    let ok = net.run_until(Duration::from_secs(120), |n| {
        if sent < data.len()
            && let Ok(k) = n.send(0, &c, &data[sent..])
        {
            sent += k;
        }
        while let Ok(k) = n.recv(1, &s, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    });
    assert!(ok, "got {}", got.len());
    assert_eq!(fnv(&got), fnv(&data));
    assert!(net.mib(1, LinuxMib::TcpFromZeroWindowAdv) >= 1);
}

/// A GRO packet (headers and the first payload in the linear part, the
/// other frames' payloads in fragments) is checksummed across its
/// pieces, queued as it is (no copy into the receive queue) and read back
/// byte-exact, its memory charge given back in full; a corrupt byte in a
/// fragment is an `InCsumErrors` drop that queues nothing.
#[test]
fn gro_packet_is_queued_without_a_copy_and_read_back_exactly() {
    let (mut net, c, s) = pair();
    let cl = c.local_addr();
    let sa = s.local_addr();
    let (seq, ack) = {
        let tp = s.lock();
        (tp.rcv_nxt, tp.snd_nxt)
    };
    let payload: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let repr = TcpRepr {
        src_port: cl.port(),
        dst_port: sa.port(),
        seq,
        ack,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 1000,
        urgent: 0,
        options: TcpOptions::default(),
        payload_len: payload.len(),
    };
    let hl = repr.header_len();
    let mut segment = vec![0u8; hl + payload.len()];
    segment[hl..].copy_from_slice(&payload);
    repr.emit(&mut segment, *cl.ip(), *sa.ip()).unwrap();
    let in_segs = net.mib(1, TcpMib::InSegs);

    // A corrupt byte in the second fragment: dropped, counted, nothing queued.
    let mut bad = segment.clone();
    bad[hl + 2500] ^= 0x40;
    net.deliver_nonlinear(*cl.ip(), 1, &bad, 1000, 1000);
    assert_eq!(net.mib(1, TcpMib::InCsumErrors), 1);
    assert_eq!(s.lock().rcv_nxt, seq);
    assert_eq!(net.recv(1, &s, &mut [0u8; 16]), Err(Errno::Again));

    net.deliver_nonlinear(*cl.ip(), 1, &segment, 1000, 1000);
    assert_eq!(
        net.mib(1, TcpMib::InSegs),
        in_segs + 1,
        "one skb, one InSegs"
    );
    assert_eq!(net.mib(1, TcpMib::InCsumErrors), 1);
    {
        let tp = s.lock();
        assert_eq!(tp.rcv_nxt, seq.wrapping_add(3000));
        assert_eq!(tp.receive_queue.len(), 1);
        let q = tp.receive_queue.back().unwrap();
        assert!(q.skb.is_nonlinear(), "queued as GRO left it");
        assert_eq!((q.skb.headlen(), q.skb.nr_frags()), (1000, 2));
        assert_eq!(tp.rmem_alloc, q.skb.truesize() as u32);
    }
    assert_eq!(net.mib(1, LinuxMib::TcpRcvCoalesce), 0);
    // Read in pieces that straddle the linear part and the fragments.
    let mut got = Vec::new();
    for n in [700, 900, 1400] {
        let mut buf = vec![0u8; n];
        let k = net.recv(1, &s, &mut buf).unwrap();
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(got, payload);
    assert_eq!(net.recv(1, &s, &mut [0u8; 64]), Err(Errno::Again));
    assert_eq!(s.lock().rmem_alloc, 0, "the charge came back in full");
}

/// GRO packets off the in-order path: one that overlaps data already
/// received is cut at the front where it lies, and one beyond a hole
/// waits in the out-of-order queue as it is and moves over when the hole
/// fills; nothing is made linear (so nothing outgrows the buffer and is
/// pruned), the reader gets every byte once, in order, and the receive
/// memory charge comes back in full.
#[test]
fn gro_packets_overlapping_or_out_of_order_are_read_back_exactly() {
    let (mut net, c, s) = pair();
    let cl = c.local_addr();
    let sa = s.local_addr();
    let (seq, ack) = {
        let tp = s.lock();
        (tp.rcv_nxt, tp.snd_nxt)
    };
    let stream: Vec<u8> = (0..6000u32).map(|i| (i * 13 + i / 509) as u8).collect();
    // The segment carrying stream[from..to], as GRO leaves it.
    let deliver = |net: &mut Net, from: usize, to: usize| {
        let repr = TcpRepr {
            src_port: cl.port(),
            dst_port: sa.port(),
            seq: seq.wrapping_add(from as u32),
            ack,
            flags: TcpFlags::ACK,
            window: 1000,
            urgent: 0,
            options: TcpOptions::default(),
            payload_len: to - from,
        };
        let hl = repr.header_len();
        let mut b = vec![0u8; hl + to - from];
        b[hl..].copy_from_slice(&stream[from..to]);
        repr.emit(&mut b, *cl.ip(), *sa.ip()).unwrap();
        net.deliver_nonlinear(*cl.ip(), 1, &b, 700, 600);
    };
    deliver(&mut net, 0, 1000);
    deliver(&mut net, 500, 3000); // overlaps 500 bytes held
    assert_eq!(s.lock().rcv_nxt, seq.wrapping_add(3000));
    deliver(&mut net, 4000, 6000); // beyond a hole
    {
        let tp = s.lock();
        assert_eq!(tp.ofo_queue.len(), 1);
        assert!(tp.ofo_queue[0].skb.is_nonlinear(), "queued as it came");
    }
    deliver(&mut net, 3000, 4000); // fills it
    assert_eq!(s.lock().rcv_nxt, seq.wrapping_add(6000));
    assert_eq!(net.mib(1, LinuxMib::PruneCalled), 0);
    assert!(net.mib(1, LinuxMib::TcpOfoQueue) >= 1);
    let mut got = Vec::new();
    let mut buf = [0u8; 1700];
    while let Ok(k) = net.recv(1, &s, &mut buf) {
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(got, stream);
    let tp = s.lock();
    assert_eq!((tp.rmem_alloc, tp.ofo_queue.len()), (0, 0));
}

#[test]
fn rfc5961_challenge_acks() {
    let (mut net, c, s) = pair();
    let cl = c.local_addr();
    let h1 = &net.hosts[1];
    let info = h1.stack.tcp_info(&h1.ctx, &s);
    let _ = info;
    // Learn the server's rcv_nxt from the last ACK the client sent.
    net.send(0, &c, b"hello").unwrap();
    net.run_for_ms(5);
    let last = net.from(0).into_iter().last().cloned().unwrap();
    let rcv_nxt = last.tcp.seq.wrapping_add(5);
    let mk = |seq: u32, flags: TcpFlags| TcpRepr {
        src_port: cl.port(),
        dst_port: 80,
        seq,
        ack: 0,
        flags,
        window: 100,
        urgent: 0,
        options: TcpOptions::default(),
        payload_len: 0,
    };
    net.log.clear();
    // In-window but inexact RST: challenge ACK, connection survives.
    net.inject(*cl.ip(), 1, &mk(rcv_nxt.wrapping_add(100), RST), &[]);
    net.run_for_ms(5);
    assert_eq!(s.state(), TcpState::Established);
    assert_eq!(net.mib(1, LinuxMib::TcpChallengeAck), 1);
    let ch = net
        .from(1)
        .into_iter()
        .find(|x| x.is(ACK))
        .cloned()
        .unwrap();
    assert_eq!(ch.tcp.ack, rcv_nxt);
    // Out-of-window RST: dropped silently.
    net.log.clear();
    net.inject(*cl.ip(), 1, &mk(rcv_nxt.wrapping_add(10_000_000), RST), &[]);
    net.run_for_ms(5);
    assert!(net.from(1).is_empty());
    assert_eq!(s.state(), TcpState::Established);
    // A SYN on an established connection: challenge ACK (after the
    // per-socket 500 ms limit), TCPSYNChallenge.
    net.run_for_ms(600);
    net.inject(*cl.ip(), 1, &mk(rcv_nxt.wrapping_add(7), SYN), &[]);
    net.run_for_ms(5);
    assert_eq!(net.mib(1, LinuxMib::TcpSynChallenge), 1);
    assert_eq!(net.mib(1, LinuxMib::TcpChallengeAck), 2);
    assert_eq!(s.state(), TcpState::Established);
    // Within 500 ms a second challenge is skipped.
    net.inject(*cl.ip(), 1, &mk(rcv_nxt.wrapping_add(9), RST), &[]);
    net.run_for_ms(5);
    assert_eq!(net.mib(1, LinuxMib::TcpAckSkippedChallenge), 1);
    // The exact RST resets.
    net.inject(*cl.ip(), 1, &mk(rcv_nxt, RST), &[]);
    net.run_for_ms(5);
    assert_eq!(s.state(), TcpState::Close);
    let mut buf = [0u8; 16];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(5));
    assert_eq!(net.recv(1, &s, &mut buf), Err(Errno::ConnReset));
}

#[test]
fn fast_retransmit_after_three_dupacks() {
    let (mut net, c, s) = pair();
    // Drop the third data segment once.
    let mut n = 0;
    net.set_drop_filter(move |x| {
        if !x.is_empty() && x.src == Ipv4Addr::new(198, 18, 0, 1) {
            n += 1;
            return n == 3;
        }
        false
    });
    let data = pattern(8 * 1448, 5);
    net.send(0, &c, &data).unwrap();
    net.run_for_ms(50);
    let mut buf = vec![0u8; 20000];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(data.len()));
    assert_eq!(&buf[..data.len()], &data[..]);
    // Dupacks carried SACK blocks; the hole was resent before any RTO.
    let sacks = net
        .from(1)
        .iter()
        .filter(|x| !x.tcp.options.sack_blocks.is_empty())
        .count();
    assert!(sacks >= 3, "{sacks}");
    assert_eq!(net.mib(0, LinuxMib::TcpSackRecovery), 1);
    assert_eq!(net.mib(0, LinuxMib::TcpTimeouts), 0);
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 1);
    let retx: Vec<_> = net.from(0).into_iter().filter(|x| !x.is_empty()).collect();
    assert_eq!(retx.last().unwrap().tcp.seq, retx[2].tcp.seq);
    assert_eq!(net.mib(1, LinuxMib::TcpOfoQueue), 5);
}

#[test]
fn rto_backoff_and_retries2_etimedout() {
    let (mut net, c, _s) = pair();
    net.set_drop_filter(|x| x.src == Ipv4Addr::new(198, 18, 0, 2));
    let t0 = net.now();
    net.send(0, &c, b"lost").unwrap();
    net.run_for_ms(1_000_000);
    let at: Vec<_> = net
        .from(0)
        .iter()
        .filter(|x| !x.is_empty())
        .map(|x| (x.at - t0).as_millis())
        .collect();
    // A tail loss probe first (2·SRTT + TCP_RTO_MIN for one segment,
    // capped by the RTO), then the RTO starts near 200 ms + RTT and
    // doubles up to 120 s; 15 retries.
    assert_eq!(at.len(), 17, "{at:?}");
    assert_eq!(net.mib(0, LinuxMib::TcpLossProbes), 1);
    let gaps: Vec<_> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert!((200..=210).contains(&gaps[0]), "{gaps:?}");
    assert!((200..=210).contains(&gaps[1]), "{gaps:?}");
    assert_eq!(gaps[2], gaps[1] * 2);
    assert_eq!(*gaps.last().unwrap(), 120_000);
    assert_eq!(c.state(), TcpState::Close);
    let h = &net.hosts[0];
    assert_eq!(
        h.stack.getsockopt(&h.ctx, &c, SockOptName::Error),
        Ok(i64::from(Errno::TimedOut as i32))
    );
    assert_eq!(net.mib(0, LinuxMib::TcpTimeouts), 16);
}

/// Sends `len` bytes each way at once over an impaired wire and checks
/// both streams arrive whole, then closes both sides.
fn lossy_transfer(seed: u64, impair: Impair, len: usize) {
    let mut net = Net::with_seed(2, seed);
    net.logging = false;
    let (c, s) = net.connect_pair(80);
    net.impair = impair;
    let data = [pattern(len, seed), pattern(len, seed + 1000)];
    let socks = [c.clone(), s.clone()];
    let mut sent = [0usize; 2];
    let mut got = [Vec::with_capacity(len), Vec::with_capacity(len)];
    let mut buf = vec![0u8; 65536];
    let ok = net.run_until(Duration::from_secs(3600), |n| {
        for i in 0..2 {
            if sent[i] < len
                && let Ok(k) = n.send(i, &socks[i], &data[i][sent[i]..])
            {
                sent[i] += k;
            }
            while let Ok(k) = n.recv(1 - i, &socks[1 - i], &mut buf) {
                if k == 0 {
                    break;
                }
                got[1 - i].extend_from_slice(&buf[..k]);
            }
        }
        got[0].len() == len && got[1].len() == len
    });
    assert!(
        ok,
        "seed {seed} {impair:?}: got {} and {} of {len}",
        got[0].len(),
        got[1].len()
    );
    assert_eq!(fnv(&got[1]), fnv(&data[0]), "seed {seed} {impair:?}");
    assert_eq!(fnv(&got[0]), fnv(&data[1]), "seed {seed} {impair:?}");
    // Close cleanly too.
    net.close(0, &c);
    net.close(1, &s);
    let ok = net.run_until(Duration::from_secs(600), |n| {
        n.hosts[0].stack.socket_count() == 0 && n.hosts[1].stack.socket_count() == 0
    });
    assert!(ok, "seed {seed}: close did not finish");
}

#[test]
fn integrity_under_loss_reordering_duplication() {
    for seed in 1..=5 {
        for loss in [0.01, 0.05, 0.10] {
            lossy_transfer(
                seed,
                Impair {
                    loss,
                    ..Impair::default()
                },
                1 << 19,
            );
        }
        lossy_transfer(
            seed,
            Impair {
                reorder: 0.1,
                reorder_delay: Duration::from_millis(3),
                ..Impair::default()
            },
            1 << 19,
        );
        lossy_transfer(
            seed,
            Impair {
                duplicate: 0.1,
                ..Impair::default()
            },
            1 << 19,
        );
        lossy_transfer(
            seed,
            Impair {
                loss: 0.05,
                duplicate: 0.05,
                reorder: 0.05,
                reorder_delay: Duration::from_millis(2),
            },
            1 << 19,
        );
    }
}

#[test]
fn idle_connection_footprint() {
    let (mut net, c, s) = pair();
    // Traffic both ways, all read: the queues are released afterwards.
    let (a, b) = (pattern(100_000, 1), pattern(50_000, 2));
    let mut sent = [0usize; 2];
    let mut buf = vec![0u8; 200_000];
    let mut got = [0usize; 2];
    net.run_until(Duration::from_secs(10), |n| {
        sent[0] += n.send(0, &c, &a[sent[0]..]).unwrap_or(0);
        sent[1] += n.send(1, &s, &b[sent[1]..]).unwrap_or(0);
        got[1] += n.recv(1, &s, &mut buf).unwrap_or(0);
        got[0] += n.recv(0, &c, &mut buf).unwrap_or(0);
        got == [50_000, 100_000]
    });
    assert_eq!(got, [50_000, 100_000]);
    net.run_for_ms(1000);
    for sk in [&c, &s] {
        let f = sk.footprint();
        assert!(f <= 1000, "idle socket holds {f} bytes");
    }
}

#[test]
fn ss_listing() {
    let mut net = Net::new(2);
    let _l = net.listen(1, 80, 16);
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(10);
    let text = net.hosts[1].stack.ss_text(net.now());
    assert!(
        text.contains("LISTEN     1      16     0.0.0.0:80"),
        "{text}"
    );
    assert!(text.contains("ESTAB"), "{text}");
    assert!(text.contains("cubic wscale:10,10"), "{text}");
}

#[test]
fn bind_conflicts_and_reuseaddr_with_time_wait() {
    let (mut net, c, s) = pair();
    // The client closes first: its port stays in TIME-WAIT.
    let port = c.local_addr().port();
    net.close(0, &c);
    net.run_for_ms(5);
    net.close(1, &s);
    net.run_for_ms(5);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    let a = net.socket(0);
    let h = &mut net.hosts[0];
    assert_eq!(
        h.stack.bind(
            &mut h.ctx,
            &a,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
        ),
        Err(Errno::AddrInUse)
    );
    let b = net.socket(0);
    net.setsockopt(0, &b, SockOpt::ReuseAddr(true)).unwrap();
    let h = &mut net.hosts[0];
    assert_eq!(
        h.stack.bind(
            &mut h.ctx,
            &b,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
        ),
        Err(Errno::AddrInUse),
        "a TIME-WAIT socket without SO_REUSEADDR still blocks"
    );
}

#[test]
fn ack_every_second_full_segment_after_quickacks() {
    let (mut net, c, s) = pair();
    let data = pattern(200 * 1448, 11);
    let mut sent = 0;
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    net.run_until(Duration::from_secs(30), |n| {
        if sent < data.len()
            && let Ok(k) = n.send(0, &c, &data[sent..])
        {
            sent += k;
        }
        while let Ok(k) = n.recv(1, &s, &mut buf) {
            if k == 0 {
                break;
            }
            got += k;
        }
        got == data.len()
    });
    assert_eq!(got, data.len());
    let data_segs = net.from(0).iter().filter(|x| !x.is_empty()).count();
    let acks = net.from(1).iter().filter(|x| x.is(ACK)).count();
    assert_eq!(data_segs, 200);
    // Quick ACKs at first, then one ACK per two full segments; a reader
    // that empties the queue after a PSH segment (every GSO packet ends
    // in one) also ACKs from tcp_cleanup_rbuf() (ICSK_ACK_PUSHED). Fewer
    // than one per segment either way.
    assert!(
        (100..200).contains(&acks),
        "{acks} ACKs for {data_segs} segments"
    );
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 0);
}

#[test]
fn duplicate_segment_gets_dsack() {
    let (mut net, c, _s) = pair();
    net.impair.duplicate = 1.0;
    net.send(0, &c, &[5u8; 500]).unwrap();
    net.impair.duplicate = 0.0;
    net.run_for_ms(50);
    let data = net
        .from(0)
        .into_iter()
        .find(|x| x.len() == 500)
        .cloned()
        .unwrap();
    let dsack = net
        .from(1)
        .into_iter()
        .find(|x| !x.tcp.options.sack_blocks.is_empty())
        .cloned()
        .expect("a D-SACK");
    let b = dsack.tcp.options.sack_blocks[0];
    assert_eq!(
        (b.start_seq, b.end_seq),
        (data.tcp.seq, data.tcp.seq.wrapping_add(500))
    );
    assert!(crate::before(b.start_seq, dsack.tcp.ack));
    assert_eq!(net.mib(1, LinuxMib::TcpDsackOldSent), 1);
    assert_eq!(net.mib(1, LinuxMib::DelayedAckLost), 1);
    assert_eq!(net.mib(0, LinuxMib::TcpDsackRecv), 1);
}

#[test]
fn paws_rejects_old_timestamp() {
    let (mut net, c, s) = pair();
    net.send(0, &c, b"abc").unwrap();
    net.run_for_ms(5);
    let last = net
        .from(0)
        .into_iter()
        .find(|x| x.len() == 3)
        .cloned()
        .unwrap();
    let (tsval, tsecr) = last.tcp.options.timestamp.unwrap();
    // Same data again with a timestamp from long ago.
    let old = TcpRepr {
        seq: last.tcp.seq.wrapping_add(3),
        options: TcpOptions {
            timestamp: Some((tsval.wrapping_sub(100_000), tsecr)),
            ..TcpOptions::default()
        },
        payload_len: 3,
        ..last.tcp.clone()
    };
    net.log.clear();
    net.run_for_ms(600);
    net.inject(last.src, 1, &old, b"xyz");
    net.run_for_ms(5);
    assert_eq!(net.mib(1, LinuxMib::PawsEstabRejected), 1);
    let mut buf = [0u8; 8];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"abc");
    // A duplicate ACK answered it.
    assert!(net.from(1).iter().any(|x| x.is(ACK)));
}

#[test]
fn time_wait_accepts_newer_syn() {
    let mut net = Net::new(2);
    let listener = |net: &mut Net| {
        let l = net.socket(1);
        net.setsockopt(1, &l, SockOpt::ReuseAddr(true)).unwrap();
        let h = &mut net.hosts[1];
        h.stack
            .bind(&mut h.ctx, &l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80))
            .unwrap();
        h.stack.listen(&mut h.ctx, &l, 8).unwrap();
        l
    };
    let l = listener(&mut net);
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(10);
    let s = net.accept(1, &l).unwrap();
    net.close(1, &l);
    let cport = c.local_addr().port();
    // The server closes first and keeps the TIME-WAIT.
    net.close(1, &s);
    net.run_for_ms(5);
    net.close(0, &c);
    net.run_for_ms(5);
    assert_eq!(net.hosts[1].stack.time_wait_count(), 1);
    let tw_snd_nxt = fin_snd_nxt(&net, 1);
    // A new listener on the same port (SO_REUSEADDR on both), and the
    // client from the same port.
    let l2 = listener(&mut net);
    net.run_for_ms(1000);
    let c2 = net.socket(0);
    {
        let h = &mut net.hosts[0];
        h.stack
            .bind(
                &mut h.ctx,
                &c2,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, cport),
            )
            .unwrap();
    }
    net.log.clear();
    let _ = net.connect(0, &c2, 1, 80);
    net.run_for_ms(10);
    assert_eq!(c2.state(), TcpState::Established);
    let sa = net.log.iter().find(|x| x.is(SYN | ACK)).unwrap();
    // The ISN continues the old connection's sequence space.
    assert_eq!(sa.tcp.seq, tw_snd_nxt.wrapping_add(65537));
    assert_eq!(net.hosts[1].stack.time_wait_count(), 0);
    assert!(net.accept(1, &l2).is_ok());
}

#[test]
fn icmp_unreachable_aborts_connect() {
    let mut net = Net::new(2);
    net.set_drop_filter(|_| true);
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    let syn = net.log[0].clone();
    let h = &mut net.hosts[0];
    crate::tcp_v4_err(
        &h.stack,
        &mut h.ctx,
        syn.src,
        syn.tcp.src_port,
        syn.dst,
        syn.tcp.dst_port,
        syn.tcp.seq,
        crate::TcpIcmpError::Unreachable(Errno::HostUnreach),
    );
    assert_eq!(c.state(), TcpState::Close);
    assert_eq!(
        h.stack.getsockopt(&h.ctx, &c, SockOptName::Error),
        Ok(i64::from(Errno::HostUnreach as i32))
    );
    assert!(h.ctx.take_event(c.id(), crate::SkEvent::ErrorReport));
}

#[test]
fn send_buffer_full_then_write_space() {
    let (mut net, c, s) = pair();
    net.setsockopt(0, &c, SockOpt::SndBuf(8192)).unwrap();
    let big = vec![1u8; 100_000];
    let n = net.send(0, &c, &big).unwrap();
    assert!(n < big.len() && n > 8000, "{n}");
    assert_eq!(net.send(0, &c, &big), Err(Errno::Again));
    assert!(!net.hosts[0].stack.poll(&c).contains(PollMask::OUT));
    net.hosts[0].ctx.events.clear();
    // The write filled the unsent rest of each pushed skb (10 segments
    // sent, 22 queued): the last of them is ACKed after the peer's
    // delayed-ACK timer, and only then is the buffer writable again.
    net.run_for_ms(60);
    assert!(
        net.hosts[0]
            .ctx
            .take_event(c.id(), crate::SkEvent::WriteSpace)
    );
    assert!(net.hosts[0].stack.poll(&c).contains(PollMask::OUT));
    let mut buf = vec![0u8; 200_000];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(n));
}

/// A writer that found the send buffer full (`EAGAIN`, `SOCK_NOSPACE`)
/// is woken by the ACK that frees enough room, never earlier and never
/// missed: after every event of the network, either the wake-up rule
/// of `sk_stream_write_space()` (`sk_stream_wspace() >=
/// sk_stream_min_wspace()`) does not hold yet, or the writer was woken
/// and its next write is taken. Every byte reaches the reader once.
#[test]
fn blocked_writer_is_woken_when_acks_free_space() {
    let (mut net, c, s) = pair();
    // SO_SNDBUF 10000: sk_sndbuf 20000, locked (no tcp_sndbuf_expand()).
    net.setsockopt(0, &c, SockOpt::SndBuf(10_000)).unwrap();
    let data = pattern(600_000, 11);
    let (mut sent, mut wakeups) = (0, 0);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while sent < data.len() {
        match net.send(0, &c, &data[sent..]) {
            Ok(k) => {
                assert!(k > 0);
                sent += k;
                continue;
            }
            Err(e) => assert_eq!(e, Errno::Again),
        }
        // Blocked: SOCK_NOSPACE is set and poll() has no POLLOUT.
        assert!(c.lock().nospace);
        assert!(!net.hosts[0].stack.poll(&c).contains(PollMask::OUT));
        net.hosts[0].ctx.events.clear();
        let mut woken = false;
        for _ in 0..100_000 {
            assert!(net.step(), "the network went idle with the writer asleep");
            while let Ok(k) = net.recv(1, &s, &mut buf) {
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
            }
            let ev = &mut net.hosts[0].ctx.events;
            woken = ev.contains(&(c.id(), crate::SkEvent::WriteSpace));
            ev.clear();
            let tp = c.lock();
            let writable = tp.sk_stream_wspace() >= tp.wmem_queued / 2;
            if woken {
                assert!(
                    writable,
                    "woken with {} of {} queued",
                    tp.wmem_queued, tp.sndbuf
                );
                assert!(!tp.nospace);
                break;
            }
            assert!(
                !writable || !tp.nospace,
                "room for the writer ({} of {} queued) but no wake-up",
                tp.wmem_queued,
                tp.sndbuf
            );
        }
        assert!(woken, "no wake-up after {sent} bytes");
        wakeups += 1;
        assert!(net.hosts[0].stack.poll(&c).contains(PollMask::OUT));
    }
    // The buffer was the limit many times over: 600 kB through 20000.
    assert!(wakeups >= 5, "{wakeups} wake-ups");
    let ok = net.run_until(Duration::from_secs(10), |n| {
        while let Ok(k) = n.recv(1, &s, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    });
    assert!(ok, "got {} of {}", got.len(), data.len());
    assert_eq!(fnv(&got), fnv(&data));
    // On the wire: each byte sent once, none retransmitted.
    let payload: usize = net.from(0).iter().map(|x| x.len()).sum();
    assert_eq!(payload, data.len());
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 0);
}

#[test]
fn loopback_sized_mtu_transfer() {
    let mut net = Net::new(2);
    net.logging = false;
    for h in &mut net.hosts {
        h.ctx.mtu = 65536;
    }
    let (c, s) = net.connect_pair(80);
    let info = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    // tcp_bound_to_half_wnd(): no more than half the peer's largest window
    // (65484, the 64 KiB of space rounded to its MSS).
    assert_eq!(info.snd_mss, 65484 / 2);
    assert_eq!(info.advmss, 65496);
    let data = pattern(1 << 20, 4);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 17];
    let ok = net.run_until(Duration::from_secs(60), |n| {
        if sent < data.len()
            && let Ok(k) = n.send(0, &c, &data[sent..])
        {
            sent += k;
        }
        while let Ok(k) = n.recv(1, &s, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    });
    assert!(ok, "got {}", got.len());
    assert_eq!(fnv(&got), fnv(&data));
}

#[test]
fn random_segments_never_panic_or_leak() {
    for seed in 1..=4u64 {
        let mut net = Net::with_seed(2, seed);
        net.logging = false;
        let (c, s) = net.connect_pair(80);
        let l = net.listen(1, 81, 4);
        let cl = c.local_addr();
        let mut r = crate::SplitMix64::new(seed * 977);
        // Learn the sequence numbers in play from a real exchange.
        net.logging = true;
        net.send(0, &c, b"x").unwrap();
        net.run_for_ms(5);
        let seg = net
            .from(0)
            .into_iter()
            .find(|x| x.len() == 1)
            .cloned()
            .unwrap();
        net.logging = false;
        let (seq0, ack0) = (seg.tcp.seq.wrapping_add(1), seg.tcp.ack);
        for i in 0..3000u32 {
            let flags = TcpFlags::from_bits_truncate(r.next_u64() as u16 & 0x1ff);
            let near = |r: &mut crate::SplitMix64, base: u32| match r.below(4) {
                0 => r.next_u64() as u32,
                _ => base.wrapping_add(r.below(200_000)).wrapping_sub(100_000),
            };
            let mut options = TcpOptions::default();
            if r.below(3) == 0 {
                options.timestamp = Some((r.next_u64() as u32, r.next_u64() as u32));
            }
            if r.below(4) == 0 {
                for _ in 0..=r.below(3) {
                    let a = near(&mut r, ack0);
                    let _ = options.sack_blocks.push(wire::TcpSackBlock {
                        start_seq: a,
                        end_seq: a.wrapping_add(r.below(5000)),
                    });
                }
            }
            if r.below(5) == 0 {
                options.mss = Some(r.below(70_000) as u16);
                options.wscale = Some(r.below(20) as u8);
                options.sack_ok = r.below(2) == 0;
            }
            let len = if r.below(2) == 0 {
                r.below(1500) as usize
            } else {
                0
            };
            let dport = [80u16, 81, 82][r.below(3) as usize];
            let sport = if r.below(4) == 0 {
                r.below(65535) as u16
            } else {
                cl.port()
            };
            let repr = TcpRepr {
                src_port: sport,
                dst_port: dport,
                seq: near(&mut r, seq0),
                ack: near(&mut r, ack0),
                flags,
                window: r.next_u64() as u16,
                urgent: 0,
                options,
                payload_len: len,
            };
            let payload = vec![(i % 251) as u8; len];
            if repr.header_len() <= 60 {
                net.inject(*cl.ip(), 1, &repr, &payload);
            }
            if i % 50 == 0 {
                net.run_for_ms(3);
                let mut buf = [0u8; 4096];
                while matches!(net.recv(1, &s, &mut buf), Ok(n) if n > 0) {}
                while net.accept(1, &l).is_ok() {}
            }
        }
        net.run_for_ms(100);
        assert!(net.mib(1, TcpMib::InSegs) > 3000);
        assert!(
            net.mib(1, TcpMib::OutRsts) > 100,
            "segments for no socket are reset"
        );
        // Everything closes; after TIME-WAIT no buffer is left anywhere.
        net.close(0, &c);
        net.close(1, &s);
        net.close(1, &l);
        net.run_for_ms(300_000);
        for h in &net.hosts {
            assert_eq!(h.stack.socket_count(), 0, "seed {seed}");
            assert_eq!(h.stack.time_wait_count(), 0, "seed {seed}");
        }
        let pool = crate::TcpContext::page_pool(&net.hosts[0].ctx).clone();
        drop(net);
        assert_eq!(pool.stats().inflight(), 0, "seed {seed}: leaked buffers");
    }
}

#[test]
fn orphan_fin_wait2_times_out_then_resets() {
    let (mut net, c, s) = pair();
    let t0 = net.now();
    net.close(0, &c);
    net.run_for_ms(10);
    assert_eq!(net.hosts[0].stack.ss(net.now())[0].state, "FIN-WAIT-2");
    // The peer never closes: tcp_fin_timeout (60 s) later the mini socket
    // is gone and the port free.
    net.run_until_time(t0 + Duration::from_secs(59));
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    net.run_until_time(t0 + Duration::from_secs(61));
    assert_eq!(net.hosts[0].stack.time_wait_count(), 0);
    assert!(net.hosts[0].stack.ss(net.now()).is_empty());
    // Data from the peer now meets no socket: RST.
    net.log.clear();
    net.send(1, &s, b"late").unwrap();
    net.run_for_ms(5);
    assert!(net.from(0).iter().any(|x| x.tcp.flags.contains(RST)));
    assert_eq!(s.state(), TcpState::Close);
    let mut buf = [0u8; 4];
    assert_eq!(
        net.recv(1, &s, &mut buf),
        Ok(0),
        "the FIN came before the RST"
    );
}

#[test]
fn ioctl_queues_and_tcp_info() {
    let (mut net, c, s) = pair();
    net.send(0, &c, &[9u8; 3000]).unwrap();
    assert_eq!(net.hosts[0].stack.ioctl_outq(&c), Ok(3000));
    net.run_for_ms(50);
    assert_eq!(net.hosts[0].stack.ioctl_outq(&c), Ok(0));
    assert_eq!(net.hosts[1].stack.ioctl_inq(&s), Ok(3000));
    let h = &net.hosts[1];
    let i = h.stack.tcp_info(&h.ctx, &s);
    assert_eq!(i.state, TcpState::Established as u8);
    assert_eq!(i.bytes_received, 3000);
    assert_eq!(i.data_segs_in, 3);
    assert_eq!(i.rcv_mss, 1448);
    assert_eq!(i.last_data_recv, 49);
    let h = &net.hosts[0];
    let i = h.stack.tcp_info(&h.ctx, &c);
    assert_eq!(i.bytes_acked, 3001);
    assert_eq!(i.data_segs_out, 3);
    assert_eq!(i.unacked, 0);
    assert!(i.rto >= 200_000 && i.rto < 210_000, "{}", i.rto);
    assert_eq!(i.snd_ssthresh, crate::TCP_INFINITE_SSTHRESH);
    // A closed, unconnected socket frees its bound port.
    let a = net.socket(0);
    let h = &mut net.hosts[0];
    h.stack
        .bind(
            &mut h.ctx,
            &a,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4242),
        )
        .unwrap();
    h.stack.close(&mut h.ctx, &a);
    let b = net.socket(0);
    let h = &mut net.hosts[0];
    assert_eq!(
        h.stack.bind(
            &mut h.ctx,
            &b,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4242)
        ),
        Ok(())
    );
}

#[test]
fn synack_retries_then_request_dropped_and_abort_on_overflow() {
    let mut net = Net::new(2);
    let l = net.listen(1, 80, 16);
    // The client's answers never arrive.
    net.set_drop_filter(|s| s.is(ACK));
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(100_000);
    let synacks: Vec<_> = net
        .log
        .iter()
        .filter(|s| s.is(SYN | ACK))
        .map(|s| s.at.as_millis())
        .collect();
    // tcp_synack_retries = 5: 1, 2, 4, 8, 16 s apart.
    assert_eq!(synacks, [1, 1001, 3001, 7001, 15001, 31001]);
    assert_eq!(net.mib(1, LinuxMib::TcpSynRetrans), 5);
    assert!(net.accept(1, &l).is_err());
    // The request is gone: the late ACK finds no request and gets a RST.
    net.clear_drop_filter();
    net.log.clear();
    net.send(0, &c, b"late").unwrap();
    net.run_for_ms(5);
    assert!(net.from(1).iter().any(|x| x.tcp.flags.contains(RST)));

    // tcp_abort_on_overflow = 1: an ACK that finds the accept queue full
    // is answered with a RST.
    let mut net = Net::new(2);
    crate::TcpContext::sysctl(&net.hosts[1].ctx)
        .set("net.ipv4.tcp_abort_on_overflow", "1")
        .unwrap();
    let _l = net.listen(1, 80, 2);
    for _ in 0..2 {
        let a = net.socket(0);
        let _ = net.connect(0, &a, 1, 80);
        net.run_for_ms(10);
    }
    // Two more at once: both SYNs fit, the second ACK overflows.
    let b = net.socket(0);
    let _ = net.connect(0, &b, 1, 80);
    let d = net.socket(0);
    let _ = net.connect(0, &d, 1, 80);
    net.run_for_ms(10);
    assert_eq!(net.mib(1, LinuxMib::EmbryonicRsts), 1);
    assert_eq!(net.mib(1, LinuxMib::ListenOverflows), 1);
    assert_eq!(b.state(), TcpState::Established);
    assert_eq!(d.state(), TcpState::Close);
}

#[test]
fn reconnect_after_refusal_picks_a_new_port() {
    let mut net = Net::new(2);
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(5);
    assert_eq!(c.state(), TcpState::Close);
    let first = net.log[0].tcp.src_port;
    let _l = net.listen(1, 80, 8);
    assert_eq!(net.connect(0, &c, 1, 80), Err(Errno::InProgress));
    net.run_for_ms(5);
    assert_eq!(c.state(), TcpState::Established);
    let second = net
        .log
        .iter()
        .rev()
        .find(|s| s.is(SYN))
        .unwrap()
        .tcp
        .src_port;
    assert!((32768..=60999).contains(&second));
    assert_eq!(
        net.hosts[0]
            .stack
            .hashinfo
            .lock()
            .bhash
            .contains_key(&first),
        first == second
    );
}

/// Data segments host 0 sent, in sequence order.
fn data_sent(net: &Net) -> Vec<crate::testutil::Seg> {
    let mut data: Vec<_> = net
        .from(0)
        .into_iter()
        .filter(|x| !x.is_empty())
        .cloned()
        .collect();
    if let Some(base) = data.first().map(|x| x.tcp.seq) {
        data.sort_by_key(|x| x.tcp.seq.wrapping_sub(base));
    }
    data
}

/// Indexes of the segments that carry PSH.
fn psh_at(segs: &[crate::testutil::Seg]) -> Vec<usize> {
    segs.iter()
        .enumerate()
        .filter(|(_, x)| x.tcp.flags.contains(PSH))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn psh_on_every_gso_packet_of_the_first_flight() {
    let (mut net, c, _s) = pair();
    // No ACK comes back: the first flight is what cwnd (10) lets out.
    net.set_drop_filter(|x| x.src == Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(net.send(0, &c, &pattern(10 * 1448, 8)), Ok(10 * 1448));
    net.run_for_ms(1);
    let data = data_sent(&net);
    assert_eq!(data.len(), 10);
    // tcp_cwnd_test() lets out at most half of cwnd per GSO packet: two
    // packets of five segments, each ending in PSH (__tcp_transmit_skb()).
    assert_eq!(psh_at(&data), [4, 9]);
}

#[test]
fn single_segments_carry_psh_only_at_the_end_of_a_write() {
    let (mut net, c, _s) = pair();
    // tcp_min_tso_segs and a slow pacing rate cannot make a packet one
    // segment here, but TCP_NODELAY with writes of one MSS each can: each
    // write is pushed on its own, one segment, PSH as the write's end.
    net.set_drop_filter(|x| x.src == Ipv4Addr::new(198, 18, 0, 2));
    net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
    for i in 0..3 {
        assert_eq!(net.send(0, &c, &pattern(1448, i)), Ok(1448));
    }
    // MSG_MORE: queued, not pushed and not marked.
    assert_eq!(
        net.send_flags(0, &c, &pattern(100, 9), MsgFlags::MORE),
        Ok(100)
    );
    net.run_for_ms(1);
    let data = data_sent(&net);
    assert_eq!(data.len(), 3);
    assert_eq!(psh_at(&data), [0, 1, 2]);
    let tp = c.lock();
    let unsent: Vec<_> = tp
        .write_queue
        .iter()
        .skip(tp.packets_out as usize)
        .collect();
    assert_eq!(unsent.len(), 1);
    assert!(!unsent[0].flags.contains(PSH));
}

#[test]
fn forced_push_marks_the_skb_that_passes_half_the_window() {
    let (mut net, c, _s) = pair();
    net.set_drop_filter(|x| x.src == Ipv4Addr::new(198, 18, 0, 2));
    net.setsockopt(0, &c, SockOpt::SndBuf(400_000)).unwrap();
    assert_eq!(net.send(0, &c, &pattern(100_000, 8)), Ok(100_000));
    net.run_for_ms(1);
    let tp = c.lock();
    // The peer's largest window is 65160: skbs of tcp_xmit_size_goal() =
    // 22 segments (half the window, whole MSS). The first skb is sent in
    // part (tcp_push_one()) and its unsent rest filled again to 22: at 27
    // segments written forced_push() holds (more than half the window
    // since the last push), marking segment 26; the next push sends the
    // rest of cwnd, the skb after it is refilled to segment 32, then a new
    // skb is full at 54 (half a window past 27): segment 53; the write's
    // last segment is marked by tcp_push(). The first flight's GSO PSH is
    // not kept in the queue.
    assert_eq!(tp.max_window, 65160);
    let marked: Vec<usize> = tp
        .write_queue
        .iter()
        .enumerate()
        .filter(|(_, x)| x.flags.contains(PSH))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(tp.write_queue.len(), 70);
    assert_eq!(marked, [26, 53, 69]);
}

#[test]
fn slow_start_grows_cwnd_to_twice_the_flight_when_not_cwnd_limited() {
    let (mut net, c, s) = pair();
    // Six segments with cwnd 10: not cwnd-limited, but in slow start
    // tcp_is_cwnd_limited() lets cwnd grow up to 2 * max_packets_out.
    assert_eq!(net.send(0, &c, &pattern(6 * 1448, 1)), Ok(6 * 1448));
    let mut buf = vec![0u8; 10 * 1448];
    let mut got = 0;
    net.run_until(Duration::from_secs(2), |n| {
        got += n.recv(1, &s, &mut buf).unwrap_or(0);
        got == 6 * 1448 && c.lock().packets_out == 0
    });
    let tp = c.lock();
    assert_eq!(tp.cwnd.max_packets_out, 6);
    assert_eq!(tp.cwnd.snd_cwnd, 12);
}

#[test]
fn busy_time_counts_while_data_is_unacknowledged() {
    let (mut net, c, _s) = pair();
    let info = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    assert_eq!(info.busy_time, 0);
    assert_eq!(net.send(0, &c, &pattern(1000, 4)), Ok(1000));
    net.run_until(Duration::from_secs(1), |_| c.lock().write_queue.is_empty());
    let info = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    // From the write to the ACK: one round trip (2 ms here), at most a
    // delayed ACK more.
    assert!(
        (1_900..=50_000).contains(&info.busy_time),
        "busy {}",
        info.busy_time
    );
    assert_eq!((info.rwnd_limited, info.sndbuf_limited), (0, 0));
    // Idle: the chronograph stopped with the queue empty.
    net.run_for_ms(100);
    let later = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    assert_eq!(later.busy_time, info.busy_time);
}

#[test]
fn send_buffer_is_checked_once_per_skb() {
    let (mut net, c, _s) = pair();
    net.set_drop_filter(|x| x.src == Ipv4Addr::new(198, 18, 0, 2));
    net.setsockopt(0, &c, SockOpt::SndBuf(4096)).unwrap();
    // sk_sndbuf is 8192, but tcp_sendmsg_locked() checks it only before
    // a new skb: the first skb (tcp_xmit_size_goal(): 22 MSS with the
    // peer's 65160-byte window) is filled whole and pushed; each push
    // sends its head, and the unsent rest (the write queue's tail) is
    // filled again up to 22 MSS without a check. cwnd takes 10 segments,
    // so 10 + 22 are queued before a new skb is refused.
    assert_eq!(net.send(0, &c, &pattern(100_000, 5)), Ok(32 * 1448));
    assert_eq!(net.send(0, &c, &pattern(1000, 6)), Err(Errno::Again));
    assert!(c.lock().nospace);
}

#[test]
fn fin_is_not_held_by_cwnd() {
    let (mut net, c, _s) = pair();
    // The peer never ACKs: ten segments fill cwnd, then SHUT_RDWR.
    net.set_drop_filter(|x| x.src == Ipv4Addr::new(198, 18, 0, 2));
    net.send(0, &c, &pattern(10 * 1448, 3)).unwrap();
    net.run_for_ms(1);
    net.shutdown(0, &c, Shutdown::Both).unwrap();
    let last = net.log.last().unwrap();
    assert!(last.is(FIN | ACK), "{last:?}");
    assert_eq!(net.from(0).iter().filter(|x| !x.is_empty()).count(), 10);
    let h = &net.hosts[0];
    assert_eq!(h.stack.tcp_info(&h.ctx, &c).snd_cwnd, 10);
}

/// A window offered is a promise the receive buffer keeps: small segments
/// (each in a buffer far larger than its payload) from a sender with
/// `TCP_NODELAY` fill a reader that never reads, up to a zero window,
/// without one in-window segment dropped — the tail skb takes them in its
/// spare room (`tcp_try_coalesce()`), and the peer retransmits nothing.
#[test]
fn small_segments_fill_the_window_without_drops() {
    let (mut net, c, s) = pair();
    net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
    let data = pattern(400 * 1024, 9);
    let mut sent = 0;
    for _ in 0..4000 {
        if sent < data.len()
            && let Ok(k) = net.send(0, &c, &data[sent..(sent + 100).min(data.len())])
        {
            sent += k;
        }
        net.run_for_ms(1);
        if net.from(1).last().is_some_and(|x| x.tcp.window == 0) {
            break;
        }
    }
    assert!(
        net.from(1).iter().any(|x| x.tcp.window == 0),
        "the reader's window never closed"
    );
    assert_eq!(net.mib(1, LinuxMib::TcpRcvQDrop), 0);
    assert_eq!(net.mib(1, LinuxMib::TcpOfoDrop), 0);
    assert_eq!(net.mib(1, LinuxMib::RcvPruned), 0);
    // The only retransmissions are tail loss probes (the reader's delayed
    // ACKs outlast 2·SRTT), never a recovery or an RTO.
    assert!(net.mib(0, TcpMib::RetransSegs) <= net.mib(0, LinuxMib::TcpLossProbes));
    assert_eq!(net.mib(0, LinuxMib::TcpTimeouts), 0);
    assert_eq!(net.mib(0, LinuxMib::TcpSackRecovery), 0);
    assert!(net.mib(1, LinuxMib::TcpRcvCoalesce) > 0);
    // Everything accepted is there, in order, once the reader drains it.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let ok = net.run_until(Duration::from_secs(120), |n| {
        if sent < data.len()
            && let Ok(k) = n.send(0, &c, &data[sent..(sent + 100).min(data.len())])
        {
            sent += k;
        }
        while let Ok(k) = n.recv(1, &s, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    });
    assert!(ok, "got {} of {}", got.len(), data.len());
    assert_eq!(fnv(&got), fnv(&data));
    assert_eq!(net.mib(1, LinuxMib::TcpRcvQDrop), 0);
}

#[test]
fn tcp_congestion_per_socket() {
    let (mut net, c, s) = pair();
    let stack = &net.hosts[0].stack;
    // net.ipv4.tcp_congestion_control defaults to cubic.
    assert_eq!(stack.congestion_control(&c), "cubic");
    assert_eq!(
        stack.set_congestion_control(&net.hosts[0].ctx, &c, "vegas"),
        Err(Errno::NoEnt)
    );
    stack
        .set_congestion_control(&net.hosts[0].ctx, &c, "reno")
        .unwrap();
    assert_eq!(stack.congestion_control(&c), "reno");
    assert!(stack.ss_text(net.now()).contains("reno wscale:10,10"));
    // The switched socket still carries data.
    net.send(0, &c, &[7u8; 3000]).unwrap();
    net.run_for_ms(50);
    let mut buf = [0u8; 4000];
    assert_eq!(net.recv(1, &s, &mut buf).unwrap(), 3000);
    // The sysctl picks the algorithm of new sockets.
    crate::TcpContext::sysctl(&net.hosts[0].ctx)
        .set("net.ipv4.tcp_congestion_control", "reno")
        .unwrap();
    let n = net.socket(0);
    assert_eq!(net.hosts[0].stack.congestion_control(&n), "reno");
}

/// Grows cwnd with a bulk send, idles `idle_ms`, then writes again and
/// returns (cwnd before the idle, cwnd after the new write).
fn cwnd_across_idle(slow_start_after_idle: bool, idle_ms: u64) -> (u32, u32) {
    let (mut net, c, s) = pair();
    if !slow_start_after_idle {
        crate::TcpContext::sysctl(&net.hosts[0].ctx)
            .set("net.ipv4.tcp_slow_start_after_idle", "0")
            .unwrap();
    }
    // A send buffer larger than the flight, so the flow is cwnd-limited.
    net.setsockopt(0, &c, SockOpt::SndBuf(1 << 20)).unwrap();
    let data = vec![1u8; 300_000];
    let mut sent = 0;
    let mut buf = vec![0u8; 65536];
    while sent < data.len() {
        sent += net.send(0, &c, &data[sent..]).unwrap_or(0);
        net.run_for_ms(5);
        while net.recv(1, &s, &mut buf).is_ok_and(|n| n > 0) {}
    }
    net.run_for_ms(50);
    while net.recv(1, &s, &mut buf).is_ok_and(|n| n > 0) {}
    let before = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    net.run_for_ms(idle_ms);
    net.send(0, &c, b"x").unwrap();
    let after = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    (before.snd_cwnd, after.snd_cwnd)
}

#[test]
fn slow_start_after_idle_restarts_cwnd() {
    // Idle for many RTOs: cwnd falls back to the initial window.
    let (before, after) = cwnd_across_idle(true, 5000);
    assert!(before > 20, "cwnd {before} did not grow");
    assert_eq!(after, crate::TCP_INIT_CWND);
    // tcp_slow_start_after_idle = 0 keeps the window.
    let (before, after) = cwnd_across_idle(false, 5000);
    assert!(before > 20, "cwnd {before} did not grow");
    assert_eq!(after, before);
    // Idle for less than one RTO: nothing changes.
    let (before, after) = cwnd_across_idle(true, 100);
    assert_eq!(after, before);
}

/// A loss at the tail of a flight is repaired by the loss probe
/// (RFC 8985 §7) two RTTs later, not by the RTO: `TCPLossProbes`, one
/// retransmission, no timeout, and the cwnd reduced once
/// (`TCPLossProbeRecovery`) when the ACK that follows shows the loss.
#[test]
fn tail_loss_is_repaired_by_tlp() {
    let (mut net, c, s) = pair();
    let data = pattern(7 * 1448 + 500, 3);
    let mut buf = vec![0u8; 65536];
    // Drop the last data segment of the burst once, and the ACK of the
    // one before it, so two segments are outstanding when the probe is
    // armed (2·SRTT + 2 ms; with a single one out the probe also waits
    // for a delayed ACK and falls on the RTO).
    let mut tail_seq = None;
    let mut ack_dropped = false;
    net.set_drop_filter(move |x| {
        if tail_seq.is_none() && !x.is_empty() && x.len() < 1448 {
            tail_seq = Some(x.tcp.seq);
            return true;
        }
        if !ack_dropped && x.is_empty() && Some(x.tcp.ack) == tail_seq {
            ack_dropped = true;
            return true;
        }
        false
    });
    net.send(0, &c, &data).unwrap();
    let t0 = net.now();
    let mut got = Vec::new();
    assert!(net.run_until(Duration::from_secs(5), |n| {
        while let Ok(k) = n.recv(1, &s, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    }));
    assert_eq!(got, data);
    let took = net.now() - t0;
    // Well before the 200 ms minimum RTO: 2·SRTT (+2 ms) after the burst.
    assert!(took < Duration::from_millis(50), "{took:?}");
    assert_eq!(net.mib(0, LinuxMib::TcpLossProbes), 1);
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 1);
    assert_eq!(net.mib(0, LinuxMib::TcpTimeouts), 0);
    // New data after the repair: the episode ends with one reduction.
    net.send(0, &c, &data[..2000]).unwrap();
    net.run_for_ms(20);
    assert_eq!(net.mib(0, LinuxMib::TcpLossProbeRecovery), 1);
    let h = &net.hosts[0];
    let info = h.stack.tcp_info(&h.ctx, &c);
    assert_eq!(info.ca_state, 0);
    assert!(info.snd_ssthresh < 0x7fff_ffff, "{info:?}");
}

#[test]
fn simultaneous_open_acks_the_peer_syn_ack_at_once() {
    let mut net = Net::new(2);
    let (a, b) = bound_pair(&mut net);
    let _ = net.connect(0, &a, 1, 2222);
    let _ = net.connect(1, &b, 0, 1111);
    net.run_for_ms(20);
    assert_eq!(a.state(), TcpState::Established);
    assert_eq!(b.state(), TcpState::Established);
    // Each side's SYN-ACK reaches a SYN_RECV socket, establishes it and,
    // as an old sequence, is ACKed at once (not after the delayed ACK).
    for (me, peer) in [(0usize, 1usize), (1, 0)] {
        let peer_sa = net
            .log
            .iter()
            .find(|s| s.src == net.addr(peer) && s.is(SYN | ACK))
            .unwrap()
            .clone();
        let ack = net
            .log
            .iter()
            .find(|s| s.src == net.addr(me) && s.tcp.flags == ACK && s.is_empty())
            .unwrap_or_else(|| panic!("host {me} sent no ACK: {:#?}", net.log));
        assert_eq!(ack.tcp.ack, peer_sa.tcp.seq.wrapping_add(1));
        assert!(ack.at <= peer_sa.at + net.delay, "ACK delayed: {ack:?}");
    }
}

#[test]
fn syn_to_time_wait_without_listener_gets_the_time_wait_ack() {
    let (mut net, c, s) = pair();
    // The client closes first and ends in TIME_WAIT; no listener on its port.
    net.close(0, &c);
    net.run_for_ms(5);
    net.close(1, &s);
    net.run_for_ms(5);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    let last_ack = net.from(0).last().unwrap().tcp.clone();
    net.log.clear();
    let syn = TcpRepr {
        src_port: last_ack.dst_port,
        dst_port: last_ack.src_port,
        seq: last_ack.ack.wrapping_add(100_000),
        ack: 0,
        flags: SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions::default(),
        payload_len: 0,
    };
    net.inject(net.addr(1), 0, &syn, &[]);
    net.run_for_ms(1);
    let out = net.from(0);
    assert_eq!(out.len(), 1, "{out:#?}");
    // tcp_v4_timewait_ack(): snd_nxt, rcv_nxt, no RST.
    assert_eq!(out[0].tcp.flags, ACK);
    assert_eq!(out[0].tcp.seq, last_ack.seq);
    assert_eq!(out[0].tcp.ack, last_ack.ack);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
}

fn linger2(net: &Net, sk: &crate::TcpSocket) -> Result<i64, Errno> {
    let h = &net.hosts[0];
    h.stack.getsockopt(&h.ctx, sk, SockOptName::Linger2)
}

#[test]
fn tcp_linger2_sets_the_orphaned_fin_wait2_lifetime() {
    let (mut net, c, _s) = pair();
    assert_eq!(linger2(&net, &c), Ok(60));
    net.setsockopt(0, &c, SockOpt::Linger2(5)).unwrap();
    assert_eq!(linger2(&net, &c), Ok(5));
    let t0 = net.now();
    net.close(0, &c);
    net.run_for_ms(10);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    net.run_until_time(t0 + Duration::from_secs(4));
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    net.run_until_time(t0 + Duration::from_secs(6));
    assert_eq!(net.hosts[0].stack.time_wait_count(), 0);

    // Negative: no FIN-WAIT-2; the ACK of our FIN is answered by a RST.
    let (mut net, c, s) = pair();
    net.setsockopt(0, &c, SockOpt::Linger2(-7)).unwrap();
    assert_eq!(linger2(&net, &c), Ok(-1));
    net.close(0, &c);
    net.run_for_ms(10);
    assert!(net.from(0).iter().any(|x| x.tcp.flags.contains(RST)));
    assert_eq!(net.hosts[0].stack.time_wait_count(), 0);
    assert_eq!(s.state(), TcpState::Close);
    assert_eq!(net.hosts[0].stack.socket_count(), 0);
}

#[test]
fn cookie_syn_ack_without_timestamps_offers_only_the_mss() {
    let mut net = Net::new(2);
    let _l = net.listen(1, 80, 1);
    let syn = |port: u16| TcpRepr {
        src_port: port,
        dst_port: 80,
        seq: 1000,
        ack: 0,
        flags: SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1000),
            wscale: Some(7),
            sack_ok: true,
            ..TcpOptions::default()
        },
        payload_len: 0,
    };
    // backlog 1: two requests fit (`qlen > sk_max_ack_backlog` is full),
    // the third gets a cookie.
    for port in [5001u16, 5002, 5003] {
        net.inject(Ipv4Addr::new(198, 18, 0, 99), 1, &syn(port), &[]);
    }
    net.run_for_ms(1);
    assert_eq!(net.mib(1, LinuxMib::SyncookiesSent), 1);
    let sas: Vec<_> = net
        .from(1)
        .into_iter()
        .filter(|s| s.is(SYN | ACK))
        .collect();
    assert_eq!(sas.len(), 3);
    for sa in &sas[..2] {
        assert!(sa.tcp.options.sack_ok && sa.tcp.options.wscale.is_some());
    }
    // No timestamps: nowhere to keep SACK or window scaling (tcp_clear_options()).
    let cookie = &sas[2].tcp;
    assert_eq!(cookie.dst_port, 5003);
    assert_eq!(cookie.options.mss, Some(1460));
    assert!(!cookie.options.sack_ok);
    assert_eq!(cookie.options.wscale, None);
    assert_eq!(cookie.options.timestamp, None);
}

#[test]
fn single_segments_of_every_payload_parity_carry_a_correct_checksum() {
    // The checksum of a one-segment transmission is the header's extended
    // by the payload (odd lengths exercise the byte swap of csum_block_add).
    let mut net = Net::new(2);
    let (c, s) = net.connect_pair(80);
    net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
    let mut sent_lens = Vec::new();
    let mut expect = Vec::new();
    for (i, len) in [1usize, 2, 3, 5, 8, 13, 99, 1000, 1447, 1448]
        .into_iter()
        .enumerate()
    {
        let data: Vec<u8> = (0..len).map(|j| (j * 7 + i * 31 + 1) as u8).collect();
        assert_eq!(net.send(0, &c, &data).unwrap(), len);
        net.run_for_ms(10);
        sent_lens.push(len);
        expect.extend_from_slice(&data);
    }
    let mut got = vec![0u8; expect.len() + 1];
    let mut n = 0;
    while n < expect.len() {
        let r = net.recv(1, &s, &mut got[n..]).unwrap();
        assert!(r > 0);
        n += r;
    }
    assert_eq!(got[..n], expect[..]);
    assert_eq!(net.mib(1, TcpMib::InCsumErrors), 0);
    // Every data segment parsed (checksum verified) in the wire log.
    let logged: Vec<usize> = net
        .from(0)
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| g.len())
        .collect();
    assert_eq!(logged, sent_lens);
}

#[test]
fn icsk_pending_names_the_one_armed_retransmit_or_probe_timer_throughout_a_lossy_exchange() {
    use netcore::TimerContext as _;

    use crate::tcp_timer::{TcpTimer, icsk_pending_timer};
    // On a single wheel (the test context) the socket's record of its
    // armed retransmit/probe timer must match the wheel after every event:
    // RTO, loss probe, RACK reordering timer and zero-window probe.
    let mut net = Net::with_seed(2, 7);
    net.impair = Impair {
        loss: 0.05,
        reorder: 0.05,
        reorder_delay: Duration::from_millis(3),
        ..Impair::default()
    };
    let (c, s) = net.connect_pair(80);
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    let mut steps = 0u32;
    let check = |net: &Net| {
        for (i, sk) in [(0, &c), (1, &s)] {
            let tp = sk.lock();
            let id = tp.id;
            let armed = icsk_pending_timer(&tp);
            for t in [
                TcpTimer::Retransmit(id),
                TcpTimer::Probe0(id),
                TcpTimer::LossProbe(id),
                TcpTimer::ReoTimeout(id),
            ] {
                assert_eq!(
                    net.hosts[i].ctx.timer_pending(t).is_some(),
                    armed == Some(t),
                    "host {i}: {t:?} on the wheel vs icsk_pending {armed:?}"
                );
            }
        }
    };
    while got < data.len() {
        if sent < data.len()
            && let Ok(n) = net.send(0, &c, &data[sent..(sent + 30_000).min(data.len())])
        {
            sent += n;
        }
        // Read slowly at first so that the window closes (zero-window probes).
        if (steps > 400 || steps.is_multiple_of(50))
            && let Ok(n) = net.recv(1, &s, &mut buf)
        {
            assert_eq!(buf[..n], data[got..got + n]);
            got += n;
        }
        if !net.step() {
            net.run_for_ms(1);
        }
        check(&net);
        steps += 1;
        assert!(steps < 200_000, "transfer did not finish");
    }
    assert!(
        net.mib(0, TcpMib::RetransSegs) > 0,
        "the loss was exercised"
    );
}

/// What a header-prediction scenario leaves: every segment on the wire,
/// the counters of both hosts, and what each side read.
type HpRun = (Vec<String>, Vec<Vec<(&'static str, u64)>>, Vec<u64>);

/// Request/response rounds, then a bulk transfer each way, on a seeded
/// network with light reordering; with `hp_off` every segment takes the
/// slow path.
fn header_prediction_run(hp_off: bool) -> HpRun {
    use crate::context::TcpContext;
    crate::tcp_input::HP_OFF.set(hp_off);
    let mut net = Net::with_seed(2, 7);
    let (c, s) = net.connect_pair(80);
    let mut buf = vec![0u8; 65536];
    let mut read = [Vec::new(), Vec::new()];
    for round in 0..50u64 {
        net.send(0, &c, &pattern(100, round)).unwrap();
        net.run_for_ms(3);
        let n = net.recv(1, &s, &mut buf).unwrap();
        read[1].extend_from_slice(&buf[..n]);
        net.send(1, &s, &pattern(300, round + 1000)).unwrap();
        net.run_for_ms(3);
        let n = net.recv(0, &c, &mut buf).unwrap();
        read[0].extend_from_slice(&buf[..n]);
    }
    for (from, to) in [(0usize, 1usize), (1, 0)] {
        let (tx, rx) = if from == 0 { (&c, &s) } else { (&s, &c) };
        let data = pattern(400_000, from as u64);
        let mut sent = 0;
        let start = read[to].len();
        let ok = net.run_until(Duration::from_secs(60), |n| {
            if sent < data.len()
                && let Ok(k) = n.send(from, tx, &data[sent..])
            {
                sent += k;
            }
            while let Ok(k) = n.recv(to, rx, &mut buf) {
                if k == 0 {
                    break;
                }
                read[to].extend_from_slice(&buf[..k]);
            }
            read[to].len() - start == data.len()
        });
        assert!(ok, "bulk {from} -> {to} did not finish");
        assert_eq!(fnv(&read[to][start..]), fnv(&data));
    }
    net.run_for_ms(500);
    crate::tcp_input::HP_OFF.set(false);
    let wire = net
        .log
        .iter()
        .map(|x| format!("{:?} {} {:?}", x.at, x.src, x.tcp))
        .collect();
    let mibs = (0..2)
        .map(|i| {
            let snap = net.hosts[i].ctx.mibs().snapshot();
            snap.group::<TcpMib>()
                .chain(snap.group::<LinuxMib>())
                .collect()
        })
        .collect();
    (wire, mibs, read.iter().map(|r| fnv(r)).collect())
}

/// Header prediction (`tcp_rcv_established()`'s fast path) is taken in
/// steady state, by the receiver of data (`TCPHPHits`) and the sender
/// getting pure ACKs (`TCPHPAcks`), and changes nothing else: the same
/// segments at the same times, the same counters, the same bytes read as
/// when every segment takes the slow path.
#[test]
fn header_prediction_fast_path_matches_the_slow_path() {
    let (fast_wire, fast_mibs, fast_read) = header_prediction_run(false);
    let (slow_wire, slow_mibs, slow_read) = header_prediction_run(true);
    assert_eq!(fast_read, slow_read);
    assert_eq!(fast_wire.len(), slow_wire.len());
    for (i, (f, s)) in fast_wire.iter().zip(&slow_wire).enumerate() {
        assert_eq!(f, s, "segment {i} differs");
    }
    let hp = ["TCPHPHits", "TCPHPAcks", "TCPPureAcks"];
    for host in 0..2 {
        let get = |m: &[(&str, u64)], name: &str| {
            m.iter().find(|(n, _)| *n == name).map(|&(_, v)| v).unwrap()
        };
        let (fm, sm) = (&fast_mibs[host], &slow_mibs[host]);
        assert!(get(fm, "TCPHPHits") >= 40, "host {host}");
        assert!(get(fm, "TCPHPAcks") >= 40, "host {host}");
        assert_eq!(get(sm, "TCPHPHits"), 0);
        assert_eq!(get(sm, "TCPHPAcks"), 0);
        // Pure ACKs the fast path did not take are still counted.
        assert!(get(sm, "TCPPureAcks") > get(fm, "TCPPureAcks"));
        for (f, s) in fm.iter().zip(sm) {
            if !hp.contains(&f.0) {
                assert_eq!(f, s, "host {host}");
            }
        }
    }
}

/// Out-of-order data turns header prediction off until the hole is
/// filled: nothing takes the fast path while the ofo queue holds data,
/// and it comes back once the queue drains.
#[test]
fn header_prediction_off_while_out_of_order_data_waits() {
    let (mut net, c, s) = pair();
    let mut buf = vec![0u8; 65536];
    net.send(0, &c, &[1u8; 1000]).unwrap();
    net.run_for_ms(50);
    assert_eq!(net.recv(1, &s, &mut buf), Ok(1000));
    assert_ne!(s.lock().pred_flags, 0, "the fast path is on after data");
    let client = net.addr(0);
    let mut dropped = false;
    net.set_drop_filter(move |x| {
        let hit = !dropped && x.src == client && !x.is_empty();
        dropped |= hit;
        hit
    });
    let data = pattern(5000, 4);
    net.send(0, &c, &data).unwrap();
    let ok = net.run_until(Duration::from_secs(1), |n| {
        let _ = n;
        !s.lock().ofo_queue.is_empty()
    });
    assert!(ok, "no out-of-order data");
    assert_eq!(s.lock().pred_flags, 0);
    let hits = net.mib(1, LinuxMib::TcpHpHits);
    while !s.lock().ofo_queue.is_empty() {
        assert!(net.step(), "the hole was never filled");
        assert_eq!(net.mib(1, LinuxMib::TcpHpHits), hits);
    }
    net.run_for_ms(50);
    let mut got = Vec::new();
    while let Ok(k) = net.recv(1, &s, &mut buf) {
        got.extend_from_slice(&buf[..k]);
    }
    assert_eq!(got, data);
    assert_ne!(s.lock().pred_flags, 0, "back on once the queue drained");
    // Unread data leaves memory reserved (sk_forward_alloc) that the
    // next segments fit in: they take the fast path again.
    net.send(0, &c, &pattern(8 * 1448, 5)).unwrap();
    net.run_for_ms(50);
    assert!(net.mib(1, LinuxMib::TcpHpHits) > hits);
}

/// A zero receive window turns header prediction off (`tcp_select_window()`)
/// and the window probes take the slow path; in-order data after the
/// window reopens turns it back on.
#[test]
fn header_prediction_off_with_a_zero_window() {
    let mut net = Net::new(2);
    let l = net.socket(1);
    net.setsockopt(1, &l, SockOpt::RcvBuf(4096)).unwrap();
    {
        let h = &mut net.hosts[1];
        h.stack
            .bind(&mut h.ctx, &l, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80))
            .unwrap();
        h.stack.listen(&mut h.ctx, &l, 8).unwrap();
    }
    let c = net.socket(0);
    let _ = net.connect(0, &c, 1, 80);
    net.run_for_ms(10);
    let s = net.accept(1, &l).unwrap();
    let data = pattern(64 * 1024, 3);
    let mut sent = 0;
    for _ in 0..20 {
        if let Ok(k) = net.send(0, &c, &data[sent..]) {
            sent += k;
        }
        net.run_for_ms(20);
    }
    assert!(net.from(1).into_iter().any(|x| x.tcp.window == 0));
    assert_eq!(s.lock().pred_flags, 0);
    let hits = net.mib(1, LinuxMib::TcpHpHits);
    net.run_for_ms(2_000);
    assert!(net.mib(0, LinuxMib::TcpWinProbe) >= 1);
    assert_eq!(net.mib(1, LinuxMib::TcpHpHits), hits);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    let ok = net.run_until(Duration::from_secs(120), |n| {
        if sent < data.len()
            && let Ok(k) = n.send(0, &c, &data[sent..])
        {
            sent += k;
        }
        while let Ok(k) = n.recv(1, &s, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    });
    assert!(ok, "got {}", got.len());
    assert_eq!(fnv(&got), fnv(&data));
    assert_ne!(s.lock().pred_flags, 0, "in-order data turned it back on");
}

/// With window scaling the SYN-ACK's window is not the scaled one, so the
/// client starts with header prediction off (`tcp_rcv_synsent_state_process()`)
/// while the server turns it on entering ESTABLISHED; the client's first
/// in-order data turns it on. Outside ESTABLISHED (FIN-WAIT-2 here) data
/// takes the slow path.
#[test]
fn header_prediction_off_until_scaled_window_and_outside_established() {
    let (mut net, c, s) = pair();
    assert!(c.lock().rx_opt.snd_wscale > 0);
    assert_eq!(c.lock().pred_flags, 0);
    assert_ne!(s.lock().pred_flags, 0);
    let mut buf = vec![0u8; 4096];
    net.send(1, &s, &[3u8; 100]).unwrap();
    net.run_for_ms(50);
    assert_eq!(net.recv(0, &c, &mut buf), Ok(100));
    assert_ne!(c.lock().pred_flags, 0);
    net.shutdown(0, &c, Shutdown::Write).unwrap();
    net.run_for_ms(50);
    assert_eq!(c.state(), TcpState::FinWait2);
    let hits = net.mib(0, LinuxMib::TcpHpHits);
    for i in 0..3u8 {
        net.send(1, &s, &[i; 500]).unwrap();
        net.run_for_ms(50);
        assert_eq!(net.recv(0, &c, &mut buf), Ok(500));
        assert!(buf[..500].iter().all(|&b| b == i));
    }
    assert_eq!(net.mib(0, LinuxMib::TcpHpHits), hits);
}

/// What a lazy-timer scenario leaves: every segment on the wire, the
/// counters of both hosts, what each side read, and how many timers fired
/// after TCP had cleared them.
type LazyRun = (Vec<String>, Vec<Vec<(&'static str, u64)>>, Vec<u64>, u64);

/// Request/response rounds (a delayed ACK armed and cleared by the reply,
/// a loss probe armed and cleared by the ACK each round), then a transfer
/// whose segments are lost now and then (TLP, RTO and retransmissions),
/// stepped at fixed instants; with `lazy` the hosts leave cleared timers
/// armed, as Linux leaves its `timer_list`s.
fn lazy_timers_run(lazy: bool) -> LazyRun {
    use crate::context::TcpContext;
    let mut net = Net::with_seed(2, 11);
    for h in &mut net.hosts {
        h.ctx.lazy_timers = lazy;
    }
    let (c, s) = net.connect_pair(80);
    let mut buf = vec![0u8; 65536];
    let mut read = [Vec::new(), Vec::new()];
    for round in 0..30u64 {
        // Long enough, every few rounds, for a delayed ACK to go out on
        // its timer before the reply (or the next request) carries it.
        net.send(0, &c, &pattern(10, round)).unwrap();
        net.run_for_ms(if round % 5 == 0 { 300 } else { 2 });
        let n = net.recv(1, &s, &mut buf).unwrap();
        read[1].extend_from_slice(&buf[..n]);
        net.send(1, &s, &pattern(20, round + 100)).unwrap();
        net.run_for_ms(if round % 5 == 2 { 300 } else { 2 });
        let n = net.recv(0, &c, &mut buf).unwrap();
        read[0].extend_from_slice(&buf[..n]);
    }
    let client = net.addr(0);
    let mut k = 0u32;
    net.set_drop_filter(move |x| {
        k += 1;
        x.src == client && !x.is_empty() && k.is_multiple_of(7)
    });
    let data = pattern(200_000, 5);
    let mut sent = 0;
    for _ in 0..20_000 {
        if sent < data.len()
            && let Ok(n) = net.send(0, &c, &data[sent..])
        {
            sent += n;
        }
        while let Ok(n) = net.recv(1, &s, &mut buf) {
            if n == 0 {
                break;
            }
            read[1].extend_from_slice(&buf[..n]);
        }
        if read[1].len() == 300 + data.len() {
            break;
        }
        net.run_for_ms(1);
    }
    assert_eq!(read[1].len(), 300 + data.len(), "the transfer finished");
    net.clear_drop_filter();
    net.run_for_ms(2000);
    let wire = net
        .log
        .iter()
        .map(|x| format!("{:?} {} {:?}", x.at, x.src, x.tcp))
        .collect();
    let mibs = (0..2)
        .map(|i| {
            let snap = net.hosts[i].ctx.mibs().snapshot();
            snap.group::<TcpMib>()
                .chain(snap.group::<LinuxMib>())
                .collect()
        })
        .collect();
    let fired = net.hosts.iter().map(|h| h.ctx.lazy_fired).sum();
    (wire, mibs, read.iter().map(|r| fnv(r)).collect(), fired)
}

/// Clearing the delayed-ACK and retransmit/probe timers lazily
/// (`TcpContext::disarm_timer` leaving them armed, as Linux's
/// `inet_csk_clear_xmit_timer()` does) changes nothing: the cleared timers
/// that fire do nothing, and the segments, their times and every counter
/// are those of a host that cancels them.
#[test]
fn lazily_cleared_timers_that_fire_change_nothing() {
    let (lazy_wire, lazy_mibs, lazy_read, lazy_fired) = lazy_timers_run(true);
    let (wire, mibs, read, fired) = lazy_timers_run(false);
    assert_eq!(fired, 0);
    assert!(lazy_fired > 0, "no cleared timer fired");
    assert_eq!(lazy_read, read);
    assert_eq!(lazy_wire.len(), wire.len());
    for (i, (l, e)) in lazy_wire.iter().zip(&wire).enumerate() {
        assert_eq!(l, e, "segment {i} differs");
    }
    assert_eq!(lazy_mibs, mibs);
    let get = |m: &[(&str, u64)], name: &str| {
        m.iter().find(|(n, _)| *n == name).map(|&(_, v)| v).unwrap()
    };
    assert!(get(&mibs[0], "TCPLossProbes") + get(&mibs[0], "RetransSegs") > 0);
    assert!(get(&mibs[0], "DelayedACKs") > 0);
    assert!(get(&mibs[1], "DelayedACKs") > 0);
}

/// Host 0 connects to host 1's listener on port 80 from its only ephemeral
/// port, exchanges a byte each way and closes first, leaving its side of
/// the 4-tuple in TIME-WAIT. Returns the old connection's `snd_nxt` (its
/// FIN's sequence number + 1).
fn client_time_wait(net: &mut Net, l: &crate::TcpSocket) -> u32 {
    let c = net.socket(0);
    assert_eq!(net.connect(0, &c, 1, 80), Err(Errno::InProgress));
    net.run_for_ms(10);
    assert_eq!(c.state(), TcpState::Established);
    assert_eq!(c.local_addr().port(), 40000);
    let s = net.accept(1, l).unwrap();
    net.send(0, &c, b"q").unwrap();
    net.send(1, &s, b"a").unwrap();
    net.run_for_ms(10);
    let mut buf = [0u8; 2];
    assert_eq!(net.recv(0, &c, &mut buf), Ok(1));
    assert_eq!(net.recv(1, &s, &mut buf), Ok(1));
    net.close(0, &c);
    net.run_for_ms(10);
    net.close(1, &s);
    net.run_for_ms(10);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    fin_snd_nxt(net, 0)
}

/// The `snd_nxt` after host `i`'s last FIN on the wire: its sequence
/// number + 1.
fn fin_snd_nxt(net: &Net, i: usize) -> u32 {
    let fin = net
        .from(i)
        .into_iter()
        .rev()
        .find(|x| x.tcp.flags.contains(FIN));
    fin.expect("a FIN from the host").tcp.seq.wrapping_add(1)
}

/// `net.ipv4.tcp_tw_reuse`: with the ephemeral range down to one port
/// held in TIME-WAIT, a connect to the same peer fails with EADDRNOTAVAIL
/// under 0 and under the default 2 (the peer is not a loopback address);
/// under 1 it takes the TIME-WAIT socket over, but only once
/// `tcp_tw_reuse_delay` (1 s) has passed since the socket entered
/// TIME-WAIT: the SYN starts the sequence space at the old `snd_nxt` +
/// 65,537, `TWRecycled` counts it, and the new connection carries data.
#[test]
fn tcp_tw_reuse_takes_over_time_wait_after_the_delay() {
    use crate::context::TcpContext;
    let mut net = Net::new(2);
    let sysctl = |net: &Net, key, v| net.hosts[0].ctx.sysctl().set_int(key, v).unwrap();
    net.hosts[0]
        .ctx
        .sysctl()
        .set("net.ipv4.ip_local_port_range", "40000 40000")
        .unwrap();
    let l = net.listen(1, 80, 8);
    let snd_nxt = client_time_wait(&mut net, &l);
    let t_tw = net.now();
    let try_connect = |net: &mut Net| {
        let c = net.socket(0);
        (net.connect(0, &c, 1, 80), c)
    };
    for reuse in [0, 2] {
        sysctl(&net, netcore::Sysctl::TCP_TW_REUSE, reuse);
        net.run_until_time(t_tw + Duration::from_millis(1500));
        assert_eq!(
            try_connect(&mut net).0,
            Err(Errno::AddrNotAvail),
            "tcp_tw_reuse={reuse}"
        );
    }
    assert_eq!(net.mib(0, LinuxMib::TimeWaitRecycled), 0);
    // A fresh TIME-WAIT, then tcp_tw_reuse=1 before and after the delay.
    net.run_for_ms(61_000);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 0);
    sysctl(&net, netcore::Sysctl::TCP_TW_REUSE, 0);
    let snd_nxt2 = client_time_wait(&mut net, &l);
    assert_ne!(snd_nxt2, snd_nxt);
    let t_tw = net.now();
    sysctl(&net, netcore::Sysctl::TCP_TW_REUSE, 1);
    net.run_until_time(t_tw + Duration::from_millis(900));
    assert_eq!(
        try_connect(&mut net).0,
        Err(Errno::AddrNotAvail),
        "before the delay"
    );
    net.run_until_time(t_tw + Duration::from_millis(1100));
    net.log.clear();
    let (r, c) = try_connect(&mut net);
    assert_eq!(r, Err(Errno::InProgress));
    assert_eq!(net.mib(0, LinuxMib::TimeWaitRecycled), 1);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 0);
    let syn = net.log.iter().find(|x| x.is(SYN)).expect("a SYN");
    assert_eq!(syn.tcp.seq, snd_nxt2.wrapping_add(65537));
    assert_eq!(syn.tcp.src_port, 40000);
    net.run_for_ms(10);
    assert_eq!(c.state(), TcpState::Established);
    let s = net.accept(1, &l).unwrap();
    net.send(0, &c, b"again").unwrap();
    net.run_for_ms(10);
    let mut buf = [0u8; 8];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"again");
    // The recycled socket's timer is gone with it: nothing happens at
    // the old TIME-WAIT's end.
    net.run_until_time(t_tw + Duration::from_secs(61));
    assert_eq!(c.state(), TcpState::Established);
    assert_eq!(net.mib(0, LinuxMib::TimeWaited), 1);
}

/// A socket whose port `bind()` chose takes over its own TIME-WAIT 4-tuple
/// at once, whatever `tcp_tw_reuse` says, as `__inet_check_established()`
/// with no `twp` lets it when the old connection saw timestamps.
#[test]
fn bound_connect_takes_over_its_time_wait_tuple() {
    use crate::context::TcpContext;
    let mut net = Net::new(2);
    net.hosts[0]
        .ctx
        .sysctl()
        .set_int(netcore::Sysctl::TCP_TW_REUSE, 0)
        .unwrap();
    let l = net.listen(1, 80, 8);
    let bound = |net: &mut Net| {
        let c = net.socket(0);
        net.setsockopt(0, &c, SockOpt::ReuseAddr(true)).unwrap();
        let h = &mut net.hosts[0];
        h.stack
            .bind(
                &mut h.ctx,
                &c,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5555),
            )
            .unwrap();
        c
    };
    let c = bound(&mut net);
    assert_eq!(net.connect(0, &c, 1, 80), Err(Errno::InProgress));
    net.run_for_ms(10);
    let s = net.accept(1, &l).unwrap();
    net.close(0, &c);
    net.run_for_ms(10);
    net.close(1, &s);
    net.run_for_ms(10);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    let snd_nxt = fin_snd_nxt(&net, 0);
    let c2 = bound(&mut net);
    net.log.clear();
    assert_eq!(net.connect(0, &c2, 1, 80), Err(Errno::InProgress));
    assert_eq!(net.hosts[0].stack.time_wait_count(), 0);
    assert_eq!(net.mib(0, LinuxMib::TimeWaitRecycled), 1);
    let syn = net.log.iter().find(|x| x.is(SYN)).expect("a SYN");
    assert_eq!(syn.tcp.seq, snd_nxt.wrapping_add(65537));
    net.run_for_ms(10);
    assert_eq!(c2.state(), TcpState::Established);
}

/// A TIME-WAIT socket whose connection saw no timestamps (none were
/// negotiated) is never taken over: without PAWS an old duplicate could
/// land in the new connection (`tcp_twsk_unique()` needs
/// `tw_ts_recent_stamp`).
#[test]
fn time_wait_without_timestamps_is_not_taken_over() {
    use crate::context::TcpContext;
    let mut net = Net::new(2);
    let sysctl = net.hosts[0].ctx.sysctl();
    sysctl
        .set("net.ipv4.ip_local_port_range", "40000 40000")
        .unwrap();
    sysctl.set_int(netcore::Sysctl::TCP_TW_REUSE, 1).unwrap();
    sysctl.set_int(netcore::Sysctl::TCP_TIMESTAMPS, 0).unwrap();
    let l = net.listen(1, 80, 8);
    client_time_wait(&mut net, &l);
    net.run_for_ms(2000);
    let c = net.socket(0);
    assert_eq!(net.connect(0, &c, 1, 80), Err(Errno::AddrNotAvail));
    assert_eq!(net.mib(0, LinuxMib::TimeWaitRecycled), 0);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
}

/// `tcp_rfc1337`: an in-window RST kills a TIME-WAIT socket by default
/// ("TIME-WAIT assassination"); with the knob set it is ignored and the
/// socket lasts its 60 s.
#[test]
fn rfc1337_keeps_time_wait_through_a_reset() {
    use crate::context::TcpContext;
    for rfc1337 in [0, 1] {
        let (mut net, c, s) = pair();
        net.hosts[0]
            .ctx
            .sysctl()
            .set_int(netcore::Sysctl::TCP_RFC1337, rfc1337)
            .unwrap();
        let cl = c.local_addr();
        net.close(0, &c);
        net.run_for_ms(5);
        net.close(1, &s);
        net.run_for_ms(5);
        assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
        let rst = TcpRepr {
            src_port: 80,
            dst_port: cl.port(),
            seq: fin_snd_nxt(&net, 1),
            ack: 0,
            flags: RST,
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
            payload_len: 0,
        };
        net.inject(net.addr(1), 0, &rst, &[]);
        net.run_for_ms(5);
        let left = net.hosts[0].stack.time_wait_count();
        assert_eq!(left, rfc1337 as usize, "tcp_rfc1337={rfc1337}");
        net.run_for_ms(60_000);
        assert_eq!(net.hosts[0].stack.time_wait_count(), 0);
    }
}

/// `tcp_max_tw_buckets`: once that many mini sockets live, a closing
/// connection gets none (`TCPTimeWaitOverflow`) and its port is free at
/// once.
#[test]
fn time_wait_overflow_closes_without_a_mini_socket() {
    use crate::context::TcpContext;
    let mut net = Net::new(2);
    let sysctl = net.hosts[0].ctx.sysctl();
    sysctl
        .set_int(netcore::Sysctl::TCP_MAX_TW_BUCKETS, 1)
        .unwrap();
    sysctl
        .set("net.ipv4.ip_local_port_range", "40000 40001")
        .unwrap();
    let l = net.listen(1, 80, 8);
    client_time_wait(&mut net, &l);
    assert_eq!(net.mib(0, LinuxMib::TcpTimeWaitOverflow), 0);
    // The second connection takes the other port and closes the same way.
    let c = net.socket(0);
    assert_eq!(net.connect(0, &c, 1, 80), Err(Errno::InProgress));
    net.run_for_ms(10);
    let s = net.accept(1, &l).unwrap();
    let port = c.local_addr().port();
    assert_eq!(port, 40001);
    net.close(0, &c);
    net.run_for_ms(10);
    net.close(1, &s);
    net.run_for_ms(10);
    assert_eq!(net.mib(0, LinuxMib::TcpTimeWaitOverflow), 1);
    assert_eq!(net.hosts[0].stack.time_wait_count(), 1);
    assert_eq!(net.hosts[0].stack.socket_count(), 0);
    // Its port is free again: a third connect gets it.
    let c = net.socket(0);
    assert_eq!(net.connect(0, &c, 1, 80), Err(Errno::InProgress));
    assert_eq!(c.local_addr().port(), 40001);
}

/// `tcp_pingpong_thresh`: one reply within the ATO makes the connection
/// interactive under the default 1, and its next data is ACKed late
/// (delayed ACK, no quick ACK); under 3 it is still ACKed at once.
#[test]
fn pingpong_threshold_decides_when_acks_are_delayed() {
    use crate::context::TcpContext;
    for thresh in [1, 3] {
        let mut net = Net::new(2);
        net.hosts[1]
            .ctx
            .sysctl()
            .set_int(netcore::Sysctl::TCP_PINGPONG_THRESH, thresh)
            .unwrap();
        let (c, s) = net.connect_pair(80);
        let mut buf = [0u8; 100];
        net.send(0, &c, &[1; 100]).unwrap();
        net.run_for_ms(5);
        assert_eq!(net.recv(1, &s, &mut buf), Ok(100));
        net.send(1, &s, &[2; 100]).unwrap();
        net.run_for_ms(5);
        assert_eq!(net.recv(0, &c, &mut buf), Ok(100));
        net.log.clear();
        let t1 = net.now();
        net.send(0, &c, &[3; 100]).unwrap();
        net.run_for_ms(100);
        let data = net.from(0).into_iter().find(|x| x.len() == 100).cloned();
        let end = data.expect("the data").tcp.seq.wrapping_add(100);
        let ack = net.from(1).into_iter().find(|x| x.tcp.ack == end).cloned();
        let late = ack.expect("an ACK of the data").at - t1;
        if thresh == 1 {
            assert!(late >= Duration::from_millis(40), "ACKed after {late:?}");
        } else {
            assert_eq!(late, Duration::from_millis(1), "thresh {thresh}");
        }
    }
}

/// `tcp_min_snd_mss`: a peer announcing an MSS of 10 gets segments of
/// 48 bytes (the default), or of what the knob says; never of 10.
#[test]
fn min_snd_mss_bounds_a_tiny_peer_mss() {
    use crate::context::TcpContext;
    for (min, want) in [(None, 48usize), (Some(100), 100)] {
        let mut net = Net::new(2);
        if let Some(m) = min {
            net.hosts[1]
                .ctx
                .sysctl()
                .set_int(netcore::Sysctl::TCP_MIN_SND_MSS, m)
                .unwrap();
        }
        let l = net.listen(1, 80, 8);
        let peer = Ipv4Addr::new(198, 18, 0, 99);
        let mk = |seq: u32, ack: u32, flags: TcpFlags, mss: Option<u16>| TcpRepr {
            src_port: 5000,
            dst_port: 80,
            seq,
            ack,
            flags,
            window: 65535,
            urgent: 0,
            options: TcpOptions {
                mss,
                ..TcpOptions::default()
            },
            payload_len: 0,
        };
        net.inject(peer, 1, &mk(1000, 0, SYN, Some(10)), &[]);
        net.run_for_ms(1);
        let sa = net.from(1).into_iter().find(|x| x.is(SYN | ACK)).cloned();
        let isn = sa.expect("a SYN-ACK").tcp.seq;
        net.inject(peer, 1, &mk(1001, isn.wrapping_add(1), ACK, None), &[]);
        net.run_for_ms(1);
        let s = net.accept(1, &l).unwrap();
        net.log.clear();
        net.send(1, &s, &[9; 300]).unwrap();
        net.run_for_ms(1);
        let first = net.from(1).into_iter().find(|x| !x.is_empty()).cloned();
        assert_eq!(first.expect("data").len(), want, "tcp_min_snd_mss {min:?}");
    }
}

/// `TCP_NOTSENT_LOWAT` (or `net.ipv4.tcp_notsent_lowat`): a write stops
/// once a new skb would start with the mark's worth of bytes unsent, where
/// without a mark the send buffer alone bounds it; `EPOLLOUT` stays clear
/// until the unsent bytes fall below half the mark, and then the waiting
/// writer is woken. `getsockopt` reads the option back.
#[test]
fn notsent_lowat_bounds_unsent_bytes_and_wakes_the_writer() {
    use crate::context::TcpContext;
    const LOWAT: u32 = 16_384;
    for mark in ["none", "sockopt", "sysctl"] {
        let (mut net, c, s) = pair();
        net.setsockopt(0, &c, SockOpt::SndBuf(4 << 20)).unwrap();
        match mark {
            "sockopt" => net.setsockopt(0, &c, SockOpt::NotsentLowat(LOWAT)).unwrap(),
            "sysctl" => net.hosts[0]
                .ctx
                .sysctl()
                .set_int(netcore::Sysctl::TCP_NOTSENT_LOWAT, i64::from(LOWAT))
                .unwrap(),
            _ => {}
        }
        let h = &net.hosts[0];
        let opt = h.stack.getsockopt(&h.ctx, &c, SockOptName::NotsentLowat);
        assert_eq!(
            opt,
            Ok(if mark == "sockopt" {
                i64::from(LOWAT)
            } else {
                0
            })
        );
        let big = vec![3u8; 1_000_000];
        let n = net.send(0, &c, &big).unwrap();
        if mark == "none" {
            // SO_SNDBUF is capped at wmem_max (212992) and doubled.
            assert!(n > 300_000, "{mark}: {n}");
            continue;
        }
        assert!(n < 100_000, "{mark}: {n}");
        let unsent = |c: &crate::TcpSocket| {
            let tp = c.lock();
            tp.write_seq.wrapping_sub(tp.snd_nxt)
        };
        assert!(unsent(&c) >= LOWAT / 2, "{mark}: {} unsent", unsent(&c));
        assert!(!net.hosts[0].stack.poll(&c).contains(PollMask::OUT));
        net.hosts[0].ctx.events.clear();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0;
        let ok = net.run_until(Duration::from_secs(5), |net| {
            got += net.recv(1, &s, &mut buf).unwrap_or(0);
            net.hosts[0].stack.poll(&c).contains(PollMask::OUT)
        });
        assert!(ok, "{mark}: never writable again");
        assert!(unsent(&c) < LOWAT / 2, "{mark}: {} unsent", unsent(&c));
        assert!(
            net.hosts[0]
                .ctx
                .take_event(c.id(), crate::SkEvent::WriteSpace),
            "{mark}: the writer was not woken"
        );
    }
}

/// `net.ipv4.tcp_rto_max_ms` (read when the socket is made) and
/// `TCP_RTO_MAX_MS` cap the retransmission backoff: with the peer gone,
/// the intervals between retransmissions of the same segment double up
/// to the cap and stay there, where the default lets them reach 3.2 s
/// and beyond. The option takes 1,000..=120,000 ms (`EINVAL` otherwise)
/// and reads back.
#[test]
fn rto_max_caps_the_retransmission_backoff() {
    use crate::context::TcpContext;
    for cap in [None, Some("sysctl"), Some("sockopt")] {
        let mut net = Net::new(2);
        if cap == Some("sysctl") {
            net.hosts[0]
                .ctx
                .sysctl()
                .set_int(netcore::Sysctl::TCP_RTO_MAX_MS, 1500)
                .unwrap();
        }
        let (c, _s) = net.connect_pair(80);
        if cap == Some("sockopt") {
            for bad in [999, 120_001] {
                let r = net.setsockopt(0, &c, SockOpt::RtoMaxMs(bad));
                assert_eq!(r, Err(Errno::Inval));
            }
            net.setsockopt(0, &c, SockOpt::RtoMaxMs(1500)).unwrap();
        }
        let h = &net.hosts[0];
        let want = if cap.is_some() { 1500 } else { 120_000 };
        let got = h.stack.getsockopt(&h.ctx, &c, SockOptName::RtoMaxMs);
        assert_eq!(got, Ok(want), "{cap:?}");
        net.set_drop_filter(|s| s.src == Ipv4Addr::new(198, 18, 0, 2));
        net.log.clear();
        net.send(0, &c, b"are you there").unwrap();
        net.run_for_ms(20_000);
        let at: Vec<_> = net.from(0).iter().map(|x| x.at).collect();
        let gaps: Vec<u128> = at.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        assert!(gaps.len() >= 6, "{cap:?}: {gaps:?}");
        let longest = *gaps.iter().max().unwrap();
        let rto = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c).rto;
        if cap.is_some() {
            assert_eq!(longest, 1500, "{cap:?}: {gaps:?}");
            assert_eq!(gaps.iter().rev().take(3).collect::<Vec<_>>(), [&1500; 3]);
            assert_eq!(rto, 1_500_000, "{cap:?}: TCP_INFO rto (µs)");
        } else {
            assert!(longest >= 3200, "{gaps:?}");
        }
    }
}

/// `tcp_thin_linear_timeouts` / `TCP_THIN_LINEAR_TIMEOUTS`: a thin stream
/// (one small segment in flight) whose peer went silent retransmits at the
/// un-backed-off RTO six times before backing off; by default every RTO
/// doubles.
#[test]
fn thin_linear_timeouts_keep_the_first_six_rtos_flat() {
    use crate::context::TcpContext;
    for thin in [None, Some("sysctl"), Some("sockopt")] {
        let mut net = Net::new(2);
        if thin == Some("sysctl") {
            net.hosts[0]
                .ctx
                .sysctl()
                .set_int(netcore::Sysctl::TCP_THIN_LINEAR_TIMEOUTS, 1)
                .unwrap();
        }
        let (c, _s) = net.connect_pair(80);
        if thin == Some("sockopt") {
            net.setsockopt(0, &c, SockOpt::ThinLinearTimeouts(true))
                .unwrap();
        }
        let h = &net.hosts[0];
        let opt = h
            .stack
            .getsockopt(&h.ctx, &c, SockOptName::ThinLinearTimeouts);
        assert_eq!(opt, Ok(i64::from(thin == Some("sockopt"))));
        net.set_drop_filter(|s| s.src == Ipv4Addr::new(198, 18, 0, 2));
        net.log.clear();
        net.send(0, &c, b"ping").unwrap();
        net.run_for_ms(30_000);
        let at: Vec<_> = net.from(0).iter().map(|x| x.at).collect();
        let gaps: Vec<u128> = at.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
        assert!(gaps.len() >= 8, "{thin:?}: {gaps:?}");
        // The tail loss probe one RTO (202 ms here) after the segment, the
        // first RTO one later.
        let first = gaps[0];
        assert_eq!(gaps[1], first, "{thin:?}: {gaps:?}");
        if thin.is_some() {
            // Retransmissions 1 to 6 keep the interval; the 7th backs off.
            assert!(gaps[..8].iter().all(|&g| g == first), "{thin:?}: {gaps:?}");
            assert_eq!(gaps[8], 2 * first, "{thin:?}: {gaps:?}");
        } else {
            assert_eq!(gaps[2], 2 * first, "{gaps:?}");
            assert_eq!(gaps[3], 4 * first, "{gaps:?}");
        }
    }
}

/// `tcp_workaround_signed_windows`: a server facing a client without
/// window scaling never offers more than 32767 (its SYN-ACK included),
/// where by default it offers up to 65535.
#[test]
fn workaround_signed_windows_caps_the_offered_window() {
    use crate::context::TcpContext;
    for workaround in [0, 1] {
        let mut net = Net::new(2);
        net.hosts[0]
            .ctx
            .sysctl()
            .set_int(netcore::Sysctl::TCP_WINDOW_SCALING, 0)
            .unwrap();
        net.hosts[1]
            .ctx
            .sysctl()
            .set_int(netcore::Sysctl::TCP_WORKAROUND_SIGNED_WINDOWS, workaround)
            .unwrap();
        let (c, s) = net.connect_pair(80);
        net.send(0, &c, &[1; 5000]).unwrap();
        net.run_for_ms(100);
        let mut buf = [0u8; 5000];
        assert_eq!(net.recv(1, &s, &mut buf), Ok(5000));
        net.run_for_ms(100);
        let windows: Vec<u16> = net.from(1).iter().map(|x| x.tcp.window).collect();
        let largest = *windows.iter().max().unwrap();
        let syn_ack = net.from(1).into_iter().find(|x| x.is(SYN | ACK)).cloned();
        let syn_ack = syn_ack.expect("a SYN-ACK").tcp.window;
        if workaround == 1 {
            assert!(largest <= 32767, "{windows:?}");
            assert!(syn_ack <= 32767 && syn_ack > 30_000, "{syn_ack}");
        } else {
            assert!(largest > 32767, "{windows:?}");
        }
    }
}

/// A connection past the quick-ACK mode of its start (which ACKs every
/// segment at once, so compression waits for it to end), with
/// `tcp_comp_sack_nr` set on the receiver and no tail loss probes on the
/// sender (whose duplicates would grant quick ACKs again); log cleared.
fn pair_past_quickack(
    comp_nr: i64,
) -> (
    Net,
    std::sync::Arc<crate::TcpSocket>,
    std::sync::Arc<crate::TcpSocket>,
) {
    use crate::context::TcpContext;
    let (mut net, c, s) = pair();
    let set = |net: &Net, i: usize, key, v| net.hosts[i].ctx.sysctl().set_int(key, v).unwrap();
    set(&net, 1, netcore::Sysctl::TCP_COMP_SACK_NR, comp_nr);
    set(&net, 0, netcore::Sysctl::TCP_EARLY_RETRANS, 0);
    let mut buf = vec![0u8; 100_000];
    for _ in 0..4 {
        net.send(0, &c, &pattern(20 * 1448, 3)).unwrap();
        net.run_for_ms(50);
        assert_eq!(net.recv(1, &s, &mut buf), Ok(20 * 1448));
    }
    net.log.clear();
    (net, c, s)
}

/// Drops host 0's data segments whose number (from 1, counted from now)
/// `lost` picks.
fn drop_data_segments(net: &mut Net, lost: impl Fn(u32) -> bool + 'static) {
    let mut n = 0;
    net.set_drop_filter(move |x| {
        if !x.is_empty() && x.src == Ipv4Addr::new(198, 18, 0, 1) {
            n += 1;
            return lost(n);
        }
        false
    });
}

/// SACK compression (`tcp_comp_sack_nr`, 44 by default): of the eight
/// segments that arrive above a hole, the first three are answered at
/// once with duplicate ACKs (the sender's fast retransmit needs three),
/// the other five by one ACK 5 % of an RTT later that carries all their
/// SACK blocks (`TCPAckCompressed` 4: the ACKs saved). With
/// `tcp_comp_sack_nr=0` every one gets its duplicate ACK at once. The
/// hole is repaired by fast retransmit either way.
#[test]
fn sack_compression_holds_back_duplicate_acks_after_three() {
    for comp_nr in [44, 0] {
        let (mut net, c, s) = pair_past_quickack(comp_nr);
        drop_data_segments(&mut net, |n| n == 2);
        let mut buf = vec![0u8; 100_000];
        let data = pattern(10 * 1448, 7);
        net.send(0, &c, &data).unwrap();
        net.run_for_ms(50);
        assert_eq!(net.recv(1, &s, &mut buf), Ok(data.len()));
        assert_eq!(&buf[..data.len()], &data[..]);
        let dupacks: Vec<_> = net
            .from(1)
            .into_iter()
            .filter(|x| !x.tcp.options.sack_blocks.is_empty())
            .cloned()
            .collect();
        let compressed = net.mib(1, LinuxMib::TcpAckCompressed);
        if comp_nr == 44 {
            assert_eq!(dupacks.len(), 4, "{dupacks:#?}");
            assert_eq!(compressed, 4);
            // The held-back ACK: one twentieth of the 2 ms RTT later,
            // SACKing all eight segments above the hole.
            let (third, last) = (&dupacks[2], &dupacks[3]);
            assert_eq!(
                last.at - third.at,
                Duration::from_micros(100),
                "{dupacks:#?}"
            );
            let b = last.tcp.options.sack_blocks[0];
            assert_eq!(b.end_seq.wrapping_sub(b.start_seq), 8 * 1448);
        } else {
            assert_eq!(dupacks.len(), 8, "{dupacks:#?}");
            assert_eq!(compressed, 0);
        }
        assert_eq!(net.mib(0, LinuxMib::TcpSackRecovery), 1);
        assert_eq!(net.mib(0, LinuxMib::TcpTimeouts), 0);
    }
}

/// SACK compression never drops a hole's report unsent: when a new hole
/// would push a block out of the four kept, the ACKs held back (more than
/// three) go out at once, reporting the blocks as they were.
#[test]
fn sack_compression_sends_before_a_block_is_forgotten() {
    let (mut net, c, _s) = pair_past_quickack(44);
    // Segments 2, 5, 8, 11 and 14 of the next flight are lost: five holes.
    drop_data_segments(&mut net, |n| n <= 16 && n % 3 == 2);
    let first_seq = c.lock().snd_nxt;
    net.send(0, &c, &pattern(16 * 1448, 9)).unwrap();
    let arrive = net.now() + Duration::from_millis(1);
    net.run_for_ms(2);
    let mss = 1448u32;
    let seg = |i: u32| first_seq.wrapping_add((i - 1) * mss);
    let at_once: Vec<_> = net
        .from(1)
        .into_iter()
        .filter(|x| x.at == arrive && !x.tcp.options.sack_blocks.is_empty())
        .cloned()
        .collect();
    // Three duplicate ACKs, then the held-back ACK, sent as segment 15
    // opens a fifth block: it still reports segments 6-7, which the ACKs
    // after it no longer carry (with timestamps an ACK has room for the
    // three newest of the four blocks kept).
    assert_eq!(at_once.len(), 4, "{at_once:#?}");
    let blocks = |x: &crate::testutil::Seg| -> Vec<(u32, u32)> {
        let rel = |q: u32| q.wrapping_sub(first_seq) / mss + 1;
        let b = &x.tcp.options.sack_blocks;
        b.iter()
            .map(|b| (rel(b.start_seq), rel(b.end_seq)))
            .collect()
    };
    assert_eq!(blocks(&at_once[3]), [(12, 14), (9, 11), (6, 8)]);
    let later: Vec<_> = net
        .from(1)
        .into_iter()
        .filter(|x| x.at > arrive && x.at < arrive + Duration::from_millis(1))
        .cloned()
        .collect();
    assert_eq!(later.len(), 1, "{later:#?}");
    assert_eq!(later[0].at - arrive, Duration::from_micros(100));
    assert_eq!(blocks(&later[0]), [(15, 17), (12, 14), (9, 11)]);
    // Saved: the ACKs of segments 7, 9, 10, 12 and 13, one sent for all
    // five (4). Segment 15's is that ACK (sent as it arrived, it leaves
    // nothing scheduled), 16's is the last one (held, then sent: none
    // saved), as in Linux.
    assert_eq!(net.mib(1, LinuxMib::TcpAckCompressed), 4);
    let _ = seg;
}

/// `tcp_retrans_collapse` (on by default): five small NODELAY writes,
/// each sent alone and each lost once. The tail loss probe resends the
/// last; its SACK shows the four before it lost, and the retransmission
/// of the first takes the three after it along, one 400-byte segment
/// (the SACKed fifth stops the merge). With the sysctl off each goes
/// again alone. Either way the receiver gets the 500 bytes in order.
#[test]
fn retransmission_collapses_small_lost_segments_into_one() {
    use crate::context::TcpContext;
    for collapse in [1, 0] {
        let (mut net, c, s) = pair();
        net.delay = Duration::from_millis(10);
        net.hosts[0]
            .ctx
            .sysctl()
            .set_int(netcore::Sysctl::TCP_RETRANS_COLLAPSE, collapse)
            .unwrap();
        net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
        let mut seen = std::collections::HashSet::new();
        net.set_drop_filter(move |x| {
            !x.is_empty() && x.src == Ipv4Addr::new(198, 18, 0, 1) && seen.insert(x.tcp.seq)
        });
        let data = pattern(500, 7);
        for chunk in data.chunks(100) {
            assert_eq!(net.send(0, &c, chunk), Ok(100));
            net.run_for_ms(1);
        }
        net.run_for_ms(2000);
        let mut buf = [0u8; 600];
        assert_eq!(net.recv(1, &s, &mut buf), Ok(500), "collapse={collapse}");
        assert_eq!(&buf[..500], &data[..]);
        let sent: Vec<(u32, usize, bool)> = net
            .from(0)
            .iter()
            .filter(|x| !x.is_empty())
            .map(|x| (x.tcp.seq, x.len(), x.dropped))
            .collect();
        let first: Vec<_> = sent.iter().filter(|x| x.2).collect();
        assert_eq!(first.len(), 5, "collapse={collapse}: {sent:?}");
        assert!(first.iter().all(|x| x.1 == 100));
        let again: Vec<usize> = sent.iter().filter(|x| !x.2).map(|x| x.1).collect();
        if collapse == 1 {
            // The probe (100 bytes), then one segment for the other four
            // less the SACKed one.
            assert_eq!(again, [100, 400], "{sent:?}");
        } else {
            assert_eq!(again, [100; 5], "{sent:?}");
        }
        assert_eq!(
            net.mib(0, TcpMib::RetransSegs),
            again.len() as u64,
            "collapse={collapse}"
        );
    }
}

/// "Fragmentation needed" for a segment in flight (`tcp_v4_mtu_reduced()`):
/// the MSS drops to the new path MTU's (1200 - 40 - 12 of timestamps =
/// 1148) and every sent segment longer than that goes again at once, cut
/// to it (`tcp_simple_retransmit()`, CA state Loss, cwnd untouched),
/// without waiting for the RTO; the receiver gets every byte. Each
/// 1448-byte write-queue entry goes as 1148 + 300 (Linux, whose one skb
/// holds the four segments, cuts the run into five of 1148 and one of
/// 52; see the deviation in `tcp_retransmit_skb_core()`).
#[test]
fn fragmentation_needed_retransmits_at_once_with_the_smaller_mss() {
    let (mut net, c, s) = pair();
    net.delay = Duration::from_millis(10);
    // The path drops what does not fit 1200 bytes, as a router would.
    net.set_drop_filter(|x| x.len() + 52 > 1200);
    let data = pattern(4 * 1448, 11);
    assert_eq!(net.send(0, &c, &data), Ok(data.len()));
    net.run_for_ms(1);
    let first = net.log.iter().find(|x| !x.is_empty()).unwrap().clone();
    assert_eq!(first.len(), 1448);
    let cwnd = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c).snd_cwnd;
    net.log.clear();
    let h = &mut net.hosts[0];
    crate::tcp_v4_err(
        &h.stack,
        &mut h.ctx,
        first.src,
        first.tcp.src_port,
        first.dst,
        first.tcp.dst_port,
        first.tcp.seq,
        crate::TcpIcmpError::FragNeeded(1200),
    );
    let info = h.stack.tcp_info(&h.ctx, &c);
    assert_eq!(info.snd_mss, 1148);
    assert_eq!(info.ca_state, crate::TcpCaState::Loss as u8);
    assert_eq!(info.snd_cwnd, cwnd, "cwnd untouched");
    // Sent at once (as fast as the pacing rate lets them go), long
    // before the RTO (over 200 ms).
    net.run_for_ms(20);
    let again: Vec<usize> = net
        .log
        .iter()
        .filter(|x| !x.is_empty())
        .map(crate::testutil::Seg::len)
        .collect();
    assert_eq!(
        again,
        [1148, 300, 1148, 300, 1148, 300, 1148, 300],
        "{again:?}"
    );
    net.run_for_ms(100);
    let mut buf = vec![0u8; 8192];
    assert_eq!(net.recv(1, &s, &mut buf), Ok(data.len()));
    assert_eq!(&buf[..data.len()], &data[..]);
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 8);
}

/// Urgent data (`MSG_OOB`, RFC 9293 §3.8.5 with Linux's BSD reading of
/// the pointer): "xyz" sent with `MSG_OOB` between "abc" and "def" leaves
/// in a segment with URG whose pointer is one past the urgent byte 'z'.
/// The reader gets `EPOLLPRI`; a read stops at the mark ("abcxy"),
/// `SIOCATMARK` is then true, `recv(MSG_OOB)` returns 'z' once (then
/// `EINVAL`) and the stream goes on without it ("def"). With
/// `SO_OOBINLINE` the byte stays in the stream and `MSG_OOB` is `EINVAL`.
#[test]
fn urgent_data_is_marked_and_read_out_of_band_or_inline() {
    for inline in [false, true] {
        let (mut net, c, s) = pair();
        if inline {
            net.setsockopt(1, &s, SockOpt::OobInline(true)).unwrap();
        }
        net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
        net.send(0, &c, b"abc").unwrap();
        net.run_for_ms(5);
        net.send_flags(0, &c, b"xyz", MsgFlags::OOB).unwrap();
        net.run_for_ms(5);
        net.send(0, &c, b"def").unwrap();
        net.run_for_ms(5);
        let data: Vec<_> = net.from(0).into_iter().filter(|x| !x.is_empty()).collect();
        assert_eq!(data.len(), 3, "{data:?}");
        assert!(!data[0].tcp.flags.contains(URG));
        assert!(data[1].tcp.flags.contains(URG), "{:?}", data[1]);
        assert_eq!(data[1].tcp.urgent, 3, "one past 'z'");
        assert!(
            !data[2].tcp.flags.contains(URG),
            "urgent mode ended with the ACK"
        );
        let h = &net.hosts[1];
        assert!(h.stack.poll(&s).contains(PollMask::PRI));
        assert_eq!(h.stack.ioctl_atmark(&s), Ok(false));
        let mut buf = [0u8; 64];
        assert_eq!(net.recv(1, &s, &mut buf), Ok(5));
        assert_eq!(&buf[..5], b"abcxy", "stops at the mark");
        assert_eq!(net.hosts[1].stack.ioctl_atmark(&s), Ok(true));
        let oob = net.recv_flags(1, &s, &mut buf, MsgFlags::OOB);
        if inline {
            assert_eq!(oob, Err(Errno::Inval));
            assert_eq!(net.recv(1, &s, &mut buf), Ok(4));
            assert_eq!(&buf[..4], b"zdef");
        } else {
            assert_eq!(oob, Ok(1));
            assert_eq!(buf[0], b'z');
            assert_eq!(
                net.recv_flags(1, &s, &mut buf, MsgFlags::OOB),
                Err(Errno::Inval)
            );
            assert!(!net.hosts[1].stack.poll(&s).contains(PollMask::PRI));
            assert_eq!(net.recv(1, &s, &mut buf), Ok(3));
            assert_eq!(&buf[..3], b"def");
        }
        assert_eq!(net.hosts[1].stack.ioctl_atmark(&s), Ok(false));
    }
}

/// A second urgent byte before the first was read: the first, unread and
/// out of line, is dropped from the stream (`tcp_check_urg()`), and
/// `MSG_OOB` returns the newer one. With the pointer announced but its
/// byte not yet here, `MSG_OOB` is `EAGAIN` and never waits.
#[test]
fn a_newer_urgent_byte_replaces_an_unread_one() {
    let (mut net, c, s) = pair();
    net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
    net.send_flags(0, &c, b"12", MsgFlags::OOB).unwrap();
    net.run_for_ms(5);
    let mut buf = [0u8; 16];
    // Read up to the mark: the next byte is the urgent '2'.
    assert_eq!(net.recv(1, &s, &mut buf), Ok(1));
    assert_eq!(net.hosts[1].stack.ioctl_atmark(&s), Ok(true));
    net.send_flags(0, &c, b"34", MsgFlags::OOB).unwrap();
    net.run_for_ms(5);
    assert_eq!(net.recv_flags(1, &s, &mut buf, MsgFlags::OOB), Ok(1));
    assert_eq!(buf[0], b'4');
    assert_eq!(net.recv(1, &s, &mut buf), Ok(1));
    assert_eq!(buf[0], b'3', "'2' was dropped, '4' is out of band");
    // An urgent pointer without its byte yet: inject a segment whose
    // pointer reaches past its data.
    let x = net.from(0).last().map(|x| (*x).clone()).unwrap();
    let ack_c = net.from(1).last().unwrap().tcp.seq;
    let repr = TcpRepr {
        src_port: x.tcp.src_port,
        dst_port: x.tcp.dst_port,
        seq: x.tcp.seq.wrapping_add(2),
        ack: ack_c,
        flags: ACK | URG,
        window: 1000,
        urgent: 10,
        options: x.tcp.options,
        payload_len: 1,
    };
    net.inject(x.src, 1, &repr, b"5");
    net.run_for_ms(1);
    assert_eq!(
        net.recv_flags(1, &s, &mut buf, MsgFlags::OOB),
        Err(Errno::Again)
    );
    assert_eq!(net.recv(1, &s, &mut buf), Ok(1));
    assert_eq!(buf[0], b'5');
}

/// `tcp_stdurg=1` reads the urgent pointer as RFC 1122 does: it names the
/// urgent byte itself, here the one after "xyz" ('d', in the next
/// segment), where the default BSD reading names 'z'.
#[test]
fn tcp_stdurg_reads_the_pointer_as_the_urgent_byte() {
    use crate::context::TcpContext;
    let (mut net, c, s) = pair();
    net.hosts[1]
        .ctx
        .sysctl()
        .set_int(netcore::Sysctl::TCP_STDURG, 1)
        .unwrap();
    net.setsockopt(0, &c, SockOpt::NoDelay(true)).unwrap();
    net.send_flags(0, &c, b"xyz", MsgFlags::OOB).unwrap();
    net.run_for_ms(5);
    let mut buf = [0u8; 16];
    // The pointer came; its byte not yet.
    assert_eq!(
        net.recv_flags(1, &s, &mut buf, MsgFlags::OOB),
        Err(Errno::Again)
    );
    net.send(0, &c, b"def").unwrap();
    net.run_for_ms(5);
    assert_eq!(net.recv(1, &s, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"xyz");
    assert_eq!(net.recv_flags(1, &s, &mut buf, MsgFlags::OOB), Ok(1));
    assert_eq!(buf[0], b'd');
    assert_eq!(net.recv(1, &s, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"ef");
}

/// `tcp_metrics`: a connection over a 100 ms RTT path closes (the client
/// enters TIME-WAIT and saves what it measured); the path then becomes
/// 10 ms, and the next connection's first RTO comes from the cached RTT
/// (rtt + max(2·rtt, 200 ms), over 300 ms, `tcp_init_metrics()`), not from its
/// 10 ms handshake (which gives the 200 ms floor plus a little). With
/// `tcp_no_metrics_save` nothing is cached and the handshake decides.
#[test]
fn tcp_metrics_seed_the_next_connection_s_rto() {
    use crate::context::TcpContext;
    for nosave in [0, 1] {
        let mut net = Net::new(2);
        net.hosts[0]
            .ctx
            .sysctl()
            .set_int(netcore::Sysctl::TCP_NO_METRICS_SAVE, nosave)
            .unwrap();
        net.delay = Duration::from_millis(50);
        let (c, s) = net.connect_pair(80);
        net.send(0, &c, &[7u8; 10_000]).unwrap();
        net.run_for_ms(1000);
        net.close(0, &c);
        net.run_for_ms(500);
        net.close(1, &s);
        net.run_for_ms(500);
        let server = Ipv4Addr::new(198, 18, 0, 2);
        let cached = net.hosts[0].stack.tcp_metrics_get(server, net.now());
        let mut expect_rto_ms = 0;
        if nosave == 1 {
            assert!(cached.is_none());
        } else {
            let m = cached.expect("metrics for the server");
            let rtt_us = m.rtt / 8;
            assert!(
                (100_000..=120_000).contains(&rtt_us),
                "cached RTT {rtt_us} µs"
            );
            expect_rto_ms = (rtt_us + (2 * rtt_us).max(200_000)) / 1000;
            let shown = net.hosts[0]
                .stack
                .tcp_metrics_show(net.now(), |_| Ipv4Addr::new(198, 18, 0, 1));
            assert!(shown.starts_with("198.18.0.2 age "), "{shown}");
            assert!(shown.contains(&format!(" rtt {rtt_us}us")), "{shown}");
            assert!(shown.ends_with(" source 198.18.0.1\n"), "{shown}");
        }
        net.delay = Duration::from_millis(5);
        let l = net.listen(1, 81, 8);
        let c2 = net.socket(0);
        let _ = net.connect(0, &c2, 1, 81);
        net.run_for_ms(20);
        assert_eq!(c2.state(), TcpState::Established);
        let rto = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c2).rto / 1000;
        if nosave == 1 {
            assert!((200..220).contains(&rto), "RTO {rto} ms from the handshake");
        } else {
            assert_eq!(rto, expect_rto_ms, "RTO from the cached RTT");
            assert!(rto >= 300);
        }
        drop(l);
    }
}

/// `tcp_no_ssthresh_metrics_save=0`: a connection that left slow start
/// on a loss and closes in congestion avoidance saves its ssthresh, and
/// the next one to the same host starts with it instead of infinity
/// (`tcp_update_metrics()`, `tcp_init_metrics()`). With Linux's default
/// (1) nothing of it is saved and the next one starts at infinity.
#[test]
fn a_saved_ssthresh_seeds_the_next_connection() {
    use crate::context::TcpContext;
    for nosave in [0, 1] {
        let mut net = Net::new(2);
        net.hosts[0]
            .ctx
            .sysctl()
            .set_int(netcore::Sysctl::TCP_NO_SSTHRESH_METRICS_SAVE, nosave)
            .unwrap();
        net.delay = Duration::from_millis(5);
        let client = Ipv4Addr::new(198, 18, 0, 1);
        let mut data_segs = 0;
        net.set_drop_filter(move |x| {
            if x.src == client && x.tcp.payload_len > 0 {
                data_segs += 1;
                data_segs == 10
            } else {
                false
            }
        });
        let (c, s) = net.connect_pair(80);
        net.send(0, &c, &vec![7u8; 200_000]).unwrap();
        net.run_for_ms(1000);
        let first = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
        assert!(
            first.snd_ssthresh < crate::TCP_INFINITE_SSTHRESH,
            "{first:?}"
        );
        assert!(first.snd_cwnd >= first.snd_ssthresh, "{first:?}");
        net.close(0, &c);
        net.run_for_ms(500);
        net.close(1, &s);
        net.run_for_ms(500);
        let server = Ipv4Addr::new(198, 18, 0, 2);
        let m = net.hosts[0]
            .stack
            .tcp_metrics_get(server, net.now())
            .expect("metrics for the server");
        let l = net.listen(1, 81, 8);
        let c2 = net.socket(0);
        let _ = net.connect(0, &c2, 1, 81);
        net.run_for_ms(20);
        assert_eq!(c2.state(), TcpState::Established);
        let next = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c2);
        if nosave == 0 {
            // max(cwnd / 2, ssthresh) at the close.
            assert!(m.ssthresh >= first.snd_ssthresh, "{m:?} vs {first:?}");
            assert_eq!(next.snd_ssthresh, m.ssthresh);
        } else {
            assert_eq!(m.ssthresh, 0, "{m:?}");
            assert_eq!(next.snd_ssthresh, crate::TCP_INFINITE_SSTHRESH);
        }
        drop(l);
    }
}

/// No RTT from the handshake (the SYN was retransmitted, no timestamps)
/// and none cached: the first RTO is 3 s (`TCP_TIMEOUT_FALLBACK`, RFC
/// 6298 5.7), not the 1 s initial one.
#[test]
fn no_handshake_rtt_falls_back_to_a_3_second_rto() {
    use crate::context::TcpContext;
    let mut net = Net::new(2);
    net.hosts[0]
        .ctx
        .sysctl()
        .set_int(netcore::Sysctl::TCP_TIMESTAMPS, 0)
        .unwrap();
    let mut first = true;
    net.set_drop_filter(move |x| {
        let d = first && x.tcp.flags.contains(SYN);
        first &= !d;
        d
    });
    let (c, _s) = net.connect_pair(80);
    let info = net.hosts[0].stack.tcp_info(&net.hosts[0].ctx, &c);
    assert_eq!(info.rto, 3_000_000);
    assert_eq!(info.rttvar, 3_000_000 >> 2, "mdev 3 s, reported as rttvar");
}
