"""The dashboard's state: the quote matrix, the best net trade per pair, the opportunity
lists and the venues, all from the collector's memory."""

from __future__ import annotations

import json

from data_collector.cache import QuoteCache
from data_collector.dashboard.state import LIVE, NOT_LIVE, STALE
from data_collector.scheduler import TickStats
from tests.alerts.helpers import T0, closed, opened
from tests.dashboard.helpers import BTC, ETH, SOL, TICK, VENUES, Dashboard, put


def tick_stats() -> TickStats:
    stats = TickStats()
    stats.last_tick_time = TICK
    stats.ticks = 7
    return stats


def test_the_state_holds_exact_quotes_their_state_and_the_best_net_trade() -> None:
    cache = QuoteCache(VENUES, [BTC, ETH, SOL])
    put(cache, "mexc", BTC, "65000.10", "65000.20")
    put(cache, "gateio", BTC, "65001.00", "65001.50", age_s=45)  # older than stale_after_s
    put(cache, "mexc", SOL, "149.70", "149.75")
    put(cache, "gateio", SOL, "160.23", "160.30")
    put(cache, "gateio", ETH, "3000.0", "3000.5")
    cache.mark_not_live(cache.venue_index["gateio"], [cache.pair_index[ETH]])
    d = Dashboard(cache)
    feed, board = d.feed, d.board
    board.opened(opened())
    board.opened(opened("BTC/USDT", net_pct=5.5))
    board.closed(closed("BTC/USDT"))
    feed.after_tick(cache.snapshot(), tick_stats())
    state = json.loads(feed.payload() or b"")

    assert state["exchanges"] == ["mexc", "gateio"]
    assert state["pairs"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    btc, eth, sol = state["matrix"]
    assert sol[0][:2] == ["149.70", "149.75"] and sol[1][:2] == ["160.23", "160.30"]
    assert btc[0] == ["65000.10", "65000.20", 0.0002, LIVE]
    assert btc[1][:2] == ["65001.00", "65001.50"] and btc[1][3] == STALE
    assert eth[0] is None and eth[1][3] == NOT_LIVE
    gross = (160.23 - 149.75) / 149.75 * 100
    assert state["best"][2] == [0, 1, round(gross, 4), round(gross - 0.25, 4)]
    assert state["best"][1] is None  # ETH is quoted on one venue only, and not live there
    assert state["best"][0][:2] == [0, 1]  # stale but live quotes still count

    assert [o["symbol"] for o in state["open"]] == ["SOL/USDT"]
    assert state["open"][0]["age_s"] == (TICK - T0).total_seconds()
    assert state["closed"][0] | {"closed_at": None} == {
        "symbol": "BTC/USDT",
        "buy": "mexc",
        "sell": "gateio",
        "closed_at": None,
        "duration_s": 6.0,
        "peak_net_pct": 6.8,
    }
    mexc, gate = state["venues"]
    assert (mexc["name"], mexc["up"], mexc["expected"], gate["up"]) == ("mexc", 1, 1, 0)
    assert mexc["last_message_age_s"] == 0.1 and mexc["quote_age_s"] == 0.5
    assert mexc["frames_per_s"] is None  # no earlier count yet
    assert state["tick"] == 7 and state["threshold_pct"] == 5.0


def test_frames_per_second_come_from_successive_states() -> None:
    cache = QuoteCache(VENUES, [BTC])
    put(cache, "mexc", BTC, "1.0", "1.1")
    d = Dashboard(cache)
    feed = d.feed
    feed.after_tick(cache.snapshot(), tick_stats())
    feed.payload()
    d.clock.now_ns += 2 * 10**9
    d.stats["mexc"].frames += 60
    feed.after_tick(cache.snapshot(), tick_stats())
    state = json.loads(feed.payload() or b"")
    assert state["venues"][0]["frames_per_s"] == 30.0
