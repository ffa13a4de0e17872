"""Flood mode (flood.py): every frame delivered in order, and the hook benchmarks use."""

from __future__ import annotations

from data_collector.simulator import Simulator, pairs_for
from tests.simulator.clients import (
    BTC,
    ETH,
    SOL,
    connect,
    is_text,
    mexc_channel,
    mexc_push,
    mexc_subscribe,
)


async def test_flood_delivers_every_frame_in_order() -> None:
    async with Simulator(pairs_for(3), rate_hz=0, venues=("mexc",)) as sim:
        venue = sim.venues["mexc"]
        client = await connect(sim.urls["mexc"])
        mexc_subscribe(client, *(mexc_channel(pair) for pair in (BTC, ETH, SOL)))
        await client.until(is_text)
        sent = await venue.flood(frames=3000)
        assert sent == 3000 and venue.updates_sent == 3000
        versions: dict[str, int] = {}
        for _ in range(3000):
            _, payload = await client.next()
            ticker = mexc_push(payload)
            version = int(ticker.publicAggreBookTicker.version)
            assert version > versions.get(ticker.symbol, 0)
            versions[ticker.symbol] = version
        assert versions["BTCUSDT"] == venue.last_sent(BTC)["sequence"]  # type: ignore[index]
