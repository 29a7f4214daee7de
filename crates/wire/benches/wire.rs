//! Benchmarks of the wire formats: the Internet checksum against a memcpy of
//! the same size, and parsing plus verifying an Ethernet/IPv4/TCP frame.

use core::net::Ipv4Addr;

use benchkit::{black_box, measure, report};
use wire::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
    TcpFlags, TcpOptions, TcpPacket, TcpRepr, csum_partial, ip_compute_csum,
};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + 7) as u8).collect()
}

fn bench_checksum(name: &str, len: usize) {
    let data = pattern(len);
    let per = measure(|| ip_compute_csum(black_box(&data)));
    report(
        &format!("checksum {name}"),
        per.gbytes_per_second(len),
        "GB/s",
    );
}

fn bench_memcpy(name: &str, len: usize) {
    let src = pattern(len);
    let mut dst = vec![0u8; len];
    let per = measure(|| {
        black_box(&mut dst[..]).copy_from_slice(black_box(&src[..]));
        dst[len / 2]
    });
    report(
        &format!("memcpy {name}"),
        per.gbytes_per_second(len),
        "GB/s",
    );
}

fn tcp_frame(frame_len: usize) -> (Vec<u8>, Ipv4Addr, Ipv4Addr) {
    let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        vlan: None,
        ethertype: EtherType::Ipv4,
    };
    let mut tcp = TcpRepr {
        src_port: 40000,
        dst_port: 5201,
        seq: 1,
        ack: 1,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 512,
        urgent: 0,
        options: TcpOptions {
            timestamp: Some((1, 2)),
            ..TcpOptions::default()
        },
        payload_len: 0,
    };
    tcp.payload_len = frame_len - 14 - 20 - tcp.header_len();
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
        payload_len: tcp.buffer_len(),
    };
    let mut buf = pattern(frame_len);
    eth.emit(&mut buf).expect("ethernet header fits");
    ip.emit(&mut buf[14..]).expect("ipv4 header fits");
    tcp.emit(&mut buf[34..], src, dst)
        .expect("tcp segment fits");
    (buf, src, dst)
}

fn bench_parse_verify() {
    let (frame, _, _) = tcp_frame(1500 + 14);
    let per = measure(|| {
        let f = black_box(&frame[..]);
        let eth = EthernetFrame::new_checked(f).ok()?;
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        if !ip.verify_checksum() {
            return None;
        }
        let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
        if !tcp.verify_checksum(ip.src_addr(), ip.dst_addr()) {
            return None;
        }
        Some(tcp.seq_number())
    });
    report("parse+verify eth/ipv4/tcp 1500B", per.as_nanos_f64(), "ns");
}

fn main() {
    // Keep the symbol used so the partial-sum entry point is measured too.
    black_box(csum_partial(&[1, 2, 3], 0));
    bench_checksum("1500B", 1500);
    bench_memcpy("1500B", 1500);
    bench_checksum("64KiB", 64 * 1024);
    bench_memcpy("64KiB", 64 * 1024);
    bench_parse_verify();
}
