//! A run's packets as a pcap file, so a failing script can be opened in
//! Wireshark or read with `tshark -r` beside the script.
//!
//! Classic pcap (magic `a1b2c3d4`, microsecond timestamps) with link type
//! `LINKTYPE_RAW` (101): each record is the IPv4 datagram as it was
//! injected or sent, with no link-layer header, and its timestamp is the
//! script's virtual time (the run starts at 0 s).

use std::io::{self, Write};

/// `LINKTYPE_RAW`: records start with the IP header.
pub const LINKTYPE_RAW: u32 = 101;

/// Writes `packets` (virtual time in microseconds, IPv4 datagram) to `w`
/// as a pcap file.
pub fn write_pcap<W: Write>(mut w: W, packets: &[(i64, Vec<u8>)]) -> io::Result<()> {
    w.write_all(&0xa1b2_c3d4_u32.to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&4u16.to_le_bytes())?;
    w.write_all(&0i32.to_le_bytes())?; // thiszone
    w.write_all(&0u32.to_le_bytes())?; // sigfigs
    w.write_all(&65_535u32.to_le_bytes())?; // snaplen
    w.write_all(&LINKTYPE_RAW.to_le_bytes())?;
    for (usecs, bytes) in packets {
        let usecs = u64::try_from(*usecs).unwrap_or(0);
        let len = u32::try_from(bytes.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet over 4 GiB"))?;
        let secs = u32::try_from(usecs / 1_000_000).unwrap_or(u32::MAX);
        w.write_all(&secs.to_le_bytes())?;
        w.write_all(&((usecs % 1_000_000) as u32).to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(bytes)?;
    }
    w.flush()
}
