//! The offline store on real Iceberg tables: a SQLite catalog and a warehouse in a temporary
//! directory, written and read back through `OfflineStore`. The tests that hold for every
//! catalog (`on_every_catalog!`) also run on SeaweedFS's Iceberg REST catalog with the tables
//! on its S3 (a `weed mini` the test starts on free loopback ports).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use skewless_runtime::ErrorKind;
use skewless_runtime::offline::{OfflineConfig, OfflineStore, ScanOptions, TableName};
use skewless_tests::seaweedfs::SeaweedFs;

const DAY_US: i64 = 86_400_000_000;
/// 2024-01-01T00:00:00Z.
const JAN_1_US: i64 = 1_704_067_200_000_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn config(dir: &tempfile::TempDir) -> OfflineConfig {
    OfflineConfig::Sql {
        uri: format!(
            "sqlite:{}?mode=rwc",
            dir.path().join("catalog/catalog.db").display()
        ),
        warehouse: dir.path().join("warehouse"),
    }
}

/// Where a test's offline store is.
enum Backend {
    /// The SQLite catalog and a local warehouse in a temporary folder.
    Sql(tempfile::TempDir),
    /// SeaweedFS's Iceberg REST catalog, the tables on its S3.
    Rest(SeaweedFs),
}

impl Backend {
    fn config(&self) -> OfflineConfig {
        match self {
            Backend::Sql(dir) => config(dir),
            Backend::Rest(weed) => weed.offline_config(),
        }
    }

    /// Every Parquet data file of the store, listed on the storage itself.
    fn parquet_files(&self) -> Vec<String> {
        match self {
            Backend::Sql(dir) => parquet_files(&dir.path().join("warehouse"))
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            Backend::Rest(weed) => weed
                .objects("")
                .into_iter()
                .filter(|key| key.ends_with(".parquet"))
                .collect(),
        }
    }
}

/// Runs the test function `$test(&Backend)` on each catalog: `$test::sql` and `$test::rest`.
macro_rules! on_every_catalog {
    ($test:ident) => {
        mod $test {
            use super::*;

            #[test]
            fn sql() {
                super::$test(&Backend::Sql(tempfile::tempdir().unwrap()));
            }

            #[test]
            fn rest_on_s3() {
                if let Some(weed) =
                    SeaweedFs::start_or_skip(concat!(stringify!($test), "::rest_on_s3"))
                {
                    super::$test(&Backend::Rest(weed));
                }
            }
        }
    };
}

fn name(s: &str) -> TableName {
    s.parse().expect("valid table name")
}

/// A feature table: key and event time required, the rest nullable, with an embedding.
fn feature_schema() -> Schema {
    Schema::new(vec![
        Field::new("entity_id", DataType::Int64, false),
        Field::new(
            "event_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("amount", DataType::Float64, true),
        Field::new("label", DataType::Utf8, true),
        Field::new(
            "embedding",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), 2),
            true,
        ),
    ])
}

/// A store in `dir` with `table` created from [`feature_schema`], partitioned by day of
/// `event_ts`.
async fn store_with_feature_table(config: &OfflineConfig, table: &TableName) -> OfflineStore {
    let store = OfflineStore::open(config).await.unwrap();
    store
        .create_table(table, &feature_schema(), Some("event_ts"), HashMap::new())
        .await
        .unwrap();
    store
}

/// Rows `(entity_id, event_ts_us)`; amount = id * 1.5, label = "e{id}", embedding = [id, -id].
/// `tz` is the timestamp's label ("UTC" or "+00:00": both must be accepted).
fn feature_batch(rows: &[(i64, i64)], tz: &str) -> RecordBatch {
    let ids = Int64Array::from_iter_values(rows.iter().map(|r| r.0));
    let ts =
        TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1)).with_timezone(tz);
    let amount = Float64Array::from_iter_values(rows.iter().map(|r| r.0 as f64 * 1.5));
    let label = StringArray::from_iter_values(rows.iter().map(|r| format!("e{}", r.0)));
    let mut embedding = FixedSizeListBuilder::new(Float32Builder::new(), 2);
    for (id, _) in rows {
        embedding.values().append_value(*id as f32);
        embedding.values().append_value(-(*id as f32));
        embedding.append(true);
    }
    let schema = Schema::new(vec![
        Field::new("entity_id", DataType::Int64, false),
        Field::new(
            "event_ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some(tz.into())),
            false,
        ),
        Field::new("amount", DataType::Float64, true),
        Field::new("label", DataType::Utf8, true),
        Field::new(
            "embedding",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), 2),
            true,
        ),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(ts),
        Arc::new(amount),
        Arc::new(label),
        Arc::new(embedding.finish()),
    ];
    RecordBatch::try_new(Arc::new(schema), columns).expect("batch")
}

/// `(entity_id, event_ts_us, amount, label, embedding)` of every row, sorted by entity id.
type Row = (i64, i64, Option<f64>, Option<String>, Option<Vec<f32>>);

fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let mut out = Vec::new();
    for batch in batches {
        let ids = batch
            .column_by_name("entity_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let ts = batch
            .column_by_name("event_ts")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        let amount = batch
            .column_by_name("amount")
            .unwrap()
            .as_primitive::<Float64Type>();
        let label = batch.column_by_name("label").unwrap().as_string::<i32>();
        let embedding = batch.column_by_name("embedding").unwrap().as_list::<i32>();
        for i in 0..batch.num_rows() {
            let vector = (!embedding.is_null(i)).then(|| {
                embedding
                    .value(i)
                    .as_primitive::<arrow_array::types::Float32Type>()
                    .values()
                    .to_vec()
            });
            out.push((
                ids.value(i),
                ts.value(i),
                (!amount.is_null(i)).then(|| amount.value(i)),
                (!label.is_null(i)).then(|| label.value(i).to_owned()),
                vector,
            ));
        }
    }
    out.sort_by_key(|r| r.0);
    out
}

fn expected(input: &[(i64, i64)]) -> Vec<Row> {
    let mut out: Vec<Row> = input
        .iter()
        .map(|&(id, ts)| {
            (
                id,
                ts,
                Some(id as f64 * 1.5),
                Some(format!("e{id}")),
                Some(vec![id as f32, -(id as f32)]),
            )
        })
        .collect();
    out.sort_by_key(|r| r.0);
    out
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("entity_id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    ids.sort_unstable();
    ids
}

fn summary(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Three days of rows: ids 1-3 on Jan 1, 4-5 on Jan 2, 6 on Jan 3.
const FIRST: [(i64, i64); 6] = [
    (1, JAN_1_US),
    (2, JAN_1_US + 3_600_000_000),
    (3, JAN_1_US + DAY_US - 1),
    (4, JAN_1_US + DAY_US),
    (5, JAN_1_US + DAY_US + 60_000_000),
    (6, JAN_1_US + 2 * DAY_US + 5),
];

/// Every Parquet file under `dir`, at any depth.
pub(crate) fn parquet_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}

/// The Parquet files under `dir` of the job whose files are named with `prefix`.
fn job_files(dir: &std::path::Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut files = parquet_files(dir);
    files.retain(|path| path.to_string_lossy().contains(prefix));
    files
}

on_every_catalog!(a_partitioned_append_is_one_snapshot_that_scans_back_and_time_travels);
fn a_partitioned_append_is_one_snapshot_that_scans_back_and_time_travels(backend: &Backend) {
    let table = name("features.transactions");
    let view_summary = summary(&[
        ("skewless.view", "transactions"),
        ("skewless.digest", "sha256:abc"),
        ("skewless.window.start", "2024-01-01T00:00:00Z"),
        ("skewless.window.end", "2024-01-04T00:00:00Z"),
    ]);
    let rt = runtime();
    let (first_id, second_id) = rt.block_on(async {
        let store = store_with_feature_table(&backend.config(), &table).await;
        assert!(store.table_exists(&table).await.unwrap());
        assert!(store.snapshots(&table).await.unwrap().is_empty());
        assert!(
            store
                .scan_collect(&table, ScanOptions::default())
                .await
                .unwrap()
                .is_empty()
        );

        // Two batches, one labelled "+00:00" and one "UTC", in one job: one snapshot.
        let mut job = store.begin_append(&table).await.unwrap();
        job.write(feature_batch(&FIRST[..4], "+00:00"))
            .await
            .unwrap();
        job.write(feature_batch(&FIRST[4..], "UTC")).await.unwrap();
        assert_eq!(job.rows(), 6);
        // Files finished in the background before the commit (as a materialization does
        // while it writes the online store) are committed whole.
        job.finish_writing().await.unwrap();
        let first = job.commit(view_summary.clone()).await.unwrap();
        assert_eq!(first.added_rows, Some(6));
        for (k, v) in &view_summary {
            assert_eq!(first.summary.get(k), Some(v), "summary key {k}");
        }
        let snapshots = store.snapshots(&table).await.unwrap();
        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0], first);

        // One directory per day partition.
        let files = backend.parquet_files();
        assert_eq!(files.len(), 3, "{files:?}");
        assert!(files.iter().any(|f| f.contains("event_ts_day=2024-01-02")));

        let all = store
            .scan_collect(&table, ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(rows(&all), expected(&FIRST));
        // Its three files decoded on several tasks at once: the same rows, in some order.
        let parallel = store
            .scan_collect(&table, ScanOptions::default().decoders(4))
            .await
            .unwrap();
        let sorted = |mut rows: Vec<_>| {
            rows.sort_by_key(|row| format!("{row:?}"));
            rows
        };
        assert_eq!(sorted(rows(&parallel)), sorted(rows(&all)));

        // Jan 2 only, with a projection that leaves out the filtered column.
        let jan_2 = store
            .scan_collect(
                &table,
                ScanOptions::default()
                    .time_range("event_ts", JAN_1_US + DAY_US, JAN_1_US + 2 * DAY_US)
                    .columns(["entity_id", "amount"]),
            )
            .await
            .unwrap();
        assert_eq!(ids(&jan_2), [4, 5]);
        assert_eq!(jan_2[0].num_columns(), 2);
        // A projection in another order than the table's: every column keeps its own values.
        let reordered = store
            .scan_collect(
                &table,
                ScanOptions::default()
                    .columns(["label", "amount", "event_ts", "entity_id"])
                    .time_range("event_ts", JAN_1_US - DAY_US, JAN_1_US + 9 * DAY_US),
            )
            .await
            .unwrap();
        let names: Vec<String> = reordered[0]
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["label", "amount", "event_ts", "entity_id"]);
        for batch in &reordered {
            let ids = batch
                .column_by_name("entity_id")
                .unwrap()
                .as_primitive::<Int64Type>();
            let amounts = batch
                .column_by_name("amount")
                .unwrap()
                .as_primitive::<Float64Type>();
            let labels = batch.column_by_name("label").unwrap().as_string::<i32>();
            for row in 0..batch.num_rows() {
                let id = ids.value(row);
                assert_eq!(amounts.value(row), id as f64 * 1.5, "amount of entity {id}");
                assert_eq!(labels.value(row), format!("e{id}"), "label of entity {id}");
            }
        }
        // Bounds: start inclusive, end exclusive, to the microsecond.
        let edge = store
            .scan_collect(
                &table,
                ScanOptions::default().time_range(
                    "event_ts",
                    JAN_1_US + DAY_US - 1,
                    JAN_1_US + DAY_US,
                ),
            )
            .await
            .unwrap();
        assert_eq!(ids(&edge), [3]);

        // A second append; the first snapshot still reads the old rows only.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut job = store.begin_append(&table).await.unwrap();
        job.write(feature_batch(&[(7, JAN_1_US + 3 * DAY_US)], "UTC"))
            .await
            .unwrap();
        let second = job
            .commit(summary(&[("skewless.view", "transactions")]))
            .await
            .unwrap();
        assert_ne!(second.snapshot_id, first.snapshot_id);
        assert_eq!(
            ids(&store
                .scan_collect(&table, ScanOptions::default())
                .await
                .unwrap()),
            [1, 2, 3, 4, 5, 6, 7]
        );
        let pinned = store
            .scan_collect(&table, ScanOptions::default().snapshot(first.snapshot_id))
            .await
            .unwrap();
        assert_eq!(rows(&pinned), expected(&FIRST));

        assert_eq!(
            store
                .snapshot_as_of(&table, first.timestamp_ms - 1)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .snapshot_as_of(&table, first.timestamp_ms)
                .await
                .unwrap(),
            Some(first.snapshot_id)
        );
        assert_eq!(
            store
                .snapshot_as_of(&table, second.timestamp_ms - 1)
                .await
                .unwrap(),
            Some(first.snapshot_id)
        );
        assert_eq!(
            store.snapshot_as_of(&table, i64::MAX).await.unwrap(),
            Some(second.snapshot_id)
        );
        (first.snapshot_id, second.snapshot_id)
    });
    drop(rt);

    // A new store on the same files sees everything.
    let rt = runtime();
    rt.block_on(async {
        let store = OfflineStore::open(&backend.config()).await.unwrap();
        let snapshots = store.snapshots(&table).await.unwrap();
        let ids_in_order: Vec<i64> = snapshots.iter().map(|s| s.snapshot_id).collect();
        assert_eq!(ids_in_order, [first_id, second_id]);
        assert_eq!(
            snapshots[0]
                .summary
                .get("skewless.digest")
                .map(String::as_str),
            Some("sha256:abc")
        );
        let pinned = store
            .scan_collect(&table, ScanOptions::default().snapshot(first_id))
            .await
            .unwrap();
        assert_eq!(rows(&pinned), expected(&FIRST));
        let schema = store.arrow_schema(&table).await.unwrap();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["entity_id", "event_ts", "amount", "label", "embedding"]
        );
        assert_eq!(
            schema.field(1).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        );
        assert!(!schema.field(0).is_nullable());
        assert!(schema.field(2).is_nullable());
    });
}

on_every_catalog!(a_dropped_or_aborted_job_commits_nothing);
fn a_dropped_or_aborted_job_commits_nothing(backend: &Backend) {
    let table = name("features.dropped");
    runtime().block_on(async {
        let store = store_with_feature_table(&backend.config(), &table).await;
        let mut job = store.begin_append(&table).await.unwrap();
        job.write(feature_batch(&FIRST[..2], "UTC")).await.unwrap();
        job.commit(summary(&[("skewless.view", "v")]))
            .await
            .unwrap();
        let before = store.snapshots(&table).await.unwrap();

        let mut job = store.begin_append(&table).await.unwrap();
        job.write(feature_batch(&FIRST[2..], "UTC")).await.unwrap();
        drop(job);
        assert_eq!(store.snapshots(&table).await.unwrap(), before);
        assert_eq!(
            ids(&store
                .scan_collect(&table, ScanOptions::default())
                .await
                .unwrap()),
            [1, 2]
        );

        // `abort` also removes the files it wrote, finished or not; a write after the files
        // began to be finished is refused, never silently lost.
        let files_before = backend.parquet_files().len();
        let mut job = store.begin_append(&table).await.unwrap();
        job.write(feature_batch(&FIRST[2..4], "UTC")).await.unwrap();
        job.finish_writing().await.unwrap();
        let late = job
            .write(feature_batch(&FIRST[4..], "UTC"))
            .await
            .unwrap_err();
        assert!(
            late.to_string()
                .contains("after the append's files began to be finished"),
            "{late}"
        );
        let prefix = job.file_prefix().to_owned();
        job.abort().await.unwrap();
        assert_eq!(store.snapshots(&table).await.unwrap(), before);
        let files = backend.parquet_files();
        assert_eq!(files.len(), files_before);
        assert!(!files.iter().any(|f| f.contains(&prefix)));
    });
}

on_every_catalog!(an_empty_job_commits_only_with_summary_properties);
fn an_empty_job_commits_only_with_summary_properties(backend: &Backend) {
    let table = name("features.empty");
    runtime().block_on(async {
        let store = OfflineStore::open(&backend.config()).await.unwrap();
        store
            .create_table(&table, &feature_schema(), None, HashMap::new())
            .await
            .unwrap();
        let job = store.begin_append(&table).await.unwrap();
        let e = job.commit(HashMap::new()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

        // Recording that an empty window was materialized is a snapshot with no rows.
        let job = store.begin_append(&table).await.unwrap();
        let snapshot = job
            .commit(summary(&[("skewless.window.start", "2024-01-01")]))
            .await
            .unwrap();
        assert_eq!(snapshot.added_rows.unwrap_or(0), 0);
        assert_eq!(store.snapshots(&table).await.unwrap().len(), 1);
        assert!(
            store
                .scan_collect(&table, ScanOptions::default())
                .await
                .unwrap()
                .iter()
                .all(|b| b.num_rows() == 0)
        );
    });
}

#[test]
fn appends_align_batches_to_the_table_and_name_mismatched_columns() {
    let dir = tempfile::tempdir().unwrap();
    let table = name("raw.events");
    runtime().block_on(async {
        let store = OfflineStore::open(&config(&dir)).await.unwrap();
        store
            .create_table(&table, &feature_schema(), None, HashMap::new())
            .await
            .unwrap();
        let mut job = store.begin_append(&table).await.unwrap();
        let ts = || -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from(vec![JAN_1_US]).with_timezone("UTC"))
        };
        let batch = |columns: Vec<(&str, ArrayRef, bool)>| {
            let fields: Vec<Field> = columns
                .iter()
                .map(|(n, a, nullable)| Field::new(*n, a.data_type().clone(), *nullable))
                .collect();
            RecordBatch::try_new(
                Arc::new(Schema::new(fields)),
                columns.into_iter().map(|c| c.1).collect(),
            )
            .unwrap()
        };

        // Wrong type.
        let e = job
            .write(batch(vec![
                ("entity_id", Arc::new(Int64Array::from(vec![1])), false),
                ("event_ts", ts(), false),
                ("amount", Arc::new(StringArray::from(vec!["1.0"])), true),
            ]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
        assert_eq!(e.context_value("column"), Some("amount"), "{e}");
        assert_eq!(e.context_value("table"), Some("raw.events"), "{e}");

        // Missing required column.
        let e = job
            .write(batch(vec![("event_ts", ts(), false)]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "{e}");
        assert_eq!(e.context_value("column"), Some("entity_id"), "{e}");

        // A column the table does not have.
        let e = job
            .write(batch(vec![
                ("entity_id", Arc::new(Int64Array::from(vec![1])), false),
                ("event_ts", ts(), false),
                ("surprise", Arc::new(Int64Array::from(vec![1])), true),
            ]))
            .await
            .unwrap_err();
        assert_eq!(e.context_value("column"), Some("surprise"), "{e}");

        // A naive timestamp is not an instant.
        let e = job
            .write(batch(vec![
                ("entity_id", Arc::new(Int64Array::from(vec![1])), false),
                (
                    "event_ts",
                    Arc::new(TimestampMicrosecondArray::from(vec![JAN_1_US])),
                    false,
                ),
            ]))
            .await
            .unwrap_err();
        assert_eq!(e.context_value("column"), Some("event_ts"), "{e}");

        // Nanoseconds that are not whole microseconds would be truncated.
        let e = job
            .write(batch(vec![
                ("entity_id", Arc::new(Int64Array::from(vec![1])), false),
                (
                    "event_ts",
                    Arc::new(
                        TimestampNanosecondArray::from(vec![JAN_1_US * 1000 + 1])
                            .with_timezone("UTC"),
                    ),
                    false,
                ),
            ]))
            .await
            .unwrap_err();
        assert_eq!(e.context_value("column"), Some("event_ts"), "{e}");

        // The job is still usable: reordered columns, a missing nullable column, int32 -> int64,
        // whole-microsecond nanoseconds.
        job.write(batch(vec![
            (
                "amount",
                Arc::new(Float64Array::from(vec![Some(2.5)])),
                true,
            ),
            (
                "event_ts",
                Arc::new(
                    TimestampNanosecondArray::from(vec![JAN_1_US * 1000]).with_timezone("UTC"),
                ),
                false,
            ),
            ("entity_id", Arc::new(Int32Array::from(vec![9])), false),
        ]))
        .await
        .unwrap();
        job.commit(summary(&[("skewless.view", "v")]))
            .await
            .unwrap();
        let batches = store
            .scan_collect(&table, ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(rows(&batches), [(9, JAN_1_US, Some(2.5), None, None)]);
    });
}

/// The codecs of every column chunk of the Parquet files under `dir` whose path contains
/// `prefix` (a file records its codec, not the level it was written at).
pub(crate) fn codecs(dir: &std::path::Path, prefix: &str) -> std::collections::BTreeSet<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut out = std::collections::BTreeSet::new();
    for path in job_files(dir, prefix) {
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        for group in reader.metadata().row_groups() {
            for column in group.columns() {
                let codec = format!("{:?}", column.compression());
                out.insert(codec.split('(').next().unwrap_or_default().to_owned());
            }
        }
    }
    out
}

/// Each data file of a partitioned append holds one day's rows in the order they were
/// written, in row groups of the writer's cap (8192 rows), however small and scattered the
/// batches: the writer lanes gather a partition's rows from every batch until they make a row
/// group (strings and embeddings included; nulls are `gather.rs`'s property test's), and
/// nothing is lost or doubled on the way.
#[test]
fn scattered_small_batches_reach_each_file_in_order_and_in_whole_row_groups() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let dir = tempfile::tempdir().unwrap();
    let table = name("features.scattered");
    runtime().block_on(async {
        let store = store_with_feature_table(&config(&dir), &table).await;
        let mut job = store.begin_append(&table).await.unwrap();
        // 600 batches of 97 rows, each spread over three days; ids ascend in write order.
        let mut written = Vec::new();
        for batch in 0..600i64 {
            let rows: Vec<(i64, i64)> = (0..97)
                .map(|i| {
                    let id = batch * 97 + i + 1;
                    (id, JAN_1_US + (id * 7919 % 3) * DAY_US + id)
                })
                .collect();
            job.write(feature_batch(&rows, "UTC")).await.unwrap();
            written.extend(rows);
        }
        let prefix = job.file_prefix().to_owned();
        job.commit(summary(&[("skewless.view", "v")]))
            .await
            .unwrap();

        let files = job_files(&dir.path().join("warehouse"), &prefix);
        assert_eq!(files.len(), 3, "one file per day: {files:?}");
        let mut read = Vec::new();
        for path in files {
            let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
            let groups: Vec<i64> = (reader.metadata().row_groups().iter())
                .map(|g| g.num_rows())
                .collect();
            let (last, full) = groups.split_last().unwrap();
            assert!(
                full.iter().all(|&n| n == 8192) && *last <= 8192,
                "{groups:?}"
            );
            let batches: Vec<RecordBatch> =
                ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
                    .unwrap()
                    .build()
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
            // In file order (`rows` sorts what it returns).
            let ids: Vec<i64> = (batches.iter())
                .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
                .collect();
            assert!(ids.is_sorted(), "rows out of write order in {path:?}");
            let in_file = rows(&batches);
            let days: std::collections::BTreeSet<i64> =
                in_file.iter().map(|r| r.1.div_euclid(DAY_US)).collect();
            assert_eq!(days.len(), 1, "{path:?} holds days {days:?}");
            read.extend(in_file);
        }
        read.sort_by_key(|r| r.0);
        assert_eq!(read, expected(&written));
    });
}

#[test]
fn data_files_are_compressed_as_the_tables_properties_ask() {
    let dir = tempfile::tempdir().unwrap();
    let table = name("features.compressed");
    runtime().block_on(async {
        let store = store_with_feature_table(&config(&dir), &table).await;
        let warehouse = dir.path().join("warehouse");
        let write = |store: &OfflineStore| {
            let (store, table) = (store.clone(), table.clone());
            async move {
                let mut job = store.begin_append(&table).await?;
                job.write(feature_batch(&FIRST[..2], "UTC")).await?;
                let prefix = job.file_prefix().to_owned();
                job.commit(summary(&[("skewless.view", "v")])).await?;
                Ok::<_, skewless_runtime::Error>(prefix)
            }
        };
        // A feature table is created asking for zstd (Iceberg's default) at level 1.
        let prefix = write(&store).await.unwrap();
        assert_eq!(codecs(&warehouse, &prefix), ["ZSTD".to_owned()].into());
        for (codec, level, expected) in [
            ("snappy", None, "SNAPPY"),
            ("zstd", Some("7"), "ZSTD"),
            ("uncompressed", None, "UNCOMPRESSED"),
        ] {
            let mut props = summary(&[("write.parquet.compression-codec", codec)]);
            if let Some(level) = level {
                props.insert("write.parquet.compression-level".into(), level.into());
            }
            store.set_table_properties(&table, props).await.unwrap();
            let prefix = write(&store).await.unwrap();
            assert_eq!(
                codecs(&warehouse, &prefix),
                [expected.to_owned()].into(),
                "{codec}"
            );
        }
        // A codec this writer lacks fails the job before it writes, naming the property.
        let before = store.snapshots(&table).await.unwrap();
        store
            .set_table_properties(
                &table,
                summary(&[("write.parquet.compression-codec", "lzo")]),
            )
            .await
            .unwrap();
        let err = write(&store).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(
            err.message()
                .contains("write.parquet.compression-codec asks for `lzo`"),
            "{err}"
        );
        assert_eq!(store.snapshots(&table).await.unwrap(), before);
        assert_eq!(
            ids(&store
                .scan_collect(&table, ScanOptions::default())
                .await
                .unwrap())
            .len(),
            8
        );
    });
}

#[test]
fn unknown_tables_columns_and_bad_names_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = OfflineStore::open(&config(&dir)).await.unwrap();
        let missing = name("nowhere.nothing");
        assert!(!store.table_exists(&missing).await.unwrap());
        let e = store
            .scan(&missing, ScanOptions::default())
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(e.context_value("table"), Some("nowhere.nothing"));
        let e = store.begin_append(&missing).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        let e = store.arrow_schema(&missing).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

        for bad in ["nodot", "a.b.c", "ns.", "ns.bad-name"] {
            let e = bad.parse::<TableName>().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }

        // Unsupported column type, bad partition column, duplicate table.
        let table = name("features.t");
        let e = store
            .create_table(
                &table,
                &Schema::new(vec![Field::new(
                    "d",
                    DataType::Duration(TimeUnit::Second),
                    true,
                )]),
                None,
                HashMap::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert_eq!(e.context_value("column"), Some("d"), "{e}");
        let e = store
            .create_table(&table, &feature_schema(), Some("amount"), HashMap::new())
            .await
            .unwrap_err();
        assert_eq!(e.context_value("column"), Some("amount"), "{e}");
        let props = summary(&[("skewless.owner", "tests")]);
        store
            .create_table(&table, &feature_schema(), None, props)
            .await
            .unwrap();
        assert_eq!(
            store
                .table_properties(&table)
                .await
                .unwrap()
                .get("skewless.owner")
                .map(String::as_str),
            Some("tests")
        );
        store
            .set_table_properties(&table, summary(&[("skewless.owner", "lead")]))
            .await
            .unwrap();
        assert_eq!(
            store
                .table_properties(&table)
                .await
                .unwrap()
                .get("skewless.owner")
                .map(String::as_str),
            Some("lead")
        );
        let e = store
            .create_table(&table, &feature_schema(), None, HashMap::new())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(
            !store
                .create_table_if_missing(&table, &feature_schema(), None, HashMap::new())
                .await
                .unwrap()
        );

        // Unknown columns and snapshots in a scan.
        let e = store
            .scan(&table, ScanOptions::default().columns(["nope"]))
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert_eq!(e.context_value("column"), Some("nope"));
        let e = store
            .scan(&table, ScanOptions::default().time_range("label", 0, 1))
            .await
            .err()
            .unwrap();
        assert_eq!(e.context_value("column"), Some("label"), "{e}");
        let e = store
            .scan(&table, ScanOptions::default().snapshot(42))
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");

        // REST over TLS is not built in and says so.
        let e = OfflineStore::open(&OfflineConfig::Rest {
            uri: "https://localhost:8181".into(),
            warehouse: None,
            props: Default::default(),
            s3: None,
            login_with_s3_keys: false,
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("TLS"), "{e}");
    });
}

#[test]
fn store_and_job_can_move_across_tasks() {
    fn is_send<T: Send + 'static>() {}
    fn is_sync<T: Sync>() {}
    is_send::<OfflineStore>();
    is_sync::<OfflineStore>();
    is_send::<skewless_runtime::offline::AppendJob>();
    is_send::<skewless_runtime::offline::RecordBatchStream>();
}

on_every_catalog!(interleaved_jobs_on_one_table_both_commit);
fn interleaved_jobs_on_one_table_both_commit(backend: &Backend) {
    let table = name("features.interleaved");
    runtime().block_on(async {
        let store = store_with_feature_table(&backend.config(), &table).await;
        // Both jobs start from the same table version; the second commit is rebased.
        let mut a = store.begin_append(&table).await.unwrap();
        let mut b = store.begin_append(&table).await.unwrap();
        a.write(feature_batch(&FIRST[..3], "UTC")).await.unwrap();
        b.write(feature_batch(&FIRST[3..], "UTC")).await.unwrap();
        b.commit(summary(&[("skewless.window.start", "b")]))
            .await
            .unwrap();
        a.commit(summary(&[("skewless.window.start", "a")]))
            .await
            .unwrap();
        assert_eq!(store.snapshots(&table).await.unwrap().len(), 2);
        let all = store
            .scan_collect(&table, ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(rows(&all), expected(&FIRST));
    });
}

#[test]
fn unreachable_rest_catalog_is_unavailable_at_open_and_named() {
    // A loopback port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("http://127.0.0.1:{port}");
    runtime().block_on(async {
        let started = std::time::Instant::now();
        let e = OfflineStore::open(&OfflineConfig::Rest {
            uri: uri.clone(),
            warehouse: Some("file:///tmp/skewless-no-warehouse".into()),
            props: [("token".to_owned(), "s3cr3t".to_owned())].into(),
            s3: None,
            login_with_s3_keys: false,
        })
        .await
        .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert_eq!(e.context_value("catalog"), Some(uri.as_str()), "{e}");
        assert!(e.to_string().contains(&uri), "{e}");
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
    });
}

/// Columns of equal type asked for out of the table's order keep their own values (the scan
/// asks Iceberg in field order and reorders by name: iceberg-rust 0.10 would relabel them).
#[test]
fn a_projection_out_of_table_order_keeps_each_columns_values() {
    let dir = tempfile::tempdir().unwrap();
    let table = name("features.same_types");
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("a", DataType::Float64, true),
        Field::new("b", DataType::Float64, true),
        Field::new("c", DataType::Float64, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(schema.clone()),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(Float64Array::from(vec![10.0, 20.0])),
            Arc::new(Float64Array::from(vec![100.0, 200.0])),
            Arc::new(Float64Array::from(vec![1000.0, 2000.0])),
        ],
    )
    .unwrap();
    runtime().block_on(async {
        let store = OfflineStore::open(&config(&dir)).await.unwrap();
        store
            .create_table(&table, &schema, None, HashMap::new())
            .await
            .unwrap();
        let mut job = store.begin_append(&table).await.unwrap();
        job.write(batch).await.unwrap();
        job.commit(HashMap::new()).await.unwrap();
        for columns in [
            vec!["c", "a"],
            vec!["b", "id", "a"],
            vec!["c", "b", "a", "id"],
        ] {
            let batches = store
                .scan_collect(&table, ScanOptions::default().columns(columns.clone()))
                .await
                .unwrap();
            let names: Vec<&str> = batches[0]
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            assert_eq!(names, columns);
            let value = |name: &str| {
                batches[0]
                    .column_by_name(name)
                    .unwrap()
                    .as_primitive::<Float64Type>()
                    .value(1)
            };
            for (name, expected) in [("a", 20.0), ("b", 200.0), ("c", 2000.0)] {
                if columns.contains(&name) {
                    assert_eq!(value(name), expected, "{name} of {columns:?}");
                }
            }
        }
    });
}

/// A small deterministic generator (xorshift64*), so a failure repeats with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[low, high)`.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low) as u64) as i64
    }
}

/// A random window over the first week of 2024: day-aligned, arbitrary to the µs, one µs
/// wide, or the whole table.
fn random_window(rng: &mut Rng) -> (i64, i64) {
    match rng.range(0, 5) {
        0 => {
            let start = JAN_1_US + rng.range(0, 6) * DAY_US;
            (start, start + rng.range(1, 3) * DAY_US)
        }
        1 => {
            let start = JAN_1_US + rng.range(0, 6 * DAY_US);
            (start, start + 1)
        }
        2 => (i64::MIN, i64::MAX),
        _ => {
            let start = JAN_1_US + rng.range(-DAY_US, 6 * DAY_US);
            (start, start + rng.range(1, 3 * DAY_US))
        }
    }
}

/// `(entity_id, event_ts)` pairs of the rows read, sorted.
fn pairs(batches: &[RecordBatch]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = rows(batches).into_iter().map(|r| (r.0, r.1)).collect();
    out.sort_unstable();
    out
}

/// Replacing windows, checked against a model of what the table must hold (rows outside the
/// window kept, rows inside replaced by the job's): after every commit the table holds each
/// row once, its summary totals agree, every earlier snapshot still reads what it held, and
/// PyIceberg reads the same rows at every snapshot.
#[test]
fn replacing_windows_keeps_each_row_once_and_every_snapshot_reads_what_it_held() {
    for seed in [1u64, 7, 2024] {
        replace_windows_against_a_model(seed);
    }
}

fn replace_windows_against_a_model(seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let table = name("features.replaced");
    let mut rng = Rng(seed);
    let mut next_id = 0i64;
    let mut fresh = |rng: &mut Rng, n: i64, low: i64, high: i64| -> Vec<(i64, i64)> {
        (0..n)
            .map(|_| {
                next_id += 1;
                // Edges of the window are the likeliest to be got wrong.
                let ts = match rng.range(0, 6) {
                    0 => low,
                    1 => high - 1,
                    _ => rng.range(low, high),
                };
                (next_id, ts)
            })
            .collect()
    };
    let rt = runtime();
    let history: Vec<(i64, Vec<(i64, i64)>)> = rt.block_on(async {
        let store = store_with_feature_table(&config(&dir), &table).await;
        assert!(store.can_replace());
        let mut model = fresh(&mut rng, 300, JAN_1_US - DAY_US, JAN_1_US + 7 * DAY_US);
        let mut job = store.begin_append(&table).await.unwrap();
        job.write(feature_batch(&model, "UTC")).await.unwrap();
        let first = job.commit(summary(&[("step", "0")])).await.unwrap();
        model.sort_unstable();
        let mut history = vec![(first.snapshot_id, model.clone())];
        for step in 1..=8 {
            let (start, end) = random_window(&mut rng);
            let (low, high) = (
                start.max(JAN_1_US - 2 * DAY_US),
                end.min(JAN_1_US + 8 * DAY_US),
            );
            let n = match rng.range(0, 4) {
                0 => 0,
                _ => rng.range(1, 60),
            };
            let added = fresh(&mut rng, n, low, high);
            let range = skewless_runtime::offline::TimeRange::new("event_ts", start, end);
            let mut job = store.begin_replace(&table, range, None).await.unwrap();
            if !added.is_empty() {
                job.write(feature_batch(&added, "+00:00")).await.unwrap();
            }
            // Half the steps finish their files (and carry the rows kept around the window)
            // before the commit, as a materialization does while it writes online.
            if rng.range(0, 2) == 0 {
                job.finish_writing().await.unwrap();
            }
            let done = job
                .commit(summary(&[("step", &step.to_string())]))
                .await
                .unwrap();
            model.retain(|&(_, ts)| ts < start || ts >= end);
            model.extend(added);
            model.sort_unstable();
            let now = pairs(
                &store
                    .scan_collect(&table, ScanOptions::default())
                    .await
                    .unwrap(),
            );
            assert_eq!(
                now, model,
                "seed {seed} step {step}: window [{start}, {end})"
            );
            assert_eq!(
                done.summary.get("total-records"),
                Some(&model.len().to_string()),
                "seed {seed} step {step}: {:?}",
                done.summary
            );
            history.push((done.snapshot_id, model.clone()));
        }
        for (snapshot, expected) in &history {
            let then = store
                .scan_collect(&table, ScanOptions::default().snapshot(*snapshot))
                .await
                .unwrap();
            assert_eq!(&pairs(&then), expected, "seed {seed}: snapshot {snapshot}");
        }
        // Each replaced file is gone from the current snapshot: the rows are stored once,
        // not hidden by a later copy.
        let all = store
            .scan_collect(&table, ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(RecordBatch::num_rows).sum::<usize>(),
            model.len()
        );
        history
    });

    let Some(python) = skewless_tests::python::python_or_skip("PyIceberg reading overwrites")
    else {
        return;
    };
    let db = dir.path().join("catalog/catalog.db");
    let warehouse = dir.path().join("warehouse");
    let mut args = vec![
        db.to_str().unwrap().to_owned(),
        warehouse.to_str().unwrap().to_owned(),
        "features.replaced".to_owned(),
        "entity_id".to_owned(),
        "event_ts".to_owned(),
    ];
    args.extend(history.iter().map(|(s, _)| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = skewless_tests::python::run_script(&python, "iceberg_read.py", &args);
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for (snapshot, expected) in &history {
        let seen = &read[snapshot.to_string()];
        let seen_pairs: Vec<(i64, i64)> = seen["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
            .collect();
        assert_eq!(
            &seen_pairs, expected,
            "seed {seed}: PyIceberg at {snapshot}"
        );
        assert_eq!(
            seen["total-records"].as_str(),
            Some(expected.len().to_string().as_str()),
            "seed {seed}: PyIceberg's summary at {snapshot}: {seen}"
        );
    }
}

/// Expiring removes old snapshots and the files only they referenced: retained snapshots read
/// what they held (here and in PyIceberg), expired ones are a clear error, and replaced rows
/// stop taking space.
#[test]
fn expiring_snapshots_deletes_only_files_no_retained_snapshot_reads() {
    let dir = tempfile::tempdir().unwrap();
    let table = name("features.expiring");
    let warehouse = dir.path().join("warehouse");
    let rt = runtime();
    // (snapshot id, commit time in ms, rows it holds)
    type Held = Vec<(i64, i64, Vec<(i64, i64)>)>;
    let held: Held = rt.block_on(async {
        let store = store_with_feature_table(&config(&dir), &table).await;
        let mut model: Vec<(i64, i64)> = (0..60).map(|i| (i, JAN_1_US + i * DAY_US / 10)).collect();
        let mut job = store.begin_append(&table).await.unwrap();
        job.write(feature_batch(&model, "UTC")).await.unwrap();
        let s = job.commit(summary(&[("step", "0")])).await.unwrap();
        let mut held = vec![(s.snapshot_id, s.timestamp_ms, model.clone())];
        for step in 1..4i64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            // Replace day `step` with fresh rows.
            let (start, end) = (JAN_1_US + step * DAY_US, JAN_1_US + (step + 1) * DAY_US);
            let added: Vec<(i64, i64)> = (0..5).map(|i| (1000 * step + i, start + i)).collect();
            let range = skewless_runtime::offline::TimeRange::new("event_ts", start, end);
            let mut job = store.begin_replace(&table, range, None).await.unwrap();
            job.write(feature_batch(&added, "UTC")).await.unwrap();
            let s = job.commit(summary(&[("step", "n")])).await.unwrap();
            model.retain(|r| r.1 < start || r.1 >= end);
            model.extend(added);
            model.sort_unstable();
            held.push((s.snapshot_id, s.timestamp_ms, model.clone()));
        }
        let files_before = parquet_files(&warehouse).len();

        let e = store
            .expire_snapshots(&table, i64::MAX, 0)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

        // Older than the third snapshot: the first two go.
        let done = store.expire_snapshots(&table, held[2].1, 1).await.unwrap();
        let mut gone = vec![held[0].0, held[1].0];
        gone.sort_unstable();
        assert_eq!(done.snapshots, gone);
        assert!(done.data_files > 0 && done.metadata_files > 0, "{done:?}");
        assert_eq!(
            parquet_files(&warehouse).len(),
            files_before - done.data_files
        );
        for (snapshot, _, rows) in &held[2..] {
            let then = store
                .scan_collect(&table, ScanOptions::default().snapshot(*snapshot))
                .await
                .unwrap();
            assert_eq!(&pairs(&then), rows, "retained snapshot {snapshot}");
        }
        for (snapshot, _, _) in &held[..2] {
            let e = store
                .scan(&table, ScanOptions::default().snapshot(*snapshot))
                .await
                .err()
                .unwrap();
            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
            assert!(e.to_string().contains("expired"), "{e}");
        }
        // Again, with nothing old enough: nothing changes.
        let none = store.expire_snapshots(&table, held[2].1, 1).await.unwrap();
        assert!(
            none.snapshots.is_empty() && none.data_files == 0,
            "{none:?}"
        );
        // Everything but the current snapshot.
        let done = store.expire_snapshots(&table, i64::MAX, 1).await.unwrap();
        assert_eq!(done.snapshots, [held[2].0], "{done:?}");
        let now = store
            .scan_collect(&table, ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(&pairs(&now), &held[3].2);
        // Only the current snapshot's rows take space: one file per day partition it holds.
        assert_eq!(parquet_files(&warehouse).len(), {
            let mut days: Vec<i64> = held[3].2.iter().map(|r| r.1.div_euclid(DAY_US)).collect();
            days.dedup();
            days.len()
        },);
        held
    });

    let Some(python) = skewless_tests::python::python_or_skip("PyIceberg reading after expiry")
    else {
        return;
    };
    let db = dir.path().join("catalog/catalog.db");
    let current = held[3].0.to_string();
    let args = [
        db.to_str().unwrap(),
        warehouse.to_str().unwrap(),
        "features.expiring",
        "entity_id",
        "event_ts",
        current.as_str(),
    ];
    let output = skewless_tests::python::run_script(&python, "iceberg_read.py", &args);
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let seen: Vec<(i64, i64)> = read[&current]["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
        .collect();
    assert_eq!(seen, held[3].2);
}
