//! A window's count, sum and mean kept as rows enter and leave it: the fast route of historical
//! retrieval for these functions.
//!
//! The exact accumulators are integers, so a row leaves the window by subtracting exactly what
//! it added (a double's negation is exact; integer sums are `i128`); NaN and infinities are
//! counted rather than flagged, so they can leave too. The value is then the same exact
//! quantity a [`State`](super::State) folded over the window's rows would hold, rounded once
//! by the same rule, so it has the same bits. Rounding takes a short route when the exact sum
//! spans at most three 32-bit digits and the result is a normal double (the usual case): the
//! integer is converted with one correct rounding (Rust's integer-to-float conversion rounds to
//! nearest, ties to even) and then scaled by a power of two, which is exact in the normal
//! range; a mean divides first, keeping at least 64 quotient bits and a sticky bit for the
//! remainder. Anything else goes through the general rounding of `round.rs`.

use num_bigint::Sign;

use super::exact_sum::{ExactSum, Scale};
use super::function::Function;
use super::state::{Output, State};
use crate::error::{Error, ErrorKind, Result};
use crate::online::FeatureValue;

/// The count, sum and mean of the non-null values in a window that rows enter and leave.
#[derive(Clone, Debug)]
pub struct RunningSum {
    /// Non-null values in the window.
    n: u64,
    nan: u64,
    pos_inf: u64,
    neg_inf: u64,
    /// Values other than −0.0 (a sum is −0.0 only when every value is −0.0).
    not_negative_zero: u64,
    /// The exact sum of the finite floats, units 2^-1074.
    floats: ExactSum,
    /// The exact sum of the integers.
    integers: i128,
    /// Whether the column holds integers (`int32`, `int64`).
    integer: bool,
}

impl RunningSum {
    /// An empty window over a column of integers when `integer`, of anything else otherwise.
    pub fn new(integer: bool) -> Self {
        RunningSum {
            n: 0,
            nan: 0,
            pos_inf: 0,
            neg_inf: 0,
            not_negative_zero: 0,
            floats: ExactSum::new(Scale::Linear),
            integers: 0,
            integer,
        }
    }

    /// A row enters the window.
    pub fn add(&mut self, value: &FeatureValue) -> Result<()> {
        self.step(value, false)
    }

    /// A row that entered leaves the window.
    pub fn remove(&mut self, value: &FeatureValue) -> Result<()> {
        self.step(value, true)
    }

    fn step(&mut self, value: &FeatureValue, leave: bool) -> Result<()> {
        let count = |c: &mut u64| {
            if leave {
                *c -= 1;
            } else {
                *c += 1;
            }
        };
        if value.is_null() {
            return Ok(());
        }
        count(&mut self.n);
        let x = match value {
            FeatureValue::Int32(x) if self.integer => i64::from(*x),
            FeatureValue::Int64(x) if self.integer => *x,
            FeatureValue::Float32(x) if !self.integer => return self.float(f64::from(*x), leave),
            FeatureValue::Float64(x) if !self.integer => return self.float(*x, leave),
            // Counted only (a count of a column of any type): nothing to sum.
            _ => {
                count(&mut self.not_negative_zero);
                return Ok(());
            }
        };
        count(&mut self.not_negative_zero);
        self.integers += if leave { -i128::from(x) } else { i128::from(x) };
        Ok(())
    }

    fn float(&mut self, x: f64, leave: bool) -> Result<()> {
        let count = |c: &mut u64| {
            if leave {
                *c -= 1;
            } else {
                *c += 1;
            }
        };
        if !(x == 0.0 && x.is_sign_negative()) {
            count(&mut self.not_negative_zero);
        }
        if x.is_nan() {
            count(&mut self.nan);
        } else if x == f64::INFINITY {
            count(&mut self.pos_inf);
        } else if x == f64::NEG_INFINITY {
            count(&mut self.neg_inf);
        } else {
            self.floats.add_f64(if leave { -x } else { x });
        }
        Ok(())
    }

    /// The value of `function` (count, sum or mean) over the window's rows: the bits a
    /// [`State`] of the same rows gives.
    pub fn evaluate(&mut self, function: Function) -> Result<Output> {
        let value = match function {
            Function::Count => return State::counted(self.n),
            _ if self.n == 0 => FeatureValue::Null,
            Function::Sum if self.integer => return State::integer_sum(self.n, self.integers),
            Function::Sum | Function::Mean => FeatureValue::Float64(self.rounded(function)),
            other => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("a running sum cannot give `{other}`"),
                ));
            }
        };
        Ok(Output::Value(value))
    }

    /// The sum or mean, rounded once (`n > 0`).
    fn rounded(&mut self, function: Function) -> f64 {
        let divisor = if function == Function::Mean {
            self.n
        } else {
            1
        };
        if self.integer {
            return match self.integers {
                0 => 0.0,
                // |sum| < 2^127: the short route needs a magnitude below 2^96 only for its
                // shift; integers go through it when they fit.
                s if s.unsigned_abs() < 1 << 96 => short(s < 0, s.unsigned_abs(), 0, divisor)
                    .unwrap_or_else(|| {
                        super::round::ratio(s < 0, &s.unsigned_abs().into(), &divisor.into(), 0)
                    }),
                s => super::round::ratio(s < 0, &s.unsigned_abs().into(), &divisor.into(), 0),
            };
        }
        if self.nan > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            return f64::NAN;
        }
        if self.pos_inf > 0 {
            return f64::INFINITY;
        }
        if self.neg_inf > 0 {
            return f64::NEG_INFINITY;
        }
        if let Some((negative, magnitude, exponent)) = self.floats.small() {
            if magnitude == 0 {
                return if self.not_negative_zero == 0 {
                    -0.0
                } else {
                    0.0
                };
            }
            if let Some(x) = short(negative, magnitude, exponent, divisor) {
                return x;
            }
        }
        let (sign, magnitude) = self.floats.to_bigint().into_parts();
        if sign == Sign::NoSign {
            return if self.not_negative_zero == 0 {
                -0.0
            } else {
                0.0
            };
        }
        super::round::ratio(sign == Sign::Minus, &magnitude, &divisor.into(), -1074)
    }
}

/// `±magnitude / divisor * 2^exponent` rounded to the nearest double, when the result is a
/// normal double and `magnitude < 2^96`; `None` otherwise.
fn short(negative: bool, magnitude: u128, exponent: i64, divisor: u64) -> Option<f64> {
    debug_assert!(magnitude > 0 && magnitude < 1 << 96 && divisor > 0);
    let (x, exponent) = if divisor == 1 {
        (magnitude as f64, exponent)
    } else {
        // At least 128 - 64 = 64 quotient bits, so the sticky bit lies well below the rounding.
        let shift = magnitude.leading_zeros();
        let scaled = magnitude << shift;
        let divisor = u128::from(divisor);
        let q = scaled / divisor;
        let sticky = u128::from(!scaled.is_multiple_of(divisor));
        ((q | sticky) as f64, exponent - i64::from(shift))
    };
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i64 + exponent;
    if !(1..=2046).contains(&biased) {
        return None;
    }
    let bits = (x.to_bits() & !(0x7ff << 52)) | ((biased as u64) << 52);
    let x = f64::from_bits(bits);
    Some(if negative { -x } else { x })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn float() -> impl Strategy<Value = FeatureValue> {
        prop_oneof![
            1 => Just(FeatureValue::Null),
            3 => prop::sample::select(vec![
                0.0, -0.0, 1.0, -1.0, 1e16, -1e16, 0.1, 0.2, 0.3, 1e308, -1e308, f64::MAX,
                f64::MIN_POSITIVE, 5e-324, -5e-324, 2.5, f64::INFINITY, f64::NEG_INFINITY,
                f64::NAN, 1e-300, 12.34, 4999.99,
            ])
            .prop_map(FeatureValue::Float64),
            2 => any::<u64>().prop_map(|b| FeatureValue::Float64(f64::from_bits(b))),
            2 => (-100_000i64..100_000).prop_map(|x| FeatureValue::Float64(x as f64 / 100.0)),
        ]
    }

    fn integer() -> impl Strategy<Value = FeatureValue> {
        prop_oneof![
            1 => Just(FeatureValue::Null),
            3 => (-20i64..20).prop_map(FeatureValue::Int64),
            1 => any::<i64>().prop_map(FeatureValue::Int64),
            1 => any::<i32>().prop_map(FeatureValue::Int32),
        ]
    }

    /// Rows enter in order and the oldest leave (`leave[i]` of them after row `i` enters):
    /// after each step the running sum gives the bits of a state folded over the rows left.
    fn check(values: &[FeatureValue], leave: &[usize], integer: bool) -> Result<(), TestCaseError> {
        let mut running = RunningSum::new(integer);
        let mut left = 0;
        for (i, value) in values.iter().enumerate() {
            running.add(value).unwrap();
            let gone = leave.get(i).copied().unwrap_or(0).min(i + 1 - left);
            for v in &values[left..left + gone] {
                running.remove(v).unwrap();
            }
            left += gone;
            for function in [Function::Count, Function::Sum, Function::Mean] {
                let mut state = State::new(function, integer);
                for v in &values[left..=i] {
                    state.update(v, 0, 0).unwrap();
                }
                let want = state.evaluate().map_err(|e| e.to_string());
                let got = running.evaluate(function).map_err(|e| e.to_string());
                prop_assert_eq!(got, want, "{} over {:?}", function, &values[left..=i]);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_running_float_sum_equals_the_state_of_the_rows_in_its_window(
            values in prop::collection::vec(float(), 0..40),
            leave in prop::collection::vec(0usize..3, 0..40),
        ) {
            check(&values, &leave, false)?;
        }

        #[test]
        fn a_running_integer_sum_equals_the_state_of_the_rows_in_its_window(
            values in prop::collection::vec(integer(), 0..40),
            leave in prop::collection::vec(0usize..3, 0..40),
        ) {
            check(&values, &leave, true)?;
        }
    }

    #[test]
    fn the_short_rounding_route_agrees_with_the_general_one_at_the_edges() {
        // Sums near the bottom of the normal range, ties, and means with remainders.
        for values in [
            vec![f64::MIN_POSITIVE, 5e-324],
            vec![f64::MIN_POSITIVE, -5e-324],
            vec![1.0, 2f64.powi(-53)],
            vec![1.0, 2f64.powi(-53), 2f64.powi(-80)],
            vec![1e16, 1.0, -1e16],
            vec![0.1, 0.2, 0.3],
            vec![f64::MAX, f64::MAX, -f64::MAX],
            vec![1.0, 1.0, 1.0],
        ] {
            let mut running = RunningSum::new(false);
            let mut sum = State::new(Function::Sum, false);
            let mut mean = State::new(Function::Mean, false);
            for x in &values {
                running.add(&FeatureValue::Float64(*x)).unwrap();
                sum.update(&FeatureValue::Float64(*x), 0, 0).unwrap();
                mean.update(&FeatureValue::Float64(*x), 0, 0).unwrap();
            }
            assert_eq!(
                running.evaluate(Function::Sum).unwrap(),
                sum.evaluate().unwrap()
            );
            assert_eq!(
                running.evaluate(Function::Mean).unwrap(),
                mean.evaluate().unwrap()
            );
        }
    }
}
