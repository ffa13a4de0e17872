"""The storage part of ``--status``: each partition and the archive, in days, rows, bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from data_collector.config import Config
from data_collector.wording import plural

if TYPE_CHECKING:
    from db.partition_status import PartitionStatus


def partition_lines(partitions: Sequence[PartitionStatus]) -> list[str]:
    if not partitions:
        return []
    lines = [f'  partitions:  {len(partitions)} (by UTC day of "timestamp")']
    width = max(len(p.name) for p in partitions)
    for p in partitions:
        if p.first_day is None:
            span = "rows no other partition covers"
        elif p.first_day == p.last_day:
            span = str(p.first_day)
        else:
            span = f"{p.first_day}..{p.last_day}"
        days = "? days" if p.days is None else plural(p.days, "day")
        rows = f"{'~' if p.estimated else ''}{p.rows:,} rows"
        lines.append(
            f"    {p.name:<{width}}  {span:<30}  {days:>8}  {rows:>16}  {p.bytes:>14,} bytes"
        )
    return lines


def archive_lines(config: Config) -> list[str]:
    from db.archive_status import archive_inventory

    archive = config.archive
    state = (
        f"enabled, days older than {archive.after_days} exported nightly"
        if archive.enabled
        else "disabled (run.py --archive exports now)"
    )
    keep = config.database.retention_days
    retention = (
        f"{plural(keep, 'day')} kept in PostgreSQL" if keep else "PostgreSQL keeps everything"
    )
    lines = [f"Archive ({config.archive_dir}): {state}; {retention}"]
    if not config.archive_dir.is_dir():
        return [*lines, "  empty (nothing exported yet)"]
    for table in archive_inventory(config.archive_dir):
        if not table.days:
            lines.append(f"  {table.table:<24} none")
            continue
        per_row = f" ({table.bytes_per_row:.1f} bytes/row)" if table.bytes_per_row else ""
        lines.append(
            f"  {table.table:<24} {plural(table.days, 'day')} ({table.first_day}.."
            f"{table.last_day}), {table.rows:,} rows, {table.bytes:,} bytes{per_row} in "
            f"{plural(table.files, 'file')}"
        )
    return lines
