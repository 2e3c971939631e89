//! `skewless stream` on a real redis-server (the stream and the online store): a consumer
//! crashed after a commit and before its acknowledgement, then after applying rows online
//! and before their commit, and restarted each time: every row committed exactly once,
//! nothing pending, malformed messages dead-lettered with their errors without stopping the
//! stream, and the online values equal to historical retrieval at the same instant.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use std::time::Instant;

use redis::Commands;
use serde_json::json;
use skewless_runtime::online::OnlineStore;
use skewless_runtime::stream::{
    Consumer, MessageId, RedisStreams, StreamHook, StreamOptions, StreamStep,
};
use skewless_runtime::{Error, ErrorKind};
use skewless_tests::feature_repo::TestRepo;
use skewless_tests::redis_server::RedisServer;

use super::push::{
    Event, JAN_1_US, assert_online_equals_historical, expected_rows, historical, online, repo,
    runtime, serving_router, source_rows,
};

const STREAM: &str = "transactions";
const GROUP: &str = "skewless";

/// A consumer named `c1` of the stream, crashing at the `nth` (1-based) call of `step`.
fn consumer(
    repo: &TestRepo,
    redis: &RedisServer,
    store: Arc<dyn OnlineStore>,
    crash: Option<(StreamStep, usize)>,
) -> Consumer {
    named_consumer(repo, redis, store, "c1", Duration::ZERO, crash)
}

/// A consumer named `name`, taking over consumers idle for `claim_idle` (never when zero),
/// crashing at the `nth` (1-based) call of `step`.
fn named_consumer(
    repo: &TestRepo,
    redis: &RedisServer,
    store: Arc<dyn OnlineStore>,
    name: &str,
    claim_idle: Duration,
    crash: Option<(StreamStep, usize)>,
) -> Consumer {
    let source = RedisStreams::connect(&redis.url(), STREAM, GROUP, name).unwrap();
    let hook = crash.map(|(step, nth)| {
        let calls = Arc::new(AtomicUsize::new(0));
        StreamHook(Arc::new(move |at| {
            if at == step && calls.fetch_add(1, Ordering::AcqRel) + 1 == nth {
                return Err(Error::new(ErrorKind::Internal, format!("crash at {at:?}")));
            }
            Ok(())
        }))
    });
    let options = StreamOptions {
        batch: 7,
        wait: Duration::from_millis(50),
        commit_interval: Duration::from_secs(3600),
        max_rows: 20,
        claim_idle,
        hook,
    };
    Consumer::open(repo.path(), "txn_push", store, Box::new(source), options).unwrap()
}

#[test]
fn a_consumer_killed_and_restarted_mid_stream_commits_every_row_once_and_dead_letters_malformed_messages()
 {
    let redis = RedisServer::start();
    let repo = repo(Some(&redis.url()));
    let store = repo.online();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    // 90 events for 9 users, out of order, with exact duplicates, and 6 malformed messages.
    let mut events: Vec<Event> = Vec::new();
    let mut malformed = BTreeSet::new();
    for i in 0..96i64 {
        let id: String = match i % 16 {
            5 => conn.xadd(STREAM, "*", &[("row", "{not json")]).unwrap(),
            11 if i < 48 => conn.xadd(STREAM, "*", &[("payload", "{}")]).unwrap(),
            11 => {
                let row = json!({"user_id": 1, "event_ts": JAN_1_US, "ingested_at": JAN_1_US, "amount": "twelve"});
                conn.xadd(STREAM, "*", &[("row", row.to_string())]).unwrap()
            }
            _ => {
                let event: Event = match i % 7 {
                    3 if !events.is_empty() => events[(i as usize * 5) % events.len()],
                    _ => (
                        1 + i % 9,
                        JAN_1_US + (i * 7_919) % 1_000 * 1_000_000,
                        JAN_1_US + i,
                        (i * 37 % 1_500) as f64 + 0.25,
                    ),
                };
                events.push(event);
                let row = json!({"user_id": event.0, "event_ts": event.1, "ingested_at": event.2,
                                 "amount": event.3, "balance_before": 1000.0});
                conn.xadd(STREAM, "*", &[("row", row.to_string())]).unwrap()
            }
        };
        if i % 16 == 5 || i % 16 == 11 {
            malformed.insert(MessageId::parse(&id).unwrap());
        }
    }
    let idle = |s: &skewless_runtime::stream::StreamStats| s.idle_reads > 0;
    // Killed after its first commit, before acknowledging it.
    let crashed = consumer(
        &repo,
        &redis,
        store.clone(),
        Some((StreamStep::Committed, 1)),
    )
    .run(&idle);
    assert!(crashed.is_err());
    // Killed after applying its third batch online, before committing it.
    let crashed = consumer(&repo, &redis, store.clone(), Some((StreamStep::Applied, 3))).run(&idle);
    assert!(crashed.is_err());
    let stats = consumer(&repo, &redis, store.clone(), None)
        .run(&idle)
        .unwrap();
    assert!(stats.read > 0, "{stats:?}");

    // Every good row once, nothing pending.
    assert_eq!(source_rows(&repo), expected_rows(&events));
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .query(&mut conn)
        .unwrap();
    match pending {
        redis::Value::Array(parts) => assert_eq!(parts[0], redis::Value::Int(0), "{parts:?}"),
        other => panic!("{other:?}"),
    }
    // Each malformed message dead-lettered (at least once: a crash before the commit
    // re-delivers it), with its error.
    let letters: redis::streams::StreamRangeReply =
        conn.xrange_all(format!("{STREAM}:dead-letter")).unwrap();
    let mut lettered = BTreeSet::new();
    for letter in &letters.ids {
        let id: String = letter.get("id").unwrap();
        let error: String = letter.get("error").unwrap();
        let id = MessageId::parse(&id).unwrap();
        assert!(malformed.contains(&id), "{id} was not malformed: {error}");
        assert!(
            error.contains("not a JSON object")
                || error.contains("no field `row`")
                || error
                    .contains("column `amount` row 0 is a string (\"twelve\"), expected float64"),
            "{error}"
        );
        lettered.insert(id);
    }
    assert_eq!(lettered, malformed);

    // Online equals historical at the same instant.
    let router = serving_router(&repo, store, None);
    let users: Vec<i64> = (1..=9).collect();
    let (now, served) = runtime().block_on(online(&router, &users));
    let training = historical(&repo, &users, now);
    assert_eq!(
        assert_online_equals_historical(&served, &training, &users),
        9 * 5
    );
}

/// The ids of `consumer`'s pending messages.
fn pending_ids(conn: &mut redis::Connection, consumer: &str) -> Vec<MessageId> {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(STREAM)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(1_000)
        .arg(consumer)
        .query(conn)
        .unwrap();
    let redis::Value::Array(entries) = reply else {
        panic!("{reply:?}")
    };
    entries
        .into_iter()
        .map(|entry| match entry {
            redis::Value::Array(parts) => match &parts[0] {
                redis::Value::BulkString(id) => {
                    MessageId::parse(std::str::from_utf8(id).unwrap()).unwrap()
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect()
}

fn pending_count(conn: &mut redis::Connection, consumer: Option<&str>) -> i64 {
    let mut command = redis::cmd("XPENDING");
    command.arg(STREAM).arg(GROUP);
    if let Some(consumer) = consumer {
        command.arg("-").arg("+").arg(1_000).arg(consumer);
    }
    match command.query::<redis::Value>(conn).unwrap() {
        redis::Value::Array(parts) if consumer.is_some() => parts.len() as i64,
        redis::Value::Array(parts) => match parts[0] {
            redis::Value::Int(n) => n,
            ref other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dead_consumers_pending_messages_are_taken_over_by_another_and_committed_exactly_once() {
    let redis = RedisServer::start();
    let repo = repo(Some(&redis.url()));
    let store = repo.online();
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let event = |i: i64| -> Event {
        (
            1 + i % 9,
            JAN_1_US + i * 1_000_000,
            JAN_1_US + i,
            (i * 37 % 1_500) as f64 + 0.25,
        )
    };
    let add = |conn: &mut redis::Connection, event: Event| {
        let row = json!({"user_id": event.0, "event_ts": event.1, "ingested_at": event.2,
                         "amount": event.3, "balance_before": 1000.0});
        let _: String = conn.xadd(STREAM, "*", &[("row", row.to_string())]).unwrap();
    };
    let mut events: Vec<Event> = (0..80).map(event).collect();
    for e in &events {
        add(&mut conn, *e);
    }
    // c1 stops for good after its second commit, before acknowledging it: it leaves
    // pending messages at or below its committed position (that micro-batch) and above it
    // (the batch its reader had read ahead, applied by nobody).
    let crashed = named_consumer(
        &repo,
        &redis,
        store.clone(),
        "c1",
        Duration::ZERO,
        Some((StreamStep::Committed, 2)),
    )
    .run(&|_| false);
    assert!(crashed.is_err());
    let left = pending_count(&mut conn, Some("c1"));
    assert!(left > 21, "c1 left {left} messages pending");
    let c1_last = pending_ids(&mut conn, "c1").into_iter().max();
    // The stream goes on without c1.
    for i in 80..110 {
        events.push(event(i));
        add(&mut conn, event(i));
    }
    let claim_idle = Duration::from_millis(300);
    let idle_since = Instant::now();
    std::thread::sleep(claim_idle + Duration::from_millis(100));
    let stats = named_consumer(&repo, &redis, store.clone(), "c2", claim_idle, None)
        .run(&|s| s.idle_reads > 0)
        .unwrap();
    assert!(idle_since.elapsed() >= claim_idle);
    assert_eq!(stats.claimed, left as u64, "{stats:?}");
    // c1's committed and unacknowledged micro-batch is acknowledged, not appended again.
    assert_eq!(stats.duplicates, 21, "{stats:?}");

    // Every row exactly once in the source table, nothing pending, c1's claim released.
    assert_eq!(source_rows(&repo), expected_rows(&events));
    assert_eq!(pending_count(&mut conn, None), 0);
    let claims: Vec<String> = conn.keys(format!("{STREAM}:claim:*")).unwrap();
    assert!(claims.is_empty(), "{claims:?}");
    // c2's own messages after c1's are committed under c2's position, c1's under c1's.
    let c1 = RedisStreams::connect(&redis.url(), STREAM, GROUP, "c1").unwrap();
    let reopened = Consumer::open(
        repo.path(),
        "txn_push",
        store.clone(),
        Box::new(c1),
        StreamOptions {
            batch: 7,
            wait: Duration::from_millis(50),
            commit_interval: Duration::from_secs(3600),
            max_rows: 20,
            claim_idle: Duration::ZERO,
            hook: None,
        },
    )
    .unwrap();
    // c1's position moved to its last message, taken over and committed by c2.
    assert_eq!(reopened.position(), c1_last);

    // Online equals historical at the same instant.
    let router = serving_router(&repo, store, None);
    let users: Vec<i64> = (1..=9).collect();
    let (now, served) = runtime().block_on(online(&router, &users));
    let training = historical(&repo, &users, now);
    assert_eq!(
        assert_online_equals_historical(&served, &training, &users),
        9 * 5
    );
}
