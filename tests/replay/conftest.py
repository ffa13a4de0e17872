"""Fixtures of the replay tests: the loopback server the link tests record."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.connection.loopback import Server


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[Server]:
    srv = Server()
    await srv.start()
    yield srv
    await srv.stop()
