//! The machine's memcpy bandwidth: the physical ceiling of bulk transfer,
//! printed beside the stack's figures by `cargo xtask bench`.

fn main() {
    // 64 MiB: far beyond any last-level cache, so this is memory bandwidth.
    let gbs = benchkit::memcpy_bandwidth(64 << 20);
    benchkit::report("memcpy_bandwidth", gbs, "GB/s");
    benchkit::report("memcpy_bandwidth (bits)", gbs * 8.0, "Gbit/s");
}
