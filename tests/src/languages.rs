//! The `order-features` example in every language, built through the same
//! `skewless_toolchain` code as `skewless build`, and the input batches the
//! cross-language tests and benchmarks run it on.
//!
//! Components are built into `target/languages/<example>/`; a build whose inputs did not
//! change is skipped (the toolchain's input digest), and compiled code is cached in
//! `target/languages/compiled`, so only the first run on a machine pays for componentize-py,
//! componentize-js and compiling an interpreter-sized component.
//!
//! A missing toolchain skips the tests that need it, with the reason printed, unless
//! `SKEWLESS_REQUIRE_TOOLCHAINS=1` (set by `.ci/run`), which turns the skip into a failure.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use skewless_runtime::TransformEngine;
use skewless_toolchain::{self as toolchain, BuildOptions, Built, Language};

/// The Rust original every other language is compared with.
pub use skewless_test_components::ORDER_FEATURES as RUST_ORDER_FEATURES;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Where language components and their compiled code are kept between runs.
pub fn languages_dir() -> PathBuf {
    workspace().join("target").join("languages")
}

/// An engine with default limits (sized for interpreters) and the shared compiled cache.
pub fn engine() -> TransformEngine {
    TransformEngine::builder()
        .cache_dir(languages_dir().join("compiled"))
        .build()
        .expect("engine builds")
}

/// The example project of `language` (`examples/<lang>-order-features`).
pub fn example_project(language: Language) -> PathBuf {
    let prefix = match language {
        Language::Rust => return workspace().join("examples").join("order-features"),
        Language::Python => "python",
        Language::JavaScript => "js",
        Language::C => "c",
    };
    workspace()
        .join("examples")
        .join(format!("{prefix}-order-features"))
}

/// Whether a missing toolchain is a failure rather than a skip.
pub fn toolchains_required() -> bool {
    std::env::var_os("SKEWLESS_REQUIRE_TOOLCHAINS").is_some_and(|v| v == "1")
}

/// Builds `project` into `target/languages/<target_name>`. `Ok(None)` (after printing why)
/// when its toolchain is missing and toolchains are not required; panics on any other error.
pub fn build_or_skip(project: &Path, target_name: &str) -> Option<Built> {
    let options = BuildOptions {
        target_dir: Some(languages_dir().join(target_name)),
        search_path: None,
    };
    match toolchain::build(project, &options) {
        Ok(built) => Some(built),
        // Only a missing tool skips (its error names the tool); a project that is not there or
        // not a transform project is a failure like any other.
        Err(e) if e.context_value("tool").is_some() && !toolchains_required() => {
            eprintln!(
                "SKIPPED: {} needs a toolchain that is missing here: {e}\n(set \
                 SKEWLESS_REQUIRE_TOOLCHAINS=1 to make this a failure, as CI does)",
                project.display()
            );
            None
        }
        Err(e) => panic!("building {} failed: {e}", project.display()),
    }
}

/// The `order-features` example of `language`, built (see [`build_or_skip`]).
pub fn build_example(language: Language) -> Option<Built> {
    let project = example_project(language);
    let name = project
        .file_name()
        .expect("named")
        .to_string_lossy()
        .into_owned();
    build_or_skip(&project, &name)
}

const TWO_POW_53: f64 = 9_007_199_254_740_992.0;

/// Edge values of `amount`: signed zeros, values whose `* 100` is inexact, the limits of
/// `amount_cents` (|amount * 100| < 2^53), subnormals, infinities, NaN and extremes.
pub const EDGE_AMOUNTS: &[f64] = &[
    0.0,
    -0.0,
    0.29,
    59.97,
    -1.5,
    1.0 / 3.0,
    // Around 2^53 / 100, where `abs(amount * 100) < 2^53` flips.
    (TWO_POW_53 / 100.0).next_down(),
    TWO_POW_53 / 100.0,
    -(TWO_POW_53 / 100.0),
    1e300,
    -1e300,
    1e-300,
    f64::MIN_POSITIVE,
    5e-324,
    f64::MAX,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    -f64::NAN,
];

/// Edge values of `quantity`: zero, negatives, the bulk threshold, integers an f64 cannot hold
/// exactly (2^53 + 1 rounds to even) and the extremes.
pub const EDGE_QUANTITIES: &[i64] = &[
    0,
    1,
    -1,
    3,
    7,
    9,
    10,
    11,
    (1 << 53) + 1,
    123_456_789_012_345_678,
    i64::MAX,
    i64::MIN,
];

/// Edge values of `country`: padding with spaces and other whitespace, case, non-ASCII
/// letters (`é`, `ß`, CJK, an emoji), lengths around 2.
pub const EDGE_COUNTRIES: &[&str] = &[
    "", " de ", "DE", "de", "Fr", "  Fr", "us  ", "deu", "d", "dé", "\tfr", "fr\n", "ß", "ßa",
    "日本", "0a", "a0", "zz", "ZZ", "🇩🇪", " ", "a b",
];

/// A deterministic batch of `rows` orders: the edge values first, then pseudo-random values,
/// some drawn from raw bit patterns (NaN payloads, subnormals); after the edge rows, about
/// one value in eight is null in every column.
pub fn order_batch(rows: usize, seed: u64) -> RecordBatch {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut amounts = Vec::with_capacity(rows);
    let mut quantities = Vec::with_capacity(rows);
    let mut countries = Vec::with_capacity(rows);
    for i in 0..rows {
        let r = next();
        // Edge rows are never null, so every edge value reaches the transform.
        let null = |k: u64| i >= EDGE_COUNTRIES.len() && (r >> k) & 7 == 0;
        amounts.push((!null(0)).then(|| match i {
            i if i < EDGE_AMOUNTS.len() => EDGE_AMOUNTS[i],
            _ if r % 5 == 0 => f64::from_bits(next()),
            _ => (next() % 2_000_000) as f64 / 100.0 - 1_000.0,
        }));
        quantities.push((!null(3)).then(|| match i {
            i if i < EDGE_QUANTITIES.len() => EDGE_QUANTITIES[i],
            _ if r % 7 == 0 => next() as i64,
            _ => (next() % 40) as i64 - 5,
        }));
        countries.push((!null(6)).then(|| {
            let edge = EDGE_COUNTRIES[(i + (next() % 3) as usize) % EDGE_COUNTRIES.len()];
            edge.to_owned()
        }));
    }
    let schema = Schema::new(vec![
        Field::new("amount", DataType::Float64, true),
        Field::new("quantity", DataType::Int64, true),
        Field::new("country", DataType::Utf8, true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Float64Array::from(amounts)),
            Arc::new(Int64Array::from(quantities)),
            Arc::new(StringArray::from(countries)),
        ],
    )
    .expect("valid batch")
}
