"""One collector per data directory: ``<data_dir>/collector.lock``, held with ``flock``.

Two collectors on one data directory would share its embedded PostgreSQL and spill files
without a word, and which quote wins each second would be arbitrary. The lock is held for the
life of the process (the kernel drops it when the process ends, however it ends) and the file
records who holds it, so a second collector can name the first and ``--status`` can report
it without taking the lock. The file is never deleted: unlinking a flock'd file lets two
processes each lock a different inode of the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import psutil

LOCK_FILE = "collector.lock"
#: two start times this close are the same process (psutil rounds differently per call)
SAME_PROCESS_S = 1.0


class LockHolder(msgspec.Struct, frozen=True, kw_only=True):
    """What the lock file says about the collector holding it."""

    pid: int
    started: str  # ISO-8601 UTC, when it took the lock
    host: str
    monitoring_url: str | None = None
    #: the process's own start time (epoch s): tells a live holder from a reused pid
    process_start: float | None = None

    def describe(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on host {self.host}"
        monitoring = f", monitoring {self.monitoring_url}" if self.monitoring_url else ""
        return f"pid {self.pid}{where}, running since {self.started}{monitoring}"


class DataDirBusy(Exception):
    """Another collector holds the data directory."""

    def __init__(self, data_dir: Path, holder: LockHolder | None) -> None:
        self.data_dir = data_dir
        self.holder = holder
        who = holder.describe() if holder else "it is still starting"
        super().__init__(
            f"data directory {data_dir} is in use by another collector ({who}); stop that one "
            "first, or give this one its own data_collector.data_dir"
        )


class DataDirLock:
    """The held lock; :meth:`release` (or leaving the ``with`` block, or exiting) frees it."""

    def __init__(self, path: Path, fd: int, holder: LockHolder) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path, *, monitoring_url: str | None = None) -> DataDirLock:
        """Take the lock (creating ``data_dir``) or raise :class:`DataDirBusy` at once.

        Raises OSError when the directory cannot be created or the file opened.
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / LOCK_FILE
        # O_CLOEXEC: a child (the embedded PostgreSQL) must not inherit, and so keep, the lock
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirBusy(data_dir, read_holder(data_dir)) from None
        except BaseException:
            os.close(fd)
            raise
        holder = LockHolder(
            pid=os.getpid(),
            started=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            host=socket.gethostname(),
            monitoring_url=monitoring_url,
            process_start=psutil.Process().create_time(),
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, msgspec.json.encode(holder) + b"\n", 0)
        return cls(path, fd, holder)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale holder for --status to report
        os.close(fd)

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.release()


def read_holder(data_dir: Path) -> LockHolder | None:
    """What the lock file records, or None when it is missing, empty or unreadable."""
    try:
        data = (data_dir / LOCK_FILE).read_bytes()
        return msgspec.json.decode(data, type=LockHolder) if data.strip() else None
    except (OSError, msgspec.DecodeError):
        return None


def running_holder(data_dir: Path) -> LockHolder | None:
    """The collector holding ``data_dir`` now, read from the lock file without taking the
    lock: None when nothing is recorded or the recorded process on this host is gone (one
    killed with SIGKILL leaves its record behind). A holder on another host (a shared
    filesystem) cannot be checked from here and is returned as recorded."""
    holder = read_holder(data_dir)
    if holder is None or holder.host != socket.gethostname():
        return holder
    try:
        started = psutil.Process(holder.pid).create_time()
    except psutil.Error:
        return None
    if holder.process_start is not None and abs(started - holder.process_start) > SAME_PROCESS_S:
        return None  # the pid now belongs to another process
    return holder
