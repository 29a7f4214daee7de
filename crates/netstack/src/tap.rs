//! A TAP device as a NIC's PHY: the padding a real MAC adds, and the
//! virtio-net offloads that let one system call carry a 64 KiB burst.
//!
//! Mirrors what sits between two Ethernet MACs: a transmitting MAC pads a
//! frame to the 60-byte minimum before the FCS (IEEE 802.3 §4.2.3.3), so a
//! receiving NIC never sees a runt from a healthy peer. The kernel's TAP
//! driver hands frames over unpadded (a 42-byte ARP request), which the
//! NIC model would count as undersize (`RUC`) and drop; [`TapPhy`] pads
//! them as the kernel's MAC would have.
//!
//! With a TAP opened with `IFF_VNET_HDR` (and `TUNSETOFFLOAD` asking for
//! `TUN_F_CSUM | TUN_F_TSO4`), every read and write carries a
//! `virtio_net_hdr`:
//!
//! - kernel → host: a frame may have a partial checksum
//!   (`VIRTIO_NET_HDR_F_NEEDS_CSUM`), which [`TapPhy`] finishes as a
//!   NIC's checksum engine would (`skb_checksum_help()`), or be a TCP
//!   super-frame of up to 64 KiB (`VIRTIO_NET_HDR_GSO_TCPV4`), which it
//!   cuts into `gso_size` segments as `tcp_gso_segment()` does, so the NIC
//!   model receives wire-sized frames and the kernel made one write.
//! - host → kernel: consecutive TCP segments of one flow that the NIC
//!   model's TSO engine produced in one burst are merged back into one
//!   super-frame (the merge rules of `tcp_gro_receive()`) and written
//!   with `VIRTIO_NET_HDR_GSO_TCPV4`, so the kernel receives one skb per
//!   burst instead of one write per 1500-byte frame.
//!
//! # Deviations from Linux
//!
//! - A virtio-net device hands the host the guest's GSO skb as it is; here
//!   the igb model's TSO engine has already cut it into frames (the model
//!   is a wire NIC), so the PHY merges them back. The burst ends when the
//!   device stops transmitting (the next receive poll), at 64 KiB, or at
//!   a segment that cannot be merged.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter};
use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::Instant;
use nic_hw::{ETH_FCS_LEN, PhyError, PhyPort, TapDevice, VirtioNetHdr, append_fcs};
use parking_lot::Mutex;
use softnet::PcapWriter;
use wire::{csum_fold, csum_partial, csum_tcpudp_magic, ip_fast_csum};

/// The minimum Ethernet frame without FCS (`ETH_ZLEN`).
pub const ETH_ZLEN: usize = 60;

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// The largest IPv4 datagram, and so the largest merged super-frame.
const IP_MAX_LEN: usize = 65_535;
/// The largest read: a 64 KiB frame plus Ethernet and virtio headers.
const TAP_READ_MAX: usize = 65_536 + ETH_HLEN + VirtioNetHdr::LEN + 64;

/// TCP flags.
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_URG: u8 = 0x20;
const TCP_CWR: u8 = 0x80;

/// What [`TapPhy`] did with the offloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapOffloadStats {
    /// Reads from the TAP that returned a frame.
    pub rx_reads: u64,
    /// Of those, TCP super-frames cut into segments (`tcp_gso_segment`).
    pub rx_gso_frames: u64,
    /// Segments cut from them.
    pub rx_gso_segments: u64,
    /// Frames whose partial checksum was finished.
    pub rx_csum_finished: u64,
    /// Frames from the kernel dropped as malformed (bad virtio header or
    /// headers the offloads cannot handle).
    pub rx_dropped: u64,
    /// Writes to the TAP.
    pub tx_writes: u64,
    /// Of those, merged super-frames (`VIRTIO_NET_HDR_GSO_TCPV4`).
    pub tx_gso_frames: u64,
    /// Segments merged into them.
    pub tx_gso_segments: u64,
}

/// A pcap of the frames crossing a TAP, shared between the PHY that
/// writes it and the owner that flushes it.
pub type TapCapture = Arc<Mutex<PcapWriter<BufWriter<File>>>>;

/// A TCP segment being merged for the kernel: the first segment's frame
/// (no FCS) with later payloads appended.
#[derive(Debug)]
struct TxBatch {
    frame: Vec<u8>,
    /// Ethernet + IP + TCP header bytes.
    hdr_len: usize,
    /// Payload bytes of the first segment (`gso_size`).
    mss: usize,
    segs: u32,
    /// The sequence number the next segment must carry.
    next_seq: u32,
    /// No later segment may join (a short or PSH segment ended it).
    closed: bool,
}

/// A [`TapDevice`] as a PHY port: pads short frames from the kernel and,
/// on a TAP with a virtio header, does the checksum and segmentation
/// offloads.
#[derive(Debug)]
pub struct TapPhy {
    tap: TapDevice,
    buf: Vec<u8>,
    rxq: VecDeque<Vec<u8>>,
    tx: Option<TxBatch>,
    stats: TapOffloadStats,
    capture: Option<TapCapture>,
}

impl TapPhy {
    /// Wraps an open TAP device (open it non-blocking: the device thread
    /// polls it).
    pub fn new(tap: TapDevice) -> TapPhy {
        TapPhy {
            tap,
            buf: vec![0; TAP_READ_MAX],
            rxq: VecDeque::new(),
            tx: None,
            stats: TapOffloadStats::default(),
            capture: None,
        }
    }

    /// Also writes every frame that crosses the TAP to `capture`, as a
    /// capture on the cable would see it: the NIC's frames before they are
    /// merged for the kernel, the kernel's after they are cut and their
    /// checksums finished (no FCS either way).
    pub fn with_capture(mut self, capture: TapCapture) -> TapPhy {
        self.capture = Some(capture);
        self
    }

    fn capture(&self, now: Instant, frame: &[u8]) {
        if let Some(c) = &self.capture {
            // A full disk must not stop the traffic; the capture just ends
            // short, as tcpdump's would.
            let _ = c.lock().write_packet(now, frame);
        }
    }

    /// What the offloads did so far.
    pub fn offload_stats(&self) -> TapOffloadStats {
        self.stats
    }

    /// Writes the batch being merged, if any.
    fn flush_tx(&mut self) -> Result<(), PhyError> {
        let Some(b) = self.tx.take() else {
            return Ok(());
        };
        let r = self.write_batch(b);
        r.map_err(PhyError::from)
    }

    fn write_batch(&mut self, mut b: TxBatch) -> io::Result<()> {
        self.stats.tx_writes += 1;
        if b.segs == 1 {
            return self.write_plain(&b.frame);
        }
        // Fix up the IP header (total length, checksum) and give the TCP
        // checksum field the pseudo-header sum a partial checksum needs.
        let ip = ETH_HLEN;
        let tot = b.frame.len() - ETH_HLEN;
        b.frame[ip + 2..ip + 4].copy_from_slice(&(tot as u16).to_be_bytes());
        b.frame[ip + 10..ip + 12].fill(0);
        let ihl = usize::from(b.frame[ip] & 0xf) * 4;
        let c = ip_fast_csum(&b.frame[ip..ip + ihl]);
        b.frame[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        let (s, d) = addrs(&b.frame[ip..]);
        let tcp = ip + ihl;
        let tcp_len = b.frame.len() - tcp;
        let pseudo = !csum_tcpudp_magic(s, d, tcp_len as u16, IPPROTO_TCP, 0);
        b.frame[tcp + 16..tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
        self.stats.tx_gso_frames += 1;
        self.stats.tx_gso_segments += u64::from(b.segs);
        let hdr = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_TCPV4,
            hdr_len: b.hdr_len as u16,
            gso_size: b.mss as u16,
            csum_start: tcp as u16,
            csum_offset: 16,
        };
        let mut out = Vec::with_capacity(VirtioNetHdr::LEN + b.frame.len());
        out.extend_from_slice(&hdr.to_bytes());
        out.extend_from_slice(&b.frame);
        self.tap.write_raw(&out)
    }

    /// Writes one frame (no FCS) with a zero virtio header if the device
    /// has one.
    fn write_plain(&mut self, frame: &[u8]) -> io::Result<()> {
        if self.tap.has_vnet_hdr() {
            let mut out = Vec::with_capacity(VirtioNetHdr::LEN + frame.len());
            out.extend_from_slice(&VirtioNetHdr::default().to_bytes());
            out.extend_from_slice(frame);
            self.tap.write_raw(&out)
        } else {
            self.tap.write_raw(frame)
        }
    }

    /// Reads one frame from the kernel into the receive queue (several
    /// after segmentation). `Ok(false)` when none is queued.
    fn read_one(&mut self) -> io::Result<bool> {
        let n = match self.tap.read_raw(&mut self.buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        };
        self.stats.rx_reads += 1;
        if !self.tap.has_vnet_hdr() {
            let f = self.buf[..n].to_vec();
            self.rxq.push_back(finish_frame(f));
            return Ok(true);
        }
        let Some(hdr) = VirtioNetHdr::parse(&self.buf[..n]) else {
            self.stats.rx_dropped += 1;
            return Ok(true);
        };
        let mut frame = self.buf[VirtioNetHdr::LEN..n].to_vec();
        match hdr.gso_type & !VirtioNetHdr::GSO_ECN {
            VirtioNetHdr::GSO_NONE => {
                if hdr.flags & VirtioNetHdr::F_NEEDS_CSUM != 0 {
                    if finish_csum(&mut frame, &hdr).is_none() {
                        self.stats.rx_dropped += 1;
                        return Ok(true);
                    }
                    self.stats.rx_csum_finished += 1;
                }
                self.rxq.push_back(finish_frame(frame));
            }
            VirtioNetHdr::GSO_TCPV4 => match tcp_gso_segment(&frame, usize::from(hdr.gso_size)) {
                Some(segs) => {
                    self.stats.rx_gso_frames += 1;
                    self.stats.rx_gso_segments += segs.len() as u64;
                    self.rxq.extend(segs.into_iter().map(finish_frame));
                }
                None => self.stats.rx_dropped += 1,
            },
            _ => self.stats.rx_dropped += 1,
        }
        Ok(true)
    }
}

/// Pads a frame from the kernel to `ETH_ZLEN` and appends its FCS.
fn finish_frame(mut f: Vec<u8>) -> Vec<u8> {
    if f.len() < ETH_ZLEN {
        f.resize(ETH_ZLEN, 0);
    }
    append_fcs(&mut f);
    f
}

fn addrs(ip: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    let a = |i: usize| Ipv4Addr::new(ip[i], ip[i + 1], ip[i + 2], ip[i + 3]);
    (a(12), a(16))
}

/// Finishes a partial checksum: sums from `csum_start` to the end (the
/// field holds the pseudo-header sum) and stores the result. Mirrors
/// `skb_checksum_help()`. `None` when the offsets lie outside the frame.
fn finish_csum(frame: &mut [u8], hdr: &VirtioNetHdr) -> Option<()> {
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    if at + 2 > frame.len() {
        return None;
    }
    let mut c = csum_fold(csum_partial(&frame[start..], 0));
    // A UDP checksum of zero means "none" (RFC 768): send all ones.
    let is_udp = frame.len() > ETH_HLEN + 9
        && u16::from_be_bytes([frame[12], frame[13]]) == ETH_P_IP
        && frame[ETH_HLEN + 9] == IPPROTO_UDP;
    if c == 0 && is_udp {
        c = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Some(())
}

/// The offsets of a plain IPv4/TCP frame: (IP header length, TCP header
/// length), or `None` for anything else (VLAN tags, fragments, other
/// protocols, truncated headers).
fn tcp4_headers(f: &[u8]) -> Option<(usize, usize)> {
    if f.len() < ETH_HLEN + 20 || u16::from_be_bytes([f[12], f[13]]) != ETH_P_IP {
        return None;
    }
    let ip = &f[ETH_HLEN..];
    if ip[0] >> 4 != 4 || ip[9] != IPPROTO_TCP {
        return None;
    }
    let ihl = usize::from(ip[0] & 0xf) * 4;
    let frag = u16::from_be_bytes([ip[6], ip[7]]);
    if ihl < 20 || frag & 0x3fff != 0 || ip.len() < ihl + 20 {
        return None;
    }
    let thl = usize::from(ip[ihl + 12] >> 4) * 4;
    if thl < 20 || ip.len() < ihl + thl {
        return None;
    }
    let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if tot < ihl + thl || tot > ip.len() {
        return None;
    }
    Some((ihl, thl))
}

/// Cuts a TCP/IPv4 super-frame into segments of `mss` payload bytes, each
/// with its own IP length, id and checksum and TCP sequence number and
/// checksum; FIN and PSH stay on the last segment only, CWR on the first.
///
/// Mirrors `tcp_gso_segment()` (`net/ipv4/tcp_offload.c`) over
/// `inet_gso_segment()`. `None` for a frame it cannot cut.
fn tcp_gso_segment(f: &[u8], mss: usize) -> Option<Vec<Vec<u8>>> {
    let (ihl, thl) = tcp4_headers(f)?;
    if mss == 0 {
        return None;
    }
    let hlen = ETH_HLEN + ihl + thl;
    let tot = usize::from(u16::from_be_bytes([f[ETH_HLEN + 2], f[ETH_HLEN + 3]]));
    let end = ETH_HLEN + tot;
    let payload = &f[hlen..end];
    let (s, d) = addrs(&f[ETH_HLEN..]);
    let id0 = u16::from_be_bytes([f[ETH_HLEN + 4], f[ETH_HLEN + 5]]);
    let seq0 = u32::from_be_bytes(f[ETH_HLEN + ihl + 4..ETH_HLEN + ihl + 8].try_into().ok()?);
    let flags = f[ETH_HLEN + ihl + 13];
    let nseg = payload.len().div_ceil(mss).max(1);
    let mut out = Vec::with_capacity(nseg);
    for (i, chunk) in payload.chunks(mss).enumerate() {
        let mut seg = Vec::with_capacity(hlen + chunk.len() + ETH_FCS_LEN);
        seg.extend_from_slice(&f[..hlen]);
        seg.extend_from_slice(chunk);
        let ip = ETH_HLEN;
        seg[ip + 2..ip + 4].copy_from_slice(&((ihl + thl + chunk.len()) as u16).to_be_bytes());
        seg[ip + 4..ip + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
        seg[ip + 10..ip + 12].fill(0);
        let c = ip_fast_csum(&seg[ip..ip + ihl]);
        seg[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        let t = ip + ihl;
        let seq = seq0.wrapping_add((i * mss) as u32);
        seg[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        let mut fl = flags;
        if i + 1 < nseg {
            fl &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            fl &= !TCP_CWR;
        }
        seg[t + 13] = fl;
        seg[t + 16..t + 18].fill(0);
        let sum = csum_partial(&seg[t..], 0);
        let c = csum_tcpudp_magic(s, d, (thl + chunk.len()) as u16, IPPROTO_TCP, sum);
        seg[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        out.push(seg);
    }
    if payload.is_empty() {
        // A super-frame without payload is just its header.
        let mut seg = f[..hlen].to_vec();
        let t = ETH_HLEN + ihl;
        seg[t + 16..t + 18].fill(0);
        let sum = csum_partial(&seg[t..], 0);
        let c = csum_tcpudp_magic(s, d, thl as u16, IPPROTO_TCP, sum);
        seg[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        out.push(seg);
    }
    Some(out)
}

/// Whether `seg` (no FCS) may join `b`: same flow, the next sequence
/// number, the same ACK, window and options, plain ACK (PSH allowed, and
/// it ends the batch), a full-sized batch so far, and room under 64 KiB.
/// Mirrors the checks of `tcp_gro_receive()`.
fn can_merge(b: &TxBatch, seg: &[u8], ihl: usize, thl: usize) -> bool {
    if b.closed || seg.len() < b.hdr_len || b.hdr_len != ETH_HLEN + ihl + thl {
        return false;
    }
    let first = &b.frame;
    let ip = ETH_HLEN;
    let t = ip + ihl;
    // Ethernet addresses, and IP version/ihl/tos; TTL and protocol;
    // addresses.
    if seg[..ETH_HLEN] != first[..ETH_HLEN]
        || seg[ip..ip + 2] != first[ip..ip + 2]
        || seg[ip + 6..ip + 10] != first[ip + 6..ip + 10]
        || seg[ip + 12..ip + 20] != first[ip + 12..ip + 20]
    {
        return false;
    }
    // Ports; ack; header length and flags (PSH may differ); window;
    // urgent pointer; options.
    let flags = seg[t + 13];
    if seg[t..t + 4] != first[t..t + 4]
        || seg[t + 8..t + 13] != first[t + 8..t + 13]
        || (flags & !TCP_PSH) != (first[t + 13] & !TCP_PSH)
        || seg[t + 14..t + 16] != first[t + 14..t + 16]
        || seg[t + 18..t + thl] != first[t + 18..t + thl]
    {
        return false;
    }
    let seq = u32::from_be_bytes([seg[t + 4], seg[t + 5], seg[t + 6], seg[t + 7]]);
    let len = seg.len() - b.hdr_len;
    seq == b.next_seq && len > 0 && len <= b.mss && b.frame.len() - ETH_HLEN + len <= IP_MAX_LEN
}

impl PhyPort for TapPhy {
    fn transmit(&mut self, now: Instant, mut frame: Vec<u8>) -> Result<(), PhyError> {
        let Some(len) = frame.len().checked_sub(ETH_FCS_LEN) else {
            return Err(PhyError::FrameTooShort { len: frame.len() });
        };
        frame.truncate(len);
        self.capture(now, &frame);
        if !self.tap.has_vnet_hdr() {
            self.stats.tx_writes += 1;
            return self.tap.write_raw(&frame).map_err(PhyError::from);
        }
        // A frame the NIC padded carries its IP length; keep the padding
        // out of any merge by trusting only the IP total length.
        let headers = tcp4_headers(&frame).and_then(|(ihl, thl)| {
            let tot = usize::from(u16::from_be_bytes([
                frame[ETH_HLEN + 2],
                frame[ETH_HLEN + 3],
            ]));
            let flags = frame[ETH_HLEN + ihl + 13];
            let plain = flags & (TCP_SYN | TCP_RST | TCP_FIN | TCP_URG) == 0;
            (plain && tot > ihl + thl).then_some((ihl, thl, tot))
        });
        if let Some((ihl, thl, tot)) = headers {
            frame.truncate(ETH_HLEN + tot);
            if let Some(b) = self.tx.as_mut()
                && can_merge(b, &frame, ihl, thl)
            {
                let t = ETH_HLEN + ihl;
                let len = frame.len() - b.hdr_len;
                let psh = frame[t + 13] & TCP_PSH;
                b.frame.extend_from_slice(&frame[b.hdr_len..]);
                b.frame[t + 13] |= psh;
                b.segs += 1;
                b.next_seq = b.next_seq.wrapping_add(len as u32);
                b.closed = psh != 0 || len < b.mss;
                return Ok(());
            }
            self.flush_tx()?;
            let t = ETH_HLEN + ihl;
            let hdr_len = t + thl;
            let mss = frame.len() - hdr_len;
            let seq = u32::from_be_bytes([frame[t + 4], frame[t + 5], frame[t + 6], frame[t + 7]]);
            let closed = frame[t + 13] & TCP_PSH != 0;
            self.tx = Some(TxBatch {
                frame,
                hdr_len,
                mss,
                segs: 1,
                next_seq: seq.wrapping_add(mss as u32),
                closed,
            });
            return Ok(());
        }
        self.flush_tx()?;
        self.stats.tx_writes += 1;
        self.write_plain(&frame).map_err(PhyError::from)
    }

    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        // The device polls its PHY after transmitting: the burst is over.
        self.flush_tx()?;
        if self.rxq.is_empty() {
            self.read_one()?;
        }
        let f = self.rxq.pop_front();
        if let Some(f) = &f {
            self.capture(now, &f[..f.len() - ETH_FCS_LEN]);
        }
        Ok(f)
    }

    fn next_event(&self) -> Option<Instant> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame with `payload`, correct checksums.
    fn tcp_frame(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; ETH_HLEN + 20 + 32];
        f[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        let ip = ETH_HLEN;
        f[ip] = 0x45;
        f[ip + 6] = 0x40;
        f[ip + 8] = 64;
        f[ip + 9] = IPPROTO_TCP;
        f[ip + 12..ip + 16].copy_from_slice(&[198, 18, 0, 1]);
        f[ip + 16..ip + 20].copy_from_slice(&[198, 18, 0, 2]);
        let t = ip + 20;
        f[t..t + 2].copy_from_slice(&80u16.to_be_bytes());
        f[t + 2..t + 4].copy_from_slice(&40000u16.to_be_bytes());
        f[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        f[t + 8..t + 12].copy_from_slice(&7u32.to_be_bytes());
        f[t + 12] = 8 << 4;
        f[t + 13] = flags;
        f[t + 14..t + 16].copy_from_slice(&512u16.to_be_bytes());
        // NOP NOP TS
        f[t + 20..t + 32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 5]);
        f.extend_from_slice(payload);
        let tot = (f.len() - ETH_HLEN) as u16;
        f[ip + 2..ip + 4].copy_from_slice(&tot.to_be_bytes());
        let c = ip_fast_csum(&f[ip..ip + 20]);
        f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        let (s, d) = addrs(&f[ip..]);
        let tl = (f.len() - t) as u16;
        let c = csum_tcpudp_magic(s, d, tl, IPPROTO_TCP, csum_partial(&f[t..], 0));
        f[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn tcp_ok(f: &[u8]) -> bool {
        let (s, d) = addrs(&f[ETH_HLEN..]);
        let t = ETH_HLEN + 20;
        ip_fast_csum(&f[ETH_HLEN..t]) == 0
            && csum_tcpudp_magic(
                s,
                d,
                (f.len() - t) as u16,
                IPPROTO_TCP,
                csum_partial(&f[t..], 0),
            ) == 0
    }

    #[test]
    fn gso_super_frame_is_cut_into_valid_segments() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        let big = tcp_frame(1000, 0x18 | TCP_CWR, &payload);
        let segs = tcp_gso_segment(&big, 1448).unwrap();
        assert_eq!(segs.len(), 3);
        let mut got = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(tcp_ok(s), "segment {i} checksums");
            let t = ETH_HLEN + 20;
            let seq = u32::from_be_bytes(s[t + 4..t + 8].try_into().unwrap());
            assert_eq!(seq, 1000 + (i as u32) * 1448);
            let fl = s[t + 13];
            assert_eq!(fl & TCP_PSH != 0, i == 2, "PSH on the last only");
            assert_eq!(fl & TCP_CWR != 0, i == 0, "CWR on the first only");
            got.extend_from_slice(&s[t + 32..]);
        }
        assert_eq!(got, payload);
        // A frame that is not TCP/IPv4 is refused, not cut.
        let mut udp = big.clone();
        udp[ETH_HLEN + 9] = IPPROTO_UDP;
        assert!(tcp_gso_segment(&udp, 1448).is_none());
        assert!(tcp_gso_segment(&big[..30], 1448).is_none());
    }

    #[test]
    fn partial_checksum_is_finished() {
        let mut f = tcp_frame(1, 0x10, b"hello world");
        let t = ETH_HLEN + 20;
        let (s, d) = addrs(&f[ETH_HLEN..]);
        let pseudo = !csum_tcpudp_magic(s, d, (f.len() - t) as u16, IPPROTO_TCP, 0);
        f[t + 16..t + 18].copy_from_slice(&pseudo.to_be_bytes());
        assert!(!tcp_ok(&f));
        let hdr = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            csum_start: t as u16,
            csum_offset: 16,
            ..VirtioNetHdr::default()
        };
        finish_csum(&mut f, &hdr).unwrap();
        assert!(tcp_ok(&f));
        let bad = VirtioNetHdr {
            csum_start: 5000,
            ..hdr
        };
        assert!(finish_csum(&mut f, &bad).is_none());
    }

    #[test]
    fn merge_takes_contiguous_segments_of_one_flow_only() {
        let a = tcp_frame(100, 0x10, &[1; 1000]);
        let (ihl, thl) = tcp4_headers(&a).unwrap();
        let b = TxBatch {
            hdr_len: a.len() - 1000,
            mss: 1000,
            segs: 1,
            next_seq: 1100,
            closed: false,
            frame: a,
        };
        assert!(can_merge(&b, &tcp_frame(1100, 0x10, &[2; 1000]), ihl, thl));
        assert!(can_merge(&b, &tcp_frame(1100, 0x18, &[2; 10]), ihl, thl));
        assert!(
            !can_merge(&b, &tcp_frame(1200, 0x10, &[2; 1000]), ihl, thl),
            "gap"
        );
        assert!(
            !can_merge(&b, &tcp_frame(1100, 0x10, &[2; 1001]), ihl, thl),
            "over mss"
        );
        assert!(
            !can_merge(&b, &tcp_frame(1100, 0x11, &[2; 100]), ihl, thl),
            "FIN"
        );
        let mut other = tcp_frame(1100, 0x10, &[2; 1000]);
        other[ETH_HLEN + 20 + 1] ^= 1;
        assert!(!can_merge(&b, &other, ihl, thl), "other port");
    }
}
