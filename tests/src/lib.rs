//! Shared helpers for the end-to-end tests: engines with test settings and small batches.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use skewless_runtime::{Transform, TransformEngine};

pub use skewless_test_components as components;

pub mod dynalite;
pub mod feature_repo;
pub mod http;
pub mod languages;
pub mod python;

pub mod redis_cluster;
pub mod redis_server;
pub mod seaweedfs;

/// An engine with a private compiled cache, a 1 s deadline and a 64 MiB memory cap: small
/// enough that hostile guests fail fast, large enough for every real example.
pub fn engine(cache: &tempfile::TempDir) -> TransformEngine {
    TransformEngine::builder()
        .cache_dir(cache.path())
        .deadline(Duration::from_secs(1))
        .memory_limit(64 << 20)
        .build()
        .expect("engine builds")
}

/// Loads a component, panicking with the error if it does not load.
pub fn load(engine: &TransformEngine, path: &str) -> Transform {
    engine
        .load_file(path)
        .unwrap_or_else(|e| panic!("{path} should load: {e}"))
}

/// A record batch from `(name, array)` pairs; every column nullable.
pub fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
        .collect();
    let arrays = columns.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid batch")
}

/// A batch of the `raw.transactions` source the feature-repo tests share: `user_id`,
/// `event_ts` and `ingested_at` (µs since the epoch, UTC), `amount`, `balance_before`.
pub fn transactions(
    users: Vec<i64>,
    event_us: Vec<i64>,
    created_us: Vec<i64>,
    amount: impl Into<Float64Array>,
    balance_before: impl Into<Float64Array>,
) -> RecordBatch {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_ts", ts.clone(), false),
        Field::new("ingested_at", ts, false),
        Field::new("amount", DataType::Float64, true),
        Field::new("balance_before", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(users)),
            Arc::new(TimestampMicrosecondArray::from(event_us).with_timezone("+00:00")),
            Arc::new(TimestampMicrosecondArray::from(created_us).with_timezone("+00:00")),
            Arc::new(amount.into()),
            Arc::new(balance_before.into()),
        ],
    )
    .expect("a transactions batch")
}

/// Renders a batch as an aligned text table, for snapshot assertions.
pub fn pretty(batch: &RecordBatch) -> String {
    arrow_cast::pretty::pretty_format_batches(std::slice::from_ref(batch))
        .expect("printable batch")
        .to_string()
}

/// A batch with one nullable column of every WIT type, named as the echo guest's inputs
/// (`c_bool`, `c_i32`, ... `c_vec`), one row per value of `f64s` (other columns derived from
/// it), with row 1 null in every column when there are at least two rows.
pub fn all_types_batch(f64s: &[f64]) -> RecordBatch {
    use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
    use arrow_array::{
        BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    fn valid(i: usize) -> bool {
        i != 1
    }
    fn opt<T>(i: usize, v: T) -> Option<T> {
        valid(i).then_some(v)
    }
    let n = f64s.len();
    let mut vec = FixedSizeListBuilder::new(Float32Builder::new(), 4)
        .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
    for (i, v) in f64s.iter().enumerate() {
        vec.values().append_slice(&[*v as f32, 1.0, -0.0, i as f32]);
        vec.append(valid(i));
    }
    batch(vec![
        (
            "c_bool",
            Arc::new((0..n).map(|i| opt(i, i % 3 == 0)).collect::<BooleanArray>()),
        ),
        (
            "c_i32",
            Arc::new((0..n).map(|i| opt(i, i as i32 - 7)).collect::<Int32Array>()),
        ),
        (
            "c_i64",
            Arc::new(
                (0..n)
                    .map(|i| opt(i, i64::MIN + i as i64))
                    .collect::<Int64Array>(),
            ),
        ),
        (
            "c_f32",
            Arc::new(
                (0..n)
                    .map(|i| opt(i, f64s[i] as f32))
                    .collect::<Float32Array>(),
            ),
        ),
        (
            "c_f64",
            Arc::new(f64s.iter().map(|v| Some(*v)).collect::<Float64Array>()),
        ),
        (
            "c_utf8",
            Arc::new(
                (0..n)
                    .map(|i| opt(i, format!("räw {i} 🦀")))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "c_binary",
            Arc::new(
                (0..n)
                    .map(|i| opt(i, vec![i as u8, 0, 255]))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|v| v.as_deref())
                    .collect::<BinaryArray>(),
            ),
        ),
        (
            "c_ts",
            Arc::new(
                (0..n)
                    .map(|i| opt(i, -1_000_000 + i as i64))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("+00:00"),
            ),
        ),
        ("c_vec", Arc::new(vec.finish())),
    ])
}

/// Microseconds since the epoch of an RFC 3339 timestamp.
pub fn parse_rfc3339(text: &str) -> i64 {
    use arrow_array::cast::AsArray;
    let ts = arrow_cast::cast(
        &arrow_array::StringArray::from(vec![text]),
        &DataType::Timestamp(TimeUnit::Microsecond, None),
    )
    .expect("an RFC 3339 timestamp");
    ts.as_primitive::<arrow_array::types::TimestampMicrosecondType>()
        .value(0)
}
