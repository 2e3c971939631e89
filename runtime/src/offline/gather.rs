//! [`Gather`]: one partition's rows copied out of the batches they arrive in, until they make
//! a row group.
//!
//! A writer lane (`lanes.rs`) is sent each batch whole, with the row numbers of each of its
//! partitions, and copies those rows at once into the partition's `Gather`, column by column:
//! no batch outlives the message that brought it, so what a job holds is the pending rows
//! themselves, and the Parquet writer is called once per row group instead of once per
//! batch and partition.
//!
//! Primitive, boolean and string or binary columns are copied value by value into growing
//! buffers. Any other column (lists, structs, ...) is gathered with Arrow's `take` per batch
//! and concatenated when the row group is taken, which is slower but covers every type.
//!
//! A partition's row groups are about the same size one after another, so the buffers of
//! one are sized for the next: a fixed-width column's buffer comes back once the writer is
//! done with its row group ([`Gather::recycle`]) and is filled again in place, and the other
//! columns start the next group with room for the last one's rows and a quarter more (a group
//! ends with the batch that fills it, so the next may be a little larger). Buffers that grew
//! by doubling, or that were sized for exactly the last group and doubled at the batch that
//! ended the next, copied a group's data once more and touched fresh pages (a page fault
//! each): a third of a materialization's page faults.

use std::sync::Arc;

use arrow_array::builder::{ArrayBuilder, BooleanBuilder, GenericByteBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{BinaryType, ByteArrayType, LargeBinaryType, LargeUtf8Type, Utf8Type};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BooleanArray, PrimitiveArray, RecordBatch, UInt32Array,
    downcast_primitive, new_empty_array,
};
use arrow_buffer::{BooleanBuffer, NullBuffer, NullBufferBuilder};
use arrow_schema::{ArrowError, DataType, SchemaRef};

/// One partition's pending rows. See the [module docs](self).
pub(super) struct Gather {
    schema: SchemaRef,
    columns: Vec<Box<dyn Column>>,
    rows: usize,
}

impl Gather {
    /// An empty gather of rows of `schema`.
    pub(super) fn new(schema: SchemaRef) -> Self {
        let columns = schema
            .fields()
            .iter()
            .map(|f| column(f.data_type()))
            .collect();
        Gather {
            schema,
            columns,
            rows: 0,
        }
    }

    /// Copies rows `rows` of `batch` (whose schema is this gather's), in that order. An error
    /// leaves the gather unusable (some columns extended, others not): the lane stops on it,
    /// and the job with it.
    pub(super) fn extend(&mut self, batch: &RecordBatch, rows: &[u32]) -> Result<(), ArrowError> {
        // The aligned batches of one job share one schema: compared by pointer first.
        if !Arc::ptr_eq(batch.schema_ref(), &self.schema) && batch.schema_ref() != &self.schema {
            return Err(ArrowError::SchemaError(
                "rows of another schema were sent to a partition's writer".to_owned(),
            ));
        }
        for (column, array) in self.columns.iter_mut().zip(batch.columns()) {
            column.extend(array, rows)?;
        }
        self.rows += rows.len();
        Ok(())
    }

    /// Rows pending.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// The pending rows' buffers, in bytes (about what they take as a Parquet row group
    /// before compression).
    pub(super) fn bytes(&self) -> usize {
        self.columns.iter().map(|c| c.bytes()).sum()
    }

    /// Takes back the buffers of `batch`, a batch [`take`](Self::take) returned and whose
    /// writer is done with it, to gather the next rows into. A buffer still shared elsewhere is
    /// left to its other owners (the column then allocates one with room for as many rows and
    /// a quarter more).
    pub(super) fn recycle(&mut self, batch: RecordBatch) {
        let (_, columns, _) = batch.into_parts();
        for (column, array) in self.columns.iter_mut().zip(columns) {
            column.recycle(array);
        }
    }

    /// The pending rows as one batch, leaving none.
    pub(super) fn take(&mut self) -> Result<RecordBatch, ArrowError> {
        let columns = self
            .columns
            .iter_mut()
            .map(|c| c.take())
            .collect::<Result<Vec<_>, _>>()?;
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

/// One column of a [`Gather`].
trait Column: Send {
    /// Copies rows `rows` of `array`, which has the column's type.
    fn extend(&mut self, array: &ArrayRef, rows: &[u32]) -> Result<(), ArrowError>;
    /// The bytes held.
    fn bytes(&self) -> usize;
    /// The rows held, as one array; none are left.
    fn take(&mut self) -> Result<ArrayRef, ArrowError>;
    /// Takes back the buffers of `array`, which [`take`](Self::take) returned, if nothing
    /// else holds them.
    fn recycle(&mut self, _array: ArrayRef) {}
}

/// The column that gathers values of `data_type`.
fn column(data_type: &DataType) -> Box<dyn Column> {
    macro_rules! primitive {
        ($t:ty, $data_type:expr) => {
            Box::new(Primitive::<$t> {
                data_type: $data_type.clone(),
                values: Vec::new(),
                nulls: NullBufferBuilder::new(0),
            })
        };
    }
    downcast_primitive! {
        data_type => (primitive, data_type),
        DataType::Boolean => Box::new(Boolean(BooleanBuilder::new())),
        DataType::Utf8 => Box::new(Bytes::<Utf8Type>(GenericByteBuilder::new())),
        DataType::LargeUtf8 => Box::new(Bytes::<LargeUtf8Type>(GenericByteBuilder::new())),
        DataType::Binary => Box::new(Bytes::<BinaryType>(GenericByteBuilder::new())),
        DataType::LargeBinary => Box::new(Bytes::<LargeBinaryType>(GenericByteBuilder::new())),
        _ => Box::new(Taken {
            data_type: data_type.clone(),
            parts: Vec::new(),
        }),
    }
}

/// The validity of rows `rows` of a column whose validity is `nulls`, packed 64 rows at a
/// time (a call per row costs more than the copy itself); `None` when they hold no null.
fn gathered_nulls(nulls: Option<&NullBuffer>, rows: &[u32]) -> Option<NullBuffer> {
    let nulls = nulls.filter(|n| n.null_count() > 0)?;
    let valid = BooleanBuffer::collect_bool(rows.len(), |i| nulls.is_valid(rows[i] as usize));
    Some(NullBuffer::new(valid))
}

/// A fixed-width column: values and validity in growing buffers.
struct Primitive<T: ArrowPrimitiveType> {
    /// The column's exact type (a timestamp's zone, a decimal's precision).
    data_type: DataType,
    values: Vec<T::Native>,
    nulls: NullBufferBuilder,
}

impl<T: ArrowPrimitiveType> Column for Primitive<T> {
    fn extend(&mut self, array: &ArrayRef, rows: &[u32]) -> Result<(), ArrowError> {
        let array = array
            .as_primitive_opt::<T>()
            .ok_or_else(|| mismatch(array))?;
        let values = array.values();
        self.values
            .extend(rows.iter().map(|&row| values[row as usize]));
        // Outputs are nullable but mostly hold no null: their rows' validity is one run.
        match gathered_nulls(array.nulls(), rows) {
            None => self.nulls.append_n_non_nulls(rows.len()),
            Some(nulls) => self.nulls.append_buffer(&nulls),
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.values.len() * size_of::<T::Native>() + self.nulls.allocated_size()
    }

    fn take(&mut self) -> Result<ArrayRef, ArrowError> {
        let values = std::mem::take(&mut self.values);
        let array = PrimitiveArray::<T>::try_new(values.into(), self.nulls.finish())?;
        Ok(Arc::new(array.with_data_type(self.data_type.clone())))
    }

    fn recycle(&mut self, array: ArrayRef) {
        // Only between a take and the next rows: a buffer holding rows is never replaced.
        if !self.values.is_empty() {
            return;
        }
        // A clone of the array shares its buffer; once the array itself is dropped, the
        // clone is the buffer's only owner unless the writer kept a reference.
        let rows = array.len();
        let values = array.as_primitive_opt::<T>().map(|a| a.values().clone());
        drop(array);
        self.values = match values.map(|v| v.into_inner().into_vec::<T::Native>()) {
            Some(Ok(mut values)) => {
                values.clear();
                values
            }
            _ => Vec::with_capacity(headroom(rows)),
        };
    }
}

/// The room to make for a row group after one of `rows`: a group ends with the batch that
/// fills it, so the next may hold a few more rows.
fn headroom(rows: usize) -> usize {
    rows + rows / 4
}

/// A boolean column.
struct Boolean(BooleanBuilder);

impl Column for Boolean {
    fn extend(&mut self, array: &ArrayRef, rows: &[u32]) -> Result<(), ArrowError> {
        let array = array.as_boolean_opt().ok_or_else(|| mismatch(array))?;
        let values = BooleanBuffer::collect_bool(rows.len(), |i| array.value(rows[i] as usize));
        let nulls = gathered_nulls(array.nulls(), rows);
        self.0.append_array(&BooleanArray::new(values, nulls));
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.0.values_slice().len() + self.0.validity_slice().map_or(0, <[u8]>::len)
    }

    fn take(&mut self) -> Result<ArrayRef, ArrowError> {
        let rows = self.0.len();
        let array = self.0.finish();
        self.0 = BooleanBuilder::with_capacity(headroom(rows));
        Ok(Arc::new(array))
    }
}

/// A string or binary column.
struct Bytes<T: ByteArrayType>(GenericByteBuilder<T>);

impl<T: ByteArrayType> Column for Bytes<T> {
    fn extend(&mut self, array: &ArrayRef, rows: &[u32]) -> Result<(), ArrowError> {
        let array = array.as_bytes_opt::<T>().ok_or_else(|| mismatch(array))?;
        for &row in rows {
            let row = row as usize;
            match array.is_valid(row) {
                true => self.0.append_value(array.value(row)),
                false => self.0.append_null(),
            }
        }
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.0.values_slice().len() + size_of_val(self.0.offsets_slice())
    }

    fn take(&mut self) -> Result<ArrayRef, ArrowError> {
        let (rows, bytes) = (self.0.len(), self.0.values_slice().len());
        let array = self.0.finish();
        self.0 = GenericByteBuilder::with_capacity(headroom(rows), headroom(bytes));
        Ok(Arc::new(array))
    }
}

/// Any other column: each batch's rows taken on their own, joined when the rows are taken.
struct Taken {
    data_type: DataType,
    parts: Vec<ArrayRef>,
}

impl Column for Taken {
    fn extend(&mut self, array: &ArrayRef, rows: &[u32]) -> Result<(), ArrowError> {
        let rows = UInt32Array::from(rows.to_vec());
        self.parts
            .push(arrow_select::take::take(array, &rows, None)?);
        Ok(())
    }

    fn bytes(&self) -> usize {
        self.parts.iter().map(|a| a.get_array_memory_size()).sum()
    }

    fn take(&mut self) -> Result<ArrayRef, ArrowError> {
        let parts = std::mem::take(&mut self.parts);
        let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        match parts.is_empty() {
            true => Ok(new_empty_array(&self.data_type)),
            false => arrow_select::concat::concat(&parts),
        }
    }
}

fn mismatch(array: &ArrayRef) -> ArrowError {
    ArrowError::SchemaError(format!(
        "a column of type {} was sent to a partition's writer for another type",
        array.data_type()
    ))
}

#[cfg(test)]
mod tests {
    //! Differential: gathering rows batch after batch gives what Arrow's own `take` of each
    //! batch's rows, concatenated, gives, for every kind of column, with nulls.

    use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
    use arrow_array::{
        BinaryArray, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow_schema::{Field, Schema};
    use proptest::prelude::*;

    use super::*;

    type Row = (
        Option<i64>,
        Option<f64>,
        Option<bool>,
        Option<String>,
        Option<Vec<u8>>,
        Option<i64>,
        Option<[f32; 2]>,
        Option<i32>,
    );

    fn schema() -> SchemaRef {
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, true),
            Field::new("f", DataType::Float64, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("bin", DataType::Binary, true),
            Field::new(
                "ts",
                DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new("v", DataType::FixedSizeList(item, 2), true),
            Field::new("i32", DataType::Int32, true),
        ]))
    }

    fn batch(rows: &[Row]) -> RecordBatch {
        let mut vectors = FixedSizeListBuilder::new(Float32Builder::new(), 2)
            .with_field(Arc::new(Field::new("item", DataType::Float32, false)));
        for row in rows {
            match row.6 {
                Some(v) => {
                    vectors.values().append_slice(&v);
                    vectors.append(true);
                }
                None => {
                    vectors.values().append_slice(&[0.0, 0.0]);
                    vectors.append(false);
                }
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.0))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.1))),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| r.2))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.3.clone()))),
            Arc::new(BinaryArray::from_iter(rows.iter().map(|r| r.4.as_deref()))),
            Arc::new(
                TimestampMicrosecondArray::from_iter(rows.iter().map(|r| r.5))
                    .with_timezone("+00:00"),
            ),
            Arc::new(vectors.finish()),
            Arc::new(Int32Array::from_iter(rows.iter().map(|r| r.7))),
        ];
        RecordBatch::try_new(schema(), columns).unwrap()
    }

    fn row() -> impl Strategy<Value = Row> {
        (
            proptest::option::of(any::<i64>()),
            proptest::option::of(any::<f64>()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(".{0,6}"),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..5)),
            proptest::option::of(any::<i64>()),
            proptest::option::of(any::<[f32; 2]>()),
            proptest::option::of(any::<i32>()),
        )
    }

    /// Batches, each with the row numbers a partition takes from it (any subset, any order
    /// the splitter gives: ascending).
    fn batches() -> impl Strategy<Value = Vec<(Vec<Row>, Vec<bool>)>> {
        proptest::collection::vec(
            proptest::collection::vec((row(), any::<bool>()), 0..40)
                .prop_map(|rows| rows.into_iter().unzip()),
            1..6,
        )
    }

    proptest! {
        #[test]
        fn gathers_what_take_and_concat_give(batches in batches(), cut in 0usize..6) {
            let mut gather = Gather::new(schema());
            let mut expected = Vec::new();
            let mut taken = Vec::new();
            for (i, (rows, chosen)) in batches.iter().enumerate() {
                let batch = batch(rows);
                let picked: Vec<u32> = (0..rows.len() as u32)
                    .filter(|&r| chosen[r as usize])
                    .collect();
                gather.extend(&batch, &picked).unwrap();
                expected.push(
                    arrow_select::take::take_record_batch(&batch, &UInt32Array::from(picked))
                        .unwrap(),
                );
                // Rows taken part way: each taken batch holds exactly the rows since the last.
                // Its buffers then come back, as the writer lanes give them back, while a
                // copy of it stays to compare.
                if i == cut {
                    let group = gather.take().unwrap();
                    taken.push(arrow_select::concat::concat_batches(&schema(), [&group]).unwrap());
                    gather.recycle(group);
                }
            }
            // Pending: the rows after the cut, or all of them when it never came.
            let pending_from = if cut < expected.len() { cut + 1 } else { 0 };
            let pending: usize = expected[pending_from..].iter().map(|b| b.num_rows()).sum();
            prop_assert_eq!(gather.rows(), pending);
            taken.push(gather.take().unwrap());
            prop_assert_eq!(gather.rows(), 0);
            let expected = arrow_select::concat::concat_batches(&schema(), &expected).unwrap();
            let actual = arrow_select::concat::concat_batches(&schema(), &taken).unwrap();
            prop_assert_eq!(actual, expected);
        }
    }

    #[test]
    fn a_recycled_buffer_gathers_the_next_rows_in_place_unless_still_shared() {
        let rows: Vec<Row> = (0..100)
            .map(|i| (Some(i), None, None, None, None, None, None, None))
            .collect();
        let batch = batch(&rows);
        let all: Vec<u32> = (0..100).collect();
        let values = |b: &RecordBatch| b.column(0).to_data().buffers()[0].as_ptr();
        let mut gather = Gather::new(schema());

        gather.extend(&batch, &all).unwrap();
        let first = gather.take().unwrap();
        let buffer = values(&first);
        gather.recycle(first);
        gather.extend(&batch, &all[..10]).unwrap();
        let second = gather.take().unwrap();
        assert_eq!(
            values(&second),
            buffer,
            "the buffer came back and was filled again"
        );
        assert_eq!(
            second
                .column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .values()[..],
            (0..10).collect::<Vec<i64>>()[..]
        );

        // A buffer someone else still holds is theirs: the next rows go to a new one.
        let held = second.clone();
        gather.recycle(second);
        gather.extend(&batch, &all[50..]).unwrap();
        let third = gather.take().unwrap();
        assert_ne!(values(&third), buffer);
        assert_eq!(
            held.column(0)
                .as_primitive::<arrow_array::types::Int64Type>()
                .values()[..],
            (0..10).collect::<Vec<i64>>()[..]
        );
    }

    #[test]
    fn a_batch_of_another_schema_is_an_error() {
        let mut gather = Gather::new(schema());
        let other =
            RecordBatch::try_from_iter([("i", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        let error = gather.extend(&other, &[0]).unwrap_err();
        assert!(error.to_string().contains("another schema"), "{error}");
    }
}
