"""VenueServer (server.py, connections.py): what it accepts, what it records, how it waits."""

from __future__ import annotations

import pytest
from picows import WSInvalidStatusError, WSListener, ws_connect

from data_collector.simulator import Simulator, pairs_for
from tests.simulator.clients import connect


async def test_sessions_record_their_path_and_other_paths_are_refused() -> None:
    async with Simulator(pairs_for(2), rate_hz=0, venues=("gateio",)) as sim:
        venue = sim.venues["gateio"]
        await connect(sim.urls["gateio"] + "?client=test")
        await venue.wait_for_sessions(1)
        assert venue.sessions[0].path == "/ws/v4/?client=test"
        assert venue.total_connections == 1
        elsewhere = sim.urls["gateio"].replace("/ws/v4/", "/ws/v3/")
        with pytest.raises(WSInvalidStatusError, match="404"):
            await ws_connect(WSListener, elsewhere)
        assert venue.total_connections == 1


async def test_waiting_for_what_never_comes_says_what_it_saw() -> None:
    async with Simulator(pairs_for(2), rate_hz=0, venues=("mexc",)) as sim:
        await connect(sim.urls["mexc"])
        with pytest.raises(TimeoutError, match=r"mexc: no 1 subscription within .*sessions=1"):
            await sim.venues["mexc"].wait_for_subscriptions(1, timeout=0.2)
