"""A test fixture: copies one nullable column of every type through the per-row API.

The per-row twin of `tests/guests/python-echo`: each row becomes an `Echo` and goes back out
as it came, so the helper's row making and output columns must return the input unchanged.
"""

from dataclasses import dataclass
from typing import Optional

from skewless_guest import Float32, Int32, Timestamp, Vector, transform


@dataclass
class Echo:
    c_bool: Optional[bool]
    c_i32: Optional[Int32]
    c_i64: Optional[int]
    c_f32: Optional[Float32]
    c_f64: Optional[float]
    c_utf8: Optional[str]
    c_binary: Optional[bytes]
    c_ts: Optional[Timestamp]
    c_vec: Optional[Vector[4]]


@transform(name="python-echo", version="1.0.0", description="copies its input")
def echo(row: Echo) -> Echo:
    return row
