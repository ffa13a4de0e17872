"""The database a read-only command (``--status``, ``--report``) reads: the configured one,
else the embedded server in the data directory, started for the command if it is not running.

An embedded server that was never initialised is reported, not created: such a command has no
side effects on a fresh machine. A stopped one is started for the command and stopped again; a
running one (the collector's) is shared and left running.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from data_collector.config import Config

NOT_INITIALISED = "not initialised yet (created on the collector's first run)"


@dataclass(frozen=True)
class DatabaseTarget:
    #: None when there is nothing to read (an embedded server never initialised)
    dsn: str | None
    #: what to call it in output, never with a password
    label: str
    #: why there is no DSN
    note: str | None = None


@contextlib.contextmanager
def reading_database(config: Config) -> Iterator[DatabaseTarget]:
    """The database to read, for the duration of the ``with`` block. Raises what starting
    the embedded server raises."""
    from db.dsn import redact_dsn

    configured = config.database_dsn()
    if configured is not None:
        yield DatabaseTarget(configured, redact_dsn(configured))
        return
    from db.embedded import EmbeddedPostgres

    pgdata = config.embedded_pgdata
    label = f"embedded PostgreSQL in {pgdata}"
    if not (pgdata / "PG_VERSION").exists():
        yield DatabaseTarget(None, label, NOT_INITIALISED)
        return
    embedded = EmbeddedPostgres.start(pgdata)
    try:
        yield DatabaseTarget(embedded.dsn, label)
    finally:
        embedded.stop()
