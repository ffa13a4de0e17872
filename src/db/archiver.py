"""Export one UTC day of a table to the Parquet archive, verified before anything may drop it.

For a day of ``book_ticker_snapshots`` (wherever its rows sit: a daily partition, the default
partition, the legacy partition of migration 003):

1. In one REPEATABLE READ snapshot, PostgreSQL counts and checksums the day's rows and COPYs
   them out as CSV into the staging area (``COPY ... TO STDOUT``: no extension needed).
2. DuckDB loads the CSV and writes the rows the archive does not hold yet (all of them the
   first time; rows that reached PostgreSQL late on a later run) as one sorted zstd Parquet
   file per exchange, in the staging area.
3. The day's files, published and staged, are read back from disk: the rows whose key is in
   PostgreSQL must match its count and checksum exactly, and no key may appear twice.
4. Only then are the staged files renamed into place, and the day's manifest written.

A failure anywhere (a full disk, a file gone or damaged before the read-back) publishes
nothing and leaves PostgreSQL as it was; so does a crash, after which the next run clears the
staging area and starts the day again. Files published before a crash were verified, and the
next run adds only what they lack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import duckdb
import structlog

from data_collector.wording import plural
from db import archive_duck
from db.archive_layout import ArchiveLayout, DayManifest, run_id
from db.archive_schema import ArchivedTable, Column, archived_columns, pg_fingerprint, quote
from db.partitions import day_range

log = structlog.get_logger(__name__)

_SOURCE = "_source"


class VerificationFailed(Exception):
    """The files read back do not hold exactly the rows PostgreSQL holds."""


@dataclass
class ArchiveHooks:
    """Test seams: called at the named points of an export (a raise there is a failure)."""

    after_write: Callable[[Path], None] | None = None
    before_verify: Callable[[list[Path]], None] | None = None
    after_publish: Callable[[Path], None] | None = None


@dataclass
class DayOutcome:
    table: str
    day: date
    #: exported (verified now), unchanged (manifest matches PostgreSQL's count), not_ready
    #: (rows that can still change), failed
    status: str
    #: rows PostgreSQL holds for the day (as verified when status is "exported")
    source_rows: int = 0
    #: rows written by this run
    new_rows: int = 0
    files: list[Path] = field(default_factory=list)
    bytes: int = 0
    error: str | None = None

    @property
    def verified(self) -> bool:
        return self.status == "exported"


class Archiver:
    """Exports days over one connection (whose session it sets up) and one DuckDB."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        layout: ArchiveLayout,
        duck: duckdb.DuckDBPyConnection,
        hooks: ArchiveHooks | None = None,
    ) -> None:
        self.conn = conn
        self.layout = layout
        self.duck = duck
        self.hooks = hooks or ArchiveHooks()

    async def columns(self, spec: ArchivedTable) -> list[Column] | None:
        """The archived columns of ``spec``'s table, None if the table does not exist."""
        return await table_columns(self.conn, spec.name)

    async def day_counts(self, spec: ArchivedTable, before: date) -> dict[date, int]:
        return await day_counts(self.conn, spec, before)

    async def archive_day(
        self,
        spec: ArchivedTable,
        columns: Sequence[Column],
        day: date,
        rows: int,
        *,
        verify: bool = False,
    ) -> DayOutcome:
        """Export ``day`` (``rows`` is PostgreSQL's current count of it). Without ``verify``,
        a day whose manifest records the same count is left as it is."""
        manifest = self.layout.manifest(spec.name, day)
        if manifest is not None and manifest.source_rows == rows and not verify:
            return DayOutcome(spec.name, day, "unchanged", source_rows=rows)
        if spec.ready and await self._not_ready(spec, day):
            return DayOutcome(spec.name, day, "not_ready", source_rows=rows)
        try:
            return await self._export(spec, columns, day)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error(
                "archive_day_failed",
                table=spec.name,
                date=day.isoformat(),
                error=error,
                summary=f"[ARCHIVE] {spec.name} {day}: not archived, nothing dropped ({error})",
            )
            return DayOutcome(spec.name, day, "failed", source_rows=rows, error=error)
        finally:
            self.layout.discard_staging(spec.name, day)

    async def _not_ready(self, spec: ArchivedTable, day: date) -> int:
        lower, upper = day_range(day)
        return await self.conn.fetchval(
            f"SELECT count(*) FROM {quote(spec.name)} WHERE {_in_day(spec)} AND NOT ({spec.ready})",
            lower,
            upper,
        )

    async def _export(
        self, spec: ArchivedTable, columns: Sequence[Column], day: date
    ) -> DayOutcome:
        layout = self.layout
        staging = layout.fresh_staging(spec.name, day)
        source = await self._copy_day(spec, columns, day, staging / "source.csv")
        loaded = archive_duck.load_csv(self.duck, _SOURCE, staging / "source.csv", columns)
        if loaded != source.rows:
            raise VerificationFailed(f"PostgreSQL sent {source.rows} rows, DuckDB read {loaded}")
        (staging / "source.csv").unlink()
        existing = layout.day_files(spec.name, day)
        staged = archive_duck.write_missing(
            self.duck,
            spec,
            columns,
            source=_SOURCE,
            existing=existing,
            staging=staging,
            name=run_id(),
            after_write=self.hooks.after_write,
        )
        if self.hooks.before_verify is not None:
            self.hooks.before_verify(staged)
        back = archive_duck.read_back(
            self.duck, spec, columns, [*existing, *staged], source=_SOURCE
        )
        _check(back, source)
        new_rows = archive_duck.footer_rows(self.duck, staged)
        for path in staged:
            published = layout.publish(path, staging, spec.name, day)
            if self.hooks.after_publish is not None:
                self.hooks.after_publish(published)
        files = layout.day_files(spec.name, day)
        day_dir = layout.day_dir(spec.name, day)
        layout.write_manifest(
            DayManifest(
                table=spec.name,
                date=day.isoformat(),
                rows=back.total.rows,
                checksum=str(back.total.checksum),
                source_rows=source.rows,
                files=[str(p.relative_to(day_dir)) for p in files],
                exported_at=datetime.now(UTC).isoformat(),
            )
        )
        size = sum(p.stat().st_size for p in files)
        log.info(
            "archive_day_exported",
            table=spec.name,
            date=day.isoformat(),
            rows=source.rows,
            new_rows=new_rows,
            files=len(files),
            bytes=size,
            summary=f"[ARCHIVE] {spec.name} {day}: {plural(source.rows, 'row')} verified in "
            f"{plural(len(files), 'file')} ({size} bytes), {new_rows} written now",
        )
        return DayOutcome(
            spec.name, day, "exported", source.rows, new_rows, files=files, bytes=size
        )

    async def _copy_day(
        self, spec: ArchivedTable, columns: Sequence[Column], day: date, path: Path
    ) -> archive_duck.Summary:
        """Count, checksum and COPY out the day's rows, all from one snapshot."""
        lower, upper = day_range(day)
        table, where = quote(spec.name), _in_day(spec)
        cols = ", ".join(c.quoted for c in columns)
        async with self.conn.transaction(isolation="repeatable_read", readonly=True):
            row = await self.conn.fetchrow(
                f"SELECT count(*), coalesce(sum({pg_fingerprint(columns)}), 0) "
                f"FROM {table} WHERE {where}",
                lower,
                upper,
            )
            await self.conn.copy_from_query(
                f"SELECT {cols} FROM {table} WHERE {where}",
                lower,
                upper,
                output=str(path),
                format="csv",
            )
        return archive_duck.Summary(row[0], int(row[1]))


def _check(back: archive_duck.ReadBack, source: archive_duck.Summary) -> None:
    if back.matching != source:
        raise VerificationFailed(
            f"read back {back.matching.rows} of PostgreSQL's {source.rows} rows, checksum "
            f"{'equal' if back.matching.checksum == source.checksum else 'different'}"
        )
    if back.keys != back.total.rows:
        raise VerificationFailed(f"{back.total.rows - back.keys} rows are archived twice")


def _in_day(spec: ArchivedTable) -> str:
    column = quote(spec.time_column)
    return f"{column} >= $1 AND {column} < $2"


async def table_columns(conn: asyncpg.Connection, table: str) -> list[Column] | None:
    rows = await conn.fetch(
        """SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
           WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped
           ORDER BY attnum""",
        table,
    )
    if not rows:
        return None
    return archived_columns([Column(r["attname"], r["type"]) for r in rows])


async def day_counts(
    conn: asyncpg.Connection, spec: ArchivedTable, before: date | None = None
) -> dict[date, int]:
    """Rows per UTC day of ``spec``'s table (days before ``before`` only, when given)."""
    column = quote(spec.time_column)
    limit = f"WHERE {column} < $1" if before is not None else ""
    args = [day_range(before)[0]] if before is not None else []
    rows = await conn.fetch(
        f"SELECT (date_trunc('day', {column} AT TIME ZONE 'UTC'))::date AS day, count(*) AS n "
        f"FROM {quote(spec.name)} {limit} GROUP BY 1 ORDER BY 1",
        *args,
    )
    return {r["day"]: r["n"] for r in rows}


async def prepare_session(conn: asyncpg.Connection) -> None:
    """Text output as the checksum expects it, whatever the server's defaults."""
    await conn.execute(
        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO'; SET extra_float_digits = 1; "
        "SET statement_timeout = 0"
    )
