"""`FeatureStore.get_historical_features` from Python, as `skewless historical` runs it: the
same entity CSV, features and memory budget, the training set written as Parquet (the same
file the CLI writes, byte for byte). Run under `/usr/bin/time` beside the CLI by
`benches/historical.sh` with `PYTHON=1`; it prints nothing but errors.

    python benches/python/historical.py REPO ENTITIES.csv FEATURES OUT.parquet [BUDGET_MIB]

Needs the package built in release into the active Python (`cd python && maturin develop
--release`). Reading the CSV is part of the measured work, as it is for the CLI.
"""

from __future__ import annotations

import sys

import pyarrow as pa
import pyarrow.csv as csv

import skewless


def main() -> None:
    repo, entities, features, out = sys.argv[1:5]
    budget = int(sys.argv[5]) if len(sys.argv) > 5 else 1024
    # The CLI reads the CSV's label times as timestamps at offset +00:00; so does this, so that
    # the two training sets are the same bytes.
    table = csv.read_csv(
        entities,
        convert_options=csv.ConvertOptions(
            column_types={"event_timestamp": pa.timestamp("us", tz="+00:00")}
        ),
    )
    store = skewless.FeatureStore(repo)
    job = store.get_historical_features(
        table, features.split(","), memory_budget=budget
    )
    job.to_parquet(out)
    store.close()


if __name__ == "__main__":
    main()
