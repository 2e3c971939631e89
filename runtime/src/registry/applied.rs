//! The applied registry: what `skewless apply` last accepted, in `.skewless/registry.json`.
//!
//! For every view it records the component's digest and signature. Materialization and
//! serving load a view's component and refuse it when its digest differs from the record:
//! a transform whose bytes changed must go through `apply` (and its checks) again before it
//! can write or serve a single value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregation;
use crate::error::{Error, ErrorKind, Result};
use crate::registry::AggregationSpec;
use crate::signature::Signature;

/// The kind of a feature view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewKind {
    /// Materialized from a source table.
    Batch,
    /// Computed per request.
    Request,
    /// Windowed aggregations over a source table (`[[aggregate_view]]`): its feature table
    /// holds the rows aggregated, its features are the aggregations.
    Aggregate,
}

/// One applied view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedView {
    /// Batch, request-time or aggregate.
    pub kind: ViewKind,
    /// The component path as written in `skewless.toml`; `None` for an aggregate view that
    /// aggregates its source's columns as they are.
    pub transform: Option<PathBuf>,
    /// `sha256:<hex>` of the component applied, or [`NO_TRANSFORM`].
    pub digest: String,
    /// The component's signature. For an aggregate view without a transform, the identity
    /// over the source columns its aggregations read: either way, `outputs` are the columns
    /// the view's feature table stores beside the keys and timestamps.
    pub signature: Signature,
    /// The offline feature table (batch and aggregate views).
    pub table: Option<String>,
    /// The aggregations of an aggregate view, as declared (its features, in order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aggregations: Vec<AggregationSpec>,
}

/// The digest recorded for an aggregate view without a transform.
pub const NO_TRANSFORM: &str = "none";

impl AppliedView {
    /// The view's feature names: its aggregations for an aggregate view, its component's
    /// outputs otherwise.
    pub fn features(&self) -> Vec<&str> {
        match self.kind {
            ViewKind::Aggregate => self.aggregations.iter().map(|a| a.name.as_str()).collect(),
            ViewKind::Batch | ViewKind::Request => self
                .signature
                .outputs
                .iter()
                .map(|f| f.name.as_str())
                .collect(),
        }
    }

    /// The aggregations of an aggregate view, resolved against the columns its feature table
    /// stores (empty for other views). `apply` checked them; an error here means the registry
    /// was edited by hand.
    pub fn resolved_aggregations(&self) -> Result<Vec<Aggregation>> {
        let columns: Vec<String> = self
            .signature
            .outputs
            .iter()
            .map(|f| f.name.clone())
            .collect();
        let column_type = |name: &str| self.signature.output(name).map(|f| f.data_type);
        self.aggregations
            .iter()
            .map(|spec| {
                Aggregation::resolve(spec, column_type, &columns).map_err(|problem| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "the applied registry's aggregate view does not check ({problem}); \
                             run `skewless apply` to rewrite it"
                        ),
                    )
                })
            })
            .collect()
    }
}

/// The whole record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRegistry {
    /// Project name.
    pub project: String,
    /// Views by name.
    pub views: BTreeMap<String, AppliedView>,
}

impl AppliedRegistry {
    /// Reads the record at `path`; `None` when the repo was never applied.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::from(e).with_context("file", path.display())),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the applied registry is corrupt ({e}); run `skewless apply` to rewrite it"
                ),
            )
            .with_context("file", path.display())
            .with_source(e)
        })
    }

    /// Writes the record atomically (a temporary file, then a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let tmp: PathBuf = path.with_extension("json.tmp");
            let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
            std::fs::write(&tmp, json)?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| Error::from(e).with_context("file", path.display()))
    }
}
