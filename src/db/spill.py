"""Spill files: rows that could not wait in memory for the database, kept on disk as CSV.

A file is written to a temp name, fsynced and renamed, so it is either complete or absent. A
crash in the middle of a spill leaves the temp file; the next scan salvages it (cut to its last
complete line, it becomes a regular spill file). Files are named after the time they were
written, so a sorted listing is oldest first. Imports no database driver; all of it is
blocking file I/O, to be run in a worker thread.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

import structlog

from data_collector.wording import plural

log = structlog.get_logger(__name__)

SUFFIX = ".csv"
_TMP = ".tmp"


def write_atomic(directory: Path, name: str, payload: bytes) -> Path:
    """Write ``payload`` to ``directory/name`` so the file is either complete or absent."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    tmp = directory / f".{name}{_TMP}"
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(directory)
    return final


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` itself durable (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class SpillDirectoryError(Exception):
    """The spill directory cannot be created, written or read: rows could not be kept on
    disk during an outage."""

    def __init__(self, directory: Path, error: OSError) -> None:
        reason = error.strerror or str(error)
        super().__init__(f"spill directory {directory} is unusable ({reason})")
        self.directory = directory


def count_rows(payload: bytes) -> int:
    """Rows in a spill file's contents (one CSV line each)."""
    return payload.count(b"\n")


class SpillStore:
    """The spill files of one table in one directory.

    Only names starting with ``prefix`` followed by the writer's digits are this store's: a
    directory shared by two tables by mistake never feeds one table's rows into the other.
    """

    def __init__(self, directory: Path, prefix: str = "") -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self._seq = itertools.count()
        self._pattern = f"{prefix}[0-9]*-[0-9]*{SUFFIX}"

    def check(self) -> list[Path]:
        """Prove the directory usable (create it; write, fsync, rename and delete a probe
        file), then :meth:`scan` it. Raises :class:`SpillDirectoryError`."""
        try:
            probe = write_atomic(self.directory, f".probe-{os.getpid()}", b"probe\n")
            self.delete(probe)
            return self.scan()
        except OSError as exc:
            raise SpillDirectoryError(self.directory, exc) from exc

    def write(self, payload: bytes) -> Path:
        """Store ``payload`` as a new spill file; returns its path. Raises OSError."""
        name = f"{self.prefix}{time.time_ns():020d}-{next(self._seq):06d}{SUFFIX}"
        return write_atomic(self.directory, name, payload)

    def scan(self) -> list[Path]:
        """This store's files left by earlier runs, oldest first, after salvaging the temp
        files of interrupted spills. Creates the directory; raises OSError if it cannot."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for tmp in sorted(self.directory.glob(f".{self._pattern}{_TMP}")):
            try:
                _salvage(tmp, self.directory / tmp.name[1 : -len(_TMP)])
            except OSError as exc:
                log.error(
                    "writer_spill_unreadable",
                    file=str(tmp),
                    error=str(exc),
                    summary=f"cannot recover interrupted spill file {tmp} ({exc}); left in place",
                )
        return sorted(self.directory.glob(self._pattern))

    @staticmethod
    def read(path: Path) -> bytes:
        return path.read_bytes()

    @staticmethod
    def delete(path: Path) -> None:
        path.unlink(missing_ok=True)
        fsync_dir(path.parent)


def _salvage(tmp: Path, final: Path) -> None:
    with open(tmp, "r+b") as f:
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    rows = count_rows(data[:keep])
    if keep:
        os.replace(tmp, final)
    else:
        tmp.unlink()
    log.warning(
        "writer_spill_salvaged",
        file=tmp.name,
        rows=rows,
        summary=f"recovered {plural(rows, 'row')} from interrupted spill file {tmp.name}",
    )
