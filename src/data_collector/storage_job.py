"""The collector's nightly storage job: partitions ahead, archive, retention, after each
midnight UTC, off the snapshot loop.

The work itself (:mod:`db.maintenance`: its own connection, DuckDB) runs in a child process,
``python -m db.maintenance_process``, at a lower CPU priority: in a thread, DuckDB's hold on
the GIL made the snapshot loop miss ticks (bench/storage_bench.py measures the tick lateness
beside the job). The loop only reads the child's output lines: its log events, logged again
here in the collector's format, and its report. On shutdown the child is terminated; that is
safe at any point (nothing is published or dropped before it is verified, and the next run
clears the staging area), so the job never holds the process past its shutdown budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from data_collector.config import Config

if TYPE_CHECKING:
    from db.maintenance import MaintenanceReport, MaintenanceSettings

log = structlog.get_logger("data_collector.storage")

DAY_S = 86_400
#: how long after midnight UTC the job runs (the last ticks of the day are written by then)
AFTER_MIDNIGHT_S = 120.0
#: a run that failed is tried again this much later (but never after the next midnight run)
RETRY_S = 15 * 60.0
#: the collector's job leaves the other core to the feeds and the snapshot loop, and most of
#: the memory too (DuckDB spills to the archive's staging area past this)
JOB_DUCKDB_THREADS = 1
JOB_DUCKDB_MEMORY = "1GB"

#: a child that does not end this long after SIGTERM is killed
TERMINATE_GRACE_S = 2.0
#: the longest line the child writes (a report lists every file of every day it archived)
LINE_LIMIT = 64 * 2**20


def maintenance_settings(
    config: Config,
    *,
    archive: bool | None = None,
    threads: int | None = None,
    memory: str | None = None,
) -> MaintenanceSettings:
    """The job's settings from the configuration (``archive`` overrides archive.enabled)."""
    from db.maintenance import MaintenanceSettings

    return MaintenanceSettings(
        archive_enabled=config.archive.enabled if archive is None else archive,
        archive_dir=config.archive_dir,
        after_days=config.archive.after_days,
        retention_days=config.database.retention_days,
        duckdb_threads=threads,
        duckdb_memory=memory,
    )


def seconds_until_next_run(now: float, after_midnight: float = AFTER_MIDNIGHT_S) -> float:
    """Seconds from ``now`` (epoch s) to the next UTC midnight plus ``after_midnight``."""
    next_run = math.floor((now - after_midnight) / DAY_S + 1) * DAY_S + after_midnight
    return next_run - now


class StorageJob:
    def __init__(
        self,
        dsn: str,
        settings: MaintenanceSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dsn = dsn
        self.settings = settings
        self._clock = clock
        #: reports of the runs so far (monitoring and tests read them)
        self.reports: list[MaintenanceReport] = []

    @property
    def has_work_now(self) -> bool:
        """Archive or retention configured: worth a run at start-up (catching up on days a
        stopped collector missed) rather than only after the next midnight."""
        return self.settings.archive_enabled or bool(self.settings.retention_days)

    async def run(self) -> None:
        delay = 0.0 if self.has_work_now else seconds_until_next_run(self._clock())
        while True:
            await asyncio.sleep(delay)
            ok = await self.run_once()
            delay = seconds_until_next_run(self._clock())
            if not ok:
                delay = min(delay, RETRY_S)

    async def run_once(self, today: date | None = None) -> bool:
        """One maintenance run in a child process; True when it did all it had to."""
        today = today or datetime.fromtimestamp(self._clock(), UTC).date()
        try:
            report = await run_in_child(self._dsn, self.settings, today)
        except Exception as exc:  # a bug must not end the nightly job for good
            log.error(
                "storage_job_failed",
                error=str(exc),
                summary=f"[STORAGE] maintenance run failed: {exc}; tried again later",
            )
            return False
        self.reports.append(report)
        _log_report(report)
        return report.ok


def _log_report(report: MaintenanceReport) -> None:
    exported = [d for d in report.archived if d.verified]
    failed = [d for d in report.archived if d.status == "failed"]
    fields = {
        "partitions_created": report.partitions_created,
        "days_exported": len(exported),
        "days_failed": len(failed),
        "days_dropped": len([d for d in report.dropped if d.skipped is None]),
        "errors": report.errors,
    }
    summary = (
        f"[STORAGE] {len(exported)} days archived, {fields['days_dropped']} dropped, "
        f"{len(report.partitions_created)} partitions created"
    )
    if report.ok:
        log.info("storage_maintenance", **fields, summary=summary)
    else:
        problems = "; ".join(report.errors) or f"{len(failed)} days not archived"
        log.error("storage_maintenance", **fields, summary=f"{summary}; {problems}")


async def run_in_child(dsn: str, settings: MaintenanceSettings, today: date) -> MaintenanceReport:
    """:func:`db.maintenance.run_maintenance` in ``python -m db.maintenance_process``; its
    log events are logged here. Raises RuntimeError when it ends without a report."""
    from db.maintenance_process import decode_line, request_for

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "db.maintenance_process",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env=_child_env(), limit=LINE_LIMIT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    report = None
    try:
        proc.stdin.write(request_for(dsn, settings, today))
        await proc.stdin.drain()
        proc.stdin.close()
        async for raw in proc.stdout:
            line = decode_line(raw)
            if line.log is not None:
                _relog(line.log)
            elif line.report is not None:
                report = line.report
        code = await proc.wait()
    finally:
        await _ended(proc)
    if report is None:
        raise RuntimeError(f"the maintenance process ended (exit code {code}) without a report")
    return report


def _child_env() -> dict[str, str]:
    """This process's environment, with the directory our packages come from on the path
    (run.py from a plain checkout puts src/ on sys.path, not on PYTHONPATH)."""
    import db

    src = str(Path(db.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def _relog(event: dict[str, Any]) -> None:
    level = str(event.pop("level", "info"))
    name = str(event.pop("event", "storage"))
    getattr(log, level if level in ("debug", "info", "warning", "error") else "info")(name, **event)


async def _ended(proc: asyncio.subprocess.Process) -> None:
    """Make sure the child is gone (the job was cancelled: shutdown)."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), TERMINATE_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
