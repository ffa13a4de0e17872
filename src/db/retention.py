"""Retention: drop snapshot days older than ``database.retention_days`` from PostgreSQL.

A day held by its own daily partition goes with ``DROP TABLE``; a day inside the legacy or the
default partition is deleted, and a legacy partition left empty is dropped. The caller says
how many rows were verified in the archive (or None when there is no archive, and the drop is
the user's explicit choice); the drop happens in one transaction that first locks the rows'
partitions against new inserts and counts them again, so a row that arrived after the
verification is never dropped with the others (the day is left for the next run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg
import structlog

from db.archive_schema import SNAPSHOTS
from db.partitions import LOCK_TIMEOUT, Partition, day_range, drop_partition, list_partitions

log = structlog.get_logger(__name__)

TABLE = SNAPSHOTS.name


@dataclass
class DropOutcome:
    day: date
    #: what went: partition names dropped, or "rows deleted from <partition>"
    dropped: list[str]
    rows: int
    #: why nothing was dropped (rows arrived since the verification), else None
    skipped: str | None = None


async def drop_day(
    conn: asyncpg.Connection, day: date, *, verified_rows: int | None, archived: bool
) -> DropOutcome:
    """Remove ``day``'s snapshot rows. With ``verified_rows``, only if the day still holds
    exactly that many rows."""
    partitions = await list_partitions(conn, TABLE)
    own = next((p for p in partitions if p.days == [day]), None)
    holders = [p for p in partitions if p.is_default or (p.overlaps(day) and p is not own)]
    lower, upper = day_range(day)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        locked = [own] if own is not None else holders
        for part in locked:
            mode = "ACCESS EXCLUSIVE" if part is own else "SHARE ROW EXCLUSIVE"
            await conn.execute(f'LOCK TABLE "{part.name}" IN {mode} MODE')
        rows = await conn.fetchval(
            f'SELECT count(*) FROM "{TABLE}" WHERE "timestamp" >= $1 AND "timestamp" < $2',
            lower,
            upper,
        )
        if verified_rows is not None and rows != verified_rows:
            return DropOutcome(day, [], rows, skipped=f"{rows} rows now, {verified_rows} verified")
        dropped = []
        if own is not None:
            await conn.execute(f'DROP TABLE "{own.name}"')
            dropped.append(own.name)
        elif rows:
            await conn.execute(
                f'DELETE FROM "{TABLE}" WHERE "timestamp" >= $1 AND "timestamp" < $2',
                lower,
                upper,
            )
            dropped += [f"rows of {p.name}" for p in holders]
    outcome = DropOutcome(day, dropped, rows)
    _log_drop(outcome, archived)
    return outcome


async def drop_empty_legacy(conn: asyncpg.Connection, before: date) -> list[str]:
    """Drop partitions spanning several days (from migration 003) that end before ``before``
    and hold no row any more."""
    dropped = []
    for part in await list_partitions(conn, TABLE):
        if _is_spent_range(part, before) and not await conn.fetchval(
            f'SELECT EXISTS (SELECT 1 FROM "{part.name}")'
        ):
            await drop_partition(conn, part.name)
            dropped.append(part.name)
            log.info(
                "partition_dropped",
                table=TABLE,
                partition=part.name,
                rows=0,
                summary=f"[RETENTION] dropped the empty partition {part.name}",
            )
    return dropped


def _is_spent_range(part: Partition, before: date) -> bool:
    return part.upper is not None and len(part.days) > 1 and part.upper <= day_range(before)[0]


def _log_drop(outcome: DropOutcome, archived: bool) -> None:
    where = ", ".join(outcome.dropped) or "nothing (no rows)"
    copy = "archived and verified" if archived else "no archive copy (archive disabled)"
    log.info(
        "partition_dropped",
        table=TABLE,
        date=outcome.day.isoformat(),
        rows=outcome.rows,
        dropped=outcome.dropped,
        archived=archived,
        summary=f"[RETENTION] {TABLE} {outcome.day}: dropped {outcome.rows} rows ({where}); {copy}",
    )
