//! # `request-features`: the request-time view of the Feast benchmark workload, in Rust
//!
//! The reference for `examples/python-request-features` (columnar) and
//! `examples/python-request-features-rows` (per row); see the table there. Every output is
//! exact IEEE 754 arithmetic or `ln_1p`, which on `wasm32-wasip2` is wasi-libc's `log1p`, the
//! function CPython's `math.log1p` calls in componentize-py's build.

use skewless_guest::{Row, transform};

/// A ratio above this is large.
pub const LARGE_RATIO: f64 = 3.0;

/// A request joined with the user's stored average.
#[derive(Debug, Row)]
pub struct Request {
    /// The amount in the request.
    pub amount: Option<f64>,
    /// The user's average amount.
    pub avg_amount: Option<f64>,
}

/// The request's features.
#[derive(Debug, Row)]
pub struct RequestFeatures {
    /// `ln_1p(amount)`; null when the amount is missing, NaN or negative.
    pub amount_log1p: Option<f64>,
    /// `amount / avg_amount` when the average is positive and the ratio finite.
    pub amount_to_avg_ratio: Option<f64>,
    /// Whether the ratio is above [`LARGE_RATIO`].
    pub is_large: bool,
}

/// log1p of a request's amount, its ratio to the user's average, and whether it is large
#[transform(name = "request-features", version = "1.0.0")]
pub fn request_features(request: Request) -> RequestFeatures {
    let amount = request.amount;
    let ratio = match (amount, request.avg_amount) {
        (Some(a), Some(d)) if d > 0.0 => Some(a / d).filter(|r| r.is_finite()),
        _ => None,
    };
    RequestFeatures {
        amount_log1p: amount.filter(|a| *a >= 0.0).map(f64::ln_1p),
        amount_to_avg_ratio: ratio,
        is_large: ratio.is_some_and(|r| r > LARGE_RATIO),
    }
}
