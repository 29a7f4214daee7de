//! TCP connection tracking: the state table and window tracking.
//!
//! Mirrors `net/netfilter/nf_conntrack_proto_tcp.c`: `tcp_conntracks[][][]`
//! (the state a segment moves the connection to, by direction, segment
//! kind and current state), `tcp_in_window()` (the four sequence and ack
//! bounds of "Real Stateful TCP Packet Filtering in IP Filter"),
//! `tcp_error()`, `tcp_new()` and `tcp_packet()`.
//!
//! ```text
//!  client ── SYN ──►  SYN_SENT  ◄── SYN/ACK ── server   SYN_RECV
//!         ── ACK ──►  ESTABLISHED (ASSURED)
//!         ── FIN ──►  FIN_WAIT ◄── ACK ── CLOSE_WAIT ◄── FIN ── LAST_ACK
//!         ── ACK ──►  TIME_WAIT ──(120 s)──► gone          RST ► CLOSE
//! ```

use netcore::{Instant, Sysctl};

use crate::nf_conntrack_core::{CtTimeouts, IpConntrackDir, L4Verdict, NfConn, NfConnProto, ips};

/// TCP conntrack states.
///
/// Mirrors `enum tcp_conntrack` in
/// `include/uapi/linux/netfilter/nf_conntrack_tcp.h`, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TcpConntrack {
    /// `TCP_CONNTRACK_NONE`.
    None = 0,
    /// SYN seen (`TCP_CONNTRACK_SYN_SENT`).
    SynSent = 1,
    /// SYN/ACK seen (`TCP_CONNTRACK_SYN_RECV`).
    SynRecv = 2,
    /// ACK of the SYN/ACK seen (`TCP_CONNTRACK_ESTABLISHED`).
    Established = 3,
    /// FIN seen (`TCP_CONNTRACK_FIN_WAIT`).
    FinWait = 4,
    /// ACK of the FIN seen (`TCP_CONNTRACK_CLOSE_WAIT`).
    CloseWait = 5,
    /// FIN seen both ways (`TCP_CONNTRACK_LAST_ACK`).
    LastAck = 6,
    /// Last ACK seen (`TCP_CONNTRACK_TIME_WAIT`).
    TimeWait = 7,
    /// RST seen (`TCP_CONNTRACK_CLOSE`).
    Close = 8,
    /// SYN from the reply direction: simultaneous open
    /// (`TCP_CONNTRACK_SYN_SENT2`).
    SynSent2 = 9,
}

impl TcpConntrack {
    /// The name `conntrack -L` prints (`tcp_conntrack_names[]`).
    pub fn name(self) -> &'static str {
        match self {
            TcpConntrack::None => "NONE",
            TcpConntrack::SynSent => "SYN_SENT",
            TcpConntrack::SynRecv => "SYN_RECV",
            TcpConntrack::Established => "ESTABLISHED",
            TcpConntrack::FinWait => "FIN_WAIT",
            TcpConntrack::CloseWait => "CLOSE_WAIT",
            TcpConntrack::LastAck => "LAST_ACK",
            TcpConntrack::TimeWait => "TIME_WAIT",
            TcpConntrack::Close => "CLOSE",
            TcpConntrack::SynSent2 => "SYN_SENT2",
        }
    }

    /// The timeout of the state, in seconds, from the sysctls
    /// (`tcp_timeouts[]`).
    fn timeout(self, s: &Sysctl) -> i64 {
        match self {
            TcpConntrack::None => 0,
            TcpConntrack::SynSent | TcpConntrack::SynSent2 => {
                s.get_int(Sysctl::NF_CONNTRACK_TCP_TIMEOUT_SYN_SENT)
            }
            TcpConntrack::SynRecv => s.get_int(Sysctl::NF_CONNTRACK_TCP_TIMEOUT_SYN_RECV),
            TcpConntrack::Established => s.get_int(Sysctl::NF_CONNTRACK_TCP_TIMEOUT_ESTABLISHED),
            TcpConntrack::FinWait => s.get_int(Sysctl::NF_CONNTRACK_TCP_TIMEOUT_FIN_WAIT),
            TcpConntrack::CloseWait => s.get_int(Sysctl::NF_CONNTRACK_TCP_TIMEOUT_CLOSE_WAIT),
            TcpConntrack::LastAck => s.get_int(Sysctl::NF_CONNTRACK_TCP_TIMEOUT_LAST_ACK),
            TcpConntrack::TimeWait => s.get_int(Sysctl::NF_CONNTRACK_TCP_TIMEOUT_TIME_WAIT),
            TcpConntrack::Close => s.get_int(Sysctl::NF_CONNTRACK_TCP_TIMEOUT_CLOSE),
        }
    }
}

/// `nf_conntrack_tcp_timeout_unacknowledged` (300 s): the timeout while
/// data is in flight unacknowledged, if shorter than the state's.
pub const NF_CT_TCP_TIMEOUT_UNACK: i64 = 300;
/// `nf_conntrack_tcp_timeout_max_retrans` (300 s).
pub const NF_CT_TCP_TIMEOUT_RETRANS: i64 = 300;
/// `nf_conntrack_tcp_max_retrans` (3).
pub const NF_CT_TCP_MAX_RETRANS: u8 = 3;

/// Window scaling was offered (`IP_CT_TCP_FLAG_WINDOW_SCALE`).
pub const IP_CT_TCP_FLAG_WINDOW_SCALE: u8 = 0x01;
/// SACK was offered (`IP_CT_TCP_FLAG_SACK_PERM`).
pub const IP_CT_TCP_FLAG_SACK_PERM: u8 = 0x02;
/// This side sent the first FIN (`IP_CT_TCP_FLAG_CLOSE_INIT`).
pub const IP_CT_TCP_FLAG_CLOSE_INIT: u8 = 0x04;
/// Skip window checks (`IP_CT_TCP_FLAG_BE_LIBERAL`), set on mid-stream
/// pickup.
pub const IP_CT_TCP_FLAG_BE_LIBERAL: u8 = 0x08;
/// Data sent and not yet acknowledged (`IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED`).
pub const IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED: u8 = 0x10;
/// `td_maxack` is valid (`IP_CT_TCP_FLAG_MAXACK_SET`).
pub const IP_CT_TCP_FLAG_MAXACK_SET: u8 = 0x20;

/// What conntrack knows of one side's sequence space.
///
/// Mirrors `struct ip_ct_tcp_state`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpCtTcpState {
    /// Highest `seq + len` sent (`td_end`).
    pub td_end: u32,
    /// Highest `ack + window` the peer allowed (`td_maxend`).
    pub td_maxend: u32,
    /// Largest window advertised (`td_maxwin`).
    pub td_maxwin: u32,
    /// Highest ack sent (`td_maxack`).
    pub td_maxack: u32,
    /// Window scale (`td_scale`).
    pub td_scale: u8,
    /// `IP_CT_TCP_FLAG_*`.
    pub flags: u8,
}

/// TCP state of one connection.
///
/// Mirrors `struct ip_ct_tcp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpCtTcp {
    /// `[ORIGINAL, REPLY]` sides (`seen[2]`).
    pub seen: [IpCtTcpState; 2],
    /// The conntrack state.
    pub state: TcpConntrack,
    /// Direction of the last in-window segment (`last_dir`).
    pub last_dir: u8,
    /// Retransmissions of the same segment in a row (`retrans`).
    pub retrans: u8,
    /// Kind of the last segment (`last_index`).
    pub last_index: u8,
    /// `last_seq`, `last_ack`, `last_end`, `last_win` of the last segment.
    pub last_seq: u32,
    /// See `last_seq`.
    pub last_ack: u32,
    /// See `last_seq`.
    pub last_end: u32,
    /// See `last_seq`.
    pub last_win: u16,
    /// Options of an ignored SYN (`last_wscale`, `last_flags`).
    pub last_wscale: u8,
    /// See `last_wscale`.
    pub last_flags: u8,
}

const TCP_SYN_SET: u8 = 0;
const TCP_SYNACK_SET: u8 = 1;
const TCP_FIN_SET: u8 = 2;
const TCP_ACK_SET: u8 = 3;
const TCP_RST_SET: u8 = 4;
const TCP_NONE_SET: u8 = 5;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;
const URG: u8 = 0x20;
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;

/// A transition target: a state, "ignore" (`sIG`) or "invalid" (`sIV`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum T {
    S(TcpConntrack),
    Ig,
    Iv,
}

use TcpConntrack as S;
const NO: T = T::S(S::None);
const SS: T = T::S(S::SynSent);
const SR: T = T::S(S::SynRecv);
const ES: T = T::S(S::Established);
const FW: T = T::S(S::FinWait);
const CW: T = T::S(S::CloseWait);
const LA: T = T::S(S::LastAck);
const TW: T = T::S(S::TimeWait);
const CL: T = T::S(S::Close);
const S2: T = T::S(S::SynSent2);
const IG: T = T::Ig;
const IV: T = T::Iv;

/// `tcp_conntracks[dir][index][state]`, states in the order
/// NO SS SR ES FW CW LA TW CL S2.
#[rustfmt::skip]
const TCP_CONNTRACKS: [[[T; 10]; 6]; 2] = [
    [
        /* ORIGINAL  sNO sSS sSR sES sFW sCW sLA sTW sCL sS2 */
        /* syn    */ [SS, SS, IG, IG, IG, IG, IG, SS, SS, S2],
        /* synack */ [IV, IV, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [ES, IV, ES, ES, CW, CW, TW, TW, CL, IV],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
    [
        /* REPLY     sNO sSS sSR sES sFW sCW sLA sTW sCL sS2 */
        /* syn    */ [IV, S2, IV, IV, IV, IV, IV, SS, IV, S2],
        /* synack */ [IV, SR, IG, IG, IG, IG, IG, IG, IG, SR],
        /* fin    */ [IV, IV, FW, FW, LA, LA, LA, TW, CL, IV],
        /* ack    */ [IV, IG, SR, ES, CW, CW, TW, TW, CL, IG],
        /* rst    */ [IV, CL, CL, CL, CL, CL, CL, CL, CL, CL],
        /* none   */ [IV, IV, IV, IV, IV, IV, IV, IV, IV, IV],
    ],
];

#[allow(dead_code)]
const _UNUSED: T = NO;

fn get_conntrack_index(flags: u8) -> u8 {
    if flags & RST != 0 {
        TCP_RST_SET
    } else if flags & SYN != 0 {
        if flags & ACK != 0 {
            TCP_SYNACK_SET
        } else {
            TCP_SYN_SET
        }
    } else if flags & FIN != 0 {
        TCP_FIN_SET
    } else if flags & ACK != 0 {
        TCP_ACK_SET
    } else {
        TCP_NONE_SET
    }
}

#[inline]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
#[inline]
fn after(a: u32, b: u32) -> bool {
    before(b, a)
}

struct Seg {
    seq: u32,
    ack: u32,
    win: u16,
    flags: u8,
    /// `seq + data length (+1 for SYN, +1 for FIN)`.
    end: u32,
}

fn seg(l4: &[u8]) -> Seg {
    let be32 = |o: usize| u32::from_be_bytes([l4[o], l4[o + 1], l4[o + 2], l4[o + 3]]);
    let doff = usize::from(l4[12] >> 4) * 4;
    let flags = l4[13];
    let seq = be32(4);
    let datalen = l4.len().saturating_sub(doff) as u32;
    Seg {
        seq,
        ack: be32(8),
        win: u16::from_be_bytes([l4[14], l4[15]]),
        flags,
        end: seq
            .wrapping_add(datalen)
            .wrapping_add(u32::from(flags & SYN != 0))
            .wrapping_add(u32::from(flags & FIN != 0)),
    }
}

/// Whether the segment's header is whole and its flag combination one TCP
/// may send.
///
/// Mirrors `tcp_error()` (without the checksum check, see the crate's
/// deviations) and `tcp_valid_flags[]`: PSH, ECE and CWR go with anything;
/// of FIN, SYN, RST, ACK, URG only SYN, SYN|URG, SYN|ACK, RST, RST|ACK,
/// FIN|ACK, FIN|ACK|URG, ACK and ACK|URG are valid.
pub fn tcp_error(l4: &[u8]) -> bool {
    if l4.len() < 20 {
        return false;
    }
    let doff = usize::from(l4[12] >> 4) * 4;
    if doff < 20 || l4.len() < doff {
        return false;
    }
    let f = l4[13] & !(ECE | CWR | PSH);
    matches!(
        f,
        x if x == SYN
            || x == SYN | URG
            || x == SYN | ACK
            || x == RST
            || x == RST | ACK
            || x == FIN | ACK
            || x == FIN | ACK | URG
            || x == ACK
            || x == ACK | URG
    )
}

/// Reads window scale and SACK-permitted from the options
/// (`tcp_options()`).
fn tcp_options(l4: &[u8], state: &mut IpCtTcpState) {
    let doff = usize::from(l4[12] >> 4) * 4;
    let mut opt = l4.get(20..doff).unwrap_or(&[]);
    state.td_scale = 0;
    state.flags = 0;
    while let Some(&kind) = opt.first() {
        match kind {
            0 => return,
            1 => opt = &opt[1..],
            _ => {
                let Some(&size) = opt.get(1) else { return };
                let size = usize::from(size);
                if size < 2 || size > opt.len() {
                    return;
                }
                if kind == 4 && size == 2 {
                    state.flags |= IP_CT_TCP_FLAG_SACK_PERM;
                } else if kind == 3 && size == 3 {
                    state.td_scale = opt[2].min(14);
                    state.flags |= IP_CT_TCP_FLAG_WINDOW_SCALE;
                }
                opt = &opt[size..];
            }
        }
    }
}

/// The highest right edge of the SACK blocks, or `ack` (`tcp_sack()`).
fn tcp_sack(l4: &[u8], mut sack: u32) -> u32 {
    let doff = usize::from(l4[12] >> 4) * 4;
    let mut opt = l4.get(20..doff).unwrap_or(&[]);
    while let Some(&kind) = opt.first() {
        match kind {
            0 => break,
            1 => opt = &opt[1..],
            _ => {
                let Some(&size) = opt.get(1) else { break };
                let size = usize::from(size);
                if size < 2 || size > opt.len() {
                    break;
                }
                if kind == 5 && size >= 10 && (size - 2) % 8 == 0 {
                    for b in opt[2..size].chunks_exact(8) {
                        let right = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                        if after(right, sack) {
                            sack = right;
                        }
                    }
                    break;
                }
                opt = &opt[size..];
            }
        }
    }
    sack
}

/// The TCP state of a connection started by this segment, or `None` when it
/// cannot start one.
///
/// Mirrors `tcp_new()`: a SYN starts `SYN_SENT`; with
/// `nf_conntrack_tcp_loose` any other valid segment is picked up mid-stream
/// (SACK assumed and window checks relaxed, `IP_CT_TCP_FLAG_BE_LIBERAL`).
pub fn tcp_new(l4: &[u8], loose: bool) -> Option<IpCtTcp> {
    let s = seg(l4);
    let idx = get_conntrack_index(s.flags);
    let next = TCP_CONNTRACKS[0][usize::from(idx)][S::None as usize];
    let mut t = IpCtTcp {
        seen: [IpCtTcpState::default(); 2],
        state: S::None,
        last_dir: 0,
        retrans: 0,
        last_index: TCP_NONE_SET,
        last_seq: 0,
        last_ack: 0,
        last_end: 0,
        last_win: 0,
        last_wscale: 0,
        last_flags: 0,
    };
    let maxwin = u32::from(s.win).max(1);
    match next {
        SS => {
            t.seen[0].td_end = s.end;
            t.seen[0].td_maxwin = maxwin;
            t.seen[0].td_maxend = s.end;
            tcp_options(l4, &mut t.seen[0]);
        }
        T::S(_) if loose => {
            t.seen[0].td_end = s.end;
            t.seen[0].td_maxwin = maxwin;
            t.seen[0].td_maxend = s.end.wrapping_add(maxwin);
            t.seen[0].flags = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
            t.seen[1].flags = IP_CT_TCP_FLAG_SACK_PERM | IP_CT_TCP_FLAG_BE_LIBERAL;
        }
        _ => return None,
    }
    Some(t)
}

/// Whether the segment falls within what each side has allowed, updating
/// the window state.
///
/// Mirrors `tcp_in_window()`: I `seq <= sender.td_maxend`, II
/// `seq + len >= sender.td_end - receiver.td_maxwin`, III
/// `sack <= receiver.td_end`, IV `sack >= receiver.td_end - MAXACKWINDOW`.
fn tcp_in_window(t: &mut IpCtTcp, dir: usize, index: u8, l4: &[u8], s: &Seg) -> bool {
    let (mut seq, mut end) = (s.seq, s.end);
    let win_raw = u32::from(s.win);
    let mut ack = s.ack;
    let mut sack = ack;
    if t.seen[1 - dir].flags & IP_CT_TCP_FLAG_SACK_PERM != 0 {
        sack = tcp_sack(l4, sack);
    }
    let state = t.state;
    {
        let (a, b) = t.seen.split_at_mut(1);
        let (sender, receiver) = if dir == 0 {
            (&mut a[0], &mut b[0])
        } else {
            (&mut b[0], &mut a[0])
        };
        if sender.td_maxwin == 0 {
            if s.flags & SYN != 0 {
                sender.td_end = end;
                sender.td_maxend = end;
                sender.td_maxwin = win_raw.max(1);
                tcp_options(l4, sender);
                if !(sender.flags & IP_CT_TCP_FLAG_WINDOW_SCALE != 0
                    && receiver.flags & IP_CT_TCP_FLAG_WINDOW_SCALE != 0)
                {
                    sender.td_scale = 0;
                    receiver.td_scale = 0;
                }
                if s.flags & ACK == 0 {
                    return true;
                }
            } else {
                sender.td_end = end;
                let swin = win_raw << sender.td_scale;
                sender.td_maxwin = swin.max(1);
                sender.td_maxend = end.wrapping_add(sender.td_maxwin);
                if receiver.td_maxwin == 0 {
                    receiver.td_end = sack;
                    receiver.td_maxend = sack;
                }
            }
        } else if ((state == S::SynSent && dir == 0) || (state == S::SynRecv && dir == 1))
            && after(end, sender.td_end)
        {
            sender.td_end = end;
            sender.td_maxend = end;
            sender.td_maxwin = win_raw.max(1);
            tcp_options(l4, sender);
        }
        if s.flags & ACK == 0 || (s.flags & (ACK | RST) == ACK | RST && ack == 0) {
            ack = receiver.td_end;
            sack = ack;
        }
        if seq == end && (s.flags & RST == 0 || (seq == 0 && state == S::SynSent)) {
            seq = sender.td_end;
            end = seq;
        }
        let maxackwindow = sender.td_maxwin.max(66000);
        let ok = before(seq, sender.td_maxend.wrapping_add(1))
            && after(
                end,
                sender
                    .td_end
                    .wrapping_sub(receiver.td_maxwin)
                    .wrapping_sub(1),
            )
            && before(sack, receiver.td_end.wrapping_add(1))
            && after(
                sack,
                receiver.td_end.wrapping_sub(maxackwindow).wrapping_sub(1),
            );
        if !ok {
            let liberal = sender.flags & IP_CT_TCP_FLAG_BE_LIBERAL != 0;
            if !liberal {
                tracing::trace!(target: "netfilter", seq, end, sack, "nf_ct_tcp: segment out of window");
            }
            return liberal;
        }
        let win = if s.flags & SYN == 0 {
            win_raw << sender.td_scale
        } else {
            win_raw
        };
        let swin = win.wrapping_add(sack.wrapping_sub(ack));
        if sender.td_maxwin < swin {
            sender.td_maxwin = swin;
        }
        if after(end, sender.td_end) {
            sender.td_end = end;
            sender.flags |= IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
        }
        if s.flags & ACK != 0 {
            if sender.flags & IP_CT_TCP_FLAG_MAXACK_SET == 0 {
                sender.td_maxack = ack;
                sender.flags |= IP_CT_TCP_FLAG_MAXACK_SET;
            } else if after(ack, sender.td_maxack) {
                sender.td_maxack = ack;
            }
        }
        if receiver.td_maxwin != 0 && after(end, sender.td_maxend) {
            receiver.td_maxwin = receiver
                .td_maxwin
                .wrapping_add(end.wrapping_sub(sender.td_maxend));
        }
        if after(sack.wrapping_add(win), receiver.td_maxend.wrapping_sub(1)) {
            receiver.td_maxend = sack.wrapping_add(win);
            if win == 0 {
                receiver.td_maxend = receiver.td_maxend.wrapping_add(1);
            }
        }
        if ack == receiver.td_end {
            receiver.flags &= !IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED;
        }
    }
    if index == TCP_ACK_SET {
        if usize::from(t.last_dir) == dir
            && t.last_seq == seq
            && t.last_ack == ack
            && t.last_end == end
            && t.last_win == s.win
        {
            t.retrans = t.retrans.saturating_add(1);
        } else {
            t.last_dir = dir as u8;
            t.last_seq = seq;
            t.last_ack = ack;
            t.last_end = end;
            t.last_win = s.win;
            t.retrans = 0;
        }
    }
    true
}

/// Moves the connection's TCP state for one segment and refreshes its
/// timeout.
///
/// Mirrors `tcp_packet()`: looks up `tcp_conntracks`, handles ignored
/// segments (resync on a SYN/ACK answering an ignored SYN), reopening from
/// TIME_WAIT/CLOSE (kill and look up again), RST validity, window
/// tracking; sets ASSURED on the ACK that completes the handshake (or on
/// a picked-up connection's first reply); a RST as the only reply kills
/// the connection.
pub(crate) fn tcp_packet(
    conn: &mut NfConn,
    dir: IpConntrackDir,
    l4: &[u8],
    now: Instant,
    to: &CtTimeouts<'_>,
) -> L4Verdict {
    let seen_reply = conn.test(ips::SEEN_REPLY);
    let assured = conn.test(ips::ASSURED);
    let NfConnProto::Tcp(t) = &mut conn.proto else {
        return L4Verdict::Invalid;
    };
    let s = seg(l4);
    let d = dir as usize;
    let index = get_conntrack_index(s.flags);
    let mut old_state = t.state;
    let mut new_state = TCP_CONNTRACKS[d][usize::from(index)][old_state as usize];
    let mut skip_window = false;

    if new_state == SS && old_state >= S::TimeWait {
        // Reopening a closed connection, or one the client aborted.
        let closing = (t.seen[d].flags | t.seen[1 - d].flags) & IP_CT_TCP_FLAG_CLOSE_INIT != 0;
        if closing || (usize::from(t.last_dir) == d && t.last_index == TCP_RST_SET) {
            return L4Verdict::Repeat;
        }
    }
    match new_state {
        T::Ig => {
            if index == TCP_SYNACK_SET
                && t.last_index == TCP_SYN_SET
                && usize::from(t.last_dir) != d
                && s.ack == t.last_end
            {
                // The SYN/ACK answers a SYN we ignored: resync from it.
                old_state = S::SynSent;
                new_state = SR;
                let ld = usize::from(t.last_dir);
                t.seen[ld] = IpCtTcpState {
                    td_end: t.last_end,
                    td_maxend: t.last_end,
                    td_maxwin: u32::from(t.last_win).max(1),
                    td_maxack: 0,
                    td_scale: t.last_wscale,
                    flags: t.last_flags,
                };
                t.seen[d] = IpCtTcpState::default();
            } else {
                t.last_index = index;
                t.last_dir = d as u8;
                t.last_seq = s.seq;
                t.last_end = s.end;
                t.last_win = s.win;
                if index == TCP_SYN_SET && d == 0 {
                    let mut opts = IpCtTcpState::default();
                    tcp_options(l4, &mut opts);
                    t.last_flags =
                        opts.flags & (IP_CT_TCP_FLAG_WINDOW_SCALE | IP_CT_TCP_FLAG_SACK_PERM);
                    t.last_wscale = if opts.flags & IP_CT_TCP_FLAG_WINDOW_SCALE != 0 {
                        opts.td_scale
                    } else {
                        0
                    };
                }
                // Ignored: let it through with its connection, state unchanged.
                return L4Verdict::Accept;
            }
        }
        T::Iv => return L4Verdict::Invalid,
        CL if index == TCP_RST_SET => {
            let peer = &t.seen[1 - d];
            if peer.flags & IP_CT_TCP_FLAG_MAXACK_SET != 0 && before(s.seq, peer.td_maxack) {
                return L4Verdict::Invalid;
            }
            if ((seen_reply && t.last_index == TCP_SYN_SET)
                || (!assured && t.last_index == TCP_ACK_SET))
                && s.ack == t.last_end
            {
                skip_window = true;
            }
        }
        T::S(_) => {}
    }
    let T::S(new_state) = new_state else {
        return L4Verdict::Invalid;
    };
    if !skip_window && !tcp_in_window(t, d, index, l4, &s) {
        return L4Verdict::Invalid;
    }
    t.last_index = index;
    t.last_dir = d as u8;
    t.state = new_state;
    if old_state != new_state && new_state == S::FinWait {
        t.seen[d].flags |= IP_CT_TCP_FLAG_CLOSE_INIT;
    }
    let sys = to.0;
    let state_to = new_state.timeout(sys);
    let timeout = if t.retrans >= NF_CT_TCP_MAX_RETRANS && state_to > NF_CT_TCP_TIMEOUT_RETRANS {
        NF_CT_TCP_TIMEOUT_RETRANS
    } else if (t.seen[0].flags | t.seen[1].flags) & IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED != 0
        && state_to > NF_CT_TCP_TIMEOUT_UNACK
    {
        NF_CT_TCP_TIMEOUT_UNACK
    } else {
        state_to
    };
    // SEEN_REPLY is set after this runs, so the first reply still counts
    // as unreplied here, as in Linux.
    if !seen_reply {
        if s.flags & RST != 0 {
            // Only a RST so far: not a connection worth keeping.
            conn.timeout = now;
            return L4Verdict::Accept;
        }
    } else if !assured
        && (old_state == S::SynRecv || old_state == S::Established)
        && new_state == S::Established
    {
        conn.status |= ips::ASSURED;
    }
    conn.refresh(now, timeout);
    L4Verdict::Accept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg_bytes(seq: u32, ack: u32, flags: u8, win: u16, data: usize) -> Vec<u8> {
        let mut v = vec![0u8; 20 + data];
        v[4..8].copy_from_slice(&seq.to_be_bytes());
        v[8..12].copy_from_slice(&ack.to_be_bytes());
        v[12] = 5 << 4;
        v[13] = flags;
        v[14..16].copy_from_slice(&win.to_be_bytes());
        v
    }

    #[test]
    fn valid_flag_combinations_are_linuxs() {
        assert!(tcp_error(&seg_bytes(1, 0, SYN, 100, 0)));
        assert!(tcp_error(&seg_bytes(1, 0, SYN | ACK | ECE | CWR, 100, 0)));
        assert!(tcp_error(&seg_bytes(1, 0, FIN | ACK | PSH, 100, 0)));
        assert!(!tcp_error(&seg_bytes(1, 0, SYN | FIN, 100, 0)));
        assert!(!tcp_error(&seg_bytes(1, 0, 0, 100, 0)));
        assert!(!tcp_error(&seg_bytes(1, 0, FIN, 100, 0)));
        assert!(!tcp_error(&[0u8; 19]));
    }

    #[test]
    fn new_connections_start_on_syn_or_loose_pickup() {
        let t = tcp_new(&seg_bytes(1000, 0, SYN, 200, 0), false).unwrap();
        assert_eq!((t.seen[0].td_end, t.seen[0].td_maxwin), (1001, 200));
        assert!(tcp_new(&seg_bytes(1000, 5, ACK, 200, 10), false).is_none());
        let t = tcp_new(&seg_bytes(1000, 5, ACK, 200, 10), true).unwrap();
        assert_eq!(t.seen[0].td_maxend, 1010 + 200);
        assert_ne!(t.seen[0].flags & IP_CT_TCP_FLAG_BE_LIBERAL, 0);
        assert!(tcp_new(&seg_bytes(1000, 5, RST, 200, 0), true).is_none());
    }
}
