"""Schema migrations: ``migrations/*.sql`` applied once each, in lexical order.

Each file runs in its own transaction together with its row in ``schema_migrations``, so a
failing migration leaves no trace. A session-level advisory lock serialises concurrent
runners (two collectors starting at once): the second waits, then finds nothing to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger(__name__)

#: advisory lock key shared by every process migrating this schema ("cex_arb!")
MIGRATION_LOCK_KEY = 0x6365785F61726221
MIGRATIONS_DIR_ENV = "CEX_MIGRATIONS_DIR"
#: seconds one migration file may take, whatever the connection's ``command_timeout`` (the
#: writer's is 30 s): building an index over every stored row (005) takes minutes on a big
#: database, and a cancelled migration would only start over at the next connect
MIGRATION_TIMEOUT = 3600.0

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ DEFAULT now()
)
"""


def default_migrations_dir() -> Path:
    """``$CEX_MIGRATIONS_DIR`` or the repository's ``migrations/``, wherever we run from."""
    override = os.environ.get(MIGRATIONS_DIR_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[2] / "migrations"


def migration_files(directory: Path | None = None) -> list[tuple[str, Path]]:
    """(version, path) of every ``*.sql`` in ``directory``, in lexical order.

    The version is the file name without ``.sql`` (``001_book_ticker_snapshots``).
    """
    directory = directory or default_migrations_dir()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"migrations directory {directory} not found; set {MIGRATIONS_DIR_ENV} to the "
            "folder holding the *.sql files"
        )
    return [(path.stem, path) for path in sorted(directory.glob("*.sql"))]


async def applied_migrations(conn: asyncpg.Connection) -> list[str]:
    """Versions recorded in ``schema_migrations`` (empty when the table does not exist)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    return [row["version"] for row in rows]


async def apply_migrations(
    conn_or_pool: asyncpg.Connection | asyncpg.Pool,
    directory: Path | None = None,
    *,
    lock_timeout: float = 60.0,
) -> list[str]:
    """Apply the migrations not yet recorded; return the versions applied by this call."""
    files = migration_files(directory)
    if isinstance(conn_or_pool, asyncpg.Pool):
        async with conn_or_pool.acquire() as conn:
            return await _apply(conn, files, lock_timeout)
    return await _apply(conn_or_pool, files, lock_timeout)


async def _apply(
    conn: asyncpg.Connection, files: list[tuple[str, Path]], lock_timeout: float
) -> list[str]:
    # read-only fast path: an up-to-date schema needs no lock and no CREATE privilege, so a
    # role that may only write rows can still run this at every (re)connect
    done = set(await applied_migrations(conn))
    if all(version in done for version, _ in files):
        return []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY, timeout=lock_timeout)
    try:
        await conn.execute(_CREATE_TABLE)
        done = set(await applied_migrations(conn))
        applied: list[str] = []
        for version, path in files:
            if version in done:
                continue
            sql = path.read_text(encoding="utf-8")
            async with conn.transaction():
                await conn.execute(sql, timeout=MIGRATION_TIMEOUT)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            log.info("migration_applied", version=version, summary=f"applied migration {version}")
            applied.append(version)
        return applied
    finally:
        # the lock is per session: release it even when a migration failed, unless the
        # connection itself is gone (then the server has released it already)
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
