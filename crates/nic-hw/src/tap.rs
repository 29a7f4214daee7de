//! A Linux TAP device as a PHY: frames to and from the host kernel.
//!
//! Mirrors the user side of `drivers/net/tun.c`: open `/dev/net/tun`, bind
//! the file to a TAP interface with the `TUNSETIFF` ioctl
//! (`IFF_TAP | IFF_NO_PI`, optionally `IFF_VNET_HDR`), then every `read`
//! returns one frame the kernel sent out of that interface and every `write`
//! injects one frame as if it had arrived on it.
//!
//! Frames on a TAP carry no FCS. [`TapDevice::read_frame`] appends one and
//! [`TapDevice::write_frame`] strips it, so a NIC model attached to a TAP
//! sees the same frames as on a [`VirtualWire`](crate::VirtualWire).
//!
//! Creating a TAP needs root or `CAP_NET_ADMIN`; without it,
//! [`TapDevice::open`] returns [`io::ErrorKind::PermissionDenied`] saying so.
//! The device lives in the network namespace of the thread that opens it
//! ([`unshare_net_namespace`] gives a thread a private one).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use netcore::Instant;

use crate::fcs::{ETH_FCS_LEN, append_fcs};
use crate::phy::{PhyError, PhyPort};

/// The clone device every TAP is created through.
const TUN_PATH: &str = "/dev/net/tun";
/// Longest interface name plus its terminating NUL.
///
/// Mirrors `IFNAMSIZ` in `include/uapi/linux/if.h`.
const IFNAMSIZ: usize = libc::IFNAMSIZ;
/// Largest frame a read can return: 64 KiB of frame plus a virtio header.
const RX_BUF_LEN: usize = 65_536 + VirtioNetHdr::LEN;

/// The most parts [`TapDevice::write_vnet_parts`] gathers: headers, an
/// skb's head and one fragment per segment of a 64 KiB GSO skb.
const TAP_MAX_PARTS: usize = 64;

/// The header the kernel puts before each frame when `IFF_VNET_HDR` is set.
///
/// Mirrors `struct virtio_net_hdr` in `include/uapi/linux/virtio_net.h`
/// (the 10-byte legacy layout, in host byte order as `tun` uses it by
/// default). It carries checksum and segmentation offload state: a frame
/// with `flags & NEEDS_CSUM` has a partial checksum to finish at
/// `csum_start + csum_offset`, and `gso_type` other than `GSO_NONE` means a
/// super-frame to cut into `gso_size` segments.
#[doc(alias = "virtio_net_hdr")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VirtioNetHdr {
    /// `VIRTIO_NET_HDR_F_*` flags.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*` type.
    pub gso_type: u8,
    /// Length of the headers to copy into each segment.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts.
    pub csum_start: u16,
    /// Where, after `csum_start`, the checksum is stored.
    pub csum_offset: u16,
}

impl VirtioNetHdr {
    /// Size of the header on the TAP file.
    pub const LEN: usize = 10;
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum is partial.
    pub const F_NEEDS_CSUM: u8 = 1;
    /// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified.
    pub const F_DATA_VALID: u8 = 2;
    /// `VIRTIO_NET_HDR_GSO_NONE`.
    pub const GSO_NONE: u8 = 0;
    /// `VIRTIO_NET_HDR_GSO_TCPV4`.
    pub const GSO_TCPV4: u8 = 1;
    /// `VIRTIO_NET_HDR_GSO_UDP`.
    pub const GSO_UDP: u8 = 3;
    /// `VIRTIO_NET_HDR_GSO_TCPV6`.
    pub const GSO_TCPV6: u8 = 4;
    /// `VIRTIO_NET_HDR_GSO_ECN` (a flag or-ed into the type).
    pub const GSO_ECN: u8 = 0x80;

    /// Parses the first [`VirtioNetHdr::LEN`] bytes of `b`, or `None` if
    /// `b` is shorter.
    pub fn parse(b: &[u8]) -> Option<VirtioNetHdr> {
        let b = b.get(..Self::LEN)?;
        let u = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VirtioNetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// The header's bytes as the TAP file expects them.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }
}

/// How [`TapDevice::open_with`] opens the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TapOptions {
    nonblocking: bool,
    vnet_hdr: bool,
}

impl TapOptions {
    /// Blocking I/O, no virtio header.
    pub fn new() -> TapOptions {
        TapOptions::default()
    }

    /// Reads return `WouldBlock` instead of waiting when no frame is queued
    /// (`O_NONBLOCK`), as a poll loop wants.
    pub fn nonblocking(mut self, on: bool) -> TapOptions {
        self.nonblocking = on;
        self
    }

    /// Sets `IFF_VNET_HDR`: every frame is preceded by a [`VirtioNetHdr`].
    pub fn vnet_hdr(mut self, on: bool) -> TapOptions {
        self.vnet_hdr = on;
        self
    }
}

/// An open TAP interface.
///
/// Mirrors the user side of `struct tun_struct` (`drivers/net/tun.c`). The
/// interface exists while the device is open (it is not made persistent),
/// and disappears when it is dropped.
pub struct TapDevice {
    file: File,
    name: String,
    ifindex: u32,
    vnet_hdr: bool,
    rx_buf: Vec<u8>,
    /// The eventfd behind [`TapDevice::kicker`], once asked for.
    kick: Option<File>,
}

/// Checks an interface name as the kernel's `dev_valid_name()` does.
fn check_name(name: &str) -> io::Result<()> {
    let bad = name.len() >= IFNAMSIZ
        || name == "."
        || name == ".."
        || name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace());
    if bad {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "bad TAP name {name:?}: expected at most {} bytes without '/', ':', NUL or spaces (empty lets the kernel choose tapN)",
                IFNAMSIZ - 1
            ),
        ));
    }
    Ok(())
}

/// Turns an errno from opening or binding the device into a clear error.
fn explain(e: &io::Error, what: &str, name: &str) -> io::Error {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{what} for TAP device {name:?} failed: root or CAP_NET_ADMIN is needed to create a TAP device ({e})"
            ),
        ),
        Some(libc::ENOENT) => io::Error::new(
            io::ErrorKind::NotFound,
            format!("{TUN_PATH} does not exist: load the tun module (modprobe tun) ({e})"),
        ),
        Some(libc::EBUSY) => io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{what} for TAP device {name:?} failed: the name is taken by another device or process ({e})"
            ),
        ),
        _ => io::Error::new(
            e.kind(),
            format!("{what} for TAP device {name:?} failed: {e}"),
        ),
    }
}

impl TapDevice {
    /// Creates (or attaches to) the TAP interface `name` with blocking I/O.
    ///
    /// An empty `name` lets the kernel choose (`tap0`, `tap1`, ...). The
    /// interface starts down; bring it up with `ip link set NAME up`.
    pub fn open(name: &str) -> io::Result<TapDevice> {
        TapDevice::open_with(name, TapOptions::new())
    }

    /// Creates (or attaches to) the TAP interface `name` with `options`.
    pub fn open_with(name: &str, options: TapOptions) -> io::Result<TapDevice> {
        check_name(name)?;
        let mut flags = libc::O_CLOEXEC;
        if options.nonblocking {
            flags |= libc::O_NONBLOCK;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(flags)
            .open(TUN_PATH)
            .map_err(|e| explain(&e, "opening /dev/net/tun", name))?;

        // SAFETY: `ifreq` is a C struct of integers, arrays and a union of
        // integers and pointers; all-zero bytes are a valid value of it.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, &src) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
            *dst = src as libc::c_char;
        }
        let mut ifflags = libc::IFF_TAP | libc::IFF_NO_PI;
        if options.vnet_hdr {
            ifflags |= libc::IFF_VNET_HDR;
        }
        ifr.ifr_ifru.ifru_flags = ifflags as libc::c_short;
        // SAFETY: the descriptor is open for the lifetime of `file`;
        // TUNSETIFF reads and writes one `struct ifreq`, and `ifr` is a valid,
        // exclusively borrowed `ifreq` for the duration of the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &raw mut ifr) };
        if rc < 0 {
            return Err(explain(&io::Error::last_os_error(), "TUNSETIFF", name));
        }

        // The kernel wrote the interface's actual name back (NUL-terminated
        // within IFNAMSIZ, since it was zeroed and the kernel keeps it so).
        let actual: Vec<u8> = ifr
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        let actual = String::from_utf8_lossy(&actual).into_owned();
        let cname = CString::new(actual.clone())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "interface name with NUL"))?;
        // SAFETY: `cname` is a valid NUL-terminated string that outlives the
        // call; if_nametoindex only reads it.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(explain(
                &io::Error::last_os_error(),
                "if_nametoindex",
                &actual,
            ));
        }
        Ok(TapDevice {
            file,
            name: actual,
            ifindex,
            vnet_hdr: options.vnet_hdr,
            rx_buf: vec![0; RX_BUF_LEN],
            kick: None,
        })
    }

    /// The interface name (the kernel's choice if `open` was given "").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface index in the namespace it was created in.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether frames carry a [`VirtioNetHdr`].
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// Switches between blocking and non-blocking reads and writes.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: `fd` is open for the lifetime of `self.file`; F_GETFL
        // takes no argument and only reads the descriptor's flags.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if fl < 0 {
            return Err(io::Error::last_os_error());
        }
        let fl = if on {
            fl | libc::O_NONBLOCK
        } else {
            fl & !libc::O_NONBLOCK
        };
        // SAFETY: as above; F_SETFL takes an int of file status flags.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, fl) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Tells the kernel which offloads this side accepts on frames it
    /// reads: a mask of `TUN_F_*` bits ([`TUN_F_CSUM`], [`TUN_F_TSO4`],
    /// ...). With [`TUN_F_CSUM`] the kernel may hand over frames whose
    /// checksum is only partial (`VIRTIO_NET_HDR_F_NEEDS_CSUM`); with
    /// [`TUN_F_TSO4`] as well it may hand over TCP super-frames of up to
    /// 64 KiB (`VIRTIO_NET_HDR_GSO_TCPV4`) in one read.
    ///
    /// Mirrors the `TUNSETOFFLOAD` ioctl (`set_offload()` in
    /// `drivers/net/tun.c`). Needs a device opened with
    /// [`TapOptions::vnet_hdr`]: without a header the kernel could not say
    /// what it left undone, so the call is refused with `InvalidInput`.
    pub fn set_offload(&self, flags: u32) -> io::Result<()> {
        if !self.vnet_hdr {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TUNSETOFFLOAD needs a TAP opened with IFF_VNET_HDR (TapOptions::vnet_hdr)",
            ));
        }
        // SAFETY: the descriptor is open for the lifetime of `self.file`;
        // TUNSETOFFLOAD takes its argument by value (an unsigned long of
        // TUN_F_* bits) and touches no memory of ours.
        let rc = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(flags),
            )
        };
        if rc < 0 {
            return Err(explain(
                &io::Error::last_os_error(),
                "TUNSETOFFLOAD",
                &self.name,
            ));
        }
        Ok(())
    }

    /// Brings the kernel side of the interface up (`ip link set NAME up`).
    ///
    /// Mirrors the `SIOCGIFFLAGS`/`SIOCSIFFLAGS` pair `ifconfig NAME up`
    /// uses (`dev_ioctl()` → `dev_change_flags()` with `IFF_UP`). A TAP
    /// whose interface is down refuses writes with `EIO`, so a host
    /// attached to it could not send.
    pub fn set_link_up(&self) -> io::Result<()> {
        // SAFETY: socket() takes integers and returns a new descriptor or -1.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket() and is owned by nobody
        // else; the OwnedFd closes it once.
        let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY: all-zero bytes are a valid `ifreq` (see open_with).
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, &src) in ifr.ifr_name.iter_mut().zip(self.name.as_bytes()) {
            *dst = src as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of one
        // valid, exclusively borrowed `ifreq`.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &raw mut ifr) } < 0 {
            return Err(explain(
                &io::Error::last_os_error(),
                "SIOCGIFFLAGS",
                &self.name,
            ));
        }
        // SAFETY: SIOCGIFFLAGS filled `ifru_flags`, the union member read.
        let flags = unsafe { ifr.ifr_ifru.ifru_flags };
        ifr.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        // SAFETY: as above; SIOCSIFFLAGS only reads the `ifreq`.
        if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &raw mut ifr) } < 0 {
            return Err(explain(
                &io::Error::last_os_error(),
                "SIOCSIFFLAGS",
                &self.name,
            ));
        }
        Ok(())
    }

    /// Reads one frame as the kernel sent it: no FCS, and with the virtio
    /// header in front if [`TapOptions::vnet_hdr`] was set. Returns its
    /// length.
    pub fn read_raw(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.file.read(buf)
    }

    /// Writes one frame as the kernel expects it: no FCS, with the virtio
    /// header in front if [`TapOptions::vnet_hdr`] was set.
    pub fn write_raw(&mut self, frame: &[u8]) -> io::Result<()> {
        let n = self.file.write(frame)?;
        if n == frame.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("TAP took {n} of {} bytes", frame.len()),
            ))
        }
    }

    /// Writes one frame with `hdr` in front (`writev(2)`: header and frame
    /// leave from their own buffers, one system call, no copy in user
    /// space). Needs a device opened with [`TapOptions::vnet_hdr`];
    /// `frame` carries no FCS.
    ///
    /// Mirrors what `tun_get_user()` reads: a `virtio_net_hdr`, then the
    /// frame, gathered from the caller's iovec.
    pub fn write_vnet(&mut self, hdr: VirtioNetHdr, frame: &[u8]) -> io::Result<()> {
        if !self.vnet_hdr {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write_vnet needs a TAP opened with IFF_VNET_HDR (TapOptions::vnet_hdr)",
            ));
        }
        let h = hdr.to_bytes();
        let bufs = [io::IoSlice::new(&h), io::IoSlice::new(frame)];
        let want = h.len() + frame.len();
        let n = self.file.write_vectored(&bufs)?;
        if n == want {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("TAP took {n} of {want} bytes"),
            ))
        }
    }

    /// Writes one frame gathered from `parts` with `hdr` in front, in one
    /// `writev(2)`: a GSO skb's linear head and its fragments leave from
    /// their own buffers. Needs a device opened with
    /// [`TapOptions::vnet_hdr`]; the frame carries no FCS. At most 64
    /// parts (headers, an skb's head, and a fragment per segment of a
    /// 64 KiB GSO skb); more are refused with `InvalidInput`.
    ///
    /// Mirrors what `tun_get_user()` reads through `vhost-net`'s
    /// `handle_tx()`: a `virtio_net_hdr`, then the frame from the iovec.
    pub fn write_vnet_parts(&mut self, hdr: VirtioNetHdr, parts: &[&[u8]]) -> io::Result<()> {
        if !self.vnet_hdr {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write_vnet_parts needs a TAP opened with IFF_VNET_HDR (TapOptions::vnet_hdr)",
            ));
        }
        if parts.len() > TAP_MAX_PARTS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "write_vnet_parts: {} parts, at most {TAP_MAX_PARTS}",
                    parts.len()
                ),
            ));
        }
        let h = hdr.to_bytes();
        let mut bufs = [io::IoSlice::new(&[]); TAP_MAX_PARTS + 1];
        bufs[0] = io::IoSlice::new(&h);
        let mut want = h.len();
        for (b, p) in bufs[1..].iter_mut().zip(parts) {
            *b = io::IoSlice::new(p);
            want += p.len();
        }
        let n = self.file.write_vectored(&bufs[..=parts.len()])?;
        if n == want {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("TAP took {n} of {want} bytes"),
            ))
        }
    }

    /// A descriptor that wakes [`wait_readable`](TapDevice::wait_readable):
    /// write any 8-byte count to it (an `eventfd(2)`, created on the first
    /// call; every call returns a handle on the same one).
    ///
    /// Mirrors the kick a virtio driver gives its backend (`vhost`'s
    /// `ioeventfd`): the thread serving the TAP sleeps in `poll(2)` on the
    /// TAP and this descriptor, so a frame from the kernel and work queued
    /// by another thread both wake it at once.
    pub fn kicker(&mut self) -> io::Result<File> {
        if self.kick.is_none() {
            // SAFETY: eventfd takes no pointers; the result is checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            let owned =
                unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            self.kick = Some(File::from(owned));
        }
        match &self.kick {
            Some(k) => k.try_clone(),
            None => Err(io::Error::other("eventfd missing")),
        }
    }

    /// Sleeps until the TAP has a frame to read, the
    /// [`kicker`](TapDevice::kicker) was written, or `timeout` passed
    /// (`poll(2)`). Returns whether the TAP is readable; a kick is
    /// consumed.
    pub fn wait_readable(&mut self, timeout: std::time::Duration) -> io::Result<bool> {
        let mut fds = [
            libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.kick.as_ref().map_or(-1, AsRawFd::as_raw_fd),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Round up, so a short timeout sleeps rather than spins.
        let ms = i32::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of two pollfd for the call's
        // duration; a negative fd is ignored by poll.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        if fds[1].revents & libc::POLLIN != 0
            && let Some(k) = &self.kick
        {
            let mut b = [0u8; 8];
            let _ = (&*k).read(&mut b);
        }
        Ok(fds[0].revents & libc::POLLIN != 0)
    }

    /// Reads one frame the kernel sent and returns it with its FCS
    /// appended, as a MAC would receive it from a cable.
    ///
    /// With a virtio header, the header is read and discarded; use
    /// [`read_frame_vnet`](TapDevice::read_frame_vnet) to see it.
    pub fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        self.read_frame_vnet().map(|(_, f)| f)
    }

    /// Like [`read_frame`](TapDevice::read_frame), also returning the
    /// virtio header (all zeros when the device has none).
    pub fn read_frame_vnet(&mut self) -> io::Result<(VirtioNetHdr, Vec<u8>)> {
        let n = self.file.read(&mut self.rx_buf)?;
        let data = &self.rx_buf[..n];
        let (hdr, frame) = if self.vnet_hdr {
            let hdr = VirtioNetHdr::parse(data).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("TAP read {n} bytes, shorter than a virtio_net_hdr"),
                )
            })?;
            (hdr, &data[VirtioNetHdr::LEN..])
        } else {
            (VirtioNetHdr::default(), data)
        };
        let mut out = Vec::with_capacity(frame.len() + ETH_FCS_LEN);
        out.extend_from_slice(frame);
        append_fcs(&mut out);
        Ok((hdr, out))
    }

    /// Strips the FCS from `frame_with_fcs` and writes the rest to the
    /// kernel (with a zero virtio header if the device has one).
    ///
    /// A frame shorter than its FCS is refused with `InvalidInput`; the FCS
    /// itself is not checked (the kernel would never see it).
    pub fn write_frame(&mut self, frame_with_fcs: &[u8]) -> io::Result<()> {
        self.write_frame_vnet(VirtioNetHdr::default(), frame_with_fcs)
    }

    /// Like [`write_frame`](TapDevice::write_frame), with `hdr` in front
    /// when the device has a virtio header (ignored otherwise).
    pub fn write_frame_vnet(&mut self, hdr: VirtioNetHdr, frame_with_fcs: &[u8]) -> io::Result<()> {
        let Some(len) = frame_with_fcs.len().checked_sub(ETH_FCS_LEN) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame of {} bytes is shorter than its 4-byte FCS",
                    frame_with_fcs.len()
                ),
            ));
        };
        let frame = &frame_with_fcs[..len];
        if self.vnet_hdr {
            self.write_vnet(hdr, frame)
        } else {
            self.write_raw(frame)
        }
    }
}

impl std::fmt::Debug for TapDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TapDevice")
            .field("name", &self.name)
            .field("ifindex", &self.ifindex)
            .field("fd", &self.file.as_raw_fd())
            .field("vnet_hdr", &self.vnet_hdr)
            .finish_non_exhaustive()
    }
}

impl AsRawFd for TapDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for TapDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl PhyPort for TapDevice {
    /// Writes the frame to the kernel without its FCS.
    fn transmit(&mut self, _now: Instant, frame: Vec<u8>) -> Result<(), PhyError> {
        if frame.len() < ETH_FCS_LEN {
            return Err(PhyError::FrameTooShort { len: frame.len() });
        }
        self.write_frame(&frame).map_err(PhyError::from)
    }

    /// Reads one frame, FCS appended; `Ok(None)` when none is queued on a
    /// non-blocking device.
    fn receive(&mut self, _now: Instant) -> Result<Option<Vec<u8>>, PhyError> {
        match self.read_frame() {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Always `None`: frames arrive when the descriptor becomes readable.
    fn next_event(&self) -> Option<Instant> {
        None
    }

    /// Writes the frame without its last four bytes, as
    /// [`transmit`](PhyPort::transmit) does: the kernel never sees an
    /// FCS, so the one the MAC vouched for is not computed.
    fn transmit_swap_fcs_good(
        &mut self,
        _now: Instant,
        frame: &mut Vec<u8>,
    ) -> Result<(), PhyError> {
        if frame.len() < ETH_FCS_LEN {
            return Err(PhyError::FrameTooShort { len: frame.len() });
        }
        let r = self.write_frame(frame).map_err(PhyError::from);
        frame.clear();
        r
    }
}

/// `TUN_F_CSUM`: this side accepts frames with a partial checksum.
pub const TUN_F_CSUM: u32 = 0x01;
/// `TUN_F_TSO4`: this side accepts TCP/IPv4 super-frames.
pub const TUN_F_TSO4: u32 = 0x02;
/// `TUN_F_TSO6`: this side accepts TCP/IPv6 super-frames.
pub const TUN_F_TSO6: u32 = 0x04;
/// `TUN_F_TSO_ECN`: super-frames may carry ECN (CWR) marks.
pub const TUN_F_TSO_ECN: u32 = 0x08;

/// The termination signals (`SIGINT`, `SIGTERM`) held back from every
/// thread and taken one at a time by [`StopSignals::wait`].
///
/// Mirrors the `sigprocmask()` + `sigwait()` pattern of a daemon that
/// stops cleanly on Ctrl-C: block the signals before any thread is
/// started (threads inherit the mask), then wait for them in one place
/// instead of running code in a signal handler.
#[derive(Clone, Copy)]
pub struct StopSignals {
    set: libc::sigset_t,
}

impl std::fmt::Debug for StopSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StopSignals(SIGINT, SIGTERM)")
    }
}

impl StopSignals {
    /// Blocks `SIGINT` and `SIGTERM` in the calling thread (call it before
    /// starting threads, which inherit the mask).
    pub fn block() -> io::Result<StopSignals> {
        // SAFETY: all-zero bytes are a valid sigset_t, and sigemptyset
        // initialises it anyway.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, exclusively borrowed sigset_t; the
        // signal numbers are valid.
        unsafe {
            libc::sigemptyset(&raw mut set);
            libc::sigaddset(&raw mut set, libc::SIGINT);
            libc::sigaddset(&raw mut set, libc::SIGTERM);
        }
        // SAFETY: `set` is initialised; a null old-set pointer is allowed.
        let rc =
            unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(StopSignals { set })
    }

    /// Waits until `SIGINT` or `SIGTERM` arrives and returns its number.
    pub fn wait(&self) -> io::Result<i32> {
        let mut sig: libc::c_int = 0;
        // SAFETY: `self.set` is an initialised sigset_t and `sig` a valid
        // out-pointer for the duration of the call.
        let rc = unsafe { libc::sigwait(&raw const self.set, &raw mut sig) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(sig)
    }
}

/// Moves the calling thread into a new, empty network namespace.
///
/// Mirrors `unshare(CLONE_NEWNET)` (`kernel/fork.c`). Only the calling
/// thread moves: sockets it opens, TAP devices it creates and processes it
/// spawns (`std::process::Command`) live in the new namespace, which the
/// kernel deletes when its last user goes away, so nothing needs cleaning
/// up. Needs root or `CAP_SYS_ADMIN`.
pub fn unshare_net_namespace() -> io::Result<()> {
    // SAFETY: unshare() takes flags by value and touches no memory of ours;
    // CLONE_NEWNET changes only the calling thread's namespace pointer.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("unshare(CLONE_NEWNET) needs root or CAP_SYS_ADMIN ({e})"),
            ),
            _ => e,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        for name in ["a/b", "x:1", "has space", "sixteen-chars-no", ".", ".."] {
            let e = TapDevice::open(name).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{name}");
            assert!(e.to_string().contains("bad TAP name"), "{e}");
        }
    }

    #[test]
    fn permission_errors_say_what_is_needed() {
        let e = explain(
            &io::Error::from_raw_os_error(libc::EPERM),
            "TUNSETIFF",
            "tap9",
        );
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("root or CAP_NET_ADMIN"), "{e}");
        let e = explain(
            &io::Error::from_raw_os_error(libc::EACCES),
            "opening /dev/net/tun",
            "tap9",
        );
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        let e = explain(
            &io::Error::from_raw_os_error(libc::ENOENT),
            "opening /dev/net/tun",
            "tap9",
        );
        assert!(e.to_string().contains("modprobe tun"), "{e}");
    }

    #[test]
    fn virtio_header_round_trips() {
        let h = VirtioNetHdr {
            flags: VirtioNetHdr::F_NEEDS_CSUM,
            gso_type: VirtioNetHdr::GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(VirtioNetHdr::parse(&h.to_bytes()), Some(h));
        assert_eq!(VirtioNetHdr::parse(&[0; 9]), None);
    }
}
