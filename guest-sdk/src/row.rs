//! The per-row API: row structs (`#[derive(Row)]`) and their field types.
//!
//! `#[derive(Row)]` implements [`Row`] and [`ReadRow`] for a struct by combining the
//! implementations of [`RowField`] and [`ReadField`] of its fields: the reader of a row is the
//! tuple of its fields' column views, its builder the tuple of its fields' column builders. A
//! row is read straight from typed slices and written straight into builders; only `String`,
//! `Vec<u8>` input fields copy (use `&str` / `&[u8]` to borrow instead).
//!
//! You do not implement these traits by hand; their methods are an implementation detail of
//! the derive and of [`transform`](crate::transform).

use crate::batch::{
    Batch, BinaryColumn, BooleanColumn, Float32VectorColumn, PrimitiveColumn, TimestampColumn,
    Utf8Column,
};
use crate::builder::{
    BatchBuilder, BinaryBuilder, BooleanBuilder, ColumnBuilder, Float32VectorBuilder,
    PrimitiveBuilder, TimestampBuilder, Utf8Builder,
};
use crate::signature::{DataType, Field};
use crate::value::{Timestamp, Vector};
use crate::{Signature, TransformError};

/// A struct whose fields are columns: the input or output of a per-row transform.
///
/// Implemented by `#[derive(Row)]`; field names are column names.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a row type",
    label = "`{Self}` does not derive `Row`",
    note = "a per-row transform reads and returns structs with `#[derive(skewless_guest::Row)]`"
)]
pub trait Row: Sized {
    /// The column builders of the fields, as a tuple.
    #[doc(hidden)]
    type Builder;

    /// The columns, one per field, in field order.
    fn fields() -> Vec<Field>;

    #[doc(hidden)]
    fn builder(capacity: usize) -> Self::Builder;

    #[doc(hidden)]
    fn push(builder: &mut Self::Builder, row: Self);

    #[doc(hidden)]
    fn finish(builder: Self::Builder, batch: &mut BatchBuilder);
}

/// A [`Row`] that can be read from a [`Batch`] borrowed for `'a`.
///
/// Implemented by `#[derive(Row)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the input row of a transform",
    label = "`{Self}` does not derive `Row`",
    note = "a per-row transform reads a struct with `#[derive(skewless_guest::Row)]`"
)]
pub trait ReadRow<'a>: Row {
    /// The column views of the fields, as a tuple.
    #[doc(hidden)]
    type Reader;

    #[doc(hidden)]
    fn reader(batch: &'a Batch) -> Result<Self::Reader, TransformError>;

    #[doc(hidden)]
    fn read(reader: &Self::Reader, row: usize) -> Self;
}

/// A type a [`Row`] field can have; `Option<T>` makes the column nullable.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a row field",
    note = "supported field types: bool, i32, i64, f32, f64, String, &str, Vec<u8>, &[u8], \
            skewless_guest::Timestamp, skewless_guest::Vector<N>, [f32; N], \
            and Option<T> of these for a nullable column"
)]
pub trait RowField: Sized {
    /// The column builder.
    #[doc(hidden)]
    type Builder: ColumnBuilder;

    /// The column type.
    fn data_type() -> DataType;

    /// Whether the column is nullable (`Option<T>`).
    const NULLABLE: bool;

    #[doc(hidden)]
    fn builder(capacity: usize) -> Self::Builder;

    #[doc(hidden)]
    fn push(builder: &mut Self::Builder, value: Self);
}

/// A [`RowField`] that can be read from a column borrowed for `'a`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of an input row field",
    note = "supported field types: bool, i32, i64, f32, f64, String, &str, Vec<u8>, &[u8], \
            skewless_guest::Timestamp, skewless_guest::Vector<N>, [f32; N], \
            and Option<T> of these for a nullable column"
)]
pub trait ReadField<'a>: RowField {
    /// The column view.
    #[doc(hidden)]
    type Reader;

    #[doc(hidden)]
    fn reader(batch: &'a Batch, name: &str) -> Result<Self::Reader, TransformError>;

    #[doc(hidden)]
    fn read(reader: &Self::Reader, row: usize) -> Self;
}

/// Rejects nulls in a column read into a non-`Option` field. The host already rejects nulls in
/// a column declared non-nullable; this keeps a host bug from turning into made-up zeros.
fn no_nulls(name: &str, validity: crate::batch::Validity<'_>) -> Result<(), TransformError> {
    match validity.first_null() {
        None => Ok(()),
        Some(row) => Err(TransformError::new(format!(
            "input column `{name}` has a null, but its row field is not an `Option`"
        ))
        .with_column(name)
        .with_row(row)),
    }
}

/// Implements the field traits for a type and for `Option` of it.
macro_rules! field {
    (
        $t:ty, $data_type:expr, builder: $builder:ty, new: $new:expr,
        push: |$b:ident, $v:ident| $push:expr,
        reader<$a:lifetime>: $reader:ty, read: |$batch:ident, $name:ident| $open:expr,
        value: |$r:ident, $i:ident| $value:expr $(,)?
    ) => {
        impl<$a> RowField for $t {
            type Builder = $builder;
            const NULLABLE: bool = false;
            fn data_type() -> DataType {
                $data_type
            }
            fn builder(capacity: usize) -> $builder {
                $new(capacity)
            }
            #[inline]
            fn push($b: &mut $builder, $v: Self) {
                $push
            }
        }

        impl<$a> RowField for Option<$t> {
            type Builder = $builder;
            const NULLABLE: bool = true;
            fn data_type() -> DataType {
                $data_type
            }
            fn builder(capacity: usize) -> $builder {
                $new(capacity)
            }
            #[inline]
            fn push($b: &mut $builder, value: Self) {
                match value {
                    Some($v) => $push,
                    None => $b.push_null(),
                }
            }
        }

        impl<$a> ReadField<$a> for $t {
            type Reader = $reader;
            fn reader($batch: &$a Batch, $name: &str) -> Result<$reader, TransformError> {
                let column: $reader = $open?;
                no_nulls($name, column.validity())?;
                Ok(column)
            }
            #[inline]
            fn read($r: &$reader, $i: usize) -> Self {
                $value
            }
        }

        impl<$a> ReadField<$a> for Option<$t> {
            type Reader = $reader;
            fn reader($batch: &$a Batch, $name: &str) -> Result<$reader, TransformError> {
                $open
            }
            #[inline]
            fn read($r: &$reader, $i: usize) -> Self {
                if $r.is_valid($i) { Some($value) } else { None }
            }
        }
    };
}

field!(
    bool, DataType::Boolean, builder: BooleanBuilder, new: BooleanBuilder::with_capacity,
    push: |b, v| b.push_value(v),
    reader<'a>: BooleanColumn<'a>, read: |batch, name| batch.boolean(name),
    value: |r, i| r.value(i),
);
field!(
    i32, DataType::Int32, builder: PrimitiveBuilder<i32>, new: PrimitiveBuilder::with_capacity,
    push: |b, v| b.push_value(v),
    reader<'a>: PrimitiveColumn<'a, i32>, read: |batch, name| batch.int32(name),
    value: |r, i| r.value(i),
);
field!(
    i64, DataType::Int64, builder: PrimitiveBuilder<i64>, new: PrimitiveBuilder::with_capacity,
    push: |b, v| b.push_value(v),
    reader<'a>: PrimitiveColumn<'a, i64>, read: |batch, name| batch.int64(name),
    value: |r, i| r.value(i),
);
field!(
    f32, DataType::Float32, builder: PrimitiveBuilder<f32>, new: PrimitiveBuilder::with_capacity,
    push: |b, v| b.push_value(v),
    reader<'a>: PrimitiveColumn<'a, f32>, read: |batch, name| batch.float32(name),
    value: |r, i| r.value(i),
);
field!(
    f64, DataType::Float64, builder: PrimitiveBuilder<f64>, new: PrimitiveBuilder::with_capacity,
    push: |b, v| b.push_value(v),
    reader<'a>: PrimitiveColumn<'a, f64>, read: |batch, name| batch.float64(name),
    value: |r, i| r.value(i),
);
field!(
    Timestamp, DataType::Timestamp, builder: TimestampBuilder, new: TimestampBuilder::with_capacity,
    push: |b, v| b.push_value(v),
    reader<'a>: TimestampColumn<'a>, read: |batch, name| batch.timestamp(name),
    value: |r, i| r.value(i),
);
field!(
    String, DataType::Utf8, builder: Utf8Builder, new: Utf8Builder::with_capacity,
    push: |b, v| b.push_value(&v),
    reader<'a>: Utf8Column<'a>, read: |batch, name| batch.utf8(name),
    value: |r, i| r.value(i).to_owned(),
);
field!(
    &'a str, DataType::Utf8, builder: Utf8Builder, new: Utf8Builder::with_capacity,
    push: |b, v| b.push_value(v),
    reader<'a>: Utf8Column<'a>, read: |batch, name| batch.utf8(name),
    value: |r, i| r.value(i),
);
field!(
    Vec<u8>, DataType::Binary, builder: BinaryBuilder, new: BinaryBuilder::with_capacity,
    push: |b, v| b.push_value(&v),
    reader<'a>: BinaryColumn<'a>, read: |batch, name| batch.binary(name),
    value: |r, i| r.value(i).to_vec(),
);
field!(
    &'a [u8], DataType::Binary, builder: BinaryBuilder, new: BinaryBuilder::with_capacity,
    push: |b, v| b.push_value(v),
    reader<'a>: BinaryColumn<'a>, read: |batch, name| batch.binary(name),
    value: |r, i| r.value(i),
);

/// Implements the field traits for a const-generic vector type and for `Option` of it.
macro_rules! vector_field {
    ($t:ty, $wrap:expr, $unwrap:expr) => {
        impl<const N: usize> RowField for $t {
            type Builder = Float32VectorBuilder;
            const NULLABLE: bool = false;
            fn data_type() -> DataType {
                DataType::Float32Vector(dimension::<N>())
            }
            fn builder(capacity: usize) -> Float32VectorBuilder {
                Float32VectorBuilder::with_capacity(N, capacity)
            }
            #[inline]
            fn push(builder: &mut Float32VectorBuilder, value: Self) {
                let unwrap: fn(&$t) -> &[f32; N] = $unwrap;
                builder.push_value(unwrap(&value));
            }
        }

        impl<const N: usize> RowField for Option<$t> {
            type Builder = Float32VectorBuilder;
            const NULLABLE: bool = true;
            fn data_type() -> DataType {
                DataType::Float32Vector(dimension::<N>())
            }
            fn builder(capacity: usize) -> Float32VectorBuilder {
                Float32VectorBuilder::with_capacity(N, capacity)
            }
            #[inline]
            fn push(builder: &mut Float32VectorBuilder, value: Self) {
                let unwrap: fn(&$t) -> &[f32; N] = $unwrap;
                builder.push(value.as_ref().map(|v| unwrap(v).as_slice()));
            }
        }

        impl<'a, const N: usize> ReadField<'a> for $t {
            type Reader = Float32VectorColumn<'a>;
            fn reader(batch: &'a Batch, name: &str) -> Result<Self::Reader, TransformError> {
                let column = batch.float32_vector(name, N)?;
                no_nulls(name, column.validity())?;
                Ok(column)
            }
            #[inline]
            fn read(reader: &Self::Reader, row: usize) -> Self {
                let wrap: fn([f32; N]) -> $t = $wrap;
                wrap(to_array(reader.value(row)))
            }
        }

        impl<'a, const N: usize> ReadField<'a> for Option<$t> {
            type Reader = Float32VectorColumn<'a>;
            fn reader(batch: &'a Batch, name: &str) -> Result<Self::Reader, TransformError> {
                batch.float32_vector(name, N)
            }
            #[inline]
            fn read(reader: &Self::Reader, row: usize) -> Self {
                let wrap: fn([f32; N]) -> $t = $wrap;
                reader.get(row).map(|v| wrap(to_array(v)))
            }
        }
    };
}

vector_field!(Vector<N>, Vector, |v| &v.0);
vector_field!([f32; N], |a| a, |a| a);

const fn dimension<const N: usize>() -> u32 {
    assert!(
        N <= u32::MAX as usize,
        "a vector dimension must fit in a u32"
    );
    N as u32
}

/// Copies a slice whose length the reader checked to be `N`.
#[inline]
fn to_array<const N: usize>(values: &[f32]) -> [f32; N] {
    let mut array = [0.0; N];
    array.copy_from_slice(values);
    array
}

/// What a per-row transform function returns: a [`Row`], or `Result<Row, TransformError>` to
/// fail the batch.
#[diagnostic::on_unimplemented(
    message = "a transform function cannot return `{Self}`",
    label = "not a row type",
    note = "return a struct with `#[derive(skewless_guest::Row)]`, \
            or `Result<Output, skewless_guest::TransformError>`"
)]
pub trait TransformOutput {
    /// The output row type.
    type Row: Row;

    /// The row, or the error that fails the batch.
    fn into_result(self) -> Result<Self::Row, TransformError>;
}

impl<T: Row> TransformOutput for T {
    type Row = T;

    #[inline]
    fn into_result(self) -> Result<T, TransformError> {
        Ok(self)
    }
}

impl<T: Row> TransformOutput for Result<T, TransformError> {
    type Row = T;

    #[inline]
    fn into_result(self) -> Self {
        self
    }
}

/// The signature of a per-row transform `f`.
#[doc(hidden)]
pub fn row_signature<'a, I, O, F>(_f: &F, name: &str, version: &str, description: &str) -> Signature
where
    I: ReadRow<'a>,
    O: TransformOutput,
    F: Fn(I) -> O,
{
    Signature::new(name, version)
        .description(description)
        .inputs(I::fields())
        .outputs(<O::Row as Row>::fields())
}

/// Runs a per-row transform `f` over a batch.
#[doc(hidden)]
#[inline]
pub fn run_rows<'a, I, O, F>(input: &'a Batch, f: F) -> Result<Batch, TransformError>
where
    I: ReadRow<'a>,
    O: TransformOutput,
    F: Fn(I) -> O,
{
    let num_rows = input.num_rows();
    let reader = I::reader(input)?;
    let mut builder = <O::Row as Row>::builder(num_rows);
    for row in 0..num_rows {
        let output = f(I::read(&reader, row))
            .into_result()
            .map_err(|e| e.at_row(row))?;
        <O::Row as Row>::push(&mut builder, output);
    }
    let mut batch = BatchBuilder::new(num_rows);
    <O::Row as Row>::finish(builder, &mut batch);
    batch.finish()
}

#[doc(hidden)]
pub fn assert_input_row<'a, T: ReadRow<'a>>() {}

#[doc(hidden)]
pub fn assert_output<T: TransformOutput>() {}
