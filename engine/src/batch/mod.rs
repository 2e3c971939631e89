//! Arrow `RecordBatch` <-> WIT `batch` conversion, checked against a signature.
//!
//! The WIT layout is Arrow's physical layout (see `wit/transform.wit`), so conversion is a
//! copy of each buffer, never a loop over values: primitive columns are one `memcpy`,
//! strings and binaries two (offsets + bytes), booleans and validity stay bit-packed.
//!
//! Both directions check the batch against the transform's declared fields and fail with
//! an [`ErrorKind::SchemaMismatch`](crate::ErrorKind::SchemaMismatch) naming the column:
//! - [`to_wit`]: every declared input must be present with a compatible type and no nulls
//!   where the field is not nullable. Compatible means the same type or a lossless widening
//!   (`int32` data for an `int64` input, `float32` for `float64`), any string or binary
//!   encoding (large, view, dictionary), and timestamps of any unit or zone (converted to
//!   microseconds UTC). Extra columns are ignored.
//! - [`from_wit`]: exactly the declared outputs, each of its declared type, with the input's
//!   row count, well-formed offsets, valid UTF-8, and no nulls where not nullable. Every NaN
//!   in a float output is replaced by the canonical quiet NaN, so outputs are bit-identical
//!   across machines (see [`canonical`]).
//!
//! Batches are built and checked in the 0.1.0 contract's types; a component of the 0.2.0
//! contract (every buffer as bytes) gets its input encoded and its output decoded by
//! [`bytes`] around the call, so both versions pass the same checks.

pub(crate) mod bytes;
mod canonical;
mod from_wit;
mod to_wit;

pub(crate) use from_wit::from_wit;
pub use to_wit::accepts;
pub(crate) use to_wit::to_wit;

use crate::error::{Error, ErrorKind};

/// A schema-mismatch error about one column.
fn column_error(column: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::SchemaMismatch, message).with_context("column", column)
}

#[cfg(test)]
mod tests;
