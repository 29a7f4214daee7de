//! UDP connection tracking: unreplied and stream timeouts.
//!
//! Mirrors `net/netfilter/nf_conntrack_proto_udp.c` (`udp_packet()`): a
//! flow without a reply lives `nf_conntrack_udp_timeout` (30 s); once
//! replied to and still active two seconds after its first packet it is a
//! stream, ASSURED, and lives `nf_conntrack_udp_timeout_stream` (120 s).

use netcore::{Duration, Instant, Sysctl};

use crate::nf_conntrack_core::{CtTimeouts, L4Verdict, NfConn, NfConnProto, ips};

/// The per-protocol state of a new UDP flow (`udp_new()` sets
/// `stream_ts = jiffies + 2 * HZ`).
pub(crate) fn udp_new(now: Instant) -> NfConnProto {
    NfConnProto::Udp {
        stream_ts: now + Duration::from_secs(2),
    }
}

/// Refreshes a UDP flow (`nf_conntrack_udp_packet()`).
pub(crate) fn udp_packet(conn: &mut NfConn, now: Instant, to: &CtTimeouts<'_>) -> L4Verdict {
    let unreplied = to.0.get_int(Sysctl::NF_CONNTRACK_UDP_TIMEOUT);
    let replied = to.0.get_int(Sysctl::NF_CONNTRACK_UDP_TIMEOUT_STREAM);
    let stream_ts = match conn.proto {
        NfConnProto::Udp { stream_ts } => stream_ts,
        _ => now,
    };
    // SEEN_REPLY is set by the caller after this runs, as in Linux: the
    // first reply still refreshes with the unreplied timeout.
    if conn.test(ips::SEEN_REPLY) {
        if now > stream_ts {
            conn.refresh(now, replied);
            conn.status |= ips::ASSURED;
        } else {
            conn.refresh(now, unreplied);
        }
    } else {
        conn.refresh(now, unreplied);
    }
    L4Verdict::Accept
}
