//! Benchmarks of skewless and their native baselines; figures in `benches/README.md`.
//!
//! The baselines compute exactly what the example components compute, written directly in
//! Rust over Arrow arrays: the Wasm/native ratio is then the whole cost of the sandbox and
//! the boundary. Tests below check that each baseline and its component agree bit for bit,
//! so the comparison stays honest when an example changes.

pub mod data;
pub mod native;
