"""Fixtures shared by the database tests (the server-level ones are in tests/conftest.py)."""

from __future__ import annotations

import asyncpg
import pytest

from db.migrations import apply_migrations


@pytest.fixture
async def migrated(pg_database):
    """A fresh database with the project's migrations applied."""
    conn = await asyncpg.connect(pg_database.dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return pg_database
