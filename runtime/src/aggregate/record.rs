//! The online record of one entity of an aggregate view: what serving needs to give every
//! aggregation's value at any `now` from the time of the materialization on, exactly as the
//! one definition says (`now − w < event_ts ≤ now`).
//!
//! A record splits the entity's rows at a **cut**, `cut = job_now − W − max(W, 1 day)` where
//! `W` is the longest finite window of the view (`job_now − 1 day` without one):
//!
//! - the rows with `event_ts > cut` are kept as they are: `(event_ts, created_ts, the values
//!   of the columns the aggregations read)`. A finite window at `now ≥ job_now − max(W, 1 d)`
//!   starts at or after the cut, so these rows are all it can hold: the margin lets a server
//!   whose clock is a little behind the materializer's still answer;
//! - the rows with `event_ts ≤ cut` only matter to `lifetime` aggregations: each keeps the
//!   [`State`] of all of them (merged with the kept rows at `now` it gives the state of every
//!   row with `event_ts ≤ now`, and states are equal for equal multisets of rows, so the value
//!   is bit for bit the one a fold over all rows gives); and the TTL needs the newest of their
//!   event times.
//!
//! A value at a `now` the record cannot answer (a window reaching below the cut) is an error,
//! never a value computed from too few rows.
//!
//! # Encoding
//!
//! One canonical byte form, versioned (integers little-endian; value bytes are the canonical
//! bytes of `value.rs`, so every NaN is the canonical one, which no aggregation can tell from
//! another NaN):
//!
//! ```text
//! [ format = 1 ]
//! [ cut: i64 ][ 0, or 1 and newest event_ts <= cut: i64 ]
//! [ states: u32 ] each: [ len: u32 ][ state bytes (encoding.rs) ]     (lifetime aggregations, in order)
//! [ columns: u32 ][ rows: u32 ]
//! each row: [ event_ts: i64 ][ created_ts: i64 ] and per column [ len: u32 ][ value bytes ]
//! ```
//!
//! Rows are sorted ascending by `(event_ts, created_ts, the row's value bytes as written)`
//! and every kept row has `event_ts > cut`. Decoding refuses every other spelling (another
//! format, unsorted rows, a row at or below the cut, a non-canonical state or value, trailing
//! bytes), so equal records are equal bytes; it never panics on arbitrary bytes.

use super::aggregation::Aggregation;
use super::encoding::{Reader, decode, encode, put_bytes};
use super::state::{Output, State};
use super::value::{canonical, canonical_bytes, from_canonical_bytes};
use super::window::Window;
use crate::error::{Error, ErrorKind, Result};
use crate::online::FeatureValue;

/// The format byte of a record; bump it (and keep reading the old one) when the layout changes.
pub const RECORD_FORMAT: u8 = 1;

/// One day in µs: the least margin a record keeps below the longest window.
const DAY_US: i64 = 86_400_000_000;

/// One kept row: its times and the values of the record's columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRow {
    /// Event time, µs.
    pub event_ts: i64,
    /// Created time, µs.
    pub created_ts: i64,
    /// The values of the record's columns ([`RecordLayout::columns`]), canonical.
    pub values: Vec<FeatureValue>,
}

/// The online record of one entity (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Rows with `event_ts <= cut` are folded into `lifetime`; the others are in `rows`.
    pub cut: i64,
    /// The newest event time among the folded rows.
    pub newest_before_cut: Option<i64>,
    /// The state of the folded rows, per lifetime aggregation, in aggregation order.
    pub lifetime: Vec<State>,
    /// Values per row.
    pub columns: u32,
    /// The rows with `event_ts > cut`, in canonical order.
    pub rows: Vec<RecordRow>,
}

/// How an aggregate view's aggregations read a record: which columns a record keeps, and
/// which column and lifetime state each aggregation reads.
#[derive(Clone, Debug)]
pub struct RecordLayout {
    aggregations: Vec<Aggregation>,
    columns: Vec<String>,
    column_of: Vec<Option<usize>>,
    /// Per aggregation, its index among the lifetime states.
    lifetime_of: Vec<Option<usize>>,
    lifetime: usize,
    longest: Option<i64>,
}

/// What a record gives at `now`.
#[derive(Debug)]
pub struct RecordValues {
    /// Each aggregation's value, in the view's order; an error for a value that cannot be
    /// given (an int64 sum out of range).
    pub outputs: Vec<Result<Output>>,
    /// The newest event time `<= now` among the entity's rows, if any (the TTL reads it).
    pub newest: Option<i64>,
}

impl RecordLayout {
    /// The layout of a view whose feature table stores `outputs` (in order) and whose
    /// aggregations are `aggregations`: a record keeps the columns some aggregation reads, in
    /// `outputs` order.
    pub fn new(aggregations: Vec<Aggregation>, outputs: &[String]) -> Self {
        let columns: Vec<String> = outputs
            .iter()
            .filter(|c| {
                aggregations
                    .iter()
                    .any(|a| a.column.as_deref() == Some(c.as_str()))
            })
            .cloned()
            .collect();
        let column_of = aggregations
            .iter()
            .map(|a| {
                a.column
                    .as_ref()
                    .and_then(|c| columns.iter().position(|k| k == c))
            })
            .collect();
        let mut lifetime = 0;
        let lifetime_of = aggregations
            .iter()
            .map(|a| {
                (a.window == Window::Lifetime).then(|| {
                    lifetime += 1;
                    lifetime - 1
                })
            })
            .collect();
        let longest = aggregations
            .iter()
            .filter_map(|a| match a.window {
                Window::Span(w) => Some(w),
                Window::Lifetime => None,
            })
            .max();
        RecordLayout {
            aggregations,
            columns,
            column_of,
            lifetime_of,
            lifetime,
            longest,
        }
    }

    /// The aggregations, in the view's order.
    pub fn aggregations(&self) -> &[Aggregation] {
        &self.aggregations
    }

    /// The columns a record keeps per row, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The cut of a materialization at `job_now` (see the module docs).
    pub fn cut(&self, job_now: i64) -> i64 {
        let longest = self.longest.unwrap_or(0);
        job_now
            .saturating_sub(longest)
            .saturating_sub(longest.max(DAY_US))
    }

    /// An empty record builder for a materialization at `job_now`.
    pub fn builder(&self, job_now: i64) -> RecordBuilder {
        RecordBuilder {
            cut: self.cut(job_now),
            newest_before_cut: None,
            lifetime: (self.aggregations.iter())
                .filter(|a| a.window == Window::Lifetime)
                .map(Aggregation::new_state)
                .collect(),
            rows: Vec::new(),
        }
    }

    /// The value aggregation `i` reads from a row of record values: its column's value, or
    /// any non-null value for `count` of rows.
    fn input<'v>(&self, i: usize, values: &'v [FeatureValue]) -> &'v FeatureValue {
        const ROW: FeatureValue = FeatureValue::Boolean(true);
        match self.column_of[i] {
            Some(c) => &values[c],
            None => &ROW,
        }
    }

    /// Every aggregation's value for an entity with no rows (the empty-window rule: counts
    /// 0, others null, `last_n` an empty list).
    pub fn empty_values(&self) -> Vec<Result<Output>> {
        (self.aggregations.iter())
            .map(|a| a.new_state().evaluate())
            .collect()
    }

    /// Every aggregation's value at `now` from `record`: exactly what
    /// [`Aggregation::value_at`] gives on all the entity's rows. An error when the record does
    /// not fit this layout, or cannot answer at `now` (a window reaching below its cut).
    pub fn values_at(&self, record: &Record, now: i64) -> Result<RecordValues> {
        if record.columns as usize != self.columns.len() || record.lifetime.len() != self.lifetime {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the online record has {} columns and {} lifetime states, the view {} and {}; \
                     materialize the view again",
                    record.columns,
                    record.lifetime.len(),
                    self.columns.len(),
                    self.lifetime
                ),
            ));
        }
        let reach = self
            .longest
            .map_or(i128::from(now), |w| i128::from(now) - i128::from(w));
        if reach < i128::from(record.cut) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the online record keeps the rows after {} µs (those of its \
                     materialization's windows and a margin); the value at {now} µs needs older \
                     rows: materialize the view again, or ask for a later time",
                    record.cut
                ),
            ));
        }
        let mut outputs = Vec::with_capacity(self.aggregations.len());
        for (i, aggregation) in self.aggregations.iter().enumerate() {
            let rows =
                (record.rows.iter()).map(|r| (r.event_ts, r.created_ts, self.input(i, &r.values)));
            outputs.push(match self.lifetime_of[i] {
                None => aggregation.value_at(rows, now),
                Some(l) => lifetime_value(aggregation, &record.lifetime[l], rows, now),
            });
        }
        let newest = (record.rows.iter())
            .map(|r| r.event_ts)
            .filter(|&e| e <= now)
            .max()
            .or(record.newest_before_cut);
        Ok(RecordValues { outputs, newest })
    }
}

/// A lifetime aggregation's value at `now`: the state of the rows folded at the cut, merged
/// with the kept rows at or before `now`.
fn lifetime_value<'v>(
    aggregation: &Aggregation,
    folded: &State,
    rows: impl Iterator<Item = (i64, i64, &'v FeatureValue)>,
    now: i64,
) -> Result<Output> {
    let mut state = aggregation.new_state();
    state.merge(folded)?;
    for (event_ts, created_ts, value) in rows {
        if event_ts <= now {
            state.update(value, event_ts, created_ts)?;
        }
    }
    state.evaluate()
}

/// Builds one entity's record from its rows, given in any order.
#[derive(Clone, Debug)]
pub struct RecordBuilder {
    cut: i64,
    newest_before_cut: Option<i64>,
    lifetime: Vec<State>,
    rows: Vec<RecordRow>,
}

impl RecordBuilder {
    /// Adds a row: `values` are those of the layout's [`RecordLayout::columns`].
    pub fn add(
        &mut self,
        layout: &RecordLayout,
        event_ts: i64,
        created_ts: i64,
        values: Vec<FeatureValue>,
    ) -> Result<()> {
        self.add_with(layout, event_ts, created_ts, || Ok(values))
    }

    /// [`add`](Self::add), with the row's values read only if the record needs them: a row
    /// older than the cut of a view with no lifetime aggregation only moves the newest time
    /// before the cut, and most rows of a long history are such rows.
    pub fn add_with(
        &mut self,
        layout: &RecordLayout,
        event_ts: i64,
        created_ts: i64,
        values: impl FnOnce() -> Result<Vec<FeatureValue>>,
    ) -> Result<()> {
        if event_ts > self.cut {
            let values = values()?;
            debug_assert_eq!(values.len(), layout.columns.len());
            self.rows.push(RecordRow {
                event_ts,
                created_ts,
                values: values.into_iter().map(|v| canonical(&v)).collect(),
            });
            return Ok(());
        }
        self.newest_before_cut = self.newest_before_cut.max(Some(event_ts));
        if layout.lifetime_of.iter().all(Option::is_none) {
            return Ok(());
        }
        let values = values()?;
        debug_assert_eq!(values.len(), layout.columns.len());
        for (i, l) in layout.lifetime_of.iter().enumerate() {
            if let Some(l) = l {
                self.lifetime[*l].update(layout.input(i, &values), event_ts, created_ts)?;
            }
        }
        Ok(())
    }

    /// The record, its rows in canonical order.
    pub fn finish(self, layout: &RecordLayout) -> Record {
        let mut rows = self.rows;
        rows.sort_by_cached_key(|r| (r.event_ts, r.created_ts, row_bytes(&r.values)));
        Record {
            cut: self.cut,
            newest_before_cut: self.newest_before_cut,
            lifetime: self.lifetime,
            columns: layout.columns.len() as u32,
            rows,
        }
    }
}

/// A row's values as written: per value its length and canonical bytes.
fn row_bytes(values: &[FeatureValue]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        put_bytes(&mut out, &canonical_bytes(v));
    }
    out
}

/// The canonical bytes of a record.
pub fn encode_record(record: &Record) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT];
    out.extend(record.cut.to_le_bytes());
    match record.newest_before_cut {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            out.extend(t.to_le_bytes());
        }
    }
    out.extend((record.lifetime.len() as u32).to_le_bytes());
    for state in &record.lifetime {
        put_bytes(&mut out, &encode(state));
    }
    out.extend(record.columns.to_le_bytes());
    out.extend((record.rows.len() as u32).to_le_bytes());
    let mut rows: Vec<(i64, i64, Vec<u8>)> = (record.rows.iter())
        .map(|r| (r.event_ts, r.created_ts, row_bytes(&r.values)))
        .collect();
    rows.sort();
    for (event_ts, created_ts, bytes) in rows {
        out.extend(event_ts.to_le_bytes());
        out.extend(created_ts.to_le_bytes());
        out.extend(bytes);
    }
    out
}

/// Reads what [`encode_record`] wrote; any other bytes are an error naming what is wrong.
pub fn decode_record(bytes: &[u8]) -> Result<Record> {
    let bad = |what: &str| bad_record(what);
    let mut r = Reader(bytes);
    let format = r.u8()?;
    if format != RECORD_FORMAT {
        return Err(bad(&format!(
            "format {format} is unknown (this version reads format {RECORD_FORMAT})"
        )));
    }
    let cut = r.i64()?;
    let newest_before_cut = match r.u8()? {
        0 => None,
        1 => {
            let t = r.i64()?;
            if t > cut {
                return Err(bad("the newest folded row is after the cut"));
            }
            Some(t)
        }
        _ => return Err(bad("a marker is neither 0 nor 1")),
    };
    let states = r.u32()? as usize;
    // Every state takes at least 4 bytes: a length cannot promise more than the bytes hold.
    if states > r.0.len() / 4 {
        return Err(bad("more states than bytes"));
    }
    let lifetime = (0..states)
        .map(|_| decode(r.bytes()?))
        .collect::<Result<Vec<_>>>()?;
    let columns = r.u32()?;
    let n = r.u32()? as usize;
    if n > r.0.len() / 16 {
        return Err(bad("more rows than bytes"));
    }
    let mut rows = Vec::with_capacity(n);
    let mut previous: Option<(i64, i64, &[u8])> = None;
    for _ in 0..n {
        let event_ts = r.i64()?;
        let created_ts = r.i64()?;
        if event_ts <= cut {
            return Err(bad("a kept row is at or before the cut"));
        }
        let start = r.0;
        let mut values = Vec::new();
        for _ in 0..columns {
            values.push(from_canonical_bytes(r.bytes()?)?);
        }
        let written = &start[..start.len() - r.0.len()];
        let key = (event_ts, created_ts, written);
        if previous.is_some_and(|p| p > key) {
            return Err(bad("rows are not in canonical order"));
        }
        previous = Some(key);
        rows.push(RecordRow {
            event_ts,
            created_ts,
            values,
        });
    }
    if !r.0.is_empty() {
        return Err(bad("trailing bytes after the record"));
    }
    Ok(Record {
        cut,
        newest_before_cut,
        lifetime,
        columns,
        rows,
    })
}

fn bad_record(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("invalid online aggregate record: {what}; expected bytes written by this version"),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::registry::AggregationSpec;
    use crate::signature::DataType;

    fn aggregation(name: &str, function: &str, window: &str, k: Option<u32>) -> Aggregation {
        let spec = AggregationSpec {
            name: name.into(),
            function: function.into(),
            column: (function != "count").then(|| "x".into()),
            window: window.into(),
            k,
        };
        Aggregation::resolve(&spec, |_| Some(DataType::Float64), &["x".into()]).unwrap()
    }

    fn layout() -> RecordLayout {
        RecordLayout::new(
            vec![
                aggregation("n", "count", "10s", None),
                aggregation("s", "sum", "lifetime", None),
                aggregation("m", "max", "5s", None),
                aggregation("l", "last_n", "lifetime", Some(3)),
            ],
            &["y".into(), "x".into()],
        )
    }

    const S: i64 = 1_000_000;

    fn rows() -> Vec<(i64, i64, FeatureValue)> {
        vec![
            (100 * S, 1, FeatureValue::Float64(1e16)),
            (-5 * S, 2, FeatureValue::Float64(1.0)),
            (100 * S, 1, FeatureValue::Float64(-1e16)),
            (200 * DAY_US, 0, FeatureValue::Null),
            (
                200 * DAY_US - 3 * S,
                7,
                FeatureValue::Float64(f64::from_bits(0x7ff8_0000_0000_0001)),
            ),
            (200 * DAY_US - 3 * S, 7, FeatureValue::Float64(-0.0)),
            (200 * DAY_US + 2 * S, 7, FeatureValue::Float64(2.5)),
        ]
    }

    fn built(layout: &RecordLayout, job_now: i64, order: &[usize]) -> Record {
        let rows = rows();
        let mut b = layout.builder(job_now);
        for &i in order {
            let (e, c, v) = &rows[i];
            b.add(layout, *e, *c, vec![v.clone()]).unwrap();
        }
        b.finish(layout)
    }

    #[test]
    fn a_record_gives_what_a_fold_over_every_row_gives() {
        let layout = layout();
        let job_now = 200 * DAY_US;
        let record = built(&layout, job_now, &[0, 1, 2, 3, 4, 5, 6]);
        assert!(record.newest_before_cut.is_some() && !record.lifetime.is_empty());
        let other = built(&layout, job_now, &[6, 5, 4, 3, 2, 1, 0]);
        assert_eq!(encode_record(&record), encode_record(&other));
        let bytes = encode_record(&record);
        assert_eq!(decode_record(&bytes).unwrap(), record);
        let all = rows();
        for now in [
            job_now - DAY_US,
            job_now - 3 * S - 1,
            job_now - 3 * S,
            job_now,
            job_now + 2 * S,
            job_now + 9 * S,
            job_now + 100 * DAY_US,
        ] {
            let got = layout.values_at(&record, now).unwrap();
            for (i, a) in layout.aggregations().iter().enumerate() {
                let want = a.value_at(
                    all.iter().map(|(e, c, v)| {
                        (
                            *e,
                            *c,
                            match a.column {
                                Some(_) => v,
                                None => &FeatureValue::Boolean(true),
                            },
                        )
                    }),
                    now,
                );
                assert_eq!(
                    got.outputs[i].as_ref().unwrap(),
                    &want.unwrap(),
                    "{} at {now}",
                    a.name
                );
            }
            let newest = all.iter().map(|r| r.0).filter(|&e| e <= now).max();
            assert_eq!(got.newest, newest);
        }
        // Too early for the 10 s window: refused, not answered from too few rows.
        let e = layout
            .values_at(&record, layout.cut(job_now) + 9 * S)
            .unwrap_err();
        assert!(e.message().contains("needs older rows"), "{e}");
    }

    #[test]
    fn other_spellings_are_refused() {
        let layout = layout();
        let record = built(&layout, 200 * DAY_US, &[0, 1, 2, 3, 4, 5, 6]);
        let bytes = encode_record(&record);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_record(&trailing).is_err());
        let mut format = bytes.clone();
        format[0] = 2;
        assert!(
            decode_record(&format)
                .unwrap_err()
                .message()
                .contains("format 2")
        );
        // Two rows swapped are another spelling of the same record.
        let mut swapped = record.clone();
        swapped.rows.swap(0, 1);
        let mut raw = vec![RECORD_FORMAT];
        raw.extend(swapped.cut.to_le_bytes());
        raw.push(1);
        raw.extend(swapped.newest_before_cut.unwrap().to_le_bytes());
        raw.extend((swapped.lifetime.len() as u32).to_le_bytes());
        for s in &swapped.lifetime {
            put_bytes(&mut raw, &encode(s));
        }
        raw.extend(1u32.to_le_bytes());
        raw.extend((swapped.rows.len() as u32).to_le_bytes());
        for r in &swapped.rows {
            raw.extend(r.event_ts.to_le_bytes());
            raw.extend(r.created_ts.to_le_bytes());
            raw.extend(row_bytes(&r.values));
        }
        assert!(
            decode_record(&raw)
                .unwrap_err()
                .message()
                .contains("canonical order")
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(record) = decode_record(&bytes) {
                prop_assert_eq!(encode_record(&record), bytes);
            }
        }

        #[test]
        fn decoding_mutated_records_never_panics(i in 0usize..400, byte in any::<u8>()) {
            let layout = layout();
            let record = built(&layout, 200 * DAY_US, &[0, 1, 2, 3, 4, 5, 6]);
            let mut bytes = encode_record(&record);
            let i = i % bytes.len();
            bytes[i] = byte;
            if let Ok(record) = decode_record(&bytes) {
                prop_assert_eq!(encode_record(&record), bytes);
            }
        }
    }
}
