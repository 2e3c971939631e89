//! A push body's `df` (`{column: [values...]}`, Feast's shape) as a record batch of the
//! source table's schema, or an error that names the column, the row and the expected type.
//!
//! Every column of the source must be given unless it is nullable (then it is null), no
//! column may be given that the source does not have (usually a typo), and every column has
//! the same number of values. Timestamps are RFC 3339 strings or integers (µs since the
//! epoch); dates are `YYYY-MM-DD`.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder, Int32Builder,
    Int64Builder, LargeStringBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, SchemaRef, TimeUnit};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::serving::json_kind;

/// The rows of `df` as a batch of `schema`; `source` names the table in errors.
pub(crate) fn to_batch(
    df: &Map<String, Value>,
    schema: &SchemaRef,
    source: &str,
) -> Result<RecordBatch> {
    for name in df.keys() {
        if schema.field_with_name(name).is_err() {
            let known: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(invalid(
                name,
                format!(
                    "column `{name}` is not a column of source table {source} (columns: [{}])",
                    known.join(", ")
                ),
            ));
        }
    }
    let mut rows: Option<(usize, &str)> = None;
    for (name, values) in df {
        let Value::Array(values) = values else {
            return Err(invalid(
                name,
                format!(
                    "column `{name}` is {}, expected an array of values",
                    json_kind(values)
                ),
            ));
        };
        match rows {
            None => rows = Some((values.len(), name)),
            Some((n, first)) if n != values.len() => {
                return Err(invalid(
                    name,
                    format!(
                        "column `{name}` has {} values but column `{first}` has {n}; every \
                         column needs one value per row",
                        values.len()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let Some((rows, _)) = rows else {
        return Err(invalid(
            "df",
            "`df` has no columns; expected {\"column\": [values...], ...}".to_owned(),
        ));
    };
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = match df.get(field.name()) {
            Some(Value::Array(values)) => column(field, values)?,
            _ if field.is_nullable() => arrow_array::new_null_array(field.data_type(), rows),
            _ => {
                return Err(invalid(
                    field.name(),
                    format!(
                        "column `{}` ({}) is missing; source table {source} requires it",
                        field.name(),
                        type_name(field.data_type())
                    ),
                ));
            }
        };
        columns.push(column);
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("building the pushed rows: {e}"),
        )
    })
}

fn invalid(column: &str, message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message).with_context("column", column)
}

/// The name users read for a column type.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Utf8 | DataType::LargeUtf8 => "string".into(),
        DataType::Binary => "binary (base64 string)".into(),
        DataType::Date32 => "date (YYYY-MM-DD)".into(),
        DataType::Timestamp(..) => "timestamp (RFC 3339 string or µs since the epoch)".into(),
        other => other.to_string(),
    }
}

fn column(field: &Field, values: &[Value]) -> Result<ArrayRef> {
    let name = field.name();
    let bad = |row: usize, value: &Value| {
        let shown = match value.to_string() {
            s if s.len() > 40 => format!("{}...", &s[..s.floor_char_boundary(40)]),
            s => s,
        };
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "column `{name}` row {row} is {} ({shown}), expected {}",
                json_kind(value),
                type_name(field.data_type())
            ),
        )
        .with_context("column", name)
        .with_context("row", row)
    };
    let null = |row: usize| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "column `{name}` row {row} is null, but the column is required ({})",
                type_name(field.data_type())
            ),
        )
        .with_context("column", name)
        .with_context("row", row)
    };
    // Builders sized to the rows: a default builder reserves 1024 values, which a push of a
    // few rows (a stream message is one) pays for in freshly zeroed pages.
    macro_rules! build {
        ($builder:expr, |$v:ident| $convert:expr) => {{
            let mut builder = $builder;
            for (row, value) in values.iter().enumerate() {
                match value {
                    Value::Null if field.is_nullable() => builder.append_null(),
                    Value::Null => return Err(null(row)),
                    $v => match $convert {
                        Some(x) => builder.append_value(x),
                        None => return Err(bad(row, $v)),
                    },
                }
            }
            Arc::new(builder.finish()) as ArrayRef
        }};
    }
    Ok(match field.data_type() {
        DataType::Boolean => build!(BooleanBuilder::with_capacity(values.len()), |v| v.as_bool()),
        DataType::Int32 => build!(Int32Builder::with_capacity(values.len()), |v| v
            .as_i64()
            .and_then(|x| i32::try_from(x).ok())),
        DataType::Int64 => build!(Int64Builder::with_capacity(values.len()), |v| v.as_i64()),
        DataType::Float32 => build!(Float32Builder::with_capacity(values.len()), |v| number(v)
            .map(|x| x as f32)),
        DataType::Float64 => build!(Float64Builder::with_capacity(values.len()), |v| number(v)),
        DataType::Utf8 => build!(
            StringBuilder::with_capacity(values.len(), 16 * values.len()),
            |v| v.as_str()
        ),
        DataType::LargeUtf8 => build!(
            LargeStringBuilder::with_capacity(values.len(), 16 * values.len()),
            |v| v.as_str()
        ),
        DataType::Binary => build!(
            BinaryBuilder::with_capacity(values.len(), 16 * values.len()),
            |v| v.as_str().and_then(|s| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(s).ok()
            })
        ),
        DataType::Date32 => build!(Date32Builder::with_capacity(values.len()), |v| v
            .as_str()
            .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|d| (d - chrono::NaiveDate::default()).num_days() as i32)),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let array = build!(
                TimestampMicrosecondBuilder::with_capacity(values.len()),
                |v| match v {
                    Value::String(s) => crate::micros::parse_time(name, s).ok(),
                    other => other.as_i64(),
                }
            );
            match tz {
                Some(tz) => Arc::new(
                    array
                        .as_any()
                        .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                        .expect("a timestamp array")
                        .clone()
                        .with_timezone(tz.clone()),
                ),
                None => array,
            }
        }
        other => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("column `{name}` has type {other}, which a push cannot carry yet"),
            )
            .with_context("column", name));
        }
    })
}

/// A JSON number as f64, and the strings JSON cannot spell as numbers (`"NaN"`, `"Infinity"`,
/// `"-Infinity"`), as pandas' JSON writers send them.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::Schema;
    use serde_json::json;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Int64, false),
            Field::new(
                "event_ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                false,
            ),
            Field::new("amount", DataType::Float64, true),
        ]))
    }

    fn parse(df: &Value) -> Result<RecordBatch> {
        to_batch(df.as_object().unwrap(), &schema(), "raw.t")
    }

    #[test]
    fn rows_of_the_source_schema_with_nullable_columns_left_out() {
        let batch =
            parse(&json!({"user_id": [1, 2], "event_ts": ["2024-01-01T00:00:00Z", 5]})).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.column(2).null_count(), 2);
        assert_eq!(batch.schema(), schema());
    }

    #[test]
    fn bad_rows_name_the_column_the_row_and_the_type() {
        let cases = [
            (
                json!({"user_id": [1], "event_ts": [1], "amout": [1.0]}),
                "amout",
                "not a column of source table raw.t",
            ),
            (
                json!({"user_id": [1, 2], "event_ts": [1]}),
                "user_id",
                "has 2 values but column `event_ts` has 1",
            ),
            (
                json!({"user_id": ["x"], "event_ts": [1]}),
                "user_id",
                "row 0 is a string (\"x\"), expected int64",
            ),
            (
                json!({"user_id": [1], "event_ts": ["soon"]}),
                "event_ts",
                "row 0 is a string (\"soon\"), expected timestamp",
            ),
            (
                json!({"user_id": [null], "event_ts": [1]}),
                "user_id",
                "row 0 is null, but the column is required",
            ),
            (
                json!({"event_ts": [1]}),
                "user_id",
                "`user_id` (int64) is missing",
            ),
            (
                json!({"user_id": 1, "event_ts": [1]}),
                "user_id",
                "expected an array",
            ),
        ];
        for (df, column, message) in cases {
            let e = parse(&df).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{df}");
            assert!(e.message().contains(message), "{df}: {}", e.message());
            assert!(
                e.context()
                    .iter()
                    .any(|(k, v)| *k == "column" && v == column),
                "{df}: {:?}",
                e.context()
            );
        }
    }
}
