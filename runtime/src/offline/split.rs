//! [`PartitionSplitter`]: cut a batch into one batch per partition of the table it is written to.
//!
//! iceberg-rust's `RecordBatchPartitionSplitter` turns every row's partition value into an
//! Iceberg `Literal` struct, groups the rows in a map keyed by those structs, then filters the
//! whole batch once per partition. A materialization spreads each batch over every day of its
//! window (90 partitions for a 90-day source), so it paid a literal, a map probe and 90 filter
//! passes per row: a quarter of an aggregate view's materialization time.
//!
//! This splitter computes the partition values with the same `PartitionValueCalculator`, and
//! when the partition has a single integer field (the day, month, year, hour and bucket
//! transforms, and identity on an integer or date column: every table skewless creates)
//! groups rows by that integer directly, then gathers them with one `take` and slices it per
//! partition. Only one literal per partition is built. Rows keep their order within a
//! partition, as iceberg-rust's splitter keeps them. Any other partition spec is handed to
//! iceberg-rust's splitter unchanged.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, StructArray, UInt32Array};
use arrow_schema::DataType;
use iceberg::arrow::{
    PartitionValueCalculator, RecordBatchPartitionSplitter, arrow_struct_to_literal,
};
use iceberg::spec::{Literal, PartitionKey, PartitionSpecRef, SchemaRef, StructType};

/// Splits batches by partition. See the [module docs](self).
pub(crate) struct PartitionSplitter {
    schema: SchemaRef,
    spec: PartitionSpecRef,
    partition_type: StructType,
    calculator: PartitionValueCalculator,
    /// iceberg-rust's splitter, for partition specs the integer path does not cover.
    general: RecordBatchPartitionSplitter,
}

impl PartitionSplitter {
    pub(crate) fn try_new(schema: SchemaRef, spec: PartitionSpecRef) -> iceberg::Result<Self> {
        let partition_type = spec.partition_type(&schema)?;
        let calculator = PartitionValueCalculator::try_new(&spec, &schema)?;
        let general = RecordBatchPartitionSplitter::try_new_with_computed_values(
            schema.clone(),
            spec.clone(),
        )?;
        Ok(PartitionSplitter {
            schema,
            spec,
            partition_type,
            calculator,
            general,
        })
    }

    /// The rows of `batch` grouped by partition, each group in the batch's row order, the
    /// groups in the order of their partition values.
    pub(crate) fn split(
        &self,
        batch: &RecordBatch,
    ) -> iceberg::Result<Vec<(PartitionKey, RecordBatch)>> {
        let values = self.calculator.calculate(batch)?;
        let fields = values.as_struct();
        let Some(ints) = single_int_field(fields) else {
            return self.general.split(batch);
        };
        // Rows per partition value, in row order; `None` is a null partition value.
        let mut groups: HashMap<Option<i64>, Vec<u32>, ahash::RandomState> = HashMap::default();
        for (row, value) in ints.enumerate() {
            groups.entry(value).or_default().push(row as u32);
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_unstable_by_key(|(value, _)| *value);
        if groups.len() == 1 {
            let first = groups[0].1[0] as usize;
            return Ok(vec![(self.key(&values, first)?, batch.clone())]);
        }
        let order =
            UInt32Array::from_iter_values(groups.iter().flat_map(|(_, rows)| rows.iter().copied()));
        let gathered = arrow_select::take::take_record_batch(batch, &order)?;
        let mut parts = Vec::with_capacity(groups.len());
        let mut offset = 0;
        for (_, rows) in &groups {
            let key = self.key(&values, rows[0] as usize)?;
            parts.push((key, gathered.slice(offset, rows.len())));
            offset += rows.len();
        }
        Ok(parts)
    }

    /// The partition key of `row`, whose partition values are in `values`.
    fn key(&self, values: &ArrayRef, row: usize) -> iceberg::Result<PartitionKey> {
        let one = values.slice(row, 1);
        let data = match arrow_struct_to_literal(&one, &self.partition_type)?.pop() {
            Some(Some(Literal::Struct(data))) => data,
            _ => {
                return Err(iceberg::Error::new(
                    iceberg::ErrorKind::DataInvalid,
                    "a partition value is not a struct",
                ));
            }
        };
        Ok(PartitionKey::new(
            self.spec.as_ref().clone(),
            self.schema.clone(),
            data,
        ))
    }
}

/// The values of a partition struct with one integer field, as `i64`s (`None` for nulls);
/// `None` for any other partition struct.
fn single_int_field(values: &StructArray) -> Option<Box<dyn Iterator<Item = Option<i64>> + '_>> {
    if values.num_columns() != 1 || values.null_count() != 0 {
        return None;
    }
    let column = values.column(0);
    Some(match column.data_type() {
        DataType::Int32 => Box::new(
            column
                .as_primitive::<Int32Type>()
                .iter()
                .map(|v| v.map(i64::from)),
        ),
        DataType::Date32 => Box::new(
            column
                .as_primitive::<Date32Type>()
                .iter()
                .map(|v| v.map(i64::from)),
        ),
        DataType::Int64 => Box::new(column.as_primitive::<Int64Type>().iter()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    //! Differential tests: the same batches through iceberg-rust's splitter and this one give
    //! the same partitions, each with the same rows in the same order.

    use std::sync::Arc;

    use arrow_array::{
        Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use iceberg::arrow::schema_to_arrow_schema;
    use iceberg::spec::{
        NestedField, PartitionSpec, PrimitiveType, Schema, Transform, Type, UnboundPartitionField,
    };
    use proptest::prelude::*;

    use super::*;

    fn schema() -> SchemaRef {
        let field = |id, name: &str, ty, required: bool| {
            let f = if required {
                NestedField::required(id, name, Type::Primitive(ty))
            } else {
                NestedField::optional(id, name, Type::Primitive(ty))
            };
            Arc::new(f)
        };
        Arc::new(
            Schema::builder()
                .with_fields(vec![
                    field(1, "id", PrimitiveType::Long, true),
                    field(2, "ts", PrimitiveType::Timestamptz, true),
                    field(3, "small", PrimitiveType::Int, false),
                    field(4, "name", PrimitiveType::String, false),
                    field(5, "amount", PrimitiveType::Double, false),
                ])
                .build()
                .unwrap(),
        )
    }

    fn spec(schema: &SchemaRef, source: i32, transform: Transform) -> PartitionSpecRef {
        Arc::new(
            PartitionSpec::builder(schema.clone())
                .add_unbound_field(UnboundPartitionField {
                    source_id: source,
                    field_id: None,
                    name: "p".to_owned(),
                    transform,
                })
                .unwrap()
                .build()
                .unwrap(),
        )
    }

    type Row = (i64, i64, Option<i32>, Option<String>, Option<f64>);

    fn batch(schema: &SchemaRef, rows: &[Row]) -> RecordBatch {
        let arrow = Arc::new(schema_to_arrow_schema(schema).unwrap());
        RecordBatch::try_new(
            arrow,
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))
                        .with_timezone("+00:00"),
                ),
                Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.2))),
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.3.clone()))),
                Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.4))),
            ],
        )
        .unwrap()
    }

    /// Partitions as comparable values: the key's data and the rows, sorted by key.
    fn canonical(parts: Vec<(PartitionKey, RecordBatch)>) -> Vec<(String, RecordBatch)> {
        let mut parts: Vec<_> = parts
            .into_iter()
            .map(|(key, rows)| (format!("{:?}", key.data()), rows))
            .collect();
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        parts
    }

    fn row() -> impl Strategy<Value = Row> {
        const DAY: i64 = 86_400_000_000;
        (
            0i64..50,
            // Both sides of the epoch (negative days), and a few days wide.
            -3 * DAY..5 * DAY,
            proptest::option::of(-3i32..4),
            proptest::option::of("[ab]{0,2}"),
            proptest::option::of(any::<f64>()),
        )
    }

    proptest! {
        #[test]
        fn splits_like_iceberg(rows in proptest::collection::vec(row(), 1..300)) {
            let schema = schema();
            let batch = batch(&schema, &rows);
            for (source, transform) in [
                (2, Transform::Day),
                (2, Transform::Hour),
                (2, Transform::Month),
                (1, Transform::Identity),
                (1, Transform::Bucket(7)),
                (3, Transform::Identity),
                (3, Transform::Truncate(2)),
                // Not an integer partition value: handed to iceberg-rust's splitter.
                (4, Transform::Identity),
            ] {
                let spec = spec(&schema, source, transform);
                let ours = PartitionSplitter::try_new(schema.clone(), spec.clone()).unwrap();
                let theirs =
                    RecordBatchPartitionSplitter::try_new_with_computed_values(schema.clone(), spec)
                        .unwrap();
                let expected = canonical(theirs.split(&batch).unwrap());
                let actual = canonical(ours.split(&batch).unwrap());
                prop_assert_eq!(actual, expected, "{:?}", transform);
            }
        }
    }
}
