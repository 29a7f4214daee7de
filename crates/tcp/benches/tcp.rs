//! TCP's cost in host time, through the fake back-to-back network of
//! `tcp::testutil` (virtual time, no IP layer):
//!
//! - `tcp_bulk_1MiB`: a 1 MiB transfer, both ends (sendmsg, segment
//!   building and checksums, `tcp_v4_rcv`, ACK processing, recvmsg);
//!   reported as Gbit/s of payload.
//! - `tcp_connect_close`: a full handshake and orderly close (7 segments,
//!   TIME-WAIT creation) per iteration, as connections per second.
//! - `tcp_rr_64B`: a 64-byte request and 64-byte response on an
//!   established connection (four segments with the ACKs), per exchange.
//!
//! For an instruction count (`valgrind --tool=callgrind`), the environment
//! picks the workloads (`TCP_BENCH=bulk,connect_close,rr`) and runs each
//! `TCP_BENCH_ITERS` times untimed, printing no figure: the cost of one
//! iteration is the difference of two runs' totals (n and 2n iterations)
//! divided by n, which leaves the set-up out.

use benchkit::{PerIter, black_box, measure, report};
use tcp::MsgFlags;
use tcp::testutil::Net;

/// Times `f` with [`measure`], or with `TCP_BENCH_ITERS` set runs it that
/// many times and returns `None`.
fn run<R>(mut f: impl FnMut() -> R) -> Option<PerIter> {
    let iters = std::env::var("TCP_BENCH_ITERS").ok();
    match iters.and_then(|n| n.parse::<u64>().ok()) {
        Some(n) => {
            for _ in 0..n {
                black_box(f());
            }
            None
        }
        None => Some(measure(f)),
    }
}

/// Whether `TCP_BENCH` (comma-separated; unset = all) names `workload`.
fn wanted(workload: &str) -> bool {
    std::env::var("TCP_BENCH").map_or(true, |v| v.split(',').any(|w| w == workload))
}

fn main() {
    if wanted("bulk") {
        bulk();
    }
    if wanted("connect_close") {
        connect_close();
    }
    if wanted("rr") {
        rr();
    }
}

fn bulk() {
    let mut net = Net::new(2);
    net.logging = false;
    let (c, s) = net.connect_pair(5001);
    let data = vec![0x5au8; 1 << 20];
    let mut buf = vec![0u8; 1 << 16];
    let t = run(|| {
        let mut sent = 0;
        let mut got = 0;
        while got < data.len() {
            if sent < data.len()
                && let Ok(k) = net.send(0, &c, &data[sent..])
            {
                sent += k;
            }
            while let Ok(k) = net.recv(1, &s, &mut buf) {
                got += k;
            }
            if !net.step() {
                break;
            }
        }
        got
    });
    if let Some(t) = t {
        report("tcp_bulk_1MiB", t.gbits_per_second(1 << 20), "Gbit/s");
    }
}

fn connect_close() {
    let mut net = Net::new(2);
    net.logging = false;
    let l = net.listen(1, 80, 4096);
    let t = run(|| {
        let c = net.socket(0);
        let _ = net.connect(0, &c, 1, 80);
        while net.step()
            && net.hosts[1]
                .stack
                .accept(&l)
                .map(|s| net.close(1, &s))
                .is_err()
        {}
        net.close(0, &c);
        for _ in 0..8 {
            net.step();
        }
    });
    if let Some(t) = t {
        report("tcp_connect_close", t.per_second(), "conn/s");
    }
}

fn rr() {
    let mut net = Net::new(2);
    net.logging = false;
    let (c, s) = net.connect_pair(7);
    let req = [1u8; 64];
    let mut b = [0u8; 64];
    let t = run(|| {
        net.send(0, &c, &req).unwrap();
        while net.recv_flags(1, &s, &mut b, MsgFlags::DONTWAIT).is_err() {
            net.step();
        }
        net.send(1, &s, &b).unwrap();
        while net.recv_flags(0, &c, &mut b, MsgFlags::DONTWAIT).is_err() {
            net.step();
        }
    });
    if let Some(t) = t {
        report("tcp_rr_64B", t.as_nanos_f64() / 1000.0, "us/exchange");
    }
}
