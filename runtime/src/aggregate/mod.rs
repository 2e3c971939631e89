//! Windowed aggregations, computed exactly: the core every path shares (no I/O).
//!
//! # The one definition of a value
//!
//! The value of an aggregation with window `w` at time `t`, for an entity, aggregates that
//! entity's source rows with
//!
//! ```text
//! t - w < event_ts <= t          (lifetime: event_ts <= t)
//! ```
//!
//! the same inclusive upper bound as the point-in-time join of batch views. The created
//! timestamp never hides a row: a row with `event_ts <= t` counts even if it was created (landed
//! in the source) after `t`, exactly as historical retrieval (`historical/asof.rs`) and online
//! serving (`online/status.rs`) treat `created_ts` today, where it only breaks ties. Here it
//! breaks the ties of `last`/`last_n` the same way: rows are ordered by
//! `(event_ts, created_ts)`, then by the value's canonical bytes, so the order is total.
//!
//! # Rules every function follows
//!
//! - **Nulls** are skipped by every function (`count` counts non-null values; without a
//!   column it counts rows).
//! - **Empty windows** (no non-null value): the counting functions (`count`,
//!   `count_distinct`, `approx_count_distinct`) return 0; every other function returns null
//!   (`last_n` an empty list). One rule: nothing to summarize is null, nothing to count is 0.
//! - **Arithmetic is exact and rounded once.** Integer sums are exact in `i128`; a sum that does
//!   not fit the `int64` result is an error, never a wrapped or saturated value. Float sums,
//!   means, variances and standard deviations are computed from exact sums of the values and
//!   of their squares (`exact_sum.rs`) and rounded once to the nearest double, ties to even
//!   (`round.rs`). So `1e16 + 1 - 1e16 = 1`, and no order or grouping of rows changes a bit.
//! - **NaN and infinities** (sum, mean): any NaN, or both +inf and −inf, gives NaN; otherwise
//!   +inf or −inf if present; otherwise the rounded exact sum of the finite values (which is
//!   ±inf only when that exact value rounds to it). Variance and stddev are NaN if any input
//!   is NaN or infinite. Every NaN output is the canonical quiet NaN.
//! - **−0.0**: a sum (and mean) is −0.0 only when every value is −0.0 (IEEE's rule for a
//!   sequence of additions); a non-zero exact value that rounds to zero keeps its sign.
//!   `min`/`max` order −0.0 before +0.0; distinct counting treats them as two values.
//! - **min/max** use the total order `-inf < ... < -0.0 < +0.0 < ... < +inf < NaN` for floats
//!   (so `max` is NaN when any value is NaN) and the natural order for other types.
//! - **variance/stddev** are the population variance `(n·Σx² − (Σx)²) / n²` and its square
//!   root, each rounded once from the exact value (a single value gives 0).
//! - **approx_count_distinct** is HyperLogLog with a fixed hash and precision (`hll.rs`).
//!
//! # Pieces
//!
//! - [`Function`] and its type rules; [`Window`] and tiles ([`tile_of`], [`cover`]);
//! - [`State`]: a partial aggregate with `update`, `merge` (associative, commutative) and
//!   `evaluate`; [`encode`]/[`decode`]: its one canonical, versioned byte form;
//! - [`Aggregation`]: one declared aggregation, checked against its column's type;
//! - [`Record`]: what the online store holds per entity (the recent rows and the lifetime
//!   states), with [`RecordLayout::values_at`] giving every aggregation's value at `now`;
//! - [`values_at_labels`]: one entity's values at many label times, in one sliding pass, and
//!   [`RunningSum`]: count, sum and mean of a window that rows enter and leave (the offline
//!   computations `historical/aggregate.rs` runs).
//!
//! There is no `subtract`: a window's state is merged from the tiles covering it. The exact sums
//! could subtract exactly (they are integers), which prefix sums over sorted events may use.
//!
//! ```
//! use skewless_runtime::aggregate::{Function, Output, State};
//! use skewless_runtime::online::FeatureValue;
//!
//! let mut a = State::new(Function::Sum, false);
//! let mut b = State::new(Function::Sum, false);
//! a.update(&FeatureValue::Float64(1e16), 1, 0)?;
//! b.update(&FeatureValue::Float64(1.0), 2, 0)?;
//! b.update(&FeatureValue::Float64(-1e16), 3, 0)?;
//! a.merge(&b)?;
//! assert_eq!(a.evaluate()?, Output::Value(FeatureValue::Float64(1.0)));
//! # Ok::<(), skewless_runtime::error::Error>(())
//! ```

mod aggregation;
mod encoding;
mod exact_sum;
mod function;
mod hll;
mod record;
mod round;
mod running;
mod sliding;
mod state;
mod value;
mod window;

pub use aggregation::Aggregation;
pub use encoding::{FORMAT, decode, encode};
pub use function::{FUNCTION_NAMES, Function, MAX_LAST_N, OutputType};
pub use record::{
    RECORD_FORMAT, Record, RecordBuilder, RecordLayout, RecordRow, RecordValues, decode_record,
    encode_record,
};
pub use running::RunningSum;
pub use sliding::values_at_labels;
pub use state::{Output, State};
pub use window::{Window, cover, tile_of};

#[cfg(test)]
mod tests;
