//! A columnar batch and typed, borrowed views of its input columns.

use std::fmt;

use crate::value::Timestamp;
use crate::{TransformError, raw};

/// A columnar batch of rows: the input of [`Transform::transform`](crate::Transform::transform)
/// and, built with [`BatchBuilder`](crate::BatchBuilder), its output.
///
/// Columns are looked up by name with one typed accessor per type ([`float64`](Self::float64),
/// [`utf8`](Self::utf8), ...). An accessor borrows the column's buffers, so reading costs no
/// copy, and fails with a [`TransformError`] naming the column when it is missing or holds
/// another type; return that error with `?`.
pub struct Batch {
    inner: raw::Batch,
}

impl Batch {
    pub(crate) fn from_raw(inner: raw::Batch) -> Self {
        Self { inner }
    }

    pub(crate) fn into_raw(self) -> raw::Batch {
        self.inner
    }

    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.inner.num_rows as usize
    }

    /// The number of columns.
    pub fn num_columns(&self) -> usize {
        self.inner.columns.len()
    }

    /// The column names, in batch order. The host may pass columns the transform did not
    /// declare, in any order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.inner.columns.iter().map(|c| c.name.as_str())
    }

    /// Whether the batch has a column of this name.
    pub fn has_column(&self, name: &str) -> bool {
        self.inner.columns.iter().any(|c| c.name == name)
    }

    /// The bit-packed values of a `boolean` column.
    pub fn boolean(&self, name: &str) -> Result<BooleanColumn<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Boolean(bits) = &column.values else {
            return Err(wrong_type(column, "boolean"));
        };
        check_len(name, "bytes", bits.len(), self.num_rows().div_ceil(8), true)?;
        Ok(BooleanColumn {
            bits,
            len: self.num_rows(),
            validity,
        })
    }

    /// The values of an `int32` column.
    pub fn int32(&self, name: &str) -> Result<Int32Column<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Int32(values) = &column.values else {
            return Err(wrong_type(column, "int32"));
        };
        self.primitive(name, values, validity)
    }

    /// The values of an `int64` column.
    pub fn int64(&self, name: &str) -> Result<Int64Column<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Int64(values) = &column.values else {
            return Err(wrong_type(column, "int64"));
        };
        self.primitive(name, values, validity)
    }

    /// The values of a `float32` column.
    pub fn float32(&self, name: &str) -> Result<Float32Column<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Float32(values) = &column.values else {
            return Err(wrong_type(column, "float32"));
        };
        self.primitive(name, values, validity)
    }

    /// The values of a `float64` column.
    pub fn float64(&self, name: &str) -> Result<Float64Column<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Float64(values) = &column.values else {
            return Err(wrong_type(column, "float64"));
        };
        self.primitive(name, values, validity)
    }

    /// The values of a `timestamp` column (microseconds since the Unix epoch, UTC).
    pub fn timestamp(&self, name: &str) -> Result<TimestampColumn<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Timestamp(values) = &column.values else {
            return Err(wrong_type(column, "timestamp"));
        };
        Ok(TimestampColumn {
            micros: self.primitive(name, values, validity)?,
        })
    }

    /// The values of a `utf8` column. The whole column is checked once to be valid UTF-8
    /// with offsets on character boundaries, so reading a value is two loads and a slice.
    pub fn utf8(&self, name: &str) -> Result<Utf8Column<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Utf8(var_len) = &column.values else {
            return Err(wrong_type(column, "utf8"));
        };
        let data = std::str::from_utf8(&var_len.data).map_err(|e| {
            TransformError::new(format!("input column `{name}` is not valid UTF-8: {e}"))
                .with_column(name)
        })?;
        let offsets = check_offsets(name, &var_len.offsets, self.num_rows(), data.len())?;
        if let Some(row) = offsets
            .iter()
            .position(|&o| !data.is_char_boundary(o as usize))
        {
            return Err(TransformError::new(format!(
                "input column `{name}`: offset {row} splits a UTF-8 character"
            ))
            .with_column(name));
        }
        Ok(Utf8Column {
            offsets,
            data,
            validity,
        })
    }

    /// The values of a `binary` column.
    pub fn binary(&self, name: &str) -> Result<BinaryColumn<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Binary(var_len) = &column.values else {
            return Err(wrong_type(column, "binary"));
        };
        let offsets = check_offsets(name, &var_len.offsets, self.num_rows(), var_len.data.len())?;
        Ok(BinaryColumn {
            offsets,
            data: &var_len.data,
            validity,
        })
    }

    /// The values of a `float32-vector(dimension)` column. The batch does not carry the
    /// dimension; pass the one the transform declared, and it is checked against the length
    /// of the column.
    pub fn float32_vector(
        &self,
        name: &str,
        dimension: usize,
    ) -> Result<Float32VectorColumn<'_>, TransformError> {
        let (column, validity) = self.column(name)?;
        let raw::ColumnValues::Float32Vector(values) = &column.values else {
            return Err(wrong_type(column, "float32-vector"));
        };
        let expected = self.num_rows().checked_mul(dimension).ok_or_else(|| {
            TransformError::new(format!(
                "input column `{name}`: dimension {dimension} is too large"
            ))
            .with_column(name)
        })?;
        if values.len() != expected {
            return Err(TransformError::new(format!(
                "input column `{name}` holds {} floats, but {} rows of dimension {dimension} \
                 need {expected}; is the column's dimension {dimension}?",
                values.len(),
                self.num_rows(),
            ))
            .with_column(name));
        }
        Ok(Float32VectorColumn {
            values,
            dimension,
            len: self.num_rows(),
            validity,
        })
    }

    /// Finds a column and checks its validity bitmap.
    fn column(&self, name: &str) -> Result<(&raw::Column, Validity<'_>), TransformError> {
        let Some(column) = self.inner.columns.iter().find(|c| c.name == name) else {
            let mut present = String::new();
            for (i, column) in self.inner.columns.iter().enumerate() {
                if i > 0 {
                    present.push_str(", ");
                }
                present.push('`');
                present.push_str(&column.name);
                present.push('`');
            }
            if present.is_empty() {
                present.push_str("none");
            }
            return Err(TransformError::new(format!(
                "the input has no column `{name}` (columns: {present})"
            ))
            .with_column(name));
        };
        let len = self.num_rows();
        if let Some(bits) = &column.validity {
            check_len(name, "validity bytes", bits.len(), len.div_ceil(8), true)?;
        }
        Ok((
            column,
            Validity {
                bits: column.validity.as_deref(),
                len,
            },
        ))
    }

    fn primitive<'a, T: Copy>(
        &self,
        name: &str,
        values: &'a [T],
        validity: Validity<'a>,
    ) -> Result<PrimitiveColumn<'a, T>, TransformError> {
        check_len(name, "values", values.len(), self.num_rows(), false)?;
        Ok(PrimitiveColumn { values, validity })
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("num_rows", &self.inner.num_rows)
            .field("columns", &self.column_names().collect::<Vec<_>>())
            .finish()
    }
}

fn kind_name(values: &raw::ColumnValues) -> &'static str {
    match values {
        raw::ColumnValues::Boolean(_) => "boolean",
        raw::ColumnValues::Int32(_) => "int32",
        raw::ColumnValues::Int64(_) => "int64",
        raw::ColumnValues::Float32(_) => "float32",
        raw::ColumnValues::Float64(_) => "float64",
        raw::ColumnValues::Utf8(_) => "utf8",
        raw::ColumnValues::Binary(_) => "binary",
        raw::ColumnValues::Timestamp(_) => "timestamp",
        raw::ColumnValues::Float32Vector(_) => "float32-vector",
    }
}

fn wrong_type(column: &raw::Column, expected: &str) -> TransformError {
    TransformError::new(format!(
        "input column `{}` holds {} values, but the transform reads it as {expected}",
        column.name,
        kind_name(&column.values),
    ))
    .with_column(column.name.as_str())
}

/// Checks a buffer length; `at_least` allows longer buffers (Arrow pads bitmaps).
fn check_len(
    name: &str,
    what: &str,
    actual: usize,
    expected: usize,
    at_least: bool,
) -> Result<(), TransformError> {
    if actual == expected || (at_least && actual > expected) {
        return Ok(());
    }
    Err(TransformError::new(format!(
        "input column `{name}` holds {actual} {what}, expected {}{expected} for the batch's rows",
        if at_least { "at least " } else { "" },
    ))
    .with_column(name))
}

/// Checks Arrow offsets: `num_rows + 1` non-decreasing entries within the data.
fn check_offsets<'a>(
    name: &str,
    offsets: &'a [i32],
    num_rows: usize,
    data_len: usize,
) -> Result<&'a [i32], TransformError> {
    check_len(name, "offsets", offsets.len(), num_rows + 1, false)?;
    let bad = |message: String| Err(TransformError::new(message).with_column(name));
    if offsets[0] < 0 {
        return bad(format!("input column `{name}`: negative first offset"));
    }
    if let Some(row) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return bad(format!(
            "input column `{name}`: offsets decrease at row {row}"
        ));
    }
    if offsets[num_rows] as usize > data_len {
        return bad(format!(
            "input column `{name}`: last offset {} is past the {data_len} data bytes",
            offsets[num_rows]
        ));
    }
    Ok(offsets)
}

/// A validity bitmap: which rows of a column are valid (not null).
///
/// Arrow layout: row `i` is valid when bit `i % 8` of byte `i / 8` is set; no bitmap means
/// every row is valid.
#[derive(Debug, Clone, Copy)]
pub struct Validity<'a> {
    bits: Option<&'a [u8]>,
    len: usize,
}

impl<'a> Validity<'a> {
    /// Whether row `i` is valid (not null). Panics when `i` is out of bounds and there is a
    /// bitmap.
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        match self.bits {
            None => true,
            Some(bits) => bits[i >> 3] >> (i & 7) & 1 != 0,
        }
    }

    /// The bitmap bytes; `None` when every row is valid.
    pub fn bits(&self) -> Option<&'a [u8]> {
        self.bits
    }

    /// The number of null rows.
    pub fn null_count(&self) -> usize {
        let Some(bits) = self.bits else { return 0 };
        let full = self.len / 8;
        let mut valid: usize = bits[..full].iter().map(|b| b.count_ones() as usize).sum();
        let rest = self.len % 8;
        if rest > 0 {
            valid += (bits[full] & ((1u8 << rest) - 1)).count_ones() as usize;
        }
        self.len - valid
    }

    /// The first null row, if any.
    pub fn first_null(&self) -> Option<usize> {
        self.bits?;
        (0..self.len).find(|&i| !self.is_valid(i))
    }
}

/// Methods every column view has.
macro_rules! column_common {
    () => {
        /// The number of rows.
        pub fn len(&self) -> usize {
            self.validity.len
        }

        /// Whether the column has no rows.
        pub fn is_empty(&self) -> bool {
            self.validity.len == 0
        }

        /// Whether row `i` is valid (not null).
        #[inline]
        pub fn is_valid(&self, i: usize) -> bool {
            self.validity.is_valid(i)
        }

        /// Whether row `i` is null.
        #[inline]
        pub fn is_null(&self, i: usize) -> bool {
            !self.validity.is_valid(i)
        }

        /// The number of null rows.
        pub fn null_count(&self) -> usize {
            self.validity.null_count()
        }

        /// The validity bitmap.
        pub fn validity(&self) -> Validity<'a> {
            self.validity
        }
    };
}

/// A borrowed column of fixed-width values: `int32`, `int64`, `float32` or `float64`.
#[derive(Debug, Clone, Copy)]
pub struct PrimitiveColumn<'a, T> {
    values: &'a [T],
    validity: Validity<'a>,
}

/// A borrowed `int32` column.
pub type Int32Column<'a> = PrimitiveColumn<'a, i32>;
/// A borrowed `int64` column.
pub type Int64Column<'a> = PrimitiveColumn<'a, i64>;
/// A borrowed `float32` column.
pub type Float32Column<'a> = PrimitiveColumn<'a, f32>;
/// A borrowed `float64` column.
pub type Float64Column<'a> = PrimitiveColumn<'a, f64>;

impl<'a, T: Copy> PrimitiveColumn<'a, T> {
    column_common!();

    /// All values, one per row; the values of null rows are unspecified (zero in practice).
    /// The fastest way to compute over a column that has no nulls.
    pub fn values(&self) -> &'a [T] {
        self.values
    }

    /// The value of row `i`, ignoring validity.
    #[inline]
    pub fn value(&self, i: usize) -> T {
        self.values[i]
    }

    /// The value of row `i`, or `None` when it is null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<T> {
        if self.validity.is_valid(i) {
            Some(self.values[i])
        } else {
            None
        }
    }

    /// Every row, `None` for nulls.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<T>> + 'a {
        let column = *self;
        (0..self.len()).map(move |i| column.get(i))
    }
}

/// A borrowed `timestamp` column.
#[derive(Debug, Clone, Copy)]
pub struct TimestampColumn<'a> {
    micros: PrimitiveColumn<'a, i64>,
}

impl<'a> TimestampColumn<'a> {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// Whether row `i` is valid (not null).
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.micros.is_valid(i)
    }

    /// Whether row `i` is null.
    #[inline]
    pub fn is_null(&self, i: usize) -> bool {
        self.micros.is_null(i)
    }

    /// The number of null rows.
    pub fn null_count(&self) -> usize {
        self.micros.null_count()
    }

    /// The validity bitmap.
    pub fn validity(&self) -> Validity<'a> {
        self.micros.validity()
    }

    /// All values as microseconds since the Unix epoch; null rows hold unspecified values.
    pub fn values(&self) -> &'a [i64] {
        self.micros.values()
    }

    /// The value of row `i`, ignoring validity.
    #[inline]
    pub fn value(&self, i: usize) -> Timestamp {
        Timestamp::from_micros(self.micros.value(i))
    }

    /// The value of row `i`, or `None` when it is null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<Timestamp> {
        self.micros.get(i).map(Timestamp::from_micros)
    }

    /// Every row, `None` for nulls.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<Timestamp>> + 'a {
        self.micros.iter().map(|v| v.map(Timestamp::from_micros))
    }
}

/// A borrowed `boolean` column (bit-packed).
#[derive(Debug, Clone, Copy)]
pub struct BooleanColumn<'a> {
    bits: &'a [u8],
    len: usize,
    validity: Validity<'a>,
}

impl<'a> BooleanColumn<'a> {
    column_common!();

    /// The bit-packed values, least significant bit first.
    pub fn bits(&self) -> &'a [u8] {
        self.bits
    }

    /// The value of row `i`, ignoring validity.
    #[inline]
    pub fn value(&self, i: usize) -> bool {
        debug_assert!(i < self.len);
        self.bits[i >> 3] >> (i & 7) & 1 != 0
    }

    /// The value of row `i`, or `None` when it is null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<bool> {
        if self.validity.is_valid(i) {
            Some(self.value(i))
        } else {
            None
        }
    }

    /// Every row, `None` for nulls.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<bool>> + 'a {
        let column = *self;
        (0..self.len).map(move |i| column.get(i))
    }
}

/// A borrowed `utf8` column.
#[derive(Debug, Clone, Copy)]
pub struct Utf8Column<'a> {
    offsets: &'a [i32],
    data: &'a str,
    validity: Validity<'a>,
}

impl<'a> Utf8Column<'a> {
    column_common!();

    /// The value of row `i`, ignoring validity (null rows are usually empty).
    #[inline]
    pub fn value(&self, i: usize) -> &'a str {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The value of row `i`, or `None` when it is null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        if self.validity.is_valid(i) {
            Some(self.value(i))
        } else {
            None
        }
    }

    /// Every row, `None` for nulls.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&'a str>> + 'a {
        let column = *self;
        (0..self.len()).map(move |i| column.get(i))
    }
}

/// A borrowed `binary` column.
#[derive(Debug, Clone, Copy)]
pub struct BinaryColumn<'a> {
    offsets: &'a [i32],
    data: &'a [u8],
    validity: Validity<'a>,
}

impl<'a> BinaryColumn<'a> {
    column_common!();

    /// The value of row `i`, ignoring validity (null rows are usually empty).
    #[inline]
    pub fn value(&self, i: usize) -> &'a [u8] {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    /// The value of row `i`, or `None` when it is null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        if self.validity.is_valid(i) {
            Some(self.value(i))
        } else {
            None
        }
    }

    /// Every row, `None` for nulls.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&'a [u8]>> + 'a {
        let column = *self;
        (0..self.len()).map(move |i| column.get(i))
    }
}

/// A borrowed `float32-vector(dimension)` column: `dimension` floats per row, row-major.
#[derive(Debug, Clone, Copy)]
pub struct Float32VectorColumn<'a> {
    values: &'a [f32],
    dimension: usize,
    len: usize,
    validity: Validity<'a>,
}

impl<'a> Float32VectorColumn<'a> {
    column_common!();

    /// The dimension of every vector.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// All `len() * dimension()` floats, row-major.
    pub fn values(&self) -> &'a [f32] {
        self.values
    }

    /// The vector of row `i`, ignoring validity.
    #[inline]
    pub fn value(&self, i: usize) -> &'a [f32] {
        debug_assert!(i < self.len);
        &self.values[i * self.dimension..(i + 1) * self.dimension]
    }

    /// The vector of row `i`, or `None` when it is null.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a [f32]> {
        if self.validity.is_valid(i) {
            Some(self.value(i))
        } else {
            None
        }
    }

    /// Every row, `None` for nulls.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&'a [f32]>> + 'a {
        let column = *self;
        (0..self.len).map(move |i| column.get(i))
    }
}
