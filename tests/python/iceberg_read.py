"""Reads an Iceberg table of skewless's embedded catalog with PyIceberg, as an independent
reader: for each snapshot id given (or the current snapshot), prints the number of rows, the
sorted (key, event time in µs) pairs, the snapshot's operation and its summary totals, as JSON.

    python iceberg_read.py <catalog.db> <warehouse dir> <namespace.table> <key column> \
        <event time column> [snapshot id ...]
"""

import json
import sys

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog


def main() -> None:
    db, warehouse, name, key, ts = sys.argv[1:6]
    snapshot_ids = [int(s) for s in sys.argv[6:]]
    catalog = SqlCatalog("default", uri=f"sqlite:///{db}", warehouse=f"file://{warehouse}")
    table = catalog.load_table(name)
    out = {}
    for snapshot_id in snapshot_ids or [None]:
        snapshot = (
            table.snapshot_by_id(snapshot_id)
            if snapshot_id is not None
            else table.current_snapshot()
        )
        assert snapshot is not None, f"no snapshot {snapshot_id}"
        rows = table.scan(snapshot_id=snapshot.snapshot_id).to_arrow()
        keys = rows.column(key).to_pylist()
        times = rows.column(ts).cast(pa.int64()).to_pylist()
        summary = snapshot.summary
        out[str(snapshot.snapshot_id)] = {
            "rows": rows.num_rows,
            "pairs": sorted([k, t] for k, t in zip(keys, times)),
            "operation": summary.operation.value,
            "total-records": summary.get("total-records"),
            "total-data-files": summary.get("total-data-files"),
            "live-data-files": len(table.inspect.files(snapshot_id=snapshot.snapshot_id)),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
