"""Deletes the rows of a user from an Iceberg table of skewless's embedded catalog with
PyIceberg (a snapshot that is not an append), and prints the new snapshot's id and operation.

    python iceberg_delete.py <catalog.db> <warehouse dir> <namespace.table> <user id>
"""

import sys

from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.expressions import EqualTo


def main() -> None:
    db, warehouse, name, user = sys.argv[1:5]
    catalog = SqlCatalog("default", uri=f"sqlite:///{db}", warehouse=f"file://{warehouse}")
    table = catalog.load_table(name)
    table.delete(EqualTo("user_id", int(user)))
    snapshot = table.current_snapshot()
    print(snapshot.snapshot_id, snapshot.summary.operation.value)


if __name__ == "__main__":
    main()
