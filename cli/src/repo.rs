//! The feature-repo commands: `plan`, `apply`, `ingest`, `materialize`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::runtime::Runtime;

use super::output::outln;
use skewless_runtime::error::{Error, ErrorKind, Result};
use skewless_runtime::materialize::{self, Job, Options};
use skewless_runtime::offline::{OfflineStore, TableName};
use skewless_runtime::registry::{FeatureRepo, OpenedRepo, RepoContext, new_runtime};

/// `--repo`, shared by the repo commands.
#[derive(Debug, Args)]
pub(super) struct RepoArg {
    /// The feature repo: a folder with a `skewless.toml`.
    #[arg(long, default_value = ".", value_name = "DIR")]
    repo: PathBuf,
}

impl RepoArg {
    /// The repo folder.
    pub(super) fn path(&self) -> &std::path::Path {
        &self.repo
    }
}

#[derive(Debug, Args)]
pub(super) struct IngestArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// The source table, `namespace.table`.
    table: String,
    /// The file to append: `.parquet` or `.csv`.
    #[arg(long)]
    from: PathBuf,
    /// Create the table from the file's schema if it does not exist.
    #[arg(long)]
    create: bool,
}

#[derive(Debug, Args)]
pub(super) struct MaterializeArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// Batch or aggregate views to materialize.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    views: Vec<String>,
    /// Materialize every batch and aggregate view.
    #[arg(long)]
    all: bool,
    /// Backfill: window start (RFC 3339, e.g. 2026-08-01T00:00:00Z), the beginning of time by
    /// default. The window's rows replace what the feature table held for it; they are read
    /// from the source as of the last processed snapshot (newer appends are the next
    /// --incremental run's). Without --start and --end: a full run, replacing everything.
    #[arg(long)]
    start: Option<String>,
    /// Backfill: window end, exclusive (RFC 3339); the end of time by default.
    #[arg(long)]
    end: Option<String>,
    /// Process exactly the rows appended to the source since the last processed source
    /// snapshot, whatever their event times (late rows included); the first run processes
    /// the whole source.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    incremental: bool,
}

fn open(repo: &RepoArg, rt: &Runtime) -> Result<(FeatureRepo, OfflineStore)> {
    let repo = FeatureRepo::open(&repo.repo)?;
    let offline = rt.block_on(OfflineStore::open(&repo.offline_config()))?;
    Ok((repo, offline))
}

pub(super) fn plan(repo: &RepoArg, apply: bool) -> Result<()> {
    let rt = new_runtime()?;
    let (repo, offline) = open(repo, &rt)?;
    let engine = repo.engine()?;
    let plan = match apply {
        true => rt.block_on(skewless_runtime::apply::apply(&repo, &engine, &offline))?,
        false => rt.block_on(skewless_runtime::apply::plan(&repo, &engine, &offline))?,
    };
    for change in &plan.changes {
        outln!("{change}");
    }
    if !plan.problems.is_empty() {
        outln!("{} problem(s) stop `apply`:", plan.problems.len());
        for p in &plan.problems {
            outln!("  - {p}");
        }
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the feature repo has problems (listed above)",
        ));
    }
    let verb = if apply {
        "applied"
    } else {
        "no problems; `skewless apply` would make"
    };
    outln!("{verb} {} change(s)", plan.changes.len());
    Ok(())
}

pub(super) fn ingest(args: &IngestArgs) -> Result<()> {
    let rt = new_runtime()?;
    let (_, offline) = open(&args.repo, &rt)?;
    let table = TableName::parse(&args.table)?;
    let done = rt
        .block_on(skewless_runtime::ingest::ingest(
            &offline,
            &table,
            &args.from,
            args.create,
        ))
        .map_err(|e| e.with_context("file", args.from.display()))?;
    outln!(
        "{} rows -> {table}{} (snapshot {})",
        done.rows,
        if done.created { " (created)" } else { "" },
        done.snapshot.snapshot_id
    );
    Ok(())
}

pub(super) fn materialize(args: &MaterializeArgs) -> Result<()> {
    let opened = OpenedRepo::open(&args.repo.repo)?;
    let context = opened.context();
    let repo = context.repo;
    let online = skewless_runtime::online::open(&repo.online_config())?;
    let views: Vec<String> = match args.all {
        true => (repo.spec().batch_views.iter().map(|v| v.name.clone()))
            .chain(repo.spec().aggregate_views.iter().map(|v| v.name.clone()))
            .collect(),
        false => args.views.clone(),
    };
    let options = Options {
        start_us: args
            .start
            .as_deref()
            .map(|t| skewless_runtime::micros::parse_time("--start", t))
            .transpose()?,
        end_us: args
            .end
            .as_deref()
            .map(|t| skewless_runtime::micros::parse_time("--end", t))
            .transpose()?,
        incremental: args.incremental,
        threads: 0,
        now_us: None,
        hook: None,
    };
    let job = Job {
        context,
        online: online.as_ref(),
    };
    for view in views {
        let bar = progress_bar(&view);
        let done = job.run(&view, &options, &|rows| bar.inc(rows))?;
        bar.finish_and_clear();
        print_summary(&done);
    }
    Ok(())
}

fn print_summary(done: &materialize::Materialized) {
    if let Some(why) = &done.skipped {
        outln!("{}: nothing to do: {why}", done.view);
        return;
    }
    let secs = done.elapsed.as_secs_f64().max(1e-9);
    let snapshot = done.snapshot.as_ref().map_or(0, |s| s.snapshot_id);
    let dropped = match done.dropped_rows {
        0 => String::new(),
        n => format!(", {n} rows dropped for a null key or event time"),
    };
    let source = match (done.from_snapshot, done.source_snapshot) {
        (Some(from), Some(to)) => format!("source snapshots after {from} up to {to}"),
        (None, Some(read)) => format!("source snapshot {read}"),
        _ => "source".to_owned(),
    };
    outln!(
        "{}: {} rows in {secs:.2} s ({:.0} rows/s), {} entities online{dropped}; {} from {source}; snapshot {snapshot}; {}",
        done.view,
        done.rows,
        done.rows as f64 / secs,
        done.online_written,
        done.mode,
        done.digest
    );
}

fn progress_bar(view: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_prefix(view.to_owned());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {prefix}: {human_pos} rows ({per_sec}) {msg} {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

#[derive(Debug, Args)]
pub(super) struct GetArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// The batch or aggregate view to read.
    view: String,
    /// Entity keys: the join-key values in order, comma-separated for composite keys
    /// (`42`, `42,EUR`); several keys read several entities.
    #[arg(required = true)]
    keys: Vec<String>,
}

/// `skewless get`: the online values of entities, with their status (TTL applied at the
/// time of the read, as serving does).
pub(super) fn get(args: &GetArgs) -> Result<()> {
    use skewless_runtime::online::{EntityKey, KeyValue, status_at};
    use skewless_runtime::registry::KeyType;

    let repo = FeatureRepo::open(&args.repo.repo)?;
    let registry = repo.applied()?;
    let aggregate = (repo.spec().aggregate_views.iter()).find(|v| v.name == args.view);
    let entities = match aggregate {
        Some(view) => &view.entities,
        None => &repo.batch_view(&args.view)?.entities,
    };
    let applied = registry.views.get(&args.view).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("view `{}` is not applied; run `skewless apply`", args.view),
        )
    })?;
    let key_types = skewless_runtime::apply::join_keys(&repo, entities);
    let keys = args
        .keys
        .iter()
        .map(|text| {
            let parts: Vec<&str> = text.split(',').collect();
            if parts.len() != key_types.len() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "key `{text}` has {} value(s); view `{}` is keyed by [{}]",
                        parts.len(),
                        args.view,
                        key_types
                            .iter()
                            .map(|(k, _)| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            let values = parts
                .iter()
                .zip(&key_types)
                .map(|(part, (name, t))| match t {
                    KeyType::Utf8 => Ok(KeyValue::Utf8((*part).to_owned())),
                    KeyType::Int32 | KeyType::Int64 => {
                        part.trim().parse().map(KeyValue::Int64).map_err(|_| {
                            Error::new(
                                ErrorKind::InvalidInput,
                                format!("join key `{name}` must be an integer, got `{part}`"),
                            )
                        })
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(EntityKey(values))
        })
        .collect::<Result<Vec<_>>>()?;
    let online = skewless_runtime::online::open(&repo.online_config())?;
    if aggregate.is_some() {
        return get_aggregates(&repo, &registry, online, &args.view, &key_types, &keys);
    }
    let view = repo.batch_view(&args.view)?;
    let rows = online.read(&args.view, &keys)?;
    let ttl = skewless_runtime::registry::RepoSpec::ttl(view)?;
    let now = skewless_runtime::micros::now();
    for (key, row) in keys.iter().zip(&rows) {
        outln!("{} {key}", args.view);
        for (i, field) in applied.signature.outputs.iter().enumerate() {
            let status = status_at(row.as_ref(), i, ttl, now);
            let value = row
                .as_ref()
                .and_then(|r| r.values.get(i))
                .map_or_else(|| "-".to_owned(), display_value);
            outln!("  {:28} {:12} {value}", field.name, status.as_str());
        }
    }
    Ok(())
}

/// `skewless get` of an aggregate view: every aggregation's value now, computed from the
/// online records exactly as the server computes it (one request through [`OnlineServing`]).
///
/// [`OnlineServing`]: skewless_runtime::serving::OnlineServing
fn get_aggregates(
    repo: &FeatureRepo,
    registry: &skewless_runtime::registry::AppliedRegistry,
    online: std::sync::Arc<dyn skewless_runtime::online::OnlineStore>,
    view: &str,
    key_types: &[(String, skewless_runtime::registry::KeyType)],
    keys: &[skewless_runtime::online::EntityKey],
) -> Result<()> {
    use serde_json::{Map, Value};
    use skewless_runtime::online::KeyValue;

    let engine = repo.engine()?;
    let serving = skewless_runtime::serving::OnlineServing::open(repo, registry, &engine, online)?;
    let mut entities = Map::new();
    for (i, (name, _)) in key_types.iter().enumerate() {
        let column = (keys.iter())
            .map(|k| match &k.0[i] {
                KeyValue::Int64(v) => Value::from(*v),
                KeyValue::Utf8(v) => Value::from(v.as_str()),
            })
            .collect();
        entities.insert(name.clone(), Value::Array(column));
    }
    let request = skewless_runtime::serving::FeatureRequest {
        features: Some(vec![format!("{view}:*")]),
        entities,
        ..Default::default()
    };
    let answer = serving.get(&request)?;
    for (row, key) in keys.iter().enumerate() {
        outln!("{view} {key}");
        for column in &answer.features {
            outln!(
                "  {:28} {:12} {}",
                column.feature,
                column.statuses[row].as_str(),
                display_value(&column.values[row])
            );
        }
    }
    Ok(())
}

fn display_value(value: &skewless_runtime::online::FeatureValue) -> String {
    use skewless_runtime::online::FeatureValue as V;
    match value {
        V::Null => "null".into(),
        V::Boolean(v) => v.to_string(),
        V::Int32(v) => v.to_string(),
        V::Int64(v) => v.to_string(),
        V::Float32(v) => v.to_string(),
        V::Float64(v) => v.to_string(),
        V::Utf8(v) => format!("{v:?}"),
        V::Binary(v) => format!("0x{}", hex::encode(v)),
        V::Timestamp(us) => format!("{us} µs"),
        V::Float32Vector(v) => format!("{v:?}"),
        V::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(display_value)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[derive(Debug, Args)]
pub(super) struct HistoricalArgs {
    #[command(flatten)]
    repo: RepoArg,
    /// Entity rows: join keys, `event_timestamp` (the label time) and any other columns
    /// (`.parquet` or `.csv`).
    #[arg(long)]
    entities: PathBuf,
    /// Features, comma-separated: `view:feature` or `view:*`.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "service",
        conflicts_with = "service"
    )]
    features: Vec<String>,
    /// A feature service declared in `skewless.toml`.
    #[arg(long)]
    service: Option<String>,
    /// Output Parquet file.
    #[arg(long)]
    out: PathBuf,
    /// Name feature columns `view__feature`.
    #[arg(long)]
    full_feature_names: bool,
    /// Pin every feature table to the snapshot current at this time: an RFC 3339 timestamp,
    /// or a snapshot id of one of the requested views' tables.
    #[arg(long)]
    as_of: Option<String>,
    /// Memory for the feature rows being joined, MiB; rows beyond it are partitioned by
    /// entity and spilled to `.skewless/tmp` (entity rows and the output are held whole).
    #[arg(long, value_name = "MiB", default_value_t = skewless_runtime::historical::MemoryBudget::DEFAULT_MIB,
          value_parser = clap::value_parser!(u32).range(1..))]
    memory_budget: u32,
}

/// `skewless historical`: a point-in-time correct training set.
pub(super) fn historical(args: &HistoricalArgs) -> Result<()> {
    use std::sync::Arc;

    use skewless_runtime::historical::{LABEL_TIME, Request, Retrieval};
    use skewless_runtime::registry::FeatureRef;

    let started = std::time::Instant::now();
    let opened = OpenedRepo::open(&args.repo.repo)?;
    let context = opened.context();
    let RepoContext {
        repo,
        offline,
        runtime: rt,
        ..
    } = context;
    let features = match &args.service {
        Some(name) => {
            let service = repo.feature_service(name)?;
            service
                .features
                .iter()
                .map(|f| FeatureRef::parse(f))
                .collect::<Result<Vec<_>>>()?
        }
        None => args
            .features
            .iter()
            .map(|f| FeatureRef::parse(f.trim()))
            .collect::<Result<Vec<_>>>()?,
    };
    let as_of_ms = match &args.as_of {
        None => None,
        Some(text) => Some(skewless_runtime::historical::pinned_time(
            repo, offline, rt, &features, "--as-of", text,
        )?),
    };
    let label = skewless_runtime::signature::Field::new(
        LABEL_TIME,
        skewless_runtime::signature::DataType::Timestamp,
        false,
    );
    let (schema, batches) = skewless_runtime::files::read_batches(
        &args.entities,
        std::slice::from_ref(&label),
        65_536,
    )?;
    let batches = batches.collect::<Result<Vec<_>>>()?;
    let entities = arrow_select::concat::concat_batches(&schema, &batches)
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("could not read the entity rows: {e}"),
            )
        })
        .map_err(|e| e.with_context("file", args.entities.display()))?;
    let request = Request {
        features,
        full_feature_names: args.full_feature_names,
        as_of_ms,
        memory: skewless_runtime::historical::MemoryBudget::mib(args.memory_budget as usize),
    };
    let retrieval = Retrieval { context };
    let bar = progress_bar("training set");
    bar.set_message(format!("{} entity rows", entities.num_rows()));
    let set = retrieval.run(&entities, &request);
    bar.finish_and_clear();
    let set = set.map_err(|e| e.with_context("entities", args.entities.display()))?;
    fn json(value: &impl serde::Serialize) -> String {
        serde_json::to_string(value).unwrap_or_default()
    }
    let mut metadata = std::collections::HashMap::from([
        ("skewless.snapshots".to_owned(), json(&set.snapshots)),
        ("skewless.digests".to_owned(), json(&set.digests)),
    ]);
    if let Some(ms) = as_of_ms {
        metadata.insert("skewless.as_of_ms".to_owned(), ms.to_string());
    }
    let schema = Arc::new(set.batch.schema().as_ref().clone().with_metadata(metadata));
    let batch = set
        .batch
        .with_schema(schema.clone())
        .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
    let mut sink = skewless_runtime::files::ParquetSink::create(&args.out, schema)?;
    sink.write(&batch)?;
    let rows = sink.finish()?;
    let spilled = match set.spill_files {
        0 => String::new(),
        files => format!(
            "; spilled {:.1} MiB in {files} files (--memory-budget {} MiB)",
            set.spill_bytes as f64 / f64::from(1 << 20),
            args.memory_budget
        ),
    };
    outln!(
        "{rows} rows x {} features -> {} in {:.2} s; {} feature rows joined; snapshots {}{spilled}",
        batch.num_columns() - entities.num_columns(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        set.feature_rows,
        json(&set.snapshots)
    );
    Ok(())
}
