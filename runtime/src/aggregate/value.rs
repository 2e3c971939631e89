//! Input values as aggregations see them: one canonical byte form, and one total order.
//!
//! The canonical bytes of a value are a type tag and the value's bits, with every NaN replaced
//! by the one canonical quiet NaN (`f64::NAN`, `f32::NAN`): distinct counting, the HyperLogLog
//! hash and the final tie-break of `last`/`last_n` all read these bytes, so two NaNs with
//! different payloads are the same value, while `-0.0` and `+0.0` are different values (their
//! bits differ, and the stored-value rule of the online store compares bits too).
//!
//! The total order (for `min` and `max`) is the natural one per type; for floats it is IEEE
//! 754 `totalOrder` on the canonicalized value: `-inf < ... < -0.0 < +0.0 < ... < +inf < NaN`.

use std::cmp::Ordering;

use crate::online::FeatureValue;

use super::exact_sum::bad_state;
use crate::error::Result;

const NULL: u8 = 0;
const BOOLEAN: u8 = 1;
const INT32: u8 = 2;
const INT64: u8 = 3;
const FLOAT32: u8 = 4;
const FLOAT64: u8 = 5;
const UTF8: u8 = 6;
const BINARY: u8 = 7;
const TIMESTAMP: u8 = 8;
const FLOAT32_VECTOR: u8 = 9;
const LIST: u8 = 10;

fn canonical_f32(x: f32) -> f32 {
    if x.is_nan() { f32::NAN } else { x }
}

fn canonical_f64(x: f64) -> f64 {
    if x.is_nan() { f64::NAN } else { x }
}

/// The value with every NaN canonical.
pub(crate) fn canonical(value: &FeatureValue) -> FeatureValue {
    match value {
        FeatureValue::Float32(x) => FeatureValue::Float32(canonical_f32(*x)),
        FeatureValue::Float64(x) => FeatureValue::Float64(canonical_f64(*x)),
        FeatureValue::Float32Vector(v) => {
            FeatureValue::Float32Vector(v.iter().map(|x| canonical_f32(*x)).collect())
        }
        FeatureValue::List(items) => FeatureValue::List(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The canonical bytes of a value (see the module docs).
pub(crate) fn canonical_bytes(value: &FeatureValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    match value {
        FeatureValue::Null => out.push(NULL),
        FeatureValue::Boolean(b) => out.extend([BOOLEAN, u8::from(*b)]),
        FeatureValue::Int32(x) => {
            out.push(INT32);
            out.extend(x.to_le_bytes());
        }
        FeatureValue::Int64(x) => {
            out.push(INT64);
            out.extend(x.to_le_bytes());
        }
        FeatureValue::Float32(x) => {
            out.push(FLOAT32);
            out.extend(canonical_f32(*x).to_bits().to_le_bytes());
        }
        FeatureValue::Float64(x) => {
            out.push(FLOAT64);
            out.extend(canonical_f64(*x).to_bits().to_le_bytes());
        }
        FeatureValue::Utf8(s) => {
            out.push(UTF8);
            out.extend(s.as_bytes());
        }
        FeatureValue::Binary(b) => {
            out.push(BINARY);
            out.extend(b);
        }
        FeatureValue::Timestamp(x) => {
            out.push(TIMESTAMP);
            out.extend(x.to_le_bytes());
        }
        FeatureValue::Float32Vector(v) => {
            out.push(FLOAT32_VECTOR);
            for x in v {
                out.extend(canonical_f32(*x).to_bits().to_le_bytes());
            }
        }
        FeatureValue::List(items) => {
            out.push(LIST);
            for item in items {
                super::encoding::put_bytes(&mut out, &canonical_bytes(item));
            }
        }
    }
    out
}

/// The value whose canonical bytes are `bytes`; an error for anything
/// [`canonical_bytes`] cannot have written.
pub(crate) fn from_canonical_bytes(bytes: &[u8]) -> Result<FeatureValue> {
    let bad = || bad_state("a value's bytes do not spell a value");
    let (&tag, rest) = bytes.split_first().ok_or_else(bad)?;
    let fixed = |n: usize| -> Result<&[u8]> {
        if rest.len() == n {
            Ok(rest)
        } else {
            Err(bad())
        }
    };
    let value = match tag {
        NULL => {
            fixed(0)?;
            FeatureValue::Null
        }
        BOOLEAN => match fixed(1)?[0] {
            0 => FeatureValue::Boolean(false),
            1 => FeatureValue::Boolean(true),
            _ => return Err(bad()),
        },
        INT32 => FeatureValue::Int32(i32::from_le_bytes(fixed(4)?.try_into().map_err(|_| bad())?)),
        INT64 => FeatureValue::Int64(i64::from_le_bytes(fixed(8)?.try_into().map_err(|_| bad())?)),
        FLOAT32 => FeatureValue::Float32(f32::from_bits(u32::from_le_bytes(
            fixed(4)?.try_into().map_err(|_| bad())?,
        ))),
        FLOAT64 => FeatureValue::Float64(f64::from_bits(u64::from_le_bytes(
            fixed(8)?.try_into().map_err(|_| bad())?,
        ))),
        UTF8 => FeatureValue::Utf8(String::from_utf8(rest.to_vec()).map_err(|_| bad())?),
        BINARY => FeatureValue::Binary(rest.to_vec()),
        TIMESTAMP => {
            FeatureValue::Timestamp(i64::from_le_bytes(fixed(8)?.try_into().map_err(|_| bad())?))
        }
        FLOAT32_VECTOR if rest.len() % 4 == 0 => FeatureValue::Float32Vector(
            rest.chunks_exact(4)
                .map(|c| f32::from_bits(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        LIST => {
            let mut r = super::encoding::Reader(rest);
            let mut items = Vec::new();
            while !r.0.is_empty() {
                items.push(from_canonical_bytes(r.bytes()?)?);
            }
            FeatureValue::List(items)
        }
        _ => return Err(bad()),
    };
    // Non-canonical NaNs are another spelling of the canonical one: refuse them.
    if canonical_bytes(&value) != bytes {
        return Err(bad());
    }
    Ok(value)
}

/// The total order of two values of the same type (see the module docs); values of different
/// types order by their type tag, which a well-typed column never shows.
pub(crate) fn total_cmp(a: &FeatureValue, b: &FeatureValue) -> Ordering {
    use FeatureValue as V;
    match (a, b) {
        (V::Boolean(x), V::Boolean(y)) => x.cmp(y),
        (V::Int32(x), V::Int32(y)) => x.cmp(y),
        (V::Int64(x), V::Int64(y)) => x.cmp(y),
        (V::Timestamp(x), V::Timestamp(y)) => x.cmp(y),
        (V::Float32(x), V::Float32(y)) => canonical_f32(*x).total_cmp(&canonical_f32(*y)),
        (V::Float64(x), V::Float64(y)) => canonical_f64(*x).total_cmp(&canonical_f64(*y)),
        (V::Utf8(x), V::Utf8(y)) => x.as_bytes().cmp(y.as_bytes()),
        (V::Binary(x), V::Binary(y)) => x.cmp(y),
        _ => canonical_bytes(a).cmp(&canonical_bytes(b)),
    }
}

/// The name of a value's type, for errors.
pub(crate) fn type_name(value: &FeatureValue) -> &'static str {
    match value {
        FeatureValue::Null => "null",
        FeatureValue::Boolean(_) => "boolean",
        FeatureValue::Int32(_) => "int32",
        FeatureValue::Int64(_) => "int64",
        FeatureValue::Float32(_) => "float32",
        FeatureValue::Float64(_) => "float64",
        FeatureValue::Utf8(_) => "utf8",
        FeatureValue::Binary(_) => "binary",
        FeatureValue::Timestamp(_) => "timestamp",
        FeatureValue::Float32Vector(_) => "float32_vector",
        FeatureValue::List(_) => "list",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn nans_are_one_value_and_signed_zeros_two() {
        let quiet = FeatureValue::Float64(f64::NAN);
        let payload = FeatureValue::Float64(f64::from_bits(0x7ff0_0000_0000_0001));
        let negative = FeatureValue::Float64(-f64::NAN);
        assert_eq!(canonical_bytes(&quiet), canonical_bytes(&payload));
        assert_eq!(canonical_bytes(&quiet), canonical_bytes(&negative));
        assert_ne!(
            canonical_bytes(&FeatureValue::Float64(0.0)),
            canonical_bytes(&FeatureValue::Float64(-0.0))
        );
        assert!(
            from_canonical_bytes(&{
                let mut b = vec![FLOAT64];
                b.extend(0x7ff0_0000_0000_0001u64.to_le_bytes());
                b
            })
            .is_err()
        );
        assert_eq!(
            total_cmp(&FeatureValue::Float64(-0.0), &FeatureValue::Float64(0.0)),
            Ordering::Less
        );
        assert_eq!(
            total_cmp(&negative, &FeatureValue::Float64(f64::INFINITY)),
            Ordering::Greater
        );
    }

    proptest! {
        #[test]
        fn canonical_bytes_round_trip(bits in any::<u64>(), i in any::<i64>(), s in ".*", b in any::<bool>()) {
            for v in [
                FeatureValue::Float64(f64::from_bits(bits)),
                FeatureValue::Float32(f32::from_bits(bits as u32)),
                FeatureValue::Int64(i),
                FeatureValue::Int32(i as i32),
                FeatureValue::Timestamp(i),
                FeatureValue::Utf8(s.clone()),
                FeatureValue::Binary(s.clone().into_bytes()),
                FeatureValue::Boolean(b),
                FeatureValue::Float32Vector(vec![f32::from_bits(bits as u32), 1.5]),
            ] {
                let bytes = canonical_bytes(&v);
                prop_assert_eq!(from_canonical_bytes(&bytes).unwrap(), canonical(&v));
            }
        }
    }
}
