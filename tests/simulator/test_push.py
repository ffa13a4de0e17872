"""The push path (push.py): backpressure, and the observer that sees every push frame."""

from __future__ import annotations

import asyncio
import json

from data_collector.simulator import ClientSession, Quote, Simulator, pairs_for
from tests.helpers import wait_until
from tests.simulator.clients import (
    BTC,
    ETH,
    connect,
    gate_subscribe,
    is_text,
    is_update_for,
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


async def test_the_push_observer_sees_every_frame_sent() -> None:
    async with Simulator(pairs_for(3), rate_hz=50, venues=("gateio",)) as sim:
        venue = sim.venues["gateio"]
        client = await connect(sim.urls["gateio"])
        gate_subscribe(client, "BTC_USDT", "ETH_USDT")
        await client.until(is_update_for("ETH_USDT"))
        seen: list[tuple[str, int]] = []

        def before_send(session: ClientSession, idx: int, quote: Quote) -> None:
            assert session is venue.sessions[0]
            seen.append((venue.book.symbols[idx], quote.sequence))

        venue.observe_pushes(before_send)
        received: list[tuple[str, int]] = []
        while len(received) < 20:
            _, payload = await client.until(lambda t, p: b'"update"' in p)
            update = json.loads(payload)["result"]
            if received or (update["s"], update["u"]) in seen:  # else sent before observing
                received.append((update["s"], update["u"]))
        venue.observe_pushes(None)
        venue.pause()
        assert seen[:20] == received  # the same frames, in sending order
        observed = len(seen)
        venue.set_quote(BTC, "1.0", "1", "1.1", "1")
        await client.until(is_update_for("BTC_USDT"))
        assert len(seen) == observed  # removed
