"""__NAME__: a skewless feature transform.

Build: `skewless build`. Try it: `skewless run <component> --input input.csv --output out.parquet`
and `skewless show out.parquet`.
"""

import math
from dataclasses import dataclass
from typing import Optional

from skewless_guest import transform


@dataclass
class Input:
    """One field per input column; Optional makes a column nullable."""

    amount: Optional[float]
    category: Optional[str]


@dataclass
class Output:
    amount_cents: Optional[int]
    is_refund: bool
    category_normalized: Optional[str]


@transform(name="__NAME__", version="0.1.0")
def features(row: Input) -> Output:
    """Amount in cents, refund flag and normalized category."""
    amount = None if row.amount is None or math.isnan(row.amount) else row.amount
    cents = None
    # Null when missing or too large for every cent to be exact in a float (2**53).
    if amount is not None and abs(amount * 100.0) < 2.0**53:
        cents = math.floor(amount * 100.0)
    category = None
    if row.category is not None:
        # Only spaces and ASCII letters: str.strip() and str.lower() go further (all Unicode
        # whitespace, "ẞ" -> "ß"), which other languages would not match.
        trimmed = row.category.strip(" ")
        category = "".join(c.lower() if c.isascii() else c for c in trimmed) or None
    return Output(
        amount_cents=cents,
        is_refund=amount is not None and amount < 0.0,
        category_normalized=category,
    )
