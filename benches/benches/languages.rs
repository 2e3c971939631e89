//! The same transform (`order-features`) in Rust, C, Python and JavaScript: component size,
//! first compile, cached load, warm 1-row call and rows/s on 8192-row batches.
//!
//! Run: `cargo bench -p skewless-benches --bench languages`. Figures: `benches/README.md`.
//! Components are built as the tests build them (`skewless_tests::languages`); a language
//! whose toolchain is missing is skipped with a message. Size and first compile are one-off
//! measurements printed before criterion's; first compile is a cold engine compiling the
//! component in memory (no cache) and instantiating it once.
#![allow(
    missing_docs,
    reason = "criterion's macros generate undocumented functions"
)]

use std::path::PathBuf;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group};
use skewless_runtime::TransformEngine;
use skewless_tests::languages::{RUST_ORDER_FEATURES, build_example, order_batch};
use skewless_toolchain::Language;

const BATCH: usize = 8192;

/// (language, component path) of every language whose toolchain is here.
fn components() -> Vec<(Language, PathBuf)> {
    let mut found = vec![(Language::Rust, PathBuf::from(RUST_ORDER_FEATURES))];
    for language in [Language::C, Language::Python, Language::JavaScript] {
        if let Some(built) = build_example(language) {
            found.push((language, built.path));
        }
    }
    found
}

fn cached_engine() -> TransformEngine {
    TransformEngine::builder()
        .cache_dir(std::env::temp_dir().join("skewless-bench-cache"))
        .build()
        .expect("engine")
}

/// Size and first compile, printed once.
fn one_off_figures() {
    println!(
        "\n{:<12} {:>14} {:>16}",
        "language", "size (bytes)", "first compile"
    );
    for (language, path) in components() {
        let size = std::fs::metadata(&path).expect("built").len();
        let bytes = std::fs::read(&path).expect("built");
        let engine = TransformEngine::builder().build().expect("engine");
        let started = Instant::now();
        engine.load_bytes(&bytes).expect("loads");
        let compile = started.elapsed();
        println!(
            "{language:<12} {size:>14} {:>14.3} s",
            compile.as_secs_f64()
        );
        // Warm the on-disk cache for the cached-load benchmark.
        cached_engine().load_bytes(&bytes).expect("loads");
    }
    println!();
}

fn cached_load(c: &mut Criterion) {
    let engine = cached_engine();
    let mut group = c.benchmark_group("cached_load");
    for (language, path) in components() {
        group.bench_function(language.as_str(), |b| {
            b.iter(|| engine.load_file(&path).expect("loads"))
        });
    }
    group.finish();
}

fn one_row_call(c: &mut Criterion) {
    let engine = cached_engine();
    let input = order_batch(1, 1);
    let mut group = c.benchmark_group("one_row_call");
    for (language, path) in components() {
        let transform = engine.load_file(&path).expect("loads");
        group.bench_function(language.as_str(), |b| {
            b.iter(|| transform.run(&input).expect("runs"))
        });
    }
    group.finish();
}

fn batch_throughput(c: &mut Criterion) {
    let engine = cached_engine();
    let input = order_batch(BATCH, 2);
    let mut group = c.benchmark_group("batch_8192");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (language, path) in components() {
        let transform = engine.load_file(&path).expect("loads");
        group.bench_function(language.as_str(), |b| {
            b.iter(|| transform.run(&input).expect("runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, cached_load, one_row_call, batch_throughput);

fn main() {
    one_off_figures();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
