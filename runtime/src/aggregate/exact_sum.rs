//! An exact accumulator for sums of doubles (and of integers, and of squares of either).
//!
//! It is a wide fixed-point integer in the style of Radford Neal's "small superaccumulator"
//! (*Fast exact summation using small and large superaccumulators*, 2015): the sum is held as
//! signed 32-bit digits in `i64` cells, so adding a value touches two to five cells and never
//! propagates a carry; carries are propagated every 2^29 additions and before the value is
//! read, merged or encoded. Every finite double is an integer multiple of 2^-1074, so a sum of
//! doubles is an exact integer in units of 2^-1074, and a sum of their squares an exact integer
//! in units of 2^-2148: nothing is ever rounded until the one rounding of the final value
//! (see `round.rs`), which makes the result independent of order and grouping.
//!
//! Why not the `xsum` crate: it implements the same algorithm, but keeps its accumulator
//! private, so two accumulators can neither be merged (tiles) nor encoded (stored state); both
//! are what aggregation needs.
//!
//! Sizes (digits are 32 bits; the top cell keeps the sign and any excess):
//! - linear sums, units 2^-1074: a double is below 2^1024 = 2^2098 units; with 2^64 additions
//!   the sum stays below 2^2162, inside 68 cells (2176 bits);
//! - squares, units 2^-2148: below 2^2048 = 2^4196 units each; 134 cells (4288 bits) hold
//!   2^64 of them. An `i64` squared (below 2^126) is added at offset 2148 (the unit 1).

use num_bigint::{BigInt, Sign};

use crate::error::{Error, ErrorKind, Result};

const DIGIT_BITS: u32 = 32;
const DIGIT_MASK: i64 = (1 << DIGIT_BITS) - 1;
/// Each addition changes a cell by less than 2^32; after 2^29 of them a cell is below 2^62 in
/// magnitude, well inside `i64`.
const CARRY_EVERY: u32 = 1 << 29;

/// The scale of an accumulator: what one unit is worth, and how many cells it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Units of 2^-1074: sums of doubles and of integers.
    Linear,
    /// Units of 2^-2148: sums of squares of doubles and of integers.
    Square,
}

impl Scale {
    fn cells(self) -> usize {
        match self {
            Scale::Linear => 68,
            Scale::Square => 134,
        }
    }

    /// log2 of the number of units in 1.
    pub(crate) fn unit_exponent(self) -> u32 {
        match self {
            Scale::Linear => 1074,
            Scale::Square => 2148,
        }
    }
}

/// An exact sum: an integer number of units of its [`Scale`].
#[derive(Clone, Debug)]
pub(crate) struct ExactSum {
    scale: Scale,
    cells: Vec<i64>,
    /// Additions since carries were last propagated.
    pending: u32,
}

/// A finite double as `mantissa * 2^exponent_units` units of 2^-1074 (sign apart).
fn decompose(x: f64) -> (bool, u64, u32) {
    let bits = x.to_bits();
    let negative = bits >> 63 == 1;
    let exponent = ((bits >> 52) & 0x7FF) as u32;
    let fraction = bits & ((1 << 52) - 1);
    if exponent == 0 {
        (negative, fraction, 0)
    } else {
        (negative, fraction | (1 << 52), exponent - 1)
    }
}

impl ExactSum {
    /// Zero.
    pub(crate) fn new(scale: Scale) -> Self {
        ExactSum {
            scale,
            cells: vec![0; scale.cells()],
            pending: 0,
        }
    }

    /// Adds `±magnitude * 2^offset` units.
    fn add_scaled(&mut self, negative: bool, magnitude: u128, offset: u32) {
        if magnitude == 0 {
            return;
        }
        let mut cell = (offset / DIGIT_BITS) as usize;
        let shift = offset % DIGIT_BITS;
        // The first digit takes the low (32 - shift) bits, shifted into place.
        let first_width = DIGIT_BITS - shift;
        let mut digit = ((magnitude & ((1u128 << first_width) - 1)) << shift) as i64;
        let mut rest = magnitude >> first_width;
        loop {
            if negative {
                self.cells[cell] -= digit;
            } else {
                self.cells[cell] += digit;
            }
            if rest == 0 {
                break;
            }
            cell += 1;
            digit = (rest & DIGIT_MASK as u128) as i64;
            rest >>= DIGIT_BITS;
        }
        self.pending += 1;
        if self.pending >= CARRY_EVERY {
            self.normalize();
        }
    }

    /// Adds a finite double (to a [`Scale::Linear`] sum).
    pub(crate) fn add_f64(&mut self, x: f64) {
        debug_assert!(x.is_finite() && self.scale == Scale::Linear);
        let (negative, mantissa, offset) = decompose(x);
        self.add_scaled(negative, u128::from(mantissa), offset);
    }

    /// Adds the square of a finite double (to a [`Scale::Square`] sum).
    pub(crate) fn add_f64_squared(&mut self, x: f64) {
        debug_assert!(x.is_finite() && self.scale == Scale::Square);
        let (_, mantissa, offset) = decompose(x);
        let m = u128::from(mantissa);
        self.add_scaled(false, m * m, 2 * offset);
    }

    /// Adds an integer (to a [`Scale::Linear`] sum).
    pub(crate) fn add_i64(&mut self, x: i64) {
        debug_assert!(self.scale == Scale::Linear);
        self.add_scaled(
            x < 0,
            u128::from(x.unsigned_abs()),
            Scale::Linear.unit_exponent(),
        );
    }

    /// Adds the square of an integer (to a [`Scale::Square`] sum).
    pub(crate) fn add_i64_squared(&mut self, x: i64) {
        debug_assert!(self.scale == Scale::Square);
        let m = u128::from(x.unsigned_abs());
        self.add_scaled(false, m * m, Scale::Square.unit_exponent());
    }

    /// Propagates carries: every cell but the top one in `[0, 2^32)`, the top one signed.
    /// The result is the one representation of the value.
    fn normalize(&mut self) {
        let mut carry = 0i64;
        let top = self.cells.len() - 1;
        for cell in &mut self.cells[..top] {
            let v = *cell + carry;
            *cell = v & DIGIT_MASK;
            carry = v >> DIGIT_BITS;
        }
        self.cells[top] += carry;
        self.pending = 0;
    }

    /// The value as `±magnitude * 2^exponent` units (`exponent` a multiple of 32, counted
    /// from 2^-1074 for a linear sum), when its digits span at most three cells; `None` for a
    /// wider value. Zero is `(false, 0, 0)`.
    pub(crate) fn small(&mut self) -> Option<(bool, u128, i64)> {
        self.normalize();
        let top = self.cells.len() - 1;
        let negative = self.cells[top] < 0;
        let lo = match self.cells.iter().position(|&c| c != 0) {
            Some(lo) => lo,
            None => return Some((false, 0, 0)),
        };
        // A normalized negative value has all-ones digits above its own and -1 on top.
        if self.cells[top] != if negative { -1 } else { 0 } {
            return None;
        }
        let fill = if negative { DIGIT_MASK } else { 0 };
        let hi = self.cells[..top]
            .iter()
            .rposition(|&c| c != fill)
            .map_or(lo, |hi| hi.max(lo));
        if hi - lo >= 3 {
            return None;
        }
        let mut v: i128 = 0;
        for (i, &c) in self.cells[lo..=hi].iter().enumerate() {
            v |= i128::from(c as u32) << (DIGIT_BITS as usize * i);
        }
        if negative {
            v -= 1i128 << (DIGIT_BITS as usize * (hi + 1 - lo));
        }
        let exponent = (DIGIT_BITS as usize * lo) as i64 - i64::from(self.scale.unit_exponent());
        Some((v < 0, v.unsigned_abs(), exponent))
    }

    /// Adds another sum of the same scale.
    pub(crate) fn merge(&mut self, other: &ExactSum) {
        debug_assert!(self.scale == other.scale);
        self.normalize();
        let mut other = other.clone();
        other.normalize();
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            *a += *b;
        }
        self.normalize();
    }

    /// The exact value, in units.
    pub(crate) fn to_bigint(&self) -> BigInt {
        let mut n = self.clone();
        n.normalize();
        let top = n.cells.len() - 1;
        let digits: Vec<u32> = n.cells[..top].iter().map(|&c| c as u32).collect();
        let low = BigInt::from_slice(Sign::Plus, &digits);
        (BigInt::from(n.cells[top]) << (DIGIT_BITS as usize * top)) + low
    }

    /// The canonical bytes: the value's minimal two's-complement little-endian bytes.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let bytes = self.to_bigint().to_signed_bytes_le();
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }

    /// Reads what [`ExactSum::encode`] wrote, refusing any other spelling of a value.
    pub(crate) fn decode(scale: Scale, bytes: &[u8]) -> Result<Self> {
        let value = BigInt::from_signed_bytes_le(bytes);
        if value.to_signed_bytes_le() != bytes {
            return Err(bad_state(
                "an exact sum is not in its canonical (minimal) form",
            ));
        }
        let (sign, digits) = value.to_u32_digits();
        let mut sum = ExactSum::new(scale);
        // The top cell is signed: keep the value inside the cells below it, which is far more
        // than any sum of 2^64 values needs.
        if digits.len() >= sum.cells.len() {
            return Err(bad_state("an exact sum is out of range"));
        }
        for (cell, digit) in sum.cells.iter_mut().zip(digits) {
            *cell = i64::from(digit);
            if sign == Sign::Minus {
                *cell = -*cell;
            }
        }
        sum.normalize();
        Ok(sum)
    }
}

impl PartialEq for ExactSum {
    fn eq(&self, other: &Self) -> bool {
        self.scale == other.scale && self.to_bigint() == other.to_bigint()
    }
}

impl Eq for ExactSum {}

pub(crate) fn bad_state(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "invalid aggregate state: {what}; expected bytes written by this version's encoder"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(values: &[f64]) -> BigInt {
        let mut s = ExactSum::new(Scale::Linear);
        for &v in values {
            s.add_f64(v);
        }
        s.to_bigint()
    }

    #[test]
    fn sums_are_exact_integers_in_units_of_the_smallest_subnormal() {
        assert_eq!(value(&[1.0]), BigInt::from(1) << 1074);
        assert_eq!(value(&[f64::from_bits(1)]), BigInt::from(1));
        assert_eq!(value(&[1e16, 1.0, -1e16]), BigInt::from(1) << 1074);
        assert_eq!(value(&[f64::MAX, -f64::MAX]), BigInt::from(0));
        assert_eq!(
            value(&[f64::MAX, f64::MAX]),
            (BigInt::from((1u64 << 53) - 1) << (971 + 1074)) * 2
        );
    }

    #[test]
    fn many_additions_propagate_carries_without_overflow() {
        let mut s = ExactSum::new(Scale::Linear);
        let mut q = ExactSum::new(Scale::Square);
        for _ in 0..(CARRY_EVERY as u64 + 5).min(1 << 16) {
            s.add_f64(f64::MAX);
            s.add_f64(-f64::MIN_POSITIVE);
            q.add_f64_squared(f64::MAX);
            q.add_i64_squared(i64::MIN);
        }
        s.normalize();
        let back = ExactSum::decode(Scale::Linear, &{
            let mut b = Vec::new();
            s.encode(&mut b);
            b[4..].to_vec()
        })
        .unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn decoding_refuses_non_canonical_bytes() {
        assert!(ExactSum::decode(Scale::Linear, &[1, 0]).is_err());
        assert!(
            ExactSum::decode(Scale::Linear, &[0]).is_ok(),
            "zero is one byte"
        );
        assert!(ExactSum::decode(Scale::Linear, &[]).is_err());
        assert!(ExactSum::decode(Scale::Linear, &[0xff; 600]).is_err());
    }
}
