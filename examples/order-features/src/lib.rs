//! # `order-features`: features of an order, with arithmetic that is exact in every language
//!
//! A per-row transform (`skewless_guest::transform`). It is the shared example of the
//! language guides: `examples/python-order-features`, `examples/js-order-features` and
//! `examples/c-order-features` implement the same definition, and the integration tests
//! (`tests/all/languages.rs`) check that all four components return bit-identical columns.
//! It therefore uses only operations whose results IEEE 754 and two's complement pin down
//! exactly: `+ - * /`, `sqrt` and `floor` on `f64`, integer conversion, comparisons, wrapping
//! `u32` multiplication, and bytewise ASCII string handling. No `ln`, `exp` or `pow`: each
//! language's math library may round those differently (see `docs/writing-transforms`).
//!
//! Inputs: `amount` (float64, nullable; the order total, negative for a refund), `quantity`
//! (int64, nullable; the number of items) and `country` (utf8, nullable; as the customer typed
//! it).
//!
//! | Output | Type | Definition |
//! |---|---|---|
//! | `unit_price` | float64, nullable | `amount / quantity` (the quantity converted to f64, rounding to nearest); null when `amount` is missing, `quantity` is missing or `<= 0`, or the result is not finite |
//! | `amount_sqrt` | float64, nullable | `sqrt(amount)`; null when `amount` is missing or `< 0` (`sqrt(+inf)` is `+inf`, `sqrt(-0.0)` is `-0.0`) |
//! | `amount_cents` | int64, nullable | `floor(amount * 100)`; null when `amount` is missing or `abs(amount * 100) >= 2^53` (the range where every integer is exact in f64; this also excludes infinities) |
//! | `country_code` | utf8, nullable | `country` with leading and trailing spaces (U+0020 only) removed and ASCII letters upper-cased; null when that is not exactly two ASCII letters (`" de "` → `DE`, `"DEU"`, `"d1"` and `"dé"` → null) |
//! | `country_bucket` | int32, nullable | 32-bit FNV-1a hash of `country_code`'s bytes, mod [`COUNTRY_BUCKETS`]; null when `country_code` is null |
//! | `is_bulk` | boolean | `quantity >= BULK_QUANTITY`; `false` when `quantity` is missing |
//!
//! "Missing" means null, or NaN for `amount`: no output is ever NaN.
//!
//! Build the component (`target/wasm32-wasip2/guest/order_features.wasm`):
//!
//! ```text
//! cargo build --profile guest --target wasm32-wasip2 -p order-features
//! ```

use skewless_guest::{Row, transform};

/// Orders of at least this many items are bulk orders.
pub const BULK_QUANTITY: i64 = 10;
/// The number of buckets of `country_bucket`.
pub const COUNTRY_BUCKETS: u32 = 64;
/// `abs(amount * 100)` must be below this (2^53) for `amount_cents` to be defined.
pub const CENTS_LIMIT: f64 = 9_007_199_254_740_992.0;

/// The input row.
#[derive(Debug, Row)]
pub struct Order<'a> {
    /// Order total; negative for a refund.
    pub amount: Option<f64>,
    /// Number of items.
    pub quantity: Option<i64>,
    /// Country as typed by the customer.
    pub country: Option<&'a str>,
}

/// The output row.
#[derive(Debug, PartialEq, Row)]
pub struct OrderFeatures {
    /// `amount / quantity`.
    pub unit_price: Option<f64>,
    /// `sqrt(amount)` for non-negative amounts.
    pub amount_sqrt: Option<f64>,
    /// `floor(amount * 100)`.
    pub amount_cents: Option<i64>,
    /// Two upper-case ASCII letters.
    pub country_code: Option<String>,
    /// FNV-1a bucket of the country code.
    pub country_bucket: Option<i32>,
    /// Whether at least [`BULK_QUANTITY`] items were ordered.
    pub is_bulk: bool,
}

/// Unit price, square root and cents of the amount, normalized country code and its bucket,
/// bulk flag.
#[transform(name = "order-features", version = "1.0.0")]
pub fn order_features(order: Order<'_>) -> OrderFeatures {
    let amount = order.amount.filter(|a| !a.is_nan());
    let country_code = order.country.and_then(country_code);
    OrderFeatures {
        unit_price: match (amount, order.quantity) {
            (Some(a), Some(q)) if q > 0 => Some(a / q as f64).filter(|p| p.is_finite()),
            _ => None,
        },
        amount_sqrt: amount.filter(|a| *a >= 0.0).map(f64::sqrt),
        amount_cents: amount
            .map(|a| a * 100.0)
            .filter(|c| c.abs() < CENTS_LIMIT)
            .map(|c| c.floor() as i64),
        country_bucket: country_code
            .as_deref()
            .map(|code| (fnv1a_32(code.as_bytes()) % COUNTRY_BUCKETS) as i32),
        country_code,
        is_bulk: order.quantity.is_some_and(|q| q >= BULK_QUANTITY),
    }
}

/// `country` without surrounding spaces, upper-cased, when that is two ASCII letters.
pub fn country_code(country: &str) -> Option<String> {
    let trimmed = country.trim_matches(' ');
    (trimmed.len() == 2 && trimmed.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| trimmed.to_ascii_uppercase())
}

/// 32-bit FNV-1a: for each byte, xor it in, then multiply by the FNV prime (wrapping).
pub fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash: u32, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(
        amount: Option<f64>,
        quantity: Option<i64>,
        country: Option<&str>,
    ) -> OrderFeatures {
        order_features(Order {
            amount,
            quantity,
            country,
        })
    }

    #[test]
    fn typical_order() {
        let f = features(Some(59.97), Some(3), Some(" de "));
        assert_eq!(f.unit_price, Some(59.97 / 3.0));
        assert_eq!(f.amount_sqrt, Some(59.97f64.sqrt()));
        assert_eq!(f.amount_cents, Some(5997));
        // 0.29 * 100 is 28.999999999999996 in f64: floor is exact, the product is not 29.
        assert_eq!(features(Some(0.29), None, None).amount_cents, Some(28));
        assert_eq!(f.country_code.as_deref(), Some("DE"));
        assert_eq!(f.country_bucket, Some((fnv1a_32(b"DE") % 64) as i32));
        assert!(!f.is_bulk);
    }

    #[test]
    fn missing_and_out_of_range() {
        let f = features(Some(f64::NAN), None, None);
        assert_eq!(
            f,
            OrderFeatures {
                unit_price: None,
                amount_sqrt: None,
                amount_cents: None,
                country_code: None,
                country_bucket: None,
                is_bulk: false,
            }
        );
        let f = features(Some(-1.5), Some(0), Some("DEU"));
        assert_eq!((f.unit_price, f.amount_sqrt), (None, None));
        assert_eq!(f.amount_cents, Some(-150));
        assert_eq!(f.country_code, None);
        assert_eq!(
            features(Some(f64::INFINITY), Some(1), None).amount_cents,
            None
        );
        assert_eq!(features(Some(1e300), Some(1), None).unit_price, Some(1e300));
        assert!(features(None, Some(10), None).is_bulk);
    }

    #[test]
    fn country_codes_are_two_ascii_letters() {
        for (input, expected) in [
            ("us", Some("US")),
            ("  Fr", Some("FR")),
            ("\tfr", None),
            ("dé", None),
            ("d1", None),
            ("", None),
        ] {
            assert_eq!(country_code(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn fnv1a_reference_values() {
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }
}
