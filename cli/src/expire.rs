//! `skewless expire`: remove old snapshots of feature tables (or any table) and the files
//! only they referenced.

use clap::Args;

use super::output::outln;
use super::repo::RepoArg;
use skewless_runtime::error::{Error, ErrorKind, Result};
use skewless_runtime::offline::{OfflineStore, TableName};
use skewless_runtime::registry::{FeatureRepo, new_runtime, parse_duration};

#[derive(Debug, Args)]
pub(super) struct ExpireArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// Batch views whose feature tables to expire.
    #[arg(required_unless_present_any = ["all", "table"])]
    views: Vec<String>,
    /// Every batch view's feature table.
    #[arg(long, conflicts_with = "views")]
    all: bool,
    /// Tables by name (`namespace.table`), e.g. a source table. Expiring a source's
    /// snapshots that an incremental run has not processed yet makes that run ask for a
    /// full materialization.
    #[arg(long, value_name = "NAMESPACE.TABLE")]
    table: Vec<String>,
    /// Remove snapshots committed longer ago than this (`7d`, `12h`, `1d12h`).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    older_than: String,
    /// Keep at least this many of the newest snapshots of each table, whatever their age.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    retain_last: u32,
}

pub(super) fn expire(args: &ExpireArgs) -> Result<()> {
    let age =
        parse_duration(&args.older_than).map_err(|e| e.with_context("flag", "--older-than"))?;
    let cutoff_ms =
        skewless_runtime::micros::now() / 1000 - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
    let rt = new_runtime()?;
    let repo = FeatureRepo::open(args.repo.path())?;
    let offline = rt.block_on(OfflineStore::open(&repo.offline_config()))?;
    let views: Vec<String> = match args.all {
        true => repo
            .spec()
            .batch_views
            .iter()
            .map(|v| v.name.clone())
            .collect(),
        false => args.views.clone(),
    };
    let mut tables = views
        .iter()
        .map(|v| repo.feature_table(v))
        .collect::<Result<Vec<_>>>()?;
    for name in &args.table {
        tables.push(TableName::parse(name)?);
    }
    for table in tables {
        if !rt.block_on(offline.table_exists(&table))? {
            return Err(Error::new(
                ErrorKind::NotFound,
                "the table does not exist in the offline store (run `skewless apply`?)",
            )
            .with_context("table", &table));
        }
        let done =
            rt.block_on(offline.expire_snapshots(&table, cutoff_ms, args.retain_last as usize))?;
        outln!(
            "{table}: {} snapshot(s) expired, {} data file(s) ({:.1} MiB) and {} manifest file(s) deleted",
            done.snapshots.len(),
            done.data_files,
            done.data_bytes as f64 / f64::from(1 << 20),
            done.metadata_files
        );
    }
    Ok(())
}
