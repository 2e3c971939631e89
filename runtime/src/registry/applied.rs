//! The applied registry: what `skewless apply` last accepted, in `.skewless/registry.json`.
//!
//! For every view it records the component's digest and signature. Materialization and
//! serving load a view's component and refuse it when its digest differs from the record:
//! a transform whose bytes changed must go through `apply` (and its checks) again before it
//! can write or serve a single value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::signature::Signature;

/// The kind of a feature view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewKind {
    /// Materialized from a source table.
    Batch,
    /// Computed per request.
    Request,
}

/// One applied view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedView {
    /// Batch or request-time.
    pub kind: ViewKind,
    /// The component path as written in `skewless.toml`.
    pub transform: PathBuf,
    /// `sha256:<hex>` of the component applied.
    pub digest: String,
    /// Its signature.
    pub signature: Signature,
    /// The offline feature table (batch views).
    pub table: Option<String>,
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
