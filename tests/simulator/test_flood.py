"""Flood mode (flood.py): every frame delivered in order, and the hook benchmarks use."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from data_collector.simulator import Quote, Simulator, pairs_for
from data_collector.simulator.flood import SocketCork
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


async def test_a_flood_writes_corked_and_leaves_the_socket_uncorked() -> None:
    """Frames are written corked (full segments) and the cork is released at the end: a push
    after the flood must not wait for the kernel's 200 ms cork timeout."""
    async with Simulator(pairs_for(2), rate_hz=0, venues=("mexc",)) as sim:
        venue = sim.venues["mexc"]
        client = await connect(sim.urls["mexc"])
        mexc_subscribe(client, *(mexc_channel(pair) for pair in (BTC, ETH)))
        await client.until(is_text)
        session = venue.sessions[0]
        sock = session.transport.underlying_transport.get_extra_info("socket")

        def corked() -> int:
            return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))

        cork = SocketCork(session)
        cork.hold()
        assert corked() == 1
        cork.release()
        assert corked() == 0
        assert await venue.flood(frames=2500) == 2500
        assert corked() == 0
        for _ in range(2500):
            await client.next()


async def flood_quotes() -> list[tuple[int, int, str | None, str | None]]:
    """What one fresh simulator on a virtual clock floods: (pair, sequence, bid, ask) in
    sending order, checked against what the client received."""
    async with Simulator(pairs_for(3), rate_hz=0, venues=("mexc",), seed=3) as sim:
        sim.market.use_virtual_clock(0.001)
        venue = sim.venues["mexc"]
        batches: list[Sequence[tuple[int, Quote]]] = []
        venue.observe_floods(batches.append)
        client = await connect(sim.urls["mexc"])
        mexc_subscribe(client, *(mexc_channel(pair) for pair in (BTC, ETH, SOL)))
        await client.until(is_text)
        assert await venue.flood(frames=300) + await venue.flood(frames=200) == 500
        assert [len(batch) for batch in batches] == [300, 200]
        quotes = [(i, q.sequence, q.bid, q.ask) for batch in batches for i, q in batch]
        for i, sequence, bid, _ in quotes:
            ticker = mexc_push((await client.next())[1])
            assert ticker.symbol == venue.book.symbols[i]
            assert int(ticker.publicAggreBookTicker.version) == sequence
            assert ticker.publicAggreBookTicker.bidPrice == bid
        return quotes


async def test_the_flood_observer_sees_each_batch_and_the_virtual_clock_repeats_it() -> None:
    assert await flood_quotes() == await flood_quotes()
