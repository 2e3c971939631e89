//! Arrow <-> Iceberg schemas, and aligning incoming batches to a table's schema.
//!
//! Tables are created from an Arrow schema (the shape skewless computes in) and converted to
//! an Iceberg schema with our own mapping rather than `arrow_schema_to_schema`, so that an
//! unsupported column is reported by name and the few accepted Arrow spellings (`LargeUtf8`,
//! a `FixedSizeList<f32>` embedding, any time zone label) map to one Iceberg type.
//!
//! On append, every batch is aligned to the table's current schema *as Arrow*
//! (`schema_to_arrow_schema`, which carries the Parquet field ids the writer needs): columns
//! are matched by name, missing nullable columns become nulls, and only lossless conversions
//! are applied (widening integers and floats, string and binary encodings, the time zone
//! label, coarser timestamp units). Anything else is a [`ErrorKind::SchemaMismatch`] naming
//! the column.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, new_null_array};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use iceberg::spec::{ListType, NestedField, PrimitiveType, Schema, Type};

use super::TableName;
use crate::error::{Error, ErrorKind, Result};

/// Converts an Arrow schema to an Iceberg schema with field ids assigned in order (top-level
/// fields first, then list elements).
pub(super) fn to_iceberg_schema(table: &TableName, schema: &ArrowSchema) -> Result<Schema> {
    if schema.fields().is_empty() {
        return Err(
            Error::new(ErrorKind::InvalidInput, "a table needs at least one column")
                .with_context("table", table),
        );
    }
    let mut next_id = i32::try_from(schema.fields().len()).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, "too many columns").with_context("table", table)
    })? + 1;
    let mut fields = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let id = i32::try_from(i).unwrap_or(i32::MAX - 1) + 1;
        let ty = to_iceberg_type(field.data_type(), &mut next_id).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "unsupported column type {}: expected boolean, int32, int64, float32, \
                     float64, utf8, binary, date32, timestamp or a list of float32",
                    field.data_type()
                ),
            )
            .with_context("column", field.name())
            .with_context("table", table)
        })?;
        fields.push(Arc::new(NestedField::new(
            id,
            field.name(),
            ty,
            !field.is_nullable(),
        )));
    }
    Schema::builder()
        .with_schema_id(0)
        .with_fields(fields)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("cannot build the table schema: {}", e.message()),
            )
            .with_context("table", table)
            .with_source(e)
        })
}

fn to_iceberg_type(ty: &DataType, next_id: &mut i32) -> Option<Type> {
    let primitive = match ty {
        DataType::Boolean => PrimitiveType::Boolean,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => PrimitiveType::Int,
        DataType::Int64 => PrimitiveType::Long,
        DataType::Float32 => PrimitiveType::Float,
        DataType::Float64 => PrimitiveType::Double,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => PrimitiveType::String,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => PrimitiveType::Binary,
        DataType::Date32 => PrimitiveType::Date,
        DataType::Timestamp(_, Some(_)) => PrimitiveType::Timestamptz,
        DataType::Timestamp(_, None) => PrimitiveType::Timestamp,
        DataType::FixedSizeList(element, _)
        | DataType::List(element)
        | DataType::LargeList(element) => {
            if !matches!(element.data_type(), DataType::Float32) {
                return None;
            }
            let id = *next_id;
            *next_id += 1;
            return Some(Type::List(ListType::new(Arc::new(
                NestedField::list_element(
                    id,
                    Type::Primitive(PrimitiveType::Float),
                    !element.is_nullable(),
                ),
            ))));
        }
        _ => return None,
    };
    Some(Type::Primitive(primitive))
}

/// Aligns `batch` to `target` (a table's Arrow schema): columns by name, missing nullable
/// columns as nulls, lossless casts only.
pub(crate) fn align_batch(
    table: &TableName,
    target: &SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch> {
    let mismatch = |column: &str, message: String| {
        Error::new(ErrorKind::SchemaMismatch, message)
            .with_context("column", column)
            .with_context("table", table)
    };
    let source = batch.schema();
    if let Some(extra) = source
        .fields()
        .iter()
        .find(|f| target.field_with_name(f.name()).is_err())
    {
        return Err(mismatch(
            extra.name(),
            format!(
                "the batch has a column the table does not have; expected only the table's \
                 columns: {}",
                column_list(target)
            ),
        ));
    }
    let rows = batch.num_rows();
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = match source.index_of(field.name()) {
            Ok(i) => align_column(field, batch.column(i))
                .map_err(|message| mismatch(field.name(), message))?,
            Err(_) if field.is_nullable() => new_null_array(field.data_type(), rows),
            Err(_) => {
                return Err(mismatch(
                    field.name(),
                    format!(
                        "the batch is missing a required column of type {}",
                        field.data_type()
                    ),
                ));
            }
        };
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(mismatch(
                field.name(),
                format!(
                    "the column is required but the batch has {} null values in it",
                    column.null_count()
                ),
            ));
        }
        columns.push(column);
    }
    RecordBatch::try_new(target.clone(), columns).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("aligned batch does not match the table schema: {e}"),
        )
        .with_context("table", table)
    })
}

fn align_column(target: &Field, column: &ArrayRef) -> std::result::Result<ArrayRef, String> {
    let from = column.data_type();
    let to = target.data_type();
    if from == to {
        return Ok(column.clone());
    }
    if !convertible(from, to) {
        return Err(format!(
            "expected type {}, found {} (no lossless conversion)",
            describe(to),
            describe(from)
        ));
    }
    if matches!(from, DataType::Timestamp(TimeUnit::Nanosecond, _))
        && matches!(to, DataType::Timestamp(TimeUnit::Microsecond, _))
        && column
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .flatten()
            .any(|v| v % 1000 != 0)
    {
        return Err(
            "the table stores microseconds but the batch has nanosecond timestamps that are \
             not whole microseconds; truncate them first"
                .to_owned(),
        );
    }
    let cast = arrow_cast::cast(column, to)
        .map_err(|e| format!("cannot convert {} to {}: {e}", describe(from), describe(to)))?;
    Ok(relabel_list(cast, to))
}

/// Casting to a list keeps arrow-cast's own element field (`item`, no metadata) for some
/// source types (`FixedSizeList`); the table's element field carries the Iceberg field id the
/// Parquet writer needs, so put it back.
fn relabel_list(array: ArrayRef, to: &DataType) -> ArrayRef {
    match to {
        DataType::List(field) if array.data_type() != to => {
            let (_, offsets, values, nulls) = array.as_list::<i32>().clone().into_parts();
            match ListArray::try_new(field.clone(), offsets, values, nulls) {
                Ok(list) => Arc::new(list),
                // Leave it as it is: `RecordBatch::try_new` reports the mismatch.
                Err(_) => array,
            }
        }
        _ => array,
    }
}

/// Whether `from` converts to `to` without losing information.
fn convertible(from: &DataType, to: &DataType) -> bool {
    use DataType as D;
    match (from, to) {
        (a, b) if a == b => true,
        (D::Int8 | D::Int16 | D::UInt8 | D::UInt16, D::Int32) => true,
        (D::Int8 | D::Int16 | D::Int32 | D::UInt8 | D::UInt16 | D::UInt32, D::Int64) => true,
        (D::Float16 | D::Float32, D::Float64) | (D::Float16, D::Float32) => true,
        (D::Utf8 | D::LargeUtf8 | D::Utf8View, D::Utf8 | D::LargeUtf8 | D::Utf8View) => true,
        (
            D::Binary | D::LargeBinary | D::BinaryView,
            D::Binary | D::LargeBinary | D::BinaryView,
        ) => true,
        // A zoned timestamp is an instant (UTC epoch values); the label only affects display,
        // and Iceberg's Arrow form of `timestamptz` is labelled "+00:00". A naive timestamp is
        // not an instant, so it does not convert to a zoned one (nor the other way).
        (D::Timestamp(from_unit, from_tz), D::Timestamp(to_unit, to_tz)) => {
            // Nanoseconds to microseconds is checked value by value in `align_column`.
            from_tz.is_some() == to_tz.is_some()
                && (unit_rank(from_unit) <= unit_rank(to_unit)
                    || (*from_unit == TimeUnit::Nanosecond && *to_unit == TimeUnit::Microsecond))
        }
        (D::List(a) | D::LargeList(a) | D::FixedSizeList(a, _), D::List(b) | D::LargeList(b)) => {
            convertible(a.data_type(), b.data_type())
        }
        _ => false,
    }
}

fn unit_rank(unit: &TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

/// A type as users write it: `timestamp(us, UTC)`, `list<float32>`.
fn describe(ty: &DataType) -> String {
    match ty {
        DataType::Timestamp(unit, tz) => {
            let unit = match unit {
                TimeUnit::Second => "s",
                TimeUnit::Millisecond => "ms",
                TimeUnit::Microsecond => "us",
                TimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("timestamp({unit}, {tz})"),
                None => format!("timestamp({unit}, no time zone)"),
            }
        }
        DataType::List(f) | DataType::LargeList(f) => format!("list<{}>", describe(f.data_type())),
        DataType::FixedSizeList(f, n) => {
            format!("fixed_size_list<{}; {n}>", describe(f.data_type()))
        }
        other => other.to_string().to_lowercase(),
    }
}

fn column_list(schema: &ArrowSchema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
