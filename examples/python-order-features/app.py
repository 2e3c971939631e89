"""order-features in Python: the same definition as the Rust example `examples/order-features`.

Every operation here is exact in IEEE 754 / two's complement, so this component returns the
same bits as the Rust one (checked by `tests/all/languages.rs`):

- `amount / quantity`: `float(int)` rounds to nearest like Rust's `as f64`; `/` is correctly
  rounded in both.
- `math.sqrt` and `math.floor` are correctly rounded / exact (not so `math.log` or `**`).
- FNV-1a needs wrapping 32-bit multiplication: Python ints do not wrap, so mask with
  `& 0xFFFFFFFF` after each step.
- Strings: strip only U+0020 (`str.strip()` with no argument strips all Unicode whitespace,
  Rust's `trim_matches(' ')` does not) and check ASCII before upper-casing (`"ß".upper()` is
  `"SS"`).

Build: `skewless build examples/python-order-features`.
"""

import math
from dataclasses import dataclass
from typing import Optional

from skewless_guest import Int32, transform

BULK_QUANTITY = 10
COUNTRY_BUCKETS = 64
CENTS_LIMIT = 9007199254740992.0  # 2**53


@dataclass
class Order:
    amount: Optional[float]
    quantity: Optional[int]
    country: Optional[str]


@dataclass
class OrderFeatures:
    unit_price: Optional[float]
    amount_sqrt: Optional[float]
    amount_cents: Optional[int]
    country_code: Optional[str]
    country_bucket: Optional[Int32]
    is_bulk: bool


@transform(name="order-features", version="1.0.0")
def order_features(order: Order) -> OrderFeatures:
    """Unit price, square root and cents of the amount, normalized country code and its
    bucket, bulk flag."""
    amount = order.amount
    if amount is not None and math.isnan(amount):
        amount = None
    quantity = order.quantity

    unit_price = None
    if amount is not None and quantity is not None and quantity > 0:
        price = amount / float(quantity)
        if math.isfinite(price):
            unit_price = price

    cents = None
    if amount is not None:
        scaled = amount * 100.0
        if abs(scaled) < CENTS_LIMIT:
            cents = math.floor(scaled)

    code = None if order.country is None else country_code(order.country)
    return OrderFeatures(
        unit_price=unit_price,
        amount_sqrt=math.sqrt(amount) if amount is not None and amount >= 0.0 else None,
        amount_cents=cents,
        country_code=code,
        country_bucket=None if code is None else fnv1a_32(code.encode()) % COUNTRY_BUCKETS,
        is_bulk=quantity is not None and quantity >= BULK_QUANTITY,
    )


def country_code(country):
    """`country` without surrounding spaces, upper-cased, when that is two ASCII letters."""
    trimmed = country.strip(" ")
    if len(trimmed) == 2 and trimmed.isascii() and trimmed.isalpha():
        return trimmed.upper()
    return None


def fnv1a_32(data):
    """32-bit FNV-1a, with the wrapping multiplication spelled out."""
    h = 0x811C9DC5
    for byte in data:
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h
