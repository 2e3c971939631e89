//! `plan` and `apply`: check a feature repo against its data and register it.
//!
//! [`plan`] changes nothing. It loads every view's component, reads each source table's
//! schema, and checks: the transform's inputs against the source columns (names, types by
//! the same rule the data path applies, nullability), the entities' join keys and the
//! timestamp columns, output names against the columns the feature table adds, request-time
//! inputs against the stored features they read, feature services against the views. It
//! lists every problem, and the changes `apply` would make.
//!
//! [`apply`] refuses while there are problems; otherwise it creates the missing feature tables
//! (partitioned by day of the event timestamp) and writes the applied registry with each
//! view's component digest.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType as ArrowType, Field as ArrowField, Schema, SchemaRef, TimeUnit};

use crate::aggregate::{Aggregation, OutputType};
use crate::engine::TransformEngine;
use crate::error::Result;
use crate::offline::{OfflineStore, TableName};
use crate::registry::{
    AggregateViewSpec, AppliedRegistry, AppliedView, BatchViewSpec, FeatureRef, FeatureRepo,
    KeyType, NO_TRANSFORM, RequestViewSpec, ViewKind,
};
use crate::signature::{DataType, Field, Signature, UTC};
use skewless_engine::accepts;

/// The event-timestamp column of every feature table.
pub const EVENT_TS: &str = "event_ts";
/// The created-timestamp column of every feature table.
pub const CREATED_TS: &str = "created_ts";

/// One change `apply` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A view not in the registry yet.
    AddView {
        /// View name.
        view: String,
        /// Its component digest.
        digest: String,
    },
    /// A view whose component changed.
    UpdateView {
        /// View name.
        view: String,
        /// Digest in the registry.
        from: String,
        /// Digest of the component now.
        to: String,
    },
    /// An aggregate view whose aggregations changed (same component).
    UpdateAggregations {
        /// View name.
        view: String,
    },
    /// A view in the registry that `skewless.toml` no longer declares (its feature table is
    /// kept: Iceberg history is never deleted by apply).
    RemoveView {
        /// View name.
        view: String,
    },
    /// A feature table to create.
    CreateTable {
        /// The table.
        table: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddView { view, digest } => write!(f, "+ view {view} ({digest})"),
            Change::UpdateView { view, from, to } => write!(f, "~ view {view} ({from} -> {to})"),
            Change::UpdateAggregations { view } => write!(f, "~ view {view} (aggregations)"),
            Change::RemoveView { view } => write!(f, "- view {view} (feature table kept)"),
            Change::CreateTable { table } => write!(f, "+ table {table}"),
        }
    }
}

/// What `apply` would do, and what stops it.
#[derive(Debug)]
pub struct Plan {
    /// Changes, in order.
    pub changes: Vec<Change>,
    /// Problems; `apply` refuses while there are any.
    pub problems: Vec<String>,
    registry: AppliedRegistry,
    tables: Vec<(TableName, SchemaRef)>,
}

/// Checks the repo against its data; changes nothing.
pub async fn plan(
    repo: &FeatureRepo,
    engine: &TransformEngine,
    offline: &OfflineStore,
) -> Result<Plan> {
    let spec = repo.spec();
    let mut problems = Vec::new();
    // What each view's component is, as the registry will record it.
    let mut views: BTreeMap<String, AppliedView> = BTreeMap::new();
    let mut tables = Vec::new();

    for view in &spec.batch_views {
        let at = format!("batch view `{}`", view.name);
        let table = repo.feature_table(&view.name)?;
        let Some(applied) = load(
            repo,
            engine,
            &at,
            &view.transform,
            &mut problems,
            Some(&table),
        ) else {
            continue;
        };
        let checked =
            check_batch_view(repo, offline, view, &applied.signature, &mut problems).await?;
        views.insert(view.name.clone(), applied);
        if let Some(schema) = checked {
            plan_table(offline, &at, table, schema, &mut tables, &mut problems).await?;
        }
    }
    for view in &spec.aggregate_views {
        let at = format!("aggregate view `{}`", view.name);
        let table = repo.feature_table(&view.name)?;
        if let Some(applied) =
            check_aggregate_view(repo, engine, offline, view, &table, &mut problems).await?
        {
            let keys = join_keys(repo, &view.entities);
            let schema = feature_table_schema(&keys, &applied.signature);
            views.insert(view.name.clone(), applied);
            plan_table(offline, &at, table, schema, &mut tables, &mut problems).await?;
        }
    }
    for view in &spec.request_views {
        let at = format!("request view `{}`", view.name);
        let Some(applied) = load(repo, engine, &at, &view.transform, &mut problems, None) else {
            continue;
        };
        check_request_view(view, &applied.signature, &views, &mut problems);
        views.insert(view.name.clone(), applied);
    }
    for service in &spec.feature_services {
        for feature in &service.features {
            let Ok(r) = FeatureRef::parse(feature) else {
                continue;
            };
            if let Some(view) = views.get(&r.view)
                && r.feature != "*"
                && !view.features().contains(&r.feature.as_str())
            {
                problems.push(format!(
                    "feature service `{}` lists `{r}`, but view `{}` has no output `{}` (outputs: [{}])",
                    service.name,
                    r.view,
                    r.feature,
                    view.features().join(", ")
                ));
            }
        }
    }

    let previous = AppliedRegistry::load(&repo.registry_path())?.unwrap_or_default();
    let mut changes = Vec::new();
    for (name, view) in &views {
        match previous.views.get(name) {
            None => changes.push(Change::AddView {
                view: name.clone(),
                digest: view.digest.clone(),
            }),
            Some(old) if old.digest != view.digest => changes.push(Change::UpdateView {
                view: name.clone(),
                from: old.digest.clone(),
                to: view.digest.clone(),
            }),
            Some(old) if old.aggregations != view.aggregations => {
                changes.push(Change::UpdateAggregations { view: name.clone() })
            }
            Some(_) => {}
        }
    }
    let registry = AppliedRegistry {
        project: spec.project.name.clone(),
        views,
    };
    for name in previous.views.keys() {
        if !registry.views.contains_key(name) {
            changes.push(Change::RemoveView { view: name.clone() });
        }
    }
    changes.extend(tables.iter().map(|(t, _)| Change::CreateTable {
        table: t.to_string(),
    }));
    Ok(Plan {
        changes,
        problems,
        registry,
        tables,
    })
}

/// Checks, then creates the missing feature tables (asking for snappy-compressed data files:
/// `offline::compression`'s `FEATURE_TABLE_CODEC` says why) and writes the registry.
pub async fn apply(
    repo: &FeatureRepo,
    engine: &TransformEngine,
    offline: &OfflineStore,
) -> Result<Plan> {
    let plan = plan(repo, engine, offline).await?;
    if !plan.problems.is_empty() {
        return Err(crate::registry::problems_error(&plan.problems)
            .with_context("repo", repo.dir().display()));
    }
    for (table, schema) in &plan.tables {
        let properties = HashMap::from([
            ("skewless.project".to_owned(), plan.registry.project.clone()),
            (
                crate::offline::COMPRESSION_CODEC.to_owned(),
                crate::offline::FEATURE_TABLE_CODEC.to_owned(),
            ),
        ]);
        offline
            .create_table_if_missing(table, schema, Some(EVENT_TS), properties)
            .await?;
    }
    plan.registry.save(&repo.registry_path())?;
    Ok(plan)
}

/// Loads a view's component as the registry records it, or records a problem and returns
/// `None` when it does not load. `table` is the feature table of a batch view.
fn load(
    repo: &FeatureRepo,
    engine: &TransformEngine,
    at: &str,
    transform: &std::path::Path,
    problems: &mut Vec<String>,
    table: Option<&TableName>,
) -> Option<AppliedView> {
    match engine.load_file(repo.dir().join(transform)) {
        Ok(t) => Some(AppliedView {
            kind: if table.is_some() {
                ViewKind::Batch
            } else {
                ViewKind::Request
            },
            transform: Some(transform.to_owned()),
            digest: t.digest().to_owned(),
            signature: t.signature().clone(),
            table: table.map(ToString::to_string),
            aggregations: Vec::new(),
        }),
        Err(e) => {
            problems.push(format!("{at}: {e}"));
            None
        }
    }
}

/// Plans the creation of a view's feature table, or checks that the existing one has the
/// columns the view now produces.
async fn plan_table(
    offline: &OfflineStore,
    at: &str,
    table: TableName,
    schema: SchemaRef,
    tables: &mut Vec<(TableName, SchemaRef)>,
    problems: &mut Vec<String>,
) -> Result<()> {
    if !offline.table_exists(&table).await? {
        tables.push((table, schema));
        return Ok(());
    }
    let existing = offline.arrow_schema(&table).await?;
    if !same_columns(&existing, &schema) {
        problems.push(format!(
            "{at}: feature table {table} exists with other columns than the view now produces; \
             changing a view's outputs is not supported yet: give the changed view a new name"
        ));
    }
    Ok(())
}

/// Checks a batch view against its source; returns its feature table's schema when sound.
async fn check_batch_view(
    repo: &FeatureRepo,
    offline: &OfflineStore,
    view: &BatchViewSpec,
    signature: &Signature,
    problems: &mut Vec<String>,
) -> Result<Option<SchemaRef>> {
    let at = format!("batch view `{}`", view.name);
    let before = problems.len();
    let source = TableName::parse(&view.source)?;
    if !offline.table_exists(&source).await? {
        problems.push(format!(
            "{at}: source table {source} does not exist; ingest data with \
             `skewless ingest {source} --from <file> --create`"
        ));
        return Ok(None);
    }
    let schema = offline.arrow_schema(&source).await?;
    let column = |name: &str| schema.field_with_name(name).ok();
    let columns = || {
        schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for input in &signature.inputs {
        match column(&input.name) {
            None => problems.push(format!(
                "{at}: the transform's input `{}` ({}) has no column in {source} (columns: [{}])",
                input.name,
                input.data_type,
                columns()
            )),
            Some(f) if !accepts(input.data_type, f.data_type()) => problems.push(format!(
                "{at}: column `{}` of {source} is {}, but the transform declares it {}",
                input.name,
                f.data_type(),
                input.data_type
            )),
            Some(f) if f.is_nullable() && !input.nullable => problems.push(format!(
                "{at}: column `{}` of {source} may be null, but the transform declares it not null",
                input.name
            )),
            Some(_) => {}
        }
    }
    let keys = join_keys(repo, &view.entities);
    for (key, key_type) in &keys {
        match column(key) {
            None => problems.push(format!(
                "{at}: join key `{key}` has no column in {source} (columns: [{}])",
                columns()
            )),
            Some(f) if !key_accepts(*key_type, f.data_type()) => problems.push(format!(
                "{at}: join key `{key}` is {} in {source}, but the entity declares it {key_type:?}",
                f.data_type()
            )),
            Some(_) => {}
        }
    }
    let timestamps = [Some(&view.event_timestamp), view.created_timestamp.as_ref()];
    for ts in timestamps.into_iter().flatten() {
        match column(ts) {
            None => problems.push(format!(
                "{at}: timestamp column `{ts}` is not in {source} (columns: [{}])",
                columns()
            )),
            Some(f) if !matches!(f.data_type(), ArrowType::Timestamp(..)) => {
                problems.push(format!(
                    "{at}: column `{ts}` of {source} is {}, not a timestamp",
                    f.data_type()
                ))
            }
            Some(_) => {}
        }
    }
    for output in &signature.outputs {
        let reserved = output.name == EVENT_TS
            || output.name == CREATED_TS
            || keys.iter().any(|(k, _)| *k == output.name);
        if reserved {
            problems.push(format!(
                "{at}: the transform's output `{}` has the name of a column the feature table \
                 already has (join keys, `{EVENT_TS}`, `{CREATED_TS}`); rename the output",
                output.name
            ));
        }
    }
    if problems.len() > before {
        return Ok(None);
    }
    Ok(Some(feature_table_schema(&keys, signature)))
}

/// Checks an aggregate view: its source, keys and timestamps, its transform if any, and every
/// aggregation against the type of the column it aggregates (the transform's output, or the
/// source column without a transform). Returns what the registry records for it when sound:
/// its component (or the identity over the source columns aggregated) and its aggregations.
async fn check_aggregate_view(
    repo: &FeatureRepo,
    engine: &TransformEngine,
    offline: &OfflineStore,
    view: &AggregateViewSpec,
    table: &TableName,
    problems: &mut Vec<String>,
) -> Result<Option<AppliedView>> {
    let at = format!("aggregate view `{}`", view.name);
    let before = problems.len();
    let source = TableName::parse(&view.source)?;
    if !offline.table_exists(&source).await? {
        problems.push(format!(
            "{at}: source table {source} does not exist; ingest data with \
             `skewless ingest {source} --from <file> --create`"
        ));
        return Ok(None);
    }
    let schema = offline.arrow_schema(&source).await?;
    let source_columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    for (key, key_type) in join_keys(repo, &view.entities) {
        match schema.field_with_name(&key) {
            Err(_) => problems.push(format!(
                "{at}: join key `{key}` has no column in {source} (columns: [{}])",
                source_columns.join(", ")
            )),
            Ok(f) if !key_accepts(key_type, f.data_type()) => problems.push(format!(
                "{at}: join key `{key}` is {} in {source}, but the entity declares it {key_type:?}",
                f.data_type()
            )),
            Ok(_) => {}
        }
    }
    for ts in [Some(&view.event_timestamp), view.created_timestamp.as_ref()]
        .into_iter()
        .flatten()
    {
        match schema.field_with_name(ts) {
            Err(_) => problems.push(format!(
                "{at}: timestamp column `{ts}` is not in {source} (columns: [{}])",
                source_columns.join(", ")
            )),
            Ok(f) if !matches!(f.data_type(), ArrowType::Timestamp(..)) => problems.push(format!(
                "{at}: column `{ts}` of {source} is {}, not a timestamp",
                f.data_type()
            )),
            Ok(_) => {}
        }
    }
    // The columns an aggregation can read, with their types.
    let mut component = None;
    let columns: Vec<(String, DataType)> = match &view.transform {
        Some(transform) => {
            let Some(applied) = load(repo, engine, &at, transform, problems, None) else {
                return Ok(None);
            };
            // The transform reads the source as a batch view's does.
            let before = problems.len();
            for input in &applied.signature.inputs {
                match schema.field_with_name(&input.name) {
                    Err(_) => problems.push(format!(
                        "{at}: the transform's input `{}` ({}) has no column in {source} (columns: [{}])",
                        input.name,
                        input.data_type,
                        source_columns.join(", ")
                    )),
                    Ok(f) if !accepts(input.data_type, f.data_type()) => problems.push(format!(
                        "{at}: column `{}` of {source} is {}, but the transform declares it {}",
                        input.name,
                        f.data_type(),
                        input.data_type
                    )),
                    Ok(_) => {}
                }
            }
            if problems.len() > before {
                return Ok(None);
            }
            let columns = applied
                .signature
                .outputs
                .iter()
                .map(|f| (f.name.clone(), f.data_type))
                .collect();
            component = Some(applied);
            columns
        }
        None => schema
            .fields()
            .iter()
            .filter_map(|f| column_type(f.data_type()).map(|t| (f.name().clone(), t)))
            .collect(),
    };
    let names: Vec<String> = columns.iter().map(|(n, _)| n.clone()).collect();
    let lookup = |name: &str| columns.iter().find(|(n, _)| n == name).map(|(_, t)| *t);
    for aggregation in &view.aggregations {
        if let Err(problem) = Aggregation::resolve(aggregation, lookup, &names) {
            problems.push(format!("{at}: {problem}"));
        }
    }
    if problems.len() > before {
        return Ok(None);
    }
    let mut applied = match component {
        Some(applied) => applied,
        None => {
            // The identity over the source columns the aggregations read, in source order.
            let read: Vec<Field> = schema
                .fields()
                .iter()
                .filter(|f| {
                    view.aggregations
                        .iter()
                        .any(|a| a.column.as_deref() == Some(f.name().as_str()))
                })
                .filter_map(|f| {
                    let t = lookup(f.name())?;
                    Some(Field::new(f.name().clone(), t, f.is_nullable()))
                })
                .collect();
            AppliedView {
                kind: ViewKind::Aggregate,
                transform: None,
                digest: NO_TRANSFORM.to_owned(),
                signature: Signature {
                    name: view.name.clone(),
                    version: String::new(),
                    description: format!("the columns of {source} that `{}` aggregates", view.name),
                    inputs: read.clone(),
                    outputs: read,
                },
                table: None,
                aggregations: Vec::new(),
            }
        }
    };
    applied.kind = ViewKind::Aggregate;
    applied.table = Some(table.to_string());
    applied.aggregations = view.aggregations.clone();
    Ok(Some(applied))
}

/// The type an aggregation sees for a source column of Arrow type `t` (read as the data path
/// reads it: the first type that [`accepts`] it), or `None` for a type it cannot read.
fn column_type(t: &ArrowType) -> Option<DataType> {
    let mut candidates = vec![
        DataType::Boolean,
        DataType::Int32,
        DataType::Int64,
        DataType::Float32,
        DataType::Float64,
        DataType::Utf8,
        DataType::Binary,
        DataType::Timestamp,
    ];
    if let ArrowType::FixedSizeList(_, size) = t {
        candidates.push(DataType::Float32Vector(*size as u32));
    }
    candidates.into_iter().find(|c| accepts(*c, t))
}

/// The join keys of `entities`, in order, with their types.
pub fn join_keys(repo: &FeatureRepo, entities: &[String]) -> Vec<(String, KeyType)> {
    entities
        .iter()
        .filter_map(|e| repo.spec().entities.iter().find(|s| s.name == *e))
        .flat_map(|e| e.join_keys.iter().map(|k| (k.name.clone(), k.key_type)))
        .collect()
}

fn key_accepts(key: KeyType, found: &ArrowType) -> bool {
    match key {
        KeyType::Int32 => accepts(DataType::Int32, found),
        KeyType::Int64 => accepts(DataType::Int64, found),
        KeyType::Utf8 => accepts(DataType::Utf8, found),
    }
}

/// Join keys, `event_ts`, `created_ts`, then the transform's outputs.
pub(crate) fn feature_table_schema(keys: &[(String, KeyType)], signature: &Signature) -> SchemaRef {
    let ts = ArrowType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()));
    let mut fields: Vec<ArrowField> = keys
        .iter()
        .map(|(name, t)| {
            let t = match t {
                KeyType::Int32 => ArrowType::Int32,
                KeyType::Int64 => ArrowType::Int64,
                KeyType::Utf8 => ArrowType::Utf8,
            };
            ArrowField::new(name, t, false)
        })
        .collect();
    fields.push(ArrowField::new(EVENT_TS, ts.clone(), false));
    fields.push(ArrowField::new(CREATED_TS, ts, false));
    fields.extend(signature.outputs.iter().map(|f| f.to_arrow()));
    Arc::new(Schema::new(fields))
}

fn same_columns(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields()
            .iter()
            .zip(b.fields())
            .all(|(x, y)| x.name() == y.name() && x.data_type().equals_datatype(y.data_type()))
}

fn check_request_view(
    view: &RequestViewSpec,
    signature: &Signature,
    views: &BTreeMap<String, AppliedView>,
    problems: &mut Vec<String>,
) {
    let at = format!("request view `{}`", view.name);
    for input in &signature.inputs {
        let Some(source) = view.inputs.get(&input.name) else {
            problems.push(format!(
                "{at}: the transform's input `{}` ({}) has no source; add `inputs.{} = {{ request = \"<field>\" }}` or `{{ feature = \"<view>:<feature>\" }}`",
                input.name, input.data_type, input.name
            ));
            continue;
        };
        let Some(feature) = &source.feature else {
            continue;
        };
        let Ok(r) = FeatureRef::parse(feature) else {
            continue;
        };
        let Some(stored) = views.get(&r.view) else {
            continue;
        };
        match stored_feature_type(stored, &r.feature) {
            None => problems.push(format!(
                "{at}: input `{}` reads `{r}`, but view `{}` has no output `{}` (outputs: [{}])",
                input.name,
                r.view,
                r.feature,
                stored.features().join(", ")
            )),
            Some(OutputType::List(t)) => problems.push(format!(
                "{at}: input `{}` reads `{r}`, a list of {t}; a transform's input cannot be a \
                 list (the component contract has no list type)",
                input.name
            )),
            Some(OutputType::Scalar(t)) if t != input.data_type => problems.push(format!(
                "{at}: input `{}` is {} but `{r}` is {t}",
                input.name, input.data_type
            )),
            Some(_) if !input.nullable => problems.push(format!(
                "{at}: input `{}` reads the stored feature `{r}`, which is null for an entity \
                 with no value; declare the input nullable",
                input.name
            )),
            Some(_) => {}
        }
    }
    for name in view.inputs.keys() {
        if signature.input(name).is_none() {
            problems.push(format!(
                "{at}: `inputs.{name}` is not an input of the transform (inputs: [{}])",
                names(&signature.inputs)
            ));
        }
    }
}

/// The type of feature `feature` of a stored (batch or aggregate) view, `None` if it has none.
fn stored_feature_type(view: &AppliedView, feature: &str) -> Option<OutputType> {
    match view.kind {
        ViewKind::Aggregate => view
            .resolved_aggregations()
            .ok()?
            .into_iter()
            .find(|a| a.name == feature)
            .map(|a| a.output),
        ViewKind::Batch | ViewKind::Request => view
            .signature
            .output(feature)
            .map(|f| OutputType::Scalar(f.data_type)),
    }
}

fn names(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
