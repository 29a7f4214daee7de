//! Mapping between the script's sequence/timestamp numbers and live ones.
//!
//! Mirrors `map_inbound_packet()`, `map_outbound_live_packet()` and the TS
//! handling of packetdrill's `run_packet.c` as GRAMMAR.md §4 "Sequence, ACK,
//! SACK and timestamp mapping" describes it. The remote side's numbers are
//! used as written; the local side's ISN is learned from the first outbound
//! SYN or SYN-ACK; outbound TS vals are re-based on the first outbound TS.

use std::collections::BTreeMap;
use std::fmt;

/// The local sequence-number offset of the socket under test.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqMap {
    /// `live_isn − script_isn` (mod 2³²) once learned.
    offset: Option<u32>,
}

impl SeqMap {
    /// A map that has not yet seen the local ISN.
    pub fn new() -> Self {
        SeqMap::default()
    }

    /// Records the local ISN from the first outbound SYN or SYN-ACK.
    pub fn learn_local_isn(&mut self, script_isn: u32, live_isn: u32) {
        self.offset = Some(live_isn.wrapping_sub(script_isn));
    }

    /// `live_isn − script_isn`, once learned.
    pub fn local_offset(&self) -> Option<u32> {
        self.offset
    }

    fn off(self) -> u32 {
        self.offset.unwrap_or(0)
    }

    /// The live value of an inbound `ack N` (acks our data): `N + offset`.
    pub fn inbound_ack(&self, script_ack: u32) -> u32 {
        script_ack.wrapping_add(self.off())
    }

    /// The live edges of an inbound SACK block (it names our data).
    pub fn inbound_sack(&self, block: (u32, u32)) -> (u32, u32) {
        (self.inbound_ack(block.0), self.inbound_ack(block.1))
    }

    /// An outbound live sequence number in script space: `live − offset`.
    pub fn outbound_seq(&self, live_seq: u32) -> u32 {
        live_seq.wrapping_sub(self.off())
    }

    /// An outbound ack or SACK edge (the remote's numbers): unchanged.
    pub fn outbound_ack(&self, live_ack: u32) -> u32 {
        live_ack
    }
}

/// The outbound TCP timestamp map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TsMap {
    /// `(script val, live val)` of the first outbound packet with TS.
    anchor: Option<(u32, u32)>,
    /// Script val → live val of every outbound packet with TS.
    seen: BTreeMap<u32, u32>,
}

/// An inbound `TS ecr` names no earlier outbound `TS val`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownEcr {
    /// The ecr written in the script.
    pub script_ecr: u32,
}

impl fmt::Display for UnknownEcr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inbound TS ecr {} does not echo the TS val of any earlier outbound packet",
            self.script_ecr
        )
    }
}

impl std::error::Error for UnknownEcr {}

impl TsMap {
    /// A map with no outbound TS seen yet.
    pub fn new() -> Self {
        TsMap::default()
    }

    /// A live outbound TS val in script space: `script_anchor + (live −
    /// live_anchor)`; before any anchor, the live value itself.
    pub fn outbound_val(&self, live_val: u32) -> u32 {
        match self.anchor {
            Some((s, l)) => s.wrapping_add(live_val.wrapping_sub(l)),
            None => live_val,
        }
    }

    /// Records an outbound packet whose script line says `TS val script_val`
    /// and whose live TS val is `live_val`. The first call sets the anchor.
    /// Returns the live value in script space (after the anchor is set).
    pub fn record_outbound(&mut self, script_val: u32, live_val: u32) -> u32 {
        if self.anchor.is_none() {
            self.anchor = Some((script_val, live_val));
        }
        self.seen.insert(script_val, live_val);
        self.outbound_val(live_val)
    }

    /// The live value to send for an inbound `TS ecr script_ecr`: the live
    /// val recorded for that script val. With `scaled`
    /// (`--tcp_ts_ecr_scaled`) an unrecorded value is interpolated linearly
    /// between the nearest recorded values (extrapolated with slope 1 past
    /// the ends). `ecr 0` with nothing recorded is sent as 0.
    pub fn inbound_ecr(&self, script_ecr: u32, scaled: bool) -> Result<u32, UnknownEcr> {
        if let Some(&live) = self.seen.get(&script_ecr) {
            return Ok(live);
        }
        if script_ecr == 0 && self.seen.is_empty() {
            return Ok(0);
        }
        if !scaled || self.seen.is_empty() {
            return Err(UnknownEcr { script_ecr });
        }
        let below = self.seen.range(..script_ecr).next_back();
        let above = self.seen.range(script_ecr..).next();
        let live = match (below, above) {
            (Some((&s1, &l1)), Some((&s2, &l2))) => {
                let span = f64::from(s2 - s1);
                let frac = f64::from(script_ecr - s1) / span;
                let dl = f64::from(l2.wrapping_sub(l1));
                l1.wrapping_add((frac * dl).round() as u32)
            }
            (Some((&s, &l)), None) => l.wrapping_add(script_ecr - s),
            (None, Some((&s, &l))) => l.wrapping_sub(s - script_ecr),
            (None, None) => return Err(UnknownEcr { script_ecr }),
        };
        Ok(live)
    }
}

/// Whether an outbound TS val (in script space) is close enough to the
/// script's value: `|Δticks| × tick_usecs ≤ tolerance_usecs`, where the
/// tolerance uses the time since the script started (GRAMMAR.md §4).
pub fn ts_val_ok(
    script_val: u32,
    mapped_live_val: u32,
    tick_usecs: u32,
    tolerance_usecs: i64,
) -> bool {
    let delta = i64::from(mapped_live_val.wrapping_sub(script_val) as i32);
    delta.abs() * i64::from(tick_usecs) <= tolerance_usecs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_isn_offset_maps_both_ways() {
        let mut m = SeqMap::new();
        assert_eq!(m.inbound_ack(1), 1);
        m.learn_local_isn(0, 0xffff_fff0);
        assert_eq!(m.local_offset(), Some(0xffff_fff0));
        // Our ISN+1 is acked by the peer as script `ack 1`.
        assert_eq!(m.inbound_ack(1), 0xffff_fff1);
        assert_eq!(m.inbound_ack(1001), 0x3d9); // wraps
        assert_eq!(m.inbound_sack((2001, 3001)), (0x7c1, 0xba9));
        assert_eq!(m.outbound_seq(0x3d9), 1001);
        assert_eq!(m.outbound_ack(4001), 4001);
    }

    #[test]
    fn ts_vals_rebase_on_the_first_outbound_ts() {
        let mut ts = TsMap::new();
        assert_eq!(ts.record_outbound(100, 5_000_000), 100);
        // 1000 ticks later on the wire.
        assert_eq!(ts.outbound_val(5_001_000), 1100);
        assert_eq!(ts.record_outbound(1100, 5_001_000), 1100);
        // Inbound ecr echoes the live value of the outbound script val.
        assert_eq!(ts.inbound_ecr(100, false), Ok(5_000_000));
        assert_eq!(ts.inbound_ecr(1100, false), Ok(5_001_000));
        assert_eq!(
            ts.inbound_ecr(700, false),
            Err(UnknownEcr { script_ecr: 700 })
        );
        assert_eq!(ts.inbound_ecr(600, true), Ok(5_000_500));
        assert_eq!(ts.inbound_ecr(1200, true), Ok(5_001_100));
        assert_eq!(ts.inbound_ecr(50, true), Ok(4_999_950));
    }

    #[test]
    fn ecr_zero_before_any_outbound_ts() {
        let ts = TsMap::new();
        assert_eq!(ts.inbound_ecr(0, false), Ok(0));
        assert!(ts.inbound_ecr(5, false).is_err());
    }

    #[test]
    fn ts_val_tolerance_in_ticks() {
        // --tcp_ts_tick_usecs=1000 --tolerance_usecs=7000: 7 ticks either way.
        assert!(ts_val_ok(1100, 1107, 1000, 7000));
        assert!(ts_val_ok(1100, 1093, 1000, 7000));
        assert!(!ts_val_ok(1100, 1108, 1000, 7000));
        assert!(ts_val_ok(u32::MAX, 2, 1000, 7000)); // across the wrap
    }
}
