//! `skewless show`: print the first rows of a Parquet or CSV file as a table.

use std::path::PathBuf;

use clap::Args;

use super::output::outln;
use skewless_runtime::error::{Error, ErrorKind, Result};
use skewless_runtime::files;

#[derive(Debug, Args)]
pub(super) struct ShowArgs {
    /// The file to show: `.parquet` or `.csv`.
    file: PathBuf,
    /// How many rows to print.
    #[arg(long, short = 'n', default_value_t = 10)]
    rows: usize,
}

pub(super) fn show(args: &ShowArgs) -> Result<()> {
    let (_, batches) = files::read_batches(&args.file, &[], args.rows.clamp(1, 8192))?;
    let mut shown = Vec::new();
    let mut remaining = args.rows;
    for batch in batches {
        if remaining == 0 {
            break;
        }
        let batch = batch?;
        let take = remaining.min(batch.num_rows());
        shown.push(batch.slice(0, take));
        remaining -= take;
    }
    let table = arrow_cast::pretty::pretty_format_batches(&shown).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("could not format the rows: {e}"),
        )
        .with_source(e)
    })?;
    outln!("{table}");
    Ok(())
}
