//! Online features ([`OnlineFeatures`]) as Arrow: three record batches of one row per entity
//! row, with the same column names:
//!
//! - values: the join keys, then one column per feature (null unless present);
//! - statuses: one utf8 column per feature, Feast's names (`PRESENT`, `NULL_VALUE`,
//!   `NOT_FOUND`, `OUTSIDE_MAX_AGE`);
//! - event timestamps: one timestamp column per feature, the event time of the row each
//!   value comes from (null when none was found).

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, FixedSizeListBuilder, Float32Builder, Float64Builder,
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array as _, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use skewless_runtime::online::{FeatureValue, KeyValue};
use skewless_runtime::serving::OnlineFeatures;
use skewless_runtime::signature::UTC;
use skewless_runtime::{DataType, Error, ErrorKind, Result};

/// The values, statuses and event timestamps of `features`.
pub(crate) fn to_batches(features: &OnlineFeatures) -> Result<[RecordBatch; 3]> {
    let mut value_fields = Vec::new();
    let mut values: Vec<ArrayRef> = Vec::new();
    for (name, keys) in &features.join_keys {
        let (field_type, column) = key_column(keys);
        value_fields.push(Field::new(name, field_type, false));
        values.push(column);
    }
    let mut status_fields = Vec::new();
    let mut statuses: Vec<ArrayRef> = Vec::new();
    let mut time_fields = Vec::new();
    let mut times: Vec<ArrayRef> = Vec::new();
    for column in &features.features {
        let name = column.name.as_ref();
        let (field_type, array) = match column.list {
            true => list_column(column.data_type, &column.values)?,
            false => (
                column.data_type.to_arrow(),
                value_column(column.data_type, &column.values)?,
            ),
        };
        value_fields.push(Field::new(name, field_type, true));
        values.push(array);
        status_fields.push(Field::new(name, ArrowType::Utf8, false));
        statuses.push(Arc::new(StringArray::from_iter_values(
            column
                .statuses
                .iter()
                .map(|s| s.as_str().to_ascii_uppercase()),
        )));
        let event_ts = TimestampMicrosecondArray::from(column.event_ts.clone()).with_timezone(UTC);
        time_fields.push(Field::new(name, event_ts.data_type().clone(), true));
        times.push(Arc::new(event_ts));
    }
    let batch = |fields: Vec<Field>, columns: Vec<ArrayRef>| {
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(features.rows));
        RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options).map_err(
            |e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("could not assemble the online features: {e}"),
                )
            },
        )
    };
    Ok([
        batch(value_fields, values)?,
        batch(status_fields, statuses)?,
        batch(time_fields, times)?,
    ])
}

/// A join key column: int64 when every value is an integer, utf8 otherwise.
fn key_column(keys: &[KeyValue]) -> (ArrowType, ArrayRef) {
    if keys.iter().all(|k| matches!(k, KeyValue::Int64(_))) {
        let mut b = Int64Builder::with_capacity(keys.len());
        for k in keys {
            if let KeyValue::Int64(v) = k {
                b.append_value(*v);
            }
        }
        return (ArrowType::Int64, Arc::new(b.finish()));
    }
    let mut b = StringBuilder::new();
    for k in keys {
        match k {
            KeyValue::Utf8(v) => b.append_value(v),
            KeyValue::Int64(v) => b.append_value(v.to_string()),
        }
    }
    (ArrowType::Utf8, Arc::new(b.finish()))
}

/// A column of lists of `data_type` values (`last_n`), a null list for a null value.
fn list_column(data_type: DataType, values: &[FeatureValue]) -> Result<(ArrowType, ArrayRef)> {
    let mut items = Vec::new();
    let mut offsets = vec![0i32];
    let mut valid = Vec::with_capacity(values.len());
    for v in values {
        match v {
            FeatureValue::List(list) => items.extend(list.iter().cloned()),
            FeatureValue::Null => {}
            other => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("a served value {other:?} is not a list of {data_type}"),
                ));
            }
        }
        valid.push(!v.is_null());
        offsets.push(items.len() as i32);
    }
    let item = Arc::new(Field::new("item", data_type.to_arrow(), true));
    let list = arrow_array::ListArray::try_new(
        item.clone(),
        arrow_buffer::OffsetBuffer::new(offsets.into()),
        value_column(data_type, &items)?,
        Some(valid.into()),
    )
    .map_err(|e| Error::new(ErrorKind::Internal, format!("a list column: {e}")))?;
    Ok((ArrowType::List(item), Arc::new(list)))
}

/// A feature column of `data_type`; a value of another type is a bug, reported as such.
fn value_column(data_type: DataType, values: &[FeatureValue]) -> Result<ArrayRef> {
    use FeatureValue as V;
    let wrong = |v: &FeatureValue| {
        Error::new(
            ErrorKind::Internal,
            format!("a served value {v:?} is not of its feature's type {data_type}"),
        )
    };
    macro_rules! column {
        ($builder:expr, $variant:ident) => {{
            let mut b = $builder;
            for v in values {
                match v {
                    V::Null => b.append_null(),
                    V::$variant(x) => b.append_value(x.clone()),
                    other => return Err(wrong(other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match data_type {
        DataType::Boolean => column!(BooleanBuilder::new(), Boolean),
        DataType::Int32 => column!(Int32Builder::new(), Int32),
        DataType::Int64 => column!(Int64Builder::new(), Int64),
        DataType::Float32 => column!(Float32Builder::new(), Float32),
        DataType::Float64 => column!(Float64Builder::new(), Float64),
        DataType::Utf8 => column!(StringBuilder::new(), Utf8),
        DataType::Binary => column!(BinaryBuilder::new(), Binary),
        DataType::Timestamp => {
            let mut b = TimestampMicrosecondBuilder::new();
            for v in values {
                match v {
                    V::Null => b.append_null(),
                    V::Timestamp(x) => b.append_value(*x),
                    other => return Err(wrong(other)),
                }
            }
            Arc::new(b.finish().with_timezone(UTC)) as ArrayRef
        }
        DataType::Float32Vector(dimension) => {
            let item = Arc::new(Field::new("item", ArrowType::Float32, false));
            let mut b =
                FixedSizeListBuilder::new(Float32Builder::new(), dimension as i32).with_field(item);
            for v in values {
                match v {
                    V::Float32Vector(x) => {
                        b.values().append_slice(x);
                        b.append(true);
                    }
                    V::Null => {
                        for _ in 0..dimension {
                            b.values().append_value(0.0);
                        }
                        b.append(false);
                    }
                    other => return Err(wrong(other)),
                }
            }
            Arc::new(b.finish()) as ArrayRef
        }
    })
}
