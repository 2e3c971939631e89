//! `skewless-datagen`: write deterministic synthetic card transactions to Parquet.
//!
//! ```text
//! cargo run --release -p skewless-datagen -- --rows 3000000 --users 100000 --days 90 --out transactions.parquet
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use skewless_datagen::{Spec, batches, schema};
use skewless_runtime::files::ParquetSink;

/// Write deterministic synthetic card transactions to a Parquet file.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Number of transactions.
    #[arg(long, default_value_t = Spec::default().rows)]
    rows: u64,
    /// Number of distinct users.
    #[arg(long, default_value_t = Spec::default().users)]
    users: u64,
    /// Days covered (ending 2026-11-01T00:00:00Z).
    #[arg(long, default_value_t = Spec::default().days)]
    days: u64,
    /// Seed of the random stream.
    #[arg(long, default_value_t = Spec::default().seed)]
    seed: u64,
    /// Output Parquet file.
    #[arg(long)]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(rows) => {
            println!("{rows} transactions -> {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<usize> {
    let spec = Spec {
        rows: args.rows,
        users: args.users,
        days: args.days,
        seed: args.seed,
        ..Spec::default()
    };
    let mut sink = ParquetSink::create(&args.out, schema())?;
    for batch in batches(spec, 65_536) {
        sink.write(&batch)?;
    }
    Ok(sink.finish()?)
}
