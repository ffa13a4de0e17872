"""Daily partitions of ``book_ticker_snapshots``: list them, create them ahead, drop them.

One partition per UTC day, ``book_ticker_snapshots_pYYYYMMDD``; ``book_ticker_snapshots_default``
takes any row no partition covers; ``book_ticker_snapshots_legacy`` (from migration 003) covers
the whole days the table held before it was partitioned.

A new day's partition is created standalone and then ATTACHed, never with
``CREATE TABLE ... PARTITION OF``: ATTACH takes only a SHARE UPDATE EXCLUSIVE lock on the
parent, so the writer's INSERTs into today's partition go on meanwhile. If the default
partition holds rows of that day (the collector was not there to create it in time), they are
moved into the new partition in the same transaction; otherwise ATTACH would refuse it.
Every DDL statement runs under a short ``lock_timeout``: a statement waiting for a lock would
make the writer queue behind it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

SNAPSHOTS = "book_ticker_snapshots"
DEFAULT_SUFFIX = "_default"
#: today and the next two days
DAYS_AHEAD = 2
LOCK_TIMEOUT = "2s"

_BOUND = re.compile(r"FOR VALUES FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    #: None for the default partition
    lower: datetime | None
    upper: datetime | None

    @property
    def is_default(self) -> bool:
        return self.lower is None

    @property
    def days(self) -> list[date]:
        """The UTC days of the partition's range (none for the default partition)."""
        if self.lower is None or self.upper is None:
            return []
        first, end = self.lower.date(), self.upper.date()
        if self.upper.timetz() != time(0, tzinfo=UTC):
            end += timedelta(days=1)
        return [first + timedelta(days=i) for i in range((end - first).days)]

    def covers(self, day: date) -> bool:
        """True if the whole of ``day`` lies in this partition's range."""
        if self.lower is None or self.upper is None:
            return False
        start = day_start(day)
        return self.lower <= start and start + timedelta(days=1) <= self.upper

    def overlaps(self, day: date) -> bool:
        if self.lower is None or self.upper is None:
            return False
        start = day_start(day)
        return self.lower < start + timedelta(days=1) and start < self.upper


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def day_range(day: date) -> tuple[datetime, datetime]:
    start = day_start(day)
    return start, start + timedelta(days=1)


def daily_name(parent: str, day: date) -> str:
    return f"{parent}_p{day:%Y%m%d}"


def _parse_time(text: str) -> datetime:
    # PostgreSQL prints "2026-11-23 00:00:00+00" (session time zone UTC)
    value = datetime.fromisoformat(text.replace(" ", "T"))
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


async def list_partitions(conn: asyncpg.Connection, parent: str = SNAPSHOTS) -> list[Partition]:
    """The partitions of ``parent`` ordered by range, the default one last; empty when the
    table is not partitioned (or does not exist)."""
    rows = await conn.fetch(
        """SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = to_regclass($1)""",
        parent,
    )
    parts: list[Partition] = []
    for row in rows:
        match = _BOUND.search(row["bound"] or "")
        if match is None:
            parts.append(Partition(row["name"], None, None))
        else:
            parts.append(
                Partition(row["name"], _parse_time(match.group(1)), _parse_time(match.group(2)))
            )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(parts, key=lambda p: (p.lower is None, p.lower or far))


async def is_partitioned(conn: asyncpg.Connection, table: str = SNAPSHOTS) -> bool:
    kind = await conn.fetchval(
        "SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)", table
    )
    return kind == "p"


async def ensure_partitions(
    conn: asyncpg.Connection, today: date, *, days_ahead: int = DAYS_AHEAD, parent: str = SNAPSHOTS
) -> list[str]:
    """Create the daily partitions of ``today`` and the ``days_ahead`` days after it that no
    partition covers yet; return the names created. Rows of those days waiting in the default
    partition move into the new partition."""
    if not await is_partitioned(conn, parent):
        return []
    created: list[str] = []
    for offset in range(days_ahead + 1):
        day = today + timedelta(days=offset)
        existing = await list_partitions(conn, parent)
        if any(p.overlaps(day) for p in existing):
            continue
        default = next((p.name for p in existing if p.is_default), None)
        created.append(await _create_daily(conn, parent, day, default))
    return created


async def _create_daily(
    conn: asyncpg.Connection, parent: str, day: date, default: str | None
) -> str:
    name = daily_name(parent, day)
    lower, upper = day_range(day)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await conn.execute(
            f'CREATE TABLE "{name}" (LIKE "{parent}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'
        )
        if default is not None:
            await conn.execute(
                f"""WITH moved AS (DELETE FROM "{default}"
                                   WHERE "timestamp" >= $1 AND "timestamp" < $2 RETURNING *)
                    INSERT INTO "{name}" SELECT * FROM moved""",
                lower,
                upper,
            )
        await conn.execute(
            f'ALTER TABLE "{parent}" ATTACH PARTITION "{name}" '
            f"FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
        )
    return name


async def drop_partition(conn: asyncpg.Connection, name: str) -> None:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        await conn.execute(f'DROP TABLE "{name}"')


async def partition_sizes(
    conn: asyncpg.Connection, parent: str = SNAPSHOTS
) -> dict[str, tuple[int, int]]:
    """name -> (estimated rows, bytes of heap, indexes and TOAST) for each partition; the
    estimate is -1 for a partition never vacuumed or analysed."""
    rows = await conn.fetch(
        """SELECT c.relname AS name, c.reltuples::bigint AS estimate,
                  pg_total_relation_size(c.oid) AS bytes
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = to_regclass($1)""",
        parent,
    )
    return {r["name"]: (r["estimate"], r["bytes"]) for r in rows}
