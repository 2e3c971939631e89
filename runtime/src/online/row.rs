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
//! comparing the tuples of `i64`.
//!
//! # The order of rows
//!
//! **One total order decides which row wins, everywhere** (every online backend, the newest
//! row a materialization or a push keeps, and the point-in-time join of historical retrieval):
//! rows compare by their stored bytes, [`encode_row`], as unsigned bytes (memcmp), and the
//! greater wins. Because the bytes begin with the version, that is: **the greater
//! `(event_ts, created_ts)` wins; on an exact version tie, the greater rest of the stored
//! bytes** (the format byte, then the postcard encoding of the digest and the values). Equal
//! bytes are the same row, so writing it again changes nothing. [`compare_rows`] is the
//! rule, [`replaces_encoded`] its form on stored bytes.
//!
//! Why the bytes and not the version alone: two source rows can have the very same version
//! and different values. Keeping the first one seen would make the answer depend on the
//! order rows arrive in (the concurrent file reads of a scan, the batching of writes), and
//! the online value and the training value at the same instant could differ. The bytes are
//! what every backend holds anyway, so the tie-break needs nothing new, and the common case
//! (versions differ) still decides on the 16-byte prefix alone: a compare-and-set compares
//! the prefixes, and only on a tie the rest of the stored value (the Redis backends do it in
//! a Lua script, server-side, where Rust cannot run; DynamoDB in its condition expression).
//!
//! Rows of one view stamped with the same digest and holding the same number of values, as
//! all rows of one materialization are, compare on a tie exactly as their values' encodings
//! ([`compare_values`]): historical retrieval, which reads the values and not the digest,
//! uses that form.

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

/// The version part of the ordering rule (see "The order of rows" in `online/row.rs`):
/// a row whose `(event_ts, created_ts)` is strictly greater, lexicographically, replaces the
/// stored one whatever their values, so a late or concurrent writer can never regress a
/// feature. Rows of equal versions are decided by [`compare_rows`].
pub fn replaces(new: (i64, i64), stored: (i64, i64)) -> bool {
    new.cmp(&stored) == Ordering::Greater
}

/// **The order of rows**, which decides everywhere which row wins ("The order of rows" in
/// `online/row.rs` says why): by version, then, on an exact version tie, by their stored
/// bytes (as every online backend stores them) as unsigned bytes. `Equal` only for rows with
/// the same stored bytes. The bytes are encoded only on a version tie.
pub fn compare_rows(a: &StoredRow, b: &StoredRow) -> Result<Ordering> {
    match a.version().cmp(&b.version()) {
        Ordering::Equal => Ok(encode_row(a)?.cmp(&encode_row(b)?)),
        order => Ok(order),
    }
}

/// [`compare_rows`] on rows of equal version, digest and number of values, from their values
/// alone: the order of the postcard encodings of `a` and `b`, which is the order of the
/// stored bytes of such rows (everything before the values is the same in both, and each
/// value's encoding is self-delimiting, so neither slice's encoding is a proper prefix of the
/// other's). Also right for prefixes of equal length: if they differ, the first difference
/// decides the whole rows.
pub(crate) fn compare_values(a: &[FeatureValue], b: &[FeatureValue]) -> Result<Ordering> {
    Ok(encode_values(a)?.cmp(&encode_values(b)?))
}

fn encode_values(values: &[FeatureValue]) -> Result<Vec<u8>> {
    postcard::to_allocvec(values).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("cannot encode feature values: {e}"),
        )
        .with_source(e)
    })
}

/// The ordering rule on stored bytes: whether `new` (from [`encode_row`]) replaces `stored`,
/// that is, whether it is strictly greater as unsigned bytes. Equal bytes keep the stored
/// row. A stored value too short to hold a version is not a row: anything replaces it. The
/// Redis script and the DynamoDB condition implement exactly this comparison.
pub(crate) fn replaces_encoded(new: &[u8], stored: &[u8]) -> bool {
    stored.len() < VERSION_LEN || new > stored
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

    proptest! {
        /// The order of rows is the order of their stored bytes, the version first; on a tie
        /// of version and digest it is the order of the values' encodings.
        #[test]
        fn rows_order_by_version_then_stored_bytes(
            a in stored_row(),
            b in stored_row(),
            tie in any::<bool>(),
        ) {
            let mut b = b;
            if tie {
                // Exact version ties of (usually) different values.
                (b.event_ts, b.created_ts, b.digest) = (a.event_ts, a.created_ts, a.digest.clone());
            }
            let (ea, eb) = (encode_row(&a).unwrap(), encode_row(&b).unwrap());
            let order = compare_rows(&a, &b).unwrap();
            prop_assert_eq!(order, ea.cmp(&eb));
            if a.version() != b.version() {
                prop_assert_eq!(order, a.version().cmp(&b.version()));
            }
            prop_assert_eq!(order == Ordering::Equal, a == b);
            prop_assert_eq!(replaces_encoded(&ea, &eb), order == Ordering::Greater);
            prop_assert_eq!(replaces_encoded(&eb, &ea), order == Ordering::Less);
            if tie && a.values.len() == b.values.len() {
                prop_assert_eq!(compare_values(&a.values, &b.values).unwrap(), order);
                // A prefix of the values decides as the whole when the prefixes differ.
                let n = a.values.len() / 2;
                let prefix = compare_values(&a.values[..n], &b.values[..n]).unwrap();
                if prefix != Ordering::Equal {
                    prop_assert_eq!(prefix, order);
                }
            }
        }
    }

    #[test]
    fn version_ties_are_broken_by_the_stored_bytes() {
        let row = |values| StoredRow {
            event_ts: 5,
            created_ts: 7,
            digest: "sha256:00".into(),
            values,
        };
        let low = encode_row(&row(vec![FeatureValue::Int64(1)])).unwrap();
        let high = encode_row(&row(vec![FeatureValue::Int64(2)])).unwrap();
        let newer = encode_row(&StoredRow {
            event_ts: 6,
            ..row(vec![FeatureValue::Int64(0)])
        })
        .unwrap();
        assert!(
            replaces_encoded(&high, &low),
            "greater bytes win a version tie"
        );
        assert!(!replaces_encoded(&low, &high), "smaller bytes lose it");
        assert!(
            !replaces_encoded(&high, &high),
            "the same bytes change nothing"
        );
        assert!(replaces_encoded(&newer, &high), "the version decides first");
        assert!(!replaces_encoded(&high, &newer));
        assert!(replaces_encoded(&low, b"short"), "a non-row is replaced");
        assert!(replaces_encoded(&low, b""));
    }

    #[test]
    fn the_ordering_rule() {
        assert!(replaces((2, 0), (1, 9)));
        assert!(replaces((1, 2), (1, 1)), "created_ts breaks ties");
        assert!(
            !replaces((1, 1), (1, 1)),
            "an equal version alone does not replace: the stored bytes decide"
        );
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
