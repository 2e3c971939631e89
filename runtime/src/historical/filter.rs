//! The entity rows' keys as a filter on scanned feature rows: a semi-join per batch.
//!
//! A retrieval only ever pairs a feature row with entity rows of the same key, so a feature
//! row whose key no entity row asks for can be dropped as soon as it is scanned, before it is
//! held, partitioned or spilled: memory then follows the entity rows' keys (10k labels touch
//! at most 10k entities), not the feature table. Dropping such rows changes no answer: the
//! as-of join and the aggregates look only at the rows of an entity row's own key, in scan
//! order, and the kept rows keep that order.
//!
//! A single integer join key (the usual case) is looked up as it is, in a set of the asked
//! integers. Other keys (strings, several columns) are hashed straight from the key columns
//! (no key is built per row; the same hash as partitioning, [`PartitionHash`]), looked up
//! among the distinct entity keys' hashes, and a hit is confirmed by comparing the row's
//! values with the key's, so a hash collision cannot keep a row another key owns. One
//! `filter` per batch then copies the kept rows; a batch whose rows are all kept is passed on
//! as it is.
//!
//! The same lookup numbers the keys: each distinct entity key gets a dense id (in the order
//! the entity rows first name it), which is what the as-of join sorts and matches feature rows
//! by ([`KeyFilter::ids`], [`KeyFilter::entity_id`]), so no key is built per feature row there
//! either.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_buffer::BooleanBuffer;

use super::internal;
use super::keys::{KeyColumn, PartitionHash, key_columns, typed};
use crate::error::Result;
use crate::online::{EntityKey, KeyValue};
use crate::registry::KeyType;

/// The id [`KeyFilter::ids`] gives a feature row whose key no entity row asks for.
pub(super) const NOT_ASKED: u32 = u32::MAX;

/// The distinct keys of some entity rows, numbered, to keep the feature rows that hold one of
/// them and to tell which.
#[derive(Debug)]
pub(super) struct KeyFilter<'k> {
    /// The entity rows' keys (with repeats); the index below points into them.
    keys: &'k [EntityKey],
    /// The id of each entity row's key: equal keys, equal ids, dense from 0.
    entity_ids: Vec<u32>,
    /// The view's join-key columns.
    key_columns: &'k [(String, KeyType)],
    /// A single integer key: the id of each asked integer, and that of a null key if one is
    /// asked (an entity row with a null key, which stands for a key no stored row has).
    ints: Option<(HashMap<i64, u32, ahash::RandomState>, Option<u32>)>,
    hash: PartitionHash,
    /// Each distinct key's hash, to the first entity row holding that key.
    first: HashMap<u64, u32, ahash::RandomState>,
    /// Further distinct keys whose hash equals an earlier key's (a 64-bit collision, almost
    /// never): `(hash, entity row)`.
    collided: Vec<(u64, u32)>,
}

impl<'k> KeyFilter<'k> {
    /// A filter keeping the feature rows whose key under `key_columns` is one of `keys`.
    pub(super) fn new(keys: &'k [EntityKey], key_columns: &'k [(String, KeyType)]) -> Self {
        let hash = PartitionHash::new(0);
        let mut entity_ids = Vec::with_capacity(keys.len());
        let mut distinct = 0u32;
        let mut next = || {
            distinct += 1;
            distinct - 1
        };
        if let [(_, KeyType::Int32 | KeyType::Int64)] = key_columns {
            let mut ints: HashMap<i64, u32, ahash::RandomState> =
                HashMap::with_hasher(ahash::RandomState::with_seeds(5, 6, 7, 8));
            let mut null = None;
            for key in keys {
                entity_ids.push(match key.0.as_slice() {
                    [KeyValue::Int64(v)] => *ints.entry(*v).or_insert_with(&mut next),
                    // The only other value an integer key column gives (see `keys`).
                    _ => *null.get_or_insert_with(&mut next),
                });
            }
            return KeyFilter {
                keys,
                entity_ids,
                key_columns,
                ints: Some((ints, null)),
                hash,
                first: HashMap::default(),
                collided: Vec::new(),
            };
        }
        let mut first: HashMap<u64, u32, ahash::RandomState> =
            HashMap::with_hasher(ahash::RandomState::with_seeds(5, 6, 7, 8));
        let mut collided: Vec<(u64, u32)> = Vec::new();
        for (row, key) in keys.iter().enumerate() {
            let h = hash.key(key);
            let id = match first.get(&h) {
                None => {
                    first.insert(h, row as u32);
                    next()
                }
                Some(&earlier) if keys[earlier as usize] == *key => entity_ids[earlier as usize],
                Some(_) => {
                    let known = collided
                        .iter()
                        .find(|&&(c, r)| c == h && keys[r as usize] == *key);
                    match known {
                        Some(&(_, r)) => entity_ids[r as usize],
                        None => {
                            collided.push((h, row as u32));
                            next()
                        }
                    }
                }
            };
            entity_ids.push(id);
        }
        KeyFilter {
            keys,
            entity_ids,
            key_columns,
            ints: None,
            hash,
            first,
            collided,
        }
    }

    /// The number of distinct keys.
    #[cfg(test)]
    fn distinct(&self) -> usize {
        match &self.ints {
            Some((ints, null)) => ints.len() + usize::from(null.is_some()),
            None => self.first.len() + self.collided.len(),
        }
    }

    /// The id of entity row `row`'s key.
    pub(super) fn entity_id(&self, row: u32) -> u32 {
        self.entity_ids[row as usize]
    }

    /// The id of each row's key of `batch` (feature rows holding the view's join-key
    /// columns): the id of the entity rows holding the same key, or [`NOT_ASKED`].
    pub(super) fn ids(&self, batch: &RecordBatch) -> Result<Vec<u32>> {
        let rows = batch.num_rows();
        let cast = key_columns(batch, self.key_columns)?;
        if let Some((ints, null)) = &self.ints {
            let column = cast[0].as_primitive::<Int64Type>();
            let id = |v: &i64| ints.get(v).copied().unwrap_or(NOT_ASKED);
            return Ok(match column.nulls() {
                None => column.values().iter().map(id).collect(),
                Some(valid) => (column.values().iter().enumerate())
                    .map(|(row, v)| match valid.is_valid(row) {
                        true => id(v),
                        false => null.unwrap_or(NOT_ASKED),
                    })
                    .collect(),
            });
        }
        let columns = typed(&cast);
        let hashes = self.hash.rows(&cast, rows);
        Ok((0..rows)
            .map(|row| self.id_of_row(&columns, &hashes, row).unwrap_or(NOT_ASKED))
            .collect())
    }

    /// The id of row `row`'s key, for keys other than a single integer.
    fn id_of_row(&self, columns: &[KeyColumn<'_>], hashes: &[u64], row: usize) -> Option<u32> {
        let h = hashes[row];
        let holds = |entity_row: u32| row_holds(columns, row, &self.keys[entity_row as usize]);
        let entity_row = match self.first.get(&h) {
            None => None,
            Some(&r) if holds(r) => Some(r),
            Some(_) => (self.collided.iter())
                .find(|&&(c, r)| c == h && holds(r))
                .map(|&(_, r)| r),
        }?;
        Some(self.entity_ids[entity_row as usize])
    }

    /// The rows of `batch` (feature rows holding the view's join-key columns) whose key is
    /// one of the filter's, in their order.
    pub(super) fn keep(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(batch.clone());
        }
        let cast = key_columns(batch, self.key_columns)?;
        let keep = match &self.ints {
            Some(ints) => keep_ints(ints, cast[0].as_primitive::<Int64Type>()),
            None => self.keep_any(&cast, rows),
        };
        if keep.count_set_bits() == rows {
            return Ok(batch.clone());
        }
        arrow_select::filter::filter_record_batch(batch, &BooleanArray::new(keep, None))
            .map_err(internal)
    }

    /// Which rows hold one of the keys, for keys other than a single integer.
    fn keep_any(&self, cast: &[arrow_array::ArrayRef], rows: usize) -> BooleanBuffer {
        let columns = typed(cast);
        let hashes = self.hash.rows(cast, rows);
        BooleanBuffer::collect_bool(rows, |row| self.id_of_row(&columns, &hashes, row).is_some())
    }
}

/// Which rows of a single integer key column hold one of `ints` (a null row: whether a null
/// key is asked, as the join would pair them).
fn keep_ints(
    (ints, null): &(HashMap<i64, u32, ahash::RandomState>, Option<u32>),
    column: &arrow_array::Int64Array,
) -> BooleanBuffer {
    let values = column.values();
    match column.nulls() {
        None => BooleanBuffer::collect_bool(values.len(), |row| ints.contains_key(&values[row])),
        Some(valid) => BooleanBuffer::collect_bool(values.len(), |row| match valid.is_valid(row) {
            true => ints.contains_key(&values[row]),
            false => null.is_some(),
        }),
    }
}

/// Whether row `row` of `columns` holds `key`.
fn row_holds(columns: &[KeyColumn<'_>], row: usize, key: &EntityKey) -> bool {
    columns.len() == key.0.len()
        && columns
            .iter()
            .zip(&key.0)
            .all(|(column, value)| column.holds(row, value))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Int32Array, StringArray};
    use arrow_schema::{DataType as ArrowType, Field, Schema};
    use proptest::prelude::*;

    use std::collections::HashSet;

    use super::super::keys::entity_keys_of;
    use super::*;

    /// A composite key (integer and string), or a single integer key.
    fn keys_of(composite: bool) -> Vec<(String, KeyType)> {
        match composite {
            true => vec![
                ("id".to_owned(), KeyType::Int64),
                ("region".to_owned(), KeyType::Utf8),
            ],
            false => vec![("id".to_owned(), KeyType::Int32)],
        }
    }

    fn keys() -> Vec<(String, KeyType)> {
        keys_of(true)
    }

    /// Rows `(id, region)` with nulls, an `Int32` id and a string key, as a table may hold them.
    fn batch(rows: &[(Option<i32>, Option<&str>)]) -> RecordBatch {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", ArrowType::Int32, true),
                Field::new("region", ArrowType::Utf8, true),
                Field::new("row", ArrowType::Int32, false),
            ])),
            vec![
                Arc::new(rows.iter().map(|r| r.0).collect::<Int32Array>()),
                Arc::new(rows.iter().map(|r| r.1).collect::<StringArray>()),
                Arc::new(Int32Array::from_iter_values(0..rows.len() as i32)),
            ],
        )
        .unwrap()
    }

    const REGIONS: [&str; 4] = ["eu", "us", "", "\u{0}null"];

    fn row() -> impl Strategy<Value = (Option<i32>, Option<&'static str>)> {
        (
            proptest::option::weighted(0.9, -3i32..6),
            proptest::option::weighted(0.9, proptest::sample::select(&REGIONS[..])),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The rows kept are exactly those whose entity key (as the join builds it) is one of
        /// the asked keys, in their order.
        #[test]
        fn keeps_exactly_the_rows_of_the_asked_keys_in_order(
            asked in proptest::collection::vec(row(), 0..12),
            table in proptest::collection::vec(row(), 0..80),
            composite in any::<bool>(),
        ) {
            let keys = keys_of(composite);
            let asked = entity_keys_of(&batch(&asked), &keys).unwrap();
            let table = batch(&table);
            let filter = KeyFilter::new(&asked, &keys);
            let kept = filter.keep(&table).unwrap();
            let row_keys = entity_keys_of(&table, &keys).unwrap();
            let expected: Vec<i32> = (0..table.num_rows() as i32)
                .filter(|&i| asked.contains(&row_keys[i as usize]))
                .collect();
            let got = kept.column(2).as_any().downcast_ref::<Int32Array>().unwrap();
            prop_assert_eq!(got.values().to_vec(), expected);
            let distinct: HashSet<_> = asked.iter().collect();
            prop_assert_eq!(filter.distinct(), distinct.len());
            // Ids: equal keys and only equal keys share one, dense from 0; a feature row has
            // the id of the entity rows holding its key, or none.
            for (i, a) in asked.iter().enumerate() {
                for (j, b) in asked.iter().enumerate() {
                    prop_assert_eq!(
                        filter.entity_id(i as u32) == filter.entity_id(j as u32),
                        a == b
                    );
                }
                prop_assert!((filter.entity_id(i as u32) as usize) < distinct.len());
            }
            let ids = filter.ids(&table).unwrap();
            for (row, key) in row_keys.iter().enumerate() {
                let expected = (asked.iter().position(|a| a == key))
                    .map_or(NOT_ASKED, |i| filter.entity_id(i as u32));
                prop_assert_eq!(ids[row], expected, "row {}", row);
            }
        }
    }

    #[test]
    fn a_batch_whose_rows_are_all_kept_is_not_copied() {
        let keys = keys();
        let table = batch(&[(Some(1), Some("eu")), (Some(2), None)]);
        let asked = entity_keys_of(&table, &keys).unwrap();
        let kept = KeyFilter::new(&asked, &keys).keep(&table).unwrap();
        assert!(
            Arc::ptr_eq(kept.column(2), table.column(2)),
            "the same buffers"
        );
    }

    #[test]
    fn a_key_column_of_the_wrong_type_is_an_error() {
        let keys = vec![("region".to_owned(), KeyType::Int64)];
        let asked = vec![EntityKey::new([1i64])];
        let table = batch(&[(Some(1), Some("eu"))]);
        let e = KeyFilter::new(&asked, &keys).keep(&table).unwrap_err();
        assert_eq!(e.context_value("column"), Some("region"));
    }
}
