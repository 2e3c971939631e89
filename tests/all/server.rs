//! The online feature server on a materialized repo with real components: every endpoint and
//! every error through the router (no socket), the served request-time values against the
//! batch path bit for bit, readiness against a real redis-server that dies and comes back,
//! and a real socket with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use skewless_runtime::ErrorKind;
use skewless_runtime::TransformEngine;
use skewless_runtime::historical::{MemoryBudget, Request as HistoricalRequest, Retrieval};
use skewless_runtime::materialize::Options;
use skewless_runtime::online::OnlineStore;
use skewless_runtime::registry::{FeatureRef, FeatureRepo, OpenedRepo};
use skewless_runtime::serving::{FeatureRequest, OnlineServing, QUICK_ROWS};
use skewless_server::{self as server, AppState, Limits};
use skewless_tests::feature_repo::TestRepo;
use skewless_tests::redis_server::RedisServer;
use tower::ServiceExt;

const REPO: &str = r#"
[project]
name = "online"

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
ttl = "30d"

[[batch_view]]
name = "txn_copy"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "{TRANSACTION_FEATURES}"

[[request_view]]
name = "req"
transform = "{REQUEST_AMOUNT_RATIO}"
entities = ["user"]
inputs.request_amount = { request = "amount" }
inputs.user_last_amount = { feature = "txn:amount_log1p" }
inputs.user_avg_amount_30d = { feature = "txn:amount_to_balance_ratio" }

[[request_view]]
name = "chaos"
transform = "{HOSTILE}"
inputs.mode = { request = "mode" }

[[feature_service]]
name = "fraud"
features = ["txn:amount_log1p", "req:*"]
"#;

const DAY: i64 = 86_400_000_000;

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// Users 1..=4, one transaction each, relative to the real clock:
/// 1: yesterday (present); 2: in 2020 (outside the 30-day TTL of `txn`, present in
/// `txn_copy`, which has no TTL); 3: in ten days (not visible yet); 4: yesterday with a null
/// amount (null features). User 5 has no row.
fn source() -> RecordBatch {
    let now = now_us();
    let events = vec![now - DAY, 1_577_836_800_000_000, now + 10 * DAY, now - DAY];
    skewless_tests::transactions(
        vec![1, 2, 3, 4],
        events.clone(),
        events,
        vec![Some(120.5), Some(80.0), Some(9.0), None],
        vec![1000.0, 400.0, 50.0, 10.0],
    )
}

/// A repo applied and materialized into `online` (the embedded store when `None`).
pub(crate) fn materialized(online: Option<&dyn OnlineStore>) -> TestRepo {
    let repo = TestRepo::new(REPO);
    repo.ingest("raw.transactions", "txns.parquet", &[source()]);
    repo.apply().unwrap();
    let embedded;
    let online = match online {
        Some(store) => store,
        None => {
            embedded = repo.online();
            embedded.as_ref()
        }
    };
    for view in ["txn", "txn_copy"] {
        repo.materialize(view, &Options::default(), online).unwrap();
    }
    repo
}

pub(crate) fn serving(
    repo: &TestRepo,
    store: Arc<dyn OnlineStore>,
) -> skewless_runtime::Result<OnlineServing> {
    serving_with_deadline(repo, store, Duration::from_millis(300))
}

/// Serving whose component calls are stopped after `deadline`.
fn serving_with_deadline(
    repo: &TestRepo,
    store: Arc<dyn OnlineStore>,
    deadline: Duration,
) -> skewless_runtime::Result<OnlineServing> {
    let feature_repo = FeatureRepo::open(repo.path())?;
    let registry = feature_repo.applied()?;
    let engine = TransformEngine::builder()
        .cache_dir(feature_repo.state_dir().join("compiled"))
        .deadline(deadline)
        .memory_limit(64 << 20)
        .build()?;
    OnlineServing::open(&feature_repo, &registry, &engine, store)
}

/// A router on the embedded store whose component calls are stopped after
/// `component_deadline` and whose requests answer 504 after `request_timeout`.
fn router_with_deadlines(
    repo: &TestRepo,
    component_deadline: Duration,
    request_timeout: Duration,
) -> Router {
    let serving = serving_with_deadline(repo, repo.online(), component_deadline).unwrap();
    server::router(AppState::new(
        serving,
        Limits {
            request_timeout,
            ..Limits::default()
        },
    ))
}

pub(crate) fn router(repo: &TestRepo, store: Arc<dyn OnlineStore>, limits: Limits) -> Router {
    let serving = serving(repo, store).unwrap().with_max_rows(50);
    server::router(AppState::new(serving, limits))
}

pub(crate) fn limits() -> Limits {
    Limits {
        max_body_bytes: 64 * 1024,
        request_timeout: Duration::from_secs(5),
        max_in_flight: 16,
    }
}

/// Sends one request through the router; the status and the body (JSON, or a string).
pub(crate) async fn call(
    router: &Router,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn f64_bits(v: &Value) -> Option<u64> {
    v.as_f64().map(f64::to_bits)
}

#[test]
fn feast_endpoint_serves_values_statuses_and_timestamps() {
    let repo = materialized(None);
    let router = router(&repo, repo.online(), limits());
    block_on(async {
        let body = json!({
            "features": ["txn:amount_log1p", "txn:is_high_value", "txn_copy:amount_bucket"],
            "entities": {"user_id": [1, 2, 3, 4, 5]},
        });
        let (status, out) = call(&router, "POST", "/get-online-features", &body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            out["metadata"]["feature_names"],
            json!(["user_id", "amount_log1p", "is_high_value", "amount_bucket"])
        );
        let results = out["results"].as_array().unwrap();
        assert_eq!(results.len(), 4);
        assert_eq!(results[0]["values"], json!([1, 2, 3, 4, 5]));
        assert_eq!(results[0]["statuses"], json!(vec!["PRESENT"; 5]));
        assert_eq!(results[0]["event_timestamps"][0], "1970-01-01T00:00:00Z");
        assert_eq!(
            results[1]["statuses"],
            json!([
                "PRESENT",
                "OUTSIDE_MAX_AGE",
                "NOT_FOUND",
                "NULL_VALUE",
                "NOT_FOUND"
            ])
        );
        // The value is the component's, bit for bit: ln(1 + 120.5).
        assert_eq!(
            f64_bits(&results[1]["values"][0]),
            Some(120.5f64.ln_1p().to_bits())
        );
        assert_eq!(
            results[1]["values"][1],
            Value::Null,
            "expired values are null"
        );
        assert_eq!(results[1]["values"][2], Value::Null);
        assert_eq!(results[1]["values"][4], Value::Null);
        assert_eq!(results[1]["event_timestamps"][2], "1970-01-01T00:00:00Z");
        let yesterday = results[1]["event_timestamps"][0].as_str().unwrap();
        assert!(
            yesterday.ends_with('Z') && yesterday.len() >= 20,
            "{yesterday}"
        );
        // Without a TTL the 2020 row is still served.
        assert_eq!(results[3]["statuses"][1], "PRESENT");
        assert_eq!(results[2]["values"][0], json!(false));
    });
}

#[test]
fn names_services_and_the_native_endpoint() {
    let repo = materialized(None);
    let router = router(&repo, repo.online(), limits());
    let registry = FeatureRepo::open(repo.path()).unwrap().applied().unwrap();
    block_on(async {
        // Full feature names, and `view:*`.
        let body = json!({"features": ["txn:*"], "entities": {"user_id": [1]}, "full_feature_names": true});
        let (status, out) = call(&router, "POST", "/get-online-features", &body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            out["metadata"]["feature_names"],
            json!([
                "user_id",
                "txn__amount_log1p",
                "txn__amount_zscore",
                "txn__amount_bucket",
                "txn__amount_to_balance_ratio",
                "txn__is_high_value"
            ])
        );

        // A feature service, with a request-time view in it.
        let body =
            json!({"feature_service": "fraud", "entities": {"user_id": [1], "amount": [500.0]}});
        let (status, out) = call(&router, "POST", "/get-online-features", &body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            out["metadata"]["feature_names"],
            json!([
                "user_id",
                "amount_log1p",
                "amount_to_last_ratio",
                "amount_to_avg_ratio",
                "amount_minus_avg",
                "is_amount_spike"
            ])
        );

        // The native endpoint: digests and exact event times per value.
        let body = json!({"features": ["txn:amount_log1p", "req:amount_to_last_ratio"],
                          "entities": {"user_id": [1, 5], "amount": [500.0, 1.0]}});
        let (status, out) = call(&router, "POST", "/v1/online-features", &body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(out["join_keys"], json!({"user_id": [1, 5]}));
        let stored = &out["features"][0];
        assert_eq!(stored["view"], "txn");
        assert_eq!(stored["type"], "float64");
        assert_eq!(stored["digests"][0], registry.views["txn"].digest.as_str());
        assert_eq!(stored["digests"][1], Value::Null, "no row, no digest");
        assert!(stored["event_timestamps"][0].as_i64().unwrap() < now_us());
        let computed = &out["features"][1];
        assert_eq!(
            computed["digests"],
            json!([registry.views["req"].digest, registry.views["req"].digest])
        );
        assert_eq!(computed["statuses"], json!(["PRESENT", "NULL_VALUE"]));

        let (status, out) = call(&router, "GET", "/v1/views", "").await;
        assert_eq!(status, StatusCode::OK);
        let views = out["views"].as_array().unwrap();
        assert_eq!(views.len(), 4);
        assert!(
            views
                .iter()
                .any(|v| v["name"] == "chaos" && v["kind"] == "request")
        );
    });
}

/// The request-time value served online equals, bit for bit, what historical retrieval (the
/// batch path: stored inputs joined at T, then the same component) gives for the same inputs
/// at the time of the read.
#[test]
fn request_time_values_equal_the_batch_path_bit_for_bit() {
    let repo = materialized(None);
    let amounts = [500.0, 0.1, 1e-300, 120.5, 3.0, f64::MAX];
    let users = [1i64, 2, 3, 4, 5, 1];
    let (now, served) = {
        let router = router(&repo, repo.online(), limits());
        block_on(async {
            let body = json!({"features": ["req:*", "txn:amount_log1p"],
                              "entities": {"user_id": users, "amount": amounts}});
            let (status, out) =
                call(&router, "POST", "/v1/online-features", &body.to_string()).await;
            assert_eq!(status, StatusCode::OK, "{out}");
            let now = skewless_tests::parse_rfc3339(out["now"].as_str().unwrap());
            (now, out)
        })
    };
    let entities = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Int64, false),
            Field::new("event_timestamp", ts(), false),
            Field::new("amount", DataType::Float64, false),
        ])),
        vec![
            Arc::new(Int64Array::from(users.to_vec())),
            Arc::new(
                TimestampMicrosecondArray::from(vec![now; users.len()]).with_timezone("+00:00"),
            ),
            Arc::new(Float64Array::from(amounts.to_vec())),
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
            features: vec![
                FeatureRef::parse("req:*").unwrap(),
                FeatureRef::parse("txn:amount_log1p").unwrap(),
            ],
            full_feature_names: false,
            as_of_ms: None,
            memory: MemoryBudget::default(),
        },
    )
    .unwrap();
    let mut compared = 0;
    for feature in served["features"].as_array().unwrap() {
        let name = feature["name"].as_str().unwrap();
        let column = training.batch.column_by_name(name).unwrap();
        for row in 0..users.len() {
            let online = &feature["values"][row];
            match column.data_type() {
                DataType::Float64 => {
                    let offline = column.as_primitive::<Float64Type>();
                    match offline.is_null(row) {
                        true => assert_eq!(*online, Value::Null, "{name} row {row}"),
                        false => assert_eq!(
                            f64_bits(online),
                            Some(offline.value(row).to_bits()),
                            "{name} row {row}: online {online} vs offline {}",
                            offline.value(row)
                        ),
                    }
                }
                DataType::Boolean => {
                    assert_eq!(
                        online.as_bool(),
                        Some(column.as_boolean().value(row)),
                        "{name} row {row}"
                    );
                }
                other => panic!("unexpected type {other}"),
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 5 * users.len());
}

/// Every bad input gets a 4xx JSON error naming the field and what was expected.
#[test]
fn bad_requests_get_4xx_json_errors_that_name_the_field() {
    let repo = materialized(None);
    let router = router(&repo, repo.online(), limits());
    let cases: Vec<(&str, String, StatusCode, &str, &str)> = vec![
        ("malformed JSON", "{\"features\": [".into(), StatusCode::BAD_REQUEST, "body", "not valid JSON"),
        ("no entities", r#"{"features": ["txn:amount_log1p"], "entity": {}}"#.into(), StatusCode::BAD_REQUEST, "entities", "no `entities`"),
        ("null features", r#"{"features": null, "entities": {"user_id": [1]}}"#.into(), StatusCode::BAD_REQUEST, "features", "`features` is null, expected an array of strings"),
        ("mistyped flag", r#"{"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}, "full_feature_names": 1}"#.into(), StatusCode::BAD_REQUEST, "full_feature_names", "expected true or false"),
        ("empty features", r#"{"features": [], "entities": {"user_id": [1]}}"#.into(), StatusCode::BAD_REQUEST, "features", "names no features"),
        ("no features", r#"{"entities": {"user_id": [1]}}"#.into(), StatusCode::BAD_REQUEST, "features", "names no features"),
        ("both", r#"{"features": ["txn:amount_log1p"], "feature_service": "fraud", "entities": {"user_id": [1]}}"#.into(), StatusCode::BAD_REQUEST, "features", "not both"),
        ("not a reference", r#"{"features": ["amount_log1p"], "entities": {"user_id": [1]}}"#.into(), StatusCode::BAD_REQUEST, "features[0]", "expected `view:feature`"),
        ("unknown view", r#"{"features": ["txn:amount_log1p", "nope:x"], "entities": {"user_id": [1]}}"#.into(), StatusCode::NOT_FOUND, "features[1]", "no feature view `nope`"),
        ("unknown feature", r#"{"features": ["txn:amount"], "entities": {"user_id": [1]}}"#.into(), StatusCode::NOT_FOUND, "features[0]", "view `txn` has no feature `amount` (features: [amount_log1p,"),
        ("unknown service", r#"{"feature_service": "fraud2", "entities": {"user_id": [1]}}"#.into(), StatusCode::NOT_FOUND, "feature_service", "no feature service `fraud2` (feature services: [fraud])"),
        ("name collision", r#"{"features": ["txn:amount_log1p", "txn_copy:amount_log1p"], "entities": {"user_id": [1]}}"#.into(), StatusCode::BAD_REQUEST, "features[1]", "full_feature_names"),
        ("missing join key", r#"{"features": ["txn:amount_log1p"], "entities": {}}"#.into(), StatusCode::BAD_REQUEST, "entities.user_id", "lacks join key `user_id`"),
        ("join key type", r#"{"features": ["txn:amount_log1p"], "entities": {"user_id": [1, "2"]}}"#.into(), StatusCode::BAD_REQUEST, "entities.user_id[1]", "is a string (\"2\"), expected an integer"),
        ("null join key", r#"{"features": ["txn:amount_log1p"], "entities": {"user_id": [null]}}"#.into(), StatusCode::BAD_REQUEST, "entities.user_id[0]", "is null, expected an integer"),
        ("not columnar", r#"{"features": ["txn:amount_log1p"], "entities": {"user_id": 1}}"#.into(), StatusCode::BAD_REQUEST, "entities.user_id", "expected an array"),
        ("ragged columns", r#"{"features": ["req:amount_to_last_ratio"], "entities": {"user_id": [1, 2], "amount": [1.0]}}"#.into(), StatusCode::BAD_REQUEST, "entities.user_id", "one value per row"),
        ("missing request field", r#"{"features": ["req:amount_to_last_ratio"], "entities": {"user_id": [1]}}"#.into(), StatusCode::BAD_REQUEST, "entities.amount", "lacks request field `amount`"),
        ("request field type", r#"{"features": ["req:amount_to_last_ratio"], "entities": {"user_id": [1, 2], "amount": [1.0, "x"]}}"#.into(), StatusCode::BAD_REQUEST, "entities.amount[1]", "expected a number"),
        ("null request field", r#"{"features": ["req:amount_to_last_ratio"], "entities": {"user_id": [1], "amount": [null]}}"#.into(), StatusCode::BAD_REQUEST, "entities.amount[0]", "is not nullable"),
        ("unknown entity column", r#"{"features": ["txn:amount_log1p"], "entities": {"user_id": [1], "user": [1]}}"#.into(), StatusCode::BAD_REQUEST, "entities.user", "neither a join key nor a request field"),
        ("too many rows", json!({"features": ["txn:amount_log1p"], "entities": {"user_id": vec![1; 51]}}).to_string(), StatusCode::BAD_REQUEST, "entities", "51 entity rows; the limit is 50 per request: send fewer rows per request, or raise the server's --max-rows"),
        ("body too large", json!({"features": ["txn:amount_log1p"], "entities": {"user_id": vec![1; 40_000]}}).to_string(), StatusCode::PAYLOAD_TOO_LARGE, "body", "larger than the limit of 65536 bytes"),
    ];
    block_on(async {
        for (what, body, status, field, message) in cases {
            for path in ["/get-online-features", "/v1/online-features"] {
                let (got, out) = call(&router, "POST", path, &body).await;
                assert_eq!(got, status, "{what} on {path}: {out}");
                let error = &out["error"];
                assert_eq!(error["context"]["field"], field, "{what}: {out}");
                let text = error["message"].as_str().unwrap_or_default();
                assert!(text.contains(message), "{what}: `{text}` lacks `{message}`");
                assert_eq!(
                    out["detail"], error["message"],
                    "{what}: FastAPI's shape too"
                );
            }
        }
        let (status, out) = call(&router, "GET", "/no/such/endpoint", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            out["error"]["message"]
                .as_str()
                .unwrap()
                .contains("GET /no/such/endpoint")
        );
        let (status, out) = call(&router, "GET", "/get-online-features", "").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            out["error"]["message"]
                .as_str()
                .unwrap()
                .contains("does not accept GET"),
            "{out}"
        );

        // Errors are counted by kind.
        let (_, metrics) = call(&router, "GET", "/metrics", "").await;
        let metrics = metrics.as_str().unwrap();
        assert!(
            metrics.contains(
                "skewless_errors_total{endpoint=\"get-online-features\",kind=\"not_found\"} 3"
            ),
            "{metrics}"
        );
    });
}

/// A component that loops, traps or rejects its rows fails its own request with a JSON error
/// naming the view; the next request is served.
#[test]
fn failing_transforms_fail_only_their_request() {
    let repo = materialized(None);
    let router = router(&repo, repo.online(), limits());
    let chaos =
        |mode: i32| json!({"features": ["chaos:out"], "entities": {"mode": [mode, 0]}}).to_string();
    block_on(async {
        for (mode, status, kind) in [
            (1, StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
            (
                2,
                StatusCode::INTERNAL_SERVER_ERROR,
                "memory_limit_exceeded",
            ),
            (3, StatusCode::INTERNAL_SERVER_ERROR, "trapped"),
            (5, StatusCode::INTERNAL_SERVER_ERROR, "invalid_component"),
            (8, StatusCode::UNPROCESSABLE_ENTITY, "transform_failed"),
            (11, StatusCode::INTERNAL_SERVER_ERROR, "trapped"),
        ] {
            let (got, out) = call(&router, "POST", "/get-online-features", &chaos(mode)).await;
            assert_eq!(got, status, "mode {mode}: {out}");
            assert_eq!(out["error"]["kind"], kind, "mode {mode}: {out}");
            assert_eq!(
                out["error"]["context"]["view"], "chaos",
                "mode {mode}: {out}"
            );
            let (got, out) = call(&router, "POST", "/get-online-features", &chaos(0)).await;
            assert_eq!(got, StatusCode::OK, "after mode {mode}: {out}");
            assert_eq!(out["results"][0]["values"], json!([1, 1]));
        }
    });
}

/// Small requests on the embedded store are quick (answered in place on an async worker)
/// until a request-time view call is slow; requests with many rows, and every request on a
/// store behind a network, never are.
#[test]
fn requests_are_quick_until_a_component_is_slow() {
    let repo = materialized(None);
    // A call is slow past 100 ms here: a fast call stays well under it even on a busy
    // machine, and the looping one runs to its 300 ms deadline.
    let embedded = serving(&repo, repo.online())
        .unwrap()
        .with_slow_call(Duration::from_millis(100));
    let request = |body: Value| FeatureRequest::from_json(body.to_string().as_bytes()).unwrap();
    let small =
        request(json!({"features": ["req:*"], "entities": {"user_id": [1], "amount": [2.0]}}));
    assert!(embedded.is_quick(&small));
    let rows = QUICK_ROWS + 1;
    let many = request(json!({"features": ["txn:*"], "entities": {"user_id": vec![1; rows]}}));
    assert!(!embedded.is_quick(&many));
    // A fast call of the hostile view changes nothing; one that loops until its deadline does.
    let chaos =
        |mode: i32| request(json!({"features": ["chaos:out"], "entities": {"mode": [mode]}}));
    embedded.get(&chaos(0)).unwrap();
    assert!(embedded.is_quick(&small));
    let error = embedded.get(&chaos(1)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::DeadlineExceeded, "{error}");
    assert!(!embedded.is_quick(&small), "a slow component was seen");
    assert_eq!(embedded.get(&small).unwrap().rows, 1, "still served");

    let redis = RedisServer::start();
    let store: Arc<dyn OnlineStore> =
        skewless_runtime::online::open(&skewless_runtime::online::OnlineConfig::Redis {
            url: redis.url(),
        })
        .unwrap();
    assert!(!serving(&repo, store).unwrap().is_quick(&small));
}

/// While a component loops on one connection, another connection is answered: the first
/// slow call, run in place on one async worker, leaves the others serving.
#[test]
fn a_looping_component_does_not_hold_other_requests() {
    let repo = materialized(None);
    let router = router_with_deadlines(&repo, Duration::from_secs(3), Duration::from_secs(3));
    block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(server::serve(listener, router, std::future::pending()));
        let slow_body = json!({"features": ["chaos:out"], "entities": {"mode": [1]}}).to_string();
        let slow = tokio::spawn(async move {
            skewless_tests::http::post(addr, "/get-online-features", &slow_body).await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let body =
            json!({"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}}).to_string();
        let (status, out) = skewless_tests::http::post(addr, "/get-online-features", &body).await;
        assert_eq!(status, 200, "{out}");
        assert!(
            !slow.is_finished(),
            "the fast request was answered while the component still looped"
        );
        let (status, out) = slow.await.unwrap();
        assert_eq!(status, 504, "{out}");
        server.abort();
    });
}

/// One feature request more than the server answers at once is refused at once with a 503
/// naming the limit; health checks are not counted; once the others finish, requests are
/// served again.
#[test]
fn requests_over_the_in_flight_limit_get_503() {
    let repo = materialized(None);
    let router = router(
        &repo,
        repo.online(),
        Limits {
            max_in_flight: 1,
            ..limits()
        },
    );
    block_on(async {
        let slow = router.clone();
        let slow = tokio::spawn(async move {
            let body = json!({"features": ["chaos:out"], "entities": {"mode": [1]}}).to_string();
            call(&slow, "POST", "/get-online-features", &body).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let body =
            json!({"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}}).to_string();
        let (status, out) = call(&router, "POST", "/v1/online-features", &body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{out}");
        assert_eq!(out["error"]["kind"], "unavailable", "{out}");
        let message = out["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("limit of 1 feature requests at once"),
            "{message}"
        );
        assert!(message.contains("--max-in-flight"), "{message}");
        assert_eq!(call(&router, "GET", "/health", "").await.0, StatusCode::OK);
        assert!(!slow.is_finished(), "the slow request was still in flight");

        let (status, out) = slow.await.unwrap();
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{out}");
        let (status, out) = call(&router, "POST", "/get-online-features", &body).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        let (_, metrics) = call(&router, "GET", "/metrics", "").await;
        let metrics = metrics.as_str().unwrap();
        assert!(
            metrics.contains(
                r#"skewless_errors_total{endpoint="online-features",kind="unavailable"} 1"#
            ),
            "{metrics}"
        );
    });
}

/// A request past its deadline is a 504, even when a component's own deadline is longer
/// (`serve` never configures it so; the component is stopped by its own deadline).
#[test]
fn the_request_deadline_answers_504() {
    let repo = materialized(None);
    let router = router_with_deadlines(
        &repo,
        Duration::from_millis(600),
        Duration::from_millis(200),
    );
    block_on(async {
        let body = json!({"features": ["chaos:out"], "entities": {"mode": [1]}}).to_string();
        let (status, out) = call(&router, "POST", "/get-online-features", &body).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{out}");
        assert_eq!(out["error"]["kind"], "deadline_exceeded", "{out}");
        // A fast request right after is served.
        let body = json!({"features": ["chaos:out"], "entities": {"mode": [0]}}).to_string();
        assert_eq!(
            call(&router, "POST", "/get-online-features", &body).await.0,
            StatusCode::OK
        );
    });
}

#[test]
fn health_metrics_and_openapi() {
    let repo = materialized(None);
    let router = router(&repo, repo.online(), limits());
    block_on(async {
        assert_eq!(
            call(&router, "GET", "/health", "").await,
            (StatusCode::OK, json!({"status": "ok"}))
        );
        assert_eq!(
            call(&router, "GET", "/ready", "").await,
            (
                StatusCode::OK,
                json!({"status": "ready", "online_store": "embedded"})
            )
        );
        let body = json!({"features": ["req:amount_to_last_ratio"], "entities": {"user_id": [1], "amount": [3.0]}});
        assert_eq!(
            call(&router, "POST", "/get-online-features", &body.to_string())
                .await
                .0,
            StatusCode::OK
        );
        let (status, metrics) = call(&router, "GET", "/metrics", "").await;
        assert_eq!(status, StatusCode::OK);
        let metrics = metrics.as_str().unwrap();
        for needle in [
            "skewless_http_request_duration_seconds_count{endpoint=\"get-online-features\",status=\"200\"} 1",
            "skewless_transform_duration_seconds_count{view=\"req\"} 1",
            "skewless_store_read_duration_seconds_count{backend=\"embedded\"} 1",
            "skewless_served_rows_total{endpoint=\"get-online-features\"} 1",
        ] {
            assert!(
                metrics.contains(needle),
                "{needle} missing from:\n{metrics}"
            );
        }
        let (status, spec) = call(&router, "GET", "/openapi.json", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(spec["openapi"], "3.1.0");
        // Every route of the router is described, and every path described is routed.
        let paths: Vec<&String> = spec["paths"].as_object().unwrap().keys().collect();
        for path in &paths {
            let posted = [
                "/get-online-features",
                "/v1/online-features",
                "/write-to-online-store",
                "/push",
            ];
            let method = if posted.contains(&path.as_str()) {
                "POST"
            } else {
                "GET"
            };
            assert_ne!(
                spec["paths"][path.as_str()][method.to_lowercase()],
                Value::Null,
                "{path}"
            );
            let (status, out) = call(&router, method, path, "{}").await;
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{path} is described but not routed: {out}"
            );
        }
        assert_eq!(paths.len(), 9);
    });
}

#[test]
fn a_component_changed_since_apply_is_refused_at_start() {
    let repo = materialized(None);
    let toml = std::fs::read_to_string(repo.path().join("skewless.toml")).unwrap();
    let copy = repo.path().join("ratio.wasm");
    std::fs::copy(skewless_tests::components::REQUEST_AMOUNT_RATIO, &copy).unwrap();
    std::fs::write(
        repo.path().join("skewless.toml"),
        toml.replace(
            skewless_tests::components::REQUEST_AMOUNT_RATIO,
            "ratio.wasm",
        ),
    )
    .unwrap();
    repo.apply().unwrap();
    serving(&repo, repo.online()).expect("the applied component serves");
    // Same signature, other bytes: the hostile guest would not even fit; a rebuilt component
    // with a different digest is enough.
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.extend_from_slice(&[0, 8, 4, b'n', b'o', b'p', b'e', 0, 0, 0]);
    std::fs::write(&copy, bytes).unwrap();
    let e = serving(&repo, repo.online()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidComponent, "{e}");
    assert_eq!(e.context_value("view"), Some("req"), "{e}");
    assert!(
        e.message()
            .contains("changed since the last `skewless apply`"),
        "{e}"
    );
}

/// Readiness follows a real Redis: ready, then 503 while it is down (feature requests too),
/// then ready again once a server is back on the same port, without a restart.
#[test]
fn readiness_follows_redis_down_and_back() {
    let mut redis = RedisServer::start();
    let store: Arc<dyn OnlineStore> =
        skewless_runtime::online::open(&skewless_runtime::online::OnlineConfig::Redis {
            url: redis.url(),
        })
        .unwrap();
    let repo = materialized(Some(store.as_ref()));
    let router = router(&repo, store.clone(), limits());
    let body = json!({"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}}).to_string();
    block_on(async {
        assert_eq!(call(&router, "GET", "/ready", "").await.0, StatusCode::OK);
        let (status, out) = call(&router, "POST", "/get-online-features", &body).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            f64_bits(&out["results"][1]["values"][0]),
            Some(120.5f64.ln_1p().to_bits())
        );

        let port = redis.port();
        redis.kill();
        let (status, out) = call(&router, "GET", "/ready", "").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{out}");
        assert_eq!(out["status"], "unavailable");
        assert_eq!(out["error"]["kind"], "unavailable");
        let (status, out) = call(&router, "POST", "/get-online-features", &body).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{out}");
        assert_eq!(out["error"]["context"]["view"], "txn");

        let _back = RedisServer::start_on(port);
        assert_eq!(call(&router, "GET", "/ready", "").await.0, StatusCode::OK);
        let (status, out) = call(&router, "POST", "/get-online-features", &body).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            out["results"][1]["statuses"],
            json!(["NOT_FOUND"]),
            "a fresh Redis is empty"
        );
    });
}

/// A real socket against a real Redis: requests are answered, and on shutdown a request in
/// flight still gets its answer.
#[test]
fn a_real_socket_with_redis_and_graceful_shutdown() {
    let redis = RedisServer::start();
    let store: Arc<dyn OnlineStore> =
        skewless_runtime::online::open(&skewless_runtime::online::OnlineConfig::Redis {
            url: redis.url(),
        })
        .unwrap();
    let repo = materialized(Some(store.as_ref()));
    let router = router(&repo, store, limits());
    block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(server::serve(listener, router, async {
            let _ = stopped.await;
        }));
        let body = json!({"features": ["txn:amount_log1p", "req:amount_to_last_ratio"],
                          "entities": {"user_id": [1, 4], "amount": [241.0, 5.0]}})
        .to_string();
        let (status, out) = skewless_tests::http::post(addr, "/get-online-features", &body).await;
        assert_eq!(status, 200, "{out}");
        let out: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            out["results"][2]["statuses"],
            json!(["PRESENT", "NULL_VALUE"])
        );

        // A slow request (a component looping until its 300 ms deadline), then shutdown.
        let slow_body = json!({"features": ["chaos:out"], "entities": {"mode": [1]}}).to_string();
        let slow = tokio::spawn(async move {
            skewless_tests::http::post(addr, "/get-online-features", &slow_body).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).unwrap();
        let (status, out) = slow.await.unwrap();
        assert_eq!(status, 504, "the request in flight was answered: {out}");
        server.await.unwrap().unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "the socket is closed"
        );
    });
}

/// Everything Feast 0.67's SDK sends is accepted (unknown fields ignored, as Feast's server
/// does); `include_feature_view_version_metadata` adds each served view with its digest.
#[test]
fn feast_request_fields_and_view_metadata() {
    let repo = materialized(None);
    let router = router(&repo, repo.online(), limits());
    let registry = FeatureRepo::open(repo.path()).unwrap().applied().unwrap();
    let digest = |view: &str| registry.views[view].digest.clone();
    block_on(async {
        let body = json!({"features": ["txn:amount_log1p", "req:amount_to_last_ratio", "txn:amount_zscore"],
                          "entities": {"user_id": [1], "amount": [10.0]},
                          "full_feature_names": false,
                          "include_feature_view_version_metadata": true,
                          "a_field_of_a_newer_client": [1, 2]});
        let (status, out) = call(&router, "POST", "/get-online-features", &body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            out["metadata"]["feature_view_metadata"],
            json!([{"name": "txn", "digest": digest("txn")}, {"name": "req", "digest": digest("req")}])
        );
        // Without the flag, the metadata is Feast's usual one.
        let body = json!({"features": ["txn:amount_log1p"], "feature_service": null,
                          "entities": {"user_id": [1]}});
        let (status, out) = call(&router, "POST", "/get-online-features", &body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            out["metadata"],
            json!({"feature_names": ["user_id", "amount_log1p"]})
        );
        // An empty `features` beside a service counts as absent, as Feast's default `[]`.
        let body = json!({"features": [], "feature_service": "fraud",
                          "entities": {"user_id": [1], "amount": [10.0]}});
        let (status, out) = call(&router, "POST", "/get-online-features", &body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{out}");
    });
}

/// Feast's `/write-to-online-store` is refused with a 403 that says why and what to do; a
/// malformed body or an unknown view is named first, as for any request.
#[test]
fn writes_of_precomputed_values_are_refused_with_the_reason() {
    let repo = materialized(None);
    let router = router(&repo, repo.online(), limits());
    block_on(async {
        let cases = [
            (
                r#"{"feature_view_name": "txn", "df": {"user_id": [1], "amount_log1p": [0.5]}}"#,
                StatusCode::FORBIDDEN,
                "view",
                "run `skewless materialize txn`",
            ),
            (
                r#"{"feature_view_name": "nope", "df": {}}"#,
                StatusCode::NOT_FOUND,
                "feature_view_name",
                "no feature view `nope` (views: [chaos, req, txn, txn_copy])",
            ),
            (
                r#"{"df": {}}"#,
                StatusCode::BAD_REQUEST,
                "feature_view_name",
                "`feature_view_name` is missing",
            ),
            (
                r#"{"feature_view_name": "txn", "df": [1]}"#,
                StatusCode::BAD_REQUEST,
                "df",
                "`df` must be an object",
            ),
            (
                r#"{"feature_view_name": "txn", "df": {}, "transform_on_write": "no"}"#,
                StatusCode::BAD_REQUEST,
                "transform_on_write",
                "expected true or false",
            ),
            ("[]", StatusCode::BAD_REQUEST, "body", "expected an object"),
            ("{", StatusCode::BAD_REQUEST, "body", "not valid JSON"),
        ];
        for (body, status, field, message) in cases {
            let (got, out) = call(&router, "POST", "/write-to-online-store", body).await;
            assert_eq!(got, status, "{body}: {out}");
            let context = &out["error"]["context"];
            match field {
                "view" => assert_eq!(context["view"], "txn", "{body}: {out}"),
                field => assert_eq!(context["field"], field, "{body}: {out}"),
            }
            let text = out["error"]["message"].as_str().unwrap();
            assert!(text.contains(message), "{body}: `{text}` lacks `{message}`");
        }
        // Nothing was written: the stored value is the materialized one.
        let body = json!({"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}});
        let (_, out) = call(&router, "POST", "/get-online-features", &body.to_string()).await;
        assert_eq!(
            f64_bits(&out["results"][1]["values"][0]),
            Some(120.5f64.ln_1p().to_bits())
        );
        let (_, metrics) = call(&router, "GET", "/metrics", "").await;
        let metrics = metrics.as_str().unwrap();
        assert!(
            metrics.contains(
                "skewless_errors_total{endpoint=\"write-to-online-store\",kind=\"unsupported\"} 1"
            ),
            "{metrics}"
        );
    });
}
