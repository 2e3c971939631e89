//! The server-side cost of one online request, without a socket or a load generator: the
//! same 1-entity request with and without a request-time view, through `OnlineServing::get`
//! (the job) and through the router (parsing and rendering included), on the embedded store.
//! Then the embedded store alone (`embedded_store/*`): the reads a request makes (1 entity, 5
//! features of one view; 1 entity, 10 features of three views in one `read_many`) and one
//! batch write of 100,000 new rows, as materialization does.
//!
//! Run: `cargo bench -p skewless-benches --bench serving`. Figures: `benches/README.md`.
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use skewless_datagen::{Spec, batches};
use skewless_runtime::TransformEngine;
use skewless_runtime::materialize::Options;
use skewless_runtime::online::{EmbeddedStore, EntityKey, FeatureValue, OnlineStore, StoredRow};
use skewless_runtime::registry::FeatureRepo;
use skewless_runtime::serving::{FeatureRequest, OnlineServing};
use skewless_server::{self as server, AppState, Limits};
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

/// A row of `n` float features, as a batch view stores it.
fn stored_row(i: i64, n: usize) -> StoredRow {
    StoredRow {
        event_ts: 1_700_000_000_000_000 + i,
        created_ts: 1_700_000_000_500_000,
        digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        values: (0..n)
            .map(|f| FeatureValue::Float64(i as f64 / (f + 1) as f64))
            .collect(),
    }
}

fn rows(n: i64, features: usize) -> Vec<(EntityKey, StoredRow)> {
    (0..n)
        .map(|i| (EntityKey::new([i]), stored_row(i, features)))
        .collect()
}

fn embedded_store(c: &mut Criterion) {
    const ENTITIES: i64 = 100_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path().join("online.store")).expect("store opens");
    // Three views as in the serving scenarios: 5, 3 and 2 features.
    for (view, features) in [("txn", 5), ("merchant", 3), ("time", 2)] {
        for chunk in rows(ENTITIES, features).chunks(10_000) {
            store.write(view, chunk).expect("written");
        }
    }
    let mut group = c.benchmark_group("embedded_store");
    let key = [EntityKey::new([42_424i64])];
    group.bench_function("read/1_entity_5_features", |b| {
        b.iter(|| store.read("txn", &key).expect("read"))
    });
    group.bench_function("read_many/1_entity_10_features_3_views", |b| {
        b.iter(|| {
            store
                .read_many(&[("txn", &key), ("merchant", &key), ("time", &key)])
                .expect("read")
        })
    });
    let batch = rows(100_000, 5);
    group.sample_size(10);
    group.bench_function("write/100k_new_rows_5_features", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = EmbeddedStore::open(dir.path().join("online.store")).expect("opens");
                (dir, store)
            },
            |(dir, store)| {
                let stats = store.write("txn", &batch).expect("written");
                assert_eq!(stats.written, 100_000);
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, serving, embedded_store);
criterion_main!(benches);
