//! An aggregate view through a Wasm row transform, end to end: the source rows run through
//! `transaction-features` (the component batch views use), and the view aggregates its
//! outputs — a float with NaN and nulls (`amount_log1p` of refunds and missing amounts), an
//! `int32` bucket and a boolean flag — into the feature table and the online store.
//!
//! The oracle is independent of the job's path: the transform's outputs are computed here by
//! loading the same component and running it over the generated rows once, and every value is
//! the definition written out in exact arithmetic (`aggregate/oracle.rs`) over the rows with
//! `t − window < event_ts ≤ t`. Served values (at many times `now`, after a full run and after
//! incremental runs over a second source snapshot) and historical retrieval at the same times
//! must both equal it bit for bit.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray};
use skewless_runtime::aggregate::{Aggregation, Function, Output, Window};
use skewless_runtime::engine::TransformEngine;
use skewless_runtime::historical::{MemoryBudget, Request as HistoricalRequest, Retrieval};
use skewless_runtime::materialize::Options;
use skewless_runtime::online::{FeatureValue, OnlineStore, ReadStatus};
use skewless_runtime::registry::{FeatureRef, OpenedRepo};
use skewless_runtime::serving::FeatureRequest;
use skewless_tests::components::TRANSACTION_FEATURES;
use skewless_tests::feature_repo::TestRepo;

use crate::aggregate::oracle::{oracle_float, oracle_int};
use crate::aggregate_online::{cell, serving};

const SECOND: i64 = 1_000_000;
const HOUR: i64 = 3_600 * SECOND;
const DAY: i64 = 24 * HOUR;
/// The end of the generated rows and the jobs' time.
const T0: i64 = 1_800_000_000 * SECOND;

const REPO: &str = r#"
[project]
name = "aggregate-transform"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

[[aggregate_view]]
name = "feat"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "{TRANSACTION_FEATURES}"
aggregations = [
    { name = "rows_1h", function = "count", window = "1h" },
    { name = "log_sum_1h", function = "sum", column = "amount_log1p", window = "1h" },
    { name = "log_mean_24h", function = "mean", column = "amount_log1p", window = "24h" },
    { name = "log_max_life", function = "max", column = "amount_log1p", window = "lifetime" },
    { name = "log_var_24h", function = "variance", column = "amount_log1p", window = "24h" },
    { name = "log_last3_24h", function = "last_n", column = "amount_log1p", window = "24h", k = 3 },
    { name = "bucket_sum_24h", function = "sum", column = "amount_bucket", window = "24h" },
    { name = "bucket_distinct_24h", function = "count_distinct", column = "amount_bucket", window = "24h" },
    { name = "high_count_1h", function = "count", column = "is_high_value", window = "1h" },
]
"#;

/// One source row and the transform's outputs for it.
#[derive(Clone, Debug)]
struct Row {
    user: i64,
    event_ts: i64,
    created_ts: i64,
    log1p: Option<f64>,
    bucket: Option<i64>,
    high: Option<bool>,
}

/// Generated transactions of 4 users over the two days before `T0` (refunds, missing
/// amounts), in two source snapshots.
fn source() -> [RecordBatch; 2] {
    let spec = skewless_datagen::Spec {
        rows: 600,
        users: 4,
        days: 2,
        end_us: T0,
        seed: 11,
    };
    let all: Vec<RecordBatch> = skewless_datagen::batches(spec, 600).collect();
    let all = &all[0];
    [all.slice(0, 400), all.slice(400, 200)]
}

/// The source rows with the component's outputs, computed once, here.
fn rows(batches: &[RecordBatch]) -> Vec<Row> {
    let engine = TransformEngine::builder().build().expect("engine");
    let transform = engine
        .load_file(TRANSACTION_FEATURES)
        .expect("component loads");
    let mut rows = Vec::new();
    for batch in batches {
        let outputs = transform.run(batch).expect("the component runs");
        let column = |b: &RecordBatch, name: &str| b.column_by_name(name).expect(name).clone();
        let user = column(batch, "user_id");
        let event = column(batch, "event_ts");
        let created = column(batch, "ingested_at");
        let log1p = column(&outputs, "amount_log1p");
        let bucket = column(&outputs, "amount_bucket");
        let high = column(&outputs, "is_high_value");
        for i in 0..batch.num_rows() {
            let get = |a: &ArrayRef| a.is_valid(i).then_some(i);
            rows.push(Row {
                user: user.as_primitive::<Int64Type>().value(i),
                event_ts: event.as_primitive::<TimestampMicrosecondType>().value(i),
                created_ts: created.as_primitive::<TimestampMicrosecondType>().value(i),
                log1p: get(&log1p).map(|i| log1p.as_primitive::<Float64Type>().value(i)),
                bucket: get(&bucket)
                    .map(|i| i64::from(bucket.as_primitive::<Int32Type>().value(i))),
                high: get(&high).map(|i| high.as_boolean().value(i)),
            });
        }
    }
    rows
}

/// The definition, literally: `a` of `user` at `t` over `rows`, in exact arithmetic.
fn oracle(a: &Aggregation, rows: &[Row], user: i64, t: i64) -> FeatureValue {
    let inside: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.user == user
                && r.event_ts <= t
                && match a.window {
                    Window::Lifetime => true,
                    Window::Span(w) => r.event_ts > t - w,
                }
        })
        .collect();
    let output = match (a.column.as_deref(), a.function) {
        (None, Function::Count) => Output::Value(FeatureValue::Int64(inside.len() as i64)),
        (Some("is_high_value"), Function::Count) => Output::Value(FeatureValue::Int64(
            inside.iter().filter(|r| r.high.is_some()).count() as i64,
        )),
        (Some("amount_bucket"), Function::CountDistinct) => Output::Value(FeatureValue::Int64(
            inside
                .iter()
                .filter_map(|r| r.bucket)
                .collect::<BTreeSet<_>>()
                .len() as i64,
        )),
        (Some("amount_bucket"), f) => oracle_int(
            f,
            &inside
                .iter()
                .map(|r| (r.event_ts, r.created_ts, r.bucket))
                .collect::<Vec<_>>(),
        ),
        (Some("amount_log1p"), f) => oracle_float(
            f,
            &inside
                .iter()
                .map(|r| (r.event_ts, r.created_ts, r.log1p))
                .collect::<Vec<_>>(),
        ),
        other => panic!("no oracle for {other:?}"),
    };
    match output {
        Output::Value(v) => v,
        Output::List(items) => FeatureValue::List(items),
    }
}

/// Each row's time of the last day (and a µs either side, and where the 1 h window lets it
/// go), plus `T0` and later: the times a record cut at `T0` answers.
fn query_times(rows: &[Row]) -> Vec<i64> {
    let mut times = BTreeSet::from([T0, T0 + 1, T0 + HOUR, T0 + 3 * DAY]);
    for r in rows.iter().filter(|r| r.event_ts > T0 - DAY + HOUR) {
        for shift in [0, HOUR] {
            for d in [-1, 0, 1] {
                times.insert(r.event_ts + shift + d);
            }
        }
    }
    // Every fourth, to keep the test quick in debug builds; the edges stay dense enough.
    times.into_iter().step_by(4).collect()
}

/// Served values and historical retrieval, for every user (and one never seen) at every
/// query time, against the oracle.
fn check(repo: &TestRepo, store: Arc<dyn OnlineStore>, rows: &[Row], what: &str) {
    let aggregations = repo.open().expect("repo").applied().expect("applied").views["feat"]
        .resolved_aggregations()
        .expect("aggregations");
    let serving = serving(repo, store);
    let users = [1i64, 2, 3, 4, 99];
    let body = serde_json::json!({"features": ["feat:*"], "entities": {"user_id": users}});
    let request = FeatureRequest::from_json(body.to_string().as_bytes()).expect("request");
    let times = query_times(rows);
    // expected[k][a][j]: aggregation `a` of `users[j]` at `times[k]`, computed once (exact
    // arithmetic is the slow part) for both paths.
    let expected: Vec<Vec<Vec<FeatureValue>>> = times
        .iter()
        .map(|&t| {
            (aggregations.iter())
                .map(|a| users.iter().map(|&u| oracle(a, rows, u, t)).collect())
                .collect()
        })
        .collect();
    let present = expected
        .iter()
        .flatten()
        .flatten()
        .filter(|v| !v.is_null())
        .count();
    assert!(
        present * 2 > times.len() * aggregations.len() * users.len(),
        "{what}: the check must see values, not mostly empty windows ({present} present)"
    );
    let (mut label_users, mut label_times) = (Vec::new(), Vec::new());
    for (k, &t) in times.iter().enumerate() {
        let answer = serving.get_at(&request, t).expect("served");
        for (n, (column, a)) in answer.features.iter().zip(&aggregations).enumerate() {
            assert_eq!(&*column.feature, a.name);
            for (i, &user) in users.iter().enumerate() {
                let at = format!("{what}: {} of user {user} at {t}", a.name);
                assert_eq!(column.values[i], expected[k][n][i], "{at}");
                if user == 99 {
                    assert_eq!(column.statuses[i], ReadStatus::NotFound, "{at}");
                }
            }
        }
        for &user in &users {
            label_users.push(user);
            label_times.push(t);
        }
    }

    let entities = RecordBatch::try_from_iter([
        (
            "user_id",
            Arc::new(Int64Array::from(label_users)) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(TimestampMicrosecondArray::from(label_times).with_timezone("UTC")),
        ),
    ])
    .expect("entity rows");
    let opened = OpenedRepo::open(repo.path()).expect("repo opens");
    let set = Retrieval {
        context: opened.context(),
    }
    .run(
        &entities,
        &HistoricalRequest {
            features: vec![FeatureRef::parse("feat:*").expect("feature")],
            full_feature_names: false,
            as_of_ms: None,
            memory: MemoryBudget::default(),
        },
    )
    .unwrap_or_else(|e| panic!("{what}: historical retrieval: {e}"));
    for (n, a) in aggregations.iter().enumerate() {
        let trained = set.batch.column_by_name(&a.name).expect("a feature column");
        for (k, &t) in times.iter().enumerate() {
            for (j, &user) in users.iter().enumerate() {
                let row = k * users.len() + j;
                assert_eq!(
                    cell(trained.as_ref(), row),
                    expected[k][n][j],
                    "{what}: training value of {} of user {user} at {t}",
                    a.name
                );
            }
        }
    }
}

#[test]
fn an_aggregate_view_over_a_transforms_outputs_equals_the_exact_oracle_online_and_offline() {
    let [first, second] = source();
    let options = Options {
        now_us: Some(T0),
        ..Options::default()
    };
    let incremental = Options {
        incremental: true,
        ..options.clone()
    };

    // A full run over one snapshot, then incremental runs over a second.
    let repo = TestRepo::new(REPO);
    repo.ingest(
        "raw.transactions",
        "first.parquet",
        std::slice::from_ref(&first),
    );
    let plan = repo.apply().expect("apply");
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    let store = repo.online();
    repo.materialize("feat", &options, store.as_ref())
        .expect("full run");
    let mut expected = rows(std::slice::from_ref(&first));
    // The outputs aggregated have nulls (missing amounts) beside values.
    assert!(expected.iter().any(|r| r.log1p.is_none()));
    assert!(expected.iter().filter(|r| r.log1p.is_some()).count() > 300);
    check(&repo, store.clone(), &expected, "full run, first snapshot");

    repo.append("raw.transactions", std::slice::from_ref(&second));
    repo.materialize("feat", &incremental, store.as_ref())
        .expect("incremental run");
    expected.extend(rows(std::slice::from_ref(&second)));
    check(
        &repo,
        store.clone(),
        &expected,
        "incremental, second snapshot",
    );

    // The same rows in one snapshot and one full run give the same values.
    let once = TestRepo::new(REPO);
    once.ingest("raw.transactions", "all.parquet", &[first, second]);
    once.apply().expect("apply");
    let store = once.online();
    once.materialize("feat", &options, store.as_ref())
        .expect("full run");
    check(&once, store, &expected, "one snapshot, one full run");
}
