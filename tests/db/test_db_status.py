"""database_status on empty, populated and unreachable databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from db.migrations import apply_migrations
from db.status import database_status

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "Sup3r-S3cret-pw"


async def test_database_without_table(pg_database) -> None:
    status = await database_status(pg_database.dsn)
    assert status.reachable and status.error is None
    assert status.total_rows is None and status.latest_timestamp is None
    assert status.per_exchange == {} and status.migrations_applied == []


async def test_migrated_empty_table(pg_database) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    status = await database_status(pg_database.dsn)
    assert status.reachable and status.total_rows == 0 and status.latest_timestamp is None
    assert status.per_exchange == {}
    assert status.migrations_applied[0] == "001_book_ticker_snapshots"
    assert "003_partition_book_ticker_snapshots" in status.migrations_applied


async def populate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        rows = [
            (ex, f"C{i}", "USDT", "1.5", "2", "1.6", "3", T0 + timedelta(seconds=tick))
            for ex, ticks in (("mexc", 4), ("gate", 2))
            for tick in range(ticks)
            for i in range(3)
        ]
        await conn.executemany(
            """INSERT INTO book_ticker_snapshots (exchange, symbol_base, symbol_quote, bid_price,
               bid_qty, ask_price, ask_qty, "timestamp")
               VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6::numeric, $7::numeric, $8)""",
            rows,
        )
        await conn.execute("ANALYZE book_ticker_snapshots")
    finally:
        await conn.close()


async def test_populated_table(pg_database) -> None:
    await populate(pg_database.dsn)
    status = await database_status(pg_database.dsn)
    assert status.reachable and status.counts_exact
    assert status.total_rows == 18
    assert status.latest_timestamp == T0 + timedelta(seconds=3)
    assert status.per_exchange == {
        "mexc": (12, T0 + timedelta(seconds=3)),
        "gate": (6, T0 + timedelta(seconds=1)),
    }
    # no daily partition for 2024: every row waits in the default one (one day of rows)
    [default] = status.partitions
    assert (default.name, default.rows, default.days, default.estimated) == (
        "book_ticker_snapshots_default",
        18,
        1,
        False,
    )
    assert default.first_day is None and default.bytes > 0


async def test_large_table_uses_estimates(pg_database) -> None:
    """Past the exact-count limit, counts come from statistics (ANALYZE saw every row here)."""
    await populate(pg_database.dsn)
    status = await database_status(pg_database.dsn, exact_count_limit=0)
    assert status.reachable and not status.counts_exact
    assert status.total_rows == 18
    assert [(p.rows, p.days, p.estimated) for p in status.partitions] == [(18, None, True)]
    assert status.per_exchange == {
        "mexc": (12, T0 + timedelta(seconds=3)),
        "gate": (6, T0 + timedelta(seconds=1)),
    }


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
async def test_unreachable_returns_within_timeout(pg_database, pg_proxy, mode) -> None:
    getattr(pg_proxy, mode)()
    dsn = pg_proxy.dsn(pg_database.name, password=SECRET)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status = await database_status(dsn, timeout=0.5)
    assert loop.time() - started < 1.0
    assert not status.reachable
    assert status.error and SECRET not in status.error
    assert status.total_rows is None and status.migrations_applied == []


async def test_bad_dsn_is_reported_not_raised() -> None:
    status = await database_status(f"postgresql://u:{SECRET}@[bad/db", timeout=0.5)
    assert not status.reachable and status.error and SECRET not in status.error
