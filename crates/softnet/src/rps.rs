//! Receive packet steering and transmit queue selection: CPU masks, the
//! per-queue maps, the flow hash and the two pickers.
//!
//! Mirrors `get_rps_cpu()`, `skb_get_hash()`/`__skb_get_hash()`,
//! `get_xps_queue()`, `skb_tx_hash()` and `netdev_pick_tx()` of
//! `net/core/dev.c`, `struct rps_map`/`struct xps_map` of
//! `include/net/rps.h` / `include/linux/netdevice.h`, `reciprocal_scale()`
//! of `include/linux/math.h`, and the `rps_cpus`/`xps_cpus` attributes of
//! `net/core/net-sysfs.c` (their text is a `%*pb` CPU bitmap).
//!
//! # Deviations from Linux
//!
//! - The flow hash and `reciprocal_scale()` live in `netcore`
//!   ([`netcore::skb_get_hash`], whose Toeplitz software hash is a
//!   deviation of its own); this module re-exports them.
//! - No RFS (`rps_sock_flow_entries` is 0 by default in Linux too) and no
//!   flow limit (`flow_limit_cpu_bitmap` is empty by default).
//! - `skb_tx_hash()` never uses a recorded receive queue (forwarding keeps
//!   `queue_mapping` as the rx queue in Linux); the flow hash always picks.

use core::fmt;

use netcore::{SkBuff, reciprocal_scale, skb_get_hash};

use crate::SoftnetError;

/// A set of CPUs, as `/sys/class/net/DEV/queues/rx-N/rps_cpus` reads and
/// writes it.
///
/// Mirrors `struct cpumask` with `bitmap_parse()` and the `%*pb` format
/// (`bitmap_print_to_pagebuf()`).
#[doc(alias = "cpumask")]
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CpuMask {
    bits: Vec<u64>,
    nr_cpus: usize,
}

impl CpuMask {
    /// The empty mask over `nr_cpus` CPUs.
    pub fn new(nr_cpus: usize) -> CpuMask {
        CpuMask {
            bits: vec![0; nr_cpus.div_ceil(64).max(1)],
            nr_cpus,
        }
    }

    /// The mask of the CPUs in `cpus`. Errors name `cpus` when one is not
    /// below `nr_cpus`.
    pub fn from_cpus(
        nr_cpus: usize,
        cpus: impl IntoIterator<Item = usize>,
    ) -> Result<CpuMask, SoftnetError> {
        let mut m = CpuMask::new(nr_cpus);
        for cpu in cpus {
            if cpu >= nr_cpus {
                return Err(SoftnetError::CpuOutOfRange { cpu, nr_cpus });
            }
            m.bits[cpu / 64] |= 1 << (cpu % 64);
        }
        Ok(m)
    }

    /// Parses the sysfs text: hexadecimal, most significant first, commas
    /// between 32-bit groups, an optional trailing newline (`echo f >
    /// rps_cpus`). Mirrors `bitmap_parse()`; a CPU at or above `nr_cpus`
    /// is refused (`-EOVERFLOW` in Linux).
    pub fn parse(text: &str, nr_cpus: usize) -> Result<CpuMask, SoftnetError> {
        const ACCEPTS: &str = "a hexadecimal CPU mask such as `f` or `00000001,00000000`";
        let bad = || SoftnetError::BadArgument {
            name: "cpumask",
            accepts: ACCEPTS,
        };
        let text = text.trim_end_matches(['\n', '\0']).trim();
        if text.is_empty() {
            return Err(bad());
        }
        let mut m = CpuMask::new(nr_cpus);
        let groups: Vec<&str> = text.split(',').collect();
        for (i, group) in groups.iter().rev().enumerate() {
            if group.is_empty() || group.len() > 8 {
                return Err(bad());
            }
            let v = u32::from_str_radix(group, 16).map_err(|_| bad())?;
            for b in 0..32 {
                if v & (1 << b) != 0 {
                    let cpu = i * 32 + b;
                    if cpu >= nr_cpus {
                        return Err(SoftnetError::CpuOutOfRange { cpu, nr_cpus });
                    }
                    m.bits[cpu / 64] |= 1 << (cpu % 64);
                }
            }
        }
        Ok(m)
    }

    /// How many CPUs the mask spans (`nr_cpu_ids`).
    pub fn nr_cpus(&self) -> usize {
        self.nr_cpus
    }

    /// Whether `cpu` is in the mask (`cpumask_test_cpu()`).
    pub fn contains(&self, cpu: usize) -> bool {
        cpu < self.nr_cpus && self.bits[cpu / 64] & (1 << (cpu % 64)) != 0
    }

    /// Whether no CPU is set (`cpumask_empty()`).
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// The CPUs in the mask, ascending (`for_each_cpu()`).
    pub fn cpus(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nr_cpus).filter(|&c| self.contains(c))
    }
}

impl fmt::Display for CpuMask {
    /// The `%*pb` text: `ceil(nr_cpus / 4)` hex digits, a comma before
    /// every 32-bit group but the first (`ff`, `0,00000001`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nbits = self.nr_cpus.max(1);
        let ngroups = nbits.div_ceil(32);
        for g in (0..ngroups).rev() {
            let mut v: u32 = 0;
            for b in 0..32 {
                if self.contains(g * 32 + b) {
                    v |= 1 << b;
                }
            }
            let digits = if g == ngroups - 1 {
                (nbits - g * 32).div_ceil(4)
            } else {
                8
            };
            if g != ngroups - 1 {
                f.write_str(",")?;
            }
            write!(f, "{v:0digits$x}")?;
        }
        Ok(())
    }
}

/// The CPUs one rx queue steers to, as a dense list.
///
/// Mirrors `struct rps_map` (`len`, `cpus[]`), built by `store_rps_map()`.
#[doc(alias = "rps_map")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpsMap {
    cpus: Vec<u16>,
}

impl RpsMap {
    /// The map of `mask`, or `None` when it is empty (RPS off).
    pub fn from_mask(mask: &CpuMask) -> Option<RpsMap> {
        let cpus: Vec<u16> = mask.cpus().map(|c| c as u16).collect();
        (!cpus.is_empty()).then_some(RpsMap { cpus })
    }

    /// The target CPUs, ascending.
    pub fn cpus(&self) -> &[u16] {
        &self.cpus
    }

    /// The CPU for a flow hash: `cpus[reciprocal_scale(hash, len)]`.
    pub fn cpu_for_hash(&self, hash: u32) -> usize {
        usize::from(self.cpus[reciprocal_scale(hash, self.cpus.len() as u32) as usize])
    }
}

/// The Ethernet frame of an skb, wherever its data starts: from the MAC
/// header if one is set before or at `data` (received, after
/// `eth_type_trans`), else from `data` (transmitted).
pub(crate) fn skb_frame(skb: &SkBuff) -> &[u8] {
    match skb.mac_offset() {
        Some(off) if off <= 0 => skb.mac_header().unwrap_or_else(|| skb.data()),
        _ => skb.data(),
    }
}

/// The per-CPU transmit-queue lists of one device, built from every tx
/// queue's `xps_cpus` mask.
///
/// Mirrors `struct xps_dev_maps` with one `struct xps_map` per CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct XpsMaps {
    /// `per_cpu[cpu]`: the queues whose mask contains `cpu`, ascending.
    pub(crate) per_cpu: Vec<Vec<u16>>,
}

impl XpsMaps {
    pub(crate) fn build(masks: &[CpuMask], nr_cpus: usize) -> Option<XpsMaps> {
        let per_cpu: Vec<Vec<u16>> = (0..nr_cpus)
            .map(|cpu| {
                masks
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| m.contains(cpu))
                    .map(|(q, _)| q as u16)
                    .collect()
            })
            .collect();
        per_cpu
            .iter()
            .any(|q| !q.is_empty())
            .then_some(XpsMaps { per_cpu })
    }

    /// Mirrors `__get_xps_queue_idx()`: one queue, or the flow hash picks
    /// among several; `None` when this CPU has no map.
    pub(crate) fn queue_for(&self, cpu: usize, skb: &mut SkBuff) -> Option<u16> {
        let map = self.per_cpu.get(cpu)?;
        match map.len() {
            0 => None,
            1 => Some(map[0]),
            n => Some(map[reciprocal_scale(skb_get_hash(skb), n as u32) as usize]),
        }
    }
}

/// Picks a transmit queue by flow hash among `qcount` queues.
///
/// Mirrors `skb_tx_hash()` (see the module's deviations).
pub fn skb_tx_hash(skb: &mut SkBuff, qcount: u16) -> u16 {
    reciprocal_scale(skb_get_hash(skb), u32::from(qcount.max(1))) as u16
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn cpumask_text_round_trips_like_sysfs() {
        let m = CpuMask::parse("f\n", 4).unwrap();
        assert_eq!(m.cpus().collect::<Vec<_>>(), [0, 1, 2, 3]);
        assert_eq!(m.to_string(), "f");
        assert_eq!(CpuMask::new(2).to_string(), "0");
        assert_eq!(CpuMask::new(8).to_string(), "00");
        assert_eq!(CpuMask::from_cpus(8, [1, 7]).unwrap().to_string(), "82");
        let wide = CpuMask::parse("1,00000002", 36).unwrap();
        assert_eq!(wide.cpus().collect::<Vec<_>>(), [1, 32]);
        assert_eq!(wide.to_string(), "1,00000002");
        assert_eq!(
            CpuMask::parse("10", 4),
            Err(SoftnetError::CpuOutOfRange { cpu: 4, nr_cpus: 4 })
        );
        let e = CpuMask::parse("xyz", 4).unwrap_err();
        assert!(e.to_string().contains("cpumask"), "{e}");
        assert!(CpuMask::parse("", 4).is_err());
    }

    #[test]
    fn reciprocal_scale_spreads_the_hash_range() {
        assert_eq!(reciprocal_scale(0, 4), 0);
        assert_eq!(reciprocal_scale(u32::MAX, 4), 3);
        assert_eq!(reciprocal_scale(0x8000_0000, 4), 2);
        let map = RpsMap::from_mask(&CpuMask::from_cpus(4, [1, 3]).unwrap()).unwrap();
        assert_eq!(map.cpu_for_hash(0x1000_0000), 1);
        assert_eq!(map.cpu_for_hash(0xf000_0000), 3);
        assert!(RpsMap::from_mask(&CpuMask::new(4)).is_none());
    }

    #[test]
    fn xps_maps_pick_per_cpu() {
        let masks = [
            CpuMask::from_cpus(2, [0]).unwrap(),
            CpuMask::from_cpus(2, [1]).unwrap(),
        ];
        let maps = XpsMaps::build(&masks, 2).unwrap();
        assert_eq!(maps.per_cpu, vec![vec![0], vec![1]]);
        assert!(XpsMaps::build(&[CpuMask::new(2)], 2).is_none());
    }
}
