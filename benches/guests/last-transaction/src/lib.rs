//! # `last-transaction`: a pass-through transform of a float, a string and a boolean
//!
//! The benchmark view whose transform costs next to nothing, so that materializing it measures
//! the scan, the copy through the component, the Parquet write and the online write (`benches/materialize.sh`, `VIEW=last-transaction`). Inputs: `amount`
//! (nullable `float64`) and `merchant` (nullable `utf8`).
//!
//! | Output | Type | Definition |
//! |---|---|---|
//! | `last_amount` | float64, nullable | `amount`, unchanged (bit for bit) |
//! | `last_merchant` | utf8, nullable | `merchant`, unchanged |
//! | `is_refund` | boolean | `amount < 0`; `false` when `amount` is null or NaN |
//!
//! Build the component (`target/guests/wasm32-wasip2/guest/last_transaction.wasm`):
//!
//! ```text
//! CARGO_TARGET_DIR=target/guests cargo build --profile guest --target wasm32-wasip2 -p last-transaction
//! ```

use skewless_guest::{Row, transform};

/// The input row.
#[derive(Debug, Row)]
pub struct Transaction<'a> {
    /// Transaction amount; negative for a refund.
    pub amount: Option<f64>,
    /// The merchant's name as the card network reported it.
    pub merchant: Option<&'a str>,
}

/// The output row.
#[derive(Debug, PartialEq, Row)]
pub struct LastTransaction {
    /// The amount, unchanged.
    pub last_amount: Option<f64>,
    /// The merchant, unchanged.
    pub last_merchant: Option<String>,
    /// Whether the amount is negative.
    pub is_refund: bool,
}

/// The transaction's amount and merchant, and whether it was a refund.
#[transform(name = "last-transaction", version = "1.0.0")]
pub fn last_transaction(tx: Transaction<'_>) -> LastTransaction {
    LastTransaction {
        last_amount: tx.amount,
        last_merchant: tx.merchant.map(str::to_owned),
        is_refund: tx.amount.is_some_and(|a| a < 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_pass_through_and_refunds_are_negative_amounts() {
        let out = last_transaction(Transaction {
            amount: Some(-2.5),
            merchant: Some("SQ *CAFE"),
        });
        assert_eq!(
            out,
            LastTransaction {
                last_amount: Some(-2.5),
                last_merchant: Some("SQ *CAFE".to_owned()),
                is_refund: true,
            }
        );
        let out = last_transaction(Transaction {
            amount: Some(f64::NAN),
            merchant: None,
        });
        assert!(out.last_amount.is_some_and(f64::is_nan));
        assert_eq!((out.last_merchant, out.is_refund), (None, false));
    }
}
