//! Protocol handlers and taps: the `packet_type` registry.
//!
//! Mirrors `struct packet_type` (`include/linux/netdevice.h`), the
//! `ptype_all` and `ptype_base` lists and `dev_add_pack()` /
//! `dev_remove_pack()` of `net/core/dev.c`, plus the tc ingress hook point
//! (`sch_handle_ingress()`).
//!
//! ```text
//!   netif_receive_skb_core(skb)
//!     ├─ every ptype_all tap ........ gets a clone  (tcpdump, the pcap tap)
//!     ├─ tc ingress hook ............ may drop or steal it
//!     └─ ptype_base[skb.protocol] ... gets the skb  (ip_rcv, arp_rcv)
//! ```
//!
//! The registry is read on every packet and written rarely, as RCU-protected
//! lists are in Linux: writers build a new immutable [`PtypeLists`] and bump a
//! generation number; each CPU keeps the `Arc` it last saw and takes the new
//! one when the generation changed, so the packet path takes no lock.

use core::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use netcore::SkBuff;
use parking_lot::Mutex;

/// What a receive handler did with a packet.
///
/// Mirrors `NET_RX_SUCCESS` and `NET_RX_DROP` of
/// `include/linux/netdevice.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use]
pub enum NetRx {
    /// The packet was taken (queued, delivered or consumed). `NET_RX_SUCCESS`.
    #[doc(alias = "NET_RX_SUCCESS")]
    Success,
    /// The packet was dropped (and freed with a reason). `NET_RX_DROP`.
    #[doc(alias = "NET_RX_DROP")]
    Drop,
}

/// Which packets a [`PacketType`] handler receives.
///
/// Mirrors `packet_type.type`: one ethertype, or `ETH_P_ALL` for taps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PtypeMatch {
    /// Every packet, both directions: a tap on `ptype_all`. `ETH_P_ALL`.
    #[doc(alias = "ETH_P_ALL")]
    All,
    /// Packets whose `skb.protocol` is this ethertype (host order), on
    /// `ptype_base`.
    Type(u16),
}

/// A protocol handler or a tap, registered with
/// [`Softnet::dev_add_pack`](crate::Softnet::dev_add_pack).
///
/// Mirrors `struct packet_type` with its `func` in
/// `include/linux/netdevice.h`. It is generic over the host's per-CPU
/// context `C` so that a handler can reach the layer it belongs to: `ipv4`
/// implements `PacketType<C> for IpRcv where C: Ipv4Context`. Object-safe:
/// the registry stores `Arc<dyn PacketType<C>>`, so handlers can be added
/// and removed while the host runs.
///
/// `func` runs in softirq context on the receiving CPU (and, for taps, on
/// the transmitting CPU for outgoing packets): it must not block. It owns
/// the skb it is given; a tap receives a clone that shares the buffer, so
/// it must not write to it (reading, or `SkBuff::copy`, is fine).
pub trait PacketType<C: ?Sized>: Send + Sync {
    /// The packets this handler wants. Read once at registration.
    fn ptype(&self) -> PtypeMatch;

    /// Restricts the handler to one device (`packet_type.dev`), by
    /// ifindex; `None` (the default) for every device.
    fn dev(&self) -> Option<u32> {
        None
    }

    /// Handles one packet. Mirrors `packet_type.func`.
    fn func(&self, skb: SkBuff, ctx: &mut C) -> NetRx;

    /// Whether `func` reads fragments ([`SkBuff::frags`],
    /// [`SkBuff::copy_bits`]) and so takes a GRO packet as it is. `false`
    /// (the default): softnet linearizes a nonlinear skb first, so `data()`
    /// is the whole packet.
    ///
    /// # Deviations from Linux
    /// Every Linux handler copes with paged skbs (`pskb_may_pull()`); here
    /// a handler opts in, so layers not yet written for fragments still
    /// see contiguous bytes.
    fn accepts_nonlinear(&self) -> bool {
        false
    }

    /// The handler's name, as `/proc/net/ptype`'s `Function` column shows
    /// it (`ip_rcv`, `packet_rcv`).
    #[allow(clippy::unnecessary_literal_bound)] // implementors may return a field
    fn name(&self) -> &str {
        "unknown"
    }
}

/// What the tc ingress hook decided.
///
/// Mirrors the `TC_ACT_*` verdicts `sch_handle_ingress()` acts on.
#[derive(Debug)]
pub enum TcVerdict {
    /// Continue to the protocol handlers. `TC_ACT_OK` (and
    /// `TC_ACT_UNSPEC`, `TC_ACT_PIPE`, `TC_ACT_RECLASSIFY`).
    #[doc(alias = "TC_ACT_OK")]
    Ok(SkBuff),
    /// Drop: softnet frees it with `DropReason::TcIngress`. `TC_ACT_SHOT`.
    #[doc(alias = "TC_ACT_SHOT")]
    Shot(SkBuff),
    /// The hook consumed the packet (redirected, queued elsewhere).
    /// `TC_ACT_STOLEN` / `TC_ACT_QUEUED` / `TC_ACT_REDIRECT`.
    #[doc(alias = "TC_ACT_STOLEN")]
    Stolen,
}

/// A filter attached at the tc ingress hook of one device, run after the
/// taps and before protocol dispatch.
///
/// Mirrors the `clsact`/`ingress` qdisc's filter chain run by
/// `sch_handle_ingress()` → `tcf_classify()`. Any
/// `Fn(SkBuff, &mut C) -> TcVerdict + Send + Sync` closure is one.
pub trait TcIngress<C: ?Sized>: Send + Sync {
    /// Classifies one received packet.
    fn classify(&self, skb: SkBuff, ctx: &mut C) -> TcVerdict;
}

impl<C: ?Sized, F> TcIngress<C> for F
where
    F: Fn(SkBuff, &mut C) -> TcVerdict + Send + Sync,
{
    fn classify(&self, skb: SkBuff, ctx: &mut C) -> TcVerdict {
        self(skb, ctx)
    }
}

/// One registered handler: the `Arc` and what it matched at registration.
pub(crate) struct PtypeEntry<C: ?Sized> {
    pub(crate) pt: Arc<dyn PacketType<C>>,
    pub(crate) dev: Option<u32>,
}

impl<C: ?Sized> Clone for PtypeEntry<C> {
    fn clone(&self) -> Self {
        PtypeEntry {
            pt: Arc::clone(&self.pt),
            dev: self.dev,
        }
    }
}

/// An immutable snapshot of the registry, shared by every CPU until the
/// next change (the RCU-protected lists of Linux).
pub(crate) struct PtypeLists<C: ?Sized> {
    /// `ptype_all`: taps, in registration order.
    pub(crate) all: Vec<PtypeEntry<C>>,
    /// `ptype_base`: (ethertype, handler), in registration order.
    pub(crate) base: Vec<(u16, PtypeEntry<C>)>,
    /// tc ingress hooks by ifindex.
    pub(crate) ingress: Vec<(u32, Arc<dyn TcIngress<C>>)>,
}

impl<C: ?Sized> PtypeLists<C> {
    fn empty() -> Self {
        PtypeLists {
            all: Vec::new(),
            base: Vec::new(),
            ingress: Vec::new(),
        }
    }

    fn clone_lists(&self) -> Self {
        PtypeLists {
            all: self.all.clone(),
            base: self.base.clone(),
            ingress: self
                .ingress
                .iter()
                .map(|(i, h)| (*i, Arc::clone(h)))
                .collect(),
        }
    }
}

/// The host-wide registry: the current snapshot and its generation.
pub(crate) struct PtypeRegistry<C: ?Sized> {
    current: Mutex<Arc<PtypeLists<C>>>,
    generation: AtomicU64,
}

impl<C: ?Sized> fmt::Debug for PtypeRegistry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cur = self.current.lock();
        f.debug_struct("PtypeRegistry")
            .field("ptype_all", &cur.all.len())
            .field("ptype_base", &cur.base.len())
            .field("ingress", &cur.ingress.len())
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .finish()
    }
}

/// Compares two handler `Arc`s by the object they point to.
pub(crate) fn same_handler<T: ?Sized, U: ?Sized>(a: &Arc<T>, b: &Arc<U>) -> bool {
    core::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl<C: ?Sized> PtypeRegistry<C> {
    pub(crate) fn new() -> Self {
        PtypeRegistry {
            current: Mutex::new(Arc::new(PtypeLists::empty())),
            generation: AtomicU64::new(1),
        }
    }

    /// The generation of the current snapshot; changes on every update.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        // Acquire pairs with the Release in `update`: a reader that sees the
        // new generation and then locks sees the new lists.
        self.generation.load(Ordering::Acquire)
    }

    /// The current snapshot and its generation.
    pub(crate) fn snapshot(&self) -> (Arc<PtypeLists<C>>, u64) {
        let cur = self.current.lock();
        (Arc::clone(&cur), self.generation.load(Ordering::Acquire))
    }

    /// Copies the lists, lets `f` change the copy, publishes it.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut PtypeLists<C>) -> R) -> R {
        let mut cur = self.current.lock();
        let mut next = cur.clone_lists();
        let r = f(&mut next);
        *cur = Arc::new(next);
        self.generation.fetch_add(1, Ordering::Release);
        r
    }
}
