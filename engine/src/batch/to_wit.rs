//! Arrow -> WIT: the declared input columns of a record batch, copied into a WIT batch.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, OffsetSizeTrait, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_schema::DataType as ArrowType;

use super::column_error;
use crate::bindings::{Batch, Column, ColumnValues, VarLen};
use crate::error::{ErrorKind, Result};
use crate::signature::{DataType, Field};

/// Copies the columns named by `inputs` out of `batch`, checking each against its field.
pub(crate) fn to_wit(inputs: &[Field], batch: &RecordBatch) -> Result<Batch> {
    let num_rows = u32::try_from(batch.num_rows()).map_err(|_| {
        crate::Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a batch holds {} rows; a transform call takes at most {} rows",
                batch.num_rows(),
                u32::MAX
            ),
        )
    })?;
    let columns = inputs
        .iter()
        .map(|field| {
            let array = batch.column_by_name(&field.name).ok_or_else(|| {
                let present: Vec<&str> = batch
                    .schema_ref()
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                column_error(
                    &field.name,
                    format!(
                        "missing input column `{}` ({}); the data has columns [{}]",
                        field.name,
                        field.data_type,
                        present.join(", ")
                    ),
                )
            })?;
            column_to_wit(field, array)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Batch { num_rows, columns })
}

fn column_to_wit(field: &Field, array: &ArrayRef) -> Result<Column> {
    let array = coerce(field, array)?;
    let nulls = array.logical_nulls().filter(|n| n.null_count() > 0);
    if let (false, Some(nulls)) = (field.nullable, &nulls) {
        let first = nulls.iter().position(|valid| !valid).unwrap_or_default();
        return Err(column_error(
            &field.name,
            format!(
                "input column `{}` is declared not null but holds {} nulls (first at row {first})",
                field.name,
                nulls.null_count()
            ),
        ));
    }
    let values = match field.data_type {
        DataType::Boolean => ColumnValues::Boolean(array.as_boolean().values().sliced().to_vec()),
        DataType::Int32 => ColumnValues::Int32(array.as_primitive::<Int32Type>().values().to_vec()),
        DataType::Int64 => ColumnValues::Int64(array.as_primitive::<Int64Type>().values().to_vec()),
        DataType::Float32 => {
            ColumnValues::Float32(array.as_primitive::<Float32Type>().values().to_vec())
        }
        DataType::Float64 => {
            ColumnValues::Float64(array.as_primitive::<Float64Type>().values().to_vec())
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            ColumnValues::Utf8(var_len(a.value_offsets(), a.value_data()))
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            ColumnValues::Binary(var_len(a.value_offsets(), a.value_data()))
        }
        DataType::Timestamp => ColumnValues::Timestamp(
            array
                .as_primitive::<TimestampMicrosecondType>()
                .values()
                .to_vec(),
        ),
        DataType::Float32Vector(dimension) => {
            ColumnValues::Float32Vector(vector_values(field, &array, dimension, nulls.as_ref())?)
        }
    };
    Ok(Column {
        name: field.name.clone(),
        values,
        validity: nulls.map(|n| n.inner().sliced().to_vec()),
    })
}

/// Rebases a possibly sliced offsets buffer to start at zero and copies the bytes it spans.
fn var_len<O: OffsetSizeTrait>(offsets: &[O], data: &[u8]) -> VarLen {
    let first = offsets.first().map_or(0, |o| o.as_usize());
    let last = offsets.last().map_or(0, |o| o.as_usize());
    VarLen {
        // In range: `coerce` produced 32-bit offsets, and rebasing only lowers them.
        offsets: offsets
            .iter()
            .map(|o| (o.as_usize() - first) as i32)
            .collect(),
        data: data[first..last].to_vec(),
    }
}

fn vector_values(
    field: &Field,
    array: &ArrayRef,
    dimension: u32,
    nulls: Option<&NullBuffer>,
) -> Result<Vec<f32>> {
    let list = array.as_fixed_size_list();
    let d = dimension as usize;
    let start = list.offset() * d;
    let values = list.values().slice(start, list.len() * d);
    if let Some(child_nulls) = values.logical_nulls().filter(|n| n.null_count() > 0) {
        // A null element inside a row that is itself valid has no meaning for an embedding.
        let row_valid = |row: usize| nulls.is_none_or(|n| n.is_valid(row));
        if let Some(i) = (0..values.len()).find(|&i| child_nulls.is_null(i) && row_valid(i / d)) {
            return Err(column_error(
                &field.name,
                format!(
                    "input column `{}` ({}) has a null element at row {}, position {}; \
                     a vector's elements cannot be null (make the whole row null instead)",
                    field.name,
                    field.data_type,
                    i / d,
                    i % d
                ),
            ));
        }
    }
    Ok(values.as_primitive::<Float32Type>().values().to_vec())
}

/// Converts `array` to the exact Arrow type of `field` when the conversion is lossless and
/// unsurprising, or fails naming the column, the declared type and the type found.
fn coerce(field: &Field, array: &ArrayRef) -> Result<ArrayRef> {
    let target = field.data_type.to_arrow();
    let found = array.data_type();
    if !accepts(field.data_type, found) {
        return Err(column_error(
            &field.name,
            format!(
                "input column `{}` has Arrow type {found}, but the transform declares it {} (Arrow {target})",
                field.name, field.data_type
            ),
        ));
    }
    if found == &target {
        return Ok(array.clone());
    }
    arrow_cast::cast(array, &target).map_err(|e| {
        column_error(
            &field.name,
            format!(
                "input column `{}` could not be converted from {found} to {}: {e}",
                field.name, field.data_type
            ),
        )
        .with_source(e)
    })
}

/// Whether data of Arrow type `found` can feed an input declared `declared`: the same type
/// or a lossless, unsurprising conversion (see the module docs). `apply` checks source
/// tables with this same rule, so what passes `apply` converts at run time.
pub fn accepts(declared: DataType, found: &ArrowType) -> bool {
    match (declared, found) {
        (DataType::Boolean, ArrowType::Boolean) => true,
        (DataType::Int32, t) => matches!(
            t,
            ArrowType::Int8
                | ArrowType::Int16
                | ArrowType::Int32
                | ArrowType::UInt8
                | ArrowType::UInt16
        ),
        (DataType::Int64, t) => matches!(
            t,
            ArrowType::Int8
                | ArrowType::Int16
                | ArrowType::Int32
                | ArrowType::Int64
                | ArrowType::UInt8
                | ArrowType::UInt16
                | ArrowType::UInt32
        ),
        (DataType::Float32, ArrowType::Float16 | ArrowType::Float32) => true,
        (DataType::Float64, t) => {
            matches!(
                t,
                ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64
            )
        }
        (DataType::Utf8, t) => is_string(t),
        (DataType::Binary, t) => matches!(
            t,
            ArrowType::Binary
                | ArrowType::LargeBinary
                | ArrowType::BinaryView
                | ArrowType::FixedSizeBinary(_)
        ),
        (DataType::Timestamp, ArrowType::Timestamp(..)) => true,
        (DataType::Float32Vector(d), ArrowType::FixedSizeList(child, size)) => {
            *size as i64 == d as i64 && *child.data_type() == ArrowType::Float32
        }
        _ => false,
    }
}

fn is_string(t: &ArrowType) -> bool {
    match t {
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => true,
        ArrowType::Dictionary(_, value) => is_string(value),
        _ => false,
    }
}
