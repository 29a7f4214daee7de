//! NAPI benchmarks: one schedule + poll + complete cycle, and GRO receive of
//! 1500-byte in-order TCP segments against GRO off.

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Arc;

use irq::{CpuWakeup, Softirqs};
use napi::{NapiPoll, NapiPollCtx, PollLists, napi_poll, napi_schedule_on, netif_napi_add};
use netcore::{ETH_P_IP, Instant, IpSummed, PagePool, PagePoolParams, SkBuff};
use wire::{csum_partial, csum_tcpudp_magic, ip_fast_csum};

const MSS: usize = 1448;

/// A driver that does no receive work: measures the NAPI machinery.
struct Idle;

impl NapiPoll for Idle {
    fn poll(&mut self, napi: &mut NapiPollCtx<'_>, _budget: usize) -> usize {
        napi.napi_complete_done(0);
        0
    }
}

/// A driver that hands up prepared frames, GRO on or off.
struct Feed {
    frames: VecDeque<SkBuff>,
    gro: bool,
}

impl NapiPoll for Feed {
    fn poll(&mut self, napi: &mut NapiPollCtx<'_>, budget: usize) -> usize {
        let mut work = 0;
        while work < budget {
            let Some(skb) = self.frames.pop_front() else {
                break;
            };
            if self.gro {
                napi.napi_gro_receive(skb);
            } else {
                napi.netif_receive_skb(skb);
            }
            work += 1;
        }
        if work < budget {
            napi.napi_complete_done(work);
        }
        work
    }
}

fn frame(pool: &PagePool, i: u32) -> SkBuff {
    let tot = 20 + 20 + MSS;
    let mut f = vec![0u8; 14 + tot];
    f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
    let ip = &mut f[14..];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&(tot as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[198, 18, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 18, 0, 2]);
    let c = ip_fast_csum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let th = &mut ip[20..];
    th[0..2].copy_from_slice(&40000u16.to_be_bytes());
    th[2..4].copy_from_slice(&80u16.to_be_bytes());
    th[4..8].copy_from_slice(&(i * MSS as u32).to_be_bytes());
    th[12] = 5 << 4;
    th[13] = 0x10;
    let c = csum_tcpudp_magic(
        Ipv4Addr::new(198, 18, 0, 1),
        Ipv4Addr::new(198, 18, 0, 2),
        (20 + MSS) as u16,
        6,
        csum_partial(th, 0),
    );
    th[16..18].copy_from_slice(&c.to_be_bytes());
    let mut skb = SkBuff::from_slice(pool, 64, &f).unwrap();
    skb.reset_mac_header();
    skb.pull(14).unwrap();
    skb.reset_network_header();
    skb.protocol = ETH_P_IP;
    skb.ip_summed = IpSummed::Unnecessary;
    skb
}

fn gro_run(gro: bool) -> f64 {
    const N: u32 = 640;
    let pool = PagePool::new(PagePoolParams::default()).unwrap();
    let lists = PollLists::new(1).unwrap();
    let softirqs = Softirqs::new(1, CpuWakeup::new()).unwrap();
    let per = benchkit::measure_with_setup(
        || (0..N).map(|i| frame(&pool, i)).collect::<VecDeque<_>>(),
        |frames| {
            let napi = netif_napi_add(&lists, 2, Feed { frames, gro });
            if gro {
                napi.set_gro_pool(Some(pool.clone()));
            }
            napi.napi_enable().unwrap();
            napi_schedule_on(&napi, 0, &softirqs).unwrap();
            let mut up = 0usize;
            let mut sink = |skb: SkBuff| up += black_box(skb).len();
            while let Some(n) = lists.cpu(0).unwrap().pop_front() {
                if napi_poll(&n, 0, &softirqs, &mut sink, Instant::ZERO)
                    .unwrap()
                    .repoll
                {
                    lists.cpu(0).unwrap().list_add_tail(n);
                }
            }
            up
        },
        20,
    );
    let ns_per_seg = per.as_nanos_f64() / f64::from(N);
    let label = if gro { "gro_on" } else { "gro_off" };
    benchkit::report(
        &format!("napi_gro_receive_1500B_{label}"),
        ns_per_seg,
        "ns/segment",
    );
    let gbit = (MSS as f64 * 8.0) / ns_per_seg;
    benchkit::report(
        &format!("napi_gro_receive_1500B_{label}_payload"),
        gbit,
        "Gbit/s",
    );
    ns_per_seg
}

fn main() {
    let lists = PollLists::new(1).unwrap();
    let softirqs = Arc::new(Softirqs::new(1, CpuWakeup::new()).unwrap());
    let napi = netif_napi_add(&lists, 1, Idle);
    napi.napi_enable().unwrap();
    let mut sink = |_skb: SkBuff| {};
    let per = benchkit::measure(|| {
        napi_schedule_on(&napi, 0, &softirqs).unwrap();
        let n = lists.cpu(0).unwrap().pop_front().unwrap();
        napi_poll(&n, 0, &softirqs, &mut sink, Instant::ZERO).unwrap()
    });
    benchkit::report("napi_schedule_poll_complete", per.as_nanos_f64(), "ns");
    gro_run(true);
    gro_run(false);
}
