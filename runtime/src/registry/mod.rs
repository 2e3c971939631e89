//! The feature repo: a folder whose `skewless.toml` declares stores, entities, feature views
//! and feature services.
//!
//! [`RepoSpec`] is the file as written, checked for structural problems; `apply` checks it
//! against the data and writes the [`AppliedRegistry`], which records each view's component
//! digest; [`FeatureRepo`] ties the folder, its stores and the registry together.

mod applied;
mod duration;
mod repo;
mod spec;

pub use applied::{AppliedRegistry, AppliedView, NO_TRANSFORM, ViewKind};
pub use duration::parse_duration;
pub use repo::{FEATURE_NAMESPACE, FeatureRepo, OpenedRepo, RepoContext, new_runtime};
pub(crate) use repo::{problems_error, unknown_feature_service};
pub use spec::{
    AggregateViewSpec, AggregationSpec, BatchViewSpec, EntitySpec, FeatureRef, FeatureServiceSpec,
    JoinKeySpec, KeyType, OfflineSpec, OnlineSpec, ProjectSpec, PushSourceSpec, PushSpec,
    REPO_FILE, RepoSpec, RequestInputSpec, RequestViewSpec,
};

#[cfg(test)]
mod tests;
