//! Arrow values to online-store values: entity keys from join-key columns, feature values
//! from output columns.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType as ArrowType;

use crate::error::{Error, ErrorKind, Result};
use crate::online::{EntityKey, FeatureValue, KeyValue};

/// The key value at `row` of a join-key column (already cast to Int64 or Utf8); `None` when
/// null.
pub(crate) fn key_value(column: &ArrayRef, row: usize) -> Option<KeyValue> {
    if column.is_null(row) {
        return None;
    }
    Some(match column.data_type() {
        ArrowType::Int64 => KeyValue::Int64(column.as_primitive::<Int64Type>().value(row)),
        ArrowType::Int32 => KeyValue::Int64(column.as_primitive::<Int32Type>().value(row).into()),
        _ => KeyValue::Utf8(column.as_string::<i32>().value(row).to_owned()),
    })
}

/// An entity's key while a job gathers its rows per entity: a single integer join key held
/// as it is (no allocation per row, and a hash-table probe compares it in place instead of
/// following a pointer to the key's values, a cache miss per row at 100k entities), any other
/// key as its [`EntityKey`]. One job's keys come from the same columns, so an entity always
/// has the same form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RowKey {
    /// A single Int64 or Int32 join key.
    Int(i64),
    /// Any other key.
    Key(EntityKey),
}

impl RowKey {
    /// The key of `row` of a batch whose first `keys` columns are the join keys (cast to
    /// Int64 or Utf8); null values are left out, as [`key_value`] does.
    pub(crate) fn of(batch: &RecordBatch, keys: usize, row: usize) -> RowKey {
        let mut values = (0..keys).filter_map(|i| key_value(batch.column(i), row));
        match keys {
            1 => match values.next() {
                Some(KeyValue::Int64(v)) => RowKey::Int(v),
                other => RowKey::Key(EntityKey(other.into_iter().collect())),
            },
            _ => RowKey::Key(EntityKey(values.collect())),
        }
    }

    /// The entity key.
    pub(crate) fn into_entity_key(self) -> EntityKey {
        match self {
            RowKey::Int(v) => EntityKey(vec![KeyValue::Int64(v)]),
            RowKey::Key(key) => key,
        }
    }
}

/// The feature value at `row` of an output column of one of the WIT types.
pub(crate) fn feature_value(column: &ArrayRef, row: usize) -> Result<FeatureValue> {
    // Output columns are built by the engine from the signature's types only.
    arrow_value(column, row).ok_or_else(|| {
        Error::new(
            ErrorKind::Internal,
            format!(
                "an output column has the unexpected Arrow type {}",
                column.data_type()
            ),
        )
    })
}

/// The value at `row` of a column of one of the WIT types (as feature tables store them);
/// `None` for any other Arrow type, which each caller reports in its own terms.
pub(crate) fn arrow_value(column: &ArrayRef, row: usize) -> Option<FeatureValue> {
    if column.is_null(row) {
        return Some(FeatureValue::Null);
    }
    Some(match column.data_type() {
        ArrowType::Boolean => FeatureValue::Boolean(column.as_boolean().value(row)),
        ArrowType::Int32 => FeatureValue::Int32(column.as_primitive::<Int32Type>().value(row)),
        ArrowType::Int64 => FeatureValue::Int64(column.as_primitive::<Int64Type>().value(row)),
        ArrowType::Float32 => {
            FeatureValue::Float32(column.as_primitive::<Float32Type>().value(row))
        }
        ArrowType::Float64 => {
            FeatureValue::Float64(column.as_primitive::<Float64Type>().value(row))
        }
        ArrowType::Utf8 => FeatureValue::Utf8(column.as_string::<i32>().value(row).to_owned()),
        ArrowType::Binary => FeatureValue::Binary(column.as_binary::<i32>().value(row).to_vec()),
        ArrowType::Timestamp(..) => {
            FeatureValue::Timestamp(column.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        ArrowType::FixedSizeList(..) => {
            let list = column.as_fixed_size_list().value(row);
            FeatureValue::Float32Vector(list.as_primitive::<Float32Type>().values().to_vec())
        }
        _ => return None,
    })
}
