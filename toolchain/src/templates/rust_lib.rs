//! `__NAME__`: a skewless feature transform.
//!
//! Build: `skewless build`. Try it: `skewless run <component> --input input.csv --output out.parquet`
//! and `skewless show out.parquet`.

use skewless_guest::{Row, transform};

/// The input row: one field per input column; `Option` makes a column nullable.
#[derive(Row)]
pub struct Input<'a> {
    pub amount: Option<f64>,
    pub category: Option<&'a str>,
}

/// The output row.
#[derive(Row)]
pub struct Output {
    pub amount_cents: Option<i64>,
    pub is_refund: bool,
    pub category_normalized: Option<String>,
}

/// Amount in cents, refund flag and normalized category.
#[transform(name = "__NAME__", version = "0.1.0")]
pub fn features(row: Input<'_>) -> Output {
    let amount = row.amount.filter(|a| !a.is_nan());
    Output {
        // Null when missing or too large for every cent to be exact in an f64 (2^53).
        amount_cents: amount
            .map(|a| a * 100.0)
            .filter(|c| c.abs() < 9_007_199_254_740_992.0)
            .map(|c| c.floor() as i64),
        is_refund: amount.is_some_and(|a| a < 0.0),
        category_normalized: row
            .category
            .map(|c| c.trim_matches(' ').to_ascii_lowercase())
            .filter(|c| !c.is_empty()),
    }
}
