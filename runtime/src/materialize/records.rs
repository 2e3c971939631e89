//! The online records of an aggregate view's entities, built by one materialization run.
//!
//! A record (`aggregate::Record`) holds an entity's recent rows and the lifetime states of its
//! older ones, so it must describe **every** row the feature table holds for the entity once
//! the run commits, not only the rows the run read. The run therefore builds the records of
//! the entities it *touches* from two inputs:
//!
//! 1. the rows the run writes, offered by the worker threads as they are transformed;
//! 2. for an incremental run or a window backfill, the rows the feature table already holds
//!    for those entities and keeps (all of them for an incremental run, which appends; those
//!    outside the window for a backfill, which replaces the window: an entity whose rows in
//!    the window are replaced is touched too, even if the window now holds none of its rows).
//!    A full run replaces everything, so it reads nothing back.
//!
//! (The other way, merging the new rows into the stored records, would be cheaper but is only
//! right when the stored record is exactly the previous run's, which a failed commit or a
//! lost online store breaks; re-reading the feature table is right whatever happened before.)
//!
//! Memory: per touched entity, its rows newer than the record's cut (the longest window and
//! a margin before the job's time) and one state per lifetime aggregation; older rows are
//! folded as they pass. Entities the run does not touch cost nothing.

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;

use super::shards::{EntityShards, Shard};
use super::values::{RowKey, feature_value};
use crate::aggregate::{RecordBuilder, RecordLayout, encode_record};
use crate::error::Result;
use crate::online::{EntityKey, FeatureValue, StoredRow};

/// The records being built, sharded by entity so that workers rarely wait on each other.
pub(crate) struct Records<'a> {
    layout: &'a RecordLayout,
    job_now: i64,
    entities: EntityShards<Shard<RecordBuilder>>,
}

/// Where a batch's columns are: `keys` join-key columns first, then `event_ts` and
/// `created_ts`, and the record's columns at `values`.
pub(crate) struct Columns<'c> {
    pub(crate) keys: usize,
    pub(crate) values: &'c [usize],
}

impl<'a> Records<'a> {
    pub(crate) fn new(layout: &'a RecordLayout, job_now: i64) -> Self {
        Records {
            layout,
            job_now,
            entities: EntityShards::new(),
        }
    }

    /// Offers every row of a batch the run writes: each touches its entity.
    pub(crate) fn offer(&self, batch: &RecordBatch, at: &Columns<'_>) -> Result<()> {
        self.add(batch, at, |_| Keep::Touch)
    }

    /// Offers the rows the feature table holds, deciding by each row's event time with
    /// `keep` (see [`Keep`]).
    pub(crate) fn offer_stored(
        &self,
        batch: &RecordBatch,
        at: &Columns<'_>,
        keep: impl Fn(i64) -> Keep,
    ) -> Result<()> {
        self.add(batch, at, keep)
    }

    fn add(&self, batch: &RecordBatch, at: &Columns<'_>, keep: impl Fn(i64) -> Keep) -> Result<()> {
        let event = batch
            .column(at.keys)
            .as_primitive::<TimestampMicrosecondType>();
        let created = batch
            .column(at.keys + 1)
            .as_primitive::<TimestampMicrosecondType>();
        for row in 0..batch.num_rows() {
            let decision = keep(event.value(row));
            if decision == Keep::Skip {
                continue;
            }
            let key = RowKey::of(batch, at.keys, row);
            let mut shard = self.entities.shard(&key);
            // One probe of the entity's shard per row: a full run offers millions.
            let builder = match decision {
                Keep::Skip => continue,
                Keep::TouchOnly => {
                    shard
                        .entry(key)
                        .or_insert_with(|| self.layout.builder(self.job_now));
                    continue;
                }
                Keep::Touch => shard
                    .entry(key)
                    .or_insert_with(|| self.layout.builder(self.job_now)),
                Keep::IfTouched => match shard.get_mut(&key) {
                    Some(builder) => builder,
                    None => continue,
                },
            };
            let values = || {
                (at.values.iter())
                    .map(|&c| feature_value(batch.column(c), row))
                    .collect::<Result<Vec<FeatureValue>>>()
            };
            builder.add_with(self.layout, event.value(row), created.value(row), values)?;
        }
        Ok(())
    }

    /// The records as stored rows: one binary value (the encoded record), stamped with the
    /// component digest and the run's `version` (see `materialize`'s module docs).
    pub(crate) fn into_rows(
        self,
        digest: &str,
        version: (i64, i64),
    ) -> Vec<(EntityKey, StoredRow)> {
        let layout = self.layout;
        self.entities
            .into_entries()
            .map(|(key, builder)| {
                let record = builder.finish(layout);
                let row = StoredRow {
                    event_ts: version.0,
                    created_ts: version.1,
                    digest: digest.to_owned(),
                    values: vec![FeatureValue::Binary(encode_record(&record))],
                };
                (key.into_entity_key(), row)
            })
            .collect()
    }
}

/// What to do with a row offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Add it, touching its entity.
    Touch,
    /// Add it if its entity is touched.
    IfTouched,
    /// Do not add it, but touch its entity (a row the run replaces).
    TouchOnly,
    /// Ignore it.
    Skip,
}
