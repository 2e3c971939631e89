//! The cost of exact aggregation: an exact, order-independent float sum (one rounding at the
//! end) against a plain left-to-right `f64` sum over the same values, and the cost of merging
//! and encoding tile states.
//!
//! Run: `cargo bench -p skewless-benches --bench aggregate -- --warm-up-time 1 --measurement-time 3`.
//! Figures: `benches/README.md`.
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use skewless_runtime::aggregate::{Function, State, encode};
use skewless_runtime::online::FeatureValue;

/// Transaction-like amounts with a wide spread of magnitudes and signs (refunds), fixed.
fn amounts(n: usize) -> Vec<f64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            // xorshift64: a fixed, dependency-free sequence.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let cents = (x % 1_000_000) as f64 / 100.0;
            if x.is_multiple_of(10) {
                -cents
            } else {
                cents * (1 + (x >> 60)) as f64
            }
        })
        .collect()
}

fn sums(c: &mut Criterion) {
    const N: usize = 1 << 20;
    let values = amounts(N);
    let features: Vec<FeatureValue> = values.iter().map(|&v| FeatureValue::Float64(v)).collect();
    let mut group = c.benchmark_group("sum_1M_f64");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("plain_f64", |b| {
        b.iter(|| black_box(&values).iter().fold(0.0f64, |a, &v| a + v))
    });
    group.bench_function("exact_state", |b| {
        b.iter(|| {
            let mut s = State::new(Function::Sum, false);
            for (i, v) in black_box(&features).iter().enumerate() {
                s.update(v, i as i64, 0).expect("a float");
            }
            s.evaluate().expect("a value")
        })
    });
    group.bench_function("exact_mean_state", |b| {
        b.iter(|| {
            let mut s = State::new(Function::Mean, false);
            for (i, v) in black_box(&features).iter().enumerate() {
                s.update(v, i as i64, 0).expect("a float");
            }
            s.evaluate().expect("a value")
        })
    });
    group.finish();

    // 1440 one-minute tiles of 64 rows each merged into a day's window, then encoded.
    let tiles: Vec<State> = features
        .chunks(64)
        .take(1440)
        .map(|chunk| {
            let mut s = State::new(Function::Sum, false);
            for v in chunk {
                s.update(v, 0, 0).expect("a float");
            }
            s
        })
        .collect();
    let mut group = c.benchmark_group("tiles");
    group.throughput(Throughput::Elements(tiles.len() as u64));
    group.bench_function("merge_1440_sum_tiles", |b| {
        b.iter(|| {
            let mut day = State::new(Function::Sum, false);
            for t in black_box(&tiles) {
                day.merge(t).expect("same function");
            }
            day.evaluate().expect("a value")
        })
    });
    group.bench_function("encode_sum_tile", |b| {
        b.iter(|| encode(black_box(&tiles[0])))
    });
    group.finish();
}

criterion_group!(benches, sums);
criterion_main!(benches);
