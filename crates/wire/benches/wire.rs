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

const PAGE: usize = 4096;

/// `len` bytes that start on a page boundary, inside an allocation of their
/// own.
///
/// Checksum and memcpy figures use buffers placed this way so that they
/// compare like with like: two `Vec`s of 64 KiB allocated one after the other
/// start 16 bytes apart modulo 4 KiB, and glibc's memcpy (`rep movsb` on this
/// AMD machine) then runs at about 2 GB/s instead of about 40 (see
/// [`bench_memcpy_aliased`]).
struct PageBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
}

impl PageBuf {
    fn new(len: usize, fill: u8) -> Self {
        let storage = vec![fill; len + PAGE];
        let start = storage.as_ptr().align_offset(PAGE);
        Self {
            storage,
            start,
            len,
        }
    }

    fn with_pattern(len: usize) -> Self {
        let mut buf = Self::new(len, 0);
        buf.as_mut_slice().copy_from_slice(&pattern(len));
        buf
    }

    fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

/// Checksums the same page-aligned buffer over and over, so it stays in L1
/// (1500 bytes) or L2 (64 KiB), as the source of [`bench_memcpy`] does.
fn bench_checksum(name: &str, len: usize) {
    let data = PageBuf::with_pattern(len);
    let data = data.as_slice();
    let per = measure(|| ip_compute_csum(black_box(data)));
    report(
        &format!("checksum {name}"),
        per.gbytes_per_second(len),
        "GB/s",
    );
}

/// Copies between the same two page-aligned buffers over and over; both stay
/// in L1 (1500 bytes) or L2 (2 × 64 KiB), like the checksum's source.
fn bench_memcpy(name: &str, len: usize) {
    let src = PageBuf::with_pattern(len);
    let mut dst = PageBuf::new(len, 0);
    let per = measure(|| copy(src.as_slice(), dst.as_mut_slice()));
    report(
        &format!("memcpy {name}"),
        per.gbytes_per_second(len),
        "GB/s",
    );
}

/// Copies 64 KiB to a destination that starts 16 bytes past the source modulo
/// 4 KiB, where two `Vec`s allocated back to back land. Reported separately so
/// the slow case stays visible instead of standing in for memcpy's rate.
fn bench_memcpy_aliased() {
    let len = 64 * 1024;
    let src = PageBuf::with_pattern(len);
    let mut dst = PageBuf::new(len + 16, 0);
    let dst = &mut dst.as_mut_slice()[16..];
    let per = measure(|| copy(src.as_slice(), dst));
    report(
        "memcpy 64KiB dst 16 B past src mod 4 KiB",
        per.gbytes_per_second(len),
        "GB/s",
    );
}

fn copy(src: &[u8], dst: &mut [u8]) -> u8 {
    black_box(&mut *dst).copy_from_slice(black_box(src));
    dst[dst.len() / 2]
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
    bench_memcpy_aliased();
    bench_parse_verify();
}
