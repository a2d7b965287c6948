//! Secure-rooms benchmarks (written next).
fn main() {}
