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

use benchkit::{measure, report};
use tcp::MsgFlags;
use tcp::testutil::Net;

fn main() {
    // Bulk transfer.
    let mut net = Net::new(2);
    net.logging = false;
    let (c, s) = net.connect_pair(5001);
    let data = vec![0x5au8; 1 << 20];
    let mut buf = vec![0u8; 1 << 16];
    let t = measure(|| {
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
    report("tcp_bulk_1MiB", t.gbits_per_second(1 << 20), "Gbit/s");

    // Connection setup and teardown.
    let mut net = Net::new(2);
    net.logging = false;
    let l = net.listen(1, 80, 4096);
    let t = measure(|| {
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
    report("tcp_connect_close", t.per_second(), "conn/s");

    // Request/response.
    let mut net = Net::new(2);
    net.logging = false;
    let (c, s) = net.connect_pair(7);
    let req = [1u8; 64];
    let mut b = [0u8; 64];
    let t = measure(|| {
        net.send(0, &c, &req).unwrap();
        while net.recv_flags(1, &s, &mut b, MsgFlags::DONTWAIT).is_err() {
            net.step();
        }
        net.send(1, &s, &b).unwrap();
        while net.recv_flags(0, &c, &mut b, MsgFlags::DONTWAIT).is_err() {
            net.step();
        }
    });
    report("tcp_rr_64B", t.as_nanos_f64() / 1000.0, "us/exchange");
}
