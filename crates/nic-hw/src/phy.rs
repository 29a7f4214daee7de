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

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use netcore::Instant;

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
}

const _: fn() = || {
    fn assert_port<T: PhyPort + Send>() {}
    assert_port::<MediumPort<crate::VirtualWire>>();
    assert_port::<MediumPort<crate::Switch>>();
    let _object_safe: Option<Box<dyn PhyPort + Send>> = None;
};
