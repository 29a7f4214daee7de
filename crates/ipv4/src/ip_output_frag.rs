//! IPv4 fragmentation on output.
//!
//! Mirrors `ip_fragment()` and `ip_do_fragment()` (its slow path) in
//! `net/ipv4/ip_output.c`, with `ip_options_fragment()` from
//! `net/ipv4/ip_options.c`.
//!
//! ```text
//!  [hdr|........ payload ........]  mtu
//!   ─▶ [hdr|  n·8 bytes ](MF) [hdr'|  n·8 bytes ](MF) [hdr'| rest ]
//!      hdr' = hdr with the options that are not "copied" turned into NOOPs
//! ```

use netcore::{IpMib, NET_SKB_PAD, NetMibs, PagePool, SkBuff};
use wire::{IP_DF, IP_MF, IP_OFFSET, IPOPT_END, IPOPT_NOOP, Ipv4Packet, WireError};

/// Why a datagram was not fragmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FragmentError {
    /// DF is set: send ICMP fragmentation needed with this next-hop MTU
    /// (`icmp_send(ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu)`), `EMSGSIZE`.
    FragNeeded {
        /// The route MTU to report.
        mtu: u16,
    },
    /// The skb does not start with a valid IPv4 header.
    BadHeader(WireError),
    /// The MTU cannot hold the header and 8 bytes of payload.
    MtuTooSmall {
        /// The MTU given.
        mtu: usize,
    },
    /// A fragment buffer could not be allocated (`ENOMEM`).
    NoMem,
}

/// Mirrors `ip_options_fragment()`: options without the "copied" bit become
/// NOOPs so later fragments keep the same header length.
fn ip_options_fragment(opts: &mut [u8]) {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            IPOPT_END => return,
            IPOPT_NOOP => i += 1,
            kind => {
                let len = opts.get(i + 1).map_or(0, |&l| usize::from(l));
                if len < 2 || i + len > opts.len() {
                    return;
                }
                if kind & 0x80 == 0 {
                    opts[i..i + len].fill(IPOPT_NOOP);
                }
                i += len;
            }
        }
    }
}

/// Splits an IPv4 datagram into fragments that fit `mtu`.
///
/// Mirrors `ip_fragment()` + `ip_do_fragment()`: each fragment but the last
/// carries a multiple of 8 payload bytes and MF; offsets continue those of
/// an already fragmented datagram; the first fragment keeps every option,
/// later ones only the copied ones. Takes ownership of `skb` (which starts
/// at its IPv4 header); a datagram that already fits is returned alone.
///
/// Counters: `FragOKs` and `FragCreates` (one per fragment) on success,
/// `FragFails` on any error. With DF set the caller must send the ICMP
/// error named by [`FragmentError::FragNeeded`].
pub fn ip_do_fragment(
    skb: SkBuff,
    mtu: usize,
    pool: &PagePool,
    mibs: &NetMibs,
    cpu: usize,
) -> Result<Vec<SkBuff>, FragmentError> {
    let fail = |e| {
        mibs.inc(cpu, IpMib::FragFails);
        Err(e)
    };
    let (hlen, tot, frag_off) = match Ipv4Packet::new_checked(skb.data()) {
        Ok(p) => (
            p.header_len(),
            usize::from(p.total_len()),
            p.header().frag_off.get(),
        ),
        Err(e) => return fail(FragmentError::BadHeader(e)),
    };
    if tot <= mtu {
        return Ok(vec![skb]);
    }
    if frag_off & IP_DF != 0 {
        return fail(FragmentError::FragNeeded {
            mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
        });
    }
    if mtu < hlen + 8 {
        return fail(FragmentError::MtuTooSmall { mtu });
    }
    let data = skb.data();
    let mut hdr = data[..hlen].to_vec();
    let payload = &data[hlen..tot];
    let base = usize::from(frag_off & IP_OFFSET) << 3;
    let orig_mf = frag_off & IP_MF != 0;
    let room = mtu - hlen;
    let headroom = skb.headroom().max(NET_SKB_PAD);
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let mut len = (payload.len() - off).min(room);
        if len < payload.len() - off {
            len &= !7;
        }
        let last = off + len == payload.len();
        let Ok(mut frag) = SkBuff::alloc(pool, headroom + hlen + len) else {
            return fail(FragmentError::NoMem);
        };
        let built = frag
            .reserve(headroom)
            .and_then(|()| frag.put_data(&hdr))
            .and_then(|()| frag.put_data(&payload[off..off + len]));
        if built.is_err() {
            return fail(FragmentError::NoMem);
        }
        frag.reset_network_header();
        frag.protocol = skb.protocol;
        frag.ifindex = skb.ifindex;
        frag.priority = skb.priority;
        frag.mark = skb.mark;
        let Ok(bytes) = frag.data_mut() else {
            return fail(FragmentError::NoMem);
        };
        bytes[2..4].copy_from_slice(&((hlen + len) as u16).to_be_bytes());
        let Ok(mut p) = Ipv4Packet::new_checked(&mut bytes[..]) else {
            return fail(FragmentError::NoMem);
        };
        let mut fo = (((base + off) >> 3) as u16) & IP_OFFSET;
        if !last || orig_mf {
            fo |= IP_MF;
        }
        p.header_mut().frag_off = fo.into();
        p.fill_checksum();
        out.push(frag);
        mibs.inc(cpu, IpMib::FragCreates);
        if off == 0 {
            ip_options_fragment(&mut hdr[20..]);
        }
        off += len;
    }
    mibs.inc(cpu, IpMib::FragOKs);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netcore::PagePoolParams;
    use wire::{IpProtocol, Ipv4Repr};

    fn datagram(pool: &PagePool, payload: usize, df: bool, options: &[u8]) -> SkBuff {
        let mut repr = Ipv4Repr {
            src_addr: "198.18.0.1".parse().unwrap(),
            dst_addr: "198.18.0.2".parse().unwrap(),
            protocol: IpProtocol::Udp,
            ttl: 64,
            tos: 0,
            ident: 0x4242,
            dont_frag: df,
            more_frags: false,
            frag_offset: 0,
            options: heapless::Vec::new(),
            payload_len: payload,
        };
        repr.options.extend_from_slice(options).unwrap();
        let mut b = vec![0u8; repr.buffer_len()];
        repr.emit(&mut b).unwrap();
        let h = repr.header_len();
        for (i, x) in b[h..].iter_mut().enumerate() {
            *x = i as u8;
        }
        SkBuff::from_slice(pool, 64, &b).unwrap()
    }

    #[test]
    fn sizes_offsets_flags_and_counters() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mibs = NetMibs::new(1);
        let frags =
            ip_do_fragment(datagram(&pool, 3000, false, &[]), 1500, &pool, &mibs, 0).unwrap();
        let shape: Vec<(usize, u16, bool)> = frags
            .iter()
            .map(|f| {
                let p = Ipv4Packet::new_verified(f.data()).unwrap();
                assert_eq!(p.ident(), 0x4242);
                (f.len(), p.frag_offset(), p.more_frags())
            })
            .collect();
        assert_eq!(
            shape,
            [(1500, 0, true), (1500, 1480, true), (60, 2960, false)]
        );
        let s = mibs.snapshot();
        assert_eq!(
            (
                s.get(IpMib::FragOKs),
                s.get(IpMib::FragCreates),
                s.get(IpMib::FragFails)
            ),
            (1, 3, 0)
        );
        // An odd MTU rounds the payload down to a multiple of 8.
        let frags = ip_do_fragment(datagram(&pool, 100, false, &[]), 67, &pool, &mibs, 0).unwrap();
        assert_eq!(
            frags.iter().map(SkBuff::len).collect::<Vec<_>>(),
            [60, 60, 40]
        );
        // Fits: untouched, not counted.
        let one = ip_do_fragment(datagram(&pool, 100, false, &[]), 1500, &pool, &mibs, 0).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(mibs.get(IpMib::FragOKs), 2);
    }

    #[test]
    fn df_refuses_with_frag_needed() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mibs = NetMibs::new(1);
        assert_eq!(
            ip_do_fragment(datagram(&pool, 3000, true, &[]), 1400, &pool, &mibs, 0).unwrap_err(),
            FragmentError::FragNeeded { mtu: 1400 }
        );
        assert_eq!(mibs.get(IpMib::FragFails), 1);
    }

    #[test]
    fn only_copied_options_follow_the_first_fragment() {
        let pool = PagePool::new(PagePoolParams::default()).unwrap();
        let mibs = NetMibs::new(1);
        // Record route (not copied, 7 bytes) + NOOP, then router alert (copied).
        let opts = [7, 7, 4, 0, 0, 0, 0, 1, 148, 4, 0, 0];
        let frags =
            ip_do_fragment(datagram(&pool, 200, false, &opts), 120, &pool, &mibs, 0).unwrap();
        let o0 = Ipv4Packet::new_verified(frags[0].data())
            .unwrap()
            .options()
            .to_vec();
        let o1 = Ipv4Packet::new_verified(frags[1].data())
            .unwrap()
            .options()
            .to_vec();
        assert_eq!(o0, opts);
        assert_eq!(o1, [1, 1, 1, 1, 1, 1, 1, 1, 148, 4, 0, 0]);
    }
}
