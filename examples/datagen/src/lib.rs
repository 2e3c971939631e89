//! Deterministic synthetic card transactions.
//!
//! The same arguments always give the same rows (a SplitMix64 stream per seed), so the
//! example feature repo, the tests and the benchmarks all see identical data. Rows come in
//! batches of bounded size, so any row count streams in constant memory.
//!
//! Columns: `txn_id` (int64, unique), `user_id` (int64, 1..=users), `event_ts` (timestamp,
//! uniformly over `days` days ending at `end`), `ingested_at` (timestamp, 0-15 minutes after
//! `event_ts`), `amount` (float64, log-normal-ish, 4% refunds, 1% null), `balance_before`
//! (float64, 3% null, 0.5% zero) and `merchant` (utf8, card-statement style descriptors, 2% null).

use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Merchant descriptors as card networks print them.
const MERCHANTS: [&str; 20] = [
    "SQ *BLUE BOTTLE COFFEE #123",
    "WHOLE FOODS MKT 10234",
    "Shell Oil 57442",
    "UBER   *TRIP",
    "AMAZON MKTPLACE PMTS",
    "NETFLIX.COM",
    "TST* JOE'S PIZZA - BROOKLYN",
    "PAYPAL *STEAM GAMES",
    "DELTA AIR 0062345",
    "Trader Joe's #552",
    "CHEVRON 0209876",
    "MARRIOTT HOTEL SFO",
    "Starbucks Store 00234",
    "SAFEWAY #1234",
    "SPOTIFY USA",
    "Local Hardware & Co.",
    "LYFT   *RIDE TUE 8PM",
    "COSTCO WHSE #0423",
    "AMC THEATRES 2231",
    "ETSY.COM - CRAFTS",
];

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Number of rows.
    pub rows: u64,
    /// Number of distinct users.
    pub users: u64,
    /// Days covered, ending at `end_us`.
    pub days: u64,
    /// End of the covered period, microseconds since the epoch (exclusive).
    pub end_us: i64,
    /// Seed of the random stream.
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            rows: 3_000_000,
            users: 100_000,
            days: 90,
            // 2026-11-01T00:00:00Z
            end_us: 1_793_491_200_000_000,
            seed: 42,
        }
    }
}

/// The schema of the generated rows.
pub fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
    Arc::new(Schema::new(vec![
        Field::new("txn_id", DataType::Int64, false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_ts", ts.clone(), false),
        Field::new("ingested_at", ts, false),
        Field::new("amount", DataType::Float64, true),
        Field::new("balance_before", DataType::Float64, true),
        Field::new("merchant", DataType::Utf8, true),
    ]))
}

/// SplitMix64: tiny, fast, and the same everywhere.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The rows of `spec`, in batches of at most `batch_size` rows.
pub fn batches(spec: Spec, batch_size: usize) -> impl Iterator<Item = RecordBatch> {
    let schema = schema();
    let span_us = spec.days as i64 * 86_400_000_000;
    let start_us = spec.end_us - span_us;
    let mut rng = Rng(spec.seed);
    let mut next_id = 0u64;
    std::iter::from_fn(move || {
        if next_id >= spec.rows {
            return None;
        }
        let n = (spec.rows - next_id).min(batch_size as u64) as usize;
        let mut txn_id = Vec::with_capacity(n);
        let mut user_id = Vec::with_capacity(n);
        let mut event_ts = Vec::with_capacity(n);
        let mut ingested_at = Vec::with_capacity(n);
        let mut amount = Vec::with_capacity(n);
        let mut balance = Vec::with_capacity(n);
        let mut merchant = Vec::with_capacity(n);
        for _ in 0..n {
            next_id += 1;
            txn_id.push(next_id as i64);
            user_id.push((rng.next_u64() % spec.users.max(1)) as i64 + 1);
            let ts = start_us + (rng.unit() * span_us as f64) as i64;
            event_ts.push(ts);
            ingested_at.push(ts + (rng.unit() * 900e6) as i64);
            let a = ((rng.unit() * 7.5).exp() - 1.0).max(0.01);
            let a = (a * 100.0).round() / 100.0;
            amount.push(match rng.unit() {
                r if r < 0.01 => None,
                r if r < 0.05 => Some(-a),
                _ => Some(a),
            });
            balance.push(match rng.unit() {
                r if r < 0.03 => None,
                r if r < 0.035 => Some(0.0),
                _ => Some((rng.unit() * 25_000.0 * 100.0).round() / 100.0),
            });
            let m = rng.next_u64();
            merchant.push(
                (!m.is_multiple_of(50))
                    .then(|| MERCHANTS[((m >> 8) % MERCHANTS.len() as u64) as usize]),
            );
        }
        let columns: Vec<Arc<dyn arrow_array::Array>> = vec![
            Arc::new(Int64Array::from(txn_id)),
            Arc::new(Int64Array::from(user_id)),
            Arc::new(TimestampMicrosecondArray::from(event_ts).with_timezone("+00:00")),
            Arc::new(TimestampMicrosecondArray::from(ingested_at).with_timezone("+00:00")),
            Arc::new(Float64Array::from(amount)),
            Arc::new(Float64Array::from(balance)),
            Arc::new(StringArray::from(merchant)),
        ];
        Some(RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema"))
    })
}

/// The end of the generated period from the command line: `now` (truncated to the second,
/// so that the printed end reproduces the rows) or an RFC 3339 time; µs since the epoch.
pub fn parse_end(text: &str) -> Result<i64, String> {
    if text == "now" {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| format!("the clock is before 1970: {e}"))?;
        return Ok(now.as_secs() as i64 * 1_000_000);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_micros())
        .map_err(|e| {
            format!("`{text}` is not `now` or an RFC 3339 time like 2026-11-01T00:00:00Z: {e}")
        })
}

/// `us` (µs since the epoch) as RFC 3339.
pub fn format_time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).map_or_else(
        || format!("{us} µs"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_spec_gives_the_same_rows_in_any_batch_size() {
        let spec = Spec {
            rows: 1000,
            users: 10,
            days: 3,
            ..Spec::default()
        };
        let a: Vec<_> = batches(spec, 1000).collect();
        let b: Vec<_> = batches(spec, 64).collect();
        let b = arrow_select::concat::concat_batches(&b[0].schema(), &b).unwrap();
        assert_eq!(a[0], b);
        let users = a[0]
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert!(users.values().iter().all(|u| (1..=10).contains(u)));
        let ts = a[0]
            .column(2)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        let start = spec.end_us - 3 * 86_400_000_000;
        assert!(ts.values().iter().all(|t| (start..spec.end_us).contains(t)));
    }
}
