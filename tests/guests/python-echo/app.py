"""A test fixture: copies one nullable column of every type through the columnar API.

The Python twin of `tests/guests/echo`: each column is read with `Batch`'s reader and written
back with `BatchBuilder`'s, so the helper's decoding and encoding (validity bitmaps, strings
ASCII or not, booleans, ints at their limits, vectors) must return the input unchanged.
Floats also go through `null=math.nan` and `Batch.valid`, and strings through `null=""`.
"""

import math

from skewless_guest import (
    BINARY,
    BOOLEAN,
    FLOAT32,
    FLOAT64,
    INT32,
    INT64,
    TIMESTAMP,
    UTF8,
    BatchBuilder,
    Field,
    Signature,
    columnar,
    float32_vector,
)

DIMENSION = 4
COLUMNS = [
    ("c_bool", BOOLEAN),
    ("c_i32", INT32),
    ("c_i64", INT64),
    ("c_f32", FLOAT32),
    ("c_f64", FLOAT64),
    ("c_utf8", UTF8),
    ("c_binary", BINARY),
    ("c_ts", TIMESTAMP),
    ("c_vec", float32_vector(DIMENSION)),
]
FIELDS = [Field(name, data_type, nullable=True) for name, data_type in COLUMNS]


@columnar(Signature("python-echo", "1.0.0", "copies its input", inputs=FIELDS, outputs=FIELDS))
def echo(batch):
    out = BatchBuilder(batch.num_rows)
    out.boolean("c_bool", batch.boolean("c_bool"))
    out.int32("c_i32", batch.int32("c_i32"))
    out.int64("c_i64", batch.int64("c_i64"))
    out.float32("c_f32", batch.float32("c_f32"))
    # Nulls read as NaN, told apart from real NaNs by `valid`.
    f64 = batch.float64("c_f64", null=math.nan)
    out.float64("c_f64", [v if ok else None for v, ok in zip(f64, batch.valid("c_f64"))])
    utf8 = batch.utf8("c_utf8", null="")
    out.utf8("c_utf8", [v if ok else None for v, ok in zip(utf8, batch.valid("c_utf8"))])
    out.binary("c_binary", batch.binary("c_binary"))
    out.timestamp("c_ts", batch.timestamp("c_ts"))
    out.vector("c_vec", DIMENSION, batch.vector("c_vec", DIMENSION))
    return out
