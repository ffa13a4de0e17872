"""The collector's nightly storage job: when it runs, and that it keeps off the snapshot loop."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from data_collector.simulator import Simulator, pairs_for
from data_collector.storage_job import AFTER_MIDNIGHT_S, run_in_child, seconds_until_next_run
from db.maintenance import MaintenanceSettings
from tests.helpers import Log, make_config, running, wait_until
from tests.pg import PgDatabase
from tests.storage_helpers import three_homes

MIDNIGHT = datetime(2026, 11, 23, tzinfo=UTC).timestamp()
BIG_DAY_ROWS = 30_000


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (MIDNIGHT, AFTER_MIDNIGHT_S),  # just after midnight: this morning's run
        (MIDNIGHT + AFTER_MIDNIGHT_S, 86_400.0),  # the run's own instant: the next one
        (MIDNIGHT + 3600, 86_400 - 3600 + AFTER_MIDNIGHT_S),
        (MIDNIGHT - 1, 1 + AFTER_MIDNIGHT_S),
    ],
)
def test_the_job_runs_after_each_midnight_utc(now: float, expected: float) -> None:
    assert seconds_until_next_run(now) == pytest.approx(expected)


async def big_old_day(dsn: str, tmp_path: Path) -> None:
    """Three small old days plus one of BIG_DAY_ROWS rows, so the export takes a while."""
    conn = await asyncpg.connect(dsn)
    try:
        today = datetime.now(UTC).date()
        await three_homes(conn, tmp_path, today)
        await conn.execute(
            """INSERT INTO book_ticker_snapshots (exchange, symbol_base, symbol_quote,
                   bid_price, bid_qty, ask_price, ask_qty, "timestamp")
               SELECT 'mexc', 'P' || (i % 50), 'USDT', ((100000 + i % 977)::numeric / 1000),
                      ((i % 31)::numeric / 8), ((100100 + i % 977)::numeric / 1000), '1.50',
                      $1::timestamptz + (i / 50) * interval '1 second'
               FROM generate_series(0, $2 - 1) AS i""",
            datetime.combine(today - timedelta(days=6), datetime.min.time(), UTC),
            BIG_DAY_ROWS,
        )
    finally:
        await conn.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_the_nightly_job_archives_off_the_snapshot_loop(
    tmp_path: Path, pg_database: PgDatabase, logs: Log
) -> None:
    await big_old_day(pg_database.dsn, tmp_path)
    pairs = pairs_for(3)
    lateness: list[float] = []
    async with Simulator(pairs, rate_hz=5) as sim:
        config = make_config(tmp_path, sim, pairs, pg_database.dsn)
        config.archive.enabled = True
        config.archive.dir = str(tmp_path / "archive")
        async with running(config) as collector:
            collector.scheduler.add_observer(lambda _s, st: lateness.append(st.last_lateness_s))
            job = collector.storage
            assert job is not None and job.has_work_now  # caught up at start-up
            await wait_until(lambda: job.reports, 60, what="the storage job's first run")
            ticks_during_job = len(lateness)
            await wait_until(lambda: len(lateness) >= ticks_during_job + 2, 10, what="ticks")
            stats = collector.scheduler.stats
    [report] = job.reports
    assert report.ok, report
    assert len([d for d in report.archived if d.verified]) == 4
    assert max(d.source_rows for d in report.archived) == BIG_DAY_ROWS
    assert report.pid != os.getpid()  # the work ran in a process of its own
    # its log lines came back through the collector's logger
    exported = [e for e in logs if e["event"] == "archive_day_exported"]
    assert len(exported) == 4 and max(e["rows"] for e in exported) == BIG_DAY_ROWS
    assert stats.missed == 0
    assert max(lateness) < 0.25, lateness  # a quarter of the interval; in a thread: 0.5 s


async def test_a_child_without_a_database_reports_why(tmp_path: Path) -> None:
    settings = MaintenanceSettings(archive_enabled=True, archive_dir=tmp_path / "archive")
    dsn = "postgresql://nobody:s3cret-pw@127.0.0.1:1/none"
    report = await run_in_child(dsn, settings, datetime.now(UTC).date())
    assert not report.ok and report.pid != os.getpid()
    assert "database unreachable" in report.errors[0] and "s3cret-pw" not in report.errors[0]
