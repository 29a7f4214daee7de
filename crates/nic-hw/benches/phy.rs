//! Throughput of the wire side: FCS computation and the virtual wire.

use benchkit::{black_box, measure, report};
use netcore::Instant;
use nic_hw::{LinkConfig, Side, VirtualWire, append_fcs, check_fcs, fcs};

fn main() {
    for len in [64usize, 1514, 9000] {
        let frame: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let per = measure(|| black_box(fcs(black_box(&frame))));
        report(&format!("fcs {len} B"), per.gbytes_per_second(len), "GB/s");
    }

    let mut frame = vec![0x5a; 1510];
    append_fcs(&mut frame);
    let per = measure(|| black_box(check_fcs(black_box(&frame))));
    report("check_fcs 1514 B", per.millions_per_second(), "Mpps");

    // One frame through a 10 Gbit/s wire per iteration: transmit, then poll
    // at its arrival. Time advances by the frame's serialisation time.
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
}
