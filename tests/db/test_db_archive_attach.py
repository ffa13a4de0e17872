"""Archived days back in a PostgreSQL session (the seam ``--report`` reads through)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from db.archive_attach import attach_archive
from db.maintenance import MaintenanceSettings, run_maintenance
from db.partitions import day_start
from tests.storage_helpers import (
    DEFAULT_DAY,
    LEGACY_DAY,
    PARTITION_DAY,
    TODAY,
    day_rows,
    insert_rows,
    three_homes,
)

# the kind of aggregate a report runs; sums of NUMERIC are exact, so equal means equal
NUMBERS = """
SELECT exchange, count(*) AS n, sum(bid_price) AS bids, sum(ask_qty) AS sizes,
       min(bid_price)::text AS low, max("timestamp") AS last, count(exchange_time) AS timed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ask_price - bid_price) AS median_spread
FROM book_ticker_snapshots WHERE "timestamp" >= $1 AND "timestamp" < $2
GROUP BY 1 ORDER BY 1
"""


async def report_numbers(conn: asyncpg.Connection, since, until) -> list[tuple]:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return [tuple(r) for r in await conn.fetch(NUMBERS, since, until)]


async def test_a_window_spanning_both_tiers_gives_the_same_numbers(pg_database, tmp_path) -> None:
    # from the middle of the first archived day to the middle of today
    since = day_start(LEGACY_DAY) + timedelta(hours=10, seconds=1)
    until = day_start(TODAY) + timedelta(hours=10, seconds=1)
    archive = tmp_path / "archive"
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        await three_homes(conn, tmp_path)
        await insert_rows(conn, day_rows(LEGACY_DAY, ticks=1, hour=9))  # before the window
        unmoved = await report_numbers(conn, since, until)
        settings = MaintenanceSettings(archive_enabled=True, archive_dir=archive, retention_days=3)
        report = await run_maintenance(pg_database.dsn, settings, TODAY)
        assert report.ok and {d.day for d in report.dropped} == {LEGACY_DAY, PARTITION_DAY}
        assert await report_numbers(conn, since, until) != unmoved  # rows did leave
    finally:
        await conn.close()

    conn = await asyncpg.connect(pg_database.dsn)
    try:
        attached = await attach_archive(conn, archive, since, until)
        assert {(a.table, tuple(a.days)) for a in attached} == {
            ("book_ticker_snapshots", (LEGACY_DAY, PARTITION_DAY))  # DEFAULT_DAY is still live
        }
        assert await report_numbers(conn, since, until) == unmoved
        assert DEFAULT_DAY not in attached[0].days
    finally:
        await conn.close()


async def test_nothing_archived_changes_nothing(migrated, tmp_path) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        since = day_start(TODAY)
        assert await attach_archive(conn, tmp_path / "none", since, since + timedelta(1)) == []
        assert await conn.fetchval("SELECT to_regclass('pg_temp.book_ticker_snapshots')") is None
    finally:
        await conn.close()
