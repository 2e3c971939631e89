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

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;

use super::shards::EntityShards;
use super::values::{RowKey, feature_value};
use super::versions::{Probe, SlotIndex, VersionTable};
use crate::error::Result;
use crate::online::{EntityKey, StoredRow, compare_values};

/// The version read for an entity the table does not hold: every row is at least as new.
const NOTHING_HELD: (i64, i64) = (i64::MIN, i64::MIN);

/// The greatest row per entity (the order of rows), shared by the workers of one job.
pub(crate) struct NewestRows {
    entities: EntityShards<VersionTable>,
}

impl NewestRows {
    pub(crate) fn new() -> Self {
        NewestRows {
            entities: EntityShards::with_shards(VersionTable::new),
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
            let probes: Vec<Probe> = (rows.iter())
                .map(|&row| shard.probe(&row_keys[row as usize]))
                .collect();
            // Most rows are older than what the table holds for their entity, and each
            // lookup is a cache miss (the table holds every entity of the window). So the
            // lookups' first slots are read first, in a loop of independent loads whose
            // misses overlap; then a pass only finds the slots, with no comparison of versions
            // (one there would mispredict on the ~10% of rows that may win, each misprediction
            // discarding the loads started after it); the comparisons run on what it found. A
            // row they drop would lose below too: what the table holds only grows.
            shard.warm(&probes);
            let found: Vec<Option<SlotIndex>> = (rows.iter().zip(&probes))
                .map(|(&row, probe)| shard.find(&row_keys[row as usize], probe))
                .collect();
            let contenders: Vec<(usize, &Probe, Option<SlotIndex>)> =
                (rows.iter().zip(&probes).zip(&found))
                    .filter(|&((&row, _), &slot)| {
                        let held = slot.map_or(NOTHING_HELD, |slot| shard.version(slot));
                        (event.value(row as usize), created.value(row as usize)) >= held
                    })
                    .map(|((&row, probe), &slot)| (row as usize, probe, slot))
                    .collect();
            // A winner's values live in a vector of their own, a few cache lines long: misses
            // when they are dropped and overwritten below, one winner after another. Reading
            // every value's tag here, in a loop of independent loads, brings them in together.
            for slot in contenders.iter().filter_map(|&(_, _, slot)| slot) {
                for value in shard.values(slot) {
                    std::hint::black_box(std::mem::discriminant(value));
                }
            }
            for (row, probe, _) in contenders {
                let version = (event.value(row), created.value(row));
                let decode = || {
                    features
                        .iter()
                        .map(|c| feature_value(c, row))
                        .collect::<Result<Vec<_>>>()
                };
                // Found again: an entity added for an earlier row may have grown the table,
                // which moves every slot.
                match shard.find(&row_keys[row], probe) {
                    Some(slot) => match version.cmp(&shard.version(slot)) {
                        Ordering::Greater => {
                            // In place: the entity's vector is reused, not freed and
                            // allocated again.
                            let values = shard.replace(slot, version);
                            values.clear();
                            for column in features {
                                values.push(feature_value(column, row)?);
                            }
                        }
                        // An exact version tie: the greater stored bytes win (the rows share
                        // the digest, so their values' encodings decide), whatever the order
                        // rows arrive in.
                        Ordering::Equal => {
                            let values = decode()?;
                            if compare_values(&values, shard.values(slot))? == Ordering::Greater {
                                *shard.replace(slot, version) = values;
                            }
                        }
                        Ordering::Less => {}
                    },
                    None => {
                        // Each row is visited once: its key moves into the table.
                        let key = std::mem::replace(&mut row_keys[row], RowKey::Int(0));
                        shard.insert(key, probe, version, decode()?)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The newest rows, stamped with the component digest.
    pub(crate) fn into_rows(self, digest: &str) -> Vec<(EntityKey, StoredRow)> {
        (self.entities.into_shards())
            .flat_map(VersionTable::into_entries)
            .map(|(key, version, values)| {
                let row = StoredRow {
                    event_ts: version.0,
                    created_ts: version.1,
                    digest: digest.to_owned(),
                    values,
                };
                (key.into_entity_key(), row)
            })
            .collect()
    }
}
