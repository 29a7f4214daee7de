//! Throughput of the wire side: FCS computation, the virtual wire, a
//! `MediumPort` over it, and the learning switch.

use std::sync::{Arc, Mutex};

use benchkit::{black_box, measure, report};
use netcore::Instant;
use nic_hw::{
    Delivery, LinkConfig, MediumPort, PhyPort, Side, Switch, VirtualWire, append_fcs, check_fcs,
    fcs,
};

fn main() {
    for len in [64usize, 1514, 9000] {
        let frame: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let per = measure(|| black_box(fcs(black_box(&frame))));
        report(&format!("fcs {len} B"), per.gbytes_per_second(len), "GB/s");
        report(&format!("fcs {len} B, time"), per.as_nanos_f64(), "ns");
    }

    let mut frame = vec![0x5a; 1510];
    append_fcs(&mut frame);
    let per = measure(|| black_box(check_fcs(black_box(&frame))));
    report("check_fcs 1514 B", per.millions_per_second(), "Mpps");

    // One frame through a 10 Gbit/s wire per iteration: transmit, then poll
    // at its arrival. Time advances by the frame's serialisation time. The
    // frame is a fresh `Vec` each time and `poll` returns a new one, so this
    // counts two allocations per frame.
    let mut wire = VirtualWire::symmetric(LinkConfig::new(), 1).expect("default config is valid");
    let mut now = Instant::ZERO;
    let small = vec![0u8; 64];
    let per = measure(|| {
        wire.transmit(now, Side::A, small.clone());
        now = wire.next_event().unwrap_or(now);
        black_box(wire.poll(now));
    });
    report(
        "virtual_wire 64 B, no impairment",
        per.millions_per_second(),
        "Mpps",
    );

    // The same with the allocation-free calls: the frame is copied into a
    // recycled buffer and delivered into a kept `Vec`.
    let mut wire = VirtualWire::symmetric(LinkConfig::new(), 1).expect("default config is valid");
    let mut now = Instant::ZERO;
    let mut out: Vec<Delivery<Side>> = Vec::new();
    let per = measure(|| {
        wire.transmit_slice(now, Side::A, black_box(&small));
        now = wire.next_event().unwrap_or(now);
        wire.poll_into(now, &mut out);
        for d in out.drain(..) {
            black_box(&d.frame);
            wire.recycle(d.frame);
        }
    });
    report(
        "virtual_wire 64 B, transmit_slice + poll_into",
        per.millions_per_second(),
        "Mpps",
    );
    report(
        "virtual_wire 64 B, transmit_slice + poll_into, time",
        per.as_nanos_f64(),
        "ns",
    );

    // A receive path's view: a burst of 32 frames is on the wire, and the
    // receiver takes them one by one into the same buffer. Per frame.
    let mut wire = VirtualWire::symmetric(LinkConfig::new(), 1).expect("default config is valid");
    let mut now = Instant::ZERO;
    let mut buf = Vec::new();
    let per = measure(|| {
        for _ in 0..32 {
            wire.transmit_slice(now, Side::A, black_box(&small));
        }
        now = Instant::from_nanos(now.as_nanos() + 32 * 68 + 1_000);
        while let Some(at) = wire.receive_into(now, Side::B, &mut buf) {
            black_box((at, &buf));
        }
    });
    report(
        "virtual_wire 64 B, burst of 32, receive_into, per frame",
        per.as_nanos_f64() / 32.0,
        "ns",
    );

    // The same burst through `MediumPort`s, as a NIC model sees its PHY
    // (one mutex lock per call).
    let medium = Arc::new(Mutex::new(
        VirtualWire::symmetric(LinkConfig::new(), 1).expect("default config is valid"),
    ));
    let mut tx = MediumPort::new(medium.clone(), Side::A);
    let mut rx = MediumPort::new(medium, Side::B);
    let mut now = Instant::ZERO;
    let per = measure(|| {
        for _ in 0..32 {
            tx.transmit_slice(now, black_box(&small))
                .expect("virtual wire never fails");
        }
        now = Instant::from_nanos(now.as_nanos() + 32 * 68 + 1_000);
        while rx
            .receive_into(now, &mut buf)
            .expect("virtual wire never fails")
        {
            black_box(&buf);
        }
    });
    report(
        "medium_port 64 B, burst of 32, receive_into, per frame",
        per.as_nanos_f64() / 32.0,
        "ns",
    );

    let cfg = LinkConfig::new()
        .loss(0.01)
        .duplicate(0.01)
        .corrupt(0.01)
        .jitter(netcore::Duration::from_nanos(100));
    let mut wire = VirtualWire::symmetric(cfg, 1).expect("valid config");
    let mut now = Instant::ZERO;
    let per = measure(|| {
        wire.transmit(now, Side::A, small.clone());
        if let Some(t) = wire.next_event() {
            now = now.max(t);
        }
        black_box(wire.poll(now));
    });
    report(
        "virtual_wire 64 B, loss+dup+corrupt+jitter",
        per.millions_per_second(),
        "Mpps",
    );

    // A known unicast through a 2-port switch: host 0 -> switch -> host 1.
    let mut sw = Switch::new(1);
    for _ in 0..2 {
        sw.add_port(LinkConfig::new())
            .expect("default config is valid");
    }
    let mac = |n: u8| [0x02, 0, 0, 0, 0, n];
    // Teach the switch where both hosts are.
    let mut hello0 = [0xff; 6].to_vec();
    hello0.extend_from_slice(&mac(0));
    hello0.resize(60, 0);
    append_fcs(&mut hello0);
    let mut hello1 = [0xff; 6].to_vec();
    hello1.extend_from_slice(&mac(1));
    hello1.resize(60, 0);
    append_fcs(&mut hello1);
    sw.transmit(Instant::ZERO, 0, hello0)
        .expect("port 0 exists");
    sw.transmit(Instant::ZERO, 1, hello1)
        .expect("port 1 exists");
    let mut now = Instant::from_millis(1);
    sw.poll(now);
    let mut unicast = mac(1).to_vec();
    unicast.extend_from_slice(&mac(0));
    unicast.extend_from_slice(&[0x88, 0xb5]);
    unicast.resize(60, 0);
    append_fcs(&mut unicast);
    let mut out: Vec<Delivery<usize>> = Vec::new();
    let per = measure(|| {
        sw.transmit(now, 0, unicast.clone()).expect("port 0 exists");
        now = Instant::from_nanos(now.as_nanos() + 3_000);
        out.clear();
        out.extend(sw.poll(now));
        black_box(&out);
    });
    report(
        "switch 64 B known unicast, 2 ports",
        per.millions_per_second(),
        "Mpps",
    );
}
