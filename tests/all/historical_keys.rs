//! Historical retrieval drops, as it scans, the feature rows of keys no entity row asks for;
//! these tests check that the answers are still the definition's and that the rows are in
//! fact dropped.
//!
//! One source feeds views on an integer key (`user`), a string key (`place`) and a
//! composite key (`account`: region and user), batch and aggregate. Randomized entity rows
//! ask for a few keys, keys the table does not have, keys whose rows all lie outside the
//! labels' time range (older than the TTL allows, or newer than every label), or every key;
//! each training set, under the default budget and under a tiny one that partitions and
//! spills, must equal a brute-force evaluation of the definition over every stored row, and
//! the feature rows joined must be exactly the stored rows of the asked keys in the time
//! range the labels need.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{
    Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use skewless_runtime::aggregate::{Function, Output};
use skewless_runtime::historical::{MemoryBudget, Request, Retrieval, TrainingSet};
use skewless_runtime::materialize::Options;
use skewless_runtime::online::FeatureValue;
use skewless_runtime::registry::{FeatureRef, OpenedRepo};
use skewless_tests::feature_repo::TestRepo;

use crate::aggregate::oracle::oracle_float;

const REPO: &str = r#"
[project]
name = "keys"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

[[entity]]
name = "place"
join_keys = [{ name = "region", type = "utf8" }]

[[entity]]
name = "account"
join_keys = [{ name = "region", type = "utf8" }, { name = "user_id", type = "int64" }]

[[batch_view]]
name = "by_user"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "{TRANSACTION_FEATURES}"
ttl = "10h"

[[batch_view]]
name = "by_place"
entities = ["place"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "{TRANSACTION_FEATURES}"
ttl = "30h"

[[batch_view]]
name = "by_account"
entities = ["account"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
transform = "{TRANSACTION_FEATURES}"

[[aggregate_view]]
name = "account_agg"
entities = ["account"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
ttl = "12h"
aggregations = [
    { name = "rows_5h", function = "count", window = "5h" },
    { name = "amount_sum_20h", function = "sum", column = "amount", window = "20h" },
]
"#;

const HOUR: i64 = 3_600_000_000;
const REGIONS: [&str; 3] = ["eu", "us", "ap"];
/// Users with rows at every hour of the 100; 40-42 have rows only in hours 0-4, 50-52 only
/// in hours 150-154 (after every label).
const USERS: i64 = 30;
const EARLY: [i64; 3] = [40, 41, 42];
const LATE: [i64; 3] = [50, 51, 52];
/// Label times lie in hours 40 to 100.
const LABELS: (i64, i64) = (40 * HOUR, 100 * HOUR);

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
}

fn timestamps(values: Vec<i64>) -> Arc<TimestampMicrosecondArray> {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("+00:00"))
}

/// Source rows `(user, region, event_ts, amount)`, event times on the hour (ties broken by
/// created times).
fn source(rng: &mut Rng) -> RecordBatch {
    let mut rows = Vec::new();
    for _ in 0..900 {
        let user = rng.below(USERS as u64) as i64;
        rows.push((user, rng.below(100) as i64));
    }
    for _ in 0..60 {
        let hour = rng.below(5) as i64;
        rows.push((EARLY[rng.below(3) as usize], hour));
        rows.push((LATE[rng.below(3) as usize], 150 + hour));
    }
    let region = |user: i64, rng: &mut Rng| REGIONS[((user + rng.below(2) as i64) % 3) as usize];
    let regions: Vec<&str> = rows.iter().map(|r| region(r.0, rng)).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("event_ts", ts_type(), false),
        Field::new("ingested_at", ts_type(), false),
        Field::new("amount", DataType::Float64, true),
        Field::new("balance_before", DataType::Float64, true),
    ]));
    let n = rows.len();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from(regions)),
            timestamps(rows.iter().map(|r| r.1 * HOUR).collect()),
            timestamps((0..n as i64).collect()),
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|_| rng.below(1000) as f64 / 8.0),
            )),
            Arc::new(Float64Array::from(vec![400.0; n])),
        ],
    )
    .unwrap()
}

fn setup() -> TestRepo {
    let repo = TestRepo::new(REPO);
    let mut rng = Rng(5);
    repo.ingest("raw.transactions", "a.parquet", &[source(&mut rng)]);
    repo.apply().unwrap();
    for view in ["by_user", "by_place", "by_account", "account_agg"] {
        repo.materialize(view, &Options::default(), repo.online().as_ref())
            .unwrap();
    }
    repo
}

/// An entity row: `(user, region, label time)`.
type Label = (i64, &'static str, i64);

fn entity_rows(labels: &[Label]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("region", DataType::Utf8, false),
        Field::new("event_timestamp", ts_type(), false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(labels.iter().map(|l| l.0))),
            Arc::new(StringArray::from_iter_values(labels.iter().map(|l| l.1))),
            timestamps(labels.iter().map(|l| l.2).collect()),
        ],
    )
    .unwrap()
}

/// `count` entity rows over the users in `users` and the regions in `regions`, at random
/// label times in [`LABELS`] (on the hour, a µs either side, or between).
fn random_labels(
    rng: &mut Rng,
    users: &[i64],
    regions: &[&'static str],
    count: usize,
) -> Vec<Label> {
    (0..count)
        .map(|_| {
            let user = users[rng.below(users.len() as u64) as usize];
            let region = regions[rng.below(regions.len() as u64) as usize];
            let hour = LABELS.0 + rng.below(61) as i64 * HOUR;
            let t = hour + [0, 1, -1, HOUR / 2][rng.below(4) as usize];
            (user, region, t.clamp(LABELS.0, LABELS.1))
        })
        .collect()
}

fn retrieve(repo: &TestRepo, entities: &RecordBatch, memory: MemoryBudget) -> TrainingSet {
    let opened = OpenedRepo::open(repo.path()).unwrap();
    let retrieval = Retrieval {
        context: opened.context(),
    };
    let features = [
        "by_user:amount_log1p",
        "by_place:amount_zscore",
        "by_account:amount_log1p",
        "account_agg:*",
    ];
    let request = Request {
        features: features
            .iter()
            .map(|f| FeatureRef::parse(f).unwrap())
            .collect(),
        full_feature_names: true,
        as_of_ms: None,
        memory,
    };
    retrieval.run(entities, &request).unwrap()
}

/// A view's stored feature rows: the batches scanned, and each row's key, times and place.
type Table = (Vec<RecordBatch>, Vec<Stored>);

/// A stored feature row: its key parts (-1 or "" where the view has none), its times, and
/// where it is held.
struct Stored {
    user: i64,
    region: String,
    event_ts: i64,
    created_ts: i64,
    batch: usize,
    row: usize,
}

fn stored(repo: &TestRepo, view: &str) -> Table {
    let batches = repo.scan(&format!("features.{view}"), None);
    let mut rows = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let column = |name: &str| batch.column_by_name(name).cloned();
        let users = column("user_id");
        let regions = column("region");
        let event = column("event_ts").unwrap();
        let created = column("created_ts").unwrap();
        for row in 0..batch.num_rows() {
            rows.push(Stored {
                user: users
                    .as_ref()
                    .map_or(-1, |c| c.as_primitive::<Int64Type>().value(row)),
                region: regions.as_ref().map_or(String::new(), |c| {
                    c.as_string::<i32>().value(row).to_owned()
                }),
                event_ts: event.as_primitive::<TimestampMicrosecondType>().value(row),
                created_ts: created
                    .as_primitive::<TimestampMicrosecondType>()
                    .value(row),
                batch: b,
                row,
            });
        }
    }
    (batches, rows)
}

/// Which of a label's key parts a view's key holds: `(user, region)`.
fn same_key(view: &str, row: &Stored, label: &Label) -> bool {
    match view {
        "by_user" => row.user == label.0,
        "by_place" => row.region == label.1,
        _ => row.user == label.0 && row.region == label.1,
    }
}

/// The point-in-time join, literally, over every stored row of a batch view: the chosen
/// row's `feature` (null with no row, or when the row holds a null).
fn brute_force_batch(
    view: &str,
    (batches, rows): &Table,
    feature: &str,
    label: &Label,
    ttl: Option<i64>,
) -> Option<f64> {
    let t = label.2;
    let best = rows
        .iter()
        .filter(|r| same_key(view, r, label) && r.event_ts <= t)
        .filter(|r| ttl.is_none_or(|ttl| r.event_ts >= t - ttl))
        .max_by_key(|r| (r.event_ts, r.created_ts))?;
    let values = batches[best.batch]
        .column_by_name(feature)
        .unwrap()
        .as_primitive::<Float64Type>();
    values.is_valid(best.row).then(|| values.value(best.row))
}

/// The aggregate view's two values at a label, by the definition: null (both) when the
/// entity's newest row at or before `t` is older than the TTL or absent; else the count of
/// rows in `(t - 5h, t]` and the exact sum of amounts in `(t - 20h, t]`.
fn brute_force_aggregates((batches, rows): &Table, label: &Label) -> (Option<i64>, Option<Output>) {
    let t = label.2;
    let mine: Vec<&Stored> = rows
        .iter()
        .filter(|r| same_key("account_agg", r, label) && r.event_ts <= t)
        .collect();
    let newest = mine.iter().map(|r| r.event_ts).max();
    if newest.is_none_or(|n| n < t - 12 * HOUR) {
        return (None, None);
    }
    let count = mine.iter().filter(|r| r.event_ts > t - 5 * HOUR).count();
    let window: Vec<(i64, i64, Option<f64>)> = mine
        .iter()
        .filter(|r| r.event_ts > t - 20 * HOUR)
        .map(|r| {
            let amounts = batches[r.batch]
                .column_by_name("amount")
                .unwrap()
                .as_primitive::<Float64Type>();
            let amount = amounts.is_valid(r.row).then(|| amounts.value(r.row));
            (r.event_ts, r.created_ts, amount)
        })
        .collect();
    (
        Some(count as i64),
        Some(oracle_float(Function::Sum, &window)),
    )
}

/// The stored rows in the time range `labels` need (from `lookback` before the first to the
/// last), of the keys they ask for (`asked`) or of any key.
fn rows_in_range(
    view: &str,
    rows: &[Stored],
    labels: &[Label],
    lookback: Option<i64>,
    asked: bool,
) -> u64 {
    let min = labels.iter().map(|l| l.2).min().unwrap();
    let max = labels.iter().map(|l| l.2).max().unwrap();
    let start = lookback.map_or(i64::MIN, |b| min - b);
    rows.iter()
        .filter(|r| r.event_ts >= start && r.event_ts <= max)
        .filter(|r| !asked || labels.iter().any(|l| same_key(view, r, l)))
        .count() as u64
}

fn tiny_budget() -> MemoryBudget {
    MemoryBudget {
        bytes: 2048,
        fan_out: 3,
        spill_dir: None,
    }
}

/// Every feature of `set` equals the brute force at every entity row.
fn check(set: &TrainingSet, labels: &[Label], tables: &Tables, case: &str) {
    let batch_views = [
        ("by_user", "amount_log1p", Some(10 * HOUR)),
        ("by_place", "amount_zscore", Some(30 * HOUR)),
        ("by_account", "amount_log1p", None),
    ];
    for (view, feature, ttl) in batch_views {
        let out = set
            .batch
            .column_by_name(&format!("{view}__{feature}"))
            .unwrap()
            .as_primitive::<Float64Type>();
        for (row, label) in labels.iter().enumerate() {
            let want = brute_force_batch(view, tables.of(view), feature, label, ttl);
            let got = out.is_valid(row).then(|| out.value(row));
            assert_eq!(
                got, want,
                "{case}: {view}:{feature} at row {row}: {label:?}"
            );
        }
    }
    let rows = set
        .batch
        .column_by_name("account_agg__rows_5h")
        .unwrap()
        .as_primitive::<Int64Type>();
    let sums = set
        .batch
        .column_by_name("account_agg__amount_sum_20h")
        .unwrap()
        .as_primitive::<Float64Type>();
    for (row, label) in labels.iter().enumerate() {
        let (count, sum) = brute_force_aggregates(tables.of("account_agg"), label);
        let got_count = rows.is_valid(row).then(|| rows.value(row));
        let got_sum = match sums.is_valid(row) {
            true => FeatureValue::Float64(sums.value(row)),
            false => FeatureValue::Null,
        };
        assert_eq!(got_count, count, "{case}: rows_5h at row {row}: {label:?}");
        let want_sum = match sum {
            Some(Output::Value(v)) => v,
            None => FeatureValue::Null,
            Some(other) => panic!("a sum is a value, not {other:?}"),
        };
        assert_eq!(got_sum, want_sum, "{case}: amount_sum_20h at row {row}");
    }
}

/// Every view's stored rows.
struct Tables(Vec<(&'static str, Table)>);

impl Tables {
    fn of(&self, view: &str) -> &Table {
        &self.0.iter().find(|(v, _)| *v == view).unwrap().1
    }

    /// The stored rows in the time range `labels` need, over all four views: of the keys
    /// they ask for (what a retrieval must join and no more), or of any key.
    fn in_range(&self, labels: &[Label], asked: bool) -> u64 {
        [
            ("by_user", Some(10 * HOUR)),
            ("by_place", Some(30 * HOUR)),
            ("by_account", None),
            // The widest window, or the TTL if wider.
            ("account_agg", Some(20 * HOUR)),
        ]
        .into_iter()
        .map(|(view, lookback)| rows_in_range(view, &self.of(view).1, labels, lookback, asked))
        .sum()
    }
}

#[test]
fn only_the_asked_keys_rows_are_joined_and_the_answers_are_the_definitions() {
    let repo = setup();
    let tables = Tables(
        ["by_user", "by_place", "by_account", "account_agg"]
            .into_iter()
            .map(|v| (v, stored(&repo, v)))
            .collect(),
    );
    let every_user: Vec<i64> = (0..USERS).chain(EARLY).chain(LATE).collect();
    let mut rng = Rng(17);
    let mut cases: Vec<(String, Vec<Label>)> = Vec::new();
    for i in 0..4 {
        // A few users of the table, one it does not have, and one whose rows are all older
        // than some views' time range or newer than every label.
        let mut users: Vec<i64> = (0..3).map(|_| rng.below(USERS as u64) as i64).collect();
        users.extend([1000 + i, EARLY[i as usize % 3], LATE[i as usize % 3]]);
        let regions: &[&str] = match i % 2 {
            0 => &["eu"],
            _ => &["us", "ap", "nowhere"],
        };
        cases.push((
            format!("few keys #{i}"),
            random_labels(&mut rng, &users, regions, 40),
        ));
    }
    cases.push((
        "absent keys only".into(),
        random_labels(&mut rng, &[1000, 1001], &["nowhere"], 20),
    ));
    // Users whose rows are all older than the TTLs and windows allow or newer than every
    // label, in a region the table does not have.
    let outside: Vec<i64> = EARLY.into_iter().chain(LATE).collect();
    cases.push((
        "keys outside the time range only".into(),
        random_labels(&mut rng, &outside, &["nowhere"], 20),
    ));
    cases.push((
        "every key".into(),
        random_labels(&mut rng, &every_user, &REGIONS, 400),
    ));
    for (case, labels) in &cases {
        let entities = entity_rows(labels);
        let whole = retrieve(&repo, &entities, MemoryBudget::default());
        assert_eq!(whole.spill_files, 0, "{case}");
        check(&whole, labels, &tables, case);
        let needed = tables.in_range(labels, true);
        assert_eq!(whole.feature_rows, needed, "{case}: feature rows joined");
        let parts = retrieve(&repo, &entities, tiny_budget());
        assert_eq!(
            parts.batch, whole.batch,
            "{case}: the same under a tiny budget"
        );
        assert_eq!(parts.feature_rows, needed, "{case}");
        if needed > 200 {
            assert!(parts.spill_files > 0, "{case}: the tiny budget spills");
        }
    }
    // Without the key filter the joined rows would be every row in the time range: the
    // cases that ask for some keys join fewer, down to none.
    let counts: Vec<(u64, u64)> = cases
        .iter()
        .map(|(_, l)| (tables.in_range(l, true), tables.in_range(l, false)))
        .collect();
    assert!(
        counts[..4]
            .iter()
            .all(|&(asked, all)| asked > 0 && asked * 2 < all),
        "{counts:?}"
    );
    assert_eq!(counts[4].0, 0, "absent keys need no row");
    assert_eq!(counts[5].0, 0, "rows outside the time range are not needed");
    let of_outside_users = tables.of("by_user").1.iter();
    assert!(
        of_outside_users
            .filter(|r| outside.contains(&r.user))
            .count()
            > 50,
        "those users have rows, outside the range"
    );
    assert!(counts[6].0 > counts[6].1 / 2, "{counts:?}");
}
