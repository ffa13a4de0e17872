"""Helpers for the storage tests (partitions, archive, retention, --query): snapshot rows with
awkward exact decimals, inserted straight into PostgreSQL, and read back as text."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg

from db.migrations import apply_migrations, default_migrations_dir
from db.partitions import daily_name, ensure_partitions

#: decimal strings whose scale and trailing zeros must survive every tier
DECIMALS = ("80535.880", "0.000000001234", "3", "12345678901234567.123456789", "1.50", "0.0")

COLUMNS_TEXT = """exchange, symbol_base, symbol_quote, bid_price::text, bid_qty::text,
    ask_price::text, ask_qty::text, "timestamp", exchange_time, created_at"""


def day_rows(
    day: date,
    *,
    ticks: int = 3,
    pairs: int = 2,
    exchanges: tuple[str, ...] = ("mexc", "gateio"),
    hour: int = 10,
) -> list[tuple]:
    """Rows of ``ticks`` seconds of ``day`` for ``pairs`` pairs on each exchange; every value
    exact and distinct (the checksum must notice any one of them)."""
    rows = []
    start = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    for t in range(ticks):
        ts = start + timedelta(seconds=t)
        for e, exchange in enumerate(exchanges):
            for p in range(pairs):
                n = t * 31 + e * 7 + p
                bid = DECIMALS[n % len(DECIMALS)]
                rows.append(
                    (
                        exchange,
                        f"C{p}",
                        "USDT",
                        bid if bid != "0.0" else "0.10",
                        f"{n}.{'0' * (n % 4)}1",
                        f"{100 + n}.{n:03d}0",
                        DECIMALS[(n + 3) % len(DECIMALS)],
                        ts,
                        None if n % 5 == 0 else ts - timedelta(microseconds=1000 * n + 7),
                    )
                )
    return rows


async def insert_rows(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.executemany(
        """INSERT INTO book_ticker_snapshots (exchange, symbol_base, symbol_quote, bid_price,
           bid_qty, ask_price, ask_qty, "timestamp", exchange_time)
           VALUES ($1, $2, $3, $4::numeric, $5::numeric, $6::numeric, $7::numeric, $8, $9)""",
        rows,
    )


async def all_rows(conn: asyncpg.Connection, where: str = "TRUE") -> list[tuple]:
    """Every row as text (prices exactly as PostgreSQL holds them), in key order."""
    records = await conn.fetch(
        f"SELECT {COLUMNS_TEXT} FROM book_ticker_snapshots WHERE {where} "
        'ORDER BY exchange, symbol_base, symbol_quote, "timestamp"'
    )
    return [tuple(r) for r in records]


async def old_schema(conn: asyncpg.Connection, tmp_path: Path) -> None:
    """The schema of a database created before partitioning: migration 001 alone."""
    only = tmp_path / "migrations-001"
    only.mkdir()
    shutil.copy(default_migrations_dir() / "001_book_ticker_snapshots.sql", only)
    await apply_migrations(conn, only)


async def where_rows_sit(conn: asyncpg.Connection) -> dict[str, int]:
    """partition name -> rows it holds."""
    records = await conn.fetch(
        "SELECT tableoid::regclass::text AS part, count(*) AS n FROM book_ticker_snapshots "
        "GROUP BY 1"
    )
    return {r["part"]: r["n"] for r in records}


def archived_rows(root: Path, table: str = "book_ticker_snapshots") -> list[tuple]:
    """Every row of the archive's Parquet files, read by DuckDB, in the order of
    :func:`all_rows`."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    files = sorted(str(p) for p in (root / table).rglob("*.parquet"))
    if not files:
        return []
    records = con.execute(
        """SELECT exchange, symbol_base, symbol_quote, bid_price, bid_qty, ask_price, ask_qty,
                  "timestamp", exchange_time, created_at
           FROM read_parquet(?, hive_partitioning = true, hive_types = {'exchange': 'VARCHAR'})
           ORDER BY exchange, symbol_base, symbol_quote, "timestamp" """,
        [files],
    ).fetchall()
    con.close()
    return [tuple(r) for r in records]


TODAY = date(2026, 11, 23)
LEGACY_DAY, PARTITION_DAY, DEFAULT_DAY = (TODAY - timedelta(days=d) for d in (5, 4, 3))
TABLE = "book_ticker_snapshots"


def by_key(row: tuple) -> tuple:
    return (row[0], row[1], row[2], row[7])


def in_days(rows: list[tuple], *days: date) -> list[tuple]:
    return [r for r in rows if r[7].astimezone(UTC).date() in days]


async def three_homes(conn: asyncpg.Connection, tmp_path: Path, today: date = TODAY) -> list[tuple]:
    """Old days (5, 4 and 3 days before ``today``) in each place a row can sit: the legacy
    partition (migrated), a daily partition, the default partition; plus today. Returns
    every row as text."""
    legacy, partition, default = (today - timedelta(days=d) for d in (5, 4, 3))
    await old_schema(conn, tmp_path)
    await insert_rows(conn, day_rows(legacy, ticks=4))
    await apply_migrations(conn)
    await ensure_partitions(conn, partition, days_ahead=0)
    await ensure_partitions(conn, today)
    await insert_rows(conn, day_rows(partition, ticks=5, pairs=3))
    await insert_rows(conn, day_rows(default, ticks=2, exchanges=("mexc", "okx", "gateio")))
    await insert_rows(conn, day_rows(today))
    homes = await where_rows_sit(conn)
    assert set(homes) == {
        "book_ticker_snapshots_legacy",
        daily_name(TABLE, partition),
        "book_ticker_snapshots_default",
        daily_name(TABLE, today),
    }
    return await all_rows(conn)


#: the shape of arbitrage_opportunities (migration 002 of the opportunity ledger); created here
#: only where that migration has not created it
OPPORTUNITIES_DDL = """
CREATE TABLE IF NOT EXISTS arbitrage_opportunities (
    id                BIGSERIAL PRIMARY KEY,
    symbol_base       TEXT             NOT NULL,
    symbol_quote      TEXT             NOT NULL,
    buy_exchange      TEXT             NOT NULL,
    sell_exchange     TEXT             NOT NULL,
    opened_at         TIMESTAMPTZ      NOT NULL,
    closed_at         TIMESTAMPTZ      NULL,
    duration_s        NUMERIC
        GENERATED ALWAYS AS (EXTRACT(EPOCH FROM closed_at - opened_at)) STORED,
    open_net_pct      DOUBLE PRECISION NOT NULL,
    max_net_pct       DOUBLE PRECISION NOT NULL,
    max_gross_pct     DOUBLE PRECISION NOT NULL,
    buy_price_at_max  NUMERIC          NOT NULL,
    sell_price_at_max NUMERIC          NOT NULL,
    size_at_max       NUMERIC          NULL,
    max_profit_quote  NUMERIC          NULL,
    max_at            TIMESTAMPTZ      NOT NULL,
    last_seen_at      TIMESTAMPTZ      NOT NULL,
    ticks             INTEGER          NOT NULL,
    close_reason      TEXT             NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS arbitrage_opportunities_key
    ON arbitrage_opportunities (symbol_base, symbol_quote, buy_exchange, sell_exchange, opened_at);
"""

#: doubles PostgreSQL and DuckDB print differently ("5" and "5.0", "1e-05")
PCTS = (5.0, 0.1, 1e-05, 12.345678901234567, 0.30000000000000004, 250.0)


def opportunity_rows(day: date, *, count: int = 3, open_last: bool = False) -> list[tuple]:
    start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    rows = []
    for i in range(count):
        opened = start + timedelta(minutes=7 * i, microseconds=1000 * i)
        closed = None if open_last and i == count - 1 else opened + timedelta(seconds=3 + i)
        rows.append(
            (
                f"C{i}", "USDT", "mexc", "gateio", opened, closed,
                PCTS[i % 6], PCTS[(i + 1) % 6], PCTS[(i + 2) % 6],
                DECIMALS[i % 4] if DECIMALS[i % 4] != "0.0" else "0.10", "80535.880",
                None if i % 2 else "1.50", "12.3400",
                opened + timedelta(seconds=1), closed or opened + timedelta(seconds=2), 3 + i,
                None if closed is None else "converged",
            )
        )  # fmt: skip
    return rows


async def insert_opportunities(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    await conn.execute(OPPORTUNITIES_DDL)
    await conn.executemany(
        """INSERT INTO arbitrage_opportunities (symbol_base, symbol_quote, buy_exchange,
               sell_exchange, opened_at, closed_at, open_net_pct, max_net_pct, max_gross_pct,
               buy_price_at_max, sell_price_at_max, size_at_max, max_profit_quote, max_at,
               last_seen_at, ticks, close_reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::numeric, $11::numeric,
                   $12::numeric, $13::numeric, $14, $15, $16, $17)""",
        rows,
    )


OPPORTUNITY_TEXT = """symbol_base, symbol_quote, buy_exchange, sell_exchange, opened_at, closed_at,
    duration_s::text, open_net_pct, max_net_pct, max_gross_pct, buy_price_at_max::text,
    sell_price_at_max::text, size_at_max::text, max_profit_quote::text, max_at, last_seen_at,
    ticks, close_reason"""
