//! A fake IP layer for testing UDP alone: hosts joined back to back.
//!
//! No kernel twin. Each [`FakeUdpHost`] has a socket table, counters,
//! sysctls and a buffer pool; its [`FakeUdpCtx`] implements
//! [`UdpContext`] with a trivial IP layer: routes to its own address
//! (loopback), to the peer's and to the broadcast address, pushes a 20-byte
//! IPv4 header, and delivers synchronously to the peer's [`udp_rcv`]. A
//! datagram that finds no socket comes back as ICMP port unreachable
//! through [`udp_err`], as `ip_local_deliver_finish()` + `icmp_send()`
//! would do.

use std::net::Ipv4Addr;
use std::sync::{Arc, Weak};

use netcore::{Errno, Instant, NetMibs, PagePool, PagePoolParams, SkBuff, Sysctl};
use parking_lot::{Mutex, RwLock};
use wire::ip_fast_csum;

use crate::context::{Flowi4, RouteInfo, UdpContext};
use crate::udp::{UdpTable, udp_err, udp_rcv};

/// What the fake IP layer saw of one sent datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentDatagram {
    /// Length of the IP packet (header included).
    pub ip_len: usize,
    /// Whether DF was allowed.
    pub df: bool,
    /// The destination.
    pub daddr: Ipv4Addr,
    /// The IP id UDP chose (a connected socket's `inet_id`), `None` when
    /// it left the choice to IP.
    pub id: Option<u16>,
}

/// One host of the back-to-back pair.
pub struct FakeUdpHost {
    /// The host's address.
    pub addr: Ipv4Addr,
    /// The UDP socket table.
    pub table: UdpTable,
    /// Counters.
    pub mibs: NetMibs,
    /// Sysctls.
    pub sysctl: Sysctl,
    /// The buffer pool.
    pub pool: PagePool,
    /// The path MTU the fake routes report.
    pub mtu: Mutex<u32>,
    /// Whether the fake device offloads the UDP checksum.
    pub csum_offload: Mutex<bool>,
    /// Every datagram sent, in order.
    pub sent: Mutex<Vec<SentDatagram>>,
    /// Route lookups made ([`UdpContext::ip_route_output`] calls).
    pub route_lookups: Mutex<usize>,
    /// Whether to answer datagrams to closed ports with ICMP port
    /// unreachable (default true).
    pub icmp_port_unreach: Mutex<bool>,
    /// Whether IP output fails with this errno (to test error paths).
    pub fail_output: Mutex<Option<Errno>>,
    /// When set, sent packets wait here (as in a qdisc or on a TX ring)
    /// instead of being delivered; [`FakeUdpHost::flush_tx`] frees them
    /// as a transmit completion would.
    pub hold_tx: Mutex<Option<Vec<SkBuff>>>,
    peer: RwLock<Weak<FakeUdpHost>>,
}

impl std::fmt::Debug for FakeUdpHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUdpHost")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeUdpHost {
    /// A host with address `addr` and a one-CPU counter set.
    pub fn new(addr: Ipv4Addr) -> Arc<FakeUdpHost> {
        Arc::new(FakeUdpHost {
            addr,
            table: UdpTable::new(0x5eed_0000 ^ u32::from(addr)),
            mibs: NetMibs::new(1),
            sysctl: Sysctl::new(),
            pool: PagePool::new(PagePoolParams::default()).expect("default pool params are valid"),
            mtu: Mutex::new(1500),
            csum_offload: Mutex::new(false),
            sent: Mutex::new(Vec::new()),
            route_lookups: Mutex::new(0),
            icmp_port_unreach: Mutex::new(true),
            fail_output: Mutex::new(None),
            hold_tx: Mutex::new(None),
            peer: RwLock::new(Weak::new()),
        })
    }

    /// Two hosts joined back to back: 198.18.0.1 and 198.18.0.2.
    pub fn pair() -> (Arc<FakeUdpHost>, Arc<FakeUdpHost>) {
        let a = FakeUdpHost::new(Ipv4Addr::new(198, 18, 0, 1));
        let b = FakeUdpHost::new(Ipv4Addr::new(198, 18, 0, 2));
        *a.peer.write() = Arc::downgrade(&b);
        *b.peer.write() = Arc::downgrade(&a);
        (a, b)
    }

    /// A context on this host (CPU 0).
    pub fn ctx(self: &Arc<Self>) -> FakeUdpCtx {
        FakeUdpCtx {
            host: Arc::clone(self),
            rng: 0x9e37_79b9 ^ u32::from(self.addr),
        }
    }

    /// Holds every sent packet from now on (see [`FakeUdpHost::hold_tx`]).
    pub fn hold_tx(&self) {
        let mut h = self.hold_tx.lock();
        if h.is_none() {
            *h = Some(Vec::new());
        }
    }

    /// Frees the held packets, as a NIC's transmit completion does, and
    /// returns how many there were; packets are held no longer.
    pub fn flush_tx(&self) -> usize {
        let held = self.hold_tx.lock().take().unwrap_or_default();
        let n = held.len();
        drop(held);
        n
    }

    fn peer(&self) -> Option<Arc<FakeUdpHost>> {
        self.peer.read().upgrade()
    }
}

/// The [`UdpContext`] of a [`FakeUdpHost`].
#[derive(Debug)]
pub struct FakeUdpCtx {
    /// The host.
    pub host: Arc<FakeUdpHost>,
    rng: u32,
}

impl FakeUdpCtx {
    /// Builds an IPv4 packet from `saddr` to this host around `udp`
    /// (header and payload as given, checksum untouched) and passes it to
    /// [`udp_rcv`]; returns what `udp_rcv` returned.
    #[allow(clippy::result_large_err)] // the skb goes back by value (STYLE.md §5)
    pub fn inject(&mut self, saddr: Ipv4Addr, udp: &[u8]) -> Result<(), SkBuff> {
        let daddr = self.host.addr;
        let skb = ip_packet(&self.host.pool, saddr, daddr, udp);
        udp_rcv(self, skb)
    }
}

fn ip_packet(pool: &PagePool, saddr: Ipv4Addr, daddr: Ipv4Addr, udp: &[u8]) -> SkBuff {
    let mut bytes = vec![0u8; 20 + udp.len()];
    write_iph(&mut bytes[..20], saddr, daddr, 20 + udp.len(), false);
    bytes[20..].copy_from_slice(udp);
    let mut skb = SkBuff::from_slice(pool, 64, &bytes).expect("test packet fits the pool");
    skb.reset_network_header();
    skb.pull(20).expect("IP header present");
    skb
}

fn write_iph(h: &mut [u8], saddr: Ipv4Addr, daddr: Ipv4Addr, tot_len: usize, df: bool) {
    h.fill(0);
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(tot_len as u16).to_be_bytes());
    if df {
        h[6] = 0x40;
    }
    h[8] = 64;
    h[9] = crate::IPPROTO_UDP;
    h[12..16].copy_from_slice(&saddr.octets());
    h[16..20].copy_from_slice(&daddr.octets());
    let c = ip_fast_csum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
}

impl UdpContext for FakeUdpCtx {
    fn udp_table(&self) -> &UdpTable {
        &self.host.table
    }
    fn mibs(&self) -> &NetMibs {
        &self.host.mibs
    }
    fn cpu(&self) -> usize {
        0
    }
    fn sysctl(&self) -> &Sysctl {
        &self.host.sysctl
    }
    fn page_pool(&self) -> &PagePool {
        &self.host.pool
    }
    fn now(&self) -> Instant {
        Instant::ZERO
    }
    fn prandom_u32(&mut self) -> u32 {
        // xorshift32
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }
    fn inet_addr_valid_or_nonlocal(&self, addr: Ipv4Addr) -> bool {
        addr == self.host.addr || addr.is_loopback() || addr.is_broadcast() || addr.is_multicast()
    }
    fn ip_route_output(&mut self, fl: &Flowi4) -> Result<RouteInfo, Errno> {
        *self.host.route_lookups.lock() += 1;
        let peer = self.host.peer().map(|p| p.addr);
        let known = fl.daddr == self.host.addr
            || fl.daddr.is_loopback()
            || fl.daddr.is_broadcast()
            || Some(fl.daddr) == peer;
        if !known {
            return Err(Errno::NetUnreach);
        }
        let saddr = if fl.daddr.is_loopback() && fl.saddr.is_unspecified() {
            Ipv4Addr::LOCALHOST
        } else if fl.saddr.is_unspecified() {
            self.host.addr
        } else {
            fl.saddr
        };
        Ok(RouteInfo {
            saddr,
            mtu: *self.host.mtu.lock(),
            broadcast: fl.daddr.is_broadcast(),
            csum_offload: *self.host.csum_offload.lock(),
            dst: None,
        })
    }
    fn rt_genid(&self) -> u64 {
        // A change of the fake's path MTU or offload is a new generation.
        (u64::from(*self.host.mtu.lock()) << 1) | u64::from(*self.host.csum_offload.lock())
    }
    fn ip_send_skb(
        &mut self,
        mut skb: SkBuff,
        fl: &Flowi4,
        _rt: &RouteInfo,
        df: bool,
        id: Option<u16>,
    ) -> Result<(), Errno> {
        if let Some(e) = *self.host.fail_output.lock() {
            return Err(e);
        }
        let tot_len = skb.len() + 20;
        let h = skb.push(20).map_err(|_| Errno::NoBufs)?;
        write_iph(h, fl.saddr, fl.daddr, tot_len, df);
        skb.reset_network_header();
        self.host.sent.lock().push(SentDatagram {
            ip_len: tot_len,
            df,
            daddr: fl.daddr,
            id,
        });
        if let Some(held) = self.host.hold_tx.lock().as_mut() {
            held.push(skb);
            return Ok(());
        }
        // The receiving host: ourselves for local and loopback addresses,
        // the peer otherwise.
        let dest = if fl.daddr == self.host.addr || fl.daddr.is_loopback() {
            Arc::clone(&self.host)
        } else {
            match self.host.peer() {
                Some(p) => p,
                None => return Ok(()),
            }
        };
        skb.pull(20).map_err(|_| Errno::Inval)?;
        if fl.daddr.is_broadcast() {
            skb.pkt_type = netcore::PktType::Broadcast;
        }
        let mut rx = dest.ctx();
        if let Err(skb) = udp_rcv(&mut rx, skb)
            && *dest.icmp_port_unreach.lock()
        {
            {
                // icmp_send(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH): quote the
                // IP header and 8 bytes, deliver to the sender's udp_err.
                let quoted: Vec<u8> = skb
                    .network_header()
                    .map(|h| h[..h.len().min(28)].to_vec())
                    .unwrap_or_default();
                let sender = if Arc::ptr_eq(&dest, &self.host) {
                    Arc::clone(&self.host)
                } else {
                    match dest.peer() {
                        Some(s) => s,
                        None => return Ok(()),
                    }
                };
                let _ = udp_err(
                    &mut sender.ctx(),
                    3,
                    3,
                    0,
                    std::net::Ipv4Addr::UNSPECIFIED,
                    &quoted,
                );
            }
        }
        Ok(())
    }
}

const _: fn() = || {
    fn assert_impl<T: UdpContext>() {}
    assert_impl::<FakeUdpCtx>();
};
