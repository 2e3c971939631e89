//! The skewless library: the feature store around the transform engine.
//!
//! A feature transform is compiled once to a WebAssembly component; `skewless-engine` loads,
//! checks, sandboxes and runs it over Arrow record batches (its modules are re-exported here
//! as [`engine`], [`error`] and [`signature`]). This crate is the feature store around that
//! engine: a feature repo (`skewless.toml`) declares
//! entities and feature views; `apply` checks them against the data; `materialize` computes
//! batch views from Apache Iceberg source tables into Iceberg feature tables and the online
//! store; `historical` builds point-in-time correct training sets; `serve` answers online feature
//! requests over HTTP.
//!
//! The crates of the workspace, with dependencies pointing downward only:
//! - `skewless-cli`: the `skewless` command line (thin: parse, call, render), the one
//!   composition root;
//! - `skewless-server`: the online HTTP server (axum; thin: parse, call, render);
//! - `skewless-toolchain`: building transform projects (Rust, Python, JavaScript, C) into
//!   components, and scaffolding them (`skewless new` / `skewless build`); it needs only the
//!   engine crate;
//! - this library, which the Python package also builds on, with no HTTP, command-line or
//!   build-tool code in it;
//! - `skewless-engine`: the wasmtime host and the Arrow <-> WIT conversion, with no store or
//!   job code in it.
//!
//! Its modules, with dependencies pointing downward only:
//! - [`materialize`], [`historical`], [`serving`], [`apply`], [`ingest`]: the jobs;
//! - [`push`]: pushed rows through the same components, online at once and offline in
//!   micro-batches (a write-ahead log in between);
//! - [`registry`]: the feature repo, its checks and the applied registry of digests;
//! - [`pipeline`]: ordered parallel map, the skeleton of every batch job;
//! - [`interrupt`]: a caller's request that a running job stop (Ctrl-C in Python);
//! - [`files`]: streaming Parquet / CSV input and Parquet output;
//! - [`offline`]: Iceberg catalogs and tables (appends as snapshots, pinned scans);
//! - [`online`]: the [`online::OnlineStore`] trait, embedded (LMDB) and Redis backends;
//! - [`engine`], [`signature`], [`error`]: `skewless-engine`'s host ([`TransformEngine`],
//!   [`Transform`]), the view of a transform's declared inputs and outputs, and the one
//!   [`Error`] with a matchable [`ErrorKind`] of every crate.
//!
//! ```no_run
//! # fn main() -> skewless_runtime::Result<()> {
//! use skewless_runtime::TransformEngine;
//!
//! let engine = TransformEngine::builder().cache_dir(".skewless/compiled").build()?;
//! let transform = engine.load_file("transaction_features.wasm")?;
//! for field in &transform.signature().outputs {
//!     println!("{field}");
//! }
//! # Ok(()) }
//! ```

pub mod aggregate;
pub mod apply;
pub mod files;
pub mod historical;
pub mod ingest;
pub mod interrupt;
pub mod materialize;
pub mod micros;
pub mod offline;
pub mod online;
pub mod pipeline;
pub mod push;
pub mod registry;
pub mod serving;
pub mod stream;

pub use skewless_engine::host as engine;
pub use skewless_engine::{error, signature};

pub use engine::{EngineBuilder, EngineConfig, Transform, TransformEngine};
pub use error::{Error, ErrorKind, Result};
pub use signature::{DataType, Field, Signature};
