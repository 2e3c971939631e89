//! The feature repo end to end: `apply` checks, `materialize` into real Iceberg tables and
//! real online stores, and faults that must commit nothing (incremental and repeated runs:
//! `materialize.rs`).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, Int32Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema};
use skewless_datagen::{Spec, batches};
use skewless_runtime::ErrorKind;
use skewless_runtime::materialize::Options;
use skewless_runtime::online::{EntityKey, FeatureValue};
use skewless_tests::feature_repo::TestRepo;
use skewless_tests::redis_server::RedisServer;

const REPO: &str = r#"
[project]
name = "test"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

[[batch_view]]
name = "txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "{TRANSACTION_FEATURES}"

[[batch_view]]
name = "time"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "{TIME_FEATURES}"
"#;

fn spec(rows: u64) -> Spec {
    Spec {
        rows,
        users: 50,
        days: 10,
        ..Spec::default()
    }
}

fn transactions(rows: u64) -> Vec<RecordBatch> {
    batches(spec(rows), 4096).collect()
}

fn applied_repo(toml: &str, rows: u64) -> TestRepo {
    let repo = TestRepo::new(toml);
    repo.ingest("raw.transactions", "txns.parquet", &transactions(rows));
    let plan = repo.apply().expect("apply succeeds");
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    repo
}

fn total_rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

#[test]
fn materialized_offline_rows_and_online_values_are_what_the_component_computes() {
    let repo = applied_repo(REPO, 20_000);
    let online = repo.online();
    let done = repo
        .materialize("txn", &Options::default(), online.as_ref())
        .unwrap();
    assert_eq!(done.rows, 20_000);
    assert_eq!(done.online_written, 50);
    let snapshot = done.snapshot.as_ref().expect("a snapshot");
    assert_eq!(snapshot.summary["skewless.view"], "txn");
    assert!(snapshot.summary["skewless.digest"].starts_with("sha256:"));

    // Offline: every source row, with the component's outputs for it.
    let source = arrow_select::concat::concat_batches(
        &transactions(20_000)[0].schema(),
        &transactions(20_000),
    )
    .unwrap();
    let engine = skewless_runtime::TransformEngine::builder()
        .build()
        .unwrap();
    let transform = engine
        .load_file(skewless_tests::components::TRANSACTION_FEATURES)
        .unwrap();
    let expected = transform.run(&source).unwrap();
    let stored = repo.scan("features.txn", None);
    assert_eq!(total_rows(&stored), 20_000);
    let stored = arrow_select::concat::concat_batches(&stored[0].schema(), &stored).unwrap();
    // Rows are partitioned by day on the way in; line them up by (user, event_ts).
    let order = |b: &RecordBatch, user: &str, ts: &str| {
        let u = b
            .column_by_name(user)
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        let t = b
            .column_by_name(ts)
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
        let mut idx: Vec<usize> = (0..b.num_rows()).collect();
        idx.sort_by_key(|&i| (u.value(i), t.value(i)));
        idx
    };
    let src_order = order(&source, "user_id", "event_ts");
    let stored_order = order(&stored, "user_id", "event_ts");
    for field in transform.output_schema().fields() {
        let want = expected.column_by_name(field.name()).unwrap();
        let got = stored.column_by_name(field.name()).unwrap();
        for (a, b) in src_order.iter().zip(&stored_order) {
            assert_eq!(
                format!("{:?}", want.slice(*a, 1)),
                format!("{:?}", got.slice(*b, 1)),
                "{}",
                field.name()
            );
        }
    }

    // Online: for each user, the row with the greatest (event_ts, created_ts).
    let users = source
        .column_by_name("user_id")
        .unwrap()
        .as_primitive::<Int64Type>();
    let event = source
        .column_by_name("event_ts")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    let created = source
        .column_by_name("ingested_at")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>();
    for user in [1i64, 7, 50] {
        let newest = (0..source.num_rows())
            .filter(|&i| users.value(i) == user)
            .max_by_key(|&i| (event.value(i), created.value(i)))
            .unwrap();
        let row = online
            .read("txn", &[EntityKey::new([user])])
            .unwrap()
            .pop()
            .unwrap()
            .expect("online row");
        assert_eq!(row.event_ts, event.value(newest));
        assert_eq!(row.created_ts, created.value(newest));
        assert_eq!(row.digest, transform.digest());
        let zscore = expected
            .column_by_name("amount_zscore")
            .unwrap()
            .as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!(row.values[1], FeatureValue::Float64(zscore.value(newest)));
    }
}

/// `apply` creates feature tables asking for snappy (written by every materialization, read
/// whole for training: speed before size), while an ingested source keeps Iceberg's default,
/// zstd; and a materialization writes its data files as its table asks.
#[test]
fn feature_tables_are_created_asking_for_snappy_and_written_with_it() {
    let repo = applied_repo(REPO, 5_000);
    let offline = repo.offline();
    let codec = |table: &str| {
        let name = skewless_runtime::offline::TableName::parse(table).unwrap();
        let properties =
            (crate::push::runtime().block_on(offline.table_properties(&name))).unwrap();
        properties.get("write.parquet.compression-codec").cloned()
    };
    assert_eq!(codec("features.txn").as_deref(), Some("snappy"));
    assert_eq!(codec("features.time").as_deref(), Some("snappy"));
    assert_eq!(codec("raw.transactions").as_deref(), Some("zstd"));

    let online = repo.online();
    repo.materialize("txn", &Options::default(), online.as_ref())
        .unwrap();
    let data = repo.path().join(".skewless/warehouse/features/txn/data");
    let files = crate::offline::parquet_files(&data).len();
    assert!(files >= 10, "one file per day at least: {files}");
    let codecs = crate::offline::codecs(&data, "");
    assert_eq!(codecs, ["SNAPPY".to_owned()].into());
}

#[test]
fn a_component_changed_since_apply_is_refused_naming_both_digests() {
    // The view's component lives in the repo; apply registers its digest.
    let repo = TestRepo::new(&REPO.replace("{TIME_FEATURES}", "time.wasm"));
    std::fs::copy(
        skewless_tests::components::TIME_FEATURES,
        repo.path().join("time.wasm"),
    )
    .unwrap();
    repo.ingest("raw.transactions", "txns.parquet", &transactions(100));
    repo.apply().unwrap();
    // New bytes at the same path, without a new apply.
    std::fs::copy(
        skewless_tests::components::HOSTILE_GUEST,
        repo.path().join("time.wasm"),
    )
    .unwrap();
    let err = repo
        .materialize("time", &Options::default(), repo.online().as_ref())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidComponent, "{err}");
    assert!(
        err.message()
            .contains("changed since the last `skewless apply`"),
        "{err}"
    );
}

#[test]
fn apply_lists_every_problem_with_the_view_and_column() {
    let repo = TestRepo::new(
        &(REPO.to_owned()
            + r#"
[[batch_view]]
name = "missing_source"
entities = ["user"]
source = "raw.nope"
event_timestamp = "event_ts"
transform = "{TIME_FEATURES}"

[[batch_view]]
name = "hostile"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "ingested_at"
transform = "{HOSTILE}"

[[request_view]]
name = "req"
transform = "{REQUEST_AMOUNT_RATIO}"
entities = ["user"]
inputs.request_amount = { request = "amount" }
inputs.user_last_amount = { feature = "txn:amount_bucket" }

[[feature_service]]
name = "svc"
features = ["txn:no_such_feature"]
"#),
    );
    // A source whose `amount` is text, not float64.
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new(
            "event_ts",
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("+00:00".into())),
            false,
        ),
        Field::new(
            "ingested_at",
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("+00:00".into())),
            false,
        ),
        Field::new("amount", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("+00:00")),
            Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("+00:00")),
            Arc::new(arrow_array::StringArray::from(vec!["12.5"])),
        ],
    )
    .unwrap();
    repo.ingest("raw.transactions", "bad.parquet", &[batch]);
    let plan = repo.plan().unwrap();
    let expected = [
        "batch view `txn`: column `amount` of raw.transactions is Utf8, but the transform declares it float64",
        "batch view `txn`: the transform's input `balance_before` (float64) has no column in raw.transactions",
        "batch view `missing_source`: source table raw.nope does not exist",
        "batch view `hostile`: the transform's input `mode` (int32) has no column",
        "request view `req`: input `user_last_amount` is float64 but `txn:amount_bucket` is int32",
        "request view `req`: the transform's input `user_avg_amount_30d` (float64) has no source",
    ];
    for e in expected {
        assert!(
            plan.problems.iter().any(|p| p.contains(e)),
            "missing {e:?} in {:#?}",
            plan.problems
        );
    }
    let err = repo.apply().unwrap_err();
    assert!(err.message().contains("problems"), "{err}");
    assert!(
        repo.open().unwrap().applied().is_err(),
        "a refused apply registers nothing"
    );

    // Structural problems stop `open` itself, all listed.
    let broken = TestRepo::new(&REPO.replace(
        "entities = [\"user\"]\nsource",
        "entities = [\"account\"]\nsource",
    ));
    let err = broken.open().unwrap_err();
    assert!(
        err.message()
            .contains("uses entity `account`, which is not declared"),
        "{err}"
    );
}

const HOSTILE_REPO: &str = r#"
[project]
name = "faults"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

[[batch_view]]
name = "hostile"
entities = ["user"]
source = "raw.modes"
event_timestamp = "event_ts"
transform = "{HOSTILE}"
"#;

fn modes(mode: i32, rows: usize, first_user: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new(
            "event_ts",
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("+00:00".into())),
            false,
        ),
        Field::new("mode", DataType::Int32, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(
                (0..rows as i64).map(|i| first_user + i),
            )),
            Arc::new(
                TimestampMicrosecondArray::from(vec![1_000_000; rows]).with_timezone("+00:00"),
            ),
            Arc::new(Int32Array::from(vec![mode; rows])),
        ],
    )
    .unwrap()
}

#[test]
fn a_transform_that_traps_on_a_later_batch_commits_nothing() {
    let repo = TestRepo::new(HOSTILE_REPO);
    repo.ingest("raw.modes", "good.parquet", &[modes(0, 20_000, 0)]);
    repo.ingest("raw.modes", "bad.parquet", &[modes(3, 100, 100_000)]);
    repo.apply().unwrap();
    let online = repo.online();
    let err = repo
        .materialize("hostile", &Options::default(), online.as_ref())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Trapped, "{err}");
    assert_eq!(err.context_value("view"), Some("hostile"));
    assert_eq!(
        total_rows(&repo.scan("features.hostile", None)),
        0,
        "nothing committed offline"
    );
    let none = online.read("hostile", &[EntityKey::new([0i64])]).unwrap();
    assert!(none[0].is_none(), "nothing written online");
}

#[test]
fn redis_gone_fails_with_a_clear_error_commits_nothing_and_a_rerun_completes() {
    let mut redis = RedisServer::start();
    let toml = HOSTILE_REPO.to_owned()
        + &format!("\n[online]\ntype = \"redis\"\nurl = \"{}\"\n", redis.url());
    let repo = TestRepo::new(&toml);
    repo.ingest("raw.modes", "good.parquet", &[modes(0, 5_000, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    redis.kill();
    let err = repo
        .materialize("hostile", &Options::default(), online.as_ref())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(
        total_rows(&repo.scan("features.hostile", None)),
        0,
        "nothing committed offline"
    );

    let _restarted = RedisServer::start_on(redis.port());
    let done = repo
        .materialize("hostile", &Options::default(), online.as_ref())
        .unwrap();
    assert_eq!(done.rows, 5_000);
    assert_eq!(done.online_written, 5_000);
    assert_eq!(total_rows(&repo.scan("features.hostile", None)), 5_000);
    let row = online
        .read("hostile", &[EntityKey::new([42i64])])
        .unwrap()
        .pop()
        .unwrap()
        .unwrap();
    assert_eq!(row.values, vec![FeatureValue::Int64(1)]);
}

#[test]
fn a_null_join_key_row_is_dropped_and_counted() {
    let repo = TestRepo::new(HOSTILE_REPO);
    let mut batch = modes(0, 10, 0);
    let users: Int64Array = (0..10).map(|i| (i != 3).then_some(i)).collect();
    let mut columns = batch.columns().to_vec();
    columns[0] = Arc::new(users);
    let nullable = Arc::new(Schema::new(
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(f.name() == "user_id"))
            .collect::<Vec<_>>(),
    ));
    batch = RecordBatch::try_new(nullable, columns).unwrap();
    repo.ingest("raw.modes", "nulls.parquet", &[batch]);
    repo.apply().unwrap();
    let done = repo
        .materialize("hostile", &Options::default(), repo.online().as_ref())
        .unwrap();
    assert_eq!((done.rows, done.dropped_rows), (9, 1));
    let key = repo.scan("features.hostile", None);
    assert!(key.iter().all(|b| b.column(0).null_count() == 0));
}
