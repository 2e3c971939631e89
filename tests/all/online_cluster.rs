//! What is particular to the Redis Cluster online store (the conformance suite in `online.rs`
//! runs against it too): a master killed mid-load, readiness that follows the cluster, and
//! errors that name the seeds without their passwords.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use skewless_runtime::ErrorKind;
use skewless_runtime::online::{
    self, EntityKey, FeatureValue, OnlineConfig, OnlineStore, RedisClusterStore, StoredRow,
};
use skewless_tests::redis_cluster::RedisCluster;
use skewless_tests::redis_server::free_port;

fn row(version: i64) -> StoredRow {
    StoredRow {
        event_ts: version,
        created_ts: 0,
        digest: "sha256:failover".into(),
        values: vec![FeatureValue::Int64(version)],
    }
}

/// A writer writes ever newer versions of 300 entities (spread over every master) and a
/// reader reads them all, in loops, while a master is killed. Until the replica is promoted
/// calls may fail, but only as `Unavailable`; afterwards both go on through the same store
/// handle; and no read ever returns a version older than one acknowledged before the read
/// began (writes wait for a replica, so the promotion loses none).
#[test]
fn a_killed_master_fails_over_without_losing_or_regressing_a_value() {
    let mut cluster = RedisCluster::start();
    let store = online::open(&OnlineConfig::RedisCluster {
        nodes: cluster.urls(),
    })
    .unwrap();
    let keys: Vec<EntityKey> = (0..300i64).map(|i| EntityKey::new([i])).collect();
    let acked = AtomicI64::new(0);
    let reads_ok = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (write_errors, read_errors) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(90);

    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut version = 0;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                version += 1;
                let batch: Vec<_> = keys.iter().map(|k| (k.clone(), row(version))).collect();
                match store.write("v", &batch) {
                    Ok(_) => acked.store(version, Ordering::SeqCst),
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                        write_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        let reader = s.spawn(|| {
            let mut seen = vec![0; keys.len()];
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let floor = acked.load(Ordering::SeqCst);
                match store.read("v", &keys) {
                    Ok(rows) => {
                        for (i, r) in rows.iter().enumerate() {
                            let got = r.as_ref().map_or(0, |r| r.event_ts);
                            assert!(
                                got >= floor && got >= seen[i],
                                "key {i}: read version {got}, after {floor} was acknowledged \
                                 and {} read",
                                seen[i]
                            );
                            seen[i] = got;
                        }
                        reads_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                        read_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });

        let wait_for = |what: &str, done: &dyn Fn() -> bool| {
            while !done() {
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what} (acknowledged {}, reads {}, write errors {}, \
                     read errors {})",
                    acked.load(Ordering::SeqCst),
                    reads_ok.load(Ordering::Relaxed),
                    write_errors.load(Ordering::Relaxed),
                    read_errors.load(Ordering::Relaxed),
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        wait_for("writes before the kill", &|| {
            acked.load(Ordering::SeqCst) >= 10
        });

        let victim = cluster.masters()[0];
        cluster.kill(victim);
        let killed_at = acked.load(Ordering::SeqCst);
        // A failover takes at least the node timeout (1 s): the store is not ready meanwhile.
        let e = store.ping().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains(&victim.to_string()), "{e}");

        cluster.wait_until_healthy().unwrap();
        assert!(!cluster.masters().contains(&victim));
        wait_for("readiness after the failover", &|| store.ping().is_ok());
        let reads_before = reads_ok.load(Ordering::Relaxed);
        let healed_at = acked.load(Ordering::SeqCst).max(killed_at);
        wait_for("writes after the failover", &|| {
            acked.load(Ordering::SeqCst) >= healed_at + 5
        });
        wait_for("reads after the failover", &|| {
            reads_ok.load(Ordering::Relaxed) >= reads_before + 5
        });
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        reader.join().unwrap();
    });

    let last = acked.load(Ordering::SeqCst);
    for (i, r) in store.read("v", &keys).unwrap().iter().enumerate() {
        let got = r.as_ref().map_or(0, |r| r.event_ts);
        assert!(got >= last, "key {i}: {got} < acknowledged {last}");
    }
    eprintln!(
        "failover: {last} versions acknowledged; {} write and {} read calls failed during it",
        write_errors.load(Ordering::Relaxed),
        read_errors.load(Ordering::Relaxed)
    );
}

/// Slots move between masters while a writer and a reader run: the store follows `ASK` (a
/// key already moved out of a migrating slot) and `MOVED` (a slot moved) without a failed
/// call, and every value stays the newest written.
#[test]
fn resharding_under_load_is_followed_without_errors() {
    let cluster = RedisCluster::start();
    let store = online::open(&OnlineConfig::RedisCluster {
        nodes: cluster.urls(),
    })
    .unwrap();
    let keys: Vec<EntityKey> = (0..2000i64).map(|i| EntityKey::new([i])).collect();
    let all = |version| -> Vec<_> { keys.iter().map(|k| (k.clone(), row(version))).collect() };
    store.write("v", &all(1)).unwrap();
    let masters = cluster.masters();
    let stop = AtomicBool::new(false);
    let last = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut version = 1;
            while !stop.load(Ordering::Relaxed) {
                version += 1;
                store.write("v", &all(version)).unwrap();
                for r in store.read("v", &keys).unwrap() {
                    assert_eq!(r.map(|r| r.event_ts), Some(version));
                }
            }
            version
        });
        cluster.reshard(masters[0], masters[1], 1500);
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap()
    });
    assert!(last > 2, "the load ran during the resharding");
    // After the last slot moved, the store's map may still be stale: MOVED is followed.
    let read = store.read("v", &keys).unwrap();
    assert!(
        read.iter()
            .all(|r| r.as_ref().map(|r| r.event_ts) == Some(last))
    );
    store.ping().unwrap();
}

#[test]
fn one_seed_is_enough_and_a_dead_cluster_is_unavailable_by_name() {
    // Nothing listens on these ports: the error names every seed, without the password.
    let (a, b) = (free_port(), free_port());
    let nodes = vec![
        format!("redis://me:hunter2@127.0.0.1:{a}"),
        format!("redis://127.0.0.1:{b}"),
    ];
    let started = Instant::now();
    let e = RedisClusterStore::connect(&nodes).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let message = format!("{e} {e:?}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(
        message.contains(&format!("me:***@127.0.0.1:{a}")),
        "{message}"
    );
    assert!(message.contains(&format!("127.0.0.1:{b}")), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5), "{message}");
    // Opened lazily, a dead cluster fails the first call instead, the same way.
    let lazy = online::open_lazily(&OnlineConfig::RedisCluster { nodes }).unwrap();
    let e = lazy.read("v", &[EntityKey::new([1i64])]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let e = online::open(&OnlineConfig::RedisCluster { nodes: vec![] }).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");

    // A live cluster, reached through a replica's address alone.
    let cluster = RedisCluster::start();
    let masters = cluster.masters();
    let replica = cluster
        .urls()
        .into_iter()
        .find(|u| !masters.iter().any(|m| u.ends_with(&format!(":{m}"))))
        .unwrap();
    let store = RedisClusterStore::connect(&[replica]).unwrap();
    let keys: Vec<EntityKey> = (0..100i64).map(|i| EntityKey::new([i])).collect();
    let rows: Vec<_> = keys.iter().map(|k| (k.clone(), row(7))).collect();
    assert_eq!(store.write("v", &rows).unwrap().written, 100);
    // The documented layout: the entity (hex of its encoding) as the hash tag, then the view.
    assert!(cluster.exists("skewless:{010000000000000007}:v"));
    assert!(!cluster.exists("skewless:{010000000000000007}:w"));
    assert!(store.read("v", &keys).unwrap().iter().all(Option::is_some));
}
