//! Deterministic synthetic inputs for the benchmarks.

use std::sync::Arc;

use arrow_array::{Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

/// A small deterministic generator (SplitMix64), so every run measures the same data.
#[derive(Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `rows` transactions: `amount` (log-normal-ish, 2% null, some refunds) and
/// `balance_before` (5% null, 1% zero).
pub fn transactions(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = SplitMix64::new(seed);
    let mut amount = Vec::with_capacity(rows);
    let mut balance = Vec::with_capacity(rows);
    for _ in 0..rows {
        let a = (rng.next_f64() * 9.0).exp() - 1.0;
        let roll = rng.next_f64();
        amount.push(match roll {
            r if r < 0.02 => None,
            r if r < 0.05 => Some(-a),
            _ => Some(a),
        });
        let roll = rng.next_f64();
        balance.push(match roll {
            r if r < 0.05 => None,
            r if r < 0.06 => Some(0.0),
            _ => Some(rng.next_f64() * 20_000.0),
        });
    }
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("amount", DataType::Float64, true),
            Field::new("balance_before", DataType::Float64, true),
        ])),
        vec![
            Arc::new(Float64Array::from(amount)),
            Arc::new(Float64Array::from(balance)),
        ],
    )
    .expect("valid batch")
}

/// Raw merchant strings as card networks report them: processor prefixes, store numbers,
/// mixed case and punctuation; 2% null.
pub fn merchants(rows: usize, seed: u64) -> RecordBatch {
    const NAMES: [&str; 16] = [
        "SQ *BLUE BOTTLE COFFEE #123",
        "WHOLEFDS MKT 10234",
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
    ];
    let mut rng = SplitMix64::new(seed);
    let values: Vec<Option<String>> = (0..rows)
        .map(|_| {
            let r = rng.next_u64();
            (!r.is_multiple_of(50)).then(|| NAMES[(r >> 8) as usize % NAMES.len()].to_string())
        })
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "merchant",
            DataType::Utf8,
            true,
        )])),
        vec![Arc::new(StringArray::from(values))],
    )
    .expect("valid batch")
}
