//! The `skewless` command line: parse arguments, build the engine, run a command, render.
//!
//! This is the composition root: the only place that picks settings and wires the parts.
//! Each command lives in its own module and returns a `Result`; [`main`] renders errors
//! (message, context, causes) and maps them to the exit code.

mod build;
mod expire;
mod inspect;
mod new;
mod output;
mod repo;
mod run;
mod serve;
mod show;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use skewless_runtime::engine::TransformEngine;

/// skewless: a feature store whose transforms are WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "skewless", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    engine: EngineArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a transform project (source, build configuration, a sample input).
    #[command(
        after_help = "Examples:\n  skewless new order-features --lang python\n  skewless new order-features --lang rust --dir transforms"
    )]
    New(new::NewArgs),
    /// Build a transform project into a component with its language's toolchain; prints the
    /// component's path, size and digest.
    #[command(after_help = "Example:\n  skewless build order-features")]
    Build(build::BuildArgs),
    /// Show a component's name, version, digest, inputs and outputs.
    #[command(
        after_help = "Example:\n  skewless inspect target/guests/wasm32-wasip2/guest/transaction_features.wasm --json"
    )]
    Inspect(inspect::InspectArgs),
    /// Apply a transform to a Parquet or CSV file, batch by batch, writing Parquet.
    #[command(
        after_help = "Example:\n  skewless run transaction_features.wasm --input txns.parquet --output features.parquet"
    )]
    Run(run::RunArgs),
    /// Print the first rows of a Parquet or CSV file.
    #[command(after_help = "Example:\n  skewless show features.parquet -n 5")]
    Show(show::ShowArgs),
    /// Show what `apply` would change in a feature repo, and every problem that stops it.
    #[command(after_help = "Example:\n  skewless plan --repo examples/feature-repo")]
    Plan(repo::RepoArg),
    /// Check a feature repo against its data, create feature tables, and register each
    /// view's component digest.
    #[command(after_help = "Example:\n  skewless apply --repo examples/feature-repo")]
    Apply(repo::RepoArg),
    /// Append a Parquet or CSV file to an Iceberg source table (one snapshot).
    #[command(
        after_help = "Example:\n  skewless ingest raw.transactions --from txns.parquet --create"
    )]
    Ingest(repo::IngestArgs),
    /// Compute batch views over their source tables into the offline and online stores.
    #[command(
        after_help = "Examples:\n  skewless materialize --all\n  skewless materialize user_transactions --start 2026-08-01T00:00:00Z --end 2026-09-01T00:00:00Z\n  skewless materialize --all --incremental"
    )]
    Materialize(repo::MaterializeArgs),
    /// Remove old snapshots of feature tables (or other tables) and the files only they
    /// referenced; retained snapshots still read exactly what they held.
    #[command(
        after_help = "Examples:\n  skewless expire --all --older-than 7d\n  skewless expire user_transactions --older-than 1d --retain-last 3\n  skewless expire --table raw.transactions --older-than 30d"
    )]
    Expire(expire::ExpireArgs),
    /// Read entities' latest values from the online store, with their status.
    #[command(after_help = "Example:\n  skewless get user_transaction_features 42 43")]
    Get(repo::GetArgs),
    /// Build a point-in-time correct training set from entity rows and label times.
    #[command(
        after_help = "Example:\n  skewless historical --entities labels.parquet --service fraud_model_v1 --out train.parquet --as-of 2026-11-01T00:00:00Z"
    )]
    Historical(repo::HistoricalArgs),
    /// Serve online features over HTTP (Feast-compatible), computing request-time views with
    /// the same components batch jobs run.
    #[command(
        after_help = "Example:\n  skewless serve --repo examples/feature-repo --addr 127.0.0.1:6566\n  curl -s localhost:6566/get-online-features -d '{\"features\": [\"user_transaction_features:amount_log1p\"], \"entities\": {\"user_id\": [42]}}'"
    )]
    Serve(serve::ServeArgs),
    /// Feed a push source from a Redis stream through a consumer group: each message's row
    /// runs through the fed views' components, online at once and committed offline in
    /// micro-batches; acknowledged once committed.
    #[command(
        after_help = "Example:\n  skewless stream --repo examples/feature-repo --push-source txn_push --redis redis://127.0.0.1:6379 --stream transactions --group skewless\n  redis-cli XADD transactions '*' row '{\"user_id\": 42, \"event_ts\": \"2026-01-01T00:00:00Z\", \"amount\": 12.5}'"
    )]
    Stream(stream::StreamArgs),
}

/// Engine settings shared by every command.
#[derive(Debug, Args)]
struct EngineArgs {
    /// Directory for compiled components [default: $SKEWLESS_CACHE_DIR, else
    /// $XDG_CACHE_HOME/skewless/compiled, else ~/.cache/skewless/compiled]
    #[arg(long, global = true, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile components in memory every time instead of caching them on disk.
    #[arg(long, global = true)]
    no_cache: bool,
    /// Memory cap per transform instance, in MiB (all linear memories together).
    #[arg(long, global = true, value_name = "MIB", default_value_t = 512)]
    memory_limit_mib: usize,
    /// Deadline for one call into a transform, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = 10_000)]
    deadline_ms: u64,
}

impl EngineArgs {
    fn build(&self) -> skewless_runtime::Result<TransformEngine> {
        let mut builder = TransformEngine::builder()
            .memory_limit(self.memory_limit_mib.saturating_mul(1 << 20))
            .deadline(Duration::from_millis(self.deadline_ms));
        let cache_dir = self.cache_dir.clone().or_else(default_cache_dir);
        if let (false, Some(dir)) = (self.no_cache, cache_dir) {
            builder = builder.cache_dir(dir);
        }
        builder.build()
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SKEWLESS_CACHE_DIR") {
        return Some(dir.into());
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("skewless").join("compiled"))
}

/// Runs the command line and returns the process exit code: 0 on success, 1 when the
/// command failed (the error is printed to stderr), 2 for a usage error.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> skewless_runtime::Result<()> {
    match cli.command {
        Command::New(args) => new::new(&args),
        Command::Build(args) => build::build(&args),
        Command::Inspect(args) => inspect::inspect(&cli.engine.build()?, &args),
        Command::Run(args) => run::run(&cli.engine.build()?, &args),
        Command::Show(args) => show::show(&args),
        Command::Plan(args) => repo::plan(&args, false),
        Command::Apply(args) => repo::plan(&args, true),
        Command::Ingest(args) => repo::ingest(&args),
        Command::Materialize(args) => repo::materialize(&args),
        Command::Expire(args) => expire::expire(&args),
        Command::Get(args) => repo::get(&args),
        Command::Historical(args) => repo::historical(&args),
        Command::Serve(args) => serve::serve(&cli.engine, &args),
        Command::Stream(args) => stream::stream(&args),
    }
}

/// Logs go to stderr; `SKEWLESS_LOG` takes a filter (default: warnings, plus what
/// transforms print, which the sandbox captures under the `skewless::guest` target).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKEWLESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,skewless::guest=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
