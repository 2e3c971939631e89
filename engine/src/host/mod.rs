//! The wasmtime host: load, validate, compile (once, cached), sandbox and call transforms.
//!
//! Lifecycle phases are types:
//! - [`TransformEngine`]: one per process. A wasmtime `Engine` configured for determinism
//!   and bounds, the WASI linker with the sandbox's stand-ins, the compiled cache, and the
//!   epoch ticker thread that enforces deadlines.
//! - [`Transform`]: one per component. Its sha256 digest, its validated [`Signature`](crate::Signature), the
//!   pre-linked `InstancePre`, and a pool of warm instances.
//! - A warm instance per call: checked out of the pool, called, and returned (or dropped
//!   after a trap, and recycled after many calls).
//!
//! ```no_run
//! # fn main() -> skewless_engine::Result<()> {
//! use skewless_engine::TransformEngine;
//! let engine = TransformEngine::builder().cache_dir(".skewless/compiled").build()?;
//! let transform = engine.load_file("transaction_features.wasm")?;
//! println!("{} {}", transform.signature().id(), transform.digest());
//! # let input = arrow_array::RecordBatch::new_empty(transform.signature().input_schema());
//! let output = transform.run(&input)?;
//! # Ok(()) }
//! ```
//!
//! Errors separate the guest's own failures from the host's: a transform that returns
//! `err(...)` is [`ErrorKind::TransformFailed`]; a trap, a deadline or the memory cap are
//! [`ErrorKind::Trapped`], [`ErrorKind::DeadlineExceeded`] and
//! [`ErrorKind::MemoryLimitExceeded`]. Every error names the transform and its digest, and
//! the engine keeps serving other calls afterwards.

mod cache;
mod contract;
mod epoch;
mod load;
mod sandbox;
mod transform;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use transform::Transform;

pub use load::digest;

use crate::error::{Error, ErrorKind, Result};
use cache::CompiledCache;
use epoch::EpochTicker;
use sandbox::HostState;

/// Settings of a [`TransformEngine`]. Build one with [`TransformEngine::builder`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Maximum bytes of linear memory per instance, summed over all its memories.
    pub memory_limit: usize,
    /// Maximum wall time of one call into a transform.
    pub deadline: Duration,
    /// Where compiled components are cached; `None` compiles in memory on every load.
    pub cache_dir: Option<PathBuf>,
    /// Warm instances kept per transform for reuse.
    pub max_warm_instances: usize,
    /// Calls after which a warm instance is dropped and replaced by a fresh one, so state a
    /// guest accumulates (a leaking interpreter, a fragmented heap) cannot grow forever.
    pub recycle_after_calls: u64,
    /// Canonicalize NaNs after every float instruction inside the guest (Cranelift's
    /// `nan_canonicalization`), not only in outputs. Costs +22-85% on float-heavy code.
    pub canonicalize_nans_in_guest: bool,
    /// Use wasmtime's pooling instance allocator (a fresh instance in ~5-20 µs instead of
    /// tens of µs). Falls back to on-demand allocation if the pool cannot be reserved.
    pub pooling: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        EngineConfig {
            // Room for an interpreter's heap (a Python guest needs well over 64 MiB).
            memory_limit: 512 << 20,
            deadline: Duration::from_secs(10),
            cache_dir: None,
            max_warm_instances: (2 * cores).max(2),
            recycle_after_calls: 100_000,
            canonicalize_nans_in_guest: false,
            pooling: true,
        }
    }
}

/// Builds a [`TransformEngine`].
#[derive(Clone, Debug, Default)]
pub struct EngineBuilder {
    config: EngineConfig,
}

impl EngineBuilder {
    /// Maximum bytes of linear memory per instance (all memories together).
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.config.memory_limit = bytes;
        self
    }

    /// Maximum wall time of one call.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.config.deadline = deadline;
        self
    }

    /// Cache compiled components under `dir`.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.cache_dir = Some(dir.into());
        self
    }

    /// Warm instances kept per transform.
    pub fn max_warm_instances(mut self, n: usize) -> Self {
        self.config.max_warm_instances = n;
        self
    }

    /// Calls after which a warm instance is replaced by a fresh one.
    pub fn recycle_after_calls(mut self, calls: u64) -> Self {
        self.config.recycle_after_calls = calls.max(1);
        self
    }

    /// Canonicalize NaNs inside the guest too (see [`EngineConfig`]).
    pub fn canonicalize_nans_in_guest(mut self, enable: bool) -> Self {
        self.config.canonicalize_nans_in_guest = enable;
        self
    }

    /// Use the pooling instance allocator (default on).
    pub fn pooling(mut self, enable: bool) -> Self {
        self.config.pooling = enable;
        self
    }

    /// Replaces every setting at once.
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Creates the engine, its linker, its cache directory and its epoch ticker.
    pub fn build(self) -> Result<TransformEngine> {
        TransformEngine::new(self.config)
    }
}

/// The process-wide transform host. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct TransformEngine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for TransformEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformEngine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct EngineInner {
    engine: Engine,
    linker: Linker<HostState>,
    config: EngineConfig,
    cache: Option<CompiledCache>,
    epoch_ticks: u64,
    _ticker: EpochTicker,
}

impl TransformEngine {
    /// A builder with default settings.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    fn new(config: EngineConfig) -> Result<Self> {
        if config.memory_limit < (1 << 20) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "memory limit of {} bytes is too small; a transform needs at least 1 MiB",
                    config.memory_limit
                ),
            ));
        }
        let engine = match config.pooling {
            true => Engine::new(&wasmtime_config(&config, true)).or_else(|e| {
                tracing::warn!(error = %e, "pooling allocator unavailable; allocating on demand");
                Engine::new(&wasmtime_config(&config, false))
            }),
            false => Engine::new(&wasmtime_config(&config, false)),
        }
        .map_err(|e| internal("could not create the wasmtime engine", e))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| sandbox::forbid_waiting(&mut linker))
            .map_err(|e| internal("could not link the WASI stand-ins", e))?;

        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| CompiledCache::open(dir, &engine))
            .transpose()?;
        let ticker = EpochTicker::start(engine.clone())?;
        Ok(TransformEngine {
            inner: Arc::new(EngineInner {
                epoch_ticks: epoch::ticks_for(config.deadline),
                engine,
                linker,
                config,
                cache,
                _ticker: ticker,
            }),
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Loads the component at `path`: reads it, checks that it is a component of the
    /// `skewless:transform` world, compiles it (or maps the cached artifact), and reads and
    /// validates its signature.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Transform> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            Error::new(ErrorKind::Io, format!("could not read component file: {e}"))
                .with_context("file", path.display())
                .with_source(e)
        })?;
        self.load_bytes(&bytes)
            .map_err(|e| e.with_context("file", path.display()))
    }

    /// Loads a component from its bytes (see [`TransformEngine::load_file`]).
    pub fn load_bytes(&self, bytes: &[u8]) -> Result<Transform> {
        load::load(self.inner.clone(), bytes)
    }
}

/// Installs the process's trap handlers now, as the first engine would: the signal handlers
/// (SIGSEGV, SIGILL, SIGFPE) that turn a trapping component into [`ErrorKind::Trapped`]
/// instead of a crash. They stay for the life of the process. An embedder that must know
/// which handlers are the engine's (the Python package, whose `faulthandler` replaces them)
/// calls this first, then reads them.
pub fn install_trap_handlers() -> Result<()> {
    Engine::new(&Config::new()).map(drop).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot create the WebAssembly engine: {e}"),
        )
    })
}

fn wasmtime_config(config: &EngineConfig, pooling: bool) -> Config {
    let mut c = Config::new();
    c.epoch_interruption(true);
    c.cranelift_nan_canonicalization(config.canonicalize_nans_in_guest);
    // Relaxed SIMD lets results depend on the CPU; deterministic mode pins them.
    c.relaxed_simd_deterministic(true);
    c.parallel_compilation(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.max_memory_size(config.memory_limit)
            .total_component_instances(512)
            .total_core_instances(4096)
            .total_memories(1024)
            .total_tables(2048)
            .max_core_instances_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_component(64)
            .table_elements(65_536)
            // Freshly zeroed pages on reuse; keeping them resident made Rust instances
            // slower to start (their heap is zeroed again anyway).
            .linear_memory_keep_resident(0);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    c
}

fn internal(what: &str, e: wasmtime::Error) -> Error {
    Error::new(ErrorKind::Internal, format!("{what}: {e}")).with_source(e)
}

fn compile_error(e: wasmtime::Error) -> Error {
    Error::new(
        ErrorKind::InvalidComponent,
        format!("the component failed to compile: {e:#}"),
    )
    .with_source(e)
}
