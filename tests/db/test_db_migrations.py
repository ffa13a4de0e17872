"""Schema migrations against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from db.migrations import (
    MIGRATIONS_DIR_ENV,
    applied_migrations,
    apply_migrations,
    default_migrations_dir,
)
from db.pool import create_pool

REPO_MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"
FIRST = "001_book_ticker_snapshots"
#: every migration of the repository, in order
ALL = [path.stem for path in sorted(REPO_MIGRATIONS.glob("*.sql"))]


async def test_applies_once_and_records(pg_database) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        assert await apply_migrations(conn) == ALL
        assert ALL[:3] == [
            FIRST,
            "002_arbitrage_opportunities",
            "003_partition_book_ticker_snapshots",
        ]
        assert await apply_migrations(conn) == []  # idempotent
        rows = await conn.fetch("SELECT version, applied_at FROM schema_migrations ORDER BY 1")
        assert [r["version"] for r in rows] == ALL
        assert rows[0]["applied_at"] is not None
        assert await applied_migrations(conn) == ALL
    finally:
        await conn.close()


async def test_table_shape(pg_database) -> None:
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        await apply_migrations(conn)
        cols = {
            r["column_name"]: r
            for r in await conn.fetch(
                """SELECT column_name, data_type, is_nullable, numeric_precision, numeric_scale,
                          column_default
                   FROM information_schema.columns WHERE table_name = 'book_ticker_snapshots'"""
            )
        }
        assert set(cols) == {
            "id", "exchange", "symbol_base", "symbol_quote", "bid_price", "bid_qty",
            "ask_price", "ask_qty", "timestamp", "exchange_time", "created_at",
        }  # fmt: skip
        assert cols["id"]["data_type"] == "bigint"
        assert "nextval" in cols["id"]["column_default"]
        for name in ("bid_price", "bid_qty", "ask_price", "ask_qty"):
            col = cols[name]
            assert col["data_type"] == "numeric" and col["is_nullable"] == "NO"
            # unconstrained: no precision or scale, so any decimal is stored as written
            assert col["numeric_precision"] is None and col["numeric_scale"] is None
        for name in ("exchange", "symbol_base", "symbol_quote"):
            assert cols[name]["data_type"] == "text" and cols[name]["is_nullable"] == "NO"
        assert cols["timestamp"]["data_type"] == "timestamp with time zone"
        assert cols["timestamp"]["is_nullable"] == "NO"
        assert cols["exchange_time"]["is_nullable"] == "YES"
        assert cols["created_at"]["is_nullable"] == "NO"
        assert "now()" in cols["created_at"]["column_default"]
        indexes = {
            r["indexname"]: r["indexdef"]
            for r in await conn.fetch(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1",
                "book_ticker_snapshots",
            )
        }
        unique = [d for d in indexes.values() if "UNIQUE" in d and "(exchange," in d]
        # on the partitioned parent ("ON ONLY"), one per partition below it
        assert unique == [
            "CREATE UNIQUE INDEX book_ticker_snapshots_key ON ONLY public.book_ticker_snapshots "
            'USING btree (exchange, symbol_base, symbol_quote, "timestamp")'
        ]
        # time ranges, and the report's ticks per venue as an index-only scan (migration 005)
        assert indexes["book_ticker_snapshots_timestamp_exchange_idx"].endswith(
            'USING btree ("timestamp", exchange)'
        )
        assert "book_ticker_snapshots_timestamp_idx" not in indexes
    finally:
        await conn.close()


async def test_concurrent_runners_apply_once(pg_database) -> None:
    """Two collectors starting together: the advisory lock lets exactly one apply."""
    conns = [await asyncpg.connect(pg_database.dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in conns))
        assert sorted(results) == [[], [], ALL]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == len(ALL)
    finally:
        for conn in conns:
            await conn.close()


async def test_accepts_a_pool(pg_database) -> None:
    pool = await create_pool(pg_database.dsn, min_size=1, max_size=2)
    try:
        assert await apply_migrations(pool) == ALL
        assert await apply_migrations(pool) == []
    finally:
        await pool.close()


async def test_failed_migration_rolls_back_and_releases_lock(pg_database, tmp_path) -> None:
    (tmp_path / "001_ok.sql").write_text("CREATE TABLE a (x int);")
    (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (x int); SELECT no_such_column FROM a;")
    (tmp_path / "README.txt").write_text("not a migration")
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        with pytest.raises(asyncpg.UndefinedColumnError):
            await apply_migrations(conn, tmp_path)
        assert await applied_migrations(conn) == ["001_ok"]
        assert await conn.fetchval("SELECT to_regclass('b')") is None  # 002 fully rolled back
        (tmp_path / "002_bad.sql").write_text("CREATE TABLE b (x int);")
        other = await asyncpg.connect(pg_database.dsn)
        try:  # the lock was released: another session gets through at once
            assert await apply_migrations(other, tmp_path, lock_timeout=2) == ["002_bad"]
        finally:
            await other.close()
    finally:
        await conn.close()


async def test_a_slow_migration_outlives_the_connections_command_timeout(
    pg_database, tmp_path
) -> None:
    """An index build over a big table (005) takes longer than the writer's command_timeout;
    the migration must finish, not be cancelled and start over at every connect."""
    (tmp_path / "001_slow.sql").write_text("SELECT pg_sleep(1.0); CREATE TABLE slow (x int);")
    conn = await asyncpg.connect(pg_database.dsn, command_timeout=0.3)
    try:
        assert await apply_migrations(conn, tmp_path) == ["001_slow"]
        assert await conn.fetchval("SELECT to_regclass('slow') IS NOT NULL")
    finally:
        await conn.close()


def test_default_dir_independent_of_cwd(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(MIGRATIONS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_migrations_dir() == REPO_MIGRATIONS
    assert (REPO_MIGRATIONS / f"{FIRST}.sql").is_file()
    monkeypatch.setenv(MIGRATIONS_DIR_ENV, str(tmp_path))
    assert default_migrations_dir() == tmp_path.resolve()


async def test_env_override_and_missing_dir(pg_database, tmp_path, monkeypatch) -> None:
    (tmp_path / "001_only.sql").write_text("CREATE TABLE only_this (x int);")
    monkeypatch.setenv(MIGRATIONS_DIR_ENV, str(tmp_path))
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        assert await apply_migrations(conn) == ["001_only"]
        with pytest.raises(FileNotFoundError, match=MIGRATIONS_DIR_ENV):
            await apply_migrations(conn, tmp_path / "missing")
    finally:
        await conn.close()


async def test_up_to_date_schema_needs_no_create_privilege(pg_database) -> None:
    """A role that may only write rows can still run apply_migrations (the writer does so at
    every connect): with nothing to apply it takes no lock and creates nothing."""
    role = f"writer_{pg_database.name[-8:]}"
    conn = await asyncpg.connect(pg_database.dsn)
    created = False
    try:
        await apply_migrations(conn)
        try:
            await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
            created = True
        except asyncpg.InsufficientPrivilegeError:
            pytest.skip("the test server's role may not create roles")
        await conn.execute(
            f"""REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                GRANT USAGE ON SCHEMA public TO {role};
                GRANT SELECT, INSERT ON book_ticker_snapshots, schema_migrations TO {role}"""
        )
        limited = await asyncpg.connect(pg_database.dsn, user=role, password="pw")
        try:
            assert await apply_migrations(limited) == []
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await limited.execute("CREATE TABLE nope (x int)")
        finally:
            await limited.close()
    finally:
        if created:
            await conn.execute(f"DROP OWNED BY {role}; DROP ROLE {role}")
        await conn.close()
