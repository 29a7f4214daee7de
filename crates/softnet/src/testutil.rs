//! Fixtures for tests of softnet and of the layers above it (`testutils`
//! feature): a host of N CPUs with a context per CPU, a recording device,
//! frame builders, and a pcap reader.
//!
//! No kernel twin; the shape follows netstack3's fake contexts: one
//! [`TestCtx`] per CPU implements [`SoftnetContext`] over a shared virtual
//! clock and fake timers, and [`TestHost::run_softirqs`] plays the CPU
//! runner's softirq step.

use std::sync::Arc;

use irq::{CpuWakeup, SoftirqNr, SoftirqRun, Softirqs};
use napi::PollLists;
use netcore::testutil::FakeTimers;
use netcore::{
    Clock, DevAddr, Errno, Instant, MtuError, NET_SKB_PAD, NetDevice, NetDeviceFlags,
    NetdevFeatures, NetdevTx, NetdevTxQueues, PagePool, RtnlLinkStats64, RxMode, SkBuff, Sysctl,
    TimerContext, VirtualClock,
};
use parking_lot::Mutex;

use crate::dev::{
    Softnet, SoftnetContext, SoftnetData, SoftnetTimer, handle_timer, net_rx_action, net_tx_action,
};

/// One CPU's context of a [`TestHost`].
pub struct TestCtx {
    sd: SoftnetData<TestCtx>,
    clock: VirtualClock,
    /// The timers softnet armed on this CPU.
    pub timers: FakeTimers<SoftnetTimer>,
}

impl core::fmt::Debug for TestCtx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestCtx")
            .field("sd", &self.sd)
            .finish_non_exhaustive()
    }
}

impl TimerContext<SoftnetTimer> for TestCtx {
    fn arm_timer(&mut self, id: SoftnetTimer, at: Instant) -> Option<Instant> {
        self.timers.arm(id, at)
    }
    fn cancel_timer(&mut self, id: SoftnetTimer) -> Option<Instant> {
        self.timers.cancel(id)
    }
    fn timer_pending(&self, id: SoftnetTimer) -> Option<Instant> {
        self.timers.scheduled(id)
    }
}

impl SoftnetContext for TestCtx {
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn softnet_data(&mut self) -> &mut SoftnetData<Self> {
        &mut self.sd
    }
}

/// A host of `nr_cpus` CPUs: its softnet, one context per CPU, a shared
/// virtual clock.
pub struct TestHost {
    /// The host-wide softnet state.
    pub net: Arc<Softnet<TestCtx>>,
    /// One context per CPU.
    pub cpus: Vec<TestCtx>,
    /// The clock every CPU reads; advance it to move time.
    pub clock: VirtualClock,
    /// The sysctls.
    pub sysctl: Arc<Sysctl>,
    /// The softirq state.
    pub softirqs: Arc<Softirqs>,
    /// The NAPI poll lists.
    pub lists: Arc<PollLists>,
}

impl core::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestHost")
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

impl TestHost {
    /// A host with `nr_cpus` CPUs and default sysctls.
    pub fn new(nr_cpus: usize) -> TestHost {
        TestHost::with_sysctl(nr_cpus, Sysctl::new())
    }

    /// A host with the given sysctls.
    pub fn with_sysctl(nr_cpus: usize, sysctl: Sysctl) -> TestHost {
        let sysctl = Arc::new(sysctl);
        let lists = PollLists::new(nr_cpus).expect("nr_cpus in 1..=4096");
        let softirqs =
            Arc::new(Softirqs::new(nr_cpus, CpuWakeup::new()).expect("nr_cpus in 1..=4096"));
        let net = Softnet::new(
            Arc::clone(&lists),
            Arc::clone(&softirqs),
            Arc::clone(&sysctl),
        )
        .expect("matching CPU counts");
        let clock = VirtualClock::new();
        let cpus = (0..nr_cpus)
            .map(|cpu| TestCtx {
                sd: net.softnet_data(cpu).expect("cpu in range"),
                clock: clock.clone(),
                timers: FakeTimers::with_clock(clock.clone()),
            })
            .collect();
        TestHost {
            net,
            cpus,
            clock,
            sysctl,
            softirqs,
            lists,
        }
    }

    /// CPU `cpu`'s context.
    pub fn ctx(&mut self, cpu: usize) -> &mut TestCtx {
        &mut self.cpus[cpu]
    }

    /// Whether `nr` is pending on `cpu`.
    pub fn pending(&self, cpu: usize, nr: SoftirqNr) -> bool {
        self.softirqs.local_softirq_pending(cpu).unwrap_or(0) & nr.mask() != 0
    }

    /// Runs `cpu`'s pending softirqs once, as its runner does after hard
    /// IRQs (`do_softirq`, restarting per the kernel's rule).
    pub fn run_softirqs(&mut self, cpu: usize) -> SoftirqRun {
        let softirqs = Arc::clone(&self.softirqs);
        let clock = self.clock.clone();
        let ctx = &mut self.cpus[cpu];
        softirqs
            .do_softirq(
                cpu,
                || clock.now(),
                || false,
                |nr, _| match nr {
                    SoftirqNr::NetRx => net_rx_action(ctx),
                    SoftirqNr::NetTx => net_tx_action(ctx),
                    _ => {}
                },
            )
            .expect("cpu in range")
    }

    /// Runs every CPU's softirqs (and due softnet timers) until nothing is
    /// pending; returns the rounds. Panics after 100 000 rounds rather than
    /// loop forever.
    pub fn run_until_idle(&mut self) -> usize {
        let mut rounds = 0;
        loop {
            let mut busy = false;
            for cpu in 0..self.cpus.len() {
                let now = self.clock.now();
                for t in self.cpus[cpu].timers.advance_to(now) {
                    handle_timer(&mut self.cpus[cpu], t);
                }
                if self.softirqs.local_softirq_pending(cpu).unwrap_or(0) != 0 {
                    busy = true;
                    self.run_softirqs(cpu);
                    // Whatever the run handed to "ksoftirqd" runs next round.
                }
            }
            if !busy {
                return rounds;
            }
            rounds += 1;
            assert!(
                rounds < 100_000,
                "run_until_idle: still busy after 100000 rounds"
            );
        }
    }
}

/// What a [`TestDevice`] records and how it behaves, shared with the test.
#[derive(Debug, Default)]
pub struct TestDeviceState {
    /// Every skb `start_xmit` accepted, with its queue, in order.
    pub transmitted: Vec<(SkBuff, u16)>,
    /// How many more skbs `start_xmit` accepts; at 0 it stops the queue
    /// and answers busy (as a driver with a full ring). `None`: no limit.
    pub tx_room: Option<usize>,
    /// Times `start_xmit` answered busy.
    pub busy_returns: u64,
    /// `open` calls.
    pub opens: u64,
    /// `stop` calls.
    pub stops: u64,
}

/// A device whose transmitted skbs and behaviour a test reaches through
/// a shared [`TestDeviceState`] after the device was registered.
#[derive(Debug)]
pub struct TestDevice {
    name: String,
    ifindex: u32,
    queues: NetdevTxQueues,
    txqueuelen: u32,
    flags: NetDeviceFlags,
    state: Arc<Mutex<TestDeviceState>>,
}

impl TestDevice {
    /// A device `name`/`ifindex` with `tx_queues` transmit queues and
    /// `txqueuelen` 1000, and the handle to its state.
    pub fn new(
        name: &str,
        ifindex: u32,
        tx_queues: u16,
    ) -> (TestDevice, Arc<Mutex<TestDeviceState>>) {
        let state = Arc::new(Mutex::new(TestDeviceState::default()));
        (
            TestDevice {
                name: name.to_owned(),
                ifindex,
                queues: NetdevTxQueues::new(tx_queues),
                txqueuelen: netcore::DEFAULT_TX_QUEUE_LEN,
                flags: NetDeviceFlags::BROADCAST | NetDeviceFlags::MULTICAST,
                state: Arc::clone(&state),
            },
            state,
        )
    }

    /// Sets `txqueuelen` (0 gives the device `noqueue`).
    #[must_use]
    pub fn with_txqueuelen(mut self, len: u32) -> TestDevice {
        self.txqueuelen = len;
        self
    }
}

impl NetDevice for TestDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn ifindex(&self) -> u32 {
        self.ifindex
    }
    fn dev_addr(&self) -> DevAddr {
        [0x02, 0, 0, 0, 0, self.ifindex as u8]
    }
    fn flags(&self) -> NetDeviceFlags {
        self.flags
    }
    fn mtu(&self) -> u32 {
        1500
    }
    fn change_mtu(&mut self, new_mtu: u32) -> Result<(), MtuError> {
        netcore::validate_mtu(new_mtu, 68, 1500)
    }
    fn txqueuelen(&self) -> u32 {
        self.txqueuelen
    }
    fn features(&self) -> NetdevFeatures {
        NetdevFeatures::SG
    }
    fn tx_queues(&self) -> &NetdevTxQueues {
        &self.queues
    }
    fn open(&mut self) -> Result<(), Errno> {
        self.flags |= NetDeviceFlags::UP | NetDeviceFlags::RUNNING | NetDeviceFlags::LOWER_UP;
        self.queues.wake_all();
        self.state.lock().opens += 1;
        Ok(())
    }
    fn stop(&mut self) -> Result<(), Errno> {
        self.flags -= NetDeviceFlags::UP | NetDeviceFlags::RUNNING | NetDeviceFlags::LOWER_UP;
        self.queues.stop_all();
        self.state.lock().stops += 1;
        Ok(())
    }
    fn start_xmit(&mut self, skb: SkBuff, queue: u16) -> NetdevTx {
        let mut st = self.state.lock();
        if st.tx_room == Some(0) {
            if let Some(q) = self.queues.get(queue) {
                q.stop();
            }
            st.busy_returns += 1;
            return NetdevTx::Busy(skb);
        }
        if let Some(room) = st.tx_room.as_mut() {
            *room -= 1;
        }
        st.transmitted.push((skb, queue));
        NetdevTx::Ok
    }
    fn stats64(&self) -> RtnlLinkStats64 {
        let st = self.state.lock();
        RtnlLinkStats64 {
            tx_packets: st.transmitted.len() as u64,
            tx_bytes: st.transmitted.iter().map(|(s, _)| s.len() as u64).sum(),
            ..RtnlLinkStats64::default()
        }
    }
    fn set_rx_mode(&mut self, _mode: &RxMode) {}
}

/// The IPv4 header checksum of `hdr` (checksum field included as is).
fn ipv4_csum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = hdr
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet + IPv4 frame carrying `l4` (protocol `proto`), from
/// `02:00:00:00:00:01` to `02:00:00:00:00:02`, with a correct header
/// checksum.
pub fn ipv4_frame(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(34 + l4.len());
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    let total = (20 + l4.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src);
    ip[16..20].copy_from_slice(&dst);
    let c = ipv4_csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

/// A UDP datagram frame with `payload_len` bytes of payload (UDP checksum
/// 0, allowed over IPv4).
pub fn udp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    payload_len: usize,
) -> Vec<u8> {
    let mut udp = vec![0u8; 8 + payload_len];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&dport.to_be_bytes());
    udp[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    for (i, b) in udp[8..].iter_mut().enumerate() {
        *b = i as u8;
    }
    ipv4_frame(src, dst, 17, &udp)
}

/// A TCP segment frame (ACK set, 20-byte header) with `payload_len` bytes
/// of payload and sequence number `seq`; the TCP checksum is computed.
pub fn tcp_frame(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    payload_len: usize,
) -> Vec<u8> {
    let mut tcp = vec![0u8; 20 + payload_len];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&1u32.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x10; // ACK
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    for (i, b) in tcp[20..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut pseudo = Vec::with_capacity(12 + tcp.len());
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&tcp);
    let c = ipv4_csum(&pseudo);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    ipv4_frame(src, dst, 6, &tcp)
}

/// An ICMP echo request frame with a correct ICMP checksum.
pub fn icmp_echo_frame(src: [u8; 4], dst: [u8; 4], id: u16, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8u8, 0, 0, 0, 0, 0, 0, 0, b'p', b'i', b'n', b'g'];
    icmp[4..6].copy_from_slice(&id.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    let c = ipv4_csum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4_frame(src, dst, 1, &icmp)
}

/// An ARP request frame (broadcast), padded to the 60-byte minimum.
pub fn arp_request_frame(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}

/// A frame with an ethertype nobody handles (0x88b5, local experimental).
pub fn unknown_ethertype_frame() -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5];
    f.resize(60, 0xee);
    f
}

/// Builds a received skb from a frame as a driver does after
/// `eth_type_trans()`: MAC header at the frame's start, `protocol` from the
/// ethertype, data at the network header; `ifindex` and the rx queue set.
pub fn rx_skb(pool: &PagePool, frame: &[u8], ifindex: u32, rx_queue: u16) -> SkBuff {
    let mut skb = SkBuff::from_slice(pool, NET_SKB_PAD, frame).expect("pool has buffers");
    skb.reset_mac_header();
    skb.protocol = u16::from_be_bytes([frame[12], frame[13]]);
    skb.pull(14).expect("frame has an Ethernet header");
    skb.reset_network_header();
    skb.ifindex = ifindex;
    skb.queue_mapping = rx_queue;
    skb
}

/// The header of a pcap file, as read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcapFileHeader {
    /// The magic (`0xa1b23c4d` for nanosecond files).
    pub magic: u32,
    /// Major version (2).
    pub version_major: u16,
    /// Minor version (4).
    pub version_minor: u16,
    /// The snap length.
    pub snaplen: u32,
    /// The link type (1 for Ethernet).
    pub linktype: u32,
}

/// One record of a pcap file, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapRecord {
    /// Seconds.
    pub ts_sec: u32,
    /// Nanoseconds (or microseconds in a microsecond file).
    pub ts_frac: u32,
    /// The length on the wire.
    pub orig_len: u32,
    /// The bytes captured.
    pub data: Vec<u8>,
}

/// Parses a little-endian pcap file. Errors say what is wrong and where.
pub fn read_pcap(bytes: &[u8]) -> Result<(PcapFileHeader, Vec<PcapRecord>), String> {
    let u32_at = |o: usize| -> Result<u32, String> {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("truncated at byte {o}"))
    };
    let header = PcapFileHeader {
        magic: u32_at(0)?,
        version_major: (u32_at(4)? & 0xffff) as u16,
        version_minor: (u32_at(4)? >> 16) as u16,
        snaplen: u32_at(16)?,
        linktype: u32_at(20)?,
    };
    if header.magic != 0xa1b2_3c4d && header.magic != 0xa1b2_c3d4 {
        return Err(format!("bad magic {:#010x}", header.magic));
    }
    let mut records = Vec::new();
    let mut o = 24;
    while o < bytes.len() {
        let incl = u32_at(o + 8)? as usize;
        let data = bytes
            .get(o + 16..o + 16 + incl)
            .ok_or_else(|| format!("record at byte {o} truncated"))?
            .to_vec();
        records.push(PcapRecord {
            ts_sec: u32_at(o)?,
            ts_frac: u32_at(o + 4)?,
            orig_len: u32_at(o + 12)?,
            data,
        });
        o += 16 + incl;
    }
    Ok((header, records))
}

/// Whether skips are forbidden (`CI=true` or `NETSTACK_FORBID_SKIP=1`).
pub fn skips_forbidden() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("NETSTACK_FORBID_SKIP").is_ok_and(|v| v == "1")
}
