"""Building blocks of the analytics tests: real QuoteCache snapshots and an Analytics whose
records go to the log reporter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from data_collector.analytics.hub import Analytics
from data_collector.analytics.reporter import LogReporter
from data_collector.cache import Outcome, QuoteCache
from data_collector.pairs import Pair
from data_collector.venues.base import QuoteUpdate

VENUES = ["mexc", "gateio"]
SOL = Pair("SOL", "USDT")
BTC = Pair("BTC", "USDT")
ETH = Pair("ETH", "USDT")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
FEES = {"mexc": 0.001, "gateio": 0.0015}


def make(*, logger: Any = None, **overrides: Any) -> Analytics:
    """Analytics reporting to the log; built inside the test body, so the default logger is
    bound under capture_logs."""
    kwargs: dict[str, Any] = {
        "fees": FEES,
        "arbitrage_threshold": 0.005,
        "volume_threshold": 0.0,
        "spread_alert_threshold": 1.0,
    }
    kwargs.update(overrides)
    analytics = Analytics(**kwargs)
    analytics.subscribe(LogReporter(logger))
    return analytics


def put(
    cache: QuoteCache,
    venue: str,
    pair: Pair,
    bid: str | None,
    ask: str | None,
    bid_qty: str = "10",
    ask_qty: str = "10",
) -> None:
    # a missing side has neither price nor size, as venues send it
    bid_qty_or_none = bid_qty if bid is not None else None
    ask_qty_or_none = ask_qty if ask is not None else None
    update = QuoteUpdate(f"{pair.base}{pair.quote}", bid, bid_qty_or_none, ask, ask_qty_or_none)
    outcome = cache.apply(cache.venue_index[venue], cache.pair_index[pair], update, 1)
    assert outcome is Outcome.ACCEPTED


def tick(a: Analytics, cache: QuoteCache, seconds: float) -> None:
    a.on_tick(cache.snapshot(), T0 + timedelta(seconds=seconds))
