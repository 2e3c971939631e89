//! Native baselines: the examples' own logic, compiled for the host, over Arrow arrays.
//!
//! Each baseline calls the very functions the component is built from (the example crates
//! are also `rlib`s), reading and writing Arrow arrays the way a hand-written batch job
//! would. The Wasm path pays for the sandbox and two copies across the boundary on top.

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int32Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

/// `transaction-features` over a batch with `amount` and `balance_before`.
pub fn transaction_features(input: &RecordBatch, schema: &SchemaRef) -> RecordBatch {
    use transaction_features::{Transaction, transaction_features};
    let amount = input
        .column_by_name("amount")
        .expect("amount")
        .as_primitive::<Float64Type>();
    let balance = input
        .column_by_name("balance_before")
        .expect("balance_before")
        .as_primitive::<Float64Type>();
    let rows = input.num_rows();
    let mut log1p = Float64Builder::with_capacity(rows);
    let mut zscore = Float64Builder::with_capacity(rows);
    let mut bucket = Int32Builder::with_capacity(rows);
    let mut ratio = Float64Builder::with_capacity(rows);
    let mut high = BooleanBuilder::with_capacity(rows);
    for i in 0..rows {
        let f = transaction_features(Transaction {
            amount: amount.is_valid(i).then(|| amount.value(i)),
            balance_before: balance.is_valid(i).then(|| balance.value(i)),
        });
        log1p.append_option(f.amount_log1p);
        zscore.append_value(f.amount_zscore);
        bucket.append_value(f.amount_bucket);
        ratio.append_option(f.amount_to_balance_ratio);
        high.append_value(f.is_high_value);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(log1p.finish()),
        Arc::new(zscore.finish()),
        Arc::new(bucket.finish()),
        Arc::new(ratio.finish()),
        Arc::new(high.finish()),
    ];
    RecordBatch::try_new(schema.clone(), columns).expect("schema matches")
}

/// `merchant-category` over a batch with `merchant`.
pub fn merchant_category(input: &RecordBatch, schema: &SchemaRef) -> RecordBatch {
    use merchant_category::{category, hash_bucket, normalize_into};
    let merchants = input
        .column_by_name("merchant")
        .expect("merchant")
        .as_string::<i32>();
    let rows = input.num_rows();
    let mut normalized = StringBuilder::with_capacity(rows, rows * 16);
    let mut categories = StringBuilder::with_capacity(rows, rows * 8);
    let mut hashes = Int32Builder::with_capacity(rows);
    let mut buffer = String::new();
    for merchant in merchants.iter() {
        match merchant {
            Some(m) => {
                normalize_into(m, &mut buffer);
                normalized.append_value(&buffer);
                categories.append_value(category(&buffer));
                hashes.append_value(hash_bucket(&buffer));
            }
            None => {
                normalized.append_null();
                categories.append_null();
                hashes.append_null();
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(normalized.finish()),
        Arc::new(categories.finish()),
        Arc::new(hashes.finish()),
    ];
    RecordBatch::try_new(schema.clone(), columns).expect("schema matches")
}

#[cfg(test)]
mod tests {
    use skewless_runtime::TransformEngine;
    use skewless_test_components::{MERCHANT_CATEGORY, TRANSACTION_FEATURES};

    use crate::data;

    #[test]
    fn each_baseline_computes_exactly_what_its_component_computes() {
        let engine = TransformEngine::builder().build().unwrap();
        let txn = engine.load_file(TRANSACTION_FEATURES).unwrap();
        let input = data::transactions(5_000, 7);
        assert_eq!(
            super::transaction_features(&input, txn.output_schema()),
            txn.run(&input).unwrap()
        );
        let merchant = engine.load_file(MERCHANT_CATEGORY).unwrap();
        let input = data::merchants(5_000, 7);
        assert_eq!(
            super::merchant_category(&input, merchant.output_schema()),
            merchant.run(&input).unwrap()
        );
    }
}
