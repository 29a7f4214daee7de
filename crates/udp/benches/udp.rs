//! UDP send→receive through the UDP layer between two back-to-back hosts,
//! beside the Linux kernel's UDP over loopback.

use std::net::{Ipv4Addr, SocketAddrV4};

use udp::testutil::FakeUdpHost;
use udp::{UdpSock, inet_bind, udp_recvmsg, udp_sendmsg};

fn main() {
    // Through this crate: udp_sendmsg → fake IP → udp_rcv → queue → udp_recvmsg.
    let (a, b) = FakeUdpHost::pair();
    let (mut ca, mut cb) = (a.ctx(), b.ctx());
    let sa = UdpSock::new(1, &a.sysctl);
    let sb = UdpSock::new(2, &b.sysctl);
    inet_bind(&mut cb, &sb, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000)).unwrap();
    let to = SocketAddrV4::new(b.addr, 5000);
    let payload = [0x5au8; 64];
    let mut buf = [0u8; 2048];
    let ours = benchkit::measure(|| {
        udp_sendmsg(&mut ca, &sa, &payload, Some(to)).unwrap();
        let r = udp_recvmsg(&mut cb, &sb, &mut buf, false, true).unwrap();
        assert_eq!(r.copied, 64);
    })
    .per_second();
    benchkit::report(
        "udp 64B send->recv (udp layer, back to back)",
        ours,
        "datagrams/s",
    );

    // The kernel: two std::net::UdpSockets on 127.0.0.1, one thread.
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.connect(rx.local_addr().unwrap()).unwrap();
    let kernel = benchkit::measure(|| {
        tx.send(&payload).unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(n, 64);
    })
    .per_second();
    benchkit::report("udp kernel loopback", kernel, "datagrams/s");
    benchkit::report("udp ratio netstack/kernel", ours / kernel, "x");
}
