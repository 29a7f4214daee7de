//! Explicit Congestion Notification for TCP (RFC 3168), as Linux does it.
//!
//! Mirrors `include/net/tcp_ecn.h` with the ECN parts of `tcp_input.c`
//! (`tcp_ecn_create_request()`, `__tcp_ecn_check_ce()`,
//! `tcp_enter_cwr()`) and `tcp_output.c` (`tcp_ecn_send()`).
//!
//! ```text
//!  negotiation    SYN ECE|CWR  ──▶  SYN-ACK ECE  ──▶  TCP_ECN_OK on both sides
//!                 (tcp_ecn 1)       (tcp_ecn 1 or 2, the SYN not ECT)
//!
//!  sender         new data: IP ECT(0)   ACKs, retransmits, probes: not-ECT
//!  router/AQM     ECT(0) ──(congested)──▶ CE         (fq_codel with ecn)
//!  receiver       CE seen ──▶ TCP_ECN_DEMAND_CWR ──▶ ECE on every segment
//!                 (quick ACKs)                   until a segment with CWR
//!  sender         ACK with ECE ──▶ tcp_enter_cwr(): ssthresh from the
//!                 controller, PRR down to it (CA state CWR), once per
//!                 window; TCP_ECN_QUEUE_CWR ──▶ CWR on the next new data
//! ```
//!
//! `tp.ecn_flags` holds the connection's state (`TCP_ECN_*`); the IP
//! header's two ECN bits of each segment come back from
//! [`tcp_ecn_send`] and reach IP as the TOS byte of
//! [`TcpContext::ip_queue_xmit`](crate::TcpContext::ip_queue_xmit).
//!
//! # Deviations from Linux
//!
//! - Accurate ECN (`tcp_ecn` 3, 4 and 5, the AE flag and the AccECN
//!   option) is not built: with 3 or 4 a connect asks for classic ECN,
//!   and 5 accepts classic ECN without asking for it, which is what
//!   Linux falls back to when the peer does not speak AccECN. A SYN
//!   asking for AccECN (AE|CWR|ECE) gets classic ECN, as from a Linux
//!   whose `tcp_ecn` is 1 or 2.
//! - No per-route ECN (`ip route ... features ecn`) and no congestion
//!   control that needs ECN (DCTCP's `TCP_CONG_NEEDS_ECN`): the SYN and
//!   SYN-ACK are never ECT.

use netcore::{INET_ECN_CE, INET_ECN_ECT_0, INET_ECN_MASK, INET_ECN_NOT_ECT, Sysctl};
use wire::TcpFlags;

use crate::tcp_input::TcpSeg;
use crate::tcp_sock::TcpSock;

/// ECN was negotiated on this connection. Mirrors `TCP_ECN_OK`.
pub(crate) const TCP_ECN_OK: u8 = 1;
/// Put CWR on the next new data segment. Mirrors `TCP_ECN_QUEUE_CWR`.
pub(crate) const TCP_ECN_QUEUE_CWR: u8 = 2;
/// A CE mark was received: ECE on every segment until the peer's CWR.
/// Mirrors `TCP_ECN_DEMAND_CWR`.
pub(crate) const TCP_ECN_DEMAND_CWR: u8 = 4;
/// An ECT or CE segment was received. Mirrors `TCP_ECN_SEEN`.
pub(crate) const TCP_ECN_SEEN: u8 = 8;

/// `ECE|CWR`, the flags of an ECN-setup SYN. Mirrors `TCPHDR_SYN_ECN`
/// without the SYN.
const ECN_SETUP: TcpFlags = TcpFlags::ECE.union(TcpFlags::CWR);

/// Whether `tcp_ecn` asks for ECN on outgoing connections (1; and 3 and
/// 4, see the module's deviations).
fn tcp_ecn_requested(sysctl: &Sysctl) -> bool {
    matches!(sysctl.get_int(Sysctl::TCP_ECN), 1 | 3 | 4)
}

/// Whether `tp` negotiated ECN. Mirrors `tcp_ecn_mode_rfc3168()`.
#[inline]
pub(crate) fn tcp_ecn_ok(tp: &TcpSock) -> bool {
    tp.ecn_flags & TCP_ECN_OK != 0
}

/// The ECN flags of a connect's SYN (`ECE|CWR` when `tcp_ecn` asks for
/// ECN, else none); the socket starts with `TCP_ECN_OK` when it asked.
/// Mirrors `tcp_ecn_send_syn()`.
pub(crate) fn tcp_ecn_send_syn(sysctl: &Sysctl, tp: &mut TcpSock) -> TcpFlags {
    tp.ecn_flags = 0;
    if tcp_ecn_requested(sysctl) {
        tp.ecn_flags = TCP_ECN_OK;
        ECN_SETUP
    } else {
        TcpFlags::empty()
    }
}

/// A SYN is sent again: with `tcp_ecn_fallback` on, without `ECE|CWR`
/// (a middlebox may drop ECN-setup SYNs; the SYN-ACK will then come
/// without ECE and turn ECN off). Mirrors `tcp_ecn_clear_syn()`.
pub(crate) fn tcp_ecn_clear_syn(sysctl: &Sysctl, flags: &mut TcpFlags) {
    if flags.contains(TcpFlags::SYN | ECN_SETUP) && sysctl.get_int(Sysctl::TCP_ECN_FALLBACK) != 0 {
        flags.remove(ECN_SETUP);
    }
}

/// The SYN-ACK of our connect: ECN stays on only if it carries ECE
/// without CWR. Mirrors `tcp_ecn_rcv_synack()`.
pub(crate) fn tcp_ecn_rcv_synack(tp: &mut TcpSock, flags: TcpFlags) {
    if tcp_ecn_ok(tp) && (!flags.contains(TcpFlags::ECE) || flags.contains(TcpFlags::CWR)) {
        tp.ecn_flags &= !TCP_ECN_OK;
    }
}

/// A SYN crossed ours (simultaneous open): ECN stays on only if it asked
/// for ECN too. Mirrors `tcp_ecn_rcv_syn()`.
pub(crate) fn tcp_ecn_rcv_syn(tp: &mut TcpSock, flags: TcpFlags) {
    if tcp_ecn_ok(tp) && !flags.contains(ECN_SETUP) {
        tp.ecn_flags &= !TCP_ECN_OK;
    }
}

/// The ECN flags of the SYN-ACK a socket in SYN-SENT sends for a crossed
/// SYN: ECE when ECN is still on, never CWR. Mirrors
/// `tcp_ecn_send_synack()`.
pub(crate) fn tcp_ecn_send_synack(tp: &TcpSock) -> TcpFlags {
    if tcp_ecn_ok(tp) {
        TcpFlags::ECE
    } else {
        TcpFlags::empty()
    }
}

/// Whether a listener accepts the ECN asked for by `seg`, a SYN: it must
/// carry `ECE|CWR`, `tcp_ecn` must be non-zero, and the SYN itself must
/// not be ECN-capable in IP (a SYN marked ECT comes from a broken or
/// AccECN peer; Linux accepts it only with a reserved bit, AE, set).
/// Mirrors `tcp_ecn_create_request()`.
pub(crate) fn tcp_ecn_create_request(sysctl: &Sysctl, seg: &TcpSeg) -> bool {
    if !seg.flags.contains(ECN_SETUP) {
        return false;
    }
    let ect = seg.ip_dsfield & INET_ECN_MASK != INET_ECN_NOT_ECT;
    (!ect || seg.flags.contains(TcpFlags::AE)) && sysctl.get_int(Sysctl::TCP_ECN) != 0
}

/// The ECN flag of a request's SYN-ACK: ECE when ECN was accepted.
/// Mirrors `tcp_ecn_make_synack()`.
pub(crate) fn tcp_ecn_make_synack(ecn_ok: bool) -> TcpFlags {
    if ecn_ok {
        TcpFlags::ECE
    } else {
        TcpFlags::empty()
    }
}

/// The ECN field and flags of an outgoing segment that is not a SYN:
/// new data is ECT(0), and the first new data after a reduction carries
/// CWR (returned as `true`, so a GSO packet can be marked
/// `SKB_GSO_TCP_ECN`); pure ACKs, retransmissions and probes are not
/// ECN-capable (RFC 3168 §6.1.5, §6.1.6); every segment echoes ECE while
/// the peer has not answered a CE mark with CWR. Returns the TOS byte.
/// Mirrors `tcp_ecn_send()` with `INET_ECN_xmit()` /
/// `INET_ECN_dontxmit()`.
#[inline]
pub(crate) fn tcp_ecn_send(tp: &mut TcpSock, new_data: bool, flags: &mut TcpFlags) -> (u8, bool) {
    let mut tos = INET_ECN_NOT_ECT;
    let mut cwr = false;
    if new_data {
        tos = INET_ECN_ECT_0;
        if tp.ecn_flags & TCP_ECN_QUEUE_CWR != 0 {
            tp.ecn_flags &= !TCP_ECN_QUEUE_CWR;
            flags.insert(TcpFlags::CWR);
            cwr = true;
        }
    }
    if tp.ecn_flags & TCP_ECN_DEMAND_CWR != 0 {
        flags.insert(TcpFlags::ECE);
    }
    (tos, cwr)
}

/// The next new data segment must say the window was reduced. Mirrors
/// `tcp_ecn_queue_cwr()`.
#[inline]
pub(crate) fn tcp_ecn_queue_cwr(tp: &mut TcpSock) {
    if tcp_ecn_ok(tp) {
        tp.ecn_flags |= TCP_ECN_QUEUE_CWR;
    }
}

/// A reduction was undone: no CWR owed. Mirrors `tcp_ecn_withdraw_cwr()`.
#[inline]
pub(crate) fn tcp_ecn_withdraw_cwr(tp: &mut TcpSock) {
    tp.ecn_flags &= !TCP_ECN_QUEUE_CWR;
}

/// A segment with CWR: the peer reduced its window, so stop echoing ECE,
/// and ACK its data at once (its window may be one segment). Linux takes
/// CWR on pure ACKs too, against RFC 3168's "first new data", to work
/// with stacks that send it there. Mirrors `tcp_ecn_accept_cwr()`.
#[inline]
pub(crate) fn tcp_ecn_accept_cwr(tp: &mut TcpSock, seg: &TcpSeg) {
    if tcp_ecn_ok(tp) && seg.flags.contains(TcpFlags::CWR) {
        tp.ecn_flags &= !TCP_ECN_DEMAND_CWR;
        if seg.seq != seg.end_seq {
            tp.ack.pending |= crate::tcp_sock::ICSK_ACK_NOW;
        }
    }
}

/// Whether an ACK echoes congestion: ECE on a segment that is not a SYN,
/// on a connection that negotiated ECN. Mirrors `tcp_ecn_rcv_ecn_echo()`.
#[inline]
pub(crate) fn tcp_ecn_rcv_ecn_echo(tp: &TcpSock, flags: TcpFlags) -> bool {
    flags.contains(TcpFlags::ECE) && !flags.contains(TcpFlags::SYN) && tcp_ecn_ok(tp)
}

/// Data arrived with IP ECN field `dsfield`: a CE mark makes every
/// segment echo ECE until the sender's CWR, with quick ACKs (the sender's
/// window may be small); a not-ECT segment after ECT ones also gets quick
/// ACKs (so a router that stopped marking does not hold them back).
/// Mirrors `tcp_ecn_check_ce()` / `__tcp_ecn_check_ce()`.
#[inline]
pub(crate) fn tcp_ecn_check_ce(tp: &mut TcpSock, dsfield: u8) {
    if !tcp_ecn_ok(tp) {
        return;
    }
    match dsfield & INET_ECN_MASK {
        INET_ECN_NOT_ECT => {
            if tp.ecn_flags & TCP_ECN_SEEN != 0 {
                crate::tcp_output::tcp_enter_quickack_mode(tp, 2);
            }
        }
        INET_ECN_CE => {
            if tp.ecn_flags & TCP_ECN_DEMAND_CWR == 0 {
                crate::tcp_output::tcp_enter_quickack_mode(tp, 2);
                tp.ecn_flags |= TCP_ECN_DEMAND_CWR;
            }
            tp.ecn_flags |= TCP_ECN_SEEN;
        }
        _ => tp.ecn_flags |= TCP_ECN_SEEN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp_cong::Reno;
    use crate::tcp_sock::SockId;

    fn sock() -> TcpSock {
        TcpSock::new(SockId(1), 16384, 131072, Box::new(Reno))
    }

    #[test]
    fn syn_asks_only_when_tcp_ecn_says_so() {
        let sysctl = Sysctl::new();
        let mut tp = sock();
        // The default, 2: accept, do not ask.
        assert_eq!(tcp_ecn_send_syn(&sysctl, &mut tp), TcpFlags::empty());
        assert_eq!(tp.ecn_flags, 0);
        for (v, asks) in [(0, false), (1, true), (3, true), (4, true), (5, false)] {
            sysctl.set_int(Sysctl::TCP_ECN, v).unwrap();
            let f = tcp_ecn_send_syn(&sysctl, &mut tp);
            assert_eq!(f == ECN_SETUP, asks, "tcp_ecn={v}");
            assert_eq!(tcp_ecn_ok(&tp), asks, "tcp_ecn={v}");
        }
    }

    #[test]
    fn synack_must_carry_ece_without_cwr() {
        for (flags, stays) in [
            (TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE, true),
            (TcpFlags::SYN | TcpFlags::ACK, false),
            (TcpFlags::SYN | TcpFlags::ACK | ECN_SETUP, false),
        ] {
            let mut tp = sock();
            tp.ecn_flags = TCP_ECN_OK;
            tcp_ecn_rcv_synack(&mut tp, flags);
            assert_eq!(tcp_ecn_ok(&tp), stays, "{flags:?}");
        }
    }

    #[test]
    fn fallback_clears_the_retransmitted_syn_only_when_on() {
        let sysctl = Sysctl::new();
        let mut f = TcpFlags::SYN | ECN_SETUP;
        tcp_ecn_clear_syn(&sysctl, &mut f);
        assert_eq!(f, TcpFlags::SYN);
        sysctl.set_int(Sysctl::TCP_ECN_FALLBACK, 0).unwrap();
        let mut f = TcpFlags::SYN | ECN_SETUP;
        tcp_ecn_clear_syn(&sysctl, &mut f);
        assert_eq!(f, TcpFlags::SYN | ECN_SETUP);
    }

    #[test]
    fn send_marks_new_data_ect0_and_owes_cwr_once() {
        let mut tp = sock();
        tp.ecn_flags = TCP_ECN_OK;
        let mut f = TcpFlags::ACK;
        assert_eq!(
            tcp_ecn_send(&mut tp, false, &mut f),
            (INET_ECN_NOT_ECT, false)
        );
        assert_eq!(f, TcpFlags::ACK);
        tcp_ecn_queue_cwr(&mut tp);
        // A retransmission does not pay the CWR owed...
        assert_eq!(
            tcp_ecn_send(&mut tp, false, &mut f),
            (INET_ECN_NOT_ECT, false)
        );
        assert_eq!(f, TcpFlags::ACK);
        // ...the next new data does, once.
        assert_eq!(tcp_ecn_send(&mut tp, true, &mut f), (INET_ECN_ECT_0, true));
        assert_eq!(f, TcpFlags::ACK | TcpFlags::CWR);
        let mut f = TcpFlags::ACK;
        assert_eq!(tcp_ecn_send(&mut tp, true, &mut f), (INET_ECN_ECT_0, false));
        assert_eq!(f, TcpFlags::ACK);
        // A CE mark received: ECE on everything, pure ACKs included.
        tcp_ecn_check_ce(&mut tp, INET_ECN_CE);
        let mut f = TcpFlags::ACK;
        tcp_ecn_send(&mut tp, false, &mut f);
        assert_eq!(f, TcpFlags::ACK | TcpFlags::ECE);
        assert!(tp.ack.quick > 0, "a CE mark grants quick ACKs");
    }
}
