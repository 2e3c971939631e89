//! The batch-level error a transform returns.

use std::fmt;

use crate::raw;

/// A batch-level failure reported by the transform itself: `err(transform-error)` in the WIT.
///
/// Prefer a null in the affected row for a value that cannot be computed; return this error for
/// an input the transform cannot process at all. The host fails the whole call and logs the
/// message with the transform's name and digest.
///
/// The fields mirror the WIT record, so an error can be written as a struct literal:
///
/// ```
/// use skewless_guest::TransformError;
///
/// let error = TransformError {
///     message: "negative quantity".into(),
///     column: Some("quantity".into()),
///     row: Some(3),
/// };
/// assert_eq!(error, TransformError::new("negative quantity").with_column("quantity").with_row(3));
/// assert_eq!(error.to_string(), "column `quantity`, row 3: negative quantity");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransformError {
    /// What went wrong, for the person reading the log.
    pub message: String,
    /// The column at fault, when there is one.
    pub column: Option<String>,
    /// The row at fault (0-based, within the batch), when there is one.
    pub row: Option<u32>,
}

impl TransformError {
    /// An error with a message and neither column nor row.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            column: None,
            row: None,
        }
    }

    /// Names the column at fault.
    #[must_use]
    pub fn with_column(mut self, column: impl Into<String>) -> Self {
        self.column = Some(column.into());
        self
    }

    /// Names the row at fault (0-based, within the batch). Rows past `u32::MAX` cannot occur:
    /// the WIT batch counts rows in a `u32`.
    #[must_use]
    pub fn with_row(mut self, row: usize) -> Self {
        self.row = u32::try_from(row).ok();
        self
    }

    /// Sets the row only when the error does not name one yet.
    pub(crate) fn at_row(mut self, row: usize) -> Self {
        if self.row.is_none() {
            self.row = u32::try_from(row).ok();
        }
        self
    }

    pub(crate) fn into_raw(self) -> raw::TransformError {
        raw::TransformError {
            message: self.message,
            column: self.column,
            row: self.row,
        }
    }
}

impl fmt::Display for TransformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.column, self.row) {
            (Some(column), Some(row)) => write!(f, "column `{column}`, row {row}: ")?,
            (Some(column), None) => write!(f, "column `{column}`: ")?,
            (None, Some(row)) => write!(f, "row {row}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransformError {}
