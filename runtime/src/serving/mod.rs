//! Online serving: feature vectors for entity rows, read from the online store and computed by
//! request-time views, with no HTTP in sight (`server` renders it).
//!
//! [`OnlineServing::open`] loads every view of the applied registry (refusing a component whose
//! bytes changed since `apply`, naming the view and both digests) and warms one instance of
//! each request-time view. [`OnlineServing::get`] answers one [`FeatureRequest`]:
//!
//! 1. The features are resolved (`view:feature`, `view:*`, or a feature service) and checked
//!    against the applied signatures; their output names must not collide.
//! 2. The entity columns are checked: every join key of every view involved and every request
//!    field of every request-time view must be there, with values of the declared type (a wrong
//!    or missing one names the field, the row and what was expected); an unknown column is an
//!    error too, since it is usually a typo.
//! 3. One store read per batch view involved. A stored value is then judged exactly as
//!    historical retrieval judges it ([`status_at`] at `T = now`, the view's TTL included):
//!    present, null, not found, or outside its max age (served as null).
//! 4. Request-time views run their component once over all rows (stored inputs that are not
//!    present are null, as in historical retrieval), through [`Transform::run`], the call batch
//!    jobs make.
//!
//! Every value carries its status, its event time and the digest of the component that
//! computed it, so a caller can prove which code produced what it was served.

mod request;
mod values;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use serde_json::Value;

use request::EntityColumns;
pub use request::FeatureRequest;
pub use request::{check_feast_write_flags, json_kind};
pub use values::{JsonValue, format_timestamp};

use crate::aggregate::{Output, OutputType, RecordLayout, decode_record};
use crate::engine::{Transform, TransformEngine};
use crate::error::{Error, ErrorKind, Result};
use crate::online::{
    EntityKey, FeatureValue, KeyValue, OnlineStore, ReadStatus, StoredRow, status_at,
};
use crate::registry::{
    AggregateViewSpec, AppliedRegistry, FeatureRef, FeatureRepo, KeyType, RepoSpec, ViewKind,
    parse_duration, unknown_feature_service,
};
use crate::signature::DataType;

/// The most entity rows one request may carry, unless configured otherwise.
pub const DEFAULT_MAX_ROWS: usize = 1_000;

/// The most entity rows of a request [`OnlineServing::is_quick`] may call quick.
pub const QUICK_ROWS: usize = 64;

/// By default, a request-time view call longer than this makes no request quick any more
/// ([`OnlineServing::is_quick`]): 50 times what a call of a few rows takes here.
pub const SLOW_CALL: Duration = Duration::from_millis(1);

/// The features of one request, column-major, with what produced them.
#[derive(Debug, Clone)]
pub struct OnlineFeatures {
    /// The number of entity rows answered.
    pub rows: usize,
    /// The join keys of the views involved, in first-use order, with each row's value.
    pub join_keys: Vec<(String, Vec<KeyValue>)>,
    /// One column per requested feature, in request order.
    pub features: Vec<FeatureColumn>,
    /// The time the request was answered at (`T = now`), µs since the epoch.
    pub now_us: i64,
    /// Where the time went.
    pub timings: Timings,
}

/// One served feature, one element per entity row in each vector.
#[derive(Debug, Clone)]
pub struct FeatureColumn {
    /// The output name (`feature`, or `view__feature` with full feature names).
    pub name: Arc<str>,
    /// The view.
    pub view: Arc<str>,
    /// The feature within the view.
    pub feature: Arc<str>,
    /// Its type (of the list's items when `list`).
    pub data_type: DataType,
    /// Whether each value is a list of `data_type` values (`last_n`), latest first.
    pub list: bool,
    /// The values; null unless the status is `Present`.
    pub values: Vec<FeatureValue>,
    /// Each value's status.
    pub statuses: Vec<ReadStatus>,
    /// The event time of the row each value comes from (the request time for request-time
    /// features); `None` when no row was found.
    pub event_ts: Vec<Option<i64>>,
    /// The digest of the component that computed each value; `None` when no row was found.
    pub digests: Vec<Option<Arc<str>>>,
}

/// Time spent in the online store and in each request-time view's component.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// The online store read (one for all batch views), if any.
    pub store: Option<Duration>,
    /// Component calls, per request-time view.
    pub transforms: Vec<(Arc<str>, Duration)>,
}

/// One view as served. Names are shared (`Arc<str>`) with every column served from it, so a
/// request allocates none of them.
#[derive(Debug)]
struct ServedView {
    name: Arc<str>,
    kind: ViewKind,
    /// Each output's name, plain and full (`view__feature`), in output order.
    outputs: Vec<OutputName>,
    digest: Arc<str>,
    join_keys: Vec<(String, KeyType)>,
    ttl: Option<Duration>,
    /// Each output's type (a list for `last_n`), in output order.
    types: Vec<OutputType>,
    /// Batch and aggregate views materialized to the online store (`online = true`).
    online: bool,
    /// The component: every batch and request-time view has one, an aggregate view may not.
    transform: Option<Transform>,
    /// Aggregate views: their aggregations and how they read the stored records.
    records: Option<RecordLayout>,
    /// Request-time views: where each transform input comes from, in input order.
    inputs: Vec<InputSource>,
    /// Request-time views: the Arrow schema of the transform's input.
    input_schema: SchemaRef,
}

/// Views are told apart by name.
impl PartialEq for ServedView {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

#[derive(Debug)]
struct OutputName {
    plain: Arc<str>,
    full: Arc<str>,
}

/// What a served view computes its features with.
struct Computes {
    kind: ViewKind,
    transform: Option<Transform>,
    digest: String,
    /// The features, named and typed, in order.
    features: Vec<(String, OutputType)>,
    records: Option<RecordLayout>,
}

impl Computes {
    /// A batch or request-time view's component: its outputs are the features.
    fn component(kind: ViewKind, transform: Transform) -> Self {
        let features = (transform.signature().outputs.iter())
            .map(|f| (f.name.clone(), OutputType::Scalar(f.data_type)))
            .collect();
        Computes {
            kind,
            digest: transform.digest().to_owned(),
            transform: Some(transform),
            features,
            records: None,
        }
    }
}

impl ServedView {
    fn new(
        name: &str,
        computes: Computes,
        join_keys: Vec<(String, KeyType)>,
        ttl: Option<Duration>,
        online: bool,
        inputs: Vec<InputSource>,
    ) -> Self {
        let outputs = (computes.features.iter())
            .map(|(feature, _)| OutputName {
                plain: feature.as_str().into(),
                full: format!("{name}__{feature}").into(),
            })
            .collect();
        let input_schema = match (computes.kind, &computes.transform) {
            (ViewKind::Request, Some(t)) => t.signature().input_schema(),
            _ => Arc::new(arrow_schema::Schema::empty()),
        };
        ServedView {
            name: name.into(),
            kind: computes.kind,
            input_schema,
            outputs,
            types: computes.features.iter().map(|(_, t)| *t).collect(),
            digest: computes.digest.into(),
            join_keys,
            ttl,
            online,
            transform: computes.transform,
            records: computes.records,
            inputs,
        }
    }

    /// The component of a request-time view (which always has one).
    fn component(&self) -> Result<&Transform> {
        self.transform.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!("view `{}` has no component to run", self.name),
            )
        })
    }
}

#[derive(Debug, Clone)]
enum InputSource {
    /// A request field (an entity column).
    Request(String),
    /// A stored feature: the view and the feature's index in its outputs.
    Feature(String, usize),
}

/// A feature selected by a request.
#[derive(Debug)]
struct Selected<'a> {
    name: Arc<str>,
    view: &'a ServedView,
    index: usize,
}

/// Online serving over one applied feature repo and its online store.
#[derive(Debug)]
pub struct OnlineServing {
    views: BTreeMap<String, ServedView>,
    services: BTreeMap<String, Vec<String>>,
    /// Every reference a request may name (`view:feature`, `view:*`) for the views served
    /// online: the view and the output indices it selects. Anything else is resolved the
    /// slow way, to say what is wrong with it.
    refs: HashMap<String, (String, Vec<usize>)>,
    store: Arc<dyn OnlineStore>,
    max_rows: usize,
    /// A request-time view call longer than this is slow ([`SLOW_CALL`] unless set).
    slow_call: Duration,
    /// Set for good once a request-time view call was slow.
    slow_call_seen: AtomicBool,
}

impl OnlineServing {
    /// Loads every view `skewless.toml` declares from the applied `registry` (a view not
    /// applied yet, or whose component's digest differs from the registry, is an error naming
    /// it) and warms one instance of each request-time view.
    pub fn open(
        repo: &FeatureRepo,
        registry: &AppliedRegistry,
        engine: &TransformEngine,
        store: Arc<dyn OnlineStore>,
    ) -> Result<Self> {
        let spec = repo.spec();
        let mut views = BTreeMap::new();
        for batch in &spec.batch_views {
            let transform = load(repo, registry, engine, &batch.name)?;
            let view = ServedView::new(
                &batch.name,
                Computes::component(ViewKind::Batch, transform),
                crate::apply::join_keys(repo, &batch.entities),
                RepoSpec::ttl(batch)?,
                batch.online,
                Vec::new(),
            );
            views.insert(batch.name.clone(), view);
        }
        for view in &spec.aggregate_views {
            let served = ServedView::new(
                &view.name,
                aggregate_computes(repo, registry, engine, view)?,
                crate::apply::join_keys(repo, &view.entities),
                view.ttl.as_deref().map(parse_duration).transpose()?,
                view.online,
                Vec::new(),
            );
            views.insert(view.name.clone(), served);
        }
        for view in &spec.request_views {
            let transform = load(repo, registry, engine, &view.name)?;
            let mut inputs = Vec::new();
            let mut join_keys = crate::apply::join_keys(repo, &view.entities);
            for input in &transform.signature().inputs {
                let source = view.inputs.get(&input.name).ok_or_else(|| {
                    Error::new(
                        ErrorKind::SchemaMismatch,
                        format!(
                            "request view `{}` does not say where input `{}` comes from; run \
                             `skewless plan`",
                            view.name, input.name
                        ),
                    )
                })?;
                inputs.push(match (&source.request, &source.feature) {
                    (Some(field), _) => InputSource::Request(field.clone()),
                    (None, Some(feature)) => {
                        let r = FeatureRef::parse(feature)?;
                        let stored = views.get(&r.view).ok_or_else(|| {
                            not_found(format!(
                                "request view `{}` reads `{feature}`, but there is no batch or aggregate view `{}`",
                                view.name, r.view
                            ))
                        })?;
                        let index = output_index(stored, &r)?;
                        for key in &stored.join_keys {
                            if !join_keys.iter().any(|(k, _)| k == &key.0) {
                                join_keys.push(key.clone());
                            }
                        }
                        InputSource::Feature(r.view, index)
                    }
                    (None, None) => {
                        return Err(Error::new(
                            ErrorKind::SchemaMismatch,
                            format!(
                                "input `{}` of request view `{}` names neither a request field \
                                 nor a feature",
                                input.name, view.name
                            ),
                        ));
                    }
                });
            }
            // One call on an empty batch instantiates and pools an instance, so the first
            // request does not pay for it.
            transform
                .run(&RecordBatch::new_empty(
                    transform.signature().input_schema(),
                ))
                .map_err(|e| e.with_context("view", &view.name))?;
            let served = ServedView::new(
                &view.name,
                Computes::component(ViewKind::Request, transform),
                join_keys,
                None,
                true,
                inputs,
            );
            views.insert(view.name.clone(), served);
        }
        let services = spec
            .feature_services
            .iter()
            .map(|s| (s.name.clone(), s.features.clone()))
            .collect();
        let mut refs = HashMap::new();
        for (name, view) in views.iter().filter(|(_, v)| v.online) {
            refs.insert(
                format!("{name}:*"),
                (name.clone(), (0..view.outputs.len()).collect()),
            );
            for (index, output) in view.outputs.iter().enumerate() {
                refs.insert(
                    format!("{name}:{}", output.plain),
                    (name.clone(), vec![index]),
                );
            }
        }
        Ok(OnlineServing {
            views,
            services,
            refs,
            store,
            max_rows: DEFAULT_MAX_ROWS,
            slow_call: SLOW_CALL,
            slow_call_seen: AtomicBool::new(false),
        })
    }

    /// Sets the most entity rows one request may carry.
    pub fn with_max_rows(mut self, max_rows: usize) -> Self {
        self.max_rows = max_rows;
        self
    }

    /// Sets how long a request-time view call may take before requests stop being quick
    /// ([`OnlineServing::is_quick`]).
    pub fn with_slow_call(mut self, slow_call: Duration) -> Self {
        self.slow_call = slow_call;
        self
    }

    /// Whether answering `request` is expected to take microseconds of CPU and no waiting:
    /// the online store is local ([`OnlineStore::is_local`]), the request has at most
    /// [`QUICK_ROWS`] rows, and no request-time view call has ever taken longer than
    /// [`SLOW_CALL`] (or what [`OnlineServing::with_slow_call`] set). The server answers a
    /// quick request in place on its async worker, and any other off it, so a slow component
    /// or a store's network round trip never holds a worker twice.
    pub fn is_quick(&self, request: &FeatureRequest) -> bool {
        let rows = request
            .entities
            .values()
            .next()
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        self.store.is_local() && self.few_rows_and_no_slow_call(rows)
    }

    /// Whether `rows` entity rows are few enough ([`QUICK_ROWS`]) to run request-time views
    /// in place, and no request-time view call has been seen slow yet.
    fn few_rows_and_no_slow_call(&self, rows: usize) -> bool {
        rows <= QUICK_ROWS && !self.slow_call_seen.load(Ordering::Relaxed)
    }

    /// The online store.
    pub fn store(&self) -> &Arc<dyn OnlineStore> {
        &self.store
    }

    /// Each view's name, kind and component digest.
    pub fn views(&self) -> impl Iterator<Item = (&str, ViewKind, &str)> {
        self.views
            .iter()
            .map(|(name, v)| (name.as_str(), v.kind, &*v.digest))
    }

    /// The digest of the component computing `view`'s features, if the view is served.
    pub fn view_digest(&self, view: &str) -> Option<&str> {
        self.views.get(view).map(|v| &*v.digest)
    }

    /// Answers `request` at the current time. Blocking: it reads the store and runs
    /// components.
    pub fn get(&self, request: &FeatureRequest) -> Result<OnlineFeatures> {
        self.get_at(request, crate::micros::now())
    }

    /// Answers `request` as if it were `now_us` (µs since the epoch): the TTL and "rows from
    /// the future" are judged against it. Blocking: [`OnlineServing::plan`], one blocking store
    /// read, [`Planned::finish`].
    pub fn get_at(&self, request: &FeatureRequest, now_us: i64) -> Result<OnlineFeatures> {
        let planned = self.plan(request, now_us)?;
        let read = planned.read()?;
        planned.finish(read)
    }

    /// Whether the online store can be read without blocking a thread
    /// ([`OnlineStore::as_async`]): then an async caller awaits [`Planned::read_async`].
    pub fn reads_async(&self) -> bool {
        self.store.as_async().is_some()
    }

    /// The first step of answering `request` at `now_us`, CPU only: the features resolved,
    /// the entity columns checked and the keys to read from the store, one list per view.
    /// Then one store read ([`Planned::read`] or [`Planned::read_async`]) and
    /// [`Planned::finish`] answer it; [`OnlineServing::get_at`] is the three in a row.
    pub fn plan<'a>(&'a self, request: &'a FeatureRequest, now_us: i64) -> Result<Planned<'a>> {
        let selected = self.select(request)?;
        let (columns, rows) = request.columns()?;
        if rows > self.max_rows {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the request has {rows} entity rows; the limit is {} per request: send \
                     fewer rows per request, or raise the server's --max-rows",
                    self.max_rows
                ),
            )
            .with_context("field", "entities"));
        }

        // The views involved: those selected, and the batch views request views read.
        let mut involved: Vec<&ServedView> = Vec::new();
        for s in &selected {
            if s.view.kind == ViewKind::Request {
                for input in &s.view.inputs {
                    if let InputSource::Feature(stored, _) = input {
                        push_unique(&mut involved, &self.views[stored]);
                    }
                }
            }
            push_unique(&mut involved, s.view);
        }
        let expected = expected_columns(&involved);
        if let Some((unknown, _)) = columns.iter().find(|(c, _)| !expected.contains(c)) {
            let mut names = expected;
            names.sort_unstable();
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "`entities.{unknown}` is neither a join key nor a request field of the \
                     features requested (expected: [{}])",
                    names.join(", ")
                ),
            )
            .with_context("field", format!("entities.{unknown}")));
        }

        // Join keys, parsed once per column.
        let mut join_keys: Vec<(String, Vec<KeyValue>)> = Vec::new();
        for view in &involved {
            for (name, key_type) in &view.join_keys {
                if join_keys.iter().any(|(k, _)| k == name) {
                    continue;
                }
                let values = column(&columns, name, "join key")?;
                let keys = values
                    .iter()
                    .enumerate()
                    .map(|(row, v)| {
                        values::key_from_json(v, *key_type).map_err(|expected| {
                            invalid_value(name, row, v, &format!("{expected} (join key)"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                join_keys.push((name.clone(), keys));
            }
        }

        // One store read for every batch and aggregate view involved (one round trip on Redis).
        let stored_views: Vec<&ServedView> = involved
            .iter()
            .copied()
            .filter(|view| matches!(view.kind, ViewKind::Batch | ViewKind::Aggregate))
            .collect();
        let keys: Vec<Vec<EntityKey>> = stored_views
            .iter()
            .map(|view| {
                // The view's key columns, found once, not per row.
                let columns: Vec<&[KeyValue]> = view
                    .join_keys
                    .iter()
                    .map(|(k, _)| {
                        let (_, values) = join_keys
                            .iter()
                            .find(|(n, _)| n == k)
                            .expect("parsed above");
                        values.as_slice()
                    })
                    .collect();
                (0..rows)
                    .map(|row| EntityKey(columns.iter().map(|c| c[row].clone()).collect()))
                    .collect()
            })
            .collect();
        Ok(Planned {
            serving: self,
            selected,
            columns,
            rows,
            involved,
            join_keys,
            stored_views,
            keys,
            now_us,
        })
    }

    /// The features a request selects, expanded and named; errors name the unknown view,
    /// feature or service, and colliding output names.
    fn select(&self, request: &FeatureRequest) -> Result<Vec<Selected<'_>>> {
        let (refs, field): (&[String], &str) = match (&request.features, &request.feature_service) {
            (Some(features), None) => (features, "features"),
            (None, Some(service)) => {
                let features = self.services.get(service).ok_or_else(|| {
                    let known = self.services.keys().map(String::as_str);
                    unknown_feature_service(service, known).with_context("field", "feature_service")
                })?;
                (features, "feature_service")
            }
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "give either `features` or `feature_service`, not both",
                )
                .with_context("field", "features"));
            }
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "the request names no features: give `features` \
                         ([\"view:feature\", ...]) or `feature_service`",
                )
                .with_context("field", "features"));
            }
        };
        let mut selected: Vec<Selected<'_>> = Vec::with_capacity(refs.len());
        for (i, text) in refs.iter().enumerate() {
            let Some((view, indices)) = self.refs.get(text.as_str()) else {
                let error = self.unresolved(text);
                return Err(error.with_context("field", format!("{field}[{i}]")));
            };
            let view = &self.views[view];
            for &index in indices {
                let output = &view.outputs[index];
                let name = match request.full_feature_names {
                    true => &output.full,
                    false => &output.plain,
                };
                if let Some(twin) = selected.iter().find(|s| s.name == *name) {
                    if twin.view == view && twin.index == index {
                        continue;
                    }
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "feature name `{name}` is served by both `{}` and `{}`; set \
                             \"full_feature_names\": true to tell them apart",
                            twin.view.name, view.name
                        ),
                    )
                    .with_context("field", format!("{field}[{i}]")));
                }
                selected.push(Selected {
                    name: name.clone(),
                    view,
                    index,
                });
            }
        }
        Ok(selected)
    }

    /// What is wrong with a feature reference that does not name a feature served online.
    fn unresolved(&self, text: &str) -> Error {
        let r = match FeatureRef::parse(text) {
            Ok(r) => r,
            Err(e) => return e,
        };
        let Some(view) = self.views.get(&r.view) else {
            let known: Vec<&str> = self.views.keys().map(String::as_str).collect();
            return not_found(format!(
                "there is no feature view `{}` (views: [{}])",
                r.view,
                known.join(", ")
            ));
        };
        if !view.online {
            return Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "view `{}` is not materialized to the online store (`online = false` in \
                     skewless.toml)",
                    r.view
                ),
            );
        }
        match output_index(view, &r) {
            Err(e) => e,
            Ok(_) => Error::new(
                ErrorKind::Internal,
                format!("`{text}` names a served feature but was not resolved"),
            ),
        }
    }

    /// The input batch of a request-time view: request fields typed by the transform's
    /// inputs, stored features when present (null otherwise, as in historical retrieval).
    fn request_view_input(
        &self,
        view: &ServedView,
        columns: &EntityColumns<'_>,
        stored: &[(&str, Vec<Option<StoredRow>>)],
        aggregated: &[(&str, Vec<Aggregated>)],
        rows: usize,
        now_us: i64,
    ) -> Result<RecordBatch> {
        let name = &view.name;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(view.inputs.len());
        for (input, source) in view
            .component()?
            .signature()
            .inputs
            .iter()
            .zip(&view.inputs)
        {
            let values: Vec<FeatureValue> = match source {
                InputSource::Request(field) => {
                    let json = column(columns, field, "request field")?;
                    json.iter()
                        .enumerate()
                        .map(|(row, v)| {
                            let value =
                                values::from_json(v, input.data_type).map_err(|expected| {
                                    invalid_value(
                                        field,
                                        row,
                                        v,
                                        &format!(
                                            "{expected} (input `{}` of request view `{name}`)",
                                            input.name
                                        ),
                                    )
                                })?;
                            if value.is_null() && !input.nullable {
                                return Err(invalid_value(
                                    field,
                                    row,
                                    v,
                                    &format!(
                                        "expected a value (input `{}` of request view `{name}` \
                                         is not nullable)",
                                        input.name
                                    ),
                                ));
                            }
                            Ok(value)
                        })
                        .collect::<Result<_>>()?
                }
                InputSource::Feature(source, index)
                    if self.views[source].kind == ViewKind::Aggregate =>
                {
                    // The value served for the aggregate (null when outside its max age).
                    (find(aggregated, source).iter())
                        .map(|a| a.values[*index].clone())
                        .collect()
                }
                InputSource::Feature(source, index) => {
                    let ttl = self.views[source].ttl;
                    find(stored, source)
                        .iter()
                        .map(|row| visible(row.as_ref(), *index, ttl, now_us).1)
                        .collect()
                }
            };
            debug_assert_eq!(values.len(), rows);
            arrays.push(values::to_arrow(input.data_type, values.iter()));
        }
        RecordBatch::try_new(view.input_schema.clone(), arrays).map_err(|e| {
            Error::new(
                ErrorKind::SchemaMismatch,
                format!("the inputs of request view `{name}` do not fit its signature: {e}"),
            )
            .with_context("view", name)
        })
    }
}

/// A request checked and its store read planned ([`OnlineServing::plan`]): what is left is
/// one store read and [`Planned::finish`].
#[derive(Debug)]
pub struct Planned<'a> {
    serving: &'a OnlineServing,
    selected: Vec<Selected<'a>>,
    columns: EntityColumns<'a>,
    rows: usize,
    /// The views involved: those selected, and the views request-time views read.
    involved: Vec<&'a ServedView>,
    join_keys: Vec<(String, Vec<KeyValue>)>,
    /// The batch and aggregate views involved, read from the store, with each one's keys.
    stored_views: Vec<&'a ServedView>,
    keys: Vec<Vec<EntityKey>>,
    now_us: i64,
}

/// What the online store answered for a [`Planned`] request.
#[derive(Debug)]
pub struct StoreRead {
    /// The rows of each view read, in the plan's order.
    rows: Vec<Vec<Option<StoredRow>>>,
    /// How long the read took; `None` when there was nothing to read.
    elapsed: Option<Duration>,
}

impl<'a> Planned<'a> {
    /// Every stored view's keys, as one store read asks for them.
    fn requests(&self) -> Vec<(&str, &[EntityKey])> {
        (self.stored_views.iter().zip(&self.keys))
            .map(|(view, keys)| (&*view.name, keys.as_slice()))
            .collect()
    }

    /// Reads the store, blocking (one round trip on Redis).
    pub fn read(&self) -> Result<StoreRead> {
        let requests = self.requests();
        if requests.is_empty() {
            return Ok(StoreRead::nothing());
        }
        let started = Instant::now();
        let rows = self.serving.store.read_many(&requests)?;
        Ok(StoreRead {
            rows,
            elapsed: Some(started.elapsed()),
        })
    }

    /// Reads the store without blocking a thread (one round trip on Redis), on a tokio
    /// runtime. Only for a store that offers it ([`OnlineServing::reads_async`]); any other
    /// is an `Internal` error (rather than a thread blocked behind the caller's back).
    pub async fn read_async(&self) -> Result<StoreRead> {
        let requests = self.requests();
        if requests.is_empty() {
            return Ok(StoreRead::nothing());
        }
        let store = self.serving.store.as_async().ok_or_else(|| {
            Error::new(
                ErrorKind::Internal,
                format!(
                    "the {} online store cannot be read asynchronously",
                    self.serving.store.backend()
                ),
            )
        })?;
        let started = Instant::now();
        let rows = store.read_many(&requests).await?;
        Ok(StoreRead {
            rows,
            elapsed: Some(started.elapsed()),
        })
    }

    /// Whether [`Planned::finish`] is expected to take microseconds of CPU: no request-time
    /// view to run, or few rows ([`QUICK_ROWS`]) and no request-time view call seen slow yet
    /// ([`OnlineServing::with_slow_call`]). The server finishes a quick request in place on
    /// its async worker, any other after handing the worker's other tasks away.
    pub fn is_quick_to_finish(&self) -> bool {
        !self.involved.iter().any(|v| v.kind == ViewKind::Request)
            || self.serving.few_rows_and_no_slow_call(self.rows)
    }

    /// Answers the request from what the store answered: values judged at `now`, aggregates
    /// computed, request-time views run.
    pub fn finish(self, read: StoreRead) -> Result<OnlineFeatures> {
        let Planned {
            serving,
            selected,
            columns,
            rows,
            involved,
            join_keys,
            stored_views,
            keys: _,
            now_us,
        } = self;
        if read.rows.len() != stored_views.len() {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "the online store answered {} views for {} read",
                    read.rows.len(),
                    stored_views.len()
                ),
            ));
        }
        let stored: Vec<(&str, Vec<Option<StoredRow>>)> = stored_views
            .iter()
            .map(|view| &*view.name)
            .zip(read.rows)
            .collect();
        let mut timings = Timings {
            store: read.elapsed,
            transforms: Vec::new(),
        };

        // Aggregate views: every aggregation of every entity at `now`, from its record.
        let aggregated: Vec<(&str, Vec<Aggregated>)> = (involved.iter())
            .filter(|v| v.kind == ViewKind::Aggregate)
            .map(|view| {
                let values = aggregate_values(view, find(&stored, &view.name).as_slice(), now_us)?;
                Ok((&*view.name, values))
            })
            .collect::<Result<_>>()?;

        // Request-time views, each run once over all rows.
        let mut computed: Vec<(&str, RecordBatch)> = Vec::new();
        for view in involved.iter().filter(|v| v.kind == ViewKind::Request) {
            let input =
                serving.request_view_input(view, &columns, &stored, &aggregated, rows, now_us)?;
            let started = Instant::now();
            let output = view.component()?.run(&input);
            let elapsed = started.elapsed();
            if elapsed > serving.slow_call && !serving.slow_call_seen.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    view = &*view.name,
                    elapsed_ms = elapsed.as_secs_f64() * 1e3,
                    "a request-time view call was slow; requests now run off the async workers"
                );
            }
            let output = output.map_err(|e| {
                // The input was checked against the signature above: a schema mismatch now
                // is an output that does not fit it, the component's fault.
                let e = match e.kind() {
                    ErrorKind::SchemaMismatch | ErrorKind::InvalidInput => {
                        e.with_kind(ErrorKind::InvalidComponent)
                    }
                    _ => e,
                };
                e.with_context("view", &view.name)
            })?;
            timings.transforms.push((view.name.clone(), elapsed));
            computed.push((&view.name, output));
        }

        let mut features = Vec::with_capacity(selected.len());
        for s in &selected {
            features.push(match s.view.kind {
                ViewKind::Batch => stored_column(s, find(&stored, &s.view.name).as_slice(), now_us),
                ViewKind::Request => computed_column(s, find(&computed, &s.view.name), now_us)?,
                ViewKind::Aggregate => {
                    aggregate_column(s, find(&aggregated, &s.view.name).as_slice())
                }
            });
        }
        Ok(OnlineFeatures {
            rows,
            join_keys,
            features,
            now_us,
            timings,
        })
    }
}

impl StoreRead {
    fn nothing() -> Self {
        StoreRead {
            rows: Vec::new(),
            elapsed: None,
        }
    }
}

/// Every entity column the views involved read: join keys and request fields.
fn expected_columns<'a>(involved: &[&'a ServedView]) -> Vec<&'a str> {
    let mut expected = Vec::new();
    for view in involved {
        for (key, _) in &view.join_keys {
            push_unique(&mut expected, key.as_str());
        }
        for input in &view.inputs {
            if let InputSource::Request(field) = input {
                push_unique(&mut expected, field.as_str());
            }
        }
    }
    expected
}

/// Loads the component of `view`, refusing one that differs from the applied registry.
fn load(
    repo: &FeatureRepo,
    registry: &AppliedRegistry,
    engine: &TransformEngine,
    view: &str,
) -> Result<Transform> {
    if !registry.views.contains_key(view) {
        return Err(not_found(format!(
            "view `{view}` is declared in skewless.toml but not applied; run `skewless apply`"
        ))
        .with_context("view", view));
    }
    repo.verified_transform(engine, registry, view)
        .map_err(|e| e.with_context("view", view))
}

fn output_index(view: &ServedView, r: &FeatureRef) -> Result<usize> {
    (view.outputs.iter())
        .position(|o| *o.plain == r.feature)
        .ok_or_else(|| {
            let names: Vec<&str> = view.outputs.iter().map(|o| &*o.plain).collect();
            not_found(format!(
                "view `{}` has no feature `{}` (features: [{}])",
                r.view,
                r.feature,
                names.join(", ")
            ))
        })
}

/// An aggregate view as served: its component (verified against the registry) if it has one,
/// and its aggregations resolved against the columns its records keep.
fn aggregate_computes(
    repo: &FeatureRepo,
    registry: &AppliedRegistry,
    engine: &TransformEngine,
    view: &AggregateViewSpec,
) -> Result<Computes> {
    let name = &view.name;
    let applied = match registry.views.get(name) {
        Some(applied) if applied.kind == ViewKind::Aggregate => applied,
        _ => {
            return Err(not_found(format!(
                "view `{name}` is declared in skewless.toml but not applied; run `skewless apply`"
            ))
            .with_context("view", name));
        }
    };
    let transform = match &view.transform {
        Some(_) => Some(load(repo, registry, engine, name)?),
        None => None,
    };
    let aggregations = applied
        .resolved_aggregations()
        .map_err(|e| e.with_context("view", name))?;
    let features = (aggregations.iter())
        .map(|a| (a.name.clone(), a.output))
        .collect();
    let outputs: Vec<String> = (applied.signature.outputs.iter())
        .map(|f| f.name.clone())
        .collect();
    Ok(Computes {
        kind: ViewKind::Aggregate,
        digest: transform
            .as_ref()
            .map_or_else(|| applied.digest.clone(), |t| t.digest().to_owned()),
        transform,
        features,
        records: Some(RecordLayout::new(aggregations, &outputs)),
    })
}

/// One entity's aggregates at `now`.
#[derive(Debug)]
struct Aggregated {
    status: AggregateStatus,
    /// The newest event time `<= now` of the entity's rows.
    newest: Option<i64>,
    digest: Option<Arc<str>>,
    /// Each aggregation's value served (null when outside the max age).
    values: Vec<FeatureValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggregateStatus {
    /// No record: the empty-window values (null under a TTL), reported not found.
    NotFound,
    /// The newest row is older than the TTL allows (or there is none at `now`).
    Expired,
    /// The values at `now`.
    Found,
}

/// Every aggregation of an aggregate view at `now_us`, per entity, from the records read.
fn aggregate_values(
    view: &ServedView,
    rows: &[Option<StoredRow>],
    now_us: i64,
) -> Result<Vec<Aggregated>> {
    let layout = view.records.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::Internal,
            format!("aggregate view `{}` has no record layout", view.name),
        )
    })?;
    let fail = |e: Error| e.with_context("view", &*view.name);
    let served = |outputs: Vec<Result<Output>>| -> Result<Vec<FeatureValue>> {
        (outputs.into_iter().zip(layout.aggregations()))
            .map(
                |(output, a)| match output.map_err(|e| e.with_context("feature", &a.name))? {
                    Output::Value(v) => Ok(v),
                    Output::List(items) => Ok(FeatureValue::List(items)),
                },
            )
            .collect::<Result<_>>()
            .map_err(fail)
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut last_digest: Option<Arc<str>> = None;
    for row in rows {
        let Some(row) = row else {
            // An entity with no rows: the empty window's values, unless the view has a TTL,
            // which no row at all is outside of (null, as historical retrieval gives it).
            let values = match view.ttl {
                Some(_) => vec![FeatureValue::Null; layout.aggregations().len()],
                None => served(layout.empty_values())?,
            };
            out.push(Aggregated {
                status: AggregateStatus::NotFound,
                newest: None,
                digest: None,
                values,
            });
            continue;
        };
        let record = match row.values.as_slice() {
            [FeatureValue::Binary(bytes)] => decode_record(bytes).map_err(fail)?,
            _ => {
                return Err(fail(Error::new(
                    ErrorKind::InvalidInput,
                    "the online store holds a row that is not an aggregate record for this \
                     view; run `skewless materialize` for it",
                )));
            }
        };
        let at = layout.values_at(&record, now_us).map_err(fail)?;
        let expired = view.ttl.is_some_and(|ttl| {
            at.newest
                .is_none_or(|t| t < now_us.saturating_sub(crate::micros::duration(ttl)))
        });
        let digest = match &last_digest {
            Some(d) if **d == *row.digest => d.clone(),
            _ => Arc::<str>::from(row.digest.as_str()),
        };
        last_digest = Some(digest.clone());
        out.push(match expired {
            true => Aggregated {
                status: AggregateStatus::Expired,
                newest: at.newest,
                digest: Some(digest),
                values: vec![FeatureValue::Null; layout.aggregations().len()],
            },
            false => Aggregated {
                status: AggregateStatus::Found,
                newest: at.newest,
                digest: Some(digest),
                values: served(at.outputs)?,
            },
        });
    }
    Ok(out)
}

/// A served column of an aggregate view's feature.
fn aggregate_column(s: &Selected<'_>, entities: &[Aggregated]) -> FeatureColumn {
    let mut column = empty_column(s, entities.len());
    for a in entities {
        let value = a.values[s.index].clone();
        column.statuses.push(match a.status {
            AggregateStatus::NotFound => ReadStatus::NotFound,
            AggregateStatus::Expired => ReadStatus::OutsideMaxAge,
            AggregateStatus::Found if value.is_null() => ReadStatus::NullValue,
            AggregateStatus::Found => ReadStatus::Present,
        });
        column.values.push(value);
        column.event_ts.push(a.newest);
        column.digests.push(a.digest.clone());
    }
    column
}

/// The status of feature `index` of a stored row at `now_us`, and the value served for it:
/// the stored value when present, null otherwise (expired values are not served). Both the
/// served columns and the inputs of request-time views take values through this rule.
fn visible(
    row: Option<&StoredRow>,
    index: usize,
    ttl: Option<Duration>,
    now_us: i64,
) -> (ReadStatus, FeatureValue) {
    let status = status_at(row, index, ttl, now_us);
    let value = match (status, row) {
        (ReadStatus::Present, Some(row)) => row.values[index].clone(),
        _ => FeatureValue::Null,
    };
    (status, value)
}

/// A served column of a batch view's feature from the rows read.
fn stored_column(s: &Selected<'_>, rows: &[Option<StoredRow>], now_us: i64) -> FeatureColumn {
    let n = rows.len();
    let mut column = empty_column(s, n);
    let mut last_digest: Option<Arc<str>> = None;
    for row in rows {
        let (status, value) = visible(row.as_ref(), s.index, s.view.ttl, now_us);
        let visible = !matches!(status, ReadStatus::NotFound);
        let (event_ts, digest) = match row {
            Some(row) if visible => {
                // Rows of one view almost always share a digest: share its allocation.
                let digest = match &last_digest {
                    Some(d) if **d == *row.digest => d.clone(),
                    _ => Arc::<str>::from(row.digest.as_str()),
                };
                last_digest = Some(digest.clone());
                (Some(row.event_ts), Some(digest))
            }
            _ => (None, None),
        };
        column.values.push(value);
        column.statuses.push(status);
        column.event_ts.push(event_ts);
        column.digests.push(digest);
    }
    column
}

/// A served column of a request-time view's output.
fn computed_column(s: &Selected<'_>, output: &RecordBatch, now_us: i64) -> Result<FeatureColumn> {
    let array = output.column(s.index);
    let n = output.num_rows();
    let mut column = empty_column(s, n);
    for row in 0..n {
        let value = crate::materialize::feature_value(array, row)?;
        column.statuses.push(match value.is_null() {
            true => ReadStatus::NullValue,
            false => ReadStatus::Present,
        });
        column.values.push(value);
        column.event_ts.push(Some(now_us));
        column.digests.push(Some(s.view.digest.clone()));
    }
    Ok(column)
}

/// The column of a selected feature, with room for `rows` values.
fn empty_column(s: &Selected<'_>, rows: usize) -> FeatureColumn {
    FeatureColumn {
        name: s.name.clone(),
        view: s.view.name.clone(),
        feature: s.view.outputs[s.index].plain.clone(),
        data_type: match s.view.types[s.index] {
            OutputType::Scalar(t) | OutputType::List(t) => t,
        },
        list: matches!(s.view.types[s.index], OutputType::List(_)),
        values: Vec::with_capacity(rows),
        statuses: Vec::with_capacity(rows),
        event_ts: Vec::with_capacity(rows),
        digests: Vec::with_capacity(rows),
    }
}

/// What `view` got: its stored rows, or its computed batch. Every view involved has an entry.
fn find<'a, T>(by_view: &'a [(&str, T)], view: &str) -> &'a T {
    by_view
        .iter()
        .find(|(name, _)| *name == view)
        .map(|(_, found)| found)
        .expect("every view involved was read or computed")
}

/// The values of entity column `name`; an error naming it when the request lacks it.
fn column<'a>(columns: &EntityColumns<'a>, name: &str, what: &str) -> Result<&'a [Value]> {
    columns
        .iter()
        .find(|(c, _)| *c == name)
        .map(|(_, values)| *values)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the request lacks {what} `{name}`: add `\"{name}\": [...]` to `entities`, one \
                 value per row"
                ),
            )
            .with_context("field", format!("entities.{name}"))
        })
}

fn invalid_value(field: &str, row: usize, value: &Value, expected: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "`entities.{field}[{row}]` is {}, {expected}",
            match value {
                Value::Null => "null".to_owned(),
                other => format!("{} ({other})", json_kind(other)),
            }
        ),
    )
    .with_context("field", format!("entities.{field}[{row}]"))
}

fn not_found(message: String) -> Error {
    Error::new(ErrorKind::NotFound, message)
}

fn push_unique<'a, T: ?Sized + PartialEq>(list: &mut Vec<&'a T>, item: &'a T) {
    if !list.contains(&item) {
        list.push(item);
    }
}
