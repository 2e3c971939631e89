//! The async Redis path of the online server against a real redis-server: many concurrent
//! requests answered exactly as the blocking path answers them, async writes keeping the
//! order of rows, a Redis killed under load (503s naming the store, then recovery without a
//! restart), and a Redis that accepts connections but never answers (a timeout, not a hung
//! request).

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use skewless_runtime::ErrorKind;
use skewless_runtime::online::{
    self, EntityKey, FeatureValue, OnlineConfig, OnlineStore, StoredRow,
};
use skewless_runtime::serving::FeatureRequest;
use skewless_server::Limits;
use skewless_tests::redis_server::RedisServer;

use crate::server::{block_on, call, limits, materialized, router, serving};

fn redis_store(url: String) -> Arc<dyn OnlineStore> {
    online::open_lazily(&OnlineConfig::Redis { url }).unwrap()
}

/// A request for `features` of `users`, with request field `amount` when `amounts` is given.
fn request(features: &[&str], users: &[i64], amounts: Option<&[f64]>) -> FeatureRequest {
    let entities = match amounts {
        Some(amounts) => json!({"user_id": users, "amount": amounts}),
        None => json!({"user_id": users}),
    };
    let body = json!({"features": features, "entities": entities});
    FeatureRequest::from_json(body.to_string().as_bytes()).unwrap()
}

/// Many requests at once, each with its own entities, on the async path (one shared
/// multiplexed connection): every answer equals the blocking path's at the same time, value
/// for value, status for status.
#[test]
fn concurrent_async_reads_answer_as_the_blocking_path() {
    let redis = RedisServer::start();
    let store = redis_store(redis.url());
    let repo = materialized(Some(store.as_ref()));
    let serving = Arc::new(serving(&repo, store).unwrap());
    assert!(serving.reads_async());
    let now = skewless_runtime::micros::now();
    // Users 1..=5 in every order and size: present, expired, future, null and missing rows.
    let requests: Vec<FeatureRequest> = (0..200)
        .map(|i: usize| {
            let users: Vec<i64> = (0..1 + i % 7)
                .map(|j| ((i + 3 * j) % 5 + 1) as i64)
                .collect();
            let amounts: Vec<f64> = users.iter().map(|u| *u as f64 * 10.0 + i as f64).collect();
            match i % 3 {
                0 => request(&["txn:*", "req:*"], &users, Some(&amounts)),
                1 => request(
                    &["txn_copy:amount_bucket", "txn:amount_log1p"],
                    &users,
                    None,
                ),
                _ => request(&["req:amount_to_last_ratio"], &users, Some(&amounts)),
            }
        })
        .collect();
    let requests = Arc::new(requests);
    let answers = block_on(async {
        let tasks: Vec<_> = (0..requests.len())
            .map(|i| {
                let serving = serving.clone();
                let requests = requests.clone();
                tokio::spawn(async move {
                    let planned = serving.plan(&requests[i], now).unwrap();
                    let read = planned.read_async().await.unwrap();
                    let answer = planned.finish(read).unwrap();
                    assert!(answer.timings.store.is_some(), "the store was read");
                    format!("{:?}", answer.features)
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    });
    for (request, answer) in requests.iter().zip(&answers) {
        let blocking = serving.get_at(request, now).unwrap();
        assert_eq!(*answer, format!("{:?}", blocking.features));
    }
    assert!(answers.iter().any(|a| a.contains("Present")));
    assert!(answers.iter().any(|a| a.contains("NotFound")));
    assert!(answers.iter().any(|a| a.contains("OutsideMaxAge")));
}

/// Async reads see what writes left under the order of rows: a newer row replaces, an older
/// one or an equal one does not, and the async and the blocking paths read the same rows.
#[test]
fn async_reads_see_the_order_of_rows_writes_kept() {
    let redis = RedisServer::start();
    let store = redis_store(redis.url());
    let asynchronous = store.as_async().expect("Redis has an async path");
    let row = |event_ts: i64, value: f64| StoredRow {
        event_ts,
        created_ts: 0,
        digest: "sha256:x".into(),
        values: vec![FeatureValue::Float64(value)],
    };
    let key = |k: i64| EntityKey::new([k]);
    block_on(async {
        let rows = [
            (key(1), row(10, 1.0)),
            (key(2), row(10, 2.0)),
            (key(1), row(5, 9.0)),
        ];
        let stats = store.write("v", &rows).unwrap();
        assert_eq!((stats.written, stats.skipped_older), (2, 1));
        let stats = store
            .write("v", &[(key(1), row(9, 3.0)), (key(2), row(11, 4.0))])
            .unwrap();
        assert_eq!((stats.written, stats.skipped_older), (1, 1));
        let keys = [key(1), key(2), key(3)];
        let read = asynchronous.read_many(&[("v", &keys)]).await.unwrap();
        assert_eq!(read, store.read_many(&[("v", &keys)]).unwrap());
        let values: Vec<Option<i64>> = read[0]
            .iter()
            .map(|r| r.as_ref().map(|r| r.event_ts))
            .collect();
        assert_eq!(values, [Some(10), Some(11), None]);
    });
}

/// Requests keep coming while Redis is killed: each gets a 200 or a 503 naming the Redis
/// store (never a hang or a 500); once a Redis is back on the port, requests are answered
/// again by the same server.
#[test]
fn a_redis_killed_under_load_gives_503s_then_recovers() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let store = redis_store(url.clone());
    let repo = materialized(Some(store.as_ref()));
    let router = router(&repo, store, limits());
    let body = json!({"features": ["txn:amount_log1p", "req:amount_to_last_ratio"],
                      "entities": {"user_id": [1, 4], "amount": [241.0, 5.0]}})
    .to_string();
    let port = redis.port();
    block_on(async {
        let killed = Arc::new(AtomicBool::new(false));
        let load: Vec<_> = (0..8)
            .map(|_| {
                let router = router.clone();
                let body = body.clone();
                let killed = killed.clone();
                tokio::spawn(async move {
                    let (mut ok, mut unavailable) = (0, 0);
                    let mut after_kill = 0;
                    while after_kill < 20 {
                        let started = Instant::now();
                        let (status, out) =
                            call(&router, "POST", "/get-online-features", &body).await;
                        assert!(started.elapsed() < Duration::from_secs(3), "{out}");
                        match status {
                            StatusCode::OK => ok += 1,
                            StatusCode::SERVICE_UNAVAILABLE => {
                                assert_eq!(out["error"]["kind"], "unavailable", "{out}");
                                let message = out["error"]["message"].as_str().unwrap();
                                assert!(message.contains("Redis online store"), "{out}");
                                unavailable += 1;
                            }
                            other => panic!("{other}: {out}"),
                        }
                        if killed.load(Ordering::Acquire) {
                            after_kill += 1;
                        }
                    }
                    (ok, unavailable)
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        redis.kill();
        killed.store(true, Ordering::Release);
        let (mut ok, mut unavailable) = (0, 0);
        for task in load {
            let (o, u) = task.await.unwrap();
            ok += o;
            unavailable += u;
        }
        assert!(ok > 0, "answered before the kill");
        assert!(unavailable >= 8 * 10, "503s after the kill: {unavailable}");

        let _back = RedisServer::start_on(port);
        let (status, out) = call(&router, "POST", "/get-online-features", &body).await;
        assert_eq!(status, StatusCode::OK, "{out}");
        assert_eq!(
            out["results"][1]["statuses"],
            json!(["NOT_FOUND", "NOT_FOUND"])
        );
    });
}

/// A "Redis" that accepts connections and never answers: a request ends at its deadline
/// (504), and with a longer deadline at the store's own timeout (503 naming the store), while
/// the server keeps answering other requests.
#[test]
fn a_redis_that_never_answers_times_out() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and reads, never writes; the sockets stay open until the test ends.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    let repo = materialized(None);
    let store = redis_store(format!("redis://127.0.0.1:{port}"));
    let body = json!({"features": ["txn:amount_log1p"], "entities": {"user_id": [1]}}).to_string();
    let short = router(
        &repo,
        store.clone(),
        Limits {
            request_timeout: Duration::from_millis(400),
            ..limits()
        },
    );
    let long = router(&repo, store.clone(), limits());
    block_on(async {
        let hung: Vec<_> = (0..4)
            .map(|_| {
                let (short, body) = (short.clone(), body.clone());
                tokio::spawn(async move {
                    let started = Instant::now();
                    let (status, out) = call(&short, "POST", "/get-online-features", &body).await;
                    (status, out, started.elapsed())
                })
            })
            .collect();
        // Meanwhile the server answers what needs no store.
        let started = Instant::now();
        assert_eq!(call(&short, "GET", "/health", "").await.0, StatusCode::OK);
        assert!(started.elapsed() < Duration::from_millis(200));
        for task in hung {
            let (status, out, took) = task.await.unwrap();
            assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{out}");
            assert_eq!(out["error"]["kind"], "deadline_exceeded", "{out}");
            assert!(took < Duration::from_millis(1500), "{took:?}");
        }

        let started = Instant::now();
        let (status, out) = call(&long, "POST", "/get-online-features", &body).await;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{out}");
        let message = out["error"]["message"].as_str().unwrap();
        assert!(message.contains("did not answer within 2s"), "{out}");
        assert!(took < Duration::from_millis(4500), "{took:?}");
    });
    // The blocking path times out the same way.
    let e = store
        .read_many(&[("txn", &[EntityKey::new([1i64])])])
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}
