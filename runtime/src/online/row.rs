//! Stored rows, their one byte encoding, and the ordering rule that decides which row wins.
//!
//! A [`StoredRow`] is the latest materialized row of one entity in one view. Both backends
//! store it as the same bytes ([`encode_row`]):
//!
//! ```text
//! [ 16 bytes: version ][ 1 byte: format = 1 ][ postcard(digest, values) ]
//! ```
//!
//! The *version* is `(event_ts, created_ts)`, each as 8 big-endian bytes with the sign bit
//! flipped, so that comparing the 16 bytes as unsigned bytes (memcmp) orders rows exactly as
//! comparing the tuples of `i64`. That lets the compare-and-set read only the prefix, never
//! decode the values, and lets the Redis backend run the same comparison in a Lua script,
//! server-side, where Rust cannot run. [`replaces`] is the rule; the Redis script mirrors it
//! byte for byte and a property test here checks that the byte order is the tuple order.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// One feature value. Floats compare and round-trip by their bits (NaN payloads and the sign
/// of zero included): this is a stored value, and "equal" means "the same stored bits".
///
/// The stored encoding names variants by position: add new variants at the end, never reorder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FeatureValue {
    /// No value.
    Null,
    /// A boolean.
    Boolean(bool),
    /// A 32-bit integer.
    Int32(i32),
    /// A 64-bit integer.
    Int64(i64),
    /// A 32-bit float, stored bit-exactly.
    Float32(f32),
    /// A 64-bit float, stored bit-exactly.
    Float64(f64),
    /// A string.
    Utf8(String),
    /// Bytes.
    Binary(Vec<u8>),
    /// Microseconds since the Unix epoch, UTC.
    Timestamp(i64),
    /// A float32 vector (an embedding), stored bit-exactly.
    Float32Vector(Vec<f32>),
    /// A list of values, latest first (what `last_n` aggregations give); never stored as a
    /// batch view's value, only served.
    List(Vec<FeatureValue>),
}

impl FeatureValue {
    /// Whether this is [`FeatureValue::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, FeatureValue::Null)
    }
}

impl PartialEq for FeatureValue {
    fn eq(&self, other: &Self) -> bool {
        use FeatureValue as V;
        match (self, other) {
            (V::Null, V::Null) => true,
            (V::Boolean(a), V::Boolean(b)) => a == b,
            (V::Int32(a), V::Int32(b)) => a == b,
            (V::Int64(a), V::Int64(b)) => a == b,
            (V::Float32(a), V::Float32(b)) => a.to_bits() == b.to_bits(),
            (V::Float64(a), V::Float64(b)) => a.to_bits() == b.to_bits(),
            (V::Utf8(a), V::Utf8(b)) => a == b,
            (V::Binary(a), V::Binary(b)) => a == b,
            (V::Timestamp(a), V::Timestamp(b)) => a == b,
            (V::Float32Vector(a), V::Float32Vector(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (V::List(a), V::List(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for FeatureValue {}

/// The latest row of one entity in one view, as materialized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRow {
    /// When the features were true: microseconds since the epoch, UTC.
    pub event_ts: i64,
    /// When the row was materialized: microseconds since the epoch, UTC. Breaks ties between
    /// rows with the same `event_ts` (a recomputation wins over the original).
    pub created_ts: i64,
    /// The digest of the component that computed the values (`sha256:...`).
    pub digest: String,
    /// The feature values, in the view's feature order.
    pub values: Vec<FeatureValue>,
}

impl StoredRow {
    /// The row's version, `(event_ts, created_ts)`, the key of the ordering rule.
    pub fn version(&self) -> (i64, i64) {
        (self.event_ts, self.created_ts)
    }
}

/// **The ordering rule**, used by every backend: a new row replaces the stored one only if its
/// `(event_ts, created_ts)` is strictly greater, lexicographically. Equal versions keep the
/// stored row, so re-running the same materialization window changes nothing and a late or
/// concurrent writer can never regress a feature.
pub fn replaces(new: (i64, i64), stored: (i64, i64)) -> bool {
    new.cmp(&stored) == Ordering::Greater
}

/// [`replaces`] on encoded rows (their first [`VERSION_LEN`] bytes; `new` comes from
/// [`encode_row`]). A stored value too short to hold a version is not a row: anything replaces
/// it. The Redis script implements exactly this comparison.
pub(crate) fn replaces_encoded(new: &[u8], stored: &[u8]) -> bool {
    match stored.get(..VERSION_LEN) {
        Some(stored) => &new[..VERSION_LEN] > stored,
        None => true,
    }
}

/// The length of the version prefix of an encoded row.
pub(crate) const VERSION_LEN: usize = 16;
const FORMAT_V1: u8 = 1;
const SIGN: u64 = 1 << 63;

/// The order-preserving encoding of a version.
pub(crate) fn encode_version((event_ts, created_ts): (i64, i64)) -> [u8; VERSION_LEN] {
    let mut out = [0; VERSION_LEN];
    out[..8].copy_from_slice(&((event_ts as u64) ^ SIGN).to_be_bytes());
    out[8..].copy_from_slice(&((created_ts as u64) ^ SIGN).to_be_bytes());
    out
}

fn decode_version(bytes: &[u8; VERSION_LEN]) -> (i64, i64) {
    let (e, c) = bytes.split_at(8);
    let e = u64::from_be_bytes(e.try_into().expect("8 bytes")) ^ SIGN;
    let c = u64::from_be_bytes(c.try_into().expect("8 bytes")) ^ SIGN;
    (e as i64, c as i64)
}

#[derive(Serialize)]
struct BodyRef<'a> {
    digest: &'a str,
    values: &'a [FeatureValue],
}

#[derive(Deserialize)]
struct Body {
    digest: String,
    values: Vec<FeatureValue>,
}

/// The stored bytes of a row (see the module docs).
pub(crate) fn encode_row(row: &StoredRow) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(VERSION_LEN + 1 + row.digest.len() + 9 * row.values.len());
    out.extend_from_slice(&encode_version(row.version()));
    out.push(FORMAT_V1);
    let body = BodyRef {
        digest: &row.digest,
        values: &row.values,
    };
    postcard::to_io(&body, &mut out).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot encode an online row: {e}"),
        )
        .with_source(e)
    })?;
    Ok(out)
}

/// Decodes what [`encode_row`] produced. Anything else (a value another program wrote under a
/// skewless key, a newer format) is an `Internal` error saying what was found.
pub(crate) fn decode_row(bytes: &[u8]) -> Result<StoredRow> {
    let err = |what: String| {
        Error::new(
            ErrorKind::Internal,
            format!(
                "the online store holds a value that is not a skewless row: {what}; expected \
                 a 16-byte version, format byte {FORMAT_V1}, then the postcard-encoded row"
            ),
        )
    };
    let Some((version, rest)) = bytes.split_first_chunk::<VERSION_LEN>() else {
        return Err(err(format!("only {} bytes", bytes.len())));
    };
    match rest.split_first() {
        Some((&FORMAT_V1, body)) => {
            let (event_ts, created_ts) = decode_version(version);
            let body: Body = postcard::from_bytes(body)
                .map_err(|e| err(format!("undecodable body ({e})")).with_source(e))?;
            Ok(StoredRow {
                event_ts,
                created_ts,
                digest: body.digest,
                values: body.values,
            })
        }
        Some((format, _)) => Err(err(format!("format byte {format}"))),
        None => Err(err("no format byte".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feature_value() -> impl Strategy<Value = FeatureValue> {
        use FeatureValue as V;
        prop_oneof![
            Just(V::Null),
            any::<bool>().prop_map(V::Boolean),
            any::<i32>().prop_map(V::Int32),
            any::<i64>().prop_map(V::Int64),
            any::<u32>().prop_map(|b| V::Float32(f32::from_bits(b))),
            any::<u64>().prop_map(|b| V::Float64(f64::from_bits(b))),
            ".{0,20}".prop_map(V::Utf8),
            prop::collection::vec(any::<u8>(), 0..20).prop_map(V::Binary),
            any::<i64>().prop_map(V::Timestamp),
            prop::collection::vec(any::<u32>().prop_map(f32::from_bits), 0..8)
                .prop_map(V::Float32Vector),
        ]
    }

    fn stored_row() -> impl Strategy<Value = StoredRow> {
        (
            any::<i64>(),
            any::<i64>(),
            "sha256:[0-9a-f]{0,64}",
            prop::collection::vec(feature_value(), 0..12),
        )
            .prop_map(|(event_ts, created_ts, digest, values)| StoredRow {
                event_ts,
                created_ts,
                digest,
                values,
            })
    }

    proptest! {
        #[test]
        fn rows_round_trip_bit_exactly(row in stored_row()) {
            prop_assert_eq!(decode_row(&encode_row(&row).unwrap()).unwrap(), row);
        }

        #[test]
        fn the_version_bytes_order_as_the_tuples(a in any::<(i64, i64)>(), b in any::<(i64, i64)>()) {
            prop_assert_eq!(encode_version(a).cmp(&encode_version(b)), a.cmp(&b));
            prop_assert_eq!(decode_version(&encode_version(a)), a);
            prop_assert_eq!(
                replaces_encoded(&encode_version(a), &encode_version(b)),
                replaces(a, b)
            );
        }
    }

    #[test]
    fn the_ordering_rule() {
        assert!(replaces((2, 0), (1, 9)));
        assert!(replaces((1, 2), (1, 1)), "created_ts breaks ties");
        assert!(!replaces((1, 1), (1, 1)), "equal keeps the stored row");
        assert!(!replaces((0, 9), (1, 0)), "older never replaces newer");
        assert!(replaces((i64::MIN + 1, 0), (i64::MIN, i64::MAX)));
    }

    #[test]
    fn float_equality_is_bitwise() {
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        assert_eq!(FeatureValue::Float64(nan), FeatureValue::Float64(nan));
        assert_ne!(FeatureValue::Float64(nan), FeatureValue::Float64(f64::NAN));
        assert_ne!(FeatureValue::Float32(0.0), FeatureValue::Float32(-0.0));
        assert_ne!(FeatureValue::Int32(1), FeatureValue::Int64(1));
    }

    #[test]
    fn foreign_values_are_rejected() {
        let e = decode_row(b"hello").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert!(e.message().contains("only 5 bytes"), "{e}");
        let mut bytes = encode_row(&StoredRow {
            event_ts: 1,
            created_ts: 2,
            digest: "sha256:00".into(),
            values: vec![],
        })
        .unwrap();
        bytes[VERSION_LEN] = 7;
        assert!(
            decode_row(&bytes)
                .unwrap_err()
                .message()
                .contains("format byte 7")
        );
    }
}
