//! Generic receive offload: the per-NAPI table of held packets.
//!
//! Mirrors `net/core/gro.c`. (This first version passes every packet
//! through; merging follows.)

use netcore::{PagePool, SkBuff};

use crate::dev::GroReceive;

/// What GRO did with a packet.
///
/// Mirrors `enum gro_result` in `include/linux/netdevice.h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroResult {
    /// Merged into a held packet of its flow. `GRO_MERGED`.
    #[doc(alias = "GRO_MERGED")]
    Merged,
    /// Held as the first packet of a flow. `GRO_HELD`.
    #[doc(alias = "GRO_HELD")]
    Held,
    /// Passed up unchanged. `GRO_NORMAL`.
    #[doc(alias = "GRO_NORMAL")]
    Normal,
}

/// GRO counters of one NAPI.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroStats {
    /// Packets merged into a held packet (`GRO_MERGED` results).
    pub merged: u64,
    /// Packets held as the first of a flow (`GRO_HELD` results).
    pub held: u64,
    /// Packets passed up unchanged (`GRO_NORMAL` results).
    pub normal: u64,
    /// Held packets sent up (`napi_gro_complete()` calls).
    pub flushed: u64,
    /// `napi_gro_flush()` calls that sent up at least one packet.
    pub flushes: u64,
}

/// The GRO state of one NAPI (`struct gro_node`).
#[derive(Debug, Default)]
pub(crate) struct GroList {
    pool: Option<PagePool>,
    stats: GroStats,
}

impl GroList {
    pub(crate) fn new() -> GroList {
        GroList::default()
    }

    pub(crate) fn set_pool(&mut self, pool: Option<PagePool>) {
        self.pool = pool;
    }

    pub(crate) fn stats(&self) -> GroStats {
        self.stats
    }

    pub(crate) fn napi_gro_receive(
        &mut self,
        skb: SkBuff,
        sink: &mut dyn GroReceive,
        _jiffies: u64,
    ) -> GroResult {
        self.stats.normal += 1;
        sink.netif_receive_skb(skb);
        GroResult::Normal
    }

    #[allow(clippy::unused_self)] // holds nothing until merging lands
    pub(crate) fn napi_gro_flush(
        &mut self,
        _sink: &mut dyn GroReceive,
        _flush_old: bool,
        _jiffies: u64,
    ) {
    }

    #[allow(clippy::unused_self)] // holds nothing until merging lands
    pub(crate) fn gro_cleanup(&mut self) {}
}
