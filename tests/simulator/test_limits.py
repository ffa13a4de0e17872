"""Client message budgets (limits.py): counted per session, per window, per frame kind."""

from __future__ import annotations

import asyncio

import pytest
from picows import WSMsgType

from data_collector.simulator import Simulator, pairs_for
from data_collector.simulator.limits import MessageRateLimit
from data_collector.simulator.personalities.gateio import GatePersonality
from tests.simulator.clients import connect, is_text, serving


class StrictGate(GatePersonality):
    """Gate with a Binance-like budget: 3 messages a second, pings and pongs included."""

    def __init__(self) -> None:
        super().__init__()
        counted = (WSMsgType.TEXT, WSMsgType.PING, WSMsgType.PONG)
        self.inbound_limit = MessageRateLimit(3, counts=counted)


async def test_windows_are_fixed_and_per_session() -> None:
    async with Simulator(pairs_for(2), rate_hz=0, venues=("gateio",)) as sim:
        venue = sim.venues["gateio"]
        await connect(sim.urls["gateio"])
        await connect(sim.urls["gateio"])
        await venue.wait_for_sessions(2)
        first, second = venue.sessions
        limit = MessageRateLimit(2, window=1.0, key="test_budget")
        assert [limit.exceeded(first, t) for t in (10.0, 10.5, 10.9)] == [False, False, True]
        assert not limit.exceeded(second, 10.9)  # its own window
        assert [limit.exceeded(first, t) for t in (11.0, 11.1, 11.2)] == [False, False, True]
        assert first.state["test_budget"] == [11.0, 3]
    with pytest.raises(ValueError, match="limit >= 1"):
        MessageRateLimit(0)


async def test_mexc_closes_a_session_over_its_text_budget() -> None:
    options = {"mexc": {"max_messages_per_s": 5}}
    async with Simulator(pairs_for(2), venues=("mexc",), venue_options=options) as sim:
        client = await connect(sim.urls["mexc"])
        for k in range(10):  # protocol pings are not counted by MEXC
            client.transport.send_ping(f"p{k}".encode())
        pongs = [await client.until(lambda t, p: t == WSMsgType.PONG) for _ in range(10)]
        assert [payload for _, payload in pongs] == [f"p{k}".encode() for k in range(10)]
        for _ in range(6):  # one over the budget, in one burst (well within a second)
            client.send_json({"method": "PING"})
        for _ in range(5):
            _, pong = await client.until(is_text)
            assert pong == b'{"id":0,"code":0,"msg":"PONG"}'
        await client.until(lambda t, p: t == WSMsgType.CLOSE)
        assert client.close_reason == "message_rate"
        await asyncio.wait_for(client.disconnected.wait(), 3)


async def test_pongs_count_where_the_venue_counts_them() -> None:
    async with serving(StrictGate()) as venue:
        client = await connect(venue.url)
        for k in range(4):  # unsolicited pongs: allowed, but counted
            client.transport.send_pong(f"{k}".encode())
        await client.until(lambda t, p: t == WSMsgType.CLOSE)
        assert client.close_reason == "message_rate"
