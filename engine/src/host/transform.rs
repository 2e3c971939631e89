//! A loaded transform: digest, signature, pre-linked instance, pool of warm instances.

use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use wasmtime::{Store, Trap};

use super::EngineInner;
use super::contract::{Contract, ContractPre};
use super::sandbox::{HostState, MemoryLimitHit, WaitForbidden};
use crate::batch;
use crate::error::{Error, ErrorKind, Result};
use crate::signature::Signature;

/// A component ready to run. Cheap to clone; clones share the pool of warm instances, so
/// a `Transform` can be handed to every worker thread.
#[derive(Clone)]
pub struct Transform {
    inner: Arc<TransformInner>,
}

struct TransformInner {
    engine: Arc<EngineInner>,
    digest: String,
    signature: Signature,
    /// `name@version`, kept so calls do not format it.
    id: String,
    output_schema: SchemaRef,
    pre: ContractPre,
    pool: Mutex<Vec<WarmInstance>>,
    from_cache: bool,
}

/// An instantiated component and its store, reusable across calls.
struct WarmInstance {
    store: Store<HostState>,
    bindings: Contract,
    calls: u64,
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transform")
            .field("id", &self.inner.id)
            .field("digest", &self.inner.digest)
            .finish_non_exhaustive()
    }
}

impl Transform {
    /// Instantiates once to read the signature; that instance becomes the first warm one.
    pub(super) fn new(
        engine: Arc<EngineInner>,
        digest: String,
        pre: ContractPre,
        from_cache: bool,
    ) -> Result<Self> {
        let context = |e: Error| e.with_context("digest", &digest);
        let mut instance = instantiate(&engine, &pre)
            .map_err(|e| classify(e, "instantiating"))
            .map_err(context)?;
        reset_deadline(&engine, &mut instance.store);
        let described = instance
            .bindings
            .call_describe(&mut instance.store)
            .map_err(|e| classify(e, "calling describe()"))
            .map_err(context)?;
        let signature = Signature::from_wit(described).map_err(context)?;
        drain_output(&signature.id(), &mut instance.store);
        Ok(Transform {
            inner: Arc::new(TransformInner {
                output_schema: signature.output_schema(),
                id: signature.id(),
                signature,
                digest,
                pre,
                pool: Mutex::new(vec![instance]),
                from_cache,
                engine,
            }),
        })
    }

    /// `sha256:<hex>` of the component's bytes.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// The validated signature the component reported.
    pub fn signature(&self) -> &Signature {
        &self.inner.signature
    }

    /// The version of the `skewless:transform` contract the component implements (`0.1.0`,
    /// or `0.2.0`: every column buffer as bytes).
    pub fn contract_version(&self) -> &'static str {
        self.inner.pre.version().as_str()
    }

    /// Whether the compiled code was mapped from the on-disk cache rather than compiled.
    pub fn loaded_from_cache(&self) -> bool {
        self.inner.from_cache
    }

    /// The Arrow schema of [`Transform::run`]'s output.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.inner.output_schema
    }

    /// Runs the transform over `input`: converts the declared input columns to the WIT
    /// layout, calls the component on a warm instance, and converts and checks its output.
    ///
    /// Batch jobs and online serving both call this; they differ only in batch size.
    pub fn run(&self, input: &RecordBatch) -> Result<RecordBatch> {
        self.run_inner(input).map_err(|e| {
            e.with_context("transform", &self.inner.id)
                .with_context("digest", &self.inner.digest)
        })
    }

    fn run_inner(&self, input: &RecordBatch) -> Result<RecordBatch> {
        let inner = &*self.inner;
        let wit_input = batch::to_wit(&inner.signature.inputs, input)?;
        let mut instance = self.checkout()?;
        reset_deadline(&inner.engine, &mut instance.store);
        let result = instance
            .bindings
            .call_transform(&mut instance.store, wit_input);
        drain_output(&inner.id, &mut instance.store);
        let output = match result {
            Ok(output) => output,
            // A trapped instance may be in any state: drop it, never reuse it.
            Err(e) => return Err(classify(e, "calling transform()")),
        };
        instance.calls += 1;
        self.checkin(instance);
        let returned = output.map_err(|e| {
            let mut error = Error::new(
                ErrorKind::TransformFailed,
                format!("the transform reported an error: {}", e.message),
            );
            if let Some(column) = e.column {
                error = error.with_context("column", column);
            }
            if let Some(row) = e.row {
                error = error.with_context("row", row);
            }
            error
        })?;
        batch::from_wit(
            &inner.signature.outputs,
            &inner.output_schema,
            returned.into_batch()?,
            input.num_rows(),
        )
    }

    fn checkout(&self) -> Result<WarmInstance> {
        let pooled = self
            .inner
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        match pooled {
            Some(instance) => Ok(instance),
            None => instantiate(&self.inner.engine, &self.inner.pre)
                .map_err(|e| classify(e, "instantiating")),
        }
    }

    fn checkin(&self, instance: WarmInstance) {
        let config = &self.inner.engine.config;
        if instance.calls >= config.recycle_after_calls {
            return;
        }
        let mut pool = self.inner.pool.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < config.max_warm_instances {
            pool.push(instance);
        }
    }

    /// Drops every warm instance; the next calls start fresh ones. Tests use it to compare
    /// fresh and reused instances.
    pub fn clear_warm_instances(&self) {
        self.inner
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn instantiate(engine: &EngineInner, pre: &ContractPre) -> wasmtime::Result<WarmInstance> {
    let mut store = Store::new(&engine.engine, HostState::new(engine.config.memory_limit));
    store.limiter(|state| &mut state.limiter);
    // Instantiation runs the guest's start functions: they get the same deadline as a call.
    store.set_epoch_deadline(engine.epoch_ticks);
    store.epoch_deadline_trap();
    let bindings = pre.instantiate(&mut store)?;
    Ok(WarmInstance {
        store,
        bindings,
        calls: 0,
    })
}

fn reset_deadline(engine: &EngineInner, store: &mut Store<HostState>) {
    store.set_epoch_deadline(engine.epoch_ticks);
}

/// Writes what the guest printed during the call to the log, tagged with the transform.
fn drain_output(transform: &str, store: &mut Store<HostState>) {
    let (chunks, dropped) = store.data().output.drain();
    for (stream, text) in chunks {
        for line in text.lines() {
            tracing::info!(target: "skewless::guest", transform, stream, "{line}");
        }
    }
    if dropped > 0 {
        tracing::warn!(
            target: "skewless::guest",
            transform,
            dropped,
            "guest output over the per-call limit was dropped"
        );
    }
}

/// Turns a host-side failure of a call into an error whose kind says what happened.
fn classify(e: wasmtime::Error, during: &str) -> Error {
    let memory = e
        .downcast_ref::<MemoryLimitHit>()
        .map(|hit| (hit.limit, hit.requested))
        .or_else(|| {
            e.chain()
                .find_map(|c| c.downcast_ref::<MemoryLimitHit>())
                .map(|hit| (hit.limit, hit.requested))
        });
    if let Some((limit, requested)) = memory {
        return Error::new(
            ErrorKind::MemoryLimitExceeded,
            format!(
                "the transform exceeded its memory limit of {limit} bytes while {during} \
                 (it asked for {requested} bytes); raise the limit or process smaller batches"
            ),
        )
        .with_source(e);
    }
    if e.downcast_ref::<WaitForbidden>().is_some()
        || e.chain()
            .any(|c| c.downcast_ref::<WaitForbidden>().is_some())
    {
        return Error::new(
            ErrorKind::Trapped,
            format!(
                "the transform tried to sleep or wait on a clock while {during}; transforms \
                 run against a fixed clock and may not wait"
            ),
        )
        .with_source(e);
    }
    let trap = e
        .downcast_ref::<Trap>()
        .copied()
        .or_else(|| e.chain().find_map(|c| c.downcast_ref::<Trap>().copied()));
    let (kind, message) = match trap {
        Some(Trap::Interrupt) => (
            ErrorKind::DeadlineExceeded,
            format!("the transform ran past its deadline while {during} and was stopped"),
        ),
        Some(Trap::StackOverflow) => (
            ErrorKind::Trapped,
            format!("the transform overflowed its stack while {during} (unbounded recursion?)"),
        ),
        Some(trap) => (
            ErrorKind::Trapped,
            format!(
                "the transform trapped while {during}: {trap} (a panic in the guest shows as `unreachable`)"
            ),
        ),
        None => (
            ErrorKind::Trapped,
            format!("the transform failed while {during}: {e}"),
        ),
    };
    Error::new(kind, message).with_source(e)
}
