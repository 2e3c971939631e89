//! [`PartitionSplitter`]: which rows of a batch go to which partition of the table it is
//! written to.
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
//! groups rows by that integer directly. It copies nothing: it says which rows go where, and
//! the partition's writer lane copies them (`gather.rs`). Each partition gets a dense index,
//! from 0 in the order partitions are first seen, and its key is built once per job. Any other
//! partition spec is grouped by its partition structs, as iceberg-rust groups them.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch, StructArray};
use arrow_schema::DataType;
use iceberg::arrow::{PartitionValueCalculator, arrow_struct_to_literal};
use iceberg::spec::{Literal, PartitionKey, PartitionSpecRef, SchemaRef, Struct, StructType};

/// The rows of one batch that go to one partition.
#[derive(Debug)]
pub(crate) struct Part {
    /// The partition's index (see [`PartitionSplitter::key`]).
    pub(crate) partition: usize,
    /// Row numbers in the batch, ascending.
    pub(crate) rows: Vec<u32>,
}

/// Splits batches by partition. See the [module docs](self).
pub(crate) struct PartitionSplitter {
    schema: SchemaRef,
    spec: PartitionSpecRef,
    partition_type: StructType,
    calculator: PartitionValueCalculator,
    /// The key of each partition seen, by index.
    keys: Vec<PartitionKey>,
    /// The index of each integer partition value seen (`None`: a null value).
    by_int: HashMap<Option<i64>, usize, ahash::RandomState>,
    /// The index of each partition struct seen, for other partition specs.
    by_struct: HashMap<Struct, usize>,
}

impl PartitionSplitter {
    pub(crate) fn try_new(schema: SchemaRef, spec: PartitionSpecRef) -> iceberg::Result<Self> {
        let partition_type = spec.partition_type(&schema)?;
        let calculator = PartitionValueCalculator::try_new(&spec, &schema)?;
        Ok(PartitionSplitter {
            schema,
            spec,
            partition_type,
            calculator,
            keys: Vec::new(),
            by_int: HashMap::default(),
            by_struct: HashMap::new(),
        })
    }

    /// The key of partition `index`, which [`split`](Self::split) returned.
    pub(crate) fn key(&self, index: usize) -> &PartitionKey {
        &self.keys[index]
    }

    /// The rows of `batch` grouped by partition, each group in the batch's row order, the
    /// groups in the order of their partition values (integer partitions) or of first rows
    /// (others).
    pub(crate) fn split(&mut self, batch: &RecordBatch) -> iceberg::Result<Vec<Part>> {
        let values = self.calculator.calculate(batch)?;
        let fields = values.as_struct();
        let Some(ints) = single_int_field(fields) else {
            return self.split_by_struct(&values);
        };
        // Rows per partition value, in row order; `None` is a null partition value.
        let mut groups: HashMap<Option<i64>, Vec<u32>, ahash::RandomState> = HashMap::default();
        for (row, value) in ints.enumerate() {
            groups.entry(value).or_default().push(row as u32);
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_unstable_by_key(|(value, _)| *value);
        groups
            .into_iter()
            .map(|(value, rows)| {
                let partition = match self.by_int.get(&value) {
                    Some(&index) => index,
                    None => {
                        let data = self.struct_of(&values, rows[0] as usize)?;
                        let index = self.add(data);
                        self.by_int.insert(value, index);
                        index
                    }
                };
                Ok(Part { partition, rows })
            })
            .collect()
    }

    /// [`split`](Self::split) for any partition spec: rows grouped by their partition structs.
    fn split_by_struct(&mut self, values: &ArrayRef) -> iceberg::Result<Vec<Part>> {
        let mut parts: Vec<Part> = Vec::new();
        // The part of each partition in this batch.
        let mut in_batch: HashMap<usize, usize> = HashMap::new();
        let literals = arrow_struct_to_literal(values, &self.partition_type)?;
        for (row, literal) in literals.into_iter().enumerate() {
            let data = as_struct(literal)?;
            let partition = match self.by_struct.get(&data) {
                Some(&index) => index,
                None => {
                    let index = self.add(data.clone());
                    self.by_struct.insert(data, index);
                    index
                }
            };
            let part = *in_batch.entry(partition).or_insert_with(|| {
                parts.push(Part {
                    partition,
                    rows: Vec::new(),
                });
                parts.len() - 1
            });
            parts[part].rows.push(row as u32);
        }
        Ok(parts)
    }

    /// Adds a partition: its index.
    fn add(&mut self, data: Struct) -> usize {
        let key = PartitionKey::new(self.spec.as_ref().clone(), self.schema.clone(), data);
        self.keys.push(key);
        self.keys.len() - 1
    }

    /// The partition struct of `row`, whose partition values are in `values`.
    fn struct_of(&self, values: &ArrayRef, row: usize) -> iceberg::Result<Struct> {
        let one = values.slice(row, 1);
        as_struct(
            arrow_struct_to_literal(&one, &self.partition_type)?
                .pop()
                .flatten(),
        )
    }
}

/// A row's partition value as the struct it must be.
fn as_struct(literal: Option<Literal>) -> iceberg::Result<Struct> {
    match literal {
        Some(Literal::Struct(data)) => Ok(data),
        _ => Err(iceberg::Error::new(
            iceberg::ErrorKind::DataInvalid,
            "a partition value is not a struct",
        )),
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

    use arrow_array::UInt32Array;
    use arrow_array::{
        Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow_select::take::take_record_batch;
    use iceberg::arrow::{RecordBatchPartitionSplitter, schema_to_arrow_schema};
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
                let mut ours = PartitionSplitter::try_new(schema.clone(), spec.clone()).unwrap();
                let theirs =
                    RecordBatchPartitionSplitter::try_new_with_computed_values(schema.clone(), spec)
                        .unwrap();
                let expected = canonical(theirs.split(&batch).unwrap());
                let parts = ours.split(&batch).unwrap();
                for part in &parts {
                    prop_assert!(part.rows.is_sorted(), "{:?}", transform);
                }
                let indices: Vec<usize> = parts.iter().map(|p| p.partition).collect();
                let actual = canonical(
                    parts
                        .into_iter()
                        .map(|part| {
                            let rows = UInt32Array::from(part.rows);
                            let rows = take_record_batch(&batch, &rows).unwrap();
                            (ours.key(part.partition).clone(), rows)
                        })
                        .collect(),
                );
                prop_assert_eq!(actual, expected, "{:?}", transform);
                // A partition seen again keeps its index: the next batch's rows of a day go
                // to the same writer.
                let again: Vec<usize> =
                    ours.split(&batch).unwrap().iter().map(|p| p.partition).collect();
                prop_assert_eq!(again, indices, "{:?}", transform);
            }
        }
    }
}
