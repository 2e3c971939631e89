//! The views a push source feeds, and how pushed rows become their online values.
//!
//! [`FedView`] is the seam: a view fed by a source prepares its online update from a batch of
//! source rows (running its component; no I/O), then writes it. Preparing every view before
//! writing any means a component that rejects the rows fails the push before anything is
//! written. [`BatchFed`] is the one kind so far: the view's component over the rows, the
//! newest row per entity, written with the store's monotonic write, exactly as
//! materialization writes them ([`crate::materialize`]'s `Layout` and `NewestRows`).
//! [`AggregateFed`] is the other: an aggregate view's online record describes every row of the
//! entity, so it is rebuilt by the incremental materialization that follows the micro-batch's
//! commit (the same job `skewless materialize --incremental` runs), not written at the push;
//! preparing still runs its component, so rows it rejects fail the push.

use std::fmt::Debug;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::apply::{feature_table_schema, join_keys};
use crate::engine::{Transform, TransformEngine};
use crate::error::Result;
use crate::materialize::{Layout, NewestRows};
use crate::online::{EntityKey, OnlineStore, StoredRow};
use crate::registry::{AggregateViewSpec, AppliedRegistry, BatchViewSpec, FeatureRepo, KeyType};

/// What one view's online store receives for one push.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum Update {
    /// The newest row per entity, written by [`OnlineStore::write`] (never replacing a newer
    /// one).
    Rows(Vec<(EntityKey, StoredRow)>),
    /// Nothing now: the view's online records are rebuilt when the rows are committed.
    AtCommit,
}

impl Update {
    /// Adds `later`'s rows (of the same view) to these: writing both at once writes the same
    /// as writing one then the other, the store keeping the greatest row per key.
    pub(crate) fn extend(&mut self, later: Update) {
        if let (Update::Rows(rows), Update::Rows(more)) = (self, later) {
            rows.extend(more);
        }
    }
}

/// A view fed by a push source. See the [module docs](self).
pub(crate) trait FedView: Send + Sync + Debug {
    /// The view's name.
    fn name(&self) -> &str;

    /// The online update for `rows` (source rows); `arrival_us` stands for the created time
    /// of rows whose source has no created column. Runs the component; writes nothing.
    fn prepare(&self, rows: &RecordBatch, arrival_us: i64) -> Result<Update>;

    /// Writes a prepared update; the number of entities whose value changed.
    fn write(&self, update: &Update, store: &dyn OnlineStore) -> Result<usize> {
        match update {
            Update::Rows(rows) if rows.is_empty() => Ok(0),
            Update::Rows(rows) => Ok(store.write(self.name(), rows)?.written),
            Update::AtCommit => Ok(0),
        }
    }
}

/// A batch view fed by a push source.
#[derive(Debug)]
pub(crate) struct BatchFed {
    name: String,
    transform: Transform,
    keys: Vec<(String, KeyType)>,
    event_ts: String,
    created_ts: Option<String>,
    schema: SchemaRef,
    online: bool,
}

impl BatchFed {
    /// The batch view `view`, its component loaded and its digest checked against the
    /// applied registry.
    pub(crate) fn load(
        repo: &FeatureRepo,
        registry: &AppliedRegistry,
        engine: &TransformEngine,
        view: &BatchViewSpec,
    ) -> Result<Self> {
        let transform = repo.verified_transform(engine, registry, &view.name)?;
        let keys = join_keys(repo, &view.entities);
        let schema = feature_table_schema(&keys, transform.signature());
        Ok(BatchFed {
            name: view.name.clone(),
            transform,
            keys,
            event_ts: view.event_timestamp.clone(),
            created_ts: view.created_timestamp.clone(),
            schema,
            online: view.online,
        })
    }
}

impl FedView for BatchFed {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, rows: &RecordBatch, arrival_us: i64) -> Result<Update> {
        if !self.online || rows.num_rows() == 0 {
            return Ok(Update::Rows(Vec::new()));
        }
        let output = self.transform.run(rows)?;
        let layout = Layout {
            keys: &self.keys,
            event_ts: &self.event_ts,
            created_ts: self.created_ts.as_deref(),
            default_created_us: arrival_us,
            schema: &self.schema,
        };
        let features = layout.features(rows, &output)?;
        let newest = NewestRows::new();
        newest.offer(&features.batch, self.keys.len())?;
        Ok(Update::Rows(newest.into_rows(self.transform.digest())))
    }
}

/// An aggregate view fed by a push source: see the [module docs](self).
#[derive(Debug)]
pub(crate) struct AggregateFed {
    name: String,
    /// Its row transform, if it has one.
    transform: Option<Transform>,
}

impl AggregateFed {
    /// The aggregate view `view`, its component (if any) loaded and its digest checked against
    /// the applied registry.
    pub(crate) fn load(
        repo: &FeatureRepo,
        registry: &AppliedRegistry,
        engine: &TransformEngine,
        view: &AggregateViewSpec,
    ) -> Result<Self> {
        let transform = match view.transform {
            Some(_) => Some(repo.verified_transform(engine, registry, &view.name)?),
            None => None,
        };
        Ok(AggregateFed {
            name: view.name.clone(),
            transform,
        })
    }
}

impl FedView for AggregateFed {
    fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, rows: &RecordBatch, _arrival_us: i64) -> Result<Update> {
        if let Some(transform) = &self.transform
            && rows.num_rows() > 0
        {
            transform.run(rows)?;
        }
        Ok(Update::AtCommit)
    }
}
