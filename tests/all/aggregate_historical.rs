//! Historical retrieval of aggregate features on real feature tables, against the exact
//! oracle of `aggregate::oracle`.
//!
//! Randomized event streams (out of order, equal timestamps, duplicated rows, nulls, NaN with
//! several payloads, ±inf, −0.0, 1e16 / 1 / −1e16, several entities) are written into an
//! aggregate view's feature table in several snapshots. At label times at every row's time,
//! a µs either side, at the window edges and before any row, and for entities without rows,
//! the training set must equal, bit for bit, the oracle over the rows the definition selects
//! (`t − w < event_ts ≤ t`), with the view's TTL applied as for batch views; with a tiny
//! memory budget (partitioning and spilling) the same; as of an earlier snapshot, the values
//! of that snapshot's rows.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use skewless_runtime::aggregate::{Function, Output};
use skewless_runtime::historical::{MemoryBudget, Request, Retrieval, TrainingSet};
use skewless_runtime::materialize::Options;
use skewless_runtime::online::FeatureValue;
use skewless_runtime::registry::{FeatureRef, OpenedRepo};
use skewless_tests::feature_repo::TestRepo;

use crate::aggregate::oracle::{oracle_float, oracle_int};

const SECOND: i64 = 1_000_000;
/// 2026-10-31T00:00:00Z: inside the two days the source rows of the batch view cover.
const BASE: i64 = 1_793_491_200_000_000 - 86_400 * SECOND;

/// Windows of the aggregations, as declared and in µs (`None`: lifetime).
const WINDOWS: [(&str, Option<i64>); 3] = [
    ("10s", Some(10 * SECOND)),
    ("50s", Some(50 * SECOND)),
    ("lifetime", None),
];

/// Functions over the float column `amount` (every one the oracle computes exactly).
const FLOAT_FUNCTIONS: [(&str, Option<u32>); 10] = [
    ("count", None),
    ("sum", None),
    ("mean", None),
    ("min", None),
    ("max", None),
    ("last", None),
    ("last_n", Some(3)),
    ("count_distinct", None),
    ("variance", None),
    ("stddev", None),
];

/// Functions over the integer column `txn_id`.
const INT_FUNCTIONS: [&str; 4] = ["sum", "mean", "variance", "stddev"];

/// The aggregations of a view: `(name, function, column, window)`.
fn aggregations() -> Vec<(String, Function, Option<&'static str>, Option<i64>)> {
    let mut out = Vec::new();
    for (w, span) in WINDOWS {
        out.push((format!("rows_{w}"), Function::Count, None, span));
        for (f, k) in FLOAT_FUNCTIONS {
            let function = Function::parse(f, k).unwrap();
            out.push((format!("amount_{f}_{w}"), function, Some("amount"), span));
        }
        for f in INT_FUNCTIONS {
            let function = Function::parse(f, None).unwrap();
            out.push((format!("txn_{f}_{w}"), function, Some("txn_id"), span));
        }
    }
    out
}

fn declared_aggregations() -> String {
    aggregations()
        .iter()
        .map(|(name, function, column, span)| {
            let window = WINDOWS.iter().find(|w| w.1 == *span).unwrap().0;
            let column = column.map_or(String::new(), |c| format!(", column = \"{c}\""));
            let k = match function {
                Function::LastN(k) => format!(", k = {k}"),
                _ => String::new(),
            };
            format!(
                "    {{ name = \"{name}\", function = \"{}\"{column}, window = \"{window}\"{k} }},\n",
                function.name()
            )
        })
        .collect()
}

fn repo_toml() -> String {
    format!(
        r#"
[project]
name = "aggregates_offline"

[[entity]]
name = "user"
join_keys = [{{ name = "user_id", type = "int64" }}]

[[aggregate_view]]
name = "user_agg"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
aggregations = [
{aggs}]

# The same aggregations with a TTL: null when the newest row is older than 20 s.
[[aggregate_view]]
name = "user_agg_ttl"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
ttl = "20s"
aggregations = [
{aggs}]

[[batch_view]]
name = "txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "{{TRANSACTION_FEATURES}}"

[[request_view]]
name = "req"
transform = "{{REQUEST_AMOUNT_RATIO}}"
entities = ["user"]
inputs.request_amount = {{ request = "amount" }}
inputs.user_last_amount = {{ feature = "txn:amount_log1p" }}
inputs.user_avg_amount_30d = {{ feature = "user_agg:amount_mean_lifetime" }}

[[feature_service]]
name = "svc"
features = ["user_agg:amount_sum_10s", "user_agg:rows_lifetime", "txn:amount_log1p"]
"#,
        aggs = declared_aggregations()
    )
}

/// One feature row: `(user, event_ts, created_ts, amount, txn_id)`.
type Event = (i64, i64, i64, Option<f64>, i64);

/// A small deterministic generator (splitmix64): the same streams on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SPECIAL: [f64; 21] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    1e16,
    -1e16,
    0.1,
    0.2,
    0.3,
    1e308,
    -1e308,
    f64::MAX,
    f64::MIN_POSITIVE,
    5e-324,
    -5e-324,
    2.5,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    f64::from_bits(0x7ff0_0000_0000_0001),
    f64::from_bits(0xfff8_0000_0000_0000),
];

/// Users 0 to 4, times on a few whole seconds and a µs either side (many ties), created
/// times that tie too, some rows duplicated, in shuffled order.
fn stream(seed: u64, rows: usize) -> Vec<Event> {
    let mut rng = Rng(seed);
    let mut events: Vec<Event> = (0..rows)
        .map(|_| {
            let user = rng.below(5) as i64;
            let second = rng.below(60) as i64;
            let jitter = [0, 0, 1, -1][rng.below(4) as usize];
            let event_ts = BASE + second * SECOND + jitter;
            let created_ts = BASE + rng.below(3) as i64;
            let amount = match rng.below(8) {
                0 => None,
                1..=4 => Some(SPECIAL[rng.below(SPECIAL.len() as u64) as usize]),
                5 | 6 => Some((rng.below(128) as f64 - 64.0) / 4.0),
                _ => Some(f64::from_bits(rng.next())).filter(|x| x.is_finite()),
            };
            let txn_id = rng.below(21) as i64 - 10;
            (user, event_ts, created_ts, amount, txn_id)
        })
        .collect();
    for _ in 0..rows / 10 {
        let e = events[rng.below(events.len() as u64) as usize];
        events.push(e);
    }
    for i in (1..events.len()).rev() {
        events.swap(i, rng.below(i as u64 + 1) as usize);
    }
    events
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

fn timestamps(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("+00:00"))
}

/// Feature-table rows of an aggregate view: keys, timestamps, the columns aggregated.
fn feature_rows(events: &[Event]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_ts", ts_type(), false),
        Field::new("created_ts", ts_type(), false),
        Field::new("txn_id", DataType::Int64, false),
        Field::new("amount", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.0))),
            timestamps(events.iter().map(|e| e.1)),
            timestamps(events.iter().map(|e| e.2)),
            Arc::new(Int64Array::from_iter_values(events.iter().map(|e| e.4))),
            Arc::new(events.iter().map(|e| e.3).collect::<Float64Array>()),
        ],
    )
    .unwrap()
}

/// Label rows: every row's time, a µs either side, the windows' and the TTL's edges from it
/// (and a µs either side), before any row; for users with rows and users without (5, 6).
fn labels(events: &[Event]) -> Vec<(i64, i64)> {
    let mut out = std::collections::BTreeSet::new();
    for &(user, event_ts, ..) in events {
        for d in [0, 10 * SECOND, 20 * SECOND, 50 * SECOND] {
            for e in [-1, 0, 1] {
                out.insert((user, event_ts + d + e));
            }
        }
    }
    for user in 0..7 {
        out.extend([
            (user, BASE - 5 * SECOND),
            (user, BASE + 30 * SECOND),
            (user, BASE + 3600 * SECOND),
        ]);
    }
    // Shuffled, so output order follows the input, not the time.
    let mut out: Vec<(i64, i64)> = out.into_iter().collect();
    let mut rng = Rng(7);
    for i in (1..out.len()).rev() {
        out.swap(i, rng.below(i as u64 + 1) as usize);
    }
    out
}

fn entity_rows(labels: &[(i64, i64)]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_timestamp", ts_type(), false),
        Field::new("amount", DataType::Float64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(labels.iter().map(|l| l.0))),
            timestamps(labels.iter().map(|l| l.1)),
            Arc::new(Float64Array::from_iter_values(
                (0..labels.len()).map(|i| i as f64 + 0.5),
            )),
        ],
    )
    .unwrap()
}

fn contains(span: Option<i64>, t: i64, event_ts: i64) -> bool {
    event_ts <= t && span.is_none_or(|w| t - w < event_ts)
}

/// The oracle's answers by aggregation and the rows in its window: many labels share them.
type Memo = std::collections::HashMap<(String, Vec<usize>), Output>;

/// The oracle's value of one aggregation at `(user, t)` over `events`, with the TTL.
fn expected(
    events: &[Event],
    (name, function, column, span): (&str, Function, Option<&str>, Option<i64>),
    user: i64,
    t: i64,
    ttl: Option<i64>,
    memo: &mut Memo,
) -> Option<Output> {
    if let Some(ttl) = ttl {
        let newest = events
            .iter()
            .filter(|e| e.0 == user && e.1 <= t)
            .map(|e| e.1)
            .max();
        if newest.is_none_or(|n| n < t - ttl) {
            return None;
        }
    }
    let in_window: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].0 == user && contains(span, t, events[i].1))
        .collect();
    let key = (name.to_owned(), in_window);
    if let Some(answer) = memo.get(&key) {
        return Some(answer.clone());
    }
    let rows: Vec<&Event> = key.1.iter().map(|&i| &events[i]).collect();
    let answer = match column {
        None => Output::Value(FeatureValue::Int64(rows.len() as i64)),
        Some("amount") => oracle_float(
            function,
            &rows.iter().map(|e| (e.1, e.2, e.3)).collect::<Vec<_>>(),
        ),
        Some(_) => oracle_int(
            function,
            &rows
                .iter()
                .map(|e| (e.1, e.2, Some(e.4)))
                .collect::<Vec<_>>(),
        ),
    };
    memo.insert(key, answer.clone());
    Some(answer)
}

/// The training set's value at `row` of `column`, as the oracle gives it (`None`: null for a
/// TTL miss; a list column's null is that, an empty list is an empty window).
fn got(column: &ArrayRef, row: usize, function: Function) -> Option<Output> {
    let scalar = |c: &ArrayRef, i: usize| -> FeatureValue {
        if c.is_null(i) {
            return FeatureValue::Null;
        }
        match c.data_type() {
            DataType::Int64 => FeatureValue::Int64(c.as_primitive::<Int64Type>().value(i)),
            DataType::Float64 => FeatureValue::Float64(c.as_primitive::<Float64Type>().value(i)),
            other => panic!("unexpected type {other}"),
        }
    };
    match function {
        Function::LastN(_) => {
            let list = column.as_list::<i32>();
            if list.is_null(row) {
                return None;
            }
            let values = list.value(row);
            Some(Output::List(
                (0..values.len()).map(|i| scalar(&values, i)).collect(),
            ))
        }
        _ => {
            let value = scalar(column, row);
            Some(Output::Value(value))
        }
    }
}

fn retrieve(
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

fn tiny_budget() -> MemoryBudget {
    MemoryBudget {
        bytes: 2048,
        fan_out: 3,
        spill_dir: None,
    }
}

/// A repo with the source ingested (so `apply` sees its schema), applied, and the batch view
/// materialized.
fn setup() -> TestRepo {
    let repo = TestRepo::new(&repo_toml());
    let batches: Vec<_> = skewless_datagen::batches(
        skewless_datagen::Spec {
            rows: 200,
            users: 5,
            days: 2,
            ..skewless_datagen::Spec::default()
        },
        64,
    )
    .collect();
    repo.ingest("raw.transactions", "txns.parquet", &batches);
    repo.apply().unwrap();
    repo
}

/// Writes `events` into both aggregate views' feature tables in `parts` snapshots; the
/// number of events in each snapshot so far, and the snapshots' commit times (ms).
fn write_snapshots(repo: &TestRepo, events: &[Event], parts: usize) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    let size = events.len().div_ceil(parts);
    for (i, chunk) in events.chunks(size).enumerate() {
        for table in ["features.user_agg", "features.user_agg_ttl"] {
            // Each snapshot in two batches, so rows reach the reader in several pieces.
            let (a, b) = chunk.split_at(chunk.len() / 2);
            repo.append(table, &[feature_rows(a), feature_rows(b)]);
        }
        let snapshots = repo
            .rt
            .block_on(repo.offline().snapshots(
                &skewless_runtime::offline::TableName::parse("features.user_agg_ttl").unwrap(),
            ))
            .unwrap();
        out.push((
            (i * size + chunk.len()).min(events.len()),
            snapshots.last().unwrap().timestamp_ms,
        ));
        // Snapshots committed in distinct milliseconds, so an as-of time tells them apart.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    out
}

/// Every aggregation of both views, for every label, equals the oracle over `events`.
fn check_against_oracle(set: &TrainingSet, events: &[Event], labels: &[(i64, i64)]) {
    let mut memo = Memo::new();
    for (view, ttl) in [("user_agg", None), ("user_agg_ttl", Some(20 * SECOND))] {
        for (name, function, column, span) in aggregations() {
            let out = set
                .batch
                .column_by_name(&format!("{view}__{name}"))
                .unwrap_or_else(|| panic!("{view}__{name} is in the training set"));
            for (row, &(user, t)) in labels.iter().enumerate() {
                let aggregation = (name.as_str(), function, column, span);
                let want = expected(events, aggregation, user, t, ttl, &mut memo);
                let have = got(out, row, function);
                // A TTL miss is null in every column; a scalar null is the oracle's null too.
                let want = want.or(match function {
                    Function::LastN(_) => None,
                    _ => Some(Output::Value(FeatureValue::Null)),
                });
                assert_eq!(
                    have,
                    want,
                    "{view}:{name} for user {user} at BASE{:+} µs",
                    t - BASE
                );
            }
        }
    }
}

#[test]
fn aggregate_features_equal_the_exact_oracle_at_every_label_time_bit_for_bit() {
    let repo = setup();
    let events = stream(11, 160);
    let labels = labels(&events);
    let entities = entity_rows(&labels);
    let snapshots = write_snapshots(&repo, &events, 3);
    let features = ["user_agg:*", "user_agg_ttl:*"];

    let whole = retrieve(&repo, &entities, &features, None, MemoryBudget::default()).unwrap();
    assert_eq!(whole.spill_files, 0);
    assert_eq!(whole.batch.num_rows(), labels.len());
    // The input columns come first, as given.
    assert_eq!(whole.batch.column(0).as_ref(), entities.column(0).as_ref());
    check_against_oracle(&whole, &events, &labels);
    assert_eq!(whole.digests["user_agg"], "none");
    let current = repo.scan("features.user_agg", None);
    assert!(!current.is_empty());
    assert!(whole.snapshots["user_agg"].is_some());

    // Partitioned and spilled over several rounds: the same bits.
    let parts = retrieve(&repo, &entities, &features, None, tiny_budget()).unwrap();
    assert!(parts.spill_files > 0, "the tiny budget spills");
    assert_eq!(parts.batch, whole.batch);
    assert_eq!(parts.snapshots, whole.snapshots);

    // As of the first snapshot: the values of its rows alone.
    let (first_rows, first_ms) = snapshots[0];
    let pinned = retrieve(
        &repo,
        &entities,
        &features,
        Some(first_ms),
        MemoryBudget::default(),
    )
    .unwrap();
    assert_ne!(pinned.snapshots, whole.snapshots);
    check_against_oracle(&pinned, &events[..first_rows], &labels);
    let pinned_parts =
        retrieve(&repo, &entities, &features, Some(first_ms), tiny_budget()).unwrap();
    assert_eq!(pinned_parts.batch, pinned.batch);

    // Before any snapshot: the empty window's values (count 0, the others null).
    let before = retrieve(
        &repo,
        &entities,
        &features,
        Some(0),
        MemoryBudget::default(),
    )
    .unwrap();
    assert_eq!(before.snapshots["user_agg"], None);
    check_against_oracle(&before, &[], &labels);
}

#[test]
fn a_second_stream_with_few_rows_per_entity_also_matches_under_a_tiny_budget() {
    let repo = setup();
    let events = stream(23, 40);
    let labels = labels(&events);
    let entities = entity_rows(&labels);
    write_snapshots(&repo, &events, 2);
    let set = retrieve(
        &repo,
        &entities,
        &["user_agg:*", "user_agg_ttl:*"],
        None,
        tiny_budget(),
    )
    .unwrap();
    check_against_oracle(&set, &events, &labels);
}

#[test]
fn aggregates_mix_with_batch_views_request_views_and_feature_services() {
    let repo = setup();
    repo.materialize("txn", &Options::default(), repo.online().as_ref())
        .unwrap();
    let events = stream(5, 80);
    write_snapshots(&repo, &events, 2);
    let labels = labels(&events);
    let entities = entity_rows(&labels);
    let alone = |features: &[&str]| {
        retrieve(&repo, &entities, features, None, MemoryBudget::default()).unwrap()
    };
    let mixed = alone(&[
        "user_agg:amount_sum_10s",
        "txn:amount_log1p",
        "req:*",
        "user_agg:amount_last_n_lifetime",
    ]);
    let aggregates = alone(&["user_agg:amount_sum_10s", "user_agg:amount_last_n_lifetime"]);
    let batch = alone(&["txn:amount_log1p"]);
    for name in [
        "user_agg__amount_sum_10s",
        "user_agg__amount_last_n_lifetime",
    ] {
        assert_eq!(
            mixed.batch.column_by_name(name).unwrap(),
            aggregates.batch.column_by_name(name).unwrap(),
            "{name}"
        );
    }
    let log1p = batch.batch.column_by_name("txn__amount_log1p").unwrap();
    assert_eq!(
        mixed.batch.column_by_name("txn__amount_log1p").unwrap(),
        log1p
    );
    assert!(
        log1p.null_count() < log1p.len(),
        "the batch view has values"
    );
    let last_n = mixed
        .batch
        .column_by_name("user_agg__amount_last_n_lifetime")
        .unwrap();
    assert_eq!(
        last_n.data_type(),
        &DataType::List(Arc::new(Field::new("item", DataType::Float64, true)))
    );

    // The request view reads the aggregate where it reads stored features from.
    let mean = alone(&["user_agg:amount_mean_lifetime"]);
    let input = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("request_amount", DataType::Float64, false),
            Field::new("user_last_amount", DataType::Float64, true),
            Field::new("user_avg_amount_30d", DataType::Float64, true),
        ])),
        vec![
            entities.column_by_name("amount").unwrap().clone(),
            log1p.clone(),
            mean.batch
                .column_by_name("user_agg__amount_mean_lifetime")
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
        assert_eq!(
            mixed
                .batch
                .column_by_name(&format!("req__{}", field.name()))
                .unwrap()
                .to_data(),
            direct.column_by_name(field.name()).unwrap().to_data(),
            "{}",
            field.name()
        );
    }
    let parts = retrieve(
        &repo,
        &entities,
        &[
            "user_agg:amount_sum_10s",
            "txn:amount_log1p",
            "req:*",
            "user_agg:amount_last_n_lifetime",
        ],
        None,
        tiny_budget(),
    )
    .unwrap();
    assert_eq!(parts.batch, mixed.batch, "the same when partitioned");

    // A feature service lists aggregate features beside batch ones.
    let service: Vec<String> = repo
        .open()
        .unwrap()
        .feature_service("svc")
        .unwrap()
        .features
        .clone();
    let service: Vec<&str> = service.iter().map(String::as_str).collect();
    let served = alone(&service);
    for name in [
        "user_agg__amount_sum_10s",
        "user_agg__rows_lifetime",
        "txn__amount_log1p",
    ] {
        assert!(served.batch.column_by_name(name).is_some(), "{name}");
    }
    assert_eq!(
        served.batch.column_by_name("user_agg__amount_sum_10s"),
        mixed.batch.column_by_name("user_agg__amount_sum_10s")
    );
}

#[test]
fn an_unknown_aggregation_or_a_join_key_of_the_wrong_type_is_a_clear_error() {
    let repo = setup();
    write_snapshots(&repo, &stream(3, 20), 1);
    let labels = [(1, BASE + 30 * SECOND)];
    let entities = entity_rows(&labels);
    let err = retrieve(
        &repo,
        &entities,
        &["user_agg:amount_median_10s"],
        None,
        MemoryBudget::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), skewless_runtime::ErrorKind::NotFound);
    assert!(
        err.message()
            .contains("view `user_agg` has no feature `amount_median_10s` (features: [rows_10s, amount_count_10s"),
        "{err}"
    );

    let wrong_key = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Utf8, false),
            Field::new("event_timestamp", ts_type(), false),
        ])),
        vec![Arc::new(StringArray::from(vec!["one"])), timestamps([BASE])],
    )
    .unwrap();
    let err = retrieve(
        &repo,
        &wrong_key,
        &["user_agg:rows_10s"],
        None,
        MemoryBudget::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), skewless_runtime::ErrorKind::SchemaMismatch);
    assert!(
        err.to_string()
            .contains("join key `user_id` is Utf8, expected Int64"),
        "{err}"
    );
}
