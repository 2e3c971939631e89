//! Online store conformance: one suite, run against every backend (the embedded LMDB file
//! always; Redis on a throwaway `redis-server`; a Redis Cluster of six throwaway nodes;
//! DynamoDB on a throwaway `dynalite`), plus what is particular to each (reopening a
//! file, a full map, a file that is not a store, a dead and restarted Redis). Sharing the
//! embedded store between processes is tested with real processes in
//! `cli/tests/cli/online_shared.rs`, where the `skewless` binary is at hand.
//!
//! Each behaviour is a function over a [`Backend`]; `conformance!` generates one `#[test]` per
//! behaviour and backend (`online::embedded::*`, `online::redis::*`,
//! `online::redis_cluster::*`, `online::dynamodb::*`). What is particular to the cluster
//! (failover, redirections, readiness) is in `online_cluster.rs`, to DynamoDB in
//! `online_dynamodb.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use skewless_runtime::ErrorKind;
use skewless_runtime::online::{
    self, DynamoDbConfig, DynamoDbStore, EntityKey, FeatureValue, KeyValue, OnlineConfig,
    OnlineStore, RedisStore, Secret, StoredRow, WriteStats,
};
use skewless_tests::dynalite::Dynalite;
use skewless_tests::redis_cluster::RedisCluster;
use skewless_tests::redis_server::RedisServer;

/// A backend under test: a store, and a way to get a second, independent handle for
/// concurrent writers (a second connection for Redis; the same handle shared between threads
/// for the embedded store, which each process opens once).
trait Backend {
    fn store(&self) -> Arc<dyn OnlineStore>;
    fn second_writer(&self) -> Arc<dyn OnlineStore>;
    /// The keys of `a_large_batch_round_trips`: fewer against an emulator that takes one HTTP
    /// request per conditional write (still many batches of every kind).
    fn large_batch(&self) -> usize {
        50_000
    }
}

struct Embedded {
    _dir: tempfile::TempDir,
    store: Arc<dyn OnlineStore>,
}

impl Embedded {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = online::open(&OnlineConfig::Embedded {
            path: dir.path().join("nested/dirs/online.lmdb"),
            map_size: None,
        })
        .unwrap();
        assert_eq!(store.backend(), "embedded");
        Embedded { _dir: dir, store }
    }
}

impl Backend for Embedded {
    fn store(&self) -> Arc<dyn OnlineStore> {
        self.store.clone()
    }
    fn second_writer(&self) -> Arc<dyn OnlineStore> {
        self.store.clone()
    }
}

struct Redis {
    server: RedisServer,
    store: Arc<dyn OnlineStore>,
}

impl Redis {
    fn new() -> Self {
        let server = RedisServer::start();
        let store = online::open(&OnlineConfig::Redis { url: server.url() }).unwrap();
        assert_eq!(store.backend(), "redis");
        Redis { server, store }
    }
}

impl Backend for Redis {
    fn store(&self) -> Arc<dyn OnlineStore> {
        self.store.clone()
    }
    fn second_writer(&self) -> Arc<dyn OnlineStore> {
        online::open(&OnlineConfig::Redis {
            url: self.server.url(),
        })
        .unwrap()
    }
}

struct Cluster {
    cluster: RedisCluster,
    store: Arc<dyn OnlineStore>,
}

impl Cluster {
    fn new() -> Self {
        let cluster = RedisCluster::start();
        let store = online::open(&OnlineConfig::RedisCluster {
            nodes: cluster.urls(),
        })
        .unwrap();
        assert_eq!(store.backend(), "redis-cluster");
        Cluster { cluster, store }
    }
}

impl Backend for Cluster {
    fn store(&self) -> Arc<dyn OnlineStore> {
        self.store.clone()
    }
    fn second_writer(&self) -> Arc<dyn OnlineStore> {
        // Seeded by one node only: it learns the rest from the cluster.
        online::open(&OnlineConfig::RedisCluster {
            nodes: self.cluster.urls()[3..4].to_vec(),
        })
        .unwrap()
    }
}

pub(crate) struct Dynamo {
    pub(crate) server: Dynalite,
    pub(crate) config: DynamoDbConfig,
    store: Arc<dyn OnlineStore>,
}

impl Dynamo {
    pub(crate) fn new() -> Self {
        let server = Dynalite::start();
        let config = DynamoDbConfig {
            table: "skewless-online".into(),
            region: Some("us-east-1".into()),
            endpoint: Some(server.endpoint()),
            access_key_id: Some("test".into()),
            secret_access_key: Some(Secret::new("test-secret")),
            session_token: None,
        };
        DynamoDbStore::connect_lazily(&config)
            .unwrap()
            .create_table()
            .unwrap();
        let store = online::open(&OnlineConfig::DynamoDb(config.clone())).unwrap();
        assert_eq!(store.backend(), "dynamodb");
        Dynamo {
            server,
            config,
            store,
        }
    }
}

impl Backend for Dynamo {
    fn store(&self) -> Arc<dyn OnlineStore> {
        self.store.clone()
    }
    fn second_writer(&self) -> Arc<dyn OnlineStore> {
        online::open(&OnlineConfig::DynamoDb(self.config.clone())).unwrap()
    }
    fn large_batch(&self) -> usize {
        5_000
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(#[test] fn $name() { super::$name(&super::Embedded::new()); })*
        }
        mod redis {
            $(#[test] fn $name() { super::$name(&super::Redis::new()); })*
        }
        mod redis_cluster {
            $(#[test] fn $name() { super::$name(&super::Cluster::new()); })*
        }
        mod dynamodb {
            $(#[test] fn $name() { super::$name(&super::Dynamo::new()); })*
        }
    };
}

conformance!(
    every_value_type_round_trips_bit_exactly,
    unknown_keys_and_views_are_not_found,
    a_newer_row_replaces_an_older_one,
    an_older_row_never_replaces_a_newer_one,
    equal_rows_change_nothing,
    exact_version_ties_keep_the_greatest_stored_bytes_in_any_order,
    random_batches_keep_the_greatest_row_per_key_as_brute_force_says,
    created_ts_breaks_ties,
    the_newest_row_for_a_key_within_one_batch_wins,
    two_concurrent_writers_never_regress_a_value,
    views_are_isolated,
    reading_several_views_at_once_answers_each_in_order,
    a_large_batch_round_trips,
    very_long_entity_keys_are_distinct_entities,
);

fn key(id: i64) -> EntityKey {
    EntityKey::new([id])
}

/// A row whose content is a function of its version, so concurrent writers of one version
/// write identical rows.
fn row(event_ts: i64, created_ts: i64) -> StoredRow {
    StoredRow {
        event_ts,
        created_ts,
        digest: format!("sha256:{event_ts:x}{created_ts:x}"),
        values: vec![
            FeatureValue::Int64(event_ts),
            FeatureValue::Float64(created_ts as f64 / 3.0),
        ],
    }
}

fn stats(written: usize, skipped_older: usize) -> WriteStats {
    WriteStats {
        written,
        skipped_older,
    }
}

fn version_of(store: &dyn OnlineStore, view: &str, k: &EntityKey) -> Option<(i64, i64)> {
    store.read(view, std::slice::from_ref(k)).unwrap()[0]
        .as_ref()
        .map(StoredRow::version)
}

fn every_value_type_round_trips_bit_exactly(backend: &dyn Backend) {
    let store = backend.store();
    let nan64 = f64::from_bits(0x7ff4_dead_beef_0001); // a signalling NaN with a payload
    let nan32 = f32::from_bits(0xffc0_1234); // a negative quiet NaN with a payload
    let all_types = StoredRow {
        event_ts: -1,
        created_ts: i64::MAX,
        digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        values: vec![
            FeatureValue::Null,
            FeatureValue::Boolean(true),
            FeatureValue::Boolean(false),
            FeatureValue::Int32(i32::MIN),
            FeatureValue::Int64(i64::MIN),
            FeatureValue::Float32(nan32),
            FeatureValue::Float32(-0.0),
            FeatureValue::Float64(nan64),
            FeatureValue::Float64(f64::NEG_INFINITY),
            FeatureValue::Float64(5e-324),
            FeatureValue::Utf8(String::new()),
            FeatureValue::Utf8("räw 🦀 \0 \"quoted\"".into()),
            FeatureValue::Binary(vec![]),
            FeatureValue::Binary(vec![0, 255, 0, 1]),
            FeatureValue::Timestamp(-1_000_000),
            FeatureValue::Float32Vector(vec![1.0, nan32, -0.0, f32::MAX]),
            FeatureValue::Float32Vector(vec![]),
        ],
    };
    let composite = EntityKey(vec!["tenant-1".into(), 42i64.into()]);
    let empty_values = StoredRow {
        values: vec![],
        ..row(1, 1)
    };
    let rows = vec![
        (composite.clone(), all_types.clone()),
        (EntityKey::new([""]), empty_values.clone()),
    ];
    assert_eq!(store.write("all_types", &rows).unwrap(), stats(2, 0));
    let read = store
        .read("all_types", &[composite, EntityKey::new([""])])
        .unwrap();
    assert_eq!(read, [Some(all_types), Some(empty_values)]);
    // `FeatureValue`'s equality is bitwise; check the NaN payloads explicitly all the same.
    let values = &read[0].as_ref().unwrap().values;
    let FeatureValue::Float64(got) = values[7] else {
        panic!("{values:?}")
    };
    assert_eq!(got.to_bits(), nan64.to_bits());
    let FeatureValue::Float32(got) = values[5] else {
        panic!("{values:?}")
    };
    assert_eq!(got.to_bits(), nan32.to_bits());
}

fn unknown_keys_and_views_are_not_found(backend: &dyn Backend) {
    let store = backend.store();
    assert_eq!(store.read("never_written", &[key(1)]).unwrap(), [None]);
    assert_eq!(store.read("never_written", &[]).unwrap(), []);
    assert_eq!(store.write("v", &[]).unwrap(), stats(0, 0));
    // Keys whose values concatenate to the same text are different entities.
    let ab_c = EntityKey::new(["ab", "c"]);
    let a_bc = EntityKey::new(["a", "bc"]);
    store.write("v", &[(ab_c.clone(), row(1, 0))]).unwrap();
    let read = store
        .read(
            "v",
            &[key(1), a_bc, ab_c.clone(), EntityKey::new(["abc"]), ab_c],
        )
        .unwrap();
    assert_eq!(read, [None, None, Some(row(1, 0)), None, Some(row(1, 0))]);
    store.ping().unwrap();
}

fn a_newer_row_replaces_an_older_one(backend: &dyn Backend) {
    let store = backend.store();
    assert_eq!(
        store.write("v", &[(key(1), row(1, 0))]).unwrap(),
        stats(1, 0)
    );
    assert_eq!(
        store.write("v", &[(key(1), row(2, 0))]).unwrap(),
        stats(1, 0)
    );
    assert_eq!(store.read("v", &[key(1)]).unwrap(), [Some(row(2, 0))]);
}

fn an_older_row_never_replaces_a_newer_one(backend: &dyn Backend) {
    let store = backend.store();
    store.write("v", &[(key(1), row(10, 0))]).unwrap();
    // An older event, even materialized later (greater created_ts), loses.
    assert_eq!(
        store.write("v", &[(key(1), row(9, 99))]).unwrap(),
        stats(0, 1)
    );
    assert_eq!(
        store.write("v", &[(key(1), row(i64::MIN, 0))]).unwrap(),
        stats(0, 1)
    );
    assert_eq!(store.read("v", &[key(1)]).unwrap(), [Some(row(10, 0))]);
}

fn equal_rows_change_nothing(backend: &dyn Backend) {
    let store = backend.store();
    let first = row(5, 5);
    assert_eq!(
        store.write("v", &[(key(1), first.clone())]).unwrap(),
        stats(1, 0)
    );
    // Re-running the same window changes nothing.
    assert_eq!(
        store.write("v", &[(key(1), first.clone())]).unwrap(),
        stats(0, 1)
    );
    assert_eq!(
        store
            .write("v", &[(key(1), first.clone()), (key(1), first.clone())])
            .unwrap(),
        stats(0, 2)
    );
    assert_eq!(store.read("v", &[key(1)]).unwrap(), [Some(first)]);
}

/// Rows of one version whose stored bytes differ: long equal runs (past the Redis script's
/// 64-byte chunks), then a difference at a NUL byte, at a byte above 0x7f (where a signed or
/// locale-aware comparison goes wrong), in a length, in the digest, in a value's type.
fn tied_rows() -> Vec<StoredRow> {
    let tied = |digest: &str, tail: FeatureValue| StoredRow {
        event_ts: 7,
        created_ts: -3,
        digest: digest.into(),
        values: vec![FeatureValue::Binary(vec![0; 150]), tail],
    };
    vec![
        tied("sha256:aa", FeatureValue::Binary(vec![0x00, 0x00])),
        tied("sha256:aa", FeatureValue::Binary(vec![0x00, 0x01])),
        tied("sha256:aa", FeatureValue::Binary(vec![0x80, 0x00])),
        tied("sha256:aa", FeatureValue::Binary(vec![0x7f, 0xff])),
        tied("sha256:aa", FeatureValue::Binary(vec![0xff])),
        tied("sha256:aa", FeatureValue::Int64(-1)),
        tied("sha256:aa", FeatureValue::Null),
        tied("sha256:9a", FeatureValue::Binary(vec![0xff; 3])),
        tied("sha256:a", FeatureValue::Float64(f64::NAN)),
    ]
}

/// Whatever order rows of one version arrive in, alone or in one batch, the store keeps the
/// one with the greatest stored bytes (`compare_rows`), and a write counts as written exactly
/// when it is greater than what the key held.
fn exact_version_ties_keep_the_greatest_stored_bytes_in_any_order(backend: &dyn Backend) {
    let store = backend.store();
    let rows = tied_rows();
    let greatest = rows
        .iter()
        .max_by(|a, b| online::compare_rows(a, b).unwrap())
        .unwrap()
        .clone();
    // The same digest and the greatest tail: the longer Binary starting with 0x80.
    assert_eq!(greatest, rows[2]);
    let orders: Vec<Vec<usize>> = vec![
        (0..rows.len()).collect(),
        (0..rows.len()).rev().collect(),
        vec![2, 0, 1, 3, 4, 5, 6, 7, 8],
        vec![8, 7, 6, 5, 4, 3, 1, 0, 2],
        vec![4, 6, 0, 8, 2, 1, 7, 3, 5],
    ];
    for (n, order) in orders.iter().enumerate() {
        // One row per write call.
        let k = key(2 * n as i64);
        let mut held: Option<&StoredRow> = None;
        for &i in order {
            let new = &rows[i];
            let greater = held.is_none_or(|h| {
                online::compare_rows(new, h).unwrap() == std::cmp::Ordering::Greater
            });
            let expected = if greater { stats(1, 0) } else { stats(0, 1) };
            assert_eq!(
                store.write("ties", &[(k.clone(), new.clone())]).unwrap(),
                expected,
                "order {order:?}, row {i}"
            );
            if greater {
                held = Some(new);
            }
            // The same bytes again change nothing.
            assert_eq!(
                store.write("ties", &[(k.clone(), new.clone())]).unwrap(),
                stats(0, 1)
            );
        }
        // All in one write call.
        let batch: Vec<_> = order
            .iter()
            .map(|&i| (key(2 * n as i64 + 1), rows[i].clone()))
            .collect();
        assert_eq!(
            store.write("ties", &batch).unwrap(),
            stats(1, rows.len() - 1)
        );
        assert_eq!(
            store.read("ties", &[k, key(2 * n as i64 + 1)]).unwrap(),
            [Some(greatest.clone()), Some(greatest.clone())],
            "order {order:?}"
        );
    }
    // A newer version still wins over every tied row, and an older one loses.
    let newer = StoredRow {
        event_ts: 8,
        ..rows[0].clone()
    };
    assert_eq!(
        store.write("ties", &[(key(0), newer.clone())]).unwrap(),
        stats(1, 0)
    );
    assert_eq!(
        store.write("ties", &[(key(0), greatest.clone())]).unwrap(),
        stats(0, 1)
    );
    assert_eq!(store.read("ties", &[key(0)]).unwrap(), [Some(newer)]);
}

/// Random rows (few versions, so many exact ties; tails that differ anywhere, in length too)
/// written over a few hundred keys in random batches (sizes crossing the Redis store's 128
/// keys per script call, keys repeated within a batch): after each batch every key holds the
/// greatest row written to it so far, and the counts are as brute force says (a repeat within
/// a batch counts as skipped; a key's batch winner is written exactly when it beats the
/// held row).
fn random_batches_keep_the_greatest_row_per_key_as_brute_force_says(backend: &dyn Backend) {
    let store = backend.store();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    let keys = 300;
    let mut held: Vec<Option<StoredRow>> = vec![None; keys];
    let greater = |a: &StoredRow, b: &StoredRow| {
        online::compare_rows(a, b).unwrap() == std::cmp::Ordering::Greater
    };
    for round in 0..12 {
        let size = [1, 127, 128, 129, 300, 700][next(6) as usize];
        let batch: Vec<(usize, StoredRow)> = (0..size)
            .map(|_| {
                let k = next(keys as u64) as usize;
                let tail_len = next(4) as usize * 40;
                let mut tail = vec![0u8; tail_len];
                if tail_len > 0 {
                    let at = next(tail_len as u64) as usize;
                    tail[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][next(5) as usize];
                }
                let row = StoredRow {
                    event_ts: next(3) as i64,
                    created_ts: next(2) as i64 - 1,
                    digest: ["sha256:a", "sha256:b"][next(2) as usize].into(),
                    values: vec![FeatureValue::Binary(tail)],
                };
                (k, row)
            })
            .collect();
        let mut winners: std::collections::BTreeMap<usize, &StoredRow> = Default::default();
        for (k, row) in &batch {
            let slot = winners.entry(*k).or_insert(row);
            if greater(row, slot) {
                *slot = row;
            }
        }
        let mut written = 0;
        for (&k, &row) in &winners {
            if held[k].as_ref().is_none_or(|h| greater(row, h)) {
                held[k] = Some(row.clone());
                written += 1;
            }
        }
        let rows: Vec<(EntityKey, StoredRow)> = batch
            .iter()
            .map(|(k, row)| (key(*k as i64), row.clone()))
            .collect();
        assert_eq!(
            store.write("random", &rows).unwrap(),
            stats(written, size - written),
            "round {round}, {size} rows"
        );
        let all: Vec<EntityKey> = (0..keys).map(|k| key(k as i64)).collect();
        assert_eq!(store.read("random", &all).unwrap(), held, "round {round}");
    }
}

fn created_ts_breaks_ties(backend: &dyn Backend) {
    let store = backend.store();
    store.write("v", &[(key(1), row(5, 1))]).unwrap();
    assert_eq!(
        store.write("v", &[(key(1), row(5, 2))]).unwrap(),
        stats(1, 0)
    );
    assert_eq!(
        store.write("v", &[(key(1), row(5, 1))]).unwrap(),
        stats(0, 1)
    );
    assert_eq!(version_of(&*store, "v", &key(1)), Some((5, 2)));
    // Across the sign boundary of the timestamps' encoding too.
    store.write("v", &[(key(2), row(-1, -1))]).unwrap();
    assert_eq!(
        store.write("v", &[(key(2), row(-1, 0))]).unwrap(),
        stats(1, 0)
    );
    assert_eq!(
        store.write("v", &[(key(2), row(0, -5))]).unwrap(),
        stats(1, 0)
    );
    assert_eq!(version_of(&*store, "v", &key(2)), Some((0, -5)));
}

fn the_newest_row_for_a_key_within_one_batch_wins(backend: &dyn Backend) {
    let store = backend.store();
    let late_equal = StoredRow {
        digest: "sha256:late".into(),
        ..row(3, 0)
    };
    assert!(online::compare_rows(&late_equal, &row(3, 0)).unwrap() == std::cmp::Ordering::Greater);
    let batch = vec![
        (key(1), row(1, 0)),
        (key(2), row(7, 0)),
        (key(1), row(3, 0)),
        (key(1), row(2, 0)),
        (key(1), late_equal.clone()),
    ];
    assert_eq!(store.write("v", &batch).unwrap(), stats(2, 3));
    // Of the two rows of version (3, 0), the one with the greater stored bytes (its longer
    // digest) wins, although it came later.
    assert_eq!(
        store.read("v", &[key(1), key(2)]).unwrap(),
        [Some(late_equal), Some(row(7, 0))]
    );
    // A batch all older than the stored row writes nothing.
    let older = vec![(key(2), row(5, 0)), (key(2), row(6, 0))];
    assert_eq!(store.write("v", &older).unwrap(), stats(0, 2));
    assert_eq!(version_of(&*store, "v", &key(2)), Some((7, 0)));
}

/// Two writers write interleaved old and new versions of the same keys (one ascending, one
/// descending, so they cross), while a reader checks that no key's version ever goes down.
fn two_concurrent_writers_never_regress_a_value(backend: &dyn Backend) {
    const KEYS: i64 = 50;
    const VERSIONS: i64 = 60;
    let keys: Vec<EntityKey> = (0..KEYS).map(key).collect();
    let batch = |v: i64| -> Vec<(EntityKey, StoredRow)> {
        // Within a batch, also mix in an older version of every other key.
        keys.iter()
            .map(|k| {
                let id = match &k.values()[0] {
                    KeyValue::Int64(id) => *id,
                    other => panic!("{other}"),
                };
                let v = if id % 2 == 0 { v } else { (v - 7).max(0) };
                (k.clone(), row(v, v % 3))
            })
            .collect()
    };
    let writers = [backend.store(), backend.second_writer()];
    let reader = backend.store();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reads = s.spawn(|| {
            let mut seen = vec![None; keys.len()];
            let mut rounds = 0;
            while !done.load(Ordering::Relaxed) || rounds == 0 {
                let rows = reader.read("v", &keys).unwrap();
                for (i, r) in rows.iter().enumerate() {
                    let now = r.as_ref().map(StoredRow::version);
                    assert!(now >= seen[i], "key {i} went from {:?} to {now:?}", seen[i]);
                    seen[i] = now;
                }
                rounds += 1;
            }
            rounds
        });
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, store)| {
                let batch = &batch;
                s.spawn(move || {
                    for i in 0..VERSIONS {
                        let v = if w == 0 { i } else { VERSIONS - 1 - i };
                        store.write("v", &batch(v)).unwrap();
                        // And re-send an old version, as a retried job would.
                        store.write("v", &batch(v / 2)).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        assert!(reads.join().unwrap() > 0);
    });
    let last = VERSIONS - 1;
    let read = backend.store().read("v", &keys).unwrap();
    for (i, r) in read.into_iter().enumerate() {
        let expected = if i % 2 == 0 { last } else { last - 7 };
        assert_eq!(r, Some(row(expected, expected % 3)), "key {i}");
    }
}

fn views_are_isolated(backend: &dyn Backend) {
    let store = backend.store();
    // Views whose names extend each other, and names with Redis glob characters.
    let views = ["v", "v:w", "v*", "v:1", "w"];
    for (i, view) in views.iter().enumerate() {
        store.write(view, &[(key(1), row(i as i64, 0))]).unwrap();
    }
    for (i, view) in views.iter().enumerate() {
        assert_eq!(
            version_of(&*store, view, &key(1)),
            Some((i as i64, 0)),
            "{view}"
        );
    }
    store.delete_view("v").unwrap();
    assert_eq!(version_of(&*store, "v", &key(1)), None);
    for (i, view) in views.iter().enumerate().skip(1) {
        assert_eq!(
            version_of(&*store, view, &key(1)),
            Some((i as i64, 0)),
            "{view}"
        );
    }
    // A deleted view can be written again, and deleting an unknown view is fine.
    store.write("v", &[(key(1), row(0, 0))]).unwrap();
    assert_eq!(version_of(&*store, "v", &key(1)), Some((0, 0)));
    store.delete_view("never_written").unwrap();
}

fn reading_several_views_at_once_answers_each_in_order(backend: &dyn Backend) {
    let store = backend.store();
    store
        .write("a", &[(key(1), row(10, 0)), (key(2), row(20, 0))])
        .unwrap();
    store.write("b", &[(key(2), row(200, 0))]).unwrap();
    let a_keys = [key(2), key(3), key(1)];
    let b_keys = [key(1), key(2)];
    let answers = store
        .read_many(&[
            ("a", &a_keys),
            ("b", &b_keys),
            ("never_written", &[key(1)]),
            ("a", &[]),
        ])
        .unwrap();
    let versions: Vec<Vec<Option<i64>>> = answers
        .iter()
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_ref().map(|r| r.event_ts))
                .collect()
        })
        .collect();
    assert_eq!(
        versions,
        [
            vec![Some(20), None, Some(10)],
            vec![None, Some(200)],
            vec![None],
            vec![],
        ]
    );
    assert_eq!(store.read_many(&[]).unwrap().len(), 0);
}

fn a_large_batch_round_trips(backend: &dyn Backend) {
    let n = backend.large_batch();
    let store = backend.store();
    let rows: Vec<(EntityKey, StoredRow)> = (0..n as i64)
        .map(|i| {
            (
                EntityKey(vec![format!("user-{i}").into(), i.into()]),
                row(i, 1),
            )
        })
        .collect();
    let start = Instant::now();
    assert_eq!(store.write("big", &rows).unwrap(), stats(n, 0));
    let keys: Vec<EntityKey> = rows.iter().map(|(k, _)| k.clone()).collect();
    let read = store.read("big", &keys).unwrap();
    assert_eq!(read.len(), n);
    for ((_, expected), got) in rows.iter().zip(&read) {
        assert_eq!(got.as_ref(), Some(expected));
    }
    assert_eq!(store.write("big", &rows).unwrap(), stats(0, n));
    // Every third key newer, the others older than stored: counted key by key, whatever
    // the groups a backend sends them in.
    let mixed: Vec<(EntityKey, StoredRow)> = (rows.iter().enumerate())
        .map(|(i, (k, _))| {
            let version = if i % 3 == 0 {
                i as i64 + 1
            } else {
                i as i64 - 1
            };
            (k.clone(), row(version, 1))
        })
        .collect();
    let newer = n.div_ceil(3);
    assert_eq!(store.write("big", &mixed).unwrap(), stats(newer, n - newer));
    let read = store.read("big", &keys).unwrap();
    for (i, got) in read.iter().enumerate() {
        let version = if i % 3 == 0 { i as i64 + 1 } else { i as i64 };
        assert_eq!(got.as_ref(), Some(&row(version, 1)), "key {i}");
    }
    eprintln!(
        "{}: {n} keys written, read and rewritten in {:?}",
        store.backend(),
        start.elapsed()
    );
}

/// Keys longer than an embedded store's key limit (LMDB's 511 bytes), differing only at the
/// end or only in length, are still separate entities, and views stay apart.
fn very_long_entity_keys_are_distinct_entities(backend: &dyn Backend) {
    let store = backend.store();
    let long = "k".repeat(3000);
    let keys = [
        EntityKey::new([long.clone()]),
        EntityKey::new([format!("{long}x")]),
        EntityKey::new([format!("{long}y")]),
        EntityKey(vec![long.clone().into(), 1i64.into()]),
        EntityKey::new(["k".repeat(505)]),
        EntityKey::new(["k".repeat(506)]),
    ];
    let rows: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), row(i as i64, 0)))
        .collect();
    assert_eq!(store.write("long", &rows).unwrap(), stats(keys.len(), 0));
    let read = store.read("long", &keys).unwrap();
    for (i, r) in read.iter().enumerate() {
        assert_eq!(r.as_ref(), Some(&row(i as i64, 0)), "key {i}");
    }
    assert_eq!(store.read("long2", &keys[..1]).unwrap(), [None]);
    // The ordering rule holds for them as for any key.
    assert_eq!(
        store
            .write("long", &[(keys[0].clone(), row(-1, 0))])
            .unwrap(),
        stats(0, 1)
    );
    store.delete_view("long").unwrap();
    assert_eq!(store.read("long", &keys[..1]).unwrap(), [None]);
}

#[test]
fn the_embedded_store_persists_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("online.lmdb");
    {
        let store = online::EmbeddedStore::open(&path).unwrap();
        store.write("v", &[(key(1), row(3, 4))]).unwrap();
    }
    let store = online::EmbeddedStore::open(&path).unwrap();
    assert_eq!(store.read("v", &[key(1)]).unwrap(), [Some(row(3, 4))]);
    assert_eq!(
        store.write("v", &[(key(1), row(3, 3))]).unwrap(),
        stats(0, 1)
    );
}

#[test]
fn a_second_open_in_one_process_says_to_share_the_handle() {
    // Processes share the file (see cli/tests/cli/online_shared.rs); within one process LMDB
    // allows one handle, which its threads share.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("online.lmdb");
    let first = online::EmbeddedStore::open(&path).unwrap();
    let e = online::EmbeddedStore::open(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("already open in this process"),
        "{message}"
    );
    // Once the first handle is gone, the file opens again.
    drop(first);
    online::EmbeddedStore::open(&path).unwrap();
}

#[test]
fn a_full_embedded_store_names_the_setting_and_keeps_what_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("online.lmdb");
    let store = online::EmbeddedStore::builder(&path)
        .map_size(1 << 20)
        .open()
        .unwrap();
    store.write("v", &[(key(1), row(1, 0))]).unwrap();
    // About 4 MiB of rows into a 1 MiB map.
    let big: Vec<(EntityKey, StoredRow)> = (0..64i64)
        .map(|i| {
            let mut r = row(2, i);
            r.values = vec![FeatureValue::Binary(vec![7; 64 << 10])];
            (key(i), r)
        })
        .collect();
    let e = store.write("v", &big).unwrap_err();
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("is full"), "{message}");
    assert!(
        message.contains("1 MiB") && message.contains("map_size"),
        "{message}"
    );
    // The failed call committed nothing; the store still reads and writes.
    assert_eq!(
        store.read("v", &[key(1), key(2)]).unwrap(),
        [Some(row(1, 0)), None]
    );
    assert_eq!(
        store.write("v", &[(key(1), row(3, 0))]).unwrap(),
        stats(1, 0)
    );
}

#[test]
fn an_embedded_store_path_holding_another_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "x".repeat(20_000)).unwrap();
    let e = online::EmbeddedStore::open(&path).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("not an embedded online store"),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), "x".repeat(20_000).as_bytes());

    // A store of an earlier version (redb), under the old default name beside the new one.
    let old = dir.path().join("online.redb");
    std::fs::write(&old, b"redb\x1a\x0a\xa9\x0d\x0a...").unwrap();
    let e = online::open(&OnlineConfig::Embedded {
        path: dir.path().join("online.lmdb"),
        map_size: None,
    })
    .unwrap_err();
    let message = e.to_string();
    assert!(message.contains(&old.display().to_string()), "{message}");
    assert!(message.contains("skewless materialize --all"), "{message}");
    assert!(!dir.path().join("online.lmdb").exists());
}

#[test]
fn an_unusable_map_size_is_refused_with_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let e = online::EmbeddedStore::builder(dir.path().join("online.lmdb"))
        .map_size(1000)
        .open()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let message = e.to_string();
    assert!(
        message.contains("`[online] map_size` is 1000 bytes"),
        "{message}"
    );
    assert!(message.contains("at least 1048576"), "{message}");
}

#[test]
fn an_unknown_backend_type_lists_the_known_ones() {
    let e = serde_json::from_str::<OnlineConfig>(r#"{"type": "dynamo"}"#).unwrap_err();
    let message = e.to_string();
    assert!(
        message.contains("embedded") && message.contains("redis"),
        "{message}"
    );
}

fn assert_unavailable<T: std::fmt::Debug>(
    result: skewless_runtime::Result<T>,
    url: &str,
    started: Instant,
) {
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let message = e.to_string();
    assert!(message.contains(url), "{message}");
    assert!(message.contains("is redis-server running?"), "{message}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "took {:?}: {message}",
        started.elapsed()
    );
}

#[test]
fn a_dead_redis_is_unavailable_and_a_restarted_one_is_used_again() {
    let mut server = RedisServer::start();
    let url = server.url();
    let store = online::open(&OnlineConfig::Redis { url: url.clone() }).unwrap();
    store.write("v", &[(key(1), row(1, 0))]).unwrap();

    server.kill();
    let started = Instant::now();
    assert_unavailable(store.write("v", &[(key(1), row(2, 0))]), &url, started);
    assert_unavailable(store.read("v", &[key(1)]), &url, started);
    assert_unavailable(store.ping(), &url, started);
    assert_unavailable(RedisStore::connect(&url), &url, started);

    // Same port, new (empty: persistence is off) server: the old handle reconnects.
    let _server = RedisServer::start_on(server.port());
    store.ping().unwrap();
    assert_eq!(store.read("v", &[key(1)]).unwrap(), [None]);
    store.write("v", &[(key(1), row(2, 0))]).unwrap();
    let fresh = RedisStore::connect(&url).unwrap();
    assert_eq!(fresh.read("v", &[key(1)]).unwrap(), [Some(row(2, 0))]);
}

#[test]
fn a_redis_restart_between_calls_is_transparent() {
    // Pooled connections that predate the restart are dropped and the call retried.
    let mut server = RedisServer::start();
    let url = server.url();
    let store = RedisStore::connect(&url).unwrap();
    store.write("v", &[(key(1), row(1, 0))]).unwrap();
    server.kill();
    let _server = RedisServer::start_on(server.port());
    assert_eq!(
        store.write("v", &[(key(1), row(1, 0))]).unwrap(),
        stats(1, 0)
    );
    assert_eq!(store.read("v", &[key(1)]).unwrap(), [Some(row(1, 0))]);
}

#[test]
fn redis_passwords_never_appear_in_errors() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = RedisStore::connect(&format!("redis://me:hunter2@127.0.0.1:{port}")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
    assert!(e.to_string().contains("me:***@127.0.0.1"), "{e}");
}
