//! The socket listing of `ss`, laid out exactly as iproute2 prints it to a
//! pipe or file.
//!
//! Mirrors iproute2's `misc/ss.c` (the user-space side of `sock_diag`):
//! its column table (`Netid`, `State`, `Recv-Q`, `Send-Q`,
//! `Local Address:`, `Port`, `Peer Address:`, `Port`, `Process`), the
//! buffered fields and `render()`. With output not on a terminal,
//! `render_calc_width()` makes each column as wide as its longest field
//! (header included) plus its left delimiter, with no spreading of spare
//! width; `Local Address:` and `Peer Address:` are right-aligned, the rest
//! left-aligned; `Recv-Q` and `Send-Q` are printed `%-6d`. The `-i`
//! details follow the process in the same field, after `"\n\t"`, so they
//! widen the `Process` column (which is why `ss -tanpi` pads its header
//! and detail lines with spaces). `Netid` is hidden, as `ss` hides it
//! when one protocol is listed.
//!
//! ```
//! use std::net::SocketAddrV4;
//! use socket::{SsOptions, SsRow, ss_render};
//!
//! let row = SsRow {
//!     state: "UNCONN",
//!     recv_q: 0,
//!     send_q: 0,
//!     local: "0.0.0.0:53".parse::<SocketAddrV4>().unwrap(),
//!     peer: "0.0.0.0:0".parse::<SocketAddrV4>().unwrap(),
//!     process: None,
//!     info: None,
//! };
//! let text = ss_render(&[row], SsOptions::default());
//! assert_eq!(
//!     text,
//!     "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n\
//!      UNCONN 0      0            0.0.0.0:53        0.0.0.0:*          \n"
//! );
//! ```

use core::fmt::Write as _;
use std::net::SocketAddrV4;

/// One socket as `ss` shows it.
///
/// Mirrors the fields of iproute2's `struct sockstat` that the listing
/// prints (from an `inet_diag_msg`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsRow {
    /// The state as `ss` names it (`UNCONN`, `ESTAB`, `LISTEN`,
    /// `TIME-WAIT`, ...).
    pub state: &'static str,
    /// `Recv-Q` (`idiag_rqueue`).
    pub recv_q: u64,
    /// `Send-Q` (`idiag_wqueue`).
    pub send_q: u64,
    /// The local address and port (port 0 prints as `*`).
    pub local: SocketAddrV4,
    /// The peer address and port (port 0 prints as `*`).
    pub peer: SocketAddrV4,
    /// The `-p` column, e.g. `users:(("app",pid=1,fd=3))`; `None` when no
    /// open file holds the socket.
    pub process: Option<String>,
    /// The `-i` details without their leading space (`cubic wscale:7,7
    /// rto:204 ...`), for TCP sockets when `-i` is given.
    pub info: Option<String>,
}

/// Which of `ss`'s options shape the listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SsOptions {
    /// `-p`: the `Process` column's contents.
    pub processes: bool,
    /// `-i`: the TCP details on a second line.
    pub info: bool,
}

/// The `users:(("comm",pid=P,fd=F))` text of `ss -p` for one file.
///
/// Mirrors `user_ent_hash_build()` + `find_entry()` in `misc/ss.c`.
pub fn ss_process(comm: &str, pid: u32, fd: i32) -> String {
    format!("users:((\"{comm}\",pid={pid},fd={fd}))")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// The columns `ss -t`/`ss -u` print (`Netid` hidden): alignment, header,
/// left delimiter. The last one is iproute2's unnamed trailing column,
/// always empty here.
const COLUMNS: [(Align, &str, &str); 9] = [
    (Align::Left, "State", " "),
    (Align::Left, "Recv-Q", " "),
    (Align::Left, "Send-Q", " "),
    (Align::Right, "Local Address:", " "),
    (Align::Left, "Port", ""),
    (Align::Right, "Peer Address:", " "),
    (Align::Left, "Port", ""),
    (Align::Left, "Process", ""),
    (Align::Left, "", ""),
];

fn port(p: u16) -> String {
    if p == 0 {
        "*".to_owned()
    } else {
        p.to_string()
    }
}

/// Lays out `rows` as `ss` prints them to a pipe.
///
/// Mirrors `render_calc_width()` (compact output) and `render()` in
/// iproute2's `misc/ss.c`, fed by `sock_state_print()`,
/// `sock_addr_print()`, `proc_ctx_print()` and, with `-i`,
/// `out("\n\t")` + `tcp_show_info()`.
pub fn ss_render(rows: &[SsRow], opts: SsOptions) -> String {
    let mut lines: Vec<[String; 9]> = Vec::with_capacity(rows.len() + 1);
    lines.push(COLUMNS.map(|(_, h, _)| h.to_owned()));
    for r in rows {
        // proc_ctx_print(): out(" users:(%s)", ...).
        let mut proc_col = match (&r.process, opts.processes) {
            (Some(p), true) => format!(" {p}"),
            _ => String::new(),
        };
        if opts.info
            && let Some(info) = &r.info
        {
            proc_col.push_str("\n\t");
            if !info.is_empty() {
                proc_col.push(' ');
                proc_col.push_str(info);
            }
        }
        lines.push([
            r.state.to_owned(),
            format!("{:<6}", r.recv_q),
            format!("{:<6}", r.send_q),
            format!("{}:", r.local.ip()),
            port(r.local.port()),
            format!("{}:", r.peer.ip()),
            port(r.peer.port()),
            proc_col,
            String::new(),
        ]);
    }
    // First pass of render_calc_width(): the longest field, plus the left
    // delimiter for every column after the first non-empty one. A field's
    // length counts when field_flush() runs, which the last line's
    // Process field never gets (render() runs with it still open), so it
    // does not widen its column.
    let mut widths = [0usize; 9];
    let mut first = true;
    let last = lines.len() - 1;
    for (c, w) in widths.iter_mut().enumerate() {
        let max_len = lines
            .iter()
            .enumerate()
            .filter(|&(i, _)| !(i == last && last > 0 && c >= 7))
            .map(|(_, l)| l[c].len())
            .max()
            .unwrap_or(0);
        *w = if !first && max_len > 0 {
            max_len + COLUMNS[c].2.len()
        } else {
            max_len
        };
        if *w > 0 {
            first = false;
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut started = false;
        for (c, field) in line.iter().enumerate() {
            let (align, _, ldelim) = COLUMNS[c];
            let mut printed = 0;
            if started {
                out.push_str(ldelim);
                printed = ldelim.len();
            }
            started = true;
            let width = widths[c];
            if width > 0 && align == Align::Right {
                let pad = width.saturating_sub(field.len() + printed);
                let _ = write!(out, "{:pad$}", "");
                printed += pad;
            }
            out.push_str(field);
            printed += field.len();
            if width > 0 && align == Align::Left {
                let pad = width.saturating_sub(printed);
                let _ = write!(out, "{:pad$}", "");
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &'static str, rq: u64, wq: u64, local: &str, peer: &str) -> SsRow {
        SsRow {
            state,
            recv_q: rq,
            send_q: wq,
            local: local.parse().unwrap(),
            peer: peer.parse().unwrap(),
            process: None,
            info: None,
        }
    }

    const P: SsOptions = SsOptions {
        processes: true,
        info: false,
    };
    const PI: SsOptions = SsOptions {
        processes: true,
        info: true,
    };

    /// What `ss -uanp` and `ss -uan` (iproute2 6.1, Linux 6.x) printed to
    /// a pipe for: a socket on 127.0.0.1:5000 holding two datagrams (1664
    /// bytes of truesize), one connected from 127.0.0.1:56105, one on
    /// 0.0.0.0:53, all of one python3 process.
    #[test]
    fn udp_listing_matches_iproute2_byte_for_byte() {
        let mut rows = vec![
            row("UNCONN", 1664, 0, "127.0.0.1:5000", "0.0.0.0:0"),
            row("ESTAB", 0, 0, "127.0.0.1:56105", "127.0.0.1:5000"),
            row("UNCONN", 0, 0, "0.0.0.0:53", "0.0.0.0:0"),
        ];
        for (r, fd) in rows.iter_mut().zip(3..) {
            r.process = Some(ss_process("python3", 1805, fd));
        }
        assert_eq!(ss_render(&rows, P), UANP);
        assert_eq!(ss_render(&rows, SsOptions::default()), UAN);
    }

    /// `ss -tan` and `ss -tanpi` for a listener on 127.0.0.1:8080 with one
    /// connection not yet accepted, and the client's socket. The details
    /// go after `"\n\t"` in the Process field, so they set its width
    /// (except on the last line, whose field is never flushed).
    #[test]
    fn tcp_listing_with_details_matches_iproute2_byte_for_byte() {
        let mut rows = vec![
            row("LISTEN", 1, 5, "127.0.0.1:8080", "0.0.0.0:0"),
            row("ESTAB", 5, 0, "127.0.0.1:8080", "127.0.0.1:45282"),
            row("ESTAB", 0, 0, "127.0.0.1:45282", "127.0.0.1:8080"),
        ];
        rows[0].process = Some(ss_process("python3", 1805, 6));
        rows[2].process = Some(ss_process("python3", 1805, 7));
        let lines: Vec<&str> = TANPI.lines().collect();
        for (r, l) in rows.iter_mut().zip([1, 3, 5]) {
            r.info = Some(lines[l + 1].trim_start_matches("\t ").trim_end().to_owned());
        }
        assert_eq!(ss_render(&rows, PI), TANPI);
        assert_eq!(ss_render(&rows, SsOptions::default()), TAN);
    }

    #[test]
    fn an_empty_listing_is_the_header() {
        assert_eq!(
            ss_render(&[], SsOptions::default()),
            "State Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n"
        );
    }

    const UANP: &str = "State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess                           \nUNCONN 1664   0          127.0.0.1:5000       0.0.0.0:*    users:((\"python3\",pid=1805,fd=3))\nESTAB  0      0          127.0.0.1:56105    127.0.0.1:5000 users:((\"python3\",pid=1805,fd=4))\nUNCONN 0      0            0.0.0.0:53         0.0.0.0:*    users:((\"python3\",pid=1805,fd=5))\n";
    const UAN: &str = "State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\nUNCONN 1664   0          127.0.0.1:5000       0.0.0.0:*          \nESTAB  0      0          127.0.0.1:56105    127.0.0.1:5000       \nUNCONN 0      0            0.0.0.0:53         0.0.0.0:*          \n";
    const TANPI: &str = "State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process                                                                                                                                                                                                                                                                                                                             \nLISTEN 1      5          127.0.0.1:8080       0.0.0.0:*     users:((\"python3\",pid=1805,fd=6))\n\t cubic cwnd:10 unacked:1                                                                                                                                                                                                                                                                        \nESTAB  5      0          127.0.0.1:8080     127.0.0.1:45282\n\t cubic wscale:10,10 rto:204 rtt:0.099/0.049 ato:40 mss:32768 pmtu:65535 rcvmss:536 advmss:65483 cwnd:10 bytes_received:5 segs_out:1 segs_in:3 data_segs_in:1 send 26479191919bps lastsnd:36 lastrcv:32 lastack:32 pacing_rate 52958383832bps delivered:1 app_limited rcv_space:65483 rcv_ssthresh:65483 minrtt:0.099 snd_wnd:65536\nESTAB  0      0          127.0.0.1:45282    127.0.0.1:8080  users:((\"python3\",pid=1805,fd=7))\n\t cubic wscale:10,10 rto:204 rtt:0.075/0.041 mss:32768 pmtu:65535 rcvmss:536 advmss:65483 cwnd:10 bytes_sent:5 bytes_acked:6 segs_out:3 segs_in:2 data_segs_out:1 send 34952533333bps lastsnd:32 lastrcv:36 lastack:32 pacing_rate 69788752072bps delivery_rate 9709037032bps delivered:2 app_limited rcv_space:65495 rcv_ssthresh:65495 minrtt:0.027 snd_wnd:65536\n";
    const TAN: &str = "State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process\nLISTEN 1      5          127.0.0.1:8080       0.0.0.0:*           \nESTAB  5      0          127.0.0.1:8080     127.0.0.1:45282       \nESTAB  0      0          127.0.0.1:45282    127.0.0.1:8080        \n";
}
