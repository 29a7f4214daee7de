//! Small packet handlers for experiments: count what reaches a point.
//!
//! Mirrors a `struct packet_type` registered with `dev_add_pack()` whose
//! `func` only counts (as an `AF_PACKET` socket with a counting BPF
//! program would).

use std::sync::atomic::{AtomicU64, Ordering};

use netcore::{SkBuff, consume_skb};
use softnet::{NetRx, PacketType, PtypeMatch};

/// Counts the packets of one ethertype (or all, as a tap) and their bytes.
#[derive(Debug)]
pub struct PacketCounter {
    kind: PtypeMatch,
    dev: Option<u32>,
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl PacketCounter {
    /// A counter for `kind` on every device, or only on `dev`.
    pub fn new(kind: PtypeMatch, dev: Option<u32>) -> PacketCounter {
        PacketCounter {
            kind,
            dev,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// Packets seen.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    /// Bytes seen (from the network header on).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl<C: ?Sized> PacketType<C> for PacketCounter {
    fn ptype(&self) -> PtypeMatch {
        self.kind
    }

    fn dev(&self) -> Option<u32> {
        self.dev
    }

    fn func(&self, skb: SkBuff, _ctx: &mut C) -> NetRx {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(skb.len() as u64, Ordering::Relaxed);
        consume_skb(skb);
        NetRx::Success
    }

    fn name(&self) -> &'static str {
        "packet_counter"
    }
}
