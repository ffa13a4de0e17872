"""The database a command that does not collect (``--status``, ``--archive``, ``--query``)
talks to: the configured one, else the embedded server in the data directory.

An embedded server that is not initialised yet is reported, not created: these commands have
no side effects on a fresh machine. A stopped one is started for the command and stopped
again; a running one (the collector's) is shared and left running.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from data_collector.config import Config


@dataclass(frozen=True)
class DatabaseTarget:
    #: None: the embedded server was never initialised (no collector ran here yet)
    dsn: str | None
    #: for humans, without a password
    label: str


@contextlib.contextmanager
def database_target(config: Config) -> Iterator[DatabaseTarget]:
    from db.dsn import redact_dsn

    configured = config.database_dsn()
    if configured is not None:
        yield DatabaseTarget(configured, redact_dsn(configured))
        return
    from db.embedded import EmbeddedPostgres

    pgdata = config.embedded_pgdata
    label = f"embedded PostgreSQL in {pgdata}"
    if not (pgdata / "PG_VERSION").exists():
        yield DatabaseTarget(None, label)
        return
    embedded = EmbeddedPostgres.start(pgdata)
    try:
        yield DatabaseTarget(embedded.dsn, label)
    finally:
        embedded.stop()
