//! Historical retrieval: point-in-time correct training sets.
//!
//! Given entity rows (join keys, an `event_timestamp` label time `T`, any other columns),
//! every requested feature takes the value of the feature row with the same key and the
//! greatest `(event_ts, created_ts)` at or before `T` (and within the view's TTL), exact
//! version ties broken as the online store breaks them (by the rows' stored bytes; the rule
//! is stated once, in `online/row.rs`) — see [`asof`]. To break them, a batch view's scan
//! also reads the features that precede the requested ones. Request-time views run their component over the joined rows: the same component
//! and the same call path as online serving. Output rows are the input rows, in input order,
//! with all their columns, plus one column per requested feature.
//!
//! Features of aggregate views are each aggregation's value at `T` over the entity's rows in
//! the view's feature table, by the one definition of `aggregate` (module `aggregate` here),
//! with the view's TTL judged as for batch views.
//!
//! `as_of` pins every feature table to the snapshot that was current at that moment (Iceberg
//! time travel), so a training set can be rebuilt exactly after later materializations. The
//! snapshot ids and component digests used are returned (and written into the output file's
//! metadata by the CLI).
//!
//! Memory is bounded by a setting, [`MemoryBudget`], not by the size of the feature tables:
//! each stored view's feature rows stream from the scan (the time range `[min T - ttl, max T]`
//! and the needed columns pushed down), lose at once the rows whose key no entity row asks
//! for (module `filter`: a semi-join per scanned batch, so what is held follows the entity
//! rows' keys, not the table), and go into [`partition`], which joins them in memory when
//! they fit the budget (one piece, the fast path) and otherwise hash-partitions both sides
//! by entity key, spilling feature rows to temporary Arrow IPC files (module `spill`) under
//! the repo's `.skewless/tmp` (removed on success and on failure; only a killed process
//! leaves its `historical-*` folder behind, safe to delete), and joins partition by
//! partition. Batch and aggregate views go the same way, except that an aggregate view's rows
//! held in memory are split by key hash into pieces computed on all cores (the answers do not
//! depend on the grouping). What the budget does not cover,
//! and stays proportional to the entity rows: the entity rows themselves, their keys and
//! label times, and the output (the entity rows plus one column per feature), which is built
//! whole before it is written; and the scan's own read-ahead (a few Parquet row groups,
//! independent of the table size).

mod aggregate;
pub mod asof;
mod filter;
mod keys;
pub mod partition;
mod spill;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field as ArrowField, Schema, TimeUnit};
use futures::TryStreamExt;

use crate::apply::{CREATED_TS, EVENT_TS, join_keys};
use crate::error::{Error, ErrorKind, Result};
use crate::offline::ScanOptions;
use crate::online::EntityKey;
use crate::registry::{AppliedView, FeatureRef, RepoContext, RepoSpec, ViewKind};
use crate::signature::UTC;
use filter::KeyFilter;
use keys::entity_keys;
pub use partition::MemoryBudget;
use spill::SpillDir;

/// The label-time column of an entity file.
pub const LABEL_TIME: &str = "event_timestamp";

/// What to retrieve.
#[derive(Debug, Clone)]
pub struct Request {
    /// Features, `view:feature` or `view:*`.
    pub features: Vec<FeatureRef>,
    /// Name output columns `view__feature` instead of `feature`.
    pub full_feature_names: bool,
    /// Pin every feature table to the snapshot current at this time (ms since the epoch).
    pub as_of_ms: Option<i64>,
    /// The memory the join of feature rows may use, and where it spills the rest.
    pub memory: MemoryBudget,
}

/// A training set and what it was built from.
#[derive(Debug)]
pub struct TrainingSet {
    /// Input rows and columns, then one column per feature.
    pub batch: RecordBatch,
    /// Snapshot id read per batch or aggregate view (`None`: the table had no data at
    /// `as_of`).
    pub snapshots: BTreeMap<String, Option<i64>>,
    /// Component digest per view used.
    pub digests: BTreeMap<String, String>,
    /// Spill files written (0: every view's feature rows fit the memory budget).
    pub spill_files: usize,
    /// Bytes written to spill files (Arrow IPC, uncompressed).
    pub spill_bytes: u64,
    /// Feature rows joined, summed over the batch and aggregate views read: the rows of the
    /// feature tables in the labels' time range whose key some entity row asks for. The rest
    /// are dropped as they are scanned, so this is what memory and spilling are spent on.
    pub feature_rows: u64,
}

/// Historical retrieval over a repo and its stores.
#[derive(Debug)]
pub struct Retrieval<'a> {
    /// The repo and its stores.
    pub context: RepoContext<'a>,
}

impl Retrieval<'_> {
    /// Builds the training set for `entities`.
    pub fn run(&self, entities: &RecordBatch, request: &Request) -> Result<TrainingSet> {
        request.memory.check()?;
        let labels = label_times(entities)?;
        let wanted = self.expand(&request.features)?;
        // Stored features that request-time views read, fetched even when not requested.
        let mut stored: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &wanted {
            if self.kind(&r.view)? != ViewKind::Request {
                push_unique(stored.entry(r.view.clone()).or_default(), &r.feature);
            } else {
                for source in self.request_view(&r.view)?.inputs.values() {
                    if let Some(f) = &source.feature {
                        let f = FeatureRef::parse(f)?;
                        // `skewless.toml` may have changed since `apply`: the input must
                        // still name an applied feature.
                        self.expand(std::slice::from_ref(&f)).map_err(|e| {
                            e.with_context("view", &r.view)
                                .with_context("hint", "run `skewless apply` to check the repo")
                        })?;
                        push_unique(stored.entry(f.view.clone()).or_default(), &f.feature);
                    }
                }
            }
        }
        // Dropped (and its folder removed) when `run` returns, whether it succeeds or not.
        let mut spill = SpillDir::new(match &request.memory.spill_dir {
            Some(dir) => dir.clone(),
            None => self.context.repo.state_dir().join("tmp"),
        });
        // The entity rows' keys, built once per list of join keys (views on the same entities
        // share them).
        let mut keys_by_join_keys = Vec::new();
        let mut joined: BTreeMap<(String, String), ArrayRef> = BTreeMap::new();
        let mut snapshots = BTreeMap::new();
        let mut digests = BTreeMap::new();
        let mut feature_rows = 0;
        for (view, features) in &stored {
            let in_view = |e: Error| e.with_context("view", view);
            let kind = self.kind(view)?;
            let entities_of_view = match kind {
                ViewKind::Aggregate => &self.aggregate_view(view).map_err(in_view)?.entities,
                _ => {
                    &self
                        .context
                        .repo
                        .batch_view(view)
                        .map_err(in_view)?
                        .entities
                }
            };
            let key_list = join_keys(self.context.repo, entities_of_view);
            let index = match keys_by_join_keys.iter().position(|(k, _)| *k == key_list) {
                Some(index) => index,
                None => {
                    let keys = entity_keys(entities, &key_list).map_err(in_view)?;
                    keys_by_join_keys.push((key_list, keys));
                    keys_by_join_keys.len() - 1
                }
            };
            let keys = &keys_by_join_keys[index].1;
            let (columns, snapshot, rows) = self
                .join_view(view, kind, features, keys, &labels, request, &mut spill)
                .map_err(in_view)?;
            feature_rows += rows;
            for (feature, column) in features.iter().zip(columns) {
                joined.insert((view.clone(), feature.clone()), column);
            }
            snapshots.insert(view.clone(), snapshot);
            digests.insert(view.clone(), self.applied(view)?.digest.clone());
        }
        let mut outputs: Vec<(String, ArrayRef)> = Vec::new();
        let mut computed: BTreeMap<String, RecordBatch> = BTreeMap::new();
        for r in &wanted {
            let column = match self.kind(&r.view)? {
                ViewKind::Batch | ViewKind::Aggregate => {
                    joined[&(r.view.clone(), r.feature.clone())].clone()
                }
                ViewKind::Request => {
                    if !computed.contains_key(&r.view) {
                        let out = self
                            .compute_request_view(&r.view, entities, &joined)
                            .map_err(|e| e.with_context("view", &r.view))?;
                        digests.insert(r.view.clone(), self.applied(&r.view)?.digest.clone());
                        computed.insert(r.view.clone(), out);
                    }
                    computed[&r.view]
                        .column_by_name(&r.feature)
                        .cloned()
                        .ok_or_else(|| {
                            Error::new(
                                ErrorKind::NotFound,
                                format!("view `{}` has no output `{}`", r.view, r.feature),
                            )
                        })?
                }
            };
            let name = match request.full_feature_names {
                true => format!("{}__{}", r.view, r.feature),
                false => r.feature.clone(),
            };
            outputs.push((name, column));
        }
        let (spill_files, spill_bytes) = spill.spilled();
        Ok(TrainingSet {
            batch: assemble(entities, outputs)?,
            snapshots,
            digests,
            spill_files,
            spill_bytes,
            feature_rows,
        })
    }

    /// The applied record of `view`; an error naming the known views (and saying to run
    /// `apply` when `skewless.toml` names a view the registry does not have yet).
    fn applied(&self, view: &str) -> Result<&AppliedView> {
        self.context.registry.views.get(view).ok_or_else(|| {
            let known: Vec<&str> = self
                .context
                .registry
                .views
                .keys()
                .map(String::as_str)
                .collect();
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "there is no applied view `{view}` (applied views: [{}]); if `skewless.toml` \
                     declares it, run `skewless apply` first",
                    known.join(", ")
                ),
            )
        })
    }

    fn kind(&self, view: &str) -> Result<ViewKind> {
        Ok(self.applied(view)?.kind)
    }

    fn aggregate_view(&self, view: &str) -> Result<&crate::registry::AggregateViewSpec> {
        self.context
            .repo
            .spec()
            .aggregate_views
            .iter()
            .find(|v| v.name == view)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "there is no aggregate view `{view}` in skewless.toml; run `skewless \
                         apply` to check the repo"
                    ),
                )
            })
    }

    fn request_view(&self, view: &str) -> Result<&crate::registry::RequestViewSpec> {
        self.context
            .repo
            .spec()
            .request_views
            .iter()
            .find(|v| v.name == view)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("there is no request view `{view}`"),
                )
            })
    }

    /// `view:*` expanded; every feature checked against the applied signatures.
    fn expand(&self, features: &[FeatureRef]) -> Result<Vec<FeatureRef>> {
        let mut out = Vec::new();
        for r in features {
            let names = self.applied(&r.view)?.features();
            if r.feature == "*" {
                out.extend(names.iter().map(|f| FeatureRef {
                    view: r.view.clone(),
                    feature: (*f).to_owned(),
                }));
            } else if !names.contains(&r.feature.as_str()) {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "view `{}` has no feature `{}` (features: [{}])",
                        r.view,
                        r.feature,
                        names.join(", ")
                    ),
                ));
            } else {
                out.push(r.clone());
            }
        }
        Ok(out)
    }

    /// The point-in-time join of one batch view, or the aggregates of one aggregate view: one
    /// column per feature, aligned with the entity rows, the snapshot read and the number of
    /// feature rows joined.
    #[expect(
        clippy::too_many_arguments,
        reason = "one join for both kinds of stored view: the view, its kind, what to answer"
    )]
    fn join_view(
        &self,
        view: &str,
        kind: ViewKind,
        features: &[String],
        entity_keys: &[EntityKey],
        labels: &[i64],
        request: &Request,
        spill: &mut SpillDir,
    ) -> Result<(Vec<ArrayRef>, Option<i64>, u64)> {
        let rt = self.context.runtime;
        let (entities, ttl) = match kind {
            ViewKind::Aggregate => {
                let spec = self.aggregate_view(view)?;
                let ttl = spec.ttl.as_deref().map(crate::registry::parse_duration);
                (&spec.entities, ttl.transpose()?)
            }
            _ => {
                let spec = self.context.repo.batch_view(view)?;
                (&spec.entities, RepoSpec::ttl(spec)?)
            }
        };
        let keys = join_keys(self.context.repo, entities);
        let table = self.context.repo.feature_table(view)?;
        let applied = self.applied(view)?;
        let signature = &applied.signature;
        // The aggregations requested, in the order of `features`.
        let aggregations = match kind {
            ViewKind::Aggregate => {
                let all = applied.resolved_aggregations()?;
                features
                    .iter()
                    .map(|f| {
                        all.iter().find(|a| a.name == *f).cloned().ok_or_else(|| {
                            Error::new(
                                ErrorKind::NotFound,
                                format!(
                                    "aggregate view `{view}` has no applied aggregation `{f}`; \
                                     run `skewless apply`"
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            _ => Vec::new(),
        };
        let fields: Vec<ArrowField> = match kind {
            ViewKind::Aggregate => aggregations.iter().map(aggregate::field).collect(),
            _ => features
                .iter()
                .map(|f| {
                    signature.output(f).map(|f| f.to_arrow()).ok_or_else(|| {
                        Error::new(
                            ErrorKind::NotFound,
                            format!(
                                "view `{view}` has no applied feature `{f}`; run `skewless apply`"
                            ),
                        )
                    })
                })
                .collect::<Result<_>>()?,
        };
        let aggregations = (kind == ViewKind::Aggregate).then_some(aggregations.as_slice());
        // A batch view's exact version ties are broken by the stored bytes of the rows, so by
        // their values in the stored order: up to the last requested feature is enough.
        let tie_columns: Vec<String> = match aggregations {
            Some(_) => Vec::new(),
            None => {
                let all = applied.features();
                let last = features
                    .iter()
                    .filter_map(|f| all.iter().position(|a| a == f))
                    .max();
                last.map_or_else(Vec::new, |last| {
                    all[..=last].iter().map(|f| (*f).to_owned()).collect()
                })
            }
        };
        let snapshot = match request.as_of_ms {
            Some(ms) => rt.block_on(self.context.offline.snapshot_as_of(&table, ms))?,
            None => rt
                .block_on(self.context.offline.current_snapshot(&table))?
                .map(|s| s.snapshot_id),
        };
        let Some(snapshot_id) = snapshot else {
            if let Some(aggregations) = aggregations {
                // No rows at all: every entity's window is empty (or out of its TTL).
                let ids = KeyFilter::new(entity_keys, &keys);
                let query = partition::Query {
                    keys: entity_keys,
                    ids: &ids,
                    labels,
                    ttl,
                    key_columns: &keys,
                    fields: &fields,
                    tie_columns: &[],
                    aggregations: Some(aggregations),
                };
                let rows: Vec<u32> = (0..labels.len() as u32).collect();
                return Ok((
                    aggregate::compute(&query, aggregations, &[], &rows)?,
                    None,
                    0,
                ));
            }
            let nulls = fields
                .iter()
                .map(|f| arrow_array::new_null_array(f.data_type(), labels.len()))
                .collect();
            return Ok((nulls, None, 0));
        };
        let mut columns: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        columns.extend([EVENT_TS.to_owned(), CREATED_TS.to_owned()]);
        match aggregations {
            Some(aggregations) => columns.extend(
                aggregate::columns(aggregations)
                    .into_iter()
                    .map(String::from),
            ),
            None => {
                columns.extend(features.iter().cloned());
                columns.extend(
                    tie_columns
                        .iter()
                        .filter(|f| !features.contains(f))
                        .cloned(),
                );
            }
        }
        // Batches of the usual size rather than the reader's default of 1024 rows: a
        // partitioning round splits each batch `fan_out` ways.
        let mut scan = ScanOptions::default()
            .snapshot(snapshot_id)
            .columns(columns)
            .batch_size(crate::files::DEFAULT_BATCH_SIZE);
        if aggregations.is_none() {
            // The as-of join's answer does not depend on the order rows arrive in (exact
            // version ties are broken by the rows' values), so files are decoded on all
            // cores at once.
            scan = scan.decoders(crate::pipeline::cores());
        }
        if let (Some(&min), Some(&max)) = (labels.iter().min(), labels.iter().max()) {
            let start = match aggregations {
                // The widest window's rows (and the TTL's), not only the newest row's.
                Some(aggregations) => {
                    aggregate::scan_start(aggregations, ttl.map(crate::micros::duration), min)
                        .unwrap_or(i64::MIN)
                }
                None => min.saturating_sub(ttl.map_or(i64::MAX, crate::micros::duration)),
            };
            scan = scan.time_range(EVENT_TS, start, max.saturating_add(1));
        }
        let mut stream = rt.block_on(self.context.offline.scan(&table, scan))?;
        // The scan, a batch at a time, less the rows of keys no entity row asks for: only
        // what the budget allows of the rest is ever held.
        let filter = KeyFilter::new(entity_keys, &keys);
        let mut joined_rows = 0u64;
        let mut batches =
            std::iter::from_fn(|| rt.block_on(stream.try_next()).transpose()).map(|batch| {
                let kept = filter.keep(&batch?)?;
                joined_rows += kept.num_rows() as u64;
                Ok(kept)
            });
        let query = partition::Query {
            keys: entity_keys,
            ids: &filter,
            labels,
            ttl,
            key_columns: &keys,
            fields: &fields,
            tie_columns: &tie_columns,
            aggregations,
        };
        let columns = partition::join(&query, &mut batches, &request.memory, spill)?;
        drop(batches);
        Ok((columns, Some(snapshot_id), joined_rows))
    }

    /// Runs a request-time view over the entity rows joined with its stored inputs.
    fn compute_request_view(
        &self,
        view: &str,
        entities: &RecordBatch,
        joined: &BTreeMap<(String, String), ArrayRef>,
    ) -> Result<RecordBatch> {
        let spec = self.request_view(view)?;
        let transform = self.context.repo.verified_transform(
            self.context.engine,
            self.context.registry,
            view,
        )?;
        let mut fields = Vec::new();
        let mut columns = Vec::new();
        for input in &transform.signature().inputs {
            let no_source = || {
                Error::new(
                    ErrorKind::SchemaMismatch,
                    format!(
                        "request view `{view}`: the transform's input `{}` has no source; add \
                         `inputs.{0} = {{ request = \"...\" }}` or `{{ feature = \"view:feature\" }}` \
                         to skewless.toml and run `skewless apply`",
                        input.name
                    ),
                )
            };
            let source = spec.inputs.get(&input.name).ok_or_else(no_source)?;
            let column = match (&source.request, &source.feature) {
                (Some(field), _) => entities.column_by_name(field).cloned().ok_or_else(|| {
                    Error::new(
                        ErrorKind::SchemaMismatch,
                        format!("the entity rows have no column `{field}`, which request view `{view}` reads as input `{}`", input.name),
                    )
                    .with_context("column", field)
                })?,
                (None, Some(feature)) => {
                    let r = FeatureRef::parse(feature)?;
                    joined[&(r.view, r.feature)].clone()
                }
                (None, None) => return Err(no_source()),
            };
            fields.push(ArrowField::new(
                &input.name,
                column.data_type().clone(),
                true,
            ));
            columns.push(column);
        }
        let input =
            RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(internal)?;
        // The same call as online serving, in batches of the usual size.
        let size = crate::files::DEFAULT_BATCH_SIZE;
        let rows = input.num_rows();
        let outputs = (0..rows)
            .step_by(size)
            .map(|start| transform.run(&input.slice(start, size.min(rows - start))))
            .collect::<Result<Vec<_>>>()?;
        arrow_select::concat::concat_batches(transform.output_schema(), &outputs).map_err(internal)
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

/// The entity rows' label times, µs UTC.
fn label_times(entities: &RecordBatch) -> Result<Vec<i64>> {
    let column = entities.column_by_name(LABEL_TIME).ok_or_else(|| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!("the entity rows have no `{LABEL_TIME}` column (the label time of each row)"),
        )
        .with_context("column", LABEL_TIME)
    })?;
    let target = ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
    let cast = arrow_cast::cast(column, &target).map_err(|e| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "`{LABEL_TIME}` is {}, not a timestamp: {e}",
                column.data_type()
            ),
        )
        .with_context("column", LABEL_TIME)
    })?;
    let times = cast.as_primitive::<TimestampMicrosecondType>();
    if let Some(row) = (0..times.len()).find(|&i| times.is_null(i)) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{LABEL_TIME}` is null at row {row}; every entity row needs a label time"),
        )
        .with_context("column", LABEL_TIME));
    }
    Ok(times.values().to_vec())
}

/// Input columns, then the feature columns; a name clash is an error that says what to do.
fn assemble(entities: &RecordBatch, outputs: Vec<(String, ArrayRef)>) -> Result<RecordBatch> {
    let mut fields: Vec<ArrowField> = entities
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns = entities.columns().to_vec();
    for (name, column) in outputs {
        if fields.iter().any(|f| *f.name() == name) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "output column `{name}` appears twice (an entity column or two views' features); use --full-feature-names"
                ),
            ));
        }
        fields.push(ArrowField::new(name, column.data_type().clone(), true));
        columns.push(column);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(internal)
}

fn missing(name: &str) -> Error {
    Error::new(
        ErrorKind::SchemaMismatch,
        format!("missing column `{name}`"),
    )
    .with_context("column", name)
}

fn internal(e: arrow_schema::ArrowError) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("assembling the training set: {e}"),
    )
    .with_source(e)
}

/// The time (ms since the epoch) an as-of given as text pins a retrieval to: a snapshot id of
/// one of the requested views' feature tables (its commit time), or an RFC 3339 time. `what`
/// names the argument in errors (`--as-of`, `as_of`).
pub fn pinned_time(
    repo: &crate::registry::FeatureRepo,
    offline: &crate::offline::OfflineStore,
    runtime: &tokio::runtime::Runtime,
    features: &[FeatureRef],
    what: &str,
    text: &str,
) -> Result<i64> {
    let Ok(snapshot) = text.parse::<i64>() else {
        return Ok(crate::micros::parse_time(what, text)? / 1000);
    };
    for r in features {
        let Ok(table) = repo.feature_table(&r.view) else {
            continue;
        };
        if !runtime.block_on(offline.table_exists(&table))? {
            continue;
        }
        if let Some(s) = runtime
            .block_on(offline.snapshots(&table))?
            .into_iter()
            .find(|s| s.snapshot_id == snapshot)
        {
            return Ok(s.timestamp_ms);
        }
    }
    Err(Error::new(
        ErrorKind::NotFound,
        format!(
            "{what} names snapshot {snapshot}, which is not a snapshot of any requested view's \
             feature table; give one of their snapshot ids or an RFC 3339 time"
        ),
    ))
}
