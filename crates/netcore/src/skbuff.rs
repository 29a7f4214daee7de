//! The socket buffer: one packet, its bytes in a pool buffer and its
//! metadata.
//!
//! Mirrors `struct sk_buff` in `include/linux/skbuff.h` and the head
//! operations of `net/core/skbuff.c`. The packet's bytes live in a
//! [`PagePool`] buffer; the skb keeps the window `data..tail` inside it,
//! with headroom in front for lower layers to `push` their headers into
//! and tailroom behind for `put`:
//!
//! ```text
//!  head          data                 tail              end
//!   |  headroom   |   len bytes        |   tailroom      |
//!   +-------------+--------------------+-----------------+
//!   ^ mac_header / network_header / transport_header are offsets from head
//! ```
//!
//! Cloning an skb (`skb_clone`) shares the buffer; writing through a clone
//! (or through an skb that has clones) first copies the buffer into a fresh
//! one from the same pool (`skb_unshare`), so the other holders see no
//! change.
//!
//! Past the linear part an skb may carry fragments: read-only windows
//! into other pool buffers, shared by reference (`skb_shinfo()->frags`).
//! GRO chains the payload of merged segments this way, without a copy.
//! [`SkBuff::len`] counts every byte, [`SkBuff::data`] is the linear part
//! only ([`SkBuff::headlen`] bytes); a reader that needs the rest uses
//! [`SkBuff::copy_bits`], [`SkBuff::frags`] or [`SkBuff::checksum`], and
//! one that truly needs contiguous bytes calls [`SkBuff::linearize`].
//!
//! # Deviations from Linux
//!
//! - One list of fragments stands for both `skb_shinfo()->frags` and
//!   `frag_list`: it is not limited to `MAX_SKB_FRAGS` (17), so a GRO packet
//!   of 45 segments keeps one fragment per segment instead of chaining
//!   skbs. Fragments are never written through the skb.
//! - Operations that would hit `skb_over_panic()`/`skb_under_panic()` in
//!   Linux return an [`SkbError`] instead, and leave the skb unchanged.
//! - `skb->dev` and `skb->skb_iif` are one field, [`SkBuff::ifindex`].

use core::fmt;
use core::mem::ManuallyDrop;
use std::sync::Arc;

use bitflags::bitflags;

use crate::page_pool::{GSO_MAX_SIZE, Page, PageBuf, PagePool};
use crate::time::Instant;

/// The fragments an skb holds before Linux would chain a `frag_list`
/// (`MAX_SKB_FRAGS`, 17 by default); here only the initial capacity of the
/// fragment list, which grows past it (see the module's deviations).
pub const MAX_SKB_FRAGS: usize = 17;

/// Headroom that [`SkBuff::netdev_alloc`] reserves in front of a received
/// frame.
///
/// Mirrors `NET_SKB_PAD` (`max(32, L1_CACHE_BYTES)`, 64 on x86-64).
pub const NET_SKB_PAD: usize = 64;

/// The ethertype of IPv4, in host order.
///
/// Mirrors `ETH_P_IP` in `include/uapi/linux/if_ether.h`.
pub const ETH_P_IP: u16 = 0x0800;
/// The ethertype of ARP, in host order. Mirrors `ETH_P_ARP`.
pub const ETH_P_ARP: u16 = 0x0806;

/// Why an skb operation was refused; the skb is left unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkbError {
    /// `push` needed more headroom than there is (`skb_under_panic()`).
    NoHeadroom {
        /// Bytes requested.
        needed: usize,
        /// Headroom available.
        headroom: usize,
    },
    /// `put` or `reserve` needed more tailroom than there is (`skb_over_panic()`).
    NoTailroom {
        /// Bytes requested.
        needed: usize,
        /// Tailroom available.
        tailroom: usize,
    },
    /// `pull` or `trim` asked for more bytes than the skb holds.
    TooShort {
        /// Bytes the operation needs.
        needed: usize,
        /// Bytes the skb holds.
        len: usize,
    },
    /// `reserve` on an skb that already holds data (Linux only reserves on
    /// an empty skb).
    NotEmpty {
        /// Bytes the skb holds.
        len: usize,
    },
    /// The pool had no buffer (a bounded pool is exhausted).
    NoMem,
    /// The requested buffer is larger than the pool's largest class.
    TooBig {
        /// Bytes requested.
        size: usize,
        /// The largest buffer the pool has.
        max: usize,
    },
    /// A linear-only operation (`put`) on an skb that has fragments; Linux
    /// asserts `SKB_LINEAR_ASSERT()`.
    Nonlinear {
        /// Bytes held in fragments.
        data_len: usize,
    },
    /// A header offset would lie outside the buffer.
    HeaderOutOfRange {
        /// Which header (`"mac"`, `"network"`, `"transport"`).
        header: &'static str,
        /// The offset from `data` that was given.
        offset: usize,
        /// The bytes from `data` to the end of the buffer.
        room: usize,
    },
    /// A header was read before it was set.
    HeaderNotSet {
        /// Which header.
        header: &'static str,
    },
}

impl fmt::Display for SkbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SkbError::NoHeadroom { needed, headroom } => {
                write!(
                    f,
                    "skb push of {needed} bytes: only {headroom} bytes of headroom"
                )
            }
            SkbError::NoTailroom { needed, tailroom } => {
                write!(
                    f,
                    "skb put/reserve of {needed} bytes: only {tailroom} bytes of tailroom"
                )
            }
            SkbError::TooShort { needed, len } => {
                write!(f, "skb holds {len} bytes, {needed} needed")
            }
            SkbError::NotEmpty { len } => {
                write!(f, "skb reserve needs an empty skb, it holds {len} bytes")
            }
            SkbError::NoMem => f.write_str("page pool exhausted"),
            SkbError::Nonlinear { data_len } => write!(
                f,
                "skb has {data_len} bytes in fragments: linearize it first"
            ),
            SkbError::TooBig { size, max } => {
                write!(
                    f,
                    "skb of {size} bytes requested: the pool's buffers hold at most {max}"
                )
            }
            SkbError::HeaderOutOfRange {
                header,
                offset,
                room,
            } => {
                write!(f, "{header} header offset {offset}: accepts 0..={room}")
            }
            SkbError::HeaderNotSet { header } => write!(f, "{header} header is not set"),
        }
    }
}

impl core::error::Error for SkbError {}

/// Who the packet is for, as the link layer classified it.
///
/// Mirrors `skb->pkt_type` and the `PACKET_*` values of
/// `include/uapi/linux/if_packet.h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PktType {
    /// To this host. `PACKET_HOST`.
    #[doc(alias = "PACKET_HOST")]
    #[default]
    Host = 0,
    /// To all (link-layer broadcast). `PACKET_BROADCAST`.
    #[doc(alias = "PACKET_BROADCAST")]
    Broadcast = 1,
    /// To a link-layer multicast group. `PACKET_MULTICAST`.
    #[doc(alias = "PACKET_MULTICAST")]
    Multicast = 2,
    /// To another host (seen in promiscuous mode). `PACKET_OTHERHOST`.
    #[doc(alias = "PACKET_OTHERHOST")]
    OtherHost = 3,
    /// Sent by this host (seen by a tap). `PACKET_OUTGOING`.
    #[doc(alias = "PACKET_OUTGOING")]
    Outgoing = 4,
    /// Looped back. `PACKET_LOOPBACK`.
    #[doc(alias = "PACKET_LOOPBACK")]
    Loopback = 5,
}

/// The checksum state of an skb.
///
/// Mirrors `skb->ip_summed` (`CHECKSUM_NONE`, `CHECKSUM_UNNECESSARY`,
/// `CHECKSUM_COMPLETE`, `CHECKSUM_PARTIAL`) with the fields that go with
/// each value (`skb->csum`, `csum_start`, `csum_offset`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IpSummed {
    /// Receive: the device did not check; transmit: software has
    /// filled the checksum. `CHECKSUM_NONE`.
    #[doc(alias = "CHECKSUM_NONE")]
    #[default]
    None,
    /// Receive: the device verified the checksum. `CHECKSUM_UNNECESSARY`.
    #[doc(alias = "CHECKSUM_UNNECESSARY")]
    Unnecessary,
    /// Receive: the device summed the whole packet (from `data`), the
    /// 32-bit unfolded one's-complement sum is `csum`. `CHECKSUM_COMPLETE`.
    #[doc(alias = "CHECKSUM_COMPLETE")]
    Complete {
        /// The unfolded sum (`__wsum`).
        csum: u32,
    },
    /// Transmit: the device must sum from `csum_start` (offset from head)
    /// to the end and store the result at `csum_start + csum_offset`.
    /// `CHECKSUM_PARTIAL`.
    #[doc(alias = "CHECKSUM_PARTIAL")]
    Partial {
        /// Where summing starts, as an offset from the buffer's head.
        csum_start: u16,
        /// Where the result goes, relative to `csum_start`.
        csum_offset: u16,
    },
}

bitflags! {
    /// The kind of segmentation a GSO skb needs.
    ///
    /// Mirrors the `SKB_GSO_*` bits of `include/linux/skbuff.h`; they are
    /// shifted by 16 to give the `NETIF_F_GSO_*` feature bits.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct SkbGsoType: u32 {
        /// TCP over IPv4.
        #[doc(alias = "SKB_GSO_TCPV4")]
        const TCPV4 = 1 << 0;
        /// From an untrusted source; must be re-verified.
        #[doc(alias = "SKB_GSO_DODGY")]
        const DODGY = 1 << 1;
        /// TCP with CWR set: segmentation must handle ECN.
        #[doc(alias = "SKB_GSO_TCP_ECN")]
        const TCP_ECN = 1 << 2;
        /// The IPv4 ID must stay fixed across segments.
        #[doc(alias = "SKB_GSO_TCP_FIXEDID")]
        const TCP_FIXEDID = 1 << 3;
        /// TCP over IPv6.
        #[doc(alias = "SKB_GSO_TCPV6")]
        const TCPV6 = 1 << 4;
        /// FCoE.
        #[doc(alias = "SKB_GSO_FCOE")]
        const FCOE = 1 << 5;
        /// GRE tunnel.
        #[doc(alias = "SKB_GSO_GRE")]
        const GRE = 1 << 6;
        /// GRE tunnel with checksum.
        #[doc(alias = "SKB_GSO_GRE_CSUM")]
        const GRE_CSUM = 1 << 7;
        /// IP in IPv4.
        #[doc(alias = "SKB_GSO_IPXIP4")]
        const IPXIP4 = 1 << 8;
        /// IP in IPv6.
        #[doc(alias = "SKB_GSO_IPXIP6")]
        const IPXIP6 = 1 << 9;
        /// UDP tunnel.
        #[doc(alias = "SKB_GSO_UDP_TUNNEL")]
        const UDP_TUNNEL = 1 << 10;
        /// UDP tunnel with outer checksum.
        #[doc(alias = "SKB_GSO_UDP_TUNNEL_CSUM")]
        const UDP_TUNNEL_CSUM = 1 << 11;
        /// Only the innermost L4 header is segmented by hardware.
        #[doc(alias = "SKB_GSO_PARTIAL")]
        const PARTIAL = 1 << 12;
        /// Tunnel with remote checksum offload.
        #[doc(alias = "SKB_GSO_TUNNEL_REMCSUM")]
        const TUNNEL_REMCSUM = 1 << 13;
        /// SCTP.
        #[doc(alias = "SKB_GSO_SCTP")]
        const SCTP = 1 << 14;
        /// IPsec ESP.
        #[doc(alias = "SKB_GSO_ESP")]
        const ESP = 1 << 15;
        /// UDP fragmentation offload (UFO).
        #[doc(alias = "SKB_GSO_UDP")]
        const UDP = 1 << 16;
        /// UDP payload segmentation (`UDP_SEGMENT`).
        #[doc(alias = "SKB_GSO_UDP_L4")]
        const UDP_L4 = 1 << 17;
        /// Frag-list segmentation.
        #[doc(alias = "SKB_GSO_FRAGLIST")]
        const FRAGLIST = 1 << 18;
    }
}

/// What runs when an skb that a socket charged is freed.
///
/// Mirrors `skb->destructor` with `skb->sk` (for transmit,
/// `sock_wfree()`, which gives `skb->truesize` back to `sk_wmem_alloc`).
/// A socket implements it on its shared state, charges the skb's
/// [`SkBuff::truesize`] to its send-buffer count, and sets itself with
/// [`SkBuff::set_destructor`]; [`SkbDestructor::destruct`] then runs
/// exactly once: when the skb is dropped (which is what [`crate::consume_skb`]
/// and [`crate::kfree_skb_reason`] do) or when [`SkBuff::orphan`] is called.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use netcore::{PagePool, PagePoolParams, SkBuff, SkbDestructor, consume_skb};
///
/// #[derive(Debug, Default)]
/// struct Sock { wmem_alloc: AtomicUsize }
/// impl SkbDestructor for Sock {
///     fn destruct(&self, skb: &SkBuff) {          // sock_wfree()
///         self.wmem_alloc.fetch_sub(skb.truesize(), Ordering::Relaxed);
///     }
/// }
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let sk = Arc::new(Sock::default());
/// let mut skb = SkBuff::from_slice(&pool, 64, b"datagram").unwrap();
/// sk.wmem_alloc.fetch_add(skb.truesize(), Ordering::Relaxed); // skb_set_owner_w()
/// skb.set_destructor(sk.clone());
/// assert!(sk.wmem_alloc.load(Ordering::Relaxed) > 0);
/// consume_skb(skb);                                // transmitted and freed
/// assert_eq!(sk.wmem_alloc.load(Ordering::Relaxed), 0);
/// ```
#[doc(alias = "destructor")]
#[doc(alias = "sock_wfree")]
pub trait SkbDestructor: Send + Sync {
    /// Releases what the owner charged for `skb`; called once, as the skb
    /// is freed or orphaned. Mirrors the `skb->destructor(skb)` call in
    /// `skb_release_head_state()`.
    fn destruct(&self, skb: &SkBuff);

    /// A qdisc that paces (sch_fq with `rate_enable`) tells the owning
    /// socket it will honour the skbs' departure times, so the socket
    /// need not pace itself. Does nothing by default (an owner that does
    /// not pace).
    ///
    /// Mirrors `smp_store_release(&sk->sk_pacing_status, SK_PACING_FQ)`
    /// in `fq_classify()` (`net/sched/sch_fq.c`).
    #[doc(alias = "SK_PACING_FQ")]
    fn set_pacing_status_fq(&self) {}
}

/// A read-only window into a shared pool buffer holding packet bytes that
/// follow the linear part. Mirrors `skb_frag_t` (`netmem`, `offset`, `len`).
#[derive(Debug)]
struct SkbFrag {
    page: Page,
    off: usize,
    len: usize,
}

impl SkbFrag {
    fn bytes(&self) -> &[u8] {
        &self.page.bytes()[self.off..self.off + self.len]
    }

    fn share(&self) -> SkbFrag {
        SkbFrag {
            page: self.page.share(),
            off: self.off,
            len: self.len,
        }
    }
}

/// The owner of an skb and its destructor (`skb->sk` + `skb->destructor`).
#[derive(Clone)]
struct SkbOwner(Arc<dyn SkbDestructor>);

impl fmt::Debug for SkbOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SkbOwner")
    }
}

/// One packet: a window of bytes in a pool buffer, header offsets, and the
/// metadata every layer reads or sets.
///
/// Mirrors `struct sk_buff` in `include/linux/skbuff.h`. An skb owns (or,
/// after [`Clone`], shares) one [`PagePool`] buffer, which returns to the
/// pool when the last skb using it drops. It is `Send` and `Sync`.
///
/// ```
/// use netcore::{PagePool, PagePoolParams, SkBuff};
///
/// let pool = PagePool::new(PagePoolParams::default()).unwrap();
/// let mut skb = SkBuff::alloc(&pool, 128).unwrap();
/// skb.reserve(64).unwrap();                  // headroom for lower layers
/// skb.put_data(b"payload").unwrap();         // the transport payload
/// skb.push(4).unwrap().copy_from_slice(b"HDR:"); // a header in front
/// assert_eq!(skb.data(), b"HDR:payload");
/// assert_eq!(skb.headroom(), 60);
/// assert_eq!(skb.pull(4).unwrap(), b"HDR:");
/// assert_eq!(skb.data(), b"payload");
/// ```
#[doc(alias = "sk_buff")]
#[derive(Debug)]
pub struct SkBuff {
    page: Page,
    /// Offset of the first byte of data from the buffer's head
    /// (`skb->data` as a `sk_buff_data_t` offset); a pool buffer is at most
    /// [`u32::MAX`] bytes.
    data: u32,
    /// Offset one past the last byte of data (`skb->tail`).
    tail: u32,
    /// Header offsets from the buffer's head, [`NO_HEADER`] when unset
    /// (Linux uses `(u16)~0U`).
    mac_header: u32,
    network_header: u32,
    transport_header: u32,
    /// The ethertype of the packet in host order (`skb->protocol`, which
    /// Linux keeps in network order), e.g. [`ETH_P_IP`].
    pub protocol: u16,
    /// The interface the packet arrived on or leaves by (`skb->dev`'s
    /// `ifindex` / `skb->skb_iif`); 0 when none.
    pub ifindex: u32,
    /// The firewall mark (`skb->mark`).
    pub mark: u32,
    /// The queueing priority (`skb->priority`).
    pub priority: u32,
    /// The device queue chosen for the packet (`skb->queue_mapping`).
    pub queue_mapping: u16,
    /// The flow hash (`skb->hash`); 0 when not computed.
    pub hash: u32,
    /// Whether [`SkBuff::hash`] covers the L4 ports (`skb->l4_hash`).
    pub l4_hash: bool,
    /// Whether the hash was computed in software (`skb->sw_hash`).
    pub sw_hash: bool,
    /// Who the packet is for (`skb->pkt_type`).
    pub pkt_type: PktType,
    /// The checksum state (`skb->ip_summed`, `csum`, `csum_start`,
    /// `csum_offset`).
    pub ip_summed: IpSummed,
    /// The segment payload size of a GSO skb, 0 otherwise
    /// (`skb_shinfo()->gso_size`).
    pub gso_size: u16,
    /// How many segments a GSO skb stands for (`skb_shinfo()->gso_segs`).
    pub gso_segs: u16,
    /// The kind of GSO skb (`skb_shinfo()->gso_type`).
    pub gso_type: SkbGsoType,
    /// When the packet was received or sent (`skb->tstamp`).
    pub tstamp: Instant,
    /// The VLAN tag the device stripped on receive or must insert on
    /// transmit (`skb->vlan_tci` with `vlan_present`).
    pub vlan_tci: Option<u16>,
    /// The connection-tracking reference (`skb->_nfct`): an opaque handle
    /// that only the `netfilter` crate interprets (entry and direction of
    /// the packet's connection); 0 when the packet is not tracked.
    pub nfct: u32,
    /// The socket charged for the skb and its destructor (`skb->sk`,
    /// `skb->destructor`); see [`SkbDestructor`].
    ///
    /// `ManuallyDrop` so that the drop glue of the common skb does not
    /// carry this field's release: [`SkBuff`]'s `Drop` releases it (out of
    /// line) whenever it is set.
    owner: ManuallyDrop<Option<SkbOwner>>,
    /// The fragments, allocated on first use (`skb_shinfo()`, which Linux
    /// also keeps outside `struct sk_buff`); `None` on a linear skb that
    /// never had any.
    ///
    /// `ManuallyDrop` for the same reason as `owner`.
    shinfo: ManuallyDrop<Option<Box<SkbSharedInfo>>>,
    /// Bytes held in fragments (`skb->data_len`).
    data_len: u32,
}

/// The header-offset sentinel of an unset header (`(u16)~0U` in Linux's
/// `skb_mac_header_was_set()`).
const NO_HEADER: u32 = u32::MAX;

/// The part of an skb that only skbs with fragments need, kept out of
/// line so a linear skb stays small to move.
///
/// Mirrors the `frags` array of `struct skb_shared_info`.
#[derive(Debug, Default)]
struct SkbSharedInfo {
    /// Bytes past the linear part, in order.
    frags: Vec<SkbFrag>,
    /// What the skb's truesize counts beyond its head buffer and itself:
    /// the buffers of the fragments as they were added, less a head
    /// buffer that grew under an owned skb's linearize. Stored, not summed
    /// from `frags`, so it changes only where Linux changes
    /// `skb->truesize` (see [`SkBuff::truesize`]).
    frag_truesize: isize,
}

/// The most spare fragment lists a thread keeps for its next nonlinear
/// skbs.
const SHINFO_CACHE_MAX: usize = 64;

std::thread_local! {
    /// This thread's spare fragment lists, emptied, with their capacity:
    /// a GRO packet or a GSO skb takes one instead of two allocations
    /// (the box and its list) and gives it back when freed, as the
    /// kernel's per-CPU skb caches spare it `kmalloc` and `kfree`.
    // The boxes themselves are what is kept: an skb holds its list as a
    // box, so handing one back and forth moves a pointer, not the list.
    #[allow(clippy::vec_box)]
    static SHINFO_CACHE: core::cell::RefCell<Vec<Box<SkbSharedInfo>>> =
        const { core::cell::RefCell::new(Vec::new()) };
}

impl SkbSharedInfo {
    /// Makes room for one more fragment of about `added` bytes: when the
    /// list is full it grows once to what a 64 KiB packet of fragments
    /// that size needs (GRO appends one per segment), not by doubling.
    #[inline]
    fn reserve_frag(&mut self, added: usize) {
        if self.frags.len() == self.frags.capacity() {
            let len = self.frags.len();
            let need = (GSO_MAX_SIZE / added.max(1) + 1)
                .min(4 * MAX_SKB_FRAGS)
                .max(2 * len);
            self.frags.reserve_exact(need.max(len + 1) - len);
        }
    }

    /// An empty fragment list with room for [`MAX_SKB_FRAGS`], a spare
    /// one of this thread's when there is one.
    #[allow(clippy::unnecessary_box_returns)] // the skb keeps it boxed
    fn alloc() -> Box<SkbSharedInfo> {
        SHINFO_CACHE
            .try_with(|c| c.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                Box::new(SkbSharedInfo {
                    frags: Vec::with_capacity(MAX_SKB_FRAGS),
                    frag_truesize: 0,
                })
            })
    }

    /// Drops the fragments (their buffers go back to their pools) and
    /// keeps the list for this thread's next nonlinear skb, unless the
    /// thread has enough spares or the list grew large.
    fn free(mut sh: Box<SkbSharedInfo>) {
        sh.frags.clear();
        sh.frag_truesize = 0;
        if sh.frags.capacity() > 4 * MAX_SKB_FRAGS {
            return;
        }
        let _ = SHINFO_CACHE.try_with(|c| {
            let mut c = c.borrow_mut();
            if c.len() < SHINFO_CACHE_MAX {
                c.push(sh);
            }
        });
    }
}

impl SkBuff {
    #[inline]
    fn with_page(page: Page, data: usize, tail: usize) -> SkBuff {
        SkBuff {
            page,
            data: data as u32,
            tail: tail as u32,
            mac_header: NO_HEADER,
            network_header: NO_HEADER,
            transport_header: NO_HEADER,
            protocol: 0,
            ifindex: 0,
            mark: 0,
            priority: 0,
            queue_mapping: 0,
            hash: 0,
            l4_hash: false,
            sw_hash: false,
            pkt_type: PktType::Host,
            ip_summed: IpSummed::None,
            gso_size: 0,
            gso_segs: 0,
            gso_type: SkbGsoType::empty(),
            tstamp: Instant::ZERO,
            vlan_tci: None,
            nfct: 0,
            owner: ManuallyDrop::new(None),
            shinfo: ManuallyDrop::new(None),
            data_len: 0,
        }
    }

    /// The fragments (empty on an skb that never had any).
    #[inline]
    fn frag_slice(&self) -> &[SkbFrag] {
        self.shinfo.as_deref().map_or(&[], |sh| &sh.frags)
    }

    /// Drops every fragment (keeps the out-of-line part for reuse).
    fn clear_frags(&mut self) {
        if let Some(sh) = self.shinfo.as_deref_mut() {
            sh.frags.clear();
        }
        self.data_len = 0;
    }

    /// `skb->data` as a buffer offset.
    #[inline(always)]
    fn data_off(&self) -> usize {
        self.data as usize
    }

    /// `skb->tail` as a buffer offset.
    #[inline(always)]
    fn tail_off(&self) -> usize {
        self.tail as usize
    }

    /// Allocates an empty skb whose buffer has room for at least `size`
    /// bytes, from the smallest pool class that fits.
    ///
    /// Mirrors `alloc_skb()` in `net/core/skbuff.c`. The skb has no
    /// headroom until [`SkBuff::reserve`] is called. Fails with
    /// [`SkbError::TooBig`] past the largest class and [`SkbError::NoMem`]
    /// when the pool is exhausted.
    #[doc(alias = "alloc_skb")]
    pub fn alloc(pool: &PagePool, size: usize) -> Result<SkBuff, SkbError> {
        if size > pool.max_buf_size() {
            return Err(SkbError::TooBig {
                size,
                max: pool.max_buf_size(),
            });
        }
        let buf = pool.alloc_size(size).ok_or(SkbError::NoMem)?;
        Ok(SkBuff::with_page(buf.into_page(), 0, 0))
    }

    /// Allocates an empty skb for a received frame of up to `len` bytes,
    /// with [`NET_SKB_PAD`] bytes of headroom reserved.
    ///
    /// Mirrors `netdev_alloc_skb()` in `net/core/skbuff.c`.
    #[doc(alias = "netdev_alloc_skb")]
    pub fn netdev_alloc(pool: &PagePool, len: usize) -> Result<SkBuff, SkbError> {
        let size = len.saturating_add(NET_SKB_PAD);
        if size > pool.max_buf_size() {
            return Err(SkbError::TooBig {
                size,
                max: pool.max_buf_size(),
            });
        }
        let buf = pool.alloc_size(size).ok_or(SkbError::NoMem)?;
        // The buffer holds at least `size` bytes, so the reserve fits.
        Ok(SkBuff::with_page(buf.into_page(), NET_SKB_PAD, NET_SKB_PAD))
    }

    /// Wraps a pool buffer the device has written a frame into, without
    /// copying: the frame is the `len` bytes starting at `headroom`.
    ///
    /// Mirrors `napi_build_skb()`/`build_skb()` in `net/core/skbuff.c`.
    /// Takes ownership of `buf`; if `headroom + len` exceeds the buffer it
    /// is handed back with the error.
    #[doc(alias = "build_skb")]
    #[doc(alias = "napi_build_skb")]
    #[inline]
    pub fn from_page(
        buf: PageBuf,
        headroom: usize,
        len: usize,
    ) -> Result<SkBuff, (PageBuf, SkbError)> {
        let size = buf.len();
        match headroom.checked_add(len) {
            Some(end) if end <= size => Ok(SkBuff::with_page(buf.into_page(), headroom, end)),
            _ => {
                let tailroom = size.saturating_sub(headroom);
                Err((
                    buf,
                    SkbError::NoTailroom {
                        needed: len,
                        tailroom,
                    },
                ))
            }
        }
    }

    /// Allocates an skb with `headroom` bytes reserved and a copy of
    /// `bytes` as its data.
    ///
    /// A convenience for tests and for building packets from a slice;
    /// mirrors `alloc_skb()` + `skb_reserve()` + `skb_put_data()`.
    pub fn from_slice(pool: &PagePool, headroom: usize, bytes: &[u8]) -> Result<SkBuff, SkbError> {
        let mut skb = SkBuff::alloc(pool, headroom + bytes.len())?;
        skb.reserve(headroom)?;
        skb.put_data(bytes)?;
        Ok(skb)
    }

    /// Bytes of data, fragments included (`skb->len`).
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.headlen() + self.data_len as usize
    }

    /// Whether the skb holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes in the linear part, the ones [`SkBuff::data`] returns.
    ///
    /// Mirrors `skb_headlen()`.
    #[doc(alias = "skb_headlen")]
    #[inline(always)]
    pub fn headlen(&self) -> usize {
        (self.tail - self.data) as usize
    }

    /// Bytes held in fragments (`skb->data_len`).
    #[inline]
    pub fn data_len(&self) -> usize {
        self.data_len as usize
    }

    /// Whether some bytes are in fragments. Mirrors `skb_is_nonlinear()`.
    #[doc(alias = "skb_is_nonlinear")]
    #[inline]
    pub fn is_nonlinear(&self) -> bool {
        self.data_len != 0
    }

    /// The number of fragments (`skb_shinfo()->nr_frags`).
    pub fn nr_frags(&self) -> usize {
        self.frag_slice().len()
    }

    /// The fragments' bytes, in order, after the linear part.
    pub fn frags(&self) -> impl Iterator<Item = &[u8]> {
        self.frag_slice().iter().map(SkbFrag::bytes)
    }

    /// The pool the skb's buffer came from; new skbs built from this one
    /// (segments, copies) come from it too.
    pub fn pool(&self) -> &PagePool {
        self.page.pool()
    }

    /// Free bytes in front of the data.
    ///
    /// Mirrors `skb_headroom()`.
    #[doc(alias = "skb_headroom")]
    #[inline]
    pub fn headroom(&self) -> usize {
        self.data_off()
    }

    /// Free bytes behind the data.
    ///
    /// Mirrors `skb_tailroom()`.
    #[doc(alias = "skb_tailroom")]
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.page.bytes().len() - self.tail_off()
    }

    /// The size of the underlying buffer (`skb_end_offset()`).
    #[doc(alias = "skb_end_offset")]
    #[inline(always)]
    pub fn end_offset(&self) -> usize {
        self.page.bytes().len()
    }

    /// The memory the skb accounts for against socket buffers: its head
    /// buffer, the skb itself, and the buffers its fragments brought.
    ///
    /// Mirrors `skb->truesize` (`SKB_TRUESIZE()` plus what
    /// `skb_gro_receive()` and `skb_add_rx_frag()` add). Like Linux's it is
    /// a stored figure, not a sum over the fragments taken at each call:
    /// [`SkBuff::append_frags`] adds to it, and [`SkBuff::trim`],
    /// [`SkBuff::pull`] and [`SkBuff::linearize`] of an skb that has an
    /// owner leave it alone, so what a socket charged when it took the
    /// skb is exactly what it gives back when the skb goes (only an
    /// unowned skb's linearize recounts it, as `pskb_expand_head()`
    /// does).
    #[doc(alias = "SKB_TRUESIZE")]
    #[inline]
    pub fn truesize(&self) -> usize {
        let base = self.page.bytes().len() + core::mem::size_of::<SkBuff>();
        match self.shinfo.as_deref() {
            None => base,
            Some(sh) => base.saturating_add_signed(sh.frag_truesize),
        }
    }

    /// The bytes of the linear part ([`SkBuff::headlen`] of them; all the
    /// data unless the skb [is nonlinear](SkBuff::is_nonlinear)).
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        &self.page.bytes()[self.data_off()..self.tail_off()]
    }

    /// The bytes of the linear part, for writing; unshares the buffer first
    /// if it is shared with a clone (which may fail with
    /// [`SkbError::NoMem`]).
    #[inline]
    pub fn data_mut(&mut self) -> Result<&mut [u8], SkbError> {
        let (d, t) = (self.data_off(), self.tail_off());
        Ok(&mut self.buf_mut()?[d..t])
    }

    /// Prepends `len` bytes to the data, out of the headroom, and returns
    /// them for the caller to fill in.
    ///
    /// Mirrors `skb_push()`. Fails with [`SkbError::NoHeadroom`] (Linux
    /// calls `skb_under_panic()`), or [`SkbError::NoMem`] when a shared
    /// buffer cannot be unshared.
    #[doc(alias = "skb_push")]
    #[inline]
    pub fn push(&mut self, len: usize) -> Result<&mut [u8], SkbError> {
        let headroom = self.data_off();
        if len > headroom {
            return Err(SkbError::NoHeadroom {
                needed: len,
                headroom,
            });
        }
        self.unshare()?;
        let buf = self.page.bytes_mut().ok_or(SkbError::NoMem)?;
        let start = headroom - len;
        // `start` is below the old offset, which fits in u32.
        self.data = start as u32;
        Ok(&mut buf[start..headroom])
    }

    /// Removes `len` bytes from the front of the data and returns them
    /// (they stay readable in the headroom, e.g. through `mac_header()`).
    ///
    /// Mirrors `skb_pull()`; fails with [`SkbError::TooShort`] where Linux
    /// returns `NULL`, and past the linear part (call
    /// [`SkBuff::linearize`] first, as `pskb_may_pull()` would).
    #[doc(alias = "skb_pull")]
    #[inline(always)]
    pub fn pull(&mut self, len: usize) -> Result<&[u8], SkbError> {
        if len > self.headlen() {
            return Err(too_short(len, self.headlen()));
        }
        let start = self.data_off();
        // At most `tail`, which fits in u32.
        self.data = (start + len) as u32;
        Ok(&self.page.bytes()[start..start + len])
    }

    /// Removes `len` bytes from the front of the data, as
    /// [`SkBuff::pull`] does, without handing them back: only the offsets
    /// are read, not the buffer.
    ///
    /// Mirrors `__skb_pull()` where the caller has no use for the pointer
    /// (`ip_local_deliver_finish()` pulling the IP header). Fails with
    /// [`SkbError::TooShort`] past the linear part, where Linux's
    /// `__skb_pull()` trusts its caller.
    #[doc(alias = "__skb_pull")]
    #[inline(always)]
    pub fn advance(&mut self, len: usize) -> Result<(), SkbError> {
        if len > self.headlen() {
            return Err(too_short(len, self.headlen()));
        }
        // At most `tail`, which fits in u32.
        self.data = (self.data_off() + len) as u32;
        Ok(())
    }

    /// Removes `len` bytes from the front of the data, reaching into the
    /// fragments when the linear part holds fewer: the linear part is
    /// emptied and the leading fragments dropped or shortened. No byte is
    /// copied, and the truesize stays what an owner charged.
    ///
    /// Mirrors `pskb_pull()` in `net/core/skbuff.c` as far as what is left
    /// goes (Linux first pulls the bytes into the linear part, then drops
    /// them). Fails with [`SkbError::TooShort`] past the data, leaving the
    /// skb unchanged.
    pub fn pskb_pull(&mut self, len: usize) -> Result<(), SkbError> {
        let head = self.headlen();
        if len <= head {
            return self.advance(len);
        }
        if len > self.len() {
            return Err(too_short(len, self.len()));
        }
        let mut skip = len - head;
        self.data = self.tail;
        if let Some(sh) = self.shinfo.as_deref_mut() {
            let mut gone = 0;
            for f in &mut sh.frags {
                if skip == 0 {
                    break;
                }
                if skip >= f.len {
                    skip -= f.len;
                    gone += 1;
                } else {
                    f.off += skip;
                    f.len -= skip;
                    skip = 0;
                }
            }
            sh.frags.drain(..gone);
        }
        // Less than the old data_len, which fits in u32.
        self.data_len -= (len - head) as u32;
        Ok(())
    }

    /// Appends `len` bytes to the data, out of the tailroom, and returns
    /// them for the caller to fill in (their contents are unspecified).
    ///
    /// Mirrors `skb_put()`; fails with [`SkbError::NoTailroom`] where Linux
    /// calls `skb_over_panic()`, and with [`SkbError::Nonlinear`] on an skb
    /// with fragments.
    #[doc(alias = "skb_put")]
    #[inline]
    pub fn put(&mut self, len: usize) -> Result<&mut [u8], SkbError> {
        if self.is_nonlinear() {
            return Err(SkbError::Nonlinear {
                data_len: self.data_len(),
            });
        }
        if len > self.tailroom() {
            return Err(SkbError::NoTailroom {
                needed: len,
                tailroom: self.tailroom(),
            });
        }
        self.unshare()?;
        let start = self.tail_off();
        let buf = self.page.bytes_mut().ok_or(SkbError::NoMem)?;
        // Within the buffer, whose size fits in u32.
        self.tail = (start + len) as u32;
        Ok(&mut buf[start..start + len])
    }

    /// Appends `len` zero bytes.
    ///
    /// Mirrors `skb_put_zero()`.
    #[doc(alias = "skb_put_zero")]
    pub fn put_zero(&mut self, len: usize) -> Result<&mut [u8], SkbError> {
        let b = self.put(len)?;
        b.fill(0);
        Ok(b)
    }

    /// Appends a copy of `bytes`.
    ///
    /// Mirrors `skb_put_data()`.
    #[doc(alias = "skb_put_data")]
    #[inline]
    pub fn put_data(&mut self, bytes: &[u8]) -> Result<(), SkbError> {
        self.put(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Cuts the data down to its first `len` bytes.
    ///
    /// Mirrors `skb_trim()` (`pskb_trim()` on an skb with fragments, which
    /// are cut or dropped). Header offsets that now lie past the data are
    /// left as they are, as in Linux.
    ///
    /// # Deviations from Linux
    /// `skb_trim()` silently ignores a `len` larger than the skb; this
    /// returns [`SkbError::TooShort`] so the caller learns of its mistake.
    #[doc(alias = "skb_trim")]
    pub fn trim(&mut self, len: usize) -> Result<(), SkbError> {
        if len > self.len() {
            return Err(SkbError::TooShort {
                needed: len,
                len: self.len(),
            });
        }
        let headlen = self.headlen();
        if len <= headlen {
            self.tail = (self.data_off() + len) as u32;
            self.clear_frags();
            return Ok(());
        }
        // pskb_trim(): keep the fragments that hold the first bytes.
        let mut left = len - headlen;
        if let Some(sh) = self.shinfo.as_deref_mut() {
            sh.frags.retain_mut(|f| {
                let keep = left.min(f.len);
                f.len = keep;
                left -= keep;
                keep != 0
            });
        }
        // Less than the old data_len, which fits in u32.
        self.data_len = (len - headlen) as u32;
        Ok(())
    }

    /// Moves the start of an empty skb's data forward by `len` bytes,
    /// creating headroom.
    ///
    /// Mirrors `skb_reserve()`. Fails with [`SkbError::NotEmpty`] on an skb
    /// that holds data and [`SkbError::NoTailroom`] past the buffer's end.
    #[doc(alias = "skb_reserve")]
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<(), SkbError> {
        if !self.is_empty() {
            return Err(SkbError::NotEmpty { len: self.len() });
        }
        if len > self.tailroom() {
            return Err(SkbError::NoTailroom {
                needed: len,
                tailroom: self.tailroom(),
            });
        }
        // Within the buffer, whose size fits in u32.
        self.data += len as u32;
        self.tail += len as u32;
        Ok(())
    }

    /// Whether the buffer is shared with a clone.
    ///
    /// Mirrors `skb_cloned()`.
    #[doc(alias = "skb_cloned")]
    #[inline]
    pub fn is_cloned(&self) -> bool {
        self.page.is_shared()
    }

    /// Gives this skb a private copy of its buffer if it shares it with a
    /// clone; does nothing otherwise.
    ///
    /// Mirrors `skb_unshare()` (which calls `skb_copy()` on a cloned skb).
    /// The copy comes from the same pool; fails with [`SkbError::NoMem`]
    /// (leaving the skb shared) when the pool is exhausted.
    #[doc(alias = "skb_unshare")]
    #[doc(alias = "skb_cow")]
    #[inline]
    pub fn unshare(&mut self) -> Result<(), SkbError> {
        if !self.page.is_shared() {
            return Ok(());
        }
        self.unshare_slow()
    }

    /// The copying part of [`SkBuff::unshare`], out of line.
    #[cold]
    #[inline(never)]
    fn unshare_slow(&mut self) -> Result<(), SkbError> {
        let page = self.copy_page()?;
        self.page = page;
        Ok(())
    }

    /// A deep copy: same data, headroom, header offsets and metadata, in a
    /// new buffer from the same pool.
    ///
    /// Mirrors `skb_copy()` in `net/core/skbuff.c`; the fragments (never
    /// written through an skb) are shared, not copied, as `pskb_copy()`
    /// does.
    #[doc(alias = "skb_copy")]
    pub fn copy(&self) -> Result<SkBuff, SkbError> {
        let page = self.copy_page()?;
        let mut copy = self.share_fields();
        copy.page = page;
        Ok(copy)
    }

    fn copy_page(&self) -> Result<Page, SkbError> {
        let src = self.page.bytes();
        let mut buf = self
            .page
            .pool()
            .alloc_size(src.len())
            .ok_or(SkbError::NoMem)?;
        let tail = self.tail_off();
        buf[..tail].copy_from_slice(&src[..tail]);
        Ok(buf.into_page())
    }

    fn share_fields(&self) -> SkBuff {
        let mut c = self.share_head();
        *c.shinfo = self.shinfo.as_deref().map(|sh| {
            let mut c = SkbSharedInfo::alloc();
            c.frags.extend(sh.frags.iter().map(SkbFrag::share));
            c.frag_truesize = sh.frag_truesize;
            c
        });
        c
    }

    /// A copy of the metadata sharing the head buffer, without fragments
    /// (`shinfo` empty, but `data_len` copied: the caller sets both).
    #[inline]
    fn share_head(&self) -> SkBuff {
        SkBuff {
            page: self.page.share(),
            data: self.data,
            tail: self.tail,
            mac_header: self.mac_header,
            network_header: self.network_header,
            transport_header: self.transport_header,
            protocol: self.protocol,
            ifindex: self.ifindex,
            mark: self.mark,
            priority: self.priority,
            queue_mapping: self.queue_mapping,
            hash: self.hash,
            l4_hash: self.l4_hash,
            sw_hash: self.sw_hash,
            pkt_type: self.pkt_type,
            ip_summed: self.ip_summed,
            gso_size: self.gso_size,
            gso_segs: self.gso_segs,
            gso_type: self.gso_type,
            tstamp: self.tstamp,
            vlan_tci: self.vlan_tci,
            nfct: self.nfct,
            owner: ManuallyDrop::new(None),
            shinfo: ManuallyDrop::new(None),
            data_len: self.data_len,
        }
    }

    /// The whole buffer for writing, unsharing first.
    #[inline]
    fn buf_mut(&mut self) -> Result<&mut [u8], SkbError> {
        self.unshare()?;
        self.page.bytes_mut().ok_or(SkbError::NoMem)
    }

    /// Sets the flow hash and whether it covers L4 ports.
    ///
    /// Mirrors `skb_set_hash()` with `PKT_HASH_TYPE_L4` (`l4 = true`) or
    /// `PKT_HASH_TYPE_L3`.
    #[doc(alias = "skb_set_hash")]
    #[inline]
    pub fn set_hash(&mut self, hash: u32, l4: bool) {
        self.hash = hash;
        self.l4_hash = l4;
        self.sw_hash = false;
    }

    /// Forgets the flow hash. Mirrors `skb_clear_hash()`.
    #[doc(alias = "skb_clear_hash")]
    pub fn clear_hash(&mut self) {
        self.hash = 0;
        self.l4_hash = false;
        self.sw_hash = false;
    }

    /// Whether this is a GSO skb (`skb_is_gso()`).
    #[doc(alias = "skb_is_gso")]
    #[inline]
    pub fn is_gso(&self) -> bool {
        self.gso_size != 0
    }

    /// Appends the data of `from` past its first `offset` bytes to this
    /// skb as fragments, sharing `from`'s buffers: no byte is copied.
    ///
    /// Mirrors the chaining part of `skb_gro_receive()` in
    /// `net/core/gro.c`: the linear payload of `from` becomes one fragment
    /// of its buffer (`skb->head_frag`), and its own fragments move over.
    /// `from` is consumed (its owner, if any, is released). Fails with
    /// [`SkbError::TooShort`] when `offset` is past `from`'s data, and with
    /// [`SkbError::TooBig`] when the fragments would hold more than
    /// [`u32::MAX`] bytes, handing `from` back.
    #[doc(alias = "skb_gro_receive")]
    pub fn append_frags(
        &mut self,
        mut from: SkBuff,
        offset: usize,
    ) -> Result<(), (Box<SkBuff>, SkbError)> {
        if offset > from.len() {
            let e = SkbError::TooShort {
                needed: offset,
                len: from.len(),
            };
            return Err((Box::new(from), e));
        }
        let added = from.len() - offset;
        let total = self.data_len() + added;
        if total > u32::MAX as usize {
            let e = SkbError::TooBig {
                size: total,
                max: u32::MAX as usize,
            };
            return Err((Box::new(from), e));
        }
        let head = from.headlen();
        let sh = self.shinfo.get_or_insert_with(SkbSharedInfo::alloc);
        sh.reserve_frag(added);
        // Take `from` apart: release its owner while it is still whole,
        // then move its buffer and fragments out (no reference count is
        // touched). Nothing is left for its drop to release, so it is
        // forgotten rather than dropped field by field.
        let from_off = from.data_off();
        from.orphan();
        let page = from.page.take();
        let from_sh = from.shinfo.take();
        core::mem::forget(from);
        if offset < head {
            sh.frag_truesize += page.bytes().len() as isize;
            sh.frags.push(SkbFrag {
                page,
                off: from_off + offset,
                len: head - offset,
            });
        } else {
            drop(page);
        }
        let mut skip = offset.saturating_sub(head);
        if let Some(mut from_sh) = from_sh {
            for mut f in from_sh.frags.drain(..) {
                let cut = skip.min(f.len);
                skip -= cut;
                f.off += cut;
                f.len -= cut;
                if f.len != 0 {
                    sh.frag_truesize += f.page.bytes().len() as isize;
                    sh.frags.push(f);
                }
            }
            SkbSharedInfo::free(from_sh);
        }
        // Checked against u32::MAX above.
        self.data_len = total as u32;
        Ok(())
    }

    /// Appends `from`'s data past its first `offset` bytes as fragments
    /// sharing its buffers, leaving `from` as it is: the result of
    /// `self.append_frags(from.clone(), offset)` without building the
    /// clone (one reference taken per buffer appended, no metadata copied,
    /// no fragment list allocated and freed). The truesize grows as
    /// [`SkBuff::append_frags`]'s does, by each appended buffer whole.
    ///
    /// Mirrors `skb_gro_receive()`'s chaining as [`SkBuff::append_frags`]
    /// does, for a caller that keeps its skb (TCP's write queue building a
    /// GSO skb from its segments, where Linux's `tcp_transmit_skb()`
    /// clones). Fails with [`SkbError::TooShort`] when `offset` is past
    /// `from`'s data and with [`SkbError::TooBig`] past [`u32::MAX`] bytes
    /// of fragments, leaving this skb unchanged.
    pub fn append_frags_shared(&mut self, from: &SkBuff, offset: usize) -> Result<(), SkbError> {
        if offset > from.len() {
            return Err(SkbError::TooShort {
                needed: offset,
                len: from.len(),
            });
        }
        let added = from.len() - offset;
        let total = self.data_len() + added;
        if total > u32::MAX as usize {
            return Err(SkbError::TooBig {
                size: total,
                max: u32::MAX as usize,
            });
        }
        let head = from.headlen();
        let sh = self.shinfo.get_or_insert_with(SkbSharedInfo::alloc);
        sh.reserve_frag(added);
        if offset < head {
            sh.frag_truesize += from.page.bytes().len() as isize;
            sh.frags.push(SkbFrag {
                page: from.page.share(),
                off: from.data_off() + offset,
                len: head - offset,
            });
        }
        let mut skip = offset.saturating_sub(head);
        for f in from.frag_slice() {
            let cut = skip.min(f.len);
            skip -= cut;
            if f.len != cut {
                sh.frag_truesize += f.page.bytes().len() as isize;
                sh.frags.push(SkbFrag {
                    page: f.page.share(),
                    off: f.off + cut,
                    len: f.len - cut,
                });
            }
        }
        // Checked against u32::MAX above.
        self.data_len = total as u32;
        Ok(())
    }

    /// Appends `len` bytes of `from`'s data, starting `offset` bytes past
    /// its `data`, to this skb as fragments that share `from`'s buffers
    /// (its linear part and its fragments alike): no byte is copied and
    /// `from` is left as it is. The truesize grows by the bytes taken.
    ///
    /// Mirrors the fragment-sharing part of `skb_segment()` in
    /// `net/core/skbuff.c` (each segment takes a reference on the pages
    /// its payload lies in, `nskb->truesize += nskb->data_len`). Fails with
    /// [`SkbError::TooShort`] when the range ends past `from`'s data, and
    /// with [`SkbError::TooBig`] past [`u32::MAX`] bytes of fragments,
    /// leaving this skb unchanged.
    #[doc(alias = "skb_segment")]
    pub fn add_shared_frags(
        &mut self,
        from: &SkBuff,
        offset: usize,
        len: usize,
    ) -> Result<(), SkbError> {
        let needed = offset.saturating_add(len);
        if needed > from.len() {
            return Err(SkbError::TooShort {
                needed,
                len: from.len(),
            });
        }
        let total = self.data_len() + len;
        if total > u32::MAX as usize {
            return Err(SkbError::TooBig {
                size: total,
                max: u32::MAX as usize,
            });
        }
        if len == 0 {
            return Ok(());
        }
        let sh = self.shinfo.get_or_insert_with(SkbSharedInfo::alloc);
        let head = (&from.page, from.data_off(), from.headlen());
        let pieces =
            core::iter::once(head).chain(from.frag_slice().iter().map(|f| (&f.page, f.off, f.len)));
        let mut pos = 0; // offset of the current piece's first byte
        let mut done = 0;
        for (page, off, plen) in pieces {
            if done == len {
                break;
            }
            let end = pos + plen;
            let at = offset + done;
            if at < end {
                let n = (end - at).min(len - done);
                sh.frags.push(SkbFrag {
                    page: page.share(),
                    off: off + (at - pos),
                    len: n,
                });
                done += n;
            }
            pos = end;
        }
        sh.frag_truesize += len as isize;
        // Checked against u32::MAX above.
        self.data_len = total as u32;
        Ok(())
    }

    /// A clone of the `len` bytes of data that start `offset` bytes past
    /// `data`, sharing only the buffers those bytes lie in: the head buffer
    /// (with an empty linear part when the range starts past it) and the
    /// fragments the range covers, cut to it. No byte is copied, and no
    /// reference is taken on a fragment outside the range. The clone has
    /// no owner; its truesize counts the fragment bytes it took, as
    /// [`SkBuff::add_shared_frags`] does.
    ///
    /// What `skb_clone()` followed by `pskb_pull(offset)` and
    /// `pskb_trim(len)` would leave, without taking and dropping a
    /// reference on every fragment outside the range. Linux has no such
    /// call: its drivers map each piece of an skb for DMA
    /// (`igb_tx_map()`), where a descriptor here holds an skb of its own
    /// (see `nic_hw`'s transmit path). Fails with [`SkbError::TooShort`]
    /// when the range ends past the data.
    pub fn clone_range(&self, offset: usize, len: usize) -> Result<SkBuff, SkbError> {
        let needed = offset.saturating_add(len);
        if needed > self.len() {
            return Err(SkbError::TooShort {
                needed,
                len: self.len(),
            });
        }
        let headlen = self.headlen();
        let mut c = self.share_head();
        c.data_len = 0;
        // The linear part: the head bytes the range covers (none when it
        // starts past them).
        let head_start = offset.min(headlen);
        let head_end = needed.min(headlen);
        // Within the buffer: both are at most headlen past data.
        c.data = (self.data_off() + head_start) as u32;
        c.tail = (self.data_off() + head_end) as u32;
        if needed > headlen {
            let mut sh = SkbSharedInfo::alloc();
            let mut pos = headlen; // offset of the current fragment's first byte
            for f in self.frag_slice() {
                let end = pos + f.len;
                if end > offset && pos < needed {
                    let from = offset.max(pos);
                    let to = needed.min(end);
                    sh.frags.push(SkbFrag {
                        page: f.page.share(),
                        off: f.off + (from - pos),
                        len: to - from,
                    });
                }
                if end >= needed {
                    break;
                }
                pos = end;
            }
            let taken = needed - headlen.max(offset);
            sh.frag_truesize = taken as isize;
            // At most the original's data_len, which fits in u32.
            c.data_len = taken as u32;
            *c.shinfo = Some(sh);
        }
        Ok(c)
    }

    /// Copies `to.len()` bytes of data starting `offset` bytes past `data`
    /// into `to`, reading across the linear part and the fragments.
    ///
    /// Mirrors `skb_copy_bits()` in `net/core/skbuff.c`. Fails with
    /// [`SkbError::TooShort`] when the range ends past the data.
    #[doc(alias = "skb_copy_bits")]
    pub fn copy_bits(&self, offset: usize, to: &mut [u8]) -> Result<(), SkbError> {
        let needed = offset.saturating_add(to.len());
        if needed > self.len() {
            return Err(SkbError::TooShort {
                needed,
                len: self.len(),
            });
        }
        let mut pos = 0; // offset of the current piece's first byte
        let mut done = 0;
        for piece in core::iter::once(self.data()).chain(self.frags()) {
            if done == to.len() {
                break;
            }
            let end = pos + piece.len();
            let from = offset + done;
            if from < end {
                let n = (end - from).min(to.len() - done);
                to[done..done + n].copy_from_slice(&piece[from - pos..from - pos + n]);
                done += n;
            }
            pos = end;
        }
        Ok(())
    }

    /// The 32-bit one's-complement sum of `len` bytes of data from
    /// `offset`, added to `sum`, across the linear part and the fragments.
    ///
    /// Mirrors `skb_checksum()` in `net/core/skbuff.c` (pieces joined with
    /// `csum_block_add()`, which swaps bytes after an odd-length piece).
    /// Fails with [`SkbError::TooShort`] when the range ends past the data.
    #[doc(alias = "skb_checksum")]
    pub fn checksum(&self, offset: usize, len: usize, sum: u32) -> Result<u32, SkbError> {
        let needed = offset.saturating_add(len);
        if needed > self.len() {
            return Err(SkbError::TooShort {
                needed,
                len: self.len(),
            });
        }
        let mut csum = sum;
        let mut pos = 0;
        let mut done = 0;
        for piece in core::iter::once(self.data()).chain(self.frags()) {
            if done == len {
                break;
            }
            let end = pos + piece.len();
            let from = offset + done;
            if from < end {
                let n = (end - from).min(len - done);
                let part = wire::csum_partial(&piece[from - pos..from - pos + n], 0);
                csum = wire::csum_block_add(csum, part, done);
                done += n;
            }
            pos = end;
        }
        Ok(csum)
    }

    /// Moves every fragment's bytes into the linear part, so that
    /// [`SkBuff::data`] is the whole packet. Does nothing on a linear skb.
    ///
    /// Mirrors `skb_linearize()` (`__pskb_pull_tail()` of all of
    /// `data_len`): the bytes go into the tailroom when they fit and the
    /// buffer is not shared, else into a new buffer of the same pool that
    /// keeps the headroom and header offsets. Fails with
    /// [`SkbError::TooBig`] or [`SkbError::NoMem`] (the skb unchanged) when
    /// no buffer can hold the packet.
    #[doc(alias = "skb_linearize")]
    #[doc(alias = "__pskb_pull_tail")]
    pub fn linearize(&mut self) -> Result<(), SkbError> {
        if !self.is_nonlinear() {
            return Ok(());
        }
        let charged = self.truesize();
        let tail = self.tail_off();
        let need = tail + self.data_len();
        if self.tailroom() < self.data_len() || self.page.is_shared() {
            let pool = self.page.pool();
            if need > pool.max_buf_size() {
                return Err(SkbError::TooBig {
                    size: need,
                    max: pool.max_buf_size(),
                });
            }
            let mut buf = pool.alloc_size(need).ok_or(SkbError::NoMem)?;
            buf[..tail].copy_from_slice(&self.page.bytes()[..tail]);
            self.page = buf.into_page();
        }
        let buf = self.page.bytes_mut().ok_or(SkbError::NoMem)?;
        let mut at = tail;
        for f in self.shinfo.as_deref().map_or(&[][..], |sh| &sh.frags) {
            buf[at..at + f.len].copy_from_slice(f.bytes());
            at += f.len;
        }
        // `need` fits in the buffer, whose size fits in u32.
        self.tail = at as u32;
        self.clear_frags();
        // pskb_expand_head(): an skb nobody has charged is recounted (its
        // fragments' buffers are gone, its head may be new); an owned one
        // keeps the truesize its owner charged.
        let base = self.page.bytes().len() + core::mem::size_of::<SkBuff>();
        let owned = self.owner.is_some();
        if let Some(sh) = self.shinfo.as_deref_mut() {
            sh.frag_truesize = if owned {
                charged as isize - base as isize
            } else {
                0
            };
        }
        Ok(())
    }

    /// Makes `owner` the skb's owner: its [`SkbDestructor::destruct`] runs
    /// when the skb is freed. An earlier owner is released first.
    ///
    /// Mirrors the `skb_orphan()` + `skb->sk = sk; skb->destructor = ...`
    /// part of `skb_set_owner_w()` in `net/core/sock.c`; charging
    /// `sk_wmem_alloc` is the caller's part.
    #[doc(alias = "skb_set_owner_w")]
    pub fn set_destructor(&mut self, owner: Arc<dyn SkbDestructor>) {
        self.orphan();
        *self.owner = Some(SkbOwner(owner));
    }

    /// Runs the destructor now and forgets the owner, so the skb no longer
    /// counts against its socket. Does nothing on an skb without one.
    ///
    /// Mirrors `skb_orphan()` in `include/linux/skbuff.h`.
    #[doc(alias = "skb_orphan")]
    #[inline]
    pub fn orphan(&mut self) {
        if let Some(SkbOwner(owner)) = self.owner.take() {
            owner.destruct(self);
        }
    }

    /// Whether a destructor is set (`skb->destructor != NULL`).
    #[inline]
    pub fn has_destructor(&self) -> bool {
        self.owner.is_some()
    }

    /// Identifies the owning socket while the skb has one: the same value
    /// for every skb of one owner, for as long as the owner lives. A qdisc
    /// keys its per-socket flows on it, as sch_fq keys them on `skb->sk`.
    #[inline]
    pub fn sk_id(&self) -> Option<usize> {
        self.owner
            .as_ref()
            .map(|SkbOwner(o)| Arc::as_ptr(o).cast::<()>() as usize)
    }

    /// Tells the owning socket, if any, that the qdisc paces its skbs
    /// ([`SkbDestructor::set_pacing_status_fq`]).
    #[inline]
    pub fn set_sk_pacing_status_fq(&self) {
        if let Some(SkbOwner(o)) = self.owner.as_ref() {
            o.set_pacing_status_fq();
        }
    }

    #[inline(always)]
    fn header_offset(&self, header: &'static str, offset: usize) -> Result<u32, SkbError> {
        // A header inside the linear data (the common case: one the caller
        // has just parsed) is inside the buffer: no need to read the
        // buffer's size.
        if offset <= self.headlen() {
            // At most `tail`, which fits in u32.
            return Ok((self.data_off() + offset) as u32);
        }
        let room = self.end_offset() - self.data_off();
        if offset > room {
            return Err(header_out_of_range(header, offset, room));
        }
        // At most the buffer size, which is below NO_HEADER (u32::MAX).
        Ok((self.data_off() + offset) as u32)
    }

    #[inline]
    fn header_slice(&self, at: u32) -> Option<&[u8]> {
        if at == NO_HEADER {
            return None;
        }
        let at = at as usize;
        self.page.bytes().get(at..self.tail_off().max(at))
    }

    fn header_slice_mut(&mut self, header: &'static str, at: u32) -> Result<&mut [u8], SkbError> {
        if at == NO_HEADER {
            return Err(SkbError::HeaderNotSet { header });
        }
        let at = at as usize;
        let end = self.tail_off().max(at);
        Ok(&mut self.buf_mut()?[at..end])
    }
}

/// The error of a `pull` past the linear part, out of line.
#[cold]
#[inline(never)]
fn too_short(needed: usize, len: usize) -> SkbError {
    SkbError::TooShort { needed, len }
}

/// The error of a header offset past the buffer, built out of line so the
/// inlined setters stay short.
#[cold]
#[inline(never)]
fn header_out_of_range(header: &'static str, offset: usize, room: usize) -> SkbError {
    SkbError::HeaderOutOfRange {
        header,
        offset,
        room,
    }
}

macro_rules! header_accessors {
    ($field:ident, $name:literal, [$a_reset:literal, $a_set:literal, $a_get:literal, $a_off:literal], $reset:ident, $set:ident, $get:ident, $get_mut:ident, $offset:ident, $was_set:ident) => {
        impl SkBuff {
            #[doc = concat!("Marks the start of the data as the ", $name, " header.")]
            ///
            #[doc = concat!("Mirrors `skb_reset_", $name, "_header()`.")]
            #[doc(alias = $a_reset)]
            #[inline(always)]
            pub fn $reset(&mut self) {
                self.$field = self.data;
            }

            #[doc = concat!("Marks `offset` bytes past the start of the data as the ", $name, " header.")]
            ///
            #[doc = concat!("Mirrors `skb_set_", $name, "_header()`. Fails with ")]
            /// [`SkbError::HeaderOutOfRange`] past the end of the buffer.
            #[doc(alias = $a_set)]
            #[inline(always)]
            pub fn $set(&mut self, offset: usize) -> Result<(), SkbError> {
                self.$field = self.header_offset($name, offset)?;
                Ok(())
            }

            #[doc = concat!("The bytes from the ", $name, " header to the end of the data, or `None` if it was never set.")]
            ///
            #[doc = concat!("Mirrors `skb_", $name, "_header()`.")]
            #[doc(alias = $a_get)]
            #[inline(always)]
            pub fn $get(&self) -> Option<&[u8]> {
                self.header_slice(self.$field)
            }

            #[doc = concat!("The bytes from the ", $name, " header to the end of the data, for writing (unshares first).")]
            pub fn $get_mut(&mut self) -> Result<&mut [u8], SkbError> {
                self.header_slice_mut($name, self.$field)
            }

            #[doc = concat!("The ", $name, " header's offset from the start of the data (negative once pulled past).")]
            ///
            #[doc = concat!("Mirrors `skb_", $name, "_offset()`.")]
            #[doc(alias = $a_off)]
            #[inline(always)]
            pub fn $offset(&self) -> Option<isize> {
                (self.$field != NO_HEADER).then(|| self.$field as isize - self.data as isize)
            }

            #[doc = concat!("Whether the ", $name, " header was set.")]
            #[inline(always)]
            pub fn $was_set(&self) -> bool {
                self.$field != NO_HEADER
            }
        }
    };
}

header_accessors!(
    mac_header,
    "mac",
    [
        "skb_reset_mac_header",
        "skb_set_mac_header",
        "skb_mac_header",
        "skb_mac_offset"
    ],
    reset_mac_header,
    set_mac_header,
    mac_header,
    mac_header_mut,
    mac_offset,
    mac_header_was_set
);
header_accessors!(
    network_header,
    "network",
    [
        "skb_reset_network_header",
        "skb_set_network_header",
        "skb_network_header",
        "skb_network_offset"
    ],
    reset_network_header,
    set_network_header,
    network_header,
    network_header_mut,
    network_offset,
    network_header_was_set
);
header_accessors!(
    transport_header,
    "transport",
    [
        "skb_reset_transport_header",
        "skb_set_transport_header",
        "skb_transport_header",
        "skb_transport_offset"
    ],
    reset_transport_header,
    set_transport_header,
    transport_header,
    transport_header_mut,
    transport_offset,
    transport_header_was_set
);

impl Drop for SkBuff {
    /// Runs the owner's destructor, then releases the buffer to its pool.
    /// Mirrors `skb_release_head_state()` + `skb_release_data()`.
    ///
    /// The common skb (no owner, no fragments) only tests two fields here;
    /// its buffer goes back to the pool's per-thread cache when the `page`
    /// field drops. The rest is out of line in [`SkBuff::release_slow`].
    #[inline]
    fn drop(&mut self) {
        if self.owner.is_some() || self.shinfo.is_some() {
            self.release_slow();
        }
    }
}

impl SkBuff {
    /// The uncommon part of freeing an skb: the owner's destructor
    /// (`skb_release_head_state()`) and the fragments
    /// (`skb_release_data()` dropping the `frags` references).
    #[cold]
    #[inline(never)]
    fn release_slow(&mut self) {
        self.orphan();
        if let Some(sh) = self.shinfo.take() {
            SkbSharedInfo::free(sh);
        }
    }
}

impl Clone for SkBuff {
    /// A second skb over the same buffer, with its own copy of the window,
    /// header offsets and metadata. Costs no buffer and no copy; the first
    /// write through either skb unshares it. The clone has no owner
    /// (`skb_clone()` sets `n->destructor = NULL`).
    ///
    /// Mirrors `skb_clone()` in `net/core/skbuff.c`.
    #[doc(alias = "skb_clone")]
    fn clone(&self) -> SkBuff {
        self.share_fields()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_pool::{PagePoolParams, SizeClass};

    fn pool(limit: Option<usize>) -> PagePool {
        PagePool::new(PagePoolParams {
            small: SizeClass {
                buf_size: 256,
                pool_size: 16,
                limit,
            },
            large: None,
        })
        .unwrap()
    }

    #[test]
    fn push_pull_put_trim_reserve() {
        let p = pool(None);
        let mut skb = SkBuff::alloc(&p, 200).unwrap();
        assert_eq!((skb.len(), skb.headroom(), skb.tailroom()), (0, 0, 256));
        skb.reserve(32).unwrap();
        assert_eq!((skb.headroom(), skb.tailroom()), (32, 224));
        skb.put_data(b"world").unwrap();
        skb.push(6).unwrap().copy_from_slice(b"hello ");
        assert_eq!(skb.data(), b"hello world");
        assert_eq!(skb.headroom(), 26);
        assert_eq!(skb.pull(6).unwrap(), b"hello ");
        assert_eq!(skb.data(), b"world");
        skb.trim(3).unwrap();
        assert_eq!(skb.data(), b"wor");
        assert_eq!(skb.put_zero(2).unwrap(), &[0, 0]);
        assert_eq!(skb.data(), b"wor\0\0");
        assert_eq!(skb.reserve(1), Err(SkbError::NotEmpty { len: 5 }));
    }

    #[test]
    fn past_the_ends_is_an_error_and_changes_nothing() {
        let p = pool(None);
        let mut skb = SkBuff::from_slice(&p, 10, b"abcd").unwrap();
        assert_eq!(
            skb.push(11).unwrap_err(),
            SkbError::NoHeadroom {
                needed: 11,
                headroom: 10
            }
        );
        assert_eq!(
            skb.pull(5).unwrap_err(),
            SkbError::TooShort { needed: 5, len: 4 }
        );
        assert_eq!(
            skb.put(243).unwrap_err(),
            SkbError::NoTailroom {
                needed: 243,
                tailroom: 242
            }
        );
        assert_eq!(
            skb.trim(5).unwrap_err(),
            SkbError::TooShort { needed: 5, len: 4 }
        );
        assert_eq!(
            (skb.data(), skb.headroom(), skb.tailroom()),
            (&b"abcd"[..], 10, 242)
        );
        assert!(skb.push(10).is_ok());
        assert_eq!(skb.headroom(), 0);
        let e = SkBuff::alloc(&p, 257).unwrap_err();
        assert_eq!(
            e,
            SkbError::TooBig {
                size: 257,
                max: 256
            }
        );
        assert!(e.to_string().contains("at most 256"), "{e}");
    }

    #[test]
    fn header_offsets() {
        let p = pool(None);
        let mut frame = [0u8; 34];
        frame[12] = 0x08;
        frame[14] = 0x45;
        let mut skb = SkBuff::from_slice(&p, NET_SKB_PAD, &frame).unwrap();
        assert!(!skb.mac_header_was_set());
        assert_eq!(
            skb.mac_header_mut().unwrap_err(),
            SkbError::HeaderNotSet { header: "mac" }
        );
        skb.reset_mac_header();
        skb.pull(14).unwrap();
        skb.reset_network_header();
        skb.set_transport_header(20).unwrap();
        assert_eq!(skb.mac_offset(), Some(-14));
        assert_eq!(skb.network_offset(), Some(0));
        assert_eq!(skb.transport_offset(), Some(20));
        assert_eq!(skb.mac_header().unwrap()[12], 0x08);
        assert_eq!(skb.network_header().unwrap()[0], 0x45);
        assert_eq!(skb.transport_header().unwrap().len(), 0);
        skb.network_header_mut().unwrap()[8] = 63;
        assert_eq!(skb.data()[8], 63);
        let e = skb.set_network_header(1000).unwrap_err();
        assert!(matches!(
            e,
            SkbError::HeaderOutOfRange {
                header: "network",
                offset: 1000,
                ..
            }
        ));
    }

    #[test]
    fn header_offset_past_the_data_but_in_the_buffer() {
        let p = pool(None);
        let mut skb = SkBuff::from_slice(&p, NET_SKB_PAD, &[0u8; 20]).unwrap();
        // Inside the data, at its end, and in the tailroom past it: all
        // inside the buffer.
        skb.set_transport_header(20).unwrap();
        assert_eq!(skb.transport_offset(), Some(20));
        skb.set_transport_header(21).unwrap();
        assert_eq!(skb.transport_offset(), Some(21));
        let room = skb.end_offset() - NET_SKB_PAD;
        skb.set_transport_header(room).unwrap();
        assert_eq!(skb.transport_offset(), Some(room as isize));
        assert_eq!(
            skb.set_transport_header(room + 1).unwrap_err(),
            SkbError::HeaderOutOfRange {
                header: "transport",
                offset: room + 1,
                room
            }
        );
        assert_eq!(skb.transport_offset(), Some(room as isize), "unchanged");
    }

    #[test]
    fn advance_moves_data_like_pull() {
        let p = pool(None);
        let mut a = SkBuff::from_slice(&p, NET_SKB_PAD, b"0123456789").unwrap();
        let mut b = a.clone();
        a.advance(4).unwrap();
        assert_eq!(b.pull(4).unwrap(), b"0123");
        assert_eq!(a.data(), b"456789");
        assert_eq!(a.data(), b.data());
        assert_eq!(a.headroom(), NET_SKB_PAD + 4);
        assert_eq!(
            a.advance(7).unwrap_err(),
            SkbError::TooShort { needed: 7, len: 6 }
        );
        assert_eq!(a.data(), b"456789", "a failed advance changes nothing");
        a.advance(6).unwrap();
        assert!(a.is_empty());
    }

    #[test]
    fn append_frags_shared_is_append_frags_of_a_clone() {
        let p = pool(None);
        let mut from = SkBuff::from_slice(&p, 8, b"0123").unwrap();
        from.append_frags(SkBuff::from_slice(&p, 0, b"4567").unwrap(), 0)
            .unwrap();
        let bytes = |s: &SkBuff| {
            let mut v = vec![0; s.len()];
            s.copy_bits(0, &mut v).unwrap();
            v
        };
        for offset in 0..=from.len() {
            let mut a = SkBuff::from_slice(&p, 0, b"hd").unwrap();
            let mut b = SkBuff::from_slice(&p, 0, b"hd").unwrap();
            a.append_frags(from.clone(), offset).unwrap();
            b.append_frags_shared(&from, offset).unwrap();
            assert_eq!(bytes(&a), bytes(&b), "{offset}");
            assert_eq!(
                (a.len(), a.nr_frags(), a.truesize()),
                (b.len(), b.nr_frags(), b.truesize())
            );
        }
        assert_eq!(bytes(&from), b"01234567", "from is left as it is");
        let mut c = SkBuff::from_slice(&p, 0, b"hd").unwrap();
        assert_eq!(
            c.append_frags_shared(&from, 9).unwrap_err(),
            SkbError::TooShort { needed: 9, len: 8 }
        );
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn clone_range_shares_only_the_range() {
        let p = pool(None);
        let mut a = SkBuff::from_slice(&p, 0, b"head").unwrap();
        for f in [&b"one"[..], b"two", b"three"] {
            a.append_frags(SkBuff::from_slice(&p, 0, f).unwrap(), 0)
                .unwrap();
        }
        let bytes = |s: &SkBuff| {
            let mut v = vec![0; s.len()];
            s.copy_bits(0, &mut v).unwrap();
            v
        };
        let whole = bytes(&a);
        assert_eq!(whole, b"headonetwothree");
        for off in 0..=whole.len() {
            for len in 0..=whole.len() - off {
                let c = a.clone_range(off, len).unwrap();
                assert_eq!(bytes(&c), &whole[off..off + len], "{off}+{len}");
                assert_eq!(c.len(), len);
            }
        }
        // "twot": an empty linear part and the two fragments it lies in.
        let c = a.clone_range(7, 4).unwrap();
        assert_eq!((c.headlen(), c.nr_frags(), c.data_len()), (0, 2, 4));
        // "ad" + "o": the head and one fragment.
        let c = a.clone_range(2, 3).unwrap();
        assert_eq!((c.headlen(), c.nr_frags()), (2, 1));
        assert_eq!(
            a.clone_range(10, 6).unwrap_err(),
            SkbError::TooShort {
                needed: 16,
                len: 15
            }
        );
        drop(c);
        assert_eq!(p.stats().inflight(), 4, "the clones hold no buffer");
    }

    #[test]
    fn clone_shares_and_write_copies() {
        let p = pool(None);
        let mut a = SkBuff::from_slice(&p, 16, b"shared").unwrap();
        a.mark = 7;
        let mut b = a.clone();
        assert!(a.is_cloned() && b.is_cloned());
        assert_eq!(p.stats().inflight(), 1, "a clone takes no buffer");
        assert_eq!(b.data(), b"shared");
        assert_eq!(b.mark, 7);
        b.data_mut().unwrap()[0] = b'S';
        assert_eq!(a.data(), b"shared", "the original is intact");
        assert_eq!(b.data(), b"Shared");
        assert!(!a.is_cloned() && !b.is_cloned());
        assert_eq!(p.stats().inflight(), 2);
        // Pushing through a clone also copies first.
        let mut c = a.clone();
        c.push(2).unwrap().copy_from_slice(b"xx");
        assert_eq!(c.data(), b"xxshared");
        assert_eq!(a.data(), b"shared");
        drop((a, b, c));
        assert_eq!(p.stats().inflight(), 0);
    }

    #[test]
    fn cow_fails_cleanly_when_pool_exhausted() {
        let p = pool(Some(1));
        let a = SkBuff::from_slice(&p, 0, b"x").unwrap();
        let mut b = a.clone();
        assert_eq!(b.data_mut().unwrap_err(), SkbError::NoMem);
        assert_eq!(b.push(0).unwrap_err(), SkbError::NoMem);
        assert_eq!(b.data(), b"x");
        assert!(b.is_cloned());
        drop(a);
        assert!(!b.is_cloned());
        b.data_mut().unwrap()[0] = b'y';
        assert_eq!(b.data(), b"y");
        assert_eq!(p.stats().alloc_fail, 2);
    }

    #[test]
    fn copy_is_deep() {
        let p = pool(None);
        let mut a = SkBuff::from_slice(&p, 8, b"abc").unwrap();
        a.reset_network_header();
        a.protocol = ETH_P_IP;
        let mut b = a.copy().unwrap();
        assert!(!a.is_cloned());
        b.data_mut().unwrap()[0] = b'z';
        assert_eq!((a.data(), b.data()), (&b"abc"[..], &b"zbc"[..]));
        assert_eq!(
            (b.protocol, b.headroom(), b.network_offset()),
            (ETH_P_IP, 8, Some(0))
        );
    }

    #[test]
    fn from_page_is_zero_copy() {
        let p = pool(None);
        let mut buf = p.alloc().unwrap();
        buf[NET_SKB_PAD..NET_SKB_PAD + 4].copy_from_slice(b"\x02\0\0\x01");
        let skb = SkBuff::from_page(buf, NET_SKB_PAD, 60).unwrap();
        assert_eq!(skb.len(), 60);
        assert_eq!(&skb.data()[..4], b"\x02\0\0\x01");
        assert_eq!(p.stats().alloc_slow, 1, "no second buffer");
        let buf = p.alloc().unwrap();
        let (buf, e) = SkBuff::from_page(buf, 200, 100).unwrap_err();
        assert_eq!(
            e,
            SkbError::NoTailroom {
                needed: 100,
                tailroom: 56
            }
        );
        assert_eq!(buf.len(), 256, "the buffer comes back");
        let (_, e) = SkBuff::from_page(p.alloc().unwrap(), usize::MAX, 1).unwrap_err();
        assert!(matches!(e, SkbError::NoTailroom { .. }));
    }

    #[test]
    fn netdev_alloc_reserves_pad() {
        let p = PagePool::new(PagePoolParams::default()).unwrap();
        let skb = SkBuff::netdev_alloc(&p, 1514).unwrap();
        assert_eq!(skb.headroom(), NET_SKB_PAD);
        assert!(skb.tailroom() >= 1514);
        let gso = SkBuff::netdev_alloc(&p, 60000).unwrap();
        assert!(gso.tailroom() >= 60000);
    }

    #[test]
    fn steady_state_allocates_nothing() {
        let p = pool(None);
        p.prefill(4);
        let warm = p.stats();
        for i in 0..10_000u32 {
            let mut skb = SkBuff::alloc(&p, 128).unwrap();
            skb.reserve(NET_SKB_PAD).unwrap();
            skb.put_data(&i.to_be_bytes()).unwrap();
            let c = skb.clone();
            assert_eq!(c.data(), i.to_be_bytes());
            drop((skb, c));
        }
        let s = p.stats();
        assert_eq!(s.alloc_slow, warm.alloc_slow, "no new buffer after warm-up");
        assert_eq!(s.alloc_fast - warm.alloc_fast, 10_000);
        assert_eq!(s.recycle_ring - warm.recycle_ring, 10_000);
        assert_eq!(s.release_cnt, 0);
        assert_eq!(s.inflight(), 0);
    }

    #[test]
    fn clones_dropped_on_other_threads_recycle_once() {
        let p = pool(None);
        for _ in 0..200 {
            let a = SkBuff::from_slice(&p, 0, b"x").unwrap();
            let b = a.clone();
            let t = std::thread::spawn(move || drop(b));
            drop(a);
            t.join().unwrap();
        }
        let s = p.stats();
        assert_eq!(s.inflight(), 0);
        assert_eq!(s.recycle_ring + s.release_cnt, 200);
    }

    #[test]
    fn buffer_is_written_in_place_once_its_clones_are_gone() {
        let p = pool(Some(2));
        let mut a = SkBuff::from_slice(&p, 4, b"abcd").unwrap();
        let b = a.clone();
        assert!(a.is_cloned());
        drop(b);
        assert!(!a.is_cloned());
        a.push(2).unwrap().copy_from_slice(b"xy");
        assert_eq!(a.data(), b"xyabcd");
        let s = p.stats();
        assert_eq!(s.alloc_fast + s.alloc_slow, 1, "no copy was made: {s:?}");
        drop(a);
        // The buffer came back unique: the device can write into it again.
        let mut buf = p.alloc().unwrap();
        assert_eq!(&buf[2..8], b"xyabcd", "the same buffer, not cleared");
        buf[2] = b'z';
        assert_eq!(p.stats().alloc_slow, 1);
    }

    #[test]
    fn metadata_and_hash() {
        let p = pool(None);
        let mut skb = SkBuff::alloc(&p, 10).unwrap();
        skb.set_hash(0xdead_beef, true);
        assert!(skb.l4_hash);
        skb.clear_hash();
        assert_eq!((skb.hash, skb.l4_hash), (0, false));
        skb.gso_size = 1448;
        skb.gso_type = SkbGsoType::TCPV4;
        assert!(skb.is_gso());
        assert_eq!(skb.truesize(), 256 + core::mem::size_of::<SkBuff>());
    }

    #[derive(Default)]
    struct Wmem {
        alloc: std::sync::atomic::AtomicUsize,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl SkbDestructor for Wmem {
        fn destruct(&self, skb: &SkBuff) {
            use std::sync::atomic::Ordering::Relaxed;
            self.alloc.fetch_sub(skb.truesize(), Relaxed);
            self.calls.fetch_add(1, Relaxed);
        }
    }

    #[test]
    fn destructor_runs_once_on_free_or_orphan() {
        use std::sync::atomic::Ordering::Relaxed;
        let p = pool(None);
        let sk = Arc::new(Wmem::default());
        let charge = |skb: &mut SkBuff| {
            sk.alloc.fetch_add(skb.truesize(), Relaxed);
            skb.set_destructor(sk.clone());
        };
        let mut a = SkBuff::from_slice(&p, 8, b"one").unwrap();
        charge(&mut a);
        assert!(a.has_destructor());
        let c = a.clone();
        assert!(!c.has_destructor(), "a clone is not charged");
        drop(c);
        assert_eq!(sk.calls.load(Relaxed), 0);
        let d = a.copy().unwrap();
        assert!(!d.has_destructor(), "a copy is not charged");
        drop(d);
        assert_eq!(sk.alloc.load(Relaxed), a.truesize());
        crate::consume_skb(a);
        assert_eq!((sk.alloc.load(Relaxed), sk.calls.load(Relaxed)), (0, 1));

        let mut b = SkBuff::from_slice(&p, 8, b"two").unwrap();
        charge(&mut b);
        b.orphan();
        assert_eq!((sk.alloc.load(Relaxed), sk.calls.load(Relaxed)), (0, 2));
        assert!(!b.has_destructor());
        crate::kfree_skb_reason(b, crate::DropReason::NotSpecified);
        assert_eq!(sk.calls.load(Relaxed), 2, "orphaned: nothing runs on free");

        // Setting a new owner releases the old one first.
        let mut e = SkBuff::from_slice(&p, 8, b"three").unwrap();
        charge(&mut e);
        charge(&mut e);
        assert_eq!(sk.calls.load(Relaxed), 3);
        assert_eq!(sk.alloc.load(Relaxed), e.truesize());
        drop(e);
        assert_eq!((sk.alloc.load(Relaxed), sk.calls.load(Relaxed)), (0, 4));
        assert_eq!(p.stats().inflight(), 0);
    }

    /// A head skb "HDR" followed by the payloads of `parts`, chained as
    /// fragments (each part is an skb with a 2-byte header "h:").
    fn chained(p: &PagePool, parts: &[&[u8]]) -> SkBuff {
        let mut head = SkBuff::from_slice(p, 8, b"HDR").unwrap();
        for part in parts {
            let mut seg = SkBuff::from_slice(p, 8, b"h:").unwrap();
            seg.put_data(part).unwrap();
            head.append_frags(seg, 2).unwrap();
        }
        head
    }

    #[test]
    fn fragments_chain_without_a_copy_and_read_back() {
        let p = pool(None);
        let skb = chained(&p, &[b"hello", b" ", b"world!"]);
        assert_eq!((skb.len(), skb.headlen(), skb.data_len()), (15, 3, 12));
        assert!(skb.is_nonlinear());
        assert_eq!(skb.nr_frags(), 3);
        assert_eq!(skb.data(), b"HDR");
        assert_eq!(p.stats().inflight(), 4, "one buffer per segment, no copy");
        assert_eq!(skb.truesize(), 4 * 256 + core::mem::size_of::<SkBuff>());
        let mut all = [0u8; 15];
        skb.copy_bits(0, &mut all).unwrap();
        assert_eq!(&all, b"HDRhello world!");
        let mut mid = [0u8; 6];
        skb.copy_bits(5, &mut mid).unwrap();
        assert_eq!(&mid, b"llo wo");
        assert_eq!(
            skb.copy_bits(10, &mut [0u8; 6]).unwrap_err(),
            SkbError::TooShort {
                needed: 16,
                len: 15
            }
        );
        // Odd-length pieces: the sum equals that of the contiguous bytes.
        for off in 0..4 {
            let flat = wire::csum_partial(&all[off..], 0);
            let got = skb.checksum(off, 15 - off, 0).unwrap();
            assert_eq!(wire::csum_fold(got), wire::csum_fold(flat), "offset {off}");
        }
        // A fragment's bytes from an skb with fragments of its own.
        let mut outer = SkBuff::from_slice(&p, 0, b"X").unwrap();
        outer.append_frags(skb, 4).unwrap();
        assert_eq!(outer.len(), 12);
        let mut rest = [0u8; 11];
        outer.copy_bits(1, &mut rest).unwrap();
        assert_eq!(&rest, b"ello world!");
        drop(outer);
        assert_eq!(p.stats().inflight(), 0);
    }

    /// `append_frags` moves the segment's buffer into the fragment list:
    /// its owner is released once, a clone of the segment still reads its
    /// bytes, and every buffer returns to the pool exactly once, also past
    /// `MAX_SKB_FRAGS` fragments (as GRO builds a 64 KiB packet).
    #[test]
    fn appended_segments_move_their_buffer_and_release_their_owner() {
        use std::sync::atomic::Ordering::Relaxed;
        let p = pool(None);
        let sk = Arc::new(Wmem::default());
        let mut head = SkBuff::from_slice(&p, 8, b"HDR").unwrap();
        let mut seg = SkBuff::from_slice(&p, 8, b"h:owned").unwrap();
        sk.alloc.fetch_add(seg.truesize(), Relaxed);
        seg.set_destructor(sk.clone());
        head.append_frags(seg, 2).unwrap();
        assert_eq!((sk.alloc.load(Relaxed), sk.calls.load(Relaxed)), (0, 1));
        let seg = SkBuff::from_slice(&p, 8, b"h:shared").unwrap();
        let keep = seg.clone();
        head.append_frags(seg, 2).unwrap();
        for i in 0..3 * MAX_SKB_FRAGS {
            let seg = SkBuff::from_slice(&p, 8, &[b'h', b':', b'a' + (i % 26) as u8]).unwrap();
            head.append_frags(seg, 2).unwrap();
        }
        assert_eq!(head.nr_frags(), 2 + 3 * MAX_SKB_FRAGS);
        assert_eq!(head.len(), 3 + 5 + 6 + 3 * MAX_SKB_FRAGS);
        let mut bytes = vec![0u8; head.len()];
        head.copy_bits(0, &mut bytes).unwrap();
        assert_eq!(&bytes[..15], b"HDRownedshareda");
        assert_eq!(
            bytes.last(),
            Some(&(b'a' + ((3 * MAX_SKB_FRAGS - 1) % 26) as u8))
        );
        assert_eq!(keep.data(), b"h:shared", "the clone still reads its bytes");
        assert_eq!(p.stats().inflight(), 3 + 3 * MAX_SKB_FRAGS as u64);
        drop(head);
        assert_eq!(p.stats().inflight(), 1, "only the clone's buffer is left");
        drop(keep);
        assert_eq!(p.stats().inflight(), 0);
        assert_eq!(sk.calls.load(Relaxed), 1);
    }

    /// truesize is stored, as `skb->truesize`: fragments add their
    /// buffers, a trim keeps it, a linearize keeps what an owner charged
    /// (its destructor gives back exactly that) and recounts an unowned
    /// skb.
    #[test]
    fn truesize_is_stored_and_an_owner_gets_back_what_it_charged() {
        use std::sync::atomic::Ordering::Relaxed;
        let p = pool(None);
        let skb_size = core::mem::size_of::<SkBuff>();
        let mut skb = chained(&p, &[b"abc", b"defg"]);
        assert_eq!(skb.truesize(), 3 * 256 + skb_size);
        skb.trim(5).unwrap();
        assert_eq!(skb.nr_frags(), 1);
        assert_eq!(skb.truesize(), 3 * 256 + skb_size, "a trim keeps it");
        let sk = Arc::new(Wmem::default());
        sk.alloc.fetch_add(skb.truesize(), Relaxed);
        skb.set_destructor(sk.clone());
        skb.linearize().unwrap();
        assert!(!skb.is_nonlinear());
        assert_eq!(skb.data(), b"HDRab");
        assert_eq!(skb.truesize(), 3 * 256 + skb_size, "owned: unchanged");
        let c = skb.clone();
        assert_eq!(c.truesize(), skb.truesize(), "a clone carries it");
        drop(c);
        drop(skb);
        assert_eq!((sk.alloc.load(Relaxed), sk.calls.load(Relaxed)), (0, 1));
        // Unowned: recounted to the one buffer it now has.
        let mut skb = chained(&p, &[b"abc", b"defg"]);
        skb.linearize().unwrap();
        assert_eq!(skb.truesize(), 256 + skb_size);
        drop(skb);
        assert_eq!(p.stats().inflight(), 0);
    }

    /// Shared fragments read back the range they were taken from (across
    /// the linear part and fragments), copy nothing, and keep the buffers
    /// alive after the source is gone.
    #[test]
    fn shared_frags_take_a_range_without_a_copy() {
        let p = pool(None);
        let src = chained(&p, &[b"hello", b" ", b"world!"]);
        assert_eq!(p.stats().inflight(), 4);
        let mut seg = SkBuff::from_slice(&p, 8, b"H").unwrap();
        seg.add_shared_frags(&src, 1, 10).unwrap();
        assert_eq!((seg.len(), seg.headlen(), seg.nr_frags()), (11, 1, 4));
        assert_eq!(p.stats().inflight(), 5, "only the new head: no copy");
        assert_eq!(seg.truesize(), 256 + core::mem::size_of::<SkBuff>() + 10);
        assert_eq!(
            seg.add_shared_frags(&src, 10, 6),
            Err(SkbError::TooShort {
                needed: 16,
                len: 15
            })
        );
        drop(src);
        let mut all = [0u8; 11];
        seg.copy_bits(0, &mut all).unwrap();
        assert_eq!(&all, b"HDRhello wo");
        assert_eq!(p.stats().inflight(), 5);
        drop(seg);
        assert_eq!(p.stats().inflight(), 0);
    }

    /// A freed nonlinear skb's fragment list goes back to the thread's
    /// spares empty (its buffers back to the pool), at most
    /// `SHINFO_CACHE_MAX` of them, and the next nonlinear skb takes one.
    #[test]
    fn fragment_lists_are_reused_empty_and_bounded() {
        let p = pool(None);
        let many: Vec<SkBuff> = (0..100).map(|_| chained(&p, &[b"ab", b"cd"])).collect();
        drop(many);
        assert_eq!(p.stats().inflight(), 0, "every buffer back in the pool");
        let spares = SHINFO_CACHE.with(|c| {
            let c = c.borrow();
            assert!(
                c.iter()
                    .all(|sh| sh.frags.is_empty() && sh.frag_truesize == 0)
            );
            c.len()
        });
        assert_eq!(spares, SHINFO_CACHE_MAX);
        let skb = chained(&p, &[b"xyz"]);
        assert_eq!(
            SHINFO_CACHE.with(|c| c.borrow().len()),
            SHINFO_CACHE_MAX - 1
        );
        let mut b = [0u8; 6];
        skb.copy_bits(0, &mut b).unwrap();
        assert_eq!(&b, b"HDRxyz");
    }

    /// `pskb_pull` takes bytes off the front across the linear part and
    /// the fragments, copying nothing and keeping the truesize.
    #[test]
    fn pskb_pull_reaches_into_the_fragments() {
        let p = pool(None);
        for n in 0..=15 {
            let mut skb = chained(&p, &[b"hello", b" ", b"world!"]);
            let ts = skb.truesize();
            skb.pskb_pull(n).unwrap();
            let mut rest = vec![0u8; skb.len()];
            skb.copy_bits(0, &mut rest).unwrap();
            assert_eq!(rest, &b"HDRhello world!"[n..], "pull {n}");
            assert_eq!(skb.truesize(), ts);
        }
        let mut skb = chained(&p, &[b"ab"]);
        assert_eq!(
            skb.pskb_pull(6),
            Err(SkbError::TooShort { needed: 6, len: 5 })
        );
        assert_eq!(skb.len(), 5);
        drop(skb);
        assert_eq!(p.stats().inflight(), 0);
    }

    #[test]
    fn linearize_in_place_or_into_a_new_buffer() {
        let p = pool(None);
        let mut skb = chained(&p, &[b"abc", b"defg"]);
        skb.reset_network_header();
        skb.linearize().unwrap();
        assert!(!skb.is_nonlinear());
        assert_eq!(skb.data(), b"HDRabcdefg");
        assert_eq!(skb.network_offset(), Some(0));
        assert_eq!(p.stats().inflight(), 1, "the fragments' buffers went back");
        // Shared head: a new buffer, the clone keeps its view.
        let mut a = chained(&p, &[b"xyz"]);
        let b = a.clone();
        a.linearize().unwrap();
        assert_eq!(a.data(), b"HDRxyz");
        assert_eq!((b.data(), b.len()), (&b"HDR"[..], 6));
        // Too big for the pool: an error and nothing changes.
        let big = [7u8; 200];
        let mut c = chained(&p, &[&big, &big]);
        assert_eq!(
            c.linearize().unwrap_err(),
            SkbError::TooBig {
                size: 411,
                max: 256
            }
        );
        assert_eq!(c.len(), 403);
    }

    #[test]
    fn linear_only_operations_on_fragments() {
        let p = pool(None);
        let mut skb = chained(&p, &[b"hello", b"world"]);
        assert_eq!(
            skb.put(1).unwrap_err(),
            SkbError::Nonlinear { data_len: 10 }
        );
        assert!(skb.put(1).unwrap_err().to_string().contains("linearize"));
        assert_eq!(
            skb.pull(4).unwrap_err(),
            SkbError::TooShort { needed: 4, len: 3 }
        );
        skb.trim(10).unwrap();
        assert_eq!((skb.len(), skb.nr_frags()), (10, 2));
        let mut out = [0u8; 10];
        skb.copy_bits(0, &mut out).unwrap();
        assert_eq!(&out, b"HDRhellowo");
        skb.trim(8).unwrap();
        assert_eq!((skb.len(), skb.nr_frags()), (8, 1));
        skb.trim(2).unwrap();
        assert_eq!((skb.data(), skb.nr_frags()), (&b"HD"[..], 0));
        let (seg, e) = skb
            .append_frags(SkBuff::from_slice(&p, 0, b"ab").unwrap(), 3)
            .unwrap_err();
        assert_eq!(e, SkbError::TooShort { needed: 3, len: 2 });
        assert_eq!(seg.data(), b"ab");
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<SkBuff>();
        check::<SkbError>();
    }

    /// Every stage hands skbs on by value, so each move is a copy of the
    /// whole struct: keep it within 112 bytes (two cache lines at most,
    /// where it was 200 with `usize` offsets and the fragment list inline).
    #[test]
    fn skbuff_is_small_to_move() {
        let size = core::mem::size_of::<SkBuff>();
        assert!(size <= 112, "size_of::<SkBuff>() = {size}, limit 112");
        assert_eq!(core::mem::size_of::<Option<Box<SkbSharedInfo>>>(), 8);
    }

    #[test]
    fn unset_headers_and_headers_at_the_buffer_end() {
        let p = pool(None);
        let mut skb = SkBuff::from_slice(&p, 16, b"abcd").unwrap();
        assert!(!skb.mac_header_was_set());
        assert_eq!(skb.network_header(), None);
        assert_eq!(skb.transport_offset(), None);
        assert_eq!(
            skb.transport_header_mut().unwrap_err(),
            SkbError::HeaderNotSet {
                header: "transport"
            }
        );
        // The last valid offset is the buffer's end: an empty header.
        skb.set_transport_header(256 - 16).unwrap();
        assert_eq!(skb.transport_offset(), Some(240));
        assert_eq!(skb.transport_header(), Some(&[][..]));
        assert_eq!(
            skb.set_network_header(241).unwrap_err(),
            SkbError::HeaderOutOfRange {
                header: "network",
                offset: 241,
                room: 240
            }
        );
        assert!(!skb.network_header_was_set());
        skb.reset_mac_header();
        assert_eq!(skb.mac_offset(), Some(0));
        skb.pull(2).unwrap();
        assert_eq!(skb.mac_offset(), Some(-2));
        assert_eq!(skb.mac_header(), Some(&b"abcd"[..]));
    }
}
