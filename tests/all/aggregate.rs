//! Windowed aggregations against an independent oracle with exact arithmetic.
//!
//! Randomized event streams (out of order, equal timestamps, duplicates, nulls, NaN with
//! several payloads, ±inf, −0.0, values that cancel such as 1e16 + 1 − 1e16, several entities)
//! are aggregated two ways by skewless — (a) folding each query's rows in arrival order, and
//! (b) building tile states of several widths from the stream cut into arbitrary batches,
//! merging each tile's batch states in reverse, then merging the tiles that cover the window —
//! and both must equal, bit for bit, a brute-force oracle that follows the written definition
//! with rationals and big integers (num-rational, num-bigint) and finds the nearest double by
//! comparing exact distances. (a) and (b) must also give the same state bytes.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};
use proptest::prelude::*;
use skewless_runtime::aggregate::{
    Aggregation, Function, Output, State, Window, cover, decode, encode, tile_of, values_at_labels,
};
use skewless_runtime::online::FeatureValue;
use skewless_runtime::registry::AggregationSpec;
use skewless_runtime::signature::DataType;

// ---------------------------------------------------------------------------------------------
// The oracle: the definition, literally, in exact arithmetic.

fn exact(x: f64) -> BigRational {
    BigRational::from_float(x).expect("a finite double")
}

/// The double nearest to `r` (ties to the even significand), by exact comparison with the
/// neighbours; a non-zero `r` that rounds to zero keeps its sign.
fn nearest(r: &BigRational) -> f64 {
    let two = BigRational::from_integer(BigInt::from(2));
    let overflow = two.pow(1024) - two.pow(970);
    if r.abs() >= overflow {
        return if r.is_negative() {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let mut c = r.to_f64().unwrap_or(0.0);
    if !c.is_finite() {
        c = if r.is_negative() { f64::MIN } else { f64::MAX };
    }
    while exact(c) > *r {
        c = c.next_down();
    }
    while c != f64::MAX && exact(c.next_up()) <= *r {
        c = c.next_up();
    }
    let lo = c;
    let result = if exact(lo) == *r {
        lo
    } else {
        let hi = lo.next_up();
        let hi_value = if hi.is_finite() {
            exact(hi)
        } else {
            two.pow(1024)
        };
        match (r - exact(lo)).cmp(&(hi_value - r)) {
            Ordering::Less => lo,
            Ordering::Greater => hi,
            Ordering::Equal => {
                if lo.to_bits() & 1 == 0 {
                    lo
                } else {
                    hi
                }
            }
        }
    };
    if result == 0.0 && !r.is_zero() {
        if r.is_negative() { -0.0 } else { 0.0 }
    } else {
        result
    }
}

/// The double nearest to the square root of `v >= 0`: `c` is nearest when `v` lies between
/// the squares of the midpoints with its neighbours.
fn nearest_sqrt(v: &BigRational) -> f64 {
    if v.is_zero() {
        return 0.0;
    }
    let half = BigRational::new(BigInt::from(1), BigInt::from(2));
    let mid = |a: f64, b: f64| (exact(a) + exact(b)) * &half;
    // A first guess within a few ulps: sqrt(v) = sqrt(v / 4^k) * 2^k, with v / 4^k near 1
    // (v itself may be far outside the range of a double).
    let k = (v.numer().bits() as i64 - v.denom().bits() as i64) / 2;
    let four = BigRational::from_integer(BigInt::from(4));
    let scaled = if k >= 0 {
        v / four.pow(k as i32)
    } else {
        v * four.pow(-k as i32)
    };
    // 2^k in two factors, each finite, so the product only rounds once the true scale does.
    let (k1, k2) = ((k / 2) as i32, (k - k / 2) as i32);
    let mut c = scaled.to_f64().expect("near 1").sqrt() * 2f64.powi(k1) * 2f64.powi(k2);
    if c == 0.0 {
        c = f64::from_bits(1);
    }
    c = c.min(f64::MAX);
    loop {
        let up = c.next_up();
        let down = c.next_down();
        let above = if up.is_finite() {
            mid(c, up).pow(2)
        } else {
            exact(f64::MAX).pow(4)
        };
        let below = mid(down, c).pow(2);
        if *v > above {
            c = up;
        } else if down == 0.0 && *v <= below {
            // Below half the smallest subnormal: zero (a tie goes to zero, which is even).
            return 0.0;
        } else if *v < below {
            c = down;
        } else if *v == above {
            return if c.to_bits() & 1 == 0 { c } else { up };
        } else if *v == below {
            return if c.to_bits() & 1 == 0 { c } else { down };
        } else {
            return c;
        }
    }
}

fn canonical_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// min/max order: NaN above everything, −0.0 below +0.0.
fn order_key(x: f64) -> (bool, f64, bool) {
    (
        x.is_nan(),
        if x.is_nan() { 0.0 } else { x },
        x.is_sign_positive(),
    )
}

fn cmp_floats(a: f64, b: f64) -> Ordering {
    let (ka, kb) = (order_key(a), order_key(b));
    ka.0.cmp(&kb.0)
        .then(ka.1.partial_cmp(&kb.1).expect("no NaN here"))
        .then(ka.2.cmp(&kb.2))
}

/// The oracle's value of `function` over the window's rows `(event_ts, created_ts, x)`.
fn oracle_float(function: Function, rows: &[(i64, i64, Option<f64>)]) -> Output {
    let values: Vec<f64> = rows.iter().filter_map(|r| r.2).collect();
    let n = values.len();
    let null = Output::Value(FeatureValue::Null);
    let float = |x: f64| Output::Value(FeatureValue::Float64(x));
    let nan = values.iter().any(|x| x.is_nan());
    let pos = values.contains(&f64::INFINITY);
    let neg = values.contains(&f64::NEG_INFINITY);
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let exact_sum: BigRational = finite.iter().map(|&x| exact(x)).sum();
    let all_negative_zero = values.iter().all(|x| *x == 0.0 && x.is_sign_negative());
    let rounded_sum = |r: &BigRational| {
        if r.is_zero() {
            if all_negative_zero { -0.0 } else { 0.0 }
        } else {
            nearest(r)
        }
    };
    match function {
        Function::Count => Output::Value(FeatureValue::Int64(n as i64)),
        _ if n == 0 => match function {
            Function::CountDistinct | Function::ApproxCountDistinct => {
                Output::Value(FeatureValue::Int64(0))
            }
            Function::LastN(_) => Output::List(vec![]),
            _ => null,
        },
        Function::Sum | Function::Mean => {
            if nan || (pos && neg) {
                float(f64::NAN)
            } else if pos {
                float(f64::INFINITY)
            } else if neg {
                float(f64::NEG_INFINITY)
            } else if function == Function::Sum {
                float(rounded_sum(&exact_sum))
            } else {
                float(rounded_sum(&(exact_sum / BigInt::from(n))))
            }
        }
        Function::Variance | Function::Stddev => {
            if nan || pos || neg {
                return float(f64::NAN);
            }
            // The textbook form, Σ(x − mean)² / n: another formula than the implementation's.
            let mean = exact_sum / BigInt::from(n);
            let var: BigRational = finite
                .iter()
                .map(|&x| (exact(x) - &mean).pow(2))
                .sum::<BigRational>()
                / BigInt::from(n);
            if function == Function::Variance {
                float(if var.is_zero() { 0.0 } else { nearest(&var) })
            } else {
                float(nearest_sqrt(&var))
            }
        }
        Function::Min | Function::Max => {
            let mut sorted = values.clone();
            sorted.sort_by(|a, b| cmp_floats(*a, *b));
            let x = if function == Function::Min {
                sorted[0]
            } else {
                sorted[n - 1]
            };
            float(f64::from_bits(canonical_bits(x)))
        }
        Function::Last | Function::LastN(_) => {
            // By (event_ts, created_ts), then the little-endian bytes of the canonical bits.
            let mut ranked: Vec<(i64, i64, [u8; 8])> = rows
                .iter()
                .filter_map(|r| r.2.map(|x| (r.0, r.1, canonical_bits(x).to_le_bytes())))
                .collect();
            ranked.sort();
            ranked.reverse();
            let value = |r: &(i64, i64, [u8; 8])| {
                FeatureValue::Float64(f64::from_bits(u64::from_le_bytes(r.2)))
            };
            match function {
                Function::Last => Output::Value(value(&ranked[0])),
                Function::LastN(k) => {
                    Output::List(ranked.iter().take(k as usize).map(value).collect())
                }
                _ => unreachable!(),
            }
        }
        Function::CountDistinct => {
            let set: BTreeSet<u64> = values.iter().map(|&x| canonical_bits(x)).collect();
            Output::Value(FeatureValue::Int64(set.len() as i64))
        }
        Function::ApproxCountDistinct => unreachable!("checked against the exact count"),
    }
}

fn oracle_int(function: Function, rows: &[(i64, i64, Option<i64>)]) -> Output {
    let values: Vec<i64> = rows.iter().filter_map(|r| r.2).collect();
    let n = values.len();
    if n == 0 {
        return Output::Value(FeatureValue::Null);
    }
    let sum: BigInt = values.iter().map(|&x| BigInt::from(x)).sum();
    let float = |x: f64| Output::Value(FeatureValue::Float64(x));
    match function {
        Function::Sum => {
            Output::Value(sum.to_i64().map_or(FeatureValue::Null, FeatureValue::Int64))
        }
        Function::Mean => {
            let mean = BigRational::new(sum, BigInt::from(n));
            float(if mean.is_zero() { 0.0 } else { nearest(&mean) })
        }
        Function::Variance | Function::Stddev => {
            let mean = BigRational::new(sum, BigInt::from(n));
            let var: BigRational = values
                .iter()
                .map(|&x| (BigRational::from_integer(BigInt::from(x)) - &mean).pow(2))
                .sum::<BigRational>()
                / BigInt::from(n);
            if function == Function::Variance {
                float(if var.is_zero() { 0.0 } else { nearest(&var) })
            } else {
                float(nearest_sqrt(&var))
            }
        }
        _ => unreachable!(),
    }
}

// ---------------------------------------------------------------------------------------------
// The streams.

fn float_value() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        1 => Just(None),
        4 => prop::sample::select(vec![
            0.0, -0.0, 1.0, -1.0, 1e16, -1e16, 0.1, 0.2, 0.3, 1e308, -1e308, f64::MAX,
            f64::MIN_POSITIVE, 5e-324, -5e-324, 2.5, f64::INFINITY, f64::NEG_INFINITY,
            f64::NAN, f64::from_bits(0x7ff0_0000_0000_0001), f64::from_bits(0xfff8_0000_0000_0000),
        ])
        .prop_map(Some),
        2 => (-64i32..64).prop_map(|x| Some(f64::from(x) / 4.0)),
        1 => any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Some),
    ]
}

fn int_value() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        1 => Just(None),
        3 => (-10i64..10).prop_map(Some),
        1 => prop::sample::select(vec![i64::MAX, i64::MIN, i64::MAX - 1, 1 << 40]).prop_map(Some),
        1 => any::<i64>().prop_map(|x| Some(x >> 8)),
    ]
}

/// `(entity, event_ts, created_ts, value)`, in arrival order.
type Event<V> = (u8, i64, i64, Option<V>);

fn stream<V: std::fmt::Debug + Clone>(
    value: impl Strategy<Value = Option<V>>,
) -> impl Strategy<Value = Vec<Event<V>>> {
    prop::collection::vec((0u8..4, 0i64..120, 0i64..3, value), 0..50)
        .prop_flat_map(|events| {
            // Duplicate some rows (a source row ingested twice), then shuffle the arrival order.
            let n = events.len();
            (Just(events), prop::collection::vec(0..n.max(1), 0..5)).prop_map(
                |(mut events, dups)| {
                    for d in dups {
                        if let Some(e) = events.get(d).cloned() {
                            events.push(e);
                        }
                    }
                    events
                },
            )
        })
        .prop_shuffle()
}

/// Tile widths and windows in µs, so that the streams' small timestamps put many rows on
/// window edges and a µs either side of them.
const WIDTHS: [i64; 3] = [1, 5, 25];
const WINDOWS: [Window; 3] = [Window::Span(10), Window::Span(50), Window::Lifetime];
const SECOND: i64 = 1_000_000;

fn aggregation(function: &str, k: Option<u32>, window: &str, input: DataType) -> Aggregation {
    aggregation_over(function, k, window, input)
}

fn with_window(function: &str, k: Option<u32>, window: Window, input: DataType) -> Aggregation {
    Aggregation {
        window,
        ..aggregation_over(function, k, "lifetime", input)
    }
}

fn aggregation_over(function: &str, k: Option<u32>, window: &str, input: DataType) -> Aggregation {
    let spec = AggregationSpec {
        name: format!("{function}_{window}"),
        function: function.into(),
        column: Some("x".into()),
        window: window.into(),
        k,
    };
    Aggregation::resolve(&spec, |_| Some(input), &["x".into()]).expect("a valid aggregation")
}

/// Tile states per (entity, width, tile): each batch of the stream builds its own, and the
/// batches' states of a tile merge in reverse batch order.
fn tiles(
    agg: &Aggregation,
    events: &[(u8, i64, i64, FeatureValue)],
    cuts: &[usize],
) -> BTreeMap<(u8, i64, i64), State> {
    let mut batches: Vec<BTreeMap<(u8, i64, i64), State>> = Vec::new();
    let mut start = 0;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
    bounds.push(events.len());
    bounds.sort_unstable();
    for end in bounds {
        let mut batch = BTreeMap::new();
        for (entity, e, c, v) in &events[start..end] {
            for w in WIDTHS {
                let ts = *e;
                batch
                    .entry((*entity, w, tile_of(ts, w)))
                    .or_insert_with(|| agg.new_state())
                    .update(v, ts, *c)
                    .expect("a well-typed value");
            }
        }
        batches.push(batch);
        start = end;
    }
    let mut merged: BTreeMap<(u8, i64, i64), State> = BTreeMap::new();
    for batch in batches.into_iter().rev() {
        for (key, state) in batch {
            // Through the bytes, as a store would keep them.
            let state = decode(&encode(&state)).expect("own bytes");
            match merged.get_mut(&key) {
                Some(m) => m.merge(&state).expect("same function"),
                None => {
                    merged.insert(key, state);
                }
            }
        }
    }
    merged
}

fn from_tiles(
    agg: &Aggregation,
    tiles: &BTreeMap<(u8, i64, i64), State>,
    entity: u8,
    t: i64,
) -> State {
    // Lifetime: from before the first event (the streams' times are >= 0).
    let start = agg.window.start(t).unwrap_or(-1);
    let mut pieces = cover(start, t, &WIDTHS);
    pieces.reverse();
    let mut state = agg.new_state();
    for (w, j) in pieces {
        if let Some(tile) = tiles.get(&(entity, w, j)) {
            state.merge(tile).expect("same function");
        }
    }
    state
}

/// The query times: every event time, one µs either side, window edges, and a few others.
fn query_times(events: &[i64]) -> BTreeSet<i64> {
    let mut times: BTreeSet<i64> = [-1, 0, 60, 119, 200].into_iter().collect();
    for &e in events {
        for d in [0, 10, 50] {
            let t = e + d;
            times.extend([t - 1, t, t + 1]);
        }
    }
    times
}

const FLOAT_FUNCTIONS: [(&str, Option<u32>); 11] = [
    ("count", None),
    ("sum", None),
    ("mean", None),
    ("min", None),
    ("max", None),
    ("last", None),
    ("last_n", Some(3)),
    ("count_distinct", None),
    ("approx_count_distinct", None),
    ("variance", None),
    ("stddev", None),
];

fn check_stream<V: Copy + std::fmt::Debug>(
    events: &[Event<V>],
    cuts: &[usize],
    input: DataType,
    functions: &[(&str, Option<u32>)],
    to_value: impl Fn(V) -> FeatureValue,
    oracle: impl Fn(Function, &[(i64, i64, Option<V>)]) -> Output,
) -> Result<(), TestCaseError> {
    let values: Vec<(u8, i64, i64, FeatureValue)> = events
        .iter()
        .map(|(en, e, c, v)| (*en, *e, *c, v.map_or(FeatureValue::Null, &to_value)))
        .collect();
    for &(function, k) in functions {
        for window in WINDOWS {
            let agg = with_window(function, k, window, input);
            let tiles = tiles(&agg, &values, cuts);
            // The oracle's answers by the rows in the window: many query times share them.
            // (Keyed by the rows' debug text: exact for doubles, and all NaNs are alike to the oracle.)
            let mut answers: HashMap<String, Output> = HashMap::new();
            for entity in 0..4u8 {
                let times = query_times(
                    &events
                        .iter()
                        .filter(|e| e.0 == entity)
                        .map(|e| e.1)
                        .collect::<Vec<_>>(),
                );
                let rows: Vec<(i64, i64, &FeatureValue)> = values
                    .iter()
                    .filter(|r| r.0 == entity)
                    .map(|r| (r.1, r.2, &r.3))
                    .collect();
                // (c) the sliding pass over all query times at once.
                let labels: Vec<i64> = times.iter().rev().copied().collect();
                let slid = values_at_labels(&agg, &rows, &labels);
                let mut slid: BTreeMap<i64, Result<Output, String>> = labels
                    .iter()
                    .copied()
                    .zip(slid.expect("well-typed rows"))
                    .map(|(t, v)| (t, v.map_err(|e| e.to_string())))
                    .collect();
                for &t in &times {
                    // (a) the fold in arrival order.
                    let folded = agg.value_at(rows.iter().copied(), t);
                    let mut fold_state = agg.new_state();
                    for &(e, c, v) in &rows {
                        if agg.window.contains(t, e) {
                            fold_state.update(v, e, c).expect("well-typed");
                        }
                    }
                    // (b) the tiles.
                    let tiled = from_tiles(&agg, &tiles, entity, t);
                    prop_assert_eq!(
                        encode(&tiled),
                        encode(&fold_state),
                        "{} {:?} entity {} t {}: tile and fold states differ",
                        function,
                        window,
                        entity,
                        t
                    );
                    let tiled = tiled.evaluate();
                    // (c) the oracle, over the rows the definition selects.
                    let in_window: Vec<(i64, i64, Option<V>)> = events
                        .iter()
                        .filter(|r| r.0 == entity && agg.window.contains(t, r.1))
                        .map(|r| (r.1, r.2, r.3))
                        .collect();
                    let expected = match agg.function {
                        Function::ApproxCountDistinct => None,
                        f => Some(
                            answers
                                .entry(format!("{in_window:?}"))
                                .or_insert_with(|| oracle(f, &in_window))
                                .clone(),
                        ),
                    };
                    match (folded, tiled, expected) {
                        (Ok(a), Ok(b), Some(expected)) => {
                            match slid.remove(&t).expect("an answer per label") {
                                Ok(c) => prop_assert_eq!(
                                    &c,
                                    &expected,
                                    "{} {:?} entity {} t {} sliding",
                                    function,
                                    window,
                                    entity,
                                    t
                                ),
                                Err(e) => prop_assert!(
                                    false,
                                    "{} {:?} t {}: sliding failed: {}",
                                    function,
                                    window,
                                    t,
                                    e
                                ),
                            }
                            prop_assert_eq!(
                                &a,
                                &expected,
                                "{} {:?} entity {} t {} fold",
                                function,
                                window,
                                entity,
                                t
                            );
                            prop_assert_eq!(
                                &b,
                                &expected,
                                "{} {:?} entity {} t {} tiles",
                                function,
                                window,
                                entity,
                                t
                            );
                        }
                        (Ok(a), Ok(b), None) => {
                            // HyperLogLog: the same bits every way, and near the exact count.
                            prop_assert_eq!(&a, &b);
                            prop_assert_eq!(
                                slid.remove(&t).expect("an answer per label"),
                                Ok(a.clone())
                            );
                            let exact = oracle(Function::CountDistinct, &in_window);
                            if let (
                                Output::Value(FeatureValue::Int64(est)),
                                Output::Value(FeatureValue::Int64(n)),
                            ) = (&a, exact)
                            {
                                prop_assert!(
                                    (est - n).abs() <= 2,
                                    "estimate {} for {} distinct",
                                    est,
                                    n
                                );
                            } else {
                                prop_assert!(false, "counts are int64");
                            }
                        }
                        // An int64 sum out of range is an error both ways; the oracle says null.
                        (Err(_), Err(_), Some(Output::Value(FeatureValue::Null))) => {
                            prop_assert!(slid.remove(&t).expect("an answer per label").is_err());
                        }
                        (a, b, expected) => {
                            prop_assert!(
                                false,
                                "{} {:?} t {}: {:?} / {:?} / {:?}",
                                function,
                                window,
                                t,
                                a,
                                b,
                                expected
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn float_aggregates_equal_the_exact_oracle_however_rows_arrive_and_group(
        events in stream(float_value()),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        check_stream(&events, &cuts, DataType::Float64, &FLOAT_FUNCTIONS, FeatureValue::Float64, oracle_float)?;
    }

    #[test]
    fn integer_aggregates_equal_the_exact_oracle_however_rows_arrive_and_group(
        events in stream(int_value()),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let functions = [("sum", None), ("mean", None), ("variance", None), ("stddev", None)];
        check_stream(&events, &cuts, DataType::Int64, &functions, FeatureValue::Int64, oracle_int)?;
    }
}

/// Window edges at real scale: an event exactly at t − window is out, exactly at t is in, and
/// one µs either side of each edge is decided by the same rule.
#[test]
fn window_edges_are_exclusive_below_and_inclusive_above() {
    let hour = 3_600 * SECOND;
    // On a minute (not an hour), so the cover is sixty minute tiles.
    let t = 1_764_999_960 * SECOND;
    let agg = aggregation("count", None, "1h", DataType::Float64);
    let one = FeatureValue::Float64(1.0);
    let count_at = |event_ts: i64| match agg.value_at([(event_ts, 0, &one)], t).expect("a count") {
        Output::Value(FeatureValue::Int64(n)) => n,
        other => panic!("{other:?}"),
    };
    assert_eq!(count_at(t - hour), 0, "exactly at t − window: excluded");
    assert_eq!(
        count_at(t - hour - 1),
        0,
        "1 µs before t − window: excluded"
    );
    assert_eq!(count_at(t - hour + 1), 1, "1 µs after t − window: included");
    assert_eq!(count_at(t), 1, "exactly at t: included");
    assert_eq!(count_at(t - 1), 1, "1 µs before t: included");
    assert_eq!(count_at(t + 1), 0, "1 µs after t: not yet");
    // The same edges through tiles of an hour, a minute and a µs.
    for (event_ts, expected) in [(t - hour, 0), (t - hour + 1, 1), (t, 1), (t + 1, 0)] {
        let mut tiles: BTreeMap<(i64, i64), State> = BTreeMap::new();
        for w in [hour, 60 * SECOND, 1] {
            let mut s = agg.new_state();
            s.update(&one, event_ts, 0).expect("a float");
            tiles.insert((w, tile_of(event_ts, w)), s);
        }
        let mut state = agg.new_state();
        for piece in cover(t - hour, t, &[hour, 60 * SECOND, 1]) {
            if let Some(s) = tiles.get(&piece) {
                state.merge(s).expect("same function");
            }
        }
        assert_eq!(
            state.evaluate().expect("a count"),
            Output::Value(FeatureValue::Int64(expected)),
            "event at {event_ts}"
        );
    }
    assert_eq!(agg.window, Window::Span(hour));
}

/// The classic cancellation, with every grouping of three rows into tiles.
#[test]
fn one_e16_plus_one_minus_one_e16_is_one_in_every_grouping() {
    let agg = aggregation("sum", None, "lifetime", DataType::Float64);
    let rows = [1e16, 1.0, -1e16].map(FeatureValue::Float64);
    for split in 0..=3 {
        for reverse in [false, true] {
            let mut a = agg.new_state();
            let mut b = agg.new_state();
            for (i, v) in rows.iter().enumerate() {
                let s = if i < split { &mut a } else { &mut b };
                s.update(v, i as i64, 0).expect("a float");
            }
            let (first, second) = if reverse { (b, a) } else { (a, b) };
            let mut total = first;
            total.merge(&second).expect("same function");
            assert_eq!(
                total.evaluate().expect("a sum"),
                Output::Value(FeatureValue::Float64(1.0))
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Declarations: `plan` type-checks every aggregation against its column.

const AGGREGATE_REPO: &str = r#"
[project]
name = "aggregates"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

# Source columns, aggregated directly.
[[aggregate_view]]
name = "user_txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
created_timestamp = "ingested_at"
aggregations = [
    { name = "txn_count_1h", function = "count", window = "1h" },
    { name = "amount_sum_24h", function = "sum", column = "amount", window = "24h" },
    { name = "amount_mean_7d", function = "mean", column = "amount", window = "7d" },
    { name = "amount_max_lifetime", function = "max", column = "amount", window = "lifetime" },
    { name = "last_merchants", function = "last_n", column = "merchant", window = "30d", k = 5 },
    { name = "merchants_30d", function = "approx_count_distinct", column = "merchant", window = "30d" },
    { name = "bad_function", function = "median", column = "amount", window = "1h" },
    { name = "bad_window", function = "sum", column = "amount", window = "1 hour" },
    { name = "no_column", function = "sum", column = "amont", window = "1h" },
    { name = "bad_type", function = "sum", column = "merchant", window = "1h" },
    { name = "no_k", function = "last_n", column = "merchant", window = "1h" },
]

# A transform's outputs, aggregated.
[[aggregate_view]]
name = "user_txn_features"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "{TRANSACTION_FEATURES}"
aggregations = [
    { name = "zscore_stddev_24h", function = "stddev", column = "amount_zscore", window = "24h" },
    { name = "high_value_count_7d", function = "count", column = "is_high_value", window = "7d" },
    { name = "raw_amount", function = "sum", column = "amount", window = "1h" },
    { name = "flag_mean", function = "mean", column = "is_high_value", window = "1h" },
]
"#;

#[test]
fn plan_names_the_view_the_aggregation_and_the_column_of_every_bad_declaration() {
    let repo = skewless_tests::feature_repo::TestRepo::new(AGGREGATE_REPO);
    let batches: Vec<_> = skewless_datagen::batches(
        skewless_datagen::Spec {
            rows: 100,
            users: 5,
            days: 2,
            ..skewless_datagen::Spec::default()
        },
        64,
    )
    .collect();
    repo.ingest("raw.transactions", "txns.parquet", &batches);
    let plan = repo.plan().expect("plan runs");
    let expected = [
        "aggregate view `user_txn`: aggregation `bad_function`: unknown function `median`; expected one of count, sum, mean, min, max, last, last_n, count_distinct, approx_count_distinct, variance, stddev",
        "aggregate view `user_txn`: aggregation `bad_window`: window: `1 hour` is not a duration; expected a number and a unit (s, m, h, d or w), such as `30d`, `12h` or `1d12h` (or `lifetime`)",
        "aggregate view `user_txn`: aggregation `no_column`: column `amont` is not among the columns it can aggregate ([txn_id, user_id, event_ts, ingested_at, amount, balance_before, merchant])",
        "aggregate view `user_txn`: aggregation `bad_type`: function `sum` cannot take column `merchant` of type utf8; it takes int32, int64, float32 or float64",
        "aggregate view `user_txn`: aggregation `no_k`: function `last_n` needs `k`, the number of values to keep (e.g. `k = 5`)",
        "aggregate view `user_txn_features`: aggregation `raw_amount`: column `amount` is not among the columns it can aggregate ([amount_log1p, amount_zscore, amount_bucket, amount_to_balance_ratio, is_high_value])",
        "aggregate view `user_txn_features`: aggregation `flag_mean`: function `mean` cannot take column `is_high_value` of type boolean; it takes int32, int64, float32 or float64",
    ];
    let mut problems = plan.problems.clone();
    problems.sort();
    let mut expected: Vec<String> = expected.iter().map(|e| e.to_string()).collect();
    expected.sort();
    assert_eq!(problems, expected, "exactly these problems, each once");
    let err = repo
        .apply()
        .expect_err("apply refuses while there are problems");
    assert!(err.message().contains("problems"), "{err}");

    // Structural problems stop `open`: an aggregate view without aggregations, a name twice.
    let broken = skewless_tests::feature_repo::TestRepo::new(
        r#"
[project]
name = "broken"

[[entity]]
name = "user"
join_keys = [{ name = "user_id", type = "int64" }]

[[aggregate_view]]
name = "empty"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
aggregations = []

[[aggregate_view]]
name = "twice"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
aggregations = [
    { name = "n", function = "count", window = "1h" },
    { name = "n", function = "count", window = "2h" },
]
"#,
    );
    let err = broken.open().expect_err("structural problems");
    assert!(
        err.message()
            .contains("aggregate view `empty` declares no aggregations"),
        "{err}"
    );
    assert!(
        err.message()
            .contains("aggregate view `twice`: aggregation `n` is declared more than once"),
        "{err}"
    );
}

#[test]
fn apply_registers_aggregate_views_and_creates_their_feature_tables() {
    let good = |aggregations: &str| {
        AGGREGATE_REPO
            .lines()
            .filter(|l| {
                !["bad_", "no_", "raw_amount", "flag_mean"]
                    .iter()
                    .any(|b| l.contains(b))
            })
            .collect::<Vec<_>>()
            .join("\n")
            .replace(
                "{ name = \"txn_count_1h\", function = \"count\", window = \"1h\" },",
                aggregations,
            )
    };
    let repo = skewless_tests::feature_repo::TestRepo::new(&good(
        "{ name = \"txn_count_1h\", function = \"count\", window = \"1h\" },",
    ));
    let batches: Vec<_> = skewless_datagen::batches(
        skewless_datagen::Spec {
            rows: 100,
            users: 5,
            days: 2,
            ..skewless_datagen::Spec::default()
        },
        64,
    )
    .collect();
    repo.ingest("raw.transactions", "txns.parquet", &batches);
    let plan = repo.apply().expect("apply");
    let changes: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
    assert!(
        changes.contains(&"+ table features.user_txn".to_owned()),
        "{changes:?}"
    );
    assert!(
        changes.contains(&"+ table features.user_txn_features".to_owned()),
        "{changes:?}"
    );

    let opened = repo.open().expect("open");
    let registry = skewless_runtime::registry::AppliedRegistry::load(&opened.registry_path())
        .expect("registry reads")
        .expect("registry written");
    let direct = &registry.views["user_txn"];
    assert_eq!(direct.kind, skewless_runtime::registry::ViewKind::Aggregate);
    assert_eq!(direct.transform, None);
    assert_eq!(direct.digest, skewless_runtime::registry::NO_TRANSFORM);
    assert_eq!(
        direct.features(),
        [
            "txn_count_1h",
            "amount_sum_24h",
            "amount_mean_7d",
            "amount_max_lifetime",
            "last_merchants",
            "merchants_30d"
        ]
    );
    // Without a transform, the feature table stores the source columns aggregated, in source
    // order, beside the keys and timestamps.
    let columns = |table: &str| -> Vec<String> {
        let table = skewless_runtime::offline::TableName::parse(table).expect("table name");
        let schema = (repo.rt)
            .block_on(repo.offline().arrow_schema(&table))
            .expect("feature table exists");
        schema.fields().iter().map(|f| f.name().clone()).collect()
    };
    assert_eq!(
        columns("features.user_txn"),
        ["user_id", "event_ts", "created_ts", "amount", "merchant"]
    );
    let derived = &registry.views["user_txn_features"];
    assert!(derived.digest.starts_with("sha256:"), "{}", derived.digest);
    assert_eq!(
        columns("features.user_txn_features"),
        [
            "user_id",
            "event_ts",
            "created_ts",
            "amount_log1p",
            "amount_zscore",
            "amount_bucket",
            "amount_to_balance_ratio",
            "is_high_value"
        ]
    );

    // Changed aggregations over the same columns are a change to the view.
    let changed = good("{ name = \"txn_count_1h\", function = \"count\", window = \"2h\" },");
    std::fs::write(
        repo.path().join("skewless.toml"),
        changed.replace(
            "{TRANSACTION_FEATURES}",
            skewless_tests::components::TRANSACTION_FEATURES,
        ),
    )
    .expect("rewrite");
    let plan = repo.plan().expect("plan");
    let changes: Vec<String> = plan.changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        changes,
        ["~ view user_txn (aggregations)"],
        "{:?}",
        plan.problems
    );
}
