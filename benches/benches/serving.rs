//! The server-side cost of one online request, without a socket or a load generator: the
//! same 1-entity request with and without a request-time view, through `OnlineServing::get`
//! (the job) and through the router (parsing and rendering included), on the embedded store.
//!
//! Run: `cargo bench -p skewless-benches --bench serving`. Figures: `benches/README.md`.
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use skewless_datagen::{Spec, batches};
use skewless_runtime::TransformEngine;
use skewless_runtime::materialize::Options;
use skewless_runtime::registry::FeatureRepo;
use skewless_runtime::server::{self, AppState, Limits};
use skewless_runtime::serving::{FeatureRequest, OnlineServing};
use skewless_tests::feature_repo::TestRepo;
use tower::ServiceExt;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REPO: &str = r#"
[project]
name = "serving-bench"

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

[[request_view]]
name = "req"
transform = "{REQUEST_AMOUNT_RATIO}"
entities = ["user"]
inputs.request_amount = { request = "amount" }
inputs.user_last_amount = { feature = "txn:amount_log1p" }
inputs.user_avg_amount_30d = { feature = "txn:amount_to_balance_ratio" }
"#;

const USERS: u64 = 1_000;

/// The two requests compared: 5 stored features, and the same plus the request-time view.
const STORED: &str = r#"{"features":["txn:*"],"entities":{"user_id":[42]}}"#;
const WITH_VIEW: &str =
    r#"{"features":["txn:*","req:*"],"entities":{"user_id":[42],"amount":[123.45]}}"#;

/// A repo materialized from 20,000 generated transactions of 1,000 users.
fn materialized() -> (TestRepo, OnlineServing) {
    let repo = TestRepo::new(REPO);
    let spec = Spec {
        rows: 20_000,
        users: USERS,
        ..Spec::default()
    };
    let data: Vec<_> = batches(spec, 8192).collect();
    repo.ingest("raw.transactions", "txns.parquet", &data);
    repo.apply().expect("applies");
    let store = repo.online();
    repo.materialize("txn", &Options::default(), store.as_ref())
        .expect("materializes");
    let feature_repo = FeatureRepo::open(repo.path()).expect("repo opens");
    let registry = feature_repo.applied().expect("applied");
    let engine = TransformEngine::builder()
        .cache_dir(feature_repo.state_dir().join("compiled"))
        .deadline(Duration::from_secs(1))
        .build()
        .expect("engine");
    let serving =
        OnlineServing::open(&feature_repo, &registry, &engine, store).expect("serving opens");
    (repo, serving)
}

fn serving(c: &mut Criterion) {
    let (repo, serving) = materialized();
    let mut group = c.benchmark_group("online_request");
    for (name, body) in [
        ("5_stored", STORED),
        ("5_stored_plus_request_view", WITH_VIEW),
    ] {
        let request = FeatureRequest::from_json(body.as_bytes()).expect("valid request");
        group.bench_function(format!("get/{name}"), |b| {
            b.iter(|| serving.get(&request).expect("served"))
        });
    }

    let router = server::router(AppState::new(serving, Limits::default()));
    for (name, body) in [
        ("5_stored", STORED),
        ("5_stored_plus_request_view", WITH_VIEW),
    ] {
        group.bench_function(format!("router/{name}"), |b| {
            b.iter(|| {
                repo.rt.block_on(async {
                    let request = Request::post("/get-online-features")
                        .header("content-type", "application/json")
                        .body(Body::from(body))
                        .expect("request");
                    let response = router.clone().oneshot(request).await.expect("answered");
                    assert!(response.status().is_success());
                    response.into_body().collect().await.expect("body")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, serving);
criterion_main!(benches);
