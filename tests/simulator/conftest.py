"""The simulator's shared fixture: both venues over loopback, fast enough for short tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from data_collector.simulator import Simulator, pairs_for


@pytest_asyncio.fixture(loop_scope="function")
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(pairs_for(35), rate_hz=20, seed=7) as simulator:
        yield simulator
