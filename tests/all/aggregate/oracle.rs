//! The oracle of windowed aggregations: the definition, literally, in exact arithmetic
//! (rationals and big integers), shared by the tests of the aggregation core and of
//! historical retrieval.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive, Zero};
use skewless_runtime::aggregate::{Function, Output};
use skewless_runtime::online::FeatureValue;

pub(crate) fn exact(x: f64) -> BigRational {
    BigRational::from_float(x).expect("a finite double")
}

/// The double nearest to `r` (ties to the even significand), by exact comparison with the
/// neighbours; a non-zero `r` that rounds to zero keeps its sign.
pub(crate) fn nearest(r: &BigRational) -> f64 {
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
pub(crate) fn nearest_sqrt(v: &BigRational) -> f64 {
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

pub(crate) fn canonical_bits(x: f64) -> u64 {
    if x.is_nan() {
        f64::NAN.to_bits()
    } else {
        x.to_bits()
    }
}

/// min/max order: NaN above everything, −0.0 below +0.0.
pub(crate) fn order_key(x: f64) -> (bool, f64, bool) {
    (
        x.is_nan(),
        if x.is_nan() { 0.0 } else { x },
        x.is_sign_positive(),
    )
}

pub(crate) fn cmp_floats(a: f64, b: f64) -> Ordering {
    let (ka, kb) = (order_key(a), order_key(b));
    ka.0.cmp(&kb.0)
        .then(ka.1.partial_cmp(&kb.1).expect("no NaN here"))
        .then(ka.2.cmp(&kb.2))
}

/// The oracle's value of `function` over the window's rows `(event_ts, created_ts, x)`.
pub(crate) fn oracle_float(function: Function, rows: &[(i64, i64, Option<f64>)]) -> Output {
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

pub(crate) fn oracle_int(function: Function, rows: &[(i64, i64, Option<i64>)]) -> Output {
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
