//! Fixtures for tests of the IPv4 layer and of the layers above it
//! (`testutils` feature): a host context implementing [`Ipv4Context`], a
//! device that records the frames it transmits, a fake wire joining hosts
//! in virtual time, and a recording transport protocol.
//!
//! No kernel twin; the shape follows netstack3's fake contexts and fake
//! network (STYLE.md §8): each [`TestIpHost`] is one host with one CPU
//! ([`Ipv4TestCtx`]); a [`TestNetwork`] moves frames between hosts'
//! devices and runs every host's softirqs and timers until nothing is left
//! to do, refusing to loop forever.

use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{
    Clock, DevAddr, Duration, Errno, IcmpMsgDir, Instant, MibField, MtuError, NET_SKB_PAD,
    NetDevice, NetDeviceFlags, NetMibs, NetdevFeatures, NetdevTx, NetdevTxQueues, PagePool,
    PagePoolParams, RtnlLinkStats64, RxMode, SkBuff, Sysctl, TimerContext, VirtualClock,
};
use netfilter::{NfHookContext, NfHooks};
use parking_lot::Mutex;
use softnet::PollLists;
use softnet::{CpuWakeup, SoftirqNr, Softirqs};
use softnet::{
    NetDev, NetRx, Softnet, SoftnetContext, SoftnetData, SoftnetTimer, dev_open, net_rx_action,
    net_tx_action, netif_receive_skb,
};
use wire::{EthernetAddress, IcmpMessage, IcmpRepr};

use crate::context::{Ipv4Context, Ipv4Net};
use crate::devinet::InIfaddr;
use crate::eth::eth_type_trans;
use crate::ip_output::{InetSock, MAX_IP_HEADROOM, ip_build_and_send_pkt};
use crate::protocol::{IcmpErrInfo, IcmpError, NetProtocol};
use crate::route::FibConfig;
use crate::timers::{Ipv4Timer, handle_timer};

/// Armed timers of one kind, fired exactly at their deadlines in
/// deadline-then-arm order (one deadline per id; arming again moves it).
#[derive(Debug)]
pub struct TestTimers<T> {
    timers: Vec<(Instant, u64, T)>,
    seq: u64,
}

impl<T: Copy + Eq> TestTimers<T> {
    fn new() -> TestTimers<T> {
        TestTimers {
            timers: Vec::new(),
            seq: 0,
        }
    }

    /// Arms `id` at `at`; returns its previous deadline.
    pub fn arm(&mut self, id: T, at: Instant) -> Option<Instant> {
        let prev = self.cancel(id);
        self.seq += 1;
        self.timers.push((at, self.seq, id));
        prev
    }

    /// Cancels `id`; returns its deadline.
    pub fn cancel(&mut self, id: T) -> Option<Instant> {
        let i = self.timers.iter().position(|t| t.2 == id)?;
        Some(self.timers.swap_remove(i).0)
    }

    /// The deadline of `id`.
    pub fn scheduled(&self, id: T) -> Option<Instant> {
        self.timers.iter().find(|t| t.2 == id).map(|t| t.0)
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.iter().map(|t| t.0).min()
    }

    /// Every armed timer, earliest first.
    pub fn armed(&self) -> Vec<(T, Instant)> {
        let mut v: Vec<_> = self.timers.clone();
        v.sort_by_key(|t| (t.0, t.1));
        v.into_iter().map(|t| (t.2, t.0)).collect()
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        let i = (0..self.timers.len())
            .filter(|&i| self.timers[i].0 <= now)
            .min_by_key(|&i| (self.timers[i].0, self.timers[i].1))?;
        Some(self.timers.swap_remove(i).2)
    }
}

/// The one CPU of a [`TestIpHost`]: implements every context trait the
/// IPv4 layer needs.
pub struct Ipv4TestCtx {
    sd: SoftnetData<Ipv4TestCtx>,
    clock: VirtualClock,
    hooks: Arc<NfHooks<Ipv4TestCtx>>,
    ipv4: Arc<Ipv4Net<Ipv4TestCtx>>,
    /// The softnet timers armed on this CPU (qdisc watchdogs).
    pub softnet_timers: TestTimers<SoftnetTimer>,
    /// The IPv4 timers armed on this CPU (neighbours, fragments).
    pub timers: TestTimers<Ipv4Timer>,
    /// The CPU's last output device, as the host's CPUs keep it.
    pub(crate) xmit_dev: crate::XmitDevCache,
}

impl core::fmt::Debug for Ipv4TestCtx {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ipv4TestCtx").finish_non_exhaustive()
    }
}

impl TimerContext<SoftnetTimer> for Ipv4TestCtx {
    fn arm_timer(&mut self, id: SoftnetTimer, at: Instant) -> Option<Instant> {
        self.softnet_timers.arm(id, at)
    }
    fn cancel_timer(&mut self, id: SoftnetTimer) -> Option<Instant> {
        self.softnet_timers.cancel(id)
    }
    fn timer_pending(&self, id: SoftnetTimer) -> Option<Instant> {
        self.softnet_timers.scheduled(id)
    }
}

impl TimerContext<Ipv4Timer> for Ipv4TestCtx {
    fn arm_timer(&mut self, id: Ipv4Timer, at: Instant) -> Option<Instant> {
        self.timers.arm(id, at)
    }
    fn cancel_timer(&mut self, id: Ipv4Timer) -> Option<Instant> {
        self.timers.cancel(id)
    }
    fn timer_pending(&self, id: Ipv4Timer) -> Option<Instant> {
        self.timers.scheduled(id)
    }
}

impl SoftnetContext for Ipv4TestCtx {
    fn now(&self) -> Instant {
        self.clock.now()
    }
    fn softnet_data(&mut self) -> &mut SoftnetData<Self> {
        &mut self.sd
    }
}

impl NfHookContext for Ipv4TestCtx {
    fn nf_hooks(&self) -> &NfHooks<Self> {
        &self.hooks
    }
}

impl Ipv4Context for Ipv4TestCtx {
    fn ipv4(&self) -> &Arc<Ipv4Net<Self>> {
        &self.ipv4
    }

    fn xmit_dev_cache(&mut self) -> Option<&mut crate::XmitDevCache> {
        Some(&mut self.xmit_dev)
    }
}

const _: fn() = || {
    fn assert_impl<T: Ipv4Context>() {}
    fn assert_dev<T: NetDevice>() {}
    assert_impl::<Ipv4TestCtx>();
    assert_dev::<WireDevice>();
};

/// A device that records the frames it transmits (as bytes) for a
/// [`TestNetwork`] or a test to pick up.
#[derive(Debug)]
pub struct WireDevice {
    name: String,
    ifindex: u32,
    addr: DevAddr,
    mtu: u32,
    queues: NetdevTxQueues,
    flags: NetDeviceFlags,
    tx: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl WireDevice {
    /// A device `name`/`ifindex` with hardware address `addr`, MTU `mtu`,
    /// one transmit queue, and the handle to its transmitted frames.
    pub fn new(
        name: &str,
        ifindex: u32,
        addr: DevAddr,
        mtu: u32,
    ) -> (WireDevice, Arc<Mutex<Vec<Vec<u8>>>>) {
        let tx = Arc::new(Mutex::new(Vec::new()));
        (
            WireDevice {
                name: name.to_owned(),
                ifindex,
                addr,
                mtu,
                queues: NetdevTxQueues::new(1),
                flags: NetDeviceFlags::BROADCAST | NetDeviceFlags::MULTICAST,
                tx: Arc::clone(&tx),
            },
            tx,
        )
    }
}

impl NetDevice for WireDevice {
    fn name(&self) -> &str {
        &self.name
    }
    fn ifindex(&self) -> u32 {
        self.ifindex
    }
    fn dev_addr(&self) -> DevAddr {
        self.addr
    }
    fn flags(&self) -> NetDeviceFlags {
        self.flags
    }
    fn mtu(&self) -> u32 {
        self.mtu
    }
    fn change_mtu(&mut self, new_mtu: u32) -> Result<(), MtuError> {
        netcore::validate_mtu(new_mtu, 68, 9000)?;
        self.mtu = new_mtu;
        Ok(())
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
        Ok(())
    }
    fn stop(&mut self) -> Result<(), Errno> {
        self.flags -= NetDeviceFlags::UP | NetDeviceFlags::RUNNING | NetDeviceFlags::LOWER_UP;
        self.queues.stop_all();
        Ok(())
    }
    fn start_xmit(&mut self, skb: SkBuff, _queue: u16) -> NetdevTx {
        self.tx.lock().push(skb.data().to_vec());
        NetdevTx::Ok
    }
    fn stats64(&self) -> RtnlLinkStats64 {
        let tx = self.tx.lock();
        RtnlLinkStats64 {
            tx_packets: tx.len() as u64,
            tx_bytes: tx.iter().map(|f| f.len() as u64).sum(),
            ..RtnlLinkStats64::default()
        }
    }
    fn set_rx_mode(&mut self, _mode: &RxMode) {}
}

/// One device of a [`TestIpHost`].
#[derive(Debug)]
pub struct TestPort {
    /// The softnet device.
    pub dev: Arc<NetDev>,
    /// Its hardware address.
    pub addr: EthernetAddress,
    /// Frames it transmitted and nobody picked up yet.
    pub tx: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// A host with one CPU, IPv4 initialised (`inet_init`), and the devices
/// the test adds.
pub struct TestIpHost {
    /// The host-wide softnet state.
    pub softnet: Arc<Softnet<Ipv4TestCtx>>,
    /// The host-wide IPv4 state.
    pub ipv4: Arc<Ipv4Net<Ipv4TestCtx>>,
    /// The netfilter hooks.
    pub hooks: Arc<NfHooks<Ipv4TestCtx>>,
    /// The CPU.
    pub cpu: Ipv4TestCtx,
    /// The clock (shared by every host of a [`TestNetwork`]).
    pub clock: VirtualClock,
    /// The sysctls.
    pub sysctl: Arc<Sysctl>,
    /// The counters.
    pub mibs: Arc<NetMibs>,
    /// The buffer pool.
    pub pool: PagePool,
    softirqs: Arc<Softirqs>,
    /// The devices, by the order they were added.
    pub ports: Vec<TestPort>,
}

impl core::fmt::Debug for TestIpHost {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestIpHost")
            .field("ipv4", &self.ipv4)
            .finish_non_exhaustive()
    }
}

impl TestIpHost {
    /// A host on `clock` with default sysctls and `seed` for its random
    /// choices.
    pub fn new(clock: &VirtualClock, seed: u64) -> TestIpHost {
        TestIpHost::with_sysctl(clock, seed, Sysctl::new())
    }

    /// A host with the given sysctls.
    ///
    /// # Panics
    ///
    /// Never with valid constants (one CPU, a default pool).
    pub fn with_sysctl(clock: &VirtualClock, seed: u64, sysctl: Sysctl) -> TestIpHost {
        let sysctl = Arc::new(sysctl);
        let lists = PollLists::new(1).expect("one CPU");
        let softirqs = Arc::new(Softirqs::new(1, CpuWakeup::new()).expect("one CPU"));
        let softnet = Softnet::new(lists, Arc::clone(&softirqs), Arc::clone(&sysctl))
            .expect("matching CPU counts");
        let pool = PagePool::new(PagePoolParams::default()).expect("default pool");
        let mibs = Arc::new(NetMibs::new(1));
        let ipv4 = Arc::new(Ipv4Net::new(
            Arc::clone(&sysctl),
            Arc::clone(&mibs),
            pool.clone(),
            seed,
            clock.now(),
        ));
        let hooks = Arc::new(NfHooks::new());
        let mut cpu = Ipv4TestCtx {
            sd: softnet.softnet_data(0).expect("cpu 0"),
            clock: clock.clone(),
            hooks: Arc::clone(&hooks),
            ipv4: Arc::clone(&ipv4),
            softnet_timers: TestTimers::new(),
            timers: TestTimers::new(),
            xmit_dev: crate::XmitDevCache::default(),
        };
        crate::af_inet::inet_init(&mut cpu).expect("first inet_init");
        TestIpHost {
            softnet,
            ipv4,
            hooks,
            cpu,
            clock: clock.clone(),
            sysctl,
            mibs,
            pool,
            softirqs,
            ports: Vec::new(),
        }
    }

    /// Adds an Ethernet device `ethN` (N = ifindex − 2, so the first is
    /// `eth0` with ifindex 2) with hardware address `02:00:00:00:<host>:<ifindex>`,
    /// MTU `mtu`, brings it up and gives it `addr/prefixlen`. Returns its
    /// ifindex.
    ///
    /// # Panics
    ///
    /// If the device cannot be registered (a test bug).
    pub fn add_device(&mut self, host_id: u8, mtu: u32, addr: Ipv4Addr, prefixlen: u8) -> u32 {
        let ifindex = u32::try_from(self.ports.len()).expect("few ports") + 2;
        let mac = [0x02, 0, 0, 0, host_id, ifindex as u8];
        let name = format!("eth{}", ifindex - 2);
        let (dev, tx) = WireDevice::new(&name, ifindex, mac, mtu);
        let nd = self
            .softnet
            .dev_base()
            .register_netdevice(Box::new(dev), 1)
            .expect("register");
        dev_open(&nd).expect("open");
        self.ipv4.inetdev_init(&nd).expect("inetdev_init");
        self.ipv4
            .with_netns_mut(|n| n.inet_rtm_newaddr(InIfaddr::new(ifindex, addr, prefixlen, &name)))
            .expect("address");
        self.ports.push(TestPort {
            dev: nd,
            addr: EthernetAddress(mac),
            tx,
        });
        ifindex
    }

    /// `ip route add dst/len via gw`.
    ///
    /// # Panics
    ///
    /// If the route is refused (a test bug).
    pub fn route_add(&mut self, dst: Ipv4Addr, len: u8, gw: Ipv4Addr) {
        self.ipv4
            .with_netns_mut(|n| n.inet_rtm_newroute(FibConfig::new(dst, len).via(gw)))
            .expect("route");
    }

    /// The port of device `ifindex`.
    ///
    /// # Panics
    ///
    /// For an ifindex the test never added.
    pub fn port(&self, ifindex: u32) -> &TestPort {
        &self.ports[(ifindex - 2) as usize]
    }

    /// Takes the frames device `ifindex` transmitted.
    pub fn take_frames(&self, ifindex: u32) -> Vec<Vec<u8>> {
        core::mem::take(&mut *self.port(ifindex).tx.lock())
    }

    /// Receives `frame` on device `ifindex` as a driver would:
    /// `eth_type_trans()` then `netif_receive_skb()`; then runs the host
    /// until idle.
    ///
    /// # Panics
    ///
    /// When the pool is exhausted.
    pub fn receive(&mut self, ifindex: u32, frame: &[u8]) -> NetRx {
        let addr = self.port(ifindex).addr;
        let mut skb = SkBuff::from_slice(&self.pool, NET_SKB_PAD, frame).expect("pool");
        skb.ifindex = ifindex;
        let r = if eth_type_trans(&mut skb, addr).is_ok() {
            netif_receive_skb(&mut self.cpu, skb)
        } else {
            NetRx::Drop
        };
        self.run_until_idle();
        r
    }

    /// Runs due timers and pending softirqs until there are none; returns
    /// the rounds run.
    ///
    /// # Panics
    ///
    /// After 100 000 rounds (a livelock in the code under test).
    pub fn run_until_idle(&mut self) -> usize {
        let mut rounds = 0;
        loop {
            let now = self.clock.now();
            let mut busy = false;
            while let Some(t) = self.cpu.softnet_timers.pop_due(now) {
                busy = true;
                softnet::handle_timer(&mut self.cpu, t);
            }
            while let Some(t) = self.cpu.timers.pop_due(now) {
                busy = true;
                handle_timer(&mut self.cpu, t);
            }
            if self.softirqs.local_softirq_pending(0).unwrap_or(0) != 0 {
                busy = true;
                let softirqs = Arc::clone(&self.softirqs);
                let clock = self.clock.clone();
                let cpu = &mut self.cpu;
                let _ = softirqs.do_softirq(
                    0,
                    || clock.now(),
                    || false,
                    |nr, _| match nr {
                        SoftirqNr::NetRx => net_rx_action(cpu),
                        SoftirqNr::NetTx => net_tx_action(cpu),
                        _ => {}
                    },
                );
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

    /// The earliest armed timer of this host.
    pub fn next_timer(&self) -> Option<Instant> {
        self.cpu.timers.next_deadline()
    }

    /// A counter's value (`IpMib::InReceives`, `IcmpMib::InMsgs`, …).
    pub fn mib<F: MibField>(&self, field: F) -> u64 {
        self.mibs.get(field)
    }

    /// An IcmpMsg counter (`InType8`, `OutType0`, …).
    pub fn icmpmsg(&self, dir: IcmpMsgDir, icmp_type: u8) -> u64 {
        self.mibs.snapshot().icmpmsg(dir, icmp_type)
    }

    /// Sends an ICMP echo request of `payload_len` bytes to `daddr`, as
    /// `ping` does through a raw socket: built here, sent with
    /// `ip_build_and_send_pkt` (DF clear, so a large one is fragmented).
    ///
    /// # Errors
    ///
    /// Those of [`ip_build_and_send_pkt`].
    ///
    /// # Panics
    ///
    /// When the pool is exhausted.
    pub fn ping(
        &mut self,
        daddr: Ipv4Addr,
        ident: u16,
        seq_no: u16,
        payload_len: usize,
    ) -> Result<(), Errno> {
        let mut icmp = vec![0u8; 8 + payload_len];
        for (i, b) in icmp[8..].iter_mut().enumerate() {
            *b = i as u8;
        }
        IcmpRepr {
            message: IcmpMessage::EchoRequest { ident, seq_no },
            payload_len,
        }
        .emit(&mut icmp)
        .expect("room");
        let mut skb = SkBuff::from_slice(&self.pool, MAX_IP_HEADROOM, &icmp).expect("pool");
        skb.reset_transport_header();
        let mut sk = InetSock::new(1, &self.sysctl);
        sk.pmtudisc = crate::ip_output::IpPmtudisc::Dont;
        let r = ip_build_and_send_pkt(&mut self.cpu, skb, &mut sk, Ipv4Addr::UNSPECIFIED, daddr)
            .map(|_| ());
        self.run_until_idle();
        r
    }
}

/// A point-to-point or shared segment of a [`TestNetwork`]: the
/// `(host, ifindex)` ports attached to it.
#[derive(Clone, Debug, Default)]
pub struct Segment {
    /// The ports.
    pub ports: Vec<(usize, u32)>,
}

/// A predicate choosing frames a [`TestNetwork`] loses.
pub type DropFilter = Box<dyn FnMut(&[u8]) -> bool>;

/// Several hosts joined by segments, in one virtual time.
///
/// Every frame a port transmits reaches every other port of its segment
/// at the same instant (zero latency), through the receiver's
/// `eth_type_trans()` and `netif_receive_skb()`.
pub struct TestNetwork {
    /// The shared clock.
    pub clock: VirtualClock,
    /// The hosts.
    pub hosts: Vec<TestIpHost>,
    /// The segments.
    pub segments: Vec<Segment>,
    /// Every frame carried, in order: (time, from host, from ifindex, bytes).
    pub log: Vec<(Instant, usize, u32, Vec<u8>)>,
    /// Frames to drop instead of delivering: a predicate on the bytes.
    pub drop_filter: Option<DropFilter>,
}

impl core::fmt::Debug for TestNetwork {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestNetwork")
            .field("hosts", &self.hosts.len())
            .field("frames", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl TestNetwork {
    /// No hosts yet.
    pub fn new() -> TestNetwork {
        TestNetwork {
            clock: VirtualClock::new(),
            hosts: Vec::new(),
            segments: Vec::new(),
            log: Vec::new(),
            drop_filter: None,
        }
    }

    /// Adds a host with `sysctl`; returns its index.
    pub fn add_host(&mut self, sysctl: Sysctl) -> usize {
        let seed = self.hosts.len() as u64 + 1;
        self.hosts
            .push(TestIpHost::with_sysctl(&self.clock, seed, sysctl));
        self.hosts.len() - 1
    }

    /// Joins ports into a segment.
    pub fn connect(&mut self, ports: &[(usize, u32)]) {
        self.segments.push(Segment {
            ports: ports.to_vec(),
        });
    }

    /// Moves frames and runs hosts until no frame is in flight and no
    /// host has work at the current instant; returns the frames carried.
    ///
    /// # Panics
    ///
    /// After 10 000 rounds.
    pub fn run_until_idle(&mut self) -> usize {
        let mut carried = 0;
        for round in 0.. {
            assert!(round < 10_000, "TestNetwork: still busy after 10000 rounds");
            for h in &mut self.hosts {
                h.run_until_idle();
            }
            let mut moved = Vec::new();
            for seg in &self.segments {
                for &(h, ifindex) in &seg.ports {
                    for f in self.hosts[h].take_frames(ifindex) {
                        moved.push((h, ifindex, f, seg.ports.clone()));
                    }
                }
            }
            if moved.is_empty() {
                return carried;
            }
            let now = self.clock.now();
            for (h, ifindex, f, ports) in moved {
                carried += 1;
                self.log.push((now, h, ifindex, f.clone()));
                if let Some(filter) = self.drop_filter.as_mut()
                    && filter(&f)
                {
                    continue;
                }
                for &(to, to_if) in &ports {
                    if (to, to_if) != (h, ifindex) {
                        let _ = self.hosts[to].receive(to_if, &f);
                    }
                }
            }
        }
        carried
    }

    /// Advances the clock by `d` in steps to each armed timer, running the
    /// network at each step.
    pub fn advance(&mut self, d: Duration) {
        let end = self.clock.now() + d;
        loop {
            self.run_until_idle();
            let next = self
                .hosts
                .iter()
                .filter_map(TestIpHost::next_timer)
                .filter(|&t| t <= end)
                .min();
            match next {
                Some(t) if t > self.clock.now() => {
                    let _ = self.clock.set(t);
                }
                Some(_) => {}
                None => {
                    let _ = self.clock.set(end);
                    self.run_until_idle();
                    return;
                }
            }
        }
    }
}

impl Default for TestNetwork {
    fn default() -> Self {
        TestNetwork::new()
    }
}

/// An ICMP error a [`RecordingProtocol`] received: type, code, info and
/// the quoted bytes.
pub type RecordedIcmpError = (u8, u8, u32, Vec<u8>);

/// A transport that records what it receives and, when `refuse` is set,
/// hands datagrams back for a port unreachable (as UDP does with no
/// socket).
#[derive(Debug, Default)]
pub struct RecordingProtocol {
    /// Whether to refuse every datagram.
    pub refuse: bool,
    /// Payloads delivered (from the transport header).
    pub delivered: Mutex<Vec<Vec<u8>>>,
    /// ICMP errors received.
    pub errors: Mutex<Vec<RecordedIcmpError>>,
}

impl<C: Ipv4Context> NetProtocol<C> for RecordingProtocol {
    fn handler(&self, skb: SkBuff, _ctx: &mut C) -> Result<(), (SkBuff, IcmpError)> {
        if self.refuse {
            return Err((skb, IcmpError::PORT_UNREACH));
        }
        self.delivered.lock().push(skb.data().to_vec());
        Ok(())
    }

    fn err_handler(&self, info: &IcmpErrInfo<'_>, _ctx: &mut C) {
        self.errors
            .lock()
            .push((info.icmp_type, info.code, info.info, info.quoted.to_vec()));
    }

    fn name(&self) -> &'static str {
        "recording"
    }
}
