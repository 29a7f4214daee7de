//! Project automation for netstack (`cargo xtask`).
fn main() {}
