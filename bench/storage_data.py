"""Pieces of the storage benchmark: a realistic old-schema table, sizes per tier, the Parquet
types compared, and tick lateness beside the archive job."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import duckdb
import numpy as np

from data_collector.cache import QuoteCache
from data_collector.scheduler import SnapshotScheduler
from data_collector.simulator import pairs_for
from data_collector.venues.base import QuoteUpdate

#: the seed's 20 pairs x 2 venues, one row each per second
PAIRS = (
    ("BTC", 80000, 2, 6), ("ETH", 3000, 2, 4), ("SOL", 150, 3, 3), ("XRP", 2.2, 4, 1),
    ("DOGE", 0.18, 5, 0), ("ADA", 0.7, 4, 1), ("TRX", 0.25, 5, 0), ("LINK", 15, 3, 2),
    ("AVAX", 25, 3, 2), ("DOT", 5, 3, 2), ("LTC", 90, 2, 3), ("BCH", 450, 2, 4),
    ("UNI", 8, 3, 2), ("ATOM", 5, 3, 2), ("ETC", 20, 3, 2), ("FIL", 3, 3, 2),
    ("NEAR", 3, 3, 2), ("APT", 6, 3, 2), ("ARB", 0.4, 4, 1), ("OP", 0.8, 4, 1),
)  # fmt: skip
VENUES = ("mexc", "gateio")
ROWS_PER_TICK = len(PAIRS) * len(VENUES)
CHUNK_TICKS = 25_000

# one tick per second from $1; prices keep the pair's fixed decimals (trailing zeros and all),
# sizes are trimmed like venues print them; exchange time a few ms before the tick
_FILL = """
INSERT INTO book_ticker_snapshots (exchange, symbol_base, symbol_quote, bid_price, bid_qty,
                                   ask_price, ask_qty, "timestamp", exchange_time, created_at)
SELECT v.name, p.base, 'USDT',
       round(m.mid, p.dec), trim_scale(round((random() * 20)::numeric, p.qdec)),
       round(m.mid, p.dec) + (10 ^ -p.dec)::numeric,
       trim_scale(round((random() * 20)::numeric, p.qdec)),
       $1::timestamptz + t * interval '1 second',
       $1::timestamptz + t * interval '1 second' - random() * interval '80 milliseconds',
       $1::timestamptz + t * interval '1 second' + interval '7 milliseconds'
FROM generate_series($2::int, $3::int) AS t
CROSS JOIN unnest($4::text[], $5::numeric[], $6::int[], $7::int[]) AS p(base, price, dec, qdec)
CROSS JOIN LATERAL (SELECT (p.price * (1 + 0.01 * sin(t / 3600.0 + p.dec)
                                      + 0.0005 * sin(t / 11.0 + p.qdec)))::numeric AS mid) m
CROSS JOIN unnest($8::text[]) AS v(name)
"""


async def fill_old_table(
    conn: asyncpg.Connection, rows: int, start: datetime, log: Callable[[str], None]
) -> int:
    """``rows`` snapshot rows (rounded up to whole ticks) from ``start``, one per second."""
    ticks = -(-rows // ROWS_PER_TICK)
    bases, prices, decs, qdecs = zip(*PAIRS, strict=True)
    await conn.execute("SET synchronous_commit = off")
    for first in range(0, ticks, CHUNK_TICKS):
        last = min(first + CHUNK_TICKS, ticks) - 1
        await conn.execute(
            _FILL, start, first, last, list(bases), [Decimal(str(p)) for p in prices], list(decs),
            list(qdecs), list(VENUES),
        )  # fmt: skip
        log(f"  filled {(last + 1) * ROWS_PER_TICK:,} rows")
    return ticks * ROWS_PER_TICK


async def table_bytes(conn: asyncpg.Connection, table: str) -> dict[str, int]:
    """Heap (with TOAST), indexes and total of one table or partition."""
    row = await conn.fetchrow(
        """SELECT pg_table_size(to_regclass($1)) AS heap, pg_indexes_size(to_regclass($1)) AS
                  indexes, pg_total_relation_size(to_regclass($1)) AS total""",
        table,
    )
    return dict(row)


async def index_bytes(conn: asyncpg.Connection, table: str) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = to_regclass($1)""",
        table,
    )
    return {r["name"]: r["bytes"] for r in rows}


#: (label, SELECT list turning the archived strings into the type tried)
ENCODINGS = (
    ("exact decimal strings (chosen)", "{col}"),
    ("DECIMAL(18, widest scale of the file)", "CAST({col} AS DECIMAL(18, {scale}))"),
    ("DOUBLE (not exact: '80535.880' comes back as 80535.88)", "CAST({col} AS DOUBLE)"),
)
NUMERIC_COLUMNS = ("bid_price", "bid_qty", "ask_price", "ask_qty")


def compare_encodings(files: list[Path], work: Path) -> list[tuple[str, int, int, int]]:
    """(encoding, file bytes, bytes of the four price and size columns, rows) of the same
    rows written with each type for prices and sizes, one file per exchange as archived."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = []
    for n, (label, template) in enumerate(ENCODINGS):
        total = numeric = rows = 0
        for path in map(str, files):
            scales = {
                c: con.execute(
                    f"SELECT max(length(split_part({c}, '.', 2))) FROM read_parquet(?)", [path]
                ).fetchone()[0]
                for c in NUMERIC_COLUMNS
            }
            select = ", ".join(
                template.format(col=c, scale=scales[c]) + f" AS {c}" if c in NUMERIC_COLUMNS
                else f'"{c}"'
                for c in _columns(con, path)
            )  # fmt: skip
            target = work / f"enc-{n}-{Path(path).parent.name}.parquet"
            con.execute(
                f"COPY (SELECT {select} FROM read_parquet(?, hive_partitioning = false)) "
                f"TO '{target}' (FORMAT parquet, COMPRESSION zstd)",
                [path],
            )
            total += target.stat().st_size
            numeric += column_bytes(con, target, NUMERIC_COLUMNS)
            rows += con.execute("SELECT count(*) FROM read_parquet(?)", [str(target)]).fetchone()[0]
        out.append((label, total, numeric, rows))
    con.close()
    return out


def column_bytes(con: duckdb.DuckDBPyConnection, path: Path, columns: tuple[str, ...]) -> int:
    """Compressed bytes of ``columns`` in a Parquet file (from its footer)."""
    row = con.execute(
        "SELECT coalesce(sum(total_compressed_size), 0) FROM parquet_metadata(?) "
        "WHERE path_in_schema IN (SELECT unnest(?))",
        [str(path), list(columns)],
    ).fetchone()
    return int(row[0])


def bytes_per_column(files: list[Path]) -> dict[str, int]:
    """Compressed bytes of each column over ``files``."""
    con = duckdb.connect()
    rows = con.execute(
        "SELECT path_in_schema, sum(total_compressed_size) FROM parquet_metadata(?) GROUP BY 1",
        [[str(p) for p in files]],
    ).fetchall()
    con.close()
    return {name: int(size) for name, size in rows}


def _columns(con: duckdb.DuckDBPyConnection, path: str) -> list[str]:
    schema = con.execute("SELECT name FROM parquet_schema(?)", [path]).fetchall()
    return [name for (name,) in schema[1:]]


def filled_cache() -> QuoteCache:
    """A cache with every quote of the seed's 20 pairs on 2 venues live."""
    pairs = pairs_for(len(PAIRS))
    cache = QuoteCache(VENUES, pairs)
    for v in range(len(VENUES)):
        for p, pair in enumerate(pairs):
            update = QuoteUpdate(str(pair), "100.10", "1.5", "100.20", "2.25", 1, 1)
            cache.apply(v, p, update, time.time_ns())
    return cache


async def tick_lateness(
    interval: float, until: Callable[[], bool], max_seconds: float
) -> tuple[np.ndarray, int]:
    """Run a snapshot scheduler until ``until()`` (or ``max_seconds``): its lateness per tick
    (ms) and the ticks it missed, from SnapshotScheduler.stats."""
    scheduler = SnapshotScheduler(filled_cache(), interval, sinks=[lambda rows: None])
    lateness: list[float] = []
    scheduler.add_observer(lambda _snap, stats: lateness.append(stats.last_lateness_s * 1e3))
    task = asyncio.create_task(scheduler.run())
    deadline = time.monotonic() + max_seconds
    while not until() and time.monotonic() < deadline:
        await asyncio.sleep(interval)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return np.asarray(lateness), scheduler.stats.missed


def utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def days_back(n: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=n)
