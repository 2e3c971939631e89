"""Reads an Iceberg table of skewless's embedded catalog, or of an Iceberg REST catalog with
its tables on S3, with PyIceberg, as an independent reader: for each snapshot id given (or the
current snapshot), prints the number of rows, the sorted (key, event time in µs) pairs, the
snapshot's operation and its summary totals, as JSON.

    python iceberg_read.py <catalog.db> <warehouse dir> <namespace.table> <key column> \
        <event time column> [snapshot id ...]
    python iceberg_read.py <http://rest-catalog> <s3://warehouse> <namespace.table> ...

A REST catalog is logged in to with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as OAuth2 client
credentials (as SeaweedFS's catalog expects), and S3 is reached at S3_ENDPOINT, path style, with
the same keys.
"""

import json
import os
import sys

import pyarrow as pa
from pyiceberg.catalog import Catalog


def open_catalog(location: str, warehouse: str) -> Catalog:
    if location.startswith("http://"):
        from pyiceberg.catalog.rest import RestCatalog

        key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
        return RestCatalog(
            "rest",
            uri=location,
            warehouse=warehouse,
            credential=f"{key}:{secret}",
            **{
                "s3.endpoint": os.environ["S3_ENDPOINT"],
                "s3.access-key-id": key,
                "s3.secret-access-key": secret,
                "s3.region": "us-east-1",
                "s3.path-style-access": "true",
            },
        )
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("default", uri=f"sqlite:///{location}", warehouse=f"file://{warehouse}")


def main() -> None:
    db, warehouse, name, key, ts = sys.argv[1:6]
    snapshot_ids = [int(s) for s in sys.argv[6:]]
    catalog = open_catalog(db, warehouse)
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
