//! Entity keys and their canonical byte encoding.
//!
//! An [`EntityKey`] is the tuple of an entity's join-key values, in the view's join-key order.
//! Both backends store a row under [`EntityKey::encode`], so the encoding is part of the on-disk
//! and in-Redis format and must never change meaning. It is *tagged and length-prefixed*: each
//! value is a tag byte, then for `Int64` eight big-endian bytes and for `Utf8` a LEB128 length
//! followed by the UTF-8 bytes. Every value's encoding is self-delimiting, so the concatenation
//! is injective: `("a", "bc")` and `("ab", "c")` encode differently, as do `(1)` and `("1")`.
//! [`EntityKey::decode`] accepts exactly the byte strings `encode` produces (canonical lengths,
//! known tags, valid UTF-8, no trailing bytes), so decoding is the inverse of encoding.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

const TAG_INT64: u8 = 0x01;
const TAG_UTF8: u8 = 0x02;

/// One join-key value. Int32 keys are widened to `Int64` by callers, so that the same entity
/// has one key whatever integer width a source declares.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyValue {
    /// An integer key.
    Int64(i64),
    /// A string key.
    Utf8(String),
}

impl From<i64> for KeyValue {
    fn from(v: i64) -> Self {
        KeyValue::Int64(v)
    }
}

impl From<i32> for KeyValue {
    fn from(v: i32) -> Self {
        KeyValue::Int64(i64::from(v))
    }
}

impl From<&str> for KeyValue {
    fn from(v: &str) -> Self {
        KeyValue::Utf8(v.to_owned())
    }
}

impl From<String> for KeyValue {
    fn from(v: String) -> Self {
        KeyValue::Utf8(v)
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValue::Int64(v) => write!(f, "{v}"),
            KeyValue::Utf8(v) => write!(f, "{v:?}"),
        }
    }
}

/// An entity's join-key values, in the view's join-key order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EntityKey(pub Vec<KeyValue>);

impl EntityKey {
    /// A key from its values, in join-key order.
    pub fn new(values: impl IntoIterator<Item = impl Into<KeyValue>>) -> Self {
        EntityKey(values.into_iter().map(Into::into).collect())
    }

    /// The values, in join-key order.
    pub fn values(&self) -> &[KeyValue] {
        &self.0
    }

    /// The canonical storage encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.0.len() * 10);
        self.encode_into(&mut out);
        out
    }

    /// [`encode`](Self::encode), appended to `out` (a reused buffer: no allocation per key).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        for value in &self.0 {
            match value {
                KeyValue::Int64(v) => {
                    out.push(TAG_INT64);
                    out.extend_from_slice(&v.to_be_bytes());
                }
                KeyValue::Utf8(s) => {
                    out.push(TAG_UTF8);
                    write_leb128(out, s.len() as u64);
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
    }

    /// Decodes what [`encode`](Self::encode) produced; any other byte string is an
    /// `InvalidInput` error naming the offset at fault.
    pub fn decode(mut bytes: &[u8]) -> Result<Self> {
        let total = bytes.len();
        let err = |rest: &[u8], what: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "not an encoded entity key: {what} at byte {}; expected a tag (1 = int64, \
                     2 = utf8) followed by its value",
                    total - rest.len()
                ),
            )
        };
        let mut values = Vec::new();
        while let Some((&tag, rest)) = bytes.split_first() {
            match tag {
                TAG_INT64 => {
                    let Some((int, rest)) = rest.split_first_chunk::<8>() else {
                        return Err(err(bytes, "a truncated int64"));
                    };
                    values.push(KeyValue::Int64(i64::from_be_bytes(*int)));
                    bytes = rest;
                }
                TAG_UTF8 => {
                    let (len, rest) =
                        read_leb128(rest).ok_or_else(|| err(bytes, "a malformed string length"))?;
                    let len = usize::try_from(len)
                        .ok()
                        .filter(|len| *len <= rest.len())
                        .ok_or_else(|| err(bytes, "a truncated string"))?;
                    let (s, rest) = rest.split_at(len);
                    let s = std::str::from_utf8(s).map_err(|_| err(bytes, "invalid UTF-8"))?;
                    values.push(KeyValue::Utf8(s.to_owned()));
                    bytes = rest;
                }
                _ => return Err(err(bytes, &format!("unknown tag {tag}"))),
            }
        }
        Ok(EntityKey(values))
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v}")?;
        }
        f.write_str(")")
    }
}

impl<V: Into<KeyValue>> FromIterator<V> for EntityKey {
    fn from_iter<I: IntoIterator<Item = V>>(iter: I) -> Self {
        EntityKey::new(iter)
    }
}

fn write_leb128(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a canonical LEB128 `u64`: no overlong forms (a final byte of zero after the first), no
/// overflow. Canonical-only keeps decoding injective.
fn read_leb128(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, &byte) in bytes.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return None;
        }
        v |= bits << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return None;
            }
            return Some((v, &bytes[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key_value() -> impl Strategy<Value = KeyValue> {
        prop_oneof![
            any::<i64>().prop_map(KeyValue::Int64),
            ".{0,200}".prop_map(KeyValue::Utf8),
            // Short strings over a tiny alphabet make boundary collisions likely if there were any.
            "[ab\u{1}\u{2}]{0,3}".prop_map(KeyValue::Utf8),
        ]
    }

    fn entity_key() -> impl Strategy<Value = EntityKey> {
        prop::collection::vec(key_value(), 0..5).prop_map(EntityKey)
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(key in entity_key()) {
            prop_assert_eq!(EntityKey::decode(&key.encode()).unwrap(), key);
        }

        #[test]
        fn encoding_is_injective(a in entity_key(), b in entity_key()) {
            prop_assert_eq!(a.encode() == b.encode(), a == b);
        }

        #[test]
        fn decode_never_panics_and_only_accepts_canonical_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..40)
        ) {
            if let Ok(key) = EntityKey::decode(&bytes) {
                prop_assert_eq!(key.encode(), bytes);
            }
        }

        #[test]
        fn leb128_round_trips(v in any::<u64>()) {
            let mut out = Vec::new();
            write_leb128(&mut out, v);
            prop_assert_eq!(read_leb128(&out), Some((v, &[][..])));
        }
    }

    #[test]
    fn boundaries_and_types_are_part_of_the_encoding() {
        let ab_c = EntityKey::new(["ab", "c"]);
        let a_bc = EntityKey::new(["a", "bc"]);
        assert_ne!(ab_c.encode(), a_bc.encode());
        assert_ne!(
            EntityKey::new([1i64]).encode(),
            EntityKey::new(["\0\0\0\0\0\0\0\u{1}"]).encode()
        );
        assert_eq!(EntityKey::new([7i32]), EntityKey::new([7i64]));
        assert_eq!(
            EntityKey(vec![KeyValue::Int64(1), "x".into()]).to_string(),
            "(1, \"x\")"
        );
    }

    #[test]
    fn malformed_bytes_are_rejected_with_the_offset() {
        let e = EntityKey::decode(&[TAG_INT64, 0, 0]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("truncated int64 at byte 0"), "{e}");
        // An overlong length (0x80 0x00 instead of 0x00).
        let e = EntityKey::decode(&[TAG_UTF8, 0x80, 0x00]).unwrap_err();
        assert!(e.message().contains("malformed string length"), "{e}");
        let e = EntityKey::decode(&[TAG_UTF8, 1, 0xff]).unwrap_err();
        assert!(e.message().contains("invalid UTF-8"), "{e}");
        let e = EntityKey::decode(&[9]).unwrap_err();
        assert!(e.message().contains("unknown tag 9"), "{e}");
    }
}
