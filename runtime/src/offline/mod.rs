//! The offline store: Apache Iceberg tables for source data and materialized features.
//!
//! An [`OfflineStore`] is an Iceberg catalog plus its warehouse. It holds source tables (raw
//! data) and one feature table per feature view, typically partitioned by day of the event
//! timestamp. Everything it writes is plain Iceberg (format v2, Parquet data files), so any
//! engine can read it: PyIceberg's `SqlCatalog("default", uri=..., warehouse=...)` opens the
//! embedded default, and Spark, Trino or DuckDB read the same tables.
//!
//! - [`OfflineConfig`] chooses the catalog backend by its `type` (the one place that names a
//!   concrete backend): `sql` (a SQL catalog on SQLite plus a local warehouse folder, the
//!   embedded default) or `rest` (an Iceberg REST catalog over plain `http://`; opening it
//!   asks the server for its config and lists namespaces, so an unreachable or misconfigured
//!   catalog is reported at open, within [`REST_OPEN_TIMEOUT`]). A REST catalog's tables are
//!   on local files or, with an `s3://` warehouse and [`S3Settings`], on S3-compatible object
//!   storage (cargo feature `s3`; its endpoint and keys are checked at open too):
//!   `storage.rs` chooses by the warehouse's scheme.
//! - [`TableName`] is a validated `namespace.table`.
//! - [`OfflineStore::create_table`] turns an Arrow schema into an Iceberg table, optionally
//!   partitioned by `day(<timestamp column>)`.
//! - [`OfflineStore::begin_append`] starts an [`AppendJob`]: batches are streamed into Parquet
//!   files as they arrive (memory does not grow with the number of rows) and
//!   [`AppendJob::commit`] publishes all of them as **one atomic snapshot** whose summary
//!   carries the caller's properties (`skewless.view`, `skewless.digest`,
//!   `skewless.window.start`, ...). A job dropped or [aborted](AppendJob::abort) before commit
//!   publishes nothing.
//! - [`OfflineStore::begin_replace`] starts an [`AppendJob`] whose commit is an `overwrite`:
//!   its rows replace every row the table held in a time range, in one atomic snapshot
//!   (earlier snapshots still read what they held). See `overwrite.rs` for how the snapshot
//!   is written and `commit.rs` for how it is committed.
//! - [`OfflineStore::appended_since`] lists the data files a table's snapshots appended after
//!   an earlier snapshot, for incremental reads ([`ScanOptions::data_files`]).
//! - [`OfflineStore::expire_snapshots`] removes snapshots older than a retention and deletes
//!   the files only they referenced; retained snapshots read exactly what they read before.
//! - [`OfflineStore::scan`] streams a table (or a pinned snapshot: time travel) as Arrow
//!   batches, pushing a time range down so that day partitions and files outside it are never
//!   opened.
//! - [`OfflineStore::snapshots`] and [`OfflineStore::snapshot_as_of`] answer "which data did
//!   the table hold then?", so a training set can be rebuilt exactly.
//!
//! # Replacing rows on an append-only library
//!
//! iceberg-rust 0.10.1 can only **append** through its transactions (no overwrite, delete,
//! replace-partition or row-delta action: upstream epic apache/iceberg-rust#2269), and builds
//! the `TableCommit` that `Catalog::update_table` takes only inside them. Replacing a window
//! therefore writes the overwrite snapshot with the crate's public manifest writers and
//! commits it with the same compare-and-swap of the catalog's metadata pointer that the SQL
//! catalog uses, under the same requirements (the table's uuid, `main` still at the snapshot
//! planned on). That path exists for the SQL catalog only: with a REST catalog,
//! [`OfflineStore::can_replace`] is false and callers append instead (retrieval resolves the
//! duplicate rows by the greatest `(event_ts, created_ts)`, so answers stay right while
//! storage grows).
//!
//! # Other limits
//! - Timestamps with a time zone are stored as Iceberg `timestamptz`, whose Arrow form is
//!   labelled `"+00:00"`; iceberg-rust rejects a batch labelled `"UTC"`, so
//!   [`AppendJob::write`] relabels (the values, UTC epoch microseconds, are unchanged).
//! - The local warehouse uses blocking file I/O: right for the embedded default. S3 (and
//!   S3-compatible servers) is offered for the REST catalog only; the SQL catalog's warehouse
//!   is a local folder. GCS and Azure storage are not built in.
//! - The REST catalog is reached without TLS (`https://` is refused at open: no TLS stack is
//!   built in). Only the probe at open is bounded by a timeout; later requests are not.
//! - Schema evolution (adding a column) is not exposed yet.
//!
//! ```no_run
//! # async fn demo() -> skewless_runtime::Result<()> {
//! use std::collections::HashMap;
//!
//! use skewless_runtime::offline::{OfflineConfig, OfflineStore, ScanOptions, TableName};
//! use futures::{StreamExt, TryStreamExt};
//!
//! let store = OfflineStore::open(&OfflineConfig::embedded(".skewless/offline")).await?;
//! let name: TableName = "features.transactions".parse()?;
//! # let schema = arrow_schema::Schema::empty();
//! # let batch = arrow_array::RecordBatch::new_empty(schema.clone().into());
//! store.create_table_if_missing(&name, &schema, Some("event_ts"), HashMap::new()).await?;
//! let mut job = store.begin_append(&name).await?;
//! job.write(batch).await?;
//! let snapshot = job
//!     .commit(HashMap::from([("skewless.view".to_owned(), "transactions".to_owned())]))
//!     .await?;
//! let batches: Vec<_> = store
//!     .scan(&name, ScanOptions::default().snapshot(snapshot.snapshot_id))
//!     .await?
//!     .try_collect()
//!     .await?;
//! # Ok(()) }
//! ```

mod append;
mod commit;
mod compression;
mod durable;
mod expire;
mod gather;
mod incremental;
mod lanes;
mod name;
mod overwrite;
mod scan;
mod schema;
mod split;
mod storage;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Schema as ArrowSchema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::{Snapshot, TableMetadata, Transform, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::{Catalog, CatalogBuilder, TableCreation};
use iceberg_catalog_rest::{
    REST_CATALOG_PROP_URI, REST_CATALOG_PROP_WAREHOUSE, RestCatalogBuilder,
};
use iceberg_catalog_sql::{
    SQL_CATALOG_PROP_BIND_STYLE, SQL_CATALOG_PROP_URI, SQL_CATALOG_PROP_WAREHOUSE, SqlBindStyle,
    SqlCatalogBuilder,
};
use serde::{Deserialize, Serialize};

pub use append::{AppendJob, CommitGuard};
pub(crate) use compression::{CODEC as COMPRESSION_CODEC, FEATURE_TABLE_CODEC};
pub use expire::Expired;
pub use incremental::Appended;
pub use name::TableName;
pub use scan::{ByteRanges, RecordBatchStream, ScanOptions, TimeRange};
pub(crate) use schema::align_batch;
pub use storage::{S3Settings, Secret};

use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;

/// The catalog name the embedded SQL catalog is registered under. Other engines must use the
/// same name to see the same tables (`SqlCatalog("default", ...)` in PyIceberg).
pub const SQL_CATALOG_NAME: &str = "default";

/// The catalog name the REST catalog is opened under (a client-side label only).
const REST_CATALOG_NAME: &str = "default";

/// How long [`OfflineStore::open`] waits for a REST catalog to answer its probe (the config
/// request and a namespace listing) before reporting it [unavailable](ErrorKind::Unavailable).
pub const REST_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The message iceberg gives every failure to get an HTTP response at all (connection
/// refused, DNS, reset): its `From<reqwest::Error>`. Such failures are
/// [`ErrorKind::Unavailable`].
const HTTP_TRANSPORT_FAILURE: &str = "Failed to execute http request";

/// Snapshot summary key Iceberg uses for the number of rows a snapshot added.
const ADDED_RECORDS: &str = "added-records";

/// Which catalog holds the tables, and where their files live. Deserialized from the project
/// file, tagged by `type`:
///
/// ```toml
/// [offline]
/// type = "sql"
/// uri = "sqlite:.skewless/catalog.db?mode=rwc"
/// warehouse = "/abs/path/.skewless/warehouse"
/// ```
///
/// or
///
/// ```toml
/// [offline]
/// type = "rest"
/// uri = "http://localhost:8181"
/// warehouse = "file:///abs/path/warehouse"   # optional; or s3://bucket[/prefix]
/// props = { token = "..." }                   # optional, passed to the catalog as is
/// login_with_s3_keys = false                  # optional: the catalog's OAuth2 credential
///                                             # is the S3 key pair (SeaweedFS)
///
/// [offline.s3]                                # optional: see S3Settings
/// endpoint = "http://127.0.0.1:8333"
/// region = "us-east-1"
/// path_style = true
/// ```
///
/// `Debug` shows the names of `props` but not their values, which may be secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum OfflineConfig {
    /// A SQL catalog (SQLite) and a local warehouse folder: the embedded default.
    Sql {
        /// `sqlite:<path>?mode=rwc`; `?mode=rwc` (create if missing) is added when no mode is
        /// given.
        uri: String,
        /// The warehouse folder; relative paths are made absolute against the current
        /// directory.
        warehouse: PathBuf,
    },
    /// An Iceberg REST catalog, reached over plain HTTP.
    Rest {
        /// The catalog's base URL, `http://host:port[/prefix]` (without the `/v1`).
        uri: String,
        /// The warehouse identifier the catalog expects, if any.
        #[serde(default)]
        warehouse: Option<String>,
        /// Further catalog properties, passed to iceberg-rust's REST catalog as they are:
        /// `token`, `credential` (`client_id:secret`), `oauth2-server-uri`, `scope`,
        /// `header.<name>`, `prefix`, ... May hold secrets: skewless's error messages and
        /// `Debug` do not repeat their values (iceberg redacts auth headers).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        props: BTreeMap<String, String>,
        /// The S3-compatible storage the tables are on (with an `s3://` warehouse). Without
        /// it, an `s3://` warehouse is reached with AWS's defaults and the `AWS_*`
        /// environment.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s3: Option<S3Settings>,
        /// Log in to the catalog with the S3 key pair as OAuth2 client credentials
        /// (`credential = "<access key id>:<secret access key>"`), as SeaweedFS's catalog
        /// expects; the keys may then come from the environment too.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        login_with_s3_keys: bool,
    },
}

impl fmt::Debug for OfflineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfflineConfig::Sql { uri, warehouse } => f
                .debug_struct("Sql")
                .field("uri", uri)
                .field("warehouse", warehouse)
                .finish(),
            OfflineConfig::Rest {
                uri,
                warehouse,
                props,
                s3,
                login_with_s3_keys,
            } => f
                .debug_struct("Rest")
                .field("uri", uri)
                .field("warehouse", warehouse)
                .field(
                    "props",
                    &props.keys().map(|k| (k, "***")).collect::<BTreeMap<_, _>>(),
                )
                .field("s3", s3)
                .field("login_with_s3_keys", login_with_s3_keys)
                .finish(),
        }
    }
}

impl OfflineConfig {
    /// The `type` values a config may have.
    pub const KNOWN_TYPES: &'static [&'static str] = &["sql", "rest"];

    /// The embedded default under `dir`: `dir/catalog.db` and `dir/warehouse/`.
    pub fn embedded(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        OfflineConfig::Sql {
            uri: format!("sqlite:{}?mode=rwc", dir.join("catalog.db").display()),
            warehouse: dir.join("warehouse"),
        }
    }

    /// The backend's `type` string.
    pub fn type_name(&self) -> &'static str {
        match self {
            OfflineConfig::Sql { .. } => "sql",
            OfflineConfig::Rest { .. } => "rest",
        }
    }
}

/// Information about one snapshot (one committed append) of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The snapshot's id: pin a scan to it with [`ScanOptions::snapshot`].
    pub snapshot_id: i64,
    /// The snapshot it was committed on top of (`None` for a table's first).
    pub parent_id: Option<i64>,
    /// When it was committed, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The snapshot summary: Iceberg's own keys (`operation`, `added-records`,
    /// `added-data-files`, ...) and the committer's (`skewless.view`, ...).
    pub summary: HashMap<String, String>,
    /// The number of rows the snapshot added, when the summary records it.
    pub added_rows: Option<u64>,
}

impl SnapshotInfo {
    fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut summary = snapshot.summary().additional_properties.clone();
        summary.insert(
            "operation".to_owned(),
            snapshot.summary().operation.as_str().to_owned(),
        );
        let added_rows = summary
            .get(ADDED_RECORDS)
            .and_then(|v| v.parse().ok())
            .or_else(|| snapshot.added_rows_count());
        SnapshotInfo {
            snapshot_id: snapshot.snapshot_id(),
            parent_id: snapshot.parent_snapshot_id(),
            timestamp_ms: snapshot.timestamp_ms(),
            summary,
            added_rows,
        }
    }
}

/// An Iceberg catalog and its warehouse: the offline store. Cheap to clone (the catalog and
/// its connection pool are shared).
#[derive(Clone)]
pub struct OfflineStore {
    catalog: Arc<dyn Catalog>,
    description: String,
    /// Commits what the catalog's transactions cannot (overwrites); SQL catalogs only.
    committer: Option<Arc<commit::SqlCommitter>>,
    /// Checked before each scanned batch: a caller's request to stop the job reading.
    interrupt: Interrupt,
}

impl fmt::Debug for OfflineStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfflineStore")
            .field("catalog", &self.description)
            .finish_non_exhaustive()
    }
}

impl OfflineStore {
    /// Opens (creating if needed) the catalog `config` names. For the SQL catalog this creates
    /// the SQLite file's parent directory and the warehouse directory. A REST catalog is
    /// probed (its config and namespaces are fetched): if it does not answer within
    /// [`REST_OPEN_TIMEOUT`] or cannot be reached, this fails with
    /// [`ErrorKind::Unavailable`]; if it answers with an error (wrong URI, warehouse or
    /// credentials), with [`ErrorKind::InvalidInput`]. Both name the URI in the `catalog`
    /// context.
    ///
    /// Must be called inside a tokio runtime: the catalog keeps a handle to it.
    pub async fn open(config: &OfflineConfig) -> Result<Self> {
        // The one place a concrete backend is named.
        let (catalog, description, committer) = match config {
            OfflineConfig::Sql { uri, warehouse } => {
                let (catalog, description, uri) = open_sql(uri, warehouse).await?;
                let committer = commit::SqlCommitter::new(&uri).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("cannot open the SQL catalog: {}", describe_error(&e)),
                    )
                    .with_context("catalog", &uri)
                })?;
                (catalog, description, Some(Arc::new(committer)))
            }
            OfflineConfig::Rest {
                uri,
                warehouse,
                props,
                s3,
                login_with_s3_keys,
            } => {
                let rest = RestOptions {
                    warehouse: warehouse.as_deref(),
                    props,
                    s3: s3.as_ref(),
                    login_with_s3_keys: *login_with_s3_keys,
                };
                let (catalog, description) = open_rest(uri, &rest, REST_OPEN_TIMEOUT).await?;
                (catalog, description, None)
            }
        };
        Ok(OfflineStore {
            catalog,
            description,
            committer,
            interrupt: Interrupt::new(),
        })
    }

    /// The same store, with every scan stopping at its next batch once `interrupt` is
    /// requested (an [`ErrorKind::Interrupted`] error from the stream).
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// Creates `name` with the columns of `schema` (see the module docs for the supported
    /// types; a non-nullable Arrow field becomes a required column). With
    /// `day_partition_column`, the table is partitioned by `day(<column>)`, which must be a
    /// timestamp or date column. Creates the namespace if missing. Fails if the table exists.
    pub async fn create_table(
        &self,
        name: &TableName,
        schema: &ArrowSchema,
        day_partition_column: Option<&str>,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        let iceberg_schema = schema::to_iceberg_schema(name, schema)?;
        let partition_spec = match day_partition_column {
            None => None,
            Some(column) => Some(day_partition_spec(name, schema, &iceberg_schema, column)?),
        };
        self.ensure_namespace(name).await?;
        let mut properties = properties;
        properties
            .entry(compression::CODEC.to_owned())
            .or_insert_with(|| compression::DEFAULT_CODEC.to_owned());
        let creation = TableCreation::builder()
            .name(name.table().to_owned())
            .schema(iceberg_schema)
            .partition_spec_opt(partition_spec)
            .properties(properties)
            .build();
        self.catalog
            .create_table(&name.namespace_ident(), creation)
            .await
            .map_err(|e| convert_error(e, name, "creating the table"))?;
        Ok(())
    }

    /// Like [`create_table`](Self::create_table), but an existing table is left as it is
    /// (its schema is not compared). Returns whether the table was created.
    pub async fn create_table_if_missing(
        &self,
        name: &TableName,
        schema: &ArrowSchema,
        day_partition_column: Option<&str>,
        properties: HashMap<String, String>,
    ) -> Result<bool> {
        if self.table_exists(name).await? {
            return Ok(false);
        }
        match self
            .create_table(name, schema, day_partition_column, properties)
            .await
        {
            Ok(()) => Ok(true),
            // Another process created it between our check and our create.
            Err(e) if self.table_exists(name).await.unwrap_or(false) => {
                drop(e);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether `name` exists.
    pub async fn table_exists(&self, name: &TableName) -> Result<bool> {
        self.catalog
            .table_exists(&name.ident())
            .await
            .map_err(|e| convert_error(e, name, "checking whether the table exists"))
    }

    /// The table's current schema as Arrow, as iceberg-rust reads and writes it: zoned
    /// timestamps are `Timestamp(Microsecond, "+00:00")`, binary is `LargeBinary`, and each
    /// field carries its Iceberg field id in the `PARQUET:field_id` metadata.
    pub async fn arrow_schema(&self, name: &TableName) -> Result<SchemaRef> {
        let table = self.load(name).await?;
        current_arrow_schema(name, table.metadata())
    }

    /// The table's properties (including those Iceberg sets itself).
    pub async fn table_properties(&self, name: &TableName) -> Result<HashMap<String, String>> {
        Ok(self.load(name).await?.metadata().properties().clone())
    }

    /// Sets (adds or replaces) table properties in one commit.
    pub async fn set_table_properties(
        &self,
        name: &TableName,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        if properties.is_empty() {
            return Ok(());
        }
        let table = self.load(name).await?;
        let tx = Transaction::new(&table);
        let action = properties
            .into_iter()
            .fold(tx.update_table_properties(), |action, (k, v)| {
                action.set(k, v)
            });
        let tx = action
            .apply(tx)
            .map_err(|e| convert_error(e, name, "setting table properties"))?;
        tx.commit(self.catalog.as_ref())
            .await
            .map_err(|e| convert_error(e, name, "committing table properties"))?;
        Ok(())
    }

    /// Every snapshot of the table, oldest first.
    pub async fn snapshots(&self, name: &TableName) -> Result<Vec<SnapshotInfo>> {
        let table = self.load(name).await?;
        let mut snapshots: Vec<_> = table.metadata().snapshots().collect();
        snapshots.sort_by_key(|s| (s.timestamp_ms(), s.sequence_number(), s.snapshot_id()));
        Ok(snapshots
            .into_iter()
            .map(|s| SnapshotInfo::from_snapshot(s))
            .collect())
    }

    /// The table's current snapshot, or `None` if nothing was ever committed.
    pub async fn current_snapshot(&self, name: &TableName) -> Result<Option<SnapshotInfo>> {
        let table = self.load(name).await?;
        Ok(table
            .metadata()
            .current_snapshot()
            .map(|s| SnapshotInfo::from_snapshot(s)))
    }

    /// The snapshot that was current at `timestamp_ms` (milliseconds since the Unix epoch):
    /// the latest entry of the table's snapshot log at or before it. `None` if the table had
    /// no snapshot yet. (iceberg-rust has no "as of" lookup of its own.)
    pub async fn snapshot_as_of(&self, name: &TableName, timestamp_ms: i64) -> Result<Option<i64>> {
        let table = self.load(name).await?;
        Ok(table
            .metadata()
            .history()
            .iter()
            .filter(|entry| entry.timestamp_ms <= timestamp_ms)
            .max_by_key(|entry| entry.timestamp_ms)
            .map(|entry| entry.snapshot_id))
    }

    /// Starts an append to `name`. See [`AppendJob`].
    pub async fn begin_append(&self, name: &TableName) -> Result<AppendJob> {
        let table = self.load(name).await?;
        AppendJob::new(self.catalog.clone(), name.clone(), table, None, None).await
    }

    /// Starts an append to `name` whose data files go under the folder `dir` of the table's
    /// data location (a part of a distributed job: its files are
    /// [`finish`](AppendJob::finish)ed, not committed, and [`delete_dir`](Self::delete_dir)
    /// removes whatever its attempts left).
    pub async fn begin_append_in(&self, name: &TableName, dir: &str) -> Result<AppendJob> {
        let table = self.load(name).await?;
        AppendJob::new(self.catalog.clone(), name.clone(), table, None, Some(dir)).await
    }

    /// Deletes the folder `dir` of `name`'s data location and everything in it (the files of
    /// a distributed job that committed nothing, or of an attempt whose result was not
    /// used). Files under it that a snapshot references must not be deleted: the caller
    /// names only folders of its own uncommitted files.
    pub async fn delete_dir(&self, name: &TableName, dir: &str) -> Result<()> {
        let table = self.load(name).await?;
        let path = format!("{}/{dir}", append::data_location(table.metadata()));
        table
            .file_io()
            .delete_prefix(&path)
            .await
            .map_err(|e| convert_error(e, name, "deleting a job's files"))
    }

    /// The data files a scan of `name` with `options` reads and their sizes in bytes: what a
    /// distributed job splits among its workers.
    pub async fn scan_files(
        &self,
        name: &TableName,
        options: &ScanOptions,
    ) -> Result<Vec<(String, u64)>> {
        let table = self.load(name).await?;
        scan::files(name, &table, options).await
    }

    /// Whether [`begin_replace`](Self::begin_replace) is available: the catalog is the SQL
    /// catalog (see the module docs).
    pub fn can_replace(&self) -> bool {
        self.committer.is_some()
    }

    /// Starts a job whose commit replaces every row of `name` whose `range.column` lies in
    /// the range with the job's rows, in one `overwrite` snapshot (an empty range replaces
    /// nothing: the commit is an append that, unlike [`begin_append`](Self::begin_append)'s,
    /// never lands on top of a commit it did not plan for without asking `guard`). The job's
    /// rows should lie in the range (rows outside it are committed too, as added rows).
    ///
    /// When another commit lands first, `guard` (if any) is asked about the table it left;
    /// then the overwrite is planned again and retried only if it replaces the same files.
    /// Fails with [`InvalidInput`](ErrorKind::InvalidInput) when the catalog cannot commit
    /// overwrites ([`can_replace`](Self::can_replace)).
    pub async fn begin_replace(
        &self,
        name: &TableName,
        range: TimeRange,
        guard: Option<CommitGuard>,
    ) -> Result<AppendJob> {
        let Some(committer) = self.committer.clone() else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "replacing rows needs the SQL catalog; this REST catalog can only append",
            )
            .with_context("table", name));
        };
        let table = self.load(name).await?;
        let replace = append::Replace {
            range,
            committer,
            guard,
        };
        AppendJob::new(
            self.catalog.clone(),
            name.clone(),
            table,
            Some(replace),
            None,
        )
        .await
    }

    /// The data files `name`'s snapshots appended after snapshot `from`, up to and including
    /// snapshot `to` (its current snapshot, typically). Fails with
    /// [`InvalidInput`](ErrorKind::InvalidInput), naming the snapshot, when one of them is
    /// not an append or the lineage from `to` back to `from` is broken (expired, rolled
    /// back): rows may then have been rewritten, and only a full run is right.
    pub async fn appended_since(&self, name: &TableName, from: i64, to: i64) -> Result<Appended> {
        let table = self.load(name).await?;
        incremental::appended_between(name, &table, from, to).await
    }

    /// Removes the snapshots of `name` committed before `older_than_ms` (milliseconds since
    /// the Unix epoch), except the current one and the `retain_last` newest of its lineage,
    /// then deletes the manifest lists, manifests and data files that only removed snapshots
    /// referenced. Time travel to a removed snapshot is then a
    /// [`NotFound`](ErrorKind::NotFound) error; retained snapshots read what they read before.
    pub async fn expire_snapshots(
        &self,
        name: &TableName,
        older_than_ms: i64,
        retain_last: usize,
    ) -> Result<Expired> {
        let table = self.load(name).await?;
        expire::expire(
            self.catalog.as_ref(),
            name,
            table,
            older_than_ms,
            retain_last,
        )
        .await
    }

    /// Streams the table's rows as Arrow batches. See [`ScanOptions`].
    pub async fn scan(&self, name: &TableName, options: ScanOptions) -> Result<RecordBatchStream> {
        let table = self.load(name).await?;
        let batches = scan::scan(name, &table, options).await?;
        let interrupt = self.interrupt.clone();
        let what = format!("scanning {name}");
        Ok(Box::pin(batches.map(move |batch| {
            interrupt.check(&what)?;
            batch
        })))
    }

    /// [`scan`](Self::scan) collected into memory: for small tables, tests and previews.
    pub async fn scan_collect(
        &self,
        name: &TableName,
        options: ScanOptions,
    ) -> Result<Vec<RecordBatch>> {
        self.scan(name, options).await?.try_collect().await
    }

    async fn load(&self, name: &TableName) -> Result<Table> {
        self.catalog
            .load_table(&name.ident())
            .await
            .map_err(|e| convert_error(e, name, "loading the table"))
    }

    async fn ensure_namespace(&self, name: &TableName) -> Result<()> {
        let namespace = name.namespace_ident();
        let exists = self
            .catalog
            .namespace_exists(&namespace)
            .await
            .map_err(|e| convert_error(e, name, "checking the namespace"))?;
        if exists {
            return Ok(());
        }
        match self
            .catalog
            .create_namespace(&namespace, HashMap::new())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == iceberg::ErrorKind::NamespaceAlreadyExists => Ok(()),
            Err(e) => Err(convert_error(e, name, "creating the namespace")),
        }
    }
}

/// The catalog, its description and the uri it was opened with.
async fn open_sql(uri: &str, warehouse: &Path) -> Result<(Arc<dyn Catalog>, String, String)> {
    let Some(rest) = uri.strip_prefix("sqlite:") else {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "only SQLite SQL catalogs are built in: expected a uri like \
             `sqlite:<path>?mode=rwc`",
        )
        .with_context("catalog", uri));
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let path = path.strip_prefix("//").unwrap_or(path);
    if !path.is_empty()
        && path != ":memory:"
        && let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::from(e)
                .with_context("directory", parent.display())
                .with_context("catalog", uri)
        })?;
    }
    let uri = match query {
        Some(query) if query.split('&').any(|kv| kv.starts_with("mode=")) => uri.to_owned(),
        Some(_) => format!("{uri}&mode=rwc"),
        None => format!("{uri}?mode=rwc"),
    };
    let warehouse = std::path::absolute(warehouse)
        .map_err(|e| Error::from(e).with_context("warehouse", warehouse.display()))?;
    std::fs::create_dir_all(&warehouse)
        .map_err(|e| Error::from(e).with_context("warehouse", warehouse.display()))?;
    let warehouse_url = format!("file://{}", warehouse.display());
    let props = HashMap::from([
        (SQL_CATALOG_PROP_URI.to_owned(), uri.clone()),
        (SQL_CATALOG_PROP_WAREHOUSE.to_owned(), warehouse_url.clone()),
        (
            SQL_CATALOG_PROP_BIND_STYLE.to_owned(),
            SqlBindStyle::QMark.to_string(),
        ),
    ]);
    let catalog = SqlCatalogBuilder::default()
        .with_storage_factory(storage::factory(Some(&warehouse_url), None)?)
        .load(SQL_CATALOG_NAME, props)
        .await
        .map_err(|e| {
            let kind = error_kind(&e);
            Error::new(
                kind,
                format!("cannot open the SQL catalog: {}", describe_error(&e)),
            )
            .with_context("catalog", &uri)
            .with_source(e)
        })?;
    Ok((
        Arc::new(catalog),
        format!("sql catalog {uri}, warehouse {warehouse_url}"),
        uri,
    ))
}

/// A REST catalog's settings besides its uri.
struct RestOptions<'a> {
    warehouse: Option<&'a str>,
    props: &'a BTreeMap<String, String>,
    s3: Option<&'a S3Settings>,
    login_with_s3_keys: bool,
}

async fn open_rest(
    uri: &str,
    rest: &RestOptions<'_>,
    timeout: Duration,
) -> Result<(Arc<dyn Catalog>, String)> {
    let invalid =
        |message: &str| Error::new(ErrorKind::InvalidInput, message).with_context("catalog", uri);
    if uri.starts_with("https://") {
        return Err(invalid(
            "this skewless is built without TLS: the REST catalog must be reached over \
             `http://` (e.g. through a local proxy)",
        ));
    }
    if !uri.starts_with("http://") {
        return Err(invalid(
            "the REST catalog uri must be an `http://` URL, like `http://localhost:8181`",
        ));
    }
    // iceberg appends `/v1/...` to the uri as it is.
    let uri = uri.trim_end_matches('/');
    // S3 settings with the environment's keys filled in, when the tables are on S3.
    let s3 = match rest.s3 {
        Some(s3) => Some(s3.resolved()),
        None if rest.warehouse.is_some_and(storage::is_s3_url) => {
            Some(S3Settings::default().resolved())
        }
        None => None,
    }
    .transpose()
    .map_err(|e| e.with_context("catalog", uri))?;
    let storage_factory = storage::factory(rest.warehouse, s3.as_ref())
        .map_err(|e| e.with_context("catalog", uri))?;
    // Values that must never reach a message: the S3 secrets and the catalog properties that
    // may be secret (tokens, credentials and the secret half of `client_id:secret`, headers).
    let mut secrets: Vec<String> = rest
        .props
        .iter()
        .filter(|(key, _)| is_secret_prop(key))
        .flat_map(|(_, value)| {
            let secret_half = value.split_once(':').map(|(_, secret)| secret.to_owned());
            std::iter::once(value.clone()).chain(secret_half)
        })
        .collect();
    let mut all: HashMap<String, String> = HashMap::new();
    if let Some(s3) = &s3 {
        all.extend(s3.file_io_props());
        secrets.extend(s3.secret_access_key.iter().map(|s| s.expose().to_owned()));
        secrets.extend(s3.session_token.iter().map(|s| s.expose().to_owned()));
    }
    if rest.login_with_s3_keys {
        // The key pair of the S3 settings, or of the environment when the tables are local.
        let keys = match &s3 {
            Some(s3) => s3.clone(),
            None => S3Settings::default()
                .resolved()
                .map_err(|e| e.with_context("catalog", uri))?,
        };
        secrets.extend(keys.secret_access_key.iter().map(|s| s.expose().to_owned()));
        let Some((id, secret)) = keys
            .access_key_id
            .as_ref()
            .zip(keys.secret_access_key.as_ref())
        else {
            return Err(invalid(
                "login_with_s3_keys needs the S3 key pair: access_key_id and \
                 secret_access_key in `[offline.s3]`, or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY",
            ));
        };
        all.insert("credential".to_owned(), format!("{id}:{}", secret.expose()));
    }
    all.extend(rest.props.clone());
    all.insert(REST_CATALOG_PROP_URI.to_owned(), uri.to_owned());
    if let Some(warehouse) = rest.warehouse {
        all.insert(REST_CATALOG_PROP_WAREHOUSE.to_owned(), warehouse.to_owned());
    }
    secrets.retain(|s| !s.is_empty());
    let scrub = |message: String| {
        secrets.iter().fold(message, |message, secret| {
            message.replace(secret.as_str(), "***")
        })
    };
    let catalog = RestCatalogBuilder::default()
        .with_storage_factory(storage_factory.clone())
        .load(REST_CATALOG_NAME, all.clone())
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                scrub(format!(
                    "cannot open the REST catalog: {}",
                    describe_error(&e)
                )),
            )
            .with_context("catalog", uri)
        })?;
    // The catalog connects lazily; probe it so that a wrong or unreachable uri is reported
    // here, not at the first table operation.
    match tokio::time::timeout(timeout, catalog.list_namespaces(None)).await {
        Ok(Ok(_)) => {}
        Err(_elapsed) => {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the REST catalog did not answer within {} ms",
                    timeout.as_millis()
                ),
            )
            .with_context("catalog", uri));
        }
        Ok(Err(e)) => {
            let kind = match error_kind(&e) {
                ErrorKind::Unavailable => ErrorKind::Unavailable,
                // It answered, but with an error status: misconfiguration.
                _ => ErrorKind::InvalidInput,
            };
            let what = match kind {
                ErrorKind::Unavailable => "cannot reach the REST catalog",
                _ => {
                    "the REST catalog refused the request (check its uri, warehouse and \
                      credentials)"
                }
            };
            // iceberg's Display carries the status and the server's error body (with
            // sensitive headers redacted); its message alone is generic. The error itself is
            // not kept as the source: its chain may quote a secret.
            return Err(
                Error::new(kind, scrub(format!("{what}: {e}"))).with_context("catalog", uri)
            );
        }
    }
    let mut description = match rest.warehouse {
        Some(warehouse) => format!("rest catalog {uri}, warehouse {warehouse}"),
        None => format!("rest catalog {uri}"),
    };
    if let Some(s3) = &s3 {
        description.push_str(&format!(", {}", s3.describe()));
        // Likewise the storage: a wrong endpoint, key pair or bucket is reported here.
        #[cfg(feature = "s3")]
        if let Some(warehouse) = rest.warehouse.filter(|w| storage::is_s3_url(w)) {
            let error = match tokio::time::timeout(timeout, storage::check(s3, warehouse)).await {
                Ok(Ok(())) => None,
                Err(_elapsed) => Some(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the S3 storage did not answer within {} ms",
                        timeout.as_millis()
                    ),
                )),
                Ok(Err(e)) => Some(e),
            };
            if let Some(e) = error {
                return Err(Error::new(e.kind(), scrub(e.to_string()))
                    .with_context("storage", s3.describe())
                    .with_context("warehouse", warehouse)
                    .with_context("catalog", uri));
            }
        }
    }
    Ok((Arc::new(catalog), description))
}

/// Whether a REST catalog property may hold a secret, so that no message may show its value.
fn is_secret_prop(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "credential"
        || key.starts_with("header.")
        || ["token", "secret", "password"]
            .iter()
            .any(|word| key.contains(word))
}

fn day_partition_spec(
    name: &TableName,
    arrow: &ArrowSchema,
    schema: &iceberg::spec::Schema,
    column: &str,
) -> Result<UnboundPartitionSpec> {
    let bad = |message: String| {
        Error::new(ErrorKind::InvalidInput, message)
            .with_context("column", column)
            .with_context("table", name)
    };
    let field = arrow
        .field_with_name(column)
        .map_err(|_| bad("the day partition column is not in the schema".to_owned()))?;
    if !matches!(
        field.data_type(),
        DataType::Timestamp(..) | DataType::Date32
    ) {
        return Err(bad(format!(
            "the day partition column must be a timestamp or a date, found {}",
            field.data_type()
        )));
    }
    let id = schema
        .field_by_name(column)
        .map(|f| f.id)
        .ok_or_else(|| bad("the day partition column is not in the schema".to_owned()))?;
    Ok(UnboundPartitionSpec::builder()
        .add_partition_field(id, format!("{column}_day"), Transform::Day)
        .map_err(|e| bad(format!("cannot partition by day: {}", e.message())))?
        .build())
}

fn current_arrow_schema(name: &TableName, metadata: &TableMetadata) -> Result<SchemaRef> {
    schema_to_arrow_schema(metadata.current_schema())
        .map(Arc::new)
        .map_err(|e| convert_error(e, name, "converting the table schema to Arrow"))
}

/// An iceberg error as ours: the kind by who is at fault, the table named.
fn convert_error(e: iceberg::Error, name: &TableName, doing: &str) -> Error {
    let (kind, message) = match e.kind() {
        iceberg::ErrorKind::TableNotFound | iceberg::ErrorKind::NamespaceNotFound => (
            ErrorKind::NotFound,
            "the table does not exist in the offline store".to_owned(),
        ),
        iceberg::ErrorKind::TableAlreadyExists => (
            ErrorKind::InvalidInput,
            "the table already exists".to_owned(),
        ),
        _ => (
            error_kind(&e),
            format!("{doing} failed: {}", describe_error(&e)),
        ),
    };
    Error::new(kind, message)
        .with_context("table", name)
        .with_source(e)
}

fn error_kind(e: &iceberg::Error) -> ErrorKind {
    if e.message() == HTTP_TRANSPORT_FAILURE {
        return ErrorKind::Unavailable;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<sqlx::Error>() {
            return ErrorKind::Unavailable;
        }
        if s.is::<std::io::Error>() {
            return ErrorKind::Io;
        }
        source = s.source();
    }
    match e.kind() {
        iceberg::ErrorKind::TableNotFound | iceberg::ErrorKind::NamespaceNotFound => {
            ErrorKind::NotFound
        }
        iceberg::ErrorKind::DataInvalid
        | iceberg::ErrorKind::FeatureUnsupported
        | iceberg::ErrorKind::TableAlreadyExists
        | iceberg::ErrorKind::NamespaceAlreadyExists => ErrorKind::InvalidInput,
        iceberg::ErrorKind::CatalogCommitConflicts | iceberg::ErrorKind::PreconditionFailed => {
            ErrorKind::Unavailable
        }
        _ => ErrorKind::Internal,
    }
}

/// The iceberg message and its innermost cause (iceberg's own messages are often generic,
/// "operation failed for hitting sqlx error", with the useful part in the source).
fn describe_error(e: &iceberg::Error) -> String {
    let mut innermost = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        innermost = Some(s);
        source = s.source();
    }
    match innermost {
        Some(cause) => format!("{}: {cause}", e.message()),
        None => e.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{NestedField, PrimitiveType, Type};

    use super::*;

    #[test]
    fn config_is_tagged_by_type_and_unknown_types_list_the_known_ones() {
        let config: OfflineConfig =
            toml::from_str("type = \"sql\"\nuri = \"sqlite:/tmp/c.db\"\nwarehouse = \"/tmp/w\"")
                .unwrap();
        assert_eq!(config.type_name(), "sql");
        let e = toml::from_str::<OfflineConfig>("type = \"glue\"\nuri = \"x\"").unwrap_err();
        let message = e.to_string();
        for known in OfflineConfig::KNOWN_TYPES {
            assert!(message.contains(known), "{message}");
        }
    }

    #[test]
    fn rest_config_reads_props_and_defaults_them_to_empty() {
        let config: OfflineConfig =
            toml::from_str("type = \"rest\"\nuri = \"http://h:8181\"\nprops = { token = \"t\" }")
                .unwrap();
        assert_eq!(
            config,
            OfflineConfig::Rest {
                uri: "http://h:8181".into(),
                warehouse: None,
                props: BTreeMap::from([("token".to_owned(), "t".to_owned())]),
                s3: None,
                login_with_s3_keys: false,
            }
        );
        assert!(!format!("{config:?}").contains("\"t\""), "{config:?}");
        let config: OfflineConfig =
            toml::from_str("type = \"rest\"\nuri = \"http://h:8181\"").unwrap();
        assert_eq!(config.type_name(), "rest");
    }

    fn no_options(props: &BTreeMap<String, String>) -> RestOptions<'_> {
        RestOptions {
            warehouse: None,
            props,
            s3: None,
            login_with_s3_keys: false,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_local_catalogs_tables_write_through_the_synced_storage() {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:{}", dir.path().join("catalog.db").display());
        runtime().block_on(async {
            let (catalog, _, _) = open_sql(&uri, &dir.path().join("warehouse")).await.unwrap();
            let namespace = iceberg::NamespaceIdent::new("raw".to_owned());
            (catalog.create_namespace(&namespace, HashMap::new()).await).unwrap();
            let id = NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long));
            let schema = (iceberg::spec::Schema::builder().with_fields(vec![id.into()]))
                .build()
                .unwrap();
            let creation = TableCreation::builder()
                .name("t".to_owned())
                .schema(schema)
                .build();
            let table = catalog.create_table(&namespace, creation).await.unwrap();
            // Its first metadata file went through that storage, as every later one will.
            let file_io = format!("{:?}", table.file_io());
            assert!(file_io.contains("DurableLocalStorageFactory"), "{file_io}");
        });
    }

    #[test]
    fn rest_catalog_that_never_answers_times_out_as_unavailable() {
        // Listening but never accepting: the kernel completes the handshake, nobody answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        let e = runtime()
            .block_on(open_rest(
                &uri,
                &no_options(&BTreeMap::new()),
                Duration::from_millis(300),
            ))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert_eq!(e.context_value("catalog"), Some(uri.as_str()));
        drop(listener);
    }

    #[test]
    fn secret_props_are_told_apart() {
        for key in [
            "credential",
            "token",
            "header.Authorization",
            "client-secret",
        ] {
            assert!(is_secret_prop(key), "{key}");
        }
        for key in ["scope", "prefix", "oauth2-server-uri", "warehouse"] {
            assert!(!is_secret_prop(key), "{key}");
        }
    }

    #[test]
    fn rest_uri_must_be_http() {
        for uri in ["https://h:8181", "h:8181", "file:///x"] {
            let e = runtime()
                .block_on(open_rest(
                    uri,
                    &no_options(&BTreeMap::new()),
                    Duration::from_millis(300),
                ))
                .err()
                .unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            assert_eq!(e.context_value("catalog"), Some(uri));
        }
    }
}
