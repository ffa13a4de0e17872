"""``run.py --archive`` (one storage run, then exit) and ``run.py --query SQL``.

Both are report commands (see cli.REPORTS): what they print goes alone to stdout, their log
lines to stderr. Neither touches the venues nor takes the data directory's lock, so they can
run beside a collector; two archive runs never overlap (the archive directory's lock and a
PostgreSQL advisory lock).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from data_collector.config import Config
from data_collector.database_target import database_target
from data_collector.storage_job import maintenance_settings
from data_collector.tabular import render
from data_collector.wording import noun_for, plural

if TYPE_CHECKING:
    from db.maintenance import MaintenanceReport

log = structlog.get_logger("data_collector.cli")

EXIT_FAILED = 1
EXIT_BAD_QUERY = 2


async def archive_now(config: Config) -> int:
    """Export every completed day older than archive.after_days (whatever archive.enabled
    says: the flag asks for it), then apply database.retention_days; exit 1 when a day could
    not be archived or the database could not be used."""
    from db.maintenance import run_maintenance

    settings = maintenance_settings(config, archive=True)
    today = datetime.now(UTC).date()
    with database_target(config) as target:
        if target.dsn is None:
            print(f"Nothing to archive: {target.label} was never initialised")
            return 0
        report = await run_maintenance(target.dsn, settings, today)
    for line in archive_report_lines(config, report, today.isoformat()):
        print(line)
    return 0 if report.ok else EXIT_FAILED


def archive_report_lines(config: Config, report: MaintenanceReport, today: str) -> list[str]:
    lines = [f"Archive run into {config.archive_dir} ({today} UTC):"]
    if report.partitions_created:
        lines.append(f"  partitions created: {', '.join(report.partitions_created)}")
    for day in report.archived:
        where = f"  {day.table} {day.day}:"
        if day.verified:
            lines.append(
                f"{where} {day.source_rows:,} {noun_for(day.source_rows, 'row')} verified "
                f"({day.new_rows:,} written now) in "
                f"{plural(len(day.files), 'file')}, {day.bytes:,} bytes"
            )
        elif day.status == "not_ready":
            lines.append(f"{where} not archived yet: some rows can still change")
        else:
            lines.append(f"{where} NOT archived, nothing dropped ({day.error})")
    for drop in report.dropped:
        what = ", ".join(drop.dropped) or "no rows"
        if drop.skipped:
            lines.append(f"  kept {drop.day}: {drop.skipped} (dropped by a later run)")
        else:
            lines.append(f"  dropped {drop.day} from PostgreSQL: {drop.rows:,} rows ({what})")
    if not report.archived and not report.dropped and not report.errors:
        lines.append(
            f"  nothing to do: every completed day older than "
            f"{plural(config.archive.after_days, 'day')} is archived already"
        )
    lines += [f"  error: {error}" for error in report.errors]
    failed = len([d for d in report.archived if d.status == "failed"]) + len(report.errors)
    lines.append("Result: ok" if report.ok else f"Result: {plural(failed, 'problem')}")
    return lines


async def query(config: Config, sql: str, fmt: str) -> int:
    """Run ``sql`` in DuckDB over the archive plus the live rows; print the result."""
    from db.archive_query import DatabaseUnavailable, QueryError, run_query

    with database_target(config) as target:
        if target.dsn is None:
            log.error(
                "query_failed",
                error="no database",
                summary=f"Cannot query: {target.label} was never initialised",
            )
            return EXIT_FAILED
        try:
            result = await run_query(target.dsn, config.archive_dir, sql)
        except QueryError as exc:
            log.error("query_failed", error=str(exc), summary=f"--query: {exc}")
            return EXIT_BAD_QUERY
        except DatabaseUnavailable as exc:
            log.error("query_failed", error=str(exc), summary=f"Cannot query: {exc}")
            return EXIT_FAILED
    print(render(result.columns, result.rows, fmt))
    return 0
