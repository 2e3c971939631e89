//! Deterministic synthetic inputs for the benchmarks, from the example data generator.

use skewless_datagen::{Spec, batches};

use arrow_array::RecordBatch;

/// `rows` generated transactions (one batch), projected to `columns`.
fn generated(rows: usize, seed: u64, columns: &[&str]) -> RecordBatch {
    let spec = Spec {
        rows: rows as u64,
        seed,
        ..Spec::default()
    };
    let batch = batches(spec, rows.max(1))
        .next()
        .unwrap_or_else(|| RecordBatch::new_empty(skewless_datagen::schema()));
    let indices: Vec<usize> = columns
        .iter()
        .map(|c| batch.schema().index_of(c).expect("generated column"))
        .collect();
    batch.project(&indices).expect("valid projection")
}

/// `rows` transactions: `amount` (with refunds and nulls) and `balance_before` (with nulls
/// and zeros).
pub fn transactions(rows: usize, seed: u64) -> RecordBatch {
    generated(rows, seed, &["amount", "balance_before"])
}

/// `rows` raw merchant descriptors as card statements print them.
pub fn merchants(rows: usize, seed: u64) -> RecordBatch {
    generated(rows, seed, &["merchant"])
}
