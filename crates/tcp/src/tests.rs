//! Scenario tests: two stacks back to back through the fake network, in
//! virtual time, checking the segments on the wire as well as what the
//! application sees.

use netcore::{Duration, Errno, LinuxMib, TcpMib};
use wire::{TcpFlags, TcpOptions};

use crate::testutil::Net;
use crate::{Shutdown, TcpState};

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const FIN: TcpFlags = TcpFlags::FIN;
const PSH: TcpFlags = TcpFlags::PSH;

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
