//! The embedded online store shared between processes, with real processes on real files: a
//! `skewless serve` keeps answering while a `skewless materialize` of the same repo writes,
//! and serves the new values after it; a process holding the store open sees another
//! process's writes without reopening; and two processes writing the same keys at once never
//! regress a value. And a repo left with an earlier version's store is told what to do.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use skewless_runtime::online::{self, EntityKey, FeatureValue, OnlineStore, StoredRow};
use skewless_runtime::registry::FeatureRepo;

use crate::common::{http, ok, skewless};

/// A feature repo on the default (embedded) online store, with one transaction per user of
/// `amounts`, an hour ago, ingested, applied and materialized.
fn materialized_repo(amounts: &[(i64, f64)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    crate::common::write_txn_repo(repo, "shared", None);
    ingest(repo, amounts, 3600, "--create");
    ok(&skewless(repo, &["apply"]));
    ok(&skewless(repo, &["materialize", "--all"]));
    dir
}

/// Appends one transaction per user of `amounts`, `ago` seconds ago, to the source table.
fn ingest(repo: &Path, amounts: &[(i64, f64)], ago: i64, flag: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = chrono::DateTime::from_timestamp(now - ago, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut csv = String::from("user_id,event_ts,amount,balance_before\n");
    for (user, amount) in amounts {
        // One decimal always, so that the column is inferred as float64.
        csv.push_str(&format!("{user},{at},{amount:.1},1000.0\n"));
    }
    let file = repo.join(format!("txns-{ago}.csv"));
    std::fs::write(&file, csv).unwrap();
    let mut args = vec![
        "ingest",
        "raw.transactions",
        "--from",
        file.to_str().unwrap(),
    ];
    if !flag.is_empty() {
        args.push(flag);
    }
    ok(&skewless(repo, &args));
}

/// `txn:amount_log1p` of `user` as the online store holds it.
fn stored_amount_log1p(store: &dyn OnlineStore, user: i64) -> Option<f64> {
    let rows = store.read("txn", &[EntityKey::new([user])]).unwrap();
    let row = rows.into_iter().next().unwrap()?;
    // The transform's first output is `amount_log1p`.
    match row.values.first() {
        Some(FeatureValue::Float64(v)) => Some(*v),
        other => panic!("amount_log1p is {other:?}"),
    }
}

/// `skewless serve` on `repo`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(repo: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skewless"))
            .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
            .arg(repo)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap());
        let addr = loop {
            let mut line = String::new();
            assert_ne!(log.read_line(&mut line).unwrap(), 0, "serve exited early");
            if let Some(rest) = line.strip_prefix("serving on http://") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
        Server { child, addr }
    }

    fn amount_log1p(&self, user: i64) -> (u16, String) {
        http(
            &self.addr,
            "POST",
            "/get-online-features",
            &format!(
                r#"{{"features": ["txn:amount_log1p"], "entities": {{"user_id": [{user}]}}}}"#
            ),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const USERS: i64 = 200;

#[test]
fn a_server_keeps_answering_during_a_materialize_and_serves_its_values_after() {
    let first: Vec<(i64, f64)> = (1..=USERS).map(|u| (u, 100.0 + u as f64)).collect();
    let dir = materialized_repo(&first);
    let repo = dir.path();
    let server = Server::start(repo);
    let (status, body) = server.amount_log1p(7);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&107.0f64.ln_1p().to_string()), "{body}");

    // Newer transactions for every user, then a materialize while the server is up.
    let second: Vec<(i64, f64)> = (1..=USERS).map(|u| (u, 5000.0 + u as f64)).collect();
    ingest(repo, &second, 60, "");
    let job_done = AtomicBool::new(false);
    let answered_during_job = std::thread::scope(|s| {
        let requests = s.spawn(|| {
            let mut answered = 0;
            let mut user = 0;
            // At least one request, however quickly the job ends.
            while answered == 0 || !job_done.load(Ordering::SeqCst) {
                user = user % USERS + 1;
                let (status, body) = server.amount_log1p(user);
                assert_eq!(status, 200, "user {user} during the job: {body}");
                assert!(
                    body.contains("PRESENT"),
                    "user {user} during the job: {body}"
                );
                answered += 1;
            }
            answered
        });
        let job = skewless(repo, &["materialize", "--all"]);
        job_done.store(true, Ordering::SeqCst);
        let answered = requests.join().unwrap();
        ok(&job);
        answered
    });
    assert!(answered_during_job > 0);

    for user in [1, 7, USERS] {
        let (status, body) = server.amount_log1p(user);
        assert_eq!(status, 200, "{body}");
        let expected = (5000.0 + user as f64).ln_1p();
        assert!(body.contains(&expected.to_string()), "user {user}: {body}");
    }
    // And `skewless get`, a third process, reads the store the server holds open.
    let got = ok(&skewless(repo, &["get", "txn", "7"]));
    assert!(got.contains("present"), "{got}");
}

#[test]
fn a_process_holding_the_store_sees_another_process_writes_without_reopening() {
    let dir = materialized_repo(&[(1, 10.0), (2, 20.0)]);
    let repo = dir.path();
    let feature_repo = FeatureRepo::open(repo).unwrap();
    let store = online::open(&feature_repo.online_config()).unwrap();
    assert_eq!(stored_amount_log1p(&*store, 1), Some(10.0f64.ln_1p()));

    ingest(repo, &[(1, 11.0), (3, 30.0)], 60, "");
    ok(&skewless(repo, &["materialize", "--all"]));
    assert_eq!(stored_amount_log1p(&*store, 1), Some(11.0f64.ln_1p()));
    assert_eq!(stored_amount_log1p(&*store, 2), Some(20.0f64.ln_1p()));
    assert_eq!(stored_amount_log1p(&*store, 3), Some(30.0f64.ln_1p()));
}

#[test]
fn a_repo_with_an_earlier_store_is_told_what_to_do_and_recovers_by_doing_it() {
    let dir = materialized_repo(&[(1, 10.0)]);
    let repo = dir.path();
    // The state an earlier version left: its redb file under the old default name, no LMDB
    // store yet.
    let state = repo.join(".skewless");
    std::fs::remove_file(state.join("online.lmdb")).unwrap();
    std::fs::remove_file(state.join("online.lmdb-lock")).unwrap();
    let old = state.join("online.redb");
    std::fs::write(&old, b"redb\x1a\x0a\xa9\x0d\x0a and its pages").unwrap();
    for args in [
        &["get", "txn", "1"][..],
        &["serve", "--addr", "127.0.0.1:0"],
    ] {
        let out = skewless(repo, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&old.display().to_string()), "{args:?}: {err}");
        assert!(err.contains("delete it"), "{args:?}: {err}");
        assert!(
            err.contains("skewless materialize --all"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_file(&old).unwrap();
    ok(&skewless(repo, &["materialize", "--all"]));
    let got = ok(&skewless(repo, &["get", "txn", "1"]));
    assert!(got.contains("present"), "{got}");
}

/// The environment variable that makes [`writer_process`] write: the store's path.
const WRITER_STORE: &str = "SKEWLESS_TEST_WRITER_STORE";
const KEYS: i64 = 50;
const VERSIONS: i64 = 60;

/// The rows of version `v`: even keys at `v`, odd keys at an older version.
fn batch(v: i64) -> Vec<(EntityKey, StoredRow)> {
    (0..KEYS)
        .map(|id| {
            let v = if id % 2 == 0 { v } else { (v - 7).max(0) };
            let row = StoredRow {
                event_ts: v,
                created_ts: v % 3,
                digest: format!("sha256:{v:x}"),
                values: vec![FeatureValue::Int64(v)],
            };
            (EntityKey::new([id]), row)
        })
        .collect()
}

/// Writes every version of [`batch`], each followed by an older one as a retried job would,
/// ascending or descending.
fn write_all_versions(store: &dyn OnlineStore, descending: bool) {
    for i in 0..VERSIONS {
        let v = if descending { VERSIONS - 1 - i } else { i };
        store.write("v", &batch(v)).unwrap();
        store.write("v", &batch(v / 2)).unwrap();
    }
}

/// Not a test of its own: the second process of
/// [`two_processes_writing_the_same_keys_never_regress_a_value`], which runs this test binary
/// again with only this function selected and [`WRITER_STORE`] set.
#[test]
#[ignore = "the child process of two_processes_writing_the_same_keys_never_regress_a_value"]
fn writer_process() {
    let Some(path) = std::env::var_os(WRITER_STORE) else {
        return;
    };
    let store = online::EmbeddedStore::open(PathBuf::from(path)).unwrap();
    write_all_versions(&store, true);
}

/// [`writer_process`]'s name as the test harness knows it: its path in this test crate.
fn writer_process_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, path)| path);
    format!("{module}::writer_process")
}

#[test]
fn two_processes_writing_the_same_keys_never_regress_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("online.lmdb");
    let store = online::EmbeddedStore::open(&path).unwrap();
    let keys: Vec<EntityKey> = (0..KEYS).map(|id| EntityKey::new([id])).collect();
    let other = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &writer_process_name(),
            "--ignored",
            "--nocapture",
        ])
        .env(WRITER_STORE, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let writer_done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reads = s.spawn(|| {
            let mut seen = vec![None; keys.len()];
            let mut rounds = 0;
            while !writer_done.load(Ordering::SeqCst) || rounds == 0 {
                for (i, r) in store.read("v", &keys).unwrap().iter().enumerate() {
                    let now = r.as_ref().map(StoredRow::version);
                    assert!(now >= seen[i], "key {i} went from {:?} to {now:?}", seen[i]);
                    seen[i] = now;
                }
                rounds += 1;
            }
        });
        write_all_versions(&store, false);
        let out = other.wait_with_output().unwrap();
        writer_done.store(true, Ordering::SeqCst);
        reads.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the other writer failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The child ran the writer, not zero tests.
        assert!(stdout.contains("1 passed"), "{stdout}");
    });
    let last = VERSIONS - 1;
    for (id, r) in store.read("v", &keys).unwrap().into_iter().enumerate() {
        let expected = if id % 2 == 0 { last } else { last - 7 };
        assert_eq!(
            r.map(|r| r.version()),
            Some((expected, expected % 3)),
            "key {id}"
        );
    }
}

#[test]
fn get_prints_the_aggregates_of_an_aggregate_view_at_the_current_time() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    crate::common::write_txn_repo(repo, "aggregates", None);
    let mut toml = std::fs::read_to_string(repo.join("skewless.toml")).unwrap();
    toml.push_str(
        r#"
[[aggregate_view]]
name = "agg"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
aggregations = [
    { name = "count_2h", function = "count", window = "2h" },
    { name = "amount_sum_2h", function = "sum", column = "amount", window = "2h" },
    { name = "amount_sum_30m", function = "sum", column = "amount", window = "30m" },
]
"#,
    );
    std::fs::write(repo.join("skewless.toml"), toml).unwrap();
    // Two transactions of user 1 an hour ago, one of user 2.
    ingest(repo, &[(1, 12.5), (2, 4.0), (1, 0.5)], 3600, "--create");
    ok(&skewless(repo, &["apply"]));
    let materialized = ok(&skewless(repo, &["materialize", "--all"]));
    assert!(materialized.contains("agg: 3 rows"), "{materialized}");
    let got = ok(&skewless(repo, &["get", "agg", "1", "2", "99"]));
    let lines: Vec<Vec<&str>> = got
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let expected: Vec<Vec<&str>> = [
        "agg (1)",
        "count_2h present 2",
        "amount_sum_2h present 13",
        "amount_sum_30m null_value null",
        "agg (2)",
        "count_2h present 1",
        "amount_sum_2h present 4",
        "amount_sum_30m null_value null",
        "agg (99)",
        "count_2h not_found 0",
        "amount_sum_2h not_found null",
        "amount_sum_30m not_found null",
    ]
    .iter()
    .map(|l| l.split_whitespace().collect())
    .collect();
    assert_eq!(lines, expected, "{got}");
}
