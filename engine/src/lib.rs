//! The skewless transform engine: runs feature transforms compiled to WebAssembly components.
//!
//! A feature transform is compiled once to a component implementing the WIT world in
//! `wit/` (`skewless:transform/feature-transform`, version 0.1.0 or 0.2.0, which carries
//! every buffer as bytes). This crate loads such a component, proves what it is (its sha256
//! [digest](Transform::digest)), checks what it reads and writes (its [`Signature`]), and
//! runs it over Arrow record batches in a deterministic, bounded sandbox. The same call path
//! serves batch jobs and online requests, so a feature is computed by the same bytes
//! everywhere.
//!
//! It knows nothing of feature stores: no Iceberg, no online store, no HTTP. The feature
//! store around it is `skewless-runtime`, which re-exports this crate's modules under their
//! old names (`skewless_runtime::engine` is [`host`]); crates that only build or identify
//! components (`skewless-toolchain`) depend on this one alone.
//!
//! Its modules, with dependencies pointing downward only:
//! - [`host`]: the wasmtime host ([`TransformEngine`], [`Transform`]);
//! - `batch`: Arrow `RecordBatch` <-> WIT batch conversion, checked against a signature;
//! - [`signature`]: the host's view of a transform's declared inputs and outputs;
//! - [`error`]: one [`Error`] with a matchable [`ErrorKind`], shared by every skewless crate.
//!
//! ```no_run
//! # fn main() -> skewless_engine::Result<()> {
//! use skewless_engine::TransformEngine;
//!
//! let engine = TransformEngine::builder().cache_dir(".skewless/compiled").build()?;
//! let transform = engine.load_file("transaction_features.wasm")?;
//! for field in &transform.signature().outputs {
//!     println!("{field}");
//! }
//! # Ok(()) }
//! ```

mod batch;
mod bindings;
pub mod error;
pub mod host;
pub mod signature;

pub use batch::accepts;
pub use error::{Error, ErrorKind, Result};
pub use host::{EngineBuilder, EngineConfig, Transform, TransformEngine, digest};
pub use signature::{DataType, Field, Signature};
