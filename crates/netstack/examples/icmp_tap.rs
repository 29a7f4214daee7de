//! A user-written `ptype_all` handler plugged into a running host from
//! outside the crates: a tap that counts ICMP messages by type, in both
//! directions, as `tcpdump icmp` would see them.
//!
//! `cargo run -p netstack --example icmp_tap`

use std::sync::Arc;

use netcore::Duration;
use netcore::{ETH_P_IP, PktType, SkBuff, consume_skb};
use netstack::{CpuCtx, DEMO_H2, NetstackError, demo_network, schedule_ping};
use parking_lot::Mutex;
use softnet::{NetRx, PacketType, PtypeMatch};

/// One count: ((outgoing, ICMP type), messages).
pub type IcmpCount = ((bool, u8), u64);

/// Counts ICMP messages per (direction, type).
#[derive(Default)]
pub struct IcmpTap {
    /// `(outgoing, icmp type) -> count`.
    pub counts: Mutex<std::collections::BTreeMap<(bool, u8), u64>>,
}

impl PacketType<CpuCtx> for IcmpTap {
    fn ptype(&self) -> PtypeMatch {
        PtypeMatch::All
    }

    fn func(&self, skb: SkBuff, _ctx: &mut CpuCtx) -> NetRx {
        let out = skb.pkt_type == PktType::Outgoing;
        // Outgoing clones start at the Ethernet header, received ones at IP.
        let ip = if out {
            skb.data().get(14..)
        } else {
            Some(skb.data())
        };
        if skb.protocol == ETH_P_IP
            && let Some(ip) = ip
            && ip.len() >= 20
            && ip[9] == 1
        {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            if let Some(&ty) = ip.get(ihl) {
                *self.counts.lock().entry((out, ty)).or_default() += 1;
            }
        }
        consume_skb(skb);
        NetRx::Success
    }

    fn name(&self) -> &'static str {
        "icmp_tap"
    }
}

/// Registers the tap on h1 (`dev_add_pack`), pings h2 three times, and
/// returns the counts.
pub fn run() -> Result<Vec<IcmpCount>, NetstackError> {
    let mut net = demo_network(1)?;
    let tap = Arc::new(IcmpTap::default());
    net.host("h1")?.dev_add_pack(tap.clone());
    let _sock = schedule_ping(&mut net, "h1", DEMO_H2, 3, Duration::from_millis(100), 56)?;
    net.run_for(Duration::from_secs(1))?;
    Ok(tap.counts.lock().iter().map(|(k, v)| (*k, *v)).collect())
}

#[allow(dead_code)] // the test includes this file and calls `run` only
fn main() -> Result<(), NetstackError> {
    for ((out, ty), n) in run()? {
        println!("{} ICMP type {ty}: {n}", if out { "out" } else { "in " });
    }
    Ok(())
}
