"""``run.py --query``: DuckDB over views that union the Parquet archive with the live rows.

For each archived table the SQL names (``book_ticker_snapshots``, ``arbitrage_opportunities``)
a view of that name holds every row once:

* the archive's Parquet files, read in place;
* the live rows, exported from PostgreSQL with ``COPY ... TO STDOUT`` day by day (DuckDB's
  postgres extension would have to be downloaded, which many hosts cannot). A day the archive
  holds as verified, whose PostgreSQL count still equals the count the manifest recorded, is
  not exported at all; rows of other archived days are exported and kept only if their key is
  not in the archive (a row that arrived late). So a query over a window spanning both tiers
  sees the union without duplicates, and the cost of the export is the hot range only.

Prices and sizes are the exact strings in both parts (``CAST(bid_price AS DECIMAL(38, 12))``
to compute with them). The temporary CSV files live in a temporary directory, removed at the
end.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import duckdb

from db import archive_duck
from db.archive_layout import ArchiveLayout
from db.archive_schema import ARCHIVED_TABLES, ArchivedTable, Column, quote
from db.archiver import prepare_session, table_columns
from db.dsn import redact_text
from db.partitions import day_range
from db.pool import connect


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


class QueryError(Exception):
    """DuckDB refused the query (its message says why)."""


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be read (the message never holds a password)."""


def mentioned(sql: str) -> list[ArchivedTable]:
    """The archived tables the SQL names (as whole words)."""
    return [t for t in ARCHIVED_TABLES if re.search(rf"\b{t.name}\b", sql, re.IGNORECASE)]


async def run_query(dsn: str, archive_dir: Path, sql: str) -> QueryResult:
    """Run ``sql`` in DuckDB over the union views. Raises :class:`QueryError` for a query
    DuckDB refuses, :class:`DatabaseUnavailable` when PostgreSQL cannot be read."""
    with tempfile.TemporaryDirectory(prefix="cex-query-") as work:
        duck = archive_duck.connect(temp_dir=Path(work) / "duckdb")
        try:
            await _views(dsn, duck, ArchiveLayout(archive_dir), mentioned(sql), Path(work))
            try:
                cursor = duck.execute(sql)
                names = [d[0] for d in cursor.description or []]
                return QueryResult(names, cursor.fetchall() if names else [])
            except duckdb.Error as exc:
                raise QueryError(str(exc).splitlines()[0]) from None
        finally:
            duck.close()


async def _views(
    dsn: str,
    duck: duckdb.DuckDBPyConnection,
    layout: ArchiveLayout,
    tables: list[ArchivedTable],
    work: Path,
) -> None:
    try:
        conn = await connect(dsn, timeout=10, application_name="cex-arb-collector-query")
        try:
            await prepare_session(conn)
            for spec in tables:
                await union_view(conn, duck, layout, spec, work)
        finally:
            await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(redact_text(f"{type(exc).__name__}: {exc}", dsn)) from None


async def union_view(
    conn: asyncpg.Connection,
    duck: duckdb.DuckDBPyConnection,
    layout: ArchiveLayout,
    spec: ArchivedTable,
    work: Path,
) -> None:
    """Create the view ``spec.name`` in ``duck``: archive files plus live rows, once each."""
    columns = await table_columns(conn, spec.name)
    archived = {d: layout.day_files(spec.name, d) for d in layout.days(spec.name)}
    files = [p for day_files in archived.values() for p in day_files]
    parts = []
    if columns is None:  # the table is gone from PostgreSQL: the archive alone
        if files:
            parts.append(f"SELECT * EXCLUDE (date) FROM {_parquet(files, spec)}")
    else:
        csv_files, partial = await _export_live(conn, layout, spec, columns, list(archived), work)
        table = f"_live_{spec.name}"
        overlap = [p for d in partial for p in archived[d]]
        _load_live(duck, spec, columns, table, csv_files, overlap)
        cols = ", ".join(c.quoted for c in columns)
        if files:
            parts.append(f"SELECT {cols} FROM {archive_duck.read_files(spec, columns, files)}")
        parts.append(f"SELECT {cols} FROM {quote(table)}")
    if parts:
        duck.execute(f"CREATE VIEW {quote(spec.name)} AS {' UNION ALL '.join(parts)}")


async def _export_live(
    conn: asyncpg.Connection,
    layout: ArchiveLayout,
    spec: ArchivedTable,
    columns: Sequence[Column],
    archived: list[date],
    work: Path,
) -> tuple[list[Path], list[date]]:
    """CSV files of the rows PostgreSQL holds outside the days the archive holds in full, one
    COPY per stretch between such days (each prunes to its partitions); and the archived days
    those rows may share with the archive."""
    table, time = quote(spec.name), quote(spec.time_column)
    cols = ", ".join(c.quoted for c in columns)
    first = await conn.fetchval(f"SELECT min({time}) FROM {table}")
    if first is None:
        return [], []
    candidates = [d for d in archived if d >= first.astimezone(UTC).date()]
    full = [d for d in candidates if await _held_in_full(conn, layout, spec, d)]
    csv_files = []
    lower: datetime | None = None
    for upper in [*(day_range(d)[0] for d in full), None]:
        bounds = [(f"{time} >= $", lower), (f"{time} < $", upper)]
        where = [(sql, value) for sql, value in bounds if value is not None]
        condition = " AND ".join(f"{sql}{i + 1}" for i, (sql, _v) in enumerate(where)) or "TRUE"
        path = work / f"{spec.name}-{len(csv_files)}.csv"
        await conn.copy_from_query(
            f"SELECT {cols} FROM {table} WHERE {condition}",
            *(value for _sql, value in where),
            output=str(path),
            format="csv",
        )
        csv_files.append(path)
        lower = None if upper is None else upper + timedelta(days=1)
    return csv_files, [d for d in candidates if d not in full]


async def _held_in_full(
    conn: asyncpg.Connection, layout: ArchiveLayout, spec: ArchivedTable, day: date
) -> bool:
    """The archive holds every row PostgreSQL holds for ``day`` (as verified, no row since)."""
    manifest = layout.manifest(spec.name, day)
    if manifest is None:
        return False
    time = quote(spec.time_column)
    rows = await conn.fetchval(
        f"SELECT count(*) FROM {quote(spec.name)} WHERE {time} >= $1 AND {time} < $2",
        *day_range(day),
    )
    return rows == manifest.source_rows


def _load_live(
    duck: duckdb.DuckDBPyConnection,
    spec: ArchivedTable,
    columns: Sequence[Column],
    table: str,
    csv_files: list[Path],
    overlap: list[Path],
) -> None:
    """Load the exported rows; those whose key the archive holds already are left out."""
    if not csv_files:
        empty = ", ".join(f"NULL::{c.duck_type} AS {c.quoted}" for c in columns)
        duck.execute(f"CREATE TABLE {quote(table)} AS SELECT {empty} LIMIT 0")
        return
    archive_duck.load_csv(duck, table, csv_files, columns)
    if overlap:
        keys = ", ".join(quote(k) for k in spec.key)
        duck.execute(
            f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT * FROM {quote(table)} "
            f"ANTI JOIN {archive_duck.read_files(spec, columns, overlap)} a USING ({keys})"
        )


def _parquet(files: Sequence[Path], spec: ArchivedTable) -> str:
    paths = ", ".join(archive_duck.literal(str(p)) for p in files)
    types = f", hive_types = {{'{spec.split_by}': 'VARCHAR'}}" if spec.split_by else ""
    return f"read_parquet([{paths}], hive_partitioning = true, union_by_name = true{types})"
