"""Analytics across five venues: every ordered venue pair is a candidate, net of both of its
taker fees and capped by the smaller side; market health counts pairs live on 2+ venues."""

from __future__ import annotations

import itertools

import pytest

from data_collector.analytics.opportunities import OpportunityTracker
from data_collector.analytics.records import OpportunityOpened
from data_collector.cache import QuoteCache
from tests.analytics.helpers import BTC, ETH, SOL, T0, make, put
from tests.helpers import Log, events

FIVE = ["mexc", "gateio", "binance", "okx", "bybit"]
FIVE_FEES = {"mexc": 0.0005, "gateio": 0.002, "binance": 0.001, "okx": 0.0008, "bybit": 0.001}


def _quiet(cache: QuoteCache) -> None:
    """The same tight book on every venue for every pair: nothing to gain anywhere."""
    for venue, pair in itertools.product(FIVE, (SOL, BTC, ETH)):
        put(cache, venue, pair, "100.00", "100.01")


def _opened(cache: QuoteCache, threshold: float = 0.001) -> list[OpportunityOpened]:
    tracker = OpportunityTracker(fees=FIVE_FEES, arbitrage_threshold=threshold)
    records = tracker.update(cache.snapshot(), T0)
    return [r for r in records if isinstance(r, OpportunityOpened)]


@pytest.mark.parametrize(("buy", "sell"), list(itertools.permutations(FIVE, 2)))
def test_every_ordered_venue_pair_is_a_candidate(buy: str, sell: str, logs: Log) -> None:
    cache = QuoteCache(FIVE, [SOL, BTC, ETH])
    _quiet(cache)
    put(cache, buy, SOL, "99.00", "99.50", ask_qty="3")  # cheap here...
    put(cache, sell, SOL, "101.00", "101.10", bid_qty="2")  # ...dear there
    # 1.51 % gross between the two; under 1 % against the venues in between
    [opened] = _opened(cache, threshold=0.012)
    assert (opened.buy_exchange, opened.sell_exchange, opened.pair) == (buy, sell, SOL)
    gross = (101.00 - 99.50) / 99.50
    assert opened.gross_pct == pytest.approx(gross * 100)
    assert opened.net_pct == pytest.approx((gross - FIVE_FEES[buy] - FIVE_FEES[sell]) * 100)
    assert opened.size == 2.0  # capped by the smaller side
    make(fees=FIVE_FEES, arbitrage_threshold=0.012).on_tick(cache.snapshot(), T0)
    [alert] = events(logs, "arbitrage_alert")
    assert {k: alert[k] for k in ("symbol", "buy_exchange", "sell_exchange")} == {
        "symbol": "SOL/USDT",
        "buy_exchange": buy,
        "sell_exchange": sell,
    }
    assert alert["gross_pct"] == pytest.approx(opened.gross_pct)
    assert alert["net_pct"] == pytest.approx(opened.net_pct)


def test_the_fees_of_the_two_venues_decide(logs: Log) -> None:
    """A 0.25 % gap against a 0.12 % threshold: only the cheapest pair of fees leaves enough."""
    cache = QuoteCache(FIVE, [SOL, BTC, ETH])
    _quiet(cache)
    # BTC cheap on mexc (0.05 %): 0.2506 % gross against every bid of 100.00, net of the fees
    # 0.1206 % to okx (0.08 %), 0.1006 % to binance and bybit (0.1 %), 0.0006 % to gateio
    put(cache, "mexc", BTC, "99.70", "99.75")
    # ETH cheap on gateio (0.2 %): the same gap leaves at most 0.0506 % anywhere
    put(cache, "gateio", ETH, "99.70", "99.75")
    opened = _opened(cache, threshold=0.0012)
    assert [(o.pair, o.buy_exchange, o.sell_exchange) for o in opened] == [(BTC, "mexc", "okx")]


def test_several_venues_gaps_at_once_each_open(logs: Log) -> None:
    cache = QuoteCache(FIVE, [SOL, BTC, ETH])
    _quiet(cache)
    put(cache, "binance", SOL, "98.00", "98.10")  # cheapest SOL
    put(cache, "bybit", SOL, "102.00", "102.10")  # dearest SOL
    opened = {(o.buy_exchange, o.sell_exchange) for o in _opened(cache, threshold=0.01)}
    # binance's ask is under everyone's bid; bybit's bid over everyone's ask (by more than 1 %
    # only against binance, and against the rest only from below): both ends, every partner
    assert ("binance", "bybit") in opened
    assert {("binance", v) for v in ("mexc", "gateio", "okx")} <= opened
    assert {(v, "bybit") for v in ("mexc", "gateio", "okx")} <= opened
    assert len(opened) == 7


def test_market_health_counts_pairs_live_on_two_venues_or_more(logs: Log) -> None:
    cache = QuoteCache(FIVE, [SOL, BTC, ETH])
    put(cache, "okx", SOL, "100.00", "100.01")  # SOL on one venue only
    put(cache, "bybit", BTC, "100.00", "100.01")
    put(cache, "binance", BTC, "100.00", "100.01")  # BTC on two of the new ones
    for venue in FIVE:
        put(cache, venue, ETH, "100.00", "100.01")  # ETH everywhere
    health = make(fees=FIVE_FEES).summarize(cache.snapshot()).market_health
    assert (health.pairs_live, health.pairs_total) == (2, 3)
