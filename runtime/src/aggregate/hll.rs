//! HyperLogLog for `approx_count_distinct`, fixed once so that its answer is a function of
//! the set of values alone.
//!
//! - **Hash:** the first 8 bytes (big-endian) of SHA-256 over the value's canonical bytes
//!   (`value.rs`). A standard with a frozen definition, so a register written today means the
//!   same thing in every later version, on every platform.
//! - **Precision:** p = 12, so 4096 one-byte registers (a standard error of about 1.6 %). The
//!   register index is the hash's top 12 bits; its rank is one more than the number of
//!   leading zeros of the remaining 52 bits (1 to 53).
//! - **Merge:** registers by maximum: associative, commutative and idempotent.
//! - **Estimate:** the original HyperLogLog estimator (Flajolet et al. 2007) with linear
//!   counting below 2.5·m, rounded to the nearest integer (ties away from zero). Every step
//!   uses only IEEE operations that round once (`+ - * /` and `u128 as f64`) and a logarithm
//!   computed here from them, never the platform's `ln`, so the estimate is the same bits on
//!   every machine.

use sha2::{Digest, Sha256};

use super::value::canonical_bytes;
use crate::online::FeatureValue;

/// The precision.
pub(crate) const P: u32 = 12;
/// The number of registers.
pub(crate) const M: usize = 1 << P;

/// The registers of one sketch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hll {
    pub(crate) registers: Box<[u8]>,
}

impl Default for Hll {
    fn default() -> Self {
        Hll {
            registers: vec![0; M].into_boxed_slice(),
        }
    }
}

/// The fixed 64-bit hash of a value.
pub(crate) fn hash(value: &FeatureValue) -> u64 {
    let digest = Sha256::digest(canonical_bytes(value));
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

impl Hll {
    /// Adds a value.
    pub(crate) fn add(&mut self, value: &FeatureValue) {
        let h = hash(value);
        let index = (h >> (64 - P)) as usize;
        let rest = h << P;
        // rest has 52 meaningful bits followed by 12 zeros: cap the rank at 53.
        let rank = (rest.leading_zeros() + 1).min(64 - P + 1) as u8;
        if rank > self.registers[index] {
            self.registers[index] = rank;
        }
    }

    /// Merges by register maximum.
    pub(crate) fn merge(&mut self, other: &Hll) {
        for (a, b) in self.registers.iter_mut().zip(other.registers.iter()) {
            *a = (*a).max(*b);
        }
    }

    /// The estimate of the number of distinct values (see the module docs).
    pub(crate) fn estimate(&self) -> i64 {
        let m = M as f64;
        // sum of 2^-r, exactly, as an integer in units of 2^-64 (r <= 53, 4096 terms < 2^77).
        let sum: u128 = self
            .registers
            .iter()
            .map(|&r| 1u128 << (64 - u32::from(r)))
            .sum();
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        // alpha m^2 / (sum * 2^-64) = alpha m^2 2^64 / sum.
        let raw = alpha * m * m * 18_446_744_073_709_551_616.0 / (sum as f64);
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * ln(m / zeros as f64)
        } else {
            raw
        };
        // Rounded half away from zero: `f64::round` is exact (no rounding of its own).
        estimate.round() as i64
    }
}

/// The natural logarithm of a finite `x >= 1`, from `+ - * /` alone: `x = 2^e * f` with
/// `f` in [1, 2) (exact), then `ln f = 2 atanh((f - 1)/(f + 1))` by its series, which converges
/// in under 40 terms for f < 2 at double precision. Deterministic, not correctly rounded: the
/// estimate it feeds is an approximation anyway.
fn ln(x: f64) -> f64 {
    debug_assert!(x >= 1.0 && x.is_finite());
    let mut e = 0i32;
    let mut f = x;
    while f >= 2.0 {
        f /= 2.0;
        e += 1;
    }
    let z = (f - 1.0) / (f + 1.0);
    let z2 = z * z;
    let mut term = z;
    let mut series = 0.0;
    let mut k = 1.0;
    for _ in 0..40 {
        series += term / k;
        term *= z2;
        k += 2.0;
    }
    f64::from(e) * std::f64::consts::LN_2 + 2.0 * series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logarithm_is_close_to_the_platform_one() {
        for x in [1.0, 1.5, 2.0, 3.0, 10.0, 4096.0, 1234.5] {
            assert!(
                (ln(x) - x.ln()).abs() <= 4.0 * f64::EPSILON * x.ln().max(1.0),
                "{x}"
            );
        }
    }

    #[test]
    fn estimates_are_near_the_truth_and_merges_are_unions() {
        let mut all = Hll::default();
        let mut a = Hll::default();
        let mut b = Hll::default();
        for i in 0..20_000i64 {
            all.add(&FeatureValue::Int64(i));
            if i % 3 == 0 {
                a.add(&FeatureValue::Int64(i));
            } else {
                b.add(&FeatureValue::Int64(i));
            }
            // Duplicates change nothing.
            a.add(&FeatureValue::Int64(i / 2));
        }
        b.merge(&a);
        assert_eq!(b, all);
        let e = all.estimate();
        assert!((19_000..21_000).contains(&e), "{e}");
        let mut small = Hll::default();
        for i in 0..10 {
            small.add(&FeatureValue::Int64(i));
        }
        assert_eq!(small.estimate(), 10);
        assert_eq!(Hll::default().estimate(), 0);
    }
}
