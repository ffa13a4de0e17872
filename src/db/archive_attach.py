"""Archived days back in a PostgreSQL session, for SQL written against the live tables
(``--report``): :func:`attach_archive` makes the session's ``book_ticker_snapshots`` and
``arbitrage_opportunities`` hold the archived rows of a window as well.

For each table, the archived days of the window that PostgreSQL does not hold in full (its
count differs from the count the day's manifest recorded: the day was dropped, or rows came
late) are read from Parquet by DuckDB, restricted to the window, and COPYed into a temporary
table; a row PostgreSQL still holds is left out. A temporary view with the table's name then
unions the live table and those rows. PostgreSQL looks in the session's temporary schema
first, so every later statement of the session that names the table unqualified reads the
union, and a window spanning both tiers gives the same numbers as if nothing had been moved
(the prices are NUMERIC again, parsed from their exact strings).

Call it before the statements' transaction (a read-only transaction may not create even a
temporary table). Nothing outside the session changes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg

from db import archive_duck
from db.archive_layout import ArchiveLayout
from db.archive_schema import ARCHIVED_TABLES, ArchivedTable, Column, quote
from db.archiver import day_counts, table_columns

_NOT_ARCHIVED_TYPE = "bigint"


@dataclass(frozen=True)
class Attached:
    table: str
    days: list[date]
    rows: int


async def attach_archive(
    conn: asyncpg.Connection, archive_dir: Path, since: datetime, until: datetime
) -> list[Attached]:
    """Shadow each archived table with a view that adds its archived rows of
    [``since``, ``until``); return what was added (nothing: no view is created)."""
    layout = ArchiveLayout(archive_dir)
    schema = await conn.fetchval("SELECT current_schema()")
    out = []
    for spec in ARCHIVED_TABLES:
        days = _days_to_load(layout, spec, since, until)
        columns = await table_columns(conn, spec.name)
        if not days or columns is None:
            continue
        held = await day_counts(conn, spec)
        days = [d for d in days if _source_rows(layout, spec, d) != held.get(d, 0)]
        if days:
            rows = await _load(conn, layout, spec, columns, days, (since, until), schema)
            out.append(Attached(spec.name, days, rows))
    return out


def _days_to_load(
    layout: ArchiveLayout, spec: ArchivedTable, since: datetime, until: datetime
) -> list[date]:
    first, last = since.date() - timedelta(days=1), until.date()
    return [d for d in layout.days(spec.name) if first <= d <= last]


def _source_rows(layout: ArchiveLayout, spec: ArchivedTable, day: date) -> int | None:
    manifest = layout.manifest(spec.name, day)
    return None if manifest is None else manifest.source_rows


async def _load(
    conn: asyncpg.Connection,
    layout: ArchiveLayout,
    spec: ArchivedTable,
    columns: list[Column],
    days: list[date],
    window: tuple[datetime, datetime],
    schema: str,
) -> int:
    files = [p for d in days for p in layout.day_files(spec.name, d)]
    staged = f"_archived_{spec.name}"
    fields = ", ".join(f"{c.quoted} {c.pg_type}" for c in columns)
    await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{quote(staged)} CASCADE")
    await conn.execute(f"CREATE TEMP TABLE {quote(staged)} ({fields})")
    with tempfile.TemporaryDirectory(prefix="cex-attach-") as work:
        csv = Path(work) / "archived.csv"
        _export_csv(spec, columns, files, window, csv)
        await conn.copy_to_table(
            staged, source=str(csv), columns=[c.name for c in columns], format="csv"
        )
    live = f"{quote(schema)}.{quote(spec.name)}"
    keys = " AND ".join(f"a.{quote(k)} = l.{quote(k)}" for k in spec.key)
    await conn.execute(f"DELETE FROM pg_temp.{quote(staged)} a USING {live} l WHERE {keys}")
    rows = await conn.fetchval(f"SELECT count(*) FROM pg_temp.{quote(staged)}")
    every = await conn.fetch(
        """SELECT attname FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0
           AND NOT attisdropped ORDER BY attnum""",
        f"{quote(schema)}.{quote(spec.name)}",
    )
    archived = {c.name for c in columns}
    names = [r["attname"] for r in every]
    live_cols = ", ".join(quote(n) for n in names)
    staged_cols = ", ".join(
        quote(n) if n in archived else f"NULL::{_NOT_ARCHIVED_TYPE} AS {quote(n)}" for n in names
    )
    await conn.execute(
        f"CREATE OR REPLACE TEMP VIEW {quote(spec.name)} AS SELECT {live_cols} FROM {live} "
        f"UNION ALL SELECT {staged_cols} FROM pg_temp.{quote(staged)}"
    )
    return rows


def _export_csv(
    spec: ArchivedTable,
    columns: list[Column],
    files: list[Path],
    window: tuple[datetime, datetime],
    path: Path,
) -> None:
    """The window's rows of ``files`` as CSV PostgreSQL reads back exactly."""
    duck = archive_duck.connect()
    try:
        time = quote(spec.time_column)
        cols = ", ".join(c.quoted for c in columns)
        duck.execute(
            f"COPY (SELECT {cols} FROM {archive_duck.read_files(spec, columns, files)} "
            f"WHERE {time} >= ? AND {time} < ?) TO {archive_duck.literal(str(path))} "
            "(FORMAT csv, HEADER false)",
            list(window),
        )
    finally:
        duck.close()
