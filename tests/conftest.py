"""Shared fixtures.

PostgreSQL: one real server per session -- the one at ``$DATABASE_URL`` when set (a
``postgresql://`` URL of a role allowed to CREATE DATABASE), else an embedded pgserver in a
temp dir -- and a fresh database per test (``pg_database``), dropped afterwards; ``pg_proxy``
takes it away on demand (see ``tests/pg.py``). Plain helpers live in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import settings
from structlog.testing import capture_logs

from tests.connection.loopback import Server
from tests.helpers import Log, wait_until
from tests.pg import (
    BackgroundLoop,
    PgDatabase,
    PgProxy,
    PgServer,
    admin,
    fresh_database,
    server_from_url,
)

# Hypothesis: CI (``CI`` set, as .ci/run does) tries the same examples on every run, so a red CI
# means a change broke something, never that this run drew a new example; local runs explore
# new ones (and replay their failures from .hypothesis/). HYPOTHESIS_PROFILE picks one by name.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev")
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` first (in their own order): the parallel workers share them from
    the start, instead of one worker running the last of them while the others wait."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def pg_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def pg_server(pg_loop: BackgroundLoop) -> Iterator[PgServer]:
    url = os.environ.get("DATABASE_URL")
    if url:
        server = server_from_url(url)
        pg_loop.run(admin(server.admin_dsn, "SELECT 1"))
        yield server
        return
    from db.embedded import EmbeddedPostgres

    scratch = scratch_dir()
    pg = EmbeddedPostgres.start(scratch / "data")
    server = PgServer(
        admin_dsn=pg.dsn,
        user="postgres",
        password=None,
        host=str(pg.socket_dir),
        port=pg.port,
        extra_query=(),
        embedded=True,
    )
    # a throwaway cluster: durability only costs test time
    pg_loop.run(
        admin(
            server.admin_dsn,
            "ALTER SYSTEM SET fsync = off",
            "ALTER SYSTEM SET synchronous_commit = off",
            "ALTER SYSTEM SET full_page_writes = off",
            "SELECT pg_reload_conf()",
        )
    )
    yield server
    pg.stop()
    shutil.rmtree(scratch, ignore_errors=True)


def scratch_dir() -> Path:
    """A directory for an embedded PostgreSQL's data. Not under tmp_path: as root, pgserver
    runs postgres as its own user and opens up the data directory's parents, and any other
    pytest run on the machine closes /tmp/pytest-of-root again (mode 0700) under the server."""
    return Path(tempfile.mkdtemp(prefix="cex-arb-test-pg-"))


@pytest.fixture
def pg_scratch() -> Iterator[Path]:
    """A private directory for a test's own embedded PostgreSQL (see :func:`scratch_dir`)."""
    scratch = scratch_dir()
    yield scratch
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture
def pg_database(pg_server: PgServer, pg_loop: BackgroundLoop) -> Iterator[PgDatabase]:
    """A fresh, empty database (no migrations applied) for one test."""
    with fresh_database(pg_server, pg_loop) as database:
        yield database


@pytest.fixture
def pg_proxy(pg_server: PgServer, pg_loop: BackgroundLoop) -> Iterator[PgProxy]:
    proxy = PgProxy(pg_loop, pg_server)
    pg_loop.run(proxy._start())
    yield proxy
    pg_loop.run(proxy._close())


@pytest.fixture
def pg_wait() -> Callable[..., Coroutine[Any, Any, None]]:
    """The polling helper, as a fixture (tests/db has no package to import it from)."""
    return wait_until


@pytest.fixture
def logs() -> Iterator[Log]:
    """Every structlog event of the test, as dicts with ``event`` and ``log_level``."""
    with capture_logs() as captured:
        yield captured


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[Server]:
    """The loopback WebSocket server the connection and replay-link tests talk to."""
    srv = Server()
    await srv.start()
    yield srv
    await srv.stop()
