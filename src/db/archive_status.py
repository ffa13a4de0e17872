"""What the archive directory holds, per table: days, rows (from the Parquet footers, no data
read), bytes. For ``--status``; blocking file I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from db import archive_duck
from db.archive_layout import ArchiveLayout
from db.archive_schema import ARCHIVED_TABLES


@dataclass(frozen=True)
class ArchivedTableStatus:
    table: str
    days: int
    first_day: date | None
    last_day: date | None
    files: int
    rows: int
    bytes: int

    @property
    def bytes_per_row(self) -> float | None:
        return self.bytes / self.rows if self.rows else None


def archive_inventory(root: Path) -> list[ArchivedTableStatus]:
    layout = ArchiveLayout(root)
    duck = archive_duck.connect(threads=1)
    try:
        out = []
        for spec in ARCHIVED_TABLES:
            days = layout.days(spec.name)
            files = [p for d in days for p in layout.day_files(spec.name, d)]
            out.append(
                ArchivedTableStatus(
                    table=spec.name,
                    days=len(days),
                    first_day=days[0] if days else None,
                    last_day=days[-1] if days else None,
                    files=len(files),
                    rows=archive_duck.footer_rows(duck, files),
                    bytes=sum(p.stat().st_size for p in files),
                )
            )
        return out
    finally:
        duck.close()
