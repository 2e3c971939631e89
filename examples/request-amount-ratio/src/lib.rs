//! # `request-amount-ratio`: a request-time feature
//!
//! Compares the amount of an incoming request (known only at request time) with features
//! stored for the user (materialized offline, read from the online store). The host runs this
//! same component online, per request, and offline, when it rebuilds a training set from
//! logged requests and point-in-time stored features, so the model sees the same values in
//! training and in serving.
//!
//! | Column | Type | Definition |
//! |---|---|---|
//! | in `request_amount` | float64 | the amount in the request |
//! | in `user_last_amount` | float64, nullable | the user's previous amount (stored feature) |
//! | in `user_avg_amount_30d` | float64, nullable | the user's 30-day average amount (stored feature) |
//! | out `amount_to_last_ratio` | float64, nullable | `request_amount / user_last_amount` |
//! | out `amount_to_avg_ratio` | float64, nullable | `request_amount / user_avg_amount_30d` |
//! | out `amount_minus_avg` | float64, nullable | `request_amount - user_avg_amount_30d`; null when the average is missing or the result is not finite |
//! | out `is_amount_spike` | boolean | `amount_to_avg_ratio > SPIKE_RATIO`; `false` when the ratio is null |
//!
//! A ratio is null when its denominator is missing (null or NaN) or not positive (a new user
//! with no history has no average; an amount of 0 would divide by zero), or when the result is
//! not finite. A NaN `request_amount` makes every output null and `is_amount_spike` false.
//!
//! Build the component (`target/wasm32-wasip2/guest/request_amount_ratio.wasm`):
//!
//! ```text
//! cargo build --profile guest --target wasm32-wasip2 -p request-amount-ratio
//! ```

use skewless_guest::{Row, transform};

/// A request amount more than this many times the user's average is a spike.
pub const SPIKE_RATIO: f64 = 3.0;

/// The input row: one request joined with the user's stored features.
#[derive(Debug, Row)]
pub struct Request {
    /// The amount in the request.
    pub request_amount: f64,
    /// The user's previous amount.
    pub user_last_amount: Option<f64>,
    /// The user's average amount over 30 days.
    pub user_avg_amount_30d: Option<f64>,
}

/// The output row.
#[derive(Debug, PartialEq, Row)]
pub struct RequestFeatures {
    /// `request_amount / user_last_amount`.
    pub amount_to_last_ratio: Option<f64>,
    /// `request_amount / user_avg_amount_30d`.
    pub amount_to_avg_ratio: Option<f64>,
    /// `request_amount - user_avg_amount_30d`.
    pub amount_minus_avg: Option<f64>,
    /// Whether the amount is more than [`SPIKE_RATIO`] times the average.
    pub is_amount_spike: bool,
}

/// Ratios and difference of a request's amount to the user's last and average amounts.
#[transform(name = "request-amount-ratio", version = "1.0.0")]
pub fn request_amount_ratio(request: Request) -> RequestFeatures {
    let amount = Some(request.request_amount).filter(|a| !a.is_nan());
    let avg = request.user_avg_amount_30d.filter(|a| !a.is_nan());
    let amount_to_avg_ratio = ratio(amount, avg);
    RequestFeatures {
        amount_to_last_ratio: ratio(amount, request.user_last_amount),
        amount_to_avg_ratio,
        amount_minus_avg: amount
            .zip(avg)
            .map(|(amount, avg)| amount - avg)
            .filter(|d| d.is_finite()),
        is_amount_spike: amount_to_avg_ratio.is_some_and(|r| r > SPIKE_RATIO),
    }
}

/// `numerator / denominator` when the denominator is positive and the result finite.
fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> Option<f64> {
    let (n, d) = numerator.zip(denominator)?;
    // `d > 0.0` is false for NaN too.
    if d > 0.0 {
        Some(n / d).filter(|r| r.is_finite())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(amount: f64, last: Option<f64>, avg: Option<f64>) -> RequestFeatures {
        request_amount_ratio(Request {
            request_amount: amount,
            user_last_amount: last,
            user_avg_amount_30d: avg,
        })
    }

    #[test]
    fn spike() {
        assert_eq!(
            features(400.0, Some(50.0), Some(100.0)),
            RequestFeatures {
                amount_to_last_ratio: Some(8.0),
                amount_to_avg_ratio: Some(4.0),
                amount_minus_avg: Some(300.0),
                is_amount_spike: true,
            }
        );
        // Exactly 3x is not a spike.
        assert!(!features(300.0, None, Some(100.0)).is_amount_spike);
    }

    #[test]
    fn new_user_has_no_history() {
        assert_eq!(
            features(25.0, None, None),
            RequestFeatures {
                amount_to_last_ratio: None,
                amount_to_avg_ratio: None,
                amount_minus_avg: None,
                is_amount_spike: false,
            }
        );
    }

    #[test]
    fn non_positive_or_nan_denominators() {
        let f = features(10.0, Some(0.0), Some(-5.0));
        assert_eq!(f.amount_to_last_ratio, None);
        assert_eq!(f.amount_to_avg_ratio, None);
        assert_eq!(f.amount_minus_avg, Some(15.0));
        assert!(!f.is_amount_spike);
        let f = features(10.0, Some(f64::NAN), Some(f64::NAN));
        assert_eq!(f.amount_to_last_ratio, None);
        assert_eq!(f.amount_minus_avg, None);
        assert_eq!(
            features(f64::NAN, Some(1.0), Some(1.0)).amount_to_last_ratio,
            None
        );
    }
}
