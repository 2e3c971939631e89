"""request-features in Python, per row: the same view as `examples/python-request-features`
(see its table), written with `@transform` over dataclasses.

Simpler to read than the columnar version, and slower: one row object in, one out, and a call
into interpreted code per row. `tests/all/languages.rs` checks that both versions and the Rust
twin return the same bits.

Build: `skewless build examples/python-request-features-rows`.
"""

import math
from dataclasses import dataclass
from typing import Optional

from skewless_guest import transform

LARGE_RATIO = 3.0


@dataclass
class Request:
    amount: Optional[float]
    avg_amount: Optional[float]


@dataclass
class RequestFeatures:
    amount_log1p: Optional[float]
    amount_to_avg_ratio: Optional[float]
    is_large: bool


@transform(name="request-features", version="1.0.0")
def request_features(request: Request) -> RequestFeatures:
    """log1p of a request's amount, its ratio to the user's average, and whether it is large"""
    amount, avg = request.amount, request.avg_amount
    amount_log1p = None
    if amount is not None and amount >= 0.0:
        amount_log1p = math.log1p(amount)
    ratio = None
    if amount is not None and avg is not None and avg > 0.0:
        r = amount / avg
        if math.isfinite(r):
            ratio = r
    return RequestFeatures(
        amount_log1p=amount_log1p,
        amount_to_avg_ratio=ratio,
        is_large=ratio is not None and ratio > LARGE_RATIO,
    )
