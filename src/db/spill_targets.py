"""Which database a spill file belongs to, and what is waiting where.

Rows spilled during an outage of database A must only ever be loaded into A. Spill files are
therefore kept per target and per table::

    <data_dir>/spill/<target id>/target.txt             what the target is (no password)
    <data_dir>/spill/<target id>/<table>/*.csv          the spill files

The target id is a short hash of host, port, database and user (:func:`db.dsn.dsn_identity`)
or, for the embedded server, of its data directory. A writer is given its own target's table
directory, so only that target's files are loaded; the others stay where they are and
``--status`` lists them. Files directly in ``<data_dir>/spill`` come from versions that did
not record their target: they are never loaded automatically. Imports no database driver.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from data_collector.wording import plural
from db.dsn import dsn_identity
from db.spill import SUFFIX, SpillDirectoryError, write_atomic

log = structlog.get_logger(__name__)

TARGET_FILE = "target.txt"
_ID_LENGTH = 12


@dataclass(frozen=True)
class SpillTarget:
    #: short hash naming the target's spill directory
    id: str
    #: what the target is, for people; never holds a password
    label: str


def target_of_dsn(dsn: str) -> SpillTarget:
    host, port, database, user = dsn_identity(dsn)
    shown = host if host else "local socket"
    return SpillTarget(
        _hash("dsn", host, port, database, user), f"{user}@{shown}:{port}/{database}"
    )


def target_of_embedded(pgdata: Path) -> SpillTarget:
    """The embedded server counts as its own target, known by its data directory."""
    path = Path(pgdata).resolve()
    return SpillTarget(_hash("embedded", str(path)), f"embedded PostgreSQL in {path}")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:_ID_LENGTH]


def table_spill_dir(root: Path, target: SpillTarget, table: str) -> Path:
    """Where the writer of ``table`` for ``target`` keeps its spill files."""
    return root / target.id / table


def prepare_target(root: Path, target: SpillTarget) -> None:
    """Record what ``target`` is in its directory (so ``--status`` can name it) and log the
    spill files waiting for other targets, which this run leaves alone. Blocking I/O.
    Raises :class:`SpillDirectoryError` when the directory cannot be written."""
    directory = root / target.id
    text = f"{target.label}\n".encode()
    try:
        if not _reads(directory / TARGET_FILE, text):
            write_atomic(directory, TARGET_FILE, text)
    except OSError as exc:
        raise SpillDirectoryError(directory, exc) from exc
    _log_kept(root, target)


def _reads(path: Path, text: bytes) -> bool:
    try:
        return path.read_bytes() == text
    except OSError:
        return False


def _log_kept(root: Path, current: SpillTarget) -> None:
    for group in inventory(root, current, count=False).kept():
        if group.target is None:
            log.warning(
                "spill_files_unknown_target",
                files=group.files,
                directory=str(group.directory),
                summary=f"{plural(group.files, 'spill file')} in {group.directory} from an "
                "older version that did not record the database: not loaded "
                "(README, 'Database outages', says how to load them)",
            )
        else:
            log.warning(
                "spill_files_other_database",
                files=group.files,
                directory=str(group.directory),
                target=group.target.label,
                summary=f"{plural(group.files, 'spill file')} for another database "
                f"({group.target.label}) kept in {group.directory}, not loaded here",
            )


@dataclass
class SpillGroup:
    """Spill files of one table of one target (``target`` None: the old flat layout)."""

    target: SpillTarget | None
    table: str | None
    directory: Path
    current: bool
    files: int = 0
    #: None when not counted
    rows: int | None = None


@dataclass
class SpillInventory:
    root: Path
    groups: list[SpillGroup] = field(default_factory=list)

    def kept(self) -> list[SpillGroup]:
        """The groups this configuration does not load."""
        return [g for g in self.groups if not g.current]


def inventory(root: Path, current: SpillTarget | None, *, count: bool = True) -> SpillInventory:
    """Every spill file under ``root`` by target and table; ``count``: also their rows
    (reads every file). Blocking I/O."""
    found = SpillInventory(root)
    if not root.is_dir():
        return found
    legacy = _group(None, None, root, current=False, count=count)
    if legacy.files:
        found.groups.append(legacy)
    for target_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        target = _read_target(target_dir)
        is_current = current is not None and target.id == current.id
        for table_dir in sorted(p for p in target_dir.iterdir() if p.is_dir()):
            group = _group(target, table_dir.name, table_dir, current=is_current, count=count)
            if group.files:
                found.groups.append(group)
    return found


def _read_target(directory: Path) -> SpillTarget:
    try:
        label = (directory / TARGET_FILE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        label = "unknown database"
    return SpillTarget(directory.name, label)


def _group(
    target: SpillTarget | None, table: str | None, directory: Path, *, current: bool, count: bool
) -> SpillGroup:
    files = sorted(directory.glob(f"*{SUFFIX}"))
    rows = sum(_count_lines(f) for f in files) if count else None
    return SpillGroup(target, table, directory, current, len(files), rows)


def _count_lines(path: Path) -> int:
    lines = 0
    try:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                lines += block.count(b"\n")
    except OSError:
        return 0
    return lines
