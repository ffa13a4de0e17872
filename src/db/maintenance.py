"""Storage maintenance in one call: partitions ahead, archive, retention.

:func:`run_maintenance` is the plain interface the collector's nightly job and
``run.py --archive`` use. It takes a DSN and :class:`MaintenanceSettings` (no driver type
crosses over) and returns a :class:`MaintenanceReport`. It works over a connection of its own
and blocks on DuckDB, so the collector runs it in a child process
(:mod:`db.maintenance_process`), off the snapshot loop and its GIL.

Order: partitions for today and the next two days first (quick, and never behind a long
export); then, holding the archive directory's lock and a PostgreSQL advisory lock (one run
per database and per directory), every completed day older than ``after_days`` of each
archived table that exists; then the snapshot days older than ``retention_days``: re-verified
against the archive right before they are dropped when the archive is enabled, dropped as
they are when it is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import structlog

from db import archive_duck
from db.archive_layout import STAGING, ArchiveBusy, ArchiveLayout
from db.archive_schema import ARCHIVED_TABLES, SNAPSHOTS
from db.archiver import ArchiveHooks, Archiver, DayOutcome, day_counts, prepare_session
from db.dsn import redact_text
from db.partitions import ensure_partitions
from db.pool import connect
from db.retention import DropOutcome, drop_day, drop_empty_legacy

log = structlog.get_logger(__name__)

#: advisory lock key of archive and retention runs ("cexarchv")
ARCHIVE_LOCK_KEY = 0x6365786172636876


@dataclass(frozen=True)
class MaintenanceSettings:
    archive_enabled: bool = False
    archive_dir: Path = Path("data/archive")
    after_days: int = 2
    retention_days: int = 0
    #: DuckDB worker threads; the collector's job uses 1 to leave the other core alone
    duckdb_threads: int | None = None
    #: DuckDB memory before it spills to disk (None: DuckDB's default, 80 % of RAM)
    duckdb_memory: str | None = None
    hooks: ArchiveHooks | None = None


@dataclass
class MaintenanceReport:
    partitions_created: list[str] = field(default_factory=list)
    archived: list[DayOutcome] = field(default_factory=list)
    dropped: list[DropOutcome] = field(default_factory=list)
    #: what went wrong (the database unreachable, another run busy, a day not verified)
    errors: list[str] = field(default_factory=list)
    #: the process that did the work
    pid: int = field(default_factory=os.getpid)

    @property
    def ok(self) -> bool:
        return not self.errors and all(d.status != "failed" for d in self.archived)


async def run_maintenance(
    dsn: str, settings: MaintenanceSettings, today: date
) -> MaintenanceReport:
    report = MaintenanceReport()
    try:
        conn = await connect(dsn, timeout=10, application_name="cex-arb-collector-maintenance")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        report.errors.append(redact_text(f"database unreachable: {exc}", dsn))
        return report
    try:
        await prepare_session(conn)
        report.partitions_created = await ensure_partitions(conn, today)
        if settings.archive_enabled or settings.retention_days:
            async with _exclusive(conn, settings) as busy:
                if busy:
                    report.errors.append(busy)
                else:
                    await _archive_and_retain(conn, settings, today, report)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        report.errors.append(redact_text(f"{type(exc).__name__}: {exc}", dsn))
    finally:
        await conn.close()
    return report


def run_maintenance_blocking(
    dsn: str, settings: MaintenanceSettings, today: date
) -> MaintenanceReport:
    """:func:`run_maintenance` on an event loop of its own (db.maintenance_process)."""
    return asyncio.run(run_maintenance(dsn, settings, today))


@contextlib.asynccontextmanager
async def _exclusive(
    conn: asyncpg.Connection, settings: MaintenanceSettings
) -> AsyncIterator[str | None]:
    """Hold the archive directory's flock and the database's advisory lock; yields why not
    when another run has either."""
    layout = ArchiveLayout(settings.archive_dir)
    with contextlib.ExitStack() as stack:
        if settings.archive_enabled:
            try:
                stack.enter_context(layout.locked())
            except ArchiveBusy as exc:
                yield str(exc)
                return
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", ARCHIVE_LOCK_KEY):
            yield "another archive or retention run is using this database"
            return
        try:
            yield None
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ARCHIVE_LOCK_KEY)


async def _archive_and_retain(
    conn: asyncpg.Connection, settings: MaintenanceSettings, today: date, report: MaintenanceReport
) -> None:
    if not settings.archive_enabled:
        await _retain(conn, None, settings, today, report)
        return
    layout = ArchiveLayout(settings.archive_dir)
    temp = settings.archive_dir / STAGING / "duckdb"
    duck = archive_duck.connect(
        threads=settings.duckdb_threads, temp_dir=temp, memory_limit=settings.duckdb_memory
    )
    try:
        archiver = Archiver(conn, layout, duck, settings.hooks)
        await _archive(archiver, settings, today, report)
        await _retain(conn, archiver, settings, today, report)
    finally:
        duck.close()


async def _archive(
    archiver: Archiver, settings: MaintenanceSettings, today: date, report: MaintenanceReport
) -> None:
    before = today - timedelta(days=settings.after_days)
    for spec in ARCHIVED_TABLES:
        columns = await archiver.columns(spec)
        if columns is None:
            continue
        for day, rows in (await archiver.day_counts(spec, before)).items():
            outcome = await archiver.archive_day(spec, columns, day, rows)
            if outcome.status != "unchanged":
                report.archived.append(outcome)
            if outcome.status == "not_ready":
                log.warning(
                    "archive_day_not_ready",
                    table=spec.name,
                    date=day.isoformat(),
                    summary=f"[ARCHIVE] {spec.name} {day}: rows still open, archived later",
                )


async def _retain(
    conn: asyncpg.Connection,
    archiver: Archiver | None,
    settings: MaintenanceSettings,
    today: date,
    report: MaintenanceReport,
) -> None:
    if not settings.retention_days:
        return
    # with the archive, a day is kept until it is old enough to be archived
    keep = max(settings.retention_days, settings.after_days if archiver is not None else 0)
    before = today - timedelta(days=keep)
    columns = await archiver.columns(SNAPSHOTS) if archiver is not None else None
    for day, rows in (await day_counts(conn, SNAPSHOTS, before)).items():
        verified: int | None = None
        if archiver is not None and columns is not None:
            outcome = await archiver.archive_day(SNAPSHOTS, columns, day, rows, verify=True)
            if not outcome.verified:
                log.warning(
                    "retention_skipped",
                    date=day.isoformat(),
                    reason=outcome.error or outcome.status,
                    summary=f"[RETENTION] {SNAPSHOTS.name} {day}: kept, its archive copy is "
                    "not verified",
                )
                continue
            verified = outcome.source_rows
        try:
            dropped = await drop_day(
                conn, day, verified_rows=verified, archived=archiver is not None
            )
        except asyncpg.LockNotAvailableError as exc:  # a long query holds the day: next run
            report.errors.append(f"{SNAPSHOTS.name} {day} kept for now: {exc}")
            log.warning(
                "retention_skipped",
                date=day.isoformat(),
                reason=str(exc),
                summary=f"[RETENTION] {SNAPSHOTS.name} {day}: kept for now ({exc})",
            )
            continue
        report.dropped.append(dropped)
    await drop_empty_legacy(conn, before)
