"""The push path (push.py): backpressure, and the observer that sees every push frame."""

from __future__ import annotations

import asyncio

from data_collector.simulator import Simulator, pairs_for
from tests.helpers import wait_until
from tests.simulator.clients import (
    BTC,
    ETH,
    connect,
    is_text,
    mexc_channel,
    mexc_push,
    mexc_subscribe,
)


async def test_backpressure_bounds_memory_and_coalesces() -> None:
    async with Simulator(pairs_for(3), rate_hz=0, venues=("mexc",)) as sim:
        venue = sim.venues["mexc"]
        client = await connect(sim.urls["mexc"])
        mexc_subscribe(client, mexc_channel(BTC), mexc_channel(ETH))
        await client.until(is_text)
        client.transport.underlying_transport.pause_reading()
        flood = asyncio.create_task(venue.flood(frames=None))
        session = venue.sessions[0]
        await wait_until(lambda: session.write_paused, timeout=5, what="write paused")
        buffered = session.transport.underlying_transport.get_write_buffer_size()
        assert buffered < 1 << 20

        venue.set_quote(BTC, "1.00", "2", "1.01", "3")  # skipped now, delivered once drained
        assert venue.skipped_backpressure >= 1 and session.dirty == {0}
        venue.stop_flood()
        client.transport.underlying_transport.resume_reading()
        assert await asyncio.wait_for(flood, 5) > 0
        _, payload = await client.until(
            lambda t, p: mexc_push(p).publicAggreBookTicker.bidPrice == "1.00", timeout=5
        )
        assert (
            int(mexc_push(payload).publicAggreBookTicker.version)
            == (
                venue.last_sent(BTC)["sequence"]  # type: ignore[index]
            )
        )
