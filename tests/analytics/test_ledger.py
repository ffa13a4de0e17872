"""The opportunity ledger subscriber: the rows it hands its sink for each record."""

from __future__ import annotations

from datetime import timedelta

import pytest

from data_collector.analytics.ledger import OpportunityLedger
from data_collector.analytics.records import OpportunityClosed, OpportunityOpened
from data_collector.cache import QuoteCache
from db.ledger import COLUMNS
from tests.analytics.helpers import BTC, SOL, T0, VENUES, make, put, tick


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[tuple]] = []

    def __call__(self, rows: list[tuple]) -> None:
        self.batches.append(rows)

    def rows(self) -> list[dict[str, object]]:
        return [dict(zip(COLUMNS, row, strict=True)) for batch in self.batches for row in batch]


def test_an_opportunity_is_written_when_it_opens_while_open_and_when_it_closes() -> None:
    cache = QuoteCache(VENUES, [SOL, BTC])
    put(cache, "mexc", SOL, "99.90", "100.00", ask_qty="2.5")
    put(cache, "gateio", SOL, "102.00", "102.10", bid_qty="4")
    sink = Sink()
    a = make()
    a.subscribe(OpportunityLedger(sink))
    tick(a, cache, 0)
    put(cache, "gateio", SOL, "103.000", "103.10", bid_qty="1.20")  # the peak
    tick(a, cache, 1)
    a.summarize(cache.snapshot())  # checkpoint of what is open
    tick(a, cache, 2)
    put(cache, "gateio", SOL, "99.95", "100.05")
    tick(a, cache, 3)
    a.summarize(cache.snapshot())  # nothing open: nothing written
    opened, checkpoint, closed = sink.rows()
    assert [len(batch) for batch in sink.batches] == [1, 1, 1]
    fees = 0.25  # FEES of the helpers, in %
    assert opened == {
        "symbol_base": "SOL",
        "symbol_quote": "USDT",
        "buy_exchange": "mexc",
        "sell_exchange": "gateio",
        "opened_at": T0,
        "closed_at": None,
        "open_net_pct": pytest.approx(2.0 - fees),
        "max_net_pct": pytest.approx(2.0 - fees),
        "max_gross_pct": pytest.approx(2.0),
        "buy_price_at_max": "100.00",
        "sell_price_at_max": "102.00",
        "size_at_max": "2.5",
        "max_profit_quote": pytest.approx(2.5 * (102.0 * (1 - 0.0015) - 100.0 * 1.001)),
        "max_at": T0,
        "last_seen_at": T0,
        "ticks": 1,
        "close_reason": None,
    }
    peak = {
        "max_net_pct": pytest.approx(3.0 - fees),
        "max_gross_pct": pytest.approx(3.0),
        "sell_price_at_max": "103.000",
        "size_at_max": "1.20",
        # 1.2 x (103 x (1 - 0.15 %) - 100 x (1 + 0.1 %)), its float noise rounded away
        "max_profit_quote": 3.2946,
        "max_at": T0 + timedelta(seconds=1),
    }
    assert checkpoint == opened | peak | {"last_seen_at": T0 + timedelta(seconds=1), "ticks": 2}
    assert closed == opened | peak | {
        "closed_at": T0 + timedelta(seconds=3),
        "last_seen_at": T0 + timedelta(seconds=2),
        "ticks": 3,
        "close_reason": "converged",
    }


def test_shutdown_closes_are_written_with_their_reason() -> None:
    cache = QuoteCache(VENUES, [SOL])
    put(cache, "mexc", SOL, "99", "100")
    put(cache, "gateio", SOL, "102", "103")
    sink = Sink()
    a = make()
    a.subscribe(OpportunityLedger(sink))
    tick(a, cache, 0)
    stop = T0 + timedelta(seconds=0.6)
    a.close_open(stop)
    closed = sink.rows()[-1]
    assert (closed["close_reason"], closed["closed_at"]) == ("shutdown", stop)
    assert (closed["ticks"], closed["last_seen_at"]) == (1, T0)


def test_hand_built_records_without_the_exact_strings_are_not_written() -> None:
    sink = Sink()
    ledger = OpportunityLedger(sink)
    ledger.opened(OpportunityOpened(SOL, "mexc", "gateio", T0, 1, 2, None, 1, 1, 0, 0))
    ledger.closed(OpportunityClosed(SOL, "mexc", "gateio", T0, T0, 1, 1))
    assert sink.batches == []
