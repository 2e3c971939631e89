//! Building output columns and the output batch.

use std::fmt;

use crate::batch::Batch;
use crate::signature::DataType;
use crate::value::Timestamp;
use crate::{TransformError, raw};

/// Builds a validity bitmap lazily: no allocation until the first null, and `None` from
/// [`finish`](Self::finish) when there was none (the WIT's "every row is valid").
#[derive(Debug, Clone, Default)]
struct ValidityBuilder {
    bits: Option<Vec<u8>>,
    len: usize,
    capacity: usize,
}

impl ValidityBuilder {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            bits: None,
            len: 0,
            capacity,
        }
    }

    #[inline]
    fn push_valid(&mut self) {
        if let Some(bits) = &mut self.bits {
            push_bit(bits, self.len, true);
        }
        self.len += 1;
    }

    #[inline]
    fn push_null(&mut self) {
        let len = self.len;
        let bits = self.bits.get_or_insert_with(|| {
            // Every row so far was valid: set their bits.
            let mut bits = Vec::with_capacity(self.capacity.max(len + 1).div_ceil(8));
            bits.resize(len / 8, 0xff);
            if !len.is_multiple_of(8) {
                bits.push((1u8 << (len % 8)) - 1);
            }
            bits
        });
        push_bit(bits, len, false);
        self.len += 1;
    }

    #[inline]
    fn push(&mut self, valid: bool) {
        if valid {
            self.push_valid();
        } else {
            self.push_null();
        }
    }

    fn finish(self) -> Option<Vec<u8>> {
        self.bits
    }
}

/// Appends bit `index` (which must be the next one) to an LSB-first bitmap.
#[inline]
fn push_bit(bits: &mut Vec<u8>, index: usize, value: bool) {
    if index.is_multiple_of(8) {
        bits.push(0);
    }
    if value && let Some(last) = bits.last_mut() {
        *last |= 1 << (index % 8);
    }
}

mod sealed {
    pub trait Sealed {}
}

/// An output column under construction; [`BatchBuilder::column`] takes any of them.
///
/// Implemented by [`PrimitiveBuilder`] (and its aliases [`Int32Builder`], [`Int64Builder`],
/// [`Float32Builder`], [`Float64Builder`]), [`TimestampBuilder`], [`BooleanBuilder`],
/// [`Utf8Builder`], [`BinaryBuilder`] and [`Float32VectorBuilder`].
pub trait ColumnBuilder: sealed::Sealed {
    /// The number of values pushed so far.
    fn len(&self) -> usize;

    /// Whether no value was pushed yet.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type of the column being built.
    fn data_type(&self) -> DataType;

    /// The column's values and validity in the WIT layout, or a message saying what was
    /// pushed wrong.
    #[doc(hidden)]
    fn into_raw(self) -> Result<(raw::ColumnValues, Option<Vec<u8>>), String>;
}

/// A primitive type a [`PrimitiveBuilder`] can hold: `i32`, `i64`, `f32` or `f64`.
pub trait NativeType: Copy + Default + sealed::Sealed {
    /// The column type.
    const DATA_TYPE: DataType;
    #[doc(hidden)]
    fn into_raw(values: Vec<Self>) -> raw::ColumnValues;
}

macro_rules! native_type {
    ($t:ty, $data_type:ident) => {
        impl sealed::Sealed for $t {}
        impl NativeType for $t {
            const DATA_TYPE: DataType = DataType::$data_type;
            fn into_raw(values: Vec<Self>) -> raw::ColumnValues {
                raw::ColumnValues::$data_type(values)
            }
        }
    };
}
native_type!(i32, Int32);
native_type!(i64, Int64);
native_type!(f32, Float32);
native_type!(f64, Float64);

/// Builds an `int32`, `int64`, `float32` or `float64` column.
///
/// ```
/// use skewless_guest::Float64Builder;
///
/// let mut amounts = Float64Builder::with_capacity(3);
/// amounts.push_value(1.5);
/// amounts.push(None);
/// amounts.push(Some(2.0));
/// assert_eq!(amounts.values(), &[1.5, 0.0, 2.0]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct PrimitiveBuilder<T> {
    values: Vec<T>,
    validity: ValidityBuilder,
}

/// Builds an `int32` column.
pub type Int32Builder = PrimitiveBuilder<i32>;
/// Builds an `int64` column.
pub type Int64Builder = PrimitiveBuilder<i64>;
/// Builds a `float32` column.
pub type Float32Builder = PrimitiveBuilder<f32>;
/// Builds a `float64` column.
pub type Float64Builder = PrimitiveBuilder<f64>;

impl<T: NativeType> PrimitiveBuilder<T> {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty builder with room for `rows` values.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            values: Vec::with_capacity(rows),
            validity: ValidityBuilder::with_capacity(rows),
        }
    }

    /// A column without nulls holding these values (no copy).
    pub fn from_values(values: Vec<T>) -> Self {
        let len = values.len();
        Self {
            values,
            validity: ValidityBuilder {
                bits: None,
                len,
                capacity: len,
            },
        }
    }

    /// Appends a value, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<T>) {
        match value {
            Some(value) => self.push_value(value),
            None => self.push_null(),
        }
    }

    /// Appends a valid value.
    #[inline]
    pub fn push_value(&mut self, value: T) {
        self.values.push(value);
        self.validity.push_valid();
    }

    /// Appends a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.values.push(T::default());
        self.validity.push_null();
    }

    /// Appends valid values.
    pub fn extend_from_slice(&mut self, values: &[T]) {
        self.values.extend_from_slice(values);
        for _ in values {
            self.validity.push_valid();
        }
    }

    /// The values pushed so far (zero for nulls).
    pub fn values(&self) -> &[T] {
        &self.values
    }
}

impl<T: NativeType> sealed::Sealed for PrimitiveBuilder<T> {}

impl<T: NativeType> ColumnBuilder for PrimitiveBuilder<T> {
    fn len(&self) -> usize {
        self.values.len()
    }

    fn data_type(&self) -> DataType {
        T::DATA_TYPE
    }

    fn into_raw(self) -> Result<(raw::ColumnValues, Option<Vec<u8>>), String> {
        Ok((T::into_raw(self.values), self.validity.finish()))
    }
}

/// Builds a `timestamp` column.
#[derive(Debug, Clone, Default)]
pub struct TimestampBuilder {
    micros: PrimitiveBuilder<i64>,
}

impl TimestampBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `rows` values.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            micros: PrimitiveBuilder::with_capacity(rows),
        }
    }

    /// Appends a value, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<Timestamp>) {
        self.micros.push(value.map(Timestamp::micros));
    }

    /// Appends a valid value.
    #[inline]
    pub fn push_value(&mut self, value: Timestamp) {
        self.micros.push_value(value.micros());
    }

    /// Appends a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.micros.push_null();
    }
}

impl sealed::Sealed for TimestampBuilder {}

impl ColumnBuilder for TimestampBuilder {
    fn len(&self) -> usize {
        self.micros.len()
    }

    fn data_type(&self) -> DataType {
        DataType::Timestamp
    }

    fn into_raw(self) -> Result<(raw::ColumnValues, Option<Vec<u8>>), String> {
        Ok((
            raw::ColumnValues::Timestamp(self.micros.values),
            self.micros.validity.finish(),
        ))
    }
}

/// Builds a `boolean` column, bit-packed as it goes.
#[derive(Debug, Clone, Default)]
pub struct BooleanBuilder {
    bits: Vec<u8>,
    len: usize,
    validity: ValidityBuilder,
}

impl BooleanBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `rows` values.
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            bits: Vec::with_capacity(rows.div_ceil(8)),
            len: 0,
            validity: ValidityBuilder::with_capacity(rows),
        }
    }

    /// Appends a value, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<bool>) {
        push_bit(&mut self.bits, self.len, value.unwrap_or(false));
        self.len += 1;
        self.validity.push(value.is_some());
    }

    /// Appends a valid value.
    #[inline]
    pub fn push_value(&mut self, value: bool) {
        push_bit(&mut self.bits, self.len, value);
        self.len += 1;
        self.validity.push_valid();
    }

    /// Appends a null.
    #[inline]
    pub fn push_null(&mut self) {
        self.push(None);
    }
}

impl sealed::Sealed for BooleanBuilder {}

impl ColumnBuilder for BooleanBuilder {
    fn len(&self) -> usize {
        self.len
    }

    fn data_type(&self) -> DataType {
        DataType::Boolean
    }

    fn into_raw(self) -> Result<(raw::ColumnValues, Option<Vec<u8>>), String> {
        Ok((
            raw::ColumnValues::Boolean(self.bits),
            self.validity.finish(),
        ))
    }
}

/// Offsets for a variable-length column; remembers an overflow of Arrow's `i32` offsets
/// instead of panicking, for [`BatchBuilder`] to report.
#[derive(Debug, Clone)]
struct Offsets {
    offsets: Vec<i32>,
    overflowed: bool,
}

impl Offsets {
    fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            offsets,
            overflowed: false,
        }
    }

    #[inline]
    fn push(&mut self, end: usize) {
        let end = i32::try_from(end).unwrap_or_else(|_| {
            self.overflowed = true;
            i32::MAX
        });
        self.offsets.push(end);
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn finish(self, data: Vec<u8>) -> Result<raw::VarLen, String> {
        if self.overflowed {
            return Err("holds more than 2 GiB of data, past Arrow's 32-bit offsets".to_owned());
        }
        Ok(raw::VarLen {
            offsets: self.offsets,
            data,
        })
    }
}

/// Builds a `utf8` column: offsets and bytes, no allocation per value.
///
/// ```
/// use skewless_guest::Utf8Builder;
///
/// let mut names = Utf8Builder::with_capacity(3);
/// names.push_value("coffee");
/// names.push(None);
/// // Write a value in place, without a temporary String:
/// names.push_with(|value| {
///     value.push_str("tea");
///     value.push('!');
/// });
/// ```
#[derive(Debug, Clone)]
pub struct Utf8Builder {
    offsets: Offsets,
    data: String,
    validity: ValidityBuilder,
}

impl Default for Utf8Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Utf8Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty builder with room for `rows` values.
    pub fn with_capacity(rows: usize) -> Self {
        Self::with_capacities(rows, 0)
    }

    /// An empty builder with room for `rows` values totalling `bytes` bytes.
    pub fn with_capacities(rows: usize, bytes: usize) -> Self {
        Self {
            offsets: Offsets::with_capacity(rows),
            data: String::with_capacity(bytes),
            validity: ValidityBuilder::with_capacity(rows),
        }
    }

    /// Appends a value, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.push_value(value),
            None => self.push_null(),
        }
    }

    /// Appends a valid value.
    #[inline]
    pub fn push_value(&mut self, value: &str) {
        self.data.push_str(value);
        self.offsets.push(self.data.len());
        self.validity.push_valid();
    }

    /// Appends a null (an empty slot).
    #[inline]
    pub fn push_null(&mut self) {
        self.offsets.push(self.data.len());
        self.validity.push_null();
    }

    /// Appends a valid value written in place by `write`, which gets a [`Utf8ValueWriter`]
    /// (it implements [`std::fmt::Write`], so `write!` works too).
    #[inline]
    pub fn push_with(&mut self, write: impl FnOnce(&mut Utf8ValueWriter<'_>)) {
        let start = self.data.len();
        write(&mut Utf8ValueWriter {
            data: &mut self.data,
            start,
        });
        self.offsets.push(self.data.len());
        self.validity.push_valid();
    }
}

/// Writes one value of a [`Utf8Builder`] in place; see [`Utf8Builder::push_with`].
pub struct Utf8ValueWriter<'a> {
    data: &'a mut String,
    start: usize,
}

impl Utf8ValueWriter<'_> {
    /// Appends text to the value.
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        self.data.push_str(s);
    }

    /// Appends a character to the value.
    #[inline]
    pub fn push(&mut self, c: char) {
        self.data.push(c);
    }

    /// The value written so far.
    pub fn as_str(&self) -> &str {
        &self.data[self.start..]
    }

    /// Removes and returns the last character written, if any.
    pub fn pop(&mut self) -> Option<char> {
        if self.data.len() > self.start {
            self.data.pop()
        } else {
            None
        }
    }

    /// Shortens the value to `len` bytes; panics when `len` is not on a character boundary.
    pub fn truncate(&mut self, len: usize) {
        self.data.truncate(self.start + len);
    }
}

impl fmt::Write for Utf8ValueWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.data.push_str(s);
        Ok(())
    }
}

impl fmt::Debug for Utf8ValueWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Utf8ValueWriter")
            .field(&self.as_str())
            .finish()
    }
}

impl sealed::Sealed for Utf8Builder {}

impl ColumnBuilder for Utf8Builder {
    fn len(&self) -> usize {
        self.offsets.len()
    }

    fn data_type(&self) -> DataType {
        DataType::Utf8
    }

    fn into_raw(self) -> Result<(raw::ColumnValues, Option<Vec<u8>>), String> {
        let var_len = self.offsets.finish(self.data.into_bytes())?;
        Ok((raw::ColumnValues::Utf8(var_len), self.validity.finish()))
    }
}

/// Builds a `binary` column: offsets and bytes, no allocation per value.
#[derive(Debug, Clone)]
pub struct BinaryBuilder {
    offsets: Offsets,
    data: Vec<u8>,
    validity: ValidityBuilder,
}

impl Default for BinaryBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BinaryBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty builder with room for `rows` values.
    pub fn with_capacity(rows: usize) -> Self {
        Self::with_capacities(rows, 0)
    }

    /// An empty builder with room for `rows` values totalling `bytes` bytes.
    pub fn with_capacities(rows: usize, bytes: usize) -> Self {
        Self {
            offsets: Offsets::with_capacity(rows),
            data: Vec::with_capacity(bytes),
            validity: ValidityBuilder::with_capacity(rows),
        }
    }

    /// Appends a value, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => self.push_value(value),
            None => self.push_null(),
        }
    }

    /// Appends a valid value.
    #[inline]
    pub fn push_value(&mut self, value: &[u8]) {
        self.data.extend_from_slice(value);
        self.offsets.push(self.data.len());
        self.validity.push_valid();
    }

    /// Appends a null (an empty slot).
    #[inline]
    pub fn push_null(&mut self) {
        self.offsets.push(self.data.len());
        self.validity.push_null();
    }
}

impl sealed::Sealed for BinaryBuilder {}

impl ColumnBuilder for BinaryBuilder {
    fn len(&self) -> usize {
        self.offsets.len()
    }

    fn data_type(&self) -> DataType {
        DataType::Binary
    }

    fn into_raw(self) -> Result<(raw::ColumnValues, Option<Vec<u8>>), String> {
        let var_len = self.offsets.finish(self.data)?;
        Ok((raw::ColumnValues::Binary(var_len), self.validity.finish()))
    }
}

/// Builds a `float32-vector(dimension)` column.
///
/// A pushed vector whose length is not the dimension is reported by
/// [`BatchBuilder::finish`] as an error naming the column and row.
#[derive(Debug, Clone)]
pub struct Float32VectorBuilder {
    dimension: usize,
    values: Vec<f32>,
    len: usize,
    validity: ValidityBuilder,
    /// The first row pushed with a wrong length, and that length.
    wrong_length: Option<(usize, usize)>,
}

impl Float32VectorBuilder {
    /// An empty builder for vectors of `dimension` floats.
    pub fn new(dimension: usize) -> Self {
        Self::with_capacity(dimension, 0)
    }

    /// An empty builder for vectors of `dimension` floats, with room for `rows` vectors.
    pub fn with_capacity(dimension: usize, rows: usize) -> Self {
        Self {
            dimension,
            values: Vec::with_capacity(dimension.saturating_mul(rows)),
            len: 0,
            validity: ValidityBuilder::with_capacity(rows),
            wrong_length: None,
        }
    }

    /// The dimension of every vector.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Appends a vector, or a null for `None`.
    #[inline]
    pub fn push(&mut self, value: Option<&[f32]>) {
        match value {
            Some(value) => self.push_value(value),
            None => self.push_null(),
        }
    }

    /// Appends a valid vector of `dimension` floats.
    #[inline]
    pub fn push_value(&mut self, value: &[f32]) {
        if value.len() == self.dimension {
            self.values.extend_from_slice(value);
        } else {
            self.wrong_length.get_or_insert((self.len, value.len()));
            self.values.resize(self.values.len() + self.dimension, 0.0);
        }
        self.len += 1;
        self.validity.push_valid();
    }

    /// Appends a null (`dimension` zeros).
    #[inline]
    pub fn push_null(&mut self) {
        self.values.resize(self.values.len() + self.dimension, 0.0);
        self.len += 1;
        self.validity.push_null();
    }
}

impl sealed::Sealed for Float32VectorBuilder {}

impl ColumnBuilder for Float32VectorBuilder {
    fn len(&self) -> usize {
        self.len
    }

    fn data_type(&self) -> DataType {
        DataType::Float32Vector(u32::try_from(self.dimension).unwrap_or(u32::MAX))
    }

    fn into_raw(self) -> Result<(raw::ColumnValues, Option<Vec<u8>>), String> {
        if let Some((row, len)) = self.wrong_length {
            return Err(format!(
                "row {row}: a vector of {len} floats was pushed, but the dimension is {}",
                self.dimension
            ));
        }
        Ok((
            raw::ColumnValues::Float32Vector(self.values),
            self.validity.finish(),
        ))
    }
}

/// Assembles the output [`Batch`] of a transform from column builders.
///
/// Mistakes (a column with the wrong number of values, a duplicate name, a vector of the
/// wrong dimension) are collected and reported by [`finish`](Self::finish) as a
/// [`TransformError`] naming the column, so building never panics.
///
/// ```
/// use skewless_guest::{BatchBuilder, BooleanBuilder, Float64Builder};
///
/// let mut ratio = Float64Builder::with_capacity(2);
/// ratio.push(Some(0.5));
/// ratio.push(None);
/// let mut high = BooleanBuilder::with_capacity(2);
/// high.push_value(false);
/// high.push_value(true);
/// let batch = BatchBuilder::new(2).column("ratio", ratio).column("is_high", high).finish()?;
/// assert_eq!(batch.float64("ratio")?.get(1), None);
/// assert_eq!(batch.boolean("is_high")?.get(1), Some(true));
/// # Ok::<(), skewless_guest::TransformError>(())
/// ```
#[derive(Debug)]
pub struct BatchBuilder {
    num_rows: usize,
    columns: Vec<raw::Column>,
    error: Option<TransformError>,
}

impl BatchBuilder {
    /// An empty batch of `num_rows` rows; every column added must hold `num_rows` values.
    pub fn new(num_rows: usize) -> Self {
        Self {
            num_rows,
            columns: Vec::new(),
            error: None,
        }
    }

    /// Adds a column (builder style).
    #[must_use]
    pub fn column(mut self, name: impl Into<String>, column: impl ColumnBuilder) -> Self {
        self.add_column(name, column);
        self
    }

    /// Adds a column.
    pub fn add_column(&mut self, name: impl Into<String>, column: impl ColumnBuilder) -> &mut Self {
        let name = name.into();
        if self.error.is_some() {
            return self;
        }
        let fail = |message: String| Some(TransformError::new(message).with_column(name.as_str()));
        if column.len() != self.num_rows {
            self.error = fail(format!(
                "output column `{name}` has {} values, but the batch has {} rows",
                column.len(),
                self.num_rows
            ));
        } else if self.columns.iter().any(|c| c.name == name) {
            self.error = fail(format!("output column `{name}` was added twice"));
        } else {
            match column.into_raw() {
                Ok((values, validity)) => self.columns.push(raw::Column {
                    name,
                    values,
                    validity,
                }),
                Err(message) => self.error = fail(format!("output column `{name}`: {message}")),
            }
        }
        self
    }

    /// The batch, or the first mistake made while building it.
    pub fn finish(self) -> Result<Batch, TransformError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let num_rows = u32::try_from(self.num_rows).map_err(|_| {
            TransformError::new(format!(
                "{} rows is past the WIT limit of 2^32 - 1",
                self.num_rows
            ))
        })?;
        Ok(Batch::from_raw(raw::Batch {
            num_rows,
            columns: self.columns,
        }))
    }
}
