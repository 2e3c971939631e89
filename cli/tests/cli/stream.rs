//! `skewless stream` as a process against a real redis-server: stopped by SIGINT while it
//! waits in a blocking read, and by SIGTERM, it commits what it buffered, acknowledges it,
//! prints its summary and exits 0; killed (SIGKILL) mid-stream and started again, it loses
//! nothing and doubles nothing in the source table.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skewless_tests::redis_server::RedisServer;

use crate::common::{ok, skewless, stop};

const STREAM: &str = "txns";
const GROUP: &str = "g";

fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(redis.port().to_string())
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value after `name` in `redis-cli XINFO GROUPS`'s lines.
fn group_field(redis: &RedisServer, name: &str) -> Option<String> {
    let info = redis_cli(redis, &["XINFO", "GROUPS", STREAM]);
    let mut lines = info.lines();
    while let Some(line) = lines.next() {
        if line == name {
            return lines.next().map(str::to_owned);
        }
    }
    None
}

fn pending(redis: &RedisServer) -> String {
    let out = redis_cli(redis, &["XPENDING", STREAM, GROUP]);
    out.lines().next().unwrap_or_default().to_owned()
}

/// The row of message `i`: user `1 + i % 5`, event time `i` seconds after `start_us`.
fn row(i: i64, start_us: i64) -> String {
    format!(
        r#"{{"user_id": {}, "event_ts": {}, "amount": {}.5, "balance_before": 100.0}}"#,
        1 + i % 5,
        start_us + 1_000_000 * i,
        i
    )
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

fn add(redis: &RedisServer, from: i64, n: i64) {
    let start_us = now_us() - 1_000_000 * 1_000;
    for i in from..from + n {
        redis_cli(redis, &["XADD", STREAM, "*", "row", &row(i, start_us)]);
    }
}

fn start(repo: &Path, redis: &RedisServer) -> Child {
    start_with(repo, redis, &[])
}

fn start_with(repo: &Path, redis: &RedisServer, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_skewless"))
        .args(["stream", "--push-source", "txn_push", "--redis"])
        .arg(redis.url())
        .args(["--stream", STREAM, "--group", GROUP, "--consumer", "c1"])
        .args(args)
        .arg("--repo")
        .arg(repo)
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs")
}

/// Waits until every message was read (and none is being delivered), then a little more, so
/// that the consumer waits in its blocking read; sends `signal`; the exit status and stderr.
fn stop_when_idle(mut child: Child, redis: &RedisServer, signal: &str) -> (bool, String) {
    let started = Instant::now();
    while group_field(redis, "lag").as_deref() != Some("0") {
        assert!(started.elapsed() < Duration::from_secs(60), "not consumed");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(600));
    let status = stop(&mut child, signal, Duration::from_secs(20));
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (status.success(), log)
}

/// A repo with push source `txn_push` over `raw.transactions` (one row ingested) and batch
/// view `txn`, applied, committing every `commit_interval`.
fn stream_repo(repo: &Path, commit_interval: &str) {
    crate::common::write_txn_repo(repo, "stream", None);
    let mut toml = std::fs::read_to_string(repo.join("skewless.toml")).unwrap();
    toml.push_str(&format!(
        "\n[[push_source]]\nname = \"txn_push\"\nsource = \"raw.transactions\"\n\n\
         [push]\ncommit_interval = \"{commit_interval}\"\n"
    ));
    std::fs::write(repo.join("skewless.toml"), toml).unwrap();
    std::fs::write(
        repo.join("txns.csv"),
        "user_id,event_ts,amount,balance_before\n1,2024-01-01T00:00:00Z,1.5,10.0\n",
    )
    .unwrap();
    let csv = repo.join("txns.csv");
    ok(&skewless(
        repo,
        &[
            "ingest",
            "raw.transactions",
            "--from",
            csv.to_str().unwrap(),
            "--create",
        ],
    ));
    ok(&skewless(repo, &["apply"]));
}

#[test]
fn ctrl_c_and_sigterm_stop_the_consumer_cleanly_committing_what_it_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    // Nothing is committed before the consumer stops: the stop commits the buffer.
    stream_repo(repo, "1h");
    let redis = RedisServer::start();
    add(&redis, 0, 40);

    let (ok_exit, log) = stop_when_idle(start(repo, &redis), &redis, "-INT");
    assert!(ok_exit, "{log}");
    assert!(!log.contains("error"), "{log}");
    assert!(
        log.contains("stopped: 40 messages read, 40 rows committed"),
        "{log}"
    );
    assert_eq!(pending(&redis), "0");

    // Again, stopped by SIGTERM: it continues after what it committed.
    add(&redis, 40, 7);
    let (ok_exit, log) = stop_when_idle(start(repo, &redis), &redis, "-TERM");
    assert!(ok_exit, "{log}");
    assert!(log.contains("committed up to"), "{log}");
    assert!(
        log.contains("stopped: 7 messages read, 7 rows committed"),
        "{log}"
    );
    assert_eq!(pending(&redis), "0");
}

/// The (user, event time) of every row of the source table, sorted.
fn source_rows(repo: &Path) -> Vec<(i64, i64)> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    let repo = skewless_runtime::registry::FeatureRepo::open(repo).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let offline = rt
        .block_on(skewless_runtime::offline::OfflineStore::open(
            &repo.offline_config(),
        ))
        .unwrap();
    let table = skewless_runtime::offline::TableName::parse("raw.transactions").unwrap();
    let batches = rt
        .block_on(offline.scan_collect(&table, Default::default()))
        .unwrap();
    let mut rows = Vec::new();
    for batch in batches {
        let users = batch
            .column_by_name("user_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let times = batch
            .column_by_name("event_ts")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        rows.extend((0..batch.num_rows()).map(|i| (users.value(i), times.value(i))));
    }
    rows.sort_unstable();
    rows
}

#[test]
fn a_consumer_process_killed_mid_stream_and_started_again_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    stream_repo(repo, "100ms");
    let before = source_rows(repo);
    let redis = RedisServer::start();
    let n = 20_000;
    let start_us = now_us() - 1_000_000 * 10_000;
    // One pipelined batch of XADDs.
    let script: String = (0..n)
        .map(|i| format!("XADD {STREAM} * row '{}'\n", row(i, start_us)))
        .collect();
    let mut cli = Command::new("redis-cli")
        .arg("-p")
        .arg(redis.port().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut cli.stdin.take().unwrap(), script.as_bytes()).unwrap();
    assert!(cli.wait().unwrap().success());

    // Killed once some rows are committed, while others are read, applied and not committed
    // or not read at all.
    let mut child = start_with(repo, &redis, &["--batch", "20"]);
    let started = Instant::now();
    loop {
        let lag: i64 = group_field(&redis, "lag")
            .and_then(|l| l.parse().ok())
            .unwrap_or(n);
        let committed = source_rows(repo).len() > before.len();
        if committed && lag < n {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the consumer stopped");
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let committed = source_rows(repo).len() - before.len();
    assert!(
        committed < n as usize,
        "killed too late: {committed} rows committed"
    );

    // Started again: it drains the stream.
    let (ok_exit, log) = stop_when_idle(start(repo, &redis), &redis, "-INT");
    assert!(ok_exit, "{log}");
    let mut expected: Vec<(i64, i64)> = before;
    expected.extend((0..n).map(|i| (1 + i % 5, start_us + 1_000_000 * i)));
    expected.sort_unstable();
    assert_eq!(source_rows(repo), expected, "{log}");
    assert_eq!(pending(&redis), "0");
}
