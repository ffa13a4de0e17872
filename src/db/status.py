"""A quick, bounded look at the database for health checks and ``status`` output."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg
import msgspec

from db.dsn import redact_text
from db.migrations import applied_migrations
from db.partition_status import PartitionStatus, partition_status
from db.pool import connect

TABLE = "book_ticker_snapshots"

#: above this many rows (planner estimate) counts come from statistics, not count(*)
EXACT_COUNT_LIMIT = 5_000_000


class DatabaseStatus(msgspec.Struct):
    reachable: bool
    #: why the database could not be read; never contains a password
    error: str | None = None
    #: None when the table does not exist (yet)
    total_rows: int | None = None
    latest_timestamp: datetime | None = None
    #: exchange -> (row count, latest snapshot timestamp)
    per_exchange: dict[str, tuple[int, datetime | None]] = msgspec.field(default_factory=dict)
    migrations_applied: list[str] = msgspec.field(default_factory=list)
    #: False when counts are planner estimates (very large table)
    counts_exact: bool = True
    #: the table's partitions (empty when it is not partitioned)
    partitions: list[PartitionStatus] = msgspec.field(default_factory=list)


async def database_status(
    dsn: str, timeout: float = 3.0, *, exact_count_limit: int = EXACT_COUNT_LIMIT
) -> DatabaseStatus:
    """Status of the database at ``dsn``; returns within ``timeout`` seconds, never raises
    for an unreachable or half-set-up database (the reason is in ``error``)."""
    try:
        async with asyncio.timeout(timeout):
            conn = await connect(dsn, timeout=timeout, application_name="cex-arb-collector-status")
            try:
                return await _read_status(conn, exact_count_limit)
            finally:
                conn.terminate()  # close() would wait for a server reply we may not have time for
    except TimeoutError:
        return DatabaseStatus(reachable=False, error=f"no answer within {timeout:g} s")
    except Exception as exc:  # any failure is a status to report, not a crash
        message = f"{type(exc).__name__}: {exc}"
        return DatabaseStatus(reachable=False, error=redact_text(message, dsn))


async def _read_status(conn: asyncpg.Connection, exact_count_limit: int) -> DatabaseStatus:
    status = DatabaseStatus(reachable=True, migrations_applied=await applied_migrations(conn))
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", TABLE):
        return status
    estimate = await conn.fetchval(_ESTIMATE, TABLE)
    held: dict[str, tuple[int, int]] | None = None
    if estimate > exact_count_limit:
        await _estimated_counts(conn, status, estimate)
    else:
        held = await _exact_counts(conn, status)
    status.partitions = await partition_status(conn, TABLE, held)
    return status


async def _exact_counts(
    conn: asyncpg.Connection, status: DatabaseStatus
) -> dict[str, tuple[int, int]]:
    """Exact counts per exchange; returns partition -> (rows, days with rows), from the same
    scan."""
    rows = await conn.fetch(
        f"""SELECT tableoid::regclass::text AS part, exchange,
                   count(DISTINCT date_trunc('day', "timestamp" AT TIME ZONE 'UTC')) AS days,
                   count(*) AS n, max("timestamp") AS latest
            FROM {TABLE} GROUP BY 1, 2"""
    )
    per_exchange: dict[str, tuple[int, datetime | None]] = {}
    held: dict[str, tuple[int, int]] = {}
    for r in rows:
        n, latest = per_exchange.get(r["exchange"], (0, None))
        newest = r["latest"] if latest is None else max(latest, r["latest"])
        per_exchange[r["exchange"]] = (n + r["n"], newest)
        count, days = held.get(r["part"], (0, 0))
        held[r["part"]] = (count + r["n"], max(days, r["days"]))
    status.per_exchange = per_exchange
    status.total_rows = sum(n for n, _ in per_exchange.values())
    status.latest_timestamp = max((t for _, t in per_exchange.values() if t), default=None)
    return held


# distinct exchanges by skipping through the unique index instead of scanning the table
_EXCHANGES = f"""
WITH RECURSIVE ex AS (
    (SELECT exchange FROM {TABLE} ORDER BY exchange LIMIT 1)
    UNION ALL
    SELECT (SELECT t.exchange FROM {TABLE} t WHERE t.exchange > ex.exchange
            ORDER BY t.exchange LIMIT 1)
    FROM ex WHERE ex.exchange IS NOT NULL
)
SELECT exchange FROM ex WHERE exchange IS NOT NULL
"""

# the table itself, or its partitions when it is partitioned (the parent holds no rows and
# autovacuum never analyses it)
_HOLDERS = """
SELECT c.oid, c.relname, greatest(c.reltuples, 0) AS n FROM pg_class c
WHERE CASE WHEN (SELECT relkind FROM pg_class WHERE oid = to_regclass($1)) = 'p'
           THEN c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass($1))
           ELSE c.oid = to_regclass($1) END
"""

_ESTIMATE = f"SELECT coalesce(sum(n), 0)::bigint FROM ({_HOLDERS}) h"

_EXCHANGE_FREQS = f"""
SELECT s.most_common_vals::text::text[] AS vals, s.most_common_freqs AS freqs, h.n
FROM ({_HOLDERS}) h
JOIN pg_stats s ON s.tablename = h.relname AND s.schemaname = current_schema()
WHERE s.attname = 'exchange' AND NOT s.inherited
"""


async def _estimated_counts(conn: asyncpg.Connection, status: DatabaseStatus, total: int) -> None:
    """Counts from planner statistics; latest timestamps still exact, via the indexes."""
    status.counts_exact = False
    status.total_rows = total
    status.latest_timestamp = await conn.fetchval(f'SELECT max("timestamp") FROM {TABLE}')
    rows: dict[str, float] = {}
    for stats in await conn.fetch(_EXCHANGE_FREQS, TABLE):
        for value, freq in zip(stats["vals"] or [], stats["freqs"] or [], strict=False):
            rows[value] = rows.get(value, 0.0) + freq * stats["n"]
    for record in await conn.fetch(_EXCHANGES):
        exchange = record["exchange"]
        latest = await conn.fetchval(
            f'SELECT max("timestamp") FROM {TABLE} WHERE exchange = $1', exchange
        )
        status.per_exchange[exchange] = (round(rows.get(exchange, 0.0)), latest)
