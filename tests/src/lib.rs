//! Cross-crate and interop tests of netstack.
//!
//! The tests live in `tests/*.rs` of this package; this library holds the
//! fixtures they share. Tests that join several layers (hosts on virtual
//! wires, a TAP device in a network namespace) belong here rather than in
//! any one crate.

pub mod packetdrill;
pub mod scale;
