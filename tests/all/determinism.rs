//! Determinism: the same component on the same input gives bit-identical output whatever
//! the instance (fresh or reused), the batch size, or the NaN payloads the hardware picks.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type};
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::DataType;
use skewless_runtime::{Transform, TransformEngine};
use skewless_tests::{batch, components, engine, load};

/// Float columns compared by bit pattern (NaN payloads and signed zeros included), all
/// other columns by value, validity included.
fn assert_bit_identical(a: &RecordBatch, b: &RecordBatch) {
    assert_eq!(a.schema(), b.schema());
    assert_eq!(a.num_rows(), b.num_rows());
    for (i, field) in a.schema().fields().iter().enumerate() {
        let (x, y) = (a.column(i), b.column(i));
        assert_eq!(
            x.logical_nulls(),
            y.logical_nulls(),
            "validity of {}",
            field.name()
        );
        match field.data_type() {
            DataType::Float64 => assert_eq!(f64_bits(x), f64_bits(y), "bits of {}", field.name()),
            DataType::Float32 => {
                let bits = |c: &ArrayRef| -> Vec<u32> {
                    c.as_primitive::<Float32Type>()
                        .values()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                };
                assert_eq!(bits(x), bits(y), "bits of {}", field.name());
            }
            _ => assert_eq!(x, y, "values of {}", field.name()),
        }
    }
}

fn f64_bits(c: &ArrayRef) -> Vec<Option<u64>> {
    let c = c.as_primitive::<Float64Type>();
    (0..c.len())
        .map(|i| c.is_valid(i).then(|| c.value(i).to_bits()))
        .collect()
}

/// Runs `transform` over `input` cut into batches of `size` rows and glues the outputs.
fn in_batches(transform: &Transform, input: &RecordBatch, size: usize) -> RecordBatch {
    let outputs: Vec<RecordBatch> = (0..input.num_rows())
        .step_by(size)
        .map(|start| {
            let len = size.min(input.num_rows() - start);
            transform.run(&input.slice(start, len)).unwrap()
        })
        .collect();
    arrow_select::concat::concat_batches(transform.output_schema(), &outputs).unwrap()
}

/// Inputs with awkward values: nulls, NaNs with odd payloads, infinities, signed zeros,
/// subnormals and huge magnitudes.
fn awkward_transactions() -> RecordBatch {
    let specials = [
        Some(f64::from_bits(0xfff8_0000_dead_beef)),
        Some(f64::NAN),
        Some(f64::INFINITY),
        Some(f64::NEG_INFINITY),
        Some(-0.0),
        Some(0.0),
        Some(f64::MIN_POSITIVE / 2.0),
        Some(1e308),
        Some(-1e-308),
        None,
    ];
    let amount: Float64Array = (0..500)
        .map(|i| match i % 13 {
            0..=9 => specials[i % 10],
            _ => Some(i as f64 * 3.7 - 200.0),
        })
        .collect();
    let balance: Float64Array = (0..500)
        .map(|i| match i % 7 {
            0..=5 => specials[(i * 3) % 10],
            _ => Some(1000.0 - i as f64),
        })
        .collect();
    batch(vec![
        ("amount", Arc::new(amount)),
        ("balance_before", Arc::new(balance)),
    ])
}

#[test]
fn whole_batch_row_by_row_and_other_batch_sizes_agree_bit_for_bit() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let cases = [
        (components::TRANSACTION_FEATURES, awkward_transactions()),
        (
            components::MERCHANT_CATEGORY,
            batch(vec![(
                "merchant",
                Arc::new(arrow_array::StringArray::from(vec![
                    Some("SQ *BLUE BOTTLE #12"),
                    None,
                    Some("Ünïcödé Café 42"),
                    Some(""),
                    Some("x".repeat(100_000).as_str()),
                ])),
            )]),
        ),
    ];
    for (path, input) in cases {
        let transform = load(&engine, path);
        let whole = transform.run(&input).unwrap();
        for size in [1, 2, 7, 64, 1000] {
            assert_bit_identical(&in_batches(&transform, &input, size), &whole);
        }
    }
}

#[test]
fn fresh_and_reused_instances_and_engines_agree_bit_for_bit() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let transform = load(&engine, components::TRANSACTION_FEATURES);
    let input = awkward_transactions();
    let first = transform.run(&input).unwrap();
    for _ in 0..3 {
        assert_bit_identical(&transform.run(&input).unwrap(), &first);
    }
    transform.clear_warm_instances();
    assert_bit_identical(&transform.run(&input).unwrap(), &first);

    // An engine that canonicalizes NaNs inside the guest as well, and one without pooling.
    for other in [
        TransformEngine::builder()
            .canonicalize_nans_in_guest(true)
            .build()
            .unwrap(),
        TransformEngine::builder().pooling(false).build().unwrap(),
    ] {
        let t = other.load_file(components::TRANSACTION_FEATURES).unwrap();
        assert_bit_identical(&t.run(&input).unwrap(), &first);
    }
}

#[test]
fn nan_outputs_leave_the_sandbox_as_the_canonical_nan() {
    let cache = tempfile::tempdir().unwrap();
    let engine = engine(&cache);
    let echo = load(&engine, components::ECHO_GUEST);
    let input = skewless_tests::all_types_batch(&[
        f64::from_bits(0xfff8_0000_0000_0001),
        f64::from_bits(0x7ff4_0000_0000_0000),
        -f64::NAN,
        1.25,
    ]);
    let out = echo.run(&input).unwrap();
    let f64s = out
        .column_by_name("c_f64")
        .unwrap()
        .as_primitive::<Float64Type>();
    let bits: Vec<u64> = f64s.values().iter().map(|v| v.to_bits()).collect();
    assert_eq!(
        bits,
        [
            0x7ff8_0000_0000_0000,
            0x7ff8_0000_0000_0000,
            0x7ff8_0000_0000_0000,
            1.25f64.to_bits()
        ]
    );
    let f32s = out
        .column_by_name("c_f32")
        .unwrap()
        .as_primitive::<Float32Type>();
    // Row 1 is null in this column; rows 0 and 2 hold NaNs.
    assert_eq!(f32s.value(0).to_bits(), 0x7fc0_0000);
    assert_eq!(f32s.value(2).to_bits(), 0x7fc0_0000);
}
