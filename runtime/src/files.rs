//! Streaming file input (Parquet, CSV) and Parquet output, a batch at a time.
//!
//! Memory is bounded by the batch size (and, for Parquet, the row group being decoded),
//! never by the file's size.

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::error::{Error, ErrorKind, Result};
use crate::signature::Field;

/// Record batches read from a file, one at a time.
pub type BatchIter = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;

/// Rows per batch when the caller has no better idea: large enough to amortize a call into
/// a component (~1 µs), small enough to stay in cache.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// A file format skewless reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
}

impl InputFormat {
    /// The format of `path`, from its extension.
    pub fn of(path: &Path) -> Result<Self> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("parquet" | "pq") => Ok(InputFormat::Parquet),
            Some("csv") => Ok(InputFormat::Csv),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                "unsupported input file type; expected a `.parquet` or `.csv` file",
            )
            .with_context("file", path.display())),
        }
    }
}

/// Opens `path` for streaming. For CSV, columns named like a field in `typed_as` are parsed
/// as that field's type (so `amount` becomes float64 when a transform declares it so, and
/// timestamps parse from RFC 3339 text); other columns' types are inferred from the data.
pub fn read_batches(
    path: &Path,
    typed_as: &[Field],
    batch_size: usize,
) -> Result<(SchemaRef, BatchIter)> {
    let with_file = |e: Error| e.with_context("file", path.display());
    let file = File::open(path)
        .map_err(|e| {
            Error::new(ErrorKind::Io, format!("could not open input file: {e}")).with_source(e)
        })
        .map_err(with_file)?;
    let opened = match InputFormat::of(path)? {
        InputFormat::Parquet => read_parquet(file, batch_size),
        InputFormat::Csv => read_csv(file, typed_as, batch_size),
    };
    let (schema, batches) = opened.map_err(with_file)?;
    let file_name = path.display().to_string();
    let batches = batches.map(move |b| b.map_err(|e| e.with_context("file", &file_name)));
    Ok((schema, Box::new(batches)))
}

fn read_parquet(file: File, batch_size: usize) -> Result<(SchemaRef, BatchIter)> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("not a readable Parquet file: {e}"),
        )
        .with_source(e)
    })?;
    let reader = builder.with_batch_size(batch_size).build().map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("could not read Parquet file: {e}"),
        )
        .with_source(e)
    })?;
    let schema = reader.schema();
    let batches = reader.map(|b| {
        b.map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("could not decode Parquet data: {e}"),
            )
            .with_source(e)
        })
    });
    Ok((schema, Box::new(batches)))
}

fn read_csv(
    mut file: File,
    typed_as: &[Field],
    batch_size: usize,
) -> Result<(SchemaRef, BatchIter)> {
    let format = arrow_csv::reader::Format::default().with_header(true);
    let (inferred, _) = format
        .infer_schema(BufReader::new(&file), Some(10_000))
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("not a readable CSV file: {e}"),
            )
            .with_source(e)
        })?;
    file.rewind()?;
    let fields: Vec<_> = inferred
        .fields()
        .iter()
        .map(|f| match typed_as.iter().find(|t| t.name == *f.name()) {
            Some(declared) => Arc::new(declared.to_arrow().with_nullable(true)),
            None => f.clone(),
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let reader = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(batch_size)
        .build(BufReader::new(file))
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("could not read CSV file: {e}"),
            )
            .with_source(e)
        })?;
    let batches = reader.map(|b| {
        b.map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "could not parse CSV data (a value does not match its column's type?): {e}"
                ),
            )
            .with_source(e)
        })
    });
    Ok((schema, Box::new(batches)))
}

/// Writes record batches to a Parquet file (zstd-compressed).
#[derive(Debug)]
pub struct ParquetSink {
    writer: ArrowWriter<File>,
    rows: usize,
}

impl ParquetSink {
    /// Creates (or truncates) `path` for batches of `schema`.
    pub fn create(path: &Path, schema: SchemaRef) -> Result<Self> {
        let file = File::create(path).map_err(|e| {
            Error::new(ErrorKind::Io, format!("could not create output file: {e}"))
                .with_context("file", path.display())
                .with_source(e)
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let writer =
            ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| parquet_error(path, e))?;
        Ok(ParquetSink { writer, rows: 0 })
    }

    /// Appends one batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        self.writer.write(batch).map_err(|e| {
            Error::new(ErrorKind::Io, format!("could not write Parquet data: {e}")).with_source(e)
        })
    }

    /// Finishes the file (writes the footer) and returns the number of rows written.
    pub fn finish(self) -> Result<usize> {
        self.writer.close().map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("could not finish the Parquet file: {e}"),
            )
            .with_source(e)
        })?;
        Ok(self.rows)
    }
}

fn parquet_error(path: &Path, e: parquet::errors::ParquetError) -> Error {
    Error::new(ErrorKind::Io, format!("could not write Parquet file: {e}"))
        .with_context("file", path.display())
        .with_source(e)
}
