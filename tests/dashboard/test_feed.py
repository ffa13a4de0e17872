"""One state per tick for any number of viewers, served over SSE; a viewer that stops
reading loses old frames and holds up no one."""

from __future__ import annotations

import asyncio
import json
import socket

import aiohttp

from data_collector.cache import QuoteCache
from data_collector.dashboard.feed import Viewer
from data_collector.dashboard.routes import DashboardRoutes
from data_collector.monitoring.health import HealthRules
from data_collector.monitoring.server import MonitoringServer
from data_collector.pairs import Pair
from data_collector.scheduler import TickStats
from tests.dashboard.helpers import TICK, VENUES, Dashboard, put
from tests.helpers import wait_until
from tests.monitoring.helpers import get, sources


def ticked(n: int) -> TickStats:
    stats = TickStats()
    stats.ticks, stats.last_tick_time = n, TICK
    return stats


async def test_a_viewer_keeps_only_its_newest_frames() -> None:
    viewer = Viewer(depth=2)
    for i in range(5):
        viewer.push(b"%d" % i)
    assert viewer.dropped == 3
    assert [await viewer.next(), await viewer.next()] == [b"3", b"4"]
    viewer.close()
    assert await viewer.next() is None


async def test_one_state_per_tick_goes_to_every_viewer_as_the_same_bytes() -> None:
    cache = QuoteCache(VENUES, [Pair("BTC", "USDT")])
    put(cache, "mexc", Pair("BTC", "USDT"), "1.0", "1.1")
    feed = Dashboard(cache).feed
    feed.after_tick(cache.snapshot(), ticked(1))
    await asyncio.sleep(0)
    assert feed.built == 0  # nobody watches: nothing is built
    viewers = [feed.subscribe() for _ in range(20)]
    assert feed.built == 1  # the first viewer got the current state, the others share it
    firsts = [await v.next() for v in viewers]
    feed.after_tick(cache.snapshot(), ticked(2))
    assert feed.built == 1  # not inside the tick: on the next turn of the loop
    await asyncio.sleep(0)
    assert feed.built == 2
    frames = [await v.next() for v in viewers]
    assert all(f is frames[0] for f in frames) and frames[0] != firsts[0]
    assert frames[0].startswith(b"data: {") and frames[0].endswith(b"}\n\n")


async def test_a_stalled_viewer_drops_frames_while_another_gets_every_one() -> None:
    pairs = [Pair(f"T{i:04d}", "USDT") for i in range(3000)]  # ~200 kB a frame
    cache = QuoteCache(VENUES, pairs)
    for pair in pairs:
        put(cache, "mexc", pair, "100.00001", "100.00002")
    feed = Dashboard(cache).feed
    dashboard = DashboardRoutes(feed)
    server = MonitoringServer(
        sources({}, {}), HealthRules(30, 1), "127.0.0.1", 0, extra_routes=dashboard.routes()
    )
    await server.start()
    stalled = socket.create_connection(("127.0.0.1", server.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /dashboard/events HTTP/1.1\r\nHost: x\r\n\r\n")  # then never reads
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/dashboard/events") as resp:
                await wait_until(lambda: len(feed.viewers) == 2, what="both viewers")
                ticks_seen = []
                for n in range(1, 61):  # 12 MB: more than the stalled socket's buffers
                    feed.after_tick(cache.snapshot(), ticked(n))
                    while True:  # the reading viewer gets this very tick's state
                        line = await resp.content.readline()
                        if line.startswith(b"data: "):
                            ticks_seen.append(json.loads(line[6:])["tick"])
                            break
                assert ticks_seen == list(range(1, 61))
            dropped = sum(v.dropped for v in feed.viewers)
            assert dropped > 0, "the stalled viewer should have lost frames"
        # Shutdown ends the stream stuck writing to the stalled viewer: the server's stop does
        # not wait for it (aiohttp would wait up to 60 s for a handler).
        dashboard.close()
        async with asyncio.timeout(5):
            await server.stop()
        assert not feed.viewers
    finally:
        stalled.close()
        dashboard.close()
        await server.stop()


async def test_the_page_and_its_assets_are_served_and_nothing_else() -> None:
    cache = QuoteCache(VENUES, [Pair("BTC", "USDT")])
    feed = Dashboard(cache).feed
    routes = DashboardRoutes(feed).routes()
    server = MonitoringServer(
        sources({}, {}), HealthRules(30, 1), "127.0.0.1", 0, extra_routes=routes
    )
    await server.start()
    try:
        status, page, _ = await get(f"{server.url}/")
        assert status == 200 and 'src="dashboard/dashboard.js"' in page
        status, script, _ = await get(f"{server.url}/dashboard/dashboard.js")
        assert status == 200 and "EventSource" in script
        assert (await get(f"{server.url}/dashboard/state"))[0] == 503  # no snapshot yet
        for path in ("/dashboard/config.yaml", "/dashboard/..%2Fstate.py", "/dashboard/"):
            assert (await get(f"{server.url}{path}"))[0] == 404, path
        feed.after_tick(cache.snapshot(), ticked(1))
        status, _, state = await get(f"{server.url}/dashboard/state")
        assert status == 200 and state is not None and state["pairs"] == ["BTC/USDT"]
    finally:
        await server.stop()
