//! Entity keys of Arrow rows, and the hash that partitions rows by them.
//!
//! Entity rows and feature rows name their keys by the view's join-key columns, possibly with
//! other integer or string widths; both are cast to the types an [`EntityKey`] holds (`Int64`,
//! `Utf8`) first, so the same entity has the same key on both sides. [`PartitionHash`] hashes
//! a row straight from the cast columns (no key is built, as partitioning touches every
//! feature row) and gives the same number as hashing the row's [`EntityKey`], which is how the
//! entity rows are partitioned.

use std::hash::{BuildHasher, Hasher};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::DataType as ArrowType;

use super::missing;
use crate::error::{Error, ErrorKind, Result};
use crate::online::{EntityKey, KeyValue};
use crate::registry::KeyType;

/// The key component that stands for a null: it matches no stored key (those are never null).
const NULL_KEY: &str = "\u{0}null";

/// The entity keys of the entity rows (nulls make a key that matches nothing).
pub(super) fn entity_keys(
    entities: &RecordBatch,
    keys: &[(String, KeyType)],
) -> Result<Vec<EntityKey>> {
    for (name, _) in keys {
        if entities.column_by_name(name).is_none() {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                format!("the entity rows have no join key column `{name}`"),
            )
            .with_context("column", name));
        }
    }
    entity_keys_of(entities, keys)
}

/// The entity keys of `batch`'s rows under `keys`.
pub(super) fn entity_keys_of(
    batch: &RecordBatch,
    keys: &[(String, KeyType)],
) -> Result<Vec<EntityKey>> {
    let cast = key_columns(batch, keys)?;
    let columns = typed(&cast);
    Ok((0..batch.num_rows())
        .map(|row| EntityKey(columns.iter().map(|c| c.value(row)).collect()))
        .collect())
}

/// A cast key column, typed once so that per-row access needs no type dispatch.
pub(super) enum KeyColumn<'a> {
    Int(&'a Int64Array),
    Str(&'a StringArray),
}

impl KeyColumn<'_> {
    /// The key value at `row`; null stands for [`NULL_KEY`].
    fn value(&self, row: usize) -> KeyValue {
        match self {
            KeyColumn::Int(c) if c.is_valid(row) => KeyValue::Int64(c.value(row)),
            KeyColumn::Str(c) if c.is_valid(row) => KeyValue::Utf8(c.value(row).to_owned()),
            _ => KeyValue::Utf8(NULL_KEY.to_owned()),
        }
    }

    /// Whether the value at `row` is `value`, as [`KeyColumn::value`] would make it (with no
    /// key built).
    pub(super) fn holds(&self, row: usize, value: &KeyValue) -> bool {
        match (self, value) {
            (KeyColumn::Int(c), KeyValue::Int64(v)) => c.is_valid(row) && c.value(row) == *v,
            (KeyColumn::Str(c), KeyValue::Utf8(v)) if c.is_valid(row) => c.value(row) == v,
            (_, KeyValue::Utf8(v)) => v == NULL_KEY && !self.is_valid(row),
            (KeyColumn::Str(_), KeyValue::Int64(_)) => false,
        }
    }

    fn is_valid(&self, row: usize) -> bool {
        match self {
            KeyColumn::Int(c) => c.is_valid(row),
            KeyColumn::Str(c) => c.is_valid(row),
        }
    }
}

/// The columns [`key_columns`] returns (`Int64` or `Utf8`), typed.
pub(super) fn typed(key_columns: &[ArrayRef]) -> Vec<KeyColumn<'_>> {
    key_columns
        .iter()
        .map(|c| match c.data_type() {
            ArrowType::Int64 => KeyColumn::Int(c.as_primitive::<Int64Type>()),
            _ => KeyColumn::Str(c.as_string::<i32>()),
        })
        .collect()
}

/// `keys`' columns of `batch`, cast to `Int64` (integer keys) or `Utf8` (string keys).
pub(super) fn key_columns(
    batch: &RecordBatch,
    keys: &[(String, KeyType)],
) -> Result<Vec<ArrayRef>> {
    keys.iter()
        .map(|(name, t)| {
            let column = batch.column_by_name(name).ok_or_else(|| missing(name))?;
            let to = match t {
                KeyType::Utf8 => ArrowType::Utf8,
                KeyType::Int32 | KeyType::Int64 => ArrowType::Int64,
            };
            // Not the default (safe) cast, which turns a value that does not convert (the
            // string "abc" for an integer key) into a null: a null key matches nothing, so
            // that row would silently get no features.
            let strict = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            arrow_cast::cast_with_options(column, &to, &strict).map_err(|e| {
                Error::new(
                    ErrorKind::SchemaMismatch,
                    format!(
                        "join key `{name}` is {}, expected {t:?}: {e}",
                        column.data_type()
                    ),
                )
                .with_context("column", name)
            })
        })
        .collect()
}

/// A seeded hash of entity keys, equal for a key and for a row holding it.
#[derive(Debug, Clone)]
pub(super) struct PartitionHash(ahash::RandomState);

impl PartitionHash {
    /// The hash of partitioning round `round`: a seed per round, so that rows sharing a
    /// partition in one round spread in the next.
    pub(super) fn new(round: usize) -> Self {
        PartitionHash(ahash::RandomState::with_seeds(
            round as u64,
            0x5eed,
            0xfea7,
            0x5ca1e,
        ))
    }

    /// The hash of an entity key.
    pub(super) fn key(&self, key: &EntityKey) -> u64 {
        let mut h = self.0.build_hasher();
        for value in &key.0 {
            match value {
                KeyValue::Int64(v) => write_int(&mut h, *v),
                KeyValue::Utf8(s) => write_str(&mut h, s),
            }
        }
        h.finish()
    }

    /// The hash of each row's key, from `key_columns` (as [`key_columns`] returns them).
    pub(super) fn rows(&self, key_columns: &[ArrayRef], rows: usize) -> Vec<u64> {
        let columns = typed(key_columns);
        (0..rows)
            .map(|row| {
                let mut h = self.0.build_hasher();
                for column in &columns {
                    match column {
                        KeyColumn::Int(c) if c.is_valid(row) => write_int(&mut h, c.value(row)),
                        KeyColumn::Str(c) if c.is_valid(row) => write_str(&mut h, c.value(row)),
                        _ => write_str(&mut h, NULL_KEY),
                    }
                }
                h.finish()
            })
            .collect()
    }
}

// A tag per type and a terminator after strings keep distinct keys' byte streams distinct.
fn write_int(h: &mut impl Hasher, v: i64) {
    h.write_u8(0);
    h.write_i64(v);
}

fn write_str(h: &mut impl Hasher, s: &str) {
    h.write_u8(1);
    h.write(s.as_bytes());
    h.write_u8(0xff);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int32Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    #[test]
    fn a_key_value_that_does_not_convert_is_an_error_not_a_null() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", ArrowType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![
                Some("1"),
                None,
                Some("abc"),
            ]))],
        )
        .unwrap();
        let keys = [("id".to_owned(), KeyType::Int64)];
        let e = key_columns(&batch, &keys).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
        assert_eq!(e.context_value("column"), Some("id"));
        assert!(e.to_string().contains("abc"), "{e}");
        // Numbers as text and nulls (a null key matches nothing, as documented) convert.
        let fine = RecordBatch::try_new(
            batch.schema(),
            vec![Arc::new(StringArray::from(vec![Some("1"), None]))],
        )
        .unwrap();
        let cast = key_columns(&fine, &keys).unwrap();
        assert_eq!(cast[0].null_count(), 1);
    }

    #[test]
    fn a_row_hashes_like_its_entity_key_whatever_the_key_types_and_nulls() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", ArrowType::Int32, true),
                Field::new("region", ArrowType::LargeUtf8, true),
            ])),
            vec![
                Arc::new(Int32Array::from(vec![Some(1), None, Some(-7), Some(1)])),
                Arc::new(arrow_array::LargeStringArray::from(vec![
                    Some("eu"),
                    Some("us"),
                    None,
                    Some(""),
                ])),
            ],
        )
        .unwrap();
        let keys = [
            ("id".to_owned(), KeyType::Int64),
            ("region".to_owned(), KeyType::Utf8),
        ];
        let hash = PartitionHash::new(3);
        let entity_keys = entity_keys(&batch, &keys).unwrap();
        let from_keys: Vec<u64> = entity_keys.iter().map(|k| hash.key(k)).collect();
        let columns = key_columns(&batch, &keys).unwrap();
        assert_eq!(hash.rows(&columns, batch.num_rows()), from_keys);
        assert_eq!(
            entity_keys[0],
            EntityKey::new([KeyValue::Int64(1), "eu".into()])
        );
        assert_ne!(
            from_keys[0], from_keys[3],
            "different keys, different hashes"
        );
        assert_ne!(
            from_keys[0],
            PartitionHash::new(4).key(&entity_keys[0]),
            "another round, another hash"
        );
    }
}
