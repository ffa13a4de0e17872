"""--query's union of the Parquet archive and the live rows, against a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from db.archive_query import QueryError, mentioned, run_query
from db.maintenance import MaintenanceSettings, run_maintenance
from tests.storage_helpers import (
    DEFAULT_DAY,
    LEGACY_DAY,
    PARTITION_DAY,
    TODAY,
    all_rows,
    by_key,
    day_rows,
    in_days,
    insert_rows,
    three_homes,
)

ROW_SQL = """SELECT exchange, symbol_base, symbol_quote, bid_price, bid_qty, ask_price, ask_qty,
                    "timestamp", exchange_time, created_at FROM book_ticker_snapshots {where}
             ORDER BY exchange, symbol_base, symbol_quote, "timestamp" """


async def test_a_window_spanning_archive_and_live_rows_is_their_union(
    pg_database, tmp_path
) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        before = await three_homes(conn, tmp_path)
        archive = tmp_path / "archive"
        config = MaintenanceSettings(archive_enabled=True, archive_dir=archive, retention_days=3)
        report = await run_maintenance(pg_database.dsn, config, TODAY)
        assert report.ok and len(report.dropped) == 2  # two days left PostgreSQL
        # late rows: for a day that left PostgreSQL, and for one both tiers hold
        late = day_rows(LEGACY_DAY, ticks=1, hour=23) + day_rows(DEFAULT_DAY, ticks=1, hour=21)
        await insert_rows(conn, late)
        # the days only the archive holds, then everything PostgreSQL holds now
        gone = in_days(before, LEGACY_DAY, PARTITION_DAY)
        every = sorted(gone + await all_rows(conn), key=by_key)
    finally:
        await conn.close()
    assert len(every) == len(before) + len(late)

    result = await run_query(pg_database.dsn, archive, ROW_SQL.format(where=""))
    assert result.columns[:4] == ["exchange", "symbol_base", "symbol_quote", "bid_price"]
    assert result.rows == every  # each row once, every decimal as PostgreSQL held it

    window = "WHERE \"timestamp\" >= '2026-11-19' AND \"timestamp\" < '2026-11-24'"
    spanning = await run_query(pg_database.dsn, archive, ROW_SQL.format(where=window))
    days = [TODAY - timedelta(days=d) for d in (4, 3, 0)]
    assert spanning.rows == in_days(every, *days)

    counts = await run_query(
        pg_database.dsn,
        archive,
        'SELECT exchange, count(*) AS n, count(DISTINCT (symbol_base, "timestamp")) AS k '
        "FROM book_ticker_snapshots GROUP BY 1 ORDER BY 1",
    )
    assert counts.columns == ["exchange", "n", "k"]
    expected = {}
    for row in every:
        expected[row[0]] = expected.get(row[0], 0) + 1
    assert [(e, n) for e, n, _k in counts.rows] == sorted(expected.items())
    assert all(n == k for _e, n, k in counts.rows)


async def test_without_an_archive_it_is_the_live_table(migrated, tmp_path) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        await insert_rows(conn, day_rows(TODAY))
        expected = await all_rows(conn)
    finally:
        await conn.close()
    result = await run_query(migrated.dsn, tmp_path / "none", ROW_SQL.format(where=""))
    assert result.rows == expected
    with pytest.raises(QueryError, match="Binder Error"):
        await run_query(migrated.dsn, tmp_path / "none", "SELECT nope FROM book_ticker_snapshots")


def test_only_the_tables_a_query_names_are_exported() -> None:
    assert [t.name for t in mentioned("select 1")] == []
    assert [t.name for t in mentioned("SELECT * FROM Book_Ticker_Snapshots")] == [
        "book_ticker_snapshots"
    ]
    assert [t.name for t in mentioned("from book_ticker_snapshots_x")] == []
