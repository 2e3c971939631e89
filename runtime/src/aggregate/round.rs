//! The one rounding: an exact rational (or the square root of one) to the nearest double,
//! ties to even, as IEEE 754 rounds a single operation.
//!
//! Every floating-point output of an aggregation is computed exactly and rounded here once, so
//! it is a function of the exact value alone. The method: scale the value so that its integer
//! part `q` has at least [`GUARD`] bits below the last bit a double keeps (counting subnormals,
//! whose last bit is 2^-1074), note whether anything below `q` was dropped (`inexact`), then
//! round `q` to 53 significant bits (fewer for subnormals) by its dropped bits and `inexact`.
//! The double's bit pattern is then `m + k * 2^52` for a mantissa `m` in units of
//! `2^(k - 1074)`: for `k = 0` that is a subnormal (or the first binade) whose bits are `m`,
//! for `k >= 1` the biased exponent is `k + 1` (see `from_scaled`). A result at or past
//! 2^1024 is infinity.

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

/// Guard bits below a double's last bit; with the sticky `inexact` flag any `GUARD >= 1`
/// decides every rounding exactly.
const GUARD: u64 = 2;

/// `±num / den * 2^scale`, rounded to the nearest double (ties to even). `den` is not zero.
pub(crate) fn ratio(negative: bool, num: &BigUint, den: &BigUint, scale: i64) -> f64 {
    let shift = scale + 1074 + GUARD as i64;
    let (n, d) = if shift >= 0 {
        (num << shift as u64, den.clone())
    } else {
        (num.clone(), den << (-shift) as u64)
    };
    let q = &n / &d;
    let inexact = &q * &d != n;
    from_scaled(negative, &q, inexact)
}

/// `sqrt(num / den) * 2^scale`, rounded to the nearest double (ties to even), for
/// `scale >= -1074`. `den` is not zero.
pub(crate) fn sqrt_ratio(num: &BigUint, den: &BigUint, scale: i64) -> f64 {
    // sqrt(num/den) * 2^t = sqrt(num * 2^(2t) / den), and floor(sqrt(floor(x))) = floor(sqrt(x)).
    let t = scale + 1074 + GUARD as i64;
    debug_assert!(t >= 0);
    let x_num = num << (2 * t.max(0) as u64);
    let x = &x_num / den;
    let exact_x = &x * den == x_num;
    let q = x.sqrt();
    let inexact = !exact_x || &q * &q != x;
    from_scaled(false, &q, inexact)
}

/// Rounds `q * 2^-(1074 + GUARD)` (plus a positive amount below one unit when `inexact`).
fn from_scaled(negative: bool, q: &BigUint, inexact: bool) -> f64 {
    let sign = if negative { 1u64 << 63 } else { 0 };
    let len = q.bits();
    // Drop at least the guard bits, and enough to leave 53 significant bits.
    let drop = GUARD.max(len.saturating_sub(53));
    let kept = q >> drop;
    let dropped = q - (&kept << drop);
    let half = BigUint::one() << (drop - 1);
    let mut m = kept.to_u64().unwrap_or(u64::MAX);
    let round_up = match dropped.cmp(&half) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => inexact || m & 1 == 1,
    };
    m += u64::from(round_up);
    let k = drop - GUARD;
    // k >= 2046 is past the largest exponent whatever m is.
    if k >= 2046 {
        return f64::from_bits(sign | f64::INFINITY.to_bits());
    }
    let bits = m + (k << 52);
    if bits >= f64::INFINITY.to_bits() {
        return f64::from_bits(sign | f64::INFINITY.to_bits());
    }
    if q.is_zero() && !inexact {
        return f64::from_bits(sign);
    }
    f64::from_bits(sign | bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(num: u64, den: u64, scale: i64) -> f64 {
        ratio(false, &BigUint::from(num), &BigUint::from(den), scale)
    }

    #[test]
    fn simple_ratios_round_to_nearest_even() {
        assert_eq!(r(1, 3, 0), 1.0 / 3.0);
        assert_eq!(r(2, 3, 0), 2.0 / 3.0);
        assert_eq!(r(10, 1, 0), 10.0);
        assert_eq!(r(1, 1, -1074), f64::from_bits(1));
        assert_eq!(
            r(1, 2, -1074),
            0.0,
            "half the smallest subnormal ties to even zero"
        );
        assert_eq!(
            r(3, 2, -1074),
            f64::from_bits(2),
            "1.5 units ties to even 2"
        );
        assert_eq!(r(1, 1, 1024), f64::INFINITY);
        assert_eq!(r((1 << 53) - 1, 1, 971), f64::MAX);
        // 2^53 + 1 ties to 2^53 (even); 2^53 + 3 ties to 2^53 + 4.
        assert_eq!(r((1 << 53) + 1, 1, 0), 9007199254740992.0);
        assert_eq!(r((1 << 53) + 3, 1, 0), 9007199254740996.0);
        assert_eq!(
            ratio(true, &BigUint::from(1u8), &BigUint::from(3u8), 0),
            -1.0 / 3.0
        );
    }

    #[test]
    fn square_roots_round_once() {
        let s = |n: u64, d: u64| sqrt_ratio(&BigUint::from(n), &BigUint::from(d), 0);
        assert_eq!(s(2, 1), 2f64.sqrt());
        assert_eq!(s(9, 4), 1.5);
        assert_eq!(s(0, 3), 0.0);
    }
}
