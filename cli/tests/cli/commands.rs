//! The `skewless` binary: `inspect` and `run` on real components and files, and how it
//! reports bad input (a message naming the file and column, exit code 1).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{Array, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use skewless_runtime::TransformEngine;
use skewless_test_components::{HOSTILE_GUEST, TRANSACTION_FEATURES};

fn skewless(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skewless"))
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

const CSV: &str = "txn_id,amount,balance_before\n\
                   1,12.5,100.0\n\
                   2,,50.0\n\
                   3,250.0,0.0\n\
                   4,9999.99,\n";

#[test]
fn inspect_prints_the_signature_as_json_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = skewless(dir.path(), &["inspect", TRANSACTION_FEATURES, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["name"], "transaction-features");
    assert!(json["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(
        json["size_bytes"],
        std::fs::metadata(TRANSACTION_FEATURES).unwrap().len()
    );
    let inputs: Vec<_> = json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].clone())
        .collect();
    assert_eq!(inputs, ["amount", "balance_before"]);
    assert_eq!(json["inputs"][0]["type"], "float64");

    let text = skewless(dir.path(), &["inspect", TRANSACTION_FEATURES]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("transaction-features "), "{text}");
    assert!(text.contains("outputs (5)"), "{text}");
}

#[test]
fn run_streams_a_csv_through_the_transform_into_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("txns.csv");
    let output = dir.path().join("features.parquet");
    std::fs::write(&input, CSV).unwrap();
    let out = skewless(
        dir.path(),
        &[
            "run",
            TRANSACTION_FEATURES,
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--batch-size",
            "3",
            "--keep-input",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = String::from_utf8(out.stdout).unwrap();
    assert!(summary.starts_with("4 rows -> "), "{summary}");
    assert!(summary.contains("rows/s"), "{summary}");
    assert!(summary.contains("sha256:"), "{summary}");

    let written = read_parquet(&output);
    let rows: usize = written.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 4);
    let schema = written[0].schema();
    assert_eq!(schema.field(0).name(), "txn_id");
    assert!(schema.field_with_name("amount_log1p").is_ok());

    // The file holds exactly what calling the transform directly gives.
    let engine = TransformEngine::builder().build().unwrap();
    let transform = engine.load_file(TRANSACTION_FEATURES).unwrap();
    let amounts = Float64Array::from(vec![Some(12.5), None, Some(250.0), Some(9999.99)]);
    let balances = Float64Array::from(vec![Some(100.0), Some(50.0), Some(0.0), None]);
    let direct = transform
        .run(
            &RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("amount", DataType::Float64, true),
                    Field::new("balance_before", DataType::Float64, true),
                ])),
                vec![Arc::new(amounts), Arc::new(balances)],
            )
            .unwrap(),
        )
        .unwrap();
    let all = arrow_select_concat(&written);
    for field in transform.output_schema().fields() {
        let from_file = all.column_by_name(field.name()).unwrap();
        let from_call = direct.column_by_name(field.name()).unwrap();
        assert_eq!(
            from_file.to_data(),
            from_call.to_data(),
            "column {}",
            field.name()
        );
    }
}

fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    arrow_select::concat::concat_batches(&batches[0].schema(), batches).unwrap()
}

#[test]
fn run_reads_parquet_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("txns.parquet");
    let output = dir.path().join("out.parquet");
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("amount", DataType::Float64, true),
            Field::new("balance_before", DataType::Float32, true),
        ])),
        vec![
            Arc::new(Float64Array::from(vec![1.0; 10_000])),
            Arc::new(arrow_array::Float32Array::from(vec![2.0; 10_000])),
        ],
    )
    .unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&input).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let out = skewless(
        dir.path(),
        &[
            "run",
            TRANSACTION_FEATURES,
            "-i",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let written = read_parquet(&output);
    assert_eq!(
        written.iter().map(RecordBatch::num_rows).sum::<usize>(),
        10_000
    );
    let ratio = written[0]
        .column_by_name("amount_to_balance_ratio")
        .unwrap();
    let ratio = ratio.as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!(ratio.value(0), 0.5);
}

#[test]
fn bad_input_fails_with_a_message_naming_what_was_wrong_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.parquet");
    let o = output.to_str().unwrap();

    let missing_col = dir.path().join("nocol.csv");
    std::fs::write(&missing_col, "txn_id,amount\n1,2.0\n").unwrap();
    let out = skewless(
        dir.path(),
        &[
            "run",
            TRANSACTION_FEATURES,
            "-i",
            missing_col.to_str().unwrap(),
            "-o",
            o,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("missing input column `balance_before`"),
        "{err}"
    );
    assert!(err.contains("nocol.csv"), "{err}");
    assert!(err.contains("transaction-features"), "{err}");
    assert!(!output.exists(), "a failed run leaves no output file");

    let bad_value = dir.path().join("bad.csv");
    std::fs::write(&bad_value, "amount,balance_before\n1.0,2.0\nabc,3.0\n").unwrap();
    let out = skewless(
        dir.path(),
        &[
            "run",
            TRANSACTION_FEATURES,
            "-i",
            bad_value.to_str().unwrap(),
            "-o",
            o,
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("bad.csv"), "{}", stderr(&out));
    assert!(!output.exists());

    let txt = dir.path().join("data.txt");
    std::fs::write(&txt, "x").unwrap();
    let out = skewless(
        dir.path(),
        &[
            "run",
            TRANSACTION_FEATURES,
            "-i",
            txt.to_str().unwrap(),
            "-o",
            o,
        ],
    );
    assert!(
        stderr(&out).contains("expected a `.parquet` or `.csv` file"),
        "{}",
        stderr(&out)
    );

    let out = skewless(dir.path(), &["inspect", txt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a WebAssembly component"),
        "{}",
        stderr(&out)
    );

    let out = skewless(dir.path(), &["inspect"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn a_trapping_transform_fails_the_run_and_names_the_transform() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("modes.csv");
    std::fs::write(&input, "mode\n3\n3\n").unwrap();
    let output = dir.path().join("out.parquet");
    let out = skewless(
        dir.path(),
        &[
            "run",
            HOSTILE_GUEST,
            "-i",
            input.to_str().unwrap(),
            "-o",
            output.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("trapped"), "{err}");
    assert!(err.contains("digest: sha256:"), "{err}");
    assert!(!output.exists());
}
