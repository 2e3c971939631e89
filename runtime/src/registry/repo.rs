//! A feature repo on disk: its folder, its checked `skewless.toml`, its stores and registry.

use std::path::{Path, PathBuf};

use super::applied::AppliedRegistry;
use super::spec::{BatchViewSpec, FeatureServiceSpec, OfflineSpec, OnlineSpec, RepoSpec};
use crate::engine::{Transform, TransformEngine};
use crate::error::{Error, ErrorKind, Result};
use crate::offline::{OfflineConfig, TableName};
use crate::online::OnlineConfig;

/// The namespace of the offline feature tables, one per batch view.
pub const FEATURE_NAMESPACE: &str = "features";

/// A feature repo whose `skewless.toml` parsed and passed the structural checks.
#[derive(Debug, Clone)]
pub struct FeatureRepo {
    dir: PathBuf,
    spec: RepoSpec,
}

impl FeatureRepo {
    /// Opens the repo in `dir`: parses `skewless.toml` and runs the structural checks; every
    /// problem found is listed in the error.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = std::path::absolute(dir.as_ref())?;
        let spec = RepoSpec::load(&dir)?;
        let problems = spec.check(&dir);
        if !problems.is_empty() {
            return Err(problems_error(&problems).with_context("repo", dir.display()));
        }
        Ok(FeatureRepo { dir, spec })
    }

    /// The repo folder (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The declarations.
    pub fn spec(&self) -> &RepoSpec {
        &self.spec
    }

    /// `.skewless/`: the embedded stores, the compiled cache and the registry.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join(".skewless")
    }

    /// Where `apply` records what it accepted.
    pub fn registry_path(&self) -> PathBuf {
        self.state_dir().join("registry.json")
    }

    /// The applied registry; an error telling to run `apply` when there is none.
    pub fn applied(&self) -> Result<AppliedRegistry> {
        AppliedRegistry::load(&self.registry_path())?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "this feature repo has not been applied yet; run `skewless apply` first",
            )
            .with_context("repo", self.dir.display())
        })
    }

    /// An engine whose compiled cache lives in `.skewless/compiled`.
    pub fn engine(&self) -> Result<TransformEngine> {
        TransformEngine::builder()
            .cache_dir(self.state_dir().join("compiled"))
            .build()
    }

    /// The offline store's configuration, defaults and relative paths resolved.
    pub fn offline_config(&self) -> OfflineConfig {
        match &self.spec.offline {
            OfflineSpec::Sql { uri, warehouse } => {
                let state = self.state_dir();
                let uri = match uri {
                    None => format!("sqlite:{}?mode=rwc", state.join("catalog.db").display()),
                    Some(uri) => match uri.strip_prefix("sqlite:") {
                        Some(path) if !path.starts_with('/') => {
                            format!("sqlite:{}", self.dir.join(path).display())
                        }
                        _ => uri.clone(),
                    },
                };
                let warehouse = warehouse
                    .as_ref()
                    .map_or_else(|| state.join("warehouse"), |w| self.dir.join(w));
                OfflineConfig::Sql { uri, warehouse }
            }
            OfflineSpec::Rest {
                uri,
                warehouse,
                props,
                s3,
                login_with_s3_keys,
            } => OfflineConfig::Rest {
                uri: uri.clone(),
                warehouse: warehouse.clone(),
                props: props.clone(),
                s3: s3.clone(),
                login_with_s3_keys: *login_with_s3_keys,
            },
        }
    }

    /// The online store's configuration, defaults and relative paths resolved.
    pub fn online_config(&self) -> OnlineConfig {
        match &self.spec.online {
            OnlineSpec::Embedded { path, map_size } => OnlineConfig::Embedded {
                path: path.as_ref().map_or_else(
                    || self.state_dir().join("online.lmdb"),
                    |p| self.dir.join(p),
                ),
                map_size: *map_size,
            },
            OnlineSpec::Redis { url } => OnlineConfig::Redis { url: url.clone() },
            OnlineSpec::RedisCluster { nodes } => OnlineConfig::RedisCluster {
                nodes: nodes.clone(),
            },
            OnlineSpec::DynamoDb(config) => OnlineConfig::DynamoDb(config.clone()),
        }
    }

    /// The batch view called `name`; an error listing the known views otherwise.
    pub fn batch_view(&self, name: &str) -> Result<&BatchViewSpec> {
        self.spec
            .batch_views
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self
                    .spec
                    .batch_views
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect();
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "there is no batch view `{name}` (batch views: [{}])",
                        known.join(", ")
                    ),
                )
            })
    }

    /// The feature service called `name`; an error listing the known ones when there is none.
    pub fn feature_service(&self, name: &str) -> Result<&FeatureServiceSpec> {
        let services = &self.spec.feature_services;
        services
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| unknown_feature_service(name, services.iter().map(|s| s.name.as_str())))
    }

    /// The offline feature table of a batch view.
    pub fn feature_table(&self, view: &str) -> Result<TableName> {
        TableName::new(FEATURE_NAMESPACE, view)
    }

    /// Loads the component of view `name` and checks its digest against the applied registry,
    /// so a component whose bytes changed since `apply` is refused, naming both digests.
    pub fn verified_transform(
        &self,
        engine: &TransformEngine,
        registry: &AppliedRegistry,
        name: &str,
    ) -> Result<Transform> {
        let applied = registry.views.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("view `{name}` is not in the applied registry; run `skewless apply`"),
            )
        })?;
        // The component the repo declares now: a path edited since `apply` is a change too.
        let spec = &self.spec;
        let declared = (spec.batch_views.iter())
            .find(|v| v.name == name)
            .map(|v| Some(&v.transform))
            .or_else(|| {
                (spec.request_views.iter())
                    .find(|v| v.name == name)
                    .map(|v| Some(&v.transform))
            })
            .or_else(|| {
                (spec.aggregate_views.iter())
                    .find(|v| v.name == name)
                    .map(|v| v.transform.as_ref())
            })
            .unwrap_or(applied.transform.as_ref())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("view `{name}` has no transform: it aggregates its source's columns"),
                )
            })?;
        let path = self.dir.join(declared);
        let transform = engine.load_file(&path)?;
        if transform.digest() != applied.digest {
            return Err(Error::new(
                ErrorKind::InvalidComponent,
                format!(
                    "the component of view `{name}` changed since the last `skewless apply` \
                     (applied {}, found {}); run `skewless apply` to check and register it",
                    applied.digest,
                    transform.digest()
                ),
            )
            .with_context("file", path.display()));
        }
        Ok(transform)
    }
}

/// The handles every job on a repo uses, opened once by the caller: the repo, its applied
/// registry, the engine, the offline store and the runtime that drives it.
#[derive(Debug, Clone, Copy)]
pub struct RepoContext<'a> {
    /// The repo.
    pub repo: &'a FeatureRepo,
    /// Its applied registry.
    pub registry: &'a AppliedRegistry,
    /// The engine.
    pub engine: &'a TransformEngine,
    /// The offline store.
    pub offline: &'a crate::offline::OfflineStore,
    /// The runtime that drives the offline store.
    pub runtime: &'a tokio::runtime::Runtime,
}

/// A repo opened for jobs: owns everything a [`RepoContext`] lends out.
#[derive(Debug)]
pub struct OpenedRepo {
    repo: FeatureRepo,
    registry: AppliedRegistry,
    engine: TransformEngine,
    offline: crate::offline::OfflineStore,
    runtime: tokio::runtime::Runtime,
}

impl OpenedRepo {
    /// Opens the repo in `dir` (which must have been applied), its engine and offline store.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let runtime = new_runtime()?;
        let repo = FeatureRepo::open(dir)?;
        let registry = repo.applied()?;
        let engine = repo.engine()?;
        let offline =
            runtime.block_on(crate::offline::OfflineStore::open(&repo.offline_config()))?;
        Ok(OpenedRepo {
            repo,
            registry,
            engine,
            offline,
            runtime,
        })
    }

    /// The same repo, its offline scans stopping once `interrupt` is requested (see
    /// [`crate::interrupt`]).
    pub fn with_interrupt(mut self, interrupt: crate::interrupt::Interrupt) -> Self {
        self.offline = self.offline.with_interrupt(interrupt);
        self
    }

    /// The handles, borrowed.
    pub fn context(&self) -> RepoContext<'_> {
        RepoContext {
            repo: &self.repo,
            registry: &self.registry,
            engine: &self.engine,
            offline: &self.offline,
            runtime: &self.runtime,
        }
    }
}

/// The runtime that drives the offline store: two workers are plenty, the heavy work (scans
/// and transforms) runs on the jobs' own threads.
pub fn new_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("could not start the async runtime: {e}"),
            )
        })
}

/// One error listing every problem, one per line.
pub(crate) fn problems_error(problems: &[String]) -> Error {
    let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "the feature repo has {} problem{}:\n{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            list.join("\n")
        ),
    )
}

/// The error for a feature service that is not declared, listing the `known` ones.
pub(crate) fn unknown_feature_service<'a>(
    name: &str,
    known: impl Iterator<Item = &'a str>,
) -> Error {
    let known: Vec<&str> = known.collect();
    Error::new(
        ErrorKind::NotFound,
        format!(
            "there is no feature service `{name}` (feature services: [{}])",
            known.join(", ")
        ),
    )
}
