//! Hostile components: each fails its own call with a clear error, and the same engine
//! then runs a good transform correctly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, Int32Array, Int64Array};
use skewless_runtime::{ErrorKind, Transform, TransformEngine};
use skewless_tests::{batch, components, engine, load};

fn mode(m: i32, rows: usize) -> arrow_array::RecordBatch {
    batch(vec![("mode", Arc::new(Int32Array::from(vec![m; rows])))])
}

/// After a hostile call, the same transform (mode 0) and a real example both still work.
fn still_serves(engine: &TransformEngine, hostile: &Transform) {
    let out = hostile
        .run(&mode(0, 3))
        .expect("mode 0 succeeds after a failure");
    let out = out.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(out.values(), &[1, 1, 1]);
    let example = load(engine, components::TIME_FEATURES);
    let ts = arrow_array::TimestampMicrosecondArray::from(vec![0]).with_timezone("+00:00");
    example
        .run(&batch(vec![("event_ts", Arc::new(ts))]))
        .expect("a good transform runs on the same engine");
}

fn fails(m: i32) -> (skewless_runtime::Error, Duration) {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let hostile = load(&engine, components::HOSTILE_GUEST);
    let started = Instant::now();
    let err = hostile.run(&mode(m, 4)).expect_err("hostile mode fails");
    let elapsed = started.elapsed();
    assert_eq!(err.context_value("digest"), Some(hostile.digest()), "{err}");
    assert!(err.context_value("transform").is_some(), "{err}");
    still_serves(&engine, &hostile);
    (err, elapsed)
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() {
    let (err, elapsed) = fails(1);
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
    assert!(err.message().contains("ran past its deadline"), "{err}");
    // The deadline is 1 s; epoch ticks are 10 ms. Generous bound: it must not hang.
    assert!(
        elapsed < Duration::from_secs(10),
        "stopped after {elapsed:?}"
    );
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let (err, _) = fails(2);
    assert_eq!(err.kind(), ErrorKind::MemoryLimitExceeded, "{err}");
    assert!(
        err.message().contains("memory limit of 67108864 bytes"),
        "{err}"
    );
}

#[test]
fn a_panic_is_a_trap() {
    let (err, _) = fails(3);
    assert_eq!(err.kind(), ErrorKind::Trapped, "{err}");
    assert!(err.message().contains("trapped"), "{err}");
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    let (err, _) = fails(4);
    assert_eq!(err.kind(), ErrorKind::Trapped, "{err}");
    assert!(err.message().contains("overflowed its stack"), "{err}");
}

#[test]
fn a_wrong_row_count_is_a_schema_mismatch() {
    let (err, _) = fails(5);
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch, "{err}");
    assert!(
        err.message()
            .contains("returned 5 rows for an input of 4 rows"),
        "{err}"
    );
}

#[test]
fn a_wrong_output_type_names_the_column() {
    let (err, _) = fails(6);
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch, "{err}");
    assert_eq!(err.context_value("column"), Some("out"));
    assert!(
        err.message()
            .contains("declared int64, but the transform returned float64"),
        "{err}"
    );
}

#[test]
fn an_undeclared_output_column_is_rejected() {
    let (err, _) = fails(7);
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch, "{err}");
    assert!(
        err.message()
            .contains("which its signature does not declare"),
        "{err}"
    );
}

#[test]
fn a_batch_level_error_from_the_guest_is_a_transform_failure_with_its_column_and_row() {
    let (err, _) = fails(8);
    assert_eq!(err.kind(), ErrorKind::TransformFailed, "{err}");
    assert_eq!(err.context_value("column"), Some("mode"));
    assert_eq!(err.context_value("row"), Some("0"));
}

#[test]
fn a_component_of_another_world_is_refused_at_load() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let err = engine
        .load_file(components::WRONG_WORLD_GUEST)
        .expect_err("another world does not load");
    assert_eq!(err.kind(), ErrorKind::InvalidComponent, "{err}");
    assert!(
        err.message()
            .contains("does not export the function `describe`"),
        "{err}"
    );
    assert!(err.message().contains("[run]"), "{err}");
    assert!(err.context_value("file").is_some() && err.context_value("digest").is_some());
    load(&engine, components::TIME_FEATURES);
}

/// A component of contract 0.1.0 with every mention of its version rewritten (same length, so
/// the file stays a valid component): the host reads the version the component names.
fn renamed_contract(version: &str) -> Vec<u8> {
    let from = b"skewless:transform/types@0.1.0";
    let to = format!("skewless:transform/types@{version}");
    assert_eq!(to.len(), from.len());
    let mut bytes = std::fs::read(components::TIME_FEATURES).unwrap();
    let mut found = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to.as_bytes());
            found += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(found > 0, "the component names its contract");
    bytes
}

#[test]
fn a_component_of_a_contract_version_the_host_does_not_run_is_refused_naming_both() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let err = engine
        .load_bytes(&renamed_contract("0.9.0"))
        .expect_err("an unknown contract version does not load");
    assert_eq!(err.kind(), ErrorKind::InvalidComponent, "{err}");
    assert!(
        err.message().contains(
            "built against skewless:transform@0.9.0; this host runs versions 0.1.0 and 0.2.0"
        ),
        "{err}"
    );
}

#[test]
fn a_component_whose_types_are_not_those_of_the_version_it_names_is_refused() {
    // Typed lists (0.1.0's) under the 0.2.0 name: 0.2.0 carries them as bytes.
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let err = engine
        .load_bytes(&renamed_contract("0.2.0"))
        .expect_err("mismatched types do not load");
    assert_eq!(err.kind(), ErrorKind::InvalidComponent, "{err}");
    assert!(
        err.message()
            .contains("do not have the types of skewless:transform/feature-transform@0.2.0"),
        "{err}"
    );
    assert!(
        err.message()
            .contains("Rebuild it against `wit/0.2.0/transform.wit`"),
        "{err}"
    );
    load(&engine, components::TIME_FEATURES);
}

#[test]
fn a_core_module_or_garbage_is_refused_with_what_it_is() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let core = engine.load_bytes(b"\0asm\x01\0\0\0").unwrap_err();
    assert_eq!(core.kind(), ErrorKind::InvalidComponent);
    assert!(
        core.message()
            .contains("core WebAssembly module, not a component"),
        "{core}"
    );
    let junk = engine.load_bytes(b"PAR1 not wasm").unwrap_err();
    assert!(
        junk.message().contains("not a WebAssembly component"),
        "{junk}"
    );
    let missing = engine.load_file("/nonexistent/x.wasm").unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::Io);
    assert_eq!(missing.context_value("file"), Some("/nonexistent/x.wasm"));
}

#[test]
fn a_missing_input_column_names_the_column_and_transform() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let hostile = load(&engine, components::HOSTILE_GUEST);
    let wrong = batch(vec![("other", Arc::new(Int32Array::from(vec![1])))]);
    let err = hostile.run(&wrong).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
    assert_eq!(err.context_value("column"), Some("mode"));
    assert!(
        err.context_value("transform")
            .unwrap()
            .starts_with(&hostile.signature().name)
    );
    let nulls = batch(vec![(
        "mode",
        Arc::new(Int32Array::from(vec![Some(0), None])),
    )]);
    let err = hostile.run(&nulls).unwrap_err();
    assert!(err.message().contains("declared not null"), "{err}");
    assert!(hostile.run(&mode(0, 1)).unwrap().column(0).len() == 1);
}

#[test]
fn sleeping_fails_the_call_at_once_instead_of_holding_a_thread_past_the_deadline() {
    let (err, elapsed) = fails(11);
    assert_eq!(err.kind(), ErrorKind::Trapped, "{err}");
    assert!(
        err.message().contains("tried to sleep or wait on a clock"),
        "{err}"
    );
    // The guest asked for 60 s; the deadline is 1 s.
    assert!(
        elapsed < Duration::from_secs(5),
        "stopped after {elapsed:?}"
    );
}
