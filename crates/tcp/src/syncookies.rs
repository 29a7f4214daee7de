//! SYN cookies: a stateless SYN-ACK when the SYN queue is full.
//!
//! Mirrors `net/ipv4/syncookies.c`: the ISN encodes a keyed hash of the
//! 4-tuple and the client's ISN, a minute counter and the index of the
//! client's MSS in `msstab` (`secure_tcp_syn_cookie()`,
//! `check_tcp_syn_cookie()`, `cookie_v4_init_sequence()`,
//! `__cookie_v4_check()`); with timestamps, the low six bits of our TS value
//! carry window scale, SACK and ECN (`cookie_init_timestamp()`,
//! `cookie_timestamp_decode()`, `cookie_ecn_ok()`).
//!
//! ```text
//!  ISN = H0(4-tuple) + client ISN + (minute << 24) + ((H1(4-tuple, minute) + mssind) & 0xffffff)
//!  TSval = (now_ms & ~0x3f) | ecn << 5 | sack << 4 | wscale (0xf = none)   (+ ts offset)
//! ```

use core::net::Ipv4Addr;

use netcore::Instant;

use crate::secure_seq::{TcpSecrets, siphash};

/// The MSS values a cookie can carry. Mirrors `msstab[]`.
pub const MSSTAB: [u16; 4] = [536, 1300, 1440, 1460];

/// Bits of the cookie below the counter (`COOKIEBITS`).
const COOKIEBITS: u32 = 24;
const COOKIEMASK: u32 = (1 << COOKIEBITS) - 1;
/// Minutes a cookie stays valid (`MAX_SYNCOOKIE_AGE`).
pub const MAX_SYNCOOKIE_AGE: u32 = 2;
/// Bits of the TS value used for options (`TSBITS`).
const TSBITS: u32 = 6;
const TSMASK: u32 = (1 << TSBITS) - 1;
/// `TS_OPT_WSCALE_MASK`.
const TS_OPT_WSCALE_MASK: u32 = 0xf;
/// `TS_OPT_SACK`.
const TS_OPT_SACK: u32 = 1 << 4;
/// `TS_OPT_ECN`.
const TS_OPT_ECN: u32 = 1 << 5;

/// The minute counter. Mirrors `tcp_cookie_time()` (`jiffies /
/// TCP_SYNCOOKIE_PERIOD`, 60 s).
pub fn tcp_cookie_time(now: Instant) -> u32 {
    (now.as_nanos() / 60_000_000_000) as u32
}

fn cookie_hash(
    s: &TcpSecrets,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    sport: u16,
    dport: u16,
    count: u32,
    c: usize,
) -> u32 {
    let w0 = u64::from(u32::from(saddr)) | (u64::from(u32::from(daddr)) << 32);
    let w1 = u64::from((u32::from(sport) << 16) | u32::from(dport)) | (u64::from(count) << 32);
    siphash(&[w0, w1], &s.syncookie_secret[c]) as u32
}

/// Builds a cookie ISN. Mirrors `secure_tcp_syn_cookie()`. `saddr`/`sport`
/// are the client's.
#[allow(clippy::too_many_arguments)] // the kernel function's inputs, one by one
pub fn secure_tcp_syn_cookie(
    s: &TcpSecrets,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    sport: u16,
    dport: u16,
    sseq: u32,
    data: u32,
    now: Instant,
) -> u32 {
    let count = tcp_cookie_time(now);
    cookie_hash(s, saddr, daddr, sport, dport, 0, 0)
        .wrapping_add(sseq)
        .wrapping_add(count << COOKIEBITS)
        .wrapping_add(
            cookie_hash(s, saddr, daddr, sport, dport, count, 1).wrapping_add(data) & COOKIEMASK,
        )
}

/// Recovers the data of a cookie, or `None` if it is too old or forged.
/// Mirrors `check_tcp_syn_cookie()`.
#[allow(clippy::too_many_arguments)] // the kernel function's inputs, one by one
pub fn check_tcp_syn_cookie(
    s: &TcpSecrets,
    cookie: u32,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    sport: u16,
    dport: u16,
    sseq: u32,
    now: Instant,
) -> Option<u32> {
    let count = tcp_cookie_time(now);
    let cookie =
        cookie.wrapping_sub(cookie_hash(s, saddr, daddr, sport, dport, 0, 0).wrapping_add(sseq));
    let diff = count.wrapping_sub(cookie >> COOKIEBITS) & (u32::MAX >> COOKIEBITS);
    if diff >= MAX_SYNCOOKIE_AGE {
        return None;
    }
    Some(
        cookie.wrapping_sub(cookie_hash(
            s,
            saddr,
            daddr,
            sport,
            dport,
            count.wrapping_sub(diff),
            1,
        )) & COOKIEMASK,
    )
}

/// The cookie ISN for a SYN and the MSS it rounds the client's MSS down
/// to. Mirrors `__cookie_v4_init_sequence()`.
#[allow(clippy::too_many_arguments)] // the kernel function's inputs, one by one
pub fn cookie_v4_init_sequence(
    s: &TcpSecrets,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    mss: u16,
    now: Instant,
) -> (u32, u16) {
    let mut mssind = MSSTAB.len() - 1;
    while mssind > 0 && mss < MSSTAB[mssind] {
        mssind -= 1;
    }
    let isn = secure_tcp_syn_cookie(s, saddr, daddr, sport, dport, seq, mssind as u32, now);
    (isn, MSSTAB[mssind])
}

/// Checks the cookie an ACK returns and gives the MSS it encodes.
/// Mirrors `__cookie_v4_check()`: the cookie is `ack_seq - 1`, the client's
/// ISN `seq - 1`.
#[allow(clippy::too_many_arguments)] // the kernel function's inputs, one by one
pub fn cookie_v4_check_mss(
    s: &TcpSecrets,
    saddr: Ipv4Addr,
    daddr: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack_seq: u32,
    now: Instant,
) -> Option<u16> {
    let mssind = check_tcp_syn_cookie(
        s,
        ack_seq.wrapping_sub(1),
        saddr,
        daddr,
        sport,
        dport,
        seq.wrapping_sub(1),
        now,
    )?;
    MSSTAB.get(mssind as usize).copied()
}

/// The TS value of a cookie SYN-ACK (before the offset): the clock with
/// the options in its low bits, never ahead of the clock. Mirrors
/// `cookie_init_timestamp()`.
pub fn cookie_init_timestamp(now_ms: u32, wscale: Option<u8>, sack_ok: bool, ecn_ok: bool) -> u32 {
    let mut options = wscale.map_or(TS_OPT_WSCALE_MASK, |w| u32::from(w) & TS_OPT_WSCALE_MASK);
    if sack_ok {
        options |= TS_OPT_SACK;
    }
    if ecn_ok {
        options |= TS_OPT_ECN;
    }
    let mut ts = (now_ms >> TSBITS << TSBITS) | options;
    if ts > now_ms {
        ts = ts.wrapping_sub(1 << TSBITS);
    }
    ts
}

/// Reads window scale, SACK and ECN back from the echoed TS value
/// (offset already removed). Mirrors `cookie_timestamp_decode()` and the
/// `TS_OPT_ECN` test of `cookie_ecn_ok()`: `(wscale, sack, ecn)`.
pub fn cookie_timestamp_decode(tsecr: u32) -> (Option<u8>, bool, bool) {
    let options = tsecr & TSMASK;
    let w = options & TS_OPT_WSCALE_MASK;
    let wscale = (w != TS_OPT_WSCALE_MASK).then_some(w as u8);
    (
        wscale,
        options & TS_OPT_SACK != 0,
        options & TS_OPT_ECN != 0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const S: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    #[test]
    fn cookie_roundtrip_mss_and_age() {
        let s = TcpSecrets::from_seed(7);
        let now = Instant::from_secs(1000);
        for (mss, want) in [
            (1460, 1460),
            (1400, 1300),
            (9000, 1460),
            (100, 536),
            (1440, 1440),
        ] {
            let (isn, m) = cookie_v4_init_sequence(&s, C, S, 40000, 80, 5555, mss, now);
            assert_eq!(m, want);
            assert_eq!(
                cookie_v4_check_mss(&s, C, S, 40000, 80, 5556, isn.wrapping_add(1), now),
                Some(want)
            );
            // Still valid a minute later, not two minutes later.
            let later = now + netcore::Duration::from_secs(60);
            assert_eq!(
                cookie_v4_check_mss(&s, C, S, 40000, 80, 5556, isn.wrapping_add(1), later),
                Some(want)
            );
            let old = now + netcore::Duration::from_secs(180);
            assert_eq!(
                cookie_v4_check_mss(&s, C, S, 40000, 80, 5556, isn.wrapping_add(1), old),
                None
            );
            // Another port or client ISN does not verify.
            assert_eq!(
                cookie_v4_check_mss(&s, C, S, 40001, 80, 5556, isn.wrapping_add(1), now),
                None
            );
        }
        let (isn, _) = cookie_v4_init_sequence(&s, C, S, 40000, 80, 5555, 1460, now);
        assert_eq!(
            cookie_v4_check_mss(&s, C, S, 40000, 80, 9999, isn.wrapping_add(1), now),
            None
        );
    }

    #[test]
    fn timestamp_options() {
        let ts = cookie_init_timestamp(1_000_000, Some(7), true, false);
        assert!(ts <= 1_000_000);
        assert_eq!(cookie_timestamp_decode(ts), (Some(7), true, false));
        let ts = cookie_init_timestamp(1_000_000, None, false, true);
        assert_eq!(cookie_timestamp_decode(ts), (None, false, true));
    }
}
