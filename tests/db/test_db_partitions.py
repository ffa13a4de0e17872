"""Daily partitions and migration 003 against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg

from db.migrations import applied_migrations, apply_migrations, default_migrations_dir
from db.partitions import (
    SNAPSHOTS,
    daily_name,
    drop_partition,
    ensure_partitions,
    is_partitioned,
    list_partitions,
)
from tests.storage_helpers import all_rows, day_rows, insert_rows, old_schema, where_rows_sit

TODAY = date(2026, 11, 23)
MIGRATION_003 = "003_partition_book_ticker_snapshots"


async def test_partitions_created_ahead_and_rows_routed(migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        assert await is_partitioned(conn)
        names = await ensure_partitions(conn, TODAY)
        assert names == [daily_name(SNAPSHOTS, TODAY + timedelta(days=d)) for d in range(3)]
        assert await ensure_partitions(conn, TODAY) == []  # nothing twice
        parts = await list_partitions(conn)
        assert [p.name for p in parts] == [*names, "book_ticker_snapshots_default"]
        assert parts[0].lower == datetime(2026, 11, 23, tzinfo=UTC)
        assert parts[0].days == [TODAY]
        await insert_rows(conn, day_rows(TODAY) + day_rows(TODAY + timedelta(days=2), ticks=1))
        assert await where_rows_sit(conn) == {names[0]: 12, names[2]: 4}
    finally:
        await conn.close()


async def test_row_without_partition_lands_in_default_then_moves(migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        await ensure_partitions(conn, TODAY)
        late = TODAY + timedelta(days=5)
        rows = day_rows(late)
        await insert_rows(conn, rows)
        assert await where_rows_sit(conn) == {"book_ticker_snapshots_default": len(rows)}
        before = await all_rows(conn)
        # the collector comes back and creates that day's partition: the rows move into it
        created = await ensure_partitions(conn, late, days_ahead=0)
        assert created == [daily_name(SNAPSHOTS, late)]
        assert await where_rows_sit(conn) == {created[0]: len(rows)}
        assert await all_rows(conn) == before
    finally:
        await conn.close()


async def test_on_conflict_dedup_across_partitions(migrated) -> None:
    conn = await asyncpg.connect(migrated.dsn)
    try:
        await ensure_partitions(conn, TODAY)
        rows = day_rows(TODAY) + day_rows(TODAY + timedelta(days=9))  # partition + default
        await insert_rows(conn, rows)
        status = await conn.execute(
            """INSERT INTO book_ticker_snapshots (exchange, symbol_base, symbol_quote,
               bid_price, bid_qty, ask_price, ask_qty, "timestamp")
               SELECT exchange, symbol_base, symbol_quote, bid_price, bid_qty, ask_price,
                      ask_qty, "timestamp" FROM book_ticker_snapshots
               ON CONFLICT (exchange, symbol_base, symbol_quote, "timestamp") DO NOTHING"""
        )
        assert status == "INSERT 0 0"
        assert await conn.fetchval("SELECT count(*) FROM book_ticker_snapshots") == len(rows)
    finally:
        await conn.close()


async def test_migration_keeps_every_row_of_an_old_table(pg_database, tmp_path) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        await old_schema(conn, tmp_path)
        assert not await is_partitioned(conn)
        rows = [r for d in range(3) for r in day_rows(TODAY - timedelta(days=d), ticks=4)]
        await insert_rows(conn, rows)
        before = await all_rows(conn)
        ids = await conn.fetch('SELECT id, exchange, symbol_base, "timestamp" FROM ' + SNAPSHOTS)
        assert len(before) == len(rows)

        assert MIGRATION_003 in await apply_migrations(conn)
        assert MIGRATION_003 in await applied_migrations(conn)
        assert await is_partitioned(conn)
        assert await all_rows(conn) == before  # every row, every decimal, nothing twice
        after_ids = await conn.fetch(
            'SELECT id, exchange, symbol_base, "timestamp" FROM ' + SNAPSHOTS
        )
        assert sorted(map(tuple, after_ids)) == sorted(map(tuple, ids))
        parts = await list_partitions(conn)
        legacy = next(p for p in parts if p.name == "book_ticker_snapshots_legacy")
        assert legacy.days == [TODAY - timedelta(days=2), TODAY - timedelta(days=1), TODAY]
        assert await where_rows_sit(conn) == {"book_ticker_snapshots_legacy": len(rows)}

        # running it twice is harmless: the runner skips it, the SQL itself does nothing
        assert await apply_migrations(conn) == []
        sql = (default_migrations_dir() / f"{MIGRATION_003}.sql").read_text()
        await conn.execute(sql)
        assert await all_rows(conn) == before

        # the legacy days are covered; new days get their own partitions, ids go on
        created = await ensure_partitions(conn, TODAY)
        assert created == [daily_name(SNAPSHOTS, TODAY + timedelta(days=d)) for d in (1, 2)]
        await insert_rows(conn, day_rows(TODAY + timedelta(days=1), ticks=1))
        newest = await conn.fetchval("SELECT max(id) FROM " + SNAPSHOTS)
        assert newest > max(r["id"] for r in ids)
        # the sequence belongs to the parent now: dropping the legacy partition keeps it
        await drop_partition(conn, "book_ticker_snapshots_legacy")
        await insert_rows(conn, day_rows(TODAY + timedelta(days=2), ticks=1))
        assert await conn.fetchval("SELECT count(*) FROM " + SNAPSHOTS) == 8
    finally:
        await conn.close()


async def test_migration_of_an_empty_old_table(pg_database, tmp_path) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        await old_schema(conn, tmp_path)
        await apply_migrations(conn)
        assert [p.name for p in await list_partitions(conn)] == ["book_ticker_snapshots_default"]
    finally:
        await conn.close()
