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
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use netcore::{
    Clock, DevAddr, Errno, Instant, IpSummed, MtuError, NetDevice, NetDeviceFlags, NetdevFeatures,
    NetdevTx, NetdevTxQueues, PagePool, RtnlLinkStats64, RxMode, SkBuff, SkbGsoType,
};
use nic_hw::{ETH_FCS_LEN, PhyError, PhyPort, TapDevice, VirtioNetHdr, append_fcs};
use parking_lot::Mutex;
use softnet::{NetDev, PcapWriter};

use crate::host::HostShared;
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

/// The most parts `TapDevice::write_vnet_parts` takes: the headers, the
/// rest of an skb's head, and its fragments (a GSO skb with more is
/// copied into one buffer first).
const TAP_MAX_PARTS: usize = 64;

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

/// The live counters behind [`TapOffloadStats`]: the PHY (on the device
/// thread) adds, anyone holding a [`TapOffloadHandle`] reads.
#[derive(Debug, Default)]
struct TapOffloadCounters {
    rx_reads: AtomicU64,
    rx_gso_frames: AtomicU64,
    rx_gso_segments: AtomicU64,
    rx_csum_finished: AtomicU64,
    rx_dropped: AtomicU64,
    tx_writes: AtomicU64,
    tx_gso_frames: AtomicU64,
    tx_gso_segments: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// A reader of a [`TapPhy`]'s offload counters that stays valid after the
/// PHY was handed to a NIC (the NIC model owns its PHY).
#[derive(Clone, Debug)]
pub(crate) struct TapOffloadHandle(Arc<TapOffloadCounters>);

impl TapOffloadHandle {
    /// What the offloads did so far.
    pub(crate) fn snapshot(&self) -> TapOffloadStats {
        let c = &*self.0;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TapOffloadStats {
            rx_reads: g(&c.rx_reads),
            rx_gso_frames: g(&c.rx_gso_frames),
            rx_gso_segments: g(&c.rx_gso_segments),
            rx_csum_finished: g(&c.rx_csum_finished),
            rx_dropped: g(&c.rx_dropped),
            tx_writes: g(&c.tx_writes),
            tx_gso_frames: g(&c.tx_gso_frames),
            tx_gso_segments: g(&c.tx_gso_segments),
        }
    }
}

/// A pcap of the frames crossing a TAP, shared between the PHY that
/// writes it and the owner that flushes it.
pub type TapCapture = Arc<Mutex<PcapWriter<BufWriter<File>>>>;

/// A TCP segment being merged for the kernel: the first segment's frame
/// (no FCS) with later payloads appended. Its buffer is kept between
/// batches, so merging allocates nothing once it has grown.
#[derive(Debug, Default)]
struct TxBatch {
    frame: Vec<u8>,
    /// Whether `frame` holds a batch to write.
    active: bool,
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

/// A TCP/IPv4 super-frame from the kernel being cut into `mss`-sized
/// segments, one per [`next_into`](GsoSegments::next_into) call.
///
/// Mirrors `tcp_gso_segment()` (`net/ipv4/tcp_offload.c`) over
/// `inet_gso_segment()`: each segment gets its own IP total length, id
/// and header checksum, its own sequence number and TCP checksum; FIN
/// and PSH stay on the last segment only, CWR on the first.
#[derive(Debug, Default)]
struct GsoSegments {
    /// The super-frame (no virtio header, no FCS).
    frame: Vec<u8>,
    ihl: usize,
    thl: usize,
    mss: usize,
    /// Where the payload ends (the IP total length past Ethernet).
    end: usize,
    /// Segments cut so far, and how many there are.
    next: usize,
    count: usize,
}

impl GsoSegments {
    /// Takes `frame` to cut, or `None` (leaving nothing queued) when it
    /// is not a plain TCP/IPv4 frame or `mss` is zero.
    fn start(&mut self, mss: usize) -> Option<usize> {
        self.next = 0;
        self.count = 0;
        let (ihl, thl) = tcp4_headers(&self.frame)?;
        if mss == 0 {
            return None;
        }
        let tot = usize::from(u16::from_be_bytes([
            self.frame[ETH_HLEN + 2],
            self.frame[ETH_HLEN + 3],
        ]));
        let hlen = ETH_HLEN + ihl + thl;
        self.ihl = ihl;
        self.thl = thl;
        self.mss = mss;
        self.end = ETH_HLEN + tot;
        // A super-frame without payload is just its header.
        self.count = (self.end - hlen).div_ceil(mss).max(1);
        Some(self.count)
    }

    /// Whether segments are left to cut.
    fn pending(&self) -> bool {
        self.next < self.count
    }

    /// Cuts the next segment into `out` (replacing its contents);
    /// `false` when none is left.
    fn next_into(&mut self, out: &mut Vec<u8>) -> bool {
        if !self.pending() {
            return false;
        }
        let (i, ihl, thl, mss) = (self.next, self.ihl, self.thl, self.mss);
        self.next += 1;
        let f = &self.frame;
        let hlen = ETH_HLEN + ihl + thl;
        let from = (hlen + i * mss).min(self.end);
        let to = (from + mss).min(self.end);
        let chunk = &f[from..to];
        out.clear();
        out.reserve(hlen + chunk.len() + ETH_FCS_LEN);
        out.extend_from_slice(&f[..hlen]);
        out.extend_from_slice(chunk);
        let ip = ETH_HLEN;
        let id0 = u16::from_be_bytes([f[ip + 4], f[ip + 5]]);
        out[ip + 2..ip + 4].copy_from_slice(&((ihl + thl + chunk.len()) as u16).to_be_bytes());
        out[ip + 4..ip + 6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
        out[ip + 10..ip + 12].fill(0);
        let c = ip_fast_csum(&out[ip..ip + ihl]);
        out[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        let t = ip + ihl;
        let seq0 = u32::from_be_bytes([f[t + 4], f[t + 5], f[t + 6], f[t + 7]]);
        let seq = seq0.wrapping_add((i * mss) as u32);
        out[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        let mut fl = f[t + 13];
        if i + 1 < self.count {
            fl &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            fl &= !TCP_CWR;
        }
        out[t + 13] = fl;
        out[t + 16..t + 18].fill(0);
        let (s, d) = addrs(&out[ip..]);
        let sum = csum_partial(&out[t..], 0);
        let c = csum_tcpudp_magic(s, d, (thl + chunk.len()) as u16, IPPROTO_TCP, sum);
        out[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
        true
    }
}

/// A [`TapDevice`] as a PHY port: pads short frames from the kernel and,
/// on a TAP with a virtio header, does the checksum and segmentation
/// offloads.
///
/// Frames cross without a copy or an allocation of their own in the
/// steady state: the NIC's frames are merged from the slices it hands
/// over into one kept buffer and written with `writev` behind their
/// virtio header; the kernel's are read into one kept buffer and cut or
/// finished straight into the NIC's receive buffer.
#[derive(Debug)]
pub struct TapPhy {
    tap: TapDevice,
    /// The last read: the virtio header and the frame.
    buf: Vec<u8>,
    /// A super-frame from the kernel being cut.
    rx_gso: GsoSegments,
    tx: TxBatch,
    stats: Arc<TapOffloadCounters>,
    capture: Option<TapCapture>,
    /// Scratch for headers and linear copies ([`TapPhy::xmit_skb`]).
    scratch: Vec<u8>,
    /// Scratch for segments cut for the capture.
    rx_seg: Vec<u8>,
}

impl TapPhy {
    /// Wraps an open TAP device (open it non-blocking: the device thread
    /// polls it).
    pub fn new(tap: TapDevice) -> TapPhy {
        TapPhy {
            tap,
            buf: vec![0; TAP_READ_MAX],
            rx_gso: GsoSegments::default(),
            tx: TxBatch::default(),
            stats: Arc::default(),
            capture: None,
            scratch: Vec::new(),
            rx_seg: Vec::new(),
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
        self.offload_handle().snapshot()
    }

    /// A handle that reads the offload counters after the PHY was given
    /// away.
    pub(crate) fn offload_handle(&self) -> TapOffloadHandle {
        TapOffloadHandle(Arc::clone(&self.stats))
    }

    /// Writes the batch being merged, if any.
    fn flush_tx(&mut self) -> Result<(), PhyError> {
        if !self.tx.active {
            return Ok(());
        }
        self.tx.active = false;
        bump(&self.stats.tx_writes, 1);
        let b = &mut self.tx;
        if b.segs == 1 {
            let r = self.tap.write_vnet(VirtioNetHdr::default(), &b.frame);
            return r.map_err(PhyError::from);
        }
        // Fix up the IP header (total length, checksum) and give the TCP
        // checksum field the pseudo-header sum a partial checksum needs.
        let f = &mut b.frame;
        let ip = ETH_HLEN;
        let tot = f.len() - ETH_HLEN;
        f[ip + 2..ip + 4].copy_from_slice(&(tot as u16).to_be_bytes());
        f[ip + 10..ip + 12].fill(0);
        let ihl = usize::from(f[ip] & 0xf) * 4;
        let c = ip_fast_csum(&f[ip..ip + ihl]);
        f[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        let (s, d) = addrs(&f[ip..]);
        let tcp = ip + ihl;
        let tcp_len = f.len() - tcp;
        let pseudo = !csum_tcpudp_magic(s, d, tcp_len as u16, IPPROTO_TCP, 0);
        f[tcp + 16..tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
        bump(&self.stats.tx_gso_frames, 1);
        bump(&self.stats.tx_gso_segments, u64::from(b.segs));
        let hdr = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_TCPV4,
            hdr_len: b.hdr_len as u16,
            gso_size: b.mss as u16,
            csum_start: tcp as u16,
            csum_offset: 16,
        };
        self.tap.write_vnet(hdr, f).map_err(PhyError::from)
    }

    /// Reads one frame from the kernel into `out` (FCS appended), or
    /// starts cutting a super-frame and puts its first segment there.
    /// `Ok(false)` when nothing is queued.
    fn read_one(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        loop {
            let n = match self.tap.read_raw(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            bump(&self.stats.rx_reads, 1);
            if !self.tap.has_vnet_hdr() {
                out.clear();
                out.extend_from_slice(&self.buf[..n]);
                finish_frame(out);
                return Ok(true);
            }
            let Some(hdr) = VirtioNetHdr::parse(&self.buf[..n]) else {
                bump(&self.stats.rx_dropped, 1);
                continue;
            };
            let frame = &self.buf[VirtioNetHdr::LEN..n];
            match hdr.gso_type & !VirtioNetHdr::GSO_ECN {
                VirtioNetHdr::GSO_NONE => {
                    out.clear();
                    out.extend_from_slice(frame);
                    if hdr.flags & VirtioNetHdr::F_NEEDS_CSUM != 0 {
                        if finish_csum(out, &hdr).is_none() {
                            bump(&self.stats.rx_dropped, 1);
                            continue;
                        }
                        bump(&self.stats.rx_csum_finished, 1);
                    }
                    finish_frame(out);
                    return Ok(true);
                }
                VirtioNetHdr::GSO_TCPV4 => {
                    self.rx_gso.frame.clear();
                    self.rx_gso.frame.extend_from_slice(frame);
                    let Some(count) = self.rx_gso.start(usize::from(hdr.gso_size)) else {
                        bump(&self.stats.rx_dropped, 1);
                        continue;
                    };
                    bump(&self.stats.rx_gso_frames, 1);
                    bump(&self.stats.rx_gso_segments, count as u64);
                    self.rx_gso.next_into(out);
                    finish_frame(out);
                    return Ok(true);
                }
                _ => bump(&self.stats.rx_dropped, 1),
            }
        }
    }

    /// Takes one frame (no FCS) from the NIC: merges it into the batch,
    /// or writes it.
    fn transmit_frame(&mut self, frame: &[u8]) -> Result<(), PhyError> {
        if !self.tap.has_vnet_hdr() {
            bump(&self.stats.tx_writes, 1);
            return self.tap.write_raw(frame).map_err(PhyError::from);
        }
        // A frame the NIC padded carries its IP length; keep the padding
        // out of any merge by trusting only the IP total length.
        let headers = tcp4_headers(frame).and_then(|(ihl, thl)| {
            let tot = usize::from(u16::from_be_bytes([
                frame[ETH_HLEN + 2],
                frame[ETH_HLEN + 3],
            ]));
            let flags = frame[ETH_HLEN + ihl + 13];
            let plain = flags & (TCP_SYN | TCP_RST | TCP_FIN | TCP_URG) == 0;
            (plain && tot > ihl + thl).then_some((ihl, thl, tot))
        });
        let Some((ihl, thl, tot)) = headers else {
            self.flush_tx()?;
            bump(&self.stats.tx_writes, 1);
            let r = self.tap.write_vnet(VirtioNetHdr::default(), frame);
            return r.map_err(PhyError::from);
        };
        let frame = &frame[..ETH_HLEN + tot];
        let t = ETH_HLEN + ihl;
        if can_merge(&self.tx, frame, ihl, thl) {
            let b = &mut self.tx;
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
        let hdr_len = t + thl;
        let mss = frame.len() - hdr_len;
        let seq = u32::from_be_bytes([frame[t + 4], frame[t + 5], frame[t + 6], frame[t + 7]]);
        let b = &mut self.tx;
        b.frame.clear();
        b.frame.extend_from_slice(frame);
        b.active = true;
        b.hdr_len = hdr_len;
        b.mss = mss;
        b.segs = 1;
        b.next_seq = seq.wrapping_add(mss as u32);
        b.closed = frame[t + 13] & TCP_PSH != 0;
        Ok(())
    }
}

impl TapPhy {
    /// Sends one skb from the TAP net device ([`TapNetdev`]): a GSO skb
    /// crosses whole in one `writev` (head and fragments from their own
    /// buffers behind a `VIRTIO_NET_HDR_GSO_TCPV4` header with a partial
    /// checksum); any other frame goes through the merge of
    /// [`PhyPort::transmit_slice`] (one write per burst of one flow).
    ///
    /// Mirrors `start_xmit()` → `xmit_skb()` of `drivers/net/virtio_net.c`
    /// (`virtio_net_hdr_from_skb()`) as `vhost-net`'s `handle_tx()` hands
    /// it to `tun`.
    fn xmit_skb(&mut self, now: Instant, skb: &SkBuff) -> Result<(), PhyError> {
        let head = skb.data();
        if skb.is_gso() && self.tap.has_vnet_hdr() {
            return self.xmit_gso(now, skb);
        }
        if skb.is_nonlinear() || matches!(skb.ip_summed, IpSummed::Partial { .. }) {
            // Rare here (TCP fills its checksums, and only GSO skbs carry
            // fragments): make a linear, finished copy.
            self.scratch.clear();
            self.scratch.extend_from_slice(head);
            for f in skb.frags() {
                self.scratch.extend_from_slice(f);
            }
            if let IpSummed::Partial {
                csum_start,
                csum_offset,
            } = skb.ip_summed
            {
                let hdr = VirtioNetHdr {
                    csum_start: csum_start.saturating_sub(skb.headroom() as u16),
                    csum_offset,
                    ..VirtioNetHdr::default()
                };
                let mut f = std::mem::take(&mut self.scratch);
                let done = finish_csum(&mut f, &hdr);
                self.scratch = f;
                if done.is_none() {
                    return Err(PhyError::FrameTooShort { len: skb.len() });
                }
            }
            let f = std::mem::take(&mut self.scratch);
            self.capture(now, &f);
            let r = self.transmit_frame(&f);
            self.scratch = f;
            return r;
        }
        self.capture(now, head);
        self.transmit_frame(head)
    }

    /// Writes a TCP/IPv4 GSO skb whole: its headers (copied, so a clone
    /// TCP keeps for retransmission is not touched) with the IP length
    /// and checksum of the whole and the pseudo-header sum in the TCP
    /// checksum field, then the rest of the head and every fragment.
    fn xmit_gso(&mut self, now: Instant, skb: &SkBuff) -> Result<(), PhyError> {
        self.flush_tx()?;
        let head = skb.data();
        let Some((ihl, thl)) = tcp4_header_lens(head) else {
            return Err(PhyError::FrameTooShort { len: skb.len() });
        };
        let hlen = ETH_HLEN + ihl + thl;
        let total = skb.len();
        if total - ETH_HLEN > IP_MAX_LEN {
            return Err(PhyError::FrameTooShort { len: total });
        }
        let mut h = std::mem::take(&mut self.scratch);
        h.clear();
        h.extend_from_slice(&head[..hlen]);
        let ip = ETH_HLEN;
        h[ip + 2..ip + 4].copy_from_slice(&((total - ETH_HLEN) as u16).to_be_bytes());
        h[ip + 10..ip + 12].fill(0);
        let c = ip_fast_csum(&h[ip..ip + ihl]);
        h[ip + 10..ip + 12].copy_from_slice(&c.to_be_bytes());
        let (s, d) = addrs(&h[ip..]);
        let t = ip + ihl;
        let pseudo = !csum_tcpudp_magic(s, d, (total - t) as u16, IPPROTO_TCP, 0);
        h[t + 16..t + 18].copy_from_slice(&pseudo.to_be_bytes());
        let mut gso_type = VirtioNetHdr::GSO_TCPV4;
        if skb.gso_type.contains(SkbGsoType::TCP_ECN) {
            gso_type |= VirtioNetHdr::GSO_ECN;
        }
        let hdr = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type,
            hdr_len: hlen as u16,
            gso_size: skb.gso_size,
            csum_start: t as u16,
            csum_offset: 16,
        };
        let mut parts: [&[u8]; TAP_MAX_PARTS] = [&[]; TAP_MAX_PARTS];
        parts[0] = &h;
        let mut linear = std::mem::take(&mut self.rx_seg);
        let mut n = 2;
        if skb.nr_frags() + 2 <= TAP_MAX_PARTS {
            parts[1] = &head[hlen..];
            for f in skb.frags() {
                parts[n] = f;
                n += 1;
            }
        } else {
            // More fragments than one writev takes here: gather them.
            linear.clear();
            linear.extend_from_slice(&head[hlen..]);
            for f in skb.frags() {
                linear.extend_from_slice(f);
            }
            parts[1] = &linear;
        }
        bump(&self.stats.tx_writes, 1);
        bump(&self.stats.tx_gso_frames, 1);
        bump(&self.stats.tx_gso_segments, u64::from(skb.gso_segs.max(1)));
        let r = self
            .tap
            .write_vnet_parts(hdr, &parts[..n])
            .map_err(PhyError::from);
        self.rx_seg = linear;
        if self.capture.is_some() {
            // The cable would carry the segments: cut a linear copy.
            let mut seg = std::mem::take(&mut self.rx_seg);
            let mut g = GsoSegments::default();
            g.frame.extend_from_slice(&h);
            g.frame.extend_from_slice(&head[hlen..]);
            for f in skb.frags() {
                g.frame.extend_from_slice(f);
            }
            if g.start(usize::from(skb.gso_size)).is_some() {
                while g.next_into(&mut seg) {
                    self.capture(now, &seg);
                }
            }
            self.rx_seg = seg;
        }
        self.scratch = h;
        r
    }

    /// Reads one frame from the kernel into a new skb of `pool`, or
    /// `Ok(None)` when none is queued. A TCP super-frame stays whole: the
    /// skb carries its `gso_size`, `gso_segs` and `SKB_GSO_TCPV4`, as a
    /// GRO-merged skb would; a frame with `VIRTIO_NET_HDR_F_NEEDS_CSUM`
    /// or `F_DATA_VALID` is marked `CHECKSUM_UNNECESSARY` (it comes from
    /// the kernel's own memory, not a wire).
    ///
    /// Mirrors `receive_buf()` → `virtio_net_hdr_to_skb()` of
    /// `drivers/net/virtio_net.c`.
    fn receive_skb(&mut self, now: Instant, pool: &PagePool) -> io::Result<Option<SkBuff>> {
        loop {
            let n = match self.tap.read_raw(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            };
            bump(&self.stats.rx_reads, 1);
            let (hdr, off) = if self.tap.has_vnet_hdr() {
                let Some(h) = VirtioNetHdr::parse(&self.buf[..n]) else {
                    bump(&self.stats.rx_dropped, 1);
                    continue;
                };
                (h, VirtioNetHdr::LEN)
            } else {
                (VirtioNetHdr::default(), 0)
            };
            let frame = &self.buf[off..n];
            if frame.len() < ETH_HLEN {
                bump(&self.stats.rx_dropped, 1);
                continue;
            }
            let gso = hdr.gso_type & !VirtioNetHdr::GSO_ECN;
            let mut skb = match gso {
                VirtioNetHdr::GSO_NONE => SkBuff::netdev_alloc(pool, frame.len()),
                VirtioNetHdr::GSO_TCPV4 if tcp4_headers(frame).is_some() && hdr.gso_size > 0 => {
                    SkBuff::netdev_alloc(pool, frame.len())
                }
                _ => {
                    bump(&self.stats.rx_dropped, 1);
                    continue;
                }
            }
            .map_err(|e| io::Error::other(format!("TAP receive: {e}")))?;
            skb.put_data(frame)
                .map_err(|e| io::Error::other(format!("TAP receive: {e}")))?;
            if hdr.flags & (VirtioNetHdr::F_NEEDS_CSUM | VirtioNetHdr::F_DATA_VALID) != 0 {
                skb.ip_summed = IpSummed::Unnecessary;
                if hdr.flags & VirtioNetHdr::F_NEEDS_CSUM != 0 {
                    bump(&self.stats.rx_csum_finished, 1);
                }
            }
            if gso == VirtioNetHdr::GSO_TCPV4 {
                let mss = usize::from(hdr.gso_size);
                let (ihl, thl) = tcp4_headers(frame).unwrap_or((20, 20));
                let payload = frame.len().saturating_sub(ETH_HLEN + ihl + thl);
                let segs = payload.div_ceil(mss).max(1);
                skb.gso_size = hdr.gso_size;
                skb.gso_segs = u16::try_from(segs).unwrap_or(u16::MAX);
                skb.gso_type = SkbGsoType::TCPV4;
                if hdr.gso_type & VirtioNetHdr::GSO_ECN != 0 {
                    skb.gso_type |= SkbGsoType::TCP_ECN;
                }
                bump(&self.stats.rx_gso_frames, 1);
                bump(&self.stats.rx_gso_segments, segs as u64);
            }
            if self.capture.is_some() {
                self.capture_rx(now, &hdr, off, n);
            }
            return Ok(Some(skb));
        }
    }

    /// Captures a frame read into `buf[off..n]` as the cable would carry
    /// it: checksums finished, a super-frame cut into its segments.
    fn capture_rx(&mut self, now: Instant, hdr: &VirtioNetHdr, off: usize, n: usize) {
        let mut seg = std::mem::take(&mut self.rx_seg);
        if hdr.gso_type & !VirtioNetHdr::GSO_ECN == VirtioNetHdr::GSO_TCPV4 {
            let mut g = GsoSegments::default();
            g.frame.extend_from_slice(&self.buf[off..n]);
            if g.start(usize::from(hdr.gso_size)).is_some() {
                while g.next_into(&mut seg) {
                    self.capture(now, &seg);
                }
            }
        } else {
            seg.clear();
            seg.extend_from_slice(&self.buf[off..n]);
            if hdr.flags & VirtioNetHdr::F_NEEDS_CSUM != 0 {
                let _ = finish_csum(&mut seg, hdr);
            }
            self.capture(now, &seg);
        }
        self.rx_seg = seg;
    }
}

/// Pads a frame from the kernel to `ETH_ZLEN` and appends its FCS.
fn finish_frame(f: &mut Vec<u8>) {
    if f.len() < ETH_ZLEN {
        f.resize(ETH_ZLEN, 0);
    }
    append_fcs(f);
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
    let (ihl, thl) = tcp4_header_lens(f)?;
    let ip = &f[ETH_HLEN..];
    let tot = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if tot < ihl + thl || tot > ip.len() {
        return None;
    }
    Some((ihl, thl))
}

/// Like [`tcp4_headers`] for an skb's linear head, which may hold only
/// the headers of a longer datagram (the payload in fragments): the IP
/// total length is not checked against `f`.
fn tcp4_header_lens(f: &[u8]) -> Option<(usize, usize)> {
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
    Some((ihl, thl))
}

/// Whether `seg` (no FCS) may join `b`: same flow, the next sequence
/// number, the same ACK, window and options, plain ACK (PSH allowed, and
/// it ends the batch), a full-sized batch so far, and room under 64 KiB.
/// Mirrors the checks of `tcp_gro_receive()`.
fn can_merge(b: &TxBatch, seg: &[u8], ihl: usize, thl: usize) -> bool {
    if !b.active || b.closed || seg.len() < b.hdr_len || b.hdr_len != ETH_HLEN + ihl + thl {
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
    fn transmit(&mut self, now: Instant, frame: Vec<u8>) -> Result<(), PhyError> {
        self.transmit_slice(now, &frame)
    }

    fn transmit_slice(&mut self, now: Instant, frame: &[u8]) -> Result<(), PhyError> {
        let Some(len) = frame.len().checked_sub(ETH_FCS_LEN) else {
            return Err(PhyError::FrameTooShort { len: frame.len() });
        };
        let frame = &frame[..len];
        self.capture(now, frame);
        self.transmit_frame(frame)
    }

    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        let mut f = Vec::new();
        Ok(self.receive_into(now, &mut f)?.then_some(f))
    }

    fn receive_into(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<bool, PhyError> {
        // The device polls its PHY after transmitting: the burst is over.
        self.flush_tx()?;
        let got = if self.rx_gso.pending() {
            self.rx_gso.next_into(buf);
            finish_frame(buf);
            true
        } else {
            self.read_one(buf)?
        };
        if got {
            self.capture(now, &buf[..buf.len() - ETH_FCS_LEN]);
        }
        Ok(got)
    }

    fn next_event(&self) -> Option<Instant> {
        None
    }
}

/// How many skbs the TAP net device queues for its worker before it
/// stops its transmit queue (`tun`'s ring is `txqueuelen` long).
pub(crate) const TAP_TX_RING: usize = 1024;

/// How long the TAP worker sleeps in `poll(2)` at most, to look at its
/// stop flag.
const TAP_WORKER_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Frames the worker reads from the kernel per round before it looks at
/// the transmit ring again (NAPI's weight).
const TAP_RX_BUDGET: usize = 64;

/// The skbs the CPUs hand to the TAP worker, and the kick that wakes it.
///
/// Mirrors a virtqueue between `virtio_net`'s `start_xmit()` and
/// `vhost-net`: `sleeping` is the worker's "notify me" flag
/// (`VRING_USED_F_NO_NOTIFY` cleared), so a busy worker costs the CPUs no
/// system call.
struct TapTxRing {
    q: Mutex<VecDeque<SkBuff>>,
    sleeping: AtomicBool,
    kick: File,
}

impl TapTxRing {
    fn kick(&self) {
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = (&self.kick).write(&1u64.to_ne_bytes());
        }
    }
}

/// The device counters of a [`TapNetdev`] (`ip -s link`).
#[derive(Debug, Default)]
struct TapNetStats {
    rx_packets: AtomicU64,
    rx_bytes: AtomicU64,
    rx_dropped: AtomicU64,
    tx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_errors: AtomicU64,
}

/// A net device whose other end is a TAP: what a virtual machine's
/// `virtio-net` NIC is, with `vhost-net` and `tun` behind it.
///
/// Mirrors `drivers/net/virtio_net.c`'s `start_xmit()` for transmit: the
/// skb goes on a ring ([`TAP_TX_RING`] long) for the TAP's worker thread
/// ([`TapWorker`], `vhost-net`'s `handle_tx()`), which writes it to the
/// TAP; with a virtio header the device advertises `NETIF_F_SG`,
/// `NETIF_F_HW_CSUM`, `NETIF_F_TSO` and `NETIF_F_TSO_ECN` as `virtio_net`
/// does with `VIRTIO_NET_F_CSUM | GUEST_TSO4`, so softnet hands it GSO
/// skbs whole and each crosses in one `writev`. For receive the worker
/// reads the kernel's frames (`handle_rx()`), super-frames whole, and
/// queues them on CPU 0's backlog.
///
/// # Deviations from Linux
///
/// - No NAPI: the worker queues received skbs on a CPU's backlog
///   (`netif_rx()`), as `tun` itself does for frames written to it.
/// - Frames that are not GSO skbs are still merged by flow into one
///   write per burst (the merge rules of `tcp_gro_receive()`), since TCP
///   may send one MSS at a time.
pub(crate) struct TapNetdev {
    name: String,
    ifindex: u32,
    mac: DevAddr,
    mtu: u32,
    vnet: bool,
    up: bool,
    tx_queues: NetdevTxQueues,
    ring: Arc<TapTxRing>,
    stats: Arc<TapNetStats>,
}

impl fmt::Debug for TapNetdev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapNetdev")
            .field("name", &self.name)
            .field("ifindex", &self.ifindex)
            .field("vnet", &self.vnet)
            .finish_non_exhaustive()
    }
}

impl TapNetdev {
    /// A net device named `name` with `ifindex` and `mac` on `phy`'s TAP,
    /// and the worker that serves it (start it with [`TapWorker::spawn`]
    /// once the device is registered).
    ///
    /// Errors: the kernel refused the worker's `eventfd`.
    pub fn new(
        name: &str,
        ifindex: u32,
        mac: DevAddr,
        mut phy: TapPhy,
    ) -> io::Result<(TapNetdev, TapWorker)> {
        let kick = phy.tap.kicker()?;
        let ring = Arc::new(TapTxRing {
            q: Mutex::new(VecDeque::with_capacity(TAP_TX_RING)),
            sleeping: AtomicBool::new(false),
            kick,
        });
        let stats = Arc::new(TapNetStats::default());
        let vnet = phy.tap.has_vnet_hdr();
        let dev = TapNetdev {
            name: name.to_owned(),
            ifindex,
            mac,
            mtu: netcore::ETH_DATA_LEN,
            vnet,
            up: false,
            tx_queues: NetdevTxQueues::new(1),
            ring: Arc::clone(&ring),
            stats: Arc::clone(&stats),
        };
        let worker = TapWorker {
            phy,
            ring,
            stats,
            batch: VecDeque::with_capacity(TAP_TX_RING),
        };
        Ok((dev, worker))
    }
}

impl NetDevice for TapNetdev {
    fn name(&self) -> &str {
        &self.name
    }
    fn ifindex(&self) -> u32 {
        self.ifindex
    }
    fn dev_addr(&self) -> DevAddr {
        self.mac
    }
    fn flags(&self) -> NetDeviceFlags {
        let mut f = NetDeviceFlags::BROADCAST | NetDeviceFlags::MULTICAST;
        if self.up {
            f |= NetDeviceFlags::UP | NetDeviceFlags::RUNNING | NetDeviceFlags::LOWER_UP;
        }
        f
    }
    fn mtu(&self) -> u32 {
        self.mtu
    }
    fn max_mtu(&self) -> u32 {
        // virtio_net's MAX_MTU.
        65_535
    }
    fn change_mtu(&mut self, new_mtu: u32) -> Result<(), MtuError> {
        netcore::validate_mtu(new_mtu, self.min_mtu(), self.max_mtu())?;
        self.mtu = new_mtu;
        Ok(())
    }
    fn features(&self) -> NetdevFeatures {
        if self.vnet {
            NetdevFeatures::SG
                | NetdevFeatures::HW_CSUM
                | NetdevFeatures::TSO
                | NetdevFeatures::TSO_ECN
                | NetdevFeatures::GSO
        } else {
            NetdevFeatures::empty()
        }
    }
    fn hw_features(&self) -> NetdevFeatures {
        self.features()
    }
    fn tx_queues(&self) -> &NetdevTxQueues {
        &self.tx_queues
    }
    fn open(&mut self) -> Result<(), Errno> {
        self.up = true;
        self.tx_queues.wake_all();
        Ok(())
    }
    fn stop(&mut self) -> Result<(), Errno> {
        self.up = false;
        self.tx_queues.stop_all();
        self.ring.q.lock().clear();
        Ok(())
    }
    fn start_xmit(&mut self, skb: SkBuff, queue: u16) -> NetdevTx {
        {
            let mut q = self.ring.q.lock();
            if q.len() >= TAP_TX_RING {
                // netif_stop_queue(): the worker wakes it when it drains.
                if let Some(txq) = self.tx_queues.get(queue) {
                    txq.stop();
                }
                drop(q);
                self.ring.kick();
                return NetdevTx::Busy(skb);
            }
            q.push_back(skb);
        }
        self.ring.kick();
        NetdevTx::Ok
    }
    fn stats64(&self) -> RtnlLinkStats64 {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let s = &*self.stats;
        RtnlLinkStats64 {
            rx_packets: g(&s.rx_packets),
            rx_bytes: g(&s.rx_bytes),
            rx_dropped: g(&s.rx_dropped),
            tx_packets: g(&s.tx_packets),
            tx_bytes: g(&s.tx_bytes),
            tx_errors: g(&s.tx_errors),
            ..RtnlLinkStats64::default()
        }
    }
    fn set_rx_mode(&mut self, _mode: &RxMode) {
        // The TAP takes every frame the kernel sends out of it.
    }
}

const _: fn() = || {
    fn assert_impl<T: NetDevice>() {}
    assert_impl::<TapNetdev>();
};

/// The thread behind a [`TapNetdev`]: writes what the CPUs queued to the
/// TAP and reads what the kernel sent, sleeping in `poll(2)` on both.
///
/// Mirrors `vhost-net`'s worker (`handle_tx()` and `handle_rx()` in
/// `drivers/vhost/net.c`).
pub(crate) struct TapWorker {
    phy: TapPhy,
    ring: Arc<TapTxRing>,
    stats: Arc<TapNetStats>,
    batch: VecDeque<SkBuff>,
}

impl fmt::Debug for TapWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapWorker").finish_non_exhaustive()
    }
}

/// A running [`TapWorker`]: stop it before the host's runtime.
#[derive(Debug)]
pub(crate) struct TapWorkerHandle {
    stop: Arc<AtomicBool>,
    ring: Arc<TapTxRing>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for TapTxRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TapTxRing")
            .field("queued", &self.q.lock().len())
            .finish_non_exhaustive()
    }
}

impl TapWorkerHandle {
    /// Stops the worker and waits for it; what it had not written yet is
    /// dropped.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.ring.sleeping.store(true, Ordering::SeqCst);
        self.ring.kick();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TapWorkerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl TapWorker {
    /// Starts the worker for `dev` (the registered [`TapNetdev`]) of
    /// `host`, reading time from `clock`.
    pub fn spawn(
        self,
        host: Arc<HostShared>,
        dev: Arc<NetDev>,
        clock: Arc<dyn Clock>,
    ) -> io::Result<TapWorkerHandle> {
        let stop = Arc::new(AtomicBool::new(false));
        let ring = Arc::clone(&self.ring);
        let st = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("vhost-{}", dev.name()))
            .spawn(move || self.run(&host, &dev, &*clock, &st))?;
        Ok(TapWorkerHandle {
            stop,
            ring,
            thread: Some(thread),
        })
    }

    fn run(mut self, host: &HostShared, dev: &NetDev, clock: &dyn Clock, stop: &AtomicBool) {
        let mac = wire::EthernetAddress(dev.dev_addr());
        let ifindex = dev.ifindex();
        while !stop.load(Ordering::Acquire) {
            let now = clock.now();
            let sent = self.handle_tx(now, dev, host);
            let got = self.handle_rx(now, host, mac, ifindex);
            if sent || got {
                continue;
            }
            self.ring.sleeping.store(true, Ordering::SeqCst);
            if self.ring.q.lock().is_empty() && !stop.load(Ordering::Acquire) {
                let _ = self.phy.tap.wait_readable(TAP_WORKER_POLL);
            }
            self.ring.sleeping.store(false, Ordering::SeqCst);
        }
    }

    /// Writes everything queued; wakes the transmit queue if it was
    /// stopped. Returns whether anything was sent.
    fn handle_tx(&mut self, now: Instant, dev: &NetDev, host: &HostShared) -> bool {
        {
            let mut q = self.ring.q.lock();
            std::mem::swap(&mut *q, &mut self.batch);
        }
        if self.batch.is_empty() {
            return false;
        }
        let s = &*self.stats;
        while let Some(skb) = self.batch.pop_front() {
            let len = skb.len() as u64;
            let segs = u64::from(skb.gso_segs.max(1));
            match self.phy.xmit_skb(now, &skb) {
                Ok(()) => {
                    bump(&s.tx_packets, segs);
                    bump(&s.tx_bytes, len);
                }
                Err(e) => {
                    tracing::debug!(target: "netstack::tap", error = %e, len = skb.len(), "TAP write");
                    bump(&s.tx_errors, 1);
                }
            }
        }
        if let Err(e) = self.phy.flush_tx() {
            tracing::debug!(target: "netstack::tap", error = %e, "TAP write");
            bump(&s.tx_errors, 1);
        }
        if let Some(txq) = dev.tx_queues().get(0)
            && txq.is_stopped()
            && dev.is_up()
        {
            // netif_wake_subqueue(), and NET_TX to run the qdisc again.
            txq.wake();
            let _ = host.softirqs.raise_softirq(0, irq::SoftirqNr::NetTx);
        }
        true
    }

    /// Reads up to [`TAP_RX_BUDGET`] frames and queues them on CPU 0's
    /// backlog. Returns whether any came.
    fn handle_rx(
        &mut self,
        now: Instant,
        host: &HostShared,
        mac: wire::EthernetAddress,
        ifindex: u32,
    ) -> bool {
        let s = &*self.stats;
        let mut got = false;
        for _ in 0..TAP_RX_BUDGET {
            let mut skb = match self.phy.receive_skb(now, &host.pool) {
                Ok(Some(skb)) => skb,
                Ok(None) => break,
                Err(_) => {
                    bump(&s.rx_dropped, 1);
                    break;
                }
            };
            got = true;
            bump(&s.rx_packets, u64::from(skb.gso_segs.max(1)));
            bump(&s.rx_bytes, skb.len() as u64);
            skb.ifindex = ifindex;
            skb.tstamp = now;
            if ipv4::eth_type_trans(&mut skb, mac).is_err() {
                bump(&s.rx_dropped, 1);
                continue;
            }
            if host.softnet.enqueue_to_backlog(skb, 0).is_err() {
                bump(&s.rx_dropped, 1);
            }
        }
        got
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

    /// Every segment [`GsoSegments`] cuts from `f`.
    fn tcp_gso_segment(f: &[u8], mss: usize) -> Option<Vec<Vec<u8>>> {
        let mut g = GsoSegments {
            frame: f.to_vec(),
            ..GsoSegments::default()
        };
        g.start(mss)?;
        let mut out = Vec::new();
        let mut seg = Vec::new();
        while g.next_into(&mut seg) {
            out.push(seg.clone());
        }
        Some(out)
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

    /// The kernel's receive counters of `dev` in this thread's namespace
    /// (`/proc/thread-self/net/dev`): (bytes, packets).
    fn kernel_rx(dev: &str) -> (u64, u64) {
        let text = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
        let line = text
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(&format!("{dev}:")))
            .unwrap_or_else(|| panic!("{dev} not in /proc/net/dev:\n{text}"));
        let mut f = line.split_whitespace().map(|v| v.parse::<u64>().unwrap());
        (f.next().unwrap(), f.next().unwrap())
    }

    #[test]
    fn a_gso_skb_crosses_the_tap_in_one_write() {
        if netcore::testutil::skip_unless_root("tap::a_gso_skb_crosses_the_tap_in_one_write") {
            return;
        }
        let t = std::thread::spawn(|| {
            nic_hw::unshare_net_namespace().expect("unshare(CLONE_NEWNET)");
            let opts = nic_hw::TapOptions::new().nonblocking(true).vnet_hdr(true);
            let tap = TapDevice::open_with("nsgso0", opts).unwrap();
            tap.set_offload(nic_hw::TUN_F_CSUM | nic_hw::TUN_F_TSO4)
                .unwrap();
            tap.set_link_up().unwrap();
            let mut phy = TapPhy::new(tap);
            let pool = PagePool::new(netcore::PagePoolParams::default()).unwrap();
            // Three segments' worth in one skb, its TCP checksum left to
            // the device.
            let payload: Vec<u8> = (0..3 * 1448u32).map(|i| i as u8).collect();
            let frame = tcp_frame(1000, 0x18, &payload);
            let mut skb = SkBuff::netdev_alloc(&pool, frame.len()).unwrap();
            skb.put_data(&frame).unwrap();
            skb.gso_size = 1448;
            skb.gso_segs = 3;
            skb.gso_type = SkbGsoType::TCPV4;
            let (bytes0, before) = kernel_rx("nsgso0");
            phy.xmit_skb(Instant::ZERO, &skb).unwrap();
            let st = phy.offload_stats();
            assert_eq!(
                (st.tx_writes, st.tx_gso_frames, st.tx_gso_segments),
                (1, 1, 3)
            );
            // The kernel received one packet of the whole length (tun
            // counts what one write brought, before any segmentation).
            let (bytes, packets) = kernel_rx("nsgso0");
            assert_eq!(packets, before + 1);
            assert_eq!(bytes - bytes0, frame.len() as u64);
            // The same with the headers alone in the head and the payload
            // in two fragments, as TCP builds a GSO skb from its write
            // queue.
            let hlen = frame.len() - payload.len();
            let mut skb = SkBuff::netdev_alloc(&pool, hlen).unwrap();
            skb.put_data(&frame[..hlen]).unwrap();
            for part in payload.chunks(2896) {
                let mut f = SkBuff::netdev_alloc(&pool, part.len()).unwrap();
                f.put_data(part).unwrap();
                skb.append_frags(f, 0).map_err(|(_, e)| e).unwrap();
            }
            assert!(skb.is_nonlinear());
            skb.gso_size = 1448;
            skb.gso_segs = 3;
            skb.gso_type = SkbGsoType::TCPV4;
            phy.xmit_skb(Instant::ZERO, &skb).unwrap();
            let (bytes2, packets2) = kernel_rx("nsgso0");
            assert_eq!(packets2, before + 2);
            assert_eq!(bytes2 - bytes, frame.len() as u64);
            assert_eq!(phy.offload_stats().tx_gso_frames, 2);
            // A plain frame goes out as it is, one write.
            let small = tcp_frame(9000, 0x18, b"tail");
            let mut skb = SkBuff::netdev_alloc(&pool, small.len()).unwrap();
            skb.put_data(&small).unwrap();
            phy.xmit_skb(Instant::ZERO, &skb).unwrap();
            phy.flush_tx().unwrap();
            assert_eq!(phy.offload_stats().tx_writes, 3);
            assert_eq!(kernel_rx("nsgso0").1, before + 3);
        });
        t.join().unwrap();
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
            active: true,
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
