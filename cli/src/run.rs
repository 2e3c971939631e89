//! `skewless run`: apply a transform to a file, streaming, on all cores.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::output::outln;
use skewless_runtime::engine::TransformEngine;
use skewless_runtime::error::{Error, ErrorKind, Result};
use skewless_runtime::files::{self, ParquetSink};
use skewless_runtime::pipeline::parallel_map_ordered;

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// The transform component (`.wasm`).
    component: PathBuf,
    /// Input file: `.parquet` or `.csv` (with a header row).
    #[arg(long, short)]
    input: PathBuf,
    /// Output Parquet file (created or replaced).
    #[arg(long, short)]
    output: PathBuf,
    /// Rows per call into the transform.
    #[arg(long, default_value_t = files::DEFAULT_BATCH_SIZE)]
    batch_size: usize,
    /// Also write the input columns, before the transform's outputs.
    #[arg(long)]
    keep_input: bool,
    /// Worker threads [default: the number of cores].
    #[arg(long)]
    threads: Option<usize>,
}

pub(super) fn run(engine: &TransformEngine, args: &RunArgs) -> Result<()> {
    if args.batch_size == 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "--batch-size must be at least 1",
        ));
    }
    let transform = engine.load_file(&args.component)?;
    let signature = transform.signature();
    let (input_schema, batches) =
        files::read_batches(&args.input, &signature.inputs, args.batch_size)?;
    let output_schema = output_schema(&input_schema, transform.output_schema(), args.keep_input)?;
    // Write to a temporary file beside the output and rename at the end, so a failed run
    // leaves no half-written file behind (and never clobbers a good one).
    let partial = args.output.with_extension("parquet.partial");
    let mut sink = ParquetSink::create(&partial, output_schema.clone())?;
    let progress = progress_bar();
    let started = Instant::now();
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    let outcome = parallel_map_ordered(
        batches,
        threads,
        |input: RecordBatch| {
            let output = transform.run(&input)?;
            if args.keep_input {
                let mut columns = input.columns().to_vec();
                columns.extend_from_slice(output.columns());
                return RecordBatch::try_new(output_schema.clone(), columns).map_err(|e| {
                    Error::new(
                        ErrorKind::Internal,
                        format!("could not join input and output columns: {e}"),
                    )
                });
            }
            Ok(output)
        },
        |batch| {
            progress.inc(batch.num_rows() as u64);
            sink.write(&batch)
        },
    );
    progress.finish_and_clear();
    let rows = match outcome.and_then(|()| sink.finish()) {
        Ok(rows) => rows,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.with_context("input", args.input.display()));
        }
    };
    std::fs::rename(&partial, &args.output).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("could not move the output into place: {e}"),
        )
        .with_context("file", args.output.display())
        .with_source(e)
    })?;
    let secs = started.elapsed().as_secs_f64();
    outln!(
        "{rows} rows -> {} in {secs:.2} s ({:.0} rows/s); transform {} {}",
        args.output.display(),
        rows as f64 / secs.max(1e-9),
        signature.id(),
        transform.digest()
    );
    Ok(())
}

fn output_schema(input: &SchemaRef, output: &SchemaRef, keep_input: bool) -> Result<SchemaRef> {
    if !keep_input {
        return Ok(output.clone());
    }
    if let Some(clash) = output
        .fields()
        .iter()
        .find(|f| input.field_with_name(f.name()).is_ok())
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "--keep-input: the input already has a column `{}`, which the transform also outputs; drop --keep-input or rename the input column",
                clash.name()
            ),
        ));
    }
    let fields: Vec<_> = input
        .fields()
        .iter()
        .chain(output.fields().iter())
        .cloned()
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} rows ({per_sec}) {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}
