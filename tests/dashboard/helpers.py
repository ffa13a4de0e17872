"""A real QuoteCache with quotes planted per venue, and the dashboard built on it."""

from __future__ import annotations

from datetime import UTC, datetime

from data_collector.cache import Outcome, QuoteCache, VenueStats
from data_collector.dashboard.board import OpportunityBoard
from data_collector.dashboard.feed import DashboardFeed
from data_collector.dashboard.state import StateBuilder
from data_collector.pairs import Pair
from data_collector.venues.base import QuoteUpdate
from tests.monitoring.helpers import NOW_NS, Clock, sources

VENUES = ("mexc", "gateio")
BTC, ETH, SOL = Pair("BTC", "USDT"), Pair("ETH", "USDT"), Pair("SOL", "USDT")
FEES = {"mexc": 0.0005, "gateio": 0.002}
TICK = datetime.fromtimestamp(NOW_NS / 1e9, UTC)


def put(cache: QuoteCache, venue: str, pair: Pair, bid: str, ask: str, age_s: float = 0.5) -> None:
    update = QuoteUpdate(f"{pair.base}{pair.quote}", bid, "2", ask, "3")
    receive_ns = NOW_NS - int(age_s * 1e9)
    outcome = cache.apply(cache.venue_index[venue], cache.pair_index[pair], update, receive_ns)
    assert outcome is Outcome.ACCEPTED


class Dashboard:
    """A feed on ``cache`` whose venue counters (``stats``) and clock the test moves."""

    def __init__(self, cache: QuoteCache, clock: Clock | None = None) -> None:
        self.board = OpportunityBoard()
        builder = StateBuilder(self.board, FEES, threshold=0.05, stale_after_s=30)
        self.stats = {v: VenueStats(frames=100, last_message_ns=NOW_NS - 10**8) for v in VENUES}
        self.clock = clock or Clock()
        view = sources(self.stats, {"mexc": (1, 1), "gateio": (0, 1)}, clock=self.clock)
        self.feed = DashboardFeed(builder, view.read)
