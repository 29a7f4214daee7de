//! The seam between a NIC's MAC and the medium it is attached to.
//!
//! Mirrors the MII boundary between a MAC and its PHY: `struct phy_device`
//! in `include/linux/phy.h` is the kernel's handle on the far side of it. A
//! MAC hands whole frames to its PHY and receives whole frames back; how the
//! bits travel (a [`VirtualWire`](crate::VirtualWire), a
//! [`Switch`](crate::Switch), a Linux TAP device) is the medium's business.
//!
//! Frames crossing this seam are byte buffers **including the 4-byte FCS**,
//! as they are on the cable: the MAC appends it on transmit and checks it on
//! receive (see [`fcs`](crate::fcs())). The seam is sans-IO: every call takes
//! the current time, and [`PhyPort::next_event`] says when the port next has
//! something to deliver.
//!
//! ```text
//!   NIC model ──owns──> Box<dyn PhyPort>
//!                         │ transmit(now, frame+FCS)      receive(now) -> frame+FCS
//!                         ▼                                ▲
//!   MediumPort<VirtualWire | Switch>  or  TapDevice (adds/strips the FCS)
//! ```
//!
//! Two traits:
//! - [`Medium`]: something with several ports that carries frames between
//!   them in virtual time (the wire, the switch).
//! - [`PhyPort`]: one endpoint, the thing a NIC owns. [`MediumPort`] turns
//!   one port of a shared [`Medium`] into a [`PhyPort`].
//!
//! Both traits have copying twins of their calls (`transmit_slice`,
//! `receive_into`, and on [`Medium`] `poll_into` and `recycle`) with default
//! implementations. The virtual media override them to reuse frame buffers,
//! so a NIC that receives into one `Vec` and transmits from a slice costs no
//! allocation per frame.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use netcore::Instant;

use crate::fcs::write_fcs;

bitflags::bitflags! {
    /// What a sending MAC vouches for in a frame it hands to its PHY, and
    /// what a receiving port learns of it: the model's side channel for
    /// work that only repeats what the sender did.
    ///
    /// No kernel twin (on a cable a frame carries nothing but its bits). A
    /// medium that delivers a frame changed (a corrupted bit) or through
    /// anything that cannot carry the vouch drops all of it, so a receiver
    /// relies on it only for a frame that is bit for bit what the MAC sent.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub struct Vouch: u8 {
        /// The FCS: the frame's last four bytes are room for the CRC of
        /// the rest, written by whoever reads them (see
        /// [`PhyPort::transmit_swap_fcs_good`]); the receiver's FCS check
        /// would pass.
        const FCS = 1 << 0;
        /// The TCP or UDP checksum: the MAC's checksum offload (or TSO)
        /// wrote it and found that it verifies over the datagram the IPv4
        /// header delimits, so the receiver's checksum offload would find
        /// it good. Only with [`Vouch::FCS`].
        const L4_CSUM = 1 << 1;
    }
}

/// A frame handed out by a medium: when its last bit arrived, at which port,
/// and its bytes (FCS included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery<P> {
    /// The instant the frame's last bit reached the receiving port.
    pub at: Instant,
    /// The receiving port.
    pub port: P,
    /// The frame, FCS included; possibly corrupted by the medium.
    pub frame: Vec<u8>,
}

/// Why a medium or a port could not take or give a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhyError {
    /// The port number does not exist on this medium.
    NoSuchPort {
        /// The port asked for.
        port: usize,
        /// How many ports the medium has (valid ports are `0..ports`).
        ports: usize,
    },
    /// A frame shorter than its FCS was given to a backend that strips it.
    FrameTooShort {
        /// The frame's length in bytes.
        len: usize,
    },
    /// The host backend reported an I/O error.
    Io {
        /// The error's kind.
        kind: io::ErrorKind,
        /// The OS error number, when there is one.
        errno: Option<i32>,
    },
}

impl From<io::Error> for PhyError {
    fn from(e: io::Error) -> PhyError {
        PhyError::Io {
            kind: e.kind(),
            errno: e.raw_os_error(),
        }
    }
}

impl fmt::Display for PhyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PhyError::NoSuchPort { port, ports } => {
                write!(
                    f,
                    "port {port} does not exist: this medium has ports 0..{ports}"
                )
            }
            PhyError::FrameTooShort { len } => {
                write!(f, "frame of {len} bytes is shorter than its 4-byte FCS")
            }
            PhyError::Io {
                kind,
                errno: Some(e),
            } => write!(f, "I/O error: {kind} (errno {e})"),
            PhyError::Io { kind, errno: None } => write!(f, "I/O error: {kind}"),
        }
    }
}

impl core::error::Error for PhyError {}

/// A medium carrying frames between its ports in virtual time, sans-IO.
///
/// Mirrors nothing in Linux directly: it is the cable (or the box of
/// cables) outside the host. Implemented by [`VirtualWire`](crate::VirtualWire)
/// (ports [`Side::A`](crate::Side) and `B`) and [`Switch`](crate::Switch)
/// (ports `0..n`).
///
/// Contract: `now` never goes backwards between calls. Deliveries come out
/// in the order of their `at` (ties broken in a fixed order each medium
/// documents), and the same calls give the same deliveries.
pub trait Medium {
    /// How a port of this medium is named.
    type Port: Copy + Eq + fmt::Debug;

    /// Takes ownership of `frame` (FCS included) sent from `port` at `now`.
    ///
    /// A frame the medium drops (queue overflow, loss) is counted there and
    /// is not an error: a MAC never learns that its frame was lost.
    fn transmit(&mut self, now: Instant, port: Self::Port, frame: Vec<u8>) -> Result<(), PhyError>;

    /// The earliest instant at which [`poll`](Medium::poll) may have work,
    /// or `None` when nothing is in flight.
    fn next_event(&self) -> Option<Instant>;

    /// Every frame that has arrived by `now`, at any port, in order.
    fn poll(&mut self, now: Instant) -> Vec<Delivery<Self::Port>>;

    /// The next frame that has arrived at `port` by `now`, if any; other
    /// ports' frames stay queued.
    fn receive(&mut self, now: Instant, port: Self::Port) -> Option<Delivery<Self::Port>>;

    /// Like [`transmit`](Medium::transmit), but copies `frame`; a medium
    /// that recycles buffers copies it into one it already owns instead of
    /// allocating.
    fn transmit_slice(
        &mut self,
        now: Instant,
        port: Self::Port,
        frame: &[u8],
    ) -> Result<(), PhyError> {
        self.transmit(now, port, frame.to_vec())
    }

    /// Like [`transmit`](Medium::transmit), but takes the frame out of
    /// `frame` and leaves an empty buffer there (one the medium recycled,
    /// where it keeps any), so a sender that builds every frame in the same
    /// `Vec` neither copies nor allocates. The default copies and clears.
    fn transmit_swap(
        &mut self,
        now: Instant,
        port: Self::Port,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        let r = self.transmit_slice(now, port, frame);
        frame.clear();
        r
    }

    /// Like [`transmit_swap`](Medium::transmit_swap), for a frame from a
    /// MAC whose last four bytes are room for its FCS, not yet written
    /// (see [`PhyPort::transmit_swap_fcs_good`]). A medium that tracks
    /// such frames writes the FCS only when something reads those bytes
    /// (a corruption, a reader that takes the frame's bytes as they are),
    /// and tells the receiving port, through
    /// [`receive_into_fcs_good`](Medium::receive_into_fcs_good), that a
    /// frame it delivers unchanged would pass the FCS check. The default
    /// writes the FCS and sends the frame with `transmit_swap`.
    fn transmit_swap_fcs_good(
        &mut self,
        now: Instant,
        port: Self::Port,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        write_fcs(frame);
        self.transmit_swap(now, port, frame)
    }

    /// Like [`receive_into`](Medium::receive_into), with whether the frame
    /// is known to pass the FCS check (sent with
    /// [`transmit_swap_fcs_good`](Medium::transmit_swap_fcs_good) and not
    /// altered on the way). Such a frame's last four bytes may not hold
    /// its FCS yet: a receiver that reads them writes it first. The
    /// default knows nothing: `false`, and the bytes are the frame's.
    fn receive_into_fcs_good(
        &mut self,
        now: Instant,
        port: Self::Port,
        buf: &mut Vec<u8>,
    ) -> Option<(Instant, bool)> {
        self.receive_into(now, port, buf).map(|at| (at, false))
    }

    /// Like [`transmit_swap_fcs_good`](Medium::transmit_swap_fcs_good)
    /// with everything the MAC vouches for (`vouch` without
    /// [`Vouch::FCS`]: like [`transmit_swap`](Medium::transmit_swap)). The
    /// default keeps only the FCS vouch.
    fn transmit_swap_vouched(
        &mut self,
        now: Instant,
        port: Self::Port,
        frame: &mut Vec<u8>,
        vouch: Vouch,
    ) -> Result<(), PhyError> {
        if vouch.contains(Vouch::FCS) {
            self.transmit_swap_fcs_good(now, port, frame)
        } else {
            self.transmit_swap(now, port, frame)
        }
    }

    /// Like [`receive_into_fcs_good`](Medium::receive_into_fcs_good), with
    /// everything the sender vouched for that still holds. The default
    /// knows only the FCS vouch.
    fn receive_into_vouched(
        &mut self,
        now: Instant,
        port: Self::Port,
        buf: &mut Vec<u8>,
    ) -> Option<(Instant, Vouch)> {
        self.receive_into_fcs_good(now, port, buf)
            .map(|(at, good)| (at, if good { Vouch::FCS } else { Vouch::empty() }))
    }

    /// Like [`poll`](Medium::poll), but appends to `out` (which a caller
    /// keeps between calls); returns how many deliveries were appended.
    fn poll_into(&mut self, now: Instant, out: &mut Vec<Delivery<Self::Port>>) -> usize {
        let got = self.poll(now);
        let n = got.len();
        out.extend(got);
        n
    }

    /// Like [`receive`](Medium::receive), but puts the frame in `buf`
    /// (replacing what it held) and returns its arrival time; `None` leaves
    /// `buf` alone. A medium that recycles buffers keeps `buf`'s old
    /// allocation for a later [`transmit_slice`](Medium::transmit_slice).
    fn receive_into(
        &mut self,
        now: Instant,
        port: Self::Port,
        buf: &mut Vec<u8>,
    ) -> Option<Instant> {
        let d = self.receive(now, port)?;
        *buf = d.frame;
        Some(d.at)
    }

    /// Hands a frame buffer (say, from a [`poll`](Medium::poll) delivery
    /// the caller is done with) back for reuse. The default drops it.
    fn recycle(&mut self, frame: Vec<u8>) {
        drop(frame);
    }
}

/// A PHY end's [`PhyPort::next_event`], readable without the lock of the
/// NIC model that owns the port (see [`PhyPort::shared_next_event`]).
///
/// No kernel twin: the simulation's view of the medium, as
/// [`crate::WireHeads`] is.
pub trait PhyNextEvent: fmt::Debug + Send + Sync {
    /// The same answer as the port's [`PhyPort::next_event`] at the same
    /// moment.
    fn next_event(&self) -> Option<Instant>;
}

/// One endpoint of a medium: what a NIC model owns as its PHY.
///
/// Mirrors the MAC's view of `struct phy_device` (`include/linux/phy.h`):
/// frames in and out, nothing about how they travel. Object safe, so a NIC
/// can hold a `Box<dyn PhyPort + Send>`.
pub trait PhyPort {
    /// Sends `frame` (FCS included) at `now`; the port takes ownership.
    fn transmit(&mut self, now: Instant, frame: Vec<u8>) -> Result<(), PhyError>;

    /// The next frame (FCS included) that has arrived by `now`, or `None`.
    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError>;

    /// When [`receive`](PhyPort::receive) may next return a frame in virtual
    /// time, or `None` if only an outside event (a host file descriptor
    /// becoming readable, another transmit) can produce one.
    fn next_event(&self) -> Option<Instant>;

    /// The port's [`next_event`](PhyPort::next_event) as a handle that any
    /// thread may read without the port (its owner's lock), when the port
    /// can give one: its answers are always the port's own. The default
    /// gives none (the owner reads the port under its lock).
    fn shared_next_event(&self) -> Option<Arc<dyn PhyNextEvent>> {
        None
    }

    /// Whether a receive at `now` may find a frame: `false` only when the
    /// port knows that none has arrived, so a MAC polling it can skip the
    /// attempt. The default says `true` (try).
    ///
    /// No kernel twin as such: the model's stand-in for the PHY's receive
    /// data valid signal (`RX_DV` on MII), which tells the MAC whether a
    /// frame is coming in without the MAC reading anything.
    #[inline]
    fn rx_ready(&self, now: Instant) -> bool {
        let _ = now;
        true
    }

    /// Sends a copy of `frame` (FCS included) at `now`. Backends that
    /// recycle buffers (the virtual media) avoid an allocation per frame;
    /// the default copies into a new `Vec`.
    fn transmit_slice(&mut self, now: Instant, frame: &[u8]) -> Result<(), PhyError> {
        self.transmit(now, frame.to_vec())
    }

    /// Sends the frame (FCS included) held in `frame` at `now` and leaves
    /// `frame` empty, possibly holding another (recycled) buffer. Backends
    /// that recycle buffers hand the allocation over instead of copying
    /// it; the default is [`transmit_slice`](PhyPort::transmit_slice)
    /// followed by `clear`.
    fn transmit_swap(&mut self, now: Instant, frame: &mut Vec<u8>) -> Result<(), PhyError> {
        let r = self.transmit_slice(now, frame);
        frame.clear();
        r
    }

    /// Like [`transmit_swap`](PhyPort::transmit_swap), for a frame from a
    /// MAC whose last four bytes are room for the FCS, which the MAC
    /// vouches for but has not written: the port writes it before any
    /// reader sees those bytes. A port onto a medium that tracks such
    /// frames (the [`VirtualWire`](crate::VirtualWire)) hands the frame on
    /// as it is and the CRC is computed only if a reader needs it; a
    /// receiving MAC told through
    /// [`receive_into_fcs_good`](PhyPort::receive_into_fcs_good) that the
    /// frame arrived unchanged needs no CRC at all. The default writes the
    /// FCS and sends the frame with `transmit_swap`: the knowledge is
    /// dropped, never invented.
    fn transmit_swap_fcs_good(
        &mut self,
        now: Instant,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        write_fcs(frame);
        self.transmit_swap(now, frame)
    }

    /// Like [`receive_into`](PhyPort::receive_into), but returns
    /// `Some(fcs_good)` for a frame: `true` only when the port knows the
    /// frame is bit-exact as a MAC sent it with
    /// [`transmit_swap_fcs_good`](PhyPort::transmit_swap_fcs_good), so its
    /// FCS check would pass; its last four bytes may then not hold the
    /// FCS yet (they are the CRC of the rest to whoever needs them, see
    /// [`fcs`](crate::fcs())). The default says `false` (check it), and
    /// the bytes are the frame's.
    fn receive_into_fcs_good(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Option<bool>, PhyError> {
        Ok(self.receive_into(now, buf)?.then_some(false))
    }

    /// Like [`transmit_swap_fcs_good`](PhyPort::transmit_swap_fcs_good)
    /// with everything the MAC vouches for (`vouch` without
    /// [`Vouch::FCS`]: like [`transmit_swap`](PhyPort::transmit_swap)). The
    /// default keeps only the FCS vouch; a port onto a medium that carries
    /// the rest forwards it.
    fn transmit_swap_vouched(
        &mut self,
        now: Instant,
        frame: &mut Vec<u8>,
        vouch: Vouch,
    ) -> Result<(), PhyError> {
        if vouch.contains(Vouch::FCS) {
            self.transmit_swap_fcs_good(now, frame)
        } else {
            self.transmit_swap(now, frame)
        }
    }

    /// Puts on the medium, at the instants they were given, the frames a
    /// port held back from [`transmit_swap_vouched`](PhyPort::transmit_swap_vouched)
    /// calls to hand them over together. A MAC calls it when it has sent
    /// what it had to send at that instant (the end of a transmit pass),
    /// before it receives. The default holds nothing back: nothing to do.
    ///
    /// No kernel twin: a port shared with another thread (a wire whose
    /// other end another CPU's thread runs) takes the medium's lock once
    /// per burst instead of once per frame.
    fn flush(&mut self) -> Result<(), PhyError> {
        Ok(())
    }

    /// Like [`receive_into_fcs_good`](PhyPort::receive_into_fcs_good), with
    /// everything the sender vouched for that still holds (empty for a
    /// frame the port cannot vouch for). The default knows only the FCS
    /// vouch.
    fn receive_into_vouched(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Vouch>, PhyError> {
        Ok(self
            .receive_into_fcs_good(now, buf)?
            .map(|good| if good { Vouch::FCS } else { Vouch::empty() }))
    }

    /// Puts the next frame (FCS included) that has arrived by `now` in
    /// `buf`, replacing its contents, and returns `true`; returns `false`
    /// and leaves `buf` alone when there is none. Backends that recycle
    /// buffers keep `buf`'s old allocation, so a NIC that receives into
    /// the same `Vec` and transmits with
    /// [`transmit_slice`](PhyPort::transmit_slice) allocates nothing per
    /// frame.
    fn receive_into(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<bool, PhyError> {
        match self.receive(now)? {
            Some(frame) => {
                *buf = frame;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// One port of a [`Medium`] shared with other ports, as a [`PhyPort`].
///
/// The medium sits behind an `Arc<Mutex<_>>` so that each NIC attached to
/// it owns its own port handle; the simulation keeps a clone to drive
/// [`Medium::next_event`].
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use netcore::Instant;
/// use nic_hw::{LinkConfig, MediumPort, PhyPort, Side, VirtualWire};
///
/// let wire = Arc::new(Mutex::new(VirtualWire::symmetric(LinkConfig::new(), 1).unwrap()));
/// let mut a = MediumPort::new(wire.clone(), Side::A);
/// let mut b = MediumPort::new(wire, Side::B);
/// let mut frame = vec![0xff; 60];
/// nic_hw::append_fcs(&mut frame);
/// a.transmit(Instant::ZERO, frame.clone()).unwrap();
/// let t = b.next_event().unwrap();
/// assert_eq!(b.receive(t).unwrap(), Some(frame));
/// ```
pub struct MediumPort<M: Medium> {
    medium: Arc<Mutex<M>>,
    port: M::Port,
}

impl<M: Medium> MediumPort<M> {
    /// A handle on `port` of `medium`.
    pub fn new(medium: Arc<Mutex<M>>, port: M::Port) -> MediumPort<M> {
        MediumPort { medium, port }
    }

    /// The port this handle sends from and receives at.
    pub fn port(&self) -> M::Port {
        self.port
    }

    /// The shared medium.
    pub fn medium(&self) -> &Arc<Mutex<M>> {
        &self.medium
    }
}

impl<M: Medium> fmt::Debug for MediumPort<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediumPort")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl<M: Medium> PhyPort for MediumPort<M> {
    fn transmit(&mut self, now: Instant, frame: Vec<u8>) -> Result<(), PhyError> {
        // A panic in another holder leaves the medium's state consistent
        // (every method finishes its bookkeeping before it can panic), so a
        // poisoned lock is still usable.
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        m.transmit(now, self.port, frame)
    }

    fn receive(&mut self, now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(m.receive(now, self.port).map(|d| d.frame))
    }

    fn next_event(&self) -> Option<Instant> {
        let m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        m.next_event()
    }

    fn transmit_slice(&mut self, now: Instant, frame: &[u8]) -> Result<(), PhyError> {
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        m.transmit_slice(now, self.port, frame)
    }

    fn transmit_swap(&mut self, now: Instant, frame: &mut Vec<u8>) -> Result<(), PhyError> {
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        m.transmit_swap(now, self.port, frame)
    }

    fn transmit_swap_fcs_good(
        &mut self,
        now: Instant,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        m.transmit_swap_fcs_good(now, self.port, frame)
    }

    fn receive_into_fcs_good(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Option<bool>, PhyError> {
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(m.receive_into_fcs_good(now, self.port, buf)
            .map(|(_, good)| good))
    }

    fn transmit_swap_vouched(
        &mut self,
        now: Instant,
        frame: &mut Vec<u8>,
        vouch: Vouch,
    ) -> Result<(), PhyError> {
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        m.transmit_swap_vouched(now, self.port, frame, vouch)
    }

    fn receive_into_vouched(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Result<Option<Vouch>, PhyError> {
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(m.receive_into_vouched(now, self.port, buf).map(|(_, v)| v))
    }

    fn receive_into(&mut self, now: Instant, buf: &mut Vec<u8>) -> Result<bool, PhyError> {
        let mut m = self.medium.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(m.receive_into(now, self.port, buf).is_some())
    }
}

const _: fn() = || {
    fn assert_port<T: PhyPort + Send>() {}
    assert_port::<MediumPort<crate::VirtualWire>>();
    assert_port::<MediumPort<crate::Switch>>();
    let _object_safe: Option<Box<dyn PhyPort + Send>> = None;
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LinkConfig, Side, Switch, VirtualWire, append_fcs};

    /// A medium with only the required methods: a loopback that hands each
    /// frame back to its sender at once, to exercise the provided methods.
    #[derive(Default)]
    struct Loopback {
        queue: Vec<Delivery<usize>>,
    }

    impl Medium for Loopback {
        type Port = usize;
        fn transmit(&mut self, now: Instant, port: usize, frame: Vec<u8>) -> Result<(), PhyError> {
            self.queue.push(Delivery {
                at: now,
                port,
                frame,
            });
            Ok(())
        }
        fn next_event(&self) -> Option<Instant> {
            self.queue.first().map(|d| d.at)
        }
        fn poll(&mut self, _now: Instant) -> Vec<Delivery<usize>> {
            std::mem::take(&mut self.queue)
        }
        fn receive(&mut self, _now: Instant, port: usize) -> Option<Delivery<usize>> {
            let i = self.queue.iter().position(|d| d.port == port)?;
            Some(self.queue.remove(i))
        }
    }

    #[test]
    fn provided_medium_methods_follow_the_required_ones() {
        let mut m = Loopback::default();
        let t = Instant::from_nanos(5);
        m.transmit_slice(t, 1, &[1, 2, 3]).unwrap();
        m.transmit_slice(t, 2, &[4]).unwrap();
        let mut buf = vec![9; 10];
        assert_eq!(m.receive_into(t, 2, &mut buf), Some(t));
        assert_eq!(buf, [4]);
        assert_eq!(m.receive_into(t, 2, &mut buf), None);
        assert_eq!(buf, [4]);
        let mut out = vec![Delivery {
            at: Instant::ZERO,
            port: 0,
            frame: vec![],
        }];
        assert_eq!(m.poll_into(t, &mut out), 1);
        assert_eq!(
            out[1],
            Delivery {
                at: t,
                port: 1,
                frame: vec![1, 2, 3]
            }
        );
        m.recycle(vec![0; 4]);
        assert!(m.queue.is_empty());
    }

    fn frame(tag: u8) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x88, 0xb5, tag]);
        f.resize(60, 0);
        append_fcs(&mut f);
        f
    }

    #[test]
    fn medium_port_slice_and_into_calls_reach_the_medium() {
        let wire = Arc::new(Mutex::new(
            VirtualWire::symmetric(LinkConfig::new(), 1).unwrap(),
        ));
        let mut a = MediumPort::new(wire.clone(), Side::A);
        let mut b = MediumPort::new(wire.clone(), Side::B);
        a.transmit_slice(Instant::ZERO, &frame(1)).unwrap();
        let mut two = frame(2);
        a.transmit_swap(Instant::ZERO, &mut two).unwrap();
        assert!(two.is_empty(), "swapped out");
        let mut buf = Vec::new();
        assert!(!b.receive_into(Instant::ZERO, &mut buf).unwrap());
        let end = Instant::from_millis(1);
        assert!(b.receive_into(end, &mut buf).unwrap());
        assert_eq!(buf, frame(1));
        assert!(b.receive_into(end, &mut buf).unwrap());
        assert_eq!(buf, frame(2));
        assert!(!b.receive_into(end, &mut buf).unwrap());
        assert!(
            !a.receive_into(end, &mut buf).unwrap(),
            "nothing came back to A"
        );
        assert_eq!(wire.lock().unwrap().stats(Side::A).delivered, 2);

        // A switch port behaves the same, and bad ports are still errors.
        let mut sw = Switch::new(1);
        sw.add_port(LinkConfig::new()).unwrap();
        sw.add_port(LinkConfig::new()).unwrap();
        let sw = Arc::new(Mutex::new(sw));
        let mut p0 = MediumPort::new(sw.clone(), 0);
        let mut p1 = MediumPort::new(sw.clone(), 1);
        let mut three = frame(3);
        p0.transmit_swap(Instant::ZERO, &mut three).unwrap();
        assert!(three.is_empty(), "the default copies, then clears");
        assert!(p1.receive_into(end, &mut buf).unwrap());
        assert_eq!(buf, frame(3));
        let mut bad = MediumPort::new(sw, 5);
        assert_eq!(
            bad.transmit_slice(end, &frame(4)),
            Err(PhyError::NoSuchPort { port: 5, ports: 2 })
        );
    }
}
