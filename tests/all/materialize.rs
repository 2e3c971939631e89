//! Materialization that never misses a late row and never stores a row twice, on real
//! Iceberg tables, a real component and real online stores: incremental runs by source
//! snapshot (late rows, rows appended by PyIceberg), window backfills that replace, and
//! faults at each step that commit nothing and leave a re-run to complete.
//!
//! The oracle is the source itself: the feature table must hold each source row exactly once
//! (as the multiset of `(user_id, event_ts)`), and the online store the newest event time
//! per user.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Int32Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use skewless_runtime::materialize::{Hook, Materialized, Options, Step};
use skewless_runtime::offline::{TableName, TimeRange};
use skewless_runtime::online::{EntityKey, OnlineStore};
use skewless_runtime::{Error, ErrorKind};
use skewless_tests::feature_repo::TestRepo;
use skewless_tests::redis_server::RedisServer;

const REPO: &str = r#"
[project]
name = "late"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

[[batch_view]]
name = "hostile"
entities = ["user"]
source = "raw.modes"
event_timestamp = "event_ts"
transform = "{HOSTILE}"
"#;

const FEATURES: &str = "features.hostile";
const DAY_US: i64 = 86_400_000_000;
/// 2024-01-01T00:00:00Z.
const JAN_1_US: i64 = 1_704_067_200_000_000;

/// The hostile fixture's mode that panics.
const PANIC: i32 = 3;

/// Source rows `(user_id, event_ts)`, all in mode `mode`.
fn events(rows: &[(i64, i64)], mode: i32) -> RecordBatch {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_ts", ts, false),
        Field::new("mode", DataType::Int32, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))
                    .with_timezone("+00:00"),
            ),
            Arc::new(Int32Array::from(vec![mode; rows.len()])),
        ],
    )
    .unwrap()
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn range(&mut self, low: i64, high: i64) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        low + (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % (high - low) as u64) as i64
    }

    /// `n` rows of 20 users over `[low, high)`, with day edges, repeated times and exact
    /// duplicates among them.
    fn rows(&mut self, n: usize, low: i64, high: i64) -> Vec<(i64, i64)> {
        let mut rows: Vec<(i64, i64)> = Vec::with_capacity(n);
        for _ in 0..n {
            let user = self.range(0, 20);
            let ts = match self.range(0, 8) {
                0 => low + (self.range(0, (high - low) / DAY_US + 1)) * DAY_US,
                1 if !rows.is_empty() => rows[self.range(0, rows.len() as i64) as usize].1,
                2 if !rows.is_empty() => {
                    rows.push(rows[self.range(0, rows.len() as i64) as usize]);
                    continue;
                }
                _ => self.range(low, high),
            };
            rows.push((user, ts.min(high - 1)));
        }
        rows
    }
}

fn sorted(mut rows: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    rows.sort_unstable();
    rows
}

/// `(user_id, event_ts)` of every row of the feature table (at `snapshot`), sorted.
fn stored(repo: &TestRepo, snapshot: Option<i64>) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for batch in repo.scan(FEATURES, snapshot) {
        let users = batch
            .column_by_name("user_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let ts = batch
            .column_by_name("event_ts")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        out.extend((0..batch.num_rows()).map(|i| (users.value(i), ts.value(i))));
    }
    sorted(out)
}

/// The online store holds, for every user of `rows`, the newest event time.
fn assert_online_newest(online: &dyn OnlineStore, rows: &[(i64, i64)]) {
    let mut newest: HashMap<i64, i64> = HashMap::new();
    for &(user, ts) in rows {
        let held = newest.entry(user).or_insert(ts);
        *held = (*held).max(ts);
    }
    for (user, ts) in newest {
        let row = online
            .read("hostile", &[EntityKey::new([user])])
            .unwrap()
            .pop()
            .unwrap()
            .unwrap_or_else(|| panic!("user {user} has no online row"));
        assert_eq!(row.event_ts, ts, "user {user}");
    }
}

fn feature_snapshots(repo: &TestRepo) -> Vec<i64> {
    let table = TableName::parse(FEATURES).unwrap();
    repo.rt
        .block_on(repo.offline().snapshots(&table))
        .unwrap()
        .iter()
        .map(|s| s.snapshot_id)
        .collect()
}

/// The processed-snapshot marker of the feature table's current snapshot.
fn marker(repo: &TestRepo) -> Option<String> {
    let table = TableName::parse(FEATURES).unwrap();
    repo.rt
        .block_on(repo.offline().current_snapshot(&table))
        .unwrap()?
        .summary
        .get("skewless.source.processed")
        .cloned()
}

fn incremental() -> Options {
    Options {
        incremental: true,
        ..Options::default()
    }
}

fn window(start: i64, end: i64) -> Options {
    Options {
        start_us: Some(start),
        end_us: Some(end),
        ..Options::default()
    }
}

fn run(repo: &TestRepo, options: &Options, online: &dyn OnlineStore) -> Materialized {
    repo.materialize("hostile", options, online)
        .unwrap_or_else(|e| panic!("{options:?}: {e}"))
}

/// The catalog file and warehouse folder of a test repo (the embedded defaults).
fn catalog_paths(repo: &TestRepo) -> (String, String) {
    let state = repo.path().join(".skewless");
    (
        state.join("catalog.db").display().to_string(),
        state.join("warehouse").display().to_string(),
    )
}

#[test]
fn late_rows_are_materialized_once_by_the_next_incremental_run_whoever_appended_them() {
    let mut rng = Rng(42);
    let first_rows = rng.rows(400, JAN_1_US, JAN_1_US + 10 * DAY_US);
    let repo = TestRepo::new(REPO);
    repo.ingest("raw.modes", "first.parquet", &[events(&first_rows, 0)]);
    repo.apply().unwrap();
    let online = repo.online();

    // The first incremental run has no marker: it processes the whole source.
    let first = run(&repo, &incremental(), online.as_ref());
    assert_eq!((first.mode, first.rows), ("full", 400));
    let mut all = first_rows.clone();
    assert_eq!(stored(&repo, None), sorted(all.clone()));
    assert_online_newest(online.as_ref(), &all);
    let first_snapshot = first.snapshot.as_ref().unwrap().snapshot_id;

    // Late rows (event times long before the last run) and some newer ones, appended by
    // skewless and by another engine.
    let late = rng.rows(60, JAN_1_US - 3 * DAY_US, JAN_1_US + 5 * DAY_US);
    let newer = rng.rows(20, JAN_1_US + 10 * DAY_US, JAN_1_US + 12 * DAY_US);
    repo.ingest("raw.modes", "late.parquet", &[events(&late, 0)]);
    repo.ingest("raw.modes", "newer.parquet", &[events(&newer, 0)]);
    all.extend(&late);
    all.extend(&newer);
    if let Some(python) =
        skewless_tests::python::python_or_skip("appending late rows with PyIceberg")
    {
        let by_python = rng.rows(30, JAN_1_US - DAY_US, JAN_1_US + 11 * DAY_US);
        let file = repo.path().join("python.parquet");
        let mut sink =
            skewless_runtime::files::ParquetSink::create(&file, events(&by_python, 0).schema())
                .unwrap();
        sink.write(&events(&by_python, 0)).unwrap();
        sink.finish().unwrap();
        let (db, warehouse) = catalog_paths(&repo);
        skewless_tests::python::run_script(
            &python,
            "iceberg_append.py",
            &[&db, &warehouse, "raw.modes", file.to_str().unwrap()],
        );
        all.extend(&by_python);
    }

    let second = run(&repo, &incremental(), online.as_ref());
    assert_eq!(second.mode, "incremental");
    assert_eq!(
        second.rows as usize,
        all.len() - 400,
        "exactly the appended rows"
    );
    assert_eq!(second.from_snapshot, first.source_snapshot);
    assert_eq!(stored(&repo, None), sorted(all.clone()), "every row once");
    assert_online_newest(online.as_ref(), &all);
    // The first snapshot still reads what it held.
    assert_eq!(stored(&repo, Some(first_snapshot)), sorted(first_rows));

    let third = run(&repo, &incremental(), online.as_ref());
    assert!(
        third
            .skipped
            .as_deref()
            .unwrap()
            .contains("nothing was appended"),
        "{third:?}"
    );
    assert_eq!(feature_snapshots(&repo).len(), 2);
    assert_eq!(stored(&repo, None), sorted(all));
}

#[test]
fn backfills_replace_their_window_however_often_they_run() {
    let mut rng = Rng(7);
    let rows = rng.rows(500, JAN_1_US, JAN_1_US + 8 * DAY_US);
    let repo = TestRepo::new(REPO);
    repo.ingest("raw.modes", "rows.parquet", &[events(&rows, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    let full = run(&repo, &Options::default(), online.as_ref());
    assert_eq!((full.mode, full.rows), ("full", 500));
    let mut held = vec![(full.snapshot.unwrap().snapshot_id, sorted(rows.clone()))];

    // An incremental run in between, so that snapshots differ in what they hold.
    let more = rng.rows(50, JAN_1_US, JAN_1_US + 8 * DAY_US);
    repo.ingest("raw.modes", "more.parquet", &[events(&more, 0)]);
    let all = sorted([rows.clone(), more].concat());
    let inc = run(&repo, &incremental(), online.as_ref());
    held.push((inc.snapshot.unwrap().snapshot_id, all.clone()));

    // A window not aligned to days (its edge days hold rows outside it) and an aligned one,
    // each run three times, interleaved so that none is skipped as already done.
    let unaligned = window(
        JAN_1_US + DAY_US + 6 * 3_600_000_000,
        JAN_1_US + 4 * DAY_US + 1,
    );
    let aligned = window(JAN_1_US + 3 * DAY_US, JAN_1_US + 6 * DAY_US);
    let mut files = Vec::new();
    for round in 0..3 {
        for options in [&unaligned, &aligned] {
            let done = run(&repo, options, online.as_ref());
            assert_eq!(done.mode, "window");
            assert!(done.skipped.is_none(), "{done:?}");
            let snapshot = done.snapshot.unwrap();
            assert_eq!(snapshot.summary["operation"], "overwrite");
            assert_eq!(
                snapshot.summary["total-records"],
                all.len().to_string(),
                "round {round}"
            );
            assert_eq!(stored(&repo, None), all, "round {round}: each row once");
            files.push(snapshot.summary["total-data-files"].clone());
            held.push((snapshot.snapshot_id, all.clone()));
        }
    }
    // Storage does not grow with re-runs: the same files per round once the cycle repeats.
    assert_eq!(files[2..4], files[4..6], "{files:?}");
    // The same window again from the same source snapshot: recognized, nothing committed.
    let again = run(&repo, &aligned, online.as_ref());
    assert!(again.skipped.is_some(), "{again:?}");
    assert_eq!(feature_snapshots(&repo).len(), held.len());

    for (snapshot, rows) in &held {
        assert_eq!(&stored(&repo, Some(*snapshot)), rows, "snapshot {snapshot}");
    }
    assert_online_newest(online.as_ref(), &all);

    let Some(python) = skewless_tests::python::python_or_skip("PyIceberg reading backfills") else {
        return;
    };
    let (db, warehouse) = catalog_paths(&repo);
    let ids: Vec<String> = held.iter().map(|(s, _)| s.to_string()).collect();
    let mut args = vec![
        db.as_str(),
        warehouse.as_str(),
        FEATURES,
        "user_id",
        "event_ts",
    ];
    args.extend(ids.iter().map(String::as_str));
    let output = skewless_tests::python::run_script(&python, "iceberg_read.py", &args);
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for (snapshot, rows) in &held {
        let seen: Vec<(i64, i64)> = read[snapshot.to_string()]["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_i64().unwrap()))
            .collect();
        assert_eq!(&seen, rows, "PyIceberg at snapshot {snapshot}");
    }
}

/// A hook that fails the run at `step`.
fn fail_at(step: Step) -> Hook {
    Hook(Arc::new(move |at| match at == step {
        true => Err(Error::new(
            ErrorKind::Unavailable,
            format!("injected at {at:?}"),
        )),
        false => Ok(()),
    }))
}

/// A failure at each step of each kind of run commits nothing, leaves the marker where it
/// was, and the re-run completes with every row once.
#[test]
fn a_failure_at_any_step_commits_nothing_and_a_rerun_completes() {
    let mut rng = Rng(3);
    let mut all = rng.rows(200, JAN_1_US, JAN_1_US + 6 * DAY_US);
    let repo = TestRepo::new(REPO);
    repo.ingest("raw.modes", "rows.parquet", &[events(&all, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    let kinds = [
        ("full", Options::default()),
        ("incremental", incremental()),
        (
            "window",
            window(JAN_1_US + DAY_US / 2, JAN_1_US + 2 * DAY_US),
        ),
    ];
    for (i, (kind, options)) in kinds.iter().enumerate() {
        // Something for each run to do: an incremental run needs appended rows.
        let late = rng.rows(20, JAN_1_US - DAY_US, JAN_1_US + 6 * DAY_US);
        repo.ingest(
            "raw.modes",
            &format!("late-{i}.parquet"),
            &[events(&late, 0)],
        );
        for step in [Step::Transformed, Step::BeforeCommit] {
            let before = (feature_snapshots(&repo), marker(&repo), stored(&repo, None));
            let faulty = Options {
                hook: Some(fail_at(step)),
                ..options.clone()
            };
            let e = repo
                .materialize("hostile", &faulty, online.as_ref())
                .unwrap_err();
            assert!(e.message().contains("injected"), "{kind} at {step:?}: {e}");
            let after = (feature_snapshots(&repo), marker(&repo), stored(&repo, None));
            assert_eq!(before, after, "{kind} at {step:?}: nothing committed");
        }
        let done = run(&repo, options, online.as_ref());
        assert_eq!(done.mode, *kind);
        // A window run reads the source as of the marker: the rows appended since are the
        // next incremental run's.
        if *kind != "window" {
            all.extend(&late);
        } else {
            let caught_up = run(&repo, &incremental(), online.as_ref());
            assert_eq!(caught_up.rows as usize, late.len());
            all.extend(&late);
        }
        assert_eq!(
            stored(&repo, None),
            sorted(all.clone()),
            "{kind}: each row once"
        );
        assert_online_newest(online.as_ref(), &all);
    }
}

#[test]
fn a_source_file_that_cannot_be_read_commits_nothing_and_a_rerun_completes() {
    let mut rng = Rng(11);
    let mut all = rng.rows(100, JAN_1_US, JAN_1_US + 3 * DAY_US);
    let repo = TestRepo::new(REPO);
    repo.ingest("raw.modes", "rows.parquet", &[events(&all, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    run(&repo, &incremental(), online.as_ref());
    let late = rng.rows(30, JAN_1_US - DAY_US, JAN_1_US + 3 * DAY_US);
    repo.ingest("raw.modes", "late.parquet", &[events(&late, 0)]);

    // Hide the files the late rows went to.
    let source = TableName::parse("raw.modes").unwrap();
    let offline = repo.offline();
    let current = repo
        .rt
        .block_on(offline.current_snapshot(&source))
        .unwrap()
        .unwrap();
    let parent = current.parent_id.unwrap();
    let appended = repo
        .rt
        .block_on(offline.appended_since(&source, parent, current.snapshot_id))
        .unwrap();
    assert_eq!(appended.rows, 30);
    let hidden: Vec<(String, String)> = appended
        .files
        .iter()
        .map(|f| {
            let path = f.strip_prefix("file://").unwrap_or(f).to_owned();
            (path.clone(), format!("{path}.hidden"))
        })
        .collect();
    for (path, away) in &hidden {
        std::fs::rename(path, away).unwrap();
    }
    let before = (feature_snapshots(&repo), marker(&repo));
    let e = repo
        .materialize("hostile", &incremental(), online.as_ref())
        .unwrap_err();
    assert_eq!(before, (feature_snapshots(&repo), marker(&repo)), "{e}");

    for (path, away) in &hidden {
        std::fs::rename(away, path).unwrap();
    }
    let done = run(&repo, &incremental(), online.as_ref());
    assert_eq!(done.rows, 30);
    all.extend(&late);
    assert_eq!(stored(&repo, None), sorted(all.clone()));
    assert_online_newest(online.as_ref(), &all);
}

#[test]
fn a_trapping_transform_on_late_rows_commits_nothing_and_keeps_the_marker() {
    let mut rng = Rng(5);
    let rows = rng.rows(100, JAN_1_US, JAN_1_US + 3 * DAY_US);
    let repo = TestRepo::new(REPO);
    repo.ingest("raw.modes", "rows.parquet", &[events(&rows, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    run(&repo, &incremental(), online.as_ref());
    repo.ingest(
        "raw.modes",
        "bad.parquet",
        &[events(&[(1, JAN_1_US - DAY_US)], PANIC)],
    );
    let before = (feature_snapshots(&repo), marker(&repo), stored(&repo, None));
    let e = repo
        .materialize("hostile", &incremental(), online.as_ref())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Trapped, "{e}");
    assert_eq!(
        before,
        (feature_snapshots(&repo), marker(&repo), stored(&repo, None))
    );
    assert_online_newest(online.as_ref(), &rows);
}

#[test]
fn redis_down_during_an_incremental_run_commits_nothing_and_a_rerun_completes() {
    let mut redis = RedisServer::start();
    let toml =
        REPO.to_owned() + &format!("\n[online]\ntype = \"redis\"\nurl = \"{}\"\n", redis.url());
    let mut rng = Rng(9);
    let mut all = rng.rows(100, JAN_1_US, JAN_1_US + 3 * DAY_US);
    let repo = TestRepo::new(&toml);
    repo.ingest("raw.modes", "rows.parquet", &[events(&all, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    run(&repo, &incremental(), online.as_ref());
    let late = rng.rows(40, JAN_1_US - 2 * DAY_US, JAN_1_US + 4 * DAY_US);
    repo.ingest("raw.modes", "late.parquet", &[events(&late, 0)]);
    redis.kill();
    let before = (feature_snapshots(&repo), marker(&repo));
    let e = repo
        .materialize("hostile", &incremental(), online.as_ref())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(before, (feature_snapshots(&repo), marker(&repo)));

    let _restarted = RedisServer::start_on(redis.port());
    let done = run(&repo, &incremental(), online.as_ref());
    assert_eq!(done.rows, 40);
    all.extend(&late);
    assert_eq!(stored(&repo, None), sorted(all));
    // The restarted server keeps nothing from before (no persistence): it holds what the
    // re-run wrote, the newest of the late rows.
    assert_online_newest(online.as_ref(), &late);
}

/// One row of the feature table with an event time in `[start, end)` (or outside it).
fn feature_row(repo: &TestRepo, start: i64, end: i64, inside: bool) -> RecordBatch {
    for batch in repo.scan(FEATURES, None) {
        let ts = batch
            .column_by_name("event_ts")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>();
        if let Some(i) =
            (0..batch.num_rows()).find(|&i| (start..end).contains(&ts.value(i)) == inside)
        {
            return batch.slice(i, 1);
        }
    }
    panic!(
        "no feature row {} [{start}, {end})",
        if inside { "in" } else { "outside" }
    );
}

/// Another writer commits to the feature table while a backfill runs: a commit that touched
/// the window makes the backfill fail as a conflict (nothing of it committed); one that did
/// not is kept, and the backfill commits on top of it.
#[test]
fn a_concurrent_commit_to_the_window_is_a_conflict_and_one_outside_it_is_kept() {
    let mut rng = Rng(13);
    let rows = rng.rows(200, JAN_1_US, JAN_1_US + 6 * DAY_US);
    let repo = Arc::new(TestRepo::new(REPO));
    repo.ingest("raw.modes", "rows.parquet", &[events(&rows, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    run(&repo, &Options::default(), online.as_ref());
    let (start, end) = (JAN_1_US + DAY_US + 1, JAN_1_US + 3 * DAY_US);
    let table = TableName::parse(FEATURES).unwrap();

    // A conflicting writer: replaces the window with one row of it, just before our commit.
    let inside = feature_row(&repo, start, end, true);
    let writer = {
        let (repo, table, inside) = (repo.clone(), table.clone(), inside.clone());
        Hook(Arc::new(move |step| {
            if step == Step::BeforeCommit {
                let offline = repo.offline();
                let mut job = repo
                    .rt
                    .block_on(offline.begin_replace(
                        &table,
                        TimeRange::new("event_ts", start, end),
                        None,
                    ))
                    .unwrap();
                repo.rt.block_on(job.write(inside.clone())).unwrap();
                repo.rt.block_on(job.commit(HashMap::new())).unwrap();
            }
            Ok(())
        }))
    };
    let e = repo
        .materialize(
            "hostile",
            &Options {
                hook: Some(writer),
                ..window(start, end)
            },
            online.as_ref(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("another commit changed"), "{e}");
    assert_eq!(
        marker(&repo),
        None,
        "the other writer's commit carries no marker"
    );
    // The other writer's commit stands, and ours is not there.
    let outside_window = |r: &&(i64, i64)| r.1 < start || r.1 >= end;
    let mut expected: Vec<(i64, i64)> = rows.iter().filter(outside_window).copied().collect();
    let ts = inside
        .column_by_name("event_ts")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    let user = inside
        .column_by_name("user_id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(0);
    expected.push((user, ts));
    assert_eq!(stored(&repo, None), sorted(expected));

    // The re-run completes (the other writer's row in the window is replaced).
    run(&repo, &window(start, end), online.as_ref());
    assert_eq!(stored(&repo, None), sorted(rows.clone()));

    // A writer that appends outside the window: kept, and the backfill commits after it.
    let outside = feature_row(&repo, start, end, false);
    let writer = {
        let (repo, table, outside) = (repo.clone(), table.clone(), outside.clone());
        Hook(Arc::new(move |step| {
            if step == Step::BeforeCommit {
                let offline = repo.offline();
                let mut job = repo.rt.block_on(offline.begin_append(&table)).unwrap();
                repo.rt.block_on(job.write(outside.clone())).unwrap();
                repo.rt.block_on(job.commit(HashMap::new())).unwrap();
            }
            Ok(())
        }))
    };
    let done = repo
        .materialize(
            "hostile",
            &Options {
                hook: Some(writer),
                ..window(start, end - 1)
            },
            online.as_ref(),
        )
        .unwrap();
    assert!(done.snapshot.is_some());
    let user = outside
        .column_by_name("user_id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .value(0);
    let ts = outside
        .column_by_name("event_ts")
        .unwrap()
        .as_primitive::<TimestampMicrosecondType>()
        .value(0);
    let mut expected = rows.clone();
    expected.push((user, ts));
    assert_eq!(stored(&repo, None), sorted(expected));
}

/// Expiring every snapshot but the current keeps the processed-snapshot marker (each run
/// carries it forward): the next incremental run takes exactly the rows appended since.
#[test]
fn incremental_runs_continue_after_the_feature_tables_history_is_expired() {
    let mut rng = Rng(17);
    let mut all = rng.rows(150, JAN_1_US, JAN_1_US + 4 * DAY_US);
    let repo = TestRepo::new(REPO);
    repo.ingest("raw.modes", "rows.parquet", &[events(&all, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    run(&repo, &incremental(), online.as_ref());
    // A backfill after the incremental run: the newest snapshot is not the one that moved
    // the marker.
    run(
        &repo,
        &window(JAN_1_US + DAY_US, JAN_1_US + 2 * DAY_US),
        online.as_ref(),
    );
    let table = TableName::parse(FEATURES).unwrap();
    let expired = repo
        .rt
        .block_on(repo.offline().expire_snapshots(&table, i64::MAX, 1))
        .unwrap();
    assert_eq!(expired.snapshots.len(), 1, "{expired:?}");
    assert_eq!(feature_snapshots(&repo).len(), 1);

    let late = rng.rows(25, JAN_1_US - DAY_US, JAN_1_US + 4 * DAY_US);
    repo.ingest("raw.modes", "late.parquet", &[events(&late, 0)]);
    let done = run(&repo, &incremental(), online.as_ref());
    assert_eq!((done.mode, done.rows), ("incremental", 25));
    all.extend(&late);
    assert_eq!(stored(&repo, None), sorted(all));
}

/// A source snapshot that is not an append (rows deleted by another engine), or appended
/// history that was expired, stops `--incremental` with an error naming the snapshot and
/// asking for a full run; the full run then resets the marker.
#[test]
fn a_rewritten_or_expired_source_history_asks_for_a_full_run() {
    let mut rng = Rng(23);
    let rows = rng.rows(120, JAN_1_US, JAN_1_US + 4 * DAY_US);
    let repo = TestRepo::new(REPO);
    repo.ingest("raw.modes", "rows.parquet", &[events(&rows, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    run(&repo, &incremental(), online.as_ref());
    let source = TableName::parse("raw.modes").unwrap();

    // Two appends, then the source's history expired down to the last one.
    let a = rng.rows(10, JAN_1_US, JAN_1_US + DAY_US);
    let b = rng.rows(10, JAN_1_US, JAN_1_US + DAY_US);
    repo.ingest("raw.modes", "a.parquet", &[events(&a, 0)]);
    repo.ingest("raw.modes", "b.parquet", &[events(&b, 0)]);
    repo.rt
        .block_on(repo.offline().expire_snapshots(&source, i64::MAX, 1))
        .unwrap();
    let before = (feature_snapshots(&repo), marker(&repo));
    let e = repo
        .materialize("hostile", &incremental(), online.as_ref())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("no longer exists"), "{e}");
    assert!(e.message().contains("full materialization"), "{e}");
    assert_eq!(before, (feature_snapshots(&repo), marker(&repo)));
    let full = run(&repo, &Options::default(), online.as_ref());
    let mut all = [rows, a, b].concat();
    assert_eq!(full.rows as usize, all.len());
    assert_eq!(stored(&repo, None), sorted(all.clone()));

    let Some(python) =
        skewless_tests::python::python_or_skip("deleting source rows with PyIceberg")
    else {
        return;
    };
    let (db, warehouse) = catalog_paths(&repo);
    let user = all[0].0;
    let output = skewless_tests::python::run_script(
        &python,
        "iceberg_delete.py",
        &[&db, &warehouse, "raw.modes", &user.to_string()],
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    let (deleting, operation) = printed.trim().split_once(' ').unwrap();
    let e = repo
        .materialize("hostile", &incremental(), online.as_ref())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains(deleting), "{e}");
    assert!(e.message().contains(&format!("`{operation}`")), "{e}");
    assert!(e.message().contains("full materialization"), "{e}");
    // The full run reads the source as it now is.
    run(&repo, &Options::default(), online.as_ref());
    all.retain(|r| r.0 != user);
    assert_eq!(stored(&repo, None), sorted(all));
    let next = run(&repo, &incremental(), online.as_ref());
    assert!(next.skipped.is_some(), "{next:?}");
}

/// Two incremental runs of one view at once (an overlapping schedule): the one that commits
/// second finds the marker moved and commits nothing, so no appended row is stored twice.
#[test]
fn concurrent_incremental_runs_of_a_view_store_each_row_once() {
    let mut rng = Rng(29);
    let mut all = rng.rows(100, JAN_1_US, JAN_1_US + 3 * DAY_US);
    let repo = Arc::new(TestRepo::new(REPO));
    repo.ingest("raw.modes", "rows.parquet", &[events(&all, 0)]);
    repo.apply().unwrap();
    let online = repo.online();
    run(&repo, &incremental(), online.as_ref());
    let late = rng.rows(30, JAN_1_US - DAY_US, JAN_1_US + 3 * DAY_US);
    repo.ingest("raw.modes", "late.parquet", &[events(&late, 0)]);
    all.extend(&late);

    let other = {
        let (repo, online) = (repo.clone(), online.clone());
        Hook(Arc::new(move |step| {
            if step == Step::BeforeCommit {
                let done = run(&repo, &incremental(), online.as_ref());
                assert_eq!(done.rows, 30);
            }
            Ok(())
        }))
    };
    let e = repo
        .materialize(
            "hostile",
            &Options {
                hook: Some(other),
                ..incremental()
            },
            online.as_ref(),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.message().contains("another materialization"), "{e}");
    assert_eq!(stored(&repo, None), sorted(all));
    let again = run(&repo, &incremental(), online.as_ref());
    assert!(again.skipped.is_some(), "{again:?}");
}
