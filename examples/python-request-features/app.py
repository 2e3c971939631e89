"""request-features in Python, columnar: the request-time view of the Feast benchmark workload.

A request's amount (known only at request time) against the user's stored average amount:

| Column | Type | Definition |
|---|---|---|
| in `amount` | float64, nullable | the amount in the request |
| in `avg_amount` | float64, nullable | the user's average amount (a stored feature) |
| out `amount_log1p` | float64, nullable | `log1p(amount)`; null when the amount is missing, NaN or negative |
| out `amount_to_avg_ratio` | float64, nullable | `amount / avg_amount`; null when either is missing, the average is not positive (or NaN), or the ratio is not finite |
| out `is_large` | boolean | `amount_to_avg_ratio > 3`; false when the ratio is null |

The columnar API: each column is read once as a Python list (nulls read as NaN, so the math
needs no test for None), and each output is one list comprehension over whole columns. The
per-row twin (`examples/python-request-features-rows`) and a Rust twin return the same bits
(`tests/all/languages.rs`): `/`, `>` and the comparisons are exact in IEEE 754, and
`math.log1p` and Rust's `ln_1p` are the same function here (both components link
wasi-libc's `log1p`).

Build: `skewless build examples/python-request-features`.
"""

import math

from skewless_guest import BOOLEAN, FLOAT64, BatchBuilder, Field, Signature, columnar

LARGE_RATIO = 3.0

SIGNATURE = Signature(
    "request-features",
    "1.0.0",
    "log1p of a request's amount, its ratio to the user's average, and whether it is large",
    inputs=[Field("amount", FLOAT64, nullable=True), Field("avg_amount", FLOAT64, nullable=True)],
    outputs=[
        Field("amount_log1p", FLOAT64, nullable=True),
        Field("amount_to_avg_ratio", FLOAT64, nullable=True),
        Field("is_large", BOOLEAN),
    ],
)

# Globals read in a comprehension are looked up per value; locals are not.
_INF = math.inf


@columnar(SIGNATURE)
def request_features(batch):
    log1p, inf, nan, large = math.log1p, _INF, math.nan, LARGE_RATIO
    # Nulls as NaN: NaN fails every comparison below, so a null input gives a null output.
    amount = batch.float64("amount", null=nan)
    avg = batch.float64("avg_amount", null=nan)
    # `a >= 0.0` is false for NaN; log1p(-0.0) is -0.0, as in Rust.
    amount_log1p = [log1p(a) if a >= 0.0 else None for a in amount]
    # `d > 0.0` is false for NaN; a NaN amount gives a NaN ratio, which is not finite.
    ratio = [
        r if d > 0.0 and -inf < (r := a / d) < inf else None for a, d in zip(amount, avg)
    ]
    is_large = [r is not None and r > large for r in ratio]
    return (
        BatchBuilder(batch.num_rows)
        .float64("amount_log1p", amount_log1p)
        .float64("amount_to_avg_ratio", ratio)
        .boolean("is_large", is_large)
    )
