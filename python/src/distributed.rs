//! The stages of distributed jobs, for `skewless.ray` (or any engine that runs Python
//! functions on workers): plain functions of a repo folder and JSON, so that each stage can
//! run in another process or on another machine with nothing but the repo's folder and its
//! stores reachable there.
//!
//! - `materialize_plan` → `materialize_part` (one per part, on workers) →
//!   `materialize_commit` (or `materialize_abort`): the stages of
//!   `skewless_runtime::materialize::distributed`, the local job's own code split in three;
//! - `entity_partitions`: the partition of each entity row by a stable hash of its join keys,
//!   for historical retrieval split by entity (each part is then an ordinary retrieval).
//!
//! Every call releases the GIL (and puts the engine's trap handlers back first, see
//! `signals`).

use std::path::PathBuf;

use pyo3::prelude::*;
use skewless_runtime::materialize::{Job, Options, PartDone, PartPlan, key_partitions};
use skewless_runtime::online::{EntityKey, OnlineStore, StoredRow, WriteStats};
use skewless_runtime::registry::{FeatureRef, FeatureRepo, OpenedRepo};
use skewless_runtime::{Error, ErrorKind, Result};

use crate::arrow_io::Input;
use crate::errors::py_err;
use crate::signals;
use crate::store::{MaterializedTuple, tuple};

/// The online store of the driver's stages (plan, commit, abort), which never write online:
/// the workers do. Not opening the real one keeps the driver from locking the embedded store
/// (or needing a connection) for nothing.
#[derive(Debug)]
struct NoOnline;

impl OnlineStore for NoOnline {
    fn write(&self, _: &str, _: &[(EntityKey, StoredRow)]) -> Result<WriteStats> {
        Err(NoOnline::error())
    }
    fn read(&self, _: &str, _: &[EntityKey]) -> Result<Vec<Option<StoredRow>>> {
        Err(NoOnline::error())
    }
    fn delete_view(&self, _: &str) -> Result<()> {
        Err(NoOnline::error())
    }
    fn ping(&self) -> Result<()> {
        Err(NoOnline::error())
    }
    fn backend(&self) -> &'static str {
        "none"
    }
}

impl NoOnline {
    fn error() -> Error {
        Error::new(
            ErrorKind::Internal,
            "a distributed job's driver stage tried to use the online store",
        )
    }
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("this is not a {what} made by this version of skewless: {e}"),
        )
    })
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))
}

/// The batch and aggregate views of the repo: what `materialize` runs when given no views.
#[pyfunction]
pub(crate) fn materialize_views(py: Python<'_>, repo_path: PathBuf) -> PyResult<Vec<String>> {
    signals::detach(py, || {
        let repo = FeatureRepo::open(&repo_path)?;
        let spec = repo.spec();
        Ok((spec.batch_views.iter().map(|v| v.name.clone()))
            .chain(spec.aggregate_views.iter().map(|v| v.name.clone()))
            .collect())
    })
    .map_err(py_err)
}

/// Plans a distributed materialization of `view` in at most `parts` parts: the plan as JSON
/// and its number of parts (0 when there is nothing to read or do).
#[pyfunction]
#[pyo3(signature = (repo_path, view, parts, start_us=None, end_us=None, incremental=false))]
pub(crate) fn materialize_plan(
    py: Python<'_>,
    repo_path: PathBuf,
    view: String,
    parts: usize,
    start_us: Option<i64>,
    end_us: Option<i64>,
    incremental: bool,
) -> PyResult<(String, usize, Option<String>)> {
    signals::detach(py, || {
        let opened = OpenedRepo::open(&repo_path)?;
        let job = Job {
            context: opened.context(),
            online: &NoOnline,
        };
        let options = Options {
            start_us,
            end_us,
            incremental,
            ..Options::default()
        };
        let plan = job.plan_parts(&view, &options, parts)?;
        Ok((to_json(&plan)?, plan.parts.len(), plan.skipped.clone()))
    })
    .map_err(py_err)
}

/// Runs part `part` of a plan: writes its data files (uncommitted) and its online rows;
/// returns what it did as JSON, for `materialize_commit`. `threads`: worker threads (0: the
/// cores).
#[pyfunction]
#[pyo3(signature = (repo_path, plan_json, part, threads=0))]
pub(crate) fn materialize_part(
    py: Python<'_>,
    repo_path: PathBuf,
    plan_json: &str,
    part: usize,
    threads: usize,
) -> PyResult<String> {
    signals::detach(py, || {
        let plan: PartPlan = parse("materialization plan", plan_json)?;
        let opened = OpenedRepo::open(&repo_path)?;
        // Opened for this part and closed when it ends: the embedded store is locked by the
        // process that holds it, and a worker process runs other tasks after this one.
        let online = skewless_runtime::online::open(&opened.context().repo.online_config())?;
        let job = Job {
            context: opened.context(),
            online: online.as_ref(),
        };
        let options = Options {
            threads,
            ..Options::default()
        };
        to_json(&job.run_part(&plan, part, &options)?)
    })
    .map_err(py_err)
}

/// Commits every part's files as one snapshot (see `Job::commit_parts`); returns the view's
/// result as `NativeStore.materialize` does.
#[pyfunction]
pub(crate) fn materialize_commit(
    py: Python<'_>,
    repo_path: PathBuf,
    plan_json: &str,
    done_json: Vec<String>,
) -> PyResult<MaterializedTuple> {
    signals::detach(py, || {
        let plan: PartPlan = parse("materialization plan", plan_json)?;
        let done = done_json
            .iter()
            .map(|json| parse::<PartDone>("part result", json))
            .collect::<Result<Vec<_>>>()?;
        let opened = OpenedRepo::open(&repo_path)?;
        let job = Job {
            context: opened.context(),
            online: &NoOnline,
        };
        job.commit_parts(&plan, &done).map(tuple)
    })
    .map_err(py_err)
}

/// Deletes every data file a plan's parts wrote (for a job that commits nothing).
#[pyfunction]
pub(crate) fn materialize_abort(
    py: Python<'_>,
    repo_path: PathBuf,
    plan_json: &str,
) -> PyResult<()> {
    signals::detach(py, || {
        let plan: PartPlan = parse("materialization plan", plan_json)?;
        let opened = OpenedRepo::open(&repo_path)?;
        let job = Job {
            context: opened.context(),
            online: &NoOnline,
        };
        job.abort_parts(&plan)
    })
    .map_err(py_err)
}

/// The partition (of `count`) of each entity row, by a stable hash of the join keys of the
/// views the features come from (`features`, or a `feature_service`'s), in the order the
/// views first name them; rows with the same keys share a partition.
#[pyfunction]
#[pyo3(signature = (repo_path, entities, count, features=None, feature_service=None))]
pub(crate) fn entity_partitions(
    py: Python<'_>,
    repo_path: PathBuf,
    entities: &Bound<'_, PyAny>,
    count: u32,
    features: Option<Vec<String>>,
    feature_service: Option<String>,
) -> PyResult<Vec<u32>> {
    let entities = Input::read(entities)?;
    signals::detach(py, || {
        let entities = entities.into_batch()?;
        let repo = FeatureRepo::open(&repo_path)?;
        let features = match (&feature_service, &features) {
            (Some(name), None) => repo.feature_service(name)?.features.clone(),
            (None, Some(features)) => features.clone(),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "pass either `features` or `feature_service`, not both and not neither",
                ));
            }
        };
        let spec = repo.spec();
        let mut entity_names: Vec<&String> = Vec::new();
        for feature in &features {
            let view = FeatureRef::parse(feature.trim())?.view;
            let of_view = (spec.batch_views.iter().find(|v| v.name == view))
                .map(|v| &v.entities)
                .or_else(|| {
                    (spec.aggregate_views.iter().find(|v| v.name == view)).map(|v| &v.entities)
                })
                .or_else(|| {
                    (spec.request_views.iter().find(|v| v.name == view)).map(|v| &v.entities)
                });
            for name in of_view.into_iter().flatten() {
                if !entity_names.contains(&name) {
                    entity_names.push(name);
                }
            }
        }
        let names: Vec<String> = entity_names.into_iter().cloned().collect();
        let keys = skewless_runtime::apply::join_keys(&repo, &names);
        key_partitions(&entities, &keys, count)
    })
    .map_err(py_err)
}
