//! Historical retrieval of aggregate views: each aggregation's value at each label time.
//!
//! The value for an entity row `(key, t)` is the one definition's (module `aggregate`): the
//! aggregation over the entity's feature-table rows with `t − w < event_ts ≤ t` (lifetime:
//! `event_ts ≤ t`), the created timestamp only ordering ties for `last`/`last_n`. With a TTL,
//! as for batch views, the view's features are null when the entity's newest row with
//! `event_ts ≤ t` is older than `t − ttl` or there is none. Otherwise an entity without rows
//! gets the empty window's values (count 0, the others null, `last_n` an empty list).
//!
//! This module answers the entity rows of one partition (module `partition` bounds memory
//! as for batch views and calls [`compute`] with the feature rows of a partition held): the
//! rows are grouped by entity and sorted by `event_ts`, the labels by time, and each entity's
//! values come from one sliding pass over its rows, not from a rescan per label: count, sum
//! and mean from a running exact sum that rows enter and leave ([`RunningSum`], one per
//! column and window, shared by those functions), every other function from the two-stack
//! queue of mergeable states (`aggregate::values_at_labels`).

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType as ArrowType, Field as ArrowField};

use super::filter::NOT_ASKED;
use super::missing;
use super::partition::{Query, timestamps};
use crate::aggregate::{
    Aggregation, Function, Output, OutputType, RunningSum, Window, values_at_labels,
};
use crate::apply::{CREATED_TS, EVENT_TS};
use crate::error::{Error, ErrorKind, Result};
use crate::materialize::arrow_value;
use crate::online::FeatureValue;
use crate::signature::{DataType, UTC};

/// The feature-table columns `aggregations` read, each once, in order of first use.
pub(super) fn columns(aggregations: &[Aggregation]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for column in aggregations.iter().filter_map(|a| a.column.as_deref()) {
        if !out.contains(&column) {
            out.push(column);
        }
    }
    out
}

/// The Arrow field of an aggregation's value: its output type, a list of it for `last_n`.
pub(super) fn field(aggregation: &Aggregation) -> ArrowField {
    let data_type = match aggregation.output {
        OutputType::Scalar(t) => t.to_arrow(),
        OutputType::List(t) => ArrowType::List(item_field(t).into()),
    };
    ArrowField::new(&aggregation.name, data_type, true)
}

fn item_field(t: DataType) -> ArrowField {
    ArrowField::new("item", t.to_arrow(), true)
}

/// The lower bound of the event times any label in `[min, max]` reads, for the scan: the
/// widest window's start, or the TTL's, whichever is earlier; `None` with a lifetime window.
pub(super) fn scan_start(
    aggregations: &[Aggregation],
    ttl_us: Option<i64>,
    min: i64,
) -> Option<i64> {
    let mut widest = ttl_us.unwrap_or(0);
    for a in aggregations {
        match a.window {
            Window::Lifetime => return None,
            Window::Span(w) => widest = widest.max(w),
        }
    }
    Some(min.saturating_sub(widest))
}

/// One feature row's place: entity id, event and created times, and where it is held.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    id: u32,
    event_ts: i64,
    created_ts: i64,
    batch: u32,
    row: u32,
}

/// The values of `aggregations` (one column each, aligned with `rows`) for the entity rows
/// `rows` of `query`, over the feature rows `held` (every row of these entities, in any order).
pub(super) fn compute(
    query: &Query<'_>,
    aggregations: &[Aggregation],
    held: &[RecordBatch],
    rows: &[u32],
) -> Result<Vec<ArrayRef>> {
    // Feature rows by entity (the ids the entity rows' keys were numbered with, read straight
    // from the key columns; a row no entity row asks for is left out), then by event time.
    let mut feature_rows = Vec::with_capacity(held.iter().map(RecordBatch::num_rows).sum());
    for (b, batch) in held.iter().enumerate() {
        let event = timestamps(batch, EVENT_TS)?;
        let created = timestamps(batch, CREATED_TS)?;
        let ids = query.ids.ids(batch)?;
        feature_rows.extend(
            (ids.into_iter().enumerate())
                .filter(|&(_, id)| id != NOT_ASKED)
                .map(|(i, id)| Row {
                    id,
                    event_ts: event.value(i),
                    created_ts: created.value(i),
                    batch: b as u32,
                    row: i as u32,
                }),
        );
    }
    feature_rows.sort_unstable();
    // Each aggregated column's values, in `feature_rows` order.
    let values: Vec<(&str, Vec<FeatureValue>)> = columns(aggregations)
        .into_iter()
        .map(|name| {
            let sources = held
                .iter()
                .map(|b| b.column_by_name(name).ok_or_else(|| missing(name)))
                .collect::<Result<Vec<_>>>()?;
            let column = feature_rows
                .iter()
                .map(|r| feature_value(sources[r.batch as usize], r.row as usize))
                .collect::<Result<Vec<_>>>()?;
            Ok((name, column))
        })
        .collect::<Result<_>>()?;
    // `count` of rows counts a value that is never null.
    let row_marker = FeatureValue::Boolean(true);
    let ttl_us = query.ttl.map(crate::micros::duration);

    // The entity rows, grouped by id, by label time.
    let mut labels: Vec<(u32, i64, u32)> = rows
        .iter()
        .enumerate()
        .map(|(k, &r)| (query.ids.entity_id(r), query.labels[r as usize], k as u32))
        .collect();
    labels.sort_unstable();

    // Answers go in the order of `labels` (grouped by entity), a group at a time, straight
    // into typed columns; one `take` puts them in the order of `rows` at the end.
    let mut columns: Vec<Answers> = aggregations
        .iter()
        .map(|a| Answers::new(a.output, rows.len()))
        .collect();
    let mut group_answers: Vec<Vec<Option<Output>>> =
        aggregations.iter().map(|_| Vec::new()).collect();
    let empty: Vec<Output> = aggregations
        .iter()
        .map(|a| a.new_state().evaluate())
        .collect::<Result<_>>()?;
    // Count, sum and mean take the fast route: one running sum per (column, window) serves
    // them all.
    let mut slots: Vec<(Option<&str>, Window, bool)> = Vec::new();
    let slot_of: Vec<Option<usize>> = aggregations
        .iter()
        .map(|a| {
            if !matches!(a.function, Function::Count | Function::Sum | Function::Mean) {
                return None;
            }
            let integer = matches!(a.input, Some(DataType::Int32 | DataType::Int64));
            let slot = (a.column.as_deref(), a.window, integer);
            Some(match slots.iter().position(|s| *s == slot) {
                Some(i) => i,
                None => {
                    slots.push(slot);
                    slots.len() - 1
                }
            })
        })
        .collect();
    let mut group_start = 0;
    while group_start < labels.len() {
        let id = labels[group_start].0;
        let group_end = group_start + labels[group_start..].partition_point(|l| l.0 == id);
        let group = &labels[group_start..group_end];
        group_start = group_end;
        for answers in &mut group_answers {
            answers.clear();
            answers.resize(group.len(), None);
        }
        // The entity's rows (none when no feature row has its key).
        let run_start = feature_rows.partition_point(|r| r.id < id);
        let run_end = run_start + feature_rows[run_start..].partition_point(|r| r.id == id);
        let run = &feature_rows[run_start..run_end];
        // With a TTL, a label whose newest visible row is too old (or absent) gets nulls.
        let live: Vec<bool> = group
            .iter()
            .map(|&(_, t, _)| match ttl_us {
                None => true,
                Some(ttl) => {
                    let visible = run.partition_point(|r| r.event_ts <= t);
                    visible > 0 && run[visible - 1].event_ts >= t.saturating_sub(ttl)
                }
            })
            .collect();
        let times: Vec<i64> = group
            .iter()
            .zip(&live)
            .filter(|(_, live)| **live)
            .map(|(l, _)| l.1)
            .collect();
        // Each live label's place in the group.
        let live_labels: Vec<usize> = (0..group.len()).filter(|&j| live[j]).collect();
        if !run.is_empty() && !times.is_empty() {
            for (slot, &(column, window, integer)) in slots.iter().enumerate() {
                let column =
                    column.map(|c| &values.iter().find(|(n, _)| *n == c).expect("listed").1);
                let value = |i: usize| column.map_or(&row_marker, |c| &c[run_start + i]);
                let mut sum = RunningSum::new(integer);
                let (mut entered, mut left) = (0, 0);
                for (&t, &j) in times.iter().zip(&live_labels) {
                    while entered < run.len() && run[entered].event_ts <= t {
                        sum.add(value(entered))?;
                        entered += 1;
                    }
                    while left < entered && !window.contains(t, run[left].event_ts) {
                        sum.remove(value(left))?;
                        left += 1;
                    }
                    for (a, aggregation) in aggregations.iter().enumerate() {
                        if slot_of[a] == Some(slot) {
                            let answer = sum.evaluate(aggregation.function).map_err(|e| {
                                e.with_context("aggregation", &aggregation.name)
                                    .with_context("entity row", rows[group[j].2 as usize])
                            })?;
                            group_answers[a][j] = Some(answer);
                        }
                    }
                }
            }
        }
        for (a, aggregation) in aggregations.iter().enumerate() {
            if times.is_empty() || (slot_of[a].is_some() && !run.is_empty()) {
                continue;
            }
            let answers: Vec<Result<Output>> = if run.is_empty() {
                times.iter().map(|_| Ok(empty[a].clone())).collect()
            } else {
                let column = aggregation
                    .column
                    .as_deref()
                    .map(|c| &values.iter().find(|(n, _)| *n == c).expect("listed").1);
                let entity_rows: Vec<(i64, i64, &FeatureValue)> = run
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let value = column.map_or(&row_marker, |c| &c[run_start + i]);
                        (r.event_ts, r.created_ts, value)
                    })
                    .collect();
                values_at_labels(aggregation, &entity_rows, &times)
                    .map_err(|e| e.with_context("aggregation", &aggregation.name))?
            };
            for (answer, &j) in answers.into_iter().zip(&live_labels) {
                let answer = answer.map_err(|e| {
                    e.with_context("aggregation", &aggregation.name)
                        .with_context("entity row", rows[group[j].2 as usize])
                })?;
                group_answers[a][j] = Some(answer);
            }
        }
        for (column, answers) in columns.iter_mut().zip(&mut group_answers) {
            for answer in answers.drain(..) {
                column.push(answer)?;
            }
        }
    }
    // Row `k` of the output is the answer at its place in `labels`.
    let mut place = vec![0u32; rows.len()];
    for (j, label) in labels.iter().enumerate() {
        place[label.2 as usize] = j as u32;
    }
    let place = arrow_array::UInt32Array::from(place);
    columns
        .into_iter()
        .map(|column| {
            let column = column.finish()?;
            arrow_select::take::take(column.as_ref(), &place, None).map_err(super::internal)
        })
        .collect()
}

/// A column of answers being built: typed for the common int64 and float64 results,
/// collected for the others.
enum Answers {
    Int64(Int64Builder),
    Float64(Float64Builder),
    Other(OutputType, Vec<Option<Output>>),
}

impl Answers {
    fn new(output: OutputType, capacity: usize) -> Self {
        match output {
            OutputType::Scalar(DataType::Int64) => {
                Answers::Int64(Int64Builder::with_capacity(capacity))
            }
            OutputType::Scalar(DataType::Float64) => {
                Answers::Float64(Float64Builder::with_capacity(capacity))
            }
            other => Answers::Other(other, Vec::new()),
        }
    }

    /// Appends an answer (`None`: null, a TTL miss).
    fn push(&mut self, answer: Option<Output>) -> Result<()> {
        use FeatureValue as V;
        match (self, answer) {
            (Answers::Int64(b), None | Some(Output::Value(V::Null))) => b.append_null(),
            (Answers::Int64(b), Some(Output::Value(V::Int64(x)))) => b.append_value(x),
            (Answers::Float64(b), None | Some(Output::Value(V::Null))) => b.append_null(),
            (Answers::Float64(b), Some(Output::Value(V::Float64(x)))) => b.append_value(x),
            (Answers::Other(_, answers), answer) => answers.push(answer),
            (Answers::Int64(_), _) => return Err(unexpected(DataType::Int64)),
            (Answers::Float64(_), _) => return Err(unexpected(DataType::Float64)),
        }
        Ok(())
    }

    fn finish(self) -> Result<ArrayRef> {
        match self {
            Answers::Int64(mut b) => Ok(std::sync::Arc::new(b.finish())),
            Answers::Float64(mut b) => Ok(std::sync::Arc::new(b.finish())),
            Answers::Other(output, answers) => to_array(output, answers),
        }
    }
}

/// The value at `row` of a feature-table column (one of the WIT types).
fn feature_value(column: &ArrayRef, row: usize) -> Result<FeatureValue> {
    arrow_value(column, row).ok_or_else(|| {
        Error::new(
            ErrorKind::SchemaMismatch,
            format!(
                "a feature-table column has the Arrow type {}, which no aggregation takes",
                column.data_type()
            ),
        )
    })
}

/// A column of answers (`None`: null, a TTL miss) as the aggregation's Arrow type.
fn to_array(output: OutputType, answers: Vec<Option<Output>>) -> Result<ArrayRef> {
    match output {
        OutputType::Scalar(t) => scalars(
            t,
            answers.into_iter().map(|a| match a {
                Some(Output::Value(v)) => Ok(v),
                None => Ok(FeatureValue::Null),
                Some(Output::List(_)) => Err(unexpected(t)),
            }),
        ),
        OutputType::List(t) => {
            let mut offsets = Vec::with_capacity(answers.len() + 1);
            offsets.push(0i32);
            let mut items = Vec::new();
            let mut valid = Vec::with_capacity(answers.len());
            for answer in answers {
                match answer {
                    Some(Output::List(values)) => {
                        items.extend(values);
                        valid.push(true);
                    }
                    None => valid.push(false),
                    Some(Output::Value(_)) => return Err(unexpected(t)),
                }
                let end = i32::try_from(items.len()).map_err(|_| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        "a last_n column exceeds 2^31 values",
                    )
                })?;
                offsets.push(end);
            }
            let child = scalars(t, items.into_iter().map(Ok))?;
            let list = ListArray::try_new(
                item_field(t).into(),
                OffsetBuffer::new(offsets.into()),
                child,
                Some(valid.into()),
            )
            .map_err(super::internal)?;
            Ok(std::sync::Arc::new(list))
        }
    }
}

fn unexpected(t: DataType) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("an aggregation of type {t} gave a value of another shape"),
    )
}

/// Values of type `t` (or null) as an Arrow array of `t`.
fn scalars(t: DataType, values: impl Iterator<Item = Result<FeatureValue>>) -> Result<ArrayRef> {
    use FeatureValue as V;
    let wrong = |v: &FeatureValue| {
        Error::new(
            ErrorKind::Internal,
            format!("an aggregation of type {t} gave the value {v:?}"),
        )
    };
    macro_rules! build {
        ($builder:expr, $variant:ident) => {{
            let mut b = $builder;
            for v in values {
                match v? {
                    V::Null => b.append_null(),
                    V::$variant(x) => b.append_value(x),
                    other => return Err(wrong(&other)),
                }
            }
            std::sync::Arc::new(b.finish()) as ArrayRef
        }};
    }
    Ok(match t {
        DataType::Boolean => build!(BooleanBuilder::new(), Boolean),
        DataType::Int32 => build!(Int32Builder::new(), Int32),
        DataType::Int64 => build!(Int64Builder::new(), Int64),
        DataType::Float32 => build!(Float32Builder::new(), Float32),
        DataType::Float64 => build!(Float64Builder::new(), Float64),
        DataType::Utf8 => build!(StringBuilder::new(), Utf8),
        DataType::Binary => build!(BinaryBuilder::new(), Binary),
        DataType::Timestamp => build!(
            TimestampMicrosecondBuilder::new().with_timezone(UTC),
            Timestamp
        ),
        DataType::Float32Vector(dimension) => {
            let mut b = arrow_array::builder::FixedSizeListBuilder::new(
                Float32Builder::new(),
                dimension as i32,
            )
            .with_field(ArrowField::new("item", ArrowType::Float32, false));
            for v in values {
                match v? {
                    V::Null => {
                        for _ in 0..dimension {
                            b.values().append_value(0.0);
                        }
                        b.append(false);
                    }
                    V::Float32Vector(x) if x.len() == dimension as usize => {
                        b.values().append_slice(&x);
                        b.append(true);
                    }
                    other => return Err(wrong(&other)),
                }
            }
            std::sync::Arc::new(b.finish()) as ArrayRef
        }
    })
}
