//! Transforms in Python, JavaScript and C against their Rust original, and `skewless new` /
//! `skewless build` end to end.
//!
//! `examples/{python,js,c}-order-features` implement `examples/order-features` with only
//! operations that IEEE 754 and two's complement define exactly; every component runs on the
//! same batches (edge values, nulls, NaN payloads, several sizes) through the engine, and
//! every output column must equal the Rust one bit for bit (floats compared by their bits).
//!
//! Components are built through `skewless_toolchain` (as `skewless build` does) and
//! cached under `target/languages` (see `skewless_tests::languages`). Each is built, compiled
//! and loaded once per test run and shared by the tests that use it: compiling an
//! interpreter-sized component takes seconds.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use skewless_runtime::{ErrorKind, Transform, TransformEngine};
use skewless_tests::languages::{
    self, RUST_ORDER_FEATURES, RequestView, order_batch, request_batch,
};
use skewless_toolchain::{self as toolchain, BuildOptions, Language, ScaffoldOptions};

/// One engine for the whole test binary, so that each component is compiled once.
fn engine() -> &'static TransformEngine {
    static ENGINE: OnceLock<TransformEngine> = OnceLock::new();
    ENGINE.get_or_init(languages::engine)
}

/// The example of `language`, built and loaded once; `None` when its toolchain is missing
/// (and not required).
fn example(language: Language) -> Option<Transform> {
    static LOADED: [OnceLock<Option<Transform>>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    let slot = Language::ALL.iter().position(|l| *l == language).unwrap();
    LOADED[slot]
        .get_or_init(|| {
            let path = match language {
                Language::Rust => RUST_ORDER_FEATURES.into(),
                _ => languages::build_example(language)?.path,
            };
            Some(
                engine()
                    .load_file(&path)
                    .unwrap_or_else(|e| panic!("{language} example should load: {e}")),
            )
        })
        .clone()
}

/// Asserts two outputs are the same bits: same schema, same nulls, equal values (floats by
/// their bits, so `-0.0` differs from `0.0` and every NaN payload counts).
fn assert_bit_identical(
    expected: &RecordBatch,
    actual: &RecordBatch,
    input: &RecordBatch,
    what: &str,
) {
    assert_eq!(expected.schema(), actual.schema(), "{what}: schemas differ");
    assert_eq!(
        expected.num_rows(),
        actual.num_rows(),
        "{what}: row counts differ"
    );
    for (i, field) in expected.schema().fields().iter().enumerate() {
        let (e, a) = (expected.column(i), actual.column(i));
        let row_input = |row: usize| {
            let one = input.slice(row, 1);
            format!("{:?}", one.columns())
        };
        for row in 0..e.len() {
            assert_eq!(
                e.is_null(row),
                a.is_null(row),
                "{what}: column {} row {row}: null in one output only (input {})",
                field.name(),
                row_input(row)
            );
        }
        if field.data_type() == &DataType::Float64 {
            let (e, a) = (
                e.as_primitive::<Float64Type>(),
                a.as_primitive::<Float64Type>(),
            );
            for row in (0..e.len()).filter(|r| e.is_valid(*r)) {
                assert_eq!(
                    e.value(row).to_bits(),
                    a.value(row).to_bits(),
                    "{what}: column {} row {row}: {:e} (Rust) vs {:e} (input {})",
                    field.name(),
                    e.value(row),
                    a.value(row),
                    row_input(row)
                );
            }
        } else if field.data_type() == &DataType::Float32 {
            let (e, a) = (
                e.as_primitive::<Float32Type>(),
                a.as_primitive::<Float32Type>(),
            );
            for row in (0..e.len()).filter(|r| e.is_valid(*r)) {
                assert_eq!(
                    e.value(row).to_bits(),
                    a.value(row).to_bits(),
                    "{what}: column {} row {row}",
                    field.name(),
                );
            }
        } else {
            assert_eq!(e, a, "{what}: column {} differs", field.name());
        }
    }
}

/// Runs `language`'s example and the Rust one on the same batches and compares them.
fn matches_rust(language: Language) {
    let Some(other) = example(language) else {
        return;
    };
    let rust = example(Language::Rust).expect("the Rust example always builds");
    assert_eq!(
        other.signature(),
        rust.signature(),
        "{language}: the signature differs from Rust's"
    );
    for (rows, seed) in [(0, 1), (1, 2), (7, 3), (8, 4), (9, 5), (100, 6), (8192, 7)] {
        let input = order_batch(rows, seed);
        let expected = rust.run(&input).expect("the Rust example runs");
        let actual = other
            .run(&input)
            .unwrap_or_else(|e| panic!("{language} on {rows} rows: {e}"));
        assert_bit_identical(
            &expected,
            &actual,
            &input,
            &format!("{language}, {rows} rows"),
        );
    }
    // A batch is computed row by row: a row's output does not depend on its neighbours.
    let input = order_batch(300, 8);
    let whole = other.run(&input).unwrap();
    let part = other.run(&input.slice(100, 50)).unwrap();
    assert_bit_identical(
        &whole.slice(100, 50),
        &part,
        &input.slice(100, 50),
        "sliced batch",
    );
}

#[test]
fn python_matches_rust_bit_for_bit() {
    matches_rust(Language::Python);
}

#[test]
fn javascript_matches_rust_bit_for_bit() {
    matches_rust(Language::JavaScript);
}

#[test]
fn c_matches_rust_bit_for_bit() {
    matches_rust(Language::C);
}

/// The edge inputs really reach the interesting cases, so that the comparison above tests
/// something: inexact products, rounding of large quantities, signed zeros, Unicode strings.
#[test]
fn the_rust_reference_covers_the_edge_cases() {
    let rust = example(Language::Rust).unwrap();
    let out = rust.run(&order_batch(64, 1)).unwrap();
    let cents = out
        .column_by_name("amount_cents")
        .unwrap()
        .as_primitive::<arrow_array::types::Int64Type>();
    let sqrt = out
        .column_by_name("amount_sqrt")
        .unwrap()
        .as_primitive::<Float64Type>();
    let codes = out
        .column_by_name("country_code")
        .unwrap()
        .as_string::<i32>();
    let values: Vec<Option<i64>> = cents.iter().collect();
    // 0.29 * 100 = 28.999999999999996, floored: the product is inexact and all must agree.
    assert!(values.contains(&Some(28)), "{values:?}");
    assert!(
        sqrt.iter()
            .flatten()
            .any(|v| v == 0.0 && v.is_sign_negative())
    );
    assert!(codes.iter().flatten().any(|c| c == "DE"));
    assert!(codes.null_count() > 0);
}

/// Builds a scaffolded project into its own target directory.
fn build_scaffold(dir: &Path, language: Language) -> Option<toolchain::Built> {
    let target = format!("scaffold-{}", language.as_str());
    languages::build_or_skip(dir, &target)
}

/// `skewless new` then `skewless build` for Rust, Python and C: each project builds, its
/// component loads and runs on the project's own `input.csv`, and all agree with Rust.
#[test]
fn new_projects_build_load_and_agree() {
    let parent = tempfile::tempdir().unwrap();
    let mut outputs: Vec<(Language, RecordBatch)> = Vec::new();
    for language in [Language::Rust, Language::Python, Language::C] {
        let name = format!("demo-{}", language.as_str());
        let (dir, files) =
            toolchain::new_project(parent.path(), &name, language, &ScaffoldOptions::default())
                .unwrap();
        assert!(files.iter().any(|f| f.ends_with("input.csv")), "{files:?}");
        let Some(built) = build_scaffold(&dir, language) else {
            continue;
        };
        assert_eq!(built.language, language);
        assert!(built.size > 0 && built.digest.starts_with("sha256:"));
        let transform = engine().load_file(&built.path).unwrap();
        assert_eq!(transform.digest(), built.digest);
        assert_eq!(transform.signature().name, name);

        let (_, batches) = skewless_runtime::files::read_batches(
            &dir.join("input.csv"),
            &transform.signature().inputs,
            1024,
        )
        .unwrap();
        let input: Vec<RecordBatch> = batches.map(|b| b.unwrap()).collect();
        let output = transform.run(&input[0]).unwrap();
        assert_eq!(output.num_rows(), 5);
        outputs.push((language, output));

        // A second build with no source changed reuses the component, even with an output
        // of `skewless run` written into the project, as the scaffold's comments suggest.
        if language != Language::Rust {
            std::fs::write(dir.join("out.parquet"), b"not a source").unwrap();
            let again = build_scaffold(&dir, language).unwrap();
            assert!(
                !again.rebuilt,
                "{language}: rebuilt although nothing changed"
            );
            assert_eq!(again.digest, built.digest);
        }
    }
    let (_, rust) = outputs
        .first()
        .expect("the Rust project always builds")
        .clone();
    for (language, output) in &outputs[1..] {
        // Names differ (`demo-python`...), the columns must not.
        assert_eq!(
            rust.columns(),
            output.columns(),
            "{language} scaffold vs Rust scaffold"
        );
    }
}

/// With no tool on the search path, each language says what to install.
#[test]
fn a_missing_toolchain_names_the_install_command() {
    let parent = tempfile::tempdir().unwrap();
    let empty_path = tempfile::tempdir().unwrap();
    for (language, install) in [
        (Language::Rust, "rustup target add wasm32-wasip2"),
        (Language::Python, "pip install componentize-py==0.25.1"),
        (
            Language::JavaScript,
            "npm install -g @bytecodealliance/componentize-js@0.23.0",
        ),
        (
            Language::C,
            "apt-get install -y clang-19 lld-19 libclang-rt-19-dev-wasm32 wasi-libc",
        ),
    ] {
        let (dir, _) = toolchain::new_project(
            parent.path(),
            &format!("missing-{}", language.as_str()),
            language,
            &ScaffoldOptions::default(),
        )
        .unwrap();
        let options = BuildOptions {
            target_dir: Some(dir.join("target")),
            search_path: Some(empty_path.path().as_os_str().to_owned()),
        };
        let err = toolchain::build(&dir, &options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{language}: {err}");
        assert!(err.to_string().contains(install), "{language}: {err}");
    }
}

/// A Python transform that raises fails the batch with the exception and the row, and the
/// engine keeps serving; the JavaScript helper does the same for a thrown error.
#[test]
fn guest_exceptions_become_transform_errors_naming_the_row() {
    let parent = tempfile::tempdir().unwrap();
    for (language, entry, needle, replacement) in [
        (
            Language::Python,
            "app.py",
            "    cents = None\n",
            "    if row.category == \"dining\":\n        raise ValueError(\"no dining\")\n    cents = None\n",
        ),
        (
            Language::JavaScript,
            "app.js",
            "    let category = null;\n",
            "    if (row.category === \"dining\") throw new RangeError(\"no dining\");\n    let category = null;\n",
        ),
    ] {
        let (dir, _) = toolchain::new_project(
            parent.path(),
            &format!("raises-{}", language.as_str()),
            language,
            &ScaffoldOptions::default(),
        )
        .unwrap();
        let source = std::fs::read_to_string(dir.join(entry)).unwrap();
        assert!(source.contains(needle), "{language} template changed");
        std::fs::write(dir.join(entry), source.replacen(needle, replacement, 1)).unwrap();
        let Some(built) = languages::build_or_skip(&dir, &format!("raises-{}", language.as_str()))
        else {
            continue;
        };
        let transform = engine().load_file(&built.path).unwrap();
        let (_, batches) = skewless_runtime::files::read_batches(
            &dir.join("input.csv"),
            &transform.signature().inputs,
            1024,
        )
        .unwrap();
        let input: Vec<RecordBatch> = batches.map(|b| b.unwrap()).collect();
        let err = transform.run(&input[0]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TransformFailed, "{language}: {err}");
        let expected = match language {
            Language::Python => "ValueError: no dining",
            _ => "RangeError: no dining",
        };
        assert!(err.message().contains(expected), "{language}: {err}");
        // "dining" is the second row of input.csv.
        assert_eq!(err.context_value("row"), Some("1"), "{language}: {err}");
        // The instance is still usable for batches without the bad row.
        let ok = transform.run(&input[0].slice(0, 1)).unwrap();
        assert_eq!(ok.num_rows(), 1);
    }
}

/// A version of the request-time view, built and loaded once; `None` when its toolchain is
/// missing (and not required).
fn request_view(view: RequestView) -> Option<Transform> {
    static LOADED: [OnceLock<Option<Transform>>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = RequestView::ALL.iter().position(|v| *v == view).unwrap();
    LOADED[slot]
        .get_or_init(|| {
            let built = view.build()?;
            Some(
                engine()
                    .load_file(&built.path)
                    .unwrap_or_else(|e| panic!("{} should load: {e}", view.name())),
            )
        })
        .clone()
}

/// The request-time view in Python, columnar and per row, returns the Rust twin's bits on
/// edge values (NaN, infinities, signed zeros, subnormals, extremes), nulls in either input,
/// random values and batch sizes around the bitmaps' bytes. `log1p` included: both languages
/// call wasi-libc's.
#[test]
fn python_request_view_matches_rust_bit_for_bit() {
    let Some(rust) = request_view(RequestView::Rust) else {
        return;
    };
    let edges = languages::EDGE_AMOUNTS.len() * languages::EDGE_AVERAGES.len();
    for view in [RequestView::PythonColumnar, RequestView::PythonRows] {
        let Some(python) = request_view(view) else {
            continue;
        };
        assert_eq!(python.signature(), rust.signature(), "{}", view.name());
        // Python builds against the contract of byte buffers, Rust against typed lists: the
        // host translates, and the outputs must not tell.
        assert_eq!(
            (python.contract_version(), rust.contract_version()),
            ("0.2.0", "0.1.0")
        );
        for (rows, seed) in [(0, 1), (1, 2), (9, 3), (edges, 4), (1000, 5), (8192, 6)] {
            let input = request_batch(rows, seed);
            let expected = rust.run(&input).expect("the Rust twin runs");
            let actual = python
                .run(&input)
                .unwrap_or_else(|e| panic!("{} on {rows} rows: {e}", view.name()));
            let what = format!("{}, {rows} rows", view.name());
            assert_bit_identical(&expected, &actual, &input, &what);
        }
        // Rows without nulls in one column or in both: the readers' no-validity paths.
        let input = request_batch(edges, 7);
        let expected = rust.run(&input).unwrap();
        assert_bit_identical(&expected, &python.run(&input).unwrap(), &input, "no nulls");
    }
}

/// The edge rows reach every branch the comparison above is meant to test.
#[test]
fn the_request_view_reference_covers_the_edge_cases() {
    let Some(rust) = request_view(RequestView::Rust) else {
        return;
    };
    let out = rust.run(&request_batch(2000, 4)).unwrap();
    let log1p = out
        .column_by_name("amount_log1p")
        .unwrap()
        .as_primitive::<Float64Type>();
    let ratio = out
        .column_by_name("amount_to_avg_ratio")
        .unwrap()
        .as_primitive::<Float64Type>();
    let large = out.column_by_name("is_large").unwrap().as_boolean();
    let logs: Vec<f64> = log1p.iter().flatten().collect();
    assert!(
        logs.iter().any(|v| *v == 0.0 && v.is_sign_negative()),
        "log1p(-0.0)"
    );
    assert!(logs.contains(&f64::INFINITY), "log1p(inf)");
    assert!(log1p.null_count() > 0 && ratio.null_count() > 0);
    assert!(
        ratio.iter().flatten().any(|r| r < 0.0),
        "negative amounts over averages"
    );
    assert!(large.true_count() > 0 && large.false_count() > 0);
}

/// A batch of every echoed type: edge values (integer limits, NaN, infinities, signed zeros,
/// subnormals, empty and non-ASCII strings, empty and 0xff bytes), with `nulls` deciding
/// which rows are null (the same rows in every column but `c_f64`, whose null rows are
/// shifted so that a NaN and a null meet in neither order); strings ASCII-only or not.
fn echo_batch(rows: usize, nulls: fn(usize) -> bool, ascii: bool) -> RecordBatch {
    use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
    use arrow_array::{
        BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    let f64s = [
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        5e-324,
        f64::MAX,
        -1.5,
        1.0 / 3.0,
    ];
    let f32s = [0.0f32, -0.0, f32::INFINITY, 1e-45, f32::MAX, -2.5, 0.1];
    let i64s = [i64::MIN, i64::MAX, 0, -1, 1 << 53, (1 << 53) + 1];
    let i32s = [i32::MIN, i32::MAX, 0, -1];
    let strings: &[&str] = if ascii {
        &["", "a", "hello world", " ", "0123456789"]
    } else {
        &["", "é", "🦀 crab", "日本語", "a\u{0}b", "ascii"]
    };
    let bytes: [&[u8]; 4] = [b"", b"\xff\xfe", b"\x00", b"bytes"];
    let opt = |i: usize| !nulls(i);
    let mut vec = FixedSizeListBuilder::new(Float32Builder::new(), 4).with_field(Arc::new(
        arrow_schema::Field::new("item", DataType::Float32, false),
    ));
    for i in 0..rows {
        vec.values()
            .append_slice(&[f32s[i % f32s.len()], 1.0, -0.0, i as f32]);
        vec.append(opt(i));
    }
    skewless_tests::batch(vec![
        (
            "c_bool",
            Arc::new(
                (0..rows)
                    .map(|i| opt(i).then_some(i % 3 == 0))
                    .collect::<BooleanArray>(),
            ),
        ),
        (
            "c_i32",
            Arc::new(
                (0..rows)
                    .map(|i| opt(i).then_some(i32s[i % i32s.len()]))
                    .collect::<Int32Array>(),
            ),
        ),
        (
            "c_i64",
            Arc::new(
                (0..rows)
                    .map(|i| opt(i).then_some(i64s[i % i64s.len()]))
                    .collect::<Int64Array>(),
            ),
        ),
        (
            "c_f32",
            Arc::new(
                (0..rows)
                    .map(|i| opt(i).then_some(f32s[i % f32s.len()]))
                    .collect::<Float32Array>(),
            ),
        ),
        (
            "c_f64",
            Arc::new(
                (0..rows)
                    .map(|i| opt(i + 1).then_some(f64s[i % f64s.len()]))
                    .collect::<Float64Array>(),
            ),
        ),
        (
            "c_utf8",
            Arc::new(
                (0..rows)
                    .map(|i| opt(i).then_some(strings[i % strings.len()]))
                    .collect::<StringArray>(),
            ),
        ),
        (
            "c_binary",
            Arc::new(
                (0..rows)
                    .map(|i| opt(i).then_some(bytes[i % bytes.len()]))
                    .collect::<BinaryArray>(),
            ),
        ),
        (
            "c_ts",
            Arc::new(
                (0..rows)
                    .map(|i| opt(i).then_some(i64s[i % i64s.len()]))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("+00:00"),
            ),
        ),
        ("c_vec", Arc::new(vec.finish())),
    ])
}

/// The Python helper's readers and builders, columnar and per row, return every type
/// unchanged: empty batches, no nulls (no validity bitmap), all nulls, nulls every few rows
/// around the bitmaps' byte boundaries, NaN next to null, integer limits, ASCII-only and
/// Unicode strings.
#[test]
fn python_helpers_round_trip_every_type() {
    let dir = languages::workspace().join("tests/guests");
    let none: fn(usize) -> bool = |_| false;
    let all: fn(usize) -> bool = |_| true;
    let some: fn(usize) -> bool = |i| i % 3 == 1 || i == 8;
    for project in ["python-echo", "python-echo-rows"] {
        let Some(built) = languages::build_or_skip(&dir.join(project), project) else {
            return;
        };
        let echo = engine().load_file(&built.path).unwrap();
        for rows in [0, 1, 7, 8, 9, 17, 1000] {
            for (nulls, which) in [(none, "none"), (all, "all"), (some, "some")] {
                for ascii in [true, false] {
                    let input = echo_batch(rows, nulls, ascii);
                    let output = echo
                        .run(&input)
                        .unwrap_or_else(|e| panic!("{project}, {rows} rows: {e}"));
                    let what = format!("{project}, {rows} rows, nulls: {which}, ascii: {ascii}");
                    // The input's columns under the output's schema: also checks the types.
                    let expected = RecordBatch::try_new(output.schema(), input.columns().to_vec())
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_bit_identical(&expected, &output, &input, &what);
                    if which == "none" {
                        // A column with no nulls goes back without a validity bitmap.
                        assert!(
                            output.columns().iter().all(|c| c.nulls().is_none()),
                            "{what}"
                        );
                    }
                }
            }
        }
    }
}
