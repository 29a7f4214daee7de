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
//! The switch recycles frame buffers (flooded copies, dropped frames,
//! buffers handed back with [`Switch::recycle`] or
//! [`Switch::receive_into`]), and `br_fdb_cleanup()` only walks the table
//! once the earliest entry can have expired.
//!
//! # Deviations from Linux
//!
//! The forwarding database hashes with a fixed multiplicative hash instead
//! of `jhash` with a random seed: the stations are simulated, and a fixed
//! hash keeps runs reproducible.
//!
//! A hardware switch, not a bridge device: no local delivery to the switch
//! itself, no STP, no VLANs, no hairpin mode. Frames with a bad FCS are
//! dropped at ingress, as a store-and-forward switch does (the Linux bridge
//! never sees an FCS).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

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

/// Most spare frame buffers the switch keeps for reuse.
const MAX_SPARE: usize = 256;

/// A MAC address as the forwarding database's key: its six bytes in the
/// low 48 bits of a `u64`.
fn mac_key(mac: [u8; 6]) -> u64 {
    let [a, b, c, d, e, f] = mac;
    u64::from_le_bytes([a, b, c, d, e, f, 0, 0])
}

/// The forwarding database's hash: one multiply and a fold of a 48-bit
/// key, in the spirit of `br_mac_hash()`'s `jhash` of the address. The
/// table is fed by simulated stations, so a keyed (flood-resistant) hash
/// buys nothing, and a fixed one keeps runs reproducible.
#[derive(Clone, Copy, Debug, Default)]
struct MacHasher(u64);

impl Hasher for MacHasher {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 29)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).rotate_left(5);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

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
    fdb: HashMap<u64, FdbEntry, BuildHasherDefault<MacHasher>>,
    ageing_time: Duration,
    /// No entry expires before this: `br_fdb_cleanup()` has nothing to do
    /// until then (Linux re-arms its gc work the same way).
    next_cleanup: Instant,
    rng: Rng,
    /// Frames that reached a host, in arrival order, not yet handed out.
    ready: VecDeque<Delivery<usize>>,
    /// Deliveries of one link being processed, kept to reuse its memory.
    scratch: Vec<Delivery<Side>>,
    /// Emptied frame buffers for flooded copies and `transmit_slice`.
    spare: Vec<Vec<u8>>,
}

impl Switch {
    /// A switch with no ports whose links draw their impairments from
    /// `seed`, ageing learned addresses after [`BR_DEFAULT_AGEING_TIME`].
    pub fn new(seed: u64) -> Switch {
        Switch {
            ports: Vec::new(),
            fdb: HashMap::default(),
            ageing_time: BR_DEFAULT_AGEING_TIME,
            next_cleanup: Instant::MAX,
            rng: Rng::new(seed),
            ready: VecDeque::new(),
            scratch: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Sets how long a learned address lives without being seen again.
    ///
    /// Mirrors `ip link set br0 type bridge ageing_time T`; zero makes every
    /// entry expire at once, so all unicast floods.
    pub fn set_ageing_time(&mut self, ageing_time: Duration) {
        self.ageing_time = ageing_time;
        // Expiry times moved: the next cleanup recomputes them.
        self.next_cleanup = Instant::ZERO;
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

    /// Like [`transmit`](Switch::transmit), but copies `frame` into a
    /// buffer the switch recycled, so a steady stream allocates nothing.
    pub fn transmit_slice(
        &mut self,
        now: Instant,
        port: usize,
        frame: &[u8],
    ) -> Result<(), PhyError> {
        let ports = self.ports.len();
        if port >= ports {
            return Err(PhyError::NoSuchPort { port, ports });
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.extend_from_slice(frame);
        self.transmit(now, port, buf)
    }

    /// Gives a frame buffer back for reuse (its contents are discarded).
    pub fn recycle(&mut self, frame: Vec<u8>) {
        if self.spare.len() < MAX_SPARE && frame.capacity() > 0 {
            let mut frame = frame;
            frame.clear();
            self.spare.push(frame);
        }
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
        let mut out = Vec::new();
        self.poll_into(now, &mut out);
        out
    }

    /// Like [`poll`](Switch::poll), but appends to `out`; returns how many
    /// deliveries were appended.
    pub fn poll_into(&mut self, now: Instant, out: &mut Vec<Delivery<usize>>) -> usize {
        self.advance(now);
        self.br_fdb_cleanup(now);
        let n = self.ready.len();
        out.extend(self.ready.drain(..));
        n
    }

    /// Runs the switch up to `now` and returns the next frame that reached
    /// the host on `port`; other hosts' frames stay queued.
    pub fn receive(&mut self, now: Instant, port: usize) -> Option<Delivery<usize>> {
        self.advance(now);
        let i = self.ready.iter().position(|d| d.port == port)?;
        self.ready.remove(i)
    }

    /// Like [`receive`](Switch::receive), but swaps the frame into `buf`,
    /// keeping `buf`'s old allocation for reuse; returns the arrival time.
    pub fn receive_into(
        &mut self,
        now: Instant,
        port: usize,
        buf: &mut Vec<u8>,
    ) -> Option<Instant> {
        let d = self.receive(now, port)?;
        let old = std::mem::replace(buf, d.frame);
        self.recycle(old);
        Some(d.at)
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
            .get(&mac_key(mac))
            .filter(|e| !self.has_expired(now, e))
            .map(|e| e.port)
    }

    /// Forgets every address not seen for the ageing time.
    ///
    /// Mirrors `br_fdb_cleanup()`.
    pub fn br_fdb_cleanup(&mut self, now: Instant) {
        if now < self.next_cleanup {
            return;
        }
        let ageing = self.ageing_time;
        let mut next = Instant::MAX;
        self.fdb.retain(|_, e| {
            let expires = e.updated + ageing;
            if expires > now {
                next = next.min(expires);
            }
            expires > now
        });
        self.next_cleanup = next;
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
            let mut batch = std::mem::take(&mut self.scratch);
            for i in 0..self.ports.len() {
                if self.ports[i].wire.next_event() != Some(t) {
                    continue;
                }
                self.ports[i].wire.poll_into(t, &mut batch);
                for d in batch.drain(..) {
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
            self.scratch = batch;
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
            self.recycle(frame);
            return;
        }
        if !check_fcs(&frame) {
            stats.rx_crc_errors += 1;
            self.recycle(frame);
            return;
        }
        let mut dst = [0u8; 6];
        dst.copy_from_slice(&frame[..6]);
        let mut src = [0u8; 6];
        src.copy_from_slice(&frame[6..12]);
        // is_valid_ether_addr(): not multicast, not all zeros.
        if src[0] & 1 != 0 || src == [0; 6] {
            stats.rx_dropped += 1;
            self.recycle(frame);
            return;
        }
        // br_fdb_update(): learn or refresh, moving the address if it
        // turned up on another port.
        self.fdb
            .insert(mac_key(src), FdbEntry { port, updated: now });
        self.next_cleanup = self.next_cleanup.min(now + self.ageing_time);

        let known = if dst[0] & 1 == 0 {
            self.fdb_lookup(now, dst)
        } else {
            None
        };
        match known {
            Some(out) if out == port => {
                self.ports[port].stats.rx_filtered += 1;
                self.recycle(frame);
            }
            Some(out) => self.br_forward(now, out, frame),
            None => {
                self.ports[port].stats.flooded += 1;
                self.br_flood(now, port, frame);
            }
        }
    }

    /// Sends `frame` to every port but `ingress`, in port order; the last
    /// port gets the frame itself, the others copies.
    ///
    /// Mirrors `br_flood()`, where `should_deliver()` skips the ingress port.
    fn br_flood(&mut self, now: Instant, ingress: usize, frame: Vec<u8>) {
        let Some(last) = (0..self.ports.len()).rev().find(|&p| p != ingress) else {
            self.recycle(frame);
            return;
        };
        for out in 0..last {
            if out != ingress {
                let mut copy = self.spare.pop().unwrap_or_default();
                copy.extend_from_slice(&frame);
                self.br_forward(now, out, copy);
            }
        }
        self.br_forward(now, last, frame);
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

    fn transmit_slice(&mut self, now: Instant, port: usize, frame: &[u8]) -> Result<(), PhyError> {
        Switch::transmit_slice(self, now, port, frame)
    }

    fn poll_into(&mut self, now: Instant, out: &mut Vec<Delivery<usize>>) -> usize {
        Switch::poll_into(self, now, out)
    }

    fn receive_into(&mut self, now: Instant, port: usize, buf: &mut Vec<u8>) -> Option<Instant> {
        Switch::receive_into(self, now, port, buf)
    }

    fn recycle(&mut self, frame: Vec<u8>) {
        Switch::recycle(self, frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fcs::append_fcs;

    const MAC0: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
    const MAC1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
    const MAC2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x12];
    const BCAST: [u8; 6] = [0xff; 6];

    fn frame(dst: [u8; 6], src: [u8; 6], tag: u8) -> Vec<u8> {
        let mut f = Vec::with_capacity(64);
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x88, 0xb5, tag]);
        f.resize(60, 0);
        append_fcs(&mut f);
        f
    }

    fn switch(ports: usize) -> Switch {
        let mut sw = Switch::new(1);
        for _ in 0..ports {
            sw.add_port(LinkConfig::new()).unwrap();
        }
        sw
    }

    /// Sends `f` from `port` at `t` and returns the ports it reached.
    fn send(sw: &mut Switch, t: Instant, port: usize, f: Vec<u8>) -> Vec<usize> {
        let sent = f.clone();
        sw.transmit(t, port, f).unwrap();
        let got = sw.poll(t + Duration::from_millis(1));
        assert!(got.iter().all(|d| d.frame == sent), "frames pass unchanged");
        got.iter().map(|d| d.port).collect()
    }

    #[test]
    fn learns_sources_floods_unknown_and_forwards_known() {
        let mut sw = switch(3);
        let t = Instant::ZERO;
        // Broadcast from port 0 floods to the others; MAC0 is learned.
        assert_eq!(send(&mut sw, t, 0, frame(BCAST, MAC0, 1)), [1, 2]);
        assert_eq!(sw.fdb_lookup(t, MAC0), Some(0));
        // Unknown unicast floods too.
        assert_eq!(send(&mut sw, t, 1, frame(MAC2, MAC1, 2)), [0, 2]);
        // Known unicast goes to one port only.
        assert_eq!(send(&mut sw, t, 1, frame(MAC0, MAC1, 3)), [0]);
        assert_eq!(send(&mut sw, t, 0, frame(MAC1, MAC0, 4)), [1]);
        let s0 = *sw.port_stats(0).unwrap();
        assert_eq!((s0.rx_packets, s0.flooded, s0.tx_packets), (2, 1, 2));
        assert_eq!(s0.rx_bytes, 128);
        let s1 = *sw.port_stats(1).unwrap();
        assert_eq!((s1.rx_packets, s1.flooded, s1.tx_packets), (2, 1, 2));
        let s2 = *sw.port_stats(2).unwrap();
        assert_eq!((s2.rx_packets, s2.tx_packets, s2.tx_bytes), (0, 2, 128));
    }

    #[test]
    fn multicast_floods_and_bad_sources_are_dropped() {
        let mut sw = switch(3);
        let t = Instant::ZERO;
        let mcast = [0x01, 0x00, 0x5e, 0, 0, 1];
        assert_eq!(send(&mut sw, t, 2, frame(mcast, MAC2, 1)), [0, 1]);
        assert!(send(&mut sw, t, 2, frame(BCAST, mcast, 2)).is_empty());
        assert!(send(&mut sw, t, 2, frame(BCAST, [0; 6], 3)).is_empty());
        assert_eq!(sw.port_stats(2).unwrap().rx_dropped, 2);
        assert_eq!(sw.fdb_len(), 1);
    }

    #[test]
    fn never_sends_back_out_of_the_ingress_port() {
        let mut sw = switch(2);
        let t = Instant::ZERO;
        // MAC0 and MAC2 both live behind port 0 (say, a hub).
        send(&mut sw, t, 0, frame(BCAST, MAC0, 1));
        send(&mut sw, t, 0, frame(BCAST, MAC2, 2));
        assert!(send(&mut sw, t, 0, frame(MAC2, MAC0, 3)).is_empty());
        assert_eq!(sw.port_stats(0).unwrap().rx_filtered, 1);
        assert_eq!(sw.port_stats(1).unwrap().tx_packets, 2);
        // A flood never includes the ingress port either.
        assert_eq!(send(&mut sw, t, 1, frame(BCAST, MAC1, 4)), [0]);
    }

    #[test]
    fn entries_age_out_after_300_seconds() {
        let mut sw = switch(3);
        send(&mut sw, Instant::ZERO, 0, frame(BCAST, MAC0, 1));
        // Learned when the frame reached the switch: 68 ns + 1 µs in.
        let learned = Instant::from_nanos(1_068);
        assert_eq!(
            send(&mut sw, Instant::from_secs(299), 1, frame(MAC0, MAC1, 2)),
            [0]
        );
        assert_eq!(sw.fdb_lookup(Instant::from_secs(300), MAC0), Some(0));
        assert_eq!(sw.fdb_lookup(learned + BR_DEFAULT_AGEING_TIME, MAC0), None);
        assert_eq!(
            send(&mut sw, Instant::from_secs(301), 1, frame(MAC0, MAC1, 3)),
            [0, 2]
        );
        // Cleanup ran in poll: MAC0 is gone, MAC1 (just refreshed) stays.
        assert_eq!(sw.fdb_len(), 1);
        assert_eq!(sw.fdb_lookup(Instant::from_secs(301), MAC1), Some(1));
    }

    #[test]
    fn ageing_time_is_configurable_and_stations_move() {
        let mut sw = switch(3);
        sw.set_ageing_time(Duration::from_secs(1));
        send(&mut sw, Instant::ZERO, 0, frame(BCAST, MAC0, 1));
        assert_eq!(
            send(&mut sw, Instant::from_millis(500), 1, frame(MAC0, MAC1, 2)),
            [0]
        );
        assert_eq!(
            send(&mut sw, Instant::from_secs(2), 1, frame(MAC0, MAC1, 3)),
            [0, 2]
        );
        // MAC0 moves to port 2: traffic follows it.
        send(&mut sw, Instant::from_secs(3), 2, frame(BCAST, MAC0, 4));
        assert_eq!(
            send(&mut sw, Instant::from_secs(3), 1, frame(MAC0, MAC1, 5)),
            [2]
        );
    }

    #[test]
    fn bad_fcs_and_runts_are_dropped_at_ingress() {
        let mut sw = switch(2);
        let mut f = frame(BCAST, MAC0, 1);
        f[20] ^= 0x10;
        assert!(send(&mut sw, Instant::ZERO, 0, f).is_empty());
        assert!(send(&mut sw, Instant::ZERO, 0, vec![0xff; 12]).is_empty());
        let s = sw.port_stats(0).unwrap();
        assert_eq!(
            (s.rx_packets, s.rx_crc_errors, s.rx_length_errors),
            (2, 1, 1)
        );
        assert_eq!(sw.fdb_len(), 0, "nothing learned from a bad frame");
    }

    #[test]
    fn store_and_forward_timing_and_corrupting_links() {
        // Port 1's link corrupts everything: the switch drops what it
        // receives there, and what it sends there arrives with a bad FCS.
        let mut sw = Switch::new(3);
        sw.add_port(LinkConfig::new()).unwrap();
        sw.add_port(LinkConfig::new().corrupt(1.0)).unwrap();
        sw.transmit(Instant::ZERO, 0, frame(BCAST, MAC0, 1))
            .unwrap();
        // 64 bytes at 10 Gbit/s: 68 ns (rounded up) plus 1 µs, twice.
        assert_eq!(sw.next_event(), Some(Instant::from_nanos(1_068)));
        assert!(sw.poll(Instant::from_nanos(1_068)).is_empty());
        let got = sw.poll(Instant::from_millis(1));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].at, Instant::from_nanos(2 * 1_068));
        assert!(!crate::check_fcs(&got[0].frame));
        sw.transmit(Instant::from_millis(1), 1, frame(BCAST, MAC1, 2))
            .unwrap();
        assert!(sw.poll(Instant::from_millis(2)).is_empty());
        assert_eq!(sw.port_stats(1).unwrap().rx_crc_errors, 1);
        assert_eq!(sw.link_stats(1, Side::B).unwrap().corrupted, 1);
    }

    #[test]
    fn receive_takes_one_port_and_bad_ports_are_errors() {
        let mut sw = switch(3);
        sw.transmit(Instant::ZERO, 0, frame(BCAST, MAC0, 1))
            .unwrap();
        let end = Instant::from_millis(1);
        assert_eq!(sw.receive(end, 2).map(|d| d.port), Some(2));
        assert!(sw.receive(end, 2).is_none());
        assert_eq!(sw.poll(end).iter().map(|d| d.port).collect::<Vec<_>>(), [1]);
        assert_eq!(
            sw.transmit(end, 3, frame(BCAST, MAC0, 2)),
            Err(PhyError::NoSuchPort { port: 3, ports: 3 })
        );
        assert!(sw.port_stats(3).is_none());
    }

    #[test]
    fn buffer_reusing_calls_match_owning_ones() {
        let mk = || {
            let mut sw = Switch::new(5);
            for _ in 0..4 {
                sw.add_port(LinkConfig::new().corrupt(0.1).duplicate(0.1))
                    .unwrap();
            }
            sw
        };
        let (mut a, mut b) = (mk(), mk());
        let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
        for i in 0..400u32 {
            let t = Instant::from_nanos(u64::from(i) * 500);
            let port = (i % 4) as usize;
            let dst = if i % 5 == 0 {
                BCAST
            } else {
                [0x02, 0, 0, 0, 0, (i % 3) as u8]
            };
            let f = frame(dst, [0x02, 0, 0, 0, 0, port as u8], i as u8);
            b.transmit_slice(t, port, &f).unwrap();
            a.transmit(t, port, f).unwrap();
            got_a.extend(a.poll(t));
            // b's receiver copies what it needs and hands the buffers back.
            let mut batch = Vec::new();
            b.poll_into(t, &mut batch);
            for d in batch {
                got_b.push(d.clone());
                b.recycle(d.frame);
            }
        }
        got_a.extend(a.poll(Instant::from_secs(1)));
        b.poll_into(Instant::from_secs(1), &mut got_b);
        assert_eq!(got_a, got_b);
        for p in 0..4 {
            assert_eq!(a.port_stats(p), b.port_stats(p));
        }
        assert!(a.port_stats(0).unwrap().rx_crc_errors > 0);
        assert_eq!(
            b.transmit_slice(Instant::from_secs(1), 4, &[0; 64]),
            Err(PhyError::NoSuchPort { port: 4, ports: 4 })
        );
    }

    #[test]
    fn receive_into_and_a_shorter_ageing_time_clean_at_once() {
        let mut sw = switch(3);
        send(&mut sw, Instant::ZERO, 0, frame(BCAST, MAC0, 1));
        send(&mut sw, Instant::ZERO, 1, frame(BCAST, MAC1, 2));
        assert_eq!(sw.fdb_len(), 2);
        sw.transmit(Instant::from_secs(1), 1, frame(MAC0, MAC1, 3))
            .unwrap();
        let mut buf = Vec::new();
        let t = Instant::from_secs(2);
        assert_eq!(sw.receive_into(t, 2, &mut buf), None);
        assert_eq!(
            sw.receive_into(t, 0, &mut buf),
            Some(Instant::from_nanos(1_000_000_000 + 2 * 1_068))
        );
        assert_eq!(buf, frame(MAC0, MAC1, 3));
        // Both entries would live to 300 s; a 1 s ageing time expires MAC0
        // (last seen near 0 s) on the next poll but keeps MAC1 (seen at 1 s).
        sw.set_ageing_time(Duration::from_millis(1_500));
        assert!(sw.poll(t).is_empty());
        assert_eq!(sw.fdb_len(), 1);
        assert_eq!(sw.fdb_lookup(t, MAC1), Some(1));
    }

    #[test]
    fn same_seed_same_run() {
        let go = || {
            let mut sw = Switch::new(42);
            for _ in 0..3 {
                sw.add_port(LinkConfig::new().loss(0.2).jitter(Duration::from_micros(1)))
                    .unwrap();
            }
            for i in 0..300u32 {
                let t = Instant::from_micros(u64::from(i) * 2);
                sw.transmit(
                    t,
                    (i % 3) as usize,
                    frame(BCAST, [0x02, 0, 0, 0, 0, (i % 3) as u8], i as u8),
                )
                .unwrap();
            }
            sw.poll(Instant::from_secs(1))
        };
        let a = go();
        assert_eq!(a, go());
        assert!(a.len() > 200 && a.len() < 600, "{}", a.len());
    }
}
