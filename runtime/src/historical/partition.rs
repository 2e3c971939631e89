//! One view's point-in-time join within a memory budget: hash partitioning by entity key.
//!
//! The feature rows stream in from the scan. While their estimated working size (Arrow data
//! plus the join's per-row index, see `join_bytes`) fits the [`MemoryBudget`], they are held
//! and joined in memory in one piece: the fast path, with no copy beyond the one the join
//! itself needs. The first time they do not fit, the round switches to partitioning: every
//! feature row, held or still to come, goes to one of `fan_out` spill files chosen by a hash
//! of its entity key (module `spill`), and the entity rows are split by the same hash.
//! A point-in-time join only ever pairs rows with equal keys, so each partition is joined
//! on its own, and a partition is read back by another round of the same procedure, with
//! another hash seed: it is joined in memory if it fits and split again if not. Answers are
//! scattered back to the entity rows' order at the end, so the output is the same, bit for
//! bit, whatever the budget (and whatever the scan order: exact version ties are broken by the
//! rows' values, see `asof`).
//!
//! Feature rows of a partition that holds no entity row are dropped at once instead of
//! written. Hashing cannot split one entity's rows: an entity whose own rows exceed the budget
//! is joined in memory after [`MAX_ROUNDS`] rounds, whatever its size.

use std::path::PathBuf;
use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_schema::Field as ArrowField;

use super::asof::{SortKey, as_of_join};
use super::filter::{KeyFilter, NOT_ASKED};
use super::keys::{PartitionHash, key_columns};
use super::spill::{self, PartitionWriter, SpillDir};
use super::{internal, missing};
use crate::aggregate::Aggregation;
use crate::apply::{CREATED_TS, EVENT_TS};
use crate::error::{Error, ErrorKind, Result};
use crate::online::{EntityKey, FeatureValue, compare_values};
use crate::pipeline::parallel_map_ordered;
use crate::registry::KeyType;

/// Rounds of partitioning after which a partition is joined in memory whatever its size:
/// with the default fan-out, 32^4 ≈ 1M partitions, so only an entity whose own rows exceed
/// the budget gets there.
pub const MAX_ROUNDS: usize = 4;

/// Held feature rows of an aggregate view from which its in-memory computation is split into
/// pieces (`Joiner::aggregate_in_pieces`); below it, one piece is quicker.
const PIECE_MIN_ROWS: usize = 1 << 16;

/// How much memory a retrieval may use for the feature rows it joins, and where it spills the
/// rest.
///
/// The budget bounds one view's feature rows being joined at a time (their Arrow data and
/// the join's index over them, estimated); it does not cover the entity rows and the output,
/// which are held whole (see the [module overview](super)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes of feature rows (with the join's index over them) held in memory at a time.
    /// An estimate, and while a round switches to partitioning the rows already held and the
    /// write buffers (half the budget) coexist: the peak is up to about 1.5 times this.
    pub bytes: usize,
    /// Partitions per round when the feature rows do not fit: the number of spill files
    /// open at once.
    pub fan_out: usize,
    /// Folder under which spill files go (a fresh folder per retrieval, removed after);
    /// `None`: the repo's `.skewless/tmp`.
    pub spill_dir: Option<PathBuf>,
}

impl MemoryBudget {
    /// The default budget, MiB: the 5M-row benchmark table (90 days, 100k entities) joins
    /// in one piece.
    pub const DEFAULT_MIB: u32 = 1024;
    /// The default fan-out.
    pub const DEFAULT_FAN_OUT: usize = 32;
    /// At most this many spill files are open at once.
    pub const MAX_FAN_OUT: usize = 1024;

    /// A budget of `mib` MiB with the default fan-out and spill folder.
    pub fn mib(mib: usize) -> Self {
        MemoryBudget {
            bytes: mib.saturating_mul(1 << 20),
            ..MemoryBudget::default()
        }
    }

    /// An error saying what is wrong with the settings, if anything is.
    pub fn check(&self) -> Result<()> {
        if self.bytes == 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the memory budget of historical retrieval is 0 bytes; it must be positive",
            ));
        }
        if !(2..=Self::MAX_FAN_OUT).contains(&self.fan_out) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the fan-out of historical retrieval is {}; it must be between 2 and {}",
                    self.fan_out,
                    Self::MAX_FAN_OUT
                ),
            ));
        }
        Ok(())
    }
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget {
            bytes: (Self::DEFAULT_MIB as usize) << 20,
            fan_out: Self::DEFAULT_FAN_OUT,
            spill_dir: None,
        }
    }
}

/// What one view's join answers: the entity rows and the view's keys, TTL and features.
#[derive(Debug)]
pub(super) struct Query<'a> {
    /// Each entity row's key under this view's join keys.
    pub(super) keys: &'a [EntityKey],
    /// The same keys numbered, and the lookup of a feature row's key among them.
    pub(super) ids: &'a KeyFilter<'a>,
    /// Each entity row's label time, µs.
    pub(super) labels: &'a [i64],
    /// The view's TTL.
    pub(super) ttl: Option<Duration>,
    /// The view's join-key columns.
    pub(super) key_columns: &'a [(String, KeyType)],
    /// The requested features (their types when there is no feature row at all).
    pub(super) fields: &'a [ArrowField],
    /// The columns that break exact version ties of a batch view's rows: its features in the
    /// stored order, up to the last requested one (rows whose values agree up to there give
    /// the same answer, and where they differ the first difference decides, as for the whole
    /// stored rows).
    pub(super) tie_columns: &'a [String],
    /// `None`: the as-of join of a batch view. Some: the aggregations of an aggregate view,
    /// one per field, computed over the rows of each entity (module `aggregate`).
    pub(super) aggregations: Option<&'a [Aggregation]>,
}

/// The feature columns of `query` aligned with its entity rows, from the view's scanned
/// feature rows `batches` (join keys, event and created timestamps, features), joined within
/// `budget`, spilling into `spill`.
pub(super) fn join(
    query: &Query<'_>,
    batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
    budget: &MemoryBudget,
    spill: &mut SpillDir,
) -> Result<Vec<ArrayRef>> {
    let rows = u32::try_from(query.keys.len()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} entity rows are more than one retrieval takes ({}); split the entity file",
                query.keys.len(),
                u32::MAX
            ),
        )
    })?;
    let mut joiner = Joiner {
        query,
        budget,
        spill,
        chunks: Vec::new(),
        piece_min_rows: PIECE_MIN_ROWS,
    };
    joiner.round(0, batches, (0..rows).collect())?;
    joiner.assemble()
}

/// The answers for some entity rows: their features, or `None` when no feature row shares
/// their partition (all null).
#[derive(Debug)]
struct Chunk {
    rows: Vec<u32>,
    columns: Option<Vec<ArrayRef>>,
}

struct Joiner<'q, 'a> {
    query: &'q Query<'a>,
    budget: &'q MemoryBudget,
    spill: &'q mut SpillDir,
    chunks: Vec<Chunk>,
    /// [`PIECE_MIN_ROWS`], smaller in tests.
    piece_min_rows: usize,
}

/// While a round partitions: the files, the entity rows of each partition, the round's hash.
struct Partitioning {
    writer: PartitionWriter,
    rows: Vec<Vec<u32>>,
    hash: PartitionHash,
}

impl Joiner<'_, '_> {
    /// Joins the entity rows `rows` with the feature rows `batches` (all of these rows'
    /// partition), appending the answers to `self.chunks`.
    fn round(
        &mut self,
        round: usize,
        batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
        rows: Vec<u32>,
    ) -> Result<()> {
        let mut held = Vec::new();
        let mut held_bytes = 0;
        let mut partitioning: Option<Partitioning> = None;
        for batch in batches {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            if let Some(p) = &mut partitioning {
                self.scatter(p, &batch)?;
                continue;
            }
            held_bytes += join_bytes(&batch, self.query);
            held.push(batch);
            if held_bytes > self.budget.bytes && round < MAX_ROUNDS {
                let mut p = self.partitioning(round, &rows, &held[0]);
                for batch in held.drain(..) {
                    self.scatter(&mut p, &batch)?;
                }
                partitioning = Some(p);
            }
        }
        let Some(Partitioning {
            writer,
            rows: parts,
            ..
        }) = partitioning
        else {
            let held_rows: usize = held.iter().map(RecordBatch::num_rows).sum();
            if self.query.aggregations.is_some() && held_rows >= self.piece_min_rows {
                return self.aggregate_in_pieces(round, held, rows);
            }
            let chunk = self.join_in_memory(&held, rows)?;
            self.chunks.push(chunk);
            return Ok(());
        };
        drop(rows);
        let files = writer.finish(self.spill)?;
        for (file, rows) in files.into_iter().zip(parts) {
            match file {
                _ if rows.is_empty() => {}
                // An aggregate has a value without rows (a count of 0), computed like any.
                None if self.query.aggregations.is_some() => {
                    let chunk = self.join_in_memory(&[], rows)?;
                    self.chunks.push(chunk);
                }
                None => self.chunks.push(Chunk {
                    rows,
                    columns: None,
                }),
                Some(path) => {
                    self.round(round + 1, &mut spill::read(&path)?, rows)?;
                    spill::remove(&path)?;
                }
            }
        }
        Ok(())
    }

    /// The aggregates of the entity rows `rows` over the feature rows `held`, which fit the
    /// budget: split in memory by the round's hash into `fan_out` pieces, as partitioning
    /// would split them into files, and the pieces computed on all cores. A piece's rows are
    /// contiguous and its entities few, so its hash lookups and value gathering stay in the
    /// caches, which computing over all of `held` at once does not; and an aggregate does not
    /// depend on how rows are grouped (rows keep their scan order within a piece), so the
    /// answers are those of one piece, bit for bit.
    fn aggregate_in_pieces(
        &mut self,
        round: usize,
        held: Vec<RecordBatch>,
        rows: Vec<u32>,
    ) -> Result<()> {
        let Some(aggregations) = self.query.aggregations else {
            return Err(Error::new(
                ErrorKind::Internal,
                "aggregate pieces for a view without aggregations",
            ));
        };
        let hash = PartitionHash::new(round);
        let entity_rows = self.split_entity_rows(&hash, &rows);
        drop(rows);
        let mut pieces: Vec<Vec<RecordBatch>> = vec![Vec::new(); entity_rows.len()];
        // Each held batch is dropped once grouped: one copy of the rows at a time.
        for batch in held {
            for (part, slice) in
                group_by_partition(&hash, &entity_rows, &batch, self.query.key_columns)?
            {
                pieces[part].push(slice);
            }
        }
        let work: Vec<(Vec<RecordBatch>, Vec<u32>)> = pieces
            .into_iter()
            .zip(entity_rows)
            .filter(|(_, rows)| !rows.is_empty())
            .collect();
        let workers = crate::pipeline::cores();
        let query = self.query;
        let chunks = &mut self.chunks;
        parallel_map_ordered(
            work.into_iter().map(Ok),
            workers,
            |(held, rows)| {
                let columns = super::aggregate::compute(query, aggregations, &held, &rows)?;
                Ok(Chunk {
                    rows,
                    columns: Some(columns),
                })
            },
            |chunk| {
                chunks.push(chunk);
                Ok(())
            },
        )
    }

    /// The entity rows `rows` split by `hash` into the budget's `fan_out` partitions.
    fn split_entity_rows(&self, hash: &PartitionHash, rows: &[u32]) -> Vec<Vec<u32>> {
        let fan_out = self.budget.fan_out;
        let mut parts = vec![Vec::new(); fan_out];
        for &row in rows {
            parts[partition_of(hash.key(&self.query.keys[row as usize]), fan_out)].push(row);
        }
        parts
    }

    /// Starts partitioning a round: splits the entity rows by the round's hash.
    fn partitioning(&self, round: usize, rows: &[u32], first: &RecordBatch) -> Partitioning {
        let fan_out = self.budget.fan_out;
        let hash = PartitionHash::new(round);
        let parts = self.split_entity_rows(&hash, rows);
        // Half the budget buffers writes; the other half is for the rows held when the round
        // switched to partitioning.
        let row_bytes = arrow_bytes(first).div_ceil(first.num_rows().max(1));
        Partitioning {
            writer: PartitionWriter::new(first.schema(), fan_out, self.budget.bytes / 2, row_bytes),
            rows: parts,
            hash,
        }
    }

    /// Sends each feature row of `batch` to its partition's file, unless no entity row is
    /// in that partition.
    fn scatter(&mut self, p: &mut Partitioning, batch: &RecordBatch) -> Result<()> {
        for (part, slice) in group_by_partition(&p.hash, &p.rows, batch, self.query.key_columns)? {
            p.writer.write(self.spill, part, &slice)?;
        }
        Ok(())
    }

    /// The as-of join (or the aggregates) of the entity rows `rows` over all of `held`, in
    /// memory.
    fn join_in_memory(&self, held: &[RecordBatch], rows: Vec<u32>) -> Result<Chunk> {
        if let Some(aggregations) = self.query.aggregations {
            let columns = super::aggregate::compute(self.query, aggregations, held, &rows)?;
            return Ok(Chunk {
                rows,
                columns: Some(columns),
            });
        }
        let Some(first) = held.first() else {
            return Ok(Chunk {
                rows,
                columns: None,
            });
        };
        // Each held feature row's sort key: its key's id (the entity rows' numbering; a row
        // no entity row asks for cannot be picked and is left out), its version and index.
        let total: usize = held.iter().map(RecordBatch::num_rows).sum();
        let mut sort_keys: Vec<SortKey> = Vec::with_capacity(total);
        let mut starts = Vec::with_capacity(held.len());
        let mut start = 0;
        for batch in held {
            starts.push(start);
            let event = timestamps(batch, EVENT_TS)?;
            let created = timestamps(batch, CREATED_TS)?;
            let ids = self.query.ids.ids(batch)?;
            sort_keys.extend(
                (ids.into_iter().enumerate())
                    .filter(|&(_, id)| id != NOT_ASKED)
                    .map(|(i, id)| {
                        let index = (start + i) as u32;
                        (id, event.value(i), created.value(i), index)
                    }),
            );
            start += batch.num_rows();
        }
        let q = self.query;
        let locate = |i: usize| {
            let b = starts.partition_point(|&s| s <= i) - 1;
            (b, i - starts[b])
        };
        let tie_columns = q
            .tie_columns
            .iter()
            .map(|name| {
                held.iter()
                    .map(|b| b.column_by_name(name).ok_or_else(|| missing(name)))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        // The values of a feature row as the online store holds them.
        let values = |i: usize| {
            let (b, row) = locate(i);
            tie_columns
                .iter()
                .map(|columns| stored_value(columns[b], row))
                .collect::<Result<Vec<_>>>()
        };
        let picks = as_of_join(
            sort_keys,
            rows.iter()
                .map(|&r| (q.ids.entity_id(r), q.labels[r as usize])),
            q.ttl,
            |i, j| compare_values(&values(i)?, &values(j)?),
        )?;
        // Picked rows are taken straight from the held batches (no concatenated copy); a
        // one-row null array after them stands for "no row".
        let null_source = held.len();
        let indices: Vec<(usize, usize)> = picks
            .iter()
            .map(|pick| match *pick {
                None => (null_source, 0),
                Some(i) => locate(i),
            })
            .collect();
        let columns = q
            .fields
            .iter()
            .map(|f| {
                let name = f.name();
                let Some(column) = first.column_by_name(name) else {
                    return Ok(arrow_array::new_null_array(f.data_type(), rows.len()));
                };
                let nulls = arrow_array::new_null_array(column.data_type(), 1);
                let mut sources = held
                    .iter()
                    .map(|b| {
                        b.column_by_name(name)
                            .map(|c| c.as_ref())
                            .ok_or_else(|| missing(name))
                    })
                    .collect::<Result<Vec<&dyn Array>>>()?;
                sources.push(nulls.as_ref());
                arrow_select::interleave::interleave(&sources, &indices).map_err(internal)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Chunk {
            rows,
            columns: Some(columns),
        })
    }

    /// The chunks' answers in entity-row order.
    fn assemble(self) -> Result<Vec<ArrayRef>> {
        let q = self.query;
        let n = q.keys.len();
        let chunks = self.chunks;
        let nulls = |f: &ArrowField| arrow_array::new_null_array(f.data_type(), n);
        // The fast path: one chunk of every row in order is the answer as it is.
        if let [chunk] = chunks.as_slice()
            && chunk.rows.len() == n
            && chunk.rows.iter().enumerate().all(|(i, &r)| r as usize == i)
        {
            return Ok(match &chunk.columns {
                Some(columns) => columns.clone(),
                None => q.fields.iter().map(nulls).collect(),
            });
        }
        // Each entity row's (chunk, offset); rows of an all-null chunk point at its one-row
        // null stand-in.
        let mut at = vec![(usize::MAX, 0); n];
        for (c, chunk) in chunks.iter().enumerate() {
            let all_null = chunk.columns.is_none();
            for (k, &row) in chunk.rows.iter().enumerate() {
                at[row as usize] = (c, if all_null { 0 } else { k });
            }
        }
        if let Some(row) = at.iter().position(|(c, _)| *c == usize::MAX) {
            return Err(Error::new(
                ErrorKind::Internal,
                format!("historical retrieval lost entity row {row} while partitioning"),
            ));
        }
        q.fields
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let Some(typed) = chunks.iter().find_map(|c| c.columns.as_ref()) else {
                    return Ok(nulls(f));
                };
                let null = arrow_array::new_null_array(typed[j].data_type(), 1);
                let sources: Vec<&dyn Array> = chunks
                    .iter()
                    .map(|c| match &c.columns {
                        Some(columns) => columns[j].as_ref(),
                        None => null.as_ref(),
                    })
                    .collect();
                arrow_select::interleave::interleave(&sources, &at).map_err(internal)
            })
            .collect()
    }
}

/// The value at `row` of a feature-table column as the online store holds it (a vector, which
/// the table stores as a list, is the `Float32Vector` materialization wrote).
fn stored_value(column: &ArrayRef, row: usize) -> Result<FeatureValue> {
    if let Some(value) = crate::materialize::arrow_value(column, row) {
        return Ok(value);
    }
    if let Some(list) = column.as_list_opt::<i32>()
        && let Some(items) = list.value(row).as_primitive_opt::<Float32Type>()
    {
        return Ok(FeatureValue::Float32Vector(items.values().to_vec()));
    }
    Err(Error::new(
        ErrorKind::SchemaMismatch,
        format!(
            "a feature-table column has the Arrow type {}, which no feature has",
            column.data_type()
        ),
    ))
}

/// The rows of `batch` grouped by partition, each partition's rows in scan order, leaving out
/// the partitions without entity rows: `(partition, its rows)`, slices of one copy of the kept
/// rows.
fn group_by_partition(
    hash: &PartitionHash,
    entity_rows: &[Vec<u32>],
    batch: &RecordBatch,
    columns: &[(String, KeyType)],
) -> Result<Vec<(usize, RecordBatch)>> {
    let fan_out = entity_rows.len();
    let keys = key_columns(batch, columns)?;
    let parts: Vec<usize> = hash
        .rows(&keys, batch.num_rows())
        .into_iter()
        .map(|h| partition_of(h, fan_out))
        .collect();
    // A counting sort of the row numbers by partition, so one `take` groups the batch and
    // each partition gets a slice of it.
    let mut counts = vec![0usize; fan_out];
    for &part in &parts {
        if !entity_rows[part].is_empty() {
            counts[part] += 1;
        }
    }
    let mut next: Vec<usize> = counts
        .iter()
        .scan(0, |start, &count| {
            let this = *start;
            *start += count;
            Some(this)
        })
        .collect();
    let starts = next.clone();
    let mut order = vec![0u32; counts.iter().sum()];
    for (i, &part) in parts.iter().enumerate() {
        if !entity_rows[part].is_empty() {
            order[next[part]] = i as u32;
            next[part] += 1;
        }
    }
    if order.is_empty() {
        return Ok(Vec::new());
    }
    let grouped = arrow_select::take::take_record_batch(batch, &UInt32Array::from(order))
        .map_err(internal)?;
    Ok(starts
        .iter()
        .zip(&counts)
        .enumerate()
        .filter(|(_, (_, count))| **count > 0)
        .map(|(part, (&start, &count))| (part, grouped.slice(start, count)))
        .collect())
}

fn partition_of(hash: u64, fan_out: usize) -> usize {
    (hash % fan_out as u64) as usize
}

pub(super) fn timestamps<'b>(
    batch: &'b RecordBatch,
    name: &str,
) -> Result<&'b arrow_array::TimestampMicrosecondArray> {
    batch
        .column_by_name(name)
        .ok_or_else(|| missing(name))?
        .as_primitive_opt::<TimestampMicrosecondType>()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::SchemaMismatch,
                format!("`{name}` of the feature table is not a timestamp in µs"),
            )
            .with_context("column", name)
        })
}

/// The bytes of `batch`'s own slice of its buffers (a batch read from a file may share one
/// buffer among its columns; each counts its part).
fn arrow_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

/// The estimated memory of joining `batch` in memory: its Arrow data, plus per row the
/// join's sort key and its key's id; for aggregates, also each aggregated column's value as
/// the states take it.
fn join_bytes(batch: &RecordBatch, query: &Query<'_>) -> usize {
    let values = query.aggregations.map_or(0, |a| {
        super::aggregate::columns(a).len() * size_of::<FeatureValue>()
    });
    let per_row = size_of::<SortKey>() + size_of::<u32>() + values;
    arrow_bytes(batch) + batch.num_rows() * per_row
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, TimestampMicrosecondArray};
    use arrow_schema::{DataType, Schema, TimeUnit};
    use proptest::prelude::*;

    use super::*;

    const KEYS: &[(&str, KeyType)] = &[("user_id", KeyType::Int64)];

    /// Feature rows `(user, event_ts, created_ts, value)` in batches of `batch_rows`.
    fn feature_batches(
        rows: &[(i64, i64, i64, Option<f64>)],
        batch_rows: usize,
    ) -> Vec<RecordBatch> {
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        let schema = Arc::new(Schema::new(vec![
            ArrowField::new("user_id", DataType::Int64, false),
            ArrowField::new(EVENT_TS, ts.clone(), false),
            ArrowField::new(CREATED_TS, ts, false),
            ArrowField::new("f", DataType::Float64, true),
        ]));
        rows.chunks(batch_rows.max(1))
            .map(|chunk| {
                let column = |i: usize| chunk.iter().map(move |r| [r.0, r.1, r.2][i]);
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from_iter_values(column(0))),
                        Arc::new(
                            TimestampMicrosecondArray::from_iter_values(column(1))
                                .with_timezone("+00:00"),
                        ),
                        Arc::new(
                            TimestampMicrosecondArray::from_iter_values(column(2))
                                .with_timezone("+00:00"),
                        ),
                        Arc::new(chunk.iter().map(|r| r.3).collect::<Float64Array>()),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    /// Joins `batches` for the entity rows `(user, T)` within `budget`, spilling under `root`;
    /// the one feature column and what was spilled.
    fn run(
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
        entities: &[(i64, i64)],
        ttl: Option<Duration>,
        budget: &MemoryBudget,
        root: &std::path::Path,
    ) -> (Result<ArrayRef>, (usize, u64)) {
        let keys: Vec<EntityKey> = entities.iter().map(|e| EntityKey::new([e.0])).collect();
        let labels: Vec<i64> = entities.iter().map(|e| e.1).collect();
        let key_columns: Vec<(String, KeyType)> =
            KEYS.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect();
        let fields = [ArrowField::new("f", DataType::Float64, true)];
        let ids = KeyFilter::new(&keys, &key_columns);
        let query = Query {
            keys: &keys,
            ids: &ids,
            labels: &labels,
            ttl,
            key_columns: &key_columns,
            fields: &fields,
            tie_columns: &["f".to_owned()],
            aggregations: None,
        };
        let mut spill = SpillDir::new(root.to_owned());
        let out = join(&query, &mut batches.into_iter(), budget, &mut spill);
        let spilled = spill.spilled();
        drop(spill);
        (out.map(|mut c| c.remove(0)), spilled)
    }

    /// The aggregates `count` and `sum` of `f` over 5 s, `max`, `last` and `mean` over the
    /// lifetime,
    /// for the entity rows `(user, T)`, computed in pieces once the held rows reach
    /// `piece_min_rows`.
    fn aggregate(
        batches: Vec<RecordBatch>,
        entities: &[(i64, i64)],
        budget: &MemoryBudget,
        piece_min_rows: usize,
    ) -> Vec<ArrayRef> {
        use crate::registry::AggregationSpec;
        let aggregations: Vec<Aggregation> = [
            ("count", "5s"),
            ("sum", "5s"),
            ("max", "lifetime"),
            ("last", "lifetime"),
            ("mean", "lifetime"),
        ]
        .iter()
        .map(|(function, window)| {
            let spec = AggregationSpec {
                name: format!("{function}_{window}"),
                function: (*function).into(),
                column: (*function != "count").then(|| "f".into()),
                window: (*window).into(),
                k: None,
            };
            let float = |_: &str| Some(crate::signature::DataType::Float64);
            Aggregation::resolve(&spec, float, &["f".into()]).unwrap()
        })
        .collect();
        let fields: Vec<ArrowField> = aggregations
            .iter()
            .map(super::super::aggregate::field)
            .collect();
        let keys: Vec<EntityKey> = entities.iter().map(|e| EntityKey::new([e.0])).collect();
        let labels: Vec<i64> = entities.iter().map(|e| e.1).collect();
        let key_columns: Vec<(String, KeyType)> =
            KEYS.iter().map(|(n, t)| ((*n).to_owned(), *t)).collect();
        let ids = KeyFilter::new(&keys, &key_columns);
        let query = Query {
            keys: &keys,
            ids: &ids,
            labels: &labels,
            ttl: None,
            key_columns: &key_columns,
            fields: &fields,
            tie_columns: &[],
            aggregations: Some(&aggregations),
        };
        let root = tempfile::tempdir().unwrap();
        let mut spill = SpillDir::new(root.path().to_owned());
        let mut joiner = Joiner {
            query: &query,
            budget,
            spill: &mut spill,
            chunks: Vec::new(),
            piece_min_rows,
        };
        let rows = (0..keys.len() as u32).collect();
        joiner
            .round(0, &mut batches.into_iter().map(Ok), rows)
            .unwrap();
        joiner.assemble().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Aggregates computed in pieces on all cores equal those of one piece, bit for bit,
        /// in entity-row order, whatever the number of pieces.
        #[test]
        fn aggregates_in_pieces_equal_one_piece(
            features in proptest::collection::vec(
                (0i64..12, 0i64..30, 0i64..3, proptest::option::weighted(0.8, -5.0f64..5.0)),
                1..300,
            ),
            entities in proptest::collection::vec((0i64..14, -2i64..34), 0..120),
            batch_rows in 1usize..64,
            fan_out in 2usize..9,
        ) {
            // Times in seconds, so that the 5 s window slides over them.
            let features: Vec<_> = features
                .iter()
                .map(|&(k, e, c, v)| (k, e * 1_000_000, c, v))
                .collect();
            let entities: Vec<_> = entities.iter().map(|&(k, t)| (k, t * 1_000_000)).collect();
            let batches = feature_batches(&features, batch_rows);
            let whole = aggregate(batches.clone(), &entities, &MemoryBudget::default(), usize::MAX);
            let budget = tiny(usize::MAX, fan_out);
            let pieces = aggregate(batches, &entities, &budget, 1);
            prop_assert_eq!(whole.len(), pieces.len());
            for (w, p) in whole.iter().zip(&pieces) {
                prop_assert_eq!(w.to_data(), p.to_data());
            }
        }
    }

    fn tiny(bytes: usize, fan_out: usize) -> MemoryBudget {
        MemoryBudget {
            bytes,
            fan_out,
            spill_dir: None,
        }
    }

    fn entries(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, Iterator::count)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the budget and fan-out, partitioned answers equal the in-memory ones,
        /// bit for bit, in entity-row order (duplicate entity rows included).
        #[test]
        fn partitioned_answers_equal_the_in_memory_answers(
            features in proptest::collection::vec(
                (0i64..12, 0i64..30, 0i64..3, proptest::option::weighted(0.8, -5.0f64..5.0)),
                0..300,
            ),
            entities in proptest::collection::vec((0i64..14, -2i64..34), 0..120),
            ttl in proptest::option::of(0u64..10),
            batch_rows in 1usize..64,
            bytes in 1usize..6000,
            fan_out in 2usize..6,
        ) {
            let root = tempfile::tempdir().unwrap();
            let ttl = ttl.map(Duration::from_micros);
            let batches = || feature_batches(&features, batch_rows).into_iter().map(Ok);
            let (whole, spilled) = run(batches(), &entities, ttl, &MemoryBudget::default(), root.path());
            prop_assert_eq!(spilled.0, 0, "the default budget holds these rows");
            let (parts, _) = run(batches(), &entities, ttl, &tiny(bytes, fan_out), root.path());
            let whole = whole.unwrap();
            prop_assert_eq!(parts.unwrap().to_data(), whole.to_data());
            // Nor does the scan order: exact version ties (of different values) are broken by
            // the values.
            let reversed: Vec<_> = features.iter().rev().cloned().collect();
            let batches = feature_batches(&reversed, batch_rows).into_iter().map(Ok);
            let (backwards, _) = run(batches, &entities, ttl, &tiny(bytes, fan_out), root.path());
            prop_assert_eq!(backwards.unwrap().to_data(), whole.to_data());
            prop_assert_eq!(entries(root.path()), 0, "no spill folder is left");
        }
    }

    #[test]
    fn a_tiny_budget_spills_over_several_rounds_and_leaves_nothing_behind() {
        let root = tempfile::tempdir().unwrap();
        let features: Vec<_> = (0..2000i64)
            .map(|i| (i % 97, i % 50, i, Some(i as f64)))
            .collect();
        let entities: Vec<_> = (0..300i64).map(|i| (i % 101, i % 60)).collect();
        let batches = || feature_batches(&features, 128).into_iter().map(Ok);
        let (whole, _) = run(
            batches(),
            &entities,
            None,
            &MemoryBudget::default(),
            root.path(),
        );
        let whole = whole.unwrap();
        // 2000 rows are ~300 kB to join; 4 kB and a fan-out of 4 need 4 rounds of splitting.
        let (parts, (files, bytes)) = run(batches(), &entities, None, &tiny(4096, 4), root.path());
        assert_eq!(parts.unwrap().to_data(), whole.to_data());
        assert!(files > 4 + 16, "{files} spill files: more than one round");
        assert!(bytes > 2000 * 32, "{bytes} bytes spilled");
        assert!(whole.null_count() > 0 && whole.null_count() < entities.len());
        assert_eq!(entries(root.path()), 0, "the spill folder is removed");
    }

    #[test]
    fn a_scan_that_fails_after_spilling_leaves_no_spill_file() {
        let root = tempfile::tempdir().unwrap();
        let features: Vec<_> = (0..1000i64)
            .map(|i| (i % 31, i % 40, i, Some(1.0)))
            .collect();
        let entities: Vec<_> = (0..50i64).map(|i| (i % 31, 45)).collect();
        let spill_files_at_failure = std::cell::Cell::new(0);
        let batches =
            feature_batches(&features, 100)
                .into_iter()
                .map(Ok)
                .chain(std::iter::from_fn(|| {
                    // The spill folder, with files in it, exists when the scan fails.
                    let dirs: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
                    let files = dirs
                        .iter()
                        .map(|d| entries(&d.as_ref().unwrap().path()))
                        .sum();
                    spill_files_at_failure.set(files);
                    Some(Err(Error::new(ErrorKind::Io, "the scan broke")))
                }));
        let (out, _) = run(batches, &entities, None, &tiny(2048, 4), root.path());
        let err = out.unwrap_err();
        assert!(err.to_string().contains("the scan broke"), "{err}");
        assert!(spill_files_at_failure.get() > 0, "it had spilled");
        assert_eq!(entries(root.path()), 0, "the spill folder is removed");
    }

    #[test]
    fn bad_settings_are_refused_with_what_is_expected() {
        let zero = MemoryBudget::mib(0).check().unwrap_err().to_string();
        assert!(zero.contains("must be positive"), "{zero}");
        let one = tiny(1, 1).check().unwrap_err().to_string();
        assert!(one.contains("between 2 and 1024"), "{one}");
        MemoryBudget::default().check().unwrap();
    }
}
