//! A feature repo in a temporary folder, with real components, a real Iceberg catalog on
//! SQLite and a real online store, driven through the library as the CLI drives it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::RecordBatch;
use skewless_runtime::apply::{self, Plan};
use skewless_runtime::materialize::{Job, Materialized, Options};
use skewless_runtime::offline::{OfflineStore, ScanOptions, TableName};
use skewless_runtime::online::OnlineStore;
use skewless_runtime::registry::{FeatureRepo, OpenedRepo};
use skewless_runtime::{Result, files};

/// A feature repo under a temporary folder.
#[derive(Debug)]
pub struct TestRepo {
    dir: tempfile::TempDir,
    /// Drives the offline store.
    pub rt: tokio::runtime::Runtime,
}

impl TestRepo {
    /// A repo whose `skewless.toml` is `toml`, with `{TRANSACTION_FEATURES}`,
    /// `{TIME_FEATURES}`, `{HOSTILE}` and `{REQUEST_AMOUNT_RATIO}` replaced by component paths.
    pub fn new(toml: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let toml = toml
            .replace(
                "{TRANSACTION_FEATURES}",
                crate::components::TRANSACTION_FEATURES,
            )
            .replace("{TIME_FEATURES}", crate::components::TIME_FEATURES)
            .replace("{HOSTILE}", crate::components::HOSTILE_GUEST)
            .replace(
                "{REQUEST_AMOUNT_RATIO}",
                crate::components::REQUEST_AMOUNT_RATIO,
            );
        std::fs::write(dir.path().join("skewless.toml"), toml).expect("write skewless.toml");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        TestRepo { dir, rt }
    }

    /// The repo folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Opens the repo (parse + structural checks).
    pub fn open(&self) -> Result<FeatureRepo> {
        FeatureRepo::open(self.path())
    }

    /// Opens the repo's offline store.
    pub fn offline(&self) -> OfflineStore {
        let repo = self.open().expect("repo opens");
        self.rt
            .block_on(OfflineStore::open(&repo.offline_config()))
            .expect("offline store opens")
    }

    /// Writes `batches` to a Parquet file in the repo and ingests it into `table`.
    pub fn ingest(&self, table: &str, name: &str, batches: &[RecordBatch]) {
        let path: PathBuf = self.path().join(name);
        let mut sink = files::ParquetSink::create(&path, batches[0].schema()).unwrap();
        for b in batches {
            sink.write(b).unwrap();
        }
        sink.finish().unwrap();
        let table = TableName::parse(table).unwrap();
        self.rt
            .block_on(skewless_runtime::ingest::ingest(
                &self.offline(),
                &table,
                &path,
                true,
            ))
            .expect("ingest");
    }

    /// Appends `batches` to `table` as one snapshot (its id): the rows a materialization
    /// would write, for tests of what reads a feature table.
    pub fn append(&self, table: &str, batches: &[RecordBatch]) -> i64 {
        let table = TableName::parse(table).unwrap();
        let offline = self.offline();
        self.rt.block_on(async {
            let mut job = offline.begin_append(&table).await.expect("append begins");
            for b in batches {
                job.write(b.clone())
                    .await
                    .expect("rows align with the table");
            }
            job.commit(Default::default())
                .await
                .expect("append commits")
                .snapshot_id
        })
    }

    /// `skewless plan`.
    pub fn plan(&self) -> Result<Plan> {
        let repo = self.open()?;
        self.rt
            .block_on(apply::plan(&repo, &repo.engine()?, &self.offline()))
    }

    /// `skewless apply`.
    pub fn apply(&self) -> Result<Plan> {
        let repo = self.open()?;
        self.rt
            .block_on(apply::apply(&repo, &repo.engine()?, &self.offline()))
    }

    /// `skewless materialize <view>` against `online`.
    pub fn materialize(
        &self,
        view: &str,
        options: &Options,
        online: &dyn OnlineStore,
    ) -> Result<Materialized> {
        let opened = OpenedRepo::open(self.path())?;
        let job = Job {
            context: opened.context(),
            online,
        };
        job.run(view, options, &|_| {})
    }

    /// Every row of `table` (at `snapshot`, or the current one).
    pub fn scan(&self, table: &str, snapshot: Option<i64>) -> Vec<RecordBatch> {
        let mut options = ScanOptions::default();
        if let Some(s) = snapshot {
            options = options.snapshot(s);
        }
        let table = TableName::parse(table).unwrap();
        self.rt
            .block_on(self.offline().scan_collect(&table, options))
            .expect("scan")
    }

    /// The repo's online store as configured.
    pub fn online(&self) -> Arc<dyn OnlineStore> {
        let repo = self.open().expect("repo opens");
        skewless_runtime::online::open(&repo.online_config()).expect("online store opens")
    }
}
