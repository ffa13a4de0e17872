"""Where the archive keeps what: hive-style directories, per-day manifests, a staging area.

::

    <dir>/book_ticker_snapshots/date=2026-11-20/exchange=mexc/part-20261123T000512Z-1a2b.parquet
    <dir>/book_ticker_snapshots/date=2026-11-20/_manifest.json
    <dir>/arbitrage_opportunities/date=2026-11-20/part-20261123T000512Z-1a2b.parquet
    <dir>/.staging/...        files being written and verified (removed by the next run)
    <dir>/.archive.lock       flock: one archive run at a time on this directory

A day's files are only ever added (a later run adds a part for rows that reached PostgreSQL
late), never rewritten. A file appears under its final name only after it was verified; the
manifest is written after that and records what was verified. Names starting with ``_`` or
``.`` are skipped by Spark, Hive and the ``*.parquet`` globs of DuckDB and ClickHouse.
Blocking file I/O; imports no database driver.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec

from db.spill import fsync_dir, write_atomic

MANIFEST = "_manifest.json"
STAGING = ".staging"
LOCK = ".archive.lock"
DATE_PREFIX = "date="


class ArchiveBusy(Exception):
    """Another archive run holds the archive directory."""


class DayManifest(msgspec.Struct, kw_only=True):
    """What a verified export of one day left in the archive."""

    table: str
    date: str
    #: rows in all the day's files
    rows: int
    #: count-and-sum checksum of all the day's files (decimal, see db.archive_schema)
    checksum: str
    #: rows PostgreSQL held for the day when it was last verified; a different count later
    #: means rows arrived late (exported by the next run)
    source_rows: int
    #: the day's files, relative to its directory
    files: list[str]
    exported_at: str


class ArchiveLayout:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def day_dir(self, table: str, day: date) -> Path:
        return self.table_dir(table) / f"{DATE_PREFIX}{day.isoformat()}"

    def staging_dir(self, table: str, day: date) -> Path:
        return self.root / STAGING / table / f"{DATE_PREFIX}{day.isoformat()}"

    def day_files(self, table: str, day: date) -> list[Path]:
        """The day's published Parquet files (in ``split=`` directories or directly)."""
        return parquet_files(self.day_dir(table, day))

    def days(self, table: str) -> list[date]:
        """Days with at least one published file, oldest first."""
        found = []
        base = self.table_dir(table)
        if not base.is_dir():
            return []
        for entry in sorted(base.iterdir()):
            if entry.name.startswith(DATE_PREFIX) and parquet_files(entry):
                with contextlib.suppress(ValueError):
                    found.append(date.fromisoformat(entry.name[len(DATE_PREFIX) :]))
        return found

    def manifest(self, table: str, day: date) -> DayManifest | None:
        path = self.day_dir(table, day) / MANIFEST
        try:
            return msgspec.json.decode(path.read_bytes(), type=DayManifest)
        except (FileNotFoundError, msgspec.DecodeError, msgspec.ValidationError):
            return None

    def write_manifest(self, manifest: DayManifest) -> None:
        day = date.fromisoformat(manifest.date)
        write_atomic(
            self.day_dir(manifest.table, day),
            MANIFEST,
            msgspec.json.format(msgspec.json.encode(manifest), indent=2),
        )

    def fresh_staging(self, table: str, day: date) -> Path:
        """An empty staging directory for the day; whatever an interrupted run left there is
        removed (it was never published)."""
        path = self.staging_dir(table, day)
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def discard_staging(self, table: str, day: date) -> None:
        shutil.rmtree(self.staging_dir(table, day), ignore_errors=True)

    def publish(self, staged: Path, staging: Path, table: str, day: date) -> Path:
        """Move a verified staged file to its final place (same relative path)."""
        final = self.day_dir(table, day) / staged.relative_to(staging)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged, final)
        fsync_dir(final.parent)
        return final

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock for one run; :class:`ArchiveBusy` if another run has it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ArchiveBusy(f"another archive run is using {self.root}") from None
            yield
        finally:
            os.close(fd)  # closing releases the flock


def parquet_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*.parquet") if not p.name.startswith((".", "_")))


def run_id(now: datetime | None = None) -> str:
    """``20261123T000512Z-1a2b``: sorts by time, unique per run."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
