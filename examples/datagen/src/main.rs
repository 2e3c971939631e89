//! `skewless-datagen`: write deterministic synthetic card transactions to Parquet.
//!
//! ```text
//! cargo run --release -p skewless-datagen -- --rows 3000000 --users 100000 --days 90 --out transactions.parquet
//! ```
//!
//! The period ends now unless `--end` says otherwise, so data generated today is fresh today:
//! the example views' 30-day TTL judges it present. Give `--end` to get the same rows again.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use skewless_datagen::{Spec, batches, format_time, parse_end, schema};
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
    /// Days covered, ending at --end.
    #[arg(long, default_value_t = Spec::default().days)]
    days: u64,
    /// End of the covered period (exclusive): `now`, or an RFC 3339 time such as
    /// 2026-11-01T00:00:00Z. The same arguments with the same --end give the same rows.
    #[arg(long, default_value = "now", value_parser = parse_end)]
    end: i64,
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
            println!(
                "{rows} transactions over {} days ending {} -> {}",
                args.days,
                format_time(args.end),
                args.out.display()
            );
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
        end_us: args.end,
    };
    let mut sink = ParquetSink::create(&args.out, schema())?;
    for batch in batches(spec, 65_536) {
        sink.write(&batch)?;
    }
    Ok(sink.finish()?)
}
