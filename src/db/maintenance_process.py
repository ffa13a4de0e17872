"""``python -m db.maintenance_process``: one storage maintenance run in a process of its own.

The collector runs its nightly job here rather than in a thread: DuckDB keeps Python's GIL for
stretches of a Parquet write (tens to hundreds of milliseconds, measured in
bench/storage_bench.py), long enough to make the snapshot loop miss ticks. A process shares no
GIL, and it runs at a lower CPU priority (nice 10) than the collector.

Protocol: the request (:class:`Request`, JSON) arrives on stdin, so the DSN's password never
shows in the process list. Every log event of the run goes to stdout as one JSON line
``{"log": {...}}`` (the collector logs it again in its own format), and the last line is
``{"report": {...}}``, a :class:`db.maintenance.MaintenanceReport`. Killing the process is
safe: nothing is published or dropped before it is verified, and the next run clears the
staging area.
"""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import structlog

from db.maintenance import MaintenanceReport, MaintenanceSettings, run_maintenance_blocking

NICENESS = 10


class Request(msgspec.Struct, kw_only=True):
    dsn: str
    today: date
    archive_enabled: bool
    archive_dir: str
    after_days: int
    retention_days: int
    duckdb_threads: int | None = None
    duckdb_memory: str | None = None


class Line(msgspec.Struct, omit_defaults=True):
    """One line of the child's stdout."""

    log: dict[str, Any] | None = None
    report: MaintenanceReport | None = None


def request_for(dsn: str, settings: MaintenanceSettings, today: date) -> bytes:
    return msgspec.json.encode(
        Request(
            dsn=dsn,
            today=today,
            archive_enabled=settings.archive_enabled,
            archive_dir=str(settings.archive_dir),
            after_days=settings.after_days,
            retention_days=settings.retention_days,
            duckdb_threads=settings.duckdb_threads,
            duckdb_memory=settings.duckdb_memory,
        )
    )


def decode_line(raw: bytes) -> Line:
    return msgspec.json.decode(raw, type=Line, dec_hook=_dec_hook)


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Path:
        return Path(value)
    raise NotImplementedError(kind)


def _encode(line: Line) -> bytes:
    return msgspec.json.encode(line, enc_hook=str) + b"\n"


def _emit(_logger: Any, _name: str, event_dict: dict[str, Any]) -> str:
    return _encode(Line(log=event_dict)).decode().rstrip("\n")


def main() -> int:
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    request = msgspec.json.decode(sys.stdin.buffer.read(), type=Request)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            _emit,
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    settings = MaintenanceSettings(
        archive_enabled=request.archive_enabled,
        archive_dir=Path(request.archive_dir),
        after_days=request.after_days,
        retention_days=request.retention_days,
        duckdb_threads=request.duckdb_threads,
        duckdb_memory=request.duckdb_memory,
    )
    report = run_maintenance_blocking(request.dsn, settings, request.today)
    sys.stdout.write(_encode(Line(report=report)).decode())
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
