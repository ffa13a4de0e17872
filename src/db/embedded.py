"""An embedded PostgreSQL 16 (the ``pgserver`` wheel) keeping its data in a directory.

What pgserver 0.1.4 does, and what this wrapper adds:

* The server listens on a unix socket only (``-h ""``). The socket goes into the data
  directory unless that path is too long for a unix socket (~107 bytes); then pgserver falls
  back to ``<user runtime dir>/python_PostgresServer/<hash>``, so long paths work.
* As root it creates a system user ``pgserver``, runs postgres as that user, chowns the data
  directory to it and makes its parent directories world-traversable (o+rx).
* ``.handle_pids.json`` in the data directory lists the processes using the server; the last
  one to release it stops it (pg_ctl stop, fast mode). A process killed with SIGKILL leaves its
  pid there forever and the server would then never be stopped, so :meth:`start` prunes dead
  pids first. It also drops a ``postmaster.pid`` whose pid now belongs to another program
  (pid reuse after a container restart), which would otherwise make pgserver believe the
  server is up and postgres refuse to start.
* :meth:`EmbeddedPostgres.restart` starts the server again after it died (the collector's
  watch calls it), the way :meth:`EmbeddedPostgres.start` does, and never starts a second
  server: one that runs is left alone, and postgres itself refuses to start while processes
  of the old server still hold its shared memory. A postmaster that was killed stays a zombie
  until its parent (pid 1 in a container) reaps it, which may be late; postgres would take
  the zombie for a running server, so a pid file naming a zombie is removed first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import psutil
import structlog

from db.dsn import build_dsn

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

log = structlog.get_logger(__name__)

SUPERUSER = "postgres"


#: seconds ``pg_ctl start`` may take; pgserver allows 10, which a busy machine (or a start
#: after a crash, which first syncs the whole data directory) can overrun
PG_CTL_START_TIMEOUT = 60.0


def _pgserver() -> Any:
    # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers); pgserver
    # copes by falling back to /tmp/runtime-<uid>, so the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver.postgres_server
    module = pgserver.postgres_server
    if not getattr(module.pg_ctl, "_patient", False):
        module.pg_ctl = _patient_pg_ctl(module.pg_ctl)
    return pgserver


def _patient_pg_ctl(pg_ctl: Any) -> Any:
    """pgserver's ``pg_ctl`` with a start timeout of :data:`PG_CTL_START_TIMEOUT` (it has no
    setting for it)."""

    def patient(args: list[str], *rest: Any, **kwargs: Any) -> str:
        if "start" in args and kwargs.get("timeout") is not None:
            kwargs["timeout"] = max(kwargs["timeout"], PG_CTL_START_TIMEOUT)
        return pg_ctl(args, *rest, **kwargs)

    patient._patient = True  # type: ignore[attr-defined]
    return patient


class EmbeddedStartError(Exception):
    """The embedded server did not start; the message says why (postgres's own FATAL line)."""


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _pid_alive(pid: int) -> bool:
    """A live process: a zombie has exited, whatever ``kill(pid, 0)`` says."""
    return pid > 0 and psutil.pid_exists(pid) and not _is_zombie(pid)


def _is_our_postmaster(pid: int, data_dir: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.name() != "postgres":
            return False
        cmdline = proc.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # cannot tell; assume it is ours rather than break a live server
    return any(str(data_dir) in arg for arg in cmdline) if cmdline else True


def _clear_stale_state(data_dir: Path) -> None:
    pid_file = data_dir / "postmaster.pid"
    with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
        lines = pid_file.read_text().splitlines()
        pid = int(lines[0])
        if _is_zombie(pid):
            _remove_zombie_locks(pid_file, lines)
        elif _pid_alive(pid) and not _is_our_postmaster(pid, data_dir):
            log.warning(
                "embedded_pg_stale_pidfile",
                pid=pid,
                summary=f"postmaster.pid names pid {pid}, which is not our server: removing it",
            )
            pid_file.unlink()
    handles = data_dir / ".handle_pids.json"
    with contextlib.suppress(FileNotFoundError, ValueError):
        pids = json.loads(handles.read_text())
        alive = [p for p in pids if isinstance(p, int) and _pid_alive(p)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def _remove_zombie_locks(pid_file: Path, lines: list[str]) -> None:
    """The postmaster named in ``pid_file`` died and awaits reaping: postgres would refuse to
    start beside its pid file and its socket's lock file, so both go (they name a dead
    process). Lines 4 and 5 of the pid file are the port and the socket directory."""
    pid = int(lines[0])
    port, socket_dir = (part.strip() for part in [*lines[3:5], "", ""][:2])
    if socket_dir and port:
        socket_lock = Path(socket_dir) / f".s.PGSQL.{port}.lock"
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            if int(socket_lock.read_text().splitlines()[0]) == pid:
                socket_lock.unlink()
    pid_file.unlink(missing_ok=True)
    log.info(
        "embedded_pg_stale_pidfile",
        pid=pid,
        summary=f"postmaster.pid names pid {pid}, which has exited: removing it",
    )


@contextlib.contextmanager
def _quiet_pgserver() -> Iterator[None]:
    """Keep pgserver from logging from this thread: on a failed start it logs the whole
    server log as an error, once per attempt; the caller says why, in one line."""
    thread = threading.get_ident()

    def other_threads(record: logging.LogRecord) -> bool:
        return record.thread != thread

    logger = logging.getLogger("pgserver")
    logger.addFilter(other_threads)
    try:
        yield
    finally:
        logger.removeFilter(other_threads)


def _why_not_started(log_file: Path, offset: int) -> str:
    """The server log's last FATAL (or PANIC) line written since ``offset``."""
    try:
        with open(log_file, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        text = ""
    for line in reversed(text.splitlines()):
        for level in ("FATAL:", "PANIC:"):
            if level in line:
                return " ".join(line[line.index(level) :].split())
    return f"pg_ctl start failed; see {log_file}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class EmbeddedPostgres:
    """A running embedded server. Create it with :meth:`start`, release it with :meth:`stop`."""

    def __init__(self, data_dir: Path, server: PostgresServer, database: str) -> None:
        self.data_dir = data_dir
        self.database = database
        self._server: PostgresServer | None = server
        #: a restart and the release never run at once (pgserver's lock is per process)
        self._guard = threading.Lock()
        info = server.get_postmaster_info()
        assert info.socket_dir is not None, "pgserver started without a unix socket"
        self.socket_dir: Path = info.socket_dir
        self.port: int = info.port or 5432

    @classmethod
    def start(cls, data_dir: Path, *, database: str = SUPERUSER) -> EmbeddedPostgres:
        """Start (or attach to) the server for ``data_dir``, creating the cluster on first use.

        Blocking (initdb takes about a second, a restart less); call it via
        ``asyncio.to_thread`` from async code. ``database`` is created if missing.
        """
        data_dir = Path(data_dir).expanduser().resolve()
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        pgserver = _pgserver()
        lock = pgserver.postgres_server.PostgresServer._lock
        if data_dir.is_dir():
            with lock:
                _clear_stale_state(data_dir)
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
        pg = cls(data_dir, server, database)
        if database != SUPERUSER:
            pg.ensure_database(database)
        log.info(
            "embedded_pg_started",
            data_dir=str(data_dir),
            socket_dir=str(pg.socket_dir),
            summary=f"embedded PostgreSQL running with data in {data_dir}",
        )
        return pg

    @property
    def dsn(self) -> str:
        """DSN of :attr:`database` (unix socket, trust authentication)."""
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        return build_dsn(str(self.socket_dir), self.port, database, SUPERUSER)

    @property
    def pid(self) -> int | None:
        return self._server.get_pid() if self._server is not None else None

    def is_running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return False
        return _pid_alive(pid) and _is_our_postmaster(pid, self.data_dir)

    def restart(self) -> None:
        """Start the server again after it stopped on its own; nothing if it runs. Blocking
        (call it via ``asyncio.to_thread``); raises :class:`EmbeddedStartError` with
        postgres's reason. Socket directory and port follow from the data directory, so
        :attr:`dsn` stays the same."""
        with self._guard:
            server = self._server
            if server is None:
                raise EmbeddedStartError("the server was released; it is not restarted")
            log_file = self.data_dir / "log"
            offset = _size(log_file)
            with _pgserver().postgres_server.PostgresServer._lock:
                if self.is_running():
                    return
                _clear_stale_state(self.data_dir)
                try:
                    with _quiet_pgserver():
                        server.ensure_postgres_running()
                except subprocess.CalledProcessError:
                    raise EmbeddedStartError(_why_not_started(log_file, offset)) from None
                except subprocess.TimeoutExpired as exc:
                    raise EmbeddedStartError(
                        f"pg_ctl start did not finish within {exc.timeout:g} s"
                    ) from None
            if not self.is_running():
                raise EmbeddedStartError(_why_not_started(log_file, offset))

    def ensure_database(self, name: str) -> None:
        """Create database ``name`` unless it exists (via the bundled psql)."""
        literal = "'" + name.replace("'", "''") + "'"
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = {literal}")
        if exists.strip() != "1":
            ident = '"' + name.replace('"', '""') + '"'
            self._psql(f"CREATE DATABASE {ident}")

    def _psql(self, sql: str) -> str:
        pgserver = _pgserver()
        psql = pgserver._commands.POSTGRES_BIN_PATH / "psql"
        args = [str(psql), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
        args += ["-d", self.dsn_for(SUPERUSER), "-c", sql]
        return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout

    def stop(self) -> None:
        """Release the server; it stops unless another live process still uses it."""
        with self._guard:  # waits for a restart in flight
            server, self._server = self._server, None
            if server is None:
                return
            server.cleanup()
        log.info(
            "embedded_pg_stopped",
            data_dir=str(self.data_dir),
            summary="embedded PostgreSQL released",
        )

    def __enter__(self) -> EmbeddedPostgres:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
