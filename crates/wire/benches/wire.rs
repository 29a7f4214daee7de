//! Benchmarks of the wire formats (filled in below).
fn main() {}
