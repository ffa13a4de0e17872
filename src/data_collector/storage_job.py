"""The collector's nightly storage job: partitions ahead, archive, retention, after each
midnight UTC, off the snapshot loop.

The work itself is :func:`db.maintenance.run_maintenance_blocking` (its own connection, its
own event loop, DuckDB), run in a daemon thread: the snapshot loop only awaits a future, so a
tick is never delayed by it (bench/storage_bench.py measures the tick lateness while it runs).
A daemon thread rather than the default executor, because an export in progress must not
hold the process past its 10 s shutdown budget: on shutdown the job is asked to stop after
the day in hand, and a process that exits meanwhile leaves only a staging area, which the
next run clears (nothing is published or dropped before it is verified).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, TypeVar

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

T = TypeVar("T")


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
        stop=threading.Event(),
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
        try:
            while True:
                await asyncio.sleep(delay)
                ok = await self.run_once()
                delay = seconds_until_next_run(self._clock())
                if not ok:
                    delay = min(delay, RETRY_S)
        finally:
            if self.settings.stop is not None:
                self.settings.stop.set()

    async def run_once(self, today: date | None = None) -> bool:
        """One maintenance run in a daemon thread; True when it did all it had to."""
        from db.maintenance import run_maintenance_blocking

        today = today or datetime.fromtimestamp(self._clock(), UTC).date()
        try:
            report = await in_daemon_thread(
                run_maintenance_blocking, self._dsn, self.settings, today
            )
        except Exception as exc:  # a bug must not end the nightly job for good
            log.exception("storage_job_failed", error=repr(exc))
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


async def in_daemon_thread(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in a daemon thread; the process may exit while it still runs."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="storage-maintenance", daemon=True).start()
    return await future
