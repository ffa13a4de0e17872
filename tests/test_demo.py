"""``--simulate``'s demo gaps: a pair quoted well above its ask on another, random venue, for
a while, between varying venue pairs."""

from __future__ import annotations

import random

from structlog.testing import capture_logs

from data_collector.connection import ConnectionSettings
from data_collector.demo import DEMO_GAP, demo_gaps
from data_collector.lifecycle import cancel_all, watched
from data_collector.manager import FeedManager
from data_collector.pairs import Pair
from data_collector.simulator import PERSONALITIES, Simulator, pairs_for
from data_collector.venues import VENUES
from tests.helpers import Log, events, feeds, wait_until

SETTINGS = ConnectionSettings(silence_timeout=5.0, pong_timeout=3.0, subscribe_timeout=5.0)


async def _observe_gap(manager: FeedManager, pairs: list[Pair], gap: dict) -> tuple[str, str]:
    """Wait for the announced gap to show in the collector's cache, then to close."""
    cache = manager.cache
    buy, sell = gap["buy_exchange"], gap["sell_exchange"]
    b, s = cache.venue_index[buy], cache.venue_index[sell]
    p = [str(pair) for pair in pairs].index(gap["symbol"])

    def ratio() -> float:
        return float(cache.bid[s, p] / cache.ask[b, p])

    await wait_until(lambda: ratio() > 1 + DEMO_GAP * 0.9, what=f"the gap {buy}->{sell}")
    await wait_until(lambda: ratio() < 1.01, what="the gap closing")
    return buy, sell


async def _gaps(sim: Simulator, manager: FeedManager, pairs: list[Pair], n: int) -> Log:
    seen: Log = []
    with capture_logs() as logs:
        task = watched(demo_gaps(sim, pairs, every=0.3, hold=0.15, rng=random.Random(7)), "gaps")
        try:
            for count in range(1, n + 1):
                await wait_until(lambda c=count: len(events(logs, "demo_gap")) >= c)
                gap = events(logs, "demo_gap")[count - 1]
                await _observe_gap(manager, pairs, gap)
                seen.append(gap)
        finally:
            await cancel_all([task])
    return seen


async def test_gaps_open_between_random_venue_pairs_and_close_again() -> None:
    names = [name for name in VENUES if name in PERSONALITIES]
    pairs = pairs_for(3)
    async with (
        Simulator(pairs, rate_hz=20, venues=names) as sim,
        feeds(sim, pairs, SETTINGS) as manager,
    ):
        await wait_until(manager.flowing, what="every venue flowing")
        gaps = await _gaps(sim, manager, pairs, 4)
    routes = [(g["buy_exchange"], g["sell_exchange"]) for g in gaps]
    assert all(buy != sell for buy, sell in routes)
    assert len(set(routes)) >= 2  # not always the same two venues the same way round
