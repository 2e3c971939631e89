"""A benchmark fixture: the signature of `examples/python-request-features` with no work.

It reads no column and returns zeros, so a call costs only what every Python transform of
this signature pays: crossing the component boundary (one `bytes` object per buffer, contract
0.2.0), entering the interpreter, and the helper's checking and packing of three outputs.
`benches/benches/languages.rs` runs it beside the real views to show that floor.
"""

from skewless_guest import BOOLEAN, FLOAT64, BatchBuilder, Field, Signature, columnar

SIGNATURE = Signature(
    "request-features-floor",
    "1.0.0",
    inputs=[Field("amount", FLOAT64, nullable=True), Field("avg_amount", FLOAT64, nullable=True)],
    outputs=[
        Field("amount_log1p", FLOAT64, nullable=True),
        Field("amount_to_avg_ratio", FLOAT64, nullable=True),
        Field("is_large", BOOLEAN),
    ],
)


@columnar(SIGNATURE)
def floor(batch):
    n = batch.num_rows
    zeros = [0.0] * n
    return (
        BatchBuilder(n)
        .float64("amount_log1p", zeros)
        .float64("amount_to_avg_ratio", zeros)
        .boolean("is_large", [False] * n)
    )
