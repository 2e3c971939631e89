//! `skewless.toml`: the feature repo's declarations, as written, and their structural checks.
//!
//! Parsing is strict (`deny_unknown_fields`): a misspelt key is an error naming it, not a
//! silently ignored setting. [`RepoSpec::check`] then finds every structural problem at once
//! (unknown entities, duplicate names, bad durations, unreadable components, request inputs
//! that point nowhere), so an author fixes them in one pass. Checks that need the data —
//! a component's signature against a source table's schema — belong to `apply`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration::parse_duration;
use crate::error::{Error, ErrorKind, Result};
use crate::offline::S3Settings;

/// The file name of a feature repo's definition.
pub const REPO_FILE: &str = "skewless.toml";

/// The whole `skewless.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSpec {
    /// Project settings.
    pub project: ProjectSpec,
    /// The offline store (Iceberg catalog); the embedded SQLite catalog by default.
    #[serde(default)]
    pub offline: OfflineSpec,
    /// The online store; the embedded store by default.
    #[serde(default)]
    pub online: OnlineSpec,
    /// Entities: what features are about, and their join keys.
    #[serde(default, rename = "entity")]
    pub entities: Vec<EntitySpec>,
    /// Batch feature views: a transform over a source table, materialized.
    #[serde(default, rename = "batch_view")]
    pub batch_views: Vec<BatchViewSpec>,
    /// Aggregate views: windowed aggregations over a source table's rows (or a transform's
    /// outputs per row).
    #[serde(default, rename = "aggregate_view")]
    pub aggregate_views: Vec<AggregateViewSpec>,
    /// Request-time feature views: a transform over request data and stored features.
    #[serde(default, rename = "request_view")]
    pub request_views: Vec<RequestViewSpec>,
    /// Named groups of features.
    #[serde(default, rename = "feature_service")]
    pub feature_services: Vec<FeatureServiceSpec>,
    /// Push sources: names under which producers push rows of a source table (`POST /push`,
    /// `skewless stream`); the views fed are those whose `source` is that table.
    #[serde(default, rename = "push_source")]
    pub push_sources: Vec<PushSourceSpec>,
    /// How pushed rows are committed to the offline store.
    #[serde(default)]
    pub push: PushSpec,
}

/// `[[push_source]]`: rows pushed under `name` are rows of the source table `source`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSourceSpec {
    /// The name producers push to (Feast's `push_source_name`).
    pub name: String,
    /// The source Iceberg table, `namespace.table`, whose schema pushed rows must match.
    pub source: String,
    /// For humans.
    #[serde(default)]
    pub description: String,
}

/// `[push]`: micro-batches of pushed rows, each committed to the source table as one snapshot.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PushSpec {
    /// The longest time a pushed row waits before its micro-batch is committed (`1s`,
    /// `250ms`); 1 s when absent.
    pub commit_interval: Option<String>,
    /// A micro-batch is committed as soon as it holds this many rows; 100,000 when absent.
    pub max_rows: Option<usize>,
}

impl PushSpec {
    /// The commit interval, parsed (`250ms` or a duration such as `1s`).
    pub fn commit_interval(&self) -> Result<Duration> {
        match self.commit_interval.as_deref() {
            None => Ok(Duration::from_secs(1)),
            Some(text) => match text.trim().strip_suffix("ms") {
                Some(ms) => ms.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("`{text}` is not a duration; expected e.g. `250ms` or `1s`"),
                    )
                }),
                None => parse_duration(text),
            },
        }
    }
}

/// `[project]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSpec {
    /// Project name; prefixes online keys and names the registry.
    pub name: String,
}

/// `[offline]`: where the Iceberg catalog is.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum OfflineSpec {
    /// A SQL catalog; by default SQLite at `.skewless/catalog.db` with the warehouse in
    /// `.skewless/warehouse`, both relative to the repo.
    Sql {
        /// Catalog database URI (`sqlite:...`, `postgres://...`).
        uri: Option<String>,
        /// Warehouse location (a directory or an object-store URI).
        warehouse: Option<String>,
    },
    /// An Iceberg REST catalog.
    Rest {
        /// Catalog URI.
        uri: String,
        /// Warehouse name or location.
        warehouse: Option<String>,
        /// Further catalog properties (`token`, `credential`, `header.<name>`, ...), passed
        /// to the catalog as they are.
        #[serde(default)]
        props: BTreeMap<String, String>,
        /// `[offline.s3]`: the S3-compatible storage of an `s3://` warehouse.
        #[serde(default)]
        s3: Option<S3Settings>,
        /// Log in to the catalog with the S3 key pair (SeaweedFS's catalog).
        #[serde(default)]
        login_with_s3_keys: bool,
    },
}

impl Default for OfflineSpec {
    fn default() -> Self {
        OfflineSpec::Sql {
            uri: None,
            warehouse: None,
        }
    }
}

/// `[online]`: where the latest values are served from.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum OnlineSpec {
    /// The embedded store: one LMDB file, by default `.skewless/online.lmdb`; no server.
    Embedded {
        /// Store file, relative to the repo.
        path: Option<String>,
        /// The most bytes the store may hold (address space, not disk); 64 GiB by default.
        map_size: Option<u64>,
    },
    /// Redis (or a Redis-compatible server).
    Redis {
        /// `redis://host:port[/db]`.
        url: String,
    },
    /// A Redis Cluster, by seed nodes (`redis://host:port` each).
    #[serde(rename = "redis-cluster")]
    RedisCluster {
        /// Seed node URLs.
        nodes: Vec<String>,
    },
    /// A DynamoDB table.
    #[serde(rename = "dynamodb")]
    DynamoDb(crate::online::DynamoDbConfig),
}

impl Default for OnlineSpec {
    fn default() -> Self {
        OnlineSpec::Embedded {
            path: None,
            map_size: None,
        }
    }
}

/// The type of a join key.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// 32-bit integer (widened to 64 bits in keys).
    Int32,
    /// 64-bit integer.
    Int64,
    /// UTF-8 string.
    Utf8,
}

/// One join key of an entity.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JoinKeySpec {
    /// Column name in source tables, entity files and requests.
    pub name: String,
    /// Key type.
    #[serde(rename = "type")]
    pub key_type: KeyType,
}

/// `[[entity]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntitySpec {
    /// Entity name, e.g. `user`.
    pub name: String,
    /// Its join keys, in key order.
    pub join_keys: Vec<JoinKeySpec>,
    /// For humans.
    #[serde(default)]
    pub description: String,
}

/// `[[batch_view]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchViewSpec {
    /// View name; features are `<view>:<output column>`.
    pub name: String,
    /// Entities whose join keys identify a row.
    pub entities: Vec<String>,
    /// Source Iceberg table, `namespace.table`.
    pub source: String,
    /// The source's event-timestamp column.
    pub event_timestamp: String,
    /// The source's created (ingestion) timestamp column, which breaks ties between rows
    /// with the same event timestamp; the materialization time when absent.
    pub created_timestamp: Option<String>,
    /// The transform component (`.wasm`), relative to the repo.
    pub transform: PathBuf,
    /// How long a value stays valid after its event timestamp (`30d`, `12h`); forever when
    /// absent.
    pub ttl: Option<String>,
    /// Whether materialization writes the latest values to the online store.
    #[serde(default = "default_true")]
    pub online: bool,
    /// For humans.
    #[serde(default)]
    pub description: String,
}

/// `[[aggregate_view]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateViewSpec {
    /// View name; features are `<view>:<aggregation name>`.
    pub name: String,
    /// Entities whose join keys identify the rows aggregated together.
    pub entities: Vec<String>,
    /// Source Iceberg table, `namespace.table`.
    pub source: String,
    /// The source's event-timestamp column: which windows a row falls in.
    pub event_timestamp: String,
    /// The source's created timestamp column, which orders rows with equal event timestamps
    /// for `last` and `last_n`; the materialization time when absent.
    pub created_timestamp: Option<String>,
    /// A row transform (`.wasm`) whose outputs are the columns to aggregate; without one the
    /// source's columns are aggregated as they are.
    pub transform: Option<PathBuf>,
    /// How long a value stays valid after its latest event, as for batch views.
    pub ttl: Option<String>,
    /// Whether the aggregates are served online.
    #[serde(default = "default_true")]
    pub online: bool,
    /// The aggregations, each a feature.
    pub aggregations: Vec<AggregationSpec>,
    /// For humans.
    #[serde(default)]
    pub description: String,
}

/// One aggregation of an aggregate view,
/// `{ name = "amount_sum_24h", function = "sum", column = "amount", window = "24h" }`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AggregationSpec {
    /// The feature's name.
    pub name: String,
    /// `count`, `sum`, `mean`, `min`, `max`, `last`, `last_n`, `count_distinct`,
    /// `approx_count_distinct`, `variance` or `stddev`.
    pub function: String,
    /// The column aggregated (optional for `count`, which then counts rows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// A duration (`1h`, `24h`, `7d`) or `lifetime`.
    pub window: String,
    /// How many values `last_n` keeps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
}

fn default_true() -> bool {
    true
}

/// Where a request-time view's input comes from.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RequestInputSpec {
    /// A field of the request (or of the entity rows in historical retrieval).
    pub request: Option<String>,
    /// A stored feature, `view:feature`.
    pub feature: Option<String>,
}

/// `[[request_view]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestViewSpec {
    /// View name.
    pub name: String,
    /// The transform component (`.wasm`), relative to the repo.
    pub transform: PathBuf,
    /// Entities whose stored features feed the inputs.
    #[serde(default)]
    pub entities: Vec<String>,
    /// For each transform input, where its values come from.
    pub inputs: BTreeMap<String, RequestInputSpec>,
    /// For humans.
    #[serde(default)]
    pub description: String,
}

/// `[[feature_service]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureServiceSpec {
    /// Service name.
    pub name: String,
    /// Features, `view:feature` or `view:*`.
    pub features: Vec<String>,
}

/// A reference to a feature, `view:feature`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeatureRef {
    /// The view.
    pub view: String,
    /// The feature (an output column of the view's transform), or `*` for all.
    pub feature: String,
}

impl FeatureRef {
    /// Parses `view:feature`.
    pub fn parse(text: &str) -> Result<Self> {
        match text.split_once(':') {
            Some((view, feature))
                if !view.is_empty() && !feature.is_empty() && !feature.contains(':') =>
            {
                Ok(FeatureRef {
                    view: view.into(),
                    feature: feature.into(),
                })
            }
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("`{text}` is not a feature reference; expected `view:feature`"),
            )),
        }
    }
}

impl fmt::Display for FeatureRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.view, self.feature)
    }
}

impl RepoSpec {
    /// Reads and parses `<dir>/skewless.toml`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(REPO_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::new(
                ErrorKind::NotFound,
                format!("could not read the feature repo definition: {e}; a feature repo is a folder with a `{REPO_FILE}`"),
            )
            .with_context("file", path.display())
            .with_source(e)
        })?;
        Self::parse(&text).map_err(|e| e.with_context("file", path.display()))
    }

    /// Parses the text of a `skewless.toml`.
    pub fn parse(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            Error::new(ErrorKind::InvalidInput, format!("invalid {REPO_FILE}: {e}")).with_source(e)
        })
    }

    /// Every structural problem, as one message per problem; empty when the repo is sound.
    /// Component paths are resolved against `dir` and must exist.
    pub fn check(&self, dir: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = HashSet::new();
        let mut unique = |kind: &str, name: &str, problems: &mut Vec<String>| {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.push(format!(
                    "{kind} name `{name}` must be non-empty and use only letters, digits, `_` and `-`"
                ));
            }
            if !names.insert((kind.to_string(), name.to_string())) {
                problems.push(format!("{kind} `{name}` is declared more than once"));
            }
        };
        for entity in &self.entities {
            unique("entity", &entity.name, &mut problems);
            if entity.join_keys.is_empty() {
                problems.push(format!("entity `{}` declares no join keys", entity.name));
            }
        }
        let entity_names: HashSet<&str> = self.entities.iter().map(|e| e.name.as_str()).collect();
        for view in &self.batch_views {
            unique("feature view", &view.name, &mut problems);
            let at = format!("batch view `{}`", view.name);
            let sourced = Sourced {
                kind: "a batch view",
                entities: &view.entities,
                source: &view.source,
                ttl: view.ttl.as_deref(),
            };
            sourced.check(&at, &entity_names, &mut problems);
            check_component(&at, dir, &view.transform, &mut problems);
        }
        for view in &self.aggregate_views {
            unique("feature view", &view.name, &mut problems);
            let at = format!("aggregate view `{}`", view.name);
            let sourced = Sourced {
                kind: "an aggregate view",
                entities: &view.entities,
                source: &view.source,
                ttl: view.ttl.as_deref(),
            };
            sourced.check(&at, &entity_names, &mut problems);
            if let Some(transform) = &view.transform {
                check_component(&at, dir, transform, &mut problems);
            }
            if view.aggregations.is_empty() {
                problems.push(format!(
                    "{at} declares no aggregations; add `aggregations = [{{ name = \"...\", \
                     function = \"count\", window = \"1h\" }}]`"
                ));
            }
            // Functions, windows, columns and types are checked by `plan`, against the columns.
            let mut seen = HashSet::new();
            for aggregation in &view.aggregations {
                if !seen.insert(aggregation.name.as_str()) {
                    problems.push(format!(
                        "{at}: aggregation `{}` is declared more than once",
                        aggregation.name
                    ));
                }
            }
        }
        // Views with stored features: what request views may read and services may list.
        let stored_names: HashSet<&str> = (self.batch_views.iter().map(|v| v.name.as_str()))
            .chain(self.aggregate_views.iter().map(|v| v.name.as_str()))
            .collect();
        for view in &self.request_views {
            unique("feature view", &view.name, &mut problems);
            let at = format!("request view `{}`", view.name);
            check_entities(&at, &view.entities, &entity_names, &mut problems);
            check_component(&at, dir, &view.transform, &mut problems);
            for (input, source) in &view.inputs {
                match (&source.request, &source.feature) {
                    (Some(_), None) => {}
                    (None, Some(feature)) => match FeatureRef::parse(feature) {
                        Ok(r) if !stored_names.contains(r.view.as_str()) => problems.push(format!(
                            "{at}: input `{input}` reads `{r}`, but there is no batch or aggregate view `{}`",
                            r.view
                        )),
                        Ok(_) => {}
                        Err(e) => problems.push(format!("{at}: input `{input}`: {}", e.message())),
                    },
                    _ => problems.push(format!(
                        "{at}: input `{input}` must set exactly one of `request = \"field\"` or `feature = \"view:feature\"`"
                    )),
                }
            }
        }
        let view_names: HashSet<&str> = stored_names
            .iter()
            .copied()
            .chain(self.request_views.iter().map(|v| v.name.as_str()))
            .collect();
        for service in &self.feature_services {
            unique("feature service", &service.name, &mut problems);
            for feature in &service.features {
                match FeatureRef::parse(feature) {
                    Ok(r) if !view_names.contains(r.view.as_str()) => problems.push(format!(
                        "feature service `{}` lists `{r}`, but there is no feature view `{}`",
                        service.name, r.view
                    )),
                    Ok(_) => {}
                    Err(e) => problems.push(format!(
                        "feature service `{}`: {}",
                        service.name,
                        e.message()
                    )),
                }
            }
        }
        self.check_push(&mut unique, &mut problems);
        problems
    }

    /// `[[push_source]]` and `[push]`: names, source tables that feed a view, settings.
    fn check_push(
        &self,
        unique: &mut impl FnMut(&str, &str, &mut Vec<String>),
        problems: &mut Vec<String>,
    ) {
        for push in &self.push_sources {
            unique("push source", &push.name, problems);
            let fed = self.batch_views.iter().any(|v| v.source == push.source)
                || self.aggregate_views.iter().any(|v| v.source == push.source);
            if !fed {
                let mut sources: Vec<&str> =
                    self.batch_views.iter().map(|v| v.source.as_str()).collect();
                sources.sort_unstable();
                sources.dedup();
                problems.push(format!(
                    "push source `{}`: no view reads source `{}` (the views' sources: [{}]); \
                     a push source feeds the views whose `source` is its table",
                    push.name,
                    push.source,
                    sources.join(", ")
                ));
            }
        }
        if let Err(e) = self.push.commit_interval() {
            problems.push(format!("[push] commit_interval: {}", e.message()));
        }
        if self.push.max_rows == Some(0) {
            problems.push("[push] max_rows must be at least 1".to_owned());
        }
    }

    /// The TTL of a batch view, parsed.
    pub fn ttl(view: &BatchViewSpec) -> Result<Option<Duration>> {
        view.ttl.as_deref().map(parse_duration).transpose()
    }
}

/// What batch and aggregate views share, checked by one rule: the entities they name, a source
/// table `namespace.table`, a TTL that parses.
struct Sourced<'a> {
    /// "a batch view", "an aggregate view".
    kind: &'a str,
    entities: &'a [String],
    source: &'a str,
    ttl: Option<&'a str>,
}

impl Sourced<'_> {
    fn check(&self, at: &str, entity_names: &HashSet<&str>, problems: &mut Vec<String>) {
        check_entities(at, self.entities, entity_names, problems);
        if self.entities.is_empty() {
            problems.push(format!(
                "{at} names no entities; {} needs at least one",
                self.kind
            ));
        }
        match self.source.split_once('.') {
            Some((ns, table)) if !ns.is_empty() && !table.is_empty() => {}
            _ => problems.push(format!(
                "{at}: source `{}` is not a table name; expected `namespace.table`",
                self.source
            )),
        }
        if let Some(ttl) = self.ttl
            && let Err(e) = parse_duration(ttl)
        {
            problems.push(format!("{at}: ttl: {}", e.message()));
        }
    }
}

fn check_entities(
    at: &str,
    entities: &[String],
    known: &HashSet<&str>,
    problems: &mut Vec<String>,
) {
    for entity in entities {
        if !known.contains(entity.as_str()) {
            let mut known: Vec<&str> = known.iter().copied().collect();
            known.sort_unstable();
            problems.push(format!(
                "{at} uses entity `{entity}`, which is not declared (declared: [{}])",
                known.join(", ")
            ));
        }
    }
}

fn check_component(at: &str, dir: &Path, path: &Path, problems: &mut Vec<String>) {
    let resolved = dir.join(path);
    if !resolved.is_file() {
        problems.push(format!(
            "{at}: transform `{}` does not exist (resolved to {}); build it and point `transform` at the .wasm file",
            path.display(),
            resolved.display()
        ));
    }
}
