//! Expected and actual outbound packets, and the field-by-field comparison.
//!
//! Mirrors `verify_outbound_live_packet()` and its helpers
//! (`verify_outbound_tcp_options()`, `verify_time()`) in packetdrill's
//! `run_packet.c`, as GRAMMAR.md §4 "Matching outbound packets" lists the
//! fields. The actual packet is read from captured IPv4 bytes with `wire`,
//! put into script space with [`SeqMap`]/[`TsMap`], compared, and a mismatch
//! is reported as
//! `line 23: expected > . 1:1(0) ack 1001 at 0.200±0.025, got > P. 1:101(100) ack 1001 at 0.204 (flags, len)`.
//!
//! # Deviations from packetdrill
//!
//! `ack` is compared only when the script writes `ack N` (packetdrill also
//! requires a zero ack field when the script has no ACK flag), and `urg` only
//! when written. The IPv4 header checksum and header length are checked as
//! "the frame parsed and its checksum is valid" rather than against a packet
//! the harness builds.

use std::fmt::{self, Write as _};

use wire::{IpProtocol, Ipv4Packet, TcpFlags, TcpOption, TcpPacket, WireError};

use super::ast::{
    IpSpec, TcpOptionSpec, TcpOptionsSpec, TcpSpec, Usecs, format_secs, format_tcp_flags,
};
use super::seq_map::{SeqMap, TsMap, ts_val_ok};
use super::timing::{Schedule, check_time};

/// One option of a captured segment, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActualTcpOption {
    /// `TCPOPT_EOL`.
    Eol,
    /// `TCPOPT_NOP`.
    Nop,
    /// `TCPOPT_MSS`.
    Mss(u16),
    /// `TCPOPT_WINDOW`.
    Wscale(u8),
    /// `TCPOPT_SACK_PERM`.
    SackPermitted,
    /// `TCPOPT_SACK` blocks.
    Sack(Vec<(u32, u32)>),
    /// `TCPOPT_TIMESTAMP`.
    Timestamp {
        /// TSval.
        val: u32,
        /// TSecr.
        ecr: u32,
    },
    /// Anything else, by kind and data.
    Other {
        /// Option kind.
        kind: u8,
        /// Bytes after kind and length.
        data: Vec<u8>,
    },
}

impl fmt::Display for ActualTcpOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ActualTcpOption::Eol => f.write_str("eol"),
            ActualTcpOption::Nop => f.write_str("nop"),
            ActualTcpOption::Mss(v) => write!(f, "mss {v}"),
            ActualTcpOption::Wscale(v) => write!(f, "wscale {v}"),
            ActualTcpOption::SackPermitted => f.write_str("sackOK"),
            ActualTcpOption::Sack(b) => {
                f.write_str("sack")?;
                for (l, r) in b {
                    write!(f, " {l}:{r}")?;
                }
                Ok(())
            }
            ActualTcpOption::Timestamp { val, ecr } => write!(f, "TS val {val} ecr {ecr}"),
            ActualTcpOption::Other { kind, data } => {
                write!(f, "opt{kind}")?;
                for b in data {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why captured bytes are not a TCP/IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureError {
    /// The IPv4 or TCP header is malformed.
    Wire(WireError),
    /// The datagram carries another protocol (the number).
    NotTcp(u8),
}

impl From<WireError> for CaptureError {
    fn from(e: WireError) -> Self {
        CaptureError::Wire(e)
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::Wire(e) => write!(f, "malformed captured packet: {e}"),
            CaptureError::NotTcp(p) => write!(f, "captured packet is IP protocol {p}, not TCP"),
        }
    }
}

impl std::error::Error for CaptureError {}

/// A captured outbound TCP/IPv4 packet, as the matcher needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActualPacket {
    /// Virtual time it was sniffed.
    pub time: Usecs,
    /// The IPv4 TOS byte (ECN in the low two bits).
    pub tos: u8,
    /// The IPv4 TTL.
    pub ttl: u8,
    /// Whether the IPv4 header checksum is valid.
    pub ip_csum_ok: bool,
    /// All TCP flags including AE.
    pub flags: TcpFlags,
    /// The three reserved bits of the TCP header.
    pub reserved: u8,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Raw window field.
    pub win: u16,
    /// Urgent pointer.
    pub urg: u16,
    /// Length of the options area in bytes (data offset × 4 − 20).
    pub options_len: usize,
    /// The options in wire order.
    pub options: Vec<ActualTcpOption>,
    /// Payload length.
    pub payload_len: u32,
    /// Whether every payload byte is zero (scripts send only zeros).
    pub payload_zero: bool,
}

impl ActualPacket {
    /// Reads an IPv4 datagram carrying TCP (no link header).
    pub fn from_ipv4(bytes: &[u8], time: Usecs) -> Result<Self, CaptureError> {
        let ip = Ipv4Packet::new_checked(bytes)?;
        if ip.protocol() != IpProtocol::Tcp {
            return Err(CaptureError::NotTcp(u8::from(ip.protocol())));
        }
        let ip_csum_ok = ip.verify_checksum();
        let (tos, ttl) = (ip.tos(), ip.ttl());
        let tcp = TcpPacket::new_checked(ip.payload())?;
        let mut options = Vec::new();
        for o in tcp.options_iter() {
            options.push(match o? {
                TcpOption::EndOfList => ActualTcpOption::Eol,
                TcpOption::NoOperation => ActualTcpOption::Nop,
                TcpOption::MaxSegmentSize(v) => ActualTcpOption::Mss(v),
                TcpOption::WindowScale(v) => ActualTcpOption::Wscale(v),
                TcpOption::SackPermitted => ActualTcpOption::SackPermitted,
                TcpOption::SackRange(b) => {
                    ActualTcpOption::Sack(b.iter().map(|b| (b.start_seq, b.end_seq)).collect())
                }
                TcpOption::Timestamp { tsval, tsecr } => ActualTcpOption::Timestamp {
                    val: tsval,
                    ecr: tsecr,
                },
                TcpOption::Unknown { kind, data } => ActualTcpOption::Other {
                    kind,
                    data: data.to_vec(),
                },
            });
        }
        let payload = tcp.payload();
        Ok(ActualPacket {
            time,
            tos,
            ttl,
            ip_csum_ok,
            flags: tcp.flags(),
            reserved: (tcp.header().doff_res >> 1) & 0x7,
            seq: tcp.seq_number(),
            ack: tcp.ack_number(),
            win: tcp.window(),
            urg: tcp.urgent(),
            options_len: tcp.header_len() - wire::TCP_MIN_HLEN,
            options,
            payload_len: payload.len() as u32,
            payload_zero: payload.iter().all(|&b| b == 0),
        })
    }

    /// This packet with seq and TS val put into script space (ack and SACK
    /// blocks are the remote's numbers and stay as they are).
    pub fn to_script_space(&self, seq: &SeqMap, ts: &TsMap) -> ActualPacket {
        let mut p = self.clone();
        p.seq = seq.outbound_seq(self.seq);
        p.ack = seq.outbound_ack(self.ack);
        for o in &mut p.options {
            if let ActualTcpOption::Timestamp { val, .. } = o {
                *val = ts.outbound_val(*val);
            }
        }
        p
    }

    /// The live TS val, if the packet carries a timestamp.
    pub fn ts_val(&self) -> Option<u32> {
        self.options.iter().find_map(|o| match o {
            ActualTcpOption::Timestamp { val, .. } => Some(*val),
            _ => None,
        })
    }

    /// Formats in script syntax; `win` and options are shown only as far as
    /// `like` (the expected line) would show them.
    pub fn describe(&self, like: &TcpSpec) -> String {
        let mut s = format!(
            "> {} {}:{}({})",
            format_tcp_flags(self.flags, None),
            self.seq,
            self.seq.wrapping_add(self.payload_len),
            self.payload_len
        );
        if self.flags.contains(TcpFlags::ACK) || like.ack.is_some() {
            let _ = write!(s, " ack {}", self.ack);
        }
        if like.win.is_some() {
            let _ = write!(s, " win {}", self.win);
        }
        if like.urg.is_some() || self.urg != 0 {
            let _ = write!(s, " urg {}", self.urg);
        }
        if like.options != TcpOptionsSpec::Any && !self.options.is_empty() {
            let opts: Vec<String> = self.options.iter().map(ToString::to_string).collect();
            let _ = write!(s, " <{}>", opts.join(","));
        }
        s
    }
}

/// One `>` line ready to be matched.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedPacket {
    /// Script line.
    pub line: u32,
    /// The TCP fields as written (script space).
    pub tcp: TcpSpec,
    /// The IP fields as written.
    pub ip: IpSpec,
    /// When it is due.
    pub when: Schedule,
    /// The time tolerance for this line.
    pub tolerance: Usecs,
    /// `--tcp_ts_tick_usecs`: check TS val when set.
    pub ts_tick_usecs: Option<u32>,
    /// Tolerance for the TS val check (from the time since script start).
    pub ts_tolerance: Usecs,
}

/// A field that differed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// IPv4 header checksum.
    IpChecksum,
    /// ECN bits.
    Ecn,
    /// TOS byte.
    Tos,
    /// TTL.
    Ttl,
    /// TCP flags.
    Flags,
    /// Reserved TCP header bits.
    Reserved,
    /// Sequence number.
    Seq,
    /// Payload length.
    Len,
    /// Acknowledgment number.
    Ack,
    /// Window.
    Win,
    /// Urgent pointer.
    Urg,
    /// Options (kinds, order, lengths or values).
    Options,
    /// TS val outside tolerance.
    TsVal,
    /// Payload bytes not zero.
    Payload,
    /// Time.
    Time,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::IpChecksum => "ip checksum",
            Field::Ecn => "ecn",
            Field::Tos => "tos",
            Field::Ttl => "ttl",
            Field::Flags => "flags",
            Field::Reserved => "reserved bits",
            Field::Seq => "seq",
            Field::Len => "len",
            Field::Ack => "ack",
            Field::Win => "win",
            Field::Urg => "urg",
            Field::Options => "options",
            Field::TsVal => "TS val",
            Field::Payload => "payload",
            Field::Time => "time",
        }
    }
}

/// The result of a failed match.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Script line of the expected packet.
    pub line: u32,
    /// `> . 1:1(0) ack 1001 at 0.200±0.025`.
    pub expected: String,
    /// `> P. 1:101(100) ack 1001 at 0.204`.
    pub actual: String,
    /// The fields that differ, in header order.
    pub fields: Vec<Field>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|f| f.name()).collect();
        write!(
            f,
            "line {}: expected {}, got {} ({})",
            self.line,
            self.expected,
            self.actual,
            names.join(", ")
        )
    }
}

impl std::error::Error for Mismatch {}

/// The message when no packet came before the deadline.
pub fn timeout_message(e: &ExpectedPacket) -> String {
    format!(
        "line {}: expected > {} at {}: Timed out waiting for packet",
        e.line,
        e.tcp,
        e.when.describe(e.tolerance)
    )
}

fn options_match(
    want: &[TcpOptionSpec],
    got: &ActualPacket,
    e: &ExpectedPacket,
    fields: &mut Vec<Field>,
) {
    let want_len: usize = want.iter().map(TcpOptionSpec::wire_len).sum();
    let mut ok = want_len == got.options_len && want.len() == got.options.len();
    let mut ts_bad = false;
    if ok {
        for (w, g) in want.iter().zip(&got.options) {
            let same = match (w, g) {
                (TcpOptionSpec::Eol, ActualTcpOption::Eol)
                | (TcpOptionSpec::Nop, ActualTcpOption::Nop)
                | (TcpOptionSpec::SackPermitted, ActualTcpOption::SackPermitted)
                | (TcpOptionSpec::FastOpen(_), ActualTcpOption::Other { kind: 34, .. })
                | (TcpOptionSpec::FastOpenExp(_), ActualTcpOption::Other { kind: 254, .. })
                | (TcpOptionSpec::Md5(_), ActualTcpOption::Other { kind: 19, .. }) => true,
                (TcpOptionSpec::Mss(a), ActualTcpOption::Mss(b)) => a == b,
                (TcpOptionSpec::Wscale(a), ActualTcpOption::Wscale(b)) => a == b,
                (TcpOptionSpec::Sack(a), ActualTcpOption::Sack(b)) => a == b,
                (
                    TcpOptionSpec::Timestamp { val, .. },
                    ActualTcpOption::Timestamp { val: g, .. },
                ) => {
                    if let Some(tick) = e.ts_tick_usecs {
                        ts_bad |= !ts_val_ok(*val, *g, tick, e.ts_tolerance);
                    }
                    true // ecr is never checked
                }
                _ => false,
            };
            ok &= same;
        }
    }
    if !ok {
        fields.push(Field::Options);
    } else if ts_bad {
        fields.push(Field::TsVal);
    }
}

/// Compares `got` (already in script space, see
/// [`ActualPacket::to_script_space`]) with `e`, field by field.
pub fn match_outbound(e: &ExpectedPacket, got: &ActualPacket) -> Result<(), Mismatch> {
    let mut fields = Vec::new();
    if !got.ip_csum_ok {
        fields.push(Field::IpChecksum);
    }
    if e.ip.ecn.is_some_and(|ecn| !ecn.matches(got.tos & 3)) {
        fields.push(Field::Ecn);
    }
    if e.ip.tos.is_some_and(|t| t != got.tos) {
        fields.push(Field::Tos);
    }
    if e.ip.ttl.is_some_and(|t| t != got.ttl) {
        fields.push(Field::Ttl);
    }
    let mut want_flags = e.tcp.flags;
    if let Some(ace) = e.tcp.ace {
        for (bit, f) in [(4, TcpFlags::AE), (2, TcpFlags::CWR), (1, TcpFlags::ECE)] {
            if ace & bit != 0 {
                want_flags |= f;
            }
        }
    }
    if want_flags != got.flags {
        fields.push(Field::Flags);
    }
    if got.reserved != 0 {
        fields.push(Field::Reserved);
    }
    if e.tcp.start_seq != got.seq {
        fields.push(Field::Seq);
    }
    if e.tcp.len != got.payload_len {
        fields.push(Field::Len);
    }
    if e.tcp.ack.is_some_and(|a| a != got.ack) {
        fields.push(Field::Ack);
    }
    if e.tcp.win.is_some_and(|w| w != got.win) {
        fields.push(Field::Win);
    }
    if e.tcp.urg.is_some_and(|u| u != got.urg) {
        fields.push(Field::Urg);
    }
    match &e.tcp.options {
        TcpOptionsSpec::Any => {}
        TcpOptionsSpec::Absent => {
            if got.options_len != 0 {
                fields.push(Field::Options);
            }
        }
        TcpOptionsSpec::List(want) => options_match(want, got, e, &mut fields),
    }
    if !got.payload_zero {
        fields.push(Field::Payload);
    }
    if check_time(e.when, got.time, e.tolerance).is_err() {
        fields.push(Field::Time);
    }
    if fields.is_empty() {
        return Ok(());
    }
    Err(Mismatch {
        line: e.line,
        expected: format!("> {} at {}", e.tcp, e.when.describe(e.tolerance)),
        actual: format!("{} at {}", got.describe(&e.tcp), format_secs(got.time)),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use wire::{Ipv4Repr, TcpRepr};

    fn spec(flags: TcpFlags, start: u32, len: u32, ack: Option<u32>) -> TcpSpec {
        TcpSpec {
            flags,
            ace: None,
            start_seq: start,
            end_seq: start + len,
            len,
            ack,
            win: None,
            urg: None,
            options: TcpOptionsSpec::Absent,
        }
    }

    fn actual(flags: TcpFlags, seq: u32, len: u32, ack: u32, time: Usecs) -> ActualPacket {
        ActualPacket {
            time,
            tos: 0,
            ttl: 64,
            ip_csum_ok: true,
            flags,
            reserved: 0,
            seq,
            ack,
            win: 502,
            urg: 0,
            options_len: 0,
            options: vec![],
            payload_len: len,
            payload_zero: true,
        }
    }

    fn expected(tcp: TcpSpec, at: Usecs, tol: Usecs) -> ExpectedPacket {
        ExpectedPacket {
            line: 23,
            tcp,
            ip: IpSpec::default(),
            when: Schedule::At(at),
            tolerance: tol,
            ts_tick_usecs: None,
            ts_tolerance: 4000,
        }
    }

    #[test]
    fn mismatch_message_names_line_both_packets_and_fields() {
        let e = expected(spec(TcpFlags::ACK, 1, 0, Some(1001)), 200_000, 25_000);
        let got = actual(TcpFlags::ACK | TcpFlags::PSH, 1, 100, 1001, 204_000);
        let m = match_outbound(&e, &got).unwrap_err();
        assert_eq!(
            m.to_string(),
            "line 23: expected > . 1:1(0) ack 1001 at 0.200±0.025, \
             got > P. 1:101(100) ack 1001 at 0.204 (flags, len)"
        );
    }

    #[test]
    fn exact_packet_matches_and_time_is_checked() {
        let e = expected(
            spec(TcpFlags::ACK | TcpFlags::PSH, 1, 100, Some(1)),
            1_000_000,
            4000,
        );
        assert!(
            match_outbound(
                &e,
                &actual(TcpFlags::ACK | TcpFlags::PSH, 1, 100, 1, 1_003_000)
            )
            .is_ok()
        );
        let m = match_outbound(
            &e,
            &actual(TcpFlags::ACK | TcpFlags::PSH, 1, 100, 1, 1_005_000),
        )
        .unwrap_err();
        assert_eq!(m.fields, vec![Field::Time]);
    }

    #[test]
    fn window_ack_and_options() {
        let mut t = spec(TcpFlags::ACK, 1, 0, Some(4001));
        t.win = Some(5000);
        let e = expected(t.clone(), 0, 4000);
        let m = match_outbound(&e, &actual(TcpFlags::ACK, 1, 0, 4002, 0)).unwrap_err();
        assert_eq!(m.fields, vec![Field::Ack, Field::Win]);
        assert!(m.actual.contains("win 502"), "{}", m.actual);

        t.win = None;
        t.options = TcpOptionsSpec::List(vec![
            TcpOptionSpec::Nop,
            TcpOptionSpec::Nop,
            TcpOptionSpec::Timestamp { val: 1100, ecr: 5 },
        ]);
        let mut e = expected(t, 0, 4000);
        let mut got = actual(TcpFlags::ACK, 1, 0, 4001, 0);
        got.options_len = 12;
        got.options = vec![
            ActualTcpOption::Nop,
            ActualTcpOption::Nop,
            ActualTcpOption::Timestamp { val: 1108, ecr: 77 },
        ];
        // TS val not checked without --tcp_ts_tick_usecs; ecr never.
        assert!(match_outbound(&e, &got).is_ok());
        e.ts_tick_usecs = Some(1000);
        e.ts_tolerance = 7000;
        assert_eq!(
            match_outbound(&e, &got).unwrap_err().fields,
            vec![Field::TsVal]
        );
        got.options[2] = ActualTcpOption::Timestamp { val: 1107, ecr: 0 };
        assert!(match_outbound(&e, &got).is_ok());
        // A different option list.
        got.options = vec![
            ActualTcpOption::Nop,
            ActualTcpOption::Nop,
            ActualTcpOption::Sack(vec![(1, 2)]),
        ];
        assert_eq!(
            match_outbound(&e, &got).unwrap_err().fields,
            vec![Field::Options]
        );
    }

    #[test]
    fn from_ipv4_bytes_and_script_space() {
        let saddr = Ipv4Addr::new(192, 168, 0, 1);
        let daddr = Ipv4Addr::new(192, 0, 2, 1);
        let tcp = TcpRepr {
            src_port: 8080,
            dst_port: 40000,
            seq: 0x1000_0001,
            ack: 1001,
            flags: TcpFlags::ACK | TcpFlags::PSH,
            window: 257,
            urgent: 0,
            options: wire::TcpOptions {
                timestamp: Some((5_001_000, 77)),
                ..Default::default()
            },
            payload_len: 100,
        };
        let tlen = tcp.buffer_len();
        let ip = Ipv4Repr {
            src_addr: saddr,
            dst_addr: daddr,
            protocol: IpProtocol::Tcp,
            ttl: 64,
            tos: 0,
            ident: 1,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: <_>::default(),
            payload_len: tlen,
        };
        let mut buf = vec![0u8; ip.buffer_len()];
        ip.emit(&mut buf).unwrap();
        tcp.emit(&mut buf[20..], saddr, daddr).unwrap();
        let live = ActualPacket::from_ipv4(&buf, 204_000).unwrap();
        assert_eq!(live.payload_len, 100);
        assert!(live.payload_zero && live.ip_csum_ok);
        let mut seq = SeqMap::new();
        seq.learn_local_isn(0, 0x1000_0000);
        let mut ts = TsMap::new();
        ts.record_outbound(100, 5_000_000);
        let p = live.to_script_space(&seq, &ts);
        assert_eq!((p.seq, p.ack, p.ts_val()), (1, 1001, Some(1100)));
        assert!(
            p.describe(&spec(TcpFlags::ACK, 1, 0, Some(1)))
                .contains("TS val 1100 ecr 77")
        );
        assert!(ActualPacket::from_ipv4(&buf[..30], 0).is_err());
    }

    #[test]
    fn timeout_text() {
        let e = expected(spec(TcpFlags::SYN, 0, 0, None), 3_000_000, 4000);
        assert_eq!(
            timeout_message(&e),
            "line 23: expected > S 0:0(0) at 3.000±0.004: Timed out waiting for packet"
        );
    }
}
