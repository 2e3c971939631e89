"""Appends a Parquet file's rows to an Iceberg table of skewless's embedded catalog with
PyIceberg (another writer than skewless), and prints the new snapshot id.

    python iceberg_append.py <catalog.db> <warehouse dir> <namespace.table> <file.parquet>
"""

import sys

import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog


def main() -> None:
    db, warehouse, name, path = sys.argv[1:5]
    catalog = SqlCatalog("default", uri=f"sqlite:///{db}", warehouse=f"file://{warehouse}")
    table = catalog.load_table(name)
    rows = pq.read_table(path)
    # Match the table's Arrow schema (field ids, nullability, the time zone label).
    rows = rows.cast(table.schema().as_arrow())
    table.append(rows)
    print(table.current_snapshot().snapshot_id)


if __name__ == "__main__":
    main()
