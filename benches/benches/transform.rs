//! The cost of the Wasm path: per-call overhead on 1-row batches (online serving), and
//! throughput on 8192-row batches (batch jobs) against the same logic compiled natively.
//!
//! Run: `cargo bench -p skewless-benches --bench transform`. Figures: `benches/README.md`.
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use skewless_benches::{data, native};
use skewless_runtime::TransformEngine;
use skewless_test_components::{MERCHANT_CATEGORY, TRANSACTION_FEATURES};

const BATCH: usize = 8192;

fn engine() -> TransformEngine {
    let cache = std::env::temp_dir().join("skewless-bench-cache");
    TransformEngine::builder()
        .cache_dir(cache)
        .build()
        .expect("engine")
}

fn one_row_call(c: &mut Criterion) {
    let engine = engine();
    let mut group = c.benchmark_group("one_row_call");
    let txn = engine.load_file(TRANSACTION_FEATURES).expect("loads");
    let input = data::transactions(1, 1);
    group.bench_function("transaction_features/wasm", |b| {
        b.iter(|| txn.run(&input).unwrap())
    });
    let schema = txn.output_schema().clone();
    group.bench_function("transaction_features/native", |b| {
        b.iter(|| native::transaction_features(&input, &schema))
    });
    let merchant = engine.load_file(MERCHANT_CATEGORY).expect("loads");
    let input = data::merchants(1, 1);
    group.bench_function("merchant_category/wasm", |b| {
        b.iter(|| merchant.run(&input).unwrap())
    });
    group.finish();
}

fn batch_throughput(c: &mut Criterion) {
    let engine = engine();
    let mut group = c.benchmark_group("batch_8192");
    group.throughput(Throughput::Elements(BATCH as u64));

    let txn = engine.load_file(TRANSACTION_FEATURES).expect("loads");
    let input = data::transactions(BATCH, 2);
    let schema = txn.output_schema().clone();
    group.bench_function("transaction_features/wasm", |b| {
        b.iter(|| txn.run(&input).unwrap())
    });
    group.bench_function("transaction_features/native", |b| {
        b.iter(|| native::transaction_features(&input, &schema))
    });

    let merchant = engine.load_file(MERCHANT_CATEGORY).expect("loads");
    let input = data::merchants(BATCH, 2);
    let schema = merchant.output_schema().clone();
    group.bench_function("merchant_category/wasm", |b| {
        b.iter(|| merchant.run(&input).unwrap())
    });
    group.bench_function("merchant_category/native", |b| {
        b.iter(|| native::merchant_category(&input, &schema))
    });
    group.finish();
}

fn instantiation(c: &mut Criterion) {
    let engine = engine();
    let txn = engine.load_file(TRANSACTION_FEATURES).expect("loads");
    let input = data::transactions(1, 1);
    // Dropping the warm instances before each call measures a fresh (pooled) instance.
    c.bench_function("fresh_instance_one_row_call/transaction_features", |b| {
        b.iter(|| {
            txn.clear_warm_instances();
            txn.run(&input).unwrap()
        })
    });
    c.bench_function("cached_load/transaction_features", |b| {
        b.iter(|| engine.load_file(TRANSACTION_FEATURES).unwrap())
    });
}

criterion_group!(benches, one_row_call, batch_throughput, instantiation);
criterion_main!(benches);
