//! Where a (view, entity) row lives in the embedded store: one LMDB key per row.
//!
//! All views share LMDB's one unnamed database, keyed by
//!
//! ```text
//! [ LEB128 length of the view name ][ view name ][ EntityKey::encode ]
//! ```
//!
//! The view prefix is self-delimiting (a length, then the bytes), so no view's keys can start
//! with another view's prefix, and deleting a view is deleting one key range. One database
//! rather than one LMDB named database per view because named-database handles are
//! per-process state that another process's drop of the view would leave stale; a range in
//! one database needs no handle at all.
//!
//! LMDB limits keys to [`MAX_KEY`] bytes. An entity key too long to fit is
//! stored under its SHA-256 instead, behind a `0xFF` marker byte that no entity-key encoding
//! starts with (their first byte is a type tag, 1 or 2), so a hashed key never collides with
//! a plain one. Rows are found by key only (never listed back into entity keys), so hashing
//! loses nothing.

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::online::EntityKey;

/// Marks a hashed entity key; never the first byte of [`EntityKey::encode`].
const HASHED: u8 = 0xFF;
const HASH_LEN: usize = 32;

/// The longest key LMDB accepts as built here (its default `MDB_MAXKEYSIZE`). Part of the
/// on-disk layout (it decides which keys are hashed), so a constant, not whatever a build of
/// LMDB reports; the store checks at open that LMDB accepts keys this long.
pub(super) const MAX_KEY: usize = 511;

/// The prefix every key of `view` starts with, and nothing else's does. An `InvalidInput`
/// error if the view name is too long to leave room for a (hashed) entity key.
pub(super) fn view_prefix(view: &str) -> Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(view.len() + 2);
    write_leb128(&mut prefix, view.len() as u64);
    prefix.extend_from_slice(view.as_bytes());
    if prefix.len() + 1 + HASH_LEN > MAX_KEY {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "the view name is {} bytes long; the embedded online store takes view names \
                 of at most {} bytes",
                view.len(),
                MAX_KEY - 1 - HASH_LEN - 2
            ),
        )
        .with_context("view", view));
    }
    Ok(prefix)
}

/// The storage key of `entity` under `prefix` (from [`view_prefix`]), written into `out`
/// (cleared first, so one buffer serves every key of a call).
pub(super) fn key_into(prefix: &[u8], entity: &EntityKey, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(prefix);
    entity.encode_into(out);
    hash_if_too_long(out, prefix.len());
}

/// [`key_into`] for an entity key already encoded ([`EntityKey::encode`]).
pub(super) fn key_into_from_encoded(prefix: &[u8], entity: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(prefix);
    out.extend_from_slice(entity);
    hash_if_too_long(out, prefix.len());
}

/// Replaces the entity part of `key` (after `prefix_len` bytes) by its hash if the key is
/// longer than LMDB takes.
fn hash_if_too_long(key: &mut Vec<u8>, prefix_len: usize) {
    if key.len() > MAX_KEY {
        let hash = Sha256::digest(&key[prefix_len..]);
        key.truncate(prefix_len);
        key.push(HASHED);
        key.extend_from_slice(&hash);
    }
}

/// The first key after every key that starts with `prefix`, or `None` if there is none (a
/// prefix of only `0xFF` bytes): the exclusive end of the prefix's range.
pub(super) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key_of(view: &str, entity: &EntityKey) -> Vec<u8> {
        let mut out = Vec::new();
        let prefix = view_prefix(view).unwrap();
        key_into(&prefix, entity, &mut out);
        let mut from_encoded = Vec::new();
        key_into_from_encoded(&prefix, &entity.encode(), &mut from_encoded);
        assert_eq!(out, from_encoded);
        out
    }

    fn entity() -> impl Strategy<Value = EntityKey> {
        prop::collection::vec(
            prop_oneof![
                any::<i64>().prop_map(crate::online::KeyValue::Int64),
                "[ab\u{1}\u{ff}]{0,3}".prop_map(crate::online::KeyValue::Utf8),
                // Long enough to be hashed now and then.
                "[a-z]{0,600}".prop_map(crate::online::KeyValue::Utf8),
            ],
            0..3,
        )
        .prop_map(EntityKey)
    }

    proptest! {
        #[test]
        fn keys_are_injective_and_stay_in_their_view(
            (v1, e1) in ("[a-z:*]{0,4}", entity()),
            (v2, e2) in ("[a-z:*]{0,4}", entity()),
        ) {
            let (k1, k2) = (key_of(&v1, &e1), key_of(&v2, &e2));
            prop_assert!(k1.len() <= MAX_KEY && k2.len() <= MAX_KEY);
            prop_assert_eq!(k1 == k2, v1 == v2 && e1 == e2);
            let p1 = view_prefix(&v1).unwrap();
            prop_assert_eq!(k2.starts_with(&p1), v1 == v2);
            let end = prefix_end(&p1).unwrap();
            prop_assert_eq!(p1.as_slice() <= k2.as_slice() && k2 < end, v1 == v2);
        }
    }

    #[test]
    fn long_entity_keys_are_hashed_behind_a_marker() {
        let short = EntityKey::new(["x".repeat(400)]);
        let long = EntityKey::new(["x".repeat(600)]);
        let short_key = key_of("v", &short);
        assert_eq!(&short_key[2..], short.encode());
        let long_key = key_of("v", &long);
        assert_eq!(long_key.len(), 2 + 1 + HASH_LEN);
        assert_eq!(long_key[2], HASHED);
        assert_ne!(long_key, key_of("v", &EntityKey::new(["x".repeat(601)])));
    }

    #[test]
    fn an_overlong_view_name_is_rejected_with_the_limit() {
        let e = view_prefix(&"v".repeat(500)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("at most 476 bytes"), "{e}");
        view_prefix(&"v".repeat(476)).unwrap();
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
        assert_eq!(prefix_end(&[]), None);
    }
}
