//! A learning Ethernet switch joining N links, sans-IO.
//!
//! Mirrors the forwarding path of the Linux bridge: `br_handle_frame_finish()`
//! in `net/bridge/br_input.c`, the forwarding database in
//! `net/bridge/br_fdb.c` (`br_fdb_update()`, `br_fdb_find()`,
//! `br_fdb_cleanup()`), and `br_forward()`/`br_flood()` with
//! `should_deliver()` in `net/bridge/br_forward.c`.
//!
//! Each switch port is the B end of its own [`VirtualWire`]; the host
//! attached to port `i` is that wire's A end. The switch is store and
//! forward: a frame is received whole, its FCS checked, its source learned,
//! then it is sent (unchanged, FCS included) on the egress links.
//!
//! ```text
//!  host 0 ══wire 0══╗
//!  host 1 ══wire 1══╬══ [ FDB: MAC -> (port, last seen) ] flood / forward
//!  host 2 ══wire 2══╝
//! ```
//!
//! # Deviations from Linux
//!
//! A hardware switch, not a bridge device: no local delivery to the switch
//! itself, no STP, no VLANs, no hairpin mode. Frames with a bad FCS are
//! dropped at ingress, as a store-and-forward switch does (the Linux bridge
//! never sees an FCS).

use std::collections::{HashMap, VecDeque};

use netcore::{Duration, Instant};

use crate::fcs::{ETH_FCS_LEN, check_fcs};
use crate::phy::{Delivery, Medium, PhyError};
use crate::rng::Rng;
use crate::virtual_wire::{LinkConfig, LinkConfigError, LinkStats, Side, VirtualWire};

/// Default ageing time of learned addresses: 300 s.
///
/// Mirrors `BR_DEFAULT_AGEING_TIME` in `net/bridge/br_private.h`.
pub const BR_DEFAULT_AGEING_TIME: Duration = Duration::from_secs(300);

/// Length of an Ethernet header (two addresses and the type).
const ETH_HLEN: usize = 14;

/// Counters of one switch port.
///
/// Named as `ip -s link` and `ethtool -S` print them for a bridge port's
/// device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchPortStats {
    /// Frames received by the switch on this port.
    pub rx_packets: u64,
    /// Bytes received by the switch on this port (FCS included).
    pub rx_bytes: u64,
    /// Frames the switch sent out of this port.
    pub tx_packets: u64,
    /// Bytes the switch sent out of this port (FCS included).
    pub tx_bytes: u64,
    /// Frames dropped at ingress for a bad FCS.
    pub rx_crc_errors: u64,
    /// Frames dropped at ingress for being shorter than a header plus FCS.
    pub rx_length_errors: u64,
    /// Frames dropped at ingress for an invalid (multicast or zero) source.
    pub rx_dropped: u64,
    /// Frames whose destination was learned on this same port: dropped,
    /// never sent back out (no hairpin).
    pub rx_filtered: u64,
    /// Frames received here that were flooded (broadcast, multicast or
    /// unknown unicast).
    pub flooded: u64,
}

/// One learned address.
///
/// Mirrors `struct net_bridge_fdb_entry` (`dst` and `updated`).
#[derive(Clone, Copy, Debug)]
struct FdbEntry {
    port: usize,
    updated: Instant,
}

#[derive(Debug)]
struct Port {
    wire: VirtualWire,
    stats: SwitchPortStats,
}

/// A learning switch whose ports are links with their own configurations.
///
/// Mirrors a Linux bridge's forwarding (`br_handle_frame_finish()`), as a
/// deterministic sans-IO medium: hosts [`transmit`](Switch::transmit) on a
/// port, the caller drives [`poll`](Switch::poll) at
/// [`next_event`](Switch::next_event), and gets the frames arriving at the
/// hosts.
///
/// ```
/// use netcore::Instant;
/// use nic_hw::{LinkConfig, Switch};
///
/// let mut sw = Switch::new(1);
/// for _ in 0..3 {
///     sw.add_port(LinkConfig::new()).unwrap();
/// }
/// // A broadcast from port 0 reaches ports 1 and 2.
/// let mut frame = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06];
/// frame.resize(60, 0);
/// nic_hw::append_fcs(&mut frame);
/// sw.transmit(Instant::ZERO, 0, frame).unwrap();
/// let got = sw.poll(Instant::from_millis(1));
/// assert_eq!(got.iter().map(|d| d.port).collect::<Vec<_>>(), [1, 2]);
/// ```
#[doc(alias = "net_bridge")]
#[derive(Debug)]
pub struct Switch {
    ports: Vec<Port>,
    fdb: HashMap<[u8; 6], FdbEntry>,
    ageing_time: Duration,
    rng: Rng,
    /// Frames that reached a host, in arrival order, not yet handed out.
    ready: VecDeque<Delivery<usize>>,
}

impl Switch {
    /// A switch with no ports whose links draw their impairments from
    /// `seed`, ageing learned addresses after [`BR_DEFAULT_AGEING_TIME`].
    pub fn new(seed: u64) -> Switch {
        Switch {
            ports: Vec::new(),
            fdb: HashMap::new(),
            ageing_time: BR_DEFAULT_AGEING_TIME,
            rng: Rng::new(seed),
            ready: VecDeque::new(),
        }
    }

    /// Sets how long a learned address lives without being seen again.
    ///
    /// Mirrors `ip link set br0 type bridge ageing_time T`; zero makes every
    /// entry expire at once, so all unicast floods.
    pub fn set_ageing_time(&mut self, ageing_time: Duration) {
        self.ageing_time = ageing_time;
    }

    /// Adds a port whose link (both directions) follows `cfg`; returns its
    /// number (ports count from 0).
    pub fn add_port(&mut self, cfg: LinkConfig) -> Result<usize, LinkConfigError> {
        let index = self.ports.len();
        let wire = VirtualWire::symmetric(cfg, self.rng.fork(index as u64).next_u64())?;
        self.ports.push(Port {
            wire,
            stats: SwitchPortStats::default(),
        });
        Ok(index)
    }

    /// The number of ports.
    pub fn ports(&self) -> usize {
        self.ports.len()
    }

    /// Sends `frame` (FCS included) from the host on `port` at `now`.
    pub fn transmit(&mut self, now: Instant, port: usize, frame: Vec<u8>) -> Result<(), PhyError> {
        let ports = self.ports.len();
        let p = self
            .ports
            .get_mut(port)
            .ok_or(PhyError::NoSuchPort { port, ports })?;
        p.wire.transmit(now, Side::A, frame);
        Ok(())
    }

    /// When the switch next has work: a frame reaching it or a host.
    pub fn next_event(&self) -> Option<Instant> {
        if let Some(d) = self.ready.front() {
            return Some(d.at);
        }
        self.ports.iter().filter_map(|p| p.wire.next_event()).min()
    }

    /// Runs the switch up to `now` and returns every frame that reached a
    /// host, in arrival order (ties by port).
    pub fn poll(&mut self, now: Instant) -> Vec<Delivery<usize>> {
        self.advance(now);
        self.br_fdb_cleanup(now);
        self.ready.drain(..).collect()
    }

    /// Runs the switch up to `now` and returns the next frame that reached
    /// the host on `port`; other hosts' frames stay queued.
    pub fn receive(&mut self, now: Instant, port: usize) -> Option<Delivery<usize>> {
        self.advance(now);
        let i = self.ready.iter().position(|d| d.port == port)?;
        self.ready.remove(i)
    }

    /// The counters of `port`, or `None` if it does not exist.
    pub fn port_stats(&self, port: usize) -> Option<&SwitchPortStats> {
        self.ports.get(port).map(|p| &p.stats)
    }

    /// The counters of `port`'s link, in the direction starting at `from`
    /// (`Side::A` is the host, `Side::B` the switch).
    pub fn link_stats(&self, port: usize, from: Side) -> Option<&LinkStats> {
        self.ports.get(port).map(|p| p.wire.stats(from))
    }

    /// The port `mac` was last seen on, if that was less than the ageing
    /// time before `now`.
    ///
    /// Mirrors `br_fdb_find()` plus the `has_expired()` test.
    #[doc(alias = "br_fdb_find")]
    pub fn fdb_lookup(&self, now: Instant, mac: [u8; 6]) -> Option<usize> {
        self.fdb
            .get(&mac)
            .filter(|e| !self.has_expired(now, e))
            .map(|e| e.port)
    }

    /// Forgets every address not seen for the ageing time.
    ///
    /// Mirrors `br_fdb_cleanup()`.
    pub fn br_fdb_cleanup(&mut self, now: Instant) {
        let ageing = self.ageing_time;
        self.fdb.retain(|_, e| e.updated + ageing > now);
    }

    /// The number of addresses in the forwarding database (expired ones
    /// included until the next cleanup).
    pub fn fdb_len(&self) -> usize {
        self.fdb.len()
    }

    fn has_expired(&self, now: Instant, e: &FdbEntry) -> bool {
        e.updated + self.ageing_time <= now
    }

    /// Processes every event up to `now` in time order.
    fn advance(&mut self, now: Instant) {
        while let Some(t) = self
            .ports
            .iter()
            .filter_map(|p| p.wire.next_event())
            .min()
            .filter(|&t| t <= now)
        {
            for i in 0..self.ports.len() {
                if self.ports[i].wire.next_event() != Some(t) {
                    continue;
                }
                for d in self.ports[i].wire.poll(t) {
                    match d.port {
                        Side::A => self.ready.push_back(Delivery {
                            at: d.at,
                            port: i,
                            frame: d.frame,
                        }),
                        Side::B => self.br_handle_frame(t, i, d.frame),
                    }
                }
            }
        }
    }

    /// Receives one frame from the link of `port` at `now`: checks it,
    /// learns its source, and forwards or floods it.
    ///
    /// Mirrors `br_handle_frame_finish()`.
    fn br_handle_frame(&mut self, now: Instant, port: usize, frame: Vec<u8>) {
        let stats = &mut self.ports[port].stats;
        stats.rx_packets += 1;
        stats.rx_bytes += frame.len() as u64;
        if frame.len() < ETH_HLEN + ETH_FCS_LEN {
            stats.rx_length_errors += 1;
            return;
        }
        if !check_fcs(&frame) {
            stats.rx_crc_errors += 1;
            return;
        }
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        let mut src = [0u8; 6];
        src.copy_from_slice(&frame[6..12]);
        // is_valid_ether_addr(): not multicast, not all zeros.
        if src[0] & 1 != 0 || src == [0; 6] {
            stats.rx_dropped += 1;
            return;
        }
        // br_fdb_update(): learn or refresh, moving the address if it
        // turned up on another port.
        self.fdb.insert(src, FdbEntry { port, updated: now });

        let known = if dst[0] & 1 == 0 {
            self.fdb_lookup(now, dst)
        } else {
            None
        };
        match known {
            Some(out) if out == port => self.ports[port].stats.rx_filtered += 1,
            Some(out) => self.br_forward(now, out, frame),
            None => {
                self.ports[port].stats.flooded += 1;
                self.br_flood(now, port, &frame);
            }
        }
    }

    /// Sends `frame` to every port but `ingress`.
    ///
    /// Mirrors `br_flood()`, where `should_deliver()` skips the ingress port.
    fn br_flood(&mut self, now: Instant, ingress: usize, frame: &[u8]) {
        for out in 0..self.ports.len() {
            if out != ingress {
                self.br_forward(now, out, frame.to_vec());
            }
        }
    }

    /// Sends `frame` out of `port`.
    ///
    /// Mirrors `br_forward()` → `br_dev_queue_push_xmit()`.
    fn br_forward(&mut self, now: Instant, port: usize, frame: Vec<u8>) {
        let p = &mut self.ports[port];
        p.stats.tx_packets += 1;
        p.stats.tx_bytes += frame.len() as u64;
        p.wire.transmit(now, Side::B, frame);
    }
}

impl Medium for Switch {
    type Port = usize;

    fn transmit(&mut self, now: Instant, port: usize, frame: Vec<u8>) -> Result<(), PhyError> {
        Switch::transmit(self, now, port, frame)
    }

    fn next_event(&self) -> Option<Instant> {
        Switch::next_event(self)
    }

    fn poll(&mut self, now: Instant) -> Vec<Delivery<usize>> {
        Switch::poll(self, now)
    }

    fn receive(&mut self, now: Instant, port: usize) -> Option<Delivery<usize>> {
        Switch::receive(self, now, port)
    }
}
