//! `NativeStore`: a feature repo and its stores, driven as the CLI drives them.
//!
//! Each method is the wiring of one `skewless` command (`plan`, `apply`, `ingest`,
//! `materialize`, `historical`) or of the server (`online`), minus the printing: the results
//! go back to Python as values. The repo is read anew by each job, so an edit of
//! `skewless.toml` or a new `apply` is seen by the next call, as it is by the next command.
//!
//! Two handles are kept between calls, because opening them again per call would be wrong or
//! slow: the online store (the embedded store is locked by the process that opens it, so
//! `materialize` and online reads must share one handle) and the [`OnlineServing`] built from
//! the applied registry (dropped by `apply`, which changes what is served).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use pyo3::prelude::*;
use skewless_runtime::historical::{MemoryBudget, Request, Retrieval, TrainingSet};
use skewless_runtime::interrupt::Interrupt;
use skewless_runtime::materialize::{Hook, Job, Materialized, Options};
use skewless_runtime::offline::{OfflineStore, TableName};
use skewless_runtime::online::OnlineStore;
use skewless_runtime::push::{self, PushOptions, PushService, To};
use skewless_runtime::registry::{FeatureRef, FeatureRepo, OpenedRepo, new_runtime};
use skewless_runtime::serving::{FeatureRequest, OnlineServing};
use skewless_runtime::{Error, ErrorKind, Result, TransformEngine};

use crate::arrow_io::{Input, batch_to_py, table_to_py, write_batches};
use crate::errors::py_err;
use crate::interruptible;
use crate::online::to_batches;
use crate::signals;
use skewless_runtime::micros::parse_time;

/// A feature repo (a folder with a `skewless.toml`) and its stores.
#[pyclass(module = "skewless._native", name = "NativeStore", frozen)]
#[derive(Debug)]
pub(crate) struct PyStore {
    dir: PathBuf,
    handles: Mutex<Handles>,
}

/// What is kept open between calls (see the module docs).
#[derive(Default)]
struct Handles {
    online: Option<Arc<dyn OnlineStore>>,
    serving: Option<Arc<Serving>>,
    push: Option<Arc<Pushing>>,
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles")
            .field("online", &self.online.is_some())
            .field("serving", &self.serving.is_some())
            .field("push", &self.push.is_some())
            .finish()
    }
}

/// Online serving and the engine whose epoch ticker enforces its components' deadlines.
#[derive(Debug)]
struct Serving {
    serving: OnlineServing,
    _engine: TransformEngine,
}

/// The push sources and the engine whose epoch ticker enforces their components' deadlines.
#[derive(Debug)]
struct Pushing {
    service: PushService,
    _engine: TransformEngine,
}

/// One view's materialization, for Python: view, rows, dropped rows, entities written online,
/// snapshot id, why it was skipped, digest, window (µs) and seconds.
pub(crate) type MaterializedTuple = (
    String,
    u64,
    u64,
    usize,
    Option<i64>,
    Option<String>,
    String,
    Option<(i64, i64)>,
    f64,
    &'static str,
    Option<i64>,
);

#[pymethods]
impl PyStore {
    /// Opens the repo in `repo_path`: a missing or invalid `skewless.toml` fails here, every
    /// problem listed.
    #[new]
    fn new(py: Python<'_>, repo_path: PathBuf) -> PyResult<Self> {
        let repo = py
            .detach(|| FeatureRepo::open(&repo_path))
            .map_err(py_err)?;
        Ok(PyStore {
            dir: repo.dir().to_owned(),
            handles: Mutex::new(Handles::default()),
        })
    }

    /// The repo folder (absolute).
    #[getter]
    fn repo_path(&self) -> PathBuf {
        self.dir.clone()
    }

    /// `skewless plan` (`apply = false`) or `skewless apply`: the changes (as the CLI prints
    /// them) and the problems that stop `apply`.
    fn plan(&self, py: Python<'_>, apply: bool) -> PyResult<(Vec<String>, Vec<String>)> {
        signals::detach(py, || {
            let runtime = new_runtime()?;
            let repo = FeatureRepo::open(&self.dir)?;
            let offline = runtime.block_on(OfflineStore::open(&repo.offline_config()))?;
            let engine = repo.engine()?;
            let plan = match apply {
                true => runtime.block_on(skewless_runtime::apply::apply(&repo, &engine, &offline)),
                false => runtime.block_on(skewless_runtime::apply::plan(&repo, &engine, &offline)),
            }?;
            if apply {
                // What is served and pushed follows the registry `apply` just wrote.
                let (serving, push) = {
                    let mut handles = self.handles();
                    (handles.serving.take(), handles.push.take())
                };
                // Outside the lock: the push committer commits what is pending first.
                drop((serving, push));
            }
            Ok((
                plan.changes.iter().map(ToString::to_string).collect(),
                plan.problems,
            ))
        })
        .map_err(py_err)
    }

    /// `skewless ingest`: appends the Parquet or CSV file at `path` to `table`; returns rows,
    /// snapshot id and whether the table was created.
    fn ingest(
        &self,
        py: Python<'_>,
        table: &str,
        path: PathBuf,
        create: bool,
    ) -> PyResult<(u64, i64, bool)> {
        signals::detach(py, || {
            let runtime = new_runtime()?;
            let repo = FeatureRepo::open(&self.dir)?;
            let offline = runtime.block_on(OfflineStore::open(&repo.offline_config()))?;
            let table = TableName::parse(table)?;
            let done = runtime
                .block_on(skewless_runtime::ingest::ingest(
                    &offline, &table, &path, create,
                ))
                .map_err(|e| e.with_context("file", path.display()))?;
            Ok((done.rows, done.snapshot.snapshot_id, done.created))
        })
        .map_err(py_err)
    }

    /// `skewless materialize`: `views` (every batch and aggregate view when `None`) over
    /// `[start, end)` (µs)
    /// or incrementally; one tuple per view (see [`MaterializedTuple`]).
    #[pyo3(signature = (views=None, start_us=None, end_us=None, incremental=false))]
    fn materialize(
        &self,
        py: Python<'_>,
        views: Option<Vec<String>>,
        start_us: Option<i64>,
        end_us: Option<i64>,
        incremental: bool,
    ) -> PyResult<Vec<MaterializedTuple>> {
        interruptible::run(py, |interrupt| {
            let opened = OpenedRepo::open(&self.dir)?.with_interrupt(interrupt.clone());
            let context = opened.context();
            let online = self.online_store(context.repo)?;
            let views = views.unwrap_or_else(|| {
                let spec = context.repo.spec();
                (spec.batch_views.iter().map(|v| v.name.clone()))
                    .chain(spec.aggregate_views.iter().map(|v| v.name.clone()))
                    .collect()
            });
            // Scans stop at the interrupt; these checks stop a run whose rows are all read
            // before its online write and its commit.
            let stop = interrupt.clone();
            let options = Options {
                start_us,
                end_us,
                incremental,
                hook: Some(Hook(Arc::new(move |_| stop.check("materializing")))),
                ..Options::default()
            };
            let job = Job {
                context,
                online: online.as_ref(),
            };
            views
                .iter()
                .map(|view| job.run(view, &options, &|_| {}).map(tuple))
                .collect::<Result<Vec<_>>>()
        })
    }

    /// `skewless historical`: the training set of `entities` (Arrow data with an
    /// `event_timestamp` column) for `features` or a `feature_service`; `as_of` is an RFC 3339
    /// time or a snapshot id (text), or `as_of_ms`, milliseconds since the epoch.
    #[pyo3(signature = (entities, features=None, feature_service=None,
        full_feature_names=false, as_of=None, as_of_ms=None, memory_budget_mib=MemoryBudget::DEFAULT_MIB))]
    #[expect(
        clippy::too_many_arguments,
        reason = "the keyword arguments of one Python call"
    )]
    fn historical(
        &self,
        py: Python<'_>,
        entities: &Bound<'_, PyAny>,
        features: Option<Vec<String>>,
        feature_service: Option<String>,
        full_feature_names: bool,
        as_of: Option<String>,
        as_of_ms: Option<i64>,
        memory_budget_mib: u32,
    ) -> PyResult<PyTrainingSet> {
        let entities = Input::read(entities)?;
        interruptible::run(py, |interrupt| {
            let entities = entities.into_batch()?;
            let opened = OpenedRepo::open(&self.dir)?.with_interrupt(interrupt.clone());
            let context = opened.context();
            let features = match (&feature_service, &features) {
                (Some(name), None) => context
                    .repo
                    .feature_service(name)?
                    .features
                    .iter()
                    .map(|f| FeatureRef::parse(f))
                    .collect::<Result<Vec<_>>>()?,
                (None, Some(features)) => features
                    .iter()
                    .map(|f| FeatureRef::parse(f.trim()))
                    .collect::<Result<Vec<_>>>()?,
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "pass either `features` or `feature_service`, not both and not neither",
                    ));
                }
            };
            let as_of_ms = match (as_of, as_of_ms) {
                (Some(text), _) => Some(skewless_runtime::historical::pinned_time(
                    context.repo,
                    context.offline,
                    context.runtime,
                    &features,
                    "as_of",
                    &text,
                )?),
                (None, ms) => ms,
            };
            if memory_budget_mib == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "memory_budget must be at least 1 MiB",
                ));
            }
            let request = Request {
                features,
                full_feature_names,
                as_of_ms,
                memory: MemoryBudget::mib(memory_budget_mib as usize),
            };
            let set = Retrieval { context }.run(&entities, &request)?;
            PyTrainingSet::new(set, as_of_ms)
        })
    }

    /// Online features for a request in the JSON shape of the server's
    /// `POST /get-online-features`, answered by the code the server runs.
    fn online(&self, py: Python<'_>, request_json: &str) -> PyResult<PyOnlineAnswer> {
        signals::detach(py, || {
            let request = FeatureRequest::from_json(request_json.as_bytes())?;
            let serving = self.serving()?;
            let features = serving.serving.get(&request)?;
            let mut digests: Vec<(String, String)> = Vec::new();
            for column in &features.features {
                if let Some(digest) = serving.serving.view_digest(&column.view)
                    && !digests.iter().any(|(v, _)| **v == *column.view)
                {
                    digests.push((column.view.to_string(), digest.to_owned()));
                }
            }
            let [values, statuses, times] = to_batches(&features)?;
            Ok(PyOnlineAnswer {
                values,
                statuses,
                times,
                digests,
            })
        })
        .map_err(py_err)
    }

    /// `POST /push`, in process: `data` (Arrow data with the source table's columns) pushed
    /// to push source `name` with Feast's `to` (`online`, `offline`, `online_and_offline`);
    /// returns the rows pushed and the entities whose online value changed. Returns once the
    /// rows are where `to` asks (see [`skewless_runtime::push`]).
    #[pyo3(signature = (name, data, to="online"))]
    fn push(
        &self,
        py: Python<'_>,
        name: &str,
        data: &Bound<'_, PyAny>,
        to: &str,
    ) -> PyResult<(usize, usize)> {
        let data = Input::read(data)?;
        interruptible::run(py, |interrupt| {
            let to = To::parse(to)?;
            let rows = data.into_batch()?;
            let pushing = self.pushing()?;
            let receipt = pushing.service.push_arrow(name, &rows, to)?;
            if let Some(committed) = receipt.committed {
                wait_for_commit(committed, interrupt)
                    .map_err(|e| e.with_context("push_source", name))?;
            }
            Ok((receipt.rows, receipt.online_written))
        })
    }

    /// Closes the online store, what serves from it and the push sources (the embedded store
    /// is locked while open, as is each push source's log; pending pushes are committed
    /// first); the next call that needs them opens them again.
    fn close(&self, py: Python<'_>) {
        let handles = std::mem::take(&mut *self.handles());
        py.detach(|| drop(handles));
    }

    /// Reads an RFC 3339 time into µs, as the CLI reads `--start` / `--end`; `what` names the
    /// argument in the error.
    #[staticmethod]
    fn parse_time(what: &str, text: &str) -> PyResult<i64> {
        parse_time(what, text).map_err(py_err)
    }
}

impl PyStore {
    fn handles(&self) -> MutexGuard<'_, Handles> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The online store, opened on first use.
    fn online_store(&self, repo: &FeatureRepo) -> Result<Arc<dyn OnlineStore>> {
        let mut handles = self.handles();
        open_online(&mut handles, repo)
    }

    /// Online serving over the applied registry, opened on first use.
    fn serving(&self) -> Result<Arc<Serving>> {
        let mut handles = self.handles();
        if let Some(serving) = &handles.serving {
            return Ok(serving.clone());
        }
        let repo = FeatureRepo::open(&self.dir)?;
        let registry = repo.applied()?;
        let engine = repo.engine()?;
        let store = open_online(&mut handles, &repo)?;
        let serving = Arc::new(Serving {
            serving: OnlineServing::open(&repo, &registry, &engine, store)?,
            _engine: engine,
        });
        handles.serving = Some(serving.clone());
        Ok(serving)
    }
}

impl PyStore {
    /// The repo's push sources, opened on first use (which replays what a crash left in their
    /// logs).
    fn pushing(&self) -> Result<Arc<Pushing>> {
        let mut handles = self.handles();
        if let Some(pushing) = &handles.push {
            return Ok(pushing.clone());
        }
        let repo = FeatureRepo::open(&self.dir)?;
        if repo.spec().push_sources.is_empty() {
            return Err(Error::new(
                ErrorKind::NotFound,
                "this repo has no push source; declare one as [[push_source]] in skewless.toml \
                 (name and source table)",
            ));
        }
        let registry = repo.applied()?;
        let engine = repo.engine()?;
        let store = open_online(&mut handles, &repo)?;
        let options = PushOptions::from_repo(&repo)?;
        let pushing = Arc::new(Pushing {
            service: PushService::open(&repo, &registry, &engine, store, options)?,
            _engine: engine,
        });
        handles.push = Some(pushing.clone());
        Ok(pushing)
    }
}

/// Waits until the committer committed a push's rows (or [`push::ACK_TIMEOUT`], or Ctrl-C).
fn wait_for_commit(
    mut committed: tokio::sync::oneshot::Receiver<()>,
    interrupt: &Interrupt,
) -> Result<()> {
    use tokio::sync::oneshot::error::TryRecvError;
    let started = Instant::now();
    loop {
        match committed.try_recv() {
            Ok(()) => return Ok(()),
            Err(TryRecvError::Closed) => {
                return Err(push::not_committed("the push committer stopped"));
            }
            Err(TryRecvError::Empty) if interrupt.is_requested() => {
                return Err(push::not_committed(
                    "the wait for their offline commit was interrupted",
                ));
            }
            Err(TryRecvError::Empty) if started.elapsed() > push::ACK_TIMEOUT => {
                return Err(push::not_committed(&format!(
                    "were not committed to the offline store within {} s",
                    push::ACK_TIMEOUT.as_secs()
                )));
            }
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn open_online(handles: &mut Handles, repo: &FeatureRepo) -> Result<Arc<dyn OnlineStore>> {
    if let Some(store) = &handles.online {
        return Ok(store.clone());
    }
    let store = skewless_runtime::online::open(&repo.online_config())?;
    handles.online = Some(store.clone());
    Ok(store)
}

pub(crate) fn tuple(done: Materialized) -> MaterializedTuple {
    (
        done.view,
        done.rows,
        done.dropped_rows,
        done.online_written,
        done.snapshot.map(|s| s.snapshot_id),
        done.skipped,
        done.digest,
        done.window,
        done.elapsed.as_secs_f64(),
        done.mode,
        done.source_snapshot,
    )
}

/// An online answer, held as Arrow until Python asks for a part of it (each part crosses to
/// pyarrow on its own, so a caller that reads only the values pays for nothing else).
#[pyclass(module = "skewless._native", name = "OnlineAnswer", frozen)]
#[derive(Debug)]
pub(crate) struct PyOnlineAnswer {
    values: RecordBatch,
    statuses: RecordBatch,
    times: RecordBatch,
    digests: Vec<(String, String)>,
}

#[pymethods]
impl PyOnlineAnswer {
    /// Join keys, then features, as a `pyarrow.RecordBatch`.
    fn values(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        batch_to_py(py, &self.values)
    }

    /// One status column per feature (`PRESENT`, ...), as a `pyarrow.RecordBatch`.
    fn statuses(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        batch_to_py(py, &self.statuses)
    }

    /// One event-time column per feature, as a `pyarrow.RecordBatch`.
    fn event_timestamps(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        batch_to_py(py, &self.times)
    }

    /// The component digest of each view served, in first-use order.
    #[getter]
    fn digests(&self) -> Vec<(String, String)> {
        self.digests.clone()
    }

    /// The number of entity rows answered.
    #[getter]
    fn rows(&self) -> usize {
        self.values.num_rows()
    }
}

/// A training set: the entity rows and their features, with the snapshots and digests it was
/// built from in its schema metadata (as the CLI writes them into its Parquet file).
#[pyclass(module = "skewless._native", name = "TrainingSet", frozen)]
#[derive(Debug)]
pub(crate) struct PyTrainingSet {
    batch: RecordBatch,
    snapshots: String,
    digests: String,
    spill_files: usize,
    spill_bytes: u64,
    feature_rows: u64,
}

impl PyTrainingSet {
    fn new(set: TrainingSet, as_of_ms: Option<i64>) -> Result<Self> {
        let json = |value: &dyn erased::Json| value.json();
        let snapshots = json(&set.snapshots);
        let digests = json(&set.digests);
        // The CLI's metadata, key for key, so the two outputs are the same bytes.
        let mut metadata = std::collections::HashMap::from([
            ("skewless.snapshots".to_owned(), snapshots.clone()),
            ("skewless.digests".to_owned(), digests.clone()),
        ]);
        if let Some(ms) = as_of_ms {
            metadata.insert("skewless.as_of_ms".to_owned(), ms.to_string());
        }
        let schema = Arc::new(set.batch.schema().as_ref().clone().with_metadata(metadata));
        let batch = set
            .batch
            .with_schema(schema)
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        Ok(PyTrainingSet {
            batch,
            snapshots,
            digests,
            spill_files: set.spill_files,
            spill_bytes: set.spill_bytes,
            feature_rows: set.feature_rows,
        })
    }
}

/// JSON the way the CLI writes it (`serde_json::to_string`, empty on failure).
mod erased {
    pub(super) trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

#[pymethods]
impl PyTrainingSet {
    /// The training set as a `pyarrow.Table` (no copy).
    fn to_arrow(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        table_to_py(py, self.batch.schema(), vec![self.batch.clone()])
    }

    /// Writes it to a Parquet file exactly as `skewless historical --out` does; returns the
    /// rows written.
    fn write_parquet(&self, py: Python<'_>, path: PathBuf) -> PyResult<usize> {
        signals::detach(py, || {
            write_batches(
                &path,
                self.batch.schema(),
                std::slice::from_ref(&self.batch),
            )
        })
        .map_err(py_err)
    }

    /// The snapshot read per batch view, as JSON (`{"view": id | null}`).
    #[getter]
    fn snapshots_json(&self) -> &str {
        &self.snapshots
    }

    /// The component digest per view used, as JSON.
    #[getter]
    fn digests_json(&self) -> &str {
        &self.digests
    }

    /// Spill files written (0: the feature rows fit the memory budget) and their bytes.
    #[getter]
    fn spilled(&self) -> (usize, u64) {
        (self.spill_files, self.spill_bytes)
    }

    /// Feature rows joined, over the views read (what the CLI prints as "N feature rows
    /// joined"): the rows in the labels' time range whose key some entity row asks for.
    #[getter]
    fn feature_rows(&self) -> u64 {
        self.feature_rows
    }
}
