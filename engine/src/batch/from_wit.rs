//! WIT -> Arrow: a transform's output batch, checked against its declared outputs.

use std::sync::Arc;

use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, FixedSizeListArray, PrimitiveArray, RecordBatch,
    StringArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType as ArrowType, Field as ArrowField, SchemaRef};

use super::canonical::{canonicalize_f32, canonicalize_f64};
use super::column_error;
use crate::bindings::{Batch, Column, ColumnValues, VarLen};
use crate::error::{Error, ErrorKind, Result};
use crate::signature::{DataType, Field, UTC};

/// Converts a transform's output into a record batch of `schema` (built from `outputs`),
/// requiring `expected_rows` rows and exactly the declared columns.
pub(crate) fn from_wit(
    outputs: &[Field],
    schema: &SchemaRef,
    batch: Batch,
    expected_rows: usize,
) -> Result<RecordBatch> {
    let num_rows = batch.num_rows as usize;
    if num_rows != expected_rows {
        return Err(Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "the transform returned {num_rows} rows for an input of {expected_rows} rows; it must return one output row per input row"
            ),
        ));
    }
    let mut returned: Vec<Option<Column>> = batch.columns.into_iter().map(Some).collect();
    if let Some(extra) = returned
        .iter()
        .flatten()
        .find(|c| outputs.iter().all(|f| f.name != c.name))
    {
        let declared: Vec<&str> = outputs.iter().map(|f| f.name.as_str()).collect();
        return Err(column_error(
            &extra.name,
            format!(
                "the transform returned column `{}`, which its signature does not declare (declared outputs: [{}])",
                extra.name,
                declared.join(", ")
            ),
        ));
    }
    let arrays = outputs
        .iter()
        .map(|field| {
            let mut matching = returned
                .iter_mut()
                .filter(|c| c.as_ref().is_some_and(|c| c.name == field.name));
            let column = matching.next().and_then(Option::take).ok_or_else(|| {
                column_error(
                    &field.name,
                    format!(
                        "the transform returned no column `{}`, declared as output {field}",
                        field.name
                    ),
                )
            })?;
            if matching.next().is_some() {
                return Err(column_error(
                    &field.name,
                    format!(
                        "the transform returned column `{}` more than once",
                        field.name
                    ),
                ));
            }
            column_to_arrow(field, column, num_rows)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("output columns did not form a batch: {e}"),
        )
        .with_source(e)
    })
}

fn column_to_arrow(field: &Field, column: Column, num_rows: usize) -> Result<ArrayRef> {
    let name = field.name.as_str();
    let nulls = validity(name, column.validity, num_rows)?;
    if let (false, Some(nulls)) = (field.nullable, &nulls) {
        return Err(column_error(
            name,
            format!(
                "output column `{name}` is declared not null, but the transform returned {} nulls",
                nulls.null_count()
            ),
        ));
    }
    let array: ArrayRef = match (field.data_type, column.values) {
        (DataType::Boolean, ColumnValues::Boolean(bits)) => {
            let values = bitmap(name, "values", bits, num_rows)?;
            Arc::new(BooleanArray::new(values, nulls))
        }
        (DataType::Int32, ColumnValues::Int32(v)) => {
            Arc::new(primitive::<Int32Type>(name, v, num_rows, nulls)?)
        }
        (DataType::Int64, ColumnValues::Int64(v)) => {
            Arc::new(primitive::<Int64Type>(name, v, num_rows, nulls)?)
        }
        (DataType::Float32, ColumnValues::Float32(mut v)) => {
            canonicalize_f32(&mut v);
            Arc::new(primitive::<Float32Type>(name, v, num_rows, nulls)?)
        }
        (DataType::Float64, ColumnValues::Float64(mut v)) => {
            canonicalize_f64(&mut v);
            Arc::new(primitive::<Float64Type>(name, v, num_rows, nulls)?)
        }
        (DataType::Timestamp, ColumnValues::Timestamp(v)) => Arc::new(
            primitive::<TimestampMicrosecondType>(name, v, num_rows, nulls)?.with_timezone(UTC),
        ),
        (DataType::Utf8, ColumnValues::Utf8(v)) => {
            let (offsets, data) = offsets(name, v, num_rows)?;
            Arc::new(
                StringArray::try_new(offsets, data, nulls)
                    .map_err(|e| malformed(name, "is not valid UTF-8", e))?,
            )
        }
        (DataType::Binary, ColumnValues::Binary(v)) => {
            let (offsets, data) = offsets(name, v, num_rows)?;
            Arc::new(
                BinaryArray::try_new(offsets, data, nulls)
                    .map_err(|e| malformed(name, "is malformed", e))?,
            )
        }
        (DataType::Float32Vector(d), ColumnValues::Float32Vector(mut v)) => {
            let d = d as usize;
            if v.len() != num_rows * d {
                return Err(column_error(
                    name,
                    format!(
                        "output column `{name}` ({}) holds {} floats; {num_rows} rows need {}",
                        field.data_type,
                        v.len(),
                        num_rows * d
                    ),
                ));
            }
            canonicalize_f32(&mut v);
            let item = Arc::new(ArrowField::new("item", ArrowType::Float32, false));
            let values = Arc::new(PrimitiveArray::<Float32Type>::new(
                ScalarBuffer::from(v),
                None,
            ));
            Arc::new(
                FixedSizeListArray::try_new(item, d as i32, values, nulls)
                    .map_err(|e| malformed(name, "is malformed", e))?,
            )
        }
        (declared, values) => {
            return Err(column_error(
                name,
                format!(
                    "output column `{name}` is declared {declared}, but the transform returned {} values",
                    returned_type(&values)
                ),
            ));
        }
    };
    Ok(array)
}

fn primitive<T: arrow_array::ArrowPrimitiveType>(
    name: &str,
    values: Vec<T::Native>,
    num_rows: usize,
    nulls: Option<NullBuffer>,
) -> Result<PrimitiveArray<T>> {
    if values.len() != num_rows {
        return Err(column_error(
            name,
            format!(
                "output column `{name}` holds {} values for a batch of {num_rows} rows",
                values.len()
            ),
        ));
    }
    Ok(PrimitiveArray::new(ScalarBuffer::from(values), nulls))
}

/// Validates offsets before Arrow sees them: `OffsetBuffer::new` panics on bad input, and a
/// hostile component must never panic the host.
fn offsets(name: &str, v: VarLen, num_rows: usize) -> Result<(OffsetBuffer<i32>, Buffer)> {
    if v.offsets.len() != num_rows + 1 {
        return Err(column_error(
            name,
            format!(
                "output column `{name}` has {} offsets; {num_rows} rows need {}",
                v.offsets.len(),
                num_rows + 1
            ),
        ));
    }
    let starts_at_zero = v.offsets[0] == 0;
    let non_decreasing = v.offsets.windows(2).all(|w| w[0] <= w[1]);
    let in_bounds = v.offsets[num_rows] as usize <= v.data.len();
    if !(starts_at_zero && non_decreasing && in_bounds) {
        return Err(column_error(
            name,
            format!(
                "output column `{name}` has malformed offsets: they must start at 0, never decrease, and end within the {} data bytes",
                v.data.len()
            ),
        ));
    }
    Ok((
        OffsetBuffer::new(ScalarBuffer::from(v.offsets)),
        Buffer::from_vec(v.data),
    ))
}

fn validity(name: &str, validity: Option<Vec<u8>>, num_rows: usize) -> Result<Option<NullBuffer>> {
    let Some(bits) = validity else {
        return Ok(None);
    };
    let nulls = NullBuffer::new(bitmap(name, "validity", bits, num_rows)?);
    Ok((nulls.null_count() > 0).then_some(nulls))
}

fn bitmap(name: &str, what: &str, bits: Vec<u8>, num_rows: usize) -> Result<BooleanBuffer> {
    let needed = num_rows.div_ceil(8);
    if bits.len() < needed {
        return Err(column_error(
            name,
            format!(
                "output column `{name}` has a {what} bitmap of {} bytes; {num_rows} rows need {needed}",
                bits.len()
            ),
        ));
    }
    Ok(BooleanBuffer::new(Buffer::from_vec(bits), 0, num_rows))
}

fn malformed(name: &str, what: &str, e: arrow_schema::ArrowError) -> Error {
    column_error(name, format!("output column `{name}` {what}: {e}")).with_source(e)
}

fn returned_type(values: &ColumnValues) -> &'static str {
    match values {
        ColumnValues::Boolean(_) => "boolean",
        ColumnValues::Int32(_) => "int32",
        ColumnValues::Int64(_) => "int64",
        ColumnValues::Float32(_) => "float32",
        ColumnValues::Float64(_) => "float64",
        ColumnValues::Utf8(_) => "utf8",
        ColumnValues::Binary(_) => "binary",
        ColumnValues::Timestamp(_) => "timestamp",
        ColumnValues::Float32Vector(_) => "float32_vector",
    }
}
