//! ECN (RFC 3168) in virtual time, checked on the wire: negotiation as
//! `tcp_ecn` on each side decides it, ECT(0) on new data only, a CE mark
//! echoed by ECE until the sender's CWR, one cwnd reduction per window
//! through CA state CWR (`TCP_INFO` sampled every millisecond), CWR after
//! a loss recovery too, `tcp_ecn_fallback` on a lost SYN, ECN through SYN
//! cookies, and a simultaneous open.

use std::net::{Ipv4Addr, SocketAddrV4};

use netcore::{Duration, LinuxMib, Sysctl, TcpMib};
use tcp::testutil::{Net, Seg};
use tcp::{TcpContext, TcpInfo, TcpSocket, TcpState};
use wire::TcpFlags;

const SYN: TcpFlags = TcpFlags::SYN;
const ACK: TcpFlags = TcpFlags::ACK;
const ECE: TcpFlags = TcpFlags::ECE;
const CWR: TcpFlags = TcpFlags::CWR;
/// The IP ECN codepoints (`INET_ECN_*`).
const NOT_ECT: u8 = 0;
const ECT_0: u8 = 2;
/// `TCPI_OPT_ECN`, `TCPI_OPT_ECN_SEEN`.
const TCPI_OPT_ECN: u8 = 8;
const TCPI_OPT_ECN_SEEN: u8 = 16;
const CA_OPEN: u8 = 0;
const CA_CWR: u8 = 2;
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// Two hosts, 1 ms apart, with `tcp_ecn` set on each.
fn net_with(client_ecn: i64, server_ecn: i64) -> Net {
    let net = Net::new(2);
    set(&net, 0, Sysctl::TCP_ECN, client_ecn);
    set(&net, 1, Sysctl::TCP_ECN, server_ecn);
    net
}

fn set(net: &Net, i: usize, key: netcore::IntKey, v: i64) {
    net.hosts[i].ctx.sysctl().set_int(key, v).unwrap();
}

fn info(net: &Net, i: usize, sk: &TcpSocket) -> TcpInfo {
    net.hosts[i].stack.tcp_info(&net.hosts[i].ctx, sk)
}

/// Sends `n` bytes from host `from` to host `to` and reads them all.
fn transfer(net: &mut Net, from: usize, a: &TcpSocket, b: &TcpSocket, n: usize) {
    let data = vec![0x5a; n];
    let mut sent = 0;
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let to = 1 - from;
    for _ in 0..20_000 {
        if sent < n {
            sent += net.send(from, a, &data[sent..]).unwrap_or(0);
        }
        net.run_for_ms(1);
        while let Ok(k) = net.recv(to, b, &mut buf) {
            if k == 0 {
                break;
            }
            assert!(buf[..k].iter().all(|&x| x == 0x5a), "data corrupted");
            got += k;
        }
        if got == n {
            return;
        }
    }
    panic!("transfer stalled: {got} of {n} bytes");
}

fn is_data(s: &Seg) -> bool {
    !s.is_empty() && !s.tcp.flags.contains(SYN)
}

/// `tcp_ecn` 1 asks (SYN with ECE|CWR), 1 and 2 accept (SYN-ACK with
/// ECE, never CWR), 0 does neither. On an ECN connection both sides send
/// new data ECT(0); the handshake and pure ACKs are never ECN-capable,
/// and without ECN nothing is. `tcpi_options` says ECN on both sides.
#[test]
fn negotiation_follows_tcp_ecn_on_each_side() {
    for (client, server, ok) in [
        (1, 2, true),
        (1, 1, true),
        (2, 2, false),
        (2, 1, false),
        (1, 0, false),
        (0, 1, false),
    ] {
        let case = format!("client tcp_ecn={client}, server tcp_ecn={server}");
        let mut net = net_with(client, server);
        let (c, s) = net.connect_pair(80);
        transfer(&mut net, 0, &c, &s, 20_000);
        transfer(&mut net, 1, &s, &c, 20_000);
        let syn = net.log.iter().find(|x| x.is(SYN) || x.is(SYN | ECE | CWR));
        let syn = syn.expect("a SYN");
        assert_eq!(syn.tcp.flags.contains(ECE | CWR), client == 1, "{case}");
        let synack = net.log.iter().find(|x| x.tcp.flags.contains(SYN | ACK));
        let synack = synack.expect("a SYN-ACK");
        assert_eq!(synack.tcp.flags.contains(ECE), ok, "{case}");
        assert!(!synack.tcp.flags.contains(CWR), "{case}");
        assert!(syn.ecn == NOT_ECT && synack.ecn == NOT_ECT, "{case}");
        let data: Vec<_> = net.log.iter().filter(|x| is_data(x)).collect();
        assert!(data.len() >= 28, "{case}: {} data segments", data.len());
        for x in &data {
            assert_eq!(x.ecn, if ok { ECT_0 } else { NOT_ECT }, "{case}: {x:?}");
        }
        for x in net.log.iter().filter(|x| x.is_empty()) {
            assert_eq!(x.ecn, NOT_ECT, "{case}: a pure ACK {x:?}");
        }
        for (i, sk) in [(0, &c), (1, &s)] {
            let opts = info(&net, i, sk).options;
            assert_eq!(opts & TCPI_OPT_ECN != 0, ok, "{case}: host {i}");
            assert_eq!(opts & TCPI_OPT_ECN_SEEN != 0, ok, "{case}: host {i}");
        }
    }
}

/// What the sender's `TCP_INFO` said at each millisecond.
struct Samples {
    ca_state: Vec<u8>,
    ssthresh: Vec<u32>,
}

/// Moves `n` bytes from host 0 to host 1 on a 20 ms RTT path, marking CE
/// on host 0's data segments whose number (from 1) `mark` picks, and
/// samples the sender every millisecond.
fn marked_transfer(n: usize, mark: impl Fn(u32) -> bool + 'static) -> (Net, Samples) {
    let mut net = net_with(1, 2);
    net.delay = Duration::from_millis(10);
    let (c, s) = net.connect_pair(80);
    net.log.clear();
    let mut k = 0;
    net.set_ce_marker(move |x| {
        if is_data(x) && x.src == CLIENT {
            k += 1;
            return mark(k);
        }
        false
    });
    let data = vec![0x5a; n];
    let (mut sent, mut got) = (0, 0);
    let mut buf = vec![0u8; 64 * 1024];
    let mut samples = Samples {
        ca_state: Vec::new(),
        ssthresh: Vec::new(),
    };
    for _ in 0..60_000 {
        if sent < n {
            sent += net.send(0, &c, &data[sent..]).unwrap_or(0);
        }
        net.run_for_ms(1);
        let i = info(&net, 0, &c);
        samples.ca_state.push(i.ca_state);
        samples.ssthresh.push(i.snd_ssthresh);
        while let Ok(m) = net.recv(1, &s, &mut buf) {
            if m == 0 {
                break;
            }
            got += m;
        }
        if got == n {
            break;
        }
    }
    assert_eq!(got, n, "transfer stalled");
    let ci = info(&net, 0, &c);
    assert!(ci.delivered_ce > 0 || !samples.ca_state.contains(&CA_CWR));
    (net, samples)
}

/// The distinct values a series takes, in order.
fn runs<T: PartialEq + Copy>(v: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for &x in v {
        if out.last() != Some(&x) {
            out.push(x);
        }
    }
    out
}

/// Two CE marks in one window, and one more many windows later: the
/// receiver echoes ECE on every segment from the first mark until the
/// sender's CWR reaches it; the sender reduces cwnd once for the two
/// marks of one window (CA state Open → CWR → Open, ssthresh cut once)
/// and once more for the later mark, sending CWR on new data each time;
/// nothing is retransmitted; `TCPDeliveredCE` and `tcpi_delivered_ce`
/// count the segments the echoing ACKs delivered.
#[test]
fn ce_marks_are_echoed_until_cwr_and_cut_cwnd_once_per_window() {
    let (net, samples) = marked_transfer(3_000_000, |k| k == 40 || k == 41 || k == 900);
    let server = Ipv4Addr::new(198, 18, 0, 2);
    let cwr: Vec<&Seg> = net
        .from(0)
        .into_iter()
        .filter(|x| x.tcp.flags.contains(CWR))
        .collect();
    assert_eq!(cwr.len(), 2, "one CWR per reduction: {cwr:?}");
    for x in &cwr {
        assert!(is_data(x) && x.ecn == ECT_0, "CWR rides on new data: {x:?}");
    }
    // The echo: two unbroken runs of segments with ECE from the receiver,
    // each lasting until the sender's CWR arrived (10 ms after it left).
    let from_server: Vec<&Seg> = net.log.iter().filter(|x| x.src == server).collect();
    let ece: Vec<bool> = from_server
        .iter()
        .map(|x| x.tcp.flags.contains(ECE))
        .collect();
    assert_eq!(runs(&ece), [false, true, false, true, false]);
    for (i, w) in ece.windows(2).enumerate() {
        if w == [true, false] {
            let cwr_arrives = cwr.iter().map(|x| x.at + Duration::from_millis(10));
            let ends = from_server[i + 1].at;
            assert!(
                cwr_arrives.clone().any(|t| t == ends),
                "an echo ended at {ends:?}, not when a CWR arrived"
            );
        }
    }
    // The sender: Open → CWR → Open twice, ssthresh cut twice.
    assert_eq!(
        runs(&samples.ca_state),
        [CA_OPEN, CA_CWR, CA_OPEN, CA_CWR, CA_OPEN]
    );
    let cuts = runs(&samples.ssthresh);
    assert_eq!(cuts.len(), 3, "ssthresh: {cuts:?}");
    assert_eq!(cuts[0], tcp::TCP_INFINITE_SSTHRESH);
    assert!(cuts[2] < cuts[1], "ssthresh: {cuts:?}");
    assert_eq!(net.mib(0, TcpMib::RetransSegs), 0);
    let ce = net.mib(0, LinuxMib::TcpDeliveredCe);
    assert!(ce > 0 && ce < net.mib(0, LinuxMib::TcpDelivered), "{ce}");
}

/// Without marks the same transfer never leaves Open, and nothing
/// carries ECE or CWR: the reductions above come from the marks.
#[test]
fn without_ce_marks_nothing_is_echoed() {
    let (net, samples) = marked_transfer(3_000_000, |_| false);
    assert_eq!(runs(&samples.ca_state), [CA_OPEN]);
    assert!(net.log.iter().all(|x| !x.tcp.flags.intersects(ECE | CWR)));
    assert_eq!(net.mib(0, LinuxMib::TcpDeliveredCe), 0);
    let d = net.mib(0, LinuxMib::TcpDelivered);
    assert!(d > 1500, "TCPDelivered {d}");
}

/// A loss repaired by fast recovery reduces cwnd too, so the first new
/// data after it carries CWR (`tcp_init_cwnd_reduction()` queues it), as
/// a CE echo would.
#[test]
fn fast_recovery_on_an_ecn_connection_sends_cwr() {
    let mut net = net_with(1, 2);
    net.delay = Duration::from_millis(10);
    let (c, s) = net.connect_pair(80);
    net.log.clear();
    let mut k = 0;
    net.set_drop_filter(move |x| {
        if is_data(x) && x.src == CLIENT {
            k += 1;
            return k == 30;
        }
        false
    });
    transfer(&mut net, 0, &c, &s, 1_000_000);
    assert_eq!(net.mib(0, LinuxMib::TcpSackRecovery), 1);
    let cwr: Vec<&Seg> = net
        .from(0)
        .into_iter()
        .filter(|x| x.tcp.flags.contains(CWR))
        .collect();
    assert_eq!(cwr.len(), 1, "{cwr:?}");
    assert!(is_data(cwr[0]) && cwr[0].ecn == ECT_0);
    // Sent after the retransmission, the one data segment that is not
    // ECN-capable.
    let not_ect: Vec<&Seg> = net
        .from(0)
        .into_iter()
        .filter(|x| is_data(x) && x.ecn == NOT_ECT)
        .collect();
    assert_eq!(not_ect.len(), 1, "{not_ect:?}");
    assert!(cwr[0].at >= not_ect[0].at);
}

/// The first SYN is lost: under `tcp_ecn_fallback` (on by default) the
/// retransmitted SYN no longer asks for ECN, so the connection runs
/// without it; with the fallback off it asks again and gets it.
#[test]
fn a_lost_syn_falls_back_to_no_ecn() {
    for (fallback, ok) in [(1, false), (0, true)] {
        let mut net = net_with(1, 2);
        set(&net, 0, Sysctl::TCP_ECN_FALLBACK, fallback);
        let mut first = true;
        net.set_drop_filter(move |x| {
            let drop = first && x.tcp.flags.contains(SYN);
            first &= !drop;
            drop
        });
        let (c, s) = net.connect_pair(80);
        transfer(&mut net, 0, &c, &s, 10_000);
        let syns: Vec<TcpFlags> = net
            .from(0)
            .into_iter()
            .filter(|x| x.tcp.flags.contains(SYN))
            .map(|x| x.tcp.flags)
            .collect();
        let again = if ok { SYN | ECE | CWR } else { SYN };
        assert_eq!(syns, [SYN | ECE | CWR, again], "fallback={fallback}");
        assert_eq!(info(&net, 0, &c).options & TCPI_OPT_ECN != 0, ok);
        let data_ecn = net
            .from(0)
            .into_iter()
            .filter(|x| is_data(x))
            .map(|x| x.ecn);
        assert!(data_ecn.clone().count() > 0);
        let want = if ok { ECT_0 } else { NOT_ECT };
        assert!(
            data_ecn.into_iter().all(|e| e == want),
            "fallback={fallback}"
        );
    }
}

/// A SYN cookie keeps the ECN a SYN asked for in the timestamp it sends
/// (`TS_OPT_ECN`), so the connection made from the cookie ACK has ECN;
/// without timestamps a cookie cannot keep it and the SYN-ACK does not
/// offer it.
#[test]
fn syn_cookies_keep_ecn_in_the_timestamp() {
    for (timestamps, ok) in [(1, true), (0, false)] {
        let mut net = net_with(1, 2);
        set(&net, 1, Sysctl::TCP_SYNCOOKIES, 2);
        set(&net, 0, Sysctl::TCP_TIMESTAMPS, timestamps);
        let (c, s) = net.connect_pair(80);
        assert_eq!(net.mib(1, LinuxMib::SyncookiesRecv), 1);
        let synack = net.log.iter().find(|x| x.tcp.flags.contains(SYN | ACK));
        assert_eq!(synack.unwrap().tcp.flags.contains(ECE), ok);
        transfer(&mut net, 1, &s, &c, 10_000);
        assert_eq!(info(&net, 1, &s).options & TCPI_OPT_ECN != 0, ok);
        let want = if ok { ECT_0 } else { NOT_ECT };
        let data: Vec<u8> = net
            .from(1)
            .into_iter()
            .filter(|x| is_data(x))
            .map(|x| x.ecn)
            .collect();
        assert!(
            !data.is_empty() && data.iter().all(|&e| e == want),
            "{data:?}"
        );
    }
}

/// Crossed SYNs: when both ask for ECN each side answers with a SYN-ACK
/// that carries ECE and not CWR, and the connection has ECN; when one
/// does not ask, neither SYN-ACK offers it (the one that asked drops ECN
/// on seeing the other's SYN) and no data is ECN-capable.
#[test]
fn simultaneous_open_negotiates_ecn_only_when_both_ask() {
    for (b_ecn, ok) in [(1, true), (0, false)] {
        let mut net = net_with(1, b_ecn);
        let a = net.socket(0);
        let b = net.socket(1);
        for (i, sk, port) in [(0, &a, 1111u16), (1, &b, 2222)] {
            let h = &mut net.hosts[i];
            let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
            h.stack.bind(&mut h.ctx, sk, any).unwrap();
        }
        assert!(net.connect(0, &a, 1, 2222).is_err());
        assert!(net.connect(1, &b, 0, 1111).is_err());
        net.run_for_ms(20);
        assert_eq!(a.state(), TcpState::Established);
        assert_eq!(b.state(), TcpState::Established);
        let synacks: Vec<TcpFlags> = net
            .log
            .iter()
            .filter(|x| x.tcp.flags.contains(SYN | ACK))
            .map(|x| x.tcp.flags)
            .collect();
        let want = if ok { SYN | ACK | ECE } else { SYN | ACK };
        assert_eq!(synacks, [want, want], "b tcp_ecn={b_ecn}");
        transfer(&mut net, 0, &a, &b, 5_000);
        let want = if ok { ECT_0 } else { NOT_ECT };
        assert!(
            net.from(0)
                .into_iter()
                .filter(|x| is_data(x))
                .all(|x| x.ecn == want)
        );
    }
}
