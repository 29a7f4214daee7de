//! The host-wide IPv4 state, and what the layer needs from a CPU's context.
//!
//! Mirrors `struct netns_ipv4` (`include/net/netns/ipv4.h`) with the
//! globals of the IPv4 layer that hang off it or off `init_net`: the
//! routing tables and device addresses, `arp_tbl`, the fragment queues
//! (`fqdir`), the ICMP rate limiters, `inet_protos[]` and the `ip_idents`
//! array of `net/ipv4/route.c`.
//!
//! ```text
//!   CPU 0 ctx ──┐                      Ipv4Net (Arc, one per host)
//!   CPU 1 ctx ──┼── ipv4() ──▶  netns (RwLock: devices, FIB)   arp_tbl (Mutex)
//!   …           │               frags (Mutex)  icmp limits (Mutex)  PMTU exceptions (Mutex)
//!               │               inet_protos[256] (write-once cells)  ip_idents (atomics)
//!               └── softnet_data(), nf_hooks(), TimerContext<Ipv4Timer>
//! ```
//!
//! Lock order (see `netcore::lock_order`): `netns` before `arp_tbl`; no
//! other lock of this file is taken while one of them is held (the PMTU
//! exceptions are read after the `netns` lock is released), and none is
//! held across a call into softnet, netfilter or a protocol handler.

use core::fmt;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};

use netcore::{
    Duration, Errno, HZ, Instant, NetDeviceFlags, NetMibs, PagePool, SkBuff, Sysctl, SysctlValue,
    TimerContext,
};
use netfilter::{
    NF_HOOK, NfConsumed, NfHookContext, NfHookResult, NfHookState, NfInetHooks, NfQueueEntry,
    NfVerdict, nf_reinject,
};
use parking_lot::{Mutex, RwLock};
use softnet::{NetDev, NetRx, SoftnetContext};
use wire::EthernetAddress;

use crate::devinet::{DevconfKnob, DevconfTarget, InIfaddr};
use crate::icmp::IcmpRateLimit;
use crate::ip_fragment::Ipv4Frags;
use crate::neighbour::{NeighParms, NeighTable};
use crate::protocol::NetProtocol;
use crate::random::HashRnd;
use crate::route::{Flowi4, NetnsIpv4, RtScope, RtnType};
use crate::route_exception::{FnheTable, RedirectPeers};
use crate::timers::Ipv4Timer;

/// The interface index of the loopback device, as in Linux (`lo` is
/// always the first device of a namespace).
pub const LOOPBACK_IFINDEX: u32 = 1;

/// The MTU of the loopback device (`LOOPBACK_MTU` in
/// `drivers/net/loopback.c`, 64 KiB).
pub const LOOPBACK_MTU: u32 = 65536;

/// What the IPv4 layer needs from the host's per-CPU context.
///
/// The host (`netstack`) implements it on its CPU context type, beside
/// [`SoftnetContext`] (the clock, this CPU's softnet data and so the
/// device table and `dev_queue_xmit`), [`NfHookContext`] (the netfilter
/// hooks) and [`TimerContext<Ipv4Timer>`] (this CPU's timer wheel, for
/// neighbour and fragment timers). The one method of its own reaches the
/// host-wide [`Ipv4Net`]; counters, sysctls and the buffer pool are reached
/// through it ([`Ipv4Net::mibs`], [`Ipv4Net::sysctl`], [`Ipv4Net::pool`]).
///
/// Every function of the layer is called from the CPU's runner (softirq
/// context) or from process context on that CPU; none blocks.
pub trait Ipv4Context: SoftnetContext + NfHookContext + TimerContext<Ipv4Timer> {
    /// The host's IPv4 state (`dev_net(skb->dev)->ipv4`).
    fn ipv4(&self) -> &Arc<Ipv4Net<Self>>;

    /// This CPU's cache of the device it last transmitted on, if the
    /// context keeps one (the default keeps none: every transmit reads
    /// the device table).
    fn xmit_dev_cache(&mut self) -> Option<&mut XmitDevCache> {
        None
    }
}

/// The device a CPU last transmitted on, as the output path reads it:
/// the softnet device and the hardware address, kept with the device
/// table's generation they were read in.
///
/// Mirrors `dst->dev` of the routes a CPU uses: Linux reaches the output
/// device through the route with no lookup and no reference count per
/// packet (the route holds the device). Here routes are plain values, so
/// the CPU keeps the last device instead; a transmit on it takes the
/// entry out, uses it and puts it back (a move, not an `Arc` clone), and
/// any change of the table (a device registered or removed, its MTU or
/// address changed) makes it stale. A stale entry still holds its device
/// until the CPU's next transmit replaces it, as a cached route holds its
/// device (`dev_hold()`) until the route is released.
#[derive(Default)]
pub struct XmitDevCache {
    entry: Option<XmitDev>,
}

impl fmt::Debug for XmitDevCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XmitDevCache")
            .field("ifindex", &self.entry.as_ref().map(|e| e.ifindex))
            .finish()
    }
}

impl XmitDevCache {
    /// Takes the entry if it is device `ifindex`'s of generation `genid`.
    #[inline]
    pub(crate) fn take(&mut self, ifindex: u32, genid: u64) -> Option<XmitDev> {
        if self
            .entry
            .as_ref()
            .is_some_and(|e| e.ifindex == ifindex && e.genid == genid)
        {
            self.entry.take()
        } else {
            None
        }
    }

    /// Keeps `entry` (replacing what a nested transmit may have left).
    #[inline]
    pub(crate) fn put(&mut self, entry: XmitDev) {
        self.entry = Some(entry);
    }
}

/// One [`XmitDevCache`] entry.
pub(crate) struct XmitDev {
    pub(crate) ifindex: u32,
    pub(crate) genid: u64,
    /// `None` for the built-in loopback.
    pub(crate) dev: Option<Arc<NetDev>>,
    pub(crate) dev_addr: EthernetAddress,
}

/// Runs the netfilter hooks of `hook`, then `okfn` — `NF_HOOK()` with the
/// `nf_hooks_needed` static-key test first, so that a point without hooks
/// costs one atomic load and the skb goes straight to `okfn`.
///
/// Mirrors the `NF_HOOK()` macro (`include/linux/netfilter.h`) as IPv4
/// calls it.
#[inline(always)]
pub(crate) fn nf_hook_ipv4<C: NfHookContext, R>(
    ctx: &mut C,
    hook: NfInetHooks,
    in_ifindex: u32,
    out_ifindex: u32,
    skb: SkBuff,
    okfn: impl FnOnce(&mut C, SkBuff) -> R,
) -> Result<R, NfConsumed> {
    if nf_hook_ipv4_none(ctx, hook, in_ifindex, out_ifindex) {
        return Ok(okfn(ctx, skb));
    }
    nf_hook_slow_ipv4(ctx, hook, in_ifindex, out_ifindex, skb, okfn)
}

/// Whether no hook is registered at `hook`, so that [`nf_hook_ipv4`]
/// would accept the datagram at once (traced as it does): lets a caller
/// continue with a direct call instead of the `okfn` closure, which
/// costs a move of the skb per hook point.
#[inline(always)]
pub(crate) fn nf_hook_ipv4_none<C: NfHookContext>(
    ctx: &C,
    hook: NfInetHooks,
    in_ifindex: u32,
    out_ifindex: u32,
) -> bool {
    if ctx.nf_hooks().nf_hook_entries_head(hook).is_none() {
        tracing::trace!(target: "netstack::netfilter", in_ifindex, out_ifindex, verdict = "NF_ACCEPT", hooks = 0, "{}", hook.c_name());
        return true;
    }
    false
}

/// The part of [`nf_hook_ipv4`] that runs registered hooks, kept out of
/// line so the hook-free path carries no copy of it. Mirrors
/// `nf_hook_slow()`.
#[cold]
#[inline(never)]
pub(crate) fn nf_hook_slow_ipv4<C: NfHookContext, R>(
    ctx: &mut C,
    hook: NfInetHooks,
    in_ifindex: u32,
    out_ifindex: u32,
    skb: SkBuff,
    okfn: impl FnOnce(&mut C, SkBuff) -> R,
) -> Result<R, NfConsumed> {
    NF_HOOK(
        ctx,
        &NfHookState::new(hook, in_ifindex, out_ifindex),
        skb,
        okfn,
    )
}

/// Continues a datagram a netfilter queue handler gives back with its
/// verdict: the remaining hooks of its point run ([`nf_reinject`]), then
/// the IPv4 step that point leads to.
///
/// Mirrors `nf_reinject()` calling `entry->state.okfn`: `ip_rcv_finish`
/// after PRE_ROUTING, `ip_local_deliver_finish` after LOCAL_IN,
/// `ip_forward_finish` after FORWARD, `dst_output` (`ip_output`) after
/// LOCAL_OUT and `ip_finish_output` after POST_ROUTING.
///
/// # Deviations from Linux
///
/// The skb carries no route, so the FORWARD, LOCAL_OUT and POST_ROUTING
/// continuations route the datagram again (toward the recorded output
/// device for POST_ROUTING); a datagram that no longer has a route is
/// dropped.
pub fn ip_nf_reinject<C: Ipv4Context>(
    ctx: &mut C,
    entry: NfQueueEntry<C>,
    verdict: NfVerdict,
) -> NetRx {
    let state = entry.state;
    let skb = match nf_reinject(entry, verdict, ctx) {
        NfHookResult::Continue(skb) => skb,
        NfHookResult::Consumed(NfConsumed::Stolen | NfConsumed::Queued) => return NetRx::Success,
        NfHookResult::Consumed(_) => return NetRx::Drop,
    };
    let net = Arc::clone(ctx.ipv4());
    crate::ip_input::ip_nf_continue(&net, ctx, skb, &state)
}

/// What the IPv4 layer keeps about one device.
///
/// The parts of `struct net_device` that output reads on every packet,
/// cached at [`Ipv4Net::inetdev_init`] so the packet path takes no
/// device lock.
#[derive(Clone)]
pub struct Ipv4Dev {
    /// The device's index.
    pub ifindex: u32,
    /// The softnet device to transmit on; `None` for the built-in loopback.
    pub dev: Option<Arc<NetDev>>,
    /// The MTU (`dev->mtu`).
    pub mtu: u32,
    /// The hardware address (`dev->dev_addr`).
    pub dev_addr: EthernetAddress,
    /// Whether this is a loopback device (`IFF_LOOPBACK`).
    pub loopback: bool,
}

impl fmt::Debug for Ipv4Dev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv4Dev")
            .field("ifindex", &self.ifindex)
            .field("mtu", &self.mtu)
            .field("dev_addr", &self.dev_addr)
            .field("loopback", &self.loopback)
            .finish_non_exhaustive()
    }
}

/// The devices with IPv4 state by ifindex (`dev_get_by_index()`'s part
/// for IPv4 output): ifindexes below [`DevTable::DIRECT`] in a vector
/// indexed by ifindex, so that the per-packet lookup is an index, not a
/// hash; others in a map.
struct DevTable {
    direct: Vec<Option<Ipv4Dev>>,
    other: HashMap<u32, Ipv4Dev, HashRnd>,
}

impl DevTable {
    /// The ifindexes kept in the vector.
    const DIRECT: u32 = 256;

    #[inline]
    fn get(&self, ifindex: u32) -> Option<&Ipv4Dev> {
        if ifindex < Self::DIRECT {
            self.direct.get(ifindex as usize)?.as_ref()
        } else {
            self.other.get(&ifindex)
        }
    }

    fn get_mut(&mut self, ifindex: u32) -> Option<&mut Ipv4Dev> {
        if ifindex < Self::DIRECT {
            self.direct.get_mut(ifindex as usize)?.as_mut()
        } else {
            self.other.get_mut(&ifindex)
        }
    }

    fn insert(&mut self, ifindex: u32, dev: Ipv4Dev) {
        if ifindex < Self::DIRECT {
            let i = ifindex as usize;
            if self.direct.len() <= i {
                self.direct.resize(i + 1, None);
            }
            self.direct[i] = Some(dev);
        } else {
            self.other.insert(ifindex, dev);
        }
    }

    fn remove(&mut self, ifindex: u32) {
        if ifindex < Self::DIRECT {
            if let Some(d) = self.direct.get_mut(ifindex as usize) {
                *d = None;
            }
        } else {
            self.other.remove(&ifindex);
        }
    }

    fn len(&self) -> usize {
        self.direct.iter().flatten().count() + self.other.len()
    }
}

/// The 256-slot protocol table, readable without a lock.
///
/// Mirrors `inet_protos[MAX_INET_PROTOS]`, an array of RCU pointers that
/// `inet_add_protocol()` fills with `cmpxchg()`. Without RCU, each slot's
/// first registration goes into a write-once cell that readers reach with
/// one atomic load; a registration after a removal (rare: Linux modules do
/// it on reload) goes to a locked overflow table. `state` says which is
/// current: 0 none, 1 the first, 2 the overflow.
pub(crate) struct InetProtos<C: ?Sized> {
    first: Box<[OnceLock<Arc<dyn NetProtocol<C>>>; 256]>,
    state: Box<[AtomicU8; 256]>,
    later: RwLock<Vec<Option<Arc<dyn NetProtocol<C>>>>>,
    update: Mutex<()>,
}

/// A protocol handler borrowed from [`InetProtos`].
pub(crate) enum ProtoRef<'a, C: ?Sized> {
    /// The slot's first registration.
    First(&'a Arc<dyn NetProtocol<C>>),
    /// A later one, taken from the overflow table with a reference count.
    Later(Arc<dyn NetProtocol<C>>),
}

impl<C: ?Sized> ProtoRef<'_, C> {
    /// The handler.
    pub(crate) fn get(&self) -> &Arc<dyn NetProtocol<C>> {
        match self {
            ProtoRef::First(p) => p,
            ProtoRef::Later(p) => p,
        }
    }
}

const PROTO_NONE: u8 = 0;
const PROTO_FIRST: u8 = 1;
const PROTO_LATER: u8 = 2;

impl<C: ?Sized> InetProtos<C> {
    fn new() -> InetProtos<C> {
        InetProtos {
            // Fixed 256-slot arrays: a `u8` protocol needs no bounds check.
            first: Box::new(core::array::from_fn(|_| OnceLock::new())),
            state: Box::new(core::array::from_fn(|_| AtomicU8::new(PROTO_NONE))),
            later: RwLock::new(vec![None; 256]),
            update: Mutex::new(()),
        }
    }

    #[inline(always)]
    fn get(&self, protocol: u8) -> Option<ProtoRef<'_, C>> {
        let i = usize::from(protocol);
        // Acquire: pairs with the Release in add(); the handler written
        // before is visible.
        match self.state[i].load(Ordering::Acquire) {
            PROTO_FIRST => self.first[i].get().map(ProtoRef::First),
            PROTO_LATER => self.get_later(i),
            _ => None,
        }
    }

    /// The slot's first registration when it is the current one: the
    /// common case, for the delivery path (two acquire loads, no enum to
    /// build or drop). `None` sends the caller to [`get`](Self::get).
    #[inline(always)]
    fn first(&self, protocol: u8) -> Option<&Arc<dyn NetProtocol<C>>> {
        let i = usize::from(protocol);
        // Acquire: pairs with the Release in add(), as in get().
        if self.state[i].load(Ordering::Acquire) == PROTO_FIRST {
            self.first[i].get()
        } else {
            None
        }
    }

    /// A registration made after a removal, from the locked overflow
    /// table (rare; off the delivery path).
    #[cold]
    #[inline(never)]
    fn get_later(&self, i: usize) -> Option<ProtoRef<'_, C>> {
        self.later.read_recursive()[i].clone().map(ProtoRef::Later)
    }

    fn add(&self, prot: Arc<dyn NetProtocol<C>>, protocol: u8) -> Result<(), Errno> {
        let _u = self.update.lock();
        let i = usize::from(protocol);
        if self.state[i].load(Ordering::Relaxed) != PROTO_NONE {
            return Err(Errno::Busy);
        }
        match self.first[i].set(prot) {
            Ok(()) => self.state[i].store(PROTO_FIRST, Ordering::Release),
            Err(prot) => {
                self.later.write()[i] = Some(prot);
                self.state[i].store(PROTO_LATER, Ordering::Release);
            }
        }
        Ok(())
    }

    fn del(&self, prot: &Arc<dyn NetProtocol<C>>, protocol: u8) -> Result<(), Errno> {
        let _u = self.update.lock();
        let i = usize::from(protocol);
        let current = match self.state[i].load(Ordering::Relaxed) {
            PROTO_FIRST => self.first[i].get().is_some_and(|p| Arc::ptr_eq(p, prot)),
            PROTO_LATER => self.later.read()[i]
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, prot)),
            _ => false,
        };
        if !current {
            return Err(Errno::NoEnt);
        }
        self.state[i].store(PROTO_NONE, Ordering::Release);
        self.later.write()[i] = None;
        Ok(())
    }
}

/// `IN4_ADDR_HSIZE`: slots of the local-address table.
const IN4_ADDR_HSIZE: usize = 256;

/// The host's local unicast addresses, readable without a lock.
///
/// Mirrors `inet_addr_lst` and `inet_lookup_ifaddr_rcu()` in
/// `net/ipv4/devinet.c`: Linux keeps every interface address in an
/// RCU-protected hash so that `__ip_dev_find()` takes no lock. Here the
/// table is open-addressed over atomics and rebuilt (under the routing
/// lock) after every address change; readers use it only to recognise a
/// destination as local before taking the routing lock, and fall back to
/// the FIB on a miss, so a reader that races a rebuild at worst takes the
/// slow path (or, for an address being removed, delivers locally once, as
/// an RCU reader in Linux may).
struct InetAddrLst {
    slots: Box<[AtomicU32; IN4_ADDR_HSIZE]>,
}

impl InetAddrLst {
    fn new() -> InetAddrLst {
        InetAddrLst {
            slots: Box::new(core::array::from_fn(|_| AtomicU32::new(0))),
        }
    }

    fn hash(a: u32) -> usize {
        (a.wrapping_mul(0x9e37_79b9) >> 24) as usize
    }

    /// Refills the table from the addresses of `netns` (loopback addresses
    /// excluded: they are local only on `lo`). Past half full it stays
    /// empty, which sends every reader to the FIB.
    fn rebuild(&self, netns: &NetnsIpv4) {
        let mut new = vec![0u32; IN4_ADDR_HSIZE];
        let mut n = 0;
        for ifa in netns.devices.iter().flat_map(|d| d.ifa_list().iter()) {
            let a = ifa.ifa_local.to_bits();
            if a == 0 || ifa.ifa_local.is_loopback() {
                continue;
            }
            n += 1;
            let mut i = Self::hash(a);
            while new[i] != 0 && new[i] != a {
                i = (i + 1) % IN4_ADDR_HSIZE;
            }
            new[i] = a;
        }
        if n > IN4_ADDR_HSIZE / 2 {
            new.fill(0);
        }
        // Release: a reader that sees an address sees the routes the
        // change installed (they were written before, under the lock).
        for (slot, v) in self.slots.iter().zip(new) {
            slot.store(v, Ordering::Release);
        }
    }

    /// Whether `a` is one of the host's (non-loopback) addresses.
    #[inline(always)]
    fn contains(&self, a: Ipv4Addr) -> bool {
        let a = a.to_bits();
        let mut i = Self::hash(a);
        for _ in 0..IN4_ADDR_HSIZE {
            match self.slots[i].load(Ordering::Acquire) {
                0 => return false,
                v if v == a => return true,
                _ => i = (i + 1) % IN4_ADDR_HSIZE,
            }
        }
        false
    }
}

/// `IP_IDENTS_SZ`: buckets of the per-destination IP ID generator.
const IP_IDENTS_SZ: usize = 2048;

/// The per-destination IP identification generator.
///
/// Mirrors `ip_idents`/`ip_tstamps` and `ip_idents_reserve()` in
/// `net/ipv4/route.c`: a hash of (daddr, saddr, protocol) keyed per host
/// picks a bucket; each bucket is a counter that also jumps forward by a
/// random amount below the jiffies elapsed since it was last used, so an
/// observer cannot count another host's traffic.
///
/// # Deviations from Linux
///
/// The hash is a keyed 64-bit mix rather than SipHash, and the random jump
/// is drawn from a hash of (key, bucket, jiffies) so that a seeded run is
/// reproducible. Neither guards a secret here.
struct IpIdents {
    key: u64,
    idents: Box<[AtomicU32]>,
    tstamps: Box<[AtomicU32]>,
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl IpIdents {
    fn new(seed: u64) -> IpIdents {
        IpIdents {
            key: mix64(seed ^ 0x6970_5f69_6465_6e74),
            idents: (0..IP_IDENTS_SZ).map(|_| AtomicU32::new(0)).collect(),
            tstamps: (0..IP_IDENTS_SZ).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// Mirrors `__ip_select_ident()` → `ip_idents_reserve()`: reserves
    /// `segs` consecutive ids for the flow and returns the first.
    fn reserve(
        &self,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
        protocol: u8,
        segs: u16,
        now: Instant,
    ) -> u16 {
        let hash = mix64(
            self.key
                ^ (u64::from(daddr.to_bits()) << 32 | u64::from(saddr.to_bits()))
                ^ u64::from(protocol).rotate_left(17),
        );
        let bucket = (hash as usize) & (IP_IDENTS_SZ - 1);
        let jiffies = (now.as_millis() * HZ / 1000) as u32;
        let old = self.tstamps[bucket].load(Ordering::Relaxed);
        let mut delta = 0;
        if old != jiffies
            && self.tstamps[bucket]
                .compare_exchange(old, jiffies, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let span = u64::from(jiffies.wrapping_sub(old));
            let r = mix64(self.key ^ (bucket as u64) << 32 ^ u64::from(jiffies));
            delta = (((r >> 32) * span) >> 32) as u32;
        }
        // Relaxed: ids order nothing; uniqueness comes from the RMW.
        let v = self.idents[bucket].fetch_add(u32::from(segs) + delta, Ordering::Relaxed);
        v.wrapping_add(delta) as u16
    }
}

/// The IPv4 state of one host (network namespace).
///
/// Mirrors `struct netns_ipv4` with the IPv4 globals: addresses and
/// routes ([`NetnsIpv4`]), the ARP table ([`NeighTable`]), the reassembly
/// queues ([`Ipv4Frags`]), the ICMP rate limiters, the protocol table
/// (`inet_protos[]`) and the IP ID generator. Shared as `Arc<Ipv4Net<C>>`
/// by every CPU's context; each part has its own lock (see the module
/// doc for their order).
pub struct Ipv4Net<C: ?Sized> {
    sysctl: Arc<Sysctl>,
    mibs: Arc<NetMibs>,
    pool: PagePool,
    netns: RwLock<NetnsIpv4>,
    devs: RwLock<DevTable>,
    /// Bumped by every change of `devs` ([`XmitDevCache`] entries of an
    /// older generation are stale).
    devs_genid: AtomicU64,
    arp_tbl: Mutex<NeighTable>,
    /// The ARP table's generation ([`NeighTable::genid_handle`]).
    neigh_genid: Arc<AtomicU64>,
    frags: Mutex<Ipv4Frags>,
    icmp_limit: Mutex<IcmpRateLimit>,
    inet_protos: InetProtos<C>,
    idents: IpIdents,
    inet_addr_lst: InetAddrLst,
    rt_genid: AtomicU64,
    /// Path MTU exceptions by destination (`fib_nh_exception`), and
    /// whether there is any (read without the lock on every lookup).
    fnhe: Mutex<FnheTable>,
    fnhe_any: AtomicBool,
    /// When the first exception expires, in ns of the host clock
    /// (`u64::MAX`: none).
    fnhe_next_expiry: AtomicU64,
    /// The redirects sent per source (`inet_peer` rate limiting).
    redirect_peers: Mutex<RedirectPeers>,
}

// The host shares one `Ipv4Net` between its CPU threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Ipv4Net<()>>();
};

impl<C: ?Sized> fmt::Debug for Ipv4Net<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv4Net")
            .field("devs", &self.devs.read().len())
            .field("routes", &self.netns.read().fib.nr_routes())
            .field("neighbours", &self.arp_tbl.lock().len())
            .finish_non_exhaustive()
    }
}

impl<C: ?Sized> Ipv4Net<C> {
    /// The IPv4 state of a new host: the loopback device `lo` (ifindex
    /// [`LOOPBACK_IFINDEX`], `127.0.0.1/8`), an empty ARP table and
    /// fragment table configured from `sysctl`, the ICMP limiters, no
    /// protocol registered. `seed` drives every random choice (neighbour
    /// reachable time, ICMP credit, IP ids), so equal seeds give equal runs.
    ///
    /// Mirrors the per-namespace init of `inet_init()`: `ip_rt_init()`,
    /// `arp_init()` → `neigh_table_init()`, `ipfrag_init()`,
    /// `icmp_sk_init()`, plus `loopback_net_init()` and the
    /// `127.0.0.1/8` address `inet_rtm_newaddr` gives `lo`.
    pub fn new(
        sysctl: Arc<Sysctl>,
        mibs: Arc<NetMibs>,
        pool: PagePool,
        seed: u64,
        now: Instant,
    ) -> Ipv4Net<C> {
        let mut netns = NetnsIpv4::new();
        // `arp_notify` for conf/all and conf/default, when the host's
        // sysctl registry carries them (Linux's default, 0, otherwise).
        for (target, name) in [
            (DevconfTarget::All, "net.ipv4.conf.all.arp_notify"),
            (DevconfTarget::Default, "net.ipv4.conf.default.arp_notify"),
        ] {
            if let Ok(SysctlValue::Int(v)) = sysctl.get(name) {
                let v = i32::try_from(v).unwrap_or(i32::MAX);
                let _ = netns
                    .devices
                    .devinet_conf_set(target, DevconfKnob::ArpNotify, v);
            }
        }
        // Both succeed on a fresh table; errors would only mean lo exists.
        let _ = netns.devices.inetdev_init(LOOPBACK_IFINDEX, "lo", true);
        let _ = netns.inet_rtm_newaddr(
            InIfaddr::new(LOOPBACK_IFINDEX, Ipv4Addr::LOCALHOST, 8, "lo").with_scope(RtScope::Host),
        );
        let mut devs = DevTable {
            direct: Vec::new(),
            other: HashMap::with_hasher(HashRnd(mix64(seed ^ 3))),
        };
        devs.insert(
            LOOPBACK_IFINDEX,
            Ipv4Dev {
                ifindex: LOOPBACK_IFINDEX,
                dev: None,
                mtu: LOOPBACK_MTU,
                dev_addr: EthernetAddress::ZERO,
                loopback: true,
            },
        );
        let parms = NeighParms::from_sysctl(&sysctl);
        let arp_tbl = NeighTable::new(parms, mix64(seed ^ 1), now);
        Ipv4Net {
            neigh_genid: arp_tbl.genid_handle(),
            arp_tbl: Mutex::new(arp_tbl),
            frags: Mutex::new(Ipv4Frags::new(&sysctl)),
            icmp_limit: Mutex::new(IcmpRateLimit::new(mix64(seed ^ 2))),
            inet_protos: InetProtos::new(),
            idents: IpIdents::new(seed),
            inet_addr_lst: InetAddrLst::new(),
            rt_genid: AtomicU64::new(1),
            fnhe: Mutex::new(FnheTable::default()),
            fnhe_any: AtomicBool::new(false),
            fnhe_next_expiry: AtomicU64::new(u64::MAX),
            redirect_peers: Mutex::new(RedirectPeers::default()),
            netns: RwLock::new(netns),
            devs: RwLock::new(devs),
            devs_genid: AtomicU64::new(0),
            sysctl,
            mibs,
            pool,
        }
    }

    /// The host's sysctls.
    pub fn sysctl(&self) -> &Arc<Sysctl> {
        &self.sysctl
    }

    /// The host's SNMP counters (`net->mib`).
    pub fn mibs(&self) -> &Arc<NetMibs> {
        &self.mibs
    }

    /// The buffer pool the layer allocates from (ICMP messages, ARP,
    /// fragments, reassembled datagrams).
    pub fn pool(&self) -> &PagePool {
        &self.pool
    }

    /// Reads the addresses and routes.
    pub fn with_netns<R>(&self, f: impl FnOnce(&NetnsIpv4) -> R) -> R {
        f(&self.netns.read())
    }

    /// Changes the addresses and routes (`ip addr add`, `ip route add`).
    pub fn with_netns_mut<R>(&self, f: impl FnOnce(&mut NetnsIpv4) -> R) -> R {
        let mut netns = self.netns.write();
        let r = f(&mut netns);
        self.inet_addr_lst.rebuild(&netns);
        self.rt_cache_flush();
        r
    }

    /// Whether `addr` is one of this host's unicast addresses (loopback
    /// addresses aside), without taking a lock.
    ///
    /// Mirrors `inet_lookup_ifaddr_rcu()`.
    #[inline]
    pub fn inet_lookup_ifaddr(&self, addr: Ipv4Addr) -> bool {
        self.inet_addr_lst.contains(addr)
    }

    /// Reads or changes the ARP table (`ip neigh`). Actions the table
    /// hands back (solicitations, released packets) are the caller's: use
    /// the table's own methods only for inspection and administration.
    pub fn with_arp_tbl<R>(&self, f: impl FnOnce(&mut NeighTable) -> R) -> R {
        f(&mut self.arp_tbl.lock())
    }

    /// Reads the reassembly queues.
    pub fn with_frags<R>(&self, f: impl FnOnce(&Ipv4Frags) -> R) -> R {
        f(&self.frags.lock())
    }

    pub(crate) fn arp_tbl(&self) -> &Mutex<NeighTable> {
        &self.arp_tbl
    }

    pub(crate) fn frags(&self) -> &Mutex<Ipv4Frags> {
        &self.frags
    }

    pub(crate) fn icmp_limit(&self) -> &Mutex<IcmpRateLimit> {
        &self.icmp_limit
    }

    pub(crate) fn netns(&self) -> &RwLock<NetnsIpv4> {
        &self.netns
    }

    /// Attaches IPv4 to a registered softnet device: records its MTU and
    /// address for the output path and gives it an (empty) address list.
    ///
    /// Mirrors `inetdev_event(NETDEV_REGISTER)` → `inetdev_init()`.
    /// Errors: [`Errno::Exist`] when the ifindex already has IPv4 state
    /// (ifindex [`LOOPBACK_IFINDEX`] is `lo`'s).
    pub fn inetdev_init(&self, dev: &Arc<NetDev>) -> Result<(), Errno> {
        let ifindex = dev.ifindex();
        let (mtu, flags) = dev.with_device(|d| (d.mtu(), d.flags()));
        let loopback = flags.contains(NetDeviceFlags::LOOPBACK);
        {
            let mut netns = self.netns.write();
            netns.devices.inetdev_init(ifindex, dev.name(), loopback)?;
            netns.devices.set_mtu(ifindex, mtu)?;
        }
        self.rt_cache_flush();
        self.devs.write().insert(
            ifindex,
            Ipv4Dev {
                ifindex,
                dev: Some(Arc::clone(dev)),
                mtu,
                dev_addr: EthernetAddress(dev.dev_addr()),
                loopback,
            },
        );
        self.devs_changed();
        Ok(())
    }

    /// Detaches IPv4 from a device that goes away: its addresses and
    /// routes are removed, its neighbours flushed (their queued packets
    /// dropped; timers armed on other CPUs find no entry and do nothing).
    ///
    /// Mirrors `inetdev_event(NETDEV_UNREGISTER)` → `inetdev_destroy()`,
    /// `fib_disable_ip()` and `neigh_ifdown()`. Errors: [`Errno::NoDev`];
    /// [`Errno::Inval`] for `lo`.
    pub fn inetdev_destroy<T: TimerContext<Ipv4Timer>>(
        &self,
        timers: &mut T,
        ifindex: u32,
    ) -> Result<(), Errno> {
        if ifindex == LOOPBACK_IFINDEX {
            return Err(Errno::Inval);
        }
        {
            let mut netns = self.netns.write();
            netns.inetdev_destroy(ifindex)?;
            self.inet_addr_lst.rebuild(&netns);
        }
        self.rt_cache_flush();
        self.devs.write().remove(ifindex);
        self.devs_changed();
        self.arp_tbl.lock().neigh_ifdown(timers, ifindex);
        Ok(())
    }

    /// Records a device's new MTU. Mirrors `inetdev_event(NETDEV_CHANGEMTU)`.
    /// Errors: [`Errno::NoDev`] for a device without IPv4 state.
    pub fn netdev_change_mtu(&self, ifindex: u32, mtu: u32) -> Result<(), Errno> {
        self.devs.write().get_mut(ifindex).ok_or(Errno::NoDev)?.mtu = mtu;
        self.devs_changed();
        self.netns.write().devices.set_mtu(ifindex, mtu)?;
        self.rt_cache_flush();
        Ok(())
    }

    /// Records a device's new hardware address (read from its softnet
    /// device) and flushes the route cache.
    ///
    /// Mirrors the `NETDEV_CHANGEADDR` work of `arp_netdev_event()` (see
    /// [`inetdev_event`](crate::inetdev_event), which also announces the
    /// addresses). Errors: [`Errno::NoDev`] for a device without IPv4
    /// state.
    pub fn netdev_change_addr(&self, ifindex: u32) -> Result<(), Errno> {
        {
            let mut devs = self.devs.write();
            let d = devs.get_mut(ifindex).ok_or(Errno::NoDev)?;
            if let Some(nd) = d.dev.as_ref() {
                d.dev_addr = EthernetAddress(nd.dev_addr());
            }
        }
        self.devs_changed();
        self.rt_cache_flush();
        Ok(())
    }

    /// Makes every cached route obsolete. Mirrors `rt_cache_flush()`
    /// (`rt_genid_bump_ipv4()`): sockets compare their cached route's
    /// generation with [`Ipv4Net::rt_genid`].
    pub fn rt_cache_flush(&self) {
        self.rt_genid.fetch_add(1, Ordering::Release);
    }

    /// The ARP table's generation ([`NeighTable::genid`]) read without its
    /// lock: whether a socket's [`NeighHint`](crate::NeighHint) may still
    /// hold. Only a hint; the output path checks it again under the lock.
    #[inline]
    pub fn neigh_genid(&self) -> u64 {
        self.neigh_genid.load(Ordering::Acquire)
    }

    /// The path MTU an exception sets toward `daddr` at `now`, if one
    /// applies. Mirrors the `rt_pmtu` part of `ipv4_mtu()`.
    #[inline]
    pub fn rt_pmtu(&self, daddr: Ipv4Addr, now: Instant) -> Option<u32> {
        if !self.fnhe_any.load(Ordering::Acquire) {
            return None;
        }
        self.fnhe.lock().pmtu(daddr, now)
    }

    /// Whether a socket may bind to `addr`: one of this host's addresses,
    /// a broadcast or multicast one, or any address with
    /// `net.ipv4.ip_nonlocal_bind` (the caller handles `0.0.0.0`). Mirrors
    /// `inet_addr_valid_or_nonlocal()` with `inet_addr_type_table()`
    /// (no `IP_FREEBIND`/`IP_TRANSPARENT`).
    pub fn inet_addr_valid_or_nonlocal(&self, addr: Ipv4Addr) -> bool {
        if self.sysctl.get_int(Sysctl::IP_NONLOCAL_BIND) != 0 {
            return true;
        }
        matches!(
            self.netns.read().inet_addr_type(addr),
            RtnType::Local | RtnType::Broadcast | RtnType::Multicast
        )
    }

    /// Whether any path MTU exception is kept (a load, no lock).
    #[inline]
    pub fn has_pmtu_exceptions(&self) -> bool {
        self.fnhe_any.load(Ordering::Acquire)
    }

    /// The exception toward `daddr` that applies at `now`: its path MTU
    /// and first hop ([`crate::ip_route_output_key`] binds them to the
    /// route, `rt_bind_exception()`).
    #[inline]
    pub fn rt_exception_at(&self, daddr: Ipv4Addr, now: Instant) -> Option<crate::FibNhException> {
        if !self.fnhe_any.load(Ordering::Acquire) {
            return None;
        }
        self.fnhe.lock().lookup(daddr, now).copied()
    }

    /// An ICMP redirect from `old_gw` (`code` 0–3: net, host, net and TOS,
    /// host and TOS) says `new_gw` is the better first hop toward
    /// `daddr`. Taken (as an exception for `net.ipv4.route.gc_timeout`,
    /// 300 s; cached routes flushed) only when the route toward `daddr`
    /// goes through `old_gw` itself, the device accepts redirects
    /// (`accept_redirects` of `conf/all` or `conf/default`; of both on a
    /// router) and `new_gw` is another unicast address, not multicast,
    /// broadcast or `0.0.0.0/8`. Returns whether it was taken.
    ///
    /// Mirrors `ip_do_redirect()` → `__ip_do_redirect()` with the
    /// `shared_media` default (1), under which `secure_redirects` is not
    /// consulted.
    ///
    /// # Deviations from Linux
    ///
    /// Linux takes the redirect only once the new gateway's neighbour
    /// entry is valid, and otherwise starts resolving it (a later redirect
    /// is taken); here it is taken at once and the output path resolves
    /// the new gateway on first use. The per-device `accept_redirects` is
    /// `conf/default`'s (there is no per-device copy).
    pub fn ip_rt_do_redirect(
        &self,
        daddr: Ipv4Addr,
        old_gw: Ipv4Addr,
        new_gw: Ipv4Addr,
        code: u8,
        now: Instant,
    ) -> bool {
        if code > 3 {
            return false;
        }
        let mut fl4 = Flowi4::new(daddr, 0);
        let (oif, gateway) = {
            let netns = self.netns.read();
            let Ok(rt) = netns.ip_route_output_key(&mut fl4) else {
                return false;
            };
            if rt.rt_type != RtnType::Unicast || rt.oif == LOOPBACK_IFINDEX {
                return false;
            }
            if new_gw == old_gw
                || new_gw.is_multicast()
                || new_gw.is_broadcast()
                || new_gw.octets()[0] == 0
                || netns.inet_addr_type(new_gw) != RtnType::Unicast
            {
                return false;
            }
            (rt.oif, rt.gateway)
        };
        let current = self
            .rt_exception_at(daddr, now)
            .and_then(|e| e.gw.filter(|_| e.oif == oif))
            .or(gateway);
        if current != Some(old_gw) {
            return false;
        }
        let get = |k| self.sysctl.get_int(k) != 0;
        let (all, dflt) = (
            get(Sysctl::CONF_ALL_ACCEPT_REDIRECTS),
            get(Sysctl::CONF_DEFAULT_ACCEPT_REDIRECTS),
        );
        let rx = if get(Sysctl::IP_FORWARD) {
            all && dflt
        } else {
            all || dflt
        };
        if !rx {
            return false;
        }
        let expires =
            Duration::from_secs(self.sysctl.get_int(Sysctl::ROUTE_GC_TIMEOUT).max(0) as u64);
        let changed = {
            let mut t = self.fnhe.lock();
            let changed = t.update_gw(daddr, oif, new_gw, expires, now);
            self.fnhe_published(&t);
            changed
        };
        if changed {
            self.rt_cache_flush();
        }
        true
    }

    /// Whether this router should tell `saddr` of a better first hop for
    /// the datagram it is forwarding back out of the device it came in on
    /// (`send_redirects` of `conf/all` or `conf/default`), and the rate
    /// limit allows one now. Mirrors the `IPSKB_DOREDIRECT` test of
    /// `__mkroute_input()` (with `shared_media`'s default, 1) and
    /// `ip_rt_send_redirect()`'s limiter.
    pub fn ip_rt_send_redirect_allowed(&self, saddr: Ipv4Addr, now: Instant) -> bool {
        let tx = self.sysctl.get_int(Sysctl::CONF_ALL_SEND_REDIRECTS) != 0
            || self.sysctl.get_int(Sysctl::CONF_DEFAULT_SEND_REDIRECTS) != 0;
        tx && self.redirect_peers.lock().allow(saddr, now)
    }

    /// The exception toward `daddr` (expired or not), for `ip route get`.
    pub fn rt_exception(&self, daddr: Ipv4Addr) -> Option<crate::FibNhException> {
        self.fnhe.lock().get(daddr).copied()
    }

    /// "Fragmentation needed" said the path toward `daddr` carries at most
    /// `mtu` bytes: an exception lowers the MTU of the routes toward it
    /// for `net.ipv4.route.mtu_expires` (600 s), never below
    /// `net.ipv4.route.min_pmtu` (552). Returns whether it changed
    /// anything (cached routes are then stale: [`Ipv4Net::rt_cache_flush`]).
    /// A destination with no route, or routed to this host, is ignored.
    ///
    /// Mirrors `ipv4_update_pmtu()` / `ipv4_sk_update_pmtu()` →
    /// `__ip_rt_update_pmtu()` (see [`FnheTable::update_pmtu`]).
    pub fn ip_rt_update_pmtu(&self, daddr: Ipv4Addr, mtu: u32, now: Instant) -> bool {
        let mut fl4 = Flowi4::new(daddr, 0);
        let dev_mtu = match self.netns.read().ip_route_output_key(&mut fl4) {
            Ok(rt) if rt.rt_type == RtnType::Unicast && rt.oif != LOOPBACK_IFINDEX => rt.mtu,
            _ => return false,
        };
        let old_mtu = self.rt_pmtu(daddr, now).map_or(dev_mtu, |p| p.min(dev_mtu));
        let min_pmtu = self.sysctl.get_int(Sysctl::ROUTE_MIN_PMTU).max(68) as u32;
        let expires =
            Duration::from_secs(self.sysctl.get_int(Sysctl::ROUTE_MTU_EXPIRES).max(0) as u64);
        let changed = {
            let mut t = self.fnhe.lock();
            let changed = t.update_pmtu(daddr, old_mtu, mtu, min_pmtu, expires, now);
            self.fnhe_published(&t);
            changed
        };
        if changed {
            self.rt_cache_flush();
        }
        changed
    }

    /// Publishes what the lock-free readers of the exception table look
    /// at: whether there is one, and when the first expires.
    fn fnhe_published(&self, t: &FnheTable) {
        self.fnhe_any.store(!t.is_empty(), Ordering::Release);
        let next = t.next_expiry().map_or(u64::MAX, Instant::as_nanos);
        self.fnhe_next_expiry.store(next, Ordering::Release);
    }

    /// The route generation for a socket checking its cached route at
    /// `now`: when a path MTU exception has expired since, it is dropped
    /// and the generation bumped, so cached routes see the device's MTU
    /// again. Without exceptions, one atomic load more than
    /// [`Ipv4Net::rt_genid`].
    /// `now` is read only while an exception is kept.
    #[inline]
    pub fn rt_genid_at(&self, now: impl FnOnce() -> Instant) -> u64 {
        let next = self.fnhe_next_expiry.load(Ordering::Acquire);
        let now = if next == u64::MAX { None } else { Some(now()) };
        if let Some(now) = now.filter(|now| next <= now.as_nanos()) {
            let mut t = self.fnhe.lock();
            if t.expire(now) > 0 {
                self.rt_cache_flush();
            }
            self.fnhe_published(&t);
        }
        self.rt_genid()
    }

    /// The route generation. Mirrors `rt_genid_ipv4()`.
    #[inline]
    pub fn rt_genid(&self) -> u64 {
        self.rt_genid.load(Ordering::Acquire)
    }

    /// Makes every [`XmitDevCache`] entry stale (after a change of the
    /// device table).
    fn devs_changed(&self) {
        self.devs_genid.fetch_add(1, Ordering::Release);
    }

    /// The device table's generation ([`XmitDevCache`]).
    #[inline]
    pub(crate) fn devs_genid(&self) -> u64 {
        self.devs_genid.load(Ordering::Acquire)
    }

    /// Whether device `ifindex` sums TCP and UDP over IPv4 itself
    /// (`dev->features & (NETIF_F_IP_CSUM | NETIF_F_HW_CSUM)`), so that a
    /// transport may leave `CHECKSUM_PARTIAL` for it; `false` for the
    /// loopback and an unknown device.
    pub fn dev_ip_csum_offload(&self, ifindex: u32) -> bool {
        self.devs
            .read()
            .get(ifindex)
            .and_then(|d| d.dev.as_ref())
            .is_some_and(|nd| {
                nd.features()
                    .intersects(netcore::NetdevFeatures::IP_CSUM | netcore::NetdevFeatures::HW_CSUM)
            })
    }

    /// The IPv4 view of device `ifindex`.
    pub fn dev(&self, ifindex: u32) -> Option<Ipv4Dev> {
        self.devs.read().get(ifindex).cloned()
    }

    /// What the transmit of every packet reads of device `ifindex`: its
    /// softnet device (`None` for the built-in loopback) and hardware
    /// address; [`dev`](Self::dev) without the copy of the rest, inline.
    #[inline]
    pub(crate) fn dev_xmit(&self, ifindex: u32) -> Option<(Option<Arc<NetDev>>, EthernetAddress)> {
        let devs = self.devs.read();
        let d = devs.get(ifindex)?;
        Some((d.dev.clone(), d.dev_addr))
    }

    /// Registers `prot` as the handler of IP protocol `protocol`.
    ///
    /// Mirrors `inet_add_protocol()` in `net/ipv4/protocol.c`.
    /// Errors: [`Errno::Busy`] when the slot is taken (Linux returns -1).
    pub fn inet_add_protocol(
        &self,
        prot: Arc<dyn NetProtocol<C>>,
        protocol: u8,
    ) -> Result<(), Errno> {
        self.inet_protos.add(prot, protocol)
    }

    /// Removes `prot` from IP protocol `protocol`. A packet already in the
    /// handler finishes there (Linux waits for that with
    /// `synchronize_net()`; here the table keeps the handler alive).
    ///
    /// Mirrors `inet_del_protocol()`. Errors: [`Errno::NoEnt`] when `prot`
    /// is not the registered handler.
    pub fn inet_del_protocol(
        &self,
        prot: &Arc<dyn NetProtocol<C>>,
        protocol: u8,
    ) -> Result<(), Errno> {
        self.inet_protos.del(prot, protocol)
    }

    /// The handler of IP protocol `protocol` (`inet_protos[protocol]`).
    pub fn inet_protocol(&self, protocol: u8) -> Option<Arc<dyn NetProtocol<C>>> {
        self.inet_protos.get(protocol).map(|r| Arc::clone(r.get()))
    }

    /// The handler of `protocol`, borrowed for the length of one call, with
    /// no lock or reference count when it is the slot's first registration
    /// (the common case: transports register once at boot).
    #[inline(always)]
    pub(crate) fn inet_protocol_ref(&self, protocol: u8) -> Option<ProtoRef<'_, C>> {
        self.inet_protos.get(protocol)
    }

    /// The handler of `protocol` when it is the slot's first registration
    /// (see [`inet_protocol_ref`](Self::inet_protocol_ref)); `None` for a
    /// later registration or none.
    #[inline(always)]
    pub(crate) fn inet_protocol_first(&self, protocol: u8) -> Option<&Arc<dyn NetProtocol<C>>> {
        self.inet_protos.first(protocol)
    }

    /// Reserves `segs` IP ids for datagrams from `saddr` to `daddr` of
    /// `protocol`; returns the first.
    ///
    /// Mirrors `__ip_select_ident()`.
    #[doc(alias = "__ip_select_ident")]
    pub fn ip_select_ident(
        &self,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
        protocol: u8,
        segs: u16,
        now: Instant,
    ) -> u16 {
        self.idents
            .reserve(daddr, saddr, protocol, segs.max(1), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);
    impl NetProtocol<()> for Named {
        fn handler(
            &self,
            _skb: SkBuff,
            _ctx: &mut (),
        ) -> Result<(), (SkBuff, crate::protocol::IcmpError)> {
            Ok(())
        }
        fn name(&self) -> &str {
            self.0
        }
    }

    #[test]
    fn the_xmit_dev_cache_hands_its_entry_only_to_its_device_and_generation() {
        let mut c = XmitDevCache::default();
        assert!(c.take(2, 0).is_none());
        c.put(XmitDev {
            ifindex: 2,
            genid: 5,
            dev: None,
            dev_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        });
        // Another device, or the same one after a change of the table:
        // no entry, and the cached one stays for its own device.
        assert!(c.take(3, 5).is_none());
        assert!(c.take(2, 6).is_none());
        let e = c.take(2, 5).expect("the cached device");
        assert_eq!((e.ifindex, e.dev_addr.0[5]), (2, 1));
        // Taken out for the transmit: a nested transmit finds none.
        assert!(c.take(2, 5).is_none());
        assert!(format!("{c:?}").contains("None"));
    }

    /// Every change of the device table moves its generation, so no CPU
    /// transmits on a cached device entry older than the change; a
    /// datagram sent after the change goes out on the new state, one
    /// sent on an unchanged table reuses the entry.
    #[test]
    fn every_change_of_the_device_table_makes_cached_devices_stale() {
        use crate::testutil::TestNetwork;
        let mut n = TestNetwork::new();
        let a = n.add_host(Sysctl::new());
        let b = n.add_host(Sysctl::new());
        let g0 = n.hosts[a].ipv4.devs_genid();
        let ia = n.hosts[a].add_device(1, 1500, Ipv4Addr::new(198, 18, 0, 1), 24);
        let ib = n.hosts[b].add_device(2, 1500, Ipv4Addr::new(198, 18, 0, 2), 24);
        n.connect(&[(a, ia), (b, ib)]);
        let net = Arc::clone(&n.hosts[a].ipv4);
        let g1 = net.devs_genid();
        assert!(g1 > g0, "registering a device");
        n.hosts[a]
            .ping(Ipv4Addr::new(198, 18, 0, 2), 1, 2, 8)
            .unwrap();
        n.run_until_idle();
        // The CPU kept eth0 for its transmits.
        let host = &mut n.hosts[a];
        assert!(host.cpu.xmit_dev.take(ia, g1).is_some());
        net.netdev_change_mtu(ia, 1400).unwrap();
        let g2 = net.devs_genid();
        assert!(g2 > g1, "an MTU change");
        net.netdev_change_addr(ia).unwrap();
        let g3 = net.devs_genid();
        assert!(g3 > g2, "an address change");
        net.inetdev_destroy(&mut host.cpu, ia).unwrap();
        assert!(net.devs_genid() > g3, "a device removed");
    }

    #[test]
    fn protocol_slots_register_once_remove_and_register_again() {
        let t: InetProtos<()> = InetProtos::new();
        let udp: Arc<dyn NetProtocol<()>> = Arc::new(Named("udp"));
        let other: Arc<dyn NetProtocol<()>> = Arc::new(Named("other"));
        assert!(t.get(17).is_none());
        t.add(Arc::clone(&udp), 17).unwrap();
        assert_eq!(t.add(Arc::clone(&other), 17), Err(Errno::Busy));
        assert!(matches!(t.get(17), Some(ProtoRef::First(_))));
        assert_eq!(t.get(17).unwrap().get().name(), "udp");
        assert_eq!(t.del(&other, 17), Err(Errno::NoEnt));
        t.del(&udp, 17).unwrap();
        assert!(t.get(17).is_none());
        // A second registration lives in the locked overflow table.
        t.add(Arc::clone(&other), 17).unwrap();
        assert!(matches!(t.get(17), Some(ProtoRef::Later(_))));
        assert_eq!(t.get(17).unwrap().get().name(), "other");
        t.del(&other, 17).unwrap();
        assert!(t.get(17).is_none());
        assert_eq!(t.del(&other, 17), Err(Errno::NoEnt));
    }

    #[test]
    fn idents_count_up_per_destination_and_jump_with_time() {
        let ids = IpIdents::new(7);
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let b = Ipv4Addr::new(198, 18, 0, 2);
        let t = Instant::from_millis(5);
        let first = ids.reserve(b, a, 17, 1, t);
        // Same jiffy: consecutive.
        assert_eq!(ids.reserve(b, a, 17, 1, t), first.wrapping_add(1));
        assert_eq!(ids.reserve(b, a, 17, 3, t), first.wrapping_add(2));
        assert_eq!(ids.reserve(b, a, 17, 1, t), first.wrapping_add(5));
        // Same seed, same sequence.
        let again = IpIdents::new(7);
        assert_eq!(again.reserve(b, a, 17, 1, t), first);
        // Much later: at least the plain increment.
        let later = ids.reserve(b, a, 17, 1, Instant::from_secs(100));
        assert!(later.wrapping_sub(first) >= 6);
    }
}
