"""The analytics hub: every subscriber gets the same records, in order, whatever the others do."""

from __future__ import annotations

from datetime import timedelta

from data_collector.analytics.hub import Analytics
from data_collector.analytics.records import (
    OpportunityClosed,
    OpportunityOpened,
    RecordConsumer,
    Summary,
)
from data_collector.cache import QuoteCache
from tests.analytics.helpers import BTC, SOL, T0, VENUES, make, put
from tests.helpers import KeepRecords, Log, events


class Broken(RecordConsumer):
    def opened(self, record: OpportunityOpened) -> None:
        raise RuntimeError("boom")


def crossed_cache() -> QuoteCache:
    cache = QuoteCache(VENUES, [SOL, BTC])
    put(cache, "mexc", SOL, "99", "100")
    put(cache, "gateio", SOL, "102", "103")
    return cache


def run(a: Analytics, cache: QuoteCache) -> None:
    a.on_tick(cache.snapshot(), T0)
    put(cache, "mexc", BTC, "99", "100")
    put(cache, "gateio", BTC, "102", "103")  # opens on the second tick
    put(cache, "gateio", SOL, "99.5", "100.5")  # closes on the second tick
    a.on_tick(cache.snapshot(), T0 + timedelta(seconds=1))
    a.summarize(cache.snapshot())


def test_a_subscriber_gets_the_records_the_log_is_made_of(logs: Log) -> None:
    a = make()
    keep = KeepRecords()
    a.subscribe(keep)
    run(a, crossed_cache())
    kinds = [type(r).__name__ for r in keep.records]
    # in the order they happened: flat (buy, sell, pair) order within a tick
    assert kinds == ["OpportunityOpened", "OpportunityClosed", "OpportunityOpened", "Summary"]
    first, closed, second, summary = keep.records
    assert isinstance(first, OpportunityOpened) and isinstance(second, OpportunityOpened)
    assert isinstance(closed, OpportunityClosed) and isinstance(summary, Summary)
    alerts = events(logs, "arbitrage_alert")
    assert [(e["symbol"], e["net_pct"]) for e in alerts] == [
        (str(r.pair), r.net_pct) for r in (first, second)
    ]
    [logged_close] = events(logs, "arbitrage_closed")
    assert logged_close["duration_s"] == closed.duration_s == 1.0
    [health] = events(logs, "market_health")
    assert health["open_opportunities"] == summary.market_health.open_opportunities == 1


def test_a_failing_subscriber_costs_the_others_nothing(logs: Log) -> None:
    a = make()
    keep = KeepRecords()
    a.subscribe(Broken())
    a.subscribe(keep)
    run(a, crossed_cache())
    assert len(keep.records) == 4
    assert len(events(logs, "arbitrage_alert")) == 2
    failures = events(logs, "analytics_consumer_failed")
    assert [(e["consumer"], e["log_level"]) for e in failures] == [("Broken", "error")] * 2


def test_an_unsubscribed_consumer_gets_nothing_more(logs: Log) -> None:
    a = make()
    keep = KeepRecords()
    a.subscribe(keep)
    cache = crossed_cache()
    a.on_tick(cache.snapshot(), T0)
    a.unsubscribe(keep)
    run(a, cache)
    assert len(keep.records) == 1
    assert len(events(logs, "arbitrage_alert")) == 2
