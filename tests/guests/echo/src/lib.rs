//! # `echo-guest`: a test fixture that copies its input
//!
//! Declares one nullable input of every WIT type and outputs the same columns, with the same
//! names, unchanged: the host's Arrow ↔ WIT conversion can then be round-tripped through a
//! real component (including nulls, empty strings, NaN payloads and batches of 0 rows).
//!
//! | Column | Type |
//! |---|---|
//! | `c_bool` | boolean |
//! | `c_i32` | int32 |
//! | `c_i64` | int64 |
//! | `c_f32` | float32 |
//! | `c_f64` | float64 |
//! | `c_utf8` | utf8 |
//! | `c_binary` | binary |
//! | `c_ts` | timestamp |
//! | `c_vec` | float32-vector(4) |
//!
//! Each column is read with the typed accessors of `skewless_guest::Batch` and rebuilt value by
//! value with the SDK's builders, so the fixture also exercises the SDK: a null stays a null,
//! and a column without nulls comes back without a validity bitmap. Float values are copied
//! bit for bit (copies do not canonicalize NaNs; the host does, on output).
//!
//! Build: `cargo build --profile guest --target wasm32-wasip2 -p echo-guest` (the
//! `skewless-test-components` crate does it for the tests).

use skewless_guest::{
    Batch, BatchBuilder, BinaryBuilder, BooleanBuilder, DataType, Field, Float32Builder,
    Float32VectorBuilder, Float64Builder, Int32Builder, Int64Builder, Signature, TimestampBuilder,
    Transform, TransformError, Utf8Builder, export_transform,
};

/// The dimension of `c_vec`.
pub const VECTOR_DIMENSION: usize = 4;

/// The echoed columns and their types.
pub fn columns() -> [(&'static str, DataType); 9] {
    [
        ("c_bool", DataType::Boolean),
        ("c_i32", DataType::Int32),
        ("c_i64", DataType::Int64),
        ("c_f32", DataType::Float32),
        ("c_f64", DataType::Float64),
        ("c_utf8", DataType::Utf8),
        ("c_binary", DataType::Binary),
        ("c_ts", DataType::Timestamp),
        ("c_vec", DataType::Float32Vector(VECTOR_DIMENSION as u32)),
    ]
}

/// The echo transform.
#[derive(Debug)]
pub struct Echo;

impl Transform for Echo {
    fn signature() -> Signature {
        let fields = || {
            columns()
                .into_iter()
                .map(|(name, data_type)| Field::new(name, data_type, true))
        };
        Signature::new("echo", "1.0.0")
            .description("Test fixture: returns its input columns unchanged")
            .inputs(fields())
            .outputs(fields())
    }

    fn transform(input: &Batch) -> Result<Batch, TransformError> {
        let n = input.num_rows();
        let mut out = BatchBuilder::new(n);

        let column = input.boolean("c_bool")?;
        let mut builder = BooleanBuilder::with_capacity(n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_bool", builder);

        let column = input.int32("c_i32")?;
        let mut builder = Int32Builder::with_capacity(n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_i32", builder);

        let column = input.int64("c_i64")?;
        let mut builder = Int64Builder::with_capacity(n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_i64", builder);

        let column = input.float32("c_f32")?;
        let mut builder = Float32Builder::with_capacity(n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_f32", builder);

        let column = input.float64("c_f64")?;
        let mut builder = Float64Builder::with_capacity(n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_f64", builder);

        let column = input.utf8("c_utf8")?;
        let mut builder = Utf8Builder::with_capacity(n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_utf8", builder);

        let column = input.binary("c_binary")?;
        let mut builder = BinaryBuilder::with_capacity(n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_binary", builder);

        let column = input.timestamp("c_ts")?;
        let mut builder = TimestampBuilder::with_capacity(n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_ts", builder);

        let column = input.float32_vector("c_vec", VECTOR_DIMENSION)?;
        let mut builder = Float32VectorBuilder::with_capacity(VECTOR_DIMENSION, n);
        (0..n).for_each(|i| builder.push(column.get(i)));
        out.add_column("c_vec", builder);

        out.finish()
    }
}

export_transform!(Echo);
