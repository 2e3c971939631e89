//! The newest row per entity across a whole materialization, kept by the worker threads.
//!
//! Rows arrive in no particular time order. Each worker offers its batch's rows to a map
//! sharded by key (one lock per shard, so two workers rarely wait on each other), and a row's
//! feature values are only decoded when it is newer than what the map holds: with rows in
//! random time order, an entity with `k` rows replaces its candidate about `ln k` times, so
//! most rows cost a hash and a compare. Memory grows with the number of entities in the
//! window, not with the number of rows.
//!
//! "Newest" is the order of rows of the online store (`online/row.rs`): the greater
//! `(event_ts, created_ts)`, and on an exact version tie the greater stored bytes, so the row
//! kept does not depend on which worker offers its batch first.

use std::cmp::Ordering;
use std::collections::hash_map::Entry;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;

use super::shards::EntityShards;
use super::values::{RowKey, feature_value};
use crate::error::Result;
use crate::online::{EntityKey, FeatureValue, StoredRow, compare_values};

/// The version read for an entity the map does not hold: every row is at least as new.
const NOTHING_HELD: (i64, i64) = (i64::MIN, i64::MIN);

struct Candidate {
    version: (i64, i64),
    values: Vec<FeatureValue>,
}

/// The greatest row per entity (the order of rows), shared by the workers of one job.
pub(crate) struct NewestRows {
    entities: EntityShards<Candidate>,
}

impl NewestRows {
    pub(crate) fn new() -> Self {
        NewestRows {
            entities: EntityShards::new(),
        }
    }

    /// Offers every row of a feature-table batch: `keys` join-key columns, then `event_ts`,
    /// `created_ts` and the feature columns.
    pub(crate) fn offer(&self, batch: &RecordBatch, keys: usize) -> Result<()> {
        let event = batch
            .column(keys)
            .as_primitive::<TimestampMicrosecondType>();
        let created = batch
            .column(keys + 1)
            .as_primitive::<TimestampMicrosecondType>();
        let features = &batch.columns()[keys + 2..];
        // Each shard locked once per batch for all of its rows, whose probes then stay in
        // that shard's (cache-sized) table.
        let mut row_keys: Vec<RowKey> = (0..batch.num_rows())
            .map(|row| RowKey::of(batch, keys, row))
            .collect();
        let grouped = self.entities.group(&row_keys);
        for (shard, rows) in grouped.shards() {
            let mut shard = self.entities.lock(shard);
            // Most rows are older than what the map holds for their entity, and each lookup
            // is a cache miss (the map holds every entity of the window). A first pass only
            // reads the held versions: a loop of independent lookups with no branch that
            // depends on what they load, so the CPU keeps many of them in flight (comparing
            // in the same loop mispredicts on ~10% of rows, and each misprediction discards
            // the lookups started after it). The comparisons then run on what was read.
            // A row they drop would lose below too: what the map holds only grows.
            let held: Vec<(i64, i64)> = (rows.iter())
                .map(|&row| {
                    (shard.get(&row_keys[row as usize])).map_or(NOTHING_HELD, |held| held.version)
                })
                .collect();
            let contenders: Vec<usize> = (rows.iter().zip(&held))
                .map(|(&row, held)| (row as usize, held))
                .filter(|&(row, held)| (event.value(row), created.value(row)) >= *held)
                .map(|(row, _)| row)
                .collect();
            // A winner's values live in a vector of their own: one more cache miss each when
            // they are overwritten below, one after another. Reading the first of each here,
            // in a loop of independent loads, brings them in together.
            for &row in &contenders {
                if let Some(held) = shard.get(&row_keys[row]) {
                    std::hint::black_box(held.values.first().map(std::mem::discriminant));
                }
            }
            for row in contenders {
                // Each row is visited once: its key moves into the map.
                let key = std::mem::replace(&mut row_keys[row], RowKey::Int(0));
                let version = (event.value(row), created.value(row));
                let decode = || {
                    features
                        .iter()
                        .map(|c| feature_value(c, row))
                        .collect::<Result<Vec<_>>>()
                };
                match shard.entry(key) {
                    Entry::Occupied(mut held) => match version.cmp(&held.get().version) {
                        Ordering::Greater => {
                            // In place: the entity's vector is reused, not freed and
                            // allocated again.
                            let held = held.get_mut();
                            held.version = version;
                            held.values.clear();
                            for column in features {
                                held.values.push(feature_value(column, row)?);
                            }
                        }
                        // An exact version tie: the greater stored bytes win (the rows share
                        // the digest, so their values' encodings decide), whatever the order
                        // rows arrive in.
                        Ordering::Equal => {
                            let values = decode()?;
                            if compare_values(&values, &held.get().values)? == Ordering::Greater {
                                held.get_mut().values = values;
                            }
                        }
                        Ordering::Less => {}
                    },
                    Entry::Vacant(slot) => {
                        slot.insert(Candidate {
                            version,
                            values: decode()?,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The newest rows, stamped with the component digest.
    pub(crate) fn into_rows(self, digest: &str) -> Vec<(EntityKey, StoredRow)> {
        self.entities
            .into_entries()
            .map(|(key, c)| {
                let row = StoredRow {
                    event_ts: c.version.0,
                    created_ts: c.version.1,
                    digest: digest.to_owned(),
                    values: c.values,
                };
                (key.into_entity_key(), row)
            })
            .collect()
    }
}
