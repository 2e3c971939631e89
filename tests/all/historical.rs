//! Historical retrieval on real feature tables: the point-in-time join against a brute-force
//! reference, time travel with `as_of`, agreement with the online store, request-time views;
//! each with the default memory budget (one piece in memory) and with a tiny one that
//! partitions and spills over several rounds.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use skewless_runtime::historical::{MemoryBudget, Request, Retrieval, TrainingSet};
use skewless_runtime::materialize::Options;
use skewless_runtime::online::{EntityKey, FeatureValue};
use skewless_runtime::registry::{FeatureRef, OpenedRepo};
use skewless_tests::feature_repo::TestRepo;

const REPO: &str = r#"
[project]
name = "pit"

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
ttl = "{TTL}"

# The same features without a TTL; materialized only where a test needs it.
[[batch_view]]
name = "txn_all"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "{TRANSACTION_FEATURES}"

[[request_view]]
name = "req"
transform = "{REQUEST_AMOUNT_RATIO}"
entities = ["user"]
inputs.request_amount = { request = "amount" }
inputs.user_last_amount = { feature = "txn:amount_log1p" }
inputs.user_avg_amount_30d = { feature = "txn:amount_to_balance_ratio" }
"#;

const HOUR: i64 = 3_600_000_000;

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// Source rows with many equal event times per user (ties broken by distinct created times).
fn source(rows: usize, seed: u64, hour_offset: i64) -> RecordBatch {
    let mut x = seed;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let mut users = Vec::new();
    let mut event = Vec::new();
    let mut created = Vec::new();
    let mut amount = Vec::new();
    for i in 0..rows {
        users.push((next() % 20) as i64);
        event.push((hour_offset + (next() % 48) as i64) * HOUR);
        created.push(seed as i64 * 1_000_000 + i as i64);
        amount.push((next() % 10_000) as f64 / 10.0);
    }
    // A zero balance makes `amount_to_balance_ratio` null: null feature values occur.
    let balance: Vec<f64> = (0..rows)
        .map(|i| if i % 7 == 0 { 0.0 } else { 500.0 })
        .collect();
    skewless_tests::transactions(users, event, created, amount, balance)
}

/// Entity rows: users 0..22 (20 and 21 have no history) at label times on the hour grid
/// (equal to feature times), between it, and at TTL edges.
fn entities() -> RecordBatch {
    let mut users = Vec::new();
    let mut times = Vec::new();
    for user in 0..22i64 {
        for t in [-1, 0, 3, 5, 17, 24, 30, 47, 48, 60, 100] {
            users.push(user);
            times.push(t * HOUR + (user % 3 - 1));
        }
    }
    let n = users.len();
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_timestamp", ts_type(), false),
        Field::new("amount", DataType::Float64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(users)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("+00:00")),
            Arc::new(Float64Array::from(vec![42.0; n])),
        ],
    )
    .unwrap()
}

/// A budget of 2 kB for the ~600 feature rows (~100 kB to join): a few rounds of partitioning
/// into 3, spilling every round.
fn tiny_budget() -> MemoryBudget {
    MemoryBudget {
        bytes: 2048,
        fan_out: 3,
        spill_dir: None,
    }
}

fn retrieve(repo: &TestRepo, features: &[&str], as_of_ms: Option<i64>) -> TrainingSet {
    retrieve_within(repo, features, as_of_ms, MemoryBudget::default())
}

fn retrieve_within(
    repo: &TestRepo,
    features: &[&str],
    as_of_ms: Option<i64>,
    memory: MemoryBudget,
) -> TrainingSet {
    try_retrieve(repo, &entities(), features, as_of_ms, memory).unwrap()
}

fn try_retrieve(
    repo: &TestRepo,
    entities: &RecordBatch,
    features: &[&str],
    as_of_ms: Option<i64>,
    memory: MemoryBudget,
) -> skewless_runtime::Result<TrainingSet> {
    let opened = OpenedRepo::open(repo.path()).unwrap();
    let retrieval = Retrieval {
        context: opened.context(),
    };
    let request = Request {
        features: features
            .iter()
            .map(|f| FeatureRef::parse(f).unwrap())
            .collect(),
        full_feature_names: true,
        as_of_ms,
        memory,
    };
    retrieval.run(entities, &request)
}

/// Entries left in the repo's spill folder.
fn spill_leftovers(repo: &TestRepo) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(repo.path().join(".skewless/tmp"))
        .map(|dir| dir.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn setup(ttl: &str) -> TestRepo {
    let repo = TestRepo::new(&REPO.replace("{TTL}", ttl));
    repo.ingest("raw.transactions", "a.parquet", &[source(600, 1, 0)]);
    repo.apply().unwrap();
    repo.materialize("txn", &Options::default(), repo.online().as_ref())
        .unwrap();
    repo
}

/// The definition, literally, over every stored row: the chosen row's `feature` value (null
/// when there is no row, or when the row holds a null).
fn brute_force(
    stored: &[RecordBatch],
    feature: &str,
    user: i64,
    t: i64,
    ttl_us: i64,
) -> Option<f64> {
    let mut best: Option<((i64, i64), Option<f64>)> = None;
    for b in stored {
        let users = b
            .column_by_name("user_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let event = b
            .column_by_name("event_ts")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        let created = b
            .column_by_name("created_ts")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        let values = b
            .column_by_name(feature)
            .unwrap()
            .as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            let version = (event.value(i), created.value(i));
            if users.value(i) == user
                && version.0 <= t
                && version.0 >= t.saturating_sub(ttl_us)
                && best.is_none_or(|(v, _)| version > v)
            {
                best = Some((version, values.is_valid(i).then(|| values.value(i))));
            }
        }
    }
    best.and_then(|(_, v)| v)
}

#[test]
fn the_point_in_time_join_equals_the_brute_force_definition_with_and_without_ttl() {
    for (ttl, ttl_us) in [("1000w", i64::MAX), ("5h", 5 * HOUR)] {
        let repo = setup(ttl);
        let stored = repo.scan("features.txn", None);
        let features = ["amount_zscore", "amount_to_balance_ratio"];
        let requested = ["txn:amount_zscore", "txn:amount_to_balance_ratio"];
        let whole = retrieve(&repo, &requested, None);
        assert_eq!(whole.spill_files, 0, "the default budget holds the table");
        let parts = retrieve_within(&repo, &requested, None, tiny_budget());
        assert!(
            parts.spill_files > 9,
            "{} spill files: the tiny budget must partition over rounds",
            parts.spill_files
        );
        assert_eq!(
            parts.batch, whole.batch,
            "the same answers in the same order"
        );
        let entities = entities();
        let users = entities.column(0).as_primitive::<Int64Type>();
        let times = entities
            .column(1)
            .as_primitive::<TimestampMicrosecondType>();
        for (budget, set) in [("default", &whole), ("tiny", &parts)] {
            for feature in features {
                let out = set
                    .batch
                    .column_by_name(&format!("txn__{feature}"))
                    .unwrap()
                    .as_primitive::<Float64Type>();
                let mut found = 0;
                for row in 0..entities.num_rows() {
                    let (user, t) = (users.value(row), times.value(row));
                    let expected = brute_force(&stored, feature, user, t, ttl_us);
                    let got = out.is_valid(row).then(|| out.value(row));
                    assert_eq!(
                        got, expected,
                        "{budget} budget, ttl {ttl}, {feature}, row {row}: user {user} at {t}"
                    );
                    found += usize::from(got.is_some());
                }
                assert!(
                    found > 50 && found < entities.num_rows(),
                    "{feature}: {found} rows matched: the data must exercise both cases"
                );
            }
            // Every input row, in order, with its columns.
            assert_eq!(set.batch.num_rows(), entities.num_rows());
            assert_eq!(set.batch.column(0), entities.column(0));
            assert_eq!(set.batch.column(2), entities.column(2));
        }
        assert_eq!(spill_leftovers(&repo), Vec::<std::path::PathBuf>::new());
    }
}

/// Two batch views on the same join keys, joined in one retrieval (the entity rows' keys are
/// built once for both), give what each gives alone, each under its own TTL.
#[test]
fn views_sharing_join_keys_join_as_they_do_alone() {
    let repo = setup("2h");
    repo.materialize("txn_all", &Options::default(), repo.online().as_ref())
        .unwrap();
    let both = retrieve(&repo, &["txn:amount_log1p", "txn_all:amount_log1p"], None).batch;
    let ttl = retrieve(&repo, &["txn:amount_log1p"], None).batch;
    let all = retrieve(&repo, &["txn_all:amount_log1p"], None).batch;
    let column = |batch: &RecordBatch, name: &str| batch.column_by_name(name).unwrap().to_data();
    assert_eq!(
        column(&both, "txn__amount_log1p"),
        column(&ttl, "txn__amount_log1p")
    );
    assert_eq!(
        column(&both, "txn_all__amount_log1p"),
        column(&all, "txn_all__amount_log1p")
    );
    // The TTL made a difference: rows older than 2 h are null in `txn` only.
    let (with_ttl, without) = (
        column(&both, "txn__amount_log1p"),
        column(&both, "txn_all__amount_log1p"),
    );
    assert!(
        with_ttl.null_count() > without.null_count(),
        "{with_ttl:?} {without:?}"
    );
}

#[test]
fn duplicate_entity_rows_in_any_order_each_get_their_answer_when_partitioned() {
    let repo = setup("1000w");
    let ordered = entities();
    // Reversed and repeated: every row twice, the copies far apart.
    let n = ordered.num_rows() as u32;
    let order = arrow_array::UInt32Array::from_iter_values((0..n).rev().chain(0..n));
    let shuffled = arrow_select::take::take_record_batch(&ordered, &order).unwrap();
    let whole = try_retrieve(&repo, &ordered, &["txn:*"], None, MemoryBudget::default()).unwrap();
    let parts = try_retrieve(&repo, &shuffled, &["txn:*"], None, tiny_budget()).unwrap();
    assert!(parts.spill_files > 0);
    let expected = arrow_select::take::take_record_batch(&whole.batch, &order).unwrap();
    assert_eq!(parts.batch, expected);
}

#[test]
fn spill_files_are_removed_after_a_retrieval_and_after_a_failed_one() {
    let repo = setup("1000w");
    let set = retrieve_within(&repo, &["txn:*"], None, tiny_budget());
    assert!(set.spill_files > 0 && set.spill_bytes > 0);
    assert_eq!(spill_leftovers(&repo), Vec::<std::path::PathBuf>::new());

    // The request view reads `amount` from the entity rows: without it, the retrieval fails
    // after the batch view was joined (and spilled).
    let entities = entities();
    let without_amount = entities.project(&[0, 1]).unwrap();
    let err = try_retrieve(
        &repo,
        &without_amount,
        &["txn:*", "req:*"],
        None,
        tiny_budget(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no column `amount`"), "{err}");
    assert_eq!(spill_leftovers(&repo), Vec::<std::path::PathBuf>::new());

    // A spill folder of the caller's choosing is used, and removed from it likewise.
    let elsewhere = tempfile::tempdir().unwrap();
    let memory = MemoryBudget {
        spill_dir: Some(elsewhere.path().join("spill")),
        ..tiny_budget()
    };
    let there = retrieve_within(&repo, &["txn:*"], None, memory);
    assert_eq!(there.batch, set.batch);
    assert_eq!(
        std::fs::read_dir(elsewhere.path().join("spill"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn as_of_rebuilds_the_training_set_from_before_a_later_materialization() {
    let repo = setup("1000w");
    let before = retrieve(&repo, &["txn:*"], None);
    let first_snapshot = before.snapshots["txn"].unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Newer rows for the same users, at the same event times: they win by created_ts.
    repo.ingest("raw.transactions", "b.parquet", &[source(600, 2, 0)]);
    repo.materialize("txn", &Options::default(), repo.online().as_ref())
        .unwrap();

    let now = retrieve(&repo, &["txn:*"], None);
    assert_ne!(
        now.batch, before.batch,
        "the new materialization changes answers"
    );
    let pinned = retrieve(&repo, &["txn:*"], Some(between_ms));
    assert_eq!(pinned.snapshots["txn"], Some(first_snapshot));
    assert_eq!(
        pinned.batch, before.batch,
        "as_of gives the older answers exactly"
    );
    let pinned_parts = retrieve_within(&repo, &["txn:*"], Some(between_ms), tiny_budget());
    assert_eq!(pinned_parts.batch, before.batch, "also when partitioned");
    assert_eq!(pinned.digests["txn"], before.digests["txn"]);
}

#[test]
fn the_online_value_equals_the_historical_value_at_the_time_of_the_read() {
    let repo = setup("1000w");
    let online = repo.online();
    let set = retrieve(&repo, &["txn:amount_log1p"], None);
    let entities = entities();
    let users = entities.column(0).as_primitive::<Int64Type>();
    let out = set
        .batch
        .column_by_name("txn__amount_log1p")
        .unwrap()
        .as_primitive::<Float64Type>();
    // Label time 100 h is after every event: the historical value is the latest one.
    for row in (0..entities.num_rows()).filter(|&r| r % 11 == 10) {
        let stored = online
            .read("txn", &[EntityKey::new([users.value(row)])])
            .unwrap()
            .pop()
            .unwrap();
        let expected = stored
            .map(|s| s.values[0].clone())
            .unwrap_or(FeatureValue::Null);
        let got = if out.is_valid(row) {
            FeatureValue::Float64(out.value(row))
        } else {
            FeatureValue::Null
        };
        assert_eq!(got, expected, "user {}", users.value(row));
    }
}

#[test]
fn request_time_views_run_the_same_component_over_the_joined_rows() {
    let repo = setup("1000w");
    let set = retrieve(
        &repo,
        &["req:*", "txn:amount_log1p", "txn:amount_to_balance_ratio"],
        None,
    );
    let b = &set.batch;
    let input = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("request_amount", DataType::Float64, false),
            Field::new("user_last_amount", DataType::Float64, true),
            Field::new("user_avg_amount_30d", DataType::Float64, true),
        ])),
        vec![
            b.column_by_name("amount").unwrap().clone(),
            b.column_by_name("txn__amount_log1p").unwrap().clone(),
            b.column_by_name("txn__amount_to_balance_ratio")
                .unwrap()
                .clone(),
        ],
    )
    .unwrap();
    let engine = skewless_runtime::TransformEngine::builder()
        .build()
        .unwrap();
    let direct = engine
        .load_file(skewless_tests::components::REQUEST_AMOUNT_RATIO)
        .unwrap()
        .run(&input)
        .unwrap();
    for field in direct.schema().fields() {
        let got = b.column_by_name(&format!("req__{}", field.name())).unwrap();
        assert_eq!(
            got.to_data(),
            direct.column_by_name(field.name()).unwrap().to_data(),
            "{}",
            field.name()
        );
    }
    assert!(set.digests["req"].starts_with("sha256:"));
    let parts = retrieve_within(
        &repo,
        &["req:*", "txn:amount_log1p", "txn:amount_to_balance_ratio"],
        None,
        tiny_budget(),
    );
    assert!(parts.spill_files > 0);
    assert_eq!(
        &parts.batch, b,
        "the same rows reach the component when partitioned"
    );
    let spikes = b
        .column_by_name("req__is_amount_spike")
        .unwrap()
        .as_boolean();
    assert!(
        spikes.true_count() > 0,
        "the data must exercise the spike branch"
    );
}

/// `skewless.toml` edited after `apply` so that a request view reads a feature its view does
/// not have: an error naming the feature and what to run, not a panic.
#[test]
fn a_request_view_input_edited_after_apply_is_an_error_that_says_to_apply() {
    let repo = setup("30d");
    let toml = std::fs::read_to_string(repo.path().join("skewless.toml")).unwrap();
    std::fs::write(
        repo.path().join("skewless.toml"),
        toml.replace("txn:amount_log1p", "txn:no_such_feature"),
    )
    .unwrap();
    let e = try_retrieve(
        &repo,
        &entities(),
        &["req:*"],
        None,
        MemoryBudget::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), skewless_runtime::ErrorKind::NotFound, "{e}");
    assert!(
        e.message().contains("has no feature `no_such_feature`"),
        "{e}"
    );
    assert_eq!(e.context_value("view"), Some("req"), "{e}");
    assert!(e.to_string().contains("skewless apply"), "{e}");
}
