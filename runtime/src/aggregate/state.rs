//! Partial aggregates: the state of one function over a set of rows, built by `update`,
//! combined by `merge`, read by `evaluate`.
//!
//! A state is a function of the *multiset* of rows it has seen: `update` in any order, and
//! `merge` in any grouping, give equal states (and so, by `encoding.rs`, equal bytes). That is
//! what lets a tile built in one materialization run, merged with tiles from other runs in
//! any order, give the very bits a batch fold over the same rows gives.

use std::collections::BTreeMap;

use num_bigint::{BigInt, BigUint, Sign};

use super::exact_sum::{ExactSum, Scale};
use super::function::Function;
use super::hll::Hll;
use super::round;
use super::value::{canonical, canonical_bytes, total_cmp, type_name};
use crate::error::{Error, ErrorKind, Result};
use crate::online::FeatureValue;

/// The result of evaluating a state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// One value (null for an empty window, except for counts).
    Value(FeatureValue),
    /// A list of values (`last_n`), latest first; empty for an empty window.
    List(Vec<FeatureValue>),
}

/// IEEE special values seen by a float sum; merged by `or`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Specials {
    pub(crate) nan: bool,
    pub(crate) pos_inf: bool,
    pub(crate) neg_inf: bool,
}

impl Specials {
    fn merge(&mut self, o: Specials) {
        self.nan |= o.nan;
        self.pos_inf |= o.pos_inf;
        self.neg_inf |= o.neg_inf;
    }

    /// The result any special input forces, if one does.
    fn forced(self) -> Option<f64> {
        match (
            self.nan || (self.pos_inf && self.neg_inf),
            self.pos_inf,
            self.neg_inf,
        ) {
            (true, _, _) => Some(f64::NAN),
            (false, true, _) => Some(f64::INFINITY),
            (false, _, true) => Some(f64::NEG_INFINITY),
            _ => None,
        }
    }
}

/// Sums (and sums of squares) of a numeric column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Moments {
    /// Non-null values seen, specials included.
    pub(crate) n: u64,
    /// Sum of the finite values, units 2^-1074.
    pub(crate) sum: ExactSum,
    /// Sum of their squares, units 2^-2148 (only for variance and stddev).
    pub(crate) squares: Option<ExactSum>,
    pub(crate) specials: Specials,
    /// Whether every value seen is -0.0 (IEEE: a sum is -0.0 only when every term is).
    pub(crate) all_negative_zero: bool,
}

/// A ranked row for `last` and `last_n`: ordered by `(event_ts, created_ts, value bytes)`.
pub(crate) type Ranked = (i64, i64, Vec<u8>);

/// The state of each function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `count`.
    Count(u64),
    /// `sum` of an integer column: exact in `i128` (2^64 values of 2^63 cannot overflow it).
    IntSum {
        /// Values seen.
        n: u64,
        /// Their sum.
        sum: i128,
    },
    /// `sum` of a float column, `mean`, `variance`, `stddev`.
    Moments(Function, Box<Moments>),
    /// `min` (the least canonical value so far).
    Min(Option<FeatureValue>),
    /// `max`.
    Max(Option<FeatureValue>),
    /// `last_n` with `k`, and `last` as `k = 1`: the greatest `k` ranked rows, ascending.
    Last(Function, Vec<Ranked>),
    /// `count_distinct`: each distinct canonical value with its multiplicity is not needed;
    /// the set is.
    Distinct(BTreeMap<Vec<u8>, ()>),
    /// `approx_count_distinct`.
    Hll(Hll),
}

/// The partial aggregate of one function over a multiset of rows (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State(pub(crate) Kind);

impl State {
    /// The empty state of `function` over a column of integers (`int32`, `int64`) when
    /// `integer_input`, of anything else otherwise (only `sum` tells them apart).
    pub fn new(function: Function, integer_input: bool) -> Self {
        State(Kind::new(function, integer_input))
    }

    /// Adds one row's value. Nulls are skipped by every function; a value of a type the
    /// function cannot take is an error.
    pub fn update(&mut self, value: &FeatureValue, event_ts: i64, created_ts: i64) -> Result<()> {
        self.0.update(value, event_ts, created_ts)
    }

    /// The value of `count` over `n` values.
    pub(crate) fn counted(n: u64) -> Result<Output> {
        Kind::Count(n).evaluate()
    }

    /// The value of an integer `sum` of `n` values whose exact sum is `sum`.
    pub(crate) fn integer_sum(n: u64, sum: i128) -> Result<Output> {
        Kind::IntSum { n, sum }.evaluate()
    }

    /// Merges another state of the same function into this one (associative, commutative).
    pub fn merge(&mut self, other: &State) -> Result<()> {
        self.0.merge(&other.0)
    }

    /// The function this state belongs to.
    pub fn function(&self) -> Function {
        self.0.function()
    }

    /// The aggregate's value (see the module docs of `aggregate` for every rule).
    pub fn evaluate(&self) -> Result<Output> {
        self.0.evaluate()
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

impl Kind {
    /// The empty state of `function` over a column of integers (`int32`, `int64`) when
    /// `integer_input`, of anything else otherwise (only `sum` tells them apart).
    pub(crate) fn new(function: Function, integer_input: bool) -> Self {
        let moments = |squares: bool| Moments {
            n: 0,
            sum: ExactSum::new(Scale::Linear),
            squares: squares.then(|| ExactSum::new(Scale::Square)),
            specials: Specials::default(),
            all_negative_zero: true,
        };
        match function {
            Function::Count => Kind::Count(0),
            Function::Sum if integer_input => Kind::IntSum { n: 0, sum: 0 },
            Function::Sum | Function::Mean => Kind::Moments(function, Box::new(moments(false))),
            Function::Variance | Function::Stddev => {
                Kind::Moments(function, Box::new(moments(true)))
            }
            Function::Min => Kind::Min(None),
            Function::Max => Kind::Max(None),
            Function::Last | Function::LastN(_) => Kind::Last(function, Vec::new()),
            Function::CountDistinct => Kind::Distinct(BTreeMap::new()),
            Function::ApproxCountDistinct => Kind::Hll(Hll::default()),
        }
    }

    /// Adds one row's value. Nulls are skipped by every function.
    pub(crate) fn update(
        &mut self,
        value: &FeatureValue,
        event_ts: i64,
        created_ts: i64,
    ) -> Result<()> {
        if value.is_null() {
            return Ok(());
        }
        match self {
            Kind::Count(n) => *n += 1,
            Kind::IntSum { n, sum } => {
                let x = match value {
                    FeatureValue::Int32(x) => i64::from(*x),
                    FeatureValue::Int64(x) => *x,
                    other => return Err(mistyped("an integer", other)),
                };
                *n += 1;
                *sum = sum
                    .checked_add(i128::from(x))
                    .ok_or_else(|| invalid("an integer sum left the range of i128".into()))?;
            }
            Kind::Moments(_, m) => {
                m.n += 1;
                match value {
                    FeatureValue::Int32(x) => m.add_int(i64::from(*x)),
                    FeatureValue::Int64(x) => m.add_int(*x),
                    FeatureValue::Float32(x) => m.add_float(f64::from(*x)),
                    FeatureValue::Float64(x) => m.add_float(*x),
                    other => return Err(mistyped("a number", other)),
                }
            }
            Kind::Min(best) => keep(best, value, std::cmp::Ordering::Less),
            Kind::Max(best) => keep(best, value, std::cmp::Ordering::Greater),
            Kind::Last(function, rows) => {
                let k = keep_count(*function);
                insert_ranked(rows, (event_ts, created_ts, canonical_bytes(value)), k);
            }
            Kind::Distinct(set) => {
                set.insert(canonical_bytes(value), ());
            }
            Kind::Hll(h) => h.add(value),
        }
        Ok(())
    }

    /// Merges another state of the same function into this one.
    pub(crate) fn merge(&mut self, other: &Kind) -> Result<()> {
        match (self, other) {
            (Kind::Count(a), Kind::Count(b)) => *a += b,
            (Kind::IntSum { n, sum }, Kind::IntSum { n: n2, sum: s2 }) => {
                *n += n2;
                *sum = sum
                    .checked_add(*s2)
                    .ok_or_else(|| invalid("an integer sum left the range of i128".into()))?;
            }
            (Kind::Moments(f, a), Kind::Moments(g, b)) if f == g => {
                a.n += b.n;
                a.sum.merge(&b.sum);
                if let (Some(x), Some(y)) = (&mut a.squares, &b.squares) {
                    x.merge(y);
                }
                a.specials.merge(b.specials);
                a.all_negative_zero &= b.all_negative_zero;
            }
            (Kind::Min(a), Kind::Min(Some(b))) => keep(a, b, std::cmp::Ordering::Less),
            (Kind::Max(a), Kind::Max(Some(b))) => keep(a, b, std::cmp::Ordering::Greater),
            (Kind::Min(_), Kind::Min(None)) | (Kind::Max(_), Kind::Max(None)) => {}
            (Kind::Last(f, a), Kind::Last(g, b)) if f == g => {
                let k = keep_count(*f);
                for row in b {
                    insert_ranked(a, row.clone(), k);
                }
            }
            (Kind::Distinct(a), Kind::Distinct(b)) => {
                a.extend(b.iter().map(|(k, ())| (k.clone(), ())));
            }
            (Kind::Hll(a), Kind::Hll(b)) => a.merge(b),
            (a, b) => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!(
                        "cannot merge aggregate states of different functions ({} and {})",
                        a.describe(),
                        b.describe()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The function this state belongs to (`sum` for both integer and float sums).
    pub(crate) fn function(&self) -> Function {
        match self {
            Kind::Count(_) => Function::Count,
            Kind::IntSum { .. } => Function::Sum,
            Kind::Moments(f, _) | Kind::Last(f, _) => *f,
            Kind::Min(_) => Function::Min,
            Kind::Max(_) => Function::Max,
            Kind::Distinct(_) => Function::CountDistinct,
            Kind::Hll(_) => Function::ApproxCountDistinct,
        }
    }

    fn describe(&self) -> String {
        self.function().to_string()
    }

    /// The aggregate's value (see the module docs of `aggregate` for every rule).
    pub(crate) fn evaluate(&self) -> Result<Output> {
        let value = match self {
            Kind::Count(n) => FeatureValue::Int64(count(*n)?),
            Kind::IntSum { n: 0, .. } => FeatureValue::Null,
            Kind::IntSum { sum, .. } => FeatureValue::Int64(i64::try_from(*sum).map_err(|_| {
                invalid(format!(
                    "the exact integer sum {sum} does not fit in int64; sum the column as float64 \
                     in the transform to get a rounded value"
                ))
            })?),
            Kind::Moments(_, m) if m.n == 0 => FeatureValue::Null,
            Kind::Moments(f, m) => FeatureValue::Float64(m.evaluate(*f)),
            Kind::Min(v) | Kind::Max(v) => v.clone().unwrap_or(FeatureValue::Null),
            Kind::Last(Function::Last, rows) => match rows.last() {
                Some(row) => super::value::from_canonical_bytes(&row.2)?,
                None => FeatureValue::Null,
            },
            Kind::Last(_, rows) => {
                return Ok(Output::List(
                    rows.iter()
                        .rev()
                        .map(|r| super::value::from_canonical_bytes(&r.2))
                        .collect::<Result<_>>()?,
                ));
            }
            Kind::Distinct(set) => FeatureValue::Int64(count(set.len() as u64)?),
            Kind::Hll(h) => FeatureValue::Int64(h.estimate()),
        };
        Ok(Output::Value(value))
    }
}

fn count(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| invalid(format!("the count {n} does not fit in int64")))
}

fn mistyped(expected: &str, found: &FeatureValue) -> Error {
    Error::new(
        ErrorKind::SchemaMismatch,
        format!(
            "an aggregation expected {expected}, got a {} value",
            type_name(found)
        ),
    )
}

fn keep_count(function: Function) -> usize {
    match function {
        Function::LastN(k) => k as usize,
        _ => 1,
    }
}

/// Keeps `candidate` in `best` if `best` is empty or `candidate` compares `wanted` to it.
fn keep(best: &mut Option<FeatureValue>, candidate: &FeatureValue, wanted: std::cmp::Ordering) {
    if best
        .as_ref()
        .is_none_or(|b| total_cmp(candidate, b) == wanted)
    {
        *best = Some(canonical(candidate));
    }
}

/// Inserts a row into the ascending `rows`, keeping the greatest `k`. Equal rows (a duplicate
/// source row) are kept as often as they occur: the state is a multiset.
fn insert_ranked(rows: &mut Vec<Ranked>, row: Ranked, k: usize) {
    if rows.len() == k && rows.first().is_some_and(|first| row <= *first) {
        return;
    }
    let at = rows.partition_point(|r| *r <= row);
    rows.insert(at, row);
    if rows.len() > k {
        rows.remove(0);
    }
}

impl Moments {
    fn add_int(&mut self, x: i64) {
        self.sum.add_i64(x);
        if let Some(s) = &mut self.squares {
            s.add_i64_squared(x);
        }
        self.all_negative_zero = false;
    }

    fn add_float(&mut self, x: f64) {
        if x.is_nan() {
            self.specials.nan = true;
        } else if x == f64::INFINITY {
            self.specials.pos_inf = true;
        } else if x == f64::NEG_INFINITY {
            self.specials.neg_inf = true;
        } else {
            self.sum.add_f64(x);
            if let Some(s) = &mut self.squares {
                s.add_f64_squared(x);
            }
        }
        if !(x == 0.0 && x.is_sign_negative()) {
            self.all_negative_zero = false;
        }
    }

    /// The one rounding of a sum, mean, variance or standard deviation (`n > 0`).
    fn evaluate(&self, function: Function) -> f64 {
        let n = BigUint::from(self.n);
        let s1 = self.sum.to_bigint();
        match function {
            Function::Sum | Function::Mean => {
                if let Some(forced) = self.specials.forced() {
                    return forced;
                }
                let (sign, magnitude) = s1.into_parts();
                if sign == Sign::NoSign {
                    return if self.all_negative_zero { -0.0 } else { 0.0 };
                }
                let den = if function == Function::Sum {
                    BigUint::from(1u8)
                } else {
                    n
                };
                round::ratio(sign == Sign::Minus, &magnitude, &den, -1074)
            }
            _ => {
                // Any infinity or NaN makes the spread undefined (inf - inf).
                if self.specials != Specials::default() {
                    return f64::NAN;
                }
                let s2 = self
                    .squares
                    .as_ref()
                    .map(ExactSum::to_bigint)
                    .unwrap_or_default();
                // var = (n·S2 − S1²) / n², with S1 in units 2^-1074 and S2 in 2^-2148.
                let numerator: BigInt = BigInt::from(n.clone()) * s2 - &s1 * &s1;
                let numerator = numerator.magnitude().clone();
                let den = &n * &n;
                if function == Function::Variance {
                    round::ratio(false, &numerator, &den, -2148)
                } else {
                    round::sqrt_ratio(&numerator, &den, -1074)
                }
            }
        }
    }
}
