//! # `transaction-features`: numeric features of a card transaction
//!
//! A per-row transform (`skewless_guest::transform`). Inputs, both nullable `float64`:
//! `amount` (the transaction amount; negative for a refund) and `balance_before` (the account
//! balance before the transaction).
//!
//! | Output | Type | Definition |
//! |---|---|---|
//! | `amount_log1p` | float64, nullable | `ln(1 + amount)`; null when `amount` is missing or `< 0` |
//! | `amount_zscore` | float64 | `(amount - AMOUNT_MEAN) / AMOUNT_STD`; `0.0` (the mean) when `amount` is missing |
//! | `amount_bucket` | int32 | `0` when `amount` is missing, `1` when `< 0`, else `2 + ` the number of [`BUCKET_EDGES`] after the first that are `<= amount` (`2` = [0, 10), ... `8` = 5000 and above) |
//! | `amount_to_balance_ratio` | float64, nullable | `amount / balance_before`; null when either is missing, `balance_before` is `0` (no division by zero) or the result is not finite |
//! | `is_high_value` | boolean | `amount >= HIGH_VALUE_THRESHOLD`; `false` when `amount` is missing |
//!
//! "Missing" means null or NaN: a NaN input is treated like a null, so no output is ever NaN.
//! The constants ([`AMOUNT_MEAN`], [`AMOUNT_STD`], [`BUCKET_EDGES`], [`HIGH_VALUE_THRESHOLD`])
//! are part of the transform's logic: changing one is a new version.
//!
//! Build the component (`target/wasm32-wasip2/guest/transaction_features.wasm`):
//!
//! ```text
//! cargo build --profile guest --target wasm32-wasip2 -p transaction-features
//! ```

use skewless_guest::{Row, transform};

/// Mean transaction amount used for the z-score (from the training population).
pub const AMOUNT_MEAN: f64 = 85.0;
/// Standard deviation of the transaction amount used for the z-score.
pub const AMOUNT_STD: f64 = 240.0;
/// Lower edges of the non-negative amount buckets 2 to 8.
pub const BUCKET_EDGES: [f64; 7] = [0.0, 10.0, 50.0, 100.0, 500.0, 1_000.0, 5_000.0];
/// Amounts at or above this are high-value.
pub const HIGH_VALUE_THRESHOLD: f64 = 1_000.0;

/// The input row.
#[derive(Debug, Row)]
pub struct Transaction {
    /// Transaction amount; negative for a refund.
    pub amount: Option<f64>,
    /// Account balance before the transaction.
    pub balance_before: Option<f64>,
}

/// The output row.
#[derive(Debug, PartialEq, Row)]
pub struct TransactionFeatures {
    /// `ln(1 + amount)`, for non-negative amounts.
    pub amount_log1p: Option<f64>,
    /// Standardized amount; the mean (0) when missing.
    pub amount_zscore: f64,
    /// Amount bucket index, 0-8.
    pub amount_bucket: i32,
    /// Share of the balance the transaction represents.
    pub amount_to_balance_ratio: Option<f64>,
    /// Whether the amount is at least [`HIGH_VALUE_THRESHOLD`].
    pub is_high_value: bool,
}

/// Log-scaled amount, z-score, bucket, amount-to-balance ratio and high-value flag.
#[transform(name = "transaction-features", version = "1.0.0")]
pub fn transaction_features(tx: Transaction) -> TransactionFeatures {
    let amount = tx.amount.filter(|a| !a.is_nan());
    let balance = tx.balance_before.filter(|b| !b.is_nan());
    TransactionFeatures {
        amount_log1p: amount.filter(|a| *a >= 0.0).map(f64::ln_1p),
        amount_zscore: amount.map_or(0.0, |a| (a - AMOUNT_MEAN) / AMOUNT_STD),
        amount_bucket: amount.map_or(0, bucket),
        amount_to_balance_ratio: match (amount, balance) {
            (Some(a), Some(b)) if b != 0.0 => Some(a / b).filter(|r| r.is_finite()),
            _ => None,
        },
        is_high_value: amount.is_some_and(|a| a >= HIGH_VALUE_THRESHOLD),
    }
}

/// The bucket of a non-NaN amount: 1 below zero, else 2 + the edges after the first that are
/// `<= amount`.
pub fn bucket(amount: f64) -> i32 {
    if amount < BUCKET_EDGES[0] {
        return 1;
    }
    1 + BUCKET_EDGES.iter().filter(|edge| **edge <= amount).count() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(amount: Option<f64>, balance_before: Option<f64>) -> TransactionFeatures {
        transaction_features(Transaction {
            amount,
            balance_before,
        })
    }

    #[test]
    fn typical_purchase() {
        let f = features(Some(99.0), Some(1_000.0));
        assert_eq!(f.amount_log1p, Some(100f64.ln()));
        assert!((f.amount_zscore - 14.0 / 240.0).abs() < 1e-12);
        assert_eq!(f.amount_bucket, 4);
        assert_eq!(f.amount_to_balance_ratio, Some(0.099));
        assert!(!f.is_high_value);
    }

    #[test]
    fn missing_amount() {
        for amount in [None, Some(f64::NAN)] {
            let f = features(amount, Some(10.0));
            assert_eq!(
                f,
                TransactionFeatures {
                    amount_log1p: None,
                    amount_zscore: 0.0,
                    amount_bucket: 0,
                    amount_to_balance_ratio: None,
                    is_high_value: false,
                }
            );
        }
    }

    #[test]
    fn refund_and_zero_balance() {
        let f = features(Some(-20.0), Some(0.0));
        assert_eq!(f.amount_log1p, None);
        assert_eq!(f.amount_bucket, 1);
        assert_eq!(f.amount_to_balance_ratio, None);
        assert_eq!(
            features(Some(1.0), Some(-0.0)).amount_to_balance_ratio,
            None
        );
        assert_eq!(
            features(Some(1e308), Some(1e-308)).amount_to_balance_ratio,
            None
        );
    }

    #[test]
    fn bucket_edges() {
        let cases = [
            (0.0, 2),
            (9.99, 2),
            (10.0, 3),
            (50.0, 4),
            (100.0, 5),
            (500.0, 6),
            (1_000.0, 7),
            (4_999.0, 7),
            (5_000.0, 8),
            (f64::INFINITY, 8),
            (-0.01, 1),
            (f64::NEG_INFINITY, 1),
        ];
        for (amount, expected) in cases {
            assert_eq!(bucket(amount), expected, "amount {amount}");
        }
        assert!(features(Some(1_000.0), None).is_high_value);
    }
}
