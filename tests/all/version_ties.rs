//! Exact version ties: source rows of one entity with the very same `(event_ts, created_ts)`
//! and different values. Online and offline must still agree bit for bit: the online store
//! (whatever order and batching the rows are written in, on every backend started here) and
//! historical retrieval (at every label time, whatever budget) both take the greatest row in
//! the order of rows (`online::compare_rows`: the version, then the stored bytes), which a
//! brute-force oracle over the feature table computes directly.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use skewless_runtime::apply::{CREATED_TS, EVENT_TS};
use skewless_runtime::historical::{MemoryBudget, Request, Retrieval, TrainingSet};
use skewless_runtime::materialize::Options;
use skewless_runtime::online::{
    self, EntityKey, FeatureValue, OnlineConfig, OnlineStore, StoredRow, compare_rows,
};
use skewless_runtime::registry::{FeatureRef, OpenedRepo};
use skewless_tests::feature_repo::TestRepo;
use skewless_tests::redis_cluster::RedisCluster;
use skewless_tests::redis_server::RedisServer;

const REPO: &str = r#"
[project]
name = "ties"

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
"#;

const HOUR: i64 = 3_600_000_000;
const USERS: i64 = 6;
const HOURS: i64 = 5;
/// The view's features, in the stored order.
const FEATURES: [&str; 5] = [
    "amount_log1p",
    "amount_zscore",
    "amount_bucket",
    "amount_to_balance_ratio",
    "is_high_value",
];

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

/// Source rows on a coarse grid (6 users, 5 event hours, 2 created times): each version has
/// several rows, of different amounts and balances (some equal, some null), so exact ties of
/// different feature values, of values differing only in a late feature, and of identical
/// rows all occur.
fn source(rows: usize, seed: u64) -> RecordBatch {
    let mut x = seed;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let amounts = [
        Some(-5.0),
        Some(12.5),
        Some(250.0),
        Some(900.0),
        Some(5e3),
        None,
    ];
    let balances = [Some(0.0), Some(100.0), Some(1e3), None];
    let (mut users, mut event, mut created, mut amount, mut balance) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rows {
        users.push((next() % USERS as usize) as i64);
        event.push((next() % HOURS as usize) as i64 * HOUR);
        created.push(HOUR / 2 + (next() % 2) as i64);
        amount.push(amounts[next() % amounts.len()]);
        balance.push(balances[next() % balances.len()]);
    }
    skewless_tests::transactions(users, event, created, amount, balance)
}

/// A feature-table or training-set cell as the online store holds it.
fn cell(column: &dyn Array, row: usize) -> FeatureValue {
    if column.is_null(row) {
        return FeatureValue::Null;
    }
    match column.data_type() {
        DataType::Float64 => FeatureValue::Float64(column.as_primitive::<Float64Type>().value(row)),
        DataType::Int32 => FeatureValue::Int32(column.as_primitive::<Int32Type>().value(row)),
        DataType::Boolean => FeatureValue::Boolean(column.as_boolean().value(row)),
        other => panic!("a feature column of type {other}"),
    }
}

/// Every row of the view's feature table as the stored row materialization would write.
fn feature_rows(repo: &TestRepo, digest: &str) -> Vec<(EntityKey, StoredRow)> {
    let mut out = Vec::new();
    for batch in repo.scan("features.txn", None) {
        let column = |name: &str| batch.column_by_name(name).unwrap().clone();
        let users = column("user_id");
        let event = column(EVENT_TS);
        let created = column(CREATED_TS);
        for row in 0..batch.num_rows() {
            out.push((
                EntityKey::new([users.as_primitive::<Int64Type>().value(row)]),
                StoredRow {
                    event_ts: event.as_primitive::<TimestampMicrosecondType>().value(row),
                    created_ts: created
                        .as_primitive::<TimestampMicrosecondType>()
                        .value(row),
                    digest: digest.to_owned(),
                    values: FEATURES
                        .iter()
                        .map(|f| cell(column(f).as_ref(), row))
                        .collect(),
                },
            ));
        }
    }
    out
}

/// The definition, by brute force: the greatest row of `key` (by `compare_rows`) with
/// `event_ts <= t`.
fn oracle<'r>(
    rows: &'r [(EntityKey, StoredRow)],
    key: &EntityKey,
    t: i64,
) -> Option<&'r StoredRow> {
    rows.iter()
        .filter(|(k, r)| k == key && r.event_ts <= t)
        .map(|(_, r)| r)
        .max_by(|a, b| compare_rows(a, b).unwrap())
}

/// Label times: before any row, on every event hour (equal to the rows' times), between them,
/// after all.
fn label_times() -> Vec<i64> {
    let mut out = vec![-1];
    for h in 0..HOURS {
        out.extend([h * HOUR, h * HOUR + HOUR / 2]);
    }
    out.push(100 * HOUR);
    out
}

/// Entity rows: every user (and one without rows) at every label time.
fn entities() -> RecordBatch {
    let (mut users, mut times) = (vec![], vec![]);
    for user in 0..=USERS {
        for t in label_times() {
            users.push(user);
            times.push(t);
        }
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_timestamp", ts_type(), false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(users)),
            Arc::new(TimestampMicrosecondArray::from(times).with_timezone("+00:00")),
        ],
    )
    .unwrap()
}

fn retrieve(repo: &TestRepo, features: &[&str], memory: MemoryBudget) -> TrainingSet {
    let opened = OpenedRepo::open(repo.path()).unwrap();
    let retrieval = Retrieval {
        context: opened.context(),
    };
    let request = Request {
        features: features
            .iter()
            .map(|f| FeatureRef::parse(f).unwrap())
            .collect(),
        full_feature_names: false,
        as_of_ms: None,
        memory,
    };
    retrieval.run(&entities(), &request).unwrap()
}

/// The training set's answer per (user, label time): the requested features' values, all
/// null for no row.
fn answers(set: &TrainingSet, features: &[&str]) -> BTreeMap<(i64, i64), Vec<FeatureValue>> {
    let batch = &set.batch;
    let users = batch.column(0).as_primitive::<Int64Type>();
    let times = batch.column(1).as_primitive::<TimestampMicrosecondType>();
    (0..batch.num_rows())
        .map(|row| {
            let values = features
                .iter()
                .map(|f| cell(batch.column_by_name(f).unwrap().as_ref(), row))
                .collect();
            ((users.value(row), times.value(row)), values)
        })
        .collect()
}

/// The stored rows in a shuffled order (a seeded Fisher-Yates), written in batches of
/// `batch` rows.
fn write_shuffled(
    store: &dyn OnlineStore,
    view: &str,
    rows: &[(EntityKey, StoredRow)],
    seed: u64,
    batch: usize,
) {
    let mut rows = rows.to_vec();
    let mut x = seed;
    for i in (1..rows.len()).rev() {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rows.swap(i, (x >> 33) as usize % (i + 1));
    }
    for chunk in rows.chunks(batch) {
        store.write(view, chunk).unwrap();
    }
}

#[test]
fn exact_version_ties_agree_online_and_offline_in_any_order() {
    let repo = TestRepo::new(REPO);
    // Three files (two commits), so the scan reads several files, in whatever order.
    repo.ingest(
        "raw.transactions",
        "a.parquet",
        &[source(150, 1), source(150, 2)],
    );
    repo.apply().unwrap();
    repo.append("raw.transactions", &[source(150, 3)]);
    let materialized = repo.online();
    repo.materialize("txn", &Options::default(), materialized.as_ref())
        .unwrap();

    let all: Vec<&str> = FEATURES.to_vec();
    let whole = retrieve(&repo, &["txn:*"], MemoryBudget::default());
    let digest = whole.digests["txn"].clone();
    let rows = feature_rows(&repo, &digest);
    assert_eq!(rows.len(), 450);
    // The data has what the test is about: versions held by rows of different values.
    let mut by_version: BTreeMap<(&EntityKey, i64, i64), Vec<&StoredRow>> = BTreeMap::new();
    for (k, r) in &rows {
        by_version
            .entry((k, r.event_ts, r.created_ts))
            .or_default()
            .push(r);
    }
    let differing = by_version
        .values()
        .filter(|rs| rs.iter().any(|r| r.values != rs[0].values))
        .count();
    assert!(
        differing > 20,
        "only {differing} versions with differing rows"
    );

    // Historical retrieval: every feature, one late feature alone (whose ties the features
    // before it decide), and within a tiny budget that partitions and spills.
    let tiny = MemoryBudget {
        bytes: 2048,
        fan_out: 3,
        spill_dir: None,
    };
    let late = ["amount_to_balance_ratio"];
    let sets = [
        (answers(&whole, &all), all.as_slice()),
        (
            answers(&retrieve(&repo, &["txn:*"], tiny.clone()), &all),
            all.as_slice(),
        ),
        (
            answers(
                &retrieve(&repo, &["txn:amount_to_balance_ratio"], tiny),
                &late,
            ),
            late.as_slice(),
        ),
        (
            answers(
                &retrieve(
                    &repo,
                    &["txn:amount_to_balance_ratio"],
                    MemoryBudget::default(),
                ),
                &late,
            ),
            late.as_slice(),
        ),
    ];
    for user in 0..=USERS {
        let key = EntityKey::new([user]);
        for t in label_times() {
            let expected = oracle(&rows, &key, t);
            for (set, features) in &sets {
                let want: Vec<FeatureValue> = features
                    .iter()
                    .map(|f| {
                        let i = FEATURES.iter().position(|x| x == f).unwrap();
                        expected.map_or(FeatureValue::Null, |r| r.values[i].clone())
                    })
                    .collect();
                assert_eq!(set[&(user, t)], want, "user {user} at {t}, {features:?}");
            }
        }
        // The online store materialization wrote: the row at the end of time.
        assert_eq!(
            materialized
                .read("txn", std::slice::from_ref(&key))
                .unwrap()[0]
                .as_ref(),
            oracle(&rows, &key, i64::MAX),
            "user {user}, materialized"
        );
    }

    // The same rows written to each backend in several orders and batchings, cut at every
    // label time: the online value at T is the historical value at T.
    let dir = tempfile::tempdir().unwrap();
    let embedded = online::open(&OnlineConfig::Embedded {
        path: dir.path().join("online.lmdb"),
        map_size: None,
    })
    .unwrap();
    let redis = RedisServer::start();
    let cluster = RedisCluster::start();
    let stores: Vec<Arc<dyn OnlineStore>> = vec![
        embedded,
        online::open(&OnlineConfig::Redis { url: redis.url() }).unwrap(),
        online::open(&OnlineConfig::RedisCluster {
            nodes: cluster.urls(),
        })
        .unwrap(),
    ];
    let keys: Vec<EntityKey> = (0..=USERS).map(|u| EntityKey::new([u])).collect();
    for store in &stores {
        for (n, t) in label_times().into_iter().enumerate() {
            let visible: Vec<_> = rows
                .iter()
                .filter(|(_, r)| r.event_ts <= t)
                .cloned()
                .collect();
            // One row per write call only for the last cut (all rows): each call is a commit.
            let last = n + 1 == label_times().len();
            let orders: &[(u64, usize)] = if last {
                &[(1, 1), (2, 7), (3, 1000)]
            } else {
                &[(2, 7), (3, 1000)]
            };
            for &(seed, batch) in orders {
                let view = format!("cut{n}_{seed}");
                write_shuffled(store.as_ref(), &view, &visible, seed, batch);
                let got = store.read(&view, &keys).unwrap();
                for (user, got) in (0..).zip(&got) {
                    let expected = oracle(&rows, &keys[user as usize], t);
                    assert_eq!(
                        got.as_ref(),
                        expected,
                        "{}: user {user} at {t}, order {seed}, batches of {batch}",
                        store.backend()
                    );
                    // Bit for bit the training set's answer at the same instant.
                    let online = got
                        .as_ref()
                        .map_or(vec![FeatureValue::Null; FEATURES.len()], |r| {
                            r.values.clone()
                        });
                    assert_eq!(online, sets[0].0[&(user, t)]);
                }
            }
        }
    }
}
