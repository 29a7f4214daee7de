use netcore::{PagePoolParams, SkBuff};
use wire::{IcmpDestUnreach, IcmpPacket, IcmpTimeExceeded};

use super::*;

fn pool() -> PagePool {
    PagePool::new(PagePoolParams::default()).unwrap()
}

fn datagram(
    pool: &PagePool,
    proto: IpProtocol,
    payload: &[u8],
    frag_offset: u16,
    dst: &str,
) -> SkBuff {
    let repr = Ipv4Repr {
        src_addr: "198.18.0.2".parse().unwrap(),
        dst_addr: dst.parse().unwrap(),
        protocol: proto,
        ttl: 64,
        tos: 0x10,
        ident: 9,
        dont_frag: false,
        more_frags: false,
        frag_offset,
        options: heapless::Vec::new(),
        payload_len: payload.len(),
    };
    let mut b = vec![0u8; repr.buffer_len()];
    repr.emit(&mut b).unwrap();
    b[20..].copy_from_slice(payload);
    SkBuff::from_slice(pool, 64, &b).unwrap()
}

fn ctx() -> IcmpSendCtx {
    IcmpSendCtx {
        saddr: "198.18.0.1".parse().unwrap(),
        dst_broadcast: false,
        mtu: 1500,
        ident: 1,
        loopback: false,
    }
}

const PORT_UNREACH: IcmpMessage = IcmpMessage::DstUnreachable {
    code: IcmpDestUnreach::PortUnreach,
    next_hop_mtu: 0,
};

#[test]
fn error_quotes_up_to_576_bytes_with_internetcontrol_tos() {
    let pool = pool();
    let (sysctl, mibs) = (Sysctl::new(), NetMibs::new(1));
    let mut lim = IcmpRateLimit::new(1);
    let now = Instant::from_secs(100);
    let big = datagram(&pool, IpProtocol::Udp, &[7u8; 1000], 0, "198.18.0.1");
    let out = icmp_build_error(
        &big,
        PORT_UNREACH,
        &ctx(),
        &mut lim,
        &sysctl,
        &mibs,
        0,
        now,
        &pool,
    )
    .unwrap();
    assert_eq!(out.len(), 576);
    let p = Ipv4Packet::new_verified(out.data()).unwrap();
    assert_eq!((p.tos(), p.ttl(), p.dont_frag()), (0xc0 | 0x10, 64, false));
    assert_eq!(p.dst_addr(), "198.18.0.2".parse::<Ipv4Addr>().unwrap());
    let icmp = IcmpPacket::new_checked(p.payload()).unwrap();
    assert_eq!(IcmpRepr::parse(&icmp).unwrap().message, PORT_UNREACH);
    assert_eq!(&icmp.payload()[..20], &big.data()[..20]);
    // A small datagram is quoted whole; frag needed carries the MTU.
    let small = datagram(
        &pool,
        IpProtocol::Udp,
        &[1, 2, 3, 4, 5, 6, 7, 8, 9],
        0,
        "198.18.0.1",
    );
    let fneed = IcmpMessage::DstUnreachable {
        code: IcmpDestUnreach::FragNeeded,
        next_hop_mtu: 1400,
    };
    let out = icmp_build_error(
        &small,
        fneed,
        &ctx(),
        &mut lim,
        &sysctl,
        &mibs,
        0,
        now,
        &pool,
    )
    .unwrap();
    assert_eq!(out.len(), 20 + 8 + 29);
    let p = Ipv4Packet::new_verified(out.data()).unwrap();
    assert_eq!(
        IcmpPacket::new_checked(p.payload()).unwrap().next_hop_mtu(),
        1400
    );
    let s = mibs.snapshot();
    assert_eq!(
        (s.get(IcmpMib::OutMsgs), s.icmpmsg(IcmpMsgDir::Out, 3)),
        (2, 2)
    );
}

#[test]
fn suppression_rules() {
    let pool = pool();
    let (sysctl, mibs) = (Sysctl::new(), NetMibs::new(1));
    let mut lim = IcmpRateLimit::new(1);
    let now = Instant::from_secs(100);
    let send = |skb: &SkBuff, c: &IcmpSendCtx, lim: &mut IcmpRateLimit| {
        icmp_build_error(skb, PORT_UNREACH, c, lim, &sysctl, &mibs, 0, now, &pool).map(|_| ())
    };
    // A non-first fragment.
    let frag = datagram(&pool, IpProtocol::Udp, &[0; 16], 8, "198.18.0.1");
    assert_eq!(
        send(&frag, &ctx(), &mut lim),
        Err(IcmpSendError::NotFirstFragment)
    );
    // To a broadcast / multicast address, or not for us at the link layer.
    let bcast = datagram(&pool, IpProtocol::Udp, &[0; 16], 0, "198.18.0.255");
    let c = IcmpSendCtx {
        dst_broadcast: true,
        ..ctx()
    };
    assert_eq!(send(&bcast, &c, &mut lim), Err(IcmpSendError::Broadcast));
    let mcast = datagram(&pool, IpProtocol::Udp, &[0; 16], 0, "224.0.0.1");
    assert_eq!(
        send(&mcast, &ctx(), &mut lim),
        Err(IcmpSendError::Broadcast)
    );
    let mut other = datagram(&pool, IpProtocol::Udp, &[0; 16], 0, "198.18.0.1");
    other.pkt_type = PktType::OtherHost;
    assert_eq!(send(&other, &ctx(), &mut lim), Err(IcmpSendError::NotHost));
    // About an ICMP error: never; about an echo request: yes.
    let err = datagram(
        &pool,
        IpProtocol::Icmp,
        &[3, 3, 0, 0, 0, 0, 0, 0],
        0,
        "198.18.0.1",
    );
    assert_eq!(
        send(&err, &ctx(), &mut lim),
        Err(IcmpSendError::AboutIcmpError)
    );
    let echo = datagram(
        &pool,
        IpProtocol::Icmp,
        &[8, 0, 0, 0, 0, 0, 0, 0],
        0,
        "198.18.0.1",
    );
    assert_eq!(send(&echo, &ctx(), &mut lim), Ok(()));
    assert_eq!(mibs.get(IcmpMib::OutMsgs), 1);
}

#[test]
fn per_host_limit_bursts_six_then_one_per_second() {
    let pool = pool();
    let (sysctl, mibs) = (Sysctl::new(), NetMibs::new(1));
    let mut lim = IcmpRateLimit::new(1);
    let t0 = Instant::from_secs(100);
    let skb = datagram(&pool, IpProtocol::Udp, &[0; 8], 0, "198.18.0.1");
    let te = IcmpMessage::TimeExceeded {
        code: IcmpTimeExceeded::Ttl,
    };
    let mut sent = 0;
    for _ in 0..10 {
        if icmp_build_error(&skb, te, &ctx(), &mut lim, &sysctl, &mibs, 0, t0, &pool).is_ok() {
            sent += 1;
        }
    }
    assert_eq!(sent, 6);
    assert_eq!(mibs.get(IcmpMib::OutRateLimitHost), 4);
    let t1 = t0 + Duration::from_millis(999);
    assert_eq!(
        icmp_build_error(&skb, te, &ctx(), &mut lim, &sysctl, &mibs, 0, t1, &pool).unwrap_err(),
        IcmpSendError::RateLimitHost
    );
    let t2 = t0 + Duration::from_secs(1);
    assert!(icmp_build_error(&skb, te, &ctx(), &mut lim, &sysctl, &mibs, 0, t2, &pool).is_ok());
    // Frag needed is never limited; echo replies are outside the mask.
    let fneed = IcmpMessage::DstUnreachable {
        code: IcmpDestUnreach::FragNeeded,
        next_hop_mtu: 1400,
    };
    for _ in 0..10 {
        icmp_build_error(&skb, fneed, &ctx(), &mut lim, &sysctl, &mibs, 0, t2, &pool).unwrap();
    }
}

#[test]
fn global_limit_caps_bursts_across_hosts() {
    let (sysctl, mibs) = (Sysctl::new(), NetMibs::new(1));
    let mut lim = IcmpRateLimit::new(3);
    let now = Instant::from_secs(100);
    let mut ok = 0;
    for i in 0..200u32 {
        let dst = Ipv4Addr::from(0xc612_0000 + i);
        if lim.allow(&sysctl, &mibs, 0, now, 3, 3, dst, false).is_ok() {
            ok += 1;
        }
    }
    // icmp_msgs_burst = 50 credits, each message costing 0, 1 or 2 of
    // them (icmp_global_consume): far fewer than 200 pass, at least 25.
    assert!((25..200).contains(&ok), "{ok}");
    assert_eq!(mibs.get(IcmpMib::OutRateLimitGlobal), 200 - ok);
    // 20 ms later the bucket refills by 20.
    let later = now + Duration::from_millis(20);
    assert!(
        lim.allow(
            &sysctl,
            &mibs,
            0,
            later,
            3,
            3,
            Ipv4Addr::new(198, 19, 0, 1),
            false
        )
        .is_ok()
    );
}

#[test]
fn echo_reply_mirrors_the_request() {
    let pool = pool();
    let (sysctl, mibs) = (Sysctl::new(), NetMibs::new(1));
    let mut req = [8u8, 0, 0, 0, 0x12, 0x34, 0, 7, b'p', b'i', b'n', b'g'];
    let c = wire::ip_compute_csum(&req);
    req[2..4].copy_from_slice(&c.to_be_bytes());
    let skb = datagram(&pool, IpProtocol::Icmp, &req, 0, "198.18.0.1");
    let out = icmp_build_reply(&skb, 5, &sysctl, &mibs, 0, &pool).unwrap();
    let p = Ipv4Packet::new_verified(out.data()).unwrap();
    assert_eq!(
        (p.src_addr(), p.dst_addr(), p.tos()),
        (
            "198.18.0.1".parse().unwrap(),
            "198.18.0.2".parse().unwrap(),
            0x10
        )
    );
    let icmp = IcmpPacket::new_checked(p.payload()).unwrap();
    assert_eq!(
        IcmpRepr::parse(&icmp).unwrap().message,
        IcmpMessage::EchoReply {
            ident: 0x1234,
            seq_no: 7
        }
    );
    assert_eq!(icmp.payload(), b"ping");
    assert_eq!(mibs.snapshot().icmpmsg(IcmpMsgDir::Out, 0), 1);
}
