"""Row counts and checksums of every table: how a backup, a restore and a migration prove data intact."""

from __future__ import annotations

import duckdb

from expirytrack_dagster.storage.schema import SCHEMA, table_names


def table_checksums(connection: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, str]]:
    """``{table: (rows, checksum)}`` for every table.

    The checksum is the sum of a hash of every whole row: independent of row order, changed by
    any added, removed or altered row (duplicates included, unlike an XOR).
    """
    out: dict[str, tuple[int, str]] = {}
    for table in table_names(connection):
        rows, total = connection.execute(
            f'SELECT count(*), coalesce(sum(hash(r)::HUGEINT), 0) FROM {SCHEMA}."{table}" AS r'
        ).fetchall()[0]
        out[table] = (int(rows), str(total))
    return out
