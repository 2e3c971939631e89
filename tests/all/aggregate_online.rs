//! Aggregate views end to end: materialized from a real Iceberg source into real online stores
//! (the embedded one and a real redis-server) and served at many times `now`, in several
//! batchings of the same randomized stream.
//!
//! The stream has every edge case of the aggregation tests (rows out of order, late rows that
//! land in later source snapshots, equal timestamps, duplicated rows, nulls, NaN with several
//! payloads, ±inf, −0.0, 1e16 / 1 / −1e16, several entities) and old rows that records fold
//! into lifetime states. It is ingested in several snapshots and materialized (a) full at the
//! end, (b) incrementally after each snapshot, (c) incrementally with a window backfill and a
//! failed run in the middle. After every run, the value served at each query time (every row's
//! time, a µs either side, the window edges) equals, bit for bit, the exact oracle of
//! `aggregate.rs` over the rows ingested so far, and `Aggregation::value_at` over them.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray,
};
use arrow_schema::DataType as ArrowType;
use skewless_runtime::Error;
use skewless_runtime::aggregate::{Aggregation, Function, Output, Window};
use skewless_runtime::engine::TransformEngine;
use skewless_runtime::error::ErrorKind;
use skewless_runtime::historical::{MemoryBudget, Request as HistoricalRequest, Retrieval};
use skewless_runtime::materialize::{Hook, Options, Step};
use skewless_runtime::online::{self, FeatureValue, OnlineConfig, OnlineStore, ReadStatus};
use skewless_runtime::registry::{FeatureRef, FeatureRepo, OpenedRepo};
use skewless_runtime::serving::{FeatureRequest, OnlineFeatures, OnlineServing};
use skewless_tests::feature_repo::TestRepo;
use skewless_tests::redis_server::RedisServer;

use crate::aggregate::oracle::{oracle_float, oracle_int};

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;
/// The job's time: the stream lies around it, the old rows days before.
const T0: i64 = 1_800_000_000 * SECOND;

const REPO: &str = r#"
[project]
name = "aggregates-online"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

[[aggregate_view]]
name = "agg"
entities = ["user"]
source = "raw.events"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
aggregations = [
    { name = "rows_10s", function = "count", window = "10s" },
    { name = "x_count_50s", function = "count", column = "x", window = "50s" },
    { name = "x_sum_10s", function = "sum", column = "x", window = "10s" },
    { name = "x_sum_life", function = "sum", column = "x", window = "lifetime" },
    { name = "x_mean_50s", function = "mean", column = "x", window = "50s" },
    { name = "x_var_50s", function = "variance", column = "x", window = "50s" },
    { name = "x_std_life", function = "stddev", column = "x", window = "lifetime" },
    { name = "x_min_10s", function = "min", column = "x", window = "10s" },
    { name = "x_max_life", function = "max", column = "x", window = "lifetime" },
    { name = "x_last_10s", function = "last", column = "x", window = "10s" },
    { name = "x_last3_50s", function = "last_n", column = "x", window = "50s", k = 3 },
    { name = "x_distinct_50s", function = "count_distinct", column = "x", window = "50s" },
    { name = "n_sum_50s", function = "sum", column = "n", window = "50s" },
    { name = "n_mean_life", function = "mean", column = "n", window = "lifetime" },
    { name = "n_var_10s", function = "variance", column = "n", window = "10s" },
]

[[aggregate_view]]
name = "recent"
entities = ["user"]
source = "raw.events"
event_timestamp = "event_ts"
ttl = "20s"
aggregations = [
    { name = "count_30s", function = "count", window = "30s" },
    { name = "n_max_30s", function = "max", column = "n", window = "30s" },
]

# A request-time view reading two aggregates as inputs.
[[request_view]]
name = "req"
transform = "{REQUEST_AMOUNT_RATIO}"
entities = ["user"]
inputs.request_amount = { request = "amount" }
inputs.user_last_amount = { feature = "agg:x_last_10s" }
inputs.user_avg_amount_30d = { feature = "agg:x_mean_50s" }

[[feature_service]]
name = "mixed"
features = ["agg:rows_10s", "recent:*", "req:amount_minus_avg"]
"#;

/// One source row.
#[derive(Clone, Copy, Debug)]
struct Event {
    user: i64,
    event_ts: i64,
    created_ts: i64,
    x: Option<f64>,
    n: Option<i64>,
}

/// A small deterministic generator (xorshift): the streams differ per seed, and a failure
/// names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SPECIAL: [f64; 14] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    1e16,
    -1e16,
    0.1,
    2.5,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    5e-324,
    1e308,
    -1e308,
];

/// The stream cut into source snapshots: rows out of order, some late (an event time well
/// before the snapshot's others), some duplicated, some old (folded into lifetime states).
fn snapshots(seed: u64) -> Vec<Vec<Event>> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut out = Vec::new();
    for s in 0..4i64 {
        let mut rows = Vec::new();
        for _ in 0..(10 + rng.below(10)) {
            let user = rng.below(3) as i64 + 1;
            // Mostly this snapshot's stretch of time, on a coarse grid so times collide.
            let event_ts = match rng.below(10) {
                0 => T0 - 2 * DAY - rng.below(DAY as u64) as i64, // old
                1 => T0 - 60 * SECOND + rng.below(40) as i64 * SECOND, // late
                _ => T0 - 40 * SECOND + s * 30 * SECOND + rng.below(60) as i64 * SECOND / 2,
            };
            let created_ts = T0 + s * SECOND + rng.below(3) as i64;
            let x = match rng.below(6) {
                0 => None,
                1 | 2 => Some(SPECIAL[rng.below(SPECIAL.len() as u64) as usize]),
                3 => Some(f64::from_bits(0x7ff0_0000_0000_0001)),
                _ => Some((rng.below(64) as f64 - 32.0) / 4.0),
            };
            let x = if x.is_some_and(f64::is_nan) && rng.below(3) > 0 {
                Some((rng.below(8) as f64) * 0.5)
            } else {
                x
            };
            let n = match rng.below(5) {
                0 => None,
                _ => Some(rng.below(2001) as i64 - 1000),
            };
            let e = Event {
                user,
                event_ts,
                created_ts,
                x,
                n,
            };
            rows.push(e);
            if rng.below(8) == 0 {
                rows.push(e); // a duplicated source row
            }
        }
        out.push(rows);
    }
    out
}

fn batch(rows: &[Event]) -> RecordBatch {
    let ts = |f: fn(&Event) -> i64| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "user_id",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.user).collect::<Vec<_>>(),
            )),
        ),
        ("event_ts", ts(|r| r.event_ts)),
        ("ingested_at", ts(|r| r.created_ts)),
        (
            "x",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.x).collect::<Vec<_>>(),
            )),
        ),
        (
            "n",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.n).collect::<Vec<_>>(),
            )),
        ),
    ];
    RecordBatch::try_from_iter(columns).expect("batch")
}

/// The aggregations of a view, as serving resolves them.
fn aggregations(repo: &TestRepo, view: &str) -> Vec<Aggregation> {
    let feature_repo = repo.open().expect("repo opens");
    let registry = feature_repo.applied().expect("applied");
    registry.views[view]
        .resolved_aggregations()
        .expect("aggregations resolve")
}

/// Online serving of `repo`'s applied views from `store`.
pub(crate) fn serving(repo: &TestRepo, store: Arc<dyn OnlineStore>) -> OnlineServing {
    let feature_repo = FeatureRepo::open(repo.path()).expect("repo");
    let registry = feature_repo.applied().expect("registry");
    let engine = TransformEngine::builder()
        .cache_dir(feature_repo.state_dir().join("compiled"))
        .build()
        .expect("engine");
    OnlineServing::open(&feature_repo, &registry, &engine, store).expect("serving opens")
}

fn request(features: &[&str], users: &[i64]) -> FeatureRequest {
    let body = serde_json::json!({"features": features, "entities": {"user_id": users}});
    FeatureRequest::from_json(body.to_string().as_bytes()).expect("request parses")
}

/// The oracle's value of `a` for `user` at `t`, over `rows` (exact arithmetic, the definition
/// written out: `t − w < event_ts ≤ t`).
fn oracle(a: &Aggregation, rows: &[Event], user: i64, t: i64) -> FeatureValue {
    let window = |e: &&Event| {
        e.user == user
            && e.event_ts <= t
            && match a.window {
                Window::Lifetime => true,
                Window::Span(w) => e.event_ts > t - w,
            }
    };
    let inside: Vec<&Event> = rows.iter().filter(window).collect();
    let output = match (a.column.as_deref(), a.function) {
        (None, Function::Count) => Output::Value(FeatureValue::Int64(inside.len() as i64)),
        (Some("n"), Function::Count) => Output::Value(FeatureValue::Int64(
            inside.iter().filter(|e| e.n.is_some()).count() as i64,
        )),
        (Some("n"), Function::Max) => Output::Value(
            inside
                .iter()
                .filter_map(|e| e.n)
                .max()
                .map_or(FeatureValue::Null, FeatureValue::Int64),
        ),
        (Some("n"), f) => oracle_int(
            f,
            &inside
                .iter()
                .map(|e| (e.event_ts, e.created_ts, e.n))
                .collect::<Vec<_>>(),
        ),
        (_, f) => oracle_float(
            f,
            &inside
                .iter()
                .map(|e| (e.event_ts, e.created_ts, e.x))
                .collect::<Vec<_>>(),
        ),
    };
    served(output)
}

fn served(output: Output) -> FeatureValue {
    match output {
        Output::Value(v) => v,
        Output::List(items) => FeatureValue::List(items),
    }
}

/// `Aggregation::value_at` over every row of `user`.
fn value_at(a: &Aggregation, rows: &[Event], user: i64, t: i64) -> FeatureValue {
    let values: Vec<(i64, i64, FeatureValue)> = rows
        .iter()
        .filter(|e| e.user == user)
        .map(|e| {
            let v = match a.column.as_deref() {
                None => FeatureValue::Boolean(true),
                Some("n") => e.n.map_or(FeatureValue::Null, FeatureValue::Int64),
                Some(_) => e.x.map_or(FeatureValue::Null, FeatureValue::Float64),
            };
            (e.event_ts, e.created_ts, v)
        })
        .collect();
    served(
        a.value_at(values.iter().map(|(e, c, v)| (*e, *c, v)), t)
            .expect("a value"),
    )
}

/// Every row's time, a µs either side, and the window edges after each row, from one day
/// before the job's time on (what a record answers).
fn query_times(rows: &[Event]) -> Vec<i64> {
    let mut times = BTreeSet::from([T0, T0 - DAY + 50 * SECOND, T0 + 10 * DAY]);
    for e in rows.iter().filter(|e| e.event_ts > T0 - DAY + 60 * SECOND) {
        for w in [0, 10 * SECOND, 30 * SECOND, 50 * SECOND] {
            for d in [-1, 0, 1] {
                times.insert(e.event_ts + w + d);
            }
        }
    }
    times.into_iter().collect()
}

/// Checks every feature of both views for every user (and one never seen) at every query time
/// against the oracle, `value_at` and the status rules.
fn check(serving: &OnlineServing, repo: &TestRepo, rows: &[Event], what: &str) {
    let agg = aggregations(repo, "agg");
    let recent = aggregations(repo, "recent");
    let users = [1i64, 2, 3, 99];
    let req = request(&["agg:*", "recent:*"], &users);
    for t in query_times(rows) {
        let answer: OnlineFeatures = serving
            .get_at(&req, t)
            .unwrap_or_else(|e| panic!("{what}: serving at {t}: {e}"));
        assert_eq!(answer.features.len(), agg.len() + recent.len());
        for (column, a) in answer.features.iter().zip(agg.iter().chain(&recent)) {
            assert_eq!(&*column.feature, a.name);
            for (i, &user) in users.iter().enumerate() {
                let at = format!("{what}: {}:{} of user {user} at {t}", column.view, a.name);
                let seen = rows.iter().any(|e| e.user == user);
                let expected = oracle(a, rows, user, t);
                let newest = rows
                    .iter()
                    .filter(|e| e.user == user && e.event_ts <= t)
                    .map(|e| e.event_ts)
                    .max();
                let expired =
                    &*column.view == "recent" && newest.is_none_or(|n| n < t - 20 * SECOND);
                let (status, value) = (column.statuses[i], &column.values[i]);
                if !seen {
                    assert_eq!(status, ReadStatus::NotFound, "{at}");
                    // Under a TTL no row at all is outside it: null, as in retrieval.
                    let expected = match &*column.view {
                        "recent" => FeatureValue::Null,
                        _ => expected,
                    };
                    assert_eq!(value, &expected, "{at}: the empty-window value");
                    continue;
                }
                assert_eq!(column.event_ts[i], newest, "{at}: event time");
                if expired {
                    assert_eq!(status, ReadStatus::OutsideMaxAge, "{at}");
                    assert_eq!(value, &FeatureValue::Null, "{at}");
                    continue;
                }
                assert_eq!(value, &expected, "{at}: against the oracle");
                assert_eq!(value, &value_at(a, rows, user, t), "{at}: against value_at");
                let want = match value.is_null() {
                    true => ReadStatus::NullValue,
                    false => ReadStatus::Present,
                };
                assert_eq!(status, want, "{at}");
            }
        }
    }
    check_historical(serving, repo, rows, what);
}

/// Historical retrieval over the same feature table, for every user at every query time: each
/// training value equals the value served at `now = t`, bit for bit (the two paths share no
/// code but the aggregation core: the server folds the online record, retrieval slides over the
/// feature table's rows).
fn check_historical(serving: &OnlineServing, repo: &TestRepo, rows: &[Event], what: &str) {
    let users = [1i64, 2, 3, 99];
    let times = query_times(rows);
    let (mut label_users, mut label_times) = (Vec::new(), Vec::new());
    for &t in &times {
        for &user in &users {
            label_users.push(user);
            label_times.push(t);
        }
    }
    let entities = RecordBatch::try_from_iter([
        (
            "user_id",
            Arc::new(Int64Array::from(label_users.clone())) as ArrayRef,
        ),
        (
            "event_timestamp",
            Arc::new(TimestampMicrosecondArray::from(label_times.clone()).with_timezone("UTC")),
        ),
    ])
    .expect("entity rows");
    let opened = OpenedRepo::open(repo.path()).expect("repo opens");
    let features: Vec<FeatureRef> = ["agg:*", "recent:*"]
        .iter()
        .map(|f| FeatureRef::parse(f).expect("feature"))
        .collect();
    let set = Retrieval {
        context: opened.context(),
    }
    .run(
        &entities,
        &HistoricalRequest {
            features,
            full_feature_names: true,
            as_of_ms: None,
            memory: MemoryBudget::default(),
        },
    )
    .unwrap_or_else(|e| panic!("{what}: historical retrieval: {e}"));
    let training = &set.batch;
    let req = request(&["agg:*", "recent:*"], &users);
    for (i, &t) in times.iter().enumerate() {
        let answer = serving.get_at(&req, t).expect("served");
        for column in &answer.features {
            let name = format!("{}__{}", column.view, column.feature);
            let trained = training
                .column_by_name(&name)
                .unwrap_or_else(|| panic!("{what}: no column {name} in the training set"));
            for (j, served) in column.values.iter().enumerate() {
                let row = i * users.len() + j;
                assert_eq!(
                    &cell(trained.as_ref(), row),
                    served,
                    "{what}: {name} of user {} at {t}: training value against served value",
                    users[j]
                );
            }
        }
    }
}

/// A training-set cell as the value the server would send.
pub(crate) fn cell(column: &dyn Array, row: usize) -> FeatureValue {
    if column.is_null(row) {
        return FeatureValue::Null;
    }
    match column.data_type() {
        ArrowType::Int64 => FeatureValue::Int64(column.as_primitive::<Int64Type>().value(row)),
        ArrowType::Float64 => {
            FeatureValue::Float64(column.as_primitive::<Float64Type>().value(row))
        }
        ArrowType::List(_) => {
            let items = column.as_list::<i32>().value(row);
            FeatureValue::List((0..items.len()).map(|k| cell(items.as_ref(), k)).collect())
        }
        other => panic!("a training column of type {other}"),
    }
}

fn job_options() -> Options {
    Options {
        now_us: Some(T0),
        ..Options::default()
    }
}

fn materialize(repo: &TestRepo, options: &Options, store: &dyn OnlineStore) {
    for view in ["agg", "recent"] {
        repo.materialize(view, options, store)
            .unwrap_or_else(|e| panic!("materialize {view} ({options:?}): {e}"));
    }
}

/// The three batchings, on the embedded store (`redis`: on Redis instead).
fn batchings(seed: u64, redis: Option<&RedisServer>) {
    let parts = snapshots(seed);
    let full = TestRepo::new(REPO);
    let incremental = TestRepo::new(REPO);
    let mixed = TestRepo::new(REPO);
    let store = |repo: &TestRepo| -> Arc<dyn OnlineStore> {
        match redis {
            Some(server) => {
                // One Redis for all: each repo's views live in their own database.
                let db = [&full, &incremental, &mixed]
                    .iter()
                    .position(|r| std::ptr::eq(*r, repo))
                    .expect("one of the repos");
                online::open(&OnlineConfig::Redis {
                    url: format!("{}/{}", server.url(), db + 1),
                })
                .expect("redis opens")
            }
            None => repo.online(),
        }
    };
    let stores: Vec<Arc<dyn OnlineStore>> = [&full, &incremental, &mixed].map(store).into();
    let mut ingested: Vec<Event> = Vec::new();
    for (s, part) in parts.iter().enumerate() {
        for repo in [&full, &incremental, &mixed] {
            repo.ingest("raw.events", &format!("part{s}.parquet"), &[batch(part)]);
            if s == 0 {
                let plan = repo.apply().expect("apply");
                assert!(plan.problems.is_empty(), "{:?}", plan.problems);
            }
        }
        let previous = ingested.clone();
        ingested.extend_from_slice(part);
        let what = format!("seed {seed}, after snapshot {s}");

        // (b) incremental after each snapshot.
        let inc = Options {
            incremental: true,
            ..job_options()
        };
        materialize(&incremental, &inc, stores[1].as_ref());
        check(
            &serving(&incremental, stores[1].clone()),
            &incremental,
            &ingested,
            &format!("{what}, incremental"),
        );

        // (c) incremental; at snapshot 2 a run that fails first (the records stay the
        // previous run's), then a window backfill in the middle of the stream.
        if s == 2 {
            let failing = Options {
                hook: Some(Hook(Arc::new(|step| match step {
                    Step::Transformed => Err(Error::new(ErrorKind::Internal, "injected fault")),
                    _ => Ok(()),
                }))),
                ..inc.clone()
            };
            let e = mixed
                .materialize("agg", &failing, stores[2].as_ref())
                .expect_err("the fault fails the run");
            assert!(e.message().contains("injected fault"), "{e}");
            mixed
                .materialize("recent", &failing, stores[2].as_ref())
                .expect_err("the fault fails the run");
            check(
                &serving(&mixed, stores[2].clone()),
                &mixed,
                &previous,
                &format!("{what}, after a failed run"),
            );
        }
        materialize(&mixed, &inc, stores[2].as_ref());
        if s == 1 {
            let window = Options {
                start_us: Some(T0 - 30 * SECOND),
                end_us: Some(T0 + 5 * SECOND),
                ..job_options()
            };
            materialize(&mixed, &window, stores[2].as_ref());
        }
        check(
            &serving(&mixed, stores[2].clone()),
            &mixed,
            &ingested,
            &format!("{what}, mixed"),
        );
    }
    // (a) one full run at the end.
    materialize(&full, &job_options(), stores[0].as_ref());
    check(
        &serving(&full, stores[0].clone()),
        &full,
        &ingested,
        &format!("seed {seed}, full"),
    );
    // A full run again changes nothing served; so does one more window backfill.
    materialize(&full, &job_options(), stores[0].as_ref());
    let window = Options {
        start_us: Some(T0 - 3 * DAY),
        end_us: Some(T0),
        ..job_options()
    };
    materialize(&full, &window, stores[0].as_ref());
    check(
        &serving(&full, stores[0].clone()),
        &full,
        &ingested,
        &format!("seed {seed}, full, re-run"),
    );
}

#[test]
fn served_aggregates_equal_the_exact_oracle_on_the_embedded_store() {
    for seed in [1, 2] {
        batchings(seed, None);
    }
}

#[test]
fn served_aggregates_equal_the_exact_oracle_on_redis() {
    let redis = RedisServer::start();
    batchings(3, Some(&redis));
}

#[test]
fn window_edges_statuses_and_bad_requests() {
    let repo = TestRepo::new(REPO);
    let w = 10 * SECOND;
    // One entity: rows exactly at the edges of the 10 s window at T0.
    let rows: Vec<Event> = [T0 - w - 1, T0 - w, T0 - w + 1, T0 - 1, T0, T0 + 1]
        .iter()
        .enumerate()
        .map(|(i, &t)| Event {
            user: 7,
            event_ts: t,
            created_ts: T0,
            x: Some(1.0 + i as f64),
            n: Some(i as i64),
        })
        .collect();
    repo.ingest("raw.events", "edges.parquet", &[batch(&rows)]);
    repo.apply().expect("apply");
    let store = repo.online();
    materialize(&repo, &job_options(), store.as_ref());
    let serving = serving(&repo, store);
    let answer = serving
        .get_at(
            &request(&["agg:rows_10s", "agg:x_sum_10s", "agg:x_last3_50s"], &[7]),
            T0,
        )
        .expect("served");
    // (T0 − 10 s, T0]: T0 − w + 1, T0 − 1 and T0; not T0 − w, not T0 + 1.
    assert_eq!(answer.features[0].values, [FeatureValue::Int64(3)]);
    assert_eq!(
        answer.features[1].values,
        [FeatureValue::Float64(3.0 + 4.0 + 5.0)]
    );
    assert_eq!(
        answer.features[2].values,
        [FeatureValue::List(vec![
            FeatureValue::Float64(5.0),
            FeatureValue::Float64(4.0),
            FeatureValue::Float64(3.0)
        ])]
    );
    assert!(answer.features[2].list);
    let later = serving
        .get_at(&request(&["agg:rows_10s"], &[7]), T0 + 1)
        .expect("served");
    assert_eq!(
        later.features[0].values,
        [FeatureValue::Int64(3)],
        "T0 − w + 1 left, T0 + 1 came"
    );

    // A request-time view computes from the aggregates at the same `now`: the last value in
    // 10 s is 5, the mean over 50 s is (1 + 2 + 3 + 4 + 5) / 5 = 3.
    let body = serde_json::json!({
        "features": ["req:amount_to_last_ratio", "req:amount_minus_avg", "agg:x_mean_50s"],
        "entities": {"user_id": [7], "amount": [10.0]},
    });
    let answer = serving
        .get_at(
            &FeatureRequest::from_json(body.to_string().as_bytes()).unwrap(),
            T0,
        )
        .expect("served");
    assert_eq!(answer.features[0].values, [FeatureValue::Float64(2.0)]);
    assert_eq!(answer.features[1].values, [FeatureValue::Float64(7.0)]);
    assert_eq!(answer.features[2].values, [FeatureValue::Float64(3.0)]);

    // A feature service mixing aggregates of two views and a request-time view.
    let body = serde_json::json!({
        "feature_service": "mixed",
        "entities": {"user_id": [7, 8], "amount": [10.0, 1.0]},
    });
    let answer = serving
        .get_at(
            &FeatureRequest::from_json(body.to_string().as_bytes()).unwrap(),
            T0,
        )
        .expect("served");
    let names: Vec<&str> = answer.features.iter().map(|c| &*c.name).collect();
    assert_eq!(
        names,
        ["rows_10s", "count_30s", "n_max_30s", "amount_minus_avg"]
    );
    assert_eq!(
        answer.features[0].values,
        [FeatureValue::Int64(3), FeatureValue::Int64(0)]
    );
    assert_eq!(
        answer.features[0].statuses,
        [ReadStatus::Present, ReadStatus::NotFound]
    );
    // `recent` has a 20 s TTL: the newest row at T0 is T0 itself.
    assert_eq!(answer.features[1].values[0], FeatureValue::Int64(5));
    assert_eq!(answer.features[2].values[0], FeatureValue::Int64(4));
    assert_eq!(
        answer.features[3].values,
        [FeatureValue::Float64(7.0), FeatureValue::Null]
    );

    // An aggregation the view does not have: an error naming it and the features it has.
    let e = serving
        .get_at(&request(&["agg:nope"], &[7]), T0)
        .expect_err("unknown aggregation");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.message().contains("`nope`") && e.message().contains("rows_10s"),
        "{e}"
    );
    // A time the records cannot answer (their windows reach below the cut): an error, never
    // a value from too few rows.
    let e = serving
        .get_at(&request(&["agg:rows_10s"], &[7]), T0 - 2 * DAY)
        .expect_err("too early");
    assert!(e.message().contains("needs older rows"), "{e}");
}
