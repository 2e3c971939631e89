//! `POST /push` end to end on real Iceberg tables, a real component, the embedded store and a
//! real redis-server: push then get; offline pushes seen by historical retrieval; malformed
//! bodies refused with nothing written; Redis down (503, nothing half-written, recovery
//! without a restart); crashes between the log and the commit (replayed, nothing lost or
//! doubled); and random event sequences whose online values equal historical retrieval at
//! the same instant, bit for bit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use skewless_runtime::historical::{MemoryBudget, Request as HistoricalRequest, Retrieval};
use skewless_runtime::online::OnlineStore;
use skewless_runtime::push::{PushHook, PushOptions, PushService, PushStep};
use skewless_runtime::registry::{FeatureRef, FeatureRepo, OpenedRepo};
use skewless_runtime::serving::OnlineServing;
use skewless_runtime::{Error, ErrorKind, TransformEngine};
use skewless_server::{self as server, AppState, Limits};
use skewless_tests::feature_repo::TestRepo;
use skewless_tests::redis_server::RedisServer;
use tower::ServiceExt;

const REPO: &str = r#"
[project]
name = "pushed"

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

[[push_source]]
name = "txn_push"
source = "raw.transactions"

[push]
commit_interval = "50ms"
"#;

pub(crate) const SOURCE: &str = "raw.transactions";
/// 2024-01-01T00:00:00Z.
pub(crate) const JAN_1_US: i64 = 1_704_067_200_000_000;
const FEATURES: [&str; 5] = [
    "amount_log1p",
    "amount_zscore",
    "amount_bucket",
    "amount_to_balance_ratio",
    "is_high_value",
];

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// One seed row (user 0), so the source table exists and `apply` can check it.
fn seed() -> RecordBatch {
    skewless_tests::transactions(
        vec![0],
        vec![JAN_1_US],
        vec![JAN_1_US],
        vec![1.0],
        vec![2.0],
    )
}

pub(crate) fn repo(online: Option<&str>) -> TestRepo {
    let toml = match online {
        Some(url) => format!("{REPO}\n[online]\ntype = \"redis\"\nurl = \"{url}\"\n"),
        None => REPO.to_owned(),
    };
    let repo = TestRepo::new(&toml);
    repo.ingest(SOURCE, "seed.parquet", &[seed()]);
    repo.apply().unwrap();
    repo
}

/// A push service on `repo` writing to `store`, with `hook`.
fn service(repo: &TestRepo, store: Arc<dyn OnlineStore>, hook: Option<PushHook>) -> PushService {
    let feature_repo = FeatureRepo::open(repo.path()).unwrap();
    let registry = feature_repo.applied().unwrap();
    let engine = feature_repo.engine().unwrap();
    let options = PushOptions {
        hook,
        ..PushOptions::from_repo(&feature_repo).unwrap()
    };
    PushService::open(&feature_repo, &registry, &engine, store, options).unwrap()
}

fn router(repo: &TestRepo, store: Arc<dyn OnlineStore>, push: Arc<PushService>) -> Router {
    serving_router(repo, store, Some(push))
}

/// A router over `repo`'s views on `store`, serving `POST /push` with `push` if given.
pub(crate) fn serving_router(
    repo: &TestRepo,
    store: Arc<dyn OnlineStore>,
    push: Option<Arc<PushService>>,
) -> Router {
    let feature_repo = FeatureRepo::open(repo.path()).unwrap();
    let registry = feature_repo.applied().unwrap();
    let engine = TransformEngine::builder()
        .cache_dir(feature_repo.state_dir().join("compiled"))
        .build()
        .unwrap();
    let serving = OnlineServing::open(&feature_repo, &registry, &engine, store).unwrap();
    let limits = Limits {
        request_timeout: std::time::Duration::from_secs(5),
        ..Limits::default()
    };
    let state = AppState::new(serving, limits);
    server::router(match push {
        Some(push) => state.with_push(push),
        None => state,
    })
}

pub(crate) async fn call(router: &Router, path: &str, body: &Value) -> (StatusCode, Value) {
    let request = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// An event: `(user, event_ts, ingested_at, amount)`.
pub(crate) type Event = (i64, i64, i64, f64);

pub(crate) fn push_body(events: &[Event], to: &str) -> Value {
    json!({
        "push_source_name": "txn_push",
        "to": to,
        "df": {
            "user_id": events.iter().map(|e| e.0).collect::<Vec<_>>(),
            "event_ts": events.iter().map(|e| e.1).collect::<Vec<_>>(),
            "ingested_at": events.iter().map(|e| e.2).collect::<Vec<_>>(),
            "amount": events.iter().map(|e| e.3).collect::<Vec<_>>(),
            "balance_before": events.iter().map(|_| 1000.0).collect::<Vec<_>>(),
        }
    })
}

/// `(user, event_ts)` of every row of the source table, sorted (the seed row included).
pub(crate) fn source_rows(repo: &TestRepo) -> Vec<(i64, i64)> {
    let mut rows = Vec::new();
    for batch in repo.scan(SOURCE, None) {
        let users = batch
            .column_by_name("user_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let events = batch
            .column_by_name("event_ts")
            .unwrap()
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        for i in 0..batch.num_rows() {
            rows.push((users.value(i), events.value(i)));
        }
    }
    rows.sort_unstable();
    rows
}

pub(crate) fn expected_rows(events: &[Event]) -> Vec<(i64, i64)> {
    let mut rows: Vec<(i64, i64)> = events.iter().map(|e| (e.0, e.1)).collect();
    rows.push((0, JAN_1_US));
    rows.sort_unstable();
    rows
}

/// The served values of `users` and the instant they were read at.
pub(crate) async fn online(router: &Router, users: &[i64]) -> (i64, Value) {
    let body = json!({"features": ["txn:*"], "entities": {"user_id": users}});
    let (status, out) = call(router, "/v1/online-features", &body).await;
    assert_eq!(status, StatusCode::OK, "{out}");
    (
        skewless_tests::parse_rfc3339(out["now"].as_str().unwrap()),
        out,
    )
}

/// Historical retrieval of every feature of `txn` for `users` at `at`.
pub(crate) fn historical(repo: &TestRepo, users: &[i64], at: i64) -> RecordBatch {
    let entities = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Int64, false),
            Field::new("event_timestamp", ts(), false),
        ])),
        vec![
            Arc::new(Int64Array::from(users.to_vec())),
            Arc::new(
                TimestampMicrosecondArray::from(vec![at; users.len()]).with_timezone("+00:00"),
            ),
        ],
    )
    .unwrap();
    let opened = OpenedRepo::open(repo.path()).unwrap();
    Retrieval {
        context: opened.context(),
    }
    .run(
        &entities,
        &HistoricalRequest {
            features: vec![FeatureRef::parse("txn:*").unwrap()],
            full_feature_names: false,
            as_of_ms: None,
            memory: MemoryBudget::default(),
        },
    )
    .unwrap()
    .batch
}

/// Asserts every feature of every user served online equals historical retrieval at the
/// instant of the read, bit for bit; returns how many values were present.
pub(crate) fn assert_online_equals_historical(
    served: &Value,
    training: &RecordBatch,
    users: &[i64],
) -> usize {
    let mut present = 0;
    for feature in served["features"].as_array().unwrap() {
        let name = feature["name"].as_str().unwrap();
        let column = training.column_by_name(name).unwrap();
        for (row, user) in users.iter().enumerate() {
            let value = &feature["values"][row];
            let at = format!("{name} of user {user}");
            if column.is_null(row) {
                assert_eq!(*value, Value::Null, "{at}: online {value}, offline null");
                continue;
            }
            present += 1;
            match column.data_type() {
                DataType::Float64 => assert_eq!(
                    value.as_f64().map(f64::to_bits),
                    Some(column.as_primitive::<Float64Type>().value(row).to_bits()),
                    "{at}: online {value}"
                ),
                DataType::Int32 => assert_eq!(
                    value.as_i64(),
                    Some(i64::from(
                        column
                            .as_primitive::<arrow_array::types::Int32Type>()
                            .value(row)
                    )),
                    "{at}"
                ),
                DataType::Boolean => {
                    assert_eq!(
                        value.as_bool(),
                        Some(column.as_boolean().value(row)),
                        "{at}"
                    )
                }
                other => panic!("unexpected type {other}"),
            }
        }
    }
    present
}

#[test]
fn pushed_rows_are_served_online_at_once() {
    let repo = repo(None);
    let store = repo.online();
    let push = Arc::new(service(&repo, store.clone(), None));
    let router = router(&repo, store, push.clone());
    runtime().block_on(async {
        let events = [
            (7, JAN_1_US + 10, JAN_1_US + 10, 99.0),
            (8, JAN_1_US + 5, JAN_1_US + 5, 2000.0),
        ];
        let (status, out) = call(&router, "/push", &push_body(&events, "online")).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["rows"], 2);
        let (_, served) = online(&router, &[7, 8, 9]).await;
        let high = served["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "is_high_value")
            .unwrap();
        assert_eq!(high["values"], json!([false, true, null]), "{served}");
        assert_eq!(high["statuses"][2], "NOT_FOUND", "{served}");
        let request = Request::builder()
            .uri("/metrics")
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let metrics = String::from_utf8_lossy(&bytes);
        for needle in [
            "skewless_pushed_rows_total{push_source=\"txn_push\",to=\"online\"} 2",
            "skewless_push_duration_seconds_count{to=\"online\"} 1",
            "skewless_push_freshness_seconds_count{push_source=\"txn_push\"} 1",
        ] {
            assert!(
                metrics.contains(needle),
                "{needle} missing from:\n{metrics}"
            );
        }
    });
    drop(router);
    drop(push);
    // Pushed online, committed offline as well, once.
    let events = [(7, JAN_1_US + 10), (8, JAN_1_US + 5)];
    let mut expected: Vec<(i64, i64)> = events.to_vec();
    expected.push((0, JAN_1_US));
    expected.sort_unstable();
    assert_eq!(source_rows(&repo), expected);
}

#[test]
fn an_offline_push_is_acknowledged_once_historical_retrieval_sees_it() {
    let repo = repo(None);
    let store = repo.online();
    let push = Arc::new(service(&repo, store.clone(), None));
    let router = router(&repo, store, push.clone());
    let events = [(3, JAN_1_US + 1_000, JAN_1_US + 1_000, 1500.0)];
    runtime().block_on(async {
        let (status, out) = call(&router, "/push", &push_body(&events, "offline")).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    });
    let training = historical(&repo, &[3, 3], JAN_1_US + 1_000);
    let high = training
        .column_by_name("is_high_value")
        .unwrap()
        .as_boolean();
    assert!(high.value(0), "{training:?}");
    let before = historical(&repo, &[3], JAN_1_US + 999);
    assert!(before.column_by_name("is_high_value").unwrap().is_null(0));
    assert_eq!(source_rows(&repo), expected_rows(&events));
}

#[test]
fn malformed_pushes_get_4xx_naming_the_problem_and_write_nothing() {
    let repo = repo(None);
    let store = repo.online();
    let push = Arc::new(service(&repo, store.clone(), None));
    let router = router(&repo, store.clone(), push.clone());
    let good = push_body(&[(5, JAN_1_US, JAN_1_US, 1.0)], "online_and_offline");
    let with = |path: &str, value: Value| {
        let mut body = good.clone();
        let mut target = &mut body;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            target = &mut target[*part];
        }
        target[parts[parts.len() - 1]] = value;
        body
    };
    let mut unknown_column = good.clone();
    unknown_column["df"]["amout"] = json!([1.0]);
    let cases: Vec<(&str, Value, StatusCode, &str, &str)> = vec![
        (
            "unknown column",
            unknown_column,
            StatusCode::BAD_REQUEST,
            "amout",
            "not a column of source table raw.transactions",
        ),
        (
            "wrong type",
            with("df.amount", json!(["12"])),
            StatusCode::BAD_REQUEST,
            "amount",
            "row 0 is a string (\"12\"), expected float64",
        ),
        (
            "bad timestamp",
            with("df.event_ts", json!(["yesterday"])),
            StatusCode::BAD_REQUEST,
            "event_ts",
            "expected timestamp",
        ),
        (
            "ragged columns",
            with("df.user_id", json!([5, 6])),
            StatusCode::BAD_REQUEST,
            "user_id",
            "has 2 values but column `amount` has 1",
        ),
        (
            "null key",
            with("df.user_id", json!([null])),
            StatusCode::BAD_REQUEST,
            "user_id",
            "is null, but the column is required",
        ),
        (
            "unknown push source",
            with("push_source_name", json!("txn_pusj")),
            StatusCode::NOT_FOUND,
            "push_source_name",
            "there is no push source `txn_pusj` (push sources: [txn_push])",
        ),
        (
            "bad to",
            with("to", json!("everywhere")),
            StatusCode::BAD_REQUEST,
            "to",
            "expected one of `online`, `offline`, `online_and_offline`",
        ),
        (
            "no df",
            with("df", json!([1])),
            StatusCode::BAD_REQUEST,
            "df",
            "`df` must be an object of columns",
        ),
    ];
    runtime().block_on(async {
        for (what, body, status, field, message) in cases {
            let (got, out) = call(&router, "/push", &body).await;
            assert_eq!(got, status, "{what}: {out}");
            let error = &out["error"];
            assert!(
                error["message"].as_str().unwrap().contains(message),
                "{what}: {out}"
            );
            let context = &error["context"];
            assert!(
                context["column"] == field || context["field"] == field,
                "{what}: {out}"
            );
        }
        // Nothing was written: user 5 has no value online, and the source only the seed.
        let (_, served) = online(&router, &[5]).await;
        assert_eq!(
            served["features"][0]["statuses"][0], "NOT_FOUND",
            "{served}"
        );
    });
    drop(router);
    drop(push);
    assert_eq!(source_rows(&repo), expected_rows(&[]));
}

#[test]
fn redis_down_during_a_push_is_a_503_that_writes_nothing_and_pushes_recover_without_a_restart() {
    let mut redis = RedisServer::start();
    let repo = repo(Some(&redis.url()));
    let store = repo.online();
    let push = Arc::new(service(&repo, store.clone(), None));
    let router = router(&repo, store.clone(), push.clone());
    let first = [(1, JAN_1_US + 1, JAN_1_US + 1, 10.0)];
    let lost = [(2, JAN_1_US + 2, JAN_1_US + 2, 20.0)];
    let after = [(3, JAN_1_US + 3, JAN_1_US + 3, 30.0)];
    let rt = runtime();
    rt.block_on(async {
        let (status, out) = call(&router, "/push", &push_body(&first, "online_and_offline")).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    });
    let port = redis.port();
    redis.kill();
    rt.block_on(async {
        let (status, out) = call(&router, "/push", &push_body(&lost, "online_and_offline")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{out}");
        assert_eq!(out["error"]["kind"], "unavailable", "{out}");
    });
    let _redis = RedisServer::start_on(port);
    rt.block_on(async {
        let (status, out) = call(&router, "/push", &push_body(&after, "online_and_offline")).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        // The restarted redis-server starts empty (no persistence): user 1 is gone with it.
        let (_, served) = online(&router, &[2, 3]).await;
        assert_eq!(
            served["features"][0]["statuses"],
            json!(["NOT_FOUND", "PRESENT"]),
            "{served}"
        );
    });
    drop(router);
    drop(push);
    let mut committed = first.to_vec();
    committed.extend(after);
    assert_eq!(source_rows(&repo), expected_rows(&committed));
}

/// A hook that fails at `step` (a crash there) while `armed`.
fn crash_at(step: PushStep, armed: Arc<AtomicBool>) -> PushHook {
    PushHook(Arc::new(move |at| {
        match at == step && armed.load(Ordering::Acquire) {
            true => Err(Error::new(ErrorKind::Internal, format!("crash at {at:?}"))),
            false => Ok(()),
        }
    }))
}

#[test]
fn a_crash_between_the_log_and_the_commit_is_replayed_at_start_nothing_lost_nothing_doubled() {
    for step in [PushStep::Logged, PushStep::Committing, PushStep::Committed] {
        let repo = repo(None);
        let store = repo.online();
        let armed = Arc::new(AtomicBool::new(true));
        let events: Vec<Event> = (1..=4)
            .map(|i| (i, JAN_1_US + i, JAN_1_US + i, 100.0 * i as f64))
            .collect();
        {
            let push = service(&repo, store.clone(), Some(crash_at(step, armed.clone())));
            for chunk in events.chunks(2) {
                let rows = push_body(chunk, "online").to_string();
                let pushed = push.push_json(rows.as_bytes());
                assert_eq!(
                    pushed.is_ok(),
                    step != PushStep::Logged,
                    "{step:?}: {pushed:?}"
                );
            }
            // The committer "crashes" at its first commit; the service is gone with it.
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        if step != PushStep::Committed {
            assert_eq!(source_rows(&repo), expected_rows(&[]), "{step:?}");
        }
        // Restarted twice: the log is replayed once, whatever happened before.
        armed.store(false, Ordering::Release);
        for _ in 0..2 {
            let push = service(&repo, store.clone(), None);
            let marker = [(9, JAN_1_US, JAN_1_US, 1.0)];
            let rows = push_body(&marker, "offline").to_string();
            let receipt = push.push_json(rows.as_bytes()).unwrap();
            runtime().block_on(receipt.committed.unwrap()).unwrap();
        }
        let mut all = events.clone();
        all.push((9, JAN_1_US, JAN_1_US, 1.0));
        all.push((9, JAN_1_US, JAN_1_US, 1.0));
        assert_eq!(source_rows(&repo), expected_rows(&all), "{step:?}");
        let training = historical(&repo, &[1, 2, 3, 4], JAN_1_US + 10);
        assert_eq!(
            training
                .column_by_name("amount_bucket")
                .unwrap()
                .null_count(),
            0,
            "{step:?}"
        );
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Random events for 12 users: out of order, with exact duplicates (the same event delivered
/// twice), late events far in the past, equal event times with distinct ingestion times, and
/// edge amounts (null-like NaN, negative, zero, huge).
fn random_events(rng: &mut Rng, n: usize) -> Vec<Event> {
    let amounts = [0.0, -5.0, 1e-300, 999.999, 1000.0, f64::MAX, 12.5, 7.25];
    let mut events: Vec<Event> = Vec::new();
    let mut ingested = JAN_1_US;
    for _ in 0..n {
        if !events.is_empty() && rng.below(6) == 0 {
            let again = events[rng.below(events.len() as u64) as usize];
            events.push(again);
            continue;
        }
        ingested += 1 + rng.below(1_000) as i64;
        let user = 1 + rng.below(12) as i64;
        let event = match rng.below(5) {
            0 if !events.is_empty() => events[rng.below(events.len() as u64) as usize].1,
            1 => JAN_1_US - 86_400_000_000 * (1 + rng.below(300) as i64),
            _ => JAN_1_US + rng.below(86_400_000_000) as i64,
        };
        let amount = match rng.below(3) {
            0 => amounts[rng.below(amounts.len() as u64) as usize],
            _ => rng.below(5_000_000) as f64 / 1000.0,
        };
        events.push((user, event, ingested, amount));
    }
    events
}

fn consistency(redis: Option<&RedisServer>) {
    let repo = repo(redis.map(|r| r.url()).as_deref());
    let store = repo.online();
    let push = Arc::new(service(&repo, store.clone(), None));
    let router = router(&repo, store, push.clone());
    let users: Vec<i64> = (1..=13).collect();
    let rt = runtime();
    let mut rng = Rng(0x5eed_cafe);
    let mut checked = 0;
    for round in 0..3 {
        let events = random_events(&mut rng, 150);
        let mut start = 0;
        rt.block_on(async {
            while start < events.len() {
                let end = (start + 1 + rng.below(40) as usize).min(events.len());
                let (status, out) = call(
                    &router,
                    "/push",
                    &push_body(&events[start..end], "online_and_offline"),
                )
                .await;
                assert_eq!(status, StatusCode::OK, "round {round}: {out}");
                start = end;
            }
        });
        let (now, served) = rt.block_on(online(&router, &users));
        let training = historical(&repo, &users, now);
        checked += assert_online_equals_historical(&served, &training, &users);
    }
    assert!(
        checked >= 12 * FEATURES.len(),
        "only {checked} values were present"
    );
}

#[test]
fn online_values_equal_historical_retrieval_bit_for_bit_after_random_pushes_embedded() {
    consistency(None);
}

#[test]
fn online_values_equal_historical_retrieval_bit_for_bit_after_random_pushes_redis() {
    let redis = RedisServer::start();
    consistency(Some(&redis));
}

/// An aggregate view over the push source's table, beside the batch view.
const AGGREGATES: &str = r#"
[[aggregate_view]]
name = "txn_agg"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
aggregations = [
    { name = "n_1h", function = "count", window = "1h" },
    { name = "amount_sum_1d", function = "sum", column = "amount", window = "1d" },
    { name = "amount_mean_2d", function = "mean", column = "amount", window = "2d" },
    { name = "amount_max", function = "max", column = "amount", window = "lifetime" },
    { name = "last_amounts_1d", function = "last_n", column = "amount", window = "1d", k = 3 },
]
"#;

#[test]
fn aggregate_views_fed_by_pushes_serve_what_historical_retrieval_gives_bit_for_bit() {
    let repo = TestRepo::new(&format!("{REPO}\n{AGGREGATES}"));
    repo.ingest(SOURCE, "seed.parquet", &[seed()]);
    repo.apply().unwrap();
    let store = repo.online();
    let push = Arc::new(service(&repo, store.clone(), None));
    let router = router(&repo, store.clone(), push.clone());
    // Random events over the two days before now (so every window holds some), out of order,
    // duplicated, with equal event times.
    let now = skewless_runtime::micros::now();
    let mut rng = Rng(0xa66_f00d);
    let mut events: Vec<Event> = Vec::new();
    for i in 0..200 {
        if i > 0 && rng.below(6) == 0 {
            events.push(events[rng.below(events.len() as u64) as usize]);
            continue;
        }
        let user = 1 + rng.below(6) as i64;
        let event = now - 1 - rng.below(2 * 86_400_000_000) as i64;
        let amount = [0.0, -0.0, 1e16, 1.0, -1e16, 0.1][rng.below(6) as usize];
        let amount = if rng.below(2) == 0 {
            amount
        } else {
            rng.below(100_000) as f64 / 7.0
        };
        events.push((user, event, now + i, amount));
    }
    let rt = runtime();
    rt.block_on(async {
        let mut start = 0;
        while start < events.len() {
            let end = (start + 1 + rng.below(30) as usize).min(events.len());
            let (status, out) = call(
                &router,
                "/push",
                &push_body(&events[start..end], "online_and_offline"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{out}");
            start = end;
        }
    });
    // Served at an instant after every push, and retrieved at the same instant.
    let at = skewless_runtime::micros::now();
    let feature_repo = FeatureRepo::open(repo.path()).unwrap();
    let registry = feature_repo.applied().unwrap();
    let engine = feature_repo.engine().unwrap();
    let serving = OnlineServing::open(&feature_repo, &registry, &engine, store).unwrap();
    let users: Vec<i64> = (0..=7).collect();
    let body = json!({"features": ["txn_agg:*"], "entities": {"user_id": users}});
    let request =
        skewless_runtime::serving::FeatureRequest::from_json(body.to_string().as_bytes()).unwrap();
    let served = serving.get_at(&request, at).unwrap();
    let entities = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Int64, false),
            Field::new("event_timestamp", ts(), false),
        ])),
        vec![
            Arc::new(Int64Array::from(users.clone())),
            Arc::new(
                TimestampMicrosecondArray::from(vec![at; users.len()]).with_timezone("+00:00"),
            ),
        ],
    )
    .unwrap();
    let opened = OpenedRepo::open(repo.path()).unwrap();
    let training = Retrieval {
        context: opened.context(),
    }
    .run(
        &entities,
        &HistoricalRequest {
            features: vec![FeatureRef::parse("txn_agg:*").unwrap()],
            full_feature_names: false,
            as_of_ms: None,
            memory: MemoryBudget::default(),
        },
    )
    .unwrap()
    .batch;
    let mut present = 0;
    for column in &served.features {
        let trained = training.column_by_name(&column.feature).unwrap();
        for (row, value) in column.values.iter().enumerate() {
            assert_eq!(
                &crate::aggregate_online::cell(trained.as_ref(), row),
                value,
                "{} of user {} at {at}",
                column.feature,
                users[row]
            );
            present += usize::from(!value.is_null());
        }
    }
    assert!(present >= 6 * 4, "only {present} values were present");
    // Not two empty answers agreeing: every user who pushed has a lifetime maximum, online.
    let max = served
        .features
        .iter()
        .find(|c| &*c.feature == "amount_max")
        .unwrap();
    for (row, user) in users.iter().enumerate() {
        let pushed = *user == 0 || events.iter().any(|e| e.0 == *user); // user 0: the seed row
        assert_eq!(
            !max.values[row].is_null(),
            pushed,
            "amount_max of user {user}"
        );
    }
    // Every pushed row reached the source table once.
    assert_eq!(source_rows(&repo), expected_rows(&events));
}
