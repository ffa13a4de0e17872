"""Per-partition figures for ``--status``: the days each partition covers or holds, its rows
and its bytes (heap, indexes and TOAST)."""

from __future__ import annotations

from datetime import date

import asyncpg
import msgspec

from db.partitions import list_partitions, partition_sizes


class PartitionStatus(msgspec.Struct, frozen=True):
    name: str
    #: the range's first and last day (None for the default partition)
    first_day: date | None
    last_day: date | None
    #: days holding rows when counted exactly, else the days the range covers (None: unknown)
    days: int | None
    rows: int
    bytes: int
    #: rows are the planner's estimate
    estimated: bool


async def partition_status(
    conn: asyncpg.Connection, table: str, held: dict[str, tuple[int, int]] | None
) -> list[PartitionStatus]:
    """``held`` (partition -> exact rows and days with rows) comes from the caller's scan;
    without it, rows are estimates and days the range's."""
    sizes = await partition_sizes(conn, table)
    out = []
    for part in await list_partitions(conn, table):
        estimate, size = sizes.get(part.name, (0, 0))
        covered = part.days
        if held is not None:
            rows, days = held.get(part.name, (0, 0))
        else:
            rows, days = max(estimate, 0), (len(covered) or None)
        out.append(
            PartitionStatus(
                name=part.name,
                first_day=covered[0] if covered else None,
                last_day=covered[-1] if covered else None,
                days=days,
                rows=rows,
                bytes=size,
                estimated=held is None,
            )
        )
    return out
