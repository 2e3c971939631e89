//! The sandbox: no capabilities, deterministic stand-ins for what `std` imports.

use std::sync::Arc;

use arrow_array::{Array, Int32Array, Int64Array};
use skewless_tests::{batch, components, engine, load};

/// Mode 10 of the hostile guest reports, in rows 0-3: the wall clock (seconds since the
/// epoch), a value derived from WASI random, the number of environment variables, and
/// whether reading the root directory succeeded.
fn probe(transform: &skewless_runtime::Transform) -> Vec<i64> {
    let out = transform
        .run(&batch(vec![(
            "mode",
            Arc::new(Int32Array::from(vec![10; 4])),
        )]))
        .expect("the probe runs");
    out.column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

#[test]
fn clock_is_fixed_random_is_seeded_and_there_is_no_environment_or_filesystem() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let hostile = load(&engine, components::HOSTILE_GUEST);
    let first = probe(&hostile);
    assert_eq!(first[0], 0, "the wall clock reads the Unix epoch");
    assert_eq!(first[2], 0, "no environment variables");
    assert_eq!(first[3], 0, "no filesystem");

    // A fresh instance, and a fresh engine, see exactly the same "random" value.
    hostile.clear_warm_instances();
    assert_eq!(probe(&hostile), first);
    let other_cache = tempfile::tempdir().unwrap();
    let other = load(&engine_with(&other_cache), components::HOSTILE_GUEST);
    assert_eq!(probe(&other), first);
}

fn engine_with(cache: &tempfile::TempDir) -> skewless_runtime::TransformEngine {
    engine(cache)
}

#[test]
fn guest_output_is_captured_not_printed_and_the_call_succeeds() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let hostile = load(&engine, components::HOSTILE_GUEST);
    let out = hostile
        .run(&batch(vec![(
            "mode",
            Arc::new(Int32Array::from(vec![9; 2])),
        )]))
        .expect("printing is allowed");
    assert_eq!(out.column(0).len(), 2);
}
