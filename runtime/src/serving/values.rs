//! Feature values between JSON, the online store's [`FeatureValue`] and Arrow columns.
//!
//! The JSON forms follow the protobuf JSON mapping that Feast clients already speak, chosen so
//! that a value survives the trip **bit for bit**:
//!
//! | type | JSON |
//! |---|---|
//! | boolean | `true` / `false` |
//! | int32, int64 | a number without fraction (int64 beyond 2^53 loses precision in JavaScript clients, as with Feast) |
//! | float32, float64 | the shortest number that parses back to the same bits; `"NaN"`, `"Infinity"`, `"-Infinity"` for the non-finite |
//! | utf8 | a string |
//! | binary | a base64 string (standard alphabet, padded) |
//! | timestamp | an RFC 3339 string in UTC (`2026-11-01T12:00:00.25Z`); on input also microseconds since the epoch |
//! | float32_vector(n) | an array of `n` numbers |
//!
//! Floats are printed by the shortest round-trip algorithm and parsed with serde_json's
//! `float_roundtrip`, so `parse(print(x))` has the bits of `x`. A float32 given in JSON is read
//! as the nearest float64 and then rounded to float32; for the shortest representation of a
//! float32 (what every serializer prints) that is the float32 it was printed from.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, FixedSizeListBuilder, Float32Builder, Float64Builder,
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, SecondsFormat};
use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;

use crate::online::{FeatureValue, KeyValue};
use crate::registry::KeyType;
use crate::signature::{DataType, UTC};

/// Reads a JSON value as a value of type `data_type`. `Ok(FeatureValue::Null)` for JSON
/// `null`; `Err` carries what was expected, for the caller to put into an error that names the
/// field and row.
pub(crate) fn from_json(value: &Value, data_type: DataType) -> Result<FeatureValue, String> {
    let expected = || format!("expected {}", describe(data_type));
    if value.is_null() {
        return Ok(FeatureValue::Null);
    }
    Ok(match data_type {
        DataType::Boolean => FeatureValue::Boolean(value.as_bool().ok_or_else(expected)?),
        DataType::Int32 => FeatureValue::Int32(
            value
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(expected)?,
        ),
        DataType::Int64 => FeatureValue::Int64(value.as_i64().ok_or_else(expected)?),
        DataType::Float64 => FeatureValue::Float64(float(value).ok_or_else(expected)?),
        DataType::Float32 => FeatureValue::Float32(float(value).ok_or_else(expected)? as f32),
        DataType::Utf8 => FeatureValue::Utf8(value.as_str().ok_or_else(expected)?.to_owned()),
        DataType::Binary => FeatureValue::Binary(
            value
                .as_str()
                .and_then(|s| BASE64.decode(s).ok())
                .ok_or_else(expected)?,
        ),
        DataType::Timestamp => FeatureValue::Timestamp(match value {
            Value::String(s) => parse_timestamp(s).ok_or_else(expected)?,
            _ => value.as_i64().ok_or_else(expected)?,
        }),
        DataType::Float32Vector(dimension) => {
            let items = value.as_array().ok_or_else(expected)?;
            if items.len() != dimension as usize {
                return Err(format!("{}, got {} numbers", expected(), items.len()));
            }
            FeatureValue::Float32Vector(
                items
                    .iter()
                    .map(|v| float(v).map(|f| f as f32))
                    .collect::<Option<Vec<f32>>>()
                    .ok_or_else(expected)?,
            )
        }
    })
}

/// Reads a join-key value; `Err` says what was expected (`null` is never a key).
pub(crate) fn key_from_json(value: &Value, key_type: KeyType) -> Result<KeyValue, String> {
    match key_type {
        KeyType::Int64 => value
            .as_i64()
            .map(KeyValue::Int64)
            .ok_or_else(|| "expected an integer".to_owned()),
        KeyType::Int32 => value
            .as_i64()
            .filter(|v| i32::try_from(*v).is_ok())
            .map(KeyValue::Int64)
            .ok_or_else(|| "expected a 32-bit integer".to_owned()),
        KeyType::Utf8 => value
            .as_str()
            .map(|s| KeyValue::Utf8(s.to_owned()))
            .ok_or_else(|| "expected a string".to_owned()),
    }
}

/// A JSON number, or one of the protobuf names of the non-finite floats.
fn float(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// How a value of `data_type` is written in JSON, for error messages.
pub(crate) fn describe(data_type: DataType) -> String {
    match data_type {
        DataType::Boolean => "a boolean (true or false)".into(),
        DataType::Int32 => "a 32-bit integer".into(),
        DataType::Int64 => "an integer".into(),
        DataType::Float32 | DataType::Float64 => {
            "a number (or \"NaN\", \"Infinity\", \"-Infinity\")".into()
        }
        DataType::Utf8 => "a string".into(),
        DataType::Binary => "a base64 string".into(),
        DataType::Timestamp => {
            "an RFC 3339 timestamp string (2026-11-01T12:00:00Z) or microseconds since the epoch"
                .into()
        }
        DataType::Float32Vector(d) => format!("an array of {d} numbers"),
    }
}

/// Parses an RFC 3339 timestamp into microseconds since the epoch.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// Formats microseconds since the epoch as RFC 3339 in UTC (`Z`), with as many fractional
/// digits as needed.
pub fn format_timestamp(micros: i64) -> String {
    DateTime::from_timestamp_micros(micros).map_or_else(
        || micros.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    )
}

/// Serializes a [`FeatureValue`] in the JSON form of the module table.
#[derive(Debug, Clone, Copy)]
pub struct JsonValue<'a>(pub &'a FeatureValue);

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            FeatureValue::Null => s.serialize_none(),
            FeatureValue::Boolean(v) => s.serialize_bool(*v),
            FeatureValue::Int32(v) => s.serialize_i32(*v),
            FeatureValue::Int64(v) => s.serialize_i64(*v),
            FeatureValue::Float32(v) => serialize_f32(*v, s),
            FeatureValue::Float64(v) => serialize_f64(*v, s),
            FeatureValue::Utf8(v) => s.serialize_str(v),
            FeatureValue::Binary(v) => s.serialize_str(&BASE64.encode(v)),
            FeatureValue::Timestamp(v) => s.serialize_str(&format_timestamp(*v)),
            FeatureValue::Float32Vector(v) => {
                let mut seq = s.serialize_seq(Some(v.len()))?;
                for x in v {
                    seq.serialize_element(&F32(*x))?;
                }
                seq.end()
            }
        }
    }
}

struct F32(f32);

impl Serialize for F32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_f32(self.0, s)
    }
}

fn serialize_f32<S: Serializer>(v: f32, s: S) -> Result<S::Ok, S::Error> {
    match non_finite(f64::from(v)) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_f32(v),
    }
}

fn serialize_f64<S: Serializer>(v: f64, s: S) -> Result<S::Ok, S::Error> {
    match non_finite(v) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_f64(v),
    }
}

fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("Infinity")
    } else if v == f64::NEG_INFINITY {
        Some("-Infinity")
    } else {
        None
    }
}

/// An Arrow column of `data_type` holding `values` (which the caller has type-checked: a value
/// of another type becomes null).
pub(crate) fn to_arrow<'a>(
    data_type: DataType,
    values: impl ExactSizeIterator<Item = &'a FeatureValue>,
) -> ArrayRef {
    use FeatureValue as V;
    macro_rules! build {
        ($builder:expr, $variant:ident) => {{
            let mut b = $builder;
            for v in values {
                match v {
                    V::$variant(x) => b.append_value(x.clone()),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }};
    }
    let n = values.len();
    match data_type {
        DataType::Boolean => build!(BooleanBuilder::with_capacity(n), Boolean),
        DataType::Int32 => build!(Int32Builder::with_capacity(n), Int32),
        DataType::Int64 => build!(Int64Builder::with_capacity(n), Int64),
        DataType::Float32 => build!(Float32Builder::with_capacity(n), Float32),
        DataType::Float64 => build!(Float64Builder::with_capacity(n), Float64),
        DataType::Utf8 => build!(StringBuilder::with_capacity(n, 16 * n), Utf8),
        DataType::Binary => build!(BinaryBuilder::with_capacity(n, 16 * n), Binary),
        DataType::Timestamp => {
            let b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone(UTC);
            build!(b, Timestamp)
        }
        DataType::Float32Vector(dimension) => {
            let mut b = FixedSizeListBuilder::with_capacity(
                Float32Builder::with_capacity(n * dimension as usize),
                dimension as i32,
                n,
            )
            .with_field(Arc::new(arrow_schema::Field::new(
                "item",
                arrow_schema::DataType::Float32,
                false,
            )));
            for v in values {
                match v {
                    V::Float32Vector(x) if x.len() == dimension as usize => {
                        b.values().append_slice(x);
                        b.append(true);
                    }
                    _ => {
                        b.values().append_nulls(dimension as usize);
                        b.append(false);
                    }
                }
            }
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: &FeatureValue, data_type: DataType) -> FeatureValue {
        let text = serde_json::to_string(&JsonValue(value)).unwrap();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        from_json(&parsed, data_type).unwrap()
    }

    #[test]
    fn floats_survive_json_bit_for_bit() {
        let doubles = [
            0.1,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            -0.0,
            123_456_789.123_456_78,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for x in doubles {
            let back = round_trip(&FeatureValue::Float64(x), DataType::Float64);
            let FeatureValue::Float64(y) = back else {
                panic!("{back:?}")
            };
            // NaN is written as "NaN": any payload comes back as the canonical NaN, which
            // is what the engine stores anyway (outputs are NaN-canonicalized).
            match x.is_nan() {
                true => assert!(y.is_nan()),
                false => assert_eq!(x.to_bits(), y.to_bits(), "{x}"),
            }
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = f64::from_bits(seed);
            if !x.is_finite() {
                continue;
            }
            let FeatureValue::Float64(y) = round_trip(&FeatureValue::Float64(x), DataType::Float64)
            else {
                unreachable!()
            };
            assert_eq!(x.to_bits(), y.to_bits(), "{x:e}");
            let x32 = f32::from_bits(seed as u32);
            if x32.is_finite() {
                let FeatureValue::Float32(y32) =
                    round_trip(&FeatureValue::Float32(x32), DataType::Float32)
                else {
                    unreachable!()
                };
                assert_eq!(x32.to_bits(), y32.to_bits(), "{x32:e}");
            }
        }
    }

    #[test]
    fn every_type_round_trips() {
        let cases = [
            (FeatureValue::Boolean(true), DataType::Boolean),
            (FeatureValue::Int32(-7), DataType::Int32),
            (FeatureValue::Int64(i64::MIN), DataType::Int64),
            (
                FeatureValue::Utf8("žluťoučký \"kůň\"".into()),
                DataType::Utf8,
            ),
            (FeatureValue::Binary(vec![0, 255, 10]), DataType::Binary),
            (
                FeatureValue::Timestamp(1_793_534_400_250_000),
                DataType::Timestamp,
            ),
            (FeatureValue::Timestamp(-1), DataType::Timestamp),
            (
                FeatureValue::Float32Vector(vec![0.5, -1.25, f32::NAN]),
                DataType::Float32Vector(3),
            ),
            (FeatureValue::Null, DataType::Int64),
        ];
        for (value, data_type) in cases {
            assert_eq!(round_trip(&value, data_type), value, "{value:?}");
        }
        assert_eq!(
            serde_json::to_string(&JsonValue(&FeatureValue::Timestamp(1_793_534_400_250_000)))
                .unwrap(),
            "\"2026-11-01T12:00:00.250Z\""
        );
    }

    #[test]
    fn wrong_types_say_what_was_expected() {
        let e = from_json(&serde_json::json!("12"), DataType::Float64).unwrap_err();
        assert!(e.contains("expected a number"), "{e}");
        assert!(from_json(&serde_json::json!(1.5), DataType::Int64).is_err());
        assert!(from_json(&serde_json::json!(1_i64 << 40), DataType::Int32).is_err());
        assert!(from_json(&serde_json::json!("not base64!"), DataType::Binary).is_err());
        assert!(from_json(&serde_json::json!("yesterday"), DataType::Timestamp).is_err());
        let e = from_json(&serde_json::json!([1.0]), DataType::Float32Vector(2)).unwrap_err();
        assert!(e.contains("got 1 numbers"), "{e}");
        assert_eq!(
            from_json(&serde_json::json!(3), DataType::Float64),
            Ok(FeatureValue::Float64(3.0)),
            "an integer is a valid float"
        );
        assert!(key_from_json(&serde_json::json!("42"), KeyType::Int64).is_err());
        assert!(key_from_json(&serde_json::json!(42), KeyType::Utf8).is_err());
        assert!(key_from_json(&serde_json::json!(1_i64 << 40), KeyType::Int32).is_err());
    }

    #[test]
    fn arrow_columns_hold_the_values_and_nulls() {
        let values = [
            FeatureValue::Float64(1.5),
            FeatureValue::Null,
            FeatureValue::Float64(-0.0),
        ];
        let column = to_arrow(DataType::Float64, values.iter());
        for (i, v) in values.iter().enumerate() {
            assert_eq!(
                crate::materialize::feature_value(&column, i).unwrap(),
                *v,
                "row {i}"
            );
        }
        let vectors = [
            FeatureValue::Float32Vector(vec![1.0, 2.0]),
            FeatureValue::Null,
        ];
        let column = to_arrow(DataType::Float32Vector(2), vectors.iter());
        assert_eq!(column.data_type(), &DataType::Float32Vector(2).to_arrow());
        assert_eq!(
            crate::materialize::feature_value(&column, 0).unwrap(),
            vectors[0]
        );
        assert!(
            crate::materialize::feature_value(&column, 1)
                .unwrap()
                .is_null()
        );
    }
}
